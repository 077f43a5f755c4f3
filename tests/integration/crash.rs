//! Transfers that survive anything (issue 3): clients and servers killed
//! with SIGKILL mid-transfer, sources changed before `reput`/`reget`, a
//! full disk, a proxy that corrupts one byte, and two `ftxd` processes on
//! one root. After every failure: never a partial or corrupt file under a
//! final name, and the resume commands finish the job byte for byte.
//!
//! Kill points come from a seeded generator, so a failing run can be
//! replayed; where a test needs an interruption at a known place it holds
//! the stream in a [`Proxy`] instead of racing the clock.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{
    assert_no_temp_files, assert_same_file, names_in, part_path, random_bytes, run_batch,
    size_or_zero, spawn_batch, stored_name, tree, wait_unlocked, write_random_file,
    write_server_part, Output, Proxy, Running, Server, Tamper, XorShift,
};
use ftx::proto::limits::{EARLY_WINDOW, RESERVED_PREFIX};

/// Size of the files killed mid-transfer: big enough that a kill lands
/// inside the transfer, small enough to keep the suite quick.
const KILL_SIZE: u64 = 16 << 20;
/// Kill runs per direction in the suite; `FTX_SOAK_RUNS` asks for more
/// (`scripts/soak`).
const KILL_RUNS: u64 = 20;

/// How many kill runs, and the seed of their kill points
/// (`FTX_SOAK_SEED` replays or varies them; printed on every run).
fn kill_plan(default_seed: u64) -> (u64, u64) {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse().ok());
    let runs = env("FTX_SOAK_RUNS").unwrap_or(KILL_RUNS);
    let seed = env("FTX_SOAK_SEED").unwrap_or(default_seed);
    eprintln!("kill runs: {runs}, seed {seed} (FTX_SOAK_RUNS, FTX_SOAK_SEED)");
    (runs, seed)
}
/// Longest a server may take to let go of a dead client's part file.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest one watched transfer may run before the test gives up on it.
const WATCH_TIMEOUT: Duration = Duration::from_secs(30);

/// When to kill a running client: after a delay, or once the watched file
/// holds at least this many bytes.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    Delay(Duration),
    Bytes(u64),
}

impl KillAt {
    /// A quarter of the kills by the clock (0-60 ms, most of them early:
    /// before the connection, during the handshake, or at the start of
    /// the transfer), the rest once the receiving side holds a random
    /// number of bytes.
    fn random(rng: &mut XorShift, size: u64) -> KillAt {
        if rng.next_u64().is_multiple_of(4) {
            let r = rng.next_u64() % 60_000;
            KillAt::Delay(Duration::from_micros(r * r / 60_000))
        } else {
            KillAt::Bytes(rng.next_u64() % size)
        }
    }
}

/// Waits for `at` (watching `watch`, the receiving side's part file), then
/// kills `run` with SIGKILL. Returns its output (it may have finished first).
fn kill_client(run: Running, watch: &Path, at: KillAt) -> Output {
    let mut run = run;
    match at {
        KillAt::Delay(d) => thread::sleep(d),
        KillAt::Bytes(n) => {
            let deadline = Instant::now() + WATCH_TIMEOUT;
            while size_or_zero(watch) < n && !run.exited() && Instant::now() < deadline {
                thread::sleep(Duration::from_micros(300));
            }
        }
    }
    run.kill()
}

/// The visible (not reserved) names directly inside `dir`.
fn visible(dir: &Path) -> Vec<String> {
    names_in(dir)
        .into_iter()
        .filter(|n| !n.starts_with(RESERVED_PREFIX))
        .collect()
}

/// The reserved (hidden part or temporary) names directly inside `dir`.
fn hidden(dir: &Path) -> Vec<String> {
    names_in(dir)
        .into_iter()
        .filter(|n| n.starts_with(RESERVED_PREFIX))
        .collect()
}

/// After an interruption: every visible file in `dir` except those in
/// `others` is a whole copy of `source`, and the only hidden file allowed
/// is `part` (the interrupted transfer's own part file).
#[track_caller]
fn assert_nothing_partial(dir: &Path, source: &Path, others: &[&str], part: &Path, what: &Output) {
    for name in visible(dir) {
        if !others.contains(&name.as_str()) {
            assert_same_file(source, &dir.join(&name));
        }
    }
    let allowed = part.file_name().unwrap().to_string_lossy().into_owned();
    let extra: Vec<_> = hidden(dir).into_iter().filter(|n| *n != allowed).collect();
    assert!(
        extra.is_empty(),
        "unexpected hidden files {extra:?}\n{}\n{what}",
        tree(dir)
    );
}

