//! Ferrite's host-side converter: read a trained model, map it onto
//! Ferrite's op set, plan memory and write a `.fer` package.
//!
//! ```no_run
//! let src = std::fs::read("model.tflite").unwrap();
//! let out = ferrite_convert::convert(&src).unwrap();
//! std::fs::write("model.fer", &out.bytes).unwrap();
//! ```

pub mod ir;
pub mod onnx;
pub mod package;
pub mod passes;
pub mod pipeline_meta;
pub mod quantize;
pub mod tflite;
pub mod tflite_import;
pub mod uint8;

use anyhow::{anyhow, bail, Result};
use ferrite_runtime::{Error as RtError, Model, Options, Session};

pub use ir::Graph;

/// The folder a file `path` goes in (`.` for a bare file name).
pub fn parent_folder(path: &std::path::Path) -> &std::path::Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
}

/// Writes `bytes` to a temporary file next to `path`, synced, then renames
/// it into place, so `path` is never left half-written.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = parent_folder(path).join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Fails, naming `what` (a flag), when the folder `path` would be written in
/// is not there: checked before work that takes a while, not after it.
pub fn check_parent_folder(what: &str, path: &std::path::Path) -> Result<()> {
    let dir = parent_folder(path);
    if !dir.is_dir() {
        let why = if dir.exists() {
            "is not a folder"
        } else {
            "does not exist"
        };
        bail!("{what} {}: {} {why}", path.display(), dir.display());
    }
    Ok(())
}

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
    /// A paragraph about what the conversion did (quantization results),
    /// for the CLI to print; `None` when there is nothing to add.
    pub summary: Option<String>,
}

/// Source formats the converter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Tflite,
    /// An ONNX `ModelProto` (opsets 7 to 21).
    Onnx,
}

/// Recognizes a source model by its bytes.
pub fn detect(bytes: &[u8]) -> Option<SourceFormat> {
    if bytes.len() >= 8 && &bytes[4..8] == b"TFL3" {
        return Some(SourceFormat::Tflite);
    }
    onnx::looks_like_onnx(bytes).then_some(SourceFormat::Onnx)
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

/// Post-training quantization settings (`--quantize int8`); [`Default`]
/// gives the CLI's defaults (`calib`, empty there, must be filled in).
#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    /// Folder of calibration samples (`.npy` files or images).
    pub calib: std::path::PathBuf,
    /// `auto` (the default, also for an empty string: every method tried,
    /// the best kept), `percentile[=P]`, `minmax`, `avgminmax`, `entropy` or
    /// `mse`.
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
    /// Indices of graph outputs read through a sigmoid after the model (a
    /// detector's score logits): their int8 range is narrowed as a
    /// LOGISTIC input's is. `convert_with` fills it from the detector spec.
    pub logit_outputs: Vec<usize>,
    /// Bias correction: subtract each int8 conv / fully-connected op's mean
    /// output error from its bias, kept only when it lowers the end-to-end
    /// output error. On unless `--no-bias-correction`.
    pub bias_correction: bool,
    /// Activation equalization (on unless `--no-equalize`): balance the
    /// channels of the tensor between a conv and the conv that alone reads
    /// it, measured on the calibration samples (see `quantize::equalize`).
    pub equalize: bool,
    /// GPTQ weight rounding (see `quantize::gptq`): on unless
    /// `--weight-rounding nearest`.
    pub gptq: bool,
    /// Indices of graph outputs whose heads stay float: the weighted ops
    /// (conv, fully-connected) that produce them, reached back through data
    /// movement only, with the data movement after them. `convert_with`
    /// fills it with a detector's box and score outputs unless
    /// `int8_heads`.
    pub float_heads: Vec<usize>,
    /// Quantize a detector's heads too (`--int8-heads`).
    pub int8_heads: bool,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        QuantizeOptions {
            calib: std::path::PathBuf::new(),
            method: "auto".into(),
            samples: None,
            keep_float: Vec::new(),
            min_sqnr: None,
            int8_io: false,
            report: None,
            logit_outputs: Vec::new(),
            bias_correction: true,
            equalize: true,
            gptq: true,
            float_heads: Vec::new(),
            int8_heads: false,
        }
    }
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
    convert_in_dir(src, options, None)
}

