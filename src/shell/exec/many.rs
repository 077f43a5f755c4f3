//! The many-file engine: `put` and `get` with patterns, several names or
//! `-r` (trees walked one file at a time), `chmod` over several names,
//! where the sources of a transfer go ([`Dest`]), and the [`Tally`] that
//! reports each failure as it happens and fails the command at the end.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::client::{ClientError, Job, JobDone};
use crate::proto::error::ErrorCode;
use crate::proto::limits::RESERVED_PREFIX;
use crate::proto::message::{Entry, EntryKind};

use super::super::command::Check;
use super::super::cwd;
use super::super::glob::{self, check_server_name, has_wildcards};
use super::super::render::quoted_name;
use super::attrs::set_local_attrs;
use super::pipeline::{GetFile, PutFile};
use super::{
    base_name, io_reason, missing_local_parent, no_file_name, server_detail, trim_trailing_slash,
    Executor,
};

/// What a many-file `put` will do, found before anything is sent: the
/// directories to make (local path, remote name as typed, the index of
/// the directory it is in, if planned too) and the files,
/// each with the index of the directory it goes into (`None`: a name
/// given on the command line).
#[derive(Default)]
struct PutPlan {
    dirs: Vec<(PathBuf, String, Option<usize>)>,
    files: Vec<(PutFile, Option<usize>)>,
}

/// Deepest directory tree `put -r` / `get -r` walk into; a guard against a
/// server (or a file system) that presents an endless tree.
pub(super) const MAX_TREE_DEPTH: usize = 256;

/// Counts the files of a many-file command and its failures, which are
/// reported as they happen; the command fails at the end if any did. When
/// the command touched one file only, its failure is held back and becomes
/// the command's own error, so `get 'a*'` fails in one line like `get a`.
#[derive(Default)]
pub(super) struct Tally {
    items: usize,
    failed: usize,
    held: Option<String>,
}

impl Tally {
    pub(super) fn end(self, cmd: &str) -> Result<(), String> {
        match (self.failed, self.held) {
            (0, _) => Ok(()),
            (_, Some(msg)) => Err(msg),
            (failed, None) => Err(format!("{cmd}: {failed} of {} files failed", self.items)),
        }
    }
}

impl Executor {
    /// A file (or a name that could not become one) is about to be handled.
    pub(super) fn begin_item(&mut self, tally: &mut Tally) {
        tally.items += 1;
        if tally.items == 2 {
            if let Some(msg) = tally.held.take() {
                self.report(&msg);
            }
        }
    }

    /// The current item failed: report it, or hold it while it is the only one.
    pub(super) fn fail_item(&mut self, tally: &mut Tally, msg: String) {
        tally.failed += 1;
        if tally.items <= 1 {
            tally.held = Some(msg);
        } else {
            self.report(&msg);
        }
    }

    pub(super) fn fail(&mut self, tally: &mut Tally, msg: &str) {
        self.begin_item(tally);
        self.fail_item(tally, msg.to_owned());
    }

