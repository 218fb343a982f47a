//! Reference kernels for MAX_POOL_2D, AVERAGE_POOL_2D and MEAN.
//!
//! Pooling is NHWC; a window position outside the input is padding and is
//! skipped (it neither counts towards an average nor competes for a maximum).
//! The int8 kernels are bit-identical to LiteRT's reference kernels as run by
//! the `BUILTIN_REF` op resolver of `ai-edge-litert` 2.3.0
//! (`reference_integer_ops::MaxPool` / `AveragePool`, and for int8 MEAN the
//! all-integer `reference_ops::QuantizedMeanOrSum`, which that version uses for
//! every axis set; older TensorFlow Lite releases special-cased 4-D H/W means
//! and equal input/output quantization).

use core::ops::Range;

use crate::kernels::reference::conv::{offset4, tflite_padding, Padding};
use crate::quant::{round_half_even_i32, QParams, Requant, Rounding};
use crate::types::{Shape, MAX_RANK};

/// Where a pooling window sits on the input: its size, strides and the
/// resolved top/left padding (dilation is always 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeometry {
    pub filter_h: usize,
    pub filter_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

impl PoolGeometry {
    /// The geometry and output `[out_h, out_w]` of a TFLite pooling op over an
    /// `in_hw` input (`ComputePaddingHeightWidth` with dilation 1). Strides
    /// must be at least 1.
    pub fn tflite(
        padding: Padding,
        in_hw: [usize; 2],
        filter_hw: [usize; 2],
        stride: [usize; 2],
    ) -> (Self, [usize; 2]) {
        let dim = |i: usize| tflite_padding(padding, in_hw[i], filter_hw[i], stride[i], 1);
        let ((out_h, pad_top), (out_w, pad_left)) = (dim(0), dim(1));
        let g = PoolGeometry {
            filter_h: filter_hw[0],
            filter_w: filter_hw[1],
            stride_h: stride[0],
            stride_w: stride[1],
            pad_top,
            pad_left,
        };
        (g, [out_h, out_w])
    }

    /// The input rows and columns covered by the window of output pixel
    /// `(oy, ox)`, clipped to the image (TFLite's `filter_{y,x}_{start,end}`).
    #[inline]
    fn window(
        &self,
        oy: usize,
        ox: usize,
        in_h: usize,
        in_w: usize,
    ) -> (Range<usize>, Range<usize>) {
        let clip = |out: usize, stride: usize, filter: usize, pad: usize, size: usize| {
            let start = (out * stride).saturating_sub(pad).min(size);
            let end = (out * stride + filter).saturating_sub(pad).min(size);
            start..end.max(start)
        };
        (
            clip(oy, self.stride_h, self.filter_h, self.pad_top, in_h),
            clip(ox, self.stride_w, self.filter_w, self.pad_left, in_w),
        )
    }
}

/// Runs `reduce` over the in-image window values (row by row) of every output
/// element of an NHWC pooling op.
fn pool<T: Copy, O>(
    g: &PoolGeometry,
    input: &[T],
    in_shape: [usize; 4],
    output: &mut [O],
    out_shape: [usize; 4],
    mut reduce: impl FnMut(&mut dyn Iterator<Item = T>) -> O,
) {
    debug_assert_eq!(input.len(), in_shape.iter().product::<usize>());
    debug_assert_eq!(output.len(), out_shape.iter().product::<usize>());
    debug_assert!(in_shape[0] == out_shape[0] && in_shape[3] == out_shape[3]);
    let [batches, in_h, in_w, depth] = in_shape;
    let [_, out_h, out_w, _] = out_shape;
    for b in 0..batches {
        for oy in 0..out_h {
            for ox in 0..out_w {
                let (rows, cols) = g.window(oy, ox, in_h, in_w);
                for c in 0..depth {
                    let mut values = rows.clone().flat_map(|iy| {
                        cols.clone()
                            .map(move |ix| input[offset4(&in_shape, b, iy, ix, c)])
                    });
                    output[offset4(&out_shape, b, oy, ox, c)] = reduce(&mut values);
                }
            }
        }
    }
}

