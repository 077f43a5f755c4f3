//! The integration-test harness: starts a real `ftxd` on a free port with its
//! own temporary root, runs the real `ftx` in batch mode with a timeout, talks
//! raw frames to the server, and compares files and directory trees.
//!
//! Servers speak TLS and require a token by default, as `ftxd` does: the
//! harness gives each one a state directory in its temporary base, reads
//! the token and the certificate fingerprint it prints, and hands them to
//! `ftx` (`FTX_TOKEN`, `--fingerprint`) and to raw connections (which speak
//! TLS through rustls and put the token in `Hello`). A server started with
//! `--plain` and/or `--open` is reached accordingly.
//!
//! Every helper fails with a message that shows what the programs printed, so
//! a failing test explains itself. Nothing here knows the server's or the
//! client's internals: only what the README promises and the protocol
//! library (`ftx::proto`).

#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use ftx::proto::error::{DecodeError, ErrorCode};
use ftx::proto::frame;
use ftx::proto::limits;
use ftx::proto::message::Message;
use tempfile::TempDir;

pub mod fake;
pub mod pty;

/// How long `ftxd` may take to print its `listening on` line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one `ftx` run may take unless a test says otherwise.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `ftxd` may take to exit after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a raw-socket read waits for the server.
pub const RAW_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The `ftxd` executable built for this test run.
pub fn ftxd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ftxd")
}

/// The `ftx` executable built for this test run.
pub fn ftx_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ftx")
}

/// How to reach one server: its certificate fingerprint (`None`: plain)
/// and its access token (empty: open).
#[derive(Debug, Clone, Default)]
pub struct Creds {
    /// `SHA256:...`, or `None` for `--plain`.
    pub fingerprint: Option<String>,
    /// The first token it printed, or empty for `--open`.
    pub token: String,
}

/// Records that `addr` is an ftxd this test started by hand with
/// `--plain --open`, so [`run_batch`] and [`Raw`] reach it without TLS.
pub fn register_plain(addr: SocketAddr) {
    if let Ok(mut r) = registry().lock() {
        r.insert(addr, Creds::default());
    }
}

fn registry() -> &'static Mutex<HashMap<SocketAddr, Creds>> {
    static R: OnceLock<Mutex<HashMap<SocketAddr, Creds>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

thread_local! {
    /// The token of the server this test thread started last, for
    /// [`hello`] (tests start one server each).
    static LAST_TOKEN: RefCell<String> = const { RefCell::new(String::new()) };
}

/// How to reach the server at `addr` (plain and open if unknown).
pub fn creds(addr: SocketAddr) -> Creds {
    registry()
        .lock()
        .ok()
        .and_then(|r| r.get(&addr).cloned())
        .unwrap_or_default()
}

/// A running `ftxd` on `127.0.0.1` with a fresh root, stopped on drop.
///
/// The root is `BASE/root` inside a temporary directory `BASE`; tests make
/// sibling directories (client working directories, sentinels outside the
/// root) with [`Server::scratch`], so everything is cleaned up together.
pub struct Server {
    child: Option<Child>,
    pid: u32,
    addr: SocketAddr,
    base: TempDir,
    root: PathBuf,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    creds: Creds,
}

impl Server {
    /// Starts `ftxd --listen 127.0.0.1:0 --root ROOT ARGS...` and waits
    /// (at most [`STARTUP_TIMEOUT`]) for its `listening on` line.
    pub fn start(args: &[&str]) -> Server {
        let base = tempfile::Builder::new()
            .prefix("ftx-test-")
            .tempdir()
            .expect("create temp dir");
        let root = base.path().join("root");
        fs::create_dir(&root).expect("create server root");
        Server::start_in(base, root, "127.0.0.1:0", args)
    }

    /// Starts another `ftxd` serving an existing `root` (one that another
    /// [`Server`] owns and outlives this one): a second process on a shared
    /// root, or a restart after [`Server::kill`].
    pub fn start_on(root: &Path, args: &[&str]) -> Server {
        let base = tempfile::Builder::new()
            .prefix("ftx-test-")
            .tempdir()
            .expect("create temp dir");
        Server::start_in(base, root.to_path_buf(), "127.0.0.1:0", args)
    }

