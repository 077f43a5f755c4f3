//! Model-based sequence testing of the protocol: the operations and how
//! records decode into them (this file), a reference model of the
//! served tree ([`Model`]) and a runner ([`Runner`]) that plays random
//! sequences of requests through real [`ClientSession`]s and
//! [`ServerSession`]s wired through memory (the server side driven by a
//! shared [`MemStore`]), and after every step checks that the request
//! ended with exactly one result, that the result is the model's, that the
//! store holds what the model holds, and that both connections still serve
//! the next request.
//!
//! A sequence is a list of 8-byte records, one operation each
//! ([`Op::decode`]), so that a property-test runner or a fuzzer can make
//! and shrink them: dropping a record drops one operation and leaves the
//! others as they were. Used by the property test in `cargo test` (a few
//! thousand sequences), by `scripts/soak` (millions) and by the fuzz
//! target `model_sequences`. Like the rest of `proto` it does no I/O and
//! reads no clock. Not part of the supported API.

mod runner;
mod tree;

pub use runner::{Failure, Runner};
pub use tree::Model;

use super::error::ErrorCode;
use super::limits::{MAX_CHUNK, MIN_WINDOW};

/// Remote names the operations use: files and directories at several
/// depths, a name below a file, one below a missing directory, and `""`
/// (the root for a listing, invalid elsewhere).
pub const NAMES: &[&str] = &[
    "a",
    "b.txt",
    "d",
    "d/a",
    "d/e",
    "d/e/f.txt",
    "e",
    "a/x",
    "n/x",
    "",
];

/// Names every request must refuse as invalid (one record in ten).
pub const INVALID_NAMES: &[&str] = &["../x", "/abs", "d//a", "./a", ".ftx-part-a", "a\\b"];

/// File sizes an upload picks from: empty, tiny, one chunk and a bit,
/// more than the window (flow control), and the first name's part sizes.
const SIZES: &[usize] = &[0, 1, 5, 1000, MAX_CHUNK + 3, MIN_WINDOW as usize + 40_000];

/// How an upload asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// `put`: a clash name if the name is taken.
    Fresh,
    /// `put -f`: replace.
    Force,
    /// `reput`: continue the name's interrupted upload.
    Resume,
    /// `reput` of the client's last interrupted upload (name and file), if
    /// it has one; otherwise as `Resume`.
    ResumeLast,
}

/// How a transfer ends, besides finishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// It runs to its end.
    Finish,
    /// The client cancels after this many bytes of data moved.
    Cancel(u64),
    /// One byte of the first `Data` frame is flipped on the wire.
    Corrupt,
    /// The connection is lost after the client sent this many bytes.
    Drop(u64),
}

