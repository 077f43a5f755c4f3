//! Limits that hold against a real `ftxd`: connections from one address,
//! a transfer that stops moving, the handshake deadline, and the flags
//! documented in `--help`. Each client past a limit is told why before the
//! close, and a normal client keeps working.

use std::fs;
use std::time::{Duration, Instant};

use crate::util::{hello, run_ftxd, Raw, Recv, Server};
use ftx::proto::error::ErrorCode;
use ftx::proto::message::Message;

#[test]
fn help_documents_every_limit() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ftxd(dir.path(), &["--help"]);
    out.assert_success();
    for flag in [
        "--max-connections",
        "--max-per-ip",
        "--idle-timeout",
        "--stall-timeout",
        "--max-file-size",
        "--read-only",
    ] {
        out.assert_stdout_contains(flag);
    }
    out.assert_stdout_lacks("--handshake-timeout-ms");
}

#[test]
fn one_address_past_max_per_ip_is_told_why() {
    let server = Server::start(&["--max-per-ip", "3"]);
    let held: Vec<Raw> = (0..3).map(|_| Raw::handshake(server.addr())).collect();
    let mut extra = Raw::connect(server.addr());
    let _ = extra.send(&hello());
    assert_eq!(
        extra.recv().error_code(),
        Some(ErrorCode::TooManyFromAddress),
        "{}",
        server.logs()
    );
    assert!(extra.recv().is_close());
    drop(held);
    // The count goes down as connections close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut raw = Raw::connect(server.addr());
        let _ = raw.send(&hello());
        match raw.recv() {
            Recv::Msg(Message::Welcome { .. }) => break,
            other => {
                assert!(Instant::now() < deadline, "still refused: {other:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[test]
fn stalled_upload_and_download_time_out() {
    let server = Server::start(&["--stall-timeout", "1"]);
    // Larger than the 16 MiB window: without acks the server must stop.
    fs::write(server.root().join("big"), vec![7u8; 20 << 20]).unwrap();

    let mut up = Raw::handshake(server.addr());
    up.send(&Message::Put {
        path: "stalled".into(),
        size: 1000,
        offset: 0,
        flags: 0,
    })
    .unwrap();
    assert!(matches!(up.recv(), Recv::Msg(Message::PutReady { .. })));
    let t0 = Instant::now();
    // Nothing more is sent: the server gives up after about a second.
    let msgs = up.recv_until_close();
    let waited = t0.elapsed();
    assert!(
        matches!(
            msgs.last(),
            Some(Message::Error {
                code: ErrorCode::Timeout,
                ..
            })
        ),
        "{msgs:?}"
    );
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    assert!(!server.root().join("stalled").exists());

    // A download whose client reads but never acknowledges.
    let mut down = Raw::handshake(server.addr());
    down.send(&Message::Get {
        path: "big".into(),
        offset: 0,
    })
    .unwrap();
    let t0 = Instant::now();
    let mut saw_timeout = false;
    loop {
        match down.recv() {
            Recv::Msg(Message::Error { code, .. }) => {
                assert_eq!(code, ErrorCode::Timeout);
                saw_timeout = true;
            }
            Recv::Msg(_) => {}
            Recv::Closed | Recv::Reset => break,
            other => panic!("{other:?}"),
        }
        assert!(
            t0.elapsed() < Duration::from_secs(6),
            "download never timed out"
        );
    }
    assert!(saw_timeout, "{}", server.logs());
}

#[test]
fn drip_fed_handshake_is_closed_by_its_deadline() {
    let server = Server::start(&["--handshake-timeout-ms", "700"]);
    let mut raw = Raw::connect(server.addr());
    let bytes = crate::util::encode(&hello());
    let t0 = Instant::now();
    // One byte every 100 ms: never a whole Hello before the deadline.
    for b in bytes.iter().take(6) {
        if raw.send_raw(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let msgs = raw.recv_until_close();
    assert!(
        matches!(
            msgs.last(),
            Some(Message::Error {
                code: ErrorCode::Timeout,
                ..
            })
        ),
        "{msgs:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[test]
fn half_open_handshakes_are_closed_and_others_are_served() {
    let server = Server::start(&["--handshake-timeout-ms", "600"]);
    // Connected but silent; half a Hello then our write side shut down;
    // half a Hello then silence.
    let silent = Raw::connect(server.addr());
    let mut shut = Raw::connect(server.addr());
    let bytes = crate::util::encode(&hello());
    shut.send_raw(&bytes[..bytes.len() / 2]).unwrap();
    shut.stream
        .socket()
        .shutdown(std::net::Shutdown::Write)
        .unwrap();
    let mut half = Raw::connect(server.addr());
    half.send_raw(&bytes[..5]).unwrap();

    // A normal client is served meanwhile.
    let mut ok = Raw::handshake(server.addr());
    assert!(crate::util::raw_list(&mut ok, "").is_empty());

    let t0 = Instant::now();
    // Closed mid-frame by the peer: a protocol error (or just the close).
    let msgs = shut.recv_until_close();
    assert!(
        msgs.iter().all(|m| matches!(
            m,
            Message::Error {
                code: ErrorCode::Protocol,
                ..
            }
        )),
        "{msgs:?}"
    );
    for mut raw in [silent, half] {
        let msgs = raw.recv_until_close();
        assert!(
            matches!(
                msgs.last(),
                Some(Message::Error {
                    code: ErrorCode::Timeout,
                    ..
                })
            ),
            "{msgs:?}"
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(5));
    // The served client is still fine after the others were dropped.
    assert!(crate::util::raw_list(&mut ok, "").is_empty());
}