/// Checks how a `reput`/`reget` says it went, given the part it found
/// (`held` bytes) and whether the final name was already taken.
#[track_caller]
fn assert_resume_line(out: &Output, held: u64, size: u64) {
    if held > 0 && held <= size {
        out.assert_stdout_contains(&format!("(resumed at byte {held}, "));
    } else {
        out.assert_stdout_contains("(nothing to resume: sent whole, ");
    }
}

#[test]
fn client_killed_during_put_then_reput_completes() {
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    let src = cwd.join("src.bin");
    write_random_file(&src, KILL_SIZE, 31);
    let root = server.root();
    let (runs, seed) = kill_plan(0xC0FFEE);
    let mut rng = XorShift::new(seed);
    let mut resumed = 0;
    for i in 0..runs {
        let name = format!("f{i}.bin");
        let part = server.part_path(root, &name);
        let at = KillAt::random(&mut rng, KILL_SIZE);
        let run = spawn_batch(&server.addr_arg(), &cwd, &format!("put src.bin {name}\n"));
        let killed = kill_client(run, &part, at);
        let ctx = format!("run {i} (seed {seed}), kill at {at:?}\n{killed}");

        // The dead client's connection ends; the server lets go of the part.
        wait_unlocked(&part, RELEASE_TIMEOUT, &ctx);
        assert_nothing_partial(root, &src, &[], &part, &killed);
        let final_existed = root.join(&name).exists();
        let held = size_or_zero(&part);
        assert!(held <= KILL_SIZE, "{ctx}");

        let out = run_batch(&server.addr_arg(), &cwd, &format!("reput src.bin {name}\n"));
        out.assert_success();
        assert_resume_line(&out, held, KILL_SIZE);
        if held > 0 {
            resumed += 1;
        }
        let stored = stored_name(&out);
        let expect = if final_existed {
            format!("f{i}_1.bin")
        } else {
            name.clone()
        };
        assert_eq!(stored, expect, "{ctx}\n{out}");
        assert_same_file(&src, &root.join(&stored));
        assert_no_temp_files(root);
        // Keep the root small for the next run.
        for n in visible(root) {
            fs::remove_file(root.join(n)).unwrap();
        }
    }
    eprintln!("put kill runs: {resumed} of {runs} resumed a part");
    assert!(resumed >= 3, "too few kills left a part to resume");
}

#[test]
fn client_killed_during_get_then_reget_completes() {
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    let src = server.root().join("g.bin");
    write_random_file(&src, KILL_SIZE, 32);
    let (runs, seed) = kill_plan(0xBADC0DE);
    let mut rng = XorShift::new(seed);
    let mut resumed = 0;
    for i in 0..runs {
        let name = format!("g{i}.bin");
        let part = part_path(&cwd, &name);
        let at = KillAt::random(&mut rng, KILL_SIZE);
        let run = spawn_batch(&server.addr_arg(), &cwd, &format!("get g.bin {name}\n"));
        let killed = kill_client(run, &part, at);
        let ctx = format!("run {i} (seed {seed}), kill at {at:?}\n{killed}");

        assert!(!crate::util::is_locked(&part), "{ctx}");
        assert_nothing_partial(&cwd, &src, &[], &part, &killed);
        let final_existed = cwd.join(&name).exists();
        let held = size_or_zero(&part);

        let out = run_batch(&server.addr_arg(), &cwd, &format!("reget g.bin {name}\n"));
        out.assert_success();
        assert_resume_line(&out, held, KILL_SIZE);
        if held > 0 {
            resumed += 1;
        }
        let stored = stored_name(&out);
        let expect = if final_existed {
            format!("g{i}_1.bin")
        } else {
            name.clone()
        };
        assert_eq!(stored, expect, "{ctx}\n{out}");
        assert_same_file(&src, &cwd.join(&stored));
        assert_no_temp_files(&cwd);
        for n in visible(&cwd) {
            fs::remove_file(cwd.join(n)).unwrap();
        }
    }
    assert_same_file(&server.root().join("g.bin"), &src);
    eprintln!("get kill runs: {resumed} of {runs} resumed a part");
    assert!(resumed >= 3, "too few kills left a part to resume");
}

