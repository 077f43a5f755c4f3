//! Framing: a 4-byte big-endian length, then that many bytes (type + body).
//! "Need more bytes" is `Ok(None)`, not an error; the length is checked
//! against [`MAX_FRAME_LEN`] before any of the frame is buffered.

use super::error::DecodeError;
use super::limits::{FRAME_HEADER_LEN, MAX_FRAME_LEN};
use super::message::{kind, Message};
use std::ops::Range;

/// Appends `msg` as one whole frame (length prefix included) to `out`.
pub fn encode(msg: &Message, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    msg.encode_body(out);
    let len = (out.len() - start - FRAME_HEADER_LEN) as u32;
    out[start..start + FRAME_HEADER_LEN].copy_from_slice(&len.to_be_bytes());
}

/// Reads the length prefix of the frame at the start of `buf`, if complete.
/// Fails at once on a zero or oversized length, so a hostile prefix never
/// makes anyone buffer more than [`MAX_FRAME_LEN`] bytes.
pub fn peek_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    peek_len_within(buf, MAX_FRAME_LEN)
}

/// [`peek_len`] with a smaller limit than [`MAX_FRAME_LEN`].
fn peek_len_within(buf: &[u8], max: u32) -> Result<Option<usize>, DecodeError> {
    if buf.len() < FRAME_HEADER_LEN {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len == 0 {
        return Err(DecodeError::EmptyFrame);
    }
    if len > max {
        return Err(DecodeError::FrameTooLarge(len));
    }
    Ok(Some(len as usize))
}

/// Decodes the first frame of `buf`: `Ok(None)` if it is not complete yet,
/// otherwise the message and how many bytes of `buf` it used.
pub fn decode(buf: &[u8]) -> Result<Option<(Message, usize)>, DecodeError> {
    let Some(len) = peek_len(buf)? else {
        return Ok(None);
    };
    let total = FRAME_HEADER_LEN + len;
    if buf.len() < total {
        return Ok(None);
    }
    let msg = Message::decode_body(&buf[FRAME_HEADER_LEN..total])?;
    Ok(Some((msg, total)))
}

/// One decoded frame from a [`FrameReader`].
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Any frame but `Data`, decoded.
    Message(Message),
    /// A `Data` frame whose `len` payload bytes stay in the reader's buffer,
    /// readable through [`FrameReader::data`] until the reader takes more
    /// input: file bytes are never copied out of the buffer they arrived in.
    Data {
        /// File offset of the first payload byte.
        offset: u64,
        /// Payload length.
        len: usize,
    },
}

/// How far past the end of a frame in progress [`FrameReader::spare`] lets
/// a read go: enough for the next frame's header and a few small frames.
pub const READ_PAST_FRAME: usize = 4096;

/// Type byte and offset: the part of a `Data` body before its payload.
const DATA_BODY_HEADER: usize = 1 + 8;

/// An input buffer that turns a byte stream cut anywhere into messages.
///
/// Bytes live in `buf[start..end]`; `buf[end..]` is initialized spare room
/// that a driver may receive into directly ([`FrameReader::spare`] then
/// [`FrameReader::commit`]), which saves copying every received byte once.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Where the payload of the last [`Frame::Data`] lies in `buf`.
    data: Range<usize>,
    /// Largest frame length taken now ([`FrameReader::set_limit`]).
    limit: u32,
}

impl Default for FrameReader {
    fn default() -> FrameReader {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            end: 0,
            data: 0..0,
            limit: MAX_FRAME_LEN,
        }
    }
}

impl FrameReader {
    /// An empty reader; allocates nothing until bytes arrive.
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Takes frames of at most `limit` bytes (at most [`MAX_FRAME_LEN`])
    /// from now on: a longer length prefix is an error as soon as it
    /// arrives, and [`FrameReader::spare`] offers no more room than such a
    /// frame needs.
    pub fn set_limit(&mut self, limit: u32) {
        self.limit = limit.min(MAX_FRAME_LEN);
    }

    /// Appends bytes received from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        self.room(bytes.len()).copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    /// Room after the buffered bytes to receive into: `want` bytes, or less
    /// when a frame is in progress, so that a read ends at most
    /// [`READ_PAST_FRAME`] bytes after that frame; pass how many were filled
    /// to [`FrameReader::commit`]. Reads that stop near frame ends keep the
    /// bytes moved to the front of the buffer few: a stream of full `Data`
    /// frames read in `MAX_CHUNK` pieces would otherwise move half a frame
    /// per read. The buffer grows only as needed and is zeroed only when it
    /// grows.
    pub fn spare(&mut self, want: usize) -> &mut [u8] {
        let want = match peek_len_within(&self.buf[self.start..self.end], self.limit) {
            Ok(Some(len)) => {
                let rest = (FRAME_HEADER_LEN + len).saturating_sub(self.buffered());
                // Past the frame, at most one more frame of the size taken
                // now: a client stalled half-way through its `Hello` holds
                // a few hundred bytes, not READ_PAST_FRAME.
                let past = READ_PAST_FRAME.min(FRAME_HEADER_LEN + self.limit as usize);
                want.min(rest + past)
            }
            // A frame of the largest size taken now, at most.
            Ok(None) => want.min(FRAME_HEADER_LEN + self.limit as usize),
            Err(_) => want,
        };
        self.room(want)
    }

