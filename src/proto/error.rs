//! Typed protocol errors: the error codes that travel in `Error` frames and
//! the local decoding errors. Owns no I/O; every `Display` is readable by a user.

use std::fmt;

/// The cause of a failed operation, as carried on the wire (a `u16`).
///
/// Codes are stable across protocol versions: new codes may be added, and a
/// peer maps an unknown code to [`ErrorCode::Other`] instead of failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The named file or directory does not exist.
    NotFound,
    /// A file was expected but the name is a directory.
    IsDirectory,
    /// A directory was expected but the name is not one.
    NotADirectory,
    /// The name breaks the remote-name rules (see [`crate::proto::path`]).
    InvalidName,
    /// The server is read-only (or the access does not allow writing).
    ReadOnly,
    /// The file is larger than the server accepts.
    TooLarge,
    /// The server's disk is full.
    NoSpace,
    /// The server cannot take another connection now.
    Busy,
    /// The whole-file digest did not match: the data was corrupted.
    Integrity,
    /// The peer broke the protocol (malformed, unexpected or oversized frame).
    Protocol,
    /// No protocol version is shared by both peers.
    Version,
    /// A deadline passed (handshake, idle, stalled transfer).
    Timeout,
    /// The target already exists (mkdir, rename onto an existing name).
    Exists,
    /// A directory to remove is not empty.
    NotEmpty,
    /// The operating system refused access.
    PermissionDenied,
    /// The transfer was cancelled by the peer.
    Cancelled,
    /// Too many connections from the same address.
    TooManyFromAddress,
    /// A token is required or the one given is not valid (reserved for access tokens).
    Unauthorized,
    /// Any other I/O failure on the server.
    Io,
    /// A code this peer does not know (carries the raw value).
    Other(u16),
}

impl ErrorCode {
    /// The wire value of this code.
    pub fn to_u16(self) -> u16 {
        match self {
            ErrorCode::NotFound => 1,
            ErrorCode::IsDirectory => 2,
            ErrorCode::NotADirectory => 3,
            ErrorCode::InvalidName => 4,
            ErrorCode::ReadOnly => 5,
            ErrorCode::TooLarge => 6,
            ErrorCode::NoSpace => 7,
            ErrorCode::Busy => 8,
            ErrorCode::Integrity => 9,
            ErrorCode::Protocol => 10,
            ErrorCode::Version => 11,
            ErrorCode::Timeout => 12,
            ErrorCode::Exists => 13,
            ErrorCode::NotEmpty => 14,
            ErrorCode::PermissionDenied => 15,
            ErrorCode::Cancelled => 16,
            ErrorCode::TooManyFromAddress => 17,
            ErrorCode::Unauthorized => 18,
            ErrorCode::Io => 19,
            ErrorCode::Other(v) => v,
        }
    }

    /// The code for a wire value; unknown values become [`ErrorCode::Other`].
    pub fn from_u16(v: u16) -> ErrorCode {
        match v {
            1 => ErrorCode::NotFound,
            2 => ErrorCode::IsDirectory,
            3 => ErrorCode::NotADirectory,
            4 => ErrorCode::InvalidName,
            5 => ErrorCode::ReadOnly,
            6 => ErrorCode::TooLarge,
            7 => ErrorCode::NoSpace,
            8 => ErrorCode::Busy,
            9 => ErrorCode::Integrity,
            10 => ErrorCode::Protocol,
            11 => ErrorCode::Version,
            12 => ErrorCode::Timeout,
            13 => ErrorCode::Exists,
            14 => ErrorCode::NotEmpty,
            15 => ErrorCode::PermissionDenied,
            16 => ErrorCode::Cancelled,
            17 => ErrorCode::TooManyFromAddress,
            18 => ErrorCode::Unauthorized,
            19 => ErrorCode::Io,
            other => ErrorCode::Other(other),
        }
    }

    /// The cause in plain words, as the client shows it.
    pub fn describe(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not found",
            ErrorCode::IsDirectory => "is a directory",
            ErrorCode::NotADirectory => "not a directory",
            ErrorCode::InvalidName => "invalid name",
            ErrorCode::ReadOnly => "read-only",
            ErrorCode::TooLarge => "too large",
            ErrorCode::NoSpace => "no space left",
            ErrorCode::Busy => "busy",
            ErrorCode::Integrity => "integrity check failed",
            ErrorCode::Protocol => "protocol error",
            ErrorCode::Version => "unsupported protocol version",
            ErrorCode::Timeout => "timed out",
            ErrorCode::Exists => "already exists",
            ErrorCode::NotEmpty => "directory not empty",
            ErrorCode::PermissionDenied => "permission denied",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::TooManyFromAddress => "too many connections from your address",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Io => "server I/O error",
            ErrorCode::Other(_) => "unknown error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The detail of an [`ErrorCode::Integrity`] failure, on either side: the
/// bytes received do not hash to the sender's digest.
pub const DIGEST_MISMATCH: &str = "BLAKE3 digest of the received data does not match";

/// An error as reported by the peer in an `Error` frame: a code and a detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}{sep}{message}", sep = if .message.is_empty() { "" } else { ": " })]
pub struct RemoteError {
    /// What went wrong.
    pub code: ErrorCode,
    /// Human-readable detail (may be empty); never trusted for control flow.
    pub message: String,
}

impl RemoteError {
    /// A remote error with a code and detail.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> RemoteError {
        RemoteError {
            code,
            message: message.into(),
        }
    }
}

/// Why bytes from the peer could not be decoded. Every variant is fatal for
/// the connection: the stream can no longer be trusted to be in sync.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The length prefix announces a frame larger than [`crate::proto::limits::MAX_FRAME_LEN`].
    #[error("frame of {0} bytes exceeds the limit")]
    FrameTooLarge(u32),
    /// A frame with a zero length (no type byte).
    #[error("empty frame")]
    EmptyFrame,
    /// The frame type byte is not a known message.
    #[error("unknown frame type 0x{0:02x}")]
    UnknownType(u8),
    /// The frame ended before a field was complete.
    #[error("truncated frame (in {0})")]
    Truncated(&'static str),
    /// A frame carried bytes after its last field.
    #[error("trailing bytes after frame type 0x{0:02x}")]
    TrailingBytes(u8),
    /// A string field is not valid UTF-8 or too long.
    #[error("malformed string ({0})")]
    BadString(&'static str),
    /// A field holds a value that is not allowed.
    #[error("bad value ({0})")]
    BadValue(&'static str),
    /// The peer closed the stream in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    UnexpectedEof,
}
