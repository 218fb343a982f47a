//! Prepared kernel calls: every variant carries what its kernel needs, all
//! computed in `Session::new`. [`Kernel::exec`] casts the operand bytes to
//! their element types and calls the kernel; nothing else.

use bytemuck::{cast_slice, cast_slice_mut};

use super::{ew, extra};
use crate::kernels::pack;
use crate::kernels::reference::{conv, movement, pool, resize};
use crate::kernels::table::{ConvF32Fn, ConvI8Fn, DwConvF32Fn, DwConvI8Fn, FcF32Fn, FcI8Fn};
use crate::types::{Shape, MAX_RANK};

/// Element size of a dtype-agnostic data-movement kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Elem {
    B1,
    B2,
    B4,
    B8,
}

impl Elem {
    pub fn of_size(n: usize) -> Elem {
        match n {
            1 => Elem::B1,
            2 => Elem::B2,
            4 => Elem::B4,
            _ => Elem::B8,
        }
    }
}

/// Runs `$body` with `$t` bound to the unsigned integer type of `$elem`'s size
/// and `$in`/`$out` bound to the operand bytes cast to that type.
macro_rules! by_elem {
    ($elem:expr, $ins:expr, $out:expr, |$t:ident, $i:ident, $o:ident| $body:expr) => {
        match $elem {
            Elem::B1 => {
                let ($i, $o): (&[u8], &mut [u8]) = ($ins, $out);
                $body
            }
            Elem::B2 => {
                let ($i, $o): (&[u16], &mut [u16]) = (cast_slice($ins), cast_slice_mut($out));
                $body
            }
            Elem::B4 => {
                let ($i, $o): (&[u32], &mut [u32]) = (cast_slice($ins), cast_slice_mut($out));
                $body
            }
            Elem::B8 => {
                let ($i, $o): (&[u64], &mut [u64]) = (cast_slice($ins), cast_slice_mut($out));
                $body
            }
        }
    };
}

