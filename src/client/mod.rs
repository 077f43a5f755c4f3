//! The client API the shell calls: connect, list, put, get and the simple
//! remote operations, each a blocking call that drives a `ClientSession`
//! over a TCP stream, plain or TLS ([`transport`]) with the server pinned
//! by fingerprint ([`known_hosts`]). Handles local files (temporary file, verify, rename).
//! Never prints: results and typed errors go back to the caller, progress
//! goes through the [`Progress`] trait.
//!
//! [`Client::put`] and [`Client::get`] live in `put.rs` and `get.rs`, the
//! error types in `error.rs`; a resumed transfer whose prefix differs
//! restarts through one step both share (`Client::restart`).

mod batch;
mod error;
mod get;
mod hasher;
pub mod known_hosts;
pub mod local;
mod put;
pub mod transport;

use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::proto::client_session::{ClientEvent, ClientSession, CommandError};
use crate::proto::error::{ErrorCode, RemoteError};
use crate::proto::limits::MAX_CHUNK;
use crate::proto::message::{Entry, FEATURE_ATTRS, FEATURE_PARTS};

pub use batch::{Job, JobDone, Jobs};
pub use error::{ClientError, LostReason};
pub use get::GetOutcome;
pub use put::PutOutcome;

use error::is_timeout;
use known_hosts::IdentityChanged;
use transport::{HandshakeError, Stream};

/// How to reach a server: TLS (pinned to a fingerprint) or plain, and the
/// access token sent in `Hello`.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `Some(fingerprint)`: TLS, accepting only that certificate;
    /// `None`: plain TCP.
    pub pin: Option<String>,
    /// The access token (empty: none).
    pub token: Vec<u8>,
}

impl ConnectOptions {
    /// Plain TCP, no token (an `ftxd --plain --open`).
    pub fn plain() -> ConnectOptions {
        ConnectOptions {
            pin: None,
            token: Vec::new(),
        }
    }
}

/// Time allowed to open the TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for the server's `Welcome`.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence from the server after which an operation fails as timed out.
/// Generous: committing a large upload includes an fsync.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(120);
/// Size of the socket read buffer and of file reads.
const IO_BUF: usize = MAX_CHUNK;
/// After an error that ends the connection by the protocol (protocol
/// violation, version, timeout, unauthorized) came as the answer to a
/// request: how long to wait for the close that confirms it. The server
/// closes right after such an error, so the close follows at once.
const CLOSE_WAIT: Duration = Duration::from_millis(300);

/// Progress of one transfer, reported by the client while it runs.
pub trait Progress {
    /// The transfer starts; `total` bytes, `done` already there (resume).
    fn start(&mut self, total: u64, done: u64);
    /// `done` bytes of `total` have moved.
    fn advance(&mut self, done: u64);
    /// The transfer ended (successfully or not).
    fn finish(&mut self);
    /// Whether the user asked to stop this transfer; polled between chunks.
    fn cancelled(&self) -> bool {
        false
    }
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _: u64, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

/// Restarting a resumed transfer whose prefix is not the same data on
/// both sides (the source changed, or the part is another file's): the
/// transfer is cancelled, and once the server confirmed with
/// `Error(Cancelled)` the same request is asked again from offset 0, so a
/// file is sent whole, never mixed. `put` and `get` share it.
#[derive(Default)]
struct Restart {
    /// The cancel went out; the server's confirmation is awaited.
    pending: bool,
}

impl Restart {
    /// Whether `e` is the server's confirmation of the cancel.
    fn confirmed_by(&self, e: &RemoteError) -> bool {
        self.pending && e.code == ErrorCode::Cancelled
    }
}

/// A connection to an `ftxd`.
///
/// Once the connection is lost (the server closed it, ended it with an
/// error, stopped answering, or the network failed), the call that found
/// out returns [`ClientError::Lost`] and every later call fails at once
/// with [`ClientError::NotConnected`]; nothing reconnects here (the shell
/// connects a new `Client` when it needs one: [`Client::check_alive`]
/// tells it, without waiting, whether this one is still usable).
pub struct Client {
    stream: Stream,
    session: ClientSession,
    server: String,
    last_resumable: bool,
    /// Set when the connection was lost, with the first reason found.
    lost: Option<LostReason>,
    /// The server's feature bits, from its `Welcome`.
    features: u32,
    /// The protocol version the server chose, from its `Welcome`.
    version: u16,
    /// The session was closed by the end of the stream (no error frame).
    closed_by_eof: bool,
}

impl Client {
    /// Connects to `addr` (`HOST:PORT`) over plain TCP without a token
    /// and completes the handshake.
    pub fn connect(addr: &str) -> Result<Client, ClientError> {
        Client::connect_with(addr, &ConnectOptions::plain())
    }

