//! Packed weights and the arch-neutral drivers of the optimized kernels.
//!
//! An optimized kernel is split in two:
//! - an ISA micro-kernel (in `arch/`), reached through a [`super::KernelTable`]
//!   slot that exists only when the CPU can run it, and
//! - a driver here that owns the packed weights (built once, in
//!   `Session::new`), walks the output in tiles, gathers k×k windows into a
//!   small stack buffer (no heap, no large buffer in the hot path) and splits
//!   the work over the current thread pool ([`crate::threads`]).
//!
//! Weight layout of the GEMM kernels: the `[n, k]` weight matrix (conv filters
//! `[out_c, kh, kw, in_c]` seen as rows of `kh * kw * in_c`) is cut into
//! panels of `nr` output channels; inside a panel, `kr` consecutive `k` values
//! of one channel are adjacent, then the next channel: `[n/nr][k/kr][nr][kr]`,
//! zero-padded to whole panels and groups. With `nr = 16, kr = 4` one 64-byte
//! load feeds one AVX-512 VNNI `vpdpbusd` (or four NEON `sdot`s).
//!
//! int8 zero-points are folded into the bias: the micro-kernels compute
//! `sum w * (x + x_bias)` where `x_bias` is what the ISA adds to make the
//! activations unsigned (128 for VNNI's u8 × s8, 0 for SDOT's s8 × s8), so
//! `sum w * (x - zp) = that - (x_bias + zp) * sum w`, which the packer
//! subtracts from the bias once. All of it is wrapping i32 arithmetic, which
//! is exactly what the reference computes.

use alloc::vec;
use alloc::vec::Vec;

use super::reference::conv::{Conv2dGeometry, ConvI8Params, FullyConnectedI8Params};
use crate::threads;

/// Most taps (`kh * kw`) of a depthwise filter the packed kernels take;
/// larger filters use the reference.
pub const MAX_DW_TAPS: usize = 64;

/// Bytes of the stack buffer that k×k convolutions gather windows into.
pub const IM2COL_BYTES: usize = 16 * 1024;

/// An int8 GEMM micro-kernel: `out[r][c] = requant(sum_k a[r][k] * w[c][k])`
/// for `m` rows of `a` (row stride `a_stride`, `k` valid bytes each) into `m`
/// rows of `out` (stride `out_stride`, `n` bytes each).
pub type QGemmFn = fn(&QGemm, &[i8], usize, usize, &mut [i8], usize);
/// An f32 GEMM micro-kernel: like [`QGemmFn`] with bias + clamp.
pub type SGemmFn = fn(&SGemm, &[f32], usize, usize, &mut [f32], usize);
/// [`SGemmFn`] over rows that are windows of an image (an implicit GEMM):
/// row `r`'s `k` values are `runs.runs × runs.cols` pieces of `runs.run`
/// contiguous values, piece `(j, c)` starting at `a[r * a_stride + j *
/// runs.run_stride + c * runs.col_stride]`, in that order. With one piece
/// of `k` it is [`SGemmFn`]. A k×k conv's window inside the image is `kh`
/// runs, `dilation_h` input rows apart, of `kw * channels` (one column
/// piece), or, for a group's channels or a width dilation, of `kw` pieces
/// of the group's channels `dilation_w` pixels apart: its rows need no
/// im2col copy.
pub type SGemmWindowFn = fn(&SGemm, &[f32], usize, Runs, usize, &mut [f32], usize);

/// How a row of an implicit GEMM lies in memory (see [`SGemmWindowFn`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Runs {
    pub runs: usize,
    pub run_stride: usize,
    pub cols: usize,
    pub col_stride: usize,
    pub run: usize,
}

impl Runs {
    /// One contiguous run of `k`: a plain GEMM row.
    pub fn contiguous(k: usize) -> Self {
        Runs {
            runs: 1,
            run_stride: 0,
            cols: 1,
            col_stride: 0,
            run: k,
        }
    }

    /// Values in a row: `runs * cols * run`.
    pub fn len(&self) -> usize {
        self.runs * self.cols * self.run
    }

    /// Whether a row holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values one row spans from its first to its last, inclusive.
    pub fn span(&self) -> usize {
        self.runs.saturating_sub(1) * self.run_stride
            + self.cols.saturating_sub(1) * self.col_stride
            + self.run
    }
}
/// An int8 depthwise kernel over one part of the output ([`DwOut`]: a range
/// of output rows, a range of channels).
pub type QDwFn = fn(&QDw, &[i8], DwOut<i8>);
/// An f32 depthwise kernel over one part of the output ([`DwOut`]).
pub type SDwFn = fn(&SDw, &[f32], DwOut<f32>);
/// Raw int8 dot products: `out[o] = sum_k w[o*k + kk] * (x[kk] + x_bias)`
/// (wrapping) for `o < out.len()`.
pub type QDotFn = fn(&[i8], usize, &[i8], &mut [i32]);
/// f32 dot products: `out[o] = sum_k w[o*k + kk] * x[kk]`.
pub type SDotFn = fn(&[f32], usize, &[f32], &mut [f32]);

/// Same-shape int8 ADD/SUB, bit-identical to `AddI8Params::apply` per element.
pub type QAddFn = fn(&super::reference::elementwise::AddI8Params, &[i8], &[i8], &mut [i8]);
/// Same-shape int8 ADD with ONNX Runtime's rounding, bit-identical to
/// `FloatAddI8Params::apply` per element.
pub type QAddFloatFn =
    fn(&super::reference::elementwise::FloatAddI8Params, &[i8], &[i8], &mut [i8]);

/// An int8 GEMM micro-kernel and the packing it expects.
#[derive(Clone, Copy, Debug)]
pub struct QGemmIsa {
    /// Name shown for a 1x1 convolution / a k×k convolution through im2col.
    pub name: &'static str,
    pub im2col_name: &'static str,
    /// Output channels per panel and `k` values per group.
    pub nr: usize,
    pub kr: usize,
    /// What the kernel adds to each activation (128 for u8 × s8 products).
    pub x_bias: i32,
    pub run: QGemmFn,
}

/// An f32 GEMM micro-kernel and its panel width (`kr` is 1).
#[derive(Clone, Copy, Debug)]
pub struct SGemmIsa {
    pub name: &'static str,
    pub im2col_name: &'static str,
    /// The name of CONV_TRANSPOSE on this GEMM ([`SDeconv`]).
    pub deconv_name: &'static str,
    pub nr: usize,
    pub run: SGemmFn,
    /// The same GEMM over window rows, where the ISA has it, and the name
    /// of a convolution run on it: convolutions then read the windows
    /// inside the image in place, and gather only those that overhang it.
    pub run_window: Option<crate::kernels::table::Entry<SGemmWindowFn>>,
}

/// A dot-product kernel for int8 FULLY_CONNECTED.
#[derive(Clone, Copy, Debug)]
pub struct QDotIsa {
    pub name: &'static str,
    pub x_bias: i32,
    pub run: QDotFn,
}

/// Packed int8 weights with a fused requantization epilogue.
#[derive(Debug, Clone)]
pub struct QGemm {
    /// Logical sizes and their padded versions (multiples of `kr` / `nr`).
    pub k: usize,
    pub n: usize,
    pub kp: usize,
    pub np: usize,
    /// `[np/nr][kp/kr][nr][kr]`, zero-padded.
    pub w: Vec<i8>,
    /// Bias with the zero-point correction folded in, `np` entries.
    pub bias: Vec<i32>,
    /// Per channel: Q31 multiplier, left shift (`shift & 31` when positive,
    /// as `wrapping_shl` sees it) and right shift (`-shift` when negative).
    pub mult: Vec<i32>,
    pub lshift: Vec<i32>,
    pub rshift: Vec<i32>,
    /// No channel shifts left and every channel shifts right by at least one
    /// (multipliers below 0.5, the usual case): kernels may then take the
    /// high half of the 64-bit product as the first step of the shift.
    pub right_shifts_only: bool,
    /// The rounding constant of the single-shift requantization,
    /// `2^30 + 2^(30 + rshift)` (`2^30` when `rshift` is 0), per channel, in
    /// the order of a 64-bit multiply's lanes: per 16 channels the 8 even
    /// channels, then the 8 odd ones (see `Rq16` in the x86_64 kernels).
    pub round64: Vec<i64>,
    /// [`crate::quant::Rounding::Float`]: per channel f32 scale (`np`
    /// entries), used instead of the fixed-point fields; empty otherwise.
    pub fscale: Vec<f32>,
    pub out_zp: i32,
    pub act_min: i32,
    pub act_max: i32,
}

fn pad_to(v: usize, m: usize) -> usize {
    v.div_ceil(m) * m
}

/// The requantization of `p`'s channel `c` split into the epilogue's three
/// per-channel vectors (see [`QGemm::mult`]).
fn requant_parts(p: &ConvI8Params, len: usize) -> (Vec<i32>, Vec<i32>, Vec<i32>) {
    let mut mult = vec![0; len];
    let mut lshift = vec![0; len];
    let mut rshift = vec![0; len];
    for (c, r) in p.requant.iter().enumerate() {
        mult[c] = r.multiplier;
        lshift[c] = if r.shift > 0 { r.shift & 31 } else { 0 };
        rshift[c] = if r.shift > 0 { 0 } else { -r.shift };
    }
    (mult, lshift, rshift)
}

/// [`QGemm::round64`] for the right shifts `rshift` (a multiple of 16 long).
fn round64(rshift: &[i32]) -> Vec<i64> {
    let mut k = vec![0i64; rshift.len()];
    for (c, &rs) in rshift.iter().enumerate() {
        let lane = c / 16 * 16 + c % 2 * 8 + c % 16 / 2;
        k[lane] = (1i64 << 30) + (((1i64 << rs.clamp(0, 31)) >> 1) << 31);
    }
    k
}

/// Whether every channel of `p` shifts only right, by one bit or more.
fn right_shifts_only(p: &ConvI8Params) -> bool {
    p.requant.iter().all(|r| r.shift <= -1)
}

