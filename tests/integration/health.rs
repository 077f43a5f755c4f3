//! `ftxd --health ADDR:PORT` and `--storage-timeout`: a load balancer's
//! health check gets 200 while the storage answers and 503 when it does
//! not; a storage call that hangs past the timeout fails that transfer
//! with a clear error while other clients go on, and `reput` finishes it
//! once the storage is back.
//!
//! A storage that hangs is made with ftxd's test-only fault variable
//! `FTXD_FAULT_STALL_WHILE=FILE`: while FILE exists, every call of its
//! disk helpers (flushes, fsyncs, hashes, health probes) waits.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{
    assert_same_file, ftxd_bin, parse_listening, register_plain, run_batch, signal, spawn_batch,
    wait_timeout, write_random_file, Server, STARTUP_TIMEOUT, STOP_TIMEOUT,
};

/// The health address ftxd printed (`ftxd: health checks on ADDR`).
fn health_addr(printed: &str) -> SocketAddr {
    printed
        .lines()
        .find_map(|l| l.split("health checks on ").nth(1))
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no health address printed:\n{printed}"))
}

/// One health check: sends `request` (may be empty) and reads the whole
/// answer: (status code, body).
fn check(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the health port");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer)
        .unwrap_or_else(|e| panic!("no answer from the health port: {e} (so far {answer:?})"));
    let code = answer
        .strip_prefix("HTTP/1.0 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.0 answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

const GET: &[u8] = b"GET /health HTTP/1.0\r\n\r\n";

/// Checks until the answer has `code` (the probe runs every second or
/// so), at most `within`; the last answer's body.
fn wait_for(addr: SocketAddr, code: u16, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (got, body) = check(addr, GET);
        if got == code {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "health still answers {got} ({body:?}), not {code}, after {within:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn health_answers_200_while_the_storage_answers() {
    let server = Server::start(&["--plain", "--open", "--health", "127.0.0.1:0"]);
    let health = health_addr(&server.logs());
    assert_eq!(wait_for(health, 200, Duration::from_secs(5)), "ok\n");
    // A bare TCP check that sends nothing is answered too, promptly.
    let started = Instant::now();
    let (code, _) = check(health, b"");
    assert_eq!(code, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Any bytes will do, and a flood is not read to its end.
    assert_eq!(check(health, b"hello").0, 200);
    assert_eq!(check(health, &[b'x'; 4000]).0, 200);
    // The probe leaves nothing behind in the root, and ftx still works.
    thread::sleep(Duration::from_millis(1500));
    let names: Vec<_> = fs::read_dir(server.root()).unwrap().collect();
    assert!(names.is_empty(), "{names:?}");
    let cwd = server.scratch("c");
    run_batch(&server.addr_arg(), &cwd, "ls\n").assert_success();
}

#[test]
fn health_answers_503_when_the_root_is_gone_and_200_once_back() {
    let server = Server::start(&["--plain", "--open", "--health", "127.0.0.1:0"]);
    let health = health_addr(&server.logs());
    wait_for(health, 200, Duration::from_secs(5));
    // The mount lost: the probe opens the root by its path.
    let away = server.base().join("away");
    fs::rename(server.root(), &away).unwrap();
    let why = wait_for(health, 503, Duration::from_secs(5));
    assert!(why.starts_with("storage probe failed: "), "{why:?}");
    assert_eq!(why.lines().count(), 1, "{why:?}");
    fs::rename(&away, server.root()).unwrap();
    wait_for(health, 200, Duration::from_secs(5));
}

#[test]
fn a_read_only_server_probes_without_writing() {
    let server = Server::start(&[
        "--plain",
        "--open",
        "--read-only",
        "--health",
        "127.0.0.1:0",
    ]);
    let health = health_addr(&server.logs());
    assert_eq!(wait_for(health, 200, Duration::from_secs(5)), "ok\n");
}

/// An ftxd started by hand, with the fault variable set: the harness's
/// [`Server`] gives its children no environment of their own.
struct Node {
    child: Option<Child>,
    addr: SocketAddr,
    health: SocketAddr,
    root: PathBuf,
    stderr: Arc<Mutex<String>>,
}

impl Node {
    /// `ftxd --plain --open` on `root`, storage stalled while `stall`
    /// exists, with `args`.
    fn start(root: &Path, stall: &Path, args: &[&str]) -> Node {
        let mut child = Command::new(ftxd_bin())
            .args(["--plain", "--open", "--listen", "127.0.0.1:0"])
            .args(["--health", "127.0.0.1:0", "--root"])
            .arg(root)
            .args(args)
            .env("FTXD_FAULT_STALL_WHILE", stall)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ftxd");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            let mut printed = String::new();
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                printed.push_str(&line);
                printed.push('\n');
                if line.contains("listening on") {
                    let _ = tx.send(printed.clone());
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let err = child.stderr.take().expect("piped stderr");
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let mut node = Node {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            health: SocketAddr::from(([127, 0, 0, 1], 0)),
            root: root.to_path_buf(),
            stderr,
        };
        let printed = rx
            .recv_timeout(STARTUP_TIMEOUT)
            .unwrap_or_else(|_| panic!("ftxd did not start\n{}", node.logs()));
        node.addr = parse_listening(&printed).expect("the listening address");
        node.health = health_addr(&printed);
        register_plain(node.addr);
        node
    }

    fn logs(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(child.id(), libc::SIGTERM);
        if wait_timeout(&mut child, STOP_TIMEOUT).is_none() {
            signal(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "ftxd on {} (root {}):\n{}",
                self.addr,
                self.root.display(),
                self.logs()
            );
        }
    }
}

#[test]
fn a_hung_storage_fails_the_transfer_not_the_node() {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    let cwd = base.path().join("client");
    fs::create_dir_all(&root).unwrap();
    fs::create_dir_all(&cwd).unwrap();
    let stall = base.path().join("stall");
    let node = Node::start(&root, &stall, &["--storage-timeout", "1"]);
    let addr = node.addr.to_string();
    fs::write(root.join("present.txt"), b"still served\n").unwrap();
    // Big enough that a flush starts on a helper (every MiB, fsync on).
    write_random_file(&cwd.join("big.bin"), 4 << 20, 7);
    wait_for(node.health, 200, Duration::from_secs(5));

    // The storage hangs: the upload's flush does not come back.
    fs::write(&stall, b"").unwrap();
    let started = Instant::now();
    let put = spawn_batch(&addr, &cwd, "put big.bin\n");
    // Meanwhile another client lists and downloads: the loop goes on.
    thread::sleep(Duration::from_millis(300));
    let other = run_batch(&addr, &cwd, "ls\nget present.txt got.txt\n");
    other.assert_success().assert_stdout_contains("present.txt");
    assert_eq!(fs::read(cwd.join("got.txt")).unwrap(), b"still served\n");
    let put = put.wait(Duration::from_secs(20));
    put.assert_error("the storage did not answer within 1 s");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "the put failed after {took:?}"
    );
    // The health check sees the hung probe.
    let why = wait_for(node.health, 503, Duration::from_secs(5));
    assert_eq!(why, "the storage did not answer within 1 s\n");
    // The node still serves while the storage hangs.
    run_batch(&addr, &cwd, "ls\n").assert_success();

    // The storage is back: the stuck calls return (their outcomes are
    // dropped), the check says so, and reput finishes the upload.
    fs::remove_file(&stall).unwrap();
    wait_for(node.health, 200, Duration::from_secs(5));
    let reput = run_batch(&addr, &cwd, "reput big.bin\n");
    reput.assert_success();
    assert_same_file(&cwd.join("big.bin"), &root.join("big.bin"));
    let logs = node.logs();
    assert!(
        logs.contains("the storage did not answer within 1 s"),
        "{logs}"
    );
}
