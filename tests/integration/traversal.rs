//! Traversal attacks on a real `ftxd` through raw frames (one connection,
//! many requests): a generated corpus of over 1,000 hostile names times
//! every operation, and a matrix of symlinks inside the root times every
//! operation. Nothing outside the root is read or written: a sentinel tree
//! beside the root is unchanged, its secret never comes back, and nothing
//! new appears beside the root.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use crate::util::{hello, snapshot, snapshot_except, Raw, Recv, Server};
use ftx::proto::error::ErrorCode;
use ftx::proto::message::Message;

const SECRET: &[u8] = b"SENTINEL-SECRET-do-not-serve";

/// `..` spelled every way we know, and look-alikes that must stay plain names.
const DOTS: &[&str] = &[
    "..",
    ".",
    "...",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%252e%252e",
    "%c0%ae%c0%ae",
    "\u{2024}\u{2024}",
    "\u{2025}",
    "\u{ff0e}\u{ff0e}",
    "..\u{200b}",
    "\u{200b}..",
    ". .",
    "..;",
    "..\u{0}",
    "..\u{1b}",
];
/// Separators, real and imitated.
const SEPS: &[&str] = &[
    "/", "\\", "//", "/./", "%2f", "%5c", "\u{ff0f}", "\u{2215}", "\u{29f8}",
];
/// Where the `..` goes.
const SHAPES: &[&str] = &[
    "{d}",
    "{d}{s}x",
    "x{s}{d}",
    "x{s}{d}{s}y",
    "{d}{s}{d}{s}outside{s}secret",
    "{s}{d}",
    "{s}etc{s}passwd",
    "{d}{s}",
    "{s}{d}{s}",
    "x{s}{s}{d}",
];

fn hostile_names() -> Vec<String> {
    let mut names = Vec::new();
    for d in DOTS {
        for s in SEPS {
            for shape in SHAPES {
                names.push(shape.replace("{d}", d).replace("{s}", s));
            }
        }
    }
    let long = "a".repeat(256);
    names.extend(
        [
            "",
            "/",
            "/etc/passwd",
            "/tmp",
            "C:\\Windows",
            "\\\\host\\share",
            "a\u{0}b",
            "a\nb",
            "a\rb",
            "\u{1b}[2J",
            "\u{7f}",
            "\u{85}",
            "\u{9b}31m",
            "a\tb",
            ".ftx-tmp-1",
            "d/.ftx-part-x",
            "./a",
            "a/.",
            "a//b",
            "a/",
        ]
        .map(str::to_owned),
    );
    names.push(long.clone());
    names.push(format!("d/{long}"));
    names.push(format!("{}x", "a/".repeat(2048)));
    names.push("b".repeat(4097));
    names.sort();
    names.dedup();
    names
}

/// One request on `raw`, answered: the reply, reconnecting if the server
/// closed the connection (which it may only do with an `Error` first).
fn ask(server: &Server, raw: &mut Raw, msg: &Message) -> Recv {
    if raw.send(msg).is_err() {
        *raw = Raw::handshake(server.addr());
        raw.send(msg).expect("send after reconnect");
    }
    let reply = raw.recv();
    if matches!(msg, Message::Put { .. }) && reply.error_code().is_some() && !reply.is_close() {
        // A refused upload ends with the client's Cancel (protocol 2: its
        // data may already be on the way); the connection stays usable.
        raw.send(&Message::Cancel).expect("send Cancel");
    }
    assert!(
        !matches!(reply, Recv::Timeout | Recv::Bad(_)),
        "{msg:?}: {reply:?}"
    );
    if reply.is_close() {
        *raw = Raw::handshake(server.addr());
    }
    reply
}

