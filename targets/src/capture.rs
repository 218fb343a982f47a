//! Camera capture: a [`FrameSource`] hands out raw frames (YUYV, NV12,
//! RGB8 or MJPEG); [`CaptureLoop`] decodes them into
//! [`ferrite_pipelines::Frame`]s, skips and counts frames that fail to
//! decode, and when the source reports [`Error::Disconnected`] closes it and
//! reopens it with exponential backoff instead of giving up.
//!
//! Live cameras ([`V4l2Camera`], `v4l2` feature) and recordings on disk
//! ([`RecordedFrames`]) go through the same loop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrite_pipelines::image_io;
use ferrite_pipelines::{Frame, PixelFormat};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Encoding of a raw frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawFormat {
    Yuyv,
    Nv12,
    Rgb8,
    /// Each frame is a JPEG image (V4L2 `MJPG`).
    Mjpeg,
}

/// A raw frame as the camera delivered it.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    pub format: RawFormat,
    pub width: usize,
    pub height: usize,
    /// Bytes per row (uncompressed formats; ignored for MJPEG).
    pub stride: usize,
    pub data: &'a [u8],
    /// The source's frame counter.
    pub sequence: u64,
}

/// Something that delivers frames: a camera or a recording.
pub trait FrameSource {
    /// Opens (or reopens) the source and returns a one-line description of
    /// what was negotiated. [`Error::Disconnected`] means "try again later".
    fn open(&mut self) -> Result<String, Error>;
    /// The next frame. [`Error::Disconnected`] makes the loop close and
    /// reopen the source; [`Error::EndOfStream`] ends capture.
    fn next_frame(&mut self) -> Result<RawFrame<'_>, Error>;
    /// Releases the device (called before reopening).
    fn close(&mut self);
}

/// Counters of a capture run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CaptureStats {
    /// Frames decoded and handed to the callback.
    pub frames: u64,
    /// Frames skipped because they could not be decoded.
    pub decode_failures: u64,
    /// Times the source was lost and reopening was attempted.
    pub reconnects: u64,
}

/// What the frame callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// The capture loop: decode, skip bad frames, reconnect with backoff.
pub struct CaptureLoop {
    /// First wait after losing the source (doubles up to `backoff_max`).
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Give up after this many consecutive failed reopen attempts (`None`: never).
    pub max_retries: Option<u32>,
    sleep: Box<dyn FnMut(Duration)>,
    stats: CaptureStats,
    rgb: Vec<u8>,
}

impl Default for CaptureLoop {
    fn default() -> Self {
        CaptureLoop {
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(8),
            max_retries: None,
            sleep: Box::new(std::thread::sleep),
            stats: CaptureStats::default(),
            rgb: Vec::new(),
        }
    }
}

