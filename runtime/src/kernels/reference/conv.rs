//! Reference kernels for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED.
//!
//! Layouts follow TFLite: activations NHWC, conv filters `[out_c, kh, kw, in_c / groups]`,
//! depthwise filters `[1, kh, kw, in_c * multiplier]`, fully-connected weights `[out, in]`.
//!
//! The int8 kernels reproduce LiteRT's reference kernels bit for bit
//! (`reference_integer_ops::ConvPerChannel`, `DepthwiseConvPerChannel`,
//! `FullyConnected` and `FullyConnectedPerChannel`, as run by the
//! `BUILTIN_REF` op resolver of `ai-edge-litert` 2.3.0); the params
//! constructors reproduce how TFLite derives the rescaling factors.
//!
//! Padding is resolved before a kernel runs: [`Conv2dGeometry`] carries the
//! top/left padding, and any input position outside the image is treated as
//! padding (it contributes nothing, which for int8 means "the input zero-point").
//! Bottom/right padding is implied by the output size, so asymmetric explicit
//! pads (ONNX) use the same kernels.

use alloc::vec::Vec;

use crate::quant::{round_half_even_i32, Activation, QParams, Requant, Rounding};

/// TFLite's padding scheme of a windowed op (`Padding` in the schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Output size `ceil(in / stride)`; the input is padded as evenly as
    /// possible, with the odd pixel at the end (bottom/right).
    Same,
    /// No padding; only windows that fit entirely inside the input.
    Valid,
}

/// Extent of a filter of `filter` taps spaced `dilation` apart.
#[inline]
fn effective_filter_size(filter: usize, dilation: usize) -> usize {
    filter.saturating_sub(1) * dilation + 1
}

/// TFLite's `ComputePaddingWithOffset` for one spatial dimension: the padding
/// before the first input pixel (`total / 2`, the odd remainder goes after).
fn pad_before(
    in_size: usize,
    filter: usize,
    stride: usize,
    dilation: usize,
    out_size: usize,
) -> usize {
    let needed = out_size.saturating_sub(1) * stride + effective_filter_size(filter, dilation);
    needed.saturating_sub(in_size) / 2
}

/// Output size and leading padding of one spatial dimension under TFLite's
/// `Padding::SAME`: `out = ceil(in / stride)`, `pad_before = total_pad / 2`.
///
/// `stride` and `dilation` must be at least 1 (validated by the op layer).
pub fn same_padding(
    in_size: usize,
    filter: usize,
    stride: usize,
    dilation: usize,
) -> (usize, usize) {
    debug_assert!(stride >= 1 && dilation >= 1);
    let out = in_size.div_ceil(stride);
    (out, pad_before(in_size, filter, stride, dilation, out))
}

/// Output size of one spatial dimension under TFLite's `Padding::VALID`:
/// `(in - effective_filter) / stride + 1`, or 0 when the (dilated) filter
/// does not fit in the input (the op layer rejects that case).
///
/// `stride` and `dilation` must be at least 1 (validated by the op layer).
pub fn valid_out_size(in_size: usize, filter: usize, stride: usize, dilation: usize) -> usize {
    debug_assert!(stride >= 1 && dilation >= 1);
    let eff = effective_filter_size(filter, dilation);
    if in_size < eff {
        0
    } else {
        (in_size - eff) / stride + 1
    }
}

/// Output size and leading padding of one spatial dimension for `padding`,
/// exactly as TFLite's `ComputePaddingHeightWidth` (VALID always pads 0).
pub fn tflite_padding(
    padding: Padding,
    in_size: usize,
    filter: usize,
    stride: usize,
    dilation: usize,
) -> (usize, usize) {
    match padding {
        Padding::Same => same_padding(in_size, filter, stride, dilation),
        Padding::Valid => (valid_out_size(in_size, filter, stride, dilation), 0),
    }
}

/// Where a 2-D window sits on the input: strides, dilations and the resolved
/// top/left padding. Shared by conv, depthwise conv and (with dilation 1) pooling.
///
/// Output pixel `(y, x)`, tap `(ky, kx)` reads input row
/// `y * stride_h + ky * dilation_h - pad_top` (and likewise for columns);
/// rows/columns outside `0..in_h` / `0..in_w` are padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

impl Conv2dGeometry {
    /// The geometry and output `[out_h, out_w]` of a TFLite windowed op over an
    /// `in_hw` input with a `filter_hw` filter. Strides and dilations are `[h, w]`
    /// and must be at least 1.
    pub fn tflite(
        padding: Padding,
        in_hw: [usize; 2],
        filter_hw: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
    ) -> (Self, [usize; 2]) {
        let (out_h, pad_top) =
            tflite_padding(padding, in_hw[0], filter_hw[0], stride[0], dilation[0]);
        let (out_w, pad_left) =
            tflite_padding(padding, in_hw[1], filter_hw[1], stride[1], dilation[1]);
        let g = Conv2dGeometry {
            stride_h: stride[0],
            stride_w: stride[1],
            dilation_h: dilation[0],
            dilation_w: dilation[1],
            pad_top,
            pad_left,
        };
        (g, [out_h, out_w])
    }

    /// Input row read by output row `out_y` at filter row `ky`, if inside the image.
    #[inline]
    fn in_y(&self, out_y: usize, ky: usize, in_h: usize) -> Option<usize> {
        tap(
            out_y,
            self.stride_h,
            ky,
            self.dilation_h,
            self.pad_top,
            in_h,
        )
    }

    /// Input column read by output column `out_x` at filter column `kx`, if inside the image.
    #[inline]
    fn in_x(&self, out_x: usize, kx: usize, in_w: usize) -> Option<usize> {
        tap(
            out_x,
            self.stride_w,
            kx,
            self.dilation_w,
            self.pad_left,
            in_w,
        )
    }
}

