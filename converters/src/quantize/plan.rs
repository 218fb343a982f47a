//! Which ops run in int8, which quantization every tensor gets, and the
//! rewrite of a float [`Graph`] into a (mixed) int8 one.
//!
//! The rules follow TFLite's int8 quantization spec:
//! - weights of CONV_2D / FULLY_CONNECTED (axis 0) and DEPTHWISE_CONV_2D
//!   (axis 3) are symmetric per-channel int8 in [-127, 127]; their biases are
//!   int32 with scale `input_scale × weight_scale[c]`;
//! - activations are asymmetric per-tensor int8 over the calibrated range;
//! - LOGISTIC and SOFTMAX outputs are fixed at scale 1/256, zero-point -128,
//!   TANH at 1/128, 0;
//! - data-movement ops, pooling, resizing, MAXIMUM/MINIMUM and CONCATENATION
//!   keep values unchanged, so their inputs and outputs share one range (a
//!   union-find over tensors);
//! - a tensor whose only users are LOGISTIC (TANH) gets its range narrowed
//!   to [-8, 8] ([-4, 4]), beyond which the int8 output no longer changes;
//!   so does one read only (through data movement) by graph outputs that
//!   the caller declares as sigmoid logits (a detector's scores, whose
//!   sigmoid runs in the post-processing).
//!
//! The concat trap: a CONCATENATION joining inputs of very different ranges
//! (boxes next to scores in a detector head) would crush the small-range
//! input to a few levels of the shared scale. Such an input keeps its own
//! range. When the concat's result is only read in float (a graph output
//! with float I/O, or float ops), the concat runs in float on the
//! dequantized inputs, so nothing is lost; otherwise the small-range input
//! is requantized (int8 → int8 QUANTIZE) to the concat's parameters.

use std::collections::HashMap;

use ferrite_runtime::kernels::reference::math::UnaryFn;
use ferrite_runtime::{DType, OpCode, QParams, Quant};

use crate::ir::{Graph, Node, Tensor};

/// Concat inputs whose range is this many times narrower than the widest
/// input keep their own range.
pub const CONCAT_TRAP_RATIO: f32 = 4.0;
/// When a concat's result is only read in float, a smaller difference
/// already makes the float concat (each input dequantized with its own
/// scale) the better choice: it costs nothing in precision.
pub const FLOAT_CONCAT_RATIO: f32 = 1.25;

/// Whether the runtime has an int8 kernel for `node`: by op code, and for
/// UNARY by function (any real function is a 256-entry table in int8).
pub fn has_int8_kernel(node: &Node) -> bool {
    use OpCode::*;
    // A square (`MUL(x, x)`: a variance written out, `Pow(x, 2)` as ONNX
    // exporters write it) stays float: squaring doubles the dynamic range,
    // and one int8 scale for `x²` erases every `x` below a sixteenth of the
    // largest. (onnxruntime's quantize_static leaves Pow float too.)
    if node.code == Mul && node.inputs.len() == 2 && node.inputs[0] == node.inputs[1] {
        return false;
    }
    if node.code == Unary {
        return node
            .attrs
            .first()
            .and_then(|&f| UnaryFn::from_i32(f))
            .is_some_and(UnaryFn::is_real);
    }
    matches!(
        node.code,
        Conv2d
            | DepthwiseConv2d
            | FullyConnected
            | Add
            | Sub
            | Mul
            | Maximum
            | Minimum
            | Relu
            | Relu6
            | ReluN1To1
            | LeakyRelu
            | Prelu
            | HardSwish
            | Logistic
            | Tanh
            | Softmax
            | Pad
            | PadV2
            | PadMode
            | MaxPool2d
            | AveragePool2d
            | Mean
            | Reshape
            | Squeeze
            | ExpandDims
            | Concatenation
            | Split
            | SplitV
            | StridedSlice
            | Slice
            | Transpose
            | ResizeBilinear
            | ResizeNearestNeighbor
            | DepthToSpace
            | SpaceToDepth
    )
}

/// The tensors written by a `code` node or computed from one (directly or
/// through other nodes; nodes are in execution order).
pub fn reached_from(g: &Graph, code: OpCode) -> Vec<bool> {
    let mut reached = vec![false; g.tensors.len()];
    for node in &g.nodes {
        if node.code == code || node.inputs.iter().flatten().any(|&t| reached[t]) {
            for &o in &node.outputs {
                reached[o] = true;
            }
        }
    }
    reached
}

/// The nodes that read, directly or through other nodes, an output of a
/// `code` node.
pub fn after(g: &Graph, code: OpCode) -> Vec<bool> {
    let reached = reached_from(g, code);
    g.nodes
        .iter()
        .map(|node| node.inputs.iter().flatten().any(|&t| reached[t]))
        .collect()
}

/// Ops whose int8 form needs its inputs and outputs to share quantization.
pub fn shares_range(code: OpCode) -> bool {
    use OpCode::*;
    matches!(
        code,
        Reshape
            | Squeeze
            | ExpandDims
            | Pad
            | PadV2
            | PadMode
            | Transpose
            | Slice
            | StridedSlice
            | Split
            | SplitV
            | DepthToSpace
            | SpaceToDepth
            | MaxPool2d
            | AveragePool2d
            | ResizeBilinear
            | ResizeNearestNeighbor
            | Maximum
            | Minimum
            | Concatenation
    )
}

/// The weight operand's per-channel axis for ops with int8 weights.
pub fn weight_axis(code: OpCode) -> Option<usize> {
    match code {
        OpCode::Conv2d | OpCode::FullyConnected => Some(0),
        OpCode::DepthwiseConv2d => Some(3),
        _ => None,
    }
}

/// Asymmetric int8 parameters covering `[lo, hi]` (widened to include 0).
pub fn qparams_for(lo: f32, hi: f32) -> QParams {
    let lo = lo.min(0.0) as f64;
    let hi = hi.max(0.0) as f64;
    // A range that is all zero still needs a scale. A tiny one is kept as
    // it is: a floor of 1e-9 (as here before) left features of 1e-9 (a
    // randomly initialized YOLOv8's neck) one step wide, 4 dB end to end.
    let scale = if hi > lo {
        ((hi - lo) / 255.0).max(1e-30)
    } else {
        1e-9
    };
    let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
    QParams {
        scale: scale as f32,
        zero_point: zp,
    }
}

