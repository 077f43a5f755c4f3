//! Where `put` and `get` store things, and which names they read, as an
//! sftp user expects, through the real binaries in batch mode:
//!
//! - A TARGET that is an existing directory (on the server for `put` and
//!   `reput`, here for `get` and `reget`) means "into it", under the
//!   source's base name, with the clash rule (`notes_1.log`) inside it or
//!   `-f` replacing there; `-r` trees go into it as `DIR/NAME`. A TARGET
//!   ending in `/` must be an existing directory: otherwise one plain error
//!   and nothing stored. These once stored `docs_1` beside `docs`, a file
//!   called `nodir`, or said "is a directory", all but the last with exit 0.
//! - A quoted (`'...'`, `"..."`) or backslash-escaped `*`, `?` or `[` is
//!   literal; only bare ones are wildcards. `put 'a[1].txt'` once uploaded
//!   `a1.txt`. Tab completion inserts names so that they stay literal.
//!
//! Each test checks the files on both sides byte for byte and the exact
//! `error:` lines.

use std::path::Path;
use std::time::Duration;

use crate::util::pty::Pty;
use crate::util::{assert_no_temp_files, make_tree, parse_ls, snapshot, tree_of, Output, Server};

/// `(source, stored)` of every `uploaded 'A' as 'B'` (or `downloaded`)
/// line, in order: what moved, and nothing else.
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

/// The names a plain `ls LINE` printed.
fn listed(out: &Output, line: &str) -> Vec<String> {
    parse_ls(&out.section(line))
        .into_iter()
        .map(|(_, name)| name)
        .collect()
}

const V1: &[u8] = b"notes, first version\n";
const V2: &[u8] = b"notes, second version\n";
const TREE_FILE: &[u8] = b"a file in a tree\n";
const FILE: &[u8] = b"a file on the server\n";

/// The sequence an sftp user types: a directory made, filled twice (the
/// clash rule inside it), replaced with `-f` through `DIR/`, read back
/// into the current directory and into a local directory, then `ls`.
#[test]
fn a_directory_as_target_both_ways() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    make_tree(
        &cwd,
        &[
            ("a.txt", Some(V1)),
            ("new/a.txt", Some(V2)),
            ("localdir", None),
        ],
    );
    let out = server.batch(
        &cwd,
        "mkdir docs\n\
         put a.txt docs\n\
         put a.txt docs\n\
         put -f new/a.txt docs/\n\
         get docs/a.txt .\n\
         get docs/a.txt localdir\n\
         get docs/a_1.txt localdir/\n\
         ls docs\n\
         ls\n",
    );
    out.assert_success();
    assert!(out.error_lines().is_empty(), "{out}");
    assert_eq!(
        moved(&out, "uploaded"),
        [
            ("a.txt", "docs/a.txt"),
            ("a.txt", "docs/a_1.txt"),
            ("new/a.txt", "docs/a.txt"),
        ],
        "{out}"
    );
    assert_eq!(
        moved(&out, "downloaded"),
        [
            // `.` is a directory: the clash rule applies inside it.
            ("docs/a.txt", "a_1.txt"),
            ("docs/a.txt", "localdir/a.txt"),
            ("docs/a_1.txt", "localdir/a_1.txt"),
        ],
        "{out}"
    );
    assert_eq!(listed(&out, "ls docs"), ["a.txt", "a_1.txt"]);
    assert_eq!(listed(&out, "ls"), ["docs/"]);
    assert_eq!(
        snapshot(server.root()),
        tree_of(&[
            ("docs", None),
            ("docs/a.txt", Some(V2)),
            ("docs/a_1.txt", Some(V1)),
        ])
    );
    assert_eq!(
        snapshot(&cwd),
        tree_of(&[
            ("a.txt", Some(V1)),
            ("a_1.txt", Some(V2)),
            ("new", None),
            ("new/a.txt", Some(V2)),
            ("localdir", None),
            ("localdir/a.txt", Some(V2)),
            ("localdir/a_1.txt", Some(V1)),
        ])
    );
    assert_no_temp_files(server.root());
    assert_no_temp_files(&cwd);
}

