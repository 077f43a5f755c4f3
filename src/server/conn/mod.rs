//! One connection of the event loop: a non-blocking socket, its
//! transport (plain or TLS, see `transport`), its `ServerSession`, and the
//! open upload or download. Moves bytes between socket and session through
//! the transport and pumps file data into a running download and listing
//! parts into the output; the session's requests are answered in
//! [`requests`] (the token check, read-only access, the store). Input goes
//! straight into the session's input buffer (freed when idle) and file
//! reads for downloads go straight into its output queue, behind their
//! frame header, so an idle connection costs only its session and a few
//! words here. Never blocks, never prints: the blocking file-system calls
//! (fsyncs, hashing a resumed transfer's prefix) go to the disk helpers
//! (`server::disk`), and the connection waits for their outcome
//! ([`Conn::disk_done`]) without moving on meanwhile, or, past the storage
//! timeout, fails the transfer and stops waiting ([`Conn::disk_timed_out`]).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::access::Security;
mod requests;

use self::requests::{Commits, PrefixJob, Resumed};
use super::disk::{Disk, Job, Outcome};
use super::store::{Download, Listing, Store, StoreError, Upload, Uploader, RESERVE_AHEAD};
use super::tokens::Access;
use super::transport::{Input, Transport};
use crate::partial::PartOwner;
use crate::proto::error::ErrorCode;
use crate::proto::limits::MAX_ENTRIES_PER_FRAME;
use crate::proto::server_session::ServerSession;

/// Read/process/write rounds one wake-up may spend on a connection before
/// the loop serves the others (fairness); at 256 KiB a read that is up to
/// 2 MiB per turn, a millisecond or two of work: what an `ls` from a second
/// client waits at most during a loopback put (it waited 6-7 ms (p99) at
/// 4 MiB a turn, once nothing else held the loop).
const DRIVE_BUDGET: usize = 8;
/// Bytes asked of the socket per read, received straight into the
/// session's input buffer (no copy); one `Data` frame and a bit.
const READ_LEN: usize = 256 * 1024 + 4096;
/// Bytes asked of the socket per read between transfers.
const REQUEST_READ_LEN: usize = 4096;

/// Whose disk reservations a connection's count among, for the cap on
/// what one party may hold reserved ahead of its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ReserveKey {
    /// A token's sessions, from any address.
    Token(PartOwner),
    /// An address group's ([`super::event_loop::address_group`]) on a
    /// server without tokens.
    Address(std::net::IpAddr),
}

/// What the loop must do with a connection after driving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Wait for the next readiness event or deadline.
    Wait,
    /// The budget ran out with work left: drive again soon, without an
    /// event (edge triggering will not repeat one).
    Again,
    /// Close the connection.
    Close,
}

/// Who a connection's log lines are about: the client's address and,
/// once its token was accepted, the token's name (never the token).
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// The address and port (a `SocketAddr` would carry an IPv6 flow and
    /// scope too: 12 bytes more on every connection).
    ip: std::net::IpAddr,
    port: u16,
    /// Thin (`Rc<String>`, not `Rc<str>`): every connection carries it.
    token: Option<Rc<String>>,
}

impl Peer {
    fn ip(&self) -> std::net::IpAddr {
        self.ip
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.token {
            Some(name) => write!(f, "{} [{name}]", self.addr()),
            None => write!(f, "{}", self.addr()),
        }
    }
}

/// Why a connection ends, for its last log line (one byte, not a
/// string's sixteen: every connection carries it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    ServerClosed,
    Revoked,
    TimedOut,
    ClientClosed,
    NotTls,
    TlsError,
    Lost,
    NoToken,
    Refused,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CloseReason::ServerClosed => "closed by the server",
            CloseReason::Revoked => "access token revoked",
            CloseReason::TimedOut => "timed out",
            CloseReason::ClientClosed => "closed by the client",
            CloseReason::NotTls => "client does not speak TLS",
            CloseReason::TlsError => "TLS error",
            CloseReason::Lost => "connection lost",
            CloseReason::NoToken => "no access token",
            CloseReason::Refused => "access refused",
        })
    }
}