/// The fixed output quantization of LOGISTIC, SOFTMAX and TANH.
pub fn fixed_output(code: OpCode) -> Option<QParams> {
    match code {
        OpCode::Logistic | OpCode::Softmax => Some(QParams {
            scale: 1.0 / 256.0,
            zero_point: -128,
        }),
        OpCode::Tanh => Some(QParams {
            scale: 1.0 / 128.0,
            zero_point: 0,
        }),
        _ => None,
    }
}

fn is_const(g: &Graph, t: usize) -> bool {
    g.tensors[t].data.is_some()
}

fn is_f32_activation(g: &Graph, t: usize) -> bool {
    g.tensors[t].dtype == DType::F32 && !is_const(g, t)
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.0[b] = a;
        }
    }
}

/// The quantization decided for every tensor, plus what the report shows.
#[derive(Debug, Clone, Default)]
pub struct Assignment {
    /// Parameters for every f32 tensor that int8 code touches.
    pub qp: Vec<Option<QParams>>,
    /// The range each tensor's parameters cover (after sharing and narrowing).
    pub range: Vec<Option<(f32, f32)>>,
    /// Nodes turned float here (the concat trap, data movement between
    /// float ops), with the reason.
    pub made_float: Vec<(usize, String)>,
    /// Concat nodes that requantize a narrow input (node, input tensor, ratio).
    pub requantized: Vec<(usize, usize, f32)>,
}

/// Users of each tensor: (node, input slot).
pub fn consumers(g: &Graph) -> Vec<Vec<(usize, usize)>> {
    let mut c = vec![Vec::new(); g.tensors.len()];
    for (n, node) in g.nodes.iter().enumerate() {
        for (k, t) in node.inputs.iter().enumerate() {
            if let Some(t) = t {
                c[*t].push((n, k));
            }
        }
    }
    c
}

fn const_range(t: &Tensor) -> Option<(f32, f32)> {
    let v = t.f32_data()?;
    let lo = v.iter().copied().fold(0f32, f32::min);
    let hi = v.iter().copied().fold(0f32, f32::max);
    Some((lo, hi))
}

/// Ops that only move values (no arithmetic): a clip applied before them
/// equals the same clip applied after them.
fn moves_values(code: OpCode) -> bool {
    use OpCode::*;
    matches!(
        code,
        Reshape
            | Squeeze
            | ExpandDims
            | Transpose
            | Slice
            | StridedSlice
            | Split
            | SplitV
            | DepthToSpace
            | SpaceToDepth
            | Concatenation
            | PadMode
    )
}

/// The node writing each tensor (`None` for inputs and constants).
fn producers(g: &Graph) -> Vec<Option<usize>> {
    let mut p = vec![None; g.tensors.len()];
    for (n, node) in g.nodes.iter().enumerate() {
        for &o in &node.outputs {
            p[o] = Some(n);
        }
    }
    p
}

/// The heads of tensors `outputs` (graph outputs): the weighted ops (conv,
/// fully-connected) that produce them, reached back from each output
/// through data movement only.
pub fn heads(g: &Graph, outputs: &[usize]) -> Vec<usize> {
    let producer = producers(g);
    let mut found = Vec::new();
    let mut seen = vec![false; g.nodes.len()];
    let mut stack = outputs.to_vec();
    while let Some(t) = stack.pop() {
        let Some(n) = producer[t] else { continue };
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        let node = &g.nodes[n];
        if moves_values(node.code) {
            stack.extend(node.inputs.iter().flatten().filter(|&&t| !is_const(g, t)));
        } else if weight_axis(node.code).is_some() {
            found.push(n);
        }
    }
    found.sort_unstable();
    found
}

/// Which tensors are read only as logits: tensors whose every use is a
/// LOGISTIC, a graph output in `logit_outputs` (read through a sigmoid
/// after the model), or a data-movement op whose outputs are themselves
/// read only as logits.
pub fn logit_only(g: &Graph, logit_outputs: &[usize]) -> Vec<bool> {
    let users = consumers(g);
    let mut only = vec![false; g.tensors.len()];
    // Nodes come in execution order, so visiting them backwards settles
    // every consumer before its inputs.
    let settle = |t: usize, only: &mut Vec<bool>| {
        let is_output = g.outputs.contains(&t);
        if is_output && !logit_outputs.contains(&t) {
            return;
        }
        let users_ok = users[t].iter().all(|&(u, _)| {
            let node = &g.nodes[u];
            node.code == OpCode::Logistic
                || (moves_values(node.code) && node.outputs.iter().all(|&o| only[o]))
        });
        only[t] = users_ok && (is_output || !users[t].is_empty());
    };
    for node in g.nodes.iter().rev() {
        for &o in &node.outputs {
            settle(o, &mut only);
        }
    }
    only
}

/// Whether tensor `t` is a graph output or reaches one through data
/// movement only (reshapes, concats, slices...).
fn reaches_output(g: &Graph, users: &[Vec<(usize, usize)>], t: usize) -> bool {
    let mut stack = vec![t];
    let mut seen = vec![false; g.tensors.len()];
    while let Some(t) = stack.pop() {
        if std::mem::replace(&mut seen[t], true) {
            continue;
        }
        if g.outputs.contains(&t) {
            return true;
        }
        for &(u, _) in &users[t] {
            if moves_values(g.nodes[u].code) {
                stack.extend(&g.nodes[u].outputs);
            }
        }
    }
    false
}

/// Logits beyond ±this are read as saturated: the sigmoid of 8 differs from
/// 1 by 3.4e-4, less than the int8 LOGISTIC output's step (1/256).
pub const LOGIT_LIMIT: f32 = 8.0;

