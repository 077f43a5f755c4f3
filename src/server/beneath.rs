//! Path resolution that cannot leave the root, by construction.
//!
//! Every path the store touches is resolved here relative to a descriptor
//! of the root, with the kernel's help: `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS)`, which refuses (`EXDEV`) any `..` or symlink that
//! would climb above the root, absolute symlinks included, and never follows
//! `/proc` magic links. Where `openat2` does not exist (`ENOSYS`: kernels
//! before 5.6, some sandboxes) the same rules are applied by a walk that
//! opens one component at a time with `O_NOFOLLOW` and reads each symlink
//! itself. The store then acts only through `*at` calls on a parent
//! descriptor and a single plain name, so a path string is never handed to
//! the kernel from the process's working directory. This module knows
//! nothing of remote-path syntax beyond "a plain component"; it does no
//! logging and keeps no state except whether `openat2` is available (and,
//! in tests only, the stale name cache of [`crate::lookups`], which its
//! unlinks and renames update as the kernel's own cache is).
//!
//! Every system call goes through `rustix`, whose wrappers are safe: names
//! are `&CStr`, descriptors are borrowed (`BorrowedFd`) for the length of
//! the call and new ones come back owned (`OwnedFd`), so nothing here can
//! use a closed descriptor, leak one, or read past a buffer; no `unsafe`.

use std::ffi::{CStr, CString};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;

/// Most symlinks followed while resolving one path (as the kernel's 40).
const MAX_SYMLINKS: usize = 40;
/// How often an `openat2` that lost a race with a rename (`EAGAIN`) is
/// retried before the error is returned.
const MAX_RACE_RETRIES: usize = 16;
/// Longest symlink target read by the fallback walk.
const MAX_LINK_TARGET: usize = 4096;

/// Cleared the first time `openat2` answers `ENOSYS`.
static HAVE_OPENAT2: AtomicBool = AtomicBool::new(true);

/// Opens the root directory itself (an ordinary open: the root is the
/// operator's choice, not the client's).
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    let c = cstring(path.as_os_str().as_bytes())?;
    Ok(rustix::fs::open(
        c.as_c_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens `rel` (a `/`-separated path relative to `root`; empty for the root)
/// with open `flags`, following symlinks only while they stay beneath the
/// root. Escapes fail with `EXDEV`. With `O_NOFOLLOW` in `flags` a final
/// symlink is not followed (with `O_PATH` it is opened itself).
pub fn open(root: BorrowedFd<'_>, rel: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::CLOEXEC;
    if HAVE_OPENAT2.load(Ordering::Relaxed) {
        match openat2_beneath(root, rel, flags) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                HAVE_OPENAT2.store(false, Ordering::Relaxed);
            }
            other => return other,
        }
    }
    walk(root, rel, flags)
}

/// Opens the directory `rel` beneath `root` for reading (listing, fsync,
/// `*at` calls).
pub fn open_dir(root: BorrowedFd<'_>, rel: &[u8]) -> io::Result<OwnedFd> {
    open(root, rel, OFlags::RDONLY | OFlags::DIRECTORY)
}

/// Splits `rel` into its parent directory, opened beneath `root`, and its
/// last component, which must be a plain name (not empty, `.`, `..`, and
/// without `/`); the caller then acts on that name with `*at` calls, which
/// by construction cannot leave the parent.
pub fn parent_fd_and_name(root: BorrowedFd<'_>, rel: &[u8]) -> io::Result<(OwnedFd, CString)> {
    let (parent, name) = match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&rel[..0], rel),
    };
    check_plain(name)?;
    Ok((open_dir(root, parent)?, cstring(name)?))
}

/// Metadata of `name` in `dir`, of a symlink itself rather than its target
/// (opened with `O_PATH | O_NOFOLLOW`, then `fstat`).
pub fn lstat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Metadata> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    File::from(fd).metadata()
}

/// `mkdirat(dir, name, mode)`.
pub fn mkdir_at(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode))?)
}