/// The float scales of `p`'s channels, zero-padded to `len`, when it
/// requantizes with ONNX Runtime's rounding; empty for TFLite's.
fn float_scales(p: &ConvI8Params, len: usize) -> Vec<f32> {
    if p.requant.iter().all(|r| r.float.is_none()) {
        return Vec::new();
    }
    let mut v = vec![0f32; len];
    for (d, r) in v.iter_mut().zip(&p.requant) {
        *d = r.float.unwrap_or(0.0);
    }
    v
}

impl QGemm {
    /// Packs `weights` (`n` rows of `k` values) for `isa`, folding the input
    /// zero-point of `p` into `bias`.
    pub fn pack(
        isa: &QGemmIsa,
        weights: &[i8],
        n: usize,
        k: usize,
        bias: Option<&[i32]>,
        p: &ConvI8Params,
    ) -> Self {
        debug_assert_eq!(weights.len(), n * k);
        let (nr, kr) = (isa.nr, isa.kr);
        let (kp, np) = (pad_to(k.max(1), kr), pad_to(n.max(1), nr));
        let mut w = vec![0i8; np * kp];
        for c in 0..n {
            let (panel, lane) = (c / nr, c % nr);
            for kk in 0..k {
                let (group, sub) = (kk / kr, kk % kr);
                w[((panel * (kp / kr) + group) * nr + lane) * kr + sub] = weights[c * k + kk];
            }
        }
        // sum w * (x - zp) = sum w * (x + x_bias) - (x_bias + zp) * sum w, with zp = -input_offset.
        let fold = isa.x_bias.wrapping_sub(p.input_offset);
        let mut b = vec![0i32; np];
        for c in 0..n {
            let sum = weights[c * k..(c + 1) * k]
                .iter()
                .fold(0i32, |s, &v| s.wrapping_add(v as i32));
            let base = bias.map_or(0, |b| b[c]);
            b[c] = base.wrapping_sub(fold.wrapping_mul(sum));
        }
        let (mult, lshift, rshift) = requant_parts(p, np);
        let round64 = round64(&rshift);
        QGemm {
            k,
            n,
            kp,
            np,
            w,
            bias: b,
            mult,
            lshift,
            rshift,
            right_shifts_only: right_shifts_only(p),
            round64,
            fscale: float_scales(p, np),
            out_zp: p.output_offset,
            act_min: p.act_min,
            act_max: p.act_max,
        }
    }
}

/// Packed f32 weights: `[np/nr][k][nr]`, zero-padded, with bias and clamp.
#[derive(Debug, Clone)]
pub struct SGemm {
    pub k: usize,
    pub n: usize,
    pub np: usize,
    pub w: Vec<f32>,
    pub bias: Vec<f32>,
    pub act: (f32, f32),
}

impl SGemm {
    /// Panics unless `m` window rows of `a` (`runs` each, `a_stride` apart)
    /// cover this GEMM's `k` and lie in `a`, and `m` output rows fit in
    /// `out`: what an [`SGemmWindowFn`] reads and writes, checked in
    /// release builds too before its unchecked loads.
    pub fn assert_window_rows(
        &self,
        (a, a_stride): (&[f32], usize),
        runs: Runs,
        m: usize,
        (out, out_stride): (&[f32], usize),
    ) {
        // Checked: `Runs`' fields are public, and a wrapped product must
        // not pass for `k` or a short span.
        let len = runs
            .runs
            .checked_mul(runs.cols)
            .and_then(|n| n.checked_mul(runs.run));
        assert!(len == Some(self.k), "window runs cover k");
        let span = [(runs.runs, runs.run_stride), (runs.cols, runs.col_stride)]
            .iter()
            .try_fold(runs.run, |acc, &(n, stride)| {
                n.saturating_sub(1)
                    .checked_mul(stride)
                    .and_then(|d| acc.checked_add(d))
            })
            .expect("window span overflows");
        let fits = |len: usize, stride: usize, row: usize| {
            m == 0
                || (m - 1)
                    .checked_mul(stride)
                    .and_then(|d| d.checked_add(row))
                    .is_some_and(|need| len >= need)
        };
        assert!(fits(a.len(), a_stride, span), "window rows");
        assert!(fits(out.len(), out_stride, self.n), "output rows");
    }

    /// Packs `weights` (`n` rows of `k` values) into panels of `nr`.
    pub fn pack(
        nr: usize,
        weights: &[f32],
        n: usize,
        k: usize,
        bias: Option<&[f32]>,
        act: (f32, f32),
    ) -> Self {
        debug_assert_eq!(weights.len(), n * k);
        let np = pad_to(n.max(1), nr);
        let mut w = vec![0f32; np * k];
        for c in 0..n {
            let (panel, lane) = (c / nr, c % nr);
            for kk in 0..k {
                w[(panel * k + kk) * nr + lane] = weights[c * k + kk];
            }
        }
        let mut b = vec![0f32; np];
        if let Some(bias) = bias {
            b[..n].copy_from_slice(bias);
        }
        SGemm {
            k,
            n,
            np,
            w,
            bias: b,
            act,
        }
    }
}

/// Output pixels per chunk when threads split a convolution: a multiple of
/// the GEMM tiles' rows (6 on x86_64, 2 and 4 on aarch64), so no chunk ends
/// in a short tile, small enough to split the 7x7 = 49 pixels of MobileNet's
/// last layers evenly between two threads. (With 16, every chunk ended in a
/// 4-row tile and one thread got 32 of the 49 pixels: MobileNetV2 int8 ran
/// 1.57x faster on 2 threads than on 1 instead of 1.9x.)
const CONV_ROW_ALIGN: usize = 12;

/// Outputs per chunk when threads split a fully connected layer (its weight
/// rows): at 1280 inputs, 128 rows are 160 KiB of int8 weights.
const FC_ALIGN: usize = 128;

/// Elements per chunk when threads split a same-shape elementwise op: whole
/// cache lines of int8 and f32. (Chunks of 8192 had split MobileNetV2's
/// 14x14x96 ADD 2:1 over 2 threads, and left its 7x7x160 ones on one.)
const ELEMENTWISE_ALIGN: usize = 1024;

/// Elementwise ops smaller than this run on the calling thread: waking
/// the pool costs more than it saves.
const ELEMENTWISE_MIN_SPLIT: usize = 4096;

/// Runs a same-shape elementwise kernel `f(a, b, out)` on the current pool,
/// each thread on its own contiguous part of the three slices.
pub fn elementwise<A: Sync, B: Sync, T>(
    a: &[A],
    b: &[B],
    out: &mut [T],
    f: impl Fn(&[A], &[B], &mut [T]) + Sync,
) {
    let n = out.len();
    assert!(a.len() == n && b.len() == n, "elementwise operand sizes");
    if n < ELEMENTWISE_MIN_SPLIT {
        return f(a, b, out);
    }
    for_each_row_chunk(out, n, 1, ELEMENTWISE_ALIGN, &|r, o| {
        f(&a[r.clone()], &b[r], o)
    });
}

/// A repeating operand shorter than this is tiled up to it on the stack
/// before [`repeated_elementwise`] calls the kernel, so a channel vector or a
/// scalar still gives the kernel runs of about 1 Ki values.
const REPEAT_TILE: usize = 1024;

/// Runs a same-shape elementwise kernel where one operand, `small`, repeats
/// along `full`: output element `i` is `f` of `full[i]` and
/// `small[i % small.len()]` (a broadcast over leading dimensions, such as a
/// squeeze-and-excitation block's per-channel scale). `small_first` says
/// which operand is `a` in `f(a, b, out)`, for SUB. Threads split the output
/// at whole repeats.
pub fn repeated_elementwise<T: Copy + Default + Sync>(
    full: &[T],
    small: &[T],
    small_first: bool,
    out: &mut [T],
    f: impl Fn(&[T], &[T], &mut [T]) + Sync,
) {
    let (n, period) = (out.len(), small.len());
    assert!(
        full.len() == n && period > 0 && n.is_multiple_of(period),
        "repeated elementwise operand sizes"
    );
    // Each piece starts at a whole repeat, so the tile lines up with it.
    let piece = if period < REPEAT_TILE {
        REPEAT_TILE / period * period
    } else {
        period
    };
    let pieces = |tiled: &[T], start: usize, out: &mut [T]| {
        for (i, o) in out.chunks_mut(piece).enumerate() {
            let full = &full[start + i * piece..][..o.len()];
            let small = &tiled[..o.len()];
            if small_first {
                f(small, full, o)
            } else {
                f(full, small, o)
            }
        }
    };
    let run = |start: usize, out: &mut [T]| {
        if period >= REPEAT_TILE {
            return pieces(small, start, out);
        }
        let mut tile = [T::default(); REPEAT_TILE];
        for t in tile[..piece].chunks_exact_mut(period) {
            t.copy_from_slice(small);
        }
        pieces(&tile[..piece], start, out)
    };
    if n < ELEMENTWISE_MIN_SPLIT {
        return run(0, out);
    }
    let align = ELEMENTWISE_ALIGN.div_ceil(period);
    for_each_row_chunk(out, n / period, period, align, &|r, o| {
        run(r.start * period, o)
    });
}

/// Runs a same-shape elementwise kernel where each value of `small` spreads
/// over `inner` consecutive elements of `full` (`[R, 1]` against `[R, C]`):
/// output element `i` is `f` of `full[i]` and `small[i / inner]`, the
/// kernel called on runs of up to [`REPEAT_TILE`] with the value tiled on
/// the stack. `small_first` as in [`repeated_elementwise`]. Threads split
/// the rows.
pub fn spread_elementwise<T: Copy + Default + Sync>(
    full: &[T],
    small: &[T],
    (small_first, inner): (bool, usize),
    out: &mut [T],
    f: impl Fn(&[T], &[T], &mut [T]) + Sync,
) {
    let (n, rows) = (out.len(), small.len());
    assert!(
        full.len() == n && inner > 0 && rows.checked_mul(inner) == Some(n),
        "spread elementwise operand sizes"
    );
    let run = |r: core::ops::Range<usize>, out: &mut [T]| {
        let mut tile = [T::default(); REPEAT_TILE];
        for (row, o) in r.zip(out.chunks_mut(inner)) {
            let w = inner.min(REPEAT_TILE);
            tile[..w].iter_mut().for_each(|t| *t = small[row]);
            for (i, o) in o.chunks_mut(w).enumerate() {
                let full = &full[row * inner + i * w..][..o.len()];
                let small = &tile[..o.len()];
                if small_first {
                    f(small, full, o)
                } else {
                    f(full, small, o)
                }
            }
        }
    };
    if n < ELEMENTWISE_MIN_SPLIT {
        return run(0..rows, out);
    }
    for_each_row_chunk(out, rows, inner, ELEMENTWISE_ALIGN.div_ceil(inner), &run);
}

