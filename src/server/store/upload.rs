//! Uploads: the hidden file an upload is written to (the name's part file
//! when free, so an interruption can be resumed, else a one-off temporary
//! file), the mark that makes a part one attempt's own and fences off any
//! other ([`crate::part_mark`]), space reserved ahead of the data, early
//! writeback and steps made durable while the network is slow, and the
//! atomic commit: fsync, then a race-free publish under the final name or
//! the first free `stem_N.ext`, then fsync of the directory.
//!
//! The store makes no blocking call the event loop would wait for on its
//! own: it says when a flush (writeback, and a durable step now and then)
//! is due ([`Store::flush_due`]) and hands out the file to flush or sync
//! ([`Store::start_flush`], [`Store::file_to_sync`]);
//! `ftxd` runs those fsyncs on its disk helpers (`server::disk`) and
//! publishes ([`Store::publish`]) once the file is durable. The name is
//! chosen on the loop: a `link`/`renameat2` is a quick metadata call like
//! the loop's other requests (mkdir, rename), and the loop then knows every
//! rename that precedes a directory sync, which group commit relies on.
//! [`Store::commit`] does it all in one call, for tests and `--no-fsync`.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::fs::RenameFlags;

use super::{beneath, Store, StoreError, FILE_MODE, MAX_CLASH_ATTEMPTS};
use crate::part_mark::{self, AttemptId};
use crate::partial::{self, PartOwner};
use crate::proto::limits::RESERVED_PREFIX;
use crate::proto::path::{clash_name, RemotePath};
use crate::proto::server_session::PutAccept;

/// With fsync on, every this many bytes of an upload are handed to the
/// disk at once (`sync_file_range`, not waiting for the disk), so the disk
/// works while the rest arrives and the fsync at commit has little left to
/// do. On a disk helper too: `sync_file_range` waited up to 57 ms on the
/// loop while a durable step of the same file ran on a helper.
const WRITEBACK_STEP: u64 = 1 << 20;
/// Disk space an upload reserves ahead of its data: the window a client
/// may have in flight (16 MiB), so writes never wait for allocation, while
/// a client that declares a huge file and trickles holds no more than this.
pub const RESERVE_AHEAD: u64 = crate::proto::limits::DEFAULT_WINDOW as u64;
/// With fsync on, an upload that waits for the network with at least this
/// many bytes not yet durable makes them durable (`fdatasync`,
/// [`Store::start_flush`]). A disk with a write-back cache (a VM's virtual
/// disk, most SSDs) otherwise keeps the whole file in that cache until the
/// commit's fsync, which then waits ~65 ms per 64 MiB here; flushed while
/// the loop would wait anyway, the commit waits for the tail only.
const DURABLE_STEP: u64 = 8 << 20;
/// With fsync on, an upload that never waits for the network (it arrives
/// faster than ftxd takes it) is made durable every this many bytes all
/// the same, so the commit's fsync has little left to do. Rarely: flushing
/// while data is waiting slowed the upload (8 MiB steps cost ~15% of a
/// 1 GiB put on loopback, when the flushes ran on the loop).
const DURABLE_MAX: u64 = 64 << 20;
/// [`Store::start_flush`] makes a waiting upload durable only if it arrives slower than this
/// (bytes a second, since its last flush): a slow or distant link, whose
/// waits are long and whose bytes queue in the socket meanwhile. A fast
/// sender waits only for moments; flushing then (~18 ms per 8 MiB here)
/// stalled it, and on loopback it flushed every 8 MiB (106 fdatasyncs in
/// one 1 GiB put, 1.9 s of them).
const SETTLE_MAX_RATE: f64 = 256.0 * 1024.0 * 1024.0;

/// How often an upload in a marked part checks, before writing on, that
/// the part is still its own ([`Store::write`]); it checks again before it
/// publishes. A server whose lock on the part lapsed (cut off from a
/// distributed file system) so writes at most this long after another
/// took the part over. A check is one getxattr: a few microseconds on a
/// local disk, one round trip to the metadata server on a shared one.
pub(super) const FENCE_EVERY: Duration = Duration::from_millis(200);

/// Numbers temporary files of this process, so two uploads never share one.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An upload in progress: a hidden temporary file in the target directory.
#[derive(Debug)]
pub struct Upload {
    file: File,
    /// Name of the temporary file in `dir`.
    temp: CString,
    /// The directory the upload lands in, opened beneath the root.
    dir: OwnedFd,
    remote: RemotePath,
    size: u64,
    written: u64,
    /// Bytes already handed to early writeback.
    flushed: u64,
    /// Bytes already made durable by a step's `fdatasync`.
    synced: u64,
    /// When `synced` last moved (or the upload began).
    synced_at: Instant,
    /// A flush ([`Flush`]) runs on a helper, up to this many bytes, and
    /// whether it makes them durable.
    flushing: Option<(u64, bool)>,
    force: bool,
    /// In the name's part file: kept for `reput` when interrupted.
    resumable: bool,
    /// Disk space reserved up to here (`written` plus a step ahead).
    reserved: u64,
    /// How far ahead of the data to reserve ([`Uploader::reserve_ahead`]).
    ahead: u64,
    /// The file system cannot reserve space (`fallocate` unsupported).
    no_reserve: bool,
    /// The attempt the part is marked for (`None`: a one-off temporary
    /// file, or a root without marks).
    id: Option<AttemptId>,
    /// When the mark was last found to be ours.
    fenced_at: Instant,
    /// Another server marked the part since, or its mark could not be
    /// read: leave it alone (neither trimmed, removed nor published).
    taken_over: bool,
    /// On a shared file system, the part this upload took over and copied
    /// into a file of its own (still open, so still locked), with the mark
    /// it set there: removed once the upload is published, if still ours.
    replaces: Option<Replaced>,
    /// The first this many bytes of [`Upload::replaces`] are still to be
    /// copied into the upload's file ([`Upload::copy_source`]), on a disk
    /// helper, before the prefix is hashed.
    to_copy: Option<u64>,
}

/// A part taken over on a shared file system ([`Upload::replaces`]): it
/// keeps the upload's mark ([`Upload::id`]).
#[derive(Debug)]
struct Replaced {
    file: File,
    /// Its name (the target's part name).
    name: CString,
}

/// What a directory's file system can do for parts ([`Store::caps`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Caps {
    /// Parts are marked ([`crate::part_mark`]).
    marks: bool,
    /// It may span machines ([`part_mark::is_shared`]).
    shared: bool,
}

impl Caps {
    /// Whether `file`, found under a part's name there, is a part: it
    /// carries a mark (without marks, any file there is).
    pub(super) fn is_part(self, file: &File) -> io::Result<bool> {
        Ok(!self.marks || part_mark::of(file)?.is_some())
    }
}

/// What a part's name leads to, for [`Store::take_part`].
enum Found {
    /// A part nobody holds, now claimed: marked as this attempt's.
    Part(File, Option<AttemptId>),
    /// A file without the mark (published, never a part), or one removed
    /// meanwhile: no part, never written to.
    NotPart,
    /// Nothing there, or a transfer holds it.
    NoneFree,
}

/// The file an upload writes to, as [`Store::take_part`] found or made it.
struct Taken {
    file: File,
    /// Its name in the directory.
    name: CString,
    accept: PutAccept,
    id: Option<AttemptId>,
    replaces: Option<Replaced>,
}

/// Who starts an upload, as far as the store cares.
#[derive(Clone, Copy, Debug)]
pub struct Uploader {
    /// Whose part files it uses ([`partial::owned_part_name`]): the access
    /// token's tag on a server that asks for tokens, so another token
    /// neither resumes, publishes nor learns of them.
    pub owner: Option<PartOwner>,
    /// Disk space to reserve ahead of the data (at most
    /// [`RESERVE_AHEAD`]; 0 reserves nothing, writes allocate as they go):
    /// a server lowers it for an address or token that holds many
    /// reservations already.
    pub reserve_ahead: u64,
}

impl Default for Uploader {
    fn default() -> Uploader {
        Uploader {
            owner: None,
            reserve_ahead: RESERVE_AHEAD,
        }
    }
}

impl Upload {
    /// The file being written (to hash a resumed upload's prefix).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The remote path asked for (the stored name may differ on a clash).
    pub fn remote(&self) -> &RemotePath {
        &self.remote
    }
    /// The size declared by the client.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }
    /// Whether an interruption keeps this upload for `reput`.
    /// Disk space reserved ahead of the data written so far.
    pub fn reserved_ahead(&self) -> u64 {
        self.reserved.saturating_sub(self.written)
    }

