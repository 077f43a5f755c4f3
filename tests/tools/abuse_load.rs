//! Abusive clients for `scripts/bench abuse`, run against an old and a new
//! `ftxd` alike; benchmark helper only. Every mode stops by itself (a
//! bounded number of attempts, a deadline) and speaks the protocol raw,
//! frame by frame, so that it can stop where a hostile client would.
//!
//! ```text
//! abuse_load flood ADDR FTXD_PID CONNS NETSxHOSTS ATTEMPTS [TIMEOUT_MS] [PAUSE_MS]
//! abuse_load hold MODE ADDR FTXD_PID CONNS [PATH]
//! abuse_load drip ADDR NAME SIZE INTERVAL_MS MAX_SECONDS
//! ```
//!
//! `flood`: CONNS silent connections (every other one sends nothing, the
//! rest the first 8 bytes of a `Hello`) from the addresses 127.N.0.H, N in
//! 1..=NETS, H in 1..=HOSTS (NETS /24s), each renewed as soon as the
//! server drops or refuses it. Meanwhile a client from 127.0.0.1 runs
//! ATTEMPTS times connect + `Hello` + `List` of the root (TIMEOUT_MS for
//! the whole attempt, 5 s unless given; PAUSE_MS between two, 100 unless
//! given). Prints `attempts`, `ok`, `refused`, `timeouts`, `closed`,
//! `failures` (the first failure of each kind, as seen), `ls_median_ms`,
//! `ls_p99_ms`, `ls_max_ms` (of the successes; p99 is the nearest rank:
//! of 200, the third slowest), `server_conns_median` (the
//! connections ftxd had open, from the sockets in `/proc/FTXD_PID/fd`,
//! when each attempt began), `flood_connects`, `flood_connects_per_s` and
//! `server_cpu_pct` (ftxd's CPU time over the run's wall time: 100 is one
//! core always busy).
//!
//! `hold`: CONNS connections from 127.0.0.1 that each stop where a hostile
//! client would and stay open. MODE `list`: `Hello`, then `List PATH`,
//! and the answer is never read; `silent`: nothing at all; `hello-half`:
//! half of a real `Hello` frame; `big-header`: a frame header announcing
//! the largest frame (263,168 bytes) and 8 bytes of it; `big-frame`: all
//! of such a frame but its last byte. First one client lists the root and
//! leaves (the server's first-use costs), then the server's memory is
//! read from `/proc/FTXD_PID/smaps_rollup`; the connections open; once the
//! server used no CPU for a second (at least 1 s, at most 120 s) it is
//! read again (the wait counts from the first connection). The `list`
//! connections ask for the smallest receive buffer, as a hostile reader
//! would, so that the kernel does not hold the listing for the server.
//! Prints `held` (connections the server has not closed),
//! `settle_s`, and for `rss`, `pss` and `private` (Private_Clean +
//! Private_Dirty) `_before_kib`, `_after_kib` and `_per_conn_b` (the
//! growth divided by CONNS, in bytes).
//!
//! `drip`: declares an upload of SIZE bytes as NAME, then sends one byte
//! every INTERVAL_MS until the server ends it or MAX_SECONDS pass. Prints
//! `put=accepted` (or `put=refused: ...`) as soon as the server answers,
//! then `drip_bytes`, `drip_seconds` and `drip_end` (`alive`, or what
//! ended it).

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ftx::proto::frame;
use ftx::proto::limits::{MAGIC, MAX_FRAME_LEN, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use ftx::proto::message::{self, Message};
use socket2::{Domain, SockAddr, Socket, Type};

/// The legitimate client's address (the flood's are 127.N.0.H, N >= 1).
const LEGIT_FROM: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
/// How long the flood runs before the first attempt, to fill the server.
const FLOOD_WARMUP: Duration = Duration::from_secs(2);
/// The longest a flood may run, whatever the attempts take.
const FLOOD_MAX: Duration = Duration::from_secs(300);
/// Bytes of a `Hello` a "partial Hello" connection sends.
const PARTIAL_HELLO: usize = 8;
/// A `hold` measurement waits at least this long, and until the server
/// used no CPU for `QUIET`, but at most `SETTLE_MAX`.
const SETTLE_MIN: Duration = Duration::from_secs(1);
const QUIET: Duration = Duration::from_secs(1);
const SETTLE_MAX: Duration = Duration::from_secs(120);
/// The receive buffer asked for by a client that never reads its listing
/// (the kernel doubles it and keeps a floor of a few KiB).
const SMALL_RCVBUF: usize = 4096;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, what: &str| -> Result<&str, String> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("missing {what}; see the usage at the top of abuse_load.rs"))
    };
    match arg(0, "mode")? {
        "flood" => {
            let addr = parse(arg(1, "ADDR")?)?;
            let pid: u32 = parse(arg(2, "FTXD_PID")?)?;
            let conns: usize = parse(arg(3, "CONNS")?)?;
            let (nets, hosts) = arg(4, "NETSxHOSTS")?
                .split_once('x')
                .ok_or("NETSxHOSTS: e.g. 20x1")?;
            let (nets, hosts): (u8, u8) = (parse(nets)?, parse(hosts)?);
            if nets == 0 || hosts == 0 || hosts == 255 {
                return Err("NETSxHOSTS: 1..=255 networks of 1..=254 hosts".into());
            }
            let attempts: usize = parse(arg(5, "ATTEMPTS")?)?;
            let timeout = Duration::from_millis(args.get(6).map_or(Ok(5000), |s| parse(s))?);
            let pause = Duration::from_millis(args.get(7).map_or(Ok(100), |s| parse(s))?);
            let sources: Vec<Ipv4Addr> = (1..=nets)
                .flat_map(|n| (1..=hosts).map(move |h| Ipv4Addr::new(127, n, 0, h)))
                .collect();
            raise_nofile(conns as u64 + 256)?;
            flood(addr, pid, conns, &sources, attempts, timeout, pause)
        }
        "hold" => {
            let mode = arg(1, "MODE")?.to_owned();
            let addr = parse(arg(2, "ADDR")?)?;
            let pid: u32 = parse(arg(3, "FTXD_PID")?)?;
            let conns: usize = parse(arg(4, "CONNS")?)?;
            let path = args.get(5).cloned().unwrap_or_default();
            raise_nofile(conns as u64 + 256)?;
            hold(&mode, addr, pid, conns, &path)
        }
        "drip" => drip(
            parse(arg(1, "ADDR")?)?,
            arg(2, "NAME")?,
            parse(arg(3, "SIZE")?)?,
            Duration::from_millis(parse(arg(4, "INTERVAL_MS")?)?),
            Duration::from_secs(parse(arg(5, "MAX_SECONDS")?)?),
        ),
        other => Err(format!("unknown mode {other:?}: flood, hold or drip")),
    }
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e| format!("{s:?}: {e}"))
}