/// How the operands of an element-wise op line up with its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broadcast {
    /// Both have the output's shape.
    Same,
    /// Input `small` (0 or 1) repeats along the other's leading dimensions
    /// (a per-channel scale or bias, a scalar): [`repeated_elementwise`].
    Repeat { small: usize },
    /// Each value of input `small` spreads over `inner` consecutive outputs
    /// (a layer norm's per-row statistics): [`spread_elementwise`].
    Spread { small: usize, inner: usize },
}

/// Runs a same-shape elementwise kernel `f(a, b, out)` on operands that
/// line up as `how` says, on the current pool: the broadcast operand is
/// tiled so `f` always sees equal runs, and `a` / `b` keep their order.
pub fn broadcast_elementwise<T: Copy + Default + Sync>(
    how: Broadcast,
    a: &[T],
    b: &[T],
    out: &mut [T],
    f: impl Fn(&[T], &[T], &mut [T]) + Sync,
) {
    let split = |small: usize| if small == 0 { (b, a) } else { (a, b) };
    match how {
        Broadcast::Same => elementwise(a, b, out, f),
        Broadcast::Repeat { small } => {
            let (full, part) = split(small);
            repeated_elementwise(full, part, small == 0, out, f)
        }
        Broadcast::Spread { small, inner } => {
            let (full, part) = split(small);
            spread_elementwise(full, part, (small == 0, inner), out, f)
        }
    }
}

/// [`super::reference::math::reduce_rows_f32`] on the current pool, the
/// threads splitting the rows (about 16 Ki inputs per chunk).
pub fn reduce_rows_f32(
    f: super::reference::math::ReduceFn,
    count: usize,
    x: &[f32],
    out: &mut [f32],
) {
    let rows = out.len();
    assert!(x.len() >= rows * count, "reduce rows");
    let align = (16 * 1024 / count.max(1)).max(8);
    for_each_row_chunk(out, rows, 1, align, &|r, o| {
        let done = super::reference::math::reduce_rows_f32(
            f,
            count,
            &x[r.start * count..r.end * count],
            o,
        );
        debug_assert!(done, "reduce_rows_f32 takes every function but LogSumExp");
    });
}

/// SOFTMAX over rows of `depth` on the current pool (rows split between
/// threads, about 16 KiB of them per chunk).
pub fn softmax_rows_f32(
    f: crate::kernels::table::SoftmaxF32Fn,
    beta: f32,
    depth: usize,
    input: &[f32],
    output: &mut [f32],
) {
    assert_eq!(input.len(), output.len(), "softmax operand sizes");
    if depth == 0 {
        return;
    }
    let rows = input.len() / depth;
    let align = (4096 / depth).max(1);
    for_each_row_chunk(output, rows, depth, align, &|r, o| {
        f(beta, depth, &input[r.start * depth..r.end * depth], o)
    });
}

/// A raw pointer that may cross threads: each chunk writes a disjoint part.
#[derive(Clone, Copy)]
struct SharedMut<T>(*mut T);
// SAFETY: only used to hand disjoint output ranges to pool workers while the
// owner waits for them (`threads::for_each_chunk` returns after all chunks).
unsafe impl<T> Send for SharedMut<T> {}
unsafe impl<T> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the field).
    fn ptr(&self) -> *mut T {
        self.0
    }
}

/// Splits the first `rows` rows of `row_len` values of `output` into chunks
/// over the current pool (`threads::for_each_chunk`, chunks a multiple of
/// `align` rows) and calls `f(rows, slice)` with each chunk's own rows only,
/// so no two threads ever hold the same memory.
pub(crate) fn for_each_row_chunk<T>(
    output: &mut [T],
    rows: usize,
    row_len: usize,
    align: usize,
    f: &(dyn Fn(core::ops::Range<usize>, &mut [T]) + Sync),
) {
    assert!(
        rows * row_len <= output.len(),
        "output smaller than its rows"
    );
    let out = SharedMut(output.as_mut_ptr());
    threads::for_each_chunk(rows, align, &|r| {
        // SAFETY: the chunks are disjoint row ranges inside `output` (checked
        // above), and `for_each_chunk` returns only after every chunk is done.
        let chunk = unsafe {
            core::slice::from_raw_parts_mut(out.ptr().add(r.start * row_len), r.len() * row_len)
        };
        f(r, chunk)
    });
}

/// The part of a depthwise output one kernel call computes: output rows
/// `rows` (`batch * out_h + y`) and, of each of their pixels, channels
/// `chans` (`chans.start` a multiple of [`DW_CHAN_ALIGN`]; `chans.end` too,
/// or the channel count).
///
/// Calls on disjoint parts of one output run at once on the pool's threads,
/// and a channel split gives two threads the same rows, so the output is a
/// pointer, not a `&mut` slice. Only the drivers in this module make one
/// (the fields are private): the pointer is row `rows.start`'s channel 0,
/// with `len` elements behind it that nothing else touches during the call
/// but other calls' parts, and a kernel writes its own part only. A kernel
/// calls [`DwOut::check`] against its own parameters before it writes
/// through the pointer, so a `DwOut` handed to the wrong layer is caught.
#[derive(Debug)]
pub struct DwOut<T> {
    ptr: *mut T,
    len: usize,
    rows: core::ops::Range<usize>,
    chans: core::ops::Range<usize>,
}

impl<T> DwOut<T> {
    /// Panics unless this part fits a layer of `shape` (its rows, its
    /// channels, the elements behind the pointer) and `input` holds the
    /// layer's whole input: what the kernels rely on when they index with
    /// raw pointers.
    pub fn check<I>(&self, shape: &ConvShape, input: &[I]) {
        let [n, oh, ow, c] = shape.shapes[2];
        assert!(
            self.rows.end <= n * oh
                && self.chans.end <= c
                && self.chans.start.is_multiple_of(DW_CHAN_ALIGN)
                && self.rows.len() * ow * c <= self.len
                && input.len() >= shape.shapes[0].iter().product(),
            "depthwise part {:?} x {:?} does not fit the layer {:?}",
            self.rows,
            self.chans,
            shape.shapes
        );
    }

    /// Row `rows().start`, channel 0 of the output.
    pub fn ptr(&self) -> *mut T {
        self.ptr
    }

    /// The output rows (`batch * out_h + y`) to compute.
    pub fn rows(&self) -> core::ops::Range<usize> {
        self.rows.clone()
    }

    /// The channels to compute in each of those rows' pixels.
    pub fn chans(&self) -> core::ops::Range<usize> {
        self.chans.clone()
    }
}

/// Channels a depthwise channel split keeps together: a multiple of every
/// kernel's channel block (32 int8 lanes on x86), and of 64 bytes of int8,
/// so two threads share a cache line only at a part's edge when the
/// channel count is not a multiple of 64.
pub const DW_CHAN_ALIGN: usize = 64;

/// How a depthwise layer's output is split over the pool's threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DwSplit {
    /// Contiguous runs of output rows: each thread reads only its rows'
    /// windows, and the next op, split by rows too, finds them in its cache.
    Rows,
    /// Channel ranges of every row: for small images (MobileNetV2's 7x7 and
    /// 14x14 layers) a row split would give each thread so few rows that the
    /// window rows above and below them (read by both neighbours) and the
    /// per-block weight and constant set-up, done again for every chunk,
    /// eat the gain; 7x7x960 ran no faster on 2 threads than on 1.
    Chans,
}

impl DwSplit {
    /// The split for an output of `rows` rows of `c` channels on `threads`
    /// threads: by channels when there are fewer than 8 rows per thread and
    /// at least two aligned channel blocks per thread.
    pub fn choose(rows: usize, c: usize, threads: usize) -> Self {
        if threads > 1 && rows < 8 * threads && c >= 2 * DW_CHAN_ALIGN * threads {
            DwSplit::Chans
        } else {
            DwSplit::Rows
        }
    }
}

/// An in-place element-wise pass over part of an output.
type InPlace<T> = dyn Fn(&mut [T]) + Sync;

/// Runs a depthwise kernel over the whole `output` (`rows` rows of `ow`
/// pixels of `c` channels), split over the current pool as `split` says.
fn dw_exec<T>(
    output: &mut [T],
    [rows, ow, c]: [usize; 3],
    split: DwSplit,
    post: Option<&InPlace<T>>,
    run: &(dyn Fn(DwOut<T>) + Sync),
) {
    assert!(rows * ow * c <= output.len(), "depthwise output size");
    // With a post-op, rows go in blocks it finds in cache.
    let block = match post {
        Some(_) => (POST_BYTES / 4 / (ow * c).max(1)).max(1),
        None => rows,
    };
    match split {
        DwSplit::Rows => for_each_row_chunk(output, rows, ow * c, 1, &|r, out| {
            for (b, out) in r.clone().step_by(block).zip(out.chunks_mut(block * ow * c)) {
                run(DwOut {
                    ptr: out.as_mut_ptr(),
                    len: out.len(),
                    rows: b..(b + block).min(r.end),
                    chans: 0..c,
                });
                if let Some(p) = post {
                    p(out);
                }
            }
        }),
        DwSplit::Chans => {
            let out = SharedMut(output.as_mut_ptr());
            threads::for_each_chunk(c, DW_CHAN_ALIGN, &|chans| {
                // Each chunk writes channels `chans` of every row: disjoint
                // parts of `output` (checked above), and `for_each_chunk`
                // returns only after every chunk is done.
                run(DwOut {
                    ptr: out.ptr(),
                    len: rows * ow * c,
                    rows: 0..rows,
                    chans: chans.clone(),
                });
                if let Some(p) = post {
                    for px in 0..rows * ow {
                        // SAFETY: this chunk's own channels of pixel `px`,
                        // which it alone writes (as the kernel did).
                        let v = unsafe {
                            core::slice::from_raw_parts_mut(
                                out.ptr().add(px * c + chans.start),
                                chans.len(),
                            )
                        };
                        p(v);
                    }
                }
            })
        }
    }
}

