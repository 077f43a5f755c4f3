//! `ls`: one entry a line, size then name (name last), directories with a
//! trailing `/`, dotfiles only with `-a`, reserved temp files never; a
//! file, a directory or a pattern; `-1`, `-l` (modes, times in UTC), `-h`,
//! `-t`, `-S`, `-r` and `-R`, alone and combined, line for line.

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

/// Sets `path`'s modification time to `secs` after the epoch.
fn set_mtime(path: &std::path::Path, secs: u64) {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    fs::File::open(path)
        .and_then(|f| f.set_modified(when))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

/// Sets `path`'s permission bits.
fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A tree with known sizes, times and modes: `a.txt` (5 B, 2023-11-14
/// 22:13 UTC, 0644), `big.bin` (1234 B, oldest, 0600), `mid.txt` (50 B,
/// newest, 0640), `dir/` (0755) holding `inner.txt` and `sub/deep.txt`,
/// and `.hidden`.
fn dated(root: &std::path::Path) {
    fs::write(root.join("a.txt"), "hello").unwrap();
    fs::write(root.join("big.bin"), vec![7u8; 1234]).unwrap();
    fs::write(root.join("mid.txt"), vec![b'm'; 50]).unwrap();
    fs::create_dir_all(root.join("dir/sub")).unwrap();
    fs::write(root.join("dir/inner.txt"), "12345678").unwrap();
    fs::write(root.join("dir/sub/deep.txt"), "deep").unwrap();
    fs::write(root.join(".hidden"), "h").unwrap();
    set_mode(&root.join("a.txt"), 0o644);
    set_mode(&root.join("big.bin"), 0o600);
    set_mode(&root.join("mid.txt"), 0o640);
    set_mode(&root.join("dir"), 0o755);
    set_mode(&root.join(".hidden"), 0o644);
    set_mtime(&root.join("a.txt"), 1_700_000_000);
    set_mtime(&root.join("big.bin"), 1_600_000_000);
    set_mtime(&root.join("mid.txt"), 1_750_000_000);
    set_mtime(&root.join("dir"), 1_650_000_000);
    set_mtime(&root.join(".hidden"), 1_690_000_000);
}

/// `ls FILE` lists the file, `ls PATTERN` the matches (as matched), or the
/// contents of the one directory matched; a missing name, an empty match
/// and `ls FILE/` are errors.
#[test]
fn ls_takes_a_file_a_directory_or_a_pattern() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    dated(server.root());
    let out = server.batch(
        &cwd,
        "ls a.txt\n\
         ls dir/inner.txt\n\
         ls *.txt\n\
         ls d*\n\
         ls *\n\
         ls */*.txt\n\
         ls -a .h*\n\
         cd dir\n\
         ls ../*.bin\n\
         ls /a.txt\n\
         -ls nothing\n\
         -ls *.none\n\
         -ls ../a.txt/\n",
    );
    assert_eq!(
        out.error_lines(),
        [
            "error: ls: 'nothing' not found on server",
            "error: ls: '*.none': no match on server",
            "error: ls: '../a.txt/' not a directory on server",
        ],
        "{out}"
    );
    out.assert_success();
    let lines = |line: &str| out.section(line);
    assert_eq!(lines("ls a.txt"), ["           5 a.txt"], "{out}");
    assert_eq!(
        lines("ls dir/inner.txt"),
        ["           8 dir/inner.txt"],
        "{out}"
    );
    assert_eq!(
        lines("ls *.txt"),
        ["           5 a.txt", "          50 mid.txt"],
        "{out}"
    );
    assert_eq!(
        lines("ls d*"),
        ["           8 inner.txt", "           0 sub/"],
        "{out}"
    );
    assert_eq!(
        lines("ls *"),
        [
            "           5 a.txt",
            "        1234 big.bin",
            "           0 dir/",
            "          50 mid.txt"
        ],
        "{out}"
    );
    assert_eq!(lines("ls */*.txt"), ["           8 dir/inner.txt"], "{out}");
    assert_eq!(lines("ls -a .h*"), ["           1 .hidden"], "{out}");
    assert_eq!(lines("ls ../*.bin"), ["        1234 ../big.bin"], "{out}");
    assert_eq!(lines("ls /a.txt"), ["           5 /a.txt"], "{out}");
}

/// `-1`, `-l` (modes, sizes, times with their zone), `-h`, `-a`, `-t`,
/// `-S` and `-r`, alone and combined, line for line.
#[test]
fn ls_options_alone_and_combined() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    dated(server.root());
    let out = server.batch(
        &cwd,
        "ls -1\nls -l\nls -lh\nls -t\nls -S\nls -r\nls -laht\nls -1Sr\nls -l a.txt\nls -1 -l -1\n",
    );
    out.assert_success();
    let lines = |line: &str| out.section(line);
    assert_eq!(
        lines("ls -1"),
        ["a.txt", "big.bin", "dir/", "mid.txt"],
        "{out}"
    );
    assert_eq!(
        lines("ls -l"),
        [
            "-rw-r--r--            5 2023-11-14 22:13 UTC a.txt",
            "-rw-------         1234 2020-09-13 12:26 UTC big.bin",
            "drwxr-xr-x            0 2022-04-15 05:20 UTC dir/",
            "-rw-r-----           50 2025-06-15 15:06 UTC mid.txt",
        ],
        "{out}"
    );
    assert_eq!(
        lines("ls -lh"),
        [
            "-rw-r--r--      5B 2023-11-14 22:13 UTC a.txt",
            "-rw-------    1.2K 2020-09-13 12:26 UTC big.bin",
            "drwxr-xr-x      0B 2022-04-15 05:20 UTC dir/",
            "-rw-r-----     50B 2025-06-15 15:06 UTC mid.txt",
        ],
        "{out}"
    );
    let names = |line: &str| -> Vec<String> {
        parse_ls(&out.section(line))
            .into_iter()
            .map(|(_, n)| n)
            .collect()
    };
    assert_eq!(
        names("ls -t"),
        ["mid.txt", "a.txt", "dir/", "big.bin"],
        "{out}"
    );
    assert_eq!(
        names("ls -S"),
        ["big.bin", "mid.txt", "a.txt", "dir/"],
        "{out}"
    );
    assert_eq!(
        names("ls -r"),
        ["mid.txt", "dir/", "big.bin", "a.txt"],
        "{out}"
    );
    assert_eq!(
        lines("ls -laht"),
        [
            "-rw-r-----     50B 2025-06-15 15:06 UTC mid.txt",
            "-rw-r--r--      5B 2023-11-14 22:13 UTC a.txt",
            "-rw-r--r--      1B 2023-07-22 04:26 UTC .hidden",
            "drwxr-xr-x      0B 2022-04-15 05:20 UTC dir/",
            "-rw-------    1.2K 2020-09-13 12:26 UTC big.bin",
        ],
        "{out}"
    );
    assert_eq!(
        lines("ls -1Sr"),
        ["dir/", "a.txt", "mid.txt", "big.bin"],
        "{out}"
    );
    assert_eq!(
        lines("ls -l a.txt"),
        ["-rw-r--r--            5 2023-11-14 22:13 UTC a.txt"],
        "{out}"
    );
    // The last of -1 and -l wins, as in sftp.
    assert_eq!(lines("ls -1 -l -1"), lines("ls -1"), "{out}");
}

