//! The local side and the small commands an sftp user reaches for,
//! through the real binaries: `version`, `!COMMAND` and `!` alone (in a
//! real terminal too, where Ctrl-C belongs to the command and never ends
//! ftx), `lmkdir`, `lls -l`/`-a`/PATH (printed as `ls` prints the
//! server's), a bare `lcd` going home, and `~`/`~/...` as the home
//! directory in every local path (put sources and patterns, get targets,
//! reput, reget, lcd, lls, lmkdir). Each run gets its own `HOME`.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::util::fake::FakeServer;
use crate::util::pty::Pty;
use crate::util::{ftx_access, ftx_bin, run_cmd_env, Output, Server, RUN_TIMEOUT};

/// `ftx ADDR -b -` from `cwd` with `script` on stdin, `HOME` at `home`
/// and `SHELL=/bin/sh`.
fn batch_at_home(addr: &str, cwd: &Path, home: &Path, script: &str) -> Output {
    let (extra, envs) = ftx_access(addr);
    let mut args = vec![addr, "-b", "-"];
    args.extend(extra.iter().map(String::as_str));
    let mut envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    envs.push(("SHELL", "/bin/sh"));
    run_cmd_env(
        ftx_bin(),
        &args,
        cwd,
        Some(script.as_bytes()),
        RUN_TIMEOUT,
        &envs,
        Some(home),
    )
}

#[test]
fn version_shows_both_ends() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let out = server.batch(&cwd, "version\n");
    out.assert_success();
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(
        out.section("version"),
        [
            format!("ftx {v}"),
            format!("server: ftxd {v}"),
            "protocol version 2".to_owned()
        ],
        "{out}"
    );
    // A server's name is shown as it announced it, made harmless.
    let fake = FakeServer::start(0, "evil\x1b[2J 9.9", |_| Vec::new());
    let dir = tempfile::tempdir().unwrap();
    let out = crate::util::run_batch(&fake.addr(), dir.path(), "version\n");
    out.assert_success();
    assert_eq!(
        out.section("version")[1],
        "server: evil\\x1b[2J 9.9",
        "{out}"
    );
    assert!(
        fake.received().is_empty(),
        "version asks the server nothing"
    );
}

#[test]
fn bang_runs_a_local_command() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    fs::create_dir(home.join("sub")).unwrap();
    let out = batch_at_home(
        &server.addr_arg(),
        &cwd,
        &home,
        "!echo one   'two  three'\n\
         !echo $((6*7)) > made.txt\n\
         ! echo spaced\n\
         !cat\n\
         -!exit 3\n\
         -!kill -9 $$\n\
         lcd ~/sub\n\
         !pwd\n\
         help !\n\
         !false\n\
         lpwd\n",
    );
    out.assert_failure();
    assert_eq!(out.section("!echo one   'two  three'"), ["one two  three"]);
    assert_eq!(fs::read_to_string(cwd.join("made.txt")).unwrap(), "42\n");
    assert_eq!(out.section("! echo spaced"), ["spaced"]);
    // The commands come from stdin: cat reads nothing of them.
    assert!(out.section("!cat").is_empty(), "{out}");
    assert_eq!(
        out.section("!pwd"),
        [home.join("sub").to_string_lossy()],
        "{out}"
    );
    assert!(out.section("help !")[0].starts_with("usage: ! [COMMAND]"));
    assert_eq!(
        out.error_lines(),
        [
            "error: !: shell exited with status 3",
            "error: !: shell killed by signal 9",
            "error: !: shell exited with status 1",
        ],
        "{out}"
    );
    // A failing command stops the batch like any other.
    assert!(!out.echoed().contains(&"lpwd"), "{out}");
}

#[test]
fn lmkdir_makes_one_local_directory() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    fs::write(cwd.join("file"), b"f").unwrap();
    let out = batch_at_home(
        &server.addr_arg(),
        &cwd,
        &home,
        "lmkdir new\n\
         lmkdir 'with space'\n\
         lmkdir ~/athome\n\
         -lmkdir new\n\
         -lmkdir no/such\n\
         -lmkdir file/x\n",
    );
    out.assert_success();
    assert_eq!(
        out.error_lines(),
        [
            "error: lmkdir: 'new': already exists",
            "error: lmkdir: 'no/such': local directory 'no' not found",
            "error: lmkdir: 'file/x': 'file' is not a local directory",
        ],
        "{out}"
    );
    assert!(cwd.join("new").is_dir() && cwd.join("with space").is_dir());
    assert!(home.join("athome").is_dir());
    assert!(!cwd.join("no").exists());
}

/// Sets the modification time of `path`.
fn set_mtime(path: &Path, secs: u64) {
    let when = std::time::UNIX_EPOCH + Duration::from_secs(secs);
    fs::File::open(path).unwrap().set_modified(when).unwrap();
}

