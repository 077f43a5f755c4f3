//! Holds many idle, handshaken connections to one `ftxd` and measures what
//! they cost: the server's resident memory before and after (from
//! `/proc/PID/status`), and the latency of `ls` from another client while
//! they are open. Used by `scripts/bench idle`; benchmark helper only.
//!
//! ```text
//! idle_conns [--tls FINGERPRINT] [--list-first] ADDR FTXD_PID [CONNECTIONS] [LS_REQUESTS]
//! ```
//! Plain (an `ftxd --plain --open`): raw `Hello` frames, all sent before
//! any `Welcome` is read. With `--tls`: each connection first runs the
//! client's own TLS handshake (`ftx::client::transport::handshake`, TLS 1.3
//! pinned to FINGERPRINT), then sends `Hello` with the token from
//! `$FTX_TOKEN` and waits for `Welcome`; `OPEN_THREADS` threads open them,
//! since each costs a handshake on both ends. (Not a whole `Client` each:
//! its transfer-sized buffers would cost this process gigabytes.) The `ls`
//! client is an `ftx::client::Client` either way. With `--list-first`,
//! each held connection lists the root once before it idles, as a shell
//! left open after an `ls` does.
//!
//! Prints `key=value` lines: `connections`, `open_seconds`,
//! `rss_before_kib`, `rss_after_kib`, `bytes_per_conn`, `ls_median_ms`,
//! `ls_p99_ms`, `ls_max_ms`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ftx::client::transport::{self, Stream};
use ftx::client::{Client, ConnectOptions};
use ftx::proto::frame;
use ftx::proto::limits::{MAGIC, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use ftx::proto::message::Message;

/// Time for the server to settle (allocator, lazy buffers) before and after
/// the connections open.
const SETTLE: Duration = Duration::from_millis(500);
/// Threads opening TLS connections: the handshakes' client half runs here,
/// the server half on ftxd's one thread, so two keep ftxd busy without
/// starving it on a 2-core machine.
const OPEN_THREADS: usize = 2;
/// The most the TLS connections may take to open, all together (about 7 s
/// for 10,000 on 2 cores): past it the run fails instead of dragging on.
const OPEN_DEADLINE: Duration = Duration::from_secs(120);
/// The environment variable holding the token, as for `ftx`.
const TOKEN_ENV: &str = "FTX_TOKEN";

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut args: Vec<String> = std::env::args().collect();
    let pin = match args.iter().position(|a| a == "--tls") {
        Some(i) if i + 1 < args.len() => {
            let fp = args.remove(i + 1);
            args.remove(i);
            Some(fp)
        }
        Some(_) => return Err("--tls needs the server's fingerprint".into()),
        None => None,
    };
    let list_first = match args.iter().position(|a| a == "--list-first") {
        Some(i) => {
            args.remove(i);
            true
        }
        None => false,
    };
    if args.len() < 3 {
        return Err(
            "usage: idle_conns [--tls FINGERPRINT] [--list-first] ADDR FTXD_PID [CONNECTIONS] [LS_REQUESTS]"
                .into(),
        );
    }
    let options = match pin {
        None => ConnectOptions::plain(),
        Some(pin) => ConnectOptions {
            pin: Some(pin),
            token: std::env::var(TOKEN_ENV)
                .map_err(|_| format!("--tls needs the token in ${TOKEN_ENV}"))?
                .into_bytes(),
        },
    };
    let addr: SocketAddr = args[1].parse().map_err(|e| format!("{}: {e}", args[1]))?;
    let pid: u32 = args[2].parse().map_err(|e| format!("pid: {e}"))?;
    let count: usize = args
        .get(3)
        .map_or(Ok(10_000), |s| s.parse())
        .map_err(|e| format!("count: {e}"))?;
    let requests: usize = args
        .get(4)
        .map_or(Ok(200), |s| s.parse())
        .map_err(|e| format!("requests: {e}"))?;
    raise_nofile(count as u64 + 256)?;

    // A client that has listed once, so its own first-use costs (and the
    // server's first TLS handshake) are paid before the baseline.
    let addr_s = addr.to_string();
    let mut probe = Client::connect_with(&addr_s, &options).map_err(|e| e.to_string())?;
    probe.list("").map_err(|e| e.to_string())?;
    std::thread::sleep(SETTLE);
    let before = rss_kib(pid)?;

    let started = Instant::now();
    // Held open until the measurements are done.
    let (plain, tls) = match &options.pin {
        Some(pin) => (
            Vec::new(),
            open_tls(addr, count, pin, &options.token, list_first)?,
        ),
        None => (open_plain(addr, count, list_first)?, Vec::new()),
    };
    let opened = started.elapsed();
    std::thread::sleep(SETTLE);
    let after = rss_kib(pid)?;

    let mut times = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        probe.list("").map_err(|e| e.to_string())?;
        times.push(t.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!("connections={count}");
    println!("open_seconds={:.2}", opened.as_secs_f64());
    println!("rss_before_kib={before}");
    println!("rss_after_kib={after}");
    println!(
        "bytes_per_conn={}",
        (after.saturating_sub(before) * 1024) / count.max(1) as u64
    );
    println!("ls_median_ms={:.3}", ms(pick(0.5)));
    println!("ls_p99_ms={:.3}", ms(pick(0.99)));
    println!("ls_max_ms={:.3}", ms(times[times.len() - 1]));
    drop((plain, tls));
    Ok(())
}

/// Opens `count` plain connections: every `Hello` goes out before any
/// `Welcome` is read, and every one must be welcomed, not refused as busy.
fn open_plain(addr: SocketAddr, count: usize, list_first: bool) -> Result<Vec<TcpStream>, String> {
    let hello = hello_frame(&[]);
    let mut conns = Vec::with_capacity(count);
    for i in 0..count {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("connection {i}: {e}"))?;
        s.write_all(&hello)
            .map_err(|e| format!("connection {i}: {e}"))?;
        conns.push(s);
    }
    for (i, s) in conns.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        match read_frame(s).map_err(|e| format!("connection {i}: {e}"))? {
            Message::Welcome { .. } => {}
            other => return Err(format!("connection {i}: expected Welcome, got {other:?}")),
        }
        if list_first {
            list_once(s).map_err(|e| format!("connection {i}: {e}"))?;
        }
    }
    Ok(conns)
}

