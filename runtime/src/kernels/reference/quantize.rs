//! QUANTIZE (f32 → int8, int8 → int8 requantization) and DEQUANTIZE
//! (int8 → f32), as TFLite's reference kernels compute them.
//!
//! - f32 → int8: `clamp(round(x / scale) + zero_point)`, the division in f32
//!   and rounding half away from zero (`reference_ops::AffineQuantize`).
//! - int8 → int8: `MultiplyByQuantizedMultiplier(x - zp_in, s_in / s_out) +
//!   zp_out`, clamped, with the multiplier computed in f64
//!   (`reference_ops::Requantize`).
//! - int8 → f32: `scale * (x - zero_point)` (`reference_ops::Dequantize`
//!   computes it in f64 and rounds to f32; the product of an f32 scale and a
//!   9-bit integer is exact in f64, so the f32 product here is identical).

use crate::quant::{dequantize_i8, multiply_by_quantized_multiplier, quantize_multiplier, QParams};

/// Quantizes f32 values to int8 with the output's parameters. `input` and
/// `output` have the same length.
///
/// NaN maps to the zero-point and out-of-range values saturate to -128 /
/// 127; TFLite's cast of such values is undefined behaviour in C++ (on x86
/// it yields -128 for NaN and for magnitudes of 2^31 steps or more).
pub fn quantize_f32_i8(output_q: QParams, input: &[f32], output: &mut [i8]) {
    debug_assert_eq!(input.len(), output.len());
    // `quantize_i8` per element, written so that it vectorizes (no libm call,
    // no saturating casts): beyond ±2^24 every value saturates to -128 / 127
    // anyway, and below it `as i32` truncates exactly; rounding half away
    // from zero is then the truncation plus the sign where |fraction| >= 0.5.
    // Equal to `quantize_i8` for every input (test `quantize_fast_paths_match_scalar`).
    let (s, zp) = (output_q.scale, zp_in_range(output_q.zero_point));
    const LIM: f32 = (1 << 24) as f32;
    for (o, &x) in output.iter_mut().zip(input) {
        let v = x / s;
        let v = if v.is_nan() { 0.0 } else { v.clamp(-LIM, LIM) };
        // SAFETY: v is finite and within ±2^24.
        let t = unsafe { v.to_int_unchecked::<i32>() };
        let f = v - t as f32;
        let r = t + i32::from(f >= 0.5) - i32::from(f <= -0.5);
        *o = (r + zp).clamp(-128, 127) as i8;
    }
}

/// The zero point clamped to ±2^24 so that adding it to a value within ±2^24
/// cannot overflow. int8 zero points lie in [-128, 127] (checked when a model
/// loads), which the clamp leaves alone.
fn zp_in_range(zp: i32) -> i32 {
    zp.clamp(-(1 << 24), 1 << 24)
}

/// Quantizes f32 values to int8 like ONNX's QuantizeLinear (ONNX Runtime):
/// `clamp(round_half_even(x / scale) + zero_point)`. Used for models with
/// [`crate::quant::Rounding::Float`].
pub fn quantize_f32_i8_half_even(output_q: QParams, input: &[f32], output: &mut [i8]) {
    debug_assert_eq!(input.len(), output.len());
    // `quantize_i8_half_even` per element in a form that vectorizes: the
    // magic-number rounding of `round_half_even_i32`, then an unchecked cast
    // of the (integral, in range) result.
    let (s, zp) = (output_q.scale, zp_in_range(output_q.zero_point));
    const LIM: f32 = (1 << 22) as f32;
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    for (o, &x) in output.iter_mut().zip(input) {
        let v = x / s;
        let v = if v.is_nan() { 0.0 } else { v.clamp(-LIM, LIM) };
        // SAFETY: an integer within ±2^22.
        let r = unsafe { ((v + MAGIC) - MAGIC).to_int_unchecked::<i32>() };
        *o = (r + zp).clamp(-128, 127) as i8;
    }
}

