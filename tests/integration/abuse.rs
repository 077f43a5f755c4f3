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
    let server = Server::start(&["--max-per-ip", "5000", "--max-connections", "5000"]);
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
