//! Activations: RELU, RELU6, RELU_N1_TO_1, LEAKY_RELU, PRELU, HARD_SWISH,
//! LOGISTIC, TANH and SOFTMAX, in f32 and int8.
//!
//! The int8 kernels follow the path TFLite takes with its reference kernels
//! (`BuiltinRefOpResolver`, `activations.cc` with `kReference`):
//! - RELU family: requantize with `input_scale / output_scale`, then clamp to
//!   the activation's quantized range (`QuantizedReluX`).
//! - LEAKY_RELU: two multipliers, `input_scale / output_scale` for `x >= 0`
//!   and `input_scale * alpha / output_scale` below (`QuantizeLeakyRelu`).
//! - PRELU: two multipliers, the second one for `x * alpha` (`Prelu` /
//!   `BroadcastPrelu4DSlow`).
//! - HARD_SWISH: the 16-bit fixed-point `reference_ops::HardSwish`.
//! - LOGISTIC, TANH: a 256-entry lookup table filled once from the float
//!   function (TFLite's `PopulateLookupTable`), as TFLite does even for the
//!   reference kernel type.
//! - SOFTMAX: gemmlowp fixed-point `reference_ops::Softmax` (Q5.26 exponent
//!   input, Q12.19 accumulator), scaled by `PreprocessSoftmaxScaling`.
//!
//! Multipliers TFLite computes in f32 (`double m = float_a / float_b`) are
//! computed in f32 here too, then widened, so that they round identically.

use super::elementwise::{clamp_f32, for_each_broadcast};
use super::fixedpoint::{
    exp_on_negative_values, get_reciprocal, rescale, rounding_divide_by_pot_i16,
    saturating_doubling_high_mul_i16, saturating_left_shift_i16,
    saturating_rounding_doubling_high_mul_i16,
};
use crate::quant::{
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_greater_than_one,
    quantize_multiplier, round_f32, rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
    Activation, QParams,
};

// ---------------------------------------------------------------------------
// RELU, RELU6, RELU_N1_TO_1

/// Applies a ReLU-family clamp in f32: `Activation::Relu` is `max(x, 0)`,
/// `Relu6` is `min(max(x, 0), 6)`, `ReluN1To1` is `min(max(x, -1), 1)`;
/// `None` copies. `input` and `output` have the same length.
pub fn relu_f32(kind: Activation, input: &[f32], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    let (lo, hi) = kind.range_f32();
    for (o, &x) in output.iter_mut().zip(input) {
        *o = clamp_f32(x, lo, hi);
    }
}

/// Precomputed int8 RELU / RELU6 / RELU_N1_TO_1 parameters (TFLite's
/// `ReluPrepare` + `QuantizedReluX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReluI8Params {
    /// Input zero-point (subtracted).
    pub input_zero_point: i32,
    /// Output zero-point (added).
    pub output_zero_point: i32,
    /// `input_scale / output_scale` as a Q31 multiplier and shift.
    pub output_multiplier: i32,
    pub output_shift: i32,
    /// Quantized clamp of the activation on the output scale.
    pub act_min: i32,
    pub act_max: i32,
}

impl ReluI8Params {
    /// Parameters for `kind` (`Relu`, `Relu6`, `ReluN1To1`; `None` only
    /// requantizes) from the input's and output's quantization.
    pub fn new(kind: Activation, input: QParams, output: QParams) -> Self {
        // TFLite: `double real_multiplier = input_scale / output_scale;` (f32 division).
        let (output_multiplier, output_shift) =
            quantize_multiplier((input.scale / output.scale) as f64);
        let (act_min, act_max) = kind.range_i8(output);
        ReluI8Params {
            input_zero_point: input.zero_point,
            output_zero_point: output.zero_point,
            output_multiplier,
            output_shift,
            act_min,
            act_max,
        }
    }

    /// One output element (TFLite's `ReluX`).
    #[inline]
    pub fn apply(&self, x: i8) -> i8 {
        let v = self.output_zero_point
            + multiply_by_quantized_multiplier(
                x as i32 - self.input_zero_point,
                self.output_multiplier,
                self.output_shift,
            );
        v.clamp(self.act_min, self.act_max) as i8
    }
}

/// int8 RELU family, bit-exact with TFLite. `input` and `output` have the same length.
pub fn relu_i8(p: &ReluI8Params, input: &[i8], output: &mut [i8]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = p.apply(x);
    }
}

// ---------------------------------------------------------------------------
// LEAKY_RELU

/// `x > 0 ? x : alpha * x` in f32 (TFLite's `LeakyRelu`).
pub fn leaky_relu_f32(alpha: f32, input: &[f32], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = if x > 0.0 { x } else { x * alpha };
    }
}

/// Precomputed int8 LEAKY_RELU parameters (TFLite's `LeakyReluPrepare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeakyReluI8Params {
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    /// `input_scale * alpha / output_scale` (may be negative).
    pub output_multiplier_alpha: i32,
    pub output_shift_alpha: i32,
    /// `input_scale / output_scale`.
    pub output_multiplier_identity: i32,
    pub output_shift_identity: i32,
}

impl LeakyReluI8Params {
    /// Parameters for slope `alpha` below zero.
    pub fn new(input: QParams, output: QParams, alpha: f32) -> Self {
        // Both products are f32 expressions in TFLite.
        let (output_multiplier_alpha, output_shift_alpha) =
            quantize_multiplier((input.scale * alpha / output.scale) as f64);
        let (output_multiplier_identity, output_shift_identity) =
            quantize_multiplier((input.scale / output.scale) as f64);
        LeakyReluI8Params {
            input_zero_point: input.zero_point,
            output_zero_point: output.zero_point,
            output_multiplier_alpha,
            output_shift_alpha,
            output_multiplier_identity,
            output_shift_identity,
        }
    }

    /// One output element (TFLite's `QuantizeLeakyRelu`).
    #[inline]
    pub fn apply(&self, x: i8) -> i8 {
        let v = x as i32 - self.input_zero_point;
        let scaled = if v >= 0 {
            multiply_by_quantized_multiplier(
                v,
                self.output_multiplier_identity,
                self.output_shift_identity,
            )
        } else {
            multiply_by_quantized_multiplier(
                v,
                self.output_multiplier_alpha,
                self.output_shift_alpha,
            )
        };
        (self.output_zero_point + scaled).clamp(-128, 127) as i8
    }
}

/// int8 LEAKY_RELU, bit-exact with TFLite. `input` and `output` have the same length.
pub fn leaky_relu_i8(p: &LeakyReluI8Params, input: &[i8], output: &mut [i8]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = p.apply(x);
    }
}

// ---------------------------------------------------------------------------
// PRELU

/// `x >= 0 ? x : x * alpha` in f32, with `alpha` broadcast onto the input.
///
/// Precondition (validated by the op layer): `alpha_shape` broadcasts onto
/// `input_shape` (the broadcast shape equals `input_shape`); `output` has
/// the input's length.
pub fn prelu_f32(
    input: &[f32],
    input_shape: &[usize],
    alpha: &[f32],
    alpha_shape: &[usize],
    output: &mut [f32],
) {
    debug_assert_eq!(input.len(), output.len());
    for_each_broadcast(input_shape, alpha_shape, input_shape, |o, i, j| {
        let x = input[i];
        output[o] = if x >= 0.0 { x } else { x * alpha[j] };
    });
}

