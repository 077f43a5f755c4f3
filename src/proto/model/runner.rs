//! The runner: plays sequences of operations through two client
//! connections (real `ClientSession`s and `ServerSession`s, bytes cut on
//! the way) sharing one `MemStore`, and checks every step against the
//! model: exactly one result per request, the model's result, the same
//! tree, both connections ready for the next request.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;
use std::time::Instant;

use super::tree::{Model, Node, PutPlan};
use super::{content, decode_ops, Op, PutMode, Stop};
use crate::proto::client_session::{ClientEvent, ClientSession};
use crate::proto::error::ErrorCode;
use crate::proto::limits::MIN_WINDOW;
use crate::proto::server_session::{ServerSession, SessionConfig};
use crate::proto::testing::MemStore;

/// How bytes are cut on the wire, chosen per sequence.
const SLICINGS: &[&[usize]] = &[
    &[3, 1, 4093],
    &[7, 65_537, 13],
    &[usize::MAX],
    &[1, 100_000],
];

/// Most pump rounds one request may take before it counts as stuck.
const MAX_ROUNDS: usize = 1_000_000;

/// Why a sequence failed: the step, what was expected and what happened.
#[derive(Debug)]
pub struct Failure {
    /// Operations run, the failing one last.
    pub ops: Vec<Op>,
    /// What went wrong.
    pub what: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.what)?;
        writeln!(f, "after these {} operations:", self.ops.len())?;
        for (i, op) in self.ops.iter().enumerate() {
            writeln!(f, "  {i:3}: {op:?}")?;
        }
        Ok(())
    }
}

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Flips one byte of the first `Data` frame's payload that passes, by
/// following frame boundaries in a byte stream cut anywhere.
#[derive(Debug, Default)]
struct Corruptor {
    armed: bool,
    /// Bytes of the current frame's header seen (length + type).
    head: Vec<u8>,
    /// Bytes of the current frame still to come after the header.
    left: usize,
    /// Position in the current frame's body (after the type byte).
    at: usize,
    data_frame: bool,
}

impl Corruptor {
    fn pass(&mut self, bytes: &mut [u8]) {
        let mut i = 0;
        while i < bytes.len() {
            if self.left == 0 {
                self.head.push(bytes[i]);
                i += 1;
                if self.head.len() == 5 {
                    let len = u32::from_be_bytes([
                        self.head[0],
                        self.head[1],
                        self.head[2],
                        self.head[3],
                    ]);
                    self.data_frame = self.head[4] == 0x20;
                    self.left = (len as usize).saturating_sub(1);
                    self.at = 0;
                    self.head.clear();
                }
                continue;
            }
            // The rest of this frame's body that is here, in one step.
            let n = self.left.min(bytes.len() - i);
            // Data body: offset u64, then the payload.
            if self.armed && self.data_frame && (self.at..self.at + n).contains(&8) {
                bytes[i + 8 - self.at] ^= 0x55;
                self.armed = false;
            }
            self.at += n;
            self.left -= n;
            i += n;
        }
    }
}

/// How far an upload went before it failed.
#[derive(Debug, Clone, Copy)]
struct Ended {
    /// The client.
    c: usize,
    /// Bytes the client sent (a resumed prefix included).
    sent: u64,
    /// The client cancelled it.
    cancelled: bool,
    /// A write already failed with this code (seen while it paused).
    write_failed: Option<ErrorCode>,
}

/// One client connection: the two sessions and the wire between them.
struct Link {
    client: ClientSession,
    server: ServerSession,
    /// The store's number for this connection's server session.
    id: usize,
    c2s: Corruptor,
    s2c: Corruptor,
}

