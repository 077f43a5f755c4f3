//! Batch mode as `sftp -b`: echo, `#` and blank lines, `@` (not echoed),
//! `-` (may fail), stop at the first failure, and the exit status.

use std::fs;

use crate::util::{assert_file_bytes, ftx_bin, names_in, run_cmd, Server, RUN_TIMEOUT};

#[test]
fn connect_line_and_echo_of_every_command() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("a.txt"), "a").unwrap();
    let script = "# a comment\n\nput a.txt\n   \n@ls\n-get missing.txt\nls\n# done\n";
    let out = server.batch(&cwd, script);
    out.assert_success()
        .assert_stdout_contains(&format!("Connected to server at {}", server.addr()));
    assert_eq!(
        out.echoed(),
        ["put a.txt", "-get missing.txt", "ls"],
        "echo every command as written ('-' kept), skip comments, blanks and '@' lines\n{out}"
    );
    out.assert_stdout_lacks("# a comment")
        .assert_stdout_lacks("ftx> @")
        .assert_error_line("not found");
}

#[test]
fn at_line_runs_without_echo() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("quiet.txt"), "q").unwrap();
    let out = server.batch(&cwd, "@put quiet.txt\n");
    out.assert_success();
    assert!(out.echoed().is_empty(), "'@' lines are not echoed\n{out}");
    assert_file_bytes(&server.root().join("quiet.txt"), b"q");
}

#[test]
fn first_failure_stops_the_batch() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("a.txt"), "a").unwrap();
    fs::write(cwd.join("b.txt"), "b").unwrap();
    let out = server.batch(&cwd, "put a.txt\nget missing.txt\nput b.txt\n");
    out.assert_error("not found");
    assert_eq!(
        out.echoed(),
        ["put a.txt", "get missing.txt"],
        "nothing after the failing line may run or be echoed\n{out}"
    );
    assert_eq!(
        names_in(server.root()),
        ["a.txt"],
        "the put after the failure must not have happened\n{out}"
    );
}

#[test]
fn dash_line_failure_continues_and_counts_as_success() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("b.txt"), "b").unwrap();
    let out = server.batch(&cwd, "-get missing.txt\nput b.txt\n");
    out.assert_success().assert_error_line("not found");
    assert_eq!(out.echoed(), ["-get missing.txt", "put b.txt"], "{out}");
    assert_file_bytes(&server.root().join("b.txt"), b"b");
}

#[test]
fn unknown_command_is_a_failure() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("b.txt"), "b").unwrap();
    let out = server.batch(&cwd, "frobnicate now\nput b.txt\n");
    out.assert_failure();
    assert_eq!(out.error_lines().len(), 1, "one error line\n{out}");
    assert!(names_in(server.root()).is_empty(), "batch went on\n{out}");
}

#[test]
fn bad_arguments_are_a_failure() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let out = server.batch(&cwd, "rename onlyone\n");
    out.assert_failure();
    assert_eq!(out.error_lines().len(), 1, "one error line\n{out}");
}

#[test]
fn all_success_exits_zero_and_exit_stops() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("a.txt"), "a").unwrap();
    fs::write(cwd.join("b.txt"), "b").unwrap();
    let out = server.batch(&cwd, "put a.txt\nls\nexit\nput b.txt\n");
    out.assert_success();
    assert!(out.stderr.trim().is_empty(), "no errors expected\n{out}");
    assert_eq!(
        names_in(server.root()),
        ["a.txt"],
        "nothing runs after exit\n{out}"
    );
}

#[test]
fn batch_from_a_file() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("a.txt"), "a").unwrap();
    fs::write(cwd.join("cmds.txt"), "put a.txt\nls\n").unwrap();
    let out = run_cmd(
        ftx_bin(),
        &[&server.addr_arg(), "-b", "cmds.txt"],
        &cwd,
        None,
        RUN_TIMEOUT,
    );
    out.assert_success();
    assert_eq!(out.echoed(), ["put a.txt", "ls"], "{out}");
    assert_file_bytes(&server.root().join("a.txt"), b"a");
}

#[test]
fn piped_without_b_goes_on_after_failures_and_exits_non_zero() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("b.txt"), "b").unwrap();
    let out = run_cmd(
        ftx_bin(),
        &[&server.addr_arg()],
        &cwd,
        Some(b"get missing.txt\nput b.txt\n"),
        RUN_TIMEOUT,
    );
    out.assert_failure().assert_error_line("not found");
    assert_file_bytes(&server.root().join("b.txt"), b"b");
}

#[test]
fn menu_numbers_upload_download_exit() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("m.txt"), "menu").unwrap();
    fs::create_dir(cwd.join("back")).unwrap();
    let out = server.batch(&cwd, "1 m.txt\nlcd back\n2 m.txt\n3\nput never.txt\n");
    out.assert_success();
    assert_file_bytes(&server.root().join("m.txt"), b"menu");
    assert_file_bytes(&cwd.join("back/m.txt"), b"menu");
}

#[test]
fn shell_quoted_names() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let root = server.root();
    fs::write(cwd.join("my file.txt"), "spaces").unwrap();
    fs::write(cwd.join("my file2.txt"), "escaped").unwrap();
    fs::write(cwd.join("it's.txt"), "quote").unwrap();
    let out = server.batch(
        &cwd,
        "put \"my file.txt\"\nput my\\ file2.txt\nput \"it's.txt\"\nls\n",
    );
    out.assert_success()
        .assert_stdout_contains("uploaded 'my file.txt' as 'my file.txt'");
    assert_file_bytes(&root.join("my file.txt"), b"spaces");
    assert_file_bytes(&root.join("my file2.txt"), b"escaped");
    assert_file_bytes(&root.join("it's.txt"), b"quote");
    let listed: Vec<String> = crate::util::parse_ls(&out.section("ls"))
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert!(
        listed.iter().any(|n| n == "my file.txt"),
        "ls should show 'my file.txt' as the last field\n{out}"
    );

    let back = server.scratch("back");
    server
        .batch(&back, "get 'my file.txt'\nget my\\ file2.txt\n")
        .assert_success();
    assert_file_bytes(&back.join("my file.txt"), b"spaces");
    assert_file_bytes(&back.join("my file2.txt"), b"escaped");
}
