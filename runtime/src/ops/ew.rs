//! Elementwise ops: binary arithmetic with broadcasting, activations,
//! softmax, and the quantize/dequantize conversions.

use alloc::vec::Vec;

use bytemuck::{cast_slice, cast_slice_mut};

use super::kernel::Kernel;
use super::prepare::{is_q8, Ctx};
use super::{OpCode, Operand, Step};
use crate::error::Result;
use crate::kernels::pack;
use crate::kernels::reference::activation as act;
use crate::kernels::reference::elementwise::{self as elt, BinaryI8Params, BinaryOp};
use crate::kernels::reference::quantize as q;
use crate::quant::{Activation, QParams};
use crate::types::{DType, Shape};

/// A prepared binary kernel: `out = a op b`, broadcast.
#[derive(Debug, Clone)]
pub(crate) enum Binary {
    F32 {
        op: BinaryOp,
        act: Activation,
        shapes: [Shape; 3],
    },
    I8 {
        p: BinaryI8Params,
        shapes: [Shape; 3],
    },
}

impl Binary {
    pub fn run(&self, a: &[u8], b: &[u8], out: &mut [u8]) {
        match self {
            Binary::F32 {
                op,
                act,
                shapes: [sa, sb, so],
            } => elt::binary_f32(
                *op,
                *act,
                cast_slice(a),
                sa.dims(),
                cast_slice(b),
                sb.dims(),
                cast_slice_mut(out),
                so.dims(),
            ),
            Binary::I8 {
                p,
                shapes: [sa, sb, so],
            } => elt::binary_i8(
                p,
                cast_slice(a),
                sa.dims(),
                cast_slice(b),
                sb.dims(),
                cast_slice_mut(out),
                so.dims(),
            ),
        }
    }
}

/// A prepared one-input kernel (PRELU also reads its alpha as a second input).
#[derive(Debug, Clone)]
pub(crate) enum Unary {
    ReluF32(Activation),
    ReluI8(act::ReluI8Params),
    LeakyReluF32(f32),
    LeakyReluI8(act::LeakyReluI8Params),
    PreluF32 {
        shapes: [Shape; 2],
    },
    PreluI8 {
        p: act::PreluI8Params,
        shapes: [Shape; 2],
    },
    HardSwishF32,
    HardSwishI8(act::HardSwishI8Params),
    LogisticF32,
    /// An f32 function with a vectorizable kernel of its own (LOGISTIC's
    /// polynomial), threads splitting the elements.
    MapF32(crate::kernels::table::UnaryF32Fn),
    TanhF32,
    Lut(act::LutI8),
    SoftmaxF32 {
        beta: f32,
        depth: usize,
        /// The table's kernel (rows split over the threads), or the reference.
        rows: Option<crate::kernels::table::SoftmaxF32Fn>,
    },
    SoftmaxI8 {
        p: act::SoftmaxI8Params,
        depth: usize,
    },
    QuantizeF32(QParams),
    /// ONNX's QuantizeLinear rounding (half to even).
    QuantizeF32HalfEven(QParams),
    Requantize(q::RequantizeI8Params),
    RequantizeU8(q::RequantizeI8Params),
    RequantizeToU8(q::RequantizeI8Params),
    DequantizeI8(QParams),
    DequantizeU8(QParams),
}