/// Removes `name` in `dir`: a directory (`rmdir`) or anything else, a
/// symlink itself included (`unlink`).
pub fn unlink_at(dir: BorrowedFd<'_>, name: &CStr, is_dir: bool) -> io::Result<()> {
    let flags = if is_dir {
        AtFlags::REMOVEDIR
    } else {
        AtFlags::empty()
    };
    crate::lookups::forget(dir, name);
    Ok(rustix::fs::unlinkat(dir, name, flags)?)
}

/// Creates `name` in `dir` as a new file (`O_EXCL`: never an existing file,
/// never through a symlink), opened for reading and writing (a resumed
/// upload's copied prefix is hashed from it).
pub fn create_at(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<File> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )?;
    Ok(File::from(fd))
}

/// Hard-links `from` in `from_dir` as `to` in `to_dir` (fails with `EEXIST`
/// if `to` exists; a symlink `from` is linked itself, not followed).
pub fn link_at(
    from_dir: BorrowedFd<'_>,
    from: &CStr,
    to_dir: BorrowedFd<'_>,
    to: &CStr,
) -> io::Result<()> {
    Ok(rustix::fs::linkat(
        from_dir,
        from,
        to_dir,
        to,
        AtFlags::empty(),
    )?)
}

/// `renameat2(from_dir, from, to_dir, to, flags)`: no flags replaces `to`,
/// `RenameFlags::NOREPLACE` fails with `EEXIST` instead.
pub fn rename_at(
    from_dir: BorrowedFd<'_>,
    from: &CStr,
    to_dir: BorrowedFd<'_>,
    to: &CStr,
    flags: RenameFlags,
) -> io::Result<()> {
    crate::lookups::forget(from_dir, from);
    crate::lookups::forget(to_dir, to);
    Ok(rustix::fs::renameat_with(
        from_dir, from, to_dir, to, flags,
    )?)
}

/// Free bytes for unprivileged users on the file system holding `dir`.
pub fn free_space(dir: BorrowedFd<'_>) -> Option<u64> {
    space(dir).ok().map(|(_, avail)| avail)
}

/// Size of the file system holding `fd`, and the bytes an unprivileged
/// writer may still use, from `fstatvfs`.
pub fn space(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstatvfs(fd)?;
    let frsize = st.f_frsize;
    Ok((
        st.f_blocks.saturating_mul(frsize),
        st.f_bavail.saturating_mul(frsize),
    ))
}

/// `rel` with `/` appended and then `name` (for an entry of a listed
/// directory; the root is the empty path).
pub fn join(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rel.len() + 1 + name.len());
    out.extend_from_slice(rel);
    if !rel.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

fn check_plain(name: &[u8]) -> io::Result<()> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    } else {
        Ok(())
    }
}

fn openat2_beneath(root: BorrowedFd<'_>, rel: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    let c = cstring(if rel.is_empty() { b"." } else { rel })?;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    for _ in 0..MAX_RACE_RETRIES {
        match rustix::fs::openat2(root, c.as_c_str(), flags, Mode::empty(), resolve) {
            Err(Errno::AGAIN) => continue,
            other => return Ok(other?),
        }
    }
    Err(io::Error::from_raw_os_error(libc::EAGAIN))
}

