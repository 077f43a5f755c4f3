//! Harnesses for fuzzing and property tests: drive a session with
//! arbitrary bytes and check it never panics, never loops, and never emits
//! a frame that does not decode. Shared by `cargo test` (proptest) and the
//! `cargo fuzz` targets in `tests/fuzz/`, which can only reach `pub` items.
//! Like the rest of `proto` it does no I/O and reads no clock: time is an
//! `Instant` fixed by the caller and advanced by the input itself.
//! Not part of the supported API.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::client_session::ClientSession;
use super::error::ErrorCode;
use super::frame;
use super::message::{Entry, EntryKind};
use super::server_session::{ServerEvent, ServerSession, SessionConfig};

/// Most rounds of event handling one input slice may cause: a session that
/// needs more is stuck in a loop, which the harness reports as a panic.
const MAX_ROUNDS: usize = 100_000;
/// Largest file the in-memory store keeps, so a fuzzer's `Put` of 2^60
/// bytes is refused like a full disk instead of allocating.
const MAX_FILE: u64 = 1 << 20;

/// An in-memory store that answers every [`ServerEvent`] as ftxd's store
/// does (the checks and their order, clash names, resumable parts and
/// their locks, space reserved up front, remembered digests, limits): the
/// driver of the fuzz and property harnesses here, of the pump tests and of
/// the model-based sequence tests ([`super::model`]). Several sessions may
/// share it, each driven with [`MemStore::drive_conn`] under its own
/// number; the transfer fields belong to the connection driven last. The
/// fields are the knobs and what tests look at.
#[derive(Debug, Default)]
pub struct MemStore {
    /// Files by path (`d/a`).
    pub files: BTreeMap<String, Vec<u8>>,
    /// Directories by path (the root is implied).
    pub dirs: BTreeSet<String>,
    /// Any token is welcome; otherwise only `good`.
    pub open: bool,
    /// Refuse every change.
    pub read_only: bool,
    /// Largest upload accepted.
    pub max_size: Option<u64>,
    /// Free space: an upload that needs more is refused before any data
    /// flows, as ftxd's reservation refuses it.
    pub space: Option<u64>,
    /// A write that would make an upload hold more than this many bytes
    /// fails with this code (a disk that fills after all, an I/O error).
    pub fail_write_at: Option<(u64, ErrorCode)>,
    /// The upload in progress on the current connection.
    pub upload: Option<MemUpload>,
    /// Interrupted uploads kept for resuming, by target path (the hidden
    /// `.ftx-part-NAME` beside it).
    pub parts: BTreeMap<String, Vec<u8>>,
    /// The download in progress on the current connection.
    pub download: Option<Vec<u8>>,
    /// How far the download has been handed to the session.
    pub pos: usize,
    /// Digests the store "remembers" (handed to `accept_get`).
    pub known: BTreeMap<String, [u8; 32]>,
    /// What each `GetEnd` carried.
    pub ended: Vec<Option<[u8; 32]>>,
    /// The other connections' transfers (see [`MemStore::drive_conn`]).
    pub others: OtherConns,
}

/// The transfers of the connections a [`MemStore`] is not driving now.
#[derive(Debug, Default)]
pub struct OtherConns {
    /// The connection the store's transfer fields belong to.
    current: usize,
    /// Each other connection's upload, download and download position.
    map: BTreeMap<usize, ConnTransfers>,
}

/// One connection's upload, download and download position.
type ConnTransfers = (Option<MemUpload>, Option<Vec<u8>>, usize);

/// An upload in progress in a [`MemStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemUpload {
    /// Target path.
    pub path: String,
    /// Replace instead of choosing a clash name.
    pub force: bool,
    /// Bytes held so far (a resumed part's prefix included).
    pub data: Vec<u8>,
    /// Written into the name's part file (kept when interrupted); otherwise
    /// a one-off temporary file.
    pub in_part: bool,
}

