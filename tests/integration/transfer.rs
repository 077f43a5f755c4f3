//! Round trips through a real server: `put` then `get`, byte for byte, at
//! the sizes where framing and chunking go wrong (empty, one byte, one chunk
//! boundary past a MiB, and one large file).

use std::fs;
use std::time::Duration;

use crate::util::{
    assert_no_temp_files, assert_same_file, run_batch_timeout, write_random_file, Server,
};

/// Puts a random file of `size` bytes, checks the stored copy, gets it back
/// into a second directory and checks that too.
fn round_trip(size: u64, seed: u64, timeout: Duration) {
    let server = Server::start(&["--no-fsync"]);
    let up = server.scratch("up");
    let down = server.scratch("down");
    let name = format!("file-{size}.bin");
    let original = up.join(&name);
    write_random_file(&original, size, seed);

    let out = run_batch_timeout(&server.addr_arg(), &up, &format!("put {name}\n"), timeout);
    out.assert_success()
        .assert_stdout_contains(&format!("Connected to server at {}", server.addr()))
        .assert_stdout_contains(&format!("uploaded '{name}' as '{name}'"));
    assert_same_file(&original, &server.root().join(&name));

    let out = run_batch_timeout(&server.addr_arg(), &down, &format!("get {name}\n"), timeout);
    out.assert_success()
        .assert_stdout_contains(&format!("downloaded '{name}' as '{name}'"));
    assert_same_file(&original, &down.join(&name));
    assert_no_temp_files(server.root());
    assert_no_temp_files(&down);
}

#[test]
fn round_trip_empty_file() {
    round_trip(0, 1, Duration::from_secs(30));
}

#[test]
fn round_trip_one_byte() {
    round_trip(1, 2, Duration::from_secs(30));
}

#[test]
fn round_trip_one_mib_plus_one() {
    round_trip((1 << 20) + 1, 3, Duration::from_secs(60));
}

#[test]
fn round_trip_64_mib() {
    round_trip(64 << 20, 4, Duration::from_secs(150));
}

#[test]
fn put_with_remote_name_and_into_subdirectory() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    write_random_file(&cwd.join("a.bin"), 1000, 5);
    let out = server.batch(
        &cwd,
        "mkdir sub\nput a.bin sub/b.bin\nget sub/b.bin c.bin\n",
    );
    out.assert_success()
        .assert_stdout_contains("b.bin'")
        .assert_stdout_contains("downloaded 'sub/b.bin' as 'c.bin'");
    assert_same_file(&cwd.join("a.bin"), &server.root().join("sub/b.bin"));
    assert_same_file(&cwd.join("a.bin"), &cwd.join("c.bin"));
}

#[test]
fn upload_is_fsynced_by_default_and_served_after() {
    // Default server (fsync on): the upload must still succeed and be whole.
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    write_random_file(&cwd.join("d.bin"), 300_000, 6);
    server.batch(&cwd, "put d.bin\n").assert_success();
    assert_same_file(&cwd.join("d.bin"), &server.root().join("d.bin"));
}

#[test]
fn many_operations_on_one_connection() {
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    let mut script = String::new();
    for i in 0..10u64 {
        write_random_file(&cwd.join(format!("m{i}.bin")), 1000 * i + 7, 100 + i);
        script.push_str(&format!("put m{i}.bin r{i}.bin\n"));
    }
    fs::create_dir(cwd.join("back")).unwrap();
    script.push_str("lcd back\n");
    for i in 0..10 {
        script.push_str(&format!("get r{i}.bin\n"));
    }
    server.batch(&cwd, &script).assert_success();
    for i in 0..10 {
        assert_same_file(
            &cwd.join(format!("m{i}.bin")),
            &cwd.join("back").join(format!("r{i}.bin")),
        );
    }
}

#[test]
fn server_exits_zero_on_sigterm() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    server.batch(&cwd, "ls\n").assert_success();
    let status = server.stop();
    assert!(status.success(), "ftxd exited with {status} on SIGTERM");
}

