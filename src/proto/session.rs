//! STUB of the sans-I/O `ServerSession` so the server compiles on its own
//! branch. The real state machine is written in parallel on `main` and
//! replaces this file at merge: only the public API here is meaningful.
//! It never touches sockets, files or the clock.

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use super::error::ErrorCode;
use super::frame;
use super::message::{Entry, Message};
use super::path::RemotePath;

/// Settings of one server session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Receive window granted to a client sending data.
    pub window: u32,
    /// Silence after which the connection is closed.
    pub idle_timeout: Duration,
    /// Time the client has to complete the handshake.
    pub handshake_timeout: Duration,
    /// Name announced in `Welcome`.
    pub server_name: String,
}

/// A request the driver must answer before asking for the next one.
#[derive(Debug)]
pub enum ServerEvent {
    List {
        path: RemotePath,
    },
    PutStart {
        path: RemotePath,
        size: u64,
        offset: u64,
        force: bool,
    },
    PutData {
        offset: u64,
        data: Vec<u8>,
    },
    PutCommit {
        size: u64,
    },
    PutAbort {
        reason: ErrorCode,
    },
    GetStart {
        path: RemotePath,
        offset: u64,
    },
    GetEnd,
    Mkdir {
        path: RemotePath,
    },
    Remove {
        path: RemotePath,
    },
    Rename {
        from: RemotePath,
        to: RemotePath,
    },
}

/// Stub state: an output buffer and a closed flag.
#[derive(Debug)]
pub struct ServerSession {
    out: Vec<u8>,
    closed: bool,
    deadline: Option<Instant>,
}

impl ServerSession {
    pub fn new(config: SessionConfig, now: Instant) -> ServerSession {
        ServerSession {
            out: Vec::new(),
            closed: false,
            deadline: Some(now + config.handshake_timeout),
        }
    }
    pub fn refuse(code: ErrorCode, message: &str) -> ServerSession {
        let mut out = Vec::new();
        frame::encode(
            &Message::Error {
                code,
                message: message.to_owned(),
            },
            &mut out,
        );
        ServerSession {
            out,
            closed: true,
            deadline: None,
        }
    }
    pub fn handle_input(&mut self, _bytes: &[u8], _now: Instant) {}
    pub fn handle_eof(&mut self) {
        self.closed = true;
    }
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            self.deadline = None;
            self.closed = true;
        }
    }
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        None
    }
    pub fn reply_entries(&mut self, _entries: Vec<Entry>) {}
    pub fn reply_ok(&mut self) {}
    pub fn reply_error(&mut self, _code: ErrorCode, _message: &str) {}
    pub fn accept_put(&mut self, _name: &RemotePath, _offset: u64) {}
    pub fn put_committed(&mut self, _name: &RemotePath, _size: u64) {}
    pub fn accept_get(&mut self, _size: u64, _offset: u64, _mtime: i64) {}
    pub fn wants_data(&self) -> usize {
        0
    }
    pub fn send_data(&mut self, _data: &[u8]) {}
    pub fn poll_transmit(&self) -> &[u8] {
        &self.out
    }
    pub fn consume_transmit(&mut self, n: usize) {
        self.out.drain(..n);
    }
    pub fn poll_deadline(&self) -> Option<Instant> {
        self.deadline
    }
    pub fn wants_read(&self) -> bool {
        !self.closed
    }
    pub fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }
    pub fn is_closed(&self) -> bool {
        self.closed
    }
    pub fn shrink(&mut self) {
        self.out.shrink_to_fit();
    }
}
