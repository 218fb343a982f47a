//! The pre- and post-processing a package declares: what the device must do
//! to a camera frame before the model sees it, and how it turns the model's
//! outputs into detections.
//!
//! Specs are written in TOML (`--detector-spec FILE.toml`, see
//! `docs/detection.md`), stored in the package as JSON metadata under
//! [`META_PREPROCESS`] and [`META_DETECTOR`], and checked against the model's
//! input and output shapes by [`DetectorSpec::check_model`] both at
//! conversion and when a pipeline is built.

use serde::{Deserialize, Serialize};

use crate::Error;

/// Metadata key of the pre-processing spec (JSON, [`PreprocessSpec`]).
pub const META_PREPROCESS: &str = "ferrite.preprocess";
/// Metadata key of the detector spec (JSON, the whole [`DetectorSpec`]).
pub const META_DETECTOR: &str = "ferrite.detector";

/// Most keypoints a detection can carry.
pub const MAX_KEYPOINTS: usize = 16;

/// How a frame is fitted into the model's input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Scale each axis independently to fill the input (aspect ratio changes).
    Stretch,
    /// Scale uniformly to fit, centre, and fill the rest with `pad`
    /// (detections are mapped back, undoing the padding).
    #[default]
    Letterbox,
}

/// Where output pixels sample the source (see [`crate::preprocess::tap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Coordinates {
    /// Pixel centres align (`cv::resize`, TF `half_pixel_centers`, ONNX `half_pixel`).
    #[default]
    HalfPixel,
    /// Pixel corners align and pixel `o` samples `o / scale` (OpenCV
    /// `warpAffine`, ONNX `asymmetric`).
    Asymmetric,
    /// `Asymmetric` with OpenCV's 8-bit warp arithmetic: interpolation
    /// weights snapped to 1/32 and the interpolated pixel rounded to an
    /// integer. What MediaPipe's ImageToTensor (CPU) feeds its models.
    OpencvWarp,
}

/// Channel order the model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ColorOrder {
    #[default]
    Rgb,
    Bgr,
}

/// Memory layout of the image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[1, H, W, C]`.
    #[default]
    Nhwc,
    /// `[1, C, H, W]`.
    Nchw,
}

/// Pre-processing: resize a frame to `width`x`height` and normalize each
/// channel: `value = pixel * scale[c] + offset[c]` with `pixel` in 0..=255.
///
/// In TOML, `mean`/`std` (on pixel/255, ImageNet style) may be given instead of
/// `scale`/`offset`, or `range = [lo, hi]` to map 0..255 linearly onto lo..hi.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreprocessSpec {
    /// Model input width in pixels.
    pub width: usize,
    /// Model input height in pixels.
    pub height: usize,
    #[serde(default)]
    pub resize: ResizeMode,
    /// Sampling convention of the bilinear resize.
    #[serde(default)]
    pub coordinates: Coordinates,
    /// Pixel value (0..=255, per channel in model colour order) of the
    /// letterbox padding, before normalization.
    #[serde(default)]
    pub pad: [f32; 3],
    #[serde(default)]
    pub color: ColorOrder,
    #[serde(default)]
    pub layout: Layout,
    /// Per-channel multiplier applied to the 0..=255 pixel value.
    #[serde(default = "default_scale")]
    pub scale: [f32; 3],
    /// Per-channel offset added after `scale`.
    #[serde(default)]
    pub offset: [f32; 3],
}

fn default_scale() -> [f32; 3] {
    [1.0 / 255.0; 3]
}

/// The TOML form of [`PreprocessSpec`], which also accepts `mean`/`std` and `range`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreprocessToml {
    width: usize,
    height: usize,
    #[serde(default)]
    resize: ResizeMode,
    #[serde(default)]
    coordinates: Coordinates,
    #[serde(default)]
    pad: Option<[f32; 3]>,
    #[serde(default)]
    color: ColorOrder,
    #[serde(default)]
    layout: Layout,
    scale: Option<[f32; 3]>,
    offset: Option<[f32; 3]>,
    mean: Option<[f32; 3]>,
    std: Option<[f32; 3]>,
    range: Option<[f32; 2]>,
}