/// Precomputed int8 PRELU parameters (TFLite's `PreluPrepare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreluI8Params {
    /// `-zero_point` of the input and of alpha.
    pub input_offset: i32,
    pub alpha_offset: i32,
    pub output_offset: i32,
    /// `input_scale / output_scale`, used for `x >= 0`.
    pub output_multiplier_1: i32,
    pub output_shift_1: i32,
    /// `input_scale * alpha_scale / output_scale`, used for `x * alpha`.
    pub output_multiplier_2: i32,
    pub output_shift_2: i32,
}

impl PreluI8Params {
    /// Parameters from the input's, alpha's and output's quantization.
    pub fn new(input: QParams, alpha: QParams, output: QParams) -> Self {
        let (output_multiplier_1, output_shift_1) =
            quantize_multiplier((input.scale / output.scale) as f64);
        let (output_multiplier_2, output_shift_2) =
            quantize_multiplier((input.scale * alpha.scale / output.scale) as f64);
        PreluI8Params {
            input_offset: -input.zero_point,
            alpha_offset: -alpha.zero_point,
            output_offset: output.zero_point,
            output_multiplier_1,
            output_shift_1,
            output_multiplier_2,
            output_shift_2,
        }
    }

    /// One output element from an input and its alpha.
    #[inline]
    pub fn apply(&self, x: i8, alpha: i8) -> i8 {
        let v = self.input_offset + x as i32;
        let scaled = if v >= 0 {
            multiply_by_quantized_multiplier(v, self.output_multiplier_1, self.output_shift_1)
        } else {
            let a = self.alpha_offset + alpha as i32;
            multiply_by_quantized_multiplier(v * a, self.output_multiplier_2, self.output_shift_2)
        };
        (scaled + self.output_offset).clamp(-128, 127) as i8
    }
}

/// int8 PRELU, bit-exact with TFLite, with `alpha` broadcast onto the input
/// (same preconditions as [`prelu_f32`]).
pub fn prelu_i8(
    p: &PreluI8Params,
    input: &[i8],
    input_shape: &[usize],
    alpha: &[i8],
    alpha_shape: &[usize],
    output: &mut [i8],
) {
    debug_assert_eq!(input.len(), output.len());
    for_each_broadcast(input_shape, alpha_shape, input_shape, |o, i, j| {
        output[o] = p.apply(input[i], alpha[j]);
    });
}

// ---------------------------------------------------------------------------
// HARD_SWISH

/// `x * relu6(x + 3) / 6` in f32 (TFLite's reference `HardSwish`).
pub fn hard_swish_f32(input: &[f32], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        let relu6 = (x + 3.0).clamp(0.0, 6.0);
        *o = x * relu6 / 6.0;
    }
}

/// Precomputed int8 HARD_SWISH parameters (TFLite's `HardSwishParams` as
/// `HardSwishPrepare` fills them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HardSwishI8Params {
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    /// `(input_scale / 128) / (3 / 32768)` as a Q15 multiplier and exponent.
    pub reluish_multiplier_fixedpoint_int16: i16,
    pub reluish_multiplier_exponent: i32,
    /// `(input_scale / 128) / output_scale` as a Q15 multiplier and a
    /// non-positive exponent.
    pub output_multiplier_fixedpoint_int16: i16,
    pub output_multiplier_exponent: i32,
}

impl HardSwishI8Params {
    /// Parameters from the input's and output's quantization. `None` where
    /// TFLite's `Prepare` rejects them (the output multiplier is not below 1,
    /// i.e. `output_scale <= input_scale / 128`), or where the relu-ish
    /// shift would exceed 31 bits (an input scale above ~2^24).
    pub fn new(input: QParams, output: QParams) -> Option<Self> {
        // All of this is f32 arithmetic in TFLite.
        let hires_input_scale = (1.0f32 / 128.0) * input.scale;
        let reluish_scale = 3.0f32 / 32768.0;
        let output_multiplier = hires_input_scale / output.scale;
        let reluish_multiplier = hires_input_scale / reluish_scale;
        let (output_q31, output_multiplier_exponent) =
            quantize_multiplier(output_multiplier as f64);
        let (reluish_q31, reluish_multiplier_exponent) =
            quantize_multiplier(reluish_multiplier as f64);
        if output_multiplier_exponent > 0 || reluish_multiplier_exponent > 31 {
            return None;
        }
        Some(HardSwishI8Params {
            input_zero_point: input.zero_point,
            output_zero_point: output.zero_point,
            reluish_multiplier_fixedpoint_int16: down_scale_int32_to_int16_multiplier(reluish_q31),
            reluish_multiplier_exponent,
            output_multiplier_fixedpoint_int16: down_scale_int32_to_int16_multiplier(output_q31),
            output_multiplier_exponent,
        })
    }

    /// One output element (TFLite's quantized `reference_ops::HardSwish`).
    pub fn apply(&self, x: i8) -> i8 {
        // C++ narrows these `int` results to int16_t; the values fit for int8 inputs.
        let input_value = (x as i32 - self.input_zero_point) as i16;
        let input_value_on_hires_input_scale = (input_value as i32 * (1 << 7)) as i16;
        let input_value_on_preshift_output_scale = saturating_rounding_doubling_high_mul_i16(
            input_value_on_hires_input_scale,
            self.output_multiplier_fixedpoint_int16,
        );
        // The relu-ish multiplier maps [-3, 3] to [-1, 1] in Q15, saturating.
        let mut reluish_value = input_value_on_hires_input_scale;
        if self.reluish_multiplier_exponent > 0 {
            reluish_value =
                saturating_left_shift_i16(reluish_value, self.reluish_multiplier_exponent - 1);
        }
        reluish_value = saturating_rounding_doubling_high_mul_i16(
            reluish_value,
            self.reluish_multiplier_fixedpoint_int16,
        );
        if self.reluish_multiplier_exponent > 0 {
            reluish_value = saturating_left_shift_i16(reluish_value, 1);
        }
        if self.reluish_multiplier_exponent < 0 {
            reluish_value =
                rounding_divide_by_pot_i16(reluish_value, -self.reluish_multiplier_exponent);
        }
        // [-1, 1] -> [0, 1].
        let reluish_value = ((reluish_value as i32 + (1 << 15)) >> 1) as i16;
        let preshift_output_value =
            saturating_doubling_high_mul_i16(reluish_value, input_value_on_preshift_output_scale);
        let output_value =
            rounding_divide_by_pot_i16(preshift_output_value, -self.output_multiplier_exponent);
        // `int16_t += int` wraps in C++ the same way.
        let output_value = (output_value as i32 + self.output_zero_point) as i16;
        output_value.clamp(-128, 127) as i8
    }
}