    fn start_in(base: TempDir, root: PathBuf, listen: &str, args: &[&str]) -> Server {
        let plain = args.contains(&"--plain");
        let open = args.contains(&"--open");
        let mut extra: Vec<std::ffi::OsString> = Vec::new();
        let needs_state = !(plain && open);
        if needs_state && !args.contains(&"--state-dir") {
            extra.push("--state-dir".into());
            extra.push(base.path().join("state").into());
        }
        let mut child = Command::new(ftxd_bin())
            .arg("--listen")
            .arg(listen)
            .arg("--root")
            .arg(&root)
            .args(&extra)
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", ftxd_bin()));
        let pid = child.id();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));

        let (tx, rx) = mpsc::channel::<String>();
        let out = child.stdout.take().expect("piped stdout");
        let sink = Arc::clone(&stdout);
        thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                push_line(&sink, &line);
                if line.contains("listening on") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line);
                    }
                }
            }
        });
        let err = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                push_line(&sink, &line);
            }
        });

        let mut server = Server {
            child: Some(child),
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            base,
            root,
            stdout,
            stderr,
            creds: Creds::default(),
        };
        match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(line) => {
                match parse_listening(&line) {
                    Some(addr) => server.addr = addr,
                    None => {
                        let logs = server.kill_and_logs();
                        panic!("ftxd printed {line:?}, which has no address after 'listening on'\n{logs}");
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let logs = server.kill_and_logs();
                panic!(
                    "ftxd did not print 'listening on ADDR:PORT' within {STARTUP_TIMEOUT:?}\n{logs}"
                );
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Stdout closed: the process exited (or closed stdout) early.
                thread::sleep(Duration::from_millis(200));
                let logs = server.kill_and_logs();
                panic!("ftxd closed stdout before printing 'listening on ADDR:PORT'\n{logs}");
            }
        }
        // Printed before the listening line, so already collected.
        let printed = server.stdout.lock().map(|s| s.clone()).unwrap_or_default();
        let word_after = |needle: &str| {
            printed.lines().find_map(|l| {
                l.contains(needle)
                    .then(|| l.split_whitespace().last().unwrap_or("").to_owned())
            })
        };
        server.creds = Creds {
            fingerprint: if plain {
                None
            } else {
                word_after("fingerprint")
            },
            token: if open {
                String::new()
            } else {
                word_after("access token").unwrap_or_default()
            },
        };
        if !plain && server.creds.fingerprint.is_none() {
            let logs = server.kill_and_logs();
            panic!("ftxd printed no certificate fingerprint\n{logs}");
        }
        if let Ok(mut r) = registry().lock() {
            r.insert(server.addr, server.creds.clone());
        }
        LAST_TOKEN.with(|t| *t.borrow_mut() = server.creds.token.clone());
        server
    }

    /// Starts `ftxd` again on `earlier`'s root and state directory, as a
    /// restarted server: the same key and the same tokens, so its clients'
    /// interrupted uploads are theirs to resume (`earlier` must not be
    /// running).
    pub fn restart_of(earlier: &Server, args: &[&str]) -> Server {
        let base = tempfile::Builder::new()
            .prefix("ftx-test-")
            .tempdir()
            .expect("create temp dir");
        let state = earlier.base.path().join("state");
        let mut all = vec!["--state-dir", state.to_str().expect("UTF-8 temp path")];
        all.extend_from_slice(args);
        let mut server = Server::start_in(base, earlier.root.clone(), "127.0.0.1:0", &all);
        if server.creds.token.is_empty() && !args.contains(&"--open") {
            // Printed at the first start only.
            server.creds.token = earlier.creds.token.clone();
            if let Ok(mut r) = registry().lock() {
                r.insert(server.addr, server.creds.clone());
            }
            LAST_TOKEN.with(|t| *t.borrow_mut() = server.creds.token.clone());
        }
        server
    }

    /// Starts another `ftxd` with `args` on the address of a stopped one
    /// (same port), with its own state directory unless `args` name one.
    pub fn start_at_addr(addr: SocketAddr, args: &[&str]) -> Server {
        let base = tempfile::Builder::new()
            .prefix("ftx-test-")
            .tempdir()
            .expect("create temp dir");
        let root = base.path().join("root");
        fs::create_dir(&root).expect("create server root");
        Server::start_in(base, root, &addr.to_string(), args)
    }

    /// The hidden part file that holds an interrupted upload of `name` to
    /// `dir` (a directory under this server's root) by this server's first
    /// token, `.ftx-part=OWNER-NAME`; on an open server by anyone,
    /// `.ftx-part-NAME`.
    pub fn part_path(&self, dir: impl AsRef<Path>, name: &str) -> PathBuf {
        use ftx::partial::{owned_part_name, PartOwner};
        let owner = (!self.creds.token.is_empty()).then(|| {
            PartOwner::of_token(&ftx::server::tokens::token_id(self.creds.token.as_bytes()))
        });
        dir.as_ref().join(owned_part_name(owner, name))
    }

    /// The token and fingerprint this server printed.
    pub fn creds(&self) -> &Creds {
        &self.creds
    }

    /// The address the server really bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, as given to `ftx`.
    pub fn addr_arg(&self) -> String {
        self.addr.to_string()
    }

    /// The server's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The temporary directory holding the root and its siblings.
    pub fn base(&self) -> &Path {
        self.base.path()
    }

    /// Creates (if needed) and returns the directory `BASE/name`, a sibling of
    /// the root: a client working directory or a sentinel outside the root.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.base.path().join(name);
        fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// What the server printed so far, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- ftxd stdout ---\n{}--- ftxd stderr ---\n{}",
            self.stdout.lock().map(|s| s.clone()).unwrap_or_default(),
            self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
        )
    }

    /// Panics unless the server process is still running.
    pub fn assert_alive(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("ftxd exited unexpectedly with {status}\n{}", self.logs());
            }
        }
    }

    /// Runs a batch script against this server from `cwd` (with its token
    /// and fingerprint).
    pub fn batch(&self, cwd: &Path, script: &str) -> Output {
        run_batch(&self.addr_arg(), cwd, script)
    }

    /// Sends SIGTERM and waits for the exit status (SIGKILL after [`STOP_TIMEOUT`]).
    pub fn stop(mut self) -> ExitStatus {
        self.terminate().unwrap_or_else(|| {
            panic!(
                "ftxd did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}",
                self.logs()
            )
        })
    }

    /// Kills the server with SIGKILL (a crash: no cleanup at all) and
    /// reaps it. Its root and scratch directories stay.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(self.pid, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit (SIGKILL after the stop
    /// timeout: `None`); the root stays, unlike [`Server::stop`].
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        signal(self.pid, libc::SIGTERM);
        match wait_timeout(&mut child, STOP_TIMEOUT) {
            Some(status) => Some(status),
            None => {
                signal(self.pid, libc::SIGKILL);
                let _ = child.wait();
                None
            }
        }
    }

    fn kill_and_logs(&mut self) -> String {
        if let Some(mut child) = self.child.take() {
            signal(self.pid, libc::SIGKILL);
            let status = child.wait();
            // Give the reader threads a moment to collect the last output.
            thread::sleep(Duration::from_millis(100));
            return format!("ftxd exit: {status:?}\n{}", self.logs());
        }
        self.logs()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let was_running = self.child.is_some();
        let status = self.terminate();
        if was_running && thread::panicking() {
            eprintln!(
                "ftxd on {} stopped with {status:?}\n{}",
                self.addr,
                self.logs()
            );
        }
    }
}

