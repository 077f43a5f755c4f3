//! Symlinks inside the root that lead out of it are refused for reading,
//! listing and writing through them; `rm` acts on the link itself.

use std::fs;
use std::os::unix::fs::symlink;

use crate::util::{names_in, raw_request, snapshot, Recv, Server};
use ftx::proto::message::Message;

/// Root holds keep.txt and links out to the sentinel `BASE/outside`.
fn setup(server: &Server) -> (std::path::PathBuf, std::path::PathBuf) {
    let root = server.root();
    let outside = server.scratch("outside");
    fs::write(outside.join("secret.txt"), "sentinel secret").unwrap();
    fs::create_dir(outside.join("deeper")).unwrap();
    fs::write(outside.join("deeper/more.txt"), "sentinel more").unwrap();
    fs::write(root.join("keep.txt"), "keep").unwrap();
    symlink(&outside, root.join("escape_dir")).unwrap();
    symlink(outside.join("secret.txt"), root.join("escape_file")).unwrap();
    symlink("../outside", root.join("rel_dir")).unwrap();
    symlink("escape_dir", root.join("hop")).unwrap();
    let client = server.scratch("client");
    fs::write(client.join("local.txt"), "local").unwrap();
    (outside, client)
}

#[test]
fn links_leading_out_are_refused() {
    let mut server = Server::start(&[]);
    let (outside, client) = setup(&server);
    let before = snapshot(&outside);
    let lines = [
        "-get escape_file got1.bin",
        "-get escape_dir/secret.txt got2.bin",
        "-get rel_dir/secret.txt got3.bin",
        "-get hop/secret.txt got4.bin",
        "-get escape_dir/deeper/more.txt got5.bin",
        "-ls escape_dir",
        "-ls rel_dir",
        "-ls hop/deeper",
        "-put local.txt escape_dir/new.txt",
        "-put local.txt rel_dir/deeper/new.txt",
        "-put -f local.txt escape_dir/secret.txt",
        "-mkdir escape_dir/newdir",
        "-rm escape_dir/secret.txt",
        "-rm rel_dir/deeper/more.txt",
        "-rename escape_dir/secret.txt stolen.txt",
        "-rename keep.txt escape_dir/moved.txt",
    ];
    let out = server.batch(&client, &(lines.join("\n") + "\n"));
    out.assert_success();
    assert_eq!(
        out.error_lines().len(),
        lines.len(),
        "every command through an escaping link should fail with one error line\n{out}"
    );
    for line in out.stdout.lines().filter(|l| !l.starts_with("ftx> ")) {
        assert!(
            !line.contains("secret.txt") && !line.contains("more.txt"),
            "a listing through an escaping link leaked {line:?}\n{out}"
        );
    }
    assert_eq!(
        snapshot(&outside),
        before,
        "the sentinel outside the root changed\n{out}"
    );
    assert_eq!(
        names_in(&client),
        ["local.txt"],
        "nothing may be downloaded\n{out}"
    );
    assert!(server.root().join("keep.txt").exists());
    assert!(!server.root().join("stolen.txt").exists());
    server.assert_alive();
}

#[test]
fn put_force_onto_an_escaping_link_never_writes_outside() {
    let server = Server::start(&[]);
    let (outside, client) = setup(&server);
    let before = snapshot(&outside);
    // Refusing, or replacing the link itself inside the root, are both fine;
    // writing through it is not.
    let out = server.batch(
        &client,
        "-put -f local.txt escape_file\n-put local.txt escape_file\n",
    );
    assert_eq!(snapshot(&outside), before, "wrote through the link\n{out}");
}

#[test]
fn rm_removes_the_link_not_its_target() {
    let server = Server::start(&[]);
    let (outside, client) = setup(&server);
    let before = snapshot(&outside);
    let out = server.batch(&client, "rm escape_file\nrm escape_dir\n");
    out.assert_success();
    assert!(
        fs::symlink_metadata(server.root().join("escape_file")).is_err(),
        "rm should remove the link\n{out}"
    );
    assert!(fs::symlink_metadata(server.root().join("escape_dir")).is_err());
    assert_eq!(snapshot(&outside), before, "rm followed the link\n{out}");
}

#[test]
fn raw_requests_through_escaping_links_get_errors() {
    let mut server = Server::start(&[]);
    let (outside, _client) = setup(&server);
    let before = snapshot(&outside);
    let requests = [
        Message::Get {
            path: "escape_file".into(),
            offset: 0,
        },
        Message::Get {
            path: "escape_dir/secret.txt".into(),
            offset: 0,
        },
        Message::List {
            path: "escape_dir".into(),
        },
        Message::Put {
            path: "escape_dir/new.txt".into(),
            size: 3,
            offset: 0,
            flags: 0,
        },
        Message::Mkdir {
            path: "rel_dir/x".into(),
        },
    ];
    for req in requests {
        let reply = raw_request(server.addr(), &req);
        assert!(
            matches!(reply, Recv::Msg(Message::Error { .. })),
            "{req:?} through an escaping link: expected an Error frame, got {reply:?}"
        );
    }
    server.assert_alive();
    assert_eq!(snapshot(&outside), before);
}