/// TFLite's `DownScaleInt32ToInt16Multiplier`: a Q31 multiplier rounded to Q15.
fn down_scale_int32_to_int16_multiplier(multiplier: i32) -> i16 {
    const ROUNDING_OFFSET: i32 = 1 << 15;
    if multiplier >= i32::MAX - ROUNDING_OFFSET {
        return i16::MAX;
    }
    ((multiplier + ROUNDING_OFFSET) >> 16) as i16
}

/// int8 HARD_SWISH, bit-exact with TFLite. `input` and `output` have the same length.
pub fn hard_swish_i8(p: &HardSwishI8Params, input: &[i8], output: &mut [i8]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = p.apply(x);
    }
}

// ---------------------------------------------------------------------------
// LOGISTIC, TANH

/// `exp` in f32, correctly rounded in all but astronomically rare cases
/// (computed in f64). glibc's `expf`, which TFLite's `std::exp(float)` calls
/// on Linux, is correctly rounded in practice too; `libm::expf` is not.
#[inline]
fn exp_f32(x: f32) -> f32 {
    libm::exp(x as f64) as f32
}

/// `tanh` in f32, computed in f64 and rounded (see [`exp_f32`]).
#[inline]
fn tanh_f32_rounded(x: f32) -> f32 {
    libm::tanh(x as f64) as f32
}

/// TFLite's float logistic: `1 / (1 + exp(-x))`, with `exp(x)` below -9 and
/// exactly 1 above ~16.62 (the cut-offs of `reference_ops::Logistic`).
#[inline]
fn logistic_scalar(x: f32) -> f32 {
    const CUTOFF_UPPER: f32 = 16.619_047;
    const CUTOFF_LOWER: f32 = -9.0;
    if x > CUTOFF_UPPER {
        1.0
    } else if x < CUTOFF_LOWER {
        exp_f32(x)
    } else {
        1.0 / (1.0 + exp_f32(-x))
    }
}

/// LOGISTIC (sigmoid) in f32. `input` and `output` have the same length.
pub fn logistic_f32(input: &[f32], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = logistic_scalar(x);
    }
}

/// LOGISTIC in f32 for wide vectors: [`logistic_f32`]'s cut-offs (1 above
/// 16.62, `exp(x)` below -9) with [`exp_poly`] instead of a correctly
/// rounded `exp`, branch-free so LLVM vectorizes it: within 4 ulp of the
/// reference (contract-tested). A detector's score sigmoid over all its
/// anchors took 7% of YOLOv8n's time through f64 `exp`.
#[inline(always)]
pub fn logistic_f32_poly(input: &[f32], output: &mut [f32]) {
    const CUTOFF_UPPER: f32 = 16.619_047;
    const CUTOFF_LOWER: f32 = -9.0;
    const E_MINUS_16: f32 = 1.125_351_7e-7;
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        // exp(x) below -9, 1 / (1 + exp(-x)) between, one `exp_poly` per
        // value. It clamps at -87; down to where f32's normal range ends
        // (-87.34) exp(x) is exp(x + 16)·e^-16 (x + 16 is exact there), and
        // 0 below (the reference's underflow, flushed).
        let arg = if x < -87.0 {
            x + 16.0
        } else if x < CUTOFF_LOWER {
            x
        } else {
            -x
        };
        let e = exp_poly(arg);
        let low = if x < -87.336_54 {
            0.0
        } else if x < -87.0 {
            e * E_MINUS_16
        } else {
            e
        };
        let mid = 1.0 / (1.0 + e);
        *o = if x > CUTOFF_UPPER {
            1.0
        } else if x < CUTOFF_LOWER {
            low
        } else {
            mid
        };
    }
}

/// SiLU / swish in f32: `x / (1 + exp(-x))`, with [`exp_poly`] so the loop
/// vectorizes (EfficientNet's swishes took 60% of its time through libm's
/// `exp`). Within 4 ulp of the exact value (tested). Inlined into the
/// architecture modules' wrappers, which compile it for wider vectors.
#[inline(always)]
pub fn swish_f32(input: &[f32], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        // Below -88 the exact result is under 1e-36 in magnitude, where
        // `exp_poly`'s clamp would make it x / 1.65e38.
        *o = if x < -88.0 {
            0.0
        } else {
            x / (1.0 + exp_poly(-x))
        };
    }
}

/// `erf(x)` for `|x| < 0.9` is `x · P(x²)`: a least-squares fit to the f64
/// `erf(x) / x` (made for this file; max error 1.8e-7 relative in f32).
pub(crate) const ERF_SMALL: [f32; 7] = [
    core::f32::consts::FRAC_2_SQRT_PI,
    -0.37612635,
    0.11283733,
    -0.026861522,
    0.005206436,
    -8.205646e-04,
    8.643536e-05,
];
/// For `0.9 ≤ a < 3.9`, `ln erfc(a) + a²` as a polynomial in
/// `t = (a - 2.425) / 1.575` (fit on [0.85, 4]).
pub(crate) const ERFC_MID: [f32; 11] = [
    -1.530044,
    -0.5690217,
    0.1454247,
    -0.045056123,
    0.014338216,
    -0.004427297,
    0.0012804011,
    -3.4052733e-04,
    7.47863e-05,
    -1.1103948e-06,
    -5.6830404e-06,
];
/// For `a ≥ 3.9`, `a · erfc(a) · exp(a²)` as a polynomial in `w = 1 / a²`
/// (fit to the continued fraction on [3.9, 9.5]; 3.3e-8 relative).
pub(crate) const ERFC_TAIL: [f32; 5] = [0.5641894, -0.28205198, 0.42006156, -0.9521944, 1.8560159];

/// Horner's rule on `c` (constant term first).
#[inline(always)]
fn horner(c: &[f32], x: f32) -> f32 {
    c.iter().rev().fold(0.0, |acc, &k| acc * x + k)
}

/// `(erf(a), erfc(a))` for `a = |x|`, branch-free so loops vectorize (both
/// regions are computed and one is selected). erfc is computed directly
/// above 0.9, not as `1 - erf`, so GELU's negative tail keeps its relative
/// accuracy: `exp(-a² + g(a))` with `a²` split exactly (Dekker) and the
/// exponent's rounding error carried to second order. ERF is within 1.5
/// ulp of f64 `erf` and GELU within 20 ulp (its far negative tail) of the
/// f64 formula (tested on every 2^-10 step of [-12, 12]).
#[inline(always)]
fn erf_erfc_abs(a: f32) -> (f32, f32) {
    erf_erfc_scaled(a, a, 1.0)
}