/// `out * stride + k * dilation - pad` when it lies in `0..size`.
#[inline]
fn tap(
    out: usize,
    stride: usize,
    k: usize,
    dilation: usize,
    pad: usize,
    size: usize,
) -> Option<usize> {
    (out * stride + k * dilation)
        .checked_sub(pad)
        .filter(|&i| i < size)
}

/// Row-major offset into an NHWC tensor of shape `s`.
#[inline]
pub(crate) fn offset4(s: &[usize; 4], n: usize, y: usize, x: usize, c: usize) -> usize {
    ((n * s[1] + y) * s[2] + x) * s[3] + c
}

/// Requantizes an int32 accumulator to int8: scale, add the output zero-point, clamp.
#[inline]
fn requantize(acc: i32, requant: Requant, output_offset: i32, act_min: i32, act_max: i32) -> i8 {
    let v = requant.apply(acc).wrapping_add(output_offset);
    v.clamp(act_min, act_max) as i8
}

/// Per-channel requantization of TFLite's `PopulateConvolutionQuantizationParams`:
/// `input_scale * filter_scale[c] / output_scale`, all three widened to `f64` first.
/// One filter scale is broadcast to every channel. With [`Rounding::Float`],
/// ONNX Runtime's QLinearConv scale instead: the same product and quotient in f32.
fn per_channel_requant(
    input_scale: f32,
    filter_scales: &[f32],
    output_scale: f32,
    channels: usize,
    rounding: Rounding,
) -> Vec<Requant> {
    debug_assert!(filter_scales.len() == 1 || filter_scales.len() == channels);
    (0..channels)
        .map(|c| {
            let filter_scale = if filter_scales.len() == 1 {
                filter_scales[0]
            } else {
                filter_scales[c]
            };
            if rounding.is_float() {
                Requant::from_f32(input_scale * filter_scale / output_scale)
            } else {
                Requant::from_real(input_scale as f64 * filter_scale as f64 / output_scale as f64)
            }
        })
        .collect()
}

/// Prepared int8 parameters of CONV_2D and DEPTHWISE_CONV_2D (TFLite's
/// per-channel path, which TFLite also takes for per-tensor int8 filters).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvI8Params {
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// Fused-activation clamp range, already in output quantized units.
    pub act_min: i32,
    pub act_max: i32,
    /// One requantization per output channel.
    pub requant: Vec<Requant>,
}

impl ConvI8Params {
    /// Derives the parameters like TFLite's conv/depthwise `Prepare`.
    ///
    /// `filter_scales` has one entry (per-tensor, broadcast) or `out_channels`
    /// entries (per-channel). Filter zero-points are ignored: TFLite's int8
    /// conv kernels assume symmetric filters (the op layer should reject others).
    /// `rounding` picks TFLite's or ONNX Runtime's requantization.
    pub fn new(
        input: QParams,
        filter_scales: &[f32],
        output: QParams,
        act: Activation,
        out_channels: usize,
        rounding: Rounding,
    ) -> Self {
        let (act_min, act_max) = act.range_i8_rounded(output, rounding);
        ConvI8Params {
            input_offset: -input.zero_point,
            output_offset: output.zero_point,
            act_min,
            act_max,
            requant: per_channel_requant(
                input.scale,
                filter_scales,
                output.scale,
                out_channels,
                rounding,
            ),
        }
    }
}

/// Output channels per group of a grouped convolution (`groups = in_c / group_c`).
/// Degenerate shapes (no input channels) count as one group, so the sum is empty.
#[inline]
fn filters_per_group(in_c: usize, group_c: usize, out_c: usize) -> usize {
    let groups = in_c.checked_div(group_c).unwrap_or(1).max(1);
    (out_c / groups).max(1)
}

/// Checks shared by conv kernels; debug builds only (the op layer validated them).
#[allow(clippy::too_many_arguments)]
fn debug_check_conv(
    in_shape: &[usize; 4],
    filter_shape: &[usize; 4],
    out_shape: &[usize; 4],
    in_len: usize,
    filter_len: usize,
    bias_len: Option<usize>,
    out_len: usize,
) {
    debug_assert_eq!(in_len, in_shape.iter().product::<usize>());
    debug_assert_eq!(filter_len, filter_shape.iter().product::<usize>());
    debug_assert_eq!(out_len, out_shape.iter().product::<usize>());
    debug_assert_eq!(in_shape[0], out_shape[0]);
    if let Some(b) = bias_len {
        debug_assert_eq!(b, out_shape[3]);
    }
}

/// Float CONV_2D (TFLite `reference_ops::Conv`), with grouped convolution.
///
/// `in_shape = [n, in_h, in_w, in_c]`, `filter_shape = [out_c, kh, kw, in_c / groups]`,
/// `out_shape = [n, out_h, out_w, out_c]`; the number of groups is
/// `in_c / filter_shape[3]` and must divide `out_c`. `act` is the clamp range
/// ([`Activation::range_f32`]). Per output: sum of products, plus bias, clamped.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_f32(
    g: &Conv2dGeometry,
    act: (f32, f32),
    input: &[f32],
    in_shape: [usize; 4],
    filter: &[f32],
    filter_shape: [usize; 4],
    bias: Option<&[f32]>,
    output: &mut [f32],
    out_shape: [usize; 4],
) {
    debug_check_conv(
        &in_shape,
        &filter_shape,
        &out_shape,
        input.len(),
        filter.len(),
        bias.map(<[f32]>::len),
        output.len(),
    );
    let [batches, in_h, in_w, in_c] = in_shape;
    let [_, kh, kw, group_c] = filter_shape;
    let [_, out_h, out_w, out_c] = out_shape;
    let filters_per_group = filters_per_group(in_c, group_c, out_c);
    for b in 0..batches {
        for oy in 0..out_h {
            for ox in 0..out_w {
                for oc in 0..out_c {
                    let group = oc / filters_per_group;
                    let mut total = 0.0f32;
                    for ky in 0..kh {
                        let Some(iy) = g.in_y(oy, ky, in_h) else {
                            continue;
                        };
                        for kx in 0..kw {
                            let Some(ix) = g.in_x(ox, kx, in_w) else {
                                continue;
                            };
                            let in_base = offset4(&in_shape, b, iy, ix, group * group_c);
                            let f_base = offset4(&filter_shape, oc, ky, kx, 0);
                            for ic in 0..group_c {
                                total += input[in_base + ic] * filter[f_base + ic];
                            }
                        }
                    }
                    let bias_value = bias.map_or(0.0, |bias| bias[oc]);
                    output[offset4(&out_shape, b, oy, ox, oc)] =
                        (total + bias_value).max(act.0).min(act.1);
                }
            }
        }
    }
}

