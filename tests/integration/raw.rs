//! Raw-socket abuse of a real `ftxd`: garbage, oversized length prefixes,
//! wrong magic or version, frames out of order. Each gets an `Error` frame
//! with the right code (or a close), the server stays up, and a bystander
//! connection and a normal `ftx` session are unaffected.

use std::fs;

use crate::util::{assert_file_bytes, encode, hello, raw_list, Raw, Recv, Server};
use ftx::proto::error::ErrorCode;
use ftx::proto::limits;
use ftx::proto::message::Message;

/// Sends `bytes` on a fresh connection and returns what came back before
/// the close: at most one `Error` frame with a code in `codes`, or nothing.
#[track_caller]
fn abuse(server: &Server, what: &str, bytes: &[u8], codes: &[ErrorCode]) {
    let mut raw = Raw::connect(server.addr());
    let _ = raw.send_raw(bytes);
    let first = raw.recv();
    match &first {
        Recv::Closed | Recv::Reset => {}
        Recv::Msg(Message::Error { code, .. }) if codes.contains(code) => {
            let rest = raw.recv_until_close();
            assert!(rest.is_empty(), "{what}: frames after the Error: {rest:?}");
        }
        other => panic!(
            "{what}: expected Error{{{codes:?}}} then a close, got {other:?}\n{}",
            server.logs()
        ),
    }
}

/// A client session that must still work after the abuse.
#[track_caller]
fn normal_session_works(server: &Server) {
    let cwd = server.scratch("client");
    fs::write(cwd.join("ok.txt"), "still fine").unwrap();
    let back = server.scratch("back");
    server.batch(&cwd, "put -f ok.txt\n").assert_success();
    server.batch(&back, "get -f ok.txt\n").assert_success();
    assert_file_bytes(&back.join("ok.txt"), b"still fine");
}

#[test]
fn handshake_then_list() {
    let server = Server::start(&[]);
    fs::write(server.root().join("a.txt"), "a").unwrap();
    let mut raw = Raw::handshake(server.addr());
    assert_eq!(raw_list(&mut raw, ""), ["a.txt"]);
}

#[test]
fn abuse_gets_errors_and_others_are_unaffected() {
    let mut server = Server::start(&[]);
    let mut bystander = Raw::handshake(server.addr());
    let protocol = [ErrorCode::Protocol];

    abuse(
        &server,
        "HTTP request",
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        &protocol,
    );
    abuse(&server, "length 0xffffffff", &[0xff; 8], &protocol);
    let mut over = (limits::MAX_FRAME_LEN + 1).to_be_bytes().to_vec();
    over.extend_from_slice(&[0x01; 64]);
    abuse(&server, "length MAX_FRAME_LEN + 1", &over, &protocol);
    abuse(&server, "zero-length frame", &[0, 0, 0, 0], &protocol);
    abuse(
        &server,
        "unknown frame type",
        &[0, 0, 0, 3, 0x7f, 1, 2],
        &protocol,
    );
    abuse(
        &server,
        "random bytes",
        &crate::util::random_bytes(4096, 77),
        &protocol,
    );

    let wrong_magic = encode(&Message::Hello {
        magic: *b"HTTP",
        min_version: 1,
        max_version: 1,
        flags: 0,
        token: vec![],
    });
    abuse(
        &server,
        "wrong magic",
        &wrong_magic,
        &[ErrorCode::Protocol, ErrorCode::Version],
    );
    let wrong_version = encode(&Message::Hello {
        magic: limits::MAGIC,
        min_version: limits::PROTOCOL_VERSION + 1,
        max_version: 9,
        flags: 0,
        token: vec![],
    });
    abuse(
        &server,
        "wrong version",
        &wrong_version,
        &[ErrorCode::Version],
    );
    let zero_version = encode(&Message::Hello {
        magic: limits::MAGIC,
        min_version: 0,
        max_version: 0,
        flags: 0,
        token: vec![],
    });
    abuse(
        &server,
        "version 0",
        &zero_version,
        &[ErrorCode::Version, ErrorCode::Protocol],
    );

    let list_first = encode(&Message::List {
        path: String::new(),
    });
    abuse(&server, "List before Hello", &list_first, &protocol);

    let mut two_hellos = encode(&hello());
    two_hellos.extend_from_slice(&encode(&hello()));
    let mut raw = Raw::connect(server.addr());
    raw.send_raw(&two_hellos).unwrap();
    assert!(
        matches!(raw.recv(), Recv::Msg(Message::Welcome { .. })),
        "first Hello is welcome"
    );
    let second = raw.recv();
    assert!(
        second.is_close() || second.error_code() == Some(ErrorCode::Protocol),
        "a second Hello: expected Error{{Protocol}} or a close, got {second:?}"
    );

    let mut raw = Raw::handshake(server.addr());
    let _ = raw.send(&Message::Welcome {
        version: 1,
        flags: 0,
        window: 1,
        server: "x".into(),
    });
    let reply = raw.recv();
    assert!(
        reply.is_close() || reply.error_code() == Some(ErrorCode::Protocol),
        "server-only message from a client: got {reply:?}"
    );

    // Data with no transfer running: a protocol error, or (like a late
    // Ack) ignored, in which case the next request is answered normally.
    let mut raw = Raw::handshake(server.addr());
    let _ = raw.send(&Message::Data {
        offset: 0,
        data: vec![1, 2, 3],
    });
    let _ = raw.send(&Message::List {
        path: String::new(),
    });
    let reply = raw.recv();
    assert!(
        reply.is_close()
            || reply.error_code() == Some(ErrorCode::Protocol)
            || matches!(reply, Recv::Msg(Message::Entries { .. })),
        "Data with no transfer: got {reply:?}"
    );

    // A frame cut in the middle, then the close: nothing to answer.
    let mut raw = Raw::connect(server.addr());
    let h = encode(&hello());
    let _ = raw.send_raw(&h[..h.len() / 2]);
    drop(raw);

    server.assert_alive();
    let listed = raw_list(&mut bystander, "");
    assert!(listed.is_empty(), "bystander listing: {listed:?}");
    normal_session_works(&server);
}

#[test]
fn upload_by_hand_with_a_wrong_digest_is_not_stored() {
    let mut server = Server::start(&[]);
    let mut raw = Raw::handshake(server.addr());
    let data = b"four".to_vec();
    raw.send(&Message::Put {
        path: "d.txt".into(),
        size: data.len() as u64,
        offset: 0,
        flags: 0,
    })
    .unwrap();
    match raw.recv() {
        Recv::Msg(Message::PutReady { name, offset, .. }) => {
            assert_eq!((name.as_str(), offset), ("d.txt", 0));
        }
        other => panic!("expected PutReady, got {other:?}"),
    }
    raw.send(&Message::Data { offset: 0, data }).unwrap();
    raw.send(&Message::Done {
        size: 4,
        digest: [0u8; 32],
    })
    .unwrap();
    // Acks may come first; then an Error{Integrity}.
    let code = loop {
        match raw.recv() {
            Recv::Msg(Message::Ack { .. }) => continue,
            other => break other.error_code(),
        }
    };
    assert_eq!(code, Some(ErrorCode::Integrity));
    server.assert_alive();
    assert!(
        !server.root().join("d.txt").exists(),
        "a corrupt upload appeared under its final name"
    );
}
