//! Pump tests: a `ClientSession` and a `ServerSession` connected through
//! memory, bytes delivered in hostile slices, with a fake in-memory store as
//! the server's driver and simulated time. No sockets, no files.

use std::time::{Duration, Instant};

use super::client_session::{ClientEvent, ClientSession, CommandError};
use super::error::{DecodeError, ErrorCode};
use super::frame::{self, FrameReader};
use super::limits::{
    MAGIC, MAX_CHUNK, MAX_FRAME_LEN, MAX_PENDING_OUTPUT, MIN_OUTPUT_CAP, PROTOCOL_VERSION,
};
use super::message::{Entry, EntryKind, Message};
use super::server_session::{PutAccept, ServerEvent, ServerSession, SessionConfig};
use super::testing::MemStore;

fn all_messages() -> Vec<Message> {
    vec![
        Message::Hello {
            magic: MAGIC,
            min_version: 1,
            max_version: 3,
            flags: 7,
            token: b"tok".to_vec(),
        },
        Message::Welcome {
            version: 1,
            flags: 0,
            window: 1 << 20,
            server: "ftxd".into(),
        },
        Message::List { path: "a/b".into() },
        Message::Entries {
            entries: vec![
                Entry {
                    name: "x".into(),
                    kind: EntryKind::File,
                    size: 5,
                    mtime: -3,
                    mode: None,
                },
                Entry {
                    name: "dir ü".into(),
                    kind: EntryKind::Dir,
                    size: 0,
                    mtime: 1_700_000_000,
                    mode: None,
                },
            ],
            last: true,
        },
        Message::Entries {
            entries: vec![Entry {
                name: "m".into(),
                kind: EntryKind::File,
                size: 1,
                mtime: 2,
                mode: Some(0o4755),
            }],
            last: false,
        },
        Message::SetAttrs {
            path: "s".into(),
            flags: 3,
            mode: 0o640,
            mtime: -7,
        },
        Message::Statfs { path: "".into() },
        Message::ListParts { path: "d".into() },
        Message::DiscardPart { path: "d/f".into() },
        Message::Space {
            total: u64::MAX,
            avail: 12,
        },
        Message::Put {
            path: "p".into(),
            size: u64::MAX,
            offset: 3,
            flags: 1,
        },
        Message::PutReady {
            name: "p".into(),
            offset: 0,
            digest: [0; 32],
            partial: 77,
            flags: 1,
        },
        Message::PutDone {
            name: "p_1".into(),
            size: 9,
        },
        Message::Get {
            path: "g".into(),
            offset: 11,
        },
        Message::GetReady {
            size: 1,
            offset: 0,
            mtime: 5,
            digest: [3; 32],
        },
        Message::Mkdir { path: "m".into() },
        Message::Remove { path: "r".into() },
        Message::Rename {
            from: "a".into(),
            to: "b".into(),
        },
        Message::Ok,
        Message::Data {
            offset: 42,
            data: vec![1, 2, 3],
        },
        Message::Data {
            offset: 0,
            data: vec![0xAB; MAX_CHUNK],
        },
        Message::Ack { offset: 77 },
        Message::Done {
            size: 3,
            digest: [9; 32],
        },
        Message::Cancel,
        Message::Error {
            code: ErrorCode::NoSpace,
            message: "full".into(),
        },
        Message::Error {
            code: ErrorCode::Other(999),
            message: String::new(),
        },
    ]
}

#[test]
fn every_message_round_trips() {
    for msg in all_messages() {
        let mut buf = Vec::new();
        frame::encode(&msg, &mut buf);
        let (back, used) = frame::decode(&buf).unwrap().unwrap();
        assert_eq!(back, msg);
        assert_eq!(used, buf.len());
        // Any strict prefix is "need more bytes", never an error.
        for cut in [0, 1, 3, 4, 5, buf.len() - 1]
            .into_iter()
            .filter(|&c| c < buf.len())
        {
            assert_eq!(
                frame::decode(&buf[..cut]).unwrap(),
                None,
                "{msg:?} cut {cut}"
            );
        }
    }
}

#[test]
fn reader_decodes_a_stream_fed_one_byte_at_a_time() {
    let msgs = all_messages();
    let mut stream = Vec::new();
    for m in &msgs {
        frame::encode(m, &mut stream);
    }
    let mut reader = FrameReader::new();
    let mut got = Vec::new();
    for b in &stream {
        reader.push(std::slice::from_ref(b));
        while let Some(m) = reader.next_message().unwrap() {
            got.push(m);
        }
    }
    assert_eq!(got, msgs);
    assert!(reader.check_eof().is_ok());
}

#[test]
fn malformed_frames_are_typed_errors() {
    let too_big = (MAX_FRAME_LEN + 1).to_be_bytes();
    assert_eq!(
        frame::decode(&too_big),
        Err(DecodeError::FrameTooLarge(MAX_FRAME_LEN + 1))
    );
    assert_eq!(frame::decode(&[0, 0, 0, 0]), Err(DecodeError::EmptyFrame));
    assert_eq!(
        frame::decode(&[0, 0, 0, 1, 0x77]),
        Err(DecodeError::UnknownType(0x77))
    );
    assert!(matches!(
        frame::decode(&[0, 0, 0, 2, 0x21, 1]),
        Err(DecodeError::Truncated(_))
    ));
    assert_eq!(
        frame::decode(&[0, 0, 0, 2, 0x94, 1]),
        Err(DecodeError::TrailingBytes(0x94))
    );
    // Invalid UTF-8 in a path.
    assert!(matches!(
        frame::decode(&[0, 0, 0, 5, 0x10, 0, 2, 0xff, 0xfe]),
        Err(DecodeError::BadString(_))
    ));
    // Entries' flags byte has two known bits.
    assert!(matches!(
        frame::decode(&[0, 0, 0, 4, 0x90, 4, 0, 0]),
        Err(DecodeError::BadValue(_))
    ));
    let mut r = FrameReader::new();
    r.push(&[0, 0, 0, 9, 0x10]);
    assert_eq!(r.next_message(), Ok(None));
    assert_eq!(r.check_eof(), Err(DecodeError::UnexpectedEof));
}

// ---- the pump ---------------------------------------------------------

/// Splits deliveries into slices: 1 byte, odd primes, whole buffers.
struct Slicer {
    sizes: Vec<usize>,
    i: usize,
}

impl Slicer {
    fn new(sizes: &[usize]) -> Slicer {
        Slicer {
            sizes: sizes.to_vec(),
            i: 0,
        }
    }
    fn next(&mut self) -> usize {
        let n = self.sizes[self.i % self.sizes.len()];
        self.i += 1;
        n
    }
}

/// A hook that may corrupt bytes on the wire.
type Tamper = Option<Box<dyn FnMut(&mut [u8])>>;

/// A client and a server wired together through memory.
struct Pump {
    client: ClientSession,
    server: ServerSession,
    store: MemStore,
    slicer: Slicer,
    now: Instant,
    /// Bytes on the wire client->server that a test may corrupt.
    tamper_c2s: Tamper,
    tamper_s2c: Tamper,
}

impl Pump {
    fn new(sizes: &[usize]) -> Pump {
        Pump::with(sizes, SessionConfig::default(), MemStore::default())
    }

    fn with(sizes: &[usize], config: SessionConfig, store: MemStore) -> Pump {
        let now = Instant::now();
        let mut p = Pump {
            client: ClientSession::new(Vec::new()),
            server: ServerSession::new(config, now),
            store,
            slicer: Slicer::new(sizes),
            now,
            tamper_c2s: None,
            tamper_s2c: None,
        };
        match p.next_event() {
            ClientEvent::Connected { version, .. } => assert_eq!(version, PROTOCOL_VERSION),
            other => panic!("handshake failed: {other:?}"),
        }
        p
    }

    /// Moves bytes both ways, one slice at a time, until the client has an
    /// event or nothing moves.
    fn next_event(&mut self) -> ClientEvent {
        for _ in 0..10_000_000 {
            if let Some(ev) = self.client.poll_event() {
                return ev;
            }
            let mut moved = false;
            let c2s = self.client.poll_transmit();
            if !c2s.is_empty() {
                let n = self.slicer.next().min(c2s.len());
                let mut bytes = c2s[..n].to_vec();
                if let Some(t) = self.tamper_c2s.as_mut() {
                    t(&mut bytes);
                }
                self.client.consume_transmit(n);
                self.server.handle_input(&bytes, self.now);
                moved = true;
            }
            self.store.drive(&mut self.server);
            let s2c = self.server.poll_transmit();
            if !s2c.is_empty() {
                let n = self.slicer.next().min(s2c.len());
                let mut bytes = s2c[..n].to_vec();
                if let Some(t) = self.tamper_s2c.as_mut() {
                    t(&mut bytes);
                }
                self.server.consume_transmit(n);
                self.client.handle_input(&bytes);
                moved = true;
            }
            self.store.drive(&mut self.server);
            if !moved {
                if self.server.is_closed() {
                    self.client.handle_eof();
                    continue;
                }
                panic!("pump stalled without a client event");
            }
        }
        panic!("pump did not finish");
    }

