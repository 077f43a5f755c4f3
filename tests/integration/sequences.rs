//! What comes AFTER a refusal. For each kind of refusal (invalid names, a
//! missing parent, not a directory, is a directory, not found, exists, not
//! empty, a symlink leading out, a read-only server, a read-only token, too
//! large) one batch, on ONE connection, has each command that can be
//! refused that way refused on a `-` line, runs two other commands after
//! each refusal, puts and gets a real file, and ends in a plain `ls`. It
//! must exit 0, print exactly one `error:` line per refusal with its cause
//! in plain words and nothing about a broken connection, and leave the
//! server root and the client directory exactly as expected. Every kind
//! runs against the default server (TLS and a token) and a `--plain --open`
//! one. A refused `reput` once left the server expecting data, so the next
//! request closed the connection ("unexpected frame type"): tests of one
//! command alone never saw it. The bug report itself, what a refused
//! `rename` blames, `put` to a name ending in `/` and the commands after an
//! idle timeout have tests of their own.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::util::{
    assert_file_bytes, assert_no_temp_files, ftx_access, ftx_bin, ftxd_bin, names_in, parse_ls,
    random_bytes, run_cmd, run_cmd_env, snapshot, Node, Output, Server, RUN_TIMEOUT,
};

/// Words no run may print: each means the connection broke or a request
/// met the leftovers of the one before. An empty quoted name (`''`) means
/// a message lost the name it was about.
const BROKEN: &[&str] = &[
    "protocol error",
    "connection lost",
    "unexpected frame",
    "another request is in progress",
    "''",
];

/// `file.txt` on the server: what every follow-up `get` fetches.
const FILE: &[u8] = b"file contents\n";
/// `full/inner.txt` on the server (so `full` is not empty).
const INNER: &[u8] = b"inner\n";
/// `outside/secret.txt`, next to the root: the target of the links out.
const SECRET: &[u8] = b"sentinel secret\n";
/// `ok.txt` in the client's directory (3 bytes: within `--max-file-size 10`).
const OK: &[u8] = b"ok\n";
/// `big.bin` in the client's directory: past the 4 MiB a fresh upload
/// sends before the server answers, so a refusal has data to drain.
const BIG: usize = 4 * 1024 * 1024 + 300 * 1024;

/// How the server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As `ftxd` starts by default: TLS and an access token.
    Tls,
    /// `--plain --open` (`--plain` alone where a token is the point).
    Plain,
}

/// Who may change what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Everything works but what the refusals are about.
    Full,
    /// `ftxd --read-only`.
    ReadOnlyServer,
    /// A token made by `ftxd token add NAME --read-only`.
    ReadOnlyToken,
}

/// One kind of refusal: the server it needs and the lines refused.
struct Kind {
    /// What is refused, for failure messages.
    what: &'static str,
    /// Extra `ftxd` flags.
    ftxd: &'static [&'static str],
    /// Who may change what.
    access: Access,
    /// Size of the real file put and got after the refusals.
    payload: usize,
    /// One refused command a line (see [`table`]).
    refusals: &'static str,
}

impl Kind {
    fn writable(&self) -> bool {
        self.access == Access::Full
    }
}

/// A refused line: the command (without its `-`), the name its `error:`
/// line must quote (`None`: only the cause is checked, for a `rename`
/// refused because of NEW; see [`a_refused_rename_quotes_the_name_at_fault`]),
/// and the cause in plain words.
type Refusal<'a> = (&'a str, Option<&'a str>, &'a str);

/// Parses `COMMAND | NAME | CAUSE` lines (`-` for no name; blank lines and
/// `#` comments skipped).
fn table(text: &str) -> Vec<Refusal<'_>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let cols: Vec<&str> = l.split(" | ").map(str::trim).collect();
            let [line, name, cause] = cols[..] else {
                panic!("refusal table line {l:?} is not 'COMMAND | NAME | CAUSE'");
            };
            (line, (name != "-").then_some(name), cause)
        })
        .collect()
}