/// The directory part of `name` ("" for a name in the root).
fn parent_of(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Why a path's parent cannot hold an entry, in the store's words.
fn parent_error(
    files: &BTreeMap<String, Vec<u8>>,
    dirs: &BTreeSet<String>,
    path: &str,
) -> Option<(ErrorCode, &'static str)> {
    let mut prefix = String::new();
    let comps: Vec<&str> = path.split('/').collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(c);
        if files.contains_key(&prefix) {
            return Some((ErrorCode::NotADirectory, "not a directory"));
        }
        if !dirs.contains(&prefix) {
            return Some((ErrorCode::NotFound, "no such file or directory"));
        }
    }
    None
}

impl MemStore {
    /// An open store (any token) holding a file `a` (1 KiB) and a directory
    /// `d`, refusing uploads over [`MAX_FILE`] so that a fuzzer's `Put` of
    /// 2^60 bytes allocates nothing.
    pub fn seeded() -> MemStore {
        let mut s = MemStore {
            open: true,
            max_size: Some(MAX_FILE),
            ..MemStore::default()
        };
        s.files
            .insert("a".into(), (0..1024u32).map(|i| i as u8).collect());
        s.dirs.insert("d".into());
        s
    }

    /// Makes connection `conn`'s transfers the current ones.
    fn switch_to(&mut self, conn: usize) {
        if conn == self.others.current {
            return;
        }
        let mine = (self.upload.take(), self.download.take(), self.pos);
        self.others.map.insert(self.others.current, mine);
        let (up, dl, pos) = self.others.map.remove(&conn).unwrap_or_default();
        (self.upload, self.download, self.pos) = (up, dl, pos);
        self.others.current = conn;
    }

    /// True when a running upload (of any connection) writes `path`'s part.
    pub fn part_held(&self, path: &str) -> bool {
        let holds = |u: &Option<MemUpload>| u.as_ref().is_some_and(|u| u.in_part && u.path == path);
        holds(&self.upload) || self.others.map.values().any(|(u, _, _)| holds(u))
    }

    /// True when a running upload (of any connection) has its hidden file
    /// in directory `dir`.
    fn dir_has_upload(&self, dir: &str) -> bool {
        let inside = |u: &Option<MemUpload>| u.as_ref().is_some_and(|u| is_child(&u.path, dir));
        inside(&self.upload) || self.others.map.values().any(|(u, _, _)| inside(u))
    }

    /// True when `dir` holds anything: an entry, a kept part or a running
    /// upload's hidden file (as on disk, where those are files too).
    fn dir_busy(&self, dir: &str) -> bool {
        self.files
            .keys()
            .chain(self.dirs.iter())
            .chain(self.parts.keys())
            .any(|p| is_child(p, dir))
            || self.dir_has_upload(dir)
    }

    /// Answers one event of connection `conn`'s session.
    pub fn handle_conn(&mut self, conn: usize, s: &mut ServerSession, ev: ServerEvent) {
        self.switch_to(conn);
        self.handle(s, ev);
    }

