//! The one-thread `mio` event loop of `ftxd`: accepts connections, routes
//! readiness events to them, keeps their deadlines, and stops on shutdown.
//!
//! Blocking file-system calls (fsyncs, prefix hashing) run on the disk
//! helpers (`disk`); their outcomes come back through the waker and are
//! handed to their connections every turn, and directory syncs wait for
//! the end of the turn so that the commits of one turn share one. A job
//! out longer than `--storage-timeout` fails its connection's transfer
//! (looked at every tenth of the limit while jobs are out); the node and
//! the other connections go on. With `--health`, the load balancers'
//! checks are answered here too (`health`), from probes on the helpers.
//!
//! Fixed tokens for the listener, the signal pipe and the waker;
//! connections live in a `Slab` keyed by their token. Deadlines sit in a
//! min-heap with lazy deletion: a connection re-arms only when its deadline
//! moves earlier, and an entry that fires early (the session's deadline has
//! moved later meanwhile) just re-arms it, so the heap stays about one
//! entry per connection however often deadlines move.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use super::access::Security;
use super::config::ServerConfig;
use super::conn::{self, Conn, ReserveKey, Step};
use super::disk::{Disk, HELPERS};
use super::health::{self, Health};
use super::shutdown::Shutdown;
use super::store::{Store, RESERVE_AHEAD};
use crate::proto::error::ErrorCode;
use crate::proto::limits::{DEFAULT_WINDOW, MAX_PENDING_OUTPUT, MIN_OUTPUT_CAP};
use crate::proto::server_session::{ServerSession, SessionConfig};

const LISTENER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
const WAKER: Token = Token(usize::MAX - 3);

/// Readiness events taken per `poll`.
const EVENTS_CAPACITY: usize = 1024;
/// How long accepting pauses when the process or system is out of file
/// descriptors, instead of spinning on a listener that stays ready.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// File descriptors kept free of connections: the listener, epoll, the
/// signal pipe and waker, standard streams, and the files of transfers and
/// listings in progress — a quarter of the limit, between these bounds.
/// Beyond that many concurrent transfers, opening a file fails with a clear
/// error rather than taking the process down, and accepting backs off.
const FD_RESERVE_MIN: u64 = 16;
/// Upper bound of the descriptor reserve (see [`FD_RESERVE_MIN`]).
const FD_RESERVE_MAX: u64 = 256;
/// How long shutdown waits for storage calls still running on the disk
/// helpers (a sync of an upload nobody was told of yet) before it leaves
/// them behind.
const DISK_GRACE: Duration = Duration::from_secs(10);

/// Serves connections on `listener` until `shutdown` is triggered (or, for
/// a handle from [`Shutdown::on_signals`], SIGINT/SIGTERM arrives), then
/// closes every connection and returns `Ok`. The listener is already bound,
/// which lets tests use port 0. Prepares the state directory itself
/// ([`Security::prepare`]); a caller that prepared it already (and printed
/// what it made) calls [`run_with`].
pub fn run(
    listener: std::net::TcpListener,
    config: ServerConfig,
    shutdown: Shutdown,
) -> io::Result<()> {
    let store = Store::open(config.store.clone()).map_err(|e| io::Error::other(e.to_string()))?;
    let (security, _) = Security::prepare(&config.access).map_err(io::Error::other)?;
    let health = super::listen::bind_health(&config)?;
    serve(listener, health, config, store, security, shutdown)
}

/// [`run`] with the access already loaded, once, by [`Security::prepare`],
/// and the health listener (`--health`) bound by the caller
/// ([`super::listen::bind_health`]), which printed its address.
pub fn run_with(
    listener: std::net::TcpListener,
    health: Option<std::net::TcpListener>,
    config: ServerConfig,
    security: Security,
    shutdown: Shutdown,
) -> io::Result<()> {
    let store = Store::open(config.store.clone()).map_err(|e| io::Error::other(e.to_string()))?;
    serve(listener, health, config, store, security, shutdown)
}