/// Decides every tensor's quantization. `int8[n]` says whether node `n`
/// runs in int8; the concat trap may turn concats float (it updates
/// `int8` and reports why). `observed[t]` is the calibrated range of
/// activation `t`. `logit_outputs` lists graph output tensors that are
/// read through a sigmoid after the model (a detector's score logits): like
/// the inputs of a LOGISTIC, the tensors feeding only them have their range
/// narrowed to ±[`LOGIT_LIMIT`], so the int8 steps go where the sigmoid
/// still changes.
pub fn assign(
    g: &Graph,
    int8: &mut [bool],
    observed: &[Option<(f32, f32)>],
    int8_io: bool,
    logit_outputs: &[usize],
) -> Assignment {
    let nt = g.tensors.len();
    let users = consumers(g);
    let logits = logit_only(g, logit_outputs);
    let mut own: Vec<Option<(f32, f32)>> = observed.to_vec();
    own.resize(nt, None);
    // Constants read by int8 ops (other than weights and biases) get their data range.
    for (n, node) in g.nodes.iter().enumerate() {
        if !int8[n] {
            continue;
        }
        for (k, t) in node.inputs.iter().enumerate() {
            let Some(t) = *t else { continue };
            let is_weight = weight_axis(node.code).is_some() && k >= 1;
            if is_const(g, t) && !is_weight && g.tensors[t].dtype == DType::F32 {
                own[t] = const_range(&g.tensors[t]);
            }
        }
    }
    let mut out = Assignment::default();
    // Data movement whose every activation input comes from a float op
    // stays float: run in int8 it would only add a rounding step between
    // float producers and (usually) float readers. BlazeFace with its heads
    // kept float: the RESHAPEs and CONCATENATIONs after them.
    let producer = producers(g);
    for (n, node) in g.nodes.iter().enumerate() {
        if !int8[n] || !moves_values(node.code) {
            continue;
        }
        let inputs: Vec<usize> = node
            .inputs
            .iter()
            .flatten()
            .copied()
            .filter(|&t| !is_const(g, t))
            .collect();
        if !inputs.is_empty()
            && inputs
                .iter()
                .all(|&t| producer[t].is_some_and(|p| !int8[p]))
        {
            int8[n] = false;
            out.made_float.push((
                n,
                "its inputs come from float ops, so moving them stays float".to_string(),
            ));
        }
    }
    let mut uf = UnionFind((0..nt).collect());
    for (n, node) in g.nodes.iter().enumerate() {
        if !int8[n] || !shares_range(node.code) || node.code == OpCode::Concatenation {
            continue;
        }
        let Some(&o) = node.outputs.first() else {
            continue;
        };
        for &t in node.inputs.iter().flatten().chain(&node.outputs) {
            if g.tensors[t].dtype == DType::F32 && own[t].is_some() {
                uf.union(o, t);
            }
        }
    }
    let group_range = |uf: &mut UnionFind, own: &[Option<(f32, f32)>]| {
        let mut r: HashMap<usize, (f32, f32)> = HashMap::new();
        for (t, range) in own.iter().enumerate() {
            if let Some((lo, hi)) = *range {
                let e = r.entry(uf.find(t)).or_insert((lo, hi));
                e.0 = e.0.min(lo);
                e.1 = e.1.max(hi);
            }
        }
        r
    };
    // The concat trap.
    let ranges = group_range(&mut uf, &own);
    for (n, node) in g.nodes.iter().enumerate() {
        if !int8[n] || node.code != OpCode::Concatenation {
            continue;
        }
        let o = node.outputs[0];
        let widths: Vec<(usize, f32)> = node
            .inputs
            .iter()
            .flatten()
            .filter_map(|&t| {
                let (lo, hi) = *ranges.get(&uf.find(t))?;
                Some((t, (hi.max(0.0) - lo.min(0.0)).max(1e-12)))
            })
            .collect();
        let widest = widths.iter().map(|w| w.1).fold(0f32, f32::max);
        let read_in_float =
            users[o].iter().all(|&(u, _)| !int8[u]) && (!g.outputs.contains(&o) || !int8_io);
        let limit = if read_in_float {
            FLOAT_CONCAT_RATIO
        } else {
            CONCAT_TRAP_RATIO
        };
        let narrow: Vec<(usize, f32)> = widths
            .iter()
            .filter(|w| w.1 * limit < widest)
            .map(|w| (w.0, widest / w.1))
            .collect();
        if !narrow.is_empty() {
            let ratio = narrow.iter().map(|w| w.1).fold(0f32, f32::max);
            if read_in_float {
                int8[n] = false;
                out.made_float.push((
                    n,
                    format!(
                        "concat trap: input ranges differ {ratio:.1}x and the result is read in \
                         float, so the concat runs in float on the dequantized inputs"
                    ),
                ));
                continue;
            }
            for &(t, r) in &narrow {
                out.requantized.push((n, t, r));
            }
        }
        for &(t, _) in &widths {
            if !narrow.iter().any(|w| w.0 == t) {
                uf.union(o, t);
            }
        }
    }
    let mut ranges = group_range(&mut uf, &own);
    // Narrow ranges read only by LOGISTIC / TANH.
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    for (t, range) in own.iter().enumerate() {
        if range.is_some() {
            members.entry(uf.find(t)).or_default().push(t);
        }
    }
    for (root, ts) in &members {
        // A sigmoid the user reads (a presence or confidence score) must be
        // able to say anything from 0 to 1, whatever the calibration samples
        // showed: photos without a person leave a pose model's presence
        // logit negative on every sample, and a range fitted to that pins
        // the int8 score at 0.5 on the first real person. So its input
        // covers all of ±LOGIT_LIMIT (a logit step of 16/255).
        let read_as_score = ts.iter().any(|&t| {
            users[t].iter().any(|&(u, _)| {
                int8[u]
                    && g.nodes[u].code == OpCode::Logistic
                    && reaches_output(g, &users, g.nodes[u].outputs[0])
            })
        });
        let mut limit: Option<f32> = None;
        let mut ok = true;
        for &t in ts {
            if g.outputs.contains(&t) {
                if logits[t] {
                    limit = Some(limit.unwrap_or(LOGIT_LIMIT).max(LOGIT_LIMIT));
                } else {
                    ok = false;
                }
            }
            for &(u, _) in &users[t] {
                let node = &g.nodes[u];
                let internal = int8[u]
                    && shares_range(node.code)
                    && node.outputs.iter().all(|&o| uf.find(o) == *root);
                if internal {
                    continue;
                }
                if node.code != OpCode::Logistic && logits[t] {
                    // Data movement towards a sigmoid read outside the model.
                    limit = Some(limit.unwrap_or(LOGIT_LIMIT).max(LOGIT_LIMIT));
                    continue;
                }
                match (int8[u], node.code) {
                    (true, OpCode::Logistic) => {
                        limit = Some(limit.unwrap_or(LOGIT_LIMIT).max(LOGIT_LIMIT))
                    }
                    (true, OpCode::Tanh) => limit = Some(limit.unwrap_or(4.0).max(4.0)),
                    _ => ok = false,
                }
            }
        }
        // Only when nothing but sigmoids reads the range (`ok`): a logit
        // that is also an output or feeds more arithmetic keeps its own.
        if let (true, Some(l)) = (ok, limit) {
            if let Some(r) = ranges.get_mut(root) {
                if read_as_score {
                    *r = (-LOGIT_LIMIT, LOGIT_LIMIT);
                } else {
                    r.0 = r.0.max(-l);
                    r.1 = r.1.min(l);
                }
            }
        }
    }
    // Fixed output ranges win over observed ones.
    let mut fixed: HashMap<usize, QParams> = HashMap::new();
    for (n, node) in g.nodes.iter().enumerate() {
        if int8[n] {
            if let Some(q) = fixed_output(node.code) {
                fixed.insert(uf.find(node.outputs[0]), q);
            }
        }
    }
    out.qp = vec![None; nt];
    out.range = vec![None; nt];
    for (t, range) in own.iter().enumerate() {
        if range.is_none() {
            continue;
        }
        let root = uf.find(t);
        let q = match fixed.get(&root) {
            Some(&q) => q,
            None => {
                let (lo, hi) = ranges[&root];
                qparams_for(lo, hi)
            }
        };
        out.qp[t] = Some(q);
        let lo = q.scale * (-128 - q.zero_point) as f32;
        let hi = q.scale * (127 - q.zero_point) as f32;
        out.range[t] = Some((lo, hi));
    }
    out
}

