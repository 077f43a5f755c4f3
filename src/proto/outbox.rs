//! The output side shared by both sessions: bytes waiting for the socket.
//! Owns framing of outgoing messages; never writes anywhere itself.

use super::frame;
use super::message::{data_header, Message};

/// Bytes queued for the peer, drained by the driver through
/// `poll_transmit`/`consume_transmit`.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    buf: Vec<u8>,
    pos: usize,
}

/// Capacity above which an emptied buffer is released, so an idle
/// connection does not keep a transfer-sized allocation.
const KEEP_CAPACITY: usize = 4096;

impl Outbox {
    pub(crate) fn push(&mut self, msg: &Message) {
        frame::encode(msg, &mut self.buf);
    }

    pub(crate) fn push_data(&mut self, offset: u64, data: &[u8]) {
        self.buf.extend_from_slice(&data_header(offset, data.len()));
        self.buf.extend_from_slice(data);
    }

    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > self.buf.len() / 2 && self.pos >= 64 * 1024 {
            // Keep appends cheap without letting consumed bytes pile up.
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    pub(crate) fn shrink(&mut self) {
        if self.len() == 0 && self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
            self.pos = 0;
        }
    }
}