fn push_line(sink: &Mutex<String>, line: &str) {
    if let Ok(mut s) = sink.lock() {
        s.push_str(line);
        s.push('\n');
    }
}

/// Finds `ADDR:PORT` after `listening on` in a line such as
/// `ftxd 0.1.0 listening on 127.0.0.1:41234 (root: /tmp/x)`.
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    const KEY: &str = "listening on ";
    let rest = &line[line.find(KEY)? + KEY.len()..];
    let token = rest.split_whitespace().next()?;
    let token = token
        .trim_start_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '['))
        .trim_end_matches(|c: char| !c.is_ascii_digit());
    token.parse().ok()
}

/// Sends a signal to a process we started.
pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is one of
    // our own children, not yet reaped, so it cannot name another process.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Polls `child` until it exits or `timeout` passes.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// What one run of `ftx` (or `ftxd`) did: exit status and captured output.
pub struct Output {
    /// The command line, for messages.
    pub what: String,
    /// The exit status.
    pub status: ExitStatus,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
    /// How long the run took.
    pub elapsed: Duration,
}

impl Output {
    /// True when the process exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics (showing all output) unless the run exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Output {
        assert!(self.success(), "expected success\n{self}");
        self
    }

    /// Panics unless the run exited non-zero (not killed by a signal).
    #[track_caller]
    pub fn assert_failure(&self) -> &Output {
        assert!(
            self.status.code().is_some_and(|c| c != 0),
            "expected a non-zero exit code\n{self}"
        );
        self
    }

    /// Panics unless the run failed with an `error:` line on stderr that
    /// contains `cause` (case-insensitive).
    #[track_caller]
    pub fn assert_error(&self, cause: &str) -> &Output {
        self.assert_failure();
        self.assert_error_line(cause)
    }

    /// Panics unless some stderr line starts with `error:` and contains
    /// `cause` (case-insensitive), whatever the exit status.
    #[track_caller]
    pub fn assert_error_line(&self, cause: &str) -> &Output {
        let want = cause.to_lowercase();
        assert!(
            self.error_lines()
                .iter()
                .any(|l| l.to_lowercase().contains(&want)),
            "expected an 'error:' line on stderr containing {cause:?}\n{self}"
        );
        self
    }

    /// Stderr lines that start with `error:`.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect()
    }

    /// Panics unless stdout contains `needle`.
    #[track_caller]
    pub fn assert_stdout_contains(&self, needle: &str) -> &Output {
        assert!(
            self.stdout.contains(needle),
            "expected stdout to contain {needle:?}\n{self}"
        );
        self
    }

    /// Panics if stdout contains `needle`.
    #[track_caller]
    pub fn assert_stdout_lacks(&self, needle: &str) -> &Output {
        assert!(
            !self.stdout.contains(needle),
            "expected stdout NOT to contain {needle:?}\n{self}"
        );
        self
    }

    /// The command lines echoed by batch mode (`ftx> LINE`), without the prompt.
    pub fn echoed(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("ftx> "))
            .collect()
    }

    /// The stdout lines printed by the command echoed as `ftx> LINE`: every
    /// line after that echo up to the next echo (or the end).
    #[track_caller]
    pub fn section(&self, line: &str) -> Vec<&str> {
        let echo = format!("ftx> {line}");
        let mut lines = self.stdout.lines();
        if !lines.by_ref().any(|l| l == echo) {
            panic!("no echo {echo:?} in stdout\n{self}");
        }
        lines.take_while(|l| !l.starts_with("ftx> ")).collect()
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.what)?;
        writeln!(f, "status: {} after {:?}", self.status, self.elapsed)?;
        writeln!(f, "--- stdout ---")?;
        writeln!(f, "{}", self.stdout.trim_end())?;
        writeln!(f, "--- stderr ---")?;
        writeln!(f, "{}", self.stderr.trim_end())?;
        write!(f, "--------------")
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Runs `program ARGS` in `cwd` with `stdin` fed to it (or `/dev/null`),
/// killing it by PID if it runs longer than `timeout`.
///
/// `NO_COLOR=1`, `RUST_LOG` unset, and `XDG_DATA_HOME`/`HOME` pointed at a
/// throw-away directory so history files never land in the user's home.
pub fn run_cmd(
    program: &str,
    args: &[&str],
    cwd: &Path,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Output {
    spawn_cmd(program, args, cwd, stdin).wait(timeout)
}

/// A program started by [`spawn_cmd`], still running: wait for it, or kill
/// it by PID at a moment of the test's choosing.
pub struct Running {
    child: Child,
    pid: u32,
    what: String,
    start: Instant,
    writer: Option<thread::JoinHandle<()>>,
    out: Option<thread::JoinHandle<Vec<u8>>>,
    err: Option<thread::JoinHandle<Vec<u8>>>,
    _home: TempDir,
}

/// Starts `program ARGS` in `cwd` as [`run_cmd`] does, without waiting.
/// `ftx ADDR ...` to a server of this harness gets its credentials.
pub fn spawn_cmd(program: &str, args: &[&str], cwd: &Path, stdin: Option<&[u8]>) -> Running {
    let (extra, envs) = if program == ftx_bin() {
        ftx_access(args.first().copied().unwrap_or(""))
    } else {
        (Vec::new(), Vec::new())
    };
    let mut all: Vec<&str> = args.to_vec();
    all.extend(extra.iter().map(String::as_str));
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_cmd_env(program, &all, cwd, stdin, &envs, None)
}

/// Extra `ftx` flags and environment to reach the harness server at
/// `addr` (`--fingerprint FP` or `--plain`, and `FTX_TOKEN`); nothing for
/// an address the harness did not start.
pub fn ftx_access(addr: &str) -> (Vec<String>, Vec<(&'static str, String)>) {
    let Some(creds) = addr
        .parse::<SocketAddr>()
        .ok()
        .and_then(|a| registry().lock().ok()?.get(&a).cloned())
    else {
        return (Vec::new(), Vec::new());
    };
    let args = match creds.fingerprint {
        Some(fp) => vec!["--fingerprint".to_owned(), fp],
        None => vec!["--plain".to_owned()],
    };
    let envs = if creds.token.is_empty() {
        Vec::new()
    } else {
        vec![("FTX_TOKEN", creds.token)]
    };
    (args, envs)
}

/// [`run_cmd`] with extra environment variables and, optionally, a fixed
/// home directory (so a known-hosts file survives between runs).
pub fn run_cmd_env(
    program: &str,
    args: &[&str],
    cwd: &Path,
    stdin: Option<&[u8]>,
    timeout: Duration,
    envs: &[(&str, &str)],
    fixed_home: Option<&Path>,
) -> Output {
    spawn_cmd_env(program, args, cwd, stdin, envs, fixed_home).wait(timeout)
}

/// [`spawn_cmd`] with extra environment variables and an optional fixed home.
pub fn spawn_cmd_env(
    program: &str,
    args: &[&str],
    cwd: &Path,
    stdin: Option<&[u8]>,
    envs: &[(&str, &str)],
    fixed_home: Option<&Path>,
) -> Running {
    let home = tempfile::Builder::new()
        .prefix("ftx-home-")
        .tempdir()
        .expect("create temp home");
    let what = format!("(cd {} && {program} {})", cwd.display(), args.join(" "));
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("HOME", fixed_home.unwrap_or(home.path()))
        .env(
            "XDG_DATA_HOME",
            fixed_home.unwrap_or(home.path()).join("data"),
        )
        .env_remove("RUST_LOG")
        .env_remove("FTX_TOKEN")
        .envs(envs.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {what}: {e}"));
    let pid = child.id();

    let writer = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let bytes = bytes.to_vec();
        // A client that exits early closes its stdin: ignore EPIPE.
        thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })
    });
    let out = reader_thread(child.stdout.take().expect("piped stdout"));
    let err = reader_thread(child.stderr.take().expect("piped stderr"));
    Running {
        child,
        pid,
        what,
        start,
        writer,
        out: Some(out),
        err: Some(err),
        _home: home,
    }
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// True once the process has exited (it is not reaped twice).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the exit (killing it by PID after `timeout`, which fails
    /// the test) and returns what it printed.
    pub fn wait(mut self, timeout: Duration) -> Output {
        match wait_timeout(&mut self.child, timeout) {
            Some(status) => self.finish(status),
            None => {
                signal(self.pid, libc::SIGKILL);
                let status = self.child.wait().expect("wait for killed child");
                let output = self.finish(status);
                panic!("timed out after {timeout:?}; killed\n{output}");
            }
        }
    }

    /// Sends SIGKILL (unless it already exited) and returns what it printed.
    pub fn kill(mut self) -> Output {
        if !self.exited() {
            signal(self.pid, libc::SIGKILL);
        }
        let status = self.child.wait().expect("wait for killed child");
        self.finish(status)
    }

    fn finish(&mut self, status: ExitStatus) -> Output {
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        Output {
            what: self.what.clone(),
            status,
            stdout: self.out.take().map(join_reader).unwrap_or_default(),
            stderr: self.err.take().map(join_reader).unwrap_or_default(),
            elapsed: self.start.elapsed(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.exited() {
            signal(self.pid, libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

fn reader_thread<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

fn join_reader(h: thread::JoinHandle<Vec<u8>>) -> String {
    String::from_utf8_lossy(&h.join().unwrap_or_default()).into_owned()
}

/// Runs `ftx ADDR -b -` from `cwd` with `script` on stdin ([`RUN_TIMEOUT`]).
pub fn run_batch(addr: &str, cwd: &Path, script: &str) -> Output {
    run_batch_timeout(addr, cwd, script, RUN_TIMEOUT)
}

/// Starts `ftx ADDR -b -` from `cwd` with `script` on stdin, without waiting.
pub fn spawn_batch(addr: &str, cwd: &Path, script: &str) -> Running {
    spawn_cmd(ftx_bin(), &[addr, "-b", "-"], cwd, Some(script.as_bytes()))
}

/// [`run_batch`] with an explicit timeout.
pub fn run_batch_timeout(addr: &str, cwd: &Path, script: &str, timeout: Duration) -> Output {
    run_cmd(
        ftx_bin(),
        &[addr, "-b", "-"],
        cwd,
        Some(script.as_bytes()),
        timeout,
    )
}

/// Runs `ftx ARGS` from `cwd` with no stdin.
pub fn run_ftx(cwd: &Path, args: &[&str]) -> Output {
    run_cmd(ftx_bin(), args, cwd, None, RUN_TIMEOUT)
}

/// Runs `ftxd ARGS` from `cwd` with no stdin (for `--help`, bad flags, ...).
pub fn run_ftxd(cwd: &Path, args: &[&str]) -> Output {
    run_cmd(ftxd_bin(), args, cwd, None, RUN_TIMEOUT)
}

/// A port on 127.0.0.1 that nothing listens on: bound, then released.
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

// ---------------------------------------------------------------- files

/// xorshift64*: deterministic test data with no extra crate.
pub struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// `len` deterministic random bytes for `seed`.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0; len];
    XorShift::new(seed).fill(&mut v);
    v
}

/// Writes `len` deterministic random bytes for `seed` to `path`, streaming.
pub fn write_random_file(path: &Path, len: u64, seed: u64) {
    let mut rng = XorShift::new(seed);
    let mut f = io::BufWriter::new(fs::File::create(path).expect("create random file"));
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        f.write_all(&buf[..n]).expect("write random file");
        left -= n as u64;
    }
    f.flush().expect("flush random file");
}

/// Panics unless `actual` exists and holds exactly the bytes of `expected`,
/// naming the first differing offset (never dumping megabytes).
#[track_caller]
pub fn assert_same_file(expected: &Path, actual: &Path) {
    let e_len = fs::metadata(expected)
        .unwrap_or_else(|e| panic!("{}: {e}", expected.display()))
        .len();
    let a_meta = fs::metadata(actual).unwrap_or_else(|e| {
        panic!(
            "{} should exist (copy of {}): {e}\n{}",
            actual.display(),
            expected.display(),
            tree(actual.parent().unwrap_or(Path::new("/")))
        )
    });
    assert_eq!(
        a_meta.len(),
        e_len,
        "{} has {} bytes, {} has {}",
        actual.display(),
        a_meta.len(),
        expected.display(),
        e_len
    );
    let mut a = io::BufReader::new(fs::File::open(actual).expect("open actual"));
    let mut e = io::BufReader::new(fs::File::open(expected).expect("open expected"));
    let (mut ab, mut eb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut e, &mut eb);
        let m = read_full(&mut a, &mut ab);
        assert_eq!(n, m, "short read comparing at offset {offset}");
        if n == 0 {
            return;
        }
        if eb[..n] != ab[..n] {
            let i = (0..n).find(|&i| eb[i] != ab[i]).unwrap_or(0);
            panic!(
                "{} differs from {} at byte {}",
                actual.display(),
                expected.display(),
                offset + i as u64
            );
        }
        offset += n as u64;
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    n
}

/// Panics unless `path` holds exactly `want`.
#[track_caller]
pub fn assert_file_bytes(path: &Path, want: &[u8]) {
    let got = fs::read(path).unwrap_or_else(|e| panic!("{} should exist: {e}", path.display()));
    assert!(
        got == want,
        "{} holds {} bytes ({:?}...), expected {} bytes ({:?}...)",
        path.display(),
        got.len(),
        String::from_utf8_lossy(&got[..got.len().min(40)]),
        want.len(),
        String::from_utf8_lossy(&want[..want.len().min(40)])
    );
}

/// One object of a directory snapshot (symlinks are not followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file and its contents.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symlink and its target.
    Link(PathBuf),
    /// Anything else.
    Other,
}

/// A tree as [`snapshot`] gives it: `(path, Some(bytes))` for a file,
/// `(path, None)` for a directory.
pub fn tree_of(entries: &[(&str, Option<&[u8]>)]) -> BTreeMap<PathBuf, Node> {
    entries
        .iter()
        .map(|(path, bytes)| {
            let node = match bytes {
                Some(b) => Node::File(b.to_vec()),
                None => Node::Dir,
            };
            (PathBuf::from(path), node)
        })
        .collect()
}

/// Writes `entries` (as in [`tree_of`]) beneath `dir`.
pub fn make_tree(dir: &Path, entries: &[(&str, Option<&[u8]>)]) {
    for (path, bytes) in entries {
        let path = dir.join(path);
        match bytes {
            Some(b) => {
                fs::create_dir_all(path.parent().expect("a parent")).unwrap();
                fs::write(&path, b).unwrap();
            }
            None => fs::create_dir_all(&path).unwrap(),
        }
    }
}

/// Every object beneath `dir`, by relative path, contents included.
/// Meant for small sentinel trees.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out, &[], true);
    out
}

/// Like [`snapshot`] but skipping the top-level entries named in `skip`.
pub fn snapshot_except(dir: &Path, skip: &[&str]) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out, skip, true);
    out
}