/// Per-channel symmetric int8 weights along `axis`: the quantized tensor
/// and the scale of every channel.
pub fn quantize_weights(t: &Tensor, axis: usize) -> (Tensor, Vec<f32>) {
    let w = t.f32_data().unwrap_or_default();
    let dims = &t.shape;
    let n = dims.get(axis).copied().unwrap_or(1).max(1);
    let inner: usize = dims.iter().skip(axis + 1).product();
    // Runs of `inner` values share a channel, and the channels repeat in
    // order: the channel steps along with the runs (no division per value).
    let runs = || {
        w.chunks(inner.max(1))
            .zip((0..n).cycle())
            .map(|(run, c)| (c, run))
    };
    let mut absmax = vec![0f32; n];
    for (c, run) in runs() {
        for &v in run {
            absmax[c] = absmax[c].max(v.abs());
        }
    }
    let scales: Vec<f32> = absmax
        .iter()
        .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 })
        .collect();
    let mut data: Vec<u8> = Vec::with_capacity(w.len());
    for (c, run) in runs() {
        let s = scales[c];
        data.extend(
            run.iter()
                .map(|&v| (v / s).round().clamp(-127.0, 127.0) as i8 as u8),
        );
    }
    let q = Tensor {
        name: t.name.clone(),
        dtype: DType::I8,
        shape: t.shape.clone(),
        quant: Quant::PerAxis {
            axis,
            scales: scales.clone(),
            zero_points: vec![0; n],
        },
        data: Some(data),
    };
    (q, scales)
}

/// int32 bias with per-channel scale `in_scale × w_scales[c]`.
pub fn quantize_bias(t: &Tensor, in_scale: f32, w_scales: &[f32]) -> Tensor {
    let b = t.f32_data().unwrap_or_default();
    let scales: Vec<f32> = (0..b.len())
        .map(|c| in_scale * w_scales[if w_scales.len() == 1 { 0 } else { c }])
        .collect();
    let data: Vec<u8> = b
        .iter()
        .zip(&scales)
        .flat_map(|(&v, &s)| {
            let q = (v as f64 / s as f64)
                .round()
                .clamp(i32::MIN as f64, i32::MAX as f64) as i32;
            q.to_le_bytes()
        })
        .collect();
    Tensor {
        name: t.name.clone(),
        dtype: DType::I32,
        shape: t.shape.clone(),
        quant: Quant::PerAxis {
            axis: 0,
            zero_points: vec![0; scales.len()],
            scales,
        },
        data: Some(data),
    }
}

/// A constant quantized per-tensor with `q`.
fn quantize_const(t: &Tensor, q: QParams) -> Tensor {
    let v = t.f32_data().unwrap_or_default();
    Tensor {
        name: format!("{}/q", t.name),
        dtype: DType::I8,
        shape: t.shape.clone(),
        quant: Quant::PerTensor(q),
        data: Some(
            v.iter()
                .map(|&x| ferrite_runtime::quant::quantize_i8(x, q) as u8)
                .collect(),
        ),
    }
}

/// Weight statistics of one int8 op, for the report.
#[derive(Debug, Clone)]
pub struct WeightStats {
    pub node: usize,
    pub channels: usize,
    /// Smallest and largest per-channel max |w|.
    pub absmax_min: f32,
    pub absmax_max: f32,
    /// SQNR of the int8 weights against the float ones (dB).
    pub sqnr_db: f64,
}

/// Departures from plain quantization of the weighted nodes, keyed by node.
#[derive(Debug, Clone, Default)]
pub struct Adjust {
    /// Subtracted from the node's float bias before it is quantized (bias
    /// correction).
    pub bias_shift: HashMap<usize, Vec<f32>>,
    /// The node's int8 weights (same layout and scales as
    /// [`quantize_weights`]), rounded otherwise than to nearest (GPTQ).
    pub rounded: HashMap<usize, Vec<i8>>,
    /// The int8 weights [`rewrite`] stores, made once by
    /// [`Adjust::prepare_weights`] (after `rounded` is final) instead of
    /// at every rewrite: bias correction rewrites the graph once per layer.
    pub weights: HashMap<usize, QuantizedWeights>,
}

