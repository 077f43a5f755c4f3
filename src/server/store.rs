//! The store: every file-system operation of `ftxd`, beneath one root.
//!
//! It owns the path-safety rules (a checked [`RemotePath`] is resolved
//! beneath a descriptor of the root by [`super::beneath`], with the
//! kernel's help; a symlink is followed only while it stays inside the
//! root), the atomic upload (hidden temporary file, fsync, then a
//! race-free publish under the final or a `stem_N.ext` name), downloads,
//! listings and the small management operations. It knows nothing of
//! sockets, sessions or the event loop, and never logs user-facing text.

use std::ffi::{CStr, CString};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::partial::{self, PartOwner};
use crate::proto::error::ErrorCode;
use crate::proto::limits::{MAX_LIST_ENTRIES, RESERVED_PREFIX};
use crate::proto::message::{Entry, EntryKind};
use crate::proto::path::{clash_name, RemotePath};
use crate::proto::session::PutAccept;

use super::beneath;
use super::digest_cache;

/// How many `stem_N.ext` names an upload tries before giving up.
pub const MAX_CLASH_ATTEMPTS: u64 = 10_000;
/// Mode of uploaded files (before the umask).
const FILE_MODE: u32 = 0o644;
/// Mode of created directories (before the umask).
const DIR_MODE: u32 = 0o755;
/// With fsync on, every this many bytes of an upload are handed to the
/// disk at once (`sync_file_range`, not waiting), so the disk works while
/// the rest arrives and the fsync at commit has little left to do.
const WRITEBACK_STEP: u64 = 1 << 20;
/// Disk space an upload reserves ahead of its data: the window a client
/// may have in flight (16 MiB), so writes never wait for allocation, while
/// a client that declares a huge file and trickles holds no more than this.
pub const RESERVE_AHEAD: u64 = crate::proto::limits::DEFAULT_WINDOW as u64;
/// With fsync on, an upload that waits for the network with at least this
/// many bytes not yet durable makes them durable (`fdatasync`,
/// [`Store::settle`]). A disk with a write-back cache (a VM's virtual
/// disk, most SSDs) otherwise keeps the whole file in that cache until the
/// commit's fsync, which then waits ~65 ms per 64 MiB here; flushed while
/// the loop would wait anyway, the commit waits for the tail only.
const DURABLE_STEP: u64 = 8 << 20;
/// With fsync on, an upload that never waits for the network (it arrives
/// faster than ftxd takes it) is made durable every this many bytes all
/// the same, so no one flush blocks the loop for long. Rarely: flushing
/// while data is waiting stalls the upload (8 MiB steps cost ~15% of a
/// 1 GiB put on loopback).
const DURABLE_MAX: u64 = 64 << 20;
/// [`Store::settle`] flushes only an upload arriving slower than this
/// (bytes a second, since its last flush): a slow or distant link, whose
/// waits are long and whose bytes queue in the socket meanwhile. A fast
/// sender waits only for moments; flushing then (~18 ms per 8 MiB here)
/// stalled it, and on loopback it flushed every 8 MiB (106 fdatasyncs in
/// one 1 GiB put, 1.9 s of them).
const SETTLE_MAX_RATE: f64 = 256.0 * 1024.0 * 1024.0;

/// Numbers temporary files of this process, so two uploads never share one.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Validated settings of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The served directory.
    pub root: PathBuf,
    /// Refuse every change.
    pub read_only: bool,
    /// Largest upload accepted, in bytes (`None`: no limit).
    pub max_file_size: Option<u64>,
    /// fsync uploaded files and their directory before reporting success.
    pub fsync: bool,
}

/// Why a store operation failed. `Display` is readable by a user and names
/// remote paths only (never the server's own directory layout).
#[derive(Debug)]
pub enum StoreError {
    /// The root cannot be served (missing, not a directory, unreadable).
    BadRoot {
        /// The root as configured.
        root: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The server is read-only (configuration or read-only file system).
    ReadOnly,
    /// The upload is larger than `--max-file-size`.
    TooLarge {
        /// Declared size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Not enough free space for the upload, or the disk filled up.
    NoSpace,
    /// A symlink would lead outside the root.
    OutsideRoot(String),
    /// The operation needs a name but got the root.
    RootNotAllowed,
    /// No such file or directory.
    NotFound(String),
    /// A file was expected, the name is a directory.
    IsDirectory(String),
    /// A directory was expected (a parent, or the listed path).
    NotADirectory(String),
    /// A file was expected, the name is something else (fifo, device).
    NotRegular(String),
    /// The target exists already.
    Exists(String),
    /// The directory to remove is not empty.
    NotEmpty(String),
    /// The operating system refused access.
    PermissionDenied(String),
    /// No free `stem_N.ext` name was found for an upload.
    NoFreeName(String),
    /// The directory holds more than [`MAX_LIST_ENTRIES`] entries.
    TooManyEntries(String),
    /// Upload data out of order or beyond the declared size, or a download
    /// offset past the end of the file.
    BadOffset {
        /// Offset expected (or the file size for a download).
        expected: u64,
        /// Offset given.
        got: u64,
    },
    /// The file changed size while it was being read.
    Changed(String),
    /// Another upload of the same name holds its part file.
    InUse(String),
    /// Any other I/O failure.
    Io {
        /// The remote path concerned.
        path: String,
        /// The cause.
        source: io::Error,
    },
}

impl StoreError {
    /// The protocol error code to send for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::BadRoot { .. } => ErrorCode::Io,
            StoreError::ReadOnly => ErrorCode::ReadOnly,
            StoreError::TooLarge { .. } | StoreError::TooManyEntries(_) => ErrorCode::TooLarge,
            StoreError::NoSpace => ErrorCode::NoSpace,
            StoreError::OutsideRoot(_) => ErrorCode::PermissionDenied,
            StoreError::RootNotAllowed => ErrorCode::InvalidName,
            StoreError::NotFound(_) => ErrorCode::NotFound,
            StoreError::IsDirectory(_) => ErrorCode::IsDirectory,
            StoreError::NotADirectory(_) => ErrorCode::NotADirectory,
            StoreError::NotRegular(_) => ErrorCode::PermissionDenied,
            StoreError::Exists(_) | StoreError::NoFreeName(_) => ErrorCode::Exists,
            StoreError::NotEmpty(_) => ErrorCode::NotEmpty,
            StoreError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            StoreError::BadOffset { .. } => ErrorCode::Protocol,
            StoreError::Changed(_) | StoreError::Io { .. } => ErrorCode::Io,
            StoreError::InUse(_) => ErrorCode::Busy,
        }
    }

