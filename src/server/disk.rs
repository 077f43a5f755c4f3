//! The disk helpers: the blocking file-system calls of `ftxd` (an
//! upload's writeback and its durable steps (`sync_file_range`,
//! `fdatasync`), the `fsync` of a finished upload and of its directory,
//! hashing a resumed transfer's prefix) run on up to [`HELPERS`] helper
//! threads, so the one event-loop thread never waits on the disk.
//!
//! The loop hands a [`Job`] to [`Disk::submit`], which numbers it (never
//! reusing a number); a helper runs it, queues its [`Outcome`] and wakes
//! the loop through its `mio::Waker` (the loop's one waker, shared with
//! shutdown: mio allows one per `Poll`). The loop takes the outcomes back
//! with [`Disk::take_done`], each with its [`JobOwner`] (the connection's
//! slab token and the job's number), and hands each to its connection if
//! that still waits for that number: an outcome for a connection that
//! closed meanwhile (its slot perhaps reused) or for a job it gave up on
//! is dropped. Jobs carry what they need: a duplicated descriptor
//! (`try_clone`), byte counts. The protocol state machines stay on the
//! loop: a connection waiting for a job just does not move on.
//!
//! Directory fsyncs are group commits ([`Disk::sync_dir`]): uploads
//! published in one directory while a sync of it is queued or running
//! wait for the next one, which starts after all their renames, and is
//! then one fsync for all of them. A sync starts at the end of a loop
//! turn ([`Disk::kick`]), so the publishes of one turn share one.
//!
//! Shutdown ([`Disk::shutdown`]) drops the jobs not started, stops a
//! running hash at its next step, and waits a moment for running syncs
//! (a connection is told its file is durable only after its syncs
//! returned, so nothing reported durable depends on them); a helper
//! stuck in the kernel past that is left behind, not joined.
//!
//! Timeouts (`--storage-timeout`): every job is timed from its
//! submission. A distributed file system that lost a node can hang a call
//! for minutes; that must fail the transfer waiting for it, not the node.
//! The loop calls [`Disk::expire`] now and then (while jobs are out):
//! jobs older than the limit are forgotten (taken out of the running set;
//! a queued one still runs later, a running one is left to return) and
//! their owners handed back, for the loop to fail each owner's transfer
//! (a `Timeout` error; the upload is left as it is, `Store::abandon`, as
//! a trim would wait on the same storage). The owner stops waiting for that job number, so the late
//! outcome, if any, is dropped as any stale one is; a directory group
//! keeps the forgotten owner, whose `DirSynced` is dropped the same way.
//! A helper stuck in the kernel cannot be stopped, so the pool starts a
//! replacement for each helper busy past the limit (at most [`SPARES`]
//! more) rather than let the stuck ones starve every other connection;
//! the extra helpers stay, idle, once the stuck calls return.
//!
//! The health probe (`server::health`) is a job like the others
//! ([`Job::Probe`]), owned by the health listener's token: a storage that
//! hangs holds it too, and the health check says so.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{debug, warn};
use mio::{Token, Waker};

use crate::prefix::PrefixHashing;
use crate::server::store::Flush;

/// Helper threads at most. fsyncs of different files overlap in the file
/// system's journal (one commit can serve several), and a long prefix
/// hash must not hold the syncs of other uploads back: a few threads, not
/// one. They start as jobs come and wait on a condition variable between
/// jobs (an idle ftxd started none: ~47 KiB of resident memory each).
pub(crate) const HELPERS: usize = 4;

/// Helpers started beyond [`Disk::start`]'s number to replace ones stuck
/// in a storage call past the timeout, at most: enough that a few hung
/// fsyncs leave the pool its full strength, bounded so a storage that
/// hangs every call cannot make ftxd start a thread per job.
pub(crate) const SPARES: usize = 2 * HELPERS;

/// Bytes hashed between two looks at the stop flag (shutdown) and the
/// job's own cancel flag (its connection closed).
const HASH_STEP: u64 = 8 << 20;

/// Who waits for a job: a connection's slab token, and the job's number,
/// never reused ([`Disk::submit`] numbers them). A connection remembers
/// the number of the job it waits for; an outcome is its only if the
/// numbers match, so one for a connection that closed meanwhile (its slab
/// slot perhaps reused by a newcomer) or for a job it no longer waits for
/// (its upload was abandoned; later, timed out) is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct JobOwner {
    pub(crate) token: Token,
    pub(crate) job: u64,
}

