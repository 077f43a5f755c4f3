//! `ftxd`: the one-thread `mio` server. Owns the validated configuration
//! (`config`), the state directory and identity (`state`), the tokens
//! (`tokens`) and who may come in (`access`), the store (every file-system
//! operation, `store`, resolved by `beneath`), the connections (`conn`,
//! over `transport`), the helper threads that make its blocking
//! file-system calls (`disk`) and the event loop (`event_loop`) that drives one
//! `ServerSession` per connection, with the health checks of load
//! balancers (`health`) beside them. Never imports `client` or `shell`,
//! never prints (operators get `log` lines).

mod access;
mod beneath;
pub mod config;
mod conn;
mod digest_cache;
mod disk;
mod event_loop;
mod health;
mod listen;
mod shutdown;
pub mod state;
pub mod store;
pub mod tokens;
mod transport;

pub use access::{Prepared, Security};
pub use config::{AccessConfig, ServerConfig};
pub use event_loop::{run, run_with};
pub use listen::{bind, bind_health};
pub use shutdown::Shutdown;