    /// Connects to `addr` as `options` say (TLS pinned to a fingerprint or
    /// plain; the token) and completes the handshake.
    pub fn connect_with(addr: &str, options: &ConnectOptions) -> Result<Client, ClientError> {
        let sock = tcp_connect(addr)?;
        let stream = match &options.pin {
            None => Stream::Plain(sock),
            Some(pin) => tls_handshake(addr, sock, Some(pin.clone()))?.0,
        };
        let mut session = ClientSession::new(options.token.clone());
        // Downloads are hashed by `DownloadHasher`, on a second thread
        // when they are large.
        session.hash_downloads_outside();
        let mut client = Client {
            stream,
            session,
            server: String::new(),
            last_resumable: false,
            lost: None,
            closed_by_eof: false,
            features: 0,
            version: 0,
        };
        let connect_err = |source| ClientError::Connect {
            addr: addr.to_owned(),
            source,
        };
        client
            .stream
            .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(connect_err)?;
        match client.next_event()? {
            ClientEvent::Connected {
                server,
                features,
                version,
            } => {
                client.server = server;
                client.features = features;
                client.version = version;
            }
            other => return Err(client.event_error(other)),
        }
        client
            .stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(connect_err)?;
        Ok(client)
    }

    /// Why the connection was lost, once it was; `None` while it is usable
    /// as far as this client knows.
    pub fn lost(&self) -> Option<&LostReason> {
        self.lost.as_ref()
    }

    /// Whether the connection still looks usable, found out without
    /// waiting and without sending anything: false once it is known lost,
    /// or when the server closed it (or sent the error it closes with,
    /// such as its idle timeout) since the last request. The reason is
    /// then [`Client::lost`]. A connection that died without a word (a
    /// cable pulled) still looks usable: the next request finds out.
    pub fn check_alive(&mut self) -> bool {
        if self.lost.is_some() {
            return false;
        }
        match self.read_between_requests(Duration::ZERO) {
            Ok(()) => true,
            // Any frame while no request runs ends the connection, even
            // one that would only refuse a request.
            Err(ClientError::Remote(e)) => {
                let _ = self.lose(LostReason::Ended(e));
                false
            }
            Err(_) => false,
        }
    }

    /// Closes the connection from this side; every later call fails with
    /// [`ClientError::NotConnected`]`(`[`LostReason::Closed`]`)`.
    pub fn close(&mut self) {
        let _ = self.lose(LostReason::Closed);
    }

    /// The server's name and version, as it announced itself.
    pub fn server_name(&self) -> &str {
        &self.server
    }

    /// The protocol version in use, as the server chose it.
    pub fn protocol_version(&self) -> u16 {
        self.version
    }

    /// Lists a remote directory ("" for the root), sorted by name.
    pub fn list(&mut self, path: &str) -> Result<Vec<Entry>, ClientError> {
        self.begin()?;
        let queued = self.session.list(path);
        queued.map_err(|e| self.command_error(e))?;
        match self.next_event()? {
            ClientEvent::Listing(mut v) => {
                // A server lists in directory order, as it reads.
                v.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(v)
            }
            other => Err(self.event_error(other)),
        }
    }

