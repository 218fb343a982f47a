//! TFLite → converter IR.
//!
//! Maps TFLite tensors and builtin ops onto Ferrite's op set and attribute
//! layouts (`docs/format.md`). Constant operands that only parameterize an op
//! (paddings, axes, begin/end/strides, permutations, target shapes) become
//! attributes; DEQUANTIZE of constant fp16/int8 weights and DENSIFY of sparse
//! weights are folded into plain constants; already-quantized models keep
//! their scales and zero-points exactly. Every unsupported op or type is
//! collected and reported in one error.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use ferrite_runtime::kernels::reference::conv::{tflite_padding, Padding};
use ferrite_runtime::ops::slice::{resolve_slice, resolve_strided_slice};
use ferrite_runtime::quant::QParams;
use ferrite_runtime::{DType, OpCode, Quant};

use crate::ir::{Graph, Node, Tensor};

mod lstm;
use crate::tflite::{
    self, builtin_op as b, tensor_type as tt, BuiltinOptions, TflActivation, TflPadding,
};

/// Collects problems so that one error can list them all.
#[derive(Default)]
struct Problems {
    /// Unsupported op name → op indices.
    ops: BTreeMap<String, Vec<usize>>,
    /// Other problems, one line each.
    other: Vec<String>,
}

impl Problems {
    fn into_result(self) -> Result<()> {
        if self.ops.is_empty() && self.other.is_empty() {
            return Ok(());
        }
        let mut parts = Vec::new();
        if !self.ops.is_empty() {
            let list: Vec<String> = self
                .ops
                .iter()
                .map(|(name, idx)| {
                    let shown: Vec<String> = idx.iter().take(8).map(|i| i.to_string()).collect();
                    let more = if idx.len() > 8 { ", ..." } else { "" };
                    format!("{name} x{} (op {}{more})", idx.len(), shown.join(", "))
                })
                .collect();
            parts.push(format!("unsupported ops: {}", list.join("; ")));
        }
        parts.extend(self.other);
        bail!("{}", parts.join("; "))
    }
}

fn dtype_of(t: i8) -> Option<DType> {
    Some(match t {
        tt::FLOAT32 => DType::F32,
        tt::INT8 => DType::I8,
        tt::UINT8 => DType::U8,
        tt::INT16 => DType::I16,
        tt::INT32 => DType::I32,
        tt::INT64 => DType::I64,
        tt::BOOL => DType::Bool,
        _ => return None,
    })
}

fn act(a: TflActivation) -> Result<i32> {
    Ok(match a {
        TflActivation::None => 0,
        TflActivation::Relu => 1,
        TflActivation::ReluN1To1 => 2,
        TflActivation::Relu6 => 3,
        other => bail!("fused activation {other:?} is not supported"),
    })
}

fn padding(p: TflPadding) -> Padding {
    match p {
        TflPadding::Same => Padding::Same,
        TflPadding::Valid => Padding::Valid,
    }
}

fn pos(v: i32, what: &str) -> Result<usize> {
    usize::try_from(v)
        .ok()
        .filter(|&v| v >= 1)
        .ok_or_else(|| anyhow!("{what} must be >= 1 (got {v})"))
}

/// Explicit `[top, left, bottom, right]` padding for a TFLite window.
fn window_pads(
    p: TflPadding,
    in_hw: (usize, usize),
    k: (usize, usize),
    s: (usize, usize),
    d: (usize, usize),
) -> [i32; 4] {
    let (oh, top) = tflite_padding(padding(p), in_hw.0, k.0, s.0, d.0);
    let (ow, left) = tflite_padding(padding(p), in_hw.1, k.1, s.1, d.1);
    let total = |o: usize, i: usize, k: usize, s: usize, d: usize| {
        ((o.saturating_sub(1)) * s + (k.saturating_sub(1)) * d + 1).saturating_sub(i)
    };
    let bottom = total(oh, in_hw.0, k.0, s.0, d.0).saturating_sub(top);
    let right = total(ow, in_hw.1, k.1, s.1, d.1).saturating_sub(left);
    [top as i32, left as i32, bottom as i32, right as i32]
}

/// Reads and converts a `.tflite` file.
pub fn import(bytes: &[u8]) -> Result<Graph> {
    let m = tflite::parse(bytes).map_err(|e| anyhow!("not a readable TFLite model: {e}"))?;
    import_model(&m)
}

/// Converts a parsed TFLite model.
pub fn import_model(m: &tflite::TflModel<'_>) -> Result<Graph> {
    let sg = m
        .subgraphs
        .first()
        .ok_or_else(|| anyhow!("the model has no subgraph"))?;
    let mut probs = Problems::default();
    if m.subgraphs.len() > 1 {
        probs.other.push(format!(
            "the model has {} subgraphs; only single-subgraph models are supported",
            m.subgraphs.len()
        ));
    }

    // fp16 weights may also be stored sparse: a sparse fp16 constant →
    // DENSIFY → DEQUANTIZE (MediaPipe's *_sparse models). The DENSIFY
    // output is an fp16 tensor without a buffer, filled when DENSIFY is read.
    let densified_fp16: std::collections::HashSet<usize> = sg
        .operators
        .iter()
        .filter(|op| {
            let code = m.operator_codes.get(op.opcode_index as usize);
            code.map(|c| c.builtin_code) == Some(b::DENSIFY)
                && op
                    .inputs
                    .first()
                    .and_then(|&t| sg.tensors.get(usize::try_from(t).ok()?))
                    .is_some_and(|t| t.dtype == tt::FLOAT16 && t.sparsity.is_some())
        })
        .filter_map(|op| usize::try_from(*op.outputs.first()?).ok())
        .collect();

    // The state of a sequence LSTM (its operands 18 and 19) is a variable
    // tensor that nothing else reads; the unrolled op starts it at zero.
    let lstm_state: std::collections::HashSet<usize> = sg
        .operators
        .iter()
        .filter(|op| {
            let code = m.operator_codes.get(op.opcode_index as usize);
            code.map(|c| c.builtin_code) == Some(b::UNIDIRECTIONAL_SEQUENCE_LSTM)
        })
        .flat_map(|op| op.inputs.iter().skip(18).take(2))
        .filter_map(|&t| usize::try_from(t).ok())
        .filter(|&t| {
            let readers = sg.operators.iter().flat_map(|op| &op.inputs);
            readers.filter(|&&r| r == t as i32).count() == 1
                && !sg.inputs.contains(&(t as i32))
                && !sg.outputs.contains(&(t as i32))
        })
        .collect();

    // Tensors. Constants get their data now; fp16/int8 tensors that only feed a
    // DEQUANTIZE are kept raw and folded below.
    let mut g = Graph::default();
    let mut raw: Vec<Option<Vec<u8>>> = Vec::with_capacity(sg.tensors.len());
    for (i, t) in sg.tensors.iter().enumerate() {
        let buf = m
            .buffers
            .get(t.buffer as usize)
            .map(|b| b.data)
            .unwrap_or(&[]);
        let mut shape = Vec::with_capacity(t.shape.len());
        for &d in &t.shape {
            match usize::try_from(d) {
                Ok(d) => shape.push(d),
                Err(_) => {
                    probs.other.push(format!("tensor {i} '{}' has a dynamic dimension ({d}); only static shapes are supported", t.name));
                    shape.push(1);
                }
            }
        }
        let data = if buf.is_empty() {
            None
        } else if let Some(sp) = &t.sparsity {
            let es = tflite::tensor_type_size(t.dtype).unwrap_or(1);
            match tflite::densify(sp, &t.shape, buf, es) {
                Ok(d) => Some(d),
                Err(e) => {
                    probs
                        .other
                        .push(format!("tensor {i} '{}': cannot densify: {e}", t.name));
                    None
                }
            }
        } else {
            Some(buf.to_vec())
        };
        if t.is_variable && !lstm_state.contains(&i) {
            probs.other.push(format!(
                "tensor {i} '{}' is a variable; stateful models are not supported yet",
                t.name
            ));
        }
        let dtype = match (dtype_of(t.dtype), t.dtype) {
            (Some(d), _) => d,
            // fp16 constants are folded through their DEQUANTIZE below.
            (None, tt::FLOAT16) if data.is_some() || densified_fp16.contains(&i) => DType::F32,
            (None, other) => {
                probs.other.push(format!(
                    "tensor {i} '{}' has unsupported type {}",
                    t.name,
                    tflite::tensor_type_name(other)
                ));
                DType::F32
            }
        };
        let quant = match &t.quantization {
            Some(q) if !q.scale.is_empty() && dtype != DType::F32 => {
                let zp = |k: usize| q.zero_point.get(k).copied().unwrap_or(0) as i32;
                if q.scale.len() == 1 {
                    Quant::PerTensor(QParams {
                        scale: q.scale[0],
                        zero_point: zp(0),
                    })
                } else {
                    Quant::PerAxis {
                        axis: q.quantized_dimension.max(0) as usize,
                        scales: q.scale.clone(),
                        zero_points: (0..q.scale.len()).map(zp).collect(),
                    }
                }
            }
            _ => Quant::None,
        };
        raw.push(if t.dtype == tt::FLOAT16 {
            data.clone()
        } else {
            None
        });
        let data = if t.dtype == tt::FLOAT16 { None } else { data };
        g.add_tensor(Tensor {
            name: t.name.clone(),
            dtype,
            shape,
            quant,
            data,
        });
    }
    // Tensors whose shape TFLite leaves to run time (a -1 in the signature,
    // as Keras's batch dimension is); `fix_dynamic_shape` checks those.
    let dynamic: Vec<bool> = sg
        .tensors
        .iter()
        .map(|t| t.shape_signature.as_ref().is_some_and(|s| s.contains(&-1)))
        .collect();
    let idx =
        |v: i32| -> Option<usize> { usize::try_from(v).ok().filter(|&v| v < sg.tensors.len()) };
    for &t in &sg.inputs {
        g.inputs
            .push(idx(t).ok_or_else(|| anyhow!("graph input {t} is not a tensor"))?);
    }
    for &t in &sg.outputs {
        g.outputs
            .push(idx(t).ok_or_else(|| anyhow!("graph output {t} is not a tensor"))?);
    }

    for (k, op) in sg.operators.iter().enumerate() {
        let code = m
            .operator_codes
            .get(op.opcode_index as usize)
            .map(|c| c.builtin_code)
            .unwrap_or(-1);
        let custom = m
            .operator_codes
            .get(op.opcode_index as usize)
            .and_then(|c| c.custom_code.clone());
        let version = m
            .operator_codes
            .get(op.opcode_index as usize)
            .map_or(1, |c| c.version);
        let ins: Vec<Option<usize>> = op.inputs.iter().map(|&t| idx(t)).collect();
        let outs: Vec<usize> = op.outputs.iter().filter_map(|&t| idx(t)).collect();
        if outs.len() != op.outputs.len()
            || ins
                .iter()
                .zip(&op.inputs)
                .any(|(i, &r)| i.is_none() && r != -1)
        {
            probs.other.push(format!(
                "op {k} ({}) refers to a tensor that does not exist",
                tflite::builtin_name(code)
            ));
            continue;
        }
        let name = match (code, &custom) {
            (b::CUSTOM, Some(c)) => format!("CUSTOM:{c}"),
            _ => tflite::builtin_name(code).to_string(),
        };
        let origin = format!("op {k} ({name})");
        if let Err(e) = fix_dynamic_shape(&mut g, code, &op.options, &ins, &outs, &dynamic) {
            probs.other.push(format!("{origin}: {e}"));
            continue;
        }
        let first_new = g.nodes.len();
        let lowered = match (code, custom.as_deref()) {
            (b::CUSTOM, Some("Convolution2DTransposeBias")) => {
                mediapipe_transpose_conv(&mut g, &op.custom_options, &ins, &outs, &origin)
            }
            (b::CUSTOM, Some(c)) if MEDIAPIPE_MESH_OPS.contains(&c) => {
                mediapipe_mesh_op(c, version, &op.custom_options, &ins, &outs, &origin)
            }
            (b::CUSTOM, Some("TFLite_Detection_PostProcess")) => {
                tflite_detection_postprocess(&mut g, &op.custom_options, &ins, &outs, &origin)
            }
            _ => lower(&mut g, &mut raw, code, &op.options, &ins, &outs, &origin),
        };
        match lowered {
            Ok(Some(node)) => {
                g.nodes.push(node);
                fold_constant_nodes(&mut g, first_new);
            }
            Ok(None) => {}
            Err(e) if e.downcast_ref::<Unsupported>().is_some() => {
                probs.ops.entry(name).or_default().push(k)
            }
            Err(e) => probs.other.push(format!("{origin}: {e}")),
        }
    }
    // fp16 tensors are weights folded through their DEQUANTIZE; any other
    // reader would see an empty tensor. (Tensors added while lowering, past
    // `raw`'s end, are never fp16.)
    for node in &g.nodes {
        for &t in node.inputs.iter().flatten() {
            if raw.get(t).is_some_and(Option::is_some) && g.tensors[t].data.is_none() {
                probs.other.push(format!(
                    "{}: reads fp16 tensor {t} '{}'; fp16 is supported for weights that go through DEQUANTIZE only",
                    node.origin, g.tensors[t].name
                ));
            }
        }
    }
    probs.into_result()?;
    // Legacy uint8 models (asymmetric uint8 weights) run on the int8 kernels.
    crate::uint8::note(&mut g)?;
    drop_noops(&mut g);
    g.remove_dead_nodes();
    g.remove_unused_tensors();
    Ok(g)
}

/// Largest zero constant BROADCAST_TO may lower to (256 MiB).
const MAX_BROADCAST_CONST_BYTES: usize = 1 << 28;

