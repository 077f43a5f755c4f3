//! The mark on a server's part file: an extended attribute naming the
//! upload attempt that holds it, read and written through the open file,
//! never through a name.
//!
//! Why: on a distributed file system each machine's client caches what a
//! name points to and a file's size for about a second. Right after one
//! `ftxd` published a part (linked or renamed it to its final name), a
//! second `ftxd` may still find the part's name pointing at that file,
//! now the published one, lock it (the first has let go) and resume into
//! it. So a server never decides on a name lookup: a part is a part only
//! while it carries the mark, which is set right after the part is made
//! (`O_EXCL`) and removed before it is published. A getxattr on an open
//! file goes to the file system each time (FUSE does not cache it), so a
//! file that was published meanwhile is seen as such however stale the
//! name was.
//!
//! The mark is also a fence. A lock on a distributed file system is a
//! lease: a machine cut off from it loses its locks after a while (42 s on
//! GlusterFS, ~60 s on JuiceFS) while its `ftxd` runs on. The server that
//! takes such a part over marks it with its own attempt, and the one cut
//! off checks its mark before each step of writing and before it
//! publishes, so it stops at its next check and never publishes.
//!
//! File systems without user extended attributes (tmpfs before Linux 6.6,
//! JuiceFS mounted without `--enable-xattr`) cannot mark: [`supported`]
//! says so and the store then trusts names, as a single machine can.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, StatxFlags, XattrFlags};
use rustix::io::Errno;

/// The attribute's name.
pub const MARK_ATTR: &CStr = c"user.ftx.part";

/// One upload attempt's identity: 16 random bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptId([u8; 16]);

/// Numbers attempts of this process, in case the system's random source
/// fails (then pid, clock and counter still make ids distinct).
static ATTEMPTS: AtomicU64 = AtomicU64::new(0);

impl AttemptId {
    /// A fresh identity, distinct from every other attempt's on any machine.
    pub fn new() -> AttemptId {
        use ring::rand::{SecureRandom, SystemRandom};
        let mut id = [0u8; 16];
        if SystemRandom::new().fill(&mut id).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let seed = format!(
                "{}-{}-{nanos}",
                std::process::id(),
                ATTEMPTS.fetch_add(1, Ordering::Relaxed)
            );
            id.copy_from_slice(&blake3::hash(seed.as_bytes()).as_bytes()[..16]);
        }
        AttemptId(id)
    }
}

impl Default for AttemptId {
    fn default() -> AttemptId {
        AttemptId::new()
    }
}

/// Marks `file` as attempt `id`'s part (replacing any earlier mark).
pub fn set(file: &File, id: AttemptId) -> io::Result<()> {
    Ok(rustix::fs::fsetxattr(
        file,
        MARK_ATTR,
        &id.0,
        XattrFlags::empty(),
    )?)
}

