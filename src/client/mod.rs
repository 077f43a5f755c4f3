//! The client API the shell calls: connect, list, put, get and the simple
//! remote operations, each a blocking call that drives a `ClientSession`
//! over a TCP stream, plain or TLS ([`transport`]) with the server pinned
//! by fingerprint ([`known_hosts`]). Handles local files (temporary file, verify, rename).
//! Never prints: results and typed errors go back to the caller, progress
//! goes through the [`Progress`] trait.

mod hasher;
pub mod known_hosts;
pub mod local;
pub mod transport;

use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice, Read, Seek, SeekFrom, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::aligned::AlignedBuf;
use crate::proto::error::{ErrorCode, RemoteError};
use crate::proto::limits::MAX_CHUNK;
use crate::proto::message::Entry;
use crate::proto::session::{ClientEvent, ClientSession};

use hasher::DownloadHasher;
use known_hosts::IdentityChanged;
use local::LocalDownload;
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

/// What went wrong in a client operation.
#[derive(Debug)]
pub enum ClientError {
    /// The TCP connection could not be opened.
    Connect {
        /// `HOST:PORT` as given.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The server refused or failed the request (the connection is usable).
    Remote(RemoteError),
    /// The connection is gone (server error, protocol violation, close).
    Closed(RemoteError),
    /// The network failed.
    Io(io::Error),
    /// A local file could not be read or written.
    Local {
        /// The local path involved.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The local source is not a regular file.
    LocalNotAFile(PathBuf),
    /// The local file changed size while it was being sent.
    LocalChanged(PathBuf),
    /// The user cancelled the transfer ([`Progress::cancelled`]); the
    /// connection is usable and the transfer ended like a failed one
    /// (an interrupted part stays resumable).
    Cancelled,
    /// The server presented another certificate than the pinned one.
    IdentityChanged(IdentityChanged),
    /// TLS was asked for but the server answered in plain frames.
    NotTls {
        /// `HOST:PORT`.
        addr: String,
        /// The server's plain error, if it sent one (busy, ...).
        answer: Option<RemoteError>,
    },
}

impl ClientError {
    /// The protocol error code behind this error, when there is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Remote(e) | ClientError::Closed(e) => Some(e.code),
            _ => None,
        }
    }

    /// True when the connection can no longer be used.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ClientError::Closed(_)
                | ClientError::Io(_)
                | ClientError::Connect { .. }
                | ClientError::IdentityChanged(_)
                | ClientError::NotTls { .. }
        )
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { addr, source } => {
                write!(f, "cannot connect to {addr}: {source}")
            }
            ClientError::Remote(e) => write!(f, "{e}"),
            ClientError::Closed(e) => write!(f, "connection lost: {e}"),
            ClientError::Io(e) if is_timeout(e) => write!(f, "timed out waiting for the server"),
            ClientError::Io(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::UnexpectedEof
                ) =>
            {
                write!(f, "connection lost: {e}")
            }
            ClientError::Io(e) => write!(f, "network error: {e}"),
            ClientError::Local { path, source } => {
                write!(
                    f,
                    "local file '{}': {}",
                    path.display(),
                    local_reason(source)
                )
            }
            ClientError::LocalNotAFile(p) => {
                write!(f, "local file '{}': is a directory", p.display())
            }
            ClientError::IdentityChanged(c) => write!(f, "{c}"),
            ClientError::NotTls {
                answer: Some(e), ..
            } => write!(f, "{e}"),
            ClientError::NotTls { addr, answer: None } => write!(
                f,
                "the server at {addr} does not speak TLS (is ftxd running with --plain?); \
                 use ftx --plain only on a trusted network"
            ),
            ClientError::LocalChanged(p) => {
                write!(
                    f,
                    "local file '{}' changed while it was being sent",
                    p.display()
                )
            }
            ClientError::Cancelled => write!(f, "cancelled"),
        }
    }
}

impl std::error::Error for ClientError {}

