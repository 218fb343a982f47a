//! Ops: validating each stored op against its tensors and turning it into
//! prepared [`Step`]s (kernel + params + operand locations).
//!
//! This is the "Prepare" half of TFLite Micro's Init/Prepare/Eval split: every
//! shape, dtype and attribute is checked here, once, so that [`Step::run`]
//! only moves bytes and calls kernels.

mod code;
mod ew;
mod extra;
mod families;
mod kernel;
mod prepare;
pub mod slice;

use core::ops::Range;

pub use code::OpCode;
pub(crate) use prepare::prepare;

pub(crate) use kernel::Kernel;

/// Where a step reads an operand from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Operand {
    /// No operand (optional input absent, or unused slot).
    #[default]
    None,
    /// Bytes in the session's arena.
    Arena(Range<usize>),
    /// Bytes in the package's data section.
    Const(Range<usize>),
}

/// Up to this many inputs per step; ops with more inputs (concatenation) are
/// prepared as one step per input.
pub(crate) const MAX_STEP_INPUTS: usize = 3;

/// One prepared kernel call.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub kernel: Kernel,
    pub ins: [Operand; MAX_STEP_INPUTS],
    pub out: Range<usize>,
}

impl Step {
    /// Runs the step. `arena` is the session arena, `consts` the data section.
    /// The output range was checked to be disjoint from every arena input at
    /// prepare time, so the views below never panic.
    #[inline]
    pub fn run(&self, arena: &mut [u8], consts: &[u8]) {
        let (head, rest) = arena.split_at_mut(self.out.start);
        let (out, tail) = rest.split_at_mut(self.out.end - self.out.start);
        let head: &[u8] = head;
        let tail: &[u8] = tail;
        let out_start = self.out.start;
        let out_end = self.out.end;
        let view = |o: &Operand| -> &[u8] {
            match o {
                Operand::None => &[],
                Operand::Const(r) => &consts[r.clone()],
                Operand::Arena(r) if r.end <= out_start => &head[r.clone()],
                Operand::Arena(r) => &tail[r.start - out_end..r.end - out_end],
            }
        };
        let ins = [view(&self.ins[0]), view(&self.ins[1]), view(&self.ins[2])];
        self.kernel.exec(ins, out);
    }
}
