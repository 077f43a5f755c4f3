//! How bytes get between a connection's socket and its session: plain
//! TCP, or TLS as a byte pipe ([`tls::TlsPipe`]). Knows nothing of frames,
//! files or tokens (who may come in is [`super::access`]).
//!
//! A TLS server looks at the first byte before it makes any TLS state: a
//! TLS ClientHello starts with 0x16 (a handshake record), an ftx frame
//! with a length byte of 0. A plain ftx client is told in a plain `Error`
//! frame that the server requires TLS, instead of waiting for a handshake
//! that never comes. Idle connections that never spoke cost no TLS memory.

pub mod proxy;
mod tls;

use std::io::{self, Read, Write};

use mio::net::TcpStream;

use self::tls::TlsPipe;
use super::access::Security;

/// First byte of a TLS record carrying a handshake message (ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

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
    /// A balancer's PROXY header was read: the client it names, or `None`
    /// (the balancer's own connection, a health check).
    Proxied(Option<std::net::SocketAddr>),
    /// A listed balancer's connection did not start with a PROXY v2
    /// header: why.
    NotProxied(&'static str),
}

/// The byte pipe of one connection.
pub(crate) enum Transport {
    /// Plain TCP (`--plain`).
    Plain,
    /// TLS server that has not seen the first byte yet.
    Sniff,
    /// TLS, boxed: the connection state is large and idle connections in
    /// `Sniff` should not pay for it.
    Tls(Box<TlsPipe>),
    /// A balancer's connection before its PROXY header was read; the
    /// transport that follows it.
    Proxy(Box<ProxyRead>),
}

/// The PROXY header read so far, and what comes after it.
pub(crate) struct ProxyRead {
    buf: Vec<u8>,
    then: Transport,
}

impl Transport {
    /// The transport a new connection starts with.
    pub(crate) fn new(security: &Security) -> Transport {
        match security.tls {
            Some(_) => Transport::Sniff,
            None => Transport::Plain,
        }
    }

    /// The transport of a listed balancer's connection: its PROXY header
    /// first, then as [`Transport::new`].
    pub(crate) fn behind_proxy(security: &Security) -> Transport {
        Transport::Proxy(Box::new(ProxyRead {
            buf: Vec::new(),
            then: Transport::new(security),
        }))
    }

    /// Reads plaintext into `buf`. `readable` is the socket's readiness
    /// memory (cleared on `WouldBlock`); TLS may hold decrypted bytes or
    /// whole records even when the socket has nothing, so those come first.
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
                        *self = Transport::Tls(Box::new(TlsPipe::new(config)?));
                        Ok(Input::Progress)
                    }
                    Ok(_) => {
                        *self = Transport::Plain;
                        Ok(Input::PlainClient)
                    }
                    Err(e) => would_block(e, readable),
                }
            }
            Transport::Tls(tls) => tls.read(stream, readable, buf),
            Transport::Proxy(p) => {
                let need = match proxy::parse(&p.buf) {
                    proxy::Header::Need(n) => n,
                    proxy::Header::Done(_) => 0,
                    proxy::Header::Bad(why) => return Ok(Input::NotProxied(why)),
                };
                if need > 0 {
                    if !*readable {
                        return Ok(Input::Idle);
                    }
                    // Exactly the header's bytes: what follows is the
                    // client's (TLS or frames).
                    let mut chunk = [0u8; 64];
                    match stream.read(&mut chunk[..need.min(64)]) {
                        Ok(0) => return Ok(Input::Eof),
                        Ok(n) => p.buf.extend_from_slice(&chunk[..n]),
                        Err(e) => return would_block(e, readable),
                    }
                }
                match proxy::parse(&p.buf) {
                    proxy::Header::Need(_) => Ok(Input::Progress),
                    proxy::Header::Bad(why) => Ok(Input::NotProxied(why)),
                    proxy::Header::Done(client) => {
                        let then = std::mem::replace(&mut p.then, Transport::Plain);
                        *self = then;
                        Ok(Input::Proxied(client))
                    }
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
            Transport::Plain | Transport::Sniff | Transport::Proxy(_) => {
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
            Transport::Tls(tls) => tls.write(stream, writable, out),
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
            Transport::Tls(tls) => tls.wants_read(),
            Transport::Sniff | Transport::Proxy(_) => true,
            Transport::Plain => false,
        }
    }

    /// Queues a TLS close_notify (nothing for plain TCP) before a close.
    pub(crate) fn close_notify(&mut self) {
        if let Transport::Tls(tls) = self {
            tls.close_notify();
        }
    }

    /// Frees the pipe's buffers that hold nothing (the connection is idle).
    pub(crate) fn shrink(&mut self) {
        if let Transport::Tls(tls) = self {
            tls.shrink();
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
