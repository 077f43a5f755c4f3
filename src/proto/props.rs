//! Property tests: every message survives encode/decode, and no byte
//! stream makes the frame reader or either session panic, loop, or emit a
//! frame that does not decode (the harnesses are in [`super::testing`],
//! shared with the fuzz targets in `tests/fuzz/`).

use proptest::collection::vec;
use proptest::prelude::*;

use super::error::ErrorCode;
use super::frame::{self, FrameReader};
use super::limits::{FRAME_HEADER_LEN, MAX_FRAME_LEN};
use super::message::{Entry, EntryKind, Message, PUT_FORCE};
use super::testing::{run_client, run_server};

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, control characters included: the codec carries them.
    proptest::string::string_regex("(?s).{0,40}").expect("valid regex")
}

fn code() -> impl Strategy<Value = ErrorCode> {
    any::<u16>().prop_map(ErrorCode::from_u16)
}

fn entry() -> impl Strategy<Value = Entry> {
    (text(), 0u8..4, any::<u64>(), any::<i64>()).prop_map(|(name, k, size, mtime)| Entry {
        name,
        kind: [
            EntryKind::File,
            EntryKind::Dir,
            EntryKind::Symlink,
            EntryKind::Other,
        ][k as usize],
        size,
        mtime,
        mode: None,
    })
}

/// Every variant of [`Message`], with fields anywhere in their valid range.
fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<[u8; 4]>(),
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            vec(any::<u8>(), 0..32)
        )
            .prop_map(
                |(magic, min_version, max_version, flags, token)| Message::Hello {
                    magic,
                    min_version,
                    max_version,
                    flags,
                    token
                }
            ),
        (any::<u16>(), any::<u32>(), any::<u32>(), text()).prop_map(
            |(version, flags, window, server)| Message::Welcome {
                version,
                flags,
                window,
                server
            }
        ),
        text().prop_map(|path| Message::List { path }),
        (vec(entry(), 0..20), any::<bool>())
            .prop_map(|(entries, last)| Message::Entries { entries, last }),
        // Modes go on the wire for every entry or for none.
        (vec(entry(), 1..20), any::<u16>(), any::<bool>()).prop_map(|(entries, mode, last)| {
            let entries = entries
                .into_iter()
                .map(|e| Entry {
                    mode: Some(mode),
                    ..e
                })
                .collect();
            Message::Entries { entries, last }
        }),
        (text(), 0u8..4, any::<u16>(), any::<i64>()).prop_map(|(path, flags, mode, mtime)| {
            Message::SetAttrs {
                path,
                flags,
                mode,
                mtime,
            }
        }),
        text().prop_map(|path| Message::Statfs { path }),
        text().prop_map(|path| Message::ListParts { path }),
        text().prop_map(|path| Message::DiscardPart { path }),
        (any::<u64>(), any::<u64>()).prop_map(|(total, avail)| Message::Space { total, avail }),
        (text(), any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(path, size, offset, f)| {
            Message::Put {
                path,
                size,
                offset,
                flags: if f { PUT_FORCE } else { 0 },
            }
        }),
        (
            text(),
            any::<u64>(),
            any::<[u8; 32]>(),
            any::<u64>(),
            any::<u8>()
        )
            .prop_map(|(name, offset, digest, partial, flags)| Message::PutReady {
                name,
                offset,
                digest,
                partial,
                flags,
            }),
        (text(), any::<u64>()).prop_map(|(name, size)| Message::PutDone { name, size }),
        (text(), any::<u64>()).prop_map(|(path, offset)| Message::Get { path, offset }),
        (any::<u64>(), any::<u64>(), any::<i64>(), any::<[u8; 32]>()).prop_map(
            |(size, offset, mtime, digest)| Message::GetReady {
                size,
                offset,
                mtime,
                digest,
            }
        ),
        text().prop_map(|path| Message::Mkdir { path }),
        text().prop_map(|path| Message::Remove { path }),
        (text(), text()).prop_map(|(from, to)| Message::Rename { from, to }),
        Just(Message::Ok),
        (any::<u64>(), vec(any::<u8>(), 0..512))
            .prop_map(|(offset, data)| Message::Data { offset, data }),
        any::<u64>().prop_map(|offset| Message::Ack { offset }),
        (any::<u64>(), any::<[u8; 32]>()).prop_map(|(size, digest)| Message::Done { size, digest }),
        Just(Message::Cancel),
        (code(), text()).prop_map(|(code, message)| Message::Error { code, message }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_message_round_trips(msg in message(), cut in 1usize..64) {
        let mut wire = Vec::new();
        frame::encode(&msg, &mut wire);
        prop_assert!(wire.len() <= FRAME_HEADER_LEN + MAX_FRAME_LEN as usize);
        let (back, used) = frame::decode(&wire).expect("decodes").expect("whole");
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(&back, &msg);
        // Cut anywhere, the reader reassembles the same message.
        let mut r = FrameReader::new();
        let mut got = Vec::new();
        for piece in wire.chunks(cut) {
            r.push(piece);
            while let Some(m) = r.next_message().expect("decodes") {
                got.push(m);
            }
        }
        prop_assert_eq!(got, vec![msg]);
        prop_assert!(r.check_eof().is_ok());
    }

    #[test]
    fn any_bytes_give_a_message_or_a_typed_error(bytes in vec(any::<u8>(), 0..2048), cut in 1usize..100) {
        let mut r = FrameReader::new();
        'feed: for piece in bytes.chunks(cut) {
            r.push(piece);
            loop {
                match r.next_message() {
                    Ok(Some(m)) => {
                        // What decodes re-encodes to a frame that decodes the same.
                        let mut wire = Vec::new();
                        frame::encode(&m, &mut wire);
                        let again = frame::decode(&wire).expect("re-decodes").expect("whole").0;
                        prop_assert_eq!(again, m);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        prop_assert!(!e.to_string().is_empty());
                        break 'feed;
                    }
                }
            }
        }
    }

    #[test]
    fn server_session_survives_any_byte_stream(bytes in vec(any::<u8>(), 0..4096), cuts in vec(any::<u8>(), 1..8)) {
        run_server(&bytes, &cuts);
    }

    #[test]
    fn server_session_survives_valid_frames_in_any_order(msgs in vec(message(), 0..12), cuts in vec(any::<u8>(), 1..8)) {
        // Mostly well-formed frames reach deeper states than random bytes.
        let mut wire = Vec::new();
        frame::encode(&crate::proto::message::Message::Hello {
            magic: super::limits::MAGIC, min_version: crate::proto::limits::PROTOCOL_VERSION, max_version: crate::proto::limits::PROTOCOL_VERSION, flags: 0, token: vec![],
        }, &mut wire);
        for m in &msgs {
            frame::encode(m, &mut wire);
        }
        run_server(&wire, &cuts);
    }

    #[test]
    fn client_session_survives_any_server(op in any::<u8>(), msgs in vec(message(), 0..12), junk in vec(any::<u8>(), 0..64), cut in 1usize..300) {
        let mut wire = Vec::new();
        for m in &msgs {
            frame::encode(m, &mut wire);
        }
        wire.extend_from_slice(&junk);
        run_client(op, &wire, cut);
    }
}

