//! The executor: turns a parsed [`Command`] into calls on the network
//! [`Client`] or the local file system, and formats the results. All
//! user-visible output of commands is written here (stdout for results);
//! failures are returned as one-line messages for the runner to print.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::client::{Client, ClientError, Progress};
use crate::proto::error::ErrorCode;
use crate::proto::limits::RESERVED_PREFIX;
use crate::proto::message::{Entry, EntryKind};

use super::batch::{Execute, Flow};
use super::command::{self, Command};
use super::complete::RemoteNames;
use super::render::{escape_for_terminal, format_size_human, Style};

/// The connection, shared between the executor and remote-name completion
/// (which runs only while the shell waits for a line, never during a command).
pub type SharedClient = Rc<RefCell<Client>>;

/// Runs commands against one server connection.
pub struct Executor {
    client: SharedClient,
    out: Box<dyn Write>,
    style: Style,
    quiet: bool,
    progress: bool,
}

impl Executor {
    /// An executor writing results to `out`. `progress` enables the
    /// progress line on stderr (only sensible when stderr is a terminal).
    pub fn new(client: SharedClient, out: Box<dyn Write>, style: Style, quiet: bool) -> Executor {
        let progress = !quiet && std::io::stderr().is_terminal();
        Executor {
            client,
            out,
            style,
            quiet,
            progress,
        }
    }

    fn say(&mut self, line: &str) -> Result<(), String> {
        writeln!(self.out, "{line}").map_err(|e| format!("cannot write output: {e}"))
    }

    fn put(
        &mut self,
        force: bool,
        resume: bool,
        local: &str,
        remote: Option<&str>,
    ) -> Result<(), String> {
        let cmd = if resume { "reput" } else { "put" };
        let remote = match remote {
            Some(r) => r.to_owned(),
            None => base_name(local).ok_or_else(|| format!("{cmd}: '{local}' has no file name"))?,
        };
        let remote = trim_trailing_slash(&remote);
        let mut bar = ProgressLine::new(self.progress, &remote);
        let r = self
            .client
            .borrow_mut()
            .put(Path::new(local), &remote, force, resume, &mut bar);
        match r {
            Ok(o) => {
                if o.partial > 0 {
                    note(&format!(
                        "an interrupted upload of '{}' ({} bytes) is still on the server; 'reput' can continue it",
                        escape_for_terminal(&remote),
                        o.partial
                    ));
                }
                if self.quiet {
                    return Ok(());
                }
                let how = resume_note(resume, o.resumed_from, o.restarted, "the server's");
                let line = format!(
                    "uploaded '{}' as '{}' ({how}{})",
                    escape_for_terminal(local),
                    escape_for_terminal(&o.stored),
                    summary(o.size, o.elapsed)
                );
                let line = self.style.success(&line);
                self.say(&line)
            }
            Err(e) => {
                let hint = self.resume_hint(&e, "reput");
                Err(describe(cmd, local, &remote, &e) + &hint)
            }
        }
    }

    fn get(
        &mut self,
        force: bool,
        resume: bool,
        remote: &str,
        local: Option<&str>,
    ) -> Result<(), String> {
        let cmd = if resume { "reget" } else { "get" };
        let name =
            base_name(remote).ok_or_else(|| format!("{cmd}: '{remote}' has no file name"))?;
        let target: PathBuf = match local {
            None => PathBuf::from(&name),
            Some(l) if Path::new(l).is_dir() || l.ends_with('/') => Path::new(l).join(&name),
            Some(l) => PathBuf::from(l),
        };
        let mut bar = ProgressLine::new(self.progress, remote);
        let result = self
            .client
            .borrow_mut()
            .get(remote, &target, force, resume, &mut bar);
        match result {
            Ok(o) => {
                if o.partial > 0 {
                    note(&format!(
                        "an interrupted download to '{}' ({} bytes) is still there; 'reget' can continue it",
                        escape_for_terminal(&target.to_string_lossy()),
                        o.partial
                    ));
                }
                if self.quiet {
                    return Ok(());
                }
                let shown = o.path.strip_prefix("./").unwrap_or(&o.path);
                let how = resume_note(resume, o.resumed_from, o.restarted, "the local");
                let line = format!(
                    "downloaded '{}' as '{}' ({how}{})",
                    escape_for_terminal(remote),
                    escape_for_terminal(&shown.to_string_lossy()),
                    summary(o.size, o.elapsed)
                );
                let line = self.style.success(&line);
                self.say(&line)
            }
            Err(e) => {
                let hint = self.resume_hint(&e, "reget");
                Err(describe(cmd, remote, remote, &e) + &hint)
            }
        }
    }

