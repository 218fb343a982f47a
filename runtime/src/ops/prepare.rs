//! Per-op preparation: attribute decoding, shape and dtype checks, kernel
//! choice. Each `prep_*` function turns one stored op into one or more
//! [`Step`]s, or explains in an error why it can't.

use alloc::vec::Vec;

use super::{Operand, Step, MAX_STEP_INPUTS};
use crate::error::{Error, Result, ShapeBuf};
use crate::kernels::KernelTable;
use crate::model::Model;
use crate::quant::QParams;
use crate::types::{DType, OpDef, Quant, Shape, Storage, TensorDef};

use super::kernel::Kernel;

/// What a `prep_*` function sees: the model, the op and its index.
pub(crate) struct Ctx<'a> {
    pub model: &'a Model<'a>,
    pub index: usize,
    pub op: &'a OpDef,
    pub table: &'a KernelTable,
}

impl<'a> Ctx<'a> {
    /// An `UnsupportedConfig` error for this op.
    pub fn bad(&self, why: &'static str) -> Error {
        Error::UnsupportedConfig {
            op: self.index,
            name: self.op.code.name(),
            why,
        }
    }

    /// Requires exactly `n_in` inputs (optional ones may be `-1`) and `n_out` outputs.
    pub fn arity(&self, n_in: core::ops::RangeInclusive<usize>, n_out: usize) -> Result<()> {
        if !n_in.contains(&self.op.inputs.len()) {
            return Err(self.bad("wrong number of inputs"));
        }
        if self.op.outputs.len() != n_out {
            return Err(self.bad("wrong number of outputs"));
        }
        Ok(())
    }

    /// Tensor index of input `k`, `None` when absent (`-1` or beyond the list).
    pub fn input_index(&self, k: usize) -> Option<usize> {
        self.op.inputs.get(k).and_then(|&t| usize::try_from(t).ok())
    }

    /// The model's int8 rounding rule (from the package header).
    pub fn rounding(&self) -> crate::quant::Rounding {
        self.model.def().rounding
    }