/// int8 CONV_2D, bit-identical to TFLite's `reference_integer_ops::ConvPerChannel`
/// (grouped convolution included).
///
/// Shapes as in [`conv2d_f32`]; `bias` is int32 with scale
/// `input_scale * filter_scale[c]`. Per output: `sum(filter * (input - in_zp)) + bias`,
/// requantized per channel, plus the output zero-point, clamped to the activation range.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_i8(
    g: &Conv2dGeometry,
    p: &ConvI8Params,
    input: &[i8],
    in_shape: [usize; 4],
    filter: &[i8],
    filter_shape: [usize; 4],
    bias: Option<&[i32]>,
    output: &mut [i8],
    out_shape: [usize; 4],
) {
    debug_check_conv(
        &in_shape,
        &filter_shape,
        &out_shape,
        input.len(),
        filter.len(),
        bias.map(<[i32]>::len),
        output.len(),
    );
    debug_assert_eq!(p.requant.len(), out_shape[3]);
    let [batches, in_h, in_w, in_c] = in_shape;
    let [_, kh, kw, group_c] = filter_shape;
    let [_, out_h, out_w, out_c] = out_shape;
    let filters_per_group = filters_per_group(in_c, group_c, out_c);
    for b in 0..batches {
        for oy in 0..out_h {
            for ox in 0..out_w {
                for oc in 0..out_c {
                    let group = oc / filters_per_group;
                    let mut acc = 0i32;
                    for ky in 0..kh {
                        let Some(iy) = g.in_y(oy, ky, in_h) else {
                            continue;
                        };
                        for kx in 0..kw {
                            let Some(ix) = g.in_x(ox, kx, in_w) else {
                                continue;
                            };
                            let in_base = offset4(&in_shape, b, iy, ix, group * group_c);
                            let f_base = offset4(&filter_shape, oc, ky, kx, 0);
                            for ic in 0..group_c {
                                let x = input[in_base + ic] as i32 + p.input_offset;
                                acc = acc.wrapping_add(filter[f_base + ic] as i32 * x);
                            }
                        }
                    }
                    if let Some(bias) = bias {
                        acc = acc.wrapping_add(bias[oc]);
                    }
                    output[offset4(&out_shape, b, oy, ox, oc)] =
                        requantize(acc, p.requant[oc], p.output_offset, p.act_min, p.act_max);
                }
            }
        }
    }
}

/// Float DEPTHWISE_CONV_2D (TFLite `reference_ops::DepthwiseConv`).
///
/// `in_shape = [n, in_h, in_w, in_c]`, `filter_shape = [1, kh, kw, in_c * depth_multiplier]`,
/// `out_shape = [n, out_h, out_w, in_c * depth_multiplier]`. Output channel
/// `ic * depth_multiplier + m` reads input channel `ic`.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_f32(
    g: &Conv2dGeometry,
    act: (f32, f32),
    depth_multiplier: usize,
    input: &[f32],
    in_shape: [usize; 4],
    filter: &[f32],
    filter_shape: [usize; 4],
    bias: Option<&[f32]>,
    output: &mut [f32],
    out_shape: [usize; 4],
) {
    debug_check_conv(
        &in_shape,
        &filter_shape,
        &out_shape,
        input.len(),
        filter.len(),
        bias.map(<[f32]>::len),
        output.len(),
    );
    debug_assert_eq!(out_shape[3], in_shape[3] * depth_multiplier);
    debug_assert_eq!(filter_shape[3], out_shape[3]);
    let [batches, in_h, in_w, in_c] = in_shape;
    let [_, kh, kw, _] = filter_shape;
    let [_, out_h, out_w, _] = out_shape;
    for b in 0..batches {
        for oy in 0..out_h {
            for ox in 0..out_w {
                for ic in 0..in_c {
                    for m in 0..depth_multiplier {
                        let oc = ic * depth_multiplier + m;
                        let mut total = 0.0f32;
                        for ky in 0..kh {
                            let Some(iy) = g.in_y(oy, ky, in_h) else {
                                continue;
                            };
                            for kx in 0..kw {
                                let Some(ix) = g.in_x(ox, kx, in_w) else {
                                    continue;
                                };
                                total += input[offset4(&in_shape, b, iy, ix, ic)]
                                    * filter[offset4(&filter_shape, 0, ky, kx, oc)];
                            }
                        }
                        let bias_value = bias.map_or(0.0, |bias| bias[oc]);
                        output[offset4(&out_shape, b, oy, ox, oc)] =
                            (total + bias_value).max(act.0).min(act.1);
                    }
                }
            }
        }
    }
}

