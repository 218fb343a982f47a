//! Preparation of each op family: decode attributes (layouts in
//! `docs/format.md`), check dtypes and shapes, compute kernel parameters.

use alloc::vec::Vec;

use super::ew;
use super::kernel::{Elem, Kernel};
use super::prepare::{dims4, is_q8, Ctx};
use super::{OpCode, Operand, Step};
use crate::error::Result;
use crate::kernels::pack;
use crate::kernels::reference::{conv, movement, pool};
use crate::quant::Activation;
use crate::types::{DType, Quant, Shape, TensorDef, MAX_RANK};

/// Dispatches op `cx.op` to its family and pushes its steps.
pub(crate) fn prepare_op(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    use OpCode::*;
    match cx.op.code {
        Conv2d | DepthwiseConv2d => prep_conv(cx, steps),
        FullyConnected => prep_fc(cx, steps),
        MaxPool2d | AveragePool2d => prep_pool(cx, steps),
        Mean => prep_mean(cx, steps),
        Reshape | Squeeze | ExpandDims => prep_reshape(cx, steps),
        Pad | PadV2 => prep_pad(cx, steps),
        Concatenation => prep_concat(cx, steps),
        Split | SplitV => prep_split(cx, steps),
        StridedSlice | Slice => prep_slice(cx, steps),
        Transpose => prep_transpose(cx, steps),
        DepthToSpace | SpaceToDepth => prep_space(cx, steps),
        ResizeBilinear | ResizeNearestNeighbor => prep_resize(cx, steps),
        Add | Sub | Mul | Maximum | Minimum => ew::prep_binary(cx, steps),
        Relu | Relu6 | ReluN1To1 | LeakyRelu | Prelu | HardSwish | Logistic | Tanh | Softmax
        | Quantize | Dequantize => ew::prep_unary(cx, steps),
        #[allow(unreachable_patterns)]
        _ => super::extra::prepare_op(cx, steps),
    }
}

fn activation(cx: &Ctx<'_>, k: usize) -> Result<Activation> {
    Activation::from_i32(cx.attr(k)?).ok_or(cx.bad("unknown fused activation"))
}

/// Both dtypes must be f32, or both int8 with per-tensor quantization.
fn float_or_q8(cx: &Ctx<'_>, x: &TensorDef, y: &TensorDef) -> Result<bool> {
    match (x.dtype, y.dtype) {
        (DType::F32, DType::F32) => Ok(false),
        (DType::I8, DType::I8) if is_q8(x) && is_q8(y) => Ok(true),
        (DType::I8, DType::I8) => Err(cx.bad("int8 tensors need per-tensor quantization")),
        _ => {
            Err(cx
                .bad("supported for float32 and int8 tensors (input and output of the same type)"))
        }
    }
}

/// Window attributes shared by conv, depthwise and pooling:
/// `[stride_h, stride_w, a_h, a_w, pad_top, pad_left, pad_bottom, pad_right, act]`
/// where `a` is the dilation (conv) or the filter size (pooling).
struct Window {
    stride: [usize; 2],
    a: [usize; 2],
    pads: [usize; 4],
    act: Activation,
}

fn window(cx: &Ctx<'_>) -> Result<Window> {
    let pad = |k| cx.attr_usize(k, 0);
    Ok(Window {
        stride: [cx.attr_usize(0, 1)?, cx.attr_usize(1, 1)?],
        a: [cx.attr_usize(2, 1)?, cx.attr_usize(3, 1)?],
        pads: [pad(4)?, pad(5)?, pad(6)?, pad(7)?],
        act: activation(cx, 8)?,
    })
}

/// Output size of a window over `in_size` with explicit padding; `None` when
/// the window does not fit.
fn window_out(
    in_size: usize,
    k: usize,
    dil: usize,
    stride: usize,
    before: usize,
    after: usize,
) -> Option<usize> {
    let eff = k.checked_sub(1)?.checked_mul(dil)?.checked_add(1)?;
    let padded = in_size.checked_add(before)?.checked_add(after)?;
    padded.checked_sub(eff).map(|v| v / stride + 1)
}

