//! `put`/`get` with `-u` (size and modification time) and `-c` (size and
//! BLAKE3 digest) through the real binaries: a second run over an
//! unchanged tree moves no file data (checked in ftxd's debug log: no
//! upload or download started), prints the count of files skipped and,
//! with `-v`, each name; a changed file is sent alone and replaces the
//! old one.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, SystemTime};

use crate::util::{snapshot, Server};

const FILES: usize = 50;

/// `top` with 50 small files in five directories.
fn make_files(top: &Path) {
    for i in 0..FILES {
        let dir = top.join(format!("d{}", i / 10));
        fs::create_dir_all(&dir).unwrap();
        let body = format!("file {i}\n").repeat(i + 1);
        fs::write(dir.join(format!("f{i:02}.txt")), body).unwrap();
    }
}

/// Rewrites `path` with other bytes of the same length, and moves its
/// modification time `secs` seconds (0: keeps it).
fn change_same_size(path: &Path, secs: i64) {
    let old = fs::metadata(path).unwrap().modified().unwrap();
    let mut data = fs::read(path).unwrap();
    data[0] ^= 0x20;
    fs::write(path, &data).unwrap();
    let when = if secs >= 0 {
        old + Duration::from_secs(secs as u64)
    } else {
        old - Duration::from_secs(secs.unsigned_abs())
    };
    set_mtime(path, when);
}

fn set_mtime(path: &Path, when: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

/// Uploads the server started (`put 'x' (N bytes) started`, at debug).
fn puts_started(server: &Server) -> usize {
    settled_logs(server)
        .lines()
        .filter(|l| l.contains(": put '") && l.ends_with(" started"))
        .count()
}

/// Downloads from the first byte the server started (`get 'x' (N bytes)`,
/// at debug); a digest asked by `-c` is not one.
fn gets_started(server: &Server) -> usize {
    settled_logs(server)
        .lines()
        .filter(|l| l.contains(": get '") && l.ends_with(" bytes)"))
        .count()
}

/// The server's log once the lines of the last command are in.
fn settled_logs(server: &Server) -> String {
    thread::sleep(Duration::from_millis(150));
    server.logs()
}

fn skipped_lines(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.starts_with("skipped '") && l.ends_with("' (unchanged)"))
        .count()
}

#[test]
fn put_u_sends_only_what_is_missing_or_changed() {
    let server = Server::start(&["--verbose", "--no-fsync"]);
    let up = server.scratch("up");
    make_files(&up.join("tree"));
    server.batch(&up, "put -r -p tree\n").assert_success();
    assert_eq!(puts_started(&server), FILES);

    // Nothing changed: nothing is sent, everything is counted (and named).
    let out = server.batch(&up, "put -r -u tree\nput -ruv tree\n");
    out.assert_success()
        .assert_stdout_contains("put: 50 files skipped (unchanged), 0 sent")
        .assert_stdout_contains("skipped 'tree/d0/f00.txt' (unchanged)")
        .assert_stdout_lacks("uploaded");
    assert_eq!(skipped_lines(&out.stdout), FILES, "{}", out.stdout);
    assert_eq!(puts_started(&server), FILES, "{}", server.logs());

    // One file changed (same size, a later time) and one is new: those two.
    change_same_size(&up.join("tree/d3/f31.txt"), 10);
    fs::write(up.join("tree/d4/new.txt"), "new\n").unwrap();
    let out = server.batch(&up, "put -r -u tree\n");
    out.assert_success()
        .assert_stdout_contains("put: 49 files skipped (unchanged), 2 sent")
        .assert_stdout_contains("uploaded 'tree/d3/f31.txt' as 'tree/d3/f31.txt'")
        .assert_stdout_contains("uploaded 'tree/d4/new.txt' as 'tree/d4/new.txt'");
    assert_eq!(puts_started(&server), FILES + 2);
    // Replaced, not stored beside (no f31_1.txt); times kept for next time.
    assert_eq!(
        snapshot(&server.root().join("tree")),
        snapshot(&up.join("tree"))
    );
    let out = server.batch(&up, "put -r -u tree\n");
    out.assert_stdout_contains("put: 51 files skipped (unchanged), 0 sent");
    assert_eq!(puts_started(&server), FILES + 2);
}

#[test]
fn put_c_skips_equal_content_whatever_the_times() {
    let server = Server::start(&["--verbose", "--no-fsync"]);
    let up = server.scratch("up");
    make_files(&up.join("tree"));
    // Without -p the server's times are those of the upload.
    server.batch(&up, "put -r tree\n").assert_success();
    let old = SystemTime::now() - Duration::from_secs(3600);
    for i in 0..FILES {
        set_mtime(&up.join(format!("tree/d{}/f{i:02}.txt", i / 10)), old);
    }

    let out = server.batch(&up, "put -r -c tree\n");
    out.assert_success()
        .assert_stdout_contains("put: 50 files skipped (unchanged), 0 sent");
    assert_eq!(puts_started(&server), FILES, "{}", server.logs());

    // Same size, same time, other bytes: -c sends it.
    change_same_size(&up.join("tree/d2/f20.txt"), 0);
    let out = server.batch(&up, "put -rcv tree\n");
    out.assert_success()
        .assert_stdout_contains("put: 49 files skipped (unchanged), 1 sent")
        .assert_stdout_contains("uploaded 'tree/d2/f20.txt' as 'tree/d2/f20.txt'");
    assert_eq!(skipped_lines(&out.stdout), 49);
    assert_eq!(puts_started(&server), FILES + 1);
    assert_eq!(
        snapshot(&server.root().join("tree")),
        snapshot(&up.join("tree"))
    );
}

