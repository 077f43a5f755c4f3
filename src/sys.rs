//! The system calls `rustix` does not wrap safely, each in one small safe
//! function: `sync_file_range` for ftxd's writeback (started, or waited
//! for), and `sigaction` for the shell, which ignores Ctrl-C while a local
//! command runs. This is the only module of the library that uses
//! `unsafe` (the crate denies it everywhere else): the rest (`openat2`,
//! `renameat2`, `flock`, `fstatat`, `fallocate`, extended attributes,
//! resource limits, the terminal's echo...) goes through `rustix`'s safe
//! wrappers.
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

/// `sync_file_range(fd, offset, len, WAIT_BEFORE | WRITE | WAIT_AFTER)`:
/// writes that range of the file to disk and waits for it (no metadata,
/// no device cache flush: an `fdatasync` after it has little left to do).
pub(crate) fn write_range(fd: BorrowedFd<'_>, offset: u64, len: u64) -> io::Result<()> {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: as in `start_writeback`: a borrowed descriptor, integers
    // only, the result checked.
    let rc = unsafe { libc::sync_file_range(fd.as_raw_fd(), offset, len, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// SIGINT and SIGQUIT ignored while this lives (the terminal sends them to
/// the shell and to a local command it runs alike); the previous handlers
/// come back on drop.
pub(crate) struct IgnoreInterrupts {
    saved: Vec<(libc::c_int, libc::sigaction)>,
}

impl IgnoreInterrupts {
    pub(crate) fn new() -> IgnoreInterrupts {
        let mut saved = Vec::new();
        for sig in [libc::SIGINT, libc::SIGQUIT] {
            // SAFETY: sigaction with a zeroed (SIG_DFL-like) struct whose
            // handler is SIG_IGN and an empty mask; `old` is written by the
            // kernel and only handed back to sigaction.
            unsafe {
                let mut ignore: libc::sigaction = std::mem::zeroed();
                ignore.sa_sigaction = libc::SIG_IGN;
                libc::sigemptyset(&mut ignore.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &ignore, &mut old) == 0 {
                    saved.push((sig, old));
                }
            }
        }
        IgnoreInterrupts { saved }
    }
}

impl Drop for IgnoreInterrupts {
    fn drop(&mut self) {
        for (sig, old) in &self.saved {
            // SAFETY: restores exactly what sigaction returned for `sig`.
            unsafe {
                libc::sigaction(*sig, old, std::ptr::null_mut());
            }
        }
    }
}