    /// Reserves at most `ahead` bytes ahead of the data from now on.
    pub fn limit_reserve(&mut self, ahead: u64) {
        if !self.no_reserve {
            self.ahead = ahead.min(RESERVE_AHEAD);
        }
    }

    pub fn resumable(&self) -> bool {
        self.resumable
    }

    /// For an upload that goes on in a copy of the part it took over: the
    /// part (a duplicate descriptor) and how many of its first bytes are
    /// to be copied into [`Upload::file`] at the same offsets
    /// ([`crate::part_mark::copy_prefix`]), before anything else is done
    /// with the file; `None` when there is nothing to copy.
    pub fn copy_source(&self) -> io::Result<Option<(File, u64)>> {
        match (&self.replaces, self.to_copy) {
            (Some(replaced), Some(len)) => Ok(Some((replaced.file.try_clone()?, len))),
            _ => Ok(None),
        }
    }

    /// The copy [`Upload::copy_source`] asked for is made.
    pub fn copied(&mut self) {
        self.to_copy = None;
    }

    /// The file that carries the upload's mark: the part it writes to, or
    /// the part it took over and copied ([`Upload::replaces`]).
    fn marked(&self) -> &File {
        self.replaces.as_ref().map_or(&self.file, |r| &r.file)
    }
}

impl Store {
    /// Starts an upload of `size` bytes to `path`: checks the rules and
    /// opens the hidden file next to the target. A fresh upload takes the
    /// name's part file when it is free (so an interruption can be resumed)
    /// and a one-off temporary file otherwise, reporting the size of an
    /// interrupted part it leaves alone. With `resume: Some(max)`, the part
    /// file is continued where it ends (if that is at most `max`, the
    /// client's size; otherwise it restarts); the returned [`PutAccept`]
    /// says from where. Its `prefix` is still empty: the caller hashes the
    /// part's first `offset` bytes ([`Upload::file`],
    /// [`crate::prefix::PrefixHashing`]) before it answers the client.
    /// `who` says whose part file it uses and how much space it may
    /// reserve ahead ([`Uploader`]).
    pub fn begin_upload(
        &self,
        path: &RemotePath,
        size: u64,
        force: bool,
        resume: Option<u64>,
        who: &Uploader,
    ) -> Result<(Upload, PutAccept), StoreError> {
        self.check_writable()?;
        if let Some(max) = self.config.max_file_size {
            if size > max {
                return Err(StoreError::TooLarge { size, max });
            }
        }
        let (dir, name) = self.resolve_parent(path)?;
        if force {
            match beneath::lstat_at(dir.as_fd(), &name) {
                Ok(m) if m.is_dir() => {
                    return Err(StoreError::IsDirectory(path.as_str().to_owned()))
                }
                _ => {}
            }
        }
        let part = CString::new(partial::owned_part_name(who.owner, &name.to_string_lossy()))
            .map_err(|_| StoreError::RootNotAllowed)?;
        let Taken {
            mut file,
            name: temp,
            accept,
            id,
            replaces,
        } = self.take_part(dir.as_fd(), &part, size, resume, path.as_str())?;
        let resumable = accept.resumable;
        let io_err = |e| StoreError::from_io(path.as_str(), e);
        let need = size - accept.offset;
        // A disk that cannot hold the upload refuses it now; the blocks are
        // reserved a step ahead of the data as it arrives (cheaper writes,
        // and a client that declares a huge file and sends a byte now and
        // then holds one step, not the whole size).
        let mut ahead = who.reserve_ahead.min(RESERVE_AHEAD);
        let mut reserved = need.min(ahead);
        let mut no_reserve = false;
        let full = beneath::free_space(dir.as_fd()).is_some_and(|free| free < need)
            || (reserved > 0
                && match partial::preallocate(&file, accept.offset, reserved) {
                    Ok(()) => false,
                    Err(e) if no_room(&e) => true,
                    // Not supported here: writes find out for themselves.
                    Err(_) => {
                        (ahead, reserved, no_reserve) = (0, 0, true);
                        false
                    }
                });
        if full {
            // Refused before any data flows: a part that holds an
            // interrupted upload stays for a later `reput`; a file opened
            // just now is removed, while still locked.
            if accept.offset == 0 || replaces.is_some() {
                let _ = beneath::unlink_at(dir.as_fd(), &temp, false);
            } else {
                // A failed reservation may have taken some blocks.
                let _ = file.set_len(accept.offset);
            }
            drop(file);
            return Err(StoreError::NoSpace);
        }
        file.seek(SeekFrom::Start(accept.offset)).map_err(io_err)?;
        let up = Upload {
            file,
            temp,
            dir,
            remote: path.clone(),
            size,
            written: accept.offset,
            flushed: accept.offset,
            synced: accept.offset,
            synced_at: Instant::now(),
            flushing: None,
            force,
            resumable,
            reserved: accept.offset + reserved,
            ahead,
            no_reserve,
            id,
            fenced_at: Instant::now(),
            taken_over: false,
            to_copy: replaces.as_ref().map(|_| accept.offset).filter(|&n| n > 0),
            replaces,
        };
        Ok((up, accept))
    }

    /// Finds or makes the file an upload to `part`'s target writes to.
    /// `resume: Some(max)` continues an interrupted upload: a part that is
    /// marked (or, without marks, any part) and that nobody holds, from
    /// where it ends if that is at most `max` and the size, else from 0.
    /// Otherwise, and when there is none, a fresh part made with
    /// `O_EXCL`, or an empty one nobody holds; failing both, a one-off
    /// temporary file, reporting the size of the interrupted part it
    /// leaves alone. A name that leads to a file without the mark leads to
    /// no part, whatever it is (on a shared file system, a stale lookup of
    /// a part published since): it is never written to.
    fn take_part(
        &self,
        dir: BorrowedFd<'_>,
        part: &CStr,
        size: u64,
        resume: Option<u64>,
        remote: &str,
    ) -> Result<Taken, StoreError> {
        let io_err = |e| StoreError::from_io(remote, e);
        // Decided for the directory, not once for the root: a mount below
        // the root may lack what the root has.
        let here = self.caps(dir);
        let taken = |file, id, accept| Taken {
            file,
            name: part.to_owned(),
            accept,
            id,
            replaces: None,
        };
        if let Some(max) = resume {
            match self.find_part(dir, part, here, true).map_err(io_err)? {
                Found::Part(file, id) => {
                    let mut held = part_len(&file).map_err(io_err)?;
                    if held > max || held > size {
                        held = 0;
                    }
                    if here.shared {
                        return self.take_over(dir, part, file, id, held, remote);
                    }
                    file.set_len(held).map_err(io_err)?;
                    // The prefix is the caller's to hash (a step at a time).
                    let accept = PutAccept {
                        offset: held,
                        prefix: blake3::Hasher::new(),
                        partial: 0,
                        resumable: true,
                    };
                    return Ok(taken(file, id, accept));
                }
                Found::NotPart => return self.take_temp(dir, 0, remote),
                // None there, or a transfer holds it: see below.
                Found::NoneFree => {}
            }
        }
        // Marked before it is locked: a server that opens the name in
        // between finds a part (empty: it may take it over, and then this
        // one goes on in a file of its own), never a file without a mark
        // that would stay in the way of every later upload of the name.
        let id = here.marks.then(AttemptId::new);
        let mark = |file: &File| id.map_or(Ok(()), |id| part_mark::set(file, id));
        if let Some(file) = partial::create_locked_at_then(dir, part, &mark).map_err(io_err)? {
            return Ok(taken(file, id, PutAccept::fresh(true, 0)));
        }
        match self.find_part(dir, part, here, false).map_err(io_err)? {
            Found::Part(file, _) => {
                let held = part_len(&file).map_err(io_err)?;
                if held > 0 {
                    // An interrupted upload's data, left for its reput
                    // (unclaimed: its holder, if alive, goes on).
                    drop(file);
                    return self.take_temp(dir, held, remote);
                }
                // Left by a transfer killed before its first byte.
                let Some(id) = self.claim(&file, here).map_err(io_err)? else {
                    return self.take_temp(dir, 0, remote);
                };
                if here.shared {
                    return self.take_over(dir, part, file, id, 0, remote);
                }
                Ok(taken(file, id, PutAccept::fresh(true, 0)))
            }
            Found::NotPart => self.take_temp(dir, 0, remote),
            Found::NoneFree if resume.is_some() => Err(StoreError::InUse(remote.to_owned())),
            Found::NoneFree => self.take_temp(dir, 0, remote),
        }
    }

