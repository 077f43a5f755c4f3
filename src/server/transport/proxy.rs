//! The PROXY protocol, version 2 (HAProxy's binary header): a load
//! balancer listed with `--proxy-protocol` opens each connection with it
//! to say which client it carries. Only the header: read before anything
//! else (TLS included), exactly its bytes, never more.
//!
//! ```text
//! 12 bytes  \r\n\r\n\0\r\nQUIT\n
//! 1 byte    version 2 (high nibble), command: 0 LOCAL, 1 PROXY
//! 1 byte    family and transport: 0x11 TCP over IPv4, 0x21 TCP over IPv6
//! 2 bytes   length of what follows (big-endian)
//! IPv4      source, destination (4 bytes each), source port, destination port
//! IPv6      source, destination (16 bytes each), source port, destination port
//! then      type-length-value extensions, skipped
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The header's first twelve bytes.
const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version and command, family, length.
pub(crate) const FIXED_LEN: usize = 16;
/// Longest header taken (HAProxy's own limit for what follows the
/// fixed part is far below it unless many extensions are configured).
const MAX_LEN: usize = 1024;

/// What the bytes read so far make.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Header {
    /// This many more bytes are needed.
    Need(usize),
    /// Complete: the client's address, or `None` when the balancer speaks
    /// for itself (a `LOCAL` health check) or names no TCP address.
    Done(Option<SocketAddr>),
    /// Not a PROXY v2 header, or one too long.
    Bad(&'static str),
}

/// Reads `buf` (the connection's first bytes, never more than the header)
/// as a PROXY v2 header.
pub(crate) fn parse(buf: &[u8]) -> Header {
    let known = buf.len().min(SIGNATURE.len());
    if buf[..known] != SIGNATURE[..known] {
        return Header::Bad("not a PROXY protocol v2 header");
    }
    if buf.len() < FIXED_LEN {
        return Header::Need(FIXED_LEN - buf.len());
    }
    if buf[12] >> 4 != 2 {
        return Header::Bad("not PROXY protocol version 2");
    }
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if FIXED_LEN + len > MAX_LEN {
        return Header::Bad("PROXY protocol header too long");
    }
    if buf.len() < FIXED_LEN + len {
        return Header::Need(FIXED_LEN + len - buf.len());
    }
    let body = &buf[FIXED_LEN..];
    match (buf[12] & 0x0f, buf[13]) {
        (0, _) => Header::Done(None),
        (1, 0x11) if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let port = u16::from_be_bytes([body[8], body[9]]);
            Header::Done(Some(SocketAddr::new(IpAddr::V4(ip), port)))
        }
        (1, 0x21) if body.len() >= 36 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&body[..16]);
            let port = u16::from_be_bytes([body[32], body[33]]);
            Header::Done(Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(octets)),
                port,
            )))
        }
        (1, 0x11 | 0x21) => Header::Bad("PROXY protocol addresses cut short"),
        // UNSPEC, UDP, Unix sockets: no TCP client to name.
        (1, _) => Header::Done(None),
        _ => Header::Bad("unknown PROXY protocol command"),
    }
}

/// A PROXY v2 header for `client` (the tests speak as a balancer with it).
#[cfg(test)]
fn encode(client: SocketAddr, server: SocketAddr) -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    out.push(0x21);
    match (client, server) {
        (SocketAddr::V4(c), SocketAddr::V4(s)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&c.ip().octets());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&c.port().to_be_bytes());
            out.extend_from_slice(&s.port().to_be_bytes());
        }
        (c, s) => {
            let v6 = |a: SocketAddr| match a.ip() {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(c).octets());
            out.extend_from_slice(&v6(s).octets());
            out.extend_from_slice(&c.port().to_be_bytes());
            out.extend_from_slice(&s.port().to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_name_the_client_a_byte_at_a_time() {
        let client: SocketAddr = "203.0.113.7:40000".parse().unwrap();
        let server: SocketAddr = "10.0.0.1:9999".parse().unwrap();
        for (c, s) in [
            (client, server),
            (
                "[2001:db8::7]:5".parse().unwrap(),
                "[2001:db8::1]:9999".parse().unwrap(),
            ),
        ] {
            let h = encode(c, s);
            for i in 1..h.len() {
                assert!(matches!(parse(&h[..i]), Header::Need(n) if n > 0), "at {i}");
            }
            assert_eq!(parse(&h), Header::Done(Some(c)));
        }
        // LOCAL: the balancer's own connection (a health check).
        let mut local = encode(client, server);
        local[12] = 0x20;
        assert_eq!(parse(&local), Header::Done(None));
    }

    #[test]
    fn anything_else_is_refused() {
        assert!(matches!(parse(b"\0\0\0\x10"), Header::Bad(_)));
        assert!(matches!(parse(b"PROXY TCP4 1.2.3.4"), Header::Bad(_)));
        let mut v1 = encode("1.2.3.4:1".parse().unwrap(), "5.6.7.8:2".parse().unwrap());
        v1[12] = 0x11;
        assert!(matches!(parse(&v1), Header::Bad(_)));
        let mut long = encode("1.2.3.4:1".parse().unwrap(), "5.6.7.8:2".parse().unwrap());
        long[14..16].copy_from_slice(&2000u16.to_be_bytes());
        assert!(matches!(parse(&long[..16]), Header::Bad(_)));
        let mut short = encode("1.2.3.4:1".parse().unwrap(), "5.6.7.8:2".parse().unwrap());
        short[14..16].copy_from_slice(&4u16.to_be_bytes());
        assert!(matches!(parse(&short[..20]), Header::Bad(_)));
    }
}
