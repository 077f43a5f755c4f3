//! Many files in flight: the files of a many-file `put` or `get`, planned
//! first, go to the server as pipelined jobs ([`Client::run_jobs`]); each
//! result is reported as the single-file path reports it, as it comes.
//! Large files keep the single-file path (its progress bar), between the
//! pipelined runs.

use std::collections::VecDeque;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::client::{ClientError, Job, JobDone, Jobs};
use crate::proto::error::ErrorCode;

use super::super::command::Check;
use super::super::render::{escape_for_terminal, quoted_name};
use super::many::Tally;
use super::{note, resume_note, server_detail, summary, Executor};

/// Files larger than this go one at a time, with a progress bar: a
/// pipelined run shows only each file's line when it is done.
const PIPELINE_MAX_FILE: u64 = 1024 * 1024;

/// One file of a many-file `put`: the local path as shown, the remote
/// name as typed.
pub(super) struct PutFile {
    pub(super) local: String,
    pub(super) remote: String,
}

/// One file of a many-file `get`: the remote path as typed, the local
/// target, and the size when a listing gave it.
pub(super) struct GetFile {
    pub(super) remote: String,
    pub(super) target: PathBuf,
    pub(super) size: Option<u64>,
}

impl Executor {
    /// Runs simple jobs (`Mkdir`, `List`, `SetAttrs`) many in flight and
    /// returns their results in order. `Err` when the connection is lost.
    pub(super) fn run_simple(
        &mut self,
        jobs: Vec<Job>,
    ) -> Result<Vec<Result<JobDone, ClientError>>, ClientError> {
        struct Simple {
            jobs: VecDeque<(usize, Job)>,
            results: Vec<Option<Result<JobDone, ClientError>>>,
        }
        impl Jobs for Simple {
            fn next_job(&mut self) -> Option<(usize, Job)> {
                self.jobs.pop_front()
            }
            fn finished(&mut self, tag: usize, result: Result<JobDone, ClientError>) {
                self.results[tag] = Some(result);
            }
        }
        let mut simple = Simple {
            results: (0..jobs.len()).map(|_| None).collect(),
            jobs: jobs.into_iter().enumerate().collect(),
        };
        let client = self.client.clone();
        let run = client.borrow_mut().run_jobs(&mut simple);
        run?;
        Ok(simple
            .results
            .into_iter()
            .map(|r| r.unwrap_or(Err(ClientError::Cancelled)))
            .collect())
    }

    /// Uploads `files` (fresh uploads; with `-u`/`-c` the unchanged ones
    /// are skipped first), many in flight, large ones one at a time.
    /// `Err` ends the command: Ctrl-C, or the connection lost.
    pub(super) fn put_files(
        &mut self,
        force: bool,
        files: Vec<PutFile>,
        tally: &mut Tally,
    ) -> Result<(), String> {
        let updating = self.update.check != Check::Off;
        let force = force || updating;
        let mut run: Vec<PutFile> = Vec::new();
        for f in files {
            if self.interrupted() {
                return Err(format!("put: {}: cancelled", quoted_name(&f.local)));
            }
            let size = fs::metadata(&f.local).map(|m| m.len()).ok();
            if size.is_some_and(|s| s <= PIPELINE_MAX_FILE) {
                self.begin_item(tally);
                if updating && self.unchanged(Path::new(&f.local), &f.remote) {
                    self.skip(&f.local)?;
                } else {
                    run.push(f);
                }
                continue;
            }
            self.put_run(force, std::mem::take(&mut run), tally)?;
            self.put_counted(force, &f.local, &f.remote, tally)?;
        }
        self.put_run(force, run, tally)
    }

    /// Sends one pipelined run of small files.
    fn put_run(
        &mut self,
        force: bool,
        files: Vec<PutFile>,
        tally: &mut Tally,
    ) -> Result<(), String> {
        if files.is_empty() {
            return Ok(());
        }
        let _kept = self.keep_note(
            "ftx: interrupted during the upload of many files; \
             each file reported uploaded is stored"
                .to_owned(),
        );
        let client = self.client.clone();
        let mut jobs = PutJobs {
            queue: files
                .iter()
                .enumerate()
                .map(|(tag, f)| {
                    let job = Job::Put {
                        local: PathBuf::from(&f.local),
                        remote: self.wire(&f.remote),
                        force,
                    };
                    (tag, job)
                })
                .collect(),
            next_tag: files.len(),
            files,
            follow: VecDeque::new(),
            stored: Vec::new(),
            exec: self,
            tally,
            end: None,
        };
        let ran = client.borrow_mut().run_jobs(&mut jobs);
        let end = jobs.end.take();
        // Stored, but Ctrl-C or a lost connection came before their time
        // and mode were set: said, not lost.
        for (_, stored, line) in std::mem::take(&mut jobs.stored) {
            let msg = format!(
                "put: {}: time and mode not kept: interrupted",
                quoted_name(&stored)
            );
            jobs.report(Err(msg), Some(line));
        }
        self.end_run("put", ran, end, tally)
    }

