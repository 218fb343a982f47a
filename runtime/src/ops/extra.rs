//! Ops added for the ONNX importer (math, batched matmul, transposed
//! convolution, reductions, gather, normalization, ...). Each op's
//! preparation and prepared kernel live here; the shared dispatch in
//! `families.rs` and `kernel.rs` routes every op code not handled there to
//! [`prepare_op`] and [`Extra::run`].

use alloc::vec::Vec;

use super::prepare::Ctx;
use super::Step;
use crate::error::Result;

/// A prepared kernel of one of this module's ops.
#[derive(Debug, Clone)]
pub(crate) enum Extra {}

impl Extra {
    /// Runs the kernel on up to three operands into `out`.
    pub fn run(&self, ins: [&[u8]; 3], out: &mut [u8]) {
        let _ = (ins, out);
        match *self {}
    }
}

/// Prepares an op handled by this module.
pub(crate) fn prepare_op(cx: &Ctx<'_>, steps: &mut Vec<Step>) -> Result<&'static str> {
    let _ = steps;
    Err(cx.bad("op not supported by this runtime"))
}
