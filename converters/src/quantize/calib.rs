//! Calibration samples: a folder of `.npy` files (one sample each, or a
//! batch per file) or a folder of images decoded with the `image` crate and
//! turned into the model's input by the package's pre-processing spec (a
//! detector's, or `--preprocess`), through the same fused pass
//! ([`Resampler`]) the device runs on camera frames.
//!
//! Every sample is checked before it is used: its shape must match the
//! model's input, and every value must be finite. Errors name the file.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use ferrite_pipelines::preprocess::{Frame, InputTensor, PixelFormat, Resampler};
use ferrite_pipelines::spec::PreprocessSpec;

/// One calibration or evaluation sample: the input tensor's f32 values in
/// the model's layout, and where they came from (for messages).
#[derive(Debug, Clone)]
pub struct Sample {
    /// File name, with `[k]` appended for the k-th sample of a batch file.
    pub name: String,
    pub data: Vec<f32>,
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

/// Decodes one image and pre-processes it with `pre` into an input of
/// `input_shape`, as the device would a camera frame.
pub fn read_image(
    path: &Path,
    input_shape: &[usize],
    pre: Option<&PreprocessSpec>,
) -> Result<Sample> {
    let name = path.display().to_string();
    let Some(pre) = pre else {
        bail!(
            "{name} is an image: calibrating from images needs --preprocess (how pixels become \
             the model's input, e.g. \"scale=1/127.5,offset=-1\") or a detector (--detector, \
             --detector-spec)"
        );
    };
    if input_shape != pre.input_shape() {
        bail!(
            "the pre-processing makes {:?} inputs from images, but the model's input is {input_shape:?}",
            pre.input_shape()
        );
    }
    let img = image::ImageReader::open(path)
        .map_err(|e| anyhow!("cannot open {name}: {e:#}"))?
        .with_guessed_format()
        .map_err(|e| anyhow!("cannot read {name}: {e:#}"))?
        .decode()
        .map_err(|e| anyhow!("cannot decode the image {name}: {e:#}"))?
        .to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut data = vec![0f32; input_shape.iter().product()];
    Frame::packed(PixelFormat::Rgb8, w, h, img.as_raw())
        .and_then(|frame| {
            Resampler::new(pre, w, h)?.run(pre, &frame, &mut InputTensor::F32(&mut data))
        })
        .map_err(|e| anyhow!("image {name}: {e}"))?;
    check_finite(&name, &data)?;
    Ok(Sample { name, data })
}

/// Loads up to `limit` samples from `dir` for an input of `input_shape`.
/// Images need `pre`. Errors name the folder or the offending file: an
/// empty folder, a wrong shape, NaN/Inf values, an unreadable image.
pub fn load(
    dir: &Path,
    input_shape: &[usize],
    pre: Option<&PreprocessSpec>,
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