/// A prepared kernel call.
#[derive(Debug, Clone)]
pub(crate) enum Kernel {
    /// Copies input 0 to the output unchanged (reshape family).
    Copy,
    Conv2dF32 {
        g: conv::Conv2dGeometry,
        act: (f32, f32),
        shapes: [[usize; 4]; 3],
        f: ConvF32Fn,
        post: Option<pack::Post>,
    },
    Conv2dI8 {
        g: conv::Conv2dGeometry,
        p: conv::ConvI8Params,
        shapes: [[usize; 4]; 3],
        f: ConvI8Fn,
    },
    DepthwiseF32 {
        g: conv::Conv2dGeometry,
        act: (f32, f32),
        mult: usize,
        shapes: [[usize; 4]; 3],
        f: DwConvF32Fn,
        post: Option<pack::Post>,
    },
    DepthwiseI8 {
        g: conv::Conv2dGeometry,
        p: conv::ConvI8Params,
        mult: usize,
        shapes: [[usize; 4]; 3],
        f: DwConvI8Fn,
    },
    FullyConnectedF32 {
        act: (f32, f32),
        batches: usize,
        in_depth: usize,
        out_depth: usize,
        f: FcF32Fn,
    },
    FullyConnectedI8 {
        p: conv::FullyConnectedI8Params,
        batches: usize,
        in_depth: usize,
        out_depth: usize,
        f: FcI8Fn,
    },
    /// Optimized kernels on weights packed at prepare time (`kernels::pack`).
    QConv(alloc::boxed::Box<pack::QConv>),
    SConv(alloc::boxed::Box<pack::SConv>),
    QDw(alloc::boxed::Box<pack::QDw>),
    SDw(alloc::boxed::Box<pack::SDw>),
    QFc(alloc::boxed::Box<pack::QFc>),
    SFc(pack::SFc),
    /// MAX_POOL_2D over contiguous channels.
    MaxPoolFastF32 {
        k: pack::MaxPool,
        act: (f32, f32),
    },
    MaxPoolFastI8 {
        k: pack::MaxPool,
        act: (i32, i32),
    },
    /// MEAN over axes (1, 2) of an NHWC tensor.
    MeanHwF32(pack::MeanHw),
    MeanHwI8 {
        g: pack::MeanHw,
        p: pool::MeanI8Params,
    },
    /// f32 ADD/SUB/MUL/MAXIMUM/MINIMUM of one shape, or with one operand
    /// repeating along the other or spread over its rows (`how`): the
    /// reference's arithmetic on equal runs, split over the pool's threads.
    SBinary {
        op: crate::kernels::reference::elementwise::BinaryOp,
        act: crate::Activation,
        f: crate::kernels::table::BinaryF32Fn,
        how: pack::Broadcast,
    },
    /// Same-shape int8 ADD/SUB.
    QAdd {
        p: crate::kernels::reference::elementwise::AddI8Params,
        f: pack::QAddFn,
    },
    /// Same-shape int8 ADD with ONNX Runtime's rounding.
    QAddFloat {
        p: crate::kernels::reference::elementwise::FloatAddI8Params,
        f: pack::QAddFloatFn,
    },
    MaxPoolF32 {
        g: pool::PoolGeometry,
        act: (f32, f32),
        shapes: [[usize; 4]; 2],
    },
    MaxPoolI8 {
        g: pool::PoolGeometry,
        act: (i32, i32),
        shapes: [[usize; 4]; 2],
    },
    AvgPoolF32 {
        g: pool::PoolGeometry,
        act: (f32, f32),
        shapes: [[usize; 4]; 2],
    },
    AvgPoolI8 {
        g: pool::PoolGeometry,
        act: (i32, i32),
        shapes: [[usize; 4]; 2],
    },
    /// int8 average pooling with ONNX Runtime's arithmetic (`Rounding::Float`).
    AvgPoolI8Ort {
        g: pool::PoolGeometry,
        p: pool::AvgPoolOrt,
        act: (i32, i32),
        shapes: [[usize; 4]; 2],
    },
    MeanF32 {
        g: pool::ReduceGeometry,
    },
    MeanI8 {
        g: pool::ReduceGeometry,
        p: pool::MeanI8Params,
    },
    Pad {
        elem: Elem,
        value: u64,
        in_shape: Shape,
        before: [usize; MAX_RANK],
        out_shape: Shape,
    },
    /// PAD of the last axis only.
    PadLast {
        elem: Elem,
        value: u64,
        pad: pack::PadLast,
    },
    ConcatPart {
        elem: Elem,
        at: movement::AxisPart,
    },
    SplitPart {
        elem: Elem,
        at: movement::AxisPart,
    },
    StridedSlice {
        elem: Elem,
        p: movement::SliceParams,
    },
    Transpose {
        elem: Elem,
        in_shape: Shape,
        perm: [usize; MAX_RANK],
    },
    DepthToSpace {
        elem: Elem,
        in_shape: [usize; 4],
        block: usize,
    },
    SpaceToDepth {
        elem: Elem,
        in_shape: [usize; 4],
        block: usize,
    },
    ResizeBilinearF32 {
        shapes: [[usize; 4]; 2],
        align_corners: bool,
        half_pixel: bool,
    },
    ResizeBilinearI8 {
        shapes: [[usize; 4]; 2],
        align_corners: bool,
        half_pixel: bool,
    },
    ResizeNearest {
        elem: Elem,
        shapes: [[usize; 4]; 2],
        align_corners: bool,
        half_pixel: bool,
    },
    Binary(ew::Binary),
    Unary(ew::Unary),
    /// Ops of `ops/extra.rs`.
    #[allow(dead_code)] // until the first extra op lands
    Extra(extra::Extra),
}

fn opt<T: bytemuck::Pod>(b: &[u8]) -> Option<&[T]> {
    (!b.is_empty()).then(|| cast_slice(b))
}

