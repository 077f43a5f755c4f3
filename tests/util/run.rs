//! Driving the programs: `ftx` in batch mode (or with any arguments) and
//! `ftxd` for its flags, with a timeout, output captured, killed by PID;
//! and reading what they printed.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{ftx_bin, ftxd_bin, registry, RUN_TIMEOUT};

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

/// `clients` clients of `server`, each in its own directory, `put` one file
/// of `size(i)` random bytes (seeded by `seed + i`) at the same moment;
/// their directories, file names and outputs, in client order.
pub fn puts_at_once(
    server: &super::Server,
    clients: usize,
    size: impl Fn(usize) -> u64,
    seed: u64,
) -> Vec<(std::path::PathBuf, String, Output)> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(clients));
    let mut handles = Vec::new();
    for i in 0..clients {
        let dir = server.scratch(&format!("client{i}"));
        let name = format!("f{i}.bin");
        super::write_random_file(&dir.join(&name), size(i), seed + i as u64);
        let addr = server.addr_arg();
        let barrier = std::sync::Arc::clone(&barrier);
        handles.push(thread::spawn(move || {
            barrier.wait();
            let out = run_batch(&addr, &dir, &format!("put {name}\n"));
            (dir, name, out)
        }));
    }
    handles.into_iter().map(|h| h.join().unwrap()).collect()
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
