//! Sessions that last: a connection the server closed — its idle timeout,
//! or a restart on the same address with the same state (key, tokens) —
//! is replaced before the next command that needs the server, which then
//! runs; one line says so, and the remote working directory is kept. A
//! transfer cut by the server going away fails as before and `reput`
//! continues it once the server is back. `close` and `open`. Through the
//! real binaries: a pty for the interactive shell, piped input and `-b -`
//! for the rest. (A server that does not come back: `lost.rs`.)

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::lost::Shell;
use crate::util::pty::Pty;
use crate::util::{
    assert_same_file, ftx_bin, run_cmd, size_or_zero, write_random_file, Output, Server,
    RUN_TIMEOUT,
};

/// A home for one ftx run: `HOME` and `XDG_DATA_HOME` inside `base`, so
/// it knows no server but the one its command line names.
fn home_env(base: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("HOME", base.join("home")),
        ("XDG_DATA_HOME", base.join("data")),
    ]
}

/// `ftx SERVER` in a pty from `cwd`, at its first prompt.
fn shell_in_pty(server: &Server, cwd: &Path, home: &Path) -> Pty {
    let env = home_env(home);
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let mut pty = Pty::spawn(&[&server.addr_arg()], cwd, &env);
    pty.expect(&format!("Connected to server at {}", server.addr()));
    pty.expect("ftx> ");
    pty
}

/// Types `exit` and checks that `ftx` left with status 0.
fn leave(mut pty: Pty) -> String {
    pty.send("exit\r");
    let status = pty.wait(Duration::from_secs(10));
    assert!(status.success(), "{}", pty.text());
    pty.text()
}

/// The one line that says the shell connected again.
fn reconnected(server: &Server, reason: &str) -> String {
    format!(
        "Reconnected to server at {} (connection lost: {reason})",
        server.addr()
    )
}

/// The lines of `text` that tell of a reconnection.
fn reconnect_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains("Reconnected")).collect()
}

#[test]
fn an_idle_connection_closed_by_the_server_is_reconnected_in_a_pty() {
    let server = Server::start(&["--idle-timeout", "1"]);
    fs::create_dir(server.root().join("sub")).unwrap();
    fs::write(server.root().join("sub/inside.txt"), b"in").unwrap();
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    let mut pty = shell_in_pty(&server, &cwd, &home);
    pty.send("cd sub\r");
    pty.expect("ftx> ");
    // The server closes the idle connection after a second.
    thread::sleep(Duration::from_millis(2500));
    pty.send("ls\r");
    pty.expect(&reconnected(
        &server,
        "timed out: connection idle for too long",
    ));
    pty.expect("inside.txt");
    pty.expect("ftx> ");
    // The remote working directory survived the reconnection.
    pty.send("pwd\r");
    pty.expect("Remote working directory: /sub");
    pty.expect("ftx> ");
    let text = leave(pty);
    assert_eq!(reconnect_lines(&text).len(), 1, "{text}");
    assert!(!text.contains("error:"), "{text}");
}

#[test]
fn a_server_restarted_on_the_same_port_is_reconnected_in_a_pty() {
    let mut server = Server::start(&[]);
    fs::write(server.root().join("before.txt"), b"1").unwrap();
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    let mut pty = shell_in_pty(&server, &cwd, &home);
    pty.send("ls\r");
    pty.expect("before.txt");
    pty.expect("ftx> ");
    server.kill();
    let again = Server::restart_in_place(&server, &[]);
    fs::write(again.root().join("after.txt"), b"2").unwrap();
    pty.send("ls\r");
    pty.expect(&reconnected(&again, "server closed the connection"));
    pty.expect("after.txt");
    pty.expect("ftx> ");
    let text = leave(pty);
    assert_eq!(reconnect_lines(&text).len(), 1, "{text}");
    assert!(!text.contains("error:"), "{text}");
}

#[test]
fn a_batch_line_after_a_server_restart_runs() {
    let mut server = Server::start(&[]);
    fs::write(server.root().join("here.txt"), b"hi").unwrap();
    let cwd = server.scratch("client");
    fs::write(cwd.join("up.txt"), b"uploaded after the restart").unwrap();
    let mut shell = Shell::start(&server, &cwd, &["-b", "-"]);
    shell.send("ls\n");
    shell.wait_stdout("here.txt");
    server.kill();
    let again = Server::restart_in_place(&server, &[]);
    shell.send("put up.txt\nls\n");
    let out = shell.finish();
    out.assert_success();
    assert_eq!(out.echoed(), ["ls", "put up.txt", "ls"], "{out}");
    assert_eq!(
        reconnect_lines(&out.stderr),
        [reconnected(&again, "server closed the connection")],
        "{out}"
    );
    assert_eq!(
        fs::read(again.root().join("up.txt")).unwrap(),
        b"uploaded after the restart"
    );
}