#[test]
fn get_u_and_c_fetch_only_what_differs() {
    let server = Server::start(&["--verbose", "--no-fsync"]);
    make_files(&server.root().join("tree"));
    let down = server.scratch("down");
    server.batch(&down, "get -r -p tree\n").assert_success();
    assert_eq!(gets_started(&server), FILES);

    let out = server.batch(&down, "get -r -u tree\n");
    out.assert_success()
        .assert_stdout_contains("get: 50 files skipped (unchanged), 0 fetched")
        .assert_stdout_lacks("downloaded");
    assert_eq!(gets_started(&server), FILES, "{}", server.logs());

    // Changed on the server (same size, later time): fetched alone, replaced.
    change_same_size(&server.root().join("tree/d1/f15.txt"), 10);
    let out = server.batch(&down, "get -r -uv tree\n");
    out.assert_success()
        .assert_stdout_contains("get: 49 files skipped (unchanged), 1 fetched")
        .assert_stdout_contains("skipped 'tree/d0/f00.txt' (unchanged)")
        .assert_stdout_contains("downloaded 'tree/d1/f15.txt' as 'tree/d1/f15.txt'");
    assert_eq!(gets_started(&server), FILES + 1);
    assert_eq!(
        snapshot(&down.join("tree")),
        snapshot(&server.root().join("tree"))
    );

    // -c: local times all differ, the content decides.
    let old = SystemTime::now() - Duration::from_secs(3600);
    for i in 0..FILES {
        set_mtime(&down.join(format!("tree/d{}/f{i:02}.txt", i / 10)), old);
    }
    change_same_size(&down.join("tree/d4/f44.txt"), 0);
    let out = server.batch(&down, "get -r -c tree\n");
    out.assert_success()
        .assert_stdout_contains("get: 49 files skipped (unchanged), 1 fetched")
        .assert_stdout_contains("downloaded 'tree/d4/f44.txt' as 'tree/d4/f44.txt'");
    assert_eq!(gets_started(&server), FILES + 2, "{}", server.logs());
    assert_eq!(
        snapshot(&down.join("tree")),
        snapshot(&server.root().join("tree"))
    );
}

#[test]
fn single_files_and_names() {
    let server = Server::start(&["--verbose", "--no-fsync"]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("a.txt"), "alpha\n").unwrap();
    fs::write(server.root().join("b.txt"), "bravo\n").unwrap();
    server
        .batch(&cwd, "put -p a.txt\nget -p b.txt\n")
        .assert_success();

    let out = server.batch(
        &cwd,
        "put -u a.txt\nput -uv a.txt\nget -c b.txt\nget -cv b.txt\nput -c a.txt copy.txt\n",
    );
    out.assert_success()
        .assert_stdout_contains("put: 1 file skipped (unchanged), 0 sent")
        .assert_stdout_contains("skipped 'a.txt' (unchanged)")
        .assert_stdout_contains("get: 1 file skipped (unchanged), 0 fetched")
        .assert_stdout_contains("skipped 'b.txt' (unchanged)")
        // Missing on the other side: sent.
        .assert_stdout_contains("put: 0 files skipped (unchanged), 1 sent");
    assert_eq!(puts_started(&server), 2, "{}", server.logs());
    assert_eq!(gets_started(&server), 1, "{}", server.logs());

    // A changed local file replaces the remote one (as -f would).
    fs::write(cwd.join("a.txt"), "alpha, longer\n").unwrap();
    let out = server.batch(&cwd, "put -u a.txt\n");
    out.assert_success()
        .assert_stdout_contains("uploaded 'a.txt' as 'a.txt'")
        .assert_stdout_contains("put: 0 files skipped (unchanged), 1 sent");
    assert_eq!(
        fs::read(server.root().join("a.txt")).unwrap(),
        b"alpha, longer\n"
    );
    assert!(!server.root().join("a_1.txt").exists());
}

/// Digests answered from what ftxd remembers (`-v` log line).
fn digests_remembered(server: &Server) -> usize {
    settled_logs(server)
        .lines()
        .filter(|l| l.contains(": get '") && l.ends_with(" bytes, remembered"))
        .count()
}

#[test]
fn c_on_a_large_settled_file_uses_the_remembered_digest() {
    use crate::transfer::{age, xattrs_work};
    let server = Server::start(&["--verbose", "--no-fsync"]);
    if !xattrs_work(server.root()) {
        return;
    }
    let file = server.root().join("big.bin");
    crate::util::write_random_file(&file, 3 << 20, 7);
    age(&file, 60);
    let cwd = server.scratch("client");
    fs::copy(&file, cwd.join("big.bin")).unwrap();

    // The first check hashes the file on the server and remembers it; the
    // next ones answer from the remembered digest. Nothing moves.
    let out = server.batch(&cwd, "put -c big.bin\nput -c big.bin\nget -c big.bin\n");
    out.assert_success()
        .assert_stdout_contains("put: 1 file skipped (unchanged), 0 sent")
        .assert_stdout_contains("get: 1 file skipped (unchanged), 0 fetched");
    assert_eq!(digests_remembered(&server), 2, "{}", server.logs());
    assert_eq!(puts_started(&server) + gets_started(&server), 0);
}
