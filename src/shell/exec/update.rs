//! `-u` and `-c` of `put` and `get`: a file the other side already has
//! (the same size and modification time, or the same size and BLAKE3
//! digest) is skipped, counted, and named with `-v`. The remote side is
//! read from its directory's listing (one per directory and command) and,
//! for `-c`, from the digest the server gives for a `Get` from the file's
//! end, which moves none of its data.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::proto::message::{Entry, EntryKind};

use super::super::command::{Check, Update};
use super::super::render::{escape_for_terminal, quoted_name};
use super::Executor;

/// Size and modification time (Unix seconds) of one side's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) size: u64,
    pub(super) mtime: i64,
}

/// What the stamps of the two sides decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The file moves.
    Send,
    /// The other side has it.
    Skip,
    /// The sizes agree: the digests decide (`-c`).
    CompareDigests,
}

/// The quick decision for one file: `None` where that side has no regular
/// file by that name.
pub(super) fn verdict(check: Check, ours: Option<Stamp>, theirs: Option<Stamp>) -> Verdict {
    let (Some(ours), Some(theirs)) = (ours, theirs) else {
        return Verdict::Send;
    };
    match check {
        Check::Off => Verdict::Send,
        _ if ours.size != theirs.size => Verdict::Send,
        Check::Times if ours.mtime == theirs.mtime => Verdict::Skip,
        Check::Times => Verdict::Send,
        Check::Content => Verdict::CompareDigests,
    }
}

/// What `-u`/`-c` counted during one command.
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub(super) skipped: usize,
    pub(super) moved: usize,
}

fn local_stamp(path: &Path) -> Option<Stamp> {
    let meta = fs::metadata(path).ok().filter(|m| m.is_file())?;
    Some(Stamp {
        size: meta.len(),
        mtime: meta.mtime(),
    })
}

fn remote_stamp(entry: Option<Entry>) -> Option<Stamp> {
    entry.filter(|e| e.kind == EntryKind::File).map(|e| Stamp {
        size: e.size,
        mtime: e.mtime,
    })
}

fn local_digest(path: &Path, size: u64) -> Option<[u8; 32]> {
    let file = fs::File::open(path).ok()?;
    let hasher = crate::partial::prefix_hasher(&file, size).ok()?;
    Some(*hasher.finalize().as_bytes())
}

impl Executor {
    /// Whether the local file `local` and the remote `remote` (as typed)
    /// are the same file by the command's check; anything that cannot be
    /// found out says no, and the transfer that follows reports it.
    pub(super) fn unchanged(&mut self, local: &Path, remote: &str) -> bool {
        let ours = local_stamp(local);
        let theirs = remote_stamp(self.cached_entry(remote).ok().flatten());
        match verdict(self.update.check, ours, theirs) {
            Verdict::Send => false,
            Verdict::Skip => true,
            Verdict::CompareDigests => {
                let size = ours.map_or(0, |s| s.size);
                let wire = self.wire(remote);
                let asked = self.client.borrow_mut().remote_digest(&wire, size);
                match asked {
                    Ok(Some(digest)) => local_digest(local, size) == Some(digest),
                    _ => false,
                }
            }
        }
    }

    /// `-u`/`-c` found `name` unchanged: counted, and named with `-v`.
    pub(super) fn skip(&mut self, name: &str) -> Result<(), String> {
        self.counts.skipped += 1;
        if self.update.verbose {
            let line = format!("skipped {} (unchanged)", quoted_name(name));
            self.say(&line)?;
        }
        Ok(())
    }

    /// The end of a `put`/`get` with `-u`/`-c`: how many files were
    /// skipped and how many moved (`verb`: `sent`, `fetched`).
    pub(super) fn update_summary(&mut self, cmd: &str, verb: &str) -> Result<(), String> {
        if self.update.check == Check::Off || self.quiet {
            return Ok(());
        }
        let Counts { skipped, moved } = self.counts;
        let files = if skipped == 1 { "file" } else { "files" };
        let line = format!("{cmd}: {skipped} {files} skipped (unchanged), {moved} {verb}");
        self.say(&escape_for_terminal(&line))
    }

    /// Takes `-u`/`-c`/`-v` for the command under way.
    pub(super) fn update_for(&mut self, update: Update) {
        self.update = update;
        self.counts = Counts::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(size: u64, mtime: i64) -> Option<Stamp> {
        Some(Stamp { size, mtime })
    }

    #[test]
    fn times_skip_only_the_same_size_and_second() {
        let v = |a, b| verdict(Check::Times, a, b);
        assert_eq!(v(stamp(10, 100), stamp(10, 100)), Verdict::Skip);
        assert_eq!(v(stamp(10, 100), stamp(10, 101)), Verdict::Send);
        assert_eq!(v(stamp(10, 100), stamp(11, 100)), Verdict::Send);
        assert_eq!(v(stamp(0, -5), stamp(0, -5)), Verdict::Skip);
    }

    #[test]
    fn content_compares_digests_only_when_the_sizes_agree() {
        let v = |a, b| verdict(Check::Content, a, b);
        assert_eq!(v(stamp(10, 100), stamp(10, 999)), Verdict::CompareDigests);
        assert_eq!(v(stamp(10, 100), stamp(10, 100)), Verdict::CompareDigests);
        assert_eq!(v(stamp(10, 100), stamp(12, 100)), Verdict::Send);
    }

    #[test]
    fn a_missing_side_or_no_check_sends() {
        for check in [Check::Off, Check::Times, Check::Content] {
            assert_eq!(verdict(check, None, stamp(1, 1)), Verdict::Send);
            assert_eq!(verdict(check, stamp(1, 1), None), Verdict::Send);
            assert_eq!(verdict(check, None, None), Verdict::Send);
        }
        assert_eq!(verdict(Check::Off, stamp(1, 1), stamp(1, 1)), Verdict::Send);
    }
}