#[test]
fn server_killed_mid_upload_then_restarted_and_reput_completes() {
    let mut rng = XorShift::new(0x5EED);
    let mut first = Server::start(&["--no-fsync"]);
    let root = first.root().to_path_buf();
    let cwd = first.scratch("client");
    let src = cwd.join("src.bin");
    write_random_file(&src, KILL_SIZE, 33);
    first.kill();
    // Three crashes, each at a random point of its own upload; each server
    // is a fresh process on the same root.
    for i in 0..3u64 {
        let mut server = Server::restart_of(&first, &["--no-fsync"]);
        let name = format!("s{i}.bin");
        let part = server.part_path(&root, &name);
        let at = i * KILL_SIZE / 3 + rng.next_u64() % (KILL_SIZE / 3);
        let mut run = spawn_batch(&server.addr_arg(), &cwd, &format!("put src.bin {name}\n"));
        let deadline = Instant::now() + WATCH_TIMEOUT;
        while size_or_zero(&part) < at && !run.exited() && Instant::now() < deadline {
            thread::sleep(Duration::from_micros(300));
        }
        server.kill();
        let out = run.wait(Duration::from_secs(30));
        let ctx = format!("crash {i} at byte {at}\n{out}");
        if !out.success() {
            out.assert_error_line("connection");
        }
        assert_nothing_partial(&root, &src, &[], &part, &out);
        let final_existed = root.join(&name).exists();
        let held = size_or_zero(&part);

        let server = Server::restart_of(&first, &["--no-fsync"]);
        let out = run_batch(&server.addr_arg(), &cwd, &format!("reput src.bin {name}\n"));
        out.assert_success();
        assert_resume_line(&out, held, KILL_SIZE);
        let stored = stored_name(&out);
        if !final_existed {
            assert_eq!(stored, name, "{ctx}\n{out}");
        }
        assert_same_file(&src, &root.join(&stored));
        assert_no_temp_files(&root);
        for n in visible(&root) {
            fs::remove_file(root.join(n)).unwrap();
        }
        server.stop();
    }
}

// ------------------------------------------------------------ changed sources

/// Size of the files interrupted at a known place.
const HELD_SIZE: usize = 2 << 20;
/// Where the proxy holds the stream: about half of the file has passed.
const HOLD_AT: u64 = 1 << 20;

/// Runs `script` through a proxy that holds the data stream (`upload`:
/// client → server, else server → client) after [`HOLD_AT`] bytes, then
/// kills the client and cuts the connection there. Returns the size of the
/// part file at `part` once nobody holds it.
fn interrupt_at_hold(server: &Server, cwd: &Path, script: &str, upload: bool, part: &Path) -> u64 {
    let hold = Tamper {
        hold_at: Some(HOLD_AT),
        ..Tamper::default()
    };
    let (up, down) = if upload {
        (hold, Tamper::default())
    } else {
        (Tamper::default(), hold)
    };
    let proxy = Proxy::start(server.addr(), up, down);
    let mut run = spawn_batch(&proxy.addr().to_string(), cwd, script);
    let deadline = Instant::now() + WATCH_TIMEOUT;
    while !proxy.holding() && !run.exited() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    assert!(proxy.holding(), "the proxy never held the stream");
    // Let the receiver write what passed before the hold.
    wait_steady(part);
    let killed = run.kill();
    drop(proxy);
    wait_unlocked(part, RELEASE_TIMEOUT, &killed);
    let held = size_or_zero(part);
    assert!(
        held > 0 && held < HELD_SIZE as u64,
        "expected a part of the file, found {held} bytes\n{killed}\n{}",
        tree(part.parent().unwrap())
    );
    held
}

