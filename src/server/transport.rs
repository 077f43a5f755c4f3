//! How bytes get between a connection's socket and its session, and who
//! may come in: plain TCP, or TLS as a byte pipe (rustls's tlsserver-mio
//! shape: `read_tls` -> `process_new_packets` -> `reader`, and `writer` ->
//! `write_tls`), plus the [`Security`] every connection shares (the TLS
//! configuration and the token [`Gate`]). Knows nothing of frames or files.
//!
//! A TLS server looks at the first byte before it makes any TLS state: a
//! TLS ClientHello starts with 0x16 (a handshake record), an ftx frame
//! with a length byte of 0. A plain ftx client is told in a plain `Error`
//! frame that the server requires TLS, instead of waiting for a handshake
//! that never comes. Idle connections that never spoke cost no TLS memory.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::ServerConnection;

use super::config::AccessConfig;
use super::tls::Identity;
use super::tokens::{Gate, TokenStore};

/// First byte of a TLS record carrying a handshake message (ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What every connection of one server shares: the TLS configuration and
/// the door. The loop is one thread, so the gate needs no lock.
pub(crate) struct Security {
    /// `None`: `--plain`.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// Token checks and the slow-down of failing addresses.
    pub(crate) gate: RefCell<Gate>,
}

impl Security {
    /// Loads what `access` asks for from the state directory (which the
    /// binary prepared: key, certificate, token file).
    pub(crate) fn load(access: &AccessConfig) -> Result<Security, String> {
        let dir = access.state_dir.as_deref();
        let need_dir = |what: &str| -> Result<&Path, String> {
            dir.ok_or_else(|| format!("{what} needs a state directory (--state-dir)"))
        };
        let tls = if access.tls {
            let dir = need_dir("TLS")?;
            let identity = Identity::load(dir).map_err(|e| e.to_string())?;
            Some(identity.server_config().map_err(|e| e.to_string())?)
        } else {
            None
        };
        let gate = if access.require_token {
            let dir = need_dir("access tokens")?;
            Gate::with_tokens(TokenStore::open(dir).map_err(|e| e.to_string())?)
        } else {
            Gate::open()
        };
        Ok(Security {
            tls,
            gate: RefCell::new(gate),
        })
    }
}

/// What one read from the transport produced.
#[derive(Debug)]
pub(crate) enum Input {
    /// `n` plaintext bytes at the start of the buffer.
    Data(usize),
    /// Bytes moved (TLS records, a handshake step) but no plaintext yet.
    Progress,
    /// Nothing to read until the socket is readable again.
    Idle,
    /// The peer closed.
    Eof,
    /// A plain ftx client reached a TLS server.
    PlainClient,
}

/// The byte pipe of one connection.
pub(crate) enum Transport {
    /// Plain TCP (`--plain`).
    Plain,
    /// TLS server that has not seen the first byte yet.
    Sniff,
    /// TLS, boxed: the connection state is large and idle connections in
    /// `Sniff` should not pay for it.
    Tls(Box<ServerConnection>),
}

impl Transport {
    /// The transport a new connection starts with.
    pub(crate) fn new(security: &Security) -> Transport {
        match security.tls {
            Some(_) => Transport::Sniff,
            None => Transport::Plain,
        }
    }

