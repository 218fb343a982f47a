//! Any bytes into the TFLite reader and the whole converter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ferrite_convert::tflite::parse(data);
    let _ = ferrite_convert::convert(data);
});
