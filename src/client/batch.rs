//! Many small operations with many requests in flight: [`Client::run_jobs`].
//!
//! A many-file command (`put -r`, `get *.txt`, ...) hands the client a
//! source of [`Job`]s. While the server pipelines, the next requests go out
//! before the previous ones are answered (within the protocol's bounds:
//! 64 requests, 64 KiB of requests, one window of data), so a tree of
//! small files costs about one round trip in all, not one per file. The
//! answers come in request order; each job's result goes back to the
//! source as it arrives, and one failing job fails alone. A server that
//! does not pipeline gets the same jobs one at a time.
//!
//! Only fresh transfers run here (no resume, no progress bars): the
//! shell sends large files and `reput`/`reget` through [`Client::put`]
//! and [`Client::get`].

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::aligned::AlignedBuf;
use crate::proto::client_session::{self, ClientEvent, CommandError};
use crate::proto::error::{ErrorCode, RemoteError};
use crate::proto::message::Entry;

use super::local::LocalDownload;
use super::put::stored_name_fits;
use super::{Client, ClientError, GetOutcome, LostReason, PutOutcome, IO_BUF};

/// One operation of a many-file command.
#[derive(Debug, Clone)]
pub enum Job {
    /// Create a remote directory.
    Mkdir {
        /// Remote path.
        path: String,
    },
    /// List a remote directory.
    List {
        /// Remote path ("" for the root).
        path: String,
    },
    /// Upload the local file `local` as `remote` (a fresh upload).
    Put {
        /// Local file.
        local: PathBuf,
        /// Remote name.
        remote: String,
        /// Replace an existing file instead of choosing `stem_N.ext`.
        force: bool,
    },
    /// Download `remote` to the local path `target` (a fresh download).
    Get {
        /// Remote file.
        remote: String,
        /// Local path.
        target: PathBuf,
        /// Replace an existing local file instead of choosing `stem_N.ext`.
        force: bool,
    },
    /// Set a remote file's or directory's mode and/or modification time.
    SetAttrs {
        /// Remote path.
        path: String,
        /// Permission bits.
        mode: Option<u16>,
        /// Modification time (Unix seconds).
        mtime: Option<i64>,
    },
}

/// What a job gave when it succeeded.
#[derive(Debug, Clone)]
pub enum JobDone {
    /// `Mkdir` or `SetAttrs`.
    Ok,
    /// `List`, sorted by name.
    Listing(Vec<Entry>),
    /// `Put`.
    Put(PutOutcome),
    /// `Get`.
    Get(GetOutcome),
}

/// Where the jobs come from and their results go.
pub trait Jobs {
    /// The next job with the caller's tag for it, or `None` when there is
    /// none now. Asked again after every result: a result may bring more
    /// (`SetAttrs` after a `Put`, say).
    fn next_job(&mut self) -> Option<(usize, Job)>;
    /// The job tagged `tag` ended. The results of jobs whose request went
    /// out come in the order the jobs were taken; a job that fails before
    /// (a local file that cannot be read) is reported at once.
    fn finished(&mut self, tag: usize, result: Result<JobDone, ClientError>);
    /// Whether the user asked to stop (Ctrl-C): no more jobs are taken,
    /// running transfers are cancelled.
    fn cancelled(&self) -> bool {
        false
    }
}

/// A job whose request went out.
struct Running {
    tag: usize,
    started: Instant,
    kind: Kind,
}

enum Kind {
    Simple,
    List,
    Put {
        remote: String,
        outcome: PutOutcome,
        /// Reading the local file failed: the upload was cancelled, and
        /// this is why it failed.
        failure: Option<ClientError>,
    },
    Get {
        dl: Option<LocalDownload>,
        target: PathBuf,
        /// Boxed: ~1.9 KiB, which every other kind would carry too.
        hasher: Box<blake3::Hasher>,
        outcome: GetOutcome,
        failure: Option<ClientError>,
    },
}

/// The upload whose data is going out (always the last request sent).
struct Sending {
    file: File,
    local: PathBuf,
    left: u64,
}

