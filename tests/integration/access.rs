//! Who may connect (issue 7): tokens refused before any file operation,
//! read-only tokens, trust on first use and a changed certificate, and a
//! plain/TLS mismatch in both directions answered within a second.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::util::{
    assert_file_bytes, ftx_bin, ftxd_bin, run_cmd, run_cmd_env, snapshot, Output, Server,
    RUN_TIMEOUT,
};

/// `ftx ADDR -b -` with exactly these extra flags and environment.
fn ftx(
    server: &Server,
    cwd: &Path,
    flags: &[&str],
    envs: &[(&str, &str)],
    home: Option<&Path>,
    script: &str,
) -> Output {
    let addr = server.addr_arg();
    let mut args = vec![addr.as_str(), "-b", "-"];
    args.extend_from_slice(flags);
    run_cmd_env(
        ftx_bin(),
        &args,
        cwd,
        Some(script.as_bytes()),
        RUN_TIMEOUT,
        envs,
        home,
    )
}

/// `ftxd token ARGS --state-dir` of `server`.
fn token_cmd(server: &Server, args: &[&str]) -> Output {
    let state = server.base().join("state");
    let mut all = vec!["token"];
    all.extend_from_slice(args);
    all.extend(["--state-dir", state.to_str().unwrap()]);
    run_cmd(ftxd_bin(), &all, server.base(), None, RUN_TIMEOUT)
}

fn pinned(server: &Server) -> Vec<&str> {
    vec![
        "--fingerprint",
        server.creds().fingerprint.as_deref().unwrap(),
    ]
}

#[test]
fn wrong_missing_and_revoked_tokens_are_refused_before_any_file_operation() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("a.txt"), "a").unwrap();
    fs::write(server.root().join("keep.txt"), "keep").unwrap();
    let before = snapshot(server.root());
    let script = "put a.txt\nmkdir d\nrm keep.txt\n";
    let pin = pinned(&server);

    let wrong = ftx(
        &server,
        &cwd,
        &pin,
        &[("FTX_TOKEN", "ftx_0000")],
        None,
        script,
    );
    wrong.assert_error("not accepted");
    let missing = ftx(&server, &cwd, &pin, &[], None, script);
    missing.assert_error("this server needs an access token");
    assert_eq!(snapshot(server.root()), before, "{wrong}\n{missing}");

    let added = token_cmd(&server, &["add", "laptop"]);
    added.assert_success();
    let token = added.stdout.trim().to_owned();
    assert!(token.starts_with("ftx_"), "{added}");
    ftx(
        &server,
        &cwd,
        &pin,
        &[("FTX_TOKEN", &token)],
        None,
        "mkdir d\n",
    )
    .assert_success();
    token_cmd(&server, &["list"]).assert_stdout_contains("laptop read-write");
    token_cmd(&server, &["revoke", "laptop"]).assert_success();
    // The running server sees the revocation at the next connection.
    let revoked = ftx(
        &server,
        &cwd,
        &pin,
        &[("FTX_TOKEN", &token)],
        None,
        "mkdir e\n",
    );
    revoked.assert_error("not accepted");
    assert!(!server.root().join("e").exists(), "{revoked}");
    assert!(
        server.logs().contains("access refused"),
        "{}",
        server.logs()
    );
    // The first token still works (3 failures are below the slow-down).
    server.batch(&cwd, "ls\n").assert_success();
}

#[test]
fn a_read_only_token_can_list_and_get_but_change_nothing() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("up.txt"), "up").unwrap();
    fs::write(server.root().join("f.txt"), "file").unwrap();
    fs::create_dir(server.root().join("empty")).unwrap();
    let added = token_cmd(&server, &["add", "guest", "--read-only"]);
    added.assert_success();
    let token = added.stdout.trim().to_owned();
    let pin = pinned(&server);
    let env = [("FTX_TOKEN", token.as_str())];
    let before = snapshot(server.root());

    let ok = ftx(&server, &cwd, &pin, &env, None, "ls\nget f.txt\n");
    ok.assert_success().assert_stdout_contains("f.txt");
    assert_file_bytes(&cwd.join("f.txt"), b"file");
    for cmd in [
        "put up.txt",
        "put -f up.txt f.txt",
        "reput up.txt",
        "mkdir d",
        "rm f.txt",
        "rmdir empty",
        "mkdir -p d/e",
        "rename f.txt g.txt",
    ] {
        let out = ftx(&server, &cwd, &pin, &env, None, &format!("{cmd}\n"));
        out.assert_error("read-only");
        assert_eq!(
            snapshot(server.root()),
            before,
            "{cmd} changed the root\n{out}"
        );
    }
}