const INVALID_NAMES: Kind = Kind {
    what: "invalid names",
    ftxd: &[],
    access: Access::Full,
    payload: 300 * 1024 + 1,
    // `..`, `.`, `//` and a leading `/` are no longer invalid here: the
    // shell resolves them within the root before they go on the wire
    // (tests/integration/nav.rs). What is left is refused by the server,
    // or by the shell in the server's words.
    refusals: r"
    reput ok.txt 'a\b'         | a\b         | invalid name
    reput big.bin .ftx-part-x  | .ftx-part-x | invalid name
    put ok.txt 'a\b'           | a\b         | invalid name
    put -f big.bin 'a\b'       | a\b         | invalid name
    put ok.txt 'dir/x\y'       | dir/x\y     | invalid name
    put ok.txt .ftx-part-x     | .ftx-part-x | invalid name
    get 'a\b'                  | a\b         | invalid name
    get -f .ftx-part-x         | .ftx-part-x | invalid name
    reget 'dir/a\b'            | dir/a\b     | invalid name
    mkdir 'a\b'                | a\b         | invalid name
    mkdir -p 'up/x\y/z'        | up/x\y/z    | invalid name
    rm 'a\b'                   | a\b         | invalid name
    rm .ftx-part-x             | .ftx-part-x | invalid name
    rmdir 'a\b'                | a\b         | invalid name
    rename 'a\b' y             | a\b         | invalid name
    rename file.txt 'a\b'      | -           | invalid name
    ls 'a\b'                   | a\b         | invalid name
    cd 'a\b'                   | a\b         | invalid name
",
};

const MISSING_PARENT: Kind = Kind {
    what: "a missing parent",
    ftxd: &[],
    access: Access::Full,
    payload: 300 * 1024 + 1,
    refusals: r"
    reput ok.txt nodir/x    | nodir/x | not found
    reput big.bin nodir/x   | nodir/x | not found
    put ok.txt nodir/x      | nodir/x | not found
    put -f big.bin nodir/x  | nodir/x | not found
    get nodir/x             | nodir/x | not found
    reget nodir/x           | nodir/x | not found
    mkdir nodir/x           | nodir/x | not found
    rmdir nodir/x           | nodir/x | not found
    cd nodir/x              | nodir/x | not found
    rm nodir/x              | nodir/x | not found
    rename nodir/x y        | nodir/x | not found
    rename file.txt nodir/x | -       | not found
    ls nodir/x              | nodir/x | not found
    # The local side: no directory to download into.
    get file.txt nodir/x    | nodir/x | not found
    reget file.txt nodir/x  | nodir/x | not found
",
};

const NOT_A_DIRECTORY: Kind = Kind {
    what: "not a directory",
    ftxd: &[],
    access: Access::Full,
    payload: 300 * 1024 + 1,
    refusals: r"
    reput ok.txt file.txt/y          | file.txt/y | not a directory
    put ok.txt file.txt/y            | file.txt/y | not a directory
    put -f big.bin file.txt/y        | file.txt/y | not a directory
    get file.txt/y                   | file.txt/y | not a directory
    reget file.txt/y                 | file.txt/y | not a directory
    mkdir file.txt/y                 | file.txt/y | not a directory
    rm file.txt/y                    | file.txt/y | not a directory
    rename file.txt/y z              | file.txt/y | not a directory
    rename full/inner.txt file.txt/y | -          | not a directory
    ls file.txt/                     | file.txt/  | not a directory
    ls file.txt/y                    | file.txt/y | not a directory
    cd file.txt                      | file.txt   | not a directory
    cd file.txt/y                    | file.txt/y | not a directory
    rmdir file.txt                   | file.txt   | not a directory
    mkdir -p file.txt/y              | file.txt/y | not a directory
",
};

const IS_A_DIRECTORY: Kind = Kind {
    what: "is a directory",
    ftxd: &[],
    access: Access::Full,
    payload: 300 * 1024 + 1,
    refusals: r"
    get dir             | dir         | is a directory
    get -f full         | full        | is a directory
    reget dir           | dir         | is a directory
    rm dir              | dir         | is a directory (use rmdir)
    rm full/            | full/       | is a directory (use rmdir)
    rm d*               | dir         | is a directory (use rmdir)
    # A directory as put's TARGET is no refusal: the upload goes into it
    # (tests/integration/targets.rs).
",
};