/// How a job's start went.
enum Start {
    Sent(Box<Running>, Option<Sending>),
    /// The session cannot take it now: try again after some answers.
    Later,
    /// It failed before anything was sent (a missing local file).
    Failed(ClientError),
}

impl Client {
    /// Runs the jobs `jobs` gives, many in flight when the server allows
    /// it, until it gives no more and every one ended. `Err` only when the
    /// connection was lost (the running jobs are reported failed first)
    /// or the user cancelled ([`ClientError::Cancelled`], after every
    /// running job ended).
    pub fn run_jobs(&mut self, jobs: &mut dyn Jobs) -> Result<(), ClientError> {
        self.begin()?;
        let mut running: VecDeque<Running> = VecDeque::new();
        let mut sending: Option<Sending> = None;
        let mut waiting: Option<(usize, Job)> = None;
        let mut cancelled = false;
        let mut fbuf = AlignedBuf::zeroed(IO_BUF);
        loop {
            // Start jobs while the session takes them.
            while sending.is_none() && !cancelled {
                let Some((tag, job)) = waiting.take().or_else(|| jobs.next_job()) else {
                    break;
                };
                match self.start_job(&job, tag, &running) {
                    Start::Sent(run, send) => {
                        running.push_back(*run);
                        sending = send;
                    }
                    Start::Later => {
                        waiting = Some((tag, job));
                        break;
                    }
                    Start::Failed(e) if e.is_fatal() => {
                        jobs.finished(tag, Err(e));
                        return self.fail_all(&mut running, jobs, None);
                    }
                    Start::Failed(e) => jobs.finished(tag, Err(e)),
                }
            }
            if !cancelled && jobs.cancelled() {
                cancelled = true;
                sending = None;
                self.session.cancel();
            }
            // The data of the upload being sent, as the window allows.
            if let Some(s) = sending.as_mut() {
                let want = self.session.wants_data().min(s.left as usize);
                if want > 0 {
                    let n = match s.file.read(&mut fbuf[..want]) {
                        Ok(0) => Err(ClientError::LocalChanged(s.local.clone())),
                        Ok(n) => Ok(n),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(source) => Err(ClientError::Local {
                            path: s.local.clone(),
                            source,
                        }),
                    };
                    match n {
                        Ok(n) => {
                            s.left -= n as u64;
                            if s.left == 0 {
                                sending = None;
                            }
                            if let Err(e) = self.send_file_data(&fbuf[..n]) {
                                return self.fail_all(&mut running, jobs, Some(e));
                            }
                        }
                        Err(e) => {
                            // The server is told; the job ends with this error.
                            sending = None;
                            self.session.cancel();
                            if let Some(Running {
                                kind: Kind::Put { failure, .. },
                                ..
                            }) = running.back_mut()
                            {
                                *failure = Some(e);
                            }
                        }
                    }
                    continue;
                }
            }
            // Answers, in request order.
            while let Some(ev) = self.session.poll_event() {
                if let ClientEvent::Closed(_) = ev {
                    let e = self.event_error(ev);
                    return self.fail_all(&mut running, jobs, Some(e));
                }
                let Some(front) = running.front_mut() else {
                    let e = self.event_error(ev);
                    return self.fail_all(&mut running, jobs, Some(e));
                };
                if let Some(result) = self.job_event(front, ev) {
                    let tag = front.tag;
                    running.pop_front();
                    jobs.finished(tag, result);
                }
            }
            // The upload being sent was refused or failed at the server:
            // it has ended, and nothing more of it goes out.
            if sending.is_some() && !self.session.uploading() {
                sending = None;
            }
            if running.is_empty() && sending.is_none() {
                if cancelled {
                    return Err(ClientError::Cancelled);
                }
                if waiting.is_none() {
                    match jobs.next_job() {
                        Some(job) => waiting = Some(job),
                        None => return Ok(()),
                    }
                }
                continue;
            }
            if sending.is_some() && self.session.wants_data() > 0 {
                continue;
            }
            if let Err(e) = self.flush().and_then(|()| self.read_some()) {
                return self.fail_all(&mut running, jobs, Some(e));
            }
        }
    }

