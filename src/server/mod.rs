//! `ftxd`: the one-thread `mio` server. Owns the validated configuration,
//! the store (every file-system operation) and the event loop that drives
//! one `ServerSession` per connection. Never imports `client` or `shell`.

pub mod config;
pub mod store;
