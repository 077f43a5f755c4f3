//! TLS as a byte pipe for one connection ([`TlsPipe`]). It uses rustls's unbuffered API (`UnbufferedServerConnection`,
//! `process_tls_records` and its states), so the record bytes are ftxd's:
//! three queues — records received but not processed (at most 18,437 B,
//! the largest record), records not yet written (plaintext is taken
//! while fewer than 64 KiB wait), and decrypted bytes the session had no
//! room for (handed out first) — each allocated when bytes come, kept
//! while they flow (no allocation per record in a transfer) and freed by
//! [`super::Transport::shrink`] once the connection is idle. The buffered
//! `ServerConnection` kept a 4 KiB read buffer for good: an idle TLS
//! connection now costs ~4.0 KB instead of ~8.1 KB (README, Performance,
//! "Idle TLS connections"). A TLS error is `InvalidData` (rustls's alert
//! is still sent); a TCP close without close_notify is an end of input
//! like any other (frames carry their lengths, transfers their digests).

use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::sync::Arc;

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError};

use super::Input;

/// The largest TLS record on the wire: a 5-byte header and at most 16 KiB
/// of plaintext plus 2 KiB of overhead (rustls refuses larger ones). The
/// incoming buffer never grows past it: a record that does not fit, or a
/// handshake message spread over records that do not fit together, is an
/// error.
const INCOMING_CAP: usize = 5 + 16_384 + 2048;
/// The incoming block's first size (what rustls's buffered connection
/// reads at a time); it doubles while records fill it.
const INCOMING_FIRST: usize = 4096;
/// Plaintext per record we encrypt (TLS's maximum fragment).
const RECORD_PLAINTEXT: usize = 16_384;
/// Room asked for each record beyond its plaintext: header 5, content
/// type 1, AEAD tag 16, with margin.
const RECORD_OVERHEAD: usize = 64;
/// Session output is taken only while fewer encrypted bytes than this
/// wait for the socket.
const OUTGOING_LIMIT: usize = 64 * 1024;
/// The most `outgoing` holds: under the limit, then one more record.
const OUTGOING_STEADY: usize = OUTGOING_LIMIT + RECORD_PLAINTEXT + RECORD_OVERHEAD;
/// The most `plain` holds: the records of a full `incoming`, decrypted
/// while writing, and one record left with rustls.
const PLAIN_STEADY: usize = INCOMING_CAP + RECORD_PLAINTEXT;
/// Unsent bytes worth moving to the front of `outgoing` to make room.
const CHEAP_MOVE: usize = RECORD_PLAINTEXT;
/// Socket reads one `read` may make before it lets the loop go on.
const MAX_READS: usize = 16;

/// A TLS server connection over a byte stream, with rustls's unbuffered
/// API: ftxd holds the record bytes in three queues, each allocated when
/// it is needed and freed by [`TlsPipe::shrink`] once empty (an idle
/// connection keeps only rustls's own state): `incoming` (TLS bytes read
/// but not processed: a partial record), `outgoing` (records not yet
/// written) and `plain` (decrypted bytes the session had no room for).
pub(crate) struct TlsPipe {
    conn: UnbufferedServerConnection,
    incoming: Queue,
    outgoing: Queue,
    plain: Queue,
    /// The peer sent close_notify: no more plaintext comes.
    peer_closed: bool,
    /// Our close_notify is queued.
    close_sent: bool,
    /// rustls reported an error: nothing more is encrypted (the alert it
    /// queued is still sent).
    failed: bool,
}

/// Where `pump` puts decrypted bytes: `buf[filled..]`, and what does not
/// fit goes to the `plain` queue.
struct Sink<'a> {
    buf: &'a mut [u8],
    filled: usize,
}

/// What one `pump` did.
#[derive(Debug, Default)]
struct Pumped {
    /// Bytes of the plaintext to send that were encrypted.
    taken: usize,
    /// The sink is full (or the next record does not fit): stop reading.
    full: bool,
    /// The TLS state moved (records processed, handshake bytes queued).
    moved: bool,
}

