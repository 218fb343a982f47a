//! `ferrite detect`: run a packaged detector on images, a folder, a camera or
//! a recording of camera frames; print one JSON line per frame, optionally
//! write annotated images, serve a live view, and drive actions.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ferrite_pipelines::report::FrameReport;
use ferrite_pipelines::{annotate, image_io, Detection, Detector, Frame, PixelFormat};
use ferrite_runtime::{Model, Options};
use ferrite_targets::actions::{
    self, Action, CommandAction, DryRunAction, GpioAction, Rule, Trigger,
};
use ferrite_targets::capture::{CameraConfig, CaptureLoop, Flow, RecordedFrames, V4l2Camera};
use ferrite_targets::liveview::LiveView;

/// Arguments of `ferrite detect`.
#[derive(clap::Args, Debug)]
pub struct DetectArgs {
    /// A .fer package converted with --detector or --detector-spec.
    pub model: PathBuf,
    /// One image (JPEG or PNG).
    #[arg(long, group = "source")]
    pub image: Option<PathBuf>,
    /// Every .jpg/.jpeg/.png in a folder, in name order.
    #[arg(long, group = "source")]
    pub images: Option<PathBuf>,
    /// A V4L2 camera, e.g. /dev/video0 (needs a build with `--features v4l2`).
    #[arg(long, group = "source")]
    pub camera: Option<PathBuf>,
    /// A folder of recorded camera frames (recording.json + one file per
    /// frame), run through the same capture loop as --camera.
    #[arg(long, group = "source")]
    pub frames: Option<PathBuf>,
    /// Camera frame size, WxH.
    #[arg(long, default_value = "640x480")]
    pub size: String,
    /// Camera frame rate.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Annotated output: a file for --image, a folder otherwise.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Minimum score (default: the package's).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Report at most this many detections per frame.
    #[arg(long)]
    pub max_detections: Option<usize>,
    /// Serve a live view at ADDR (a bare port binds 127.0.0.1).
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<String>,
    /// Exit when the source ends even with --serve (default: keep serving the last frame).
    #[arg(long)]
    pub exit_at_end: bool,
    /// Fire actions when this label is seen.
    #[arg(long, value_name = "LABEL")]
    pub trigger: Option<String>,
    /// Minimum score for the trigger.
    #[arg(long, default_value_t = 0.5)]
    pub min_score: f32,
    /// Keep actions on this long after the label was last seen (ms).
    #[arg(long, default_value_t = 1000)]
    pub hold_ms: u64,
    /// Drive this Raspberry Pi GPIO (BCM number) high while triggered (needs `--features rpi`).
    #[arg(long)]
    pub gpio: Option<u8>,
    /// Drive the GPIO low (not high) while triggered.
    #[arg(long)]
    pub active_low: bool,
    /// Run this shell command when triggered.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// Run this shell command when released.
    #[arg(long, value_name = "CMD")]
    pub exec_release: Option<String>,
    /// Log what the actions would do instead of doing it.
    #[arg(long)]
    pub dry_run: bool,
}

/// Parses `WxH`.
pub fn parse_size(s: &str) -> Result<(u32, u32)> {
    s.split_once('x')
        .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)))
        .filter(|&(w, h)| w > 0 && h > 0)
        .with_context(|| format!("--size {s}: expected WxH, e.g. 640x480"))
}

/// An RGB8 copy of a frame (for annotation).
pub fn frame_to_rgb(f: &Frame<'_>) -> image_io::RgbImage {
    let mut img = image_io::RgbImage::new(f.width as u32, f.height as u32);
    for y in 0..f.height {
        for x in 0..f.width {
            let p = f.rgb_at(x, y).map(|v| v.round() as u8);
            img.put_pixel(x as u32, y as u32, ferrite_pipelines::image::Rgb(p));
        }
    }
    img
}

