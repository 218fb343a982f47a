//! `ferrite`: convert, inspect, run and benchmark models.
//!
//! The binary is thin: it parses arguments, calls `ferrite-convert` and
//! `ferrite-runtime`, and prints. Errors are one line on stderr (the whole
//! cause chain with `--verbose`) and a non-zero exit.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ferrite::commands;

#[derive(Parser)]
#[command(
    name = "ferrite",
    version,
    about = "Edge inference: convert models to .fer, inspect, run and benchmark them"
)]
struct Cli {
    /// Print the full chain of causes on errors.
    #[arg(long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a .tflite or .onnx model into a .fer package.
    Convert {
        /// Source model (.tflite).
        input: PathBuf,
        /// Output package (.fer). Never the same file as the input.
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        opts: ConvertArgs,
    },
    /// Show inputs, outputs, ops and kernels, tensors, arena size and metadata.
    Inspect {
        /// A .fer package or a .tflite model (converted in memory).
        model: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a model on .npy inputs and write .npy outputs.
    Run {
        model: PathBuf,
        /// Input file, in model input order, or NAME=FILE.npy (repeatable).
        #[arg(short, long = "input", required = true)]
        inputs: Vec<String>,
        /// Folder for output0.npy, output1.npy, ... and outputs.json.
        #[arg(long)]
        out_dir: PathBuf,
    },
    /// Detect objects (faces, ...) in images, a folder, a camera or recorded
    /// frames; print one JSON line per frame.
    Detect(ferrite::detect::DetectArgs),
    /// Measure the latency of `run`.
    Bench {
        model: PathBuf,
        #[arg(long, default_value_t = 100)]
        runs: usize,
        #[arg(long, default_value_t = 10)]
        warmup: usize,
        /// Threads; a list (`--threads 1,2`) times each count in
        /// alternating rounds (so a busy machine slows them alike) and
        /// prints each one's speedup over the first.
        #[arg(long, default_value = "1", value_delimiter = ',')]
        threads: Vec<usize>,
        /// Inputs (as for `run`); random data when absent.
        #[arg(short, long = "input")]
        inputs: Vec<String>,
        #[arg(long)]
        json: bool,
        /// Also time each op (median over the runs), slowest first.
        #[arg(long)]
        profile: bool,
    },
}

/// Options of `ferrite convert` beyond input and output.
#[derive(clap::Args)]
struct ConvertArgs {
    /// Bind a symbolic input size: NAME=1x3x224x224 (repeatable).
    #[arg(long = "shape", value_name = "NAME=DIMS")]
    shapes: Vec<String>,
    /// Layout of image inputs/outputs: `model` (as the source) or `nhwc`.
    #[arg(long, default_value = "model")]
    io_layout: String,
    /// Pre-processing stored in the package and used to calibrate from
    /// images, e.g. "mean=0.485:0.456:0.406,std=0.229:0.224:0.225" or
    /// "scale=1/127.5,offset=-1" (resize= defaults to the model's input;
    /// with a detector, overrides parts of its pre-processing).
    #[arg(long)]
    preprocess: Option<String>,
    /// Quantize weights and activations: `int8`.
    #[arg(long)]
    quantize: Option<String>,
    /// Calibration data: a folder of .npy files, or of images (which need
    /// --preprocess or a detector to become inputs).
    #[arg(long)]
    calib: Option<PathBuf>,
    /// Calibration method: auto (try each of the others, keep the one whose
    /// int8 outputs are closest to float), percentile[=P] (the 100-P and P
    /// percentiles, P = 99.99 by default), minmax, avgminmax, entropy or mse
    /// [default: auto].
    #[arg(long)]
    calib_method: Option<String>,
    /// Use at most this many calibration samples.
    #[arg(long)]
    calib_samples: Option<usize>,
    /// Ops to keep in float (names or indices, comma-separated).
    #[arg(long, value_delimiter = ',')]
    keep_float: Vec<String>,
    /// Keep ops whose int8 output SQNR is below this many dB in float.
    #[arg(long)]
    min_sqnr: Option<f64>,
    /// Don't correct int8 conv biases by their mean output error on the
    /// calibration samples (by default the correction is tried and kept only
    /// when it lowers the end-to-end error).
    #[arg(long)]
    no_bias_correction: bool,
    /// Don't equalize the channels between consecutive convs before
    /// calibrating (by default they are: the float function is unchanged,
    /// and per-tensor int8 activations lose less to a few wide channels).
    #[arg(long)]
    no_equalize: bool,
    /// Equalization is the default now; the flag is accepted as before.
    #[arg(long, hide = true, conflicts_with = "no_equalize")]
    equalize: bool,
    /// How int8 weights round: `gptq` (each layer's outputs kept closest to
    /// float on the calibration samples) or `nearest`.
    #[arg(long, default_value = "gptq")]
    weight_rounding: String,
    /// Quantize a detector's box and score heads too (by default, with
    /// `--detector` or `--detector-spec`, they stay float).
    #[arg(long)]
    int8_heads: bool,
    /// Input/output type of a quantized model: float or int8.
    #[arg(long, default_value = "float")]
    io: String,
    /// Write a quantization report (HTML, plus quant.json beside it).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Detector post-processing preset (e.g. blazeface-short-range).
    #[arg(long)]
    detector: Option<String>,
    /// Detector post-processing spec file (TOML).
    #[arg(long)]
    detector_spec: Option<PathBuf>,
    /// Labels file (one per line) stored in the package.
    #[arg(long)]
    labels: Option<PathBuf>,
}

impl ConvertArgs {
    fn into_options(self) -> anyhow::Result<ferrite_convert::ConvertOptions> {
        use anyhow::{bail, Context};
        let mut shapes = Vec::new();
        for s in &self.shapes {
            let (name, dims) = s
                .split_once('=')
                .with_context(|| format!("--shape {s}: expected NAME=1x3x224x224"))?;
            let dims = dims
                .split('x')
                .map(|d| d.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| {
                    format!("--shape {s}: dimensions must be positive integers separated by 'x'")
                })?;
            shapes.push((name.to_string(), dims));
        }
        let io_layout = match self.io_layout.as_str() {
            "model" => ferrite_convert::IoLayout::Model,
            "nhwc" => ferrite_convert::IoLayout::Nhwc,
            other => bail!("--io-layout {other}: expected 'model' or 'nhwc'"),
        };
        let quantize = match self.quantize.as_deref() {
            None => {
                // Quantization flags without --quantize would be ignored.
                let given = [
                    ("--calib", self.calib.is_some()),
                    ("--calib-method", self.calib_method.is_some()),
                    ("--calib-samples", self.calib_samples.is_some()),
                    ("--keep-float", !self.keep_float.is_empty()),
                    ("--min-sqnr", self.min_sqnr.is_some()),
                    ("--no-bias-correction", self.no_bias_correction),
                    ("--no-equalize", self.no_equalize),
                    ("--equalize", self.equalize),
                    ("--weight-rounding", self.weight_rounding != "gptq"),
                    ("--int8-heads", self.int8_heads),
                    ("--io", self.io != "float"),
                    ("--report", self.report.is_some()),
                ];
                if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
                    bail!("{flag} needs --quantize int8");
                }
                None
            }
            Some("int8") => Some(ferrite_convert::QuantizeOptions {
                calib: self
                    .calib
                    .context("--quantize int8 needs --calib DIR (calibration samples)")?,
                method: self.calib_method.unwrap_or_else(|| "auto".into()),
                samples: self.calib_samples,
                keep_float: self.keep_float,
                min_sqnr: self.min_sqnr,
                int8_io: match self.io.as_str() {
                    "float" => false,
                    "int8" => true,
                    other => bail!("--io {other}: expected 'float' or 'int8'"),
                },
                report: self.report,
                bias_correction: !self.no_bias_correction,
                equalize: !self.no_equalize,
                gptq: match self.weight_rounding.as_str() {
                    "gptq" => true,
                    "nearest" => false,
                    other => bail!("--weight-rounding {other}: expected 'gptq' or 'nearest'"),
                },
                logit_outputs: Vec::new(),
                float_heads: Vec::new(),
                int8_heads: self.int8_heads,
            }),
            Some(other) => bail!("--quantize {other}: only 'int8' is supported"),
        };
        Ok(ferrite_convert::ConvertOptions {
            shapes,
            io_layout,
            preprocess: self.preprocess,
            quantize,
            detector: self.detector,
            detector_spec: self.detector_spec,
            labels: self.labels,
        })
    }
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `ferrite inspect m.fer | head` would panic in
    // `println!` once `head` exits. Like other Unix tools, stop quietly.
    #[cfg(unix)]
    // SAFETY: called first thing, before any thread exists; SIG_DFL is a
    // valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Convert {
            input,
            output,
            opts,
        } => opts
            .into_options()
            .and_then(|o| commands::convert(&input, &output, &o)),
        Command::Inspect { model, json } => commands::inspect(&model, json),
        Command::Run {
            model,
            inputs,
            out_dir,
        } => commands::run(&model, &inputs, &out_dir),
        Command::Detect(args) => ferrite::detect::run(&args),
        Command::Bench {
            model,
            runs,
            warmup,
            threads,
            inputs,
            json,
            profile,
        } => commands::bench(&model, runs, warmup, &threads, &inputs, json, profile),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.verbose {
                eprintln!("error: {e:?}");
            } else {
                // One line: every context, outermost first, then the cause
                // ("cannot convert m.tflite: calibration failed: ...").
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
