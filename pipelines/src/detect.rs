//! The detect pipeline: frame → fused pre-processing → session → decoding and
//! suppression → detections in source-image pixels.

use std::time::Instant;

use ferrite_runtime::{DType, Model, Options, Session, TensorView};

use crate::postprocess::{Decoder, Detection};
use crate::preprocess::{Frame, InputTensor, Resampler};
use crate::spec::{DecodedSpec, DetectorSpec, Head, ModelShapes, META_DETECTOR};
use crate::Error;

/// Milliseconds spent in each stage of the last frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    pub pre: f64,
    pub infer: f64,
    pub post: f64,
}

/// The model input buffer, in the input's element type.
#[derive(Debug)]
enum InputBuf {
    F32(Vec<f32>),
    I8 {
        data: Vec<i8>,
        scale: f32,
        zero_point: i32,
    },
    /// A uint8 image input (quantized, or raw 0..255 values without
    /// quantization: scale 1, zero point 0).
    U8 {
        data: Vec<u8>,
        scale: f32,
        zero_point: i32,
    },
}

/// The post-processing stage and its output buffers.
#[derive(Debug)]
enum Post {
    /// Raw SSD outputs, decoded and suppressed here.
    Ssd {
        decoder: Box<Decoder>,
        boxes_output: usize,
        scores_output: usize,
        boxes: Vec<f32>,
        scores: Vec<f32>,
    },
    /// Detections the model decoded itself.
    Decoded {
        spec: DecodedSpec,
        boxes: Vec<f32>,
        classes: Vec<f32>,
        scores: Vec<f32>,
        count: [f32; 1],
    },
}

/// A detector: a session plus the package's pre- and post-processing.
///
/// Build it once; [`Detector::detect`] then allocates nothing while the frame
/// size stays the same (a new size rebuilds the resampling taps once).
pub struct Detector<'m> {
    session: Session<'m>,
    spec: DetectorSpec,
    resampler: Option<Resampler>,
    post: Post,
    input: InputBuf,
    detections: Vec<Detection>,
    /// Minimum score (defaults to the spec's `min_score_thresh`).
    pub threshold: f32,
    /// Most detections per frame (0: the spec's limit).
    pub max_detections: usize,
    timings: Timings,
}

/// Reads the detector spec stored in a package (by `ferrite convert
/// --detector` / `--detector-spec`).
pub fn spec_from_model(model: &Model<'_>) -> Result<DetectorSpec, Error> {
    let entry = model.metadata(META_DETECTOR).ok_or_else(|| {
        Error::Metadata(
            "the package has no detector spec; convert it with --detector PRESET or --detector-spec FILE.toml"
                .into(),
        )
    })?;
    let spec: DetectorSpec = serde_json::from_slice(&entry.value).map_err(|e| {
        Error::Metadata(format!("{META_DETECTOR} is not a valid detector spec: {e}"))
    })?;
    spec.validate()?;
    Ok(spec)
}

/// The image input's and all outputs' shapes of `model`.
pub fn model_shapes(model: &Model<'_>) -> Result<ModelShapes, Error> {
    let t = model.tensors();
    let input = match model.inputs() {
        [i] => t[*i].shape.dims().to_vec(),
        other => {
            return Err(Error::Spec(format!(
                "a detector needs exactly one (image) input; the model has {}",
                other.len()
            )))
        }
    };
    Ok(ModelShapes {
        input,
        outputs: model
            .outputs()
            .iter()
            .map(|&o| t[o].shape.dims().to_vec())
            .collect(),
    })
}

impl<'m> Detector<'m> {
    /// A detector with the spec stored in `model`.
    pub fn new(model: &'m Model<'m>, options: Options) -> Result<Self, Error> {
        let spec = spec_from_model(model)?;
        Self::with_spec(model, spec, options)
    }