/// Runs every operation on `name`; returns how many were refused.
fn attack(server: &Server, raw: &mut Raw, name: &str) -> usize {
    let mut refused = 0;
    let mut count = |r: &Recv| {
        if r.error_code().is_some() || r.is_close() {
            refused += 1;
        }
    };
    // ls
    raw.send(&Message::List { path: name.into() }).ok();
    loop {
        match raw.recv() {
            Recv::Msg(Message::Entries { entries, last }) => {
                for e in &entries {
                    assert!(!e.name.contains("SENTINEL"), "{name:?} listed {e:?}");
                }
                if last {
                    break;
                }
            }
            other => {
                count(&other);
                if other.is_close() {
                    *raw = Raw::handshake(server.addr());
                }
                break;
            }
        }
    }
    // get
    let r = ask(
        server,
        raw,
        &Message::Get {
            path: name.into(),
            offset: 0,
        },
    );
    if let Recv::Msg(Message::GetReady { size, .. }) = r {
        let mut got = Vec::new();
        loop {
            match raw.recv() {
                Recv::Msg(Message::Data { data, .. }) => got.extend(data),
                Recv::Msg(Message::Done { .. }) => break,
                other => panic!("{name:?}: {other:?}"),
            }
        }
        raw.send(&Message::Ack { offset: size }).ok();
        assert!(
            !got.windows(SECRET.len()).any(|w| w == SECRET),
            "{name:?} served the secret"
        );
    } else {
        count(&r);
    }
    // put
    let r = ask(
        server,
        raw,
        &Message::Put {
            path: name.into(),
            size: 1,
            offset: 0,
            flags: 0,
        },
    );
    if let Recv::Msg(Message::PutReady { .. }) = r {
        raw.send(&Message::Data {
            offset: 0,
            data: b"x".to_vec(),
        })
        .unwrap();
        raw.send(&Message::Done {
            size: 1,
            digest: *blake3::hash(b"x").as_bytes(),
        })
        .unwrap();
        loop {
            match raw.recv() {
                Recv::Msg(Message::Ack { .. }) => {}
                Recv::Msg(Message::PutDone { .. }) => break,
                other => {
                    count(&other);
                    break;
                }
            }
        }
    } else {
        count(&r);
    }
    // mkdir, rm, rename both ways
    count(&ask(server, raw, &Message::Mkdir { path: name.into() }));
    count(&ask(server, raw, &Message::Remove { path: name.into() }));
    count(&ask(
        server,
        raw,
        &Message::Rename {
            from: name.into(),
            to: "renamed".into(),
        },
    ));
    fs::write(server.root().join("victim"), b"v").unwrap();
    count(&ask(
        server,
        raw,
        &Message::Rename {
            from: "victim".into(),
            to: name.into(),
        },
    ));
    let _ = fs::remove_file(server.root().join("renamed"));
    refused
}

fn sentinel(base: &Path) {
    let out = base.join("outside");
    fs::create_dir_all(out.join("sub")).unwrap();
    fs::write(out.join("secret"), SECRET).unwrap();
    fs::write(out.join("sub/SENTINEL"), SECRET).unwrap();
    fs::write(base.join("SENTINEL-top"), SECRET).unwrap();
}

#[test]
fn a_thousand_hostile_names_times_every_operation() {
    let server = Server::start(&[]);
    sentinel(server.base());
    let root = server.root();
    fs::create_dir_all(root.join("x")).unwrap();
    fs::write(root.join("x/y"), b"inside").unwrap();
    let before = snapshot_except(server.base(), &["root"]);
    let names = hostile_names();
    assert!(names.len() >= 1000, "only {} names", names.len());
    let mut raw = Raw::handshake(server.addr());
    let mut refused = 0;
    for name in &names {
        refused += attack(&server, &mut raw, name);
    }
    assert_eq!(
        snapshot_except(server.base(), &["root"]),
        before,
        "something outside the root changed\n{}",
        server.logs()
    );
    // Most of the corpus is refused outright; the look-alikes are plain names.
    assert!(refused > names.len() * 4, "only {refused} refusals");
    // The connection (or its replacement) still works.
    assert!(matches!(
        ask(
            &server,
            &mut raw,
            &Message::Mkdir {
                path: "after".into()
            }
        ),
        Recv::Msg(Message::Ok)
    ));
}

