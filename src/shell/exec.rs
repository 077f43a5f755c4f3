//! The executor: turns a parsed [`Command`] into calls on the network
//! [`Client`] or the local file system, and formats the results. All
//! user-visible output of commands is written here (stdout for results);
//! failures are returned as one-line messages for the runner to print.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fs;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::{Client, ClientError, Progress};
use crate::proto::error::{ErrorCode, RemoteError};
use crate::proto::limits::RESERVED_PREFIX;
use crate::proto::message::{Entry, EntryKind};

use super::batch::{Execute, Flow};
use super::command::{self, Command};
use super::complete::RemoteNames;
use super::cwd::{self, SharedCwd};
use super::glob::{self, check_server_name, has_wildcards};
use super::listing::{format_row, LsOptions, Row, View};
use super::render::{escape_for_terminal, format_size_human, quoted_name, subject, Style};

mod nav;

/// The connection, shared between the executor and remote-name completion
/// (which runs only while the shell waits for a line, never during a command).
pub type SharedClient = Rc<RefCell<Client>>;

/// Runs commands against one server connection.
pub struct Executor {
    client: SharedClient,
    out: Box<dyn Write>,
    style: Style,
    quiet: bool,
    /// Whether a progress bar can be drawn at all: stderr is a terminal
    /// and `-q` was not given. Decided once; `progress` cannot change it.
    progress_possible: bool,
    /// The `progress` command's switch (off from the start in batch mode).
    progress_on: bool,
    /// Where the failures inside a many-file command go, one line each.
    err: Box<dyn Write>,
    err_style: Style,
    /// Set by SIGINT while a transfer runs, when Ctrl-C may cancel it.
    interrupt: Option<Arc<AtomicBool>>,
    /// The user was told why the connection was lost; later failures on
    /// it just say it is closed.
    loss_told: Cell<bool>,
    /// `-p` of the `put` or `get` under way: keep times and modes.
    preserve: bool,
    /// The commands come from standard input (a pipe or `-b -`), so a
    /// local command run by `!` must not read it.
    commands_on_stdin: bool,
    /// Remote listings of the command under way, by directory, kept only
    /// for `get -p` (the modes of the files it fetches).
    listings: RefCell<HashMap<String, Vec<Entry>>>,
    /// The remote working directory, root-relative (`""`: the root);
    /// Tab completion reads it too.
    cwd: SharedCwd,
    /// The one before the last `cd`, for `cd -`.
    previous_cwd: Option<String>,
}

impl Executor {
    /// An executor writing results to `out`. The progress bar is possible
    /// only when stderr is a terminal and `quiet` is off.
    pub fn new(client: SharedClient, out: Box<dyn Write>, style: Style, quiet: bool) -> Executor {
        let progress_possible = !quiet && std::io::stderr().is_terminal();
        Executor {
            client,
            out,
            style,
            quiet,
            progress_possible,
            progress_on: true,
            err: Box::new(std::io::stderr()),
            err_style: Style::plain(),
            interrupt: None,
            loss_told: Cell::new(false),
            preserve: false,
            commands_on_stdin: false,
            listings: RefCell::new(HashMap::new()),
            cwd: SharedCwd::default(),
            previous_cwd: None,
        }
    }

    /// Remote names for Tab completion, relative to this executor's remote
    /// working directory.
    pub fn remote_names(&self) -> RemoteCompleter {
        RemoteCompleter {
            client: self.client.clone(),
            cwd: self.cwd.clone(),
            cache: HashMap::new(),
        }
    }

    /// The root-relative path the server is sent for the remote name
    /// `path` as typed (see [`cwd::resolve`]).
    fn wire(&self, path: &str) -> String {
        cwd::resolve(&self.cwd.borrow(), path)
    }

    /// A root-relative path as the user sees it (see [`cwd::shown`]).
    fn shown(&self, resolved: &str) -> String {
        cwd::shown(&self.cwd.borrow(), resolved)
    }

    /// Where failures inside a many-file command are reported (default:
    /// stderr, uncoloured), and the style of their `error:` prefix.
    pub fn set_errors(&mut self, err: Box<dyn Write>, style: Style) {
        self.err = err;
        self.err_style = style;
    }

    /// Batch mode: the progress bar starts off (as in `sftp -b`).
    pub fn set_batch(&mut self, batch: bool) {
        self.progress_on = !batch;
    }

    /// The commands are read from standard input and it is no terminal
    /// (piped input, `-b -`): `!COMMAND` then gets an empty input instead
    /// of the commands that follow.
    pub fn set_commands_on_stdin(&mut self, on: bool) {
        self.commands_on_stdin = on;
    }

    /// Interactive shell: while a command runs, a first Ctrl-C (SIGINT:
    /// the line editor reads it as a key only at the prompt) cancels the
    /// transfer under way and the shell goes on; a second one before the
    /// command ends leaves `ftx` as Ctrl-C normally does, a way out of a
    /// server that stopped answering.
    pub fn set_interruptible(&mut self, on: bool) {
        self.interrupt = None;
        if !on {
            return;
        }
        let flag = Arc::new(AtomicBool::new(false));
        // Order matters: the default action must see the flag as it was
        // before this signal set it.
        let sigint = signal_hook::consts::SIGINT;
        let armed = signal_hook::flag::register_conditional_default(sigint, Arc::clone(&flag))
            .and_then(|_| signal_hook::flag::register(sigint, Arc::clone(&flag)));
        if armed.is_ok() {
            self.interrupt = Some(flag);
        }
    }