/// Sequences for the model-based test: `FTX_MODEL_CASES` (default 2,000)
/// of them, each up to 40 operations.
fn model_cases() -> u32 {
    std::env::var("FTX_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: model_cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random sequences of every request, with refusals of every kind,
    /// through two connections sharing one store: each request ends with
    /// exactly one result, the model's, and the connection serves the next.
    #[test]
    fn sequences_match_the_model(slicing in any::<u8>(), records in vec(any::<[u8; 8]>(), 0..40)) {
        let mut bytes = vec![slicing];
        bytes.extend(records.iter().flatten());
        if let Err(failure) = super::model::Runner::run_records(&bytes) {
            prop_assert!(false, "{}", failure);
        }
    }
}

/// The sequence generator reaches every path the model test is for: each
/// kind of refusal of each request, resumes that continue and that
/// restart (a download's restart is rarer: it needs the file replaced
/// between a cancel and the resume), cancels, lost connections, corruption, failing writes, clash
/// names, another client's request in the middle of an upload, and idle
/// connections. A generator that stopped reaching one would leave the
/// property test above passing without testing it.
#[test]
fn the_sequences_reach_every_path() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let config = Config::default();
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let records = vec(any::<[u8; 8]>(), 30..40);
    let mut seen = std::collections::BTreeMap::<String, u64>::new();
    for i in 0..150u32 {
        let ops = records.new_tree(&mut runner).expect("a sequence").current();
        let mut bytes = vec![i as u8];
        bytes.extend(ops.iter().flatten());
        let ops = super::model::decode_ops(&bytes[1..]);
        let mut r = super::model::Runner::new(bytes[0]);
        if let Err(f) = r.run(&ops) {
            panic!("{f}");
        }
        for (k, v) in r.seen {
            *seen.entry(k).or_default() += v;
        }
    }
    let want = [
        "list refused InvalidName",
        "list refused NotFound",
        "list refused NotADirectory",
        "mkdir/rm/rename refused InvalidName",
        "mkdir/rm/rename refused ReadOnly",
        "mkdir/rm/rename refused NotFound",
        "mkdir/rm/rename refused NotADirectory",
        "mkdir/rm/rename refused Exists",
        "mkdir/rm/rename refused NotEmpty",
        "put refused InvalidName",
        "put refused ReadOnly",
        "put refused TooLarge",
        "put refused NoSpace",
        "put refused NotFound",
        "put refused NotADirectory",
        "put refused IsDirectory",
        "put refused Busy",
        "put stored",
        "put stored under a clash name",
        "put resumed",
        "put resume restarted",
        "put cancelled",
        "put connection lost",
        "put integrity failure",
        "put write failed NoSpace",
        "put write failed Io",
        "put commit failed IsDirectory",
        "put paused for another client",
        "get refused InvalidName",
        "get refused NotFound",
        "get refused IsDirectory",
        "get refused NotADirectory",
        "get done",
        "get resumed",
        "get cancelled",
        "get connection lost",
        "get integrity failure",
        "idle timeout",
    ];
    let missing: Vec<_> = want.iter().filter(|w| !seen.contains_key(**w)).collect();
    assert!(
        missing.is_empty(),
        "never reached: {missing:?}\nreached: {seen:#?}"
    );
}