/// The fallback: the same rules as `RESOLVE_BENEATH`, one component at a
/// time. Each step opens a single name with `O_NOFOLLOW` relative to the
/// descriptor of the directory reached so far, so a concurrent swap of a
/// directory for a symlink is caught (`ELOOP` or the link is read and
/// checked), never followed blindly. `..` pops back to the previous
/// directory descriptor and fails with `EXDEV` at the root; absolute
/// symlinks fail with `EXDEV`, as with `openat2`.
pub(crate) fn walk(root: BorrowedFd<'_>, rel: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    let nofollow = flags.contains(OFlags::NOFOLLOW);
    // Components still to resolve, the next one last.
    let mut todo: Vec<Vec<u8>> = rel
        .split(|&b| b == b'/')
        .rev()
        .map(<[u8]>::to_vec)
        .collect();
    // Directories entered below the root; the current one is the last.
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut links = 0usize;
    while let Some(comp) = todo.pop() {
        let last = todo.is_empty();
        let cur = stack.last().map(|f| f.as_fd()).unwrap_or(root);
        match comp.as_slice() {
            b"" | b"." => {}
            b".." => {
                if stack.pop().is_none() {
                    return Err(io::Error::from_raw_os_error(libc::EXDEV));
                }
            }
            name if last => {
                let c = cstring(name)?;
                let opened = openat(cur, &c, flags | OFlags::NOFOLLOW);
                let target = match opened {
                    Ok(fd) if nofollow || !flags.contains(OFlags::PATH) => return Ok(fd),
                    // O_PATH without O_NOFOLLOW: the caller wants a final
                    // symlink followed; O_NOFOLLOW opened the link itself.
                    Ok(fd) => {
                        if !File::from(fd.try_clone()?).metadata()?.is_symlink() {
                            return Ok(fd);
                        }
                        read_link(fd.as_fd(), c"")?
                    }
                    // A symlink met with O_NOFOLLOW: ELOOP, or ENOTDIR when
                    // O_DIRECTORY is asked too (a link to a directory).
                    Err(e)
                        if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR))
                            && !nofollow =>
                    {
                        match read_link(cur, &c) {
                            Ok(t) => t,
                            Err(_) => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                };
                follow(&mut todo, &mut links, &target)?;
                continue;
            }
            name => {
                let c = cstring(name)?;
                let fd = openat(cur, &c, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC)?;
                let meta = File::from(fd.try_clone()?).metadata()?;
                if meta.is_symlink() {
                    let target = read_link(fd.as_fd(), c"")?;
                    follow(&mut todo, &mut links, &target)?;
                } else if meta.is_dir() {
                    stack.push(fd);
                } else {
                    return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
                }
                continue;
            }
        }
        if last {
            // The path ended on `.` or `..`: reopen the directory reached.
            let cur = stack.last().map(|f| f.as_fd()).unwrap_or(root);
            return openat(cur, c".", flags - OFlags::NOFOLLOW);
        }
    }
    // An empty path: the root itself.
    openat(root, c".", flags - OFlags::NOFOLLOW)
}

/// `openat(dir, name, flags)`, no mode (never creates).
fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: OFlags) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?)
}

/// Queues the components of a symlink's target in front of the rest.
fn follow(todo: &mut Vec<Vec<u8>>, links: &mut usize, target: &[u8]) -> io::Result<()> {
    *links += 1;
    if *links > MAX_SYMLINKS {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    if target.first() == Some(&b'/') || target.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    }
    todo.extend(target.split(|&b| b == b'/').rev().map(<[u8]>::to_vec));
    Ok(())
}

