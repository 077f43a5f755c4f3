//! Fault injection for tests: name lookups of part files that answer from
//! a cache, the way each machine's client of a distributed file system
//! does (JuiceFS, GlusterFS and CephFS keep what a name points to for
//! about a second). Off unless the environment variable
//! `FTXD_FAULT_STALE_LOOKUPS_MS` is set (to the cache's lifetime in
//! milliseconds): the integration tests start two `ftxd` on one root with
//! it, so the races of several machines on one file system show on one.
//!
//! While an entry is fresh, opening the name gives the file it pointed to
//! when it was looked up, even if that name was removed or now points
//! elsewhere (once that file is gone, `EPERM`, as JuiceFS answers); an
//! exclusive create of the name fails with `EEXIST`; and the name "is"
//! that file. The process's own unlink or rename of a name forgets it, as
//! the kernel's own cache does. A mark read through the open file
//! ([`crate::part_mark`]) is never cached, as with FUSE. The cache is not
//! bounded: it is for tests only.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};

/// The environment variable that turns the stale cache on.
pub const STALE_LOOKUPS_ENV: &str = "FTXD_FAULT_STALE_LOOKUPS_MS";

/// A name looked up: the file it led to (an `O_PATH` descriptor, which
/// holds no lock) and when.
struct Seen {
    file: OwnedFd,
    at: Instant,
}

/// (directory's device, its inode, name) → what the name led to.
type Key = (u64, u64, Vec<u8>);

/// Whether the stale cache is on: the process plays a node of a
/// distributed file system.
pub fn enabled() -> bool {
    lifetime().is_some()
}

fn lifetime() -> Option<Duration> {
    static TTL: OnceLock<Option<Duration>> = OnceLock::new();
    *TTL.get_or_init(|| {
        std::env::var(STALE_LOOKUPS_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
    })
}

fn cache() -> &'static Mutex<HashMap<Key, Seen>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Seen>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn key(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Key> {
    let st = rustix::fs::fstat(dir)?;
    Ok((st.st_dev, st.st_ino, name.to_bytes().to_vec()))
}

/// The file `name` in `dir` led to within the cache's lifetime, reopened
/// with `flags` (through `/proc/self/fd`, so it works for a file whose
/// name is gone), if the cache is on and holds the name.
fn cached(dir: BorrowedFd<'_>, name: &CStr, ttl: Duration) -> io::Result<Option<OwnedFd>> {
    let key = key(dir, name)?;
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    match cache.get(&key) {
        Some(seen) if seen.at.elapsed() < ttl => Ok(Some(seen.file.try_clone()?)),
        Some(_) => {
            cache.remove(&key);
            Ok(None)
        }
        None => Ok(None),
    }
}

fn remember(dir: BorrowedFd<'_>, name: &CStr, file: BorrowedFd<'_>) -> io::Result<()> {
    let path = format!("/proc/self/fd/{}", file.as_raw_fd());
    let pinned = rustix::fs::open(path.as_str(), OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
    let key = key(dir, name)?;
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    cache.insert(
        key,
        Seen {
            file: pinned,
            at: Instant::now(),
        },
    );
    Ok(())
}

/// `openat(dir, name, flags, mode)`, answered from the stale cache when it
/// is on.
pub fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: OFlags, mode: Mode) -> io::Result<File> {
    let Some(ttl) = lifetime() else {
        return Ok(File::from(rustix::fs::openat(dir, name, flags, mode)?));
    };
    if let Some(pinned) = cached(dir, name, ttl)? {
        if flags.contains(OFlags::CREATE | OFlags::EXCL) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        // JuiceFS refuses to open a file removed since (EPERM).
        if rustix::fs::fstat(&pinned)?.st_nlink == 0 {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        let path = format!("/proc/self/fd/{}", pinned.as_raw_fd());
        let again = flags & !(OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW);
        return Ok(File::from(rustix::fs::open(path.as_str(), again, mode)?));
    }
    let file = File::from(rustix::fs::openat(dir, name, flags, mode)?);
    remember(dir, name, file.as_fd())?;
    Ok(file)
}

/// Whether the cache says `name` in `dir` is `file`; `None` when the
/// cache is off or does not hold the name (then ask the file system).
pub fn same_file(dir: BorrowedFd<'_>, name: &CStr, file: &File) -> Option<bool> {
    let ttl = lifetime()?;
    let pinned = cached(dir, name, ttl).ok()??;
    let (a, b) = (rustix::fs::fstat(&pinned).ok()?, file.metadata().ok()?);
    Some(a.st_dev == b.dev() && a.st_ino == b.ino())
}

/// This process removed or renamed `name` in `dir`: its own cache knows.
pub fn forget(dir: BorrowedFd<'_>, name: &CStr) {
    if lifetime().is_none() {
        return;
    }
    if let Ok(key) = key(dir, name) {
        cache()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    }
}