/// Waits until the file at `path` has data and has not grown for 100 ms
/// (at most [`WATCH_TIMEOUT`]).
fn wait_steady(path: &Path) {
    let deadline = Instant::now() + WATCH_TIMEOUT;
    let mut last = (0, Instant::now());
    while Instant::now() < deadline {
        let now = size_or_zero(path);
        if now != last.0 {
            last = (now, Instant::now());
        } else if now > 0 && last.1.elapsed() >= Duration::from_millis(100) {
            return;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// What the source becomes after the interruption, given the original and
/// the part's size, and which way the resume must go.
struct Change {
    what: &'static str,
    make: fn(&[u8], usize) -> Vec<u8>,
    /// The held prefix is still the same data: the resume continues it.
    resumes: bool,
    /// The part is other data (not merely too long): said as such.
    other_data: bool,
}

fn changes() -> Vec<Change> {
    vec![
        Change {
            what: "same size, other bytes",
            make: |old, _| old.iter().map(|b| b ^ 0x5A).collect(),
            resumes: false,
            other_data: true,
        },
        Change {
            what: "shorter than the part",
            make: |old, held| old[..held / 2].to_vec(),
            resumes: false,
            other_data: false,
        },
        Change {
            what: "shorter, other bytes",
            make: |old, held| {
                let mut v = old[..(held + old.len()) / 2].to_vec();
                v[10] ^= 1;
                v
            },
            resumes: false,
            other_data: true,
        },
        Change {
            what: "longer, same prefix",
            make: |old, _| {
                let mut v = old.to_vec();
                v.extend(random_bytes(300_000, 77));
                v
            },
            resumes: true,
            other_data: false,
        },
        Change {
            what: "longer, other bytes",
            make: |old, _| {
                let mut v = random_bytes(old.len() + 300_000, 78);
                v[..100].copy_from_slice(&old[..100]);
                v
            },
            resumes: false,
            other_data: true,
        },
    ]
}

#[test]
fn source_changed_before_reput_gives_the_new_file() {
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    let root = server.root();
    let old = random_bytes(HELD_SIZE, 41);
    for (i, change) in changes().iter().enumerate() {
        let name = format!("c{i}.bin");
        let src = cwd.join(&name);
        fs::write(&src, &old).unwrap();
        let part = server.part_path(root, &name);
        let held = interrupt_at_hold(&server, &cwd, &format!("put {name}\n"), true, &part);
        assert!(!root.join(&name).exists());

        let new = (change.make)(&old, held as usize);
        fs::write(&src, &new).unwrap();
        let out = run_batch(&server.addr_arg(), &cwd, &format!("reput {name}\n"));
        out.assert_success()
            .assert_stdout_contains(&format!("uploaded '{name}' as '{name}'"));
        let ctx = format!("{}: held {held}\n{out}", change.what);
        if change.resumes {
            assert!(
                out.stdout.contains(&format!("resumed at byte {held}")),
                "{ctx}"
            );
        } else if change.other_data {
            assert!(
                out.stdout
                    .contains("the server's part was other data: sent whole"),
                "{ctx}"
            );
        } else {
            assert!(out.stdout.contains("sent whole"), "{ctx}");
        }
        assert_eq!(fs::read(root.join(&name)).unwrap(), new, "{ctx}");
        assert_no_temp_files(root);
    }
}

#[test]
fn server_file_changed_before_reget_gives_the_new_file() {
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    let root = server.root();
    let old = random_bytes(HELD_SIZE, 42);
    for (i, change) in changes().iter().enumerate() {
        let name = format!("d{i}.bin");
        fs::write(root.join(&name), &old).unwrap();
        let part = part_path(&cwd, &name);
        let held = interrupt_at_hold(&server, &cwd, &format!("get {name}\n"), false, &part);
        assert!(!cwd.join(&name).exists());

        let new = (change.make)(&old, held as usize);
        fs::write(root.join(&name), &new).unwrap();
        let out = run_batch(&server.addr_arg(), &cwd, &format!("reget {name}\n"));
        out.assert_success()
            .assert_stdout_contains(&format!("downloaded '{name}' as '{name}'"));
        let ctx = format!("{}: held {held}\n{out}", change.what);
        if change.resumes {
            assert!(
                out.stdout.contains(&format!("resumed at byte {held}")),
                "{ctx}"
            );
        } else {
            // A local part longer than the server's file cannot be a prefix
            // of it either: both are "other data" on this side.
            assert!(
                out.stdout
                    .contains("the local part was other data: sent whole"),
                "{ctx}"
            );
        }
        assert_eq!(fs::read(cwd.join(&name)).unwrap(), new, "{ctx}");
        assert_no_temp_files(&cwd);
    }
}

#[test]
fn put_and_get_over_an_interrupted_part_say_reput_and_reget_can_continue() {
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    let root = server.root();
    let data = random_bytes(HELD_SIZE, 43);
    fs::write(cwd.join("n.bin"), &data).unwrap();
    let part = server.part_path(root, "n.bin");
    let held = interrupt_at_hold(&server, &cwd, "put n.bin\n", true, &part);

    // A plain put leaves the part alone and says so.
    let out = run_batch(&server.addr_arg(), &cwd, "put n.bin\n");
    out.assert_success()
        .assert_stdout_contains("uploaded 'n.bin' as 'n.bin' (")
        .assert_stdout_lacks("resumed");
    assert!(
        out.stderr.lines().any(|l| l.starts_with("note:")
            && l.contains(&format!("({held} bytes)"))
            && l.contains("'reput' can continue it")),
        "{out}"
    );
    assert_eq!(size_or_zero(&part), held);
    assert_eq!(fs::read(root.join("n.bin")).unwrap(), data);
    // reput finishes the part; the final name is taken, so a clash name.
    let out = run_batch(&server.addr_arg(), &cwd, "reput n.bin\n");
    out.assert_success().assert_stdout_contains(&format!(
        "uploaded 'n.bin' as 'n_1.bin' (resumed at byte {held}, "
    ));
    assert_eq!(fs::read(root.join("n_1.bin")).unwrap(), data);
    assert_no_temp_files(root);

    // reput with nothing to resume says so.
    let out = run_batch(&server.addr_arg(), &cwd, "reput n.bin fresh.bin\n");
    out.assert_success()
        .assert_stdout_contains("uploaded 'n.bin' as 'fresh.bin' (nothing to resume: sent whole, ");
    assert_eq!(fs::read(root.join("fresh.bin")).unwrap(), data);

    // The same on the client side for get / reget.
    let down = server.scratch("down");
    let lpart = part_path(&down, "n.bin");
    let held = interrupt_at_hold(&server, &down, "get n.bin\n", false, &lpart);
    let out = run_batch(&server.addr_arg(), &down, "get n.bin\n");
    out.assert_success()
        .assert_stdout_contains("downloaded 'n.bin' as 'n.bin' (")
        .assert_stdout_lacks("resumed");
    assert!(
        out.stderr.lines().any(|l| l.starts_with("note:")
            && l.contains(&format!("({held} bytes)"))
            && l.contains("'reget' can continue it")),
        "{out}"
    );
    assert_eq!(size_or_zero(&lpart), held);
    let out = run_batch(&server.addr_arg(), &down, "reget n.bin\nreget fresh.bin\n");
    out.assert_success()
        .assert_stdout_contains(&format!(
            "downloaded 'n.bin' as 'n_1.bin' (resumed at byte {held}, "
        ))
        .assert_stdout_contains(
            "downloaded 'fresh.bin' as 'fresh.bin' (nothing to resume: sent whole, ",
        );
    for n in ["n.bin", "n_1.bin", "fresh.bin"] {
        assert_eq!(fs::read(down.join(n)).unwrap(), data, "{n}");
    }
    assert_no_temp_files(&down);
}

// ------------------------------------------------------------ disk full

/// A small tmpfs mounted for one test, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
    _base: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=`); `Err` says why it
    /// cannot be done here.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root".into());
        }
        let base = tempfile::Builder::new()
            .prefix("ftx-tmpfs-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let dir = base.path().join("disk");
        fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir, _base: base })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Something still holds it: detach it so it never outlives us.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

#[test]
fn disk_full_gives_no_space_and_the_server_keeps_serving() {
    let disk = match Tmpfs::mount("8m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipping disk_full test: {why}");
            return;
        }
    };
    let root = disk.dir.clone();
    let server = Server::start_on(&root, &["--no-fsync"]);
    let cwd = server.scratch("client");
    write_random_file(&cwd.join("big.bin"), 9 << 20, 51);
    write_random_file(&cwd.join("six.bin"), 6 << 20, 52);
    write_random_file(&cwd.join("small.bin"), 100_000, 53);

    // 1. Declared size over the free space: refused at once, with no more
    // than the data a fresh upload may send before the server's answer.
    let proxy = Proxy::start(server.addr(), Tamper::default(), Tamper::default());
    let out = run_batch(&proxy.addr().to_string(), &cwd, "put big.bin\n");
    out.assert_error("no space left");
    assert!(
        proxy.forwarded_up() < u64::from(EARLY_WINDOW) + 64 * 1024,
        "{} bytes were sent before the refusal",
        proxy.forwarded_up()
    );
    drop(proxy);
    assert!(names_in(&root).is_empty(), "{}", tree(&root));

    // 2. It fits when it starts, and the space is its own from then on
    // (reserved with fallocate): another writer cannot take it meanwhile.
    let proxy = Proxy::start(
        server.addr(),
        Tamper {
            hold_at: Some(1 << 20),
            ..Tamper::default()
        },
        Tamper::default(),
    );
    let mut run = spawn_batch(&proxy.addr().to_string(), &cwd, "put six.bin\n");
    let deadline = Instant::now() + WATCH_TIMEOUT;
    while !proxy.holding() && !run.exited() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    assert!(proxy.holding(), "the upload never started");
    // At most 1 MiB of the upload is on disk, but all 6 MiB are reserved:
    // 5 MiB more do not fit.
    let e = fs::write(root.join("filler.bin"), random_bytes(5 << 20, 54)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    fs::remove_file(root.join("filler.bin")).unwrap();
    proxy.release();
    let out = run.wait(Duration::from_secs(30));
    out.assert_success();
    drop(proxy);
    assert_same_file(&cwd.join("six.bin"), &root.join("six.bin"));
    assert_eq!(names_in(&root), ["six.bin"], "{}\n{out}", tree(&root));
    fs::remove_file(root.join("six.bin")).unwrap();
    fs::write(root.join("filler.bin"), random_bytes(5 << 20, 54)).unwrap();

    // 3. Two uploads, each under the free space, together over it.
    write_random_file(&cwd.join("a.bin"), 5 << 20, 55);
    write_random_file(&cwd.join("b.bin"), 5 << 20, 56);
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = ["a.bin", "b.bin"]
        .into_iter()
        .map(|name| {
            let (addr, cwd, barrier) = (server.addr_arg(), cwd.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                (name, run_batch(&addr, &cwd, &format!("put {name}\n")))
            })
        })
        .collect();
    let mut failed = 0;
    for h in handles {
        let (name, out) = h.join().unwrap();
        if out.success() {
            assert_same_file(&cwd.join(name), &root.join(name));
        } else {
            out.assert_error("no space left");
            assert!(!root.join(name).exists(), "{}", tree(&root));
            failed += 1;
        }
    }
    assert!(failed >= 1, "10 MiB cannot fit on 8 MiB");
    assert_no_temp_files(&root);
    server.batch(&cwd, "ls\n").assert_success();
    for n in visible(&root) {
        fs::remove_file(root.join(n)).unwrap();
    }

    // 4. A resume refused by the free-space check keeps the part it found:
    // nothing was sent, and once there is room reput continues it.
    let part = server.part_path(&root, "six.bin");
    let held = interrupt_at_hold(&server, &cwd, "put six.bin\n", true, &part);
    fs::write(root.join("filler.bin"), random_bytes(5 << 20, 57)).unwrap();
    let out = server.batch(&cwd, "reput six.bin\n");
    out.assert_error("no space left");
    assert_eq!(size_or_zero(&part), held, "{}\n{out}", tree(&root));
    let out = server.batch(&cwd, "rm filler.bin\nreput six.bin\n");
    out.assert_success()
        .assert_stdout_contains(&format!("(resumed at byte {held}, "));
    assert_same_file(&cwd.join("six.bin"), &root.join("six.bin"));
    assert_no_temp_files(&root);
    server.stop();
}

#[test]
fn a_download_too_big_for_the_local_disk_fails_at_once_and_leaves_nothing() {
    let disk = match Tmpfs::mount("4m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipping local disk_full test: {why}");
            return;
        }
    };
    let server = Server::start(&["--no-fsync"]);
    write_random_file(&server.root().join("six.bin"), 6 << 20, 58);
    write_random_file(&server.root().join("two.bin"), 2 << 20, 59);
    // The blocks are reserved when the download starts: refused before
    // the data is written, not when the disk runs out halfway.
    let out = server.batch(&disk.dir, "get six.bin\n");
    out.assert_error("no space left");
    assert!(names_in(&disk.dir).is_empty(), "{}\n{out}", tree(&disk.dir));
    server.batch(&disk.dir, "get two.bin\n").assert_success();
    assert_same_file(&server.root().join("two.bin"), &disk.dir.join("two.bin"));
    server.stop();
}

// ------------------------------------------------------------ crash between link and unlink

#[test]
fn a_part_name_linked_to_a_published_file_is_never_written_into() {
    // Where the file system lacks an exclusive rename, a commit publishes
    // by linking the part to the free name, then removing the part. Killed
    // between the two, the part's name leads to the published file, which
    // no longer carries a part's mark. The server never writes into it
    // (on a shared file system a name may lead there through a stale
    // lookup too): reput stores its upload beside it. The client's own
    // part, on its local disk, is finished in place.
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    let root = server.root();
    write_random_file(&cwd.join("up.bin"), 3 << 20, 81);
    fs::copy(cwd.join("up.bin"), root.join("up.bin")).unwrap();
    fs::hard_link(root.join("up.bin"), server.part_path(root, "up.bin")).unwrap();
    let out = server.batch(&cwd, "reput up.bin\n");
    out.assert_success()
        .assert_stdout_contains("uploaded 'up.bin' as 'up_1.bin'");
    assert_same_file(&cwd.join("up.bin"), &root.join("up.bin"));
    assert_same_file(&cwd.join("up.bin"), &root.join("up_1.bin"));
    assert_eq!(
        visible(root),
        ["up.bin", "up_1.bin"],
        "{}\n{out}",
        tree(root)
    );
    // The leftover name is the sweep's to remove; untouched till then.
    assert_same_file(&cwd.join("up.bin"), &server.part_path(root, "up.bin"));

    // The same on the client's side.
    write_random_file(&root.join("down.bin"), 3 << 20, 82);
    fs::copy(root.join("down.bin"), cwd.join("down.bin")).unwrap();
    fs::hard_link(cwd.join("down.bin"), part_path(&cwd, "down.bin")).unwrap();
    let out = server.batch(&cwd, "reget down.bin\n");
    out.assert_success()
        .assert_stdout_contains("downloaded 'down.bin' as 'down.bin'");
    assert_eq!(
        names_in(&cwd),
        ["down.bin", "up.bin"],
        "{}\n{out}",
        tree(&cwd)
    );
    assert_same_file(&root.join("down.bin"), &cwd.join("down.bin"));
    assert_no_temp_files(&cwd);
    server.stop();
}

// ------------------------------------------------------------ corruption

/// Offset of the flipped byte in the data direction: well inside the first
/// 256 KiB data chunk, past the handshake and the request.
const FLIP_AT: u64 = 200_000;

#[test]
fn a_flipped_byte_fails_put_and_get_with_an_integrity_error() {
    // Plain TCP: under TLS the flipped byte is caught (and the connection
    // dropped) by TLS itself; here the BLAKE3 check must catch it.
    let server = Server::start(&["--no-fsync", "--plain", "--open"]);
    let cwd = server.scratch("client");
    let root = server.root();
    write_random_file(&cwd.join("up.bin"), 1 << 20, 61);
    write_random_file(&root.join("down.bin"), 1 << 20, 62);

    let flip = Tamper {
        flip_at: Some(FLIP_AT),
        ..Tamper::default()
    };
    // Client → server: the server's digest check refuses the upload.
    let proxy = Proxy::start(server.addr(), flip, Tamper::default());
    let out = run_batch(&proxy.addr().to_string(), &cwd, "put up.bin\n");
    out.assert_error("integrity check failed");
    drop(proxy);
    assert_eq!(visible(root), ["down.bin"], "{}", tree(root));
    assert_no_temp_files(root);

    // Server → client: the client's digest check refuses the download.
    let proxy = Proxy::start(server.addr(), Tamper::default(), flip);
    let out = run_batch(&proxy.addr().to_string(), &cwd, "get down.bin\n");
    out.assert_error("integrity check failed");
    drop(proxy);
    assert_eq!(names_in(&cwd), ["up.bin"], "{}", tree(&cwd));

    // Past the first 4 MiB ftx hashes a download on a second thread: a
    // byte flipped there is caught as well.
    write_random_file(&root.join("big.bin"), 6 << 20, 63);
    let late = Tamper {
        flip_at: Some(5 << 20),
        ..Tamper::default()
    };
    let proxy = Proxy::start(server.addr(), Tamper::default(), late);
    let out = run_batch(&proxy.addr().to_string(), &cwd, "get big.bin\n");
    out.assert_error("integrity check failed");
    drop(proxy);
    assert_eq!(names_in(&cwd), ["up.bin"], "{}", tree(&cwd));

    // Without the proxy all work.
    server
        .batch(&cwd, "put up.bin\nget down.bin\nget big.bin\n")
        .assert_success();
    assert_same_file(&cwd.join("up.bin"), &root.join("up.bin"));
    assert_same_file(&root.join("down.bin"), &cwd.join("down.bin"));
    assert_same_file(&root.join("big.bin"), &cwd.join("big.bin"));
}

// ------------------------------------------------------------ two servers

#[test]
fn two_servers_on_one_root_keep_twenty_uploads_of_one_name() {
    const CLIENTS: usize = 20;
    let first = Server::start(&["--no-fsync"]);
    let second = Server::start_on(first.root(), &["--no-fsync"]);
    let root = first.root();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let mut handles = Vec::new();
    for i in 0..CLIENTS {
        let dir = first.scratch(&format!("client{i}"));
        // Distinct contents and sizes, 300-500 KB.
        let size = 300_000 + i as u64 * 10_007;
        write_random_file(&dir.join("same.bin"), size, 700 + i as u64);
        let addr = if i % 2 == 0 {
            first.addr_arg()
        } else {
            second.addr_arg()
        };
        let barrier = Arc::clone(&barrier);
        handles.push(thread::spawn(move || {
            barrier.wait();
            let out = run_batch(&addr, &dir, "put same.bin\n");
            (dir, out)
        }));
    }
    let mut stored = Vec::new();
    for h in handles {
        let (dir, out) = h.join().unwrap();
        out.assert_success();
        let name = stored_name(&out);
        assert_same_file(&dir.join("same.bin"), &root.join(&name));
        stored.push(name);
    }
    stored.sort();
    let mut want: Vec<String> = (1..CLIENTS).map(|n| format!("same_{n}.bin")).collect();
    want.push("same.bin".into());
    want.sort();
    assert_eq!(stored, want, "every upload got its own name");
    assert_eq!(names_in(root), want, "{}", tree(root));
}

#[test]
fn an_empty_part_left_by_an_early_kill_does_not_block_resuming() {
    // A transfer killed after its part file was created but before its
    // first byte leaves the part empty; the next transfer must take it
    // over, or its own interruption could not be resumed (and a killed
    // client would leave a one-off temporary file behind for good).
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    let root = server.root();
    let data = random_bytes(HELD_SIZE, 44);
    fs::write(cwd.join("e.bin"), &data).unwrap();
    fs::write(root.join("e.bin"), &data).unwrap();

    let part = server.part_path(root, "u.bin");
    // As the server left it: marked as an upload attempt's part.
    write_server_part(&part, b"");
    let held = interrupt_at_hold(&server, &cwd, "put e.bin u.bin\n", true, &part);
    let part_name = part.file_name().unwrap().to_str().unwrap();
    assert_eq!(hidden(root), [part_name], "{}", tree(root));
    let out = run_batch(&server.addr_arg(), &cwd, "reput e.bin u.bin\n");
    out.assert_success()
        .assert_stdout_contains(&format!("(resumed at byte {held}, "));
    assert_eq!(fs::read(root.join("u.bin")).unwrap(), data);

    let down = server.scratch("down");
    let lpart = part_path(&down, "e.bin");
    fs::write(&lpart, b"").unwrap();
    let held = interrupt_at_hold(&server, &down, "get e.bin\n", false, &lpart);
    assert_eq!(hidden(&down), [".ftx-part-e.bin"], "{}", tree(&down));
    let out = run_batch(&server.addr_arg(), &down, "reget e.bin\n");
    out.assert_success()
        .assert_stdout_contains(&format!("(resumed at byte {held}, "));
    assert_eq!(fs::read(down.join("e.bin")).unwrap(), data);
    assert_no_temp_files(root);
    assert_no_temp_files(&down);
}

#[test]
fn sigterm_mid_upload_exits_zero_and_keeps_it_resumable() {
    // The contract: SIGTERM stops accepting, closes connections, keeps
    // interrupted uploads resumable and exits 0.
    let mut server = Server::start(&["--no-fsync"]);
    let root = server.root().to_path_buf();
    let cwd = server.scratch("client");
    let src = cwd.join("src.bin");
    write_random_file(&src, HELD_SIZE as u64, 71);
    let part = server.part_path(&root, "t.bin");
    let hold = Tamper {
        hold_at: Some(HOLD_AT),
        ..Tamper::default()
    };
    let proxy = Proxy::start(server.addr(), hold, Tamper::default());
    let run = spawn_batch(&proxy.addr().to_string(), &cwd, "put src.bin t.bin\n");
    let deadline = Instant::now() + WATCH_TIMEOUT;
    while !proxy.holding() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    assert!(proxy.holding(), "the proxy never held the stream");
    wait_steady(&part);

    let status = server.terminate().expect("ftxd did not exit on SIGTERM");
    assert!(
        status.success(),
        "ftxd exited with {status:?}\n{}",
        server.logs()
    );
    let out = run.wait(Duration::from_secs(30));
    drop(proxy);
    assert!(!out.success(), "the upload cannot have finished\n{out}");
    assert!(!root.join("t.bin").exists(), "{}", tree(&root));
    let held = size_or_zero(&part);
    assert!(held > 0, "no part kept\n{}", tree(&root));

    let server = Server::restart_of(&server, &["--no-fsync"]);
    let out = run_batch(&server.addr_arg(), &cwd, "reput src.bin t.bin\n");
    out.assert_success();
    assert_resume_line(&out, held, HELD_SIZE as u64);
    assert_same_file(&src, &root.join("t.bin"));
    assert_no_temp_files(&root);
}