    /// `('reput' can continue it)` after an interruption that left a part.
    fn resume_hint(&self, e: &ClientError, cmd: &str) -> String {
        let interrupted =
            e.is_fatal() || matches!(e.code(), Some(ErrorCode::Cancelled | ErrorCode::Timeout));
        if interrupted && self.client.borrow().last_transfer_resumable() {
            format!(" ('{cmd}' can continue it)")
        } else {
            String::new()
        }
    }

    fn ls(&mut self, long: bool, all: bool, path: Option<&str>) -> Result<(), String> {
        let path = trim_trailing_slash(path.unwrap_or(""));
        let entries = self
            .client
            .borrow_mut()
            .list(&path)
            .map_err(|e| describe("ls", &path, &path, &e))?;
        let mut text = String::new();
        for e in entries
            .iter()
            .filter(|e| !e.name.starts_with(RESERVED_PREFIX))
            .filter(|e| all || !e.name.starts_with('.'))
        {
            text.push_str(&self.format_entry(e, long));
            text.push('\n');
        }
        self.out
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write output: {e}"))
    }

    fn format_entry(&self, e: &Entry, long: bool) -> String {
        let mut name = escape_for_terminal(&e.name);
        if e.kind == EntryKind::Dir {
            name.push('/');
            name = self.style.dir(&name);
        }
        if long {
            format!(
                "{:>12} {:>7} {} {}",
                e.size,
                format_size_human(e.size),
                format_mtime(e.mtime),
                name
            )
        } else {
            format!("{:>12} {}", e.size, name)
        }
    }

    fn lls(&mut self, path: Option<&str>) -> Result<(), String> {
        let dir = path.unwrap_or(".");
        let rd = fs::read_dir(dir).map_err(|e| format!("lls: '{dir}': {}", io_reason(&e)))?;
        let mut rows: Vec<(String, bool, u64)> = rd
            .filter_map(Result::ok)
            .map(|d| {
                let name = d.file_name().to_string_lossy().into_owned();
                let meta = fs::metadata(d.path()).ok();
                let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
                let size = meta.filter(|m| m.is_file()).map_or(0, |m| m.len());
                (name, is_dir, size)
            })
            .filter(|(n, _, _)| !n.starts_with('.'))
            .collect();
        rows.sort();
        let mut text = String::new();
        for (name, is_dir, size) in rows {
            let mut name = escape_for_terminal(&name);
            if is_dir {
                name.push('/');
                name = self.style.dir(&name);
            }
            text.push_str(&format!("{size:>12} {name}\n"));
        }
        self.out
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write output: {e}"))
    }
}

impl Execute for Executor {
    fn execute(&mut self, cmd: Command) -> Result<Flow, String> {
        match cmd {
            Command::Put {
                force,
                local,
                remote,
            } => self.put(force, false, &local, remote.as_deref())?,
            Command::Get {
                force,
                remote,
                local,
            } => self.get(force, false, &remote, local.as_deref())?,
            Command::Reput { local, remote } => self.put(false, true, &local, remote.as_deref())?,
            Command::Reget { remote, local } => self.get(false, true, &remote, local.as_deref())?,
            Command::Ls { long, all, path } => self.ls(long, all, path.as_deref())?,
            Command::Mkdir { path } => {
                let p = trim_trailing_slash(&path);
                self.client
                    .borrow_mut()
                    .mkdir(&p)
                    .map_err(|e| describe("mkdir", &path, &path, &e))?
            }
            Command::Rm { path } => {
                let p = trim_trailing_slash(&path);
                self.client
                    .borrow_mut()
                    .remove(&p)
                    .map_err(|e| describe("rm", &path, &path, &e))?
            }
            Command::Rename { from, to } => self
                .client
                .borrow_mut()
                .rename(&trim_trailing_slash(&from), &trim_trailing_slash(&to))
                .map_err(|e| describe("rename", &from, &from, &e))?,
            Command::Lls { path } => self.lls(path.as_deref())?,
            Command::Lcd { path } => std::env::set_current_dir(&path)
                .map_err(|e| format!("lcd: '{path}': {}", io_reason(&e)))?,
            Command::Lpwd => {
                let cwd =
                    std::env::current_dir().map_err(|e| format!("lpwd: {}", io_reason(&e)))?;
                let line = format!("Local directory: {}", cwd.display());
                self.say(&line)?;
            }
            Command::Help { topic } => {
                let text = match topic.and_then(command::spec) {
                    Some(spec) => spec.long_help(),
                    None => command::help_overview(),
                };
                self.out
                    .write_all(text.as_bytes())
                    .map_err(|e| format!("cannot write output: {e}"))?;
            }
            Command::Exit => return Ok(Flow::Exit),
            Command::PromptPut | Command::PromptGet => {
                return Err("no file name given".to_owned());
            }
        }
        self.out.flush().ok();
        Ok(Flow::Continue)
    }
}