/// A connection: socket, session, open transfer, readiness memory.
pub(crate) struct Conn {
    stream: TcpStream,
    peer: Peer,
    transport: Transport,
    security: Rc<Security>,
    /// What the client's token allows (read-write until a token says
    /// otherwise; no request is served before the token is checked).
    access: Access,
    session: ServerSession,
    /// Boxed, as `download`: an upload carries its file, names and counts
    /// (~150 bytes), which every idle connection would otherwise hold.
    upload: Option<Box<Upload>>,
    /// Boxed: most connections never download, and a download carries a
    /// few hundred bytes.
    download: Option<Box<Download>>,
    /// A resumed transfer whose prefix a disk helper hashes before the
    /// client is answered.
    prefix: Option<Box<PrefixJob>>,
    /// A finished upload being made durable and published (its fsyncs on
    /// the disk helpers) before the client hears `PutDone`.
    commits: Option<Box<Commits>>,
    /// This connection's token in the loop, for its disk jobs.
    slot: Token,
    /// The number of the disk job whose outcome this connection waits
    /// for (0: none); any other outcome is stale and dropped.
    awaiting: u64,
    /// A directory being listed, a part at a time as the client takes it.
    listing: Option<Box<Listing>>,
    /// When the transfer in progress started, in milliseconds after
    /// `opened` (for the log line; `u32::MAX`: none).
    transfer_started: u32,
    opened: Instant,
    /// The socket may have more to read: set by a readable event, cleared
    /// by `WouldBlock`. Edge triggering will not tell us again.
    readable: bool,
    /// The socket may take more bytes: set by a writable event, cleared by
    /// `WouldBlock`.
    writable: bool,
    /// The peer closed its side (or the socket failed).
    eof: bool,
    /// The interest currently registered.
    interest: Interest,
    /// Why the connection ends, for the log line.
    pub(crate) close_reason: CloseReason,
    /// The earliest deadline this connection has in the loop's timer heap.
    pub(crate) armed: Option<Instant>,
    /// In the loop's queue of connections to drive again: a connection
    /// that used its whole budget is queued once, however many readiness
    /// events it gets meanwhile.
    pub(crate) queued: bool,
    /// Counted among the connections still in their handshake (TLS and
    /// `Hello`, token included).
    pub(crate) starting: bool,
    /// Counted under its address's group (per address, and while
    /// starting, among the startups): at once, or for a balancer's
    /// connection once its PROXY header named the client.
    pub(crate) counted: bool,
    /// The PROXY header was just read (the address may have changed):
    /// for the loop to count the connection now.
    readdressed: bool,
    /// The client has sent something (a TLS or protocol byte): when
    /// connections in their handshake must make room, silent ones go
    /// first.
    heard: bool,
    /// This connection's reservation as last added to the loop's totals,
    /// and the key it was counted under (see `EventLoop::reserved`).
    pub(crate) counted_reserve: (u64, Option<ReserveKey>),
    /// This connection's output memory as last added to the loop's total
    /// (see `EventLoop::output`).
    pub(crate) counted_output: usize,
    /// The token the client came in with ([`super::tokens::token_id`]),
    /// checked again whenever the token file changes.
    token: Option<[u8; 32]>,
    /// Whose part files this session's uploads use: its token's, on a
    /// server that asks for tokens.
    owner: Option<PartOwner>,
    /// Disk space its uploads may reserve ahead of their data, set by the
    /// loop from what its address or token holds already.
    reserve_ahead: u64,
}

impl Conn {
    /// Registers a freshly accepted stream with a new session.
    pub(crate) fn new(
        mut stream: TcpStream,
        peer: SocketAddr,
        session: ServerSession,
        registry: &Registry,
        token: Token,
        now: Instant,
        security: Rc<Security>,
    ) -> io::Result<Conn> {
        let interest = Interest::READABLE;
        registry.register(&mut stream, token, interest)?;
        Ok(Conn {
            stream,
            peer: Peer {
                ip: peer.ip(),
                port: peer.port(),
                token: None,
            },
            transport: Transport::new(&security),
            security,
            access: Access::ReadWrite,
            session,
            upload: None,
            download: None,
            prefix: None,
            commits: None,
            slot: token,
            awaiting: 0,
            listing: None,
            transfer_started: u32::MAX,
            opened: now,
            readable: true,
            writable: true,
            eof: false,
            interest,
            close_reason: CloseReason::ServerClosed,
            armed: None,
            queued: false,
            starting: true,
            counted: true,
            readdressed: false,
            heard: false,
            counted_output: 0,
            counted_reserve: (0, None),
            token: None,
            owner: None,
            reserve_ahead: RESERVE_AHEAD,
        })
    }

