//! Ops added for the ONNX importer: element-wise math (UNARY, BINARY on any
//! numeric dtype, WHERE), reductions (REDUCE, ARG_REDUCE), CAST,
//! BATCH_MATMUL, GATHER and LOG_SOFTMAX. Each op's preparation and prepared
//! kernel live here; the shared dispatch in `families.rs` and `kernel.rs`
//! routes every op code not handled there to [`prepare_op`] and
//! [`Extra::run`]. Attribute layouts are in `docs/format.md`; the arithmetic
//! is in `kernels/reference/math.rs`.

use alloc::vec::Vec;

use bytemuck::{cast_slice, cast_slice_mut};

use super::kernel::Kernel;
use super::prepare::{is_q8, Ctx};
use super::{OpCode, Operand, Step};
use crate::error::Result;
use crate::kernels::reference::activation::{self as act, LutI8};
use crate::kernels::reference::elementwise::broadcast_shape;
use crate::kernels::reference::math::{self as m, BinaryFn, ReduceFn, ReducePlan, UnaryFn};
use crate::kernels::reference::mediapipe as mp;
use crate::kernels::table::UnaryF32Fn;
use crate::types::{DType, Quant, Shape, TensorDef, MAX_RANK};

/// A prepared kernel of one of this module's ops.
#[derive(Debug, Clone)]
pub(crate) enum Extra {
    UnaryF32 {
        f: UnaryFn,
        alpha: f32,
        beta: f32,
    },
    /// An f32 function with a vectorizable kernel of its own (swish: the
    /// table's kernel or the reference; erf, GELU), threads splitting the
    /// elements.
    MapF32(crate::kernels::table::UnaryF32Fn),
    /// An int8 UNARY: its function tabulated on the 256 input values.
    LutI8(LutI8),
    NotBool,
    IsNanF32,
    Binary {
        f: BinaryFn,
        dtype: DType,
        shapes: [Shape; 3],
    },
    /// f32 division where the operands have one shape, or one of them
    /// repeats along the other or spreads over its rows (a layer norm's
    /// `x / σ` written out): the reference's division per element, in
    /// vectorizable runs split over the threads.
    DivF32(crate::kernels::pack::Broadcast),
    Compare {
        f: BinaryFn,
        dtype: DType,
        shapes: [Shape; 3],
    },
    Where {
        dtype: DType,
        shapes: [Shape; 4],
    },
    Reduce {
        f: ReduceFn,
        dtype: DType,
        plan: ReducePlan,
        /// f32 over trailing axes (not LogSumExp): the values each output
        /// reduces, for the row kernel (`reduce_rows_f32`).
        rows: Option<usize>,
    },
    ArgReduce {
        max: bool,
        last: bool,
        dtype: DType,
        outer: usize,
        axis: usize,
        inner: usize,
    },
    Cast {
        from: DType,
        to: DType,
    },
    BatchMatmul {
        m: usize,
        k: usize,
        n: usize,
        /// Output batch dims and each operand's batch dims (1 = broadcast), rank-aligned.
        batch: [usize; MAX_RANK],
        a_batch: [usize; MAX_RANK],
        b_batch: [usize; MAX_RANK],
        rank: usize,
        /// The rows kernel: the table's, or the reference's loops.
        rows: Option<crate::kernels::matmul::MatmulF32Fn>,
    },
    Gather {
        elem: usize,
        index_i32: bool,
        outer: usize,
        axis: usize,
        inner: usize,
    },
    LocalResponseNorm {
        p: m::LrnParams,
        depth: usize,
    },
    LogSoftmax {
        depth: usize,
    },
    ConvTranspose(m::ConvTransposeGeometry),
    /// CONV_TRANSPOSE on the table's f32 GEMM.
    Deconv(alloc::boxed::Box<crate::kernels::pack::SDeconv>),
    PadMode {
        mode: m::PadMode,
        elem: usize,
        in_shape: Shape,
        before: [usize; MAX_RANK],
        out_shape: Shape,
    },
    /// MediaPipe's attention face mesh ops (`kernels::reference::mediapipe`).
    LandmarksToTransform(alloc::boxed::Box<mp::LandmarksToTransform>),
    TransformTensorBilinear {
        input_hwc: (usize, usize, usize),
        output_hw: (usize, usize),
    },
    TransformLandmarks {
        dims: usize,
    },
    /// TFLite's SSD post-processing (`kernels::reference::detection`).
    DetectionPostprocess(
        alloc::boxed::Box<crate::kernels::reference::detection::DetectionPostprocess>,
    ),
}

/// Flat index into an operand with batch dims `ob` (1 = broadcast) of the
/// output batch `bt` over output batch dims `batch`.
fn batch_index(bt: usize, batch: &[usize], ob: &[usize]) -> usize {
    let (mut rem, mut idx, mut stride) = (bt, 0, 1);
    for d in (0..batch.len()).rev() {
        let c = rem % batch[d].max(1);
        rem /= batch[d].max(1);
        if ob[d] != 1 {
            idx += c * stride;
        }
        stride *= ob[d];
    }
    idx
}

