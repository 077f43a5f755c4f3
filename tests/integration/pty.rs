//! The interactive shell in a real pseudo-terminal against a real `ftxd`:
//! prompt, Tab completion (commands, remote names, names with spaces),
//! `help`, Ctrl-C at the prompt and during a transfer, Ctrl-D, `exit`,
//! history across runs, and colour only without `NO_COLOR`.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::util::pty::Pty;
use crate::util::{assert_no_temp_files, names_in, Server};

/// A home for one test: `HOME` and `XDG_DATA_HOME` inside `base`.
fn home_env(base: &Path) -> Vec<(&'static str, std::path::PathBuf)> {
    vec![
        ("HOME", base.join("home")),
        ("XDG_DATA_HOME", base.join("data")),
    ]
}

fn spawn(server: &Server, cwd: &Path, env: &[(&'static str, std::path::PathBuf)]) -> Pty {
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let mut pty = Pty::spawn(&[&server.addr_arg()], cwd, &env);
    pty.expect(&format!("Connected to server at {}", server.addr()));
    pty.expect("3. Exit");
    pty.expect("ftx> ");
    pty
}

/// Whether `raw` holds an SGR (colour) escape sequence.
fn has_colour(raw: &str) -> bool {
    let b = raw.as_bytes();
    (0..b.len()).any(|i| {
        b[i..].starts_with(b"\x1b[") && {
            let rest = &b[i + 2..];
            let n = rest
                .iter()
                .take_while(|c| c.is_ascii_digit() || **c == b';')
                .count();
            rest.get(n) == Some(&b'm')
        }
    })
}

#[test]
fn prompt_completion_help_and_exit() {
    let server = Server::start(&[]);
    fs::write(server.root().join("report.bin"), b"report").unwrap();
    fs::write(server.root().join("remote file.txt"), b"spaced").unwrap();
    let cwd = server.scratch("client");
    fs::write(cwd.join("local.txt"), b"local").unwrap();
    let home = server.scratch("home");
    let mut pty = spawn(&server, &cwd, &home_env(&home));

    // A command name completes with its trailing space.
    pty.send("pu\t");
    pty.expect("put ");
    pty.send("local.txt\r");
    pty.expect("uploaded 'local.txt' as 'local.txt'");
    pty.expect("ftx> ");
    assert_eq!(fs::read(server.root().join("local.txt")).unwrap(), b"local");

    // A remote name completes after get.
    pty.send("get rep\t");
    pty.expect("report.bin ");
    pty.send("\r");
    pty.expect("downloaded 'report.bin' as 'report.bin'");
    pty.expect("ftx> ");
    assert_eq!(fs::read(cwd.join("report.bin")).unwrap(), b"report");

    // A name with a space completes quoted (or escaped) and still works.
    pty.send("get rem\t");
    let shown = pty.expect("file.txt");
    assert!(
        shown.contains("'remote file.txt") || shown.contains("remote\\ file.txt"),
        "completion of a spaced name is not quoted: {shown:?}"
    );
    pty.send("\r");
    pty.expect("downloaded 'remote file.txt' as 'remote file.txt'");
    pty.expect("ftx> ");
    assert_eq!(fs::read(cwd.join("remote file.txt")).unwrap(), b"spaced");

    // Ctrl-C at the prompt drops the line: the rm never runs.
    pty.send("rm report.bin");
    pty.expect("rm report.bin");
    pty.send("\x03");
    pty.expect("ftx> ");
    pty.send("lpwd\r");
    pty.expect("Local directory:");
    pty.expect("ftx> ");
    assert!(
        server.root().join("report.bin").exists(),
        "Ctrl-C ran the line"
    );

    // help lists every command.
    pty.send("help\r");
    let help = pty.expect("Type 'help COMMAND'");
    for cmd in [
        "put [-fprRucv] LOCAL [REMOTE]",
        "get [-fprRucv] REMOTE [LOCAL]",
        "reput",
        "reget",
        "cd [DIR]",
        "pwd",
        "ls [-1ahlRrSt] [PATH]",
        "mkdir [-p] PATH",
        "rmdir DIR",
        "rm",
        "rename",
        "lls",
        "lcd",
        "lpwd",
        "progress",
        "help",
        "exit",
    ] {
        assert!(help.contains(cmd), "help lacks {cmd:?}:\n{help}");
    }
    pty.expect("ftx> ");

    pty.send("exit\r");
    let status = pty.wait(Duration::from_secs(10));
    assert!(status.success(), "exit gave {status:?}\n{}", pty.text());
}

#[test]
fn history_persists_between_runs_and_ctrl_d_leaves() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    let env = home_env(&home);

    let mut first = spawn(&server, &cwd, &env);
    first.send("lpwd\r");
    first.expect("Local directory:");
    first.expect("ftx> ");
    first.send("exit\r");
    assert!(first.wait(Duration::from_secs(10)).success());
    let history = home.join("data/ftx/history");
    let saved = fs::read_to_string(&history)
        .unwrap_or_else(|e| panic!("no history at {}: {e}", history.display()));
    assert!(saved.contains("lpwd"), "history file: {saved:?}");

    // Up twice: 'exit' then 'lpwd' from the first run.
    let mut second = spawn(&server, &cwd, &env);
    second.send("\x1b[A");
    second.expect("exit");
    second.send("\x1b[A");
    second.expect("lpwd");
    second.send("\r");
    second.expect("Local directory:");
    second.expect("ftx> ");
    // Ctrl-D on an empty line leaves like exit.
    second.send("\x04");
    let status = second.wait(Duration::from_secs(10));
    assert!(
        status.success(),
        "Ctrl-D gave {status:?}\n{}",
        second.text()
    );
}

#[test]
fn ctrl_c_during_a_transfer_cancels_it_and_returns_to_the_prompt() {
    // No fsync and a sparse source: fast to make, yet at debug speed a
    // 2 GiB upload lasts seconds, long enough to interrupt.
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    let big = fs::File::create(cwd.join("big.bin")).unwrap();
    big.set_len(2 << 30).unwrap();
    drop(big);
    fs::write(cwd.join("small.txt"), b"after").unwrap();
    let mut pty = spawn(&server, &cwd, &home_env(&home));

    // Under another name: the cancel names the command that continues
    // it, both names included.
    pty.send("put big.bin other.bin\r");
    // The progress bar is up: name, percentage, bytes of the total, rate,
    // ETA.
    pty.expect_within("other.bin ", Duration::from_secs(30));
    let bar = pty.expect("ETA");
    assert!(bar.contains("% ["), "no percentage: {bar:?}");
    assert!(bar.contains("GiB"), "{bar:?}");
    assert!(bar.contains("iB/s"), "no rate: {bar:?}");
    pty.send("\x03");
    pty.expect("error: put: 'big.bin': cancelled (continue with: reput big.bin other.bin)");
    pty.expect("ftx> ");
    // The bar is gone from the screen: the prompt's line shows no trace.
    let screen = pty.screen();
    assert!(!screen.contains("ETA"), "the bar stayed:\n{screen}");
    assert!(
        !server.root().join("other.bin").exists(),
        "a cancelled upload is under its final name: {:?}",
        names_in(server.root())
    );

    // The connection is still in step: the next command works.
    pty.send("put small.txt\r");
    pty.expect("uploaded 'small.txt' as 'small.txt'");
    pty.expect("ftx> ");
    assert_eq!(fs::read(server.root().join("small.txt")).unwrap(), b"after");
    assert!(!server.root().join("big.bin").exists());

    // The same for a download: nothing under the final name locally.
    let remote_big = fs::File::create(server.root().join("down.bin")).unwrap();
    remote_big.set_len(2 << 30).unwrap();
    drop(remote_big);
    pty.send("get down.bin here.bin\r");
    pty.expect_within("GiB", Duration::from_secs(30));
    pty.expect("ETA");
    pty.send("\x03");
    pty.expect("error: get: 'down.bin': cancelled (continue with: reget down.bin here.bin)");
    pty.expect("ftx> ");
    let screen = pty.screen();
    assert!(!screen.contains("ETA"), "the bar stayed:\n{screen}");
    assert!(!cwd.join("here.bin").exists(), "{:?}", names_in(&cwd));
    // The interrupted download stays in its hidden part file, for reget.
    let part = cwd.join(".ftx-part-here.bin");
    assert!(part.exists(), "{:?}", names_in(&cwd));
    fs::remove_file(part).unwrap();
    fs::remove_file(server.root().join("down.bin")).unwrap();

    pty.send("exit\r");
    let status = pty.wait(Duration::from_secs(20));
    // Not killed by the SIGINT; as sftp, an interactive session exits 0
    // whatever its commands did (the cancel was reported when it happened).
    assert_eq!(status.code(), Some(0), "{}", pty.text());
    // Nothing partial under a final name; a temporary, if any, is the
    // server's (kept for resume) and hidden.
    let visible: Vec<String> = names_in(server.root())
        .into_iter()
        .filter(|n| !n.starts_with(".ftx-"))
        .collect();
    assert_eq!(visible, ["small.txt"]);
    assert_no_temp_files(&cwd);
}

/// `238.1 MiB/s` as bytes per second.
fn rate_of(text: &str) -> f64 {
    let (n, unit) = text.trim().split_once(' ').expect("number and unit");
    let scale = match unit {
        "B/s" => 1.0,
        "KiB/s" => 1024.0,
        "MiB/s" => 1024.0 * 1024.0,
        "GiB/s" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other:?}"),
    };
    n.parse::<f64>().expect("a rate") * scale
}

