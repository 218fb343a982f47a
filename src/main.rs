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
    /// Convert a .tflite model into a .fer package.
    Convert {
        /// Source model (.tflite).
        input: PathBuf,
        /// Output package (.fer). Never the same file as the input.
        #[arg(short, long)]
        output: PathBuf,
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
    /// Measure the latency of `run`.
    Bench {
        model: PathBuf,
        #[arg(long, default_value_t = 100)]
        runs: usize,
        #[arg(long, default_value_t = 10)]
        warmup: usize,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Inputs (as for `run`); random data when absent.
        #[arg(short, long = "input")]
        inputs: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Convert { input, output } => commands::convert(&input, &output),
        Command::Inspect { model, json } => commands::inspect(&model, json),
        Command::Run {
            model,
            inputs,
            out_dir,
        } => commands::run(&model, &inputs, &out_dir),
        Command::Bench {
            model,
            runs,
            warmup,
            threads,
            inputs,
            json,
        } => commands::bench(&model, runs, warmup, threads, &inputs, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.verbose {
                eprintln!("error: {e:?}");
            } else {
                // One line: the outermost context and the root cause.
                let root = e.root_cause().to_string();
                let top = e.to_string();
                if top == root {
                    eprintln!("error: {top}");
                } else {
                    eprintln!("error: {top}: {root}");
                }
            }
            ExitCode::FAILURE
        }
    }
}