    /// Downloads `files` (fresh downloads; with `-u`/`-c` the unchanged
    /// ones are skipped first), many in flight, large ones one at a time.
    pub(super) fn get_files(
        &mut self,
        force: bool,
        files: Vec<GetFile>,
        tally: &mut Tally,
    ) -> Result<(), String> {
        let updating = self.update.check != Check::Off;
        let force = force || updating;
        let mut run: Vec<GetFile> = Vec::new();
        for f in files {
            if self.interrupted() {
                return Err(format!("get: {}: cancelled", quoted_name(&f.remote)));
            }
            if f.size.is_some_and(|s| s <= PIPELINE_MAX_FILE) {
                self.begin_item(tally);
                if updating && self.unchanged(&f.target, &f.remote) {
                    self.skip(&f.remote)?;
                } else {
                    run.push(f);
                }
                continue;
            }
            self.get_run(force, std::mem::take(&mut run), tally)?;
            self.get_counted(force, &f.remote, &f.target, tally)?;
        }
        self.get_run(force, run, tally)
    }

    /// Fetches one pipelined run of small files.
    fn get_run(
        &mut self,
        force: bool,
        files: Vec<GetFile>,
        tally: &mut Tally,
    ) -> Result<(), String> {
        if files.is_empty() {
            return Ok(());
        }
        let _kept = self.keep_note(
            "ftx: interrupted during the download of many files; \
             each file reported downloaded is stored"
                .to_owned(),
        );
        let client = self.client.clone();
        let mut jobs = GetJobs {
            queue: files
                .iter()
                .enumerate()
                .map(|(tag, f)| {
                    let job = Job::Get {
                        remote: self.wire(&f.remote),
                        target: f.target.clone(),
                        force,
                    };
                    (tag, job)
                })
                .collect(),
            files,
            exec: self,
            tally,
            end: None,
        };
        let ran = client.borrow_mut().run_jobs(&mut jobs);
        let end = jobs.end.take();
        self.end_run("get", ran, end, tally)
    }

    /// How a pipelined run ended: Ctrl-C or a lost connection end the
    /// command with the first file they stopped.
    fn end_run(
        &mut self,
        cmd: &str,
        ran: Result<(), ClientError>,
        end: Option<String>,
        tally: &mut Tally,
    ) -> Result<(), String> {
        match (ran, end) {
            (Ok(()), None) => Ok(()),
            (Err(ClientError::Cancelled), Some(name)) => {
                Err(format!("{cmd}: {}: cancelled", quoted_name(&name)))
            }
            (Err(ClientError::Cancelled), None) => Err(format!("{cmd}: cancelled")),
            (_, Some(msg)) => Err(self.abort(tally, msg)),
            (Err(e), None) => {
                let msg = self.describe(cmd, "", "", &e);
                Err(self.abort(tally, msg))
            }
        }
    }
}

/// The uploads of one pipelined run, reported as they end.
struct PutJobs<'a> {
    files: Vec<PutFile>,
    queue: VecDeque<(usize, Job)>,
    /// `SetAttrs` after stored uploads, in the order they were stored:
    /// sent before the next upload.
    follow: VecDeque<(usize, Job)>,
    /// The tag of the next follow-up (the files' tags are their indexes).
    next_tag: usize,
    /// Uploads stored whose time and mode (`-p`) are being set: tag, stored
    /// name, the line to print once set.
    stored: Vec<(usize, String, String)>,
    exec: &'a mut Executor,
    tally: &'a mut Tally,
    /// What ended the run early: the name Ctrl-C stopped, or the message
    /// of a lost connection.
    end: Option<String>,
}