// ------------------------------------------------------------------ flood

/// Counters the flood thread shares with the measuring one.
#[derive(Default)]
struct FloodStats {
    stop: AtomicBool,
    /// Connection attempts so far.
    connects: AtomicU64,
}

fn flood(
    addr: SocketAddr,
    pid: u32,
    conns: usize,
    sources: &[Ipv4Addr],
    attempts: usize,
    timeout: Duration,
    pause: Duration,
) -> Result<(), String> {
    // ftxd's own sockets (the listener, its signal pipe) before any client.
    let base = socket_fds(pid)?;
    let stats = Arc::new(FloodStats::default());
    let started = Instant::now();
    let ticks0 = cpu_ticks(pid)?;
    let flooder = {
        let (stats, sources) = (Arc::clone(&stats), sources.to_vec());
        std::thread::spawn(move || run_flood(addr, conns, &sources, &stats, started))
    };
    std::thread::sleep(FLOOD_WARMUP);
    let (mut ok, mut refused, mut timeouts, mut closed) = (Vec::new(), 0, 0, 0);
    // The first of each kind of failure, as it was seen.
    let mut why: Vec<String> = Vec::new();
    let mut held = Vec::with_capacity(attempts);
    for i in 0..attempts {
        if i > 0 {
            std::thread::sleep(pause);
        }
        held.push(socket_fds(pid)?.saturating_sub(base));
        let t0 = Instant::now();
        match ls_once(addr, timeout) {
            Ok(t) => ok.push(t),
            Err(f) => {
                let (kind, text) = match f {
                    Failure::Refused(m) => {
                        refused += 1;
                        ("refused", m)
                    }
                    Failure::Timeout => {
                        timeouts += 1;
                        ("timeout", String::new())
                    }
                    Failure::Closed(m) => {
                        closed += 1;
                        ("closed", m)
                    }
                };
                if !why.iter().any(|w| w.starts_with(kind)) {
                    let ms = t0.elapsed().as_secs_f64() * 1000.0;
                    why.push(format!(
                        "{kind} (attempt {}, after {ms:.0} ms) {text}",
                        i + 1
                    ));
                }
            }
        }
        if started.elapsed() > FLOOD_MAX {
            break;
        }
    }
    let connects = stats.connects.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    let ticks = cpu_ticks(pid)?.saturating_sub(ticks0);
    stats.stop.store(true, Ordering::Relaxed);
    flooder.join().map_err(|_| "the flood thread panicked")??;
    held.sort_unstable();
    ok.sort();
    let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1000.0);
    let pick = |q: f64| {
        ok.get(((ok.len().max(1) - 1) as f64 * q).round() as usize)
            .map_or("-".to_owned(), |d| ms(*d))
    };
    println!("attempts={}", held.len());
    println!("ok={}", ok.len());
    println!("refused={refused}");
    println!("timeouts={timeouts}");
    println!("closed={closed}");
    println!("failures={}", why.join("; "));
    println!("ls_median_ms={}", pick(0.5));
    println!("ls_p99_ms={}", pick(0.99));
    println!("ls_max_ms={}", ok.last().map_or("-".to_owned(), |d| ms(*d)));
    println!("server_conns_median={}", held[held.len() / 2]);
    println!("flood_connects={connects}");
    println!("flood_connects_per_s={:.0}", connects as f64 / secs);
    // SAFETY: sysconf only reads its argument.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    println!("server_cpu_pct={:.0}", ticks as f64 / hz / secs * 100.0);
    Ok(())
}

