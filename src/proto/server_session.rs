//! `ServerSession`: the server half of one connection as a state machine.
//! Bytes and the clock come in as arguments, requests go out as
//! [`ServerEvent`]s for the driver (which owns the disk), replies come back
//! through the `reply_*`/`accept_*` methods, and bytes for the socket are
//! drained with `poll_transmit`. No I/O and no clock reads happen here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::{DecodeError, ErrorCode, DIGEST_MISMATCH};
use super::frame::{Frame, FrameReader};
use super::limits::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_STALL_TIMEOUT, DEFAULT_WINDOW, HANDSHAKE_TIMEOUT, MAGIC,
    MAX_CHUNK, MAX_COMMITS_IN_FLIGHT, MAX_COMPONENT_LEN, MAX_ENTRIES_PER_FRAME, MAX_FRAME_LEN,
    MAX_HELLO_FRAME_LEN, MAX_PENDING_OUTPUT, MAX_PIPELINE, MAX_PIPELINE_BYTES,
    MAX_REQUEST_FRAME_LEN, MIN_OUTPUT_CAP, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
use super::message::{
    truncate_utf8, Entry, Message, ATTR_MODE, ATTR_MTIME, FEATURE_ATTRS, FEATURE_PARTS,
    FEATURE_PIPELINE, PUT_FORCE, PUT_RESUME, READY_RESUMABLE, SETTABLE_MODE,
};
use super::outbox::Outbox;
use super::path::RemotePath;

/// How an accepted upload starts: where the data resumes, and what the
/// server already holds.
#[derive(Debug, Clone)]
pub struct PutAccept {
    /// Offset of the first byte the client sends (0 for a fresh upload).
    pub offset: u64,
    /// BLAKE3 state after the `offset` bytes already held.
    pub prefix: blake3::Hasher,
    /// Bytes of an interrupted upload of the name that this one does not
    /// continue (0 if none); the client tells the user `reput` could.
    pub partial: u64,
    /// Whether the server keeps this upload if it is interrupted.
    pub resumable: bool,
}

impl PutAccept {
    /// A fresh upload from byte 0.
    pub fn fresh(resumable: bool, partial: u64) -> PutAccept {
        PutAccept {
            offset: 0,
            prefix: blake3::Hasher::new(),
            partial,
            resumable,
        }
    }
}

/// Bytes a running transfer must move within each stall timeout to count
/// as alive (64 KiB: about 1 KiB/s with the default minute): a byte now
/// and then does not keep an upload, and the space it reserved, forever.
pub const MIN_PROGRESS: u64 = 64 * 1024;

/// Settings of a server session, validated by the server's config.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Window granted to clients sending data (announced in `Welcome`),
    /// and the window this server keeps when it sends.
    pub window: u32,
    /// Silence after which the connection is closed.
    pub idle_timeout: Duration,
    /// Time a client has to send `Hello`.
    pub handshake_timeout: Duration,
    /// Silence after which a running transfer is ended (`Error(Timeout)`).
    pub stall_timeout: Duration,
    /// Name and version announced in `Welcome`.
    pub server_name: String,
    /// Hand the client's `Hello.token` to the driver as
    /// [`ServerEvent::Hello`] before welcoming it (false: anyone is welcome).
    pub authenticate: bool,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            window: DEFAULT_WINDOW,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            server_name: concat!("ftxd ", env!("CARGO_PKG_VERSION")).to_owned(),
            authenticate: false,
        }
    }
}

/// A request the driver must carry out. The driver answers each event
/// (with the method named on the variant) before polling for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A well-formed `Hello` (only with [`SessionConfig::authenticate`]):
    /// check the token, then `accept_hello` or `reply_error` (which closes).
    Hello {
        /// The access token the client sent (may be empty).
        token: Vec<u8>,
    },
    /// List a directory; answer with `reply_entries` or `reply_error`.
    List {
        /// Directory (the root when empty).
        path: RemotePath,
    },
    /// Begin an upload; answer with `accept_put` or `reply_error`.
    PutStart {
        /// Name requested by the client.
        path: RemotePath,
        /// Declared size of the whole file.
        size: u64,
        /// With `resume`: the most the client can resume from; otherwise 0.
        offset: u64,
        /// Replace an existing file instead of choosing a clash name.
        force: bool,
        /// Continue the interrupted upload of this name, if there is one.
        resume: bool,
    },
    /// `len` bytes of the upload, in order, readable as
    /// [`ServerSession::data`] until the session takes more input; write
    /// them, or `reply_error` on failure.
    PutData {
        /// Offset in the file of `data()[0]`.
        offset: u64,
        /// How many bytes.
        len: usize,
    },
    /// All bytes arrived and the digest matched: make the file durable and
    /// visible, then `put_committed` (or `reply_error`).
    PutCommit {
        /// Size of the file.
        size: u64,
    },
    /// The upload is over without success: drop the temporary file.
    PutAbort {
        /// Why (cancelled, integrity, protocol, timeout, connection lost, or
        /// the driver's own error).
        reason: ErrorCode,
    },
    /// Begin a download; answer with `accept_get` or `reply_error`, then
    /// feed the bytes through `wants_data`/`send_data`.
    GetStart {
        /// File requested.
        path: RemotePath,
        /// First byte wanted.
        offset: u64,
    },
    /// The download is over (finished, cancelled or failed): drop the file.
    GetEnd {
        /// The whole file's BLAKE3 digest when every byte was sent and the
        /// session hashed them (the driver may remember it for the next
        /// download); `None` otherwise.
        digest: Option<[u8; 32]>,
    },
    /// Create a directory; answer with `reply_ok` or `reply_error`.
    Mkdir {
        /// Directory to create.
        path: RemotePath,
    },
    /// Remove a file or empty directory; answer with `reply_ok` or `reply_error`.
    Remove {
        /// What to remove.
        path: RemotePath,
    },
    /// Rename without replacing; answer with `reply_ok` or `reply_error`.
    Rename {
        /// Current name.
        from: RemotePath,
        /// New name.
        to: RemotePath,
    },
    /// Set a file's or directory's permission bits (within
    /// [`SETTABLE_MODE`], checked here) and/or modification time; answer
    /// with `reply_ok` or `reply_error`.
    SetAttrs {
        /// File or directory.
        path: RemotePath,
        /// New permission bits, if any.
        mode: Option<u16>,
        /// New modification time (Unix seconds), if any.
        mtime: Option<i64>,
    },
    /// The space of the file system holding `path`; answer with
    /// `reply_space` or `reply_error`.
    Statfs {
        /// Remote path (the root when empty).
        path: RemotePath,
    },
    /// This client's interrupted uploads in a directory; answer with
    /// `reply_entries` (each a file named for its target) or `reply_error`.
    ListParts {
        /// Remote directory (the root when empty).
        path: RemotePath,
    },
    /// Drop this client's interrupted upload of `path`; answer with
    /// `reply_ok` or `reply_error` (`NotFound` when there is none, `Busy`
    /// while a transfer holds it).
    DiscardPart {
        /// The name the upload was for.
        path: RemotePath,
    },
}