/// int8 DEPTHWISE_CONV_2D, bit-identical to TFLite's
/// `reference_integer_ops::DepthwiseConvPerChannel`. Shapes as in
/// [`depthwise_conv2d_f32`]; `p.requant` has one entry per output channel.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_i8(
    g: &Conv2dGeometry,
    p: &ConvI8Params,
    depth_multiplier: usize,
    input: &[i8],
    in_shape: [usize; 4],
    filter: &[i8],
    filter_shape: [usize; 4],
    bias: Option<&[i32]>,
    output: &mut [i8],
    out_shape: [usize; 4],
) {
    debug_check_conv(
        &in_shape,
        &filter_shape,
        &out_shape,
        input.len(),
        filter.len(),
        bias.map(<[i32]>::len),
        output.len(),
    );
    debug_assert_eq!(out_shape[3], in_shape[3] * depth_multiplier);
    debug_assert_eq!(filter_shape[3], out_shape[3]);
    debug_assert_eq!(p.requant.len(), out_shape[3]);
    let [batches, in_h, in_w, in_c] = in_shape;
    let [_, kh, kw, _] = filter_shape;
    let [_, out_h, out_w, _] = out_shape;
    for b in 0..batches {
        for oy in 0..out_h {
            for ox in 0..out_w {
                for ic in 0..in_c {
                    for m in 0..depth_multiplier {
                        let oc = ic * depth_multiplier + m;
                        let mut acc = 0i32;
                        for ky in 0..kh {
                            let Some(iy) = g.in_y(oy, ky, in_h) else {
                                continue;
                            };
                            for kx in 0..kw {
                                let Some(ix) = g.in_x(ox, kx, in_w) else {
                                    continue;
                                };
                                let x = input[offset4(&in_shape, b, iy, ix, ic)] as i32
                                    + p.input_offset;
                                let w = filter[offset4(&filter_shape, 0, ky, kx, oc)] as i32;
                                acc = acc.wrapping_add(w * x);
                            }
                        }
                        if let Some(bias) = bias {
                            acc = acc.wrapping_add(bias[oc]);
                        }
                        output[offset4(&out_shape, b, oy, ox, oc)] =
                            requantize(acc, p.requant[oc], p.output_offset, p.act_min, p.act_max);
                    }
                }
            }
        }
    }
}

/// Float FULLY_CONNECTED (TFLite `reference_ops::FullyConnected`):
/// `output[b, o] = clamp(sum_d input[b, d] * weights[o, d] + bias[o])`.
///
/// `input` is `[batches, in_depth]`, `weights` `[out_depth, in_depth]`,
/// `bias` `[out_depth]`, `output` `[batches, out_depth]`.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_f32(
    act: (f32, f32),
    input: &[f32],
    batches: usize,
    in_depth: usize,
    weights: &[f32],
    out_depth: usize,
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    debug_assert_eq!(input.len(), batches * in_depth);
    debug_assert_eq!(weights.len(), out_depth * in_depth);
    debug_assert_eq!(output.len(), batches * out_depth);
    debug_assert!(bias.is_none_or(|b| b.len() == out_depth));
    for b in 0..batches {
        let row = &input[b * in_depth..(b + 1) * in_depth];
        for o in 0..out_depth {
            let w = &weights[o * in_depth..(o + 1) * in_depth];
            let mut total = 0.0f32;
            for (x, w) in row.iter().zip(w) {
                total += x * w;
            }
            let bias_value = bias.map_or(0.0, |bias| bias[o]);
            output[b * out_depth + o] = (total + bias_value).max(act.0).min(act.1);
        }
    }
}

/// Prepared int8 parameters of FULLY_CONNECTED.
///
/// TFLite has two int8 paths, chosen by the number of filter scales: one scale
/// is "per-tensor" (`reference_integer_ops::FullyConnected`, which honours the
/// filter zero-point), more than one is "per-channel"
/// (`FullyConnectedPerChannel`, symmetric filter). In the LiteRT reference
/// kernels (checked against `ai-edge-litert` 2.3.0) both rescale the int32
/// accumulator in `f64`: `round(acc * (input_scale * filter_scale / output_scale))`,
/// not with `MultiplyByQuantizedMultiplier` as CONV_2D does.
#[derive(Debug, Clone, PartialEq)]
pub struct FullyConnectedI8Params {
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// `-filter_zero_point` on the per-tensor path, 0 on the per-channel path.
    pub filter_offset: i32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// Fused-activation clamp range in output quantized units.
    pub act_min: i32,
    pub act_max: i32,
    /// `input_scale * filter_scale / output_scale` (each widened to `f64`
    /// first): one entry (per-tensor) or one per output unit (per-channel).
    /// With `float` the f32 product and quotient, widened.
    pub scales: Vec<f64>,
    /// ONNX Runtime's QGemm rescale ([`Rounding::Float`]): the accumulator
    /// converted to f32, times the f32 scale, rounded half to even.
    pub float: bool,
}

impl FullyConnectedI8Params {
    /// Derives the parameters like TFLite's fully-connected kernel.
    ///
    /// `filter_scales` has one entry (per-tensor) or `out_depth` entries
    /// (per-channel); `filter_zero_point` only matters on the per-tensor path.
    pub fn new(
        input: QParams,
        filter_scales: &[f32],
        filter_zero_point: i32,
        output: QParams,
        act: Activation,
        out_depth: usize,
        rounding: Rounding,
    ) -> Self {
        debug_assert!(filter_scales.len() == 1 || filter_scales.len() == out_depth);
        let (act_min, act_max) = act.range_i8_rounded(output, rounding);
        let float = rounding.is_float();
        let effective = |filter_scale: f32| {
            if float {
                (input.scale * filter_scale / output.scale) as f64
            } else {
                input.scale as f64 * filter_scale as f64 / output.scale as f64
            }
        };
        let filter_offset = if filter_scales.len() == 1 {
            -filter_zero_point
        } else {
            0
        };
        FullyConnectedI8Params {
            input_offset: -input.zero_point,
            filter_offset,
            output_offset: output.zero_point,
            act_min,
            act_max,
            scales: filter_scales.iter().map(|&s| effective(s)).collect(),
            float,
        }
    }

