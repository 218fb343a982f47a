//! SSD post-processing: decode raw boxes and keypoints against the anchors,
//! turn raw scores into class scores, threshold, and suppress overlaps (hard
//! or MediaPipe's weighted NMS). Follows MediaPipe's
//! `TensorsToDetectionsCalculator` and `NonMaxSuppressionCalculator`.
//!
//! A [`Decoder`] owns every buffer it needs; [`Decoder::decode`] allocates
//! nothing.

use crate::anchors::{self, Anchor};
use crate::spec::{
    BoxFormat, DecodeSpec, DetectorSpec, Head, NmsAlgorithm, NmsSpec, MAX_KEYPOINTS,
};
use crate::Error;

/// One detection. Coordinates are normalized to the model input (0..1) when
/// they come out of [`Decoder::decode`], and in source-image pixels once the
/// pipeline has mapped them back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Class index (see the spec's labels).
    pub class: usize,
    /// Score in 0..1 (after the sigmoid, when the spec asks for one).
    pub score: f32,
    /// `[xmin, ymin, xmax, ymax]`.
    pub bbox: [f32; 4],
    keypoints: [[f32; 2]; MAX_KEYPOINTS],
    num_keypoints: usize,
}

impl Detection {
    /// A detection with the given keypoints (at most [`MAX_KEYPOINTS`]; extra ones are dropped).
    pub fn new(class: usize, score: f32, bbox: [f32; 4], keypoints: &[[f32; 2]]) -> Self {
        let n = keypoints.len().min(MAX_KEYPOINTS);
        let mut k = [[0.0; 2]; MAX_KEYPOINTS];
        k[..n].copy_from_slice(&keypoints[..n]);
        Detection {
            class,
            score,
            bbox,
            keypoints: k,
            num_keypoints: n,
        }
    }

    /// The keypoints, `[x, y]` each.
    pub fn keypoints(&self) -> &[[f32; 2]] {
        &self.keypoints[..self.num_keypoints]
    }

    /// The keypoints, writable.
    pub fn keypoints_mut(&mut self) -> &mut [[f32; 2]] {
        &mut self.keypoints[..self.num_keypoints]
    }

    /// Box area (0 for an empty or inverted box).
    pub fn area(&self) -> f32 {
        (self.bbox[2] - self.bbox[0]).max(0.0) * (self.bbox[3] - self.bbox[1]).max(0.0)
    }
}

/// Intersection over union of two `[xmin, ymin, xmax, ymax]` boxes (0 when
/// either is empty).
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// The decoding and suppression stage of a detector.
#[derive(Debug, Clone)]
pub struct Decoder {
    decode: DecodeSpec,
    nms: NmsSpec,
    anchors: Vec<Anchor>,
    candidates: Vec<Detection>,
    order: Vec<usize>,
    remained: Vec<usize>,
    next: Vec<usize>,
}

impl Decoder {
    /// Builds the anchors and reserves every buffer. Errors if the spec is
    /// invalid or has no raw SSD outputs to decode (a `decoded` spec).
    pub fn new(spec: &DetectorSpec) -> Result<Self, Error> {
        spec.validate()?;
        let Head::Ssd {
            anchors: a,
            decode,
            nms,
        } = spec.head()?
        else {
            return Err(Error::Spec(
                "a decoded-output spec has no anchors or raw outputs to decode".into(),
            ));
        };
        let n = decode.num_boxes;
        Ok(Decoder {
            decode: decode.clone(),
            nms: nms.clone(),
            anchors: anchors::generate(a),
            candidates: Vec::with_capacity(n),
            order: Vec::with_capacity(n),
            remained: Vec::with_capacity(n),
            next: Vec::with_capacity(n),
        })
    }

    /// The anchors, in the order the model's boxes come in.
    pub fn anchors(&self) -> &[Anchor] {
        &self.anchors
    }

