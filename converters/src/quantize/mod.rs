//! Post-training int8 quantization with calibration (`--quantize int8`).
//!
//! [`quantize`] takes a float IR [`Graph`] (from any importer) and returns a
//! mixed-precision one:
//!
//! 1. unless `--no-equalize`, the channels between consecutive convs are
//!    balanced on the calibration samples ([`equalize`]; the float function
//!    is unchanged); the float graph is packaged and run on the calibration
//!    samples ([`calib`]) through [`Session::invoke_observed`], recording
//!    every tensor's range ([`observe`]);
//! 2. unless `--weight-rounding nearest`, GPTQ ([`gptq`]) chooses how every
//!    conv / depthwise / fully-connected layer's int8 weights round, from
//!    its inputs on the calibration samples (one more float pass);
//!    [`plan::assign`] picks every tensor's int8 parameters (shared ranges,
//!    fixed output ranges, the concat trap), [`plan::rewrite`] builds the
//!    int8 graph with QUANTIZE/DEQUANTIZE at float boundaries; with
//!    `--calib-method auto` (the default) this is done once per calibration
//!    method, and the method whose int8 outputs are closest to float on the
//!    first [`CHOICE_SAMPLES`] held-out samples is kept;
//! 3. the result is prepared by the runtime; an op the runtime rejects in
//!    int8 stays float (and the report says why);
//! 4. int8 and float are compared op by op on held-out samples; with
//!    `--min-sqnr`, the first int8 op below the threshold is kept float and
//!    the model is rebuilt, until every int8 op meets it;
//! 5. unless `--no-bias-correction`, each int8 conv's mean output error is
//!    subtracted from its bias, layer after layer (kept only when the
//!    outputs improve);
//! 6. a summary paragraph, and with `--report` an HTML page and `quant.json`.
//!
//! Graph outputs declared as sigmoid logits (`QuantizeOptions::logit_outputs`,
//! a detector's scores) get the range a LOGISTIC input gets, and their
//! agreement with float is measured after the sigmoid. The weighted ops
//! that make the outputs in `QuantizeOptions::float_heads` (a detector's
//! heads, see [`plan::heads`]) stay float, and so does data movement whose
//! inputs all come from float ops.
//!
//! Held-out samples: with `--calib-samples N`, the first N samples of the
//! folder calibrate and the following ones (up to 64) are held out for the
//! measurements. When no sample is left over, the measurements use the
//! calibration samples and say so.

pub mod calib;
pub mod equalize;
pub mod gptq;
pub mod observe;
pub mod plan;
pub mod report;

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use ferrite_runtime::{
    DType, Error as RtError, Model, OpCode, Options, Quant, Session, TensorView,
};

use crate::ir::Graph;
use crate::QuantizeOptions;
use calib::Sample;
use ferrite_pipelines::spec::PreprocessSpec;
use observe::{Choice, Method, Observer};

/// Most held-out samples used for the measurements.
pub const MAX_EVAL_SAMPLES: usize = 64;
/// Held-out samples used per `--min-sqnr` iteration.
const SEARCH_SAMPLES: usize = 8;
/// Samples on which `--calib-method auto` compares the methods: held-out
/// ones (calibration samples favour the ranges fitted to them: on the
/// demo's ten images, with none held out, `minmax` wins), the
/// calibration samples only when none are held out.
pub const CHOICE_SAMPLES: usize = 16;

/// The quantized graph and what was learned making it.
pub struct Quantized {
    pub graph: Graph,
    /// One paragraph for the user.
    pub summary: String,
    pub report: report::Report,
}

/// Why a node stayed float.
#[derive(Debug, Clone)]
pub struct FloatOp {
    pub node: usize,
    pub reason: String,
}

/// Agreement statistics between a float tensor and its int8 counterpart.
#[derive(Debug, Clone, Copy, Default)]
pub struct Agreement {
    pub sum_ref2: f64,
    pub sum_err2: f64,
    pub dot: f64,
    pub sum_q2: f64,
    pub max_abs_err: f64,
    pub count: u64,
}

impl Agreement {
    /// Adds one pair of tensors.
    pub fn add(&mut self, reference: &[f32], approx: &[f32]) {
        for (&a, &b) in reference.iter().zip(approx) {
            let (a, b) = (a as f64, b as f64);
            self.sum_ref2 += a * a;
            self.sum_err2 += (a - b) * (a - b);
            self.dot += a * b;
            self.sum_q2 += b * b;
            self.max_abs_err = self.max_abs_err.max((a - b).abs());
        }
        self.count += reference.len() as u64;
    }