/// The target of the symlink `name` in `dir` (`c""`: `dir` is an `O_PATH`
/// descriptor of the link itself); at most [`MAX_LINK_TARGET`] bytes.
fn read_link(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; MAX_LINK_TARGET + 1];
    let n = rustix::fs::readlinkat_raw(dir, name, &mut buf[..])?;
    if n > MAX_LINK_TARGET {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    buf.truncate(n);
    Ok(buf)
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    type Opener = fn(BorrowedFd<'_>, &[u8], OFlags) -> io::Result<OwnedFd>;

    /// Both resolvers must agree on every case.
    const RESOLVERS: [(&str, Opener); 2] = [("openat2", open), ("walk", walk)];

    fn tree() -> (tempfile::TempDir, OwnedFd) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let out = t.path().join("outside");
        fs::create_dir_all(root.join("d/e")).unwrap();
        fs::create_dir(&out).unwrap();
        fs::write(out.join("secret"), b"s").unwrap();
        fs::write(root.join("d/e/f"), b"f").unwrap();
        symlink("d/e/f", root.join("in_file")).unwrap();
        symlink("../e", root.join("d/e/up")).unwrap();
        symlink("d", root.join("in_dir")).unwrap();
        symlink("in_dir", root.join("chain")).unwrap();
        symlink("../outside/secret", root.join("rel_out")).unwrap();
        symlink(out.join("secret"), root.join("abs_out")).unwrap();
        symlink(root.join("d"), root.join("abs_in")).unwrap();
        symlink("d/../..", root.join("up_out")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        symlink("/proc/self/root", root.join("magic")).unwrap();
        let fd = open_root(&root).unwrap();
        (t, fd)
    }

    fn errno(r: io::Result<OwnedFd>) -> i32 {
        r.unwrap_err().raw_os_error().unwrap()
    }

    /// A final symlink to a directory inside the root opens as that
    /// directory when a directory is asked for (as `ls LINK` does), with
    /// either resolver.
    #[test]
    fn a_link_to_a_directory_opens_as_one() {
        let (_t, root) = tree();
        for (what, op) in RESOLVERS {
            for p in ["in_dir", "chain", "abs_in"] {
                let r = op(
                    root.as_fd(),
                    p.as_bytes(),
                    OFlags::RDONLY | OFlags::DIRECTORY,
                );
                match (p, r) {
                    ("abs_in", r) => assert_eq!(errno(r), libc::EXDEV, "{what} {p}"),
                    (_, r) => assert!(r.is_ok(), "{what} {p}: {r:?}"),
                }
            }
        }
    }

    #[test]
    fn inside_paths_resolve() {
        let (_t, root) = tree();
        for (what, op) in RESOLVERS {
            for p in [
                "",
                "d",
                "d/e/f",
                "in_file",
                "in_dir/e/f",
                "chain/e/f",
                "d/e/up/f",
                "d/./e",
            ] {
                let r = op(root.as_fd(), p.as_bytes(), OFlags::RDONLY);
                assert!(r.is_ok(), "{what} {p}: {r:?}");
            }
        }
    }

    #[test]
    fn escapes_are_refused() {
        let (_t, root) = tree();
        for (what, op) in RESOLVERS {
            for p in [
                "..",
                "../outside/secret",
                "d/../..",
                "rel_out",
                "abs_out",
                "abs_in",
                "up_out",
                "up_out/outside/secret",
                "chain/../../outside",
                "magic/etc",
            ] {
                let e = errno(op(root.as_fd(), p.as_bytes(), OFlags::RDONLY));
                assert!(
                    e == libc::EXDEV || e == libc::ELOOP,
                    "{what} {p}: errno {e}"
                );
            }
            assert_eq!(
                errno(op(root.as_fd(), b"loop", OFlags::RDONLY)),
                libc::ELOOP,
                "{what}"
            );
            assert_eq!(
                errno(op(root.as_fd(), b"d/e/f/x", OFlags::RDONLY)),
                libc::ENOTDIR,
                "{what}"
            );
            assert_eq!(
                errno(op(root.as_fd(), b"nope", OFlags::RDONLY)),
                libc::ENOENT,
                "{what}"
            );
        }
    }

    #[test]
    fn nofollow_opens_the_link_itself() {
        let (_t, root) = tree();
        for (what, op) in RESOLVERS {
            for p in ["rel_out", "abs_out", "in_dir/e/up"] {
                let fd = op(root.as_fd(), p.as_bytes(), OFlags::PATH | OFlags::NOFOLLOW).unwrap();
                assert!(
                    File::from(fd).metadata().unwrap().is_symlink(),
                    "{what} {p}"
                );
            }
            let fd = op(root.as_fd(), b"in_dir", OFlags::PATH).unwrap();
            assert!(File::from(fd).metadata().unwrap().is_dir(), "{what}");
        }
    }

    #[test]
    fn parent_and_name_need_a_plain_name() {
        let (_t, root) = tree();
        let (_dir, name) = parent_fd_and_name(root.as_fd(), b"in_dir/e/f").unwrap();
        assert_eq!(name.to_bytes(), b"f");
        for bad in [&b""[..], b"d/..", b"d/.", b"d/"] {
            assert!(parent_fd_and_name(root.as_fd(), bad).is_err());
        }
        assert_eq!(
            parent_fd_and_name(root.as_fd(), b"rel_out/x")
                .unwrap_err()
                .raw_os_error(),
            Some(libc::EXDEV)
        );
    }
}