fn cast_value(from: DType, to: DType, x: &[u8], i: usize, out: &mut [u8]) {
    let v: f64 = match from {
        DType::F32 => {
            f32::from_le_bytes([x[4 * i], x[4 * i + 1], x[4 * i + 2], x[4 * i + 3]]) as f64
        }
        DType::I8 => x[i] as i8 as f64,
        DType::U8 => x[i] as f64,
        DType::Bool => (x[i] != 0) as i32 as f64,
        DType::I16 => i16::from_le_bytes([x[2 * i], x[2 * i + 1]]) as f64,
        DType::I32 => {
            i32::from_le_bytes([x[4 * i], x[4 * i + 1], x[4 * i + 2], x[4 * i + 3]]) as f64
        }
        DType::I64 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&x[8 * i..8 * i + 8]);
            // i64 → f64 can round for |v| > 2^53; integer targets are handled below.
            if to != DType::F32 && to != DType::Bool {
                let w = i64::from_le_bytes(b);
                let s = to.size();
                out[s * i..s * i + s].copy_from_slice(&w.to_le_bytes()[..s]);
                return;
            }
            i64::from_le_bytes(b) as f64
        }
    };
    let s = to.size();
    let o = &mut out[s * i..s * i + s];
    match to {
        DType::F32 => o.copy_from_slice(&(v as f32).to_le_bytes()),
        DType::Bool => o[0] = (v != 0.0) as u8,
        // Float to integer truncates toward zero (saturating); integer to
        // integer wraps, as two's complement truncation.
        _ => {
            let w = v as i64;
            o.copy_from_slice(&w.to_le_bytes()[..s]);
        }
    }
}

macro_rules! by_num {
    ($dtype:expr, |$t:ident| $body:expr) => {
        match $dtype {
            DType::F32 => {
                type $t = f32;
                $body
            }
            DType::I8 => {
                type $t = i8;
                $body
            }
            DType::U8 | DType::Bool => {
                type $t = u8;
                $body
            }
            DType::I16 => {
                type $t = i16;
                $body
            }
            DType::I32 => {
                type $t = i32;
                $body
            }
            DType::I64 => {
                type $t = i64;
                $body
            }
        }
    };
}