    fn put(&mut self, name: &str, data: &[u8], force: bool) -> Result<String, ErrorCode> {
        self.client
            .put(name, data.len() as u64, None, force)
            .unwrap();
        let mut sent = 0usize;
        loop {
            match self.next_event_while_sending(data, &mut sent) {
                ClientEvent::PutReady { offset, .. } => assert_eq!(offset, 0),
                ClientEvent::PutDone { name, size } => {
                    assert_eq!(size, data.len() as u64);
                    return Ok(name);
                }
                ClientEvent::Failed(e) | ClientEvent::Closed(e) => return Err(e.code),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn next_event_while_sending(&mut self, data: &[u8], sent: &mut usize) -> ClientEvent {
        loop {
            let want = self.client.wants_data();
            if want > 0 {
                let end = (*sent + want).min(data.len());
                self.client.send_data(&data[*sent..end]);
                *sent = end;
            }
            if let Some(ev) = self.client.poll_event() {
                return ev;
            }
            // Move a little, then offer data again.
            let ev = self.step();
            if let Some(ev) = ev {
                return ev;
            }
        }
    }

    /// One round of byte moving; returns an event if one appeared.
    fn step(&mut self) -> Option<ClientEvent> {
        let c2s = self.client.poll_transmit();
        let mut moved = false;
        if !c2s.is_empty() {
            let n = self.slicer.next().min(c2s.len());
            let mut bytes = c2s[..n].to_vec();
            if let Some(t) = self.tamper_c2s.as_mut() {
                t(&mut bytes);
            }
            self.client.consume_transmit(n);
            self.server.handle_input(&bytes, self.now);
            moved = true;
        }
        self.store.drive(&mut self.server);
        let s2c = self.server.poll_transmit();
        if !s2c.is_empty() {
            let n = self.slicer.next().min(s2c.len());
            let bytes = s2c[..n].to_vec();
            self.server.consume_transmit(n);
            self.client.handle_input(&bytes);
            moved = true;
        }
        if !moved && self.client.wants_data() == 0 {
            if self.server.is_closed() {
                self.client.handle_eof();
            } else {
                return Some(self.next_event());
            }
        }
        self.client.poll_event()
    }

    fn get(&mut self, name: &str) -> Result<Vec<u8>, ErrorCode> {
        self.client.get(name, 0).unwrap();
        let mut out = Vec::new();
        loop {
            match self.next_event() {
                ClientEvent::GetReady { size, offset, .. } => {
                    assert_eq!(offset, 0);
                    out.reserve(size as usize);
                }
                ClientEvent::GetData { offset, len } => {
                    assert_eq!(offset as usize, out.len());
                    assert_eq!(self.client.data().len(), len);
                    out.extend_from_slice(self.client.data());
                }
                ClientEvent::GetDone {
                    size,
                    unchecked: None,
                } => {
                    assert_eq!(size as usize, out.len());
                    return Ok(out);
                }
                ClientEvent::Failed(e) | ClientEvent::Closed(e) => return Err(e.code),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn simple(&mut self) -> Result<(), ErrorCode> {
        match self.next_event() {
            ClientEvent::Ok => Ok(()),
            ClientEvent::Failed(e) | ClientEvent::Closed(e) => Err(e.code),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn list(&mut self, path: &str) -> Result<Vec<Entry>, ErrorCode> {
        self.client.list(path).unwrap();
        match self.next_event() {
            ClientEvent::Listing(v) => Ok(v),
            ClientEvent::Failed(e) | ClientEvent::Closed(e) => Err(e.code),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn pattern(n: usize, seed: u64) -> Vec<u8> {
    super::testing::xorshift_bytes(n, seed)
}

const SLICINGS: &[&[usize]] = &[&[1], &[7, 1, 4093, 3], &[65_537, 13], &[usize::MAX]];

#[test]
fn put_get_round_trips_in_every_slicing() {
    for sizes in SLICINGS {
        let mut p = Pump::new(sizes);
        let lens: &[usize] = if sizes == &[1] {
            &[0, 1, 1000]
        } else {
            &[
                0,
                1,
                MAX_CHUNK - 1,
                MAX_CHUNK,
                MAX_CHUNK + 1,
                3 * MAX_CHUNK + 17,
            ]
        };
        for (i, &len) in lens.iter().enumerate() {
            let data = pattern(len, i as u64 + 1);
            let name = format!("f{i}.bin");
            assert_eq!(
                p.put(&name, &data, false),
                Ok(name.clone()),
                "{sizes:?} {len}"
            );
            assert_eq!(p.get(&name).unwrap(), data, "{sizes:?} {len}");
        }
    }
}

#[test]
fn window_bounds_bytes_in_flight() {
    let config = SessionConfig {
        window: MAX_CHUNK as u32,
        ..SessionConfig::default()
    };
    let mut p = Pump::with(&[usize::MAX], config, MemStore::default());
    let data = pattern(5 * MAX_CHUNK + 3, 9);
    p.client.put("w", data.len() as u64, None, false).unwrap();
    assert!(matches!(p.next_event(), ClientEvent::PutReady { .. }));
    // With a one-chunk window the client offers one chunk, then nothing
    // until the server's Ack arrives.
    assert_eq!(p.client.wants_data(), MAX_CHUNK);
    p.client.send_data(&data[..MAX_CHUNK]);
    assert_eq!(p.client.wants_data(), 0);
    let mut sent = MAX_CHUNK;
    match p.next_event_while_sending(&data, &mut sent) {
        ClientEvent::PutDone { .. } => {}
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(p.get("w").unwrap(), data);
}

#[test]
fn clash_names_and_force() {
    let mut p = Pump::new(&[usize::MAX]);
    assert_eq!(p.put("a.txt", b"one", false), Ok("a.txt".into()));
    assert_eq!(p.put("a.txt", b"two", false), Ok("a_1.txt".into()));
    assert_eq!(p.put("a.txt", b"three", false), Ok("a_2.txt".into()));
    assert_eq!(p.put("a.txt", b"forced", true), Ok("a.txt".into()));
    assert_eq!(p.get("a.txt").unwrap(), b"forced");
    assert_eq!(p.get("a_1.txt").unwrap(), b"two");
    let names: Vec<_> = p.list("").unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["a.txt", "a_1.txt", "a_2.txt"]);
}

#[test]
fn simple_operations_and_their_errors() {
    let mut p = Pump::new(&[3, 1]);
    p.client.mkdir("d").unwrap();
    assert_eq!(p.simple(), Ok(()));
    assert_eq!(p.list("d").map(|v| v.len()), Ok(0));
    assert_eq!(p.list("nope"), Err(ErrorCode::NotFound));
    assert_eq!(p.put("x", b"x", false), Ok("x".into()));
    p.client.rename("x", "y").unwrap();
    assert_eq!(p.simple(), Ok(()));
    p.client.rename("missing", "z").unwrap();
    assert_eq!(p.simple(), Err(ErrorCode::NotFound));
    assert_eq!(p.put("x", b"x2", false), Ok("x".into()));
    p.client.rename("x", "y").unwrap();
    assert_eq!(p.simple(), Err(ErrorCode::Exists));
    p.client.remove("y").unwrap();
    assert_eq!(p.simple(), Ok(()));
    p.client.remove("y").unwrap();
    assert_eq!(p.simple(), Err(ErrorCode::NotFound));
    assert_eq!(p.get("d"), Err(ErrorCode::IsDirectory));
    // As ftxd: a directory takes its name like a file (the shell, not the
    // protocol, reads a directory target as "into it"); only a forced put
    // would replace it, and is refused.
    assert_eq!(p.put("d", b"", false), Ok("d_1".into()));
    assert_eq!(p.put("d", b"", true), Err(ErrorCode::IsDirectory));
    assert_eq!(p.get("missing"), Err(ErrorCode::NotFound));
    // The connection is still usable after every failure.
    assert_eq!(p.get("x").unwrap(), b"x2");
}

#[test]
fn invalid_names_are_refused_and_the_connection_survives() {
    let mut p = Pump::new(&[5]);
    for bad in [
        "../x",
        "/etc/passwd",
        "a/../b",
        "..",
        ".",
        "a//b",
        "a\\b",
        "a\u{1}b",
        ".ftx-tmp",
    ] {
        assert_eq!(p.get(bad), Err(ErrorCode::InvalidName), "{bad:?}");
        assert_eq!(
            p.put(bad, b"x", false),
            Err(ErrorCode::InvalidName),
            "{bad:?}"
        );
        assert_eq!(p.list(bad), Err(ErrorCode::InvalidName), "{bad:?}");
        p.client.mkdir(bad).unwrap();
        assert_eq!(p.simple(), Err(ErrorCode::InvalidName));
        p.client.remove(bad).unwrap();
        assert_eq!(p.simple(), Err(ErrorCode::InvalidName));
        p.client.rename("ok", bad).unwrap();
        assert_eq!(p.simple(), Err(ErrorCode::InvalidName));
    }
    assert_eq!(p.get(""), Err(ErrorCode::InvalidName));
    assert!(p.store.files.is_empty() && p.store.dirs.is_empty());
    assert_eq!(p.put("fine", b"ok", false), Ok("fine".into()));
}

#[test]
fn read_only_too_large_and_no_space() {
    let store = MemStore {
        read_only: true,
        ..MemStore::default()
    };
    let mut p = Pump::with(&[11], SessionConfig::default(), store);
    assert_eq!(p.put("a", b"x", false), Err(ErrorCode::ReadOnly));
    p.client.mkdir("d").unwrap();
    assert_eq!(p.simple(), Err(ErrorCode::ReadOnly));

    let store = MemStore {
        max_size: Some(10),
        ..MemStore::default()
    };
    let mut p = Pump::with(&[11], SessionConfig::default(), store);
    assert_eq!(p.put("a", &[0; 11], false), Err(ErrorCode::TooLarge));
    assert_eq!(p.put("a", &[0; 10], false), Ok("a".into()));

    // Disk fills mid-transfer: the client gets NoSpace, the server drains the
    // data in flight, nothing is stored, and the connection keeps working.
    let store = MemStore {
        fail_write_at: Some((2 * MAX_CHUNK as u64, ErrorCode::NoSpace)),
        ..MemStore::default()
    };
    let mut p = Pump::with(&[usize::MAX], SessionConfig::default(), store);
    let big = pattern(6 * MAX_CHUNK, 3);
    assert_eq!(p.put("big", &big, false), Err(ErrorCode::NoSpace));
    assert!(p.store.files.is_empty() && p.store.upload.is_none());
    // Too little free space for the whole file: refused before any data.
    p.store.fail_write_at = None;
    p.store.space = Some(10);
    assert_eq!(p.put("big", &big, false), Err(ErrorCode::NoSpace));
    assert!(p.store.files.is_empty() && p.store.parts.is_empty());
    assert_eq!(p.put("small", b"tiny", false), Ok("small".into()));
    assert_eq!(p.get("small").unwrap(), b"tiny");
}

#[test]
fn corrupted_data_fails_the_integrity_check_both_ways() {
    // Flip one byte of the file data client -> server.
    let mut p = Pump::new(&[usize::MAX]);
    let data = pattern(100_000, 5);
    let mut flipped = false;
    p.tamper_c2s = Some(Box::new(move |bytes: &mut [u8]| {
        // Data frames are the large deliveries; flip inside one, once.
        if !flipped && bytes.len() > 50_000 {
            bytes[40_000] ^= 0x01;
            flipped = true;
        }
    }));
    assert_eq!(p.put("c", &data, false), Err(ErrorCode::Integrity));
    assert!(p.store.files.is_empty());
    p.tamper_c2s = None;
    assert_eq!(p.put("c", &data, false), Ok("c".into()));

    // And server -> client.
    let mut flipped = false;
    p.tamper_s2c = Some(Box::new(move |bytes: &mut [u8]| {
        if !flipped && bytes.len() > 50_000 {
            bytes[40_000] ^= 0x80;
            flipped = true;
        }
    }));
    assert_eq!(p.get("c"), Err(ErrorCode::Integrity));
    p.tamper_s2c = None;
    assert_eq!(p.get("c").unwrap(), data);
}

#[test]
fn a_driver_that_hashes_downloads_itself_gets_the_servers_digest() {
    let mut p = Pump::new(&[usize::MAX]);
    let data = pattern(3 * MAX_CHUNK + 11, 6);
    assert_eq!(p.put("h", &data, false), Ok("h".into()));
    p.client.hash_downloads_outside();
    // Corrupt one byte on the way: the session no longer notices, it
    // hands the server's digest over unchecked.
    let mut flipped = false;
    p.tamper_s2c = Some(Box::new(move |bytes: &mut [u8]| {
        if !flipped && bytes.len() > 50_000 {
            bytes[40_000] ^= 0x80;
            flipped = true;
        }
    }));
    p.client.get("h", 0).unwrap();
    let mut hasher = blake3::Hasher::new();
    let mut got = Vec::new();
    loop {
        match p.next_event() {
            ClientEvent::GetReady { .. } => {}
            ClientEvent::GetData { len, .. } => {
                assert_eq!(p.client.data().len(), len);
                hasher.update(p.client.data());
                got.extend_from_slice(p.client.data());
            }
            ClientEvent::GetDone { size, unchecked } => {
                assert_eq!(size as usize, data.len());
                assert_eq!(unchecked, Some(*blake3::hash(&data).as_bytes()));
                assert_ne!(unchecked, Some(*hasher.finalize().as_bytes()));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_ne!(got, data);
    assert_eq!(got.len(), data.len());
}

#[test]
fn a_known_digest_is_sent_as_it_is_and_a_computed_one_handed_back() {
    let mut p = Pump::new(&[usize::MAX]);
    let data = pattern(2 * MAX_CHUNK + 3, 9);
    assert_eq!(p.put("k", &data, false), Ok("k".into()));
    // Hashed by the session: the driver gets the digest to remember.
    assert_eq!(p.get("k").unwrap(), data);
    let digest = *blake3::hash(&data).as_bytes();
    assert_eq!(p.store.ended, [Some(digest)]);
    // Known: sent as it is, nothing handed back.
    p.store.known.insert("k".into(), digest);
    assert_eq!(p.get("k").unwrap(), data);
    assert_eq!(p.store.ended[1], None);
    // A wrong "known" digest is what the client checks against: the
    // session did not hash the data itself.
    p.store.known.insert("k".into(), [0; 32]);
    assert_eq!(p.get("k"), Err(ErrorCode::Integrity));
}

#[test]
fn a_get_from_the_end_gives_the_whole_files_digest_and_no_data() {
    let mut p = Pump::new(&[usize::MAX]);
    let data = pattern(MAX_CHUNK + 5, 4);
    assert_eq!(p.put("w", &data, false), Ok("w".into()));
    p.client.hash_downloads_outside();
    let digest = *blake3::hash(&data).as_bytes();
    // Hashed as a prefix, then remembered; the same digest either way.
    for known in [None, Some(digest)] {
        if let Some(d) = known {
            p.store.known.insert("w".into(), d);
        }
        p.client.get("w", data.len() as u64).unwrap();
        match p.next_event() {
            ClientEvent::GetReady {
                size,
                offset,
                digest: got,
                ..
            } => {
                assert_eq!((size, offset), (data.len() as u64, data.len() as u64));
                assert_eq!(got, digest);
            }
            other => panic!("unexpected {other:?}"),
        }
        match p.next_event() {
            ClientEvent::GetDone { size, unchecked } => {
                assert_eq!(size, data.len() as u64);
                assert_eq!(unchecked, Some(digest));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // The connection goes on.
    assert_eq!(p.put("x", b"x", false), Ok("x".into()));
}

#[test]
fn cancel_put_and_get_keeps_the_connection() {
    let mut p = Pump::new(&[usize::MAX]);
    let data = pattern(4 * MAX_CHUNK, 7);
    p.client.put("big", data.len() as u64, None, false).unwrap();
    assert!(matches!(p.next_event(), ClientEvent::PutReady { .. }));
    p.client.send_data(&data[..MAX_CHUNK]);
    p.client.cancel();
    match p.next_event() {
        ClientEvent::Failed(e) => assert_eq!(e.code, ErrorCode::Cancelled),
        other => panic!("unexpected {other:?}"),
    }
    assert!(p.store.files.is_empty() && p.store.upload.is_none());
    assert_eq!(p.put("big", &data, false), Ok("big".into()));

    p.client.get("big", 0).unwrap();
    assert!(matches!(p.next_event(), ClientEvent::GetReady { .. }));
    p.client.cancel();
    match p.next_event() {
        ClientEvent::Failed(e) => assert_eq!(e.code, ErrorCode::Cancelled),
        other => panic!("data or another event after cancel: {other:?}"),
    }
    assert!(p.store.download.is_none());
    assert_eq!(p.get("big").unwrap(), data);
}

/// Feeds raw bytes to a fresh server session and returns the error code it
/// answers with and whether it closed.
fn server_answer(bytes: &[u8]) -> (Option<ErrorCode>, bool) {
    let now = Instant::now();
    let mut s = ServerSession::new(SessionConfig::default(), now);
    s.handle_input(bytes, now);
    let mut store = MemStore::default();
    store.drive(&mut s);
    let mut r = FrameReader::new();
    r.push(s.poll_transmit());
    let mut code = None;
    while let Ok(Some(m)) = r.next_message() {
        if let Message::Error { code: c, .. } = m {
            code = Some(c);
        }
    }
    (code, s.is_closed())
}

/// With `authenticate`, the token goes to the driver before any welcome,
/// and a request glued to a refused `Hello` is never handed out.
#[test]
fn tokens_are_checked_by_the_driver_before_welcome() {
    let config = SessionConfig {
        authenticate: true,
        ..SessionConfig::default()
    };
    for (token, welcomed) in [(&b"good"[..], true), (b"bad", false), (b"", false)] {
        let now = Instant::now();
        let mut s = ServerSession::new(config.clone(), now);
        let mut bytes = Vec::new();
        let hello = Message::Hello {
            magic: MAGIC,
            min_version: PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            flags: 0,
            token: token.to_vec(),
        };
        frame::encode(&hello, &mut bytes);
        frame::encode(&Message::Mkdir { path: "d".into() }, &mut bytes);
        s.handle_input(&bytes, now);
        assert_eq!(
            s.poll_event(),
            Some(ServerEvent::Hello {
                token: token.to_vec()
            })
        );
        // Nothing is answered or handed out until the driver decides.
        assert!(s.poll_event().is_none());
        assert!(s.poll_transmit().is_empty());
        let mut store = MemStore::default();
        store.handle(
            &mut s,
            ServerEvent::Hello {
                token: token.to_vec(),
            },
        );
        let next = s.poll_event();
        let mut r = FrameReader::new();
        r.push(s.poll_transmit());
        let first = r.next_message().unwrap().unwrap();
        if welcomed {
            assert!(matches!(first, Message::Welcome { .. }), "{first:?}");
            assert!(matches!(next, Some(ServerEvent::Mkdir { .. })), "{next:?}");
        } else {
            assert!(
                matches!(
                    first,
                    Message::Error {
                        code: ErrorCode::Unauthorized,
                        ..
                    }
                ),
                "{first:?}"
            );
            assert_eq!(next, None);
            assert!(s.is_closed());
        }
    }
}

fn hello(magic: [u8; 4], min: u16, max: u16) -> Vec<u8> {
    let mut b = Vec::new();
    frame::encode(
        &Message::Hello {
            magic,
            min_version: min,
            max_version: max,
            flags: 0,
            token: vec![],
        },
        &mut b,
    );
    b
}

#[test]
fn hostile_openings_get_typed_errors_and_a_close() {
    assert_eq!(
        server_answer(b"GET / HTTP/1.1\r\n\r\n"),
        (Some(ErrorCode::Protocol), true)
    );
    assert_eq!(server_answer(&[0xff; 8]), (Some(ErrorCode::Protocol), true));
    assert_eq!(
        server_answer(&hello(*b"NOPE", 1, 1)),
        (Some(ErrorCode::Protocol), true)
    );
    assert_eq!(
        server_answer(&hello(MAGIC, PROTOCOL_VERSION + 1, 9)),
        (Some(ErrorCode::Version), true)
    );
    assert_eq!(
        server_answer(&hello(MAGIC, 0, PROTOCOL_VERSION - 1)),
        (Some(ErrorCode::Version), true)
    );
    let mut list_first = Vec::new();
    frame::encode(
        &Message::List {
            path: String::new(),
        },
        &mut list_first,
    );
    assert_eq!(
        server_answer(&list_first),
        (Some(ErrorCode::Protocol), true)
    );
    // A server-only message after a good handshake.
    let mut b = hello(MAGIC, PROTOCOL_VERSION, PROTOCOL_VERSION);
    frame::encode(&Message::Ok, &mut b);
    assert_eq!(server_answer(&b), (Some(ErrorCode::Protocol), true));
    // A good hello alone: welcomed, still open.
    assert_eq!(server_answer(&hello(MAGIC, 1, 5)), (None, false));
    // Data outside a transfer.
    let mut b = hello(MAGIC, PROTOCOL_VERSION, PROTOCOL_VERSION);
    frame::encode(
        &Message::Data {
            offset: 0,
            data: vec![1],
        },
        &mut b,
    );
    assert_eq!(server_answer(&b), (Some(ErrorCode::Protocol), true));
}

#[test]
fn oversized_prefix_is_refused_without_buffering() {
    let now = Instant::now();
    let mut s = ServerSession::new(SessionConfig::default(), now);
    s.handle_input(&hello(MAGIC, PROTOCOL_VERSION, PROTOCOL_VERSION), now);
    s.handle_input(&u32::MAX.to_be_bytes(), now);
    assert!(s.poll_event().is_none());
    assert!(s.is_closed());
    assert!(!s.wants_read());
}

/// Frame limits by state: before the handshake a `Hello`'s size, between
/// transfers a request's, a data chunk's only while an upload's data may
/// flow. A longer length prefix is refused at once, and the room offered
/// for reading stays within the limit, so a client that never finishes
/// its `Hello` holds a few hundred bytes, not a data frame's worth.
#[test]
fn frame_limits_follow_the_state() {
    use crate::proto::limits::{MAX_HELLO_FRAME_LEN, MAX_REQUEST_FRAME_LEN};
    let now = Instant::now();
    let mut s = ServerSession::new(SessionConfig::default(), now);
    assert!(s.input_buffer(MAX_CHUNK).len() <= 4 + MAX_HELLO_FRAME_LEN as usize);
    // The longest legitimate Hello still passes.
    let mut long = Vec::new();
    frame::encode(
        &Message::Hello {
            magic: MAGIC,
            min_version: PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            flags: 0,
            token: vec![b't'; crate::proto::limits::MAX_TOKEN_LEN],
        },
        &mut long,
    );
    assert_eq!(long.len(), 4 + MAX_HELLO_FRAME_LEN as usize);
    assert_eq!(server_answer(&long), (None, false));
    // Half a Hello in: the room offered for the rest stays within a
    // Hello past it, however much the driver asks for.
    let mut half = ServerSession::new(SessionConfig::default(), now);
    half.handle_input(&long[..long.len() / 2], now);
    assert!(
        half.input_buffer(MAX_CHUNK).len() <= (long.len() - long.len() / 2) + long.len(),
        "{}",
        half.input_buffer(MAX_CHUNK).len()
    );
    // One byte more is refused on its length alone.
    let (code, closed) = server_answer(&(MAX_HELLO_FRAME_LEN + 1).to_be_bytes());
    assert_eq!((code, closed), (Some(ErrorCode::Protocol), true));

    // Between requests: a request's size.
    let mut after = hello(MAGIC, PROTOCOL_VERSION, PROTOCOL_VERSION);
    after.extend_from_slice(&(MAX_REQUEST_FRAME_LEN + 1).to_be_bytes());
    assert_eq!(server_answer(&after), (Some(ErrorCode::Protocol), true));
    let mut s = ServerSession::new(SessionConfig::default(), now);
    s.handle_input(&hello(MAGIC, PROTOCOL_VERSION, PROTOCOL_VERSION), now);
    MemStore::default().drive(&mut s);
    assert!(s.input_buffer(MAX_CHUNK).len() <= 4 + MAX_REQUEST_FRAME_LEN as usize);

    // While an upload runs, whole chunks (every put test sends them).
    let mut p = Pump::new(&[usize::MAX]);
    let big = pattern(2 * MAX_CHUNK, 5);
    assert_eq!(p.put("big", &big, false), Ok("big".into()));
    assert_eq!(p.get("big").unwrap(), big);
}

#[test]
fn handshake_and_idle_deadlines() {
    let t0 = Instant::now();
    let config = SessionConfig {
        idle_timeout: Duration::from_secs(30),
        ..SessionConfig::default()
    };
    let mut s = ServerSession::new(config.clone(), t0);
    let d = s.poll_deadline().unwrap();
    assert_eq!(d, t0 + config.handshake_timeout);
    s.handle_timeout(t0 + Duration::from_secs(9));
    assert!(!s.is_closed());
    s.handle_timeout(d);
    assert!(s.is_closed());
    let mut r = FrameReader::new();
    r.push(s.poll_transmit());
    assert!(matches!(
        r.next_message(),
        Ok(Some(Message::Error {
            code: ErrorCode::Timeout,
            ..
        }))
    ));

    let mut s = ServerSession::new(config, t0);
    s.handle_input(
        &hello(MAGIC, PROTOCOL_VERSION, PROTOCOL_VERSION),
        t0 + Duration::from_secs(1),
    );
    assert!(s.poll_event().is_none());
    assert!(!s.is_closed());
    let idle = s.poll_deadline().unwrap();
    assert_eq!(idle, t0 + Duration::from_secs(31));
    s.handle_timeout(idle);
    assert!(s.is_closed());
}

#[test]
fn a_stalled_upload_gets_the_stall_deadline() {
    let t0 = Instant::now();
    let config = SessionConfig {
        idle_timeout: Duration::from_secs(300),
        stall_timeout: Duration::from_secs(5),
        ..SessionConfig::default()
    };
    let mut s = ServerSession::new(config, t0);
    let mut b = hello(MAGIC, PROTOCOL_VERSION, PROTOCOL_VERSION);
    frame::encode(
        &Message::Put {
            path: "p".into(),
            size: 10,
            offset: 0,
            flags: 0,
        },
        &mut b,
    );
    s.handle_input(&b, t0);
    let Some(ServerEvent::PutStart { path, .. }) = s.poll_event() else {
        panic!("expected PutStart");
    };
    s.accept_put(&path, PutAccept::fresh(true, 0));
    assert_eq!(s.poll_deadline(), Some(t0 + Duration::from_secs(5)));
    s.handle_timeout(t0 + Duration::from_secs(5));
    assert!(s.is_closed());
    let mut r = FrameReader::new();
    r.push(s.poll_transmit());
    let mut codes = Vec::new();
    while let Ok(Some(m)) = r.next_message() {
        if let Message::Error { code, message } = m {
            assert!(message.contains("stalled"), "{message}");
            codes.push(code);
        }
    }
    assert_eq!(codes, [ErrorCode::Timeout]);
}

/// A byte now and then does not keep an upload alive: the stall deadline
/// moves only when 64 KiB more arrived, so a trickle times out while a slow
/// but real upload goes on.
#[test]
fn a_trickle_times_out_a_slow_upload_does_not() {
    use crate::proto::server_session::MIN_PROGRESS;
    let stall = Duration::from_secs(60);
    let run = |step: usize, every: Duration| -> (bool, Duration) {
        let t0 = Instant::now();
        let config = SessionConfig {
            stall_timeout: stall,
            ..SessionConfig::default()
        };
        let mut s = ServerSession::new(config, t0);
        let size = 4 * MIN_PROGRESS;
        let mut b = hello(MAGIC, PROTOCOL_VERSION, PROTOCOL_VERSION);
        frame::encode(
            &Message::Put {
                path: "p".into(),
                size,
                offset: 0,
                flags: 0,
            },
            &mut b,
        );
        s.handle_input(&b, t0);
        let mut store = MemStore::default();
        store.drive(&mut s);
        let mut now = t0;
        let mut sent = 0u64;
        while sent < size && !s.is_closed() {
            now += every;
            s.handle_timeout(now);
            if s.is_closed() {
                break;
            }
            let mut data = Vec::new();
            let n = (step as u64).min(size - sent) as usize;
            frame::encode(
                &Message::Data {
                    offset: sent,
                    data: vec![7; n],
                },
                &mut data,
            );
            s.handle_input(&data, now);
            store.drive(&mut s);
            sent += n as u64;
        }
        (s.is_closed(), now - t0)
    };
    // One byte every 10 s: bytes keep coming, yet it ends within a stall.
    let (closed, after) = run(1, Duration::from_secs(10));
    assert!(closed, "a trickle kept the upload alive");
    assert!(
        after <= stall + Duration::from_secs(10),
        "ended after {after:?}"
    );
    // 64 KiB every 50 s: slow, but each step is progress.
    let (closed, _) = run(MIN_PROGRESS as usize, Duration::from_secs(50));
    assert!(!closed, "a slow upload was ended");
}

#[test]
fn eof_mid_upload_aborts_it() {
    let now = Instant::now();
    let mut s = ServerSession::new(SessionConfig::default(), now);
    let mut b = hello(MAGIC, PROTOCOL_VERSION, PROTOCOL_VERSION);
    frame::encode(
        &Message::Put {
            path: "p".into(),
            size: 10,
            offset: 0,
            flags: 0,
        },
        &mut b,
    );
    s.handle_input(&b, now);
    assert!(matches!(s.poll_event(), Some(ServerEvent::PutStart { .. })));
    s.accept_put(
        &super::path::RemotePath::parse("p").unwrap(),
        PutAccept::fresh(true, 0),
    );
    s.handle_input(&[0, 0, 0, 20, 0x20], now);
    assert!(s.poll_event().is_none());
    s.handle_eof();
    assert_eq!(
        s.poll_event(),
        Some(ServerEvent::PutAbort {
            reason: ErrorCode::Protocol
        })
    );
    assert!(s.is_closed());
}

#[test]
fn busy_refusal_reaches_the_client() {
    let mut server = ServerSession::refuse(ErrorCode::Busy, "too many connections", Instant::now());
    let mut client = ClientSession::new(Vec::new());
    client.handle_input(server.poll_transmit());
    let n = server.poll_transmit().len();
    server.consume_transmit(n);
    assert!(server.is_closed());
    match client.poll_event() {
        Some(ClientEvent::Closed(e)) => assert_eq!(e.code, ErrorCode::Busy),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn large_listing_spans_frames() {
    let mut store = MemStore::default();
    for i in 0..2000 {
        store
            .files
            .insert(format!("{i:04}-{}", "n".repeat(200)), vec![]);
    }
    let mut p = Pump::with(&[4096], SessionConfig::default(), store);
    let list = p.list("").unwrap();
    assert_eq!(list.len(), 2000);
    assert!(list[1999].name.starts_with("1999-"));
}

#[test]
fn commands_are_refused_while_busy() {
    let mut c = ClientSession::new(Vec::new());
    assert_eq!(c.list(""), Err(CommandError::Busy));
}

#[test]
fn interrupted_upload_resumes_with_a_checked_prefix() {
    let mut p = Pump::new(&[usize::MAX]);
    let data = pattern(5 * MAX_CHUNK + 99, 21);
    // Interrupt after two chunks: the fake store keeps them as a part.
    p.client
        .put("r.bin", data.len() as u64, None, false)
        .unwrap();
    assert!(matches!(
        p.next_event(),
        ClientEvent::PutReady { offset: 0, .. }
    ));
    p.client.send_data(&data[..2 * MAX_CHUNK]);
    p.client.cancel();
    assert!(matches!(p.next_event(), ClientEvent::Failed(e) if e.code == ErrorCode::Cancelled));
    assert_eq!(p.store.parts["r.bin"].len(), 2 * MAX_CHUNK);

    // A fresh put is told about the part and leaves it alone.
    assert_eq!(p.put("other", b"x", false), Ok("other".into()));
    p.client.put("r.bin", 1, None, false).unwrap();
    match p.next_event() {
        ClientEvent::PutReady { partial, .. } => assert_eq!(partial, 2 * MAX_CHUNK as u64),
        other => panic!("unexpected {other:?}"),
    }
    p.client.send_data(b"z");
    assert!(matches!(p.next_event(), ClientEvent::PutDone { .. }));

    // Resume: the server offers its prefix with a digest the client checks.
    p.client
        .put("r.bin", data.len() as u64, Some(data.len() as u64), false)
        .unwrap();
    let offset = match p.next_event() {
        ClientEvent::PutReady { offset, digest, .. } => {
            assert_eq!(offset, 2 * MAX_CHUNK as u64);
            assert_eq!(digest, *blake3::hash(&data[..offset as usize]).as_bytes());
            offset as usize
        }
        other => panic!("unexpected {other:?}"),
    };
    let mut prefix = blake3::Hasher::new();
    prefix.update(&data[..offset]);
    p.client.resume_with(prefix);
    let mut sent = offset;
    match p.next_event_while_sending(&data, &mut sent) {
        ClientEvent::PutDone { name, size } => {
            assert_eq!(name, "r_1.bin");
            assert_eq!(size, data.len() as u64);
        }
        other => panic!("unexpected {other:?}"),
    }
    // Stored under a clash name (the 1-byte put took r.bin), whole and verified.
    assert_eq!(p.store.files["r.bin"], b"z");
    assert_eq!(p.get("r_1.bin").unwrap(), data);
}

#[test]
fn a_restarted_resume_sends_everything() {
    let mut p = Pump::new(&[7, 4093]);
    p.store.parts.insert("s".into(), b"stale bytes".to_vec());
    let data = pattern(1000, 4);
    // Some(0): use the part slot but start over.
    p.client
        .put("s", data.len() as u64, Some(0), false)
        .unwrap();
    assert!(matches!(
        p.next_event(),
        ClientEvent::PutReady { offset: 0, .. }
    ));
    let mut sent = 0;
    assert!(matches!(
        p.next_event_while_sending(&data, &mut sent),
        ClientEvent::PutDone { .. }
    ));
    assert_eq!(p.get("s").unwrap(), data);
}

#[test]
fn download_resumes_from_an_offset_and_verifies_the_whole_file() {
    let mut p = Pump::new(&[1, 65_537]);
    let data = pattern(3 * MAX_CHUNK + 5, 8);
    assert_eq!(p.put("d", &data, false), Ok("d".into()));
    let held = MAX_CHUNK + 17;
    p.client.get("d", held as u64).unwrap();
    match p.next_event() {
        ClientEvent::GetReady { offset, digest, .. } => {
            assert_eq!(offset, held as u64);
            assert_eq!(digest, *blake3::hash(&data[..held]).as_bytes());
        }
        other => panic!("unexpected {other:?}"),
    }
    let mut prefix = blake3::Hasher::new();
    prefix.update(&data[..held]);
    p.client.resume_with(prefix);
    let mut got = data[..held].to_vec();
    loop {
        match p.next_event() {
            ClientEvent::GetData { offset, len } => {
                assert_eq!(offset as usize, got.len());
                assert_eq!(p.client.data().len(), len);
                got.extend_from_slice(p.client.data());
            }
            ClientEvent::GetDone {
                size,
                unchecked: None,
            } => {
                assert_eq!(size as usize, data.len());
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, data);

    // A wrong local prefix fed as the resume state fails the whole-file check.
    p.client.get("d", 10).unwrap();
    assert!(matches!(p.next_event(), ClientEvent::GetReady { .. }));
    let mut wrong = blake3::Hasher::new();
    wrong.update(b"0123456789");
    p.client.resume_with(wrong);
    loop {
        match p.next_event() {
            ClientEvent::GetData { .. } => {}
            ClientEvent::Failed(e) => {
                assert_eq!(e.code, ErrorCode::Integrity);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // An offset past the end restarts from 0.
    p.client.get("d", data.len() as u64 + 5).unwrap();
    assert!(matches!(
        p.next_event(),
        ClientEvent::GetReady { offset: 0, .. }
    ));
}

/// Protocol version 2: a fresh upload's data goes out with the `Put`
/// itself, before any answer; a refusal that meets data in flight (or an
/// empty file's `Done`, sent at once) drains it, and the connection goes on.
#[test]
fn fresh_upload_data_precedes_put_ready_and_refusals_drain() {
    let mut p = Pump::new(&[usize::MAX]);
    p.client.put("a", 10, None, false).unwrap();
    assert_eq!(p.client.wants_data(), 10);
    p.client.send_data(b"0123456789");
    let mut r = FrameReader::new();
    r.push(p.client.poll_transmit());
    assert!(matches!(r.next_message(), Ok(Some(Message::Put { .. }))));
    let first = r.next_message();
    assert!(matches!(first, Ok(Some(Message::Data { offset: 0, .. }))));
    let done = r.next_message();
    assert!(matches!(done, Ok(Some(Message::Done { size: 10, .. }))));
    assert!(matches!(
        p.next_event(),
        ClientEvent::PutReady { offset: 0, .. }
    ));
    match p.next_event() {
        ClientEvent::PutDone { name, size } => assert_eq!((name.as_str(), size), ("a", 10)),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(p.store.files["a"], b"0123456789");

    let store = MemStore {
        read_only: true,
        ..MemStore::default()
    };
    let mut p = Pump::with(&[7, 1000], SessionConfig::default(), store);
    let big = pattern(3 * MAX_CHUNK, 1);
    assert_eq!(p.put("big", &big, false), Err(ErrorCode::ReadOnly));
    assert_eq!(p.put("empty", b"", false), Err(ErrorCode::ReadOnly));
    assert_eq!(p.put("a/../b", b"xy", false), Err(ErrorCode::InvalidName));
    assert_eq!(p.put("", b"", false), Err(ErrorCode::InvalidName));
    p.client.list("").unwrap();
    assert!(matches!(p.next_event(), ClientEvent::Listing(_)));
    assert!(!p.server.is_closed());
}

/// A resumed `Put` sends nothing before `PutReady`, so its refusal ends the
/// request: the next request is served, whatever refused it (the session
/// checking the name, or the driver).
#[test]
fn a_refused_resume_leaves_the_connection_ready() {
    let store = MemStore {
        read_only: true,
        ..MemStore::default()
    };
    let mut p = Pump::with(&[3, 1000], SessionConfig::default(), store);
    for name in ["../x", "ok"] {
        p.client.put(name, 10, Some(10), false).unwrap();
        assert!(matches!(p.next_event(), ClientEvent::Failed(_)));
        assert!(matches!(p.list(""), Ok(v) if v.is_empty()));
    }
    assert!(!p.server.is_closed());
}

/// Attributes: modes reach a client that asked for them (every `ftx`
/// does), `SetAttrs` and `Statfs` get their answers, setuid/setgid/sticky
/// bits are refused, and each refusal leaves the connection ready.
#[test]
fn attributes_modes_chmod_and_space() {
    let mut store = MemStore::default();
    store.files.insert("f".into(), b"abc".to_vec());
    store.dirs.insert("d".into());
    let mut p = Pump::with(&[5, 4096], SessionConfig::default(), store);
    let list = p.list("").unwrap();
    let modes: Vec<_> = list.iter().map(|e| (e.name.as_str(), e.mode)).collect();
    assert_eq!(modes, [("d", Some(0o755)), ("f", Some(0o644))]);

    p.client.set_attrs("f", Some(0o600), Some(1_000)).unwrap();
    assert_eq!(p.simple(), Ok(()));
    p.client.set_attrs("f", Some(0o4755), None).unwrap();
    assert_eq!(p.simple(), Err(ErrorCode::PermissionDenied));
    p.client.set_attrs("missing", None, Some(5)).unwrap();
    assert_eq!(p.simple(), Err(ErrorCode::NotFound));
    p.client.set_attrs("../f", Some(0o600), None).unwrap();
    assert_eq!(p.simple(), Err(ErrorCode::InvalidName));

    p.store.space = Some(77);
    p.client.statfs("").unwrap();
    assert_eq!(
        p.next_event(),
        ClientEvent::Space {
            total: 1 << 30,
            avail: 77
        }
    );
    p.client.statfs("/abs").unwrap();
    assert!(matches!(p.next_event(), ClientEvent::Failed(e) if e.code == ErrorCode::InvalidName));
    assert_eq!(p.list("d").map(|v| v.len()), Ok(0));
}

/// A client that did not set the feature bit gets listings without modes
/// (an older peer would refuse the unknown flag), and the server announces
/// what it serves either way.
#[test]
fn modes_only_for_a_client_that_reads_them() {
    let mut s = ServerSession::new(SessionConfig::default(), Instant::now());
    // `hello` sends no feature bits.
    let mut input = hello(MAGIC, PROTOCOL_VERSION, PROTOCOL_VERSION);
    frame::encode(&Message::List { path: "".into() }, &mut input);
    s.handle_input(&input, Instant::now());
    let mut store = MemStore::default();
    store.files.insert("f".into(), vec![1]);
    store.drive(&mut s);
    let mut r = FrameReader::new();
    r.push(s.poll_transmit());
    match r.next_message() {
        Ok(Some(Message::Welcome { flags, .. })) => {
            assert_eq!(flags & crate::proto::message::FEATURE_ATTRS, 1)
        }
        other => panic!("unexpected {other:?}"),
    }
    match r.next_message() {
        Ok(Some(Message::Entries {
            entries,
            last: true,
        })) => {
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].mode, None);
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Names in a listing are one component: a server cuts a longer one (a
/// non-UTF-8 name shown lossily grows up to three times) at 255 bytes, on a
/// character boundary, and a client drops a server that sends longer ones
/// (a hostile server could otherwise make it hold 100,000 names of 4 KiB).
#[test]
fn listed_names_are_at_most_one_component_long() {
    use crate::proto::limits::MAX_COMPONENT_LEN;
    let mut store = MemStore::default();
    store.files.insert("é".repeat(200), vec![1]);
    let mut p = Pump::with(&[usize::MAX], SessionConfig::default(), store);
    let list = p.list("").unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].name.len() <= MAX_COMPONENT_LEN);
    assert_eq!(list[0].name, "é".repeat(MAX_COMPONENT_LEN / 2));

    let mut c = ClientSession::new(Vec::new());
    let mut wire = Vec::new();
    for m in [
        Message::Welcome {
            version: PROTOCOL_VERSION,
            flags: 0,
            window: 1 << 20,
            server: "hostile".into(),
        },
        Message::Entries {
            entries: vec![Entry {
                name: "x".repeat(MAX_COMPONENT_LEN + 1),
                kind: EntryKind::File,
                size: 0,
                mtime: 0,
                mode: None,
            }],
            last: true,
        },
    ] {
        frame::encode(&m, &mut wire);
    }
    c.handle_input(&wire[..wire.len() / 3]);
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Connected { .. })
    ));
    c.list("").unwrap();
    c.handle_input(&wire[wire.len() / 3..]);
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Closed(e)) if e.message.contains("overlong")
    ));
}

/// A download to a client that does not read queues at most the session's
/// output cap (and one chunk of it): the default, or the least a server
/// whose connections hold too much output lowers it to.
#[test]
fn the_output_cap_bounds_an_unread_download() {
    for (cap, most) in [
        (usize::MAX, MAX_PENDING_OUTPUT + MAX_CHUNK),
        (0, 2 * MIN_OUTPUT_CAP),
    ] {
        let mut p = Pump::new(&[usize::MAX]);
        let data = pattern(16 * MAX_CHUNK, 4);
        p.put("big", &data, false).unwrap();
        p.server.set_output_cap(cap);
        p.client.get("big", 0).unwrap();
        // The request reaches the server; nothing comes back.
        for _ in 0..100 {
            let c2s = p.client.poll_transmit().to_vec();
            p.client.consume_transmit(c2s.len());
            p.server.handle_input(&c2s, p.now);
            p.store.drive(&mut p.server);
        }
        let queued = p.server.queued_output();
        assert!(
            queued > most / 4 && queued <= most,
            "cap {cap}: {queued} bytes queued, at most {most}"
        );
        // Read on: the whole file arrives all the same.
        p.server.set_output_cap(MAX_PENDING_OUTPUT);
        let mut got = Vec::new();
        loop {
            match p.next_event() {
                ClientEvent::GetReady { .. } => {}
                ClientEvent::GetData { .. } => got.extend_from_slice(p.client.data()),
                ClientEvent::GetDone { .. } => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(got, data);
    }
}

// ---- many requests in flight ------------------------------------------

/// Sends every queued upload's data that the window lets out now.
fn feed_uploads(p: &mut Pump, files: &[(String, Vec<u8>)], next: &mut usize, sent: &mut usize) {
    while *next < files.len() {
        let want = p.client.wants_data();
        if want == 0 {
            return;
        }
        let data = &files[*next].1;
        let end = (*sent + want).min(data.len());
        p.client.send_data(&data[*sent..end]);
        *sent = end;
        if *sent == data.len() {
            return;
        }
    }
}

#[test]
fn pipelined_puts_are_answered_in_order_and_one_refusal_fails_alone() {
    for sizes in [vec![usize::MAX], vec![1, 7, 300, 5000]] {
        let mut p = Pump::new(&sizes);
        assert!(p.client.pipelines());
        let files: Vec<(String, Vec<u8>)> = (0..20)
            .map(|i| {
                // One name the server refuses, in the middle.
                let name = if i == 7 {
                    "bad/../x".to_owned()
                } else {
                    format!("f{i}")
                };
                (name, pattern(i * 997 + 1, i as u64))
            })
            .collect();
        // Every request goes out before the first answer is read.
        for (name, data) in &files {
            p.client.put(name, data.len() as u64, None, false).unwrap();
            p.client.send_data(data);
        }
        assert_eq!(p.client.outstanding(), files.len());
        let mut results = Vec::new();
        while results.len() < files.len() {
            match p.next_event() {
                ClientEvent::PutReady { .. } => {}
                ClientEvent::PutDone { name, size } => results.push(Ok((name, size))),
                ClientEvent::Failed(e) => results.push(Err(e.code)),
                other => panic!("unexpected {other:?}"),
            }
        }
        for (i, ((name, data), got)) in files.iter().zip(&results).enumerate() {
            if i == 7 {
                assert_eq!(got, &Err(ErrorCode::InvalidName));
            } else {
                assert_eq!(got, &Ok((name.clone(), data.len() as u64)));
                assert_eq!(&p.store.files[name], data);
            }
        }
        assert!(p.client.is_idle());
        assert_eq!(p.list("").unwrap().len(), files.len() - 1);
    }
}

#[test]
fn pipelined_uploads_share_one_window() {
    let config = SessionConfig {
        window: MAX_CHUNK as u32,
        ..SessionConfig::default()
    };
    let mut p = Pump::with(&[usize::MAX], config, MemStore::default());
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("w{i}"), pattern(MAX_CHUNK / 2 + i, i as u64)))
        .collect();
    let (mut next, mut sent, mut done) = (0, 0, 0);
    p.client
        .put(&files[0].0, files[0].1.len() as u64, None, false)
        .unwrap();
    while done < files.len() {
        feed_uploads(&mut p, &files, &mut next, &mut sent);
        if next < files.len() && sent == files[next].1.len() {
            next += 1;
            sent = 0;
            if next < files.len() {
                let (name, data) = &files[next];
                p.client.put(name, data.len() as u64, None, false).unwrap();
            }
            continue;
        }
        // Never more unacknowledged bytes than the window, over all uploads.
        let queued = p.client.poll_transmit().len();
        assert!(
            queued <= MAX_CHUNK + 64 * files.len(),
            "{queued} bytes queued"
        );
        if let Some(ev) = p.step() {
            match ev {
                ClientEvent::PutDone { .. } => done += 1,
                ClientEvent::PutReady { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    for (name, data) in &files {
        assert_eq!(&p.store.files[name], data);
    }
}

/// Puts `files` one by one (no pipelining needed to set a test up).
fn store_files(p: &mut Pump, files: &[(String, Vec<u8>)]) {
    for (name, data) in files {
        assert_eq!(p.put(name, data, false), Ok(name.clone()));
    }
}

#[test]
fn pipelined_gets_and_lists_keep_their_order_and_their_acks() {
    // A window smaller than the files: each download needs its `Ack`s while
    // the requests behind it wait at the server.
    let config = SessionConfig {
        window: MAX_CHUNK as u32,
        ..SessionConfig::default()
    };
    for sizes in [vec![usize::MAX], vec![3, 1000, 70_000]] {
        let mut p = Pump::with(&sizes, config.clone(), MemStore::default());
        let files: Vec<(String, Vec<u8>)> = (0..5)
            .map(|i| {
                (
                    format!("g{i}"),
                    pattern(i * 3 * MAX_CHUNK / 2 + 17, i as u64),
                )
            })
            .collect();
        store_files(&mut p, &files);
        for (name, _) in &files {
            p.client.get(name, 0).unwrap();
            p.client.list("").unwrap();
        }
        p.client.get("missing", 0).unwrap();
        p.client.get(&files[1].0, 0).unwrap();
        // No upload may queue behind downloads.
        assert_eq!(p.client.put("x", 1, None, false), Err(CommandError::Busy));
        let mut got: Vec<Result<Vec<u8>, ErrorCode>> = Vec::new();
        let mut listings = 0;
        let mut current = Vec::new();
        while got.len() < files.len() + 2 {
            match p.next_event() {
                ClientEvent::GetReady { offset, .. } => {
                    assert_eq!(offset, 0);
                    current.clear();
                }
                ClientEvent::GetData { offset, .. } => {
                    assert_eq!(offset as usize, current.len());
                    current.extend_from_slice(p.client.data());
                }
                ClientEvent::GetDone { .. } => got.push(Ok(std::mem::take(&mut current))),
                ClientEvent::Listing(v) => {
                    // A listing comes right after the download before it.
                    assert_eq!(listings + 1, got.len());
                    assert_eq!(v.len(), files.len());
                    listings += 1;
                }
                ClientEvent::Failed(e) => got.push(Err(e.code)),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(listings, files.len());
        for (i, (_, data)) in files.iter().enumerate() {
            assert_eq!(got[i].as_ref().unwrap(), data);
        }
        assert_eq!(got[files.len()], Err(ErrorCode::NotFound));
        assert_eq!(got[files.len() + 1].as_ref().unwrap(), &files[1].1);
        assert!(p.client.is_idle());
        // The connection is in step: more transfers work.
        assert_eq!(p.put("after", b"x", false), Ok("after".into()));
        assert_eq!(p.get(&files[4].0).unwrap(), files[4].1);
    }
}

#[test]
fn one_cancel_ends_every_pipelined_download_and_the_acks_stay_counted() {
    let config = SessionConfig {
        window: MAX_CHUNK as u32,
        ..SessionConfig::default()
    };
    for cancel_after in [0usize, 1, 3, 9] {
        let mut p = Pump::with(&[usize::MAX], config.clone(), MemStore::default());
        let files: Vec<(String, Vec<u8>)> = (0..4)
            .map(|i| (format!("c{i}"), pattern(3 * MAX_CHUNK + i, i as u64)))
            .collect();
        store_files(&mut p, &files);
        for (name, _) in &files {
            p.client.get(name, 0).unwrap();
        }
        p.client.list("").unwrap();
        let mut ended = Vec::new();
        let mut events = 0;
        while ended.len() < files.len() + 1 {
            if events == cancel_after {
                p.client.cancel();
            }
            events += 1;
            match p.next_event() {
                ClientEvent::GetReady { .. } | ClientEvent::GetData { .. } => {}
                ClientEvent::GetDone { .. } | ClientEvent::Listing(_) => ended.push(None),
                ClientEvent::Failed(e) => ended.push(Some(e.code)),
                other => panic!("unexpected {other:?}"),
            }
        }
        // Whatever ended early ended well; the rest was cancelled.
        let cancelled = ended.iter().filter(|e| e.is_some()).count();
        assert!(cancelled >= 1, "{ended:?}");
        assert!(ended
            .iter()
            .skip_while(|e| e.is_none())
            .all(|e| *e == Some(ErrorCode::Cancelled)));
        assert!(p.client.is_idle());
        // Late acknowledgments of the cancelled downloads must not count
        // for this one (the server would close on an unsent offset).
        assert_eq!(p.get(&files[3].0).unwrap(), files[3].1);
        assert!(!p.server.is_closed());
    }
}

#[test]
fn pipelining_bounds_hold_on_both_sides() {
    use super::limits::MAX_PIPELINE;
    let mut p = Pump::new(&[usize::MAX]);
    p.put("big", &pattern(4 * MAX_CHUNK, 1), false).unwrap();
    for i in 0..MAX_PIPELINE {
        assert_eq!(p.client.get("big", 0), Ok(()), "request {i}");
    }
    assert_eq!(p.client.list(""), Err(CommandError::Busy));

    // A server closes on a client past the bounds: a download that waits for
    // its acknowledgments, then more requests than it holds.
    let config = SessionConfig {
        window: MAX_CHUNK as u32,
        ..SessionConfig::default()
    };
    let mut p = Pump::with(&[usize::MAX], config, MemStore::default());
    p.put("big", &pattern(4 * MAX_CHUNK, 1), false).unwrap();
    let mut raw = Vec::new();
    for msg in std::iter::once(Message::Get {
        path: "big".into(),
        offset: 0,
    })
    .chain((0..MAX_PIPELINE).map(|_| Message::List { path: "".into() }))
    {
        frame::encode(&msg, &mut raw);
    }
    p.server.handle_input(&raw, p.now);
    p.store.drive(&mut p.server);
    assert!(p.server.is_closed());
    let (code, _) = server_reply_code(p.server.poll_transmit());
    assert_eq!(code, Some(ErrorCode::Protocol));
}

/// The code of the last `Error` frame in `bytes`.
fn server_reply_code(bytes: &[u8]) -> (Option<ErrorCode>, usize) {
    let mut reader = FrameReader::new();
    reader.push(bytes);
    let (mut code, mut frames) = (None, 0);
    while let Ok(Some(f)) = reader.next_frame() {
        frames += 1;
        if let frame::Frame::Message(Message::Error { code: c, .. }) = f {
            code = Some(c);
        }
    }
    (code, frames)
}

#[test]
fn a_download_failing_midway_keeps_the_acks_of_the_next_one_apart() {
    let config = SessionConfig {
        window: MAX_CHUNK as u32,
        ..SessionConfig::default()
    };
    let mut p = Pump::with(&[usize::MAX], config, MemStore::default());
    let a = pattern(4 * MAX_CHUNK, 1);
    let b = pattern(3 * MAX_CHUNK + 5, 2);
    store_files(&mut p, &[("a".into(), a), ("b".into(), b.clone())]);
    p.client.get("a", 0).unwrap();
    p.client.get("b", 0).unwrap();
    // The first download fails at the server after its first frame (a read
    // error), while the client still owes acknowledgments of what it got.
    loop {
        match p.next_event() {
            ClientEvent::GetReady { .. } => {}
            ClientEvent::GetData { .. } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    p.server.reply_error(ErrorCode::Io, "read failed");
    let mut failed = false;
    let mut got = Vec::new();
    loop {
        match p.next_event() {
            ClientEvent::GetData { .. } if !failed => {}
            ClientEvent::Failed(e) if !failed => {
                assert_eq!(e.code, ErrorCode::Io);
                failed = true;
            }
            ClientEvent::GetReady { .. } => got.clear(),
            ClientEvent::GetData { .. } => got.extend_from_slice(p.client.data()),
            ClientEvent::GetDone { .. } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, b);
    assert!(!p.server.is_closed());
    assert_eq!(p.list("").unwrap().len(), 2);
}

#[test]
fn a_client_that_never_acknowledges_is_closed_at_the_pipelining_bound() {
    use super::limits::MAX_PIPELINE;
    use super::message::FEATURE_PIPELINE;
    let now = Instant::now();
    let mut store = MemStore::default();
    store.files.insert("one".into(), b"1".to_vec());
    let mut server = ServerSession::new(SessionConfig::default(), now);
    let mut raw = Vec::new();
    frame::encode(
        &Message::Hello {
            magic: MAGIC,
            min_version: PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            flags: FEATURE_PIPELINE,
            token: vec![],
        },
        &mut raw,
    );
    server.handle_input(&raw, now);
    store.drive(&mut server);
    // Each one-byte download ends at once (asked one after the other, so
    // no request waits); none is ever acknowledged.
    for _ in 0..MAX_PIPELINE + 1 {
        let mut get = Vec::new();
        frame::encode(
            &Message::Get {
                path: "one".into(),
                offset: 0,
            },
            &mut get,
        );
        server.handle_input(&get, now);
        store.drive(&mut server);
    }
    assert!(server.is_closed());
    let mut out = Vec::new();
    while !server.poll_transmit().is_empty() {
        let n = server.poll_transmit().len();
        out.extend_from_slice(server.poll_transmit());
        server.consume_transmit(n);
    }
    let (code, frames) = server_reply_code(&out);
    assert_eq!(code, Some(ErrorCode::Protocol));
    // Welcome, GetReady, Data and Done for each, then the error once the
    // 65th ended owing what 64 others still owe.
    assert_eq!(frames, 1 + 3 * (MAX_PIPELINE + 1) + 1);
}

#[test]
fn a_pipelining_clients_uploads_commit_while_the_next_arrive_and_answer_in_order() {
    let now = Instant::now();
    let mut client = ClientSession::new(Vec::new());
    let mut server = ServerSession::new(SessionConfig::default(), now);
    // Moves every byte both ways; the driver accepts uploads at once and
    // keeps their commits pending, as ftxd's disk helpers do for a while.
    let mut commits = 0;
    let mut pump = |client: &mut ClientSession, server: &mut ServerSession| {
        for _ in 0..100 {
            let c2s = client.poll_transmit().to_vec();
            client.consume_transmit(c2s.len());
            server.handle_input(&c2s, now);
            while let Some(ev) = server.poll_event() {
                match ev {
                    ServerEvent::PutStart { path, .. } => {
                        server.accept_put(&path, PutAccept::fresh(true, 0))
                    }
                    ServerEvent::PutCommit { .. } => commits += 1,
                    ServerEvent::List { .. } => server.reply_entries(Vec::new()),
                    _ => {}
                }
            }
            let s2c = server.poll_transmit().to_vec();
            server.consume_transmit(s2c.len());
            client.handle_input(&s2c);
        }
    };
    pump(&mut client, &mut server);
    assert!(matches!(
        client.poll_event(),
        Some(ClientEvent::Connected { .. })
    ));
    for name in ["a", "b", "c"] {
        client.put(name, 4, None, false).unwrap();
        client.send_data(b"data");
    }
    client.list("").unwrap();
    pump(&mut client, &mut server);
    // All three arrived and wait for their commits; the listing waits too.
    assert_eq!(server.commits_under_way(), 3);
    let mut seen = Vec::new();
    while let Some(ev) = client.poll_event() {
        seen.push(ev);
    }
    // Only the first upload's PutReady went out before its commit began.
    assert!(
        matches!(&seen[..], [ClientEvent::PutReady { name, .. }] if name == "a"),
        "{seen:?}"
    );
    let stored = |n: &str| super::path::RemotePath::parse(n).unwrap();
    server.put_committed(&stored("a"), 4);
    server.commit_failed(ErrorCode::NoSpace, "no space");
    server.put_committed(&stored("c_1"), 4);
    pump(&mut client, &mut server);
    let mut order = Vec::new();
    while let Some(ev) = client.poll_event() {
        order.push(match ev {
            ClientEvent::PutReady { name, .. } => format!("ready {name}"),
            ClientEvent::PutDone { name, .. } => format!("done {name}"),
            ClientEvent::Failed(e) => format!("failed {:?}", e.code),
            ClientEvent::Listing(v) => format!("listing {}", v.len()),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(
        order,
        [
            "done a",
            "ready b",
            "failed NoSpace",
            "ready c",
            "done c_1",
            "listing 0"
        ]
    );
    assert_eq!(commits, 3);
    assert_eq!(server.commits_under_way(), 0);
    assert!(client.is_idle() && !server.is_closed());
}

#[test]
fn an_upload_waiting_behind_a_slow_commit_is_not_stalled() {
    let now = Instant::now();
    let config = SessionConfig::default();
    let (stall, idle) = (config.stall_timeout, config.idle_timeout);
    let mut client = ClientSession::new(Vec::new());
    let mut server = ServerSession::new(config, now);
    let pump = |client: &mut ClientSession, server: &mut ServerSession| {
        for _ in 0..50 {
            let c2s = client.poll_transmit().to_vec();
            client.consume_transmit(c2s.len());
            server.handle_input(&c2s, now);
            while let Some(ev) = server.poll_event() {
                if let ServerEvent::PutStart { path, .. } = ev {
                    server.accept_put(&path, PutAccept::fresh(true, 0));
                }
            }
            let s2c = server.poll_transmit().to_vec();
            server.consume_transmit(s2c.len());
            client.handle_input(&s2c);
        }
    };
    pump(&mut client, &mut server);
    while client.poll_event().is_some() {}
    client.put("a", 1, None, false).unwrap();
    client.send_data(b"a");
    // The next upload is part way when the first one's commit is slow.
    client.put("b", 1 << 20, None, false).unwrap();
    client.send_data(&[7; 1000]);
    pump(&mut client, &mut server);
    assert_eq!(server.commits_under_way(), 1);
    server.handle_timeout(now + stall + Duration::from_secs(1));
    assert!(!server.is_closed(), "stalled while its answers were held");
    server.handle_timeout(now + idle + Duration::from_secs(1));
    assert!(server.is_closed(), "the idle deadline still holds");
}
