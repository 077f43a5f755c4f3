//! A TCP proxy that behaves like a long, narrow link: every byte is held a
//! fixed delay in each direction (order kept) and each direction is capped
//! at a rate, like a real link. Used by `scripts/bench latency` to compare
//! ftx with a raw stream through the same path. Benchmark helper only:
//! std threads (four per connection), no part of ftx itself.
//!
//! ```text
//! delay_proxy LISTEN_ADDR TARGET_ADDR [DELAY_MS] [RATE_MIB_S]
//! ```
//! Prints `delay_proxy listening on ADDR` once ready; runs until killed.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes taken from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Chunks queued per direction: the link's buffer (about 4 MiB, well above
/// the bandwidth-delay product of 100 MiB/s x 10 ms), after which the
/// sender is pushed back, as a router's queue would.
const QUEUE_CHUNKS: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: delay_proxy LISTEN_ADDR TARGET_ADDR [DELAY_MS] [RATE_MIB_S]");
        std::process::exit(2);
    }
    let parsed = (|| -> Result<_, String> {
        let listen: SocketAddr = args[1].parse().map_err(|e| format!("{}: {e}", args[1]))?;
        let target: SocketAddr = args[2].parse().map_err(|e| format!("{}: {e}", args[2]))?;
        let delay_ms: u64 = args
            .get(3)
            .map_or(Ok(10), |s| s.parse())
            .map_err(|e| format!("delay: {e}"))?;
        let rate: f64 = args
            .get(4)
            .map_or(Ok(100.0), |s| s.parse())
            .map_err(|e| format!("rate: {e}"))?;
        Ok((
            listen,
            target,
            Duration::from_millis(delay_ms),
            rate * 1024.0 * 1024.0,
        ))
    })();
    let (listen, target, delay, rate) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    let bound = listener.local_addr().map_or(listen, |a| a);
    println!("delay_proxy listening on {bound}");
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        thread::spawn(move || {
            if let Err(e) = serve(client, target, delay, rate) {
                eprintln!("delay_proxy: {e}");
            }
        });
    }
}

fn serve(client: TcpStream, target: SocketAddr, delay: Duration, rate: f64) -> io::Result<()> {
    let server = TcpStream::connect(target)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let pairs = [(client.try_clone()?, server.try_clone()?), (server, client)];
    let mut handles = Vec::new();
    for (from, to) in pairs {
        let (tx, rx) = sync_channel(QUEUE_CHUNKS);
        handles.push(thread::spawn(move || reader(from, tx)));
        handles.push(thread::spawn(move || writer(to, rx, delay, rate)));
    }
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

/// Takes bytes off one socket, stamping each chunk with its arrival time.
/// An empty chunk means end of stream.
fn reader(mut from: TcpStream, tx: SyncSender<(Instant, Vec<u8>)>) {
    loop {
        let mut buf = vec![0u8; READ_CHUNK];
        let n = match from.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => 0,
        };
        buf.truncate(n);
        if tx.send((Instant::now(), buf)).is_err() || n == 0 {
            return;
        }
    }
}

/// Delivers chunks in order, each no earlier than its arrival plus the
/// delay, and no faster than the rate allows (the link serializes bytes).
fn writer(mut to: TcpStream, rx: Receiver<(Instant, Vec<u8>)>, delay: Duration, rate: f64) {
    let mut link_free = Instant::now();
    while let Ok((arrived, chunk)) = rx.recv() {
        if chunk.is_empty() {
            let _ = to.shutdown(Shutdown::Write);
            return;
        }
        // The chunk is serialized at the rate (after the previous one),
        // then travels the delay.
        let start = link_free.max(arrived);
        link_free = start + Duration::from_secs_f64(chunk.len() as f64 / rate);
        let due = link_free + delay;
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        if to.write_all(&chunk).is_err() {
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
    }
}