/// How many sockets a process holds (entries of `/proc/PID/fd`).
fn socket_fds(pid: u32) -> Result<usize, String> {
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?;
    Ok(entries
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
        })
        .count())
}

#[derive(Clone, Copy, PartialEq)]
enum SlotState {
    Connecting,
    Open,
}

/// Keeps `conns` silent connections open until told to stop: each one the
/// server closes (or refuses) is opened again at once, from the same
/// source address.
fn run_flood(
    addr: SocketAddr,
    conns: usize,
    sources: &[Ipv4Addr],
    stats: &FloodStats,
    started: Instant,
) -> Result<(), String> {
    let mut partial = Vec::new();
    frame::encode(&hello(), &mut partial);
    partial.truncate(PARTIAL_HELLO);
    let mut slots: Vec<Option<(Socket, SlotState)>> = (0..conns).map(|_| None).collect();
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(conns);
    let mut index: Vec<usize> = Vec::with_capacity(conns);
    let target = SockAddr::from(addr);
    while !stats.stop.load(Ordering::Relaxed) && started.elapsed() < FLOOD_MAX {
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.is_none() {
                stats.connects.fetch_add(1, Ordering::Relaxed);
                *slot = start_connect(&target, sources[i % sources.len()]).map_err(|e| {
                    format!("flood connection from {}: {e}", sources[i % sources.len()])
                })?;
            }
        }
        fds.clear();
        index.clear();
        for (i, slot) in slots.iter().enumerate() {
            if let Some((s, state)) = slot {
                let events = match state {
                    SlotState::Connecting => libc::POLLOUT,
                    SlotState::Open => libc::POLLIN | libc::POLLRDHUP,
                };
                fds.push(libc::pollfd {
                    fd: s.as_raw_fd(),
                    events,
                    revents: 0,
                });
                index.push(i);
            }
        }
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 20) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {e}"));
        }
        for (p, &i) in fds.iter().zip(&index) {
            if p.revents == 0 {
                continue;
            }
            let Some((s, state)) = &mut slots[i] else {
                continue;
            };
            let gone = match state {
                SlotState::Connecting => {
                    if matches!(s.take_error(), Ok(None)) && p.revents & libc::POLLOUT != 0 {
                        // Silent, or a Hello that never ends.
                        let sent = if i % 2 == 1 { s.send(&partial) } else { Ok(0) };
                        *state = SlotState::Open;
                        sent.is_err()
                    } else {
                        true
                    }
                }
                // Whatever the server sent (a refusal, an error) ends with
                // its close: this connection is over.
                SlotState::Open => true,
            };
            if gone {
                slots[i] = None;
            }
        }
    }
    Ok(())
}

