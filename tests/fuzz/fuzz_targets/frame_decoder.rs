//! The frame decoder fed arbitrary bytes, whole and cut into slices (the
//! first byte picks the slice size): a message or a typed error, never a
//! panic; whatever decodes re-encodes to the same message.
#![no_main]

use ftx::proto::frame::{self, FrameReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else {
        return;
    };
    // Whole buffer, one frame at a time.
    let mut rest = bytes;
    while let Ok(Some((msg, used))) = frame::decode(rest) {
        assert!(used > 0 && used <= rest.len());
        let mut wire = Vec::new();
        frame::encode(&msg, &mut wire);
        let again = frame::decode(&wire).expect("re-decodes").expect("whole");
        assert_eq!(again.0, msg);
        rest = &rest[used..];
    }
    // The streaming reader, cut into slices.
    let mut r = FrameReader::new();
    for piece in bytes.chunks(usize::from(cut).max(1)) {
        r.push(piece);
        loop {
            match r.next_message() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = r.check_eof();
});