impl Unary {
    pub fn run(&self, x: &[u8], alpha: &[u8], out: &mut [u8]) {
        match self {
            Unary::ReluF32(kind) => act::relu_f32(*kind, cast_slice(x), cast_slice_mut(out)),
            Unary::ReluI8(p) => act::relu_i8(p, cast_slice(x), cast_slice_mut(out)),
            Unary::LeakyReluF32(a) => act::leaky_relu_f32(*a, cast_slice(x), cast_slice_mut(out)),
            Unary::LeakyReluI8(p) => act::leaky_relu_i8(p, cast_slice(x), cast_slice_mut(out)),
            Unary::PreluF32 { shapes: [sx, sa] } => act::prelu_f32(
                cast_slice(x),
                sx.dims(),
                cast_slice(alpha),
                sa.dims(),
                cast_slice_mut(out),
            ),
            Unary::PreluI8 {
                p,
                shapes: [sx, sa],
            } => act::prelu_i8(
                p,
                cast_slice(x),
                sx.dims(),
                cast_slice(alpha),
                sa.dims(),
                cast_slice_mut(out),
            ),
            Unary::HardSwishF32 => act::hard_swish_f32(cast_slice(x), cast_slice_mut(out)),
            Unary::HardSwishI8(p) => act::hard_swish_i8(p, cast_slice(x), cast_slice_mut(out)),
            Unary::LogisticF32 => act::logistic_f32(cast_slice(x), cast_slice_mut(out)),
            Unary::MapF32(f) => {
                let x: &[f32] = cast_slice(x);
                pack::elementwise(x, x, cast_slice_mut(out), |x, _, o| f(x, o))
            }
            Unary::TanhF32 => act::tanh_f32(cast_slice(x), cast_slice_mut(out)),
            Unary::Lut(lut) => act::lut_i8(lut, cast_slice(x), cast_slice_mut(out)),
            Unary::SoftmaxF32 {
                beta,
                depth,
                rows: None,
            } => act::softmax_f32(*beta, *depth, cast_slice(x), cast_slice_mut(out)),
            Unary::SoftmaxF32 {
                beta,
                depth,
                rows: Some(f),
            } => pack::softmax_rows_f32(*f, *beta, *depth, cast_slice(x), cast_slice_mut(out)),
            Unary::SoftmaxI8 { p, depth } => {
                act::softmax_i8(p, *depth, cast_slice(x), cast_slice_mut(out))
            }
            Unary::QuantizeF32(qp) => q::quantize_f32_i8(*qp, cast_slice(x), cast_slice_mut(out)),
            Unary::QuantizeF32HalfEven(qp) => {
                q::quantize_f32_i8_half_even(*qp, cast_slice(x), cast_slice_mut(out))
            }
            Unary::Requantize(p) => q::requantize_i8(p, cast_slice(x), cast_slice_mut(out)),
            Unary::RequantizeU8(p) => q::requantize_u8_i8(p, x, cast_slice_mut(out)),
            Unary::RequantizeToU8(p) => q::requantize_i8_u8(p, cast_slice(x), out),
            Unary::DequantizeI8(qp) => {
                q::dequantize_i8_f32(*qp, cast_slice(x), cast_slice_mut(out))
            }
            Unary::DequantizeU8(qp) => q::dequantize_u8_f32(*qp, x, cast_slice_mut(out)),
        }
    }
}

