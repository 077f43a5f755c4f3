//! Answering a connection's requests: the events its `ServerSession`
//! reports, each checked against the token's access and answered with the
//! store, and the prefix digest a resumed transfer waits for. How the
//! bytes get to and from the socket is the connection's own (`conn`).

use std::time::Instant;

use log::{debug, info, warn};

use super::Conn;
use crate::partial::PartOwner;
use crate::prefix::PrefixHashing;
use crate::proto::error::ErrorCode;
use crate::proto::path::RemotePath;
use crate::proto::server_session::{PutAccept, ServerEvent};
use crate::server::store::{Download, Store, StoreError, Upload};
use crate::server::tokens::{token_id, Access, Refusal};

/// Bytes of a resumed transfer's prefix hashed per round of `drive`
/// (~0.4 ms here), so resuming a large file never holds the loop for long.
const PREFIX_STEP: u64 = 1 << 20;

impl Conn {
    /// Answers every event the session has, in order.
    pub(super) fn handle_events(&mut self, store: &Store, now: Instant) -> bool {
        let mut any = false;
        while let Some(event) = self.session.poll_event() {
            any = true;
            self.handle_event(event, store, now);
        }
        any
    }

    /// Answers one request: refuses changes to a read-only token, then
    /// hands the request to its answer below.
    fn handle_event(&mut self, event: ServerEvent, store: &Store, now: Instant) {
        let peer = self.peer;
        if self.access == Access::ReadOnly && mutates(&event) {
            debug!("{peer}: change refused: read-only token");
            self.session.reply_error(
                ErrorCode::ReadOnly,
                "read-only access: this token cannot change files",
            );
            return;
        }
        match event {
            ServerEvent::Hello { token } => self.hello(&token, now),
            ServerEvent::List { path } => match store.open_listing(&path) {
                Ok(listing) => self.listing = Some(Box::new(listing)),
                Err(e) => {
                    debug!("{peer}: ls '{path}' failed: {e}");
                    self.session.reply_error(e.code(), &e.to_string());
                }
            },
            ServerEvent::PutStart {
                path,
                size,
                offset,
                force,
                resume,
            } => self.put_start(store, &path, size, force, resume.then_some(offset), now),
            ServerEvent::PutData { offset, len } => self.put_data(store, offset, len),
            ServerEvent::PutCommit { size } => self.put_commit(store, size, now),
            ServerEvent::PutAbort { reason } => self.put_abort(store, reason),
            ServerEvent::GetStart { path, offset } => self.get_start(store, &path, offset, now),
            ServerEvent::GetEnd { digest } => self.get_end(store, digest, now),
            ServerEvent::Mkdir { path } => {
                let r = store.mkdir(&path);
                self.reply_unit(r, "mkdir", &path.to_string());
            }
            ServerEvent::Remove { path } => {
                let r = store.remove(&path);
                self.reply_unit(r, "rm", &path.to_string());
            }
            ServerEvent::Rename { from, to } => {
                let r = store.rename(&from, &to);
                self.reply_unit(r, "rename", &format!("{from}' -> '{to}"));
            }
            ServerEvent::SetAttrs { path, mode, mtime } => {
                let r = store.set_attrs(&path, mode, mtime);
                self.reply_unit(r, "setattrs", &path.to_string());
            }
            ServerEvent::Statfs { path } => match store.space(&path) {
                Ok((total, avail)) => self.session.reply_space(total, avail),
                Err(e) => {
                    debug!("{peer}: df '{path}' failed: {e}");
                    self.session.reply_error(e.code(), &e.to_string());
                }
            },
            ServerEvent::ListParts { path } => match store.list_parts(&path, self.owner) {
                Ok(parts) => self.session.reply_entries(parts),
                Err(e) => {
                    debug!("{peer}: parts of '{path}' failed: {e}");
                    self.session.reply_error(e.code(), &e.to_string());
                }
            },
            ServerEvent::DiscardPart { path } => {
                let r = store.discard_part(&path, self.owner);
                self.reply_unit(r, "discard", path.as_str());
            }
        }
    }

    /// `Hello`: checks the token (the gate slows failing addresses down)
    /// and remembers what it allows and whose parts its uploads use.
    fn hello(&mut self, token: &[u8], now: Instant) {
        let peer = self.peer;
        let admitted = self.security.gate.borrow_mut().admit(peer.ip(), token, now);
        match admitted {
            Ok((name, access)) => {
                info!("{peer}: access granted: token '{name}' ({access})");
                self.access = access;
                if self.security.gate.borrow().requires_token() {
                    let id = token_id(token);
                    self.owner = Some(PartOwner::of_token(&id));
                    self.token = Some(id);
                }
                self.session.accept_hello();
            }
            Err(Refusal::Missing) => {
                // A client learning that a token is needed, before it asks
                // its user: no attempt was made.
                info!("{peer}: asked without an access token: told one is needed");
                self.close_reason = "no access token";
                self.session
                    .reply_error(ErrorCode::Unauthorized, &Refusal::Missing.to_string());
            }
            Err(refusal) => {
                let failures = self.security.gate.borrow().failures(peer.ip());
                warn!(
                    "{peer}: access refused: {refusal} ({failures} failed attempt(s) from this address)"
                );
                self.close_reason = "access refused";
                self.session
                    .reply_error(ErrorCode::Unauthorized, &refusal.to_string());
            }
        }
    }

