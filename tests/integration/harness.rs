//! Checks of the harness itself, so a failing suite is about `ftx`, not
//! about the helpers. These need no running server.

use std::fs;

use crate::util::{assert_same_file, parse_listening, parse_ls, random_bytes, XorShift};

#[test]
fn parses_the_listening_line() {
    for line in [
        "listening on 127.0.0.1:4242",
        "ftxd 0.1.0 listening on 127.0.0.1:4242 (root /tmp/x)",
        "[INFO] listening on 127.0.0.1:4242, root=/tmp",
        "listening on '127.0.0.1:4242'",
    ] {
        let addr = parse_listening(line).unwrap_or_else(|| panic!("{line:?}"));
        assert_eq!(addr.to_string(), "127.0.0.1:4242", "{line:?}");
    }
    assert!(parse_listening("starting up").is_none());
}

#[test]
fn random_data_is_deterministic() {
    assert_eq!(random_bytes(1000, 7), random_bytes(1000, 7));
    assert_ne!(random_bytes(1000, 7), random_bytes(1000, 8));
    let mut r = XorShift::new(0);
    assert_ne!(r.next_u64(), r.next_u64());
    let v = random_bytes(3, 1);
    assert_eq!(v.len(), 3);
}

#[test]
fn same_file_detects_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mut bytes = random_bytes(3 << 20, 9);
    fs::write(&a, &bytes).unwrap();
    fs::write(&b, &bytes).unwrap();
    assert_same_file(&a, &b);
    bytes[(2 << 20) + 5] ^= 1;
    fs::write(&b, &bytes).unwrap();
    let err = std::panic::catch_unwind(|| assert_same_file(&a, &b)).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains(&format!("at byte {}", (2 << 20) + 5)), "{msg}");
}

#[test]
fn parses_ls_lines() {
    assert_eq!(
        parse_ls(&["5 a.txt", "  0   dir/", "12\tmy file.txt", ""]),
        [
            (5, "a.txt".to_owned()),
            (0, "dir/".to_owned()),
            (12, "my file.txt".to_owned())
        ]
    );
}

#[test]
fn raw_client_reads_frames_cut_anywhere() {
    use crate::util::{encode, Raw, Recv};
    use ftx::proto::error::ErrorCode;
    use ftx::proto::message::Message;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 64];
        let _ = s.read(&mut hello).unwrap();
        let mut bytes = encode(&Message::Welcome {
            version: ftx::proto::limits::PROTOCOL_VERSION,
            flags: 0,
            window: 1 << 20,
            server: "fake".into(),
        });
        bytes.extend(encode(&Message::Error {
            code: ErrorCode::Busy,
            message: "go away".into(),
        }));
        for b in bytes {
            s.write_all(&[b]).unwrap();
            s.flush().unwrap();
        }
    });
    let mut raw = Raw::handshake(addr);
    assert_eq!(raw.recv().error_code(), Some(ErrorCode::Busy));
    assert!(matches!(raw.recv(), Recv::Closed));
    fake.join().unwrap();
}
