//! The reference model of the served tree: what it holds (files,
//! directories, kept parts, running uploads, the server's knobs) and what
//! each request must answer, written from the rules ftxd's store follows
//! (the checks and their order, clash names, parts and their locks, space
//! reserved up front), apart from `MemStore`'s event-by-event code. Knows
//! nothing of sessions or bytes on the wire.

use std::collections::BTreeMap;

use super::PutMode;
use crate::proto::error::ErrorCode;
use crate::proto::message::EntryKind;
use crate::proto::path::{clash_name, RemotePath};

/// An entry of the modelled tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Node {
    File(Vec<u8>),
    Dir,
}

/// An upload the model knows to be running.
#[derive(Debug, Clone)]
pub(super) struct Running {
    /// The client whose upload it is.
    pub(super) c: usize,
    pub(super) path: String,
    pub(super) force: bool,
    pub(super) data: Vec<u8>,
    pub(super) in_part: bool,
}

/// What the server answers a `Put` with, in the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PutPlan {
    pub(super) offset: u64,
    pub(super) partial: u64,
    pub(super) resumable: bool,
}

/// The reference model: what the served tree holds and what each request
/// must answer. Written from the rules ftxd's store documents, apart from
/// [`MemStore`]'s event-by-event code.
#[derive(Debug, Default)]
pub struct Model {
    pub(super) nodes: BTreeMap<String, Node>,
    pub(super) parts: BTreeMap<String, Vec<u8>>,
    pub(super) running: Vec<Running>,
    pub(super) read_only: bool,
    pub(super) max_size: Option<u64>,
    pub(super) space: Option<u64>,
    pub(super) fail_write: Option<(u64, ErrorCode)>,
}

impl Model {
    fn is_dir(&self, p: &str) -> bool {
        p.is_empty() || matches!(self.nodes.get(p), Some(Node::Dir))
    }

    /// The error of a name that breaks the rules, or of a parent that is
    /// missing or a file.
    fn path_error(name: &str, root_ok: bool) -> Option<ErrorCode> {
        let ok = if root_ok {
            RemotePath::parse(name).is_ok()
        } else {
            RemotePath::parse_file(name).is_ok()
        };
        (!ok).then_some(ErrorCode::InvalidName)
    }

    fn parent_error(&self, p: &str) -> Option<ErrorCode> {
        let comps: Vec<&str> = p.split('/').collect();
        for i in 1..comps.len() {
            let prefix = comps[..i].join("/");
            match self.nodes.get(&prefix) {
                Some(Node::Dir) => {}
                Some(Node::File(_)) => return Some(ErrorCode::NotADirectory),
                None => return Some(ErrorCode::NotFound),
            }
        }
        None
    }