impl CaptureLoop {
    /// A loop that waits with `sleep` between reconnection attempts (tests
    /// pass a function that records instead of sleeping).
    pub fn with_sleep(sleep: impl FnMut(Duration) + 'static) -> Self {
        CaptureLoop {
            sleep: Box::new(sleep),
            ..Default::default()
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CaptureStats {
        self.stats
    }

    /// Runs until the source ends, the callback says [`Flow::Stop`] or an
    /// unrecoverable error occurs. `on_frame` gets each decoded frame and
    /// the source's sequence number; its errors end the loop.
    pub fn run<S: FrameSource + ?Sized>(
        &mut self,
        source: &mut S,
        mut on_frame: impl FnMut(&Frame<'_>, u64) -> Result<Flow, Error>,
    ) -> Result<CaptureStats, Error> {
        let mut open = false;
        let mut wait = self.backoff_initial;
        let mut failures = 0u32;
        loop {
            if !open {
                match source.open() {
                    Ok(desc) => {
                        eprintln!("capture: {desc}");
                        open = true;
                        wait = self.backoff_initial;
                        failures = 0;
                    }
                    Err(Error::Disconnected(m)) => {
                        failures += 1;
                        if self.max_retries.is_some_and(|max| failures > max) {
                            return Err(Error::Disconnected(format!(
                                "{m} (gave up after {} attempts)",
                                failures
                            )));
                        }
                        eprintln!("capture: {m}; retrying in {wait:?}");
                        (self.sleep)(wait);
                        wait = (wait * 2).min(self.backoff_max);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let raw = match source.next_frame() {
                Ok(raw) => raw,
                Err(Error::EndOfStream) => return Ok(self.stats),
                Err(Error::Disconnected(m)) => {
                    eprintln!("capture: lost the source: {m}");
                    self.stats.reconnects += 1;
                    open = false;
                    source.close();
                    continue;
                }
                Err(e) => return Err(e),
            };
            let seq = raw.sequence;
            let frame = match decode(&raw, &mut self.rgb) {
                Ok(f) => f,
                Err(e) => {
                    self.stats.decode_failures += 1;
                    eprintln!(
                        "capture: skipped frame {seq} ({} skipped so far): {e}",
                        self.stats.decode_failures
                    );
                    continue;
                }
            };
            self.stats.frames += 1;
            if on_frame(&frame, seq)? == Flow::Stop {
                return Ok(self.stats);
            }
        }
    }
}

/// Turns a raw frame into a checked [`Frame`]; MJPEG is decoded into `rgb`.
pub fn decode<'a>(raw: &RawFrame<'a>, rgb: &'a mut Vec<u8>) -> Result<Frame<'a>, Error> {
    let format = match raw.format {
        RawFormat::Yuyv => PixelFormat::Yuyv,
        RawFormat::Nv12 => PixelFormat::Nv12,
        RawFormat::Rgb8 => PixelFormat::Rgb8,
        RawFormat::Mjpeg => {
            let img = image_io::decode(raw.data, &format!("MJPEG frame {}", raw.sequence))?;
            let (w, h) = (img.width() as usize, img.height() as usize);
            *rgb = img.into_raw();
            return Ok(Frame::packed(PixelFormat::Rgb8, w, h, rgb)?);
        }
    };
    let f = Frame {
        format,
        width: raw.width,
        height: raw.height,
        stride: raw.stride,
        data: raw.data,
    };
    f.check()?;
    Ok(f)
}

/// The `recording.json` of a recorded-frames folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecordingInfo {
    pub format: RawFormat,
    /// Frame size (for MJPEG, informative: each JPEG carries its own).
    pub width: usize,
    pub height: usize,
}

/// Frames recorded to a folder: `recording.json` ([`RecordingInfo`]) and one
/// file per frame (raw bytes, or a JPEG for MJPEG), played in file-name order.
pub struct RecordedFrames {
    dir: PathBuf,
    info: RecordingInfo,
    files: Vec<PathBuf>,
    next: usize,
    buf: Vec<u8>,
}

impl RecordedFrames {
    /// Opens a recording folder; errors if `recording.json` is missing or
    /// invalid or the folder holds no frames.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let meta = dir.join("recording.json");
        let text = std::fs::read_to_string(&meta)
            .map_err(|e| Error::Camera(format!("cannot read {}: {e}", meta.display())))?;
        let info: RecordingInfo = serde_json::from_str(&text)
            .map_err(|e| Error::Camera(format!("{}: {e}", meta.display())))?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::Camera(format!("cannot list {}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "recording.json"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::Camera(format!("{} holds no frames", dir.display())));
        }
        Ok(RecordedFrames {
            dir: dir.to_path_buf(),
            info,
            files,
            next: 0,
            buf: Vec::new(),
        })
    }

    /// Writes a recording: `recording.json` and `frame00000.raw` (or `.jpg`) per frame.
    pub fn write(dir: &Path, info: &RecordingInfo, frames: &[Vec<u8>]) -> Result<(), Error> {
        let io = |e: std::io::Error| Error::Camera(format!("cannot write {}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let json = serde_json::to_string_pretty(info).expect("plain struct serializes");
        std::fs::write(dir.join("recording.json"), json).map_err(io)?;
        let ext = if info.format == RawFormat::Mjpeg {
            "jpg"
        } else {
            "raw"
        };
        for (i, f) in frames.iter().enumerate() {
            std::fs::write(dir.join(format!("frame{i:05}.{ext}")), f).map_err(io)?;
        }
        Ok(())
    }

    /// What the recording holds.
    pub fn info(&self) -> &RecordingInfo {
        &self.info
    }
}

impl FrameSource for RecordedFrames {
    fn open(&mut self) -> Result<String, Error> {
        Ok(format!(
            "recording {} ({:?} {}x{}, {} frames)",
            self.dir.display(),
            self.info.format,
            self.info.width,
            self.info.height,
            self.files.len()
        ))
    }

    fn next_frame(&mut self) -> Result<RawFrame<'_>, Error> {
        let Some(path) = self.files.get(self.next) else {
            return Err(Error::EndOfStream);
        };
        self.buf = std::fs::read(path)
            .map_err(|e| Error::Camera(format!("cannot read {}: {e}", path.display())))?;
        let seq = self.next as u64;
        self.next += 1;
        let bpp = match self.info.format {
            RawFormat::Yuyv => 2,
            RawFormat::Nv12 => 1,
            RawFormat::Rgb8 => 3,
            RawFormat::Mjpeg => 0,
        };
        Ok(RawFrame {
            format: self.info.format,
            width: self.info.width,
            height: self.info.height,
            stride: self.info.width * bpp,
            data: &self.buf,
            sequence: seq,
        })
    }

    fn close(&mut self) {}
}

/// What to ask a camera for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraConfig {
    /// Device path, e.g. `/dev/video0`.
    pub device: PathBuf,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl Default for CameraConfig {
    fn default() -> Self {
        CameraConfig {
            device: PathBuf::from("/dev/video0"),
            width: 640,
            height: 480,
            fps: 30,
        }
    }
}

#[cfg(feature = "v4l2")]
mod v4l2_impl {
    use std::io;

    use v4l::buffer::Type;
    use v4l::io::mmap::Stream;
    use v4l::io::traits::CaptureStream;
    use v4l::video::capture::Parameters;
    use v4l::video::Capture;
    use v4l::{Device, FourCC};

    use super::{CameraConfig, RawFormat, RawFrame};
    use crate::Error;

    /// An open device and its MMAP stream.
    pub(super) struct Open {
        // The stream is declared first so it is dropped (buffers unmapped,
        // streaming stopped) before the device is closed.
        stream: Stream<'static>,
        _dev: Device,
        format: RawFormat,
        width: usize,
        height: usize,
        stride: usize,
    }

    fn lost(cfg: &CameraConfig, e: io::Error) -> Error {
        Error::Disconnected(format!("{}: {e}", cfg.device.display()))
    }

    /// Opens the device and negotiates YUYV (preferred) or MJPEG at the
    /// requested size and rate; the driver may pick the nearest size.
    pub(super) fn open(cfg: &CameraConfig) -> Result<(Open, String), Error> {
        let dev = Device::with_path(&cfg.device).map_err(|e| lost(cfg, e))?;
        let mut chosen = None;
        for (fourcc, raw) in [(b"YUYV", RawFormat::Yuyv), (b"MJPG", RawFormat::Mjpeg)] {
            let mut fmt = dev.format().map_err(|e| lost(cfg, e))?;
            fmt.width = cfg.width;
            fmt.height = cfg.height;
            fmt.fourcc = FourCC::new(fourcc);
            let got = dev.set_format(&fmt).map_err(|e| lost(cfg, e))?;
            if got.fourcc == FourCC::new(fourcc) {
                chosen = Some((got, raw));
                break;
            }
        }
        let Some((fmt, format)) = chosen else {
            return Err(Error::Camera(format!(
                "{} offers neither YUYV nor MJPEG",
                cfg.device.display()
            )));
        };
        // Not every driver supports setting the frame rate; capture anyway.
        let _ = dev.set_params(&Parameters::with_fps(cfg.fps));
        let mut stream =
            Stream::with_buffers(&dev, Type::VideoCapture, 4).map_err(|e| lost(cfg, e))?;
        stream.set_timeout(std::time::Duration::from_secs(2));
        let desc = format!(
            "{} {:?} {}x{} (asked {}x{} at {} fps)",
            cfg.device.display(),
            format,
            fmt.width,
            fmt.height,
            cfg.width,
            cfg.height,
            cfg.fps
        );
        Ok((
            Open {
                stream,
                _dev: dev,
                format,
                width: fmt.width as usize,
                height: fmt.height as usize,
                stride: (fmt.stride as usize).max(fmt.width as usize * 2),
            },
            desc,
        ))
    }

    pub(super) fn next<'a>(o: &'a mut Open, cfg: &CameraConfig) -> Result<RawFrame<'a>, Error> {
        let (format, width, height, stride) = (o.format, o.width, o.height, o.stride);
        let (buf, meta) = CaptureStream::next(&mut o.stream).map_err(|e| lost(cfg, e))?;
        let used = (meta.bytesused as usize).min(buf.len());
        Ok(RawFrame {
            format,
            width,
            height,
            stride,
            data: &buf[..used],
            sequence: meta.sequence as u64,
        })
    }
}

/// A V4L2 camera (MMAP streaming, YUYV or MJPEG). Without the `v4l2`
/// feature, [`FrameSource::open`] returns [`Error::FeatureDisabled`].
pub struct V4l2Camera {
    config: CameraConfig,
    #[cfg(feature = "v4l2")]
    open: Option<v4l2_impl::Open>,
}

impl V4l2Camera {
    /// A camera to be opened by the capture loop.
    pub fn new(config: CameraConfig) -> Self {
        V4l2Camera {
            config,
            #[cfg(feature = "v4l2")]
            open: None,
        }
    }

    /// Whether this build can capture from V4L2 cameras.
    pub const fn available() -> bool {
        cfg!(feature = "v4l2")
    }
}

impl FrameSource for V4l2Camera {
    fn open(&mut self) -> Result<String, Error> {
        #[cfg(feature = "v4l2")]
        {
            let (o, desc) = v4l2_impl::open(&self.config)?;
            self.open = Some(o);
            Ok(desc)
        }
        #[cfg(not(feature = "v4l2"))]
        {
            let _ = &self.config;
            Err(Error::FeatureDisabled {
                feature: "v4l2",
                what: "camera (V4L2)",
            })
        }
    }

    fn next_frame(&mut self) -> Result<RawFrame<'_>, Error> {
        #[cfg(feature = "v4l2")]
        {
            match self.open.as_mut() {
                Some(o) => v4l2_impl::next(o, &self.config),
                None => Err(Error::Disconnected("the camera is not open".into())),
            }
        }
        #[cfg(not(feature = "v4l2"))]
        {
            Err(Error::FeatureDisabled {
                feature: "v4l2",
                what: "camera (V4L2)",
            })
        }
    }

    fn close(&mut self) {
        #[cfg(feature = "v4l2")]
        {
            self.open = None;
        }
    }
}
