//! What can go wrong in a client call ([`ClientError`]) and why a
//! connection was lost ([`LostReason`]), in the words the shell prints.

use std::fmt;
use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::proto::error::{ErrorCode, RemoteError};

use super::known_hosts::IdentityChanged;

/// Why a connection was lost. Kept by the [`Client`](super::Client), which then refuses
/// every later request with [`ClientError::NotConnected`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LostReason {
    /// The server closed the connection (end of stream, or a reset)
    /// without saying why: it stopped, crashed or was killed.
    #[error("server closed the connection")]
    ServerClosed,
    /// The connection ended with this error: one the server sent when it
    /// closed (idle timeout, a protocol error it saw, access refused, ...)
    /// or a protocol violation by the server found here.
    #[error("{0}")]
    Ended(RemoteError),
    /// The server did not answer within [`REPLY_TIMEOUT`](super::REPLY_TIMEOUT).
    #[error("timed out waiting for the server")]
    NoAnswer,
    /// The network failed (the system's words).
    #[error("network error: {0}")]
    Network(String),
    /// This side closed the connection ([`Client::close`](super::Client::close)).
    #[error("closed")]
    Closed,
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

/// What went wrong in a client operation.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `HOST:PORT` as given.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The server refused or failed the request (the connection is usable).
    #[error("{0}")]
    Remote(RemoteError),
    /// The connection was lost during this call (or, when connecting, the
    /// server refused it). Returned once; later calls get
    /// [`ClientError::NotConnected`].
    #[error("connection lost: {0}")]
    Lost(LostReason),
    /// The connection was lost before this call (for this reason): nothing
    /// was sent.
    #[error("not connected (connection lost)")]
    NotConnected(LostReason),
    /// A local file could not be read or written.
    #[error("local file '{}': {}", .path.display(), local_reason(.source))]
    Local {
        /// The local path involved.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The local source is not a regular file.
    #[error("local file '{}': is a directory", .0.display())]
    LocalNotAFile(PathBuf),
    /// The local file changed size while it was being sent.
    #[error("local file '{}' changed while it was being sent", .0.display())]
    LocalChanged(PathBuf),
    /// The server is too old for the request (no [`FEATURE_ATTRS`](crate::proto::message::FEATURE_ATTRS)).
    #[error("not supported by this server")]
    Unsupported,
    /// The user cancelled the transfer ([`Progress::cancelled`](super::Progress::cancelled)); the
    /// connection is usable and the transfer ended like a failed one
    /// (an interrupted part stays resumable).
    #[error("cancelled")]
    Cancelled,
    /// The server presented another certificate than the pinned one.
    #[error("{0}")]
    IdentityChanged(IdentityChanged),
    /// TLS was asked for but the server answered in plain frames.
    #[error(fmt = not_tls)]
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

/// [`ClientError::NotTls`] in words. An answer that came before TLS
/// could be anyone's (anyone on the path could have written it): only
/// its code is shown, in ftx's own words.
fn not_tls(addr: &str, answer: &Option<RemoteError>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match answer {
        Some(e) => match e.code {
            ErrorCode::Busy => write!(f, "busy: the server has too many connections"),
            ErrorCode::TooManyFromAddress => {
                write!(f, "too many connections from your address")
            }
            code => write!(f, "the server refused the connection: {code}"),
        },
        None => write!(
            f,
            "the server at {addr} does not speak TLS (is ftxd running with --plain?); \
             use ftx --plain only on a trusted network"
        ),
    }
}

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
mod tests {
    use super::*;

    /// Every error in the words the shell prints.
    #[test]
    fn each_error_in_words() {
        let io = |k: io::ErrorKind| io::Error::from(k);
        let lost = |why| ClientError::Lost(why);
        for (e, want) in [
            (
                ClientError::Connect {
                    addr: "h:1".into(),
                    source: io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"),
                },
                "cannot connect to h:1: TLS handshake timed out",
            ),
            (
                ClientError::Remote(RemoteError::new(ErrorCode::NotFound, "")),
                "not found",
            ),
            (
                ClientError::Remote(RemoteError::new(ErrorCode::NotFound, "'a'")),
                "not found: 'a'",
            ),
            (
                lost(LostReason::ServerClosed),
                "connection lost: server closed the connection",
            ),
            (
                lost(LostReason::NoAnswer),
                "connection lost: timed out waiting for the server",
            ),
            (
                lost(LostReason::Network("no route".into())),
                "connection lost: network error: no route",
            ),
            (
                ClientError::NotConnected(LostReason::NoAnswer),
                "not connected (connection lost)",
            ),
            (
                ClientError::Local {
                    path: "d/x".into(),
                    source: io(io::ErrorKind::NotFound),
                },
                "local file 'd/x': not found",
            ),
            (
                ClientError::LocalNotAFile("d".into()),
                "local file 'd': is a directory",
            ),
            (
                ClientError::LocalChanged("x".into()),
                "local file 'x' changed while it was being sent",
            ),
            (ClientError::Unsupported, "not supported by this server"),
            (ClientError::Cancelled, "cancelled"),
            (
                ClientError::NotTls {
                    addr: "h:1".into(),
                    answer: None,
                },
                "the server at h:1 does not speak TLS (is ftxd running with --plain?); \
                 use ftx --plain only on a trusted network",
            ),
            (
                ClientError::IdentityChanged(IdentityChanged {
                    host: "h:1".into(),
                    expected: "SHA256:a".into(),
                    presented: "SHA256:b".into(),
                }),
                "WARNING: the server's identity has changed: h:1 presented certificate \
                 SHA256:b but SHA256:a was expected; this is a possible attack (someone \
                 may be intercepting the connection), or the server got a new key; not \
                 connecting",
            ),
        ] {
            assert_eq!(e.to_string(), want);
        }
    }

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