const NOT_FOUND: Kind = Kind {
    what: "not found",
    ftxd: &[],
    access: Access::Full,
    payload: 300 * 1024 + 1,
    refusals: r"
    get missing.txt             | missing.txt     | not found
    get -f missing.txt          | missing.txt     | not found
    get dir/missing.txt         | dir/missing.txt | not found
    reget missing.txt           | missing.txt     | not found
    rm missing.txt              | missing.txt     | not found
    rm dir/missing.txt          | dir/missing.txt | not found
    rmdir missing               | missing         | not found
    cd missing                  | missing         | not found
    rename missing.txt z.txt    | missing.txt     | not found
    ls missing                  | missing         | not found
    # The local side: nothing to upload.
    put missing.txt             | missing.txt     | not found
    put -f missing.txt file.txt | missing.txt     | not found
    reput missing.txt           | missing.txt     | not found
",
};

const EXISTS: Kind = Kind {
    what: "exists",
    ftxd: &[],
    access: Access::Full,
    payload: 300 * 1024 + 1,
    refusals: r"
    mkdir dir                      | dir            | already exists
    mkdir file.txt                 | file.txt       | already exists
    mkdir full/inner.txt           | full/inner.txt | already exists
    rename file.txt dir            | -              | already exists
    rename dir full                | -              | already exists
    rename full/inner.txt file.txt | -              | already exists
",
};

const NOT_EMPTY: Kind = Kind {
    what: "not empty",
    ftxd: &[],
    access: Access::Full,
    payload: 300 * 1024 + 1,
    refusals: r"
    rmdir full  | full  | not empty
    rmdir full/ | full/ | not empty
",
};

const LINK_OUT: Kind = Kind {
    what: "a symlink leading out of the root",
    ftxd: &[],
    access: Access::Full,
    payload: 300 * 1024 + 1,
    refusals: r"
    get escf                         | escf           | leads outside the root
    get esc/secret.txt               | esc/secret.txt | leads outside the root
    get rel/secret.txt               | rel/secret.txt | leads outside the root
    reget escf                       | escf           | leads outside the root
    ls esc                           | esc            | leads outside the root
    ls rel                           | rel            | leads outside the root
    cd esc                           | esc            | leads outside the root
    put ok.txt esc/new.txt           | esc/new.txt    | leads outside the root
    put -f big.bin esc/secret.txt    | esc/secret.txt | leads outside the root
    reput ok.txt esc/r.txt           | esc/r.txt      | leads outside the root
    mkdir esc/newdir                 | esc/newdir     | leads outside the root
    rm esc/secret.txt                | esc/secret.txt | leads outside the root
    rename esc/secret.txt stolen.txt | esc/secret.txt | leads outside the root
    rename file.txt esc/moved.txt    | esc            | leads outside the root
",
};

/// Every change a read-only server or token refuses.
const READ_ONLY_LINES: &str = r"
    put ok.txt              | ok.txt   | read-only
    put big.bin             | big.bin  | read-only
    put -f ok.txt file.txt  | file.txt | read-only
    put -f big.bin file.txt | file.txt | read-only
    reput ok.txt            | ok.txt   | read-only
    reput big.bin new.bin   | new.bin  | read-only
    mkdir d                 | d        | read-only
    mkdir -p d/e            | d/e      | read-only
    rm file.txt             | file.txt | read-only
    rmdir dir               | dir      | read-only
    rename file.txt g.txt   | file.txt | read-only
";

const READ_ONLY_SERVER: Kind = Kind {
    what: "a read-only server",
    ftxd: &["--read-only"],
    access: Access::ReadOnlyServer,
    payload: 300 * 1024 + 1,
    refusals: READ_ONLY_LINES,
};

const READ_ONLY_TOKEN: Kind = Kind {
    what: "a read-only token",
    ftxd: &[],
    access: Access::ReadOnlyToken,
    payload: 300 * 1024 + 1,
    refusals: READ_ONLY_LINES,
};

const TOO_LARGE: Kind = Kind {
    what: "too large",
    ftxd: &["--max-file-size", "10"],
    access: Access::Full,
    // Exactly the limit: accepted.
    payload: 10,
    refusals: r"
    put big.bin                | big.bin    | too large
    put eleven.bin             | eleven.bin | too large
    put -f big.bin file.txt    | file.txt   | too large
    put -f eleven.bin file.txt | file.txt   | too large
    put eleven.bin dir/e.bin   | dir/e.bin  | too large
    reput big.bin              | big.bin    | too large
    reput eleven.bin e.bin     | e.bin      | too large
",
};

