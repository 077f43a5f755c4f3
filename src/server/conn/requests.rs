//! Answering a connection's requests: the events its `ServerSession`
//! reports, each checked against the token's access and answered with the
//! store; the prefix digest a resumed transfer waits for and the durable
//! commit of an upload, both from the disk helpers (`server::disk`). How
//! the bytes get to and from the socket is the connection's own (`conn`).

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use log::{debug, info, warn};

use super::{CloseReason, Conn};
use crate::partial::PartOwner;
use crate::proto::error::ErrorCode;
use crate::proto::path::RemotePath;
use crate::proto::server_session::{PutAccept, ServerEvent};
use crate::server::disk::{Disk, Job, Outcome};
use crate::server::store::{Download, Store, StoreError, Upload};
use crate::server::tokens::{token_id, Access, Refusal};

impl Conn {
    /// Answers every event the session has, in order.
    pub(super) fn handle_events(&mut self, store: &Store, disk: &mut Disk, now: Instant) -> bool {
        let mut any = false;
        while let Some(event) = self.session.poll_event() {
            any = true;
            self.handle_event(event, store, disk, now);
        }
        any
    }

    /// Answers one request: refuses changes to a read-only token, then
    /// hands the request to its answer below.
    fn handle_event(&mut self, event: ServerEvent, store: &Store, disk: &mut Disk, now: Instant) {
        let peer = self.peer.clone();
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
            } => {
                let resume = resume.then_some(offset);
                self.put_start(store, disk, &path, size, force, resume, now)
            }
            ServerEvent::PutData { offset, len } => self.put_data(store, disk, offset, len, now),
            ServerEvent::PutCommit { size } => self.put_commit(store, disk, size, now),
            ServerEvent::PutAbort { reason } => self.put_abort(store, reason),
            ServerEvent::GetStart { path, offset } => {
                self.get_start(store, disk, &path, offset, now)
            }
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
        let peer = self.peer.clone();
        let admitted = self.security.gate.borrow_mut().admit(peer.ip(), token, now);
        match admitted {
            Ok((name, access)) => {
                info!("{peer}: access granted: token '{name}' ({access})");
                if self.security.gate.borrow().requires_token() {
                    self.peer.token = Some(std::rc::Rc::new(name.to_string()));
                }
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
                self.close_reason = CloseReason::NoToken;
                self.session
                    .reply_error(ErrorCode::Unauthorized, &Refusal::Missing.to_string());
            }
            Err(refusal) => {
                let failures = self.security.gate.borrow().failures(peer.ip());
                warn!(
                    "{peer}: access refused: {refusal} ({failures} failed attempt(s) from this address)"
                );
                self.close_reason = CloseReason::Refused;
                self.session
                    .reply_error(ErrorCode::Unauthorized, &refusal.to_string());
            }
        }
    }

    /// `PutStart`: opens the upload (a fresh temp file, or the part file
    /// to resume at `resume`); a resumed one is answered once its prefix
    /// is hashed.
    #[allow(clippy::too_many_arguments)]
    fn put_start(
        &mut self,
        store: &Store,
        disk: &mut Disk,
        path: &RemotePath,
        size: u64,
        force: bool,
        resume: Option<u64>,
        now: Instant,
    ) {
        let peer = self.peer.clone();
        if let Some(old) = self.upload.take() {
            store.abort(*old, true);
        }
        match store.begin_upload(path, size, force, resume, &self.uploader()) {
            Ok((up, accept)) if accept.offset > 0 => {
                // Answered once the part's prefix is hashed.
                self.transfer_started = self.since_opened(now);
                let len = accept.offset;
                self.start_prefix(store, disk, Resumed::Put(up, accept), len);
            }
            Ok((up, accept)) => {
                debug!("{peer}: put '{path}' ({size} bytes) started");
                self.upload = Some(Box::new(up));
                self.transfer_started = self.since_opened(now);
                self.session.accept_put(path, accept);
            }
            Err(e) => {
                info!("{peer}: put '{path}' refused: {e}");
                self.session.reply_error(e.code(), &e.to_string());
            }
        }
    }

    /// `PutData`: the frame's bytes into the upload (and a flush started
    /// if one is due).
    fn put_data(&mut self, store: &Store, disk: &mut Disk, offset: u64, len: usize, now: Instant) {
        let Some(up) = self.upload.as_mut() else {
            self.session
                .reply_error(ErrorCode::Protocol, "data without an upload");
            return;
        };
        let data = self.session.data();
        debug_assert_eq!(data.len(), len);
        if let Err(e) = store.write(up, offset, data) {
            self.upload_failed(store, &e);
            return;
        }
        self.start_due_flush(store, disk, now, false);
    }

    /// `PutCommit`: the digest matched; the upload takes its name. With
    /// fsync on, in steps: the file's fsync on a disk helper (after a
    /// flush still running), the publish here, the directory's sync (a
    /// group commit) on a helper, then `PutDone`. A pipelining client's
    /// next upload arrives meanwhile, so several commits of one
    /// connection may be under way: they take their names and are
    /// answered in the order they came ([`Conn::settle_commits`]).
    fn put_commit(&mut self, store: &Store, disk: &mut Disk, size: u64, now: Instant) {
        let Some(up) = self.upload.take() else {
            // Answered in its turn, behind any commit under way.
            let e = StoreError::Io {
                path: String::new(),
                source: io::Error::other("commit without an upload"),
            };
            let commits = self.commits.get_or_insert_with(Box::default);
            commits.queue.push_back(Commit {
                job: 0,
                asked: RemotePath::root(),
                size,
                started: None,
                step: Committing::Failed(e),
            });
            return self.settle_commits(store, disk, now);
        };
        let up = *up;
        let asked = up.remote().clone();
        let started = self.started_at();
        if store.config().fsync {
            let (job, step) = if let Err(e) = store.check_whole(&up) {
                store.abort(up, false);
                (0, Committing::Failed(e))
            } else if store.flush_running(&up) {
                // The kernel reports a write-back error once: the running
                // flush must see it before the fsync starts. It is this
                // upload's: the connection no longer waits for it itself.
                let job = std::mem::replace(&mut self.awaiting, 0);
                (job, Committing::AfterStep { up })
            } else {
                self.start_file_sync(store, disk, up)
            };
            let commits = self.commits.get_or_insert_with(Box::default);
            commits.queue.push_back(Commit {
                job,
                asked,
                size,
                started,
                step,
            });
            return self.settle_commits(store, disk, now);
        }
        // Nothing blocks without fsync: all at once (and nothing is under
        // way before it, so its answer is in order).
        let peer = self.peer.clone();
        match store.commit(up) {
            Ok(stored) => {
                info!(
                    "{peer}: put '{asked}' stored as '{stored}' ({size} bytes, {})",
                    self.elapsed(now)
                );
                self.session.put_committed(&stored, size);
            }
            Err(e) => {
                info!("{peer}: put '{asked}' failed: {e}");
                self.session.commit_failed(e.code(), &e.to_string());
            }
        }
    }

    /// `PutAbort` (from the client or the session): drops the upload,
    /// keeping its part for `reput` when it was only interrupted. An
    /// upload being committed is whole and verified: the commit goes on
    /// (the client may have gone, or timed out, after its `Done`); only
    /// closing the connection ([`Conn::close`]) abandons it.
    fn put_abort(&mut self, store: &Store, reason: ErrorCode) {
        let peer = self.peer.clone();
        if let Some(up) = self.upload.take() {
            // Interruptions stay resumable; corrupt or refused data
            // and a full disk do not.
            let keep = matches!(
                reason,
                ErrorCode::Cancelled | ErrorCode::Timeout | ErrorCode::Protocol
            );
            // The client's end of the stream is no protocol error of its own.
            let why = if self.eof {
                "connection lost".to_owned()
            } else {
                reason.to_string()
            };
            info!(
                "{peer}: put '{}' failed: {why} after {} of {} bytes{}",
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
    fn get_start(
        &mut self,
        store: &Store,
        disk: &mut Disk,
        path: &RemotePath,
        offset: u64,
        now: Instant,
    ) {
        let peer = self.peer.clone();
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
                self.transfer_started = self.since_opened(now);
            }
            Ok((dl, offset)) if offset > 0 => {
                // Answered once the prefix is hashed.
                self.transfer_started = self.since_opened(now);
                self.start_prefix(store, disk, Resumed::Get(Box::new(dl)), offset);
            }
            Ok((dl, _)) => {
                debug!("{peer}: get '{path}' ({} bytes)", dl.size);
                let fresh = blake3::Hasher::new();
                self.session
                    .accept_get(dl.size, 0, dl.mtime, fresh, dl.known);
                self.download = Some(Box::new(dl));
                self.transfer_started = self.since_opened(now);
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
        let peer = self.peer.clone();
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
        elapsed(self.started_at(), now)
    }

    /// Hands the hashing of a resumed transfer's first `len` bytes to a
    /// disk helper; the client is answered once it is done
    /// ([`Conn::prefix_hashed`]).
    fn start_prefix(&mut self, store: &Store, disk: &mut Disk, then: Resumed, len: u64) {
        // An upload that took a part over on a shared file system has the
        // part's bytes copied into its own file first, on the helper too.
        let files = match &then {
            Resumed::Get(dl) => dl.file.try_clone().map(|f| (f, None)),
            Resumed::Put(up, _) => up
                .file()
                .try_clone()
                .and_then(|f| Ok((f, up.copy_source()?.map(|(from, _)| from)))),
        };
        match files {
            Ok((file, copy_from)) => {
                let cancel = Arc::new(AtomicBool::new(false));
                let job = Job::HashPrefix {
                    file,
                    len,
                    cancel: Arc::clone(&cancel),
                    copy_from,
                };
                self.awaiting = disk.submit(self.slot, job);
                self.prefix = Some(Box::new(PrefixJob { cancel, then }));
            }
            Err(e) => self.resume_failed(store, then, e),
        }
    }

    /// A resumed transfer's prefix is hashed: answers the client
    /// (`PutReady` / `GetReady` with its digest).
    pub(super) fn prefix_hashed(
        &mut self,
        store: &Store,
        hashed: io::Result<Box<blake3::Hasher>>,
        now: Instant,
    ) {
        let Some(job) = self.prefix.take() else {
            return;
        };
        let prefix = match hashed {
            Ok(prefix) => *prefix,
            Err(e) => return self.resume_failed(store, job.then, e),
        };
        let peer = self.peer.clone();
        match job.then {
            Resumed::Get(dl) => {
                let offset = dl.position();
                debug!(
                    "{peer}: get '{}' from byte {offset} of {} ({})",
                    dl.remote(),
                    dl.size,
                    self.elapsed(now)
                );
                self.session
                    .accept_get(dl.size, offset, dl.mtime, prefix, dl.known);
                self.download = Some(dl);
            }
            Resumed::Put(mut up, mut accept) => {
                up.copied();
                debug!(
                    "{peer}: put '{}' ({} bytes) resumed at byte {} ({})",
                    up.remote(),
                    up.size(),
                    accept.offset,
                    self.elapsed(now)
                );
                accept.prefix = prefix;
                let path = up.remote().clone();
                self.upload = Some(Box::new(up));
                self.session.accept_put(&path, accept);
            }
        }
    }

    /// Hashing a resumed transfer's prefix failed: the client is told; an
    /// upload's part stays for reput (not its fault).
    fn resume_failed(&mut self, store: &Store, then: Resumed, e: io::Error) {
        let path = match &then {
            Resumed::Get(dl) => dl.remote().clone(),
            Resumed::Put(up, _) => up.remote().clone(),
        };
        let e = StoreError::from_io(path.as_str(), e);
        info!("{}: resuming '{path}' failed: {e}", self.peer);
        if let Resumed::Put(up, _) = then {
            store.abort(up, true);
        }
        self.session.reply_error(e.code(), &e.to_string());
    }

    /// Hashing a resumed transfer's prefix took longer than the storage
    /// timeout: the client is told `why`; an upload's part stays as it
    /// was for a later `reput`.
    pub(super) fn resume_timed_out(&mut self, store: &Store, then: Resumed, why: &str) {
        let path = match &then {
            Resumed::Get(dl) => dl.remote().clone(),
            Resumed::Put(up, _) => up.remote().clone(),
        };
        info!("{}: resuming '{path}' failed: {why}", self.peer);
        if let Resumed::Put(up, _) = then {
            store.abandon(up);
        }
        self.session.reply_error(ErrorCode::Timeout, why);
    }

    /// A commit's disk job (`job`) is out longer than the storage
    /// timeout: that commit fails with `why` (the upload left as it is for
    /// `reput`, [`Store::abandon`]; one already published stays under its
    /// name, which may not be durable yet) and is answered in its turn.
    /// False when no commit waits for the job.
    pub(super) fn commit_timed_out(
        &mut self,
        job: u64,
        why: &str,
        store: &Store,
        disk: &mut Disk,
        now: Instant,
    ) -> bool {
        let Some(commit) = self
            .commits
            .as_mut()
            .and_then(|c| c.queue.iter_mut().find(|c| job != 0 && c.job == job))
        else {
            return false;
        };
        commit.job = 0;
        let asked = commit.asked.clone();
        commit.step = match std::mem::replace(&mut commit.step, Committing::Taken) {
            Committing::AfterStep { up } | Committing::SyncingFile { up } => {
                info!(
                    "{}: put '{asked}' failed: {why} while it was being made durable (left as it is for reput)",
                    self.peer
                );
                store.abandon(up);
                Committing::TimedOut(why.to_owned())
            }
            Committing::SyncingDir { stored } => {
                let said = format!("{why}: '{stored}' was stored but may not be durable");
                info!("{}: put '{asked}': {said}", self.peer);
                Committing::TimedOut(said)
            }
            // Not waiting for a job: nothing to fail.
            step => step,
        };
        self.settle_commits(store, disk, now);
        true
    }

    /// Starts the fsync of a finished upload on a disk helper: the job
    /// to wait for and the commit's step.
    fn start_file_sync(&mut self, store: &Store, disk: &mut Disk, up: Upload) -> (u64, Committing) {
        match store.file_to_sync(&up) {
            Ok(file) => (
                disk.submit(self.slot, Job::SyncFile(file)),
                Committing::SyncingFile { up },
            ),
            Err(e) => {
                store.abort(up, false);
                (0, Committing::Failed(e))
            }
        }
    }

    /// A disk job of a commit under way returned (`job`, its number):
    /// the commit takes its next step. False when no commit waits for it.
    pub(super) fn commit_step_done(
        &mut self,
        job: u64,
        outcome: Outcome,
        store: &Store,
        disk: &mut Disk,
        now: Instant,
    ) -> bool {
        let Some(i) = self
            .commits
            .as_ref()
            .and_then(|c| c.queue.iter().position(|c| job != 0 && c.job == job))
        else {
            return false;
        };
        let commits = self.commits.as_mut().expect("found above");
        let step = std::mem::replace(&mut commits.queue[i].step, Committing::Taken);
        let path = commits.queue[i].asked.clone();
        let (job, step) = match (step, outcome) {
            (Committing::AfterStep { mut up }, Outcome::Flushed(r)) => {
                match store.flush_done(&mut up, r, now) {
                    Ok(()) => self.start_file_sync(store, disk, up),
                    Err(e) => {
                        store.abort(up, false);
                        (0, Committing::Failed(e))
                    }
                }
            }
            (Committing::SyncingFile { up }, Outcome::FileSynced(r)) => match r {
                Ok(()) => (0, Committing::Synced { up }),
                Err(e) => {
                    store.abort(up, false);
                    (0, Committing::Failed(StoreError::from_io(path.as_str(), e)))
                }
            },
            (Committing::SyncingDir { stored }, Outcome::DirSynced(r)) => match r {
                Ok(()) => (0, Committing::Done { stored }),
                Err(e) => (
                    0,
                    Committing::Failed(StoreError::from_io(stored.as_str(), e)),
                ),
            },
            // Not what this step waits for: it goes on waiting.
            (step, _) => (job, step),
        };
        if let Some(commits) = self.commits.as_mut() {
            commits.queue[i].job = job;
            commits.queue[i].step = step;
        }
        self.settle_commits(store, disk, now);
        true
    }

    /// Moves the commits under way on as far as they can go, in their
    /// order: a durable upload takes its name only once every earlier one
    /// took its own (clash names follow the order of the requests), and
    /// the client is answered for each as soon as every earlier one was.
    pub(super) fn settle_commits(&mut self, store: &Store, disk: &mut Disk, now: Instant) {
        let Some(commits) = self.commits.as_mut() else {
            return;
        };
        for c in commits.queue.iter_mut() {
            match std::mem::replace(&mut c.step, Committing::Taken) {
                Committing::Synced { up } => {
                    c.step = match store.publish(up) {
                        Ok((stored, dir)) => match disk.sync_dir(self.slot, dir.as_fd()) {
                            Ok(job) => {
                                c.job = job;
                                Committing::SyncingDir { stored }
                            }
                            Err(e) => Committing::Failed(StoreError::from_io(stored.as_str(), e)),
                        },
                        Err(e) => Committing::Failed(e),
                    };
                }
                step @ (Committing::AfterStep { .. } | Committing::SyncingFile { .. }) => {
                    // Not durable yet: the later ones wait for its name.
                    c.step = step;
                    break;
                }
                step => c.step = step,
            }
        }
        while let Some(c) = commits.queue.front() {
            if !matches!(
                c.step,
                Committing::Done { .. } | Committing::Failed(_) | Committing::TimedOut(_)
            ) {
                break;
            }
            let c = commits.queue.pop_front().expect("front exists");
            let (peer, asked, size) = (&self.peer, &c.asked, c.size);
            match c.step {
                Committing::Done { stored } => {
                    info!(
                        "{peer}: put '{asked}' stored as '{stored}' ({size} bytes, {})",
                        elapsed(c.started, now)
                    );
                    self.session.put_committed(&stored, size);
                }
                Committing::Failed(e) => {
                    info!("{peer}: put '{asked}' failed: {e}");
                    self.session.commit_failed(e.code(), &e.to_string());
                }
                // Logged when it timed out.
                Committing::TimedOut(why) => self.session.commit_failed(ErrorCode::Timeout, &why),
                _ => {}
            }
        }
        if commits.queue.is_empty() {
            self.commits = None;
        }
    }

    /// The connection closes with a commit under way: before the publish
    /// the upload stays as a part for reput (its fsync, if running,
    /// finishes on the helper); after it the file is in place, the client
    /// just never heard so.
    pub(super) fn commit_interrupted(&mut self, store: &Store, commit: Commit, why: &str) {
        let asked = &commit.asked;
        match commit.step {
            Committing::AfterStep { up } | Committing::SyncingFile { up } => {
                info!(
                    "{}: put '{asked}' failed: {why} while it was being made durable",
                    self.peer
                );
                // Its flush or fsync still runs, and its error would
                // reach no one: only what is known durable stays.
                store.abort_unsettled(up);
            }
            Committing::Synced { up } => {
                info!(
                    "{}: put '{asked}' failed: {why} while it was being made durable",
                    self.peer
                );
                store.abort(up, true);
            }
            Committing::SyncingDir { stored } | Committing::Done { stored } => info!(
                "{}: put '{asked}' stored as '{stored}'; {why} before its directory was durable",
                self.peer
            ),
            Committing::Failed(_) | Committing::TimedOut(_) | Committing::Taken => {}
        }
    }
}

impl Conn {
    /// `now` as milliseconds after the connection opened (for
    /// `transfer_started`).
    fn since_opened(&self, now: Instant) -> u32 {
        let ms = now.saturating_duration_since(self.opened).as_millis();
        u32::try_from(ms).unwrap_or(u32::MAX - 1)
    }

    /// When the transfer in progress started, if one did.
    fn started_at(&self) -> Option<Instant> {
        (self.transfer_started != u32::MAX)
            .then(|| self.opened + std::time::Duration::from_millis(self.transfer_started.into()))
    }
}

/// `N.NN s` since `started`, or `?`.
fn elapsed(started: Option<Instant>, now: Instant) -> String {
    match started {
        Some(t) => format!("{:.2} s", now.saturating_duration_since(t).as_secs_f64()),
        None => "?".to_owned(),
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
    /// Set when the connection closes: the helper stops hashing.
    pub(super) cancel: Arc<AtomicBool>,
    pub(super) then: Resumed,
}

/// The commits of one connection under way (fsync on), oldest first.
#[derive(Default)]
pub(super) struct Commits {
    pub(super) queue: std::collections::VecDeque<Commit>,
}

/// A finished, verified upload on its way to `PutDone`.
pub(super) struct Commit {
    /// The disk job its step waits for (0: none).
    job: u64,
    asked: RemotePath,
    size: u64,
    /// When its transfer began, for the log.
    started: Option<Instant>,
    step: Committing,
}

/// Where a commit stands.
pub(super) enum Committing {
    /// A flush of it still runs: its fsync starts after the flush
    /// returned.
    AfterStep { up: Upload },
    /// Its fsync runs on a disk helper.
    SyncingFile { up: Upload },
    /// Durable; takes its name once every earlier commit took its own.
    Synced { up: Upload },
    /// Published as `stored`; the sync of its directory runs.
    SyncingDir { stored: RemotePath },
    /// Durable under `stored`; answered once every earlier one was.
    Done { stored: RemotePath },
    /// Failed (the upload is gone); answered in its turn.
    Failed(StoreError),
    /// Its disk job was out past the storage timeout (the upload left as
    /// it is, or published but perhaps not durable); answered in its turn
    /// with a timeout error saying this.
    TimedOut(String),
    /// Moved out for a moment while a step is taken.
    Taken,
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