fn walk(top: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>, skip: &[&str], contents: bool) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for entry in rd.flatten() {
        let path = entry.path();
        if dir == top && skip.iter().any(|s| entry.file_name() == *s) {
            continue;
        }
        let rel = path.strip_prefix(top).unwrap_or(&path).to_path_buf();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            out.insert(rel, Node::Link(fs::read_link(&path).unwrap_or_default()));
        } else if ft.is_dir() {
            out.insert(rel, Node::Dir);
            walk(top, &path, out, skip, contents);
        } else if ft.is_file() {
            let bytes = if contents {
                fs::read(&path).unwrap_or_default()
            } else {
                Vec::new()
            };
            out.insert(rel, Node::File(bytes));
        } else {
            out.insert(rel, Node::Other);
        }
    }
}

/// A readable listing of the tree beneath `dir` (relative paths and sizes).
pub fn tree(dir: &Path) -> String {
    let mut s = format!("tree of {}:\n", dir.display());
    let mut stack = vec![dir.to_path_buf()];
    let mut lines = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for entry in rd.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {
                    lines.push(format!("  {rel}/"));
                    stack.push(path);
                }
                Ok(m) if m.file_type().is_symlink() => {
                    let target = fs::read_link(&path).unwrap_or_default();
                    lines.push(format!("  {rel} -> {}", target.display()));
                }
                Ok(m) => lines.push(format!("  {rel} ({} bytes)", m.len())),
                Err(e) => lines.push(format!("  {rel} ({e})")),
            }
        }
    }
    lines.sort();
    for l in lines {
        s.push_str(&l);
        s.push('\n');
    }
    s
}

