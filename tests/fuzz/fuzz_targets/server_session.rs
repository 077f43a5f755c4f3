//! ServerSession fed an arbitrary byte stream, driving an in-memory store:
//! the first bytes (up to a 0xff separator) are the slice sizes (0 = a
//! second passes), the rest is what the client sends. Never a panic, a
//! spin, or an output frame that does not decode.
#![no_main]

use ftx::proto::testing::run_server;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0xff).filter(|&i| i <= 16);
    let (cuts, input) = match split {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[255u8][..], data),
    };
    run_server(input, cuts);
});