impl PreprocessToml {
    fn into_spec(self) -> Result<PreprocessSpec, Error> {
        let given = [
            self.scale.is_some() || self.offset.is_some(),
            self.mean.is_some() || self.std.is_some(),
            self.range.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(Error::Spec(
                "preprocess: give only one of scale/offset, mean/std or range".into(),
            ));
        }
        let (scale, offset) = if let Some([lo, hi]) = self.range {
            ([(hi - lo) / 255.0; 3], [lo; 3])
        } else if self.mean.is_some() || self.std.is_some() {
            let mean = self.mean.unwrap_or([0.0; 3]);
            let std = self.std.unwrap_or([1.0; 3]);
            let mut scale = [0.0; 3];
            let mut offset = [0.0; 3];
            for c in 0..3 {
                scale[c] = 1.0 / (255.0 * std[c]);
                offset[c] = -mean[c] / std[c];
            }
            (scale, offset)
        } else {
            (
                self.scale.unwrap_or_else(default_scale),
                self.offset.unwrap_or([0.0; 3]),
            )
        };
        let spec = PreprocessSpec {
            width: self.width,
            height: self.height,
            resize: self.resize,
            coordinates: self.coordinates,
            pad: self.pad.unwrap_or([0.0; 3]),
            color: self.color,
            layout: self.layout,
            scale,
            offset,
        };
        spec.validate()?;
        Ok(spec)
    }
}

impl PreprocessSpec {
    /// Checks sizes and values: sizes 1..=8192, finite non-zero scales,
    /// padding within 0..=255.
    pub fn validate(&self) -> Result<(), Error> {
        if !(1..=8192).contains(&self.width) || !(1..=8192).contains(&self.height) {
            return Err(Error::Spec(format!(
                "preprocess: input size {}x{} must be within 1..=8192",
                self.width, self.height
            )));
        }
        for c in 0..3 {
            if !self.scale[c].is_finite() || self.scale[c] == 0.0 || !self.offset[c].is_finite() {
                return Err(Error::Spec(format!(
                    "preprocess: channel {c} has scale {} and offset {} (need finite, non-zero scale)",
                    self.scale[c], self.offset[c]
                )));
            }
            if !(0.0..=255.0).contains(&self.pad[c]) {
                return Err(Error::Spec(format!(
                    "preprocess: pad value {} is outside 0..=255",
                    self.pad[c]
                )));
            }
        }
        Ok(())
    }

    /// The defaults for a `width`x`height` input in `layout`: stretch,
    /// half-pixel sampling, RGB, `p / 255`, black padding.
    pub fn new(width: usize, height: usize, layout: Layout) -> Self {
        PreprocessSpec {
            width,
            height,
            resize: ResizeMode::Stretch,
            coordinates: Coordinates::HalfPixel,
            pad: [0.0; 3],
            color: ColorOrder::Rgb,
            layout,
            scale: default_scale(),
            offset: [0.0; 3],
        }
    }

    /// The model input shape this spec writes: `[1, H, W, 3]` or `[1, 3, H, W]`.
    pub fn input_shape(&self) -> [usize; 4] {
        match self.layout {
            Layout::Nhwc => [1, self.height, self.width, 3],
            Layout::Nchw => [1, 3, self.height, self.width],
        }
    }

    /// The defaults for a model input of `shape` when it is an image
    /// (`[1, H, W, 3]` or `[1, 3, H, W]`), so that `--preprocess` may leave
    /// out `resize=`; `None` otherwise.
    pub fn for_input(shape: &[usize]) -> Option<Self> {
        match *shape {
            [1, h, w, 3] => Some(Self::new(w, h, Layout::Nhwc)),
            [1, 3, h, w] => Some(Self::new(w, h, Layout::Nchw)),
            _ => None,
        }
    }

