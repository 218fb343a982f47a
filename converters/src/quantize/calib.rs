//! Calibration samples: a folder of `.npy` files (one sample each, or a
//! batch per file) or a folder of images decoded with the `image` crate and
//! turned into the model's input by a [`Preprocess`] spec.
//!
//! Every sample is checked before it is used: its shape must match the
//! model's input, and every value must be finite. Errors name the file.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

/// One calibration or evaluation sample: the input tensor's f32 values in
/// the model's layout, and where they came from (for messages).
#[derive(Debug, Clone)]
pub struct Sample {
    /// File name, with `[k]` appended for the k-th sample of a batch file.
    pub name: String,
    pub data: Vec<f32>,
}

/// Channel layout of an image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Nhwc,
    Nchw,
}

/// How an image becomes a model input (`--preprocess`).
///
/// Grammar: comma-separated items, any of `resize=HxW`, `mean=a:b:c`,
/// `std=a:b:c`, `scale=S` (a number or `1/N`), `offset=O`, `rgb` / `bgr`,
/// `nhwc` / `nchw`. A pixel value `p` in 0..=255 becomes
/// `((p * scale + offset) - mean[c]) / std[c]`, with `scale` defaulting to
/// `1/255`, `offset` to 0, `mean` to 0 and `std` to 1. Without `resize` the
/// image is resized to the model's input size; without a layout it is
/// inferred from which input dimension is 3.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocess {
    pub resize: Option<(usize, usize)>,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub scale: f32,
    pub offset: f32,
    pub bgr: bool,
    pub layout: Option<Layout>,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess {
            resize: None,
            mean: [0.0; 3],
            std: [1.0; 3],
            scale: 1.0 / 255.0,
            offset: 0.0,
            bgr: false,
            layout: None,
        }
    }
}

fn parse_num(s: &str, what: &str) -> Result<f32> {
    let v = match s.split_once('/') {
        Some((a, b)) => {
            let a: f64 = a
                .trim()
                .parse()
                .ok()
                .context(format!("{what}: bad number '{s}'"))?;
            let b: f64 = b
                .trim()
                .parse()
                .ok()
                .context(format!("{what}: bad number '{s}'"))?;
            if b == 0.0 {
                bail!("{what}: division by zero in '{s}'");
            }
            a / b
        }
        None => s
            .trim()
            .parse::<f64>()
            .ok()
            .context(format!("{what}: bad number '{s}'"))?,
    };
    if !v.is_finite() {
        bail!("{what}: '{s}' is not finite");
    }
    Ok(v as f32)
}

fn parse_triple(s: &str, what: &str) -> Result<[f32; 3]> {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.len() {
        1 => Ok([parse_num(parts[0], what)?; 3]),
        3 => Ok([
            parse_num(parts[0], what)?,
            parse_num(parts[1], what)?,
            parse_num(parts[2], what)?,
        ]),
        _ => bail!("{what}: expected one value or three separated by ':' (got '{s}')"),
    }
}

