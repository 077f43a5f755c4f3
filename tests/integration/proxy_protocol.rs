//! ftxd behind a load balancer that speaks the PROXY protocol v2
//! (`--proxy-protocol`): the address a listed balancer names is the
//! client's for the per-address limit and the log; a listed balancer must
//! send the header; nobody else's header is read.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ftx::proto::error::ErrorCode;
use ftx::proto::message::Message;

use crate::util::{creds, encode, hello, hello_with, Raw, Recv, Server};

/// A PROXY v2 header naming `client` (TCP over IPv4), as HAProxy sends it.
fn header(client: &str, server: SocketAddr) -> Vec<u8> {
    let client: SocketAddr = client.parse().unwrap();
    let (SocketAddr::V4(c), SocketAddr::V4(s)) = (client, server) else {
        panic!("IPv4 only here");
    };
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&c.ip().octets());
    h.extend_from_slice(&s.ip().octets());
    h.extend_from_slice(&c.port().to_be_bytes());
    h.extend_from_slice(&s.port().to_be_bytes());
    h
}

/// A balancer's plain connection for `client`: the header, then `Hello`;
/// what the server answers.
fn via_balancer(server: &Server, client: &str) -> (Raw, Recv) {
    let mut raw = Raw::connect(server.addr());
    raw.send_raw(&header(client, server.addr())).unwrap();
    raw.send(&hello()).unwrap();
    let answer = raw.recv();
    (raw, answer)
}

#[test]
fn the_balancer_names_each_client_and_the_limit_counts_them() {
    let server = Server::start(&[
        "--plain",
        "--open",
        "--proxy-protocol",
        "127.0.0.1",
        "--max-per-ip",
        "1",
    ]);
    // Two clients from two networks: both served, through one balancer.
    let (_a, first) = via_balancer(&server, "203.0.113.5:40000");
    assert!(
        matches!(first, Recv::Msg(Message::Welcome { .. })),
        "{first:?}"
    );
    let (_b, second) = via_balancer(&server, "198.51.100.7:40001");
    assert!(
        matches!(second, Recv::Msg(Message::Welcome { .. })),
        "{second:?}"
    );
    // A second one from the first client's network is over its limit.
    let (_c, third) = via_balancer(&server, "203.0.113.9:40002");
    assert_eq!(
        third.error_code(),
        Some(ErrorCode::TooManyFromAddress),
        "{third:?}"
    );
    let logs = server.wait_for_log("198.51.100.7:40001");
    assert!(logs.contains("198.51.100.7:40001"), "{logs}");
}

#[test]
fn a_listed_balancer_must_send_the_header_and_may_check_health() {
    let server = Server::start(&["--plain", "--open", "--proxy-protocol", "127.0.0.1"]);
    // No header: the connection is closed, never served.
    let mut bare = Raw::connect(server.addr());
    bare.send(&hello()).unwrap();
    let answer = bare.recv();
    assert!(
        answer.is_close() || matches!(answer, Recv::Msg(Message::Error { .. })),
        "{answer:?}"
    );
    // LOCAL: the balancer's own health check is served as itself.
    let mut local = header("203.0.113.5:1", server.addr());
    local[12] = 0x20;
    let mut raw = Raw::connect(server.addr());
    raw.send_raw(&local).unwrap();
    raw.send(&hello()).unwrap();
    assert!(matches!(raw.recv(), Recv::Msg(Message::Welcome { .. })));
}

#[test]
fn nobody_else_is_read_for_a_header() {
    // Only 127.0.0.2 is a balancer: a header from 127.0.0.1 is no Hello.
    let server = Server::start(&["--plain", "--open", "--proxy-protocol", "127.0.0.2"]);
    let mut raw = Raw::connect(server.addr());
    raw.send_raw(&header("203.0.113.5:1", server.addr()))
        .unwrap();
    let answer = raw.recv();
    assert_eq!(answer.error_code(), Some(ErrorCode::Protocol), "{answer:?}");
}

#[test]
fn the_header_comes_before_tls() {
    let server = Server::start(&["--proxy-protocol", "127.0.0.1"]);
    let c = creds(server.addr());
    let mut sock = TcpStream::connect(server.addr()).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    sock.write_all(&header("192.0.2.44:5000", server.addr()))
        .unwrap();
    let (mut stream, _) = ftx::client::transport::handshake(sock, c.fingerprint.clone())
        .expect("TLS after the header");
    stream
        .write_all(&encode(&hello_with(c.token.into_bytes())))
        .unwrap();
    stream.flush().unwrap();
    let mut buf = [0u8; 512];
    let n = std::io::Read::read(&mut stream, &mut buf).unwrap();
    assert!(n > 5 && buf[4] == 0x81, "no Welcome: {:?}", &buf[..n]);
    let logs = server.logs();
    assert!(logs.contains("192.0.2.44:5000"), "{logs}");
}