    /// Whether Ctrl-C was pressed during the current command.
    fn interrupted(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// The progress display for one transfer of `name`.
    fn transfer_bar(&self, name: &str) -> TransferBar {
        TransferBar::new(
            self.progress_possible && self.progress_on,
            self.err_style.is_coloured(),
            name,
            self.interrupt.clone(),
        )
    }

    /// Reports one failure of a many-file command and goes on.
    /// One `error:` line of a many-file command. Its text may carry a
    /// server's words: escaped here, whatever built it (escaping already
    /// escaped text changes nothing), as the command loop does for the
    /// lines it prints.
    fn report(&mut self, msg: &str) {
        let msg = escape_for_terminal(msg);
        let _ = writeln!(self.err, "{} {msg}", self.err_style.error_prefix());
        let _ = self.err.flush();
    }

    fn warn(&mut self, msg: &str) {
        let msg = escape_for_terminal(msg);
        let _ = writeln!(self.err, "{} {msg}", self.err_style.warning_prefix());
        let _ = self.err.flush();
    }

    fn say(&mut self, line: &str) -> Result<(), String> {
        writeln!(self.out, "{line}").map_err(|e| format!("cannot write output: {e}"))
    }

    /// Uploads the file `local` to `dest` (into a directory under its
    /// base name, or as an exact name).
    fn put_one(
        &mut self,
        force: bool,
        resume: bool,
        local: &str,
        dest: &Dest,
    ) -> Result<(), String> {
        let cmd = if resume { "reput" } else { "put" };
        let remote = match dest {
            Dest::As(name) => name.clone(),
            Dest::Into(dir) => {
                let name = base_name(local).ok_or_else(|| no_file_name(cmd, local))?;
                glob::join(dir, &name)
            }
        };
        self.put(force, resume, local, &remote)
    }

    /// Uploads the file `local` as the remote name `remote`.
    fn put(&mut self, force: bool, resume: bool, local: &str, remote: &str) -> Result<(), String> {
        let cmd = if resume { "reput" } else { "put" };
        let remote = remote.to_owned();
        let wire = self.wire(&remote);
        let mut bar = self.transfer_bar(&remote);
        let r = self
            .client
            .borrow_mut()
            .put(Path::new(local), &wire, force, resume, &mut bar);
        match r {
            Ok(o) => {
                if o.partial > 0 {
                    note(&format!(
                        "an interrupted upload of '{}' ({} bytes) is still on the server; 'reput' can continue it",
                        escape_for_terminal(&remote),
                        o.partial
                    ));
                }
                let kept = self.keep_remote_attrs(resume, local, &o.stored);
                if self.quiet {
                    return kept;
                }
                let how = resume_note(resume, o.resumed_from, o.restarted, "the server's");
                let line = format!(
                    "uploaded '{}' as '{}' ({how}{})",
                    escape_for_terminal(local),
                    escape_for_terminal(&self.shown(&o.stored)),
                    summary(o.size, o.elapsed)
                );
                let line = self.style.success(&line);
                self.say(&line)?;
                kept
            }
            Err(e) => {
                let hint = self.resume_hint(&e, "reput");
                Err(self.describe(cmd, local, &remote, &e) + &hint)
            }
        }
    }

    /// Downloads the remote file `remote` to `dest` (into a local
    /// directory under its base name, or as an exact name).
    fn get_one(
        &mut self,
        force: bool,
        resume: bool,
        remote: &str,
        dest: &Dest,
    ) -> Result<(), String> {
        let cmd = if resume { "reget" } else { "get" };
        let name = base_name(remote).ok_or_else(|| no_file_name(cmd, remote))?;
        let target = PathBuf::from(dest.for_name(&name));
        self.get(force, resume, remote, &target)
    }

    /// Downloads the remote file `remote` as the local path `target`.
    fn get(
        &mut self,
        force: bool,
        resume: bool,
        remote: &str,
        target: &Path,
    ) -> Result<(), String> {
        let cmd = if resume { "reget" } else { "get" };
        if let Some(why) = missing_local_parent(target) {
            let shown = target.to_string_lossy().into_owned();
            return Err(format!("{cmd}: {}: {why}", quoted_name(&shown)));
        }
        let wire = self.wire(remote);
        if wire.is_empty() {
            // `get ..` at the top: the root, a directory like any other.
            let e = ClientError::Remote(RemoteError::new(ErrorCode::IsDirectory, ""));
            return Err(self.describe(cmd, remote, remote, &e));
        }
        let mut bar = self.transfer_bar(remote);
        let result = self
            .client
            .borrow_mut()
            .get(&wire, target, force, resume, &mut bar);
        match result {
            Ok(o) => {
                if o.partial > 0 {
                    note(&format!(
                        "an interrupted download to '{}' ({} bytes) is still there; 'reget' can continue it",
                        escape_for_terminal(&target.to_string_lossy()),
                        o.partial
                    ));
                }
                let kept = self.keep_local_attrs(resume, remote, &o.path, o.mtime);
                if self.quiet {
                    return kept;
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
                self.say(&line)?;
                kept
            }
            Err(e) => {
                let hint = if !resume && e.code() == Some(ErrorCode::IsDirectory) {
                    " (use get -r)".to_owned()
                } else {
                    self.resume_hint(&e, "reget")
                };
                Err(self.describe(cmd, remote, remote, &e) + &hint)
            }
        }
    }

    /// `('reput' can continue it)` after an interruption that left a part.
    fn resume_hint(&self, e: &ClientError, cmd: &str) -> String {
        if matches!(e, ClientError::NotConnected(_)) {
            // Nothing was sent: the hint would be about an older transfer.
            return String::new();
        }
        let interrupted = e.is_fatal()
            || matches!(e, ClientError::Cancelled)
            || matches!(e.code(), Some(ErrorCode::Cancelled | ErrorCode::Timeout));
        if interrupted && self.client.borrow().last_transfer_resumable() {
            format!(" ('{cmd}' can continue it)")
        } else {
            String::new()
        }
    }

    /// `lls [-l] [-a] [PATH]`: a local directory (or one file) in `ls`'s
    /// format, names sorted, dot files only with `-a`.
    fn lls(&mut self, long: bool, all: bool, path: Option<&str>) -> Result<(), String> {
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
    fn shell(&mut self, command: &str) -> Result<(), String> {
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

/// SIGINT and SIGQUIT ignored by ftx while a local command runs (the
/// terminal sends them to both); the previous handlers come back on drop.
struct IgnoreInterrupts {
    saved: Vec<(libc::c_int, libc::sigaction)>,
}

impl IgnoreInterrupts {
    fn new() -> IgnoreInterrupts {
        let mut saved = Vec::new();
        for sig in [libc::SIGINT, libc::SIGQUIT] {
            // SAFETY: sigaction with a zeroed (SIG_DFL-like) struct whose
            // handler is SIG_IGN and an empty mask; `old` is written by the
            // kernel and only handed back to sigaction.
            unsafe {
                let mut ignore: libc::sigaction = std::mem::zeroed();
                ignore.sa_sigaction = libc::SIG_IGN;
                libc::sigemptyset(&mut ignore.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &ignore, &mut old) == 0 {
                    saved.push((sig, old));
                }
            }
        }
        IgnoreInterrupts { saved }
    }
}

impl Drop for IgnoreInterrupts {
    fn drop(&mut self) {
        for (sig, old) in &self.saved {
            // SAFETY: restores exactly what sigaction returned for `sig`.
            unsafe {
                libc::sigaction(*sig, old, std::ptr::null_mut());
            }
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
fn lmkdir(path: &str) -> Result<(), String> {
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
fn expand_home(cmd: &str, path: &str) -> Result<String, String> {
    with_home(path, &|| home(cmd), &str::to_owned)
}

/// [`expand_home`] for a local pattern: the home directory goes in with
/// its wildcard characters escaped, so only the rest may match.
fn expand_home_pattern(cmd: &str, pattern: &str) -> Result<String, String> {
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

impl Execute for Executor {
    fn execute(&mut self, cmd: Command) -> Result<Flow, String> {
        let _ctrl_c = CtrlC::arm(self.interrupt.clone());
        self.preserve = false;
        self.listings.borrow_mut().clear();
        match cmd {
            Command::Put {
                force,
                recursive,
                preserve,
                local,
                remote,
            } => {
                self.preserve_for("put", preserve)?;
                let local: Vec<String> = local
                    .iter()
                    .map(|l| expand_home_pattern("put", l))
                    .collect::<Result<_, _>>()?;
                self.put_many(force, recursive, &local, remote.as_deref())?
            }
            Command::Get {
                force,
                recursive,
                preserve,
                remote,
                local,
            } => {
                self.preserve_for("get", preserve)?;
                let local = local.map(|l| expand_home("get", &l)).transpose()?;
                self.get_many(force, recursive, &remote, local.as_deref())?
            }
            Command::Reput { local, remote } => {
                let local = expand_home("reput", &local)?;
                let dest = match remote {
                    Some(r) => self.remote_dest("reput", &r, false)?,
                    None => Dest::top(),
                };
                self.put_one(false, true, &local, &dest)?
            }
            Command::Reget { remote, local } => {
                let dest = match local {
                    Some(l) => local_dest("reget", &expand_home("reget", &l)?, false)?,
                    None => Dest::top(),
                };
                self.get_one(false, true, &remote, &dest)?
            }
            Command::Cd { path } => self.cd(path.as_deref())?,
            Command::Pwd => {
                let line = format!(
                    "Remote working directory: {}",
                    escape_for_terminal(&cwd::absolute(&self.cwd.borrow()))
                );
                self.say(&line)?;
            }
            Command::Ls { options, path } => self.ls(&options, path.as_deref())?,
            Command::Mkdir { parents, path } => self.mkdir(parents, &path)?,
            Command::Rmdir { path } => self.rmdir(&path)?,
            Command::Rm { paths } => self.rm(&paths)?,
            Command::Rename { from, to } => {
                if cwd::has_no_name(&from) {
                    return Err(no_file_name("rename", &from));
                }
                let (old, new) = (self.wire(&from), self.wire(&to));
                if new.is_empty() {
                    // The root, which is there (rename never replaces).
                    let e = ClientError::Remote(RemoteError::new(ErrorCode::Exists, ""));
                    return Err(self.describe("rename", &to, &to, &e));
                }
                self.client.borrow_mut().rename(&old, &new).map_err(|e| {
                    let name = if rename_blames_new(&old, &new, &e) {
                        &to
                    } else {
                        &from
                    };
                    self.describe("rename", name, name, &e)
                })?
            }
            Command::Chmod { mode, paths } => self.chmod(mode, &paths)?,
            Command::Df { human, path } => self.df(human, path.as_deref())?,
            Command::Lls { long, all, path } => {
                let path = path.map(|p| expand_home("lls", &p)).transpose()?;
                self.lls(long, all, path.as_deref())?
            }
            Command::Lcd { path } => {
                let path = expand_home("lcd", &path)?;
                std::env::set_current_dir(&path)
                    .map_err(|e| format!("{}: {}", subject("lcd", &path), io_reason(&e)))?
            }
            Command::Lmkdir { path } => lmkdir(&expand_home("lmkdir", &path)?)?,
            Command::Shell { command } => self.shell(&command)?,
            Command::Version => {
                let text = {
                    let client = self.client.borrow();
                    format!(
                        "ftx {}\nserver: {}\nprotocol version {}",
                        env!("CARGO_PKG_VERSION"),
                        escape_for_terminal(client.server_name()),
                        client.protocol_version()
                    )
                };
                self.say(&text)?;
            }
            Command::Lpwd => {
                let cwd =
                    std::env::current_dir().map_err(|e| format!("lpwd: {}", io_reason(&e)))?;
                let line = format!("Local directory: {}", cwd.display());
                self.say(&line)?;
            }
            Command::Progress => {
                self.progress_on = !self.progress_on;
                let line = if !self.progress_on {
                    "Progress meter disabled"
                } else if self.progress_possible {
                    "Progress meter enabled"
                } else {
                    "Progress meter enabled (shown only when standard error is a terminal)"
                };
                self.say(line)?;
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
/// relative to the remote working directory, cached briefly so repeated
/// Tabs do not ask the server again. Made by [`Executor::remote_names`].
pub struct RemoteCompleter {
    client: SharedClient,
    cwd: SharedCwd,
    /// Listings by root-relative directory.
    cache: HashMap<String, (Instant, Vec<(String, bool)>)>,
}

impl RemoteNames for RemoteCompleter {
    fn list(&mut self, dir: &str) -> Vec<(String, bool)> {
        let dir = cwd::resolve(&self.cwd.borrow(), dir);
        let dir = dir.as_str();
        if let Some((at, names)) = self.cache.get(dir) {
            if at.elapsed() < COMPLETION_CACHE_TTL {
                return names.clone();
            }
        }
        let Ok(mut client) = self.client.try_borrow_mut() else {
            return Vec::new();
        };
        let Ok(entries) = client.list(dir) else {
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
/// True when a refused `rename OLD NEW` is about NEW: it exists, it is the
/// invalid one, or the server's text quotes it or its parent (missing, not
/// a directory) and not OLD's; the error then names NEW, not OLD.
fn rename_blames_new(old: &str, new: &str, e: &ClientError) -> bool {
    let ClientError::Remote(r) = e else {
        return false;
    };
    match r.code {
        ErrorCode::Exists => true,
        ErrorCode::InvalidName => crate::proto::path::RemotePath::parse_file(old).is_ok(),
        _ => {
            // The store quotes the path (or the parent) it could not use.
            let quoted = || r.message.split('\'').skip(1).step_by(2);
            let on = |q: &str, p: &str| p == q || p.starts_with(&format!("{q}/"));
            quoted().any(|q| on(q, new)) && !quoted().any(|q| on(q, old))
        }
    }
}

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

/// One failure as `CMD: 'NAME' CAUSE`, naming whose side failed (the name
/// left out when empty, as for `ls` of the root). A lost connection is
/// `CMD: connection lost: REASON`, without a name: see [`loss`].
fn describe(cmd: &str, local: &str, remote: &str, e: &ClientError, told: &Cell<bool>) -> String {
    match e {
        ClientError::Lost(_) | ClientError::NotConnected(_) => format!("{cmd}: {}", loss(e, told)),
        ClientError::Remote(r) if is_name_error(r.code) && remote.is_empty() => {
            format!("{cmd}: {} on server", r.code)
        }
        ClientError::Remote(r) if is_name_error(r.code) => {
            format!("{} {} on server", subject(cmd, remote), r.code)
        }
        ClientError::Remote(r) => {
            format!("{}: {}", subject(cmd, remote), server_detail(r, remote))
        }
        ClientError::Cancelled => {
            let name = if cmd == "put" { local } else { remote };
            format!("{}: cancelled", subject(cmd, name))
        }
        other => format!("{cmd}: {other}"),
    }
}

/// A listing failure while expanding or walking: `'dir': cause` (`/` for
/// the root); a lost connection as [`describe`] says it.
fn describe_dir(dir: &str, e: &ClientError, told: &Cell<bool>) -> String {
    let shown = if dir.is_empty() { "/" } else { dir };
    match e {
        ClientError::Lost(_) | ClientError::NotConnected(_) => loss(e, told),
        ClientError::Remote(r) if is_name_error(r.code) => {
            format!("{} {} on server", quoted_name(shown), r.code)
        }
        ClientError::Remote(r) => format!("{}: {}", quoted_name(shown), server_detail(r, dir)),
        other => format!("{}: {other}", quoted_name(shown)),
    }
}

/// What follows `CMD: 'NAME': ` for a server's refusal: the cause in
/// plain words, then the server's detail when it adds something. ftxd's
/// detail quotes the path itself (`'secret': permission denied`), so the
/// name is left out when it is the one already shown (the root is `'/'`
/// there), and a detail that says no more than the cause is dropped: the
/// name and the cause each appear once. A detail about another name (a
/// parent) is kept whole; one that already says the cause in its own words
/// ("the server is read-only") stands alone.
fn server_detail(r: &crate::proto::error::RemoteError, name: &str) -> String {
    let cause = r.code.describe();
    let name = name.trim_end_matches('/');
    let shown = if name.is_empty() { "/" } else { name };
    let mut detail = r.message.trim();
    // The server quotes the path it could not use: the name as resolved
    // from the working directory (`docs/secret` for `secret`), or the root
    // it had to read first. The line names it already.
    let same = |q: &str| {
        q == shown
            || q == "/"
            || q.ends_with(&format!("/{shown}"))
            || shown.ends_with(&format!("/{q}"))
    };
    if let Some((_, rest)) = detail
        .strip_prefix('\'')
        .and_then(|d| d.split_once('\''))
        .filter(|(q, _)| same(q))
    {
        detail = rest.strip_prefix(':').unwrap_or(rest).trim_start();
    }
    if detail.is_empty() || detail == cause {
        cause.to_owned()
    } else if detail.contains(cause) {
        escape_for_terminal(detail)
    } else {
        format!("{cause}: {}", escape_for_terminal(detail))
    }
}

/// What to say about a lost connection: `connection lost: REASON` the
/// first time the user hears of it (`told` not yet set, even when an
/// earlier call such as a Tab completion found out), then `not connected
/// (connection lost)`. The reason may carry the server's text: escaped.
fn loss(e: &ClientError, told: &Cell<bool>) -> String {
    let text = match e {
        ClientError::Lost(why) | ClientError::NotConnected(why) if !told.replace(true) => {
            ClientError::Lost(why.clone()).to_string()
        }
        other => other.to_string(),
    };
    escape_for_terminal(&text)
}

/// `CMD: no file name given`, or `CMD: 'NAME' has no file name`.
fn no_file_name(cmd: &str, name: &str) -> String {
    if name.is_empty() {
        format!("{cmd}: no file name given")
    } else {
        format!("{cmd}: {} has no file name", quoted_name(name))
    }
}

impl Executor {
    /// [`describe`], telling of a lost connection once.
    fn describe(&self, cmd: &str, local: &str, remote: &str, e: &ClientError) -> String {
        describe(cmd, local, remote, e, &self.loss_told)
    }

    /// [`describe_dir`], telling of a lost connection once; `""` (the
    /// remote working directory) is shown from the root.
    fn describe_dir(&self, dir: &str, e: &ClientError) -> String {
        if dir.is_empty() {
            let shown = cwd::absolute(&self.cwd.borrow());
            return describe_dir(&shown, e, &self.loss_told);
        }
        describe_dir(dir, e, &self.loss_told)
    }

    /// Whether the connection is known to be lost.
    fn connection_lost(&self) -> bool {
        self.client.borrow().lost().is_some()
    }

    /// A failure that ends a many-file command at once (a lost connection):
    /// the failure held back as the command's own error is reported first,
    /// then `msg` becomes the command's error.
    fn abort(&mut self, tally: &mut Tally, msg: String) -> String {
        if let Some(held) = tally.held.take() {
            self.report(&held);
        }
        msg
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

/// How often the progress bar may redraw, per second.
const PROGRESS_HZ: u8 = 10;
/// A transfer shorter than this shows no progress at all.
const PROGRESS_DELAY: Duration = Duration::from_millis(500);

/// The progress of one transfer as an `indicatif` bar on stderr: name,
/// bar, bytes, rate and ETA. The bar exists (hidden, so its rate estimate
/// sees every byte) from the start of the transfer and is drawn only once
/// the transfer has lasted [`PROGRESS_DELAY`], so quick ones leave no
/// trace. Also carries the Ctrl-C flag the client polls.
struct TransferBar {
    enabled: bool,
    coloured: bool,
    name: String,
    bar: Option<ProgressBar>,
    started: Instant,
    shown: bool,
    interrupt: Option<Arc<AtomicBool>>,
}

impl TransferBar {
    fn new(
        enabled: bool,
        coloured: bool,
        name: &str,
        interrupt: Option<Arc<AtomicBool>>,
    ) -> TransferBar {
        TransferBar {
            enabled,
            coloured,
            name: escape_for_terminal(name),
            bar: None,
            started: Instant::now(),
            shown: false,
            interrupt,
        }
    }

    fn style(&self) -> ProgressStyle {
        let template = if self.coloured {
            "{msg:.bold} [{bar:24.green/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
        } else {
            "{msg} [{bar:24}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
        };
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }
}

impl Progress for TransferBar {
    fn start(&mut self, total: u64, done: u64) {
        self.started = Instant::now();
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
            .with_style(self.style())
            .with_message(self.name.clone())
            .with_position(done);
        bar.reset_eta();
        self.bar = Some(bar);
    }

    fn advance(&mut self, done: u64) {
        let Some(bar) = &self.bar else {
            return;
        };
        bar.set_position(done);
        if !self.shown && self.started.elapsed() >= PROGRESS_DELAY {
            self.shown = true;
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(PROGRESS_HZ));
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn cancelled(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }
}

/// Clears the Ctrl-C flag when a command starts and when it ends, so a
/// Ctrl-C counts for the command it was pressed during only.
struct CtrlC(Option<Arc<AtomicBool>>);

impl CtrlC {
    fn arm(flag: Option<Arc<AtomicBool>>) -> CtrlC {
        if let Some(f) = &flag {
            f.store(false, Ordering::Relaxed);
        }
        CtrlC(flag)
    }
}

impl Drop for CtrlC {
    fn drop(&mut self) {
        if let Some(f) = &self.0 {
            f.store(false, Ordering::Relaxed);
        }
    }
}

/// Deepest directory tree `put -r` / `get -r` walk into; a guard against a
/// server (or a file system) that presents an endless tree.
const MAX_TREE_DEPTH: usize = 256;

/// Counts the files of a many-file command and its failures, which are
/// reported as they happen; the command fails at the end if any did. When
/// the command touched one file only, its failure is held back and becomes
/// the command's own error, so `get 'a*'` fails in one line like `get a`.
#[derive(Default)]
struct Tally {
    items: usize,
    failed: usize,
    held: Option<String>,
}

impl Tally {
    fn end(self, cmd: &str) -> Result<(), String> {
        match (self.failed, self.held) {
            (0, _) => Ok(()),
            (_, Some(msg)) => Err(msg),
            (failed, None) => Err(format!("{cmd}: {failed} of {} files failed", self.items)),
        }
    }
}

impl Executor {
    /// A file (or a name that could not become one) is about to be handled.
    fn begin_item(&mut self, tally: &mut Tally) {
        tally.items += 1;
        if tally.items == 2 {
            if let Some(msg) = tally.held.take() {
                self.report(&msg);
            }
        }
    }

    /// The current item failed: report it, or hold it while it is the only one.
    fn fail_item(&mut self, tally: &mut Tally, msg: String) {
        tally.failed += 1;
        if tally.items <= 1 {
            tally.held = Some(msg);
        } else {
            self.report(&msg);
        }
    }

    fn fail(&mut self, tally: &mut Tally, msg: &str) {
        self.begin_item(tally);
        self.fail_item(tally, msg.to_owned());
    }

    /// `put` with patterns, several names or `-r`. One plain name keeps the
    /// single-file path ([`Executor::put`]) and its exact messages.
    fn put_many(
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
                return self.put_one(force, false, &glob::unescape(one), &dest);
            }
        }
        let mut tally = Tally::default();
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
                        self.put_tree(force, &src, &dest, &mut tally)?;
                    } else {
                        let msg =
                            format!("put: {}: is a directory (use put -r)", quoted_name(&src));
                        self.fail(&mut tally, &msg);
                    }
                } else {
                    self.put_counted(force, &src, &dest, &mut tally)?;
                }
            }
        }
        tally.end("put")
    }

    /// One file of a many-file `put`; `Err` only when Ctrl-C cancelled it,
    /// which ends the whole command.
    fn put_counted(
        &mut self,
        force: bool,
        local: &str,
        remote: &str,
        tally: &mut Tally,
    ) -> Result<(), String> {
        self.begin_item(tally);
        match self.put(force, false, local, remote) {
            Ok(()) => Ok(()),
            Err(msg) if self.interrupted() => Err(msg),
            // Every other file would fail the same way.
            Err(msg) if self.connection_lost() => Err(self.abort(tally, msg)),
            Err(msg) => {
                self.fail_item(tally, msg);
                Ok(())
            }
        }
    }

    /// Uploads the tree under the local directory `src` as the remote
    /// directory `dest`: directories are created (one that exists is used
    /// as is), files are put one by one. Symbolic links to files are
    /// followed; links to directories are skipped (no loops).
    fn put_tree(
        &mut self,
        force: bool,
        src: &str,
        dest: &str,
        tally: &mut Tally,
    ) -> Result<(), String> {
        // With -p: each directory made, for its time and mode once
        // everything in it is there.
        let mut dirs: Vec<(PathBuf, String)> = Vec::new();
        let mut stack = vec![(PathBuf::from(src), dest.to_owned(), 0usize)];
        while let Some((dir, rdir, depth)) = stack.pop() {
            if self.interrupted() {
                return Err(format!(
                    "put: {}: cancelled",
                    quoted_name(&dir.to_string_lossy())
                ));
            }
            let wire = self.wire(&rdir);
            // The root always exists (and is no name to create).
            let made = if wire.is_empty() {
                Ok(())
            } else {
                self.client.borrow_mut().mkdir(&wire)
            };
            if let Err(e) = made {
                if e.is_fatal() {
                    let msg = self.describe("put", &rdir, &rdir, &e);
                    return Err(self.abort(tally, msg));
                }
                if e.code() != Some(ErrorCode::Exists) {
                    let msg = self.describe("put", &rdir, &rdir, &e);
                    self.fail(tally, &msg);
                    continue;
                }
            }
            if self.preserve {
                dirs.push((dir.clone(), rdir.clone()));
            }
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
                            subdirs.push((path, remote, depth + 1));
                        }
                    }
                    _ => self.put_counted(force, &shown, &remote, tally)?,
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        // Deepest first: setting a directory's time changes no parent's.
        for (dir, rdir) in dirs.into_iter().rev() {
            let shown = dir.to_string_lossy().into_owned();
            if let Err(msg) = self.keep_remote_attrs(false, &shown, &rdir) {
                if self.connection_lost() {
                    return Err(self.abort(tally, msg));
                }
                self.fail(tally, &msg);
            }
        }
        Ok(())
    }

    /// `get` with patterns, several names or `-r`. One plain name keeps the
    /// single-file path ([`Executor::get`]) and its exact messages.
    fn get_many(
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
                return self.get_one(force, false, &glob::unescape(one), &dest);
            }
        }
        let mut tally = Tally::default();
        for word in remotes {
            if cwd::has_no_name(word) {
                // `get -r .`, `get -r ..`, `get -r /`: what is in that
                // directory, into the target, as sftp does.
                self.begin_item(&mut tally);
                if recursive {
                    let local = PathBuf::from(dest.itself());
                    self.get_tree(force, word, &local, &mut tally)?;
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
                        self.get_tree(force, &m.path, &dest, &mut tally)?;
                    } else {
                        let msg =
                            format!("get: {}: is a directory (use get -r)", quoted_name(&m.path));
                        self.fail(&mut tally, &msg);
                    }
                } else {
                    self.get_counted(force, &m.path, &dest, &mut tally)?;
                }
            }
        }
        tally.end("get")
    }

    /// One file of a many-file `get`; `Err` only when Ctrl-C cancelled it.
    fn get_counted(
        &mut self,
        force: bool,
        remote: &str,
        local: &Path,
        tally: &mut Tally,
    ) -> Result<(), String> {
        self.begin_item(tally);
        match self.get(force, false, remote, local) {
            Ok(()) => Ok(()),
            Err(msg) if self.interrupted() => Err(msg),
            // Every other file would fail the same way.
            Err(msg) if self.connection_lost() => Err(self.abort(tally, msg)),
            Err(msg) => {
                self.fail_item(tally, msg);
                Ok(())
            }
        }
    }

    /// Expands a remote pattern (or plain name, to learn whether it is a
    /// directory) against the server's listings. A pattern that matches
    /// nothing is shown as written, its literal characters escaped. The
    /// matches' paths are as typed (relative to the remote working
    /// directory, or from `/`).
    fn expand_remote(&mut self, word: &str) -> Result<Vec<glob::Match>, String> {
        let client = self.client.clone();
        let mut list = |dir: &str| -> Result<Vec<(String, bool)>, String> {
            let entries = client
                .borrow_mut()
                .list(&self.wire(dir))
                .map_err(|e| self.describe_dir(dir, &e))?;
            if self.preserve {
                self.listings
                    .borrow_mut()
                    .insert(self.wire(dir), entries.clone());
            }
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

    /// Downloads the remote directory `src` as the local directory `dest`,
    /// creating directories (one that exists is used as is). Every name
    /// the server lists is checked before it becomes a local path.
    fn get_tree(
        &mut self,
        force: bool,
        src: &str,
        dest: &Path,
        tally: &mut Tally,
    ) -> Result<(), String> {
        if let Some(why) = missing_local_parent(dest) {
            // As sftp, the tree's directory is made, never its parents.
            let shown = dest.to_string_lossy().into_owned();
            self.fail(tally, &format!("get: {}: {why}", quoted_name(&shown)));
            return Ok(());
        }
        // With -p: each directory made, with its remote entry, for its
        // time and mode once everything in it is there.
        let mut made: Vec<(PathBuf, Option<Entry>)> = Vec::new();
        let top = if self.preserve {
            self.cached_entry(src).ok().flatten()
        } else {
            None
        };
        let mut stack = vec![(src.to_owned(), dest.to_path_buf(), 0usize, top)];
        while let Some((rdir, ldir, depth, entry)) = stack.pop() {
            if self.interrupted() {
                return Err(format!("get: {}: cancelled", quoted_name(&rdir)));
            }
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
                made.push((ldir.clone(), entry));
            }
            let listed = self.client.borrow_mut().list(&self.wire(&rdir));
            let mut entries = match listed {
                Ok(v) => v,
                Err(e) => {
                    let msg = format!("get: {}", self.describe_dir(&rdir, &e));
                    if e.is_fatal() {
                        return Err(self.abort(tally, msg));
                    }
                    self.fail(tally, &msg);
                    continue;
                }
            };
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            if self.preserve {
                self.listings
                    .borrow_mut()
                    .insert(rdir.clone(), entries.clone());
            }
            let mut subdirs = Vec::new();
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
                        subdirs.push((remote, local, depth + 1, Some(e)));
                    }
                } else {
                    self.get_counted(force, &remote, &local, tally)?;
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        // Deepest first: setting a directory's time changes no parent's.
        for (ldir, entry) in made.into_iter().rev() {
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
                self.fail(tally, &msg);
            }
        }
        Ok(())
    }
}

impl Executor {
    /// `chmod MODE PATH...`: each name, or each match of a pattern, is
    /// given the permission bits `mode`; a failed one is reported and the
    /// others go on. A server without attributes is told nothing.
    fn chmod(&mut self, mode: u16, paths: &[String]) -> Result<(), String> {
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

impl Executor {
    /// `df [-h] [PATH]`: the server's file system holding PATH (`.` and
    /// `/` are the root, as for a TARGET).
    fn df(&mut self, human: bool, path: Option<&str>) -> Result<(), String> {
        let shown = path.unwrap_or("");
        // Relative to the working directory; `/` is the root.
        let path = self.wire(shown);
        let space = self.client.borrow_mut().space(&path);
        let (total, avail) = space.map_err(|e| self.describe("df", shown, shown, &e))?;
        let text = df_table(total, avail, human);
        self.out
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write output: {e}"))
    }
}

/// `df`'s two lines, laid out as sftp's (whose `(root)` column, the space
/// only root may use, ftxd does not report): size, used, available and
/// `%Capacity` (used of size, rounded down). In KiB, or human sizes.
fn df_table(total: u64, avail: u64, human: bool) -> String {
    let used = total.saturating_sub(avail);
    let capacity = match u128::from(used) * 100 {
        _ if total == 0 => "-".to_owned(),
        n => format!("{}%", n / u128::from(total)),
    };
    let (size, used, avail) = if human {
        (
            format_size_human(total),
            format_size_human(used),
            format_size_human(avail.min(total)),
        )
    } else {
        let kib = |n: u64| (n / 1024).to_string();
        (kib(total), kib(used), kib(avail.min(total)))
    };
    let w = if human { 8 } else { 12 };
    format!(
        "{:>w$} {:>w$} {:>w$} {:>12}\n{size:>w$} {used:>w$} {avail:>w$} {capacity:>12}\n",
        "Size", "Used", "Avail", "%Capacity"
    )
}

impl Executor {
    /// Takes `-p` for the command under way; the server must serve
    /// attributes (it keeps modes and times for `put -p`, lists modes for
    /// `get -p`), else the command fails before anything moves.
    fn preserve_for(&mut self, cmd: &str, preserve: bool) -> Result<(), String> {
        if preserve && !self.client.borrow().has_attrs() {
            return Err(format!("{cmd}: -p: {}", ClientError::Unsupported));
        }
        self.preserve = preserve;
        Ok(())
    }

    /// `put -p`: gives the remote `stored` the modification time and
    /// permission bits (`& 0o777`) of the local `local`, a file or a
    /// directory. Nothing without `-p` or on `reput`.
    fn keep_remote_attrs(&mut self, resume: bool, local: &str, stored: &str) -> Result<(), String> {
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
    fn keep_local_attrs(
        &mut self,
        resume: bool,
        remote: &str,
        path: &Path,
        mtime: i64,
    ) -> Result<(), String> {
        if !self.preserve || resume {
            return Ok(());
        }
        let shown = path.strip_prefix("./").unwrap_or(path);
        let not_kept = |why: String| {
            format!(
                "get: {}: time and mode not kept: {why}",
                quoted_name(&shown.to_string_lossy())
            )
        };
        // The time comes with the download; the mode needs the listing.
        let (mode, missing) = match self.cached_entry(remote) {
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
    fn cached_entry(&mut self, path: &str) -> Result<Option<Entry>, ClientError> {
        let resolved = self.wire(path);
        let path = resolved.trim_end_matches('/');
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        if !self.listings.borrow().contains_key(dir) {
            let entries = self.client.borrow_mut().list(dir)?;
            self.listings.borrow_mut().insert(dir.to_owned(), entries);
        }
        Ok(self
            .listings
            .borrow()
            .get(dir)
            .and_then(|v| v.iter().find(|e| e.name == name).cloned()))
    }
}

/// Sets a local file's or directory's modification time (Unix seconds)
/// and then, when known, its permission bits (`& 0o777`: never setuid
/// from a server); the time first, so a mode without write access does
/// not stand in the way. `Err` says why in plain words.
fn set_local_attrs(path: &Path, mtime: i64, mode: Option<u16>) -> Result<(), String> {
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

/// Where the sources of a transfer go: into a directory, each under its
/// base name, or (one source) as exactly one name. As in sftp, a TARGET
/// that is an existing directory means into it; one ending in `/` must be
/// one; with patterns TARGET is always a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dest {
    /// Into this directory (`""`: the server's root, or the current
    /// local directory).
    Into(String),
    /// Exactly this name.
    As(String),
}

impl Dest {
    /// No TARGET: each source under its base name at the top.
    fn top() -> Dest {
        Dest::Into(String::new())
    }

    /// Where the source called `name` goes.
    fn for_name(&self, name: &str) -> String {
        match self {
            Dest::Into(dir) => glob::join(dir, name),
            Dest::As(exact) => exact.clone(),
        }
    }

    /// The target itself, for a source that has no name of its own (`.`):
    /// what is in it goes there.
    fn itself(&self) -> String {
        match self {
            Dest::Into(dir) if dir.is_empty() => ".".to_owned(),
            Dest::Into(dir) | Dest::As(dir) => dir.clone(),
        }
    }
}

/// [`Dest`] for a local TARGET (`get`, `reget`): into it when it is a
/// directory here; when it ends in `/` or the sources are patterns
/// (`must_be_dir`) it has to be one, else nothing is fetched.
fn local_dest(cmd: &str, target: &str, must_be_dir: bool) -> Result<Dest, String> {
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
    fn remote_dest(&mut self, cmd: &str, target: &str, must_be_dir: bool) -> Result<Dest, String> {
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
    fn remote_is_dir(&mut self, path: &str) -> Result<(), ClientError> {
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

/// Why a download cannot be stored as `target` because of the local
/// directory it goes in: `local directory 'DIR' not found` or `'DIR' is not
/// a local directory`; `None` when that directory is there (the current
/// one always is).
fn missing_local_parent(target: &Path) -> Option<String> {
    let parent = target.parent().filter(|p| !p.as_os_str().is_empty())?;
    let shown = quoted_name(&parent.to_string_lossy());
    match fs::metadata(parent) {
        Ok(m) if m.is_dir() => None,
        Ok(_) => Some(format!("{shown} is not a local directory")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("local directory {shown} not found"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            Some(format!("{shown} is not a local directory"))
        }
        // Unreadable and the like: the download says why.
        Err(_) => None,
    }
}

/// Expands a local pattern against the file system; a plain name is taken
/// as the name it stands for (the upload says if it is missing). A
/// pattern that matches nothing is an error, unless a file has that very
/// name (as a shell passes an unmatched pattern on).
fn expand_local(word: &str) -> Result<Vec<String>, String> {
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
    fn an_empty_name_never_shows_as_quotes() {
        use crate::proto::error::RemoteError;
        let told = Cell::new(false);
        let remote = |code, msg: &str| ClientError::Remote(RemoteError::new(code, msg));
        let e = remote(ErrorCode::PermissionDenied, "");
        assert_eq!(describe("ls", "", "", &e, &told), "ls: permission denied");
        assert_eq!(
            describe("ls", "d", "d", &e, &told),
            "ls: 'd': permission denied"
        );
        let e = remote(ErrorCode::Io, "disk on fire");
        assert_eq!(
            describe("ls", "", "", &e, &told),
            "ls: server I/O error: disk on fire"
        );
        let e = remote(ErrorCode::NotFound, "");
        assert_eq!(describe("ls", "", "", &e, &told), "ls: not found on server");
        assert_eq!(
            describe("get", "a", "a", &e, &told),
            "get: 'a' not found on server"
        );
        assert_eq!(
            describe("get", "", "", &ClientError::Cancelled, &told),
            "get: cancelled"
        );
        assert_eq!(no_file_name("put", ""), "put: no file name given");
        assert_eq!(no_file_name("put", "d/"), "put: 'd/' has no file name");
        assert!(!told.get());
    }

    #[test]
    fn a_name_and_a_cause_are_said_once() {
        use crate::proto::error::RemoteError;
        let told = Cell::new(false);
        let remote = |code, msg: &str| ClientError::Remote(RemoteError::new(code, msg));
        let denied = remote(ErrorCode::PermissionDenied, "'secret': permission denied");
        assert_eq!(
            describe("get", "secret", "secret", &denied, &told),
            "get: 'secret': permission denied"
        );
        assert_eq!(
            describe_dir("secret", &denied, &told),
            "'secret': permission denied"
        );
        // The root is '/' in the server's words and left out in ours.
        let root = remote(ErrorCode::PermissionDenied, "'/': permission denied");
        assert_eq!(
            describe("ls", "", "", &root, &told),
            "ls: permission denied"
        );
        assert_eq!(describe_dir("", &root, &told), "'/': permission denied");
        // `rm d/` names 'd/'; the server says 'd'.
        let d = remote(ErrorCode::PermissionDenied, "'d': permission denied");
        assert_eq!(
            describe("rm", "d/", "d/", &d, &told),
            "rm: 'd/': permission denied"
        );
        // A detail with more to say keeps it, once.
        let out = remote(
            ErrorCode::PermissionDenied,
            "'esc/x': symlink leads outside the root",
        );
        assert_eq!(
            describe("get", "esc/x", "esc/x", &out, &told),
            "get: 'esc/x': permission denied: symlink leads outside the root"
        );
        let io = remote(ErrorCode::Io, "'f': Input/output error (os error 5)");
        assert_eq!(
            describe("get", "f", "f", &io, &told),
            "get: 'f': server I/O error: Input/output error (os error 5)"
        );
        // About another name (a parent): kept whole, the cause once.
        let parent = remote(ErrorCode::PermissionDenied, "'d': permission denied");
        assert_eq!(
            describe("put", "x", "d/x", &parent, &told),
            "put: 'd/x': 'd': permission denied"
        );
        let ro = remote(ErrorCode::ReadOnly, "the server is read-only");
        assert_eq!(
            describe("put", "x", "x", &ro, &told),
            "put: 'x': the server is read-only"
        );
        let big = remote(
            ErrorCode::TooLarge,
            "file of 11 bytes is larger than allowed",
        );
        assert_eq!(
            describe("put", "x", "x", &big, &told),
            "put: 'x': too large: file of 11 bytes is larger than allowed"
        );
        // A hostile detail is escaped.
        let evil = remote(ErrorCode::Io, "'f': \x1b[2J");
        assert!(!describe("get", "f", "f", &evil, &told).contains('\x1b'));
    }

    #[test]
    fn a_lost_connection_is_explained_once() {
        use crate::client::LostReason;
        let told = Cell::new(false);
        let lost = ClientError::Lost(LostReason::ServerClosed);
        let gone = ClientError::NotConnected(LostReason::ServerClosed);
        assert_eq!(
            describe("ls", "", "", &lost, &told),
            "ls: connection lost: server closed the connection"
        );
        assert_eq!(
            describe("mkdir", "d", "d", &gone, &told),
            "mkdir: not connected (connection lost)"
        );
        assert_eq!(
            describe_dir("", &gone, &told),
            "not connected (connection lost)"
        );
        // Found out by a call that said nothing (Tab completion): the
        // first command to hear of it gives the reason.
        let told = Cell::new(false);
        assert_eq!(
            describe("rm", "a", "a", &gone, &told),
            "rm: connection lost: server closed the connection"
        );
        assert_eq!(
            describe("rm", "a", "a", &gone, &told),
            "rm: not connected (connection lost)"
        );
    }

    #[test]
    fn df_is_laid_out_as_sftp() {
        let gib = 1u64 << 30;
        assert_eq!(
            df_table(100 * gib, 37 * gib, false),
            "        Size         Used        Avail    %Capacity\n   \
             104857600     66060288     38797312          63%\n"
        );
        assert_eq!(
            df_table(100 * gib, 37 * gib, true),
            "    Size     Used    Avail    %Capacity\n  100.0G    63.0G    37.0G          63%\n"
        );
        // Rounded down, never more than the size, and no division by zero.
        assert!(df_table(3000, 1000, false).ends_with(" 66%\n"));
        assert!(df_table(4096, 9000, false)
            .ends_with("\n           4            0            4           0%\n"));
        assert!(df_table(0, 0, true).ends_with("       -\n"));
    }

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

    #[test]
    fn summary_says_the_digest_was_checked() {
        let s = summary(1024 * 1024, Duration::from_secs(1));
        assert_eq!(s, "1048576 bytes in 1.00 s, 1.0 MiB/s, BLAKE3 verified");
    }
}
