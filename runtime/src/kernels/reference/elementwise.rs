//! Binary element-wise ops with NumPy broadcasting: ADD, SUB, MUL, MAXIMUM,
//! MINIMUM, in f32 and int8.
//!
//! Shapes are right-aligned and a dimension of size 1 stretches to the other
//! operand's size (rank ≤ [`MAX_RANK`]). The op layer validates shapes with
//! [`broadcast_shape`]; kernels take both input shapes and the output shape
//! and only `debug_assert!` them.
//!
//! int8 arithmetic is TFLite's reference kernels (`reference_integer_ops::Add`
//! / `Mul`, `reference_ops::MaximumMinimumBroadcastSlow`) with the
//! multipliers TFLite's `Prepare` computes:
//! - ADD: both inputs are shifted left by 20 bits, rescaled to twice the
//!   larger input scale, summed, and rescaled to the output
//!   (`QuantizeMultiplierSmallerThanOneExp` for all three multipliers).
//! - SUB: the same parameters, and the rescaled inputs are subtracted
//!   instead of added (`reference_ops::Sub` / `BroadcastQuantSubSlow`, as
//!   LiteRT's `sub.cc` runs int8 SUB).
//! - MUL: one multiplier `s1 * s2 / s_out`, computed in f32 as TFLite does.
//! - MAXIMUM / MINIMUM: compare the raw int8 values (TFLite does not
//!   requantize; the converter gives inputs and output the same parameters).

use crate::quant::{
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_smaller_than_one_exp,
    quantize_multiplier, round_half_even_i32, Activation, QParams, Rounding,
};
use crate::types::{Shape, MAX_RANK};

/// The NumPy broadcast of two shapes, or `None` if they are incompatible
/// (a dimension pair that differs with neither side 1) or the result would
/// have more than [`MAX_RANK`] dimensions.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Shape> {
    let rank = a.len().max(b.len());
    if rank > MAX_RANK {
        return None;
    }
    let mut dims = [0usize; MAX_RANK];
    for (i, d) in dims[..rank].iter_mut().enumerate() {
        // Right-aligned: missing leading dimensions count as 1.
        let da = dim_from_right(a, rank - 1 - i);
        let db = dim_from_right(b, rank - 1 - i);
        *d = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Shape::new(&dims[..rank])
}

/// Dimension `k` counted from the right (0 = last), or 1 past the front.
#[inline]
fn dim_from_right(shape: &[usize], k: usize) -> usize {
    if k < shape.len() {
        shape[shape.len() - 1 - k]
    } else {
        1
    }
}

/// Calls `f(out_index, a_index, b_index)` for every element of `out_shape`
/// in row-major order, where `a_index` / `b_index` are the flat indices of
/// the operands' elements that broadcast to it.
///
/// Precondition (checked by the op layer): `broadcast_shape(a_shape,
/// b_shape)` equals `out_shape`, or, for PRELU, `b_shape` broadcasts onto
/// `a_shape == out_shape`. Takes a fast path when both operands have the
/// output's element count (same layout) or one of them is a single element.
#[inline]
pub(crate) fn for_each_broadcast(
    a_shape: &[usize],
    b_shape: &[usize],
    out_shape: &[usize],
    mut f: impl FnMut(usize, usize, usize),
) {
    for_each_broadcast_row(a_shape, b_shape, out_shape, |row| {
        for j in 0..row.len {
            f(row.out + j, row.a + j * row.a_step, row.b + j * row.b_step);
        }
    });
}

/// A run of output elements along the last dimension and where the
/// operands' elements for it are: `a + j * a_step` for element `out + j`
/// (a step of 0 repeats one element), and likewise for `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BroadcastRow {
    pub out: usize,
    pub a: usize,
    pub a_step: usize,
    pub b: usize,
    pub b_step: usize,
    pub len: usize,
}

/// Calls `f` for the runs that cover `out_shape` in row-major order (see
/// [`for_each_broadcast`] for the precondition): one run for same-layout
/// operands or a single-element one, else one per row of the last
/// dimension, so kernels can work on slices (a squeeze-and-excitation
/// scale, `[1, h, w, c] * [1, 1, 1, c]`, is `h * w` runs of `c`).
pub(crate) fn for_each_broadcast_row(
    a_shape: &[usize],
    b_shape: &[usize],
    out_shape: &[usize],
    mut f: impl FnMut(BroadcastRow),
) {
    debug_assert!(out_shape.len() <= MAX_RANK);
    debug_assert!(a_shape.len() <= out_shape.len() && b_shape.len() <= out_shape.len());
    let n: usize = out_shape.iter().product();
    let a_n: usize = a_shape.iter().product();
    let b_n: usize = b_shape.iter().product();
    if n == 0 {
        return;
    }
    // Each operand dimension is either the output's or 1, so an operand with
    // as many elements as the output has the output's layout.
    let whole = |a_step, b_step| BroadcastRow {
        out: 0,
        a: 0,
        a_step,
        b: 0,
        b_step,
        len: n,
    };
    match (a_n == n, b_n == n) {
        (true, true) => return f(whole(1, 1)),
        (false, true) if a_n == 1 => return f(whole(0, 1)),
        (true, false) if b_n == 1 => return f(whole(1, 0)),
        _ => {}
    }

    // General case: strides aligned to the output, 0 where an operand broadcasts.
    let rank = out_shape.len();
    let a_strides = broadcast_strides(a_shape, out_shape);
    let b_strides = broadcast_strides(b_shape, out_shape);
    let inner = out_shape[rank - 1];
    let (a_step, b_step) = (a_strides[rank - 1], b_strides[rank - 1]);
    // `index` is an odometer over every dimension but the last.
    let mut index = [0usize; MAX_RANK];
    let (mut a_base, mut b_base, mut out) = (0usize, 0usize, 0usize);
    loop {
        f(BroadcastRow {
            out,
            a: a_base,
            a_step,
            b: b_base,
            b_step,
            len: inner,
        });
        out += inner;
        // Advance the odometer; done when it wraps around.
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            a_base += a_strides[d];
            b_base += b_strides[d];
            if index[d] < out_shape[d] {
                break;
            }
            a_base -= a_strides[d] * index[d];
            b_base -= b_strides[d] * index[d];
            index[d] = 0;
        }
    }
}

