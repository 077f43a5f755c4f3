//! ftx: fast, safe TCP file transfer — a one-thread `mio` server (`ftxd`)
//! and a shell client (`ftx`).
//!
//! # Module map and layering
//!
//! - [`proto`]: the protocol, no I/O at all (no sockets, no files, no clock,
//!   no UI crates). Its module documentation is the protocol specification;
//!   `client_session` and `server_session` are the two state machines. Its
//!   test drivers (`testing`, `model`) exist only in tests and with the
//!   `testing` feature (the fuzz targets).
//! - [`server`]: `ftxd` — the one `mio` event loop, connections (their
//!   driving, and the answers to their requests), who may come in, the
//!   transport (plain or TLS), the state directory, the store (safe paths
//!   beneath the root, uploads with clash names, temp files, fsync,
//!   rename). Never imports `client` or `shell`.
//! - [`client`]: the API the shell calls; drives a `ClientSession` over a
//!   socket and handles local files (`put.rs`, `get.rs`; the error types
//!   in `error.rs`). Never prints.
//! - [`fingerprint`]: the `SHA256:...` certificate fingerprint that
//!   `ftxd` prints and `ftx` pins (pure computation, used by both sides).
//! - [`partial`]: resumable part files shared by both sides (fixed hidden
//!   names, cross-process locks, preallocation, the stale-part sweep).
//! - [`part_mark`]: the mark (an extended attribute) that makes a
//!   server's part file a part, read through the open file, never a name.
//! - [`lookups`]: test-only fault injection, name lookups answered from a
//!   stale cache as a distributed file system's client does.
//! - [`prefix`]: the BLAKE3 digest of a file's prefix, hashed a step at a
//!   time, that a resumed transfer checks on both sides.
//! - [`state_file`]: small private files changed under a lock (ftxd's
//!   tokens and key, ftx's known hosts and saved tokens).
//! - [`shell`]: command parsing, line sources (interactive and batch),
//!   completion, execution (`exec/mod.rs` dispatches, `exec/many.rs` runs
//!   many-file commands), the progress bar (`progress.rs`), Ctrl-C
//!   (`interrupt.rs`) and every user-visible text. Never touches `mio` or
//!   frames.
//! - [`aligned`]: page-aligned read buffers (the kernel copies into them faster).
//! - `sys`: the few system calls `rustix` lacks, the one home of `unsafe`
//!   in the library (the crate denies it everywhere else).
//!
//! Only the binaries in `src/bin/` read command lines (into the plain
//! settings of `server::config` and `shell::app`) and choose exit codes.
//! `log` is for operators; user-facing output goes through `shell`'s renderer.

#![deny(unsafe_code)]

pub mod aligned;
pub mod client;
pub mod fingerprint;
pub mod lookups;
pub mod part_mark;
pub mod partial;
pub mod prefix;
pub mod proto;
pub mod server;
pub mod shell;
pub mod state_file;
mod sys;
