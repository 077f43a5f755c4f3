//! ClientSession fed a hostile server's bytes after a command (first byte
//! picks the command, second the slice size): never a panic, a spin, or an
//! output frame that does not decode.
#![no_main]

use ftx::proto::testing::run_client;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [op, cut, rest @ ..] = data else {
        return;
    };
    run_client(*op, rest, usize::from(*cut).max(1));
});
