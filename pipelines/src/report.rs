//! The per-frame report `ferrite detect` prints and the live view serves:
//! `{"source", "width", "height", "detections": [{"label", "score", "box",
//! "keypoints"}], "timings_ms": {"pre", "infer", "post"}}`, boxes and
//! keypoints in source-image pixels.

use serde::Serialize;

use crate::{Detection, Timings};

/// One detection in a report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DetectionReport {
    pub label: String,
    pub score: f64,
    /// `[xmin, ymin, xmax, ymax]` in pixels.
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
    /// `[x, y]` in pixels.
    pub keypoints: Vec<[f64; 2]>,
}

/// Stage timings in a report (milliseconds).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct TimingsReport {
    pub pre: f64,
    pub infer: f64,
    pub post: f64,
}

/// One frame's report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FrameReport {
    pub source: String,
    pub width: usize,
    pub height: usize,
    pub detections: Vec<DetectionReport>,
    pub timings_ms: TimingsReport,
}

fn round(v: f32, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (v as f64 * k).round() / k
}

impl FrameReport {
    /// Builds a report; coordinates are rounded to 0.01 px, scores to 4
    /// digits, timings to 1 µs. `label` names a class index.
    pub fn new(
        source: &str,
        width: usize,
        height: usize,
        detections: &[Detection],
        label: impl Fn(usize) -> String,
        t: Timings,
    ) -> Self {
        let ms = |v: f64| (v * 1e3).round() / 1e3;
        FrameReport {
            source: source.to_string(),
            width,
            height,
            detections: detections
                .iter()
                .map(|d| DetectionReport {
                    label: label(d.class),
                    score: round(d.score, 4),
                    bbox: d.bbox.map(|v| round(v, 2)),
                    keypoints: d
                        .keypoints()
                        .iter()
                        .map(|k| [round(k[0], 2), round(k[1], 2)])
                        .collect(),
                })
                .collect(),
            timings_ms: TimingsReport {
                pre: ms(t.pre),
                infer: ms(t.infer),
                post: ms(t.post),
            },
        }
    }

    /// The report as one JSON line (no trailing newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }
}
