//! Interrupted transfers, seen and dropped: `parts` lists the uploads the
//! server keeps for this client and the downloads kept in the local
//! directory; `discard` and `ldiscard` drop them.

use std::fs;
use std::os::fd::AsFd;
use std::path::Path;

use crate::partial;
use crate::proto::error::ErrorCode;
use crate::proto::message::Entry;

use super::many::Tally;
use super::{io_reason, Executor};
use crate::shell::render::{escape_for_terminal, quoted_name};

impl Executor {
    /// `parts [DIR]`: this client's interrupted uploads in the remote DIR
    /// and the interrupted downloads in the local directory, with the bytes
    /// each holds and the commands that continue or drop them.
    pub(super) fn parts(&mut self, dir: Option<&str>) -> Result<(), String> {
        let shown = dir.unwrap_or("");
        let wire = self.wire(shown);
        let remote = self.client.borrow_mut().list_parts(&wire);
        let remote = remote.map_err(|e| self.describe("parts", shown, shown, &e))?;
        let local = local_parts(Path::new("."))
            .map_err(|e| format!("parts: local directory: {}", io_reason(&e)))?;
        let mut text = String::new();
        if remote.is_empty() {
            text.push_str("No interrupted uploads on the server.\n");
        } else {
            text.push_str(
                "Interrupted uploads on the server (continue: reput LOCAL NAME; drop: discard NAME):\n",
            );
            push_rows(&mut text, &remote);
        }
        if local.is_empty() {
            text.push_str("No interrupted downloads here.\n");
        } else {
            text.push_str(
                "Interrupted downloads here (continue: reget NAME; drop: ldiscard NAME):\n",
            );
            push_rows(&mut text, &local);
        }
        self.say(text.trim_end())
    }

    /// `discard NAME...`: drops this client's interrupted uploads to each
    /// remote NAME; a failed one is reported and the others go on.
    pub(super) fn discard(&mut self, names: &[String]) -> Result<(), String> {
        let mut tally = Tally::default();
        for name in names {
            self.begin_item(&mut tally);
            let dropped = self.client.borrow_mut().discard_part(&self.wire(name));
            if let Err(e) = dropped {
                let msg = if e.code() == Some(ErrorCode::NotFound) {
                    format!(
                        "discard: {}: no interrupted upload of it on the server",
                        quoted_name(name)
                    )
                } else {
                    self.describe("discard", name, name, &e)
                };
                if e.is_fatal() {
                    return Err(self.abort(&mut tally, msg));
                }
                self.fail_item(&mut tally, msg);
            }
        }
        tally.end("discard")
    }

    /// `ldiscard NAME...`: drops the interrupted downloads to each local
    /// NAME (its part file beside it).
    pub(super) fn ldiscard(&mut self, names: &[String]) -> Result<(), String> {
        let mut tally = Tally::default();
        for name in names {
            self.begin_item(&mut tally);
            if let Err(why) = discard_local(Path::new(name)) {
                let msg = format!("ldiscard: {}: {why}", quoted_name(name));
                self.fail_item(&mut tally, msg);
            }
        }
        tally.end("ldiscard")
    }
}

/// `SIZE  NAME` lines, as `ls` shows sizes.
fn push_rows(text: &mut String, entries: &[Entry]) {
    for e in entries {
        text.push_str(&format!(
            "{:>12} {}\n",
            e.size,
            escape_for_terminal(&e.name)
        ));
    }
}

/// The interrupted downloads in `dir`: its part files that hold data and
/// that no transfer holds, named for their targets, sorted.
fn local_parts(dir: &Path) -> std::io::Result<Vec<Entry>> {
    let dir = fs::File::open(dir)?;
    let found =
        partial::interrupted_at(dir.as_fd(), None, usize::MAX, &|_| true)?.unwrap_or_default();
    Ok(found
        .into_iter()
        .map(|p| Entry {
            name: p.target,
            kind: crate::proto::message::EntryKind::File,
            size: p.size,
            mtime: p.mtime,
            mode: None,
        })
        .collect())
}

/// Removes the part file of the interrupted download to `target`, while
/// holding its lock (a transfer that holds it makes this fail as busy).
fn discard_local(target: &Path) -> Result<(), String> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("not a file name")?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let part = std::ffi::CString::new(partial::part_name(name)).map_err(|_| "not a file name")?;
    let dir = fs::File::open(dir).map_err(|e| io_reason(&e))?;
    match partial::discard_at(dir.as_fd(), &part, &|_| true) {
        Ok(partial::Discarded::Removed) => Ok(()),
        Ok(partial::Discarded::None) => Err("no interrupted download of it here".to_owned()),
        Ok(partial::Discarded::Busy) => Err("busy: a transfer holds it".to_owned()),
        Err(e) => Err(io_reason(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_parts_lists_and_discards_only_interrupted_downloads() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join(partial::part_name("a.bin")), b"12345").unwrap();
        fs::write(d.join(partial::part_name("empty")), b"").unwrap();
        fs::write(d.join("plain.txt"), b"x").unwrap();
        let held = d.join(partial::part_name("held"));
        fs::write(&held, b"xy").unwrap();
        let _lock = partial::open_locked(&held, false).unwrap().unwrap();
        let parts = local_parts(d).unwrap();
        let names: Vec<(&str, u64)> = parts.iter().map(|e| (e.name.as_str(), e.size)).collect();
        assert_eq!(names, [("a.bin", 5)]);
        assert!(discard_local(&d.join("held")).unwrap_err().contains("busy"));
        discard_local(&d.join("a.bin")).unwrap();
        assert!(!d.join(partial::part_name("a.bin")).exists());
        assert!(discard_local(&d.join("a.bin"))
            .unwrap_err()
            .contains("no interrupted download"));
        assert!(d.join("plain.txt").exists());
    }
}