/// The names directly inside `dir`, sorted (lossy UTF-8).
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Panics if any name beneath `dir` starts with the reserved temp prefix.
#[track_caller]
pub fn assert_no_temp_files(dir: &Path) {
    let mut all = BTreeMap::new();
    walk(dir, dir, &mut all, &[], false);
    let temps: Vec<PathBuf> = all
        .into_keys()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(limits::RESERVED_PREFIX))
        })
        .collect();
    assert!(
        temps.is_empty(),
        "temporary files left behind: {temps:?}\n{}",
        tree(dir)
    );
}

// ---------------------------------------------------------------- raw frames

/// The `Hello` a version-1 client sends, with the token of the server this
/// test thread started last.
pub fn hello() -> Message {
    hello_with(LAST_TOKEN.with(|t| t.borrow().clone()).into_bytes())
}

/// A `Hello` for this build's protocol version carrying `token`.
pub fn hello_with(token: Vec<u8>) -> Message {
    Message::Hello {
        magic: limits::MAGIC,
        min_version: limits::PROTOCOL_VERSION,
        max_version: limits::PROTOCOL_VERSION,
        flags: 0,
        token,
    }
}

/// Encodes one message as a whole frame.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode(msg, &mut out);
    out
}

/// What a raw read produced.
#[derive(Debug)]
pub enum Recv {
    /// A whole frame, decoded.
    Msg(Message),
    /// Clean end of stream.
    Closed,
    /// The connection was reset (the server closed with unread input).
    Reset,
    /// Nothing arrived within [`RAW_READ_TIMEOUT`].
    Timeout,
    /// The server sent bytes that do not decode.
    Bad(DecodeError),
    /// Another I/O error.
    Io(io::ErrorKind),
}