/// Plays sequences of [`Op`]s through two client connections sharing one
/// [`MemStore`], checking every step against the [`Model`].
pub struct Runner {
    store: MemStore,
    model: Model,
    links: Vec<Link>,
    config: SessionConfig,
    now: Instant,
    slices: &'static [usize],
    slice: usize,
    next_id: usize,
    /// Each client's downloads in progress, by remote name (its part files).
    local: [BTreeMap<String, Vec<u8>>; 2],
    /// Each client's last interrupted upload (name, file) and download.
    last_put: [Option<(String, Vec<u8>)>; 2],
    last_get: [Option<String>; 2],
    /// How many requests ran.
    pub requests: u64,
    /// How often each path through a request was taken ("put resumed",
    /// "get refused NotFound", ...): what a run reached.
    pub seen: BTreeMap<String, u64>,
}

impl Runner {
    /// A runner on an empty store, cutting bytes as `slicing` (an index
    /// into its table) says, two clients connected.
    pub fn new(slicing: u8) -> Runner {
        let config = SessionConfig {
            window: MIN_WINDOW,
            ..SessionConfig::default()
        };
        let mut r = Runner {
            store: MemStore {
                open: true,
                ..MemStore::default()
            },
            model: Model::default(),
            links: Vec::new(),
            config,
            now: Instant::now(),
            slices: SLICINGS[usize::from(slicing) % SLICINGS.len()],
            slice: 0,
            next_id: 0,
            local: Default::default(),
            last_put: Default::default(),
            last_get: Default::default(),
            requests: 0,
            seen: BTreeMap::new(),
        };
        for _ in 0..2 {
            let link = r.connect().expect("handshake");
            r.links.push(link);
        }
        r
    }

    /// Runs a whole sequence (the first record chooses the slicing).
    pub fn run_records(bytes: &[u8]) -> Result<u64, Failure> {
        let slicing = bytes.first().copied().unwrap_or(0);
        let ops = decode_ops(bytes.get(1..).unwrap_or_default());
        let mut r = Runner::new(slicing);
        r.run(&ops)?;
        Ok(r.requests)
    }

    /// Runs `ops` one after another, then lists the root on both clients.
    pub fn run(&mut self, ops: &[Op]) -> Result<(), Failure> {
        let fail = |i: usize, what: String| Failure {
            ops: ops[..=i.min(ops.len().saturating_sub(1))].to_vec(),
            what,
        };
        for (i, op) in ops.iter().enumerate() {
            self.step(op)
                .and_then(|()| self.check_settled())
                .map_err(|e| fail(i, format!("step {i} ({op:?}): {e}")))?;
        }
        for c in 0..2 {
            self.list(c, "")
                .map_err(|e| fail(ops.len(), format!("final listing on client {c}: {e}")))?;
        }
        Ok(())
    }

