//! [`StoreError`]: why a store operation failed, the protocol code sent
//! for it, and the mapping from the operating system's errors.

use std::io;
use std::path::PathBuf;

use super::MAX_CLASH_ATTEMPTS;
use crate::proto::error::ErrorCode;
use crate::proto::limits::MAX_LIST_ENTRIES;

/// Why a store operation failed. `Display` is readable by a user and names
/// remote paths only (never the server's own directory layout).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The root cannot be served (missing, not a directory, unreadable).
    #[error("root '{}' {reason}", root.display())]
    BadRoot {
        /// The root as configured.
        root: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The server is read-only (configuration or read-only file system).
    #[error("the server is read-only")]
    ReadOnly,
    /// The upload is larger than `--max-file-size`.
    #[error("file of {size} bytes is larger than the server accepts ({max} bytes)")]
    TooLarge {
        /// Declared size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Not enough free space for the upload, or the disk filled up.
    #[error("no space left on the server's disk")]
    NoSpace,
    /// The server's file system takes no file this large (EFBIG).
    #[error("'{0}': file too large for the server's file system")]
    FileTooBig(String),
    /// A symlink would lead outside the root.
    #[error("'{0}': symlink leads outside the root")]
    OutsideRoot(String),
    /// The operation needs a name but got the root.
    #[error("the root directory itself cannot be used here")]
    RootNotAllowed,
    /// No such file or directory.
    #[error("'{0}' not found")]
    NotFound(String),
    /// A file was expected, the name is a directory.
    #[error("'{0}' is a directory")]
    IsDirectory(String),
    /// A directory was expected (a parent, or the listed path).
    #[error("'{0}' is not a directory")]
    NotADirectory(String),
    /// A file was expected, the name is something else (fifo, device).
    #[error("'{0}' is not a regular file")]
    NotRegular(String),
    /// The target exists already.
    #[error("'{0}' already exists")]
    Exists(String),
    /// The directory to remove is not empty.
    #[error("directory '{0}' is not empty")]
    NotEmpty(String),
    /// The operating system refused access.
    #[error("'{0}': permission denied")]
    PermissionDenied(String),
    /// No free `stem_N.ext` name was found for an upload.
    #[error("'{0}' and its first {MAX_CLASH_ATTEMPTS} alternative names are all taken")]
    NoFreeName(String),
    /// The directory holds more than [`MAX_LIST_ENTRIES`] entries.
    #[error("directory '{0}' is too large to list (more than {MAX_LIST_ENTRIES} entries)")]
    TooManyEntries(String),
    /// Upload data out of order or beyond the declared size, or a download
    /// offset past the end of the file.
    #[error("data at offset {got}, expected offset {expected}")]
    BadOffset {
        /// Offset expected (or the file size for a download).
        expected: u64,
        /// Offset given.
        got: u64,
    },
    /// The file changed size while it was being read.
    #[error("'{0}' changed while it was being read")]
    Changed(String),
    /// Another upload of the same name holds its part file.
    #[error("another upload of '{0}' is in progress")]
    InUse(String),
    /// The upload's part was taken over by another server sharing the
    /// root (this one's lock on it lapsed, as a distributed file system's
    /// lock does when a machine is cut off): it stops writing and never
    /// publishes.
    #[error("'{0}': another server took over this upload; reput to continue")]
    TakenOver(String),
    /// Any other I/O failure.
    #[error("'{path}': {source}")]
    Io {
        /// The remote path concerned.
        path: String,
        /// The cause.
        source: io::Error,
    },
}

impl StoreError {
    /// The protocol error code to send for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::BadRoot { .. } => ErrorCode::Io,
            StoreError::ReadOnly => ErrorCode::ReadOnly,
            StoreError::TooLarge { .. } | StoreError::TooManyEntries(_) => ErrorCode::TooLarge,
            StoreError::NoSpace => ErrorCode::NoSpace,
            StoreError::FileTooBig(_) => ErrorCode::TooLarge,
            StoreError::OutsideRoot(_) => ErrorCode::PermissionDenied,
            StoreError::RootNotAllowed => ErrorCode::InvalidName,
            StoreError::NotFound(_) => ErrorCode::NotFound,
            StoreError::IsDirectory(_) => ErrorCode::IsDirectory,
            StoreError::NotADirectory(_) => ErrorCode::NotADirectory,
            StoreError::NotRegular(_) => ErrorCode::PermissionDenied,
            StoreError::Exists(_) | StoreError::NoFreeName(_) => ErrorCode::Exists,
            StoreError::NotEmpty(_) => ErrorCode::NotEmpty,
            StoreError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            StoreError::BadOffset { .. } => ErrorCode::Protocol,
            StoreError::Changed(_) | StoreError::Io { .. } => ErrorCode::Io,
            StoreError::InUse(_) | StoreError::TakenOver(_) => ErrorCode::Busy,
        }
    }

    /// Maps an I/O error on `path` (a remote path) to its typed cause.
    pub(crate) fn from_io(path: &str, e: io::Error) -> StoreError {
        let path = display_name(path);
        match e.raw_os_error() {
            Some(libc::ENOENT) => StoreError::NotFound(path),
            Some(libc::EACCES) | Some(libc::EPERM) => StoreError::PermissionDenied(path),
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => StoreError::NoSpace,
            Some(libc::EFBIG) => StoreError::FileTooBig(path),
            Some(libc::EISDIR) => StoreError::IsDirectory(path),
            Some(libc::ENOTDIR) => StoreError::NotADirectory(path),
            Some(libc::EEXIST) => StoreError::Exists(path),
            Some(libc::ENOTEMPTY) => StoreError::NotEmpty(path),
            Some(libc::EROFS) => StoreError::ReadOnly,
            // A refusal of our own (a part file that is not plainly ours).
            None if e.kind() == io::ErrorKind::PermissionDenied => {
                StoreError::PermissionDenied(path)
            }
            _ => StoreError::Io { path, source: e },
        }
    }
}

/// The root shows as `/` in messages, anything else as itself.
pub(super) fn display_name(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disks_quotas_and_size_limits_are_typed() {
        let of = |errno| StoreError::from_io("d/f", io::Error::from_raw_os_error(errno)).code();
        assert_eq!(of(libc::ENOSPC), ErrorCode::NoSpace);
        assert_eq!(of(libc::EDQUOT), ErrorCode::NoSpace);
        assert_eq!(of(libc::EFBIG), ErrorCode::TooLarge);
        assert_eq!(of(libc::EIO), ErrorCode::Io);
        let big = StoreError::from_io("d/f", io::Error::from_raw_os_error(libc::EFBIG));
        assert!(
            big.to_string()
                .contains("too large for the server's file system"),
            "{big}"
        );
    }
}
