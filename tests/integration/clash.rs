//! Name clashes, as the seed did them: the server stores `stem_N.ext` and
//! says so; `put -f` replaces. The client does the same for `get`.

use std::fs;

use crate::util::{assert_file_bytes, names_in, Server};

#[test]
fn put_clash_is_stored_as_stem_n() {
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    let root = server.root();

    fs::write(cwd.join("a.txt"), "first").unwrap();
    server
        .batch(&cwd, "put a.txt\n")
        .assert_success()
        .assert_stdout_contains("uploaded 'a.txt' as 'a.txt'");

    fs::write(cwd.join("a.txt"), "second").unwrap();
    server
        .batch(&cwd, "put a.txt\n")
        .assert_success()
        .assert_stdout_contains("uploaded 'a.txt' as 'a_1.txt'");

    fs::write(cwd.join("a.txt"), "third").unwrap();
    server
        .batch(&cwd, "put a.txt\n")
        .assert_success()
        .assert_stdout_contains("uploaded 'a.txt' as 'a_2.txt'");

    assert_file_bytes(&root.join("a.txt"), b"first");
    assert_file_bytes(&root.join("a_1.txt"), b"second");
    assert_file_bytes(&root.join("a_2.txt"), b"third");
    assert_eq!(names_in(root), ["a.txt", "a_1.txt", "a_2.txt"]);
}

#[test]
fn put_clash_without_extension_and_with_two() {
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("README"), "x").unwrap();
    fs::write(cwd.join("a.tar.gz"), "y").unwrap();
    server
        .batch(&cwd, "put README\nput README\nput a.tar.gz\nput a.tar.gz\n")
        .assert_success()
        .assert_stdout_contains("as 'README_1'")
        .assert_stdout_contains("as 'a.tar_1.gz'");
}

#[test]
fn put_force_replaces() {
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    let root = server.root();
    fs::write(cwd.join("a.txt"), "old contents, longer").unwrap();
    server.batch(&cwd, "put a.txt\n").assert_success();
    fs::write(cwd.join("a.txt"), "new").unwrap();
    server
        .batch(&cwd, "put -f a.txt\n")
        .assert_success()
        .assert_stdout_contains("uploaded 'a.txt' as 'a.txt'");
    assert_file_bytes(&root.join("a.txt"), b"new");
    assert_eq!(names_in(root), ["a.txt"], "put -f must not make a_1.txt");
}

#[test]
fn get_clash_is_saved_as_stem_n_locally() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(server.root().join("a.txt"), "remote").unwrap();
    fs::write(cwd.join("a.txt"), "local, keep me").unwrap();

    server
        .batch(&cwd, "get a.txt\n")
        .assert_success()
        .assert_stdout_contains("downloaded 'a.txt' as 'a_1.txt'");
    assert_file_bytes(&cwd.join("a.txt"), b"local, keep me");
    assert_file_bytes(&cwd.join("a_1.txt"), b"remote");

    server
        .batch(&cwd, "get a.txt\n")
        .assert_success()
        .assert_stdout_contains("downloaded 'a.txt' as 'a_2.txt'");
    assert_file_bytes(&cwd.join("a_2.txt"), b"remote");
}

#[test]
fn get_force_replaces_locally() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(server.root().join("a.txt"), "remote").unwrap();
    fs::write(cwd.join("a.txt"), "local and longer than remote").unwrap();
    server
        .batch(&cwd, "get -f a.txt\n")
        .assert_success()
        .assert_stdout_contains("downloaded 'a.txt' as 'a.txt'");
    assert_file_bytes(&cwd.join("a.txt"), b"remote");
    assert_eq!(names_in(&cwd), ["a.txt"], "get -f must not make a_1.txt");
}

#[test]
fn get_lands_in_lcd_directory() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::create_dir(cwd.join("inbox")).unwrap();
    fs::write(server.root().join("a.txt"), "remote").unwrap();
    let out = server.batch(&cwd, "lcd inbox\nlpwd\nget a.txt\nlls\n");
    out.assert_success();
    assert_file_bytes(&cwd.join("inbox/a.txt"), b"remote");
    assert!(!cwd.join("a.txt").exists(), "get ignored lcd\n{out}");
    let lpwd = out.section("lpwd").join("\n");
    assert!(
        lpwd.contains("inbox"),
        "lpwd should print the new local dir\n{out}"
    );
    assert!(
        out.section("lls").iter().any(|l| l.contains("a.txt")),
        "lls should list a.txt\n{out}"
    );
}
