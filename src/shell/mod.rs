//! The `ftx` shell: everything between the user's keyboard (or batch file)
//! and the client API, plus every user-visible text.
//!
//! It parses lines into [`command::Command`]s, owns the line sources
//! (interactive, piped, batch), runs the batch rules, completes names and
//! formats output. It must never touch sockets, `mio` or protocol frames:
//! the command loop and completion reach the network only through the
//! [`batch::Execute`] and [`complete::RemoteNames`] traits, which
//! [`exec`] implements on top of the client API, and it never chooses the
//! exit code: [`batch::run`] returns an [`batch::Outcome`] for the binary.
//!
//! - [`words`]: the one tokenizer (quotes, escapes, spans) and `quote`.
//! - [`command`]: the command table (`SPECS`) and the parser.
//! - [`cwd`]: the remote working directory and how typed remote paths
//!   resolve against it.
//! - [`listing`]: `ls`'s options, order and line formats.
//! - [`source`]: `LineSource` and the batch, piped and interactive sources.
//! - [`batch`]: the command loop and the batch rules.
//! - [`complete`]: Tab completion, hints and the `rustyline` helper.
//! - [`glob`]: wildcard matching and expansion for many-file transfers.
//! - [`exec`]: runs each command on the client or the local file system
//!   (`exec/many.rs`: the many-file engine).
//! - `progress`: the transfer progress bar.
//! - `interrupt`: Ctrl-C while a command runs.
//! - [`render`]: sizes, terminal escaping and colour `Style`.
//! - [`app`]: the `ftx` program, wiring all of it together.

pub mod app;
pub mod batch;
pub mod command;
pub mod complete;
pub mod cwd;
pub mod exec;
pub mod glob;
mod interrupt;
pub mod listing;
mod progress;
pub mod render;
pub mod source;
pub mod words;
