//! Kernels: the arithmetic of each op, separate from graphs and files.
//!
//! `reference/` holds the portable scalar kernels: short, readable, and for
//! int8 bit-identical to TFLite's reference kernels. They are the oracle every
//! optimized kernel is tested against.
//!
//! Conventions every kernel follows:
//! - Activations are NHWC. Conv filters are `[out_c, kh, kw, in_c]`, depthwise
//!   filters `[1, kh, kw, c * multiplier]`, fully-connected weights `[out, in]`
//!   (TFLite's layouts).
//! - Kernels take plain slices and shapes; the op layer (`crate::ops`) has
//!   validated every shape before a kernel runs, so kernels only
//!   `debug_assert!` them.
//! - Kernels never allocate. Anything derived from the model (requantization
//!   multipliers, lookup tables) is computed once by a `prepare`-style
//!   constructor into a params struct when the session is created.
//! - int8 params structs are built from float scales and zero-points by the
//!   kernel module's own constructor, so the arithmetic that must match TFLite
//!   lives in one place.

pub mod arch;
pub mod matmul;
pub mod pack;
pub mod reference;
pub mod table;

pub use table::KernelTable;
