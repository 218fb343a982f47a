//! Ferrite's host-side converter: read a trained model, map it onto
//! Ferrite's op set, plan memory and write a `.fer` package.
//!
//! ```no_run
//! let src = std::fs::read("model.tflite").unwrap();
//! let out = ferrite_convert::convert(&src).unwrap();
//! std::fs::write("model.fer", &out.bytes).unwrap();
//! ```

pub mod ir;
pub mod package;
pub mod tflite;
pub mod tflite_import;

use anyhow::{anyhow, bail, Result};
use ferrite_runtime::{Error as RtError, Model, Options, Session};

pub use ir::Graph;

/// A converted package and figures about it.
pub struct Converted {
    /// The `.fer` file.
    pub bytes: Vec<u8>,
    pub ops: usize,
    pub tensors: usize,
    /// Arena bytes the plan needs.
    pub arena_bytes: usize,
    /// Largest total of bytes alive at one op.
    pub lower_bound: usize,
}

/// Source formats the converter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Tflite,
}

/// Recognizes a source model by its bytes.
pub fn detect(bytes: &[u8]) -> Option<SourceFormat> {
    (bytes.len() >= 8 && &bytes[4..8] == b"TFL3").then_some(SourceFormat::Tflite)
}

/// Converts source model bytes (TFLite) into a `.fer` package, then loads
/// the package and prepares a session on it, so that every op the runtime
/// would reject is reported now, on the host, naming the source op.
pub fn convert(src: &[u8]) -> Result<Converted> {
    let graph = match detect(src) {
        Some(SourceFormat::Tflite) => tflite_import::import(src)?,
        None => bail!("unrecognized model format (expected a .tflite file)"),
    };
    package_graph(&graph)
}

/// Plans and writes `graph`, then verifies the result loads and prepares.
pub fn package_graph(graph: &Graph) -> Result<Converted> {
    let (bytes, planned) = package::write(graph)?;
    let model = Model::from_vec(&bytes)
        .map_err(|e| anyhow!("internal error: the written package is invalid: {e}"))?;
    if let Err(e) = Session::new(&model, Options::default()) {
        let op = match e {
            RtError::UnsupportedConfig { op, .. }
            | RtError::ShapeMismatch { op, .. }
            | RtError::UnsupportedOp { op, .. } => Some(op),
            _ => None,
        };
        match op.and_then(|i| graph.nodes.get(i)) {
            Some(n) => bail!("{} cannot run: {e}", n.origin),
            None => bail!("the converted model cannot run: {e}"),
        }
    }
    Ok(Converted {
        ops: planned.ops.len(),
        tensors: planned.tensors.len(),
        arena_bytes: planned.arena_bytes,
        lower_bound: planned.lower_bound,
        bytes,
    })
}