/// `(erf(a), erfc(a))` for `a = |v|·scale` (`scale` 1 or a power of two
/// over √2's square: the square `a² = v²·scale²` is formed from `v`
/// exactly, so GELU's `x/√2` loses nothing to rounding where erfc is
/// sensitive to it).
#[inline(always)]
fn erf_erfc_scaled(a: f32, v: f32, scale_sq: f32) -> (f32, f32) {
    let erf_small = a * horner(&ERF_SMALL, a * a);
    // v = hi + lo with hi of 12 bits: hi² is exact (and so is its scaling
    // by 1 or 1/2).
    let v = v.abs().min(1e4);
    let split = v * 4097.0;
    let hi = split - (split - v);
    let lo = v - hi;
    let (hh, rest) = (hi * hi * scale_sq, (2.0 * hi * lo + lo * lo) * scale_sq);
    let mid = a < 3.9;
    let g = if mid {
        horner(&ERFC_MID, (a.min(4.0) - 2.425) * (1.0 / 1.575))
    } else {
        0.0
    };
    // s + err = g - hh exactly (TwoSum); l = the part of the exponent after s.
    let s = g - hh;
    let b = s - g;
    let err = (g - (s - b)) + (-hh - b);
    let l = err - rest;
    let e = exp_poly(s) * (1.0 + l + 0.5 * l * l);
    let tail = horner(&ERFC_TAIL, 1.0 / (a * a).max(1.0)) / a.max(1.0);
    let erfc_big = if mid { e } else { e * tail };
    // exp(-a²) leaves f32 (and exp_poly's clamp) above 9.3.
    let erfc_big = if a > 9.3 { 0.0 } else { erfc_big };
    if a < 0.9 || a.is_nan() {
        // (NaN stays NaN: the exact-square path clamps it away.)
        (erf_small, 1.0 - erf_small)
    } else {
        (1.0 - erfc_big, erfc_big)
    }
}

/// ERF in f32 (ONNX `Erf`), branch-free for wide vectors; see [`erf_erfc_abs`].
#[inline(always)]
pub fn erf_f32(input: &[f32], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = erf_erfc_abs(x.abs()).0.copysign(x);
    }
}

/// GELU (the exact, erf form) in f32: `x/2 · (1 + erf(x/√2))`, where
/// `1 + erf` is `erfc(|x|/√2)` for negative `x` (no cancellation in the
/// tail). Transformers' GELU took 10% of MaxViT's time through f64 `erf`.
#[inline(always)]
pub fn gelu_f32(input: &[f32], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        let a = (x * core::f32::consts::FRAC_1_SQRT_2).abs();
        let (erf, erfc) = erf_erfc_scaled(a, x, 0.5);
        let one_plus = if x < 0.0 { erfc } else { 1.0 + erf };
        *o = 0.5 * x * one_plus;
    }
}

/// `exp(x)` in f32 without branches or calls, for loops LLVM vectorizes:
/// `x` clamped to [-87, 88] (normal results), split as `n·ln 2 + r` with
/// `|r| ≤ ln 2 / 2` (`n` rounded by the 1.5·2^23 trick, `ln 2` in two
/// parts), `exp(r)` by its Taylor series to `r^6` (truncation below
/// 2^-24 relative), times `2^n` built in the exponent bits.
#[inline(always)]
fn exp_poly(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let t = x * core::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    // `t`'s low mantissa bits hold n (two's complement, |n| < 2^22).
    let e = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    p * f32::from_bits(((e + 127) << 23) as u32)
}

/// TANH in f32. `input` and `output` have the same length.
pub fn tanh_f32(input: &[f32], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = tanh_f32_rounded(x);
    }
}

/// A 256-entry int8 → int8 lookup table, indexed by the input byte
/// (`x as u8`), as TFLite's `PopulateLookupTable` builds it.
#[derive(Clone, PartialEq, Eq)]
pub struct LutI8 {
    pub table: [i8; 256],
}

impl core::fmt::Debug for LutI8 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LutI8").finish_non_exhaustive()
    }
}

impl LutI8 {
    /// The int8 LOGISTIC table: `1 / (1 + exp(-x))` evaluated in f32 on
    /// every dequantized input (TFLite's lambda, without the cut-offs of the
    /// float kernel). TFLite requires `output.scale == 1/256` (and the
    /// converter gives zero-point -128); the table is right for any output.
    pub fn logistic(input: QParams, output: QParams) -> Self {
        Self::from_fn(input, output, |x| 1.0 / (1.0 + exp_f32(-x)))
    }

    /// The int8 TANH table: `tanh(x)` evaluated in f32.
    pub fn tanh(input: QParams, output: QParams) -> Self {
        Self::from_fn(input, output, tanh_f32_rounded)
    }

    /// A table for any f32 function `f`, exactly as TFLite fills one:
    /// dequantize in f32, apply `f`, multiply by `1 / output_scale` (f32),
    /// round half away from zero, add the zero-point, clamp.
    pub fn from_fn(input: QParams, output: QParams, f: impl Fn(f32) -> f32) -> Self {
        let inverse_scale = 1.0f32 / output.scale;
        let mut table = [0i8; 256];
        for v in -128i32..=127 {
            let dequantized = input.scale * (v - input.zero_point) as f32;
            let rescaled = round_f32(f(dequantized) * inverse_scale);
            // `static_cast<int32_t>(rescaled + zero_point)`: the sum is an f32.
            let quantized = (rescaled + output.zero_point as f32) as i32;
            table[v as u8 as usize] = quantized.clamp(-128, 127) as i8;
        }
        LutI8 { table }
    }

    /// The table entry for `x`.
    #[inline]
    pub fn apply(&self, x: i8) -> i8 {
        self.table[x as u8 as usize]
    }
}

/// Maps every input through the table (int8 LOGISTIC, TANH, UNARY). `input` and
/// `output` have the same length.
pub fn lut_i8(lut: &LutI8, input: &[i8], output: &mut [i8]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = lut.apply(x);
    }
}

// ---------------------------------------------------------------------------
// SOFTMAX

/// SOFTMAX over the last axis in f32: each of the `input.len() / depth`
/// rows becomes `exp(beta * (x - max)) / sum` (TFLite's reference). `depth`
/// is the last dimension (> 0); `output` has the input's length.
pub fn softmax_f32(beta: f32, depth: usize, input: &[f32], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    if depth == 0 {
        return;
    }
    for (row_in, row_out) in input
        .chunks_exact(depth)
        .zip(output.chunks_exact_mut(depth))
    {
        let max = row_in
            .iter()
            .fold(f32::MIN, |m, &x| if x > m { x } else { m });
        let mut sum = 0.0f32;
        for (o, &x) in row_out.iter_mut().zip(row_in) {
            *o = exp_f32((x - max) * beta);
            sum += *o;
        }
        for o in row_out.iter_mut() {
            *o /= sum;
        }
    }
}

