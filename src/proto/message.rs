//! Typed messages and their byte encoding inside a frame (type byte + body).
//! Owns the field layout of every message; knows nothing of sessions or I/O.

use super::error::{DecodeError, ErrorCode};
use super::limits::{
    MAX_CHUNK, MAX_ENTRIES_PER_FRAME, MAX_MESSAGE_LEN, MAX_PATH_LEN, MAX_TOKEN_LEN,
};

/// Flag in `Put`: replace an existing file instead of choosing `stem_N.ext`.
pub const PUT_FORCE: u8 = 0x01;
/// Flag in `Put`: continue the interrupted upload of this name; `offset`
/// is then the most the client can resume from (its file size).
pub const PUT_RESUME: u8 = 0x02;
/// Flag in `PutReady`: if this upload is interrupted, the server keeps it
/// and `Put` with [`PUT_RESUME`] can continue it.
pub const READY_RESUMABLE: u8 = 0x01;
/// Feature bit in `Hello.flags` (the client reads modes in `Entries`) and
/// `Welcome.flags` (the server sends them to such a client and serves
/// `SetAttrs` and `Statfs`).
pub const FEATURE_ATTRS: u32 = 0x01;
/// Feature bit in `Welcome.flags`: the server serves `ListParts` and
/// `DiscardPart` (a client's interrupted uploads).
pub const FEATURE_PARTS: u32 = 0x02;
/// Feature bit in `Hello.flags` and `Welcome.flags`: requests may be
/// pipelined (see "Many requests in flight" in [`crate::proto`]). Only
/// a client whose server set it sends a request before the previous one
/// ended; a client that sets it acknowledges every `Data` frame of a
/// download, also after its `Cancel`.
pub const FEATURE_PIPELINE: u32 = 0x04;
/// Bit in the first byte of `Entries`: the final batch.
const ENTRIES_LAST: u8 = 0x01;
/// Bit in the first byte of `Entries`: every entry carries its mode.
const ENTRIES_MODES: u8 = 0x02;
/// Flag in `SetAttrs`: set the permission bits to `mode`.
pub const ATTR_MODE: u8 = 0x01;
/// Flag in `SetAttrs`: set the modification time to `mtime`.
pub const ATTR_MTIME: u8 = 0x02;
/// The permission bits a client may set: rwx for owner, group and others;
/// never setuid, setgid or sticky.
pub const SETTABLE_MODE: u16 = 0o777;

/// What kind of object a listing entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (listed as itself, not followed).
    Symlink,
    /// Anything else (fifo, socket, device).
    Other,
}

impl EntryKind {
    fn to_u8(self) -> u8 {
        match self {
            EntryKind::File => 0,
            EntryKind::Dir => 1,
            EntryKind::Symlink => 2,
            EntryKind::Other => 3,
        }
    }
    fn from_u8(v: u8) -> EntryKind {
        match v {
            0 => EntryKind::File,
            1 => EntryKind::Dir,
            2 => EntryKind::Symlink,
            _ => EntryKind::Other,
        }
    }
}

/// One entry of a remote listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name (lossily converted if the file system name is not UTF-8).
    pub name: String,
    /// File, directory, link or other.
    pub kind: EntryKind,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Permission bits (`0o7777` at most), when the server sent them
    /// (both sides set [`FEATURE_ATTRS`]).
    pub mode: Option<u16>,
}