    /// Maps an I/O error on `path` (a remote path) to its typed cause.
    pub(crate) fn from_io(path: &str, e: io::Error) -> StoreError {
        let path = display_name(path);
        match e.raw_os_error() {
            Some(libc::ENOENT) => StoreError::NotFound(path),
            Some(libc::EACCES) | Some(libc::EPERM) => StoreError::PermissionDenied(path),
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => StoreError::NoSpace,
            Some(libc::EISDIR) => StoreError::IsDirectory(path),
            Some(libc::ENOTDIR) => StoreError::NotADirectory(path),
            Some(libc::EEXIST) => StoreError::Exists(path),
            Some(libc::ENOTEMPTY) => StoreError::NotEmpty(path),
            Some(libc::EROFS) => StoreError::ReadOnly,
            // A refusal of our own (a part file that is not plainly ours).
            None if e.kind() == io::ErrorKind::PermissionDenied => {
                StoreError::PermissionDenied(path)
            }
            _ => StoreError::Io { path, source: e },
        }
    }
}

/// The root shows as `/` in messages, anything else as itself.
fn display_name(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::BadRoot { root, reason } => {
                write!(f, "root '{}' {reason}", root.display())
            }
            StoreError::ReadOnly => write!(f, "the server is read-only"),
            StoreError::TooLarge { size, max } => write!(
                f,
                "file of {size} bytes is larger than the server accepts ({max} bytes)"
            ),
            StoreError::NoSpace => write!(f, "no space left on the server's disk"),
            StoreError::OutsideRoot(p) => write!(f, "'{p}': symlink leads outside the root"),
            StoreError::RootNotAllowed => {
                write!(f, "the root directory itself cannot be used here")
            }
            StoreError::NotFound(p) => write!(f, "'{p}' not found"),
            StoreError::IsDirectory(p) => write!(f, "'{p}' is a directory"),
            StoreError::NotADirectory(p) => write!(f, "'{p}' is not a directory"),
            StoreError::NotRegular(p) => write!(f, "'{p}' is not a regular file"),
            StoreError::Exists(p) => write!(f, "'{p}' already exists"),
            StoreError::NotEmpty(p) => write!(f, "directory '{p}' is not empty"),
            StoreError::PermissionDenied(p) => write!(f, "'{p}': permission denied"),
            StoreError::NoFreeName(p) => write!(
                f,
                "'{p}' and its first {MAX_CLASH_ATTEMPTS} alternative names are all taken"
            ),
            StoreError::BadOffset { expected, got } => {
                write!(f, "data at offset {got}, expected offset {expected}")
            }
            StoreError::Changed(p) => write!(f, "'{p}' changed while it was being read"),
            StoreError::InUse(p) => write!(f, "another upload of '{p}' is in progress"),
            StoreError::TooManyEntries(p) => write!(
                f,
                "directory '{p}' is too large to list (more than {MAX_LIST_ENTRIES} entries)"
            ),
            StoreError::Io { path, source } => write!(f, "'{path}': {source}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A directory being listed a batch at a time ([`Store::list_more`]), so
/// that a listing is read only as fast as the client takes it.
pub struct Listing {
    dir: RemotePath,
    /// The directory, for inspecting its entries.
    fd: OwnedFd,
    /// Its names, read a kernel buffer at a time.
    names: rustix::fs::Dir,
    /// Entries met so far, reserved ones left out.
    seen: usize,
}

impl Listing {
    /// The directory listed.
    pub fn dir(&self) -> &RemotePath {
        &self.dir
    }
}

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
    force: bool,
    /// In the name's part file: kept for `reput` when interrupted.
    resumable: bool,
    /// Disk space reserved up to here (`written` plus a step ahead).
    reserved: u64,
    /// How far ahead of the data to reserve ([`Uploader::reserve_ahead`]).
    ahead: u64,
    /// The file system cannot reserve space (`fallocate` unsupported).
    no_reserve: bool,
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
}

/// A download in progress: an open regular file.
#[derive(Debug)]
pub struct Download {
    /// The open file.
    pub file: File,
    /// Its size when it was opened.
    pub size: u64,
    /// Its modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// The whole file's digest, remembered from an earlier download.
    pub known: Option<[u8; 32]>,
    stamp: digest_cache::Stamp,
    /// When it was opened, seconds since the Unix epoch.
    opened: i64,
    remote: RemotePath,
    position: u64,
}

impl Download {
    /// The remote path being served.
    pub fn remote(&self) -> &RemotePath {
        &self.remote
    }
    /// The next offset `read` returns bytes from.
    pub fn position(&self) -> u64 {
        self.position
    }
}

/// The served tree: resolves remote paths safely and performs every change.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    /// The root, opened once: every path is resolved beneath it.
    root_fd: OwnedFd,
    config: StoreConfig,
}