fn prep_conv(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    cx.arity(2..=3, 1)?;
    let depthwise = cx.op.code == OpCode::DepthwiseConv2d;
    let (x, f, y) = (cx.input(0)?, cx.input(1)?, cx.output(0)?);
    let w = window(cx)?;
    let xs = dims4(cx, &x.shape)?;
    let fs = dims4(cx, &f.shape)?;
    let [n, ih, iw, ic] = xs;
    let (kh, kw) = (fs[1], fs[2]);
    let oc = fs[3 * depthwise as usize];
    let mult = if depthwise {
        let m = cx.attr_usize(9, 1)?;
        if fs[0] != 1 || ic.checked_mul(m) != Some(fs[3]) {
            return Err(cx.bad("depthwise filter must be [1, kh, kw, in_channels * multiplier]"));
        }
        m
    } else {
        if fs[3] == 0 || ic < fs[3] || ic % fs[3] != 0 || oc % (ic / fs[3]) != 0 {
            return Err(cx.bad("filter input channels must divide the input channels (groups)"));
        }
        1
    };
    let oh = window_out(ih, kh, w.a[0], w.stride[0], w.pads[0], w.pads[2])
        .ok_or(cx.bad("filter larger than padded input"))?;
    let ow = window_out(iw, kw, w.a[1], w.stride[1], w.pads[1], w.pads[3])
        .ok_or(cx.bad("filter larger than padded input"))?;
    let ys = [n, oh, ow, oc];
    cx.expect_shape(y, &ys)?;
    if !f.is_const() {
        return Err(cx.bad("the filter must be constant"));
    }
    let g = conv::Conv2dGeometry {
        stride_h: w.stride[0],
        stride_w: w.stride[1],
        dilation_h: w.a[0],
        dilation_w: w.a[1],
        pad_top: w.pads[0],
        pad_left: w.pads[1],
    };
    let shapes = [xs, fs, ys];
    let bias = cx.opt_input(2);
    if let Some(b) = bias {
        if b.shape.numel() != oc {
            return Err(cx.shape_err(b, &[oc]));
        }
    }
    let q8 = float_or_q8(cx, x, y)?;
    let post = conv_post(cx, depthwise)?;
    if q8 && post.is_some() {
        return Err(cx.bad("a fused post-op needs a float conv"));
    }
    let kernel = if !q8 {
        cx.expect_dtype(f, &[DType::F32])?;
        if let Some(b) = bias {
            cx.expect_dtype(b, &[DType::F32])?;
        }
        let act = w.act.range_f32();
        if let Some((k, name)) = fast_conv_f32(
            cx,
            depthwise,
            mult,
            pack::ConvShape { g, shapes },
            act,
            post,
        )? {
            steps.push(cx.step(
                k,
                [cx.operand(0), cx.operand(1), cx.operand(2)],
                cx.out_range(0)?,
            ));
            return Ok(name);
        }
        if depthwise {
            Kernel::DepthwiseF32 {
                g,
                act,
                mult,
                shapes,
                f: cx.table.depthwise_f32.f,
                post,
            }
        } else {
            Kernel::Conv2dF32 {
                g,
                act,
                shapes,
                f: cx.table.conv2d_f32.f,
                post,
            }
        }
    } else {
        cx.expect_dtype(f, &[DType::I8])?;
        if let Some(b) = bias {
            cx.expect_dtype(b, &[DType::I32])?;
        }
        let scales = filter_scales(cx, f, if depthwise { 3 } else { 0 }, oc)?;
        let p = conv::ConvI8Params::new(
            cx.qparams(x)?,
            &scales,
            cx.qparams(y)?,
            w.act,
            oc,
            cx.rounding(),
        );
        if let Some((k, name)) =
            fast_conv_i8(cx, depthwise, mult, pack::ConvShape { g, shapes }, &p)?
        {
            steps.push(cx.step(
                k,
                [cx.operand(0), cx.operand(1), cx.operand(2)],
                cx.out_range(0)?,
            ));
            return Ok(name);
        }
        if depthwise {
            Kernel::DepthwiseI8 {
                g,
                p,
                mult,
                shapes,
                f: cx.table.depthwise_i8.f,
            }
        } else {
            Kernel::Conv2dI8 {
                g,
                p,
                shapes,
                f: cx.table.conv2d_i8.f,
            }
        }
    };
    let name = match (depthwise, q8) {
        (false, false) => cx.table.conv2d_f32.name,
        (false, true) => cx.table.conv2d_i8.name,
        (true, false) => cx.table.depthwise_f32.name,
        (true, true) => cx.table.depthwise_i8.name,
    };
    steps.push(cx.step(
        kernel,
        [cx.operand(0), cx.operand(1), cx.operand(2)],
        cx.out_range(0)?,
    ));
    Ok(name)
}

/// Bias of a conv/FC as a slice of `T` when it is a constant (`None` when
/// absent); `Err(())` when it is computed at run time (the packed kernels
/// fold it at prepare time, so they need it constant).
pub(crate) fn const_bias<'a, T: bytemuck::Pod>(
    cx: &Ctx<'a>,
) -> core::result::Result<Option<&'a [T]>, ()> {
    match cx.opt_input(2) {
        None => Ok(None),
        Some(b) if b.is_const() => cx
            .const_bytes(2)
            .map(|v| Some(bytemuck::cast_slice(v)))
            .map_err(|_| ()),
        Some(_) => Err(()),
    }
}

