//! Downloads: [`Client::get`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::proto::client_session::{self, ClientEvent};
use crate::proto::error::ErrorCode;

use super::hasher::DownloadHasher;
use super::local::LocalDownload;
use super::{Client, ClientError, Progress, Restart};

/// A finished download.
#[derive(Debug, Clone)]
pub struct GetOutcome {
    /// Where the file was stored locally.
    pub path: PathBuf,
    /// Bytes in the file.
    pub size: u64,
    /// Wall time of the transfer.
    pub elapsed: Duration,
    /// Bytes already held locally and not fetched again.
    pub resumed_from: u64,
    /// The local part was not the server's data: it was fetched whole.
    pub restarted: bool,
    /// An interrupted download to the same name (this many bytes) is still
    /// there, untouched: `reget` could continue it.
    pub partial: u64,
    /// The remote file's modification time (Unix seconds), as `GetReady`
    /// gave it: what `get -p` keeps.
    pub mtime: i64,
}

impl GetOutcome {
    /// A download about to start; `partial`: the bytes of an interrupted
    /// download to the same name it leaves alone.
    pub(super) fn starting(partial: u64) -> GetOutcome {
        GetOutcome {
            path: PathBuf::new(),
            size: 0,
            elapsed: Duration::ZERO,
            resumed_from: 0,
            restarted: false,
            partial,
            mtime: 0,
        }
    }
}

impl Client {
    /// Downloads `remote` to `target` (a file path). The data goes to a
    /// hidden part file beside the target that is published under the
    /// final name after the digest matched; without `force` a taken name
    /// gives `stem_N.ext` locally. With `resume`, continues the part left by
    /// an interrupted download after checking that it is the same data as
    /// the server's prefix (BLAKE3); otherwise it restarts.
    pub fn get(
        &mut self,
        remote: &str,
        target: &Path,
        force: bool,
        resume: bool,
        progress: &mut dyn Progress,
    ) -> Result<GetOutcome, ClientError> {
        self.last_resumable = false;
        self.begin()?;
        let started = Instant::now();
        let local_err = |source| ClientError::Local {
            path: target.to_path_buf(),
            source,
        };
        let (mut dl, stale) = if resume {
            (LocalDownload::resume(target, force).map_err(local_err)?, 0)
        } else {
            LocalDownload::create(target, force).map_err(local_err)?
        };
        let held = dl.held().map_err(local_err)?;
        let queued = self.session.get(remote, held);
        queued.map_err(|e| self.command_error(e))?;
        let mut outcome = GetOutcome::starting(stale);
        let mut failure: Option<ClientError> = None;
        let mut restart = Restart::default();
        // Made at `GetReady`, from the offset the server chose.
        let mut hasher: Option<DownloadHasher> = None;
        loop {
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    ClientEvent::GetReady {
                        size,
                        offset,
                        digest,
                        mtime,
                    } => {
                        outcome.mtime = mtime;
                        self.last_resumable = dl.resumable();
                        let mut from = 0;
                        if offset > 0 {
                            match crate::partial::prefix_hasher(&dl.file, offset) {
                                Ok(h) if *h.finalize().as_bytes() == digest => {
                                    hasher = Some(DownloadHasher::new(h, offset, &dl.file));
                                    from = offset;
                                }
                                _ => {
                                    self.cancel_for_restart(&mut restart);
                                    continue;
                                }
                            }
                        } else if held > 0 {
                            outcome.restarted = true;
                        }
                        if from == 0 {
                            hasher = Some(DownloadHasher::new(blake3::Hasher::new(), 0, &dl.file));
                        }
                        outcome.resumed_from = from;
                        let placed = dl.seek_to(from).and_then(|()| {
                            // Blocks reserved up front: cheaper writes, and
                            // a local disk too small fails now, not midway.
                            match crate::partial::preallocate(&dl.file, from, size - from) {
                                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => Err(e),
                                _ => Ok(()),
                            }
                        });
                        if let Err(source) = placed {
                            failure = Some(local_err(source));
                            self.session.cancel();
                        }
                        progress.start(size, from);
                    }
                    ClientEvent::GetData { offset, len } => {
                        if failure.is_none() {
                            let data = self.session.data();
                            if let Err(source) = dl.file.write_all(data) {
                                failure = Some(local_err(source));
                                self.session.cancel();
                            } else {
                                if let Some(h) = hasher.as_mut() {
                                    h.update(data);
                                }
                                progress.advance(offset + len as u64);
                            }
                        }
                    }
                    ClientEvent::GetDone { size, unchecked } => {
                        progress.finish();
                        if let Some(f) = failure {
                            return Err(f);
                        }
                        let ours = match hasher.take().map(DownloadHasher::finalize) {
                            Some(Ok(d)) => Some(d),
                            Some(Err(source)) => return Err(local_err(source)),
                            None => None,
                        };
                        if unchecked.is_some_and(|theirs| Some(theirs) != ours) {
                            dl.discard();
                            return Err(ClientError::Remote(client_session::integrity_failure()));
                        }
                        outcome.path = dl.commit().map_err(local_err)?;
                        outcome.size = size;
                        outcome.elapsed = started.elapsed();
                        return Ok(outcome);
                    }
                    ClientEvent::Failed(e) if restart.confirmed_by(&e) => {
                        // Our part is not the server's data: start over.
                        outcome.restarted = true;
                        dl.seek_to(0).map_err(local_err)?;
                        self.restart(&mut restart, |s| s.get(remote, 0))?;
                    }
                    other => {
                        progress.finish();
                        if matches!(&other, ClientEvent::Failed(e) if e.code == ErrorCode::Integrity)
                        {
                            dl.discard();
                        }
                        // Always made: it records a lost connection.
                        let e = self.event_error(other);
                        return Err(failure.unwrap_or(e));
                    }
                }
            }
            // Cancelled: end it like a local write failure (the part stays
            // for reget, the server is told), then read on until it agrees.
            if failure.is_none() && progress.cancelled() {
                failure = Some(ClientError::Cancelled);
                self.session.cancel();
            }
            self.flush()?;
            self.read_some()?;
        }
    }
}

impl Client {
    /// The BLAKE3 digest of the remote file `remote`, asked without moving
    /// its data: `Get{path, offset: size}` is answered by `GetReady` with
    /// the digest of the first `size` bytes (the whole file when it still
    /// has `size` bytes) and then `Done` at once. `None` when the file no
    /// longer has `size` bytes (the get is then cancelled).
    pub fn remote_digest(
        &mut self,
        remote: &str,
        size: u64,
    ) -> Result<Option<[u8; 32]>, ClientError> {
        if size == 0 {
            // Offset 0 carries no digest; every empty file is the same.
            return Ok(Some(*blake3::hash(b"").as_bytes()));
        }
        self.last_resumable = false;
        self.begin()?;
        let queued = self.session.get(remote, size);
        queued.map_err(|e| self.command_error(e))?;
        let mut found = None;
        loop {
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    ClientEvent::GetReady {
                        size: now,
                        offset,
                        digest,
                        ..
                    } => {
                        if now == size && offset == size {
                            found = Some(digest);
                        } else {
                            self.session.cancel();
                        }
                    }
                    // Only after a cancel: what was in flight.
                    ClientEvent::GetData { .. } => {}
                    ClientEvent::GetDone { .. } => return Ok(found),
                    ClientEvent::Failed(e) if e.code == ErrorCode::Cancelled => return Ok(None),
                    other => return Err(self.event_error(other)),
                }
            }
            self.flush()?;
            self.read_some()?;
        }
    }
}
