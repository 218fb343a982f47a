//! GPTQ weight rounding (the default; `--weight-rounding nearest` turns it
//! off).
//!
//! Round-to-nearest makes every int8 weight as close to its float value as
//! it can be. What matters is the layer's output, `w · x`, and there the
//! rounding errors of a row add up, weighted by the inputs. GPTQ (Frantar et
//! al. 2022, after Optimal Brain Quantization) rounds a row one input
//! column at a time and moves each column's rounding error onto the columns
//! not yet rounded, in the proportions that cancel it best on the
//! calibration inputs: those proportions come from the inverse of
//! `H = Σ x xᵀ`, the inputs' second moments. Columns go in the order of
//! decreasing `H[i][i]` (the inputs that carry the most energy first).
//!
//! The per-channel scales stay the max-abs ones of `plan::quantize_weights`,
//! so the package format and the kernels are unchanged; only which way each
//! weight rounds differs.
//!
//! Why it matters: in BlazeFace's 8×8 score head (6 × 96 weights reading
//! large ReLU activations), round-to-nearest weights alone moved the score
//! logits near the 0.5 threshold by 0.24 rms, enough to flip borderline
//! faces; GPTQ weights moved them by 0.10 (measured on the front-128 ONNX
//! twin with the float activations, before this module was written). In
//! Ferrite's whole int8 BlazeFace, with the layer-by-layer bias correction,
//! the score-logit error within ±1 of the threshold went from 0.214 to
//! 0.133 rms; MobileNetV2 gained 0.8 to 2.7 dB end to end
//! (docs/quantization.md).
//!
//! `H` is measured on the float model's activations (one extra float pass
//! over the calibration samples for every 256 MB of `H` matrices). Layers
//! covered: CONV_2D with one group, DEPTHWISE_CONV_2D (one `H` per input
//! channel) and FULLY_CONNECTED, up to [`MAX_INPUTS`] inputs per output.
//! Anything else, or a layer whose `H` is degenerate, keeps round-to-nearest.

use std::collections::HashMap;

use anyhow::Result;
use ferrite_runtime::{DType, Model, OpCode};
use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut};

use super::{calib::Sample, f32s, plan};
use crate::ir::Graph;

/// Dampening added to `H`'s diagonal, as a fraction of its mean (GPTQ's
/// `percdamp`): keeps the inverse stable when inputs are nearly collinear.
const DAMP: f64 = 0.01;
/// Patch rows gathered before they are folded into `H`.
const CHUNK_ROWS: usize = 256;
/// Columns of `H` per GEMM when patches are folded in.
const FOLD_COLUMNS: usize = 128;
/// Layers whose rows are shorter than this fold on one thread: their GEMMs
/// are too small to pay for starting another.
const PARALLEL_FOLD: usize = 256;

/// How a layer's input becomes the rows its weight rows multiply.
#[derive(Debug, Clone, Copy)]
enum Reads {
    /// CONV_2D: patches of `kh × kw × cin` (the weights' row order).
    Conv(Window),
    /// DEPTHWISE_CONV_2D: per input channel, patches of `kh × kw`.
    Depthwise { win: Window, mult: usize },
    /// FULLY_CONNECTED: rows of `k` values.
    Dense { k: usize },
}

#[derive(Debug, Clone, Copy)]
struct Window {
    kh: usize,
    kw: usize,
    cin: usize,
    stride: [usize; 2],
    dil: [usize; 2],
    /// top, left, bottom, right
    pads: [usize; 4],
}

/// One weighted layer and the second moments of its inputs so far.
struct Layer {
    node: usize,
    reads: Reads,
    /// `Σ x xᵀ` of the rows (conv, dense), or for depthwise layers every
    /// channel's `kh·kw × kh·kw` sums, laid out `[i][j][channel]` so that
    /// one position updates all channels with contiguous, vectorizable adds.
    sums: Vec<f64>,
    /// Scratch: patch rows (conv, dense) or one position's taps (depthwise).
    buf: Vec<f64>,
}