/// Every message of the protocol (version 2). See [`crate::proto`] for the
/// sequences they form and who may send which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// C->S, first frame: magic, supported version range, flags (0), token.
    Hello {
        /// Must equal [`super::limits::MAGIC`].
        magic: [u8; 4],
        /// Oldest version the client speaks.
        min_version: u16,
        /// Newest version the client speaks.
        max_version: u16,
        /// Reserved feature bits (0 so far).
        flags: u32,
        /// Access token (empty when the server needs none).
        token: Vec<u8>,
    },
    /// S->C, handshake accepted.
    Welcome {
        /// The version chosen for the connection.
        version: u16,
        /// Reserved feature bits (0 so far).
        flags: u32,
        /// The receive window the server grants to a client sending data.
        window: u32,
        /// Server software name and version, for display.
        server: String,
    },
    /// C->S: list a directory (empty path: the root).
    List {
        /// Remote directory.
        path: String,
    },
    /// S->C: a batch of listing entries; `last` ends the listing.
    Entries {
        /// Up to [`MAX_ENTRIES_PER_FRAME`] entries.
        entries: Vec<Entry>,
        /// True on the final batch.
        last: bool,
    },
    /// C->S: start an upload of `size` bytes, data starting at `offset`.
    Put {
        /// Remote name wanted.
        path: String,
        /// Size of the whole file.
        size: u64,
        /// First byte that will be sent (0 for a fresh upload).
        offset: u64,
        /// [`PUT_FORCE`] or 0.
        flags: u8,
    },
    /// S->C: ready to receive data from `offset`.
    PutReady {
        /// Name asked for (the stored name, chosen at commit, comes in `PutDone`).
        name: String,
        /// Offset the server expects the first `Data` at.
        offset: u64,
        /// BLAKE3 of the `offset` bytes the server already holds (all zero
        /// when `offset` is 0): the client checks its own prefix against it.
        digest: [u8; 32],
        /// Bytes of an interrupted upload of this name that this upload does
        /// not continue (0 if none): `Put` with [`PUT_RESUME`] could.
        partial: u64,
        /// [`READY_RESUMABLE`] or 0.
        flags: u8,
    },
    /// S->C: the upload is verified, durable and visible under `name`.
    PutDone {
        /// Final stored name.
        name: String,
        /// Size stored.
        size: u64,
    },
    /// C->S: start a download at `offset`.
    Get {
        /// Remote file.
        path: String,
        /// First byte wanted.
        offset: u64,
    },
    /// S->C: the file exists; `Data` follows from `offset`.
    GetReady {
        /// Size of the whole file.
        size: u64,
        /// Offset of the first `Data` (the one asked for, or 0 when it was
        /// past the end).
        offset: u64,
        /// Modification time, seconds since the Unix epoch.
        mtime: i64,
        /// BLAKE3 of the file's first `offset` bytes (all zero when `offset`
        /// is 0): the client checks the prefix it holds against it.
        digest: [u8; 32],
    },
    /// C->S: create a directory.
    Mkdir {
        /// Directory to create.
        path: String,
    },
    /// C->S: remove a file or an empty directory.
    Remove {
        /// What to remove.
        path: String,
    },
    /// C->S: rename (never replaces an existing target).
    Rename {
        /// Current name.
        from: String,
        /// New name.
        to: String,
    },
    /// S->C: the mkdir/rm/rename succeeded.
    Ok,
    /// Either way during a transfer: file bytes starting at `offset`.
    Data {
        /// Offset of the first byte in the file.
        offset: u64,
        /// At most [`MAX_CHUNK`] bytes.
        data: Vec<u8>,
    },
    /// Receiver -> sender: every byte before `offset` has been received.
    Ack {
        /// Cumulative offset.
        offset: u64,
    },
    /// Sender -> receiver: all data sent; BLAKE3 of the whole file.
    Done {
        /// Size of the whole file.
        size: u64,
        /// BLAKE3 digest of the whole file.
        digest: [u8; 32],
    },
    /// C->S (with [`FEATURE_ATTRS`]): set a file's or directory's
    /// permission bits and/or modification time.
    SetAttrs {
        /// Remote file or directory.
        path: String,
        /// [`ATTR_MODE`] and/or [`ATTR_MTIME`]: which fields apply.
        flags: u8,
        /// New permission bits (within [`SETTABLE_MODE`]).
        mode: u16,
        /// New modification time, seconds since the Unix epoch.
        mtime: i64,
    },
    /// C->S (with [`FEATURE_ATTRS`]): the space of the file system that
    /// holds a path.
    Statfs {
        /// Remote path (empty: the root).
        path: String,
    },
    /// C->S (with [`FEATURE_PARTS`]): this client's interrupted uploads in
    /// a directory, answered with `Entries` (each a file: the name it was
    /// uploaded to, the bytes held, the part's modification time).
    ListParts {
        /// Remote directory (empty: the root).
        path: String,
    },
    /// C->S (with [`FEATURE_PARTS`]): drop this client's interrupted
    /// upload of `path`, answered with `Ok`.
    DiscardPart {
        /// The name the interrupted upload was for.
        path: String,
    },
    /// S->C: the answer to `Statfs`.
    Space {
        /// Size of the file system in bytes.
        total: u64,
        /// Bytes an upload may still use.
        avail: u64,
    },
    /// Either way: abandon the transfer in progress.
    Cancel,
    /// Either way: the request or the connection failed.
    Error {
        /// The cause.
        code: ErrorCode,
        /// Detail for humans.
        message: String,
    },
}