/// Where a convolution reads its window rows from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gather {
    /// 1x1, stride 1, no padding: output pixel `p` reads input pixel `p`.
    Direct,
    /// Anything else: windows are copied into a stack buffer.
    Im2col,
}

/// Shapes and geometry shared by the conv drivers.
#[derive(Debug, Clone, Copy)]
pub struct ConvShape {
    pub g: Conv2dGeometry,
    /// Input `[n, h, w, c]`, filter `[out_c, kh, kw, in_c]`, output `[n, oh, ow, out_c]`.
    pub shapes: [[usize; 4]; 3],
}

impl ConvShape {
    fn gather(&self) -> Gather {
        let [_, kh, kw, _] = self.shapes[1];
        let g = &self.g;
        if kh == 1
            && kw == 1
            && g.stride_h == 1
            && g.stride_w == 1
            && g.pad_top == 0
            && g.pad_left == 0
        {
            Gather::Direct
        } else {
            Gather::Im2col
        }
    }

    /// Output pixels (batch × height × width).
    fn pixels(&self) -> usize {
        let [n, oh, ow, _] = self.shapes[2];
        n * oh * ow
    }

    /// The output pixel `p` as (batch, row, column).
    fn pixel(&self, p: usize) -> Pixel {
        let [_, oh, ow, _] = self.shapes[2];
        let (b, rem) = (p / (oh * ow), p % (oh * ow));
        Pixel {
            b,
            oy: rem / ow,
            ox: rem % ow,
        }
    }

    /// The pixel after `px` in row-major order (no divisions: an im2col
    /// tile walks its pixels with this).
    #[inline]
    fn next_pixel(&self, px: Pixel) -> Pixel {
        let [_, oh, ow, _] = self.shapes[2];
        let mut n = Pixel {
            ox: px.ox + 1,
            ..px
        };
        if n.ox == ow {
            n.ox = 0;
            n.oy += 1;
            if n.oy == oh {
                n.oy = 0;
                n.b += 1;
            }
        }
        n
    }

    /// Copies the window of output pixel `px` into `row` (`kh * kw * in_c`
    /// values, `fill` where the window leaves the image).
    #[inline]
    fn window<T: Copy>(&self, input: &[T], px: Pixel, row: &mut [T], fill: T) {
        let [_, ih, iw, ic] = self.shapes[0];
        let [_, kh, kw, _] = self.shapes[1];
        let Pixel { b, oy, ox } = px;
        let g = &self.g;
        let mut at = 0;
        // Columns whose whole filter row lies inside the image read one
        // contiguous run of `kw * ic` values per filter row.
        let x0 = ox * g.stride_w;
        let row_inside = g.dilation_w == 1 && x0 >= g.pad_left && x0 + kw <= iw + g.pad_left;
        for ky in 0..kh {
            let iy = (oy * g.stride_h + ky * g.dilation_h)
                .checked_sub(g.pad_top)
                .filter(|&y| y < ih);
            if row_inside {
                let run = kw * ic;
                let dst = &mut row[at..at + run];
                match iy {
                    Some(y) => {
                        let s = ((b * ih + y) * iw + x0 - g.pad_left) * ic;
                        copy_small(dst, &input[s..s + run]);
                    }
                    None => dst.fill(fill),
                }
                at += run;
                continue;
            }
            for kx in 0..kw {
                let ix = (ox * g.stride_w + kx * g.dilation_w)
                    .checked_sub(g.pad_left)
                    .filter(|&x| x < iw);
                let dst = &mut row[at..at + ic];
                match (iy, ix) {
                    (Some(y), Some(x)) => {
                        let s = ((b * ih + y) * iw + x) * ic;
                        copy_small(dst, &input[s..s + ic]);
                    }
                    _ => dst.fill(fill),
                }
                at += ic;
            }
        }
    }
}

impl ConvShape {
    /// Values `range` of the window of output pixel `px` over input
    /// channels `chans` only (a group's window: filter rows, columns, then
    /// those channels, as [`ConvShape::window`] lays out the whole one)
    /// into `row` (`range.len()` long); `fill` where it hangs over the image.
    fn window_part<T: Copy>(
        &self,
        input: &[T],
        px: Pixel,
        chans: core::ops::Range<usize>,
        range: core::ops::Range<usize>,
        row: &mut [T],
        fill: T,
    ) {
        let [_, ih, iw, ic] = self.shapes[0];
        let [_, _, kw, _] = self.shapes[1];
        let cw = chans.len();
        let Pixel { b, oy, ox } = px;
        let g = &self.g;
        let mut at = 0;
        // The first tap and channel by division, the rest by stepping: a
        // group's window (RegNet: 9 taps of 16 channels) had spent more
        // time in three divisions per tap than in its copies.
        let tap = range.start / cw;
        let (mut ky, mut kx, mut c0) = (tap / kw, tap % kw, range.start - tap * cw);
        let mut i = range.start;
        while i < range.end {
            let c1 = (c0 + range.end - i).min(cw);
            let iy = (oy * g.stride_h + ky * g.dilation_h)
                .checked_sub(g.pad_top)
                .filter(|&y| y < ih);
            let ix = (ox * g.stride_w + kx * g.dilation_w)
                .checked_sub(g.pad_left)
                .filter(|&x| x < iw);
            let dst = &mut row[at..at + (c1 - c0)];
            match (iy, ix) {
                (Some(y), Some(x)) => {
                    let s = ((b * ih + y) * iw + x) * ic + chans.start;
                    copy_small(dst, &input[s + c0..s + c1]);
                }
                _ => dst.fill(fill),
            }
            at += c1 - c0;
            i += c1 - c0;
            c0 = 0;
            kx += 1;
            if kx == kw {
                (ky, kx) = (ky + 1, 0);
            }
        }
    }
}

/// An output pixel of a convolution: batch, row, column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pixel {
    b: usize,
    oy: usize,
    ox: usize,
}

/// `dst.copy_from_slice(src)` without a `memcpy` call for the short runs
/// of an im2col gather (a few channels of a few pixels): runs of 4 to 128
/// bytes move as two overlapping loads and stores of 4 to 64 bytes, the
/// way small `memcpy`s do (9 bytes, one 3x3 window row of RGB, is two
/// 8-byte moves instead of nine byte moves; its 36 bytes in f32 are two
/// 32-byte moves instead of a call to `memcpy`).
#[inline(always)]
fn copy_small<T: Copy>(dst: &mut [T], src: &[T]) {
    assert_eq!(dst.len(), src.len(), "im2col run lengths");
    let bytes = core::mem::size_of_val(dst);
    let (d, s) = (dst.as_mut_ptr() as *mut u8, src.as_ptr() as *const u8);
    // SAFETY: both slices hold `bytes` bytes (asserted above) and do not
    // overlap (`dst` is borrowed mutably); every access below lies within
    // the first `bytes` bytes, and the unaligned reads/writes of plain
    // integers are valid for any `Copy` data copied bytewise.
    unsafe {
        macro_rules! two {
            ($t:ty) => {{
                let w = core::mem::size_of::<$t>();
                let a = (s as *const $t).read_unaligned();
                let b = (s.add(bytes - w) as *const $t).read_unaligned();
                (d as *mut $t).write_unaligned(a);
                (d.add(bytes - w) as *mut $t).write_unaligned(b);
            }};
        }
        match bytes {
            0..=3 => core::ptr::copy_nonoverlapping(s, d, bytes),
            4..=8 => two!(u32),
            9..=16 => two!(u64),
            17..=32 => two!(u128),
            33..=64 => two!([u128; 2]),
            65..=128 => two!([u128; 4]),
            _ => core::ptr::copy_nonoverlapping(s, d, bytes),
        }
    }
}

/// A prepared int8 CONV_2D on a GEMM micro-kernel: one GEMM per group
/// (as [`SConv`]; the int8 windows are never cut: requantization needs the
/// whole sum).
#[derive(Debug, Clone)]
pub struct QConv {
    pub shape: ConvShape,
    /// One GEMM per group, each on its `fc` input and `oc / groups` output
    /// channels.
    pub gemms: Vec<QGemm>,
    pub run: QGemmFn,
    /// The input zero-point, which padding taps read.
    pub pad_value: i8,
}

/// Rows of the im2col tile for a row length of `k` elements of `size` bytes
/// (0 when not even one row fits: such convolutions use the reference): at
/// most 60, and a multiple of [`CONV_ROW_ALIGN`] when that many fit, so the
/// GEMM never ends a tile in a short row block.
pub fn im2col_rows(k: usize, size: usize) -> usize {
    let rows = (IM2COL_BYTES / (k.max(1) * size)).min(60);
    if rows >= CONV_ROW_ALIGN {
        rows / CONV_ROW_ALIGN * CONV_ROW_ALIGN
    } else {
        rows
    }
}

impl QConv {
    /// Prepares a convolution, or `None` when this driver can't run it (a
    /// window too long for the stack buffer).
    pub fn new(
        isa: &QGemmIsa,
        shape: ConvShape,
        p: &ConvI8Params,
        filter: &[i8],
        bias: Option<&[i32]>,
    ) -> Option<(Self, &'static str)> {
        let [_, kh, kw, fc] = shape.shapes[1];
        let ic = shape.shapes[0][3];
        let oc = shape.shapes[2][3];
        let k = kh * kw * fc;
        if k == 0 || oc == 0 || !ic.is_multiple_of(fc) || !oc.is_multiple_of(ic / fc) {
            return None;
        }
        let gather = shape.gather();
        if gather == Gather::Im2col && im2col_rows(pad_to(k, isa.kr), 1) == 0 {
            return None;
        }
        let groups = ic / fc;
        let ocg = oc / groups;
        let gemms = (0..groups)
            .map(|g| {
                let outs = g * ocg..(g + 1) * ocg;
                let pg = ConvI8Params {
                    requant: if p.requant.len() == 1 {
                        p.requant.clone()
                    } else {
                        p.requant[outs.clone()].to_vec()
                    },
                    ..p.clone()
                };
                let w = &filter[outs.start * k..outs.end * k];
                QGemm::pack(isa, w, ocg, k, bias.map(|b| &b[outs]), &pg)
            })
            .collect();
        let name = if gather == Gather::Direct {
            isa.name
        } else {
            isa.im2col_name
        };
        let pad_value = (-p.input_offset).clamp(-128, 127) as i8;
        let run = isa.run;
        Some((
            QConv {
                shape,
                gemms,
                run,
                pad_value,
            },
            name,
        ))
    }

