//! `ClientSession`: the client half of one connection as a state machine.
//! Commands (`list`, `put`, ...) queue requests, bytes from the server come
//! in through `handle_input`, results come out as [`ClientEvent`]s, and
//! bytes for the socket are drained with `poll_transmit`. No I/O here.

use super::error::{DecodeError, ErrorCode, RemoteError, DIGEST_MISMATCH};
use super::frame::{Frame, FrameReader};
use super::limits::{
    EARLY_WINDOW, FRAME_HEADER_LEN, MAGIC, MAX_CHUNK, MAX_COMPONENT_LEN, MAX_LIST_ENTRIES,
    MAX_PIPELINE, MAX_PIPELINE_BYTES, MIN_PROTOCOL_VERSION, MIN_WINDOW, PROTOCOL_VERSION,
};
use super::message::{
    data_header, Entry, Message, ATTR_MODE, ATTR_MTIME, FEATURE_ATTRS, FEATURE_PIPELINE, PUT_FORCE,
    PUT_RESUME, READY_RESUMABLE,
};
use super::outbox::Outbox;

/// What happened on the connection, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The handshake completed.
    Connected {
        /// Protocol version chosen.
        version: u16,
        /// Server software, as announced.
        server: String,
        /// The server's feature bits ([`FEATURE_ATTRS`]: it serves
        /// `set_attrs` and `statfs` and sends modes in listings).
        features: u32,
    },
    /// The complete answer to `list`.
    Listing(Vec<Entry>),
    /// The server is ready for the upload's data, from `offset`. When
    /// `offset` > 0 the driver checks `digest` against its own first
    /// `offset` bytes and calls [`ClientSession::resume_with`], or cancels.
    PutReady {
        /// Name asked for (the stored name comes with `PutDone`).
        name: String,
        /// Offset of the first byte to send.
        offset: u64,
        /// BLAKE3 of the server's first `offset` bytes.
        digest: [u8; 32],
        /// Bytes of an interrupted upload of the name that `reput` could
        /// continue (0 if none).
        partial: u64,
        /// Whether the server keeps this upload if it is interrupted.
        resumable: bool,
    },
    /// The upload is verified, durable and stored as `name`.
    PutDone {
        /// Name the server stored the file under.
        name: String,
        /// Size stored.
        size: u64,
    },
    /// The download starts: the file has `size` bytes, data from `offset`.
    /// When `offset` > 0 the driver checks `digest` against the part it
    /// holds and calls [`ClientSession::resume_with`], or cancels.
    GetReady {
        /// Size of the whole file.
        size: u64,
        /// Offset of the first byte that will arrive.
        offset: u64,
        /// Modification time on the server (Unix seconds).
        mtime: i64,
        /// BLAKE3 of the server's first `offset` bytes.
        digest: [u8; 32],
    },
    /// `len` bytes of the download, in order, readable as
    /// [`ClientSession::data`] until the session takes more input.
    GetData {
        /// Offset of `data()[0]` in the file.
        offset: u64,
        /// How many bytes.
        len: usize,
    },
    /// All bytes arrived and, unless the driver hashes downloads itself
    /// ([`ClientSession::hash_downloads_outside`]), the whole-file BLAKE3
    /// digest matched.
    GetDone {
        /// Size of the file.
        size: u64,
        /// The server's whole-file digest when the session did not check
        /// it: the driver compares it with its own and treats a mismatch
        /// as an integrity failure. `None`: checked here.
        unchecked: Option<[u8; 32]>,
    },
    /// `mkdir`, `rm`, `rename` or `set_attrs` succeeded.
    Ok,
    /// The answer to `statfs`.
    Space {
        /// Size of the server's file system in bytes.
        total: u64,
        /// Bytes an upload may still use.
        avail: u64,
    },
    /// The current request failed; the connection stays usable.
    Failed(RemoteError),
    /// The connection is over (server error, protocol violation or close);
    /// no further request can be made.
    Closed(RemoteError),
}

