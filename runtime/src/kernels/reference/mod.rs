//! Portable scalar reference kernels, one file per op family.

pub mod activation;
pub mod conv;
pub mod detection;
pub mod elementwise;
pub mod fixedpoint;
pub mod math;
pub mod mediapipe;
pub mod movement;
pub mod pool;
pub mod quantize;
pub mod resize;