/// Opens `count` TLS connections as `ftx` does (handshake pinned to
/// `pin`, `Hello` with `token`, `Welcome`) from `OPEN_THREADS` threads.
/// Fails past `OPEN_DEADLINE`.
fn open_tls(
    addr: SocketAddr,
    count: usize,
    pin: &str,
    token: &[u8],
    list_first: bool,
) -> Result<Vec<Stream>, String> {
    let deadline = Instant::now() + OPEN_DEADLINE;
    let hello = hello_frame(token);
    let hello = &hello;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..OPEN_THREADS)
            .map(|t| {
                let share = count / OPEN_THREADS + usize::from(t < count % OPEN_THREADS);
                scope.spawn(move || -> Result<Vec<Stream>, String> {
                    (0..share)
                        .map(|i| {
                            if Instant::now() > deadline {
                                return Err(format!(
                                    "thread {t} opened only {i} of {share} connections in {} s",
                                    OPEN_DEADLINE.as_secs()
                                ));
                            }
                            open_one_tls(addr, pin, hello, list_first)
                                .map_err(|e| format!("connection {i} of thread {t}: {e}"))
                        })
                        .collect()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(count);
        for w in workers {
            all.extend(w.join().map_err(|_| "an opening thread panicked")??);
        }
        Ok(all)
    })
}

fn open_one_tls(
    addr: SocketAddr,
    pin: &str,
    hello: &[u8],
    list_first: bool,
) -> Result<Stream, String> {
    let sock =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    // As the client does: Hello right behind the handshake's last flight
    // must not wait for an ACK (Nagle).
    sock.set_nodelay(true)
        .and_then(|()| sock.set_read_timeout(Some(Duration::from_secs(10))))
        .map_err(|e| e.to_string())?;
    let (mut s, _) = transport::handshake(sock, Some(pin.to_owned()))
        .map_err(|e| format!("TLS handshake: {e:?}"))?;
    s.write_all(hello)
        .and_then(|()| s.flush())
        .map_err(|e| e.to_string())?;
    match read_frame(&mut s)? {
        Message::Welcome { .. } => {}
        other => return Err(format!("expected Welcome, got {other:?}")),
    }
    if list_first {
        list_once(&mut s)?;
    }
    Ok(s)
}

/// Lists the root and reads the whole answer.
fn list_once(s: &mut (impl Read + Write)) -> Result<(), String> {
    let mut list = Vec::new();
    frame::encode(
        &Message::List {
            path: String::new(),
        },
        &mut list,
    );
    s.write_all(&list)
        .and_then(|()| s.flush())
        .map_err(|e| e.to_string())?;
    loop {
        match read_frame(s)? {
            Message::Entries { last: true, .. } => return Ok(()),
            Message::Entries { .. } => {}
            other => return Err(format!("expected Entries, got {other:?}")),
        }
    }
}

/// An encoded `Hello` frame carrying `token`.
fn hello_frame(token: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode(
        &Message::Hello {
            magic: MAGIC,
            min_version: MIN_PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            flags: 0,
            token: token.to_vec(),
        },
        &mut out,
    );
    out
}

fn read_frame(s: &mut impl Read) -> Result<Message, String> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).map_err(|e| e.to_string())?;
    let len = frame::peek_len(&head)
        .map_err(|e| e.to_string())?
        .unwrap_or(0);
    let mut buf = head.to_vec();
    buf.resize(4 + len, 0);
    s.read_exact(&mut buf[4..]).map_err(|e| e.to_string())?;
    match frame::decode(&buf).map_err(|e| e.to_string())? {
        Some((msg, _)) => Ok(msg),
        None => Err("short frame".into()),
    }
}

/// The `VmRSS` of a process, in KiB.
fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
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
        rlim_cur: want.max(rl.rlim_cur),
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
