//! What one idle TLS connection's rustls state keeps on ftxd's heap, by
//! allocation: ftxd's own `ServerConfig`, a pinned client as `ftx` makes
//! it, a handshake through memory, then a `Hello`-sized request and a
//! `Welcome`-sized reply. Measured for rustls's buffered
//! `ServerConnection` (what ftxd used before) and its
//! `UnbufferedServerConnection` (what ftxd uses, with its own buffers
//! freed when idle, as here). Benchmark helper only (see README,
//! Performance); `scripts/bench idle` measures the whole process.
//!
//! ```text
//! cargo run --release --example tls_conn_heap
//! ```
//!
//! Only allocations made inside the server's calls are counted (a flag
//! around them), and only those still live at the end.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ftx::client::known_hosts::PinnedVerifier;
use ftx::server::state::Identity;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::ConnectionState;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

/// Connections measured; the figures are per connection.
const CONNECTIONS: usize = 100;
/// Bytes of the request and the reply exchanged after the handshake.
const HELLO_LEN: usize = 60;
const WELCOME_LEN: usize = 40;
/// Live tracked allocations the table can hold.
const SLOTS: usize = 1 << 14;
/// Room for one TLS record, for the unbuffered driver.
const RECORD_ROOM: usize = 16 * 1024 + 256;

static PTRS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static SIZES: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
}

/// The system allocator, recording the allocations made while
/// `TRACKING` is set (in a fixed table: it must not allocate itself).
struct Recorder;

fn record(p: *mut u8, size: usize) {
    if p.is_null() || !TRACKING.with(Cell::get) {
        return;
    }
    for i in 0..SLOTS {
        if PTRS[i]
            .compare_exchange(0, p as usize, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            SIZES[i].store(size, Ordering::SeqCst);
            return;
        }
    }
}

/// Forgets `p` if it is recorded; returns whether it was.
fn forget(p: *mut u8) -> bool {
    for slot in &PTRS {
        if slot
            .compare_exchange(p as usize, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return true;
        }
    }
    false
}