#[test]
fn accept_new_stores_a_host_once_and_a_changed_certificate_is_refused() {
    let a = Server::start(&[]);
    // Outlives server A's temporary directory.
    let client = tempfile::tempdir().unwrap();
    let cwd = client.path().join("client");
    let home = client.path().join("home");
    fs::create_dir_all(&cwd).unwrap();
    fs::create_dir_all(&home).unwrap();
    let token_a = a.creds().token.clone();
    let env = [("FTX_TOKEN", token_a.as_str())];
    // Unknown host in batch mode: refused, nothing stored.
    let unknown = ftx(&a, &cwd, &[], &env, Some(&home), "ls\n");
    unknown.assert_error("unknown server");
    let known_hosts = home.join("data/ftx/known_hosts");
    assert!(!known_hosts.exists(), "{unknown}");
    // --accept-new stores it, once.
    let first = ftx(&a, &cwd, &["--accept-new"], &env, Some(&home), "ls\n");
    first.assert_success();
    assert!(first.stderr.contains("permanently added"), "{first}");
    let second = ftx(&a, &cwd, &["--accept-new"], &env, Some(&home), "ls\n");
    second.assert_success();
    assert!(!second.stderr.contains("permanently added"), "{second}");
    let fp_a = a.creds().fingerprint.clone().unwrap();
    let text = fs::read_to_string(&known_hosts).unwrap();
    assert_eq!(text, format!("{} {fp_a}\n", a.addr_arg()));

    // Another server (another key) behind the same address and port: what
    // a proxy with its own certificate looks like to the client.
    let addr = a.addr();
    a.stop();
    let b = Server::start_at_addr(addr, &[]);
    let token_b = b.creds().token.clone();
    let env_b = [("FTX_TOKEN", token_b.as_str())];
    for flags in [&[][..], &["--accept-new"][..]] {
        let out = ftx(&b, &cwd, flags, &env_b, Some(&home), "mkdir x\n");
        out.assert_error("identity has changed");
        out.assert_error_line("possible attack");
        assert!(!b.root().join("x").exists(), "{out}");
    }
    assert_eq!(fs::read_to_string(&known_hosts).unwrap(), text);
    // A wrong --fingerprint is refused the same way.
    let out = ftx(&b, &cwd, &["--fingerprint", &fp_a], &env_b, None, "ls\n");
    out.assert_error("identity has changed");
}

#[test]
fn plain_and_tls_mismatch_fail_clearly_within_a_second() {
    let tls = Server::start(&[]);
    let cwd = tls.scratch("client");
    let env = [("FTX_TOKEN", tls.creds().token.as_str())];
    let out = ftx(&tls, &cwd, &["--plain"], &env, None, "ls\n");
    out.assert_error("requires TLS");
    assert!(
        out.elapsed < Duration::from_secs(1),
        "took {:?}\n{out}",
        out.elapsed
    );

    let plain = Server::start(&["--plain", "--open"]);
    let fp = tls.creds().fingerprint.clone().unwrap();
    let out = ftx(&plain, &cwd, &["--fingerprint", &fp], &[], None, "ls\n");
    out.assert_error("does not speak TLS");
    assert!(
        out.elapsed < Duration::from_secs(1),
        "took {:?}\n{out}",
        out.elapsed
    );
    // And the matching pair works.
    run_cmd(
        ftx_bin(),
        &[&plain.addr_arg(), "-b", "-"],
        &cwd,
        Some(b"ls\n"),
        RUN_TIMEOUT,
    )
    .assert_success();
}

#[test]
fn ftxd_warns_about_plain_and_open_and_refuses_a_state_dir_in_the_root() {
    let server = Server::start(&["--plain", "--open"]);
    // Stderr is collected by another thread: give it a moment (bounded).
    let mut logs = server.logs();
    for _ in 0..40 {
        if logs.contains("warning: --open") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        logs = server.logs();
    }
    assert!(logs.contains("warning: --plain"), "{logs}");
    assert!(logs.contains("warning: --open"), "{logs}");
    let inside = server.root().join("state");
    let out = run_cmd(
        ftxd_bin(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--root",
            server.root().to_str().unwrap(),
            "--state-dir",
            inside.to_str().unwrap(),
        ],
        server.base(),
        None,
        RUN_TIMEOUT,
    );
    out.assert_error("inside the served root");
    assert!(!inside.exists());
}

