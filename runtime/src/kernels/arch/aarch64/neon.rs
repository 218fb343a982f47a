//! NEON int8 GEMM micro-kernels on the `[n/16][k/4][16][4]` packing of
//! `kernels::pack` (activations signed, so `x_bias = 0`).
//!
//! Requantization: `vqrdmulhq_s32` is exactly gemmlowp's
//! `SaturatingRoundingDoublingHighMul`; `RoundingDivideByPOT` is a rounding
//! shift (`vrshlq_s32`, which rounds half up) of the value minus one when it is
//! negative and the shift is non-zero (turning "half up" into "half away from
//! zero"), as TFLite's own NEON kernels do.

use core::arch::aarch64::*;

use core::ops::Range;

use crate::kernels::pack::{DwOut, QDw, QGemm, Runs, SDw, SGemm};
use crate::kernels::reference::elementwise::{AddI8Params, FloatAddI8Params};

/// TFLite's `MultiplyByQuantizedMultiplier` on 4 lanes (see the module
/// note), or with `fs` non-null ONNX Runtime's float requantization
/// (`crate::quant::Requant::apply`: f32 product, clamped to ±2^22, rounded
/// half to even by `vcvtnq`), then the output zero-point and the clamp `[lo, hi]`.
#[inline]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "neon")]
unsafe fn requant_lanes(
    acc: int32x4_t,
    mult: *const i32,
    ls: *const i32,
    rs: *const i32,
    fs: *const f32,
    zp: i32,
    lo: i32,
    hi: i32,
) -> int32x4_t {
    unsafe {
        let r = if fs.is_null() {
            let (mult, ls, rs) = (vld1q_s32(mult), vld1q_s32(ls), vld1q_s32(rs));
            let positive = vreinterpretq_s32_u32(vcgtq_s32(rs, vdupq_n_s32(0)));
            mul_rdbpot(vshlq_s32(acc, ls), mult, vnegq_s32(rs), positive)
        } else {
            let lim = vdupq_n_f32((1 << 22) as f32);
            let v = vmulq_f32(vcvtq_f32_s32(acc), vld1q_f32(fs));
            vcvtnq_s32_f32(vminq_f32(vmaxq_f32(v, vnegq_f32(lim)), lim))
        };
        let r = vaddq_s32(r, vdupq_n_s32(zp));
        vminq_s32(vmaxq_s32(r, vdupq_n_s32(lo)), vdupq_n_s32(hi))
    }
}

/// `fscale[c..]`, or null when the kernel requantizes in fixed point.
#[inline]
fn float_scales_at(fscale: &[f32], c: usize) -> *const f32 {
    if fscale.is_empty() {
        core::ptr::null()
    } else {
        fscale[c..].as_ptr()
    }
}

/// Adds the bias of channels `c..c+4`, requantizes and clamps.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn requant4(p: &QGemm, acc: int32x4_t, c: usize) -> int32x4_t {
    unsafe {
        let acc = vaddq_s32(acc, vld1q_s32(p.bias.as_ptr().add(c)));
        requant_lanes(
            acc,
            p.mult.as_ptr().add(c),
            p.lshift.as_ptr().add(c),
            p.rshift.as_ptr().add(c),
            float_scales_at(&p.fscale, c),
            p.out_zp,
            p.act_min,
            p.act_max,
        )
    }
}

/// Narrows 16 clamped i32 values to i8 and stores the first `n` (≤ 16).
#[inline]
#[target_feature(enable = "neon")]
unsafe fn store16(dst: *mut i8, v: [int32x4_t; 4], n: usize) {
    unsafe {
        let lo = vcombine_s16(vmovn_s32(v[0]), vmovn_s32(v[1]));
        let hi = vcombine_s16(vmovn_s32(v[2]), vmovn_s32(v[3]));
        let b = vcombine_s8(vmovn_s16(lo), vmovn_s16(hi));
        if n >= 16 {
            vst1q_s8(dst, b);
        } else {
            let mut tmp = [0i8; 16];
            vst1q_s8(tmp.as_mut_ptr(), b);
            core::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, n);
        }
    }
}

/// The 4 activation bytes of group `g` of a row as one i32 (zero-filled
/// beyond `k`; the packed weights are zero there).
#[inline]
unsafe fn group(a: *const i8, g: usize, k: usize) -> i32 {
    unsafe {
        if 4 * g + 4 <= k {
            (a.add(4 * g) as *const i32).read_unaligned()
        } else {
            let mut b = [0u8; 4];
            core::ptr::copy_nonoverlapping(a.add(4 * g) as *const u8, b.as_mut_ptr(), k - 4 * g);
            i32::from_le_bytes(b)
        }
    }
}