/// How long a remote listing is reused for completion.
const COMPLETION_CACHE_TTL: Duration = Duration::from_secs(5);

/// Remote names for Tab completion: listings through the shared client,
/// cached briefly so repeated Tabs do not ask the server again.
pub struct RemoteCompleter {
    client: SharedClient,
    cache: HashMap<String, (Instant, Vec<(String, bool)>)>,
}

impl RemoteCompleter {
    /// A completer using `client`.
    pub fn new(client: SharedClient) -> RemoteCompleter {
        RemoteCompleter {
            client,
            cache: HashMap::new(),
        }
    }
}

impl RemoteNames for RemoteCompleter {
    fn list(&mut self, dir: &str) -> Vec<(String, bool)> {
        if let Some((at, names)) = self.cache.get(dir) {
            if at.elapsed() < COMPLETION_CACHE_TTL {
                return names.clone();
            }
        }
        let Ok(mut client) = self.client.try_borrow_mut() else {
            return Vec::new();
        };
        let Ok(entries) = client.list(dir.trim_end_matches('/')) else {
            return Vec::new();
        };
        let names: Vec<(String, bool)> = entries
            .into_iter()
            .filter(|e| {
                !e.name.starts_with(RESERVED_PREFIX) && !e.name.chars().any(char::is_control)
            })
            .map(|e| (e.name, e.kind == EntryKind::Dir))
            .collect();
        self.cache
            .insert(dir.to_owned(), (Instant::now(), names.clone()));
        names
    }
}

/// The last component of a `/`-separated name, if any.
fn base_name(name: &str) -> Option<String> {
    name.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `dir/` -> `dir`, so that `ls dir/` and `mkdir dir/` work as in sftp.
fn trim_trailing_slash(name: &str) -> String {
    let t = name.trim_end_matches('/');
    if t.is_empty() && !name.is_empty() {
        // "/" alone stays invalid: the server says why.
        name.to_owned()
    } else {
        t.to_owned()
    }
}

/// A `note:` line on stderr: worth knowing, not a failure.
fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "note: {text}");
}

/// How a resumable transfer went, as the start of its summary.
fn resume_note(resume: bool, from: u64, restarted: bool, whose: &str) -> String {
    if from > 0 {
        format!("resumed at byte {from}, ")
    } else if restarted {
        format!("{whose} part was other data: sent whole, ")
    } else if resume {
        "nothing to resume: sent whole, ".to_owned()
    } else {
        String::new()
    }
}

/// `N bytes in T s, R MiB/s, BLAKE3 verified`.
fn summary(size: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-6);
    let rate = size as f64 / secs / (1024.0 * 1024.0);
    format!("{size} bytes in {secs:.2} s, {rate:.1} MiB/s, BLAKE3 verified")
}