/// Frame type bytes.
pub mod kind {
    /// `Hello`.
    pub const HELLO: u8 = 0x01;
    /// `List`.
    pub const LIST: u8 = 0x10;
    /// `Put`.
    pub const PUT: u8 = 0x11;
    /// `Get`.
    pub const GET: u8 = 0x12;
    /// `Mkdir`.
    pub const MKDIR: u8 = 0x13;
    /// `Remove`.
    pub const REMOVE: u8 = 0x14;
    /// `Rename`.
    pub const RENAME: u8 = 0x15;
    /// `SetAttrs`.
    pub const SET_ATTRS: u8 = 0x16;
    /// `Statfs`.
    pub const STATFS: u8 = 0x17;
    /// `ListParts`.
    pub const LIST_PARTS: u8 = 0x18;
    /// `DiscardPart`.
    pub const DISCARD_PART: u8 = 0x19;
    /// `Data`.
    pub const DATA: u8 = 0x20;
    /// `Ack`.
    pub const ACK: u8 = 0x21;
    /// `Done`.
    pub const DONE: u8 = 0x22;
    /// `Cancel`.
    pub const CANCEL: u8 = 0x23;
    /// `Welcome`.
    pub const WELCOME: u8 = 0x81;
    /// `Entries`.
    pub const ENTRIES: u8 = 0x90;
    /// `PutReady`.
    pub const PUT_READY: u8 = 0x91;
    /// `PutDone`.
    pub const PUT_DONE: u8 = 0x92;
    /// `GetReady`.
    pub const GET_READY: u8 = 0x93;
    /// `Ok`.
    pub const OK: u8 = 0x94;
    /// `Space`.
    pub const SPACE: u8 = 0x95;
    /// `Error`.
    pub const ERROR: u8 = 0xE0;
}

impl Message {
    /// The frame type byte of this message.
    pub fn kind(&self) -> u8 {
        match self {
            Message::Hello { .. } => kind::HELLO,
            Message::Welcome { .. } => kind::WELCOME,
            Message::List { .. } => kind::LIST,
            Message::Entries { .. } => kind::ENTRIES,
            Message::Put { .. } => kind::PUT,
            Message::PutReady { .. } => kind::PUT_READY,
            Message::PutDone { .. } => kind::PUT_DONE,
            Message::Get { .. } => kind::GET,
            Message::GetReady { .. } => kind::GET_READY,
            Message::Mkdir { .. } => kind::MKDIR,
            Message::Remove { .. } => kind::REMOVE,
            Message::Rename { .. } => kind::RENAME,
            Message::SetAttrs { .. } => kind::SET_ATTRS,
            Message::Statfs { .. } => kind::STATFS,
            Message::ListParts { .. } => kind::LIST_PARTS,
            Message::DiscardPart { .. } => kind::DISCARD_PART,
            Message::Space { .. } => kind::SPACE,
            Message::Ok => kind::OK,
            Message::Data { .. } => kind::DATA,
            Message::Ack { .. } => kind::ACK,
            Message::Done { .. } => kind::DONE,
            Message::Cancel => kind::CANCEL,
            Message::Error { .. } => kind::ERROR,
        }
    }

