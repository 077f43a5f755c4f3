//! What running ftxd as a service relies on, through the real binaries:
//! `--config FILE` under the flags, `--check-config` saying what a start
//! would say and making nothing, and `ftx|ftxd completions SHELL`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::util::{ftx_bin, ftxd_bin, run_cmd, Output};

const T: Duration = Duration::from_secs(20);

fn ftxd(dir: &Path, args: &[&str]) -> Output {
    run_cmd(ftxd_bin(), args, dir, None, T)
}

/// A config file in `dir` serving `dir/root` on a free port, with state in
/// `dir/state`, and `extra` lines after.
fn config(dir: &Path, extra: &str) -> String {
    let text = format!(
        "root = \"{}\"\nstate-dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n{extra}",
        dir.join("root").display(),
        dir.join("state").display()
    );
    let file = dir.join("ftxd.toml");
    fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_owned()
}

#[test]
fn check_config_reports_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("root")).unwrap();
    let file = config(dir.path(), "read-only = true\n");
    let out = ftxd(dir.path(), &["--config", &file, "--check-config"]);
    assert!(out.success(), "{out}");
    assert!(out.stdout.starts_with("ftxd: configuration OK\n"), "{out}");
    assert!(out.stdout.contains("listen: 127.0.0.1:0\n"), "{out}");
    assert!(out.stdout.contains("read-only: yes\n"), "{out}");
    assert!(out.stdout.contains("(made at the first start)"), "{out}");
    assert!(
        !dir.path().join("state").exists(),
        "--check-config made the state directory"
    );
    // A flag overrides the file: --listen, and --plain --open need no state.
    let out = ftxd(
        dir.path(),
        &[
            "--config",
            &file,
            "--check-config",
            "--listen",
            "127.0.0.1:7",
            "--plain",
            "--open",
        ],
    );
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("listen: 127.0.0.1:7\n"), "{out}");
    assert!(out.stdout.contains("state directory: none"), "{out}");
    assert!(
        out.stdout
            .contains("access: plain (no TLS), open (no token)"),
        "{out}"
    );
}

/// `--check-config` fails with the very line a start fails with.
#[test]
fn check_config_errors_are_the_start_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), "");
    let same = |extra: &[&str], want: &str| {
        let mut check = vec!["--config", file.as_str(), "--check-config"];
        check.extend_from_slice(extra);
        let checked = ftxd(dir.path(), &check);
        let mut start = vec!["--config", file.as_str()];
        start.extend_from_slice(extra);
        let started = ftxd(dir.path(), &start);
        assert_eq!(checked.status.code(), Some(1), "{checked}");
        assert_eq!(started.status.code(), Some(1), "{started}");
        assert_eq!(checked.stderr, started.stderr);
        assert!(checked.stderr.starts_with(want), "{checked}");
        assert!(checked.stdout.is_empty(), "{checked}");
    };
    let root = dir.path().join("root");
    same(
        &[],
        &format!("error: root '{}' does not exist\n", root.display()),
    );
    fs::create_dir(&root).unwrap();
    same(
        &["--max-per-ip", "0"],
        "error: --max-per-ip must be at least 1\n",
    );
    // A port taken by someone else: said before the state is looked at,
    // and a failed start makes (and shows) no token.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_at = busy.local_addr().unwrap().to_string();
    same(
        &["--listen", &busy_at],
        &format!("error: cannot listen on {busy_at}: "),
    );
    assert!(
        !dir.path().join("state").exists(),
        "a failed start made its state"
    );
    drop(busy);
    let state = dir.path().join("state");
    fs::create_dir(&state).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
    same(&[], "error: ");
    assert!(ftxd(dir.path(), &["--config", &file, "--check-config"])
        .stderr
        .contains("has mode 777"));
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(
        dir.path().join("ftxd.toml"),
        "root = \"/\"\nnot-a-flag = 1\n",
    )
    .unwrap();
    same(&[], "error: config file '");
    assert!(ftxd(dir.path(), &["--config", &file, "--check-config"])
        .stderr
        .contains("line 2: unknown field `not-a-flag`"));
}

#[test]
fn completions_for_every_shell_name_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = ftxd(dir.path(), &["completions", shell]);
        assert!(out.success(), "{out}");
        for word in ["token", "config", "check-config", "max-file-size"] {
            assert!(out.stdout.contains(word), "ftxd {shell}: {word} missing");
        }
        let out = run_cmd(ftx_bin(), &["completions", shell], dir.path(), None, T);
        assert!(out.success(), "{out}");
        for word in ["completions", "token-file", "batch"] {
            assert!(out.stdout.contains(word), "ftx {shell}: {word} missing");
        }
    }
    let out = ftxd(dir.path(), &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{out}");
}

/// Every log line about a client names its address and, once its token
/// was accepted, the token's name; the token itself never appears.
#[test]
fn log_lines_about_a_client_name_its_token() {
    use crate::util::Server;
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("a.txt"), b"a").unwrap();
    server
        .batch(&cwd, "put a.txt\nget a.txt b.txt\n")
        .assert_success();
    let secret = server.creds().token.clone();
    // The log is stderr (stdout shows the first token once, by design).
    let all = server.logs();
    let logs = all.split("--- ftxd stderr ---").nth(1).unwrap_or_default();
    let stored: Vec<&str> = logs.lines().filter(|l| l.contains("stored as")).collect();
    assert_eq!(stored.len(), 1, "{logs}");
    assert!(stored[0].contains("127.0.0.1:"), "{logs}");
    assert!(stored[0].contains("[default]: put 'a.txt'"), "{logs}");
    assert!(!secret.is_empty() && !logs.contains(&secret), "{logs}");
}

/// A client gone in the middle of an upload is logged as a lost
/// connection, not as a protocol error of its own.
#[test]
fn a_client_gone_midway_is_logged_as_a_lost_connection() {
    use crate::util::{encode, Raw, Server};
    use ftx::proto::message::Message;
    let server = Server::start(&["--no-fsync"]);
    let mut raw = Raw::handshake(server.addr());
    raw.send(&Message::Put {
        path: "half.bin".into(),
        size: 1 << 20,
        offset: 0,
        flags: 0,
    })
    .unwrap();
    let data = encode(&Message::Data {
        offset: 0,
        data: vec![7; 64 * 1024],
    });
    // The whole first frame, then half of a second one, then gone.
    raw.send_raw(&data).unwrap();
    raw.send_raw(&data[..data.len() / 2]).unwrap();
    drop(raw);
    let deadline = std::time::Instant::now() + T;
    loop {
        let logs = server.logs();
        if let Some(line) = logs.lines().find(|l| l.contains("put 'half.bin' failed")) {
            assert!(line.contains("failed: connection lost after"), "{logs}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{logs}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM while ftxd is still starting (its key just made, the loop not
/// yet running) is a clean stop with exit status 0, as later: a service
/// manager that stops it during the start sees no failure.
#[test]
fn sigterm_during_the_start_is_a_clean_stop() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("root")).unwrap();
    let mut child = Command::new(ftxd_bin())
        .args(["--listen", "127.0.0.1:0", "--root"])
        .arg(dir.path().join("root"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    // The first line comes once the key is made, before the port is taken.
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("created a new key"), "{first}");
    crate::util::signal(child.id(), libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}