    /// Parses `ferrite convert --preprocess` (the one parser of it: the
    /// package metadata and the quantizer's image calibration both come
    /// from here): comma-separated `resize=HxW`, `mean=a:b:c`, `std=a:b:c`,
    /// `scale=S` (a number or `1/N`), `offset=O`, `rgb`/`bgr` (or `order=`),
    /// `nhwc`/`nchw` (or `layout=`), `fit=letterbox|stretch`, `pad=a:b:c`
    /// (0..=255) and `coordinates=half_pixel|asymmetric|opencv_warp`. A pixel
    /// `p` becomes `((p * scale + offset) - mean[c]) / std[c]`.
    ///
    /// Items not given keep `base`'s values (a preset's, [`Self::for_input`]'s,
    /// or the defaults of [`Self::new`]); `resize` is required when `base`
    /// is `None`.
    pub fn parse_flag(s: &str, base: Option<&PreprocessSpec>) -> Result<Self, Error> {
        let bad = |msg: String| Error::Spec(format!("--preprocess {s}: {msg}"));
        let num = |v: &str| -> Result<f32, Error> {
            let x = match v.split_once('/') {
                Some((a, b)) => a
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .zip(b.trim().parse::<f64>().ok())
                    .map(|(a, b)| a / b),
                None => v.trim().parse::<f64>().ok(),
            };
            match x {
                Some(x) if x.is_finite() => Ok(x as f32),
                _ => Err(bad(format!("'{v}' is not a number"))),
            }
        };
        let triple = |v: &str| -> Result<[f32; 3], Error> {
            let p: Vec<&str> = v.split(':').collect();
            match p.len() {
                1 => Ok([num(p[0])?; 3]),
                3 => Ok([num(p[0])?, num(p[1])?, num(p[2])?]),
                _ => Err(bad(format!(
                    "'{v}': expected one value or three separated by ':'"
                ))),
            }
        };
        let mut spec = base
            .cloned()
            .unwrap_or_else(|| Self::new(0, 0, Layout::Nhwc));
        let (mut scale, mut offset, mut mean, mut std) = (None, None, None, None);
        for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let (k, v) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (item, None),
            };
            let need = || v.ok_or_else(|| bad(format!("'{k}' needs a value")));
            match k {
                "resize" => {
                    let v = need()?;
                    let (h, w) = v
                        .split_once('x')
                        .and_then(|(h, w)| {
                            Some((h.parse::<usize>().ok()?, w.parse::<usize>().ok()?))
                        })
                        .ok_or_else(|| bad(format!("resize={v}: expected HxW")))?;
                    spec.height = h;
                    spec.width = w;
                }
                "fit" => {
                    spec.resize = match need()? {
                        "letterbox" => ResizeMode::Letterbox,
                        "stretch" => ResizeMode::Stretch,
                        v => return Err(bad(format!("fit={v}: expected letterbox or stretch"))),
                    }
                }
                "pad" => spec.pad = triple(need()?)?,
                "coordinates" => {
                    spec.coordinates = match need()? {
                        "half_pixel" => Coordinates::HalfPixel,
                        "asymmetric" => Coordinates::Asymmetric,
                        "opencv_warp" => Coordinates::OpencvWarp,
                        v => {
                            return Err(bad(format!(
                                "coordinates={v}: expected half_pixel, asymmetric or opencv_warp"
                            )))
                        }
                    }
                }
                "mean" => mean = Some(triple(need()?)?),
                "std" => std = Some(triple(need()?)?),
                "scale" => scale = Some(num(need()?)?),
                "offset" => offset = Some(num(need()?)?),
                "rgb" | "bgr" if v.is_none() => {
                    spec.color = if k == "rgb" {
                        ColorOrder::Rgb
                    } else {
                        ColorOrder::Bgr
                    }
                }
                "order" => {
                    spec.color = match need()? {
                        "rgb" => ColorOrder::Rgb,
                        "bgr" => ColorOrder::Bgr,
                        v => return Err(bad(format!("order={v}: expected rgb or bgr"))),
                    }
                }
                "nhwc" | "nchw" if v.is_none() => {
                    spec.layout = if k == "nhwc" {
                        Layout::Nhwc
                    } else {
                        Layout::Nchw
                    }
                }
                "layout" => {
                    spec.layout = match need()? {
                        "nhwc" | "NHWC" => Layout::Nhwc,
                        "nchw" | "NCHW" => Layout::Nchw,
                        v => return Err(bad(format!("layout={v}: expected nhwc or nchw"))),
                    }
                }
                _ => {
                    return Err(bad(format!(
                        "unknown item '{item}' (expected resize=HxW, mean=, std=, scale=, offset=, \
                         rgb|bgr, nhwc|nchw, fit=letterbox|stretch, pad=)"
                    )))
                }
            }
        }
        if scale.is_some() || offset.is_some() || mean.is_some() || std.is_some() {
            let scale = scale.unwrap_or(1.0 / 255.0);
            let offset = offset.unwrap_or(0.0);
            let mean = mean.unwrap_or([0.0; 3]);
            let std = std.unwrap_or([1.0; 3]);
            for c in 0..3 {
                if std[c] == 0.0 {
                    return Err(bad("std must not be 0".into()));
                }
                spec.scale[c] = scale / std[c];
                spec.offset[c] = (offset - mean[c]) / std[c];
            }
        }
        if spec.width == 0 {
            return Err(bad("resize=HxW is required".into()));
        }
        spec.validate()?;
        Ok(spec)
    }
}