/// A non-blocking connection from `from` to `target`, under way.
fn start_connect(
    target: &SockAddr,
    from: Ipv4Addr,
) -> std::io::Result<Option<(Socket, SlotState)>> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.bind(&SocketAddrV4::new(from, 0).into())?;
    s.set_nonblocking(true)?;
    match s.connect(target) {
        Ok(()) => Ok(Some((s, SlotState::Connecting))),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            Ok(Some((s, SlotState::Connecting)))
        }
        // The server's backlog or this machine's ports are full for a
        // moment: the slot tries again on the next turn.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ECONNREFUSED)) => Ok(None),
        Err(e) => Err(e),
    }
}

enum Failure {
    Refused(String),
    Timeout,
    Closed(String),
}

/// One legitimate `ls`: connect from 127.0.0.1, `Hello`, `List` of the
/// root to its last batch, all within `timeout`.
fn ls_once(addr: SocketAddr, timeout: Duration) -> Result<Duration, Failure> {
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    let io = |e: std::io::Error| {
        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
            Failure::Timeout
        } else {
            Failure::Closed(e.to_string())
        }
    };
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).map_err(io)?;
    sock.bind(&SocketAddrV4::new(LEGIT_FROM, 0).into())
        .map_err(io)?;
    sock.connect_timeout(&addr.into(), timeout).map_err(io)?;
    sock.set_tcp_nodelay(true).map_err(io)?;
    let mut s: TcpStream = sock.into();
    let mut out = Vec::new();
    frame::encode(&hello(), &mut out);
    s.write_all(&out).map_err(io)?;
    match read_frame_by(&mut s, deadline)? {
        Message::Welcome { .. } => {}
        Message::Error { message, .. } => return Err(Failure::Refused(message)),
        other => return Err(Failure::Closed(format!("expected Welcome, got {other:?}"))),
    }
    out.clear();
    frame::encode(
        &Message::List {
            path: String::new(),
        },
        &mut out,
    );
    s.write_all(&out).map_err(io)?;
    loop {
        match read_frame_by(&mut s, deadline)? {
            Message::Entries { last: true, .. } => return Ok(t0.elapsed()),
            Message::Entries { .. } => {}
            Message::Error { message, .. } => return Err(Failure::Refused(message)),
            other => return Err(Failure::Closed(format!("expected Entries, got {other:?}"))),
        }
    }
}

/// One frame, read before `deadline`.
fn read_frame_by(s: &mut TcpStream, deadline: Instant) -> Result<Message, Failure> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match frame::decode(&buf) {
            Ok(Some((msg, _))) => return Ok(msg),
            Ok(None) => {}
            Err(e) => return Err(Failure::Closed(e.to_string())),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::Timeout);
        }
        s.set_read_timeout(Some(left))
            .map_err(|e| Failure::Closed(e.to_string()))?;
        // Reads a frame's bytes and no more, so the next frame stays in
        // the socket for the next call.
        let want = match frame::peek_len(&buf) {
            Ok(Some(len)) => 4 + len - buf.len(),
            _ => 4 - buf.len().min(4),
        }
        .clamp(1, chunk.len());
        match s.read(&mut chunk[..want]) {
            Ok(0) => return Err(Failure::Closed("end of stream".into())),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Failure::Timeout)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(Failure::Closed(e.to_string())),
        }
    }
}

fn hello() -> Message {
    Message::Hello {
        magic: MAGIC,
        min_version: MIN_PROTOCOL_VERSION,
        max_version: PROTOCOL_VERSION,
        flags: 0,
        token: Vec::new(),
    }
}

// ------------------------------------------------------------------ hold