/// SOFTMAX over the last axis in f32 for wide vectors: as
/// [`softmax_f32`], but `exp` by the branch-free polynomial of GELU and
/// swish (within 2 ulp, not correctly rounded), and the row's maximum and
/// sum kept in 16 lanes and combined at the end (another order of
/// additions). Within a few ulp of the reference (contract-tested); the
/// reference's f64 `exp` per element made Swin-T's attention softmaxes 7%
/// of its time.
#[inline(always)]
pub fn softmax_f32_poly(beta: f32, depth: usize, input: &[f32], output: &mut [f32]) {
    const L: usize = 16;
    debug_assert_eq!(input.len(), output.len());
    if depth == 0 {
        return;
    }
    for (row_in, row_out) in input
        .chunks_exact(depth)
        .zip(output.chunks_exact_mut(depth))
    {
        let mut lanes = [f32::MIN; L];
        let (body, tail) = row_in.split_at(depth - depth % L);
        for piece in body.chunks_exact(L) {
            for (m, &x) in lanes.iter_mut().zip(piece) {
                *m = if x > *m { x } else { *m };
            }
        }
        let max = lanes
            .iter()
            .chain(tail)
            .fold(f32::MIN, |m, &x| if x > m { x } else { m });
        let mut sums = [0f32; L];
        let (out_body, out_tail) = row_out.split_at_mut(depth - depth % L);
        for (o, x) in out_body.chunks_exact_mut(L).zip(body.chunks_exact(L)) {
            for ((o, &x), s) in o.iter_mut().zip(x).zip(sums.iter_mut()) {
                *o = softmax_exp((x - max) * beta);
                *s += *o;
            }
        }
        let mut sum = sums.iter().sum::<f32>();
        for (o, &x) in out_tail.iter_mut().zip(tail) {
            *o = softmax_exp((x - max) * beta);
            sum += *o;
        }
        for o in row_out.iter_mut() {
            *o /= sum;
        }
    }
}

/// `exp(z)` for `z <= 0`, 0 where f32's normal range ends (`exp_poly`
/// clamps there instead), so a row of -∞ gives 0 / 0 as the reference.
#[inline(always)]
fn softmax_exp(z: f32) -> f32 {
    let e = exp_poly(z);
    if z < -87.0 {
        0.0
    } else {
        e
    }
}

/// Integer bits of the scaled input differences fed to `exp` (Q5.26).
const SCALED_DIFF_INTEGER_BITS: i32 = 5;
/// Integer bits of the sum of exponentials (Q12.19).
const ACCUMULATION_INTEGER_BITS: i32 = 12;

/// Precomputed int8 SOFTMAX parameters (TFLite's `SoftmaxPrepare` for the
/// reference kernel: `PreprocessSoftmaxScaling` and `CalculateInputRadius`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftmaxI8Params {
    /// `beta * input_scale * 2^26` as a Q31 multiplier and left shift.
    pub input_multiplier: i32,
    pub input_left_shift: i32,
    /// Differences from the row maximum below this contribute nothing.
    pub diff_min: i32,
}

