//! A connection that is really lost between two commands — the server
//! killed, stopped, or closing an idle connection — through the real `ftx`
//! and `ftxd`: the next command tries to connect again; when it cannot,
//! it says `connection lost: REASON` once, in plain words (never as a
//! "protocol error" of its own request, never with an empty name `''`),
//! and why reconnecting failed; every later one tries again and says it
//! is not connected in one line, and a batch stops there like at any
//! failure. (Reconnecting that works: `reconnect.rs`.)
//!
//! `ftx` is fed its commands through a pipe a line at a time, so the
//! server can be killed (or left idle) between two of them.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{
    encode, ftx_access, ftx_bin, register_plain, signal, wait_timeout, Output, Server,
};
use ftx::proto::error::ErrorCode;
use ftx::proto::frame;
use ftx::proto::limits::{MIN_WINDOW, PROTOCOL_VERSION};
use ftx::proto::message::Message;

/// How long one `ftx` run here may take in all.
const RUN_LIMIT: Duration = Duration::from_secs(10);
/// How long a command may take to show its result.
const STEP_LIMIT: Duration = Duration::from_secs(5);

/// How every command on a lost connection that cannot be reconnected
/// fails after the first.
const NOT_CONNECTED: &str = "not connected; reconnecting failed: cannot connect to ";

/// A running `ftx ADDR [ARGS]` whose standard input the test writes a line
/// at a time.
pub(crate) struct Shell {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    what: String,
    start: Instant,
    _home: tempfile::TempDir,
}

impl Shell {
    /// Starts `ftx ADDR ARGS` from `cwd` with the harness's credentials for
    /// `server`, in a throw-away home, without colours.
    pub(crate) fn start(server: &Server, cwd: &Path, args: &[&str]) -> Shell {
        let addr = server.addr_arg();
        let (access, envs) = ftx_access(&addr);
        let home = tempfile::tempdir().expect("temp home");
        let mut all = vec![addr.clone()];
        all.extend(args.iter().map(|a| a.to_string()));
        all.extend(access);
        let what = format!("ftx {}", all.join(" "));
        let mut child = Command::new(ftx_bin())
            .args(&all)
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env_remove("RUST_LOG")
            .env_remove("FTX_TOKEN")
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {what}: {e}"));
        let stdout = collect(child.stdout.take().expect("piped stdout"));
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        Shell {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            what,
            start: Instant::now(),
            _home: home,
        }
    }

    /// Writes `lines` to its standard input.
    pub(crate) fn send(&mut self, lines: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(lines.as_bytes()).expect("write to ftx");
        stdin.flush().expect("flush to ftx");
    }

    /// Waits until standard output holds `needle`.
    pub(crate) fn wait_stdout(&mut self, needle: &str) {
        self.wait_for(needle, false);
    }

    /// Waits until standard error holds `needle`.
    pub(crate) fn wait_stderr(&mut self, needle: &str) {
        self.wait_for(needle, true);
    }