/// A blocking call for a helper, with what it needs.
#[derive(Debug)]
pub(crate) enum Job {
    /// A flush of an upload still arriving: its writeback started, and
    /// now and then its data made durable ([`Flush`]).
    Flush(Flush),
    /// `fsync` of a finished upload, before it is published.
    SyncFile(File),
    /// The BLAKE3 state after the first `len` bytes of `file` (positioned
    /// reads: the file's offset, shared by the duplicate, does not move).
    /// `cancel` set (its connection closed) stops it early.
    HashPrefix {
        file: File,
        len: u64,
        cancel: Arc<AtomicBool>,
        /// First copy `len` bytes of this file into `file`
        /// ([`crate::part_mark::copy_prefix`]): an upload that took a
        /// part over on a shared file system goes on in a copy of it.
        copy_from: Option<File>,
    },
    /// The health check's look at the storage (`server::health`).
    Probe(crate::server::health::Probe),
}

/// What a job came to, for its owner.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A [`Job::Flush`] returned.
    Flushed(io::Result<()>),
    /// A [`Job::SyncFile`] returned.
    FileSynced(io::Result<()>),
    /// The directory the owner published into ([`Disk::sync_dir`]) was
    /// synced, by a sync that started after the owner's rename.
    DirSynced(io::Result<()>),
    /// A [`Job::HashPrefix`] finished (or failed, or was cancelled).
    /// Boxed: a hasher is ~1.9 KiB, the other outcomes a few words.
    Hashed(io::Result<Box<blake3::Hasher>>),
    /// A [`Job::Probe`] returned.
    Probed(io::Result<()>),
}

/// Counts of the calls made, for tests and the log.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) data_syncs: AtomicU64,
    pub(crate) file_syncs: AtomicU64,
    pub(crate) dir_syncs: AtomicU64,
    /// Owners served by the directory syncs (commits).
    pub(crate) dir_waiters: AtomicU64,
    pub(crate) hashes: AtomicU64,
}

/// A directory, by device and inode: uploads into it share its syncs.
/// The group holds the directory open, so its inode is not reused while
/// the group exists.
type DirKey = (u64, u64);

/// A job as queued for the helpers.
enum Task {
    Job(JobOwner, Job),
    Dir(DirKey, File),
}

impl Task {
    fn is_hash(&self) -> bool {
        matches!(self, Task::Job(_, Job::HashPrefix { .. }))
    }
}

/// A finished task, as queued back for the loop.
enum Finished {
    Job(JobOwner, Outcome),
    Dir(DirKey, io::Result<()>),
}

/// What the loop and the helpers share.
struct Shared {
    state: Mutex<State>,
    /// Signalled when a task is queued or the helpers must stop.
    work: Condvar,
    waker: Arc<Waker>,
    counts: Counts,
    /// Set at shutdown: helpers take no more tasks, hashes stop.
    stop: AtomicBool,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Task>,
    done: Vec<Finished>,
    /// Helpers waiting for a task.
    idle: usize,
    /// Prefix hashes running: at most [`MAX_HASHING`], so that one helper
    /// is always left for the syncs of every upload.
    hashing: usize,
    /// Since when each helper (by its number) runs its task; `None`: it
    /// waits for one. A helper busy past the storage timeout is stuck.
    busy: Vec<Option<Instant>>,
}

/// Most prefix hashes running at once: any reader can ask for one (a
/// resumed `get` far into a big file), and hashes that held every helper
/// would hold back every upload's flushes and commits.
const MAX_HASHING: usize = HELPERS - 1;

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A helper never panics while holding the lock; if one did, the
        // queues are still consistent (plain pushes and pops).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One directory's group commit. `syncing`: the owners the sync now
/// queued or running serves (published before it started); `waiting`:
/// those published since, served by the next.
struct Group {
    dir: File,
    running: bool,
    syncing: Vec<JobOwner>,
    waiting: Vec<JobOwner>,
}

/// The loop's side of the helpers.
pub(crate) struct Disk {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
    /// At most this many helpers, not counting the spares.
    max_helpers: usize,
    /// Helpers stuck past the storage timeout, as [`Disk::expire`] last
    /// counted them (at most [`SPARES`]): this many more may start.
    spares: usize,
    /// Given to each helper, which drops it as it exits (taken at
    /// shutdown).
    exit_tx: Option<mpsc::Sender<()>>,
    /// Disconnected once every helper has exited (and `exit_tx` is gone).
    exited: mpsc::Receiver<()>,
    groups: HashMap<DirKey, Group>,
    /// Groups with waiters and no sync queued or running: started by
    /// the next [`Disk::kick`].
    ready: Vec<DirKey>,
    /// Jobs submitted and not yet taken back, by submission time.
    running: HashMap<JobOwner, Instant>,
    /// The number of the last job submitted.
    last_job: u64,
}

