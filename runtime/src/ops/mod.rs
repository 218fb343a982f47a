//! Ops: decoding stored op definitions, shape checks, and preparing kernels.

mod code;

pub use code::OpCode;