/// The packed f32 conv/depthwise kernel for this op, when the table has one
/// and its driver covers the shape (multiplier 1, constant bias).
fn fast_conv_f32(
    cx: &Ctx<'_>,
    depthwise: bool,
    mult: usize,
    shape: pack::ConvShape,
    act: (f32, f32),
    post: Option<pack::Post>,
) -> Result<Option<(Kernel, &'static str)>> {
    let Ok(bias) = const_bias::<f32>(cx) else {
        return Ok(None);
    };
    let filter: &[f32] = bytemuck::cast_slice(cx.const_bytes(1)?);
    if depthwise {
        let taps = shape.shapes[1][1] * shape.shapes[1][2];
        let Some(e) = cx
            .table
            .sdw
            .filter(|_| mult == 1 && taps <= pack::MAX_DW_TAPS)
        else {
            return Ok(None);
        };
        let mut k = pack::SDw::new(e.f, shape, act, filter, bias);
        k.post = post;
        return Ok(Some((Kernel::SDw(alloc::boxed::Box::new(k)), e.name)));
    }
    let Some(isa) = cx.table.sgemm else {
        return Ok(None);
    };
    Ok(
        pack::SConv::new(&isa, shape, act, filter, bias).map(|(mut k, n)| {
            k.post = post;
            (Kernel::SConv(alloc::boxed::Box::new(k)), n)
        }),
    )
}

/// The element-wise function the converter fused after a float conv
/// (attribute 9 of CONV_2D, 10 of DEPTHWISE_CONV_2D; absent = 0): 0 none,
/// 1 swish, 2 hard swish. The same functions as the UNARY swish and
/// HARD_SWISH ops, so the values are theirs.
fn conv_post(cx: &Ctx<'_>, depthwise: bool) -> Result<Option<pack::Post>> {
    use crate::kernels::reference::activation as act;
    let at = if depthwise { 10 } else { 9 };
    let code = match cx.op.attrs.get(at) {
        None => 0,
        Some(_) => cx.attr(at)?,
    };
    Ok(match code {
        0 => None,
        1 => Some(pack::Post {
            f: cx.table.swish_f32.map_or(act::swish_f32, |e| e.f),
        }),
        2 => Some(pack::Post {
            f: act::hard_swish_f32,
        }),
        _ => return Err(cx.bad("unknown fused post-op")),
    })
}

/// Like [`fast_conv_f32`] for int8.
fn fast_conv_i8(
    cx: &Ctx<'_>,
    depthwise: bool,
    mult: usize,
    shape: pack::ConvShape,
    p: &conv::ConvI8Params,
) -> Result<Option<(Kernel, &'static str)>> {
    let Ok(bias) = const_bias::<i32>(cx) else {
        return Ok(None);
    };
    let filter: &[i8] = bytemuck::cast_slice(cx.const_bytes(1)?);
    if depthwise {
        let taps = shape.shapes[1][1] * shape.shapes[1][2];
        let Some(e) = cx
            .table
            .qdw
            .filter(|_| mult == 1 && taps <= pack::MAX_DW_TAPS)
        else {
            return Ok(None);
        };
        let k = pack::QDw::new(e.f, shape, p, filter, bias);
        return Ok(Some((Kernel::QDw(alloc::boxed::Box::new(k)), e.name)));
    }
    let Some(isa) = cx.table.qgemm else {
        return Ok(None);
    };
    Ok(pack::QConv::new(&isa, shape, p, filter, bias)
        .map(|(k, n)| (Kernel::QConv(alloc::boxed::Box::new(k)), n)))
}

/// Filter scales of an int8 weight tensor: per-tensor (one entry) or per-axis
/// along `axis` with `channels` entries. Filters must be symmetric (zero-point 0).
fn filter_scales(cx: &Ctx<'_>, f: &TensorDef, axis: usize, channels: usize) -> Result<Vec<f32>> {
    match &f.quant {
        Quant::PerTensor(q) if q.zero_point == 0 => Ok(alloc::vec![q.scale]),
        Quant::PerAxis {
            axis: a,
            scales,
            zero_points,
        } if *a == axis && scales.len() == channels => {
            if zero_points.iter().any(|&z| z != 0) {
                return Err(cx.bad("int8 filters must be symmetric (zero-point 0)"));
            }
            Ok(scales.clone())
        }
        Quant::PerTensor(_) => Err(cx.bad("int8 filters must be symmetric (zero-point 0)")),
        _ => Err(cx.bad("int8 filter needs per-tensor or per-output-channel quantization")),
    }
}

/// From this many rows a float FULLY_CONNECTED runs on the conv GEMM.
const FC_GEMM_MIN_ROWS: usize = 12;