impl Preprocess {
    /// Parses a `--preprocess` spec (see the type's docs for the grammar).
    /// Errors name the item that is wrong.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut p = Preprocess::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (item, None),
            };
            fn need<'a>(v: Option<&'a str>, key: &str) -> Result<&'a str> {
                v.with_context(|| format!("--preprocess: '{key}' needs a value"))
            }
            match key {
                "resize" => {
                    let v = need(value, key)?;
                    let (h, w) = v
                        .split_once('x')
                        .context(format!("--preprocess: resize={v}: expected HxW"))?;
                    let (h, w): (usize, usize) = match (h.parse(), w.parse()) {
                        (Ok(h), Ok(w)) if h > 0 && w > 0 => (h, w),
                        _ => bail!("--preprocess: resize={v}: expected positive HxW"),
                    };
                    p.resize = Some((h, w));
                }
                "mean" => p.mean = parse_triple(need(value, key)?, "--preprocess mean")?,
                "std" => {
                    p.std = parse_triple(need(value, key)?, "--preprocess std")?;
                    if p.std.contains(&0.0) {
                        bail!("--preprocess: std must not be 0");
                    }
                }
                "scale" => p.scale = parse_num(need(value, key)?, "--preprocess scale")?,
                "offset" => p.offset = parse_num(need(value, key)?, "--preprocess offset")?,
                "rgb" | "bgr" if value.is_none() => p.bgr = key == "bgr",
                "order" => match need(value, key)? {
                    "rgb" => p.bgr = false,
                    "bgr" => p.bgr = true,
                    v => bail!("--preprocess: order={v}: expected rgb or bgr"),
                },
                "nhwc" | "nchw" if value.is_none() => {
                    p.layout = Some(if key == "nhwc" {
                        Layout::Nhwc
                    } else {
                        Layout::Nchw
                    })
                }
                "fit" => match need(value, key)? {
                    "stretch" => {}
                    v => bail!(
                        "--preprocess: fit={v}: calibration from images supports fit=stretch; \
                         use a folder of .npy files for other fits"
                    ),
                },
                "pad" => {}
                "layout" => {
                    p.layout = Some(match need(value, key)? {
                        "nhwc" | "NHWC" => Layout::Nhwc,
                        "nchw" | "NCHW" => Layout::Nchw,
                        v => bail!("--preprocess: layout={v}: expected nhwc or nchw"),
                    })
                }
                _ => bail!(
                    "--preprocess: unknown item '{item}' (expected resize=HxW, mean=, std=, \
                     scale=, offset=, rgb|bgr, nhwc|nchw)"
                ),
            }
        }
        Ok(p)
    }

    /// The layout and (height, width) of an image input of `shape`.
    fn geometry(&self, shape: &[usize]) -> Result<(Layout, usize, usize)> {
        if shape.len() != 4 || shape[0] != 1 {
            bail!(
                "image calibration needs a [1,H,W,3] or [1,3,H,W] model input (the input is {shape:?}); \
                 use a folder of .npy files instead"
            );
        }
        let layout = match self.layout {
            Some(l) => l,
            None if shape[3] == 3 => Layout::Nhwc,
            None if shape[1] == 3 => Layout::Nchw,
            None => bail!("image calibration needs 3 channels; the model input is {shape:?}"),
        };
        let (c, h, w) = match layout {
            Layout::Nhwc => (shape[3], shape[1], shape[2]),
            Layout::Nchw => (shape[1], shape[2], shape[3]),
        };
        if c != 3 {
            bail!("image calibration needs 3 channels; the model input is {shape:?}");
        }
        if let Some((rh, rw)) = self.resize {
            if (rh, rw) != (h, w) {
                bail!("--preprocess resize={rh}x{rw} does not match the model input {shape:?}");
            }
        }
        Ok((layout, h, w))
    }

    /// Turns a decoded RGB image into input values of `shape`.
    pub fn apply(&self, img: &image::RgbImage, shape: &[usize]) -> Result<Vec<f32>> {
        let (layout, h, w) = self.geometry(shape)?;
        let resized;
        let img = if img.dimensions() == (w as u32, h as u32) {
            img
        } else {
            resized = image::imageops::resize(
                img,
                w as u32,
                h as u32,
                image::imageops::FilterType::Triangle,
            );
            &resized
        };
        let mut out = vec![0f32; 3 * h * w];
        for (x, y, px) in img.enumerate_pixels() {
            let (x, y) = (x as usize, y as usize);
            for c in 0..3 {
                let src = if self.bgr { 2 - c } else { c };
                let v = (px.0[src] as f32 * self.scale + self.offset - self.mean[c]) / self.std[c];
                let i = match layout {
                    Layout::Nhwc => (y * w + x) * 3 + c,
                    Layout::Nchw => (c * h + y) * w + x,
                };
                out[i] = v;
            }
        }
        Ok(out)
    }
}

const IMAGE_EXTS: &[&str] = &["png", "jpg", "jpeg", "bmp"];

fn ext_of(p: &Path) -> String {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The sample files of a calibration folder, sorted by name: every `.npy`
/// file, or (when there is none) every image file. Other files are ignored.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| anyhow!("cannot read the calibration folder {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for e in rd {
        let e =
            e.map_err(|e| anyhow!("cannot read the calibration folder {}: {e}", dir.display()))?;
        let p = e.path();
        if p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    let npy: Vec<PathBuf> = files
        .iter()
        .filter(|p| ext_of(p) == "npy")
        .cloned()
        .collect();
    if !npy.is_empty() {
        return Ok(npy);
    }
    let images: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| IMAGE_EXTS.contains(&ext_of(p).as_str()))
        .collect();
    if images.is_empty() {
        bail!(
            "the calibration folder {} holds no .npy or image (.png, .jpg, .bmp) files",
            dir.display()
        );
    }
    Ok(images)
}

fn check_finite(name: &str, data: &[f32]) -> Result<()> {
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        bail!(
            "calibration sample {name}: value {} at flat index {i} is not finite",
            data[i]
        );
    }
    Ok(())
}