    /// Runs the convolution (`input`/`output` NHWC), split over the current pool.
    pub fn exec(&self, input: &[i8], output: &mut [i8]) {
        let m = self.shape.pixels();
        if m == 0 {
            return;
        }
        let (ic, oc) = (self.shape.shapes[0][3], self.shape.shapes[2][3]);
        let groups = self.gemms.len();
        let (fc, ocg) = (ic / groups, oc / groups);
        let gather = self.shape.gather();
        for_each_row_chunk(output, m, oc, CONV_ROW_ALIGN, &|rows, out| match gather {
            Gather::Direct => {
                for (g, gemm) in self.gemms.iter().enumerate() {
                    let x = &input[rows.start * ic + g * fc..rows.end * ic];
                    (self.run)(gemm, x, ic, rows.len(), &mut out[g * ocg..], oc);
                }
            }
            Gather::Im2col => {
                let mut buf = [0i8; IM2COL_BYTES];
                let (k, kp) = (self.gemms[0].k, self.gemms[0].kp);
                let tile = im2col_rows(kp, 1);
                let mut p = rows.start;
                let mut px = self.shape.pixel(p);
                while p < rows.end {
                    let t = tile.min(rows.end - p);
                    let o = &mut out[(p - rows.start) * oc..(p - rows.start + t) * oc];
                    for (g, gemm) in self.gemms.iter().enumerate() {
                        let mut q = px;
                        for r in 0..t {
                            let row = &mut buf[r * kp..r * kp + k];
                            if groups == 1 {
                                self.shape.window(input, q, row, self.pad_value);
                            } else {
                                let chans = g * fc..(g + 1) * fc;
                                self.shape
                                    .window_part(input, q, chans, 0..k, row, self.pad_value);
                            }
                            q = self.shape.next_pixel(q);
                        }
                        (self.run)(gemm, &buf[..t * kp], kp, t, &mut o[g * ocg..], oc);
                    }
                    for _ in 0..t {
                        px = self.shape.next_pixel(px);
                    }
                    p += t;
                }
            }
        });
    }
}

/// A prepared f32 CONV_2D on a GEMM micro-kernel: one GEMM per group and,
/// within a group, per range of its window.
///
/// Groups (`filter` channels `fc` < input channels, ResNeXt / RegNet) each
/// read their own `fc` channels of the input and write their own `oc /
/// groups` of the output, through the micro-kernel's row strides.
///
/// A window longer than a tile of [`CONV_ROW_ALIGN`] rows can hold in the
/// 16 KiB im2col buffer (3x3 over more than 113 channels) is cut along `k`:
/// the part holding the start of a group's window carries its bias and
/// writes the output, the others add their partial sums, and `clamp`
/// applies the activation at the end. (With one short tile instead, a
/// 3x3x512 layer ran the 6-row micro-kernel one row at a time, or the
/// reference kernel: ResNet-18 took 295 ms instead of 39.)
#[derive(Debug, Clone)]
pub struct SConv {
    pub shape: ConvShape,
    pub run: SGemmFn,
    pub groups: usize,
    pub parts: Vec<ConvPart>,
    /// The activation, when windows are cut (otherwise each GEMM applies it).
    pub clamp: Option<(f32, f32)>,
    /// Output pixels per im2col tile (the longest part's rows, and when
    /// windows are cut no more than a tile of partial sums holds).
    pub tile: usize,
    /// An element-wise function applied to each tile while it is in cache
    /// (a swish the converter fused, see [`Post`]).
    pub post: Option<Post>,
    /// The window GEMM, when this conv reads the windows inside the image
    /// in place (windows not cut; with groups or a width dilation each
    /// filter row is `kw` pieces of the group's channels).
    pub window: Option<SGemmWindowFn>,
}

/// One GEMM of an [`SConv`]: group `group`'s window values `k`.
#[derive(Debug, Clone)]
pub struct ConvPart {
    pub group: usize,
    pub k: core::ops::Range<usize>,
    pub gemm: SGemm,
}

impl SConv {
    /// Like [`QConv::new`] for f32, groups included.
    pub fn new(
        isa: &SGemmIsa,
        shape: ConvShape,
        act: (f32, f32),
        filter: &[f32],
        bias: Option<&[f32]>,
    ) -> Option<(Self, &'static str)> {
        let [_, kh, kw, fc] = shape.shapes[1];
        let ic = shape.shapes[0][3];
        let oc = shape.shapes[2][3];
        let k = kh * kw * fc;
        if k == 0 || oc == 0 || !ic.is_multiple_of(fc) || !oc.is_multiple_of(ic / fc) {
            return None;
        }
        let groups = ic / fc;
        let ocg = oc / groups;
        let gather = shape.gather();
        let cut = gather == Gather::Im2col && im2col_rows(k, 4) < CONV_ROW_ALIGN;
        // A cut window's partial sums need a tile of a group's outputs.
        if cut && ocg > SUMS_BYTES / 4 {
            return None;
        }
        let len = if cut {
            k.div_ceil(k.div_ceil(IM2COL_BYTES / 4 / CONV_ROW_ALIGN))
        } else {
            k
        };
        let none = (f32::NEG_INFINITY, f32::INFINITY);
        let mut parts = Vec::new();
        for group in 0..groups {
            let outs = group * ocg..(group + 1) * ocg;
            for k0 in (0..k).step_by(len) {
                let r = k0..(k0 + len).min(k);
                let cols: Vec<f32> = outs
                    .clone()
                    .flat_map(|c| filter[c * k + r.start..c * k + r.end].iter().copied())
                    .collect();
                let b = bias.filter(|_| k0 == 0).map(|b| &b[outs.clone()]);
                let a = if cut { none } else { act };
                let gemm = SGemm::pack(isa.nr, &cols, ocg, r.len(), b, a);
                parts.push(ConvPart { group, k: r, gemm });
            }
        }
        let window = isa.run_window.filter(|_| gather == Gather::Im2col && !cut);
        let name = match (gather, window) {
            (Gather::Direct, _) => isa.name,
            (Gather::Im2col, Some(w)) => w.name,
            (Gather::Im2col, None) => isa.im2col_name,
        };
        let clamp = cut.then_some(act);
        let run = isa.run;
        let mut tile = im2col_rows(len, 4);
        if cut {
            tile = tile.min(SUMS_BYTES / 4 / ocg).max(1);
        }
        let conv = SConv {
            shape,
            run,
            groups,
            parts,
            clamp,
            tile,
            post: None,
            window: window.map(|w| w.f),
        };
        Some((conv, name))
    }

    /// Runs the convolution, split over the current pool.
    pub fn exec(&self, input: &[f32], output: &mut [f32]) {
        let m = self.shape.pixels();
        if m == 0 {
            return;
        }
        let (ic, oc) = (self.shape.shapes[0][3], self.shape.shapes[2][3]);
        let (fc, ocg) = (ic / self.groups, oc / self.groups);
        let gather = self.shape.gather();
        // With a post-op, direct rows go in blocks it finds in cache.
        let block = match self.post {
            Some(_) => (POST_BYTES / 4 / oc)
                .max(1)
                .next_multiple_of(CONV_ROW_ALIGN),
            None => m,
        };
        for_each_row_chunk(output, m, oc, CONV_ROW_ALIGN, &|rows, out| match gather {
            // 1x1, stride 1: the input rows are the GEMM's rows.
            Gather::Direct => {
                for (b, out) in rows.clone().step_by(block).zip(out.chunks_mut(block * oc)) {
                    let r = b..(b + block).min(rows.end);
                    for part in &self.parts {
                        let (a, o) = (part.group * fc, part.group * ocg);
                        let x = &input[r.start * ic + a..r.end * ic];
                        (self.run)(&part.gemm, x, ic, r.len(), &mut out[o..], oc);
                    }
                    if let Some(p) = &self.post {
                        p.apply(out);
                    }
                }
            }
            Gather::Im2col => match self.window {
                Some(run) => self.exec_window(run, input, rows, out),
                None => self.exec_im2col(input, rows, out),
            },
        });
    }