/// TFLite's element-wise math, comparisons, reductions, arg-max, gather,
/// batch matmul, casts, mirror padding, pack/unpack and select, on the
/// runtime's generic ops (UNARY, BINARY, REDUCE, ARG_REDUCE, GATHER,
/// BATCH_MATMUL, CAST, PAD_MODE, WHERE; `docs/format.md`), which the ONNX
/// importer also uses. An op that needs two (RSQRT: a square root, then a
/// reciprocal) pushes the first to `g.nodes` and returns the second.
fn lower_elementwise(
    g: &mut Graph,
    code: i32,
    opts: &BuiltinOptions,
    ins: &[Option<usize>],
    outs: &[usize],
    origin: &str,
) -> Result<Option<Node>> {
    let input = |k: usize| -> Result<usize> {
        ins.get(k)
            .copied()
            .flatten()
            .ok_or_else(|| anyhow!("missing input {k}"))
    };
    let Some(&out) = outs.first() else {
        return Err(Unsupported.into());
    };
    // Ops lowered to several nodes go through unquantized scratch tensors:
    // float (or integer) only.
    let quantized = ins
        .iter()
        .flatten()
        .any(|&t| g.tensors[t].quant != Quant::None);
    let several = matches!(
        code,
        b::RSQRT
            | b::NOT_EQUAL
            | b::SQUARED_DIFFERENCE
            | b::FLOOR_DIV
            | b::DIV
            | b::L2_NORMALIZATION
            | b::BROADCAST_TO
            | b::TILE
    );
    if quantized && several {
        bail!(
            "quantized (int8) {} is not supported",
            tflite::builtin_name(code)
        );
    }
    let make = |code: OpCode, attrs: Vec<i32>, inputs: Vec<usize>, outputs: Vec<usize>| Node {
        code,
        attrs,
        inputs: inputs.into_iter().map(Some).collect(),
        outputs,
        origin: origin.to_string(),
    };
    // An intermediate tensor shaped like `like`, of `dtype`.
    let scratch = |g: &mut Graph, like: usize, dtype: DType, what: &str| {
        let t = &g.tensors[like];
        let t = Tensor {
            name: format!("{}/{what}", t.name),
            dtype,
            shape: t.shape.clone(),
            quant: Quant::None,
            data: None,
        };
        g.add_tensor(t)
    };
    let unary = |f: i32, alpha: f32| vec![f, alpha.to_bits() as i32, 0];
    // A binary op whose fused activation (DIV has one) follows as an op.
    let binary_then_act = |g: &mut Graph, f: i32, a: TflActivation| -> Result<Option<Node>> {
        let (x, y) = (input(0)?, input(1)?);
        let act = match act(a)? {
            0 => return Ok(Some(make(OpCode::Binary, vec![f], vec![x, y], vec![out]))),
            1 => OpCode::Relu,
            2 => OpCode::ReluN1To1,
            _ => OpCode::Relu6,
        };
        let t = scratch(g, out, g.tensors[out].dtype, "before_activation");
        g.nodes
            .push(make(OpCode::Binary, vec![f], vec![x, y], vec![t]));
        Ok(Some(make(act, vec![], vec![t], vec![out])))
    };
    let axes = |g: &Graph, k: usize| -> Result<Vec<i32>> {
        let rank = rank_of(g, Some(input(0)?))?;
        let mut axes: Vec<i32> = const_ints(g, Some(input(k)?), "axes")?
            .iter()
            .map(|&a| norm_axis(a, rank))
            .collect::<Result<_>>()?;
        axes.sort_unstable();
        axes.dedup();
        Ok(axes)
    };
    let one = |code: OpCode, attrs: Vec<i32>, inputs: Vec<usize>| {
        Ok(Some(make(code, attrs, inputs, outs.to_vec())))
    };
    match (code, opts) {
        (b::ABS, _) => one(OpCode::Unary, unary(0, 0.0), vec![input(0)?]),
        (b::NEG, _) => one(OpCode::Unary, unary(1, 0.0), vec![input(0)?]),
        (b::SQRT, _) => one(OpCode::Unary, unary(2, 0.0), vec![input(0)?]),
        (b::EXP, _) => one(OpCode::Unary, unary(3, 0.0), vec![input(0)?]),
        (b::LOG, _) => one(OpCode::Unary, unary(4, 0.0), vec![input(0)?]),
        (b::FLOOR, _) => one(OpCode::Unary, unary(7, 0.0), vec![input(0)?]),
        (b::CEIL, _) => one(OpCode::Unary, unary(8, 0.0), vec![input(0)?]),
        (b::ROUND, _) => one(OpCode::Unary, unary(9, 0.0), vec![input(0)?]),
        (b::SIN, _) => one(OpCode::Unary, unary(10, 0.0), vec![input(0)?]),
        (b::COS, _) => one(OpCode::Unary, unary(11, 0.0), vec![input(0)?]),
        (b::ELU, _) => one(OpCode::Unary, unary(24, 1.0), vec![input(0)?]),
        (b::LOGICAL_NOT, _) => one(OpCode::Unary, unary(32, 0.0), vec![input(0)?]),
        (b::GELU, o) => {
            let approximate = matches!(o, BuiltinOptions::Gelu { approximate: true });
            one(
                OpCode::Unary,
                unary(if approximate { 30 } else { 29 }, 0.0),
                vec![input(0)?],
            )
        }
        // 1 / sqrt(x), as TFLite computes it.
        (b::RSQRT, _) => {
            let x = input(0)?;
            let t = scratch(g, out, g.tensors[out].dtype, "sqrt");
            g.nodes
                .push(make(OpCode::Unary, unary(2, 0.0), vec![x], vec![t]));
            one(OpCode::Unary, unary(5, 0.0), vec![t])
        }
        (b::SQUARE, _) => one(OpCode::Binary, vec![2], vec![input(0)?, input(0)?]),
        // x / max(sqrt(sum(x²) over the last axis), 1e-6), as TFLite computes it.
        (b::L2_NORMALIZATION, o) => {
            if matches!(o, BuiltinOptions::L2Norm { fused_activation } if *fused_activation != TflActivation::None)
            {
                bail!("L2_NORMALIZATION with a fused activation is not supported (TFLite refuses it too)");
            }
            let x = input(0)?;
            let rank = rank_of(g, Some(x))?;
            if rank == 0 {
                bail!("L2_NORMALIZATION needs an input of rank >= 1");
            }
            let dtype = g.tensors[x].dtype;
            let sq = scratch(g, x, dtype, "squared");
            g.nodes
                .push(make(OpCode::Binary, vec![2], vec![x, x], vec![sq]));
            let sum = scratch(g, x, dtype, "sum_of_squares");
            g.tensors[sum].shape[rank - 1] = 1;
            g.nodes.push(make(
                OpCode::Reduce,
                vec![0, 1, rank as i32 - 1],
                vec![sq],
                vec![sum],
            ));
            let eps = g.add_tensor(Tensor {
                name: format!("{}/epsilon", g.tensors[x].name),
                dtype: DType::F32,
                shape: vec![],
                quant: Quant::None,
                data: Some(1e-6f32.to_le_bytes().to_vec()),
            });
            let norm = scratch(g, sum, dtype, "norm");
            g.nodes
                .push(make(OpCode::Unary, unary(2, 0.0), vec![sum], vec![norm]));
            let floor = scratch(g, sum, dtype, "at_least_epsilon");
            g.nodes
                .push(make(OpCode::Maximum, vec![], vec![norm, eps], vec![floor]));
            one(OpCode::Binary, vec![3], vec![x, floor])
        }
        (b::DIV, BuiltinOptions::Div { fused_activation }) => {
            binary_then_act(g, 3, *fused_activation)
        }
        (b::DIV, _) => binary_then_act(g, 3, TflActivation::None),
        (b::POW, _) => one(OpCode::Binary, vec![4], vec![input(0)?, input(1)?]),
        (b::FLOOR_MOD, _) => one(OpCode::Binary, vec![7], vec![input(0)?, input(1)?]),
        (b::EQUAL, _) => one(OpCode::Binary, vec![9], vec![input(0)?, input(1)?]),
        (b::LESS, _) => one(OpCode::Binary, vec![10], vec![input(0)?, input(1)?]),
        (b::GREATER, _) => one(OpCode::Binary, vec![11], vec![input(0)?, input(1)?]),
        (b::LESS_EQUAL, _) => one(OpCode::Binary, vec![12], vec![input(0)?, input(1)?]),
        (b::GREATER_EQUAL, _) => one(OpCode::Binary, vec![13], vec![input(0)?, input(1)?]),
        (b::LOGICAL_AND, _) => one(OpCode::Binary, vec![14], vec![input(0)?, input(1)?]),
        (b::LOGICAL_OR, _) => one(OpCode::Binary, vec![15], vec![input(0)?, input(1)?]),
        (b::NOT_EQUAL, _) => {
            let t = scratch(g, out, DType::Bool, "equal");
            g.nodes.push(make(
                OpCode::Binary,
                vec![9],
                vec![input(0)?, input(1)?],
                vec![t],
            ));
            one(OpCode::Unary, unary(32, 0.0), vec![t])
        }
        // Integer floor division: (a - a mod b) / b, exact (the runtime's
        // integer division truncates, its mod takes the divisor's sign).
        (b::FLOOR_DIV, _) if g.tensors[out].dtype != DType::F32 => {
            let (a, d) = (input(0)?, input(1)?);
            let dtype = g.tensors[out].dtype;
            let m = scratch(g, out, dtype, "mod");
            let t = scratch(g, out, dtype, "multiple");
            g.nodes
                .push(make(OpCode::Binary, vec![7], vec![a, d], vec![m]));
            g.nodes
                .push(make(OpCode::Binary, vec![1], vec![a, m], vec![t]));
            one(OpCode::Binary, vec![3], vec![t, d])
        }
        // floor(a / b) and (a - b)², as TFLite computes them.
        (b::FLOOR_DIV, _) => {
            let t = scratch(g, out, g.tensors[out].dtype, "quotient");
            let (a, d) = (input(0)?, input(1)?);
            g.nodes
                .push(make(OpCode::Binary, vec![3], vec![a, d], vec![t]));
            one(OpCode::Unary, unary(7, 0.0), vec![t])
        }
        (b::SQUARED_DIFFERENCE, _) => {
            let t = scratch(g, out, g.tensors[out].dtype, "difference");
            let (a, d) = (input(0)?, input(1)?);
            g.nodes
                .push(make(OpCode::Binary, vec![1], vec![a, d], vec![t]));
            one(OpCode::Binary, vec![2], vec![t, t])
        }
        (b::SELECT_V2, _) => one(OpCode::Where, vec![], vec![input(0)?, input(1)?, input(2)?]),
        (
            b::SUM | b::REDUCE_MAX | b::REDUCE_MIN | b::REDUCE_PROD,
            BuiltinOptions::Reducer { keep_dims },
        ) => {
            let f = match code {
                b::SUM => 0,
                b::REDUCE_MAX => 2,
                b::REDUCE_MIN => 3,
                _ => 4,
            };
            let mut attrs = vec![f, *keep_dims as i32];
            attrs.extend(axes(g, 1)?);
            one(OpCode::Reduce, attrs, vec![input(0)?])
        }
        (b::ARG_MAX | b::ARG_MIN, _) => {
            let axis = axes(g, 1)?;
            let [axis] = axis[..] else {
                bail!("expects one axis, got {}", axis.len());
            };
            let attrs = vec![(code == b::ARG_MAX) as i32, axis, 0, 0];
            // The runtime's ARG_REDUCE writes int64; an int32 output is cast.
            if g.tensors[out].dtype == DType::I64 {
                return one(OpCode::ArgReduce, attrs, vec![input(0)?]);
            }
            let t = scratch(g, out, DType::I64, "index");
            g.nodes
                .push(make(OpCode::ArgReduce, attrs, vec![input(0)?], vec![t]));
            one(OpCode::Cast, vec![], vec![t])
        }
        // PACK: each input reshaped to the output with 1 at `axis`, then
        // concatenated; UNPACK: a SPLIT into such slices, each reshaped.
        (b::PACK, BuiltinOptions::Pack { axis, .. }) => {
            let shape = g.tensors[out].shape.clone();
            let axis = norm_axis(*axis as i64, shape.len())?;
            if axis as usize >= shape.len() {
                bail!("axis {axis} is out of range for output shape {shape:?}");
            }
            let mut slice_shape = shape;
            slice_shape[axis as usize] = 1;
            let mut parts = Vec::new();
            for k in 0..ins.len() {
                let t = scratch(g, out, g.tensors[out].dtype, &format!("part{k}"));
                g.tensors[t].shape = slice_shape.clone();
                g.tensors[t].quant = g.tensors[input(k)?].quant.clone();
                g.nodes
                    .push(make(OpCode::Reshape, vec![], vec![input(k)?], vec![t]));
                parts.push(t);
            }
            one(OpCode::Concatenation, vec![axis, 0], parts)
        }
        (b::UNPACK, BuiltinOptions::Unpack { axis, .. }) => {
            let x = input(0)?;
            let shape = g.tensors[x].shape.clone();
            let axis = norm_axis(*axis as i64, shape.len())?;
            if axis as usize >= shape.len() || shape[axis as usize] != outs.len() {
                bail!("{} outputs for axis {axis} of shape {shape:?}", outs.len());
            }
            let mut slice_shape = shape;
            slice_shape[axis as usize] = 1;
            let parts: Vec<usize> = (0..outs.len())
                .map(|k| {
                    let t = scratch(g, x, g.tensors[x].dtype, &format!("part{k}"));
                    g.tensors[t].shape = slice_shape.clone();
                    g.tensors[t].quant = g.tensors[x].quant.clone();
                    t
                })
                .collect();
            g.nodes
                .push(make(OpCode::Split, vec![axis], vec![x], parts.clone()));
            let last = parts.len() - 1;
            for (k, &t) in parts[..last].iter().enumerate() {
                g.nodes
                    .push(make(OpCode::Reshape, vec![], vec![t], vec![outs[k]]));
            }
            Ok(Some(make(
                OpCode::Reshape,
                vec![],
                vec![parts[last]],
                vec![outs[last]],
            )))
        }
        // Shapes are static here: SHAPE is a constant (Keras 3 models feed
        // it through GATHER, REDUCE_PROD and PACK into RESHAPEs; that chain
        // is folded by `fold_constant_nodes`).
        (b::SHAPE, _) => {
            let dims = g.tensors[input(0)?].shape.clone();
            let data: Vec<u8> = match g.tensors[out].dtype {
                DType::I32 => dims
                    .iter()
                    .flat_map(|&d| (d as i32).to_le_bytes())
                    .collect(),
                DType::I64 => dims
                    .iter()
                    .flat_map(|&d| (d as i64).to_le_bytes())
                    .collect(),
                other => bail!("SHAPE output must be int32 or int64, not {}", other.name()),
            };
            fold_const(g, out, data)
        }
        (b::LOG_SOFTMAX, _) => one(OpCode::LogSoftmax, vec![], vec![input(0)?]),
        (b::CAST, _) => one(OpCode::Cast, vec![], vec![input(0)?]),
        (b::GATHER, BuiltinOptions::Gather { axis, batch_dims }) => {
            if *batch_dims != 0 {
                bail!("GATHER with batch_dims {batch_dims} is not supported");
            }
            let rank = rank_of(g, Some(input(0)?))?;
            one(
                OpCode::Gather,
                vec![norm_axis(*axis as i64, rank)?],
                vec![input(0)?, input(1)?],
            )
        }
        // The input broadcast to a constant shape (the zeros only give BINARY's
        // "left" function the output's shape).
        (b::BROADCAST_TO, _) => {
            let x = input(0)?;
            let target = const_ints(g, Some(input(1)?), "shape")?;
            let dims: Vec<usize> = target
                .iter()
                .map(|&d| {
                    usize::try_from(d).map_err(|_| anyhow!("negative dimension {d} in shape"))
                })
                .collect::<Result<_>>()?;
            let t = &g.tensors[x];
            if t.dtype == DType::Bool {
                bail!("BROADCAST_TO of bool tensors is not supported");
            }
            if crate::onnx::fold::broadcast(&t.shape, &dims)
                .ok()
                .as_deref()
                != Some(&dims[..])
            {
                bail!("input shape {:?} does not broadcast to {dims:?}", t.shape);
            }
            crate::onnx::value::numel(&dims)?;
            // Size 1 wherever the input already has the target's size.
            let lead = dims.len() - t.shape.len();
            let zshape: Vec<usize> = (0..dims.len())
                .map(|i| match i.checked_sub(lead) {
                    Some(k) if t.shape[k] == dims[i] => 1,
                    _ => dims[i],
                })
                .collect();
            let size = zshape.iter().product::<usize>() * t.dtype.size();
            // The shape is carried by a constant of zeros: refuse one no
            // model needs rather than allocate gigabytes for a bad file.
            if size > MAX_BROADCAST_CONST_BYTES {
                bail!(
                    "BROADCAST_TO {dims:?} would need a {size}-byte shape constant \
                     (at most {MAX_BROADCAST_CONST_BYTES})"
                );
            }
            let zeros = g.add_tensor(Tensor {
                name: format!("{}/broadcast_shape", t.name),
                dtype: t.dtype,
                shape: zshape,
                quant: Quant::None,
                data: Some(vec![0; size]),
            });
            one(OpCode::Binary, vec![17], vec![x, zeros])
        }
        // One GATHER per repeated axis (`Graph::tile`).
        (b::TILE, _) => {
            let x = input(0)?;
            let reps = const_ints(g, Some(input(1)?), "multiples")?;
            let rank = rank_of(g, Some(x))?;
            if reps.len() != rank || reps.iter().any(|r| !(1..=1 << 20).contains(r)) {
                bail!("TILE multiples {reps:?} must be {rank} values from 1 to 2^20");
            }
            let tiled: Vec<usize> = (0..rank)
                .map(|a| g.tensors[x].shape[a].saturating_mul(reps[a] as usize))
                .collect();
            crate::onnx::value::numel(&tiled)?;
            let reps: Vec<usize> = reps.iter().map(|&r| r as usize).collect();
            Ok(Some(g.tile(x, &reps, out, origin)))
        }
        (b::BATCH_MATMUL, o) => {
            if let BuiltinOptions::BatchMatMul { adj_x: true, .. }
            | BuiltinOptions::BatchMatMul { adj_y: true, .. } = o
            {
                bail!("BATCH_MATMUL with adj_x or adj_y is not supported");
            }
            one(OpCode::BatchMatmul, vec![], vec![input(0)?, input(1)?])
        }
        (b::MIRROR_PAD, BuiltinOptions::MirrorPad { mode }) => {
            if *mode != 0 {
                bail!("SYMMETRIC mirror padding is not supported (REFLECT is)");
            }
            let pads = const_ints(g, Some(input(1)?), "paddings")?;
            let rank = rank_of(g, Some(input(0)?))?;
            if pads.len() != 2 * rank || pads.iter().any(|&p| p < 0 || p > i32::MAX as i64) {
                bail!("paddings must be [{rank}, 2] non-negative values");
            }
            let mut attrs = vec![0];
            attrs.extend(pads.iter().map(|&p| p as i32));
            one(OpCode::PadMode, attrs, vec![input(0)?])
        }
        _ => Err(Unsupported.into()),
    }
}

