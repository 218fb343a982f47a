//! TFLite's SSD post-processing op (`TFLite_Detection_PostProcess`, what the
//! TensorFlow Object Detection API puts at the end of an exported SSD):
//! decode box encodings against anchors, then non-maximum suppression over
//! the classes, "fast" (each anchor's best classes, one class-agnostic pass)
//! or "regular" (one pass per class, then the best of all).
//!
//! The arithmetic follows TFLite's kernel to the bit: centres and sizes are
//! computed in f64 and rounded to f32, IoU in f32, candidates sorted by
//! decreasing score with ties kept in anchor order, and the regular mode's
//! per-class picks merged stably (earlier classes first on equal scores),
//! as LiteRT's single-threaded kernel does. (`exp` is `libm`'s, as
//! everywhere in this `no_std` runtime; LiteRT calls the C library's, and
//! the two can differ in the last bit of an f64, which the f32 box almost
//! never shows.) Where TFLite leaves the order to `std::partial_sort` (equal
//! scores among the several classes fast mode may report per anchor), ties
//! go to the lower class here.
//!
//! The op runs without allocating: its single output holds the four TFLite
//! outputs (boxes, classes, scores, count) followed by its working memory
//! ([`DetectionPostprocess::output_len`]); the converter splits the first
//! four off.

use bytemuck::{cast_slice_mut, Pod, Zeroable};

/// One candidate of a suppression pass: a score and what it belongs to.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct Cand {
    score: f32,
    index: u32,
}

// SAFETY: two 4-byte fields under repr(C): no padding, and every bit
// pattern is a valid f32 and u32.
unsafe impl Zeroable for Cand {}
// SAFETY: as above.
unsafe impl Pod for Cand {}

/// Decreasing score, then increasing index (a stable sort of candidates
/// listed in index order).
fn by_score(a: &Cand, b: &Cand) -> core::cmp::Ordering {
    b.score.total_cmp(&a.score).then(a.index.cmp(&b.index))
}

/// The options and geometry of one `TFLite_Detection_PostProcess`.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionPostprocess {
    /// Anchors (boxes) in.
    pub num_boxes: usize,
    /// Values per box encoding (at least 4: y, x, h, w first).
    pub box_stride: usize,
    /// Classes reported (the scores tensor may hold one more, a background
    /// class first, which is skipped).
    pub num_classes: usize,
    /// Scores per anchor: `num_classes` or `num_classes + 1`.
    pub scores_stride: usize,
    pub max_detections: usize,
    pub max_classes_per_detection: usize,
    pub detections_per_class: usize,
    pub regular_nms: bool,
    pub score_threshold: f32,
    pub iou_threshold: f32,
    /// y, x, h, w scales.
    pub scales: [f32; 4],
}

impl DetectionPostprocess {
    /// Detection slots: `max_detections * max_classes_per_detection`.
    pub fn slots(&self) -> usize {
        self.max_detections * self.max_classes_per_detection
    }

    /// Length of the op's f32 output: boxes `[slots, 4]` (ymin, xmin, ymax,
    /// xmax), classes `[slots]`, scores `[slots]`, the count, then working
    /// memory (decoded boxes 4n, a score column n, kept candidates 2n,
    /// active flags n, selected anchors n, regular-merge candidates
    /// 2(n + m), top classes 2c). `None` if that overflows.
    pub fn output_len(&self) -> Option<usize> {
        let (n, m, c) = (self.num_boxes, self.max_detections, self.num_classes);
        let slots = m.checked_mul(self.max_classes_per_detection)?;
        let scratch = n
            .checked_mul(11)?
            .checked_add(m.checked_mul(2)?)?
            .checked_add(c.checked_mul(2)?)?;
        slots.checked_mul(6)?.checked_add(1)?.checked_add(scratch)
    }