/// Float MAX_POOL_2D (TFLite `reference_ops::MaxPool`): the window maximum,
/// clamped to `act`. A window entirely in padding yields `f32::MIN`, clamped.
pub fn max_pool_f32(
    g: &PoolGeometry,
    act: (f32, f32),
    input: &[f32],
    in_shape: [usize; 4],
    output: &mut [f32],
    out_shape: [usize; 4],
) {
    pool(g, input, in_shape, output, out_shape, |window| {
        let max = window.fold(f32::MIN, |max, v| if v > max { v } else { max });
        max.max(act.0).min(act.1)
    });
}

/// int8 MAX_POOL_2D, bit-identical to TFLite's `reference_integer_ops::MaxPool`:
/// the window maximum clamped to `[act_min, act_max]` (input and output share
/// quantization). A window entirely in padding yields `act_min`.
pub fn max_pool_i8(
    g: &PoolGeometry,
    act_min: i32,
    act_max: i32,
    input: &[i8],
    in_shape: [usize; 4],
    output: &mut [i8],
    out_shape: [usize; 4],
) {
    pool(g, input, in_shape, output, out_shape, |window| {
        let max = window.fold(i8::MIN, i8::max) as i32;
        max.clamp(act_min, act_max) as i8
    });
}

/// Float AVERAGE_POOL_2D (TFLite `reference_ops::AveragePool`): the sum of the
/// in-image window pixels divided by their count, clamped to `act`.
///
/// TFLite fails on a window with no pixel inside the image (only possible
/// with explicit pads of at least the filter size, which the op layer must
/// reject); such a window yields 0 here, clamped.
pub fn average_pool_f32(
    g: &PoolGeometry,
    act: (f32, f32),
    input: &[f32],
    in_shape: [usize; 4],
    output: &mut [f32],
    out_shape: [usize; 4],
) {
    pool(g, input, in_shape, output, out_shape, |window| {
        let (total, count) = window.fold((0.0f32, 0usize), |(t, n), v| (t + v, n + 1));
        let average = if count == 0 {
            0.0
        } else {
            total / count as f32
        };
        average.max(act.0).min(act.1)
    });
}

/// int8 AVERAGE_POOL_2D, bit-identical to TFLite's
/// `reference_integer_ops::AveragePool` (input and output share quantization):
/// the window sum divided by the pixel count, rounding half away from zero
/// (`(acc + n/2) / n` for `acc > 0`, `(acc - n/2) / n` otherwise, with C's
/// truncating division), clamped to `[act_min, act_max]`.
///
/// A window with no pixel inside the image yields 0, clamped (TFLite fails;
/// the op layer must reject such geometries).
pub fn average_pool_i8(
    g: &PoolGeometry,
    act_min: i32,
    act_max: i32,
    input: &[i8],
    in_shape: [usize; 4],
    output: &mut [i8],
    out_shape: [usize; 4],
) {
    pool(g, input, in_shape, output, out_shape, |window| {
        let (acc, count) = window.fold((0i64, 0i64), |(a, n), v| (a + v as i64, n + 1));
        let average = rounded_average(acc, count);
        average.clamp(act_min as i64, act_max as i64) as i8
    });
}

/// ONNX Runtime's int8 average pooling, for models with [`Rounding::Float`]
/// (what onnxruntime 1.32 computes for a QDQ AveragePool, fused into
/// `QLinearAveragePool` or not): each code dequantized in f32 as
/// `x_scale * (q - x_zero)`, summed in window order, divided by the pixel
/// count, then `round_half_even(avg / y_scale) + y_zero`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AvgPoolOrt {
    pub x_scale: f32,
    pub y_scale: f32,
    pub x_zero: i32,
    pub y_zero: i32,
}

impl AvgPoolOrt {
    pub fn new(x: QParams, y: QParams) -> Self {
        Self {
            x_scale: x.scale,
            y_scale: y.scale,
            x_zero: x.zero_point,
            y_zero: y.zero_point,
        }
    }
}