    /// `PutStart`: opens the upload (a fresh temp file, or the part file
    /// to resume at `resume`); a resumed one is answered once its prefix
    /// is hashed.
    fn put_start(
        &mut self,
        store: &Store,
        path: &RemotePath,
        size: u64,
        force: bool,
        resume: Option<u64>,
        now: Instant,
    ) {
        let peer = self.peer;
        if let Some(old) = self.upload.take() {
            store.abort(*old, true);
        }
        match store.begin_upload(path, size, force, resume, &self.uploader()) {
            Ok((up, accept)) if accept.offset > 0 => {
                // Answered once the part's prefix is hashed.
                self.transfer_started = Some(now);
                self.prefix = Some(Box::new(PrefixJob {
                    hashing: PrefixHashing::new(accept.offset),
                    then: Resumed::Put(up, accept),
                }));
            }
            Ok((up, accept)) => {
                debug!("{peer}: put '{path}' ({size} bytes) started");
                self.upload = Some(Box::new(up));
                self.transfer_started = Some(now);
                self.session.accept_put(path, accept);
            }
            Err(e) => {
                info!("{peer}: put '{path}' refused: {e}");
                self.session.reply_error(e.code(), &e.to_string());
            }
        }
    }

    /// `PutData`: the frame's bytes into the upload.
    fn put_data(&mut self, store: &Store, offset: u64, len: usize) {
        let Some(up) = self.upload.as_mut() else {
            self.session
                .reply_error(ErrorCode::Protocol, "data without an upload");
            return;
        };
        let data = self.session.data();
        debug_assert_eq!(data.len(), len);
        if let Err(e) = store.write(up, offset, data) {
            self.upload_failed(store, &e);
        }
    }

    /// `PutCommit`: the digest matched; the upload takes its name.
    fn put_commit(&mut self, store: &Store, size: u64, now: Instant) {
        let peer = self.peer;
        let Some(up) = self.upload.take() else {
            self.session
                .reply_error(ErrorCode::Protocol, "commit without an upload");
            return;
        };
        let asked = up.remote().clone();
        match store.commit(*up) {
            Ok(stored) => {
                info!(
                    "{peer}: put '{asked}' stored as '{stored}' ({size} bytes, {})",
                    self.elapsed(now)
                );
                self.session.put_committed(&stored, size);
            }
            Err(e) => {
                info!("{peer}: put '{asked}' failed: {e}");
                self.session.reply_error(e.code(), &e.to_string());
            }
        }
    }

    /// `PutAbort` (from the client or the session): drops the upload,
    /// keeping its part for `reput` when it was only interrupted.
    fn put_abort(&mut self, store: &Store, reason: ErrorCode) {
        let peer = self.peer;
        if let Some(up) = self.upload.take() {
            // Interruptions stay resumable; corrupt or refused data
            // and a full disk do not.
            let keep = matches!(
                reason,
                ErrorCode::Cancelled | ErrorCode::Timeout | ErrorCode::Protocol
            );
            info!(
                "{peer}: put '{}' failed: {reason} after {} of {} bytes{}",
                up.remote(),
                up.written(),
                up.size(),
                if keep && up.resumable() {
                    " (kept for reput)"
                } else {
                    ""
                }
            );
            store.abort(*up, keep);
        }
    }

    /// `GetStart`: opens the download at `offset`; a resumed one is
    /// answered once its prefix is hashed.
    fn get_start(&mut self, store: &Store, path: &RemotePath, offset: u64, now: Instant) {
        let peer = self.peer;
        self.download = None;
        let opened = store.open_download(path).and_then(|mut dl| {
            // Past the end: the client's part is not of this file; restart.
            let offset = if offset > dl.size { 0 } else { offset };
            store.seek(&mut dl, offset)?;
            Ok((dl, offset))
        });
        match opened {
            // The whole file, asked for its digest (put -c, get -c), when
            // it is remembered: nothing to hash.
            Ok((dl, offset)) if offset > 0 && offset == dl.size && dl.known.is_some() => {
                debug!(
                    "{peer}: get '{path}': digest of all {} bytes, remembered",
                    dl.size
                );
                let fresh = blake3::Hasher::new();
                self.session
                    .accept_get(dl.size, offset, dl.mtime, fresh, dl.known);
                self.download = Some(Box::new(dl));
                self.transfer_started = Some(now);
            }
            Ok((dl, offset)) if offset > 0 => {
                // Answered once the prefix is hashed.
                self.transfer_started = Some(now);
                self.prefix = Some(Box::new(PrefixJob {
                    hashing: PrefixHashing::new(offset),
                    then: Resumed::Get(Box::new(dl)),
                }));
            }
            Ok((dl, _)) => {
                debug!("{peer}: get '{path}' ({} bytes)", dl.size);
                let fresh = blake3::Hasher::new();
                self.session
                    .accept_get(dl.size, 0, dl.mtime, fresh, dl.known);
                self.download = Some(Box::new(dl));
                self.transfer_started = Some(now);
            }
            Err(e) => {
                info!("{peer}: get '{path}' refused: {e}");
                self.session.reply_error(e.code(), &e.to_string());
            }
        }
    }