/// Shape arithmetic on constants (what Keras 3 models compute at run time:
/// SHAPE, then GATHER, REDUCE_PROD, PACK, CONCATENATION into a RESHAPE's
/// shape) is folded here: every node from `from` on whose inputs are all
/// constants and whose outputs are small integer or bool tensors (or short
/// float ones) runs once on the runtime, and its outputs become constants.
/// A node the runtime rejects stays (its error comes with the rest).
fn fold_constant_nodes(g: &mut Graph, from: usize) {
    let mut k = from;
    while k < g.nodes.len() {
        let n = &g.nodes[k];
        let foldable = !n.inputs.is_empty()
            && n.inputs
                .iter()
                .all(|t| t.is_some_and(|t| g.tensors[t].data.is_some()))
            && n.outputs.iter().all(|&o| {
                let t = &g.tensors[o];
                let small = match t.dtype {
                    DType::I32 | DType::I64 | DType::Bool => t.numel() <= 4096,
                    // Scalars and short vectors a shape computation may
                    // pass through (CAST to float, MUL, CAST back).
                    DType::F32 => t.numel() <= 64 && t.quant == Quant::None,
                    _ => false,
                };
                small && !g.outputs.contains(&o)
            });
        match foldable.then(|| evaluate(g, k)).and_then(Result::ok) {
            Some(values) => {
                let n = g.nodes.remove(k);
                for (o, v) in n.outputs.into_iter().zip(values) {
                    g.tensors[o].data = Some(v);
                }
            }
            None => k += 1,
        }
    }
}

/// Runs node `k` of `g` (all inputs constant) alone and returns its outputs' bytes.
fn evaluate(g: &Graph, k: usize) -> Result<Vec<Vec<u8>>> {
    let node = &g.nodes[k];
    let mut sub = Graph::default();
    let map = |t: usize, sub: &mut Graph| sub.add_tensor(g.tensors[t].clone());
    let inputs = node
        .inputs
        .iter()
        .map(|t| t.map(|t| map(t, &mut sub)))
        .collect();
    let outputs: Vec<usize> = node.outputs.iter().map(|&t| map(t, &mut sub)).collect();
    sub.nodes.push(Node {
        inputs,
        outputs: outputs.clone(),
        ..node.clone()
    });
    sub.outputs = outputs;
    let (bytes, _) = crate::package::write(&sub)?;
    let model = ferrite_runtime::Model::from_vec(&bytes)?;
    let mut s = ferrite_runtime::Session::new(&model, Default::default())?;
    s.invoke()?;
    (0..sub.outputs.len())
        .map(|i| Ok(s.output(i)?.data.to_vec()))
        .collect()
}

/// The output shape of a RESHAPE, FULLY_CONNECTED or element-wise op whose
/// output TFLite leaves dynamic (`dynamic`: a -1 in its shape signature),
/// from its inputs, when the stored shape (a placeholder, often 1s) does not
/// fit them: Keras models flatten `[1, 56, 56, 96]` to `[-1, -1]` (stored
/// `[1, 1]`) around a Dense layer.
fn fix_dynamic_shape(
    g: &mut Graph,
    code: i32,
    opts: &BuiltinOptions,
    ins: &[Option<usize>],
    outs: &[usize],
    dynamic: &[bool],
) -> Result<()> {
    let [out] = outs[..] else { return Ok(()) };
    if !dynamic.get(out).copied().unwrap_or(false) {
        return Ok(());
    }
    let shape_of = |k: usize| {
        ins.get(k)
            .copied()
            .flatten()
            .map(|t| g.tensors[t].shape.clone())
    };
    let Some(x) = shape_of(0) else { return Ok(()) };
    let numel = |s: &[usize]| s.iter().fold(1usize, |a, &d| a.saturating_mul(d));
    let declared = g.tensors[out].shape.clone();
    let want = match code {
        b::RESHAPE => {
            if numel(&declared) == numel(&x) {
                return Ok(());
            }
            let Some(Ok(target)) = ins
                .get(1)
                .copied()
                .flatten()
                .filter(|&t| g.tensors[t].data.is_some())
                .map(|t| const_ints(g, Some(t), "shape"))
            else {
                bail!(
                    "the output shape depends on run-time values; only static shapes are supported"
                );
            };
            let bad = || anyhow!("RESHAPE of {x:?} to {target:?}");
            if target.iter().filter(|&&d| d == -1).count() > 1 || target.iter().any(|&d| d < -1) {
                return Err(bad());
            }
            let known = target
                .iter()
                .filter(|&&d| d != -1)
                .try_fold(1usize, |a, &d| a.checked_mul(usize::try_from(d).ok()?))
                .ok_or_else(bad)?;
            let mut shape = Vec::with_capacity(target.len());
            for &d in &target {
                shape.push(match d {
                    -1 if known > 0 && numel(&x) % known == 0 => numel(&x) / known,
                    -1 => return Err(bad()),
                    d => d as usize,
                });
            }
            shape
        }
        b::FULLY_CONNECTED => {
            let Some(w) = shape_of(1) else { return Ok(()) };
            let (Some(&units), Some(&depth)) = (w.first(), w.get(1)) else {
                return Ok(());
            };
            if depth == 0 || numel(&x) % depth != 0 {
                return Ok(());
            }
            // What the runtime accepts: the right count, `units` last.
            let rows = numel(&x) / depth;
            if declared.last() == Some(&units) && numel(&declared) == rows.saturating_mul(units) {
                return Ok(());
            }
            match opts {
                BuiltinOptions::FullyConnected {
                    keep_num_dims: true,
                    ..
                } => {
                    let mut s = x.clone();
                    *s.last_mut().unwrap_or(&mut 0) = units;
                    s
                }
                _ => vec![rows, units],
            }
        }
        b::ADD
        | b::SUB
        | b::MUL
        | b::DIV
        | b::POW
        | b::SQUARED_DIFFERENCE
        | b::MAXIMUM
        | b::MINIMUM => match shape_of(1) {
            Some(y) => crate::onnx::fold::broadcast(&x, &y)?,
            None => x,
        },
        b::RELU
        | b::RELU6
        | b::LOGISTIC
        | b::TANH
        | b::GELU
        | b::HARD_SWISH
        | b::ABS
        | b::NEG
        | b::SQRT
        | b::RSQRT
        | b::EXP
        | b::LOG
        | b::SQUARE
        | b::SOFTMAX
        | b::LOG_SOFTMAX
        | b::LEAKY_RELU
        | b::LOCAL_RESPONSE_NORMALIZATION
        | b::L2_NORMALIZATION
        | b::ELU
        | b::QUANTIZE
        | b::DEQUANTIZE
        | b::CAST => x,
        _ => return Ok(()),
    };
    if want != declared {
        g.tensors[out].shape = want;
    }
    Ok(())
}

/// Marker error: the op code itself is not supported.
#[derive(Debug)]
struct Unsupported;
impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unsupported op")
    }
}
impl std::error::Error for Unsupported {}

fn const_ints(g: &Graph, t: Option<usize>, what: &str) -> Result<Vec<i64>> {
    let t = t.ok_or_else(|| anyhow!("missing {what} input"))?;
    let tensor = &g.tensors[t];
    if tensor.data.is_none() {
        bail!("{what} must be a constant tensor");
    }
    tensor
        .int_data()
        .ok_or_else(|| anyhow!("{what} must be an integer tensor"))
}

fn rank_of(g: &Graph, t: Option<usize>) -> Result<usize> {
    Ok(g.tensors[t.ok_or_else(|| anyhow!("missing input"))?]
        .shape
        .len())
}

fn norm_axis(axis: i64, rank: usize) -> Result<i32> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a < 0 || a >= rank.max(1) as i64 {
        bail!("axis {axis} is out of range for rank {rank}");
    }
    Ok(a as i32)
}

