//! RESIZE_BILINEAR (f32, int8) and RESIZE_NEAREST_NEIGHBOR (any dtype).
//!
//! Tensors are NHWC; shapes are passed as `[n, h, w, c]` and the batch and
//! channel counts of input and output are equal. `align_corners` maps the
//! corner pixels of input and output onto each other (scale
//! `(in - 1) / (out - 1)`); `half_pixel_centers` samples at pixel centres
//! (`(x + 0.5)·scale - 0.5`). TFLite rejects both flags together for
//! bilinear; the op layer does too.
//!
//! The arithmetic follows TFLite's reference kernels exactly
//! (`reference_ops::ResizeBilinear` for f32, `ResizeBilinearInteger` for int8,
//! which is what `resize_bilinear.cc` runs for int8 with the reference
//! resolver, and `ResizeNearestNeighbor`), including the order of the f32
//! operations, so results are bit-identical wherever TFLite reads in bounds.
//! int8 uses the raw integers: input and output share quantization
//! parameters, as TFLite requires.

/// f32 source coordinate and the two neighbouring input indices, like
/// TFLite's `ComputeInterpolationValues`.
///
/// TFLite only clamps `lower` from below; it never exceeds `input_size - 1`
/// for the scales TFLite computes, and the upper clamp here only keeps that
/// true under any rounding.
#[inline]
fn interpolation_f32(
    value: usize,
    scale: f32,
    half_pixel_centers: bool,
    input_size: usize,
) -> (f32, usize, usize) {
    let value = value as f32;
    let scaled = if half_pixel_centers {
        (value + 0.5) * scale - 0.5
    } else {
        value * scale
    };
    let last = input_size as i64 - 1;
    let lower = (libm::floorf(scaled) as i64).max(0).min(last);
    let upper = (libm::ceilf(scaled) as i64).min(last).max(0);
    (scaled, lower as usize, upper as usize)
}

/// The f32 scale TFLite uses along one axis.
#[inline]
fn scale_f32(in_size: usize, out_size: usize, align_corners: bool) -> f32 {
    if align_corners && out_size > 1 {
        (in_size - 1) as f32 / (out_size - 1) as f32
    } else {
        in_size as f32 / out_size as f32
    }
}

/// RESIZE_BILINEAR for f32, as TFLite's `reference_ops::ResizeBilinear`.
///
/// `input` has shape `in_shape`, `output` has shape `out_shape`; batch and
/// channels match, all sizes are positive, and not both flags are set.
pub fn resize_bilinear_f32(
    input: &[f32],
    in_shape: [usize; 4],
    output: &mut [f32],
    out_shape: [usize; 4],
    align_corners: bool,
    half_pixel_centers: bool,
) {
    let [batches, in_h, in_w, depth] = in_shape;
    let [_, out_h, out_w, _] = out_shape;
    debug_assert!(in_shape[0] == out_shape[0] && in_shape[3] == out_shape[3]);
    debug_assert!(!(align_corners && half_pixel_centers));
    debug_assert_eq!(input.len(), in_shape.iter().product::<usize>());
    debug_assert_eq!(output.len(), out_shape.iter().product::<usize>());
    let height_scale = scale_f32(in_h, out_h, align_corners);
    let width_scale = scale_f32(in_w, out_w, align_corners);
    let at = |b: usize, y: usize, x: usize| ((b * in_h + y) * in_w + x) * depth;
    let mut out = output.chunks_exact_mut(depth.max(1));
    for b in 0..batches {
        for y in 0..out_h {
            let (in_y, y0, y1) = interpolation_f32(y, height_scale, half_pixel_centers, in_h);
            let dy = in_y - y0 as f32;
            for x in 0..out_w {
                let (in_x, x0, x1) = interpolation_f32(x, width_scale, half_pixel_centers, in_w);
                let dx = in_x - x0 as f32;
                let (p00, p10, p01, p11) =
                    (at(b, y0, x0), at(b, y1, x0), at(b, y0, x1), at(b, y1, x1));
                let Some(pixel) = out.next() else { return };
                for (c, o) in pixel.iter_mut().enumerate() {
                    // Same products and sum order as TFLite.
                    *o = input[p00 + c] * (1.0 - dy) * (1.0 - dx)
                        + input[p10 + c] * dy * (1.0 - dx)
                        + input[p01 + c] * (1.0 - dy) * dx
                        + input[p11 + c] * dy * dx;
                }
            }
        }
    }
}

