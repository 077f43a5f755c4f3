//! The local side of a download: a hidden part file beside the target
//! (kept when interrupted, so `reget` continues it), published under the
//! final name only after the digest matched, with the seed's clash rule
//! (`stem_N.ext`) applied race-free. Never prints.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::partial;
use crate::proto::limits::RESERVED_PREFIX;
use crate::proto::path::clash_name;

/// Most clash names tried before giving up (`a_1.txt` .. `a_10000.txt`).
const MAX_CLASH_TRIES: u64 = 10_000;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A download being written: the open hidden file beside the target — the
/// target's part file (locked; kept when the download is interrupted, so
/// `reget` can continue it) or, when that is taken, a one-off temporary file.
#[derive(Debug)]
pub struct LocalDownload {
    /// The open hidden file.
    pub file: File,
    path: PathBuf,
    target: PathBuf,
    force: bool,
    resumable: bool,
    done: bool,
    discard: bool,
}

fn dir_and_name(target: &Path) -> (PathBuf, String) {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, name)
}

impl LocalDownload {
    /// A fresh download to `target`: takes the target's part file when it
    /// is free, a one-off temporary file otherwise. Also returns the size of
    /// an interrupted part it left alone (0 if none), which `reget` could
    /// continue.
    pub fn create(target: &Path, force: bool) -> io::Result<(LocalDownload, u64)> {
        let (dir, name) = dir_and_name(target);
        let part = dir.join(partial::part_name(&name));
        if let Some(file) = partial::take_fresh(&part)? {
            return Ok((LocalDownload::new(file, part, target, force, true), 0));
        }
        let stale = partial::stale_size(&part);
        let short: String = name.chars().take(100).collect();
        for _ in 0..100 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let temp = dir.join(format!(
                "{RESERVED_PREFIX}{}{}-{n}-{short}",
                partial::TEMP_TAG,
                std::process::id()
            ));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&temp)
            {
                Ok(file) => {
                    return Ok((LocalDownload::new(file, temp, target, force, false), stale))
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

    /// Continues the interrupted download to `target`: its part file,
    /// created empty when there is none. Fails if another download holds it.
    pub fn resume(target: &Path, force: bool) -> io::Result<LocalDownload> {
        let (dir, name) = dir_and_name(target);
        let part = dir.join(partial::part_name(&name));
        match partial::open_locked(&part, true)? {
            Some(file) => Ok(LocalDownload::new(file, part, target, force, true)),
            None => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "another download to this name is in progress",
            )),
        }
    }

    fn new(file: File, path: PathBuf, target: &Path, force: bool, resumable: bool) -> Self {
        LocalDownload {
            file,
            path,
            target: target.to_path_buf(),
            force,
            resumable,
            done: false,
            discard: false,
        }
    }

    /// Bytes already in the file.
    pub fn held(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Positions the file at `offset` (the resume point) for appending.
    pub fn seek_to(&mut self, offset: u64) -> io::Result<()> {
        self.file.set_len(offset)?;
        self.file.seek(SeekFrom::Start(offset))?;
        Ok(())
    }

    /// Whether an interruption leaves this download for `reget`.
    pub fn resumable(&self) -> bool {
        self.resumable
    }

    /// Marks the data as worthless (integrity failure): removed on drop
    /// even when it could otherwise be resumed.
    pub fn discard(&mut self) {
        self.discard = true;
    }

    /// Publishes the verified file: replaces the target with `force`,
    /// otherwise takes the first free name of `target`, `stem_1.ext`, ...
    /// Returns the path it was stored under.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        let result = publish(&self.path, &self.target, self.force);
        if result.is_ok() {
            self.done = true;
        }
        result
    }
}

impl Drop for LocalDownload {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let held = self.held().unwrap_or(0);
        let keep = self.resumable && !self.discard && held > 0;
        if keep {
            // Kept for reget: give back the blocks reserved past what
            // arrived (see `partial::preallocate`).
            let _ = self.file.set_len(held);
        } else {
            let _ = fs::remove_file(&self.path);
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
            // Already ours: an earlier run linked the part here and was
            // killed before it removed the part; `reget` finishes that.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && same_file(temp, &candidate) => {
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

/// Whether two paths name the same file (not following a final symlink).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::symlink_metadata(a), fs::symlink_metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_part_already_linked_to_its_target_is_finished_not_copied() {
        // ftx killed between linking the part to the target and removing
        // the part: both names are the same file.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.txt");
        let part = dir.path().join(".ftx-part-a.txt");
        fs::write(&part, b"whole").unwrap();
        fs::hard_link(&part, &target).unwrap();
        assert_eq!(publish(&part, &target, false).unwrap(), target);
        assert!(!part.exists());
        assert_eq!(fs::read(&target).unwrap(), b"whole");
        assert!(!dir.path().join("a_1.txt").exists());
        // A different file under the name still gets the clash rule.
        fs::write(&part, b"other").unwrap();
        assert_eq!(
            publish(&part, &target, false).unwrap(),
            dir.path().join("a_1.txt")
        );
    }

    #[test]
    fn clash_rule_and_force_locally() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.txt");
        fs::write(&target, b"old").unwrap();
        let (mut d, stale) = LocalDownload::create(&target, false).unwrap();
        assert_eq!(stale, 0);
        d.file.write_all(b"new").unwrap();
        let stored = d.commit().unwrap();
        assert_eq!(stored, dir.path().join("a_1.txt"));
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(fs::read(&stored).unwrap(), b"new");

        let (mut d, _) = LocalDownload::create(&target, true).unwrap();
        d.file.write_all(b"forced").unwrap();
        assert_eq!(d.commit().unwrap(), target);
        assert_eq!(fs::read(&target).unwrap(), b"forced");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn interrupted_download_stays_resumable_and_never_under_the_final_name() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("b.bin");
        let (mut d, _) = LocalDownload::create(&target, false).unwrap();
        d.file.write_all(b"partial").unwrap();
        drop(d);
        assert!(!target.exists());
        let part = dir.path().join(".ftx-part-b.bin");
        assert_eq!(fs::read(&part).unwrap(), b"partial");

        // A fresh get leaves the part alone and reports it.
        let (d, stale) = LocalDownload::create(&target, false).unwrap();
        assert_eq!(stale, 7);
        assert!(!d.resumable());
        drop(d);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        // Resuming takes the part; a second resumer is refused meanwhile.
        let mut r = LocalDownload::resume(&target, false).unwrap();
        assert_eq!(r.held().unwrap(), 7);
        assert!(LocalDownload::resume(&target, false).is_err());
        r.seek_to(7).unwrap();
        r.file.write_all(b" rest").unwrap();
        assert_eq!(r.commit().unwrap(), target);
        assert_eq!(fs::read(&target).unwrap(), b"partial rest");
        assert!(!part.exists());
    }

    #[test]
    fn discarded_or_empty_downloads_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("c.bin");
        let (d, _) = LocalDownload::create(&target, false).unwrap();
        drop(d);
        let (mut d, _) = LocalDownload::create(&target, false).unwrap();
        d.file.write_all(b"corrupt").unwrap();
        d.discard();
        drop(d);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