// SAFETY: every call is passed to `System` unchanged; the table only
// observes pointers.
unsafe impl GlobalAlloc for Recorder {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        record(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        forget(p);
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(p, layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let q = unsafe { System.realloc(p, layout, new_size) };
        if q.is_null() {
            return q;
        }
        let was = forget(p);
        if was {
            // Grown on the server's behalf earlier: still the server's.
            TRACKING.with(|t| {
                let old = t.replace(true);
                record(q, new_size);
                t.set(old);
            });
        } else {
            record(q, new_size);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Recorder = Recorder;

/// Runs `f` as server work: what it allocates is counted.
fn server<T>(f: impl FnOnce() -> T) -> T {
    TRACKING.with(|t| t.set(true));
    let r = f();
    TRACKING.with(|t| t.set(false));
    r
}

/// Sizes of the recorded allocations still live.
fn live() -> Vec<usize> {
    (0..SLOTS)
        .filter(|&i| PTRS[i].load(Ordering::SeqCst) != 0)
        .map(|i| SIZES[i].load(Ordering::SeqCst))
        .collect()
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (identity, _) = Identity::load_or_create(dir.path()).map_err(|e| e.to_string())?;
    let server_config = identity.server_config().map_err(|e| e.to_string())?;
    let (verifier, _) = PinnedVerifier::new(Some(identity.fingerprint()));
    let client_config = Arc::new(
        ClientConfig::builder_with_provider(verifier.provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    );
    println!(
        "size_of: ServerConnection {} B, UnbufferedServerConnection {} B",
        std::mem::size_of::<ServerConnection>(),
        std::mem::size_of::<UnbufferedServerConnection>()
    );

    let mut held = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        held.push(buffered(&server_config, &client_config)?);
    }
    report("buffered ServerConnection (ftxd before)");
    drop(held);

    let mut held = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        held.push(unbuffered(&server_config, &client_config)?);
    }
    report("UnbufferedServerConnection (ftxd)");
    drop(held);
    Ok(())
}

fn report(what: &str) {
    let sizes = live();
    let total: usize = sizes.iter().sum();
    println!(
        "{what}: {} B in {:.1} allocations per connection",
        total / CONNECTIONS,
        sizes.len() as f64 / CONNECTIONS as f64
    );
    let mut by_size = BTreeMap::new();
    for s in sizes {
        *by_size.entry(s).or_insert(0usize) += 1;
    }
    for (size, n) in by_size.iter().rev() {
        println!("  {size:>6} B x {:.2}", *n as f64 / CONNECTIONS as f64);
    }
}

fn client(config: &Arc<ClientConfig>) -> Result<ClientConnection, String> {
    let name = ServerName::try_from("ftxd").map_err(|e| e.to_string())?;
    ClientConnection::new(Arc::clone(config), name).map_err(|e| e.to_string())
}

/// Moves everything `c` has to send into `wire`.
fn client_out(c: &mut ClientConnection, wire: &mut Vec<u8>) -> Result<(), String> {
    while c.wants_write() {
        c.write_tls(wire).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Feeds `wire` to `c`.
fn client_in(c: &mut ClientConnection, wire: &mut Vec<u8>) -> Result<(), String> {
    let mut r = &wire[..];
    while !r.is_empty() {
        c.read_tls(&mut r).map_err(|e| e.to_string())?;
        c.process_new_packets().map_err(|e| e.to_string())?;
    }
    wire.clear();
    Ok(())
}

/// One connection through the buffered API, driven as ftxd's transport
/// did: `read_tls`, `process_new_packets`, `reader`; `writer`, `write_tls`.
fn buffered(
    config: &Arc<ServerConfig>,
    client_config: &Arc<ClientConfig>,
) -> Result<(ClientConnection, Box<ServerConnection>), String> {
    let mut c = client(client_config)?;
    let mut s = server(|| ServerConnection::new(Arc::clone(config)).map(Box::new))
        .map_err(|e| e.to_string())?;
    let mut wire = Vec::new();
    let mut sent_hello = false;
    let mut got = 0;
    for _ in 0..8 {
        if !c.is_handshaking() && !sent_hello {
            c.writer()
                .write_all(&[0; HELLO_LEN])
                .map_err(|e| e.to_string())?;
            sent_hello = true;
        }
        client_out(&mut c, &mut wire)?;
        server(|| -> Result<(), String> {
            let mut r = &wire[..];
            while !r.is_empty() {
                s.read_tls(&mut r).map_err(|e| e.to_string())?;
                s.process_new_packets().map_err(|e| e.to_string())?;
            }
            let mut plain = [0u8; 4096];
            if let Ok(n) = s.reader().read(&mut plain) {
                got += n;
                if got == HELLO_LEN {
                    s.writer()
                        .write_all(&[0; WELCOME_LEN])
                        .map_err(|e| e.to_string())?;
                }
            }
            wire.clear();
            while s.wants_write() {
                s.write_tls(&mut wire).map_err(|e| e.to_string())?;
            }
            Ok(())
        })?;
        client_in(&mut c, &mut wire)?;
    }
    let mut reply = [0u8; WELCOME_LEN];
    c.reader()
        .read_exact(&mut reply)
        .map_err(|e| format!("no reply through the buffered server: {e}"))?;
    Ok((c, s))
}

/// One connection through the unbuffered API, with the caller's buffers
/// dropped at the end, as a server would free them when idle.
fn unbuffered(
    config: &Arc<ServerConfig>,
    client_config: &Arc<ClientConfig>,
) -> Result<(ClientConnection, Box<UnbufferedServerConnection>), String> {
    let mut c = client(client_config)?;
    let mut s = server(|| UnbufferedServerConnection::new(Arc::clone(config)).map(Box::new))
        .map_err(|e| e.to_string())?;
    let mut incoming = Vec::new();
    let mut outgoing = Vec::new();
    let mut sent_hello = false;
    let mut got = 0;
    let mut replied = false;
    for _ in 0..8 {
        if !c.is_handshaking() && !sent_hello {
            c.writer()
                .write_all(&[0; HELLO_LEN])
                .map_err(|e| e.to_string())?;
            sent_hello = true;
        }
        client_out(&mut c, &mut incoming)?;
        server(|| -> Result<(), String> {
            loop {
                let status = s.process_tls_records(&mut incoming);
                let discard = status.discard;
                let mut blocked = false;
                match status.state.map_err(|e| e.to_string())? {
                    ConnectionState::ReadTraffic(mut r) => {
                        while let Some(record) = r.next_record() {
                            got += record.map_err(|e| e.to_string())?.payload.len();
                        }
                    }
                    ConnectionState::EncodeTlsData(mut e) => {
                        let mut room = vec![0u8; RECORD_ROOM];
                        let n = e.encode(&mut room).map_err(|e| e.to_string())?;
                        outgoing.extend_from_slice(&room[..n]);
                    }
                    ConnectionState::TransmitTlsData(t) => t.done(),
                    ConnectionState::WriteTraffic(mut w) => {
                        if got == HELLO_LEN && !replied {
                            let mut room = vec![0u8; RECORD_ROOM];
                            let n = w
                                .encrypt(&[0; WELCOME_LEN], &mut room)
                                .map_err(|e| e.to_string())?;
                            outgoing.extend_from_slice(&room[..n]);
                            replied = true;
                        }
                        blocked = true;
                    }
                    _ => blocked = true,
                }
                incoming.drain(..discard);
                if blocked {
                    return Ok(());
                }
            }
        })?;
        client_in(&mut c, &mut outgoing)?;
    }
    let mut reply = [0u8; WELCOME_LEN];
    c.reader()
        .read_exact(&mut reply)
        .map_err(|e| format!("no reply through the unbuffered server: {e}"))?;
    Ok((c, s))
}