/// True when `stored`, the name a server says it stored an upload of
/// `requested` under, is a valid remote path in the same directory: the
/// server is not trusted to name anything else.
fn stored_name_fits(requested: &str, stored: &str) -> bool {
    match (
        crate::proto::path::RemotePath::parse(requested),
        crate::proto::path::RemotePath::parse(stored),
    ) {
        (Ok(r), Ok(s)) => s.file_name().is_some() && s.parent() == r.parent(),
        _ => false,
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A local I/O error in plain words ("not found", "permission denied", ...).
fn local_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "not found".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::IsADirectory => "is a directory".into(),
        io::ErrorKind::StorageFull => "no space left".into(),
        _ => e.to_string(),
    }
}

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

/// A finished upload.
#[derive(Debug, Clone)]
pub struct PutOutcome {
    /// The name the server stored it under.
    pub stored: String,
    /// Bytes in the file.
    pub size: u64,
    /// Wall time of the transfer.
    pub elapsed: Duration,
    /// Bytes the server already held and that were not sent again.
    pub resumed_from: u64,
    /// The server's part was not this file's data: it was sent whole.
    pub restarted: bool,
    /// An interrupted upload of the name (this many bytes) is still on the
    /// server, untouched: `reput` could continue it.
    pub partial: u64,
}

/// A finished download.
#[derive(Debug, Clone)]
pub struct GetOutcome {
    /// Where the file was stored locally.
    pub path: PathBuf,
    /// Bytes in the file.
    pub size: u64,
    /// Wall time of the transfer.
    pub elapsed: Duration,
    /// Bytes already held locally and not fetched again.
    pub resumed_from: u64,
    /// The local part was not the server's data: it was fetched whole.
    pub restarted: bool,
    /// An interrupted download to the same name (this many bytes) is still
    /// there, untouched: `reget` could continue it.
    pub partial: u64,
}