/// The digest ftxd remembers in `user.ftx.blake3`, or `None`.
pub(crate) fn remembered(path: &std::path::Path) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: valid C strings and a buffer valid for its length.
    let n = unsafe {
        libc::getxattr(
            p.as_ptr(),
            c"user.ftx.blake3".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    usize::try_from(n).ok().map(|n| buf[..n].to_vec())
}

fn set_remembered(path: &std::path::Path, value: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid C strings and a value valid for its length.
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            c"user.ftx.blake3".as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    r == 0
}

/// Whether `dir`'s filesystem takes user extended attributes, where ftxd
/// remembers digests; the tests of that skip (saying so) where it does not.
pub(crate) fn xattrs_work(dir: &std::path::Path) -> bool {
    let probe = dir.join("probe");
    fs::write(&probe, b"").unwrap();
    let works = set_remembered(&probe, b"x");
    fs::remove_file(&probe).unwrap();
    if !works {
        eprintln!("skipped: no user extended attributes here");
    }
    works
}

/// Sets a file's modification time to `when`.
fn set_mtime(path: &std::path::Path, when: std::time::SystemTime) {
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(when).unwrap();
}

/// Sets a file's modification time `secs` seconds into the past.
pub(crate) fn age(path: &std::path::Path, secs: u64) {
    set_mtime(
        path,
        std::time::SystemTime::now() - Duration::from_secs(secs),
    );
}

#[test]
fn a_settled_files_digest_is_remembered_and_used_until_it_changes() {
    let server = Server::start(&["--no-fsync"]);
    let root = server.root();
    let down = server.scratch("down");
    if !xattrs_work(root) {
        return;
    }
    let old = root.join("old.bin");
    let fresh = root.join("fresh.bin");
    write_random_file(&old, 3 << 20, 71);
    write_random_file(&fresh, 3 << 20, 72);
    age(&old, 60);
    // "Just written", however slow this run: a time a minute ahead is
    // not settled for another minute.
    set_mtime(
        &fresh,
        std::time::SystemTime::now() + Duration::from_secs(60),
    );

    // The first download hashes both; only the settled one is remembered.
    server
        .batch(&down, "get old.bin\nget fresh.bin\n")
        .assert_success();
    assert_same_file(&old, &down.join("old.bin"));
    assert_same_file(&fresh, &down.join("fresh.bin"));
    let entry = remembered(&old).expect("a settled file's digest is remembered");
    assert_eq!(
        &entry[entry.len() - 32..],
        blake3::hash(&fs::read(&old).unwrap()).as_bytes()
    );
    assert_eq!(remembered(&fresh), None, "a file written just now is not");

    // The next download takes the digest from there: a wrong one fails
    // the client's check, so it was used rather than computed.
    let mut wrong = entry.clone();
    let last = wrong.len() - 1;
    wrong[last] ^= 1;
    assert!(set_remembered(&old, &wrong));
    server
        .batch(&down, "get -f old.bin\n")
        .assert_error("integrity check failed");
    assert_same_file(&old, &down.join("old.bin"));

    // New content: the entry no longer matches, the file is hashed again
    // (and, once settled, remembered anew).
    write_random_file(&old, 3 << 20, 73);
    age(&old, 30);
    server.batch(&down, "get -f old.bin\n").assert_success();
    assert_same_file(&old, &down.join("old.bin"));
    let entry = remembered(&old).expect("remembered again");
    assert_eq!(
        &entry[entry.len() - 32..],
        blake3::hash(&fs::read(&old).unwrap()).as_bytes()
    );
    assert_no_temp_files(root);
}

#[test]
fn a_read_only_server_remembers_nothing() {
    let server = Server::start(&["--read-only"]);
    let root = server.root();
    // Without xattrs nothing could be stored anyway: the test would pass
    // whatever ftxd did.
    if !xattrs_work(root) {
        return;
    }
    let down = server.scratch("down");
    let f = root.join("f.bin");
    write_random_file(&f, 2 << 20, 74);
    age(&f, 60);
    server.batch(&down, "get f.bin\n").assert_success();
    assert_same_file(&f, &down.join("f.bin"));
    assert_eq!(remembered(&f), None);
}

/// The numbers of one summary, `(N bytes in T s, R MiB/s, BLAKE3
/// verified)`: bytes, seconds, and bytes per second if a rate is shown.
fn summary_numbers(line: &str) -> (u64, f64, Option<f64>) {
    let inner = line.split(" (").nth(1).expect("a summary in parentheses");
    let inner = inner.strip_suffix(", BLAKE3 verified)").expect("verified");
    let (bytes, rest) = inner.split_once(" bytes in ").expect("N bytes in");
    let mut parts = rest.split(", ");
    let time = parts.next().unwrap();
    let secs = match time.split_once(' ') {
        Some((n, "ms")) => n.parse::<f64>().unwrap() / 1000.0,
        Some((n, "s")) => n.parse::<f64>().unwrap(),
        other => panic!("time {other:?} in {line}"),
    };
    let rate = parts.next().map(|r| {
        let (n, unit) = r.split_once(' ').expect("rate and unit");
        let scale = match unit {
            "B/s" => 1.0,
            "KiB/s" => 1024.0,
            "MiB/s" => 1024.0 * 1024.0,
            "GiB/s" => 1024.0 * 1024.0 * 1024.0,
            other => panic!("unit {other:?} in {line}"),
        };
        n.parse::<f64>().unwrap() * scale
    });
    (bytes.parse().unwrap(), secs, rate)
}

/// A summary's rate is its bytes over its time, in units that fit: a tiny
/// file says `12 bytes in 3 ms` (with no rate when it took under 10 ms, or
/// one in B/s or KiB/s), never `0.0 MiB/s in 0.00 s`.
#[test]
fn summaries_give_one_rate_in_units_that_fit() {
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("tiny.txt"), b"twelve bytes").unwrap();
    write_random_file(&cwd.join("big.bin"), 24 << 20, 9);
    let script = "put tiny.txt\nput big.bin\nget tiny.txt t2.txt\nget big.bin b2.bin\n";
    let out = run_batch_timeout(&server.addr_arg(), &cwd, script, Duration::from_secs(120));
    out.assert_success();
    assert!(!out.stdout.contains(" 0.0 MiB/s"), "{out}");
    assert!(!out.stdout.contains("in 0.00 s"), "{out}");
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("BLAKE3 verified"))
        .collect();
    assert_eq!(lines.len(), 4, "{out}");
    for line in lines {
        let (bytes, secs, rate) = summary_numbers(line);
        assert!(secs > 0.0, "{line}");
        if secs < 1.0 {
            assert!(line.contains(" ms, ") || line.contains(" ms)"), "{line}");
        }
        match rate {
            None => assert!(secs < 0.010, "no rate for {line}"),
            Some(rate) => {
                // The time is shown cut to the millisecond, or rounded to
                // the hundredth of a second; the rate to one decimal.
                let (lo, hi) = if line.contains(" ms, ") {
                    (secs, secs + 0.001)
                } else {
                    (secs - 0.005, secs + 0.005)
                };
                let (slowest, fastest) = (bytes as f64 / hi, bytes as f64 / lo);
                assert!(
                    rate >= slowest * 0.95 && rate <= fastest * 1.05,
                    "{line}: {rate} B/s is not {bytes} B over {secs} s"
                );
            }
        }
        if bytes == 12 {
            assert!(!line.contains("MiB/s"), "{line}");
        }
    }
    assert_eq!(fs::read(cwd.join("t2.txt")).unwrap(), b"twelve bytes");
    assert_same_file(&cwd.join("big.bin"), &cwd.join("b2.bin"));
}
