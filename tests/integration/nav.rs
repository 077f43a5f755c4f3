//! The remote working directory, through the real binaries: `cd`, `cd ..`,
//! `cd` alone, `cd -` and `pwd`, and every remote name of every command
//! taken relative to it — transfer sources and targets, patterns, `-r`
//! trees, `ls`, `mkdir`, `rm`, `rename` and Tab completion — with `/` the
//! served root and `..` clamped there, as a chrooted sftp server does. A
//! `cd` that fails says why and changes nothing, so what follows it in
//! piped input happens where it would have happened without it.
//!
//! Each test checks the trees on both sides and the exact `error:` lines.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::util::pty::Pty;
use crate::util::{
    assert_no_temp_files, ftx_bin, make_tree, parse_ls, run_cmd, snapshot, tree_of, Output, Server,
    RUN_TIMEOUT,
};

/// The names a plain `ls LINE` printed.
fn listed(out: &Output, line: &str) -> Vec<String> {
    parse_ls(&out.section(line))
        .into_iter()
        .map(|(_, name)| name)
        .collect()
}

/// `(source, stored)` of every `uploaded 'A' as 'B'` (or `downloaded`) line.
fn moved<'a>(out: &'a Output, verb: &str) -> Vec<(&'a str, &'a str)> {
    let head = format!("{verb} '");
    out.stdout
        .lines()
        .filter_map(|l| l.strip_prefix(head.as_str()))
        .map(|rest| {
            let (from, rest) = rest.split_once("' as '").expect("'A' as 'B'");
            let (to, _) = rest.split_once("' (").expect("'B' (...)");
            (from, to)
        })
        .collect()
}

const A: &[u8] = b"a at the top\n";
const D: &[u8] = b"d in docs\n";
const I: &[u8] = b"i in docs/sub\n";
const X: &[u8] = b"x log\n";
const Y: &[u8] = b"y log\n";
const UP: &[u8] = b"uploaded\n";

/// The server's tree most tests start from.
fn server_tree(root: &Path) {
    make_tree(
        root,
        &[
            ("a.txt", Some(A)),
            ("docs/d.txt", Some(D)),
            ("docs/sub/i.txt", Some(I)),
            ("logs/x.log", Some(X)),
            ("logs/y.log", Some(Y)),
        ],
    );
}

