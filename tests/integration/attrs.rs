//! Attributes through the real binaries in batch mode, as an sftp user
//! types them: `chmod MODE PATH...` (octal, patterns, several names, no
//! setuid/setgid/sticky bits), `df [-h] [PATH]` laid out as sftp's, and
//! `put -p`/`get -p` (with `-r` on trees) keeping modification times and
//! permission bits, each checked on the files themselves. A server without
//! the attributes feature (an older ftxd, played by a scripted server) is
//! told nothing it does not know: each of these fails at once with "not
//! supported by this server" and the connection goes on.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use ftx::proto::message::{Entry, EntryKind, Message};

use crate::util::fake::FakeServer;
use crate::util::{run_batch, Server};

/// The permission bits of `path` (following links).
fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn chmod_sets_modes_of_names_and_matches() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let root = server.root();
    for name in ["a.sh", "b.sh", "notes.txt", "d/inner.txt"] {
        fs::create_dir_all(root.join(name).parent().unwrap()).unwrap();
        fs::write(root.join(name), name).unwrap();
        set_mode(&root.join(name), 0o644);
    }
    symlink("notes.txt", root.join("link")).unwrap();
    let out = server.batch(
        &cwd,
        "chmod 755 *.sh\n\
         chmod 0600 notes.txt d/inner.txt\n\
         chmod 700 d/\n\
         chmod 640 link\n\
         -chmod 4755 a.sh\n\
         -chmod 1777 d\n\
         -chmod u+x a.sh\n\
         -chmod 600 missing\n\
         -chmod 600 a.sh missing b.sh\n\
         -chmod 600 *.none\n\
         ls\n",
    );
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [
            "error: chmod: invalid mode '4755': setuid, setgid and sticky bits cannot be set",
            "error: chmod: invalid mode '1777': setuid, setgid and sticky bits cannot be set",
            "error: chmod: invalid mode 'u+x': not an octal mode such as 644 or 0755",
            "error: chmod: 'missing' not found on server",
            "error: chmod: 'missing' not found on server",
            "error: chmod: 1 of 3 files failed",
            "error: chmod: '*.none': no match on server",
        ],
        "{out}"
    );
    // Silent on success, as mkdir and rm.
    assert!(out.section("chmod 755 *.sh").is_empty(), "{out}");
    // The refused modes changed nothing; the last good chmod did.
    assert_eq!(mode(&root.join("a.sh")), 0o600);
    assert_eq!(mode(&root.join("b.sh")), 0o600);
    assert_eq!(mode(&root.join("notes.txt")), 0o640, "through the link");
    assert_eq!(mode(&root.join("d/inner.txt")), 0o600);
    assert_eq!(mode(&root.join("d")), 0o700);
    assert!(fs::symlink_metadata(root.join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
}

/// A link leading out of the root is refused, and what it points at keeps
/// its mode.
#[test]
fn chmod_never_reaches_outside_the_root() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let outside = server.scratch("outside");
    fs::write(outside.join("secret"), b"s").unwrap();
    set_mode(&outside.join("secret"), 0o600);
    symlink(outside.join("secret"), server.root().join("esc")).unwrap();
    let out = server.batch(&cwd, "chmod 666 esc\n");
    out.assert_error("chmod: 'esc': permission denied: symlink leads outside the root");
    assert_eq!(mode(&outside.join("secret")), 0o600);
}

/// `statvfs` of `path`: (size, available to a user) in bytes.
fn statvfs(path: &Path) -> (u64, u64) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a plain struct the kernel fills in; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    let frsize = st.f_frsize as u64;
    (st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize)
}

