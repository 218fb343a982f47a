//! The kernel table: one function pointer per hot kernel.
//!
//! [`KernelTable::reference`] fills every slot with the portable kernels;
//! architecture modules overwrite the slots the running CPU does better
//! (see `docs/adding-a-kernel.md`). A session copies the table once, when it
//! is created, and each prepared step keeps the pointer it needs, so `run`
//! makes no dispatch decisions.

use crate::kernels::pack::{
    QAddFloatFn, QAddFn, QDotIsa, QDwFn, QGemmIsa, SDotFn, SDwFn, SGemmIsa,
};
use crate::kernels::reference::conv::{self, Conv2dGeometry, ConvI8Params, FullyConnectedI8Params};

/// `conv2d_f32`'s signature.
pub type ConvF32Fn = fn(
    &Conv2dGeometry,
    (f32, f32),
    &[f32],
    [usize; 4],
    &[f32],
    [usize; 4],
    Option<&[f32]>,
    &mut [f32],
    [usize; 4],
);
/// `conv2d_i8`'s signature.
pub type ConvI8Fn = fn(
    &Conv2dGeometry,
    &ConvI8Params,
    &[i8],
    [usize; 4],
    &[i8],
    [usize; 4],
    Option<&[i32]>,
    &mut [i8],
    [usize; 4],
);
/// `depthwise_conv2d_f32`'s signature.
pub type DwConvF32Fn = fn(
    &Conv2dGeometry,
    (f32, f32),
    usize,
    &[f32],
    [usize; 4],
    &[f32],
    [usize; 4],
    Option<&[f32]>,
    &mut [f32],
    [usize; 4],
);
/// `depthwise_conv2d_i8`'s signature.
pub type DwConvI8Fn = fn(
    &Conv2dGeometry,
    &ConvI8Params,
    usize,
    &[i8],
    [usize; 4],
    &[i8],
    [usize; 4],
    Option<&[i32]>,
    &mut [i8],
    [usize; 4],
);
/// `fully_connected_f32`'s signature.
pub type FcF32Fn = fn((f32, f32), &[f32], usize, usize, &[f32], usize, Option<&[f32]>, &mut [f32]);
/// `binary_same_f32`'s signature (same-shape f32 ADD/SUB/MUL/MAX/MIN).
pub type BinaryF32Fn = fn(
    crate::kernels::reference::elementwise::BinaryOp,
    crate::quant::Activation,
    &[f32],
    &[f32],
    &mut [f32],
);
/// An f32 element-wise function's signature (`input`, `output`; one length).
pub type UnaryF32Fn = fn(&[f32], &mut [f32]);
/// An f32 SOFTMAX over rows: `beta`, the row length, input, output.
pub type SoftmaxF32Fn = fn(f32, usize, &[f32], &mut [f32]);
/// `fully_connected_i8`'s signature.
pub type FcI8Fn =
    fn(&FullyConnectedI8Params, &[i8], usize, usize, &[i8], usize, Option<&[i32]>, &mut [i8]);

/// A kernel function and the name `inspect` shows for it
/// (`<isa>_<op>_<dtype>_<tile>`, e.g. `ref_conv2d_i8`).
#[derive(Clone, Copy, Debug)]
pub struct Entry<F> {
    pub f: F,
    pub name: &'static str,
}