/// `R` rows × one 16-channel panel with SMULL/SMLAL2 + SADALP.
#[target_feature(enable = "neon")]
unsafe fn neon_tile<const R: usize>(
    p: &QGemm,
    a: *const i8,
    a_stride: usize,
    panel: usize,
    out: *mut i8,
    out_stride: usize,
) {
    unsafe {
        let groups = p.kp / 4;
        let w = p.w.as_ptr().add(panel * p.kp * 16);
        // acc[r][v] holds channels 4v..4v+4 as pairs split over two lanes each
        // (lo: channels 4v, 4v+1; hi: 4v+2, 4v+3), summed at the end.
        let mut acc = [[vdupq_n_s32(0); 8]; R];
        for g in 0..groups {
            let wg = w.add(g * 64);
            let wv = [
                vld1q_s8(wg),
                vld1q_s8(wg.add(16)),
                vld1q_s8(wg.add(32)),
                vld1q_s8(wg.add(48)),
            ];
            for (r, row) in acc.iter_mut().enumerate() {
                let x = vreinterpretq_s8_s32(vdupq_n_s32(group(a.add(r * a_stride), g, p.k)));
                for v in 0..4 {
                    let lo = vmull_s8(vget_low_s8(wv[v]), vget_low_s8(x));
                    let hi = vmull_high_s8(wv[v], x);
                    row[2 * v] = vpadalq_s16(row[2 * v], lo);
                    row[2 * v + 1] = vpadalq_s16(row[2 * v + 1], hi);
                }
            }
        }
        let c0 = panel * 16;
        let n = p.n - c0;
        for (r, row) in acc.iter().enumerate() {
            let mut v = [vdupq_n_s32(0); 4];
            for (j, dst) in v.iter_mut().enumerate() {
                // lanes: [c0 k01, c0 k23, c1 k01, c1 k23] + [c2 .., c3 ..] → [c0, c1, c2, c3]
                let sum = vpaddq_s32(row[2 * j], row[2 * j + 1]);
                *dst = requant4(p, sum, c0 + 4 * j);
            }
            store16(out.add(r * out_stride + c0), v, n);
        }
    }
}

#[target_feature(enable = "neon")]
unsafe fn neon_qgemm(
    p: &QGemm,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
) {
    unsafe {
        let (a, o) = (a.as_ptr(), out.as_mut_ptr());
        let panels = p.np / 16;
        let mut r = 0;
        while r + 2 <= m {
            for panel in 0..panels {
                neon_tile::<2>(
                    p,
                    a.add(r * a_stride),
                    a_stride,
                    panel,
                    o.add(r * out_stride),
                    out_stride,
                );
            }
            r += 2;
        }
        if r < m {
            for panel in 0..panels {
                neon_tile::<1>(
                    p,
                    a.add(r * a_stride),
                    a_stride,
                    panel,
                    o.add(r * out_stride),
                    out_stride,
                );
            }
        }
    }
}