/// Revoking a token ends the sessions already open with it within a couple
/// of seconds (ftxd looks at the token file every second); sessions of
/// other tokens go on.
#[test]
fn a_revoked_token_ends_its_open_sessions() {
    use crate::util::{hello_with, Raw, Recv};
    use ftx::proto::error::ErrorCode;
    use ftx::proto::message::Message;
    let server = Server::start(&[]);
    let bob = token_cmd(&server, &["add", "bob"]);
    bob.assert_success();
    let open_with = |token: &str| {
        let mut raw = Raw::connect(server.addr());
        raw.send(&hello_with(token.as_bytes().to_vec())).unwrap();
        assert!(matches!(raw.recv(), Recv::Msg(Message::Welcome { .. })));
        raw
    };
    let mut bobs = open_with(bob.stdout.trim());
    let mut others = open_with(&server.creds().token);
    token_cmd(&server, &["revoke", "bob"]).assert_success();
    // RAW_READ_TIMEOUT (5 s) covers the one-second look at the file.
    match bobs.recv() {
        Recv::Msg(Message::Error { code, message }) => {
            assert_eq!(code, ErrorCode::Unauthorized);
            assert!(message.contains("revoked"), "{message}");
        }
        other => panic!("expected the revocation, got {other:?}\n{}", server.logs()),
    }
    assert!(matches!(bobs.recv(), Recv::Closed | Recv::Reset));
    others.send(&Message::List { path: "".into() }).unwrap();
    assert!(
        matches!(others.recv(), Recv::Msg(Message::Entries { .. })),
        "another token's session was harmed"
    );
}

/// A read-only token writes nothing on the server, not even the digest
/// ftxd remembers in an extended attribute after a download.
#[test]
fn a_read_only_download_leaves_no_remembered_digest() {
    use crate::transfer::{age, remembered, xattrs_work};
    let server = Server::start(&["--no-fsync"]);
    if !xattrs_work(server.root()) {
        return;
    }
    let file = server.root().join("settled.bin");
    crate::util::write_random_file(&file, 3 << 20, 5);
    age(&file, 60);
    let added = token_cmd(&server, &["add", "guest", "--read-only"]);
    added.assert_success();
    let cwd = server.scratch("client");
    let env = [("FTX_TOKEN", added.stdout.trim())];
    ftx(
        &server,
        &cwd,
        &pinned(&server),
        &env,
        None,
        "get settled.bin\n",
    )
    .assert_success();
    assert_file_bytes(&cwd.join("settled.bin"), &fs::read(&file).unwrap());
    assert_eq!(
        remembered(&file),
        None,
        "a read-only download wrote an xattr"
    );
    // The same download with a read-write token does remember it.
    let rw = server.scratch("rw");
    let env = [("FTX_TOKEN", server.creds().token.as_str())];
    ftx(
        &server,
        &rw,
        &pinned(&server),
        &env,
        None,
        "get settled.bin\n",
    )
    .assert_success();
    assert!(
        remembered(&file).is_some(),
        "the control case remembered nothing"
    );
}

