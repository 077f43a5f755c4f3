//! The one integration-test binary: runs the real `ftxd` and `ftx`
//! executables (`CARGO_BIN_EXE_*`) against what the README promises,
//! each test with its own server, root and client directories.
//!
//! The harness lives in `tests/util/`; the tests are grouped by topic in
//! `tests/integration/`. Sizes are bounded so the whole suite stays well
//! under three minutes on two cores with debug binaries.

mod util;

#[path = "integration/abuse.rs"]
mod abuse;
#[path = "integration/access.rs"]
mod access;
#[path = "integration/attrs.rs"]
mod attrs;
#[path = "integration/batch.rs"]
mod batch;
#[path = "integration/clash.rs"]
mod clash;
#[path = "integration/cli.rs"]
mod cli;
#[path = "integration/concurrency.rs"]
mod concurrency;
#[path = "integration/crash.rs"]
mod crash;
#[path = "integration/disk.rs"]
mod disk;
#[path = "integration/errors.rs"]
mod errors;
#[path = "integration/fdlimit.rs"]
mod fdlimit;
#[path = "integration/harness.rs"]
mod harness;
#[path = "integration/health.rs"]
mod health;
#[path = "integration/limits.rs"]
mod limits;
#[path = "integration/listing.rs"]
mod listing;
#[path = "integration/local.rs"]
mod local;
#[path = "integration/lost.rs"]
mod lost;
#[path = "integration/manage.rs"]
mod manage;
#[path = "integration/many.rs"]
mod many;
#[path = "integration/memory.rs"]
mod memory;
#[path = "integration/messages.rs"]
mod messages;
#[path = "integration/names.rs"]
mod names;
#[path = "integration/nav.rs"]
mod nav;
#[path = "integration/parts.rs"]
mod parts;
#[path = "integration/proxy_protocol.rs"]
mod proxy_protocol;
#[path = "integration/pty.rs"]
mod pty;
#[path = "integration/raw.rs"]
mod raw;
#[path = "integration/reconnect.rs"]
mod reconnect;
#[path = "integration/sequences.rs"]
mod sequences;
#[path = "integration/service.rs"]
mod service;
#[path = "integration/session.rs"]
mod session;
#[path = "integration/shared_root.rs"]
mod shared_root;

#[path = "integration/symlinks.rs"]
mod symlinks;
#[path = "integration/targets.rs"]
mod targets;
#[path = "integration/transfer.rs"]
mod transfer;
#[path = "integration/traversal.rs"]
mod traversal;
#[path = "integration/update.rs"]
mod update;