#[derive(Debug)]
enum State {
    /// Waiting for `Hello`.
    Handshake,
    /// Waiting for a request.
    Idle,
    /// An event was handed out; waiting for the driver's answer.
    AwaitReply(Pending),
    /// Upload accepted: `Data` then `Done` (or `Cancel`) expected. Boxed,
    /// as `Sending`: a BLAKE3 hasher is ~1.9 KiB, which every idle
    /// connection would otherwise carry inline.
    Receiving(Box<Upload>),
    /// `PutCommit` handed out; waiting for `put_committed`.
    AwaitCommit,
    /// The upload failed on our side: discard `Data` until `Done`/`Cancel`.
    Draining,
    /// Download accepted: sending `Data`, receiving `Ack`s.
    Sending(Box<Download>),
    /// Finished: flush the output, then close.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Hello {
        version: u16,
    },
    List,
    Space,
    /// `resume`: the client waits for `PutReady` before it sends
    /// anything, so a refusal ends the request at once; a fresh upload's
    /// early data and `Done` may already be on the way.
    Put {
        size: u64,
        resume: bool,
    },
    Get,
    Simple,
}

#[derive(Debug)]
struct Upload {
    size: u64,
    next: u64,
    hasher: blake3::Hasher,
}

#[derive(Debug)]
struct Download {
    size: u64,
    sent: u64,
    acked: u64,
    /// `Data` frames sent and not yet acknowledged: a pipelining client
    /// acknowledges each one, so what is owed after the download ended
    /// is known exactly ([`Late`]).
    frames: u32,
    digest: Digest,
}

/// A download that ended (done or cancelled) while a pipelining client
/// still owes acknowledgments of its `Data` frames: the next `Ack`s are
/// its own, never the running download's.
#[derive(Debug, Clone, Copy)]
struct Late {
    frames: u32,
    sent: u64,
    acked: u64,
}

/// The whole file's digest of a download.
#[derive(Debug)]
enum Digest {
    /// Known beforehand: nothing to hash.
    Known([u8; 32]),
    /// Absorbs every byte sent (the prefix's too).
    Hashing(Box<blake3::Hasher>),
}

/// The server side of one connection. See [`crate::proto`] for the protocol.
#[derive(Debug)]
pub struct ServerSession {
    /// Shared by every session of a server (one allocation, not one each).
    config: Arc<SessionConfig>,
    state: State,
    input: FrameReader,
    out: Outbox,
    events: std::collections::VecDeque<ServerEvent>,
    created: Instant,
    last_input: Instant,
    /// When the running transfer last moved [`MIN_PROGRESS`] bytes (or
    /// started): the stall deadline counts from here, so a byte now and
    /// then does not keep a transfer (and its reserved space) alive.
    last_progress: Instant,
    /// Bytes the running transfer had moved at `last_progress`.
    progress_mark: u64,
    /// The client reads modes in listings ([`FEATURE_ATTRS`] in `Hello`).
    client_attrs: bool,
    /// Most download output queued before more file data is taken
    /// ([`ServerSession::set_output_cap`]).
    output_cap: u32,
    /// The client pipelines ([`FEATURE_PIPELINE`] in `Hello`).
    client_pipelines: bool,
    /// What pipelining holds (requests waiting behind a download, the
    /// acknowledgments ended downloads are owed): made when first needed,
    /// so an idle connection does not carry it.
    pipe: Option<Box<Pipeline>>,
}

/// What a session holds for pipelining, when it holds anything:
/// requests waiting behind a download, acknowledgments owed, commits
/// under way and what waits for them.
#[derive(Debug, Default)]
struct Pipeline {
    /// Requests that arrived while a download ran, served in order once it
    /// ended (at most [`MAX_PIPELINE`], [`MAX_PIPELINE_BYTES`] in all).
    /// With each, its frame's length (what it counts against the bound).
    stash: std::collections::VecDeque<(Message, usize)>,
    stash_bytes: usize,
    /// Ended downloads whose acknowledgments are still owed, oldest first.
    late: std::collections::VecDeque<Late>,
    /// Bytes of `late` still unacknowledged.
    late_total: u64,
    /// Uploads verified and being committed by the driver while the
    /// session went on (the client's next upload arrives meanwhile),
    /// oldest first. Each holds the output queued after it, sent once its
    /// own answer (`PutDone` or `Error`) is known, so the answers keep
    /// the requests' order.
    committing: std::collections::VecDeque<Vec<u8>>,
    /// A request that must wait until every commit ended (anything but a
    /// fresh upload): read, and held here meanwhile.
    deferred: Option<Message>,
}

impl ServerSession {
    /// A session for a freshly accepted connection.
    pub fn new(config: impl Into<Arc<SessionConfig>>, now: Instant) -> ServerSession {
        ServerSession {
            config: config.into(),
            state: State::Handshake,
            input: FrameReader::new(),
            out: Outbox::default(),
            events: Default::default(),
            created: now,
            last_input: now,
            last_progress: now,
            progress_mark: 0,
            client_attrs: false,
            output_cap: MAX_PENDING_OUTPUT as u32,
            client_pipelines: false,
            pipe: None,
        }
    }