    fn children<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = (&'a String, &'a Node)> + 'a {
        self.nodes.iter().filter(move |(p, _)| parent_of(p) == dir)
    }

    pub(super) fn list(&self, dir: &str) -> Result<Vec<(String, EntryKind, u64)>, ErrorCode> {
        if let Some(code) = Model::path_error(dir, true) {
            return Err(code);
        }
        if !dir.is_empty() {
            if let Some(code) = self.parent_error(dir) {
                return Err(code);
            }
            match self.nodes.get(dir) {
                None => return Err(ErrorCode::NotFound),
                Some(Node::File(_)) => return Err(ErrorCode::NotADirectory),
                Some(Node::Dir) => {}
            }
        }
        Ok(self
            .children(dir)
            .map(|(p, n)| match n {
                Node::File(d) => (base(p).to_owned(), EntryKind::File, d.len() as u64),
                Node::Dir => (base(p).to_owned(), EntryKind::Dir, 0),
            })
            .collect())
    }

    fn writable(&self, p: &str) -> Result<(), ErrorCode> {
        if let Some(code) = Model::path_error(p, false) {
            return Err(code);
        }
        if self.read_only {
            return Err(ErrorCode::ReadOnly);
        }
        self.parent_error(p).map_or(Ok(()), Err)
    }

    pub(super) fn mkdir(&mut self, p: &str) -> Result<(), ErrorCode> {
        self.writable(p)?;
        if self.nodes.contains_key(p) {
            return Err(ErrorCode::Exists);
        }
        self.nodes.insert(p.to_owned(), Node::Dir);
        Ok(())
    }

    /// A directory holds something on disk: an entry, a kept part, or a
    /// running upload's hidden file.
    fn dir_busy(&self, dir: &str) -> bool {
        self.children(dir).next().is_some()
            || self.parts.keys().any(|p| parent_of(p) == dir)
            || self.running.iter().any(|r| parent_of(&r.path) == dir)
    }

    pub(super) fn remove(&mut self, p: &str) -> Result<(), ErrorCode> {
        self.writable(p)?;
        match self.nodes.get(p) {
            None => Err(ErrorCode::NotFound),
            Some(Node::Dir) if self.dir_busy(p) => Err(ErrorCode::NotEmpty),
            Some(_) => {
                self.nodes.remove(p);
                Ok(())
            }
        }
    }

    pub(super) fn rename(&mut self, from: &str, to: &str) -> Result<(), ErrorCode> {
        // The session checks both names before the store sees either.
        if let Some(code) = Model::path_error(to, false) {
            return Err(code);
        }
        self.writable(from)?;
        if let Some(code) = self.parent_error(to) {
            return Err(code);
        }
        let Some(node) = self.nodes.get(from).cloned() else {
            return Err(ErrorCode::NotFound);
        };
        if self.nodes.contains_key(to) {
            return Err(ErrorCode::Exists);
        }
        if node == Node::Dir && to.starts_with(&format!("{from}/")) {
            return Err(ErrorCode::Io);
        }
        let moved = |p: &str| -> String {
            match p.strip_prefix(&format!("{from}/")) {
                Some(rest) if node == Node::Dir => format!("{to}/{rest}"),
                _ if p == from => to.to_owned(),
                _ => p.to_owned(),
            }
        };
        self.nodes = std::mem::take(&mut self.nodes)
            .into_iter()
            .map(|(p, n)| (moved(&p), n))
            .collect();
        if node == Node::Dir {
            self.parts = std::mem::take(&mut self.parts)
                .into_iter()
                .map(|(p, d)| (moved(&p), d))
                .collect();
        }
        Ok(())
    }

    pub(super) fn get(&self, p: &str) -> Result<Vec<u8>, ErrorCode> {
        if let Some(code) = Model::path_error(p, false).or_else(|| self.parent_error(p)) {
            return Err(code);
        }
        match self.nodes.get(p) {
            None => Err(ErrorCode::NotFound),
            Some(Node::Dir) => Err(ErrorCode::IsDirectory),
            Some(Node::File(d)) => Ok(d.clone()),
        }
    }

    fn part_held(&self, p: &str) -> bool {
        self.running.iter().any(|r| r.in_part && r.path == p)
    }

    /// Starts an upload: its plan, or why it is refused. `max`: a resume's
    /// most (the client's size, or 0 to restart).
    pub(super) fn put_start(
        &mut self,
        c: usize,
        p: &str,
        size: u64,
        mode: PutMode,
        max: u64,
    ) -> Result<PutPlan, ErrorCode> {
        // ftxd's order: the name, read-only, the size, then the parent.
        if let Some(code) = Model::path_error(p, false) {
            return Err(code);
        }
        if self.read_only {
            return Err(ErrorCode::ReadOnly);
        }
        if self.max_size.is_some_and(|m| size > m) {
            return Err(ErrorCode::TooLarge);
        }
        if let Some(code) = self.parent_error(p) {
            return Err(code);
        }
        if mode == PutMode::Force && self.is_dir(p) {
            return Err(ErrorCode::IsDirectory);
        }
        let held_elsewhere = self.part_held(p);
        let kept = self.parts.get(p).map_or(0, |d| d.len() as u64);
        let (held, in_part, partial) = match mode {
            PutMode::Resume if held_elsewhere => return Err(ErrorCode::Busy),
            PutMode::Resume if kept > max || kept > size => (Vec::new(), true, 0),
            PutMode::Resume => (self.parts.get(p).cloned().unwrap_or_default(), true, 0),
            _ if kept > 0 => (Vec::new(), false, kept),
            _ => (Vec::new(), !held_elsewhere, 0),
        };
        if in_part {
            // The part is this upload's now (emptied if it restarts).
            self.parts.remove(p);
        }
        if self
            .space
            .is_some_and(|free| size - held.len() as u64 > free)
        {
            if !held.is_empty() {
                self.parts.insert(p.to_owned(), held);
            }
            return Err(ErrorCode::NoSpace);
        }
        let plan = PutPlan {
            offset: held.len() as u64,
            partial,
            resumable: in_part,
        };
        self.running.push(Running {
            c,
            path: p.to_owned(),
            force: mode == PutMode::Force,
            data: held,
            in_part,
        });
        Ok(plan)
    }

    fn running(&mut self, c: usize) -> usize {
        self.running
            .iter()
            .position(|r| r.c == c)
            .expect("a running upload")
    }

    /// Client `c`'s upload received `data` (all that was sent of it): the
    /// error the server fails it with, if a write fails.
    pub(super) fn put_data(&mut self, c: usize, data: &[u8]) -> Result<(), ErrorCode> {
        let i = self.running(c);
        let held = self.running[i].data.len();
        if let Some((at, code)) = self.fail_write {
            if data.len() > held && data.len() as u64 > at {
                // Writes stop at the frame that crosses `at`; the upload
                // is dropped as a whole, so where exactly does not matter.
                self.put_abort(c, false);
                return Err(code);
            }
        }
        self.running[i].data = data.to_vec();
        Ok(())
    }

    /// Client `c`'s upload ended without success; `keep`: an interruption
    /// (cancel, lost connection) rather than bad data.
    pub(super) fn put_abort(&mut self, c: usize, keep: bool) {
        let i = self.running(c);
        let r = self.running.remove(i);
        if keep && r.in_part && !r.data.is_empty() {
            self.parts.insert(r.path, r.data);
        }
    }

    /// Client `c`'s upload is complete and verified: the stored name, or why
    /// it cannot be stored (a forced upload whose name became a directory).
    pub(super) fn put_commit(&mut self, c: usize) -> Result<String, ErrorCode> {
        let i = self.running(c);
        let r = self.running.remove(i);
        let stored = if r.force {
            if self.is_dir(&r.path) {
                return Err(ErrorCode::IsDirectory);
            }
            r.path.clone()
        } else {
            let (parent, name) = match r.path.rfind('/') {
                Some(i) => (&r.path[..=i], &r.path[i + 1..]),
                None => ("", r.path.as_str()),
            };
            let mut n = 0;
            let mut stored = r.path.clone();
            while self.nodes.contains_key(&stored) {
                n += 1;
                stored = format!("{parent}{}", clash_name(name, n));
            }
            stored
        };
        self.nodes.insert(stored.clone(), Node::File(r.data));
        Ok(stored)
    }
}

fn parent_of(p: &str) -> &str {
    p.rfind('/').map_or("", |i| &p[..i])
}

fn base(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}
