//! The local side of a download: a hidden temporary file beside the target,
//! renamed into place only after the digest matched, with the seed's clash
//! rule (`stem_N.ext`) applied race-free. Never prints.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::proto::limits::RESERVED_PREFIX;
use crate::proto::path::clash_name;

/// Most clash names tried before giving up (`a_1.txt` .. `a_10000.txt`).
const MAX_CLASH_TRIES: u64 = 10_000;
/// Every this many bytes of a download are handed to the disk at once
/// (`sync_file_range`, not waiting), so the disk works while the rest
/// arrives and the fsync before the rename has little left to do.
const WRITEBACK_STEP: u64 = 8 << 20;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A download being written: the open temporary file and where it goes.
#[derive(Debug)]
pub struct LocalDownload {
    /// The open temporary file.
    pub file: File,
    temp: PathBuf,
    target: PathBuf,
    force: bool,
    done: bool,
    /// Bytes written so far, and how many of them went to early writeback.
    written: u64,
    flushed: u64,
}

impl LocalDownload {
    /// Creates the hidden temporary file in `target`'s directory.
    pub fn create(target: &Path, force: bool) -> io::Result<LocalDownload> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let short: String = name.chars().take(100).collect();
        for _ in 0..100 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let temp = dir.join(format!(
                "{RESERVED_PREFIX}part-{}-{n}-{short}",
                std::process::id()
            ));
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => {
                    return Ok(LocalDownload {
                        file,
                        temp,
                        target: target.to_path_buf(),
                        force,
                        done: false,
                        written: 0,
                        flushed: 0,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free temporary name",
        ))
    }

    /// Appends downloaded bytes, starting their writeback every
    /// [`WRITEBACK_STEP`] bytes.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        self.file.write_all(data)?;
        self.written += data.len() as u64;
        if self.written - self.flushed >= WRITEBACK_STEP {
            if let (Ok(offset), Ok(len)) = (
                i64::try_from(self.flushed),
                i64::try_from(self.written - self.flushed),
            ) {
                // SAFETY: a plain syscall on a descriptor we own. Only an
                // optimization for the fsync in `commit`, which reports
                // any failure, so the result is ignored here.
                unsafe {
                    libc::sync_file_range(
                        self.file.as_raw_fd(),
                        offset,
                        len,
                        libc::SYNC_FILE_RANGE_WRITE,
                    );
                }
            }
            self.flushed = self.written;
        }
        Ok(())
    }

    /// Publishes the verified file: replaces the target with `force`,
    /// otherwise takes the first free name of `target`, `stem_1.ext`, ...
    /// Returns the path it was stored under.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        self.file.sync_data().ok();
        let result = publish(&self.temp, &self.target, self.force);
        if result.is_ok() {
            self.done = true;
        }
        result
    }
}

impl Drop for LocalDownload {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Moves `temp` to `target` (atomic replace with `force`), or links it to
/// the first free clash name and removes `temp`. Linking fails if the name
/// exists, so two writers never take the same name.
pub fn publish(temp: &Path, target: &Path, force: bool) -> io::Result<PathBuf> {
    if force {
        if target.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "target is a directory",
            ));
        }
        fs::rename(temp, target)?;
        return Ok(target.to_path_buf());
    }
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut candidate = target.to_path_buf();
    for n in 1..=MAX_CLASH_TRIES + 1 {
        match fs::hard_link(temp, &candidate) {
            Ok(()) => {
                fs::remove_file(temp)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                candidate = target.with_file_name(clash_name(&name, n));
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free name left for the download",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn clash_rule_and_force_locally() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.txt");
        fs::write(&target, b"old").unwrap();
        let mut d = LocalDownload::create(&target, false).unwrap();
        d.file.write_all(b"new").unwrap();
        let stored = d.commit().unwrap();
        assert_eq!(stored, dir.path().join("a_1.txt"));
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(fs::read(&stored).unwrap(), b"new");

        let mut d = LocalDownload::create(&target, true).unwrap();
        d.file.write_all(b"forced").unwrap();
        assert_eq!(d.commit().unwrap(), target);
        assert_eq!(fs::read(&target).unwrap(), b"forced");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn dropped_download_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("b.bin");
        let mut d = LocalDownload::create(&target, false).unwrap();
        d.file.write_all(b"partial").unwrap();
        drop(d);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