impl Recv {
    /// True for a close of any kind (clean or reset).
    pub fn is_close(&self) -> bool {
        matches!(self, Recv::Closed | Recv::Reset)
    }

    /// The error code if this is an `Error` frame.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Recv::Msg(Message::Error { code, .. }) => Some(*code),
            _ => None,
        }
    }
}

/// A raw connection to `ftxd` that speaks frames by hand: plain TCP, or
/// TLS (pinned to the server's fingerprint) for a TLS server.
pub struct Raw {
    /// The byte pipe (plain or TLS).
    pub stream: ftx::client::transport::Stream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects (no `Hello`); for a TLS server the TLS handshake runs
    /// first. A server that answers in a plain frame instead (busy) leaves
    /// that frame to be received.
    pub fn connect(addr: SocketAddr) -> Raw {
        use ftx::client::transport::{handshake, HandshakeError, Stream};
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(RAW_READ_TIMEOUT))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(RAW_READ_TIMEOUT))
            .expect("set write timeout");
        let _ = stream.set_nodelay(true);
        let Some(fp) = creds(addr).fingerprint else {
            return Raw {
                stream: Stream::Plain(stream),
                buf: Vec::new(),
            };
        };
        let keep = stream.try_clone().expect("clone socket");
        match handshake(stream, Some(fp)) {
            Ok((stream, _)) => Raw {
                stream,
                buf: Vec::new(),
            },
            Err(HandshakeError::NotTls(Some((code, message)))) => Raw {
                stream: Stream::Plain(keep),
                buf: encode(&Message::Error { code, message }),
            },
            Err(HandshakeError::NotTls(None)) => panic!("{addr} answered TLS in plain"),
            Err(HandshakeError::Mismatch { presented }) => {
                panic!("{addr} presented another certificate: {presented}")
            }
            Err(HandshakeError::Other(e)) => panic!("TLS handshake with {addr}: {e}"),
        }
    }

    /// Connects and completes the handshake, panicking unless `Welcome` comes back.
    #[track_caller]
    pub fn handshake(addr: SocketAddr) -> Raw {
        let mut raw = Raw::connect(addr);
        raw.send(&hello_with(creds(addr).token.into_bytes()))
            .expect("send Hello");
        match raw.recv() {
            Recv::Msg(Message::Welcome { version, .. }) => {
                assert_eq!(version, limits::PROTOCOL_VERSION, "server chose {version}");
            }
            other => panic!("expected Welcome after Hello, got {other:?}"),
        }
        raw
    }

    /// Sends one message as a frame.
    pub fn send(&mut self, msg: &Message) -> io::Result<()> {
        self.stream.write_all(&encode(msg))?;
        self.stream.flush()
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Reads the next frame, a close, or a timeout.
    pub fn recv(&mut self) -> Recv {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match frame::decode(&self.buf) {
                Ok(Some((msg, used))) => {
                    self.buf.drain(..used);
                    return Recv::Msg(msg);
                }
                Ok(None) => {}
                Err(e) => return Recv::Bad(e),
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Recv::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => match e.kind() {
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => return Recv::Timeout,
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                        return Recv::Reset
                    }
                    k => return Recv::Io(k),
                },
            }
        }
    }

    /// Reads until the server closes: panics on a timeout, returns the frames seen.
    #[track_caller]
    pub fn recv_until_close(&mut self) -> Vec<Message> {
        let mut msgs = Vec::new();
        loop {
            match self.recv() {
                Recv::Msg(m) => msgs.push(m),
                Recv::Closed | Recv::Reset => return msgs,
                other => panic!(
                    "expected the server to close the connection, got {other:?} after {msgs:?}"
                ),
            }
        }
    }
}