impl Extra {
    /// Runs the kernel on up to three operands into `out`.
    pub fn run(&self, ins: [&[u8]; 3], out: &mut [u8]) {
        match self {
            Extra::UnaryF32 { f, alpha, beta } => {
                m::unary_f32(*f, *alpha, *beta, cast_slice(ins[0]), cast_slice_mut(out))
            }
            Extra::MapF32(f) => {
                let x: &[f32] = cast_slice(ins[0]);
                crate::kernels::pack::elementwise(x, x, cast_slice_mut(out), |x, _, o| f(x, o))
            }
            Extra::LutI8(lut) => act::lut_i8(lut, cast_slice(ins[0]), cast_slice_mut(out)),
            Extra::NotBool => m::not_bool(ins[0], out),
            Extra::IsNanF32 => m::isnan_f32(cast_slice(ins[0]), out),
            Extra::DivF32(how) => crate::kernels::pack::broadcast_elementwise(
                *how,
                cast_slice(ins[0]),
                cast_slice(ins[1]),
                cast_slice_mut(out),
                |a: &[f32], b: &[f32], o: &mut [f32]| {
                    for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                        *o = x / y;
                    }
                },
            ),
            Extra::Binary { f, dtype, shapes } => by_num!(dtype, |T| m::binary::<T>(
                *f,
                cast_slice(ins[0]),
                shapes[0].dims(),
                cast_slice(ins[1]),
                shapes[1].dims(),
                cast_slice_mut(out),
                shapes[2].dims()
            )),
            Extra::Compare { f, dtype, shapes } => by_num!(dtype, |T| m::compare::<T>(
                *f,
                cast_slice(ins[0]),
                shapes[0].dims(),
                cast_slice(ins[1]),
                shapes[1].dims(),
                out,
                shapes[2].dims()
            )),
            Extra::Where { dtype, shapes } => {
                let s = dtype.size();
                let (c, x, y) = (ins[0], ins[1], ins[2]);
                let so = shapes[3].dims();
                // cond with x, then cond with y: two broadcast passes.
                crate::kernels::reference::elementwise::for_each_broadcast(
                    shapes[0].dims(),
                    shapes[1].dims(),
                    so,
                    |o, ci, xi| {
                        if c[ci] != 0 {
                            out[o * s..o * s + s].copy_from_slice(&x[xi * s..xi * s + s]);
                        }
                    },
                );
                crate::kernels::reference::elementwise::for_each_broadcast(
                    shapes[0].dims(),
                    shapes[2].dims(),
                    so,
                    |o, ci, yi| {
                        if c[ci] == 0 {
                            out[o * s..o * s + s].copy_from_slice(&y[yi * s..yi * s + s]);
                        }
                    },
                );
            }
            Extra::Reduce {
                f,
                dtype,
                plan,
                rows,
            } => match dtype {
                DType::F32 => {
                    let (x, out): (&[f32], &mut [f32]) = (cast_slice(ins[0]), cast_slice_mut(out));
                    match rows {
                        Some(count) => crate::kernels::pack::reduce_rows_f32(*f, *count, x, out),
                        None => m::reduce_f32(*f, plan, x, out),
                    }
                }
                DType::I32 => {
                    m::reduce_int::<i32>(*f, plan, cast_slice(ins[0]), cast_slice_mut(out))
                }
                _ => m::reduce_int::<i64>(*f, plan, cast_slice(ins[0]), cast_slice_mut(out)),
            },
            Extra::ArgReduce {
                max,
                last,
                dtype,
                outer,
                axis,
                inner,
            } => by_num!(dtype, |T| m::arg_reduce::<T>(
                *max,
                *last,
                cast_slice(ins[0]),
                *outer,
                *axis,
                *inner,
                cast_slice_mut(out)
            )),
            Extra::Cast { from, to } => {
                let n = out.len() / to.size();
                for i in 0..n {
                    cast_value(*from, *to, ins[0], i, out);
                }
            }
            Extra::BatchMatmul {
                m: mm,
                k,
                n,
                batch,
                a_batch,
                b_batch,
                rank,
                rows,
            } => {
                let r = *rank;
                let batches: usize = batch[..r].iter().product();
                let a_index = |bt| batch_index(bt, &batch[..r], &a_batch[..r]);
                let b_index = |bt| batch_index(bt, &batch[..r], &b_batch[..r]);
                let (a, b, out) = (cast_slice(ins[0]), cast_slice(ins[1]), cast_slice_mut(out));
                match rows {
                    Some(f) => crate::kernels::matmul::batch_matmul_f32(
                        *f,
                        a,
                        b,
                        out,
                        (*mm, *k, *n),
                        batches,
                        &a_index,
                        &b_index,
                    ),
                    None => m::batch_matmul_f32(a, b, out, *mm, *k, *n, batches, a_index, b_index),
                }
            }
            Extra::Gather {
                elem,
                index_i32,
                outer,
                axis,
                inner,
            } => {
                let mut idx_buf = [0i64; 64];
                let idx: &[u8] = ins[1];
                let count = idx.len() / if *index_i32 { 4 } else { 8 };
                // Indices are converted in chunks on the stack (no allocation).
                let per = *inner * *elem;
                let mut start = 0;
                while start < count {
                    let len = (count - start).min(idx_buf.len());
                    for (q, slot) in idx_buf[..len].iter_mut().enumerate() {
                        let i = start + q;
                        *slot = if *index_i32 {
                            i32::from_le_bytes([
                                idx[4 * i],
                                idx[4 * i + 1],
                                idx[4 * i + 2],
                                idx[4 * i + 3],
                            ]) as i64
                        } else {
                            let mut b = [0u8; 8];
                            b.copy_from_slice(&idx[8 * i..8 * i + 8]);
                            i64::from_le_bytes(b)
                        };
                    }
                    for o in 0..*outer {
                        for (q, &ix) in idx_buf[..len].iter().enumerate() {
                            let j = if ix < 0 { ix + *axis as i64 } else { ix };
                            let d0 = (o * count + start + q) * per;
                            let dst = &mut out[d0..d0 + per];
                            if j >= 0 && (j as usize) < *axis {
                                let s = (o * *axis + j as usize) * per;
                                dst.copy_from_slice(&ins[0][s..s + per]);
                            } else {
                                dst.fill(0);
                            }
                        }
                    }
                    start += len;
                }
            }
            Extra::ConvTranspose(g) => {
                let bias = (!ins[2].is_empty()).then(|| cast_slice(ins[2]));
                m::conv_transpose_f32(
                    g,
                    cast_slice(ins[0]),
                    cast_slice(ins[1]),
                    bias,
                    cast_slice_mut(out),
                )
            }
            Extra::Deconv(k) => k.exec(cast_slice(ins[0]), cast_slice_mut(out)),
            Extra::PadMode {
                mode,
                elem,
                in_shape,
                before,
                out_shape,
            } => m::pad_mode(
                *mode,
                ins[0],
                in_shape.dims(),
                &before[..in_shape.rank()],
                out,
                out_shape.dims(),
                *elem,
            ),
            Extra::LogSoftmax { depth } => {
                m::log_softmax_f32(*depth, cast_slice(ins[0]), cast_slice_mut(out))
            }
            Extra::LocalResponseNorm { p, depth } => {
                m::local_response_norm_f32(p, *depth, cast_slice(ins[0]), cast_slice_mut(out))
            }
            Extra::LandmarksToTransform(p) => {
                let matrix = p.matrix(cast_slice(ins[0]));
                cast_slice_mut(out).copy_from_slice(&matrix);
            }
            Extra::TransformTensorBilinear {
                input_hwc,
                output_hw,
            } => mp::transform_tensor_bilinear_f32(
                cast_slice(ins[0]),
                *input_hwc,
                cast_slice(ins[1]),
                cast_slice_mut(out),
                *output_hw,
            ),
            Extra::TransformLandmarks { dims } => mp::transform_landmarks_f32(
                cast_slice(ins[0]),
                *dims,
                cast_slice(ins[1]),
                cast_slice_mut(out),
            ),
            Extra::DetectionPostprocess(p) => p.run(
                cast_slice(ins[0]),
                cast_slice(ins[1]),
                cast_slice(ins[2]),
                cast_slice_mut(out),
            ),
        }
    }
}

fn plain(t: &TensorDef) -> bool {
    t.quant == Quant::None
}