/// SSD anchor generation, with the options of MediaPipe's
/// `SsdAnchorsCalculator` (same names, same meaning).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorSpec {
    pub num_layers: usize,
    pub min_scale: f32,
    pub max_scale: f32,
    #[serde(alias = "input_size_width")]
    pub input_width: usize,
    #[serde(alias = "input_size_height")]
    pub input_height: usize,
    #[serde(default = "half")]
    pub anchor_offset_x: f32,
    #[serde(default = "half")]
    pub anchor_offset_y: f32,
    pub strides: Vec<usize>,
    /// One anchor per cell for each ratio (none by default, as in MediaPipe:
    /// then only the interpolated anchor).
    #[serde(default)]
    pub aspect_ratios: Vec<f32>,
    /// Explicit feature map sizes (one per layer); derived from the strides when empty.
    #[serde(default)]
    pub feature_map_width: Vec<usize>,
    #[serde(default)]
    pub feature_map_height: Vec<usize>,
    #[serde(default)]
    pub reduce_boxes_in_lowest_layer: bool,
    /// Adds one anchor per cell with this aspect ratio and the geometric mean
    /// of this layer's and the next layer's scale (0 disables it). The
    /// default is MediaPipe's, 1.0: its graphs that leave the option out
    /// (BlazeFace short-range, palm and pose detection) get that anchor.
    #[serde(default = "one_f32")]
    pub interpolated_scale_aspect_ratio: f32,
    /// All anchors get width = height = 1 (box sizes are absolute).
    #[serde(default)]
    pub fixed_anchor_size: bool,
}

fn half() -> f32 {
    0.5
}
fn one_f32() -> f32 {
    1.0
}

/// Order of the four box values in the boxes tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BoxFormat {
    /// `x_center, y_center, w, h` (MediaPipe's `reverse_output_order: true`);
    /// keypoints `x, y`.
    Xywh,
    /// `y_center, x_center, h, w` (TensorFlow Object Detection API; MediaPipe's
    /// default, `reverse_output_order: false`); keypoints `y, x`.
    #[default]
    Yxhw,
}

/// Decoding of the raw boxes/scores tensors, with the options of MediaPipe's
/// `TensorsToDetectionsCalculator`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeSpec {
    /// Index of the model output holding the raw boxes, `[1, num_boxes, num_coords]`.
    #[serde(default)]
    pub boxes_output: usize,
    /// Index of the model output holding the scores, `[1, num_boxes, num_classes]`.
    #[serde(default = "one")]
    pub scores_output: usize,
    pub num_boxes: usize,
    pub num_coords: usize,
    #[serde(default = "one")]
    pub num_classes: usize,
    #[serde(default)]
    pub box_coord_offset: usize,
    #[serde(default)]
    pub keypoint_coord_offset: usize,
    #[serde(default)]
    pub num_keypoints: usize,
    #[serde(default = "two")]
    pub num_values_per_keypoint: usize,
    #[serde(default)]
    pub box_format: BoxFormat,
    /// MediaPipe's spelling of `box_format` (true: `xywh`); read from a TOML
    /// spec, folded into `box_format`, never stored.
    #[serde(default, skip_serializing)]
    pub reverse_output_order: Option<bool>,
    pub x_scale: f32,
    pub y_scale: f32,
    pub w_scale: f32,
    pub h_scale: f32,
    /// Box sizes are `exp(raw / scale) * anchor` instead of `raw / scale * anchor`.
    #[serde(default)]
    pub apply_exponential_on_box_size: bool,
    /// Scores are logits: apply a sigmoid (after clipping).
    #[serde(default)]
    pub sigmoid_score: bool,
    /// Raw scores are clipped to `[-t, t]` before the sigmoid (0: no clipping).
    #[serde(default)]
    pub score_clipping_thresh: f32,
    /// Anchors scoring below this are dropped before suppression.
    pub min_score_thresh: f32,
    /// Class indices never reported (e.g. the background class 0 of an SSD head).
    #[serde(default)]
    pub ignore_classes: Vec<usize>,
}