/// `acc += sdot(w, x)`: four 4-way int8 dot products into 4 i32 lanes.
#[inline]
#[target_feature(enable = "neon,dotprod")]
unsafe fn sdot(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: SDOT only reads and writes the named vector registers.
    unsafe {
        core::arch::asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {x:v}.16b",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            x = in(vreg) x,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// `R` rows × one 16-channel panel with SDOT.
#[target_feature(enable = "neon,dotprod")]
unsafe fn dot_tile<const R: usize>(
    p: &QGemm,
    a: *const i8,
    a_stride: usize,
    panel: usize,
    out: *mut i8,
    out_stride: usize,
) {
    unsafe {
        let groups = p.kp / 4;
        let w = p.w.as_ptr().add(panel * p.kp * 16);
        let mut acc = [[vdupq_n_s32(0); 4]; R];
        for g in 0..groups {
            let wg = w.add(g * 64);
            let wv = [
                vld1q_s8(wg),
                vld1q_s8(wg.add(16)),
                vld1q_s8(wg.add(32)),
                vld1q_s8(wg.add(48)),
            ];
            for (r, row) in acc.iter_mut().enumerate() {
                let x = vreinterpretq_s8_s32(vdupq_n_s32(group(a.add(r * a_stride), g, p.k)));
                for v in 0..4 {
                    row[v] = sdot(row[v], wv[v], x);
                }
            }
        }
        let c0 = panel * 16;
        let n = p.n - c0;
        for (r, row) in acc.iter().enumerate() {
            let mut v = [vdupq_n_s32(0); 4];
            for (j, dst) in v.iter_mut().enumerate() {
                *dst = requant4(p, row[j], c0 + 4 * j);
            }
            store16(out.add(r * out_stride + c0), v, n);
        }
    }
}

#[target_feature(enable = "neon,dotprod")]
unsafe fn dot_qgemm(
    p: &QGemm,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
) {
    unsafe {
        let (a, o) = (a.as_ptr(), out.as_mut_ptr());
        let panels = p.np / 16;
        let mut r = 0;
        while r + 4 <= m {
            for panel in 0..panels {
                dot_tile::<4>(
                    p,
                    a.add(r * a_stride),
                    a_stride,
                    panel,
                    o.add(r * out_stride),
                    out_stride,
                );
            }
            r += 4;
        }
        while r < m {
            for panel in 0..panels {
                dot_tile::<1>(
                    p,
                    a.add(r * a_stride),
                    a_stride,
                    panel,
                    o.add(r * out_stride),
                    out_stride,
                );
            }
            r += 1;
        }
    }
}

/// `acc += smmla(x, w)`: the 2x2 i32 block `[x0·w0, x0·w1, x1·w0, x1·w1]`
/// of two rows (`x`: row 0's 8 values, then row 1's) against two channels
/// (`w`: channel 0's 8 weights, then channel 1's).
#[inline]
#[target_feature(enable = "neon,i8mm")]
unsafe fn smmla(acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: SMMLA only reads and writes the named vector registers.
    unsafe {
        core::arch::asm!(
            "smmla {acc:v}.4s, {x:v}.16b, {w:v}.16b",
            acc = inout(vreg) acc,
            x = in(vreg) x,
            w = in(vreg) w,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// The 8 activations of group `g` (k values `8g..8g + 8`) of a row, zero
/// beyond `k` (the packed weights are zero there too).
#[inline]
unsafe fn group8(a: *const i8, g: usize, k: usize) -> int8x8_t {
    unsafe {
        if 8 * g + 8 <= k {
            vld1_s8(a.add(8 * g))
        } else {
            let mut b = [0i8; 8];
            core::ptr::copy_nonoverlapping(a.add(8 * g), b.as_mut_ptr(), k - 8 * g);
            vld1_s8(b.as_ptr())
        }
    }
}

/// `2 P` rows (`rows` of them real, the others zero) × one 16-channel panel
/// with SMMLA, on the `kr = 8` packing: each 16-byte weight load is a pair
/// of channels × 8 k, each activation vector a pair of rows × 8 k, and one
/// SMMLA does their 32 MACs.
#[target_feature(enable = "neon,i8mm")]
unsafe fn mmla_tile<const P: usize>(
    p: &QGemm,
    a: *const i8,
    a_stride: usize,
    rows: usize,
    panel: usize,
    out: *mut i8,
    out_stride: usize,
) {
    unsafe {
        let groups = p.kp / 8;
        let w = p.w.as_ptr().add(panel * p.kp * 16);
        // acc[q][j]: rows 2q, 2q + 1 × channels 2j, 2j + 1.
        let mut acc = [[vdupq_n_s32(0); 8]; P];
        let zero = vdup_n_s8(0);
        for g in 0..groups {
            let wg = w.add(g * 128);
            let mut wv = [vdupq_n_s8(0); 8];
            for (j, v) in wv.iter_mut().enumerate() {
                *v = vld1q_s8(wg.add(16 * j));
            }
            for (q, pair) in acc.iter_mut().enumerate() {
                let row = |r: usize| {
                    if r < rows {
                        group8(a.add(r * a_stride), g, p.k)
                    } else {
                        zero
                    }
                };
                let x = vcombine_s8(row(2 * q), row(2 * q + 1));
                for (j, v) in pair.iter_mut().enumerate() {
                    *v = smmla(*v, x, wv[j]);
                }
            }
        }
        let c0 = panel * 16;
        let n = p.n - c0;
        for (q, pair) in acc.iter().enumerate() {
            // Channels 4j..4j + 4 of the pair's first row are the low halves
            // of blocks 2j and 2j + 1, of its second row the high halves.
            let mut top = [vdupq_n_s32(0); 4];
            let mut bottom = [vdupq_n_s32(0); 4];
            for j in 0..4 {
                let (l, h) = (
                    vreinterpretq_s64_s32(pair[2 * j]),
                    vreinterpretq_s64_s32(pair[2 * j + 1]),
                );
                top[j] = requant4(p, vreinterpretq_s32_s64(vzip1q_s64(l, h)), c0 + 4 * j);
                bottom[j] = requant4(p, vreinterpretq_s32_s64(vzip2q_s64(l, h)), c0 + 4 * j);
            }
            if 2 * q < rows {
                store16(out.add(2 * q * out_stride + c0), top, n);
            }
            if 2 * q + 1 < rows {
                store16(out.add((2 * q + 1) * out_stride + c0), bottom, n);
            }
        }
    }
}

#[target_feature(enable = "neon,i8mm")]
unsafe fn mmla_qgemm(
    p: &QGemm,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
) {
    unsafe {
        let (a, o) = (a.as_ptr(), out.as_mut_ptr());
        let panels = p.np / 16;
        let mut r = 0;
        while r < m {
            let rows = (m - r).min(4);
            for panel in 0..panels {
                let (a, o) = (a.add(r * a_stride), o.add(r * out_stride));
                if rows > 2 {
                    mmla_tile::<2>(p, a, a_stride, rows, panel, o, out_stride);
                } else {
                    mmla_tile::<1>(p, a, a_stride, rows, panel, o, out_stride);
                }
            }
            r += rows;
        }
    }
}

/// f32 tile: `R` rows × one 16-channel panel (`[np/16][k][16]` packing):
/// per k, one 64-byte weight load and `R` × 4 `fmla` by a broadcast
/// activation. Each row's `k` values lie in `runs` when `WINDOW`, else in
/// one run of `k` (a constant: the plain GEMM keeps a single loop).
#[inline]
#[target_feature(enable = "neon")]
unsafe fn sgemm_tile<const R: usize, const WINDOW: bool>(
    p: &SGemm,
    a: *const f32,
    a_stride: usize,
    runs: Runs,
    panel: usize,
    out: *mut f32,
    out_stride: usize,
) {
    unsafe {
        let w = p.w.as_ptr().add(panel * p.k * 16);
        let mut acc = [[vdupq_n_f32(0.0); 4]; R];
        let runs = if WINDOW { runs } else { Runs::contiguous(p.k) };
        for run in 0..runs.runs {
            for col in 0..runs.cols {
                let a = a.add(run * runs.run_stride + col * runs.col_stride);
                let w = w.add((run * runs.cols + col) * runs.run * 16);
                for kk in 0..runs.run {
                    let wk = w.add(kk * 16);
                    let wv = [
                        vld1q_f32(wk),
                        vld1q_f32(wk.add(4)),
                        vld1q_f32(wk.add(8)),
                        vld1q_f32(wk.add(12)),
                    ];
                    for (r, row) in acc.iter_mut().enumerate() {
                        let x = *a.add(r * a_stride + kk);
                        for (v, wj) in row.iter_mut().zip(&wv) {
                            *v = vfmaq_n_f32(*v, *wj, x);
                        }
                    }
                }
            }
        }
        let c0 = panel * 16;
        let n = (p.n - c0).min(16);
        let (lo, hi) = (vdupq_n_f32(p.act.0), vdupq_n_f32(p.act.1));
        for (r, row) in acc.iter().enumerate() {
            let mut v = [0f32; 16];
            for (j, a) in row.iter().enumerate() {
                let b = vld1q_f32(p.bias.as_ptr().add(c0 + 4 * j));
                vst1q_f32(
                    v.as_mut_ptr().add(4 * j),
                    vminq_f32(vmaxq_f32(vaddq_f32(*a, b), lo), hi),
                );
            }
            core::ptr::copy_nonoverlapping(v.as_ptr(), out.add(r * out_stride + c0), n);
        }
    }
}

#[target_feature(enable = "neon")]
unsafe fn sgemm<const WINDOW: bool>(
    p: &SGemm,
    a: &[f32],
    a_stride: usize,
    runs: Runs,
    m: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    unsafe {
        let (a, o) = (a.as_ptr(), out.as_mut_ptr());
        let panels = p.np / 16;
        let mut r = 0;
        while r < m {
            // 6 rows: 24 accumulators, 4 weight vectors and the broadcast
            // fill the 32 registers; 12-pixel thread chunks hold two tiles.
            let rows = (m - r).min(6);
            let (a, o) = (a.add(r * a_stride), o.add(r * out_stride));
            for panel in 0..panels {
                match rows {
                    6 => sgemm_tile::<6, WINDOW>(p, a, a_stride, runs, panel, o, out_stride),
                    5 => sgemm_tile::<5, WINDOW>(p, a, a_stride, runs, panel, o, out_stride),
                    4 => sgemm_tile::<4, WINDOW>(p, a, a_stride, runs, panel, o, out_stride),
                    3 => sgemm_tile::<3, WINDOW>(p, a, a_stride, runs, panel, o, out_stride),
                    2 => sgemm_tile::<2, WINDOW>(p, a, a_stride, runs, panel, o, out_stride),
                    _ => sgemm_tile::<1, WINDOW>(p, a, a_stride, runs, panel, o, out_stride),
                }
            }
            r += rows;
        }
    }
}

/// Taps `k` of a window at output position `o` that land inside `0..size`.
#[inline]
fn valid_taps(
    o: usize,
    stride: usize,
    dil: usize,
    pad: usize,
    k: usize,
    size: usize,
) -> Range<usize> {
    let base = o * stride;
    let lo = if base >= pad {
        0
    } else {
        (pad - base).div_ceil(dil)
    };
    let hi = if size + pad <= base {
        0
    } else {
        (size + pad - base).div_ceil(dil)
    };
    lo.min(k)..hi.min(k).max(lo.min(k))
}

/// int8 depthwise over a part of the output: per output pixel, each tap's
/// input pixel, or the zero-point row `pad` where the tap is outside the
/// image (which adds nothing to sums that start from `bias_full`, where the
/// input offset is folded in), so every tap takes one path; then 16
/// channels a step: one load, two `sxtl`, two weight loads and four
/// `smlal`/`smlal2` per tap; then 8 a step, and fewer than 8 through
/// stack copies of the inputs.
#[target_feature(enable = "neon")]
unsafe fn qdw(p: &QDw, input: &[i8], out: DwOut<i8>) {
    unsafe {
        let [_, ih, iw, c] = p.shape.shapes[0];
        let [_, kh, kw, _] = p.shape.shapes[1];
        let [_, oh, ow, _] = p.shape.shapes[2];
        let g = &p.shape.g;
        let taps = kh * kw;
        debug_assert!(taps <= crate::kernels::pack::MAX_DW_TAPS && p.pad.len() >= c);
        let (inp, outp, w) = (input.as_ptr(), out.ptr(), p.w16.as_ptr());
        let (rows, chans) = (out.rows(), out.chans());
        let first = rows.start;
        let mut src = [p.pad.as_ptr(); crate::kernels::pack::MAX_DW_TAPS];
        for row in rows {
            let (b, oy) = (row / oh, row % oh);
            for ox in 0..ow {
                for ty in 0..kh {
                    let iy = (oy * g.stride_h + ty * g.dilation_h) as isize - g.pad_top as isize;
                    for tx in 0..kw {
                        let ix =
                            (ox * g.stride_w + tx * g.dilation_w) as isize - g.pad_left as isize;
                        src[ty * kw + tx] =
                            if (0..ih as isize).contains(&iy) && (0..iw as isize).contains(&ix) {
                                inp.add(((b * ih + iy as usize) * iw + ix as usize) * c)
                            } else {
                                p.pad.as_ptr()
                            };
                    }
                }
                let out_px = outp.add(((row - first) * ow + ox) * c);
                let r = |acc, c| {
                    requant_lanes(
                        acc,
                        p.mult.as_ptr().add(c),
                        p.lshift.as_ptr().add(c),
                        p.rshift.as_ptr().add(c),
                        float_scales_at(&p.fscale, c),
                        p.out_zp,
                        p.act_min,
                        p.act_max,
                    )
                };
                let mut c0 = chans.start;
                // 16 channels a step.
                while chans.end - c0 >= 16 {
                    let bias = p.bias_full.as_ptr().add(c0);
                    let mut acc = [
                        vld1q_s32(bias),
                        vld1q_s32(bias.add(4)),
                        vld1q_s32(bias.add(8)),
                        vld1q_s32(bias.add(12)),
                    ];
                    for (t, &x) in src[..taps].iter().enumerate() {
                        let xv = vld1q_s8(x.add(c0));
                        let (xl, xh) = (vmovl_s8(vget_low_s8(xv)), vmovl_high_s8(xv));
                        let wt = w.add(t * p.cp + c0);
                        let (w0, w1) = (vld1q_s16(wt), vld1q_s16(wt.add(8)));
                        acc[0] = vmlal_s16(acc[0], vget_low_s16(xl), vget_low_s16(w0));
                        acc[1] = vmlal_high_s16(acc[1], xl, w0);
                        acc[2] = vmlal_s16(acc[2], vget_low_s16(xh), vget_low_s16(w1));
                        acc[3] = vmlal_high_s16(acc[3], xh, w1);
                    }
                    let lo = vcombine_s16(vmovn_s32(r(acc[0], c0)), vmovn_s32(r(acc[1], c0 + 4)));
                    let hi =
                        vcombine_s16(vmovn_s32(r(acc[2], c0 + 8)), vmovn_s32(r(acc[3], c0 + 12)));
                    vst1q_s8(out_px.add(c0), vcombine_s8(vmovn_s16(lo), vmovn_s16(hi)));
                    c0 += 16;
                }
                // Then 8 (BlazeFace's 24, 40, 56... channels); fewer than 8
                // through stack copies.
                while c0 < chans.end {
                    let n = (chans.end - c0).min(8);
                    let bias = p.bias_full.as_ptr().add(c0);
                    let mut acc = [vld1q_s32(bias), vld1q_s32(bias.add(4))];
                    for (t, &x) in src[..taps].iter().enumerate() {
                        let xv = if n == 8 {
                            vld1_s8(x.add(c0))
                        } else {
                            let mut tmp = [0i8; 8];
                            core::ptr::copy_nonoverlapping(x.add(c0), tmp.as_mut_ptr(), n);
                            vld1_s8(tmp.as_ptr())
                        };
                        let xl = vmovl_s8(xv);
                        let w0 = vld1q_s16(w.add(t * p.cp + c0));
                        acc[0] = vmlal_s16(acc[0], vget_low_s16(xl), vget_low_s16(w0));
                        acc[1] = vmlal_high_s16(acc[1], xl, w0);
                    }
                    let v = vcombine_s16(vmovn_s32(r(acc[0], c0)), vmovn_s32(r(acc[1], c0 + 4)));
                    let v = vmovn_s16(v);
                    if n == 8 {
                        vst1_s8(out_px.add(c0), v);
                    } else {
                        let mut t = [0i8; 8];
                        vst1_s8(t.as_mut_ptr(), v);
                        core::ptr::copy_nonoverlapping(t.as_ptr(), out_px.add(c0), n);
                    }
                    c0 += 8;
                }
            }
        }
    }
}

/// f32 depthwise over output rows: per output pixel, 16 channels at a time
/// (4 × `fmla` per valid tap, in the reference's tap order), then the bias
/// and the clamp; a last partial block goes through a zero-padded copy.
#[target_feature(enable = "neon")]
unsafe fn sdw(p: &SDw, input: &[f32], out: DwOut<f32>) {
    unsafe {
        let [_, ih, iw, c] = p.shape.shapes[0];
        let [_, kh, kw, _] = p.shape.shapes[1];
        let [_, oh, ow, _] = p.shape.shapes[2];
        let g = &p.shape.g;
        let (inp, outp, w) = (input.as_ptr(), out.ptr(), p.w.as_ptr());
        let (lo, hi) = (vdupq_n_f32(p.act.0), vdupq_n_f32(p.act.1));
        let (rows, chans) = (out.rows(), out.chans());
        let first = rows.start;
        debug_assert!(p.cp >= c.div_ceil(16) * 16);
        for row in rows {
            let (b, oy) = (row / oh, row % oh);
            let ky = valid_taps(oy, g.stride_h, g.dilation_h, g.pad_top, kh, ih);
            for ox in 0..ow {
                let kx = valid_taps(ox, g.stride_w, g.dilation_w, g.pad_left, kw, iw);
                let out_px = outp.add(((row - first) * ow + ox) * c);
                let mut c0 = chans.start;
                while c0 < chans.end {
                    let n = (chans.end - c0).min(16);
                    let mut acc = [vdupq_n_f32(0.0); 4];
                    for ty in ky.clone() {
                        let iy = oy * g.stride_h + ty * g.dilation_h - g.pad_top;
                        for tx in kx.clone() {
                            let ix = ox * g.stride_w + tx * g.dilation_w - g.pad_left;
                            let src = inp.add(((b * ih + iy) * iw + ix) * c + c0);
                            let mut tmp = [0f32; 16];
                            let x = if n == 16 {
                                src
                            } else {
                                core::ptr::copy_nonoverlapping(src, tmp.as_mut_ptr(), n);
                                tmp.as_ptr()
                            };
                            let wt = w.add((ty * kw + tx) * p.cp + c0);
                            for (j, a) in acc.iter_mut().enumerate() {
                                *a = vfmaq_f32(
                                    *a,
                                    vld1q_f32(x.add(4 * j)),
                                    vld1q_f32(wt.add(4 * j)),
                                );
                            }
                        }
                    }
                    let mut v = [0f32; 16];
                    for (j, a) in acc.iter().enumerate() {
                        let bias = vld1q_f32(p.bias.as_ptr().add(c0 + 4 * j));
                        let y = vminq_f32(vmaxq_f32(vaddq_f32(*a, bias), lo), hi);
                        vst1q_f32(v.as_mut_ptr().add(4 * j), y);
                    }
                    core::ptr::copy_nonoverlapping(v.as_ptr(), out_px.add(c0), n);
                    c0 += 16;
                }
            }
        }
    }
}

/// Safe entry: NEON is part of the aarch64 baseline.
pub(super) fn neon_sdw_f32(p: &SDw, input: &[f32], out: DwOut<f32>) {
    out.check(&p.shape, input);
    // SAFETY: NEON is always present on aarch64; `DwOut` points at the
    // part's rows of an output of `p`'s shape.
    unsafe { sdw(p, input, out) }
}

/// Safe entry: NEON is part of the aarch64 baseline.
/// Same-shape int8 ADD with ONNX Runtime's rounding, 8 lanes at a time:
/// `FloatAddI8Params::apply` with `vfmaq_f32` (a fused multiply-add) and
/// `vcvtnq_s32_f32` (round half to even).
#[target_feature(enable = "neon")]
unsafe fn qadd_float(p: &FloatAddI8Params, a: &[i8], b: &[i8], out: &mut [i8]) {
    unsafe {
        debug_assert!(a.len() == out.len() && b.len() == out.len());
        let off = vdupq_n_s32(p.code_offset);
        let (ra, rb, k) = (vdupq_n_f32(p.ra), vdupq_n_f32(p.rb), vdupq_n_f32(p.k));
        let lim = vdupq_n_f32((1 << 22) as f32);
        let (lo, hi) = (vdupq_n_s32(p.act_min), vdupq_n_s32(p.act_max));
        let half = |x: int16x8_t, y: int16x8_t, high: bool| {
            let widen = |v: int16x8_t| {
                let w = if high {
                    vmovl_high_s16(v)
                } else {
                    vmovl_s16(vget_low_s16(v))
                };
                vcvtq_f32_s32(vaddq_s32(w, off))
            };
            let t = vfmaq_f32(vfmaq_f32(k, widen(y), rb), widen(x), ra);
            let t = vminq_f32(vmaxq_f32(t, vnegq_f32(lim)), lim);
            let v = vsubq_s32(vcvtnq_s32_f32(t), off);
            vminq_s32(vmaxq_s32(v, lo), hi)
        };
        let n = out.len();
        let mut i = 0;
        while i < n {
            let m = (n - i).min(8);
            let (mut ta, mut tb) = ([0i8; 8], [0i8; 8]);
            ta[..m].copy_from_slice(&a[i..i + m]);
            tb[..m].copy_from_slice(&b[i..i + m]);
            let (x, y) = (
                vmovl_s8(vld1_s8(ta.as_ptr())),
                vmovl_s8(vld1_s8(tb.as_ptr())),
            );
            let v = vcombine_s16(vmovn_s32(half(x, y, false)), vmovn_s32(half(x, y, true)));
            let mut t = [0i8; 8];
            vst1_s8(t.as_mut_ptr(), vmovn_s16(v));
            out[i..i + m].copy_from_slice(&t[..m]);
            i += 8;
        }
    }
}

/// gemmlowp's `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, m), e)`
/// on 4 lanes: `vqrdmulh` is the high multiply to the bit; `vrshl` by `-e`
/// rounds half up, so negative lanes are first moved down by one where
/// `e > 0`, which makes it round half away from zero as the reference does.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn mul_rdbpot(x: int32x4_t, m: int32x4_t, neg_e: int32x4_t, e_pos: int32x4_t) -> int32x4_t {
    let h = vqrdmulhq_s32(x, m);
    let fixup = vandq_s32(vshrq_n_s32::<31>(h), e_pos);
    vrshlq_s32(vqaddq_s32(h, fixup), neg_e)
}

/// Same-shape int8 ADD/SUB, 16 lanes at a time: `AddI8Params::apply`
/// (TFLite's `AddFunc`: both inputs offset and shifted left by 20, each
/// rescaled, summed, the sum rescaled) in 32-bit lanes; the tail through
/// `apply` itself.
#[target_feature(enable = "neon")]
unsafe fn qadd(p: &AddI8Params, a: &[i8], b: &[i8], out: &mut [i8]) {
    unsafe {
        debug_assert!(a.len() == out.len() && b.len() == out.len());
        let n = out.len().min(a.len()).min(b.len());
        if !p.fits_i32_lanes() {
            for j in 0..n {
                out[j] = p.apply(a[j], b[j]);
            }
            return;
        }
        // Per requantization: multiplier, -exponent, and an all-ones mask where
        // the exponent is positive (for the rounding fixup).
        let rq = |m: i32, shift: i32| {
            let e = -shift;
            (
                vdupq_n_s32(m),
                vdupq_n_s32(-e),
                vdupq_n_s32(if e > 0 { -1 } else { 0 }),
            )
        };
        let (m1, n1, p1) = rq(p.input1_multiplier, p.input1_shift);
        let (m2, n2, p2) = rq(p.input2_multiplier, p.input2_shift);
        let (mo, no, po) = rq(p.output_multiplier, p.output_shift);
        let (off1, off2) = (
            vdupq_n_s16(p.input1_offset as i16),
            vdupq_n_s16(p.input2_offset as i16),
        );
        let ls = vdupq_n_s32(p.left_shift);
        let zp = vdupq_n_s32(p.output_offset);
        let (lo, hi) = (vdupq_n_s32(p.act_min), vdupq_n_s32(p.act_max));
        // 4 lanes of `x + offset` (i16, |v| <= 255) widened and shifted left.
        let lanes = |v: int16x8_t, high: bool| {
            let w = if high {
                vmovl_high_s16(v)
            } else {
                vmovl_s16(vget_low_s16(v))
            };
            vshlq_s32(w, ls)
        };
        let quarter = |x: int16x8_t, y: int16x8_t, high: bool| {
            let s1 = mul_rdbpot(lanes(x, high), m1, n1, p1);
            let s2 = mul_rdbpot(lanes(y, high), m2, n2, p2);
            let sum = if p.subtract {
                vsubq_s32(s1, s2)
            } else {
                vaddq_s32(s1, s2)
            };
            let r = vaddq_s32(mul_rdbpot(sum, mo, no, po), zp);
            vminq_s32(vmaxq_s32(r, lo), hi)
        };
        let mut i = 0;
        while i + 16 <= n {
            let (va, vb) = (vld1q_s8(a.as_ptr().add(i)), vld1q_s8(b.as_ptr().add(i)));
            let half = |xa: int8x8_t, xb: int8x8_t| {
                let x = vaddq_s16(vmovl_s8(xa), off1);
                let y = vaddq_s16(vmovl_s8(xb), off2);
                // In the activation range, so the narrowing never saturates.
                vcombine_s16(
                    vmovn_s32(quarter(x, y, false)),
                    vmovn_s32(quarter(x, y, true)),
                )
            };
            let lo8 = half(vget_low_s8(va), vget_low_s8(vb));
            let hi8 = half(vget_high_s8(va), vget_high_s8(vb));
            vst1q_s8(
                out.as_mut_ptr().add(i),
                vcombine_s8(vmovn_s16(lo8), vmovn_s16(hi8)),
            );
            i += 16;
        }
        for j in i..n {
            out[j] = p.apply(a[j], b[j]);
        }
    }
}

/// Raw int8 dot products for FULLY_CONNECTED (`x_bias` 0): per output, 16
/// bytes a step multiplied into i16 (`smull`/`smull2`; |w x| <= 2^14) and
/// summed pairwise into four i32 lanes (`sadalp`), wrapping like the
/// reference; the tail in scalar code.
#[target_feature(enable = "neon")]
unsafe fn fc_dot_i8(w: &[i8], k: usize, x: &[i8], out: &mut [i32]) {
    debug_assert!(w.len() >= out.len() * k && x.len() >= k);
    let whole = k / 16 * 16;
    for (o, dst) in out.iter_mut().enumerate() {
        let row = &w[o * k..(o + 1) * k];
        let mut acc = vdupq_n_s32(0);
        for i in (0..whole).step_by(16) {
            // SAFETY: `i + 16 <= k` bytes of the row and of `x`.
            let (wv, xv) = unsafe { (vld1q_s8(row.as_ptr().add(i)), vld1q_s8(x.as_ptr().add(i))) };
            acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(wv), vget_low_s8(xv)));
            acc = vpadalq_s16(acc, vmull_high_s8(wv, xv));
        }
        let tail = row[whole..]
            .iter()
            .zip(&x[whole..k])
            .fold(0i32, |s, (&a, &b)| s.wrapping_add(a as i32 * b as i32));
        *dst = vaddvq_s32(acc).wrapping_add(tail);
    }
}

/// Safe entry: NEON is part of the aarch64 baseline.
pub(super) fn neon_qdot_i8(w: &[i8], k: usize, x: &[i8], out: &mut [i32]) {
    assert!(
        w.len() >= out.len() * k && x.len() >= k,
        "dot operand sizes"
    );
    // SAFETY: NEON is part of the aarch64 baseline; sizes checked above.
    unsafe { fc_dot_i8(w, k, x, out) }
}

/// f32 dot products for FULLY_CONNECTED: per output, 16 floats a step into
/// four `fmla` accumulators, summed at the end (a reordered sum: within the
/// f32 tolerance of the reference, not bit-identical).
#[target_feature(enable = "neon")]
unsafe fn fc_dot_f32(w: &[f32], k: usize, x: &[f32], out: &mut [f32]) {
    debug_assert!(w.len() >= out.len() * k && x.len() >= k);
    let whole = k / 16 * 16;
    for (o, dst) in out.iter_mut().enumerate() {
        let row = &w[o * k..(o + 1) * k];
        let mut acc = [vdupq_n_f32(0.0); 4];
        for i in (0..whole).step_by(16) {
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: `i + 16 <= k` values of the row and of `x`.
                let (wv, xv) = unsafe {
                    (
                        vld1q_f32(row.as_ptr().add(i + 4 * j)),
                        vld1q_f32(x.as_ptr().add(i + 4 * j)),
                    )
                };
                *a = vfmaq_f32(*a, wv, xv);
            }
        }
        let sum = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
        let tail: f32 = row[whole..]
            .iter()
            .zip(&x[whole..k])
            .map(|(a, b)| a * b)
            .sum();
        *dst = vaddvq_f32(sum) + tail;
    }
}

/// Safe entry: NEON is part of the aarch64 baseline.
pub(super) fn neon_sdot_f32(w: &[f32], k: usize, x: &[f32], out: &mut [f32]) {
    assert!(
        w.len() >= out.len() * k && x.len() >= k,
        "dot operand sizes"
    );
    // SAFETY: NEON is part of the aarch64 baseline; sizes checked above.
    unsafe { fc_dot_f32(w, k, x, out) }
}

/// Safe entry: NEON is part of the aarch64 baseline.
pub(super) fn neon_qadd_i8(p: &AddI8Params, a: &[i8], b: &[i8], out: &mut [i8]) {
    // SAFETY: NEON is part of the aarch64 baseline; the loop reads and
    // writes below the shortest slice's length.
    unsafe { qadd(p, a, b, out) }
}

pub(super) fn neon_qadd_float_i8(p: &FloatAddI8Params, a: &[i8], b: &[i8], out: &mut [i8]) {
    // SAFETY: NEON is part of the aarch64 baseline; the slices share a length.
    unsafe { qadd_float(p, a, b, out) }
}

pub(super) fn neon_qdw_i8(p: &QDw, input: &[i8], out: DwOut<i8>) {
    out.check(&p.shape, input);
    // SAFETY: NEON is always present on aarch64; `DwOut` points at the
    // part's rows of an output of `p`'s shape.
    unsafe { qdw(p, input, out) }
}

/// Safe entry: NEON is part of the aarch64 baseline.
pub(super) fn neon_qgemm_i8(
    p: &QGemm,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
) {
    debug_assert!(m == 0 || a.len() >= (m - 1) * a_stride + p.k);
    debug_assert!(m == 0 || out.len() >= (m - 1) * out_stride + p.n);
    // SAFETY: NEON is always present on aarch64; slices checked above (debug) and by the drivers.
    unsafe { neon_qgemm(p, a, a_stride, m, out, out_stride) }
}

/// Safe entry: only put into a table after dotprod was detected.
pub(super) fn dot_qgemm_i8(
    p: &QGemm,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
) {
    debug_assert!(m == 0 || a.len() >= (m - 1) * a_stride + p.k);
    debug_assert!(m == 0 || out.len() >= (m - 1) * out_stride + p.n);
    // SAFETY: `plug_with` installs this only when dotprod is available.
    unsafe { dot_qgemm(p, a, a_stride, m, out, out_stride) }
}

/// Safe entry: only put into a table after i8mm was detected.
pub(super) fn mmla_qgemm_i8(
    p: &QGemm,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
) {
    debug_assert!(m == 0 || a.len() >= (m - 1) * a_stride + p.k);
    debug_assert!(m == 0 || out.len() >= (m - 1) * out_stride + p.n);
    // SAFETY: `plug_with` installs this only when i8mm is available.
    unsafe { mmla_qgemm(p, a, a_stride, m, out, out_stride) }
}

/// Safe entry: NEON is part of the aarch64 baseline.
pub(super) fn neon_sgemm_f32(
    p: &SGemm,
    a: &[f32],
    a_stride: usize,
    m: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    debug_assert!(m == 0 || a.len() >= (m - 1) * a_stride + p.k);
    debug_assert!(m == 0 || out.len() >= (m - 1) * out_stride + p.n);
    // SAFETY: NEON is always present on aarch64; slices checked above (debug) and by the drivers.
    unsafe { sgemm::<false>(p, a, a_stride, Runs::contiguous(p.k), m, out, out_stride) }
}

/// Safe entry of the window GEMM ([`crate::kernels::pack::SGemmWindowFn`]).
pub(super) fn neon_sgemm_window_f32(
    p: &SGemm,
    a: &[f32],
    a_stride: usize,
    runs: Runs,
    m: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    p.assert_window_rows((a, a_stride), runs, m, (out, out_stride));
    // SAFETY: NEON is always present on aarch64; the slices hold what it
    // reads and writes (asserted above).
    unsafe { sgemm::<true>(p, a, a_stride, runs, m, out, out_stride) }
}
