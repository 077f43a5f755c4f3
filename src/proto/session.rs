//! A leftover alias for the two per-connection state machines,
//! [`ServerSession`] and [`ClientSession`]: everything outside `src/server`
//! names [`super::server_session`] and [`super::client_session`] directly,
//! and this file goes once the server's imports do too.

pub use super::client_session::{integrity_failure, ClientEvent, ClientSession, CommandError};
pub use super::server_session::{PutAccept, ServerEvent, ServerSession, SessionConfig};