/// Everything done with each frame's result besides detecting.
struct Sinks {
    out: Option<PathBuf>,
    out_is_dir: bool,
    live: Option<LiveView>,
    trigger: Option<Trigger>,
    jpeg: Vec<u8>,
}

impl Sinks {
    fn handle(
        &mut self,
        det: &Detector<'_>,
        frame: &Frame<'_>,
        source: &str,
        name: &str,
    ) -> Result<()> {
        let dets = det_list(det);
        let line = FrameReport::new(
            source,
            frame.width,
            frame.height,
            &dets,
            |c| det.spec().label(c),
            det.timings(),
        )
        .to_json();
        println!("{line}");
        if let Some(t) = &mut self.trigger {
            let labels: Vec<(String, f32)> = dets
                .iter()
                .map(|d| (det.spec().label(d.class), d.score))
                .collect();
            if let Some(ev) = t
                .update(Instant::now(), labels.iter().map(|(l, s)| (l.as_str(), *s)))
                .context("trigger action failed")?
            {
                eprintln!("trigger '{}': {ev:?}", t.rule.label);
            }
        }
        if self.out.is_none() && self.live.is_none() {
            return Ok(());
        }
        let mut img = frame_to_rgb(frame);
        annotate::draw(&mut img, &dets, |c| det.spec().label(c));
        if let Some(out) = &self.out {
            let path = if self.out_is_dir {
                out.join(format!("{name}.jpg"))
            } else {
                out.clone()
            };
            image_io::save(&img, &path)?;
        }
        if let Some(live) = &self.live {
            image_io::encode_jpeg(&img, 85, &mut self.jpeg)?;
            live.publish(self.jpeg.clone(), line);
        }
        Ok(())
    }
}

fn det_list(det: &Detector<'_>) -> Vec<Detection> {
    det.last().to_vec()
}

fn build_trigger(a: &DetectArgs) -> Result<Option<Trigger>> {
    let Some(label) = &a.trigger else {
        if a.gpio.is_some() || a.exec.is_some() || a.dry_run {
            bail!("--gpio, --exec and --dry-run need --trigger LABEL");
        }
        return Ok(None);
    };
    let mut acts: Vec<Box<dyn Action>> = Vec::new();
    if a.dry_run {
        let mut what = Vec::new();
        if let Some(p) = a.gpio {
            what.push(format!("GPIO {p}"));
        }
        if let Some(c) = &a.exec {
            what.push(format!("command `{c}`"));
        }
        if what.is_empty() {
            what.push("(no action given)".into());
        }
        acts.push(Box::new(DryRunAction {
            what: what.join(" and "),
            log: Vec::new(),
        }));
    } else {
        if let Some(p) = a.gpio {
            let pin = actions::rpi_output_pin(p).with_context(|| format!("--gpio {p}"))?;
            acts.push(Box::new(GpioAction::new(
                pin,
                a.active_low,
                format!("BCM {p}"),
            )?));
        }
        if let Some(c) = &a.exec {
            acts.push(Box::new(CommandAction {
                on_fire: c.clone(),
                on_release: a.exec_release.clone(),
            }));
        }
        if acts.is_empty() {
            bail!("--trigger {label} needs an action: --gpio PIN, --exec CMD or --dry-run");
        }
    }
    if !(0.0..=1.0).contains(&a.min_score) {
        bail!("--min-score {} must be within 0..=1", a.min_score);
    }
    Ok(Some(Trigger::new(
        Rule {
            label: label.clone(),
            min_score: a.min_score,
            hold: Duration::from_millis(a.hold_ms),
        },
        acts,
    )))
}

fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} holds no .jpg, .jpeg or .png files", dir.display());
    }
    Ok(files)
}