    /// Reads plaintext into `buf`. `readable` is the socket's readiness
    /// memory (cleared on `WouldBlock`); TLS may hold decrypted bytes even
    /// when the socket has nothing, so those come first.
    pub(crate) fn read(
        &mut self,
        stream: &mut TcpStream,
        readable: &mut bool,
        buf: &mut [u8],
        security: &Security,
    ) -> io::Result<Input> {
        match self {
            Transport::Plain => {
                if !*readable {
                    return Ok(Input::Idle);
                }
                match stream.read(buf) {
                    Ok(0) => Ok(Input::Eof),
                    Ok(n) => Ok(Input::Data(n)),
                    Err(e) => would_block(e, readable),
                }
            }
            Transport::Sniff => {
                if !*readable {
                    return Ok(Input::Idle);
                }
                let mut first = [0u8; 1];
                match stream.peek(&mut first) {
                    Ok(0) => Ok(Input::Eof),
                    Ok(_) if first[0] == TLS_HANDSHAKE_RECORD => {
                        let Some(config) = security.tls.as_ref() else {
                            *self = Transport::Plain;
                            return Ok(Input::Progress);
                        };
                        let conn = ServerConnection::new(Arc::clone(config))
                            .map_err(|e| io::Error::other(e.to_string()))?;
                        *self = Transport::Tls(Box::new(conn));
                        Ok(Input::Progress)
                    }
                    Ok(_) => {
                        *self = Transport::Plain;
                        Ok(Input::PlainClient)
                    }
                    Err(e) => would_block(e, readable),
                }
            }
            Transport::Tls(tls) => {
                match tls.reader().read(buf) {
                    Ok(0) => return Ok(Input::Eof),
                    Ok(n) => return Ok(Input::Data(n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // A TCP close without close_notify: frames carry their
                    // own lengths and transfers their digests, so a
                    // truncation is seen by the session anyway.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Input::Eof),
                    Err(e) => return Err(e),
                }
                if !*readable {
                    return Ok(Input::Idle);
                }
                match tls.read_tls(stream) {
                    // On EOF (0) too: the next read drains what is left,
                    // then reports the end.
                    Ok(_) => {
                        tls.process_new_packets()
                            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                        Ok(Input::Progress)
                    }
                    Err(e) => would_block(e, readable),
                }
            }
        }
    }

    /// Moves `out` (the session's pending output) into the pipe and the
    /// pipe into the socket while it takes bytes. Returns how many bytes of
    /// `out` were taken and whether anything moved.
    pub(crate) fn write(
        &mut self,
        stream: &mut TcpStream,
        writable: &mut bool,
        out: &[u8],
    ) -> io::Result<(usize, bool)> {
        match self {
            Transport::Plain | Transport::Sniff => {
                if !*writable || out.is_empty() {
                    return Ok((0, false));
                }
                match stream.write(out) {
                    Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => Ok((n, true)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        *writable = false;
                        Ok((0, false))
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok((0, true)),
                    Err(e) => Err(e),
                }
            }
            Transport::Tls(tls) => {
                // rustls buffers up to its limit and takes less when full.
                let taken = if out.is_empty() {
                    0
                } else {
                    tls.writer().write(out)?
                };
                let mut moved = taken > 0;
                while *writable && tls.wants_write() {
                    match tls.write_tls(stream) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(_) => moved = true,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => *writable = false,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok((taken, moved))
            }
        }
    }

    /// Whether the pipe itself has bytes for the socket (TLS records,
    /// handshake messages, alerts).
    pub(crate) fn wants_write(&self) -> bool {
        match self {
            Transport::Tls(tls) => tls.wants_write(),
            _ => false,
        }
    }

    /// Whether the pipe itself must read (a TLS handshake in progress).
    pub(crate) fn wants_read(&self) -> bool {
        match self {
            Transport::Tls(tls) => tls.is_handshaking(),
            Transport::Sniff => true,
            Transport::Plain => false,
        }
    }

    /// Queues a TLS close_notify (nothing for plain TCP) before a close.
    pub(crate) fn close_notify(&mut self) {
        if let Transport::Tls(tls) = self {
            tls.send_close_notify();
        }
    }
}

fn would_block(e: io::Error, readable: &mut bool) -> io::Result<Input> {
    match e.kind() {
        io::ErrorKind::WouldBlock => {
            *readable = false;
            Ok(Input::Idle)
        }
        io::ErrorKind::Interrupted => Ok(Input::Progress),
        _ => Err(e),
    }
}
