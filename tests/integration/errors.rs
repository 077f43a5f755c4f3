//! Failures the user meets every day: each is one `error:` line on stderr
//! naming the cause in plain words, a non-zero exit, and nothing left behind.

use std::fs;

use crate::util::{assert_file_bytes, assert_no_temp_files, names_in, Server};

#[test]
fn get_missing_is_not_found() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let out = server.batch(&cwd, "get nothing.txt\n");
    out.assert_error("not found");
    assert!(
        out.error_lines().iter().any(|l| l.contains("nothing.txt")),
        "the error should name the file\n{out}"
    );
    assert_eq!(out.error_lines().len(), 1, "one error line\n{out}");
    assert!(
        names_in(&cwd).is_empty(),
        "get of a missing file created {:?}",
        names_in(&cwd)
    );
}

#[test]
fn put_missing_local_file_fails() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let out = server.batch(&cwd, "put nothing.txt\n");
    out.assert_failure();
    assert_eq!(out.error_lines().len(), 1, "one error line\n{out}");
    assert!(
        out.error_lines()[0].contains("nothing.txt"),
        "the error should name the file\n{out}"
    );
    assert!(names_in(server.root()).is_empty());
}

#[test]
fn get_directory_is_a_directory() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::create_dir(server.root().join("d")).unwrap();
    server.batch(&cwd, "get d\n").assert_error("is a directory");
}

#[test]
fn rm_missing_is_not_found() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    server.batch(&cwd, "rm ghost\n").assert_error("not found");
}

#[test]
fn ls_missing_is_not_found() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    server.batch(&cwd, "ls ghost\n").assert_error("not found");
}

#[test]
fn mkdir_rm_rename_are_silent_and_work() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let root = server.root();
    fs::write(root.join("a.txt"), "a").unwrap();
    fs::write(root.join("c.txt"), "c").unwrap();
    let out = server.batch(
        &cwd,
        "mkdir d\nrename a.txt d/b.txt\nmkdir e\nrmdir e\nrm c.txt\nmkdir -p f/g\n",
    );
    out.assert_success();
    for line in [
        "mkdir d",
        "rename a.txt d/b.txt",
        "mkdir e",
        "rmdir e",
        "rm c.txt",
        "mkdir -p f/g",
    ] {
        let printed = out.section(line);
        assert!(
            printed.iter().all(|l| l.trim().is_empty()),
            "{line:?} should print nothing on success\n{out}"
        );
    }
    assert_file_bytes(&root.join("d/b.txt"), b"a");
    assert!(!root.join("a.txt").exists());
    assert!(!root.join("e").exists());
    assert!(!root.join("c.txt").exists());
    assert!(root.join("f/g").is_dir());
}

#[test]
fn rename_onto_existing_fails_and_keeps_both() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let root = server.root();
    fs::write(root.join("a.txt"), "a").unwrap();
    fs::write(root.join("b.txt"), "b").unwrap();
    server.batch(&cwd, "rename a.txt b.txt\n").assert_failure();
    assert_file_bytes(&root.join("a.txt"), b"a");
    assert_file_bytes(&root.join("b.txt"), b"b");
}

#[test]
fn read_only_server_refuses_writes_but_serves() {
    let server = Server::start(&["--read-only"]);
    let cwd = server.scratch("client");
    let root = server.root();
    fs::write(root.join("keep.txt"), "keep").unwrap();
    fs::write(cwd.join("up.txt"), "up").unwrap();

    for line in [
        "put up.txt",
        "mkdir d",
        "rm keep.txt",
        "rename keep.txt moved.txt",
    ] {
        server
            .batch(&cwd, &format!("{line}\n"))
            .assert_error("read-only");
    }
    server.batch(&cwd, "get keep.txt\nls\n").assert_success();
    assert_file_bytes(&cwd.join("keep.txt"), b"keep");
    assert_eq!(names_in(root), ["keep.txt"]);
}

#[test]
fn the_same_changes_succeed_without_read_only() {
    // The counterpart of the read-only test: each mutating operation, on a
    // server that allows it, with its postcondition on disk.
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let root = server.root();
    fs::write(root.join("keep.txt"), "keep").unwrap();
    fs::write(root.join("gone.txt"), "gone").unwrap();
    fs::write(cwd.join("up.txt"), "up").unwrap();

    server
        .batch(
            &cwd,
            "put up.txt
",
        )
        .assert_success();
    assert_file_bytes(&root.join("up.txt"), b"up");
    server
        .batch(
            &cwd, "mkdir d
",
        )
        .assert_success();
    assert!(root.join("d").is_dir());
    server
        .batch(
            &cwd,
            "rm gone.txt
",
        )
        .assert_success();
    assert!(!root.join("gone.txt").exists());
    server
        .batch(
            &cwd,
            "rename keep.txt moved.txt
",
        )
        .assert_success();
    assert_file_bytes(&root.join("moved.txt"), b"keep");
    assert_eq!(names_in(root), ["d", "moved.txt", "up.txt"]);
}

#[test]
fn file_over_max_file_size_is_too_large() {
    let server = Server::start(&["--max-file-size", "1000"]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("small.bin"), vec![7u8; 1000]).unwrap();
    fs::write(cwd.join("big.bin"), vec![7u8; 1001]).unwrap();
    server
        .batch(&cwd, "put big.bin\n")
        .assert_error("too large");
    server.batch(&cwd, "put small.bin\n").assert_success();
    assert_eq!(names_in(server.root()), ["small.bin"]);
    assert_no_temp_files(server.root());
}
