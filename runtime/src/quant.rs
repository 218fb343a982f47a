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

/// How a model's int8 ops turn exact integer sums into output codes: the
/// arithmetic of the framework the quantized model came from, so that Ferrite
/// gives that framework's answers to the bit. Stored in the package header
/// (`docs/format.md`, flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rounding {
    /// TFLite's: Q31 fixed-point multipliers (`MultiplyByQuantizedMultiplier`),
    /// rounding half away from zero. Models from TFLite and Ferrite's quantizer.
    #[default]
    FixedPoint,
    /// ONNX's, as ONNX Runtime's x86-64 kernels (MLAS) compute it: the int32
    /// sum converted to f32, multiplied by an f32 scale, rounded half to even
    /// (QLinearConv, QGemm, QuantizeLinear, QLinearGlobalAveragePool), and
    /// QLinearAdd's fused multiply-adds on the raw input codes. Models
    /// imported from ONNX QDQ graphs.
    Float {
        /// The ONNX model's activations were uint8, stored here as int8
        /// shifted by -128; kernels whose rounding depends on the raw codes
        /// (ADD) shift them back.
        uint8: bool,
    },
}

impl Rounding {
    /// Header flag bits (`docs/format.md`).
    pub const FLAG_FLOAT: u32 = 1;
    pub const FLAG_UINT8: u32 = 2;

    /// Decodes the header flags; `None` for bits this runtime doesn't know.
    pub fn from_flags(flags: u32) -> Option<Self> {
        match flags {
            0 => Some(Rounding::FixedPoint),
            Self::FLAG_FLOAT => Some(Rounding::Float { uint8: false }),
            f if f == Self::FLAG_FLOAT | Self::FLAG_UINT8 => Some(Rounding::Float { uint8: true }),
            _ => None,
        }
    }

    /// The header flag bits of this rounding.
    pub fn flags(self) -> u32 {
        match self {
            Rounding::FixedPoint => 0,
            Rounding::Float { uint8: false } => Self::FLAG_FLOAT,
            Rounding::Float { uint8: true } => Self::FLAG_FLOAT | Self::FLAG_UINT8,
        }
    }

    /// Whether this is [`Rounding::Float`].
    pub fn is_float(self) -> bool {
        matches!(self, Rounding::Float { .. })
    }
}

/// Rounds `v` half to even and converts it to i32, clamped to ±2^22 (far
/// outside any int8/uint8 code, so adding a zero-point and clamping to the
/// output range gives what clamping first, as MLAS does, would). NaN -> 0.
///
/// Hand-written rather than `libm::rintf` (a bit-by-bit software routine):
/// adding and subtracting 1.5 * 2^23 leaves the float rounded to an integer
/// in the default round-to-nearest-even mode, exactly, for |v| < 2^22, and
/// the compiler vectorizes it.
#[inline]
pub fn round_half_even_i32(v: f32) -> i32 {
    const LIM: f32 = (1 << 22) as f32;
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    let v = if v.is_nan() { 0.0 } else { v.clamp(-LIM, LIM) };
    ((v + MAGIC) - MAGIC) as i32
}

/// A real multiplier: a Q31 fixed-point value and a power-of-two exponent,
/// `real ≈ multiplier * 2^(shift - 31)` (`shift > 0` is a left shift), and,
/// for [`Rounding::Float`], the f32 scale itself.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Requant {
    pub multiplier: i32,
    pub shift: i32,
    /// `Some(scale)`: [`Requant::apply`] rounds `x as f32 * scale` half to
    /// even instead (ONNX Runtime's requantization).
    pub float: Option<f32>,
}

impl Requant {
    /// Encodes `real` (which must be finite and >= 0) like TFLite's `QuantizeMultiplier`.
    pub fn from_real(real: f64) -> Self {
        let (multiplier, shift) = quantize_multiplier(real);
        Requant {
            multiplier,
            shift,
            float: None,
        }
    }

    /// A float-scale requantization (the fixed-point fields hold the nearest
    /// Q31 encoding, for display only).
    pub fn from_f32(scale: f32) -> Self {
        Requant {
            float: Some(scale),
            ..Self::from_real(scale as f64)
        }
    }