/// `put`, `put -f`, `reput` and `put -r` into directories on the server;
/// a file as TARGET keeps the clash rule; `.` is the top. Then every
/// TARGET that must be a directory and is not: one error each, nothing
/// stored.
#[test]
fn put_into_remote_directories() {
    let server = Server::start(&[]);
    make_tree(
        server.root(),
        &[("file.txt", Some(FILE)), ("docs", None), ("up", None)],
    );
    let cwd = server.scratch("client");
    make_tree(
        &cwd,
        &[
            ("notes.log", Some(V1)),
            ("new/notes.log", Some(V2)),
            ("tree/in/f.txt", Some(TREE_FILE)),
            ("tree/empty", None),
        ],
    );
    let out = server.batch(
        &cwd,
        "put notes.log docs\n\
         put notes.log docs/\n\
         put -f new/notes.log docs\n\
         put notes.log file.txt\n\
         put notes.log .\n\
         reput notes.log up\n\
         put -r tree docs\n\
         put -r tree newtree\n\
         put -r tree up/\n\
         put *.log docs/tree\n",
    );
    out.assert_success();
    assert!(out.error_lines().is_empty(), "{out}");
    assert_eq!(
        moved(&out, "uploaded"),
        [
            ("notes.log", "docs/notes.log"),
            ("notes.log", "docs/notes_1.log"),
            ("new/notes.log", "docs/notes.log"),
            ("notes.log", "file_1.txt"),
            ("notes.log", "notes.log"),
            ("notes.log", "up/notes.log"),
            ("tree/in/f.txt", "docs/tree/in/f.txt"),
            ("tree/in/f.txt", "newtree/in/f.txt"),
            ("tree/in/f.txt", "up/tree/in/f.txt"),
            ("notes.log", "docs/tree/notes.log"),
        ],
        "{out}"
    );
    out.assert_stdout_contains("uploaded 'notes.log' as 'up/notes.log' (nothing to resume");
    let want = tree_of(&[
        ("file.txt", Some(FILE)),
        ("file_1.txt", Some(V1)),
        ("notes.log", Some(V1)),
        ("docs", None),
        ("docs/notes.log", Some(V2)),
        ("docs/notes_1.log", Some(V1)),
        ("docs/tree", None),
        ("docs/tree/notes.log", Some(V1)),
        ("docs/tree/in", None),
        ("docs/tree/in/f.txt", Some(TREE_FILE)),
        ("docs/tree/empty", None),
        ("newtree", None),
        ("newtree/in", None),
        ("newtree/in/f.txt", Some(TREE_FILE)),
        ("newtree/empty", None),
        ("up", None),
        ("up/notes.log", Some(V1)),
        ("up/tree", None),
        ("up/tree/in", None),
        ("up/tree/in/f.txt", Some(TREE_FILE)),
        ("up/tree/empty", None),
    ]);
    assert_eq!(snapshot(server.root()), want, "{out}");

    // A TARGET that has to be a directory and is not: refused before
    // anything is sent, and the connection goes on.
    let out = server.batch(
        &cwd,
        "-put notes.log nodir/\n\
         -put -f notes.log nodir/\n\
         -put notes.log file.txt/\n\
         -put notes.log docs/notes.log/\n\
         -put *.log nodir\n\
         -put *.log file.txt\n\
         -put -r tree nodir/\n\
         -reput notes.log nodir/\n\
         ls\n",
    );
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [
            "error: put: 'nodir/': directory not found on server",
            "error: put: 'nodir/': directory not found on server",
            "error: put: 'file.txt/': not a directory on server",
            "error: put: 'docs/notes.log/': not a directory on server",
            "error: put: 'nodir': directory not found on server",
            "error: put: 'file.txt': not a directory on server",
            "error: put: 'nodir/': directory not found on server",
            "error: reput: 'nodir/': directory not found on server",
        ],
        "{out}"
    );
    assert!(moved(&out, "uploaded").is_empty(), "{out}");
    assert_eq!(
        listed(&out, "ls"),
        [
            "docs/",
            "file.txt",
            "file_1.txt",
            "newtree/",
            "notes.log",
            "up/"
        ]
    );
    assert_eq!(snapshot(server.root()), want, "{out}");
    assert_no_temp_files(server.root());
}

