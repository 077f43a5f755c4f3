//! The commands that move about the server's tree and manage it: `cd`,
//! `ls` (a directory, a file or a pattern; `-R` walks), `mkdir [-p]`,
//! `rmdir` and `rm` (files only, several names and patterns). Every name
//! is taken as typed, relative to the remote working directory, and
//! resolved ([`Executor::wire`]) only when it goes to the server, so
//! messages and listings show the names the user wrote.
//!
//! The protocol has no stat and its Remove takes files and directories
//! alike: what a name is comes from its parent's listing, looked up just
//! before acting on it. (Another client may change the name in between;
//! the server's own checks still hold then.) ftxd lists a symbolic link
//! that stays inside the root as what it leads to, so a link to a
//! directory counts as a directory here: `rm` leaves it alone and
//! `rmdir` removes it — the link, never the directory it leads to.

use std::collections::HashMap;
use std::io::Write;

use crate::client::ClientError;
use crate::proto::error::{ErrorCode, RemoteError};
use crate::proto::limits::RESERVED_PREFIX;
use crate::proto::message::{Entry, EntryKind};
use crate::proto::path::RemotePath;

use super::super::cwd;
use super::super::glob::{self, has_wildcards};
use super::super::listing::{format_row, sort_rows, LsOptions, Row};
use super::super::render::quoted_name;
use super::many::{Tally, MAX_TREE_DEPTH};
use super::{no_file_name, Executor};

/// A refusal the shell itself decides on, in the server's terms, so that
/// it reads like the server's own.
fn refused(code: ErrorCode) -> ClientError {
    ClientError::Remote(RemoteError::new(code, ""))
}