/// int8 AVERAGE_POOL_2D with ONNX Runtime's arithmetic ([`AvgPoolOrt`]),
/// clamped to `[act_min, act_max]`. An empty window yields the zero-point.
#[allow(clippy::too_many_arguments)]
pub fn average_pool_i8_ort(
    g: &PoolGeometry,
    p: &AvgPoolOrt,
    act_min: i32,
    act_max: i32,
    input: &[i8],
    in_shape: [usize; 4],
    output: &mut [i8],
    out_shape: [usize; 4],
) {
    pool(g, input, in_shape, output, out_shape, |window| {
        let (sum, count) = window.fold((0f32, 0u32), |(s, n), v| {
            (s + p.x_scale * (v as i32 - p.x_zero) as f32, n + 1)
        });
        let code = if count == 0 {
            p.y_zero
        } else {
            round_half_even_i32(sum / count as f32 / p.y_scale) + p.y_zero
        };
        code.clamp(act_min, act_max) as i8
    });
}

/// TFLite's integer average: `acc / count` rounded half away from zero, 0 for an empty window.
#[inline]
fn rounded_average(acc: i64, count: i64) -> i64 {
    if count == 0 {
        0
    } else if acc > 0 {
        (acc + count / 2) / count
    } else {
        (acc - count / 2) / count
    }
}

/// Which dimensions a reduction (MEAN) keeps and which it sums over, with the
/// input strides of each, resolved once at prepare time.
///
/// Output elements are numbered row-major over the kept dimensions, which is
/// the output layout both with and without `keep_dims`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReduceGeometry {
    kept: [(usize, usize); MAX_RANK],
    n_kept: usize,
    reduced: [(usize, usize); MAX_RANK],
    n_reduced: usize,
    is_reduced: [bool; MAX_RANK],
    in_dims: Shape,
}

impl ReduceGeometry {
    /// Resolves `axes` (negative values count from the end, duplicates are
    /// ignored, like TFLite's `ResolveAxis`) against an input of `in_dims`.
    /// `None` if an axis is out of range or the rank exceeds [`MAX_RANK`].
    pub fn new(in_dims: &[usize], axes: &[i32]) -> Option<Self> {
        let rank = in_dims.len();
        let in_shape = Shape::new(in_dims)?;
        let mut is_reduced = [false; MAX_RANK];
        for &a in axes {
            let a = if a < 0 { a + rank as i32 } else { a };
            if a < 0 || a as usize >= rank {
                return None;
            }
            is_reduced[a as usize] = true;
        }
        let mut g = ReduceGeometry {
            kept: [(1, 0); MAX_RANK],
            n_kept: 0,
            reduced: [(1, 0); MAX_RANK],
            n_reduced: 0,
            is_reduced,
            in_dims: in_shape,
        };
        let mut stride = 1usize;
        for d in (0..rank).rev() {
            let entry = (in_dims[d], stride);
            if is_reduced[d] {
                g.reduced[g.n_reduced] = entry;
                g.n_reduced += 1;
            } else {
                g.kept[g.n_kept] = entry;
                g.n_kept += 1;
            }
            stride = stride.checked_mul(in_dims[d])?;
        }
        // Collected innermost first; store outermost first.
        g.kept[..g.n_kept].reverse();
        g.reduced[..g.n_reduced].reverse();
        Some(g)
    }

    /// The output shape: reduced dimensions become 1 with `keep_dims`, and are
    /// dropped without it.
    pub fn output_shape(&self, keep_dims: bool) -> Shape {
        let mut dims = [0usize; MAX_RANK];
        let mut rank = 0;
        for (d, &size) in self.in_dims.dims().iter().enumerate() {
            if !self.is_reduced[d] {
                dims[rank] = size;
                rank += 1;
            } else if keep_dims {
                dims[rank] = 1;
                rank += 1;
            }
        }
        Shape::new(&dims[..rank]).unwrap_or_default()
    }

    /// Number of input elements summed into each output element.
    pub fn reduced_count(&self) -> usize {
        self.reduced[..self.n_reduced]
            .iter()
            .map(|&(d, _)| d)
            .product()
    }

    /// Number of output elements.
    pub fn output_count(&self) -> usize {
        self.kept[..self.n_kept].iter().map(|&(d, _)| d).product()
    }

    /// Input offset of the first element reduced into output element `out`.
    #[inline]
    fn base_offset(&self, mut out: usize) -> usize {
        let mut offset = 0;
        for &(dim, stride) in self.kept[..self.n_kept].iter().rev() {
            offset += (out % dim) * stride;
            out /= dim;
        }
        offset
    }