#[allow(clippy::too_many_arguments)]
fn lower(
    g: &mut Graph,
    raw: &mut [Option<Vec<u8>>],
    code: i32,
    opts: &BuiltinOptions,
    ins: &[Option<usize>],
    outs: &[usize],
    origin: &str,
) -> Result<Option<Node>> {
    let input = |k: usize| ins.get(k).copied().flatten();
    let node = |code: OpCode, attrs: Vec<i32>, inputs: Vec<Option<usize>>| {
        Ok(Some(Node {
            code,
            attrs,
            inputs,
            outputs: outs.to_vec(),
            origin: origin.to_string(),
        }))
    };
    let shape = |k: usize| -> Result<Vec<usize>> {
        Ok(
            g.tensors[input(k).ok_or_else(|| anyhow!("missing input {k}"))?]
                .shape
                .clone(),
        )
    };
    match (code, opts) {
        (
            b::CONV_2D,
            BuiltinOptions::Conv2D {
                padding: p,
                stride_w,
                stride_h,
                fused_activation,
                dilation_w,
                dilation_h,
            },
        ) => {
            let (x, f) = (shape(0)?, shape(1)?);
            if x.len() != 4 || f.len() != 4 {
                bail!("expects 4-D input and filter");
            }
            let (s, d) = (
                (pos(*stride_h, "stride")?, pos(*stride_w, "stride")?),
                (pos(*dilation_h, "dilation")?, pos(*dilation_w, "dilation")?),
            );
            let pads = window_pads(*p, (x[1], x[2]), (f[1], f[2]), s, d);
            let attrs = vec![
                s.0 as i32,
                s.1 as i32,
                d.0 as i32,
                d.1 as i32,
                pads[0],
                pads[1],
                pads[2],
                pads[3],
                act(*fused_activation)?,
            ];
            node(OpCode::Conv2d, attrs, vec![input(0), input(1), input(2)])
        }
        (
            b::DEPTHWISE_CONV_2D,
            BuiltinOptions::DepthwiseConv2D {
                padding: p,
                stride_w,
                stride_h,
                depth_multiplier: _,
                fused_activation,
                dilation_w,
                dilation_h,
            },
        ) => {
            let (x, f) = (shape(0)?, shape(1)?);
            if x.len() != 4 || f.len() != 4 || x[3] == 0 {
                bail!("expects 4-D input and filter");
            }
            // TFLite derives the multiplier from the shapes; the option may be stale.
            let mult = f[3] / x[3];
            let (s, d) = (
                (pos(*stride_h, "stride")?, pos(*stride_w, "stride")?),
                (pos(*dilation_h, "dilation")?, pos(*dilation_w, "dilation")?),
            );
            let pads = window_pads(*p, (x[1], x[2]), (f[1], f[2]), s, d);
            let attrs = vec![
                s.0 as i32,
                s.1 as i32,
                d.0 as i32,
                d.1 as i32,
                pads[0],
                pads[1],
                pads[2],
                pads[3],
                act(*fused_activation)?,
                mult as i32,
            ];
            node(
                OpCode::DepthwiseConv2d,
                attrs,
                vec![input(0), input(1), input(2)],
            )
        }
        (
            b::FULLY_CONNECTED,
            BuiltinOptions::FullyConnected {
                fused_activation,
                weights_format,
                keep_num_dims,
                asymmetric_quantize_inputs: _,
            },
        ) => {
            if *weights_format != 0 {
                bail!("shuffled weights format is not supported");
            }
            let w = input(1).map(|t| g.tensors[t].dtype);
            let x = input(0).map(|t| g.tensors[t].dtype);
            if w != x {
                bail!("hybrid (float input, int8 weights) FULLY_CONNECTED is not supported");
            }
            node(
                OpCode::FullyConnected,
                vec![act(*fused_activation)?, *keep_num_dims as i32],
                vec![input(0), input(1), input(2)],
            )
        }
        (b::ADD, BuiltinOptions::Add { fused_activation }) => node(
            OpCode::Add,
            vec![act(*fused_activation)?],
            vec![input(0), input(1)],
        ),
        (b::ADD, BuiltinOptions::None) => node(OpCode::Add, vec![0], vec![input(0), input(1)]),
        (b::SUB, BuiltinOptions::Sub { fused_activation }) => node(
            OpCode::Sub,
            vec![act(*fused_activation)?],
            vec![input(0), input(1)],
        ),
        (b::SUB, BuiltinOptions::None) => node(OpCode::Sub, vec![0], vec![input(0), input(1)]),
        (b::MUL, BuiltinOptions::Mul { fused_activation }) => node(
            OpCode::Mul,
            vec![act(*fused_activation)?],
            vec![input(0), input(1)],
        ),
        (b::MUL, BuiltinOptions::None) => node(OpCode::Mul, vec![0], vec![input(0), input(1)]),
        (b::MAXIMUM, _) => node(OpCode::Maximum, vec![], vec![input(0), input(1)]),
        (b::MINIMUM, _) => node(OpCode::Minimum, vec![], vec![input(0), input(1)]),
        (b::RELU, _) => node(OpCode::Relu, vec![], vec![input(0)]),
        (b::RELU6, _) => node(OpCode::Relu6, vec![], vec![input(0)]),
        (b::RELU_N1_TO_1, _) => node(OpCode::ReluN1To1, vec![], vec![input(0)]),
        (b::LEAKY_RELU, BuiltinOptions::LeakyRelu { alpha }) => node(
            OpCode::LeakyRelu,
            vec![alpha.to_bits() as i32],
            vec![input(0)],
        ),
        (b::PRELU, _) => node(OpCode::Prelu, vec![], vec![input(0), input(1)]),
        (b::LOCAL_RESPONSE_NORMALIZATION, BuiltinOptions::LocalResponseNorm { radius, .. })
            if *radius < 0 =>
        {
            bail!("LOCAL_RESPONSE_NORMALIZATION radius {radius} is negative")
        }
        (
            b::LOCAL_RESPONSE_NORMALIZATION,
            BuiltinOptions::LocalResponseNorm {
                radius,
                bias,
                alpha,
                beta,
            },
        ) => node(
            OpCode::LocalResponseNorm,
            vec![
                *radius,
                *radius,
                bias.to_bits() as i32,
                alpha.to_bits() as i32,
                beta.to_bits() as i32,
            ],
            vec![input(0)],
        ),
        (b::HARD_SWISH, _) => node(OpCode::HardSwish, vec![], vec![input(0)]),
        (b::LOGISTIC, _) => node(OpCode::Logistic, vec![], vec![input(0)]),
        (b::TANH, _) => node(OpCode::Tanh, vec![], vec![input(0)]),
        (b::SOFTMAX, BuiltinOptions::Softmax { beta }) => {
            node(OpCode::Softmax, vec![beta.to_bits() as i32], vec![input(0)])
        }
        (b::PAD | b::PADV2, _) => {
            let rank = rank_of(g, input(0))?;
            let p = const_ints(g, input(1), "paddings")?;
            if p.len() != 2 * rank || p.iter().any(|&v| !(0..=i32::MAX as i64).contains(&v)) {
                bail!("paddings must be a non-negative [{rank}, 2] tensor");
            }
            let attrs = p.iter().map(|&v| v as i32).collect();
            if code == b::PADV2 && input(2).is_some() {
                node(OpCode::PadV2, attrs, vec![input(0), input(2)])
            } else {
                node(OpCode::Pad, attrs, vec![input(0)])
            }
        }
        (
            b::MAX_POOL_2D | b::AVERAGE_POOL_2D,
            BuiltinOptions::Pool2D {
                padding: p,
                stride_w,
                stride_h,
                filter_width,
                filter_height,
                fused_activation,
            },
        ) => {
            let x = shape(0)?;
            if x.len() != 4 {
                bail!("expects a 4-D input");
            }
            let s = (pos(*stride_h, "stride")?, pos(*stride_w, "stride")?);
            let k = (
                pos(*filter_height, "filter size")?,
                pos(*filter_width, "filter size")?,
            );
            let pads = window_pads(*p, (x[1], x[2]), k, s, (1, 1));
            let attrs = vec![
                s.0 as i32,
                s.1 as i32,
                k.0 as i32,
                k.1 as i32,
                pads[0],
                pads[1],
                pads[2],
                pads[3],
                act(*fused_activation)?,
                0,
            ];
            let code = if code == b::MAX_POOL_2D {
                OpCode::MaxPool2d
            } else {
                OpCode::AveragePool2d
            };
            node(code, attrs, vec![input(0)])
        }
        (b::MEAN, BuiltinOptions::Reducer { keep_dims }) => {
            let rank = rank_of(g, input(0))?;
            let mut axes: Vec<i32> = const_ints(g, input(1), "axes")?
                .iter()
                .map(|&a| norm_axis(a, rank))
                .collect::<Result<_>>()?;
            axes.sort_unstable();
            axes.dedup();
            let mut attrs = vec![*keep_dims as i32];
            attrs.extend(axes);
            node(OpCode::Mean, attrs, vec![input(0)])
        }
        (b::RESHAPE, _) => node(OpCode::Reshape, vec![], vec![input(0)]),
        (b::SQUEEZE, _) => node(OpCode::Squeeze, vec![], vec![input(0)]),
        (b::EXPAND_DIMS, _) => node(OpCode::ExpandDims, vec![], vec![input(0)]),
        (
            b::CONCATENATION,
            BuiltinOptions::Concatenation {
                axis,
                fused_activation,
            },
        ) => {
            let rank = rank_of(g, input(0))?;
            node(
                OpCode::Concatenation,
                vec![norm_axis(*axis as i64, rank)?, act(*fused_activation)?],
                ins.to_vec(),
            )
        }
        (b::SPLIT, _) => {
            let rank = rank_of(g, input(1))?;
            let axis = const_ints(g, input(0), "axis")?;
            let axis = norm_axis(*axis.first().ok_or_else(|| anyhow!("empty axis"))?, rank)?;
            node(OpCode::Split, vec![axis], vec![input(1)])
        }
        (b::SPLIT_V, _) => {
            let rank = rank_of(g, input(0))?;
            let axis = const_ints(g, input(2), "axis")?;
            let axis = norm_axis(*axis.first().ok_or_else(|| anyhow!("empty axis"))?, rank)?;
            node(OpCode::SplitV, vec![axis], vec![input(0)])
        }
        (
            b::STRIDED_SLICE,
            BuiltinOptions::StridedSlice {
                begin_mask,
                end_mask,
                ellipsis_mask,
                new_axis_mask,
                shrink_axis_mask,
                offset,
            },
        ) => {
            let x = shape(0)?;
            let to32 = |v: Vec<i64>| -> Vec<i32> {
                v.into_iter()
                    .map(|v| v.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
                    .collect()
            };
            let begin = to32(const_ints(g, input(1), "begin")?);
            let end = to32(const_ints(g, input(2), "end")?);
            let strides = to32(const_ints(g, input(3), "strides")?);
            let r = resolve_strided_slice(
                &x,
                &begin,
                &end,
                &strides,
                *begin_mask,
                *end_mask,
                *ellipsis_mask,
                *new_axis_mask,
                *shrink_axis_mask,
                *offset,
            )
            .map_err(|e| anyhow!("{e}"))?;
            node(OpCode::StridedSlice, slice_attrs(&r.params), vec![input(0)])
        }
        (b::SLICE, _) => {
            let x = shape(0)?;
            let r = resolve_slice(
                &x,
                &const_ints(g, input(1), "begin")?,
                &const_ints(g, input(2), "size")?,
            )
            .map_err(|e| anyhow!("{e}"))?;
            node(OpCode::Slice, slice_attrs(&r.params), vec![input(0)])
        }
        (b::TRANSPOSE, _) => {
            let rank = rank_of(g, input(0))?;
            let perm: Vec<i32> = const_ints(g, input(1), "permutation")?
                .iter()
                .map(|&a| norm_axis(a, rank))
                .collect::<Result<_>>()?;
            node(OpCode::Transpose, perm, vec![input(0)])
        }
        (
            b::RESIZE_BILINEAR,
            BuiltinOptions::ResizeBilinear {
                align_corners,
                half_pixel_centers,
            },
        ) => node(
            OpCode::ResizeBilinear,
            vec![*align_corners as i32, *half_pixel_centers as i32],
            vec![input(0)],
        ),
        (
            b::RESIZE_NEAREST_NEIGHBOR,
            BuiltinOptions::ResizeNearestNeighbor {
                align_corners,
                half_pixel_centers,
            },
        ) => node(
            OpCode::ResizeNearestNeighbor,
            vec![*align_corners as i32, *half_pixel_centers as i32],
            vec![input(0)],
        ),
        (b::DEPTH_TO_SPACE, BuiltinOptions::DepthToSpace { block_size }) => node(
            OpCode::DepthToSpace,
            vec![pos(*block_size, "block size")? as i32],
            vec![input(0)],
        ),
        (b::SPACE_TO_DEPTH, BuiltinOptions::SpaceToDepth { block_size }) => node(
            OpCode::SpaceToDepth,
            vec![pos(*block_size, "block size")? as i32],
            vec![input(0)],
        ),
        (
            b::TRANSPOSE_CONV,
            BuiltinOptions::TransposeConv {
                padding,
                stride_w,
                stride_h,
                fused_activation,
            },
        ) => {
            let out = *outs.first().ok_or_else(|| anyhow!("missing output"))?;
            let want = const_ints(g, input(0), "output_shape")?;
            if want
                .iter()
                .map(|&d| d as usize)
                .ne(g.tensors[out].shape.iter().copied())
            {
                bail!(
                    "output_shape {want:?} differs from the output tensor's shape {:?}",
                    g.tensors[out].shape
                );
            }
            transpose_conv(
                g,
                TransposeConv {
                    x: input(2).ok_or_else(|| anyhow!("missing input"))?,
                    filter: input(1).ok_or_else(|| anyhow!("missing filter"))?,
                    bias: input(3),
                    padding: *padding,
                    stride: (pos(*stride_h, "stride")?, pos(*stride_w, "stride")?),
                    act: act(*fused_activation)?,
                },
                out,
                origin,
            )
        }
        (b::QUANTIZE, _) => node(OpCode::Quantize, vec![], vec![input(0)]),
        (b::DEQUANTIZE, _) => {
            let src = input(0).ok_or_else(|| anyhow!("missing input"))?;
            let out = *outs.first().ok_or_else(|| anyhow!("missing output"))?;
            // Constant weights stored as fp16 or int8: fold to f32 now.
            if let Some(bytes) = &raw[src] {
                let vals: Vec<u8> = bytes
                    .chunks_exact(2)
                    .flat_map(|c| {
                        half::f16::from_le_bytes([c[0], c[1]])
                            .to_f32()
                            .to_le_bytes()
                    })
                    .collect();
                return fold_const(g, out, vals);
            }
            if let (Some(data), Quant::PerTensor(_) | Quant::PerAxis { .. }) =
                (&g.tensors[src].data, &g.tensors[src].quant)
            {
                let t = &g.tensors[src];
                let vals = dequantize_const(t, data)?;
                return fold_const(g, out, vals);
            }
            node(OpCode::Dequantize, vec![], vec![input(0)])
        }
        (b::DENSIFY, _) => {
            // The sparse input was densified when read; the op just passes it on.
            let src = input(0).ok_or_else(|| anyhow!("missing input"))?;
            let out = *outs.first().ok_or_else(|| anyhow!("missing output"))?;
            if raw[src].is_some() {
                // fp16: on to its DEQUANTIZE, which folds it to f32.
                raw[out] = raw[src].clone();
                return Ok(None);
            }
            let data = g.tensors[src]
                .data
                .clone()
                .ok_or_else(|| anyhow!("DENSIFY of a non-constant tensor"))?;
            fold_const(g, out, data)
        }
        (b::UNIDIRECTIONAL_SEQUENCE_LSTM, _) => {
            lstm::unidirectional_sequence_lstm(g, opts, ins, outs, origin).map(Some)
        }
        (b::SPACE_TO_BATCH_ND | b::BATCH_TO_SPACE_ND | b::GATHER_ND | b::SELECT, _) => {
            lower_data_movement(g, code, ins, outs, origin).map(Some)
        }
        _ => lower_elementwise(g, code, opts, ins, outs, origin),
    }
}

/// SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND, GATHER_ND and SELECT on the
/// runtime's PAD, RESHAPE, TRANSPOSE, SLICE, GATHER and WHERE (they only move
/// values, so int8 tensors keep their quantization through every step).
/// Intermediate nodes go to `g.nodes`; the one writing the output is returned.
fn lower_data_movement(
    g: &mut Graph,
    code: i32,
    ins: &[Option<usize>],
    outs: &[usize],
    origin: &str,
) -> Result<Node> {
    let input = |k: usize| -> Result<usize> {
        ins.get(k)
            .copied()
            .flatten()
            .ok_or_else(|| anyhow!("missing input {k}"))
    };
    let [out] = outs[..] else {
        bail!("expects one output, got {}", outs.len());
    };
    let make = |code: OpCode, attrs: Vec<i32>, inputs: Vec<usize>, output: usize| Node {
        code,
        attrs,
        inputs: inputs.into_iter().map(Some).collect(),
        outputs: vec![output],
        origin: origin.to_string(),
    };
    // A tensor like `like` (dtype and quantization) with another shape.
    let shaped = |g: &mut Graph, like: usize, shape: Vec<usize>, what: &str| {
        let mut t = g.tensors[like].clone();
        t.name = format!("{}/{what}", t.name);
        t.shape = shape;
        t.data = None;
        g.add_tensor(t)
    };
    let x = input(0)?;
    let xs = g.tensors[x].shape.clone();
    // The output shape must be the one the ops compute.
    let check_out = |g: &Graph, want: &[usize]| -> Result<()> {
        let have = &g.tensors[out].shape;
        if have[..] != *want {
            bail!("the output is stored as {have:?}, but the input {xs:?} gives {want:?}");
        }
        Ok(())
    };
    match code {
        // [B, s1.., rest..] padded, each spatial axis split into (s / b, b),
        // the block axes moved to the front and merged into the batch:
        // [b1 * .. * bM * B, s1 / b1, .., rest..].
        b::SPACE_TO_BATCH_ND | b::BATCH_TO_SPACE_ND => {
            let to_space = code == b::BATCH_TO_SPACE_ND;
            let block = const_ints(g, Some(input(1)?), "block_shape")?;
            let m = block.len();
            let pads = const_ints(
                g,
                Some(input(2)?),
                if to_space { "crops" } else { "paddings" },
            )?;
            if m == 0 || xs.len() < m + 1 || pads.len() != 2 * m {
                bail!(
                    "block_shape {block:?} and {} {pads:?} do not fit an input of shape {xs:?} \
                     (one block size and two {} per spatial axis after the batch)",
                    if to_space { "crops" } else { "paddings" },
                    if to_space { "crops" } else { "paddings" },
                );
            }
            if block.iter().any(|&v| !(1..=1 << 16).contains(&v))
                || pads.iter().any(|&v| !(0..=1 << 30).contains(&v))
            {
                bail!("block sizes must be >= 1 and paddings/crops >= 0, got {block:?}, {pads:?}");
            }
            let block: Vec<usize> = block.iter().map(|&v| v as usize).collect();
            let pads: Vec<usize> = pads.iter().map(|&v| v as usize).collect();
            let blocks: usize = block.iter().product();
            let (batch, rest) = (xs[0], &xs[m + 1..]);
            if to_space {
                if !batch.is_multiple_of(blocks) {
                    bail!("input batch {batch} is not a multiple of the block sizes' product {blocks}");
                }
                let b = batch / blocks;
                // [b1.., B, s1.., rest..] -> [B, s1, b1, .., sM, bM, rest..]
                let mut split: Vec<usize> = block.clone();
                split.push(b);
                split.extend_from_slice(&xs[1..]);
                let mut perm = vec![m as i32];
                for i in 0..m {
                    perm.extend([(m + 1 + i) as i32, i as i32]);
                }
                perm.extend((2 * m + 1..split.len()).map(|a| a as i32));
                let mut full = vec![b];
                full.extend((0..m).map(|i| xs[1 + i] * block[i]));
                full.extend_from_slice(rest);
                let mut want = vec![b];
                for i in 0..m {
                    let cropped = full[1 + i].checked_sub(pads[2 * i] + pads[2 * i + 1]);
                    want.push(cropped.ok_or_else(|| {
                        anyhow!(
                            "crops {:?} exceed spatial size {}",
                            &pads[2 * i..2 * i + 2],
                            full[1 + i]
                        )
                    })?);
                }
                want.extend_from_slice(rest);
                check_out(g, &want)?;
                let t = shaped(g, x, split.clone(), "blocks");
                g.nodes.push(make(OpCode::Reshape, vec![], vec![x], t));
                let moved_shape = perm.iter().map(|&a| split[a as usize]).collect();
                let moved = shaped(g, x, moved_shape, "interleaved");
                g.nodes.push(make(OpCode::Transpose, perm, vec![t], moved));
                if pads.iter().all(|&p| p == 0) {
                    return Ok(make(OpCode::Reshape, vec![], vec![moved], out));
                }
                let merged = shaped(g, x, full.clone(), "uncropped");
                g.nodes
                    .push(make(OpCode::Reshape, vec![], vec![moved], merged));
                let mut begin = vec![0i64; full.len()];
                for i in 0..m {
                    begin[1 + i] = pads[2 * i] as i64;
                }
                let size: Vec<i64> = want.iter().map(|&d| d as i64).collect();
                let r = resolve_slice(&full, &begin, &size).map_err(|e| anyhow!("{e}"))?;
                return Ok(make(
                    OpCode::Slice,
                    slice_attrs(&r.params),
                    vec![merged],
                    out,
                ));
            }
            let mut padded = xs.clone();
            let mut split = vec![batch];
            let mut want = vec![batch * blocks];
            for i in 0..m {
                padded[1 + i] += pads[2 * i] + pads[2 * i + 1];
                if !padded[1 + i].is_multiple_of(block[i]) {
                    bail!(
                        "padded spatial size {} (axis {}) is not a multiple of block size {}",
                        padded[1 + i],
                        1 + i,
                        block[i]
                    );
                }
                split.extend([padded[1 + i] / block[i], block[i]]);
                want.push(padded[1 + i] / block[i]);
            }
            split.extend_from_slice(rest);
            want.extend_from_slice(rest);
            check_out(g, &want)?;
            let mut cur = x;
            if pads.iter().any(|&p| p > 0) {
                let mut attrs = vec![0; 2 * xs.len()];
                attrs[2..2 + 2 * m]
                    .copy_from_slice(&pads.iter().map(|&p| p as i32).collect::<Vec<_>>());
                cur = shaped(g, x, padded, "padded");
                g.nodes.push(make(OpCode::Pad, attrs, vec![x], cur));
            }
            // [B, s1 / b1, b1, .., rest..] -> [b1, .., bM, B, s1 / b1, .., rest..]
            let t = shaped(g, x, split.clone(), "blocks");
            g.nodes.push(make(OpCode::Reshape, vec![], vec![cur], t));
            let mut perm: Vec<i32> = (0..m).map(|i| (2 + 2 * i) as i32).collect();
            perm.push(0);
            perm.extend((0..m).map(|i| (1 + 2 * i) as i32));
            perm.extend((2 * m + 1..split.len()).map(|a| a as i32));
            let moved_shape = perm.iter().map(|&a| split[a as usize]).collect();
            let moved = shaped(g, x, moved_shape, "blocks_first");
            g.nodes.push(make(OpCode::Transpose, perm, vec![t], moved));
            Ok(make(OpCode::Reshape, vec![], vec![moved], out))
        }
        // params viewed as [p1 * .. * pK, rest..] and gathered on axis 0 by
        // the flat index sum(idx[k] * stride[k]) (TFLite bounds-checks only
        // that flat index too; out of range gives zeros, as GATHER does here).
        b::GATHER_ND => {
            let idx = input(1)?;
            let is = g.tensors[idx].shape.clone();
            let k = *is
                .last()
                .ok_or_else(|| anyhow!("indices must have rank >= 1"))?;
            if k == 0 || k > xs.len() {
                bail!(
                    "indices' last dimension {k} must be 1 to the params' rank {}",
                    xs.len()
                );
            }
            let lead = &is[..is.len() - 1];
            let mut want = lead.to_vec();
            want.extend_from_slice(&xs[k..]);
            check_out(g, &want)?;
            let mut strides = vec![1usize; k];
            for a in (0..k - 1).rev() {
                strides[a] = strides[a + 1] * xs[a + 1];
            }
            let rows: usize = xs[..k].iter().product();
            let mut flat_shape = vec![rows];
            flat_shape.extend_from_slice(&xs[k..]);
            let params = if k == 1 {
                x
            } else {
                let t = shaped(g, x, flat_shape, "rows");
                g.nodes.push(make(OpCode::Reshape, vec![], vec![x], t));
                t
            };
            let flat = if g.tensors[idx].data.is_some() {
                let v = const_ints(g, Some(idx), "indices")?;
                let data: Vec<u8> = v
                    .chunks(k)
                    .flat_map(|c| {
                        let f: i64 = c.iter().zip(&strides).map(|(&i, &s)| i * s as i64).sum();
                        f.to_le_bytes()
                    })
                    .collect();
                g.add_tensor(Tensor {
                    name: format!("{}/flat", g.tensors[idx].name),
                    dtype: DType::I64,
                    shape: lead.to_vec(),
                    quant: Quant::None,
                    data: Some(data),
                })
            } else if k == 1 {
                let t = shaped(g, idx, lead.to_vec(), "flat");
                g.nodes.push(make(OpCode::Reshape, vec![], vec![idx], t));
                t
            } else {
                let dtype = g.tensors[idx].dtype;
                let bytes: Vec<u8> = match dtype {
                    DType::I32 => strides
                        .iter()
                        .flat_map(|&s| (s as i32).to_le_bytes())
                        .collect(),
                    DType::I64 => strides
                        .iter()
                        .flat_map(|&s| (s as i64).to_le_bytes())
                        .collect(),
                    other => bail!("indices must be int32 or int64, not {}", other.name()),
                };
                let stride = g.add_tensor(Tensor {
                    name: format!("{}/strides", g.tensors[idx].name),
                    dtype,
                    shape: vec![k],
                    quant: Quant::None,
                    data: Some(bytes),
                });
                let scaled = shaped(g, idx, is.clone(), "scaled");
                g.nodes
                    .push(make(OpCode::Binary, vec![2], vec![idx, stride], scaled));
                let t = shaped(g, idx, lead.to_vec(), "flat");
                g.nodes.push(make(
                    OpCode::Reduce,
                    vec![0, 0, is.len() as i32 - 1],
                    vec![scaled],
                    t,
                ));
                t
            };
            Ok(make(OpCode::Gather, vec![0], vec![params, flat], out))
        }
        // SELECT (v1): a condition shaped like x and y, or a vector choosing
        // whole rows (reshaped to [n, 1, ..] so that WHERE broadcasts it).
        _ => {
            let (c, y) = (x, input(2)?);
            let xv = input(1)?;
            let (cs, vs) = (g.tensors[c].shape.clone(), g.tensors[xv].shape.clone());
            if g.tensors[y].shape != vs {
                bail!(
                    "x {vs:?} and y {:?} must have the same shape",
                    g.tensors[y].shape
                );
            }
            if cs == vs {
                return Ok(make(OpCode::Where, vec![], vec![c, xv, y], out));
            }
            if cs.len() != 1 || vs.first() != Some(&cs[0]) {
                bail!("the condition {cs:?} must have x's shape {vs:?} or be a vector over its first axis");
            }
            let mut rows = vec![1; vs.len()];
            rows[0] = cs[0];
            let t = shaped(g, c, rows, "rows");
            g.nodes.push(make(OpCode::Reshape, vec![], vec![c], t));
            Ok(make(OpCode::Where, vec![], vec![t, xv, y], out))
        }
    }
}

/// A TFLite transposed convolution: input `x` `[n, ih, iw, ic]`, filter
/// `[oc, kh, kw, ic]`, optional bias `[oc]`, output `[n, oh, ow, oc]`.
struct TransposeConv {
    x: usize,
    filter: usize,
    bias: Option<usize>,
    padding: TflPadding,
    stride: (usize, usize),
    /// Fused activation, as [`act`] numbers it.
    act: i32,
}

/// Lowers a [`TransposeConv`] writing `out` to CONV_TRANSPOSE, the filter
/// re-laid as `[ic, oc, kh, kw]` (ONNX's layout, which the runtime takes).
///
/// TFLite places the output by the padding a forward convolution from the
/// output back to the input would use (`kernels/transpose_conv.cc`): the
/// leading pad is that convolution's top/left pad, and its output size must
/// be the input's. A fused activation becomes its own op after the conv.
fn transpose_conv(
    g: &mut Graph,
    tc: TransposeConv,
    out: usize,
    origin: &str,
) -> Result<Option<Node>> {
    let (xs, fs, ys) = (
        g.tensors[tc.x].shape.clone(),
        g.tensors[tc.filter].shape.clone(),
        g.tensors[out].shape.clone(),
    );
    if xs.len() != 4 || fs.len() != 4 || ys.len() != 4 {
        bail!("expects 4-D input, filter and output (got {xs:?}, {fs:?}, {ys:?})");
    }
    if g.tensors[tc.x].dtype != DType::F32 {
        bail!("only float TRANSPOSE_CONV is supported");
    }
    let (oc, kh, kw, ic) = (fs[0], fs[1], fs[2], fs[3]);
    if ic != xs[3] || oc != ys[3] || xs[0] != ys[0] || kh == 0 || kw == 0 {
        bail!("filter {fs:?} does not take input {xs:?} to output {ys:?}");
    }
    let mut pad = [0usize; 2];
    for (i, (k, s)) in [(kh, tc.stride.0), (kw, tc.stride.1)]
        .into_iter()
        .enumerate()
    {
        let (back, lead) = tflite_padding(padding(tc.padding), ys[1 + i], k, s, 1);
        if back != xs[1 + i] {
            bail!(
                "output {ys:?} does not match input {xs:?} with a {kh}x{kw} filter, stride {:?} and {:?} padding",
                tc.stride,
                tc.padding
            );
        }
        pad[i] = lead;
    }
    let w = g.tensors[tc.filter]
        .data
        .as_deref()
        .filter(|_| g.tensors[tc.filter].dtype == DType::F32)
        .ok_or_else(|| anyhow!("the filter must be a float constant"))?;
    let w: Vec<f32> = w
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut relaid = Vec::with_capacity(w.len() * 4);
    for i in 0..ic {
        for o in 0..oc {
            for t in 0..kh * kw {
                relaid.extend_from_slice(&w[(o * kh * kw + t) * ic + i].to_le_bytes());
            }
        }
    }
    let filter = g.add_tensor(Tensor {
        name: format!("{}/filter_iohw", g.tensors[tc.filter].name),
        dtype: DType::F32,
        shape: vec![ic, oc, kh, kw],
        quant: Quant::None,
        data: Some(relaid),
    });
    if let Some(b) = tc.bias {
        if g.tensors[b].dtype != DType::F32 || g.tensors[b].shape.iter().product::<usize>() != oc {
            bail!("the bias must be {oc} floats");
        }
    }
    let activation = match tc.act {
        0 => None,
        1 => Some(OpCode::Relu),
        2 => Some(OpCode::ReluN1To1),
        3 => Some(OpCode::Relu6),
        other => bail!("fused activation {other} is not supported"),
    };
    let conv_out = match activation {
        None => out,
        Some(_) => {
            let t = g.tensors[out].clone();
            g.add_tensor(Tensor {
                name: format!("{}/pre_activation", t.name),
                data: None,
                ..t
            })
        }
    };
    let attrs = [tc.stride.0, tc.stride.1, 1, 1, pad[0], pad[1], 1]
        .map(|v| v as i32)
        .to_vec();
    let conv = Node {
        code: OpCode::ConvTranspose,
        attrs,
        inputs: vec![Some(tc.x), Some(filter), tc.bias],
        outputs: vec![conv_out],
        origin: origin.to_string(),
    };
    Ok(Some(match activation {
        None => conv,
        Some(code) => {
            g.nodes.push(conv);
            Node {
                code,
                attrs: vec![],
                inputs: vec![Some(conv_out)],
                outputs: vec![out],
                origin: origin.to_string(),
            }
        }
    }))
}

/// MediaPipe's `Convolution2DTransposeBias` (its segmentation models): a
/// TRANSPOSE_CONV with the bias as input 2 and no output-shape input. Its
/// parameters are TFLite's `TfLiteTransposeConvParams` C struct stored raw
/// as the custom options: padding (1 SAME, 2 VALID), stride w, stride h, as
/// little-endian i32. The output size follows from them.
fn mediapipe_transpose_conv(
    g: &mut Graph,
    params: &[u8],
    ins: &[Option<usize>],
    outs: &[usize],
    origin: &str,
) -> Result<Option<Node>> {
    let field = |k: usize| -> Result<i32> {
        params
            .get(4 * k..4 * k + 4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| {
                anyhow!(
                    "custom options of {} bytes; expected padding and strides (12 bytes)",
                    params.len()
                )
            })
    };
    let padding = match field(0)? {
        1 => TflPadding::Same,
        2 => TflPadding::Valid,
        other => bail!("unknown padding {other} in the custom options"),
    };
    let stride = (pos(field(2)?, "stride_h")?, pos(field(1)?, "stride_w")?);
    let (Some(&Some(x)), Some(&Some(filter)), Some(&out)) = (ins.first(), ins.get(1), outs.first())
    else {
        bail!("expects input, filter and bias, and one output");
    };
    transpose_conv(
        g,
        TransposeConv {
            x,
            filter,
            bias: ins.get(2).copied().flatten(),
            padding,
            stride,
            act: 0,
        },
        out,
        origin,
    )
}

/// TFLite's SSD post-processing op (`TFLite_Detection_PostProcess`, the end
/// of SSD models exported by the TensorFlow Object Detection API). Its
/// options are a flexbuffer map. The runtime's DETECTION_POSTPROCESS writes
/// one float vector holding the op's four outputs and then its working
/// memory (so it runs without allocating); a SLICE and a RESHAPE each hand
/// the four outputs out: boxes `[1, D, 4]` (ymin, xmin, ymax, xmax,
/// normalized), classes `[1, D]`, scores `[1, D]` and the count `[1]`, with
/// D = max_detections × max_classes_per_detection. Quantized inputs are
/// dequantized first (constant anchors at conversion).
fn tflite_detection_postprocess(
    g: &mut Graph,
    options: &[u8],
    ins: &[Option<usize>],
    outs: &[usize],
    origin: &str,
) -> Result<Option<Node>> {
    use ferrite_runtime::kernels::reference::detection::DetectionPostprocess;
    use flexbuffers::Reader;
    let map = Reader::get_root(options)
        .map_err(|e| anyhow!("custom options are not a flexbuffer: {e}"))?
        .get_map()
        .map_err(|e| anyhow!("custom options are not a flexbuffer map: {e}"))?;
    let get = |key: &str| {
        map.index(key)
            .ok()
            .filter(|v| !v.flexbuffer_type().is_null())
    };
    let int = |key: &str, default: Option<i64>| -> Result<usize> {
        let v = match (get(key), default) {
            (Some(v), _) => v.as_i64(),
            (None, Some(d)) => d,
            (None, None) => bail!("custom option `{key}` is missing"),
        };
        usize::try_from(v).map_err(|_| anyhow!("custom option `{key}` is {v}"))
    };
    let float = |key: &str| -> Result<f32> {
        get(key)
            .map(|v| v.as_f64() as f32)
            .ok_or_else(|| anyhow!("custom option `{key}` is missing"))
    };
    let (
        Some(&Some(boxes)),
        Some(&Some(scores)),
        Some(&Some(anchors)),
        &[o_boxes, o_classes, o_scores, o_count],
    ) = (ins.first(), ins.get(1), ins.get(2), outs)
    else {
        bail!("expects box encodings, class scores and anchors, and four outputs");
    };
    let shape = |t: usize| g.tensors[t].shape.clone();
    let (n, box_stride) = match shape(boxes)[..] {
        [1, n, k] if k >= 4 => (n, k),
        _ => bail!(
            "box encodings of shape {:?}; expected [1, N, 4 or more]",
            shape(boxes)
        ),
    };
    let scores_stride = match shape(scores)[..] {
        [1, m, c] if m == n => c,
        _ => bail!(
            "class scores of shape {:?}; expected [1, {n}, C]",
            shape(scores)
        ),
    };
    let p = DetectionPostprocess {
        num_boxes: n,
        box_stride,
        num_classes: int("num_classes", None)?,
        scores_stride,
        max_detections: int("max_detections", None)?,
        max_classes_per_detection: int("max_classes_per_detection", None)?,
        detections_per_class: int("detections_per_class", Some(100))?,
        regular_nms: get("use_regular_nms").is_some_and(|v| v.as_bool()),
        score_threshold: float("nms_score_threshold")?,
        iou_threshold: float("nms_iou_threshold")?,
        scales: [
            float("y_scale")?,
            float("x_scale")?,
            float("h_scale")?,
            float("w_scale")?,
        ],
    };
    if p.num_classes == 0 || p.max_classes_per_detection == 0 {
        bail!("num_classes and max_classes_per_detection must be positive");
    }
    if p.regular_nms && p.detections_per_class.min(p.max_detections) == 0 {
        bail!("use_regular_nms needs detections_per_class and max_detections above 0");
    }
    if !(p.iou_threshold > 0.0 && p.iou_threshold <= 1.0) {
        bail!("nms_iou_threshold {} is outside (0, 1]", p.iou_threshold);
    }
    let total = p
        .output_len()
        .filter(|&len| len <= 1 << 28)
        .ok_or_else(|| anyhow!("max_detections × max_classes_per_detection is too large"))?;
    let slots = p.max_detections * p.max_classes_per_detection;
    // Float inputs: quantized activations through DEQUANTIZE, quantized
    // constant anchors dequantized now.
    let float_input = |g: &mut Graph, t: usize| -> Result<usize> {
        let tensor = g.tensors[t].clone();
        if tensor.dtype == DType::F32 && tensor.quant == Quant::None {
            return Ok(t);
        }
        if tensor.quant == Quant::None {
            bail!(
                "input '{}' is {} without quantization parameters; expected float32",
                tensor.name,
                tensor.dtype.name()
            );
        }
        let name = format!("{}/dequantized", tensor.name);
        if let Some(data) = &tensor.data {
            let bytes = dequantize_const(&tensor, data)?;
            return Ok(g.add_tensor(Tensor {
                name,
                dtype: DType::F32,
                quant: Quant::None,
                data: Some(bytes),
                ..tensor
            }));
        }
        let f = g.add_tensor(Tensor {
            name,
            dtype: DType::F32,
            quant: Quant::None,
            data: None,
            ..tensor
        });
        g.nodes.push(Node {
            code: OpCode::Dequantize,
            attrs: vec![],
            inputs: vec![Some(t)],
            outputs: vec![f],
            origin: origin.to_string(),
        });
        Ok(f)
    };
    let inputs = vec![
        Some(float_input(g, boxes)?),
        Some(float_input(g, scores)?),
        Some(float_input(g, anchors)?),
    ];
    let float_tensor = |name: String, shape: Vec<usize>| Tensor {
        name,
        dtype: DType::F32,
        shape,
        quant: Quant::None,
        data: None,
    };
    let base = g.tensors[o_boxes].name.clone();
    let packed = g.add_tensor(float_tensor(format!("{base}/packed"), vec![total]));
    let parts = [4 * slots, slots, slots, 1];
    let flat: Vec<usize> = parts
        .iter()
        .enumerate()
        .map(|(k, &len)| g.add_tensor(float_tensor(format!("{base}/part{k}"), vec![len])))
        .collect();
    // Every attribute is an i32; floats go as their bits.
    let attrs = vec![
        p.max_detections as i32,
        p.max_classes_per_detection as i32,
        p.detections_per_class.min(i32::MAX as usize) as i32,
        p.regular_nms as i32,
        p.num_classes.min(i32::MAX as usize) as i32,
        p.score_threshold.to_bits() as i32,
        p.iou_threshold.to_bits() as i32,
        p.scales[0].to_bits() as i32,
        p.scales[1].to_bits() as i32,
        p.scales[2].to_bits() as i32,
        p.scales[3].to_bits() as i32,
    ];
    g.nodes.push(Node {
        code: OpCode::DetectionPostprocess,
        attrs,
        inputs,
        outputs: vec![packed],
        origin: origin.to_string(),
    });
    // Each output is a SLICE of the packed vector (its working memory after
    // them is never copied), reshaped.
    let mut at = 0;
    for (k, &len) in parts.iter().enumerate() {
        g.nodes.push(Node {
            code: OpCode::Slice,
            attrs: vec![1, at as i32, 1, len as i32],
            inputs: vec![Some(packed)],
            outputs: vec![flat[k]],
            origin: origin.to_string(),
        });
        at += len;
    }
    let finals = [
        (o_boxes, vec![1, slots, 4]),
        (o_classes, vec![1, slots]),
        (o_scores, vec![1, slots]),
        (o_count, vec![1]),
    ];
    let mut reshapes: Vec<Node> = Vec::new();
    for (k, (out, shape)) in finals.into_iter().enumerate() {
        let t = &mut g.tensors[out];
        t.dtype = DType::F32;
        t.quant = Quant::None;
        t.shape = shape;
        reshapes.push(Node {
            code: OpCode::Reshape,
            attrs: vec![],
            inputs: vec![Some(flat[k])],
            outputs: vec![out],
            origin: origin.to_string(),
        });
    }
    // The last one is this op's node; the others go in first.
    let last = reshapes.pop();
    g.nodes.extend(reshapes);
    Ok(last)
}

/// The custom ops of MediaPipe's attention face mesh.
const MEDIAPIPE_MESH_OPS: [&str; 3] = [
    "Landmarks2TransformMatrix",
    "TransformTensorBilinear",
    "TransformLandmarks",
];

/// One of MediaPipe's attention face mesh ops (`face_landmark_with_attention`:
/// a crop matrix from the mesh's landmarks, the crop of a feature map, the
/// crop's landmarks mapped back), version 2. Their options are a
/// flexbuffer map, turned into attributes here (`docs/format.md`, op codes
/// 81–83); the runtime checks the shapes.
fn mediapipe_mesh_op(
    name: &str,
    version: i32,
    options: &[u8],
    ins: &[Option<usize>],
    outs: &[usize],
    origin: &str,
) -> Result<Option<Node>> {
    use flexbuffers::Reader;
    if version != 2 {
        bail!("version {version} of {name} is not supported (version 2 is)");
    }
    type Map<'a> = flexbuffers::MapReader<&'a [u8]>;
    // Parsed by the ops that have options (TransformLandmarks has none).
    let map = || -> Result<Map<'_>> {
        Reader::get_root(options)
            .map_err(|e| anyhow!("custom options are not a flexbuffer: {e}"))?
            .get_map()
            .map_err(|e| anyhow!("custom options are not a flexbuffer map: {e}"))
    };
    fn value<'a>(m: &flexbuffers::MapReader<&'a [u8]>, key: &str) -> Result<Reader<&'a [u8]>> {
        m.index(key)
            .map_err(|_| anyhow!("custom option `{key}` is missing"))
    }
    let int = |m: &Map<'_>, key: &str| -> Result<i32> {
        i32::try_from(value(m, key)?.as_i64())
            .map_err(|_| anyhow!("custom option `{key}` is out of range"))
    };
    // MediaPipe reads a missing float as 0; only the rotation may be.
    let float = |m: &Map<'_>, key: &str| -> Result<i32> {
        let v = match value(m, key) {
            Ok(v) => v.as_f64() as f32,
            Err(_) if key == "target_rotation_radians" => 0.0,
            Err(e) => return Err(e),
        };
        Ok(v.to_bits() as i32)
    };
    let (code, attrs, n_in) = match name {
        "Landmarks2TransformMatrix" => {
            let m = map()?;
            let mut attrs = vec![
                int(&m, "left_rotation_idx")?,
                int(&m, "right_rotation_idx")?,
                int(&m, "output_height")?,
                int(&m, "output_width")?,
                float(&m, "scale_x")?,
                float(&m, "scale_y")?,
                float(&m, "target_rotation_radians")?,
            ];
            let subset = value(&m, "subset_idxs")?
                .get_vector()
                .map_err(|_| anyhow!("custom option `subset_idxs` is not a vector"))?;
            for v in subset.iter() {
                attrs.push(
                    i32::try_from(v.as_i64())
                        .map_err(|_| anyhow!("a `subset_idxs` index is out of range"))?,
                );
            }
            (OpCode::LandmarksToTransformMatrix, attrs, 1)
        }
        "TransformTensorBilinear" => {
            let m = map()?;
            let hw = vec![int(&m, "output_height")?, int(&m, "output_width")?];
            (OpCode::TransformTensorBilinear, hw, 2)
        }
        _ => (OpCode::TransformLandmarks, vec![], 2),
    };
    let inputs: Vec<Option<usize>> = ins.to_vec();
    if inputs.len() != n_in || inputs.iter().any(Option::is_none) || outs.len() != 1 {
        bail!("expects {n_in} input(s) and one output");
    }
    Ok(Some(Node {
        code,
        attrs,
        inputs,
        outputs: outs.to_vec(),
        origin: origin.to_string(),
    }))
}

