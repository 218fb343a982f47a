//! Board support for Ferrite's pipelines.
//!
//! - [`capture`]: camera frames from any [`capture::FrameSource`] (V4L2 with
//!   the `v4l2` feature, or a recording of frames on disk) through one loop
//!   that decodes, reconnects with backoff and counts bad frames.
//! - [`actions`]: what happens when a label is seen: a GPIO output (any
//!   `embedded_hal::digital::OutputPin`; Raspberry Pi with the `rpi`
//!   feature), a command, or a dry run that logs.
//! - [`liveview`]: a small HTTP server with the annotated MJPEG stream and
//!   the latest detections as JSON.
//!
//! With a feature off its API still exists and returns
//! [`Error::FeatureDisabled`], so callers need no `#[cfg]`.

pub mod actions;
pub mod capture;
pub mod liveview;

/// What can go wrong on a board. Every variant names what was wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// This build was made without the cargo feature (`v4l2`, `rpi`) that
    /// provides what was asked for.
    FeatureDisabled {
        feature: &'static str,
        what: &'static str,
    },
    /// The camera went away (unplugged, driver reset) or cannot be opened
    /// now; capture retries with backoff.
    Disconnected(String),
    /// The camera or recording cannot be used as asked (unsupported
    /// format, bad size); retrying will not help.
    Camera(String),
    /// A recorded source has no more frames.
    EndOfStream,
    /// A GPIO pin or command action failed.
    Action(String),
    /// The live view server could not start.
    Server(String),
    /// A pipeline error (bad frame, image decoding).
    Pipeline(ferrite_pipelines::Error),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::FeatureDisabled { feature, what } => write!(
                f,
                "this build has no {what} support (rebuild with `--features {feature}`)"
            ),
            Error::Disconnected(m) => write!(f, "camera unavailable: {m}"),
            Error::Camera(m) => write!(f, "camera: {m}"),
            Error::EndOfStream => write!(f, "end of the recorded frames"),
            Error::Action(m) => write!(f, "action: {m}"),
            Error::Server(m) => write!(f, "live view: {m}"),
            Error::Pipeline(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<ferrite_pipelines::Error> for Error {
    fn from(e: ferrite_pipelines::Error) -> Self {
        Error::Pipeline(e)
    }
}