#[test]
fn df_shows_the_served_file_system() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::create_dir(server.root().join("sub")).unwrap();
    let out = server.batch(&cwd, "df\ndf -h\ndf sub/\ndf .\n-df missing\n");
    assert_eq!(
        out.error_lines(),
        ["error: df: 'missing' not found on server"],
        "{out}"
    );
    let (total, _) = statvfs(server.root());
    for line in ["df", "df sub/", "df ."] {
        let shown = out.section(line);
        assert_eq!(
            shown.first().copied(),
            Some("        Size         Used        Avail    %Capacity"),
            "{line}\n{out}"
        );
        let row: Vec<&str> = shown[1].split_whitespace().collect();
        assert_eq!(row.len(), 4, "{line}\n{out}");
        let n = |i: usize| row[i].parse::<u64>().unwrap();
        assert_eq!(n(0), total / 1024, "size in KiB\n{out}");
        assert_eq!(n(1) + n(2), n(0), "used + avail = size\n{out}");
        let pct: u64 = row[3].trim_end_matches('%').parse().unwrap();
        assert_eq!(pct, n(1) * 100 / n(0), "{out}");
        assert_eq!(shown.len(), 2, "{out}");
    }
    let human = out.section("df -h");
    assert_eq!(human[0], "    Size     Used    Avail    %Capacity", "{out}");
    let row: Vec<&str> = human[1].split_whitespace().collect();
    assert_eq!(row.len(), 4, "{out}");
    for size in &row[..3] {
        assert!(
            size.ends_with(|c: char| "BKMGTPE".contains(c)),
            "{size:?} is no human size\n{out}"
        );
    }
}

/// An older ftxd has no attributes: chmod, df and -p fail at once without
/// asking it, and the session goes on.
#[test]
fn an_older_server_is_asked_nothing_it_does_not_know() {
    let fake = FakeServer::start(0, "ftxd 0.0.9", |msg| match msg {
        Message::List { .. } => vec![Message::Entries {
            entries: vec![Entry {
                name: "f".into(),
                kind: EntryKind::File,
                size: 1,
                mtime: 0,
                mode: None,
            }],
            last: true,
        }],
        _ => Vec::new(),
    });
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("x"), b"x").unwrap();
    let out = run_batch(
        &fake.addr(),
        dir.path(),
        "-chmod 644 f\n-chmod 644 *\n-df\n-df -h f\n-put -p x\n-get -p f\n-get -rp f\nls\n",
    );
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [
            "error: chmod: not supported by this server",
            "error: chmod: not supported by this server",
            "error: df: not supported by this server",
            "error: df: not supported by this server",
            "error: put: -p: not supported by this server",
            "error: get: -p: not supported by this server",
            "error: get: -p: not supported by this server",
        ],
        "{out}"
    );
    assert_eq!(out.section("ls"), ["           1 f"], "{out}");
    let sent = fake.received();
    assert_eq!(
        sent,
        [Message::List {
            path: String::new()
        }],
        "{sent:?}"
    );
}

/// Sets the modification time of `path` (a file or a directory) and its mode.
fn stamp(path: &Path, mtime: i64, mode_bits: u32) {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime as u64);
    fs::File::open(path).unwrap().set_modified(when).unwrap();
    set_mode(path, mode_bits);
}

/// `(mode, mtime)` of `path`.
fn attrs_of(path: &Path) -> (u32, i64) {
    let m = fs::metadata(path).unwrap();
    (m.mode() & 0o7777, m.mtime())
}

/// Whether `path` was modified in the last hour (not given an old time).
fn is_recent(path: &Path) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now - fs::metadata(path).unwrap().mtime()).abs() < 3600
}

/// A small tree with old times and unusual modes: `tree/` (0750),
/// `tree/f` (0640), `tree/sub/` (0700), `tree/sub/x.sh` (0755),
/// `tree/sub/ro` (0444).
fn make_tree(base: &Path) {
    let t = base.join("tree");
    fs::create_dir_all(t.join("sub")).unwrap();
    fs::write(t.join("f"), b"f").unwrap();
    fs::write(t.join("sub/x.sh"), b"#!/bin/sh\n").unwrap();
    fs::write(t.join("sub/ro"), b"ro").unwrap();
    stamp(&t.join("f"), 1_100_000_000, 0o640);
    stamp(&t.join("sub/x.sh"), 1_200_000_000, 0o755);
    stamp(&t.join("sub/ro"), 1_300_000_000, 0o444);
    stamp(&t.join("sub"), 1_400_000_000, 0o700);
    stamp(&t, 1_500_000_000, 0o750);
}