    /// Error energy / signal energy (0 for an exact match, 1 when the
    /// reference is all zeros and the approximation isn't).
    pub fn relative_noise(&self) -> f64 {
        if self.sum_err2 == 0.0 {
            0.0
        } else if self.sum_ref2 == 0.0 {
            1.0
        } else {
            self.sum_err2 / self.sum_ref2
        }
    }

    /// Signal-to-quantization-noise ratio in dB (capped at 150 for exact matches).
    pub fn sqnr_db(&self) -> f64 {
        noise_db(self.relative_noise())
    }

    /// Cosine similarity (1 when both are zero).
    pub fn cosine(&self) -> f64 {
        let d = (self.sum_ref2 * self.sum_q2).sqrt();
        if d == 0.0 {
            if self.sum_ref2 == self.sum_q2 {
                1.0
            } else {
                0.0
            }
        } else {
            self.dot / d
        }
    }
}

/// A relative noise energy in dB of SQNR (capped at 150 for exact matches).
pub fn noise_db(relative_noise: f64) -> f64 {
    if relative_noise == 0.0 {
        150.0
    } else {
        (-10.0 * relative_noise.log10()).min(150.0)
    }
}

/// End-to-end agreement of one graph output.
#[derive(Debug, Clone)]
pub struct OutputAgreement {
    pub name: String,
    pub agreement: Agreement,
    /// Top-1 agreement (equal argmax) for vector outputs: (agree, total).
    pub top1: Option<(usize, usize)>,
}

/// Results of comparing an int8 build with the float model.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// Per source node (None for nodes without f32 outputs).
    pub per_node: Vec<Option<Agreement>>,
    pub outputs: Vec<OutputAgreement>,
    pub samples: usize,
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The real values of an output view (f32, or int8 dequantized with `quant`).
fn real_values(view: &TensorView<'_>, quant: &Quant) -> Option<Vec<f32>> {
    match (view.dtype, quant) {
        (DType::F32, _) => Some(f32s(view.data)),
        (DType::I8, Quant::PerTensor(q)) => Some(
            view.data
                .iter()
                .map(|&b| ferrite_runtime::quant::dequantize_i8(b as i8, *q))
                .collect(),
        ),
        _ => None,
    }
}

fn load_model(bytes: &[u8]) -> Result<Model<'static>> {
    Model::from_vec(bytes).map_err(|e| anyhow!("internal error: a written package is invalid: {e}"))
}

fn set_input(s: &mut Session<'_>, model: &Model<'_>, data: &[f32]) -> Result<()> {
    let t = &model.def().tensors[model.inputs()[0]];
    match (t.dtype, &t.quant) {
        (DType::I8, Quant::PerTensor(q)) => {
            let v: Vec<i8> = data
                .iter()
                .map(|&x| ferrite_runtime::quant::quantize_i8(x, *q))
                .collect();
            s.set_input(0, TensorView::i8(&v, t.shape.dims()))?;
        }
        _ => s.set_input_f32(0, data)?,
    }
    Ok(())
}

/// Threads the converter's float and int8 runs (and GPTQ) use: every core
/// this process may run on. Results do not depend on it: each kernel's
/// output is the same for any thread count (the runtime's contract tests).
pub(crate) fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A session for measuring `model`, on [`worker_threads`].
fn session<'m>(model: &'m Model<'m>) -> Result<Session<'m>> {
    let options = Options {
        threads: worker_threads(),
        ..Options::default()
    };
    Ok(Session::new(model, options)?)
}

fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}