    /// Runs the op: `boxes` `[num_boxes, box_stride]`, `scores`
    /// `[num_boxes, scores_stride]`, `anchors` `[num_boxes, 4]` (y, x, h, w
    /// centre-size), `out` of [`Self::output_len`] floats (which must be
    /// `Some`). Slots past the
    /// detections found are zero.
    pub fn run(&self, boxes: &[f32], scores: &[f32], anchors: &[f32], out: &mut [f32]) {
        let (n, m, c) = (self.num_boxes, self.max_detections, self.num_classes);
        let slots = self.slots();
        let (results, scratch) = out.split_at_mut(6 * slots + 1);
        results.fill(0.0);
        let (decoded, rest) = scratch.split_at_mut(4 * n);
        let (column, rest) = rest.split_at_mut(n);
        let (kept, rest) = rest.split_at_mut(2 * n);
        let (active, rest) = rest.split_at_mut(n);
        let (selected, rest) = rest.split_at_mut(n);
        let (merge, rest) = rest.split_at_mut(2 * (n + m));
        let top = &mut rest[..2 * c];
        let selected: &mut [u32] = cast_slice_mut(selected);
        let kept: &mut [Cand] = cast_slice_mut(kept);
        let active: &mut [u32] = cast_slice_mut(active);
        let merge: &mut [Cand] = cast_slice_mut(merge);
        let top: &mut [Cand] = cast_slice_mut(top);

        self.decode(boxes, anchors, decoded);
        let offset = self.scores_stride - c;
        let (out_boxes, rest) = results.split_at_mut(4 * slots);
        let (out_classes, rest) = rest.split_at_mut(slots);
        let (out_scores, count) = rest.split_at_mut(slots);
        let mut put = |slot: usize, anchor: usize, class: usize, score: f32| {
            out_boxes[4 * slot..4 * slot + 4].copy_from_slice(&decoded[4 * anchor..4 * anchor + 4]);
            out_classes[slot] = class as f32;
            out_scores[slot] = score;
        };
        if self.regular_nms {
            // As TFLite: at most min(detections_per_class, max_detections)
            // per class, each class's picks merged into the running list
            // (earlier classes first on equal scores), which keeps its best m.
            let per_class = self.detections_per_class.min(m);
            let mut size = 0;
            for class in 0..c {
                for (row, s) in column.iter_mut().enumerate() {
                    *s = scores[row * self.scores_stride + offset + class];
                }
                let found = self.suppress(decoded, column, per_class, kept, active, selected);
                // Merge from the back: the list is merge[..size], the class's
                // picks (best first) are selected[..found].
                let (mut i, mut j) = (size, found);
                while j > 0 {
                    let anchor = selected[j - 1] as usize;
                    let new = Cand {
                        score: column[anchor],
                        index: (anchor * self.scores_stride + offset + class) as u32,
                    };
                    // The later of the two goes last: the new pick unless the
                    // list's entry scores lower.
                    if i > 0 && merge[i - 1].score < new.score {
                        merge[i + j - 1] = merge[i - 1];
                        i -= 1;
                    } else {
                        merge[i + j - 1] = new;
                        j -= 1;
                    }
                }
                size = (size + found).min(m);
            }
            for (slot, d) in merge[..size].iter().enumerate() {
                let index = d.index as usize;
                let anchor = index / self.scores_stride;
                put(
                    slot,
                    anchor,
                    index - anchor * self.scores_stride - offset,
                    d.score,
                );
            }
            count[0] = size as f32;
        } else {
            let per_anchor = self.max_classes_per_detection.min(c);
            for (row, s) in column.iter_mut().enumerate() {
                let row_scores = &scores[row * self.scores_stride + offset..][..c];
                // The first maximum, as TFLite's ArgMaxVector.
                let mut best = row_scores[0];
                for &v in &row_scores[1..] {
                    if v > best {
                        best = v;
                    }
                }
                *s = best;
            }
            let found = self.suppress(decoded, column, m, kept, active, selected);
            for (o, &anchor) in selected[..found].iter().enumerate() {
                let anchor = anchor as usize;
                let row_scores = &scores[anchor * self.scores_stride + offset..][..c];
                for (t, (k, &v)) in top.iter_mut().zip(row_scores.iter().enumerate()) {
                    *t = Cand {
                        score: v,
                        index: k as u32,
                    };
                }
                best_first(&mut top[..c], per_anchor);
                for (col, t) in top[..per_anchor].iter().enumerate() {
                    put(
                        self.max_classes_per_detection * o + col,
                        anchor,
                        t.index as usize,
                        t.score,
                    );
                }
            }
            count[0] = found as f32;
        }
    }