    /// A session that only tells the client why it is refused (busy, too many
    /// connections from one address) and then closes; `now` is the time of
    /// the refusal.
    pub fn refuse(code: ErrorCode, message: &str, now: Instant) -> ServerSession {
        let mut s = ServerSession::new(SessionConfig::default(), now);
        s.fail(code, message);
        s
    }

    // ---- inputs -------------------------------------------------------

    /// Bytes received from the client.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if matches!(self.state, State::Closed) || bytes.is_empty() {
            return;
        }
        self.last_input = now;
        self.input.push(bytes);
    }

    /// Room to receive at least `want` bytes into directly, saving the copy
    /// `handle_input` makes; report what was filled with
    /// [`ServerSession::handle_input_filled`].
    pub fn input_buffer(&mut self, want: usize) -> &mut [u8] {
        self.input.set_limit(self.frame_limit());
        self.input.spare(want)
    }

    /// The largest frame the client may send now: a `Hello` before the
    /// handshake, `Data` only while an upload's data may flow, a request
    /// otherwise.
    fn frame_limit(&self) -> u32 {
        match self.state {
            State::Handshake | State::AwaitReply(Pending::Hello { .. }) => MAX_HELLO_FRAME_LEN,
            State::Receiving(_)
            | State::Draining
            | State::AwaitReply(Pending::Put { resume: false, .. }) => MAX_FRAME_LEN,
            _ => MAX_REQUEST_FRAME_LEN,
        }
    }

    /// `n` bytes of [`ServerSession::input_buffer`] were filled by the client.
    pub fn handle_input_filled(&mut self, n: usize, now: Instant) {
        if matches!(self.state, State::Closed) || n == 0 {
            return;
        }
        self.last_input = now;
        self.input.commit(n);
    }

    /// The client closed its side. A transfer in progress is aborted.
    pub fn handle_eof(&mut self) {
        if matches!(self.state, State::Closed) {
            return;
        }
        let reason = if self.input.check_eof().is_err() {
            ErrorCode::Protocol
        } else {
            ErrorCode::Cancelled
        };
        self.abort_transfer(reason);
        self.state = State::Closed;
    }

    /// The clock passed [`ServerSession::poll_deadline`].
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.poll_deadline() {
            Some(deadline) if now >= deadline => {}
            _ => return,
        }
        let what = if matches!(self.state, State::Handshake) {
            "handshake not completed in time"
        } else if self.transferring() {
            "transfer stalled: too little data or acknowledgment for too long"
        } else {
            "connection idle for too long"
        };
        self.fail(ErrorCode::Timeout, what);
    }

    /// The next request for the driver, or `None` when the session needs
    /// more input, is waiting for the driver's answer, has too much output
    /// queued, or is closed. Call it after every input and after output
    /// was drained.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Some(ev);
            }
            if matches!(
                self.state,
                State::Closed | State::AwaitReply(_) | State::AwaitCommit
            ) || self.out.len() + self.held_output() > MAX_PENDING_OUTPUT
            {
                return None;
            }
            if let Some(o) = self.pipe.as_mut() {
                if o.committing.len() >= MAX_COMMITS_IN_FLIGHT
                    || (o.deferred.is_some() && !o.committing.is_empty())
                {
                    return None;
                }
                if matches!(self.state, State::Idle) {
                    if let Some(msg) = o.deferred.take() {
                        self.handle_request(msg);
                        continue;
                    }
                }
            }
            if matches!(self.state, State::Idle) {
                if let Some((msg, cost)) = self.pipe.as_mut().and_then(|p| p.stash.pop_front()) {
                    self.pipe_mut().stash_bytes -= cost;
                    self.handle_request(msg);
                    continue;
                }
            }
            self.input.set_limit(self.frame_limit());
            match self.input.next_frame() {
                Ok(Some(Frame::Message(msg))) => self.handle_message(msg),
                Ok(Some(Frame::Data { offset, len })) => self.handle_data(offset, len),
                Ok(None) => {
                    // Keep the buffer while data flows: freeing it after
                    // every frame would zero a new one for the next.
                    if !self.transferring() {
                        self.input.shrink();
                    }
                    return None;
                }
                Err(e) => self.protocol_error(&e),
            }
        }
    }

    // ---- answers from the driver ---------------------------------------

    /// Answers `List` with the whole listing (sent in as many frames as
    /// needed); the entries' modes reach only a client that reads them.
    pub fn reply_entries(&mut self, entries: Vec<Entry>) {
        self.reply_entries_part(entries, true);
    }

    /// True while a `List` is answered a part at a time and the output has
    /// room for the next part: a driver reads the directory only as fast
    /// as the client takes the listing.
    pub fn wants_entries(&self) -> bool {
        matches!(self.state, State::AwaitReply(Pending::List)) && self.out.len() < MAX_CHUNK
    }

    /// Answers `List` with the next part of the listing (in as many frames
    /// as needed); `last` ends it. The entries' modes reach only a client
    /// that reads them.
    pub fn reply_entries_part(&mut self, entries: Vec<Entry>, last: bool) {
        if !matches!(self.state, State::AwaitReply(Pending::List)) {
            return;
        }
        let modes = self.client_attrs;
        // Entry cost on the wire: kind + size + mtime + mode + name length + name.
        const FIXED: usize = 1 + 8 + 8 + 2 + 2;
        let budget = MAX_FRAME_LEN as usize - 64;
        let mut batch = Vec::new();
        let mut used = 0;
        for mut e in entries {
            if !modes {
                e.mode = None;
            }
            // A name shown lossily (not UTF-8) can outgrow a component.
            if e.name.len() > MAX_COMPONENT_LEN {
                e.name = truncate_utf8(&e.name, MAX_COMPONENT_LEN).to_owned();
            }
            let cost = FIXED + e.name.len();
            if !batch.is_empty() && (used + cost > budget || batch.len() == MAX_ENTRIES_PER_FRAME) {
                self.emit(&Message::Entries {
                    entries: std::mem::take(&mut batch),
                    last: false,
                });
                used = 0;
            }
            used += cost;
            batch.push(e);
        }
        if last || !batch.is_empty() {
            self.emit(&Message::Entries {
                entries: batch,
                last,
            });
        }
        if last {
            self.state = State::Idle;
        }
    }

    /// Answers [`ServerEvent::Hello`]: the token is good, welcome the client.
    pub fn accept_hello(&mut self) {
        if let State::AwaitReply(Pending::Hello { version }) = self.state {
            self.welcome(version);
        }
    }

    /// Answers `Statfs`.
    pub fn reply_space(&mut self, total: u64, avail: u64) {
        if self.take_pending(Pending::Space) {
            self.emit(&Message::Space { total, avail });
        }
    }

    /// Answers `Mkdir`, `Remove`, `Rename` or `SetAttrs` with success.
    pub fn reply_ok(&mut self) {
        if self.take_pending(Pending::Simple) {
            self.emit(&Message::Ok);
        }
    }

    /// Fails the request awaiting an answer, or the transfer in progress.
    pub fn reply_error(&mut self, code: ErrorCode, message: &str) {
        let msg = Message::Error {
            code,
            message: message.to_owned(),
        };
        match std::mem::replace(&mut self.state, State::Idle) {
            State::AwaitReply(Pending::Hello { .. }) => {
                // Refused before the handshake completed: nothing more.
                self.emit(&msg);
                self.state = State::Closed;
            }
            State::AwaitReply(Pending::Put { resume, .. }) => {
                self.emit(&msg);
                self.state = Self::after_refused_put(resume);
            }
            State::AwaitReply(_) => self.emit(&msg),
            State::AwaitCommit => {
                self.events
                    .push_back(ServerEvent::PutAbort { reason: code });
                self.emit(&msg);
            }
            State::Receiving(_) => {
                self.events
                    .push_back(ServerEvent::PutAbort { reason: code });
                self.emit(&msg);
                self.state = State::Draining;
            }
            State::Sending(dl) => {
                self.events.push_back(ServerEvent::GetEnd { digest: None });
                self.emit(&msg);
                // A pipelining client still acknowledges what it got.
                self.owe_acks(dl.frames, dl.sent, dl.acked);
            }
            other => self.state = other,
        }
    }

    /// Answers `PutStart`: data is expected from `start.offset` (whose
    /// prefix digest the client checks); `name` is the name asked for (the
    /// stored name, chosen at commit, comes in `PutDone`).
    pub fn accept_put(&mut self, name: &RemotePath, start: PutAccept) {
        let State::AwaitReply(Pending::Put { size, .. }) = self.state else {
            return;
        };
        let (offset, prefix) = if start.offset <= size {
            (start.offset, start.prefix)
        } else {
            (0, blake3::Hasher::new())
        };
        let digest = if offset == 0 {
            [0; 32]
        } else {
            *prefix.finalize().as_bytes()
        };
        self.emit(&Message::PutReady {
            name: name.as_str().to_owned(),
            offset,
            digest,
            partial: start.partial,
            flags: if start.resumable { READY_RESUMABLE } else { 0 },
        });
        self.state = State::Receiving(Box::new(Upload {
            size,
            next: offset,
            hasher: prefix,
        }));
        self.start_progress(offset);
    }

    /// Answers `PutCommit`: the file is durable and visible as `name`.
    pub fn put_committed(&mut self, name: &RemotePath, size: u64) {
        let done = Message::PutDone {
            name: name.as_str().to_owned(),
            size,
        };
        if self.resolve_commit(&done) {
            return;
        }
        if matches!(self.state, State::AwaitCommit) {
            self.emit(&Message::PutDone {
                name: name.as_str().to_owned(),
                size,
            });
            self.state = State::Idle;
        }
    }

    /// Fails the oldest commit under way (`PutCommit` answered with an
    /// error: the file could not be made durable or take its name).
    /// Unlike [`ServerSession::reply_error`], it never touches the upload
    /// that may be arriving meanwhile.
    pub fn commit_failed(&mut self, code: ErrorCode, message: &str) {
        let error = Message::Error {
            code,
            message: message.to_owned(),
        };
        if !self.resolve_commit(&error) {
            self.reply_error(code, message);
        }
    }

    /// Answers the oldest overlapped commit with `reply`, then lets out
    /// what was queued behind it; false when none is under way.
    fn resolve_commit(&mut self, reply: &Message) -> bool {
        let Some(after) = self.pipe.as_mut().and_then(|o| o.committing.pop_front()) else {
            return false;
        };
        self.out.push(reply);
        self.out.push_encoded(&after);
        true
    }

    /// Output goes to the socket's queue, or, while commits are under
    /// way, behind the newest one.
    fn emit(&mut self, msg: &Message) {
        match self.pipe.as_mut().and_then(|o| o.committing.back_mut()) {
            Some(after) => super::frame::encode(msg, after),
            None => self.out.push(msg),
        }
    }

    /// Answers `GetStart`: the file has `size` bytes, data follows from
    /// `offset`; `prefix` has absorbed the file's first `offset` bytes (its
    /// digest lets the client check the part it holds). An offset past the
    /// end restarts from 0. `known`: the whole file's digest, if the driver
    /// knows it (then nothing is hashed, and `prefix` is not needed when
    /// `offset` is `size`).
    pub fn accept_get(
        &mut self,
        size: u64,
        offset: u64,
        mtime: i64,
        prefix: blake3::Hasher,
        known: Option<[u8; 32]>,
    ) {
        if !self.take_pending(Pending::Get) {
            return;
        }
        let (offset, prefix) = if offset <= size {
            (offset, prefix)
        } else {
            (0, blake3::Hasher::new())
        };
        let digest = match known {
            _ if offset == 0 => [0; 32],
            // The prefix is the whole file, whose digest is known.
            Some(d) if offset == size => d,
            _ => *prefix.finalize().as_bytes(),
        };
        self.emit(&Message::GetReady {
            size,
            offset,
            mtime,
            digest,
        });
        let dl = Download {
            size,
            sent: offset,
            acked: offset,
            frames: 0,
            digest: match known {
                Some(d) => Digest::Known(d),
                None => Digest::Hashing(Box::new(prefix)),
            },
        };
        self.state = State::Sending(Box::new(dl));
        self.start_progress(offset);
        self.finish_download_if_complete();
    }

    /// During a download: how many bytes `send_data` takes now (0 when the
    /// window is full, output is backed up, or no download runs).
    pub fn wants_data(&self) -> usize {
        let State::Sending(dl) = &self.state else {
            return 0;
        };
        if self.out.len() >= self.output_cap as usize {
            return 0;
        }
        let in_flight = dl.sent - dl.acked + self.late_bytes();
        let window = u64::from(self.config.window).saturating_sub(in_flight);
        let remaining = dl.size - dl.sent;
        let chunk = MAX_CHUNK.min(self.output_cap as usize) as u64;
        remaining.min(window).min(chunk) as usize
    }

    /// Caps the download output this session queues (between
    /// [`MIN_OUTPUT_CAP`] and [`MAX_PENDING_OUTPUT`], the default): a server
    /// whose connections together hold too much unsent output lowers it,
    /// so clients that do not read cannot pile up its memory, while each
    /// still gets a chunk at a time.
    pub fn set_output_cap(&mut self, cap: usize) {
        // At most MAX_PENDING_OUTPUT (1 MiB): fits.
        self.output_cap = cap.clamp(MIN_OUTPUT_CAP, MAX_PENDING_OUTPUT) as u32;
    }

    /// Bytes of output queued for the client and not yet taken.
    pub fn queued_output(&self) -> usize {
        self.out.len()
    }

    /// Bytes of memory the output queue holds (queued or not): what a
    /// server counts against its budget for all connections.
    pub fn output_memory(&self) -> usize {
        self.out.held() + self.held_output()
    }

    /// Output held behind commits under way.
    fn held_output(&self) -> usize {
        self.pipe
            .as_ref()
            .map_or(0, |p| p.committing.iter().map(Vec::len).sum())
    }

    /// Room for the next `want` (at most `wants_data()`) bytes of a
    /// download, queued for the socket in place; say how many were put
    /// there with [`ServerSession::data_filled`]. Saves copying every byte
    /// that [`ServerSession::send_data`] would copy.
    pub fn data_buffer(&mut self, want: usize) -> &mut [u8] {
        self.out.data_room(want.min(MAX_CHUNK))
    }

    /// The first `n` bytes of [`ServerSession::data_buffer`] are the next
    /// bytes of the file; as [`ServerSession::send_data`].
    pub fn data_filled(&mut self, n: usize) {
        let State::Sending(dl) = &mut self.state else {
            return;
        };
        let n = n.min((dl.size - dl.sent) as usize);
        if n == 0 {
            return;
        }
        let data = self.out.data_filled(dl.sent, n);
        dl.frames += 1;
        if let Digest::Hashing(hasher) = &mut dl.digest {
            hasher.update(data);
        }
        dl.sent += n as u64;
        self.finish_download_if_complete();
    }

    /// During a download: the next bytes of the file (at most `wants_data()`),
    /// copied in. When the last byte was given, `Done` with the digest is
    /// queued.
    pub fn send_data(&mut self, data: &[u8]) {
        for chunk in data.chunks(MAX_CHUNK) {
            self.data_buffer(chunk.len()).copy_from_slice(chunk);
            self.data_filled(chunk.len());
        }
    }

    // ---- outputs ----------------------------------------------------

    /// Bytes to write to the socket.
    pub fn poll_transmit(&self) -> &[u8] {
        self.out.pending()
    }

    /// `n` bytes of `poll_transmit()` were written.
    pub fn consume_transmit(&mut self, n: usize) {
        self.out.consume(n);
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Closed => None,
            State::Handshake => Some(self.created + self.config.handshake_timeout),
            // Its answers (and so the client's window) wait for earlier
            // commits: slow storage must not make the upload look stalled.
            State::Receiving(_) if self.held_output() > 0 || self.commits_under_way() > 0 => {
                Some(self.last_input + self.config.idle_timeout)
            }
            State::Receiving(_) | State::Sending(_) => {
                Some(self.last_progress + self.config.stall_timeout.min(self.config.idle_timeout))
            }
            _ if self.transferring() => {
                Some(self.last_input + self.config.stall_timeout.min(self.config.idle_timeout))
            }
            _ => Some(self.last_input + self.config.idle_timeout),
        }
    }

    /// True while data moves: the stall deadline applies instead of the
    /// idle one (input is progress here: `Data` for an upload, `Ack`s for
    /// a download).
    fn transferring(&self) -> bool {
        matches!(
            self.state,
            State::Receiving(_) | State::Draining | State::Sending(_)
        )
    }

    /// Ends the session from the driver's side (a revoked token): queues
    /// `Error(code)`, aborts a transfer in progress, and closes once the
    /// output is flushed.
    pub fn end(&mut self, code: ErrorCode, message: &str) {
        self.fail(code, message);
    }

    /// True once the client was welcomed: its `Hello` (and token) passed.
    pub fn is_welcomed(&self) -> bool {
        !matches!(
            self.state,
            State::Handshake | State::AwaitReply(Pending::Hello { .. }) | State::Closed
        )
    }

    /// True while the session takes more input.
    pub fn wants_read(&self) -> bool {
        !matches!(self.state, State::Closed)
            && self.out.len() + self.held_output() < MAX_PENDING_OUTPUT
            && self.input.buffered() < MAX_FRAME_LEN as usize + 4
    }

    /// True while output is waiting.
    pub fn wants_write(&self) -> bool {
        self.out.len() > 0
    }

    /// True once the session is over: close the socket when the output is flushed.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// True while an upload or a download is running.
    pub fn in_transfer(&self) -> bool {
        matches!(
            self.state,
            State::Receiving(_) | State::Sending(_) | State::AwaitCommit | State::Draining
        ) || self.commits_under_way() > 0
    }

    /// Verified uploads whose commit the driver has not answered yet.
    pub fn commits_under_way(&self) -> usize {
        let overlapped = self.pipe.as_ref().map_or(0, |o| o.committing.len());
        overlapped + usize::from(matches!(self.state, State::AwaitCommit))
    }

    /// Releases idle buffers so an idle connection costs little memory.
    pub fn shrink(&mut self) {
        self.input.shrink();
        self.out.shrink();
        // The first request grows the queue to a few slots (~220 B) that
        // would stay for good; it is empty between requests.
        if self.events.is_empty() {
            self.events = std::collections::VecDeque::new();
        }
        if self.pipe.as_ref().is_some_and(|p| {
            p.stash.is_empty()
                && p.late.is_empty()
                && p.committing.is_empty()
                && p.deferred.is_none()
        }) {
            self.pipe = None;
        }
    }

    // ---- internals ----------------------------------------------------

    fn take_pending(&mut self, want: Pending) -> bool {
        match self.state {
            State::AwaitReply(p) if p == want => {
                self.state = State::Idle;
                true
            }
            _ => false,
        }
    }

    fn finish_download_if_complete(&mut self) {
        if let State::Sending(dl) = &self.state {
            if dl.sent == dl.size {
                let (digest, hashed) = match &dl.digest {
                    Digest::Known(known) => (*known, false),
                    Digest::Hashing(hasher) => (*hasher.finalize().as_bytes(), true),
                };
                let done = Message::Done {
                    size: dl.size,
                    digest,
                };
                let (frames, sent, acked) = (dl.frames, dl.sent, dl.acked);
                self.emit(&done);
                self.state = State::Idle;
                self.events.push_back(ServerEvent::GetEnd {
                    digest: hashed.then_some(digest),
                });
                // Acks still in flight are ignored in Idle, or counted
                // off as late ones from a pipelining client.
                self.owe_acks(frames, sent, acked);
            }
        }
    }

    fn handle_message(&mut self, msg: Message) {
        let state = std::mem::replace(&mut self.state, State::Idle);
        match state {
            State::Handshake => self.handle_hello(msg),
            State::Idle => self.handle_request(msg),
            State::Receiving(up) => self.handle_upload(up, msg),
            State::Draining => match msg {
                Message::Data { .. } => self.state = State::Draining,
                Message::Done { .. } | Message::Cancel => self.state = State::Idle,
                other => self.unexpected(&other),
            },
            State::Sending(dl) => self.handle_download(dl, msg),
            other => {
                // AwaitReply/AwaitCommit/Closed never reach here: poll_event stops first.
                self.state = other;
            }
        }
    }

    fn handle_hello(&mut self, msg: Message) {
        let Message::Hello {
            magic,
            min_version,
            max_version,
            token,
            flags,
        } = msg
        else {
            self.fail(ErrorCode::Protocol, "expected Hello as the first frame");
            return;
        };
        if magic != MAGIC {
            self.fail(ErrorCode::Protocol, "not an ftx client");
            return;
        }
        if min_version > PROTOCOL_VERSION || max_version < MIN_PROTOCOL_VERSION {
            let text = format!(
                "client speaks versions {min_version}-{max_version}, server speaks {MIN_PROTOCOL_VERSION}-{PROTOCOL_VERSION}"
            );
            self.fail(ErrorCode::Version, &text);
            return;
        }
        let version = max_version.min(PROTOCOL_VERSION);
        self.client_attrs = flags & FEATURE_ATTRS != 0;
        self.client_pipelines = flags & FEATURE_PIPELINE != 0;
        if self.config.authenticate {
            self.events.push_back(ServerEvent::Hello { token });
            self.state = State::AwaitReply(Pending::Hello { version });
        } else {
            self.welcome(version);
        }
    }

    fn welcome(&mut self, version: u16) {
        self.emit(&Message::Welcome {
            version,
            flags: FEATURE_ATTRS | FEATURE_PARTS | FEATURE_PIPELINE,
            window: self.config.window,
            server: self.config.server_name.clone(),
        });
        self.state = State::Idle;
    }

    fn handle_request(&mut self, msg: Message) {
        if let Some(o) = self.pipe.as_mut() {
            let fresh_put = matches!(&msg, Message::Put { flags, .. } if flags & PUT_RESUME == 0);
            let idle = matches!(msg, Message::Ack { .. } | Message::Cancel);
            if !o.committing.is_empty() && !fresh_put && !idle {
                o.deferred = Some(msg);
                return;
            }
        }
        let (event, pending) = match msg {
            Message::List { path } => match RemotePath::parse(&path) {
                Ok(path) => (ServerEvent::List { path }, Pending::List),
                Err(e) => return self.refuse_name(&e),
            },
            Message::Put {
                path,
                size,
                offset,
                flags,
            } => {
                let resume = flags & PUT_RESUME != 0;
                if offset > size || (!resume && offset != 0) {
                    return self.fail(ErrorCode::Protocol, "put offset beyond the file size");
                }
                match RemotePath::parse_file(&path) {
                    Ok(path) => (
                        ServerEvent::PutStart {
                            path,
                            size,
                            offset,
                            force: flags & PUT_FORCE != 0,
                            resume,
                        },
                        Pending::Put { size, resume },
                    ),
                    Err(e) => {
                        self.refuse_name(&e);
                        self.state = Self::after_refused_put(resume);
                        return;
                    }
                }
            }
            Message::Get { path, offset } => match RemotePath::parse_file(&path) {
                Ok(path) => (ServerEvent::GetStart { path, offset }, Pending::Get),
                Err(e) => return self.refuse_name(&e),
            },
            Message::Mkdir { path } => match RemotePath::parse_file(&path) {
                Ok(path) => (ServerEvent::Mkdir { path }, Pending::Simple),
                Err(e) => return self.refuse_name(&e),
            },
            Message::Remove { path } => match RemotePath::parse_file(&path) {
                Ok(path) => (ServerEvent::Remove { path }, Pending::Simple),
                Err(e) => return self.refuse_name(&e),
            },
            Message::Rename { from, to } => {
                match (RemotePath::parse_file(&from), RemotePath::parse_file(&to)) {
                    (Ok(from), Ok(to)) => (ServerEvent::Rename { from, to }, Pending::Simple),
                    (Err(e), _) | (_, Err(e)) => return self.refuse_name(&e),
                }
            }
            Message::SetAttrs {
                path,
                flags,
                mode,
                mtime,
            } => match RemotePath::parse_file(&path) {
                Ok(_) if flags & ATTR_MODE != 0 && mode & !SETTABLE_MODE != 0 => {
                    self.emit(&Message::Error {
                        code: ErrorCode::PermissionDenied,
                        message: "setuid, setgid and sticky bits cannot be set".into(),
                    });
                    return;
                }
                Ok(path) => (
                    ServerEvent::SetAttrs {
                        path,
                        mode: (flags & ATTR_MODE != 0).then_some(mode),
                        mtime: (flags & ATTR_MTIME != 0).then_some(mtime),
                    },
                    Pending::Simple,
                ),
                Err(e) => return self.refuse_name(&e),
            },
            Message::Statfs { path } => match RemotePath::parse(&path) {
                Ok(path) => (ServerEvent::Statfs { path }, Pending::Space),
                Err(e) => return self.refuse_name(&e),
            },
            Message::ListParts { path } => match RemotePath::parse(&path) {
                Ok(path) => (ServerEvent::ListParts { path }, Pending::List),
                Err(e) => return self.refuse_name(&e),
            },
            Message::DiscardPart { path } => match RemotePath::parse_file(&path) {
                Ok(path) => (ServerEvent::DiscardPart { path }, Pending::Simple),
                Err(e) => return self.refuse_name(&e),
            },
            // Late acknowledgments of a finished download, and a Cancel that
            // crossed our Done or Error on the wire, are harmless.
            Message::Ack { offset } => return self.late_ack(offset),
            Message::Cancel => return,
            other => return self.unexpected(&other),
        };
        self.state = State::AwaitReply(pending);
        self.events.push_back(event);
    }

    /// A `Data` frame, its payload still in the input buffer: hashed there
    /// and handed to the driver without a copy.
    fn handle_data(&mut self, offset: u64, len: usize) {
        let State::Receiving(up) = &mut self.state else {
            // Every other state looks only at the frame's kind.
            let data = Vec::new();
            return self.handle_message(Message::Data { offset, data });
        };
        let end = offset.checked_add(len as u64);
        if offset != up.next || end.is_none_or(|e| e > up.size) {
            self.events.push_back(ServerEvent::PutAbort {
                reason: ErrorCode::Protocol,
            });
            return self.fail(ErrorCode::Protocol, "data out of order or past the size");
        }
        up.hasher.update(self.input.data());
        up.next += len as u64;
        let (next, done) = (up.next, up.next == up.size);
        self.emit(&Message::Ack { offset: next });
        self.events.push_back(ServerEvent::PutData { offset, len });
        self.note_progress(next, done);
    }

    /// The running transfer has moved `moved` bytes in all (`done`: all of
    /// them): the stall deadline starts again once it moved
    /// [`MIN_PROGRESS`] more since the last time, or finished.
    fn note_progress(&mut self, moved: u64, done: bool) {
        if done || moved.saturating_sub(self.progress_mark) >= MIN_PROGRESS {
            self.last_progress = self.last_input;
            self.progress_mark = moved;
        }
    }

    /// A transfer starts at `offset`: its progress counts from now.
    fn start_progress(&mut self, offset: u64) {
        self.last_progress = self.last_input;
        self.progress_mark = offset;
    }

    /// The bytes of the last [`ServerEvent::PutData`], valid until the
    /// session takes more input.
    pub fn data(&self) -> &[u8] {
        self.input.data()
    }

    fn handle_upload(&mut self, up: Box<Upload>, msg: Message) {
        match msg {
            Message::Done { size, digest } => {
                if size != up.size || up.next != up.size {
                    self.events.push_back(ServerEvent::PutAbort {
                        reason: ErrorCode::Protocol,
                    });
                    return self.fail(ErrorCode::Protocol, "Done before all data arrived");
                }
                if *up.hasher.finalize().as_bytes() != digest {
                    self.events.push_back(ServerEvent::PutAbort {
                        reason: ErrorCode::Integrity,
                    });
                    self.emit(&Message::Error {
                        code: ErrorCode::Integrity,
                        message: DIGEST_MISMATCH.into(),
                    });
                    self.state = State::Idle;
                    return;
                }
                self.events.push_back(ServerEvent::PutCommit { size });
                if self.client_pipelines {
                    // The next upload may arrive while this one commits.
                    self.pipe_mut().committing.push_back(Vec::new());
                    self.state = State::Idle;
                } else {
                    self.state = State::AwaitCommit;
                }
            }
            Message::Cancel => {
                self.events.push_back(ServerEvent::PutAbort {
                    reason: ErrorCode::Cancelled,
                });
                self.emit(&Message::Error {
                    code: ErrorCode::Cancelled,
                    message: "upload cancelled".into(),
                });
                self.state = State::Idle;
            }
            other => {
                self.events.push_back(ServerEvent::PutAbort {
                    reason: ErrorCode::Protocol,
                });
                self.unexpected(&other);
            }
        }
    }

    fn handle_download(&mut self, mut dl: Box<Download>, msg: Message) {
        match msg {
            Message::Ack { offset } if self.pipe.as_ref().is_some_and(|p| !p.late.is_empty()) => {
                self.state = State::Sending(dl);
                self.late_ack(offset);
            }
            Message::Ack { offset } => {
                dl.frames = dl.frames.saturating_sub(1);
                if offset < dl.acked || offset > dl.sent {
                    self.events.push_back(ServerEvent::GetEnd { digest: None });
                    return self.fail(ErrorCode::Protocol, "acknowledgment of unsent data");
                }
                dl.acked = offset;
                let (acked, done) = (dl.acked, dl.acked == dl.size);
                self.note_progress(acked, done);
                self.state = State::Sending(dl);
            }
            Message::Cancel => {
                self.events.push_back(ServerEvent::GetEnd { digest: None });
                self.emit(&Message::Error {
                    code: ErrorCode::Cancelled,
                    message: "download cancelled".into(),
                });
                self.state = State::Idle;
                self.owe_acks(dl.frames, dl.sent, dl.acked);
                if self.is_closed() {
                    return;
                }
                // Everything queued behind it ends too, unserved.
                let stashed = self.pipe.as_mut().map_or(0, |p| {
                    p.stash_bytes = 0;
                    p.stash.drain(..).count()
                });
                for _ in 0..stashed {
                    self.emit(&Message::Error {
                        code: ErrorCode::Cancelled,
                        message: "cancelled before it started".into(),
                    });
                }
            }
            Message::Put { .. } => {
                self.events.push_back(ServerEvent::GetEnd { digest: None });
                self.fail(ErrorCode::Protocol, "Put queued behind a running download");
            }
            Message::Data { .. } | Message::Done { .. } => {
                self.events.push_back(ServerEvent::GetEnd { digest: None });
                self.unexpected(&msg);
            }
            request => {
                // A pipelined request: served once the download ended.
                self.state = State::Sending(dl);
                self.stash_request(request);
            }
        }
    }

    /// Queues a request that arrived while a download runs; a client
    /// past the pipelining bounds broke the protocol.
    fn stash_request(&mut self, msg: Message) {
        // (`fail` ends the running download.)
        if !msg.is_request() {
            return self.unexpected(&msg);
        }
        let cost = msg.frame_len();
        // The running download is one of the client's outstanding requests.
        let pipe = self.pipe_mut();
        if pipe.stash.len() + 1 >= MAX_PIPELINE || pipe.stash_bytes + cost > MAX_PIPELINE_BYTES {
            return self.fail(ErrorCode::Protocol, "too many requests in flight");
        }
        pipe.stash_bytes += cost;
        pipe.stash.push_back((msg, cost));
    }

    /// A download ended with `frames` of its `Data` frames unacknowledged:
    /// a pipelining client still sends an `Ack` for each, which must not
    /// count for the next download.
    fn owe_acks(&mut self, frames: u32, sent: u64, acked: u64) {
        if !self.client_pipelines || frames == 0 {
            return;
        }
        // A client that keeps the bounds never owes more downloads than
        // it may have outstanding; one that never acknowledges would grow
        // this without end.
        if self
            .pipe
            .as_ref()
            .is_some_and(|p| p.late.len() >= MAX_PIPELINE)
        {
            return self.fail(ErrorCode::Protocol, "too many unacknowledged downloads");
        }
        let pipe = self.pipe_mut();
        pipe.late_total += sent - acked;
        pipe.late.push_back(Late {
            frames,
            sent,
            acked,
        });
    }

    /// An `Ack` of an ended download (ignored when none is owed: it
    /// crossed our `Error`, or the client does not pipeline).
    fn late_ack(&mut self, offset: u64) {
        let Some(pipe) = self.pipe.as_mut() else {
            return;
        };
        let Some(late) = pipe.late.front_mut() else {
            return;
        };
        if offset < late.acked || offset > late.sent {
            return self.fail(ErrorCode::Protocol, "acknowledgment of unsent data");
        }
        pipe.late_total -= offset - late.acked;
        late.acked = offset;
        late.frames -= 1;
        if late.frames == 0 {
            pipe.late.pop_front();
        }
    }

    /// Bytes of ended downloads still unacknowledged: they count against
    /// the window of the running one.
    fn late_bytes(&self) -> u64 {
        self.pipe.as_ref().map_or(0, |p| p.late_total)
    }

    fn pipe_mut(&mut self) -> &mut Pipeline {
        self.pipe.get_or_insert_with(Box::default)
    }

    /// Where a refused `Put` leaves the session. A fresh upload's data
    /// (and even its `Done`) may already be on the way, and the client ends
    /// it with `Done` or `Cancel`: drain until then. A resumed upload sends
    /// nothing before `PutReady`, so the refusal ends it: the next frame is
    /// the next request.
    fn after_refused_put(resume: bool) -> State {
        if resume {
            State::Idle
        } else {
            State::Draining
        }
    }

    fn refuse_name(&mut self, e: &super::path::NameError) {
        self.emit(&Message::Error {
            code: ErrorCode::InvalidName,
            message: e.to_string(),
        });
        self.state = State::Idle;
    }

    fn unexpected(&mut self, msg: &Message) {
        let text = format!("unexpected frame type 0x{:02x} here", msg.kind());
        self.fail(ErrorCode::Protocol, &text);
    }

    fn protocol_error(&mut self, e: &DecodeError) {
        self.fail(ErrorCode::Protocol, &e.to_string());
    }

    fn abort_transfer(&mut self, reason: ErrorCode) {
        match self.state {
            State::Receiving(_) | State::AwaitCommit => {
                self.events.push_back(ServerEvent::PutAbort { reason })
            }
            State::Sending(_) => self.events.push_back(ServerEvent::GetEnd { digest: None }),
            _ => {}
        }
    }

    /// Queues a fatal error frame and closes after it is flushed.
    fn fail(&mut self, code: ErrorCode, message: &str) {
        if !matches!(self.state, State::Closed) {
            self.abort_transfer(code);
            // Straight out, ahead of what waits for commits: the
            // connection ends, and the client must read why.
            self.out.push(&Message::Error {
                code,
                message: message.to_owned(),
            });
            self.state = State::Closed;
        }
    }
}
