//! The two per-connection state machines, in one place for the drivers:
//! [`ServerSession`] (driven by `ftxd`) and [`ClientSession`] (driven by `ftx`).

pub use super::client_session::{integrity_failure, ClientEvent, ClientSession, CommandError};
pub use super::server_session::{PutAccept, ServerEvent, ServerSession, SessionConfig};
