//! Which names `put` and `get` read, as an sftp user expects, through the
//! real binaries in batch mode: a quoted (`'...'`, `"..."`) or
//! backslash-escaped `*`, `?` or `[` is literal; only bare ones are
//! wildcards. `put 'a[1].txt'` once uploaded `a1.txt`, with exit 0. Tab
//! completion inserts names so that they stay literal.
//!
//! Each test checks the files on both sides byte for byte and the exact
//! `error:` lines.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::pty::Pty;
use crate::util::{assert_no_temp_files, parse_ls, snapshot, Node, Output, Server};

/// A tree as [`snapshot`] gives it: `(path, Some(bytes))` for a file,
/// `(path, None)` for a directory.
fn tree_of(entries: &[(&str, Option<&[u8]>)]) -> BTreeMap<PathBuf, Node> {
    entries
        .iter()
        .map(|(path, bytes)| {
            let node = match bytes {
                Some(b) => Node::File(b.to_vec()),
                None => Node::Dir,
            };
            (PathBuf::from(path), node)
        })
        .collect()
}

/// Writes `entries` (as in [`tree_of`]) beneath `dir`.
fn make(dir: &Path, entries: &[(&str, Option<&[u8]>)]) {
    for (path, bytes) in entries {
        let path = dir.join(path);
        match bytes {
            Some(b) => {
                fs::create_dir_all(path.parent().expect("a parent")).unwrap();
                fs::write(&path, b).unwrap();
            }
            None => fs::create_dir_all(&path).unwrap(),
        }
    }
}

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
    make(&up, &odd);
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
    make(
        server.root(),
        &[
            ("a1.txt", Some(PLAIN)),
            ("whatX", Some(OTHER)),
            ("sub/q?.txt", Some(QMARK)),
            ("sub/qx.txt", Some(OTHER)),
        ],
    );
    let down = server.scratch("down");
    make(&down, &[("into", None)]);
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
    make(
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