fn prep_fc(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    cx.arity(2..=3, 1)?;
    let (x, wt, y) = (cx.input(0)?, cx.input(1)?, cx.output(0)?);
    let act = activation(cx, 0)?;
    if wt.shape.rank() != 2 {
        return Err(cx.bad("weights must be 2-D [out, in]"));
    }
    let (out_depth, in_depth) = (wt.shape.dim(0), wt.shape.dim(1));
    let numel = x.shape.numel();
    if in_depth == 0 || numel % in_depth != 0 {
        return Err(cx.bad("input size is not a multiple of the weights' input depth"));
    }
    let batches = numel / in_depth;
    if y.shape.numel() != batches * out_depth || y.shape.dims().last() != Some(&out_depth) {
        return Err(cx.shape_err(y, &[batches, out_depth]));
    }
    if let Some(b) = cx.opt_input(2) {
        if b.shape.numel() != out_depth {
            return Err(cx.shape_err(b, &[out_depth]));
        }
    }
    let q8 = float_or_q8(cx, x, y)?;
    let (kernel, name) = if !q8 {
        cx.expect_dtype(wt, &[DType::F32])?;
        if let Some(b) = cx.opt_input(2) {
            cx.expect_dtype(b, &[DType::F32])?;
        }
        // Many rows (a transformer's tokens, an unrolled sequence): the
        // rows are the pixels of a 1x1 convolution, whose GEMM reuses each
        // packed weight panel across a tile of rows; the dot-product kernel
        // streams the whole weight matrix once per row.
        if batches >= FC_GEMM_MIN_ROWS && wt.is_const() {
            let g = conv::Conv2dGeometry {
                stride_h: 1,
                stride_w: 1,
                dilation_h: 1,
                dilation_w: 1,
                pad_top: 0,
                pad_left: 0,
            };
            let shapes = [
                [1, 1, batches, in_depth],
                [out_depth, 1, 1, in_depth],
                [1, 1, batches, out_depth],
            ];
            let shape = pack::ConvShape { g, shapes };
            if let Some((k, name)) = fast_conv_f32(cx, false, 1, shape, act.range_f32(), None)? {
                steps.push(cx.step(
                    k,
                    [cx.operand(0), cx.operand(1), cx.operand(2)],
                    cx.out_range(0)?,
                ));
                return Ok(name);
            }
        }
        if let Some(e) = cx.table.sdot {
            let k = Kernel::SFc(pack::SFc {
                act: act.range_f32(),
                batches,
                k: in_depth,
                n: out_depth,
                run: e.f,
            });
            steps.push(cx.step(
                k,
                [cx.operand(0), cx.operand(1), cx.operand(2)],
                cx.out_range(0)?,
            ));
            return Ok(e.name);
        }
        let k = Kernel::FullyConnectedF32 {
            act: act.range_f32(),
            batches,
            in_depth,
            out_depth,
            f: cx.table.fully_connected_f32.f,
        };
        (k, cx.table.fully_connected_f32.name)
    } else {
        cx.expect_dtype(wt, &[DType::I8])?;
        if let Some(b) = cx.opt_input(2) {
            cx.expect_dtype(b, &[DType::I32])?;
        }
        let (scales, zp) = match &wt.quant {
            Quant::PerTensor(q) => (alloc::vec![q.scale], q.zero_point),
            Quant::PerAxis {
                axis: 0,
                scales,
                zero_points,
            } if zero_points.iter().all(|&z| z == 0) => (scales.clone(), 0),
            _ => {
                return Err(cx.bad(
                    "int8 weights need per-tensor or symmetric per-output-channel quantization",
                ))
            }
        };
        let p = conv::FullyConnectedI8Params::new(
            cx.qparams(x)?,
            &scales,
            zp,
            cx.qparams(y)?,
            act,
            out_depth,
            cx.rounding(),
        );
        if let Some(isa) = cx.table.qdot {
            let weights: &[i8] = bytemuck::cast_slice(cx.const_bytes(1)?);
            let k = Kernel::QFc(alloc::boxed::Box::new(pack::QFc::new(
                &isa, p, batches, in_depth, out_depth, weights,
            )));
            steps.push(cx.step(
                k,
                [cx.operand(0), cx.operand(1), cx.operand(2)],
                cx.out_range(0)?,
            ));
            return Ok(isa.name);
        }
        let k = Kernel::FullyConnectedI8 {
            p,
            batches,
            in_depth,
            out_depth,
            f: cx.table.fully_connected_i8.f,
        };
        (k, cx.table.fully_connected_i8.name)
    };
    steps.push(cx.step(
        kernel,
        [cx.operand(0), cx.operand(1), cx.operand(2)],
        cx.out_range(0)?,
    ));
    Ok(name)
}

