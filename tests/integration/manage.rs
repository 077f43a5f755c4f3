//! Managing the server's tree through the real binaries: `rm` takes several
//! names and patterns and removes files (and links) only, leaving a
//! directory alone with a hint to use `rmdir`; `rmdir` removes an empty
//! directory and nothing else; `mkdir -p` creates the missing parents and
//! accepts a directory that exists, and plain `mkdir` names the missing
//! parent. Every name relative to the remote working directory. Each test
//! checks the exact `error:` lines and the tree left on the server.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::util::{parse_ls, snapshot, Node, Server};

const F: &[u8] = b"a file\n";

/// The server's tree: files, a directory with a file in it, an empty one,
/// a link to a file and a link to a directory.
fn fill(root: &Path) {
    for name in ["a.txt", "b.txt", "c.log", "d.log", "keep/k.txt"] {
        let path = root.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, F).unwrap();
    }
    fs::create_dir(root.join("empty")).unwrap();
    fs::create_dir(root.join("keep/inner")).unwrap();
    symlink("keep/k.txt", root.join("flink")).unwrap();
    symlink("keep", root.join("dlink")).unwrap();
}

/// The names under `root`, directories ending in `/`, links as `name@`.
fn names(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = snapshot(root)
        .into_iter()
        .map(|(p, node)| {
            let p = p.to_string_lossy().into_owned();
            match node {
                Node::Dir => format!("{p}/"),
                Node::File(_) => p,
                _ => format!("{p}@"),
            }
        })
        .collect();
    out.sort();
    out
}

#[test]
fn rm_removes_files_and_links_never_directories() {
    let server = Server::start(&[]);
    fill(server.root());
    let cwd = server.scratch("client");
    let out = server.batch(
        &cwd,
        "rm a.txt\n\
         rm b.txt *.log\n\
         -rm empty\n\
         -rm keep nothing.txt flink\n\
         -rm dlink\n\
         -rm e*\n\
         cd keep\n\
         -rm ../keep k.txt\n\
         -rm /\n\
         ls /\n",
    );
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [
            "error: rm: 'empty': is a directory (use rmdir)",
            "error: rm: 'keep': is a directory (use rmdir)",
            "error: rm: 'nothing.txt' not found on server",
            "error: rm: 2 of 3 files failed",
            // The server lists a link to a directory inside the root as
            // the directory it leads to: rm leaves it alone too.
            "error: rm: 'dlink': is a directory (use rmdir)",
            "error: rm: 'empty': is a directory (use rmdir)",
            "error: rm: '../keep': is a directory (use rmdir)",
            "error: rm: 1 of 2 files failed",
            "error: rm: '/': is a directory (use rmdir)",
        ],
        "{out}"
    );
    // Nothing printed on success, as before.
    for line in ["rm a.txt", "rm b.txt *.log"] {
        assert!(out.section(line).is_empty(), "{line}\n{out}");
    }
    let listed: Vec<String> = parse_ls(&out.section("ls /"))
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(listed, ["dlink/", "empty/", "keep/"], "{out}");
    // `k.txt` went through the working directory, and `flink` (the link,
    // not its target) by name.
    assert_eq!(
        names(server.root()),
        ["dlink@", "empty/", "keep/", "keep/inner/"],
        "{out}"
    );
}

#[test]
fn rmdir_removes_an_empty_directory_only() {
    let server = Server::start(&[]);
    fill(server.root());
    let cwd = server.scratch("client");
    let before: BTreeMap<PathBuf, Node> = snapshot(server.root());
    let out = server.batch(
        &cwd,
        "-rmdir keep\n\
         -rmdir a.txt\n\
         -rmdir flink\n\
         -rmdir nothing\n\
         -rmdir nothing/deeper\n\
         -rmdir a.txt/x\n",
    );
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [
            "error: rmdir: 'keep' directory not empty on server",
            "error: rmdir: 'a.txt' not a directory on server",
            "error: rmdir: 'flink' not a directory on server",
            "error: rmdir: 'nothing' not found on server",
            "error: rmdir: 'nothing/deeper' not found on server",
            "error: rmdir: 'a.txt/x' not a directory on server",
        ],
        "{out}"
    );
    assert_eq!(snapshot(server.root()), before, "{out}");

    // A link to a directory lists as that directory, so rmdir takes it:
    // the link goes (the server removes a link itself), its target stays.
    let out = server.batch(
        &cwd,
        "rmdir empty\nrmdir dlink\ncd keep\nrmdir inner\nrmdir ../empty2\n",
    );
    out.assert_error("rmdir: '../empty2' not found on server");
    assert_eq!(
        names(server.root()),
        [
            "a.txt",
            "b.txt",
            "c.log",
            "d.log",
            "flink@",
            "keep/",
            "keep/k.txt"
        ],
        "{out}"
    );
}

#[test]
fn mkdir_p_creates_parents_and_plain_mkdir_names_the_missing_one() {
    let server = Server::start(&[]);
    fill(server.root());
    let cwd = server.scratch("client");
    let out = server.batch(
        &cwd,
        "mkdir -p x/y/z\n\
         mkdir -p x/y/z\n\
         mkdir -p x/y\n\
         mkdir -p keep/new/\n\
         mkdir -p .\n\
         mkdir -p /\n\
         -mkdir q/r/s\n\
         -mkdir x/y/no/more\n\
         -mkdir x\n\
         -mkdir -p a.txt\n\
         -mkdir -p a.txt/sub\n\
         -mkdir -p x/y/z/a.txt/../../w\n\
         cd x/y\n\
         mkdir -p ../../m/n\n\
         mkdir -p /p/q\n\
         mkdir here\n\
         -mkdir ../../zz/top\n\
         -mkdir nope/deeper\n",
    );
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [
            "error: mkdir: 'q/r/s': parent directory 'q' not found on server (use mkdir -p)",
            "error: mkdir: 'x/y/no/more': parent directory 'x/y/no' not found on server \
             (use mkdir -p)",
            "error: mkdir: 'x' already exists on server",
            "error: mkdir: 'a.txt': exists and is not a directory",
            "error: mkdir: 'a.txt/sub' not a directory on server",
            "error: mkdir: '../../zz/top': parent directory '/zz' not found on server \
             (use mkdir -p)",
            "error: mkdir: 'nope/deeper': parent directory 'nope' not found on server \
             (use mkdir -p)",
        ],
        "{out}"
    );
    let mut want: Vec<&str> = vec![
        "a.txt",
        "b.txt",
        "c.log",
        "d.log",
        "dlink@",
        "empty/",
        "flink@",
        "keep/",
        "keep/inner/",
        "keep/k.txt",
        "keep/new/",
        "m/",
        "m/n/",
        "p/",
        "p/q/",
        "x/",
        "x/y/",
        "x/y/w/",
        "x/y/here/",
        "x/y/z/",
    ];
    want.sort();
    assert_eq!(names(server.root()), want, "{out}");
}