/// Runs every kind against both servers, one test each.
macro_rules! every_kind {
    ($($test:ident: $kind:ident,)*) => {
        /// Against the default server: TLS and an access token.
        mod tls {
            $(
                #[test]
                fn $test() {
                    super::run_kind(&super::$kind, super::Mode::Tls);
                }
            )*
        }
        /// Against `ftxd --plain --open`.
        mod plain {
            $(
                #[test]
                fn $test() {
                    super::run_kind(&super::$kind, super::Mode::Plain);
                }
            )*
        }
    };
}

every_kind! {
    invalid_names: INVALID_NAMES,
    missing_parent: MISSING_PARENT,
    not_a_directory: NOT_A_DIRECTORY,
    is_a_directory: IS_A_DIRECTORY,
    not_found: NOT_FOUND,
    exists: EXISTS,
    not_empty: NOT_EMPTY,
    symlink_leading_out: LINK_OUT,
    read_only_server: READ_ONLY_SERVER,
    read_only_token: READ_ONLY_TOKEN,
    too_large: TOO_LARGE,
}

/// A command that must work right after a refusal.
#[derive(Debug, Clone, Copy)]
enum FollowUp {
    /// `get file.txt get_I.txt`.
    Get,
    /// `reget file.txt reget_I.txt` (nothing to resume: all of it).
    Reget,
    /// `put ok.txt up/put_I.txt`.
    Put,
    /// `reput ok.txt up/reput_I.txt` (nothing to resume: all of it).
    Reput,
    /// `mkdir up/dir_I`.
    Mkdir,
    /// `ls full`.
    Ls,
}

const FOLLOW_UPS_RW: &[FollowUp] = &[
    FollowUp::Get,
    FollowUp::Put,
    FollowUp::Reget,
    FollowUp::Reput,
    FollowUp::Mkdir,
    FollowUp::Ls,
];
const FOLLOW_UPS_RO: &[FollowUp] = &[FollowUp::Get, FollowUp::Ls, FollowUp::Reget];

/// The `-` line of `what` after refusal `i`, recording what it leaves on
/// the server (`root`) or in the client's directory (`client`).
fn follow_up(
    what: FollowUp,
    i: usize,
    root: &mut BTreeMap<PathBuf, Node>,
    client: &mut BTreeMap<PathBuf, Node>,
) -> String {
    let file = |tree: &mut BTreeMap<PathBuf, Node>, path: String, bytes: &[u8]| {
        tree.insert(PathBuf::from(&path), Node::File(bytes.to_vec()));
        path
    };
    match what {
        FollowUp::Get => format!(
            "-get file.txt {}",
            file(client, format!("get_{i}.txt"), FILE)
        ),
        FollowUp::Reget => format!(
            "-reget file.txt {}",
            file(client, format!("reget_{i}.txt"), FILE)
        ),
        FollowUp::Put => format!("-put ok.txt {}", file(root, format!("up/put_{i}.txt"), OK)),
        FollowUp::Reput => format!(
            "-reput ok.txt {}",
            file(root, format!("up/reput_{i}.txt"), OK)
        ),
        FollowUp::Mkdir => {
            root.insert(PathBuf::from(format!("up/dir_{i}")), Node::Dir);
            format!("-mkdir up/dir_{i}")
        }
        FollowUp::Ls => "-ls full".to_owned(),
    }
}

/// The server's fixture: `file.txt`, the empty `dir`, `full/inner.txt`,
/// `up/` for the follow-up uploads, links out (`esc`, `escf`, `rel`) to
/// `BASE/outside`, and (read-only) the payload to get.
fn fill_root(server: &Server, payload: Option<&[u8]>) -> PathBuf {
    let root = server.root();
    let outside = server.scratch("outside");
    fs::write(outside.join("secret.txt"), SECRET).unwrap();
    fs::write(root.join("file.txt"), FILE).unwrap();
    fs::create_dir(root.join("dir")).unwrap();
    fs::create_dir(root.join("full")).unwrap();
    fs::write(root.join("full/inner.txt"), INNER).unwrap();
    fs::create_dir(root.join("up")).unwrap();
    symlink(&outside, root.join("esc")).unwrap();
    symlink(outside.join("secret.txt"), root.join("escf")).unwrap();
    symlink("../outside", root.join("rel")).unwrap();
    if let Some(bytes) = payload {
        fs::write(root.join("payload.bin"), bytes).unwrap();
    }
    outside
}