    /// Output pixels `rows` (into `out`), one output row at a time: the
    /// columns whose windows lie inside the image go to the window GEMM,
    /// which reads them where they are, one group at a time; the rest (the
    /// padded border) are gathered as [`SConv::exec_im2col`] does. The sums
    /// run in the same order either way (filter rows, columns, channels).
    fn exec_window(
        &self,
        run: SGemmWindowFn,
        input: &[f32],
        rows: core::ops::Range<usize>,
        out: &mut [f32],
    ) {
        let [_, ih, iw, ic] = self.shape.shapes[0];
        let [_, kh, kw, fc] = self.shape.shapes[1];
        let [_, _, ow, oc] = self.shape.shapes[2];
        let ocg = oc / self.groups;
        let g = &self.shape.g;
        // Columns `x_lo..x_hi` have every filter column inside the image.
        let x_lo = g.pad_left.div_ceil(g.stride_w).min(ow);
        let x_hi = match (iw + g.pad_left).checked_sub((kw - 1) * g.dilation_w + 1) {
            Some(last) => (last / g.stride_w + 1).clamp(x_lo, ow),
            None => x_lo,
        };
        // One run of `kw * ic` per filter row when the row's channels are
        // all the window's and its columns adjacent; else `kw` pieces.
        let runs = if self.groups == 1 && g.dilation_w == 1 {
            Runs {
                runs: kh,
                run_stride: g.dilation_h * iw * ic,
                ..Runs::contiguous(kw * ic)
            }
        } else {
            Runs {
                runs: kh,
                run_stride: g.dilation_h * iw * ic,
                cols: kw,
                col_stride: g.dilation_w * ic,
                run: fc,
            }
        };
        let mut buf = [0f32; IM2COL_BYTES / 4];
        let mut p = rows.start;
        while p < rows.end {
            let px = self.shape.pixel(p);
            let end = (p + ow - px.ox).min(rows.end);
            let cols = px.ox..px.ox + (end - p);
            let top = (px.oy * g.stride_h).checked_sub(g.pad_top);
            let inside = top.filter(|&y| y + (kh - 1) * g.dilation_h < ih);
            // This row's columns in place: `a..b`, gathered: the others.
            let (a, b) = match inside {
                Some(_) => {
                    let a = x_lo.clamp(cols.start, cols.end);
                    (a, x_hi.clamp(a, cols.end))
                }
                None => (cols.end, cols.end),
            };
            let at = |x: usize| (p + x - cols.start - rows.start) * oc;
            for part in &self.parts {
                let o = part.group * ocg;
                if a > cols.start {
                    let left = &mut out[at(cols.start) + o..];
                    self.gather(part, input, p, a - cols.start, &mut buf, left);
                }
                if let Some(y) = inside.filter(|_| a < b) {
                    let s = ((px.b * ih + y) * iw + a * g.stride_w - g.pad_left) * ic;
                    let x = &input[s + part.group * fc..];
                    let o = &mut out[at(a) + o..];
                    run(&part.gemm, x, g.stride_w * ic, runs, b - a, o, oc);
                }
                if cols.end > b {
                    let right = &mut out[at(b) + o..];
                    let rest = p + b - cols.start;
                    self.gather(part, input, rest, cols.end - b, &mut buf, right);
                }
            }
            if let Some(post) = &self.post {
                post.apply(&mut out[at(cols.start)..at(cols.end)]);
            }
            p = end;
        }
    }

    /// Output pixels `first..first + count` of part `part` (a whole window
    /// of one group) into `out` (at the group's first channel) through
    /// im2col tiles in `buf`.
    fn gather(
        &self,
        part: &ConvPart,
        input: &[f32],
        first: usize,
        count: usize,
        buf: &mut [f32],
        out: &mut [f32],
    ) {
        let oc = self.shape.shapes[2][3];
        let fc = self.shape.shapes[1][3];
        let k = part.gemm.k;
        let chans = part.group * fc..(part.group + 1) * fc;
        let mut px = self.shape.pixel(first);
        let mut done = 0;
        while done < count {
            let t = self.tile.min(count - done);
            for row in buf[..t * k].chunks_exact_mut(k) {
                if self.groups == 1 {
                    self.shape.window(input, px, row, 0.0);
                } else {
                    self.shape
                        .window_part(input, px, chans.clone(), 0..k, row, 0.0);
                }
                px = self.shape.next_pixel(px);
            }
            (self.run)(&part.gemm, &buf[..t * k], k, t, &mut out[done * oc..], oc);
            done += t;
        }
    }

    /// Output pixels `rows` (into `out`) through im2col tiles, in blocks of
    /// rows whose output stays in cache while each part (group, window cut)
    /// passes over all their tiles: a part's weights are read once per
    /// block, not once per tile. (ResNet-18's 7x7 layers, 9.4 MB of weights
    /// for 49 pixels, had read them from memory once per 12-row tile.)
    /// Each output still adds its parts in order: the values are as before.
    fn exec_im2col(&self, input: &[f32], rows: core::ops::Range<usize>, out: &mut [f32]) {
        let (ic, oc) = (self.shape.shapes[0][3], self.shape.shapes[2][3]);
        let (fc, ocg) = (ic / self.groups, oc / self.groups);
        let whole = self.shape.shapes[1][1] * self.shape.shapes[1][2] * ic;
        let mut buf = [0f32; IM2COL_BYTES / 4];
        // The partial sums' tile, zeroed only when windows are cut.
        let mut store;
        let sums: &mut [f32] = if self.clamp.is_some() {
            store = [0f32; SUMS_BYTES / 4];
            &mut store
        } else {
            &mut []
        };
        let tile = self.tile;
        let block = (BLOCK_BYTES / 4 / oc).max(tile) / tile * tile;
        for first in rows.clone().step_by(block) {
            let end = (first + block).min(rows.end);
            let ob = &mut out[(first - rows.start) * oc..(end - rows.start) * oc];
            let start = self.shape.pixel(first);
            for part in &self.parts {
                let kg = part.k.len();
                let chans = part.group * fc..(part.group + 1) * fc;
                let at = part.group * ocg;
                let (mut p, mut px) = (first, start);
                while p < end {
                    let t = tile.min(end - p);
                    let o = &mut ob[(p - first) * oc..(p - first + t) * oc];
                    for row in buf[..t * kg].chunks_exact_mut(kg) {
                        if kg == whole {
                            self.shape.window(input, px, row, 0.0);
                        } else {
                            let r = part.k.clone();
                            self.shape
                                .window_part(input, px, chans.clone(), r, row, 0.0);
                        }
                        px = self.shape.next_pixel(px);
                    }
                    if part.k.start == 0 {
                        (self.run)(&part.gemm, &buf[..t * kg], kg, t, &mut o[at..], oc);
                    } else {
                        let s = &mut sums[..t * ocg];
                        (self.run)(&part.gemm, &buf[..t * kg], kg, t, s, ocg);
                        for (dst, add) in o.chunks_exact_mut(oc).zip(s.chunks_exact(ocg)) {
                            for (d, a) in dst[at..at + ocg].iter_mut().zip(add) {
                                *d += *a;
                            }
                        }
                    }
                    p += t;
                }
            }
            if let Some((lo, hi)) = self.clamp {
                for v in ob.iter_mut() {
                    *v = v.max(lo).min(hi);
                }
            }
            if let Some(p) = &self.post {
                p.apply(ob);
            }
        }
    }
}

/// The partial sums of a cut window's parts after the first, a tile of
/// outputs: 12 rows (two 6-row GEMM strips, as the gather buffer holds) of
/// up to 1024 channels. With 16 KiB, 512 channels had tiles of 8 rows, one
/// 6-row strip and one of 2, each streaming the part's weights.
const SUMS_BYTES: usize = 12 * 1024 * 4;

/// Output bytes of a block of im2col rows that every part of a conv passes
/// over before the next block (see [`SConv::exec_im2col`]): an L2's share.
const BLOCK_BYTES: usize = 256 * 1024;

/// Prepared int8 DEPTHWISE_CONV_2D with multiplier 1: weights widened to
/// i16 and laid out `[kh * kw][cp]` (`cp` = channels rounded up to 32).
#[derive(Debug, Clone)]
pub struct QDw {
    pub shape: ConvShape,
    pub cp: usize,
    /// The weights as i16 (the kernels multiply in 16 bits), zero-padded.
    pub w16: Vec<i16>,
    /// Bias as given (zero where absent), and the bias plus
    /// `input_offset * sum of all taps` for windows entirely inside the image.
    pub bias: Vec<i32>,
    pub bias_full: Vec<i32>,
    pub mult: Vec<i32>,
    pub lshift: Vec<i32>,
    pub rshift: Vec<i32>,
    /// See [`QGemm::right_shifts_only`].
    pub right_shifts_only: bool,
    /// Float scales (`cp` entries) for ONNX Runtime's rounding, else empty
    /// (see [`QGemm::fscale`]).
    pub fscale: Vec<f32>,
    /// One input row (at least `cp` values) of the input zero point: what a
    /// kernel may read for the taps of a window outside the image (each adds
    /// nothing to an accumulator that starts from `bias_full`).
    pub pad: Vec<i8>,
    pub input_offset: i32,
    pub out_zp: i32,
    pub act_min: i32,
    pub act_max: i32,
    pub run: QDwFn,
}

impl QDw {
    /// Packs a depthwise filter `[1, kh, kw, c]` (multiplier 1 only).
    pub fn new(
        run: QDwFn,
        shape: ConvShape,
        p: &ConvI8Params,
        filter: &[i8],
        bias: Option<&[i32]>,
    ) -> Self {
        let [_, kh, kw, c] = shape.shapes[1];
        let cp = pad_to(c.max(1), 32);
        let mut w16 = vec![0i16; kh * kw * cp];
        let mut b = vec![0i32; cp];
        let mut bf = vec![0i32; cp];
        for ch in 0..c {
            let mut sum = 0i32;
            for t in 0..kh * kw {
                let v = filter[t * c + ch];
                w16[t * cp + ch] = v as i16;
                sum = sum.wrapping_add(v as i32);
            }
            b[ch] = bias.map_or(0, |b| b[ch]);
            bf[ch] = b[ch].wrapping_add(sum.wrapping_mul(p.input_offset));
        }
        let (mult, lshift, rshift) = requant_parts(p, cp);
        QDw {
            shape,
            cp,
            w16,
            bias: b,
            bias_full: bf,
            mult,
            lshift,
            rshift,
            right_shifts_only: right_shifts_only(p),
            fscale: float_scales(p, cp),
            pad: vec![p.input_offset.wrapping_neg() as i8; cp.max(shape.shapes[0][2] * c)],
            input_offset: p.input_offset,
            out_zp: p.output_offset,
            act_min: p.act_min,
            act_max: p.act_max,
            run,
        }
    }

    /// Runs the depthwise convolution, split over the current pool's threads
    /// as [`DwSplit::choose`] says.
    pub fn exec(&self, input: &[i8], output: &mut [i8]) {
        let [n, oh, _, c] = self.shape.shapes[2];
        let split = DwSplit::choose(n * oh, c, threads::current_threads());
        self.exec_split(input, output, split)
    }

    /// Runs the depthwise convolution, split over the current pool's threads
    /// as `split` says (tests use it to exercise both).
    pub fn exec_split(&self, input: &[i8], output: &mut [i8], split: DwSplit) {
        let [n, oh, ow, c] = self.shape.shapes[2];
        assert_eq!(output.len(), n * oh * ow * c, "depthwise output size");
        assert!(
            input.len() >= self.shape.shapes[0].iter().product(),
            "depthwise input size"
        );
        dw_exec(output, [n * oh, ow, c], split, None, &|part| {
            (self.run)(self, input, part)
        });
    }
}

