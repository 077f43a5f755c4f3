//! The disk helpers of `ftxd` seen from outside: fsynced uploads from many
//! clients at once all arrive, sharing directory syncs (group commit); a
//! client that hangs up right after its verified `Done` still has its file
//! stored; SIGTERM with uploads in flight ends cleanly.

use std::thread;
use std::time::{Duration, Instant};

use crate::util::{
    assert_same_file, puts_at_once, run_batch, write_random_file, Raw, Recv, Server,
};
use ftx::proto::message::Message;
use std::fs;

const CLIENTS: usize = 20;

/// The figures of ftxd's shutdown line "disk: N commit(s) shared M
/// directory sync(s); ...".
fn commits_and_dir_syncs(logs: &str) -> (u64, u64) {
    let line = logs
        .lines()
        .find(|l| l.contains("commit(s) shared"))
        .unwrap_or_else(|| panic!("no disk line in the logs:\n{logs}"));
    let after = |word: &str| -> u64 {
        let before = line.split(word).next().unwrap_or_default();
        before
            .split_whitespace()
            .last()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number before '{word}' in {line}"))
    };
    (after("commit(s)"), after("directory sync(s)"))
}

#[test]
fn fsynced_uploads_at_once_all_arrive_sharing_directory_syncs() {
    let mut server = Server::start(&[]);
    let results = puts_at_once(&server, CLIENTS, |i| 64 * 1024 + i as u64 * 4099, 70);
    for (dir, name, out) in &results {
        out.assert_success();
        assert_same_file(&dir.join(name), &server.root().join(name));
    }
    assert!(
        server.terminate().is_some_and(|s| s.success()),
        "{}",
        server.logs()
    );
    let (commits, syncs) = commits_and_dir_syncs(&server.logs());
    assert_eq!(commits, CLIENTS as u64, "{}", server.logs());
    // Each commit waited for a directory sync; never more syncs than
    // commits (how many shared one depends on the timing).
    assert!((1..=commits).contains(&syncs), "{syncs} syncs");
}

/// A client that sends its last data and `Done` and closes at once: the
/// upload was whole and verified, so it is stored all the same (the
/// commit finishes though nobody waits for `PutDone`).
#[test]
fn an_upload_whose_client_hangs_up_after_done_is_stored() {
    let server = Server::start(&[]);
    let mut raw = Raw::handshake(server.addr());
    let data = b"whole and verified".to_vec();
    raw.send(&Message::Put {
        path: "gone.txt".into(),
        size: data.len() as u64,
        offset: 0,
        flags: 0,
    })
    .unwrap();
    match raw.recv() {
        Recv::Msg(Message::PutReady { offset: 0, .. }) => {}
        other => panic!("expected PutReady, got {other:?}"),
    }
    raw.send(&Message::Data {
        offset: 0,
        data: data.clone(),
    })
    .unwrap();
    raw.send(&Message::Done {
        size: data.len() as u64,
        digest: *blake3::hash(&data).as_bytes(),
    })
    .unwrap();
    drop(raw);
    let path = server.root().join("gone.txt");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(Instant::now() < deadline, "not stored\n{}", server.logs());
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

/// SIGTERM while a fsynced upload's flushes run on the disk helpers:
/// ftxd exits 0, the upload stays as a part, and `reput` finishes it.
#[test]
fn sigterm_with_flushes_in_flight_keeps_the_part_for_reput() {
    const SIZE: usize = 24 << 20;
    const SENT: usize = 12 << 20;
    const CHUNK: usize = 128 << 10;
    let mut server = Server::start(&[]);
    let root = server.root().to_path_buf();
    let cwd = server.scratch("client");
    let src = cwd.join("src.bin");
    write_random_file(&src, SIZE as u64, 93);
    let data = fs::read(&src).unwrap();
    let mut raw = Raw::handshake(server.addr());
    raw.send(&Message::Put {
        path: "t.bin".into(),
        size: SIZE as u64,
        offset: 0,
        flags: 0,
    })
    .unwrap();
    for at in (0..SENT).step_by(CHUNK) {
        raw.send(&Message::Data {
            offset: at as u64,
            data: data[at..at + CHUNK].to_vec(),
        })
        .unwrap();
    }
    let part = server.part_path(&root, "t.bin");
    let deadline = Instant::now() + Duration::from_secs(20);
    while fs::metadata(&part).map_or(0, |m| m.len()) < SENT as u64 {
        assert!(
            Instant::now() < deadline,
            "the data never arrived\n{}",
            server.logs()
        );
        thread::sleep(Duration::from_millis(10));
    }
    let status = server.terminate().expect("ftxd did not exit on SIGTERM");
    assert!(status.success(), "{status:?}\n{}", server.logs());
    drop(raw);
    assert!(!root.join("t.bin").exists());
    assert_eq!(fs::metadata(&part).unwrap().len(), SENT as u64);

    let server = Server::restart_of(&server, &[]);
    let out = run_batch(&server.addr_arg(), &cwd, "reput src.bin t.bin\n");
    out.assert_success()
        .assert_stdout_contains(&format!("(resumed at byte {SENT}, "));
    assert_same_file(&src, &root.join("t.bin"));
}