    /// Sends the request of `job`, if the session takes it now.
    fn start_job(&mut self, job: &Job, tag: usize, running: &VecDeque<Running>) -> Start {
        let started = Instant::now();
        let run = |kind| Running { tag, started, kind };
        let queued = match job {
            Job::Mkdir { path } => self.session.mkdir(path).map(|()| run(Kind::Simple)),
            Job::SetAttrs { path, mode, mtime } => self
                .session
                .set_attrs(path, *mode, *mtime)
                .map(|()| run(Kind::Simple)),
            Job::List { path } => self.session.list(path).map(|()| run(Kind::List)),
            // Never an upload behind a listing: the server would not read
            // its data before the listing is taken, and this client, busy
            // writing it, would not take the listing.
            Job::Put { .. } if running.iter().any(|r| matches!(r.kind, Kind::List)) => {
                return Start::Later
            }
            Job::Put {
                local,
                remote,
                force,
            } => return self.start_put(local, remote, *force, run),
            Job::Get {
                remote,
                target,
                force,
            } => return self.start_get(remote, target, *force, run),
        };
        match queued {
            Ok(r) => Start::Sent(Box::new(r), None),
            Err(CommandError::Busy) if self.session.outstanding() > 0 => Start::Later,
            Err(e) => Start::Failed(self.command_error(e)),
        }
    }