fn tls_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl TlsPipe {
    pub(super) fn new(config: &Arc<rustls::ServerConfig>) -> io::Result<TlsPipe> {
        let conn = UnbufferedServerConnection::new(Arc::clone(config))
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(TlsPipe {
            conn,
            incoming: Queue::default(),
            outgoing: Queue::default(),
            plain: Queue::default(),
            peer_closed: false,
            close_sent: false,
            failed: false,
        })
    }

    /// Reads plaintext into `buf`: first what is left decrypted, then the
    /// records already received, then the socket while it has bytes, the
    /// buffer has room and the round's reads last.
    pub(super) fn read<S: Read>(
        &mut self,
        stream: &mut S,
        readable: &mut bool,
        buf: &mut [u8],
    ) -> io::Result<Input> {
        if self.failed {
            return Err(tls_error("TLS failed earlier"));
        }
        if buf.is_empty() {
            return Ok(Input::Idle);
        }
        let mut sink = Sink {
            filled: self.plain.take_into(buf),
            buf,
        };
        if !self.plain.is_empty() {
            return Ok(Input::Data(sink.filled));
        }
        let mut progress = false;
        let mut reads = 0;
        loop {
            let pumped = self.pump(&mut sink, &[], false)?;
            progress |= pumped.moved;
            let filled = sink.filled;
            if pumped.full || filled == sink.buf.len() {
                return Ok(Input::Data(filled));
            }
            if self.peer_closed {
                return Ok(if filled > 0 {
                    Input::Data(filled)
                } else {
                    Input::Eof
                });
            }
            let done = |progress: bool| {
                Ok(if filled > 0 {
                    Input::Data(filled)
                } else if progress {
                    Input::Progress
                } else {
                    Input::Idle
                })
            };
            if !*readable || reads == MAX_READS {
                return done(progress);
            }
            let held = self.incoming.len();
            if held >= INCOMING_CAP {
                self.failed = true;
                return Err(tls_error("TLS record or handshake message too large"));
            }
            let want = self.read_size();
            match stream.read(&mut self.incoming.room(want, INCOMING_CAP)[..want]) {
                // A TCP close without close_notify: frames carry their own
                // lengths and transfers their digests, so a truncation is
                // seen by the session anyway. A partial record is dropped.
                Ok(0) => {
                    return Ok(if filled > 0 {
                        Input::Data(filled)
                    } else {
                        Input::Eof
                    })
                }
                Ok(n) => {
                    self.incoming.filled(n);
                    progress = true;
                    reads += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *readable = false;
                    return done(progress);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Hand out what was decrypted; the error comes back next time.
                Err(_) if filled > 0 => return Ok(Input::Data(filled)),
                Err(e) => return Err(e),
            }
        }
    }

    /// How many bytes to ask of the socket: as many as the block holds,
    /// but only up to the end of a record already started, so that the
    /// buffer empties after each record instead of moving a partial one to
    /// the front. (During the handshake rustls may keep joined messages in
    /// front: no record header there, so just as many as fit.) The block
    /// starts at [`INCOMING_FIRST`] and doubles, up to the cap, only when
    /// received bytes fill it: a peer that announces a large record and
    /// stalls holds no more than it sent, and a little.
    fn read_size(&self) -> usize {
        let held = self.incoming.pending();
        let block = self.incoming.buf.len();
        let limit = if block > held.len() {
            block
        } else {
            (2 * block).max(INCOMING_FIRST)
        };
        let room = limit.min(INCOMING_CAP) - held.len();
        if held.len() < 5 || self.conn.is_handshaking() {
            return room;
        }
        let record = 5 + usize::from(u16::from_be_bytes([held[3], held[4]]));
        match record.checked_sub(held.len()) {
            Some(rest) if rest > 0 => rest.min(room),
            _ => room,
        }
    }

    /// Encrypts what it may of `out` and writes the queued records while
    /// the socket takes them. Returns the bytes of `out` taken and whether
    /// anything moved.
    pub(super) fn write<S: Write>(
        &mut self,
        stream: &mut S,
        writable: &mut bool,
        out: &[u8],
    ) -> io::Result<(usize, bool)> {
        // Records already made go first: the room they leave is reused.
        let mut moved = self.send(stream, writable)?;
        let mut taken = 0;
        if !out.is_empty() && self.outgoing.len() < OUTGOING_LIMIT && !self.failed {
            let mut none = Sink {
                buf: &mut [],
                filled: 0,
            };
            taken = self.pump(&mut none, out, false)?.taken;
        }
        moved |= taken > 0;
        moved |= self.send(stream, writable)?;
        Ok((taken, moved))
    }

    /// Writes queued records while the socket takes them; whether it took any.
    fn send<S: Write>(&mut self, stream: &mut S, writable: &mut bool) -> io::Result<bool> {
        let mut moved = false;
        while *writable && !self.outgoing.is_empty() {
            match stream.write(self.outgoing.pending()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.outgoing.consume(n);
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => *writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }

    pub(super) fn wants_write(&self) -> bool {
        !self.outgoing.is_empty()
    }

    pub(super) fn wants_read(&self) -> bool {
        self.conn.is_handshaking() && !self.peer_closed && !self.failed
    }

    /// Queues close_notify (not after a TLS error: its alert is queued).
    pub(super) fn close_notify(&mut self) {
        if self.failed || self.close_sent {
            return;
        }
        let mut none = Sink {
            buf: &mut [],
            filled: 0,
        };
        let _ = self.pump(&mut none, &[], true);
    }

    pub(super) fn shrink(&mut self) {
        self.incoming.release();
        self.outgoing.release();
        self.plain.release();
    }

    /// Runs rustls over the received records until it needs more input
    /// (or `sink` is full): decrypted bytes go to `sink` (what does not
    /// fit to `plain`), handshake messages and alerts to `outgoing`; once
    /// it may send, `send` is encrypted into `outgoing` while that holds
    /// less than [`OUTGOING_LIMIT`], then close_notify if `close`.
    fn pump(&mut self, sink: &mut Sink<'_>, send: &[u8], close: bool) -> io::Result<Pumped> {
        let TlsPipe {
            conn,
            incoming,
            outgoing,
            plain,
            peer_closed,
            close_sent,
            failed,
        } = self;
        let mut pumped = Pumped::default();
        loop {
            let status = conn.process_tls_records(incoming.pending_mut());
            let mut discard = status.discard;
            // Whether to call rustls again; the discard is due either way.
            let again: io::Result<bool> = match status.state {
                Err(e) => Err(tls_error(e)),
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    pumped.moved = true;
                    let mut result = Ok(());
                    loop {
                        let next = traffic.peek_len().map_or(0, NonZeroUsize::get);
                        let room = sink.buf.len() - sink.filled;
                        // A record that does not fit stays with rustls,
                        // unless nothing was handed out yet (the session
                        // asked for less than a record: the rest waits).
                        if plain.is_empty() && next > room && sink.filled > 0 {
                            pumped.full = true;
                            break;
                        }
                        let record = match traffic.next_record() {
                            None => break,
                            Some(Ok(record)) => record,
                            Some(Err(e)) => {
                                result = Err(tls_error(e));
                                break;
                            }
                        };
                        discard += record.discard;
                        let payload = record.payload;
                        let mut n = 0;
                        if plain.is_empty() {
                            n = payload.len().min(room);
                            sink.buf[sink.filled..sink.filled + n].copy_from_slice(&payload[..n]);
                            sink.filled += n;
                        }
                        if n < payload.len() {
                            plain.push(&payload[n..], PLAIN_STEADY);
                        }
                    }
                    // Reading: what waits in `plain` is handed out first.
                    // Writing (no sink): decrypt on, to reach `WriteTraffic`.
                    if !plain.is_empty() && !sink.buf.is_empty() {
                        pumped.full = true;
                    }
                    result.map(|()| !pumped.full)
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    pumped.moved = true;
                    fill(outgoing, 0, |room| {
                        encode.encode(room).map_err(encode_needs)
                    })
                    .map(|_| true)
                }
                // The records are queued in `outgoing`, in order: as good
                // as sent for rustls.
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    pumped.moved = true;
                    transmit.done();
                    Ok(true)
                }
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    let mut result = Ok(0);
                    while !*failed && result.is_ok() && pumped.taken < send.len() {
                        let rest = &send[pumped.taken..];
                        let chunk = &rest[..rest.len().min(RECORD_PLAINTEXT)];
                        // Wait for the socket rather than move many
                        // unsent bytes to make room (when it takes part
                        // of them, which is usual while it is the
                        // bottleneck).
                        if outgoing.len() >= OUTGOING_LIMIT
                            || !outgoing.cheap_room(chunk.len() + RECORD_OVERHEAD)
                        {
                            break;
                        }
                        result = fill(outgoing, chunk.len() + RECORD_OVERHEAD, |room| {
                            traffic.encrypt(chunk, room).map_err(encrypt_needs)
                        });
                        if result.is_ok() {
                            pumped.taken += chunk.len();
                        }
                    }
                    if close && !*close_sent && !*failed && result.is_ok() {
                        result = fill(outgoing, RECORD_OVERHEAD, |room| {
                            traffic.queue_close_notify(room).map_err(encrypt_needs)
                        });
                        *close_sent = result.is_ok();
                    }
                    result.map(|_| false)
                }
                Ok(ConnectionState::BlockedHandshake) => Ok(false),
                // Edge-triggered: remembered here, reported by `read`.
                Ok(ConnectionState::PeerClosed) => {
                    pumped.moved = true;
                    *peer_closed = true;
                    Ok(true)
                }
                Ok(ConnectionState::Closed) => {
                    *peer_closed = true;
                    Ok(false)
                }
                // Early data is off (rustls's default), so never.
                Ok(state) => Err(tls_error(format_args!("unexpected TLS state {state:?}"))),
            };
            incoming.consume(discard);
            match again {
                Ok(true) => {}
                Ok(false) => return Ok(pumped),
                Err(e) => {
                    *failed = true;
                    queue_alerts(conn, incoming, outgoing);
                    return Err(e);
                }
            }
        }
    }
}