/// The bar and the summary compute the rate one way: the bar's last rate
/// is the summary's, give or take the last tenth of a second. (A moving
/// estimate on the bar once read 588 MiB/s for a summary of 324.8.)
#[test]
fn the_bar_and_the_summary_agree_on_the_rate() {
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    let big = fs::File::create(cwd.join("big.bin")).unwrap();
    big.set_len(1 << 30).unwrap();
    drop(big);
    let mut pty = spawn(&server, &cwd, &home_env(&home));
    pty.send("put big.bin\r");
    let before = pty.expect_within(
        "uploaded 'big.bin' as 'big.bin' (",
        Duration::from_secs(120),
    );
    let summary = pty.expect(")");
    pty.expect("ftx> ");
    let last_bar = before.rsplit("% [").next().expect("the bar was drawn");
    let bar_rate = last_bar
        .split(" ETA")
        .next()
        .and_then(|s| s.rsplit_once("GiB ").map(|(_, r)| r.to_owned()))
        .unwrap_or_else(|| panic!("no rate on the bar: {last_bar:?}"));
    let summary_rate = summary
        .split(", ")
        .nth(1)
        .unwrap_or_else(|| panic!("no rate in the summary: {summary:?}"));
    let (bar, sum) = (rate_of(&bar_rate), rate_of(summary_rate));
    assert!(
        (bar - sum).abs() <= sum * 0.15,
        "bar {bar_rate} vs summary {summary_rate}"
    );
    pty.send("exit\r");
    assert!(pty.wait(Duration::from_secs(10)).success());
}

