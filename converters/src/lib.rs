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

/// Layout of a converted model's image inputs and outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoLayout {
    /// Exactly the source model's shapes and layouts (the default).
    #[default]
    Model,
    /// NHWC image inputs/outputs, dropping boundary transposes (ONNX models).
    Nhwc,
}

/// Post-training quantization settings (`--quantize int8`).
#[derive(Debug, Clone, Default)]
pub struct QuantizeOptions {
    /// Folder of calibration samples (`.npy` files or images).
    pub calib: std::path::PathBuf,
    /// `minmax`, `percentile[=P]` or `entropy`.
    pub method: String,
    /// How many calibration samples to use (`None`: all).
    pub samples: Option<usize>,
    /// Source op names or indices to keep in float.
    pub keep_float: Vec<String>,
    /// Keep ops whose output SQNR falls below this (dB) in float.
    pub min_sqnr: Option<f64>,
    /// Expose int8 inputs/outputs instead of float ones.
    pub int8_io: bool,
    /// Where to write the HTML report (and `quant.json` beside it).
    pub report: Option<std::path::PathBuf>,
}

/// Everything `ferrite convert` can be asked to do beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// Static sizes for symbolic input dimensions (`--shape NAME=1x3x224x224`).
    pub shapes: Vec<(String, Vec<usize>)>,
    /// Input/output layout (`--io-layout`).
    pub io_layout: IoLayout,
    /// Pre-processing spec stored in the package (`--preprocess`).
    pub preprocess: Option<String>,
    /// Post-training quantization (`--quantize int8 ...`).
    pub quantize: Option<QuantizeOptions>,
    /// Detector post-processing: a preset name (`--detector`) or a spec file
    /// (`--detector-spec`), stored in the package.
    pub detector: Option<String>,
    pub detector_spec: Option<std::path::PathBuf>,
    /// A labels file (one label per line) stored in the package.
    pub labels: Option<std::path::PathBuf>,
}

/// Converts source model bytes (TFLite) into a `.fer` package with default
/// options. See [`convert_with`].
pub fn convert(src: &[u8]) -> Result<Converted> {
    convert_with(src, &ConvertOptions::default())
}

/// Converts source model bytes into a `.fer` package, then loads the package
/// and prepares a session on it, so that every op the runtime would reject is
/// reported now, on the host, naming the source op.
pub fn convert_with(src: &[u8], options: &ConvertOptions) -> Result<Converted> {
    let graph = match detect(src) {
        Some(SourceFormat::Tflite) => tflite_import::import(src)?,
        None => bail!("unrecognized model format (expected a .tflite file)"),
    };
    if options.quantize.is_some() {
        bail!("--quantize is not implemented yet");
    }
    if options.detector.is_some() || options.detector_spec.is_some() {
        bail!("--detector is not implemented yet");
    }
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
