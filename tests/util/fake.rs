//! A scripted stand-in for `ftxd`, for what a real one never does: a server
//! without a feature bit (an older `ftxd`), or a refusal worded in a way
//! the test needs to see handled. It speaks plain frames on `127.0.0.1`,
//! takes one connection, answers `Hello` with a `Welcome` carrying the
//! given feature bits, then hands every frame the client sends to the
//! test's closure and writes back what it returns. Every frame received is
//! recorded, so a test can check what the client sent (and what it never
//! sent). [`super::register_plain`] makes `ftx` reach it with `--plain`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use ftx::proto::frame;
use ftx::proto::limits::{MIN_WINDOW, PROTOCOL_VERSION};
use ftx::proto::message::Message;

use super::{encode, register_plain};

/// How long the fake waits for the client's next frame before it gives up.
const FAKE_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A scripted server listening on `127.0.0.1:0`.
pub struct FakeServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Message>>>,
}

impl FakeServer {
    /// Starts a fake announcing `features` and `name` in its `Welcome`;
    /// `answer` gives the frames to send back for each frame received
    /// after `Hello` (none for `Data`, say).
    pub fn start(
        features: u32,
        name: &str,
        mut answer: impl FnMut(&Message) -> Vec<Message> + Send + 'static,
    ) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        let addr = listener.local_addr().expect("fake server addr");
        register_plain(addr);
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let name = name.to_owned();
        thread::spawn(move || {
            let Ok((mut sock, _)) = listener.accept() else {
                return;
            };
            sock.set_read_timeout(Some(FAKE_READ_TIMEOUT)).ok();
            let mut buf = Vec::new();
            let mut welcomed = false;
            loop {
                let msg = match frame::decode(&buf) {
                    Ok(Some((msg, used))) => {
                        buf.drain(..used);
                        msg
                    }
                    Ok(None) => {
                        let mut chunk = [0u8; 64 * 1024];
                        match sock.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    }
                    Err(_) => return,
                };
                let replies = if welcomed {
                    if let Ok(mut log) = log.lock() {
                        log.push(msg.clone());
                    }
                    answer(&msg)
                } else {
                    welcomed = true;
                    vec![Message::Welcome {
                        version: PROTOCOL_VERSION,
                        flags: features,
                        window: MIN_WINDOW,
                        server: name.clone(),
                    }]
                };
                for reply in replies {
                    if sock.write_all(&encode(&reply)).is_err() {
                        return;
                    }
                }
            }
        });
        FakeServer { addr, received }
    }

    /// `HOST:PORT` for `ftx`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Every frame the client sent after its `Hello`, so far.
    pub fn received(&self) -> Vec<Message> {
        self.received.lock().map(|l| l.clone()).unwrap_or_default()
    }
}