impl Disk {
    /// The loop's side of at most `helpers` helper threads, started as
    /// jobs come (a server that never syncs nor resumes has none, and an
    /// idle one holds no thread's memory), that wake the loop through
    /// `waker` (the loop's one waker: mio allows one per `Poll`, so
    /// shutdown requests and finished jobs share it; the loop takes
    /// finished jobs every turn, which is one uncontended lock).
    pub(crate) fn start(waker: Arc<Waker>, helpers: usize) -> Disk {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            waker,
            counts: Counts::default(),
            stop: AtomicBool::new(false),
        });
        let (exit_tx, exited) = mpsc::channel();
        Disk {
            shared,
            helpers: Vec::new(),
            max_helpers: helpers.max(1),
            spares: 0,
            exit_tx: Some(exit_tx),
            exited,
            groups: HashMap::new(),
            ready: Vec::new(),
            running: HashMap::new(),
            last_job: 0,
        }
    }

    /// Queues `job` for the connection `token`; its outcome comes back
    /// through [`Disk::take_done`] with the number returned here.
    pub(crate) fn submit(&mut self, token: Token, job: Job) -> u64 {
        let owner = self.number(token);
        self.queue(Task::Job(owner, job));
        owner.job
    }

    /// The connection `token` published a file in `dir`: it is told
    /// ([`Outcome::DirSynced`], with the number returned here) once a sync
    /// of `dir` that started after now has returned. Joins the
    /// directory's group; the sync itself starts at the next
    /// [`Disk::kick`] if none is queued or running, else after the one
    /// that is.
    pub(crate) fn sync_dir(&mut self, token: Token, dir: BorrowedFd<'_>) -> io::Result<u64> {
        let st = rustix::fs::fstat(dir).map_err(io::Error::from)?;
        let key = (st.st_dev, st.st_ino);
        if let std::collections::hash_map::Entry::Vacant(e) = self.groups.entry(key) {
            e.insert(Group {
                dir: File::from(dir.try_clone_to_owned()?),
                running: false,
                syncing: Vec::new(),
                waiting: Vec::new(),
            });
        }
        let owner = self.number(token);
        if let Some(group) = self.groups.get_mut(&key) {
            if group.waiting.is_empty() && !group.running {
                self.ready.push(key);
            }
            group.waiting.push(owner);
        }
        Ok(owner.job)
    }

    /// A new job of `token`'s: numbered, and timed from now.
    fn number(&mut self, token: Token) -> JobOwner {
        self.last_job += 1;
        let owner = JobOwner {
            token,
            job: self.last_job,
        };
        self.running.insert(owner, Instant::now());
        owner
    }

    /// Starts a sync of every directory with waiters and none queued or
    /// running. The loop calls it once a turn, after serving everything
    /// that turn brought: the renames of one turn share one sync.
    pub(crate) fn kick(&mut self) {
        for key in std::mem::take(&mut self.ready) {
            let Some(group) = self.groups.get_mut(&key) else {
                continue;
            };
            if group.running || group.waiting.is_empty() {
                continue;
            }
            let dir = match group.dir.try_clone() {
                Ok(dir) => dir,
                Err(e) => {
                    // Out of descriptors: the waiters are failed now
                    // rather than left waiting.
                    let failed = std::mem::take(&mut group.waiting);
                    self.groups.remove(&key);
                    let mut st = self.shared.lock();
                    for owner in failed {
                        st.done.push(Finished::Job(
                            owner,
                            Outcome::DirSynced(Err(copy_error(&e))),
                        ));
                    }
                    drop(st);
                    let _ = self.shared.waker.wake();
                    continue;
                }
            };
            group.syncing = std::mem::take(&mut group.waiting);
            group.running = true;
            let served = group.syncing.len() as u64;
            self.shared
                .counts
                .dir_waiters
                .fetch_add(served, Ordering::Relaxed);
            self.queue(Task::Dir(key, dir));
        }
    }

    /// The outcomes of the jobs finished since the last call, each with
    /// its owner (who may have gone meanwhile: the caller checks).
    pub(crate) fn take_done(&mut self) -> Vec<(JobOwner, Outcome)> {
        let finished = std::mem::take(&mut self.shared.lock().done);
        let mut out = Vec::with_capacity(finished.len());
        for f in finished {
            match f {
                Finished::Job(owner, outcome) => {
                    self.running.remove(&owner);
                    out.push((owner, outcome));
                }
                Finished::Dir(key, result) => self.dir_synced(key, &result, &mut out),
            }
        }
        out
    }

    /// Since when the oldest job still running (or queued) waits: the
    /// measure of the storage timeout (see the module's comment).
    pub(crate) fn oldest_running(&self) -> Option<Instant> {
        self.running.values().min().copied()
    }

    /// Forgets the jobs submitted more than `limit` before `now` and
    /// returns their owners, for the loop to fail what waits on each (see
    /// the module's comment). Starts a spare helper for each one stuck in
    /// a call past `limit`, up to [`SPARES`], if work waits.
    pub(crate) fn expire(&mut self, limit: Duration, now: Instant) -> Vec<JobOwner> {
        let late = |since: &Instant| now.saturating_duration_since(*since) > limit;
        let mut expired: Vec<JobOwner> = self
            .running
            .iter()
            .filter(|(_, since)| late(since))
            .map(|(owner, _)| *owner)
            .collect();
        // Oldest first: the order the owners asked in.
        expired.sort_unstable_by_key(|o| o.job);
        for owner in &expired {
            self.running.remove(owner);
        }
        let (stuck, waiting) = {
            let st = self.shared.lock();
            let stuck = st.busy.iter().flatten().filter(|t| late(t)).count();
            (stuck, st.queue.len() > st.idle)
        };
        if stuck > self.spares {
            warn!("disk: {stuck} storage call(s) running for more than {limit:?}");
        }
        self.spares = stuck.min(SPARES);
        if waiting && self.helpers.len() < self.max_helpers + self.spares {
            self.spawn_helper();
        }
        expired
    }

    /// Jobs submitted and not yet taken back (directory waits included).
    pub(crate) fn pending(&self) -> usize {
        self.running.len()
    }

    /// The calls made so far.
    pub(crate) fn counts(&self) -> &Counts {
        &self.shared.counts
    }

    /// Stops the helpers: jobs not started are dropped, a running hash
    /// stops at its next step; running syncs get up to `grace` to return
    /// (the helpers are joined then), after which helpers still stuck in
    /// the kernel are left behind. Nothing reported durable waits on
    /// them: a client hears of its file only after its syncs returned.
    pub(crate) fn shutdown(mut self, grace: Duration) {
        let dropped = self.stop();
        if dropped > 0 {
            debug!("disk: {dropped} queued job(s) dropped at shutdown");
        }
        self.exit_tx = None;
        let deadline = Instant::now() + grace;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.exited.recv_timeout(left) {
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Ok(()) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    warn!("disk: a storage call still runs after {grace:?}: not waiting for it");
                    return;
                }
            }
        }
        for h in std::mem::take(&mut self.helpers) {
            let _ = h.join();
        }
    }

    /// Tells the helpers to stop (after the call each is in) and drops
    /// the jobs not started; returns how many.
    fn stop(&self) -> usize {
        self.shared.stop.store(true, Ordering::SeqCst);
        let dropped = std::mem::take(&mut self.shared.lock().queue).len();
        self.shared.work.notify_all();
        dropped
    }

    /// Queues a task for the helpers, starting one more if none is
    /// free and there may be more.
    fn queue(&mut self, task: Task) {
        let more = {
            let mut st = self.shared.lock();
            st.queue.push_back(task);
            st.queue.len() > st.idle
        };
        self.shared.work.notify_one();
        if more && self.helpers.len() < self.max_helpers + self.spares {
            self.spawn_helper();
        }
    }

    /// Starts a helper. If the system refuses a thread and there is
    /// none, the queue is served here, on the loop (blocking, but every
    /// job still gets its outcome).
    fn spawn_helper(&mut self) {
        let shared = Arc::clone(&self.shared);
        let exit_tx = self.exit_tx.clone();
        if exit_tx.is_none() {
            return;
        }
        let id = self.helpers.len();
        self.shared.lock().busy.push(None);
        let spawned = std::thread::Builder::new()
            .name(format!("ftxd-disk-{id}"))
            .spawn(move || {
                work(&shared, id);
                drop(exit_tx);
            });
        match spawned {
            Ok(handle) => self.helpers.push(handle),
            Err(e) => {
                warn!("disk: cannot start a helper thread: {e}");
                if self.helpers.is_empty() {
                    let tasks = std::mem::take(&mut self.shared.lock().queue);
                    for task in tasks {
                        let finished = run(task, &self.shared);
                        self.shared.lock().done.push(finished);
                    }
                    let _ = self.shared.waker.wake();
                }
            }
        }
    }

    /// A directory sync returned: its owners are told, and the next one
    /// is readied if more waiters came meanwhile; a group with nobody
    /// left is dropped (and its directory closed).
    fn dir_synced(
        &mut self,
        key: DirKey,
        result: &io::Result<()>,
        out: &mut Vec<(JobOwner, Outcome)>,
    ) {
        let Some(group) = self.groups.get_mut(&key) else {
            return;
        };
        group.running = false;
        for owner in std::mem::take(&mut group.syncing) {
            self.running.remove(&owner);
            let r = match result {
                Ok(()) => Ok(()),
                Err(e) => Err(copy_error(e)),
            };
            out.push((owner, Outcome::DirSynced(r)));
        }
        if group.waiting.is_empty() {
            self.groups.remove(&key);
        } else {
            self.ready.push(key);
        }
    }
}