#[derive(Debug)]
enum State {
    Handshake,
    Idle,
    AwaitListing(Vec<Entry>),
    AwaitPutReady {
        size: u64,
    },
    Putting(Put),
    /// `Done` sent; `ready` once `PutReady` came (it may come later).
    AwaitPutDone(Put),
    /// Cancel sent during an upload: wait for the server's answer.
    PutCancelling(Put),
    AwaitGetReady,
    Getting(Get),
    /// Cancel sent during a download: discard data until `Done`/`Error`.
    GetCancelling,
    AwaitOk,
    AwaitSpace,
    Closed,
}

#[derive(Debug)]
struct Put {
    size: u64,
    sent: u64,
    acked: u64,
    hasher: blake3::Hasher,
    /// `PutReady` arrived. A fresh upload sends data before it does.
    ready: bool,
}

#[derive(Debug)]
struct Get {
    size: u64,
    next: u64,
    /// `None` when the driver hashes the data itself.
    hasher: Option<blake3::Hasher>,
}

impl Put {
    fn new(size: u64, from: u64, ready: bool) -> Put {
        Put {
            size,
            sent: from,
            acked: from,
            hasher: blake3::Hasher::new(),
            ready,
        }
    }
}

/// Why a command could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Another request is still running, or the handshake is not done.
    #[error("another request is in progress")]
    Busy,
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
}

/// The client side of one connection. See [`crate::proto`] for the protocol.
///
/// Requests may be pipelined when the server allows it
/// ([`FEATURE_PIPELINE`]): `state` is then the oldest outstanding request
/// (the replies that arrive are its own, as the server answers in
/// order) and `queue` holds the ones sent after it. Only the last one
/// sent may still be sending data.
#[derive(Debug)]
pub struct ClientSession {
    state: State,
    /// Requests sent after `state`'s, oldest first, with their frame lengths.
    queue: std::collections::VecDeque<(State, usize)>,
    /// The frame length of `state`'s request (0 when none runs).
    head_cost: usize,
    /// Frame lengths of every outstanding request together.
    outstanding_bytes: usize,
    /// Upload bytes sent and neither acknowledged nor ended, over every
    /// outstanding upload: at most the window.
    in_flight: u64,
    /// The server takes pipelined requests.
    pipelining: bool,
    input: FrameReader,
    out: Outbox,
    events: std::collections::VecDeque<ClientEvent>,
    window: u64,
    /// Downloads are hashed by the driver, not here.
    hash_outside: bool,
}

impl ClientSession {
    /// A session whose `Hello` is queued at once, carrying `token` (empty
    /// for a server that needs none).
    pub fn new(token: Vec<u8>) -> ClientSession {
        let mut out = Outbox::default();
        out.push(&Message::Hello {
            magic: MAGIC,
            min_version: MIN_PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            flags: FEATURE_ATTRS | FEATURE_PIPELINE,
            token,
        });
        ClientSession {
            state: State::Handshake,
            queue: Default::default(),
            head_cost: 0,
            outstanding_bytes: 0,
            in_flight: 0,
            pipelining: false,
            input: FrameReader::new(),
            out,
            events: Default::default(),
            window: u64::from(MIN_WINDOW),
            hash_outside: false,
        }
    }

    // ---- commands -----------------------------------------------------

    /// Lists a remote directory (empty: the root).
    pub fn list(&mut self, path: &str) -> Result<(), CommandError> {
        self.request(
            Message::List {
                path: path.to_owned(),
            },
            State::AwaitListing(Vec::new()),
        )
    }

    /// Starts an upload of a `size`-byte file. Without `resume` the data
    /// may follow at once (`wants_data`), before `PutReady` arrives. With
    /// `resume: Some(max)`, asks to continue the interrupted upload of this
    /// name from at most `max` (`Some(0)` restarts it from scratch);
    /// `PutReady` says from where, and data waits for it.
    pub fn put(
        &mut self,
        path: &str,
        size: u64,
        resume: Option<u64>,
        force: bool,
    ) -> Result<(), CommandError> {
        let mut flags = if force { PUT_FORCE } else { 0 };
        if resume.is_some() {
            flags |= PUT_RESUME;
        }
        let msg = Message::Put {
            path: path.to_owned(),
            size,
            offset: resume.unwrap_or(0).min(size),
            flags,
        };
        if resume.is_some() {
            return self.request(msg, State::AwaitPutReady { size });
        }
        self.request(msg, State::Putting(Put::new(size, 0, false)))?;
        self.finish_upload_if_complete();
        Ok(())
    }