    /// `put` with patterns, several names or `-r`. One plain name keeps the
    /// single-file path ([`Executor::put`]) and its exact messages.
    pub(super) fn put_many(
        &mut self,
        force: bool,
        recursive: bool,
        locals: &[String],
        remote: Option<&str>,
    ) -> Result<(), String> {
        // REMOTE is a directory to put things into when it is one, says so
        // with a trailing '/' or the sources are patterns; otherwise it is
        // the new name of the one source (`put -r dir other`).
        if let ([one], false) = (locals, recursive) {
            let local = glob::unescape(one);
            if !has_wildcards(one) && Path::new(&local).is_dir() {
                return Err(format!(
                    "put: {}: is a directory (use put -r)",
                    quoted_name(&local)
                ));
            }
        }
        let patterns = locals.iter().any(|l| has_wildcards(l));
        let dest = match remote {
            Some(r) => self.remote_dest("put", r, patterns)?,
            None => Dest::top(),
        };
        if let ([one], false) = (locals, recursive) {
            if !has_wildcards(one) {
                self.put_one(force, false, &glob::unescape(one), &dest)?;
                return self.update_summary("put", "sent");
            }
        }
        let mut tally = Tally::default();
        let mut plan = PutPlan::default();
        for word in locals {
            let sources = match expand_local(word) {
                Ok(v) => v,
                Err(msg) => {
                    self.fail(&mut tally, &format!("put: {msg}"));
                    continue;
                }
            };
            for src in sources {
                if self.interrupted() {
                    return Err(format!("put: {}: cancelled", quoted_name(&src)));
                }
                let Some(name) = base_name(&src) else {
                    self.fail(&mut tally, &no_file_name("put", &src));
                    continue;
                };
                // `put -r .` sends what is in the directory, into the target.
                let dest = if name == "." || name == ".." {
                    dest.itself()
                } else {
                    dest.for_name(&name)
                };
                if Path::new(&src).is_dir() {
                    if recursive {
                        self.plan_tree(&src, &dest, &mut tally, &mut plan)?;
                    } else {
                        let msg =
                            format!("put: {}: is a directory (use put -r)", quoted_name(&src));
                        self.fail(&mut tally, &msg);
                    }
                } else {
                    plan.files.push((
                        PutFile {
                            local: src,
                            remote: dest,
                        },
                        None,
                    ));
                }
            }
        }
        self.put_plan(force, plan, &mut tally)?;
        self.update_summary("put", "sent")?;
        tally.end("put")
    }

    /// Carries out a planned `put`: the directories first, then the files
    /// (none under a directory that could not be made), then with `-p`
    /// the directories' times and modes, deepest first. Each step with
    /// many requests in flight.
    fn put_plan(&mut self, force: bool, plan: PutPlan, tally: &mut Tally) -> Result<(), String> {
        let mkdirs: Vec<Job> = plan
            .dirs
            .iter()
            .filter(|(_, rdir, _)| !self.wire(rdir).is_empty())
            .map(|(_, rdir, _)| Job::Mkdir {
                path: self.wire(rdir),
            })
            .collect();
        let made = self.run_simple(mkdirs).map_err(|e| {
            let msg = self.describe("put", "", "", &e);
            self.abort(tally, msg)
        })?;
        let mut made = made.into_iter();
        let mut dir_ok: Vec<bool> = Vec::with_capacity(plan.dirs.len());
        for (_, rdir, parent) in &plan.dirs {
            let result = if self.wire(rdir).is_empty() {
                Ok(JobDone::Ok)
            } else {
                made.next().unwrap_or(Err(ClientError::Cancelled))
            };
            match result {
                // Below a directory that could not be made: its failure
                // was said, once for the subtree.
                _ if parent.is_some_and(|p| !dir_ok[p]) => dir_ok.push(false),
                Ok(_) => dir_ok.push(true),
                Err(e) if e.code() == Some(ErrorCode::Exists) => dir_ok.push(true),
                Err(e) => {
                    let msg = self.describe("put", rdir, rdir, &e);
                    if e.is_fatal() {
                        return Err(self.abort(tally, msg));
                    }
                    self.fail(tally, &msg);
                    dir_ok.push(false);
                }
            }
        }
        let files: Vec<PutFile> = plan
            .files
            .into_iter()
            .filter(|(_, dir)| dir.is_none_or(|d| dir_ok[d]))
            .map(|(f, _)| f)
            .collect();
        if self.update.check != Check::Off {
            self.prefetch_listings(files.iter().map(|f| f.remote.as_str()))?;
        }
        self.put_files(force, files, tally)?;
        if !self.preserve {
            return Ok(());
        }
        // Deepest first: setting a directory's time changes no parent's.
        let mut jobs = Vec::new();
        let mut which = Vec::new();
        for ((dir, rdir, _), ok) in plan.dirs.iter().zip(&dir_ok).rev() {
            let shown = dir.to_string_lossy().into_owned();
            match fs::metadata(dir) {
                Ok(meta) if *ok => {
                    jobs.push(Job::SetAttrs {
                        path: self.wire(rdir),
                        mode: Some((meta.mode() & 0o777) as u16),
                        mtime: Some(meta.mtime()),
                    });
                    which.push(rdir.clone());
                }
                Ok(_) => {}
                Err(e) => {
                    let msg = format!(
                        "put: {}: time and mode not kept: {}",
                        quoted_name(&shown),
                        io_reason(&e)
                    );
                    self.fail(tally, &msg);
                }
            }
        }
        let set = self.run_simple(jobs).map_err(|e| {
            let msg = self.describe("put", "", "", &e);
            self.abort(tally, msg)
        })?;
        for (rdir, result) in which.iter().zip(set) {
            if let Err(e) = result {
                let msg = match &e {
                    ClientError::Remote(r) => format!(
                        "put: {}: time and mode not kept: {}",
                        quoted_name(rdir),
                        server_detail(r, rdir)
                    ),
                    _ => self.describe("put", rdir, rdir, &e),
                };
                self.fail(tally, &msg);
            }
        }
        Ok(())
    }