/// Row-major strides of `shape` right-aligned to `out_shape`, with stride 0
/// on dimensions that broadcast (size 1 or missing).
fn broadcast_strides(shape: &[usize], out_shape: &[usize]) -> [usize; MAX_RANK] {
    let rank = out_shape.len();
    let mut strides = [0usize; MAX_RANK];
    let mut stride = 1;
    for k in 0..shape.len() {
        let d = shape[shape.len() - 1 - k];
        if d != 1 {
            strides[rank - 1 - k] = stride;
        }
        stride *= d;
    }
    strides
}

/// Clamps like TFLite's `ActivationFunctionWithMinMax`
/// (`std::min(std::max(x, lo), hi)`), which lets NaN through.
#[inline(always)]
pub(crate) fn clamp_f32(x: f32, lo: f32, hi: f32) -> f32 {
    let x = if x < lo { lo } else { x };
    if hi < x {
        hi
    } else {
        x
    }
}

/// Evaluates `$body` with `$f` bound to `op`'s element function clamped to
/// `act`'s range: one monomorphic copy of `$body` per op, the match outside
/// the loops.
macro_rules! with_binary_fn {
    ($op:expr, $act:expr, |$f:ident| $body:expr) => {{
        let (lo, hi) = $act.range_f32();
        match $op {
            BinaryOp::Add => {
                let $f = |x: f32, y: f32| clamp_f32(x + y, lo, hi);
                $body
            }
            BinaryOp::Sub => {
                let $f = |x: f32, y: f32| clamp_f32(x - y, lo, hi);
                $body
            }
            BinaryOp::Mul => {
                let $f = |x: f32, y: f32| clamp_f32(x * y, lo, hi);
                $body
            }
            BinaryOp::Max => {
                let $f = |x: f32, y: f32| clamp_f32(if x > y { x } else { y }, lo, hi);
                $body
            }
            BinaryOp::Min => {
                let $f = |x: f32, y: f32| clamp_f32(if x < y { x } else { y }, lo, hi);
                $body
            }
        }
    }};
}

/// `out = act(a op b)` over same-length slices, as [`binary_f32`] computes
/// each element; inlined into the architecture modules' wrappers, which
/// compile it for wider vectors (the same IEEE operations, so the same
/// values).
#[inline(always)]
pub fn binary_same_f32(op: BinaryOp, act: Activation, a: &[f32], b: &[f32], out: &mut [f32]) {
    with_binary_fn!(op, act, |f| zip_map(a, b, out, f));
}

#[inline(always)]
fn zip_map(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = f(x, y);
    }
}

/// A binary element-wise operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    /// Element-wise maximum (TFLite `MAXIMUM`).
    Max,
    /// Element-wise minimum (TFLite `MINIMUM`).
    Min,
}

/// `out = act(a op b)` in f32 with broadcasting.
///
/// `act` is the fused activation (TFLite's clamp to `act.range_f32()`, so
/// `Activation::None` still clamps ±inf to ±`f32::MAX` as TFLite does);
/// MAXIMUM and MINIMUM have none in TFLite, pass `Activation::None`.
/// MAXIMUM / MINIMUM follow TFLite's `a > b ? a : b` / `a < b ? a : b`,
/// including its NaN behaviour.
///
/// Preconditions (validated by the op layer): `broadcast_shape(a_shape,
/// b_shape) == out_shape`, and each slice holds its shape's element count.
#[allow(clippy::too_many_arguments)]
pub fn binary_f32(
    op: BinaryOp,
    act: Activation,
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    out: &mut [f32],
    out_shape: &[usize],
) {
    debug_assert_eq!(a.len(), a_shape.iter().product::<usize>());
    debug_assert_eq!(b.len(), b_shape.iter().product::<usize>());
    debug_assert_eq!(out.len(), out_shape.iter().product::<usize>());
    with_binary_fn!(op, act, |f| binary_rows(
        a, a_shape, b, b_shape, out, out_shape, f
    ));
}

