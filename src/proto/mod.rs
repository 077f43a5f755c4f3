//! # The ftx protocol, version 2
//!
//! This module is the specification. It does no I/O: it takes bytes and
//! events in and gives bytes and actions out ([`server_session::ServerSession`],
//! [`client_session::ClientSession`]), so it is tested without sockets; `ftxd`
//! and `ftx` drive it.
//!
//! ## One connection for control and data
//!
//! The seed (and FTP) use a control connection and separate data
//! connections. ftx carries requests, replies and file bytes as frames on
//! ONE TCP connection: no second port to open in firewalls, nothing for NAT
//! to rewrite, no passive-mode port ranges, and one stream for TLS to wrap.
//! Many operations run one after another on the same connection.
//!
//! ## Frames
//!
//! ```text
//! +----------------+---------+------------------+
//! | length: u32 BE | type u8 | body             |
//! +----------------+---------+------------------+
//!                  |<------- length bytes ----->|
//! ```
//!
//! `length` counts the type byte and the body; it is at least 1 and at most
//! [`limits::MAX_FRAME_LEN`] (256 KiB + 1 KiB). A receiver checks it as soon
//! as the four length bytes arrive, before buffering anything, and treats a
//! larger value as a protocol error. A server takes less from a client
//! depending on where it stands: [`limits::MAX_HELLO_FRAME_LEN`] (271
//! bytes) before the handshake completed, [`limits::MAX_REQUEST_FRAME_LEN`]
//! (8,197 bytes) between transfers and during a download, the full length
//! only while an upload's data may flow (after a fresh `Put`, during the
//! upload, while it drains a refused one). Integers are big-endian. A string is a
//! `u16` byte length then UTF-8 bytes; a byte string likewise. A body with
//! bytes left over after its last field, an unknown type, a truncated field
//! or invalid UTF-8 is a protocol error. EOF between frames is a clean
//! close; EOF inside a frame is a peer error.
//!
//! ## Messages
//!
//! | type | name | direction | body |
//! |---|---|---|---|
//! | 0x01 | `Hello` | C→S | magic `b"FTX\0"`, min_version u16, max_version u16, flags u32, token bytes (≤ 256) |
//! | 0x81 | `Welcome` | S→C | version u16, flags u32, window u32, server string |
//! | 0x10 | `List` | C→S | path |
//! | 0x90 | `Entries` | S→C | flags u8 (bit 0: last, bit 1: modes), count u16 (≤ 512), count × (kind u8, size u64, mtime i64, \[mode u16 with bit 1\], name string) |
//! | 0x11 | `Put` | C→S | path, size u64, offset u64, flags u8 (bit 0: force, bit 1: resume) |
//! | 0x91 | `PutReady` | S→C | name, offset u64, prefix digest \[u8; 32\], partial u64, flags u8 (bit 0: resumable) |
//! | 0x92 | `PutDone` | S→C | stored name, size u64 |
//! | 0x12 | `Get` | C→S | path, offset u64 |
//! | 0x93 | `GetReady` | S→C | size u64, offset u64, mtime i64, prefix digest \[u8; 32\] |
//! | 0x13 | `Mkdir` | C→S | path |
//! | 0x14 | `Remove` | C→S | path |
//! | 0x15 | `Rename` | C→S | from path, to path |
//! | 0x16 | `SetAttrs` | C→S | path, flags u8 (bit 0: mode, bit 1: mtime), mode u16, mtime i64 |
//! | 0x17 | `Statfs` | C→S | path |
//! | 0x18 | `ListParts` | C→S | path |
//! | 0x19 | `DiscardPart` | C→S | path |
//! | 0x95 | `Space` | S→C | total u64, avail u64 |
//! | 0x94 | `Ok` | S→C | (empty) |
//! | 0x20 | `Data` | sender→receiver | offset u64, then the rest of the frame is file bytes (≤ 256 KiB) |
//! | 0x21 | `Ack` | receiver→sender | offset u64: every byte before it was received |
//! | 0x22 | `Done` | sender→receiver | size u64, BLAKE3 digest \[u8; 32\] of the whole file |
//! | 0x23 | `Cancel` | either | (empty) |
//! | 0xE0 | `Error` | S→C | code u16, message string (≤ 1024 bytes) |
//!
//! Entry kinds: 0 file, 1 directory, 2 symlink, 3 other. Error codes are
//! [`error::ErrorCode`]'s (1 not found, 2 is a directory, 3 not a
//! directory, 4 invalid name, 5 read-only, 6 too large, 7 no space, 8 busy,
//! 9 integrity, 10 protocol, 11 version, 12 timeout, 13 exists, 14 not
//! empty, 15 permission denied, 16 cancelled, 17 too many from your
//! address, 18 unauthorized, 19 I/O); a peer maps unknown codes to "unknown
//! error" instead of failing, so codes can be added without a new version.
//!
//! ## Handshake and versions
//!
//! The client speaks first with `Hello`, carrying [`limits::MAGIC`] (so a
//! stray HTTP or TLS client is told apart on its first frame) and the range
//! of versions it speaks. The server answers `Welcome` with the highest
//! version both speak, or `Error(Version)` and closes. Until the handshake
//! completes any other frame is `Error(Protocol)` and close. The client has
//! [`limits::HANDSHAKE_TIMEOUT`] (10 s) to send `Hello`. A server that
//! cannot take the connection (too many connections) sends `Error(Busy)`
//! instead of `Welcome` and closes.
//!
//! `Hello.flags` and `Welcome.flags` are feature bits; a peer ignores
//! bits it does not know, so features are added without a new version.
//! Bit 0, [`message::FEATURE_ATTRS`]: in `Hello`, the client reads modes
//! in `Entries`; in `Welcome`, the server sends them to such a client and
//! serves `SetAttrs` and `Statfs`. Bit 1, [`message::FEATURE_PARTS`], in
//! `Welcome`: the server serves `ListParts` and `DiscardPart`. A client
//! never sends a request to a server without its bit (it would close the
//! connection on an unknown frame type); it tells its user "not supported
//! by this server". Bit 2, [`message::FEATURE_PIPELINE`], in both:
//! requests may be pipelined (see "Many requests in flight").
//! Version 2 differs from version 1 (never released) in one rule: a
//! fresh upload's data may follow `Put` before `PutReady`, so a refused
//! `Put` ends with the client's `Cancel` or `Done`; a server speaks one of
//! the two, and this one speaks only version 2. `Hello.token` carries the access token: a server that
//! requires one checks it before `Welcome` and answers a missing, wrong or
//! revoked token with `Error(Unauthorized)` and a close; no request is
//! served before that. TLS 1.3 (`ftxd`'s default; `--plain` turns it off)
//! wraps the whole byte stream below the frames, so no message changes; a
//! TLS server answers a plain client's first frame with a plain
//! `Error(Protocol)` saying TLS is required.
//!
//! ## Operations
//!
//! After `Welcome`, the client sends one request at a time and waits for its
//! end before the next, unless both sides pipeline (see "Many requests in
//! flight"). Names are checked against [`path`]'s rules
//! (relative, `/`-separated, no `.`/`..`/empty components, no NUL, control
//! characters or backslashes, ≤ 255 bytes a component, ≤ 4096 in all, no
//! `.ftx-` prefix); a bad name gets `Error(InvalidName)` and the connection
//! stays usable. Any request may be answered with `Error` instead of its
//! success reply.
//!
//! - list: `List` → `Entries`\* (the last one has `last = 1`), in the
//!   order the server reads the directory (a client sorts if it wants);
//!   the server reads it only as fast as the client takes the frames. At
//!   most [`limits::MAX_LIST_ENTRIES`] entries: a larger directory ends
//!   with `Error(TooLarge)`, possibly after some `Entries`, which the
//!   client then drops (and it drops a server that sends more); a listing
//!   never shows reserved (`.ftx-`) names.
//! - mkdir / rm / rename: `Mkdir` | `Remove` | `Rename` → `Ok`. Rename never
//!   replaces an existing name (`Error(Exists)`).
//! - attributes (with [`message::FEATURE_ATTRS`]): `SetAttrs` → `Ok` sets
//!   a file's or directory's permission bits (at most `0o777`: setuid,
//!   setgid and sticky are refused with `Error(PermissionDenied)`) and/or
//!   modification time, following a symlink that stays inside the root;
//!   `chmod` and `put -p` use it. `Statfs` → `Space` gives the size of the
//!   file system holding a path and the bytes an upload may still use
//!   (`df`). A listing's modes are the permission bits (`0o7777` at most),
//!   sent only to a client that set the bit, in every `Entries` frame of
//!   the listing.
//! - interrupted uploads (with [`message::FEATURE_PARTS`]): `ListParts`
//!   → `Entries`\* lists the client's own interrupted uploads in a
//!   directory (on a server with tokens, those of its token), each as a
//!   file named for the upload's target, its size the bytes held, empty
//!   ones and ones a transfer holds now left out; a part of a name too long
//!   to fit in a part file's name is listed under the name's BLAKE3 (hex).
//!   A directory of more than [`limits::MAX_LIST_ENTRIES`] entries is
//!   refused with `Error(TooLarge)`, as a listing is. `DiscardPart` → `Ok`
//!   removes one (`Error(NotFound)` when there is none, `Error(Busy)` while
//!   a transfer holds it). A read-only token may list, never discard: like
//!   `Put`, `Mkdir`, `Remove`, `Rename` and `SetAttrs` it gets
//!   `Error(ReadOnly)`.
//! - put: `Put{path, size, offset, flags}` → `PutReady{name, offset, ...}`;
//!   the client sends `Data` frames in order from `offset`, the server
//!   answers each with `Ack{offset}` (cumulative); after the last byte the
//!   client sends `Done{size, digest}`. A fresh upload (no resume flag)
//!   always starts at offset 0, so its `Data` (at most
//!   [`limits::EARLY_WINDOW`], 4 MiB, before `PutReady`) and even its
//!   `Done` may follow the `Put` at once: no round trip is spent waiting.
//!   The server reads them only once it accepted the `Put`; if it refuses
//!   (`Error`), it discards `Data` until the client's `Done` or `Cancel`,
//!   and a client that gets the refusal before it sent `Done` sends
//!   `Cancel`. A resumed upload waits for `PutReady`, whose offset it
//!   needs, so its refusal ends it: nothing is drained (see "Where each
//!   side stands after a refusal"). The server checks the digest, makes
//!   the file durable (fsync the file, rename into place, fsync the
//!   directory) and answers `PutDone{stored name, size}`. On a name clash
//!   without `force` the stored name is `stem_N.ext`; it is chosen
//!   atomically at commit, so `PutDone` carries the final name.
//! - get: `Get{path, offset}` → `GetReady{size, offset, mtime, digest}`; then the
//!   server sends `Data` from `offset`, the client answers each with `Ack`,
//!   and the server ends with `Done{size, digest}`; the client checks the
//!   digest before it renames its temporary file into place.
//! - resume: the receiving side keeps one hidden part file per target name
//!   (`.ftx-part-NAME`, locked while a transfer writes it; a server that
//!   asks for access tokens keeps one per target name and token,
//!   `.ftx-part=OWNER-NAME`, so a token resumes only its own uploads). An interrupted
//!   transfer (cancel, timeout, lost connection, shutdown) leaves its part;
//!   a full disk or an integrity failure removes it.
//!   - reput: `Put` with the resume flag and `offset` = the client's size
//!     (the most it can resume from). The server answers `PutReady` with
//!     the length of its part (0 if none, or if the part is longer than the
//!     client's file) and the BLAKE3 digest of those bytes. The client
//!     hashes its own first `offset` bytes: equal, it sends from `offset`;
//!     different (the source changed), it sends `Cancel`, waits for
//!     `Error(Cancelled)` and asks again with the resume flag and offset 0,
//!     which restarts the part from scratch. So a changed source is sent
//!     whole, never mixed.
//!   - reget: the client asks `Get{path, offset}` with the length of its
//!     local part; `GetReady` carries the digest of the server's first
//!     `offset` bytes (an offset past the end is answered with offset 0).
//!     On a mismatch the client cancels, empties its part and asks again
//!     from 0.
//!   - The same request with `offset` = the file's size asks for the whole
//!     file's digest without its data: `GetReady` carries it (the server
//!     may answer from a digest it remembers) and `Done` follows at once.
//!     `put -c` and `get -c` compare files this way.
//!   - A fresh `Put` (no resume flag) never touches an existing part: it
//!     uploads into a one-off temporary file, and `PutReady.partial` tells
//!     the client how many bytes the untouched interrupted upload holds, so
//!     it can say that reput would continue it. `PutReady`'s resumable flag
//!     says whether this upload itself is kept if interrupted.
//!   - The digest in `Done` always covers the whole file, prefix included.
//!   - Parts untouched for longer than `ftxd --partial-ttl` (default 7 days)
//!     are removed.
//!
//! ## Many requests in flight
//!
//! When both `Hello` and `Welcome` carry [`message::FEATURE_PIPELINE`],
//! the client may send a request before the previous ones ended, so a
//! tree of small files costs about one round trip, not one per file. The
//! server serves requests strictly one after another, in the order they
//! arrived, and every reply keeps that order: the replies of request
//! *n + 1* start after request *n*'s end (its success reply or `Error`).
//! A client keeps these rules:
//!
//! - At most [`limits::MAX_PIPELINE`] (64) requests outstanding (sent,
//!   their end not yet received), whose frames' length fields add up to
//!   at most [`limits::MAX_PIPELINE_BYTES`] (64 KiB). A server holds the
//!   requests that arrive while a download runs (it must read on to see
//!   that download's `Ack`s) and closes with `Error(Protocol)` past these
//!   bounds; others wait in the socket until it reads them. Nor does a
//!   client owe acknowledgments for more than [`limits::MAX_PIPELINE`]
//!   ended downloads.
//! - After a `Put`, the next request goes out only once the upload sent
//!   its last byte and `Done` (or its `Cancel`); a resumed `Put` also
//!   waits for its `PutReady`. So the server finds each upload's frames
//!   together, and a refused upload is drained as without pipelining.
//! - No `Put` while a `Get` is outstanding: the server could not hold
//!   its data behind the download (`Error(Protocol)` and close).
//! - Every `Data` frame of a download is answered with exactly one `Ack`,
//!   also after a `Cancel`, while discarding: once a download ended, the
//!   server counts the `Ack`s it is still owed off as that download's and
//!   never takes them for the next one's.
//! - `Cancel` during an upload cancels that upload (the last request).
//!   `Cancel` while downloads are outstanding cancels the download the
//!   server is sending and every request waiting behind it: each ends
//!   with `Error(Cancelled)`, unless it ended before the `Cancel` arrived.
//!   One `Cancel` does it; a `Cancel` that arrives when nothing runs is
//!   ignored.
//!
//! A failing request fails alone: the ones behind it are served as usual.
//!
//! A server may receive a pipelining client's next upload while earlier
//! ones are still being made durable (at most
//! [`limits::MAX_COMMITS_IN_FLIGHT`], 32), so their file and directory
//! syncs are shared; every answer still comes in request order (the next
//! upload's `PutReady` and `Ack`s wait behind the earlier `PutDone`), and
//! clash names are taken in request order. Any other request waits until
//! those commits ended.
//!
//! ## Flow control: the window
//!
//! A sender never has more than a window of unacknowledged bytes in flight
//! (with pipelining, over all the transfers outstanding together):
//! for put, the window the server announced in `Welcome` (default
//! [`limits::DEFAULT_WINDOW`], 16 MiB, at least one chunk; no more than
//! [`limits::EARLY_WINDOW`] until `PutReady`); for get, the server's own.
//! Acknowledgments are cumulative, one per `Data` frame, so they never
//! stall the pipe: 16 MiB covers a 100 MiB/s link with a 160 ms
//! round trip. Data frames carry at most [`limits::MAX_CHUNK`] (256 KiB).
//!
//! ## Failure and cancellation during a transfer
//!
//! - The receiver of a put (server) may fail it at any time with `Error`
//!   (no space, I/O, integrity); it then discards `Data` until the client's
//!   `Done` or `Cancel`. A client that receives that `Error` before it sent
//!   `Done` sends `Cancel`.
//! - The client may abandon a put with `Cancel`; the server answers
//!   `Error(Cancelled)` (or, if the `Cancel` crossed the server's own error,
//!   nothing more).
//! - The client may abandon a get with `Cancel` and then discards `Data`
//!   until `Done` or `Error`; the server stops and answers
//!   `Error(Cancelled)`. A `Cancel` or a late `Ack` that arrives when nothing
//!   runs is ignored.
//! - A digest mismatch is `Error(Integrity)`; nothing is stored under the
//!   final name.
//!
//! ## Where each side stands after a refusal
//!
//! Every request ends with exactly one result: its success reply (the
//! last `Entries`, `PutDone`, `Done` of a get, `Ok`) or one `Error`. Once
//! it ended, both sides are between requests and the connection serves
//! the next one; only the errors marked "close" below end the connection.
//! "Client sends" is what the client owes after the `Error` reached it;
//! the server's state is what it expects next.
//!
//! | request | refused or failed when | client sends | server then |
//! |---|---|---|---|
//! | `List`, `Mkdir`, `Remove`, `Rename`, `SetAttrs`, `Statfs`, `ListParts`, `DiscardPart`, `Get` | on the request (any code, invalid name included) | nothing | between requests |
//! | fresh or forced `Put` | on the request (invalid name, read-only, too large, no space, is a directory, missing parent, ...) | `Cancel`, unless its `Done` already went out | discards `Data` until that `Done` or `Cancel`, answers neither, then between requests |
//! | resumed `Put` | on the request (any code, "busy" for a part another upload holds) | nothing: it waits for `PutReady` before any data | between requests |
//! | any `Put` | during the data (no space, I/O) | `Cancel`, unless its `Done` already went out | discards `Data` until that `Done` or `Cancel`, then between requests |
//! | any `Put` | at `Done` (digest mismatch: `Integrity`; commit failed: no free name, I/O) | nothing | between requests |
//! | any `Put` | the client's `Cancel` | nothing more | answers `Error(Cancelled)` (nothing if its own `Error` crossed the `Cancel`), between requests |
//! | `Get` | during the data (I/O) | nothing | between requests (late `Ack`s ignored, or counted off as the failed download's from a pipelining client) |
//! | `Get` | the client's `Cancel` | discards `Data` until `Done` or `Error` | answers `Error(Cancelled)`, or had already sent `Done`; a late `Cancel` is ignored |
//! | resumed `Put` or `Get` | the client finds the prefix digest differs | `Cancel`, then asks again from offset 0 | as for a `Cancel` |
//! | any | malformed or unexpected frame, version, a deadline (handshake, idle, a stalled transfer), unauthorized | nothing | close |
//!
//! A client that sees an `Error` while no request runs, or the connection
//! end, reports the connection lost; it never reads it as the answer to
//! its next request.
//!
//! ## Deadlines and limits
//!
//! | limit | value |
//! |---|---|
//! | frame length | [`limits::MAX_FRAME_LEN`] = 263,168 bytes; from a client 271 before the handshake, 8,197 between transfers |
//! | data per frame | [`limits::MAX_CHUNK`] = 262,144 bytes |
//! | name component / whole path | 255 / 4096 bytes |
//! | entries per `Entries` frame / per listing | 512 / 100,000 |
//! | error message, server name | 1024 bytes |
//! | token | 256 bytes |
//! | handshake | 10 s ([`limits::HANDSHAKE_TIMEOUT`]) |
//! | idle connection | 300 s by default (`ftxd --idle-timeout`) |
//! | running transfer moving less than 64 KiB of data or acknowledgments ([`server_session::MIN_PROGRESS`]) | 60 s by default (`ftxd --stall-timeout`) |
//! | connections / from one IP address | 1024 / 64 by default (`ftxd --max-connections`, `--max-per-ip`): `Error(Busy)` / `Error(TooManyFromAddress)`, then close |
//! | output a server queues for one connection before it stops reading | [`limits::MAX_PENDING_OUTPUT`] = 1 MiB |
//! | download output a server queues for one connection while all of them together hold more than its budget (ftxd: 32 MiB) | [`limits::MIN_OUTPUT_CAP`] = 64 KiB |
//!
//! Past a deadline the server sends `Error(Timeout)` and closes. Any
//! protocol error is answered with `Error(Protocol)` and a close; it never
//! affects another connection.

pub mod client_session;
pub mod error;
pub mod frame;
pub mod limits;
pub mod message;
// The model and the hostile-input drivers are for the property tests
// and the fuzz targets (feature `testing`): not in a release library.
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod model;
mod outbox;
pub mod path;
pub mod server_session;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;

#[cfg(test)]
mod props;
#[cfg(test)]
mod spec;
#[cfg(test)]
mod tests;
