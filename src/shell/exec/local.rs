//! The local commands: `lls`, `lmkdir`, `!COMMAND`, and `~` at the start
//! of a local path.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::proto::message::{Entry, EntryKind};

use super::super::glob;
use super::super::interrupt::IgnoreInterrupts;
use super::super::listing::{format_row, LsOptions, Row, View};
use super::super::render::{quoted_name, subject};
use super::{io_reason, missing_local_parent, Executor};

impl Executor {
    /// `lls [-l] [-a] [PATH]`: a local directory (or one file) in `ls`'s
    /// format, names sorted, dot files only with `-a`.
    pub(super) fn lls(&mut self, long: bool, all: bool, path: Option<&str>) -> Result<(), String> {
        let dir = path.unwrap_or(".");
        let failed = |e: std::io::Error| format!("{}: {}", subject("lls", dir), io_reason(&e));
        let mut entries = if fs::metadata(dir).map_err(failed)?.is_dir() {
            fs::read_dir(dir)
                .map_err(failed)?
                .filter_map(Result::ok)
                .map(|d| local_entry(&d.path(), d.file_name().to_string_lossy().into_owned()))
                .filter(|e| all || !e.name.starts_with('.'))
                .collect()
        } else {
            vec![local_entry(Path::new(dir), dir.to_owned())]
        };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        // The same lines as `ls` (or `ls -l`) of the same files.
        let opts = LsOptions {
            view: if long { View::Long } else { View::Sizes },
            all,
            ..LsOptions::default()
        };
        let mut text = String::new();
        for e in entries {
            let row = Row {
                shown: e.name.clone(),
                entry: e,
            };
            text.push_str(&format_row(&row, &opts, &self.style));
            text.push('\n');
        }
        self.out
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write output: {e}"))
    }

    /// `!COMMAND` (or `!` alone): runs `$SHELL -c COMMAND` (or the shell
    /// itself) on this terminal and waits for it. Meanwhile ftx ignores
    /// Ctrl-C and Ctrl-\ (they are the command's), as `system(3)` does.
    pub(super) fn shell(&mut self, command: &str) -> Result<(), String> {
        let shell = std::env::var_os("SHELL")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/bin/sh".into());
        let mut child = std::process::Command::new(&shell);
        if !command.is_empty() {
            child.arg("-c").arg(command);
        }
        if self.commands_on_stdin {
            // The rest of the commands are there, not the command's input.
            child.stdin(std::process::Stdio::null());
        }
        let _ = self.out.flush();
        let _ = std::io::stdout().flush();
        let shown = quoted_name(&shell.to_string_lossy());
        let mut child = child
            .spawn()
            .map_err(|e| format!("!: cannot run {shown}: {}", io_reason(&e)))?;
        let status = {
            let _quiet = IgnoreInterrupts::new();
            child.wait()
        }
        .map_err(|e| format!("!: {shown}: {e}"))?;
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(0), _) => Ok(()),
            (Some(code), _) => Err(format!("!: shell exited with status {code}")),
            (None, Some(sig)) => Err(format!("!: shell killed by signal {sig}")),
            (None, None) => Err("!: shell exited abnormally".to_owned()),
        }
    }
}

/// A local file as a listing entry named `name` (links followed; a
/// dangling one is listed as the link), for `lls`.
fn local_entry(path: &Path, name: String) -> Entry {
    let meta = fs::metadata(path)
        .or_else(|_| fs::symlink_metadata(path))
        .ok();
    let kind = match &meta {
        Some(m) if m.is_dir() => EntryKind::Dir,
        Some(m) if m.is_file() => EntryKind::File,
        Some(m) if m.file_type().is_symlink() => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    Entry {
        name,
        kind,
        size: meta.as_ref().filter(|m| m.is_file()).map_or(0, |m| m.len()),
        mtime: meta.as_ref().map_or(0, |m| m.mtime()),
        mode: meta.as_ref().map(|m| (m.mode() & 0o7777) as u16),
    }
}

/// `lmkdir PATH`: one local directory, its parent must exist.
pub(super) fn lmkdir(path: &str) -> Result<(), String> {
    if let Some(why) = missing_local_parent(Path::new(path)) {
        return Err(format!("lmkdir: {}: {why}", quoted_name(path)));
    }
    fs::create_dir(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::AlreadyExists => "already exists".to_owned(),
            _ => io_reason(&e),
        };
        format!("lmkdir: {}: {why}", quoted_name(path))
    })
}

/// `~` or `~/...` at the start of a local path is the home directory
/// (`$HOME`), as in a shell (`~user` is not); other paths are returned
/// as they are. `./~` names a file called `~`.
pub(super) fn expand_home(cmd: &str, path: &str) -> Result<String, String> {
    with_home(path, &|| home(cmd), &str::to_owned)
}

/// [`expand_home`] for a local pattern: the home directory goes in with
/// its wildcard characters escaped, so only the rest may match.
pub(super) fn expand_home_pattern(cmd: &str, pattern: &str) -> Result<String, String> {
    with_home(pattern, &|| home(cmd), &glob::escape)
}

/// `path` with a leading `~` or `~/` replaced by `home()` as `quote` gives it.
fn with_home(
    path: &str,
    home: &dyn Fn() -> Result<String, String>,
    quote: &dyn Fn(&str) -> String,
) -> Result<String, String> {
    match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            let home = home()?;
            let home = home
                .strip_suffix('/')
                .filter(|h| !h.is_empty())
                .unwrap_or(&home);
            Ok(format!("{}{rest}", quote(home)))
        }
        _ => Ok(path.to_owned()),
    }
}

/// `$HOME`, or why it cannot stand for `~`.
fn home(cmd: &str) -> Result<String, String> {
    std::env::var("HOME")
        .ok()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{cmd}: cannot expand '~': HOME is not set"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_tilde_is_home() {
        let at = |home: &'static str| move || Ok::<_, String>(home.to_owned());
        let plain = |s: &str| s.to_owned();
        let t = |path: &str, home: &'static str| with_home(path, &at(home), &plain).unwrap();
        assert_eq!(t("~", "/home/u"), "/home/u");
        assert_eq!(t("~/", "/home/u/"), "/home/u/");
        assert_eq!(t("~/a/b", "/home/u"), "/home/u/a/b");
        assert_eq!(t("~/a", "/"), "//a");
        assert_eq!(t("~", "/"), "/");
        // Only a leading ~ alone or before '/'.
        assert_eq!(t("~user/a", "/home/u"), "~user/a");
        assert_eq!(t("./~", "/home/u"), "./~");
        assert_eq!(t("a~", "/home/u"), "a~");
        // A home with wildcard characters is literal in a pattern.
        let p = with_home("~/*.log", &at("/h[1]"), &glob::escape).unwrap();
        assert_eq!(p, r"/h\[1\]/*.log");
        let none = || Err::<String, _>("put: cannot expand '~': HOME is not set".to_owned());
        assert_eq!(
            with_home("~/x", &none, &plain),
            Err("put: cannot expand '~': HOME is not set".to_owned())
        );
        assert_eq!(with_home("x", &none, &plain), Ok("x".to_owned()));
    }
}
