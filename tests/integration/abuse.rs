//! Abuse of a live `ftxd` beyond single bad frames: a thousand idle
//! connections while a normal client works, and a check that the server
//! never opens an outbound connection (every socket it holds is the
//! listener or an accepted one).

use std::fs;
use std::net::TcpStream;
use std::time::Duration;

use crate::util::{assert_file_bytes, Server};

/// Raises this process's soft open-file limit to `want` (or the hard limit).
fn raise_nofile(want: u64) -> u64 {
    // SAFETY: plain struct filled in by the kernel.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    lim.rlim_cur = want.min(lim.rlim_max);
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    lim.rlim_cur
}

/// Local and remote ports of the TCP sockets `pid` holds, from /proc.
fn sockets_of(pid: u32) -> Vec<(u16, u16, u8)> {
    let mut inodes = Vec::new();
    for fd in fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        if let Ok(t) = fs::read_link(fd.path()) {
            let t = t.to_string_lossy().into_owned();
            if let Some(ino) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                inodes.push(ino.to_owned());
            }
        }
    }
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && inodes.iter().any(|i| i == f[9]) {
                let port =
                    |a: &str| u16::from_str_radix(a.rsplit(':').next().unwrap(), 16).unwrap();
                let state = u8::from_str_radix(f[3], 16).unwrap();
                out.push((port(f[1]), port(f[2]), state));
            }
        }
    }
    out
}

#[test]
fn a_thousand_idle_connections_and_no_outbound_socket() {
    let have = raise_nofile(4096);
    let n = 1000.min(have.saturating_sub(100) as usize);
    // Room for every silent connection: this test is about holding them
    // (the next one, about making room when they are too many).
    let server = Server::start(&[
        "--max-per-ip",
        "5000",
        "--max-connections",
        "5000",
        "--max-startups",
        "5000",
    ]);
    let port = server.addr().port();
    let idle: Vec<TcpStream> = (0..n)
        .filter_map(|_| TcpStream::connect_timeout(&server.addr(), Duration::from_secs(5)).ok())
        .collect();
    assert_eq!(idle.len(), n);
    // A normal client is served meanwhile.
    let cwd = server.scratch("client");
    fs::write(cwd.join("f.txt"), "payload").unwrap();
    let back = server.scratch("back");
    server.batch(&cwd, "put f.txt\nls\n").assert_success();
    server.batch(&back, "get f.txt\n").assert_success();
    assert_file_bytes(&back.join("f.txt"), b"payload");
    // Every TCP socket of ftxd listens on its port or was accepted on it.
    let socks = sockets_of(server.pid());
    assert!(socks.len() > n / 2, "only {} sockets seen", socks.len());
    for (local, _remote, state) in &socks {
        // 0x0A is LISTEN; anything else must be an accepted connection.
        assert!(
            *local == port,
            "socket from port {local} (state {state:x}): outbound?"
        );
    }
    assert_eq!(socks.iter().filter(|s| s.2 == 0x0A).count(), 1);
    drop(idle);
}

/// Opens a silent TCP connection to `server` from the loopback address
/// `from` (any 127.x.y.z is this machine).
fn silent_from(server: std::net::SocketAddr, from: std::net::Ipv4Addr) -> Option<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    sock.bind(&std::net::SocketAddr::from((from, 0)).into())
        .ok()?;
    sock.connect_timeout(&server.into(), Duration::from_secs(5))
        .ok()?;
    Some(sock.into())
}

/// Slot exhaustion before authentication: 1,024 silent connections from
/// 16 address groups (64 each, the per-address limit), renewed as the
/// server drops them, never keep a client from another address out: the
/// oldest silent connection gives way to each newcomer.
#[test]
fn silent_connections_never_lock_a_client_out() {
    let have = raise_nofile(4096);
    let groups = 16u8;
    let per_group = 64usize.min((have.saturating_sub(200) as usize) / usize::from(groups));
    let server = Server::start(&[]);
    let addr = server.addr();
    let mut silent: Vec<TcpStream> = Vec::new();
    for g in 0..groups {
        let from = std::net::Ipv4Addr::new(127, 1, g, 1);
        silent.extend((0..per_group).filter_map(|_| silent_from(addr, from)));
    }
    assert!(
        silent.len() >= 512,
        "only {} silent connections",
        silent.len()
    );
    let cwd = server.scratch("client");
    for round in 0..5 {
        // Renew every dropped one, as an attacker would.
        for (i, s) in silent.iter_mut().enumerate() {
            s.set_nonblocking(true).unwrap();
            let mut b = [0u8; 1];
            if matches!(std::io::Read::read(s, &mut b), Ok(0)) {
                let from = std::net::Ipv4Addr::new(127, 1, (i / per_group) as u8, 1);
                if let Some(n) = silent_from(addr, from) {
                    *s = n;
                }
            }
        }
        let out = server.batch(&cwd, "ls\n");
        assert!(out.success(), "round {round}: ls refused\n{out}");
    }
    drop(silent);
}

