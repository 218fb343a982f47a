//! gemmlowp's fixed-point arithmetic, as TFLite's reference kernels use it.
//!
//! A Q-format value is an `i32` raw integer plus a number of integer bits `m`
//! (not counting the sign bit): `real = raw / 2^(31 - m)`. gemmlowp encodes
//! `m` in the type (`FixedPoint<int32_t, m>`); here it is a plain argument
//! and the functions work on raw values. Multiplying two Q values is
//! [`saturating_rounding_doubling_high_mul`] of their raws, and the integer
//! bits of the result are the sum of both.
//!
//! Everything here follows `fixedpoint/fixedpoint.h` of gemmlowp and
//! `GetReciprocal` of TFLite's `kernels/internal/common.h` bit for bit,
//! including the wrapping of plain (non-saturating) additions, which C++
//! leaves undefined but every TFLite build performs as two's-complement.
//! The 16-bit variants serve the int8 `HARD_SWISH` reference.

use crate::quant::{rounding_divide_by_pot, saturating_rounding_doubling_high_mul};

/// gemmlowp's `RoundingHalfSum` for `i32`: `(a + b) / 2`, rounded half away from zero.
#[inline]
pub fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// gemmlowp's `SaturatingRoundingMultiplyByPOT`: `x * 2^exponent`, saturating
/// to the `i32` range when `exponent > 0` and rounding half away from zero
/// when `exponent < 0`. `exponent` must lie in `-31..=31`.
#[inline]
pub fn saturating_rounding_multiply_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((-31..=31).contains(&exponent));
    if exponent > 0 {
        let threshold = ((1i64 << (31 - exponent)) - 1) as i32;
        if x > threshold {
            i32::MAX
        } else if x < -threshold {
            i32::MIN
        } else {
            x << exponent
        }
    } else if exponent < 0 {
        rounding_divide_by_pot(x, -exponent)
    } else {
        x
    }
}

/// gemmlowp's `Rescale`: converts a raw Q value with `src_integer_bits`
/// integer bits to one with `dst_integer_bits`.
#[inline]
pub fn rescale(x: i32, src_integer_bits: i32, dst_integer_bits: i32) -> i32 {
    saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)
}

/// `exp(a)` for a Q0.31 `a` in `[-1/4, 0)`, returned in Q0.31 (gemmlowp's
/// `exp_on_interval_between_negative_one_quarter_and_0_excl`: a fourth-order
/// Taylor expansion around -1/8).
pub fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const EXP_MINUS_ONE_EIGHTH: i32 = 1_895_147_668;
    const ONE_THIRD: i32 = 715_827_883;
    let mul = saturating_rounding_doubling_high_mul;
    // x = a + 1/8; in Q0.31, 1/8 is 1 << 28.
    let x = a.wrapping_add(1 << 28);
    let x2 = mul(x, x);
    let x3 = mul(x2, x);
    let x4 = mul(x2, x2);
    let x4_over_4 = rounding_divide_by_pot(x4, 2);
    let x4_over_24_plus_x3_over_6_plus_x2_over_2 = rounding_divide_by_pot(
        mul(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2),
        1,
    );
    EXP_MINUS_ONE_EIGHTH.wrapping_add(mul(
        EXP_MINUS_ONE_EIGHTH,
        x.wrapping_add(x4_over_24_plus_x3_over_6_plus_x2_over_2),
    ))
}