    /// Ends the session if the token it came in with was revoked; true
    /// then (drive it once more to send the error and close).
    pub(crate) fn end_if_revoked(&mut self) -> bool {
        let Some(id) = &self.token else {
            return false;
        };
        if self.security.gate.borrow().is_valid(id) {
            return false;
        }
        info!("{}: access token revoked: ending the session", self.peer);
        self.close_reason = CloseReason::Revoked;
        self.token = None;
        self.session
            .end(ErrorCode::Unauthorized, "access token revoked");
        true
    }

    /// Caps the download output this connection queues
    /// ([`ServerSession::set_output_cap`]).
    pub(crate) fn set_output_cap(&mut self, cap: usize) {
        self.session.set_output_cap(cap);
    }

    /// Who this connection's uploads are from, for the store.
    fn uploader(&self) -> Uploader {
        Uploader {
            owner: self.owner,
            reserve_ahead: self.reserve_ahead,
        }
    }

    /// Whose reservations this connection's count among: its token's on a
    /// server that asks for tokens, else its address group's.
    pub(crate) fn reserve_key(&self) -> ReserveKey {
        match self.owner {
            Some(owner) => ReserveKey::Token(owner),
            None => ReserveKey::Address(super::event_loop::address_group(self.peer.ip())),
        }
    }

    /// Lets this connection's uploads reserve at most `ahead` bytes ahead
    /// of their data from now on.
    pub(crate) fn limit_reserve(&mut self, ahead: u64) {
        self.reserve_ahead = ahead;
        if let Some(up) = self.upload.as_mut() {
            up.limit_reserve(ahead);
        }
    }

    /// Disk space this connection's upload holds reserved ahead of its
    /// data (one being answered after its prefix is hashed included).
    pub(crate) fn reserved_ahead(&self) -> u64 {
        let hashing = self.prefix.as_ref().and_then(|job| match &job.then {
            Resumed::Put(up, _) => Some(up),
            Resumed::Get(_) => None,
        });
        self.upload
            .as_deref()
            .or(hashing)
            .map_or(0, Upload::reserved_ahead)
    }

    /// Bytes of memory this connection's output queue holds.
    pub(crate) fn output_memory(&self) -> usize {
        self.session.output_memory()
    }

    /// Assumes the socket may have data, as a readable event would: its
    /// event may still be waiting in this turn's batch, or in the kernel.
    pub(crate) fn may_read(&mut self) {
        self.readable = true;
    }

    /// True once the client sent anything at all.
    pub(crate) fn heard(&self) -> bool {
        self.heard
    }

    /// When the connection was accepted.
    pub(crate) fn opened(&self) -> Instant {
        self.opened
    }

    /// True once the client passed the handshake (its token included).
    pub(crate) fn welcomed(&self) -> bool {
        self.session.is_welcomed()
    }

    /// A listed balancer's connection: its PROXY header is read first,
    /// and it is counted under an address once the header named one.
    pub(crate) fn behind_proxy(&mut self) {
        self.transport = Transport::behind_proxy(&self.security);
        self.counted = false;
    }

    /// Whether the PROXY header was read since the last call.
    pub(crate) fn take_readdressed(&mut self) -> bool {
        std::mem::replace(&mut self.readdressed, false)
    }

    /// Refuses the client now (too many connections from the address its
    /// balancer named): it is told, then the connection closes.
    pub(crate) fn refuse_now(&mut self, code: ErrorCode, message: &str, now: Instant) {
        info!("{}: connection refused: {message}", self.peer);
        self.close_reason = CloseReason::Refused;
        self.session = ServerSession::refuse(code, message, now);
    }