/// `--max-per-ip` counts an IPv4 /24 as one address: a fourth
/// connection from 127.0.0.x is refused, one from 127.0.1.x is not.
#[test]
fn the_per_address_limit_counts_a_slash_24() {
    let server = Server::start(&["--max-per-ip", "3"]);
    let addr = server.addr();
    let held: Vec<TcpStream> = (2..5)
        .filter_map(|i| silent_from(addr, std::net::Ipv4Addr::new(127, 0, 0, i)))
        .collect();
    assert_eq!(held.len(), 3);
    std::thread::sleep(Duration::from_millis(100));
    let refused = silent_from(addr, std::net::Ipv4Addr::new(127, 0, 0, 9)).unwrap();
    refused
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut &refused, &mut buf);
    let answer = String::from_utf8_lossy(&buf);
    assert!(
        answer.contains("too many connections from your address"),
        "{answer:?}"
    );
    let other = silent_from(addr, std::net::Ipv4Addr::new(127, 0, 1, 9)).unwrap();
    other
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 8];
    let r = std::io::Read::read(&mut &other, &mut b);
    assert!(r.is_err(), "another /24 was refused too: {r:?}");
    drop(held);
}

/// Total bytes allocated to the hidden files (parts and temporaries) in
/// `dir`.
fn hidden_allocated(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".ftx-"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.blocks() * 512)
        .sum()
}