/// A second Ctrl-C while a cancelled transfer waits on a server that
/// stopped answering ends ftx at once, as Ctrl-C does, saying what was
/// kept: for a download the part file and where, for an upload the
/// server's part, and each time the command that continues it.
#[test]
fn a_second_ctrl_c_ends_ftx_saying_what_was_kept() {
    use std::os::unix::process::ExitStatusExt;
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    let remote_big = fs::File::create(server.root().join("down.bin")).unwrap();
    remote_big.set_len(2 << 30).unwrap();
    drop(remote_big);
    let local_big = fs::File::create(cwd.join("big.bin")).unwrap();
    local_big.set_len(2 << 30).unwrap();
    drop(local_big);

    // A download: the part stays beside the target.
    let mut pty = spawn(&server, &cwd, &home_env(&home));
    pty.send("get down.bin here.bin\r");
    pty.expect_within("ETA", Duration::from_secs(30));
    crate::util::signal(server.pid(), libc::SIGSTOP);
    pty.send("\x03");
    std::thread::sleep(Duration::from_millis(300));
    pty.send("\x03");
    pty.expect(
        "ftx: interrupted during the download; what arrived is kept in \
         '.ftx-part-here.bin' (continue with: reget down.bin here.bin)",
    );
    let status = pty.wait(Duration::from_secs(10));
    crate::util::signal(server.pid(), libc::SIGCONT);
    assert_eq!(status.signal(), Some(libc::SIGINT), "{}", pty.text());
    let screen = pty.screen();
    assert!(!screen.contains("ETA"), "the bar stayed:\n{screen}");
    let part = cwd.join(".ftx-part-here.bin");
    assert!(
        fs::metadata(&part).is_ok_and(|m| m.len() > 0),
        "{:?}",
        names_in(&cwd)
    );
    assert!(!cwd.join("here.bin").exists());

    // An upload: the server keeps its part, once it sees the client gone.
    let mut pty = spawn(&server, &cwd, &home_env(&home));
    pty.send("put big.bin other.bin\r");
    pty.expect_within("ETA", Duration::from_secs(30));
    crate::util::signal(server.pid(), libc::SIGSTOP);
    pty.send("\x03");
    std::thread::sleep(Duration::from_millis(300));
    pty.send("\x03");
    pty.expect(
        "ftx: interrupted during the upload; the server keeps what it received of \
         'other.bin' as an interrupted upload (continue with: reput big.bin other.bin)",
    );
    let status = pty.wait(Duration::from_secs(10));
    crate::util::signal(server.pid(), libc::SIGCONT);
    assert_eq!(status.signal(), Some(libc::SIGINT), "{}", pty.text());
    let screen = pty.screen();
    assert!(!screen.contains("ETA"), "the bar stayed:\n{screen}");
    let kept = server.part_path(server.root(), "other.bin");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !fs::metadata(&kept).is_ok_and(|m| m.len() > 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "no part on the server: {:?}",
            names_in(server.root())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!server.root().join("other.bin").exists());
}