/// Runs the float model over `samples`, recording every f32 activation's
/// min/max, then (with `histogram`) a histogram.
fn calibrate(
    g: &Graph,
    model: &Model<'_>,
    samples: &[Sample],
    histogram: bool,
) -> Result<Vec<Observer>> {
    let mut obs = vec![Observer::default(); g.tensors.len()];
    let mut session = session(model)?;
    let passes = if histogram { 2 } else { 1 };
    let pb = progress(samples.len() * passes, "calibrating");
    for pass in 0..passes {
        for s in samples {
            session.set_input_f32(0, &s.data)?;
            let input = g.inputs[0];
            let mut record = |t: usize, v: &[f32]| {
                if pass == 0 {
                    obs[t].record_minmax(v)
                } else {
                    obs[t].record_hist(v)
                }
            };
            record(input, &s.data);
            session.invoke_observed(|i, outs| {
                for (k, view) in outs.iter().enumerate() {
                    if view.dtype == DType::F32 {
                        if let Some(&t) = g.nodes[i].outputs.get(k) {
                            record(t, &f32s(view.data));
                        }
                    }
                }
            })?;
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    Ok(obs)
}

/// The largest |value| of every channel (last axis) of each pair's tensor
/// over `samples`, running the float `model` (whose op `i` is node `i`).
fn channel_absmax(
    model: &Model<'_>,
    samples: &[Sample],
    pairs: &[equalize::Pair],
) -> Result<Vec<Vec<f32>>> {
    let mut session = session(model)?;
    let mut absmax: Vec<Vec<f32>> = vec![Vec::new(); pairs.len()];
    for s in samples {
        session.set_input_f32(0, &s.data)?;
        session.invoke_observed(|i, outs| {
            let Some(k) = pairs.iter().position(|p| p.producer == i) else {
                return;
            };
            let Some(view) = outs.first().filter(|v| v.dtype == DType::F32) else {
                return;
            };
            let c = view.shape.last().copied().unwrap_or(1).max(1);
            let m = &mut absmax[k];
            m.resize(c, 0.0);
            for (j, v) in f32s(view.data).iter().enumerate() {
                m[j % c] = m[j % c].max(v.abs());
            }
        })?;
    }
    Ok(absmax)
}

fn sigmoid_all(v: &mut [f32]) {
    for x in v {
        *x = 1.0 / (1.0 + (-*x).exp());
    }
}

/// Compares the int8 build (`qbytes`, whose op `m` implements source node
/// `origin_of[m]`) with the float model on `samples`. Tensors marked in
/// `logits` (read only through a sigmoid, see [`plan::logit_only`]) are
/// compared after the sigmoid: that is what their readers see, and their
/// int8 range deliberately saturates far-out logits.
pub fn evaluate(
    g: &Graph,
    float_model: &Model<'_>,
    qbytes: &[u8],
    origin_of: &[Option<usize>],
    samples: &[Sample],
    logits: &[bool],
) -> Result<Evaluation> {
    let is_logit = |t: usize| logits.get(t).copied().unwrap_or(false);
    let qmodel = load_model(qbytes)?;
    let qdef = qmodel.def();
    let mut fs = session(float_model)?;
    let mut qs = session(&qmodel)?;
    let mut ev = Evaluation {
        per_node: vec![None; g.nodes.len()],
        outputs: g
            .outputs
            .iter()
            .map(|&o| OutputAgreement {
                name: g.tensors[o].name.clone(),
                agreement: Agreement::default(),
                top1: None,
            })
            .collect(),
        samples: samples.len(),
    };
    let mut float_out: Vec<Vec<f32>> = vec![Vec::new(); g.nodes.len()];
    for s in samples {
        fs.set_input_f32(0, &s.data)?;
        fs.invoke_observed(|i, outs| {
            let buf = &mut float_out[i];
            buf.clear();
            for v in outs {
                if v.dtype == DType::F32 {
                    buf.extend(f32s(v.data));
                }
            }
        })?;
        set_input(&mut qs, &qmodel, &s.data)?;
        let per_node = &mut ev.per_node;
        qs.invoke_observed(|m, outs| {
            let Some(Some(n)) = origin_of.get(m) else {
                return;
            };
            let mut vals = Vec::new();
            for (k, v) in outs.iter().enumerate() {
                let t = qdef.ops[m].outputs.get(k).copied().unwrap_or(-1);
                let Some(td) = usize::try_from(t).ok().and_then(|t| qdef.tensors.get(t)) else {
                    return;
                };
                match real_values(v, &td.quant) {
                    Some(r) => vals.extend(r),
                    None => return,
                }
            }
            let mut reference = std::borrow::Cow::Borrowed(&float_out[*n]);
            if g.nodes[*n].outputs.iter().all(|&t| is_logit(t)) {
                sigmoid_all(reference.to_mut());
                sigmoid_all(&mut vals);
            }
            if !reference.is_empty() && reference.len() == vals.len() {
                per_node[*n]
                    .get_or_insert_with(Agreement::default)
                    .add(&reference, &vals);
            }
        })?;
        for (i, out) in ev.outputs.iter_mut().enumerate() {
            let mut f = fs.output_f32(i)?.to_vec();
            let view = qs.output(i)?;
            let qt = &qdef.tensors[qdef.outputs[i]];
            let Some(mut q) = real_values(&view, &qt.quant) else {
                continue;
            };
            if g.outputs.get(i).is_some_and(|&t| is_logit(t)) {
                sigmoid_all(&mut f);
                sigmoid_all(&mut q);
            }
            out.agreement.add(&f, &q);
            if f.len() >= 2 && qt.shape.dims().iter().filter(|&&d| d > 1).count() == 1 {
                let argmax = |v: &[f32]| {
                    v.iter()
                        .enumerate()
                        .fold(
                            (0, f32::NEG_INFINITY),
                            |b, (i, &x)| if x > b.1 { (i, x) } else { b },
                        )
                        .0
                };
                let t = out.top1.get_or_insert((0, 0));
                t.0 += (argmax(&f) == argmax(&q)) as usize;
                t.1 += 1;
            }
        }
    }
    // An SSD that ends in TFLite's post-processing op outputs a few selected
    // boxes, class ids and a count, where one changed choice reads as a
    // large error. What the network feeds the op is judged instead (when
    // both feeding nodes run in int8).
    if let Some(op) = g
        .nodes
        .iter()
        .find(|n| n.code == OpCode::DetectionPostprocess)
    {
        let fed: Option<Vec<OutputAgreement>> = op
            .inputs
            .iter()
            .take(2)
            .map(|&t| {
                let t = t?;
                let n = g.nodes.iter().position(|m| m.outputs.contains(&t))?;
                Some(OutputAgreement {
                    name: format!(
                        "{} (read by the detection post-processing)",
                        g.tensors[t].name
                    ),
                    agreement: ev.per_node[n]?,
                    top1: None,
                })
            })
            .collect();
        if let Some(fed) = fed {
            ev.outputs = fed;
        }
    }
    Ok(ev)
}

/// Calibration samples used to measure (and judge) bias correction.
const BIAS_SAMPLES: usize = 16;

/// The outputs' mean relative noise energy (lower is better): each output's
/// error energy / signal energy, averaged over the outputs, so each output
/// counts alike whatever its scale.
fn output_noise(ev: &Evaluation) -> f64 {
    let n = ev.outputs.len().max(1) as f64;
    ev.outputs
        .iter()
        .map(|o| o.agreement.relative_noise())
        .sum::<f64>()
        / n
}

/// Bias correction shifts: the mean int8 − float error per output channel
/// (last axis) of every int8 conv / depthwise / fully-connected node with a
/// bias, over `samples`.
///
/// The nodes are corrected one at a time in execution order, each measured
/// with the corrections before it already applied: a node's error includes
/// what it inherits from the nodes before it, and correcting every node for
/// its whole measured error at once would correct the inherited part many
/// times over. The float reference is clamped to the int8 output's range:
/// an output whose range was narrowed on purpose (a score head's [−8, 8])
/// must not be "corrected" for the clipping.
#[allow(clippy::too_many_arguments)]
fn bias_shifts(
    g: &Graph,
    float_model: &Model<'_>,
    int8: &[bool],
    assignment: &plan::Assignment,
    int8_io: bool,
    base: &plan::Adjust,
    samples: &[Sample],
) -> Result<HashMap<usize, Vec<f32>>> {
    let wanted: Vec<usize> = (0..g.nodes.len())
        .filter(|&n| {
            let node = &g.nodes[n];
            int8[n]
                && plan::weight_axis(node.code).is_some()
                && node.inputs.get(2).copied().flatten().is_some()
        })
        .collect();
    // Each node's int8 output range is fixed by the assignment (a bias shift
    // does not move it), so the float side is one pass: per-channel sums of
    // the float outputs clamped to that range.
    let ranges: HashMap<usize, (f32, f32)> = wanted
        .iter()
        .filter_map(|&n| {
            let q = assignment.qp[*g.nodes[n].outputs.first()?]?;
            let lo = (-128 - q.zero_point) as f32 * q.scale;
            Some((n, (lo, (127 - q.zero_point) as f32 * q.scale)))
        })
        .collect();
    let mut float_sums: HashMap<usize, (Vec<f64>, u64)> = HashMap::new();
    let mut fs = session(float_model)?;
    for s in samples {
        fs.set_input_f32(0, &s.data)?;
        fs.invoke_observed(|i, outs| {
            let (Some(&(lo, hi)), Some(v)) = (ranges.get(&i), outs.first()) else {
                return;
            };
            let c = v.shape.last().copied().unwrap_or(1);
            let values = f32s(v.data);
            channel_sums(float_sums.entry(i).or_default(), &values, c, |x| {
                x.clamp(lo, hi)
            });
        })?;
    }
    let mut adjust = base.clone();
    let pb = progress(wanted.len(), "bias");
    for &n in &wanted {
        pb.inc(1);
        let Some((fsum, fcount)) = float_sums.get(&n) else {
            continue;
        };
        let rw = plan::rewrite(g, int8, assignment, int8_io, &adjust);
        // Only biases differ from the build that was prepared already, so
        // the runtime accepts this one too: one preparation (not
        // `try_prepare`'s second) is enough.
        let (qbytes, _) = crate::package::write(&rw.graph)?;
        let qmodel = load_model(&qbytes)?;
        let qdef = qmodel.def();
        let Some(m) = rw.origin_of.iter().position(|&o| o == Some(n)) else {
            continue;
        };
        let t = qdef.ops[m].outputs[0] as usize;
        // (The runtime accepted the same ops with the first build's
        // biases; should it refuse this one, the layer stays uncorrected.)
        let Ok(mut qs) = session(&qmodel) else {
            continue;
        };
        let mut qsums: (Vec<f64>, u64) = Default::default();
        for s in samples {
            set_input(&mut qs, &qmodel, &s.data)?;
            qs.invoke_first_observed(m + 1, |i, outs| {
                if i != m {
                    return;
                }
                let Some(v) = outs.first() else { return };
                if let Some(real) = real_values(v, &qdef.tensors[t].quant) {
                    let c = v.shape.last().copied().unwrap_or(1);
                    channel_sums(&mut qsums, &real, c, |x| x);
                }
            })?;
        }
        if qsums.1 > 0 && qsums.1 == *fcount && qsums.0.len() == fsum.len() {
            let k = qsums.1 as f64;
            let shift = qsums
                .0
                .iter()
                .zip(fsum)
                .map(|(q, f)| ((q - f) / k) as f32)
                .collect();
            adjust.bias_shift.insert(n, shift);
        }
    }
    pb.finish_and_clear();
    Ok(adjust.bias_shift)
}

/// Adds `values` (channels on the last axis, `c` of them), mapped by `f`,
/// to per-channel sums, and counts the pixels.
fn channel_sums(acc: &mut (Vec<f64>, u64), values: &[f32], c: usize, f: impl Fn(f32) -> f32) {
    if c == 0 || !values.len().is_multiple_of(c) {
        return;
    }
    acc.0.resize(c, 0.0);
    for (i, &v) in values.iter().enumerate() {
        acc.0[i % c] += f(v) as f64;
    }
    acc.1 += (values.len() / c) as u64;
}

/// Whether `entry` (a `--keep-float` item) names node `n`: its index in the
/// source ("12" for "op 12 (CONV_2D)"), its origin text, its op name (every
/// op of that kind) or one of its output tensors' names.
fn names_node(g: &Graph, n: usize, entry: &str) -> bool {
    let node = &g.nodes[n];
    let e = entry.trim();
    node.origin == e
        || node.origin.starts_with(&format!("op {e} ("))
        || node.code.name().eq_ignore_ascii_case(e)
        || node.outputs.iter().any(|&o| g.tensors[o].name == e)
}

/// Packages `g`; on a runtime rejection returns the op index and message.
fn try_prepare(g: &Graph) -> Result<std::result::Result<Vec<u8>, (usize, String)>> {
    let (bytes, _) = crate::package::write(g)?;
    let model = load_model(&bytes)?;
    match Session::new(&model, Options::default()) {
        Ok(_) => Ok(Ok(bytes)),
        Err(e) => match e {
            RtError::UnsupportedConfig { op, .. }
            | RtError::ShapeMismatch { op, .. }
            | RtError::UnsupportedOp { op, .. } => Ok(Err((op, e.to_string()))),
            _ => bail!("the quantized model cannot run: {e}"),
        },
    }
}

/// One int8 build of the graph: the parameters, the rewritten graph and
/// its prepared package.
struct Build {
    /// The int8 mask after [`plan::assign`] (which may make more ops float).
    int8: Vec<bool>,
    assignment: plan::Assignment,
    rewritten: plan::Rewritten,
    bytes: Vec<u8>,
    /// Builds it took (one more per op the runtime rejected).
    attempts: usize,
}

/// Assigns int8 parameters with `ranges`, rewrites and prepares; an op the
/// runtime rejects in int8 is made float in `int8` (the reason recorded in
/// `float_ops`) and the build repeated.
#[allow(clippy::too_many_arguments)]
fn build(
    g: &Graph,
    int8: &mut [bool],
    float_ops: &mut Vec<FloatOp>,
    ranges: &[Option<(f32, f32)>],
    int8_io: bool,
    logit_outputs: &[usize],
    adjust: &plan::Adjust,
) -> Result<Build> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut trial = int8.to_vec();
        let assignment = plan::assign(g, &mut trial, ranges, int8_io, logit_outputs);
        let rewritten = plan::rewrite(g, &trial, &assignment, int8_io, adjust);
        match try_prepare(&rewritten.graph)? {
            Ok(bytes) => {
                return Ok(Build {
                    int8: trial,
                    assignment,
                    rewritten,
                    bytes,
                    attempts,
                })
            }
            Err((op, msg)) => match rewritten.origin_of.get(op).copied().flatten() {
                Some(n) if int8[n] => {
                    int8[n] = false;
                    float_ops.push(FloatOp {
                        node: n,
                        reason: format!("the runtime rejects it in int8: {msg}"),
                    });
                }
                _ => bail!("internal error: the quantized model cannot run: {msg}"),
            },
        }
    }
}