fn serve(
    listener: std::net::TcpListener,
    health: Option<std::net::TcpListener>,
    config: ServerConfig,
    store: Store,
    security: Security,
    shutdown: Shutdown,
) -> io::Result<()> {
    let security = Rc::new(security);
    let authenticate = security.gate.borrow().requires_token();
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    shutdown.install_waker(Arc::clone(&waker));
    let disk = Disk::start(waker, HELPERS);
    let mut signals = if shutdown.wants_signals() {
        let mut s = signal_hook_mio::v1_0::Signals::new([libc::SIGINT, libc::SIGTERM])?;
        poll.registry()
            .register(&mut s, SIGNALS, Interest::READABLE)?;
        Some(s)
    } else {
        None
    };
    let max_connections = fit_connections(config.max_connections);
    let health = match health {
        Some(l) => Some(Health::new(
            l,
            poll.registry(),
            store.root().to_path_buf(),
            config.store.read_only,
            config.storage_timeout,
            Instant::now(),
        )?),
        None => None,
    };
    let mut server = Server {
        poll,
        listener,
        store,
        disk,
        conns: Slab::new(),
        session_config: Arc::new(SessionConfig {
            window: DEFAULT_WINDOW,
            idle_timeout: config.idle_timeout,
            handshake_timeout: config.handshake_timeout,
            stall_timeout: config.stall_timeout,
            server_name: format!("ftxd {}", env!("CARGO_PKG_VERSION")),
            authenticate,
        }),
        security,
        max_connections,
        max_per_ip: config.max_per_ip,
        proxies: config.proxy_protocol.clone(),
        per_ip: HashMap::new(),
        max_startups: config.max_startups.min(max_connections),
        starting: 0,
        starting_by_group: HashMap::new(),
        startups: VecDeque::new(),
        accept_paused_until: None,
        accept_more: false,
        timers: BinaryHeap::new(),
        again: VecDeque::new(),
        output: 0,
        reserved: HashMap::new(),
        partial_ttl: config.partial_ttl,
        next_sweep: Instant::now(),
        next_token_check: authenticate.then(|| Instant::now() + TOKEN_CHECK_INTERVAL),
        storage_timeout: config.storage_timeout,
        next_disk_check: Instant::now(),
        health,
    };
    let mut events = Events::with_capacity(EVENTS_CAPACITY);
    while !shutdown.is_requested() {
        let timeout = server.poll_timeout(Instant::now());
        if let Err(e) = server.poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let now = Instant::now();
        let mut listener_served = false;
        // Each connection is driven once a turn at most: those queued
        // already wait for `drive_again`, those queued this turn for the
        // next (at once: the poll timeout is zero). An `ls` waits for at
        // most one drive of each busy connection.
        let queued = server.again.len();
        for event in events.iter() {
            match event.token() {
                LISTENER => {
                    if server.accept_paused_until.is_none() {
                        server.accept_all(now);
                        listener_served = true;
                    }
                }
                SIGNALS => {
                    if let Some(s) = signals.as_mut() {
                        for sig in s.pending() {
                            info!("signal {sig} received: shutting down");
                            shutdown.trigger();
                        }
                    }
                }
                // Finished disk jobs are taken below, every turn.
                WAKER => {}
                health::LISTENER => {
                    if let Some(h) = server.health.as_mut() {
                        h.accept_all(server.poll.registry(), now);
                    }
                }
                token if Health::owns(token) => {
                    if let Some(h) = server.health.as_mut() {
                        h.ready(token, server.poll.registry(), now);
                    }
                }
                token => {
                    if let Some(c) = server.conns.get_mut(token.0) {
                        c.handle_ready(event);
                        if !c.queued {
                            server.drive(token, now);
                        }
                    }
                }
            }
        }
        server.drive_again(queued, now);
        server.finish_disk_jobs(now);
        server.expire_disk_jobs(now);
        if let Some(h) = server.health.as_mut() {
            h.tick(&mut server.disk, server.poll.registry(), now);
        }
        // A full batch from the listener's own event waits for the next
        // turn (the zero poll timeout brings it at once).
        if !listener_served
            && std::mem::take(&mut server.accept_more)
            && server.accept_paused_until.is_none()
        {
            server.accept_all(now);
        }
        if server.accept_paused_until.is_some_and(|t| t <= now) {
            server.accept_paused_until = None;
            // Connections that queued during the pause raised no new edge.
            server.accept_all(now);
        }
        server.expire_timers(now);
        if now >= server.next_sweep {
            server.sweep(now);
        }
        if server.next_token_check.is_some_and(|t| now >= t) {
            server.check_tokens(now);
        }
        // Last: the directory syncs asked for this turn, one per directory.
        server.disk.kick();
    }
    info!(
        "shutting down: closing {} connection(s)",
        server.conns.len()
    );
    server.close_all();
    let counts = server.disk.counts();
    info!(
        "disk: {} commit(s) shared {} directory sync(s); {} file sync(s), {} durable step(s), {} prefix hash(es)",
        counts.dir_waiters.load(std::sync::atomic::Ordering::Relaxed),
        counts.dir_syncs.load(std::sync::atomic::Ordering::Relaxed),
        counts.file_syncs.load(std::sync::atomic::Ordering::Relaxed),
        counts.data_syncs.load(std::sync::atomic::Ordering::Relaxed),
        counts.hashes.load(std::sync::atomic::Ordering::Relaxed),
    );
    if let Some(since) = server.disk.oldest_running() {
        info!(
            "disk: {} job(s) still out at shutdown, the oldest for {} ms",
            server.disk.pending(),
            since.elapsed().as_millis()
        );
    }
    server.disk.shutdown(DISK_GRACE);
    Ok(())
}