    fn connect(&mut self) -> Result<Link, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut link = Link {
            client: ClientSession::new(Vec::new()),
            server: ServerSession::new(self.config.clone(), self.now),
            id,
            c2s: Corruptor::default(),
            s2c: Corruptor::default(),
        };
        for _ in 0..MAX_ROUNDS {
            match link.client.poll_event() {
                Some(ClientEvent::Connected { .. }) => return Ok(link),
                Some(other) => return Err(format!("handshake: {other:?}")),
                None => {}
            }
            if !self.move_bytes(&mut link) {
                return Err("handshake stalled".into());
            }
        }
        Err("handshake never ended".into())
    }

    fn next_slice(&mut self) -> usize {
        let n = self.slices[self.slice % self.slices.len()];
        self.slice += 1;
        n
    }

    /// Moves one slice each way on `link`; false when nothing moved.
    fn move_bytes(&mut self, link: &mut Link) -> bool {
        let mut moved = false;
        let n = self.next_slice().min(link.client.poll_transmit().len());
        if n > 0 {
            let mut bytes = link.client.poll_transmit()[..n].to_vec();
            link.client.consume_transmit(n);
            link.c2s.pass(&mut bytes);
            link.server.handle_input(&bytes, self.now);
            moved = true;
        }
        self.store.drive_conn(link.id, &mut link.server);
        let n = self.next_slice().min(link.server.poll_transmit().len());
        if n > 0 {
            let mut bytes = link.server.poll_transmit()[..n].to_vec();
            link.server.consume_transmit(n);
            link.s2c.pass(&mut bytes);
            link.client.handle_input(&bytes);
            moved = true;
        }
        self.store.drive_conn(link.id, &mut link.server);
        moved
    }

    /// The next event of client `c`, moving bytes as needed; `feed` is
    /// offered the chance to send upload data before each round (true if it
    /// sent some). `None`: all is quiet and no event came.
    fn poll(
        &mut self,
        c: usize,
        feed: &mut dyn FnMut(&mut ClientSession) -> bool,
    ) -> Result<Option<ClientEvent>, String> {
        self.with_link(c, |r, link| {
            for _ in 0..MAX_ROUNDS {
                // Input first (acknowledgments open the window), then data.
                if let Some(ev) = link.client.poll_event() {
                    return Ok(Some(ev));
                }
                let fed = feed(&mut link.client);
                if !r.move_bytes(link) && !fed {
                    if link.server.is_closed() && !link.client.is_closed() {
                        link.client.handle_eof();
                        continue;
                    }
                    return Ok(None);
                }
            }
            Err("the request never ended".to_owned())
        })
    }

    /// The next event of client `c`: an answer must come.
    fn event(&mut self, c: usize) -> Result<ClientEvent, String> {
        self.poll(c, &mut |_| false)?
            .ok_or_else(|| "the request got no answer: nothing moves".to_owned())
    }

    /// Counts one pass through a path of interest.
    fn hit(&mut self, what: impl Into<String>) {
        *self.seen.entry(what.into()).or_default() += 1;
    }

    fn link(&mut self, c: usize) -> &mut Link {
        &mut self.links[c]
    }

    /// After a request: nothing more arrives, both sides are between
    /// requests, the store's transfer is over.
    fn check_settled(&mut self) -> Check {
        for c in 0..self.links.len() {
            let (extra, idle, closed, busy) = self.with_link(c, |r, link| {
                while r.move_bytes(link) {}
                // A corruption that found no data must not hit the next request.
                link.c2s.armed = false;
                link.s2c.armed = false;
                let extra = link.client.poll_event();
                (
                    extra,
                    link.client.is_idle(),
                    link.server.is_closed(),
                    link.server.in_transfer(),
                )
            });
            ensure!(extra.is_none(), "client {c} got a second result: {extra:?}");
            ensure!(idle, "client {c} is not ready for another request");
            ensure!(!closed, "client {c}'s connection was closed by the server");
            ensure!(
                !busy,
                "client {c}'s server session still thinks a transfer runs"
            );
        }
        ensure!(
            self.store.upload.is_none(),
            "the store still holds an upload"
        );
        self.check_tree()
    }

    fn check_tree(&self) -> Check {
        let mut files = BTreeMap::new();
        let mut dirs = BTreeSet::new();
        for (p, n) in &self.model.nodes {
            match n {
                Node::File(d) => {
                    files.insert(p.clone(), d.clone());
                }
                Node::Dir => {
                    dirs.insert(p.clone());
                }
            }
        }
        ensure!(
            self.store.dirs == dirs,
            "directories: store {:?}, model {dirs:?}",
            self.store.dirs
        );
        if self.store.files != files {
            let show = |m: &BTreeMap<String, Vec<u8>>| -> Vec<(String, usize)> {
                m.iter().map(|(k, v)| (k.clone(), v.len())).collect()
            };
            return Err(format!(
                "files (name, size): store {:?}, model {:?}",
                show(&self.store.files),
                show(&files)
            ));
        }
        if self.store.parts != self.model.parts {
            let show = |m: &BTreeMap<String, Vec<u8>>| -> Vec<(String, usize)> {
                m.iter().map(|(k, v)| (k.clone(), v.len())).collect()
            };
            return Err(format!(
                "parts (name, size): store {:?}, model {:?}",
                show(&self.store.parts),
                show(&self.model.parts)
            ));
        }
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Check {
        match op {
            Op::List { c, path } => self.list(*c, path),
            Op::Put {
                c,
                path,
                len,
                seed,
                mode,
                stop,
            } => match (&self.last_put[*c], mode) {
                (Some((path, data)), PutMode::ResumeLast) => {
                    let (path, data) = (path.clone(), data.clone());
                    self.put(*c, &path, &data, PutMode::Resume, *stop, None)
                }
                _ => {
                    let data = content(*len, *seed);
                    let mode = if *mode == PutMode::ResumeLast {
                        PutMode::Resume
                    } else {
                        *mode
                    };
                    self.put(*c, path, &data, mode, *stop, None)
                }
            },
            Op::Get {
                c,
                path,
                resume,
                stop,
            } => match (&self.last_get[*c], resume) {
                (Some(last), true) => {
                    let last = last.clone();
                    self.get(*c, &last, true, *stop)
                }
                _ => self.get(*c, path, *resume, *stop),
            },
            Op::Mkdir { c, path } => {
                let want = self.model.mkdir(path);
                self.link(*c)
                    .client
                    .mkdir(path)
                    .map_err(|e| e.to_string())?;
                self.simple(*c, want)
            }
            Op::Remove { c, path } => {
                let want = self.model.remove(path);
                self.link(*c)
                    .client
                    .remove(path)
                    .map_err(|e| e.to_string())?;
                self.simple(*c, want)
            }
            Op::Rename { c, from, to } => {
                let want = self.model.rename(from, to);
                self.link(*c)
                    .client
                    .rename(from, to)
                    .map_err(|e| e.to_string())?;
                self.simple(*c, want)
            }
            Op::ReadOnly(on) => {
                self.store.read_only = *on;
                self.model.read_only = *on;
                Ok(())
            }
            Op::Space(free) => {
                self.store.space = *free;
                self.model.space = *free;
                Ok(())
            }
            Op::MaxSize(max) => {
                self.store.max_size = *max;
                self.model.max_size = *max;
                Ok(())
            }
            Op::FailWrite(fail) => {
                self.store.fail_write_at = *fail;
                self.model.fail_write = *fail;
                Ok(())
            }
            Op::Idle => self.idle(),
            Op::Overlap {
                path,
                len,
                seed,
                mode,
                pause,
                inner,
            } => {
                let data = content(*len, *seed);
                let inner = inner.as_ref().clone();
                let mode = if *mode == PutMode::ResumeLast {
                    PutMode::Resume
                } else {
                    *mode
                };
                self.put(0, path, &data, mode, Stop::Finish, Some((*pause, inner)))
            }
        }
    }

    fn list(&mut self, c: usize, path: &str) -> Check {
        self.requests += 1;
        let want = self.model.list(path);
        self.link(c).client.list(path).map_err(|e| e.to_string())?;
        let got = match self.event(c)? {
            ClientEvent::Listing(entries) => Ok(entries
                .into_iter()
                .map(|e| (e.name, e.kind, e.size))
                .collect::<Vec<_>>()),
            ClientEvent::Failed(e) => Err(e.code),
            other => return Err(format!("list: unexpected {other:?}")),
        };
        ensure!(
            got == want,
            "list '{path}': got {got:?}, model says {want:?}"
        );
        if let Err(code) = want {
            self.hit(format!("list refused {code:?}"));
        }
        Ok(())
    }

    fn simple(&mut self, c: usize, want: Result<(), ErrorCode>) -> Check {
        self.requests += 1;
        if let Err(code) = want {
            self.hit(format!("mkdir/rm/rename refused {code:?}"));
        }
        let got = match self.event(c)? {
            ClientEvent::Ok => Ok(()),
            ClientEvent::Failed(e) => Err(e.code),
            other => return Err(format!("unexpected {other:?}")),
        };
        ensure!(got == want, "got {got:?}, model says {want:?}");
        Ok(())
    }

    fn idle(&mut self) -> Check {
        self.now += self.config.idle_timeout + Duration::from_secs(1);
        for c in 0..2 {
            let now = self.now;
            self.link(c).server.handle_timeout(now);
            match self.event(c)? {
                ClientEvent::Closed(e) if e.code == ErrorCode::Timeout => self.hit("idle timeout"),
                other => {
                    return Err(format!(
                        "idle client {c}: expected a timeout, got {other:?}"
                    ))
                }
            }
            self.reconnect(c)?;
        }
        Ok(())
    }

    /// A fresh connection in place of client `c`'s (its old server
    /// session already saw the end).
    fn reconnect(&mut self, c: usize) -> Check {
        let link = self.connect()?;
        self.links[c] = link;
        Ok(())
    }

    /// One upload, through every turn it may take: refusal, a resumed
    /// prefix (checked, or found different and restarted), cancel, lost
    /// connection, corruption, a failing write, and an `overlap` (another
    /// client's request while this one is part way).
    fn put(
        &mut self,
        c: usize,
        path: &str,
        data: &[u8],
        mode: PutMode,
        stop: Stop,
        mut overlap: Option<(u64, Op)>,
    ) -> Check {
        self.requests += 1;
        let size = data.len() as u64;
        let resume = mode == PutMode::Resume;
        let mut max = size;
        let mut restarted = false;
        if size == 0 {
            // Nothing to pause in: the other client goes first.
            if let Some((_, inner)) = overlap.take() {
                self.step(&inner)?;
            }
        }
        'attempt: loop {
            let plan = self.model.put_start(c, path, size, mode, max);
            let force = mode == PutMode::Force;
            self.link(c)
                .client
                .put(path, size, resume.then_some(max), force)
                .map_err(|e| e.to_string())?;
            self.link(c).c2s.armed = stop == Stop::Corrupt;
            let mut sent = 0u64;
            let mut ready = false;
            let mut cancelled = false;
            let mut write_failed = None;
            loop {
                // Where the data stops for a while (the overlap's pause) or
                // for good (cancel, lost connection); always short of the
                // end, so that `Done` has not gone out.
                let limit = match (stop, &overlap) {
                    (_, Some((pause, _))) => (*pause).min(size - 1),
                    (Stop::Cancel(k) | Stop::Drop(k), _) if k < size => k,
                    _ => size,
                };
                // Data waits for PutReady on a resume; a fresh upload's may go first.
                let may_send = (!resume || ready) && !cancelled;
                if may_send && sent >= limit && sent < size {
                    if let Some((_, inner)) = overlap.take() {
                        // The data reaches the store, then the other client goes.
                        self.flush(c);
                        if plan.is_ok() {
                            // A failing write may already have ended it.
                            let held = self.model.put_data(c, &data[..sent as usize]);
                            let store_holds = self.store_holds_upload(c);
                            ensure!(
                                held.is_ok() == store_holds,
                                "put '{path}': paused, the store holds it: {store_holds}, the model: {held:?}"
                            );
                            write_failed = held.err();
                        }
                        self.hit("put paused for another client");
                        self.step(&inner)?;
                        self.check_tree()?;
                        continue;
                    }
                    match stop {
                        Stop::Cancel(_) => {
                            self.link(c).client.cancel();
                            cancelled = true;
                            continue;
                        }
                        Stop::Drop(_) => {
                            self.hit("put connection lost");
                            return self.lose_connection(c, path, data, sent, &plan);
                        }
                        _ => unreachable!("only a cancel or a lost connection stops short"),
                    }
                }
                let mut feed = |cl: &mut ClientSession| {
                    let want = (cl.wants_data() as u64).min(limit.saturating_sub(sent));
                    if !may_send || want == 0 {
                        return false;
                    }
                    cl.send_data(&data[sent as usize..(sent + want) as usize]);
                    sent += want;
                    true
                };
                let Some(ev) = self.poll(c, &mut feed)? else {
                    // Quiet at the stop or the pause: act on it above.
                    ensure!(
                        may_send && sent >= limit && sent < size,
                        "put '{path}': the request got no answer: nothing moves"
                    );
                    continue;
                };
                match ev {
                    ClientEvent::PutReady {
                        offset,
                        digest,
                        partial,
                        resumable,
                        ..
                    } => {
                        let Ok(p) = &plan else {
                            return Err(format!("put '{path}': accepted, model says {plan:?}"));
                        };
                        let got = PutPlan {
                            offset,
                            partial,
                            resumable,
                        };
                        ensure!(
                            &got == p,
                            "put '{path}': PutReady {got:?}, model says {p:?}"
                        );
                        ready = true;
                        if offset > 0 {
                            let mine = *blake3::hash(&data[..offset as usize]).as_bytes();
                            if mine != digest {
                                // The part holds another file: start over.
                                ensure!(!restarted, "a restarted resume offered a prefix again");
                                self.link(c).client.cancel();
                                match self.event(c)? {
                                    ClientEvent::Failed(e) if e.code == ErrorCode::Cancelled => {}
                                    other => {
                                        return Err(format!(
                                            "cancel of a mismatched resume: {other:?}"
                                        ))
                                    }
                                }
                                self.model.put_abort(c, true);
                                self.hit("put resume restarted");
                                restarted = true;
                                max = 0;
                                continue 'attempt;
                            }
                            let mut prefix = blake3::Hasher::new();
                            prefix.update(&data[..offset as usize]);
                            self.link(c).client.resume_with(prefix);
                            self.hit("put resumed");
                            sent = offset;
                        }
                    }
                    ClientEvent::PutDone { name, size: stored } => {
                        ensure!(plan.is_ok(), "put '{path}': stored, model says {plan:?}");
                        ensure!(
                            write_failed.is_none(),
                            "put '{path}': stored after a write failed with {write_failed:?}"
                        );
                        ensure!(
                            stored == size,
                            "put '{path}': stored {stored} bytes of {size}"
                        );
                        ensure!(!cancelled, "put '{path}': stored although cancelled");
                        let from = plan.as_ref().map_or(0, |p| p.offset);
                        let corrupt = stop == Stop::Corrupt && size > from;
                        ensure!(!corrupt, "put '{path}': corrupt data stored as '{name}'");
                        self.model_data(c, path, data)?;
                        let want = self.model.put_commit(c);
                        ensure!(
                            Ok(&name) == want.as_ref(),
                            "put '{path}': stored as '{name}', model says {want:?}"
                        );
                        self.last_put[c] = None;
                        self.hit(if name == path {
                            "put stored"
                        } else {
                            "put stored under a clash name"
                        });
                        return Ok(());
                    }
                    ClientEvent::Failed(e) => {
                        let end = Ended {
                            c,
                            sent,
                            cancelled,
                            write_failed,
                        };
                        return self.put_failed(path, data, stop, &end, &plan, e.code);
                    }
                    other => return Err(format!("put '{path}': unexpected {other:?}")),
                }
            }
        }
    }

    /// Runs `f` with client `c`'s link taken out, so that it can move
    /// bytes with the rest of the runner.
    fn with_link<T>(&mut self, c: usize, f: impl FnOnce(&mut Runner, &mut Link) -> T) -> T {
        let mut link = self.links.swap_remove(c);
        let out = f(self, &mut link);
        self.links.push(link);
        let last = self.links.len() - 1;
        self.links.swap(c, last);
        out
    }

    /// True when the store holds client `c`'s upload.
    fn store_holds_upload(&mut self, c: usize) -> bool {
        self.with_link(c, |r, link| {
            r.store.drive_conn(link.id, &mut link.server);
            r.store.upload.is_some()
        })
    }

    /// Moves bytes on client `c`'s link until nothing moves.
    fn flush(&mut self, c: usize) {
        self.with_link(c, |r, link| while r.move_bytes(link) {});
    }

    /// The model's running upload of client `c` received `data`.
    fn model_data(&mut self, c: usize, path: &str, data: &[u8]) -> Check {
        self.model
            .put_data(c, data)
            .map_err(|code| format!("put '{path}': the model fails a write with {code:?} here"))
    }

    /// An upload failed with `code`: the model must say why.
    fn put_failed(
        &mut self,
        path: &str,
        data: &[u8],
        stop: Stop,
        end: &Ended,
        plan: &Result<PutPlan, ErrorCode>,
        code: ErrorCode,
    ) -> Check {
        let Ended {
            c,
            sent,
            cancelled,
            write_failed,
        } = *end;
        let offset = match plan {
            Err(want) => {
                ensure!(
                    code == *want,
                    "put '{path}': got {code:?}, model says {want:?}"
                );
                self.hit(format!("put refused {code:?}"));
                return Ok(());
            }
            Ok(p) => p.offset,
        };
        // A failing write comes first: it happens as the data arrives.
        let write = match write_failed {
            Some(code) => Err(code),
            None => self.model.put_data(c, &data[..sent as usize]),
        };
        if let Err(want) = write {
            ensure!(
                code == want,
                "put '{path}': got {code:?}, the failing write says {want:?}"
            );
            self.hit(format!("put write failed {code:?}"));
            return Ok(());
        }
        if cancelled {
            ensure!(
                code == ErrorCode::Cancelled,
                "put '{path}': cancelled, got {code:?}"
            );
            self.hit("put cancelled");
            self.last_put[c] = Some((path.to_owned(), data.to_vec()));
            self.model.put_abort(c, true);
            return Ok(());
        }
        if stop == Stop::Corrupt && sent > offset {
            ensure!(
                code == ErrorCode::Integrity,
                "put '{path}': corrupted, got {code:?}"
            );
            self.hit("put integrity failure");
            self.model.put_abort(c, false);
            return Ok(());
        }
        if let Err(want) = self.model.put_commit(c) {
            ensure!(
                code == want,
                "put '{path}': commit failed with {code:?}, model says {want:?}"
            );
            self.hit(format!("put commit failed {code:?}"));
            return Ok(());
        }
        Err(format!(
            "put '{path}': failed with {code:?}, model says it succeeds"
        ))
    }

    /// The connection of client `c` is lost with `sent` bytes of the upload
    /// sent: they reach the server, then the end of the stream; the
    /// client connects again.
    fn lose_connection(
        &mut self,
        c: usize,
        path: &str,
        data: &[u8],
        sent: u64,
        plan: &Result<PutPlan, ErrorCode>,
    ) -> Check {
        self.with_link(c, |r, link| {
            while r.move_bytes(link) {}
            link.server.handle_eof();
            r.store.drive_conn(link.id, &mut link.server);
        });
        self.last_put[c] = Some((path.to_owned(), data.to_vec()));
        if plan.is_ok() && self.model.put_data(c, &data[..sent as usize]).is_ok() {
            self.model.put_abort(c, true);
        }
        self.reconnect(c)
    }

    /// One download, resumed from the client's part when asked: a prefix
    /// that matches is kept, one that differs is dropped and the download
    /// restarts; cancel keeps what arrived for the next resume.
    fn get(&mut self, c: usize, path: &str, resume: bool, stop: Stop) -> Check {
        self.requests += 1;
        let want = self.model.get(path);
        if !resume {
            self.local[c].remove(path);
        }
        let mut offset = self.local[c].get(path).map_or(0, |p| p.len() as u64);
        let mut restarted = false;
        'attempt: loop {
            self.link(c)
                .client
                .get(path, offset)
                .map_err(|e| e.to_string())?;
            if stop == Stop::Corrupt {
                self.link(c).s2c.armed = true;
            }
            let mut got: Vec<u8> = Vec::new();
            let mut start = 0u64;
            let mut cancelled = false;
            loop {
                let ev = self.event(c)?;
                match ev {
                    ClientEvent::GetReady {
                        size,
                        offset: from,
                        digest,
                        ..
                    } => {
                        let Ok(file) = &want else {
                            return Err(format!("get '{path}': served, model says {want:?}"));
                        };
                        ensure!(
                            size == file.len() as u64,
                            "get '{path}': size {size}, model {}",
                            file.len()
                        );
                        let expect_from = if offset > size { 0 } else { offset };
                        ensure!(
                            from == expect_from,
                            "get '{path}': from {from}, asked {offset}"
                        );
                        got = self.local[c].get(path).cloned().unwrap_or_default();
                        got.truncate(from as usize);
                        start = from;
                        if from > 0 {
                            if *blake3::hash(&got).as_bytes() != digest {
                                ensure!(!restarted, "a restarted download offered a prefix again");
                                self.link(c).client.cancel();
                                loop {
                                    match self.event(c)? {
                                        ClientEvent::GetData { .. } => {}
                                        ClientEvent::Failed(e)
                                            if e.code == ErrorCode::Cancelled =>
                                        {
                                            break
                                        }
                                        other => {
                                            return Err(format!(
                                                "cancel of a mismatched reget: {other:?}"
                                            ))
                                        }
                                    }
                                }
                                self.local[c].remove(path);
                                self.hit("get resume restarted");
                                offset = 0;
                                restarted = true;
                                continue 'attempt;
                            }
                            let mut prefix = blake3::Hasher::new();
                            prefix.update(&got);
                            self.link(c).client.resume_with(prefix);
                            self.hit("get resumed");
                        }
                        self.local[c].insert(path.to_owned(), got.clone());
                    }
                    ClientEvent::GetData { offset: at, len } => {
                        ensure!(
                            at == got.len() as u64,
                            "get '{path}': data at {at}, have {}",
                            got.len()
                        );
                        let link = self.link(c);
                        ensure!(link.client.data().len() == len, "get '{path}': data length");
                        got.extend_from_slice(self.links[c].client.data());
                        if !cancelled {
                            self.local[c].insert(path.to_owned(), got.clone());
                        }
                        let moved = got.len() as u64 - start;
                        match stop {
                            Stop::Cancel(k) if !cancelled && moved >= k => {
                                self.link(c).client.cancel();
                                self.last_get[c] = Some(path.to_owned());
                                cancelled = true;
                            }
                            Stop::Drop(k) if moved >= k && (got.len() as u64) < size_of(&want) => {
                                self.hit("get connection lost");
                                self.last_get[c] = Some(path.to_owned());
                                self.with_link(c, |r, link| {
                                    link.server.handle_eof();
                                    r.store.drive_conn(link.id, &mut link.server);
                                });
                                return self.reconnect(c);
                            }
                            _ => {}
                        }
                    }
                    ClientEvent::GetDone { size, unchecked } => {
                        ensure!(unchecked.is_none(), "the session checks digests here");
                        let Ok(file) = &want else {
                            return Err(format!("get '{path}': done, model says {want:?}"));
                        };
                        let corrupt = stop == Stop::Corrupt && size > start;
                        ensure!(!corrupt, "get '{path}': corrupted data passed the check");
                        ensure!(!cancelled, "get '{path}': cancelled but done");
                        ensure!(&got == file, "get '{path}': bytes differ from the model's");
                        self.hit("get done");
                        self.local[c].remove(path);
                        self.last_get[c] = None;
                        return Ok(());
                    }
                    ClientEvent::Failed(e) => {
                        let code = e.code;
                        match &want {
                            Err(w) => {
                                ensure!(code == *w, "get '{path}': got {code:?}, model says {w:?}");
                                self.hit(format!("get refused {code:?}"));
                            }
                            Ok(file) => {
                                if cancelled {
                                    ensure!(
                                        code == ErrorCode::Cancelled,
                                        "get '{path}': cancelled, got {code:?}"
                                    );
                                    self.hit("get cancelled");
                                } else {
                                    let corrupt =
                                        stop == Stop::Corrupt && file.len() as u64 > start;
                                    ensure!(
                                        corrupt && code == ErrorCode::Integrity,
                                        "get '{path}': failed with {code:?}"
                                    );
                                    self.hit("get integrity failure");
                                    self.local[c].remove(path);
                                }
                            }
                        }
                        return Ok(());
                    }
                    other => return Err(format!("get '{path}': unexpected {other:?}")),
                }
            }
        }
    }
}

/// The size of a file the model serves (0 when it refuses).
fn size_of(want: &Result<Vec<u8>, ErrorCode>) -> u64 {
    want.as_ref().map_or(0, |f| f.len() as u64)
}
