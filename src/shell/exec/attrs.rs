//! `-p` of `put` and `get`: the server must serve attributes, and each
//! file or directory moved keeps its modification time and permission
//! bits on the other side.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use crate::client::ClientError;
use crate::proto::message::Entry;

use super::super::command::Check;
use super::super::render::quoted_name;
use super::{io_reason, server_detail, Executor};

impl Executor {
    /// Takes `-p` for the command under way (`-u` implies it, so that
    /// the times it compares are kept); the server must serve attributes
    /// (it keeps modes and times for `put -p`, lists modes for `get -p`),
    /// else the command fails before anything moves.
    pub(super) fn preserve_for(
        &mut self,
        cmd: &str,
        preserve: bool,
        check: Check,
    ) -> Result<(), String> {
        let times = check == Check::Times;
        if (preserve || times) && !self.client.borrow().has_attrs() {
            let flag = if preserve { 'p' } else { 'u' };
            return Err(format!("{cmd}: -{flag}: {}", ClientError::Unsupported));
        }
        self.preserve = preserve || times;
        Ok(())
    }

    /// `put -p`: gives the remote `stored` the modification time and
    /// permission bits (`& 0o777`) of the local `local`, a file or a
    /// directory. Nothing without `-p` or on `reput`.
    pub(super) fn keep_remote_attrs(
        &mut self,
        resume: bool,
        local: &str,
        stored: &str,
    ) -> Result<(), String> {
        if !self.preserve || resume {
            return Ok(());
        }
        let not_kept = |why: String| {
            format!(
                "put: {}: time and mode not kept: {why}",
                quoted_name(stored)
            )
        };
        let meta = fs::metadata(local).map_err(|e| not_kept(io_reason(&e)))?;
        // Only the permission bits: the server refuses the others.
        let mode = (meta.mode() & 0o777) as u16;
        let set = self
            .client
            .borrow_mut()
            .set_attrs(stored, Some(mode), Some(meta.mtime()));
        set.map_err(|e| match &e {
            ClientError::Remote(r) => not_kept(server_detail(r, stored)),
            _ => self.describe("put", local, stored, &e),
        })
    }

    /// `get -p`: gives the local `path` the remote file's modification
    /// time (`mtime`, from the download itself) and permission bits (from
    /// its entry in its directory's listing). Nothing without `-p` or on
    /// `reget`.
    pub(super) fn keep_local_attrs(
        &mut self,
        resume: bool,
        remote: &str,
        path: &Path,
        mtime: i64,
    ) -> Result<(), String> {
        if !self.preserve || resume {
            return Ok(());
        }
        let found = self.cached_entry(remote);
        self.keep_local_attrs_of(remote, path, mtime, found)
    }

    /// `get -p` with the remote file's entry already looked up (`found`,
    /// or why it could not be): the time, then the mode.
    pub(super) fn keep_local_attrs_of(
        &self,
        remote: &str,
        path: &Path,
        mtime: i64,
        found: Result<Option<Entry>, ClientError>,
    ) -> Result<(), String> {
        let shown = path.strip_prefix("./").unwrap_or(path);
        let not_kept = |why: String| {
            format!(
                "get: {}: time and mode not kept: {why}",
                quoted_name(&shown.to_string_lossy())
            )
        };
        // The time comes with the download; the mode needs the listing.
        let (mode, missing) = match found {
            Ok(Some(Entry { mode: Some(m), .. })) => (Some(m), None),
            Ok(Some(_)) => (None, "the server listed no mode".to_owned().into()),
            Ok(None) => (None, "the server did not list it".to_owned().into()),
            Err(e) => {
                let dir = remote
                    .trim_end_matches('/')
                    .rsplit_once('/')
                    .map_or("", |d| d.0);
                (None, Some(self.describe_dir(dir, &e)))
            }
        };
        set_local_attrs(path, mtime, mode).map_err(not_kept)?;
        match missing {
            None => Ok(()),
            Some(why) => Err(format!(
                "get: {}: mode not kept: {why}",
                quoted_name(&shown.to_string_lossy())
            )),
        }
    }

    /// The entry of the remote `path` (as typed, relative to the working
    /// directory) in its directory's listing, which is asked for once per
    /// command.
    pub(super) fn cached_entry(&mut self, path: &str) -> Result<Option<Entry>, ClientError> {
        let resolved = self.wire(path);
        let path = resolved.trim_end_matches('/');
        let dir = path.rsplit_once('/').map_or("", |d| d.0);
        if !self.listings.borrow().contains_key(dir) {
            let entries = self.client.borrow_mut().list(dir)?;
            self.listings.borrow_mut().insert(dir.to_owned(), entries);
        }
        Ok(self.listed_entry(&resolved))
    }

    /// The entry of the remote `path` (root-relative) in a listing this
    /// command already made, if any; never asks the server.
    pub(super) fn listed_entry(&self, resolved: &str) -> Option<Entry> {
        let path = resolved.trim_end_matches('/');
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        self.listings
            .borrow()
            .get(dir)
            .and_then(|v| v.iter().find(|e| e.name == name).cloned())
    }
}

/// Sets a local file's or directory's modification time (Unix seconds)
/// and then, when known, its permission bits (`& 0o777`: never setuid
/// from a server); the time first, so a mode without write access does
/// not stand in the way. `Err` says why in plain words.
pub(super) fn set_local_attrs(path: &Path, mtime: i64, mode: Option<u16>) -> Result<(), String> {
    let span = Duration::from_secs(mtime.unsigned_abs());
    let when = if mtime >= 0 {
        std::time::UNIX_EPOCH.checked_add(span)
    } else {
        std::time::UNIX_EPOCH.checked_sub(span)
    }
    .ok_or("the server's time is out of range")?;
    fs::File::open(path)
        .and_then(|f| f.set_modified(when))
        .map_err(|e| io_reason(&e))?;
    if let Some(mode) = mode {
        let perms = fs::Permissions::from_mode(u32::from(mode & 0o777));
        fs::set_permissions(path, perms).map_err(|e| io_reason(&e))?;
    }
    Ok(())
}