fn prep_pool(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    cx.arity(1..=1, 1)?;
    let (x, y) = (cx.input(0)?, cx.output(0)?);
    let w = window(cx)?;
    if cx.attr(9).unwrap_or(0) != 0 {
        return Err(cx.bad("average pooling that counts padding is not supported"));
    }
    let xs = dims4(cx, &x.shape)?;
    let oh = window_out(xs[1], w.a[0], 1, w.stride[0], w.pads[0], w.pads[2])
        .ok_or(cx.bad("window larger than padded input"))?;
    let ow = window_out(xs[2], w.a[1], 1, w.stride[1], w.pads[1], w.pads[3])
        .ok_or(cx.bad("window larger than padded input"))?;
    let ys = [xs[0], oh, ow, xs[3]];
    cx.expect_shape(y, &ys)?;
    let g = pool::PoolGeometry {
        filter_h: w.a[0],
        filter_w: w.a[1],
        stride_h: w.stride[0],
        stride_w: w.stride[1],
        pad_top: w.pads[0],
        pad_left: w.pads[1],
    };
    let shapes = [xs, ys];
    let max = cx.op.code == OpCode::MaxPool2d;
    let q8 = float_or_q8(cx, x, y)?;
    // Max pooling has a portable channel-contiguous kernel with the
    // reference's exact comparison order; the portable table keeps the reference.
    if max && !cx.table.is_reference() {
        let k = pack::MaxPool { g, shapes };
        let (kernel, name) = if q8 {
            let (qx, qy) = (cx.qparams(x)?, cx.qparams(y)?);
            if qx != qy {
                return Err(cx.bad("int8 pooling needs equal input and output quantization"));
            }
            (
                Kernel::MaxPoolFastI8 {
                    k,
                    act: w.act.range_i8(qy),
                },
                "maxpool_i8_c",
            )
        } else {
            (
                Kernel::MaxPoolFastF32 {
                    k,
                    act: w.act.range_f32(),
                },
                "maxpool_f32_c",
            )
        };
        steps.push(cx.step(
            kernel,
            [cx.operand(0), Operand::None, Operand::None],
            cx.out_range(0)?,
        ));
        return Ok(name);
    }
    let (kernel, name) = if q8 {
        let (qx, qy) = (cx.qparams(x)?, cx.qparams(y)?);
        if qx != qy {
            return Err(cx.bad("int8 pooling needs equal input and output quantization"));
        }
        let act = w.act.range_i8(qy);
        if max {
            (Kernel::MaxPoolI8 { g, act, shapes }, "ref_max_pool_i8")
        } else if cx.rounding().is_float() {
            let p = pool::AvgPoolOrt::new(qx, qy);
            (
                Kernel::AvgPoolI8Ort { g, p, act, shapes },
                "ref_average_pool_i8_ort",
            )
        } else {
            (Kernel::AvgPoolI8 { g, act, shapes }, "ref_average_pool_i8")
        }
    } else if max {
        (
            Kernel::MaxPoolF32 {
                g,
                act: w.act.range_f32(),
                shapes,
            },
            "ref_max_pool_f32",
        )
    } else {
        (
            Kernel::AvgPoolF32 {
                g,
                act: w.act.range_f32(),
                shapes,
            },
            "ref_average_pool_f32",
        )
    };
    steps.push(cx.step(
        kernel,
        [cx.operand(0), Operand::None, Operand::None],
        cx.out_range(0)?,
    ));
    Ok(name)
}

fn prep_mean(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    cx.arity(1..=1, 1)?;
    let (x, y) = (cx.input(0)?, cx.output(0)?);
    let keep = cx.attr(0)? != 0;
    let axes = &cx.op.attrs[1..];
    let g = pool::ReduceGeometry::new(x.shape.dims(), axes).ok_or(cx.bad("axis out of range"))?;
    let out = g.output_shape(keep);
    // Without keep_dims TFLite may still store the output with size-1 dims; accept
    // any shape with the right element count whose non-1 dims match.
    if y.shape != out && !same_ignoring_ones(&y.shape, &out) {
        return Err(cx.shape_err(y, out.dims()));
    }
    let q8 = float_or_q8(cx, x, y)?;
    // Global average pooling (axes 1 and 2 of NHWC) has a contiguous,
    // vectorizable kernel that adds in the reference's order. It is portable
    // code, so it is used unless the portable table was asked for.
    let dims = x.shape.dims();
    let rank = dims.len() as i32;
    let resolved = |a: i32| if a < 0 { a + rank } else { a };
    let spatial = rank == 4
        && !axes.is_empty()
        && axes.iter().all(|&a| matches!(resolved(a), 1 | 2))
        && axes.iter().any(|&a| resolved(a) == 1)
        && axes.iter().any(|&a| resolved(a) == 2);
    let hw = spatial.then(|| pack::MeanHw {
        batches: dims[0],
        pixels: dims[1] * dims[2],
        channels: dims[3],
    });
    let hw = hw.filter(|_| !cx.table.is_reference());
    let (kernel, name) = if q8 {
        let p = pool::MeanI8Params::new(
            cx.qparams(x)?,
            cx.qparams(y)?,
            g.reduced_count(),
            cx.rounding(),
        );
        match hw {
            Some(g) => (Kernel::MeanHwI8 { g, p }, "mean_hw_i8"),
            None => (Kernel::MeanI8 { g, p }, "ref_mean_i8"),
        }
    } else {
        match hw {
            Some(g) => (Kernel::MeanHwF32(g), "mean_hw_f32"),
            None => (Kernel::MeanF32 { g }, "ref_mean_f32"),
        }
    };
    steps.push(cx.step(
        kernel,
        [cx.operand(0), Operand::None, Operand::None],
        cx.out_range(0)?,
    ));
    Ok(name)
}

