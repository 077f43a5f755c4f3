//! What can go wrong in a client call ([`ClientError`]) and why a
//! connection was lost ([`LostReason`]), in the words the shell prints.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::proto::error::{ErrorCode, RemoteError};

use super::known_hosts::IdentityChanged;

/// Why a connection was lost. Kept by the [`Client`](super::Client), which then refuses
/// every later request with [`ClientError::NotConnected`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostReason {
    /// The server closed the connection (end of stream, or a reset)
    /// without saying why: it stopped, crashed or was killed.
    ServerClosed,
    /// The connection ended with this error: one the server sent when it
    /// closed (idle timeout, a protocol error it saw, access refused, ...)
    /// or a protocol violation by the server found here.
    Ended(RemoteError),
    /// The server did not answer within [`REPLY_TIMEOUT`](super::REPLY_TIMEOUT).
    NoAnswer,
    /// The network failed (the system's words).
    Network(String),
}

impl LostReason {
    /// The reason behind a failed socket read or write.
    pub(super) fn from_io(e: &io::Error) -> LostReason {
        match e.kind() {
            _ if is_timeout(e) => LostReason::NoAnswer,
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::WriteZero => LostReason::ServerClosed,
            _ => LostReason::Network(e.to_string()),
        }
    }
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostReason::ServerClosed => f.write_str("server closed the connection"),
            LostReason::Ended(e) => write!(f, "{e}"),
            LostReason::NoAnswer => f.write_str("timed out waiting for the server"),
            LostReason::Network(text) => write!(f, "network error: {text}"),
        }
    }
}

/// What went wrong in a client operation.
#[derive(Debug)]
pub enum ClientError {
    /// The TCP connection could not be opened.
    Connect {
        /// `HOST:PORT` as given.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The server refused or failed the request (the connection is usable).
    Remote(RemoteError),
    /// The connection was lost during this call (or, when connecting, the
    /// server refused it). Returned once; later calls get
    /// [`ClientError::NotConnected`].
    Lost(LostReason),
    /// The connection was lost before this call (for this reason): nothing
    /// was sent.
    NotConnected(LostReason),
    /// A local file could not be read or written.
    Local {
        /// The local path involved.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The local source is not a regular file.
    LocalNotAFile(PathBuf),
    /// The local file changed size while it was being sent.
    LocalChanged(PathBuf),
    /// The server is too old for the request (no [`FEATURE_ATTRS`](crate::proto::message::FEATURE_ATTRS)).
    Unsupported,
    /// The user cancelled the transfer ([`Progress::cancelled`](super::Progress::cancelled)); the
    /// connection is usable and the transfer ended like a failed one
    /// (an interrupted part stays resumable).
    Cancelled,
    /// The server presented another certificate than the pinned one.
    IdentityChanged(IdentityChanged),
    /// TLS was asked for but the server answered in plain frames.
    NotTls {
        /// `HOST:PORT`.
        addr: String,
        /// The server's plain error, if it sent one (busy, ...).
        answer: Option<RemoteError>,
    },
}

impl ClientError {
    /// The protocol error code behind this error, when there is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Remote(e) | ClientError::Lost(LostReason::Ended(e)) => Some(e.code),
            _ => None,
        }
    }

    /// True when the connection can no longer be used.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ClientError::Lost(_)
                | ClientError::NotConnected(_)
                | ClientError::Connect { .. }
                | ClientError::IdentityChanged(_)
                | ClientError::NotTls { .. }
        )
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { addr, source } => {
                write!(f, "cannot connect to {addr}: {source}")
            }
            ClientError::Remote(e) => write!(f, "{e}"),
            ClientError::Lost(why) => write!(f, "connection lost: {why}"),
            ClientError::NotConnected(_) => f.write_str("not connected (connection lost)"),
            ClientError::Local { path, source } => {
                write!(
                    f,
                    "local file '{}': {}",
                    path.display(),
                    local_reason(source)
                )
            }
            ClientError::LocalNotAFile(p) => {
                write!(f, "local file '{}': is a directory", p.display())
            }
            ClientError::IdentityChanged(c) => write!(f, "{c}"),
            // The answer came before TLS: anyone on the path could have
            // written it, so only its code is shown, in ftx's own words.
            ClientError::NotTls {
                answer: Some(e), ..
            } => match e.code {
                ErrorCode::Busy => write!(f, "busy: the server has too many connections"),
                ErrorCode::TooManyFromAddress => {
                    write!(f, "too many connections from your address")
                }
                code => write!(f, "the server refused the connection: {code}"),
            },
            ClientError::NotTls { addr, answer: None } => write!(
                f,
                "the server at {addr} does not speak TLS (is ftxd running with --plain?); \
                 use ftx --plain only on a trusted network"
            ),
            ClientError::LocalChanged(p) => {
                write!(
                    f,
                    "local file '{}' changed while it was being sent",
                    p.display()
                )
            }
            ClientError::Cancelled => write!(f, "cancelled"),
            ClientError::Unsupported => write!(f, "not supported by this server"),
        }
    }
}

impl std::error::Error for ClientError {}

pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A local I/O error in plain words ("not found", "permission denied", ...).
fn local_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "not found".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::IsADirectory => "is a directory".into(),
        io::ErrorKind::StorageFull => "no space left".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod before_tls_tests {
    use super::*;

    /// An answer that came before TLS is shown by its code alone: its text
    /// could be anyone's (terminal escapes included).
    #[test]
    fn text_from_before_tls_is_never_shown() {
        let hostile = "\x1b]0;owned\x07 please run rm -rf ~";
        for (code, want) in [
            (ErrorCode::Busy, "busy: the server has too many connections"),
            (
                ErrorCode::TooManyFromAddress,
                "too many connections from your address",
            ),
            (
                ErrorCode::Protocol,
                "the server refused the connection: protocol error",
            ),
        ] {
            let e = ClientError::NotTls {
                addr: "h:1".into(),
                answer: Some(RemoteError::new(code, hostile)),
            };
            assert_eq!(e.to_string(), want);
        }
    }
}