    /// Answers one event.
    pub fn handle(&mut self, s: &mut ServerSession, ev: ServerEvent) {
        match ev {
            ServerEvent::Hello { token } => {
                if self.open || token == b"good" {
                    s.accept_hello()
                } else {
                    s.reply_error(ErrorCode::Unauthorized, "bad token")
                }
            }
            ServerEvent::List { path } => {
                let dir = path.as_str();
                if !path.is_root() {
                    if let Some((code, text)) = parent_error(&self.files, &self.dirs, dir) {
                        return s.reply_error(code, text);
                    }
                    if self.files.contains_key(dir) {
                        return s.reply_error(ErrorCode::NotADirectory, "not a directory");
                    }
                    if !self.dirs.contains(dir) {
                        return s.reply_error(ErrorCode::NotFound, "no such directory");
                    }
                }
                let files = self
                    .files
                    .iter()
                    .filter(|(p, _)| is_child(p, dir))
                    .map(|(p, d)| (p, EntryKind::File, d.len() as u64));
                let dirs = self
                    .dirs
                    .iter()
                    .filter(|p| is_child(p, dir))
                    .map(|p| (p, EntryKind::Dir, 0));
                let mut entries: Vec<Entry> = files
                    .chain(dirs)
                    .map(|(p, kind, size)| Entry {
                        name: base_name(p).to_owned(),
                        kind,
                        size,
                        mtime: 0,
                        mode: Some(if kind == EntryKind::Dir { 0o755 } else { 0o644 }),
                    })
                    .collect();
                entries.sort_by(|a, b| a.name.cmp(&b.name));
                s.reply_entries(entries);
            }
            ServerEvent::PutStart {
                path,
                size,
                force,
                resume,
                offset,
            } => {
                if self.read_only {
                    return s.reply_error(ErrorCode::ReadOnly, "server is read-only");
                }
                if self.max_size.is_some_and(|m| size > m) {
                    return s.reply_error(ErrorCode::TooLarge, "over the limit");
                }
                let name = path.as_str().to_owned();
                if let Some((code, text)) = parent_error(&self.files, &self.dirs, &name) {
                    return s.reply_error(code, text);
                }
                if force && self.dirs.contains(&name) {
                    return s.reply_error(ErrorCode::IsDirectory, "is a directory");
                }
                let held_by_other = self.part_held(&name);
                let (held, in_part, partial) = if resume {
                    if held_by_other {
                        return s.reply_error(
                            ErrorCode::Busy,
                            "another upload of this name is running",
                        );
                    }
                    let mut held = self.parts.remove(&name).unwrap_or_default();
                    if held.len() as u64 > offset || held.len() as u64 > size {
                        held.clear();
                    }
                    (held, true, 0)
                } else {
                    match self.parts.get(&name) {
                        Some(p) if !p.is_empty() => (Vec::new(), false, p.len() as u64),
                        _ if held_by_other => (Vec::new(), false, 0),
                        _ => {
                            self.parts.remove(&name);
                            (Vec::new(), true, 0)
                        }
                    }
                };
                let need = size - held.len() as u64;
                if self.space.is_some_and(|free| need > free) {
                    // A part that holds an interrupted upload stays.
                    if !held.is_empty() {
                        self.parts.insert(name, held);
                    }
                    return s.reply_error(ErrorCode::NoSpace, "no space left on device");
                }
                let mut prefix = blake3::Hasher::new();
                prefix.update(&held);
                let accept = super::server_session::PutAccept {
                    offset: held.len() as u64,
                    prefix,
                    partial,
                    resumable: in_part,
                };
                self.upload = Some(MemUpload {
                    path: name,
                    force,
                    data: held,
                    in_part,
                });
                s.accept_put(&path, accept);
            }
            ServerEvent::PutData { len, .. } => {
                let data = s.data();
                assert_eq!(data.len(), len);
                let up = self.upload.as_mut().expect("data without an upload");
                if let Some((at, code)) = self.fail_write_at {
                    if (up.data.len() + data.len()) as u64 > at {
                        return s.reply_error(code, "write failed");
                    }
                }
                up.data.extend_from_slice(data);
            }
            ServerEvent::PutCommit { size } => {
                let up = self.upload.take().expect("commit without an upload");
                assert_eq!(up.data.len() as u64, size);
                let stored = if up.force {
                    if self.dirs.contains(&up.path) {
                        // As rename(2) over a directory; the upload is
                        // dropped, as ftxd drops it.
                        return s.commit_failed(ErrorCode::IsDirectory, "is a directory");
                    }
                    up.path.clone()
                } else {
                    self.free_name(&up.path)
                };
                self.files.insert(stored.clone(), up.data);
                let p = super::path::RemotePath::parse(&stored).expect("stored names are valid");
                s.put_committed(&p, size);
            }
            ServerEvent::PutAbort { reason } => {
                if let Some(up) = self.upload.take() {
                    // As ftxd: interruptions stay resumable; corrupt or
                    // refused data and a full disk do not.
                    let keep = matches!(
                        reason,
                        ErrorCode::Cancelled | ErrorCode::Timeout | ErrorCode::Protocol
                    );
                    if up.in_part && keep && !up.data.is_empty() {
                        self.parts.insert(up.path, up.data);
                    }
                }
            }
            ServerEvent::GetStart { path, offset } => {
                let name = path.as_str();
                if let Some((code, text)) = parent_error(&self.files, &self.dirs, name) {
                    return s.reply_error(code, text);
                }
                if self.dirs.contains(name) {
                    return s.reply_error(ErrorCode::IsDirectory, "is a directory");
                }
                match self.files.get(name) {
                    None => s.reply_error(ErrorCode::NotFound, "no such file"),
                    Some(d) => {
                        let offset = if offset as usize > d.len() { 0 } else { offset };
                        let mut prefix = blake3::Hasher::new();
                        prefix.update(&d[..offset as usize]);
                        self.download = Some(d.clone());
                        self.pos = offset as usize;
                        let known = self.known.get(name).copied();
                        s.accept_get(d.len() as u64, offset, 0, prefix, known);
                    }
                }
            }
            ServerEvent::GetEnd { digest } => {
                self.download = None;
                self.ended.push(digest);
            }
            ServerEvent::Mkdir { path } => {
                if self.read_only {
                    return s.reply_error(ErrorCode::ReadOnly, "server is read-only");
                }
                let name = path.as_str();
                if let Some((code, text)) = parent_error(&self.files, &self.dirs, name) {
                    return s.reply_error(code, text);
                }
                if self.files.contains_key(name) || self.dirs.contains(name) {
                    return s.reply_error(ErrorCode::Exists, "already exists");
                }
                self.dirs.insert(name.to_owned());
                s.reply_ok();
            }
            ServerEvent::Remove { path } => {
                if self.read_only {
                    return s.reply_error(ErrorCode::ReadOnly, "server is read-only");
                }
                let name = path.as_str();
                if let Some((code, text)) = parent_error(&self.files, &self.dirs, name) {
                    return s.reply_error(code, text);
                }
                if self.files.remove(name).is_some() {
                    return s.reply_ok();
                }
                if !self.dirs.contains(name) {
                    return s.reply_error(ErrorCode::NotFound, "no such file");
                }
                if self.dir_busy(name) {
                    return s.reply_error(ErrorCode::NotEmpty, "directory not empty");
                }
                self.dirs.remove(name);
                s.reply_ok();
            }
            ServerEvent::SetAttrs { path, .. } => {
                if self.read_only {
                    return s.reply_error(ErrorCode::ReadOnly, "server is read-only");
                }
                let name = path.as_str();
                if self.files.contains_key(name) || self.dirs.contains(name) {
                    s.reply_ok()
                } else {
                    s.reply_error(ErrorCode::NotFound, "no such file")
                }
            }
            ServerEvent::Statfs { .. } => s.reply_space(1 << 30, self.space.unwrap_or(1 << 29)),
            ServerEvent::ListParts { path } => {
                let dir = path.as_str();
                if !dir.is_empty() && !self.dirs.contains(dir) {
                    return s.reply_error(ErrorCode::NotFound, "no such directory");
                }
                let entries = self
                    .parts
                    .iter()
                    .filter(|(name, data)| {
                        !data.is_empty() && parent_of(name) == dir && !self.part_held(name)
                    })
                    .map(|(name, data)| Entry {
                        name: name.rsplit('/').next().unwrap_or(name).to_owned(),
                        kind: EntryKind::File,
                        size: data.len() as u64,
                        mtime: 0,
                        mode: Some(0o644),
                    })
                    .collect();
                s.reply_entries(entries);
            }
            ServerEvent::DiscardPart { path } => {
                if self.read_only {
                    return s.reply_error(ErrorCode::ReadOnly, "server is read-only");
                }
                let name = path.as_str();
                if self.part_held(name) {
                    return s.reply_error(ErrorCode::Busy, "a transfer holds it");
                }
                match self.parts.remove(name) {
                    Some(_) => s.reply_ok(),
                    None => s.reply_error(ErrorCode::NotFound, "no interrupted upload"),
                }
            }
            ServerEvent::Rename { from, to } => {
                if self.read_only {
                    return s.reply_error(ErrorCode::ReadOnly, "server is read-only");
                }
                let (from, to) = (from.as_str(), to.as_str());
                for p in [from, to] {
                    if let Some((code, text)) = parent_error(&self.files, &self.dirs, p) {
                        return s.reply_error(code, text);
                    }
                }
                let is_dir = self.dirs.contains(from);
                if !is_dir && !self.files.contains_key(from) {
                    return s.reply_error(ErrorCode::NotFound, "no such file");
                }
                if self.files.contains_key(to) || self.dirs.contains(to) {
                    return s.reply_error(ErrorCode::Exists, "target exists");
                }
                if is_dir && is_below(to, from) {
                    return s.reply_error(ErrorCode::Io, "cannot move a directory into itself");
                }
                if is_dir && self.dir_has_upload_below(from) {
                    // Not modelled: an upload whose directory moves.
                    return s.reply_error(ErrorCode::Busy, "an upload runs below it");
                }
                self.move_tree(from, to, is_dir);
                s.reply_ok();
            }
        }
    }

