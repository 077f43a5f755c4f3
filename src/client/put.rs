//! Uploads: [`Client::put`].

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::aligned::AlignedBuf;
use crate::proto::client_session::ClientEvent;
use crate::proto::error::{ErrorCode, RemoteError};

use super::{Client, ClientError, Progress, Restart, IO_BUF};

/// A finished upload.
#[derive(Debug, Clone)]
pub struct PutOutcome {
    /// The name the server stored it under.
    pub stored: String,
    /// Bytes in the file.
    pub size: u64,
    /// Wall time of the transfer.
    pub elapsed: Duration,
    /// Bytes the server already held and that were not sent again.
    pub resumed_from: u64,
    /// The server's part was not this file's data: it was sent whole.
    pub restarted: bool,
    /// An interrupted upload of the name (this many bytes) is still on the
    /// server, untouched: `reput` could continue it.
    pub partial: u64,
}

impl PutOutcome {
    /// An upload of `size` bytes about to start: nothing stored yet.
    pub(super) fn starting(size: u64) -> PutOutcome {
        PutOutcome {
            stored: String::new(),
            size,
            elapsed: Duration::ZERO,
            resumed_from: 0,
            restarted: false,
            partial: 0,
        }
    }
}

impl Client {
    /// Uploads `local` as `remote`. Without `force`, a taken name gives
    /// `stem_N.ext` on the server; the outcome says the stored name. With
    /// `resume`, continues the server's interrupted upload of `remote` after
    /// checking that its prefix is the same data (BLAKE3); a prefix that
    /// differs restarts from scratch, and with nothing to resume the whole
    /// file is sent — the outcome says which.
    pub fn put(
        &mut self,
        local: &Path,
        remote: &str,
        force: bool,
        resume: bool,
        progress: &mut dyn Progress,
    ) -> Result<PutOutcome, ClientError> {
        self.last_resumable = false;
        self.begin()?;
        let local_err = |source| ClientError::Local {
            path: local.to_path_buf(),
            source,
        };
        let mut file = File::open(local).map_err(local_err)?;
        let meta = file.metadata().map_err(local_err)?;
        if !meta.is_file() {
            return Err(ClientError::LocalNotAFile(local.to_path_buf()));
        }
        let size = meta.len();
        let started = Instant::now();
        self.last_resumable = false;
        let queued = self
            .session
            .put(remote, size, resume.then_some(size), force);
        queued.map_err(|e| self.command_error(e))?;
        let mut outcome = PutOutcome::starting(size);
        // Aligned: see `aligned` for what a misaligned one costs.
        let mut fbuf = AlignedBuf::zeroed(IO_BUF);
        let mut sent = 0u64;
        // A fresh upload's data follows the request at once; a resumed one
        // waits for PutReady to say where to start.
        let early = !resume;
        let mut started_progress = early;
        if early {
            progress.start(size, 0);
        }
        let mut restart = Restart::default();
        let result = loop {
            // Only once data flows: before that there is nothing to cancel.
            if started_progress && progress.cancelled() {
                break Err(ClientError::Cancelled);
            }
            let mut step: Option<Result<(), ClientError>> = None;
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    ClientEvent::PutReady {
                        offset,
                        digest,
                        partial,
                        resumable,
                        ..
                    } => {
                        outcome.partial = partial;
                        self.last_resumable = resumable;
                        if early {
                            continue;
                        }
                        sent = 0;
                        if offset > 0 {
                            let same = crate::partial::prefix_hasher(&file, offset)
                                .ok()
                                .filter(|h| *h.finalize().as_bytes() == digest);
                            match same {
                                Some(prefix) => {
                                    self.session.resume_with(prefix);
                                    sent = offset;
                                    outcome.resumed_from = offset;
                                }
                                None => {
                                    self.cancel_for_restart(&mut restart);
                                    continue;
                                }
                            }
                        }
                        if let Err(e) = file.seek(SeekFrom::Start(sent)) {
                            step = Some(Err(local_err(e)));
                            break;
                        }
                        progress.start(size, sent);
                        started_progress = true;
                    }
                    ClientEvent::PutDone { name, size } => {
                        progress.advance(size);
                        progress.finish();
                        if !stored_name_fits(remote, &name) {
                            return Err(ClientError::Remote(RemoteError::new(
                                ErrorCode::Protocol,
                                "server reported a stored name outside the requested directory",
                            )));
                        }
                        outcome.stored = name;
                        outcome.size = size;
                        outcome.elapsed = started.elapsed();
                        return Ok(outcome);
                    }
                    ClientEvent::Failed(e) if restart.confirmed_by(&e) => {
                        // The server's part is not our data: start over in it.
                        outcome.restarted = true;
                        let again =
                            self.restart(&mut restart, |s| s.put(remote, size, Some(0), force));
                        if let Err(e) = again {
                            step = Some(Err(e));
                            break;
                        }
                    }
                    other => {
                        if started_progress {
                            progress.finish();
                        }
                        return Err(self.event_error(other));
                    }
                }
            }
            if let Some(r) = step {
                break r;
            }
            let want = self.session.wants_data();
            if want > 0 {
                let n = match file.read(&mut fbuf[..want]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => break Err(local_err(e)),
                };
                if n == 0 {
                    break Err(ClientError::LocalChanged(local.to_path_buf()));
                }
                if let Err(e) = self.send_file_data(&fbuf[..n]) {
                    break Err(e);
                }
                sent += n as u64;
                progress.advance(sent);
                continue;
            }
            if let Err(e) = self.flush().and_then(|_| self.read_some()) {
                break Err(e);
            }
        };
        // Local failure mid-upload: tell the server, then wait for its answer
        // so the connection stays in step.
        if started_progress {
            progress.finish();
        }
        if let Err(e) = &result {
            if !e.is_fatal() {
                self.session.cancel();
                // A cancel that crossed the server's PutDone on the wire
                // came too late: the file is stored (and verified), and
                // saying "cancelled" would leave the user with a copy
                // they do not know of (and a `reput` making a second).
                if let Some((name, size)) = self.drain_until_idle() {
                    if !stored_name_fits(remote, &name) {
                        return Err(ClientError::Remote(RemoteError::new(
                            ErrorCode::Protocol,
                            "server reported a stored name outside the requested directory",
                        )));
                    }
                    outcome.stored = name;
                    outcome.size = size;
                    outcome.elapsed = started.elapsed();
                    return Ok(outcome);
                }
            }
        }
        result.map(|()| outcome)
    }
}

/// True when `stored`, the name a server says it stored an upload of
/// `requested` under, is a valid remote path in the same directory: the
/// server is not trusted to name anything else.
pub(super) fn stored_name_fits(requested: &str, stored: &str) -> bool {
    match (
        crate::proto::path::RemotePath::parse(requested),
        crate::proto::path::RemotePath::parse(stored),
    ) {
        (Ok(r), Ok(s)) => s.file_name().is_some() && s.parent() == r.parent(),
        _ => false,
    }
}

#[cfg(test)]
mod distrust_tests {
    use super::stored_name_fits;

    #[test]
    fn a_stored_name_must_stay_in_the_requested_directory() {
        assert!(stored_name_fits("a.txt", "a_1.txt"));
        assert!(stored_name_fits("d/a.txt", "d/a_1.txt"));
        for bad in [
            "../a.txt",
            "/etc/passwd",
            "e/a.txt",
            "",
            "d/../a",
            "a\u{1b}[2J",
        ] {
            assert!(!stored_name_fits("d/a.txt", bad), "{bad:?}");
        }
        assert!(!stored_name_fits("a.txt", "d/a.txt"));
    }
}
