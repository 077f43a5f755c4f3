//! The system calls `rustix` does not wrap, each in one small safe
//! function. This is the only place where `ftxd` and the part files use
//! `unsafe`: everything else (`openat2`, `renameat2`, `flock`, `fstatat`,
//! `fallocate`, extended attributes, resource limits...) goes through
//! `rustix`'s safe wrappers.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `sync_file_range(fd, offset, len, SYNC_FILE_RANGE_WRITE)`: starts
/// writing that range of the file to disk without waiting for it.
pub(crate) fn start_writeback(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    // SAFETY: `fd` is borrowed, so it stays open for the whole call; the
    // call takes only integers (no pointer, no memory is read or written
    // by the kernel on our behalf) and its result is checked.
    let rc =
        unsafe { libc::sync_file_range(fd.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
