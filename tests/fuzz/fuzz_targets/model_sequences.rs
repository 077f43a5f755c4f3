//! Model-based sequences: the input's first byte chooses how bytes are cut
//! on the wire, every following 8 bytes are one operation (a request, a
//! refusal the server is set up for, a cancel, a lost connection, another
//! client's request in the middle of an upload). Two client sessions and
//! their server sessions share one in-memory store; any step whose result
//! differs from the reference model, or after which a connection cannot
//! serve the next request, is a crash that names the sequence.
#![no_main]

use ftx::proto::model::Runner;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A sequence of at most 64 operations keeps each run short.
    let data = &data[..data.len().min(1 + 64 * 8)];
    if let Err(failure) = Runner::run_records(data) {
        panic!("{failure}");
    }
});
