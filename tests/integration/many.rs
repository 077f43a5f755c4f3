//! Many files at once through `ftx -b`: patterns on both sides, several
//! names, `-r` trees (nested, empty directories, unicode names) compared
//! byte for byte, failures that do not stop the rest, names from the
//! server that the client refuses to use locally, and output without
//! escape sequences when it goes to a pipe.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ftx::proto::message::Message;

use crate::util::fake::FakeServer;
use crate::util::{
    assert_no_temp_files, ftx_bin, names_in, run_batch, snapshot, tree, write_random_file, Server,
};

/// A tree with nested and empty directories, unicode and spaced names,
/// a hidden file, an empty file and one bigger than a chunk.
fn make_tree(top: &Path) {
    for dir in [
        "sub/deeper",
        "empty",
        "sub/also empty",
        "日本語",
        "ünï cödé",
    ] {
        fs::create_dir_all(top.join(dir)).unwrap();
    }
    fs::write(top.join("a.txt"), b"top file\n").unwrap();
    fs::write(top.join(".hidden"), b"dot").unwrap();
    fs::write(top.join("zero"), b"").unwrap();
    fs::write(top.join("日本語/ファイル.txt"), "こんにちは".as_bytes()).unwrap();
    fs::write(top.join("ünï cödé/naïve café.md"), b"x").unwrap();
    fs::write(top.join("sub/with space.txt"), b"spaced").unwrap();
    write_random_file(&top.join("sub/deeper/big.bin"), 600_000, 61);
}

#[test]
fn recursive_trees_arrive_intact_both_ways() {
    let server = Server::start(&["--no-fsync"]);
    let up = server.scratch("up");
    make_tree(&up.join("tree"));
    let want = snapshot(&up.join("tree"));

    let out = server.batch(&up, "put -r tree\nput -r tree copy\n");
    out.assert_success()
        .assert_stdout_contains("uploaded 'tree/sub/deeper/big.bin' as 'tree/sub/deeper/big.bin'");
    assert_eq!(
        snapshot(&server.root().join("tree")),
        want,
        "{}",
        tree(server.root())
    );
    assert_eq!(snapshot(&server.root().join("copy")), want);

    // Again onto the existing tree with -f: directories are reused, files replaced.
    server.batch(&up, "put -rf tree\n").assert_success();
    assert_eq!(snapshot(&server.root().join("tree")), want);

    let down = server.scratch("down");
    let out = server.batch(&down, "get -r tree\nget -r copy other\n");
    out.assert_success();
    assert_eq!(snapshot(&down.join("tree")), want, "{}", tree(&down));
    assert_eq!(snapshot(&down.join("other")), want);
    assert_no_temp_files(server.root());
    assert_no_temp_files(&down);
}

#[test]
fn patterns_and_several_names() {
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    for name in ["a.log", "b.log", "c.txt", "d e.log"] {
        fs::write(cwd.join(name), name.as_bytes()).unwrap();
    }
    let out = server.batch(&cwd, "put *.log\nmkdir logs\nput [ab].* logs\n");
    out.assert_success();
    assert_eq!(
        names_in(server.root()),
        ["a.log", "b.log", "d e.log", "logs"]
    );
    assert_eq!(names_in(&server.root().join("logs")), ["a.log", "b.log"]);

    // Three or more names are all sources, each stored under its base
    // name: the last one is not a target directory.
    let out = server.batch(&cwd, "mkdir three\nput c.txt a.log 'd e.log' three/\n");
    out.assert_failure()
        .assert_stdout_contains("uploaded 'c.txt' as 'c.txt'")
        .assert_stdout_contains("uploaded 'a.log' as 'a_1.log'")
        .assert_stdout_contains("uploaded 'd e.log' as 'd e_1.log'")
        .assert_error_line("put: local file 'three/': not found")
        .assert_error_line("put: 1 of 4 files failed");
    assert!(names_in(&server.root().join("three")).is_empty());

    // Remote patterns, matched by ftx against listings.
    for name in ["x.gz", "y.gz", "z.txt"] {
        fs::write(server.root().join("logs").join(name), name.as_bytes()).unwrap();
    }
    let down = server.scratch("down");
    let out = server.batch(&down, "get logs/*.gz\nget */?.log fromdirs/\n");
    // fromdirs/ does not exist: the second line fails, fetching nothing.
    out.assert_error_line("get: 'fromdirs/': local directory not found");
    out.assert_failure();
    assert_eq!(names_in(&down), ["x.gz", "y.gz"]);
    assert_eq!(fs::read(down.join("x.gz")).unwrap(), b"x.gz");
    fs::create_dir(down.join("fromdirs")).unwrap();
    server
        .batch(&down, "get */?.log fromdirs/\n")
        .assert_success();
    assert_eq!(names_in(&down.join("fromdirs")), ["a.log", "b.log"]);
}

