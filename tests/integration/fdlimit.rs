//! Running out of file descriptors: `ftxd` started under a low
//! `RLIMIT_NOFILE` (soft and hard, so it cannot raise it) is saturated with
//! connections that each hold an upload open. It must answer what it cannot
//! serve with a typed error, back off on `EMFILE` instead of spinning on a
//! listener that stays ready (its CPU stays low), and serve a new client
//! once the others leave.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ftx::proto::message::Message;

use crate::util::{ftxd_bin, hello, parse_listening, run_batch, write_random_file, Raw, Recv};

/// The open-file limit ftxd runs under here.
const NOFILE: u64 = 64;
/// Connections the test opens: well past what 64 descriptors can hold.
const CLIENTS: usize = 36;

/// Clock ticks (utime + stime) the process has used, from /proc.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name (which may hold spaces) start after ')'.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

struct Limited {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Limited {
    fn drop(&mut self) {
        crate::util::signal(self.child.id(), libc::SIGTERM);
        if crate::util::wait_timeout(&mut self.child, Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start_limited(root: &std::path::Path) -> Limited {
    let mut cmd = Command::new(ftxd_bin());
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--no-fsync",
        "--max-per-ip",
        "1000",
        // Plain and open: TLS and tokens are tested elsewhere, and this
        // server must not create a state directory in the user's home.
        "--plain",
        "--open",
    ])
    .arg("--root")
    .arg(root)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let rl = libc::rlimit {
                rlim_cur: NOFILE,
                rlim_max: NOFILE,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn ftxd");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(a) = parse_listening(&line) {
                    break a;
                }
            }
            _ => panic!("ftxd under a low open-file limit did not start"),
        }
    };
    // Keep draining stdout so ftxd never blocks on it.
    thread::spawn(move || for _ in lines {});
    crate::util::register_plain(addr);
    Limited { child, addr }
}

#[test]
fn descriptor_exhaustion_backs_off_and_recovers() {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    let client = base.path().join("client");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(&client).unwrap();
    let server = start_limited(&root);

    // Each connection starts an upload and leaves it open: a part file and
    // its directory stay open on the server for every one of them.
    let mut held = Vec::new();
    let (mut ready, mut refused, mut silent) = (0, 0, 0);
    for i in 0..CLIENTS {
        let mut raw = Raw::connect(server.addr);
        raw.stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let put = Message::Put {
            path: format!("f{i}.bin"),
            size: 1 << 20,
            offset: 0,
            flags: 0,
        };
        if raw.send(&hello()).and_then(|()| raw.send(&put)).is_err() {
            refused += 1;
            continue;
        }
        match raw.recv() {
            Recv::Msg(Message::Welcome { .. }) => match raw.recv() {
                Recv::Msg(Message::PutReady { .. }) => ready += 1,
                Recv::Msg(Message::Error { .. }) => refused += 1,
                Recv::Timeout => silent += 1,
                _ => refused += 1,
            },
            // Busy (past the connections that fit), or closed.
            Recv::Msg(Message::Error { .. }) | Recv::Closed | Recv::Reset => refused += 1,
            // Not accepted yet: waiting in the backlog while ftxd backs off.
            Recv::Timeout => silent += 1,
            _ => refused += 1,
        }
        held.push(raw);
    }
    assert!(ready > 0, "no upload started at all");
    assert!(
        ready < CLIENTS,
        "{CLIENTS} uploads fit in {NOFILE} descriptors? ready={ready}"
    );
    eprintln!("ready={ready} refused={refused} silent={silent}");

    // Saturated, with connections still waiting in the backlog: the loop
    // must sleep, not spin. 2 s of wall time; allow 0.3 s of CPU.
    let pid = server.child.id();
    let before = cpu_ticks(pid);
    let t0 = Instant::now();
    thread::sleep(Duration::from_secs(2));
    let ticks = cpu_ticks(pid) - before;
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let cpu = Duration::from_millis(ticks * 1000 / hz.max(1));
    assert!(
        cpu < Duration::from_millis(300),
        "ftxd used {cpu:?} of CPU in {:?} while out of descriptors",
        t0.elapsed()
    );

    // Everyone leaves; a new client is served.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(20);
    write_random_file(&client.join("after.bin"), 100_000, 7);
    loop {
        let out = run_batch(&server.addr.to_string(), &client, "put after.bin\nls\n");
        if out.success() {
            out.assert_stdout_contains("uploaded 'after.bin' as 'after.bin'");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after the clients left"
        );
        thread::sleep(Duration::from_millis(200));
    }
    crate::util::assert_same_file(&client.join("after.bin"), &root.join("after.bin"));
}
