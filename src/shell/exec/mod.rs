//! The executor: turns a parsed [`Command`] into calls on the network
//! [`Client`] or the local file system, and formats the results. All
//! user-visible output of commands is written here (stdout for results);
//! failures are returned as one-line messages for the runner to print.
//!
//! This file dispatches each command and holds the single-file transfers
//! and the wording of failures; beside it:
//!
//! - `many`: `put`/`get` with patterns, several names or `-r`, `chmod`
//!   over several names, and where a transfer's sources go.
//! - `nav`: `cd`, `ls`, `mkdir`, `rmdir`, `rm`.
//! - `attrs`: `-p`, keeping times and modes.
//! - `local`: `lls`, `lmkdir`, `!COMMAND` and `~` in local paths.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{Client, ClientError};
use crate::proto::error::{ErrorCode, RemoteError};
use crate::proto::limits::RESERVED_PREFIX;
use crate::proto::message::{Entry, EntryKind};

use super::batch::{Execute, Flow};
use super::command::{self, Check, Command, Update};
use super::complete::RemoteNames;
use super::cwd::{self, SharedCwd};
use super::glob;
use super::interrupt::{self, CtrlC, KeptNote};
use super::progress::TransferBar;
use super::render::{
    escape_for_terminal, format_elapsed, format_rate, format_size_human, quoted_name, subject,
    Style,
};
use super::words;

mod attrs;
mod local;
mod many;
mod nav;
mod parts;
mod pipeline;
mod update;

use local::{expand_home, expand_home_pattern, lmkdir};
use many::{local_dest, Dest};

/// The connection, shared between the executor and remote-name completion
/// (which runs only while the shell waits for a line, never during a command).
pub type SharedClient = Rc<RefCell<Client>>;