/// One step of a sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `List` on client `c`.
    List { c: usize, path: &'static str },
    /// An upload of `len` bytes made from `seed`.
    Put {
        c: usize,
        path: &'static str,
        len: usize,
        seed: u8,
        mode: PutMode,
        stop: Stop,
    },
    /// A download; with `resume`, of the client's last interrupted
    /// download if it has one, from its part.
    Get {
        c: usize,
        path: &'static str,
        resume: bool,
        stop: Stop,
    },
    /// `Mkdir`.
    Mkdir { c: usize, path: &'static str },
    /// `Remove`.
    Remove { c: usize, path: &'static str },
    /// `Rename`.
    Rename {
        c: usize,
        from: &'static str,
        to: &'static str,
    },
    /// The server turns read-only (or writable again).
    ReadOnly(bool),
    /// The server's free space.
    Space(Option<u64>),
    /// The server's largest accepted upload.
    MaxSize(Option<u64>),
    /// The server's next writes fail past this many bytes of an upload.
    FailWrite(Option<(u64, ErrorCode)>),
    /// Both connections stay silent past the idle deadline: the server
    /// closes them with `Timeout`, and the clients connect again.
    Idle,
    /// Client 0 starts an upload and stops after `pause` bytes arrived;
    /// client 1 runs `inner`; then the upload goes on.
    Overlap {
        path: &'static str,
        len: usize,
        seed: u8,
        mode: PutMode,
        pause: u64,
        inner: Box<Op>,
    },
}

impl Op {
    /// The operation a record stands for. Every record is some operation,
    /// so any byte string decodes; weights favour what reaches deep
    /// states (uploads and downloads, valid names, a few file contents so
    /// that interrupted transfers resume), and the server's knobs are
    /// mostly left off.
    pub fn decode(r: [u8; 8]) -> Op {
        let c = usize::from(r[1] & 1);
        let name = |b: u8| {
            if b >= 230 {
                INVALID_NAMES[usize::from(b) % INVALID_NAMES.len()]
            } else {
                NAMES[usize::from(b) % NAMES.len()]
            }
        };
        let len = SIZES[usize::from(r[4]) % SIZES.len()];
        let seed = r[5] % 3;
        let mode = [
            PutMode::Fresh,
            PutMode::Force,
            PutMode::Resume,
            PutMode::ResumeLast,
        ][usize::from(r[1] >> 1) % 4];
        // A point in a transfer of `len` bytes.
        let at = |len: u64| -> u64 { u64::from(r[7]) * (len + 1) / 256 };
        let stop = |len: u64| match r[6] % 8 {
            5 => Stop::Cancel(at(len)),
            6 => Stop::Corrupt,
            7 => Stop::Drop(at(len)),
            _ => Stop::Finish,
        };
        let knob = r[3].is_multiple_of(4);
        let dir = ["d", "d/e"][usize::from(r[3] >> 1) & 1];
        match r[0] % 32 {
            0..=2 => Op::List {
                c,
                path: name(r[2]),
            },
            3..=11 => Op::Put {
                c,
                path: name(r[2]),
                len,
                seed,
                mode,
                stop: stop(len as u64),
            },
            12..=17 => Op::Get {
                c,
                path: name(r[2]),
                resume: r[1] & 8 != 0,
                // Any point of the largest file.
                stop: stop(SIZES[SIZES.len() - 1] as u64),
            },
            // Half of them on the directories the deeper names need.
            18..=19 => Op::Mkdir {
                c,
                path: if r[3] & 1 == 1 { dir } else { name(r[2]) },
            },
            20..=21 => Op::Remove {
                c,
                path: if r[3] & 1 == 1 { dir } else { name(r[2]) },
            },
            22 => Op::Rename {
                c,
                from: name(r[2]),
                to: name(r[3]),
            },
            23 => Op::ReadOnly(knob),
            24 => Op::Space(knob.then(|| u64::from(r[7]) * 4096)),
            25 => Op::MaxSize(knob.then(|| u64::from(r[7]) * 4096)),
            26 => {
                let code = if r[3] & 4 == 0 {
                    ErrorCode::NoSpace
                } else {
                    ErrorCode::Io
                };
                Op::FailWrite(knob.then(|| (at(len as u64), code)))
            }
            27 => Op::Idle,
            _ => {
                // The inner operation comes from the same record, turned,
                // and names the same file half the time.
                let mut turned = r;
                turned.rotate_left(3);
                let path = name(r[2]);
                let inner = match Op::decode(turned) {
                    // Not modelled: an upload whose directory moves, a
                    // nested overlap, an idle pause. A listing stands in.
                    Op::Rename { .. } | Op::Overlap { .. } | Op::Idle => {
                        Op::List { c: 1, path: "d" }
                    }
                    op => op.retarget(1, (r[7] & 1 == 1).then_some(path)),
                };
                Op::Overlap {
                    path,
                    len,
                    seed,
                    mode,
                    pause: at(len as u64),
                    inner: Box::new(inner),
                }
            }
        }
    }

    /// The same operation on client `to`, and on `path` when given (for
    /// those that name one file).
    fn retarget(self, to: usize, path: Option<&'static str>) -> Op {
        let on = |p: &'static str| path.unwrap_or(p);
        match self {
            Op::List { path: p, .. } => Op::List { c: to, path: on(p) },
            Op::Put {
                path: p,
                len,
                seed,
                mode,
                stop,
                ..
            } => Op::Put {
                c: to,
                path: on(p),
                len,
                seed,
                mode,
                stop,
            },
            Op::Get {
                path: p,
                resume,
                stop,
                ..
            } => Op::Get {
                c: to,
                path: on(p),
                resume,
                stop,
            },
            Op::Mkdir { path: p, .. } => Op::Mkdir { c: to, path: on(p) },
            Op::Remove { path: p, .. } => Op::Remove { c: to, path: on(p) },
            Op::Rename { from, to: dest, .. } => Op::Rename {
                c: to,
                from,
                to: dest,
            },
            other => other,
        }
    }
}

/// Decodes a byte string into records (a trailing partial record is
/// dropped) and then operations.
pub fn decode_ops(bytes: &[u8]) -> Vec<Op> {
    bytes
        .chunks_exact(8)
        .map(|r| Op::decode(r.try_into().expect("8 bytes")))
        .collect()
}

/// `len` bytes made from `seed` (so two seeds make two different files,
/// and one seed's shorter file is a prefix of its longer one).
pub fn content(len: usize, seed: u8) -> Vec<u8> {
    use std::sync::OnceLock;
    static STREAMS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let streams = STREAMS.get_or_init(|| (0..3).map(|s| stream(MAX_SIZE, s)).collect());
    match streams.get(usize::from(seed)) {
        Some(s) if len <= s.len() => s[..len].to_vec(),
        _ => stream(len, seed),
    }
}

/// The largest file an operation makes.
const MAX_SIZE: usize = SIZES[SIZES.len() - 1];

fn stream(len: usize, seed: u8) -> Vec<u8> {
    super::testing::xorshift_bytes(len, u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}