/// Opens a fresh connection, handshakes, sends `msg` and returns the reply.
pub fn raw_request(addr: SocketAddr, msg: &Message) -> Recv {
    let mut raw = Raw::handshake(addr);
    if let Err(e) = raw.send(msg) {
        return Recv::Io(e.kind());
    }
    raw.recv()
}

/// Lists the root through a raw connection and returns the names.
#[track_caller]
pub fn raw_list(raw: &mut Raw, path: &str) -> Vec<String> {
    raw.send(&Message::List {
        path: path.to_owned(),
    })
    .expect("send List");
    let mut names = Vec::new();
    loop {
        match raw.recv() {
            Recv::Msg(Message::Entries { entries, last }) => {
                names.extend(entries.into_iter().map(|e| e.name));
                if last {
                    return names;
                }
            }
            other => panic!("expected Entries for List {path:?}, got {other:?}"),
        }
    }
}

/// Parses plain `ls` output lines (`SIZE NAME`, name last) into (size, name).
#[track_caller]
pub fn parse_ls(lines: &[&str]) -> Vec<(u64, String)> {
    lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let l = l.trim_start();
            let (size, name) = l
                .split_once(char::is_whitespace)
                .unwrap_or_else(|| panic!("ls line {l:?} is not 'SIZE NAME'"));
            let size = size
                .parse()
                .unwrap_or_else(|_| panic!("ls line {l:?} does not start with a size in bytes"));
            (size, name.trim_start().to_owned())
        })
        .collect()
}

// ---------------------------------------------------------------- crash helpers

/// The hidden part file that holds an interrupted transfer to `dir/name`
/// (`.ftx-part-NAME`, on whichever side receives).
pub fn part_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{}part-{name}", limits::RESERVED_PREFIX))
}