#[test]
fn symlink_matrix_times_every_operation() {
    let server = Server::start(&[]);
    sentinel(server.base());
    let root = server.root();
    let out = server.base().join("outside");
    fs::create_dir_all(root.join("real/deep")).unwrap();
    fs::write(root.join("real/file"), b"inside").unwrap();
    // inside -> inside (relative, chains, dir links) and inside -> outside.
    symlink("real/file", root.join("in_file")).unwrap();
    symlink("real", root.join("in_dir")).unwrap();
    symlink("in_dir", root.join("in_chain")).unwrap();
    symlink("../file", root.join("real/deep/up_file")).unwrap();
    symlink(out.join("secret"), root.join("abs_out_file")).unwrap();
    symlink(&out, root.join("abs_out_dir")).unwrap();
    symlink("../outside/secret", root.join("rel_out_file")).unwrap();
    symlink("../outside", root.join("rel_out_dir")).unwrap();
    symlink("abs_out_dir", root.join("chain_out")).unwrap();
    symlink("real/../../outside", root.join("dotdot_out")).unwrap();
    symlink(root.join("real"), root.join("abs_in_dir")).unwrap();
    symlink("/proc/self/root/etc", root.join("magic")).unwrap();
    symlink("nowhere", root.join("dangling")).unwrap();
    let before = snapshot(&out);
    let mut raw = Raw::handshake(server.addr());

    let escaping = [
        "abs_out_file",
        "abs_out_dir",
        "rel_out_file",
        "rel_out_dir",
        "chain_out",
        "dotdot_out",
        "magic",
        "abs_in_dir",
    ];
    for link in escaping {
        for path in [
            link.to_owned(),
            format!("{link}/secret"),
            format!("{link}/sub/SENTINEL"),
        ] {
            let r = ask(
                &server,
                &mut raw,
                &Message::Get {
                    path: path.clone(),
                    offset: 0,
                },
            );
            assert!(r.error_code().is_some(), "get {path}: {r:?}");
            let r = ask(&server, &mut raw, &Message::List { path: path.clone() });
            assert!(r.error_code().is_some(), "ls {path}: {r:?}");
        }
        for path in [format!("{link}/new"), format!("{link}/sub/new")] {
            let r = ask(
                &server,
                &mut raw,
                &Message::Put {
                    path: path.clone(),
                    size: 1,
                    offset: 0,
                    flags: 0,
                },
            );
            assert_eq!(
                r.error_code(),
                Some(ErrorCode::PermissionDenied),
                "put {path}: {r:?}"
            );
            let r = ask(&server, &mut raw, &Message::Mkdir { path: path.clone() });
            assert_eq!(
                r.error_code(),
                Some(ErrorCode::PermissionDenied),
                "mkdir {path}: {r:?}"
            );
            let r = ask(
                &server,
                &mut raw,
                &Message::Rename {
                    from: "real/file".into(),
                    to: path.clone(),
                },
            );
            assert_eq!(
                r.error_code(),
                Some(ErrorCode::PermissionDenied),
                "rename to {path}: {r:?}"
            );
        }
        let path = format!("{link}/secret");
        let r = ask(&server, &mut raw, &Message::Remove { path: path.clone() });
        assert!(r.error_code().is_some(), "rm {path}: {r:?}");
        let r = ask(
            &server,
            &mut raw,
            &Message::Rename {
                from: path.clone(),
                to: "stolen".into(),
            },
        );
        assert!(r.error_code().is_some(), "rename {path}: {r:?}");
    }
    // A forced upload over a link replaces the link, never its target.
    for link in escaping {
        let r = ask(
            &server,
            &mut raw,
            &Message::Put {
                path: link.into(),
                size: 0,
                offset: 0,
                flags: ftx::proto::message::PUT_FORCE,
            },
        );
        if let Recv::Msg(Message::PutReady { .. }) = r {
            raw.send(&Message::Done {
                size: 0,
                digest: *blake3::hash(b"").as_bytes(),
            })
            .unwrap();
            let _ = raw.recv();
        }
    }
    assert_eq!(snapshot(&out), before, "outside changed\n{}", server.logs());

    // Inside links work for reading and writing, through chains and dir links.
    for path in [
        "in_file",
        "in_dir/file",
        "in_chain/file",
        "real/deep/up_file",
        "in_chain/deep/up_file",
    ] {
        let r = ask(
            &server,
            &mut raw,
            &Message::Get {
                path: path.into(),
                offset: 0,
            },
        );
        assert!(
            matches!(r, Recv::Msg(Message::GetReady { size: 6, .. })),
            "get {path}: {r:?}"
        );
        raw.send(&Message::Cancel).unwrap();
        // Drain until the server settles (data, done, error).
        loop {
            match raw.recv() {
                Recv::Msg(Message::Data { .. }) => {}
                Recv::Timeout => break,
                Recv::Msg(Message::Done { size, .. }) => {
                    raw.send(&Message::Ack { offset: size }).unwrap();
                }
                Recv::Msg(Message::Error { .. }) => break,
                other => panic!("{path}: {other:?}"),
            }
            // The reply to Cancel may already be consumed: stop on a quiet socket.
            raw.stream
                .set_read_timeout(Some(std::time::Duration::from_millis(200)))
                .unwrap();
        }
        raw.stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
    }
    let r = ask(
        &server,
        &mut raw,
        &Message::Mkdir {
            path: "in_chain/made".into(),
        },
    );
    assert!(matches!(r, Recv::Msg(Message::Ok)), "{r:?}");
    assert!(root.join("real/made").is_dir());
    // rm and rename act on the link itself.
    let r = ask(
        &server,
        &mut raw,
        &Message::Rename {
            from: "in_dir".into(),
            to: "moved_link".into(),
        },
    );
    assert!(matches!(r, Recv::Msg(Message::Ok)), "{r:?}");
    assert!(fs::symlink_metadata(root.join("moved_link"))
        .unwrap()
        .is_symlink());
    for link in ["moved_link", "chain_out", "dotdot_out", "dangling"] {
        let r = ask(&server, &mut raw, &Message::Remove { path: link.into() });
        assert!(matches!(r, Recv::Msg(Message::Ok)), "rm {link}: {r:?}");
    }
    assert!(root.join("real/file").exists());
    assert_eq!(snapshot(&out), before);
    let _ = hello;
}