    /// `GetEnd`: the client has the file (or stopped); remembers the
    /// digest it confirmed.
    fn get_end(&mut self, store: &Store, digest: Option<[u8; 32]>, now: Instant) {
        let peer = self.peer;
        if let Some(dl) = self.download.take() {
            // A read-only client writes nothing, not even the
            // remembered digest (an extended attribute).
            if let (Some(digest), Access::ReadWrite) = (digest, self.access) {
                store.remember_digest(&dl, &digest);
            }
            if dl.position() == dl.size {
                info!(
                    "{peer}: get '{}' sent ({} bytes, {})",
                    dl.remote(),
                    dl.size,
                    self.elapsed(now)
                );
            } else {
                info!(
                    "{peer}: get '{}' ended at byte {} of {}",
                    dl.remote(),
                    dl.position(),
                    dl.size
                );
            }
        }
    }

    fn reply_unit(&mut self, r: Result<(), StoreError>, op: &str, what: &str) {
        match r {
            Ok(()) => {
                info!("{}: {op} '{what}'", self.peer);
                self.session.reply_ok();
            }
            Err(e) => {
                debug!("{}: {op} '{what}' failed: {e}", self.peer);
                self.session.reply_error(e.code(), &e.to_string());
            }
        }
    }

    fn elapsed(&self, now: Instant) -> String {
        match self.transfer_started {
            Some(t) => format!("{:.2} s", now.saturating_duration_since(t).as_secs_f64()),
            None => "?".to_owned(),
        }
    }

    /// Hashes the next step of a resumed transfer's prefix; once it is
    /// whole, answers the client (`PutReady` / `GetReady` with its digest).
    pub(super) fn hash_prefix(&mut self, store: &Store, now: Instant) -> bool {
        let Some(job) = self.prefix.as_mut() else {
            return false;
        };
        let file = match &job.then {
            Resumed::Get(dl) => &dl.file,
            Resumed::Put(up, _) => up.file(),
        };
        let step = job.hashing.step(file, PREFIX_STEP);
        if let Ok(false) = step {
            return true;
        }
        let job = *self.prefix.take().expect("checked above");
        let peer = self.peer;
        match (step, job.then) {
            (Ok(_), Resumed::Get(dl)) => {
                let offset = dl.position();
                debug!(
                    "{peer}: get '{}' from byte {offset} of {} ({})",
                    dl.remote(),
                    dl.size,
                    self.elapsed(now)
                );
                let prefix = job.hashing.finish();
                self.session
                    .accept_get(dl.size, offset, dl.mtime, prefix, dl.known);
                self.download = Some(dl);
            }
            (Ok(_), Resumed::Put(up, mut accept)) => {
                debug!(
                    "{peer}: put '{}' ({} bytes) resumed at byte {} ({})",
                    up.remote(),
                    up.size(),
                    accept.offset,
                    self.elapsed(now)
                );
                accept.prefix = job.hashing.finish();
                let path = up.remote().clone();
                self.upload = Some(Box::new(up));
                self.session.accept_put(&path, accept);
            }
            (Err(e), then) => {
                let path = match &then {
                    Resumed::Get(dl) => dl.remote().clone(),
                    Resumed::Put(up, _) => up.remote().clone(),
                };
                let e = StoreError::from_io(path.as_str(), e);
                info!("{peer}: resuming '{path}' failed: {e}");
                if let Resumed::Put(up, _) = then {
                    // Not this upload's fault: the part stays for reput.
                    store.abort(up, true);
                }
                self.session.reply_error(e.code(), &e.to_string());
            }
        }
        true
    }
}

/// Whether `event` would change the served tree (refused to read-only tokens).
fn mutates(event: &ServerEvent) -> bool {
    matches!(
        event,
        ServerEvent::PutStart { .. }
            | ServerEvent::SetAttrs { .. }
            | ServerEvent::Mkdir { .. }
            | ServerEvent::Remove { .. }
            | ServerEvent::Rename { .. }
            | ServerEvent::DiscardPart { .. }
    )
}

/// A resumed transfer waiting for its prefix digest.
pub(super) struct PrefixJob {
    pub(super) hashing: PrefixHashing,
    pub(super) then: Resumed,
}

/// What a finished prefix digest lets start. Lives in a box (`PrefixJob`),
/// so the size of its largest variant costs nothing elsewhere.
#[allow(clippy::large_enum_variant)]
pub(super) enum Resumed {
    /// A download positioned at the end of the prefix.
    Get(Box<Download>),
    /// An upload and the answer it gets.
    Put(Upload, PutAccept),
}