    /// Exactly `want` bytes of room after the buffered bytes.
    fn room(&mut self, want: usize) -> &mut [u8] {
        self.data = 0..0;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end + want > self.buf.len() && self.start > 0 {
            self.compact();
        }
        if self.end + want > self.buf.len() {
            self.buf.resize(self.end + want, 0);
        }
        &mut self.buf[self.end..self.end + want]
    }

    /// `n` bytes of [`FrameReader::spare`] were filled with received data.
    pub fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    /// A `Data` payload is copied out; drivers use [`FrameReader::next_frame`].
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        Ok(self.next_frame()?.map(|frame| match frame {
            Frame::Message(msg) => msg,
            Frame::Data { offset, .. } => Message::Data {
                offset,
                data: self.data().to_vec(),
            },
        }))
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed. A
    /// `Data` frame is checked like [`Message::decode_body`] checks it, but
    /// its payload stays where it is ([`FrameReader::data`]).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        let buf = &self.buf[self.start..self.end];
        let Some(len) = peek_len_within(buf, self.limit)? else {
            return Ok(None);
        };
        let total = FRAME_HEADER_LEN + len;
        if buf.len() < total {
            return Ok(None);
        }
        let body = &buf[FRAME_HEADER_LEN..total];
        let frame = if body[0] == kind::DATA {
            let offset = Message::data_offset(body)?;
            let payload = self.start + FRAME_HEADER_LEN + DATA_BODY_HEADER;
            self.data = payload..self.start + total;
            Frame::Data {
                offset,
                len: self.data.len(),
            }
        } else {
            Frame::Message(Message::decode_body(body)?)
        };
        self.start += total;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(frame))
    }

    /// The payload of the last [`Frame::Data`] from
    /// [`FrameReader::next_frame`]; empty once more input was taken.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.data.clone()]
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Called at end of stream: a clean close if nothing is pending,
    /// otherwise the peer closed mid-frame.
    pub fn check_eof(&self) -> Result<(), DecodeError> {
        if self.buffered() == 0 {
            Ok(())
        } else {
            Err(DecodeError::UnexpectedEof)
        }
    }

    /// Frees the buffer when idle, so an idle connection holds no memory.
    pub fn shrink(&mut self) {
        if self.buffered() == 0 {
            self.buf = Vec::new();
            self.start = 0;
            self.end = 0;
            self.data = 0..0;
        }
    }

    /// Moves the buffered bytes to the front.
    fn compact(&mut self) {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// While a frame is in progress a read may go only a little past its
    /// end, so the bytes moved to the front stay few.
    #[test]
    fn spare_stops_a_read_soon_after_the_frame_in_progress() {
        let mut wire = Vec::new();
        let data = vec![7u8; 10_000];
        encode(&Message::Data { offset: 0, data }, &mut wire);
        let mut r = FrameReader::new();
        assert_eq!(r.spare(100_000).len(), 100_000);
        r.push(&wire[..3]);
        // Not even the length is known yet.
        assert_eq!(r.spare(100_000).len(), 100_000);
        r.push(&wire[3..5000]);
        let rest = wire.len() - 5000;
        assert_eq!(r.spare(100_000).len(), rest + READ_PAST_FRAME);
        assert_eq!(r.spare(10).len(), 10);
    }

    /// A `Data` payload is read where it arrived, until more input comes;
    /// a `Data` body too short for its offset is an error, as when decoded.
    #[test]
    fn data_payload_stays_in_the_buffer_until_more_input() {
        let mut wire = Vec::new();
        let data = b"hello".to_vec();
        encode(&Message::Data { offset: 5, data }, &mut wire);
        encode(&Message::Ack { offset: 1 }, &mut wire);
        let mut r = FrameReader::new();
        r.push(&wire);
        let first = r.next_frame().unwrap();
        assert_eq!(first, Some(Frame::Data { offset: 5, len: 5 }));
        assert_eq!(r.data(), b"hello");
        let ack = Frame::Message(Message::Ack { offset: 1 });
        assert_eq!(r.next_frame().unwrap(), Some(ack));
        assert_eq!(r.data(), b"hello");
        r.spare(64);
        assert!(r.data().is_empty());

        r.push(&[0, 0, 0, 5, kind::DATA, 0, 0, 0, 0]);
        assert_eq!(r.next_frame(), Err(DecodeError::Truncated("data offset")));
    }

    /// Receiving straight into `spare` in odd slices gives the same
    /// messages as the bytes pushed whole.
    #[test]
    fn spare_and_commit_in_odd_slices() {
        let msgs = [
            Message::List { path: "a".into() },
            Message::Data {
                offset: 7,
                data: (0..5000u32).map(|i| i as u8).collect(),
            },
            Message::Ack { offset: 9 },
        ];
        let mut wire = Vec::new();
        for m in &msgs {
            encode(m, &mut wire);
        }
        for slice in [1, 7, 13, 4096, wire.len()] {
            let mut r = FrameReader::new();
            let mut got = Vec::new();
            let mut pos = 0;
            while pos < wire.len() {
                // Ask for more room than is filled, as a socket read does;
                // the room may be shorter near the end of a frame.
                let room = r.spare(slice + 100);
                let n = room.len().min(slice).min(wire.len() - pos);
                room[..n].copy_from_slice(&wire[pos..pos + n]);
                r.commit(n);
                pos += n;
                while let Some(m) = r.next_message().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(got, msgs, "slice {slice}");
            assert_eq!(r.buffered(), 0);
            r.shrink();
            assert!(r.check_eof().is_ok());
        }
    }
}