    /// Opens the part `part` in `dir` if nobody holds it and it is a part
    /// (marked; without marks, any file there is), and with `claim`
    /// claims it ([`Store::claim`]).
    fn find_part(
        &self,
        dir: BorrowedFd<'_>,
        part: &CStr,
        here: Caps,
        claim: bool,
    ) -> io::Result<Found> {
        let file = match partial::open_locked_at(dir, part, false) {
            Ok(Some(file)) => file,
            Ok(None) => return Ok(Found::NoneFree),
            // Removed meanwhile, reached through a stale name (JuiceFS
            // refuses to open such a file with EPERM): no part. A part is
            // ftxd's own file, so a refusal to open it says nothing else.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) =>
            {
                return Ok(Found::NotPart)
            }
            Err(e) => return Err(e),
        };
        if !claim {
            let part = here.is_part(&file)?;
            return Ok(if part {
                Found::Part(file, None)
            } else {
                Found::NotPart
            });
        }
        match self.claim(&file, here)? {
            Some(id) => Ok(Found::Part(file, id)),
            None => Ok(Found::NotPart),
        }
    }

    /// Claims the part `file` (held) for a new attempt: marks it as that
    /// attempt's, only while a mark is there (a holder that removed its
    /// mark to publish the file has made it no part: `None`). Without
    /// marks, `Some(None)`.
    fn claim(&self, file: &File, here: Caps) -> io::Result<Option<Option<AttemptId>>> {
        if !here.marks {
            return Ok(Some(None));
        }
        let id = AttemptId::new();
        Ok(part_mark::replace(file, id)?.then_some(Some(id)))
    }

    /// What the directory `dir`'s file system can do, for parts there.
    pub(super) fn caps(&self, dir: BorrowedFd<'_>) -> Caps {
        Caps {
            marks: self.marks && part_mark::supported(dir),
            shared: self.shared || part_mark::is_shared(dir),
        }
    }

    /// A one-off temporary file for a fresh upload, not resumable; `stale`
    /// is the size of the interrupted part it leaves alone.
    fn take_temp(
        &self,
        dir: BorrowedFd<'_>,
        stale: u64,
        remote: &str,
    ) -> Result<Taken, StoreError> {
        let name = temp_name();
        let file = beneath::create_at(dir, &name, FILE_MODE)
            .map_err(|e| StoreError::from_io(remote, e))?;
        // Locked too, so the stale-file sweep of another ftxd sharing the
        // root never removes it while in use.
        let _ = partial::try_lock(&file);
        Ok(Taken {
            file,
            name,
            accept: PutAccept::fresh(false, stale),
            id: None,
            replaces: None,
        })
    }

    /// On a shared file system, an upload that takes over the part `file`
    /// (just marked as `id`'s, so its earlier holder stops) goes on in a
    /// file of its own, the part's first `held` bytes to be copied there
    /// ([`Upload::copy_source`]): a
    /// holder that was cut off and comes back may still land writes it
    /// had in flight, and they must reach nothing this upload publishes.
    /// The part is removed once this upload is published.
    fn take_over(
        &self,
        dir: BorrowedFd<'_>,
        part: &CStr,
        file: File,
        id: Option<AttemptId>,
        held: u64,
        remote: &str,
    ) -> Result<Taken, StoreError> {
        let mut own = self.take_temp(dir, 0, remote)?;
        // The bytes are copied later, on a disk helper (a file system
        // that copies byte by byte would hold the loop meanwhile), see
        // `Upload::copy_source`.
        own.accept = PutAccept {
            offset: held,
            prefix: blake3::Hasher::new(),
            partial: 0,
            resumable: true,
        };
        // Fenced through the part's mark: another server that takes the
        // part over from this one stops it too.
        own.id = id;
        own.replaces = Some(Replaced {
            file,
            name: part.to_owned(),
        });
        Ok(own)
    }

    /// Whether the upload's part still carries its own mark (always, for
    /// an unmarked upload); a mark that cannot be read counts as another's.
    fn still_ours(&self, up: &Upload) -> bool {
        match up.id {
            Some(id) => part_mark::of(up.marked()).is_ok_and(|m| m == Some(id)),
            None => true,
        }
    }

    /// Fails with [`StoreError::TakenOver`] unless the upload's part still
    /// carries its own mark (always passes for an unmarked upload).
    fn fence(&self, up: &mut Upload) -> Result<(), StoreError> {
        let Some(id) = up.id else {
            return Ok(());
        };
        match part_mark::of(up.marked()) {
            Ok(Some(mark)) if mark == id => {
                up.fenced_at = Instant::now();
                Ok(())
            }
            Ok(_) => {
                up.taken_over = true;
                log::warn!(
                    "upload of '{}': another server took its part over; stopping",
                    up.remote.as_str()
                );
                Err(StoreError::TakenOver(up.remote.as_str().to_owned()))
            }
            Err(e) => {
                // Whose it is cannot be told (the storage fails): hands off.
                up.taken_over = true;
                Err(StoreError::from_io(up.remote.as_str(), e))
            }
        }
    }

    /// Appends `data` at `offset`, which must be the number of bytes
    /// written so far; never past the declared size.
    pub fn write(&self, up: &mut Upload, offset: u64, data: &[u8]) -> Result<(), StoreError> {
        if offset != up.written {
            return Err(StoreError::BadOffset {
                expected: up.written,
                got: offset,
            });
        }
        let end = up.written.saturating_add(data.len() as u64);
        if end > up.size {
            return Err(StoreError::BadOffset {
                expected: up.size,
                got: end,
            });
        }
        if up.id.is_some() && up.fenced_at.elapsed() >= self.fence_every {
            self.fence(up)?;
        }
        if up.ahead > 0 && end + up.ahead / 2 > up.reserved && up.reserved < up.size {
            // The next step of space, before the data needs it: up to
            // `ahead` past the end of this write, never more (a cap on
            // what a token may hold reserved counts on it).
            let from = up.reserved.max(up.written);
            let step = end
                .saturating_add(up.ahead)
                .min(up.size)
                .saturating_sub(from);
            up.reserved = from;
            match partial::preallocate(&up.file, up.reserved, step) {
                Ok(()) => up.reserved += step,
                Err(e) if no_room(&e) => return Err(StoreError::NoSpace),
                // Not supported here: writes find out for themselves.
                Err(_) => (up.ahead, up.no_reserve) = (0, true),
            }
        }
        up.file
            .write_all(data)
            .map_err(|e| StoreError::from_io(up.remote.as_str(), e))?;
        up.written = end;
        Ok(())
    }

    /// Whether a flush of the upload is due ([`Store::start_flush`]): with
    /// fsync on and no flush running, once `WRITEBACK_STEP` bytes were
    /// written since the last one, or the data is due to be made durable
    /// (see [`Store::start_flush`]).
    pub fn flush_due(&self, up: &Upload, now: Instant, waiting: bool) -> bool {
        self.config.fsync
            && up.flushing.is_none()
            && (up.written - up.flushed >= WRITEBACK_STEP || sync_wanted(up, now, waiting))
    }

    /// Starts a flush of what is written now, for a disk helper to make
    /// ([`Flush`]): its writeback is started, and it is made durable too
    /// once `DURABLE_MAX` bytes are not yet durable, or, while the
    /// connection waits for the network (`waiting`), `DURABLE_STEP`
    /// bytes that came slower than `SETTLE_MAX_RATE`. One at a time; its
    /// result goes to [`Store::flush_done`]. `now` is the loop's clock.
    pub fn start_flush(
        &self,
        up: &mut Upload,
        now: Instant,
        waiting: bool,
    ) -> Result<Flush, StoreError> {
        let file = up
            .file
            .try_clone()
            .map_err(|e| StoreError::from_io(up.remote.as_str(), e))?;
        let sync = sync_wanted(up, now, waiting);
        let flush = Flush {
            file,
            from: up.flushed,
            len: up.written - up.flushed,
            sync,
        };
        up.flushed = up.written;
        up.flushing = Some((up.written, sync));
        Ok(flush)
    }