/// `out = f(a, b)` with broadcasting, a run of the last dimension at a
/// time over slices (a repeated operand as a scalar), so the loops
/// vectorize; one copy per `f`.
#[inline(always)]
fn binary_rows(
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    out: &mut [f32],
    out_shape: &[usize],
    f: impl Fn(f32, f32) -> f32,
) {
    for_each_broadcast_row(a_shape, b_shape, out_shape, |r| {
        let o = &mut out[r.out..r.out + r.len];
        // A last-dimension stride is 1 or, broadcast, 0.
        match (r.a_step, r.b_step) {
            (1, 1) => {
                let (a, b) = (&a[r.a..r.a + r.len], &b[r.b..r.b + r.len]);
                for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                    *o = f(x, y);
                }
            }
            (1, _) => {
                let y = b[r.b];
                for (o, &x) in o.iter_mut().zip(&a[r.a..r.a + r.len]) {
                    *o = f(x, y);
                }
            }
            (_, 1) => {
                let x = a[r.a];
                for (o, &y) in o.iter_mut().zip(&b[r.b..r.b + r.len]) {
                    *o = f(x, y);
                }
            }
            _ => o.fill(f(a[r.a], b[r.b])),
        }
    });
}

/// Precomputed int8 ADD (and SUB) parameters, as TFLite's `add.cc` /
/// `sub.cc` `Prepare` computes them. Fields are public for optimized kernels,
/// which must reproduce [`AddI8Params::apply`] exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddI8Params {
    /// `-zero_point` of each input.
    pub input1_offset: i32,
    pub input2_offset: i32,
    /// Output zero-point.
    pub output_offset: i32,
    /// Both inputs are multiplied by `2^left_shift` first (20 for int8).
    pub left_shift: i32,
    /// Q31 multipliers and (non-positive) exponents.
    pub input1_multiplier: i32,
    pub input1_shift: i32,
    pub input2_multiplier: i32,
    pub input2_shift: i32,
    pub output_multiplier: i32,
    pub output_shift: i32,
    /// Fused activation clamp.
    pub act_min: i32,
    pub act_max: i32,
    /// SUB: the rescaled second input is subtracted instead of added.
    pub subtract: bool,
}

impl AddI8Params {
    /// Parameters for `out = a + b` (`subtract == false`) or `a - b`.
    ///
    /// `None` where TFLite's `Prepare` rejects the scales: a non-positive
    /// scale, or an output scale so small that the output multiplier
    /// `2·max(s_a, s_b) / (2^20·s_out)` is not below 1 (LiteRT's SUB accepts
    /// that case but then shifts by a negative amount, which is undefined).
    pub fn new(
        a: QParams,
        b: QParams,
        out: QParams,
        act: Activation,
        subtract: bool,
    ) -> Option<Self> {
        let left_shift = 20;
        // TFLite: `2 * std::max(float, float)` stored as double.
        let twice_max_input_scale = (2.0 * a.scale.max(b.scale)) as f64;
        let real_input1 = a.scale as f64 / twice_max_input_scale;
        let real_input2 = b.scale as f64 / twice_max_input_scale;
        // TFLite: `(1 << left_shift) * output_scale` is a float product.
        let real_output = twice_max_input_scale / ((1i32 << left_shift) as f32 * out.scale) as f64;
        let (input1_multiplier, input1_shift) =
            quantize_multiplier_smaller_than_one_exp(real_input1)?;
        let (input2_multiplier, input2_shift) =
            quantize_multiplier_smaller_than_one_exp(real_input2)?;
        let (output_multiplier, output_shift) =
            quantize_multiplier_smaller_than_one_exp(real_output)?;
        let (act_min, act_max) = act.range_i8(out);
        Some(AddI8Params {
            input1_offset: -a.zero_point,
            input2_offset: -b.zero_point,
            output_offset: out.zero_point,
            left_shift,
            input1_multiplier,
            input1_shift,
            input2_multiplier,
            input2_shift,
            output_multiplier,
            output_shift,
            act_min,
            act_max,
            subtract,
        })
    }

    /// Whether 32-bit lanes compute [`AddI8Params::apply`] as written: the
    /// offsets (`-zero_point`, as [`AddI8Params::new`] makes them) keep
    /// `x + offset` within i16, and `(x + offset) << left_shift` stays in
    /// i32. The ARM kernels run hand-built parameters beyond that through
    /// `apply`.
    pub fn fits_i32_lanes(&self) -> bool {
        let offset_ok = |o: i32| (-256..=256).contains(&o);
        offset_ok(self.input1_offset)
            && offset_ok(self.input2_offset)
            && (0..=22).contains(&self.left_shift)
    }

    /// One output element (TFLite's `AddFunc`, or the body of `SubElementwise`).
    #[inline]
    pub fn apply(&self, x: i8, y: i8) -> i8 {
        let shifted1 = (self.input1_offset + x as i32) * (1 << self.left_shift);
        let shifted2 = (self.input2_offset + y as i32) * (1 << self.left_shift);
        let scaled1 = multiply_by_quantized_multiplier_smaller_than_one_exp(
            shifted1,
            self.input1_multiplier,
            self.input1_shift,
        );
        let scaled2 = multiply_by_quantized_multiplier_smaller_than_one_exp(
            shifted2,
            self.input2_multiplier,
            self.input2_shift,
        );
        let sum = if self.subtract {
            scaled1 - scaled2
        } else {
            scaled1 + scaled2
        };
        let raw = multiply_by_quantized_multiplier_smaller_than_one_exp(
            sum,
            self.output_multiplier,
            self.output_shift,
        ) + self.output_offset;
        raw.clamp(self.act_min, self.act_max) as i8
    }
}

/// TFLite's `QuantizeMultiplierSmallerThanOneExp`, `None` where it would abort
/// (multiplier not in `(0, 1)`).
fn quantize_multiplier_smaller_than_one_exp(m: f64) -> Option<(i32, i32)> {
    if !(m > 0.0 && m < 1.0) {
        return None;
    }
    let (multiplier, shift) = quantize_multiplier(m);
    (shift <= 0).then_some((multiplier, shift))
}