impl Layer {
    /// The layer, its sums not yet allocated ([`Layer::start`]).
    fn new(node: usize, reads: Reads) -> Layer {
        Layer {
            node,
            reads,
            sums: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// How many inputs one weight row reads (`H` is this square).
    fn row_len(&self) -> usize {
        match self.reads {
            Reads::Conv(w) => w.kh * w.kw * w.cin,
            Reads::Depthwise { win, .. } => win.kh * win.kw,
            Reads::Dense { k } => k,
        }
    }

    /// How many values `sums` holds: one `H`, or one per depthwise channel.
    fn sums_len(&self) -> usize {
        let channels = match self.reads {
            Reads::Depthwise { win, .. } => win.cin,
            _ => 1,
        };
        self.row_len().pow(2) * channels
    }

    /// Bytes the layer holds while it is measured: `sums` and its scratch
    /// (a chunk of patch rows, or one position's taps of every channel).
    fn pass_bytes(&self) -> usize {
        let scratch = match self.reads {
            Reads::Depthwise { win, .. } => self.row_len() * win.cin,
            _ => CHUNK_ROWS * self.row_len(),
        };
        (self.sums_len() + scratch) * std::mem::size_of::<f64>()
    }

    /// Allocates the sums when the layer's pass begins.
    fn start(&mut self) {
        self.sums = vec![0.0; self.sums_len()];
    }

    /// `H` of a conv or dense layer (its upper triangle is what
    /// [`Layer::fold_rows`] sums).
    fn matrix(&self) -> DMatrix<f64> {
        let k = self.row_len();
        let mut h = DMatrix::from_column_slice(k, k, &self.sums);
        h.fill_lower_triangle_with_upper_triangle();
        h
    }

    /// `H` of depthwise input channel `c`.
    fn channel_matrix(&self, c: usize, taps: usize, cin: usize) -> DMatrix<f64> {
        DMatrix::from_fn(taps, taps, |i, j| self.sums[(i * taps + j) * cin + c])
    }

    /// Folds the `rows` patches in `buf` (each `k` values) into the upper
    /// triangle of `H` (column-major in `sums`), one GEMM (matrixmultiply,
    /// through nalgebra) per block of [`FOLD_COLUMNS`] columns, each over
    /// the rows down to its block's last: about half the work of the whole
    /// square. Wide layers share the blocks among [`super::worker_threads`];
    /// each block's sums are the same whichever thread computes them.
    fn fold_rows(&mut self, k: usize) {
        self.fold_rows_on(k, super::worker_threads());
    }

    /// [`Layer::fold_rows`] on up to `threads` threads.
    fn fold_rows_on(&mut self, k: usize, threads: usize) {
        let rows = self.buf.len() / k;
        if rows == 0 {
            return;
        }
        let patches = &self.buf[..rows * k];
        // `pt` is k × rows (a patch per column); `p` the same values as
        // rows × k, the transpose, without a copy.
        let pt = DMatrixView::from_slice(patches, k, rows);
        let p = DMatrixView::from_slice_with_strides(patches, rows, k, k, 1);
        let fold = |c0: usize, cols: &mut [f64]| {
            let width = cols.len() / k;
            let end = c0 + width;
            let mut h = DMatrixViewMut::from_slice_with_strides_mut(cols, end, width, 1, k);
            h.gemm(1.0, &pt.rows(0, end), &p.columns(c0, width), 1.0);
        };
        // Blocks of FOLD_COLUMNS, the last one taking the rest: nalgebra
        // hands a product with a dimension of 5 or less to its own loop,
        // which sums in another order than matrixmultiply (and than one
        // GEMM over the whole square, which `H` must equal bit for bit).
        let mut blocks: Vec<(usize, &mut [f64])> = Vec::new();
        let mut rest: &mut [f64] = &mut self.sums;
        let mut c0 = 0;
        while !rest.is_empty() {
            let width = if k - c0 < 2 * FOLD_COLUMNS {
                k - c0
            } else {
                FOLD_COLUMNS
            };
            let (cols, tail) = rest.split_at_mut(width * k);
            blocks.push((c0, cols));
            (rest, c0) = (tail, c0 + width);
        }
        let threads = threads.min(blocks.len());
        if threads <= 1 || k < PARALLEL_FOLD {
            for (c0, cols) in blocks {
                fold(c0, cols);
            }
        } else {
            // Blocks dealt round-robin from the widest (last) end: the
            // triangle's work grows with the block index.
            let mut shares: Vec<Vec<(usize, &mut [f64])>> =
                (0..threads).map(|_| Vec::new()).collect();
            for (i, b) in blocks.into_iter().rev().enumerate() {
                shares[i % threads].push(b);
            }
            std::thread::scope(|s| {
                for share in shares {
                    s.spawn(|| {
                        for (c0, cols) in share {
                            fold(c0, cols);
                        }
                    });
                }
            });
        }
        self.buf.clear();
    }
}

fn attr(g: &Graph, n: usize, k: usize, default: usize) -> usize {
    g.nodes[n]
        .attrs
        .get(k)
        .and_then(|&v| usize::try_from(v).ok())
        .unwrap_or(default)
}

/// The layer node `n` makes, when GPTQ knows how to read its input.
fn layer(g: &Graph, n: usize) -> Option<Layer> {
    let node = &g.nodes[n];
    let x = &g.tensors[(*node.inputs.first()?)?];
    let w = &g.tensors[(*node.inputs.get(1)?)?];
    w.f32_data()?;
    let window = |kh, kw, cin| Window {
        kh,
        kw,
        cin,
        stride: [attr(g, n, 0, 1), attr(g, n, 1, 1)],
        dil: [attr(g, n, 2, 1), attr(g, n, 3, 1)],
        pads: [
            attr(g, n, 4, 0),
            attr(g, n, 5, 0),
            attr(g, n, 6, 0),
            attr(g, n, 7, 0),
        ],
    };
    let reads = match (node.code, w.shape.as_slice(), x.shape.as_slice()) {
        (OpCode::Conv2d, &[_, kh, kw, ci], &[_, _, _, cin]) if ci == cin && kh * kw * ci > 0 => {
            Reads::Conv(window(kh, kw, cin))
        }
        (OpCode::DepthwiseConv2d, &[1, kh, kw, co], &[_, _, _, cin])
            if cin > 0 && kh * kw > 0 && co % cin == 0 =>
        {
            Reads::Depthwise {
                win: window(kh, kw, cin),
                mult: co / cin,
            }
        }
        (OpCode::FullyConnected, &[_, k], _) if k > 0 => Reads::Dense { k },
        _ => return None,
    };
    // The windows must be the ones the runtime evaluates: an output size
    // that disagrees with the padding attributes leaves the layer alone.
    if let Reads::Conv(win) | Reads::Depthwise { win, .. } = reads {
        let y = &g.tensors[*node.outputs.first()?];
        let geo = Geometry::of(&win, &x.shape, x.shape.iter().product())?;
        if y.shape.get(1..3) != Some(&[geo.oh, geo.ow][..]) {
            return None;
        }
    }
    Some(Layer::new(n, reads))
}

impl Layer {
    /// Adds one sample's input (`x`, NHWC or rows of `k`) to `H`.
    fn add(&mut self, x: &[f32], shape: &[usize]) {
        match self.reads {
            Reads::Dense { k } => {
                if !x.len().is_multiple_of(k) {
                    return;
                }
                for chunk in x.chunks(CHUNK_ROWS * k) {
                    self.buf.extend(chunk.iter().map(|&v| v as f64));
                    self.fold_rows(k);
                }
            }
            Reads::Conv(win) => {
                let Some(geo) = Geometry::of(&win, shape, x.len()) else {
                    return;
                };
                let k = win.kh * win.kw * win.cin;
                for (b, oy, ox) in geo.positions() {
                    // Zero where a tap falls in the padding.
                    let start = self.buf.len();
                    self.buf.resize(start + k, 0.0);
                    for (t, at) in geo.taps(&win, oy, ox) {
                        let src = &x[geo.offset(b, at)..][..win.cin];
                        let dst = &mut self.buf[start + t * win.cin..][..win.cin];
                        for (d, &v) in dst.iter_mut().zip(src) {
                            *d = v as f64;
                        }
                    }
                    if self.buf.len() == CHUNK_ROWS * k {
                        self.fold_rows(k);
                    }
                }
                self.fold_rows(k);
            }
            Reads::Depthwise { win, .. } => {
                let Some(geo) = Geometry::of(&win, shape, x.len()) else {
                    return;
                };
                let (taps, c) = (win.kh * win.kw, win.cin);
                let mut patch = std::mem::take(&mut self.buf);
                for (b, oy, ox) in geo.positions() {
                    patch.clear();
                    patch.resize(taps * c, 0.0);
                    for (t, at) in geo.taps(&win, oy, ox) {
                        let src = &x[geo.offset(b, at)..][..c];
                        for (d, &v) in patch[t * c..][..c].iter_mut().zip(src) {
                            *d = v as f64;
                        }
                    }
                    // Upper triangle only; mirrored when read.
                    for i in 0..taps {
                        let pi = &patch[i * c..][..c];
                        for j in i..taps {
                            let pj = &patch[j * c..][..c];
                            let h = &mut self.sums[(i * taps + j) * c..][..c];
                            for ((h, &a), &b) in h.iter_mut().zip(pi).zip(pj) {
                                *h += a * b;
                            }
                        }
                    }
                }
                self.buf = patch;
            }
        }
    }

    /// The GPTQ-rounded int8 weights, in the weight tensor's layout, with
    /// the per-channel `scales` of `plan::quantize_weights`.
    fn round(&self, g: &Graph, scales: &[f32]) -> Option<Vec<i8>> {
        let wt = &g.tensors[g.nodes[self.node].inputs[1]?];
        let w = wt.f32_data()?;
        let mut out = vec![0i8; w.len()];
        match self.reads {
            Reads::Conv(_) | Reads::Dense { .. } => {
                let h = self.matrix();
                let k = h.nrows();
                if w.len() != scales.len() * k {
                    return None;
                }
                let rows: Vec<Vec<f64>> = w
                    .chunks_exact(k)
                    .map(|r| r.iter().map(|&v| v as f64).collect())
                    .collect();
                let q = gptq(&h, rows, scales)?;
                for (dst, src) in out.chunks_exact_mut(k).zip(q) {
                    dst.copy_from_slice(&src);
                }
            }
            Reads::Depthwise { win, mult } => {
                // Weights [1, kh, kw, cin·mult]: channel o's tap t at t·cout + o.
                let taps = win.kh * win.kw;
                let cout = win.cin * mult;
                if w.len() != taps * cout || scales.len() != cout {
                    return None;
                }
                for c in 0..win.cin {
                    let mut h = self.channel_matrix(c, taps, win.cin);
                    h.fill_lower_triangle_with_upper_triangle();
                    // The channel's `mult` outputs share its `H`: one call.
                    let outs = c * mult..(c + 1) * mult;
                    let rows: Vec<Vec<f64>> = outs
                        .clone()
                        .map(|o| (0..taps).map(|t| w[t * cout + o] as f64).collect())
                        .collect();
                    // A channel that never fired keeps nearest rounding.
                    let q = gptq(&h, rows.clone(), &scales[outs.clone()]).unwrap_or_else(|| {
                        rows.iter()
                            .zip(&scales[outs.clone()])
                            .map(|(r, &s)| nearest(r, s as f64))
                            .collect()
                    });
                    for (o, qo) in outs.zip(q) {
                        for (t, &v) in qo.iter().enumerate() {
                            out[t * cout + o] = v;
                        }
                    }
                }
            }
        }
        Some(out)
    }
}

fn nearest(row: &[f64], s: f64) -> Vec<i8> {
    row.iter()
        .map(|v| (v / s).round().clamp(-127.0, 127.0) as i8)
        .collect()
}

/// Where the windows of a conv over one input fall.
struct Geometry {
    n: usize,
    ih: usize,
    iw: usize,
    oh: usize,
    ow: usize,
    c: usize,
}

impl Geometry {
    fn of(win: &Window, shape: &[usize], len: usize) -> Option<Geometry> {
        let &[n, ih, iw, c] = shape else { return None };
        if c != win.cin || n * ih * iw * c != len {
            return None;
        }
        let out = |size: usize, k: usize, d: usize, s: usize, before: usize, after: usize| {
            let eff = (k.checked_sub(1)?).checked_mul(d)? + 1;
            (size + before + after)
                .checked_sub(eff)
                .map(|v| v / s.max(1) + 1)
        };
        Some(Geometry {
            n,
            ih,
            iw,
            oh: out(
                ih,
                win.kh,
                win.dil[0],
                win.stride[0],
                win.pads[0],
                win.pads[2],
            )?,
            ow: out(
                iw,
                win.kw,
                win.dil[1],
                win.stride[1],
                win.pads[1],
                win.pads[3],
            )?,
            c,
        })
    }

    fn positions(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        (0..self.n)
            .flat_map(move |b| (0..self.oh).flat_map(move |y| (0..self.ow).map(move |x| (b, y, x))))
    }

    /// The taps of the window at `(oy, ox)` that fall inside the input:
    /// `(tap index, (iy, ix))`.
    fn taps<'a>(
        &'a self,
        win: &'a Window,
        oy: usize,
        ox: usize,
    ) -> impl Iterator<Item = (usize, (usize, usize))> + 'a {
        (0..win.kh).flat_map(move |ty| {
            (0..win.kw).filter_map(move |tx| {
                let iy = (oy * win.stride[0] + ty * win.dil[0]).checked_sub(win.pads[0])?;
                let ix = (ox * win.stride[1] + tx * win.dil[1]).checked_sub(win.pads[1])?;
                (iy < self.ih && ix < self.iw).then_some((ty * win.kw + tx, (iy, ix)))
            })
        })
    }