/// Precomputed int8 → int8 requantization (TFLite's QUANTIZE `Prepare` for
/// a quantized input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequantizeI8Params {
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    /// `input_scale / output_scale` (divided in f64) as a Q31 multiplier and shift.
    pub multiplier: i32,
    pub shift: i32,
}

impl RequantizeI8Params {
    /// Parameters to move int8 values from `input`'s to `output`'s quantization.
    pub fn new(input: QParams, output: QParams) -> Self {
        let (multiplier, shift) = quantize_multiplier(input.scale as f64 / output.scale as f64);
        RequantizeI8Params {
            input_zero_point: input.zero_point,
            output_zero_point: output.zero_point,
            multiplier,
            shift,
        }
    }

    /// One output element.
    #[inline]
    pub fn apply(&self, x: i8) -> i8 {
        self.apply_i32(x as i32)
    }

    /// One output element from a wider input value (uint8).
    #[inline]
    pub fn apply_i32(&self, x: i32) -> i8 {
        self.unclamped(x).clamp(-128, 127) as i8
    }

    /// One uint8 output element from an int8 input (the output's zero-point
    /// in [0, 255]): TFLite's QUANTIZE from int8 to uint8.
    #[inline]
    pub fn apply_u8(&self, x: i8) -> u8 {
        self.unclamped(x as i32).clamp(0, 255) as u8
    }

    /// `x` in the output's quantization, before the output type's clamp.
    #[inline]
    fn unclamped(&self, x: i32) -> i32 {
        multiply_by_quantized_multiplier(x - self.input_zero_point, self.multiplier, self.shift)
            + self.output_zero_point
    }
}

/// Requantizes uint8 values to int8 (TFLite's QUANTIZE of a uint8 input,
/// e.g. a uint8 image input ahead of an int8 network), bit-exact with
/// TFLite's `Requantize`.
pub fn requantize_u8_i8(p: &RequantizeI8Params, input: &[u8], output: &mut [i8]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = p.apply_i32(x as i32);
    }
}

/// Requantizes int8 values to uint8 (TFLite's QUANTIZE to a uint8 output,
/// e.g. the uint8 output of a legacy uint8 model run as int8), bit-exact
/// with TFLite's `Requantize`.
pub fn requantize_i8_u8(p: &RequantizeI8Params, input: &[i8], output: &mut [u8]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = p.apply_u8(x);
    }
}

/// Dequantizes uint8 values: `scale * (x - zero_point)`.
pub fn dequantize_u8_f32(input_q: QParams, input: &[u8], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = input_q.scale * (x as i32 - input_q.zero_point) as f32;
    }
}

/// Requantizes int8 values, bit-exact with TFLite. `input` and `output`
/// have the same length.
pub fn requantize_i8(p: &RequantizeI8Params, input: &[i8], output: &mut [i8]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = p.apply(x);
    }
}