    /// Calls `f(offset)` for every input element reduced into the output
    /// element whose first element is at `base`, in increasing offset order.
    #[inline]
    fn for_each_reduced(&self, base: usize, mut f: impl FnMut(usize)) {
        let reduced = &self.reduced[..self.n_reduced];
        if reduced.iter().any(|&(d, _)| d == 0) {
            return;
        }
        let mut index = [0usize; MAX_RANK];
        loop {
            f(base
                + reduced
                    .iter()
                    .zip(&index)
                    .map(|(&(_, s), &i)| i * s)
                    .sum::<usize>());
            // Odometer increment, innermost dimension fastest.
            let mut d = reduced.len();
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                index[d] += 1;
                if index[d] < reduced[d].0 {
                    break;
                }
                index[d] = 0;
            }
        }
    }
}

/// Float MEAN over the axes of `g`: each output is the f32 sum of its reduced
/// elements (in input order) divided by their count. With no reduced element
/// (an empty input) the output is NaN, like TFLite.
pub fn mean_f32(g: &ReduceGeometry, input: &[f32], output: &mut [f32]) {
    debug_assert_eq!(input.len(), g.in_dims.numel());
    debug_assert_eq!(output.len(), g.output_count());
    let count = g.reduced_count();
    for (out, o) in output.iter_mut().enumerate() {
        let mut sum = 0.0f32;
        g.for_each_reduced(g.base_offset(out), |i| sum += input[i]);
        *o = if count == 0 {
            f32::NAN
        } else {
            sum / count as f32
        };
    }
}

/// Prepared int8 parameters of MEAN, following the TFLite reference resolver
/// (`PrepareMeanOrSum` + `reference_ops::QuantizedMeanOrSum`): the
/// `input_scale / output_scale` multiplier (in `f64`) with the division by the
/// reduced element count folded into it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanI8Params {
    /// `input_zero_point`.
    pub input_zero_point: i32,
    /// `output_zero_point`.
    pub output_zero_point: i32,
    /// Number of input elements per output element.
    pub count: i64,
    /// `input_scale / (output_scale * count)` as multiplier and shift.
    pub requant: Requant,
}

impl MeanI8Params {
    /// Derives the parameters for a mean over `count` elements per output.
    ///
    /// With [`Rounding::Float`] the scale is ONNX Runtime's
    /// QLinearGlobalAveragePool one, `input_scale / (output_scale * count)`
    /// in f32, applied by [`Requant::apply`].
    pub fn new(input: QParams, output: QParams, count: usize, rounding: Rounding) -> Self {
        let base = Requant::from_real(input.scale as f64 / output.scale as f64);
        let count = count as i64;
        let requant = if rounding.is_float() {
            Requant::from_f32(input.scale / (output.scale * count as f32))
        } else if count == 0 {
            base
        } else {
            // Fold 1/count into the multiplier: pre-shift it left by
            // floor(log2(count)) (at most 32, and keeping the final shift
            // >= -31), then divide by count with integer truncation.
            let log2 = 63 - (count as u64).leading_zeros() as i32;
            let shift = log2.min(32).min(31 + base.shift).max(0);
            Requant {
                multiplier: (((base.multiplier as i64) << shift) / count) as i32,
                shift: base.shift - shift,
                float: None,
            }
        };
        MeanI8Params {
            input_zero_point: input.zero_point,
            output_zero_point: output.zero_point,
            count,
            requant,
        }
    }
}