/// Memory the output queues of all connections together may hold before
/// each download is held to [`MIN_OUTPUT_CAP`]: clients that ask for files
/// and never read them hold that much of ftxd's memory in all, not
/// [`MAX_PENDING_OUTPUT`] each.
const OUTPUT_BUDGET: usize = 32 << 20;

/// Disk space the uploads of one token (or, without tokens, one address
/// group) may hold reserved ahead of their data, all together: past it
/// their writes allocate as they go. Four uploads' worth of
/// [`RESERVE_AHEAD`], so a client that declares huge files and trickles
/// cannot take a small disk from the others however many it opens.
const RESERVE_CAP: u64 = 4 * RESERVE_AHEAD;

/// Connections accepted in one go before the loop serves the others: a
/// flood of connections cannot hold up the clients already served for
/// longer than this many accepts take.
const ACCEPT_BATCH: usize = 64;

/// Longest time between two sweeps of abandoned part files.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);
/// How often the token file is looked at (a `stat`) for revoked tokens,
/// whose sessions then end.
const TOKEN_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The state of the loop.
struct Server {
    poll: Poll,
    listener: TcpListener,
    store: Store,
    /// The helper threads that make the blocking file-system calls.
    disk: Disk,
    conns: Slab<Conn>,
    /// Shared by every session.
    session_config: Arc<SessionConfig>,
    max_connections: usize,
    max_per_ip: usize,
    /// Load balancers whose connections start with a PROXY v2 header.
    proxies: Vec<std::net::IpAddr>,
    /// Open connections by address group ([`address_group`]; entries
    /// removed at zero, so the map never outgrows the connection slab).
    per_ip: HashMap<std::net::IpAddr, usize>,
    /// Connections still in their handshake: at most this many, the
    /// oldest dropped to make room for a newcomer (as sshd's MaxStartups),
    /// so silent connections cannot keep served clients out.
    max_startups: usize,
    /// How many connections are in their handshake now.
    starting: usize,
    /// Of those, how many by address group ([`address_group`]; entries
    /// removed at zero): room is made in the group that holds the most.
    starting_by_group: HashMap<std::net::IpAddr, usize>,
    /// Those connections by arrival (slab key, accept time), oldest first;
    /// entries of connections that finished or closed are skipped when met.
    startups: VecDeque<(usize, Instant)>,
    accept_paused_until: Option<Instant>,
    /// The last accepts stopped at [`ACCEPT_BATCH`] with more waiting
    /// (no new edge will say so): accept again after the next turn.
    accept_more: bool,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Connections that used up their budget with work left.
    again: VecDeque<Token>,
    /// Disk space reserved ahead of their data by the uploads of each
    /// token (or address group, without tokens), as each connection
    /// counted it last ([`Conn::counted_reserve`]); entries removed at 0.
    reserved: HashMap<ReserveKey, u64>,
    /// Memory held by the output queues of all connections together, as
    /// each counted it last ([`Conn::counted_output`]). Over
    /// [`OUTPUT_BUDGET`], downloads queue at most [`MIN_OUTPUT_CAP`] each.
    output: usize,
    /// Age after which abandoned part and temporary files are removed.
    partial_ttl: Duration,
    /// When the next sweep of abandoned part files is due.
    next_sweep: Instant,
    /// When the token file is looked at next (`None`: no tokens needed).
    next_token_check: Option<Instant>,
    /// Longest a disk job may be out before its transfer fails.
    storage_timeout: Duration,
    /// When the ages of the disk jobs are looked at next (while any is
    /// out).
    next_disk_check: Instant,
    /// The health-check listener and its probes (`--health`).
    health: Option<Health>,
    /// TLS configuration and the token gate, shared by every connection.
    security: Rc<Security>,
}