    /// True for a client's request: what starts an operation.
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            Message::List { .. }
                | Message::Put { .. }
                | Message::Get { .. }
                | Message::Mkdir { .. }
                | Message::Remove { .. }
                | Message::Rename { .. }
                | Message::SetAttrs { .. }
                | Message::Statfs { .. }
                | Message::ListParts { .. }
                | Message::DiscardPart { .. }
        )
    }

    /// The length field of this message's frame (type byte and body): what
    /// a request counts against [`crate::proto::limits::MAX_PIPELINE_BYTES`].
    pub fn frame_len(&self) -> usize {
        let mut body = Vec::new();
        self.encode_body(&mut body);
        body.len()
    }

    /// Appends the type byte and body (not the length prefix) to `out`.
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.kind());
        match self {
            Message::Hello {
                magic,
                min_version,
                max_version,
                flags,
                token,
            } => {
                out.extend_from_slice(magic);
                out.extend_from_slice(&min_version.to_be_bytes());
                out.extend_from_slice(&max_version.to_be_bytes());
                out.extend_from_slice(&flags.to_be_bytes());
                put_bytes(out, token);
            }
            Message::Welcome {
                version,
                flags,
                window,
                server,
            } => {
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(&flags.to_be_bytes());
                out.extend_from_slice(&window.to_be_bytes());
                put_str(out, server);
            }
            Message::List { path }
            | Message::Mkdir { path }
            | Message::Remove { path }
            | Message::Statfs { path }
            | Message::ListParts { path }
            | Message::DiscardPart { path } => put_str(out, path),
            Message::Entries { entries, last } => {
                // Modes go out only when every entry has one.
                let modes = !entries.is_empty() && entries.iter().all(|e| e.mode.is_some());
                let mut head = if *last { ENTRIES_LAST } else { 0 };
                if modes {
                    head |= ENTRIES_MODES;
                }
                out.push(head);
                out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
                for e in entries {
                    out.push(e.kind.to_u8());
                    out.extend_from_slice(&e.size.to_be_bytes());
                    out.extend_from_slice(&e.mtime.to_be_bytes());
                    if let (true, Some(mode)) = (modes, e.mode) {
                        out.extend_from_slice(&mode.to_be_bytes());
                    }
                    put_str(out, &e.name);
                }
            }
            Message::SetAttrs {
                path,
                flags,
                mode,
                mtime,
            } => {
                put_str(out, path);
                out.push(*flags);
                out.extend_from_slice(&mode.to_be_bytes());
                out.extend_from_slice(&mtime.to_be_bytes());
            }
            Message::Space { total, avail } => {
                out.extend_from_slice(&total.to_be_bytes());
                out.extend_from_slice(&avail.to_be_bytes());
            }
            Message::Put {
                path,
                size,
                offset,
                flags,
            } => {
                put_str(out, path);
                out.extend_from_slice(&size.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                out.push(*flags);
            }
            Message::PutReady {
                name,
                offset,
                digest,
                partial,
                flags,
            } => {
                put_str(out, name);
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(digest);
                out.extend_from_slice(&partial.to_be_bytes());
                out.push(*flags);
            }
            Message::PutDone { name, size } => {
                put_str(out, name);
                out.extend_from_slice(&size.to_be_bytes());
            }
            Message::Get { path, offset } => {
                put_str(out, path);
                out.extend_from_slice(&offset.to_be_bytes());
            }
            Message::GetReady {
                size,
                offset,
                mtime,
                digest,
            } => {
                out.extend_from_slice(&size.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(&mtime.to_be_bytes());
                out.extend_from_slice(digest);
            }
            Message::Rename { from, to } => {
                put_str(out, from);
                put_str(out, to);
            }
            Message::Ok | Message::Cancel => {}
            Message::Data { offset, data } => {
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(data);
            }
            Message::Ack { offset } => out.extend_from_slice(&offset.to_be_bytes()),
            Message::Done { size, digest } => {
                out.extend_from_slice(&size.to_be_bytes());
                out.extend_from_slice(digest);
            }
            Message::Error { code, message } => {
                out.extend_from_slice(&code.to_u16().to_be_bytes());
                put_str(out, truncate_utf8(message, MAX_MESSAGE_LEN));
            }
        }
    }

    /// Checks the body of a `Data` frame (type byte first) and returns its
    /// offset; the payload is the rest of the body after the offset.
    pub fn data_offset(body: &[u8]) -> Result<u64, DecodeError> {
        let mut r = Reader { buf: &body[1..] };
        let offset = r.u64("data offset")?;
        if r.buf.len() > MAX_CHUNK {
            return Err(DecodeError::BadValue("data chunk too large"));
        }
        Ok(offset)
    }

    /// Decodes one frame body (type byte first, length prefix already removed).
    pub fn decode_body(body: &[u8]) -> Result<Message, DecodeError> {
        let (&t, rest) = body.split_first().ok_or(DecodeError::EmptyFrame)?;
        let mut r = Reader { buf: rest };
        let msg = match t {
            kind::HELLO => Message::Hello {
                magic: r.array("hello magic")?,
                min_version: r.u16("hello version")?,
                max_version: r.u16("hello version")?,
                flags: r.u32("hello flags")?,
                token: r.bytes(MAX_TOKEN_LEN, "hello token")?,
            },
            kind::WELCOME => Message::Welcome {
                version: r.u16("welcome version")?,
                flags: r.u32("welcome flags")?,
                window: r.u32("welcome window")?,
                server: r.string(MAX_MESSAGE_LEN, "server name")?,
            },
            kind::LIST => Message::List { path: r.path()? },
            kind::MKDIR => Message::Mkdir { path: r.path()? },
            kind::REMOVE => Message::Remove { path: r.path()? },
            kind::ENTRIES => {
                let head = r.u8("entries flags")?;
                if head & !(ENTRIES_LAST | ENTRIES_MODES) != 0 {
                    return Err(DecodeError::BadValue("entries flags"));
                }
                let (last, modes) = (head & ENTRIES_LAST != 0, head & ENTRIES_MODES != 0);
                let n = usize::from(r.u16("entries count")?);
                if n > MAX_ENTRIES_PER_FRAME {
                    return Err(DecodeError::BadValue("too many entries"));
                }
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let kind = EntryKind::from_u8(r.u8("entry kind")?);
                    let size = r.u64("entry size")?;
                    let mtime = r.i64("entry mtime")?;
                    let mode = if modes {
                        Some(r.u16("entry mode")?)
                    } else {
                        None
                    };
                    let name = r.string(MAX_PATH_LEN, "entry name")?;
                    entries.push(Entry {
                        name,
                        kind,
                        size,
                        mtime,
                        mode,
                    });
                }
                Message::Entries { entries, last }
            }
            kind::PUT => Message::Put {
                path: r.path()?,
                size: r.u64("put size")?,
                offset: r.u64("put offset")?,
                flags: r.u8("put flags")?,
            },
            kind::PUT_READY => Message::PutReady {
                name: r.path()?,
                offset: r.u64("ready offset")?,
                digest: r.array("ready digest")?,
                partial: r.u64("ready partial")?,
                flags: r.u8("ready flags")?,
            },
            kind::PUT_DONE => Message::PutDone {
                name: r.path()?,
                size: r.u64("done size")?,
            },
            kind::GET => Message::Get {
                path: r.path()?,
                offset: r.u64("get offset")?,
            },
            kind::GET_READY => Message::GetReady {
                size: r.u64("ready size")?,
                offset: r.u64("ready offset")?,
                mtime: r.i64("ready mtime")?,
                digest: r.array("ready digest")?,
            },
            kind::RENAME => Message::Rename {
                from: r.path()?,
                to: r.path()?,
            },
            kind::SET_ATTRS => Message::SetAttrs {
                path: r.path()?,
                flags: r.u8("attrs flags")?,
                mode: r.u16("attrs mode")?,
                mtime: r.i64("attrs mtime")?,
            },
            kind::STATFS => Message::Statfs { path: r.path()? },
            kind::LIST_PARTS => Message::ListParts { path: r.path()? },
            kind::DISCARD_PART => Message::DiscardPart { path: r.path()? },
            kind::SPACE => Message::Space {
                total: r.u64("space total")?,
                avail: r.u64("space avail")?,
            },
            kind::OK => Message::Ok,
            kind::CANCEL => Message::Cancel,
            kind::DATA => {
                let offset = Message::data_offset(body)?;
                let data = std::mem::take(&mut r.buf)[8..].to_vec();
                Message::Data { offset, data }
            }
            kind::ACK => Message::Ack {
                offset: r.u64("ack offset")?,
            },
            kind::DONE => Message::Done {
                size: r.u64("done size")?,
                digest: r.array("done digest")?,
            },
            kind::ERROR => Message::Error {
                code: ErrorCode::from_u16(r.u16("error code")?),
                message: r.string(MAX_MESSAGE_LEN, "error message")?,
            },
            other => return Err(DecodeError::UnknownType(other)),
        };
        if !r.buf.is_empty() {
            return Err(DecodeError::TrailingBytes(t));
        }
        Ok(msg)
    }
}

/// The 13 bytes that precede the payload of a `Data` frame: length prefix,
/// type and offset. Lets a sender frame file bytes without building a `Message`.
pub fn data_header(offset: u64, len: usize) -> [u8; 13] {
    let mut h = [0u8; 13];
    let frame_len = (1 + 8 + len) as u32;
    h[..4].copy_from_slice(&frame_len.to_be_bytes());
    h[4] = kind::DATA;
    h[5..].copy_from_slice(&offset.to_be_bytes());
    h
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let s = truncate_utf8(s, u16::MAX as usize);
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }
    fn bytes(&mut self, max: usize, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        let n = usize::from(self.u16(what)?);
        if n > max {
            return Err(DecodeError::BadValue(what));
        }
        Ok(self.take(n, what)?.to_vec())
    }
    fn string(&mut self, max: usize, what: &'static str) -> Result<String, DecodeError> {
        let n = usize::from(self.u16(what)?);
        if n > max {
            return Err(DecodeError::BadString(what));
        }
        let raw = self.take(n, what)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| DecodeError::BadString(what))
    }
    fn path(&mut self) -> Result<String, DecodeError> {
        self.string(2 * MAX_PATH_LEN, "path")
    }
}