#[test]
fn lls_lists_like_ls() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    fs::write(cwd.join("b.txt"), b"12345").unwrap();
    fs::write(cwd.join("big.bin"), vec![7u8; 1536]).unwrap();
    fs::write(cwd.join(".hidden"), b"h").unwrap();
    fs::create_dir(cwd.join("dir")).unwrap();
    fs::write(cwd.join("dir/in.txt"), b"in").unwrap();
    fs::write(home.join("h.txt"), b"home").unwrap();
    for (name, secs) in [("b.txt", 1_000_000_000), ("big.bin", 1_100_000_000)] {
        set_mtime(&cwd.join(name), secs);
    }
    let out = batch_at_home(
        &server.addr_arg(),
        &cwd,
        &home,
        "lls\n\
         lls -a\n\
         lls -l b.txt\n\
         lls dir\n\
         lls ~\n\
         put -p b.txt\n\
         put -p big.bin\n\
         lls -l\n\
         ls -l\n\
         -lls nope\n",
    );
    out.assert_success();
    assert_eq!(
        out.section("lls"),
        [
            "           5 b.txt",
            "        1536 big.bin",
            "           0 dir/"
        ]
    );
    assert_eq!(
        out.section("lls -a"),
        [
            "           1 .hidden",
            "           5 b.txt",
            "        1536 big.bin",
            "           0 dir/"
        ]
    );
    assert_eq!(
        out.section("lls -l b.txt"),
        ["-rw-r--r--            5 2001-09-09 01:46 UTC b.txt"]
    );
    assert_eq!(out.section("lls dir"), ["           2 in.txt"]);
    assert_eq!(out.section("lls ~"), ["           4 h.txt"]);
    // The same files print the same on both sides.
    let local: Vec<&str> = out
        .section("lls -l")
        .into_iter()
        .filter(|l| !l.ends_with("dir/"))
        .collect();
    assert_eq!(local, out.section("ls -l"), "{out}");
    assert_eq!(
        local[1],
        "-rw-r--r--         1536 2004-11-09 11:33 UTC big.bin"
    );
    assert_eq!(
        out.error_lines(),
        ["error: lls: 'nope': not found"],
        "{out}"
    );
}

/// `~` is `$HOME` in every local path; a bare `lcd` goes there.
#[test]
fn tilde_is_home_and_lcd_goes_there() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    fs::create_dir(home.join("docs")).unwrap();
    fs::write(home.join("h.txt"), b"home file").unwrap();
    fs::write(home.join("docs/a.md"), b"a").unwrap();
    fs::write(home.join("docs/b.md"), b"b").unwrap();
    fs::write(server.root().join("r.txt"), b"remote").unwrap();
    let out = batch_at_home(
        &server.addr_arg(),
        &cwd,
        &home,
        "put ~/h.txt\n\
         mkdir md\n\
         put ~/docs/*.md md\n\
         reput ~/h.txt again.txt\n\
         get r.txt ~\n\
         get r.txt ~/docs/\n\
         get r.txt ~/renamed.txt\n\
         reget r.txt ~/reget.txt\n\
         lcd\n\
         lpwd\n\
         lcd ~/docs\n\
         lpwd\n\
         lcd -\n",
    );
    assert_eq!(out.error_lines(), ["error: lcd: '-': not found"], "{out}");
    assert_eq!(fs::read(server.root().join("h.txt")).unwrap(), b"home file");
    assert_eq!(
        fs::read(server.root().join("again.txt")).unwrap(),
        b"home file"
    );
    assert_eq!(fs::read(server.root().join("md/a.md")).unwrap(), b"a");
    assert_eq!(fs::read(server.root().join("md/b.md")).unwrap(), b"b");
    for got in ["r.txt", "docs/r.txt", "renamed.txt", "reget.txt"] {
        assert_eq!(fs::read(home.join(got)).unwrap(), b"remote", "{got}");
    }
    assert_eq!(
        out.section("lpwd"),
        [format!("Local directory: {}", home.display())]
    );
    assert!(
        out.stdout
            .contains(&format!("Local directory: {}", home.join("docs").display())),
        "{out}"
    );
    assert!(!cwd.join("~").exists(), "{out}");
}

/// In a real terminal: `!` alone is an interactive shell that comes back
/// to the prompt, and Ctrl-C during `!COMMAND` stops the command, not ftx.
#[test]
fn bang_in_a_terminal() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    let data = server.scratch("data");
    let env: Vec<(&str, &Path)> = vec![
        ("HOME", &home),
        ("XDG_DATA_HOME", &data),
        ("SHELL", Path::new("/bin/sh")),
        ("PS1", Path::new("inner> ")),
    ];
    let mut pty = Pty::spawn(&[&server.addr_arg()], &cwd, &env);
    pty.expect("ftx> ");
    pty.send("!\r");
    // Typed once the shell asks, as a person would.
    pty.expect("inner> ");
    pty.send("echo in-$((6*7))\r");
    pty.expect("in-42");
    pty.send("exit 4\r");
    pty.expect("error: !: shell exited with status 4");
    pty.expect("ftx> ");
    pty.send("!sleep 30\r");
    std::thread::sleep(Duration::from_millis(300));
    pty.send("\x03");
    pty.expect("error: !: shell killed by signal 2");
    pty.expect("ftx> ");
    // A command that lets Ctrl-C pass: ftx sees both presses and must
    // not take the second for "leave ftx" (as during a transfer).
    pty.send("!trap '' INT; sleep 1; echo still-$((1+1))\r");
    std::thread::sleep(Duration::from_millis(300));
    pty.send("\x03");
    std::thread::sleep(Duration::from_millis(100));
    pty.send("\x03");
    pty.expect("still-2");
    pty.expect("ftx> ");
    pty.send("lpwd\r");
    pty.expect("Local directory:");
    pty.expect("ftx> ");
    pty.send("exit\r");
    let status = pty.wait(Duration::from_secs(10));
    assert!(status.success(), "{status:?}\n{}", pty.text());
}
