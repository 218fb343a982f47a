//! Ferrite's runtime: load a `.fer` package zero-copy, prepare a session once,
//! run it cheaply.
//!
//! ```no_run
//! # fn main() -> Result<(), ferrite_runtime::Error> {
//! use ferrite_runtime::{Model, Options, Session};
//! let model = Model::load("model.fer")?;
//! let mut session = Session::new(&model, Options::default())?;
//! let input = vec![0f32; session.input_info(0).numel()];
//! session.set_input_f32(0, &input)?;
//! session.invoke()?;
//! let scores: &[f32] = session.output_f32(0)?;
//! # let _ = scores; Ok(()) }
//! ```
//!
//! Without the default `std` feature the crate is `no_std` + `alloc`.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod error;
pub mod fpu;
pub mod kernels;
pub mod ops;
pub mod quant;
pub mod threads;
pub mod types;

pub use error::{Error, Result};
pub use ops::OpCode;
pub use quant::{Activation, QParams, Requant, Rounding};
pub use types::{DType, OpDef, Quant, Shape, Storage, TensorDef, MAX_RANK};
pub mod format;
pub mod model;

pub use model::{AlignedBytes, Model};
pub mod session;

pub use session::{Options, Session, TensorView, TensorViewMut};