/// Precomputed int8 MUL parameters (TFLite's `mul.cc` `Prepare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MulI8Params {
    /// `-zero_point` of each input.
    pub input1_offset: i32,
    pub input2_offset: i32,
    /// Output zero-point.
    pub output_offset: i32,
    /// `s1 * s2 / s_out` as a Q31 multiplier and shift.
    pub output_multiplier: i32,
    pub output_shift: i32,
    /// Fused activation clamp.
    pub act_min: i32,
    pub act_max: i32,
}

impl MulI8Params {
    /// Parameters for `out = a * b`.
    pub fn new(a: QParams, b: QParams, out: QParams, act: Activation) -> Self {
        // TFLite computes `s1 * s2 / s_out` in float, then widens it.
        let real = (a.scale * b.scale / out.scale) as f64;
        let (output_multiplier, output_shift) = quantize_multiplier(real);
        let (act_min, act_max) = act.range_i8(out);
        MulI8Params {
            input1_offset: -a.zero_point,
            input2_offset: -b.zero_point,
            output_offset: out.zero_point,
            output_multiplier,
            output_shift,
            act_min,
            act_max,
        }
    }

    /// One output element (TFLite's `MulElementwise`).
    #[inline]
    pub fn apply(&self, x: i8, y: i8) -> i8 {
        let product = (self.input1_offset + x as i32) * (self.input2_offset + y as i32);
        let raw = self.output_offset
            + multiply_by_quantized_multiplier(product, self.output_multiplier, self.output_shift);
        raw.clamp(self.act_min, self.act_max) as i8
    }
}

/// int8 ADD as ONNX Runtime's QLinearAdd computes it on x86-64 (MLAS's
/// AVX2 kernel), for models with [`Rounding::Float`]: with the scale ratios
/// `ra = s_a / s_out`, `rb = s_b / s_out` and the constant
/// `k = z_out - (ra * z_a + rb * z_b)` (all f32), each output is
/// `round_half_even(fma(a, ra, fma(b, rb, k)))` on the raw input codes,
/// clamped. The fused multiply-adds and the raw codes (uint8 ones for a
/// uint8 model, hence `code_offset`) decide ties, so they are kept exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloatAddI8Params {
    pub ra: f32,
    pub rb: f32,
    pub k: f32,
    /// Added to the stored int8 codes (and taken off the result) to recover
    /// the source model's codes: 128 for uint8 models, else 0.
    pub code_offset: i32,
    /// Fused activation clamp, in stored (int8) codes.
    pub act_min: i32,
    pub act_max: i32,
    /// Each fused multiply-add is exact in f64 for every pair of codes (see
    /// [`fma_exact_in_f64`]), so it can be computed there (fast, vectorized)
    /// instead of by `libm::fmaf` (correct for any parameters, but a
    /// software routine on targets compiled without FMA).
    pub f64_exact: bool,
}

/// The lowest set bit's exponent of a nonzero finite `x` (`x` is a multiple of
/// `2^result`), `None` for zero.
fn lsb_exponent(x: f32) -> Option<i32> {
    let bits = x.to_bits() & 0x7fff_ffff;
    if bits == 0 {
        return None;
    }
    let (mant, exp) = match bits >> 23 {
        0 => (bits, -149),
        e => ((bits & 0x7f_ffff) | 0x80_0000, e as i32 - 150),
    };
    Some(exp + mant.trailing_zeros() as i32)
}

/// Whether `code * r + t` with integer codes `|code| <= 255`, for `r` in
/// `ratios` and `t` the constant or an f32 rounding of such a sum, is exactly
/// representable in f64: all terms are multiples of `2^e_min` and the sums
/// stay below `2^e_max`, with at most 53 bits between them. Then computing
/// in f64 and rounding once to f32 is a fused multiply-add, bit for bit.
fn fma_exact_in_f64(ratios: [f32; 2], k: f32) -> bool {
    if !(ratios.iter().all(|r| r.is_finite()) && k.is_finite()) {
        return false;
    }
    let Some(e_min) = [ratios[0], ratios[1], k]
        .into_iter()
        .filter_map(lsb_exponent)
        .min()
    else {
        return true; // all zero
    };
    let bound = 256.0 * (ratios[0].abs() as f64 + ratios[1].abs() as f64) + k.abs() as f64;
    // Sums (and their f32 roundings) stay below 2^e_max.
    let e_max = libm::ilogb(bound.max(f64::MIN_POSITIVE)) + 2;
    e_max - e_min <= 53
}

impl FloatAddI8Params {
    /// Parameters for `out = act(a + b)` with ONNX Runtime's rounding.
    pub fn new(a: QParams, b: QParams, out: QParams, act: Activation, uint8: bool) -> Self {
        let code_offset = if uint8 { 128 } else { 0 };
        let (ra, rb) = (a.scale / out.scale, b.scale / out.scale);
        let z = |q: QParams| (q.zero_point + code_offset) as f32;
        let k = z(out) - (ra * z(a) + rb * z(b));
        let (act_min, act_max) = act.range_i8_rounded(out, Rounding::Float { uint8 });
        FloatAddI8Params {
            ra,
            rb,
            k,
            code_offset,
            act_min,
            act_max,
            f64_exact: fma_exact_in_f64([ra, rb], k),
        }
    }

