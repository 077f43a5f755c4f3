//! Many clients at once, and the connection limit: past `--max-connections`
//! a client is told the server is busy, and a freed slot is usable again.

use std::thread;
use std::time::{Duration, Instant};

use crate::util::{assert_same_file, puts_at_once, Raw, Recv, Server};
use ftx::proto::error::ErrorCode;

const CLIENTS: usize = 50;

#[test]
fn fifty_clients_upload_at_once() {
    let server = Server::start(&["--no-fsync"]);
    // 256 KiB .. 1 MiB, deterministic, not chunk-aligned.
    let size = |i: usize| 256 * 1024 + (i as u64 * 786_432 / CLIENTS as u64) + i as u64;
    let results = puts_at_once(&server, CLIENTS, size, 1000);
    for (_, _, out) in &results {
        out.assert_success();
    }
    for (dir, name, _) in &results {
        assert_same_file(&dir.join(name), &server.root().join(name));
    }
    assert_eq!(crate::util::names_in(server.root()).len(), CLIENTS);
}

#[test]
fn busy_past_max_connections() {
    let mut server = Server::start(&["--max-connections", "2"]);
    let cwd = server.scratch("client");
    let held1 = Raw::handshake(server.addr());
    let held2 = Raw::handshake(server.addr());

    let out = server.batch(&cwd, "ls\n");
    out.assert_error("busy");

    // A raw third client gets an Error{Busy} frame, then the close. Read
    // first so a server that answers at once is not hit by our Hello (which
    // could turn its close into a reset that swallows the frame).
    let mut third = Raw::connect(server.addr());
    let mut reply = third.recv();
    if matches!(reply, Recv::Timeout) {
        let _ = third.send(&crate::util::hello());
        reply = third.recv();
    }
    assert_eq!(
        reply.error_code(),
        Some(ErrorCode::Busy),
        "third raw connection should get Error{{Busy}}, got {reply:?}"
    );
    drop(third);

    drop(held1);
    // The server notices the close asynchronously: allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let out = loop {
        let out = server.batch(&cwd, "ls\n");
        if out.success() || Instant::now() > deadline {
            break out;
        }
        thread::sleep(Duration::from_millis(100));
    };
    out.assert_success();
    drop(held2);
    server.assert_alive();
}
