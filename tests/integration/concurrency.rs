//! Many clients at once, and the connection limit: past `--max-connections`
//! a client is told the server is busy, and a freed slot is usable again.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{assert_same_file, run_batch, write_random_file, Raw, Recv, Server};
use ftx::proto::error::ErrorCode;

const CLIENTS: usize = 50;

#[test]
fn fifty_clients_upload_at_once() {
    let server = Server::start(&["--no-fsync"]);
    let addr = server.addr_arg();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let mut handles = Vec::new();
    for i in 0..CLIENTS {
        let dir = server.scratch(&format!("client{i}"));
        // 256 KiB .. 1 MiB, deterministic, not chunk-aligned.
        let size = 256 * 1024 + (i as u64 * 786_432 / CLIENTS as u64) + i as u64;
        let name = format!("f{i}.bin");
        write_random_file(&dir.join(&name), size, 1000 + i as u64);
        let addr = addr.clone();
        let barrier = Arc::clone(&barrier);
        handles.push(thread::spawn(move || {
            barrier.wait();
            let out = run_batch(&addr, &dir, &format!("put {name}\n"));
            (dir, name, out)
        }));
    }
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
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