    fn wait_for(&mut self, needle: &str, on_stderr: bool) {
        let deadline = Instant::now() + STEP_LIMIT;
        let stream = if on_stderr {
            &self.stderr
        } else {
            &self.stdout
        };
        while !stream.lock().unwrap().contains(needle) {
            if Instant::now() > deadline || matches!(self.child.try_wait(), Ok(Some(_))) {
                panic!(
                    "{}: {} never showed {needle:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.what,
                    if on_stderr { "stderr" } else { "stdout" },
                    self.stdout.lock().unwrap(),
                    self.stderr.lock().unwrap()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Closes standard input and waits for the exit (killing `ftx` after
    /// [`RUN_LIMIT`], which fails the test).
    pub(crate) fn finish(mut self) -> Output {
        drop(self.stdin.take());
        let left = RUN_LIMIT.saturating_sub(self.start.elapsed());
        let status = match wait_timeout(&mut self.child, left) {
            Some(status) => status,
            None => {
                signal(self.child.id(), libc::SIGKILL);
                let status = self.child.wait().expect("wait for ftx");
                panic!(
                    "{} did not finish in {RUN_LIMIT:?}; killed ({status})",
                    self.what
                );
            }
        };
        // The readers end with the process's pipes.
        thread::sleep(Duration::from_millis(50));
        Output {
            what: self.what.clone(),
            status,
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
            elapsed: self.start.elapsed(),
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal(self.child.id(), libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Reads `r` to the end on a thread, into a string the test can look at
/// while the program runs.
fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

/// The checks every run with a lost connection that cannot be
/// reconnected passes: one `connection lost` line, saying `reason` and
/// why reconnecting failed, for the first command after the loss (an `ls`
/// of the root); `later` more lines, one per later command, saying only
/// that it is not connected and why reconnecting failed again; no
/// "protocol error", no broken pipe, no `''`.
#[track_caller]
fn assert_lost_once(out: &Output, reason: &str, later: &[&str]) {
    out.assert_failure();
    let errors = out.error_lines();
    let lost: Vec<_> = out
        .stderr
        .lines()
        .filter(|l| l.contains("connection lost"))
        .collect();
    assert_eq!(lost.len(), 1, "exactly one 'connection lost' line\n{out}");
    assert!(
        lost[0].starts_with("error: ls: connection lost: ")
            && lost[0].contains(reason)
            && lost[0].contains("; reconnecting failed: cannot connect to "),
        "expected 'error: ls: connection lost: ...{reason}...; reconnecting failed: ...'\n{out}"
    );
    for bad in ["protocol error", "''", "Broken pipe", "Reconnected"] {
        assert!(!out.stderr.contains(bad), "stderr shows {bad:?}\n{out}");
    }
    assert_eq!(errors.len(), 1 + later.len(), "{out}");
    for (line, cmd) in errors[1..].iter().zip(later) {
        assert!(
            line.starts_with(&format!("error: {cmd}: {NOT_CONNECTED}")),
            "then one short line per later command, not {line:?}\n{out}"
        );
    }
}

/// Runs `ls` (root holds `here.txt`) and waits for its listing, so the
/// connection is known good and idle before the test breaks it.
fn first_ls(shell: &mut Shell) {
    shell.send("ls\n");
    shell.wait_stdout("here.txt");
}

fn server_with_a_file(args: &[&str]) -> Server {
    let server = Server::start(args);
    std::fs::write(server.root().join("here.txt"), b"hi").unwrap();
    server
}

#[test]
fn server_killed_between_commands_is_one_connection_lost_line() {
    let mut server = server_with_a_file(&[]);
    let cwd = server.scratch("client");
    let mut shell = Shell::start(&server, &cwd, &[]);
    first_ls(&mut shell);
    server.kill();
    shell.send("ls\nls\nmkdir d\nget here.txt\nlpwd\n");
    let out = shell.finish();
    assert_lost_once(
        &out,
        "server closed the connection",
        &["ls", "mkdir", "get"],
    );
    // Local commands still work.
    out.assert_stdout_contains("Local directory: ");
    assert!(!cwd.join("here.txt").exists());
}

#[test]
fn server_stopped_between_commands_is_one_connection_lost_line() {
    let mut server = server_with_a_file(&["--plain", "--open"]);
    let cwd = server.scratch("client");
    let mut shell = Shell::start(&server, &cwd, &[]);
    first_ls(&mut shell);
    assert!(server.terminate().is_some_and(|s| s.success()));
    shell.send("ls\nput /dev/null x\nls\n");
    let out = shell.finish();
    assert_lost_once(&out, "server closed the connection", &["put", "ls"]);
}

#[test]
fn idle_timeout_is_one_reconnected_line_with_the_servers_reason() {
    let server = server_with_a_file(&["--idle-timeout", "1"]);
    let cwd = server.scratch("client");
    let mut shell = Shell::start(&server, &cwd, &[]);
    first_ls(&mut shell);
    // The server closes the idle connection after a second, with its
    // "timed out" error; the client finds it before the next command,
    // connects again and runs it.
    thread::sleep(Duration::from_millis(2500));
    shell.send("ls\nrm here.txt\nls\n");
    let out = shell.finish();
    out.assert_success();
    let notes: Vec<_> = out
        .stderr
        .lines()
        .filter(|l| l.contains("Reconnected"))
        .collect();
    assert_eq!(
        notes,
        [format!(
            "Reconnected to server at {} (connection lost: timed out: connection idle for too long)",
            server.addr()
        )],
        "{out}"
    );
    assert!(out.error_lines().is_empty(), "{out}");
    assert!(!server.root().join("here.txt").exists());
}

#[test]
fn batch_stops_at_the_lost_connection_unless_the_line_allows_failure() {
    let mut server = server_with_a_file(&[]);
    let cwd = server.scratch("client");
    let mut shell = Shell::start(&server, &cwd, &["-b", "-"]);
    first_ls(&mut shell);
    server.kill();
    shell.send("-ls\n-mkdir d\nls\nlpwd\n");
    let out = shell.finish();
    assert_lost_once(&out, "server closed the connection", &["mkdir", "ls"]);
    // The failing `ls` (no `-`) stopped the batch: `lpwd` never ran.
    assert_eq!(out.echoed(), ["ls", "-ls", "-mkdir d", "ls"], "{out}");
    out.assert_stdout_lacks("Local directory");

    let mut server = server_with_a_file(&[]);
    let mut shell = Shell::start(&server, &cwd, &["-b", "-"]);
    first_ls(&mut shell);
    server.kill();
    shell.send("ls\nlpwd\n");
    let out = shell.finish();
    assert_lost_once(&out, "server closed the connection", &[]);
    assert_eq!(out.echoed(), ["ls", "ls"], "{out}");
}

/// A plain server on `127.0.0.1` that completes the handshake, answers
/// each `List` with the next of `answers`, and closes after the last.
fn scripted_server(answers: Vec<Message>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    register_plain(addr);
    thread::spawn(move || {
        let Ok((mut sock, _)) = listener.accept() else {
            return;
        };
        sock.set_read_timeout(Some(RUN_LIMIT)).ok();
        let mut buf = Vec::new();
        let mut next = |sock: &mut std::net::TcpStream| -> Option<Message> {
            loop {
                if let Ok(Some((msg, used))) = frame::decode(&buf) {
                    buf.drain(..used);
                    return Some(msg);
                }
                let mut chunk = [0u8; 4096];
                match sock.read(&mut chunk) {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        };
        if !matches!(next(&mut sock), Some(Message::Hello { .. })) {
            return;
        }
        let welcome = Message::Welcome {
            version: PROTOCOL_VERSION,
            flags: 0,
            window: MIN_WINDOW,
            server: "scripted".into(),
        };
        if sock.write_all(&encode(&welcome)).is_err() {
            return;
        }
        for answer in answers {
            if !matches!(next(&mut sock), Some(Message::List { .. })) {
                return;
            }
            if sock.write_all(&encode(&answer)).is_err() {
                return;
            }
        }
    });
    addr.to_string()
}

#[test]
fn ls_of_the_root_never_shows_an_empty_name() {
    let error = |code, message: &str| Message::Error {
        code,
        message: message.into(),
    };
    let addr = scripted_server(vec![
        error(ErrorCode::PermissionDenied, ""),
        error(ErrorCode::Io, "disk failure"),
        error(ErrorCode::NotFound, ""),
        // A protocol error that ends the connection, in answer to `ls`:
        // the server closes after it.
        error(ErrorCode::Protocol, "unexpected frame type 0x10 here"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out =
        crate::util::run_batch_timeout(&addr, dir.path(), "-ls\n-ls\n-ls\n-ls\n-ls\n", RUN_LIMIT);
    assert_eq!(
        out.error_lines()[..4],
        [
            "error: ls: permission denied",
            "error: ls: server I/O error: disk failure",
            "error: ls: not found on server",
            "error: ls: connection lost: protocol error: unexpected frame type 0x10 here",
        ],
        "{out}"
    );
    // The fifth finds nobody to connect to again.
    let last = out.error_lines()[4];
    assert!(
        last.starts_with("error: ls: not connected; reconnecting failed: "),
        "{out}"
    );
    assert!(!out.stderr.contains("''"), "{out}");
}

/// Ctrl-C that reaches ftx after its last byte and `Done` went out, while
/// the server is committing: the server stores the file (its `PutDone`
/// crosses our `Cancel` on the wire), and ftx says it was uploaded, not
/// cancelled, so the user neither believes it missing nor makes a second
/// copy with `reput`.
#[test]
fn a_cancel_that_crosses_put_done_reports_the_upload() {
    use crate::util::fake::FakeServer;
    use crate::util::pty::Pty;
    use ftx::proto::message::{Message, FEATURE_ATTRS};
    use std::time::Instant;
    let fake = FakeServer::start(FEATURE_ATTRS, "fake", |msg| match msg {
        Message::Put { path, .. } => vec![Message::PutReady {
            name: path.clone(),
            offset: 0,
            digest: [0; 32],
            partial: 0,
            flags: 0,
        }],
        Message::Done { size, .. } => {
            // Committing, slowly: the Ctrl-C comes meanwhile.
            std::thread::sleep(Duration::from_millis(1500));
            vec![Message::PutDone {
                name: "late.bin".into(),
                size: *size,
            }]
        }
        _ => Vec::new(),
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("late.bin"), vec![7u8; 100_000]).unwrap();
    let home = dir.path().join("home");
    let addr = fake.addr();
    let mut pty = Pty::spawn(&[&addr], dir.path(), &[("HOME", &home)]);
    pty.expect("ftx> ");
    pty.send("put late.bin\r");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fake
        .received()
        .iter()
        .any(|m| matches!(m, Message::Done { .. }))
    {
        assert!(Instant::now() < deadline, "the upload never ended");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    pty.send("\x03");
    pty.expect("uploaded 'late.bin' as 'late.bin' (100000 bytes");
    pty.expect("ftx> ");
    // The Ctrl-C did reach ftx while the server was committing (without
    // the fix this same run says "cancelled").
    let text = pty.text();
    assert!(text.contains("^Cuploaded 'late.bin'"), "{text}");
    assert!(!text.contains("cancelled"), "{text}");
    pty.send("exit\r");
    assert!(pty.wait(Duration::from_secs(10)).success());
}