fn one() -> usize {
    1
}
fn two() -> usize {
    2
}

/// Non-maximum suppression algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NmsAlgorithm {
    /// Keep the best box, drop every box overlapping it (the default, as
    /// MediaPipe's `NonMaxSuppressionCalculator` has it).
    #[default]
    #[serde(alias = "DEFAULT")]
    Hard,
    /// MediaPipe's weighted NMS: the kept box (and its keypoints) is the
    /// score-weighted mean of every box overlapping the best one.
    #[serde(alias = "WEIGHTED")]
    Weighted,
}

/// Non-maximum suppression settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NmsSpec {
    #[serde(default)]
    pub algorithm: NmsAlgorithm,
    /// Boxes whose IoU with a kept box exceeds this are suppressed (or blended).
    #[serde(alias = "min_suppression_threshold")]
    pub iou_threshold: f32,
    /// Most detections reported per frame (0: no limit).
    #[serde(default, alias = "max_num_detections")]
    pub max_detections: usize,
    /// MediaPipe's overlap measure: `INTERSECTION_OVER_UNION` or `JACCARD`
    /// (both IoU, the only one supported); read, checked, never stored.
    #[serde(default, skip_serializing)]
    pub overlap_type: Option<String>,
    /// Suppress only among detections of the same class.
    #[serde(default)]
    pub per_class: bool,
}

/// Outputs a model decodes itself, as TFLite's `TFLite_Detection_PostProcess`
/// (the end of SSD models exported by the TensorFlow Object Detection API)
/// writes them: boxes `[1, D, 4]` (ymin, xmin, ymax, xmax, normalized to
/// the model input), classes `[1, D]`, scores `[1, D]` and the count `[1]`,
/// best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodedSpec {
    #[serde(default)]
    pub boxes_output: usize,
    #[serde(default = "one")]
    pub classes_output: usize,
    #[serde(default = "two")]
    pub scores_output: usize,
    #[serde(default = "three")]
    pub count_output: usize,
    /// Detections scoring below this are dropped.
    pub min_score_thresh: f32,
    /// Added to the model's class index to find its label (1 when the label
    /// list starts with a background entry, as the TF Object Detection API's
    /// COCO label map does; the op's classes count from the first real one).
    #[serde(default)]
    pub label_offset: usize,
}

fn three() -> usize {
    3
}

impl DecodedSpec {
    /// Checks the model's outputs: boxes `[1, D, 4]`, classes and scores
    /// `[1, D]`, the count `[1]`.
    fn check_outputs(&self, outputs: &[Vec<usize>]) -> Result<(), Error> {
        let get = |i: usize, what: &str| {
            outputs.get(i).ok_or_else(|| {
                Error::Spec(format!(
                    "decoded: {what} is output {i} but the model has {} outputs",
                    outputs.len()
                ))
            })
        };
        let boxes = get(self.boxes_output, "boxes")?;
        let d = match boxes[..] {
            [1, d, 4] => d,
            _ => {
                return Err(Error::Spec(format!(
                    "decoded: boxes (output {}) should be [1, D, 4] but the model's is {boxes:?}",
                    self.boxes_output
                )))
            }
        };
        for (i, what, want) in [
            (self.classes_output, "classes", vec![1, d]),
            (self.scores_output, "scores", vec![1, d]),
            (self.count_output, "count", vec![1]),
        ] {
            let s = get(i, what)?;
            if *s != want {
                return Err(Error::Spec(format!(
                    "decoded: {what} (output {i}) should be {want:?} but the model's is {s:?}"
                )));
            }
        }
        Ok(())
    }
}

/// What turns a detector's outputs into detections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Head<'a> {
    /// Raw SSD outputs: anchors, decoding and suppression done here.
    Ssd {
        anchors: &'a AnchorSpec,
        decode: &'a DecodeSpec,
        nms: &'a NmsSpec,
    },
    /// Detections the model decoded itself.
    Decoded(&'a DecodedSpec),
}

