//! The specification (this module's parent documentation) checked against
//! the code, so the two cannot drift apart: every row of the message table
//! names a message the code has, with the type byte the code sends.

use super::error::ErrorCode;
use super::message::{kind, Message};

/// The `| 0xNN | `Name` | ...` rows of the message table in `mod.rs`.
fn spec_rows() -> Vec<(u8, String)> {
    include_str!("mod.rs")
        .lines()
        .filter_map(|line| line.strip_prefix("//! | 0x"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let byte = u8::from_str_radix(cells[0], 16).expect("type byte");
            let name = cells[1].trim_matches('`').to_owned();
            (byte, name)
        })
        .collect()
}

/// One message of every kind. The match below has no wildcard: a new
/// message does not compile here until it is listed, and so until the
/// table has a row for it.
fn every_message() -> Vec<Message> {
    let all = vec![
        Message::Hello {
            magic: *b"FTX\0",
            min_version: 2,
            max_version: 2,
            flags: 0,
            token: Vec::new(),
        },
        Message::Welcome {
            version: 2,
            flags: 0,
            window: 0,
            server: String::new(),
        },
        Message::List {
            path: String::new(),
        },
        Message::Entries {
            entries: Vec::new(),
            last: true,
        },
        Message::Put {
            path: String::new(),
            size: 0,
            offset: 0,
            flags: 0,
        },
        Message::PutReady {
            name: String::new(),
            offset: 0,
            digest: [0; 32],
            partial: 0,
            flags: 0,
        },
        Message::PutDone {
            name: String::new(),
            size: 0,
        },
        Message::Get {
            path: String::new(),
            offset: 0,
        },
        Message::GetReady {
            size: 0,
            offset: 0,
            mtime: 0,
            digest: [0; 32],
        },
        Message::Mkdir {
            path: String::new(),
        },
        Message::Remove {
            path: String::new(),
        },
        Message::Rename {
            from: String::new(),
            to: String::new(),
        },
        Message::SetAttrs {
            path: String::new(),
            flags: 0,
            mode: 0,
            mtime: 0,
        },
        Message::Statfs {
            path: String::new(),
        },
        Message::ListParts {
            path: String::new(),
        },
        Message::DiscardPart {
            path: String::new(),
        },
        Message::Space { total: 0, avail: 0 },
        Message::Ok,
        Message::Data {
            offset: 0,
            data: Vec::new(),
        },
        Message::Ack { offset: 0 },
        Message::Done {
            size: 0,
            digest: [0; 32],
        },
        Message::Cancel,
        Message::Error {
            code: ErrorCode::NotFound,
            message: String::new(),
        },
    ];
    for m in &all {
        match m {
            Message::Hello { .. }
            | Message::Welcome { .. }
            | Message::List { .. }
            | Message::Entries { .. }
            | Message::Put { .. }
            | Message::PutReady { .. }
            | Message::PutDone { .. }
            | Message::Get { .. }
            | Message::GetReady { .. }
            | Message::Mkdir { .. }
            | Message::Remove { .. }
            | Message::Rename { .. }
            | Message::SetAttrs { .. }
            | Message::Statfs { .. }
            | Message::ListParts { .. }
            | Message::DiscardPart { .. }
            | Message::Space { .. }
            | Message::Ok
            | Message::Data { .. }
            | Message::Ack { .. }
            | Message::Done { .. }
            | Message::Cancel
            | Message::Error { .. } => {}
        }
    }
    all
}

/// The variant's name, as `Debug` starts it.
fn name_of(m: &Message) -> String {
    format!("{m:?}")
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_message_table_matches_the_code() {
    let rows = spec_rows();
    let messages = every_message();
    let code: Vec<(u8, String)> = messages.iter().map(|m| (m.kind(), name_of(m))).collect();
    for (byte, name) in &code {
        assert!(
            rows.contains(&(*byte, name.clone())),
            "the spec's message table has no row `| 0x{byte:02X} | `{name}` |`; rows: {rows:?}"
        );
    }
    for (byte, name) in &rows {
        assert!(
            code.contains(&(*byte, name.clone())),
            "the spec's row 0x{byte:02X} `{name}` is no message the code sends as that byte"
        );
    }
    assert_eq!(rows.len(), code.len(), "one row per message: {rows:?}");
}

#[test]
fn every_type_byte_is_one_of_kind() {
    let known = [
        kind::HELLO,
        kind::LIST,
        kind::PUT,
        kind::GET,
        kind::MKDIR,
        kind::REMOVE,
        kind::RENAME,
        kind::SET_ATTRS,
        kind::STATFS,
        kind::LIST_PARTS,
        kind::DISCARD_PART,
        kind::DATA,
        kind::ACK,
        kind::DONE,
        kind::CANCEL,
        kind::WELCOME,
        kind::ENTRIES,
        kind::PUT_READY,
        kind::PUT_DONE,
        kind::GET_READY,
        kind::OK,
        kind::SPACE,
        kind::ERROR,
    ];
    let mut bytes: Vec<u8> = every_message().iter().map(Message::kind).collect();
    bytes.sort_unstable();
    let mut known = known.to_vec();
    known.sort_unstable();
    assert_eq!(
        bytes, known,
        "each message has its own byte of message::kind"
    );
}