/// Prepared f32 DEPTHWISE_CONV_2D with multiplier 1: `[kh * kw][cp]` weights.
#[derive(Debug, Clone)]
pub struct SDw {
    pub shape: ConvShape,
    pub cp: usize,
    pub w: Vec<f32>,
    pub bias: Vec<f32>,
    pub act: (f32, f32),
    pub run: SDwFn,
    /// An element-wise function applied to each block of rows while it is
    /// in cache (see [`Post`]).
    pub post: Option<Post>,
}

impl SDw {
    /// Packs a depthwise filter `[1, kh, kw, c]` (multiplier 1 only).
    pub fn new(
        run: SDwFn,
        shape: ConvShape,
        act: (f32, f32),
        filter: &[f32],
        bias: Option<&[f32]>,
    ) -> Self {
        let [_, kh, kw, c] = shape.shapes[1];
        let cp = pad_to(c.max(1), 16);
        let mut w = vec![0f32; kh * kw * cp];
        let mut b = vec![0f32; cp];
        for ch in 0..c {
            for t in 0..kh * kw {
                w[t * cp + ch] = filter[t * c + ch];
            }
            b[ch] = bias.map_or(0.0, |b| b[ch]);
        }
        SDw {
            shape,
            cp,
            w,
            bias: b,
            act,
            run,
            post: None,
        }
    }

    /// Runs the depthwise convolution, split over the current pool's threads
    /// as [`DwSplit::choose`] says.
    pub fn exec(&self, input: &[f32], output: &mut [f32]) {
        let [n, oh, _, c] = self.shape.shapes[2];
        let split = DwSplit::choose(n * oh, c, threads::current_threads());
        self.exec_split(input, output, split)
    }

    /// Runs the depthwise convolution, split over the current pool's threads
    /// as `split` says (tests use it to exercise both).
    pub fn exec_split(&self, input: &[f32], output: &mut [f32], split: DwSplit) {
        let [n, oh, ow, c] = self.shape.shapes[2];
        assert_eq!(output.len(), n * oh * ow * c, "depthwise output size");
        assert!(
            input.len() >= self.shape.shapes[0].iter().product(),
            "depthwise input size"
        );
        let post = self.post.map(|p| move |v: &mut [f32]| p.apply(v));
        let post = post.as_ref().map(|p| p as &InPlace<f32>);
        dw_exec(output, [n * oh, ow, c], split, post, &|part| {
            (self.run)(self, input, part)
        });
    }
}

/// Prepared int8 FULLY_CONNECTED on a dot-product kernel, with TFLite's `f64`
/// rescaling done per output exactly as the reference does.
#[derive(Debug, Clone)]
pub struct QFc {
    pub p: FullyConnectedI8Params,
    pub batches: usize,
    pub k: usize,
    pub n: usize,
    /// `sum_k w[o][k]` per output.
    pub wsum: Vec<i32>,
    pub x_bias: i32,
    pub run: QDotFn,
}

impl QFc {
    /// Precomputes the weight row sums.
    pub fn new(
        isa: &QDotIsa,
        p: FullyConnectedI8Params,
        batches: usize,
        k: usize,
        n: usize,
        weights: &[i8],
    ) -> Self {
        let wsum = (0..n)
            .map(|o| {
                weights[o * k..(o + 1) * k]
                    .iter()
                    .fold(0i32, |s, &v| s.wrapping_add(v as i32))
            })
            .collect();
        QFc {
            p,
            batches,
            k,
            n,
            wsum,
            x_bias: isa.x_bias,
            run: isa.run,
        }
    }

    /// `sum (w + fo)(x + io) = dot(w, x + xb) + (io - xb) * sum w + fo * sum x + k * fo * io`,
    /// then bias, the `f64` rescale, zero-point and clamp of the reference.
    pub fn exec(&self, input: &[i8], weights: &[i8], bias: Option<&[i32]>, output: &mut [i8]) {
        const CHUNK: usize = 256;
        let (k, n, p) = (self.k, self.n, &self.p);
        assert!(
            output.len() >= self.batches * n,
            "fully connected output size"
        );
        let out = SharedMut(output.as_mut_ptr());
        // Threads split the outputs (rows of the weights), every batch each.
        threads::for_each_chunk(n, FC_ALIGN, &|outs| {
            let mut acc = [0i32; CHUNK];
            for b in 0..self.batches {
                let x = &input[b * k..(b + 1) * k];
                let xsum = x.iter().fold(0i32, |s, &v| s.wrapping_add(v as i32));
                let fo = p.filter_offset;
                let konst = xsum
                    .wrapping_mul(fo)
                    .wrapping_add((k as i32).wrapping_mul(fo).wrapping_mul(p.input_offset));
                let fold = p.input_offset.wrapping_sub(self.x_bias);
                let mut o0 = outs.start;
                while o0 < outs.end {
                    let t = CHUNK.min(outs.end - o0);
                    (self.run)(&weights[o0 * k..(o0 + t) * k], k, x, &mut acc[..t]);
                    for (j, &a) in acc[..t].iter().enumerate() {
                        let o = o0 + j;
                        let mut v = a
                            .wrapping_add(fold.wrapping_mul(self.wsum[o]))
                            .wrapping_add(konst);
                        if let Some(bias) = bias {
                            v = v.wrapping_add(bias[o]);
                        }
                        let r = p.rescale(v, o).wrapping_add(p.output_offset);
                        // SAFETY: `b * n + o` is inside `output` (checked above)
                        // and output `o` belongs to this chunk alone.
                        unsafe { *out.ptr().add(b * n + o) = r.clamp(p.act_min, p.act_max) as i8 };
                    }
                    o0 += t;
                }
            }
        });
    }
}

/// Prepared f32 FULLY_CONNECTED on a dot-product kernel.
#[derive(Debug, Clone)]
pub struct SFc {
    pub act: (f32, f32),
    pub batches: usize,
    pub k: usize,
    pub n: usize,
    pub run: SDotFn,
}

impl SFc {
    /// Runs `output[b][o] = clamp(dot(w[o], x[b]) + bias[o])`.
    pub fn exec(&self, input: &[f32], weights: &[f32], bias: Option<&[f32]>, output: &mut [f32]) {
        let (k, n) = (self.k, self.n);
        for b in 0..self.batches {
            let x = &input[b * k..(b + 1) * k];
            // Threads split the outputs (rows of the weights).
            for_each_row_chunk(
                &mut output[b * n..(b + 1) * n],
                n,
                1,
                FC_ALIGN,
                &|outs, out| {
                    (self.run)(&weights[outs.start * k..outs.end * k], k, x, out);
                    for (v, o) in out.iter_mut().zip(outs) {
                        let s = *v + bias.map_or(0.0, |b| b[o]);
                        *v = s.max(self.act.0).min(self.act.1);
                    }
                },
            );
        }
    }
}

/// MEAN over the spatial axes (1, 2) of an NHWC tensor, the global average
/// pooling of classifiers: channels are summed pixel by pixel in a small
/// stack buffer, which adds in the same order as the reference (so f32 is
/// bit-identical too) but walks memory contiguously and vectorizes.
#[derive(Debug, Clone, Copy)]
pub struct MeanHw {
    pub batches: usize,
    pub pixels: usize,
    pub channels: usize,
}

/// Channels summed per pass of [`MeanHw`].
const MEAN_CHUNK: usize = 256;

/// Output values (`batch * channels + c`) a thread of [`MeanHw`] takes at a
/// time: 64 bytes of int8 output, so two threads never write one cache line.
const MEAN_ALIGN: usize = 64;

impl MeanHw {
    /// Splits the `batches * channels` outputs over the current pool and
    /// calls `f(x, c0, out)` for each run of channels `c0..c0 + out.len()`
    /// (at most [`MEAN_CHUNK`]) of one batch, `x` being that batch's input.
    /// The 7x7x1280 mean ending MobileNetV2 had been 20% slower on 2 threads
    /// than on 1 when run whole on one, the other core having written half
    /// its input.
    fn split<T: Copy + Sync>(
        &self,
        input: &[T],
        output: &mut [T],
        f: impl Fn(&[T], usize, &mut [T]) + Sync,
    ) {
        let (hw, c) = (self.pixels, self.channels);
        assert!(
            input.len() >= self.batches * hw * c && output.len() >= self.batches * c,
            "mean operand sizes"
        );
        for_each_row_chunk(output, self.batches * c, 1, MEAN_ALIGN, &|r, out| {
            let mut i = r.start;
            while i < r.end {
                let (b, c0) = (i / c, i % c);
                let t = MEAN_CHUNK.min(c - c0).min(r.end - i);
                f(
                    &input[b * hw * c..(b + 1) * hw * c],
                    c0,
                    &mut out[i - r.start..][..t],
                );
                i += t;
            }
        });
    }

    /// f32: `out[b][c] = (sum over pixels of x[b][p][c]) / pixels`.
    pub fn exec_f32(&self, input: &[f32], output: &mut [f32]) {
        let (hw, c) = (self.pixels, self.channels);
        self.split(input, output, |x, c0, out| {
            let t = out.len();
            let mut acc = [0f32; MEAN_CHUNK];
            for p in 0..hw {
                for (a, v) in acc[..t].iter_mut().zip(&x[p * c + c0..p * c + c0 + t]) {
                    *a += *v;
                }
            }
            for (o, a) in out.iter_mut().zip(&acc[..t]) {
                *o = if hw == 0 { f32::NAN } else { *a / hw as f32 };
            }
        });
    }

    /// int8, bit-identical to `reference::pool::mean_i8`.
    pub fn exec_i8(
        &self,
        p: &super::reference::pool::MeanI8Params,
        input: &[i8],
        output: &mut [i8],
    ) {
        let (hw, c) = (self.pixels, self.channels);
        self.split(input, output, |x, c0, out| {
            let t = out.len();
            let mut acc = [0i32; MEAN_CHUNK];
            for px in 0..hw {
                for (a, v) in acc[..t].iter_mut().zip(&x[px * c + c0..px * c + c0 + t]) {
                    *a = a.wrapping_add(*v as i32);
                }
            }
            for (o, &sum) in out.iter_mut().zip(&acc[..t]) {
                *o = if p.count == 0 {
                    0
                } else {
                    let shifted = (sum as i64 - p.input_zero_point as i64 * p.count) as i32;
                    let v = p.requant.apply(shifted).wrapping_add(p.output_zero_point);
                    v.clamp(-128, 127) as i8
                };
            }
        });
    }
}

