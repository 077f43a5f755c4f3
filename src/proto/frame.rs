//! Framing: a 4-byte big-endian length, then that many bytes (type + body).
//! "Need more bytes" is `Ok(None)`, not an error; the length is checked
//! against [`MAX_FRAME_LEN`] before any of the frame is buffered.

use super::error::DecodeError;
use super::limits::{FRAME_HEADER_LEN, MAX_FRAME_LEN};
use super::message::Message;

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
    if buf.len() < FRAME_HEADER_LEN {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len == 0 {
        return Err(DecodeError::EmptyFrame);
    }
    if len > MAX_FRAME_LEN {
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

/// An input buffer that turns a byte stream cut anywhere into messages.
///
/// Bytes live in `buf[start..end]`; `buf[end..]` is initialized spare room
/// that a driver may receive into directly ([`FrameReader::spare`] then
/// [`FrameReader::commit`]), which saves copying every received byte once.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl FrameReader {
    /// An empty reader; allocates nothing until bytes arrive.
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Appends bytes received from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        self.spare(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    /// At least `want` bytes of room after the buffered bytes, to receive
    /// into; pass how many were filled to [`FrameReader::commit`]. The
    /// buffer grows only as needed and is zeroed only when it grows.
    pub fn spare(&mut self, want: usize) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end + want > self.buf.len() && self.start > 0 {
            self.compact();
        }
        if self.end + want > self.buf.len() {
            self.buf.resize(self.end + want, 0);
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes of [`FrameReader::spare`] were filled with received data.
    pub fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        match decode(&self.buf[self.start..self.end])? {
            None => Ok(None),
            Some((msg, used)) => {
                self.start += used;
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                }
                Ok(Some(msg))
            }
        }
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
            for piece in wire.chunks(slice) {
                // Ask for more room than is filled, as a socket read does.
                let room = r.spare(piece.len() + 100);
                room[..piece.len()].copy_from_slice(piece);
                r.commit(piece.len());
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