/// One failure as `CMD: 'NAME' CAUSE`, naming whose side failed.
fn describe(cmd: &str, local: &str, remote: &str, e: &ClientError) -> String {
    let remote_shown = escape_for_terminal(remote);
    match e {
        ClientError::Remote(r) | ClientError::Closed(r) if is_name_error(r.code) => {
            format!("{cmd}: '{remote_shown}' {} on server", r.code)
        }
        ClientError::Remote(r) => {
            let detail = if r.message.is_empty() {
                String::new()
            } else {
                format!(": {}", escape_for_terminal(&r.message))
            };
            format!("{cmd}: '{remote_shown}': {}{detail}", r.code)
        }
        ClientError::LocalNotAFile(_)
        | ClientError::Local { .. }
        | ClientError::LocalChanged(_) => {
            let _ = local;
            format!("{cmd}: {e}")
        }
        other => format!("{cmd}: {other}"),
    }
}

fn is_name_error(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotFound
            | ErrorCode::IsDirectory
            | ErrorCode::NotADirectory
            | ErrorCode::Exists
            | ErrorCode::NotEmpty
    )
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "not found".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::NotADirectory => "not a directory".into(),
        _ => e.to_string(),
    }
}

/// `YYYY-MM-DD HH:MM` in UTC, from Unix seconds (no time-zone database on
/// small machines, so UTC is the honest choice).
fn format_mtime(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Least time between two redraws of the progress line.
const PROGRESS_REDRAW: Duration = Duration::from_millis(100);
/// A transfer shorter than this shows no progress at all.
const PROGRESS_DELAY: Duration = Duration::from_millis(500);

/// A one-line progress display on stderr: bytes, rate and ETA, redrawn in
/// place; only used when stderr is a terminal.
struct ProgressLine {
    enabled: bool,
    name: String,
    total: u64,
    base: u64,
    started: Instant,
    last_draw: Option<Instant>,
    drawn: bool,
}

impl ProgressLine {
    fn new(enabled: bool, name: &str) -> ProgressLine {
        ProgressLine {
            enabled,
            name: escape_for_terminal(name),
            total: 0,
            base: 0,
            started: Instant::now(),
            last_draw: None,
            drawn: false,
        }
    }
}

impl Progress for ProgressLine {
    fn start(&mut self, total: u64, done: u64) {
        self.total = total;
        self.base = done;
        self.started = Instant::now();
    }

    fn advance(&mut self, done: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.started);
        if elapsed < PROGRESS_DELAY
            || self
                .last_draw
                .is_some_and(|t| now.duration_since(t) < PROGRESS_REDRAW)
        {
            return;
        }
        self.last_draw = Some(now);
        let moved = done.saturating_sub(self.base) as f64;
        let rate = moved / elapsed.as_secs_f64().max(1e-6);
        let pct = if self.total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / self.total as f64
        };
        let eta = if rate > 0.0 {
            let left = self.total.saturating_sub(done) as f64 / rate;
            format!("{:.0}s", left)
        } else {
            "--".into()
        };
        let width = 24usize;
        let filled = ((pct / 100.0) * width as f64) as usize;
        let bar: String = "#".repeat(filled.min(width)) + &"-".repeat(width - filled.min(width));
        let line = format!(
            "\r{} [{bar}] {:5.1}% {}/{} {}/s ETA {eta}\x1b[K",
            self.name,
            pct,
            format_size_human(done),
            format_size_human(self.total),
            format_size_human(rate as u64),
        );
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
        self.drawn = true;
    }

    fn finish(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(b"\r\x1b[K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names_and_slashes() {
        assert_eq!(base_name("a/b/c.txt").as_deref(), Some("c.txt"));
        assert_eq!(base_name("c.txt").as_deref(), Some("c.txt"));
        assert_eq!(base_name("dir/").as_deref(), Some("dir"));
        assert_eq!(base_name(""), None);
        assert_eq!(trim_trailing_slash("d/"), "d");
        assert_eq!(trim_trailing_slash("/"), "/");
    }

    #[test]
    fn mtime_is_formatted_in_utc() {
        assert_eq!(format_mtime(0), "1970-01-01 00:00");
        assert_eq!(format_mtime(1_700_000_000), "2023-11-14 22:13");
        assert_eq!(format_mtime(951_782_400), "2000-02-29 00:00");
    }

    #[test]
    fn summary_says_the_digest_was_checked() {
        let s = summary(1024 * 1024, Duration::from_secs(1));
        assert_eq!(s, "1048576 bytes in 1.00 s, 1.0 MiB/s, BLAKE3 verified");
    }
}