    /// Creates a remote directory.
    pub fn mkdir(&mut self, path: &str) -> Result<(), ClientError> {
        self.begin()?;
        let queued = self.session.mkdir(path);
        queued.map_err(|e| self.command_error(e))?;
        self.expect_ok()
    }

    /// True when the server lists modes and serves [`Client::set_attrs`]
    /// and [`Client::space`].
    pub fn has_attrs(&self) -> bool {
        self.features & FEATURE_ATTRS != 0
    }

    /// Sets a remote file's or directory's permission bits (at most
    /// `0o777`) and/or modification time (Unix seconds).
    pub fn set_attrs(
        &mut self,
        path: &str,
        mode: Option<u16>,
        mtime: Option<i64>,
    ) -> Result<(), ClientError> {
        self.require_attrs()?;
        self.begin()?;
        let queued = self.session.set_attrs(path, mode, mtime);
        queued.map_err(|e| self.command_error(e))?;
        self.expect_ok()
    }

    /// Size of the server's file system holding `path` and the bytes an
    /// upload may still use.
    pub fn space(&mut self, path: &str) -> Result<(u64, u64), ClientError> {
        self.require_attrs()?;
        self.begin()?;
        let queued = self.session.statfs(path);
        queued.map_err(|e| self.command_error(e))?;
        match self.next_event()? {
            ClientEvent::Space { total, avail } => Ok((total, avail)),
            other => Err(self.event_error(other)),
        }
    }

    /// This client's interrupted uploads in a remote directory, as entries
    /// named for their targets (size: the bytes the server holds).
    pub fn list_parts(&mut self, dir: &str) -> Result<Vec<Entry>, ClientError> {
        if self.features & FEATURE_PARTS == 0 {
            return Err(ClientError::Unsupported);
        }
        self.begin()?;
        let queued = self.session.list_parts(dir);
        queued.map_err(|e| self.command_error(e))?;
        match self.next_event()? {
            ClientEvent::Listing(mut v) => {
                v.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(v)
            }
            other => Err(self.event_error(other)),
        }
    }

    /// Drops this client's interrupted upload of `path` on the server.
    pub fn discard_part(&mut self, path: &str) -> Result<(), ClientError> {
        if self.features & FEATURE_PARTS == 0 {
            return Err(ClientError::Unsupported);
        }
        self.begin()?;
        let queued = self.session.discard_part(path);
        queued.map_err(|e| self.command_error(e))?;
        self.expect_ok()
    }

    fn require_attrs(&self) -> Result<(), ClientError> {
        if self.has_attrs() {
            Ok(())
        } else {
            Err(ClientError::Unsupported)
        }
    }

    /// Removes a remote file or empty directory.
    pub fn remove(&mut self, path: &str) -> Result<(), ClientError> {
        self.begin()?;
        let queued = self.session.remove(path);
        queued.map_err(|e| self.command_error(e))?;
        self.expect_ok()
    }

    /// Renames a remote file or directory; never replaces an existing name.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), ClientError> {
        self.begin()?;
        let queued = self.session.rename(from, to);
        queued.map_err(|e| self.command_error(e))?;
        self.expect_ok()
    }

    /// The prefixes differ: cancels the transfer under way; the server's
    /// answer then goes to [`Client::restart`].
    fn cancel_for_restart(&mut self, restart: &mut Restart) {
        self.session.cancel();
        restart.pending = true;
    }

    /// The restart step, once the server confirmed the cancel
    /// ([`Restart::confirmed_by`]): `ask` queues the same request again
    /// from offset 0.
    fn restart(
        &mut self,
        restart: &mut Restart,
        ask: impl FnOnce(&mut ClientSession) -> Result<(), CommandError>,
    ) -> Result<(), ClientError> {
        restart.pending = false;
        let queued = ask(&mut self.session);
        queued.map_err(|e| self.command_error(e))
    }

    /// Whether the last transfer that started is kept for `reput`/`reget`
    /// when it fails by interruption.
    pub fn last_transfer_resumable(&self) -> bool {
        self.last_resumable
    }

