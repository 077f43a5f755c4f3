//! Small private state files that several processes may change at once:
//! ftxd's token file and key, ftx's known hosts and saved tokens. A change
//! is a read-modify-write under an exclusive lock on a sibling lock file,
//! and a new file is written under a unique temporary name created with
//! `O_EXCL | O_NOFOLLOW` (never through a symlink someone planted, never
//! over another writer's temporary), then fsynced and renamed into place.
//! Shared by both sides; knows nothing of what the files hold.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// An exclusive lock on `PATH.lock`, held until dropped.
pub struct Lock {
    _file: File,
}

/// Takes the exclusive lock that guards changes to `path` (waiting for
/// another holder), creating `PATH.lock` (mode 0600) if needed.
pub fn lock(path: &Path) -> io::Result<Lock> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(sibling(path, "lock"))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
    Ok(Lock { _file: file })
}

/// Reads `path` as text; `None` when it does not exist.
pub fn read(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` atomically with `mode`: a unique temporary
/// file beside it (created new, never through a symlink), fsync, rename.
/// A crash leaves the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let unique = format!(
        "{}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let tmp = sibling(path, &unique);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)?;
    let written = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Changes `path` under its lock: `change` gets the current text (`None`
/// when there is none yet) and returns the new text, or an error that
/// leaves the file as it was.
pub fn update<E: From<io::Error>>(
    path: &Path,
    mode: u32,
    change: impl FnOnce(Option<String>) -> Result<String, E>,
) -> Result<(), E> {
    let _lock = lock(path)?;
    let new = change(read(path)?)?;
    write_atomic(path, new.as_bytes(), mode)?;
    Ok(())
}

/// `PATH.EXT` beside `path` (`tokens` → `tokens.lock`).
fn sibling(path: &Path, ext: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(ext);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many writers at once, each adding its own line: none is lost.
    #[test]
    fn concurrent_updates_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list");
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for j in 0..5 {
                        update::<io::Error>(&path, 0o600, |old| {
                            Ok(format!("{}{i}-{j}\n", old.unwrap_or_default()))
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 80, "{text}");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    /// A symlink planted where a temporary or lock file goes is never
    /// followed.
    #[test]
    fn planted_symlinks_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let path = dir.path().join("state");
        std::os::unix::fs::symlink(&target, dir.path().join("state.lock")).unwrap();
        assert!(lock(&path).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"keep");
    }
}