/// How the executor connects again ([`Executor::set_connector`]); the
/// program implements it with its command line's settings.
pub trait Connect {
    /// `HOST:PORT` of the server connected last.
    fn addr(&self) -> &str;
    /// Connects to that server again with the certificate and token that
    /// worked then, asking nothing. `Err`: why not, in one line.
    fn reconnect(&mut self) -> Result<Client, String>;
    /// Connects to `server` (`HOST[:PORT]`) by the command line's rules
    /// (known servers, trust on first use only on a terminal, the token);
    /// on success it is the server connected last.
    fn open(&mut self, server: &str) -> Result<Client, String>;
}

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
    /// What a second Ctrl-C (which ends ftx) leaves behind, while a
    /// transfer runs.
    kept: KeptNote,
    /// The user was told why the connection was lost; later failures on
    /// it just say it is closed.
    loss_told: Cell<bool>,
    /// `-p` of the `put` or `get` under way: keep times and modes.
    preserve: bool,
    /// `-u`, `-c`, `-v` of the `put` or `get` under way.
    update: Update,
    /// What `-u`/`-c` skipped and moved during the command under way.
    counts: update::Counts,
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
    /// Connects again after a lost connection, and for `open`; without
    /// it a lost connection stays lost.
    connector: Option<Box<dyn Connect>>,
    /// `close` closed the connection (or an `open` failed): commands that
    /// need the server wait for `open`.
    closed: bool,
    /// Counts the `open`s, so that completion forgets the names it
    /// cached from the server before.
    opened: Rc<Cell<u64>>,
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
            kept: KeptNote::default(),
            loss_told: Cell::new(false),
            preserve: false,
            update: Update::default(),
            counts: update::Counts::default(),
            commands_on_stdin: false,
            listings: RefCell::new(HashMap::new()),
            cwd: SharedCwd::default(),
            previous_cwd: None,
            connector: None,
            closed: false,
            opened: Rc::new(Cell::new(0)),
        }
    }

    /// How to connect again: before a command that needs the server, a
    /// connection found lost is replaced by a new one to the same server
    /// (the command fails if that fails, and the next one tries again);
    /// `open` and `close` work only with it.
    pub fn set_connector(&mut self, connector: Box<dyn Connect>) {
        self.connector = Some(connector);
    }

    /// Remote names for Tab completion, relative to this executor's remote
    /// working directory.
    pub fn remote_names(&self) -> RemoteCompleter {
        RemoteCompleter {
            client: self.client.clone(),
            cwd: self.cwd.clone(),
            cache: HashMap::new(),
            opened: self.opened.clone(),
            cached_at_open: self.opened.get(),
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
        self.interrupt = interrupt::cancel_flag(self.kept.clone());
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
        let updating = !resume && self.update.check != Check::Off;
        if updating && self.unchanged(Path::new(local), remote) {
            return self.skip(local);
        }
        // An update replaces what differs.
        let force = force || updating;
        let remote = remote.to_owned();
        let wire = self.wire(&remote);
        let mut bar = self.transfer_bar(&remote);
        let again = reput_command(local, &remote);
        let _kept = self.keep_note(format!(
            "ftx: interrupted during the upload; the server keeps what it received \
             of {} as an interrupted upload (continue with: {again})",
            quoted_name(&remote)
        ));
        let r = self
            .client
            .borrow_mut()
            .put(Path::new(local), &wire, force, resume, &mut bar);
        let elapsed = bar.elapsed();
        match r {
            Ok(o) => {
                self.counts.moved += 1;
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
                    summary(o.size, o.resumed_from, elapsed)
                );
                let line = self.style.success(&line);
                self.say(&line)?;
                kept
            }
            Err(e) => {
                let hint = self.resume_hint(&e, &again);
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
        let updating = !resume && self.update.check != Check::Off;
        if updating && self.unchanged(target, remote) {
            return self.skip(remote);
        }
        // An update replaces what differs.
        let force = force || updating;
        let wire = self.wire(remote);
        if wire.is_empty() {
            // `get ..` at the top: the root, a directory like any other.
            let e = ClientError::Remote(RemoteError::new(ErrorCode::IsDirectory, ""));
            return Err(self.describe(cmd, remote, remote, &e));
        }
        let mut bar = self.transfer_bar(remote);
        let again = reget_command(remote, target);
        let part = part_path(target);
        let kept = if resume || !part.exists() {
            let shown = part.to_string_lossy();
            format!(
                "ftx: interrupted during the download; what arrived is kept in {} \
                 (continue with: {again})",
                quoted_name(shown.strip_prefix("./").unwrap_or(&shown))
            )
        } else {
            // Another download's part is there: this one went to a
            // one-off temporary file, which nothing can continue.
            "ftx: interrupted during the download; nothing of it is kept".to_owned()
        };
        let _kept = self.keep_note(kept);
        let result = self
            .client
            .borrow_mut()
            .get(&wire, target, force, resume, &mut bar);
        let elapsed = bar.elapsed();
        match result {
            Ok(o) => {
                self.counts.moved += 1;
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
                    summary(o.size, o.resumed_from, elapsed)
                );
                let line = self.style.success(&line);
                self.say(&line)?;
                kept
            }
            Err(e) => {
                let hint = if !resume && e.code() == Some(ErrorCode::IsDirectory) {
                    " (use get -r)".to_owned()
                } else {
                    self.resume_hint(&e, &again)
                };
                Err(self.describe(cmd, remote, remote, &e) + &hint)
            }
        }
    }

    /// `(continue with: reput a.bin b.bin)` after an interruption that
    /// left a part; `again` is the command that continues it.
    fn resume_hint(&self, e: &ClientError, again: &str) -> String {
        if matches!(e, ClientError::NotConnected(_)) {
            // Nothing was sent: the hint would be about an older transfer.
            return String::new();
        }
        let interrupted = e.is_fatal()
            || matches!(e, ClientError::Cancelled)
            || matches!(e.code(), Some(ErrorCode::Cancelled | ErrorCode::Timeout));
        if interrupted && self.client.borrow().last_transfer_resumable() {
            format!(" (continue with: {again})")
        } else {
            String::new()
        }
    }
}

impl Executor {
    /// Says `note` if a second Ctrl-C ends ftx before the guard is dropped.
    /// Escaped here: it may hold a name from the server's listing.
    fn keep_note(&self, note: String) -> KeptNoteGuard {
        if let Ok(mut n) = self.kept.lock() {
            *n = Some(escape_for_terminal(&note));
        }
        KeptNoteGuard(self.kept.clone())
    }
}

/// Clears the [`KeptNote`] when the transfer it describes is over.
struct KeptNoteGuard(KeptNote);

impl Drop for KeptNoteGuard {
    fn drop(&mut self) {
        if let Ok(mut n) = self.0.lock() {
            *n = None;
        }
    }
}

/// The command that continues an interrupted upload of `local` as
/// `remote`: `reput LOCAL`, with REMOTE only when `reput LOCAL` would not
/// choose that name itself; each word quoted to be pasted back.
fn reput_command(local: &str, remote: &str) -> String {
    if base_name(local).as_deref() == Some(remote) {
        format!("reput {}", words::quote(local))
    } else {
        format!("reput {} {}", words::quote(local), words::quote(remote))
    }
}

/// The command that continues an interrupted download of `remote` to
/// `target`: `reget REMOTE`, with LOCAL only when it differs from what
/// `reget REMOTE` would choose.
fn reget_command(remote: &str, target: &Path) -> String {
    let shown = target.to_string_lossy();
    let shown = shown.strip_prefix("./").unwrap_or(&shown);
    if base_name(remote).as_deref() == Some(shown) {
        format!("reget {}", words::quote(remote))
    } else {
        format!("reget {} {}", words::quote(remote), words::quote(shown))
    }
}