/// The menu's prompts: Tab completes local names when asking for a file
/// to upload and remote ones when asking for one to download, inserted as
/// typed (a space needs no quoting there); an empty answer asks again.
#[test]
fn the_menu_prompts_complete_names_and_ask_again_when_empty() {
    let server = Server::start(&[]);
    fs::write(server.root().join("report of may.bin"), b"report").unwrap();
    let cwd = server.scratch("client");
    fs::write(cwd.join("local file.txt"), b"local").unwrap();
    let home = server.scratch("home");
    let mut pty = spawn(&server, &cwd, &home_env(&home));

    pty.send("1\r");
    pty.expect("Enter full filename to upload: ");
    pty.send("\r");
    pty.expect("Enter full filename to upload: ");
    pty.send("loc\t");
    pty.expect("local file.txt");
    pty.send("\r");
    pty.expect("uploaded 'local file.txt' as 'local file.txt'");
    pty.expect("ftx> ");
    assert_eq!(
        fs::read(server.root().join("local file.txt")).unwrap(),
        b"local"
    );

    pty.send("2\r");
    pty.expect("Enter full filename to download: ");
    pty.send("  \r");
    pty.expect("Enter full filename to download: ");
    pty.send("rep\t");
    pty.expect("report of may.bin");
    pty.send("\r");
    pty.expect("downloaded 'report of may.bin' as 'report of may.bin'");
    pty.expect("ftx> ");
    assert_eq!(fs::read(cwd.join("report of may.bin")).unwrap(), b"report");
    assert!(!pty.text().contains("no file name given"), "{}", pty.text());

    pty.send("exit\r");
    assert!(pty.wait(Duration::from_secs(10)).success());
}