/// After an error: moves what rustls has already queued (the alert it
/// made) into `outgoing`. rustls hands out queued records before it looks
/// at any input, so the bad input is never processed again (processing it
/// would make a second fatal alert, which rustls asserts against).
fn queue_alerts(conn: &mut UnbufferedServerConnection, incoming: &mut Queue, outgoing: &mut Queue) {
    while conn.wants_write() {
        let status = conn.process_tls_records(incoming.pending_mut());
        let Ok(ConnectionState::EncodeTlsData(mut encode)) = status.state else {
            return;
        };
        if fill(outgoing, 0, |room| {
            encode.encode(room).map_err(encode_needs)
        })
        .is_err()
        {
            return;
        }
    }
}

/// How much room an encoding said it needs, if that is what failed.
fn encode_needs(e: EncodeError) -> Option<usize> {
    match e {
        EncodeError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}

/// How much room an encryption said it needs, if that is what failed.
fn encrypt_needs(e: EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}

/// Runs `write` on spare room at the end of `q` (at least `guess` bytes;
/// once more with the room it asks for if that was too little) and keeps
/// what it wrote.
fn fill(
    q: &mut Queue,
    guess: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> io::Result<usize> {
    let mut want = guess;
    for _ in 0..2 {
        match write(q.room(want, OUTGOING_STEADY)) {
            Ok(n) => {
                q.filled(n);
                return Ok(n);
            }
            Err(Some(needed)) if needed > want => want = needed,
            Err(_) => break,
        }
    }
    Err(tls_error("cannot encode a TLS record"))
}

/// Bytes waiting in one heap block, `buf[start..end]`. The block is
/// allocated when bytes come, grows to what they need, and is kept while
/// bytes flow (no allocation per record) until [`Queue::release`] frees
/// it once empty. Offsets are `u32` to keep an idle connection small.
#[derive(Default)]
struct Queue {
    buf: Box<[u8]>,
    start: u32,
    end: u32,
}

impl Queue {
    fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start as usize..self.end as usize]
    }

    fn pending_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start as usize..self.end as usize]
    }

    /// Drops `n` bytes from the front.
    fn consume(&mut self, n: usize) {
        let n = n.min(self.len());
        self.start += n as u32;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// At least `want` bytes of room after the pending ones: the pending
    /// bytes move to the front if that is enough, else the block grows, to
    /// twice its size up to `steady` (what the user holds at most, so that
    /// it stops growing) or to what is needed, a multiple of 1 KiB. Fill
    /// it, then call [`Queue::filled`].
    fn room(&mut self, want: usize, steady: usize) -> &mut [u8] {
        let len = self.len();
        if self.buf.len() - (self.end as usize) < want {
            if self.buf.len() - len >= want {
                self.buf
                    .copy_within(self.start as usize..self.end as usize, 0);
            } else {
                let double = (2 * self.buf.len()).min(steady);
                let size = (len + want).max(double).next_multiple_of(1024);
                let mut bigger = vec![0u8; size].into_boxed_slice();
                bigger[..len].copy_from_slice(self.pending());
                self.buf = bigger;
            }
            self.start = 0;
            self.end = len as u32;
        }
        &mut self.buf[self.end as usize..]
    }

    /// Whether [`Queue::room`] can give `want` bytes without moving more
    /// than [`CHEAP_MOVE`] bytes (growing the block is rare: it stops at
    /// its steady size).
    fn cheap_room(&self, want: usize) -> bool {
        self.buf.len() - (self.end as usize) >= want
            || self.len() <= CHEAP_MOVE
            || self.buf.len() - self.len() < want
    }

    /// `n` bytes of [`Queue::room`] were filled.
    fn filled(&mut self, n: usize) {
        debug_assert!(self.end as usize + n <= self.buf.len());
        self.end += n as u32;
    }

    fn push(&mut self, bytes: &[u8], steady: usize) {
        self.room(bytes.len(), steady)[..bytes.len()].copy_from_slice(bytes);
        self.filled(bytes.len());
    }

    /// Moves what fits of the pending bytes into `dst`; returns how many.
    fn take_into(&mut self, dst: &mut [u8]) -> usize {
        let n = self.len().min(dst.len());
        dst[..n].copy_from_slice(&self.pending()[..n]);
        self.consume(n);
        n
    }

    /// Frees the block if it holds nothing.
    fn release(&mut self) {
        if self.is_empty() {
            self.buf = Box::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::known_hosts::PinnedVerifier;
    use crate::server::state::Identity;
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection};

    /// A socket in memory: the server reads `input[read..]` (at most
    /// `chunk` bytes a call when set; `WouldBlock` when drained, EOF if
    /// `eof`) and writes to `output` while `room` lasts.
    #[derive(Default)]
    struct Wire {
        input: Vec<u8>,
        read: usize,
        chunk: Option<usize>,
        eof: bool,
        output: Vec<u8>,
        room: usize,
        /// The sizes the server asked to read.
        asked: Vec<usize>,
    }

    impl Read for Wire {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.asked.push(buf.len());
            let left = self.input.len() - self.read;
            if left == 0 {
                return if self.eof {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            let n = left.min(buf.len()).min(self.chunk.unwrap_or(usize::MAX));
            buf[..n].copy_from_slice(&self.input[self.read..self.read + n]);
            self.read += n;
            Ok(n)
        }
    }

    impl Write for Wire {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room);
            self.output.extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A rustls client (as ftx configures it) and a `TlsPipe` joined by a
    /// `Wire`.
    struct Pair {
        client: ClientConnection,
        server: TlsPipe,
        wire: Wire,
        config: Arc<rustls::ServerConfig>,
        _dir: tempfile::TempDir,
    }

    impl Pair {
        fn new() -> Pair {
            Pair::over(tempfile::tempdir().unwrap())
        }

        /// A pair whose server uses the identity in `dir` (made if none).
        fn over(dir: tempfile::TempDir) -> Pair {
            let (identity, _) = Identity::load_or_create(dir.path()).unwrap();
            let config = identity.server_config().unwrap();
            let server = TlsPipe::new(&config).unwrap();
            let (verifier, _) = PinnedVerifier::new(Some(identity.fingerprint()));
            let client_config = ClientConfig::builder_with_provider(verifier.provider())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            let name = ServerName::try_from("ftxd").unwrap();
            let client = ClientConnection::new(Arc::new(client_config), name).unwrap();
            Pair {
                client,
                server,
                wire: Wire {
                    room: usize::MAX,
                    ..Wire::default()
                },
                config,
                _dir: dir,
            }
        }

        /// A pair past the handshake, all buffers idle.
        fn connected() -> Pair {
            Pair::new().handshake()
        }

        /// This pair past the handshake, all buffers idle.
        fn handshake(mut self) -> Pair {
            for _ in 0..10 {
                self.client_send();
                let (got, end) = self.server_read(4096);
                assert!(got.is_empty() && end.is_none());
                self.server_write(&[]);
                self.client_recv();
                if !self.client.is_handshaking() && !self.server.wants_read() {
                    self.server.shrink();
                    return self;
                }
            }
            panic!("no handshake");
        }

        /// The bytes on the wire not yet read; the wire is emptied.
        fn take_input(&mut self) -> Vec<u8> {
            let mut all = std::mem::take(&mut self.wire.input);
            all.drain(..self.wire.read);
            self.wire.read = 0;
            all
        }

        /// The client's pending TLS bytes onto the wire.
        fn client_send(&mut self) {
            while self.client.wants_write() {
                self.client.write_tls(&mut self.wire.input).unwrap();
            }
        }

        /// Plaintext from the client, as TLS bytes on the wire.
        fn client_write(&mut self, data: &[u8]) {
            self.client.writer().write_all(data).unwrap();
            self.client_send();
        }

        /// What the server wrote, into the client; its plaintext.
        fn client_recv(&mut self) -> Vec<u8> {
            let out = std::mem::take(&mut self.wire.output);
            let mut r = &out[..];
            while !r.is_empty() {
                self.client.read_tls(&mut r).unwrap();
                self.client.process_new_packets().unwrap();
            }
            let mut plain = Vec::new();
            let _ = self.client.reader().read_to_end(&mut plain);
            plain
        }

        /// Reads through the server with a `len`-byte buffer until it is
        /// idle; the plaintext and how it ended if it did.
        fn server_read(&mut self, len: usize) -> (Vec<u8>, Option<io::Result<Input>>) {
            let mut buf = vec![0u8; len];
            let mut got = Vec::new();
            let mut readable = true;
            loop {
                match self.server.read(&mut self.wire, &mut readable, &mut buf) {
                    Ok(Input::Data(n)) => {
                        assert!(n > 0);
                        got.extend_from_slice(&buf[..n]);
                    }
                    Ok(Input::Progress) => {}
                    Ok(Input::Idle) => return (got, None),
                    end => return (got, Some(end)),
                }
            }
        }

        /// Writes `out` through the server until the wire takes no more;
        /// how much of it was taken.
        fn server_write(&mut self, out: &[u8]) -> usize {
            let mut writable = true;
            let mut taken = 0;
            loop {
                let (n, moved) = self
                    .server
                    .write(&mut self.wire, &mut writable, &out[taken..])
                    .unwrap();
                taken += n;
                if !moved {
                    return taken;
                }
            }
        }

        fn idle(&self) -> bool {
            self.server.incoming.buf.is_empty()
                && self.server.outgoing.buf.is_empty()
                && self.server.plain.buf.is_empty()
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn exchange_frees_every_buffer_once_idle() {
        let mut p = Pair::connected();
        assert!(p.idle());
        p.client_write(b"hello");
        let (got, end) = p.server_read(4096);
        assert_eq!(got, b"hello");
        assert!(end.is_none());
        assert_eq!(p.server_write(b"welcome"), 7);
        assert_eq!(p.client_recv(), b"welcome");
        assert!(!p.idle(), "buffers stay until the connection is idle");
        p.server.shrink();
        assert!(p.idle());
    }

    /// A server still on the P-256 identity an earlier ftxd made serves
    /// today's client.
    #[test]
    fn a_p256_identity_still_handshakes() {
        let dir = tempfile::tempdir().unwrap();
        crate::server::state::write_p256_identity(dir.path());
        let mut p = Pair::over(dir).handshake();
        p.client_write(b"ls");
        assert_eq!(p.server_read(4096).0, b"ls");
        assert_eq!(p.server_write(b"ok"), 2);
        assert_eq!(p.client_recv(), b"ok");
    }

    #[test]
    fn records_split_at_every_byte() {
        let mut p = Pair::new();
        let data = pattern(40_000);
        // The handshake, then three records, one byte at a time.
        let mut got = Vec::new();
        let mut sent_data = false;
        for _ in 0..10 {
            p.client_send();
            let wire = p.take_input();
            for byte in wire {
                p.wire.input.push(byte);
                let (part, end) = p.server_read(4096);
                assert!(end.is_none());
                got.extend_from_slice(&part);
                // Between records, a partial one stays; never more than one.
                assert!(p.server.incoming.len() < INCOMING_CAP);
            }
            p.server_write(&[]);
            p.client_recv();
            if !p.client.is_handshaking() && !sent_data {
                p.client.writer().write_all(&data).unwrap();
                sent_data = true;
            } else if sent_data && got.len() == data.len() {
                break;
            }
        }
        assert_eq!(got, data);
        assert!(p.server.incoming.is_empty());
        p.server.shrink();
        assert!(p.idle());
    }

    #[test]
    fn a_partial_record_is_kept_by_shrink() {
        let mut p = Pair::connected();
        p.client_write(b"request");
        let whole = p.take_input();
        p.wire.input.extend_from_slice(&whole[..10]);
        let (got, end) = p.server_read(4096);
        assert!(got.is_empty() && end.is_none());
        p.server.shrink();
        assert_eq!(p.server.incoming.len(), 10);
        assert_eq!(p.server.incoming.buf.len(), INCOMING_FIRST);
        p.wire.input.extend_from_slice(&whole[10..]);
        assert_eq!(p.server_read(4096).0, b"request");
        p.server.shrink();
        assert!(p.idle());
    }

    #[test]
    fn plaintext_larger_than_the_buffer_waits_its_turn() {
        let mut p = Pair::connected();
        let data = pattern(50_000);
        p.client_write(&data);
        // Tiny buffers: every record is handed out in pieces, in order.
        for len in [1, 1000, 4096, 16_385] {
            let mut got = Vec::new();
            let mut buf = vec![0u8; len];
            let mut readable = true;
            let mut reads = 0;
            while got.len() < data.len() {
                match p.server.read(&mut p.wire, &mut readable, &mut buf).unwrap() {
                    Input::Data(n) => {
                        assert!(n <= len);
                        got.extend_from_slice(&buf[..n]);
                        // The rest waits, and is not freed meanwhile.
                        p.server.shrink();
                    }
                    other => panic!("{other:?} after {} bytes", got.len()),
                }
                reads += 1;
            }
            assert_eq!(got, data, "buffer of {len}");
            assert!(reads >= data.len() / len);
            assert!(p.server.plain.is_empty());
            p.server.shrink();
            assert!(p.idle());
            p.wire.read = 0;
            p.wire.input.clear();
            p.client_write(&data);
        }
    }

    #[test]
    fn a_read_stops_before_a_record_that_does_not_fit() {
        let mut p = Pair::connected();
        // Two full records and a bit: 16 KiB does not fit after 10 KiB.
        p.client_write(&pattern(10_000));
        p.client_write(&pattern(16_384));
        let mut buf = vec![0u8; 20_000];
        let mut readable = true;
        let first = p.server.read(&mut p.wire, &mut readable, &mut buf).unwrap();
        assert!(matches!(first, Input::Data(10_000)), "{first:?}");
        // Nothing was copied aside: the record waits with rustls.
        assert!(p.server.plain.is_empty());
        let second = p.server.read(&mut p.wire, &mut readable, &mut buf).unwrap();
        assert!(matches!(second, Input::Data(16_384)), "{second:?}");
        assert_eq!(&buf[..16_384], &pattern(16_384)[..]);
    }

    #[test]
    fn a_stalled_large_record_holds_little() {
        let mut p = Pair::connected();
        // A record announced at 16 KiB, of which 100 bytes came.
        p.client_write(&pattern(16_384));
        let whole = p.take_input();
        p.wire.input.extend_from_slice(&whole[..100]);
        p.server_read(4096);
        assert_eq!(p.server.incoming.buf.len(), INCOMING_FIRST);
        // The rest grows the block, doubling, up to the cap.
        p.wire.input.extend_from_slice(&whole[100..]);
        assert_eq!(p.server_read(1 << 20).0, pattern(16_384));
        assert_eq!(
            p.server.incoming.buf.len(),
            INCOMING_CAP.next_multiple_of(1024)
        );
    }

    #[test]
    fn reads_end_where_a_started_record_ends() {
        let mut p = Pair::connected();
        // Grow the block first.
        p.client_write(&pattern(2 * 16_384));
        p.server_read(1 << 20);
        assert_eq!(
            p.server.incoming.buf.len(),
            INCOMING_CAP.next_multiple_of(1024)
        );
        let data = pattern(5 * 16_384);
        for record in data.chunks(16_384) {
            p.client_write(record);
        }
        p.wire.asked.clear();
        let (got, _) = p.server_read(1 << 20);
        assert_eq!(got, data);
        // A full record on the wire: header, plaintext, content type, tag.
        let record = 5 + 16_384 + 1 + 16;
        assert_eq!(p.wire.asked[0], INCOMING_CAP);
        // The rest of the second record, not more: then the buffer empties.
        assert_eq!(p.wire.asked[1], 2 * record - INCOMING_CAP);
        assert_eq!(p.wire.asked[2], INCOMING_CAP);
        assert!(p.server.incoming.is_empty());
    }

    #[test]
    fn records_decrypted_while_writing_come_first_on_the_next_read() {
        let mut p = Pair::connected();
        let data = pattern(30_000);
        p.client_write(&data);
        p.wire.chunk = None;
        // Pull the records in without reading them out.
        let mut readable = true;
        let mut one = [0u8; 1];
        assert!(matches!(
            p.server.read(&mut p.wire, &mut readable, &mut one).unwrap(),
            Input::Data(1)
        ));
        // A write must reach `WriteTraffic`: what is left is decrypted aside.
        assert_eq!(p.server_write(b"reply"), 5);
        assert_eq!(p.client_recv(), b"reply");
        let (got, end) = p.server_read(100_000);
        assert!(end.is_none());
        assert_eq!([&one[..], &got[..]].concat(), data);
    }

    #[test]
    fn output_is_bounded_and_buffers_are_reused() {
        let mut p = Pair::connected();
        let data = pattern(1 << 20);
        // The socket takes nothing: the pipe stops taking plaintext.
        p.wire.room = 0;
        let taken = p.server_write(&data);
        assert!(taken >= OUTGOING_LIMIT - RECORD_PLAINTEXT, "{taken}");
        assert!(taken <= OUTGOING_LIMIT + RECORD_PLAINTEXT, "{taken}");
        assert!(p.server.outgoing.buf.len() <= OUTGOING_LIMIT + 2 * RECORD_PLAINTEXT);
        assert!(p.server.wants_write());
        // Now it drains 10 KB at a time: the block reaches its steady
        // size and stays.
        let mut block = None;
        let mut sent = taken;
        let mut got = Vec::new();
        let mut round = 0;
        while sent < data.len() || p.server.wants_write() {
            p.wire.room = 10_000;
            sent += p.server_write(&data[sent..]);
            got.extend(p.client_recv());
            assert!(p.server.outgoing.buf.len() <= OUTGOING_STEADY.next_multiple_of(1024));
            round += 1;
            if round == 8 {
                block = Some(p.server.outgoing.buf.as_ptr());
            } else if round > 8 {
                assert_eq!(Some(p.server.outgoing.buf.as_ptr()), block, "round {round}");
            }
        }
        assert_eq!(got, data);
        p.server.shrink();
        assert!(p.idle());
    }

    #[test]
    fn nothing_is_taken_before_the_handshake_ends() {
        let mut p = Pair::new();
        p.client_send();
        let (got, end) = p.server_read(4096);
        assert!(got.is_empty() && end.is_none());
        assert!(p.server.wants_read());
        // The server's flight goes out; the session's bytes wait.
        assert_eq!(p.server_write(b"early"), 0);
        assert!(!p.wire.output.is_empty());
    }

    #[test]
    fn close_notify_ends_the_input_after_the_data() {
        let mut p = Pair::connected();
        p.client_write(b"last words");
        p.client.send_close_notify();
        p.client_send();
        let (got, end) = p.server_read(4096);
        assert_eq!(got, b"last words");
        assert!(matches!(end, Some(Ok(Input::Eof))), "{end:?}");
        // The server may still answer, then closes cleanly.
        assert_eq!(p.server_write(b"bye"), 3);
        p.server.close_notify();
        p.server_write(&[]);
        assert_eq!(p.client_recv(), b"bye");
        assert!(matches!(
            p.server.read(&mut p.wire, &mut true, &mut [0; 8]),
            Ok(Input::Eof)
        ));
    }

    #[test]
    fn server_close_notify_reaches_the_client() {
        let mut p = Pair::connected();
        p.server.close_notify();
        p.server_write(&[]);
        p.client_recv();
        let mut buf = [0u8; 8];
        // rustls reports a clean close as a 0-byte read.
        assert_eq!(p.client.reader().read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn tcp_close_without_close_notify_is_eof() {
        let mut p = Pair::connected();
        p.client_write(b"cut");
        let whole = p.take_input();
        // All but the last byte of the record, then the TCP close.
        p.wire.input.extend_from_slice(&whole[..whole.len() - 1]);
        p.wire.eof = true;
        let (got, end) = p.server_read(4096);
        assert!(got.is_empty());
        assert!(matches!(end, Some(Ok(Input::Eof))), "{end:?}");
    }

    #[test]
    fn malformed_tls_is_invalid_data_with_rustls_alert() {
        let garbage: [&[u8]; 5] = [
            // A handshake record that is no ClientHello.
            &[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5],
            // An unknown content type.
            &[0x42, 0x03, 0x03, 0x00, 0x01, 0],
            // A length past the largest record.
            &[0x16, 0x03, 0x01, 0xff, 0xff],
            // Application data before the handshake.
            &[0x17, 0x03, 0x03, 0x00, 0x02, 0, 0],
            // A ClientHello longer than rustls allows (64 KiB).
            &[0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x01, 0x00, 0x00],
        ];
        for bytes in garbage {
            let mut p = Pair::new();
            p.wire.input.extend_from_slice(bytes);
            let (_, end) = p.server_read(4096);
            match end {
                Some(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{bytes:?}"),
                other => panic!("{bytes:?}: {other:?}"),
            }
            p.server.close_notify();
            p.server_write(&[]);
            // The alert the buffered `ServerConnection` sends, if any.
            let mut buffered = rustls::ServerConnection::new(Arc::clone(&p.config)).unwrap();
            let mut r = bytes;
            let mut alert = Vec::new();
            while !r.is_empty() && buffered.read_tls(&mut r).unwrap() > 0 {
                if buffered.process_new_packets().is_err() {
                    break;
                }
            }
            while buffered.wants_write() {
                buffered.write_tls(&mut alert).unwrap();
            }
            assert_eq!(p.wire.output, alert, "{bytes:?}");
        }
        // A handshake message spread over records past the incoming cap
        // (rustls would take up to 64 KiB; ftx's ClientHello is < 2 KiB).
        let mut p = Pair::new();
        let mut fragment = vec![0x16, 0x03, 0x01, 0x10, 0x00];
        fragment.extend_from_slice(&[0x01, 0x00, 0xff, 0xff]);
        fragment.resize(5 + 0x1000, 0);
        for i in 0..6 {
            p.wire
                .input
                .extend_from_slice(if i == 0 { &fragment } else { &fragment[..5] });
            if i > 0 {
                p.wire.input.resize(p.wire.input.len() + 0x1000, 0);
            }
        }
        let (_, end) = p.server_read(4096);
        assert!(matches!(end, Some(Err(ref e)) if e.kind() == io::ErrorKind::InvalidData));
        assert!(p.server.incoming.buf.len() <= INCOMING_CAP.next_multiple_of(1024));

        // A bad record after the handshake.
        let mut p = Pair::connected();
        p.wire
            .input
            .extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x20]);
        p.wire.input.extend_from_slice(&[0xaa; 0x20]);
        let (_, end) = p.server_read(4096);
        assert!(matches!(end, Some(Err(ref e)) if e.kind() == io::ErrorKind::InvalidData));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator: many shapes of nonsense.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..300 {
            let mut p = Pair::new();
            let len = round % 64 + 1;
            p.wire.input.push(0x16);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                p.wire.input.push(x as u8);
            }
            p.wire.chunk = Some(round % 5 + 1);
            p.wire.eof = round % 2 == 0;
            let _ = p.server_read(round % 3 * 100 + 1);
            p.server.close_notify();
            p.server_write(b"x");
            p.server.shrink();
        }
    }

    #[test]
    fn the_pipe_adds_little_to_rustls() {
        // Every idle TLS connection holds one: rustls's connection, three
        // empty queues and flags, no bigger than the buffered connection
        // ftxd boxed before.
        let pipe = std::mem::size_of::<TlsPipe>();
        let conn = std::mem::size_of::<UnbufferedServerConnection>();
        assert!(pipe <= conn + 3 * 24 + 8, "{pipe} B");
        assert!(
            pipe <= std::mem::size_of::<rustls::ServerConnection>(),
            "{pipe} B"
        );
    }

    #[test]
    fn queue_moves_grows_and_frees() {
        let mut q = Queue::default();
        assert!(q.buf.is_empty());
        q.push(b"abcdef", 4096);
        assert_eq!(q.buf.len(), 1024);
        q.consume(2);
        assert_eq!(q.pending(), b"cdef");
        // Room at the end suffices: nothing moves.
        assert!(q.room(1000, 4096).len() >= 1000);
        assert_eq!(q.start, 2);
        // Room only once the bytes move to the front.
        assert_eq!(q.room(1020, 4096).len(), 1020);
        assert_eq!((q.start, q.pending()), (0, &b"cdef"[..]));
        // More than the block: it grows and keeps the bytes.
        assert!(q.room(5000, 4096).len() >= 5000);
        assert_eq!(q.buf.len(), 5120);
        // Doubling up to the steady size.
        q.room(6000, 20_000);
        assert_eq!(q.buf.len(), 10_240);
        q.room(11_000, 20_000);
        assert_eq!(q.buf.len(), 20_480);
        assert_eq!(q.pending(), b"cdef");
        q.release();
        assert_eq!(q.buf.len(), 20_480, "not empty: kept");
        let mut out = [0u8; 3];
        assert_eq!(q.take_into(&mut out), 3);
        assert_eq!(&out, b"cde");
        assert_eq!(q.take_into(&mut out), 1);
        assert!(q.is_empty() && q.start == 0);
        q.release();
        assert!(q.buf.is_empty());
        q.consume(10);
        assert!(q.is_empty());
    }

    #[test]
    fn room_is_cheap_at_the_end_or_after_a_small_move() {
        let mut q = Queue::default();
        // Growing (an empty or small block) is allowed.
        assert!(q.cheap_room(100));
        q.push(&vec![1; 60_000], 80_000);
        q.room(20_000, 80_000);
        assert_eq!(q.buf.len(), 80_896);
        q.consume(30_000);
        // 30,000 bytes pending, 20,896 free at the end.
        assert!(q.cheap_room(20_000));
        assert!(!q.cheap_room(30_000), "would move 30,000 bytes");
        q.consume(30_000 - CHEAP_MOVE);
        assert!(q.cheap_room(30_000), "moves only {CHEAP_MOVE} bytes");
    }
}
