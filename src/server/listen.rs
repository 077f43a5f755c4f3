//! Binding `ftxd`'s listening socket: address reuse, optionally
//! `SO_REUSEPORT` so several processes share one port, and a deep accept
//! backlog so a burst of clients is queued rather than refused. Only
//! creates the socket; the event loop serves it.

use std::io;
use std::net::TcpListener;

use socket2::{Domain, Protocol, Socket, Type};

use super::config::ServerConfig;

/// Accept backlog asked for (the kernel caps it at `net.core.somaxconn`):
/// a thousand clients connecting at once must all be queued.
const LISTEN_BACKLOG: i32 = 4096;

/// Binds and listens on `config.listen`, with `SO_REUSEPORT` when
/// `config.reuse_port` is set.
pub fn bind(config: &ServerConfig) -> io::Result<TcpListener> {
    bind_addr(config.listen, config.reuse_port)
}

/// Binds the health-check listener (`config.health`), if there is one;
/// with `SO_REUSEPORT` as the main one, so several ftxd sharing a port
/// share their health port too (each answers for the same storage).
pub fn bind_health(config: &ServerConfig) -> io::Result<Option<TcpListener>> {
    config
        .health
        .map(|addr| bind_addr(addr, config.reuse_port))
        .transpose()
}

fn bind_addr(addr: std::net::SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std does on Unix: a restarted server can rebind at once while old
    // connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::config::Settings;

    fn config(reuse_port: bool) -> ServerConfig {
        let settings = Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            reuse_port,
            ..Settings::default()
        };
        ServerConfig::new(settings).unwrap()
    }

    #[test]
    fn reuse_port_lets_two_listeners_share_a_port() {
        let first = bind(&config(true)).unwrap();
        let port = first.local_addr().unwrap().port();
        let mut c = config(true);
        c.listen.set_port(port);
        let second = bind(&c).unwrap();
        assert_eq!(second.local_addr().unwrap().port(), port);
    }

    #[test]
    fn the_health_listener_is_bound_only_when_asked_for() {
        assert!(bind_health(&config(false)).unwrap().is_none());
        let mut c = config(false);
        c.health = Some("127.0.0.1:0".parse().unwrap());
        let health = bind_health(&c).unwrap().unwrap();
        assert_ne!(health.local_addr().unwrap().port(), 0);
    }

    #[test]
    fn without_reuse_port_the_port_is_taken() {
        let first = bind(&config(false)).unwrap();
        let mut c = config(false);
        c.listen.set_port(first.local_addr().unwrap().port());
        assert!(bind(&c).is_err());
    }
}