/// `dir/name` for a listing's headers and the paths beneath: as typed,
/// `./sub` under `.` (as `ls -R` writes it), `/sub` under `/`.
fn beneath(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// One directory still to be shown by `ls`: its path as typed (also its
/// `DIR:` header), how deep it is, and its entries when already listed.
struct Pending {
    path: String,
    depth: usize,
    entries: Option<Vec<Entry>>,
}

impl Executor {
    /// `cd [DIR]`: only a directory that lists (or that its parent lists as
    /// one) becomes the working directory; anything else leaves it as it was.
    pub(super) fn cd(&mut self, path: Option<&str>) -> Result<(), String> {
        let (target, typed, dash) = match path {
            None | Some("") => (String::new(), "/".to_owned(), false),
            Some("-") => match &self.previous_cwd {
                Some(p) => (p.clone(), cwd::absolute(p), true),
                None => return Err("cd: no previous directory".to_owned()),
            },
            Some(p) => (self.wire(p), p.to_owned(), false),
        };
        if !target.is_empty() {
            self.remote_is_dir(&cwd::absolute(&target))
                .map_err(|e| self.describe("cd", &typed, &typed, &e))?;
        }
        let old = std::mem::replace(&mut *self.cwd.borrow_mut(), target);
        self.previous_cwd = Some(old);
        if dash {
            // As a shell's `cd -`: say where it went.
            let line = format!(
                "Remote working directory: {}",
                super::escape_for_terminal(&cwd::absolute(&self.cwd.borrow()))
            );
            self.say(&line)?;
        }
        Ok(())
    }

    /// The entry the typed `path` names, from its parent's listing (the
    /// root, which has no parent, as a directory). A name the server would
    /// refuse is refused here in its words, not looked for.
    fn remote_entry(&mut self, path: &str) -> Result<Entry, ClientError> {
        let resolved = self.wire(path);
        let Some((parent, name)) = cwd::split_parent(&resolved) else {
            return Ok(Entry {
                name: String::new(),
                kind: EntryKind::Dir,
                size: 0,
                mtime: 0,
                mode: None,
            });
        };
        if let Err(e) = RemotePath::parse_file(&resolved) {
            let why = RemoteError::new(ErrorCode::InvalidName, e.to_string());
            return Err(ClientError::Remote(why));
        }
        let entries = self.client.borrow_mut().list(parent)?;
        entries
            .into_iter()
            .find(|e| e.name == name)
            .ok_or_else(|| refused(ErrorCode::NotFound))
    }

    /// What the typed `path` is: from its parent's listing, or, when the
    /// parent cannot be listed (too large, not readable), by listing the
    /// name itself (then a link to a directory counts as a directory).
    fn remote_kind(&mut self, path: &str) -> Result<EntryKind, ClientError> {
        match self.remote_entry(path) {
            Ok(e) => Ok(e.kind),
            Err(e)
                if matches!(
                    e.code(),
                    Some(ErrorCode::TooLarge | ErrorCode::PermissionDenied)
                ) =>
            {
                let itself = self.client.borrow_mut().list(&self.wire(path)).map(drop);
                match itself {
                    Ok(()) => Ok(EntryKind::Dir),
                    Err(not) if not.code() == Some(ErrorCode::NotADirectory) => Ok(EntryKind::File),
                    Err(lost) if lost.is_fatal() => Err(lost),
                    Err(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `ls [OPTIONS] [PATH]`: the working directory, a directory, a file
    /// or what a pattern matches (the contents of the one directory it
    /// matches, as sftp does).
    pub(super) fn ls(&mut self, opts: &LsOptions, path: Option<&str>) -> Result<(), String> {
        let Some(word) = path else {
            // Named only when it is not the root (which always lists): the
            // working directory may have gone since `cd`.
            let here = if self.cwd.borrow().is_empty() {
                ""
            } else {
                "."
            };
            let entries = self
                .list_typed("")
                .map_err(|e| self.describe("ls", here, here, &e))?;
            return self.ls_dirs(opts, ".", entries);
        };
        if has_wildcards(word) {
            return self.ls_pattern(opts, word);
        }
        let name = glob::unescape(word);
        let listed = self.client.borrow_mut().list(&self.wire(&name));
        match listed {
            Ok(entries) => {
                let label = if name.is_empty() { "." } else { name.as_str() };
                self.ls_dirs(opts, label, entries)
            }
            // A file: listed as itself, unless the name said it is a
            // directory (`ls file/`).
            Err(e) if e.code() == Some(ErrorCode::NotADirectory) && !name.ends_with('/') => {
                let entry = self
                    .remote_entry(&name)
                    .map_err(|e| self.describe("ls", &name, &name, &e))?;
                let row = Row {
                    entry,
                    shown: name.clone(),
                };
                self.print_rows(opts, &[row])
            }
            Err(e) => Err(self.describe("ls", &name, &name, &e)),
        }
    }

    /// `ls PATTERN`: each match on its line, as matched; the one directory
    /// it matches is listed instead. With `-R` the directories matched are
    /// listed beneath, each after its header.
    fn ls_pattern(&mut self, opts: &LsOptions, word: &str) -> Result<(), String> {
        // Listings by root-relative directory, for the matches' details.
        let mut seen: HashMap<String, Vec<Entry>> = HashMap::new();
        let client = self.client.clone();
        let found = {
            let mut list = |dir: &str| -> Result<Vec<(String, bool)>, String> {
                let wire = self.wire(dir);
                let entries = client
                    .borrow_mut()
                    .list(&wire)
                    .map_err(|e| self.describe_dir(dir, &e))?;
                let names = entries
                    .iter()
                    .filter(|e| !e.name.starts_with(RESERVED_PREFIX))
                    .map(|e| (e.name.clone(), e.kind == EntryKind::Dir))
                    .collect();
                seen.insert(wire, entries);
                Ok(names)
            };
            glob::expand(word.trim_end_matches('/'), &mut list)
                .map_err(|msg| format!("ls: {msg}"))?
        };
        if found.is_empty() {
            return Err(format!("ls: {}: no match on server", quoted_name(word)));
        }
        if let [one] = found.as_slice() {
            if one.is_dir {
                let entries = self
                    .client
                    .borrow_mut()
                    .list(&self.wire(&one.path))
                    .map_err(|e| self.describe("ls", &one.path, &one.path, &e))?;
                return self.ls_dirs(opts, &one.path.clone(), entries);
            }
        }
        let mut rows = Vec::new();
        for m in &found {
            let dir = &m.path[..m.path.len() - m.name.len()];
            let entry = seen
                .get(&self.wire(dir))
                .and_then(|es| es.iter().find(|e| e.name == m.name));
            if let Some(entry) = entry {
                rows.push(Row {
                    entry: entry.clone(),
                    shown: m.path.clone(),
                });
            }
        }
        sort_rows(&mut rows, opts);
        self.print_rows(opts, &rows)?;
        if !opts.recursive {
            return Ok(());
        }
        let dirs = rows
            .iter()
            .filter(|r| r.entry.kind == EntryKind::Dir)
            .map(|r| Pending {
                path: r.shown.clone(),
                depth: 0,
                entries: None,
            })
            .collect();
        self.ls_walk(opts, dirs, true)
    }

    /// Lists the directory `label` (as typed), whose `entries` are at
    /// hand, and with `-R` everything beneath it.
    fn ls_dirs(
        &mut self,
        opts: &LsOptions,
        label: &str,
        entries: Vec<Entry>,
    ) -> Result<(), String> {
        let first = Pending {
            path: label.to_owned(),
            depth: 0,
            entries: Some(entries),
        };
        self.ls_walk(opts, vec![first], false)
    }

    /// Shows each directory in `dirs` in turn and, with `-R`, those beneath
    /// it first, depth first in the order shown (as `ls -R`): a `DIR:`
    /// header before each when recursive, a blank line between them (also
    /// after rows already printed, `printed`). A directory that cannot be
    /// listed is reported and the rest go on; the command fails at the end.
    fn ls_walk(
        &mut self,
        opts: &LsOptions,
        dirs: Vec<Pending>,
        printed: bool,
    ) -> Result<(), String> {
        let mut stack: Vec<Pending> = dirs.into_iter().rev().collect();
        let (mut shown, mut failed) = (0usize, 0usize);
        let mut first = !printed;
        while let Some(dir) = stack.pop() {
            if self.interrupted() {
                return Err(format!("ls: {}: cancelled", quoted_name(&dir.path)));
            }
            shown += 1;
            let entries = match dir.entries {
                Some(e) => e,
                None => match self.list_typed(&dir.path) {
                    Ok(e) => e,
                    Err(e) if e.is_fatal() => {
                        return Err(self.describe("ls", &dir.path, &dir.path, &e));
                    }
                    Err(e) => {
                        failed += 1;
                        let msg = self.describe("ls", &dir.path, &dir.path, &e);
                        self.report(&msg);
                        continue;
                    }
                },
            };
            let mut rows: Vec<Row> = entries
                .into_iter()
                .filter(|e| !e.name.starts_with(RESERVED_PREFIX))
                .filter(|e| opts.all || !e.name.starts_with('.'))
                .map(|e| Row {
                    shown: e.name.clone(),
                    entry: e,
                })
                .collect();
            sort_rows(&mut rows, opts);
            if opts.recursive {
                let mut head = String::new();
                if !first {
                    head.push('\n');
                }
                head.push_str(&super::escape_for_terminal(&dir.path));
                head.push_str(":\n");
                self.out
                    .write_all(head.as_bytes())
                    .map_err(|e| format!("cannot write output: {e}"))?;
            }
            first = false;
            self.print_rows(opts, &rows)?;
            if opts.recursive {
                let below: Vec<Pending> = rows
                    .iter()
                    .filter(|r| r.entry.kind == EntryKind::Dir)
                    .map(|r| (beneath(&dir.path, &r.entry.name), dir.depth + 1))
                    .filter(|(path, depth)| {
                        if *depth < MAX_TREE_DEPTH {
                            return true;
                        }
                        failed += 1;
                        self.report(&format!("ls: {}: tree too deep", quoted_name(path)));
                        false
                    })
                    .map(|(path, depth)| Pending {
                        path,
                        depth,
                        entries: None,
                    })
                    .collect();
                stack.extend(below.into_iter().rev());
            }
        }
        match failed {
            0 => Ok(()),
            n => Err(format!(
                "ls: {n} of {shown} directories could not be listed"
            )),
        }
    }

    /// The listing of the directory `path` as typed.
    fn list_typed(&mut self, path: &str) -> Result<Vec<Entry>, ClientError> {
        let wire = self.wire(path);
        self.client.borrow_mut().list(&wire)
    }

    /// Writes `rows` as the options format them.
    fn print_rows(&mut self, opts: &LsOptions, rows: &[Row]) -> Result<(), String> {
        let mut text = String::new();
        for row in rows {
            text.push_str(&format_row(row, opts, &self.style));
            text.push('\n');
        }
        self.out
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write output: {e}"))
    }

    /// `mkdir [-p] PATH`. Without `-p` a missing parent is named, with a
    /// hint; with `-p` each missing one is created and an existing
    /// directory is fine.
    pub(super) fn mkdir(&mut self, parents: bool, path: &str) -> Result<(), String> {
        let resolved = self.wire(path);
        if resolved.is_empty() {
            // The root: always there.
            return if parents {
                Ok(())
            } else {
                Err(self.describe("mkdir", path, path, &refused(ErrorCode::Exists)))
            };
        }
        let made = self.client.borrow_mut().mkdir(&resolved);
        let e = match made {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        match e.code() {
            Some(ErrorCode::Exists) if parents => self.mkdir_existing(path, &resolved),
            Some(ErrorCode::NotFound) if parents => {
                let parts: Vec<&str> = resolved.split('/').collect();
                for i in 1..=parts.len() {
                    let prefix = parts[..i].join("/");
                    let shown = if i == parts.len() {
                        path.to_owned()
                    } else {
                        self.shown(&prefix)
                    };
                    let made = self.client.borrow_mut().mkdir(&prefix);
                    match made {
                        Ok(()) => {}
                        Err(e) if e.code() == Some(ErrorCode::Exists) => {
                            self.mkdir_existing(&shown, &prefix)?;
                        }
                        Err(e) => return Err(self.describe("mkdir", &shown, &shown, &e)),
                    }
                }
                Ok(())
            }
            Some(ErrorCode::NotFound) => Err(self.missing_parent(path, &resolved, &e)),
            _ => Err(self.describe("mkdir", path, path, &e)),
        }
    }

    /// `mkdir -p` met `resolved` (shown as `shown`) already there: fine
    /// when it is a directory.
    fn mkdir_existing(&mut self, shown: &str, resolved: &str) -> Result<(), String> {
        match self.remote_is_dir(&cwd::absolute(resolved)) {
            Ok(()) => Ok(()),
            Err(e) if e.is_fatal() => Err(self.describe("mkdir", shown, shown, &e)),
            Err(_) => Err(format!(
                "mkdir: {}: exists and is not a directory",
                quoted_name(shown)
            )),
        }
    }

    /// Why `mkdir PATH` found no parent: the highest missing one, named,
    /// and the hint that `-p` creates it.
    fn missing_parent(&mut self, path: &str, resolved: &str, e: &ClientError) -> String {
        let parts: Vec<&str> = resolved.split('/').collect();
        for i in 1..parts.len() {
            let prefix = parts[..i].join("/");
            let probed = self.remote_is_dir(&cwd::absolute(&prefix));
            match probed {
                Ok(()) => {}
                Err(p) if p.code() == Some(ErrorCode::NotFound) => {
                    return format!(
                        "mkdir: {}: parent directory {} not found on server (use mkdir -p)",
                        quoted_name(path),
                        quoted_name(&self.shown(&prefix))
                    );
                }
                Err(p) if p.is_fatal() => return self.describe("mkdir", path, path, &p),
                Err(_) => break,
            }
        }
        self.describe("mkdir", path, path, e)
    }

    /// `rmdir DIR`: an empty directory only (the server's Remove would
    /// take a file or a link as well).
    pub(super) fn rmdir(&mut self, path: &str) -> Result<(), String> {
        if cwd::has_no_name(path) {
            return Err(if path.is_empty() {
                no_file_name("rmdir", path)
            } else {
                format!(
                    "rmdir: {}: give the directory's name, not '.', '..' or '/'",
                    quoted_name(path)
                )
            });
        }
        let kind = self
            .remote_kind(path)
            .map_err(|e| self.describe("rmdir", path, path, &e))?;
        if kind != EntryKind::Dir {
            let e = refused(ErrorCode::NotADirectory);
            return Err(self.describe("rmdir", path, path, &e));
        }
        let removed = self.client.borrow_mut().remove(&self.wire(path));
        removed.map_err(|e| self.describe("rmdir", path, path, &e))
    }

    /// `rm PATH...`: files (and links) named or matched; a directory is
    /// refused and left alone. Each failure is reported and the rest go on.
    pub(super) fn rm(&mut self, words: &[String]) -> Result<(), String> {
        let mut tally = Tally::default();
        for word in words {
            if self.interrupted() {
                return Err(format!("rm: {}: cancelled", quoted_name(word)));
            }
            if !has_wildcards(word) {
                let name = glob::unescape(word);
                self.begin_item(&mut tally);
                let kind = if cwd::has_no_name(&name) && !name.is_empty() {
                    Ok(EntryKind::Dir)
                } else {
                    self.remote_kind(&name)
                };
                match kind {
                    Ok(kind) => self.rm_one(&name, kind, &mut tally)?,
                    Err(e) => {
                        let msg = self.describe("rm", &name, &name, &e);
                        if e.is_fatal() {
                            return Err(self.abort(&mut tally, msg));
                        }
                        self.fail_item(&mut tally, msg);
                    }
                }
                continue;
            }
            let matches = match self.expand_remote(word) {
                Ok(v) => v,
                Err(msg) if self.connection_lost() => {
                    return Err(self.abort(&mut tally, format!("rm: {msg}")));
                }
                Err(msg) => {
                    self.fail(&mut tally, &format!("rm: {msg}"));
                    continue;
                }
            };
            for m in matches {
                if self.interrupted() {
                    return Err(format!("rm: {}: cancelled", quoted_name(&m.path)));
                }
                self.begin_item(&mut tally);
                let kind = if m.is_dir {
                    EntryKind::Dir
                } else {
                    EntryKind::File
                };
                self.rm_one(&m.path, kind, &mut tally)?;
            }
        }
        tally.end("rm")
    }

    /// Removes the file `name` (counted already) unless it is a
    /// directory; `Err` only when the connection is lost.
    fn rm_one(&mut self, name: &str, kind: EntryKind, tally: &mut Tally) -> Result<(), String> {
        if kind == EntryKind::Dir {
            let msg = format!("rm: {}: is a directory (use rmdir)", quoted_name(name));
            self.fail_item(tally, msg);
            return Ok(());
        }
        let removed = self.client.borrow_mut().remove(&self.wire(name));
        match removed {
            Ok(()) => Ok(()),
            Err(e) => {
                let msg = self.describe("rm", name, name, &e);
                if e.is_fatal() {
                    return Err(self.abort(tally, msg));
                }
                self.fail_item(tally, msg);
                Ok(())
            }
        }
    }
}
