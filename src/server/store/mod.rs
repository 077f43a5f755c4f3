//! The store: every file-system operation of `ftxd`, beneath one root.
//!
//! It owns the path-safety rules (a checked [`RemotePath`] is resolved
//! beneath a descriptor of the root by [`super::beneath`], with the
//! kernel's help; a symlink is followed only while it stays inside the
//! root), the atomic upload (hidden temporary file, fsync, then a
//! race-free publish under the final or a `stem_N.ext` name), downloads,
//! listings and the small management operations. It knows nothing of
//! sockets, sessions or the event loop, and never logs user-facing text.
//!
//! Uploads are in `upload`, the error type in `error`; downloads,
//! listings and the rest here.

use std::ffi::{CStr, CString};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::partial::{self, PartOwner};
use crate::proto::limits::{MAX_LIST_ENTRIES, RESERVED_PREFIX};
use crate::proto::message::{Entry, EntryKind};
use crate::proto::path::RemotePath;

mod error;
mod upload;

use rustix::fs::{OFlags, RenameFlags};

use super::beneath;
use super::digest_cache;
use error::display_name;

pub use error::StoreError;
pub use upload::{Flush, Upload, Uploader, RESERVE_AHEAD};

/// How many `stem_N.ext` names an upload tries before giving up.
pub const MAX_CLASH_ATTEMPTS: u64 = 10_000;
/// Mode of uploaded files (before the umask).
const FILE_MODE: u32 = 0o644;
/// Mode of created directories (before the umask).
const DIR_MODE: u32 = 0o755;
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
    /// Part files are marked ([`crate::part_mark`]): the root's file
    /// system keeps user extended attributes. Without, names are trusted,
    /// as on one machine's own disk.
    marks: bool,
    /// How often an upload in a marked part checks that it still holds
    /// it (the fence against a lock lost on a distributed file system).
    fence_every: std::time::Duration,
    /// The root's file system may span machines
    /// ([`crate::part_mark::is_shared`]): an upload taken over continues
    /// in a file of its own.
    shared: bool,
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
        let marks = !config.read_only && crate::part_mark::supported(root_fd.as_fd());
        if !marks && !config.read_only {
            log::warn!(
                "the root's file system keeps no user extended attributes: part files are \
                 not marked, so this root must not be shared by servers on other machines \
                 (on JuiceFS, mount with --enable-xattr)"
            );
        }
        let shared = crate::part_mark::is_shared(root_fd.as_fd()) || crate::lookups::enabled();
        Ok(Store {
            root,
            root_fd,
            config,
            marks,
            fence_every: upload::FENCE_EVERY,
            shared,
        })
    }

    /// Whether part files are marked on this root ([`crate::part_mark`]).
    pub fn marks_parts(&self) -> bool {
        self.marks
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
        let fd = self.resolve(dir, OFlags::RDONLY | OFlags::DIRECTORY)?;
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
        let file = File::from(self.resolve(path, OFlags::RDONLY | OFlags::NONBLOCK)?);
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
        let file = File::from(self.resolve(path, OFlags::RDONLY | OFlags::NONBLOCK)?);
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
        let fd = self.resolve(path, OFlags::RDONLY | OFlags::NONBLOCK)?;
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
        let fd = self.resolve(dir, OFlags::RDONLY | OFlags::DIRECTORY)?;
        // As a listing: a directory too large to read in one go is refused,
        // not read whole while every client waits.
        let here = self.caps(fd.as_fd());
        let found = partial::interrupted_at(fd.as_fd(), owner, MAX_LIST_ENTRIES, &|f| {
            here.is_part(f).unwrap_or(false)
        })
        .map_err(|e| StoreError::from_io(dir.as_str(), e))?
        .ok_or_else(|| StoreError::TooManyEntries(display_name(dir.as_str())))?;
        Ok(found
            .into_iter()
            .map(|p| Entry {
                name: p.target,
                kind: EntryKind::File,
                size: p.size,
                mtime: p.mtime,
                mode: Some((p.mode & 0o7777) as u16),
            })
            .collect())
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
        let here = self.caps(dir.as_fd());
        match partial::discard_at(dir.as_fd(), &part, &|f| here.is_part(f).unwrap_or(false)) {
            Ok(partial::Discarded::Removed) => Ok(()),
            Ok(partial::Discarded::None) => Err(StoreError::NotFound(path.as_str().to_owned())),
            Ok(partial::Discarded::Busy) => Err(StoreError::InUse(path.as_str().to_owned())),
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
        match rename_noreplace(src, &from_name, dst, &to_name) {
            Ok(()) => Ok(()),
            Err(e) if unsupported(&e) && !meta.is_dir() => {
                // The file system lacks RENAME_NOREPLACE: a hard link is just
                // as exclusive for anything but a directory.
                beneath::link_at(src, &from_name, dst, &to_name)
                    .map_err(|e| self.rename_error(from, to, e))?;
                beneath::unlink_at(src, &from_name, false)
                    .map_err(|e| StoreError::from_io(from.as_str(), e))
            }
            Err(e) if unsupported(&e) && !is_beneath(from, to) => {
                // A directory, on a file system without RENAME_NOREPLACE
                // (GlusterFS, ceph-fuse): EINVAL here is no move into
                // itself. A plain rename after making sure `to` is not
                // there: one made in between can only be an empty
                // directory that it replaces (onto a file or a directory
                // with anything in it, rename(2) fails), nothing lost.
                match beneath::lstat_at(dst, &to_name) {
                    Ok(_) => return Err(StoreError::Exists(to.as_str().to_owned())),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::from_io(to.as_str(), e)),
                }
                beneath::rename_at(src, &from_name, dst, &to_name, RenameFlags::empty())
                    .map_err(|e| self.rename_error(from, to, e))
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
    fn resolve(&self, path: &RemotePath, flags: OFlags) -> Result<OwnedFd, StoreError> {
        beneath::open(self.root_fd.as_fd(), path.as_str().as_bytes(), flags)
            .map_err(|e| resolve_error(path.as_str(), e))
    }

    /// Metadata of the target of the symlink `name` in the listed `dir`, if
    /// it resolves inside the root.
    fn inside_target(&self, dir: &RemotePath, name: &[u8]) -> Option<fs::Metadata> {
        let rel = beneath::join(dir.as_str().as_bytes(), name);
        let fd = beneath::open(self.root_fd.as_fd(), &rel, OFlags::PATH).ok()?;
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

/// Maps a resolution failure on `path`: `EXDEV` is the kernel (or the
/// fallback walk) refusing to leave the root.
fn resolve_error(path: &str, e: io::Error) -> StoreError {
    match e.raw_os_error() {
        Some(libc::EXDEV) => StoreError::OutsideRoot(display_name(path)),
        _ => StoreError::from_io(path, e),
    }
}

/// True when the kernel or file system does not support an operation.
/// Whether `to` lies beneath `from` (a directory moved into itself).
fn is_beneath(from: &RemotePath, to: &RemotePath) -> bool {
    to.as_str()
        .strip_prefix(from.as_str())
        .is_some_and(|rest| rest.starts_with('/'))
}

/// `renameat2` with `RENAME_NOREPLACE`; in tests, a file system without
/// it can be played ([`tests::without_noreplace`]).
fn rename_noreplace(
    src: std::os::fd::BorrowedFd<'_>,
    from: &CStr,
    dst: std::os::fd::BorrowedFd<'_>,
    to: &CStr,
) -> io::Result<()> {
    #[cfg(test)]
    if tests::NO_NOREPLACE.with(|n| n.get()) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    beneath::rename_at(src, from, dst, to, RenameFlags::NOREPLACE)
}

fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Plays a file system whose `renameat2` lacks `RENAME_NOREPLACE`
        /// (it says EINVAL, as GlusterFS and ceph-fuse do).
        pub(super) static NO_NOREPLACE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Runs `f` as on a file system without `RENAME_NOREPLACE`.
    pub(super) fn without_noreplace<T>(f: impl FnOnce() -> T) -> T {
        NO_NOREPLACE.with(|n| n.set(true));
        let out = f();
        NO_NOREPLACE.with(|n| n.set(false));
        out
    }

    #[test]
    fn renames_without_noreplace_fall_back_and_never_replace() {
        let (_t, root, _) = setup();
        let store = store(&root);
        let p = |s: &str| rp(s);
        store.mkdir(&p("d")).unwrap();
        store.mkdir(&p("taken")).unwrap();
        std::fs::write(root.join("f"), b"f").unwrap();
        std::fs::write(root.join("g"), b"g").unwrap();
        without_noreplace(|| {
            // A directory moves; onto a taken name it is refused as such.
            store.rename(&p("d"), &p("e")).unwrap();
            assert!(matches!(
                store.rename(&p("e"), &p("taken")),
                Err(StoreError::Exists(_))
            ));
            // Into itself: still the clear refusal.
            let inside = store.rename(&p("e"), &p("e/sub")).unwrap_err();
            assert!(
                inside.to_string().contains("cannot move it into"),
                "{inside}"
            );
            // A file moves by link and unlink; never over another.
            store.rename(&p("f"), &p("h")).unwrap();
            assert!(matches!(
                store.rename(&p("h"), &p("g")),
                Err(StoreError::Exists(_))
            ));
        });
        assert!(root.join("e").is_dir() && !root.join("d").exists());
        assert_eq!(std::fs::read(root.join("h")).unwrap(), b"f");
        assert_eq!(std::fs::read(root.join("g")).unwrap(), b"g");
        assert!(root.join("taken").is_dir());
    }
    use crate::proto::error::ErrorCode;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;

    /// Whether the test's root can mark parts; a test of marks is skipped
    /// where it cannot (tmpfs before Linux 6.6), but never in CI, where a
    /// skip would hide a failure.
    pub(super) fn marks_here(s: &Store) -> bool {
        if s.marks_parts() {
            return true;
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the tests on a file system with user extended attributes"
        );
        eprintln!("skipped: no user extended attributes here");
        false
    }

    pub(super) fn rp(s: &str) -> RemotePath {
        RemotePath::parse(s).unwrap()
    }

    pub(super) fn config(root: &Path) -> StoreConfig {
        StoreConfig {
            root: root.to_path_buf(),
            read_only: false,
            max_file_size: None,
            fsync: true,
        }
    }

    pub(super) fn store(root: &Path) -> Store {
        Store::open(config(root)).unwrap()
    }

    pub(super) fn put(
        s: &Store,
        name: &str,
        data: &[u8],
        force: bool,
    ) -> Result<RemotePath, StoreError> {
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

    pub(super) fn get(s: &Store, name: &str) -> Result<Vec<u8>, StoreError> {
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

    pub(super) fn names(s: &Store, dir: &str) -> Vec<String> {
        s.list(&rp(dir))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect()
    }

    /// A root and, beside it, a directory outside the root.
    pub(super) fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
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
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
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

    /// Each owner lists and drops only its own interrupted uploads; empty
    /// and held parts are not listed, a held one is not dropped.
    #[test]
    fn parts_are_listed_and_discarded_per_owner() {
        let (_t, root, _) = setup();
        let s = store(&root);
        let a = Some(PartOwner::of_token(&[1; 32]));
        let b = Some(PartOwner::of_token(&[2; 32]));
        // As the server leaves them: marked (where the root can mark).
        let part = |name: String, data: &[u8]| {
            fs::write(root.join(&name), data).unwrap();
            if s.marks_parts() {
                let f = File::open(root.join(&name)).unwrap();
                crate::part_mark::set(&f, crate::part_mark::AttemptId::new()).unwrap();
            }
        };
        part(partial::owned_part_name(a, "x.bin"), b"abc");
        part(partial::owned_part_name(a, "empty"), b"");
        part(partial::owned_part_name(b, "y.bin"), b"de");
        part(partial::part_name("open.bin"), b"f");
        // Not a part: no mark (published since, as a stale name can say).
        let unmarked = root.join(partial::owned_part_name(a, "z.bin"));
        fs::write(&unmarked, b"zz").unwrap();
        let names = |o| -> Vec<(String, u64)> {
            s.list_parts(&rp(""), o)
                .unwrap()
                .into_iter()
                .map(|e| (e.name, e.size))
                .collect()
        };
        if !marks_here(&s) {
            return;
        }
        assert_eq!(names(a), [("x.bin".to_owned(), 3)]);
        assert_eq!(
            s.discard_part(&rp("z.bin"), a).unwrap_err().code(),
            ErrorCode::NotFound
        );
        assert!(unmarked.exists());
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