impl Store {
    /// Opens the store: the root is canonicalized and must be a directory.
    pub fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let bad = |reason: String| StoreError::BadRoot {
            root: config.root.clone(),
            reason,
        };
        let root = fs::canonicalize(&config.root).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => bad("does not exist".to_owned()),
            _ => bad(format!("cannot be opened: {e}")),
        })?;
        let meta = fs::metadata(&root).map_err(|e| bad(format!("cannot be opened: {e}")))?;
        if !meta.is_dir() {
            return Err(bad("is not a directory".to_owned()));
        }
        let root_fd =
            beneath::open_root(&root).map_err(|e| bad(format!("cannot be opened: {e}")))?;
        Ok(Store {
            root,
            root_fd,
            config,
        })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The settings the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Lists a directory whole (following a symlink that stays inside the
    /// root): sorted by name, as [`Store::list_more`] gives it.
    pub fn list(&self, dir: &RemotePath) -> Result<Vec<Entry>, StoreError> {
        let mut listing = self.open_listing(dir)?;
        let mut entries = Vec::new();
        loop {
            let (batch, done) = self.list_more(&mut listing, MAX_LIST_ENTRIES)?;
            entries.extend(batch);
            if done {
                break;
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Opens a directory for listing a batch at a time
    /// ([`Store::list_more`]), following a symlink that stays inside the
    /// root.
    pub fn open_listing(&self, dir: &RemotePath) -> Result<Listing, StoreError> {
        let fd = self.resolve(dir, libc::O_RDONLY | libc::O_DIRECTORY)?;
        let names = rustix::fs::Dir::read_from(&fd)
            .map_err(|e| StoreError::from_io(dir.as_str(), e.into()))?;
        Ok(Listing {
            dir: dir.clone(),
            fd,
            names,
            seen: 0,
        })
    }

    /// The next at most `max` entries of a listing, in directory order,
    /// and whether it is complete: reserved names left out, non-UTF-8
    /// names converted lossily, an entry that vanishes or cannot be
    /// inspected skipped (one bad entry never breaks `ls`). A directory
    /// with more than [`MAX_LIST_ENTRIES`] entries fails as too large when
    /// the reading gets there, rather than being shown incomplete.
    pub fn list_more(
        &self,
        listing: &mut Listing,
        max: usize,
    ) -> Result<(Vec<Entry>, bool), StoreError> {
        let mut entries = Vec::new();
        while entries.len() < max {
            let raw = match listing.names.read() {
                None => return Ok((entries, true)),
                Some(Err(e)) => {
                    return Err(StoreError::from_io(listing.dir.as_str(), e.into()));
                }
                Some(Ok(raw)) => raw,
            };
            let name = raw.file_name();
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." || bytes.starts_with(RESERVED_PREFIX.as_bytes()) {
                continue;
            }
            listing.seen += 1;
            if listing.seen > MAX_LIST_ENTRIES {
                return Err(StoreError::TooManyEntries(display_name(
                    listing.dir.as_str(),
                )));
            }
            if let Some(e) = self.entry(listing, name) {
                entries.push(e);
            }
        }
        Ok((entries, false))
    }

    /// The listing entry of `name` in the listed directory; `None` if it
    /// vanished or cannot be inspected.
    fn entry(&self, listing: &Listing, name: &CStr) -> Option<Entry> {
        let lmeta = beneath::lstat_at(listing.fd.as_fd(), name).ok()?;
        let raw = name.to_bytes();
        let meta = if lmeta.file_type().is_symlink() {
            self.inside_target(&listing.dir, raw)
        } else {
            Some(lmeta.clone())
        };
        let (kind, size, mtime, mode) = match &meta {
            Some(m) => (kind_of(m), size_of(m), m.mtime(), m.mode()),
            None => (EntryKind::Symlink, 0, lmeta.mtime(), lmeta.mode()),
        };
        Some(Entry {
            name: String::from_utf8_lossy(raw).into_owned(),
            kind,
            size,
            mtime,
            mode: Some((mode & 0o7777) as u16),
        })
    }

    /// Starts an upload of `size` bytes to `path`: checks the rules and
    /// opens the hidden file next to the target. A fresh upload takes the
    /// name's part file when it is free (so an interruption can be resumed)
    /// and a one-off temporary file otherwise, reporting the size of an
    /// interrupted part it leaves alone. With `resume: Some(max)`, the part
    /// file is continued where it ends (if that is at most `max`, the
    /// client's size; otherwise it restarts); the returned [`PutAccept`]
    /// says from where. Its `prefix` is still empty: the caller hashes the
    /// part's first `offset` bytes ([`Upload::file`],
    /// [`partial::PrefixHashing`]) before it answers the client.
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
        let io_err = |e| StoreError::from_io(path.as_str(), e);
        let part = CString::new(partial::owned_part_name(who.owner, &name.to_string_lossy()))
            .map_err(|_| StoreError::RootNotAllowed)?;
        let (mut file, temp, accept) = match resume {
            Some(max_offset) => {
                let Some(file) =
                    partial::open_locked_at(dir.as_fd(), &part, true).map_err(io_err)?
                else {
                    return Err(StoreError::InUse(path.as_str().to_owned()));
                };
                let mut held = file.metadata().map_err(io_err)?.len();
                if held > max_offset || held > size {
                    held = 0;
                }
                file.set_len(held).map_err(io_err)?;
                // The prefix is the caller's to hash (a step at a time).
                let accept = PutAccept {
                    offset: held,
                    prefix: blake3::Hasher::new(),
                    partial: 0,
                    resumable: true,
                };
                (file, part, accept)
            }
            None => match partial::take_fresh_at(dir.as_fd(), &part).map_err(io_err)? {
                Some(file) => (file, part, PutAccept::fresh(true, 0)),
                None => {
                    let stale = partial::stale_size_at(dir.as_fd(), &part);
                    let temp = temp_name();
                    let file = beneath::create_at(dir.as_fd(), &temp, FILE_MODE).map_err(io_err)?;
                    // Locked too, so the stale-file sweep of another ftxd
                    // sharing the root never removes it while in use.
                    let _ = partial::try_lock(&file);
                    (file, temp, PutAccept::fresh(false, stale))
                }
            },
        };
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
                    Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => true,
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
            if accept.offset == 0 {
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
            force,
            resumable: accept.resumable,
            reserved: accept.offset + reserved,
            ahead,
            no_reserve,
        };
        Ok((up, accept))
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
        if up.ahead > 0 && end + up.ahead / 2 > up.reserved && up.reserved < up.size {
            // The next step of space, before the data needs it.
            let from = up.reserved.max(up.written);
            let step = (up.size - from).min(up.ahead);
            up.reserved = from;
            match partial::preallocate(&up.file, up.reserved, step) {
                Ok(()) => up.reserved += step,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                    return Err(StoreError::NoSpace)
                }
                // Not supported here: writes find out for themselves.
                Err(_) => (up.ahead, up.no_reserve) = (0, true),
            }
        }
        up.file
            .write_all(data)
            .map_err(|e| StoreError::from_io(up.remote.as_str(), e))?;
        up.written = end;
        if self.config.fsync && up.written - up.flushed >= WRITEBACK_STEP {
            start_writeback(&up.file, up.flushed, up.written - up.flushed);
            up.flushed = up.written;
        }
        if up.written - up.synced >= DURABLE_MAX {
            self.sync_written(up)?;
        }
        Ok(())
    }

    /// The upload waits for the network: a good moment to make what it
    /// wrote durable, if that is at least [`DURABLE_STEP`] bytes and they
    /// came slower than [`SETTLE_MAX_RATE`].
    /// `now` is the loop's clock.
    pub fn settle(&self, up: &mut Upload, now: Instant) -> Result<(), StoreError> {
        let pending = up.written - up.synced;
        let secs = now.saturating_duration_since(up.synced_at).as_secs_f64();
        if pending >= DURABLE_STEP && pending as f64 <= SETTLE_MAX_RATE * secs {
            self.sync_written(up)?;
        }
        Ok(())
    }

    fn sync_written(&self, up: &mut Upload) -> Result<(), StoreError> {
        if self.config.fsync {
            up.file
                .sync_data()
                .map_err(|e| StoreError::from_io(up.remote.as_str(), e))?;
        }
        up.synced = up.written;
        up.synced_at = Instant::now();
        Ok(())
    }

    /// Makes the upload durable and visible: fsync (unless disabled), then
    /// an atomic replace (`force`) or a race-free publish under the first
    /// free name among `name`, `stem_1.ext`, `stem_2.ext`, ...; then fsync
    /// of the directory. Returns the stored remote path. On failure the
    /// temporary file is removed and no final name was created.
    pub fn commit(&self, up: Upload) -> Result<RemotePath, StoreError> {
        let result = self.publish(&up);
        // After a link the temporary name is redundant, after a failure it
        // must not linger; after a rename it is already gone.
        if let Err(e) = beneath::unlink_at(up.dir.as_fd(), &up.temp, false) {
            if e.kind() != io::ErrorKind::NotFound {
                log::warn!("cannot remove temporary file {:?}: {e}", up.temp);
            }
        }
        let stored = result?;
        self.sync_dir(&up.dir)
            .map_err(|e| StoreError::from_io(stored.as_str(), e))?;
        Ok(stored)
    }

    fn publish(&self, up: &Upload) -> Result<RemotePath, StoreError> {
        let remote = up.remote.as_str();
        if up.written != up.size {
            return Err(StoreError::BadOffset {
                expected: up.size,
                got: up.written,
            });
        }
        if self.config.fsync {
            up.file
                .sync_all()
                .map_err(|e| StoreError::from_io(remote, e))?;
        }
        let name = up.remote.file_name().ok_or(StoreError::RootNotAllowed)?;
        let parent = up.remote.parent();
        let dir = up.dir.as_fd();
        if up.force {
            let to = CString::new(name).map_err(|_| StoreError::RootNotAllowed)?;
            beneath::rename_at(dir, &up.temp, dir, &to, 0)
                .map_err(|e| StoreError::from_io(remote, e))?;
            return Ok(up.remote.clone());
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
            match publish_noreplace(up.dir.as_fd(), &up.temp, &to) {
                Ok(()) => return Ok(stored),
                // Already ours: a commit that linked the part to this
                // name and stopped (a crash) before it unlinked the part;
                // the `reput` that finishes it must not store a copy.
                Err(e)
                    if e.raw_os_error() == Some(libc::EEXIST)
                        && partial::same_file_at(dir, &to, &up.file).unwrap_or(false) =>
                {
                    return Ok(stored)
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(StoreError::from_io(stored.as_str(), e)),
            }
        }
        Err(StoreError::NoFreeName(remote.to_owned()))
    }

    /// Abandons an upload. With `keep`, an upload in the name's part file
    /// stays there (unlocked) for `reput`; anything else is removed.
    pub fn abort(&self, up: Upload, keep: bool) {
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

    /// Removes part and temporary files older than `ttl` that no upload
    /// holds, anywhere under the root; returns how many.
    pub fn sweep_partials(&self, ttl: std::time::Duration) -> usize {
        partial::sweep(self.root_fd.as_fd(), ttl, SystemTime::now())
    }

    /// Opens a regular file for download (following a symlink that stays
    /// inside the root).
    pub fn open_download(&self, path: &RemotePath) -> Result<Download, StoreError> {
        let remote = path.as_str();
        if path.is_root() {
            return Err(StoreError::IsDirectory(display_name(remote)));
        }
        // O_NONBLOCK so that opening a fifo never blocks the loop; it has
        // no effect on regular files.
        let file = File::from(self.resolve(path, libc::O_RDONLY | libc::O_NONBLOCK)?);
        let meta = file
            .metadata()
            .map_err(|e| StoreError::from_io(remote, e))?;
        if meta.is_dir() {
            return Err(StoreError::IsDirectory(remote.to_owned()));
        }
        if !meta.is_file() {
            return Err(StoreError::NotRegular(remote.to_owned()));
        }
        let stamp = digest_cache::Stamp::of(&meta);
        Ok(Download {
            known: digest_cache::recall(&file, &stamp),
            size: meta.len(),
            mtime: meta.mtime(),
            stamp,
            opened: digest_cache::unix_secs(SystemTime::now()),
            file,
            remote: path.clone(),
            position: 0,
        })
    }

    /// A download hashed the whole file and got `digest`: remember it for
    /// the next one if the file is settled and unchanged (see
    /// `server::digest_cache`). Not on a read-only server.
    pub fn remember_digest(&self, dl: &Download, digest: &[u8; 32]) {
        if !self.config.read_only && dl.known.is_none() {
            digest_cache::remember(&dl.file, &dl.stamp, dl.opened, digest);
        }
    }

    /// Moves the read position of a download (resume); at most its size.
    pub fn seek(&self, dl: &mut Download, offset: u64) -> Result<(), StoreError> {
        if offset > dl.size {
            return Err(StoreError::BadOffset {
                expected: dl.size,
                got: offset,
            });
        }
        dl.file
            .seek(SeekFrom::Start(offset))
            .map_err(|e| StoreError::from_io(dl.remote.as_str(), e))?;
        dl.position = offset;
        Ok(())
    }

    /// Reads the next bytes of a download; 0 at the end of the file.
    pub fn read(&self, dl: &mut Download, buf: &mut [u8]) -> Result<usize, StoreError> {
        loop {
            match dl.file.read(buf) {
                Ok(n) => {
                    dl.position += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError::from_io(dl.remote.as_str(), e)),
            }
        }
    }

    /// Sets the permission bits (the session allows no more than
    /// `0o777`) and/or the modification time of a file or directory,
    /// following a symlink that stays inside the root.
    pub fn set_attrs(
        &self,
        path: &RemotePath,
        mode: Option<u16>,
        mtime: Option<i64>,
    ) -> Result<(), StoreError> {
        self.check_writable()?;
        // O_NONBLOCK: opening a fifo must not block the loop.
        let file = File::from(self.resolve(path, libc::O_RDONLY | libc::O_NONBLOCK)?);
        let io_err = |e| StoreError::from_io(path.as_str(), e);
        if let Some(mode) = mode {
            let perms = fs::Permissions::from_mode(u32::from(mode & 0o777));
            file.set_permissions(perms).map_err(io_err)?;
        }
        if let Some(secs) = mtime {
            let span = std::time::Duration::from_secs(secs.unsigned_abs());
            let when = if secs >= 0 {
                UNIX_EPOCH.checked_add(span)
            } else {
                UNIX_EPOCH.checked_sub(span)
            };
            let when = when.ok_or_else(|| io_err(io::ErrorKind::InvalidInput.into()))?;
            file.set_modified(when).map_err(io_err)?;
        }
        Ok(())
    }

    /// Size and space an upload may still use of the file system that
    /// holds `path`, in bytes.
    pub fn space(&self, path: &RemotePath) -> Result<(u64, u64), StoreError> {
        let fd = self.resolve(path, libc::O_RDONLY | libc::O_NONBLOCK)?;
        beneath::space(fd.as_fd()).map_err(|e| StoreError::from_io(path.as_str(), e))
    }

    /// Creates a directory; `Exists` if the name is taken.
    pub fn mkdir(&self, path: &RemotePath) -> Result<(), StoreError> {
        self.check_writable()?;
        let (dir, name) = self.resolve_parent(path)?;
        beneath::mkdir_at(dir.as_fd(), &name, DIR_MODE)
            .map_err(|e| StoreError::from_io(path.as_str(), e))
    }

    /// The interrupted uploads of `owner` in the directory `dir`, as
    /// entries named for their targets (size: the bytes held), sorted by
    /// name. Empty parts (nothing to resume) and parts a transfer holds
    /// now are left out.
    pub fn list_parts(
        &self,
        dir: &RemotePath,
        owner: Option<PartOwner>,
    ) -> Result<Vec<Entry>, StoreError> {
        let fd = self.resolve(dir, libc::O_RDONLY | libc::O_DIRECTORY)?;
        let names = rustix::fs::Dir::read_from(&fd)
            .map_err(|e| StoreError::from_io(dir.as_str(), e.into()))?;
        let mut parts = Vec::new();
        for raw in names.flatten() {
            let name = raw.file_name();
            let Some(target) = name
                .to_str()
                .ok()
                .and_then(|n| partial::owned_part_target(owner, n))
            else {
                continue;
            };
            let Ok(meta) = beneath::lstat_at(fd.as_fd(), name) else {
                continue;
            };
            if !meta.is_file() || meta.len() == 0 {
                continue;
            }
            // Held by a running transfer: not interrupted.
            if !matches!(
                partial::open_locked_at(fd.as_fd(), name, false),
                Ok(Some(_))
            ) {
                continue;
            }
            parts.push(Entry {
                name: target.to_owned(),
                kind: EntryKind::File,
                size: meta.len(),
                mtime: meta.mtime(),
                mode: Some((meta.mode() & 0o7777) as u16),
            });
            if parts.len() >= MAX_LIST_ENTRIES {
                break;
            }
        }
        parts.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(parts)
    }

    /// Removes `owner`'s interrupted upload of `path` (its part file):
    /// `NotFound` when there is none, `InUse` while a transfer holds it.
    pub fn discard_part(
        &self,
        path: &RemotePath,
        owner: Option<PartOwner>,
    ) -> Result<(), StoreError> {
        self.check_writable()?;
        let (dir, name) = self.resolve_parent(path)?;
        let part = CString::new(partial::owned_part_name(owner, &name.to_string_lossy()))
            .map_err(|_| StoreError::RootNotAllowed)?;
        let none = || StoreError::NotFound(path.as_str().to_owned());
        match beneath::lstat_at(dir.as_fd(), &part) {
            Ok(m) if m.is_file() => {}
            _ => return Err(none()),
        }
        match partial::open_locked_at(dir.as_fd(), &part, false) {
            // Unlinked while locked, as the sweep does.
            Ok(Some(_lock)) => beneath::unlink_at(dir.as_fd(), &part, false)
                .map_err(|e| StoreError::from_io(path.as_str(), e)),
            Ok(None) if beneath::lstat_at(dir.as_fd(), &part).is_ok() => {
                Err(StoreError::InUse(path.as_str().to_owned()))
            }
            Ok(None) => Err(none()),
            Err(e) => Err(StoreError::from_io(path.as_str(), e)),
        }
    }

    /// Removes a file, a symlink (itself) or an empty directory.
    pub fn remove(&self, path: &RemotePath) -> Result<(), StoreError> {
        self.check_writable()?;
        let (dir, name) = self.resolve_parent(path)?;
        let meta = beneath::lstat_at(dir.as_fd(), &name)
            .map_err(|e| StoreError::from_io(path.as_str(), e))?;
        let result = beneath::unlink_at(dir.as_fd(), &name, meta.is_dir());
        result.map_err(|e| match e.raw_os_error() {
            // Some systems report a non-empty directory as EEXIST.
            Some(libc::EEXIST) => StoreError::NotEmpty(path.as_str().to_owned()),
            _ => StoreError::from_io(path.as_str(), e),
        })
    }

    /// Renames `from` (a link itself, not its target) to `to`; never
    /// replaces an existing `to`.
    pub fn rename(&self, from: &RemotePath, to: &RemotePath) -> Result<(), StoreError> {
        self.check_writable()?;
        let (from_dir, from_name) = self.resolve_parent(from)?;
        let (to_dir, to_name) = self.resolve_parent(to)?;
        let (src, dst) = (from_dir.as_fd(), to_dir.as_fd());
        let meta = beneath::lstat_at(src, &from_name)
            .map_err(|e| StoreError::from_io(from.as_str(), e))?;
        match beneath::rename_at(src, &from_name, dst, &to_name, libc::RENAME_NOREPLACE) {
            Ok(()) => Ok(()),
            Err(e) if unsupported(&e) && !meta.is_dir() => {
                // The file system lacks RENAME_NOREPLACE: a hard link is just
                // as exclusive for anything but a directory.
                beneath::link_at(src, &from_name, dst, &to_name)
                    .map_err(|e| self.rename_error(from, to, e))?;
                beneath::unlink_at(src, &from_name, false)
                    .map_err(|e| StoreError::from_io(from.as_str(), e))
            }
            Err(e) => Err(self.rename_error(from, to, e)),
        }
    }

    fn rename_error(&self, from: &RemotePath, to: &RemotePath, e: io::Error) -> StoreError {
        match e.raw_os_error() {
            Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => {
                StoreError::Exists(to.as_str().to_owned())
            }
            // Moving a directory beneath itself.
            Some(libc::EINVAL) => StoreError::Io {
                path: from.as_str().to_owned(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("cannot move it into '{}'", to.as_str()),
                ),
            },
            _ => StoreError::from_io(from.as_str(), e),
        }
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        if self.config.read_only {
            Err(StoreError::ReadOnly)
        } else {
            Ok(())
        }
    }

    /// The directory holding `path`, opened beneath the root (symlinks on
    /// the way followed while they stay inside), and the last component.
    fn resolve_parent(&self, path: &RemotePath) -> Result<(OwnedFd, CString), StoreError> {
        if path.is_root() {
            return Err(StoreError::RootNotAllowed);
        }
        let parent = path.parent();
        beneath::parent_fd_and_name(self.root_fd.as_fd(), path.as_str().as_bytes())
            .map_err(|e| resolve_error(parent.as_str(), e))
    }

    /// Opens `path` beneath the root with open `flags`, following symlinks
    /// while they stay inside; an escape is [`StoreError::OutsideRoot`].
    fn resolve(&self, path: &RemotePath, flags: libc::c_int) -> Result<OwnedFd, StoreError> {
        beneath::open(self.root_fd.as_fd(), path.as_str().as_bytes(), flags)
            .map_err(|e| resolve_error(path.as_str(), e))
    }

    /// Metadata of the target of the symlink `name` in the listed `dir`, if
    /// it resolves inside the root.
    fn inside_target(&self, dir: &RemotePath, name: &[u8]) -> Option<fs::Metadata> {
        let rel = beneath::join(dir.as_str().as_bytes(), name);
        let fd = beneath::open(self.root_fd.as_fd(), &rel, libc::O_PATH).ok()?;
        File::from(fd).metadata().ok()
    }

    fn sync_dir(&self, dir: &OwnedFd) -> io::Result<()> {
        if self.config.fsync {
            File::from(dir.try_clone()?).sync_all()
        } else {
            Ok(())
        }
    }
}

fn kind_of(m: &fs::Metadata) -> EntryKind {
    let t = m.file_type();
    if t.is_file() {
        EntryKind::File
    } else if t.is_dir() {
        EntryKind::Dir
    } else if t.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Other
    }
}

fn size_of(m: &fs::Metadata) -> u64 {
    if m.is_file() {
        m.len()
    } else {
        0
    }
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

/// Maps a resolution failure on `path`: `EXDEV` is the kernel (or the
/// fallback walk) refusing to leave the root.
fn resolve_error(path: &str, e: io::Error) -> StoreError {
    match e.raw_os_error() {
        Some(libc::EXDEV) => StoreError::OutsideRoot(display_name(path)),
        _ => StoreError::from_io(path, e),
    }
}

#[cfg(test)]
fn c_path(p: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

/// True when the kernel or file system does not support an operation.
fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)
    )
}

