//! Hostile remote names: every one is refused with "invalid name" for every
//! command, through `ftx -b` and through raw frames, and nothing outside the
//! root is ever read, written or created (a sentinel directory next to the
//! root is compared before and after). Typed into `ftx`, `..`, `.`, empty
//! components and a leading `/` are paths the shell resolves within the
//! root, as a chroot does (`/..` is `/`), before anything goes on the wire:
//! those are checked to stay inside; on the wire they are still refused.

use std::fs;
use std::path::Path;

use crate::util::{encode, names_in, raw_request, snapshot, snapshot_except, Raw, Recv, Server};
use ftx::proto::error::ErrorCode;
use ftx::proto::message::{Message, PUT_FORCE};

/// Lays out `BASE/root` (keep.txt, sub/inner.txt), `BASE/outside` (the
/// sentinel, with files) and `BASE/client` (local.txt).
fn setup(server: &Server) -> (std::path::PathBuf, std::path::PathBuf) {
    let root = server.root();
    fs::write(root.join("keep.txt"), "keep").unwrap();
    fs::create_dir(root.join("sub")).unwrap();
    fs::write(root.join("sub/inner.txt"), "inner").unwrap();
    let outside = server.scratch("outside");
    fs::write(outside.join("secret.txt"), "sentinel secret").unwrap();
    fs::write(outside.join("x"), "sentinel x").unwrap();
    fs::create_dir(outside.join("deeper")).unwrap();
    fs::write(outside.join("deeper/passwd"), "sentinel passwd").unwrap();
    let client = server.scratch("client");
    fs::write(client.join("local.txt"), "local").unwrap();
    (outside, client)
}