impl Kernel {
    /// Runs the kernel on `ins` (operand bytes, empty when absent) into `out`.
    pub fn exec(&self, ins: [&[u8]; 3], out: &mut [u8]) {
        match self {
            Kernel::Copy => out.copy_from_slice(ins[0]),
            Kernel::Conv2dF32 {
                g,
                act,
                shapes,
                f,
                post,
            } => {
                f(
                    g,
                    *act,
                    cast_slice(ins[0]),
                    shapes[0],
                    cast_slice(ins[1]),
                    shapes[1],
                    opt(ins[2]),
                    cast_slice_mut(out),
                    shapes[2],
                );
                if let Some(p) = post {
                    p.apply(cast_slice_mut(out));
                }
            }
            Kernel::Conv2dI8 { g, p, shapes, f } => f(
                g,
                p,
                cast_slice(ins[0]),
                shapes[0],
                cast_slice(ins[1]),
                shapes[1],
                opt(ins[2]),
                cast_slice_mut(out),
                shapes[2],
            ),
            Kernel::DepthwiseF32 {
                g,
                act,
                mult,
                shapes,
                f,
                post,
            } => {
                f(
                    g,
                    *act,
                    *mult,
                    cast_slice(ins[0]),
                    shapes[0],
                    cast_slice(ins[1]),
                    shapes[1],
                    opt(ins[2]),
                    cast_slice_mut(out),
                    shapes[2],
                );
                if let Some(p) = post {
                    p.apply(cast_slice_mut(out));
                }
            }
            Kernel::DepthwiseI8 {
                g,
                p,
                mult,
                shapes,
                f,
            } => f(
                g,
                p,
                *mult,
                cast_slice(ins[0]),
                shapes[0],
                cast_slice(ins[1]),
                shapes[1],
                opt(ins[2]),
                cast_slice_mut(out),
                shapes[2],
            ),
            Kernel::FullyConnectedF32 {
                act,
                batches,
                in_depth,
                out_depth,
                f,
            } => f(
                *act,
                cast_slice(ins[0]),
                *batches,
                *in_depth,
                cast_slice(ins[1]),
                *out_depth,
                opt(ins[2]),
                cast_slice_mut(out),
            ),
            Kernel::FullyConnectedI8 {
                p,
                batches,
                in_depth,
                out_depth,
                f,
            } => f(
                p,
                cast_slice(ins[0]),
                *batches,
                *in_depth,
                cast_slice(ins[1]),
                *out_depth,
                opt(ins[2]),
                cast_slice_mut(out),
            ),
            Kernel::QConv(k) => k.exec(cast_slice(ins[0]), cast_slice_mut(out)),
            Kernel::SConv(k) => k.exec(cast_slice(ins[0]), cast_slice_mut(out)),
            Kernel::QDw(k) => k.exec(cast_slice(ins[0]), cast_slice_mut(out)),
            Kernel::SDw(k) => k.exec(cast_slice(ins[0]), cast_slice_mut(out)),
            Kernel::QFc(k) => k.exec(
                cast_slice(ins[0]),
                cast_slice(ins[1]),
                opt(ins[2]),
                cast_slice_mut(out),
            ),
            Kernel::SFc(k) => k.exec(
                cast_slice(ins[0]),
                cast_slice(ins[1]),
                opt(ins[2]),
                cast_slice_mut(out),
            ),
            Kernel::MaxPoolFastF32 { k, act } => {
                k.exec_f32(*act, cast_slice(ins[0]), cast_slice_mut(out))
            }
            Kernel::MaxPoolFastI8 { k, act } => {
                k.exec_i8(*act, cast_slice(ins[0]), cast_slice_mut(out))
            }
            Kernel::MeanHwF32(g) => g.exec_f32(cast_slice(ins[0]), cast_slice_mut(out)),
            Kernel::MeanHwI8 { g, p } => g.exec_i8(p, cast_slice(ins[0]), cast_slice_mut(out)),
            Kernel::SBinary { op, act, f, how } => pack::broadcast_elementwise(
                *how,
                cast_slice(ins[0]),
                cast_slice(ins[1]),
                cast_slice_mut(out),
                |a, b, o| f(*op, *act, a, b, o),
            ),
            Kernel::QAdd { p, f } => pack::elementwise(
                cast_slice(ins[0]),
                cast_slice(ins[1]),
                cast_slice_mut(out),
                |a, b, o| f(p, a, b, o),
            ),
            Kernel::QAddFloat { p, f } => pack::elementwise(
                cast_slice(ins[0]),
                cast_slice(ins[1]),
                cast_slice_mut(out),
                |a, b, o| f(p, a, b, o),
            ),
            Kernel::MaxPoolF32 { g, act, shapes } => pool::max_pool_f32(
                g,
                *act,
                cast_slice(ins[0]),
                shapes[0],
                cast_slice_mut(out),
                shapes[1],
            ),
            Kernel::MaxPoolI8 { g, act, shapes } => pool::max_pool_i8(
                g,
                act.0,
                act.1,
                cast_slice(ins[0]),
                shapes[0],
                cast_slice_mut(out),
                shapes[1],
            ),
            Kernel::AvgPoolF32 { g, act, shapes } => pool::average_pool_f32(
                g,
                *act,
                cast_slice(ins[0]),
                shapes[0],
                cast_slice_mut(out),
                shapes[1],
            ),
            Kernel::AvgPoolI8Ort { g, p, act, shapes } => pool::average_pool_i8_ort(
                g,
                p,
                act.0,
                act.1,
                cast_slice(ins[0]),
                shapes[0],
                cast_slice_mut(out),
                shapes[1],
            ),
            Kernel::AvgPoolI8 { g, act, shapes } => pool::average_pool_i8(
                g,
                act.0,
                act.1,
                cast_slice(ins[0]),
                shapes[0],
                cast_slice_mut(out),
                shapes[1],
            ),
            Kernel::MeanF32 { g } => pool::mean_f32(g, cast_slice(ins[0]), cast_slice_mut(out)),
            Kernel::MeanI8 { g, p } => pool::mean_i8(g, p, cast_slice(ins[0]), cast_slice_mut(out)),
            Kernel::Pad {
                elem,
                value,
                in_shape,
                before,
                out_shape,
            } => {
                let r = in_shape.rank();
                by_elem!(elem, ins[0], out, |T, i, o| movement::pad(
                    i,
                    in_shape.dims(),
                    &before[..r],
                    o,
                    out_shape.dims(),
                    *value as _
                ))
            }
            Kernel::PadLast { elem, value, pad } => {
                by_elem!(elem, ins[0], out, |T, i, o| pad.exec(i, o, *value as _))
            }
            Kernel::ConcatPart { elem, at } => {
                by_elem!(elem, ins[0], out, |T, i, o| movement::concat_part(
                    i, *at, o
                ))
            }
            Kernel::SplitPart { elem, at } => {
                by_elem!(elem, ins[0], out, |T, i, o| movement::split_part(i, *at, o))
            }
            Kernel::StridedSlice { elem, p } => {
                by_elem!(elem, ins[0], out, |T, i, o| movement::strided_slice(
                    i, p, o
                ))
            }
            Kernel::Transpose {
                elem,
                in_shape,
                perm,
            } => {
                let r = in_shape.rank();
                by_elem!(elem, ins[0], out, |T, i, o| movement::transpose(
                    i,
                    in_shape.dims(),
                    &perm[..r],
                    o
                ))
            }
            Kernel::DepthToSpace {
                elem,
                in_shape,
                block,
            } => {
                by_elem!(elem, ins[0], out, |T, i, o| movement::depth_to_space(
                    i, *in_shape, *block, o
                ))
            }
            Kernel::SpaceToDepth {
                elem,
                in_shape,
                block,
            } => {
                by_elem!(elem, ins[0], out, |T, i, o| movement::space_to_depth(
                    i, *in_shape, *block, o
                ))
            }
            Kernel::ResizeBilinearF32 {
                shapes,
                align_corners,
                half_pixel,
            } => resize::resize_bilinear_f32(
                cast_slice(ins[0]),
                shapes[0],
                cast_slice_mut(out),
                shapes[1],
                *align_corners,
                *half_pixel,
            ),
            Kernel::ResizeBilinearI8 {
                shapes,
                align_corners,
                half_pixel,
            } => resize::resize_bilinear_i8(
                cast_slice(ins[0]),
                shapes[0],
                cast_slice_mut(out),
                shapes[1],
                *align_corners,
                *half_pixel,
            ),
            Kernel::ResizeNearest {
                elem,
                shapes,
                align_corners,
                half_pixel,
            } => {
                by_elem!(elem, ins[0], out, |T, i, o| resize::resize_nearest(
                    i,
                    shapes[0],
                    o,
                    shapes[1],
                    *align_corners,
                    *half_pixel
                ))
            }
            Kernel::Binary(p) => p.run(ins[0], ins[1], out),
            Kernel::Unary(p) => p.run(ins[0], ins[1], out),
            Kernel::Extra(k) => k.run(ins, out),
        }
    }
}