fn same_ignoring_ones(a: &Shape, b: &Shape) -> bool {
    let strip = |s: &Shape| {
        let mut v = [0usize; MAX_RANK];
        let mut n = 0;
        for &d in s.dims() {
            if d != 1 {
                v[n] = d;
                n += 1;
            }
        }
        (v, n)
    };
    strip(a) == strip(b)
}

/// Data-movement ops keep values as they are: input and output must share
/// dtype and quantization.
fn same_type(cx: &Ctx<'_>, x: &TensorDef, y: &TensorDef) -> Result<Elem> {
    if x.dtype != y.dtype {
        return Err(cx.bad("input and output dtypes differ"));
    }
    if x.quant != y.quant && x.dtype == DType::I8 {
        return Err(cx.bad(
            "input and output quantization differ (int8 data-movement ops keep values unchanged)",
        ));
    }
    Ok(Elem::of_size(x.dtype.size()))
}

fn prep_reshape(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    cx.arity(1..=2, 1)?;
    let (x, y) = (cx.input(0)?, cx.output(0)?);
    same_type(cx, x, y)?;
    if x.shape.numel() != y.shape.numel() {
        return Err(cx.shape_err(y, x.shape.dims()));
    }
    let (src, dst) = (cx.operand(0), cx.out_range(0)?);
    if src == Operand::Arena(dst.clone()) {
        return Ok("in-place (no copy)");
    }
    steps.push(cx.step(Kernel::Copy, [src, Operand::None, Operand::None], dst));
    Ok("copy")
}

fn prep_pad(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    cx.arity(1..=2, 1)?;
    let (x, y) = (cx.input(0)?, cx.output(0)?);
    let elem = same_type(cx, x, y)?;
    let r = x.shape.rank();
    if cx.op.attrs.len() != 2 * r {
        return Err(cx.bad("paddings must have two entries per dimension"));
    }
    let mut before = [0usize; MAX_RANK];
    let mut out = [0usize; MAX_RANK];
    for d in 0..r {
        let (b, a) = (cx.attr_usize(2 * d, 0)?, cx.attr_usize(2 * d + 1, 0)?);
        before[d] = b;
        out[d] = x
            .shape
            .dim(d)
            .checked_add(b)
            .and_then(|v| v.checked_add(a))
            .ok_or(cx.bad("padding too large"))?;
    }
    cx.expect_shape(y, &out[..r])?;
    let value: u64 = match cx.opt_input(1) {
        Some(v) => {
            let b = cx.const_bytes(1)?;
            if v.dtype != x.dtype
                || v.shape.numel() != 1
                || v.quant != x.quant && x.dtype == DType::I8
            {
                return Err(cx.bad(
                    "the pad value must be a constant scalar of the input's type and quantization",
                ));
            }
            let mut buf = [0u8; 8];
            buf[..b.len()].copy_from_slice(b);
            u64::from_le_bytes(buf)
        }
        None => match (x.dtype, &x.quant) {
            // Quantized zero is the zero-point.
            (DType::I8, Quant::PerTensor(q)) => q.zero_point as i8 as u8 as u64,
            (DType::U8, Quant::PerTensor(q)) => q.zero_point as u8 as u64,
            _ => 0,
        },
    };
    // Only the last axis padded (channel padding): whole rows, split over threads.
    let last_only = r > 0 && (0..r - 1).all(|d| x.shape.dim(d) == out[d]);
    let (kernel, name) = if last_only {
        let pad = pack::PadLast {
            pixels: x.shape.dims()[..r - 1].iter().product(),
            c_in: x.shape.dim(r - 1),
            before: before[r - 1],
            c_out: out[r - 1],
        };
        (Kernel::PadLast { elem, value, pad }, "pad_last_axis")
    } else {
        let kernel = Kernel::Pad {
            elem,
            value,
            in_shape: x.shape,
            before,
            out_shape: y.shape,
        };
        (kernel, "ref_pad")
    };
    steps.push(cx.step(
        kernel,
        [cx.operand(0), Operand::None, Operand::None],
        cx.out_range(0)?,
    ));
    Ok(name)
}