impl SoftmaxI8Params {
    /// Parameters from the input's quantization and `beta`.
    ///
    /// `None` where TFLite's `Prepare` rejects them: an output other than
    /// zero-point -128 and scale 1/256 (±0.1 %), which the kernel assumes,
    /// or `beta * input_scale * 2^26 <= 1`.
    pub fn new(input: QParams, output: QParams, beta: f32) -> Option<Self> {
        let target = 1.0f32 / 256.0;
        if output.zero_point != -128 || (output.scale - target).abs() > 0.001 * target {
            return None;
        }
        // `PreprocessSoftmaxScaling`, in f64.
        let max_real_multiplier = ((1i64 << 31) - 1) as f64;
        let real =
            (beta as f64 * input.scale as f64 * (1i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64)
                .min(max_real_multiplier);
        if real.is_nan() || real <= 1.0 {
            return None;
        }
        let (input_multiplier, input_left_shift) = quantize_multiplier(real);
        // `CalculateInputRadius(5, left_shift, 31)`, in f64 and floored.
        let max_input_rescaled = ((1i64 << SCALED_DIFF_INTEGER_BITS) - 1) as f64
            * (1i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64
            / (1i64 << input_left_shift) as f64;
        let diff_min = -(libm::floor(max_input_rescaled) as i32);
        Some(SoftmaxI8Params {
            input_multiplier,
            input_left_shift,
            diff_min,
        })
    }

    /// The Q5.26 value of `beta * input_scale * diff` for a difference from
    /// the row maximum (`diff >= diff_min`).
    #[inline]
    fn scaled_diff(&self, diff: i32) -> i32 {
        multiply_by_quantized_multiplier_greater_than_one(
            diff,
            self.input_multiplier,
            self.input_left_shift,
        )
    }
}

/// int8 SOFTMAX over the last axis, bit-exact with TFLite's reference
/// kernel. Rows are `depth` long (`depth > 0` divides `input.len()`); the
/// output has zero-point -128 and scale 1/256.
pub fn softmax_i8(p: &SoftmaxI8Params, depth: usize, input: &[i8], output: &mut [i8]) {
    debug_assert_eq!(input.len(), output.len());
    if depth == 0 {
        return;
    }
    for (row_in, row_out) in input
        .chunks_exact(depth)
        .zip(output.chunks_exact_mut(depth))
    {
        let max = row_in.iter().fold(i8::MIN, |m, &x| m.max(x)) as i32;

        // Sum of exp(diff) in Q12.19. TFLite sums in i32; the sum only
        // exceeds i32 for rows of more than 4096 elements all at the maximum,
        // where TFLite aborts, and saturating keeps the result sensible.
        let mut sum: i64 = 0;
        for &x in row_in {
            let diff = x as i32 - max;
            if diff >= p.diff_min {
                let e = exp_on_negative_values(p.scaled_diff(diff), SCALED_DIFF_INTEGER_BITS);
                sum += rescale(e, 0, ACCUMULATION_INTEGER_BITS) as i64;
            }
        }
        let sum = sum.min(i32::MAX as i64) as i32;

        let (shifted_scale, num_bits_over_unit) = get_reciprocal(sum, ACCUMULATION_INTEGER_BITS);
        // Output has 8 bits: exp * (1 / sum) in Q0.31, scaled down to 2^8.
        let exponent = num_bits_over_unit + 31 - 8;
        for (o, &x) in row_out.iter_mut().zip(row_in) {
            let diff = x as i32 - max;
            *o = if diff >= p.diff_min {
                let e = exp_on_negative_values(p.scaled_diff(diff), SCALED_DIFF_INTEGER_BITS);
                let product = saturating_rounding_doubling_high_mul(shifted_scale, e);
                // TFLite checks `exponent <= 31`; beyond it (a sum of 512 or
                // more) the rounded quotient is 0.
                let unsat = if exponent <= 31 {
                    rounding_divide_by_pot(product, exponent)
                } else {
                    0
                };
                (unsat - 128).clamp(-128, 127) as i8
            } else {
                -128
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swish_is_within_four_ulp_of_exact() {
        let xs: Vec<f32> = (-20_000..=20_000)
            .map(|i| i as f32 / 200.0)
            .chain([
                0.0,
                -0.0,
                1e-30,
                -1e-30,
                87.5,
                -87.5,
                200.0,
                -200.0,
                f32::MAX,
                f32::MIN,
            ])
            .collect();
        let mut got = vec![0f32; xs.len()];
        swish_f32(&xs, &mut got);
        for (&x, &g) in xs.iter().zip(&got) {
            let d = x as f64;
            let want = (d / (1.0 + libm::exp(-d))) as f32;
            let ulp = f32::EPSILON * want.abs();
            assert!(
                (g - want).abs() <= 4.0 * ulp + 1e-30,
                "swish({x}) = {g}, exact {want}"
            );
        }
    }
    use crate::quant::{dequantize_i8, quantize_i8};
    use alloc::vec::Vec;

    fn all_i8() -> Vec<i8> {
        (-128i32..=127).map(|v| v as i8).collect()
    }

    /// Checks that `int8(f)` dequantized stays within `tol` output steps of
    /// `f32(f)` on every int8 input.
    fn assert_close(
        what: &str,
        input_q: QParams,
        output_q: QParams,
        tol: i32,
        i8_kernel: impl Fn(&[i8], &mut [i8]),
        f32_kernel: impl Fn(&[f32], &mut [f32]),
    ) {
        let input = all_i8();
        let mut got = [0i8; 256];
        i8_kernel(&input, &mut got);
        let inf: Vec<f32> = input.iter().map(|&v| dequantize_i8(v, input_q)).collect();
        let mut want = [0f32; 256];
        f32_kernel(&inf, &mut want);
        for i in 0..256 {
            let expected = quantize_i8(want[i], output_q) as i32;
            assert!(
                (got[i] as i32 - expected).abs() <= tol,
                "{what}: input {} -> {} but f32 gives {} ({})",
                input[i],
                got[i],
                expected,
                want[i]
            );
        }
    }

    #[test]
    fn relu_family_f32() {
        let x = [-7.0f32, -1.5, -0.5, 0.0, 0.5, 1.5, 7.0];
        let mut y = [0f32; 7];
        relu_f32(Activation::Relu, &x, &mut y);
        assert_eq!(y, [0.0, 0.0, 0.0, 0.0, 0.5, 1.5, 7.0]);
        relu_f32(Activation::Relu6, &x, &mut y);
        assert_eq!(y, [0.0, 0.0, 0.0, 0.0, 0.5, 1.5, 6.0]);
        relu_f32(Activation::ReluN1To1, &x, &mut y);
        assert_eq!(y, [-1.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0]);
    }

    #[test]
    fn relu_i8_hand_computed() {
        // Same parameters: RELU clamps at the zero-point, RELU6 at zp + 6/scale.
        let q = QParams {
            scale: 0.1,
            zero_point: -10,
        };
        let p = ReluI8Params::new(Activation::Relu6, q, q);
        let mut y = [0i8; 5];
        relu_i8(&p, &[-128, -11, -10, 49, 127], &mut y);
        assert_eq!(y, [-10, -10, -10, 49, 50]);
        // Requantizing: (x - 0) * 0.1 / 0.05 + 5, RELU1 clamps to [-15, 25].
        let p = ReluI8Params::new(
            Activation::ReluN1To1,
            QParams {
                scale: 0.1,
                zero_point: 0,
            },
            QParams {
                scale: 0.05,
                zero_point: 5,
            },
        );
        relu_i8(&p, &[-100, -3, 0, 7, 100], &mut y);
        assert_eq!(y, [-15, -1, 5, 19, 25]);
    }

    #[test]
    fn relu_i8_agrees_with_f32() {
        for (iq, oq) in [
            (
                QParams {
                    scale: 0.05,
                    zero_point: -128,
                },
                QParams {
                    scale: 0.03,
                    zero_point: -128,
                },
            ),
            (
                QParams {
                    scale: 0.02,
                    zero_point: 127,
                },
                QParams {
                    scale: 0.04,
                    zero_point: 3,
                },
            ),
            (
                QParams {
                    scale: 0.1,
                    zero_point: 0,
                },
                QParams {
                    scale: 0.1,
                    zero_point: 0,
                },
            ),
        ] {
            for kind in [
                Activation::Relu,
                Activation::Relu6,
                Activation::ReluN1To1,
                Activation::None,
            ] {
                let p = ReluI8Params::new(kind, iq, oq);
                assert_close(
                    "relu",
                    iq,
                    oq,
                    1,
                    |x, y| relu_i8(&p, x, y),
                    |x, y| relu_f32(kind, x, y),
                );
            }
        }
    }

    #[test]
    fn leaky_relu_hand_computed_and_consistent() {
        let q = QParams {
            scale: 0.5,
            zero_point: 0,
        };
        let p = LeakyReluI8Params::new(q, q, 0.25);
        let mut y = [0i8; 4];
        leaky_relu_i8(&p, &[8, -8, -128, 127], &mut y);
        assert_eq!(y, [8, -2, -32, 127]);
        // A negative alpha gives a negative multiplier.
        let p = LeakyReluI8Params::new(q, q, -0.5);
        leaky_relu_i8(&p, &[-8, -128, 4, 0], &mut y);
        assert_eq!(y, [4, 64, 4, 0]);
        for (iq, oq, alpha) in [
            (
                QParams {
                    scale: 0.05,
                    zero_point: 20,
                },
                QParams {
                    scale: 0.04,
                    zero_point: -60,
                },
                0.1,
            ),
            (
                QParams {
                    scale: 0.02,
                    zero_point: -128,
                },
                QParams {
                    scale: 0.03,
                    zero_point: 127,
                },
                0.3,
            ),
            (
                QParams {
                    scale: 0.1,
                    zero_point: 127,
                },
                QParams {
                    scale: 0.2,
                    zero_point: 0,
                },
                2.5,
            ),
        ] {
            let p = LeakyReluI8Params::new(iq, oq, alpha);
            assert_close(
                "leaky",
                iq,
                oq,
                1,
                |x, y| leaky_relu_i8(&p, x, y),
                |x, y| leaky_relu_f32(alpha, x, y),
            );
        }
    }

    #[test]
    fn prelu_broadcast_alpha() {
        // Input [2, 2, 3], alpha per channel [3].
        let x: Vec<f32> = (0..12).map(|i| i as f32 - 6.0).collect();
        let alpha = [0.5f32, 0.0, -1.0];
        let mut y = [0f32; 12];
        prelu_f32(&x, &[2, 2, 3], &alpha, &[3], &mut y);
        assert_eq!(
            y,
            [-3.0, 0.0, 4.0, -1.5, 0.0, 1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        );

        let iq = QParams {
            scale: 0.5,
            zero_point: 0,
        };
        let aq = QParams {
            scale: 0.25,
            zero_point: 0,
        };
        let p = PreluI8Params::new(iq, aq, iq);
        let xq: Vec<i8> = x.iter().map(|&v| quantize_i8(v, iq)).collect();
        let aq_vals: Vec<i8> = alpha.iter().map(|&v| quantize_i8(v, aq)).collect();
        let mut yq = [0i8; 12];
        prelu_i8(&p, &xq, &[2, 2, 3], &aq_vals, &[3], &mut yq);
        let want: Vec<i8> = y.iter().map(|&v| quantize_i8(v, iq)).collect();
        assert_eq!(yq.to_vec(), want);
    }

    #[test]
    fn prelu_i8_agrees_with_f32() {
        let iq = QParams {
            scale: 0.04,
            zero_point: -100,
        };
        let aq = QParams {
            scale: 0.01,
            zero_point: 7,
        };
        let oq = QParams {
            scale: 0.05,
            zero_point: 30,
        };
        let p = PreluI8Params::new(iq, aq, oq);
        let input = all_i8();
        let alpha_q: [i8; 4] = [-128, 0, 57, 127];
        let alpha_f: Vec<f32> = alpha_q.iter().map(|&a| dequantize_i8(a, aq)).collect();
        let input_f: Vec<f32> = input.iter().map(|&v| dequantize_i8(v, iq)).collect();
        let (mut got, mut want) = ([0i8; 256], [0f32; 256]);
        prelu_i8(&p, &input, &[64, 4], &alpha_q, &[1, 4], &mut got);
        prelu_f32(&input_f, &[64, 4], &alpha_f, &[1, 4], &mut want);
        for i in 0..256 {
            let expected = quantize_i8(want[i], oq) as i32;
            assert!(
                (got[i] as i32 - expected).abs() <= 1,
                "{i}: {} vs {expected}",
                got[i]
            );
        }
    }

    #[test]
    fn hard_swish_f32_values() {
        let x = [-4.0f32, -3.0, -1.5, 0.0, 1.5, 3.0, 4.0];
        let mut y = [0f32; 7];
        hard_swish_f32(&x, &mut y);
        assert_eq!(y, [0.0, 0.0, -0.375, 0.0, 1.125, 3.0, 4.0]);
    }

    #[test]
    fn hard_swish_i8_agrees_with_f32() {
        for (iq, oq) in [
            (
                QParams {
                    scale: 0.05,
                    zero_point: 0,
                },
                QParams {
                    scale: 0.04,
                    zero_point: -100,
                },
            ),
            (
                QParams {
                    scale: 0.1,
                    zero_point: -128,
                },
                QParams {
                    scale: 0.1,
                    zero_point: -128,
                },
            ),
            (
                QParams {
                    scale: 0.03,
                    zero_point: 127,
                },
                QParams {
                    scale: 0.02,
                    zero_point: 10,
                },
            ),
            (
                QParams {
                    scale: 0.5,
                    zero_point: 0,
                },
                QParams {
                    scale: 0.25,
                    zero_point: -20,
                },
            ),
        ] {
            let p = HardSwishI8Params::new(iq, oq).unwrap();
            assert_close(
                "hard_swish",
                iq,
                oq,
                1,
                |x, y| hard_swish_i8(&p, x, y),
                hard_swish_f32,
            );
        }
        // An output scale at or below input_scale / 128 is rejected like TFLite.
        let q = QParams {
            scale: 1.0,
            zero_point: 0,
        };
        assert!(HardSwishI8Params::new(
            q,
            QParams {
                scale: 1.0 / 256.0,
                zero_point: 0
            }
        )
        .is_none());
    }

    #[test]
    fn hard_swish_i8_params_match_hand_computation() {
        // input_scale = output_scale = 1/16: output multiplier 1/128 = 0.5 * 2^-6,
        // Q31 2^30 -> Q15 2^14; reluish = (1/2048) / (3/32768) = 16/3 = 0.6667 * 2^3.
        let q = QParams {
            scale: 1.0 / 16.0,
            zero_point: 0,
        };
        let p = HardSwishI8Params::new(q, q).unwrap();
        assert_eq!(
            (
                p.output_multiplier_fixedpoint_int16,
                p.output_multiplier_exponent
            ),
            (16384, -6)
        );
        assert_eq!(p.reluish_multiplier_exponent, 3);
        assert_eq!(p.reluish_multiplier_fixedpoint_int16, 21845); // round(2/3 * 2^15)
        let mut y = [0i8; 5];
        // x = 4.0 (64) -> 4.0; x = -4.0 -> 0; x = 1.0 (16) -> 1 * 4/6 = 0.667 -> 11.
        hard_swish_i8(&p, &[64, -64, 16, 0, 127], &mut y);
        assert_eq!(&y[..4], &[64, 0, 11, 0]);
        assert_eq!(y[4], 127);
    }

    #[test]
    fn logistic_and_tanh_f32() {
        let mut y = [0f32; 4];
        logistic_f32(&[0.0, 20.0, -10.0, 1.0], &mut y);
        assert_eq!(y[0], 0.5);
        assert_eq!(y[1], 1.0);
        assert!((y[2] - 4.539_993e-5).abs() < 1e-10);
        assert!((y[3] - 0.731_058_6).abs() < 1e-6);
        tanh_f32(&[0.0, 1.0, -1.0, 30.0], &mut y);
        assert_eq!(y[0], 0.0);
        assert!((y[1] - 0.761_594_2).abs() < 1e-6);
        assert_eq!(y[2], -y[1]);
        assert_eq!(y[3], 1.0);
    }

    #[test]
    fn logistic_lut_hand_computed() {
        // Input scale 1/16 zp 0; output 1/256 zp -128 (what TFLite requires).
        let iq = QParams {
            scale: 1.0 / 16.0,
            zero_point: 0,
        };
        let oq = QParams {
            scale: 1.0 / 256.0,
            zero_point: -128,
        };
        let lut = LutI8::logistic(iq, oq);
        // sigmoid(0) = 0.5 -> 128 - 128 = 0; sigmoid(7.9375) * 256 = 255.91 -> 256 -> 127.
        assert_eq!(lut.apply(0), 0);
        assert_eq!(lut.apply(127), 127);
        // sigmoid(-8) * 256 = 0.0858 -> 0 -> -128.
        assert_eq!(lut.apply(-128), -128);
        // sigmoid(1) * 256 = 187.15 -> 187 -> 59.
        assert_eq!(lut.apply(16), 59);
        assert_close(
            "logistic",
            iq,
            oq,
            0,
            |x, y| lut_i8(&lut, x, y),
            logistic_f32,
        );
    }

    #[test]
    fn tanh_lut_consistent() {
        for (iq, oq) in [
            (
                QParams {
                    scale: 0.03,
                    zero_point: 5,
                },
                QParams {
                    scale: 1.0 / 128.0,
                    zero_point: 0,
                },
            ),
            (
                QParams {
                    scale: 0.1,
                    zero_point: -128,
                },
                QParams {
                    scale: 1.0 / 100.0,
                    zero_point: -20,
                },
            ),
        ] {
            let lut = LutI8::tanh(iq, oq);
            assert_close("tanh", iq, oq, 0, |x, y| lut_i8(&lut, x, y), tanh_f32);
        }
        // tanh(0) = 0 at the zero-point; tanh(1) * 128 = 97.48 -> 97.
        let lut = LutI8::tanh(
            QParams {
                scale: 0.1,
                zero_point: 0,
            },
            QParams {
                scale: 1.0 / 128.0,
                zero_point: 0,
            },
        );
        assert_eq!(lut.apply(0), 0);
        assert_eq!(lut.apply(10), 97);
        assert_eq!(lut.apply(-10), -97);
    }

    #[test]
    fn softmax_f32_rows() {
        let x = [1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0];
        let mut y = [0f32; 6];
        softmax_f32(1.0, 3, &x, &mut y);
        let e = [1.0f32.exp(), 2.0f32.exp(), 3.0f32.exp()];
        let s: f32 = e.iter().sum();
        for i in 0..3 {
            assert!((y[i] - e[i] / s).abs() < 1e-6);
            assert!((y[3 + i] - 1.0 / 3.0).abs() < 1e-6);
        }
        // beta scales the logits.
        softmax_f32(0.0, 3, &x, &mut y);
        assert!(y.iter().all(|&v| (v - 1.0 / 3.0).abs() < 1e-6));
    }

    #[test]
    fn softmax_i8_params_match_tflite_prepare() {
        let out = QParams {
            scale: 1.0 / 256.0,
            zero_point: -128,
        };
        // beta * scale * 2^26 = 0.125 * 2^26 = 2^23 = 0.5 * 2^24.
        let p = SoftmaxI8Params::new(
            QParams {
                scale: 0.125,
                zero_point: 0,
            },
            out,
            1.0,
        )
        .unwrap();
        assert_eq!((p.input_multiplier, p.input_left_shift), (1 << 30, 24));
        // radius = floor(31 * 2^26 / 2^24) = 124.
        assert_eq!(p.diff_min, -124);
        // Wrong output parameters and a too-small beta are rejected.
        assert!(SoftmaxI8Params::new(
            QParams {
                scale: 0.125,
                zero_point: 0
            },
            QParams {
                scale: 0.01,
                zero_point: -128
            },
            1.0
        )
        .is_none());
        assert!(SoftmaxI8Params::new(
            QParams {
                scale: 1e-9,
                zero_point: 0
            },
            out,
            1.0
        )
        .is_none());
    }

    #[test]
    fn softmax_i8_hand_computed() {
        let out = QParams {
            scale: 1.0 / 256.0,
            zero_point: -128,
        };
        let p = SoftmaxI8Params::new(
            QParams {
                scale: 0.125,
                zero_point: 3,
            },
            out,
            1.0,
        )
        .unwrap();
        let mut y = [0i8; 8];
        // Two equal maxima: 0.5 each -> 128 - 128 = 0.
        // A row of one element: 1.0 -> 256 saturates to 127.
        softmax_i8(&p, 2, &[5, 5, -128, 127, 0, 0, 100, -128], &mut y);
        assert_eq!(&y[..2], &[0, 0]);
        // diff -255 < diff_min: exactly zero probability, and the max gets 1.0.
        assert_eq!(&y[2..4], &[-128, 127]);
        assert_eq!(&y[4..6], &[0, 0]);
        assert_eq!(&y[6..8], &[127, -128]);
        let mut one = [0i8; 1];
        softmax_i8(&p, 1, &[-7], &mut one);
        assert_eq!(one[0], 127);
    }

    #[test]
    fn softmax_i8_agrees_with_f32() {
        let out = QParams {
            scale: 1.0 / 256.0,
            zero_point: -128,
        };
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as i8
        };
        for (scale, zp, beta, depth) in [
            (0.1f32, 0, 1.0f32, 10usize),
            (0.05, -128, 1.0, 1000),
            (0.02, 127, 2.0, 5),
            (0.3, 10, 0.5, 64),
        ] {
            let iq = QParams {
                scale,
                zero_point: zp,
            };
            let p = SoftmaxI8Params::new(iq, out, beta).unwrap();
            let input: Vec<i8> = (0..depth * 3).map(|_| next()).collect();
            let input_f: Vec<f32> = input.iter().map(|&v| dequantize_i8(v, iq)).collect();
            let mut got = alloc::vec![0i8; input.len()];
            let mut want = alloc::vec![0f32; input.len()];
            softmax_i8(&p, depth, &input, &mut got);
            softmax_f32(beta, depth, &input_f, &mut want);
            for i in 0..input.len() {
                let expected = quantize_i8(want[i], out) as i32;
                assert!(
                    (got[i] as i32 - expected).abs() <= 1,
                    "depth {depth} #{i}: {} vs {expected}",
                    got[i]
                );
            }
        }
    }

    #[test]
    fn softmax_i8_long_uniform_row_does_not_panic() {
        // 10000 equal values: TFLite's int32 sum would overflow; the result
        // is the smallest probability, and nothing panics.
        let out = QParams {
            scale: 1.0 / 256.0,
            zero_point: -128,
        };
        let p = SoftmaxI8Params::new(
            QParams {
                scale: 0.1,
                zero_point: 0,
            },
            out,
            1.0,
        )
        .unwrap();
        let input = alloc::vec![3i8; 10_000];
        let mut y = alloc::vec![0i8; 10_000];
        softmax_i8(&p, 10_000, &input, &mut y);
        assert!(y.iter().all(|&v| v == -128));
    }

    #[test]
    fn erf_and_gelu_polynomials_track_f64() {
        // Every 2^-10 step to 12, plus specials; error in units of the
        // exact value's f32 spacing (ulp), with the subnormal spacing as a floor.
        let mut xs: Vec<f32> = (-12 * 1024..=12 * 1024)
            .map(|i| i as f32 / 1024.0)
            .collect();
        xs.extend([
            1e-30,
            -1e-30,
            0.899_999_9,
            0.9,
            3.899_999_8,
            3.9,
            9.3,
            9.31,
            13.0,
            -13.0,
            1e30,
        ]);
        let mut erf = vec![0f32; xs.len()];
        let mut gelu = vec![0f32; xs.len()];
        erf_f32(&xs, &mut erf);
        gelu_f32(&xs, &mut gelu);
        let ulps = |got: f32, exact: f64| {
            let spacing = (exact.abs() as f32).max(f32::MIN_POSITIVE) * f32::EPSILON;
            ((got as f64 - exact).abs() / spacing as f64) as f32
        };
        let (mut worst_erf, mut worst_gelu) = (0f32, 0f32);
        for (k, &x) in xs.iter().enumerate() {
            let d = x as f64;
            worst_erf = worst_erf.max(ulps(erf[k], libm::erf(d)));
            let exact = 0.5 * d * libm::erfc(-d / core::f64::consts::SQRT_2);
            worst_gelu = worst_gelu.max(ulps(gelu[k], exact));
        }
        assert!(worst_erf <= 2.0, "erf: {worst_erf} ulp");
        assert!(worst_gelu <= 24.0, "gelu: {worst_gelu} ulp");
        let mut special = [0f32; 5];
        erf_f32(
            &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0],
            &mut special,
        );
        assert!(special[0].is_nan());
        assert_eq!(special[1..], [1.0, -1.0, -0.0, 0.0]);
        gelu_f32(
            &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0],
            &mut special,
        );
        assert!(special[0].is_nan());
        assert_eq!(special[1], f32::INFINITY);
        // As the f64 formula gives: -inf · 0 is NaN.
        assert!(special[2].is_nan() && special[3] == 0.0 && special[4] == 0.0);
        println!("erf within {worst_erf} ulp, gelu within {worst_gelu} ulp of f64");
    }
}
