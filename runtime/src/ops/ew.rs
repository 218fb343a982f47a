//! Elementwise ops (binary with broadcasting, activations, quantize) — being wired.

use alloc::vec::Vec;

use super::prepare::Ctx;
use super::Step;
use crate::error::Result;

#[derive(Debug, Clone)]
pub(crate) enum Binary {}
impl Binary {
    pub fn run(&self, _a: &[u8], _b: &[u8], _out: &mut [u8]) {
        match *self {}
    }
}
#[derive(Debug, Clone)]
pub(crate) enum Unary {}
impl Unary {
    pub fn run(&self, _a: &[u8], _b: &[u8], _out: &mut [u8]) {
        match *self {}
    }
}
pub(crate) fn prep_binary(cx: &Ctx<'_>, _steps: &mut Vec<Step>) -> Result<&'static str> {
    Err(cx.bad("not wired yet"))
}
pub(crate) fn prep_unary(cx: &Ctx<'_>, _steps: &mut Vec<Step>) -> Result<&'static str> {
    Err(cx.bad("not wired yet"))
}