/// `get`, `get -f`, `reget` and `get -r` into local directories; a file
/// as TARGET keeps the clash rule. Then every local TARGET that must be a
/// directory and is not: one error each, nothing written.
#[test]
fn get_into_local_directories() {
    let server = Server::start(&[]);
    make_tree(
        server.root(),
        &[
            ("docs/a.txt", Some(V1)),
            ("docs/b.txt", Some(V2)),
            ("rd/sub/t.txt", Some(TREE_FILE)),
            ("rd/empty", None),
        ],
    );
    let cwd = server.scratch("client");
    make_tree(
        &cwd,
        &[
            ("localdir/b.txt", Some(b"old b\n")),
            ("rdir", None),
            ("localfile", Some(FILE)),
        ],
    );
    let out = server.batch(
        &cwd,
        "get docs/a.txt localdir\n\
         get docs/a.txt localdir/\n\
         get -f docs/b.txt localdir\n\
         get docs/a.txt newname\n\
         get docs/a.txt localfile\n\
         reget docs/a.txt rdir\n\
         get -r rd localdir\n\
         get -r rd newtree\n\
         get docs/*.txt rdir/\n",
    );
    out.assert_success();
    assert!(out.error_lines().is_empty(), "{out}");
    assert_eq!(
        moved(&out, "downloaded"),
        [
            ("docs/a.txt", "localdir/a.txt"),
            ("docs/a.txt", "localdir/a_1.txt"),
            ("docs/b.txt", "localdir/b.txt"),
            ("docs/a.txt", "newname"),
            ("docs/a.txt", "localfile_1"),
            ("docs/a.txt", "rdir/a.txt"),
            ("rd/sub/t.txt", "localdir/rd/sub/t.txt"),
            ("rd/sub/t.txt", "newtree/sub/t.txt"),
            ("docs/a.txt", "rdir/a_1.txt"),
            ("docs/b.txt", "rdir/b.txt"),
        ],
        "{out}"
    );
    let want = tree_of(&[
        ("localfile", Some(FILE)),
        ("localfile_1", Some(V1)),
        ("newname", Some(V1)),
        ("localdir", None),
        ("localdir/a.txt", Some(V1)),
        ("localdir/a_1.txt", Some(V1)),
        ("localdir/b.txt", Some(V2)),
        ("localdir/rd", None),
        ("localdir/rd/sub", None),
        ("localdir/rd/sub/t.txt", Some(TREE_FILE)),
        ("localdir/rd/empty", None),
        ("newtree", None),
        ("newtree/sub", None),
        ("newtree/sub/t.txt", Some(TREE_FILE)),
        ("newtree/empty", None),
        ("rdir", None),
        ("rdir/a.txt", Some(V1)),
        ("rdir/a_1.txt", Some(V1)),
        ("rdir/b.txt", Some(V2)),
    ]);
    assert_eq!(snapshot(&cwd), want, "{out}");

    let server_before = snapshot(server.root());
    let out = server.batch(
        &cwd,
        "-get docs/a.txt nolocaldir/\n\
         -get -f docs/a.txt nolocaldir/\n\
         -get docs/a.txt localfile/\n\
         -get docs/*.txt nolocaldir\n\
         -get docs/*.txt localfile\n\
         -get -r rd nolocaldir/\n\
         -reget docs/a.txt nolocaldir/\n\
         lpwd\n",
    );
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [
            "error: get: 'nolocaldir/': local directory not found",
            "error: get: 'nolocaldir/': local directory not found",
            "error: get: 'localfile/': not a local directory",
            "error: get: 'nolocaldir': local directory not found",
            "error: get: 'localfile': not a local directory",
            "error: get: 'nolocaldir/': local directory not found",
            "error: reget: 'nolocaldir/': local directory not found",
        ],
        "{out}"
    );
    assert!(moved(&out, "downloaded").is_empty(), "{out}");
    assert_eq!(snapshot(&cwd), want, "{out}");
    assert_eq!(snapshot(server.root()), server_before);
    assert_no_temp_files(&cwd);
}

const BRACKET: &[u8] = b"the one with brackets\n";
const PLAIN: &[u8] = b"the plain one\n";
const STAR: &[u8] = b"a star\n";
const QMARK: &[u8] = b"a question mark\n";
const OTHER: &[u8] = b"what a bare wildcard also matches\n";

