//! Quantization arithmetic shared by every int8 kernel.
//!
//! These follow TFLite's quantization spec and its reference helpers
//! (`QuantizeMultiplier`, `MultiplyByQuantizedMultiplier`, gemmlowp's
//! `SaturatingRoundingDoublingHighMul` / `RoundingDivideByPOT`) exactly, so
//! that int8 kernels built on them are bit-identical to TFLite's reference
//! kernels (default build, i.e. double rounding, not `TFLITE_SINGLE_ROUNDING`).

/// Quantization parameters of one tensor (or one channel): `real = scale * (q - zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    pub scale: f32,
    pub zero_point: i32,
}

/// A real multiplier encoded as a Q31 fixed-point value and a power-of-two
/// exponent: `real ≈ multiplier * 2^(shift - 31)`. `shift > 0` is a left shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Requant {
    pub multiplier: i32,
    pub shift: i32,
}

impl Requant {
    /// Encodes `real` (which must be finite and >= 0) like TFLite's `QuantizeMultiplier`.
    pub fn from_real(real: f64) -> Self {
        let (multiplier, shift) = quantize_multiplier(real);
        Requant { multiplier, shift }
    }

    /// `x * real`, rounded like TFLite's `MultiplyByQuantizedMultiplier`.
    #[inline]
    pub fn apply(self, x: i32) -> i32 {
        multiply_by_quantized_multiplier(x, self.multiplier, self.shift)
    }
}

/// TFLite's `QuantizeMultiplier`: splits `m` into a Q31 multiplier and a shift.
pub fn quantize_multiplier(m: f64) -> (i32, i32) {
    if m == 0.0 || !m.is_finite() {
        return (0, 0);
    }
    let (q, mut shift) = libm::frexp(m);
    let mut q_fixed = libm::round(q * (1i64 << 31) as f64) as i64;
    debug_assert!(q_fixed <= 1i64 << 31);
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    (q_fixed as i32, shift)
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul`: `(a * b * 2) >> 32`, rounded, saturating.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    let overflow = a == b && a == i32::MIN;
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // C++ integer division truncates toward zero, as Rust's `/` does.
    let high = ((ab + nudge) / (1i64 << 31)) as i32;
    if overflow {
        i32::MAX
    } else {
        high
    }
}

/// gemmlowp's `RoundingDivideByPOT`: `x / 2^exponent`, rounding half away from zero.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let mask: i32 = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// TFLite's `MultiplyByQuantizedMultiplier(int32 x, int32 q, int shift)`.
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left_shift = if shift > 0 { shift } else { 0 };
    let right_shift = if shift > 0 { 0 } else { -shift };
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(
            x.wrapping_mul(1i32.wrapping_shl(left_shift as u32)),
            multiplier,
        ),
        right_shift,
    )
}

/// TFLite's `MultiplyByQuantizedMultiplierSmallerThanOneExp` (`left_shift <= 0`).
#[inline]
pub fn multiply_by_quantized_multiplier_smaller_than_one_exp(
    x: i32,
    multiplier: i32,
    left_shift: i32,
) -> i32 {
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x, multiplier),
        -left_shift,
    )
}

/// TFLite's `MultiplyByQuantizedMultiplierGreaterThanOne` (`left_shift >= 0`).
#[inline]
pub fn multiply_by_quantized_multiplier_greater_than_one(
    x: i32,
    multiplier: i32,
    left_shift: i32,
) -> i32 {
    saturating_rounding_doubling_high_mul(
        x.wrapping_mul(1i32.wrapping_shl(left_shift as u32)),
        multiplier,
    )
}

/// TFLite's `TfLiteRound` for f32: round half away from zero.
#[inline]
pub fn round_f32(x: f32) -> f32 {
    libm::roundf(x)
}

/// Quantizes one real value like TFLite's reference `AffineQuantize`:
/// `clamp(round(x / scale) + zero_point)` with the division done in f32.
#[inline]
pub fn quantize_i8(x: f32, q: QParams) -> i8 {
    let v = round_f32(x / q.scale);
    // `as i32` saturates in Rust, and so does the clamp below; NaN maps to 0.
    let v = (v as i32).saturating_add(q.zero_point);
    v.clamp(-128, 127) as i8
}

/// `scale * (q - zero_point)` in f32, as TFLite's reference `Dequantize`.
#[inline]
pub fn dequantize_i8(v: i8, q: QParams) -> f32 {
    q.scale * (v as i32 - q.zero_point) as f32
}

/// Fused activation of an op (TFLite's `ActivationFunctionType`, the values
/// a `.fer` op attribute uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Activation {
    #[default]
    None = 0,
    Relu = 1,
    ReluN1To1 = 2,
    Relu6 = 3,
}

impl Activation {
    /// Decodes the attribute value; `None` for an unknown one.
    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            0 => Activation::None,
            1 => Activation::Relu,
            2 => Activation::ReluN1To1,
            3 => Activation::Relu6,
            _ => return None,
        })
    }

    /// The float clamp range, like TFLite's `CalculateActivationRange`.
    pub fn range_f32(self) -> (f32, f32) {
        match self {
            Activation::None => (f32::MIN, f32::MAX),
            Activation::Relu => (0.0, f32::MAX),
            Activation::ReluN1To1 => (-1.0, 1.0),
            Activation::Relu6 => (0.0, 6.0),
        }
    }

    /// The int8 clamp range for an output with `q`, like TFLite's
    /// `CalculateActivationRangeQuantized`.
    pub fn range_i8(self, q: QParams) -> (i32, i32) {
        let (qmin, qmax) = (-128i32, 127i32);
        let quantize = |f: f32| q.zero_point.saturating_add(round_f32(f / q.scale) as i32);
        match self {
            Activation::None => (qmin, qmax),
            Activation::Relu => (qmin.max(quantize(0.0)), qmax),
            Activation::Relu6 => (qmin.max(quantize(0.0)), qmax.min(quantize(6.0))),
            Activation::ReluN1To1 => (qmin.max(quantize(-1.0)), qmax.min(quantize(1.0))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_multiplier_matches_tflite_examples() {
        // 0.5 = 0.5 * 2^0 -> q = 2^30, shift 0.
        assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
        // 1.0 = 0.5 * 2^1.
        assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        // Tiny multipliers flush to zero like TFLite.
        assert_eq!(quantize_multiplier(1e-12), (0, 0));
    }

    #[test]
    fn rounding_divide_rounds_half_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(-4, 1), -2);
        assert_eq!(rounding_divide_by_pot(7, 0), 7);
    }

    #[test]
    fn srdhm_saturates_only_at_min_min() {
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(1 << 30, 1 << 30),
            1 << 29
        );
    }

    #[test]
    fn multiply_by_quantized_multiplier_scales() {
        let r = Requant::from_real(0.25);
        assert_eq!(r.apply(100), 25);
        assert_eq!(r.apply(-102), -26);
        let r = Requant::from_real(3.0);
        assert_eq!(r.apply(10), 30);
    }

    #[test]
    fn activation_ranges() {
        let q = QParams {
            scale: 0.1,
            zero_point: -10,
        };
        assert_eq!(Activation::Relu.range_i8(q), (-10, 127));
        assert_eq!(Activation::Relu6.range_i8(q), (-10, 50));
        assert_eq!(Activation::ReluN1To1.range_i8(q), (-20, 0));
    }
}
