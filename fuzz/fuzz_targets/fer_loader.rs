//! Any bytes into the `.fer` loader and, when they load, a session and a run.
//! The checksum is recomputed first so the fuzzer reaches the structural checks.
#![no_main]

use ferrite_runtime::format::{checksum, CHECKSUM_FIELD, HEADER_LEN};
use ferrite_runtime::{Model, Options, Session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if bytes.len() >= HEADER_LEN {
        let crc = checksum(&bytes);
        bytes[CHECKSUM_FIELD].copy_from_slice(&crc.to_le_bytes());
    }
    if let Ok(model) = Model::from_vec(&bytes) {
        let opts = Options { max_arena_bytes: 64 << 20, ..Options::default() };
        if let Ok(mut session) = Session::new(&model, opts) {
            let _ = session.invoke();
        }
    }
});