/// Marks `file`, a part found marked by an earlier attempt, as attempt
/// `id`'s: only if it still carries a mark (`XATTR_REPLACE`), so a part
/// whose holder removed its mark to publish it is never claimed. `false`:
/// no mark any more, not a part.
pub fn replace(file: &File, id: AttemptId) -> io::Result<bool> {
    match rustix::fs::fsetxattr(file, MARK_ATTR, &id.0, XattrFlags::REPLACE) {
        Ok(()) => Ok(true),
        Err(Errno::NODATA) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The attempt `file` is marked for; `None` when it carries no mark (it
/// is not, or no longer, a part: published, or never one).
pub fn of(file: &File) -> io::Result<Option<AttemptId>> {
    let mut buf = [0u8; 16];
    match rustix::fs::fgetxattr(file, MARK_ATTR, &mut buf) {
        Ok(16) => Ok(Some(AttemptId(buf))),
        // Not a mark of ours (another length).
        Ok(_) | Err(Errno::RANGE) => Ok(None),
        Err(Errno::NODATA) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Removes the mark: from now on `file` is no part, whatever name leads
/// to it.
pub fn clear(file: &File) -> io::Result<()> {
    match rustix::fs::fremovexattr(file, MARK_ATTR) {
        Ok(()) | Err(Errno::NODATA) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether files in the directory `dir` can be marked: asking `dir`
/// itself for the mark answers "none" (`ENODATA`) where user extended
/// attributes work, "not supported" where they do not. Nothing is made
/// in the directory (a scratch file would show in a listing).
pub fn supported(dir: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 16];
    matches!(
        rustix::fs::fgetxattr(dir, MARK_ATTR, &mut buf),
        Ok(_) | Err(Errno::NODATA) | Err(Errno::RANGE)
    )
}

/// The size of `file` as the file system has it now, not as a cache
/// remembers it.
pub fn fresh_len(file: &File) -> io::Result<u64> {
    Ok(fresh_stat(file, StatxFlags::SIZE)?.stx_size)
}

/// How many names `file` has as its file system has it now (0: removed).
pub fn fresh_links(file: &File) -> io::Result<u32> {
    Ok(fresh_stat(file, StatxFlags::NLINK)?.stx_nlink)
}

/// `statx` of `file` with `AT_STATX_FORCE_SYNC`, which a FUSE client
/// answers by asking its server rather than its cache.
fn fresh_stat(file: &File, mask: StatxFlags) -> io::Result<rustix::fs::Statx> {
    Ok(rustix::fs::statx(
        file.as_fd(),
        c"",
        AtFlags::EMPTY_PATH | AtFlags::STATX_FORCE_SYNC,
        mask,
    )?)
}

/// Whether the file system of `fd` may be shared by several machines (a
/// network or cluster file system, FUSE included): there a lock can lapse
/// while its holder runs on, and a holder cut off may still have writes
/// in flight that land when it comes back, so an upload taken over
/// continues in a file of its own ([`copy_prefix`]), never in place.
pub fn is_shared(fd: BorrowedFd<'_>) -> bool {
    /// `statfs` magic numbers of file systems that span machines.
    const SHARED: &[i64] = &[
        0x6573_5546,     // FUSE: JuiceFS, GlusterFS, ceph-fuse, s3fs, sshfs
        0x00c3_6400,     // CephFS (kernel client)
        0x6969,          // NFS
        0xff53_4d42,     // CIFS
        0xfe53_4d42,     // SMB2
        0x0116_1970,     // GFS2
        0x7461_636f,     // OCFS2
        0x0102_1997,     // 9P
        0x0bd0_0bd0,     // Lustre
        0x5346_414f,     // AFS
        0x6b41_4653,     // kAFS
        0x4750_4653_i64, // GPFS
    ];
    // `f_type` is an i64 here, an i32 on some targets.
    #[allow(clippy::useless_conversion)]
    rustix::fs::fstatfs(fd).is_ok_and(|st| SHARED.contains(&i64::from(st.f_type)))
}

/// Copies the first `len` bytes of `from` into `to` (from offset 0), by
/// `copy_file_range`: on JuiceFS, CephFS and NFS 4.2 the file system
/// copies on its side (JuiceFS shares the data, nothing is moved).
pub fn copy_prefix(from: &File, to: &File, len: u64) -> io::Result<()> {
    let (mut off_in, mut off_out) = (0u64, 0u64);
    while off_in < len {
        let step = usize::try_from(len - off_in)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        let n = rustix::fs::copy_file_range(from, Some(&mut off_in), to, Some(&mut off_out), step)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the part ended before its size",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_set_read_replaced_and_cleared_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = File::open(dir.path()).unwrap();
        assert!(supported(root.as_fd()));
        std::fs::write(dir.path().join("p"), b"").unwrap();
        let file = File::open(dir.path().join("p")).unwrap();
        assert_eq!(of(&file).unwrap(), None);
        let (a, b) = (AttemptId::new(), AttemptId::new());
        assert_ne!(a, b);
        set(&file, a).unwrap();
        assert_eq!(of(&file).unwrap(), Some(a));
        // Another attempt takes it over: the first one sees it lost.
        assert!(replace(&file, b).unwrap());
        assert_eq!(of(&file).unwrap(), Some(b));
        // Published: no part any more, through any name or descriptor,
        // and no longer to be claimed.
        clear(&file).unwrap();
        clear(&file).unwrap();
        assert!(!replace(&file, a).unwrap());
        assert_eq!(of(&file).unwrap(), None);
        let again = File::open(dir.path().join("p")).unwrap();
        assert_eq!(of(&again).unwrap(), None);
        std::fs::write(dir.path().join("p"), b"12345").unwrap();
        assert_eq!(fresh_len(&file).unwrap(), 5);
        let copy = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("c"))
            .unwrap();
        copy_prefix(&file, &copy, 3).unwrap();
        assert_eq!(std::fs::read(dir.path().join("c")).unwrap(), b"123");
        assert!(copy_prefix(&file, &copy, 9).is_err(), "past the end");
        assert!(!is_shared(root.as_fd()), "a local disk");
    }
}