/// Reads the samples of one `.npy` file: a single sample of the input's
/// shape, or a batch `[N, ...]` whose trailing dimensions are the input's
/// (when the input's batch is 1). float32 and float64 are accepted.
pub fn read_npy(path: &Path, input_shape: &[usize]) -> Result<Vec<Sample>> {
    let fname = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| anyhow!("cannot read {fname}: {e:#}"))?;
    let file = npyz::NpyFile::new(&bytes[..])
        .map_err(|e| anyhow!("{fname} is not a .npy file (bad header): {e:#}"))?;
    if file.order() == npyz::Order::Fortran {
        bail!("{fname}: Fortran-order arrays are not supported");
    }
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    let numel = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .with_context(|| format!("{fname}: shape {shape:?} overflows"))?;
    let npyz::DType::Plain(ts) = file.dtype() else {
        bail!("{fname}: structured dtypes are not supported");
    };
    let esize = ts.size_field() as usize;
    if numel.saturating_mul(esize) > bytes.len() {
        bail!("{fname}: data is truncated (shape {shape:?})");
    }
    let values: Vec<f32> = match (ts.type_char(), esize) {
        (npyz::TypeChar::Float, 4) => file
            .into_vec::<f32>()
            .map_err(|e| anyhow!("{fname}: cannot read the data: {e:#}"))?,
        (npyz::TypeChar::Float, 8) => file
            .into_vec::<f64>()
            .map_err(|e| anyhow!("{fname}: cannot read the data: {e:#}"))?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        _ => bail!("{fname}: dtype '{ts}' is not supported (use float32 or float64)"),
    };
    let want: usize = input_shape.iter().product();
    let per_sample_shape_ok = shape == input_shape
        || (shape
            .iter()
            .filter(|&&d| d != 1)
            .eq(input_shape.iter().filter(|&&d| d != 1))
            && numel == want);
    let batch_ok = input_shape.first() == Some(&1)
        && shape.len() == input_shape.len()
        && shape[1..] == input_shape[1..];
    let samples: Vec<Vec<f32>> = if per_sample_shape_ok {
        vec![values]
    } else if batch_ok && want > 0 {
        values.chunks_exact(want).map(|c| c.to_vec()).collect()
    } else {
        bail!("{fname}: shape {shape:?} does not match the model input {input_shape:?} (one sample, or a batch [N, ...])");
    };
    let n = samples.len();
    samples
        .into_iter()
        .enumerate()
        .map(|(k, data)| {
            let name = if n == 1 {
                fname.clone()
            } else {
                format!("{fname}[{k}]")
            };
            check_finite(&name, &data)?;
            Ok(Sample { name, data })
        })
        .collect()
}

/// Decodes one image and preprocesses it into an input of `input_shape`.
pub fn read_image(path: &Path, input_shape: &[usize], pre: &Preprocess) -> Result<Sample> {
    let name = path.display().to_string();
    let img = image::ImageReader::open(path)
        .map_err(|e| anyhow!("cannot open {name}: {e:#}"))?
        .with_guessed_format()
        .map_err(|e| anyhow!("cannot read {name}: {e:#}"))?
        .decode()
        .map_err(|e| anyhow!("cannot decode the image {name}: {e:#}"))?
        .to_rgb8();
    if img.width() == 0 || img.height() == 0 {
        bail!("the image {name} is empty");
    }
    let data = pre
        .apply(&img, input_shape)
        .map_err(|e| anyhow!("image {name}: {e:#}"))?;
    check_finite(&name, &data)?;
    Ok(Sample { name, data })
}

/// Loads up to `limit` samples from `dir` for an input of `input_shape`.
/// Images need `pre`. Errors name the folder or the offending file: an
/// empty folder, a wrong shape, NaN/Inf values, an unreadable image.
pub fn load(
    dir: &Path,
    input_shape: &[usize],
    pre: &Preprocess,
    limit: usize,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Sample>> {
    let files = list(dir)?;
    let mut out = Vec::new();
    for f in &files {
        if out.len() >= limit {
            break;
        }
        if ext_of(f) == "npy" {
            out.extend(read_npy(f, input_shape)?);
        } else {
            out.push(read_image(f, input_shape, pre)?);
        }
        progress(out.len().min(limit));
    }
    out.truncate(limit);
    if out.is_empty() {
        bail!("the calibration folder {} holds no samples", dir.display());
    }
    Ok(out)
}
