//! How a session starts and ends, as sftp's do: piped input echoes each
//! line, any run of `-` and `@` prefixes works, an end of input at the
//! address prompt is an error (never a silent default), and an
//! interactive session's exit status does not depend on its commands.

use std::fs;
use std::time::Duration;

use crate::util::{ftx_bin, run_cmd, Server, RUN_TIMEOUT};

#[test]
fn piped_input_echoes_each_line_as_sftp_does() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("b.txt"), "b").unwrap();
    let out = run_cmd(
        ftx_bin(),
        &[&server.addr_arg()],
        &cwd,
        Some(b"get missing.txt\n@lpwd\nput b.txt\n# a comment\n-ls\n"),
        RUN_TIMEOUT,
    );
    out.assert_failure().assert_error_line("not found");
    assert_eq!(
        out.echoed(),
        ["get missing.txt", "put b.txt", "-ls"],
        "each line echoed as written, '@' lines and comments not\n{out}"
    );
}

#[test]
fn any_run_of_dash_and_at_prefixes() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let out = server.batch(&cwd, "-@-lpwd\n@-get missing.txt\n--@lpwd\nlpwd\n");
    out.assert_success().assert_error_line("not found");
    assert_eq!(
        out.echoed(),
        ["lpwd"],
        "'@' anywhere in the run hides the echo\n{out}"
    );
    assert_eq!(
        out.stdout.matches("Local directory: ").count(),
        3,
        "every lpwd ran, '-lpwd' is not an unknown command\n{out}"
    );
    assert!(!out.stderr.contains("unknown command"), "{out}");
}

#[test]
fn end_of_input_at_the_address_prompt_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for input in [&b""[..], b"127.0.0.1\n"] {
        let out = run_cmd(
            ftx_bin(),
            &[],
            dir.path(),
            Some(input),
            Duration::from_secs(20),
        );
        out.assert_failure().assert_error_line("end of input");
        assert!(
            !out.stderr.contains("cannot connect"),
            "no connection is tried with a default the user never chose\n{out}"
        );
    }
}

/// sftp's other spellings: `?` is `help`, `dir` is `ls`.
#[test]
fn sftp_spellings_question_mark_and_dir() {
    let server = Server::start(&[]);
    fs::write(server.root().join("here.txt"), "x").unwrap();
    let cwd = server.scratch("client");
    let out = server.batch(&cwd, "?\ndir\n");
    out.assert_success();
    assert!(
        out.section("?")
            .iter()
            .any(|l| l.contains("put [-fprRucv]")),
        "{out}"
    );
    assert_eq!(out.section("dir"), ["           1 here.txt"], "{out}");
}
