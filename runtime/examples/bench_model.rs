//! A runtime-only program: load a `.fer`, run it N times, print the median
//! latency and the kernel each op got. It links `ferrite-runtime` alone (no
//! converter, no CLI parser), so its size is what a deployed runtime costs
//! (`scripts/cross-build.sh` prints it for aarch64 and armv7).
//!
//! Usage: `bench_model MODEL.fer [RUNS] [THREADS]` (random-free: inputs are zeros).

use std::time::Instant;

use ferrite_runtime::{Model, Options, Session};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: bench_model MODEL.fer [RUNS] [THREADS]");
        std::process::exit(2);
    };
    let parse = |v: Option<String>, d: usize, what: &str| -> usize {
        match v.map(|s| s.parse::<usize>()) {
            None => d,
            Some(Ok(n)) if n > 0 => n,
            _ => {
                eprintln!("error: {what} must be a positive integer");
                std::process::exit(2);
            }
        }
    };
    let runs = parse(args.next(), 20, "RUNS");
    let threads = parse(args.next(), 1, "THREADS");
    let model = match Model::load(&path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {path}: {e}");
            std::process::exit(1);
        }
    };
    let mut session = match Session::new(
        &model,
        Options {
            threads,
            ..Options::default()
        },
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot prepare {path}: {e}");
            std::process::exit(1);
        }
    };
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        if let Err(e) = session.invoke() {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{path}: median {:.3} ms over {runs} runs, {threads} thread(s)",
        times[runs / 2]
    );
    for (i, (op, k)) in model
        .def()
        .ops
        .iter()
        .zip(session.kernel_names())
        .enumerate()
    {
        println!("  {i:3} {:<24} {k}", op.code.name());
    }
}
