//! Starting servers: a real `ftxd` on a free port with its own temporary
//! root, the credentials it printed (token, fingerprint), and how each
//! address the harness knows is reached.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{ftxd_bin, run_batch, signal, wait_timeout, Output, STARTUP_TIMEOUT, STOP_TIMEOUT};

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

pub(super) fn registry() -> &'static Mutex<HashMap<SocketAddr, Creds>> {
    static R: OnceLock<Mutex<HashMap<SocketAddr, Creds>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

thread_local! {
    /// Extra environment for the next `ftxd` this thread starts
    /// ([`Server::start_with_env`]).
    static ENV: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
    /// The token of the server this test thread started last, for
    /// [`hello`] (tests start one server each).
    pub(super) static LAST_TOKEN: RefCell<String> = const { RefCell::new(String::new()) };
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

    /// [`Server::start`] (`root: None`) or [`Server::start_on`] with extra
    /// environment variables for `ftxd` (its test-only fault injection).
    pub fn start_with_env(root: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> Server {
        let base = tempfile::Builder::new()
            .prefix("ftx-test-")
            .tempdir()
            .expect("create temp dir");
        let root = match root {
            Some(root) => root.to_path_buf(),
            None => {
                let root = base.path().join("root");
                fs::create_dir(&root).expect("create server root");
                root
            }
        };
        ENV.with(|e| {
            *e.borrow_mut() = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        });
        let server = Server::start_in(base, root, "127.0.0.1:0", args);
        ENV.with(|e| e.borrow_mut().clear());
        server
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
            .envs(ENV.with(|e| e.borrow().clone()))
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
        Server::restart(earlier, "127.0.0.1:0", args)
    }

    /// [`Server::restart_of`] on `earlier`'s address too (the same port):
    /// the server a client connected to earlier, back after a restart,
    /// with the same certificate and tokens.
    pub fn restart_in_place(earlier: &Server, args: &[&str]) -> Server {
        Server::restart(earlier, &earlier.addr.to_string(), args)
    }

    fn restart(earlier: &Server, listen: &str, args: &[&str]) -> Server {
        let base = tempfile::Builder::new()
            .prefix("ftx-test-")
            .tempdir()
            .expect("create temp dir");
        let state = earlier.base.path().join("state");
        let mut all = vec!["--state-dir", state.to_str().expect("UTF-8 temp path")];
        all.extend_from_slice(args);
        let mut server = Server::start_in(base, earlier.root.clone(), listen, &all);
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
    /// Waits (at most 5 s) until the server logged `needle`, for lines
    /// its stderr reader has not collected yet; returns the logs.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let logs = self.logs();
            if logs.contains(needle) || Instant::now() >= deadline {
                return logs;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

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