/// A loop that ends without [`Disk::shutdown`] (an error) still stops
/// its helpers, without waiting for them.
impl Drop for Disk {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A helper (number `id`): takes tasks until shutdown, runs them, queues
/// their outcomes and wakes the loop.
fn work(shared: &Shared, id: usize) {
    loop {
        let task = {
            let mut st = shared.lock();
            loop {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                let hashing_full = st.hashing >= MAX_HASHING;
                let next = st.queue.iter().position(|t| !(hashing_full && t.is_hash()));
                if let Some(task) = next.and_then(|i| st.queue.remove(i)) {
                    if task.is_hash() {
                        st.hashing += 1;
                    }
                    if let Some(busy) = st.busy.get_mut(id) {
                        *busy = Some(Instant::now());
                    }
                    break task;
                }
                st.idle += 1;
                st = shared.work.wait(st).unwrap_or_else(|p| p.into_inner());
                st.idle -= 1;
            }
        };
        let hashed = task.is_hash();
        let finished = run(task, shared);
        {
            let mut st = shared.lock();
            st.done.push(finished);
            if hashed {
                st.hashing -= 1;
            }
            if let Some(busy) = st.busy.get_mut(id) {
                *busy = None;
            }
        }
        if hashed {
            // A hash that waited for this one may start now.
            shared.work.notify_all();
        }
        if let Err(e) = shared.waker.wake() {
            warn!("disk: cannot wake the loop: {e}");
        }
    }
}

/// Runs one task (the blocking call itself).
fn run(task: Task, shared: &Shared) -> Finished {
    let counts = &shared.counts;
    fault::stall(&shared.stop);
    match task {
        Task::Job(owner, Job::Flush(flush)) => {
            if flush.sync {
                counts.data_syncs.fetch_add(1, Ordering::Relaxed);
            }
            Finished::Job(owner, Outcome::Flushed(flush.run()))
        }
        Task::Job(owner, Job::SyncFile(file)) => {
            counts.file_syncs.fetch_add(1, Ordering::Relaxed);
            Finished::Job(owner, Outcome::FileSynced(file.sync_all()))
        }
        Task::Job(
            owner,
            Job::HashPrefix {
                file,
                len,
                cancel,
                copy_from,
            },
        ) => {
            counts.hashes.fetch_add(1, Ordering::Relaxed);
            let copied = match &copy_from {
                Some(from) => crate::part_mark::copy_prefix(from, &file, len),
                None => Ok(()),
            };
            let hashed = copied.and_then(|()| hash(&file, len, &cancel, &shared.stop));
            Finished::Job(owner, Outcome::Hashed(hashed))
        }
        Task::Job(owner, Job::Probe(probe)) => Finished::Job(owner, Outcome::Probed(probe.run())),
        Task::Dir(key, dir) => {
            counts.dir_syncs.fetch_add(1, Ordering::Relaxed);
            Finished::Dir(key, dir.sync_all())
        }
    }
}

/// A storage that hangs, for tests only: ftxd's integration tests cannot
/// make a real file system hang, and the timeouts must be seen to work.
mod fault {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;
    use std::time::Duration;