/// Runs `ferrite detect`.
pub fn run(a: &DetectArgs) -> Result<()> {
    let sources = [&a.image, &a.images, &a.camera, &a.frames]
        .iter()
        .filter(|s| s.is_some())
        .count();
    if sources != 1 {
        bail!("give one source: --image FILE, --images DIR, --camera /dev/videoN or --frames DIR");
    }
    if a.camera.is_some() && !V4l2Camera::available() {
        bail!(
            "this build has no camera support (V4L2); rebuild with `cargo build --release --features v4l2`, \
             or use --image / --images / --frames"
        );
    }
    if a.threshold.is_some_and(|t| !t.is_finite()) {
        bail!("--threshold must be a number");
    }
    let model =
        Model::load(&a.model).with_context(|| format!("cannot load {}", a.model.display()))?;
    let mut det = Detector::new(&model, Options::default())
        .with_context(|| format!("{} is not a detector package", a.model.display()))?;
    if let Some(t) = a.threshold {
        det.threshold = t;
    }
    if let Some(m) = a.max_detections {
        det.max_detections = m;
    }
    let out_is_dir = a.image.is_none();
    if let (Some(out), true) = (&a.out, out_is_dir) {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    }
    let live = match &a.serve {
        Some(addr) => {
            let l = LiveView::start(addr)?;
            eprintln!("live view: http://{}/", l.addr());
            Some(l)
        }
        None => None,
    };
    let mut sinks = Sinks {
        out: a.out.clone(),
        out_is_dir,
        live,
        trigger: build_trigger(a)?,
        jpeg: Vec::new(),
    };
    let mut failed = 0usize;
    if let Some(path) = &a.image {
        let img = image_io::load(path)?;
        detect_image(&mut det, &mut sinks, &img, path)?;
    } else if let Some(dir) = &a.images {
        for path in image_files(dir)? {
            let r = image_io::load(&path)
                .map_err(anyhow::Error::from)
                .and_then(|img| detect_image(&mut det, &mut sinks, &img, &path));
            if let Err(e) = r {
                eprintln!("error: {}: {e:#}", path.display());
                failed += 1;
            }
        }
    } else {
        let (mut source, name): (Box<dyn ferrite_targets::capture::FrameSource>, String) =
            if let Some(dev) = &a.camera {
                let (w, h) = parse_size(&a.size)?;
                let cfg = CameraConfig {
                    device: dev.clone(),
                    width: w,
                    height: h,
                    fps: a.fps,
                };
                (Box::new(V4l2Camera::new(cfg)), dev.display().to_string())
            } else {
                let dir = a.frames.as_ref().expect("one source is set");
                (
                    Box::new(RecordedFrames::open(dir)?),
                    dir.display().to_string(),
                )
            };
        let mut cap = CaptureLoop::default();
        let stats = cap.run(source.as_mut(), |frame, seq| {
            det.detect(frame).map_err(ferrite_targets::Error::from)?;
            sinks
                .handle(
                    &det,
                    frame,
                    &format!("{name}#{seq}"),
                    &format!("frame{seq:06}"),
                )
                .map_err(|e| ferrite_targets::Error::Camera(format!("{e:#}")))?;
            Ok(Flow::Continue)
        })?;
        eprintln!(
            "capture: {} frames, {} skipped (decode failures), {} reconnects",
            stats.frames, stats.decode_failures, stats.reconnects
        );
    }
    if let Some(t) = &mut sinks.trigger {
        t.shutdown()?;
    }
    if failed > 0 {
        bail!("{failed} image(s) could not be processed");
    }
    if let (Some(l), false) = (&sinks.live, a.exit_at_end) {
        eprintln!(
            "live view: the source ended; serving the last frame at http://{}/ until interrupted",
            l.addr()
        );
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    Ok(())
}

fn detect_image(
    det: &mut Detector<'_>,
    sinks: &mut Sinks,
    img: &image_io::RgbImage,
    path: &Path,
) -> Result<()> {
    let frame = Frame::packed(
        PixelFormat::Rgb8,
        img.width() as usize,
        img.height() as usize,
        img.as_raw(),
    )?;
    det.detect(&frame)
        .with_context(|| format!("detecting in {}", path.display()))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    sinks.handle(det, &frame, &path.display().to_string(), &name)
}