/// Publishes `temp` as `to` (both in `dir`) unless `to` exists (`EEXIST`):
/// a hard link, which is exclusive even on NFS; where links are not
/// supported, an exclusive rename.
fn publish_noreplace(dir: BorrowedFd<'_>, temp: &CStr, to: &CStr) -> io::Result<()> {
    match beneath::link_at(dir, temp, dir, to) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPERM) | Some(libc::EOPNOTSUPP) | Some(libc::EMLINK)
            ) =>
        {
            beneath::rename_at(dir, temp, dir, to, libc::RENAME_NOREPLACE)
        }
        Err(e) => Err(e),
    }
}

/// Starts writing `len` bytes of `file` from `offset` to disk without
/// waiting for them (`SYNC_FILE_RANGE_WRITE`). Only an optimization for the
/// fsync that follows: a failure here is ignored, the fsync reports it.
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain syscall on a descriptor we own; no memory is passed.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;
    use std::sync::{Arc, Barrier};

    fn rp(s: &str) -> RemotePath {
        RemotePath::parse(s).unwrap()
    }

    fn config(root: &Path) -> StoreConfig {
        StoreConfig {
            root: root.to_path_buf(),
            read_only: false,
            max_file_size: None,
            fsync: true,
        }
    }

    fn store(root: &Path) -> Store {
        Store::open(config(root)).unwrap()
    }

    fn put(s: &Store, name: &str, data: &[u8], force: bool) -> Result<RemotePath, StoreError> {
        let mut up = s
            .begin_upload(
                &rp(name),
                data.len() as u64,
                force,
                None,
                &Uploader::default(),
            )
            .map(|(u, _)| u)?;
        for (i, chunk) in data.chunks(3).enumerate() {
            s.write(&mut up, (i * 3) as u64, chunk)?;
        }
        s.commit(up)
    }

    fn get(s: &Store, name: &str) -> Result<Vec<u8>, StoreError> {
        let mut dl = s.open_download(&rp(name))?;
        let mut out = Vec::new();
        let mut buf = [0u8; 4];
        loop {
            let n = s.read(&mut dl, &mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    fn names(s: &Store, dir: &str) -> Vec<String> {
        s.list(&rp(dir))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect()
    }

    /// A root and, beside it, a directory outside the root.
    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"secret").unwrap();
        (t, root, outside)
    }

    #[test]
    fn open_checks_the_root() {
        let (_t, root, _) = setup();
        let s = store(&root);
        assert_eq!(s.root(), fs::canonicalize(&root).unwrap());
        let missing = Store::open(config(&root.join("nope"))).unwrap_err();
        assert!(missing.to_string().contains("does not exist"), "{missing}");
        fs::write(root.join("f"), b"x").unwrap();
        let file = Store::open(config(&root.join("f"))).unwrap_err();
        assert!(file.to_string().contains("is not a directory"), "{file}");
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
            assert_eq!(up.reserved_ahead(), RESERVE_AHEAD - chunk.len() as u64);
        }
        s.abort(up, false);
    }

    /// Each owner lists and drops only its own interrupted uploads; empty
    /// and held parts are not listed, a held one is not dropped.
    #[test]
    fn parts_are_listed_and_discarded_per_owner() {
        let (_t, root, _) = setup();
        let s = store(&root);
        let a = Some(PartOwner::of_token(&[1; 32]));
        let b = Some(PartOwner::of_token(&[2; 32]));
        fs::write(root.join(partial::owned_part_name(a, "x.bin")), b"abc").unwrap();
        fs::write(root.join(partial::owned_part_name(a, "empty")), b"").unwrap();
        fs::write(root.join(partial::owned_part_name(b, "y.bin")), b"de").unwrap();
        fs::write(root.join(partial::part_name("open.bin")), b"f").unwrap();
        let names = |o| -> Vec<(String, u64)> {
            s.list_parts(&rp(""), o)
                .unwrap()
                .into_iter()
                .map(|e| (e.name, e.size))
                .collect()
        };
        assert_eq!(names(a), [("x.bin".to_owned(), 3)]);
        assert_eq!(names(b), [("y.bin".to_owned(), 2)]);
        assert_eq!(names(None), [("open.bin".to_owned(), 1)]);
        assert_eq!(
            s.discard_part(&rp("y.bin"), a).unwrap_err().code(),
            ErrorCode::NotFound
        );
        let held = partial::open_locked(&root.join(partial::owned_part_name(b, "y.bin")), false)
            .unwrap()
            .unwrap();
        assert!(names(b).is_empty(), "a held part is not interrupted");
        assert_eq!(
            s.discard_part(&rp("y.bin"), b).unwrap_err().code(),
            ErrorCode::Busy
        );
        drop(held);
        s.discard_part(&rp("y.bin"), b).unwrap();
        assert!(names(b).is_empty());
        assert_eq!(names(a).len(), 1);
    }

    /// An upload is made durable when it waits for the network with a
    /// step's worth written slowly, and every DURABLE_MAX bytes regardless.
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
        s.write(&mut up, 0, &chunk[..step - 1]).unwrap();
        let at = slow(&up);
        s.settle(&mut up, at).unwrap();
        assert_eq!(up.synced, 0, "less than a step: nothing to flush yet");
        s.write(&mut up, step as u64 - 1, &chunk[..1]).unwrap();
        let at = slow(&up);
        s.settle(&mut up, at).unwrap();
        assert_eq!(up.synced, DURABLE_STEP);
        // A step that came at once is left for later.
        s.write(&mut up, DURABLE_STEP, &chunk).unwrap();
        let at = fast(&up);
        s.settle(&mut up, at).unwrap();
        assert_eq!(up.synced, DURABLE_STEP, "flushed a fast sender's step");
        let at = slow(&up);
        s.settle(&mut up, at).unwrap();
        assert_eq!(up.synced, 2 * DURABLE_STEP);
        // Never waiting: flushed once DURABLE_MAX is not yet durable.
        let mut at = 2 * DURABLE_STEP;
        while at < size {
            s.write(&mut up, at, &chunk).unwrap();
            at += DURABLE_STEP;
            let behind = at - up.synced;
            assert!(behind < DURABLE_MAX, "{behind} bytes not durable");
        }
        assert_eq!(up.synced, 2 * DURABLE_STEP + DURABLE_MAX);
        assert_eq!(s.commit(up).unwrap(), rp("big"));
    }

    #[test]
    fn put_then_get_round_trip() {
        let (_t, root, _) = setup();
        let s = store(&root);
        assert_eq!(
            put(&s, "a.txt", b"hello world", false).unwrap(),
            rp("a.txt")
        );
        assert_eq!(get(&s, "a.txt").unwrap(), b"hello world");
        assert_eq!(fs::read(root.join("a.txt")).unwrap(), b"hello world");
        assert_eq!(put(&s, "empty", b"", false).unwrap(), rp("empty"));
        assert_eq!(get(&s, "empty").unwrap(), b"");
        let mode = fs::metadata(root.join("a.txt")).unwrap().mode() & 0o777;
        assert_eq!(mode & !0o022, 0o644 & !0o022);
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

    #[test]
    fn read_only_refuses_every_change() {
        let (_t, root, _) = setup();
        fs::write(root.join("f"), b"data").unwrap();
        let s = Store::open(StoreConfig {
            read_only: true,
            ..config(&root)
        })
        .unwrap();
        let codes = [
            s.begin_upload(&rp("g"), 1, false, None, &Uploader::default())
                .map(|(u, _)| u)
                .unwrap_err()
                .code(),
            s.mkdir(&rp("d")).unwrap_err().code(),
            s.remove(&rp("f")).unwrap_err().code(),
            s.rename(&rp("f"), &rp("g")).unwrap_err().code(),
            s.set_attrs(&rp("f"), Some(0o600), None).unwrap_err().code(),
        ];
        assert!(codes.iter().all(|c| *c == ErrorCode::ReadOnly), "{codes:?}");
        assert_eq!(get(&s, "f").unwrap(), b"data");
        assert_eq!(names(&s, ""), ["f"]);
    }

    /// Listings carry the permission bits; `set_attrs` sets them and the
    /// modification time, on files and directories, through a symlink
    /// that stays inside but never one that leads out; `space` is the
    /// root's file system.
    #[test]
    fn modes_times_and_space() {
        use std::os::unix::fs::symlink;
        let (_t, root, outside) = setup();
        fs::write(root.join("f"), b"data").unwrap();
        fs::create_dir(root.join("d")).unwrap();
        symlink("f", root.join("in")).unwrap();
        fs::write(outside.join("secret"), b"s").unwrap();
        symlink(outside.join("secret"), root.join("out")).unwrap();
        let s = store(&root);
        s.set_attrs(&rp("f"), Some(0o640), Some(1_000_000)).unwrap();
        s.set_attrs(&rp("d"), Some(0o700), None).unwrap();
        let meta = fs::metadata(root.join("f")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o640);
        assert_eq!(meta.mtime(), 1_000_000);
        let modes: Vec<_> = s
            .list(&RemotePath::root())
            .unwrap()
            .into_iter()
            .filter(|e| e.name == "f" || e.name == "d")
            .map(|e| (e.name, e.mode))
            .collect();
        assert_eq!(
            modes,
            [("d".to_owned(), Some(0o700)), ("f".to_owned(), Some(0o640))]
        );
        s.set_attrs(&rp("in"), None, Some(7)).unwrap();
        assert_eq!(fs::metadata(root.join("f")).unwrap().mtime(), 7);
        let before = fs::metadata(outside.join("secret")).unwrap();
        assert_eq!(
            s.set_attrs(&rp("out"), Some(0o777), None)
                .unwrap_err()
                .code(),
            ErrorCode::PermissionDenied
        );
        assert_eq!(
            fs::metadata(outside.join("secret")).unwrap().mode(),
            before.mode()
        );
        assert_eq!(
            s.set_attrs(&rp("nope"), Some(0o600), None)
                .unwrap_err()
                .code(),
            ErrorCode::NotFound
        );
        let (total, avail) = s.space(&RemotePath::root()).unwrap();
        assert!(total > 0 && avail <= total, "{total} {avail}");
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

    /// A listing read a few entries at a time gives every entry once,
    /// reserved names left out, and says when it is complete.
    #[test]
    fn listing_in_parts() {
        let (_t, root, _) = setup();
        for i in 0..10 {
            fs::write(root.join(format!("f{i}")), b"x").unwrap();
        }
        fs::write(root.join(".ftx-part-f1"), b"p").unwrap();
        let s = store(&root);
        let mut listing = s.open_listing(&RemotePath::root()).unwrap();
        let mut names = Vec::new();
        let mut parts = 0;
        loop {
            let (batch, done) = s.list_more(&mut listing, 3).unwrap();
            assert!(batch.len() <= 3);
            names.extend(batch.into_iter().map(|e| e.name));
            parts += 1;
            if done {
                break;
            }
        }
        assert!(parts >= 4, "{parts} parts");
        names.sort();
        let want: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
        assert_eq!(names, want);
        assert_eq!(names, names_of(&s.list(&RemotePath::root()).unwrap()));
    }

    fn names_of(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(|e| e.name.clone()).collect()
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

    #[test]
    fn missing_parents_and_wrong_kinds() {
        let (_t, root, _) = setup();
        let s = store(&root);
        fs::write(root.join("file"), b"x").unwrap();
        fs::create_dir(root.join("dir")).unwrap();
        let code = |r: Result<Upload, StoreError>| r.unwrap_err().code();
        assert_eq!(
            code(
                s.begin_upload(&rp("no/x"), 1, false, None, &Uploader::default())
                    .map(|(u, _)| u)
            ),
            ErrorCode::NotFound
        );
        assert_eq!(
            code(
                s.begin_upload(&rp("file/x"), 1, false, None, &Uploader::default())
                    .map(|(u, _)| u)
            ),
            ErrorCode::NotADirectory
        );
        assert_eq!(
            s.open_download(&rp("dir")).unwrap_err().code(),
            ErrorCode::IsDirectory
        );
        assert_eq!(
            s.open_download(&rp("nope")).unwrap_err().code(),
            ErrorCode::NotFound
        );
        assert_eq!(
            s.open_download(&rp("")).unwrap_err().code(),
            ErrorCode::IsDirectory
        );
        assert_eq!(
            s.list(&rp("file")).unwrap_err().code(),
            ErrorCode::NotADirectory
        );
        assert_eq!(s.list(&rp("nope")).unwrap_err().code(), ErrorCode::NotFound);
        let e = s.open_download(&rp("nope")).unwrap_err();
        assert_eq!(e.to_string(), "'nope' not found");
    }

    #[test]
    fn fifo_is_not_served() {
        let (_t, root, _) = setup();
        let s = store(&root);
        let c = c_path(&root.join("fifo")).unwrap();
        // SAFETY: valid path string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let e = s.open_download(&rp("fifo")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::PermissionDenied);
        let kinds: Vec<_> = s
            .list(&rp(""))
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, [EntryKind::Other]);
    }

    #[test]
    fn download_seek() {
        let (_t, root, _) = setup();
        let s = store(&root);
        fs::write(root.join("f"), b"0123456789").unwrap();
        let mut dl = s.open_download(&rp("f")).unwrap();
        assert_eq!(dl.size, 10);
        s.seek(&mut dl, 7).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(s.read(&mut dl, &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"789");
        assert_eq!(dl.position(), 10);
        assert_eq!(s.seek(&mut dl, 11).unwrap_err().code(), ErrorCode::Protocol);
    }

    #[test]
    fn list_sorts_sizes_and_kinds() {
        let (_t, root, _) = setup();
        let s = store(&root);
        fs::write(root.join("b.txt"), b"12345").unwrap();
        fs::write(root.join(".hidden"), b"1").unwrap();
        fs::create_dir(root.join("a_dir")).unwrap();
        fs::write(root.join("a_dir/inner"), b"1").unwrap();
        let list = s.list(&rp("")).unwrap();
        let view: Vec<_> = list
            .iter()
            .map(|e| (e.name.as_str(), e.kind, e.size))
            .collect();
        assert_eq!(
            view,
            [
                (".hidden", EntryKind::File, 1),
                ("a_dir", EntryKind::Dir, 0),
                ("b.txt", EntryKind::File, 5),
            ]
        );
        assert!(list[2].mtime > 0);
        assert_eq!(names(&s, "a_dir"), ["inner"]);
    }

    #[test]
    fn non_utf8_names_are_listed_lossily() {
        use std::ffi::OsStr;
        let (_t, root, _) = setup();
        let s = store(&root);
        fs::write(root.join(OsStr::from_bytes(b"bad\xffname")), b"x").unwrap();
        fs::write(root.join("good"), b"x").unwrap();
        assert_eq!(names(&s, ""), ["bad\u{fffd}name", "good"]);
    }

    #[test]
    fn symlinks_inside_the_root_are_followed() {
        let (_t, root, _) = setup();
        let s = store(&root);
        fs::create_dir(root.join("real")).unwrap();
        fs::write(root.join("real/f"), b"abc").unwrap();
        symlink("real", root.join("dirlink")).unwrap();
        symlink("real/f", root.join("filelink")).unwrap();
        let list = s.list(&rp("")).unwrap();
        let view: Vec<_> = list
            .iter()
            .map(|e| (e.name.as_str(), e.kind, e.size))
            .collect();
        assert_eq!(
            view,
            [
                ("dirlink", EntryKind::Dir, 0),
                ("filelink", EntryKind::File, 3),
                ("real", EntryKind::Dir, 0),
            ]
        );
        assert_eq!(get(&s, "filelink").unwrap(), b"abc");
        assert_eq!(get(&s, "dirlink/f").unwrap(), b"abc");
        assert_eq!(names(&s, "dirlink"), ["f"]);
        assert_eq!(put(&s, "dirlink/g", b"g", false).unwrap(), rp("dirlink/g"));
        assert_eq!(fs::read(root.join("real/g")).unwrap(), b"g");
        // rm and rename act on the link itself.
        s.rename(&rp("filelink"), &rp("renamed")).unwrap();
        assert!(fs::symlink_metadata(root.join("renamed"))
            .unwrap()
            .is_symlink());
        s.remove(&rp("renamed")).unwrap();
        s.remove(&rp("dirlink")).unwrap();
        assert_eq!(names(&s, "real"), ["f", "g"]);
    }

    #[test]
    fn symlinks_leading_outside_are_refused() {
        let (_t, root, outside) = setup();
        let s = store(&root);
        symlink(&outside, root.join("out_dir")).unwrap();
        symlink(outside.join("secret"), root.join("out_file")).unwrap();
        symlink("../outside/secret", root.join("rel_out")).unwrap();
        let list = s.list(&rp("")).unwrap();
        let view: Vec<_> = list
            .iter()
            .map(|e| (e.name.as_str(), e.kind, e.size))
            .collect();
        assert_eq!(
            view,
            [
                ("out_dir", EntryKind::Symlink, 0),
                ("out_file", EntryKind::Symlink, 0),
                ("rel_out", EntryKind::Symlink, 0),
            ]
        );
        for name in ["out_file", "rel_out", "out_dir/secret"] {
            let e = s.open_download(&rp(name)).unwrap_err();
            assert_eq!(e.code(), ErrorCode::PermissionDenied, "{name}");
            assert!(
                e.to_string().contains("symlink leads outside the root"),
                "{e}"
            );
        }
        assert_eq!(
            s.list(&rp("out_dir")).unwrap_err().code(),
            ErrorCode::PermissionDenied
        );
        let e = s
            .begin_upload(&rp("out_dir/new"), 1, false, None, &Uploader::default())
            .map(|(u, _)| u)
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::PermissionDenied);
        assert_eq!(
            s.mkdir(&rp("out_dir/d")).unwrap_err().code(),
            ErrorCode::PermissionDenied
        );
        assert_eq!(
            s.remove(&rp("out_dir/secret")).unwrap_err().code(),
            ErrorCode::PermissionDenied
        );
        let e = s.rename(&rp("out_dir/secret"), &rp("stolen")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::PermissionDenied);
        let e = s
            .rename(&rp("rel_out"), &rp("out_dir/planted"))
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::PermissionDenied);
        // A plain upload over an escaping link never writes through it.
        assert_eq!(put(&s, "out_file", b"x", false).unwrap(), rp("out_file_1"));
        assert_eq!(put(&s, "out_file", b"y", true).unwrap(), rp("out_file"));
        assert_eq!(fs::read(outside.join("secret")).unwrap(), b"secret");
        // The links themselves can be renamed and removed.
        s.rename(&rp("rel_out"), &rp("moved")).unwrap();
        s.remove(&rp("moved")).unwrap();
        s.remove(&rp("out_dir")).unwrap();
        assert!(outside.join("secret").exists());
    }

    #[test]
    fn mkdir_remove_rename() {
        let (_t, root, _) = setup();
        let s = store(&root);
        s.mkdir(&rp("d")).unwrap();
        assert_eq!(s.mkdir(&rp("d")).unwrap_err().code(), ErrorCode::Exists);
        assert_eq!(s.mkdir(&rp("x/y")).unwrap_err().code(), ErrorCode::NotFound);
        put(&s, "d/f", b"1", false).unwrap();
        assert_eq!(s.remove(&rp("d")).unwrap_err().code(), ErrorCode::NotEmpty);
        put(&s, "g", b"2", false).unwrap();
        assert_eq!(
            s.rename(&rp("g"), &rp("d/f")).unwrap_err().code(),
            ErrorCode::Exists
        );
        assert_eq!(
            s.rename(&rp("g"), &rp("d")).unwrap_err().code(),
            ErrorCode::Exists
        );
        assert_eq!(
            s.rename(&rp("nope"), &rp("z")).unwrap_err().code(),
            ErrorCode::NotFound
        );
        s.rename(&rp("g"), &rp("d/g")).unwrap();
        assert_eq!(get(&s, "d/g").unwrap(), b"2");
        s.rename(&rp("d"), &rp("e")).unwrap();
        assert!(s.rename(&rp("e"), &rp("e/inner")).is_err());
        s.remove(&rp("e/f")).unwrap();
        s.remove(&rp("e/g")).unwrap();
        s.remove(&rp("e")).unwrap();
        assert!(names(&s, "").is_empty());
        assert_eq!(s.remove(&rp("e")).unwrap_err().code(), ErrorCode::NotFound);
        assert_eq!(
            s.remove(&rp("")).unwrap_err().code(),
            ErrorCode::InvalidName
        );
        assert_eq!(s.mkdir(&rp("")).unwrap_err().code(), ErrorCode::InvalidName);
    }

    #[test]
    fn list_keeps_every_entry_below_the_cap() {
        // The cap itself is large; check the rule on a small directory by
        // ensuring nothing is lost below it.
        let (_t, root, _) = setup();
        let s = store(&root);
        for i in 0..50 {
            fs::write(root.join(format!("f{i:03}")), b"").unwrap();
        }
        let list = s.list(&rp("")).unwrap();
        assert_eq!(list.len(), 50);
        assert!(list.len() <= MAX_LIST_ENTRIES);
        assert_eq!(list[0].name, "f000");
    }
}