/// One session in `docs` uses every command with names relative to it,
/// from the root (`/...`) and above it (`../...`); `pwd` follows every `cd`.
#[test]
fn every_command_works_relative_to_the_remote_directory() {
    let server = Server::start(&[]);
    server_tree(server.root());
    let cwd = server.scratch("client");
    make_tree(
        &cwd,
        &[
            ("up.txt", Some(UP)),
            ("tree/t.txt", Some(UP)),
            ("got", None),
        ],
    );
    let out = server.batch(
        &cwd,
        "pwd\n\
         cd docs\n\
         pwd\n\
         put up.txt\n\
         put up.txt sub\n\
         put up.txt ../top.txt\n\
         put -f up.txt /a.txt\n\
         put -r tree\n\
         reput up.txt re.txt\n\
         get d.txt\n\
         get ../logs/x.log\n\
         get /logs/y.log got\n\
         get ../logs/*.log got/\n\
         get -r sub got\n\
         reget sub/i.txt i_again.txt\n\
         mkdir new\n\
         rename re.txt new/moved.txt\n\
         rm up.txt\n\
         rm ../logs/x*\n\
         ls\n\
         ls sub\n\
         ls ..\n\
         ls /logs\n\
         ls /\n\
         cd sub\n\
         pwd\n\
         cd ..\n\
         pwd\n\
         cd new\n\
         cd -\n\
         pwd\n\
         cd\n\
         pwd\n\
         cd /docs/sub\n\
         pwd\n",
    );
    out.assert_success();
    assert!(out.error_lines().is_empty(), "{out}");
    let pwds: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("Remote working directory: "))
        .collect();
    assert_eq!(
        pwds,
        [
            "Remote working directory: /",
            "Remote working directory: /docs",
            "Remote working directory: /docs/sub",
            "Remote working directory: /docs",
            // `cd -` says where it went, as a shell does.
            "Remote working directory: /docs",
            "Remote working directory: /docs",
            "Remote working directory: /",
            "Remote working directory: /docs/sub",
        ],
        "{out}"
    );
    // Stored names show relative to the working directory, from `/` when
    // outside it.
    assert_eq!(
        moved(&out, "uploaded"),
        [
            ("up.txt", "up.txt"),
            ("up.txt", "sub/up.txt"),
            ("up.txt", "/top.txt"),
            ("up.txt", "/a.txt"),
            ("tree/t.txt", "tree/t.txt"),
            ("up.txt", "re.txt"),
        ],
        "{out}"
    );
    assert_eq!(
        moved(&out, "downloaded"),
        [
            ("d.txt", "d.txt"),
            ("../logs/x.log", "x.log"),
            ("/logs/y.log", "got/y.log"),
            ("../logs/x.log", "got/x.log"),
            ("../logs/y.log", "got/y_1.log"),
            ("sub/i.txt", "got/sub/i.txt"),
            ("sub/up.txt", "got/sub/up.txt"),
            ("sub/i.txt", "i_again.txt"),
        ],
        "{out}"
    );
    assert_eq!(
        listed(&out, "ls"),
        ["d.txt", "new/", "sub/", "tree/"],
        "{out}"
    );
    assert_eq!(listed(&out, "ls sub"), ["i.txt", "up.txt"], "{out}");
    assert_eq!(
        listed(&out, "ls .."),
        ["a.txt", "docs/", "logs/", "top.txt"],
        "{out}"
    );
    assert_eq!(listed(&out, "ls /logs"), ["y.log"], "{out}");
    assert_eq!(listed(&out, "ls /"), listed(&out, "ls .."), "{out}");
    assert_eq!(
        snapshot(server.root()),
        tree_of(&[
            ("a.txt", Some(UP)),
            ("top.txt", Some(UP)),
            ("docs", None),
            ("docs/d.txt", Some(D)),
            ("docs/new", None),
            ("docs/new/moved.txt", Some(UP)),
            ("docs/sub", None),
            ("docs/sub/i.txt", Some(I)),
            ("docs/sub/up.txt", Some(UP)),
            ("docs/tree", None),
            ("docs/tree/t.txt", Some(UP)),
            ("logs", None),
            ("logs/y.log", Some(Y)),
        ]),
        "{out}"
    );
    assert_eq!(
        snapshot(&cwd),
        tree_of(&[
            ("up.txt", Some(UP)),
            ("tree", None),
            ("tree/t.txt", Some(UP)),
            ("d.txt", Some(D)),
            ("x.log", Some(X)),
            ("i_again.txt", Some(I)),
            ("got", None),
            ("got/x.log", Some(X)),
            ("got/y.log", Some(Y)),
            ("got/y_1.log", Some(Y)),
            ("got/sub", None),
            ("got/sub/i.txt", Some(I)),
            ("got/sub/up.txt", Some(UP)),
        ]),
        "{out}"
    );
    assert_no_temp_files(server.root());
    assert_no_temp_files(&cwd);
}

/// `..` stops at the root and `/` is the root, for `cd` and for every
/// name: nothing beside the root is read or written.
#[test]
fn dot_dot_stops_at_the_root() {
    let server = Server::start(&[]);
    server_tree(server.root());
    let outside = server.scratch("outside");
    fs::write(outside.join("secret.txt"), b"secret\n").unwrap();
    let outside_before = snapshot(&outside);
    let cwd = server.scratch("client");
    fs::write(cwd.join("up.txt"), UP).unwrap();
    let out = server.batch(
        &cwd,
        "cd ../../..\n\
         pwd\n\
         cd docs/../../../docs/sub\n\
         pwd\n\
         put up.txt ../../../../x.txt\n\
         get ../../../../../a.txt\n\
         ls ../../..\n\
         -get ../../../outside/secret.txt\n\
         cd /..\n\
         pwd\n",
    );
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        ["error: get: '../../../outside/secret.txt' not found on server"],
        "{out}"
    );
    let pwds: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Remote working directory: "))
        .collect();
    assert_eq!(pwds, ["/", "/docs/sub", "/"], "{out}");
    assert_eq!(moved(&out, "uploaded"), [("up.txt", "/x.txt")], "{out}");
    assert_eq!(
        listed(&out, "ls ../../.."),
        ["a.txt", "docs/", "logs/", "x.txt"],
        "{out}"
    );
    assert_eq!(fs::read(server.root().join("x.txt")).unwrap(), UP);
    assert_eq!(fs::read(cwd.join("a.txt")).unwrap(), A);
    assert_eq!(snapshot(&outside), outside_before);
}