/// Size of `path`, 0 if it does not exist.
pub fn size_or_zero(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// True when some process holds the `flock` of the file at `path` (a
/// transfer in progress); false when it is free or does not exist.
pub fn is_locked(path: &Path) -> bool {
    use std::os::unix::io::AsRawFd;
    let Ok(f) = fs::File::open(path) else {
        return false;
    };
    // SAFETY: flock on a descriptor we own; dropping `f` releases our lock.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    rc != 0
}

/// Waits (at most `timeout`) until nobody holds the part file at `path`:
/// after a client was killed, until the server has noticed and let go.
#[track_caller]
pub fn wait_unlocked(path: &Path, timeout: Duration, why: &dyn fmt::Display) {
    let deadline = Instant::now() + timeout;
    while is_locked(path) {
        assert!(
            Instant::now() < deadline,
            "{} still locked after {timeout:?}\n{why}",
            path.display()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// The stored name in an `uploaded 'L' as 'S' (...)` or
/// `downloaded 'R' as 'L' (...)` line.
#[track_caller]
pub fn stored_name(out: &Output) -> String {
    for line in out.stdout.lines() {
        if line.starts_with("uploaded '") || line.starts_with("downloaded '") {
            if let Some(rest) = line.split("' as '").nth(1) {
                if let Some((name, _)) = rest.split_once("' (") {
                    return name.to_owned();
                }
            }
        }
    }
    panic!("no 'uploaded/downloaded ... as ...' line\n{out}");
}

/// What a [`Proxy`] does to one direction of each connection it carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tamper {
    /// Invert every bit of the byte at this offset of the stream.
    pub flip_at: Option<u64>,
    /// Stop forwarding at this offset of the stream until [`Proxy::release`].
    pub hold_at: Option<u64>,
}

/// Longest a held direction waits for [`Proxy::release`].
const PROXY_HOLD_LIMIT: Duration = Duration::from_secs(60);

/// A TCP proxy on `127.0.0.1:0` in front of a server, one thread per
/// direction of each connection, that can corrupt or hold either stream.
/// Stopped (every socket shut down) on drop.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
    acceptor: Option<thread::JoinHandle<()>>,
}

#[derive(Default)]
struct ProxyShared {
    stop: AtomicBool,
    streams: Mutex<Vec<TcpStream>>,
    /// Bytes forwarded client → server and server → client, all connections.
    forwarded: [AtomicU64; 2],
    released: AtomicBool,
    holding: AtomicBool,
}

impl Proxy {
    /// Starts a proxy to `target`; `up` acts on client → server bytes,
    /// `down` on server → client bytes.
    pub fn start(target: SocketAddr, up: Tamper, down: Tamper) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        listener.set_nonblocking(true).expect("nonblocking proxy");
        let shared = Arc::new(ProxyShared::default());
        let sh = Arc::clone(&shared);
        let acceptor = thread::spawn(move || {
            while !sh.stop.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    Err(_) => continue,
                };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                for s in [&client, &server] {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_nodelay(true);
                    if let (Ok(mut list), Ok(c)) = (sh.streams.lock(), s.try_clone()) {
                        list.push(c);
                    }
                }
                let (a, b) = (Arc::clone(&sh), Arc::clone(&sh));
                thread::spawn(move || pump(client, server, up, &a, 0));
                thread::spawn(move || pump(s2, c2, down, &b, 1));
            }
        });
        // Clients of the proxy need the target's credentials (the same
        // certificate and token come through it).
        if let Ok(mut r) = registry().lock() {
            if let Some(c) = r.get(&target).cloned() {
                r.insert(addr, c);
            }
        }
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bytes forwarded so far from clients to the server.
    pub fn forwarded_up(&self) -> u64 {
        self.shared.forwarded[0].load(Ordering::SeqCst)
    }

    /// True while some direction waits at its `hold_at` offset.
    pub fn holding(&self) -> bool {
        self.shared.holding.load(Ordering::SeqCst)
    }

    /// Lets held directions go on.
    pub fn release(&self) {
        self.shared.released.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.released.store(true, Ordering::SeqCst);
        if let Ok(list) = self.shared.streams.lock() {
            for s in list.iter() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

/// Copies `from` to `to` until either ends, applying `tamper`; `dir` is 0
/// for client → server, 1 for server → client.
fn pump(mut from: TcpStream, mut to: TcpStream, tamper: Tamper, sh: &ProxyShared, dir: usize) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = 0u64;
    loop {
        let mut room = buf.len();
        if let Some(hold) = tamper.hold_at {
            if pos >= hold && !sh.released.load(Ordering::SeqCst) {
                sh.holding.store(true, Ordering::SeqCst);
                let deadline = Instant::now() + PROXY_HOLD_LIMIT;
                while !sh.released.load(Ordering::SeqCst) && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(2));
                }
                sh.holding.store(false, Ordering::SeqCst);
            } else if pos < hold {
                room = room.min((hold - pos) as usize);
            }
        }
        let n = match from.read(&mut buf[..room]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(at) = tamper.flip_at {
            if at >= pos && at < pos + n as u64 {
                buf[(at - pos) as usize] ^= 0xFF;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        pos += n as u64;
        sh.forwarded[dir].fetch_add(n as u64, Ordering::SeqCst);
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
    let _ = from.shutdown(std::net::Shutdown::Read);
}