/// Prepares an op handled by this module.
pub(crate) fn prepare_op(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    let (kernel, name) = match cx.op.code {
        OpCode::Unary => prep_unary(cx)?,
        OpCode::Binary => prep_binary(cx)?,
        OpCode::Where => prep_where(cx)?,
        OpCode::Reduce => prep_reduce(cx)?,
        OpCode::ArgReduce => prep_arg(cx)?,
        OpCode::Cast => prep_cast(cx)?,
        OpCode::BatchMatmul => prep_matmul(cx)?,
        OpCode::Gather => prep_gather(cx)?,
        OpCode::ConvTranspose => prep_conv_transpose(cx)?,
        OpCode::PadMode => prep_pad_mode(cx)?,
        OpCode::LandmarksToTransformMatrix => prep_landmarks_to_transform(cx)?,
        OpCode::TransformTensorBilinear => prep_transform_tensor(cx)?,
        OpCode::TransformLandmarks => prep_transform_landmarks(cx)?,
        OpCode::DetectionPostprocess => prep_detection_postprocess(cx)?,
        OpCode::LocalResponseNorm => {
            cx.arity(1..=1, 1)?;
            let (x, y) = (cx.input(0)?, cx.output(0)?);
            cx.expect_dtype(x, &[DType::F32])?;
            cx.expect_dtype(y, &[DType::F32])?;
            if !plain(x) || !plain(y) {
                return Err(cx.bad("supported for float32 tensors only"));
            }
            cx.expect_shape(y, x.shape.dims())?;
            let depth = x.shape.dims().last().copied().unwrap_or(1);
            let p = m::LrnParams {
                before: cx.attr_usize(0, 0)?,
                after: cx.attr_usize(1, 0)?,
                bias: cx.attr_f32(2)?,
                alpha: cx.attr_f32(3)?,
                beta: cx.attr_f32(4)?,
            };
            if ![p.bias, p.alpha, p.beta].iter().all(|v| v.is_finite()) {
                return Err(cx.bad("bias, alpha and beta must be finite"));
            }
            (
                Extra::LocalResponseNorm { p, depth },
                "ref_local_response_norm_f32",
            )
        }
        OpCode::LogSoftmax => {
            cx.arity(1..=1, 1)?;
            let (x, y) = (cx.input(0)?, cx.output(0)?);
            cx.expect_dtype(x, &[DType::F32])?;
            cx.expect_dtype(y, &[DType::F32])?;
            cx.expect_shape(y, x.shape.dims())?;
            let depth = x.shape.dims().last().copied().unwrap_or(1);
            (Extra::LogSoftmax { depth }, "ref_log_softmax_f32")
        }
        _ => return Err(cx.bad("op not supported by this runtime")),
    };
    let n_in = cx.op.inputs.len().min(3);
    let mut ins = [Operand::None, Operand::None, Operand::None];
    for (k, slot) in ins.iter_mut().enumerate().take(n_in) {
        *slot = cx.operand(k);
    }
    steps.push(cx.step(Kernel::Extra(kernel), ins, cx.out_range(0)?));
    Ok(name)
}

fn prep_unary(cx: &Ctx<'_>) -> Result<(Extra, &'static str)> {
    cx.arity(1..=1, 1)?;
    let (x, y) = (cx.input(0)?, cx.output(0)?);
    cx.expect_shape(y, x.shape.dims())?;
    let f = UnaryFn::from_i32(cx.attr(0)?).ok_or(cx.bad("unknown unary function"))?;
    let (alpha, beta) = (cx.attr_f32(1)?, cx.attr_f32(2)?);
    if is_q8(x) && is_q8(y) && f.is_real() {
        // TFLite's way for any int8 element-wise function: 256 values in,
        // so 256 entries, each the float function rounded once.
        let lut = LutI8::from_fn(cx.qparams(x)?, cx.qparams(y)?, |v| f.apply(v, alpha, beta));
        return Ok((Extra::LutI8(lut), "ref_unary_lut_i8"));
    }
    if !plain(x) || !plain(y) {
        return Err(cx.bad("quantized tensors are not supported"));
    }
    match f {
        UnaryFn::Not => {
            cx.expect_dtype(x, &[DType::Bool])?;
            cx.expect_dtype(y, &[DType::Bool])?;
            Ok((Extra::NotBool, "ref_not_bool"))
        }
        UnaryFn::IsNan => {
            cx.expect_dtype(x, &[DType::F32])?;
            cx.expect_dtype(y, &[DType::Bool])?;
            Ok((Extra::IsNanF32, "ref_isnan_f32"))
        }
        UnaryFn::Swish => {
            cx.expect_dtype(x, &[DType::F32])?;
            cx.expect_dtype(y, &[DType::F32])?;
            Ok(match cx.table.swish_f32 {
                Some(e) => (Extra::MapF32(e.f), e.name),
                None => (Extra::MapF32(act::swish_f32), "swish_f32_poly"),
            })
        }
        UnaryFn::Erf | UnaryFn::Gelu => {
            cx.expect_dtype(x, &[DType::F32])?;
            cx.expect_dtype(y, &[DType::F32])?;
            let (slot, reference) = if f == UnaryFn::Erf {
                (
                    cx.table.erf_f32,
                    (act::erf_f32 as UnaryF32Fn, "erf_f32_poly"),
                )
            } else {
                (
                    cx.table.gelu_f32,
                    (act::gelu_f32 as UnaryF32Fn, "gelu_f32_poly"),
                )
            };
            let (f, name) = slot.map_or(reference, |e| (e.f, e.name));
            Ok((Extra::MapF32(f), name))
        }
        _ => {
            cx.expect_dtype(x, &[DType::F32])?;
            cx.expect_dtype(y, &[DType::F32])?;
            Ok((Extra::UnaryF32 { f, alpha, beta }, "ref_unary_f32"))
        }
    }
}

fn prep_binary(cx: &Ctx<'_>) -> Result<(Extra, &'static str)> {
    cx.arity(2..=2, 1)?;
    let (a, b, y) = (cx.input(0)?, cx.input(1)?, cx.output(0)?);
    let f = BinaryFn::from_i32(cx.attr(0)?).ok_or(cx.bad("unknown binary function"))?;
    if a.dtype != b.dtype {
        return Err(cx.bad("operands must have one dtype"));
    }
    if !plain(a) || !plain(b) || !plain(y) {
        return Err(cx.bad("quantized tensors are not supported"));
    }
    let out = broadcast_shape(a.shape.dims(), b.shape.dims())
        .ok_or(cx.bad("input shapes do not broadcast"))?;
    cx.expect_shape(y, out.dims())?;
    let shapes = [a.shape, b.shape, y.shape];
    if f.is_compare() {
        cx.expect_dtype(y, &[DType::Bool])?;
        Ok((
            Extra::Compare {
                f,
                dtype: a.dtype,
                shapes,
            },
            "ref_compare",
        ))
    } else {
        if y.dtype != a.dtype || a.dtype == DType::Bool {
            return Err(cx.bad("arithmetic needs numeric operands and output of one dtype"));
        }
        if f == BinaryFn::Div && a.dtype == DType::F32 {
            if let Some(how) = super::ew::broadcast_of(a, b, &out) {
                return Ok((Extra::DivF32(how), "div_f32_split"));
            }
        }
        Ok((
            Extra::Binary {
                f,
                dtype: a.dtype,
                shapes,
            },
            "ref_binary",
        ))
    }
}