    /// TEST ONLY, not a setting: while the file this variable names
    /// exists, every disk-helper call (fsync, flush, prefix hash, health
    /// probe) waits before it starts, as on a file system that lost a
    /// node. Unset (always, outside tests), nothing is looked at.
    pub(super) const STALL_VAR: &str = "FTXD_FAULT_STALL_WHILE";

    /// Waits while the fault file exists (read once: unset, this is one
    /// load). Shutdown ends the wait, so a test's server stops at once.
    pub(super) fn stall(stop: &AtomicBool) {
        static FILE: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
        let Some(file) = FILE.get_or_init(|| std::env::var_os(STALL_VAR).map(Into::into)) else {
            return;
        };
        while file.exists() && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The BLAKE3 state after `len` bytes of `file`, in steps between which
/// `cancel` and `stop` are looked at (`Interrupted` when either is set).
fn hash(
    file: &File,
    len: u64,
    cancel: &AtomicBool,
    stop: &AtomicBool,
) -> io::Result<Box<blake3::Hasher>> {
    let mut hashing = PrefixHashing::new(len);
    loop {
        if cancel.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
        }
        if hashing.step(file, HASH_STEP)? {
            return Ok(Box::new(hashing.finish()));
        }
    }
}

/// The same error again, for each owner a shared sync failed for
/// (`io::Error` is not `Clone`).
fn copy_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::os::fd::AsFd;