/// A `cd` to a missing directory or to a file fails, says why, and leaves
/// the working directory where it was: in piped input the commands after
/// it run there (and the run fails at the end); in a batch it stops the
/// batch before they run. `cd -` with nowhere to go back to fails too.
#[test]
fn a_failed_cd_changes_nothing() {
    let server = Server::start(&[]);
    server_tree(server.root());
    let cwd = server.scratch("client");
    for name in ["one.txt", "two.txt", "three.txt"] {
        fs::write(cwd.join(name), UP).unwrap();
    }
    let piped = "cd -\n\
                 cd nope\n\
                 put one.txt\n\
                 cd docs\n\
                 cd a.txt\n\
                 cd d.txt\n\
                 cd sub/missing\n\
                 put two.txt\n\
                 pwd\n";
    let out = run_cmd(
        ftx_bin(),
        &[&server.addr_arg()],
        &cwd,
        Some(piped.as_bytes()),
        RUN_TIMEOUT,
    );
    out.assert_failure();
    assert_eq!(
        out.error_lines(),
        [
            "error: cd: no previous directory",
            "error: cd: 'nope' not found on server",
            "error: cd: 'a.txt' not found on server",
            "error: cd: 'd.txt' not a directory on server",
            "error: cd: 'sub/missing' not found on server",
        ],
        "{out}"
    );
    assert_eq!(
        moved(&out, "uploaded"),
        [("one.txt", "one.txt"), ("two.txt", "two.txt")],
        "{out}"
    );
    out.assert_stdout_contains("Remote working directory: /docs");
    assert_eq!(fs::read(server.root().join("one.txt")).unwrap(), UP);
    assert_eq!(fs::read(server.root().join("docs/two.txt")).unwrap(), UP);

    // In a batch the failed cd is the end: nothing goes anywhere.
    let out = server.batch(&cwd, "cd docs/nope\nput three.txt\n");
    out.assert_error("cd: 'docs/nope' not found on server");
    assert_eq!(out.echoed(), ["cd docs/nope"], "{out}");
    assert!(!server.root().join("three.txt").exists());
    assert!(!server.root().join("docs/three.txt").exists());
    assert!(!server.root().join("docs/nope").exists());
}