    /// Centre-size encodings to corners, as TFLite computes them.
    fn decode(&self, boxes: &[f32], anchors: &[f32], decoded: &mut [f32]) {
        let [sy, sx, sh, sw] = self.scales.map(f64::from);
        for (i, d) in decoded.chunks_exact_mut(4).enumerate() {
            let b = &boxes[i * self.box_stride..i * self.box_stride + 4];
            let [ay, ax, ah, aw] = [0, 1, 2, 3].map(|k| f64::from(anchors[4 * i + k]));
            let [by, bx, bh, bw] = [0, 1, 2, 3].map(|k| f64::from(b[k]));
            let yc = (by / sy * ah + ay) as f32;
            let xc = (bx / sx * aw + ax) as f32;
            let half_h = (0.5 * libm::exp(bh / sh) * ah) as f32;
            let half_w = (0.5 * libm::exp(bw / sw) * aw) as f32;
            d.copy_from_slice(&[yc - half_h, xc - half_w, yc + half_h, xc + half_w]);
        }
    }

    /// One class-agnostic suppression pass over `scores` (one per anchor):
    /// candidates at or above the score threshold, best first; each kept
    /// one removes the later ones whose IoU with it exceeds the IoU
    /// threshold; at most `max` kept. Writes the kept anchors to `selected`
    /// and returns how many.
    fn suppress(
        &self,
        decoded: &[f32],
        scores: &[f32],
        max: usize,
        kept: &mut [Cand],
        active: &mut [u32],
        selected: &mut [u32],
    ) -> usize {
        let mut k = 0;
        for (i, &s) in scores.iter().enumerate() {
            if s >= self.score_threshold {
                kept[k] = Cand {
                    score: s,
                    index: i as u32,
                };
                k += 1;
            }
        }
        let kept = &mut kept[..k];
        heap_sort(kept);
        let limit = k.min(max);
        active[..k].fill(1);
        let (mut n_active, mut n) = (k, 0);
        for i in 0..k {
            if n_active == 0 || n >= limit {
                break;
            }
            if active[i] == 0 {
                continue;
            }
            let a = kept[i].index as usize;
            selected[n] = a as u32;
            n += 1;
            active[i] = 0;
            n_active -= 1;
            for j in i + 1..k {
                if active[j] == 1 && iou(decoded, a, kept[j].index as usize) > self.iou_threshold {
                    active[j] = 0;
                    n_active -= 1;
                }
            }
        }
        n
    }
}

/// Sorts the best `n` of `c` to the front, best first.
fn best_first(c: &mut [Cand], n: usize) {
    if n > 0 {
        heap_sort(c);
    }
}

/// Sorts best first ([`by_score`]). A heapsort written out here rather than
/// `sort_unstable_by`: core's sorts instantiate several kilobytes of code per
/// element type, and this op's lists are short (candidates above the
/// threshold), so the runtime stays small.
fn heap_sort(v: &mut [Cand]) {
    // A max-heap under "worse than": the worst candidate at the root goes last.
    let worse = |a: &Cand, b: &Cand| by_score(a, b) == core::cmp::Ordering::Greater;
    let sift = |v: &mut [Cand], mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && worse(&v[child + 1], &v[child]) {
            child += 1;
        }
        if !worse(&v[child], &v[root]) {
            break;
        }
        v.swap(root, child);
        root = child;
    };
    let n = v.len();
    for root in (0..n / 2).rev() {
        sift(v, root, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift(v, 0, end);
    }
}

/// Intersection over union of decoded boxes `i` and `j`, as TFLite computes it.
fn iou(decoded: &[f32], i: usize, j: usize) -> f32 {
    let a = &decoded[4 * i..4 * i + 4];
    let b = &decoded[4 * j..4 * j + 4];
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    if area_a <= 0.0 || area_b <= 0.0 {
        return 0.0;
    }
    let ih = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iw = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ih * iw;
    inter / (area_a + area_b - inter)
}
