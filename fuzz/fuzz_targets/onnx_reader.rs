//! Any bytes into the ONNX protobuf reader and the whole converter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ferrite_convert::onnx::parse(data);
    let _ = ferrite_convert::onnx::read_tensor(data);
    let _ = ferrite_convert::convert(data);
});