/// The client's directory: `ok.txt`, `big.bin`, `eleven.bin`, `payload.bin`.
fn fill_client(server: &Server, payload: &[u8]) -> PathBuf {
    let cwd = server.scratch("client");
    fs::write(cwd.join("ok.txt"), OK).unwrap();
    fs::write(cwd.join("big.bin"), random_bytes(BIG, 7)).unwrap();
    fs::write(cwd.join("eleven.bin"), b"eleven byte").unwrap();
    fs::write(cwd.join("payload.bin"), payload).unwrap();
    cwd
}

/// `ftxd token add guest --read-only` for `server`: the new token.
fn read_only_token(server: &Server) -> String {
    let state = server.base().join("state");
    let out = run_cmd(
        ftxd_bin(),
        &[
            "token",
            "add",
            "guest",
            "--read-only",
            "--state-dir",
            state.to_str().unwrap(),
        ],
        server.base(),
        None,
        RUN_TIMEOUT,
    );
    out.assert_success();
    let token = out.stdout.trim().to_owned();
    assert!(token.starts_with("ftx_"), "no token printed\n{out}");
    token
}

/// `ftx ADDR -b -` from `cwd`, with `token` instead of the server's own.
fn batch_as(server: &Server, cwd: &Path, token: Option<&str>, script: &str) -> Output {
    let Some(token) = token else {
        return server.batch(cwd, script);
    };
    let addr = server.addr_arg();
    let (flags, _) = ftx_access(&addr);
    let mut args = vec![addr.as_str(), "-b", "-"];
    args.extend(flags.iter().map(String::as_str));
    run_cmd_env(
        ftx_bin(),
        &args,
        cwd,
        Some(script.as_bytes()),
        RUN_TIMEOUT,
        &[("FTX_TOKEN", token)],
        None,
    )
}

/// The non-hidden objects beneath `dir` (no component starts with `.`).
fn visible(dir: &Path) -> BTreeMap<PathBuf, Node> {
    snapshot(dir)
        .into_iter()
        .filter(|(p, _)| {
            !p.components()
                .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
        })
        .collect()
}

/// The `ls` lines expected for the top of `root`: `(size, name)`, `name/`
/// for a directory (size not checked: `None`), links and files as they are.
fn expected_listing(root: &BTreeMap<PathBuf, Node>) -> Vec<(Option<u64>, String)> {
    root.iter()
        .filter(|(p, _)| p.components().count() == 1)
        .map(|(p, node)| {
            let name = p.to_string_lossy().into_owned();
            match node {
                Node::Dir => (None, format!("{name}/")),
                Node::File(bytes) => (Some(bytes.len() as u64), name),
                _ => (None, name),
            }
        })
        .collect()
}

/// Panics if a run printed anything that means a broken connection.
#[track_caller]
fn assert_not_broken(out: &Output) {
    for line in out.stderr.lines().chain(out.stdout.lines()) {
        for bad in BROKEN {
            assert!(
                !line.to_lowercase().contains(bad),
                "a line says {bad:?}: {line:?}\n{out}"
            );
        }
    }
}