    fn offset(&self, b: usize, (iy, ix): (usize, usize)) -> usize {
        ((b * self.ih + iy) * self.iw + ix) * self.c
    }
}

/// GPTQ on `rows` (each of `H`'s size) with one scale per row (or one for
/// all). `None` when `H` carries no information or cannot be inverted.
fn gptq(h: &DMatrix<f64>, mut rows: Vec<Vec<f64>>, scales: &[f32]) -> Option<Vec<Vec<i8>>> {
    let k = h.nrows();
    let diag: Vec<f64> = (0..k).map(|i| h[(i, i)]).collect();
    let mean = diag.iter().sum::<f64>() / k.max(1) as f64;
    if !(mean > 0.0 && mean.is_finite()) {
        return None;
    }
    // Inputs with the most energy first; an input that was always zero gets
    // a unit diagonal (its row and column are zero, so it moves nothing).
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| diag[b].total_cmp(&diag[a]));
    let mut hp = DMatrix::from_fn(k, k, |i, j| h[(order[i], order[j])]);
    for i in 0..k {
        if hp[(i, i)] <= 0.0 {
            hp[(i, i)] = 1.0;
        }
        hp[(i, i)] += DAMP * mean;
    }
    // GPTQ's update uses the upper Cholesky factor of H⁻¹; `l` is its
    // transpose, so row i of that factor is column i of `l` (contiguous).
    let hinv = hp.cholesky()?.inverse();
    let l = hinv.cholesky()?.unpack();
    let mut out = Vec::with_capacity(rows.len());
    for (r, row) in rows.iter_mut().enumerate() {
        let s = scales[if scales.len() == 1 { 0 } else { r }] as f64;
        let mut w: Vec<f64> = order.iter().map(|&i| row[i]).collect();
        let mut q = vec![0i8; k];
        for i in 0..k {
            let v = (w[i] / s).round().clamp(-127.0, 127.0);
            q[order[i]] = v as i8;
            let err = (w[i] - v * s) / l[(i, i)];
            let col = l.column(i);
            for j in i + 1..k {
                w[j] -= err * col[j];
            }
        }
        out.push(q);
    }
    Some(out)
}