fn slice_attrs(p: &ferrite_runtime::kernels::reference::movement::SliceParams) -> Vec<i32> {
    let r = p.rank;
    let mut a = vec![r as i32];
    a.extend(p.start[..r].iter().map(|&v| v as i32));
    a.extend(p.stride[..r].iter().map(|&v| v as i32));
    a.extend(p.count[..r].iter().map(|&v| v as i32));
    a
}

fn dequantize_const(t: &Tensor, data: &[u8]) -> Result<Vec<u8>> {
    let ints = t
        .int_data()
        .ok_or_else(|| anyhow!("cannot dequantize a {} constant", t.dtype.name()))?;
    let n = ints.len();
    let out: Vec<f32> = match &t.quant {
        Quant::PerTensor(q) => ints
            .iter()
            .map(|&v| q.scale * (v as i32 - q.zero_point) as f32)
            .collect(),
        Quant::PerAxis {
            axis,
            scales,
            zero_points,
        } => {
            let inner: usize = t.shape[axis + 1..].iter().product();
            let dim = t.shape[*axis];
            (0..n)
                .map(|i| {
                    let c = (i / inner.max(1)) % dim.max(1);
                    scales[c] * (ints[i] as i32 - zero_points[c]) as f32
                })
                .collect()
        }
        Quant::None => bail!("DEQUANTIZE input has no quantization parameters"),
    };
    let _ = data;
    Ok(out.iter().flat_map(|v| v.to_le_bytes()).collect())
}