/// A whole detector: pre-processing, then either anchors, decoding and
/// suppression of raw outputs, or the layout of outputs the model decodes
/// itself (`decoded`); labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSpec {
    pub preprocess: PreprocessSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchors: Option<AnchorSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode: Option<DecodeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nms: Option<NmsSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded: Option<DecodedSpec>,
    /// One label per class index (empty: labels read "class N").
    #[serde(default)]
    pub labels: Vec<String>,
}

/// The TOML form of a detector spec (its `preprocess` table accepts mean/std).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectorToml {
    preprocess: PreprocessToml,
    anchors: Option<AnchorSpec>,
    decode: Option<DecodeSpec>,
    nms: Option<NmsSpec>,
    decoded: Option<DecodedSpec>,
    #[serde(default)]
    labels: Vec<String>,
}

/// Input/output shapes a spec is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelShapes {
    pub input: Vec<usize>,
    pub outputs: Vec<Vec<usize>>,
}

impl DetectorSpec {
    /// The spec of MediaPipe's BlazeFace short-range face detector
    /// (`face_detection_short_range.tflite`), as its graph configures it:
    /// 128x128 letterboxed input in [-1, 1], 896 anchors (4 layers, strides
    /// 8, 16, 16, 16), 16 values per box (box + 6 keypoints), sigmoid scores
    /// clipped at 100, threshold 0.5, weighted NMS at IoU 0.3.
    pub fn blazeface_short_range() -> Self {
        DetectorSpec {
            preprocess: PreprocessSpec {
                width: 128,
                height: 128,
                resize: ResizeMode::Letterbox,
                coordinates: Coordinates::OpencvWarp,
                pad: [0.0; 3],
                color: ColorOrder::Rgb,
                layout: Layout::Nhwc,
                scale: [2.0 / 255.0; 3],
                offset: [-1.0; 3],
            },
            anchors: Some(AnchorSpec {
                num_layers: 4,
                min_scale: 0.1484375,
                max_scale: 0.75,
                input_width: 128,
                input_height: 128,
                anchor_offset_x: 0.5,
                anchor_offset_y: 0.5,
                strides: vec![8, 16, 16, 16],
                aspect_ratios: vec![1.0],
                feature_map_width: vec![],
                feature_map_height: vec![],
                reduce_boxes_in_lowest_layer: false,
                interpolated_scale_aspect_ratio: 1.0,
                fixed_anchor_size: true,
            }),
            decode: Some(DecodeSpec {
                boxes_output: 0,
                scores_output: 1,
                num_boxes: 896,
                num_coords: 16,
                num_classes: 1,
                box_coord_offset: 0,
                keypoint_coord_offset: 4,
                num_keypoints: 6,
                num_values_per_keypoint: 2,
                box_format: BoxFormat::Xywh,
                reverse_output_order: None,
                x_scale: 128.0,
                y_scale: 128.0,
                w_scale: 128.0,
                h_scale: 128.0,
                apply_exponential_on_box_size: false,
                sigmoid_score: true,
                score_clipping_thresh: 100.0,
                min_score_thresh: 0.5,
                ignore_classes: vec![],
            }),
            nms: Some(NmsSpec {
                algorithm: NmsAlgorithm::Weighted,
                iou_threshold: 0.3,
                max_detections: 0,
                overlap_type: None,
                per_class: false,
            }),
            decoded: None,
            labels: vec!["face".into()],
        }
    }

    /// A preset by name: `blazeface-short-range`.
    pub fn preset(name: &str) -> Result<Self, Error> {
        match name {
            "blazeface-short-range" => Ok(Self::blazeface_short_range()),
            other => Err(Error::Spec(format!(
                "unknown detector preset '{other}' (known: blazeface-short-range; \
                 use --detector-spec FILE.toml for other models)"
            ))),
        }
    }