    /// `x * real`, rounded like TFLite's `MultiplyByQuantizedMultiplier`, or
    /// for a float scale like ONNX Runtime: `x` converted to f32 (rounding to
    /// nearest even), times the scale in f32, rounded half to even.
    #[inline]
    pub fn apply(self, x: i32) -> i32 {
        match self.float {
            None => multiply_by_quantized_multiplier(x, self.multiplier, self.shift),
            Some(s) => round_half_even_i32(x as f32 * s),
        }
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

/// [`multiply_by_quantized_multiplier`] as one rounding step on the 64-bit
/// product, the form the SIMD epilogues use (see `Rq16` in the x86_64
/// kernels): with `x' = x << ls` and `rs = max(-shift, 0)`,
/// `(x' M + 2^30 + 2^(30+rs) - [rs > 0][x' M < 0] 2^31) >> (31 + rs)`.
/// Equal to the two-step form for every `x` and every `multiplier >= 0`
/// (test `single_shift_equals_two_roundings`).
#[inline]
pub fn multiply_by_quantized_multiplier_single_shift(x: i32, multiplier: i32, shift: i32) -> i32 {
    let ls = if shift > 0 { shift } else { 0 };
    let rs = if shift > 0 { 0 } else { -shift } as u32;
    let p = x.wrapping_mul(1i32.wrapping_shl(ls as u32)) as i64 * multiplier as i64;
    let k = (1i64 << 30) + (((1i64 << rs) >> 1) << 31);
    let corr = if rs > 0 && p < 0 { 1i64 << 31 } else { 0 };
    ((p + k - corr) >> (31 + rs)) as i32
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

/// Quantizes one real value like ONNX's QuantizeLinear in ONNX Runtime:
/// `clamp(round_half_even(x / scale) + zero_point)`, the division in f32.
#[inline]
pub fn quantize_i8_half_even(x: f32, q: QParams) -> i8 {
    let v = round_half_even_i32(x / q.scale).saturating_add(q.zero_point);
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
        self.range_i8_rounded(q, Rounding::FixedPoint)
    }

    /// [`Activation::range_i8`], the bounds quantized with `rounding`'s rule
    /// (half to even for [`Rounding::Float`], as a Clip before a
    /// QuantizeLinear would be).
    pub fn range_i8_rounded(self, q: QParams, rounding: Rounding) -> (i32, i32) {
        let (qmin, qmax) = (-128i32, 127i32);
        let quantize = |f: f32| {
            let steps = if rounding.is_float() {
                round_half_even_i32(f / q.scale)
            } else {
                round_f32(f / q.scale) as i32
            };
            q.zero_point.saturating_add(steps)
        };
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
    fn single_shift_equals_two_roundings() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let xs_edge = [
            0,
            1,
            -1,
            2,
            -2,
            i32::MAX,
            i32::MIN,
            i32::MIN + 1,
            1 << 30,
            -(1 << 30),
        ];
        let ms_edge = [0, 1, (1 << 30) - 1, 1 << 30, (1 << 30) + 1, i32::MAX];
        for shift in -31..=8 {
            for &m in &ms_edge {
                for &x in &xs_edge {
                    assert_eq!(
                        multiply_by_quantized_multiplier_single_shift(x, m, shift),
                        multiply_by_quantized_multiplier(x, m, shift),
                        "x {x} m {m} shift {shift}"
                    );
                }
            }
            for _ in 0..20_000 {
                let r = next();
                let m = (r >> 33) as i32 & i32::MAX;
                // Mostly accumulator-sized values, some anywhere in i32; values
                // near a rounding boundary of the result come up often.
                let x = match r % 4 {
                    0 => (next() as i32) >> ((r >> 8) % 32),
                    1 => next() as i32,
                    _ => {
                        // x M / 2^(31 + rs) just around a half-integer.
                        let rs = (-shift).max(0);
                        let q = ((next() as i32) >> 24) as i128;
                        let v = ((2 * q + 1) << (30 + rs)) / (m.max(1) as i128);
                        (v + (next() % 5) as i128 - 2).clamp(i32::MIN as i128, i32::MAX as i128)
                            as i32
                    }
                };
                let want = multiply_by_quantized_multiplier(x, m, shift);
                assert_eq!(
                    multiply_by_quantized_multiplier_single_shift(x, m, shift),
                    want,
                    "x {x} m {m} shift {shift}"
                );
                if shift <= -1 {
                    // The right-shift-only split of the SIMD epilogues: the
                    // high half of the 64-bit sum, then rs - 1 more bits; and
                    // without the sign correction, still <= 0 where x M < 0
                    // (all a ReLU-clamped layer needs).
                    let rs = -shift;
                    let p = x as i64 * m as i64;
                    let k = (1i64 << 30) + (1i64 << (30 + rs));
                    let corr = if p < 0 { 1i64 << 31 } else { 0 };
                    let high = |t: i64| ((t >> 32) as i32) >> (rs - 1);
                    assert_eq!(high(p + k - corr), want, "x {x} m {m} shift {shift}");
                    if p < 0 {
                        assert!(high(p + k) <= 0, "x {x} m {m} shift {shift}");
                    } else {
                        assert_eq!(high(p + k), want, "x {x} m {m} shift {shift}");
                    }
                }
            }
        }
    }

    #[test]
    fn float_requant_rounds_half_to_even() {
        let r = Requant::from_f32(0.5);
        // 1.5 -> 2, 2.5 -> 2, -1.5 -> -2, -2.5 -> -2 (TFLite would give 3 and -3 for +-2.5).
        assert_eq!([3, 5, -3, -5, 7].map(|x| r.apply(x)), [2, 2, -2, -2, 4]);
        assert_eq!(Requant::from_real(0.5).apply(5), 3);
        // The product is an f32 one: 5 * 0.1f32 is 0.50000000745 in f64
        // (which would round to 1) but exactly 0.5 in f32, a tie, so 0.
        assert_eq!(Requant::from_f32(0.1).apply(5), 0);
        // Huge products saturate far outside any int8 code instead of wrapping.
        assert_eq!(Requant::from_f32(1e30).apply(i32::MAX), 1 << 22);
        assert_eq!(Requant::from_f32(1e30).apply(-7), -(1 << 22));
        // Every half-integer up to the clamp, and the integers, exactly.
        for i in -(1 << 21)..(1 << 21) {
            let want = if i % 2 == 0 { i } else { i + 1 }; // (i + 0.5) -> even
            assert_eq!(round_half_even_i32(i as f32 + 0.5), want, "{i}.5");
            assert_eq!(round_half_even_i32(i as f32), i);
        }
        assert_eq!(round_half_even_i32(f32::NAN), 0);
        assert_eq!(round_half_even_i32(f32::INFINITY), 1 << 22);
    }

    #[test]
    fn rounding_flags_round_trip() {
        for r in [
            Rounding::FixedPoint,
            Rounding::Float { uint8: false },
            Rounding::Float { uint8: true },
        ] {
            assert_eq!(Rounding::from_flags(r.flags()), Some(r));
        }
        assert_eq!(Rounding::from_flags(Rounding::FLAG_UINT8), None);
        assert_eq!(Rounding::from_flags(4), None);
    }

    #[test]
    fn half_even_quantize_and_activation_range() {
        let q = QParams {
            scale: 0.5,
            zero_point: 0,
        };
        assert_eq!(quantize_i8_half_even(1.25, q), 2);
        assert_eq!(quantize_i8(1.25, q), 3);
        assert_eq!(quantize_i8_half_even(-1.25, q), -2);
        // RELU6 with 6 / 0.5 = 12 exactly either way; 2.5 steps differ.
        let q = QParams {
            scale: 2.4,
            zero_point: 0,
        };
        assert_eq!(Activation::Relu6.range_i8(q), (0, 3));
        assert_eq!(
            Activation::Relu6.range_i8_rounded(q, Rounding::Float { uint8: false }),
            (0, 2)
        );
    }

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