    /// Whether a flush started by [`Store::start_flush`] is still out
    /// (its result not yet given to [`Store::flush_done`]).
    pub fn flush_running(&self, up: &Upload) -> bool {
        up.flushing.is_some()
    }

    /// A flush returned `result` (its `fdatasync`'s, if it made one); an
    /// error fails the upload (the commit's fsync may not report it again:
    /// the kernel reports a write-back error once per open file). `now`
    /// is the loop's clock.
    pub fn flush_done(
        &self,
        up: &mut Upload,
        result: io::Result<()>,
        now: Instant,
    ) -> Result<(), StoreError> {
        let Some((upto, sync)) = up.flushing.take() else {
            return Ok(());
        };
        result.map_err(|e| StoreError::from_io(up.remote.as_str(), e))?;
        if sync {
            up.synced = upto;
            up.synced_at = now;
        }
        Ok(())
    }

    /// Makes the upload durable and visible in one call: fsync (unless
    /// disabled), then [`Store::publish`], then fsync of the directory.
    /// Returns the stored remote path. On failure before the publish the
    /// temporary file is removed and no final name was created. `ftxd`
    /// makes the same steps with its fsyncs on the disk helpers.
    pub fn commit(&self, up: Upload) -> Result<RemotePath, StoreError> {
        let synced = self.check_whole(&up).and_then(|()| {
            if self.config.fsync {
                up.file
                    .sync_all()
                    .map_err(|e| StoreError::from_io(up.remote.as_str(), e))
            } else {
                Ok(())
            }
        });
        if let Err(e) = synced {
            self.abort(up, false);
            return Err(e);
        }
        let (stored, dir) = self.publish(up)?;
        self.sync_dir(&dir)
            .map_err(|e| StoreError::from_io(stored.as_str(), e))?;
        Ok(stored)
    }

    /// Fails unless every declared byte was written: the first step of a
    /// commit.
    pub fn check_whole(&self, up: &Upload) -> Result<(), StoreError> {
        if up.written != up.size {
            return Err(StoreError::BadOffset {
                expected: up.size,
                got: up.written,
            });
        }
        Ok(())
    }

    /// The file of a finished upload (a duplicate descriptor), for the
    /// fsync that precedes [`Store::publish`].
    pub fn file_to_sync(&self, up: &Upload) -> Result<File, StoreError> {
        up.file
            .try_clone()
            .map_err(|e| StoreError::from_io(up.remote.as_str(), e))
    }

    /// Publishes a whole upload whose file is durable (or fsync is off):
    /// an atomic replace (`force`) or a race-free publish under the first
    /// free name among `name`, `stem_1.ext`, `stem_2.ext`, ...; the
    /// temporary name is removed either way. Returns the stored remote
    /// path and the directory, whose fsync (with fsync on) makes the name
    /// durable. On failure no final name was created.
    pub fn publish(&self, mut up: Upload) -> Result<(RemotePath, OwnedFd), StoreError> {
        let result = self
            .check_whole(&up)
            .and_then(|()| self.unmark(&mut up))
            .and_then(|()| self.publish_name(&up));
        if up.taken_over {
            // The part is another server's now: its name is not ours to
            // remove (a copy of this upload's own is).
            if up.replaces.is_some() {
                let _ = beneath::unlink_at(up.dir.as_fd(), &up.temp, false);
            }
            return Err(result
                .err()
                .unwrap_or_else(|| StoreError::TakenOver(up.remote.as_str().to_owned())));
        }
        // After a link the temporary name is redundant, after a failure it
        // must not linger. After a rename it is gone, and must not be
        // removed again: the name may already be another upload's new
        // part, made by another server sharing the root.
        let renamed = matches!(result, Ok((_, Moved::Renamed)));
        if !renamed {
            if let Err(e) = beneath::unlink_at(up.dir.as_fd(), &up.temp, false) {
                if e.kind() != io::ErrorKind::NotFound {
                    log::warn!("cannot remove temporary file {:?}: {e}", up.temp);
                }
            }
        }
        let (stored, _) = result?;
        if up.replaces.is_some() {
            self.remove_replaced(&mut up);
        }
        Ok((stored, up.dir))
    }

    /// Removes the part an upload took over once the upload is published
    /// ([`Store::take_over`]), unless another server took it over since
    /// (its mark is no longer this upload's) or its name is gone (the
    /// name may lead to a new part by now).
    fn remove_replaced(&self, up: &mut Upload) {
        let ours = self.still_ours(up);
        let Some(replaced) = up.replaces.take() else {
            return;
        };
        if ours && part_mark::fresh_links(&replaced.file).is_ok_and(|n| n > 0) {
            if let Err(e) = beneath::unlink_at(up.dir.as_fd(), &replaced.name, false) {
                log::warn!("cannot remove part file {:?}: {e}", replaced.name);
            }
        }
    }

    /// The last check that the part is still this upload's, then its mark
    /// is removed: from here on no name leads any server to write into it.
    fn unmark(&self, up: &mut Upload) -> Result<(), StoreError> {
        if up.id.is_none() {
            return Ok(());
        }
        self.fence(up)?;
        if up.replaces.is_some() {
            // Its own copy carries no mark; the old part keeps it until
            // it is removed, after the publish.
            return Ok(());
        }
        part_mark::clear(&up.file).map_err(|e| StoreError::from_io(up.remote.as_str(), e))
    }

    /// Gives a whole upload ([`Store::publish`] checked it) its name.
    fn publish_name(&self, up: &Upload) -> Result<(RemotePath, Moved), StoreError> {
        let remote = up.remote.as_str();
        let name = up.remote.file_name().ok_or(StoreError::RootNotAllowed)?;
        let parent = up.remote.parent();
        let dir = up.dir.as_fd();
        if up.force {
            let to = CString::new(name).map_err(|_| StoreError::RootNotAllowed)?;
            beneath::rename_at(dir, &up.temp, dir, &to, RenameFlags::empty())
                .map_err(|e| StoreError::from_io(remote, e))?;
            return Ok((up.remote.clone(), Moved::Renamed));
        }
        for n in 0..=MAX_CLASH_ATTEMPTS {
            let candidate = if n == 0 {
                name.to_owned()
            } else {
                clash_name(name, n)
            };
            let Ok(stored) = parent.join(&candidate) else {
                // The clash name grew past the component limit: no free name.
                break;
            };
            let Ok(to) = CString::new(candidate) else {
                break;
            };
            // A name taken is never "already ours": on a shared file
            // system a name's lookup may be stale, so it proves nothing.
            match publish_noreplace(up.dir.as_fd(), &up.temp, &to) {
                Ok(moved) => return Ok((stored, moved)),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(StoreError::from_io(stored.as_str(), e)),
            }
        }
        Err(StoreError::NoFreeName(remote.to_owned()))
    }

    /// An upload abandoned while a flush or its fsync may still run on a
    /// disk helper (the connection closed): kept for `reput` as
    /// [`Store::abort`] keeps it, but only up to what a step already made
    /// durable. The running call's error, if it fails, reaches no one: the
    /// bytes after that point may not be on the disk, and `reput` must send
    /// them again rather than trust the page cache.
    pub fn abort_unsettled(&self, mut up: Upload) {
        up.written = up.written.min(up.synced);
        self.abort(up, true);
    }

    /// An upload given up because its storage does not answer: dropped
    /// without a call to that storage (a trim or a removal would wait on
    /// it too, on the event loop). Its file keeps what it holds; a part
    /// stays resumable, and the `reput`'s prefix check decides what of it
    /// stands; a one-off file is left to the sweep.
    pub fn abandon(&self, up: Upload) {
        log::debug!(
            "abandoned the upload of '{}' in {:?} as it is",
            up.remote.as_str(),
            up.temp
        );
    }