impl Server {
    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.again.is_empty() || self.accept_more {
            return Some(Duration::ZERO);
        }
        let timer = self.timers.peek().map(|Reverse((t, _))| *t);
        let next = match (timer, self.accept_paused_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let next = Some(next.map_or(self.next_sweep, |t| t.min(self.next_sweep)));
        let next = match (next, self.next_token_check) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let disk_check = (self.disk.pending() > 0).then_some(self.next_disk_check);
        let health = self.health.as_ref().map(Health::next_deadline);
        [next, disk_check, health]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.saturating_duration_since(now))
    }

    /// Fails the transfers whose disk job is out longer than the storage
    /// timeout (a storage call that hangs; see `disk`). The connection
    /// stops waiting for the job and is driven next turn to send its
    /// error; the late outcome, if any, is dropped. Looked at every tenth
    /// of the limit (at least every second) while jobs are out.
    fn expire_disk_jobs(&mut self, now: Instant) {
        if self.disk.pending() == 0 || now < self.next_disk_check {
            return;
        }
        self.next_disk_check = now + disk_check_interval(self.storage_timeout);
        for owner in self.disk.expire(self.storage_timeout, now) {
            if owner.token == health::PROBE_OWNER {
                if let Some(h) = self.health.as_mut() {
                    h.probe_expired(now);
                }
                continue;
            }
            let Some(c) = self.conns.get_mut(owner.token.0) else {
                continue;
            };
            let limit = self.storage_timeout;
            if c.disk_timed_out(owner.job, limit, &self.store, &mut self.disk, now)
                && !std::mem::replace(&mut c.queued, true)
            {
                self.again.push_back(owner.token);
            }
        }
    }

    /// Removes part files of interrupted uploads older than the TTL (and
    /// temporary files left by a crash), then schedules the next sweep.
    fn sweep(&mut self, now: Instant) {
        let removed = self.store.sweep_partials(self.partial_ttl);
        if removed > 0 {
            info!(
                "removed {removed} abandoned part file(s) older than {} s",
                self.partial_ttl.as_secs()
            );
        }
        self.next_sweep = now + self.partial_ttl.min(SWEEP_INTERVAL);
    }

    /// Looks at the token file; when it changed, ends the sessions whose
    /// token was revoked (within [`TOKEN_CHECK_INTERVAL`] of `ftxd token
    /// revoke`).
    fn check_tokens(&mut self, now: Instant) {
        self.next_token_check = Some(now + TOKEN_CHECK_INTERVAL);
        if !self.security.gate.borrow_mut().refresh() {
            return;
        }
        let keys: Vec<usize> = self
            .conns
            .iter_mut()
            .filter_map(|(key, c)| c.end_if_revoked().then_some(key))
            .collect();
        for key in keys {
            self.drive(Token(key), now);
        }
    }

    /// Accepts waiting connections, at most [`ACCEPT_BATCH`] before the
    /// loop turns to the connections it serves.
    fn accept_all(&mut self, now: Instant) {
        for _ in 0..ACCEPT_BATCH {
            match self.listener.accept() {
                Ok((stream, peer)) => self.add(stream, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if out_of_descriptors(&e) => {
                    warn!("cannot accept: {e}; pausing accepts for {ACCEPT_BACKOFF:?}");
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    return;
                }
                // A connection that died in the backlog, or another
                // per-connection failure: skip it.
                Err(e) => debug!("accept failed: {e}"),
            }
        }
        self.accept_more = true;
    }

    fn add(&mut self, stream: mio::net::TcpStream, peer: std::net::SocketAddr, now: Instant) {
        let group = address_group(peer.ip());
        // A listed balancer's connection is counted once its PROXY header
        // named the client (see `Server::readdress`).
        let proxied = self.proxies.contains(&peer.ip());
        let from_group = self.per_ip.get(&group).copied().unwrap_or(0);
        if !proxied && from_group >= self.max_per_ip {
            conn::refuse(
                stream,
                peer,
                ErrorCode::TooManyFromAddress,
                "too many connections from your address",
            );
            return;
        }
        // Room for a newcomer: a connection still in its handshake gives
        // way to it; served clients never do.
        // Each round closes a connection in its handshake or sees one
        // welcomed (which frees the handshake budget, not a slot), so it
        // ends.
        while self.starting >= self.max_startups || self.conns.len() >= self.max_connections {
            if !self.make_room_for_a_startup(now) {
                conn::refuse(stream, peer, ErrorCode::Busy, "too many connections");
                return;
            }
        }
        // Small replies (acks, errors) must not wait for Nagle.
        if let Err(e) = stream.set_nodelay(true) {
            debug!("{peer}: cannot set TCP_NODELAY: {e}");
        }
        let open = self.conns.len() + 1;
        let entry = self.conns.vacant_entry();
        let token = Token(entry.key());
        let session = ServerSession::new(Arc::clone(&self.session_config), now);
        let security = Rc::clone(&self.security);
        match Conn::new(
            stream,
            peer,
            session,
            self.poll.registry(),
            token,
            now,
            security,
        ) {
            Ok(mut c) => {
                if proxied {
                    c.behind_proxy();
                }
                info!("{peer}: connection opened ({open} open)");
                entry.insert(c);
                self.starting += 1;
                if !proxied {
                    *self.per_ip.entry(group).or_insert(0) += 1;
                    *self.starting_by_group.entry(group).or_insert(0) += 1;
                }
                self.startups.push_back((token.0, now));
                // Entries of finished handshakes are dropped lazily: once
                // they outnumber those still starting, as a whole.
                if self.startups.len() > 2 * self.starting + 16 {
                    self.forget_finished_startups();
                }
                self.drive(token, now);
            }
            Err(e) => warn!("{peer}: cannot register the connection: {e}"),
        }
    }

    /// Drives one connection and acts on the outcome: close it, queue it
    /// for another turn, or update its interest and timer.
    fn drive(&mut self, token: Token, now: Instant) {
        let Some(c) = self.conns.get_mut(token.0) else {
            return;
        };
        c.set_output_cap(if self.output > OUTPUT_BUDGET {
            MIN_OUTPUT_CAP
        } else {
            MAX_PENDING_OUTPUT
        });
        // What the others of this connection's token (or network) hold
        // reserved; its own count is under the key it was made with.
        let key = c.reserve_key();
        let mut others = self.reserved.get(&key).copied().unwrap_or(0);
        if c.counted_reserve.1 == Some(key) {
            others -= c.counted_reserve.0;
        }
        c.limit_reserve(RESERVE_CAP.saturating_sub(others));
        let mut step = c.drive(&self.store, &mut self.disk, now);
        if c.take_readdressed() {
            let group = address_group(c.peer().ip());
            if self.per_ip.get(&group).copied().unwrap_or(0) >= self.max_per_ip {
                c.refuse_now(
                    ErrorCode::TooManyFromAddress,
                    "too many connections from your address",
                    now,
                );
                // Driven again to tell it, then closed.
                step = Step::Again;
            } else {
                *self.per_ip.entry(group).or_insert(0) += 1;
                if c.starting {
                    *self.starting_by_group.entry(group).or_insert(0) += 1;
                }
                c.counted = true;
            }
        }
        let queued = c.output_memory();
        self.output = self.output + queued - std::mem::replace(&mut c.counted_output, queued);
        // Counted again, under the key it has now: a `Hello` and a `Put`
        // read in one turn change the key (network -> token) in between.
        let held = (c.reserved_ahead(), Some(c.reserve_key()));
        if held != c.counted_reserve {
            uncount_reserve(&mut self.reserved, c.counted_reserve);
            if held.0 > 0 {
                *self.reserved.entry(c.reserve_key()).or_insert(0) += held.0;
                c.counted_reserve = held;
            } else {
                c.counted_reserve = (0, None);
            }
        }
        let welcomed = c.starting && c.welcomed();
        if welcomed {
            c.starting = false;
            self.starting -= 1;
            if c.counted {
                forget_one(&mut self.starting_by_group, address_group(c.peer().ip()));
            }
        }
        let step = match (step, c.update_interest(self.poll.registry(), token)) {
            (Step::Close, _) => Step::Close,
            (s, Ok(())) => s,
            (_, Err(e)) => {
                warn!("{}: cannot update interest: {e}", c.peer());
                Step::Close
            }
        };
        match step {
            Step::Close => {
                let why = c.close_reason.to_string();
                self.close(token, &why);
                return;
            }
            // Once: queued again at each readiness event, a busy
            // connection was driven one more time every turn, and the
            // others waited longer and longer for the next poll.
            Step::Again if !std::mem::replace(&mut c.queued, true) => self.again.push_back(token),
            Step::Again | Step::Wait => {}
        }
        if welcomed && self.startups.len() > 2 * self.starting + 16 {
            self.forget_finished_startups();
        }
        self.arm(token);
    }

    /// Hands the outcomes of finished disk jobs to their connections (if
    /// still open and waiting for them), which are then driven next turn
    /// with the busy ones ([`Server::drive_again`]): driven at once, an
    /// upload whose flushes come back every MiB got a drive per flush
    /// besides its own, and an `ls` waited for all of them.
    fn finish_disk_jobs(&mut self, now: Instant) {
        for (owner, outcome) in self.disk.take_done() {
            if owner.token == health::PROBE_OWNER {
                if let Some(h) = self.health.as_mut() {
                    h.probe_done(owner.job, outcome, now);
                }
                continue;
            }
            let Some(c) = self.conns.get_mut(owner.token.0) else {
                continue;
            };
            c.disk_done(owner.job, outcome, &self.store, &mut self.disk, now);
            if !std::mem::replace(&mut c.queued, true) {
                self.again.push_back(owner.token);
            }
        }
    }

    /// Drives the first `n` connections queued to be driven again (those
    /// queued before this turn).
    fn drive_again(&mut self, n: usize, now: Instant) {
        for _ in 0..n.min(self.again.len()) {
            if let Some(token) = self.again.pop_front() {
                if let Some(c) = self.conns.get_mut(token.0) {
                    c.queued = false;
                }
                self.drive(token, now);
            }
        }
    }

    /// Puts the connection's deadline in the heap if it is earlier than
    /// the one already there.
    fn arm(&mut self, token: Token) {
        let Some(c) = self.conns.get_mut(token.0) else {
            return;
        };
        if let Some(d) = c.deadline() {
            if c.armed.is_none_or(|a| d < a) {
                c.armed = Some(d);
                self.timers.push(Reverse((d, token.0)));
            }
        }
    }

    fn expire_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, key))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(c) = self.conns.get_mut(key) else {
                continue;
            };
            if c.armed != Some(t) {
                // Superseded by an earlier entry that already fired.
                continue;
            }
            c.armed = None;
            if c.deadline().is_some_and(|d| d <= now) {
                c.handle_timeout(now);
                self.drive(Token(key), now);
            } else {
                self.arm(Token(key));
            }
        }
    }

    /// Makes room for a newcomer among the connections still in their
    /// handshake; false when none is. A connection that has sent nothing
    /// at all goes first: the oldest silent one of the network (/24, /64)
    /// that holds the most connections in their handshake, after its
    /// socket is read once more (a `Hello` waiting there gets it served
    /// instead). Only when none is silent does the oldest connection of
    /// the busiest network go. A flood of silent connections pushes out
    /// its own, not a client in the middle of its handshake, nor one from
    /// another network.
    fn make_room_for_a_startup(&mut self, now: Instant) -> bool {
        loop {
            let conns = &self.conns;
            self.startups.retain(|&(key, opened)| {
                conns
                    .get(key)
                    .is_some_and(|c| c.starting && c.opened() == opened)
            });
            // The oldest silent and the oldest heard of each network.
            let mut silent = HashMap::new();
            let mut heard = HashMap::new();
            for &(key, _) in &self.startups {
                let c = &self.conns[key];
                let which = if c.heard() { &mut heard } else { &mut silent };
                which.entry(address_group(c.peer().ip())).or_insert(key);
            }
            let counts = &self.starting_by_group;
            let busiest = |of: &HashMap<std::net::IpAddr, usize>| {
                of.iter()
                    .max_by_key(|&(g, _)| (counts.get(g).copied().unwrap_or(0), *g))
                    .map(|(_, key)| *key)
            };
            if let Some(key) = busiest(&silent) {
                // Its readable event may not have been handled yet.
                self.conns[key].may_read();
                self.drive(Token(key), now);
                match self.conns.get(key) {
                    // Welcomed, or closed: room in the handshake budget.
                    Some(c) if !c.starting => return true,
                    None => return true,
                    Some(c) if !c.heard() => {
                        self.drop_startup(key);
                        return true;
                    }
                    // It spoke: look again.
                    Some(_) => continue,
                }
            }
            return match busiest(&heard) {
                Some(key) => {
                    self.drop_startup(key);
                    true
                }
                None => false,
            };
        }
    }

    fn drop_startup(&mut self, key: usize) {
        if let Some(c) = self.conns.get(key) {
            debug!(
                "{}: dropped: too many connections in their handshake",
                c.peer()
            );
        }
        self.close(Token(key), "dropped to make room: still in its handshake");
    }
    /// Removes the entries of connections that finished their handshake
    /// or closed, so the queue stays about as small as the number of
    /// connections in their handshake now (and gives its memory back: ten
    /// thousand served connections must not keep 16 bytes each here).
    fn forget_finished_startups(&mut self) {
        let conns = &self.conns;
        self.startups.retain(|&(key, opened)| {
            conns
                .get(key)
                .is_some_and(|c| c.starting && c.opened() == opened)
        });
        if self.startups.capacity() > 4 * self.startups.len() + 64 {
            self.startups.shrink_to(2 * self.startups.len() + 16);
        }
    }

    fn close(&mut self, token: Token, why: &str) {
        if let Some(c) = self.conns.try_remove(token.0) {
            let group = address_group(c.peer().ip());
            if c.counted {
                forget_one(&mut self.per_ip, group);
            }
            if c.starting {
                self.starting -= 1;
                if c.counted {
                    forget_one(&mut self.starting_by_group, group);
                }
            }
            self.output -= c.counted_output;
            uncount_reserve(&mut self.reserved, c.counted_reserve);
            c.close(&self.store, self.poll.registry(), why);
        }
    }

    fn close_all(&mut self) {
        if let Some(h) = self.health.as_mut() {
            h.close_all(self.poll.registry());
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(Token(key), "server shutting down");
        }
    }
}