#[test]
fn colours_on_a_terminal_only_without_no_color() {
    let server = Server::start(&[]);
    fs::create_dir(server.root().join("docs")).unwrap();
    fs::write(server.root().join("a.txt"), b"a").unwrap();
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    let script = "ls\r";

    let mut coloured = spawn(&server, &cwd, &home_env(&home));
    coloured.send(script);
    coloured.expect("docs/");
    coloured.send("get nope\r");
    coloured.expect("not found on server");
    coloured.send("exit\r");
    // One command failed (get nope), reported at once; as sftp, an
    // interactive session still exits 0.
    assert_eq!(coloured.wait(Duration::from_secs(10)).code(), Some(0));
    let raw = coloured.raw();
    assert!(
        raw.contains("\x1b[1;34mdocs/"),
        "no blue directory:\n{raw:?}"
    );
    assert!(raw.contains("\x1b[1;31merror:"), "no red error:\n{raw:?}");

    let mut env = home_env(&home);
    env.push(("NO_COLOR", "1".into()));
    let mut plain = spawn(&server, &cwd, &env);
    plain.send(script);
    plain.expect("docs/");
    plain.send("get nope\r");
    plain.expect("error: get: 'nope' not found on server");
    plain.send("exit\r");
    assert_eq!(plain.wait(Duration::from_secs(10)).code(), Some(0));
    let raw = plain.raw();
    assert!(!has_colour(&raw), "colour despite NO_COLOR:\n{raw:?}");
}

#[test]
fn first_contact_asks_trust_and_token_then_remembers_both() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let base = server.scratch("first-contact");
    let env = home_env(&base);
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    // "localhost:PORT" is not an address the harness hands credentials
    // for, so this ftx knows nothing: no fingerprint, no token.
    let target = format!("localhost:{}", server.addr().port());
    let token = server.creds().token.clone();
    let fingerprint = server.creds().fingerprint.clone().expect("TLS server");

    let mut first = Pty::spawn(&[&target], &cwd, &env);
    first.expect(&fingerprint);
    first.expect("Are you sure you want to continue connecting (yes/no)?");
    first.send("yes\r");
    first.expect("Enter access token:");
    first.send(&format!("{token}\r"));
    first.expect("Remember this token for this server (yes/no)?");
    first.send("yes\r");
    first.expect("ftx> ");
    // The token was typed without echo.
    assert!(!first.text().contains(&token), "{}", first.text());
    first.send("exit\r");
    assert!(first.wait(Duration::from_secs(10)).success());

    // What was learnt is on disk, the token readable by its owner only.
    let data = base.join("data").join("ftx");
    let known = fs::read_to_string(data.join("known_hosts")).unwrap();
    assert!(known.contains(&fingerprint), "{known}");
    let saved = data.join("tokens");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The second time: no question, no prompt.
    let mut second = Pty::spawn(&[&target], &cwd, &env);
    second.expect("ftx> ");
    assert!(!second.text().contains("Are you sure"), "{}", second.text());
    assert!(
        !second.text().contains("Enter access token"),
        "{}",
        second.text()
    );
    second.send("exit\r");
    assert!(second.wait(Duration::from_secs(10)).success());
}

