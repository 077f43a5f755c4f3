//! `ls`: one entry a line, size then name (name last), directories with a
//! trailing `/`, dotfiles only with `-a`, reserved temp files never.

use std::fs;

use crate::util::{parse_ls, Server};

fn populate(root: &std::path::Path) {
    fs::write(root.join("a.txt"), "hello").unwrap();
    fs::write(root.join("big.bin"), vec![0u8; 1234]).unwrap();
    fs::create_dir(root.join("dir")).unwrap();
    fs::write(root.join("dir/inner.txt"), "12345678").unwrap();
    fs::write(root.join(".hidden"), "h").unwrap();
    fs::write(root.join(".ftx-tmp-123"), "partial upload").unwrap();
    fs::write(root.join(".ftx-part-a.txt"), "partial").unwrap();
    fs::write(root.join("dir/.ftx-tmp-9"), "partial").unwrap();
}

#[test]
fn ls_format_size_then_name() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    populate(server.root());
    let out = server.batch(&cwd, "ls\nls dir\n");
    out.assert_success();

    let mut root = parse_ls(&out.section("ls"));
    root.sort_by(|a, b| a.1.cmp(&b.1));
    let names: Vec<&str> = root.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(
        names,
        ["a.txt", "big.bin", "dir/"],
        "plain ls of the root\n{out}"
    );
    assert_eq!(root[0].0, 5, "size of a.txt in bytes\n{out}");
    assert_eq!(root[1].0, 1234, "size of big.bin in bytes\n{out}");

    let dir = parse_ls(&out.section("ls dir"));
    assert_eq!(dir, [(8, "inner.txt".to_owned())], "ls dir\n{out}");
}

#[test]
fn ls_a_shows_dotfiles_but_never_temp_files() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    populate(server.root());
    let out = server.batch(&cwd, "ls -a\nls -a dir\nls -l -a\n");
    out.assert_success();
    let names: Vec<String> = parse_ls(&out.section("ls -a"))
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert!(
        names.contains(&".hidden".to_owned()),
        "ls -a shows dotfiles\n{out}"
    );
    assert!(names.contains(&"a.txt".to_owned()), "{out}");
    for line in out.stdout.lines() {
        assert!(
            !line.contains(".ftx-"),
            "temp files must never be listed\n{out}"
        );
    }
    assert!(
        out.section("ls -l -a")
            .iter()
            .any(|l| l.ends_with(".hidden")),
        "ls -l -a shows dotfiles, name last\n{out}"
    );
}

#[test]
fn ls_l_puts_the_name_last() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    populate(server.root());
    let out = server.batch(&cwd, "ls -l\n");
    out.assert_success();
    let lines: Vec<&str> = out
        .section("ls -l")
        .into_iter()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 3, "no header lines, one entry a line\n{out}");
    for want in ["a.txt", "big.bin", "dir/"] {
        assert!(
            lines.iter().any(|l| l
                .strip_suffix(want)
                .is_some_and(|head| head.ends_with(char::is_whitespace))),
            "ls -l should end a line with {want:?}\n{out}"
        );
    }
    out.assert_stdout_lacks(".hidden");
}

#[test]
fn ls_survives_a_non_utf8_name() {
    use std::os::unix::ffi::OsStrExt;
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let bad = std::ffi::OsStr::from_bytes(b"bad\xff\xfe.txt");
    fs::write(server.root().join(bad), "x").unwrap();
    fs::write(server.root().join("good.txt"), "y").unwrap();
    let out = server.batch(&cwd, "ls\n");
    out.assert_success().assert_stdout_contains("good.txt");
    assert!(
        out.section("ls").iter().any(|l| l.contains("bad")),
        "the non-UTF-8 name should be listed lossily\n{out}"
    );
}

#[test]
fn ls_of_empty_root_prints_nothing() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let out = server.batch(&cwd, "ls\n");
    out.assert_success();
    assert!(
        out.section("ls").iter().all(|l| l.trim().is_empty()),
        "no header lines\n{out}"
    );
}