    /// Parses a TOML spec (format in `docs/detection.md`) and validates it.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let mut raw: DetectorToml =
            toml::from_str(text).map_err(|e| Error::Spec(e.to_string().trim().to_string()))?;
        if let Some(d) = &mut raw.decode {
            if let Some(reverse) = d.reverse_output_order.take() {
                let value: toml::Value = toml::from_str(text)
                    .map_err(|e| Error::Spec(e.to_string().trim().to_string()))?;
                if value
                    .get("decode")
                    .and_then(|d| d.get("box_format"))
                    .is_some()
                {
                    return Err(Error::Spec(
                        "decode: give box_format or MediaPipe's reverse_output_order, not both"
                            .into(),
                    ));
                }
                d.box_format = if reverse {
                    BoxFormat::Xywh
                } else {
                    BoxFormat::Yxhw
                };
            }
        }
        if let Some(n) = &mut raw.nms {
            match n.overlap_type.take().as_deref() {
                None | Some("INTERSECTION_OVER_UNION") | Some("JACCARD") => {}
                Some(other) => {
                    return Err(Error::Spec(format!(
                        "nms: overlap_type {other} is not supported (INTERSECTION_OVER_UNION and JACCARD are)"
                    )))
                }
            }
        }
        let spec = DetectorSpec {
            preprocess: raw.preprocess.into_spec()?,
            anchors: raw.anchors,
            decode: raw.decode,
            nms: raw.nms,
            decoded: raw.decoded,
            labels: raw.labels,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the spec on its own: consistent anchor options, the anchor count
    /// equals `decode.num_boxes`, coordinates fit in `num_coords`, at most
    /// [`MAX_KEYPOINTS`] keypoints, thresholds in range, labels match classes.
    pub fn validate(&self) -> Result<(), Error> {
        self.preprocess.validate()?;
        let err = |m: String| Err(Error::Spec(m));
        let (a, d, nms) = match self.head()? {
            Head::Decoded(x) => {
                let o = [
                    x.boxes_output,
                    x.classes_output,
                    x.scores_output,
                    x.count_output,
                ];
                if (1..4).any(|i| o[..i].contains(&o[i])) {
                    return err(format!(
                        "decoded: outputs {o:?} must be four different outputs"
                    ));
                }
                if !x.min_score_thresh.is_finite() {
                    return err("decoded: min_score_thresh must be a number".into());
                }
                return Ok(());
            }
            Head::Ssd {
                anchors,
                decode,
                nms,
            } => (anchors, decode, nms),
        };
        if a.num_layers == 0 || a.strides.len() != a.num_layers {
            return err(format!(
                "anchors: num_layers is {} but {} strides are given",
                a.num_layers,
                a.strides.len()
            ));
        }
        if a.strides.contains(&0) {
            return err("anchors: strides must be positive".into());
        }
        if !a.feature_map_width.is_empty()
            && (a.feature_map_width.len() != a.num_layers
                || a.feature_map_height.len() != a.num_layers)
        {
            return err("anchors: feature_map_width/height need one entry per layer".into());
        }
        if a.input_width == 0 || a.input_height == 0 {
            return err("anchors: the input size must be non-zero".into());
        }
        if a.aspect_ratios.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
            return err("anchors: aspect ratios must be positive".into());
        }
        let n = crate::anchors::anchor_count(a);
        if n != d.num_boxes {
            return err(format!(
                "anchors: the options generate {n} anchors but decode.num_boxes is {}",
                d.num_boxes
            ));
        }
        if d.box_coord_offset + 4 > d.num_coords {
            return err(format!(
                "decode: box_coord_offset {} + 4 exceeds num_coords {}",
                d.box_coord_offset, d.num_coords
            ));
        }
        if d.num_keypoints > MAX_KEYPOINTS {
            return err(format!(
                "decode: {} keypoints (at most {MAX_KEYPOINTS})",
                d.num_keypoints
            ));
        }
        if d.num_keypoints > 0
            && (d.num_values_per_keypoint < 2
                || d.keypoint_coord_offset + d.num_keypoints * d.num_values_per_keypoint
                    > d.num_coords)
        {
            return err(format!(
                "decode: {} keypoints of {} values from offset {} do not fit in num_coords {}",
                d.num_keypoints, d.num_values_per_keypoint, d.keypoint_coord_offset, d.num_coords
            ));
        }
        if d.num_keypoints > 0 {
            let kp = d.keypoint_coord_offset
                ..d.keypoint_coord_offset + d.num_keypoints * d.num_values_per_keypoint;
            let bx = d.box_coord_offset..d.box_coord_offset + 4;
            if kp.start < bx.end && bx.start < kp.end {
                return err(format!(
                    "decode: the keypoints (values {kp:?}) overlap the box (values {bx:?}); \
                     set keypoint_coord_offset (MediaPipe's default is 0)"
                ));
            }
        }
        if d.num_classes == 0 {
            return err("decode: num_classes must be at least 1".into());
        }
        if d.boxes_output == d.scores_output {
            return err("decode: boxes_output and scores_output are the same output".into());
        }
        for s in [d.x_scale, d.y_scale, d.w_scale, d.h_scale] {
            if !(s.is_finite() && s != 0.0) {
                return err("decode: x/y/w/h scales must be finite and non-zero".into());
            }
        }
        if !d.min_score_thresh.is_finite() {
            return err("decode: min_score_thresh must be a number".into());
        }
        if !(0.0..=1.0).contains(&nms.iou_threshold) {
            return err(format!(
                "nms: iou_threshold {} is outside 0..=1",
                nms.iou_threshold
            ));
        }
        if !self.labels.is_empty() && self.labels.len() != d.num_classes {
            return err(format!(
                "labels: {} labels for {} classes",
                self.labels.len(),
                d.num_classes
            ));
        }
        Ok(())
    }