/// Memory of a process, in KiB, from `/proc/PID/smaps_rollup`.
#[derive(Clone, Copy)]
struct Mem {
    rss: u64,
    pss: u64,
    private: u64,
}

fn mem_of(pid: u32) -> Result<Mem, String> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(Mem {
        rss: field("Rss:"),
        pss: field("Pss:"),
        private: field("Private_Clean:") + field("Private_Dirty:"),
    })
}

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // Fields after the command name (which may hold spaces) in its parens.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15: 12 and 13 after the parens.
    Ok(tick(11) + tick(12))
}

fn hold(mode: &str, addr: SocketAddr, pid: u32, conns: usize, path: &str) -> Result<(), String> {
    let mut stuck = Vec::new();
    match mode {
        "list" | "silent" => {}
        "big-header" | "big-frame" => {
            // A frame header announcing the largest frame, a type byte and
            // the start of a Hello's body; with big-frame, all of the
            // frame but its last byte. The rest never comes.
            stuck.extend_from_slice(&MAX_FRAME_LEN.to_be_bytes());
            stuck.push(message::kind::HELLO);
            stuck.extend_from_slice(&MAGIC);
            stuck.extend_from_slice(&MIN_PROTOCOL_VERSION.to_be_bytes());
            stuck.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
            if mode == "big-frame" {
                stuck.resize(4 + MAX_FRAME_LEN as usize - 1, 0);
            }
        }
        "hello-half" => {
            frame::encode(&hello(), &mut stuck);
            stuck.truncate(stuck.len() / 2);
        }
        other => return Err(format!("unknown hold mode {other:?}")),
    }
    // The server's first-use costs are paid before the baseline.
    ls_once(addr, Duration::from_secs(10)).map_err(|e| match e {
        Failure::Refused(m) | Failure::Closed(m) => format!("warm-up ls: {m}"),
        Failure::Timeout => "warm-up ls: timed out".into(),
    })?;
    std::thread::sleep(Duration::from_millis(500));
    let before = mem_of(pid)?;

    let started = Instant::now();
    let mut held = Vec::with_capacity(conns);
    let mut out = Vec::new();
    for i in 0..conns {
        let mut s =
            connect_small(addr, mode == "list").map_err(|e| format!("connection {i}: {e}"))?;
        if mode == "list" {
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(|e| e.to_string())?;
            out.clear();
            frame::encode(&hello(), &mut out);
            s.write_all(&out)
                .map_err(|e| format!("connection {i}: {e}"))?;
            match read_frame_by(&mut s, Instant::now() + Duration::from_secs(10)) {
                Ok(Message::Welcome { .. }) => {}
                _ => return Err(format!("connection {i}: no Welcome")),
            }
            out.clear();
            frame::encode(
                &Message::List {
                    path: path.to_owned(),
                },
                &mut out,
            );
            s.write_all(&out)
                .map_err(|e| format!("connection {i}: {e}"))?;
        } else if s.write_all(&stuck).is_err() {
            // Closed by the server already: counted as not held.
            continue;
        }
        held.push(s);
    }

    // Until the server has done all the work the connections gave it.
    let mut quiet_since = Instant::now();
    let mut ticks = cpu_ticks(pid)?;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let now = cpu_ticks(pid)?;
        if now != ticks {
            ticks = now;
            quiet_since = Instant::now();
        }
        let waited = started.elapsed();
        if (waited >= SETTLE_MIN && quiet_since.elapsed() >= QUIET) || waited >= SETTLE_MAX {
            break;
        }
    }
    let settle = started.elapsed();
    let after = mem_of(pid)?;
    let open = held.iter().filter(|s| !peer_closed(s)).count();

    let per = |a: u64, b: u64| (a.saturating_sub(b) * 1024) / conns.max(1) as u64;
    println!("mode={mode}");
    println!("connections={conns}");
    println!("held={open}");
    println!("settle_s={:.1}", settle.as_secs_f64());
    for (name, b, a) in [
        ("rss", before.rss, after.rss),
        ("pss", before.pss, after.pss),
        ("private", before.private, after.private),
    ] {
        println!("{name}_before_kib={b}");
        println!("{name}_after_kib={a}");
        println!("{name}_per_conn_b={}", per(a, b));
    }
    drop(held);
    Ok(())
}