/// Panics unless the `error:` lines are exactly one per refusal, in order,
/// each about its command, quoting its name and saying its cause.
#[track_caller]
fn assert_refusals(out: &Output, refusals: &[Refusal<'_>]) {
    let errors = out.error_lines();
    assert_eq!(
        errors.len(),
        refusals.len(),
        "expected exactly one 'error:' line per refused line ({}), and none for the \
         commands that should have worked\n{out}",
        refusals.len()
    );
    for (line, (refused, name, cause)) in errors.iter().zip(refusals) {
        let cmd = refused.split_whitespace().next().unwrap_or("");
        let low = line.to_lowercase();
        assert!(
            line.starts_with(&format!("error: {cmd}: ")),
            "the error for {refused:?} should start with 'error: {cmd}: ', got {line:?}\n{out}"
        );
        assert!(
            low.contains(cause),
            "the error for {refused:?} should say {cause:?}, got {line:?}\n{out}"
        );
        if let Some(name) = name {
            assert!(
                line.contains(&format!("'{name}'")),
                "the error for {refused:?} should quote '{name}', got {line:?}\n{out}"
            );
        }
    }
}

/// One kind of refusal on one server: the whole sequence and every check.
fn run_kind(kind: &Kind, mode: Mode) {
    let mut args: Vec<&str> = kind.ftxd.to_vec();
    if mode == Mode::Plain {
        args.push("--plain");
        // A read-only token needs tokens: there `--plain` alone.
        if kind.access != Access::ReadOnlyToken {
            args.push("--open");
        }
    }
    let mut server = Server::start(&args);
    let payload = random_bytes(kind.payload, kind.payload as u64);
    let writable = kind.writable();
    let outside = fill_root(&server, (!writable).then_some(&payload[..]));
    let cwd = fill_client(&server, &payload);
    let token = (kind.access == Access::ReadOnlyToken).then(|| read_only_token(&server));
    let outside_before = snapshot(&outside);
    let mut root_after = visible(server.root());
    let mut client_after = visible(&cwd);

    // After each refusal two commands that must work, taken in turn from
    // the follow-ups, so each kind of request comes right after a refusal.
    let mut lines: Vec<String> = Vec::new();
    let refusals = table(kind.refusals);
    let follow_ups = if writable {
        FOLLOW_UPS_RW
    } else {
        FOLLOW_UPS_RO
    };
    for (i, (refused, _, _)) in refusals.iter().enumerate() {
        lines.push(format!("-{refused}"));
        for which in [i, i + 1] {
            lines.push(follow_up(
                follow_ups[which % follow_ups.len()],
                i,
                &mut root_after,
                &mut client_after,
            ));
        }
    }
    if writable {
        lines.push("put payload.bin".to_owned());
        root_after.insert(PathBuf::from("payload.bin"), Node::File(payload.clone()));
    }
    lines.push("get payload.bin payload.back".to_owned());
    client_after.insert(PathBuf::from("payload.back"), Node::File(payload.clone()));
    lines.push("ls".to_owned());
    let script = lines.join("\n") + "\n";

    let out = batch_as(&server, &cwd, token.as_deref(), &script);
    let what = kind.what;
    assert_not_broken(&out);
    assert!(
        out.success(),
        "{what} ({mode:?}): the batch should exit 0\n{out}"
    );
    assert_eq!(
        out.echoed(),
        lines,
        "{what} ({mode:?}): every line should have run, in order\n{out}"
    );
    assert_eq!(
        out.stdout.matches("Connected to server").count(),
        1,
        "{what} ({mode:?}): one connection\n{out}"
    );
    assert_refusals(&out, &refusals);

    // The final `ls` lists the root as it is now.
    let listed = parse_ls(&out.section("ls"));
    let want = expected_listing(&root_after);
    assert_eq!(
        listed.len(),
        want.len(),
        "{what} ({mode:?}): the final ls should list {want:?}\n{out}"
    );
    for ((size, name), (want_size, want_name)) in listed.iter().zip(&want) {
        assert_eq!(name, want_name, "{what} ({mode:?}): final ls\n{out}");
        if let Some(s) = want_size {
            assert_eq!(size, s, "{what} ({mode:?}): size of {name} in ls\n{out}");
        }
    }

    // Both sides hold exactly what they should, byte for byte.
    assert_eq!(
        visible(server.root()),
        root_after,
        "{what} ({mode:?}): the server root\n{out}"
    );
    assert_no_temp_files(server.root());
    assert_file_bytes(&server.root().join("payload.bin"), &payload);
    assert_eq!(
        visible(&cwd),
        client_after,
        "{what} ({mode:?}): the client's directory (names: {:?})\n{out}",
        names_in(&cwd)
    );
    assert_no_temp_files(&cwd);
    assert_file_bytes(&cwd.join("payload.back"), &payload);
    assert_eq!(
        snapshot(&outside),
        outside_before,
        "{what} ({mode:?}): the sentinel outside the root changed\n{out}"
    );

    // The server saw one connection, which the client closed.
    server.assert_alive();
    let logs = server.wait_for_log("connection closed");
    assert_eq!(
        logs.matches("connection opened").count(),
        1,
        "{what} ({mode:?}): one connection\n{logs}\n{out}"
    );
    assert!(
        logs.contains("connection closed (closed by the client)"),
        "{what} ({mode:?}): the client should have closed the connection\n{logs}\n{out}"
    );
}

/// The bug report: `-reput ok.txt ../x`, then `ls`. (`../x` is now
/// resolved within the root, so a name the server refuses stands in.)
#[test]
fn a_refused_reput_then_ls_as_reported() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("ok.txt"), OK).unwrap();
    fs::write(server.root().join("there.txt"), FILE).unwrap();
    fs::create_dir(server.root().join("sub")).unwrap();
    let out = server.batch(&cwd, "-reput ok.txt 'a\\b'\nls\n");
    assert_not_broken(&out);
    out.assert_success();
    assert_refusals(
        &out,
        &[(r"reput ok.txt 'a\b'", Some(r"a\b"), "invalid name")],
    );
    let listed: Vec<String> = parse_ls(&out.section("ls"))
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    assert_eq!(
        listed,
        ["sub/", "there.txt"],
        "ls should list the root\n{out}"
    );
}