/// Paths a shell user can type that climb or start at `/`: `ftx` resolves
/// them within the root (`../x` at the top is `x`), so they are no longer
/// refused, and must never reach outside it.
fn typed_climbing_names(outside: &Path) -> Vec<String> {
    let mut v: Vec<String> = [
        "../x",
        "..",
        "../outside/secret.txt",
        "../outside",
        "../../../../../../../../etc/passwd",
        "/etc/passwd",
        "/x",
        "a/../../x",
        "sub/../../outside/secret.txt",
        "sub/..",
        "sub/../keep.txt",
        "./x",
        "sub/./inner.txt",
        "a//b",
        "sub//inner.txt",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    v.push(outside.join("secret.txt").display().to_string());
    v.push(outside.display().to_string());
    v
}

/// Names a shell user can type that must be refused with "invalid name".
fn typed_hostile_names() -> Vec<String> {
    let mut v: Vec<String> = [
        "a\\b",
        "..\\x",
        "..\\outside\\secret.txt",
        "ctl\u{1}x",
        "esc\u{1b}[2J",
        "tab\there",
        "del\u{7f}x",
        "c1\u{85}x",
        ".ftx-tmp-x",
        ".ftx-",
        "sub/.ftx-part-a",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    v.push("y".repeat(300));
    v.push(format!("sub/{}", "z".repeat(256)));
    // 4999 bytes of short components: only the total length is wrong.
    v.push(vec!["abcd"; 1000].join("/"));
    v
}

/// Everything the raw tests send: the typed names plus what no shell line
/// carries (NUL) and the forms a client might rewrite.
fn raw_hostile_names(outside: &Path) -> Vec<String> {
    let mut v = typed_hostile_names();
    v.extend(typed_climbing_names(outside));
    for s in [
        "a\0b",
        "\0",
        "keep.txt\0.jpg",
        "\0/../../etc/passwd",
        ".",
        "/",
        "//",
        "a/",
        "sub/",
        "sub/inner.txt/",
        "cr\rx",
        "nl\nx",
    ] {
        v.push(s.to_owned());
    }
    v
}

fn quote(name: &str) -> String {
    assert!(!name.contains('\''), "test names carry no single quote");
    format!("'{name}'")
}

#[test]
fn hostile_names_through_the_client_are_invalid() {
    let mut server = Server::start(&[]);
    let (outside, client) = setup(&server);
    let names = typed_hostile_names();
    assert!(names.len() >= 12);
    let outside_before = snapshot(&outside);
    let base_before = snapshot_except(server.base(), &["root", "client"]);
    let root_before = snapshot(server.root());

    let templates = [
        "put local.txt {}",
        "put -f local.txt {}",
        "get {} got.bin",
        "get -f {} got.bin",
        "ls {}",
        "mkdir {}",
        "rm {}",
        "rename keep.txt {}",
        "rename {} moved.txt",
    ];
    for template in templates {
        let lines: Vec<String> = names
            .iter()
            .map(|n| format!("-{}", template.replace("{}", &quote(n))))
            .collect();
        let out = server.batch(&client, &(lines.join("\n") + "\n"));
        out.assert_success();
        let errors = out.error_lines();
        assert_eq!(
            errors.len(),
            lines.len(),
            "{template:?}: every hostile name should give one error line\n{out}"
        );
        for (line, err) in lines.iter().zip(&errors) {
            assert!(
                err.contains("invalid name"),
                "{line:?} should fail with 'invalid name', got {err:?}\n{out}"
            );
        }
        server.assert_alive();
    }

    assert_eq!(
        snapshot(&outside),
        outside_before,
        "the sentinel outside the root changed"
    );
    assert_eq!(
        snapshot_except(server.base(), &["root", "client"]),
        base_before,
        "something was created next to the root"
    );
    assert_eq!(snapshot(server.root()), root_before, "the root changed");
    assert_eq!(
        names_in(&client),
        ["local.txt"],
        "the client created local files"
    );
}

#[test]
fn climbing_names_through_the_client_stay_inside_the_root() {
    let mut server = Server::start(&[]);
    let (outside, client) = setup(&server);
    let names = typed_climbing_names(&outside);
    let outside_before = snapshot(&outside);
    let base_before = snapshot_except(server.base(), &["root", "client"]);

    let templates = [
        "put local.txt {}",
        "put -f local.txt {}",
        "get {} got.bin",
        "get -f {} got.bin",
        "ls {}",
        "mkdir {}",
        "rm {}",
        "rename keep.txt {}",
        "rename {} moved.txt",
        "cd {}",
    ];
    for template in templates {
        let lines: Vec<String> = names
            .iter()
            .map(|n| format!("-{}", template.replace("{}", &quote(n))))
            .collect();
        let out = server.batch(&client, &(lines.join("\n") + "\n"));
        out.assert_success();
        for line in out.stderr.lines().chain(out.stdout.lines()) {
            for bad in ["protocol error", "connection lost", "invalid name"] {
                assert!(!line.contains(bad), "{template:?}: {line:?}\n{out}");
            }
        }
        assert_eq!(out.echoed(), lines, "{template:?}\n{out}");
    }
    server.assert_alive();
    assert_eq!(
        snapshot(&outside),
        outside_before,
        "the sentinel outside the root changed"
    );
    assert_eq!(
        snapshot_except(server.base(), &["root", "client"]),
        base_before,
        "something was created next to the root"
    );
    for name in names_in(&client) {
        assert!(
            name == "local.txt" || name.starts_with("got"),
            "the client created {name:?}"
        );
    }
}

/// The reply to one raw request must be `Error{InvalidName}`.
#[track_caller]
fn expect_invalid(what: &str, reply: Recv) {
    assert_eq!(
        reply.error_code(),
        Some(ErrorCode::InvalidName),
        "{what}: expected Error{{InvalidName}}, got {reply:?}"
    );
}

#[test]
fn hostile_names_in_raw_frames_are_invalid() {
    let mut server = Server::start(&[]);
    let (outside, _client) = setup(&server);
    let outside_before = snapshot(&outside);
    let base_before = snapshot_except(server.base(), &["root", "client"]);
    let root_before = snapshot(server.root());
    let addr = server.addr();

    for name in raw_hostile_names(&outside) {
        let p = name.clone();
        let requests = [
            Message::List { path: p.clone() },
            Message::Get {
                path: p.clone(),
                offset: 0,
            },
            Message::Put {
                path: p.clone(),
                size: 4,
                offset: 0,
                flags: 0,
            },
            Message::Put {
                path: p.clone(),
                size: 4,
                offset: 0,
                flags: PUT_FORCE,
            },
            Message::Mkdir { path: p.clone() },
            Message::Remove { path: p.clone() },
            Message::Rename {
                from: "keep.txt".into(),
                to: p.clone(),
            },
            Message::Rename {
                from: p.clone(),
                to: "moved.txt".into(),
            },
        ];
        for req in requests {
            let what = format!("{req:?}").chars().take(200).collect::<String>();
            expect_invalid(&what, raw_request(addr, &req));
        }
    }
    server.assert_alive();

    // One connection may carry many refused requests and still work.
    let mut raw = Raw::handshake(addr);
    for name in ["../x", "a\0b", "/etc/passwd"] {
        raw.send(&Message::Get {
            path: name.into(),
            offset: 0,
        })
        .unwrap();
        expect_invalid(name, raw.recv());
    }
    let listed = crate::util::raw_list(&mut raw, "");
    assert!(listed.contains(&"keep.txt".to_owned()), "{listed:?}");

    assert_eq!(
        snapshot(&outside),
        outside_before,
        "the sentinel outside the root changed"
    );
    assert_eq!(
        snapshot_except(server.base(), &["root", "client"]),
        base_before,
        "something was created next to the root"
    );
    assert_eq!(snapshot(server.root()), root_before, "the root changed");
}

#[test]
fn oversized_or_non_utf8_path_frames_are_refused() {
    let mut server = Server::start(&[]);
    let addr = server.addr();

    // Longer than any path the decoder accepts: a protocol error (or at
    // least an invalid name), never a crash.
    let huge = vec!["q"; 4600].join("/");
    let reply = raw_request(addr, &Message::List { path: huge });
    assert!(
        reply.is_close()
            || matches!(
                reply.error_code(),
                Some(ErrorCode::Protocol | ErrorCode::InvalidName)
            ),
        "9 KB path: expected Error{{Protocol|InvalidName}} or a close, got {reply:?}"
    );

    // Invalid UTF-8 in the path field.
    let mut bytes = encode(&Message::List { path: "abc".into() });
    let n = bytes.len();
    bytes[n - 3..].copy_from_slice(&[0xff, 0xfe, b'/']);
    let mut raw = Raw::handshake(addr);
    raw.send_raw(&bytes).unwrap();
    let reply = raw.recv();
    assert!(
        reply.is_close()
            || matches!(
                reply.error_code(),
                Some(ErrorCode::Protocol | ErrorCode::InvalidName)
            ),
        "non-UTF-8 path: expected Error{{Protocol|InvalidName}} or a close, got {reply:?}"
    );
    server.assert_alive();
    let mut ok = Raw::handshake(addr);
    crate::util::raw_list(&mut ok, "");
}