    /// A disk with its own poll, as the loop holds it.
    struct Rig {
        poll: Poll,
        events: Events,
        disk: Disk,
    }

    fn rig(helpers: usize) -> Rig {
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(usize::MAX)).unwrap());
        let disk = Disk::start(waker, helpers);
        Rig {
            poll,
            events: Events::with_capacity(8),
            disk,
        }
    }

    impl Rig {
        /// Waits, as the loop does (woken by the helpers; a directory
        /// sync started at the end of each turn), for `n` outcomes.
        fn collect(&mut self, n: usize) -> Vec<(JobOwner, Outcome)> {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut out = Vec::new();
            while out.len() < n {
                assert!(
                    Instant::now() < deadline,
                    "only {} of {n} outcomes",
                    out.len()
                );
                self.poll
                    .poll(&mut self.events, Some(Duration::from_millis(100)))
                    .unwrap();
                out.extend(self.disk.take_done());
                self.disk.kick();
            }
            out
        }

        fn dir_syncs(&self) -> u64 {
            self.disk.counts().dir_syncs.load(Ordering::Relaxed)
        }
    }

    fn token(i: usize) -> Token {
        Token(i)
    }

    fn dir(path: &std::path::Path) -> File {
        File::open(path).unwrap()
    }

    /// Commits published in one turn share one directory sync; another
    /// directory has its own.
    #[test]
    fn commits_ready_together_share_one_directory_sync() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("other")).unwrap();
        let mut r = rig(2);
        let d = dir(t.path());
        let mut jobs = Vec::new();
        for i in 0..10 {
            // Each commit holds its own descriptor of the directory.
            let own = d.try_clone().unwrap();
            jobs.push(r.disk.sync_dir(token(i), own.as_fd()).unwrap());
        }
        let other = dir(&t.path().join("other"));
        let lone = r.disk.sync_dir(token(99), other.as_fd()).unwrap();
        r.disk.kick();
        let done = r.collect(11);
        assert_eq!(r.dir_syncs(), 2, "one sync per directory");
        assert_eq!(r.disk.counts().dir_waiters.load(Ordering::Relaxed), 11);
        let mut got: Vec<u64> = done
            .iter()
            .map(|(owner, outcome)| {
                assert!(matches!(outcome, Outcome::DirSynced(Ok(()))), "{outcome:?}");
                owner.job
            })
            .collect();
        got.sort_unstable();
        jobs.push(lone);
        jobs.sort_unstable();
        assert_eq!(got, jobs, "each commit told once, by its job number");
        assert_eq!(r.disk.pending(), 0);
        assert!(r.disk.groups.is_empty(), "finished groups are dropped");
    }

    /// Commits published while a sync of their directory is out wait for
    /// the next one, which starts after it and serves them all: 1 + 5
    /// commits, 2 syncs, the first told alone.
    #[test]
    fn commits_during_a_sync_wait_for_one_more_for_all() {
        let t = tempfile::tempdir().unwrap();
        let mut r = rig(2);
        let d = dir(t.path());
        let first = r.disk.sync_dir(token(0), d.as_fd()).unwrap();
        r.disk.kick();
        let mut later = Vec::new();
        for i in 1..6 {
            later.push(r.disk.sync_dir(token(i), d.as_fd()).unwrap());
        }
        // The first sync is still out (its outcome not taken): no second.
        r.disk.kick();
        assert_eq!(r.disk.groups.len(), 1);
        let done = r.collect(1);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].0.job, first);
        let done = r.collect(5);
        let mut got: Vec<u64> = done.iter().map(|(o, _)| o.job).collect();
        got.sort_unstable();
        assert_eq!(got, later);
        assert_eq!(r.dir_syncs(), 2);
    }

    /// File syncs and prefix hashes come back to their owner, by number;
    /// a hash is BLAKE3 of the prefix; a cancelled or short one fails.
    #[test]
    fn jobs_come_back_to_their_owner() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("f");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let f = File::open(&path).unwrap();
        let mut r = rig(3);
        assert!(r.disk.helpers.is_empty(), "helpers start as jobs come");
        let sync = r
            .disk
            .submit(token(1), Job::SyncFile(f.try_clone().unwrap()));
        let flush = Flush {
            file: f.try_clone().unwrap(),
            from: 0,
            len: 1 << 20,
            sync: true,
        };
        let step = r.disk.submit(token(2), Job::Flush(flush));
        let no = Arc::new(AtomicBool::new(false));
        let hash = |len, cancel: &Arc<AtomicBool>| Job::HashPrefix {
            file: f.try_clone().unwrap(),
            len,
            cancel: Arc::clone(cancel),
            copy_from: None,
        };
        let hashed = r.disk.submit(token(3), hash(2_500_000, &no));
        let short = r.disk.submit(token(3), hash(4_000_000, &no));
        let yes = Arc::new(AtomicBool::new(true));
        let cancelled = r.disk.submit(token(4), hash(1000, &yes));
        let done = r.collect(5);
        for (owner, outcome) in done {
            match outcome {
                Outcome::FileSynced(Ok(())) => {
                    assert_eq!((owner.job, owner.token), (sync, token(1)))
                }
                Outcome::Flushed(Ok(())) => {
                    assert_eq!((owner.job, owner.token), (step, token(2)))
                }
                Outcome::Hashed(Ok(h)) => {
                    assert_eq!(owner.job, hashed);
                    assert_eq!(h.finalize(), blake3::hash(&data[..2_500_000]));
                }
                Outcome::Hashed(Err(e)) if owner.job == short => {
                    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof)
                }
                Outcome::Hashed(Err(e)) => {
                    assert_eq!(owner.job, cancelled);
                    assert_eq!(e.kind(), io::ErrorKind::Interrupted);
                }
                other => panic!("unexpected {other:?} for {owner:?}"),
            }
        }
        let c = r.disk.counts();
        assert_eq!(c.file_syncs.load(Ordering::Relaxed), 1);
        assert_eq!(c.data_syncs.load(Ordering::Relaxed), 1);
        assert_eq!(c.hashes.load(Ordering::Relaxed), 3);
        assert_eq!(r.disk.pending(), 0);
        assert!((1..=3).contains(&r.disk.helpers.len()));
    }

    /// A hash with a file to copy from copies that prefix into its file
    /// first (a take-over on a shared file system), then hashes it there.
    #[test]
    fn a_hash_copies_first_when_asked() {
        let t = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(t.path().join("part"), &data).unwrap();
        let copy = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(t.path().join("copy"))
            .unwrap();
        let mut r = rig(2);
        let job = r.disk.submit(
            token(1),
            Job::HashPrefix {
                file: copy.try_clone().unwrap(),
                len: 600_000,
                cancel: Arc::new(AtomicBool::new(false)),
                copy_from: Some(File::open(t.path().join("part")).unwrap()),
            },
        );
        let done = r.collect(1);
        assert_eq!(done[0].0.job, job);
        match &done[0].1 {
            Outcome::Hashed(Ok(h)) => assert_eq!(h.finalize(), blake3::hash(&data[..600_000])),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            std::fs::read(t.path().join("copy")).unwrap(),
            data[..600_000]
        );
    }

    /// A sparse file of 64 GiB in `dir`: zeros that take a minute or more
    /// to hash, so a hash of it is still running when the test looks.
    fn zeros_too_long_to_hash(dir: &std::path::Path) -> (File, u64) {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("sparse"))
            .unwrap();
        let len = 64u64 << 30;
        f.set_len(len).unwrap();
        (f, len)
    }

    /// Prefix hashes, which any reader can start, never take every
    /// helper: with all four busy hashing, an upload's fsync still runs.
    #[test]
    fn hashes_leave_a_helper_for_the_syncs() {
        let t = tempfile::tempdir().unwrap();
        let (f, len) = zeros_too_long_to_hash(t.path());
        let mut r = rig(HELPERS);
        let cancels: Vec<Arc<AtomicBool>> = (0..HELPERS)
            .map(|_| Arc::new(AtomicBool::new(false)))
            .collect();
        for (i, cancel) in cancels.iter().enumerate() {
            r.disk.submit(
                token(i),
                Job::HashPrefix {
                    file: f.try_clone().unwrap(),
                    len,
                    cancel: Arc::clone(cancel),
                    copy_from: None,
                },
            );
        }
        std::thread::sleep(Duration::from_millis(50));
        let sync = r
            .disk
            .submit(token(50), Job::SyncFile(f.try_clone().unwrap()));
        // 64 GiB of zeros take minutes to hash: the sync must not wait.
        let done = r.collect(1);
        assert_eq!(done[0].0.job, sync, "{:?}", done[0].1);
        assert!(matches!(done[0].1, Outcome::FileSynced(Ok(()))));
        for cancel in &cancels {
            cancel.store(true, Ordering::Relaxed);
        }
        let rest = r.collect(HELPERS);
        assert!(rest.iter().all(|(_, o)| matches!(o, Outcome::Hashed(_))));
    }

    /// A job out past the storage timeout is handed back once, for its
    /// owner to fail, and forgotten; a helper stuck in it gets a spare,
    /// so the next job still runs on a pool of one; the late outcome
    /// still comes back (for the owner to drop).
    #[test]
    fn a_job_past_the_limit_is_expired_and_a_spare_helper_starts() {
        let t = tempfile::tempdir().unwrap();
        let (f, len) = zeros_too_long_to_hash(t.path());
        let mut r = rig(1);
        let cancel = Arc::new(AtomicBool::new(false));
        let stuck = r.disk.submit(
            token(1),
            Job::HashPrefix {
                file: f.try_clone().unwrap(),
                len,
                cancel: Arc::clone(&cancel),
                copy_from: None,
            },
        );
        let limit = Duration::from_millis(100);
        assert!(r.disk.expire(limit, Instant::now()).is_empty(), "too early");
        std::thread::sleep(Duration::from_millis(200));
        let sync = r
            .disk
            .submit(token(2), Job::SyncFile(f.try_clone().unwrap()));
        let expired = r.disk.expire(limit, Instant::now());
        assert_eq!(
            expired,
            [JobOwner {
                token: token(1),
                job: stuck
            }]
        );
        assert_eq!(r.disk.pending(), 1, "only the sync is still timed");
        assert!(
            r.disk.expire(limit, Instant::now()).is_empty(),
            "handed back once"
        );
        assert_eq!(r.disk.helpers.len(), 2, "a spare for the stuck helper");
        let done = r.collect(1);
        assert_eq!(done[0].0.job, sync, "{:?}", done[0].1);
        cancel.store(true, Ordering::Relaxed);
        let late = r.collect(1);
        assert_eq!(late[0].0.job, stuck);
        assert!(matches!(late[0].1, Outcome::Hashed(Err(_))));
        assert_eq!(r.disk.pending(), 0);
    }

    /// Shutdown drops the jobs not started, stops a running hash at its
    /// next step and joins the helpers, without waiting for the hash.
    #[test]
    fn shutdown_drops_queued_jobs_and_stops_a_hash() {
        let t = tempfile::tempdir().unwrap();
        let (f, len) = zeros_too_long_to_hash(t.path());
        let mut r = rig(1);
        let no = Arc::new(AtomicBool::new(false));
        r.disk.submit(
            token(1),
            Job::HashPrefix {
                file: f.try_clone().unwrap(),
                len,
                cancel: no,
                copy_from: None,
            },
        );
        for i in 0..3 {
            r.disk
                .submit(token(2 + i), Job::SyncFile(f.try_clone().unwrap()));
        }
        std::thread::sleep(Duration::from_millis(50));
        let counts = Arc::clone(&r.disk.shared);
        let started = Instant::now();
        r.disk.shutdown(Duration::from_secs(30));
        // 64 GiB of zeros take a minute or more to hash.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(counts.counts.file_syncs.load(Ordering::Relaxed), 0);
    }
}
