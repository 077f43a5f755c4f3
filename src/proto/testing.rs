//! Harnesses for fuzzing and property tests: drive a session with
//! arbitrary bytes and check it never panics, never loops, and never emits
//! a frame that does not decode. Shared by `cargo test` (proptest) and the
//! `cargo fuzz` targets in `tests/fuzz/`, which can only reach `pub` items.
//! Like the rest of `proto` it does no I/O and reads no clock: time is an
//! `Instant` fixed by the caller and advanced by the input itself.
//! Not part of the supported API.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::error::ErrorCode;
use super::frame;
use super::message::{Entry, EntryKind};
use super::server_session::{ServerEvent, ServerSession, SessionConfig};
use super::session::ClientSession;

/// Most rounds of event handling one input slice may cause: a session that
/// needs more is stuck in a loop, which the harness reports as a panic.
const MAX_ROUNDS: usize = 100_000;
/// Largest file the in-memory store keeps, so a fuzzer's `Put` of 2^60
/// bytes is refused like a full disk instead of allocating.
const MAX_FILE: u64 = 1 << 20;

/// An in-memory store that answers every [`ServerEvent`] as ftxd's store
/// does (clash names, resumable parts, remembered digests, limits): the
/// driver of the fuzz and property harnesses here and of the pump tests.
/// The fields are the knobs and what tests look at.
#[derive(Debug, Default)]
pub struct MemStore {
    /// Files by name.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Directories by name.
    pub dirs: BTreeSet<String>,
    /// Any token is welcome; otherwise only `good`.
    pub open: bool,
    /// Refuse every change.
    pub read_only: bool,
    /// Largest upload accepted.
    pub max_size: Option<u64>,
    /// Bytes an upload may hold before the "disk" is full.
    pub space: Option<u64>,
    /// The upload in progress: name, force, bytes so far.
    pub upload: Option<(String, bool, Vec<u8>)>,
    /// Interrupted uploads kept for resuming, by name.
    pub parts: BTreeMap<String, Vec<u8>>,
    /// The download in progress.
    pub download: Option<Vec<u8>>,
    /// How far the download has been handed to the session.
    pub pos: usize,
    /// Digests the store "remembers" (handed to `accept_get`).
    pub known: BTreeMap<String, [u8; 32]>,
    /// What each `GetEnd` carried.
    pub ended: Vec<Option<[u8; 32]>>,
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
                if !path.is_root() && !self.dirs.contains(path.as_str()) {
                    return s.reply_error(ErrorCode::NotFound, "no such directory");
                }
                let entries = self
                    .files
                    .iter()
                    .map(|(n, d)| Entry {
                        name: n.clone(),
                        kind: EntryKind::File,
                        size: d.len() as u64,
                        mtime: 0,
                    })
                    .collect();
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
                if self.dirs.contains(path.as_str()) {
                    return s.reply_error(ErrorCode::IsDirectory, "is a directory");
                }
                let name = path.as_str().to_owned();
                if resume {
                    let mut held = self.parts.remove(&name).unwrap_or_default();
                    if held.len() as u64 > offset.min(size) {
                        held.clear();
                    }
                    let mut prefix = blake3::Hasher::new();
                    prefix.update(&held);
                    let accept = super::session::PutAccept {
                        offset: held.len() as u64,
                        prefix,
                        partial: 0,
                        resumable: true,
                    };
                    self.upload = Some((name, force, held));
                    s.accept_put(&path, accept);
                } else {
                    let partial = self.parts.get(&name).map_or(0, |p| p.len() as u64);
                    self.upload = Some((name, force, Vec::new()));
                    s.accept_put(&path, super::session::PutAccept::fresh(true, partial));
                }
            }
            ServerEvent::PutData { len, .. } => {
                let data = s.data();
                assert_eq!(data.len(), len);
                let up = self.upload.as_mut().unwrap();
                if self
                    .space
                    .is_some_and(|sp| (up.2.len() + data.len()) as u64 > sp)
                {
                    return s.reply_error(ErrorCode::NoSpace, "disk full");
                }
                up.2.extend_from_slice(data);
            }
            ServerEvent::PutCommit { size } => {
                let (name, force, data) = self.upload.take().unwrap();
                assert_eq!(data.len() as u64, size);
                let mut stored = name.clone();
                let mut n = 0;
                while !force && self.files.contains_key(&stored) {
                    n += 1;
                    stored = super::path::clash_name(&name, n);
                }
                self.files.insert(stored.clone(), data);
                let p = super::path::RemotePath::parse(&stored).unwrap();
                s.put_committed(&p, size);
            }
            ServerEvent::PutAbort { reason } => {
                if let Some((name, _, data)) = self.upload.take() {
                    if reason == ErrorCode::Cancelled && !data.is_empty() {
                        self.parts.insert(name, data);
                    }
                }
            }
            ServerEvent::GetStart { path, offset } => {
                if self.dirs.contains(path.as_str()) {
                    return s.reply_error(ErrorCode::IsDirectory, "is a directory");
                }
                match self.files.get(path.as_str()) {
                    None => s.reply_error(ErrorCode::NotFound, "no such file"),
                    Some(d) => {
                        let offset = if offset as usize > d.len() { 0 } else { offset };
                        let mut prefix = blake3::Hasher::new();
                        prefix.update(&d[..offset as usize]);
                        self.download = Some(d.clone());
                        self.pos = offset as usize;
                        let known = self.known.get(path.as_str()).copied();
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
                self.dirs.insert(path.as_str().to_owned());
                s.reply_ok();
            }
            ServerEvent::Remove { path } => match self.files.remove(path.as_str()) {
                Some(_) => s.reply_ok(),
                None => s.reply_error(ErrorCode::NotFound, "no such file"),
            },
            ServerEvent::Rename { from, to } => {
                if self.files.contains_key(to.as_str()) {
                    return s.reply_error(ErrorCode::Exists, "target exists");
                }
                match self.files.remove(from.as_str()) {
                    Some(d) => {
                        self.files.insert(to.as_str().to_owned(), d);
                        s.reply_ok();
                    }
                    None => s.reply_error(ErrorCode::NotFound, "no such file"),
                }
            }
        }
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