    /// Abandons an upload. With `keep`, an upload in the name's part file
    /// stays there (unlocked) for `reput`; anything else is removed.
    pub fn abort(&self, up: Upload, keep: bool) {
        if up.taken_over || !self.still_ours(&up) {
            // Another server's part now (or one that cannot say whose it
            // is: its storage fails): neither trimmed nor removed. A copy
            // of this upload's own is removed.
            if up.replaces.is_some() {
                let _ = beneath::unlink_at(up.dir.as_fd(), &up.temp, false);
            }
            return;
        }
        if up.replaces.is_some() {
            self.abort_copy(up, keep);
            return;
        }
        if keep && up.resumable && up.written > 0 {
            // Kept for reput: give back the blocks reserved past what
            // arrived (the reput reserves again).
            if let Err(e) = up.file.set_len(up.written) {
                log::warn!("cannot trim part file {:?}: {e}", up.temp);
            }
            return;
        }
        if let Err(e) = beneath::unlink_at(up.dir.as_fd(), &up.temp, false) {
            log::warn!("cannot remove temporary file {:?}: {e}", up.temp);
        }
    }
    /// Abandons an upload that went on in a copy of the part it took over
    /// ([`Store::take_over`]). With `keep`, the copy, trimmed and marked,
    /// takes the part's place under its name (in one rename), so a
    /// `reput` continues from what arrived; late writes of an earlier
    /// holder still reach only the old part. Otherwise the copy is
    /// removed and the old part stays as it was.
    fn abort_copy(&self, mut up: Upload, keep: bool) {
        let Some(replaced) = up.replaces.take() else {
            return;
        };
        let dir = up.dir.as_fd();
        let moved = keep
            && up.to_copy.is_none()
            && up.written > 0
            && up.file.set_len(up.written).is_ok()
            && up.id.is_none_or(|id| part_mark::set(&up.file, id).is_ok())
            && part_mark::fresh_links(&replaced.file).is_ok_and(|n| n > 0)
            && beneath::rename_at(dir, &up.temp, dir, &replaced.name, RenameFlags::empty()).is_ok();
        if !moved {
            if let Err(e) = beneath::unlink_at(dir, &up.temp, false) {
                log::warn!("cannot remove temporary file {:?}: {e}", up.temp);
            }
        }
    }
}

/// A reservation refused for want of room: the disk is full or the
/// user's quota is spent (anything else means it is not supported here).
fn no_room(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// A fresh hidden temporary name: reserved prefix, pid, per-process counter
/// and the clock, so that several `ftxd` processes sharing a root (even on
/// different hosts reusing a pid) practically never collide; `create_new`
/// makes a collision an error rather than a shared file.
fn temp_name() -> CString {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = format!("{RESERVED_PREFIX}tmp-{}-{n}-{nanos:x}", std::process::id());
    // The name is made of ASCII letters and digits only.
    CString::new(name).unwrap_or_default()
}

/// Publishes `temp` as `to` (both in `dir`) unless `to` exists (`EEXIST`):
/// an exclusive rename, which moves the name in one step (no moment where
/// the part's name and the final one are the same file); where the file
/// system lacks it (NFS, GlusterFS, ceph-fuse say EINVAL), a hard link,
/// which is exclusive even on NFS, and the caller removes `temp`.
fn publish_noreplace(dir: BorrowedFd<'_>, temp: &CStr, to: &CStr) -> io::Result<Moved> {
    match super::rename_noreplace(dir, temp, dir, to) {
        Ok(()) => Ok(Moved::Renamed),
        Err(e) if super::unsupported(&e) => {
            beneath::link_at(dir, temp, dir, to).map(|()| Moved::Linked)
        }
        Err(e) => Err(e),
    }
}

/// How a publish gave the upload its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moved {
    /// The hidden name moved to it: nothing left to remove.
    Renamed,
    /// A second link: the hidden name is still there, to be removed.
    Linked,
}

/// The size of a part as its file system has it now (not a cached size).
fn part_len(file: &File) -> io::Result<u64> {
    part_mark::fresh_len(file).or_else(|_| Ok(file.metadata()?.len()))
}

/// Whether a flush of `up` now should make its data durable: once
/// [`DURABLE_MAX`] bytes are not yet durable, or, while the connection
/// waits for the network (`waiting`), [`DURABLE_STEP`] bytes that came
/// slower than [`SETTLE_MAX_RATE`].
fn sync_wanted(up: &Upload, now: Instant, waiting: bool) -> bool {
    let pending = up.written - up.synced;
    let secs = now.saturating_duration_since(up.synced_at).as_secs_f64();
    pending >= DURABLE_MAX
        || (waiting && pending >= DURABLE_STEP && pending as f64 <= SETTLE_MAX_RATE * secs)
}

/// A flush of an upload for a disk helper ([`Store::start_flush`]).
#[derive(Debug)]
pub struct Flush {
    /// The upload's file (a duplicate descriptor).
    pub file: File,
    /// Where its writeback starts (`sync_file_range`, not waiting: only an
    /// optimization for the fsync that follows; a failure is ignored, the
    /// fsync reports it).
    pub from: u64,
    /// How many bytes from there.
    pub len: u64,
    /// Whether it then makes the file's data durable (`fdatasync`).
    pub sync: bool,
}

impl Flush {
    /// Makes the flush (the blocking calls; a disk helper's work). A
    /// durable one writes the data and waits for it before the
    /// `fdatasync`, whose journal commit is then short: an `fdatasync`
    /// with the data still to write held the loop's own writes to the file
    /// for up to 14 ms (the loop's `ls` p99 during a 1 GiB put: 7-10 ms
    /// with it, 1-3 ms without).
    pub fn run(&self) -> io::Result<()> {
        if !self.sync {
            let _ = crate::sys::start_writeback(self.file.as_fd(), self.from, self.len);
            return Ok(());
        }
        // Waiting for the writes reports a write-back error, once: it must
        // fail the upload, never be dropped (the fdatasync after it would
        // then succeed over data the disk does not hold). Only a file
        // system without sync_file_range is let through to the fdatasync.
        if let Err(e) = crate::sys::write_range(self.file.as_fd(), 0, self.from + self.len) {
            if !matches!(
                e.raw_os_error(),
                Some(libc::EINVAL)
                    | Some(libc::ENOSYS)
                    | Some(libc::ESPIPE)
                    | Some(libc::EOPNOTSUPP)
            ) {
                return Err(e);
            }
        }
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::super::StoreConfig;
    use super::*;
    use std::fs;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;
    use std::sync::{Arc, Barrier};

    use crate::proto::error::ErrorCode;

    /// What the connection has a disk helper do before it hashes the
    /// prefix: the copy of the part an upload took over, if any.
    fn copy_now(up: &mut Upload) {
        if let Some((from, len)) = up.copy_source().unwrap() {
            part_mark::copy_prefix(&from, &up.file, len).unwrap();
            up.copied();
        }
    }

    /// A `reput` of `name` as a server whose earlier holder's lock lapsed
    /// has it, the copy of the part made as the connection has it made.
    fn resume_lapsed(
        s: &Store,
        name: &str,
        size: u64,
        max: u64,
    ) -> Result<(Upload, PutAccept), StoreError> {
        let mut got = partial::tests::with_locks_lapsed(|| {
            s.begin_upload(&rp(name), size, false, Some(max), &Uploader::default())
        });
        if let Ok((up, _)) = &mut got {
            copy_now(up);
        }
        got
    }

    /// Blocks allocated to a file, in bytes.
    fn allocated(path: &Path) -> u64 {
        fs::metadata(path).unwrap().blocks() * 512
    }

    /// An upload reserves its declared size up front without changing the
    /// file's size; kept for reput, its part gives back what did not
    /// arrive.
    #[test]
    fn an_upload_reserves_its_size_and_a_kept_part_gives_the_rest_back() {
        let (_t, root, _) = setup();
        let s = store(&root);
        let size = 8 << 20;
        let (mut up, accept) = s
            .begin_upload(&rp("r.bin"), size, false, None, &Uploader::default())
            .unwrap();
        assert!(accept.resumable);
        let part = root.join(partial::part_name("r.bin"));
        if allocated(&part) < size {
            eprintln!("skipped: no fallocate on this filesystem");
            return;
        }
        assert_eq!(fs::metadata(&part).unwrap().len(), 0);
        s.write(&mut up, 0, &[1u8; 100_000]).unwrap();
        assert_eq!(fs::metadata(&part).unwrap().len(), 100_000);
        s.abort(up, true);
        assert_eq!(fs::metadata(&part).unwrap().len(), 100_000);
        assert!(
            allocated(&part) < 1 << 20,
            "{} bytes still reserved",
            allocated(&part)
        );
        // reput reserves the rest again and finishes it.
        let (mut up, accept) = s
            .begin_upload(&rp("r.bin"), size, false, Some(size), &Uploader::default())
            .unwrap();
        assert_eq!(accept.offset, 100_000);
        assert!(allocated(&part) >= size.min(RESERVE_AHEAD));
        let rest = vec![1u8; (size - 100_000) as usize];
        s.write(&mut up, 100_000, &rest).unwrap();
        assert_eq!(s.commit(up).unwrap(), rp("r.bin"));
        assert_eq!(
            fs::read(root.join("r.bin")).unwrap(),
            vec![1u8; size as usize]
        );
    }

    /// A server whose lock on a part lapsed (its machine cut off from a
    /// distributed file system) while it kept writing: the server that
    /// took the part over marks it, and the first stops at its next write
    /// and at its commit, touching neither the part nor any name.
    #[test]
    fn a_part_taken_over_fences_its_first_writer_out() {
        let (_t, root, _) = setup();
        let mut s = store(&root);
        if !marks_here(&s) {
            return;
        }
        s.fence_every = Duration::ZERO;
        let who = Uploader::default();
        let (mut a, accept) = s.begin_upload(&rp("f.bin"), 10, false, None, &who).unwrap();
        assert!(accept.resumable);
        s.write(&mut a, 0, b"AAAA").unwrap();
        let (mut b, accept) = partial::tests::with_locks_lapsed(|| {
            s.begin_upload(&rp("f.bin"), 10, false, Some(10), &who)
        })
        .unwrap();
        assert_eq!(accept.offset, 4);
        let refused = s.write(&mut a, 4, b"XX").unwrap_err();
        assert!(matches!(refused, StoreError::TakenOver(_)), "{refused}");
        assert_eq!(refused.code(), ErrorCode::Busy);
        s.abort(a, true);
        s.write(&mut b, 4, b"BBBBBB").unwrap();
        assert_eq!(s.commit(b).unwrap(), rp("f.bin"));
        assert_eq!(fs::read(root.join("f.bin")).unwrap(), b"AAAABBBBBB");
        assert_eq!(
            part_mark::of(&File::open(root.join("f.bin")).unwrap()).unwrap(),
            None
        );

        // Cut off after its last byte: its commit publishes nothing.
        let (mut a, _) = s.begin_upload(&rp("g.bin"), 3, false, None, &who).unwrap();
        s.write(&mut a, 0, b"AAA").unwrap();
        let (b, accept) = partial::tests::with_locks_lapsed(|| {
            s.begin_upload(&rp("g.bin"), 3, false, Some(3), &who)
        })
        .unwrap();
        assert_eq!(accept.offset, 3);
        assert!(matches!(s.commit(a), Err(StoreError::TakenOver(_))));
        assert!(!root.join("g.bin").exists(), "nothing published");
        assert_eq!(s.commit(b).unwrap(), rp("g.bin"));
        let mut names: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["f.bin", "g.bin"], "no part or temporary file left");

        // Ended (its client gone) before any write noticed: its abort,
        // kept or not, neither trims nor removes the other's part.
        for keep in [true, false] {
            let (mut a, _) = s.begin_upload(&rp("h.bin"), 6, false, None, &who).unwrap();
            s.write(&mut a, 0, b"AAAA").unwrap();
            let (mut b, accept) = partial::tests::with_locks_lapsed(|| {
                s.begin_upload(&rp("h.bin"), 6, false, Some(6), &who)
            })
            .unwrap();
            assert_eq!(accept.offset, 4);
            s.write(&mut b, 4, b"B").unwrap();
            s.abort(a, keep);
            s.write(&mut b, 5, b"C").unwrap();
            assert_eq!(s.commit(b).unwrap(), rp("h.bin"));
            assert_eq!(fs::read(root.join("h.bin")).unwrap(), b"AAAABC");
            fs::remove_file(root.join("h.bin")).unwrap();
        }
    }