/// Quantizes `g` to int8 as `opts` asks. `preprocess` turns images into
/// inputs (needed for image folders): the package's pre-processing, see
/// [`crate::pipeline_meta::preprocess_spec`].
/// Errors name the calibration file or the option that is wrong.
pub fn quantize(
    g: &Graph,
    opts: &QuantizeOptions,
    preprocess: Option<&PreprocessSpec>,
) -> Result<Quantized> {
    let choice = Choice::parse(&opts.method)?;
    if let Some(report) = &opts.report {
        crate::check_parent_folder("--report", report)?;
    }
    // A RELU after a conv / fully-connected / ADD becomes that op's fused
    // activation, so the int8 output covers only [0, max] instead of
    // spending half its levels on values the RELU discards. (A no-op when
    // the import already ran the passes.)
    let mut fused = g.clone();
    if crate::passes::fuse_activations(&mut fused) > 0 {
        fused.remove_unused_tensors();
    }
    let g = &fused;
    if let Some(s) = opts.min_sqnr {
        if !s.is_finite() {
            bail!("--min-sqnr {s}: expected a number of dB");
        }
    }
    if g.inputs.len() != 1 {
        bail!(
            "calibration supports models with one input; this model has {}",
            g.inputs.len()
        );
    }
    let input = &g.tensors[g.inputs[0]];
    if input.dtype != DType::F32 {
        bail!(
            "--quantize int8 needs a float model; input '{}' is {}",
            input.name,
            input.dtype.name()
        );
    }
    if opts.samples == Some(0) {
        bail!("--calib-samples must be at least 1");
    }
    let n_cal = opts.samples.unwrap_or(usize::MAX);
    let limit = n_cal.saturating_add(MAX_EVAL_SAMPLES);
    let pb = progress(0, "loading");
    let mut samples = calib::load(&opts.calib, &input.shape, preprocess, limit, |k| {
        pb.set_length(k as u64);
        pb.set_position(k as u64);
    })?;
    pb.finish_and_clear();
    let eval: Vec<Sample> = if samples.len() > n_cal {
        samples.split_off(n_cal)
    } else {
        Vec::new()
    };
    let cal = samples;
    let eval_on_calibration = eval.is_empty();
    let eval_set: &[Sample] = if eval_on_calibration {
        &cal[..cal.len().min(MAX_EVAL_SAMPLES)]
    } else {
        &eval
    };

    // Activation equalization (unless `--no-equalize`, see [`equalize`]), measured on the
    // calibration samples; the equalized float graph computes the same
    // function and is the one quantized and compared against.
    let pairs = if opts.equalize {
        equalize::pairs(g)
    } else {
        Vec::new()
    };
    let mut equalized = g.clone();
    if !pairs.is_empty() {
        let (bytes, _) = crate::package::write(g)?;
        let absmax = channel_absmax(&load_model(&bytes)?, &cal, &pairs)
            .context("measuring channel ranges failed")?;
        for (p, a) in pairs.iter().zip(&absmax) {
            let s = equalize::scales(g, p, a);
            equalize::apply(&mut equalized, p, &s);
        }
    }
    let g = &equalized;

    let (fbytes, _) = crate::package::write(g)?;
    let fmodel = load_model(&fbytes)?;
    let obs =
        calibrate(g, &fmodel, &cal, choice.needs_histogram()).context("calibration failed")?;
    // Every tensor's int8 range by `method`.
    let ranges = |method: Method| -> Vec<Option<(f32, f32)>> {
        let mut r: Vec<Option<(f32, f32)>> = obs
            .iter()
            .map(|o| o.seen().then(|| method.select(o)))
            .collect();
        // A graph output's extremes are the answer (a classifier's top logit
        // is by definition its largest value): whatever the method, outputs
        // keep their whole observed range. On MobileNetV2 with `avgminmax`
        // this is worth 0.34 dB of end-to-end SQNR and 57 more top-1
        // agreements of 240.
        for &t in &g.outputs {
            if let Some(r) = r.get_mut(t).and_then(|r| r.as_mut()) {
                *r = Method::MinMax.select(&obs[t]);
            }
        }
        r
    };
    let mut method = match choice {
        Choice::Fixed(m) => m,
        Choice::Auto => Method::CANDIDATES[0],
    };
    let mut observed = ranges(method);

    // Graph output indices to tensors, checked.
    let outputs = |indices: &[usize], what: &str| -> Result<Vec<usize>> {
        indices
            .iter()
            .map(|&i| match g.outputs.get(i) {
                Some(&t) => Ok(t),
                None => bail!(
                    "output {i} is declared {what}, but the model has {} outputs",
                    g.outputs.len()
                ),
            })
            .collect()
    };
    let logit_outputs = outputs(&opts.logit_outputs, "as sigmoid logits")?;
    let logits = plan::logit_only(g, &logit_outputs);
    let heads = plan::heads(g, &outputs(&opts.float_heads, "a head to keep float")?);

    // Which nodes can run int8. What follows an SSD post-processing op
    // (its detections, and its working memory in the same tensor) stays
    // float: class ids and counts are not activations to quantize.
    let after_postprocess = plan::after(g, OpCode::DetectionPostprocess);
    let mut int8 = vec![false; g.nodes.len()];
    let mut float_ops: Vec<FloatOp> = Vec::new();
    for (n, node) in g.nodes.iter().enumerate() {
        let reason = if !plan::has_int8_kernel(node) {
            Some(format!("{} has no int8 kernel", node.code.name()))
        } else if after_postprocess[n] {
            Some("it reads the detections of DETECTION_POSTPROCESS".to_string())
        } else if node
            .outputs
            .iter()
            .any(|&o| g.tensors[o].dtype != DType::F32)
        {
            Some("its outputs are not float".to_string())
        } else if node.inputs.iter().flatten().any(|&t| {
            g.tensors[t].data.is_none()
                && (g.tensors[t].dtype != DType::F32 || observed[t].is_none())
        }) {
            Some("an input is not a calibrated float tensor".to_string())
        } else if heads.contains(&n) {
            Some("a detector head (box or score output): float unless --int8-heads".to_string())
        } else {
            opts.keep_float
                .iter()
                .find(|e| names_node(g, n, e))
                .map(|e| format!("--keep-float {e}"))
        };
        match reason {
            Some(reason) => float_ops.push(FloatOp { node: n, reason }),
            None => int8[n] = true,
        }
    }
    for e in &opts.keep_float {
        if !(0..g.nodes.len()).any(|n| names_node(g, n, e)) {
            bail!("--keep-float {e}: no op has that index, name or output tensor");
        }
    }

    // GPTQ rounding of the weights (unless `--weight-rounding nearest`): it
    // depends only on each layer's float weights and inputs, so it is done
    // once for every layer that may run int8.
    let mut adjust = plan::Adjust::default();
    let mut gptq_too_wide = 0;
    if opts.gptq {
        let nodes: Vec<usize> = (0..g.nodes.len()).filter(|&n| int8[n]).collect();
        let r =
            gptq::round_weights(g, &fmodel, &cal, &nodes).context("GPTQ weight rounding failed")?;
        adjust.rounded = r.weights;
        gptq_too_wide = r.too_wide;
    }
    adjust.prepare_weights(g);

    // `--calib-method auto`: one int8 build per method (ops the runtime
    // rejects in int8 made float, as below), compared on the outputs; the
    // chosen method's build is the first one of the loop below, where
    // --min-sqnr refines it (and bias correction after that).
    let mut iterations = 0usize;
    let mut trials: Vec<(Method, f64)> = Vec::new();
    let mut chosen: Option<Build> = None;
    if choice == Choice::Auto {
        let probe = &eval_set[..eval_set.len().min(CHOICE_SAMPLES)];
        let pb = progress(Method::CANDIDATES.len(), "methods");
        let mut best: Option<(f64, Vec<bool>, Vec<FloatOp>, Build)> = None;
        for m in Method::CANDIDATES {
            pb.inc(1);
            let r = ranges(m);
            let (mut i8, mut fo) = (int8.clone(), float_ops.clone());
            let b = build(
                g,
                &mut i8,
                &mut fo,
                &r,
                opts.int8_io,
                &logit_outputs,
                &adjust,
            )?;
            let ev = evaluate(g, &fmodel, &b.bytes, &b.rewritten.origin_of, probe, &logits)?;
            let noise = output_noise(&ev);
            trials.push((m, noise));
            // A non-finite noise (an output overflowing) never wins.
            if noise.is_finite() && best.as_ref().is_none_or(|b| noise < b.0) {
                method = m;
                best = Some((noise, i8, fo, b));
            }
        }
        pb.finish_and_clear();
        if let Some((_, i8, fo, b)) = best {
            (observed, int8, float_ops, chosen) = (ranges(method), i8, fo, Some(b));
        }
    }

    // Build, prepare, measure; repeat while an op misses --min-sqnr.
    let (rewritten, assignment, qbytes) = loop {
        let b = match chosen.take() {
            Some(b) => b,
            None => build(
                g,
                &mut int8,
                &mut float_ops,
                &observed,
                opts.int8_io,
                &logit_outputs,
                &adjust,
            )?,
        };
        iterations += b.attempts;
        if let Some(min) = opts.min_sqnr {
            let subset = &eval_set[..eval_set.len().min(SEARCH_SAMPLES)];
            let ev = evaluate(
                g,
                &fmodel,
                &b.bytes,
                &b.rewritten.origin_of,
                subset,
                &logits,
            )?;
            let worst = (0..g.nodes.len())
                .find(|&n| b.int8[n] && ev.per_node[n].is_some_and(|a| a.sqnr_db() < min));
            if let Some(n) = worst {
                let s = ev.per_node[n].map(|a| a.sqnr_db()).unwrap_or(0.0);
                int8[n] = false;
                float_ops.push(FloatOp {
                    node: n,
                    reason: format!("output SQNR {s:.1} dB < --min-sqnr {min} dB"),
                });
                continue;
            }
        }
        for (n, why) in &b.assignment.made_float {
            float_ops.push(FloatOp {
                node: *n,
                reason: why.clone(),
            });
        }
        int8 = b.int8;
        break (b.rewritten, b.assignment, b.bytes);
    };
    // Bias correction (off with `--no-bias-correction`): subtract each int8 conv /
    // fully-connected op's mean output error per channel (measured on
    // calibration samples) from its bias. Kept only when it raises the
    // end-to-end SQNR on those samples.
    let (rewritten, qbytes, bias_corrected) = if !opts.bias_correction {
        (rewritten, qbytes, false)
    } else {
        let probe = &cal[..cal.len().min(BIAS_SAMPLES)];
        let shifts = bias_shifts(g, &fmodel, &int8, &assignment, opts.int8_io, &adjust, probe)?;
        let corrected = plan::Adjust {
            bias_shift: shifts,
            ..adjust.clone()
        };
        let rw2 = plan::rewrite(g, &int8, &assignment, opts.int8_io, &corrected);
        match try_prepare(&rw2.graph)? {
            Ok(b2) if !corrected.bias_shift.is_empty() => {
                let before = evaluate(g, &fmodel, &qbytes, &rewritten.origin_of, probe, &logits)?;
                let after = evaluate(g, &fmodel, &b2, &rw2.origin_of, probe, &logits)?;
                if output_noise(&after) < output_noise(&before) {
                    (rw2, b2, true)
                } else {
                    (rewritten, qbytes, false)
                }
            }
            _ => (rewritten, qbytes, false),
        }
    };
    float_ops.sort_by_key(|f| f.node);
    float_ops.dedup_by_key(|f| f.node);

    let pb = progress(0, "evaluating");
    let ev = evaluate(g, &fmodel, &qbytes, &rewritten.origin_of, eval_set, &logits)?;
    pb.finish_and_clear();

    // The preprocess spec itself is stored by `pipeline_meta` (ferrite.preprocess).
    let mut graph = rewritten.graph;
    let rep = report::Report::build(report::Inputs {
        graph: g,
        int8: &int8,
        float_ops: &float_ops,
        observers: &obs,
        assignment: &assignment,
        weights: &rewritten.weights,
        eval: &ev,
        method,
        method_trials: &trials,
        choice_samples: if trials.is_empty() {
            0
        } else {
            eval_set.len().min(CHOICE_SAMPLES)
        },
        calibration_samples: cal.len(),
        eval_on_calibration,
        conversions: rewritten.conversions,
        bias_widened: rewritten.bias_widened,
        iterations,
        int8_io: opts.int8_io,
        bias_corrected,
        gptq_layers: adjust.rounded.keys().filter(|&&n| int8[n]).count(),
        gptq_too_wide,
        equalized: &pairs.iter().map(|p| p.tensor).collect::<Vec<_>>(),
        logit_outputs: &logit_outputs,
    });
    graph.set_meta(
        "quantization",
        ferrite_runtime::format::meta_kind::JSON,
        serde_json::to_vec(&rep.meta_json())?,
    );
    if let Some(path) = &opts.report {
        rep.write(path)?;
    }
    let summary = rep.summary(opts.report.as_deref());
    Ok(Quantized {
        graph,
        summary,
        report: rep,
    })
}

/// Where `quant.json` goes for a report at `html`.
pub fn json_path(html: &Path) -> std::path::PathBuf {
    html.with_file_name("quant.json")
}

/// Names of ops, for messages: `origin` of node `n`.
pub fn op_label(g: &Graph, n: usize) -> String {
    let node = &g.nodes[n];
    if node.origin.is_empty() {
        format!("#{n} {}", node.code.name())
    } else {
        node.origin.clone()
    }
}

#[allow(dead_code)]
fn is_weighted(code: OpCode) -> bool {
    plan::weight_axis(code).is_some()
}