    /// Decodes `boxes` (`num_boxes * num_coords` values) and `scores`
    /// (`num_boxes * num_classes`), keeps anchors scoring at least
    /// `min_score`, suppresses overlaps, and writes at most `max_detections`
    /// (0: the spec's limit) detections into `out` (cleared first), best
    /// first, in normalized input coordinates. Allocates nothing when `out`
    /// has capacity for `num_boxes` detections.
    pub fn decode(
        &mut self,
        boxes: &[f32],
        scores: &[f32],
        min_score: f32,
        max_detections: usize,
        out: &mut Vec<Detection>,
    ) -> Result<(), Error> {
        let d = &self.decode;
        if boxes.len() != d.num_boxes * d.num_coords || scores.len() != d.num_boxes * d.num_classes
        {
            return Err(Error::Frame(format!(
                "detector outputs hold {} box and {} score values; {} and {} expected",
                boxes.len(),
                scores.len(),
                d.num_boxes * d.num_coords,
                d.num_boxes * d.num_classes
            )));
        }
        self.candidates.clear();
        for (i, anchor) in self.anchors.iter().enumerate() {
            // Best class of this anchor, skipping ignored classes.
            let row = &scores[i * d.num_classes..(i + 1) * d.num_classes];
            let mut best: Option<(usize, f32)> = None;
            for (c, &raw) in row.iter().enumerate() {
                if d.ignore_classes.contains(&c) {
                    continue;
                }
                let mut s = raw;
                if d.score_clipping_thresh > 0.0 {
                    s = s.clamp(-d.score_clipping_thresh, d.score_clipping_thresh);
                }
                if d.sigmoid_score {
                    s = 1.0 / (1.0 + (-s).exp());
                }
                if best.is_none_or(|(_, b)| s > b) {
                    best = Some((c, s));
                }
            }
            let Some((class, score)) = best else { continue };
            // NaN scores never pass.
            if score.is_nan() || score < min_score {
                continue;
            }
            let raw = &boxes[i * d.num_coords..(i + 1) * d.num_coords];
            self.candidates
                .push(decode_one(d, anchor, raw, class, score));
        }
        // Best first; ties keep anchor order so results are deterministic.
        self.order.clear();
        self.order.extend(0..self.candidates.len());
        let cands = &self.candidates;
        self.order
            .sort_unstable_by(|&a, &b| cands[b].score.total_cmp(&cands[a].score).then(a.cmp(&b)));
        let limit = match (max_detections, self.nms.max_detections) {
            (0, 0) => usize::MAX,
            (0, m) | (m, 0) => m,
            (a, b) => a.min(b),
        };
        out.clear();
        match self.nms.algorithm {
            NmsAlgorithm::Hard => {
                for &i in &self.order {
                    if out.len() >= limit {
                        break;
                    }
                    let c = &cands[i];
                    let suppressed = out.iter().any(|k: &Detection| {
                        (!self.nms.per_class || k.class == c.class)
                            && iou(&k.bbox, &c.bbox) > self.nms.iou_threshold
                    });
                    if !suppressed {
                        out.push(*c);
                    }
                }
            }
            NmsAlgorithm::Weighted => {
                self.remained.clear();
                self.remained.extend_from_slice(&self.order);
                while let Some(&top) = self.remained.first() {
                    if out.len() >= limit {
                        break;
                    }
                    let best = cands[top];
                    self.next.clear();
                    let mut total = 0.0f32;
                    let mut bbox = [0.0f32; 4];
                    let mut kps = [[0.0f32; 2]; MAX_KEYPOINTS];
                    for &i in &self.remained {
                        let c = &cands[i];
                        let same = !self.nms.per_class || c.class == best.class;
                        if same && iou(&c.bbox, &best.bbox) > self.nms.iou_threshold {
                            total += c.score;
                            for (acc, v) in bbox.iter_mut().zip(c.bbox) {
                                *acc += v * c.score;
                            }
                            for (acc, p) in kps.iter_mut().zip(c.keypoints()) {
                                acc[0] += p[0] * c.score;
                                acc[1] += p[1] * c.score;
                            }
                        } else {
                            self.next.push(i);
                        }
                    }
                    let mut kept = best;
                    if total > 0.0 {
                        kept.bbox = bbox.map(|v| v / total);
                        for (dst, acc) in kept.keypoints_mut().iter_mut().zip(&kps) {
                            *dst = [acc[0] / total, acc[1] / total];
                        }
                    }
                    out.push(kept);
                    // An empty best box overlaps nothing, not even itself: drop it explicitly.
                    if self.next.len() == self.remained.len() {
                        self.next.retain(|&i| i != top);
                    }
                    core::mem::swap(&mut self.remained, &mut self.next);
                }
            }
        }
        Ok(())
    }
}

fn decode_one(d: &DecodeSpec, a: &Anchor, raw: &[f32], class: usize, score: f32) -> Detection {
    let b = &raw[d.box_coord_offset..d.box_coord_offset + 4];
    let (xc, yc, w, h) = match d.box_format {
        BoxFormat::Xywh => (b[0], b[1], b[2], b[3]),
        BoxFormat::Yxhw => (b[1], b[0], b[3], b[2]),
    };
    let xc = xc / d.x_scale * a.w + a.x_center;
    let yc = yc / d.y_scale * a.h + a.y_center;
    let (w, h) = if d.apply_exponential_on_box_size {
        ((w / d.w_scale).exp() * a.w, (h / d.h_scale).exp() * a.h)
    } else {
        (w / d.w_scale * a.w, h / d.h_scale * a.h)
    };
    let mut det = Detection::new(
        class,
        score,
        [xc - w * 0.5, yc - h * 0.5, xc + w * 0.5, yc + h * 0.5],
        &[],
    );
    det.num_keypoints = d.num_keypoints;
    for k in 0..d.num_keypoints {
        let o = d.keypoint_coord_offset + k * d.num_values_per_keypoint;
        let (kx, ky) = match d.box_format {
            BoxFormat::Xywh => (raw[o], raw[o + 1]),
            BoxFormat::Yxhw => (raw[o + 1], raw[o]),
        };
        det.keypoints[k] = [
            kx / d.x_scale * a.w + a.x_center,
            ky / d.y_scale * a.h + a.y_center,
        ];
    }
    det
}