/// Names with `[`, `*` and `?` on both sides, moved by quoted and escaped
/// names: exactly that one file moves. Bare wildcards still match, and a
/// word mixing both keeps each part as written.
#[test]
fn quoted_wildcards_are_literal_both_ways() {
    let server = Server::start(&[]);
    let up = server.scratch("up");
    let odd = [
        ("a[1].txt", Some(BRACKET)),
        ("a1.txt", Some(PLAIN)),
        ("*", Some(STAR)),
        ("what?", Some(QMARK)),
        ("whatX", Some(OTHER)),
        ("b[x]y.log", Some(BRACKET)),
        ("bxy.log", Some(PLAIN)),
    ];
    make_tree(&up, &odd);
    let out = server.batch(
        &up,
        "put 'a[1].txt'\n\
         put \"what?\"\n\
         put \\*\n\
         put b\\[x\\]y.log\n\
         mkdir d\n\
         put 'a['1]* d\n\
         put a[1].txt d\n\
         ls\n",
    );
    out.assert_success();
    assert!(out.error_lines().is_empty(), "{out}");
    assert_eq!(
        moved(&out, "uploaded"),
        [
            ("a[1].txt", "a[1].txt"),
            ("what?", "what?"),
            ("*", "*"),
            ("b[x]y.log", "b[x]y.log"),
            // Quoted `a[1]`, then a bare star.
            ("a[1].txt", "d/a[1].txt"),
            // Bare brackets: a class, which matches `a1.txt` only.
            ("a1.txt", "d/a1.txt"),
        ],
        "{out}"
    );
    assert_eq!(
        listed(&out, "ls"),
        ["*", "a[1].txt", "b[x]y.log", "d/", "what?"]
    );
    assert_eq!(
        snapshot(server.root()),
        tree_of(&[
            ("a[1].txt", Some(BRACKET)),
            ("what?", Some(QMARK)),
            ("*", Some(STAR)),
            ("b[x]y.log", Some(BRACKET)),
            ("d", None),
            ("d/a[1].txt", Some(BRACKET)),
            ("d/a1.txt", Some(PLAIN)),
        ])
    );

    // Back down, from the server's names.
    make_tree(
        server.root(),
        &[
            ("a1.txt", Some(PLAIN)),
            ("whatX", Some(OTHER)),
            ("sub/q?.txt", Some(QMARK)),
            ("sub/qx.txt", Some(OTHER)),
        ],
    );
    let down = server.scratch("down");
    make_tree(&down, &[("into", None)]);
    let out = server.batch(
        &down,
        "get \"a[1].txt\"\n\
         get 'what?'\n\
         get \\*\n\
         get sub/q\\?.txt\n\
         get 'a['1]* into\n\
         get a[1].txt into\n\
         get 'sub/q?'* into\n",
    );
    out.assert_success();
    assert!(out.error_lines().is_empty(), "{out}");
    assert_eq!(
        moved(&out, "downloaded"),
        [
            ("a[1].txt", "a[1].txt"),
            ("what?", "what?"),
            ("*", "*"),
            ("sub/q?.txt", "q?.txt"),
            ("a[1].txt", "into/a[1].txt"),
            ("a1.txt", "into/a1.txt"),
            ("sub/q?.txt", "into/q?.txt"),
        ],
        "{out}"
    );
    assert_eq!(
        snapshot(&down),
        tree_of(&[
            ("a[1].txt", Some(BRACKET)),
            ("what?", Some(QMARK)),
            ("*", Some(STAR)),
            ("q?.txt", Some(QMARK)),
            ("into", None),
            ("into/a[1].txt", Some(BRACKET)),
            ("into/a1.txt", Some(PLAIN)),
            ("into/q?.txt", Some(QMARK)),
        ])
    );

    // What matches nothing says so, a name as a name, a pattern as the
    // matcher read it (its literal characters escaped).
    let out = server.batch(
        &down,
        "-get 'a[2].txt'\n\
         -get a[2].txt\n\
         -get 'a['*2\n\
         -put 'nothing*'\n\
         -put nothing*\n\
         lpwd\n",
    );
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [
            "error: get: 'a[2].txt' not found on server",
            "error: get: 'a[2].txt': no match on server",
            "error: get: 'a\\[*2': no match on server",
            "error: put: local file 'nothing*': not found",
            "error: put: 'nothing*': no match",
        ],
        "{out}"
    );
    assert_eq!(snapshot(&down).len(), 8, "{out}");
    assert_no_temp_files(server.root());
    assert_no_temp_files(&down);
}

/// Tab completion of a remote name with brackets inserts it escaped, and
/// what it inserted fetches exactly that file, not the one the brackets
/// would match as a class.
#[test]
fn a_completed_bracket_name_fetches_that_file() {
    let server = Server::start(&[]);
    make_tree(
        server.root(),
        &[("sq[1].txt", Some(BRACKET)), ("sq1.txt", Some(PLAIN))],
    );
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    let (data, home_dir) = (home.join("data"), home.join("home"));
    let env: [(&str, &Path); 2] = [("HOME", &home_dir), ("XDG_DATA_HOME", &data)];
    let mut pty = Pty::spawn(&[&server.addr_arg()], &cwd, &env);
    pty.expect("ftx> ");
    pty.send("get sq[\t");
    let shown = pty.expect("].txt");
    assert!(shown.contains(r"sq\[1\].txt"), "completed as {shown:?}");
    pty.send("\r");
    pty.expect("downloaded 'sq[1].txt' as 'sq[1].txt'");
    pty.expect("ftx> ");
    pty.send("exit\r");
    pty.wait(Duration::from_secs(10));
    assert_eq!(
        snapshot(&cwd),
        tree_of(&[("sq[1].txt", Some(BRACKET))]),
        "{}",
        pty.text()
    );
}
