//! Error messages that name the right thing, through the real binaries in
//! batch mode: a mistyped command gets the nearest one suggested, a local
//! directory given to `put` (or a remote one to `get`) without `-r` is
//! called a directory with `-r` suggested, a download into a local
//! directory that is not there says which directory is missing (and
//! creates none), and a refusal from the server names the file and the
//! cause once each (it once read `'secret': permission denied: 'secret':
//! permission denied`).

use std::fs;
use std::os::unix::fs::symlink;

use ftx::proto::error::ErrorCode;
use ftx::proto::message::{Message, FEATURE_ATTRS};

use crate::util::fake::FakeServer;
use crate::util::{names_in, run_batch, Server};

#[test]
fn a_mistyped_command_suggests_the_nearest() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let out = server.batch(&cwd, "-gte x\n-PUT x\n-lss\n-foo\n-4\nlpwd\n");
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [
            "error: unknown command 'gte' (did you mean 'get'?)",
            "error: unknown command 'PUT' (did you mean 'put'?)",
            "error: unknown command 'lss' (did you mean 'ls'?)",
            "error: unknown command 'foo' (try 'help')",
            "error: unknown command '4' (try 'help')",
        ],
        "{out}"
    );
}

#[test]
fn a_directory_without_r_says_so_both_ways() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::create_dir(cwd.join("ldir")).unwrap();
    fs::write(cwd.join("ldir/f"), b"f").unwrap();
    fs::create_dir(server.root().join("rdir")).unwrap();
    fs::write(server.root().join("rdir/g"), b"g").unwrap();
    let out = server.batch(
        &cwd,
        "-put ldir\n-put ldir rdir\n-get rdir\n-get rdir ldir\n",
    );
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [
            "error: put: 'ldir': is a directory (use put -r)",
            "error: put: 'ldir': is a directory (use put -r)",
            "error: get: 'rdir' is a directory on server (use get -r)",
            "error: get: 'rdir' is a directory on server (use get -r)",
        ],
        "{out}"
    );
    assert_eq!(names_in(server.root()), ["rdir"]);
    assert_eq!(names_in(&server.root().join("rdir")), ["g"]);
    assert_eq!(names_in(&cwd.join("ldir")), ["f"]);
}

/// A download into a local directory that is not there names that
/// directory, whatever the form of the command, and makes none of it
/// (`get -r dir a/b` once made `a` too).
#[test]
fn a_missing_local_directory_is_named() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(server.root().join("x"), b"x").unwrap();
    fs::create_dir(server.root().join("d")).unwrap();
    fs::write(server.root().join("d/y"), b"y").unwrap();
    fs::write(cwd.join("afile"), b"a").unwrap();
    let out = server.batch(
        &cwd,
        "-get x no/such/dir/\n\
         -get x no/such/dir/x\n\
         -get x no/x\n\
         -get x afile/x\n\
         -reget x no/x\n\
         -get -r d no/such/dir\n\
         -get -r d no/such/dir/\n\
         -get x* no/such\n\
         get x ok\n",
    );
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [
            "error: get: 'no/such/dir/': local directory not found",
            "error: get: 'no/such/dir/x': local directory 'no/such/dir' not found",
            "error: get: 'no/x': local directory 'no' not found",
            "error: get: 'afile/x': 'afile' is not a local directory",
            "error: reget: 'no/x': local directory 'no' not found",
            "error: get: 'no/such/dir': local directory 'no/such' not found",
            "error: get: 'no/such/dir/': local directory not found",
            "error: get: 'no/such': local directory not found",
        ],
        "{out}"
    );
    assert_eq!(names_in(&cwd), ["afile", "ok"]);
}

/// ftxd's own words for a link leading out: the name once, the cause once.
#[test]
fn a_refusal_names_the_file_once() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let outside = server.scratch("outside");
    fs::write(outside.join("secret"), b"s").unwrap();
    symlink(outside.join("secret"), server.root().join("escf")).unwrap();
    symlink(&outside, server.root().join("esc")).unwrap();
    let out = server.batch(&cwd, "-get escf\n-ls esc\n-get esc/*\n");
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [
            "error: get: 'escf': permission denied: symlink leads outside the root",
            "error: ls: 'esc': permission denied: symlink leads outside the root",
            "error: get: 'esc': permission denied: symlink leads outside the root",
        ],
        "{out}"
    );
    assert!(names_in(&cwd).is_empty());
}

/// The refusal as ftxd words a file it may not read (`'NAME': permission
/// denied`, which a test run as root cannot provoke from a real server),
/// for every request that names a path.
#[test]
fn permission_denied_is_said_once() {
    let fake = FakeServer::start(FEATURE_ATTRS, "fake", |msg| {
        let path = match msg {
            Message::Get { path, .. }
            | Message::List { path }
            | Message::Mkdir { path }
            | Message::Remove { path }
            | Message::SetAttrs { path, .. }
            | Message::Statfs { path } => path.clone(),
            Message::Rename { from, .. } => from.clone(),
            _ => return Vec::new(),
        };
        let shown = if path.is_empty() {
            "/".to_owned()
        } else {
            path
        };
        vec![Message::Error {
            code: ErrorCode::PermissionDenied,
            message: format!("'{shown}': permission denied"),
        }]
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run_batch(
        &fake.addr(),
        dir.path(),
        "-get secret\n-ls secret\n-ls\n-rm secret\n-mkdir d/\n-rename secret other\n\
         -chmod 600 secret\n-df secret\n-get secret/*\n",
    );
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [
            "error: get: 'secret': permission denied",
            "error: ls: 'secret': permission denied",
            "error: ls: permission denied",
            "error: rm: 'secret': permission denied",
            "error: mkdir: 'd/': permission denied",
            "error: rename: 'secret': permission denied",
            "error: chmod: 'secret': permission denied",
            "error: df: 'secret': permission denied",
            "error: get: 'secret': permission denied",
        ],
        "{out}"
    );
    assert!(names_in(dir.path()).is_empty());
}

/// A server's text never drives the terminal: its escapes reach the user
/// as visible `\x1b`, on a single-file line and on each line of a
/// many-file command alike.
#[test]
fn server_text_is_escaped_on_every_line() {
    let fake = FakeServer::start(FEATURE_ATTRS, "fake", |msg| match msg {
        Message::Get { .. } => vec![Message::Error {
            code: ErrorCode::Io,
            message: "disk \x1b]0;owned\x07 failed".into(),
        }],
        Message::List { .. } => vec![Message::Entries {
            entries: ["a", "b", "c", "one"]
                .into_iter()
                .map(|n| ftx::proto::message::Entry {
                    name: n.into(),
                    kind: ftx::proto::message::EntryKind::File,
                    size: 1,
                    mtime: 0,
                    mode: Some(0o644),
                })
                .collect(),
            last: true,
        }],
        _ => Vec::new(),
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run_batch(&fake.addr(), dir.path(), "-get one\n-get a b c\n");
    assert!(
        !out.stderr.contains('\x1b'),
        "a raw escape reached the terminal\n{out}"
    );
    let escaped = out
        .error_lines()
        .iter()
        .filter(|l| l.contains("\\x1b"))
        .count();
    assert_eq!(escaped, 4, "one line per failed file, each escaped\n{out}");
}