    /// A detector with an explicit spec, checked against the model's shapes.
    pub fn with_spec(
        model: &'m Model<'m>,
        spec: DetectorSpec,
        options: Options,
    ) -> Result<Self, Error> {
        spec.validate()?;
        spec.check_model(&model_shapes(model)?)?;
        let session = Session::new(model, options)?;
        let info = session.input_info(0);
        let n = info.numel();
        let input = match info.dtype {
            DType::F32 => InputBuf::F32(vec![0.0; n]),
            DType::I8 => {
                let q = info.quant.per_tensor().ok_or_else(|| {
                    Error::Spec("the int8 image input has no per-tensor quantization".into())
                })?;
                InputBuf::I8 {
                    data: vec![0; n],
                    scale: q.scale,
                    zero_point: q.zero_point,
                }
            }
            DType::U8 => {
                let q = match info.quant {
                    ferrite_runtime::Quant::None => ferrite_runtime::QParams {
                        scale: 1.0,
                        zero_point: 0,
                    },
                    ref q => q.per_tensor().ok_or_else(|| {
                        Error::Spec("the uint8 image input has no per-tensor quantization".into())
                    })?,
                };
                InputBuf::U8 {
                    data: vec![0; n],
                    scale: q.scale,
                    zero_point: q.zero_point,
                }
            }
            other => {
                return Err(Error::Spec(format!(
                    "image input of type {} is not supported (float32, int8 or uint8)",
                    other.name()
                )))
            }
        };
        let (post, used, capacity) = match spec.head()? {
            Head::Ssd { decode: d, .. } => (
                Post::Ssd {
                    decoder: Box::new(Decoder::new(&spec)?),
                    boxes_output: d.boxes_output,
                    scores_output: d.scores_output,
                    boxes: vec![0.0; d.num_boxes * d.num_coords],
                    scores: vec![0.0; d.num_boxes * d.num_classes],
                },
                vec![d.boxes_output, d.scores_output],
                d.num_boxes,
            ),
            Head::Decoded(x) => {
                // check_model made boxes [1, D, 4].
                let slots = session.outputs()[x.boxes_output].shape.dims()[1];
                (
                    Post::Decoded {
                        spec: x.clone(),
                        boxes: vec![0.0; 4 * slots],
                        classes: vec![0.0; slots],
                        scores: vec![0.0; slots],
                        count: [0.0],
                    },
                    vec![
                        x.boxes_output,
                        x.classes_output,
                        x.scores_output,
                        x.count_output,
                    ],
                    slots,
                )
            }
        };
        for o in used {
            let d = session.outputs()[o].dtype;
            if !matches!(d, DType::F32 | DType::I8) {
                return Err(Error::Spec(format!(
                    "output {o} is {}; detector outputs must be float32 or int8",
                    d.name()
                )));
            }
        }
        Ok(Detector {
            post,
            detections: Vec::with_capacity(capacity),
            threshold: spec.min_score_thresh(),
            max_detections: 0,
            session,
            spec,
            resampler: None,
            input,
            timings: Timings::default(),
        })
    }

    /// The spec in use.
    pub fn spec(&self) -> &DetectorSpec {
        &self.spec
    }

    /// The label of a detection's class.
    pub fn label(&self, d: &Detection) -> String {
        self.spec.label(d.class)
    }

    /// The detections of the last frame (as [`Detector::detect`] returned them).
    pub fn last(&self) -> &[Detection] {
        &self.detections
    }