pub(crate) fn prep_binary(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    cx.arity(2..=2, 1)?;
    let (a, b, y) = (cx.input(0)?, cx.input(1)?, cx.output(0)?);
    let op = match cx.op.code {
        OpCode::Add => BinaryOp::Add,
        OpCode::Sub => BinaryOp::Sub,
        OpCode::Mul => BinaryOp::Mul,
        OpCode::Maximum => BinaryOp::Max,
        _ => BinaryOp::Min,
    };
    let activation = match op {
        BinaryOp::Max | BinaryOp::Min => Activation::None,
        _ => Activation::from_i32(cx.attr(0)?).ok_or(cx.bad("unknown fused activation"))?,
    };
    let out = elt::broadcast_shape(a.shape.dims(), b.shape.dims())
        .ok_or(cx.bad("input shapes do not broadcast"))?;
    cx.expect_shape(y, out.dims())?;
    let shapes = [a.shape, b.shape, y.shape];
    if [a.dtype, b.dtype, y.dtype] == [DType::F32; 3] {
        let (f, name) = match cx.table.binary_f32 {
            Some(e) => (e.f, e.name),
            None => (
                elt::binary_same_f32 as crate::kernels::table::BinaryF32Fn,
                "binary_f32_split",
            ),
        };
        let act = activation;
        let kernel = broadcast_of(a, b, &out).map(|how| Kernel::SBinary { op, act, f, how });
        if let Some(kernel) = kernel {
            steps.push(cx.step(
                kernel,
                [cx.operand(0), cx.operand(1), Operand::None],
                cx.out_range(0)?,
            ));
            return Ok(name);
        }
    }
    let (kernel, name) = match (a.dtype, b.dtype, y.dtype) {
        (DType::F32, DType::F32, DType::F32) => (
            Binary::F32 {
                op,
                act: activation,
                shapes,
            },
            "ref_binary_f32",
        ),
        (DType::I8, DType::I8, DType::I8) if is_q8(a) && is_q8(b) && is_q8(y) => {
            let (qa, qb, qy) = (cx.qparams(a)?, cx.qparams(b)?, cx.qparams(y)?);
            if matches!(op, BinaryOp::Max | BinaryOp::Min) && (qa != qy || qb != qy) {
                return Err(cx.bad("int8 MAXIMUM/MINIMUM need equal input and output quantization"));
            }
            let p = BinaryI8Params::new(op, qa, qb, qy, activation, cx.rounding())
                .ok_or(cx.bad("quantization parameters out of the supported range"))?;
            if let (BinaryI8Params::Add(add), Some(e)) = (&p, cx.table.qadd) {
                if a.shape == b.shape {
                    steps.push(cx.step(
                        Kernel::QAdd { p: *add, f: e.f },
                        [cx.operand(0), cx.operand(1), Operand::None],
                        cx.out_range(0)?,
                    ));
                    return Ok(e.name);
                }
            }
            if let (BinaryI8Params::FloatAdd(add), Some(e)) = (&p, cx.table.qadd_float) {
                if a.shape == b.shape {
                    steps.push(cx.step(
                        Kernel::QAddFloat { p: *add, f: e.f },
                        [cx.operand(0), cx.operand(1), Operand::None],
                        cx.out_range(0)?,
                    ));
                    return Ok(e.name);
                }
            }
            (Binary::I8 { p, shapes }, "ref_binary_i8")
        }
        _ => return Err(cx.bad("supported for float32 and int8 (per-tensor) tensors of one type")),
    };
    steps.push(cx.step(
        Kernel::Binary(kernel),
        [cx.operand(0), cx.operand(1), Operand::None],
        cx.out_range(0)?,
    ));
    Ok(name)
}

/// Which input (0 or 1) of a broadcasting binary op repeats whole along the
/// other, so that input is the output's layout and the small one is its
/// last dimensions (leading 1s aside): `[1, H, W, C]` with `[C]` or
/// `[1, 1, 1, C]`, or with a scalar. `None` for any other broadcast.
fn repeating(
    a: &crate::types::TensorDef,
    b: &crate::types::TensorDef,
    out: &Shape,
) -> Option<usize> {
    let repeats = |full: &Shape, small: &Shape| {
        let d = small.dims();
        let first = d.iter().position(|&n| n != 1).unwrap_or(d.len());
        full.numel() == out.numel() && small.numel() > 0 && out.dims().ends_with(&d[first..])
    };
    if repeats(&a.shape, &b.shape) {
        Some(1)
    } else if repeats(&b.shape, &a.shape) {
        Some(0)
    } else {
        None
    }
}

/// Which input (0 or 1) holds one value per row of the output's leading
/// dimensions, each spread over the trailing ones (`[.., R, 1]` against
/// `[.., R, C]`), and how many outputs each value covers; the other input
/// must have the output's shape.
fn spreading(
    a: &crate::types::TensorDef,
    b: &crate::types::TensorDef,
    out: &Shape,
) -> Option<(usize, usize)> {
    let spreads = |full: &Shape, small: &Shape| {
        let (o, d) = (out.dims(), small.dims());
        if full != out || d.len() > o.len() || small.numel() == 0 {
            return None;
        }
        // `small` aligned to the output's rank (leading 1s).
        let pad = o.len() - d.len();
        let dim = |i: usize| if i < pad { 1 } else { d[i - pad] };
        let last = (0..o.len()).rev().find(|&i| dim(i) != 1)?;
        let leading_equal = (0..=last).all(|i| dim(i) == o[i]);
        let inner: usize = o[last + 1..].iter().product();
        (leading_equal && inner > 1).then_some(inner)
    };
    if let Some(inner) = spreads(&a.shape, &b.shape) {
        Some((1, inner))
    } else {
        spreads(&b.shape, &a.shape).map(|inner| (0, inner))
    }
}