    /// The peer's address.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer.addr()
    }

    /// The session's next deadline.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.session.poll_deadline()
    }

    /// Records what a readiness event says the socket can do now.
    pub(crate) fn handle_ready(&mut self, event: &mio::event::Event) {
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.readable = true;
        }
        if event.is_writable() || event.is_write_closed() || event.is_error() {
            self.writable = true;
        }
    }

    /// Passes a deadline to the session.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.close_reason = CloseReason::TimedOut;
        self.session.handle_timeout(now);
    }

    /// Moves bytes and answers events until nothing more can happen
    /// without a new event, or the budget is spent.
    ///
    /// Order per round: read (only while the session wants input), answer
    /// events, pump download data, write. Reading stops when the session's
    /// output is full; once writing makes room the next round reads again
    /// by itself, because the data already waiting in the socket will not
    /// produce a new edge-triggered event.
    pub(crate) fn drive(&mut self, store: &Store, disk: &mut Disk, now: Instant) -> Step {
        for _ in 0..DRIVE_BUDGET {
            let mut progress = false;
            if !self.eof && (self.session.wants_read() || self.transport.wants_read()) {
                let security = &*self.security;
                // Requests are small: a big buffer only while data flows.
                let want = if self.session.in_transfer() {
                    READ_LEN
                } else {
                    REQUEST_READ_LEN
                };
                match self.transport.read(
                    &mut self.stream,
                    &mut self.readable,
                    self.session.input_buffer(want),
                    security,
                ) {
                    Ok(Input::Eof) => {
                        self.close_reason = CloseReason::ClientClosed;
                        self.eof = true;
                        self.session.handle_eof();
                        progress = true;
                    }
                    Ok(Input::Data(n)) => {
                        self.heard = true;
                        self.session.handle_input_filled(n, now);
                        progress = true;
                    }
                    Ok(Input::Progress) => {
                        self.heard = true;
                        progress = true;
                    }
                    Ok(Input::Idle) => {}
                    Ok(Input::Proxied(client)) => {
                        if let Some(addr) = client {
                            info!("{}: a balancer's connection from {addr}", self.peer);
                            self.peer.ip = addr.ip();
                            self.peer.port = addr.port();
                        }
                        // Back to the loop before anything the client
                        // sent: it counts (or refuses) the client first.
                        self.readdressed = true;
                        return Step::Again;
                    }
                    Ok(Input::NotProxied(why)) => {
                        info!("{}: {why} from a listed balancer: closed", self.peer);
                        self.close_reason = CloseReason::Refused;
                        return self.fail(store, disk, now);
                    }
                    Ok(Input::PlainClient) => {
                        info!("{}: plain client on a TLS server: refused", self.peer);
                        self.close_reason = CloseReason::NotTls;
                        self.session = ServerSession::refuse(
                            ErrorCode::Protocol,
                            "this server requires TLS; use ftx without --plain",
                            now,
                        );
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                        info!("{}: TLS failed: {e}", self.peer);
                        self.close_reason = CloseReason::TlsError;
                        return self.fail(store, disk, now);
                    }
                    Err(e) => {
                        debug!("{}: read failed: {e}", self.peer);
                        self.close_reason = CloseReason::Lost;
                        return self.fail(store, disk, now);
                    }
                }
            }
            progress |= self.handle_events(store, disk, now);
            progress |= self.pump_download(store);
            progress |= self.pump_listing(store);
            match self.flush() {
                Ok(wrote) => progress |= wrote,
                Err(e) => {
                    debug!("{}: write failed: {e}", self.peer);
                    self.close_reason = CloseReason::Lost;
                    return self.fail(store, disk, now);
                }
            }
            let flushed = self.session.poll_transmit().is_empty() && !self.transport.wants_write();
            // A verified upload being committed is finished first, even
            // when the client has gone: it was whole (see `put_abort`).
            if flushed && (self.session.is_closed() || self.eof) && self.commits.is_none() {
                return Step::Close;
            }
            if !progress {
                if flushed
                    && self.upload.is_none()
                    && self.download.is_none()
                    && self.prefix.is_none()
                    && self.commits.is_none()
                    && self.listing.is_none()
                {
                    self.session.shrink();
                    self.transport.shrink();
                }
                // Waiting for the network: a good moment to flush the
                // upload (and make it durable, if it comes slowly).
                if self.start_due_flush(store, disk, now, true) {
                    continue;
                }
                return Step::Wait;
            }
        }
        Step::Again
    }

    /// Re-registers the socket if the session now wants something else.
    pub(crate) fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let wants_write = self.session.wants_write()
            || !self.session.poll_transmit().is_empty()
            || self.transport.wants_write();
        let wants_read = (self.session.wants_read() || self.transport.wants_read()) && !self.eof;
        let interest = match (wants_read, wants_write) {
            (true, true) => Interest::READABLE | Interest::WRITABLE,
            (false, true) => Interest::WRITABLE,
            // Readable also reports the peer's close and socket errors.
            _ => Interest::READABLE,
        };
        if interest != self.interest {
            registry.reregister(&mut self.stream, token, interest)?;
            self.interest = interest;
        }
        Ok(())
    }

    /// Ends the connection: an upload in progress is abandoned (its
    /// temporary file removed), one last non-blocking flush is tried, and
    /// the socket is closed.
    pub(crate) fn close(mut self, store: &Store, registry: &Registry, why: &str) {
        if let Some(job) = self.prefix.take() {
            // Its helper stops hashing at the next step.
            job.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Resumed::Put(up, _) = job.then {
                self.upload = Some(Box::new(up));
            }
        }
        if let Some(commits) = self.commits.take() {
            for c in commits.queue {
                self.commit_interrupted(store, c, why);
            }
        }
        if let Some(up) = self.upload.take() {
            info!(
                "{}: put '{}' failed: {why} after {} of {} bytes",
                self.peer,
                up.remote(),
                up.written(),
                up.size()
            );
            // Interrupted, not failed: keep it for `reput`; only what a
            // step made durable while a flush may still run.
            if store.flush_running(&up) {
                store.abort_unsettled(*up);
            } else {
                store.abort(*up, true);
            }
        }
        if let Some(dl) = self.download.take() {
            info!(
                "{}: get '{}' failed: {why} at byte {} of {}",
                self.peer,
                dl.remote(),
                dl.position(),
                dl.size
            );
        }
        if self.session.is_closed() || self.eof {
            self.transport.close_notify();
        }
        let _ = self.flush();
        let _ = registry.deregister(&mut self.stream);
        linger_close(&mut self.stream);
        info!(
            "{}: connection closed ({why}) after {:.1} s",
            self.peer,
            self.opened.elapsed().as_secs_f64()
        );
    }

    /// The socket failed: tell the session the peer is gone, let it report
    /// what it abandons, and close.
    fn fail(&mut self, store: &Store, disk: &mut Disk, now: Instant) -> Step {
        if !self.eof {
            self.eof = true;
            self.session.handle_eof();
        }
        self.handle_events(store, disk, now);
        Step::Close
    }

    /// Starts a flush of the upload on a disk helper if one is due
    /// ([`Store::flush_due`]; `waiting`: the connection waits for the
    /// network). True if that failed the upload instead.
    pub(super) fn start_due_flush(
        &mut self,
        store: &Store,
        disk: &mut Disk,
        now: Instant,
        waiting: bool,
    ) -> bool {
        let Some(up) = self.upload.as_mut() else {
            return false;
        };
        if !store.flush_due(up, now, waiting) {
            return false;
        }
        match store.start_flush(up, now, waiting) {
            Ok(flush) => {
                self.awaiting = disk.submit(self.slot, Job::Flush(flush));
                false
            }
            Err(e) => {
                self.upload_failed(store, &e);
                true
            }
        }
    }

    /// A disk job finished: hands its outcome to what waits for it, if
    /// this connection still waits for that job (`job`, its number).
    pub(crate) fn disk_done(
        &mut self,
        job: u64,
        outcome: Outcome,
        store: &Store,
        disk: &mut Disk,
        now: Instant,
    ) {
        if job != 0 && job == self.awaiting {
            self.awaiting = 0;
            match outcome {
                Outcome::Flushed(r) => self.flushed(store, r, now),
                Outcome::Hashed(r) => self.prefix_hashed(store, r, now),
                Outcome::FileSynced(_) | Outcome::DirSynced(_) | Outcome::Probed(_) => {}
            }
            return;
        }
        if !self.commit_step_done(job, outcome, store, disk, now) {
            debug!(
                "{}: outcome of a job no longer waited for: dropped",
                self.peer
            );
        }
    }

    /// A disk job of this connection (`job`, its number) is out longer
    /// than the storage timeout `limit`: the storage hangs. The transfer
    /// waiting for it fails with a timeout error that says so (an upload
    /// left as it is for `reput`, [`Store::abandon`]), and
    /// the connection stops waiting for the job, whose late outcome is
    /// then dropped. The connection stays usable. True when it has
    /// something to send (drive it).
    pub(crate) fn disk_timed_out(
        &mut self,
        job: u64,
        limit: Duration,
        store: &Store,
        disk: &mut Disk,
        now: Instant,
    ) -> bool {
        let why = storage_timeout_message(limit);
        if job == 0 || job != self.awaiting {
            return self.commit_timed_out(job, &why, store, disk, now);
        }
        self.awaiting = 0;
        if let Some(prefix) = self.prefix.take() {
            // A hash that comes back to look stops at once.
            prefix
                .cancel
                .store(true, std::sync::atomic::Ordering::Relaxed);
            self.resume_timed_out(store, prefix.then, &why);
        } else if let Some(up) = self.upload.take() {
            info!(
                "{}: put '{}' failed: {why} (after {} of {} bytes; left as it is for reput)",
                self.peer,
                up.remote(),
                up.written(),
                up.size()
            );
            // Left as it is: a trim would wait on the same storage.
            store.abandon(*up);
            self.session.reply_error(ErrorCode::Timeout, &why);
        }
        true
    }

    /// A flush of the upload returned: an error fails the upload; a
    /// commit that waited for the flush goes on.
    fn flushed(&mut self, store: &Store, r: io::Result<()>, now: Instant) {
        if let Some(up) = self.upload.as_mut() {
            if let Err(e) = store.flush_done(up, r, now) {
                self.upload_failed(store, &e);
            }
        }
    }

    /// Writing or flushing the upload failed (a full disk, an I/O error):
    /// tell the client and free the space.
    fn upload_failed(&mut self, store: &Store, e: &StoreError) {
        if let Some(up) = self.upload.take() {
            info!("{}: put '{}' failed: {e}", self.peer, up.remote());
            self.session.reply_error(e.code(), &e.to_string());
            store.abort(*up, false);
        }
    }

    /// Writes the session's output through the transport until both are
    /// empty or the socket is full.
    fn flush(&mut self) -> io::Result<bool> {
        let mut wrote = false;
        loop {
            let (taken, moved) = self.transport.write(
                &mut self.stream,
                &mut self.writable,
                self.session.poll_transmit(),
            )?;
            self.session.consume_transmit(taken);
            wrote |= moved;
            if !moved {
                return Ok(wrote);
            }
        }
    }

    /// Reads the next part of a listing while the session's output has
    /// room for it: a client that does not read its listing holds one
    /// part of it, not the whole directory.
    fn pump_listing(&mut self, store: &Store) -> bool {
        let Some(listing) = self.listing.as_mut() else {
            return false;
        };
        if !self.session.wants_entries() {
            return false;
        }
        match store.list_more(listing, MAX_ENTRIES_PER_FRAME) {
            Ok((entries, done)) => {
                self.session.reply_entries_part(entries, done);
                if done {
                    debug!("{}: ls '{}'", self.peer, listing.dir());
                    self.listing = None;
                }
            }
            Err(e) => {
                debug!("{}: ls '{}' failed: {e}", self.peer, listing.dir());
                self.session.reply_error(e.code(), &e.to_string());
                self.listing = None;
            }
        }
        true
    }

    /// Feeds file bytes to a running download while the session takes them.
    fn pump_download(&mut self, store: &Store) -> bool {
        let mut progress = false;
        while let Some(dl) = self.download.as_mut() {
            let want = self.session.wants_data();
            if want == 0 {
                break;
            }
            match store.read(dl, self.session.data_buffer(want)) {
                Ok(0) => {
                    let msg = format!("'{}' changed while it was being read", dl.remote());
                    info!("{}: get failed: {msg}", self.peer);
                    self.session.reply_error(ErrorCode::Io, &msg);
                    self.download = None;
                }
                Ok(n) => self.session.data_filled(n),
                Err(e) => {
                    info!("{}: get '{}' failed: {e}", self.peer, dl.remote());
                    self.session.reply_error(e.code(), &e.to_string());
                    self.download = None;
                }
            }
            progress = true;
        }
        progress
    }
}