    /// One output element.
    #[inline]
    pub fn apply(&self, x: i8, y: i8) -> i8 {
        let a = (x as i32 + self.code_offset) as f32;
        let b = (y as i32 + self.code_offset) as f32;
        let t = if self.f64_exact {
            let t1 = (b as f64 * self.rb as f64 + self.k as f64) as f32;
            (a as f64 * self.ra as f64 + t1 as f64) as f32
        } else {
            libm::fmaf(a, self.ra, libm::fmaf(b, self.rb, self.k))
        };
        let v = round_half_even_i32(t) - self.code_offset;
        v.clamp(self.act_min, self.act_max) as i8
    }
}

/// Precomputed parameters of an int8 binary op, built once per op by
/// [`BinaryI8Params::new`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BinaryI8Params {
    /// ADD, or SUB (`AddI8Params::subtract`).
    Add(AddI8Params),
    /// ADD with ONNX Runtime's rounding.
    FloatAdd(FloatAddI8Params),
    Mul(MulI8Params),
    /// MAXIMUM on raw values, then the activation clamp `(min, max)`.
    Max {
        act_min: i32,
        act_max: i32,
    },
    /// MINIMUM on raw values, then the activation clamp `(min, max)`.
    Min {
        act_min: i32,
        act_max: i32,
    },
}

impl BinaryI8Params {
    /// Parameters for `out = act(a op b)` with the tensors' quantization.
    ///
    /// MAXIMUM / MINIMUM compare raw values and ignore the scales (TFLite
    /// does the same; the op layer should require equal input and output
    /// parameters). `None` where TFLite's `Prepare` rejects the parameters
    /// (see [`AddI8Params::new`]).
    ///
    /// With [`Rounding::Float`], ADD follows ONNX Runtime
    /// ([`FloatAddI8Params`]); the other ops keep TFLite's arithmetic.
    pub fn new(
        op: BinaryOp,
        a: QParams,
        b: QParams,
        out: QParams,
        act: Activation,
        rounding: Rounding,
    ) -> Option<Self> {
        Some(match op {
            BinaryOp::Add => match rounding {
                Rounding::Float { uint8 } => {
                    BinaryI8Params::FloatAdd(FloatAddI8Params::new(a, b, out, act, uint8))
                }
                Rounding::FixedPoint => {
                    BinaryI8Params::Add(AddI8Params::new(a, b, out, act, false)?)
                }
            },
            BinaryOp::Sub => BinaryI8Params::Add(AddI8Params::new(a, b, out, act, true)?),
            BinaryOp::Mul => BinaryI8Params::Mul(MulI8Params::new(a, b, out, act)),
            BinaryOp::Max | BinaryOp::Min => {
                let (act_min, act_max) = act.range_i8(out);
                if op == BinaryOp::Max {
                    BinaryI8Params::Max { act_min, act_max }
                } else {
                    BinaryI8Params::Min { act_min, act_max }
                }
            }
        })
    }
}