    /// Starts a download from `offset`.
    pub fn get(&mut self, path: &str, offset: u64) -> Result<(), CommandError> {
        let msg = Message::Get {
            path: path.to_owned(),
            offset,
        };
        self.request(msg, State::AwaitGetReady)
    }

    /// Creates a remote directory.
    pub fn mkdir(&mut self, path: &str) -> Result<(), CommandError> {
        let path = path.to_owned();
        self.request(Message::Mkdir { path }, State::AwaitOk)
    }

    /// Removes a remote file or empty directory.
    pub fn remove(&mut self, path: &str) -> Result<(), CommandError> {
        let path = path.to_owned();
        self.request(Message::Remove { path }, State::AwaitOk)
    }

    /// Renames a remote file or directory (never replacing the target).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), CommandError> {
        let msg = Message::Rename {
            from: from.to_owned(),
            to: to.to_owned(),
        };
        self.request(msg, State::AwaitOk)
    }

    /// Sets a remote file's or directory's permission bits and/or
    /// modification time (a server with [`FEATURE_ATTRS`] only).
    pub fn set_attrs(
        &mut self,
        path: &str,
        mode: Option<u16>,
        mtime: Option<i64>,
    ) -> Result<(), CommandError> {
        let mut flags = 0;
        if mode.is_some() {
            flags |= ATTR_MODE;
        }
        if mtime.is_some() {
            flags |= ATTR_MTIME;
        }
        let msg = Message::SetAttrs {
            path: path.to_owned(),
            flags,
            mode: mode.unwrap_or(0),
            mtime: mtime.unwrap_or(0),
        };
        self.request(msg, State::AwaitOk)
    }

    /// Asks for the space of the server's file system holding `path` (a
    /// server with [`FEATURE_ATTRS`] only).
    pub fn statfs(&mut self, path: &str) -> Result<(), CommandError> {
        let path = path.to_owned();
        self.request(Message::Statfs { path }, State::AwaitSpace)
    }

    /// Lists this client's interrupted uploads in a remote directory (a
    /// server with [`FEATURE_PARTS`](super::message::FEATURE_PARTS) only):
    /// answered as a listing.
    pub fn list_parts(&mut self, path: &str) -> Result<(), CommandError> {
        let path = path.to_owned();
        self.request(Message::ListParts { path }, State::AwaitListing(Vec::new()))
    }

    /// Drops this client's interrupted upload of `path` (a server with
    /// [`FEATURE_PARTS`](super::message::FEATURE_PARTS) only).
    pub fn discard_part(&mut self, path: &str) -> Result<(), CommandError> {
        let path = path.to_owned();
        self.request(Message::DiscardPart { path }, State::AwaitOk)
    }

    /// After a `PutReady` or `GetReady` with an offset: the BLAKE3 state of
    /// the first `offset` bytes this side holds, so the whole-file digest
    /// covers them. Call it before any data moves.
    pub fn resume_with(&mut self, prefix: blake3::Hasher) {
        // A resumed upload is the only request outstanding when its
        // `PutReady` comes: nothing is sent behind it before.
        match &mut self.state {
            State::Putting(p) => {
                p.hasher = prefix;
                self.finish_upload_if_complete();
            }
            State::Getting(g) => {
                if let Some(h) = &mut g.hasher {
                    *h = prefix;
                }
            }
            _ => {}
        }
    }

    /// During an upload: how many bytes `send_data` takes now (0 when the
    /// window is full or no upload is running).
    pub fn wants_data(&self) -> usize {
        let State::Putting(p) = self.tail() else {
            return 0;
        };
        let mut window = self.window.saturating_sub(self.in_flight);
        if !p.ready {
            window = window.min(u64::from(EARLY_WINDOW).saturating_sub(p.sent - p.acked));
        }
        (p.size - p.sent).min(window).min(MAX_CHUNK as u64) as usize
    }

    /// During an upload: the next bytes of the file. After the last byte
    /// `Done` with the whole-file digest is queued.
    pub fn send_data(&mut self, data: &[u8]) {
        let State::Putting(p) = Self::tail_of(&mut self.state, &mut self.queue) else {
            return;
        };
        let data = &data[..data.len().min((p.size - p.sent) as usize)];
        for chunk in data.chunks(MAX_CHUNK) {
            p.hasher.update(chunk);
            self.out.push_data(p.sent, chunk);
            p.sent += chunk.len() as u64;
        }
        self.in_flight += data.len() as u64;
        self.finish_upload_if_complete();
    }

    /// During an upload with no output queued: takes the next bytes of the
    /// file as `send_data` does, but without copying them into the output.
    /// Returns the `Data` frame header; the driver must write it and then
    /// `data` before anything `poll_transmit` gives afterwards. `None` (and
    /// nothing taken) when output is queued, no upload runs, or `data` is
    /// empty or longer than `wants_data()`: use `send_data` then.
    pub fn send_data_direct(&mut self, data: &[u8]) -> Option<[u8; 13]> {
        if self.out.len() > 0 || data.is_empty() || data.len() > self.wants_data() {
            return None;
        }
        let State::Putting(p) = Self::tail_of(&mut self.state, &mut self.queue) else {
            return None;
        };
        p.hasher.update(data);
        let header = data_header(p.sent, data.len());
        p.sent += data.len() as u64;
        self.in_flight += data.len() as u64;
        self.finish_upload_if_complete();
        Some(header)
    }

    /// Abandons the transfer in progress: the upload being sent, or the
    /// running download and every request pipelined behind it. Each
    /// ends as the server answers: `Failed` (cancelled) or, if the
    /// `Cancel` crossed its end on the wire, as success.
    pub fn cancel(&mut self) {
        let tail = Self::tail_of(&mut self.state, &mut self.queue);
        if let State::Putting(_) = tail {
            let State::Putting(p) = std::mem::replace(tail, State::Idle) else {
                unreachable!("matched above");
            };
            *tail = State::PutCancelling(p);
            self.out.push(&Message::Cancel);
            return;
        }
        let mut any = false;
        let states = std::iter::once(&mut self.state).chain(self.queue.iter_mut().map(|(s, _)| s));
        for state in states {
            if matches!(state, State::Getting(_) | State::AwaitGetReady) {
                *state = State::GetCancelling;
                any = true;
            }
        }
        if any {
            self.out.push(&Message::Cancel);
        }
    }

    // ---- inputs -------------------------------------------------------

    /// Bytes received from the server.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if !matches!(self.state, State::Closed) {
            self.input.push(bytes);
        }
    }

    /// Room to receive at least `want` bytes into directly, saving the copy
    /// `handle_input` makes; report what was filled with
    /// [`ClientSession::handle_input_filled`].
    pub fn input_buffer(&mut self, want: usize) -> &mut [u8] {
        self.input.spare(want)
    }

    /// `n` bytes of [`ClientSession::input_buffer`] were filled by the server.
    pub fn handle_input_filled(&mut self, n: usize) {
        if !matches!(self.state, State::Closed) {
            self.input.commit(n);
        }
    }

    /// The server closed the connection.
    pub fn handle_eof(&mut self) {
        if matches!(self.state, State::Closed) {
            return;
        }
        let text = if self.input.check_eof().is_err() {
            "server closed the connection in the middle of a frame"
        } else {
            "server closed the connection"
        };
        self.close(ErrorCode::Protocol, text);
    }

    /// The next thing that happened, or `None` if more input is needed.
    /// With pipelined requests the events come in request order, each
    /// request's ending with its result (`Listing`, `PutDone`, `GetDone`,
    /// `Ok`, `Space` or `Failed`).
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Some(ev);
            }
            if matches!(self.state, State::Closed) {
                return None;
            }
            match self.input.next_frame() {
                Ok(Some(Frame::Message(msg))) => self.handle_message(msg),
                Ok(Some(Frame::Data { offset, len })) => self.handle_data(offset, len),
                Ok(None) => return None,
                Err(e) => self.decode_error(&e),
            }
            self.advance();
        }
    }

    /// Once the oldest request ended, the next one sent is the one the
    /// server answers now.
    fn advance(&mut self) {
        if !matches!(self.state, State::Idle) {
            return;
        }
        self.outstanding_bytes -= self.head_cost;
        self.head_cost = 0;
        if let Some((next, cost)) = self.queue.pop_front() {
            self.state = next;
            self.head_cost = cost;
        }
    }

    /// The request sent last (the only one that may still send data).
    fn tail(&self) -> &State {
        self.queue.back().map_or(&self.state, |(s, _)| s)
    }

    fn tail_of<'a>(
        state: &'a mut State,
        queue: &'a mut std::collections::VecDeque<(State, usize)>,
    ) -> &'a mut State {
        match queue.back_mut() {
            Some((s, _)) => s,
            None => state,
        }
    }

    /// Requests sent whose end has not arrived yet.
    pub fn outstanding(&self) -> usize {
        let head = usize::from(!matches!(
            self.state,
            State::Idle | State::Handshake | State::Closed
        ));
        head + self.queue.len()
    }

    /// Whether `get(path, _)` would be taken now (not refused as busy).
    pub fn would_take_get(&self, path: &str) -> bool {
        let msg = Message::Get {
            path: path.to_owned(),
            offset: 0,
        };
        matches!(self.state, State::Idle) || self.may_pipeline(&msg, msg.frame_len())
    }

    /// True while an upload's data is still to be sent (the last request
    /// sent is an upload that has not sent all its bytes, nor `Cancel`).
    pub fn uploading(&self) -> bool {
        matches!(self.tail(), State::Putting(_))
    }

    /// The server takes pipelined requests (it said so in `Welcome`).
    pub fn pipelines(&self) -> bool {
        self.pipelining
    }

    // ---- outputs ------------------------------------------------------

    /// Bytes to write to the socket.
    pub fn poll_transmit(&self) -> &[u8] {
        self.out.pending()
    }

    /// `n` bytes of `poll_transmit()` were written.
    pub fn consume_transmit(&mut self, n: usize) {
        self.out.consume(n);
    }

    /// True when no request is running and a command may be issued.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// True once the connection is over.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// True while the handshake has not completed.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.state, State::Handshake)
    }

    /// The sender window the server granted.
    pub fn window(&self) -> u64 {
        self.window
    }

    // ---- internals ----------------------------------------------------

    fn request(&mut self, msg: Message, next: State) -> Result<(), CommandError> {
        // Encoded once: its length is what it counts against the bounds.
        let mut frame = Vec::new();
        super::frame::encode(&msg, &mut frame);
        let cost = frame.len() - FRAME_HEADER_LEN;
        match self.state {
            State::Idle => {
                self.out.push_encoded(&frame);
                self.state = next;
                self.head_cost = cost;
                self.outstanding_bytes = cost;
                Ok(())
            }
            State::Closed => Err(CommandError::Closed),
            State::Handshake => Err(CommandError::Busy),
            _ if self.may_pipeline(&msg, cost) => {
                self.out.push_encoded(&frame);
                self.queue.push_back((next, cost));
                self.outstanding_bytes += cost;
                Ok(())
            }
            _ => Err(CommandError::Busy),
        }
    }

    /// Whether `msg` may go out now behind the outstanding requests: the
    /// server pipelines, the bounds hold, the last upload sent all its
    /// data (a resumed one waits for `PutReady` first), and a `Put` never
    /// queues behind a download (the server would have to hold its data).
    fn may_pipeline(&self, msg: &Message, cost: usize) -> bool {
        if !self.pipelining
            || self.outstanding() >= MAX_PIPELINE
            || self.outstanding_bytes + cost > MAX_PIPELINE_BYTES
            || matches!(self.tail(), State::Putting(_) | State::AwaitPutReady { .. })
        {
            return false;
        }
        let downloading = std::iter::once(&self.state)
            .chain(self.queue.iter().map(|(s, _)| s))
            .any(|s| {
                matches!(
                    s,
                    State::AwaitGetReady | State::Getting(_) | State::GetCancelling
                )
            });
        !(matches!(msg, Message::Put { .. }) && downloading)
    }

    fn finish_upload_if_complete(&mut self) {
        let tail = Self::tail_of(&mut self.state, &mut self.queue);
        if matches!(tail, State::Putting(p) if p.sent == p.size) {
            let State::Putting(p) = std::mem::replace(tail, State::Idle) else {
                unreachable!("matched above");
            };
            self.out.push(&Message::Done {
                size: p.size,
                digest: *p.hasher.finalize().as_bytes(),
            });
            *tail = State::AwaitPutDone(p);
        }
    }

    /// The upload `p` ended (stored, failed or cancelled): what it still
    /// had unacknowledged no longer counts against the window.
    fn put_ended(&mut self, p: &Put) {
        self.in_flight -= p.sent - p.acked;
    }

    /// `PutReady` in `state`: for a resumed upload it says where the data
    /// starts; a fresh upload's data already flows from 0, so it must say 0.
    fn put_ready(&mut self, state: State, offset: u64, event: ClientEvent) {
        let state = match state {
            State::AwaitPutReady { size } => {
                if offset > size {
                    return self.close(ErrorCode::Protocol, "server chose an offset past the end");
                }
                State::Putting(Put::new(size, offset, true))
            }
            mut fresh => {
                if offset != 0 {
                    let text = "server chose an offset for a fresh upload";
                    return self.close(ErrorCode::Protocol, text);
                }
                match &mut fresh {
                    State::Putting(p) | State::AwaitPutDone(p) => p.ready = true,
                    _ => {}
                }
                fresh
            }
        };
        self.events.push_back(event);
        self.state = state;
        // A resumed upload finishes only once the driver gave the prefix
        // state (`resume_with`), so `Done` covers it.
        if offset == 0 {
            self.finish_upload_if_complete();
        }
    }

    /// A `Data` frame, its payload still in the input buffer: hashed there
    /// and handed to the driver without a copy.
    fn handle_data(&mut self, offset: u64, len: usize) {
        if matches!(self.state, State::GetCancelling) {
            // Every frame is acknowledged, also after a `Cancel`: a
            // pipelining server counts the acknowledgments it is owed.
            let end = offset.saturating_add(len as u64);
            return self.out.push(&Message::Ack { offset: end });
        }
        let State::Getting(g) = &mut self.state else {
            // Every other state looks only at the frame's kind.
            let data = Vec::new();
            return self.handle_message(Message::Data { offset, data });
        };
        let end = offset.checked_add(len as u64);
        if offset != g.next || end.is_none_or(|e| e > g.size) {
            return self.close(ErrorCode::Protocol, "data out of order or past the size");
        }
        if let Some(h) = &mut g.hasher {
            h.update(self.input.data());
        }
        g.next += len as u64;
        self.out.push(&Message::Ack { offset: g.next });
        self.events.push_back(ClientEvent::GetData { offset, len });
    }

    /// From now on downloads are not hashed here: the driver hashes the
    /// bytes of every [`ClientEvent::GetData`] itself (the prefix too when
    /// it resumes; [`ClientSession::resume_with`] is then not needed for a
    /// download) and checks the digest that [`ClientEvent::GetDone`]
    /// carries. Lets a client hash on another thread.
    pub fn hash_downloads_outside(&mut self) {
        self.hash_outside = true;
    }

    /// The bytes of the last [`ClientEvent::GetData`], valid until the
    /// session takes more input.
    pub fn data(&self) -> &[u8] {
        self.input.data()
    }

    fn handle_message(&mut self, msg: Message) {
        // An Error frame ends whatever is running.
        if let Message::Error { code, message } = msg {
            return self.handle_error(RemoteError::new(code, message));
        }
        let state = std::mem::replace(&mut self.state, State::Idle);
        match (state, msg) {
            (
                State::Handshake,
                Message::Welcome {
                    version,
                    window,
                    server,
                    flags,
                },
            ) => {
                if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version) {
                    return self.close(ErrorCode::Version, "server chose an unknown version");
                }
                self.window = u64::from(window.max(MIN_WINDOW));
                self.pipelining = flags & FEATURE_PIPELINE != 0;
                self.events.push_back(ClientEvent::Connected {
                    version,
                    server,
                    features: flags,
                });
            }
            (State::AwaitListing(mut acc), Message::Entries { entries, last }) => {
                // A hostile server must not grow the listing without end:
                // at most so many entries, each name one component long.
                if acc.len() + entries.len() > MAX_LIST_ENTRIES {
                    return self.close(ErrorCode::Protocol, "server sent too many entries");
                }
                if entries.iter().any(|e| e.name.len() > MAX_COMPONENT_LEN) {
                    return self.close(ErrorCode::Protocol, "server sent an overlong name");
                }
                acc.extend(entries);
                if last {
                    self.events.push_back(ClientEvent::Listing(acc));
                } else {
                    self.state = State::AwaitListing(acc);
                }
            }
            (
                state @ (State::AwaitPutReady { .. }
                | State::Putting(Put { ready: false, .. })
                | State::AwaitPutDone(Put { ready: false, .. })),
                Message::PutReady {
                    name,
                    offset,
                    digest,
                    partial,
                    flags,
                },
            ) => {
                let event = ClientEvent::PutReady {
                    name,
                    offset,
                    digest,
                    partial,
                    resumable: flags & READY_RESUMABLE != 0,
                };
                self.put_ready(state, offset, event);
            }
            (
                mut s @ (State::Putting(_) | State::AwaitPutDone(_) | State::PutCancelling(_)),
                Message::Ack { offset },
            ) => {
                let (State::Putting(p) | State::AwaitPutDone(p) | State::PutCancelling(p)) = &mut s
                else {
                    unreachable!("matched above");
                };
                if offset < p.acked || offset > p.sent {
                    return self.close(ErrorCode::Protocol, "acknowledgment of unsent data");
                }
                self.in_flight -= offset - p.acked;
                p.acked = offset;
                self.state = s;
            }
            (s @ State::PutCancelling(_), Message::PutReady { .. }) => self.state = s,
            (
                State::AwaitPutDone(p @ Put { ready: true, .. }) | State::PutCancelling(p),
                Message::PutDone { name, size },
            ) => {
                self.put_ended(&p);
                self.events.push_back(ClientEvent::PutDone { name, size });
            }
            (
                State::AwaitGetReady,
                Message::GetReady {
                    size,
                    offset,
                    mtime,
                    digest,
                },
            ) => {
                if offset > size {
                    return self.close(ErrorCode::Protocol, "server chose an offset past the end");
                }
                self.events.push_back(ClientEvent::GetReady {
                    digest,
                    size,
                    offset,
                    mtime,
                });
                self.state = State::Getting(Get {
                    size,
                    next: offset,
                    hasher: (!self.hash_outside).then(blake3::Hasher::new),
                });
            }
            (State::Getting(g), Message::Done { size, digest }) => {
                if size != g.size || g.next != g.size {
                    return self.close(ErrorCode::Protocol, "Done before all data arrived");
                }
                match g.hasher {
                    Some(h) if *h.finalize().as_bytes() != digest => {
                        self.events
                            .push_back(ClientEvent::Failed(integrity_failure()));
                    }
                    Some(_) => self.events.push_back(ClientEvent::GetDone {
                        size,
                        unchecked: None,
                    }),
                    None => self.events.push_back(ClientEvent::GetDone {
                        size,
                        unchecked: Some(digest),
                    }),
                }
            }
            (State::GetCancelling, Message::GetReady { .. }) => self.state = State::GetCancelling,
            (State::GetCancelling, Message::Done { .. }) => {
                self.events.push_back(ClientEvent::Failed(RemoteError::new(
                    ErrorCode::Cancelled,
                    "download cancelled",
                )));
            }
            (State::AwaitOk, Message::Ok) => self.events.push_back(ClientEvent::Ok),
            (State::AwaitSpace, Message::Space { total, avail }) => {
                self.events.push_back(ClientEvent::Space { total, avail })
            }
            (_, other) => {
                let text = format!("unexpected frame type 0x{:02x} from server", other.kind());
                self.close(ErrorCode::Protocol, &text);
            }
        }
    }

    fn handle_error(&mut self, err: RemoteError) {
        match std::mem::replace(&mut self.state, State::Idle) {
            // Errors before the handshake, or outside any request, end the connection.
            State::Handshake | State::Idle | State::Closed => {
                self.state = State::Closed;
                self.events.push_back(ClientEvent::Closed(err));
            }
            State::Putting(p) => {
                // The server discards our data in flight until it sees Cancel.
                self.put_ended(&p);
                self.out.push(&Message::Cancel);
                self.events.push_back(ClientEvent::Failed(err));
            }
            State::AwaitPutDone(p) | State::PutCancelling(p) => {
                self.put_ended(&p);
                self.events.push_back(ClientEvent::Failed(err));
            }
            _ => self.events.push_back(ClientEvent::Failed(err)),
        }
    }

    fn decode_error(&mut self, e: &DecodeError) {
        let text = format!("bad frame from server: {e}");
        self.close(ErrorCode::Protocol, &text);
    }

    fn close(&mut self, code: ErrorCode, message: &str) {
        if !matches!(self.state, State::Closed) {
            self.state = State::Closed;
            self.events
                .push_back(ClientEvent::Closed(RemoteError::new(code, message)));
        }
    }
}