#[test]
fn one_failure_is_reported_and_the_rest_go_on() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("one"), b"1").unwrap();
    fs::write(cwd.join("three"), b"3").unwrap();
    fs::create_dir(cwd.join("adir")).unwrap();
    let out = server.batch(&cwd, "put one missing adir three\nls\n");
    out.assert_failure()
        .assert_error_line("put: local file 'missing': not found")
        .assert_error_line("put: 'adir': is a directory (use put -r)")
        .assert_error_line("put: 2 of 4 files failed")
        // The batch stopped at the failed command.
        .assert_stdout_lacks("ftx> ls");
    assert_eq!(names_in(server.root()), ["one", "three"]);

    // A pattern that matches nothing is one plain error.
    let out = server.batch(&cwd, "get nothing*\n");
    out.assert_failure()
        .assert_error_line("get: 'nothing*': no match on server");
    assert_eq!(out.error_lines().len(), 1, "{out}");
    let out = server.batch(&cwd, "put nothing*\n");
    out.assert_failure()
        .assert_error_line("put: 'nothing*': no match");
}

#[test]
fn pathological_remote_pattern_is_quick() {
    let server = Server::start(&[]);
    fs::write(server.root().join("a".repeat(250)), b"").unwrap();
    let cwd = server.scratch("client");
    let started = Instant::now();
    let out = server.batch(&cwd, "get a*a*a*a*a*a*a*a*a*a*a*a*b\n");
    out.assert_failure().assert_error("no match on server");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn unsafe_names_from_the_server_are_refused() {
    // Names the server lists as they are in its root, but which must never
    // become local paths as such: control characters (the terminal) and a
    // backslash (a path separator elsewhere).
    let server = Server::start(&[]);
    let dir = server.root().join("d");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("good.txt"), b"good").unwrap();
    fs::write(dir.join("bad\x1b[2Jname"), b"bad").unwrap();
    fs::write(dir.join("back\\slash"), b"bad").unwrap();
    let cwd = server.scratch("client");
    let out = server.batch(&cwd, "get -r d\n");
    out.assert_failure().assert_error("unsafe name");
    assert_eq!(names_in(&cwd.join("d")), ["good.txt"]);
    let out = server.batch(&cwd, "get d/b*\n");
    out.assert_failure().assert_error("unsafe name");
    assert_eq!(names_in(&cwd), ["d"]);
}