#[test]
fn close_then_open_again_and_open_another_server_in_a_pty() {
    let a = Server::start(&[]);
    fs::create_dir(a.root().join("sub")).unwrap();
    fs::write(a.root().join("a.txt"), b"a").unwrap();
    // Another server, not known to this ftx; open, so the token ftx has
    // (the first one's) is no obstacle.
    let b = Server::start(&["--open"]);
    fs::write(b.root().join("b.txt"), b"b").unwrap();
    let cwd = a.scratch("client");
    let home = a.scratch("home");
    let mut pty = shell_in_pty(&a, &cwd, &home);
    pty.send("cd sub\r");
    pty.expect("ftx> ");
    pty.send("close\r");
    pty.expect(&format!("Connection to {} closed", a.addr()));
    pty.expect("ftx> ");
    pty.send("ls\r");
    pty.expect("error: ls: not connected; use open HOST[:PORT]");
    pty.expect("ftx> ");
    // Local commands still work.
    pty.send("lpwd\r");
    pty.expect("Local directory: ");
    pty.expect("ftx> ");
    // `open` alone: the same server again, from the top.
    pty.send("open\r");
    pty.expect(&format!("Connected to server at {}", a.addr()));
    pty.expect("ftx> ");
    pty.send("pwd\r");
    pty.expect("Remote working directory: /");
    let rest = pty.expect("ftx> ");
    assert!(!rest.contains("sub"), "{rest}");
    pty.send("ls\r");
    pty.expect("a.txt");
    pty.expect("ftx> ");
    // Tab completion learns this server's names (and keeps them a while).
    pty.send("get a\t");
    pty.expect("get a.txt");
    pty.send("\x15\r");
    pty.expect("ftx> ");
    // Another server: first contact asks, as on the command line.
    pty.send(&format!("open {}\r", b.addr()));
    pty.expect(b.creds().fingerprint.as_deref().expect("TLS server"));
    pty.expect("Are you sure you want to continue connecting (yes/no)?");
    pty.send("yes\r");
    pty.expect(&format!("Connected to server at {}", b.addr()));
    pty.expect("ftx> ");
    // Completion offers its names, not the other server's.
    pty.send("get \t");
    pty.expect("get b.txt");
    pty.send("\r");
    pty.expect("downloaded 'b.txt'");
    pty.expect("ftx> ");
    pty.send("ls\r");
    pty.expect("b.txt");
    pty.expect("ftx> ");
    let text = leave(pty);
    assert!(!text.contains("Reconnected"), "{text}");
    assert_eq!(text.matches("error:").count(), 1, "{text}");
}

/// Runs `ftx SERVER -b - ARGS` from `cwd` with `script` on stdin (the
/// harness adds the first server's fingerprint and token).
fn batch_with(server: &Server, cwd: &Path, args: &[&str], script: &str) -> Output {
    let addr = server.addr_arg();
    let mut all = vec![addr.as_str(), "-b", "-"];
    all.extend_from_slice(args);
    run_cmd(ftx_bin(), &all, cwd, Some(script.as_bytes()), RUN_TIMEOUT)
}

#[test]
fn close_and_open_in_a_batch() {
    let a = Server::start(&[]);
    fs::write(a.root().join("a.txt"), b"a").unwrap();
    let b = Server::start(&["--open"]);
    fs::write(b.root().join("b.txt"), b"b").unwrap();
    let cwd = a.scratch("client");
    let b_addr = b.addr_arg();

    // An unknown server is refused in a batch, as on the command line;
    // the shell then waits for an `open`.
    let script = format!(
        "close\n-ls\nlpwd\nopen\nls\n-open {b_addr}\n-ls\nopen {}\nls\n",
        a.addr()
    );
    let out = batch_with(&a, &cwd, &[], &script);
    out.assert_success();
    let errors = out.error_lines();
    assert_eq!(errors.len(), 3, "{out}");
    assert_eq!(errors[0], "error: ls: not connected; use open HOST[:PORT]");
    assert!(
        errors[1].starts_with(&format!(
            "error: open: unknown server {b_addr}: not trusted"
        )),
        "{out}"
    );
    assert_eq!(errors[2], "error: ls: not connected; use open HOST[:PORT]");
    assert_eq!(out.stdout.matches("a.txt").count(), 2, "{out}");
    assert!(!out.stdout.contains("b.txt"), "{out}");
    out.assert_stdout_contains("Local directory: ");

    // With --accept-new it is trusted on first use.
    let out = batch_with(&a, &cwd, &["--accept-new"], &format!("open {b_addr}\nls\n"));
    out.assert_success();
    out.assert_stdout_contains(&format!("Connected to server at {b_addr}"));
    out.assert_stdout_contains("b.txt");
    assert!(out.stderr.contains("permanently added"), "{out}");
}

/// Size of the upload the server goes away in the middle of.
const CUT_SIZE: u64 = 32 << 20;

#[test]
fn a_put_cut_by_the_server_going_away_is_resumed_after_the_restart() {
    let mut server = Server::start(&["--no-fsync"]);
    let root = server.root().to_path_buf();
    let cwd = server.scratch("client");
    let src = cwd.join("big.bin");
    write_random_file(&src, CUT_SIZE, 77);
    let part = server.part_path(&root, "big.bin");
    let mut shell = Shell::start(&server, &cwd, &[]);
    shell.send("put big.bin\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    while size_or_zero(&part) < (256 << 10) && Instant::now() < deadline {
        thread::sleep(Duration::from_micros(300));
    }
    server.kill();
    // (Whether it adds "'reput' can continue it" depends on whether the
    // server's go-ahead was read before the data ran into the close.)
    shell.wait_stderr("error: put: connection lost: ");
    let held = size_or_zero(&part);
    assert!(
        held > 0 && held < CUT_SIZE,
        "expected a part of the file, found {held} bytes"
    );
    assert!(!root.join("big.bin").exists());

    let again = Server::restart_in_place(&server, &["--no-fsync"]);
    shell.send("reput big.bin\n");
    shell.wait_stdout("uploaded 'big.bin'");
    let out = shell.finish();
    assert_eq!(out.error_lines().len(), 1, "{out}");
    assert!(
        out.error_lines()[0].starts_with("error: put: connection lost: "),
        "{out}"
    );
    // The failure already said the connection was lost.
    assert_eq!(
        reconnect_lines(&out.stderr),
        [format!("Reconnected to server at {}", again.addr())],
        "{out}"
    );
    out.assert_stdout_contains(&format!("(resumed at byte {held}, "));
    assert_same_file(&src, &root.join("big.bin"));
    assert!(!part.exists());
}