impl Adjust {
    /// Quantizes every weighted node's weights once, as [`rewrite`] would.
    pub fn prepare_weights(&mut self, g: &Graph) {
        self.weights.clear();
        let made: Vec<(usize, QuantizedWeights)> = (0..g.nodes.len())
            .filter_map(|n| {
                let axis = weight_axis(g.nodes[n].code)?;
                let t = (*g.nodes[n].inputs.get(1)?)?;
                (g.tensors[t].dtype == DType::F32)
                    .then(|| (n, QuantizedWeights::new(g, n, t, axis, self)))
            })
            .collect();
        self.weights.extend(made);
    }
}

/// A weighted node's int8 weight tensor, its per-channel scales and the
/// report's statistics of it.
#[derive(Debug, Clone)]
pub struct QuantizedWeights {
    tensor: Tensor,
    scales: Vec<f32>,
    stats: WeightStats,
}

impl QuantizedWeights {
    /// Node `n`'s float weights `t` quantized per channel along `axis`,
    /// with `adjust.rounded`'s int8 values where it has them.
    fn new(g: &Graph, n: usize, t: usize, axis: usize, adjust: &Adjust) -> Self {
        let (mut qt, scales) = quantize_weights(&g.tensors[t], axis);
        if let Some(q) = adjust.rounded.get(&n) {
            if Some(q.len()) == qt.data.as_ref().map(Vec::len) {
                qt.data = Some(q.iter().map(|&v| v as u8).collect());
            }
        }
        let stats = weight_stats(n, &g.tensors[t], axis, &qt, &scales);
        QuantizedWeights {
            tensor: qt,
            scales,
            stats,
        }
    }

    /// Widens the scale of every channel whose int32 bias would not fit at
    /// `in_scale × scale` (|bias| / scale beyond [`BIAS_LIMIT`]) just
    /// enough that it does, and requantizes that channel's weights
    /// (`w`, along `axis`) to nearest at the new scale; the number of
    /// channels widened. A conv whose input is tiny next to its bias
    /// (a detection head's class bias of -11.5 after features of 1e-9)
    /// otherwise had its bias clamped to ±2^31 steps: zero, where the
    /// float model gives -11.5. ONNX Runtime's `quantize_static` widens
    /// the weight scale the same way.
    fn fit_bias(&mut self, w: &Tensor, axis: usize, bias: &[f32], in_scale: f32) -> usize {
        let n = self.scales.len();
        if bias.len() != n || in_scale.is_nan() || in_scale <= 0.0 {
            return 0;
        }
        let need: Vec<f32> = bias
            .iter()
            .map(|&b| (b.abs() as f64 / (in_scale as f64 * BIAS_LIMIT)) as f32)
            .collect();
        let widen: Vec<bool> = need
            .iter()
            .zip(&self.scales)
            .map(|(&m, &s)| m > s)
            .collect();
        let count = widen.iter().filter(|&&w| w).count();
        if count == 0 {
            return 0;
        }
        let wf = w.f32_data().unwrap_or_default();
        let inner: usize = w.shape.iter().skip(axis + 1).product::<usize>().max(1);
        let data = self.tensor.data.get_or_insert_with(Vec::new);
        for ((run, q), c) in wf
            .chunks(inner)
            .zip(data.chunks_mut(inner))
            .zip((0..n).cycle())
        {
            if widen[c] {
                let s = need[c];
                for (q, &v) in q.iter_mut().zip(run) {
                    *q = (v / s).round().clamp(-127.0, 127.0) as i8 as u8;
                }
            }
        }
        for (s, (&m, &wd)) in self.scales.iter_mut().zip(need.iter().zip(&widen)) {
            if wd {
                *s = m;
            }
        }
        if let Quant::PerAxis { scales, .. } = &mut self.tensor.quant {
            scales.clone_from(&self.scales);
        }
        self.stats = weight_stats(self.stats.node, w, axis, &self.tensor, &self.scales);
        count
    }
}

/// The largest int32 bias, in steps, a weighted node may carry: 2^30,
/// leaving the accumulator's other half for the products.
pub const BIAS_LIMIT: f64 = (1u64 << 30) as f64;

/// The report's statistics of node `n`'s int8 weights `qt` (scales
/// `scales` along `axis`) against the float weights `w`.
fn weight_stats(n: usize, w: &Tensor, axis: usize, qt: &Tensor, scales: &[f32]) -> WeightStats {
    let inner: usize = qt.shape.iter().skip(axis + 1).product();
    let deq: Vec<f32> = qt
        .data
        .as_deref()
        .unwrap_or_default()
        .chunks(inner.max(1))
        .zip(scales.iter().cycle())
        .flat_map(|(run, &s)| run.iter().map(move |&v| v as i8 as f32 * s))
        .collect();
    let w = w.f32_data().unwrap_or_default();
    WeightStats {
        node: n,
        channels: scales.len(),
        absmax_min: scales.iter().fold(f32::INFINITY, |m, &s| m.min(s * 127.0)),
        absmax_max: scales.iter().fold(0f32, |m, &s| m.max(s * 127.0)),
        sqnr_db: sqnr_db(&w, &deq),
    }
}

/// The rewritten graph and the map from its ops back to the source nodes.
pub struct Rewritten {
    pub graph: Graph,
    /// For every op of `graph`: the source node it implements, or `None` for
    /// an inserted QUANTIZE / DEQUANTIZE.
    pub origin_of: Vec<Option<usize>>,
    pub weights: Vec<WeightStats>,
    /// Inserted conversion ops.
    pub conversions: usize,
    /// Weight channels whose scale was widened so the int32 bias fits.
    pub bias_widened: usize,
}

fn keyq(q: QParams) -> (u32, i32) {
    (q.scale.to_bits(), q.zero_point)
}

struct Builder<'a> {
    src: &'a Graph,
    out: Graph,
    origin_of: Vec<Option<usize>>,
    fver: HashMap<usize, usize>,
    qver: HashMap<(usize, (u32, i32)), usize>,
    conversions: usize,
    bias_widened: usize,
}