    /// Checks the spec against a model's shapes: the image input is
    /// `[1, H, W, 3]` (or `[1, 3, H, W]` for `nchw`) with the spec's size, the
    /// boxes output is `[1, num_boxes, num_coords]` and the scores output
    /// `[1, num_boxes, num_classes]` (a leading 1 may be absent).
    pub fn check_model(&self, shapes: &ModelShapes) -> Result<(), Error> {
        let p = &self.preprocess;
        let want_in = p.input_shape();
        if shapes.input != want_in {
            return Err(Error::Spec(format!(
                "preprocess: the spec wants input shape {want_in:?} ({:?}, {}x{}) but the model's input is {:?}",
                p.layout, p.width, p.height, shapes.input
            )));
        }
        let d = match self.head()? {
            Head::Ssd { decode, .. } => decode,
            Head::Decoded(x) => return x.check_outputs(&shapes.outputs),
        };
        let out = |i: usize, what: &str, last: usize| -> Result<(), Error> {
            let s = shapes.outputs.get(i).ok_or_else(|| {
                Error::Spec(format!(
                    "decode: {what} is output {i} but the model has {} outputs",
                    shapes.outputs.len()
                ))
            })?;
            let core: &[usize] = if s.len() == 3 && s[0] == 1 {
                &s[1..]
            } else {
                s
            };
            if core != [d.num_boxes, last] {
                return Err(Error::Spec(format!(
                    "decode: {what} (output {i}) should be [1, {}, {last}] but the model's is {s:?}",
                    d.num_boxes
                )));
            }
            Ok(())
        };
        out(d.boxes_output, "boxes", d.num_coords)?;
        out(d.scores_output, "scores", d.num_classes)?;
        Ok(())
    }

    /// Which of the two forms the spec takes: raw SSD outputs (`anchors`,
    /// `decode` and `nms`, all three) or decoded ones (`decoded` alone).
    pub fn head(&self) -> Result<Head<'_>, Error> {
        match (&self.anchors, &self.decode, &self.nms, &self.decoded) {
            (Some(anchors), Some(decode), Some(nms), None) => Ok(Head::Ssd {
                anchors,
                decode,
                nms,
            }),
            (None, None, None, Some(decoded)) => Ok(Head::Decoded(decoded)),
            _ => Err(Error::Spec(
                "a detector spec has either [anchors], [decode] and [nms] (raw SSD outputs) \
                 or [decoded] alone (outputs the model decodes itself)"
                    .into(),
            )),
        }
    }

    /// The default score threshold.
    pub fn min_score_thresh(&self) -> f32 {
        match self.head() {
            Ok(Head::Ssd { decode, .. }) => decode.min_score_thresh,
            Ok(Head::Decoded(x)) => x.min_score_thresh,
            Err(_) => 0.5,
        }
    }

    /// The label of class `class` (`"class N"` when the spec has none).
    pub fn label(&self, class: usize) -> String {
        self.labels
            .get(class)
            .cloned()
            .unwrap_or_else(|| format!("class {class}"))
    }
}