/// `exp(a)` for a raw Q value `a <= 0` with `integer_bits` integer bits
/// (`0..=29`), returned in Q0.31 (gemmlowp's `exp_on_negative_values`).
/// `exp(0)` is the largest Q0.31 value, `i32::MAX`.
pub fn exp_on_negative_values(a: i32, integer_bits: i32) -> i32 {
    debug_assert!((0..=29).contains(&integer_bits));
    let fractional_bits = 31 - integer_bits;
    let one_quarter = 1i32 << (fractional_bits - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(rescale(
        a_mod_quarter_minus_one_quarter,
        integer_bits,
        0,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);

    // Multiply in exp(-2^e) for every bit e of the remainder (a barrel shifter).
    const EXP_OF_MINUS_POT: [(i32, i32); 7] = [
        (-2, 1_672_461_947), // exp(-1/4)
        (-1, 1_302_514_674), // exp(-1/2)
        (0, 790_015_084),    // exp(-1)
        (1, 290_630_308),    // exp(-2)
        (2, 39_332_535),     // exp(-4)
        (3, 720_401),        // exp(-8)
        (4, 242),            // exp(-16)
    ];
    for (exponent, multiplier) in EXP_OF_MINUS_POT {
        if integer_bits > exponent {
            let bit = 1i32 << (fractional_bits + exponent);
            if remainder & bit != 0 {
                result = saturating_rounding_doubling_high_mul(result, multiplier);
            }
        }
    }

    if integer_bits > 5 {
        // Below -32 the result is zero (the barrel shifter stops at exp(-16)).
        let clamp = -(1i32 << (36 - integer_bits));
        if a < clamp {
            result = 0;
        }
    }
    if a == 0 {
        result = i32::MAX;
    }
    result
}

/// `1 / (1 + a)` for a Q0.31 `a` in `[0, 1)`, returned in Q0.31 (gemmlowp's
/// `one_over_one_plus_x_for_x_in_0_1`: three Newton-Raphson steps).
pub fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    const FORTY_EIGHT_OVER_17_Q2: i32 = 1_515_870_810;
    const MINUS_THIRTY_TWO_OVER_17_Q2: i32 = -1_010_580_540;
    const ONE_Q2: i32 = 1 << 29;
    let mul = saturating_rounding_doubling_high_mul;
    // Q0.31 value of (1 + a) / 2.
    let half_denominator = rounding_half_sum(a, i32::MAX);
    // Q0 * Q2 -> Q2.
    let mut x =
        FORTY_EIGHT_OVER_17_Q2.wrapping_add(mul(half_denominator, MINUS_THIRTY_TWO_OVER_17_Q2));
    for _ in 0..3 {
        let half_denominator_times_x = mul(half_denominator, x);
        let one_minus_half_denominator_times_x = ONE_Q2.wrapping_sub(half_denominator_times_x);
        // Q2 * Q2 -> Q4, rescaled back to Q2.
        x = x.wrapping_add(rescale(mul(x, one_minus_half_denominator_times_x), 4, 2));
    }
    // x / 2 is exact by reinterpreting Q2 as Q1; then rescale Q1 to Q0.
    rescale(x, 1, 0)
}

/// TFLite's `GetReciprocal`: for a positive raw `x` with `x_integer_digits`
/// integer bits, returns `(scale, num_bits_over_unit)` such that
/// `1 / x ≈ scale / 2^31 / 2^num_bits_over_unit`, with `scale` in Q0.31.
pub fn get_reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    debug_assert!(x > 0);
    let headroom_plus_one = (x as u32).leading_zeros() as i32;
    let num_bits_over_unit = x_integer_digits - headroom_plus_one;
    let shifted_sum_minus_one = ((x as u32) << headroom_plus_one).wrapping_sub(1u32 << 31) as i32;
    (
        one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one),
        num_bits_over_unit,
    )
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul` for `i16` (ARM `SQRDMULH`).
#[inline]
pub fn saturating_rounding_doubling_high_mul_i16(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    let ab = a as i32 * b as i32;
    let nudge = if ab >= 0 { 1 << 14 } else { 1 - (1 << 14) };
    // Truncating division, as in C++.
    ((ab + nudge) / (1 << 15)) as i16
}

/// TFLite's `SaturatingDoublingHighMul` for `i16` (ARM `SQDMULH`): like
/// [`saturating_rounding_doubling_high_mul_i16`] but rounding toward zero.
#[inline]
pub fn saturating_doubling_high_mul_i16(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    ((a as i32 * b as i32) / (1 << 15)) as i16
}

/// gemmlowp's `RoundingDivideByPOT` instantiated for `i16`: `x / 2^exponent`
/// rounded half away from zero, `exponent` in `0..=31`. Like the C++
/// template, the mask is truncated to 16 bits, which only matters for
/// exponents of 16 and more.
#[inline]
pub fn rounding_divide_by_pot_i16(x: i16, exponent: i32) -> i16 {
    debug_assert!((0..=31).contains(&exponent));
    let mask = ((1i64 << exponent) - 1) as i16;
    let remainder = x & mask;
    let threshold = ((mask >> 1) as i32 + i32::from(x < 0)) as i16;
    let shifted = ((x as i32) >> exponent) as i16;
    (shifted as i32 + i32::from(remainder > threshold)) as i16
}

/// TFLite's `SaturatingLeftShift` for `i16` (used by the int8 `HARD_SWISH`):
/// `value * 2^amount`, clamped to the `i16` range. `amount` in `0..=31`.
#[inline]
pub fn saturating_left_shift_i16(value: i16, amount: i32) -> i16 {
    debug_assert!((0..=31).contains(&amount));
    let result = value as i64 * (1i64 << amount);
    result.clamp(i16::MIN as i64, i16::MAX as i64) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(x: f64, integer_bits: i32) -> i32 {
        (x * (1u64 << (31 - integer_bits)) as f64).round() as i32
    }

    fn real(raw: i32, integer_bits: i32) -> f64 {
        raw as f64 / (1u64 << (31 - integer_bits)) as f64
    }

    #[test]
    fn rounding_half_sum_rounds_away_from_zero() {
        assert_eq!(rounding_half_sum(1, 2), 2);
        assert_eq!(rounding_half_sum(-1, -2), -2);
        assert_eq!(rounding_half_sum(i32::MAX, i32::MAX), i32::MAX);
        assert_eq!(rounding_half_sum(0, i32::MAX), 1 << 30);
    }

    #[test]
    fn multiply_by_pot_saturates_left_and_rounds_right() {
        assert_eq!(saturating_rounding_multiply_by_pot(3, 2), 12);
        assert_eq!(saturating_rounding_multiply_by_pot(1 << 29, 2), i32::MAX);
        assert_eq!(
            saturating_rounding_multiply_by_pot(-(1 << 29) - 1, 2),
            i32::MIN
        );
        assert_eq!(saturating_rounding_multiply_by_pot(6, -2), 2);
        assert_eq!(saturating_rounding_multiply_by_pot(-6, -2), -2);
        assert_eq!(saturating_rounding_multiply_by_pot(7, 0), 7);
    }

    #[test]
    fn exp_matches_float_within_a_few_ulps() {
        for i in 0..=400 {
            let x = -(i as f64) * 0.04; // 0 .. -16
            let raw = q(x, 5);
            let got = real(exp_on_negative_values(raw, 5), 0);
            let want = real(raw, 5).exp();
            assert!(
                (got - want).abs() < 2e-8 + 1e-6 * want,
                "exp({x}) = {got}, want {want}"
            );
        }
        assert_eq!(exp_on_negative_values(0, 5), i32::MAX);
    }

    #[test]
    fn exp_known_values() {
        // exp(-1): the interval polynomial for exp(-1/4) times the
        // barrel-shifter constant for exp(-1/2) (2^-1 and 2^-2 bits of the
        // remainder); close to round(exp(-1) * 2^31) = 790015085.
        let e1 = exp_on_negative_values(-(1 << 26), 5);
        assert!((e1 - 790_015_085).abs() < 400, "{e1}");
        // The barrel shifter alone: exp(-1/4 - 1/4) has the same interval part
        // as exp(-1/4), times exp(-1/4).
        let quarter = exp_on_negative_values(-(1 << 24), 5);
        let half = exp_on_negative_values(-(1 << 25), 5);
        assert_eq!(
            half,
            saturating_rounding_doubling_high_mul(quarter, 1_672_461_947)
        );
        // Large integer-bit formats clamp below -32.
        assert_eq!(exp_on_negative_values(q(-40.0, 12), 12), 0);
    }

    #[test]
    fn one_over_one_plus_x_is_accurate() {
        for i in 0..100 {
            let x = i as f64 / 100.0;
            let got = real(one_over_one_plus_x_for_x_in_0_1(q(x, 0)), 0);
            assert!((got - 1.0 / (1.0 + x)).abs() < 1e-8, "1/(1+{x}) = {got}");
        }
    }

    #[test]
    fn reciprocal_of_q12_values() {
        for &v in &[1.0f64, 1.25, 2.0, 3.0, 100.5, 1000.0] {
            let (scale, bits) = get_reciprocal(q(v, 12), 12);
            let got = real(scale, 0) / f64::powi(2.0, bits);
            assert!((got - 1.0 / v).abs() < 1e-8 / v, "1/{v} = {got}");
        }
        // x = 1.25: no extra power of two is needed.
        assert_eq!(get_reciprocal(q(1.25, 12), 12).1, 0);
    }

    #[test]
    fn int16_helpers() {
        assert_eq!(
            saturating_rounding_doubling_high_mul_i16(i16::MIN, i16::MIN),
            i16::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul_i16(16384, 16384),
            8192
        );
        // 3 * 16384 * 2 / 65536 = 1.5 -> rounds to 2 (away from zero), SQDMULH truncates.
        assert_eq!(saturating_rounding_doubling_high_mul_i16(3, 16384), 2);
        assert_eq!(saturating_rounding_doubling_high_mul_i16(-3, 16384), -1);
        assert_eq!(saturating_doubling_high_mul_i16(3, 16384), 1);
        assert_eq!(saturating_doubling_high_mul_i16(-3, 16384), -1);
        assert_eq!(rounding_divide_by_pot_i16(5, 1), 3);
        assert_eq!(rounding_divide_by_pot_i16(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot_i16(-4, 2), -1);
        assert_eq!(saturating_left_shift_i16(20000, 1), i16::MAX);
        assert_eq!(saturating_left_shift_i16(-20000, 1), i16::MIN);
        assert_eq!(saturating_left_shift_i16(100, 3), 800);
    }
}