    /// Lists, many in flight, the remote directories of `paths` not listed
    /// yet in this command, for `-u`/`-c` to compare with; a directory
    /// that cannot be listed counts as empty (its files are sent).
    pub(super) fn prefetch_listings<'p>(
        &mut self,
        paths: impl Iterator<Item = &'p str>,
    ) -> Result<(), String> {
        let mut dirs: Vec<String> = Vec::new();
        for p in paths {
            let wire = self.wire(p);
            let dir = wire.rsplit_once('/').map_or("", |d| d.0).to_owned();
            if !self.listings.borrow().contains_key(&dir) && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        let jobs = dirs.iter().map(|d| Job::List { path: d.clone() }).collect();
        let listed = self
            .run_simple(jobs)
            .map_err(|e| self.describe("list", "", "", &e))?;
        for (dir, result) in dirs.into_iter().zip(listed) {
            let entries = match result {
                Ok(JobDone::Listing(v)) => v,
                _ => Vec::new(),
            };
            self.listings.borrow_mut().insert(dir, entries);
        }
        Ok(())
    }

    /// One file of a many-file `put`; `Err` only when Ctrl-C cancelled it,
    /// which ends the whole command.
    pub(super) fn put_counted(
        &mut self,
        force: bool,
        local: &str,
        remote: &str,
        tally: &mut Tally,
    ) -> Result<(), String> {
        self.begin_item(tally);
        let done = self.put(force, false, local, remote);
        self.end_item(tally, done)
    }

    /// The end of one file of a many-file command: a failure is reported
    /// and the command goes on, unless Ctrl-C cancelled it or the
    /// connection is lost (every other file would fail the same way).
    fn end_item(&mut self, tally: &mut Tally, done: Result<(), String>) -> Result<(), String> {
        match done {
            Ok(()) => Ok(()),
            Err(msg) if self.interrupted() => Err(msg),
            Err(msg) if self.connection_lost() => Err(self.abort(tally, msg)),
            Err(msg) => {
                self.fail_item(tally, msg);
                Ok(())
            }
        }
    }

    /// Plans the upload of the tree under the local directory `src` as
    /// the remote directory `dest`: its directories (made, or used as they
    /// are when they exist) and its files, in order. Symbolic links to
    /// files are followed; links to directories are skipped (no loops).
    fn plan_tree(
        &mut self,
        src: &str,
        dest: &str,
        tally: &mut Tally,
        plan: &mut PutPlan,
    ) -> Result<(), String> {
        let mut stack = vec![(PathBuf::from(src), dest.to_owned(), 0usize, None)];
        while let Some((dir, rdir, depth, parent)) = stack.pop() {
            if self.interrupted() {
                return Err(format!(
                    "put: {}: cancelled",
                    quoted_name(&dir.to_string_lossy())
                ));
            }
            let index = plan.dirs.len();
            plan.dirs.push((dir.clone(), rdir.clone(), parent));
            let mut entries: Vec<(String, PathBuf)> = Vec::new();
            match fs::read_dir(&dir) {
                Ok(rd) => {
                    for entry in rd.filter_map(Result::ok) {
                        match entry.file_name().into_string() {
                            Ok(name) if name.starts_with(RESERVED_PREFIX) => {}
                            Ok(name) => entries.push((name, entry.path())),
                            Err(raw) => {
                                let shown = dir.join(raw).to_string_lossy().into_owned();
                                let msg = format!(
                                    "put: {}: name is not valid UTF-8",
                                    quoted_name(&shown)
                                );
                                self.fail(tally, &msg);
                            }
                        }
                    }
                }
                Err(e) => {
                    let shown = dir.to_string_lossy().into_owned();
                    let msg = format!("put: {}: {}", quoted_name(&shown), io_reason(&e));
                    self.fail(tally, &msg);
                    continue;
                }
            }
            entries.sort();
            let mut subdirs = Vec::new();
            for (name, path) in entries {
                let shown = path.to_string_lossy().into_owned();
                let remote = glob::join(&rdir, &name);
                let link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
                match fs::metadata(&path) {
                    Ok(m) if m.is_dir() && link => {
                        let msg = format!(
                            "put: skipped {}: symbolic link to a directory",
                            quoted_name(&shown)
                        );
                        self.warn(&msg);
                    }
                    Ok(m) if m.is_dir() => {
                        if depth + 1 >= MAX_TREE_DEPTH {
                            let msg = format!("put: {}: tree too deep", quoted_name(&shown));
                            self.fail(tally, &msg);
                        } else {
                            subdirs.push((path, remote, depth + 1, Some(index)));
                        }
                    }
                    _ => plan.files.push((
                        PutFile {
                            local: shown,
                            remote,
                        },
                        Some(index),
                    )),
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(())
    }

    /// `get` with patterns, several names or `-r`. One plain name keeps the
    /// single-file path ([`Executor::get`]) and its exact messages.
    pub(super) fn get_many(
        &mut self,
        force: bool,
        recursive: bool,
        remotes: &[String],
        local: Option<&str>,
    ) -> Result<(), String> {
        // LOCAL is a directory to get things into when it is one, says so
        // with a trailing '/' or the sources are patterns; otherwise it is
        // the new name of the one source (`get -r dir other`).
        let patterns = remotes.iter().any(|r| has_wildcards(r));
        let dest = match local {
            Some(l) => local_dest("get", l, patterns)?,
            None => Dest::top(),
        };
        if let ([one], false) = (remotes, recursive) {
            if !has_wildcards(one) {
                self.get_one(force, false, &glob::unescape(one), &dest)?;
                return self.update_summary("get", "fetched");
            }
        }
        let mut tally = Tally::default();
        let mut plan = GetPlan::default();
        for word in remotes {
            if cwd::has_no_name(word) {
                // `get -r .`, `get -r ..`, `get -r /`: what is in that
                // directory, into the target, as sftp does.
                self.begin_item(&mut tally);
                if recursive {
                    let local = PathBuf::from(dest.itself());
                    self.plan_get_tree(word, &local, &mut tally, &mut plan)?;
                } else {
                    let msg = format!("get: {}: is a directory (use get -r)", quoted_name(word));
                    self.fail_item(&mut tally, msg);
                }
                continue;
            }
            let matches = match self.expand_remote(word) {
                Ok(v) => v,
                Err(msg) if self.connection_lost() => {
                    return Err(self.abort(&mut tally, format!("get: {msg}")));
                }
                Err(msg) => {
                    self.fail(&mut tally, &format!("get: {msg}"));
                    continue;
                }
            };
            for m in matches {
                if self.interrupted() {
                    return Err(format!("get: {}: cancelled", quoted_name(&m.path)));
                }
                if let Err(why) = check_server_name(&m.name) {
                    let msg = format!(
                        "get: server sent an unsafe name {} ({why}): refused",
                        quoted_name(&m.name)
                    );
                    self.fail(&mut tally, &msg);
                    continue;
                }
                let dest = PathBuf::from(dest.for_name(&m.name));
                if m.is_dir {
                    if recursive {
                        self.plan_get_tree(&m.path, &dest, &mut tally, &mut plan)?;
                    } else {
                        let msg =
                            format!("get: {}: is a directory (use get -r)", quoted_name(&m.path));
                        self.fail(&mut tally, &msg);
                    }
                } else {
                    let size = self.listed_size(&m.path);
                    plan.files.push(GetFile {
                        remote: m.path,
                        target: dest,
                        size,
                    });
                }
            }
        }
        self.get_files(force, plan.files, &mut tally)?;
        // Deepest first: setting a directory's time changes no parent's.
        for (ldir, entry) in plan.dirs.into_iter().rev() {
            let kept = match entry {
                Some(e) => set_local_attrs(&ldir, e.mtime, e.mode),
                None => Err("the server did not list it".to_owned()),
            };
            if let Err(why) = kept {
                let shown = ldir.to_string_lossy().into_owned();
                let msg = format!(
                    "get: {}: time and mode not kept: {why}",
                    quoted_name(&shown)
                );
                self.fail(&mut tally, &msg);
            }
        }
        self.update_summary("get", "fetched")?;
        tally.end("get")
    }

    /// The size of the remote file `path` (as typed) in a listing this
    /// command made, if any.
    fn listed_size(&self, path: &str) -> Option<u64> {
        self.listed_entry(&self.wire(path)).map(|e| e.size)
    }

    /// One file of a many-file `get`; `Err` only when Ctrl-C cancelled it.
    pub(super) fn get_counted(
        &mut self,
        force: bool,
        remote: &str,
        local: &Path,
        tally: &mut Tally,
    ) -> Result<(), String> {
        self.begin_item(tally);
        let done = self.get(force, false, remote, local);
        self.end_item(tally, done)
    }

    /// Expands a remote pattern (or plain name, to learn whether it is a
    /// directory) against the server's listings. A pattern that matches
    /// nothing is shown as written, its literal characters escaped. The
    /// matches' paths are as typed (relative to the remote working
    /// directory, or from `/`).
    pub(super) fn expand_remote(&mut self, word: &str) -> Result<Vec<glob::Match>, String> {
        let client = self.client.clone();
        let mut list = |dir: &str| -> Result<Vec<(String, bool)>, String> {
            let entries = client
                .borrow_mut()
                .list(&self.wire(dir))
                .map_err(|e| self.describe_dir(dir, &e))?;
            // Kept for the sizes, `-p`'s modes and `-u`'s comparisons.
            self.listings
                .borrow_mut()
                .insert(self.wire(dir), entries.clone());
            Ok(entries
                .into_iter()
                .filter(|e| !e.name.starts_with(RESERVED_PREFIX))
                .map(|e| {
                    let is_dir = e.kind == EntryKind::Dir;
                    (e.name, is_dir)
                })
                .collect())
        };
        let found = glob::expand(word.trim_end_matches('/'), &mut list)?;
        if found.is_empty() {
            return Err(if word.is_empty() {
                "no file name given".to_owned()
            } else if has_wildcards(word) {
                format!("{}: no match on server", quoted_name(word))
            } else {
                format!("{} not found on server", quoted_name(&glob::unescape(word)))
            });
        }
        Ok(found)
    }

    /// Plans the download of the remote directory `src` as the local
    /// directory `dest`: the local directories are made now (one that
    /// exists is used as is), the listings of each level of the tree are
    /// asked together, and its files join `plan` in the order of the tree
    /// (a directory's files, then its subdirectories'). Every name the
    /// server lists is checked before it becomes a local path.
    fn plan_get_tree(
        &mut self,
        src: &str,
        dest: &Path,
        tally: &mut Tally,
        plan: &mut GetPlan,
    ) -> Result<(), String> {
        if let Some(why) = missing_local_parent(dest) {
            // As sftp, the tree's directory is made, never its parents.
            let shown = dest.to_string_lossy().into_owned();
            self.fail(tally, &format!("get: {}: {why}", quoted_name(&shown)));
            return Ok(());
        }
        let top = if self.preserve {
            self.cached_entry(src).ok().flatten()
        } else {
            None
        };
        // The tree as listed: each directory's files and subdirectories.
        let mut nodes: Vec<(Vec<GetFile>, Vec<usize>)> = vec![(Vec::new(), Vec::new())];
        let mut level = vec![(0usize, src.to_owned(), dest.to_path_buf(), 0usize, top)];
        while !level.is_empty() {
            if self.interrupted() {
                return Err(format!("get: {}: cancelled", quoted_name(&level[0].1)));
            }
            let mut listable = Vec::new();
            for (node, rdir, ldir, depth, entry) in level {
                if let Err(e) = fs::create_dir_all(&ldir) {
                    let shown = ldir.to_string_lossy().into_owned();
                    let msg = format!(
                        "get: local directory {}: {}",
                        quoted_name(&shown),
                        io_reason(&e)
                    );
                    self.fail(tally, &msg);
                    continue;
                }
                if self.preserve {
                    plan.dirs.push((ldir.clone(), entry));
                }
                listable.push((node, rdir, ldir, depth));
            }
            let jobs = listable
                .iter()
                .map(|(_, rdir, _, _)| Job::List {
                    path: self.wire(rdir),
                })
                .collect();
            let listed = self.run_simple(jobs).map_err(|e| {
                let msg = format!("get: {}", self.describe_dir(src, &e));
                self.abort(tally, msg)
            })?;
            let mut next = Vec::new();
            for ((node, rdir, ldir, depth), result) in listable.into_iter().zip(listed) {
                let entries = match result {
                    Ok(JobDone::Listing(v)) => v,
                    Ok(_) => Vec::new(),
                    Err(e) => {
                        let msg = format!("get: {}", self.describe_dir(&rdir, &e));
                        if e.is_fatal() {
                            return Err(self.abort(tally, msg));
                        }
                        self.fail(tally, &msg);
                        continue;
                    }
                };
                self.listings
                    .borrow_mut()
                    .insert(self.wire(&rdir), entries.clone());
                for e in entries {
                    if e.name.starts_with(RESERVED_PREFIX) {
                        continue;
                    }
                    if let Err(why) = check_server_name(&e.name) {
                        let msg = format!(
                            "get: server sent an unsafe name {} in {} ({why}): refused",
                            quoted_name(&e.name),
                            quoted_name(&rdir)
                        );
                        self.fail(tally, &msg);
                        continue;
                    }
                    let remote = glob::join(&rdir, &e.name);
                    let local = ldir.join(&e.name);
                    if e.kind == EntryKind::Dir {
                        if depth + 1 >= MAX_TREE_DEPTH {
                            let msg = format!("get: {}: tree too deep", quoted_name(&remote));
                            self.fail(tally, &msg);
                        } else {
                            let child = nodes.len();
                            nodes.push((Vec::new(), Vec::new()));
                            nodes[node].1.push(child);
                            next.push((child, remote, local, depth + 1, Some(e)));
                        }
                    } else {
                        nodes[node].0.push(GetFile {
                            remote,
                            target: local,
                            size: Some(e.size),
                        });
                    }
                }
            }
            level = next;
        }
        let mut stack = vec![0];
        while let Some(n) = stack.pop() {
            plan.files.append(&mut nodes[n].0);
            stack.extend(nodes[n].1.iter().rev());
        }
        Ok(())
    }
}

/// What a many-file `get` will do, found before any file moves: the files,
/// and with `-p` the local directories made with their remote entries
/// (for their times and modes once everything in them is there).
#[derive(Default)]
struct GetPlan {
    files: Vec<GetFile>,
    dirs: Vec<(PathBuf, Option<Entry>)>,
}

impl Executor {
    /// A failure that ends a many-file command at once (a lost connection):
    /// the failure held back as the command's own error is reported first,
    /// then `msg` becomes the command's error.
    pub(super) fn abort(&mut self, tally: &mut Tally, msg: String) -> String {
        if let Some(held) = tally.held.take() {
            self.report(&held);
        }
        msg
    }
}

impl Executor {
    /// `chmod MODE PATH...`: each name, or each match of a pattern, is
    /// given the permission bits `mode`; a failed one is reported and the
    /// others go on. A server without attributes is told nothing.
    pub(super) fn chmod(&mut self, mode: u16, paths: &[String]) -> Result<(), String> {
        if !self.client.borrow().has_attrs() {
            return Err(format!("chmod: {}", ClientError::Unsupported));
        }
        let mut tally = Tally::default();
        for word in paths {
            let targets = if has_wildcards(word) {
                match self.expand_remote(word) {
                    Ok(found) => found.into_iter().map(|m| m.path).collect(),
                    Err(msg) if self.connection_lost() => {
                        return Err(self.abort(&mut tally, format!("chmod: {msg}")));
                    }
                    Err(msg) => {
                        self.fail(&mut tally, &format!("chmod: {msg}"));
                        continue;
                    }
                }
            } else {
                vec![glob::unescape(word)]
            };
            for path in targets {
                if self.interrupted() {
                    return Err(format!("chmod: {}: cancelled", quoted_name(&path)));
                }
                self.begin_item(&mut tally);
                let wire = self.wire(&trim_trailing_slash(&path));
                let set = self.client.borrow_mut().set_attrs(&wire, Some(mode), None);
                if let Err(e) = set {
                    let msg = self.describe("chmod", &path, &path, &e);
                    if e.is_fatal() {
                        return Err(self.abort(&mut tally, msg));
                    }
                    self.fail_item(&mut tally, msg);
                }
            }
        }
        tally.end("chmod")
    }
}

/// Where the sources of a transfer go: into a directory, each under its
/// base name, or (one source) as exactly one name. As in sftp, a TARGET
/// that is an existing directory means into it; one ending in `/` must be
/// one; with patterns TARGET is always a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Dest {
    /// Into this directory (`""`: the server's root, or the current
    /// local directory).
    Into(String),
    /// Exactly this name.
    As(String),
}

impl Dest {
    /// No TARGET: each source under its base name at the top.
    pub(super) fn top() -> Dest {
        Dest::Into(String::new())
    }

    /// Where the source called `name` goes.
    pub(super) fn for_name(&self, name: &str) -> String {
        match self {
            Dest::Into(dir) => glob::join(dir, name),
            Dest::As(exact) => exact.clone(),
        }
    }

    /// The target itself, for a source that has no name of its own (`.`):
    /// what is in it goes there.
    pub(super) fn itself(&self) -> String {
        match self {
            Dest::Into(dir) if dir.is_empty() => ".".to_owned(),
            Dest::Into(dir) | Dest::As(dir) => dir.clone(),
        }
    }
}

/// [`Dest`] for a local TARGET (`get`, `reget`): into it when it is a
/// directory here; when it ends in `/` or the sources are patterns
/// (`must_be_dir`) it has to be one, else nothing is fetched.
pub(super) fn local_dest(cmd: &str, target: &str, must_be_dir: bool) -> Result<Dest, String> {
    if Path::new(target).is_dir() {
        return Ok(Dest::Into(target.to_owned()));
    }
    if !(must_be_dir || target.ends_with('/')) {
        return Ok(Dest::As(target.to_owned()));
    }
    let why = match fs::metadata(target) {
        Ok(_) => "not a local directory".to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            "not a local directory".to_owned()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "local directory not found".to_owned()
        }
        Err(e) => io_reason(&e),
    };
    Err(format!("{cmd}: {}: {why}", quoted_name(target)))
}

impl Executor {
    /// [`Dest`] for a remote TARGET (`put`, `reput`): into it when it is a
    /// directory on the server; when it ends in `/` or the sources are
    /// patterns (`must_be_dir`) it has to be one, else nothing is sent.
    /// `.` is the remote working directory.
    pub(super) fn remote_dest(
        &mut self,
        cmd: &str,
        target: &str,
        must_be_dir: bool,
    ) -> Result<Dest, String> {
        let dir = trim_trailing_slash(target);
        if dir == "." {
            return Ok(Dest::top());
        }
        if dir.is_empty() {
            // Not a name at all (and not the working directory: that is `.`).
            return Err(no_file_name(cmd, ""));
        }
        let must_be_dir = must_be_dir || dir != target;
        match self.remote_is_dir(&dir) {
            Ok(()) => Ok(Dest::Into(dir)),
            Err(e) if e.is_fatal() || matches!(e, ClientError::Cancelled) => {
                Err(self.describe(cmd, target, target, &e))
            }
            // Missing, a file, or a name the transfer will refuse itself.
            Err(_) if !must_be_dir => Ok(Dest::As(dir)),
            Err(e) => Err(match e.code() {
                Some(ErrorCode::NotFound) => {
                    format!(
                        "{cmd}: {}: directory not found on server",
                        quoted_name(target)
                    )
                }
                Some(ErrorCode::NotADirectory) => {
                    format!("{cmd}: {}: not a directory on server", quoted_name(target))
                }
                _ => self.describe(cmd, target, target, &e),
            }),
        }
    }

    /// `Ok` when the remote `path` (as typed) is a directory, else the
    /// error that says why not. Listing it finds out (the protocol has no
    /// stat): a directory too large to list is one, and one the server
    /// may not read is looked up in its parent's listing.
    pub(super) fn remote_is_dir(&mut self, path: &str) -> Result<(), ClientError> {
        let path = self.wire(path);
        let path = path.as_str();
        let listed = self.client.borrow_mut().list(path).map(drop);
        let Err(e) = listed else {
            return Ok(());
        };
        match e.code() {
            Some(ErrorCode::TooLarge) => Ok(()),
            Some(ErrorCode::PermissionDenied) => {
                let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
                let in_parent = self.client.borrow_mut().list(parent);
                match in_parent {
                    Ok(entries)
                        if entries
                            .iter()
                            .any(|x| x.name == name && x.kind == EntryKind::Dir) =>
                    {
                        Ok(())
                    }
                    Err(lost) if lost.is_fatal() => Err(lost),
                    _ => Err(e),
                }
            }
            _ => Err(e),
        }
    }
}

/// Expands a local pattern against the file system; a plain name is taken
/// as the name it stands for (the upload says if it is missing). A
/// pattern that matches nothing is an error, unless a file has that very
/// name (as a shell passes an unmatched pattern on).
pub(super) fn expand_local(word: &str) -> Result<Vec<String>, String> {
    if !has_wildcards(word) {
        return Ok(vec![glob::unescape(word)]);
    }
    let mut list = |dir: &str| -> Result<Vec<(String, bool)>, String> {
        let d = if dir.is_empty() { "." } else { dir };
        let rd = fs::read_dir(d).map_err(|e| format!("{}: {}", quoted_name(d), io_reason(&e)))?;
        Ok(rd
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let is_dir = fs::metadata(e.path()).is_ok_and(|m| m.is_dir());
                Some((name, is_dir))
            })
            .collect())
    };
    let found = glob::expand(word, &mut list)?;
    if found.is_empty() {
        let name = glob::unescape(word);
        if Path::new(&name).exists() {
            return Ok(vec![name]);
        }
        return Err(format!("{}: no match", quoted_name(word)));
    }
    Ok(found.into_iter().map(|m| m.path).collect())
}