fn prep_where(cx: &Ctx<'_>) -> Result<(Extra, &'static str)> {
    cx.arity(3..=3, 1)?;
    let (c, x, yv, o) = (cx.input(0)?, cx.input(1)?, cx.input(2)?, cx.output(0)?);
    cx.expect_dtype(c, &[DType::Bool])?;
    if x.dtype != yv.dtype || o.dtype != x.dtype || !plain(x) || !plain(yv) || !plain(o) {
        return Err(cx.bad("x, y and the output must have one (unquantized) dtype"));
    }
    let s1 = broadcast_shape(c.shape.dims(), x.shape.dims())
        .ok_or(cx.bad("input shapes do not broadcast"))?;
    let out = broadcast_shape(s1.dims(), yv.shape.dims())
        .ok_or(cx.bad("input shapes do not broadcast"))?;
    cx.expect_shape(o, out.dims())?;
    // Each pass broadcasts a pair onto the output: both members must do so.
    for s in [c.shape, x.shape, yv.shape] {
        if broadcast_shape(s.dims(), out.dims()) != Some(out) {
            return Err(cx.bad("input shapes do not broadcast"));
        }
    }
    Ok((
        Extra::Where {
            dtype: x.dtype,
            shapes: [c.shape, x.shape, yv.shape, o.shape],
        },
        "ref_where",
    ))
}

fn prep_reduce(cx: &Ctx<'_>) -> Result<(Extra, &'static str)> {
    cx.arity(1..=1, 1)?;
    let (x, y) = (cx.input(0)?, cx.output(0)?);
    let f = ReduceFn::from_i32(cx.attr(0)?).ok_or(cx.bad("unknown reduction"))?;
    let keep = cx.attr(1)? != 0;
    let r = x.shape.rank();
    let mut reduce = [false; MAX_RANK];
    for k in 2..cx.op.attrs.len() {
        let a = cx.attr_usize(k, 0)?;
        if a >= r {
            return Err(cx.bad("axis out of range"));
        }
        reduce[a] = true;
    }
    let mut out = [0usize; MAX_RANK];
    let mut n = 0;
    for (d, &reduced) in reduce[..r].iter().enumerate() {
        if !reduced {
            out[n] = x.shape.dim(d);
            n += 1;
        } else if keep {
            out[n] = 1;
            n += 1;
        }
    }
    cx.expect_shape(y, &out[..n])?;
    if x.dtype != y.dtype || !plain(x) || !plain(y) {
        return Err(cx.bad("input and output must have one (unquantized) dtype"));
    }
    let float_only = matches!(f, ReduceFn::L2 | ReduceFn::LogSum | ReduceFn::LogSumExp);
    match x.dtype {
        DType::F32 => {}
        DType::I32 | DType::I64 if !float_only => {}
        _ => return Err(cx.bad("supported for float32 (and int32/int64 sums, extrema, products)")),
    }
    if x.shape.numel() == 0 && y.shape.numel() != 0 {
        return Err(cx.bad("reduction of an empty tensor"));
    }
    let plan = ReducePlan::new(x.shape.dims(), &reduce[..r]);
    let rows = plan
        .trailing()
        .filter(|_| x.dtype == DType::F32 && f != ReduceFn::LogSumExp);
    Ok((
        Extra::Reduce {
            f,
            dtype: x.dtype,
            plan,
            rows,
        },
        if rows.is_some() {
            "reduce_rows8_f32"
        } else {
            "ref_reduce"
        },
    ))
}

fn prep_arg(cx: &Ctx<'_>) -> Result<(Extra, &'static str)> {
    cx.arity(1..=1, 1)?;
    let (x, y) = (cx.input(0)?, cx.output(0)?);
    let max = cx.attr(0)? != 0;
    let axis = cx.attr_usize(1, 0)?;
    let keep = cx.attr(2)? != 0;
    let last = cx.attr(3)? != 0;
    let d = x.shape.dims();
    if axis >= d.len() || d[axis] == 0 {
        return Err(cx.bad("axis out of range or empty"));
    }
    cx.expect_dtype(y, &[DType::I64])?;
    // A per-tensor quantized input orders its codes as its values (the
    // scale is positive), so the index is the codes' (an int8 segmentation
    // head's ARG_MAX).
    let per_tensor = matches!(x.quant, Quant::PerTensor(_)) && x.dtype != DType::F32;
    if !plain(x) && !per_tensor {
        return Err(cx.bad("per-axis quantized tensors are not supported"));
    }
    let mut out = [0usize; MAX_RANK];
    let mut n = 0;
    for (i, &s) in d.iter().enumerate() {
        if i != axis {
            out[n] = s;
            n += 1;
        } else if keep {
            out[n] = 1;
            n += 1;
        }
    }
    cx.expect_shape(y, &out[..n])?;
    Ok((
        Extra::ArgReduce {
            max,
            last,
            dtype: x.dtype,
            outer: d[..axis].iter().product(),
            axis: d[axis],
            inner: d[axis + 1..].iter().product(),
        },
        "ref_arg_reduce",
    ))
}