/// `rename OLD NEW` refused because of NEW alone: the error must quote NEW,
/// as `put` and `mkdir` quote the name at fault, instead of saying OLD,
/// which is there and valid, is not found, exists or is invalid.
#[test]
fn a_refused_rename_quotes_the_name_at_fault() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(server.root().join("file.txt"), FILE).unwrap();
    fs::create_dir(server.root().join("dir")).unwrap();
    let before = snapshot(server.root());
    let refusals = [
        ("rename file.txt nodir/x", Some("nodir/x"), "not found"),
        ("rename file.txt dir", Some("dir"), "already exists"),
        (r"rename file.txt 'a\b'", Some(r"a\b"), "invalid name"),
    ];
    let script: String = refusals
        .iter()
        .map(|(line, _, _)| format!("-{line}\n"))
        .chain(["ls\n".to_owned()])
        .collect();
    let out = server.batch(&cwd, &script);
    assert_not_broken(&out);
    out.assert_success();
    assert_eq!(snapshot(server.root()), before, "{out}");
    assert_refusals(&out, &refusals);
}

/// README, "Where things go": TARGET is a directory to put into when it
/// ends in `/`. So `put ok.txt nodir/` is refused (there is no `nodir`)
/// instead of storing a file called `nodir`, and `put ok.txt dir/` stores
/// `dir/ok.txt`, not `dir_1` beside it (`get file.txt nodir/` already
/// treats its target so).
#[test]
fn put_to_a_target_ending_in_slash_goes_into_that_directory() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("ok.txt"), OK).unwrap();
    fs::create_dir(server.root().join("dir")).unwrap();
    let out = server.batch(&cwd, "-put ok.txt nodir/\nput ok.txt dir/\nls\n");
    assert_not_broken(&out);
    let root: BTreeMap<PathBuf, Node> = [
        (PathBuf::from("dir"), Node::Dir),
        (PathBuf::from("dir/ok.txt"), Node::File(OK.into())),
    ]
    .into_iter()
    .collect();
    assert_eq!(visible(server.root()), root, "{out}");
    out.assert_success();
    assert_refusals(&out, &[("put ok.txt nodir/", None, "not found")]);
}

/// After the server closed an idle connection, later commands fail (or
/// reconnect), at most one `error:` line each, and none claims "another
/// request is in progress": there is none, and nothing the user can do
/// about it.
#[test]
fn after_an_idle_timeout_no_command_claims_a_request_in_progress() {
    let server = Server::start(&["--idle-timeout", "1"]);
    let cwd = server.scratch("client");
    fs::write(cwd.join("ok.txt"), OK).unwrap();
    fs::write(server.root().join("file.txt"), FILE).unwrap();
    // `sh` feeds the batch: `ls`, a pause past the idle timeout, the rest.
    let addr = server.addr_arg();
    let (flags, envs) = ftx_access(&addr);
    let feed = "(printf 'ls\\n'; sleep 2; \
                printf -- '-get file.txt got.txt\\n-put ok.txt\\n-ls\\nls\\n') | \"$0\" \"$@\"";
    let mut args = vec!["-c", feed, ftx_bin(), addr.as_str(), "-b", "-"];
    args.extend(flags.iter().map(String::as_str));
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = run_cmd_env("sh", &args, &cwd, None, RUN_TIMEOUT, &envs, None);
    assert_eq!(
        out.echoed(),
        ["ls", "-get file.txt got.txt", "-put ok.txt", "-ls", "ls"],
        "{out}"
    );
    let errors = out.error_lines();
    assert!(
        errors.len() <= 4,
        "at most one error line per command after the pause\n{out}"
    );
    // The first command after the pause found the connection closed and
    // connected again, saying why it had to.
    assert!(
        out.stderr.contains("Reconnected to server at") && out.stderr.contains("timed out"),
        "{out}"
    );
    for line in &errors {
        assert!(
            !line.contains("another request is in progress"),
            "{line:?} after the server closed the connection\n{out}"
        );
    }
}
