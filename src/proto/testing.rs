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

/// A tiny in-memory store that answers every [`ServerEvent`].
#[derive(Debug, Default)]
pub struct MemStore {
    files: BTreeMap<String, Vec<u8>>,
    dirs: BTreeSet<String>,
    upload: Option<(String, Vec<u8>)>,
    download: Option<(Vec<u8>, usize)>,
}

impl MemStore {
    /// A store holding a file `a` (1 KiB) and a directory `d`.
    pub fn seeded() -> MemStore {
        let mut s = MemStore::default();
        s.files
            .insert("a".into(), (0..1024u32).map(|i| i as u8).collect());
        s.dirs.insert("d".into());
        s
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
                if let Some((d, pos)) = &mut self.download {
                    let end = (*pos + want).min(d.len());
                    let chunk = d[*pos..end].to_vec();
                    *pos = end;
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

    fn handle(&mut self, s: &mut ServerSession, ev: ServerEvent) {
        match ev {
            // Only sessions built with `authenticate` ask; any token will do.
            ServerEvent::Hello { .. } => s.accept_hello(),
            ServerEvent::List { path } => {
                if path.is_root() || self.dirs.contains(path.as_str()) {
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
                } else {
                    s.reply_error(ErrorCode::NotFound, "not found");
                }
            }
            ServerEvent::PutStart {
                path, size, offset, ..
            } => {
                if size > MAX_FILE {
                    s.reply_error(ErrorCode::NoSpace, "no space");
                } else {
                    self.upload = Some((path.as_str().to_owned(), Vec::new()));
                    let _ = offset;
                    s.accept_put(&path, super::session::PutAccept::fresh(false, 0));
                }
            }
            ServerEvent::PutData { .. } => {
                if let Some((_, buf)) = &mut self.upload {
                    buf.extend_from_slice(s.data());
                }
            }
            ServerEvent::PutCommit { size } => match self.upload.take() {
                Some((name, data)) if data.len() as u64 == size => {
                    let stored = super::path::RemotePath::parse(&name);
                    self.files.insert(name, data);
                    match stored {
                        Ok(p) => s.put_committed(&p, size),
                        Err(_) => s.reply_error(ErrorCode::Io, "bad name"),
                    }
                }
                _ => s.reply_error(ErrorCode::Protocol, "size mismatch"),
            },
            ServerEvent::PutAbort { .. } => self.upload = None,
            ServerEvent::GetStart { path, offset } => match self.files.get(path.as_str()) {
                Some(d) if offset <= d.len() as u64 => {
                    let mut prefix = blake3::Hasher::new();
                    prefix.update(&d[..offset as usize]);
                    self.download = Some((d.clone(), offset as usize));
                    s.accept_get(d.len() as u64, offset, 0, prefix, None);
                }
                Some(_) => s.reply_error(ErrorCode::Protocol, "offset past the end"),
                None => s.reply_error(ErrorCode::NotFound, "not found"),
            },
            ServerEvent::GetEnd { .. } => self.download = None,
            ServerEvent::Mkdir { path } => {
                if self.dirs.insert(path.as_str().to_owned()) {
                    s.reply_ok();
                } else {
                    s.reply_error(ErrorCode::Exists, "exists");
                }
            }
            ServerEvent::Remove { path } => {
                if self.files.remove(path.as_str()).is_some() || self.dirs.remove(path.as_str()) {
                    s.reply_ok();
                } else {
                    s.reply_error(ErrorCode::NotFound, "not found");
                }
            }
            ServerEvent::Rename { from, to } => match self.files.remove(from.as_str()) {
                Some(d) => {
                    self.files.insert(to.as_str().to_owned(), d);
                    s.reply_ok();
                }
                None => s.reply_error(ErrorCode::NotFound, "not found"),
            },
        }
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
/// upload windows with data, and finally EOF. Panics only if a session
/// invariant breaks.
pub fn run_client(op: u8, input: &[u8], cut: usize) {
    let mut c = ClientSession::new(Vec::new());
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