/// Function pointers for the hot kernels.
///
/// The first six slots always hold a kernel (the reference unless replaced).
/// The `Option` slots hold optimized micro-kernels that work on weights
/// packed in `Session::new` (see [`crate::kernels::pack`]); they are `None`
/// in the reference table and filled by [`crate::kernels::arch::plug`] when
/// the CPU has the instructions. An op whose shape an optimized driver
/// doesn't cover (grouped conv, depthwise multiplier > 1, ...) falls back to
/// the first six slots.
#[derive(Clone, Copy, Debug)]
pub struct KernelTable {
    pub conv2d_f32: Entry<ConvF32Fn>,
    pub conv2d_i8: Entry<ConvI8Fn>,
    pub depthwise_f32: Entry<DwConvF32Fn>,
    pub depthwise_i8: Entry<DwConvI8Fn>,
    pub fully_connected_f32: Entry<FcF32Fn>,
    pub fully_connected_i8: Entry<FcI8Fn>,
    /// int8 GEMM for CONV_2D (1x1 directly, k×k through a small im2col tile).
    pub qgemm: Option<QGemmIsa>,
    /// f32 GEMM for CONV_2D.
    pub sgemm: Option<SGemmIsa>,
    /// int8 / f32 DEPTHWISE_CONV_2D (multiplier 1, any kernel size, stride, dilation).
    pub qdw: Option<Entry<QDwFn>>,
    pub sdw: Option<Entry<SDwFn>>,
    /// Dot products for FULLY_CONNECTED.
    pub qdot: Option<QDotIsa>,
    pub sdot: Option<Entry<SDotFn>>,
    /// int8 ADD/SUB of two tensors of one shape (no broadcasting).
    pub qadd: Option<Entry<QAddFn>>,
    /// The same with ONNX Runtime's rounding (`Rounding::Float`).
    pub qadd_float: Option<Entry<QAddFloatFn>>,
    /// f32 swish (SiLU), the reference's polynomial on wider vectors.
    pub swish_f32: Option<Entry<UnaryF32Fn>>,
    /// f32 same-shape binary ops on wider vectors.
    pub binary_f32: Option<Entry<BinaryF32Fn>>,
    /// f32 erf and exact GELU: the reference's branch-free polynomials on
    /// wider vectors (the same arithmetic, so the same results).
    pub erf_f32: Option<Entry<UnaryF32Fn>>,
    pub gelu_f32: Option<Entry<UnaryF32Fn>>,
    /// f32 LOGISTIC with a polynomial `exp` (within a few ulp of the reference).
    pub logistic_f32: Option<Entry<UnaryF32Fn>>,
    /// f32 SOFTMAX with a polynomial `exp` (within a few ulp of the reference).
    pub softmax_f32: Option<Entry<SoftmaxF32Fn>>,
    /// f32 BATCH_MATMUL rows (register-blocked, bit-identical to the
    /// reference; see [`crate::kernels::matmul`]).
    pub matmul_f32: Option<Entry<crate::kernels::matmul::MatmulF32Fn>>,
}

impl KernelTable {
    /// Every slot holds the portable reference kernel.
    pub fn reference() -> Self {
        KernelTable {
            conv2d_f32: Entry {
                f: conv::conv2d_f32,
                name: "ref_conv2d_f32",
            },
            conv2d_i8: Entry {
                f: conv::conv2d_i8,
                name: "ref_conv2d_i8",
            },
            depthwise_f32: Entry {
                f: conv::depthwise_conv2d_f32,
                name: "ref_depthwise_f32",
            },
            depthwise_i8: Entry {
                f: conv::depthwise_conv2d_i8,
                name: "ref_depthwise_i8",
            },
            fully_connected_f32: Entry {
                f: conv::fully_connected_f32,
                name: "ref_fully_connected_f32",
            },
            fully_connected_i8: Entry {
                f: conv::fully_connected_i8,
                name: "ref_fully_connected_i8",
            },
            qgemm: None,
            sgemm: None,
            qdw: None,
            sdw: None,
            qdot: None,
            sdot: None,
            qadd: None,
            qadd_float: None,
            swish_f32: None,
            binary_f32: None,
            erf_f32: None,
            gelu_f32: None,
            logistic_f32: None,
            softmax_f32: None,
            matmul_f32: None,
        }
    }

    /// True when no optimized slot is filled (the portable table).
    pub fn is_reference(&self) -> bool {
        self.qgemm.is_none()
            && self.sgemm.is_none()
            && self.qdw.is_none()
            && self.sdw.is_none()
            && self.qdot.is_none()
            && self.sdot.is_none()
            && self.qadd.is_none()
            && self.qadd_float.is_none()
            && self.swish_f32.is_none()
            && self.binary_f32.is_none()
            && self.erf_f32.is_none()
            && self.gelu_f32.is_none()
            && self.logistic_f32.is_none()
            && self.softmax_f32.is_none()
            && self.matmul_f32.is_none()
    }

    /// The best table for this CPU. With `std`, `FERRITE_KERNELS=reference`
    /// forces the portable kernels.
    pub fn detect() -> Self {
        #[cfg(feature = "std")]
        if std::env::var("FERRITE_KERNELS").is_ok_and(|v| v == "reference") {
            return Self::reference();
        }
        let mut t = Self::reference();
        t.matmul_f32 = Some(Entry {
            f: crate::kernels::matmul::blocked_matmul_f32,
            name: crate::kernels::matmul::BLOCKED_NAME,
        });
        t.softmax_f32 = Some(Entry {
            f: crate::kernels::reference::activation::softmax_f32_poly,
            name: "softmax_f32_poly",
        });
        t.logistic_f32 = Some(Entry {
            f: crate::kernels::reference::activation::logistic_f32_poly,
            name: "logistic_f32_poly",
        });
        crate::kernels::arch::plug(&mut t);
        t
    }
}

impl Default for KernelTable {
    fn default() -> Self {
        Self::detect()
    }
}