/// `out = act(a op b)` in int8 with broadcasting, bit-exact with TFLite's
/// reference kernels.
///
/// Preconditions (validated by the op layer): `broadcast_shape(a_shape,
/// b_shape) == out_shape`, and each slice holds its shape's element count.
pub fn binary_i8(
    p: &BinaryI8Params,
    a: &[i8],
    a_shape: &[usize],
    b: &[i8],
    b_shape: &[usize],
    out: &mut [i8],
    out_shape: &[usize],
) {
    debug_assert_eq!(a.len(), a_shape.iter().product::<usize>());
    debug_assert_eq!(b.len(), b_shape.iter().product::<usize>());
    debug_assert_eq!(out.len(), out_shape.iter().product::<usize>());
    match p {
        BinaryI8Params::Add(p) => for_each_broadcast(a_shape, b_shape, out_shape, |o, i, j| {
            out[o] = p.apply(a[i], b[j])
        }),
        BinaryI8Params::FloatAdd(p) if a.len() == out.len() && b.len() == out.len() => {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = p.apply(x, y);
            }
        }
        BinaryI8Params::FloatAdd(p) => {
            for_each_broadcast(a_shape, b_shape, out_shape, |o, i, j| {
                out[o] = p.apply(a[i], b[j])
            })
        }
        BinaryI8Params::Mul(p) => for_each_broadcast(a_shape, b_shape, out_shape, |o, i, j| {
            out[o] = p.apply(a[i], b[j])
        }),
        &BinaryI8Params::Max { act_min, act_max } => {
            for_each_broadcast(a_shape, b_shape, out_shape, |o, i, j| {
                out[o] = (a[i].max(b[j]) as i32).clamp(act_min, act_max) as i8
            })
        }
        &BinaryI8Params::Min { act_min, act_max } => {
            for_each_broadcast(a_shape, b_shape, out_shape, |o, i, j| {
                out[o] = (a[i].min(b[j]) as i32).clamp(act_min, act_max) as i8
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{dequantize_i8, quantize_i8};
    use alloc::vec;
    use alloc::vec::Vec;

    /// A small deterministic generator (xorshift) for property tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn i8(&mut self) -> i8 {
            self.next() as i8
        }
        fn f32(&mut self, lo: f32, hi: f32) -> f32 {
            lo + (hi - lo) * ((self.next() >> 40) as f32 / (1u64 << 24) as f32)
        }
    }

    /// Naive broadcast reference: computes each output element's operand
    /// indices from its coordinates.
    fn naive_indices(
        a_shape: &[usize],
        b_shape: &[usize],
        out_shape: &[usize],
    ) -> Vec<(usize, usize)> {
        let n: usize = out_shape.iter().product();
        let rank = out_shape.len();
        let flat = |shape: &[usize], coord: &[usize]| {
            let off = rank - shape.len();
            shape.iter().enumerate().fold(0, |acc, (k, &d)| {
                acc * d + if d == 1 { 0 } else { coord[off + k] }
            })
        };
        (0..n)
            .map(|mut o| {
                let mut coord = vec![0; rank];
                for k in (0..rank).rev() {
                    coord[k] = o % out_shape[k];
                    o /= out_shape[k];
                }
                (flat(a_shape, &coord), flat(b_shape, &coord))
            })
            .collect()
    }

    #[test]
    fn float_add_f64_path_is_a_true_fma() {
        let mut rng = Rng(0x5151_aaaa_0303_7777);
        let mut checked = 0;
        for _ in 0..200 {
            let scale = |rng: &mut Rng| 0.001 + (rng.next() % 10_000) as f32 * 1e-5;
            let zp = |rng: &mut Rng| rng.i8() as i32;
            let q = |s, z| QParams {
                scale: s,
                zero_point: z,
            };
            let (qa, qb, qo) = (
                q(scale(&mut rng), zp(&mut rng)),
                q(scale(&mut rng), zp(&mut rng)),
                q(scale(&mut rng), zp(&mut rng)),
            );
            let mut p = FloatAddI8Params::new(qa, qb, qo, Activation::None, rng.next() % 4 < 2);
            if !p.f64_exact {
                continue;
            }
            checked += 1;
            for a in -128..=127i8 {
                let b = rng.i8();
                let fast = p.apply(a, b);
                p.f64_exact = false;
                assert_eq!(fast, p.apply(a, b), "{p:?} {a} {b}");
                p.f64_exact = true;
            }
        }
        assert!(
            checked > 150,
            "only {checked} parameter sets take the f64 path"
        );
        // Ratios 2^40 apart can't be summed exactly in f64: the fmaf path.
        let tiny = QParams {
            scale: 1e-12,
            zero_point: 3,
        };
        let one = QParams {
            scale: 1.0,
            zero_point: 1,
        };
        assert!(!FloatAddI8Params::new(one, tiny, one, Activation::None, false).f64_exact);
    }

    #[test]
    fn float_add_follows_onnx_runtime() {
        let q = |scale, zero_point| QParams { scale, zero_point };
        // uint8 codes 200 and 100 (stored as 72 and -28), zero-points 128
        // (stored 0); ratios 0.5 and 0.25: 0.5*200 + 0.25*100 + (128 - 0.75*128) = 157.
        let p = FloatAddI8Params::new(q(0.1, 0), q(0.05, 0), q(0.2, 0), Activation::None, true);
        assert_eq!(p.apply(72, -28), 29);
        // The sum computed on uint8 codes: a tie at x.5 goes to the even code.
        // a = 1 -> 0.5 * 1 + k with k = 128 - 0.5 * 128 - 0 = 64: 64.5 -> 64.
        let p = FloatAddI8Params::new(q(0.1, 0), q(0.05, -128), q(0.2, 0), Activation::None, true);
        assert_eq!(p.apply(-127, -128), -64);
        assert_eq!(p.apply(-125, -128), -62); // 65.5 -> 66
                                              // Saturates to the int8 range, and the activation clamps.
        let p = FloatAddI8Params::new(q(1.0, 0), q(1.0, 0), q(0.01, 0), Activation::Relu, false);
        assert_eq!(p.apply(100, 100), 127);
        assert_eq!(p.apply(-100, -100), 0);
        // Through BinaryI8Params: ADD picks it with Rounding::Float, SUB keeps TFLite's.
        let r = Rounding::Float { uint8: false };
        let a = q(0.1, 0);
        assert!(matches!(
            BinaryI8Params::new(BinaryOp::Add, a, a, a, Activation::None, r),
            Some(BinaryI8Params::FloatAdd(_))
        ));
        assert!(matches!(
            BinaryI8Params::new(BinaryOp::Sub, a, a, a, Activation::None, r),
            Some(BinaryI8Params::Add(_))
        ));
    }

    #[test]
    fn broadcast_shapes() {
        let s = |a: &[usize], b: &[usize]| broadcast_shape(a, b).map(|s| s.dims().to_vec());
        assert_eq!(s(&[2, 3], &[2, 3]), Some(vec![2, 3]));
        assert_eq!(s(&[4, 1, 3], &[5, 1]), Some(vec![4, 5, 3]));
        assert_eq!(s(&[3], &[2, 1, 1]), Some(vec![2, 1, 3]));
        assert_eq!(s(&[], &[2, 2]), Some(vec![2, 2]));
        assert_eq!(s(&[], &[]), Some(vec![]));
        assert_eq!(s(&[0, 3], &[1, 3]), Some(vec![0, 3]));
        assert_eq!(s(&[2, 3], &[3, 2]), None);
        assert_eq!(s(&[0], &[2]), None);
        assert_eq!(s(&[1; 9], &[1]), None);
        assert_eq!(s(&[1; 8], &[2]), Some(vec![1, 1, 1, 1, 1, 1, 1, 2]));
    }

    #[test]
    fn broadcast_iteration_matches_naive() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[2, 3], &[2, 3]),
            (&[2, 3], &[]),
            (&[1], &[4, 5]),
            (&[4, 1, 3], &[5, 1]),
            (&[3], &[2, 1, 1]),
            (&[2, 1, 4, 1], &[1, 3, 1, 5]),
            (&[1, 1, 1, 2, 1, 3, 1, 2], &[2, 1, 2, 1, 1, 3, 2, 1]),
            (&[1, 3], &[2, 1]),
            (&[0, 3], &[1, 3]),
        ];
        for &(a, b) in cases {
            let out = broadcast_shape(a, b).unwrap();
            let mut got = Vec::new();
            let mut next_out = 0;
            for_each_broadcast(a, b, out.dims(), |o, i, j| {
                assert_eq!(o, next_out);
                next_out += 1;
                got.push((i, j));
            });
            assert_eq!(got, naive_indices(a, b, out.dims()), "{a:?} x {b:?}");
        }
    }

    #[test]
    fn f32_ops_with_broadcast_and_activation() {
        let a = [1.0f32, -2.0, 3.0, -4.0, 5.0, -6.0];
        let b = [10.0f32, -10.0, 0.5];
        let mut out = [0f32; 6];
        binary_f32(
            BinaryOp::Add,
            Activation::None,
            &a,
            &[2, 3],
            &b,
            &[3],
            &mut out,
            &[2, 3],
        );
        assert_eq!(out, [11.0, -12.0, 3.5, 6.0, -5.0, -5.5]);
        binary_f32(
            BinaryOp::Sub,
            Activation::Relu,
            &a,
            &[2, 3],
            &b,
            &[3],
            &mut out,
            &[2, 3],
        );
        assert_eq!(out, [0.0, 8.0, 2.5, 0.0, 15.0, 0.0]);
        binary_f32(
            BinaryOp::Mul,
            Activation::Relu6,
            &a,
            &[2, 3],
            &b,
            &[3],
            &mut out,
            &[2, 3],
        );
        assert_eq!(out, [6.0, 6.0, 1.5, 0.0, 0.0, 0.0]);
        binary_f32(
            BinaryOp::Max,
            Activation::None,
            &a,
            &[2, 3],
            &b[..1],
            &[1],
            &mut out,
            &[2, 3],
        );
        assert_eq!(out, [10.0; 6]);
        let col = [0.0f32, 100.0];
        binary_f32(
            BinaryOp::Min,
            Activation::ReluN1To1,
            &a,
            &[2, 3],
            &col,
            &[2, 1],
            &mut out,
            &[2, 3],
        );
        assert_eq!(out, [0.0, -1.0, 0.0, -1.0, 1.0, -1.0]);
        // TFLite's clamp maps inf to f32::MAX even without an activation.
        binary_f32(
            BinaryOp::Add,
            Activation::None,
            &[f32::INFINITY],
            &[1],
            &[1.0],
            &[1],
            &mut out[..1],
            &[1],
        );
        assert_eq!(out[0], f32::MAX);
    }

    #[test]
    fn add_i8_hand_computed() {
        // Same scales everywhere: int8 add is exact integer addition.
        let q = QParams {
            scale: 0.5,
            zero_point: 0,
        };
        let p = BinaryI8Params::new(
            BinaryOp::Add,
            q,
            q,
            q,
            Activation::None,
            Rounding::FixedPoint,
        )
        .unwrap();
        let mut out = [0i8; 4];
        binary_i8(
            &p,
            &[1, -3, 100, -100],
            &[4],
            &[2, 2, 100, -100],
            &[4],
            &mut out,
            &[4],
        );
        assert_eq!(out, [3, -1, 127, -128]);
        // Zero-points shift: 0.5*(10-10) + 0.5*(7-(-1)) = 4.0 -> 4/0.25 + 3 = 19.
        let a = QParams {
            scale: 0.5,
            zero_point: 10,
        };
        let b = QParams {
            scale: 0.5,
            zero_point: -1,
        };
        let o = QParams {
            scale: 0.25,
            zero_point: 3,
        };
        let p = BinaryI8Params::new(
            BinaryOp::Add,
            a,
            b,
            o,
            Activation::None,
            Rounding::FixedPoint,
        )
        .unwrap();
        binary_i8(&p, &[10], &[1], &[7], &[1], &mut out[..1], &[1]);
        assert_eq!(out[0], 19);
        // SUB: 0.5*(20-10) - 0.5*(3+1) = 3.0 -> 12 + 3 = 15.
        let p = BinaryI8Params::new(
            BinaryOp::Sub,
            a,
            b,
            o,
            Activation::None,
            Rounding::FixedPoint,
        )
        .unwrap();
        binary_i8(&p, &[20], &[1], &[3], &[1], &mut out[..1], &[1]);
        assert_eq!(out[0], 15);
    }

    #[test]
    fn add_params_match_tflite_prepare() {
        // s1 = s2: both input multipliers are 0.5 = 2^30 * 2^(0-31).
        let q = QParams {
            scale: 0.1,
            zero_point: 0,
        };
        let AddI8Params {
            input1_multiplier,
            input1_shift,
            input2_multiplier,
            ..
        } = AddI8Params::new(q, q, q, Activation::None, true).unwrap();
        assert_eq!((input1_multiplier, input1_shift), (1 << 30, 0));
        assert_eq!(input2_multiplier, 1 << 30);
        // An output scale too small for the 2^20 headroom is rejected like TFLite.
        let tiny = QParams {
            scale: 1e-9,
            zero_point: 0,
        };
        assert!(AddI8Params::new(q, q, tiny, Activation::None, false).is_none());
    }

    #[test]
    fn mul_i8_hand_computed() {
        // 0.5*(4-2) * 0.25*(8-0) = 2.0 -> 2.0/0.125 - 5 = 11.
        let a = QParams {
            scale: 0.5,
            zero_point: 2,
        };
        let b = QParams {
            scale: 0.25,
            zero_point: 0,
        };
        let o = QParams {
            scale: 0.125,
            zero_point: -5,
        };
        let p = BinaryI8Params::new(
            BinaryOp::Mul,
            a,
            b,
            o,
            Activation::None,
            Rounding::FixedPoint,
        )
        .unwrap();
        let mut out = [0i8; 2];
        binary_i8(&p, &[4, 127], &[2], &[8], &[], &mut out, &[2]);
        assert_eq!(out[0], 11);
        // Saturates: 62.5 * 2.0 / 0.125 = 1000.
        assert_eq!(out[1], 127);
        // With Relu the negative side clamps at the zero-point.
        let p = BinaryI8Params::new(
            BinaryOp::Mul,
            a,
            b,
            o,
            Activation::Relu,
            Rounding::FixedPoint,
        )
        .unwrap();
        binary_i8(&p, &[-100, 4], &[2], &[8], &[1], &mut out, &[2]);
        assert_eq!(out, [-5, 11]);
    }

    #[test]
    fn max_min_i8_compare_raw_values() {
        let q = QParams {
            scale: 0.1,
            zero_point: -3,
        };
        let p = BinaryI8Params::new(
            BinaryOp::Max,
            q,
            q,
            q,
            Activation::None,
            Rounding::FixedPoint,
        )
        .unwrap();
        let mut out = [0i8; 6];
        binary_i8(
            &p,
            &[-128, 0, 127],
            &[1, 3],
            &[5, -5],
            &[2, 1],
            &mut out,
            &[2, 3],
        );
        assert_eq!(out, [5, 5, 127, -5, 0, 127]);
        let p = BinaryI8Params::new(
            BinaryOp::Min,
            q,
            q,
            q,
            Activation::None,
            Rounding::FixedPoint,
        )
        .unwrap();
        binary_i8(
            &p,
            &[-128, 0, 127],
            &[1, 3],
            &[5, -5],
            &[2, 1],
            &mut out,
            &[2, 3],
        );
        assert_eq!(out, [-128, 0, 5, -128, -5, -5]);
    }

    /// int8 results, dequantized, stay within `tol_steps` output steps of
    /// the f32 op on the dequantized inputs (broadcast shapes, extreme
    /// zero-points, all activations).
    #[test]
    fn i8_agrees_with_f32_on_random_data() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let shapes: &[(&[usize], &[usize])] = &[
            (&[2, 3, 4], &[2, 3, 4]),
            (&[2, 3, 4], &[4]),
            (&[1], &[3, 5]),
            (&[3, 1, 2], &[4, 1]),
        ];
        let qparams = |rng: &mut Rng| QParams {
            scale: rng.f32(0.005, 0.2),
            zero_point: [-128, 127, 0, -20, 64][(rng.next() % 5) as usize],
        };
        let ops = [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Max,
            BinaryOp::Min,
        ];
        let acts = [
            Activation::None,
            Activation::Relu,
            Activation::Relu6,
            Activation::ReluN1To1,
        ];
        for trial in 0..200 {
            let op = ops[trial % ops.len()];
            let act = acts[(trial / ops.len()) % acts.len()];
            let (a_shape, b_shape) = shapes[trial % shapes.len()];
            let out_shape = broadcast_shape(a_shape, b_shape).unwrap();
            let qa = qparams(&mut rng);
            let (qb, qo) = if matches!(op, BinaryOp::Max | BinaryOp::Min) {
                (qa, qa)
            } else {
                (qparams(&mut rng), qparams(&mut rng))
            };
            let a: Vec<i8> = (0..a_shape.iter().product()).map(|_| rng.i8()).collect();
            let b: Vec<i8> = (0..b_shape.iter().product()).map(|_| rng.i8()).collect();
            let af: Vec<f32> = a.iter().map(|&v| dequantize_i8(v, qa)).collect();
            let bf: Vec<f32> = b.iter().map(|&v| dequantize_i8(v, qb)).collect();
            let n = out_shape.numel();
            let (mut got, mut want) = (vec![0i8; n], vec![0f32; n]);
            let p = BinaryI8Params::new(op, qa, qb, qo, act, Rounding::FixedPoint).unwrap();
            binary_i8(&p, &a, a_shape, &b, b_shape, &mut got, out_shape.dims());
            binary_f32(
                op,
                act,
                &af,
                a_shape,
                &bf,
                b_shape,
                &mut want,
                out_shape.dims(),
            );
            for (g, w) in got.iter().zip(&want) {
                let expected = quantize_i8(*w, qo) as i32;
                let diff = (*g as i32 - expected).abs();
                assert!(
                    diff <= 1,
                    "{op:?} {act:?} trial {trial}: got {g}, want {expected} ({w})"
                );
            }
        }
    }
}