    /// Time spent in each stage on the last frame.
    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// Runs the detector on one frame. Detections come back best first, with
    /// boxes and keypoints in the frame's pixel coordinates (letterboxing
    /// undone). Errors on a malformed frame.
    pub fn detect(&mut self, frame: &Frame<'_>) -> Result<&[Detection], Error> {
        let t0 = Instant::now();
        frame.check()?;
        if !self
            .resampler
            .as_ref()
            .is_some_and(|r| r.fits(frame.width, frame.height))
        {
            self.resampler = Some(Resampler::new(
                &self.spec.preprocess,
                frame.width,
                frame.height,
            )?);
        }
        let resampler = self.resampler.as_ref().expect("set above");
        let p = &self.spec.preprocess;
        let shape = self.session.input_info(0).shape;
        match &mut self.input {
            InputBuf::F32(buf) => {
                resampler.run(p, frame, &mut InputTensor::F32(buf))?;
                self.session
                    .set_input(0, TensorView::f32(buf, shape.dims()))?;
            }
            InputBuf::I8 {
                data,
                scale,
                zero_point,
            } => {
                resampler.run(
                    p,
                    frame,
                    &mut InputTensor::I8 {
                        data,
                        scale: *scale,
                        zero_point: *zero_point,
                    },
                )?;
                self.session
                    .set_input(0, TensorView::i8(data, shape.dims()))?;
            }
            InputBuf::U8 {
                data,
                scale,
                zero_point,
            } => {
                resampler.run(
                    p,
                    frame,
                    &mut InputTensor::U8 {
                        data,
                        scale: *scale,
                        zero_point: *zero_point,
                    },
                )?;
                self.session.set_input(
                    0,
                    TensorView {
                        dtype: DType::U8,
                        shape: shape.dims(),
                        data,
                    },
                )?;
            }
        }
        let t1 = Instant::now();
        self.session.invoke()?;
        let t2 = Instant::now();
        match &mut self.post {
            Post::Ssd {
                decoder,
                boxes_output,
                scores_output,
                boxes,
                scores,
            } => {
                read_f32(&self.session, *boxes_output, boxes)?;
                read_f32(&self.session, *scores_output, scores)?;
                decoder.decode(
                    boxes,
                    scores,
                    self.threshold,
                    self.max_detections,
                    &mut self.detections,
                )?;
            }
            Post::Decoded {
                spec,
                boxes,
                classes,
                scores,
                count,
            } => {
                read_f32(&self.session, spec.boxes_output, boxes)?;
                read_f32(&self.session, spec.classes_output, classes)?;
                read_f32(&self.session, spec.scores_output, scores)?;
                read_f32(&self.session, spec.count_output, count)?;
                decoded_detections(
                    spec,
                    (boxes, classes, scores, count[0]),
                    self.threshold,
                    self.max_detections,
                    &mut self.detections,
                );
            }
        }
        let g = resampler.geometry;
        for det in &mut self.detections {
            let [x0, y0] = g.to_source(det.bbox[0], det.bbox[1]);
            let [x1, y1] = g.to_source(det.bbox[2], det.bbox[3]);
            det.bbox = [x0, y0, x1, y1];
            for k in det.keypoints_mut() {
                *k = g.to_source(k[0], k[1]);
            }
        }
        let t3 = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        self.timings = Timings {
            pre: ms(t0, t1),
            infer: ms(t1, t2),
            post: ms(t2, t3),
        };
        Ok(&self.detections)
    }
}

/// The detections of decoded outputs (boxes ymin, xmin, ymax, xmax; the
/// count first ones, best first) scoring at least `threshold`, at most
/// `max` (0: all), normalized to the model input.
fn decoded_detections(
    spec: &DecodedSpec,
    (boxes, classes, scores, count): (&[f32], &[f32], &[f32], f32),
    threshold: f32,
    max: usize,
    out: &mut Vec<Detection>,
) {
    out.clear();
    // A NaN or negative count reads as none.
    let n = (count.max(0.0) as usize).min(scores.len());
    for i in 0..n {
        let (score, class) = (scores[i], classes[i]);
        // NaN scores and classes fail these too.
        let keep = score >= threshold && class >= 0.0;
        if !keep {
            continue;
        }
        let b = &boxes[4 * i..4 * i + 4];
        let class = (class as usize).saturating_add(spec.label_offset);
        out.push(Detection::new(class, score, [b[1], b[0], b[3], b[2]], &[]));
        if out.len() == max {
            break;
        }
    }
}

/// Copies output `i` into `dst` as f32, dequantizing an int8 output.
fn read_f32(session: &Session<'_>, i: usize, dst: &mut [f32]) -> Result<(), Error> {
    let v = session.output(i)?;
    let info = &session.outputs()[i];
    if v.data.len() != dst.len() * v.dtype.size() {
        return Err(Error::Spec(format!(
            "output {i} holds {} bytes; {} values expected",
            v.data.len(),
            dst.len()
        )));
    }
    match v.dtype {
        DType::F32 => {
            for (d, b) in dst.iter_mut().zip(v.data.chunks_exact(4)) {
                *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        DType::I8 => {
            let q = info.quant.per_tensor().ok_or_else(|| {
                Error::Spec(format!("int8 output {i} has no per-tensor quantization"))
            })?;
            for (d, &b) in dst.iter_mut().zip(v.data) {
                *d = (b as i8 as i32 - q.zero_point) as f32 * q.scale;
            }
        }
        other => {
            return Err(Error::Spec(format!(
                "output {i} is {}, not float32 or int8",
                other.name()
            )))
        }
    }
    Ok(())
}