    /// True when a running upload's target lies below `dir`.
    fn dir_has_upload_below(&self, dir: &str) -> bool {
        let below = |u: &Option<MemUpload>| u.as_ref().is_some_and(|u| is_below(&u.path, dir));
        below(&self.upload) || self.others.map.values().any(|(u, _, _)| below(u))
    }

    /// Renames `from` to `to`: a file, or a directory with everything below
    /// it (parts included).
    fn move_tree(&mut self, from: &str, to: &str, is_dir: bool) {
        if !is_dir {
            let data = self.files.remove(from).expect("checked");
            self.files.insert(to.to_owned(), data);
            return;
        }
        let moved = |p: &str| -> Option<String> {
            if p == from {
                Some(to.to_owned())
            } else {
                p.strip_prefix(from)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .map(|rest| format!("{to}/{rest}"))
            }
        };
        self.dirs = std::mem::take(&mut self.dirs)
            .into_iter()
            .map(|p| moved(&p).unwrap_or(p))
            .collect();
        self.files = std::mem::take(&mut self.files)
            .into_iter()
            .map(|(p, d)| (moved(&p).unwrap_or(p), d))
            .collect();
        self.parts = std::mem::take(&mut self.parts)
            .into_iter()
            .map(|(p, d)| (moved(&p).unwrap_or(p), d))
            .collect();
    }

