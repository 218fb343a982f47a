//! SSD anchor generation, following MediaPipe's `SsdAnchorsCalculator`.

use crate::spec::AnchorSpec;

/// One anchor: centre and size, normalized to the model input (0..1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchor {
    pub x_center: f32,
    pub y_center: f32,
    pub w: f32,
    pub h: f32,
}

fn calculate_scale(min: f32, max: f32, index: usize, num_strides: usize) -> f32 {
    if num_strides == 1 {
        (min + max) * 0.5
    } else {
        min + (max - min) * index as f32 / (num_strides - 1) as f32
    }
}

/// The per-cell (height, width) anchor sizes of the layers sharing the stride
/// of `layer`, and the index of the first layer after them.
fn layer_group(a: &AnchorSpec, layer: usize) -> (Vec<(f32, f32)>, usize) {
    let mut ratios = Vec::new();
    let mut scales = Vec::new();
    let mut last = layer;
    while last < a.strides.len() && a.strides[last] == a.strides[layer] {
        let scale = calculate_scale(a.min_scale, a.max_scale, last, a.strides.len());
        if last == 0 && a.reduce_boxes_in_lowest_layer {
            ratios.extend([1.0, 2.0, 0.5]);
            scales.extend([0.1, scale, scale]);
        } else {
            for &r in &a.aspect_ratios {
                ratios.push(r);
                scales.push(scale);
            }
            if a.interpolated_scale_aspect_ratio > 0.0 {
                let next = if last == a.strides.len() - 1 {
                    1.0
                } else {
                    calculate_scale(a.min_scale, a.max_scale, last + 1, a.strides.len())
                };
                scales.push((scale * next).sqrt());
                ratios.push(a.interpolated_scale_aspect_ratio);
            }
        }
        last += 1;
    }
    let sizes = ratios
        .iter()
        .zip(&scales)
        .map(|(r, s)| {
            let sq = r.sqrt();
            (s / sq, s * sq)
        })
        .collect();
    (sizes, last)
}

fn feature_map(a: &AnchorSpec, layer: usize) -> (usize, usize) {
    if !a.feature_map_height.is_empty() {
        (a.feature_map_height[layer], a.feature_map_width[layer])
    } else {
        let s = a.strides[layer];
        (a.input_height.div_ceil(s), a.input_width.div_ceil(s))
    }
}

/// How many anchors `a` generates (without building them). `a` must have one
/// stride per layer (see [`crate::DetectorSpec::validate`]).
pub fn anchor_count(a: &AnchorSpec) -> usize {
    let mut n = 0usize;
    let mut layer = 0;
    while layer < a.num_layers.min(a.strides.len()) {
        let (sizes, next) = layer_group(a, layer);
        let (fh, fw) = feature_map(a, layer);
        n = n.saturating_add(fh.saturating_mul(fw).saturating_mul(sizes.len()));
        layer = next;
    }
    n
}

/// Generates the anchors in MediaPipe's order: layer group, row, column,
/// anchor within the cell. `a` must be valid (see [`crate::DetectorSpec::validate`]).
pub fn generate(a: &AnchorSpec) -> Vec<Anchor> {
    let mut out = Vec::with_capacity(anchor_count(a));
    let mut layer = 0;
    while layer < a.num_layers.min(a.strides.len()) {
        let (sizes, next) = layer_group(a, layer);
        let (fh, fw) = feature_map(a, layer);
        for y in 0..fh {
            for x in 0..fw {
                for &(h, w) in &sizes {
                    out.push(Anchor {
                        x_center: (x as f32 + a.anchor_offset_x) / fw as f32,
                        y_center: (y as f32 + a.anchor_offset_y) / fh as f32,
                        w: if a.fixed_anchor_size { 1.0 } else { w },
                        h: if a.fixed_anchor_size { 1.0 } else { h },
                    });
                }
            }
        }
        layer = next;
    }
    out
}
