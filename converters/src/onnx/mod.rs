//! ONNX → converter IR.
//!
//! [`proto`] decodes the protobuf file; [`value`] holds constants (and
//! reads `TensorProto`s, external data included); [`fold`] computes ops on
//! constants at conversion; [`lower`] walks the graph in order and maps each
//! node onto Ferrite's NHWC op set, tracking for every value whether it is
//! stored in ONNX's layout or as NHWC, so transposes appear only where a
//! layout change can't be avoided. QDQ (QuantizeLinear/DequantizeLinear)
//! patterns around Conv, Gemm/MatMul, Add, pooling and data movement become
//! native int8 ops with the model's own scales; uint8 becomes int8 with the
//! zero-point shifted by -128.
//!
//! The graph passes in `crate::passes` then fold, fuse and clean the result.

pub mod fold;
pub mod lower;
pub mod proto;
pub mod value;

use std::path::Path;

use anyhow::{anyhow, Result};
use prost::Message;

use crate::ir::Graph;
use crate::ConvertOptions;

/// Decodes an ONNX model's protobuf bytes.
pub fn parse(bytes: &[u8]) -> Result<proto::ModelProto> {
    proto::ModelProto::decode(bytes).map_err(|e| anyhow!("not a readable ONNX model: {e}"))
}

/// True when `bytes` look like an ONNX `ModelProto`: they decode, and carry
/// a graph and an opset import.
pub fn looks_like_onnx(bytes: &[u8]) -> bool {
    // ModelProto files start with field 1 (ir_version, varint): tag byte 0x08.
    bytes.first() == Some(&0x08)
        && parse(bytes)
            .map(|m| m.graph.is_some() && !m.opset_import.is_empty())
            .unwrap_or(false)
}

/// Reads and converts an ONNX model. `base_dir` is where external data files
/// are looked up (the model file's folder).
pub fn import(bytes: &[u8], options: &ConvertOptions, base_dir: Option<&Path>) -> Result<Graph> {
    let model = parse(bytes)?;
    let mut g = lower::lower(&model, options, base_dir)?;
    crate::passes::run_all(&mut g)?;
    Ok(g)
}

/// Decodes a serialized `TensorProto` (the `.pb` files of ONNX test data).
pub fn read_tensor(bytes: &[u8]) -> Result<value::Const> {
    let t = proto::TensorProto::decode(bytes).map_err(|e| anyhow!("not a TensorProto: {e}"))?;
    value::decode_tensor(&t, None)
}

#[cfg(test)]
mod tests;