fn prep_concat(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    if cx.op.inputs.is_empty() {
        return Err(cx.bad("needs at least one input"));
    }
    cx.arity(1..=usize::MAX, 1)?;
    let y = cx.output(0)?;
    let axis = cx.attr_usize(0, 0)?;
    if activation(cx, 1)? != Activation::None {
        return Err(cx.bad("fused activation on CONCATENATION is not supported"));
    }
    let r = y.shape.rank();
    if axis >= r {
        return Err(cx.bad("axis out of range"));
    }
    let mut offset = 0usize;
    let first = steps.len();
    for k in 0..cx.op.inputs.len() {
        let x = cx.input(k)?;
        let elem = same_type(cx, x, y)?;
        let ok =
            x.shape.rank() == r && (0..r).all(|d| d == axis || x.shape.dim(d) == y.shape.dim(d));
        if !ok {
            return Err(cx.shape_err(x, y.shape.dims()));
        }
        let len = x.shape.dim(axis);
        if offset + len > y.shape.dim(axis) {
            return Err(cx.shape_err(y, x.shape.dims()));
        }
        let at = movement::AxisPart::new(y.shape.dims(), axis, offset, len);
        steps.push(cx.step(
            Kernel::ConcatPart { elem, at },
            [cx.operand(k), Operand::None, Operand::None],
            cx.out_range(0)?,
        ));
        offset += len;
    }
    if offset != y.shape.dim(axis) {
        steps.truncate(first);
        return Err(cx.shape_err(y, &[offset]));
    }
    Ok("ref_concat")
}

fn prep_split(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    let x = cx.input(0)?;
    if cx.op.inputs.len() != 1 {
        return Err(cx.bad("wrong number of inputs"));
    }
    let axis = cx.attr_usize(0, 0)?;
    let r = x.shape.rank();
    if axis >= r {
        return Err(cx.bad("axis out of range"));
    }
    let n = cx.op.outputs.len();
    let mut offset = 0usize;
    for k in 0..n {
        let y = cx.output(k)?;
        let elem = same_type(cx, x, y)?;
        let ok =
            y.shape.rank() == r && (0..r).all(|d| d == axis || x.shape.dim(d) == y.shape.dim(d));
        let len = if ok { y.shape.dim(axis) } else { 0 };
        if !ok || offset + len > x.shape.dim(axis) {
            return Err(cx.shape_err(y, x.shape.dims()));
        }
        if cx.op.code == OpCode::Split && len * n != x.shape.dim(axis) {
            return Err(cx.bad("SPLIT outputs must be equal parts of the axis"));
        }
        let at = movement::AxisPart::new(x.shape.dims(), axis, offset, len);
        steps.push(cx.step(
            Kernel::SplitPart { elem, at },
            [cx.operand(0), Operand::None, Operand::None],
            cx.out_range(k)?,
        ));
        offset += len;
    }
    if offset != x.shape.dim(axis) {
        return Err(cx.bad("split sizes do not add up to the axis"));
    }
    Ok("ref_split")
}

fn prep_slice(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    cx.arity(1..=1, 1)?;
    let (x, y) = (cx.input(0)?, cx.output(0)?);
    let elem = same_type(cx, x, y)?;
    let r = x.shape.rank();
    if cx.attr_usize(0, 0)? != r || cx.op.attrs.len() != 1 + 3 * r {
        return Err(
            cx.bad("slice attributes must give start, stride and count per input dimension")
        );
    }
    let mut p = movement::SliceParams {
        rank: r,
        dims: [0; MAX_RANK],
        start: [0; MAX_RANK],
        stride: [0; MAX_RANK],
        count: [0; MAX_RANK],
    };
    for d in 0..r {
        let dim = x.shape.dim(d);
        let start = cx.attr_usize(1 + d, 0)?;
        let stride = cx.attr(1 + r + d)? as isize;
        let count = cx.attr_usize(1 + 2 * r + d, 0)?;
        // Every index read, start + i * stride for i < count, must be inside the axis.
        if count > 0 {
            let last = start as i64 + (count as i64 - 1) * stride as i64;
            if stride == 0 || start >= dim || last < 0 || last >= dim as i64 {
                return Err(cx.bad("slice reads outside the input"));
            }
        }
        p.dims[d] = dim;
        p.start[d] = start;
        p.stride[d] = stride;
        p.count[d] = count;
    }
    if p.out_numel() != y.shape.numel() {
        return Err(cx.shape_err(y, &p.count[..r]));
    }
    steps.push(cx.step(
        Kernel::StridedSlice { elem, p },
        [cx.operand(0), Operand::None, Operand::None],
        cx.out_range(0)?,
    ));
    Ok("ref_strided_slice")
}