/// A connection to an `ftxd`.
pub struct Client {
    stream: Stream,
    session: ClientSession,
    server: String,
    last_resumable: bool,
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
        };
        client
            .stream
            .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(ClientError::Io)?;
        match client.next_event()? {
            ClientEvent::Connected { server, .. } => client.server = server,
            other => return Err(unexpected(other)),
        }
        client
            .stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(ClientError::Io)?;
        Ok(client)
    }

    /// The server's name and version, as it announced itself.
    pub fn server_name(&self) -> &str {
        &self.server
    }

    /// Lists a remote directory ("" for the root).
    pub fn list(&mut self, path: &str) -> Result<Vec<Entry>, ClientError> {
        self.session.list(path).map_err(command_error)?;
        match self.next_event()? {
            ClientEvent::Listing(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    }

    /// Creates a remote directory.
    pub fn mkdir(&mut self, path: &str) -> Result<(), ClientError> {
        self.session.mkdir(path).map_err(command_error)?;
        self.expect_ok()
    }

    /// Removes a remote file or empty directory.
    pub fn remove(&mut self, path: &str) -> Result<(), ClientError> {
        self.session.remove(path).map_err(command_error)?;
        self.expect_ok()
    }

    /// Renames a remote file or directory; never replaces an existing name.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), ClientError> {
        self.session.rename(from, to).map_err(command_error)?;
        self.expect_ok()
    }

    /// Uploads `local` as `remote`. Without `force`, a taken name gives
    /// `stem_N.ext` on the server; the outcome says the stored name. With
    /// `resume`, continues the server's interrupted upload of `remote` after
    /// checking that its prefix is the same data (BLAKE3); a prefix that
    /// differs restarts from scratch, and with nothing to resume the whole
    /// file is sent — the outcome says which.
    pub fn put(
        &mut self,
        local: &Path,
        remote: &str,
        force: bool,
        resume: bool,
        progress: &mut dyn Progress,
    ) -> Result<PutOutcome, ClientError> {
        let local_err = |source| ClientError::Local {
            path: local.to_path_buf(),
            source,
        };
        let mut file = File::open(local).map_err(local_err)?;
        let meta = file.metadata().map_err(local_err)?;
        if !meta.is_file() {
            return Err(ClientError::LocalNotAFile(local.to_path_buf()));
        }
        let size = meta.len();
        let started = Instant::now();
        self.last_resumable = false;
        self.session
            .put(remote, size, resume.then_some(size), force)
            .map_err(command_error)?;
        let mut outcome = PutOutcome {
            stored: String::new(),
            size,
            elapsed: Duration::ZERO,
            resumed_from: 0,
            restarted: false,
            partial: 0,
        };
        // Aligned: see `aligned` for what a misaligned one costs.
        let mut fbuf = AlignedBuf::zeroed(IO_BUF);
        let mut sent = 0u64;
        // A fresh upload's data follows the request at once; a resumed one
        // waits for PutReady to say where to start.
        let early = !resume;
        let mut started_progress = early;
        if early {
            progress.start(size, 0);
        }
        let mut restart_pending = false;
        let result = loop {
            // Only once data flows: before that there is nothing to cancel.
            if started_progress && progress.cancelled() {
                break Err(ClientError::Cancelled);
            }
            let mut step: Option<Result<(), ClientError>> = None;
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    ClientEvent::PutReady {
                        offset,
                        digest,
                        partial,
                        resumable,
                        ..
                    } => {
                        outcome.partial = partial;
                        self.last_resumable = resumable;
                        if early {
                            continue;
                        }
                        sent = 0;
                        if offset > 0 {
                            let same = crate::partial::prefix_hasher(&file, offset)
                                .ok()
                                .filter(|h| *h.finalize().as_bytes() == digest);
                            match same {
                                Some(prefix) => {
                                    self.session.resume_with(prefix);
                                    sent = offset;
                                    outcome.resumed_from = offset;
                                }
                                None => {
                                    self.session.cancel();
                                    restart_pending = true;
                                    continue;
                                }
                            }
                        }
                        if let Err(e) = file.seek(SeekFrom::Start(sent)) {
                            step = Some(Err(local_err(e)));
                            break;
                        }
                        progress.start(size, sent);
                        started_progress = true;
                    }
                    ClientEvent::PutDone { name, size } => {
                        progress.advance(size);
                        progress.finish();
                        if !stored_name_fits(remote, &name) {
                            return Err(ClientError::Remote(RemoteError::new(
                                ErrorCode::Protocol,
                                "server reported a stored name outside the requested directory",
                            )));
                        }
                        outcome.stored = name;
                        outcome.size = size;
                        outcome.elapsed = started.elapsed();
                        return Ok(outcome);
                    }
                    ClientEvent::Failed(e) if restart_pending && e.code == ErrorCode::Cancelled => {
                        // The server's part is not our data: start over in it.
                        restart_pending = false;
                        outcome.restarted = true;
                        if let Err(e) = self.session.put(remote, size, Some(0), force) {
                            step = Some(Err(command_error(e)));
                            break;
                        }
                    }
                    other => {
                        if started_progress {
                            progress.finish();
                        }
                        return Err(event_error(other));
                    }
                }
            }
            if let Some(r) = step {
                break r;
            }
            let want = self.session.wants_data();
            if want > 0 {
                let n = match file.read(&mut fbuf[..want]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => break Err(local_err(e)),
                };
                if n == 0 {
                    break Err(ClientError::LocalChanged(local.to_path_buf()));
                }
                if let Err(e) = self.send_file_data(&fbuf[..n]) {
                    break Err(e);
                }
                sent += n as u64;
                progress.advance(sent);
                continue;
            }
            if let Err(e) = self.flush().and_then(|_| self.read_some()) {
                break Err(e);
            }
        };
        // Local failure mid-upload: tell the server, then wait for its answer
        // so the connection stays in step.
        if started_progress {
            progress.finish();
        }
        if let Err(e) = &result {
            if !e.is_fatal() {
                self.session.cancel();
                self.drain_until_idle();
            }
        }
        result.map(|()| outcome)
    }

    /// Downloads `remote` to `target` (a file path). The data goes to a
    /// hidden part file beside the target that is published under the
    /// final name after the digest matched; without `force` a taken name
    /// gives `stem_N.ext` locally. With `resume`, continues the part left by
    /// an interrupted download after checking that it is the same data as
    /// the server's prefix (BLAKE3); otherwise it restarts.
    pub fn get(
        &mut self,
        remote: &str,
        target: &Path,
        force: bool,
        resume: bool,
        progress: &mut dyn Progress,
    ) -> Result<GetOutcome, ClientError> {
        let started = Instant::now();
        let local_err = |source| ClientError::Local {
            path: target.to_path_buf(),
            source,
        };
        self.last_resumable = false;
        let (mut dl, stale) = if resume {
            (LocalDownload::resume(target, force).map_err(local_err)?, 0)
        } else {
            LocalDownload::create(target, force).map_err(local_err)?
        };
        let held = dl.held().map_err(local_err)?;
        self.session.get(remote, held).map_err(command_error)?;
        let mut outcome = GetOutcome {
            path: PathBuf::new(),
            size: 0,
            elapsed: Duration::ZERO,
            resumed_from: 0,
            restarted: false,
            partial: stale,
        };
        let mut failure: Option<ClientError> = None;
        let mut restart_pending = false;
        // Made at `GetReady`, from the offset the server chose.
        let mut hasher: Option<DownloadHasher> = None;
        loop {
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    ClientEvent::GetReady {
                        size,
                        offset,
                        digest,
                        ..
                    } => {
                        self.last_resumable = dl.resumable();
                        let mut from = 0;
                        if offset > 0 {
                            match crate::partial::prefix_hasher(&dl.file, offset) {
                                Ok(h) if *h.finalize().as_bytes() == digest => {
                                    hasher = Some(DownloadHasher::new(h, offset, &dl.file));
                                    from = offset;
                                }
                                _ => {
                                    self.session.cancel();
                                    restart_pending = true;
                                    continue;
                                }
                            }
                        } else if held > 0 {
                            outcome.restarted = true;
                        }
                        if from == 0 {
                            hasher = Some(DownloadHasher::new(blake3::Hasher::new(), 0, &dl.file));
                        }
                        outcome.resumed_from = from;
                        let placed = dl.seek_to(from).and_then(|()| {
                            // Blocks reserved up front: cheaper writes, and
                            // a local disk too small fails now, not midway.
                            match crate::partial::preallocate(&dl.file, from, size - from) {
                                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => Err(e),
                                _ => Ok(()),
                            }
                        });
                        if let Err(source) = placed {
                            failure = Some(local_err(source));
                            self.session.cancel();
                        }
                        progress.start(size, from);
                    }
                    ClientEvent::GetData { offset, len } => {
                        if failure.is_none() {
                            let data = self.session.data();
                            if let Err(source) = dl.file.write_all(data) {
                                failure = Some(local_err(source));
                                self.session.cancel();
                            } else {
                                if let Some(h) = hasher.as_mut() {
                                    h.update(data);
                                }
                                progress.advance(offset + len as u64);
                            }
                        }
                    }
                    ClientEvent::GetDone { size, unchecked } => {
                        progress.finish();
                        if let Some(f) = failure {
                            return Err(f);
                        }
                        let ours = match hasher.take().map(DownloadHasher::finalize) {
                            Some(Ok(d)) => Some(d),
                            Some(Err(source)) => return Err(local_err(source)),
                            None => None,
                        };
                        if unchecked.is_some_and(|theirs| Some(theirs) != ours) {
                            dl.discard();
                            return Err(ClientError::Remote(
                                crate::proto::session::integrity_failure(),
                            ));
                        }
                        outcome.path = dl.commit().map_err(local_err)?;
                        outcome.size = size;
                        outcome.elapsed = started.elapsed();
                        return Ok(outcome);
                    }
                    ClientEvent::Failed(e) if restart_pending && e.code == ErrorCode::Cancelled => {
                        // Our part is not the server's data: start over.
                        restart_pending = false;
                        outcome.restarted = true;
                        dl.seek_to(0).map_err(local_err)?;
                        self.session.get(remote, 0).map_err(command_error)?;
                    }
                    other => {
                        progress.finish();
                        if matches!(&other, ClientEvent::Failed(e) if e.code == ErrorCode::Integrity)
                        {
                            dl.discard();
                        }
                        return Err(failure.unwrap_or_else(|| event_error(other)));
                    }
                }
            }
            // Cancelled: end it like a local write failure (the part stays
            // for reget, the server is told), then read on until it agrees.
            if failure.is_none() && progress.cancelled() {
                failure = Some(ClientError::Cancelled);
                self.session.cancel();
            }
            self.flush()?;
            self.read_some()?;
        }
    }

    /// Whether the last transfer that started is kept for `reput`/`reget`
    /// when it fails by interruption.
    pub fn last_transfer_resumable(&self) -> bool {
        self.last_resumable
    }

    fn expect_ok(&mut self) -> Result<(), ClientError> {
        match self.next_event()? {
            ClientEvent::Ok => Ok(()),
            other => Err(event_error(other)),
        }
    }

    /// Sends upload bytes: straight from `data` behind the frame header
    /// the session gives (one copy fewer than queueing them), or queued
    /// when other output is pending.
    fn send_file_data(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.flush()?;
        match self.session.send_data_direct(data) {
            Some(header) => write_both(&mut self.stream, &header, data).map_err(ClientError::Io)?,
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
                Ok(0) => {
                    return Err(ClientError::Io(io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => self.session.consume_transmit(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
    }

    /// Blocks until some bytes arrive and hands them to the session.
    fn read_some(&mut self) -> Result<(), ClientError> {
        loop {
            match self.stream.read(self.session.input_buffer(IO_BUF)) {
                Ok(0) => {
                    self.session.handle_eof();
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
                    self.session.handle_eof();
                    return Ok(());
                }
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
    }

    /// Flushes, then reads until the session produces an event.
    fn next_event(&mut self) -> Result<ClientEvent, ClientError> {
        loop {
            if let Some(ev) = self.session.poll_event() {
                return Ok(ev);
            }
            if self.session.is_closed() {
                return Err(ClientError::Closed(RemoteError::new(
                    ErrorCode::Protocol,
                    "connection closed",
                )));
            }
            self.flush()?;
            self.read_some()?;
        }
    }

    /// After a local failure mid-transfer: consume events until the request
    /// ended, so the next command starts in step.
    fn drain_until_idle(&mut self) {
        for _ in 0..1_000_000 {
            if self.session.is_idle() || self.session.is_closed() {
                return;
            }
            while self.session.poll_event().is_some() {}
            if self.session.is_idle() || self.session.is_closed() {
                return;
            }
            if self.flush().and_then(|_| self.read_some()).is_err() {
                return;
            }
        }
    }
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

fn command_error(e: crate::proto::session::CommandError) -> ClientError {
    ClientError::Closed(RemoteError::new(ErrorCode::Protocol, e.to_string()))
}

fn event_error(ev: ClientEvent) -> ClientError {
    match ev {
        ClientEvent::Failed(e) => ClientError::Remote(e),
        ClientEvent::Closed(e) => ClientError::Closed(e),
        other => unexpected(other),
    }
}

fn unexpected(ev: ClientEvent) -> ClientError {
    match ev {
        ClientEvent::Failed(e) => ClientError::Remote(e),
        ClientEvent::Closed(e) => ClientError::Closed(e),
        other => ClientError::Closed(RemoteError::new(
            ErrorCode::Protocol,
            format!("unexpected reply from server: {other:?}"),
        )),
    }
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
mod distrust_tests {
    use super::stored_name_fits;

    #[test]
    fn a_stored_name_must_stay_in_the_requested_directory() {
        assert!(stored_name_fits("a.txt", "a_1.txt"));
        assert!(stored_name_fits("d/a.txt", "d/a_1.txt"));
        for bad in [
            "../a.txt",
            "/etc/passwd",
            "e/a.txt",
            "",
            "d/../a",
            "a\u{1b}[2J",
        ] {
            assert!(!stored_name_fits("d/a.txt", bad), "{bad:?}");
        }
        assert!(!stored_name_fits("a.txt", "d/a.txt"));
    }
}