/// Reads and converts the model file at `path`; ONNX external data files are
/// looked up next to it.
pub fn convert_file(path: &std::path::Path, options: &ConvertOptions) -> Result<Converted> {
    let src = std::fs::read(path).map_err(|e| anyhow!("reading {}: {e}", path.display()))?;
    convert_in_dir(&src, options, path.parent())
}

fn convert_in_dir(
    src: &[u8],
    options: &ConvertOptions,
    dir: Option<&std::path::Path>,
) -> Result<Converted> {
    let graph = match detect(src) {
        Some(SourceFormat::Tflite) => {
            let mut g = tflite_import::import(src)?;
            // Exporters put explicit PADs before strided convs (PyTorch's
            // asymmetric padding); the conv's own padding does the same, bit
            // for bit (int8 pads with the zero-point the conv subtracts).
            // A separate RELU after a float conv / ADD (BlazeFace has 16)
            // becomes the op's fused activation: one pass over the tensor
            // fewer, the same values. SiLU written as x · LOGISTIC(x)
            // becomes one swish.
            let fused = passes::merge_pad(&mut g)
                + passes::fuse_activations(&mut g)
                + passes::fuse_gated_activations(&mut g);
            if fused > 0 {
                g.remove_dead_nodes();
                g.remove_unused_tensors();
            }
            g
        }
        Some(SourceFormat::Onnx) => onnx::import(src, options, dir)?,
        None => bail!("unrecognized model format (expected a .tflite or .onnx file)"),
    };
    let (graph, summary) = match &options.quantize {
        Some(q) => {
            // A detector's score logits are read through a sigmoid: the
            // quantizer narrows their range as it does a LOGISTIC input's.
            // Its heads (the small convs that make the box and score
            // outputs) stay float unless asked: their int8 rounding moves
            // borderline scores across the threshold and box edges by a
            // pixel, for a few percent of the model's work (BlazeFace: 4
            // convs, about 1.4 M of its multiply-adds; docs/quantization.md).
            let mut q = q.clone();
            let detector = pipeline_meta::detector_spec(options)?;
            let head = match &detector {
                Some(spec) => Some(spec.head()?),
                None => None,
            };
            if let Some(ferrite_pipelines::spec::Head::Ssd { decode: d, .. }) = head {
                if d.sigmoid_score && !q.logit_outputs.contains(&d.scores_output) {
                    q.logit_outputs.push(d.scores_output);
                }
                if !q.int8_heads {
                    for o in [d.boxes_output, d.scores_output] {
                        if !q.float_heads.contains(&o) {
                            q.float_heads.push(o);
                        }
                    }
                }
            } else if q.int8_heads && head.is_none() {
                bail!("--int8-heads: no detector is given (--detector or --detector-spec), so there are no heads to keep float");
            }
            let pre = pipeline_meta::preprocess_spec(options, detector.as_ref(), &graph)?;
            let r = quantize::quantize(&graph, &q, pre.as_ref())?;
            (r.graph, Some(r.summary))
        }
        None => (graph, None),
    };
    let mut graph = graph;
    if pipeline_meta::requested(options) {
        pipeline_meta::apply(&mut graph, options)?;
    }
    // Last, on what stays float: a swish after a conv runs on the conv's
    // output blocks while they are in cache.
    if passes::fuse_post_activations(&mut graph) > 0 {
        graph.remove_unused_tensors();
    }
    let mut converted = package_graph(&graph)?;
    let notes = graph.notes.join("\n");
    converted.summary = match summary {
        Some(s) if !notes.is_empty() => Some(format!("{notes}\n{s}")),
        Some(s) => Some(s),
        None => (!notes.is_empty()).then_some(notes),
    };
    Ok(converted)
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
        summary: None,
        bytes,
    })
}