fn prep_transpose(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    cx.arity(1..=1, 1)?;
    let (x, y) = (cx.input(0)?, cx.output(0)?);
    let elem = same_type(cx, x, y)?;
    let r = x.shape.rank();
    if cx.op.attrs.len() != r {
        return Err(cx.bad("permutation length must equal the rank"));
    }
    let mut perm = [0usize; MAX_RANK];
    let mut seen = [false; MAX_RANK];
    let mut out = [0usize; MAX_RANK];
    for d in 0..r {
        let p = cx.attr_usize(d, 0)?;
        if p >= r || seen[p] {
            return Err(cx.bad("invalid permutation"));
        }
        seen[p] = true;
        perm[d] = p;
        out[d] = x.shape.dim(p);
    }
    cx.expect_shape(y, &out[..r])?;
    steps.push(cx.step(
        Kernel::Transpose {
            elem,
            in_shape: x.shape,
            perm,
        },
        [cx.operand(0), Operand::None, Operand::None],
        cx.out_range(0)?,
    ));
    Ok("ref_transpose")
}

fn prep_space(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    cx.arity(1..=1, 1)?;
    let (x, y) = (cx.input(0)?, cx.output(0)?);
    let elem = same_type(cx, x, y)?;
    let b = cx.attr_usize(0, 1)?;
    let [n, h, w, c] = dims4(cx, &x.shape)?;
    let (kernel, out) = if cx.op.code == OpCode::DepthToSpace {
        if c % (b * b) != 0 {
            return Err(cx.bad("channels must be a multiple of block_size^2"));
        }
        (
            Kernel::DepthToSpace {
                elem,
                in_shape: [n, h, w, c],
                block: b,
            },
            [n, h * b, w * b, c / (b * b)],
        )
    } else {
        if h % b != 0 || w % b != 0 {
            return Err(cx.bad("height and width must be multiples of block_size"));
        }
        (
            Kernel::SpaceToDepth {
                elem,
                in_shape: [n, h, w, c],
                block: b,
            },
            [n, h / b, w / b, c * b * b],
        )
    };
    cx.expect_shape(y, &out)?;
    steps.push(cx.step(
        kernel,
        [cx.operand(0), Operand::None, Operand::None],
        cx.out_range(0)?,
    ));
    Ok(if cx.op.code == OpCode::DepthToSpace {
        "ref_depth_to_space"
    } else {
        "ref_space_to_depth"
    })
}

fn prep_resize(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    cx.arity(1..=1, 1)?;
    let (x, y) = (cx.input(0)?, cx.output(0)?);
    let elem = same_type(cx, x, y)?;
    let (align_corners, half_pixel) = (cx.attr(0)? != 0, cx.attr(1)? != 0);
    if align_corners && half_pixel {
        return Err(cx.bad("align_corners and half_pixel_centers cannot both be set"));
    }
    let xs = dims4(cx, &x.shape)?;
    let ys = dims4(cx, &y.shape)?;
    if xs[1] == 0 || xs[2] == 0 {
        return Err(cx.bad("cannot resize an empty image"));
    }
    if xs[0] != ys[0] || xs[3] != ys[3] || ys[1] == 0 || ys[2] == 0 {
        return Err(cx.shape_err(y, &[xs[0], ys[1], ys[2], xs[3]]));
    }
    let shapes = [xs, ys];
    let (kernel, name) = if cx.op.code == OpCode::ResizeNearestNeighbor {
        (
            Kernel::ResizeNearest {
                elem,
                shapes,
                align_corners,
                half_pixel,
            },
            "ref_resize_nearest",
        )
    } else if x.dtype == DType::F32 {
        (
            Kernel::ResizeBilinearF32 {
                shapes,
                align_corners,
                half_pixel,
            },
            "ref_resize_bilinear_f32",
        )
    } else if is_q8(x) {
        (
            Kernel::ResizeBilinearI8 {
                shapes,
                align_corners,
                half_pixel,
            },
            "ref_resize_bilinear_i8",
        )
    } else {
        return Err(cx.bad("bilinear resize supports float32 and int8"));
    };
    steps.push(cx.step(
        kernel,
        [cx.operand(0), Operand::None, Operand::None],
        cx.out_range(0)?,
    ));
    Ok(name)
}
