//! Ferrite's deployable pipelines on top of a [`ferrite_runtime::Session`].
//!
//! - [`spec`]: the pre- and post-processing a package declares (TOML in,
//!   JSON metadata in the `.fer`), with the BlazeFace short-range preset.
//! - [`preprocess`]: the fused pass from RGB8 / YUYV / NV12 frames (and
//!   decoded JPEG/PNG) straight into the model's input tensor.
//! - [`anchors`], [`postprocess`]: SSD anchors (MediaPipe's options), box and
//!   keypoint decoding, sigmoid scores, hard and weighted NMS.
//! - [`detect`]: the whole detector: frame in, detections in source pixels out.
//! - [`image_io`], [`annotate`]: decoding images and drawing detections.
//!
//! After set-up, a frame of an unchanged size goes through pre-processing,
//! inference and post-processing without heap allocation.

pub mod anchors;
pub mod annotate;
pub mod detect;
pub mod image_io;
pub mod postprocess;
pub mod preprocess;
pub mod report;
pub mod spec;

pub use detect::{Detector, Timings};
/// The `image` crate, re-exported for callers that draw or save frames.
pub use image;
pub use postprocess::{Decoder, Detection};
pub use preprocess::{Frame, PixelFormat};
pub use spec::{DetectorSpec, PreprocessSpec};

/// What can go wrong in a pipeline. Every variant names what was wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A spec is inconsistent, or does not match the model it is used with.
    Spec(String),
    /// A frame is malformed: wrong size, stride or byte count.
    Frame(String),
    /// An image could not be read or decoded.
    Image(String),
    /// The package carries no (or unreadable) pipeline metadata.
    Metadata(String),
    /// The runtime refused something (loading, shapes, dtypes).
    Runtime(ferrite_runtime::Error),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Spec(m) => write!(f, "detector spec: {m}"),
            Error::Frame(m) => write!(f, "bad frame: {m}"),
            Error::Image(m) => write!(f, "{m}"),
            Error::Metadata(m) => write!(f, "package metadata: {m}"),
            Error::Runtime(e) => write!(f, "runtime: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<ferrite_runtime::Error> for Error {
    fn from(e: ferrite_runtime::Error) -> Self {
        Error::Runtime(e)
    }
}