    /// The first free name among `path`, `stem_1.ext`, `stem_2.ext`, ...
    /// (a directory takes a name as a file does).
    pub fn free_name(&self, path: &str) -> String {
        let (parent, name) = match path.rfind('/') {
            Some(i) => (&path[..=i], &path[i + 1..]),
            None => ("", path),
        };
        let taken = |p: &str| self.files.contains_key(p) || self.dirs.contains(p);
        let mut stored = path.to_owned();
        let mut n = 0;
        while taken(&stored) {
            n += 1;
            stored = format!("{parent}{}", super::path::clash_name(name, n));
        }
        stored
    }

    /// Answers every pending event of connection `conn` and feeds its
    /// download until the session wants nothing more.
    pub fn drive_conn(&mut self, conn: usize, s: &mut ServerSession) {
        self.switch_to(conn);
        self.drive(s);
    }

    /// Answers every pending event and feeds downloads until the session
    /// wants nothing more.
    pub fn drive(&mut self, s: &mut ServerSession) {
        for _ in 0..MAX_ROUNDS {
            let mut progressed = false;
            while let Some(ev) = s.poll_event() {
                self.handle(s, ev);
                progressed = true;
            }
            let want = s.wants_data();
            if want > 0 {
                if let Some(d) = &self.download {
                    let end = (self.pos + want).min(d.len());
                    let chunk = d[self.pos..end].to_vec();
                    self.pos = end;
                    s.send_data(&chunk);
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
        }
        panic!("server session still busy after {MAX_ROUNDS} rounds");
    }
}

/// True when `path` is a direct child of directory `dir` ("" = the root).
fn is_child(path: &str, dir: &str) -> bool {
    let rest = if dir.is_empty() {
        Some(path)
    } else {
        path.strip_prefix(dir).and_then(|r| r.strip_prefix('/'))
    };
    rest.is_some_and(|r| !r.is_empty() && !r.contains('/'))
}

/// True when `path` lies strictly below directory `dir`.
fn is_below(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// The last component of `path`.
fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `len` pseudo-random bytes from `seed` (xorshift): test data that differs
/// by seed and is the same every run.
pub fn xorshift_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Checks that `bytes`, a session's output, is a sequence of frames that
/// decode (a trailing partial frame is allowed: output may be cut anywhere).
pub fn assert_output_decodes(bytes: &[u8], who: &str) {
    let mut rest = bytes;
    loop {
        match frame::decode(rest) {
            Ok(Some((_, used))) => rest = &rest[used..],
            Ok(None) => return,
            Err(e) => panic!("{who} emitted an undecodable frame: {e}"),
        }
    }
}

/// Feeds `input` to a fresh server session in slices whose sizes come from
/// `cuts` (cycled; 0 means "advance the clock a second instead"), driving
/// a [`MemStore`] after every slice, draining output, and finally
/// signalling EOF. Panics only if a session invariant breaks.
pub fn run_server(input: &[u8], cuts: &[u8]) {
    let t0 = Instant::now();
    let mut now = t0;
    let config = SessionConfig {
        window: 64 * 1024,
        ..SessionConfig::default()
    };
    let mut s = ServerSession::new(config, t0);
    let mut store = MemStore::seeded();
    let mut rest = input;
    let mut i = 0;
    while !rest.is_empty() && !s.is_closed() {
        let cut = cuts.get(i % cuts.len().max(1)).copied().unwrap_or(255);
        i += 1;
        if cut == 0 {
            now += Duration::from_secs(1);
            s.handle_timeout(now);
        } else {
            let n = (cut as usize).min(rest.len());
            s.handle_input(&rest[..n], now);
            rest = &rest[n..];
        }
        store.drive(&mut s);
        let out = s.poll_transmit().to_vec();
        assert_output_decodes(&out, "server");
        s.consume_transmit(out.len());
        if let Some(d) = s.poll_deadline() {
            assert!(d >= t0, "deadline before the session began");
        }
    }
    s.handle_eof();
    store.drive(&mut s);
    assert_output_decodes(s.poll_transmit(), "server");
}

/// Starts the command chosen by `op` on a fresh client session, then feeds
/// `input` (a hostile server's bytes) in slices of `cut` bytes, answering
/// upload windows with data, and finally EOF. Bit 0x20 of `op` has the
/// session leave downloads' hashing to its driver, as ftx runs it. Panics
/// only if a session invariant breaks.
pub fn run_client(op: u8, input: &[u8], cut: usize) {
    let mut c = ClientSession::new(Vec::new());
    if op & 0x20 != 0 {
        c.hash_downloads_outside();
    }
    let upload_size = 300_000u64;
    let _ = match op % 6 {
        0 => c.list(""),
        1 => c.put(
            "f",
            upload_size,
            (op & 0x40 != 0).then_some(upload_size),
            op & 0x80 != 0,
        ),
        2 => c.get("f", 0),
        3 => c.mkdir("d"),
        4 => c.remove("f"),
        _ => c.rename("a", "b"),
    };
    let mut sent = 0u64;
    for piece in input.chunks(cut.max(1)) {
        c.handle_input(piece);
        for _ in 0..MAX_ROUNDS {
            if c.poll_event().is_none() {
                break;
            }
        }
        let want = c.wants_data() as u64;
        if want > 0 {
            let n = want.min(upload_size - sent.min(upload_size)) as usize;
            c.send_data(&vec![0x5a; n]);
            sent += n as u64;
        }
        let out = c.poll_transmit().to_vec();
        assert_output_decodes(&out, "client");
        c.consume_transmit(out.len());
        if c.is_closed() {
            break;
        }
    }
    c.handle_eof();
    while c.poll_event().is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::limits::MAGIC;
    use crate::proto::message::Message;

    #[test]
    fn a_whole_session_runs_through_the_harness() {
        let mut input = Vec::new();
        for msg in [
            Message::Hello {
                magic: MAGIC,
                min_version: crate::proto::limits::PROTOCOL_VERSION,
                max_version: crate::proto::limits::PROTOCOL_VERSION,
                flags: 0,
                token: vec![],
            },
            Message::List { path: "".into() },
            Message::Get {
                path: "a".into(),
                offset: 0,
            },
            Message::Ack { offset: 1024 },
            Message::Mkdir { path: "x".into() },
        ] {
            frame::encode(&msg, &mut input);
        }
        run_server(&input, &[1, 7, 0, 255]);
        run_client(0, &input, 3);
    }
}