/// The Q10 scale TFLite's `ResizeBilinearInteger` uses along one axis:
/// `in / out` (or `(in - 1) / (out - 1)` with `align_corners`) times 1024,
/// rounded half up.
#[inline]
fn scale_q10(in_size: usize, out_size: usize, align_corners: bool) -> i64 {
    let (num, den) = if align_corners && out_size > 1 {
        (in_size as i64 - 1, out_size as i64 - 1)
    } else {
        (in_size as i64, out_size as i64)
    };
    ((1 << 10) * num + den / 2) / den
}

/// Q10 source coordinate and the two neighbouring input indices, like
/// TFLite's `ComputeInterpolationValuesInteger` (C++ division truncates
/// toward zero, as Rust's does).
///
/// TFLite does not clamp `lower` from above; for extreme upscales (for
/// example 1 → 2047 pixels) its rounded Q10 scale overshoots and it reads
/// past the input. Clamping here keeps the read in bounds and, because
/// `lower == upper` then, still yields the edge pixel.
#[inline]
fn interpolation_q10(
    value: usize,
    scale_10: i64,
    half_pixel_centers: bool,
    input_size: usize,
) -> (i64, usize, usize) {
    let value = value as i64;
    let scaled = if half_pixel_centers {
        value * scale_10 + scale_10 / 2 - (1 << 9)
    } else {
        value * scale_10
    };
    let last = input_size as i64 - 1;
    let lower = (scaled / (1 << 10)).max(0).min(last);
    let upper = ((scaled + (1 << 10) - 1) / (1 << 10)).min(last).max(0);
    (scaled, lower as usize, upper as usize)
}

/// RESIZE_BILINEAR for int8, bit-identical to TFLite's
/// `reference_ops::ResizeBilinearInteger` (default rounding, not
/// `TFLITE_SINGLE_ROUNDING`): Q10 coordinates, a Q20 weighted sum in i64,
/// rounded half away from zero.
///
/// Same shape contract as [`resize_bilinear_f32`]. Input and output share
/// quantization parameters, so no requantization happens.
pub fn resize_bilinear_i8(
    input: &[i8],
    in_shape: [usize; 4],
    output: &mut [i8],
    out_shape: [usize; 4],
    align_corners: bool,
    half_pixel_centers: bool,
) {
    let [batches, in_h, in_w, depth] = in_shape;
    let [_, out_h, out_w, _] = out_shape;
    debug_assert!(in_shape[0] == out_shape[0] && in_shape[3] == out_shape[3]);
    debug_assert!(!(align_corners && half_pixel_centers));
    debug_assert_eq!(input.len(), in_shape.iter().product::<usize>());
    debug_assert_eq!(output.len(), out_shape.iter().product::<usize>());
    const ONE: i64 = 1 << 10;
    let height_scale = scale_q10(in_h, out_h, align_corners);
    let width_scale = scale_q10(in_w, out_w, align_corners);
    let at = |b: usize, y: usize, x: usize| ((b * in_h + y) * in_w + x) * depth;
    let mut out = output.chunks_exact_mut(depth.max(1));
    for b in 0..batches {
        for y in 0..out_h {
            let (in_y, y0, y1) = interpolation_q10(y, height_scale, half_pixel_centers, in_h);
            // Weights of the lower and upper row, in Q10 (TFLite's
            // `input_y - (1 << 10) * y0` and its complement).
            let wy1 = in_y - ONE * y0 as i64;
            let wy0 = ONE - wy1;
            for x in 0..out_w {
                let (in_x, x0, x1) = interpolation_q10(x, width_scale, half_pixel_centers, in_w);
                let wx1 = in_x - ONE * x0 as i64;
                let wx0 = ONE - wx1;
                let (p00, p10, p01, p11) =
                    (at(b, y0, x0), at(b, y1, x0), at(b, y0, x1), at(b, y1, x1));
                let Some(pixel) = out.next() else { return };
                for (c, o) in pixel.iter_mut().enumerate() {
                    let sum_q20 = i64::from(input[p00 + c]) * wy0 * wx0
                        + i64::from(input[p10 + c]) * wy1 * wx0
                        + i64::from(input[p01 + c]) * wy0 * wx1
                        + i64::from(input[p11 + c]) * wy1 * wx1;
                    let round = if sum_q20 > 0 { 1 << 19 } else { -(1 << 19) };
                    // The weights form a convex combination, so the value is
                    // already in range; the clamp only documents that.
                    *o = ((sum_q20 + round) / (1 << 20)).clamp(-128, 127) as i8;
                }
            }
        }
    }
}