    /// Rescales the accumulator of output unit `o` to output units (before the
    /// zero-point): `round(acc * scale)`, half away from zero, saturating to i32
    /// (or, with `float`, [`crate::quant::Requant::apply`]'s float rounding).
    #[inline]
    pub fn rescale(&self, acc: i32, o: usize) -> i32 {
        let scale = if self.scales.len() == 1 {
            self.scales[0]
        } else {
            self.scales[o]
        };
        if self.float {
            return round_half_even_i32(acc as f32 * scale as f32);
        }
        libm::round(acc as f64 * scale) as i32
    }
}

/// int8 FULLY_CONNECTED, bit-identical to LiteRT's
/// `reference_integer_ops::FullyConnected` (one filter scale) or
/// `FullyConnectedPerChannel` (one scale per unit). Layouts as in
/// [`fully_connected_f32`]; `bias` is int32. Per output:
/// `sum((w - w_zp) * (x - x_zp)) + bias`, rescaled by [`FullyConnectedI8Params::rescale`],
/// plus the output zero-point, clamped to the activation range.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_i8(
    p: &FullyConnectedI8Params,
    input: &[i8],
    batches: usize,
    in_depth: usize,
    weights: &[i8],
    out_depth: usize,
    bias: Option<&[i32]>,
    output: &mut [i8],
) {
    debug_assert_eq!(input.len(), batches * in_depth);
    debug_assert_eq!(weights.len(), out_depth * in_depth);
    debug_assert_eq!(output.len(), batches * out_depth);
    debug_assert!(bias.is_none_or(|b| b.len() == out_depth));
    debug_assert!(p.scales.len() == 1 || p.scales.len() == out_depth);
    for b in 0..batches {
        let row = &input[b * in_depth..(b + 1) * in_depth];
        for o in 0..out_depth {
            let w = &weights[o * in_depth..(o + 1) * in_depth];
            let mut acc = 0i32;
            for (&x, &w) in row.iter().zip(w) {
                acc = acc.wrapping_add((w as i32 + p.filter_offset) * (x as i32 + p.input_offset));
            }
            if let Some(bias) = bias {
                acc = acc.wrapping_add(bias[o]);
            }
            let v = p.rescale(acc, o).wrapping_add(p.output_offset);
            output[b * out_depth + o] = v.clamp(p.act_min, p.act_max) as i8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{dequantize_i8, quantize_i8};
    use alloc::vec;

    /// Small deterministic generator for test data (xorshift32).
    struct Rng(u32);
    impl Rng {
        fn next(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            self.0
        }
        /// Uniform in [-1, 1).
        fn unit(&mut self) -> f32 {
            (self.next() >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        }
        fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
            (0..n).map(|_| self.unit() * scale).collect()
        }
    }

    const NO_ACT: (f32, f32) = (f32::MIN, f32::MAX);

    fn quantize_all(v: &[f32], q: QParams) -> Vec<i8> {
        v.iter().map(|&x| quantize_i8(x, q)).collect()
    }

    fn dequantize_all(v: &[i8], q: QParams) -> Vec<f32> {
        v.iter().map(|&x| dequantize_i8(x, q)).collect()
    }

    /// Symmetric per-channel quantization of a filter whose channel is `channel_of(i)`.
    fn quantize_filter(
        f: &[f32],
        channels: usize,
        channel_of: impl Fn(usize) -> usize,
    ) -> (Vec<i8>, Vec<f32>) {
        let mut max = vec![0f32; channels];
        for (i, &v) in f.iter().enumerate() {
            max[channel_of(i)] = max[channel_of(i)].max(v.abs());
        }
        let scales: Vec<f32> = max.iter().map(|&m| m.max(1e-6) / 127.0).collect();
        let q = f
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                quantize_i8(
                    v,
                    QParams {
                        scale: scales[channel_of(i)],
                        zero_point: 0,
                    },
                )
            })
            .collect();
        (q, scales)
    }

    fn quantize_bias(b: &[f32], input_scale: f32, filter_scales: &[f32]) -> Vec<i32> {
        b.iter()
            .zip(filter_scales)
            .map(|(&v, &s)| libm::roundf(v / (input_scale * s)) as i32)
            .collect()
    }

    fn assert_within_steps(got: &[f32], want: &[f32], step: f32, steps: f32) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= steps * step,
                "element {i}: int8 gives {g}, f32 gives {w} (step {step})"
            );
        }
    }

    #[test]
    fn same_padding_matches_tflite_offsets() {
        // in 7, filter 3, stride 2: out 4, total padding 2 -> 1 before, 1 after.
        assert_eq!(same_padding(7, 3, 2, 1), (4, 1));
        // in 6, filter 3, stride 2: out 3, total padding 1 -> 0 before, the odd one after.
        assert_eq!(same_padding(6, 3, 2, 1), (3, 0));
        // Dilation 2 makes a 3-tap filter span 5: total padding 4 -> 2 before.
        assert_eq!(same_padding(9, 3, 1, 2), (9, 2));
        // A 1x1 filter never pads.
        assert_eq!(same_padding(5, 1, 2, 1), (3, 0));
        // Filter larger than the input.
        assert_eq!(same_padding(2, 5, 1, 1), (2, 2));
    }

    #[test]
    fn valid_out_size_counts_fitting_windows() {
        assert_eq!(valid_out_size(7, 3, 2, 1), 3);
        assert_eq!(valid_out_size(6, 3, 2, 1), 2);
        assert_eq!(valid_out_size(9, 3, 1, 2), 5);
        assert_eq!(valid_out_size(2, 3, 1, 1), 0);
        assert_eq!(tflite_padding(Padding::Valid, 9, 3, 1, 2), (5, 0));
        let (g, out) = Conv2dGeometry::tflite(Padding::Same, [7, 6], [3, 3], [2, 2], [1, 1]);
        assert_eq!(out, [4, 3]);
        assert_eq!((g.pad_top, g.pad_left), (1, 0));
    }

    #[test]
    fn conv2d_f32_hand_computed() {
        // 3x3 image 1..9, 2x2 filter of ones, VALID: window sums.
        let input: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let (g, [oh, ow]) = Conv2dGeometry::tflite(Padding::Valid, [3, 3], [2, 2], [1, 1], [1, 1]);
        let mut out = vec![0.0; oh * ow];
        conv2d_f32(
            &g,
            NO_ACT,
            &input,
            [1, 3, 3, 1],
            &[1.0; 4],
            [1, 2, 2, 1],
            None,
            &mut out,
            [1, oh, ow, 1],
        );
        assert_eq!(out, [12.0, 16.0, 24.0, 28.0]);
        // With a bias and a clamp at 20.
        conv2d_f32(
            &g,
            (0.0, 20.0),
            &input,
            [1, 3, 3, 1],
            &[1.0; 4],
            [1, 2, 2, 1],
            Some(&[1.0]),
            &mut out,
            [1, 2, 2, 1],
        );
        assert_eq!(out, [13.0, 17.0, 20.0, 20.0]);
        // SAME 3x3: padding contributes nothing.
        let (g, [oh, ow]) = Conv2dGeometry::tflite(Padding::Same, [3, 3], [3, 3], [1, 1], [1, 1]);
        let mut out = vec![0.0; oh * ow];
        conv2d_f32(
            &g,
            NO_ACT,
            &input,
            [1, 3, 3, 1],
            &[1.0; 9],
            [1, 3, 3, 1],
            None,
            &mut out,
            [1, 3, 3, 1],
        );
        assert_eq!(out, [12.0, 21.0, 16.0, 27.0, 45.0, 33.0, 24.0, 39.0, 28.0]);
    }

    #[test]
    fn conv2d_f32_dilation_stride_and_batches() {
        // 1x5x5x1 image, 2x2 filter [1, 10, 100, 1000] dilated by 2, VALID:
        // output (0,0) reads pixels (0,0), (0,2), (2,0), (2,2).
        let input: Vec<f32> = (0..50).map(|v| v as f32).collect();
        let filter = [1.0, 10.0, 100.0, 1000.0];
        let (g, [oh, ow]) = Conv2dGeometry::tflite(Padding::Valid, [5, 5], [2, 2], [2, 1], [2, 2]);
        assert_eq!([oh, ow], [2, 3]);
        let mut out = vec![0.0; 2 * oh * ow];
        conv2d_f32(
            &g,
            NO_ACT,
            &input,
            [2, 5, 5, 1],
            &filter,
            [1, 2, 2, 1],
            None,
            &mut out,
            [2, oh, ow, 1],
        );
        let expect = |b: usize, y: usize, x: usize| {
            let p = |yy: usize, xx: usize| (b * 25 + yy * 5 + xx) as f32;
            p(y, x) + 10.0 * p(y, x + 2) + 100.0 * p(y + 2, x) + 1000.0 * p(y + 2, x + 2)
        };
        for b in 0..2 {
            for oy in 0..oh {
                for ox in 0..ow {
                    assert_eq!(out[(b * oh + oy) * ow + ox], expect(b, oy * 2, ox));
                }
            }
        }
    }

    #[test]
    fn grouped_conv_reads_only_its_group() {
        // Two groups of one channel: output c = filter[c] * input channel c.
        let input = [1.0, 2.0, 3.0, 4.0]; // 1x1x2x2
        let mut out = [0.0; 4];
        conv2d_f32(
            &Conv2dGeometry::tflite(Padding::Valid, [1, 2], [1, 1], [1, 1], [1, 1]).0,
            NO_ACT,
            &input,
            [1, 1, 2, 2],
            &[2.0, 3.0],
            [2, 1, 1, 1],
            None,
            &mut out,
            [1, 1, 2, 2],
        );
        assert_eq!(out, [2.0, 6.0, 6.0, 12.0]);
    }

    #[test]
    fn depthwise_f32_hand_computed() {
        // 1x2x2x2 input, 1x1 filter, multiplier 2: output channel 2c+m = x[c] * w[2c+m].
        let input = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let filter = [1.0, -1.0, 10.0, 0.5];
        let mut out = [0.0; 16];
        let (g, _) = Conv2dGeometry::tflite(Padding::Valid, [2, 2], [1, 1], [1, 1], [1, 1]);
        depthwise_conv2d_f32(
            &g,
            NO_ACT,
            2,
            &input,
            [1, 2, 2, 2],
            &filter,
            [1, 1, 1, 4],
            Some(&[0.0, 0.0, 0.0, 1.0]),
            &mut out,
            [1, 2, 2, 4],
        );
        assert_eq!(&out[..4], &[1.0, -1.0, 20.0, 2.0]);
        assert_eq!(&out[12..], &[7.0, -7.0, 80.0, 5.0]);
        // 3x3 SAME over a 2x2 image of ones with a ones filter: every window sees 4 pixels.
        let mut out = [0.0; 4];
        let (g, _) = Conv2dGeometry::tflite(Padding::Same, [2, 2], [3, 3], [1, 1], [1, 1]);
        depthwise_conv2d_f32(
            &g,
            NO_ACT,
            1,
            &[1.0; 4],
            [1, 2, 2, 1],
            &[1.0; 9],
            [1, 3, 3, 1],
            None,
            &mut out,
            [1, 2, 2, 1],
        );
        assert_eq!(out, [4.0; 4]);
    }

    #[test]
    fn fully_connected_f32_hand_computed() {
        let input = [1.0, 2.0, 3.0, -1.0, 0.0, 1.0];
        let weights = [1.0, 0.0, -1.0, 2.0, 2.0, 2.0];
        let mut out = [0.0; 4];
        fully_connected_f32(
            NO_ACT,
            &input,
            2,
            3,
            &weights,
            2,
            Some(&[0.5, -1.0]),
            &mut out,
        );
        assert_eq!(out, [-1.5, 11.0, -1.5, -1.0]);
        fully_connected_f32(
            (0.0, 6.0),
            &input,
            2,
            3,
            &weights,
            2,
            Some(&[0.5, -1.0]),
            &mut out,
        );
        assert_eq!(out, [0.0, 6.0, 0.0, 0.0]);
    }

    #[test]
    fn conv_params_form_products_in_f64() {
        let input = QParams {
            scale: 0.1,
            zero_point: 3,
        };
        let output = QParams {
            scale: 0.3,
            zero_point: -5,
        };
        let p = ConvI8Params::new(
            input,
            &[0.02],
            output,
            Activation::Relu,
            3,
            Rounding::FixedPoint,
        );
        let expect = Requant::from_real(0.1f32 as f64 * 0.02f32 as f64 / 0.3f32 as f64);
        assert_eq!(p.requant, vec![expect; 3]);
        assert_eq!(
            (p.input_offset, p.output_offset, p.act_min, p.act_max),
            (-3, -5, -5, 127)
        );
    }

    #[test]
    fn conv2d_i8_hand_computed() {
        // Scales chosen so the real multiplier is 0.25 (exact in Q31); the input
        // zero-point of 1 is subtracted from every tap.
        let input_q = QParams {
            scale: 0.5,
            zero_point: 1,
        };
        let output_q = QParams {
            scale: 1.0,
            zero_point: 2,
        };
        let p = ConvI8Params::new(
            input_q,
            &[0.5],
            output_q,
            Activation::None,
            1,
            Rounding::FixedPoint,
        );
        let input = [3i8, 5, 7, 9]; // minus zp: 2, 4, 6, 8
        let mut out = [0i8; 1];
        let (g, _) = Conv2dGeometry::tflite(Padding::Valid, [2, 2], [2, 2], [1, 1], [1, 1]);
        // acc = 1*2 + 2*4 + 0*6 + (-1)*8 + bias 10 = 12 -> 12 * 0.25 = 3, + zp 2 = 5.
        conv2d_i8(
            &g,
            &p,
            &input,
            [1, 2, 2, 1],
            &[1, 2, 0, -1],
            [1, 2, 2, 1],
            Some(&[10]),
            &mut out,
            [1, 1, 1, 1],
        );
        assert_eq!(out, [5]);
        // Padding taps are skipped (i.e. read as the zero-point): SAME 3x3 of ones at a corner
        // sees 4 pixels: (2 + 4 + 6 + 8) * 0.25 = 5, + 2 = 7.
        let (g, _) = Conv2dGeometry::tflite(Padding::Same, [2, 2], [3, 3], [1, 1], [1, 1]);
        let mut out = [0i8; 4];
        conv2d_i8(
            &g,
            &p,
            &input,
            [1, 2, 2, 1],
            &[1; 9],
            [1, 3, 3, 1],
            None,
            &mut out,
            [1, 2, 2, 1],
        );
        assert_eq!(out, [7; 4]);
    }

    #[test]
    fn conv2d_i8_tracks_f32() {
        let mut rng = Rng(0x1234_5678);
        for &(stride, dilation, padding, groups) in &[
            ([1, 1], [1, 1], Padding::Same, 1),
            ([2, 1], [1, 2], Padding::Valid, 1),
            ([2, 2], [2, 1], Padding::Same, 2),
        ] {
            let (in_shape, kh, kw, out_c) = ([2usize, 7, 6, 4], 3, 2, 6);
            let group_c = in_shape[3] / groups;
            let (g, [oh, ow]) = Conv2dGeometry::tflite(
                padding,
                [in_shape[1], in_shape[2]],
                [kh, kw],
                stride,
                dilation,
            );
            let filter_shape = [out_c, kh, kw, group_c];
            let out_shape = [in_shape[0], oh, ow, out_c];
            let input = rng.vec(in_shape.iter().product(), 1.0);
            let filter = rng.vec(filter_shape.iter().product(), 0.5);
            let bias = rng.vec(out_c, 0.5);
            let mut want = vec![0.0; out_shape.iter().product()];
            conv2d_f32(
                &g,
                NO_ACT,
                &input,
                in_shape,
                &filter,
                filter_shape,
                Some(&bias),
                &mut want,
                out_shape,
            );

            let input_q = QParams {
                scale: 1.0 / 127.0,
                zero_point: -3,
            };
            let max_out = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            let output_q = QParams {
                scale: max_out / 120.0,
                zero_point: 2,
            };
            let (qfilter, scales) = quantize_filter(&filter, out_c, |i| i / (kh * kw * group_c));
            let p = ConvI8Params::new(
                input_q,
                &scales,
                output_q,
                Activation::None,
                out_c,
                Rounding::FixedPoint,
            );
            let mut got = vec![0i8; want.len()];
            let qinput = quantize_all(&input, input_q);
            let qbias = quantize_bias(&bias, input_q.scale, &scales);
            conv2d_i8(
                &g,
                &p,
                &qinput,
                in_shape,
                &qfilter,
                filter_shape,
                Some(&qbias),
                &mut got,
                out_shape,
            );
            assert_within_steps(&dequantize_all(&got, output_q), &want, output_q.scale, 2.0);
        }
    }

    #[test]
    fn depthwise_i8_tracks_f32() {
        let mut rng = Rng(0x0bad_cafe);
        for &(mult, stride, dilation, padding) in &[
            (1, [1, 1], [1, 1], Padding::Same),
            (2, [2, 1], [2, 2], Padding::Same),
            (3, [1, 2], [1, 1], Padding::Valid),
        ] {
            let in_shape = [2usize, 6, 7, 3];
            let out_c = in_shape[3] * mult;
            let (g, [oh, ow]) = Conv2dGeometry::tflite(padding, [6, 7], [3, 3], stride, dilation);
            let filter_shape = [1, 3, 3, out_c];
            let out_shape = [2, oh, ow, out_c];
            let input = rng.vec(in_shape.iter().product(), 1.0);
            let filter = rng.vec(filter_shape.iter().product(), 0.5);
            let bias = rng.vec(out_c, 0.5);
            let mut want = vec![0.0; out_shape.iter().product()];
            depthwise_conv2d_f32(
                &g,
                NO_ACT,
                mult,
                &input,
                in_shape,
                &filter,
                filter_shape,
                Some(&bias),
                &mut want,
                out_shape,
            );

            let input_q = QParams {
                scale: 1.0 / 127.0,
                zero_point: 5,
            };
            let max_out = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            let output_q = QParams {
                scale: max_out / 120.0,
                zero_point: -4,
            };
            let (qfilter, scales) = quantize_filter(&filter, out_c, |i| i % out_c);
            let p = ConvI8Params::new(
                input_q,
                &scales,
                output_q,
                Activation::None,
                out_c,
                Rounding::FixedPoint,
            );
            let mut got = vec![0i8; want.len()];
            let (qinput, qbias) = (
                quantize_all(&input, input_q),
                quantize_bias(&bias, input_q.scale, &scales),
            );
            depthwise_conv2d_i8(
                &g,
                &p,
                mult,
                &qinput,
                in_shape,
                &qfilter,
                filter_shape,
                Some(&qbias),
                &mut got,
                out_shape,
            );
            assert_within_steps(&dequantize_all(&got, output_q), &want, output_q.scale, 2.0);
        }
    }

    #[test]
    fn fully_connected_i8_rounds_in_f64_half_away_from_zero() {
        // Real scale 0.5; filter zero-point 1 is honoured on the per-tensor path.
        let input_q = QParams {
            scale: 1.0,
            zero_point: 0,
        };
        let output_q = QParams {
            scale: 1.0,
            zero_point: 0,
        };
        let p = FullyConnectedI8Params::new(
            input_q,
            &[0.5],
            1,
            output_q,
            Activation::None,
            2,
            Rounding::FixedPoint,
        );
        assert_eq!(p.scales, vec![0.5]);
        // Unit 0: (3-1)*1 + (4-1)*1 = 5 -> 2.5 -> 3. Unit 1: (-2-1)*1 + (-1-1)*1 = -5 -> -2.5 -> -3.
        let mut out = [0i8; 2];
        fully_connected_i8(&p, &[1, 1], 1, 2, &[3, 4, -2, -1], 2, None, &mut out);
        assert_eq!(out, [3, -3]);
        // Per-channel: filter zero-point ignored, one scale per unit.
        let p = FullyConnectedI8Params::new(
            input_q,
            &[0.5, 0.25],
            1,
            output_q,
            Activation::Relu,
            2,
            Rounding::FixedPoint,
        );
        assert_eq!(p.filter_offset, 0);
        fully_connected_i8(
            &p,
            &[1, 1],
            1,
            2,
            &[3, 4, 20, 2],
            2,
            Some(&[0, -2]),
            &mut out,
        );
        assert_eq!(out, [4, 5]); // 7 * 0.5 = 3.5 -> 4; (22 - 2) * 0.25 = 5.
        fully_connected_i8(&p, &[1, 1], 1, 2, &[-3, -4, 20, 2], 2, None, &mut out);
        assert_eq!(out[0], 0); // -3.5 -> -4, clamped by Relu to the zero-point.
    }

    #[test]
    fn fully_connected_i8_tracks_f32() {
        let mut rng = Rng(0x5eed_0001);
        let (batches, in_depth, out_depth) = (3, 37, 5);
        let input = rng.vec(batches * in_depth, 1.0);
        let weights = rng.vec(out_depth * in_depth, 0.3);
        let bias = rng.vec(out_depth, 1.0);
        let mut want = vec![0.0; batches * out_depth];
        fully_connected_f32(
            NO_ACT,
            &input,
            batches,
            in_depth,
            &weights,
            out_depth,
            Some(&bias),
            &mut want,
        );
        let input_q = QParams {
            scale: 1.0 / 127.0,
            zero_point: 7,
        };
        let max_out = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let output_q = QParams {
            scale: max_out / 120.0,
            zero_point: 0,
        };
        let qinput = quantize_all(&input, input_q);
        for per_channel in [true, false] {
            let (qw, scales) = if per_channel {
                quantize_filter(&weights, out_depth, |i| i / in_depth)
            } else {
                quantize_filter(&weights, 1, |_| 0)
            };
            let p = FullyConnectedI8Params::new(
                input_q,
                &scales,
                0,
                output_q,
                Activation::None,
                out_depth,
                Rounding::FixedPoint,
            );
            let bias_scales: Vec<f32> = (0..out_depth).map(|o| scales[o % scales.len()]).collect();
            let qbias = quantize_bias(&bias, input_q.scale, &bias_scales);
            let mut got = vec![0i8; want.len()];
            fully_connected_i8(
                &p,
                &qinput,
                batches,
                in_depth,
                &qw,
                out_depth,
                Some(&qbias),
                &mut got,
            );
            assert_within_steps(&dequantize_all(&got, output_q), &want, output_q.scale, 2.0);
        }
    }
}