/// An interrupted upload belongs to the token that started it: another
/// token's `reput` of the same name neither continues, publishes nor wipes
/// it (that client sends its own file whole), and the owner's `reput` still
/// resumes it where it stopped.
#[test]
fn an_interrupted_upload_belongs_to_its_token() {
    use crate::util::{random_bytes, size_or_zero, spawn_cmd_env, wait_unlocked, Proxy, Tamper};
    use ftx::partial::{owned_part_name, PartOwner};
    use ftx::server::tokens::token_id;
    use std::time::Instant;

    let server = Server::start(&["--no-fsync"]);
    let root = server.root();
    let (cwd_a, cwd_b) = (server.scratch("a"), server.scratch("b"));
    let token_a = server.creds().token.clone();
    let added = token_cmd(&server, &["add", "bob"]);
    added.assert_success();
    let token_b = added.stdout.trim().to_owned();
    let (data_a, data_b) = (random_bytes(2 << 20, 61), random_bytes(2 << 20, 62));
    fs::write(cwd_a.join("big.bin"), &data_a).unwrap();
    fs::write(cwd_b.join("big.bin"), &data_b).unwrap();
    let owner_a = PartOwner::of_token(&token_id(token_a.as_bytes()));
    let part_a = root.join(owned_part_name(Some(owner_a), "big.bin"));

    // A's upload, cut after 1 MiB by a proxy that holds the stream there.
    let hold = Tamper {
        hold_at: Some(1 << 20),
        ..Tamper::default()
    };
    let proxy = Proxy::start(server.addr(), hold, Tamper::default());
    let proxy_addr = proxy.addr().to_string();
    let mut args = vec![proxy_addr.as_str(), "-b", "-"];
    args.extend(pinned(&server));
    let env_a = [("FTX_TOKEN", token_a.as_str())];
    let run = spawn_cmd_env(
        ftx_bin(),
        &args,
        &cwd_a,
        Some(b"put big.bin\n"),
        &env_a,
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = (0, Instant::now());
    while Instant::now() < deadline {
        let now = size_or_zero(&part_a);
        if now != last.0 {
            last = (now, Instant::now());
        } else if proxy.holding() && now > 0 && last.1.elapsed() > Duration::from_millis(100) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = run.kill();
    drop(proxy);
    wait_unlocked(&part_a, Duration::from_secs(10), &killed);
    let held = fs::read(&part_a).unwrap_or_default();
    assert!(
        !held.is_empty() && held.len() < data_a.len(),
        "expected part of A's upload in {}, found {} bytes\n{killed}",
        part_a.display(),
        held.len()
    );
    assert_eq!(held, data_a[..held.len()]);

    // B's reput finds nothing of its own to resume: its file goes whole,
    // and A's part is left exactly as it was.
    let env_b = [("FTX_TOKEN", token_b.as_str())];
    let out = ftx(
        &server,
        &cwd_b,
        &pinned(&server),
        &env_b,
        None,
        "reput big.bin\n",
    );
    out.assert_success().assert_stdout_lacks("resumed at byte");
    assert_file_bytes(&root.join("big.bin"), &data_b);
    assert_eq!(fs::read(&part_a).unwrap(), held, "B touched A's part");

    // A's reput continues its own part; the name is taken, so it is
    // stored beside B's file.
    let out = ftx(
        &server,
        &cwd_a,
        &pinned(&server),
        &env_a,
        None,
        "reput big.bin\n",
    );
    out.assert_success()
        .assert_stdout_contains(&format!("(resumed at byte {}, ", held.len()));
    assert_file_bytes(&root.join("big_1.bin"), &data_a);
    assert_file_bytes(&root.join("big.bin"), &data_b);
    assert!(!part_a.exists());
}

/// Every start of ftxd prints the `ftx` command that reaches it: run as
/// printed (with the token where it says), it connects, pinned, at once.
#[test]
fn ftxd_prints_the_command_that_reaches_it() {
    let server = Server::start(&[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let line = loop {
        let logs = server.logs();
        if let Some(l) = logs.lines().find(|l| l.contains("connect with: ")) {
            break l.split("connect with: ").nth(1).unwrap().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no connect line\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let fp = server.creds().fingerprint.clone().unwrap();
    assert_eq!(
        line,
        format!(
            "ftx {} --fingerprint {fp} (with a token: FTX_TOKEN=..., --token-file FILE, or at its prompt)",
            server.addr_arg()
        )
    );
    let command: Vec<&str> = line.split(" (").next().unwrap().split(' ').collect();
    assert_eq!(command[0], "ftx");
    let mut args = command[1..].to_vec();
    args.extend(["-b", "-"]);
    let cwd = server.scratch("client");
    let env = [("FTX_TOKEN", server.creds().token.as_str())];
    run_cmd_env(
        ftx_bin(),
        &args,
        &cwd,
        Some(b"mkdir seen\n"),
        RUN_TIMEOUT,
        &env,
        None,
    )
    .assert_success();
    assert!(server.root().join("seen").is_dir());
}

/// Batch mode refuses an unknown server by showing its fingerprint to be
/// compared, never as a ready `--fingerprint` flag to paste, and says how
/// to see the real one on the server: `ftxd --show-fingerprint`, which
/// prints it from the state directory without starting (and makes nothing
/// where there is no key).
#[test]
fn an_unknown_server_is_compared_with_ftxd_show_fingerprint() {
    let server = Server::start(&[]);
    let fp = server.creds().fingerprint.clone().unwrap();
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    let env = [("FTX_TOKEN", server.creds().token.as_str())];
    let out = ftx(&server, &cwd, &[], &env, Some(&home), "ls\n");
    out.assert_failure();
    out.assert_error(&format!(
        "unknown server {}: not trusted; it shows the certificate fingerprint {fp}",
        server.addr_arg()
    ));
    out.assert_error("compare it with the one ftxd printed when it started");
    out.assert_error("'ftxd --show-fingerprint' prints it again");
    assert!(
        !out.stderr.contains(&format!("--fingerprint {fp}")),
        "a ready flag to paste:\n{out}"
    );

    // On the server: the same fingerprint, from the state directory.
    let state = server.base().join("state");
    let shown = run_cmd(
        ftxd_bin(),
        &["--show-fingerprint", "--state-dir", state.to_str().unwrap()],
        &cwd,
        None,
        RUN_TIMEOUT,
    );
    shown.assert_success();
    assert_eq!(shown.stdout, format!("{fp}\n"), "{shown}");

    // No key yet: an error, and nothing is created.
    let empty = server.scratch("no-state").join("ftxd");
    let none = run_cmd(
        ftxd_bin(),
        &["--show-fingerprint", "--state-dir", empty.to_str().unwrap()],
        &cwd,
        None,
        RUN_TIMEOUT,
    );
    none.assert_failure().assert_error("no certificate in");
    assert!(!empty.exists(), "{none}");
}