/// The input index TFLite's `GetNearestNeighbor` picks for output index
/// `value`: `floor((value + offset)·scale)` (or rounded half away from zero
/// with `align_corners`), capped at `input_size - 1`, where `offset` is 0.5
/// with `half_pixel_centers` and 0 otherwise, all in f32.
#[inline]
fn nearest_neighbor(
    value: usize,
    input_size: usize,
    output_size: usize,
    align_corners: bool,
    half_pixel_centers: bool,
) -> usize {
    let scale = scale_f32(input_size, output_size, align_corners);
    let offset = if half_pixel_centers { 0.5f32 } else { 0.0 };
    let scaled = (value as f32 + offset) * scale;
    let index = if align_corners {
        libm::roundf(scaled)
    } else {
        libm::floorf(scaled)
    };
    // Non-negative by construction (TFLite clamps at 0 with half-pixel
    // centres, which cannot bite here); `as` saturates.
    (index as i64).clamp(0, input_size as i64 - 1) as usize
}

/// RESIZE_NEAREST_NEIGHBOR for any element type, as TFLite's
/// `reference_ops::ResizeNearestNeighbor`: each output pixel copies the
/// `depth` values of one input pixel.
///
/// Same shape contract as [`resize_bilinear_f32`]; here both flags may be set
/// together, as TFLite allows.
pub fn resize_nearest<T: Copy>(
    input: &[T],
    in_shape: [usize; 4],
    output: &mut [T],
    out_shape: [usize; 4],
    align_corners: bool,
    half_pixel_centers: bool,
) {
    let [batches, in_h, in_w, depth] = in_shape;
    let [_, out_h, out_w, _] = out_shape;
    debug_assert!(in_shape[0] == out_shape[0] && in_shape[3] == out_shape[3]);
    debug_assert_eq!(input.len(), in_shape.iter().product::<usize>());
    debug_assert_eq!(output.len(), out_shape.iter().product::<usize>());
    let mut out = output.chunks_exact_mut(depth.max(1));
    for b in 0..batches {
        for y in 0..out_h {
            let in_y = nearest_neighbor(y, in_h, out_h, align_corners, half_pixel_centers);
            for x in 0..out_w {
                let in_x = nearest_neighbor(x, in_w, out_w, align_corners, half_pixel_centers);
                let start = ((b * in_h + in_y) * in_w + in_x) * depth;
                let Some(pixel) = out.next() else { return };
                pixel.copy_from_slice(&input[start..start + depth]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A small deterministic generator (64-bit LCG), so tests need no crate.
    struct Lcg(u64);

    impl Lcg {
        fn next_u32(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) as u32
        }
        fn below(&mut self, n: usize) -> usize {
            self.next_u32() as usize % n
        }
        fn i8(&mut self) -> i8 {
            self.next_u32() as u8 as i8
        }
    }

    fn bilinear_f32(x: &[f32], i: [usize; 4], o: [usize; 4], ac: bool, hp: bool) -> Vec<f32> {
        let mut y = vec![f32::NAN; o.iter().product()];
        resize_bilinear_f32(x, i, &mut y, o, ac, hp);
        y
    }

    fn bilinear_i8(x: &[i8], i: [usize; 4], o: [usize; 4], ac: bool, hp: bool) -> Vec<i8> {
        let mut y = vec![0; o.iter().product()];
        resize_bilinear_i8(x, i, &mut y, o, ac, hp);
        y
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() <= 1e-5, "{got:?} vs {want:?}");
        }
    }

    fn nearest<T: Copy + Default>(
        x: &[T],
        i: [usize; 4],
        o: [usize; 4],
        ac: bool,
        hp: bool,
    ) -> Vec<T> {
        let mut y = vec![T::default(); o.iter().product()];
        resize_nearest(x, i, &mut y, o, ac, hp);
        y
    }

    #[test]
    fn bilinear_f32_upscale_2x2_to_3x3() {
        // TFLite's test: [[3, 6], [9, 12]] → 3x3 without flags.
        let y = bilinear_f32(
            &[3.0, 6.0, 9.0, 12.0],
            [1, 2, 2, 1],
            [1, 3, 3, 1],
            false,
            false,
        );
        assert_close(&y, &[3.0, 5.0, 6.0, 7.0, 9.0, 10.0, 9.0, 11.0, 12.0]);
    }

    #[test]
    fn bilinear_f32_align_corners() {
        // 1x2 → 1x3 with align_corners: [0, 0.5, 1] positions.
        let y = bilinear_f32(&[2.0, 4.0], [1, 1, 2, 1], [1, 1, 3, 1], true, false);
        assert_eq!(y, vec![2.0, 3.0, 4.0]);
        // TFLite's 2x2 → 3x3 align_corners case.
        let y = bilinear_f32(
            &[3.0, 6.0, 9.0, 12.0],
            [1, 2, 2, 1],
            [1, 3, 3, 1],
            true,
            false,
        );
        assert_eq!(y, vec![3.0, 4.5, 6.0, 6.0, 7.5, 9.0, 9.0, 10.5, 12.0]);
    }

    #[test]
    fn bilinear_f32_half_pixel_centers() {
        // TFLite's test: [[1, 2], [3, 4]] → 3x3 with half_pixel_centers.
        let y = bilinear_f32(
            &[1.0, 2.0, 3.0, 4.0],
            [1, 2, 2, 1],
            [1, 3, 3, 1],
            false,
            true,
        );
        assert_close(&y, &[1.0, 1.5, 2.0, 2.0, 2.5, 3.0, 3.0, 3.5, 4.0]);
        // 1x2 → 1x4: positions -0.25, 0.25, 0.75, 1.25 (clamped at both ends).
        let y = bilinear_f32(&[0.0, 8.0], [1, 1, 2, 1], [1, 1, 4, 1], false, true);
        assert_eq!(y, vec![0.0, 2.0, 6.0, 8.0]);
    }

    #[test]
    fn bilinear_f32_downscale_and_channels() {
        // 1x4 → 1x2 without flags samples at 0 and 2.
        let y = bilinear_f32(
            &[1.0, 2.0, 3.0, 4.0],
            [1, 1, 4, 1],
            [1, 1, 2, 1],
            false,
            false,
        );
        assert_eq!(y, vec![1.0, 3.0]);
        // With half_pixel_centers at 0.5 and 2.5.
        let y = bilinear_f32(
            &[1.0, 2.0, 3.0, 4.0],
            [1, 1, 4, 1],
            [1, 1, 2, 1],
            false,
            true,
        );
        assert_eq!(y, vec![1.5, 3.5]);
        // Two batches, two channels: channels and batches stay separate.
        let x = [1.0, -1.0, 3.0, -3.0, 10.0, -10.0, 30.0, -30.0];
        let y = bilinear_f32(&x, [2, 1, 2, 2], [2, 1, 4, 2], false, false);
        assert_eq!(
            y,
            vec![
                1.0, -1.0, 2.0, -2.0, 3.0, -3.0, 3.0, -3.0, 10.0, -10.0, 20.0, -20.0, 30.0, -30.0,
                30.0, -30.0
            ]
        );
    }

    #[test]
    fn bilinear_identity_size_is_identity() {
        let mut rng = Lcg(7);
        let shape = [2, 3, 5, 3];
        let x: Vec<i8> = (0..90).map(|_| rng.i8()).collect();
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        for (ac, hp) in [(false, false), (true, false), (false, true)] {
            assert_eq!(bilinear_i8(&x, shape, shape, ac, hp), x);
            assert_eq!(bilinear_f32(&xf, shape, shape, ac, hp), xf);
        }
    }

    #[test]
    fn bilinear_i8_hand_computed() {
        // [[3, 6], [9, 12]] → 3x3 without flags, as the f32 case: exact.
        let y = bilinear_i8(&[3, 6, 9, 12], [1, 2, 2, 1], [1, 3, 3, 1], false, false);
        // Q10 scale = (2048 + 1) / 3 = 683, so x = 1 samples at 683/1024:
        // 3·341/1024 + 6·683/1024 = 4.999 → 5; x = 2 at 1366 → clamps to 6.
        assert_eq!(y, vec![3, 5, 6, 7, 9, 10, 9, 11, 12]);
        // Rounding half away from zero on negative values: -1 and -2 mixed
        // half-half is -1.5 → -2; 1 and 2 → 1.5 → 2.
        let y = bilinear_i8(&[-1, -2], [1, 1, 2, 1], [1, 1, 4, 1], false, false);
        assert_eq!(y, vec![-1, -2, -2, -2]);
        let y = bilinear_i8(&[1, 2], [1, 1, 2, 1], [1, 1, 4, 1], false, false);
        assert_eq!(y, vec![1, 2, 2, 2]);
        // Extremes stay in range; the midpoint -0.5 rounds away from zero.
        let y = bilinear_i8(&[-128, 127], [1, 1, 2, 1], [1, 1, 5, 1], true, false);
        assert_eq!(y, vec![-128, -64, -1, 63, 127]);
    }

    #[test]
    fn bilinear_i8_matches_scalar_transcription_of_tflite() {
        // An independent, literal transcription of ResizeBilinearInteger with
        // i32 index math as in C++, compared on random shapes and flags.
        fn tflite(x: &[i8], i: [usize; 4], o: [usize; 4], ac: bool, hp: bool) -> Vec<i8> {
            let (ih, iw, oh, ow, d) = (
                i[1] as i32,
                i[2] as i32,
                o[1] as i32,
                o[2] as i32,
                i[3] as i32,
            );
            let mut hs = ((1 << 10) * ih + oh / 2) / oh;
            let mut ws = ((1 << 10) * iw + ow / 2) / ow;
            if ac && oh > 1 {
                hs = ((1 << 10) * (ih - 1) + (oh - 1) / 2) / (oh - 1);
            }
            if ac && ow > 1 {
                ws = ((1 << 10) * (iw - 1) + (ow - 1) / 2) / (ow - 1);
            }
            let civ = |v: i32, s: i32, n: i32| {
                let sv = if hp { v * s + s / 2 - (1 << 9) } else { v * s };
                (
                    sv,
                    (sv / (1 << 10)).max(0),
                    ((sv + (1 << 10) - 1) / (1 << 10)).min(n - 1),
                )
            };
            let px = |b: i32, y: i32, xx: i32, c: i32| {
                x[(((b * ih + y) * iw + xx) * d + c) as usize] as i64
            };
            let mut out = Vec::new();
            for b in 0..i[0] as i32 {
                for y in 0..oh {
                    let (iy, y0, y1) = civ(y, hs, ih);
                    for xx in 0..ow {
                        let (ix, x0, x1) = civ(xx, ws, iw);
                        for c in 0..d {
                            let ll = px(b, y0, x0, c)
                                * (1024 - (iy - 1024 * y0)) as i64
                                * (1024 - (ix - 1024 * x0)) as i64;
                            let lu = px(b, y1, x0, c)
                                * (iy - 1024 * y0) as i64
                                * (1024 - (ix - 1024 * x0)) as i64;
                            let rl = px(b, y0, x1, c)
                                * (1024 - (iy - 1024 * y0)) as i64
                                * (ix - 1024 * x0) as i64;
                            let ru = px(b, y1, x1, c)
                                * (iy - 1024 * y0) as i64
                                * (ix - 1024 * x0) as i64;
                            let s = ll + lu + rl + ru;
                            let r = if s > 0 { 1 << 19 } else { -(1 << 19) };
                            out.push(((s + r) / (1 << 20)) as i8);
                        }
                    }
                }
            }
            out
        }
        let mut rng = Lcg(42);
        for _ in 0..300 {
            let i = [
                1 + rng.below(2),
                1 + rng.below(7),
                1 + rng.below(7),
                1 + rng.below(3),
            ];
            let o = [i[0], 1 + rng.below(13), 1 + rng.below(13), i[3]];
            let (ac, hp) = [(false, false), (true, false), (false, true)][rng.below(3)];
            let x: Vec<i8> = (0..i.iter().product()).map(|_| rng.i8()).collect();
            assert_eq!(
                bilinear_i8(&x, i, o, ac, hp),
                tflite(&x, i, o, ac, hp),
                "{i:?} → {o:?} ac={ac} hp={hp}"
            );
        }
    }

    #[test]
    fn bilinear_i8_agrees_with_f32() {
        // The int8 kernel interpolates raw values with a Q10 grid; it should
        // stay within a couple of steps of f32 on the same integers (exactly
        // 1 step of rounding when the Q10 scale is exact, as for 2x).
        let mut rng = Lcg(3);
        for trial in 0..200 {
            let i = [1, 1 + rng.below(6), 1 + rng.below(6), 2];
            let exact = trial % 2 == 0;
            let o = if exact {
                [1, 2 * i[1], 2 * i[2], 2]
            } else {
                [1, 1 + rng.below(12), 1 + rng.below(12), 2]
            };
            let (ac, hp) = if exact {
                [(false, false), (false, true)][rng.below(2)]
            } else {
                [(false, false), (true, false), (false, true)][rng.below(3)]
            };
            let x: Vec<i8> = (0..i.iter().product()).map(|_| rng.i8()).collect();
            let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let q = bilinear_i8(&x, i, o, ac, hp);
            let f = bilinear_f32(&xf, i, o, ac, hp);
            let tol = if exact { 0.5001 } else { 2.5 };
            for (a, b) in q.iter().zip(&f) {
                assert!(
                    (*a as f32 - b).abs() <= tol,
                    "{i:?} → {o:?} ac={ac} hp={hp}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn bilinear_i8_extreme_upscale_stays_in_bounds() {
        // 1 → 2047: TFLite's Q10 scale rounds to 1/1024 and would index past
        // the single input pixel; every output must be that pixel.
        let y = bilinear_i8(&[-7], [1, 1, 1, 1], [1, 1, 2047, 1], false, false);
        assert!(y.iter().all(|&v| v == -7));
    }

    #[test]
    fn nearest_upscale_without_flags() {
        // TFLite's test: [[3, 6], [9, 12]] → 3x3.
        let y = nearest(&[3, 6, 9, 12], [1, 2, 2, 1], [1, 3, 3, 1], false, false);
        assert_eq!(y, vec![3, 3, 6, 3, 3, 6, 9, 9, 12]);
    }

    #[test]
    fn nearest_align_corners_rounds() {
        // TFLite's test: 2x2 → 3x3 with align_corners; 0.5 rounds away from zero.
        let y = nearest(
            &[3.0f32, 6.0, 9.0, 12.0],
            [1, 2, 2, 1],
            [1, 3, 3, 1],
            true,
            false,
        );
        assert_eq!(y, vec![3.0, 6.0, 6.0, 9.0, 12.0, 12.0, 9.0, 12.0, 12.0]);
    }

    #[test]
    fn nearest_half_pixel_centers() {
        // TFLite's test: 2x2 → 3x3 with half_pixel_centers.
        let y = nearest(&[3i8, 6, 9, 12], [1, 2, 2, 1], [1, 3, 3, 1], false, true);
        assert_eq!(y, vec![3, 6, 6, 9, 12, 12, 9, 12, 12]);
        // Both flags together (TFLite allows it for nearest). 1x4 → 1x2 with
        // scale 3: x = 0 → round(1.5) = 2, x = 1 → round(4.5) = 5, capped at 3.
        let y = nearest(&[10u8, 20, 30, 40], [1, 1, 4, 1], [1, 1, 2, 1], true, true);
        assert_eq!(y, vec![30, 40]);
    }

    #[test]
    fn nearest_downscale_and_channels() {
        // 1x4 → 1x2 picks columns 0 and 2; with half pixels, 1 and 3.
        let x = [1, -1, 2, -2, 3, -3, 4, -4];
        assert_eq!(
            nearest(&x, [1, 1, 4, 2], [1, 1, 2, 2], false, false),
            vec![1, -1, 3, -3]
        );
        assert_eq!(
            nearest(&x, [1, 1, 4, 2], [1, 1, 2, 2], false, true),
            vec![2, -2, 4, -4]
        );
        // Two batches stay separate.
        let x = [1, 2, 3, 4];
        assert_eq!(
            nearest(&x, [2, 1, 2, 1], [2, 1, 1, 1], false, false),
            vec![1, 3]
        );
    }
}
