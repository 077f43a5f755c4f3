//! The client's byte pipe: a blocking `TcpStream`, plain or wrapped in a
//! rustls `ClientConnection` (TLS 1.3 only, ring provider, the server
//! pinned by fingerprint). The TLS handshake runs here, bounded by the
//! socket's read timeout, and a server that answers the ClientHello with
//! something other than TLS (a `--plain` ftxd, or one too busy to take the
//! connection) is reported as such instead of as a cryptic TLS error.
//! Never prints.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use super::known_hosts::{PinnedVerifier, Seen};
use crate::proto::error::ErrorCode;
use crate::proto::frame;
use crate::proto::message::Message;

/// Server name sent in the ClientHello. The certificate is pinned by
/// fingerprint, so no name is checked; this one is just well-formed.
const SNI_NAME: &str = "ftxd";
/// Bytes of the server's first answer kept to explain a non-TLS reply.
const KEEP_FIRST: usize = 1024;

/// A connected pipe to the server.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// The TCP socket underneath.
    pub fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }

    /// Sets the socket's read timeout.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.socket().set_read_timeout(t)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => match t.read(buf) {
                // A close without close_notify after the server's last
                // frame: the session decides whether it was clean.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    /// Plain TCP gathers the buffers in one system call (an upload's
    /// frame header and data: see `Client::send_file_data`).
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write_vectored(bufs),
            Stream::Tls(t) => t.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if let Stream::Tls(t) = self {
            // A polite end, best effort: the server logs a clean close.
            t.conn.send_close_notify();
            let _ = t.conn.complete_io(&mut t.sock);
        }
    }
}

/// Why the TLS handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    /// The server presented a certificate other than the pinned one.
    Mismatch {
        /// Its fingerprint.
        presented: String,
    },
    /// The server answered in plain ftx frames: an `Error` frame if it sent
    /// one (busy, ...), else nothing useful (a `--plain` server).
    NotTls(Option<(crate::proto::error::ErrorCode, String)>),
    /// Any other failure (network, timeout, bad TLS).
    Other(io::Error),
}

/// Runs the TLS handshake on `sock` with the server pinned to `expected`
/// (`None`: accept any certificate and only record it). Returns the pipe
/// and the fingerprint the server presented.
pub fn handshake(
    sock: TcpStream,
    expected: Option<String>,
) -> Result<(Stream, String), HandshakeError> {
    let (verifier, seen) = PinnedVerifier::new(expected);
    let config = rustls::ClientConfig::builder_with_provider(verifier.provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| HandshakeError::Other(io::Error::other(e)))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let name =
        ServerName::try_from(SNI_NAME).map_err(|e| HandshakeError::Other(io::Error::other(e)))?;
    let mut conn = ClientConnection::new(Arc::new(config), name)
        .map_err(|e| HandshakeError::Other(io::Error::other(e)))?;
    let mut rec = Recording {
        sock,
        first: Vec::new(),
    };
    // Bounded: every blocking read has the socket's timeout, and each
    // round either moves bytes or fails.
    for _ in 0..64 {
        if !conn.is_handshaking() {
            break;
        }
        if let Err(e) = conn.complete_io(&mut rec) {
            return Err(explain(e, &rec.first, &seen));
        }
    }
    if conn.is_handshaking() {
        return Err(HandshakeError::Other(io::Error::other(
            "TLS handshake did not finish",
        )));
    }
    let presented = seen
        .lock()
        .ok()
        .and_then(|s| s.fingerprint.clone())
        .unwrap_or_default();
    Ok((
        Stream::Tls(Box::new(StreamOwned::new(conn, rec.sock))),
        presented,
    ))
}

fn explain(e: io::Error, first: &[u8], seen: &Mutex<Seen>) -> HandshakeError {
    let presented = seen.lock().ok().and_then(|s| s.fingerprint.clone());
    let bad_cert = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
    if bad_cert {
        if let Some(presented) = presented {
            return HandshakeError::Mismatch { presented };
        }
    }
    // TLS records start with a content type 0x14..=0x17; an ftx frame
    // with a length byte of 0.
    if first.first().is_some_and(|b| !(0x14..=0x17).contains(b)) {
        // A plain ftxd answers a ClientHello with a protocol error about
        // the frame length: that is "no TLS", not the server's point.
        let answer = match frame::decode(first) {
            Ok(Some((Message::Error { code, message }, _))) if code != ErrorCode::Protocol => {
                Some((code, message))
            }
            _ => None,
        };
        return HandshakeError::NotTls(answer);
    }
    if first.is_empty() && e.kind() == io::ErrorKind::UnexpectedEof {
        return HandshakeError::Other(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection during the TLS handshake",
        ));
    }
    HandshakeError::Other(e)
}

/// The socket, keeping the first bytes the server sends.
struct Recording {
    sock: TcpStream,
    first: Vec<u8>,
}

impl Read for Recording {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sock.read(buf)?;
        let room = KEEP_FIRST.saturating_sub(self.first.len()).min(n);
        self.first.extend_from_slice(&buf[..room]);
        Ok(n)
    }
}

impl Write for Recording {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}