impl Builder<'_> {
    fn push(&mut self, node: Node, origin: Option<usize>) {
        self.out.nodes.push(node);
        self.origin_of.push(origin);
    }

    fn float_of(&mut self, t: usize) -> usize {
        if self.out.tensors[t].dtype == DType::F32 || self.src.tensors[t].dtype != DType::F32 {
            return t;
        }
        if let Some(&v) = self.fver.get(&t) {
            return v;
        }
        let (name, shape) = (
            self.out.tensors[t].name.clone(),
            self.out.tensors[t].shape.clone(),
        );
        let v = self.out.add_tensor(Tensor {
            name: format!("{name}/float"),
            dtype: DType::F32,
            shape,
            quant: Quant::None,
            data: None,
        });
        let origin = format!("DEQUANTIZE inserted for '{name}'");
        self.push(
            Node {
                code: OpCode::Dequantize,
                attrs: vec![],
                inputs: vec![Some(t)],
                outputs: vec![v],
                origin,
            },
            None,
        );
        self.conversions += 1;
        self.fver.insert(t, v);
        v
    }

    fn int8_of(&mut self, t: usize, q: QParams) -> usize {
        let cur = &self.out.tensors[t];
        if cur.dtype == DType::I8 && cur.quant == Quant::PerTensor(q) {
            return t;
        }
        if let Some(&v) = self.qver.get(&(t, keyq(q))) {
            return v;
        }
        let v = if cur.data.is_some() {
            let c = quantize_const(cur, q);
            self.out.add_tensor(c)
        } else {
            let v = self.out.add_tensor(Tensor {
                name: format!("{}/q", cur.name),
                dtype: DType::I8,
                shape: cur.shape.clone(),
                quant: Quant::PerTensor(q),
                data: None,
            });
            let origin = format!("QUANTIZE inserted for '{}'", self.out.tensors[t].name);
            self.push(
                Node {
                    code: OpCode::Quantize,
                    attrs: vec![],
                    inputs: vec![Some(t)],
                    outputs: vec![v],
                    origin,
                },
                None,
            );
            self.conversions += 1;
            v
        };
        self.qver.insert((t, keyq(q)), v);
        v
    }
}

fn sqnr_db(reference: &[f32], approx: &[f32]) -> f64 {
    let (mut s, mut e) = (0f64, 0f64);
    for (&a, &b) in reference.iter().zip(approx) {
        s += (a as f64) * (a as f64);
        e += (a as f64 - b as f64).powi(2);
    }
    if e == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (s / e).log10()
    }
}