/// Takes a connection's counted reservation (bytes, and the key it was
/// counted under) out of the totals (removed at zero).
fn uncount_reserve(totals: &mut HashMap<ReserveKey, u64>, counted: (u64, Option<ReserveKey>)) {
    let (bytes, Some(key)) = counted else {
        return;
    };
    if let Some(total) = totals.get_mut(&key) {
        *total -= bytes;
        if *total == 0 {
            totals.remove(&key);
        }
    }
}

/// Counts one connection of `group` out of `counts` (removed at zero).
fn forget_one(counts: &mut HashMap<std::net::IpAddr, usize>, group: std::net::IpAddr) {
    if let Some(n) = counts.get_mut(&group) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&group);
        }
    }
}

/// The group an address is counted in for `--max-per-ip`: its IPv4 /24 or
/// IPv6 /64 (one host usually holds a whole /64, and a /24 is what one
/// attacker most cheaply has), an IPv4-mapped IPv6 address as IPv4.
pub(crate) fn address_group(ip: std::net::IpAddr) -> std::net::IpAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
    }
}

/// How often the ages of the disk jobs are looked at: a tenth of the
/// storage timeout (a job fails at most 10% late), between 10 ms and 1 s.
fn disk_check_interval(limit: Duration) -> Duration {
    (limit / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

/// Raises the soft open-file limit to the hard one and returns how many
/// connections fit: the configured number, at most the limit minus a
/// reserve of a quarter of it (16 to 256), and at least 1.
fn fit_connections(configured: usize) -> usize {
    let limit = raise_fd_limit();
    let reserve = (limit / 4).clamp(FD_RESERVE_MIN, FD_RESERVE_MAX);
    let fit = usize::try_from(limit.saturating_sub(reserve))
        .unwrap_or(usize::MAX)
        .max(1);
    if configured > fit {
        warn!(
            "open-file limit is {limit}: serving at most {fit} connections instead of {configured}"
        );
        fit
    } else {
        info!("serving at most {configured} connections (open-file limit {limit})");
        configured
    }
}

/// Sets the soft `RLIMIT_NOFILE` to the hard limit when allowed; returns
/// the soft limit in force afterwards.
fn raise_fd_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    // `None` is RLIM_INFINITY, the largest limit.
    let rl = getrlimit(Resource::Nofile);
    let (soft, hard) = (
        rl.current.unwrap_or(u64::MAX),
        rl.maximum.unwrap_or(u64::MAX),
    );
    if soft < hard {
        let raised = Rlimit {
            current: rl.maximum,
            maximum: rl.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return hard,
            Err(e) => debug!("cannot raise the open-file limit: {}", io::Error::from(e)),
        }
    }
    soft
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame;
    use crate::proto::message::Message;
    use crate::server::config::{
        AccessConfig, Verbosity, DEFAULT_MAX_PER_IP, DEFAULT_MAX_STARTUPS,
    };
    use crate::server::store::StoreConfig;
    use std::io::Read;
    use std::net::TcpStream;
    use std::thread::JoinHandle;

    fn start(
        root: &std::path::Path,
        max_connections: usize,
        handshake: Duration,
    ) -> (std::net::SocketAddr, Shutdown, JoinHandle<io::Result<()>>) {
        start_with(root, max_connections, DEFAULT_MAX_STARTUPS, handshake)
    }

    fn start_with(
        root: &std::path::Path,
        max_connections: usize,
        max_startups: usize,
        handshake: Duration,
    ) -> (std::net::SocketAddr, Shutdown, JoinHandle<io::Result<()>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let config = ServerConfig {
            listen: addr,
            store: StoreConfig {
                root: root.to_path_buf(),
                read_only: false,
                max_file_size: None,
                fsync: false,
            },
            max_connections,
            max_per_ip: DEFAULT_MAX_PER_IP,
            max_startups,
            idle_timeout: Duration::from_secs(300),
            stall_timeout: Duration::from_secs(60),
            storage_timeout: Duration::from_secs(60),
            health: None,
            handshake_timeout: handshake,
            partial_ttl: Duration::from_secs(7 * 86_400),
            verbosity: Verbosity::Normal,
            access: AccessConfig::plain_open(),
            reuse_port: false,
            proxy_protocol: Vec::new(),
        };
        let shutdown = Shutdown::new();
        let s = shutdown.clone();
        let handle = std::thread::spawn(move || run(listener, config, s));
        (addr, shutdown, handle)
    }

    fn read_to_eof(mut s: TcpStream) -> Vec<u8> {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn shutdown_stops_the_loop() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, shutdown, handle) = start(dir.path(), 10, Duration::from_secs(10));
        let client = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        shutdown.trigger();
        handle.join().unwrap().unwrap();
        // The connection was closed by the server.
        assert!(read_to_eof(client).is_empty());
    }

    /// A connection that says `Hello` and reads the `Welcome`.
    fn welcomed(addr: std::net::SocketAddr) -> TcpStream {
        use std::io::Write;
        let mut s = TcpStream::connect(addr).unwrap();
        let mut hello = Vec::new();
        frame::encode(
            &Message::Hello {
                magic: crate::proto::limits::MAGIC,
                min_version: crate::proto::limits::PROTOCOL_VERSION,
                max_version: crate::proto::limits::PROTOCOL_VERSION,
                flags: 0,
                token: vec![],
            },
            &mut hello,
        );
        s.write_all(&hello).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = vec![0u8; 256];
        let n = (&s).read(&mut buf).unwrap();
        assert!(
            matches!(
                frame::decode(&buf[..n]),
                Ok(Some((Message::Welcome { .. }, _)))
            ),
            "no Welcome: {:?}",
            &buf[..n]
        );
        s
    }

    /// True when the server closed `s` (end of stream, after whatever it
    /// sent) within a short wait; false when it stays open.
    fn closed(s: &TcpStream) -> bool {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 64];
        loop {
            match (&*s).read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => return e.kind() == io::ErrorKind::ConnectionReset,
            }
        }
    }

    #[test]
    fn extra_connections_are_told_busy() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, shutdown, handle) = start(dir.path(), 1, Duration::from_secs(10));
        // A served client is never dropped for a newcomer.
        let first = welcomed(addr);
        let second = TcpStream::connect(addr).unwrap();
        let bytes = read_to_eof(second);
        let (msg, _) = frame::decode(&bytes).unwrap().unwrap();
        match msg {
            Message::Error { code, message } => {
                assert_eq!(code, ErrorCode::Busy);
                assert_eq!(message, "too many connections");
            }
            other => panic!("unexpected {other:?}"),
        }
        // Once the first leaves, a new connection is served (kept open).
        drop(first);
        std::thread::sleep(Duration::from_millis(50));
        let third = TcpStream::connect(addr).unwrap();
        third
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 16];
        let r = (&third).read(&mut buf);
        assert!(r.is_err(), "not refused: {r:?}");
        shutdown.trigger();
        handle.join().unwrap().unwrap();
    }

    /// Past `--max-startups`, the oldest connection still in its
    /// handshake is dropped for the newcomer; served ones stay; a full
    /// server drops a silent connection rather than refuse a new one.
    #[test]
    fn silent_connections_give_way_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, shutdown, handle) = start_with(dir.path(), 4, 2, Duration::from_secs(10));
        let served = welcomed(addr);
        let a = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let b = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        // Two in their handshake: the budget is full; the next drops `a`.
        let c = TcpStream::connect(addr).unwrap();
        assert!(closed(&a), "the oldest silent connection was not dropped");
        // The newcomer can finish its handshake, served or not.
        let d = welcomed(addr);
        assert!(closed(&b), "b should have given way to d");
        assert!(!closed(&served) && !closed(&d), "served clients stay");
        drop(c);
        shutdown.trigger();
        handle.join().unwrap().unwrap();
    }

    #[test]
    fn address_groups_are_a_v4_slash_24_and_a_v6_slash_64() {
        let g = |s: &str| address_group(s.parse().unwrap()).to_string();
        assert_eq!(g("10.1.2.3"), "10.1.2.0");
        assert_eq!(g("10.1.2.250"), "10.1.2.0");
        assert_eq!(g("::ffff:10.1.2.3"), "10.1.2.0");
        assert_eq!(g("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
    }

    #[test]
    fn silent_clients_time_out() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, shutdown, handle) = start(dir.path(), 10, Duration::from_millis(100));
        let started = Instant::now();
        let client = TcpStream::connect(addr).unwrap();
        read_to_eof(client);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");
        shutdown.trigger();
        handle.join().unwrap().unwrap();
    }

    #[test]
    fn bad_root_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, handle) = start(&dir.path().join("missing"), 10, Duration::from_secs(1));
        let e = handle.join().unwrap().unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
