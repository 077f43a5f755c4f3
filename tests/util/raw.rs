//! Raw sockets: frames spoken by hand to `ftxd`, plain or TLS.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ftx::proto::error::{DecodeError, ErrorCode};
use ftx::proto::frame;
use ftx::proto::limits;
use ftx::proto::message::Message;

use super::{creds, LAST_TOKEN, RAW_READ_TIMEOUT};

/// The `Hello` a version-1 client sends, with the token of the server this
/// test thread started last.
pub fn hello() -> Message {
    hello_with(LAST_TOKEN.with(|t| t.borrow().clone()).into_bytes())
}

/// A `Hello` for this build's protocol version carrying `token`.
pub fn hello_with(token: Vec<u8>) -> Message {
    Message::Hello {
        magic: limits::MAGIC,
        min_version: limits::PROTOCOL_VERSION,
        max_version: limits::PROTOCOL_VERSION,
        flags: 0,
        token,
    }
}

/// Encodes one message as a whole frame.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode(msg, &mut out);
    out
}

/// What a raw read produced.
#[derive(Debug)]
pub enum Recv {
    /// A whole frame, decoded.
    Msg(Message),
    /// Clean end of stream.
    Closed,
    /// The connection was reset (the server closed with unread input).
    Reset,
    /// Nothing arrived within [`RAW_READ_TIMEOUT`].
    Timeout,
    /// The server sent bytes that do not decode.
    Bad(DecodeError),
    /// Another I/O error.
    Io(io::ErrorKind),
}

impl Recv {
    /// True for a close of any kind (clean or reset).
    pub fn is_close(&self) -> bool {
        matches!(self, Recv::Closed | Recv::Reset)
    }

    /// The error code if this is an `Error` frame.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Recv::Msg(Message::Error { code, .. }) => Some(*code),
            _ => None,
        }
    }
}

/// A raw connection to `ftxd` that speaks frames by hand: plain TCP, or
/// TLS (pinned to the server's fingerprint) for a TLS server.
pub struct Raw {
    /// The byte pipe (plain or TLS).
    pub stream: ftx::client::transport::Stream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects (no `Hello`); for a TLS server the TLS handshake runs
    /// first. A server that answers in a plain frame instead (busy) leaves
    /// that frame to be received.
    pub fn connect(addr: SocketAddr) -> Raw {
        use ftx::client::transport::{handshake, HandshakeError, Stream};
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(RAW_READ_TIMEOUT))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(RAW_READ_TIMEOUT))
            .expect("set write timeout");
        let _ = stream.set_nodelay(true);
        let Some(fp) = creds(addr).fingerprint else {
            return Raw {
                stream: Stream::Plain(stream),
                buf: Vec::new(),
            };
        };
        let keep = stream.try_clone().expect("clone socket");
        match handshake(stream, Some(fp)) {
            Ok((stream, _)) => Raw {
                stream,
                buf: Vec::new(),
            },
            Err(HandshakeError::NotTls(Some((code, message)))) => Raw {
                stream: Stream::Plain(keep),
                buf: encode(&Message::Error { code, message }),
            },
            Err(HandshakeError::NotTls(None)) => panic!("{addr} answered TLS in plain"),
            Err(HandshakeError::Mismatch { presented }) => {
                panic!("{addr} presented another certificate: {presented}")
            }
            Err(HandshakeError::Other(e)) => panic!("TLS handshake with {addr}: {e}"),
        }
    }

    /// Connects and completes the handshake, panicking unless `Welcome` comes back.
    #[track_caller]
    pub fn handshake(addr: SocketAddr) -> Raw {
        let mut raw = Raw::connect(addr);
        raw.send(&hello_with(creds(addr).token.into_bytes()))
            .expect("send Hello");
        match raw.recv() {
            Recv::Msg(Message::Welcome { version, .. }) => {
                assert_eq!(version, limits::PROTOCOL_VERSION, "server chose {version}");
            }
            other => panic!("expected Welcome after Hello, got {other:?}"),
        }
        raw
    }

    /// Sends one message as a frame.
    pub fn send(&mut self, msg: &Message) -> io::Result<()> {
        self.stream.write_all(&encode(msg))?;
        self.stream.flush()
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Reads the next frame, a close, or a timeout.
    pub fn recv(&mut self) -> Recv {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match frame::decode(&self.buf) {
                Ok(Some((msg, used))) => {
                    self.buf.drain(..used);
                    return Recv::Msg(msg);
                }
                Ok(None) => {}
                Err(e) => return Recv::Bad(e),
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Recv::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => match e.kind() {
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => return Recv::Timeout,
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                        return Recv::Reset
                    }
                    k => return Recv::Io(k),
                },
            }
        }
    }

    /// Reads until the server closes: panics on a timeout, returns the frames seen.
    #[track_caller]
    pub fn recv_until_close(&mut self) -> Vec<Message> {
        let mut msgs = Vec::new();
        loop {
            match self.recv() {
                Recv::Msg(m) => msgs.push(m),
                Recv::Closed | Recv::Reset => return msgs,
                other => panic!(
                    "expected the server to close the connection, got {other:?} after {msgs:?}"
                ),
            }
        }
    }
}

/// Opens a fresh connection, handshakes, sends `msg` and returns the reply.
pub fn raw_request(addr: SocketAddr, msg: &Message) -> Recv {
    let mut raw = Raw::handshake(addr);
    if let Err(e) = raw.send(msg) {
        return Recv::Io(e.kind());
    }
    raw.recv()
}

/// Lists the root through a raw connection and returns the names.
#[track_caller]
pub fn raw_list(raw: &mut Raw, path: &str) -> Vec<String> {
    raw.send(&Message::List {
        path: path.to_owned(),
    })
    .expect("send List");
    let mut names = Vec::new();
    loop {
        match raw.recv() {
            Recv::Msg(Message::Entries { entries, last }) => {
                names.extend(entries.into_iter().map(|e| e.name));
                if last {
                    return names;
                }
            }
            other => panic!("expected Entries for List {path:?}, got {other:?}"),
        }
    }
}