/// Builds the mixed-precision graph: int8 nodes read int8 versions of their
/// inputs (QUANTIZE inserted where a float value enters), float nodes read
/// float versions (DEQUANTIZE inserted), and graph inputs/outputs are float
/// unless `int8_io`.
///
/// `adjust` changes how the weighted nodes' constants are quantized.
pub fn rewrite(
    g: &Graph,
    int8: &[bool],
    a: &Assignment,
    int8_io: bool,
    adjust: &Adjust,
) -> Rewritten {
    let mut out = g.clone();
    out.nodes.clear();
    let mut b = Builder {
        src: g,
        out,
        origin_of: Vec::new(),
        fver: HashMap::new(),
        qver: HashMap::new(),
        conversions: 0,
        bias_widened: 0,
    };
    if int8_io {
        for &t in &g.inputs {
            if let (true, Some(q)) = (is_f32_activation(g, t), a.qp[t]) {
                b.out.tensors[t].dtype = DType::I8;
                b.out.tensors[t].quant = Quant::PerTensor(q);
            }
        }
    }
    let mut weights = Vec::new();
    for (n, node) in g.nodes.iter().enumerate() {
        let mut new = node.clone();
        if !int8[n] {
            for t in new.inputs.iter_mut().flatten() {
                if !is_const(g, *t) {
                    *t = b.float_of(*t);
                }
            }
            b.push(new, Some(n));
            continue;
        }
        let out_q = node.outputs.first().and_then(|&o| a.qp[o]);
        let mut in_scale = 1.0f32;
        let mut w_scales: Vec<f32> = vec![1.0];
        for k in 0..node.inputs.len() {
            let Some(t) = node.inputs[k] else { continue };
            if g.tensors[t].dtype != DType::F32 {
                continue;
            }
            match (weight_axis(node.code), k) {
                (Some(axis), 1) => {
                    let mut q = match adjust.weights.get(&n) {
                        Some(q) => q.clone(),
                        None => QuantizedWeights::new(g, n, t, axis, adjust),
                    };
                    let bias = node.inputs.get(2).copied().flatten();
                    if let Some(bias) = bias.and_then(|b| g.tensors[b].f32_data()) {
                        b.bias_widened += q.fit_bias(&g.tensors[t], axis, &bias, in_scale);
                    }
                    weights.push(q.stats);
                    w_scales = q.scales;
                    new.inputs[k] = Some(b.out.add_tensor(q.tensor));
                }
                (Some(_), 2) => {
                    let mut bias = g.tensors[t].clone();
                    if let (Some(shift), Some(b)) = (adjust.bias_shift.get(&n), bias.f32_data()) {
                        if shift.len() == b.len() {
                            let data = b.iter().zip(shift).flat_map(|(v, d)| (v - d).to_le_bytes());
                            bias.data = Some(data.collect());
                        }
                    }
                    let qt = quantize_bias(&bias, in_scale, &w_scales);
                    new.inputs[k] = Some(b.out.add_tensor(qt));
                }
                _ => {
                    let q = if shares_range(node.code) {
                        out_q
                    } else {
                        a.qp[t]
                    }
                    .or(a.qp[t])
                    .expect("int8 node inputs have quantization");
                    if k == 0 {
                        in_scale = q.scale;
                    }
                    new.inputs[k] = Some(b.int8_of(t, q));
                }
            }
        }
        for &o in &node.outputs {
            if let Some(q) = a.qp[o] {
                b.out.tensors[o].dtype = DType::I8;
                b.out.tensors[o].quant = Quant::PerTensor(q);
            }
        }
        b.push(new, Some(n));
    }
    let outputs = g.outputs.clone();
    // Detections decoded by the model (boxes, class ids, counts) stay float
    // outputs even with `int8_io`: they are not activations.
    let detections = reached_from(g, OpCode::DetectionPostprocess);
    for (i, &o) in outputs.iter().enumerate() {
        if g.tensors[o].dtype != DType::F32 {
            continue;
        }
        let v = match (int8_io && !detections[o], a.qp[o]) {
            (true, Some(q)) => b.int8_of(o, q),
            _ => b.float_of(o),
        };
        if v != o {
            let name = g.tensors[o].name.clone();
            let suffix = if b.out.tensors[o].dtype == DType::I8 {
                "/int8"
            } else {
                "/float"
            };
            b.out.tensors[o].name = format!("{name}{suffix}");
            b.out.tensors[v].name = name;
            b.out.outputs[i] = v;
        }
    }
    let Builder {
        mut out,
        origin_of,
        conversions,
        bias_widened,
        ..
    } = b;
    out.remove_unused_tensors();
    Rewritten {
        graph: out,
        origin_of,
        weights,
        conversions,
        bias_widened,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activation(name: &str) -> Tensor {
        Tensor {
            name: name.into(),
            dtype: DType::F32,
            shape: vec![1, 4],
            quant: Quant::None,
            data: None,
        }
    }

    /// x → RESHAPE → y (graph output) and x → RESHAPE → z (graph output).
    fn two_heads() -> Graph {
        let node = |i, o| Node {
            code: OpCode::Reshape,
            attrs: vec![],
            inputs: vec![Some(i)],
            outputs: vec![o],
            origin: String::new(),
        };
        Graph {
            tensors: vec![
                activation("x"),
                activation("a"),
                activation("b"),
                activation("y"),
                activation("z"),
            ],
            nodes: vec![node(0, 1), node(0, 2), node(1, 3), node(2, 4)],
            inputs: vec![0],
            outputs: vec![3, 4],
            ..Default::default()
        }
    }

    #[test]
    fn nodes_after_a_postprocess_op_are_found_through_others() {
        // x → RESHAPE → a → POSTPROCESS → y → RESHAPE → z, and
        // x → RESHAPE → b, which is not after it.
        let mut g = two_heads();
        g.nodes[1].inputs = vec![Some(0)];
        g.nodes[2] = Node {
            code: OpCode::DetectionPostprocess,
            ..g.nodes[2].clone()
        };
        g.nodes[0].outputs = vec![1];
        g.nodes[2].inputs = vec![Some(1)];
        g.nodes[2].outputs = vec![3];
        g.nodes[3].inputs = vec![Some(3)];
        g.nodes[3].outputs = vec![4];
        let after = after(&g, OpCode::DetectionPostprocess);
        assert_eq!(after, vec![false, false, false, true]);
    }

    #[test]
    fn outputs_read_through_a_sigmoid_keep_resolution_near_zero() {
        let g = two_heads();
        // Only `y` is read through a sigmoid; `x` also feeds `z`.
        let only = logit_only(&g, &[3]);
        assert_eq!(only, vec![false, true, false, true, false]);
        let observed = vec![Some((-600.0, 3.0)); 5];
        // Separate the two heads' ranges: make the reshapes float, so no
        // range is shared across them.
        let mut int8 = vec![false; 4];
        let a = assign(&g, &mut int8, &observed, false, &[3]);
        let (lo, hi) = a.range[3].unwrap();
        assert!((-8.1..=-7.9).contains(&lo) && hi >= 3.0, "{lo}..{hi}");
        assert!(a.qp[3].unwrap().scale < 0.05);
        // The other output keeps its whole range.
        let (lo, _) = a.range[4].unwrap();
        assert!(lo <= -600.0, "{lo}");
        // Without the declaration nothing is narrowed.
        let a = assign(&g, &mut int8, &observed, false, &[]);
        assert!(a.range[3].unwrap().0 <= -600.0);
    }

    #[test]
    fn a_sigmoid_read_as_a_score_covers_every_probability() {
        // x → LOGISTIC → p → RESHAPE → y (output): the calibration never saw
        // a positive logit, yet the int8 score must still reach 1.
        let node = |code, i, o| Node {
            code,
            attrs: vec![],
            inputs: vec![Some(i)],
            outputs: vec![o],
            origin: String::new(),
        };
        let mut g = Graph {
            tensors: vec![activation("x"), activation("p"), activation("y")],
            nodes: vec![node(OpCode::Logistic, 0, 1), node(OpCode::Reshape, 1, 2)],
            inputs: vec![0],
            outputs: vec![2],
            ..Default::default()
        };
        let observed = vec![Some((-5.0, -1.0)), Some((0.0, 0.3)), Some((0.0, 0.3))];
        let a = assign(&g, &mut [true, true], &observed, false, &[]);
        let (lo, hi) = a.range[0].unwrap();
        assert!(lo <= -7.9 && hi >= 7.9, "{lo}..{hi}");
        // A logit that is also a graph output keeps its calibrated range.
        g.outputs.push(0);
        let a = assign(&g, &mut [true, true], &observed, false, &[]);
        let (lo, hi) = a.range[0].unwrap();
        assert!((-5.1..=-4.9).contains(&lo) && hi < 0.1, "{lo}..{hi}");
        g.outputs.pop();
        // A sigmoid that feeds more arithmetic keeps its calibrated range.
        g.nodes[1].code = OpCode::Relu;
        let a = assign(&g, &mut [true, true], &observed, false, &[]);
        let (lo, hi) = a.range[0].unwrap();
        assert!((-5.1..=-4.9).contains(&lo) && hi < 0.1, "{lo}..{hi}");
    }

    /// x → FC → a → RESHAPE → y (output 0); x → FC → c (output 1).
    fn fc_heads() -> Graph {
        let weight = Tensor {
            data: Some(vec![0; 64]),
            shape: vec![4, 4],
            ..activation("w")
        };
        let node = |code, inputs: Vec<usize>, o| Node {
            code,
            attrs: vec![],
            inputs: inputs.into_iter().map(Some).collect(),
            outputs: vec![o],
            origin: String::new(),
        };
        Graph {
            tensors: vec![
                activation("x"),
                weight,
                activation("a"),
                activation("y"),
                activation("c"),
            ],
            nodes: vec![
                node(OpCode::FullyConnected, vec![0, 1], 2),
                node(OpCode::Reshape, vec![2], 3),
                node(OpCode::FullyConnected, vec![0, 1], 4),
            ],
            inputs: vec![0],
            outputs: vec![3, 4],
            ..Default::default()
        }
    }

    #[test]
    fn heads_are_found_back_through_data_movement() {
        let g = fc_heads();
        // Outputs y (tensor 3) and c (tensor 4).
        assert_eq!(heads(&g, &[3]), vec![0]);
        assert_eq!(heads(&g, &[4]), vec![2]);
        assert_eq!(heads(&g, &[3, 4]), vec![0, 2]);
        assert!(heads(&g, &[]).is_empty());
    }

    #[test]
    fn data_movement_after_a_float_op_stays_float() {
        let g = fc_heads();
        let observed = vec![Some((-1.0, 1.0)); 5];
        // The first head float: its RESHAPE follows it.
        let mut int8 = vec![false, true, true];
        let a = assign(&g, &mut int8, &observed, false, &[]);
        assert_eq!(int8, vec![false, false, true]);
        assert_eq!(a.made_float.len(), 1);
        assert_eq!(a.made_float[0].0, 1);
        // After an int8 op the RESHAPE stays int8.
        let mut int8 = vec![true; 3];
        let a = assign(&g, &mut int8, &observed, false, &[]);
        assert_eq!(int8, vec![true; 3]);
        assert!(a.made_float.is_empty());
    }

    #[test]
    fn qparams_cover_the_range_and_zero() {
        let q = qparams_for(-1.0, 3.0);
        assert!((q.scale - 4.0 / 255.0).abs() < 1e-7);
        assert_eq!(q.zero_point, -128 + 64);
        let q = qparams_for(0.0, 6.0);
        assert_eq!(q.zero_point, -128);
        let q = qparams_for(2.0, 6.0); // widened to [0, 6]
        assert_eq!(q.zero_point, -128);
    }

    #[test]
    fn squares_stay_float_and_other_products_do_not() {
        let mul = |a: usize, b: usize| Node {
            code: OpCode::Mul,
            attrs: vec![0],
            inputs: vec![Some(a), Some(b)],
            outputs: vec![2],
            origin: "test".into(),
        };
        assert!(!has_int8_kernel(&mul(0, 0)));
        assert!(has_int8_kernel(&mul(0, 1)));
    }

    #[test]
    fn tiny_ranges_keep_their_resolution() {
        // Features of 1e-9 get steps of 1e-11, not a floor of 1e-9.
        let q = qparams_for(-1e-9, 1.55e-9);
        assert!((q.scale - 1e-11).abs() < 1e-16, "{q:?}");
        assert_eq!(q.zero_point, -28);
        // An all-zero range still gets a usable scale.
        let q = qparams_for(0.0, 0.0);
        assert!(q.scale > 0.0 && q.zero_point == -128);
    }

    #[test]
    fn a_bias_beyond_int32_widens_only_its_channel() {
        let f32s = |v: &[f32]| Some(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
        let w = Tensor {
            name: "w".into(),
            dtype: DType::F32,
            shape: vec![2, 3],
            quant: Quant::None,
            data: f32s(&[1.0, -0.5, 0.25, 100.0, 50.0, -100.0]),
        };
        let (tensor, scales) = quantize_weights(&w, 0);
        let stats = weight_stats(0, &w, 0, &tensor, &scales);
        let mut q = QuantizedWeights {
            tensor,
            scales,
            stats,
        };
        // Inputs in steps of 1e-9: a bias of 1e-3 fits at 1/127 per weight
        // step; -11.5 needs 10.7.
        let (in_scale, bias) = (1e-9f32, [1e-3f32, -11.5]);
        assert_eq!(q.fit_bias(&w, 0, &bias, in_scale), 1);
        let need = 11.5 / (1e-9 * BIAS_LIMIT) as f32;
        assert_eq!(q.scales[0], 1.0 / 127.0);
        assert!((q.scales[1] - need).abs() <= 1e-6 * need, "{:?}", q.scales);
        let d: Vec<i8> = q
            .tensor
            .data
            .as_ref()
            .unwrap()
            .iter()
            .map(|&b| b as i8)
            .collect();
        assert_eq!(d[..3], [127, -64, 32]);
        assert_eq!(d[3..], [9, 5, -9]);
        match &q.tensor.quant {
            Quant::PerAxis { scales, .. } => assert_eq!(scales, &q.scales),
            other => panic!("{other:?}"),
        }
        // The bias now quantizes within the limit and back to itself.
        let b = Tensor {
            name: "b".into(),
            dtype: DType::F32,
            shape: vec![2],
            quant: Quant::None,
            data: f32s(&bias),
        };
        let qb = quantize_bias(&b, in_scale, &q.scales);
        let v: Vec<i32> = qb
            .data
            .unwrap()
            .chunks(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert!(v.iter().all(|&x| (x as f64).abs() <= BIAS_LIMIT), "{v:?}");
        let back = v[1] as f64 * in_scale as f64 * q.scales[1] as f64;
        assert!((back + 11.5).abs() < 1e-5, "{back}");
        // Nothing to widen: nothing changes.
        assert_eq!(q.fit_bias(&w, 0, &bias, in_scale), 0);
    }

    #[test]
    fn per_channel_weights_use_each_channels_max() {
        let t = Tensor {
            name: "w".into(),
            dtype: DType::F32,
            shape: vec![2, 3],
            quant: Quant::None,
            data: Some(
                [1.0f32, -0.5, 0.25, 100.0, 50.0, -100.0]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
        };
        let (q, s) = quantize_weights(&t, 0);
        assert_eq!(s, vec![1.0 / 127.0, 100.0 / 127.0]);
        let d: Vec<i8> = q.data.unwrap().iter().map(|&b| b as i8).collect();
        assert_eq!(d, vec![127, -64, 32, 127, 64, -127]);
    }
}