/// `ftx -b -` with stdout and stderr on pipes and the environment as
/// given (no NO_COLOR forced); returns (status ok, stdout, stderr).
fn batch_raw(server: &Server, cwd: &Path, script: &str, no_color: bool) -> (bool, String, String) {
    let home = server.scratch(if no_color { "home-nc" } else { "home-c" });
    let mut cmd = Command::new(ftx_bin());
    let (extra, access_env) = crate::util::ftx_access(&server.addr_arg());
    cmd.args([server.addr_arg().as_str(), "-b", "-"])
        .args(&extra)
        .envs(access_env)
        .current_dir(cwd)
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("TERM", "xterm-256color")
        .env("CLICOLOR_FORCE", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    let mut child = cmd.spawn().expect("spawn ftx");
    let mut stdin = child.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, script.as_bytes()).expect("write script");
    drop(stdin);
    let out = child.wait_with_output().expect("ftx output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn batch_output_to_a_pipe_has_no_escape_sequences() {
    let server = Server::start(&[]);
    fs::create_dir(server.root().join("docs")).unwrap();
    let cwd = server.scratch("client");
    make_tree(&cwd.join("t"));
    let script = "ls\nls -l\nput -r t\n-get nope\n-put missing\nprogress\nprogress\nhelp\n\
                  -get -r 't'\nls -la t\n";
    for no_color in [false, true] {
        let (ok, out, err) = batch_raw(&server, &cwd, script, no_color);
        assert!(ok, "NO_COLOR={no_color}\n{out}\n{err}");
        assert!(out.contains("docs/") && err.contains("error: get: 'nope'"));
        assert!(
            !out.contains('\x1b') && !err.contains('\x1b'),
            "escape sequence with NO_COLOR={no_color}:\n{out:?}\n{err:?}"
        );
    }
}

/// The files of a many-file `put` go out without waiting for answers: a
/// server that answers nothing until it received every upload still gets
/// them all (a client that waited for each `PutDone` would hang here), and
/// its answers, all arriving at the end, are matched to the right files.
#[test]
fn a_many_file_put_keeps_its_uploads_in_flight() {
    use ftx::proto::message::{FEATURE_ATTRS, FEATURE_PIPELINE};
    const FILES: usize = 12;
    let mut held: Vec<Message> = Vec::new();
    let mut done = 0;
    let mut names = Vec::new();
    let fake = FakeServer::start(FEATURE_ATTRS | FEATURE_PIPELINE, "fake", move |msg| {
        match msg {
            Message::Put { path, size, .. } => names.push((path.clone(), *size)),
            Message::Done { .. } => {
                let (path, size) = names[done].clone();
                done += 1;
                // The third file is refused (after its data, as a full disk would).
                if done == 3 {
                    held.push(Message::Error {
                        code: ftx::proto::error::ErrorCode::NoSpace,
                        message: "no space left".into(),
                    });
                } else {
                    held.push(Message::PutReady {
                        name: path.clone(),
                        offset: 0,
                        digest: [0; 32],
                        partial: 0,
                        flags: 0,
                    });
                    held.push(Message::Ack { offset: size });
                    // Stored under another name, as after a clash.
                    held.push(Message::PutDone {
                        name: format!("{path}.stored"),
                        size,
                    });
                }
                if done == FILES {
                    return std::mem::take(&mut held);
                }
            }
            _ => {}
        }
        Vec::new()
    });
    let dir = tempfile::tempdir().unwrap();
    for i in 0..FILES {
        fs::write(dir.path().join(format!("f{i:02}")), vec![i as u8; 100 + i]).unwrap();
    }
    let out = run_batch(&fake.addr(), dir.path(), "-put f*\n");
    let received = fake.received();
    let puts: Vec<&str> = received
        .iter()
        .filter_map(|m| match m {
            Message::Put { path, .. } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(puts.len(), FILES, "{out}");
    let uploaded: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("uploaded"))
        .collect();
    assert_eq!(uploaded.len(), FILES - 1, "{out}");
    for (i, line) in uploaded.iter().enumerate() {
        let i = if i < 2 { i } else { i + 1 };
        let want = format!("uploaded 'f{i:02}' as 'f{i:02}.stored'");
        assert!(line.starts_with(&want), "{line} / {want}");
    }
    assert_eq!(
        out.error_lines(),
        [
            "error: put: 'f02': no space left",
            "error: put: 1 of 12 files failed"
        ],
        "{out}"
    );
}

/// A server that refuses each upload at once, while its data is still
/// going out: every file fails with the server's reason and the command
/// ends at once (the client stops sending a refused upload's data and
/// goes on with the next file instead of waiting for answers that never
/// come).
#[test]
fn refused_uploads_in_flight_each_fail_and_the_command_ends() {
    use ftx::proto::message::{FEATURE_ATTRS, FEATURE_PIPELINE};
    let fake = FakeServer::start(FEATURE_ATTRS | FEATURE_PIPELINE, "fake", |msg| match msg {
        Message::Put { .. } => vec![Message::Error {
            code: ftx::proto::error::ErrorCode::ReadOnly,
            message: "read-only".into(),
        }],
        _ => Vec::new(),
    });
    let dir = tempfile::tempdir().unwrap();
    for i in 0..6 {
        write_random_file(&dir.path().join(format!("r{i}")), 1 << 20, i);
    }
    let started = Instant::now();
    let out = crate::util::run_batch_timeout(
        &fake.addr(),
        dir.path(),
        "put r*\n",
        Duration::from_secs(60),
    );
    assert!(started.elapsed() < Duration::from_secs(30), "{out}");
    let mut errors = out.error_lines();
    assert_eq!(
        errors.pop(),
        Some("error: put: 6 of 6 files failed"),
        "{out}"
    );
    assert_eq!(errors.len(), 6, "{out}");
    assert!(errors.iter().all(|l| l.contains("read-only")), "{out}");
}

/// A `put -r` whose top directory cannot be made says so once, not once
/// for every directory below it.
#[test]
fn a_directory_that_cannot_be_made_fails_its_subtree_once() {
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    fs::create_dir_all(cwd.join("t/a/b/c")).unwrap();
    fs::write(cwd.join("t/a/b/c/f"), b"f").unwrap();
    fs::write(cwd.join("t/a/g"), b"g").unwrap();
    // A file is in the way of the tree's top directory.
    fs::write(server.root().join("t"), b"in the way").unwrap();
    let out = run_batch(&server.addr_arg(), &cwd, "put -r t\n");
    // `t` "exists" (the file), so its directories below fail: the first
    // one says so, its own subdirectories are not tried on their own.
    let errors = out.error_lines();
    assert_eq!(
        errors,
        ["error: put: 't/a' not a directory on server"],
        "{out}"
    );
    assert_eq!(fs::read(server.root().join("t")).unwrap(), b"in the way");
}

/// Several uploads to one name in one command, their commits (fsync on)
/// under way together: the names are taken in the order of the command,
/// and each line names what its file became.
#[test]
fn uploads_committed_together_take_their_names_in_order() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    for (i, dir) in ["d1", "d2", "d3", "d4"].iter().enumerate() {
        fs::create_dir(cwd.join(dir)).unwrap();
        fs::write(cwd.join(dir).join("same.txt"), format!("version {i}")).unwrap();
    }
    let out = server.batch(
        &cwd,
        "put d1/same.txt d2/same.txt d3/same.txt d4/same.txt\n",
    );
    out.assert_success();
    let stored: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("uploaded '"))
        .collect();
    assert_eq!(stored.len(), 4, "{out}");
    let want = ["same.txt", "same_1.txt", "same_2.txt", "same_3.txt"];
    for (i, (line, name)) in stored.iter().zip(want).enumerate() {
        assert!(
            line.starts_with(&format!("d{}/same.txt' as '{name}'", i + 1)),
            "{line}\n{out}"
        );
        assert_eq!(
            fs::read_to_string(server.root().join(name)).unwrap(),
            format!("version {i}")
        );
    }
}

/// `put -p` of several files: each file's time and mode are set (the
/// `SetAttrs` that follow each upload in flight name the right file), and
/// the lines come in the command's order.
#[test]
fn put_p_of_many_files_keeps_each_files_time_in_order() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    let names = ["p1", "p2", "p3", "p4", "p5"];
    for (i, name) in names.iter().enumerate() {
        let path = cwd.join(name);
        fs::write(&path, format!("file {i}")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600 + 0o10 * i as u32)).unwrap();
        let when = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000 + 86_400 * i as u64);
        fs::File::open(&path).unwrap().set_modified(when).unwrap();
    }
    let out = server.batch(&cwd, "put -p p1 p2 p3 p4 p5\n");
    out.assert_success();
    let order: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("uploaded '"))
        .map(|l| l.split('\'').next().unwrap())
        .collect();
    assert_eq!(order, names, "{out}");
    for (i, name) in names.iter().enumerate() {
        let meta = fs::metadata(server.root().join(name)).unwrap();
        let mtime = meta
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        assert_eq!(mtime.as_secs(), 1_000_000_000 + 86_400 * i as u64, "{name}");
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o600 + 0o10 * i as u32,
            "{name}"
        );
    }
}