/// Layers whose weight rows read more inputs than this keep nearest
/// rounding: inverting `H` costs O(k³) with nalgebra's unblocked Cholesky
/// and inverse (measured here: 0.7 s at k = 1152, 19 s at 2304, 108 s at
/// 4608), and `H` takes k² × 8 bytes. MobileNetV2's widest is 1280.
pub const MAX_INPUTS: usize = 1536;
/// Layers rounded at once (see [`round_weights`]).
const ROUNDING_THREADS: usize = 4;
/// Memory for the `H` matrices gathered in one pass over the samples; a
/// model whose layers need more is measured in several passes.
const PASS_BYTES: usize = 256 << 20;

/// What [`round_weights`] did.
#[derive(Debug, Default)]
pub struct Rounded {
    /// GPTQ-rounded int8 weights, keyed by node.
    pub weights: HashMap<usize, Vec<i8>>,
    /// Layers left to nearest rounding for having more than [`MAX_INPUTS`]
    /// inputs per output.
    pub too_wide: usize,
}

/// GPTQ-rounded weights for every node in `nodes` that reads its input in
/// a way GPTQ covers, measured by running the float `model` (whose op `i`
/// is node `i` of `g`) on `samples`. Layers left out keep round-to-nearest.
pub fn round_weights(
    g: &Graph,
    model: &Model<'_>,
    samples: &[Sample],
    nodes: &[usize],
) -> Result<Rounded> {
    round_weights_within(g, model, samples, nodes, PASS_BYTES)
}

