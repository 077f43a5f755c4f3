//! An idle `ftxd`'s own memory (the target: an idle ftxd under 2 MiB
//! resident). Checked here is the part that is the same in every build:
//! its heap and nameless anonymous mappings, where buffers and tables
//! sized up front would show. The rest of its resident set is mapped code
//! and tables (its binary, glibc, ld.so), several times larger in the
//! debug build these tests run and dependent on how the kernel maps
//! page-cache pages, so the whole RSS is measured on the release build by
//! `scripts/bench idle` instead.

use std::fs;
use std::thread;
use std::time::Duration;

use crate::util::Server;

/// Bound on an idle ftxd's heap and anonymous mappings, in KiB: a quarter
/// of the 2 MiB target. Release and debug builds hold ~110 KiB.
const IDLE_HEAP_LIMIT_KIB: u64 = 512;

/// KiB resident in `pid`'s heap and nameless anonymous mappings, from
/// /proc/PID/smaps, and the mappings counted (for failure messages). The
/// stack and the relocated pages of the binaries are not counted.
fn heap_kib(pid: u32) -> (u64, String) {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).expect("read /proc smaps");
    let (mut total, mut counting, mut shown) = (0, false, String::new());
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if !first.ends_with(':') {
            // A mapping's header: range, perms, offset, device, inode, name.
            let name = fields.nth(4);
            counting = matches!(name, None | Some("[heap]"));
            if counting {
                shown.push_str(line);
                shown.push('\n');
            }
        } else if counting && first == "Rss:" {
            let kib: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            total += kib;
            shown.push_str(&format!("  Rss {kib} KiB\n"));
        }
    }
    (total, shown)
}

#[test]
fn idle_ftxd_holds_little_heap_plain_and_tls() {
    for args in [&["--plain", "--open"][..], &[][..]] {
        let server = Server::start(args);
        // Past its first loop turns: the stale-part sweep and the timers.
        thread::sleep(Duration::from_millis(300));
        let (kib, shown) = heap_kib(server.pid());
        assert!(
            kib < IDLE_HEAP_LIMIT_KIB,
            "idle ftxd {args:?}: {kib} KiB of heap and anonymous memory, limit \
             {IDLE_HEAP_LIMIT_KIB} KiB\n{shown}{}",
            server.logs()
        );
    }
}

/// A listing is read only as fast as the client takes it: connections that
/// ask for a large directory and never read hold a frame or two each, not
/// the whole listing (4 MiB here), and another client is served meanwhile.
#[test]
fn unread_listings_hold_little() {
    use crate::util::{register_plain, Raw};
    use ftx::proto::message::Message;
    let server = Server::start(&["--plain", "--open"]);
    register_plain(server.addr());
    let big = server.root().join("big");
    fs::create_dir(&big).unwrap();
    // 20,000 entries of 200-byte names: ~4.4 MiB of listing frames.
    for i in 0..20_000 {
        fs::File::create(big.join(format!("{i:05}-{}", "n".repeat(194)))).unwrap();
    }
    thread::sleep(Duration::from_millis(300));
    let (before, _) = heap_kib(server.pid());
    let readers = 8;
    let mut stuck: Vec<Raw> = (0..readers)
        .map(|_| {
            let mut r = Raw::handshake(server.addr());
            r.send(&Message::List { path: "big".into() }).unwrap();
            r
        })
        .collect();
    thread::sleep(Duration::from_secs(1));
    let (after, shown) = heap_kib(server.pid());
    let grown = after.saturating_sub(before);
    assert!(
        grown < readers * 1024,
        "{readers} unread listings grew ftxd by {grown} KiB (limit 1 MiB each)\n{shown}"
    );
    let cwd = server.scratch("client");
    let out = server.batch(&cwd, "ls\n");
    out.assert_success().assert_stdout_contains("big/");
    stuck.clear();
}

/// Downloads to clients that ask and never read share one output budget:
/// past it each queues a quarter chunk, not 1 MiB, so 64 such connections
/// grow ftxd by well under the ~96 MiB they held before (1.5 MiB each).
/// Their sockets are made small, so the server's own queues fill.
#[test]
fn unread_downloads_share_one_output_budget() {
    use crate::util::{encode, hello, register_plain};
    use ftx::proto::message::Message;
    use std::io::Write;
    use std::net::TcpStream;
    let server = Server::start(&["--plain", "--open", "--max-per-ip", "100"]);
    register_plain(server.addr());
    crate::util::write_random_file(&server.root().join("big.bin"), 8 << 20, 7);
    thread::sleep(Duration::from_millis(300));
    let (before, _) = heap_kib(server.pid());
    let readers = 64;
    let mut stuck: Vec<TcpStream> = (0..readers)
        .map(|_| {
            let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("socket");
            sock.set_recv_buffer_size(16 << 10).expect("SO_RCVBUF");
            sock.connect(&server.addr().into()).expect("connect");
            let mut s = TcpStream::from(sock);
            s.write_all(&encode(&hello())).unwrap();
            let get = Message::Get {
                path: "big.bin".into(),
                offset: 0,
            };
            s.write_all(&encode(&get)).unwrap();
            s
        })
        .collect();
    thread::sleep(Duration::from_secs(2));
    let (after, shown) = heap_kib(server.pid());
    let grown = after.saturating_sub(before);
    assert!(
        grown < 56 << 10,
        "{readers} unread downloads grew ftxd by {grown} KiB (limit 56 MiB: a 32 MiB \
         budget, then 256 KiB or so each)\n{shown}"
    );
    // Another client is served meanwhile.
    let cwd = server.scratch("client");
    let out = server.batch(&cwd, "get big.bin\n");
    out.assert_success();
    crate::util::assert_same_file(&server.root().join("big.bin"), &cwd.join("big.bin"));
    stuck.clear();
}
