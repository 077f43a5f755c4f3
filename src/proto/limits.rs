//! Every limit and default of the protocol, defined once. The module
//! documentation of [`crate::proto`] cites these by name.

use std::time::Duration;

/// The protocol version this build speaks. Version 2 lets a client send
/// an upload's data right after `Put`, before `PutReady`.
pub const PROTOCOL_VERSION: u16 = 2;
/// The oldest protocol version this build still speaks. Version 1 (never
/// released) ended a refused `Put` at the `Error`; version 2 drains until
/// the client's `Done` or `Cancel`, so the two cannot share a server.
pub const MIN_PROTOCOL_VERSION: u16 = 2;
/// Four bytes that open every `Hello`, so a stray client (HTTP, TLS, ...)
/// is told apart from an ftx peer on its first frame.
pub const MAGIC: [u8; 4] = *b"FTX\x00";

/// Size of the length prefix of every frame.
pub const FRAME_HEADER_LEN: usize = 4;
/// Largest data payload in one `Data` frame (also the chunk size used by
/// both senders). Large chunks keep the per-frame cost low on fast links.
pub const MAX_CHUNK: usize = 256 * 1024;
/// Largest value of a frame's length field (type byte + body). Checked as
/// soon as the 4-byte prefix has arrived, before anything is buffered.
pub const MAX_FRAME_LEN: u32 = (MAX_CHUNK + 1024) as u32;
/// Largest frame a server takes before the handshake completed: a `Hello`
/// with the longest token. Limits by state keep a client that never
/// finishes its handshake, or sends requests only, from holding a
/// data-sized buffer.
pub const MAX_HELLO_FRAME_LEN: u32 = (1 + 4 + 2 + 2 + 4 + 2 + MAX_TOKEN_LEN) as u32;
/// Largest frame a server takes between transfers: a request with two
/// longest paths (`Rename`).
pub const MAX_REQUEST_FRAME_LEN: u32 = (1 + 2 * (2 + MAX_PATH_LEN)) as u32;
/// Default sender window: unacknowledged bytes a sender may have in flight.
/// 16 MiB fills a 100 MiB/s link with a 160 ms round trip.
pub const DEFAULT_WINDOW: u32 = 16 * 1024 * 1024;
/// Most of a fresh upload's data a client sends before `PutReady` comes:
/// enough to fill the first round trip of a 100 MiB/s link 40 ms long,
/// and all a refused upload can waste.
pub const EARLY_WINDOW: u32 = 4 * 1024 * 1024;
/// Smallest window a peer may announce (one chunk).
pub const MIN_WINDOW: u32 = MAX_CHUNK as u32;
/// Most requests a pipelining client has outstanding (sent, their end not
/// yet received): enough to keep a 20 ms round trip busy with small files.
pub const MAX_PIPELINE: usize = 64;
/// Most bytes of request frames (their length fields) a pipelining client
/// has outstanding: what a server may hold of requests queued behind a
/// running download.
pub const MAX_PIPELINE_BYTES: usize = 64 * 1024;
/// Most verified uploads of one connection a server commits at once
/// while the next ones arrive (a pipelining client): their directory
/// syncs are shared; past it the server reads on once one ended.
pub const MAX_COMMITS_IN_FLIGHT: usize = 32;
/// Largest number of entries in one `Entries` frame (a listing spans frames).
pub const MAX_ENTRIES_PER_FRAME: usize = 512;
/// Largest number of entries a server sends for one listing.
pub const MAX_LIST_ENTRIES: usize = 100_000;
/// Largest size of a token field in `Hello` (reserved for access tokens).
pub const MAX_TOKEN_LEN: usize = 256;
/// Largest detail message in an `Error` frame, and the server name in `Welcome`.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Longest name component, in bytes.
pub const MAX_COMPONENT_LEN: usize = 255;
/// Longest remote path, in bytes.
pub const MAX_PATH_LEN: usize = 4096;
/// Prefix of the hidden temporary and part files; names starting with it
/// are reserved: never listed, never served, never accepted from a client.
pub const RESERVED_PREFIX: &str = ".ftx-";

/// Time a client has to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a connection may stay silent before the server closes it.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default time a running transfer may go without input (data for an
/// upload, acknowledgments for a download) before the server ends it.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Output a session buffers before it stops asking for more input: bounds
/// server memory when a client sends requests but never reads replies.
pub const MAX_PENDING_OUTPUT: usize = 4 * MAX_CHUNK;
/// Least download output a server lets one connection queue however much
/// the others hold: a quarter chunk.
pub const MIN_OUTPUT_CAP: usize = MAX_CHUNK / 4;