    /// On a shared file system a cut-off writer may still land writes it
    /// had in flight: the upload that takes its part over goes on in a
    /// file of its own, the part's prefix copied, and removes the part
    /// once it is published. Late writes reach only the old part.
    #[test]
    fn on_a_shared_file_system_a_taken_over_upload_goes_on_in_its_own_file() {
        use std::os::unix::fs::FileExt;
        let (_t, root, _) = setup();
        let mut s = store(&root);
        if !marks_here(&s) {
            return;
        }
        s.shared = true;
        let who = Uploader::default();
        let (mut a, _) = s.begin_upload(&rp("f.bin"), 8, false, None, &who).unwrap();
        s.write(&mut a, 0, b"AAAA").unwrap();
        let (mut b, accept) = partial::tests::with_locks_lapsed(|| {
            s.begin_upload(&rp("f.bin"), 8, false, Some(8), &who)
        })
        .unwrap();
        assert_eq!((accept.offset, accept.resumable), (4, true));
        assert!(b.resumable());
        assert_eq!(
            fs::metadata(root.join(b.temp.to_str().unwrap()))
                .unwrap()
                .len(),
            0,
            "copied later"
        );
        copy_now(&mut b);
        s.write(&mut b, 4, b"BBBB").unwrap();
        // In flight from the cut-off writer, landing after the new one
        // wrote there: it reaches the old part only.
        a.file().write_at(b"XXXX", 4).unwrap();
        assert_eq!(s.commit(b).unwrap(), rp("f.bin"));
        assert_eq!(fs::read(root.join("f.bin")).unwrap(), b"AAAABBBB");
        s.abort(a, true);
        let names: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["f.bin"], "the old part is removed");
    }

    /// On a shared file system an upload that went on in a copy is fenced
    /// through the part it took over: a third server that takes that part
    /// over stops it (it publishes nothing and removes its copy). And an
    /// interrupted copy takes the part's place, so its progress is kept.
    #[test]
    fn a_copy_is_fenced_through_its_part_and_kept_when_interrupted() {
        let (_t, root, _) = setup();
        let mut s = store(&root);
        if !marks_here(&s) {
            return;
        }
        s.shared = true;
        s.fence_every = Duration::ZERO;
        let who = Uploader::default();
        let lapsed = |resume| resume_lapsed(&s, "f.bin", 8, resume);
        let (mut a, _) = s.begin_upload(&rp("f.bin"), 8, false, None, &who).unwrap();
        s.write(&mut a, 0, b"AA").unwrap();
        s.abort(a, true);
        // B resumes into a copy and writes on; C takes the part over.
        let (mut b, accept) = lapsed(8).unwrap();
        assert_eq!(accept.offset, 2);
        s.write(&mut b, 2, b"BB").unwrap();
        let (mut c, accept) = lapsed(8).unwrap();
        assert_eq!(accept.offset, 2);
        assert!(matches!(
            s.write(&mut b, 4, b"BB"),
            Err(StoreError::TakenOver(_))
        ));
        // Whatever ends it, it publishes nothing and leaves only the part.
        assert!(s.commit(b).is_err());
        // C is interrupted after 2 more bytes: its copy becomes the part.
        s.write(&mut c, 2, b"CC").unwrap();
        s.abort(c, true);
        let (mut d, accept) = lapsed(8).unwrap();
        assert_eq!(accept.offset, 4, "the interrupted copy's progress is kept");
        s.write(&mut d, 4, b"DDDD").unwrap();
        assert_eq!(s.commit(d).unwrap(), rp("f.bin"));
        assert_eq!(fs::read(root.join("f.bin")).unwrap(), b"AACCDDDD");
        let names: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["f.bin"], "no copy or part left");

        // Whole, but taken over before its commit: publishes nothing.
        let (mut a, _) = s.begin_upload(&rp("g.bin"), 4, false, None, &who).unwrap();
        s.write(&mut a, 0, b"AA").unwrap();
        s.abort(a, true);
        let resume = || resume_lapsed(&s, "g.bin", 4, 4);
        let (mut b, _) = resume().unwrap();
        s.write(&mut b, 2, b"BB").unwrap();
        let (c, _) = resume().unwrap();
        assert!(matches!(s.commit(b), Err(StoreError::TakenOver(_))));
        assert!(!root.join("g.bin").exists());
        s.abort(c, false);
    }

    /// A name that leads to a file without the mark (a part published
    /// since, through a stale lookup; a part of an older ftxd) holds no
    /// upload to resume: the upload goes to a file of its own and the
    /// other is left as it is.
    #[test]
    fn an_unmarked_file_under_a_part_name_is_never_resumed_or_written() {
        let (_t, root, _) = setup();
        let s = store(&root);
        if !marks_here(&s) {
            return;
        }
        let part = root.join(partial::part_name("h.bin"));
        fs::write(&part, b"published").unwrap();
        let who = Uploader::default();
        for resume in [Some(20), None] {
            let (mut up, accept) = s
                .begin_upload(&rp("h.bin"), 4, false, resume, &who)
                .unwrap();
            assert_eq!(
                (accept.offset, accept.resumable, accept.partial),
                (0, false, 0)
            );
            s.write(&mut up, 0, b"mine").unwrap();
            s.abort(up, true);
            assert_eq!(fs::read(&part).unwrap(), b"published");
        }
        // An empty one is not taken over either.
        fs::write(&part, b"").unwrap();
        let (up, accept) = s.begin_upload(&rp("h.bin"), 4, false, None, &who).unwrap();
        assert!(!accept.resumable);
        s.abort(up, false);
    }

    /// A fresh part carries its attempt's mark until the commit, which
    /// removes it before the name is published (renamed in one step
    /// where the file system can, so no part name is left behind).
    #[test]
    fn a_part_is_marked_until_it_is_published() {
        let (_t, root, _) = setup();
        let s = store(&root);
        if !marks_here(&s) {
            return;
        }
        let who = Uploader::default();
        let (mut up, _) = s.begin_upload(&rp("m.bin"), 2, false, None, &who).unwrap();
        let part = root.join(partial::part_name("m.bin"));
        let marked = part_mark::of(&File::open(&part).unwrap()).unwrap();
        assert!(marked.is_some());
        s.write(&mut up, 0, b"ok").unwrap();
        // Interrupted and resumed: a new attempt, a new mark.
        s.abort(up, true);
        let (up, accept) = s
            .begin_upload(&rp("m.bin"), 2, false, Some(2), &who)
            .unwrap();
        assert_eq!(accept.offset, 2);
        let again = part_mark::of(&File::open(&part).unwrap()).unwrap();
        assert!(again.is_some() && again != marked);
        assert_eq!(s.commit(up).unwrap(), rp("m.bin"));
        assert!(!part.exists());
        assert_eq!(
            part_mark::of(&File::open(root.join("m.bin")).unwrap()).unwrap(),
            None
        );
    }

    /// A large upload reserves its space a step ahead of the data, not all
    /// at once: a client that declares a huge file and sends a byte now
    /// and then holds one step of the disk.
    #[test]
    fn space_is_reserved_a_step_ahead() {
        let (_t, root, _) = setup();
        let s = store(&root);
        let size = 4 * RESERVE_AHEAD;
        let (mut up, _) = s
            .begin_upload(&rp("big"), size, false, None, &Uploader::default())
            .unwrap();
        let part = root.join(partial::part_name("big"));
        if allocated(&part) < RESERVE_AHEAD {
            eprintln!("skipped: no fallocate on this filesystem");
            return;
        }
        assert!(allocated(&part) < 2 * RESERVE_AHEAD, "{}", allocated(&part));
        let chunk = vec![3u8; 1 << 20];
        let mut at = 0;
        while at < 2 * RESERVE_AHEAD {
            s.write(&mut up, at, &chunk).unwrap();
            at += chunk.len() as u64;
        }
        // Always a step ahead of what arrived, never the whole size.
        let held = allocated(&part);
        assert!(held >= at + RESERVE_AHEAD / 2 && held < size, "{held}");
        s.abort(up, false);
    }

    /// An upload told to reserve nothing ahead allocates as it writes; let
    /// reserve again, it steps ahead again.
    #[test]
    fn a_limited_upload_reserves_only_what_it_may() {
        let (_t, root, _) = setup();
        let s = store(&root);
        let size = 4 * RESERVE_AHEAD;
        let none = Uploader {
            reserve_ahead: 0,
            ..Uploader::default()
        };
        let (mut up, _) = s
            .begin_upload(&rp("big"), size, false, None, &none)
            .unwrap();
        let part = root.join(partial::part_name("big"));
        assert_eq!(up.reserved_ahead(), 0);
        let chunk = vec![3u8; 1 << 20];
        let mut at = 0;
        while at < RESERVE_AHEAD {
            s.write(&mut up, at, &chunk).unwrap();
            at += chunk.len() as u64;
        }
        assert_eq!(up.reserved_ahead(), 0);
        assert!(
            allocated(&part) < at + RESERVE_AHEAD / 2,
            "{}",
            allocated(&part)
        );
        up.limit_reserve(RESERVE_AHEAD);
        s.write(&mut up, at, &chunk).unwrap();
        at += chunk.len() as u64;
        if allocated(&part) < at + RESERVE_AHEAD / 2 {
            eprintln!("skipped: no fallocate on this filesystem");
        } else {
            // Never more than `ahead` past the data: a cap counts on it.
            assert_eq!(up.reserved_ahead(), RESERVE_AHEAD);
            for _ in 0..20 {
                s.write(&mut up, at, &chunk).unwrap();
                at += chunk.len() as u64;
                assert!(
                    up.reserved_ahead() <= RESERVE_AHEAD,
                    "{}",
                    up.reserved_ahead()
                );
            }
        }
        s.abort(up, false);
    }

    /// A flush is due every WRITEBACK_STEP bytes, one at a time; it makes
    /// the data durable when the upload waits for the network with a
    /// step's worth written slowly, and every DURABLE_MAX bytes regardless;
    /// a failed one fails the upload.
    #[test]
    fn uploads_are_flushed_in_steps() {
        let (_t, root, _) = setup();
        let s = store(&root);
        let step = DURABLE_STEP as usize;
        let size = DURABLE_MAX + 2 * DURABLE_STEP;
        let (mut up, _) = s
            .begin_upload(&rp("big"), size, false, None, &Uploader::default())
            .unwrap();
        let chunk = vec![7u8; step];
        // The clock is given: a second after the last flush is a slow
        // link, a millisecond a fast sender's moment of waiting.
        let slow = |up: &Upload| up.synced_at + std::time::Duration::from_secs(1);
        let fast = |up: &Upload| up.synced_at + std::time::Duration::from_millis(1);
        // The flush as ftxd's disk helper makes it; whether it synced.
        let flush = |up: &mut Upload, at: Instant, waiting: bool| {
            let f = s.start_flush(up, at, waiting).unwrap();
            assert_eq!(f.from + f.len, up.written);
            s.flush_done(up, f.run(), at).unwrap();
            f.sync
        };
        s.write(&mut up, 0, &chunk[..WRITEBACK_STEP as usize - 1])
            .unwrap();
        assert!(!s.flush_due(&up, fast(&up), false), "less than a step");
        s.write(&mut up, WRITEBACK_STEP - 1, &chunk[..1]).unwrap();
        assert!(s.flush_due(&up, fast(&up), false));
        let at = fast(&up);
        let f = s.start_flush(&mut up, at, false).unwrap();
        assert_eq!((f.from, f.len, f.sync), (0, WRITEBACK_STEP, false));
        assert!(s.flush_running(&up));
        s.write(
            &mut up,
            WRITEBACK_STEP,
            &chunk[..step - WRITEBACK_STEP as usize],
        )
        .unwrap();
        assert!(!s.flush_due(&up, slow(&up), true), "one at a time");
        let at = fast(&up);
        s.flush_done(&mut up, f.run(), at).unwrap();
        assert_eq!(up.synced, 0, "a writeback makes nothing durable");
        // A step written, waiting: durable only if it came slowly.
        let at = fast(&up);
        assert!(!flush(&mut up, at, false));
        assert!(!s.flush_due(&up, fast(&up), true), "a fast sender's step");
        assert!(s.flush_due(&up, slow(&up), true));
        let at = slow(&up);
        assert!(flush(&mut up, at, true));
        assert_eq!(up.synced, DURABLE_STEP);
        // Never waiting: durable once DURABLE_MAX is not yet durable.
        let mut at = DURABLE_STEP;
        let mut syncs = 0;
        while at < size {
            s.write(&mut up, at, &chunk).unwrap();
            at += DURABLE_STEP;
            let now = fast(&up);
            if s.flush_due(&up, now, false) && flush(&mut up, now, false) {
                syncs += 1;
            }
            let behind = at - up.synced;
            assert!(behind < DURABLE_MAX, "{behind} bytes not durable");
        }
        assert_eq!(syncs, 1);
        assert_eq!(up.synced, DURABLE_STEP + DURABLE_MAX);
        assert_eq!(s.commit(up).unwrap(), rp("big"));
        // A flush that fails fails the upload.
        let (mut up, _) = s
            .begin_upload(&rp("bad"), 10, false, None, &Uploader::default())
            .unwrap();
        s.write(&mut up, 0, b"0123456789").unwrap();
        let _flush = s.start_flush(&mut up, Instant::now(), false).unwrap();
        let eio = io::Error::from_raw_os_error(libc::EIO);
        let e = s.flush_done(&mut up, Err(eio), Instant::now()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Io, "{e}");
        assert!(!s.flush_running(&up));
        s.abort(up, false);
    }

    /// The commit in steps, as ftxd makes it: check, fsync of the file
    /// (here in the test), publish; the directory comes back for its sync.
    #[test]
    fn a_commit_in_steps_publishes_and_hands_back_the_directory() {
        let (_t, root, _) = setup();
        let s = store(&root);
        fs::create_dir(root.join("d")).unwrap();
        put(&s, "d/a", b"old", false).unwrap();
        let (mut up, _) = s
            .begin_upload(&rp("d/a"), 3, false, None, &Uploader::default())
            .unwrap();
        s.write(&mut up, 0, b"new").unwrap();
        s.check_whole(&up).unwrap();
        s.file_to_sync(&up).unwrap().sync_all().unwrap();
        let (stored, dir) = s.publish(up).unwrap();
        assert_eq!(stored, rp("d/a_1"));
        let d = fs::metadata(root.join("d")).unwrap();
        let st = rustix::fs::fstat(&dir).unwrap();
        assert_eq!((st.st_dev, st.st_ino), (d.dev(), d.ino()));
        assert_eq!(names(&s, "d"), ["a", "a_1"]);
        assert_eq!(get(&s, "d/a_1").unwrap(), b"new");
        // Not whole: refused before any name is taken.
        let (up, _) = s
            .begin_upload(&rp("d/b"), 3, false, None, &Uploader::default())
            .unwrap();
        assert_eq!(s.check_whole(&up).unwrap_err().code(), ErrorCode::Protocol);
        s.abort(up, false);
        assert_eq!(names(&s, "d"), ["a", "a_1"]);
    }

    #[test]
    fn clash_names_follow_the_seed() {
        let (_t, root, _) = setup();
        let s = store(&root);
        fs::create_dir(root.join("d")).unwrap();
        assert_eq!(put(&s, "d/a.txt", b"1", false).unwrap(), rp("d/a.txt"));
        assert_eq!(put(&s, "d/a.txt", b"2", false).unwrap(), rp("d/a_1.txt"));
        assert_eq!(put(&s, "d/a.txt", b"3", false).unwrap(), rp("d/a_2.txt"));
        assert_eq!(get(&s, "d/a.txt").unwrap(), b"1");
        assert_eq!(get(&s, "d/a_2.txt").unwrap(), b"3");
        // A directory under the name counts as taken too.
        fs::create_dir(root.join("sub")).unwrap();
        assert_eq!(put(&s, "sub", b"x", false).unwrap(), rp("sub_1"));
        assert_eq!(names(&s, "d"), ["a.txt", "a_1.txt", "a_2.txt"]);
    }

    #[test]
    fn concurrent_commits_pick_distinct_names() {
        let (_t, root, _) = setup();
        let s = Arc::new(store(&root));
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let s = Arc::clone(&s);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let data = format!("upload {i}").into_bytes();
                    let mut up = s
                        .begin_upload(
                            &rp("same.bin"),
                            data.len() as u64,
                            false,
                            None,
                            &Uploader::default(),
                        )
                        .map(|(u, _)| u)?;
                    s.write(&mut up, 0, &data)?;
                    barrier.wait();
                    s.commit(up).map(|name| (name, data))
                })
            })
            .collect();
        let mut stored = Vec::new();
        for h in handles {
            stored.push(h.join().unwrap().unwrap());
        }
        let mut seen: Vec<_> = stored.iter().map(|(n, _)| n.clone()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), threads, "{seen:?}");
        for (name, data) in &stored {
            assert_eq!(&get(&s, name.as_str()).unwrap(), data);
        }
        assert_eq!(names(&s, "").len(), threads);
    }

    #[test]
    fn force_replaces_atomically() {
        let (_t, root, _) = setup();
        let s = store(&root);
        put(&s, "f", b"old", false).unwrap();
        assert_eq!(put(&s, "f", b"new!", true).unwrap(), rp("f"));
        assert_eq!(get(&s, "f").unwrap(), b"new!");
        assert_eq!(names(&s, ""), ["f"]);
        fs::create_dir(root.join("dir")).unwrap();
        let e = s
            .begin_upload(&rp("dir"), 1, true, None, &Uploader::default())
            .map(|(u, _)| u)
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::IsDirectory);
    }

    #[test]
    fn temp_files_are_hidden_and_cleaned() {
        let (_t, root, _) = setup();
        let s = store(&root);
        let mut up = s
            .begin_upload(&rp("x"), 4, false, None, &Uploader::default())
            .map(|(u, _)| u)
            .unwrap();
        s.write(&mut up, 0, b"ab").unwrap();
        let on_disk: Vec<_> = fs::read_dir(&root).unwrap().collect();
        assert_eq!(on_disk.len(), 1, "the temp file exists");
        assert!(names(&s, "").is_empty(), "but is never listed");
        assert_eq!(
            s.open_download(&rp("x")).unwrap_err().code(),
            ErrorCode::NotFound
        );
        s.abort(up, false);
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
        // Incomplete data fails the commit and leaves nothing behind.
        let mut up = s
            .begin_upload(&rp("y"), 4, false, None, &Uploader::default())
            .map(|(u, _)| u)
            .unwrap();
        s.write(&mut up, 0, b"ab").unwrap();
        assert_eq!(s.commit(up).unwrap_err().code(), ErrorCode::Protocol);
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
    }

    #[test]
    fn writes_must_be_sequential_and_within_size() {
        let (_t, root, _) = setup();
        let s = store(&root);
        let mut up = s
            .begin_upload(&rp("x"), 4, false, None, &Uploader::default())
            .map(|(u, _)| u)
            .unwrap();
        assert_eq!(
            s.write(&mut up, 1, b"a").unwrap_err().code(),
            ErrorCode::Protocol
        );
        s.write(&mut up, 0, b"abc").unwrap();
        assert_eq!(
            s.write(&mut up, 3, b"de").unwrap_err().code(),
            ErrorCode::Protocol
        );
        s.write(&mut up, 3, b"d").unwrap();
        assert_eq!(s.commit(up).unwrap(), rp("x"));
    }

    /// A part file hard-linked to a file outside the root is never
    /// resumed into: the upload is refused and the outside file unchanged.
    #[test]
    fn a_hard_linked_part_is_refused() {
        let (_t, root, outside) = setup();
        let victim = outside.join("victim");
        fs::write(&victim, b"precious").unwrap();
        fs::hard_link(&victim, root.join(".ftx-part-x")).unwrap();
        let s = store(&root);
        let err = s
            .begin_upload(&rp("x"), 20, false, Some(20), &Uploader::default())
            .map(|(u, _)| u)
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied, "{err}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        // Nor one linked to another file inside the root: only the part's
        // own target (a commit that stopped half way) may share it.
        fs::remove_file(root.join(".ftx-part-x")).unwrap();
        fs::write(root.join("other"), b"someone's").unwrap();
        fs::hard_link(root.join("other"), root.join(".ftx-part-x")).unwrap();
        let err = s
            .begin_upload(&rp("x"), 20, false, Some(20), &Uploader::default())
            .map(|(u, _)| u)
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied, "{err}");
        assert_eq!(fs::read(root.join("other")).unwrap(), b"someone's");
    }

    #[test]
    fn too_large_and_no_space() {
        let (_t, root, _) = setup();
        let s = Store::open(StoreConfig {
            max_file_size: Some(10),
            ..config(&root)
        })
        .unwrap();
        let e = s
            .begin_upload(&rp("big"), 11, false, None, &Uploader::default())
            .map(|(u, _)| u)
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::TooLarge);
        assert!(e.to_string().contains("larger"), "{e}");
        assert!(s
            .begin_upload(&rp("ok"), 10, false, None, &Uploader::default())
            .map(|(u, _)| u)
            .is_ok());
        let s = store(&root);
        let e = s
            .begin_upload(&rp("huge"), u64::MAX / 2, false, None, &Uploader::default())
            .map(|(u, _)| u)
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::NoSpace);
    }
}