fn prep_cast(cx: &Ctx<'_>) -> Result<(Extra, &'static str)> {
    cx.arity(1..=1, 1)?;
    let (x, y) = (cx.input(0)?, cx.output(0)?);
    cx.expect_shape(y, x.shape.dims())?;
    if !plain(x) || !plain(y) {
        return Err(cx.bad("quantized tensors are not supported"));
    }
    Ok((
        Extra::Cast {
            from: x.dtype,
            to: y.dtype,
        },
        "ref_cast",
    ))
}

fn prep_matmul(cx: &Ctx<'_>) -> Result<(Extra, &'static str)> {
    cx.arity(2..=2, 1)?;
    let (a, b, y) = (cx.input(0)?, cx.input(1)?, cx.output(0)?);
    for t in [a, b, y] {
        cx.expect_dtype(t, &[DType::F32])?;
    }
    let (da, db) = (a.shape.dims(), b.shape.dims());
    if da.len() < 2 || db.len() < 2 {
        return Err(cx.bad("operands must have rank >= 2"));
    }
    let (mm, k) = (da[da.len() - 2], da[da.len() - 1]);
    let (k2, n) = (db[db.len() - 2], db[db.len() - 1]);
    if k != k2 {
        return Err(cx.bad("inner dimensions differ"));
    }
    let bs = broadcast_shape(&da[..da.len() - 2], &db[..db.len() - 2])
        .ok_or(cx.bad("batch dimensions do not broadcast"))?;
    let r = bs.rank();
    let mut out = [0usize; MAX_RANK];
    out[..r].copy_from_slice(bs.dims());
    if r + 2 > MAX_RANK {
        return Err(cx.bad("rank too large"));
    }
    out[r] = mm;
    out[r + 1] = n;
    cx.expect_shape(y, &out[..r + 2])?;
    let align = |d: &[usize]| {
        let mut v = [1usize; MAX_RANK];
        let nb = d.len() - 2;
        v[r - nb..r].copy_from_slice(&d[..nb]);
        v
    };
    let mut batch = [1usize; MAX_RANK];
    batch[..r].copy_from_slice(bs.dims());
    Ok((
        Extra::BatchMatmul {
            m: mm,
            k,
            n,
            batch,
            a_batch: align(da),
            b_batch: align(db),
            rank: r,
            rows: cx.table.matmul_f32.map(|e| e.f),
        },
        cx.table
            .matmul_f32
            .map_or("ref_batch_matmul_f32", |e| e.name),
    ))
}

fn prep_gather(cx: &Ctx<'_>) -> Result<(Extra, &'static str)> {
    cx.arity(2..=2, 1)?;
    let (x, idx, y) = (cx.input(0)?, cx.input(1)?, cx.output(0)?);
    cx.expect_dtype(idx, &[DType::I32, DType::I64])?;
    if x.dtype != y.dtype || x.quant != y.quant {
        return Err(cx.bad("input and output must have one dtype and quantization"));
    }
    let axis = cx.attr_usize(0, 0)?;
    let d = x.shape.dims();
    if axis >= d.len() {
        return Err(cx.bad("axis out of range"));
    }
    let mut out = [0usize; MAX_RANK];
    let mut n = 0;
    for &s in d[..axis]
        .iter()
        .chain(idx.shape.dims())
        .chain(&d[axis + 1..])
    {
        if n == MAX_RANK {
            return Err(cx.bad("rank too large"));
        }
        out[n] = s;
        n += 1;
    }
    cx.expect_shape(y, &out[..n])?;
    Ok((
        Extra::Gather {
            elem: x.dtype.size(),
            index_i32: idx.dtype == DType::I32,
            outer: d[..axis].iter().product(),
            axis: d[axis],
            inner: d[axis + 1..].iter().product(),
        },
        "ref_gather",
    ))
}

fn prep_conv_transpose(cx: &Ctx<'_>) -> Result<(Extra, &'static str)> {
    cx.arity(2..=3, 1)?;
    let (x, f, y) = (cx.input(0)?, cx.input(1)?, cx.output(0)?);
    for t in [x, f, y] {
        cx.expect_dtype(t, &[DType::F32])?;
    }
    if !f.is_const() {
        return Err(cx.bad("the filter must be constant"));
    }
    let dims4 = |s: &Shape| -> Result<[usize; 4]> {
        s.dims()
            .try_into()
            .map_err(|_| cx.bad("expected 4-D tensors"))
    };
    let (xs, fs, ys) = (dims4(&x.shape)?, dims4(&f.shape)?, dims4(&y.shape)?);
    let stride = [cx.attr_usize(0, 1)?, cx.attr_usize(1, 1)?];
    let dilation = [cx.attr_usize(2, 1)?, cx.attr_usize(3, 1)?];
    let pad = [cx.attr_usize(4, 0)?, cx.attr_usize(5, 0)?];
    let group = cx.attr_usize(6, 1)?;
    let (ic, oc) = (xs[3], ys[3]);
    if fs[0] != ic || ic % group != 0 || fs[1].checked_mul(group) != Some(oc) || xs[0] != ys[0] {
        return Err(cx.bad("filter must be [in_channels, out_channels / group, kh, kw]"));
    }
    if fs[2] == 0 || fs[3] == 0 || ys[1] == 0 || ys[2] == 0 {
        return Err(cx.bad("empty filter or output"));
    }
    if let Some(b) = cx.opt_input(2) {
        cx.expect_dtype(b, &[DType::F32])?;
        if b.shape.numel() != oc {
            return Err(cx.shape_err(b, &[oc]));
        }
    }
    let g = m::ConvTransposeGeometry {
        stride,
        dilation,
        pad,
        group,
        in_shape: xs,
        out_shape: ys,
        kernel: [fs[2], fs[3]],
    };
    // The GEMM folds a constant bias at prepare time; a computed one runs
    // the reference.
    if let (Some(isa), Ok(bias)) = (cx.table.sgemm, super::families::const_bias::<f32>(cx)) {
        let filter = bytemuck::cast_slice(cx.const_bytes(1)?);
        if let Some(k) = crate::kernels::pack::SDeconv::new(&isa, &g, filter, bias) {
            return Ok((Extra::Deconv(alloc::boxed::Box::new(k)), isa.deconv_name));
        }
    }
    Ok((Extra::ConvTranspose(g), "ref_conv_transpose_f32"))
}