/// The part file a download to `target` writes when it is free (beside
/// the target, hidden).
fn part_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let part = crate::partial::part_name(&name);
    match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(part),
        _ => PathBuf::from(part),
    }
}

impl Execute for Executor {
    fn execute(&mut self, cmd: Command) -> Result<Flow, String> {
        let _ctrl_c = CtrlC::arm(self.interrupt.clone());
        self.preserve = false;
        self.update_for(Update::default());
        self.listings.borrow_mut().clear();
        if let Some(name) = needs_server(&cmd) {
            self.ensure_connected(name)?;
        }
        match cmd {
            Command::Put {
                force,
                recursive,
                preserve,
                update,
                local,
                remote,
            } => {
                self.preserve_for("put", preserve, update.check)?;
                self.update_for(update);
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
                update,
                remote,
                local,
            } => {
                self.preserve_for("get", preserve, update.check)?;
                self.update_for(update);
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
            Command::Parts { dir } => self.parts(dir.as_deref())?,
            Command::Discard { names } => self.discard(&names)?,
            Command::Ldiscard { names } => {
                let names = names
                    .iter()
                    .map(|n| expand_home("ldiscard", n))
                    .collect::<Result<Vec<_>, _>>()?;
                self.ldiscard(&names)?
            }
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
            Command::Open { server } => self.open(server.as_deref())?,
            Command::Close => self.close()?,
            Command::Version => {
                let text = {
                    let client = self.client.borrow();
                    if self.closed {
                        format!("ftx {}\nserver: not connected", env!("CARGO_PKG_VERSION"))
                    } else {
                        format!(
                            "ftx {}\nserver: {}\nprotocol version {}",
                            env!("CARGO_PKG_VERSION"),
                            escape_for_terminal(client.server_name()),
                            client.protocol_version()
                        )
                    }
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

/// The name of `cmd` when it needs the server (before it runs, a lost
/// connection is replaced); `None` for the local ones.
fn needs_server(cmd: &Command) -> Option<&'static str> {
    Some(match cmd {
        Command::Put { .. } => "put",
        Command::Get { .. } => "get",
        Command::Reput { .. } => "reput",
        Command::Reget { .. } => "reget",
        Command::Cd { .. } => "cd",
        Command::Ls { .. } => "ls",
        Command::Mkdir { .. } => "mkdir",
        Command::Rmdir { .. } => "rmdir",
        Command::Rm { .. } => "rm",
        Command::Rename { .. } => "rename",
        Command::Chmod { .. } => "chmod",
        Command::Df { .. } => "df",
        _ => return None,
    })
}

/// What a command that needs the server says after `close`.
const NOT_CONNECTED_USE_OPEN: &str = "not connected; use open HOST[:PORT]";

impl Executor {
    /// Before `cmd`, which needs the server: when the connection is known
    /// lost or found closed (without waiting: the server's idle timeout,
    /// a restart), connects again to the same server, keeping the remote
    /// working directory, and says so in one line on stderr (with the
    /// reason, unless a failure already gave it). `Err` when that fails,
    /// or after `close`.
    fn ensure_connected(&mut self, cmd: &str) -> Result<(), String> {
        if self.closed {
            return Err(format!("{cmd}: {NOT_CONNECTED_USE_OPEN}"));
        }
        let Some(connector) = self.connector.as_mut() else {
            return Ok(());
        };
        if self.client.borrow_mut().check_alive() {
            return Ok(());
        }
        // The reason, unless the user heard it already.
        let why = self.client.borrow().lost().cloned();
        let reason = why
            .filter(|_| !self.loss_told.replace(true))
            .map(|why| ClientError::Lost(why).to_string());
        let lost = reason.as_deref().unwrap_or("not connected");
        let client = connector
            .reconnect()
            .map_err(|e| format!("{cmd}: {lost}; reconnecting failed: {e}"))?;
        *self.client.borrow_mut() = client;
        self.loss_told.set(false);
        let addr = connector.addr();
        let line = match &reason {
            Some(reason) => format!("Reconnected to server at {addr} ({reason})"),
            None => format!("Reconnected to server at {addr}"),
        };
        let _ = writeln!(self.err, "{}", escape_for_terminal(&line));
        let _ = self.err.flush();
        Ok(())
    }

    /// `open [HOST[:PORT]]`: closes the connection, then connects to
    /// HOST (or the server connected last) by the command line's rules;
    /// the remote working directory starts at the top again.
    fn open(&mut self, server: Option<&str>) -> Result<(), String> {
        let Some(connector) = self.connector.as_mut() else {
            return Err("open: not available here".to_owned());
        };
        self.client.borrow_mut().close();
        self.closed = true;
        let client = match server {
            Some(s) => connector.open(s),
            None => connector.reconnect(),
        }
        .map_err(|e| format!("open: {e}"))?;
        let addr = connector.addr().to_owned();
        *self.client.borrow_mut() = client;
        self.closed = false;
        self.opened.set(self.opened.get() + 1);
        self.loss_told.set(false);
        *self.cwd.borrow_mut() = String::new();
        self.previous_cwd = None;
        if !self.quiet {
            self.say(&format!(
                "Connected to server at {}",
                escape_for_terminal(&addr)
            ))?;
        }
        Ok(())
    }

    /// `close`: closes the connection; commands that need the server then
    /// fail until `open`, local ones still work. Closing twice is no error.
    fn close(&mut self) -> Result<(), String> {
        if self.closed {
            return Ok(());
        }
        self.client.borrow_mut().close();
        self.closed = true;
        if !self.quiet {
            let addr = self.connector.as_ref().map(|c| c.addr().to_owned());
            let line = match addr {
                Some(a) => format!("Connection to {} closed", escape_for_terminal(&a)),
                None => "Connection closed".to_owned(),
            };
            self.say(&line)?;
        }
        Ok(())
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
    /// The executor's count of `open`s, and its value when the cache
    /// was filled: another server's names are not this one's.
    opened: Rc<Cell<u64>>,
    cached_at_open: u64,
}

impl RemoteNames for RemoteCompleter {
    fn list(&mut self, dir: &str) -> Vec<(String, bool)> {
        let dir = cwd::resolve(&self.cwd.borrow(), dir);
        let dir = dir.as_str();
        if self.cached_at_open != self.opened.get() {
            self.cache.clear();
            self.cached_at_open = self.opened.get();
        }
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

/// `N bytes in T s, R MiB/s, BLAKE3 verified`: the time on the progress
/// bar's clock and the rate as the bar computes it ([`format_rate`]: the
/// bytes moved now, a resume's prefix left out, over that time). A
/// transfer shorter than [`RATE_MIN_TIME`](super::render::RATE_MIN_TIME) shows no rate (`12 bytes in
/// 3 ms`); a resumed one says how much of it moved (`1000 bytes, 900
/// moved, in 1.20 s`).
fn summary(size: u64, resumed_from: u64, elapsed: Duration) -> String {
    let moved = size.saturating_sub(resumed_from);
    let amount = if moved == size {
        format!("{size} bytes")
    } else {
        format!("{size} bytes, {moved} moved,")
    };
    let time = format_elapsed(elapsed);
    match format_rate(moved, elapsed) {
        Some(rate) => format!("{amount} in {time}, {rate}, BLAKE3 verified"),
        None => format!("{amount} in {time}, BLAKE3 verified"),
    }
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
    fn the_continue_command_names_what_differs_and_pastes_back() {
        assert_eq!(reput_command("a.bin", "a.bin"), "reput a.bin");
        assert_eq!(reput_command("dir/a.bin", "a.bin"), "reput dir/a.bin");
        assert_eq!(reput_command("a.bin", "b.bin"), "reput a.bin b.bin");
        assert_eq!(reput_command("a.bin", "d/a.bin"), "reput a.bin d/a.bin");
        assert_eq!(reput_command("my file", "it's"), "reput 'my file' \"it's\"");
        assert_eq!(
            reget_command("d/x.bin", Path::new("x.bin")),
            "reget d/x.bin"
        );
        assert_eq!(reget_command("x.bin", Path::new("./x.bin")), "reget x.bin");
        assert_eq!(
            reget_command("x.bin", Path::new("y.bin")),
            "reget x.bin y.bin"
        );
        assert_eq!(
            part_path(Path::new("d/y.bin")),
            Path::new("d/.ftx-part-y.bin")
        );
        assert_eq!(part_path(Path::new("y.bin")), Path::new(".ftx-part-y.bin"));
    }

    #[test]
    fn summary_says_the_digest_was_checked() {
        let s = summary(1024 * 1024, 0, Duration::from_secs(1));
        assert_eq!(s, "1048576 bytes in 1.00 s, 1.0 MiB/s, BLAKE3 verified");
        // Tiny and instant: no rate that only measures the clock.
        let s = summary(12, 0, Duration::from_millis(3));
        assert_eq!(s, "12 bytes in 3 ms, BLAKE3 verified");
        let s = summary(12, 0, Duration::from_millis(40));
        assert_eq!(s, "12 bytes in 40 ms, 300 B/s, BLAKE3 verified");
        // A resume's rate counts what moved now.
        let s = summary(3 << 20, 1 << 20, Duration::from_secs(2));
        assert_eq!(
            s,
            "3145728 bytes, 2097152 moved, in 2.00 s, 1.0 MiB/s, BLAKE3 verified"
        );
    }
}