/// A wrong token at the prompt is asked for again, three times in all as
/// ssh asks for a password; the right one then connects. Asking without a
/// token first is no failed attempt on the server, the wrong ones are.
#[test]
fn a_wrong_token_is_asked_for_again_three_times() {
    let server = Server::start(&[]);
    let cwd = server.scratch("client");
    let base = server.scratch("home");
    let env = home_env(&base);
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let fingerprint = server.creds().fingerprint.clone().expect("TLS server");
    let token = server.creds().token.clone();
    // Not an address the harness hands credentials for: no token given.
    let target = format!("localhost:{}", server.addr().port());
    let args = [target.as_str(), "--fingerprint", fingerprint.as_str()];

    let mut pty = Pty::spawn(&args, &cwd, &env);
    pty.expect("Enter access token:");
    pty.send("ftx_wrong1\r");
    pty.expect("the server refused the access token");
    pty.expect("Enter access token:");
    pty.send("ftx_wrong2\r");
    pty.expect("Enter access token:");
    pty.send(&format!("{token}\r"));
    pty.expect("Remember this token for this server (yes/no)?");
    pty.send("no\r");
    pty.expect("ftx> ");
    pty.send("exit\r");
    assert!(pty.wait(Duration::from_secs(10)).success());
    let logs = server.logs();
    assert!(logs.contains("(2 failed attempt(s)"), "{logs}");
    assert!(!logs.contains("(3 failed attempt(s)"), "{logs}");
    // Asking without a token first is told, not warned about.
    assert!(logs.contains("asked without an access token"), "{logs}");
    assert_eq!(logs.matches("WARN").count(), 2, "{logs}");

    // Three wrong answers end it, saying so.
    let mut pty = Pty::spawn(&args, &cwd, &env);
    for _ in 0..3 {
        pty.expect("Enter access token:");
        pty.send("ftx_wrong\r");
    }
    let status = pty.wait(Duration::from_secs(10));
    assert!(!status.success(), "{}", pty.text());
    assert!(
        pty.text()
            .contains("error: the server refused the access token"),
        "{}",
        pty.text()
    );
    assert_eq!(pty.text().matches("Enter access token:").count(), 3);
}

/// Ctrl-C during a many-file download with many files in flight: one
/// cancel ends them all, what was fetched is whole, nothing partial is
/// under a final name, and the connection is in step for the next
/// command. The server's replies are held on the way (a proxy), so the
/// cancel surely meets downloads still running.
#[test]
fn ctrl_c_during_a_pipelined_get_cancels_every_file_in_flight() {
    use crate::util::{Proxy, Tamper};
    let server = Server::start(&["--no-fsync"]);
    let cwd = server.scratch("client");
    let home = server.scratch("home");
    let dir = server.root().join("d");
    fs::create_dir(&dir).unwrap();
    for i in 0..40 {
        let data: Vec<u8> = (0..64 * 1024).map(|j| (i * 7 + j % 251) as u8).collect();
        fs::write(dir.join(format!("f{i:02}")), data).unwrap();
    }
    // Held after about ten files' data.
    let down = Tamper {
        hold_at: Some(700 * 1024),
        ..Tamper::default()
    };
    let proxy = Proxy::start(server.addr(), Tamper::default(), down);
    let env = home_env(&home);
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let mut pty = Pty::spawn(&[&proxy.addr().to_string()], &cwd, &env);
    pty.expect("ftx> ");
    pty.send("get -r d\r");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !proxy.holding() {
        assert!(std::time::Instant::now() < deadline, "{}", pty.text());
        std::thread::sleep(Duration::from_millis(10));
    }
    pty.send("\x03");
    std::thread::sleep(Duration::from_millis(200));
    proxy.release();
    pty.expect_within(": cancelled", Duration::from_secs(30));
    pty.expect("ftx> ");
    let got = names_in(&cwd.join("d"));
    let whole: Vec<&String> = got.iter().filter(|n| !n.starts_with(".ftx-")).collect();
    assert!(
        !whole.is_empty() && whole.len() < 40,
        "{got:?}\n{}",
        pty.text()
    );
    for name in &whole {
        assert_eq!(
            fs::read(cwd.join("d").join(name)).unwrap(),
            fs::read(dir.join(name)).unwrap(),
            "{name}"
        );
    }
    // In step: the next command fetches everything.
    pty.send("get -r d again\r");
    pty.expect_within("as 'again/f39'", Duration::from_secs(60));
    pty.expect("ftx> ");
    for i in 0..40 {
        let name = format!("f{i:02}");
        assert_eq!(
            fs::read(cwd.join("again").join(&name)).unwrap(),
            fs::read(dir.join(&name)).unwrap(),
            "{name}\n{}",
            pty.text()
        );
    }
    pty.send("exit\r");
    let status = pty.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", pty.text());
}