/// A connection to `addr`; with `small`, its receive buffer is as small
/// as the kernel allows (as a hostile reader would make it), so that what
/// the server sends and the client never reads stays in the server, not
/// in this machine's socket buffers (loopback ones grow to 32 MiB here).
fn connect_small(addr: SocketAddr, small: bool) -> std::io::Result<TcpStream> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if small {
        sock.set_recv_buffer_size(SMALL_RCVBUF)?;
    }
    sock.connect_timeout(&addr.into(), Duration::from_secs(5))?;
    Ok(sock.into())
}

/// True when the server has closed (or reset) `s`: unread data from it
/// does not count.
fn peer_closed(s: &TcpStream) -> bool {
    let mut p = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

// ------------------------------------------------------------------ drip

fn drip(
    addr: SocketAddr,
    name: &str,
    size: u64,
    interval: Duration,
    max: Duration,
) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    frame::encode(&hello(), &mut out);
    s.write_all(&out).map_err(|e| e.to_string())?;
    match read_frame_by(&mut s, deadline) {
        Ok(Message::Welcome { .. }) => {}
        _ => return Err("no Welcome".into()),
    }
    out.clear();
    frame::encode(
        &Message::Put {
            path: name.to_owned(),
            size,
            offset: 0,
            flags: message::PUT_FORCE,
        },
        &mut out,
    );
    s.write_all(&out).map_err(|e| e.to_string())?;
    match read_frame_by(&mut s, deadline) {
        Ok(Message::PutReady { .. }) => println!("put=accepted"),
        Ok(Message::Error { message, .. }) => {
            println!("put=refused: {message}");
            return Ok(());
        }
        _ => return Err("no answer to Put".into()),
    }
    // Told at once, for the script waiting to start the other uploads.
    std::io::stdout().flush().map_err(|e| e.to_string())?;

    let started = Instant::now();
    let mut sent = 0u64;
    let mut input = Vec::new();
    let end = loop {
        if started.elapsed() >= max {
            break "alive".to_owned();
        }
        if sent < size {
            let mut f = message::data_header(sent, 1).to_vec();
            f.push(0x5a);
            if let Err(e) = s.write_all(&f) {
                break format!("closed: {e}");
            }
            sent += 1;
        }
        // Acks are read as they come; an Error or the end of the stream
        // is the server ending the upload.
        match wait_input(&mut s, &mut input, interval) {
            Ok(Some(why)) => break why,
            Ok(None) => {}
            Err(e) => break format!("closed: {e}"),
        }
    };
    println!("drip_bytes={sent}");
    println!("drip_seconds={:.1}", started.elapsed().as_secs_f64());
    println!("drip_end={end}");
    Ok(())
}

/// Reads what the server sends for `wait`: `Some(reason)` once it ended
/// the upload (an `Error`, the end of the stream), `None` otherwise.
fn wait_input(
    s: &mut TcpStream,
    input: &mut Vec<u8>,
    wait: Duration,
) -> std::io::Result<Option<String>> {
    let until = Instant::now() + wait;
    let mut chunk = [0u8; 4096];
    loop {
        while let Ok(Some((msg, used))) = frame::decode(input) {
            input.drain(..used);
            match msg {
                Message::Ack { .. } => {}
                Message::Error { message, .. } => return Ok(Some(format!("server: {message}"))),
                other => return Ok(Some(format!("server sent {other:?}"))),
            }
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut chunk) {
            Ok(0) => return Ok(Some("closed by the server".into())),
            Ok(n) => input.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(None)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn raise_nofile(want: u64) -> Result<(), String> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills in the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return Err("cannot read RLIMIT_NOFILE".into());
    }
    if rl.rlim_cur >= want {
        return Ok(());
    }
    let new = libc::rlimit {
        rlim_cur: want,
        rlim_max: want.max(rl.rlim_max),
    };
    // SAFETY: setrlimit only reads the struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
        return Err(format!(
            "cannot raise RLIMIT_NOFILE to {want} (hard limit {}): run as root or raise it",
            rl.rlim_max
        ));
    }
    Ok(())
}
