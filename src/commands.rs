//! The subcommands.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ferrite_runtime::format::meta_kind;
use ferrite_runtime::session::{IoInfo, TensorView};
use ferrite_runtime::{quant, DType, Model, Options, Quant, Session, Storage};
use serde_json::json;

use crate::npy::{self, Array};

/// Loads a `.fer` package, or converts a source model in memory.
fn load(path: &Path) -> Result<Model<'static>> {
    let mut head = [0u8; 8];
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let n = std::io::Read::read(&mut f, &mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if n == 8 && head == ferrite_runtime::format::MAGIC {
        return Model::load(path)
            .with_context(|| format!("{} is not a valid .fer package", path.display()));
    }
    let converted = ferrite_convert::convert_file(path, &Default::default())
        .with_context(|| format!("cannot convert {}", path.display()))?;
    Ok(Model::from_vec(&converted.bytes)?)
}

pub fn convert(
    input: &Path,
    output: &Path,
    options: &ferrite_convert::ConvertOptions,
) -> Result<()> {
    if same_file(input, output) {
        bail!(
            "output {} is the input file; choose another name",
            output.display()
        );
    }
    // The package is written after the conversion (calibration can take a
    // while): a missing folder is reported before it starts (the quantizer
    // checks --report's).
    ferrite_convert::check_parent_folder("output", output)?;
    // Reading by path lets ONNX models find their external data files.
    let c = ferrite_convert::convert_file(input, options)
        .with_context(|| format!("cannot convert {}", input.display()))?;
    // Prove the package loads before writing it anywhere.
    Model::from_vec(&c.bytes).context("internal error: the converted package does not load")?;
    ferrite_convert::write_atomic(output, &c.bytes)?;
    println!(
        "{} -> {}: {} ops, {} tensors, {} bytes; arena {} bytes (lower bound {})",
        input.display(),
        output.display(),
        c.ops,
        c.tensors,
        c.bytes.len(),
        c.arena_bytes,
        c.lower_bound
    );
    if let Some(summary) = &c.summary {
        println!("{summary}");
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn quant_json(q: &Quant) -> serde_json::Value {
    match q {
        Quant::None => serde_json::Value::Null,
        Quant::PerTensor(p) => json!({"scale": p.scale, "zero_point": p.zero_point}),
        Quant::PerAxis {
            axis,
            scales,
            zero_points,
        } => {
            json!({"axis": axis, "scales": scales, "zero_points": zero_points})
        }
    }
}

fn quant_text(q: &Quant) -> String {
    match q {
        Quant::None => String::new(),
        Quant::PerTensor(p) => format!(" q(scale={}, zp={})", p.scale, p.zero_point),
        Quant::PerAxis { axis, scales, .. } => {
            format!(" q(per-axis {axis}, {} scales)", scales.len())
        }
    }
}

pub fn inspect(path: &Path, as_json: bool) -> Result<()> {
    let model = load(path)?;
    let def = model.def();
    let session = Session::new(&model, Options::default());
    let kernels: Vec<String> = match &session {
        Ok(s) => s.kernel_names().iter().map(|k| k.to_string()).collect(),
        Err(e) => vec![format!("(cannot prepare: {e})"); def.ops.len()],
    };
    let lower = model.arena_lower_bound();
    let io = |ts: &[usize]| -> Vec<serde_json::Value> {
        ts.iter()
            .map(|&t| {
                let td = &def.tensors[t];
                json!({"name": td.name, "tensor": t, "dtype": td.dtype.name(), "shape": td.shape.dims(), "quant": quant_json(&td.quant)})
            })
            .collect()
    };
    if as_json {
        let ops: Vec<_> = def
            .ops
            .iter()
            .zip(&kernels)
            .map(|(op, k)| json!({"op": op.code.name(), "kernel": k, "inputs": op.inputs, "outputs": op.outputs, "attrs": op.attrs}))
            .collect();
        let tensors: Vec<_> = def
            .tensors
            .iter()
            .map(|t| {
                let (kind, offset) = match t.storage {
                    Storage::Arena { offset } => ("arena", offset),
                    Storage::Const { offset, .. } => ("const", offset),
                };
                json!({"name": t.name, "dtype": t.dtype.name(), "shape": t.shape.dims(), "quant": quant_json(&t.quant), "storage": kind, "offset": offset, "bytes": t.nbytes()})
            })
            .collect();
        let meta: serde_json::Map<String, serde_json::Value> = def
            .metadata
            .iter()
            .map(|m| {
                let v = match m.kind {
                    meta_kind::BYTES => json!(format!("<{} bytes>", m.value.len())),
                    _ => json!(String::from_utf8_lossy(&m.value)),
                };
                (m.key.clone(), v)
            })
            .collect();
        let out = json!({
            "inputs": io(&def.inputs), "outputs": io(&def.outputs), "ops": ops, "tensors": tensors,
            "arena_bytes": def.arena_bytes, "arena_lower_bound": lower, "metadata": meta,
            "package_bytes": model.bytes().len(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{}: {} bytes, {} ops, {} tensors",
        path.display(),
        model.bytes().len(),
        def.ops.len(),
        def.tensors.len()
    );
    let show = |title: &str, ts: &[usize]| {
        println!("{title}:");
        for &t in ts {
            let td = &def.tensors[t];
            println!(
                "  #{t} {} {} {:?}{}",
                td.name,
                td.dtype.name(),
                td.shape.dims(),
                quant_text(&td.quant)
            );
        }
    };
    show("inputs", &def.inputs);
    show("outputs", &def.outputs);
    let gap = if lower > 0 {
        100.0 * (def.arena_bytes as f64 / lower as f64 - 1.0)
    } else {
        0.0
    };
    println!(
        "arena: {} bytes (lower bound {} bytes, +{gap:.1}%)",
        def.arena_bytes, lower
    );
    if def.ops.iter().any(|op| {
        op.outputs
            .iter()
            .filter_map(|&t| usize::try_from(t).ok())
            .any(|t| def.tensors[t].dtype == ferrite_runtime::DType::I8)
    }) {
        println!(
            "int8 rounding: {}",
            match def.rounding {
                ferrite_runtime::Rounding::FixedPoint =>
                    "TFLite (fixed-point multipliers, half away from zero)",
                ferrite_runtime::Rounding::Float { uint8: false } =>
                    "ONNX Runtime (f32 scales, half to even)",
                ferrite_runtime::Rounding::Float { uint8: true } =>
                    "ONNX Runtime (f32 scales, half to even; uint8 model held as int8)",
            }
        );
    }
    println!("ops:");
    for (i, (op, k)) in def.ops.iter().zip(&kernels).enumerate() {
        let names = |v: &[i32]| -> String {
            v.iter()
                .map(|&t| {
                    if t < 0 {
                        "-".to_string()
                    } else {
                        format!("#{t}")
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        println!(
            "  {i:3} {:<24} {} -> {}  [{k}]",
            op.code.name(),
            names(&op.inputs),
            names(&op.outputs)
        );
    }
    println!("tensors:");
    for (i, t) in def.tensors.iter().enumerate() {
        let loc = match t.storage {
            Storage::Arena { offset } => format!("arena@{offset}"),
            Storage::Const { len, .. } => format!("const {len} B"),
        };
        println!(
            "  #{i:<4} {:<40} {:<8} {:?}{}  {loc}",
            t.name,
            t.dtype.name(),
            t.shape.dims(),
            quant_text(&t.quant)
        );
    }
    if !def.metadata.is_empty() {
        println!("metadata:");
        for m in &def.metadata {
            match m.kind {
                meta_kind::BYTES => println!("  {}: <{} bytes>", m.key, m.value.len()),
                _ => println!("  {}: {}", m.key, String::from_utf8_lossy(&m.value)),
            }
        }
    }
    if let Err(e) = session {
        bail!("the model cannot run on this runtime: {e}");
    }
    Ok(())
}

/// Resolves `--input` arguments (positional or NAME=FILE) to one array per model input.
fn read_inputs(args: &[String], infos: &[IoInfo]) -> Result<Vec<Array>> {
    let mut slots: Vec<Option<Array>> = vec![None; infos.len()];
    let mut next = 0;
    for a in args {
        let (slot, file) = match a.split_once('=') {
            Some((name, file)) if !Path::new(a).exists() => {
                let k = infos.iter().position(|i| i.name == name).with_context(|| {
                    let names: Vec<_> = infos.iter().map(|i| i.name.as_str()).collect();
                    format!(
                        "the model has no input named '{name}' (inputs: {})",
                        names.join(", ")
                    )
                })?;
                (k, PathBuf::from(file))
            }
            _ => {
                while next < slots.len() && slots[next].is_some() {
                    next += 1;
                }
                (next, PathBuf::from(a))
            }
        };
        if slot >= infos.len() {
            bail!("too many inputs: the model takes {}", infos.len());
        }
        if slots[slot].is_some() {
            bail!("input '{}' given twice", infos[slot].name);
        }
        slots[slot] = Some(npy::read(&file)?);
    }
    slots
        .into_iter()
        .zip(infos)
        .map(|(s, i)| {
            s.with_context(|| {
                format!(
                    "missing input '{}' ({} {:?})",
                    i.name,
                    i.dtype.name(),
                    i.shape.dims()
                )
            })
        })
        .collect()
}

/// Checks an array against a model input, quantizing float data for int8 inputs.
fn fit_input(a: Array, info: &IoInfo) -> Result<Array> {
    let want = info.shape.dims();
    if a.shape != want {
        bail!(
            "input '{}' has shape {:?}, the model expects {:?}",
            info.name,
            a.shape,
            want
        );
    }
    if a.dtype == info.dtype {
        return Ok(a);
    }
    match (a.dtype, info.dtype, &info.quant) {
        (DType::F32, DType::I8, Quant::PerTensor(q)) => {
            let data = a
                .as_f32()
                .iter()
                .map(|&x| quant::quantize_i8(x, *q) as u8)
                .collect();
            Ok(Array {
                dtype: DType::I8,
                shape: a.shape,
                data,
            })
        }
        _ => bail!(
            "input '{}' is {}, the model expects {}{}",
            info.name,
            a.dtype.name(),
            info.dtype.name(),
            if info.dtype == DType::I8 {
                " (or float32, quantized with the input's scale)"
            } else {
                ""
            }
        ),
    }
}

fn session_inputs(model_path: &Path, session: &Session<'_>, args: &[String]) -> Result<Vec<Array>> {
    let infos = session.inputs();
    read_inputs(args, infos)?
        .into_iter()
        .zip(infos)
        .map(|(a, i)| fit_input(a, i))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("bad input for {}", model_path.display()))
}

pub fn run(path: &Path, args: &[String], out_dir: &Path) -> Result<()> {
    let model = load(path)?;
    let mut session =
        Session::new(&model, Options::default()).context("cannot prepare the model")?;
    let arrays = session_inputs(path, &session, args)?;
    for (i, a) in arrays.iter().enumerate() {
        session.set_input(
            i,
            TensorView {
                dtype: a.dtype,
                shape: &a.shape,
                data: &a.data,
            },
        )?;
    }
    let t0 = Instant::now();
    session.invoke()?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut listing = Vec::new();
    for (i, info) in session.outputs().iter().enumerate() {
        let v = session.output(i)?;
        let a = Array {
            dtype: v.dtype,
            shape: v.shape.to_vec(),
            data: v.data.to_vec(),
        };
        let file = out_dir.join(format!("output{i}.npy"));
        npy::write(&file, &a)?;
        listing.push(json!({"name": info.name, "file": format!("output{i}.npy"), "shape": a.shape, "dtype": a.dtype.name(), "quant": quant_json(&info.quant)}));
        println!(
            "output{i} {} {} {:?}{}",
            info.name,
            a.dtype.name(),
            a.shape,
            summary(&a, &info.quant)
        );
    }
    std::fs::write(
        out_dir.join("outputs.json"),
        serde_json::to_string_pretty(&listing)? + "\n",
    )?;
    println!("ran in {ms:.3} ms; outputs in {}", out_dir.display());
    Ok(())
}

/// `; max V at index I` for a float or int8 output (int8 also shows the real value).
fn summary(a: &Array, q: &Quant) -> String {
    let vals: Vec<f32> = match (a.dtype, q) {
        (DType::F32, _) => a.as_f32(),
        (DType::I8, Quant::PerTensor(p)) => a
            .data
            .iter()
            .map(|&b| quant::dequantize_i8(b as i8, *p))
            .collect(),
        _ => return String::new(),
    };
    match vals.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)) {
        Some((i, v)) => format!("; max {v:.4} at index {i}"),
        None => String::new(),
    }
}

/// Timed runs per session between switches when several thread counts
/// alternate, and untimed runs that first bring a session's arena and
/// weights back into the caches.
const BENCH_ROUND: usize = 10;
const BENCH_REWARM: usize = 2;

#[allow(clippy::too_many_arguments)]
pub fn bench(
    path: &Path,
    runs: usize,
    warmup: usize,
    threads: &[usize],
    args: &[String],
    as_json: bool,
    profile: bool,
) -> Result<()> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    if threads.is_empty() || threads.contains(&0) {
        bail!("--threads must be at least 1 (or a list such as 1,2)");
    }
    let model = load(path)?;
    let mut sessions = Vec::with_capacity(threads.len());
    for &t in threads {
        let opts = Options {
            threads: t,
            ..Options::default()
        };
        let mut session = Session::new(&model, opts)
            .with_context(|| format!("cannot prepare the model with {t} thread(s)"))?;
        set_bench_inputs(path, &mut session, args)?;
        for _ in 0..warmup {
            session.invoke()?;
        }
        sessions.push(session);
    }
    // One session: back-to-back runs. Several: rounds of BENCH_ROUND runs
    // each in turn, so that load from elsewhere falls on all of them alike.
    let mut times = vec![Vec::with_capacity(runs); sessions.len()];
    let alternate = sessions.len() > 1;
    let round = if alternate { BENCH_ROUND } else { runs };
    while times[0].len() < runs {
        for (s, t) in sessions.iter_mut().zip(&mut times) {
            if alternate {
                for _ in 0..BENCH_REWARM {
                    s.invoke()?;
                }
            }
            for _ in 0..round.min(runs - t.len()) {
                let t0 = Instant::now();
                s.invoke()?;
                t.push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    let mut first_median = None;
    for ((session, mut times), &t) in sessions.iter_mut().zip(times).zip(threads) {
        let in_order = times.clone();
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        let (min, median, p90) = (times[0], pct(0.5), pct(0.9));
        let speedup = *first_median.get_or_insert(median) / median;
        if as_json {
            // Per-run times (in run order) and the kernel each op got on this CPU.
            let kernels: Vec<_> = model
                .def()
                .ops
                .iter()
                .zip(session.kernel_names())
                .map(|(op, k)| json!({"op": op.code.name(), "kernel": k}))
                .collect();
            let mut v = json!({"runs": runs, "threads": t, "min_ms": min, "median_ms": median,
                               "p90_ms": p90, "times_ms": in_order, "kernels": kernels});
            if threads.len() > 1 {
                v["speedup_vs_first"] = json!(speedup);
            }
            println!("{v}");
        } else {
            let vs = if threads.len() > 1 && t != threads[0] {
                format!(", {speedup:.2}x the {}-thread median", threads[0])
            } else {
                String::new()
            };
            println!(
                "{}: {runs} runs, {t} thread(s): min {min:.3} ms, median {median:.3} ms, p90 {p90:.3} ms{vs}",
                path.display()
            );
        }
        if profile {
            print_profile(&model, session, runs, t)?;
        }
    }
    Ok(())
}

/// Sets every input of `session`: from `args` (as for `run`), or seeded
/// random values when there are none.
fn set_bench_inputs(path: &Path, session: &mut Session<'_>, args: &[String]) -> Result<()> {
    let arrays = if args.is_empty() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        session
            .inputs()
            .iter()
            .map(|i| {
                let n = i.numel();
                let data: Vec<u8> = match i.dtype {
                    DType::F32 => (0..n)
                        .flat_map(|_| rng.gen_range(-1.0f32..1.0).to_le_bytes())
                        .collect(),
                    _ => (0..n * i.dtype.size()).map(|_| rng.gen()).collect(),
                };
                Array {
                    dtype: i.dtype,
                    shape: i.shape.dims().to_vec(),
                    data,
                }
            })
            .collect()
    } else {
        session_inputs(path, session, args)?
    };
    for (i, a) in arrays.iter().enumerate() {
        session.set_input(
            i,
            TensorView {
                dtype: a.dtype,
                shape: &a.shape,
                data: &a.data,
            },
        )?;
    }
    Ok(())
}

/// Per-op times: `runs` more inferences through `invoke_observed`, timing
/// the gap between consecutive ops' callbacks; prints each op's median, its
/// share of the total, and its kernel, slowest first.
fn print_profile(
    model: &Model<'_>,
    session: &mut Session<'_>,
    runs: usize,
    threads: usize,
) -> Result<()> {
    let ops = model.def().ops.len();
    let mut samples = vec![Vec::with_capacity(runs); ops];
    for _ in 0..runs {
        let mut last = Instant::now();
        session.invoke_observed(|i, _| {
            let now = Instant::now();
            samples[i].push((now - last).as_secs_f64() * 1e3);
            last = now;
        })?;
    }
    let mut rows: Vec<(usize, f64)> = samples
        .iter_mut()
        .enumerate()
        .map(|(i, v)| {
            v.sort_by(f64::total_cmp);
            (i, v.get(v.len() / 2).copied().unwrap_or(0.0))
        })
        .collect();
    let total: f64 = rows.iter().map(|r| r.1).sum();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let kernels = session.kernel_names();
    println!(
        "per-op medians over {runs} runs, {threads} thread(s) (sum {total:.3} ms), slowest first:"
    );
    for (i, t) in rows {
        println!(
            "  {i:>4} {:<22} {t:>8.3} ms {:>5.1}%  {}",
            model.def().ops[i].code.name(),
            100.0 * t / total.max(f64::MIN_POSITIVE),
            kernels[i]
        );
    }
    Ok(())
}
