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
use crate::proto::message::{Entry, FEATURE_ATTRS};
use crate::proto::session::{ClientEvent, ClientSession, CommandError};

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
/// After an error that ends the connection by the protocol (protocol
/// violation, version, timeout, unauthorized) came as the answer to a
/// request: how long to wait for the close that confirms it. The server
/// closes right after such an error, so the close follows at once.
const CLOSE_WAIT: Duration = Duration::from_millis(300);

/// Why a connection was lost. Kept by the [`Client`], which then refuses
/// every later request with [`ClientError::NotConnected`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostReason {
    /// The server closed the connection (end of stream, or a reset)
    /// without saying why: it stopped, crashed or was killed.
    ServerClosed,
    /// The connection ended with this error: one the server sent when it
    /// closed (idle timeout, a protocol error it saw, access refused, ...)
    /// or a protocol violation by the server found here.
    Ended(RemoteError),
    /// The server did not answer within [`REPLY_TIMEOUT`].
    NoAnswer,
    /// The network failed (the system's words).
    Network(String),
}

impl LostReason {
    /// The reason behind a failed socket read or write.
    fn from_io(e: &io::Error) -> LostReason {
        match e.kind() {
            _ if is_timeout(e) => LostReason::NoAnswer,
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::WriteZero => LostReason::ServerClosed,
            _ => LostReason::Network(e.to_string()),
        }
    }
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostReason::ServerClosed => f.write_str("server closed the connection"),
            LostReason::Ended(e) => write!(f, "{e}"),
            LostReason::NoAnswer => f.write_str("timed out waiting for the server"),
            LostReason::Network(text) => write!(f, "network error: {text}"),
        }
    }
}

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
    /// The connection was lost during this call (or, when connecting, the
    /// server refused it). Returned once; later calls get
    /// [`ClientError::NotConnected`].
    Lost(LostReason),
    /// The connection was lost before this call (for this reason): nothing
    /// was sent.
    NotConnected(LostReason),
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
    /// The server is too old for the request (no [`FEATURE_ATTRS`]).
    Unsupported,
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
            ClientError::Remote(e) | ClientError::Lost(LostReason::Ended(e)) => Some(e.code),
            _ => None,
        }
    }

    /// True when the connection can no longer be used.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ClientError::Lost(_)
                | ClientError::NotConnected(_)
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
            ClientError::Lost(why) => write!(f, "connection lost: {why}"),
            ClientError::NotConnected(_) => f.write_str("not connected (connection lost)"),
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
            // The answer came before TLS: anyone on the path could have
            // written it, so only its code is shown, in ftx's own words.
            ClientError::NotTls {
                answer: Some(e), ..
            } => match e.code {
                ErrorCode::Busy => write!(f, "busy: the server has too many connections"),
                ErrorCode::TooManyFromAddress => {
                    write!(f, "too many connections from your address")
                }
                code => write!(f, "the server refused the connection: {code}"),
            },
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
            ClientError::Unsupported => write!(f, "not supported by this server"),
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
    /// The remote file's modification time (Unix seconds), as `GetReady`
    /// gave it: what `get -p` keeps.
    pub mtime: i64,
}

/// A connection to an `ftxd`.
///
/// Once the connection is lost (the server closed it, ended it with an
/// error, stopped answering, or the network failed), the call that found
/// out returns [`ClientError::Lost`] and every later call fails at once
/// with [`ClientError::NotConnected`]; nothing reconnects.
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
        self.last_resumable = false;
        self.begin()?;
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
        let queued = self
            .session
            .put(remote, size, resume.then_some(size), force);
        queued.map_err(|e| self.command_error(e))?;
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
                            step = Some(Err(self.command_error(e)));
                            break;
                        }
                    }
                    other => {
                        if started_progress {
                            progress.finish();
                        }
                        return Err(self.event_error(other));
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
        self.last_resumable = false;
        self.begin()?;
        let started = Instant::now();
        let local_err = |source| ClientError::Local {
            path: target.to_path_buf(),
            source,
        };
        let (mut dl, stale) = if resume {
            (LocalDownload::resume(target, force).map_err(local_err)?, 0)
        } else {
            LocalDownload::create(target, force).map_err(local_err)?
        };
        let held = dl.held().map_err(local_err)?;
        let queued = self.session.get(remote, held);
        queued.map_err(|e| self.command_error(e))?;
        let mut outcome = GetOutcome {
            path: PathBuf::new(),
            size: 0,
            elapsed: Duration::ZERO,
            resumed_from: 0,
            restarted: false,
            partial: stale,
            mtime: 0,
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
                        mtime,
                    } => {
                        outcome.mtime = mtime;
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
                        let queued = self.session.get(remote, 0);
                        queued.map_err(|e| self.command_error(e))?;
                    }
                    other => {
                        progress.finish();
                        if matches!(&other, ClientEvent::Failed(e) if e.code == ErrorCode::Integrity)
                        {
                            dl.discard();
                        }
                        // Always made: it records a lost connection.
                        let e = self.event_error(other);
                        return Err(failure.unwrap_or(e));
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
    /// meanwhile is recorded for the next call to report.
    fn drain_until_idle(&mut self) {
        for _ in 0..1_000_000 {
            if self.session.is_idle() || self.lost.is_some() {
                return;
            }
            while let Some(ev) = self.session.poll_event() {
                if let ClientEvent::Closed(_) = ev {
                    let _ = self.event_error(ev);
                    return;
                }
            }
            if self.session.is_idle() {
                return;
            }
            if self.session.is_closed() {
                let _ = self.lose(LostReason::ServerClosed);
                return;
            }
            if self.flush().and_then(|_| self.read_some()).is_err() {
                return;
            }
        }
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

#[cfg(test)]
mod lost_tests {
    //! A lost connection, against a scripted server on a local socket:
    //! said once with its reason, then every call refused at once.

    use super::*;
    use crate::proto::frame;
    use crate::proto::limits::{MIN_WINDOW, PROTOCOL_VERSION};
    use crate::proto::message::Message;
    use std::net::TcpListener;
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

#[cfg(test)]
mod before_tls_tests {
    use super::*;

    /// An answer that came before TLS is shown by its code alone: its text
    /// could be anyone's (terminal escapes included).
    #[test]
    fn text_from_before_tls_is_never_shown() {
        let hostile = "\x1b]0;owned\x07 please run rm -rf ~";
        for (code, want) in [
            (ErrorCode::Busy, "busy: the server has too many connections"),
            (
                ErrorCode::TooManyFromAddress,
                "too many connections from your address",
            ),
            (
                ErrorCode::Protocol,
                "the server refused the connection: protocol error",
            ),
        ] {
            let e = ClientError::NotTls {
                addr: "h:1".into(),
                answer: Some(RemoteError::new(code, hostile)),
            };
            assert_eq!(e.to_string(), want);
        }
    }
}