/// `.`, `..` and `/` as names: `ls .` and `ls /`, `get -r .` (what is in
/// the working directory, into the local target, as sftp does) and
/// `put -r .` the same way up.
#[test]
fn dot_and_root_as_names() {
    let server = Server::start(&[]);
    server_tree(server.root());
    let cwd = server.scratch("client");
    make_tree(
        &cwd,
        &[
            ("here", None),
            ("up/u.txt", Some(UP)),
            ("up/deeper/v.txt", Some(UP)),
        ],
    );
    let out = server.batch(
        &cwd,
        "cd docs\n\
         ls .\n\
         ls /\n\
         get -r . copy\n\
         lcd here\n\
         get -r .\n\
         lcd ../up\n\
         cd sub\n\
         put -r .\n\
         cd /\n\
         get -r logs/.. ../whole\n\
         -get .\n\
         -rm .\n\
         -rmdir ..\n\
         -rename . x\n",
    );
    assert_eq!(
        out.error_lines(),
        [
            "error: get: '.' is a directory on server",
            "error: rm: '.': is a directory (use rmdir)",
            "error: rmdir: '..': give the directory's name, not '.', '..' or '/'",
            "error: rename: '.' has no file name",
        ],
        "{out}"
    );
    out.assert_success();
    assert_eq!(listed(&out, "ls ."), ["d.txt", "sub/"], "{out}");
    assert_eq!(listed(&out, "ls /"), ["a.txt", "docs/", "logs/"], "{out}");
    let docs = |top: &str| -> Vec<(String, Option<&'static [u8]>)> {
        vec![
            (top.to_owned(), None),
            (format!("{top}/d.txt"), Some(D)),
            (format!("{top}/sub"), None),
            (format!("{top}/sub/i.txt"), Some(I)),
        ]
    };
    let mut want: Vec<(String, Option<&[u8]>)> = Vec::new();
    want.extend(docs("copy"));
    want.extend(docs("here"));
    want.extend([
        ("up".to_owned(), None),
        ("up/u.txt".to_owned(), Some(UP)),
        ("up/deeper".to_owned(), None),
        ("up/deeper/v.txt".to_owned(), Some(UP)),
        ("whole".to_owned(), None),
        ("whole/a.txt".to_owned(), Some(A)),
        ("whole/docs".to_owned(), None),
        ("whole/docs/d.txt".to_owned(), Some(D)),
        ("whole/docs/sub".to_owned(), None),
        ("whole/docs/sub/i.txt".to_owned(), Some(I)),
        ("whole/docs/sub/u.txt".to_owned(), Some(UP)),
        ("whole/docs/sub/deeper".to_owned(), None),
        ("whole/docs/sub/deeper/v.txt".to_owned(), Some(UP)),
        ("whole/logs".to_owned(), None),
        ("whole/logs/x.log".to_owned(), Some(X)),
        ("whole/logs/y.log".to_owned(), Some(Y)),
    ]);
    let want: Vec<(&str, Option<&[u8]>)> = want.iter().map(|(p, b)| (p.as_str(), *b)).collect();
    assert_eq!(snapshot(&cwd), tree_of(&want), "{out}");
    // `put -r .` in docs/sub: what was in `up`, into docs/sub.
    assert_eq!(
        fs::read(server.root().join("docs/sub/deeper/v.txt")).unwrap(),
        UP
    );
    assert_no_temp_files(&cwd);
}

/// Tab completes remote names in the working directory, and `..` and `/`
/// as everywhere else; the prompt stays `ftx> `.
#[test]
fn tab_completion_follows_the_remote_directory() {
    let server = Server::start(&[]);
    server_tree(server.root());
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    let env = [
        ("HOME", home.join("home")),
        ("XDG_DATA_HOME", home.join("data")),
    ];
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let mut pty = Pty::spawn(&[&server.addr_arg()], &cwd, &env);
    pty.expect("ftx> ");
    pty.send("cd do\t");
    pty.expect("cd docs/");
    pty.send("\r");
    pty.expect("ftx> ");
    pty.send("get d\t");
    pty.expect("get d.txt ");
    pty.send("\r");
    pty.expect("downloaded 'd.txt' as 'd.txt'");
    pty.expect("ftx> ");
    pty.send("get ../logs/x\t");
    pty.expect("get ../logs/x.log ");
    pty.send("\r");
    pty.expect("downloaded '../logs/x.log' as 'x.log'");
    pty.expect("ftx> ");
    pty.send("ls /lo\t");
    pty.expect("ls /logs/");
    pty.send("\r");
    pty.expect("y.log");
    pty.expect("ftx> ");
    pty.send("cd s\t");
    pty.expect("cd sub/");
    pty.send("\r");
    pty.expect("ftx> ");
    pty.send("pwd\r");
    pty.expect("Remote working directory: /docs/sub");
    pty.expect("ftx> ");
    pty.send("exit\r");
    assert!(pty.wait(Duration::from_secs(10)).success());
    assert_eq!(fs::read(cwd.join("d.txt")).unwrap(), D);
    assert_eq!(fs::read(cwd.join("x.log")).unwrap(), X);
}
