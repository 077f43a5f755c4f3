//! Several `ftxd` on one root whose name lookups lie, as they do on a
//! distributed file system: each server keeps what a part file's name led
//! to for a while (`FTXD_FAULT_STALE_LOOKUPS_MS`, the test-only cache of
//! `ftx::lookups`), even after another server published that file. No
//! acknowledged upload may be lost or mixed however stale the names are.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{
    assert_same_file, ftx_bin, names_in, run_batch, run_cmd_env, spawn_batch, stored_name, tree,
    wait_unlocked, write_random_file, Proxy, Server, Tamper, RUN_TIMEOUT,
};
use ftx::lookups::STALE_LOOKUPS_ENV;

/// Plain and open: no token, so both servers use the same part names.
const ARGS: &[&str] = &["--no-fsync", "--plain", "--open"];
/// Longest a server may take to let go of a dead client's part file.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// Two servers on one root, each with a stale cache of `ttl_ms`.
fn two_lying_servers(ttl_ms: &str) -> (Server, Server) {
    let env = [(STALE_LOOKUPS_ENV, ttl_ms)];
    let a = Server::start_with_env(None, ARGS, &env);
    let b = Server::start_with_env(Some(a.root()), ARGS, &env);
    (a, b)
}

/// Puts `local` as `remote` through a proxy that holds the upload after
/// 1 MiB, then kills the client: an interrupted upload whose part the
/// server keeps. Returns the part's size.
fn interrupted_put(server: &Server, cwd: &Path, local: &str, remote: &str) -> u64 {
    let hold = Tamper {
        hold_at: Some(1 << 20),
        ..Tamper::default()
    };
    let proxy = Proxy::start(server.addr(), hold, Tamper::default());
    let mut run = spawn_batch(
        &proxy.addr().to_string(),
        cwd,
        &format!("put {local} {remote}\n"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !proxy.holding() && !run.exited() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
    assert!(proxy.holding(), "the proxy never held the upload");
    let part = server.part_path(server.root(), remote);
    // Let the server write what passed before the hold.
    let mut last = (u64::MAX, Instant::now());
    while Instant::now() < deadline {
        let size = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if size > 0 && size == last.0 && last.1.elapsed() > Duration::from_millis(150) {
            break;
        }
        if size != last.0 {
            last = (size, Instant::now());
        }
        thread::sleep(Duration::from_millis(10));
    }
    let killed = run.kill();
    drop(proxy);
    wait_unlocked(&part, RELEASE_TIMEOUT, &killed);
    fs::metadata(&part).map(|m| m.len()).unwrap_or(0)
}

/// The race seen on JuiceFS: server B keeps the part name of an upload it
/// was interrupted in; server A finishes that upload (`reput`) and
/// publishes it; a `reput` of a longer file with the same beginning then
/// reaches B while B's cache still leads the part name to the published
/// file. B must not resume into it (before marks it appended there and
/// called the file "already ours": the first client's acknowledged upload
/// was silently replaced).
#[test]
fn a_stale_part_name_never_leads_into_a_published_file() {
    let (a, b) = two_lying_servers("60000");
    let root = a.root();
    let first = a.scratch("first");
    let second = a.scratch("second");
    write_random_file(&first.join("f.bin"), 3 << 20, 9001);
    let mut longer = fs::read(first.join("f.bin")).unwrap();
    longer.extend_from_slice(&[7u8; 100_000]);
    fs::write(second.join("f.bin"), &longer).unwrap();

    let held = interrupted_put(&b, &first, "f.bin", "f.bin");
    assert!(held > 0, "an interrupted part is kept\n{}", tree(root));
    let out = run_batch(&a.addr_arg(), &first, "reput f.bin\n");
    out.assert_success();
    assert_eq!(stored_name(&out), "f.bin", "{out}");
    assert_same_file(&first.join("f.bin"), &root.join("f.bin"));

    let out = run_batch(&b.addr_arg(), &second, "reput f.bin\n");
    // The first client's acknowledged file is untouched.
    assert_same_file(&first.join("f.bin"), &root.join("f.bin"));
    out.assert_success();
    let told = stored_name(&out);
    assert_eq!(told, "f_1.bin", "a fresh name for the second upload\n{out}");
    assert_same_file(&second.join("f.bin"), &root.join(&told));
    assert_eq!(names_in(root), ["f.bin", "f_1.bin"], "{}", tree(root));
    for server in [&a, &b] {
        assert!(!server.logs().contains("panicked"), "{}", server.logs());
    }
}

/// Twenty clients put one name at once, alternating between two lying
/// servers, twice in a row (the second round meets the first round's
/// names in every cache): twenty distinct names each round, each file
/// byte for byte what the client that was told its name sent.
#[test]
fn twenty_same_name_puts_on_two_lying_servers_keep_every_upload() {
    const CLIENTS: usize = 20;
    let (a, b) = two_lying_servers("1000");
    let up = a.root().join("up");
    fs::create_dir(&up).unwrap();
    let mut stored = Vec::new();
    for round in 0..2 {
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let mut handles = Vec::new();
        for i in 0..CLIENTS {
            let dir = a.scratch(&format!("r{round}c{i}"));
            let size = 200_000 + i as u64 * 10_007;
            write_random_file(&dir.join("same.bin"), size, (round * 100 + i) as u64);
            let addr = if i % 2 == 0 {
                a.addr_arg()
            } else {
                b.addr_arg()
            };
            let barrier = Arc::clone(&barrier);
            handles.push(thread::spawn(move || {
                barrier.wait();
                let out = run_batch(&addr, &dir, "put same.bin up/same.bin\n");
                (dir, out)
            }));
        }
        for h in handles {
            let (dir, out) = h.join().unwrap();
            out.assert_success();
            let name = stored_name(&out);
            let name = name.strip_prefix("up/").unwrap_or(&name).to_owned();
            assert_same_file(&dir.join("same.bin"), &up.join(&name));
            stored.push(name);
        }
    }
    stored.sort();
    let told = stored.len();
    stored.dedup();
    assert_eq!(stored.len(), told, "two clients told one name: {stored:?}");
    assert_eq!(names_in(&up), stored, "{}", tree(&up));
}

/// An interrupted upload, then two `reput`s of it at once, one on each
/// lying server, of different files with the same beginning (so either
/// may resume the part): round after round, every upload a client was
/// told succeeded is byte for byte under the name it was told, and a
/// refused one ("in progress") stored nothing.
#[test]
fn simultaneous_reputs_on_two_lying_servers_lose_no_acknowledged_upload() {
    const ROUNDS: usize = 4;
    let (a, b) = two_lying_servers("2000");
    let root = a.root().to_path_buf();
    let mut acknowledged = 0;
    for round in 0..ROUNDS {
        let name = format!("r{round}.bin");
        let dirs = [
            a.scratch(&format!("r{round}a")),
            a.scratch(&format!("r{round}b")),
        ];
        write_random_file(&dirs[0].join(&name), 2 << 20, 500 + round as u64);
        let mut other = fs::read(dirs[0].join(&name)).unwrap();
        other.extend_from_slice(&vec![round as u8; 50_000 * (round + 1)]);
        fs::write(dirs[1].join(&name), &other).unwrap();
        let first = if round % 2 == 0 { &a } else { &b };
        interrupted_put(first, &dirs[0], &name, &name);
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = [a.addr_arg(), b.addr_arg()]
            .into_iter()
            .zip(dirs.clone())
            .map(|(addr, dir)| {
                let (barrier, name) = (Arc::clone(&barrier), name.clone());
                thread::spawn(move || {
                    barrier.wait();
                    run_batch(&addr, &dir, &format!("reput {name}\n"))
                })
            })
            .collect();
        for (h, dir) in handles.into_iter().zip(&dirs) {
            let out = h.join().unwrap();
            if out.success() {
                acknowledged += 1;
                assert_same_file(&dir.join(&name), &root.join(stored_name(&out)));
            } else {
                out.assert_error("in progress");
            }
        }
    }
    assert!(
        acknowledged >= ROUNDS,
        "at least one reput a round succeeds"
    );
}

/// Two servers on one root sharing one state directory (outside the
/// root), as nodes behind a balancer do: one certificate, one token list.
/// A token made on one node works on the other, and a revoked token is
/// refused by both at their next connection.
#[test]
fn nodes_sharing_a_state_directory_share_identity_and_tokens() {
    let a = Server::start(&["--no-fsync"]);
    let state = a.base().join("state");
    let state_arg = state.to_str().unwrap().to_owned();
    let b = Server::start_on(a.root(), &["--no-fsync", "--state-dir", &state_arg]);
    let fp = a.creds().fingerprint.clone().unwrap();
    assert_eq!(
        b.creds().fingerprint.as_deref(),
        Some(fp.as_str()),
        "one identity"
    );
    assert!(
        b.creds().token.is_empty(),
        "the first token is shown once, by the first node"
    );
    let token_cmd = |args: &[&str]| {
        let mut all = vec!["token"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--state-dir", &state_arg]);
        run_cmd_env(
            crate::util::ftxd_bin(),
            &all,
            a.base(),
            None,
            RUN_TIMEOUT,
            &[],
            None,
        )
    };
    let added = token_cmd(&["add", "shared"]);
    added.assert_success();
    let token = added.stdout.trim().to_owned();
    let cwd = a.scratch("client");
    write_random_file(&cwd.join("t.bin"), 3 << 20, 77);
    let run = |server: &Server, script: &str| {
        let addr = server.addr_arg();
        let args = [addr.as_str(), "-b", "-", "--fingerprint", fp.as_str()];
        run_cmd_env(
            ftx_bin(),
            &args,
            &cwd,
            Some(script.as_bytes()),
            RUN_TIMEOUT,
            &[("FTX_TOKEN", token.as_str())],
            None,
        )
    };
    run(&b, "put t.bin one.bin\n").assert_success();
    run(&a, "get one.bin back.bin\n").assert_success();
    assert_same_file(&cwd.join("t.bin"), &cwd.join("back.bin"));
    token_cmd(&["revoke", "shared"]).assert_success();
    for server in [&a, &b] {
        run(server, "ls\n").assert_error("token");
    }
}