/// Dequantizes int8 values with the input's parameters. `input` and
/// `output` have the same length.
pub fn dequantize_i8_f32(input_q: QParams, input: &[i8], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        *o = dequantize_i8(x, input_q);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{quantize_i8, quantize_i8_half_even};

    #[test]
    fn quantize_fast_paths_match_scalar() {
        let mut xs = vec![
            0.0f32,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            1e30,
            -1e30,
            16_777_216.0,
            -16_777_217.0,
            8_388_607.5,
            4_194_304.5,
        ];
        for i in -600..=600 {
            xs.push(i as f32 * 0.25);
            xs.push(i as f32 * 0.5 + 1e-7);
            xs.push(i as f32 * 0.5 - 1e-7);
        }
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            xs.push(f32::from_bits(seed as u32));
            xs.push((seed >> 40) as f32 / 1000.0 - 8000.0);
        }
        for (scale, zero_point) in [
            (1.0, 0),
            (0.5, -128),
            (0.007_812_5, 127),
            (0.013, 3),
            (1e-20, -5),
            (3e20, 100),
        ] {
            let q = QParams { scale, zero_point };
            let mut fast = vec![0i8; xs.len()];
            quantize_f32_i8(q, &xs, &mut fast);
            let mut fast_even = vec![0i8; xs.len()];
            quantize_f32_i8_half_even(q, &xs, &mut fast_even);
            for (i, &x) in xs.iter().enumerate() {
                assert_eq!(fast[i], quantize_i8(x, q), "x {x} {q:?}");
                assert_eq!(
                    fast_even[i],
                    quantize_i8_half_even(x, q),
                    "x {x} {q:?} half-even"
                );
            }
        }
    }

    #[test]
    fn quantize_rounds_half_away_from_zero_and_saturates() {
        let q = QParams {
            scale: 0.5,
            zero_point: -3,
        };
        let x = [
            0.25f32,
            -0.25,
            0.75,
            -0.75,
            1.0,
            100.0,
            -100.0,
            f32::INFINITY,
            f32::NAN,
        ];
        let mut y = [0i8; 9];
        quantize_f32_i8(q, &x, &mut y);
        // 0.5 -> 1, -0.5 -> -1, 1.5 -> 2, -1.5 -> -2, 2 -> 2; then + zp.
        assert_eq!(y, [-2, -4, -1, -5, -1, 127, -128, 127, -3]);
    }

    #[test]
    fn dequantize_values() {
        let q = QParams {
            scale: 0.25,
            zero_point: 10,
        };
        let mut y = [0f32; 3];
        dequantize_i8_f32(q, &[10, 14, -128], &mut y);
        assert_eq!(y, [0.0, 1.0, -34.5]);
    }

    #[test]
    fn requantize_hand_computed() {
        // (x - 4) * 0.2 / 0.1 - 7.
        let p = RequantizeI8Params::new(
            QParams {
                scale: 0.2,
                zero_point: 4,
            },
            QParams {
                scale: 0.1,
                zero_point: -7,
            },
        );
        let mut y = [0i8; 4];
        requantize_i8(&p, &[4, 10, 100, -128], &mut y);
        assert_eq!(y, [-7, 5, 127, -128]);
        // Halving: the multiplier is 0.5 with shift 0, so all rounding happens
        // in SaturatingRoundingDoublingHighMul, whose ties go toward +inf:
        // 2.5 -> 3 but -2.5 -> -2, 1.5 -> 2 but -1.5 -> -1.
        let p = RequantizeI8Params::new(
            QParams {
                scale: 0.1,
                zero_point: 0,
            },
            QParams {
                scale: 0.2,
                zero_point: 0,
            },
        );
        requantize_i8(&p, &[5, -5, 3, -3], &mut y);
        assert_eq!(y, [3, -2, 2, -1]);
    }

    #[test]
    fn roundtrip_and_requantize_agree_with_float() {
        let qa = QParams {
            scale: 0.037,
            zero_point: -128,
        };
        let qb = QParams {
            scale: 0.05,
            zero_point: 127,
        };
        let input: [i8; 256] = core::array::from_fn(|i| (i as i32 - 128) as i8);
        let mut f = [0f32; 256];
        dequantize_i8_f32(qa, &input, &mut f);
        // Quantizing with the same parameters gives the input back.
        let mut back = [0i8; 256];
        quantize_f32_i8(qa, &f, &mut back);
        assert_eq!(back, input);
        // Requantizing is within one step of quantizing the real value.
        let p = RequantizeI8Params::new(qa, qb);
        let mut requant = [0i8; 256];
        requantize_i8(&p, &input, &mut requant);
        quantize_f32_i8(qb, &f, &mut back);
        for i in 0..256 {
            assert!(
                (requant[i] as i32 - back[i] as i32).abs() <= 1,
                "{i}: {} vs {}",
                requant[i],
                back[i]
            );
        }
    }
}