/// Uploads from one address that declare large files and send a little
/// hold space reserved ahead of their data only up to a cap for that
/// address (four reservations' worth), not one reservation each: six of
/// them hold at most 64 MiB, where they held 96 MiB before.
#[test]
fn one_address_holds_a_capped_reservation() {
    use crate::util::{encode, hello, register_plain};
    use ftx::proto::message::Message;
    use std::io::Write;
    use std::time::Instant;
    const STEP: u64 = 16 << 20;
    let server = Server::start(&["--plain", "--open", "--no-fsync"]);
    register_plain(server.addr());
    let root = server.root();
    let mut held = Vec::new();
    let mut first_alone = 0;
    for i in 0..6 {
        let mut s = TcpStream::connect(server.addr()).unwrap();
        s.write_all(&encode(&hello())).unwrap();
        let put = Message::Put {
            path: format!("huge{i}.bin"),
            size: 1 << 30,
            offset: 0,
            flags: 0,
        };
        s.write_all(&encode(&put)).unwrap();
        let data = Message::Data {
            offset: 0,
            data: vec![7u8; 4096],
        };
        s.write_all(&encode(&data)).unwrap();
        held.push(s);
        // Wait for this upload's part to exist (and reserve what it may).
        let deadline = Instant::now() + Duration::from_secs(10);
        let before = hidden_allocated(root);
        while hidden_allocated(root) <= before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if i == 0 {
            first_alone = hidden_allocated(root);
            if first_alone < STEP {
                eprintln!("skipped: no fallocate on this filesystem ({first_alone} bytes)");
                return;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let total = hidden_allocated(root);
    assert!(
        total <= 4 * STEP + 6 * (1 << 20),
        "six trickling uploads hold {total} bytes (the first alone held {first_alone})\n{}",
        server.logs()
    );
    drop(held);
}

/// When connections in their handshake must make room, the ones that never
/// sent a byte go first: a client half-way through its opening (here,
/// half its `Hello`, as a slow TLS handshake would be) outlives newer
/// silent connections, and is welcomed when the rest of its `Hello`
/// comes.
#[test]
fn silent_connections_give_way_before_a_client_that_spoke() {
    use crate::util::{encode, hello, register_plain, Raw, Recv};
    use ftx::proto::message::Message;
    let server = Server::start(&["--plain", "--open", "--max-startups", "3"]);
    register_plain(server.addr());
    let bytes = encode(&hello());
    let (first, rest) = bytes.split_at(bytes.len() / 2);
    let mut talker = Raw::connect(server.addr());
    talker.send_raw(first).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut silent = Vec::new();
    for _ in 0..6 {
        silent.push(TcpStream::connect(server.addr()).unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    // The talker, the oldest of them all, is still there.
    talker.send_raw(rest).unwrap();
    match talker.recv() {
        Recv::Msg(Message::Welcome { .. }) => {}
        other => panic!("expected Welcome, got {other:?}\n{}", server.logs()),
    }
    // Four silent connections were dropped to make room (seven came, for
    // three places), never the talker.
    let logs = server.logs();
    assert_eq!(logs.matches("dropped to make room").count(), 4, "{logs}");
    drop(silent);
}

/// Room among connections in their handshake is made in the network that
/// holds the most of them: a client that has not sent its `Hello` yet
/// outlives a flood of newer silent connections from another /24.
#[test]
fn a_flood_from_one_network_pushes_out_its_own() {
    use crate::util::{encode, hello, register_plain, Raw, Recv};
    use ftx::proto::message::Message;
    let server = Server::start(&["--plain", "--open", "--max-startups", "3"]);
    register_plain(server.addr());
    let mut client = Raw::connect(server.addr());
    std::thread::sleep(Duration::from_millis(100));
    let flood: Vec<TcpStream> = (0..6)
        .filter_map(|_| {
            let s = silent_from(server.addr(), std::net::Ipv4Addr::new(127, 5, 0, 1));
            std::thread::sleep(Duration::from_millis(30));
            s
        })
        .collect();
    assert_eq!(flood.len(), 6);
    // The client, silent and the oldest of all, is still there.
    client.send_raw(&encode(&hello())).unwrap();
    match client.recv() {
        Recv::Msg(Message::Welcome { .. }) => {}
        other => panic!("expected Welcome, got {other:?}\n{}", server.logs()),
    }
    drop(flood);
}

/// A `Hello` and a `Put` read in one turn: the upload's reservation is made
/// after the token was accepted, in the same turn, and must be counted
/// under the token (not under the network it was counted as a moment
/// before). The server keeps serving, and the next uploads reserve as
/// usual.
#[test]
fn a_hello_and_a_put_in_one_write_are_counted_once() {
    use crate::util::{encode, hello, Raw, Recv};
    use ftx::proto::message::Message;
    let mut server = Server::start(&["--no-fsync"]);
    let mut raw = Raw::connect(server.addr());
    let mut bytes = encode(&hello());
    bytes.extend(encode(&Message::Put {
        path: "p.bin".into(),
        size: 1 << 30,
        offset: 0,
        flags: 0,
    }));
    bytes.extend(encode(&Message::Data {
        offset: 0,
        data: vec![1; 4096],
    }));
    raw.send_raw(&bytes).unwrap();
    for _ in 0..2 {
        match raw.recv() {
            Recv::Msg(Message::Welcome { .. } | Message::PutReady { .. }) => {}
            other => panic!("got {other:?}\n{}", server.logs()),
        }
    }
    raw.send(&Message::Data {
        offset: 4096,
        data: vec![2; 4096],
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.assert_alive();
    drop(raw);
    let cwd = server.scratch("client");
    fs::write(cwd.join("x.bin"), vec![3u8; 100_000]).unwrap();
    let out = server.batch(&cwd, "put x.bin\nls\n");
    out.assert_success().assert_stdout_contains("x.bin");
    server.assert_alive();
}

/// ftxd stopped (SIGSTOP) while a newcomer connects and then an older
/// silent connection's `Hello` arrives: when it continues, the newcomer
/// needs room, and the older connection's waiting `Hello` is read before
/// it is judged silent: it is welcomed, not dropped.
#[test]
fn a_waiting_hello_is_read_before_its_connection_is_dropped() {
    use crate::util::{encode, hello, register_plain, signal, Raw, Recv};
    use ftx::proto::message::Message;
    let server = Server::start(&["--plain", "--open", "--max-startups", "1"]);
    register_plain(server.addr());
    let mut a = Raw::connect(server.addr());
    std::thread::sleep(Duration::from_millis(200));
    signal(server.pid(), libc::SIGSTOP);
    let b = TcpStream::connect(server.addr()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    a.send_raw(&encode(&hello())).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    signal(server.pid(), libc::SIGCONT);
    match a.recv() {
        Recv::Msg(Message::Welcome { .. }) => {}
        other => panic!("expected Welcome, got {other:?}\n{}", server.logs()),
    }
    drop(b);
}

/// The same, at `--max-connections`: the older connection welcomed makes
/// room in the handshake budget but not a slot, so the newcomer is
/// refused as busy; never a connection past the limit.
#[test]
fn making_room_never_goes_past_max_connections() {
    use crate::util::{encode, hello, register_plain, signal, Raw};
    let server = Server::start(&["--plain", "--open", "--max-connections", "2"]);
    register_plain(server.addr());
    let _served = Raw::handshake(server.addr());
    let mut a = Raw::connect(server.addr());
    std::thread::sleep(Duration::from_millis(200));
    signal(server.pid(), libc::SIGSTOP);
    let b = TcpStream::connect(server.addr()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    a.send_raw(&encode(&hello())).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    signal(server.pid(), libc::SIGCONT);
    std::thread::sleep(Duration::from_millis(300));
    let logs = server.logs();
    assert!(!logs.contains("(3 open)"), "past --max-connections\n{logs}");
    drop(b);
}