/// int8 MEAN over the axes of `g`, bit-identical to the TFLite reference
/// resolver's `reference_ops::QuantizedMeanOrSum` (mean mode): per output,
/// `sum(q) - count * input_zp` (wrapping to int32), scaled by `p.requant`, plus
/// the output zero-point, clamped to int8. An empty reduction writes 0.
pub fn mean_i8(g: &ReduceGeometry, p: &MeanI8Params, input: &[i8], output: &mut [i8]) {
    debug_assert_eq!(input.len(), g.in_dims.numel());
    debug_assert_eq!(output.len(), g.output_count());
    debug_assert_eq!(p.count, g.reduced_count() as i64);
    for (out, o) in output.iter_mut().enumerate() {
        if p.count == 0 {
            *o = 0;
            continue;
        }
        let mut sum = 0i32;
        g.for_each_reduced(g.base_offset(out), |i| {
            sum = sum.wrapping_add(input[i] as i32)
        });
        let shifted = (sum as i64 - p.input_zero_point as i64 * p.count) as i32;
        let v = p.requant.apply(shifted).wrapping_add(p.output_zero_point);
        *o = v.clamp(-128, 127) as i8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{dequantize_i8, quantize_i8, Activation};
    use alloc::vec;
    use alloc::vec::Vec;

    const NO_ACT: (f32, f32) = (f32::MIN, f32::MAX);

    /// Deterministic values in [-1, 1) (xorshift32).
    fn random(n: usize, mut seed: u32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                (seed >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn max_pool_f32_hand_computed() {
        let input: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let (g, [oh, ow]) = PoolGeometry::tflite(Padding::Valid, [4, 4], [2, 2], [2, 2]);
        let mut out = vec![0.0; oh * ow];
        max_pool_f32(&g, NO_ACT, &input, [1, 4, 4, 1], &mut out, [1, oh, ow, 1]);
        assert_eq!(out, [5.0, 7.0, 13.0, 15.0]);
        max_pool_f32(&g, (0.0, 6.0), &input, [1, 4, 4, 1], &mut out, [1, 2, 2, 1]);
        assert_eq!(out, [5.0, 6.0, 6.0, 6.0]);
    }

    #[test]
    fn average_pool_f32_skips_padding() {
        // SAME 3x3 over 3x3 image 1..9: corners average 4 pixels, edges 6, the center 9.
        let input: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let (g, [oh, ow]) = PoolGeometry::tflite(Padding::Same, [3, 3], [3, 3], [1, 1]);
        assert_eq!((g.pad_top, g.pad_left), (1, 1));
        let mut out = vec![0.0; oh * ow];
        average_pool_f32(&g, NO_ACT, &input, [1, 3, 3, 1], &mut out, [1, oh, ow, 1]);
        assert_eq!(out, [3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0]);
    }

    #[test]
    fn pooling_handles_batches_channels_and_strides() {
        // 2x5x5x2, 3x3 window, stride 2, SAME -> 3x3; channel 1 is channel 0 negated.
        let mut input = vec![0.0; 2 * 5 * 5 * 2];
        for (i, v) in input.iter_mut().enumerate() {
            let pixel = (i / 2) as f32;
            *v = if i % 2 == 0 { pixel } else { -pixel };
        }
        let (g, [oh, ow]) = PoolGeometry::tflite(Padding::Same, [5, 5], [3, 3], [2, 2]);
        assert_eq!([oh, ow, g.pad_top], [3, 3, 1]);
        let mut out = vec![0.0; 2 * oh * ow * 2];
        max_pool_f32(&g, NO_ACT, &input, [2, 5, 5, 2], &mut out, [2, oh, ow, 2]);
        // Batch 1, output (1, 1): window rows/cols 1..4 of image 1 (pixels 25..50).
        let at = |b: usize, y: usize, x: usize, c: usize| out[((b * oh + y) * ow + x) * 2 + c];
        assert_eq!(at(1, 1, 1, 0), (25 + 3 * 5 + 3) as f32);
        assert_eq!(at(1, 1, 1, 1), -(25 + 5 + 1) as f32);
        assert_eq!(at(0, 0, 0, 0), 6.0);
        assert_eq!(at(0, 2, 2, 1), -18.0);
    }

    #[test]
    fn average_pool_i8_rounds_half_away_from_zero() {
        assert_eq!(rounded_average(5, 2), 3);
        assert_eq!(rounded_average(-5, 2), -3);
        assert_eq!(rounded_average(-5, 3), -2);
        assert_eq!(rounded_average(-1, 2), -1);
        assert_eq!(rounded_average(1, 2), 1);
        assert_eq!(rounded_average(0, 4), 0);
        assert_eq!(rounded_average(-7, 4), -2);
        assert_eq!(rounded_average(-6, 4), -2);
        assert_eq!(rounded_average(7, 4), 2);
        // Through the kernel: windows [-3, -2] and [3, 2] (1x2 pooling of a 1x4 row).
        let (g, _) = PoolGeometry::tflite(Padding::Valid, [1, 4], [1, 2], [1, 2]);
        let mut out = [0i8; 2];
        average_pool_i8(
            &g,
            -128,
            127,
            &[-3, -2, 3, 2],
            [1, 1, 4, 1],
            &mut out,
            [1, 1, 2, 1],
        );
        assert_eq!(out, [-3, 3]);
        // The activation clamp applies after rounding.
        average_pool_i8(
            &g,
            -2,
            2,
            &[-3, -2, 3, 2],
            [1, 1, 4, 1],
            &mut out,
            [1, 1, 2, 1],
        );
        assert_eq!(out, [-2, 2]);
    }

    #[test]
    fn average_pool_i8_ort_rounds_half_to_even_in_float() {
        // 1x2 windows of a 1x6 row at scale 0.5, zero-point 1.
        let (g, _) = PoolGeometry::tflite(Padding::Valid, [1, 6], [1, 2], [1, 2]);
        let q = QParams {
            scale: 0.5,
            zero_point: 1,
        };
        let p = AvgPoolOrt::new(q, q);
        let input = [3, 4, 4, 5, -1, 0];
        let mut out = [0i8; 3];
        let run = |lo, hi, out: &mut [i8; 3]| {
            average_pool_i8_ort(&g, &p, lo, hi, &input, [1, 1, 6, 1], out, [1, 1, 3, 1]);
        };
        run(-128, 127, &mut out);
        // avg / scale = mean of (q - 1): 2.5, 3.5, -1.5, to even: 2, 4, -2;
        // plus the zero-point.
        assert_eq!(out, [3, 5, -1]);
        // TFLite averages the codes themselves, 3.5, 4.5, -0.5, away from zero.
        let mut tfl = [0i8; 3];
        average_pool_i8(&g, -128, 127, &input, [1, 1, 6, 1], &mut tfl, [1, 1, 3, 1]);
        assert_eq!(tfl, [4, 5, -1]);
        run(0, 4, &mut out);
        assert_eq!(out, [3, 4, 0]);
        // The average is taken of dequantized f32 values: for codes -6 and -1
        // at scale 0.7, (0.7 · -6 + 0.7 · -1) / 2 / 0.7 is -3.4999998 in f32,
        // which rounds to -3, where the exact -3.5 gives -4 both half to even
        // and away from zero.
        let (g2, _) = PoolGeometry::tflite(Padding::Valid, [1, 2], [1, 2], [1, 2]);
        let t = QParams {
            scale: 0.7,
            zero_point: 0,
        };
        let mut one = [0i8; 1];
        let shapes = ([1, 1, 2, 1], [1, 1, 1, 1]);
        average_pool_i8_ort(
            &g2,
            &AvgPoolOrt::new(t, t),
            -128,
            127,
            &[-6, -1],
            shapes.0,
            &mut one,
            shapes.1,
        );
        assert_eq!(one, [-3]);
        average_pool_i8(&g2, -128, 127, &[-6, -1], shapes.0, &mut one, shapes.1);
        assert_eq!(one, [-4]);
    }

    #[test]
    fn max_pool_i8_clamps_and_handles_empty_windows() {
        let (g, _) = PoolGeometry::tflite(Padding::Valid, [2, 2], [2, 2], [1, 1]);
        let mut out = [0i8; 1];
        max_pool_i8(
            &g,
            -128,
            127,
            &[-100, -128, -7, -50],
            [1, 2, 2, 1],
            &mut out,
            [1, 1, 1, 1],
        );
        assert_eq!(out, [-7]);
        max_pool_i8(
            &g,
            -5,
            127,
            &[-100, -128, -7, -50],
            [1, 2, 2, 1],
            &mut out,
            [1, 1, 1, 1],
        );
        assert_eq!(out, [-5]);
        // An explicit pad as large as the window leaves the first window empty.
        let g = PoolGeometry {
            filter_h: 1,
            filter_w: 1,
            stride_h: 1,
            stride_w: 1,
            pad_top: 1,
            pad_left: 0,
        };
        let mut out = [0i8; 2];
        max_pool_i8(&g, -20, 127, &[9], [1, 1, 1, 1], &mut out, [1, 2, 1, 1]);
        assert_eq!(out, [-20, 9]);
        average_pool_i8(&g, -20, 127, &[9], [1, 1, 1, 1], &mut out, [1, 2, 1, 1]);
        assert_eq!(out, [0, 9]);
    }

    #[test]
    fn pooling_i8_tracks_f32() {
        let in_shape = [2usize, 7, 6, 3];
        let input = random(in_shape.iter().product(), 0xfeed_beef);
        let q = QParams {
            scale: 1.0 / 120.0,
            zero_point: -9,
        };
        let qinput: Vec<i8> = input.iter().map(|&v| quantize_i8(v, q)).collect();
        let (g, [oh, ow]) = PoolGeometry::tflite(Padding::Same, [7, 6], [3, 2], [2, 2]);
        let out_shape = [2, oh, ow, 3];
        let n = out_shape.iter().product();
        let (lo, hi) = Activation::Relu.range_i8(q);
        let act = Activation::Relu.range_f32();
        let (mut want, mut got) = (vec![0.0; n], vec![0i8; n]);
        average_pool_f32(&g, act, &input, in_shape, &mut want, out_shape);
        average_pool_i8(&g, lo, hi, &qinput, in_shape, &mut got, out_shape);
        for (g, w) in got.iter().zip(&want) {
            assert!((dequantize_i8(*g, q) - w).abs() <= 1.5 * q.scale);
        }
        max_pool_f32(&g, act, &input, in_shape, &mut want, out_shape);
        max_pool_i8(&g, lo, hi, &qinput, in_shape, &mut got, out_shape);
        for (g, w) in got.iter().zip(&want) {
            assert!((dequantize_i8(*g, q) - w).abs() <= 0.5 * q.scale + 1e-6);
        }
    }

    #[test]
    fn reduce_geometry_resolves_axes_like_tflite() {
        let g = ReduceGeometry::new(&[2, 3, 4, 5], &[1, 2]).unwrap();
        assert_eq!(g.output_shape(true).dims(), &[2, 1, 1, 5]);
        assert_eq!(g.output_shape(false).dims(), &[2, 5]);
        assert_eq!((g.reduced_count(), g.output_count()), (12, 10));
        // Negative and duplicate axes.
        let g2 = ReduceGeometry::new(&[2, 3, 4, 5], &[-3, 2, -2]).unwrap();
        assert_eq!(g2, g);
        // Everything reduced.
        let g = ReduceGeometry::new(&[3, 4], &[0, 1]).unwrap();
        assert_eq!(g.output_shape(false).dims(), &[] as &[usize]);
        assert_eq!(g.output_shape(true).dims(), &[1, 1]);
        // No axis: a copy.
        let g = ReduceGeometry::new(&[3, 4], &[]).unwrap();
        assert_eq!((g.reduced_count(), g.output_count()), (1, 12));
        assert!(ReduceGeometry::new(&[3, 4], &[2]).is_none());
        assert!(ReduceGeometry::new(&[3, 4], &[-3]).is_none());
    }

    #[test]
    fn mean_f32_hand_computed() {
        let input = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = [0.0; 3];
        mean_f32(
            &ReduceGeometry::new(&[2, 3], &[1]).unwrap(),
            &input,
            &mut out[..2],
        );
        assert_eq!(&out[..2], &[2.0, 5.0]);
        mean_f32(
            &ReduceGeometry::new(&[2, 3], &[0]).unwrap(),
            &input,
            &mut out,
        );
        assert_eq!(out, [2.5, 3.5, 4.5]);
        mean_f32(
            &ReduceGeometry::new(&[2, 3], &[-1, 0]).unwrap(),
            &input,
            &mut out[..1],
        );
        assert_eq!(out[0], 3.5);
        // 4-D over H and W (global average pooling), two batches, two channels.
        let input: Vec<f32> = (0..16).map(|v| v as f32).collect(); // [2, 2, 2, 2]
        let mut out = [0.0; 4];
        mean_f32(
            &ReduceGeometry::new(&[2, 2, 2, 2], &[1, 2]).unwrap(),
            &input,
            &mut out,
        );
        assert_eq!(out, [3.0, 4.0, 11.0, 12.0]);
        // Middle axis of a 3-D tensor: strided reduction.
        let input: Vec<f32> = (0..12).map(|v| v as f32).collect(); // [2, 3, 2]
        mean_f32(
            &ReduceGeometry::new(&[2, 3, 2], &[1]).unwrap(),
            &input,
            &mut out,
        );
        assert_eq!(out, [2.0, 3.0, 8.0, 9.0]);
    }

    #[test]
    fn mean_i8_params_fold_the_count_into_the_multiplier() {
        let q = QParams {
            scale: 0.1,
            zero_point: 0,
        };
        // Ratio 1 = 2^30 * 2^(1-31); count 2 folds into a shift of 0.
        let p = MeanI8Params::new(q, q, 2, Rounding::FixedPoint);
        assert_eq!(
            p.requant,
            Requant {
                multiplier: 1 << 30,
                shift: 0,
                float: None
            }
        );
        // Count 3: shift by floor(log2 3) = 1, then divide by 3 with truncation.
        let p = MeanI8Params::new(q, q, 3, Rounding::FixedPoint);
        assert_eq!(
            p.requant,
            Requant {
                multiplier: ((1i64 << 31) / 3) as i32,
                shift: 0,
                float: None
            }
        );
        // Large counts keep the multiplier in range.
        let p = MeanI8Params::new(
            q,
            QParams {
                scale: 0.02,
                zero_point: 0,
            },
            4096,
            Rounding::FixedPoint,
        );
        let real = p.requant.multiplier as f64 * libm::pow(2.0, (p.requant.shift - 31) as f64);
        assert!((real - 5.0 / 4096.0).abs() < 1e-9);
    }

    #[test]
    fn mean_i8_hand_computed() {
        let q = QParams {
            scale: 1.0,
            zero_point: 0,
        };
        let g = ReduceGeometry::new(&[2, 2], &[1]).unwrap();
        let p = MeanI8Params::new(q, q, g.reduced_count(), Rounding::FixedPoint);
        let mut out = [0i8; 2];
        // 1.5 rounds up and -1.5 rounds towards +inf in gemmlowp's doubling high multiply.
        mean_i8(&g, &p, &[1, 2, -1, -2], &mut out);
        assert_eq!(out, [2, -1]);
        // Zero-points: input 10 is subtracted, output -3 added.
        let p = MeanI8Params::new(
            QParams {
                scale: 1.0,
                zero_point: 10,
            },
            QParams {
                scale: 0.5,
                zero_point: -3,
            },
            2,
            Rounding::FixedPoint,
        );
        mean_i8(&g, &p, &[14, 18, 10, 10], &mut out);
        assert_eq!(out, [(6 * 2 - 3) as i8, -3]);
        // Saturation.
        mean_i8(&g, &p, &[127, 127, -128, -128], &mut out);
        assert_eq!(out, [127, -128]);
    }

    #[test]
    fn mean_i8_tracks_f32() {
        let dims = [2usize, 5, 7, 3];
        let input = random(dims.iter().product(), 0x0dd_ba11);
        let in_q = QParams {
            scale: 1.0 / 120.0,
            zero_point: 4,
        };
        let out_q = QParams {
            scale: 1.0 / 250.0,
            zero_point: -6,
        };
        let qinput: Vec<i8> = input.iter().map(|&v| quantize_i8(v, in_q)).collect();
        let dequantized: Vec<f32> = qinput.iter().map(|&v| dequantize_i8(v, in_q)).collect();
        for axes in [
            &[1, 2][..],
            &[0][..],
            &[3, 0][..],
            &[-1][..],
            &[0, 1, 2, 3][..],
        ] {
            let g = ReduceGeometry::new(&dims, axes).unwrap();
            let p = MeanI8Params::new(in_q, out_q, g.reduced_count(), Rounding::FixedPoint);
            let mut want = vec![0.0; g.output_count()];
            let mut got = vec![0i8; g.output_count()];
            mean_f32(&g, &dequantized, &mut want);
            mean_i8(&g, &p, &qinput, &mut got);
            for (g, w) in got.iter().zip(&want) {
                let (lo, hi) = (dequantize_i8(-128, out_q), dequantize_i8(127, out_q));
                let w = w.clamp(lo, hi);
                assert!(
                    (dequantize_i8(*g, out_q) - w).abs() <= out_q.scale,
                    "axes {axes:?}"
                );
            }
        }
    }
}