fn prep_pad_mode(cx: &Ctx<'_>) -> Result<(Extra, &'static str)> {
    cx.arity(1..=1, 1)?;
    let (x, y) = (cx.input(0)?, cx.output(0)?);
    if x.dtype != y.dtype || x.quant != y.quant {
        return Err(cx.bad("input and output must have one dtype and quantization"));
    }
    let r = x.shape.rank();
    let mode = match cx.attr(0)? {
        0 => m::PadMode::Reflect,
        1 => m::PadMode::Edge,
        _ => return Err(cx.bad("unknown pad mode")),
    };
    if cx.op.attrs.len() != 1 + 2 * r {
        return Err(cx.bad("paddings must have two entries per dimension"));
    }
    let mut before = [0usize; MAX_RANK];
    let mut out = [0usize; MAX_RANK];
    for d in 0..r {
        let (b, a) = (cx.attr_usize(1 + 2 * d, 0)?, cx.attr_usize(2 + 2 * d, 0)?);
        let n = x.shape.dim(d);
        let padded = b > 0 || a > 0;
        if padded && (n == 0 || (mode == m::PadMode::Reflect && (b >= n || a >= n))) {
            return Err(cx.bad("reflect padding must be smaller than the dimension"));
        }
        before[d] = b;
        out[d] = n
            .checked_add(b)
            .and_then(|v| v.checked_add(a))
            .ok_or(cx.bad("padding too large"))?;
    }
    cx.expect_shape(y, &out[..r])?;
    Ok((
        Extra::PadMode {
            mode,
            elem: x.dtype.size(),
            in_shape: x.shape,
            before,
            out_shape: y.shape,
        },
        "ref_pad_mode",
    ))
}

/// Every tensor `ts` is plain f32; `m` (if given) is a `[1, 4, 4]` matrix.
fn expect_f32_with_matrix(cx: &Ctx<'_>, ts: &[&TensorDef], m: Option<&TensorDef>) -> Result<()> {
    for t in ts.iter().chain(&m) {
        cx.expect_dtype(t, &[DType::F32])?;
        if !plain(t) {
            return Err(cx.bad("supported for float32 tensors only"));
        }
    }
    m.map_or(Ok(()), |m| cx.expect_shape(m, &[1, 4, 4]))
}

/// Attributes: left and right rotation landmarks, output height and width,
/// scale x and y and the target rotation (f32 bits), then the subset's
/// landmark indices. Input `[1, N, 3]`, output `[1, 4, 4]`.
fn prep_landmarks_to_transform(cx: &Ctx<'_>) -> Result<(Extra, &'static str)> {
    cx.arity(1..=1, 1)?;
    let (x, y) = (cx.input(0)?, cx.output(0)?);
    expect_f32_with_matrix(cx, &[x], Some(y))?;
    let n = match x.shape.dims() {
        [1, n, 3] => *n,
        _ => return Err(cx.bad("the landmarks must be [1, N, 3]")),
    };
    let index = |k: usize| match cx.attr_usize(k, 0)? {
        i if i < n => Ok(i),
        _ => Err(cx.bad("a landmark index is past the landmarks")),
    };
    let (left, right) = (index(0)?, index(1)?);
    let output_hw = (cx.attr_usize(2, 1)?, cx.attr_usize(3, 1)?);
    let scale = (cx.attr_f32(4)?, cx.attr_f32(5)?);
    let target_rotation = cx.attr_f32(6)?;
    if !(scale.0 > 0.0 && scale.1 > 0.0 && target_rotation.is_finite()) {
        return Err(cx.bad("scales must be positive and the rotation finite"));
    }
    let subset = (7..cx.op.attrs.len())
        .map(index)
        .collect::<Result<Vec<_>>>()?;
    if subset.is_empty() {
        return Err(cx.bad("no subset landmarks"));
    }
    let p = mp::LandmarksToTransform {
        subset,
        left,
        right,
        target_rotation,
        output_hw,
        scale,
    };
    Ok((
        Extra::LandmarksToTransform(alloc::boxed::Box::new(p)),
        "ref_landmarks_to_transform_matrix",
    ))
}