/// The failure a download ends with when the data does not match the
/// server's digest.
pub fn integrity_failure() -> RemoteError {
    RemoteError::new(ErrorCode::Integrity, DIGEST_MISMATCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame;

    /// `send_data_direct` puts the same bytes on the wire, in the same
    /// order, as `send_data`, and refuses while output is queued.
    #[test]
    fn direct_data_matches_queued_data() {
        let file: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let run = |direct: bool| -> Vec<u8> {
            let mut s = ClientSession::new(Vec::new());
            let mut wire = s.poll_transmit().to_vec();
            s.consume_transmit(wire.len());
            let mut reply = Vec::new();
            frame::encode(
                &Message::Welcome {
                    version: PROTOCOL_VERSION,
                    flags: 0,
                    window: MIN_WINDOW,
                    server: "t".into(),
                },
                &mut reply,
            );
            s.handle_input(&reply);
            assert!(matches!(
                s.poll_event(),
                Some(ClientEvent::Connected { .. })
            ));
            s.put("f", file.len() as u64, None, false).unwrap();
            // The Put request is still queued: no direct send yet.
            assert!(s.send_data_direct(&file[..10]).is_none());
            let n = s.poll_transmit().len();
            wire.extend_from_slice(s.poll_transmit());
            s.consume_transmit(n);
            reply.clear();
            frame::encode(
                &Message::PutReady {
                    name: "f".into(),
                    offset: 0,
                    digest: [0; 32],
                    partial: 0,
                    flags: 0,
                },
                &mut reply,
            );
            s.handle_input(&reply);
            assert!(matches!(s.poll_event(), Some(ClientEvent::PutReady { .. })));
            for chunk in file.chunks(1000) {
                if direct {
                    let header = s.send_data_direct(chunk).unwrap();
                    wire.extend_from_slice(&header);
                    wire.extend_from_slice(chunk);
                } else {
                    s.send_data(chunk);
                }
                let n = s.poll_transmit().len();
                wire.extend_from_slice(s.poll_transmit());
                s.consume_transmit(n);
            }
            wire
        };
        assert_eq!(run(true), run(false));
    }
}