    fn expect_ok(&mut self) -> Result<(), ClientError> {
        match self.next_event()? {
            ClientEvent::Ok => Ok(()),
            other => Err(self.event_error(other)),
        }
    }

    /// Sends upload bytes: straight from `data` behind the frame header
    /// the session gives (one copy fewer than queueing them), or queued
    /// when other output is pending.
    fn send_file_data(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.flush()?;
        match self.session.send_data_direct(data) {
            Some(header) => {
                if let Err(e) = write_both(&mut self.stream, &header, data) {
                    return Err(self.io_failed(e));
                }
            }
            None => self.session.send_data(data),
        }
        self.flush()
    }

    /// Writes everything the session has queued.
    fn flush(&mut self) -> Result<(), ClientError> {
        loop {
            let out = self.session.poll_transmit();
            if out.is_empty() {
                return Ok(());
            }
            match self.stream.write(out) {
                Ok(0) => return Err(self.io_failed(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.session.consume_transmit(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_failed(e)),
            }
        }
    }

    /// Blocks until some bytes arrive and hands them to the session.
    fn read_some(&mut self) -> Result<(), ClientError> {
        loop {
            match self.stream.read(self.session.input_buffer(IO_BUF)) {
                Ok(0) => {
                    self.feed_eof();
                    return Ok(());
                }
                Ok(n) => {
                    self.session.handle_input_filled(n);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The server may have closed after an error frame we have
                // not read yet; let the session report that first.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    self.feed_eof();
                    return Ok(());
                }
                Err(e) => return Err(self.io_failed(e)),
            }
        }
    }

    /// Reads what has already arrived, without waiting: `Ok(true)` when
    /// bytes or the end of the stream were handed to the session,
    /// `Ok(false)` when nothing was there.
    fn read_now(&mut self) -> io::Result<bool> {
        self.stream.socket().set_nonblocking(true)?;
        let read = loop {
            match self.stream.read(self.session.input_buffer(IO_BUF)) {
                Ok(0) => {
                    self.feed_eof();
                    break Ok(true);
                }
                Ok(n) => {
                    self.session.handle_input_filled(n);
                    break Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(false),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    self.feed_eof();
                    break Ok(true);
                }
                Err(e) => break Err(e),
            }
        };
        self.stream.socket().set_nonblocking(false)?;
        read
    }

    /// The server closed its end: tell the session, remembering that the
    /// end of the stream (not an error frame) is what closed it.
    fn feed_eof(&mut self) {
        if !self.session.is_closed() {
            self.closed_by_eof = true;
        }
        self.session.handle_eof();
    }

    /// Flushes, then reads until the session produces an event.
    fn next_event(&mut self) -> Result<ClientEvent, ClientError> {
        loop {
            if let Some(ev) = self.session.poll_event() {
                return Ok(ev);
            }
            if self.session.is_closed() {
                return Err(self.lose(LostReason::ServerClosed));
            }
            self.flush()?;
            self.read_some()?;
        }
    }

    /// Before a request: fails at once when the connection was lost
    /// before, and reads what the server sent while no request ran (an
    /// idle timeout's error, its close), so that it is reported as the end
    /// of the connection, never as the answer to this request.
    fn begin(&mut self) -> Result<(), ClientError> {
        if let Some(why) = &self.lost {
            return Err(ClientError::NotConnected(why.clone()));
        }
        self.read_between_requests(Duration::ZERO)
    }

    /// Hands the session what arrives within `wait` while no request runs
    /// (nothing may: any frame then ends the connection). `Err` once the
    /// connection turned out to be lost.
    fn read_between_requests(&mut self, wait: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(ev) = self.session.poll_event() {
                return Err(self.event_error(ev));
            }
            if self.session.is_closed() {
                return Err(self.lose(LostReason::ServerClosed));
            }
            match self.read_now() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return Err(self.io_failed(e)),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !wait_readable(self.stream.socket(), left) {
                return Ok(());
            }
        }
    }

    /// Records that the connection is lost (the first reason found stays)
    /// and closes the socket; the error to return for it.
    fn lose(&mut self, why: LostReason) -> ClientError {
        if self.lost.is_none() {
            self.lost = Some(why);
            let _ = self.stream.socket().shutdown(std::net::Shutdown::Both);
        }
        ClientError::Lost(self.lost.clone().unwrap_or(LostReason::ServerClosed))
    }

    /// A socket read or write failed: the connection is lost. When the
    /// server simply went away, what it sent before may say why.
    fn io_failed(&mut self, e: io::Error) -> ClientError {
        let mut why = LostReason::from_io(&e);
        if why == LostReason::ServerClosed {
            if let Some(said) = self.last_words() {
                why = LostReason::Ended(said);
            }
        }
        self.lose(why)
    }

    /// The error frame the server sent before it closed, if one is still
    /// to be read (best effort, without waiting).
    fn last_words(&mut self) -> Option<RemoteError> {
        for _ in 0..64 {
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    ClientEvent::Failed(e) => return Some(e),
                    ClientEvent::Closed(e) if !self.closed_by_eof => return Some(e),
                    _ => {}
                }
            }
            if self.session.is_closed() || !matches!(self.read_now(), Ok(true)) {
                return None;
            }
        }
        None
    }

    /// The error for an event that is not the answer the request expects.
    /// An event no request can get means the session and this client
    /// disagree: the connection cannot be trusted any more.
    fn event_error(&mut self, ev: ClientEvent) -> ClientError {
        match ev {
            ClientEvent::Failed(e) => self.failed(e),
            ClientEvent::Closed(_) if self.closed_by_eof => self.lose(LostReason::ServerClosed),
            ClientEvent::Closed(e) => self.lose(LostReason::Ended(e)),
            other => self.lose(LostReason::Ended(RemoteError::new(
                ErrorCode::Protocol,
                format!("unexpected reply from server: {other:?}"),
            ))),
        }
    }

    /// The server failed the request. An error that by the protocol ends
    /// the connection (a protocol violation, version, timeout, access) is
    /// the connection's end when the close follows: it may have been sent
    /// before the request arrived, and it is no answer to it.
    fn failed(&mut self, e: RemoteError) -> ClientError {
        let ends = matches!(
            e.code,
            ErrorCode::Protocol | ErrorCode::Version | ErrorCode::Timeout | ErrorCode::Unauthorized
        );
        if ends && self.session.is_idle() && self.read_between_requests(CLOSE_WAIT).is_err() {
            // The close confirms it; the server's error says why.
            self.lost = Some(LostReason::Ended(e.clone()));
            return ClientError::Lost(LostReason::Ended(e));
        }
        ClientError::Remote(e)
    }

    /// A request could not be queued: the session is closed (the
    /// connection is lost) or still busy with an earlier request (the two
    /// sides are out of step, which only a lost connection explains).
    fn command_error(&mut self, e: CommandError) -> ClientError {
        let why = match e {
            CommandError::Closed => LostReason::ServerClosed,
            CommandError::Busy => LostReason::Ended(RemoteError::new(
                ErrorCode::Protocol,
                "client and server are out of step",
            )),
        };
        self.lose(why)
    }

    /// After a local failure mid-transfer: consume events until the request
    /// ended, so the next command starts in step. A connection lost
    /// meanwhile is recorded for the next call to report. Returns the
    /// stored name and size when an upload's `PutDone` came meanwhile
    /// (the server finished before our `Cancel` reached it).
    fn drain_until_idle(&mut self) -> Option<(String, u64)> {
        let mut stored = None;
        for _ in 0..1_000_000 {
            if self.session.is_idle() || self.lost.is_some() {
                break;
            }
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    ClientEvent::Closed(_) => {
                        let _ = self.event_error(ev);
                        return stored;
                    }
                    // The upload was finished before our Cancel reached the
                    // server: it is stored, and verified.
                    ClientEvent::PutDone { name, size } => stored = Some((name, size)),
                    _ => {}
                }
            }
            if self.session.is_idle() {
                break;
            }
            if self.session.is_closed() {
                let _ = self.lose(LostReason::ServerClosed);
                break;
            }
            if self.flush().and_then(|_| self.read_some()).is_err() {
                break;
            }
        }
        stored
    }
}

