//! The integration-test harness: starts a real `ftxd` on a free port with its
//! own temporary root, runs the real `ftx` in batch mode with a timeout, talks
//! raw frames to the server, and compares files and directory trees.
//!
//! Servers speak TLS and require a token by default, as `ftxd` does: the
//! harness gives each one a state directory in its temporary base, reads
//! the token and the certificate fingerprint it prints, and hands them to
//! `ftx` (`FTX_TOKEN`, `--fingerprint`) and to raw connections (which speak
//! TLS through rustls and put the token in `Hello`). A server started with
//! `--plain` and/or `--open` is reached accordingly.
//!
//! Every helper fails with a message that shows what the programs printed, so
//! a failing test explains itself. Nothing here knows the server's or the
//! client's internals: only what the README promises and the protocol
//! library (`ftx::proto`).
//!
//! By job (every public helper is re-exported here, so tests name them
//! `crate::util::NAME`):
//!
//! - `server`: starting `ftxd` ([`Server`]) and the credentials of each
//!   address the harness knows.
//! - `run`: running `ftx` (batch mode or any arguments) and `ftxd`,
//!   killing by PID, reading what they printed ([`Output`]).
//! - [`pty`]: the interactive shell on a pseudo-terminal.
//! - `files`: deterministic data, file and tree comparisons, part files.
//! - `raw`: frames spoken by hand ([`Raw`]).
//! - `proxy`: a TCP proxy that corrupts or holds a stream ([`Proxy`]).
//! - [`fake`]: a scripted server that plays an older `ftxd`.

#![allow(dead_code)]

use std::time::Duration;

pub mod fake;
mod files;
mod proxy;
pub mod pty;
mod raw;
mod run;
mod server;

pub use files::*;
pub use proxy::*;
pub use raw::*;
pub use run::*;
pub use server::*;

/// How long `ftxd` may take to print its `listening on` line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one `ftx` run may take unless a test says otherwise.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `ftxd` may take to exit after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a raw-socket read waits for the server.
pub const RAW_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The `ftxd` executable built for this test run.
pub fn ftxd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ftxd")
}

/// The `ftx` executable built for this test run.
pub fn ftx_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ftx")
}