/// How `a` and `b` line up with `out` for the run-tiled element-wise
/// kernels ([`pack::broadcast_elementwise`]): one shape, one repeating
/// along the other, or one spread over the other's rows; `None` for any
/// other broadcast.
pub(crate) fn broadcast_of(
    a: &crate::types::TensorDef,
    b: &crate::types::TensorDef,
    out: &Shape,
) -> Option<pack::Broadcast> {
    if a.shape == b.shape {
        return Some(pack::Broadcast::Same);
    }
    repeating(a, b, out)
        .map(|small| pack::Broadcast::Repeat { small })
        .or_else(|| {
            spreading(a, b, out).map(|(small, inner)| pack::Broadcast::Spread { small, inner })
        })
}

pub(crate) fn prep_unary(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    let code = cx.op.code;
    cx.arity(if code == OpCode::Prelu { 2..=2 } else { 1..=1 }, 1)?;
    let (x, y) = (cx.input(0)?, cx.output(0)?);
    if code != OpCode::Prelu {
        cx.expect_shape(y, x.shape.dims())?;
    }
    let f32_io = x.dtype == DType::F32 && y.dtype == DType::F32;
    let q8_io = is_q8(x) && is_q8(y);
    let unsupported = || cx.bad("unsupported input/output dtypes for this op");
    let qx = || cx.qparams(x);
    let qy = || cx.qparams(y);
    let (kernel, name) = match code {
        OpCode::Relu | OpCode::Relu6 | OpCode::ReluN1To1 => {
            let kind = match code {
                OpCode::Relu => Activation::Relu,
                OpCode::Relu6 => Activation::Relu6,
                _ => Activation::ReluN1To1,
            };
            if f32_io {
                (Unary::ReluF32(kind), "ref_relu_f32")
            } else if q8_io {
                (
                    Unary::ReluI8(act::ReluI8Params::new(kind, qx()?, qy()?)),
                    "ref_relu_i8",
                )
            } else {
                return Err(unsupported());
            }
        }
        OpCode::LeakyRelu => {
            let alpha = cx.attr_f32(0)?;
            if !alpha.is_finite() {
                return Err(cx.bad("alpha must be finite"));
            }
            if f32_io {
                (Unary::LeakyReluF32(alpha), "ref_leaky_relu_f32")
            } else if q8_io {
                (
                    Unary::LeakyReluI8(act::LeakyReluI8Params::new(qx()?, qy()?, alpha)),
                    "ref_leaky_relu_i8",
                )
            } else {
                return Err(unsupported());
            }
        }
        OpCode::Prelu => {
            let a = cx.input(1)?;
            let out = elt::broadcast_shape(x.shape.dims(), a.shape.dims())
                .ok_or(cx.bad("alpha does not broadcast to the input"))?;
            if out != x.shape {
                return Err(cx.shape_err(a, x.shape.dims()));
            }
            cx.expect_shape(y, x.shape.dims())?;
            let shapes = [x.shape, a.shape];
            if f32_io && a.dtype == DType::F32 {
                (Unary::PreluF32 { shapes }, "ref_prelu_f32")
            } else if q8_io && is_q8(a) {
                (
                    Unary::PreluI8 {
                        p: act::PreluI8Params::new(qx()?, cx.qparams(a)?, qy()?),
                        shapes,
                    },
                    "ref_prelu_i8",
                )
            } else {
                return Err(unsupported());
            }
        }
        OpCode::HardSwish => {
            if f32_io {
                (Unary::HardSwishF32, "ref_hard_swish_f32")
            } else if q8_io {
                let p = act::HardSwishI8Params::new(qx()?, qy()?)
                    .ok_or(cx.bad("quantization parameters out of the supported range"))?;
                (Unary::HardSwishI8(p), "ref_hard_swish_i8")
            } else {
                return Err(unsupported());
            }
        }
        OpCode::Logistic | OpCode::Tanh => {
            let logistic = code == OpCode::Logistic;
            if let (true, true, Some(e)) = (f32_io, logistic, cx.table.logistic_f32) {
                (Unary::MapF32(e.f), e.name)
            } else if f32_io {
                (
                    if logistic {
                        Unary::LogisticF32
                    } else {
                        Unary::TanhF32
                    },
                    if logistic {
                        "ref_logistic_f32"
                    } else {
                        "ref_tanh_f32"
                    },
                )
            } else if q8_io {
                let lut = if logistic {
                    act::LutI8::logistic(qx()?, qy()?)
                } else {
                    act::LutI8::tanh(qx()?, qy()?)
                };
                (
                    Unary::Lut(lut),
                    if logistic {
                        "ref_logistic_i8"
                    } else {
                        "ref_tanh_i8"
                    },
                )
            } else {
                return Err(unsupported());
            }
        }
        OpCode::Softmax => {
            let beta = cx.attr_f32(0)?;
            let depth = x.shape.dims().last().copied().unwrap_or(1);
            if !beta.is_finite() || beta <= 0.0 {
                return Err(cx.bad("beta must be finite and > 0"));
            }
            if f32_io {
                let rows = cx.table.softmax_f32;
                (
                    Unary::SoftmaxF32 {
                        beta,
                        depth,
                        rows: rows.map(|e| e.f),
                    },
                    rows.map_or("ref_softmax_f32", |e| e.name),
                )
            } else if q8_io {
                let p = act::SoftmaxI8Params::new(qx()?, qy()?, beta)
                    .ok_or(cx.bad("int8 softmax needs output scale 1/256 and zero-point -128"))?;
                (Unary::SoftmaxI8 { p, depth }, "ref_softmax_i8")
            } else {
                return Err(unsupported());
            }
        }
        OpCode::Quantize => match (x.dtype, y.dtype) {
            (DType::F32, DType::I8) if is_q8(y) && cx.rounding().is_float() => (
                Unary::QuantizeF32HalfEven(qy()?),
                "ref_quantize_f32_i8_half_even",
            ),
            (DType::F32, DType::I8) if is_q8(y) => {
                (Unary::QuantizeF32(qy()?), "ref_quantize_f32_i8")
            }
            (DType::I8, DType::I8) if q8_io => (
                Unary::Requantize(q::RequantizeI8Params::new(qx()?, qy()?)),
                "ref_requantize_i8",
            ),
            (DType::U8, DType::I8) if is_q8(y) => (
                Unary::RequantizeU8(q::RequantizeI8Params::new(qx()?, qy()?)),
                "ref_requantize_u8_i8",
            ),
            (DType::I8, DType::U8) if is_q8(x) && y.quant.per_tensor().is_some() => (
                Unary::RequantizeToU8(q::RequantizeI8Params::new(qx()?, qy()?)),
                "ref_requantize_i8_u8",
            ),
            _ => return Err(cx.bad(
                "QUANTIZE supports float32 -> int8, int8 -> int8, uint8 -> int8 and int8 -> uint8",
            )),
        },
        _ => match (x.dtype, y.dtype) {
            (DType::I8, DType::F32) if is_q8(x) => {
                (Unary::DequantizeI8(qx()?), "ref_dequantize_i8_f32")
            }
            (DType::U8, DType::F32) => (Unary::DequantizeU8(qx()?), "ref_dequantize_u8_f32"),
            _ => return Err(cx.bad("DEQUANTIZE supports int8 -> float32 and uint8 -> float32")),
        },
    };
    steps.push(cx.step(
        Kernel::Unary(kernel),
        [cx.operand(0), cx.operand(1), Operand::None],
        cx.out_range(0)?,
    ));
    Ok(name)
}