/// Waits at most `timeout` (not zero) for `sock` to have something to read
/// (data, the end of the stream or an error), without taking it; the
/// socket's read timeout is [`REPLY_TIMEOUT`] again afterwards.
fn wait_readable(sock: &TcpStream, timeout: Duration) -> bool {
    if sock.set_read_timeout(Some(timeout)).is_err() {
        return false;
    }
    let readable = match sock.peek(&mut [0u8; 1]) {
        Ok(_) => true,
        Err(e) => !is_timeout(&e) && e.kind() != io::ErrorKind::Interrupted,
    };
    let _ = sock.set_read_timeout(Some(REPLY_TIMEOUT));
    readable
}

/// Opens the TCP connection to `addr`, trying each address it resolves to.
fn tcp_connect(addr: &str) -> Result<TcpStream, ClientError> {
    let connect_err = |source| ClientError::Connect {
        addr: addr.to_owned(),
        source,
    };
    let addrs: Vec<_> = addr.to_socket_addrs().map_err(connect_err)?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address found");
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => {
                s.set_nodelay(true).ok();
                // The TLS handshake must not hang on a silent server.
                s.set_read_timeout(Some(HANDSHAKE_TIMEOUT))
                    .map_err(connect_err)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(connect_err(last))
}

fn tls_handshake(
    addr: &str,
    sock: TcpStream,
    pin: Option<String>,
) -> Result<(Stream, String), ClientError> {
    let expected = pin.clone();
    transport::handshake(sock, pin).map_err(|e| match e {
        HandshakeError::Mismatch { presented } => ClientError::IdentityChanged(IdentityChanged {
            host: addr.to_owned(),
            expected: expected.unwrap_or_default(),
            presented,
        }),
        HandshakeError::NotTls(answer) => ClientError::NotTls {
            addr: addr.to_owned(),
            answer: answer.map(|(code, msg)| RemoteError::new(code, msg)),
        },
        HandshakeError::Other(source) if is_timeout(&source) => ClientError::Connect {
            addr: addr.to_owned(),
            source: io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"),
        },
        HandshakeError::Other(source) => ClientError::Connect {
            addr: addr.to_owned(),
            source: io::Error::new(source.kind(), format!("TLS handshake failed: {source}")),
        },
    })
}

/// Connects to `addr` over TLS accepting any certificate, only to learn
/// its fingerprint (for trust on first use); sends nothing else.
pub fn probe_fingerprint(addr: &str) -> Result<String, ClientError> {
    let sock = tcp_connect(addr)?;
    let (stream, presented) = tls_handshake(addr, sock, None)?;
    drop(stream);
    Ok(presented)
}

/// Writes `a` then `b` with as few system calls as the socket allows.
fn write_both(stream: &mut impl Write, a: &[u8], b: &[u8]) -> io::Result<()> {
    let mut bufs = [IoSlice::new(a), IoSlice::new(b)];
    let mut rest: &mut [IoSlice] = &mut bufs;
    while !rest.is_empty() {
        match stream.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod lost_tests {
    //! A lost connection, against a scripted server on a local socket:
    //! said once with its reason, then every call refused at once.

    use super::*;
    use crate::proto::frame;
    use crate::proto::limits::{MIN_WINDOW, PROTOCOL_VERSION};
    use crate::proto::message::Message;
    use std::net::TcpListener;
    use std::path::Path;
    use std::sync::mpsc;
    use std::thread;

    /// The server's end of one connection.
    struct Peer {
        sock: TcpStream,
        buf: Vec<u8>,
    }

    impl Peer {
        fn recv(&mut self) -> Message {
            loop {
                if let Some((msg, used)) = frame::decode(&self.buf).expect("client frame") {
                    self.buf.drain(..used);
                    return msg;
                }
                let mut chunk = [0u8; 4096];
                let n = self.sock.read(&mut chunk).expect("read from client");
                assert!(n > 0, "client closed");
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }

        fn send(&mut self, msg: &Message) {
            let mut out = Vec::new();
            frame::encode(msg, &mut out);
            self.sock.write_all(&out).expect("write to client");
        }

        fn error(&mut self, code: ErrorCode, message: &str) {
            self.send(&Message::Error {
                code,
                message: message.into(),
            });
        }
    }

    /// A client connected to a server that completes the handshake and
    /// then runs `script`; the receiver says when the script is done.
    fn scripted(script: impl FnOnce(&mut Peer) + Send + 'static) -> (Client, mpsc::Receiver<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (done_tx, done_rx) = mpsc::channel();
        thread::spawn(move || {
            let (sock, _) = listener.accept().expect("accept");
            let mut peer = Peer {
                sock,
                buf: Vec::new(),
            };
            assert!(matches!(peer.recv(), Message::Hello { .. }));
            peer.send(&Message::Welcome {
                version: PROTOCOL_VERSION,
                flags: 0,
                window: MIN_WINDOW,
                server: "scripted".into(),
            });
            script(&mut peer);
            let _ = done_tx.send(());
            // Dropping `peer` closes the connection.
        });
        let client = Client::connect(&addr).expect("connect");
        (client, done_rx)
    }

    fn empty_listing(peer: &mut Peer) {
        assert!(matches!(peer.recv(), Message::List { .. }));
        peer.send(&Message::Entries {
            entries: Vec::new(),
            last: true,
        });
    }

    #[test]
    fn a_close_between_requests_is_the_connection_lost_once() {
        let (mut client, done) = scripted(|_| {});
        done.recv().unwrap();
        let e = client.list("").unwrap_err();
        assert!(
            matches!(e, ClientError::Lost(LostReason::ServerClosed)),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "connection lost: server closed the connection"
        );
        assert!(e.is_fatal());
        assert_eq!(client.lost(), Some(&LostReason::ServerClosed));
        for e in [
            client.list("").unwrap_err(),
            client.mkdir("d").unwrap_err(),
            client.remove("d").unwrap_err(),
            client.rename("a", "b").unwrap_err(),
        ] {
            assert!(matches!(e, ClientError::NotConnected(_)), "{e:?}");
            assert_eq!(e.to_string(), "not connected (connection lost)");
            assert!(e.is_fatal());
        }
    }

    #[test]
    fn nothing_is_touched_locally_once_the_connection_is_lost() {
        let (mut client, done) = scripted(|_| {});
        done.recv().unwrap();
        assert!(client.list("").is_err());
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x");
        let e = client
            .get("x", &target, false, false, &mut NoProgress)
            .unwrap_err();
        assert!(matches!(e, ClientError::NotConnected(_)), "{e:?}");
        let e = client
            .put(
                &dir.path().join("missing"),
                "x",
                false,
                false,
                &mut NoProgress,
            )
            .unwrap_err();
        assert!(matches!(e, ClientError::NotConnected(_)), "{e:?}");
        assert_eq!(fs_names(dir.path()), Vec::<String>::new());
    }

    fn fs_names(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn an_error_sent_while_idle_is_the_reason_not_the_answer() {
        let (mut client, done) = scripted(|peer| {
            empty_listing(peer);
            peer.error(ErrorCode::Timeout, "connection idle for too long");
        });
        assert!(client.list("").unwrap().is_empty());
        done.recv().unwrap();
        let e = client.list("").unwrap_err();
        assert_eq!(
            e.to_string(),
            "connection lost: timed out: connection idle for too long"
        );
        assert_eq!(e.code(), Some(ErrorCode::Timeout));
        assert!(matches!(
            client.mkdir("d").unwrap_err(),
            ClientError::NotConnected(LostReason::Ended(_))
        ));
    }

    #[test]
    fn a_closing_error_in_answer_to_a_request_is_the_connection_lost() {
        let (mut client, _done) = scripted(|peer| {
            assert!(matches!(peer.recv(), Message::List { .. }));
            peer.error(ErrorCode::Protocol, "unexpected frame type 0x10 here");
        });
        let e = client.list("").unwrap_err();
        assert!(
            matches!(&e, ClientError::Lost(LostReason::Ended(r)) if r.code == ErrorCode::Protocol),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "connection lost: protocol error: unexpected frame type 0x10 here"
        );
        assert!(matches!(
            client.list("").unwrap_err(),
            ClientError::NotConnected(_)
        ));
    }

    #[test]
    fn a_refusal_keeps_the_connection() {
        let (mut client, _done) = scripted(|peer| {
            assert!(matches!(peer.recv(), Message::List { .. }));
            peer.error(ErrorCode::NotFound, "");
            // A timeout that does not end the connection is only a failure.
            assert!(matches!(peer.recv(), Message::List { .. }));
            peer.error(ErrorCode::Timeout, "slow disk");
            empty_listing(peer);
        });
        let e = client.list("nope").unwrap_err();
        assert!(
            matches!(&e, ClientError::Remote(r) if r.code == ErrorCode::NotFound),
            "{e:?}"
        );
        assert!(!e.is_fatal());
        let e = client.list("").unwrap_err();
        assert!(
            matches!(&e, ClientError::Remote(r) if r.code == ErrorCode::Timeout),
            "{e:?}"
        );
        assert!(client.list("").unwrap().is_empty());
        assert_eq!(client.lost(), None);
    }

    #[test]
    fn check_alive_finds_a_close_or_an_idle_timeout_without_a_request() {
        // A server that keeps the connection: alive, and still usable.
        let (mut client, _done) = scripted(|peer| {
            empty_listing(peer);
            thread::sleep(std::time::Duration::from_millis(500));
        });
        assert!(client.check_alive());
        assert!(client.list("").unwrap().is_empty());
        assert!(client.check_alive());

        // Closed between requests.
        let (mut client, done) = scripted(|_| {});
        done.recv().unwrap();
        thread::sleep(std::time::Duration::from_millis(50));
        assert!(!client.check_alive());
        assert_eq!(client.lost(), Some(&LostReason::ServerClosed));

        // The idle timeout's error, then the close: that is the reason.
        let (mut client, done) = scripted(|peer| {
            peer.error(ErrorCode::Timeout, "connection idle for too long");
        });
        done.recv().unwrap();
        thread::sleep(std::time::Duration::from_millis(50));
        assert!(!client.check_alive());
        assert!(
            matches!(client.lost(), Some(LostReason::Ended(e)) if e.code == ErrorCode::Timeout),
            "{:?}",
            client.lost()
        );
    }

    #[test]
    fn a_closed_client_sends_nothing_more() {
        let (mut client, _done) =
            scripted(|_| thread::sleep(std::time::Duration::from_millis(500)));
        client.close();
        assert!(!client.check_alive());
        assert!(matches!(
            client.list("").unwrap_err(),
            ClientError::NotConnected(LostReason::Closed)
        ));
    }

    #[test]
    fn lost_reasons_in_plain_words() {
        let io = |k: io::ErrorKind| LostReason::from_io(&io::Error::from(k));
        assert_eq!(io(io::ErrorKind::BrokenPipe), LostReason::ServerClosed);
        assert_eq!(io(io::ErrorKind::ConnectionReset), LostReason::ServerClosed);
        assert_eq!(io(io::ErrorKind::WouldBlock), LostReason::NoAnswer);
        assert_eq!(
            LostReason::NoAnswer.to_string(),
            "timed out waiting for the server"
        );
        let net = io(io::ErrorKind::HostUnreachable);
        assert!(net.to_string().starts_with("network error: "), "{net}");
    }
}