/// `ls -R`: each directory after a `DIR:` line, depth first in the order
/// shown, a blank line between; with a pattern, the matches first.
#[test]
fn ls_recursive_lists_every_directory_beneath() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    dated(server.root());
    fs::create_dir(server.root().join("empty")).unwrap();
    let out = server.batch(
        &cwd,
        "ls -R\nls -1R dir\nls -1R d*\nls -1R [de]*\ncd dir\nls -1R /dir/sub\n",
    );
    out.assert_success();
    assert_eq!(
        out.section("ls -R"),
        [
            ".:",
            "           5 a.txt",
            "        1234 big.bin",
            "           0 dir/",
            "           0 empty/",
            "          50 mid.txt",
            "",
            "./dir:",
            "           8 inner.txt",
            "           0 sub/",
            "",
            "./dir/sub:",
            "           4 deep.txt",
            "",
            "./empty:",
        ],
        "{out}"
    );
    assert_eq!(
        out.section("ls -1R dir"),
        ["dir:", "inner.txt", "sub/", "", "dir/sub:", "deep.txt"],
        "{out}"
    );
    // One directory matches: as `ls -R dir`.
    assert_eq!(out.section("ls -1R d*"), out.section("ls -1R dir"), "{out}");
    // Two match: the matches, then each beneath.
    assert_eq!(
        out.section("ls -1R [de]*"),
        [
            "dir/",
            "empty/",
            "",
            "dir:",
            "inner.txt",
            "sub/",
            "",
            "dir/sub:",
            "deep.txt",
            "",
            "empty:",
        ],
        "{out}"
    );
    assert_eq!(
        out.section("ls -1R /dir/sub"),
        ["/dir/sub:", "deep.txt"],
        "{out}"
    );
}