fn assert_tree_kept(base: &Path) {
    let t = base.join("tree");
    assert_eq!(attrs_of(&t.join("f")), (0o640, 1_100_000_000));
    assert_eq!(attrs_of(&t.join("sub/x.sh")), (0o755, 1_200_000_000));
    assert_eq!(attrs_of(&t.join("sub/ro")), (0o444, 1_300_000_000));
    assert_eq!(attrs_of(&t.join("sub")), (0o700, 1_400_000_000));
    assert_eq!(attrs_of(&t), (0o750, 1_500_000_000));
}

#[test]
fn put_p_keeps_times_and_modes() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let root = server.root();
    fs::write(cwd.join("a.txt"), b"a").unwrap();
    stamp(&cwd.join("a.txt"), 1_000_000_000, 0o640);
    fs::write(cwd.join("b.sh"), b"b").unwrap();
    stamp(&cwd.join("b.sh"), 1_000_000_001, 0o4755);
    make_tree(&cwd);
    let out = server.batch(
        &cwd,
        "put -p a.txt\n\
         put -p a.txt\n\
         put a.txt plain.txt\n\
         mkdir up\n\
         put -p *.sh up\n\
         put -rp tree\n\
         put -Rp tree copy\n",
    );
    out.assert_success();
    assert!(out.error_lines().is_empty(), "{out}");
    assert_eq!(attrs_of(&root.join("a.txt")), (0o640, 1_000_000_000));
    // The clash rule's name is the one given the attributes.
    assert_eq!(attrs_of(&root.join("a_1.txt")), (0o640, 1_000_000_000));
    assert!(is_recent(&root.join("plain.txt")), "no -p: a new time");
    // Only the permission bits: never setuid on the server.
    assert_eq!(attrs_of(&root.join("up/b.sh")), (0o755, 1_000_000_001));
    assert_tree_kept(root);
    fs::rename(root.join("copy"), root.join("again")).unwrap();
    fs::create_dir(root.join("x")).unwrap();
    fs::rename(root.join("again"), root.join("x/tree")).unwrap();
    assert_tree_kept(&root.join("x"));
}

#[test]
fn get_p_keeps_times_and_modes() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let root = server.root();
    fs::write(root.join("a.txt"), b"a").unwrap();
    stamp(&root.join("a.txt"), 1_000_000_000, 0o604);
    fs::write(root.join("b.txt"), b"b").unwrap();
    stamp(&root.join("b.txt"), 1_000_000_002, 0o4750);
    make_tree(root);
    fs::create_dir(cwd.join("into")).unwrap();
    let out = server.batch(
        &cwd,
        "get -p a.txt\n\
         get -p a.txt same.txt\n\
         get a.txt plain.txt\n\
         get -p *.txt into\n\
         get -rp tree\n\
         get -pR tree copy\n",
    );
    out.assert_success();
    assert!(out.error_lines().is_empty(), "{out}");
    assert_eq!(attrs_of(&cwd.join("a.txt")), (0o604, 1_000_000_000));
    assert_eq!(attrs_of(&cwd.join("same.txt")), (0o604, 1_000_000_000));
    assert!(is_recent(&cwd.join("plain.txt")), "no -p: a new time");
    assert_eq!(attrs_of(&cwd.join("into/a.txt")), (0o604, 1_000_000_000));
    // Only the permission bits: never setuid from a server.
    assert_eq!(attrs_of(&cwd.join("into/b.txt")), (0o750, 1_000_000_002));
    assert_tree_kept(&cwd);
    fs::create_dir(cwd.join("x")).unwrap();
    fs::rename(cwd.join("copy"), cwd.join("x/tree")).unwrap();
    assert_tree_kept(&cwd.join("x"));
}

