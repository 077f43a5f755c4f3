//! A file's BLAKE3 digest, remembered beside it for the next download.
//!
//! Every download ends with the whole file's digest. Computing it costs
//! ftxd's one thread ~0.35 s per GiB, and it forces every byte through user
//! space. Once a download has hashed a file from start to end, ftxd stores
//! the digest in the extended attribute `user.ftx.blake3` together with
//! the file's size and modification time; a later download of the same
//! unchanged file takes the digest from there and hashes nothing.
//!
//! Changing a file's content changes its modification time, so an entry
//! whose size or time differs is ignored. Timestamps are coarse on some
//! kernels (a tick of a few ms): a write in the same tick as the hashed
//! read would keep the time. So, as git does with its index, a digest is
//! only remembered for a file whose modification time was at least
//! [`SETTLED`] old when the download opened it, and an entry says when
//! that was. A stale entry could only ever make a download fail its
//! integrity check, never pass bad data: the client hashes what it
//! receives. Setting a time back by hand (`touch -d`) after changing a
//! file of the same size defeats it (as it defeats rsync's quick check);
//! `setfattr -x user.ftx.blake3 FILE` removes an entry.
//!
//! Filesystems without user extended attributes, read-only files and
//! read-only servers simply keep no entries.

use std::ffi::CStr;
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The attribute's name.
const NAME: &CStr = c"user.ftx.blake3";

/// First bytes of an entry (format version 1).
const MAGIC: [u8; 4] = *b"ftx1";

/// magic, size u64, mtime seconds i64, mtime nanoseconds u32, time the
/// file was opened (seconds) i64, digest.
const ENTRY_LEN: usize = 4 + 8 + 8 + 4 + 8 + 32;

/// How old a file's modification time must be when it is hashed for its
/// digest to be remembered.
pub const SETTLED: Duration = Duration::from_secs(2);

/// Files smaller than this are not worth an entry: hashing them is cheap.
pub const MIN_SIZE: u64 = 1 << 20;

/// What identifies a file's content: its size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    size: u64,
    mtime: i64,
    mtime_nsec: u32,
}

impl Stamp {
    /// The stamp of a file from its metadata.
    pub fn of(meta: &Metadata) -> Stamp {
        Stamp {
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec().clamp(0, 999_999_999) as u32,
        }
    }

    /// Whether the file was unchanged for [`SETTLED`] at `opened`.
    fn settled_at(&self, opened: i64) -> bool {
        self.mtime.saturating_add(SETTLED.as_secs() as i64) < opened
    }
}

/// Seconds since the epoch of `t` (0 before it).
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn encode(stamp: &Stamp, opened: i64, digest: &[u8; 32]) -> [u8; ENTRY_LEN] {
    let mut e = [0u8; ENTRY_LEN];
    e[..4].copy_from_slice(&MAGIC);
    e[4..12].copy_from_slice(&stamp.size.to_be_bytes());
    e[12..20].copy_from_slice(&stamp.mtime.to_be_bytes());
    e[20..24].copy_from_slice(&stamp.mtime_nsec.to_be_bytes());
    e[24..32].copy_from_slice(&opened.to_be_bytes());
    e[32..].copy_from_slice(digest);
    e
}

/// The digest an entry holds for a file with `stamp`, if it is valid.
fn decode(e: &[u8], stamp: &Stamp) -> Option<[u8; 32]> {
    if e.len() != ENTRY_LEN || e[..4] != MAGIC {
        return None;
    }
    let u64_at = |i: usize| u64::from_be_bytes(e[i..i + 8].try_into().expect("8 bytes"));
    let kept = Stamp {
        size: u64_at(4),
        mtime: u64_at(12) as i64,
        mtime_nsec: u32::from_be_bytes(e[20..24].try_into().expect("4 bytes")),
    };
    let opened = u64_at(24) as i64;
    if kept != *stamp || !kept.settled_at(opened) {
        return None;
    }
    e[32..].try_into().ok()
}

/// The digest remembered for `file`, whose metadata gave `stamp`, if the
/// entry matches it.
pub fn recall(file: &File, stamp: &Stamp) -> Option<[u8; 32]> {
    if stamp.size < MIN_SIZE {
        return None;
    }
    let mut e = [0u8; ENTRY_LEN + 1];
    let n = rustix::fs::fgetxattr(file, NAME, &mut e[..]).ok()?;
    decode(&e[..n], stamp)
}

/// Remembers `digest` for `file`, which had `stamp` when it was opened at
/// `opened` (seconds) and was then hashed whole: only if the file was
/// settled then and is unchanged now. Failures only cost the next
/// download its shortcut.
pub fn remember(file: &File, stamp: &Stamp, opened: i64, digest: &[u8; 32]) {
    if stamp.size < MIN_SIZE || !stamp.settled_at(opened) {
        return;
    }
    match file.metadata() {
        Ok(meta) if Stamp::of(&meta) == *stamp => {}
        _ => return,
    }
    let e = encode(stamp, opened, digest);
    if let Err(e) = rustix::fs::fsetxattr(file, NAME, &e, rustix::fs::XattrFlags::empty()) {
        log::debug!("cannot remember a digest: {}", std::io::Error::from(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(size: u64, mtime: i64) -> Stamp {
        Stamp {
            size,
            mtime,
            mtime_nsec: 5,
        }
    }

    #[test]
    fn an_entry_holds_only_for_the_same_size_and_time_of_a_settled_file() {
        let d = [7u8; 32];
        let s = stamp(MIN_SIZE, 1000);
        let e = encode(&s, 1003, &d);
        assert_eq!(decode(&e, &s), Some(d));
        // Another size, second or nanosecond: another content.
        assert_eq!(decode(&e, &stamp(MIN_SIZE + 1, 1000)), None);
        assert_eq!(decode(&e, &stamp(MIN_SIZE, 1001)), None);
        let mut ns = s;
        ns.mtime_nsec = 6;
        assert_eq!(decode(&e, &ns), None);
        // Hashed while the file might still have been changing.
        assert_eq!(decode(&encode(&s, 1002, &d), &s), None);
        // Damaged or foreign entries.
        assert_eq!(decode(&e[..ENTRY_LEN - 1], &s), None);
        let mut bad = e;
        bad[0] = b'x';
        assert_eq!(decode(&bad, &s), None);
    }

    #[test]
    fn a_file_remembers_its_digest_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![3u8; MIN_SIZE as usize]).unwrap();
        let file = File::open(&path).unwrap();
        let d = *blake3::hash(&std::fs::read(&path).unwrap()).as_bytes();
        let now = SystemTime::now();
        // Just written: not settled, nothing remembered.
        let fresh = Stamp::of(&file.metadata().unwrap());
        remember(&file, &fresh, unix_secs(now), &d);
        assert_eq!(recall(&file, &fresh), None);
        // Written a minute ago.
        file.set_modified(now - Duration::from_secs(60)).unwrap();
        let s = Stamp::of(&file.metadata().unwrap());
        remember(&file, &s, unix_secs(now), &d);
        match recall(&file, &s) {
            // No user xattrs on this filesystem: nothing more to check.
            None => eprintln!("no user extended attributes here"),
            Some(got) => {
                assert_eq!(got, d);
                // New content, same size: a new time, the entry is void.
                std::fs::write(&path, vec![4u8; MIN_SIZE as usize]).unwrap();
                let s2 = Stamp::of(&file.metadata().unwrap());
                assert_ne!(s2, s);
                assert_eq!(recall(&file, &s2), None);
            }
        }
    }
}