impl Jobs for PutJobs<'_> {
    fn next_job(&mut self) -> Option<(usize, Job)> {
        self.follow.pop_front().or_else(|| self.queue.pop_front())
    }

    fn finished(&mut self, tag: usize, result: Result<JobDone, ClientError>) {
        // Tags past the files are the `SetAttrs` that follow a stored one.
        if tag >= self.files.len() {
            let index = self.stored.iter().position(|s| s.0 == tag);
            let Some((_, stored, line)) = index.map(|i| self.stored.remove(i)) else {
                return;
            };
            let done = match result {
                Ok(_) => Ok(()),
                Err(ClientError::Remote(r)) => Err(format!(
                    "put: {}: time and mode not kept: {}",
                    quoted_name(&stored),
                    server_detail(&r, &stored)
                )),
                Err(e) => Err(self.exec.describe("put", &stored, &stored, &e)),
            };
            return self.report(done, Some(line));
        }
        let file = &self.files[tag];
        match result {
            Ok(JobDone::Put(o)) => {
                self.exec.counts.moved += 1;
                if o.partial > 0 {
                    note(&format!(
                        "an interrupted upload of '{}' ({} bytes) is still on the server; 'reput' can continue it",
                        escape_for_terminal(&file.remote),
                        o.partial
                    ));
                }
                let line = format!(
                    "uploaded '{}' as '{}' ({}{})",
                    escape_for_terminal(&file.local),
                    escape_for_terminal(&self.exec.shown(&o.stored)),
                    resume_note(false, 0, false, "the server's"),
                    summary(o.size, 0, o.elapsed)
                );
                let attrs = self.exec.preserve.then(|| fs::metadata(&file.local));
                match attrs {
                    None => self.report(Ok(()), Some(line)),
                    Some(Ok(meta)) => {
                        let follow = self.next_tag;
                        self.next_tag += 1;
                        self.stored.push((follow, o.stored.clone(), line));
                        self.follow.push_back((
                            follow,
                            Job::SetAttrs {
                                path: o.stored,
                                mode: Some((meta.mode() & 0o777) as u16),
                                mtime: Some(meta.mtime()),
                            },
                        ));
                    }
                    Some(Err(e)) => {
                        let msg = format!(
                            "put: {}: time and mode not kept: {}",
                            quoted_name(&o.stored),
                            super::io_reason(&e)
                        );
                        self.report(Err(msg), Some(line));
                    }
                }
            }
            Ok(_) => {}
            Err(ClientError::Cancelled) => {}
            Err(e) if e.code() == Some(ErrorCode::Cancelled) && self.exec.interrupted() => {
                if self.end.is_none() {
                    self.end = Some(file.local.clone());
                }
            }
            Err(e) => {
                let msg = self.exec.describe("put", &file.local, &file.remote, &e);
                if e.is_fatal() {
                    if self.end.is_none() {
                        self.end = Some(msg);
                    }
                } else {
                    self.report(Err(msg), None);
                }
            }
        }
    }

    fn cancelled(&self) -> bool {
        self.exec.interrupted()
    }
}

impl PutJobs<'_> {
    /// One file's end: its line (unless quiet), then its failure, if any.
    fn report(&mut self, done: Result<(), String>, line: Option<String>) {
        report(self.exec, self.tally, done, line);
    }
}

fn report(exec: &mut Executor, tally: &mut Tally, done: Result<(), String>, line: Option<String>) {
    if let (Some(line), false) = (line, exec.quiet) {
        let line = exec.style.success(&line);
        let _ = exec.say(&line);
    }
    if let Err(msg) = done {
        exec.fail_item(tally, msg);
    }
}

/// The downloads of one pipelined run, reported as they end.
struct GetJobs<'a> {
    files: Vec<GetFile>,
    queue: VecDeque<(usize, Job)>,
    exec: &'a mut Executor,
    tally: &'a mut Tally,
    end: Option<String>,
}

impl Jobs for GetJobs<'_> {
    fn next_job(&mut self) -> Option<(usize, Job)> {
        self.queue.pop_front()
    }

    fn finished(&mut self, tag: usize, result: Result<JobDone, ClientError>) {
        let file = &self.files[tag];
        match result {
            Ok(JobDone::Get(o)) => {
                self.exec.counts.moved += 1;
                if o.partial > 0 {
                    note(&format!(
                        "an interrupted download to '{}' ({} bytes) is still there; 'reget' can continue it",
                        escape_for_terminal(&file.target.to_string_lossy()),
                        o.partial
                    ));
                }
                // The mode from the listing the command already holds:
                // never a new request while the run has the connection.
                let kept = if self.exec.preserve {
                    let found = Ok(self.exec.listed_entry(&self.exec.wire(&file.remote)));
                    self.exec
                        .keep_local_attrs_of(&file.remote, &o.path, o.mtime, found)
                } else {
                    Ok(())
                };
                let shown = o.path.strip_prefix("./").unwrap_or(&o.path);
                let line = format!(
                    "downloaded '{}' as '{}' ({}{})",
                    escape_for_terminal(&file.remote),
                    escape_for_terminal(&shown.to_string_lossy()),
                    resume_note(false, 0, false, "the local"),
                    summary(o.size, 0, o.elapsed)
                );
                report(self.exec, self.tally, kept, Some(line));
            }
            Ok(_) => {}
            Err(ClientError::Cancelled) => {}
            Err(e) if e.code() == Some(ErrorCode::Cancelled) && self.exec.interrupted() => {
                if self.end.is_none() {
                    self.end = Some(file.remote.clone());
                }
            }
            Err(e) => {
                let mut msg = self.exec.describe("get", &file.remote, &file.remote, &e);
                if e.code() == Some(ErrorCode::IsDirectory) {
                    msg.push_str(" (use get -r)");
                }
                if e.is_fatal() {
                    if self.end.is_none() {
                        self.end = Some(msg);
                    }
                } else {
                    report(self.exec, self.tally, Err(msg), None);
                }
            }
        }
    }

    fn cancelled(&self) -> bool {
        self.exec.interrupted()
    }
}