/// Attributes: output height and width (those of the output tensor). Inputs
/// `[1, H, W, C]` and the matrix, output `[1, h, w, C]`.
fn prep_transform_tensor(cx: &Ctx<'_>) -> Result<(Extra, &'static str)> {
    cx.arity(2..=2, 1)?;
    let (x, m, y) = (cx.input(0)?, cx.input(1)?, cx.output(0)?);
    expect_f32_with_matrix(cx, &[x, y], Some(m))?;
    let (ih, iw, c) = match x.shape.dims() {
        [1, h, w, c] if *h > 0 && *w > 0 => (*h, *w, *c),
        _ => return Err(cx.bad("the input must be one non-empty NHWC image")),
    };
    let output_hw = (cx.attr_usize(0, 1)?, cx.attr_usize(1, 1)?);
    cx.expect_shape(y, &[1, output_hw.0, output_hw.1, c])?;
    Ok((
        Extra::TransformTensorBilinear {
            input_hwc: (ih, iw, c),
            output_hw,
        },
        "ref_transform_tensor_bilinear",
    ))
}

/// No attributes. Inputs `[1, N, D]` (D = 2 or 3) and the matrix; the output
/// has the landmarks' shape.
fn prep_transform_landmarks(cx: &Ctx<'_>) -> Result<(Extra, &'static str)> {
    cx.arity(2..=2, 1)?;
    let (x, m, y) = (cx.input(0)?, cx.input(1)?, cx.output(0)?);
    expect_f32_with_matrix(cx, &[x, y], Some(m))?;
    let dims = match x.shape.dims() {
        [1, _, d @ (2 | 3)] => *d,
        _ => return Err(cx.bad("the landmarks must be [1, N, 2] or [1, N, 3]")),
    };
    cx.expect_shape(y, x.shape.dims())?;
    Ok((
        Extra::TransformLandmarks { dims },
        "ref_transform_landmarks",
    ))
}

/// Attributes: max_detections, max_classes_per_detection,
/// detections_per_class, use_regular_nms, num_classes, then the score and
/// IoU thresholds and the y, x, h, w scales (f32 bits). Inputs: box
/// encodings `[1, N, K ≥ 4]`, class scores `[1, N, C]` (C = num_classes, or
/// one more for a leading background class) and constant anchors `[N, 4]`
/// (y, x, h, w), all float32. Output: `[L]` float32, L from
/// [`DetectionPostprocess::output_len`](crate::kernels::reference::detection::DetectionPostprocess::output_len).
fn prep_detection_postprocess(cx: &Ctx<'_>) -> Result<(Extra, &'static str)> {
    use crate::kernels::reference::detection::DetectionPostprocess;
    cx.arity(3..=3, 1)?;
    let (b, s, a, y) = (cx.input(0)?, cx.input(1)?, cx.input(2)?, cx.output(0)?);
    for t in [b, s, a, y] {
        cx.expect_dtype(t, &[DType::F32])?;
        if !plain(t) {
            return Err(cx.bad("supported for float32 tensors only"));
        }
    }
    let (n, box_stride) = match b.shape.dims() {
        [1, n, k] if *k >= 4 => (*n, *k),
        _ => return Err(cx.bad("the box encodings must be [1, N, 4 or more]")),
    };
    let scores_stride = match s.shape.dims() {
        [1, m, c] if *m == n => *c,
        _ => return Err(cx.bad("the class scores must be [1, N, C] with N as the boxes")),
    };
    cx.expect_shape(a, &[n, 4])?;
    // Candidates carry `anchor * C + class` as a u32.
    if n.checked_mul(scores_stride)
        .is_none_or(|v| v > u32::MAX as usize)
    {
        return Err(cx.bad("too many anchors and classes"));
    }
    let anchors = cx.const_bytes(2)?;
    if n == 0 {
        return Err(cx.bad("there are no anchors"));
    }
    for anchor in anchors.chunks_exact(16) {
        let v = |k: usize| {
            f32::from_le_bytes([
                anchor[4 * k],
                anchor[4 * k + 1],
                anchor[4 * k + 2],
                anchor[4 * k + 3],
            ])
        };
        if !(v(2) >= 0.0 && v(3) >= 0.0) {
            return Err(cx.bad("an anchor has a negative or NaN height or width"));
        }
    }
    let num_classes = cx.attr_usize(4, 1)?;
    if scores_stride != num_classes && scores_stride != num_classes + 1 {
        return Err(
            cx.bad("the class scores hold neither num_classes nor num_classes + 1 values per box")
        );
    }
    let p = DetectionPostprocess {
        num_boxes: n,
        box_stride,
        num_classes,
        scores_stride,
        max_detections: cx.attr_usize(0, 0)?,
        max_classes_per_detection: cx.attr_usize(1, 1)?,
        detections_per_class: cx.attr_usize(2, 0)?,
        regular_nms: cx.attr(3)? != 0,
        score_threshold: cx.attr_f32(5)?,
        iou_threshold: cx.attr_f32(6)?,
        scales: [
            cx.attr_f32(7)?,
            cx.attr_f32(8)?,
            cx.attr_f32(9)?,
            cx.attr_f32(10)?,
        ],
    };
    if p.regular_nms && p.detections_per_class.min(p.max_detections) == 0 {
        return Err(
            cx.bad("regular suppression needs detections_per_class and max_detections above 0")
        );
    }
    if !(p.iou_threshold > 0.0 && p.iou_threshold <= 1.0) {
        return Err(cx.bad("the IoU threshold must be in (0, 1]"));
    }
    if p.score_threshold.is_nan() || p.scales.iter().any(|v| !(v.is_finite() && *v != 0.0)) {
        return Err(cx.bad("the score threshold and the scales must be numbers (scales non-zero)"));
    }
    let len = p.output_len().ok_or(cx.bad("too many detections"))?;
    cx.expect_shape(y, &[len])?;
    Ok((
        Extra::DetectionPostprocess(alloc::boxed::Box::new(p)),
        "ref_detection_postprocess_f32",
    ))
}