fn round_weights_within(
    g: &Graph,
    model: &Model<'_>,
    samples: &[Sample],
    nodes: &[usize],
    pass_bytes: usize,
) -> Result<Rounded> {
    let mut out = Rounded::default();
    let mut layers: Vec<Layer> = Vec::new();
    for l in nodes.iter().filter_map(|&n| layer(g, n)) {
        if l.row_len() > MAX_INPUTS {
            out.too_wide += 1;
        } else {
            layers.push(l);
        }
    }
    if layers.is_empty() || samples.is_empty() {
        return Ok(out);
    }
    // Who produces each layer's input: the graph input or (op, output slot).
    let mut producer: HashMap<usize, (usize, usize)> = HashMap::new();
    for (i, node) in g.nodes.iter().enumerate() {
        for (k, &t) in node.outputs.iter().enumerate() {
            producer.insert(t, (i, k));
        }
    }
    let input = g.inputs[0];
    let in_shape = g.tensors[input].shape.clone();
    let mut session = super::session(model)?;
    // Passes over the samples, each gathering the layers that fit pass_bytes.
    let mut passes: Vec<Vec<Layer>> = vec![Vec::new()];
    let mut bytes = 0usize;
    for l in layers {
        let size = l.pass_bytes();
        if bytes + size > pass_bytes && !passes[passes.len() - 1].is_empty() {
            passes.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        passes.last_mut().expect("one pass at least").push(l);
    }
    let pb = super::progress(samples.len() * passes.len(), "GPTQ");
    for mut pass in passes {
        pass.iter_mut().for_each(Layer::start);
        // Where each layer's input comes from: the graph input, or an op's
        // output slot.
        let sources: Vec<Option<(usize, usize)>> = pass
            .iter()
            .map(|l| g.nodes[l.node].inputs[0].and_then(|t| producer.get(&t).copied()))
            .collect();
        // The ops after the pass's last producer need not run.
        let ops = sources
            .iter()
            .flatten()
            .map(|&(op, _)| op + 1)
            .max()
            .unwrap_or(0);
        for s in samples {
            for (l, src) in pass.iter_mut().zip(&sources) {
                if src.is_none() && g.nodes[l.node].inputs[0] == Some(input) {
                    l.add(&s.data, &in_shape);
                }
            }
            session.set_input_f32(0, &s.data)?;
            session.invoke_first_observed(ops, |i, outs| {
                for (l, src) in pass.iter_mut().zip(&sources) {
                    if let Some((op, k)) = *src {
                        if op == i {
                            if let Some(v) = outs.get(k).filter(|v| v.dtype == DType::F32) {
                                l.add(&f32s(v.data), v.shape);
                            }
                        }
                    }
                }
            })?;
            pb.inc(1);
        }
        // Each layer rounds on its own: the pass's layers are dealt to the
        // worker threads.
        let round = |l: &Layer| -> Option<(usize, Vec<i8>)> {
            let node = &g.nodes[l.node];
            let (axis, wt) = (plan::weight_axis(node.code)?, node.inputs[1]?);
            let (_, scales) = plan::quantize_weights(&g.tensors[wt], axis);
            Some((l.node, l.round(g, &scales)?))
        };
        // At most ROUNDING_THREADS: each holds a few k × k matrices while
        // it rounds (about 90 MB at MAX_INPUTS), outside PASS_BYTES.
        let threads = super::worker_threads()
            .min(ROUNDING_THREADS)
            .min(pass.len())
            .max(1);
        let rounded: Vec<(usize, Vec<i8>)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let pass = &pass;
                    s.spawn(move || {
                        pass.iter()
                            .skip(t)
                            .step_by(threads)
                            .filter_map(round)
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        out.weights.extend(rounded);
    }
    pb.finish_and_clear();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output error `Σ_samples (Σ_i (w_i − q_i·s) x_i)²` of one row.
    fn output_error(w: &[f64], q: &[i8], s: f64, xs: &[Vec<f64>]) -> f64 {
        xs.iter()
            .map(|x| {
                let e: f64 = (0..w.len()).map(|i| (w[i] - q[i] as f64 * s) * x[i]).sum();
                e * e
            })
            .sum()
    }

    #[test]
    fn gptq_beats_nearest_on_correlated_inputs() {
        // Inputs that move together (a shared component plus a little
        // noise), as neighbouring channels of an activation do.
        let mut state = 12345u64;
        let mut rnd = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        };
        let k = 24;
        let xs: Vec<Vec<f64>> = (0..400)
            .map(|_| {
                let common = 4.0 * rnd();
                (0..k).map(|_| common + 0.3 * rnd()).collect()
            })
            .collect();
        let mut h = DMatrix::zeros(k, k);
        for x in &xs {
            for i in 0..k {
                for j in 0..k {
                    h[(i, j)] += x[i] * x[j];
                }
            }
        }
        // 16 rows (output channels): one row's nearest rounding can be
        // lucky, a layer's cannot.
        let rows: Vec<Vec<f64>> = (0..16)
            .map(|_| (0..k).map(|_| rnd() * 0.2).collect())
            .collect();
        let scales: Vec<f32> = rows
            .iter()
            .map(|w| (w.iter().fold(0f64, |m, v| m.max(v.abs())) / 127.0) as f32)
            .collect();
        let q = gptq(&h, rows.clone(), &scales).unwrap();
        let (mut en, mut eg) = (0.0, 0.0);
        for ((w, qg), &s) in rows.iter().zip(&q).zip(&scales) {
            let s = s as f64;
            let nearest: Vec<i8> = w.iter().map(|v| (v / s).round() as i8).collect();
            en += output_error(w, &nearest, s, &xs);
            eg += output_error(w, qg, s, &xs);
            // Every weight still rounds to a near neighbour of its value.
            for (v, &qi) in w.iter().zip(qg) {
                assert!((v / s - qi as f64).abs() <= 2.0, "{v} -> {qi}");
            }
        }
        assert!(eg < en / 4.0, "GPTQ {eg} vs nearest {en}");
    }

    #[test]
    fn inputs_that_never_fire_keep_nearest_rounding() {
        let k = 4;
        let mut h = DMatrix::zeros(k, k);
        h[(0, 0)] = 2.0; // only input 0 ever moves
        let w = vec![0.33, -0.71, 0.52, 1.0];
        let s = 1.0 / 127.0;
        let q = gptq(&h, vec![w.clone()], &[s as f32]).unwrap().remove(0);
        let nearest: Vec<i8> = w.iter().map(|v| (v / s).round() as i8).collect();
        assert_eq!(q, nearest);
    }

    /// Direct convolution of NHWC `x` with one kernel `k[ty][tx][c]` (for a
    /// depthwise channel, `cin` = 1 and `x` that channel alone), zero padded.
    fn direct_conv(x: &[f64], shape: [usize; 4], win: &Window, k: &[f64]) -> Vec<f64> {
        let [n, ih, iw, c] = shape;
        let geo = Geometry::of(win, &shape, x.len()).unwrap();
        let mut out = Vec::new();
        for b in 0..n {
            for oy in 0..geo.oh {
                for ox in 0..geo.ow {
                    let mut acc = 0.0;
                    for ty in 0..win.kh {
                        for tx in 0..win.kw {
                            let iy = (oy * win.stride[0] + ty * win.dil[0]) as isize
                                - win.pads[0] as isize;
                            let ix = (ox * win.stride[1] + tx * win.dil[1]) as isize
                                - win.pads[1] as isize;
                            if iy < 0 || ix < 0 || iy >= ih as isize || ix >= iw as isize {
                                continue;
                            }
                            for ci in 0..c {
                                let xi = ((b * ih + iy as usize) * iw + ix as usize) * c + ci;
                                acc += x[xi] * k[(ty * win.kw + tx) * c + ci];
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
        out
    }

    fn noise(seed: u64, len: usize) -> Vec<f64> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as f64 / (1u64 << 31) as f64) - 0.5
            })
            .collect()
    }

    /// Layers folded in blocks, on any number of threads, get the bits of
    /// one GEMM over the whole square (what `H` was before it was folded in
    /// blocks), whatever the last block's width (one column, a few: the
    /// widths nalgebra runs through its own loop) and the chunk's rows.
    #[test]
    fn layers_fold_the_bits_of_one_gemm_on_any_thread_count() {
        for k in [7, 129, 133, 261, 300, 389] {
            for rows in [3, 40] {
                let patches = noise(k as u64, rows * k);
                let pt = DMatrix::from_column_slice(k, rows, &patches);
                let mut whole = DMatrix::from_element(k, k, 0.5);
                whole.gemm(1.0, &pt, &pt.transpose(), 1.0);
                for threads in [1, 2, 3] {
                    let mut l = Layer::new(0, Reads::Dense { k });
                    l.start();
                    l.sums.fill(0.5);
                    l.buf.extend_from_slice(&patches);
                    l.fold_rows_on(k, threads);
                    // `matrix` mirrors the upper triangle; so must `whole`.
                    let mut want = whole.clone();
                    want.fill_lower_triangle_with_upper_triangle();
                    assert!(l.matrix() == want, "k {k}, {rows} rows, {threads} threads");
                }
            }
        }
    }

    /// `eᵀ H e` must be the energy of the layer's output for weights `e`,
    /// whatever the padding, stride and dilation: that is what makes `H`
    /// the right matrix for GPTQ.
    #[test]
    fn h_measures_the_output_energy_of_a_conv() {
        let win = Window {
            kh: 3,
            kw: 2,
            cin: 3,
            stride: [2, 1],
            dil: [1, 2],
            pads: [1, 1, 2, 0],
        };
        let shape = [2, 7, 6, 3];
        let x = noise(7, shape.iter().product());
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let k = win.kh * win.kw * win.cin;
        let mut l = Layer::new(0, Reads::Conv(win));
        l.start();
        l.add(&x32, &shape);
        for seed in 0..3 {
            let e = noise(100 + seed, k);
            let direct: f64 = direct_conv(&x, shape, &win, &e).iter().map(|v| v * v).sum();
            let ev = nalgebra::DVector::from_vec(e);
            let via_h = (ev.transpose() * l.matrix() * &ev)[(0, 0)];
            assert!(
                (direct - via_h).abs() < 1e-4 * direct,
                "{direct} vs {via_h}"
            );
        }
    }

    #[test]
    fn h_measures_the_output_energy_of_each_depthwise_channel() {
        let win = Window {
            kh: 3,
            kw: 3,
            cin: 2,
            stride: [2, 2],
            dil: [1, 1],
            pads: [0, 1, 1, 1],
        };
        let shape = [1, 6, 5, 2];
        let x = noise(3, shape.iter().product());
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut l = Layer::new(0, Reads::Depthwise { win, mult: 2 });
        l.start();
        l.add(&x32, &shape);
        let one = Window { cin: 1, ..win };
        for c in 0..2 {
            let xc: Vec<f64> = x.iter().skip(c).step_by(2).copied().collect();
            let e = noise(40 + c as u64, 9);
            let direct: f64 = direct_conv(&xc, [1, 6, 5, 1], &one, &e)
                .iter()
                .map(|v| v * v)
                .sum();
            let ev = nalgebra::DVector::from_vec(e);
            let mut h = l.channel_matrix(c, 9, 2);
            h.fill_lower_triangle_with_upper_triangle();
            let via_h = (ev.transpose() * h * &ev)[(0, 0)];
            assert!(
                (direct - via_h).abs() < 1e-4 * direct,
                "channel {c}: {direct} vs {via_h}"
            );
        }
    }

    /// x [1,6,6,3] → CONV_2D 3x3 (3→8, pad 1, RELU) → t → DEPTHWISE 3x3
    /// (pad 1) → y: the depthwise layer's `H` comes from the conv's output.
    fn two_layer_graph() -> Graph {
        use crate::ir::{Node, Tensor};
        use ferrite_runtime::Quant;
        let t = |name: &str, shape: &[usize], data: Option<Vec<f64>>| Tensor {
            name: name.into(),
            dtype: DType::F32,
            shape: shape.to_vec(),
            quant: Quant::None,
            data: data.map(|v| v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect()),
        };
        let tensors = vec![
            t("x", &[1, 6, 6, 3], None),
            t("cw", &[8, 3, 3, 3], Some(noise(1, 216))),
            t("cb", &[8], Some(noise(2, 8))),
            t("t", &[1, 6, 6, 8], None),
            t("dw", &[1, 3, 3, 8], Some(noise(3, 72))),
            t("db", &[8], Some(noise(4, 8))),
            t("y", &[1, 6, 6, 8], None),
        ];
        let pad1 = |act| vec![1, 1, 1, 1, 1, 1, 1, 1, act, 1];
        let nodes = vec![
            Node {
                code: OpCode::Conv2d,
                attrs: pad1(1),
                inputs: vec![Some(0), Some(1), Some(2)],
                outputs: vec![3],
                origin: "conv".into(),
            },
            Node {
                code: OpCode::DepthwiseConv2d,
                attrs: pad1(0),
                inputs: vec![Some(3), Some(4), Some(5)],
                outputs: vec![6],
                origin: "dw".into(),
            },
        ];
        Graph {
            tensors,
            nodes,
            inputs: vec![0],
            outputs: vec![6],
            ..Default::default()
        }
    }

    /// A session asked for its first op runs that op alone, with the
    /// output a whole run gives it.
    #[test]
    fn a_run_of_the_first_ops_observes_only_those() {
        let g = two_layer_graph();
        let c = crate::package_graph(&g).unwrap();
        let model = Model::from_vec(&c.bytes).unwrap();
        let mut session = ferrite_runtime::Session::new(&model, Default::default()).unwrap();
        let x: Vec<f32> = noise(9, 108).iter().map(|&v| v as f32).collect();
        // (A run may reuse its input's memory: each run sets it again.)
        let observe = |session: &mut ferrite_runtime::Session, ops| {
            session.set_input_f32(0, &x).unwrap();
            let mut seen = Vec::new();
            session
                .invoke_first_observed(ops, |i, outs| seen.push((i, f32s(outs[0].data))))
                .unwrap();
            seen
        };
        let all = observe(&mut session, usize::MAX);
        assert_eq!(all.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1]);
        let first = observe(&mut session, 1);
        assert_eq!(first, all[..1]);
    }

    #[test]
    fn layers_measured_in_several_passes_round_as_in_one() {
        let g = two_layer_graph();
        let c = crate::package_graph(&g).unwrap();
        let model = Model::from_vec(&c.bytes).unwrap();
        let samples: Vec<Sample> = (0..6)
            .map(|k| Sample {
                name: format!("s{k}"),
                data: noise(10 + k, 108).iter().map(|&v| v as f32).collect(),
            })
            .collect();
        let one = round_weights_within(&g, &model, &samples, &[0, 1], usize::MAX).unwrap();
        let two = round_weights_within(&g, &model, &samples, &[0, 1], 1).unwrap();
        assert_eq!(one.weights.len(), 2);
        assert_eq!(one.weights, two.weights);
        assert_eq!(one.too_wide, 0);
        // GPTQ moved some weights off their nearest value.
        let w: Vec<f64> = g.tensors[1]
            .f32_data()
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .collect();
        let (_, scales) = plan::quantize_weights(&g.tensors[1], 0);
        let moved = w
            .chunks(27)
            .zip(&scales)
            .flat_map(|(row, &s)| nearest(row, s as f64))
            .zip(&one.weights[&0])
            .filter(|(a, b)| a != *b)
            .count();
        assert!(moved > 0, "GPTQ rounded every conv weight to nearest");
        // And the depthwise layer, which reads the conv's output.
        let dw: Vec<f64> = g.tensors[4]
            .f32_data()
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .collect();
        let (_, scales) = plan::quantize_weights(&g.tensors[4], 3);
        let moved = (0..dw.len())
            .filter(|&i| {
                let s = scales[i % 8] as f64;
                nearest(&dw[i..i + 1], s)[0] != one.weights[&1][i]
            })
            .count();
        assert!(moved > 0, "GPTQ rounded every depthwise weight to nearest");
    }

    #[test]
    fn a_silent_layer_is_left_to_nearest() {
        let h = DMatrix::zeros(3, 3);
        assert!(gptq(&h, vec![vec![0.1, 0.2, 0.3]], &[0.01]).is_none());
    }
}