    fn start_put(
        &mut self,
        local: &Path,
        remote: &str,
        force: bool,
        run: impl FnOnce(Kind) -> Running,
    ) -> Start {
        let local_err = |source| ClientError::Local {
            path: local.to_path_buf(),
            source,
        };
        let file = match File::open(local) {
            Ok(f) => f,
            Err(e) => return Start::Failed(local_err(e)),
        };
        let size = match file.metadata() {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) => return Start::Failed(ClientError::LocalNotAFile(local.to_path_buf())),
            Err(e) => return Start::Failed(local_err(e)),
        };
        match self.session.put(remote, size, None, force) {
            Ok(()) => {}
            Err(CommandError::Busy) if self.session.outstanding() > 0 => return Start::Later,
            Err(e) => return Start::Failed(self.command_error(e)),
        }
        let outcome = PutOutcome::starting(size);
        let sending = (size > 0).then(|| Sending {
            file,
            local: local.to_path_buf(),
            left: size,
        });
        let kind = Kind::Put {
            remote: remote.to_owned(),
            outcome,
            failure: None,
        };
        Start::Sent(Box::new(run(kind)), sending)
    }

    fn start_get(
        &mut self,
        remote: &str,
        target: &Path,
        force: bool,
        run: impl FnOnce(Kind) -> Running,
    ) -> Start {
        // Nothing is created locally before the session takes the request.
        if !self.session.would_take_get(remote) {
            if self.session.outstanding() > 0 {
                return Start::Later;
            }
            let e = if self.session.is_closed() {
                CommandError::Closed
            } else {
                CommandError::Busy
            };
            return Start::Failed(self.command_error(e));
        }
        let (dl, stale) = match LocalDownload::create(target, force) {
            Ok(v) => v,
            Err(source) => {
                return Start::Failed(ClientError::Local {
                    path: target.to_path_buf(),
                    source,
                })
            }
        };
        match self.session.get(remote, 0) {
            Ok(()) => {}
            Err(CommandError::Busy) if self.session.outstanding() > 0 => return Start::Later,
            Err(e) => return Start::Failed(self.command_error(e)),
        }
        let outcome = GetOutcome::starting(stale);
        let kind = Kind::Get {
            dl: Some(dl),
            target: target.to_path_buf(),
            hasher: Box::new(blake3::Hasher::new()),
            outcome,
            failure: None,
        };
        Start::Sent(Box::new(run(kind)), None)
    }

    /// Hands `ev` to the job it belongs to (the oldest running one); its
    /// result once `ev` ended it.
    fn job_event(
        &mut self,
        run: &mut Running,
        ev: ClientEvent,
    ) -> Option<Result<JobDone, ClientError>> {
        let elapsed = run.started.elapsed();
        match (&mut run.kind, ev) {
            (Kind::Simple, ClientEvent::Ok) => Some(Ok(JobDone::Ok)),
            (Kind::List, ClientEvent::Listing(mut v)) => {
                v.sort_by(|a, b| a.name.cmp(&b.name));
                Some(Ok(JobDone::Listing(v)))
            }
            (Kind::Put { outcome, .. }, ClientEvent::PutReady { partial, .. }) => {
                outcome.partial = partial;
                None
            }
            (
                Kind::Put {
                    remote, outcome, ..
                },
                ClientEvent::PutDone { name, size },
            ) => {
                if !stored_name_fits(remote, &name) {
                    return Some(Err(ClientError::Remote(RemoteError::new(
                        ErrorCode::Protocol,
                        "server reported a stored name outside the requested directory",
                    ))));
                }
                outcome.stored = name;
                outcome.size = size;
                outcome.elapsed = elapsed;
                Some(Ok(JobDone::Put(outcome.clone())))
            }
            (
                Kind::Get {
                    dl: Some(dl),
                    target,
                    outcome,
                    failure,
                    ..
                },
                ClientEvent::GetReady { size, mtime, .. },
            ) => {
                outcome.mtime = mtime;
                outcome.size = size;
                // Blocks reserved up front: a local disk too small fails now.
                if let Err(e) = crate::partial::preallocate(&dl.file, 0, size) {
                    if e.raw_os_error() == Some(libc::ENOSPC) {
                        *failure = Some(local_error(target, e));
                    }
                }
                None
            }
            (
                Kind::Get {
                    dl: Some(dl),
                    target,
                    hasher,
                    failure,
                    ..
                },
                ClientEvent::GetData { .. },
            ) => {
                // A failed one reads on to its end; the others go on.
                if failure.is_none() {
                    let data = self.session.data();
                    match dl.file.write_all(data) {
                        Ok(()) => {
                            hasher.update(data);
                        }
                        Err(e) => *failure = Some(local_error(target, e)),
                    }
                }
                None
            }
            (
                Kind::Get {
                    dl,
                    target,
                    hasher,
                    outcome,
                    failure,
                },
                ClientEvent::GetDone { unchecked, .. },
            ) => {
                let mut dl = dl.take()?;
                if let Some(f) = failure.take() {
                    return Some(Err(f));
                }
                let ours = *hasher.finalize().as_bytes();
                if unchecked.is_some_and(|theirs| theirs != ours) {
                    dl.discard();
                    return Some(Err(
                        ClientError::Remote(client_session::integrity_failure()),
                    ));
                }
                match dl.commit() {
                    Ok(path) => {
                        outcome.path = path;
                        outcome.elapsed = elapsed;
                        Some(Ok(JobDone::Get(outcome.clone())))
                    }
                    Err(e) => Some(Err(local_error(target, e))),
                }
            }
            (kind, ClientEvent::Failed(e)) => {
                if let Kind::Get { dl: Some(dl), .. } = kind {
                    if e.code == ErrorCode::Integrity {
                        dl.discard();
                    }
                }
                let failure = match kind {
                    Kind::Get { failure, .. } | Kind::Put { failure, .. } => failure.take(),
                    _ => None,
                };
                Some(Err(failure.unwrap_or_else(|| self.failed(e))))
            }
            (_, other) => Some(Err(self.event_error(other))),
        }
    }

    /// The connection is lost (`e` found it out): every running job fails
    /// with the reason, which is also the result.
    fn fail_all(
        &mut self,
        running: &mut VecDeque<Running>,
        jobs: &mut dyn Jobs,
        e: Option<ClientError>,
    ) -> Result<(), ClientError> {
        let why = match (&self.lost, e) {
            (Some(why), _) => why.clone(),
            (None, Some(e)) if running.is_empty() => return Err(e),
            (None, _) => {
                let _ = self.lose(LostReason::ServerClosed);
                LostReason::ServerClosed
            }
        };
        for run in running.drain(..) {
            jobs.finished(run.tag, Err(ClientError::Lost(why.clone())));
        }
        Err(ClientError::Lost(why))
    }
}

fn local_error(path: &Path, source: io::Error) -> ClientError {
    ClientError::Local {
        path: path.to_path_buf(),
        source,
    }
}