/// What a client is told when the storage hung past `limit`.
fn storage_timeout_message(limit: Duration) -> String {
    format!("the storage did not answer within {} s", limit.as_secs())
}

/// Closes a socket so that an error frame just written is not destroyed:
/// closing with unread input makes the kernel send a reset, which can
/// discard our last bytes at the peer. So: shut down our side, drain what
/// has already arrived (without blocking), then close.
pub(crate) fn linger_close(stream: &mut TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut scratch = [0u8; 512];
    for _ in 0..64 {
        match stream.read(&mut scratch) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

/// Answers a connection the loop cannot serve with the session's error
/// frame (best effort, non-blocking) and closes it.
pub(crate) fn refuse(mut stream: TcpStream, peer: SocketAddr, code: ErrorCode, message: &str) {
    let session = ServerSession::refuse(code, message, Instant::now());
    match stream.write(session.poll_transmit()) {
        Ok(_) => {}
        Err(e) => warn!("{peer}: cannot send the refusal: {e}"),
    }
    linger_close(&mut stream);
    info!("{peer}: connection refused: {message}");
}
#[cfg(test)]
mod size_tests {
    /// Every idle connection carries a `Conn` (its session inside): the
    /// budget of 4 KiB a TLS connection (3.5 KiB of it rustls's) leaves
    /// this much. Rarely used state goes in boxes made on demand.
    #[test]
    fn a_connection_stays_small() {
        let conn = std::mem::size_of::<super::Conn>();
        assert!(conn <= 496, "Conn is {conn} bytes");
    }
}