/// PAD of the last axis only (BlazeFace's residual channel padding): each of
/// `pixels` input rows of `c_in` values becomes an output row of `c_out`,
/// `before` pad values, the row, then pad values again. Split by pixels over
/// the current pool; the same bytes as `reference::movement::pad`.
#[derive(Debug, Clone, Copy)]
pub struct PadLast {
    pub pixels: usize,
    pub c_in: usize,
    pub before: usize,
    pub c_out: usize,
}

impl PadLast {
    pub fn exec<T: Copy + Sync>(&self, input: &[T], output: &mut [T], value: T) {
        let PadLast {
            pixels,
            c_in,
            before,
            c_out,
        } = *self;
        assert!(
            before + c_in <= c_out
                && input.len() >= pixels * c_in
                && output.len() >= pixels * c_out,
            "pad operand sizes"
        );
        if c_out == 0 {
            return;
        }
        if c_in == 0 {
            return output[..pixels * c_out].fill(value);
        }
        // Rows of at least 4 KiB a chunk, so small pads stay on one thread.
        let align = (4096 / (c_out * core::mem::size_of::<T>()).max(1)).max(1);
        for_each_row_chunk(output, pixels, c_out, align, &|r, out| {
            for (x, y) in input[r.start * c_in..r.end * c_in]
                .chunks_exact(c_in.max(1))
                .zip(out.chunks_exact_mut(c_out))
            {
                y[..before].fill(value);
                y[before..before + c_in].copy_from_slice(&x[..c_in]);
                y[before + c_in..].fill(value);
            }
        });
    }
}

/// MAX_POOL_2D walking channels contiguously: for each output pixel, the
/// window's input pixels are folded into a stack buffer of channel maxima,
/// in the reference's window order with its comparison (`v > max`), so the
/// result is bit-identical (NaN and signed-zero behaviour included).
#[derive(Debug, Clone, Copy)]
pub struct MaxPool {
    pub g: super::reference::pool::PoolGeometry,
    /// Input and output `[n, h, w, c]`.
    pub shapes: [[usize; 4]; 2],
}

impl MaxPool {
    /// Input rows (or columns) under the window at output position `o`,
    /// clipped to the image.
    fn span(
        o: usize,
        stride: usize,
        pad: usize,
        filter: usize,
        size: usize,
    ) -> core::ops::Range<usize> {
        let origin = (o * stride) as isize - pad as isize;
        let lo = origin.max(0) as usize;
        let hi = (origin + filter as isize).clamp(0, size as isize) as usize;
        lo.min(hi)..hi
    }

    /// Split over the current pool by output rows (`batch * out_h + y`).
    fn run<T: Copy + Sync>(
        &self,
        input: &[T],
        output: &mut [T],
        init: T,
        fold: impl Fn(T, T) -> T + Sync,
        finish: impl Fn(T) -> T + Sync,
    ) {
        let [n, ih, iw, c] = self.shapes[0];
        let [_, oh, ow, _] = self.shapes[1];
        let g = &self.g;
        assert!(
            input.len() >= n * ih * iw * c && output.len() >= n * oh * ow * c,
            "max pool operand sizes"
        );
        if ow * c == 0 {
            return;
        }
        for_each_row_chunk(output, n * oh, ow * c, 1, &|r, output| {
            for (row, out_row) in r.clone().zip(output.chunks_exact_mut(ow * c)) {
                let (b, oy) = (row / oh, row % oh);
                let rows = Self::span(oy, g.stride_h, g.pad_top, g.filter_h, ih);
                for ox in 0..ow {
                    let cols = Self::span(ox, g.stride_w, g.pad_left, g.filter_w, iw);
                    let out = &mut out_row[ox * c..][..c];
                    let mut c0 = 0;
                    while c0 < c {
                        let t = MEAN_CHUNK.min(c - c0);
                        let mut acc = [init; MEAN_CHUNK];
                        for iy in rows.clone() {
                            for ix in cols.clone() {
                                let px = &input[((b * ih + iy) * iw + ix) * c + c0..][..t];
                                for (a, &v) in acc[..t].iter_mut().zip(px) {
                                    *a = fold(*a, v);
                                }
                            }
                        }
                        for (o, &a) in out[c0..c0 + t].iter_mut().zip(&acc[..t]) {
                            *o = finish(a);
                        }
                        c0 += t;
                    }
                }
            }
        });
    }

    /// f32, bit-identical to `reference::pool::max_pool_f32`.
    pub fn exec_f32(&self, act: (f32, f32), input: &[f32], output: &mut [f32]) {
        self.run(
            input,
            output,
            f32::MIN,
            |m, v| if v > m { v } else { m },
            |m| m.max(act.0).min(act.1),
        );
    }

    /// int8, bit-identical to `reference::pool::max_pool_i8`.
    pub fn exec_i8(&self, act: (i32, i32), input: &[i8], output: &mut [i8]) {
        self.run(input, output, i8::MIN, i8::max, |m| {
            (m as i32).clamp(act.0, act.1) as i8
        });
    }
}

/// Prepared f32 CONV_TRANSPOSE (one group, any stride, dilation and
/// padding): one GEMM takes each input pixel's channels to its whole
/// `kh × kw × oc` footprint, which is then added onto the output (col2im)
/// on top of the bias. The reference scatters one product at a time
/// (selfie_segmentation's 2x2 upsampling took 2.3 ms of its 6.1).
#[derive(Debug, Clone)]
pub struct SDeconv {
    pub g: super::reference::math::ConvTransposeGeometry,
    /// Rows `(ky, kx, o)` of `ic` weights each.
    pub gemm: SGemm,
    pub run: SGemmFn,
    pub bias: Vec<f32>,
    /// Input pixels per GEMM call (its output fits the stack tile).
    pub tile: usize,
}

impl SDeconv {
    /// Packs the `[ic, oc, kh, kw]` filter; `None` for a grouped transposed
    /// conv or a footprint wider than the tile (the reference runs those).
    pub fn new(
        isa: &SGemmIsa,
        g: &super::reference::math::ConvTransposeGeometry,
        filter: &[f32],
        bias: Option<&[f32]>,
    ) -> Option<Self> {
        let (ic, oc) = (g.in_shape[3], g.out_shape[3]);
        let (kh, kw) = (g.kernel[0], g.kernel[1]);
        let n = kh * kw * oc;
        let tile = (IM2COL_BYTES / 4 / n.max(1)).min(60);
        if g.group != 1 || n == 0 || ic == 0 || filter.len() != ic * n || tile == 0 {
            return None;
        }
        let mut rows = vec![0f32; n * ic];
        for c in 0..ic {
            for o in 0..oc {
                for t in 0..kh * kw {
                    rows[(t * oc + o) * ic + c] = filter[(c * oc + o) * kh * kw + t];
                }
            }
        }
        let open = (f32::NEG_INFINITY, f32::INFINITY);
        Some(SDeconv {
            g: *g,
            gemm: SGemm::pack(isa.nr, &rows, n, ic, None, open),
            run: isa.run,
            bias: bias.map_or_else(|| vec![0.0; oc], <[f32]>::to_vec),
            tile,
        })
    }

    pub fn exec(&self, input: &[f32], output: &mut [f32]) {
        let g = &self.g;
        let [_, ih, iw, ic] = g.in_shape;
        let [_, oh, ow, oc] = g.out_shape;
        let (kh, kw, n) = (g.kernel[0], g.kernel[1], self.gemm.n);
        for px in output.chunks_exact_mut(oc) {
            px.copy_from_slice(&self.bias);
        }
        let mut buf = [0f32; IM2COL_BYTES / 4];
        let pixels = input.len() / ic;
        let mut p = 0;
        while p < pixels {
            let t = self.tile.min(pixels - p);
            let cols = &mut buf[..t * n];
            (self.run)(&self.gemm, &input[p * ic..(p + t) * ic], ic, t, cols, n);
            for (q, foot) in cols.chunks_exact(n).enumerate() {
                let (b, y, x) = ((p + q) / (ih * iw), (p + q) / iw % ih, (p + q) % iw);
                for ky in 0..kh {
                    let Some(oy) = (y * g.stride[0] + ky * g.dilation[0])
                        .checked_sub(g.pad[0])
                        .filter(|&v| v < oh)
                    else {
                        continue;
                    };
                    for kx in 0..kw {
                        let Some(ox) = (x * g.stride[1] + kx * g.dilation[1])
                            .checked_sub(g.pad[1])
                            .filter(|&v| v < ow)
                        else {
                            continue;
                        };
                        let dst = &mut output[((b * oh + oy) * ow + ox) * oc..][..oc];
                        let src = &foot[(ky * kw + kx) * oc..][..oc];
                        for (d, s) in dst.iter_mut().zip(src) {
                            *d += *s;
                        }
                    }
                }
            }
            p += t;
        }
    }
}

/// Output bytes a post-op pass covers at a time: a block the kernel has
/// just written, still in L1/L2.
const POST_BYTES: usize = 32 * 1024;

/// An element-wise f32 function fused after a convolution (the converter
/// fuses a swish or hard swish that alone reads a float conv's output):
/// applied block by block as the driver finishes them, so the output makes
/// one trip through memory instead of three. The values are the separate
/// op's, bit for bit: the same function on the same inputs.
#[derive(Debug, Clone, Copy)]
pub struct Post {
    pub f: super::table::UnaryF32Fn,
}

impl Post {
    /// Applies the function in place, through a stack copy of each chunk.
    pub fn apply(&self, v: &mut [f32]) {
        let mut tmp = [0f32; 1024];
        for chunk in v.chunks_mut(tmp.len()) {
            let t = &mut tmp[..chunk.len()];
            t.copy_from_slice(chunk);
            (self.f)(t, chunk);
        }
    }
}