    /// Input `k` (required).
    pub fn input(&self, k: usize) -> Result<&'a TensorDef> {
        let t = self
            .input_index(k)
            .ok_or(self.bad("a required input is missing"))?;
        Ok(&self.model.tensors()[t])
    }

    /// Input `k` if present.
    pub fn opt_input(&self, k: usize) -> Option<&'a TensorDef> {
        self.input_index(k).map(|t| &self.model.tensors()[t])
    }

    /// Output `k`.
    pub fn output(&self, k: usize) -> Result<&'a TensorDef> {
        let t = self
            .op
            .outputs
            .get(k)
            .and_then(|&t| usize::try_from(t).ok())
            .ok_or(self.bad("missing output"))?;
        Ok(&self.model.tensors()[t])
    }

    /// Attribute `k`.
    pub fn attr(&self, k: usize) -> Result<i32> {
        self.op
            .attrs
            .get(k)
            .copied()
            .ok_or(self.bad("missing attribute"))
    }

    /// Attribute `k` as a bit-cast f32.
    pub fn attr_f32(&self, k: usize) -> Result<f32> {
        Ok(f32::from_bits(self.attr(k)? as u32))
    }

    /// Attribute `k` as a non-negative size, at least `min`.
    pub fn attr_usize(&self, k: usize, min: usize) -> Result<usize> {
        usize::try_from(self.attr(k)?)
            .ok()
            .filter(|&v| v >= min)
            .ok_or(self.bad("attribute out of range"))
    }

    /// Where the bytes of input `k` live (`Operand::None` if absent).
    pub fn operand(&self, k: usize) -> Operand {
        match self.input_index(k) {
            Some(t) => operand_of(&self.model.tensors()[t]),
            None => Operand::None,
        }
    }

    /// The arena range of output `k`.
    pub fn out_range(&self, k: usize) -> Result<core::ops::Range<usize>> {
        let t = self.output(k)?;
        match operand_of(t) {
            Operand::Arena(r) => Ok(r),
            _ => Err(self.bad("output is not an arena tensor")),
        }
    }

    /// A shape-mismatch error for output `k` (or any tensor).
    pub fn shape_err(&self, tensor: &TensorDef, expected: &[usize]) -> Error {
        let t = self
            .model
            .tensors()
            .iter()
            .position(|x| core::ptr::eq(x, tensor))
            .unwrap_or(usize::MAX);
        Error::ShapeMismatch {
            op: self.index,
            tensor: t,
            expected: ShapeBuf::from_dims(expected),
            got: ShapeBuf::from_dims(tensor.shape.dims()),
        }
    }

    /// Requires `t.shape == expected`.
    pub fn expect_shape(&self, t: &TensorDef, expected: &[usize]) -> Result<()> {
        if t.shape.dims() == expected {
            Ok(())
        } else {
            Err(self.shape_err(t, expected))
        }
    }

    /// Requires `t.dtype` to be one of `allowed`.
    pub fn expect_dtype(&self, t: &TensorDef, allowed: &[DType]) -> Result<()> {
        if allowed.contains(&t.dtype) {
            Ok(())
        } else {
            Err(self.bad("unsupported tensor dtype"))
        }
    }

    /// Per-tensor quantization of `t` (required for int8 tensors).
    pub fn qparams(&self, t: &TensorDef) -> Result<QParams> {
        t.quant
            .per_tensor()
            .ok_or(self.bad("int8 tensor needs per-tensor quantization"))
    }

    /// A step with up to three inputs writing output range `out`.
    pub fn step(
        &self,
        kernel: Kernel,
        ins: [Operand; MAX_STEP_INPUTS],
        out: core::ops::Range<usize>,
    ) -> Step {
        Step { kernel, ins, out }
    }

    /// Constant input `k` as raw bytes (error if not constant).
    pub fn const_bytes(&self, k: usize) -> Result<&'a [u8]> {
        let t = self
            .input_index(k)
            .ok_or(self.bad("a required input is missing"))?;
        if !self.model.tensors()[t].is_const() {
            return Err(self.bad("this input must be constant"));
        }
        Ok(self.model.const_bytes(t))
    }
}

pub(crate) fn operand_of(t: &TensorDef) -> Operand {
    match t.storage {
        Storage::Arena { offset } => Operand::Arena(offset..offset + t.nbytes()),
        Storage::Const { offset, len } => Operand::Const(offset..offset + len),
    }
}

/// 4-D shape as an array (error unless rank 4).
pub(crate) fn dims4(cx: &Ctx<'_>, s: &Shape) -> Result<[usize; 4]> {
    s.dims()
        .try_into()
        .map_err(|_| cx.bad("expected a 4-D (NHWC) tensor"))
}

/// Prepares op `index` into `steps`, returning the name of the kernel chosen.
pub(crate) fn prepare(
    model: &Model<'_>,
    index: usize,
    op: &OpDef,
    table: &KernelTable,
    steps: &mut Vec<Step>,
) -> Result<&'static str> {
    let cx = Ctx {
        model,
        index,
        op,
        table,
    };
    let first = steps.len();
    let name = super::families::prepare_op(&cx, steps)?;
    // Every step's output must be disjoint from its arena inputs: the run loop
    // relies on it to hand out `&[u8]` and `&mut [u8]` views of one arena.
    for s in &steps[first..] {
        for o in &s.ins {
            if let Operand::Arena(r) = o {
                if r.start < s.out.end && s.out.start < r.end {
                    let t = op.outputs[0].max(0) as usize;
                    return Err(Error::BadPlan {
                        tensor: t,
                        other: t,
                    });
                }
            }
        }
    }
    Ok(name)
}

/// True when a tensor of `dtype` with `quant` can be used by an int8 kernel.
pub(crate) fn is_q8(t: &TensorDef) -> bool {
    t.dtype == DType::I8 && matches!(t.quant, Quant::PerTensor(_))
}