fn fold_const(g: &mut Graph, out: usize, data: Vec<u8>) -> Result<Option<Node>> {
    let t = &mut g.tensors[out];
    if data.len() != t.nbytes() {
        bail!(
            "folded constant has {} bytes, tensor '{}' needs {}",
            data.len(),
            t.name,
            t.nbytes()
        );
    }
    t.data = Some(data);
    Ok(None)
}

/// Drops ops that do nothing: a reshape to the same shape, a requantize to the
/// same parameters, a concatenation of one tensor. Their consumers read the
/// input directly. Ops producing a graph output are kept (the output keeps its
/// name).
fn drop_noops(g: &mut Graph) {
    let mut k = 0;
    while k < g.nodes.len() {
        let n = &g.nodes[k];
        let noop = match (n.inputs.first().copied().flatten(), n.outputs.as_slice()) {
            (Some(i), [o]) => {
                let (ti, to) = (&g.tensors[i], &g.tensors[*o]);
                let same = ti.shape == to.shape && ti.dtype == to.dtype && ti.quant == to.quant;
                let kind = matches!(
                    n.code,
                    OpCode::Reshape | OpCode::Squeeze | OpCode::ExpandDims | OpCode::Quantize
                ) || (n.code == OpCode::Concatenation
                    && n.inputs.len() == 1
                    && n.attrs.get(1) == Some(&0));
                same && kind && !g.outputs.contains(o)
            }
            _ => false,
        };
        if noop {
            let (i, o) = (g.nodes[k].inputs[0].unwrap(), g.nodes[k].outputs[0]);
            g.nodes.remove(k);
            g.replace_uses(o, i);
        } else {
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tflite::{TflBuffer, TflModel, TflOpCode, TflOperator, TflSubgraph, TflTensor};

    fn tensor(name: &str) -> TflTensor {
        TflTensor {
            shape: vec![1, 4],
            shape_signature: None,
            dtype: tt::FLOAT32,
            buffer: 0,
            name: name.into(),
            quantization: None,
            is_variable: false,
            sparsity: None,
        }
    }

    #[test]
    fn every_unsupported_op_is_listed_once_with_counts() {
        let codes = [
            b::SVDF,
            b::RELU,
            b::LSH_PROJECTION,
            b::SVDF,
            b::CUSTOM,
            b::SVDF,
        ];
        let operator_codes = vec![
            TflOpCode {
                builtin_code: b::SVDF,
                custom_code: None,
                version: 1,
            },
            TflOpCode {
                builtin_code: b::RELU,
                custom_code: None,
                version: 1,
            },
            TflOpCode {
                builtin_code: b::LSH_PROJECTION,
                custom_code: None,
                version: 1,
            },
            TflOpCode {
                builtin_code: b::CUSTOM,
                custom_code: Some("MyOp".into()),
                version: 1,
            },
        ];
        let index_of = |c: i32| match c {
            b::SVDF => 0,
            b::RELU => 1,
            b::LSH_PROJECTION => 2,
            _ => 3,
        };
        let tensors: Vec<TflTensor> = (0..=codes.len())
            .map(|i| tensor(&format!("t{i}")))
            .collect();
        let operators = codes
            .iter()
            .enumerate()
            .map(|(i, &c)| TflOperator {
                opcode_index: index_of(c),
                inputs: vec![i as i32],
                outputs: vec![i as i32 + 1],
                options: BuiltinOptions::None,
                custom_options: vec![],
            })
            .collect();
        let m = TflModel {
            version: 3,
            operator_codes,
            subgraphs: vec![TflSubgraph {
                name: None,
                tensors,
                inputs: vec![0],
                outputs: vec![codes.len() as i32],
                operators,
            }],
            buffers: vec![TflBuffer { data: &[] }],
            description: None,
        };
        let err = import_model(&m).unwrap_err().to_string();
        assert_eq!(
            err,
            "unsupported ops: CUSTOM:MyOp x1 (op 4); LSH_PROJECTION x1 (op 2); SVDF x3 (op 0, 3, 5)"
        );
    }

    /// A one-op model `code` on a float input `x` and int32 constants
    /// (SELECT: a bool condition first, then two float inputs).
    fn movement_op(
        code: i32,
        x: &[i32],
        consts: &[(&[i32], &[i32])],
        out: &[i32],
    ) -> Result<Graph> {
        let bytes: Vec<Vec<u8>> = consts
            .iter()
            .map(|(_, v)| v.iter().flat_map(|d| d.to_le_bytes()).collect())
            .collect();
        let mut tensors = vec![TflTensor {
            shape: x.to_vec(),
            dtype: if code == b::SELECT {
                tt::BOOL
            } else {
                tt::FLOAT32
            },
            ..tensor("x")
        }];
        for (k, (shape, _)) in consts.iter().enumerate() {
            tensors.push(TflTensor {
                shape: shape.to_vec(),
                dtype: if code == b::SELECT {
                    tt::FLOAT32
                } else {
                    tt::INT32
                },
                buffer: if code == b::SELECT { 0 } else { k as u32 + 1 },
                ..tensor(&format!("c{k}"))
            });
        }
        tensors.push(TflTensor {
            shape: out.to_vec(),
            ..tensor("y")
        });
        let n = tensors.len() as i32;
        let mut buffers = vec![TflBuffer { data: &[] }];
        buffers.extend(bytes.iter().map(|b| TflBuffer { data: b }));
        let m = TflModel {
            version: 3,
            operator_codes: vec![TflOpCode {
                builtin_code: code,
                custom_code: None,
                version: 1,
            }],
            subgraphs: vec![TflSubgraph {
                name: None,
                tensors,
                inputs: if code == b::SELECT {
                    vec![0, 1, 2]
                } else {
                    vec![0]
                },
                outputs: vec![n - 1],
                operators: vec![TflOperator {
                    opcode_index: 0,
                    inputs: (0..n - 1).collect(),
                    outputs: vec![n - 1],
                    options: BuiltinOptions::None,
                    custom_options: vec![],
                }],
            }],
            buffers,
            description: None,
        };
        import_model(&m)
    }

    /// A one-op UNIDIRECTIONAL_SEQUENCE_LSTM model (batch 1, 3 steps, 2
    /// inputs, 4 cells, no peepholes or projection), changed by `tweak`.
    fn lstm_model(tweak: impl Fn(&mut Vec<TflTensor>)) -> Result<Graph> {
        let (n, n_in) = (4, 2);
        let mut shapes: Vec<Option<Vec<i32>>> = vec![Some(vec![1, 3, n_in])];
        shapes.extend((0..4).map(|_| Some(vec![n, n_in])));
        shapes.extend((0..4).map(|_| Some(vec![n, n])));
        shapes.extend((0..3).map(|_| None));
        shapes.extend((0..4).map(|_| Some(vec![n])));
        shapes.extend([None, None, Some(vec![1, n]), Some(vec![1, n])]);
        let data: Vec<Vec<u8>> = shapes
            .iter()
            .map(|s| vec![0u8; 4 * s.as_ref().map_or(0, |s| s.iter().product::<i32>() as usize)])
            .collect();
        let mut tensors = Vec::new();
        let mut inputs = Vec::new();
        let mut buffers = vec![TflBuffer { data: &[] }];
        for (k, s) in shapes.iter().enumerate() {
            let Some(s) = s else {
                inputs.push(-1);
                continue;
            };
            let (constant, variable) = (k > 0 && k < 18, k >= 18);
            inputs.push(tensors.len() as i32);
            tensors.push(TflTensor {
                shape: s.clone(),
                buffer: if constant { buffers.len() as u32 } else { 0 },
                is_variable: variable,
                ..tensor(&format!("t{k}"))
            });
            if constant {
                buffers.push(TflBuffer { data: &data[k] });
            }
        }
        tensors.push(TflTensor {
            shape: vec![1, 3, n],
            ..tensor("y")
        });
        tweak(&mut tensors);
        let y = tensors.len() as i32 - 1;
        let m = TflModel {
            version: 3,
            operator_codes: vec![TflOpCode {
                builtin_code: b::UNIDIRECTIONAL_SEQUENCE_LSTM,
                custom_code: None,
                version: 1,
            }],
            subgraphs: vec![TflSubgraph {
                name: None,
                tensors,
                inputs: vec![0],
                outputs: vec![y],
                operators: vec![TflOperator {
                    opcode_index: 0,
                    inputs,
                    outputs: vec![y],
                    options: BuiltinOptions::UnidirectionalSequenceLstm {
                        fused_activation: TflActivation::Tanh,
                        cell_clip: 0.0,
                        proj_clip: 0.0,
                        time_major: false,
                        asymmetric_quantize_inputs: false,
                        diagonal_recurrent_tensors: false,
                    },
                    custom_options: vec![],
                }],
            }],
            buffers,
            description: None,
        };
        import_model(&m)
    }

    #[test]
    fn sequence_lstm_unrolls_and_names_bad_operands() {
        let g = lstm_model(|_| {}).unwrap();
        let fcs = g
            .nodes
            .iter()
            .filter(|n| n.code == OpCode::FullyConnected)
            .count();
        // One input projection, and a recurrent product for steps 2 and 3.
        assert_eq!(fcs, 3);
        let err =
            |tweak: &dyn Fn(&mut Vec<TflTensor>)| format!("{:#}", lstm_model(tweak).unwrap_err());
        let e = err(&|t| t[0].dtype = tt::INT8);
        assert!(e.contains("only float inputs"), "{e}");
        let e = err(&|t| t.last_mut().unwrap().shape = vec![1, 3, 5]);
        assert!(e.contains("stored as [1, 3, 5], expected [1, 3, 4]"), "{e}");
        let e = err(&|t| t[3].shape = vec![4, 3]);
        assert!(e.contains("operand 3 ('t3') must have shape [4, 2]"), "{e}");
        let e = err(&|t| t[5].buffer = 0);
        assert!(e.contains("operand 5 ('t5') must be a constant"), "{e}");
    }

    #[test]
    fn space_batch_gather_nd_and_select_shapes_are_checked() {
        let err = |r: Result<Graph>| format!("{:#}", r.unwrap_err());
        let (s2b, b2s) = (b::SPACE_TO_BATCH_ND, b::BATCH_TO_SPACE_ND);
        // 5 rows padded by 0 do not split into blocks of 2.
        let e = err(movement_op(
            s2b,
            &[1, 5, 4, 1],
            &[(&[2], &[2, 2]), (&[2, 2], &[0; 4])],
            &[4, 2, 2, 1],
        ));
        assert!(
            e.contains("padded spatial size 5 (axis 1) is not a multiple of block size 2"),
            "{e}"
        );
        // Padded by one row it does, and lowers to PAD, RESHAPE, TRANSPOSE, RESHAPE.
        let g = movement_op(
            s2b,
            &[1, 5, 4, 1],
            &[(&[2], &[2, 2]), (&[2, 2], &[1, 0, 0, 0])],
            &[4, 3, 2, 1],
        )
        .unwrap();
        let codes: Vec<OpCode> = g.nodes.iter().map(|n| n.code).collect();
        assert_eq!(
            codes,
            [
                OpCode::Pad,
                OpCode::Reshape,
                OpCode::Transpose,
                OpCode::Reshape
            ]
        );
        // A stored output shape that disagrees with the op's is an error.
        let e = err(movement_op(
            s2b,
            &[1, 6, 4, 1],
            &[(&[2], &[2, 2]), (&[2, 2], &[0; 4])],
            &[4, 2, 2, 1],
        ));
        assert!(
            e.contains("stored as [4, 2, 2, 1], but the input [1, 6, 4, 1] gives [4, 3, 2, 1]"),
            "{e}"
        );
        let e = err(movement_op(
            s2b,
            &[1, 6],
            &[(&[2], &[2, 2]), (&[2, 2], &[0; 4])],
            &[1, 6],
        ));
        assert!(e.contains("do not fit an input of shape [1, 6]"), "{e}");
        let e = err(movement_op(
            s2b,
            &[1, 4, 4, 1],
            &[(&[2], &[0, 2]), (&[2, 2], &[0; 4])],
            &[1, 4, 4, 1],
        ));
        assert!(e.contains("block sizes must be >= 1"), "{e}");
        // A batch of 6 is no multiple of 2 x 2 blocks; crops larger than the image.
        let e = err(movement_op(
            b2s,
            &[6, 2, 2, 1],
            &[(&[2], &[2, 2]), (&[2, 2], &[0; 4])],
            &[1, 4, 4, 1],
        ));
        assert!(
            e.contains("input batch 6 is not a multiple of the block sizes' product 4"),
            "{e}"
        );
        let e = err(movement_op(
            b2s,
            &[4, 2, 2, 1],
            &[(&[2], &[2, 2]), (&[2, 2], &[3, 2, 0, 0])],
            &[1, 0, 4, 1],
        ));
        assert!(e.contains("crops [3, 2] exceed spatial size 4"), "{e}");
        // GATHER_ND: index tuples longer than the params' rank.
        let e = err(movement_op(
            b::GATHER_ND,
            &[2, 3],
            &[(&[1, 3], &[0, 0, 0])],
            &[1],
        ));
        assert!(
            e.contains("last dimension 3 must be 1 to the params' rank 2"),
            "{e}"
        );
        // SELECT: a row condition must match the first axis.
        let e = err(movement_op(
            b::SELECT,
            &[3],
            &[(&[2, 4], &[]), (&[2, 4], &[])],
            &[2, 4],
        ));
        assert!(
            e.contains("the condition [3] must have x's shape [2, 4]"),
            "{e}"
        );
    }

    /// A one-op model: MediaPipe's `Convolution2DTransposeBias` from a
    /// `[1, 2, 3, 2]` input through filter `[3, 2, 2, 2]` (value = index)
    /// and a bias, to `out` of the given shape, with `options` raw.
    fn mediapipe_deconv(out: &[i32], options: Vec<u8>) -> Result<Graph> {
        let filter: Vec<u8> = (0..24).flat_map(|v| (v as f32).to_le_bytes()).collect();
        let bias: Vec<u8> = [0.5f32, 1.5, 2.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let t = |name: &str, shape: &[i32], buffer: u32| TflTensor {
            shape: shape.to_vec(),
            buffer,
            ..tensor(name)
        };
        let m = TflModel {
            version: 3,
            operator_codes: vec![TflOpCode {
                builtin_code: b::CUSTOM,
                custom_code: Some("Convolution2DTransposeBias".into()),
                version: 1,
            }],
            subgraphs: vec![TflSubgraph {
                name: None,
                tensors: vec![
                    t("x", &[1, 2, 3, 2], 0),
                    t("w", &[3, 2, 2, 2], 1),
                    t("b", &[3], 2),
                    t("y", out, 0),
                ],
                inputs: vec![0],
                outputs: vec![3],
                operators: vec![TflOperator {
                    opcode_index: 0,
                    inputs: vec![0, 1, 2],
                    outputs: vec![3],
                    options: BuiltinOptions::None,
                    custom_options: options,
                }],
            }],
            buffers: vec![
                TflBuffer { data: &[] },
                TflBuffer { data: &filter },
                TflBuffer { data: &bias },
            ],
            description: None,
        };
        import_model(&m)
    }

    /// A one-op model: MediaPipe's attention mesh op `name` (version
    /// `version`) from a `[1, 6, 3]` input (and a `[1, 4, 4]` matrix for
    /// the two that take one) to `out`, with flexbuffer `options`.
    fn mediapipe_mesh(name: &str, version: i32, out: &[i32], options: Vec<u8>) -> Result<Graph> {
        let t = |name: &str, shape: &[i32]| TflTensor {
            shape: shape.to_vec(),
            ..tensor(name)
        };
        let two = name != "Landmarks2TransformMatrix";
        let m = TflModel {
            version: 3,
            operator_codes: vec![TflOpCode {
                builtin_code: b::CUSTOM,
                custom_code: Some(name.into()),
                version,
            }],
            subgraphs: vec![TflSubgraph {
                name: None,
                tensors: vec![t("x", &[1, 6, 3]), t("m", &[1, 4, 4]), t("y", out)],
                inputs: if two { vec![0, 1] } else { vec![0] },
                outputs: vec![2],
                operators: vec![TflOperator {
                    opcode_index: 0,
                    inputs: if two { vec![0, 1] } else { vec![0] },
                    outputs: vec![2],
                    options: BuiltinOptions::None,
                    custom_options: options,
                }],
            }],
            buffers: vec![TflBuffer { data: &[] }],
            description: None,
        };
        import_model(&m)
    }

    #[test]
    fn mediapipe_mesh_ops_take_their_flexbuffer_options_as_attributes() {
        let mut b = flexbuffers::Builder::default();
        let mut map = b.start_map();
        map.push("left_rotation_idx", 1i32);
        map.push("right_rotation_idx", 4i32);
        map.push("output_height", 16i32);
        map.push("output_width", 8i32);
        map.push("scale_x", 1.5f32);
        map.push("scale_y", 2.0f32);
        map.push("target_rotation_radians", 0.25f32);
        let mut subset = map.start_vector("subset_idxs");
        for i in [0i32, 2, 5] {
            subset.push(i);
        }
        subset.end_vector();
        map.end_map();
        let g = mediapipe_mesh(
            "Landmarks2TransformMatrix",
            2,
            &[1, 4, 4],
            b.view().to_vec(),
        )
        .unwrap();
        let n = &g.nodes[0];
        assert_eq!(n.code, OpCode::LandmarksToTransformMatrix);
        let f = |v: f32| v.to_bits() as i32;
        assert_eq!(n.attrs, [1, 4, 16, 8, f(1.5), f(2.0), f(0.25), 0, 2, 5]);

        let mut b = flexbuffers::Builder::default();
        let mut map = b.start_map();
        map.push("output_height", 2i32);
        map.push("output_width", 3i32);
        map.end_map();
        let g = mediapipe_mesh(
            "TransformTensorBilinear",
            2,
            &[1, 2, 3, 3],
            b.view().to_vec(),
        )
        .unwrap();
        assert_eq!(g.nodes[0].code, OpCode::TransformTensorBilinear);
        assert_eq!(g.nodes[0].attrs, [2, 3]);

        let g = mediapipe_mesh("TransformLandmarks", 2, &[1, 6, 3], vec![]).unwrap();
        assert_eq!(g.nodes[0].code, OpCode::TransformLandmarks);
        assert!(g.nodes[0].attrs.is_empty());
    }

    #[test]
    fn mediapipe_mesh_ops_name_bad_options_and_versions() {
        let err = |r: Result<Graph>| format!("{:#}", r.unwrap_err());
        // A map without the subset.
        let mut b = flexbuffers::Builder::default();
        let mut map = b.start_map();
        map.push("left_rotation_idx", 1i32);
        map.end_map();
        let e = err(mediapipe_mesh(
            "Landmarks2TransformMatrix",
            2,
            &[1, 4, 4],
            b.view().to_vec(),
        ));
        assert!(
            e.contains("custom option `right_rotation_idx` is missing"),
            "{e}"
        );
        let e = err(mediapipe_mesh(
            "TransformTensorBilinear",
            2,
            &[1, 2, 3, 3],
            vec![1, 2],
        ));
        assert!(e.contains("custom options are not a flexbuffer"), "{e}");
        let e = err(mediapipe_mesh("TransformLandmarks", 1, &[1, 6, 3], vec![]));
        assert!(
            e.contains("version 1 of TransformLandmarks is not supported"),
            "{e}"
        );
    }

    fn params(padding: i32, stride_w: i32, stride_h: i32) -> Vec<u8> {
        [padding, stride_w, stride_h]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }

    #[test]
    fn mediapipe_transpose_conv_becomes_conv_transpose_with_the_filter_relaid() {
        // SAME, stride 2 with a 2x2 filter: no overlap, the output doubles.
        let g = mediapipe_deconv(&[1, 4, 6, 3], params(1, 2, 2)).unwrap();
        assert_eq!(g.nodes.len(), 1);
        let n = &g.nodes[0];
        assert_eq!(n.code, OpCode::ConvTranspose);
        assert_eq!(n.attrs, [2, 2, 1, 1, 0, 0, 1]);
        let f = &g.tensors[n.inputs[1].unwrap()];
        assert_eq!(f.shape, [2, 3, 2, 2]);
        let v: Vec<f32> = f
            .data
            .as_ref()
            .unwrap()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        // [ic, oc, kh, kw][i][o][y][x] = [oc, kh, kw, ic][o][y][x][i] = 8o + 4y + 2x + i.
        for i in 0..2 {
            for o in 0..3 {
                for t in 0..4 {
                    assert_eq!(v[(i * 3 + o) * 4 + t], (8 * o + 2 * t + i) as f32);
                }
            }
        }
        // Stride 1, VALID: a 2x2 filter grows the 2x3 input to 3x4.
        let g = mediapipe_deconv(&[1, 3, 4, 3], params(2, 1, 1)).unwrap();
        assert_eq!(g.nodes[0].attrs, [1, 1, 1, 1, 0, 0, 1]);
    }

    #[test]
    fn mediapipe_transpose_conv_rejects_bad_options_and_shapes() {
        let err = |out: &[i32], p: Vec<u8>| format!("{:#}", mediapipe_deconv(out, p).unwrap_err());
        assert!(err(&[1, 4, 6, 3], vec![1, 0, 0, 0]).contains("custom options of 4 bytes"));
        assert!(err(&[1, 4, 6, 3], params(7, 2, 2)).contains("unknown padding 7"));
        assert!(err(&[1, 4, 6, 3], params(1, 0, 2)).contains("stride_w must be >= 1"));
        // The output does not map back onto the input.
        assert!(err(&[1, 5, 6, 3], params(1, 2, 2)).contains("does not match input"));
        assert!(err(&[1, 4, 6, 2], params(1, 2, 2)).contains("does not take input"));
    }
}
