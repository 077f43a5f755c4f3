//! The command lines themselves: `--help`, `--version`, bad flags, a missing
//! batch file and an unreachable server.

use std::time::Duration;

use crate::util::{closed_port, ftx_bin, run_cmd, run_ftx, run_ftxd, Server};

#[test]
fn help_and_version_succeed() {
    let dir = tempfile::tempdir().unwrap();
    for (name, out) in [
        ("ftx --help", run_ftx(dir.path(), &["--help"])),
        ("ftxd --help", run_ftxd(dir.path(), &["--help"])),
    ] {
        out.assert_success();
        assert!(
            !out.stdout.trim().is_empty(),
            "{name} printed nothing\n{out}"
        );
    }
    for out in [
        run_ftx(dir.path(), &["--version"]),
        run_ftxd(dir.path(), &["--version"]),
    ] {
        out.assert_success()
            .assert_stdout_contains(env!("CARGO_PKG_VERSION"));
    }
}

#[test]
fn help_mentions_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ftxd(dir.path(), &["--help"]);
    for flag in [
        "--listen",
        "--root",
        "--max-connections",
        "--idle-timeout",
        "--read-only",
        "--max-file-size",
        "--no-fsync",
    ] {
        out.assert_stdout_contains(flag);
    }
    run_ftx(dir.path(), &["--help"]).assert_stdout_contains("-b");
}

#[test]
fn bad_flag_is_an_error_line() {
    let dir = tempfile::tempdir().unwrap();
    for out in [
        run_ftx(dir.path(), &["--no-such-flag"]),
        run_ftxd(dir.path(), &["--no-such-flag"]),
        run_ftxd(dir.path(), &["--max-connections", "lots"]),
    ] {
        out.assert_failure();
        assert!(
            out.stderr.starts_with("error:"),
            "stderr should start with 'error:'\n{out}"
        );
    }
}

#[test]
fn missing_batch_file_is_one_error_line() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let out = run_ftx(&cwd, &[&server.addr_arg(), "-b", "no-such-commands.txt"]);
    out.assert_failure();
    assert!(
        out.stderr.starts_with("error:"),
        "stderr should start with 'error:'\n{out}"
    );
    assert_eq!(
        out.stderr.trim_end().lines().count(),
        1,
        "a missing batch file is a one-line error\n{out}"
    );
    assert!(
        out.stderr.contains("no-such-commands.txt"),
        "name the file\n{out}"
    );
}

#[test]
fn unreachable_server_fails_fast() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let addr = format!("127.0.0.1:{port}");
    let out = run_cmd(
        ftx_bin(),
        &[&addr, "-b", "-"],
        dir.path(),
        Some(b"ls\n"),
        Duration::from_secs(20),
    );
    out.assert_failure();
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with(&format!("error: cannot connect to {addr}"))),
        "expected 'error: cannot connect to {addr}: ...'\n{out}"
    );
    assert!(
        out.elapsed < Duration::from_secs(10),
        "took {:?} to give up\n{out}",
        out.elapsed
    );
}

#[test]
fn ftxd_refuses_a_missing_root() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cmd(
        crate::util::ftxd_bin(),
        &["--listen", "127.0.0.1:0", "--root", "does/not/exist"],
        dir.path(),
        None,
        Duration::from_secs(10),
    );
    // Not spelled out by the contract beyond "fail clearly": a non-zero
    // exit and something on stderr, instead of serving nothing.
    out.assert_failure();
    assert!(!out.stderr.trim().is_empty(), "say why on stderr\n{out}");
}
