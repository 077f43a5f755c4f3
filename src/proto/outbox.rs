//! The output side shared by both sessions: bytes waiting for the socket.
//! Owns framing of outgoing messages; never writes anywhere itself.

use super::frame;
use super::message::{data_header, Message};

/// Length of a `Data` frame's header: length prefix, type and offset.
const DATA_HEADER_LEN: usize = 13;

/// Bytes queued for the peer, drained by the driver through
/// `poll_transmit`/`consume_transmit`.
///
/// The queue is `buf[pos..end]`. `buf[end..]` stays initialized between
/// uses, so a driver can read file bytes straight into the room behind a
/// `Data` header ([`Outbox::data_room`]) without zeroing it first.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

impl Outbox {
    pub(crate) fn push(&mut self, msg: &Message) {
        self.buf.truncate(self.end);
        frame::encode(msg, &mut self.buf);
        self.end = self.buf.len();
    }

    /// Queues frames already encoded (held back until now).
    pub(crate) fn push_encoded(&mut self, frames: &[u8]) {
        self.buf.truncate(self.end);
        self.buf.extend_from_slice(frames);
        self.end = self.buf.len();
    }

    pub(crate) fn push_data(&mut self, offset: u64, data: &[u8]) {
        self.data_room(data.len()).copy_from_slice(data);
        self.data_filled(offset, data.len());
    }

    /// `max` bytes of room for the payload of the next `Data` frame.
    pub(crate) fn data_room(&mut self, max: usize) -> &mut [u8] {
        let at = self.end + DATA_HEADER_LEN;
        if at + max > self.buf.len() {
            self.buf.resize(at + max, 0);
        }
        &mut self.buf[at..at + max]
    }

    /// Queues the `Data` frame whose first `n` payload bytes were put in
    /// [`Outbox::data_room`], and returns them.
    pub(crate) fn data_filled(&mut self, offset: u64, n: usize) -> &[u8] {
        let at = self.end;
        self.buf[at..at + DATA_HEADER_LEN].copy_from_slice(&data_header(offset, n));
        self.end = at + DATA_HEADER_LEN + n;
        &self.buf[at + DATA_HEADER_LEN..self.end]
    }

    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    pub(crate) fn len(&self) -> usize {
        self.end - self.pos
    }

    /// Bytes of memory the queue holds (its buffer, queued or not).
    pub(crate) fn held(&self) -> usize {
        self.buf.capacity()
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.pos > self.end / 2 && self.pos >= 64 * 1024 {
            // Keep appends cheap without letting consumed bytes pile up.
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
    }

    /// Frees the buffer when it is empty, so an idle connection keeps none:
    /// not even a listing's worth (up to a few KiB, against a budget of
    /// 4 KiB a connection); the next reply allocates again, once.
    pub(crate) fn shrink(&mut self) {
        if self.len() == 0 {
            self.buf = Vec::new();
            self.pos = 0;
            self.end = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::FrameReader;

    /// Data framed in place, between other messages and partial drains,
    /// reads back as the same messages in order.
    #[test]
    fn data_room_frames_in_order_with_other_messages() {
        let mut out = Outbox::default();
        let mut wire = Vec::new();
        out.push(&Message::Ack { offset: 1 });
        let room = out.data_room(100);
        room[..5].copy_from_slice(b"hello");
        assert_eq!(out.data_filled(9, 5), b"hello");
        wire.extend_from_slice(&out.pending()[..7]);
        out.consume(7);
        out.push_data(14, b"world");
        out.push(&Message::Cancel);
        wire.extend_from_slice(out.pending());
        let n = out.len();
        out.consume(n);
        assert_eq!(out.len(), 0);

        let mut r = FrameReader::new();
        r.push(&wire);
        let mut got = Vec::new();
        while let Some(m) = r.next_message().unwrap() {
            got.push(m);
        }
        let data = |offset, d: &[u8]| Message::Data {
            offset,
            data: d.to_vec(),
        };
        let want = [
            Message::Ack { offset: 1 },
            data(9, b"hello"),
            data(14, b"world"),
            Message::Cancel,
        ];
        assert_eq!(got, want);
    }
}
