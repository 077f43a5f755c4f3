//! A TCP proxy between a client and a server that can corrupt or hold
//! either direction of the stream.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::registry;

/// What a [`Proxy`] does to one direction of each connection it carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tamper {
    /// Invert every bit of the byte at this offset of the stream.
    pub flip_at: Option<u64>,
    /// Stop forwarding at this offset of the stream until [`Proxy::release`].
    pub hold_at: Option<u64>,
}

/// Longest a held direction waits for [`Proxy::release`].
const PROXY_HOLD_LIMIT: Duration = Duration::from_secs(60);

/// A TCP proxy on `127.0.0.1:0` in front of a server, one thread per
/// direction of each connection, that can corrupt or hold either stream.
/// Stopped (every socket shut down) on drop.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
    acceptor: Option<thread::JoinHandle<()>>,
}

#[derive(Default)]
struct ProxyShared {
    stop: AtomicBool,
    streams: Mutex<Vec<TcpStream>>,
    /// Bytes forwarded client → server and server → client, all connections.
    forwarded: [AtomicU64; 2],
    released: AtomicBool,
    holding: AtomicBool,
}

impl Proxy {
    /// Starts a proxy to `target`; `up` acts on client → server bytes,
    /// `down` on server → client bytes.
    pub fn start(target: SocketAddr, up: Tamper, down: Tamper) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        listener.set_nonblocking(true).expect("nonblocking proxy");
        let shared = Arc::new(ProxyShared::default());
        let sh = Arc::clone(&shared);
        let acceptor = thread::spawn(move || {
            while !sh.stop.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    Err(_) => continue,
                };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                for s in [&client, &server] {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_nodelay(true);
                    if let (Ok(mut list), Ok(c)) = (sh.streams.lock(), s.try_clone()) {
                        list.push(c);
                    }
                }
                let (a, b) = (Arc::clone(&sh), Arc::clone(&sh));
                thread::spawn(move || pump(client, server, up, &a, 0));
                thread::spawn(move || pump(s2, c2, down, &b, 1));
            }
        });
        // Clients of the proxy need the target's credentials (the same
        // certificate and token come through it).
        if let Ok(mut r) = registry().lock() {
            if let Some(c) = r.get(&target).cloned() {
                r.insert(addr, c);
            }
        }
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bytes forwarded so far from clients to the server.
    pub fn forwarded_up(&self) -> u64 {
        self.shared.forwarded[0].load(Ordering::SeqCst)
    }

    /// True while some direction waits at its `hold_at` offset.
    pub fn holding(&self) -> bool {
        self.shared.holding.load(Ordering::SeqCst)
    }

    /// Lets held directions go on.
    pub fn release(&self) {
        self.shared.released.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.released.store(true, Ordering::SeqCst);
        if let Ok(list) = self.shared.streams.lock() {
            for s in list.iter() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

/// Copies `from` to `to` until either ends, applying `tamper`; `dir` is 0
/// for client → server, 1 for server → client.
fn pump(mut from: TcpStream, mut to: TcpStream, tamper: Tamper, sh: &ProxyShared, dir: usize) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = 0u64;
    loop {
        let mut room = buf.len();
        if let Some(hold) = tamper.hold_at {
            if pos >= hold && !sh.released.load(Ordering::SeqCst) {
                sh.holding.store(true, Ordering::SeqCst);
                let deadline = Instant::now() + PROXY_HOLD_LIMIT;
                while !sh.released.load(Ordering::SeqCst) && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(2));
                }
                sh.holding.store(false, Ordering::SeqCst);
            } else if pos < hold {
                room = room.min((hold - pos) as usize);
            }
        }
        let n = match from.read(&mut buf[..room]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(at) = tamper.flip_at {
            if at >= pos && at < pos + n as u64 {
                buf[(at - pos) as usize] ^= 0xFF;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        pos += n as u64;
        sh.forwarded[dir].fetch_add(n as u64, Ordering::SeqCst);
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
    let _ = from.shutdown(std::net::Shutdown::Read);
}