/// When the mode cannot be learnt (the directory may not be listed, or
/// the listing has none), `get -p` still keeps the time, keeps the file,
/// and says which part was not kept.
#[test]
fn get_p_says_when_the_mode_is_not_kept() {
    const DATA: &[u8] = b"readable in an unlistable directory\n";
    let fake = FakeServer::start(ftx::proto::message::FEATURE_ATTRS, "fake", |msg| {
        match msg {
            Message::Get { .. } => vec![
                Message::GetReady {
                    size: DATA.len() as u64,
                    offset: 0,
                    mtime: 1_234_567_890,
                    digest: [0; 32],
                },
                Message::Data {
                    offset: 0,
                    data: DATA.to_vec(),
                },
                Message::Done {
                    size: DATA.len() as u64,
                    digest: *blake3::hash(DATA).as_bytes(),
                },
            ],
            Message::List { path } if path == "d" => vec![Message::Error {
                code: ftx::proto::error::ErrorCode::PermissionDenied,
                message: "'d': permission denied".into(),
            }],
            // Listed without modes.
            Message::List { .. } => vec![Message::Entries {
                entries: vec![Entry {
                    name: "top".into(),
                    kind: EntryKind::File,
                    size: DATA.len() as u64,
                    mtime: 1_234_567_890,
                    mode: None,
                }],
                last: true,
            }],
            _ => Vec::new(),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run_batch(&fake.addr(), dir.path(), "-get -p d/f\n-get -p top\n");
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [
            "error: get: 'f': mode not kept: 'd': permission denied",
            "error: get: 'top': mode not kept: the server listed no mode",
        ],
        "{out}"
    );
    for name in ["f", "top"] {
        let path = dir.path().join(name);
        assert_eq!(fs::read(&path).unwrap(), DATA);
        assert_eq!(
            fs::metadata(&path).unwrap().mtime(),
            1_234_567_890,
            "{name}"
        );
    }
}

/// A server that takes the upload but refuses its attributes: the file
/// is uploaded (and said so), and the failure names what was not kept.
#[test]
fn put_p_says_when_the_server_keeps_nothing() {
    let fake = FakeServer::start(
        ftx::proto::message::FEATURE_ATTRS,
        "fake",
        |msg| match msg {
            Message::Put { path, .. } => vec![Message::PutReady {
                name: path.clone(),
                offset: 0,
                digest: [0; 32],
                partial: 0,
                flags: 0,
            }],
            Message::Data { offset, data } => vec![Message::Ack {
                offset: offset + data.len() as u64,
            }],
            Message::Done { size, .. } => vec![Message::PutDone {
                name: "x_1.txt".into(),
                size: *size,
            }],
            Message::SetAttrs { path, .. } => vec![Message::Error {
                code: ftx::proto::error::ErrorCode::PermissionDenied,
                message: format!("'{path}': permission denied"),
            }],
            _ => Vec::new(),
        },
    );
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("x.txt"), b"x").unwrap();
    let out = run_batch(&fake.addr(), dir.path(), "-put -p x.txt\n");
    out.assert_success();
    out.assert_stdout_contains("uploaded 'x.txt' as 'x_1.txt'");
    assert_eq!(
        out.error_lines(),
        ["error: put: 'x_1.txt': time and mode not kept: permission denied"],
        "{out}"
    );
    let modes: Vec<_> = fake
        .received()
        .into_iter()
        .filter_map(|m| match m {
            Message::SetAttrs {
                path, flags, mode, ..
            } => Some((path, flags, mode)),
            _ => None,
        })
        .collect();
    let want_mode = (fs::metadata(dir.path().join("x.txt")).unwrap().mode() & 0o777) as u16;
    let both = ftx::proto::message::ATTR_MODE | ftx::proto::message::ATTR_MTIME;
    assert_eq!(modes, [("x_1.txt".to_owned(), both, want_mode)], "{out}");
}
