//! AVX-512 kernels: int8 with VNNI (`vpdpbusd`: 64 u8 × s8 MACs per
//! instruction), f32 with 16-lane FMA.
//!
//! Every `unsafe fn` here is `#[target_feature]`; the safe wrappers at the
//! bottom are only put into a kernel table by [`super::plug`] after the CPU
//! reported the features, which is what makes calling them sound.

use core::arch::x86_64::*;
use core::ops::Range;

use crate::kernels::pack::{QDw, QGemm, SDw, SGemm, MAX_DW_TAPS};
use crate::kernels::reference::elementwise::{AddI8Params, FloatAddI8Params};

/// Rows per GEMM tile and 16-channel blocks per tile.
const MR: usize = 6;
const NB: usize = 4;

/// TFLite's `MultiplyByQuantizedMultiplier` on 16 lanes, bit-exact with
/// [`crate::quant::multiply_by_quantized_multiplier`] for multipliers in
/// `[0, 2^31)` (what `quantize_multiplier` produces).
///
/// `SaturatingRoundingDoublingHighMul(a, b)` with `b >= 0` never saturates,
/// and its "nudge, then divide truncating toward zero" equals
/// `(a * b + 2^30) >> 31` with an arithmetic shift for either sign of `a * b`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn requant16(acc: __m512i, mult: __m512i, lshift: __m512i, rshift: __m512i) -> __m512i {
    {
        let x = _mm512_sllv_epi32(acc, lshift);
        let round = _mm512_set1_epi64(1 << 30);
        let even = _mm512_srai_epi64::<31>(_mm512_add_epi64(_mm512_mul_epi32(x, mult), round));
        let odd = _mm512_srai_epi64::<31>(_mm512_add_epi64(
            _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), _mm512_srli_epi64::<32>(mult)),
            round,
        ));
        let high = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64::<32>(odd));
        // RoundingDivideByPOT(high, rshift): round half away from zero.
        let one = _mm512_set1_epi32(1);
        let mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, rshift), one);
        let rem = _mm512_and_si512(high, mask);
        let neg = _mm512_cmplt_epi32_mask(high, _mm512_setzero_si512());
        let thr = _mm512_srli_epi32::<1>(mask);
        let thr = _mm512_mask_add_epi32(thr, neg, thr, one);
        let up = _mm512_cmpgt_epi32_mask(rem, thr);
        let q = _mm512_srav_epi32(high, rshift);
        _mm512_mask_add_epi32(q, up, q, one)
    }
}

/// ONNX Runtime's requantization on 16 lanes, bit-exact with
/// [`crate::quant::Requant::apply`] for a float scale: the accumulator
/// converted to f32, times the scale, clamped to ±2^22, rounded half to even.
#[inline]
#[target_feature(enable = "avx512f")]
fn requant16_float(acc: __m512i, scale: __m512) -> __m512i {
    const RNE: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    let lim = _mm512_set1_ps((1 << 22) as f32);
    let v = _mm512_mul_ps(_mm512_cvt_roundepi32_ps::<RNE>(acc), scale);
    let v = _mm512_min_ps(
        _mm512_max_ps(v, _mm512_sub_ps(_mm512_setzero_ps(), lim)),
        lim,
    );
    _mm512_cvt_roundps_epi32::<RNE>(v)
}

/// Stores the low `n` (≤ 16) bytes of `v`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn store_i8(dst: *mut i8, v: __m128i, n: usize) {
    unsafe {
        if n >= 16 {
            _mm_storeu_si128(dst as *mut __m128i, v);
        } else {
            _mm_mask_storeu_epi8(dst, ((1u32 << n) - 1) as u16, v);
        }
    }
}

/// Loads 16 bytes, or the `m` lanes of a channel tail (zeros elsewhere).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn load16(src: *const i8, m: u16) -> __m128i {
    unsafe {
        if m == 0xFFFF {
            _mm_loadu_si128(src as *const __m128i)
        } else {
            _mm_maskz_loadu_epi8(m, src)
        }
    }
}

/// One tile: `R` rows × `B` 16-channel blocks starting at block `jb`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn qgemm_tile<const R: usize, const B: usize, const FLIPPED: bool>(
    p: &QGemm,
    a: *const i8,
    a_stride: usize,
    jb: usize,
    out: *mut i8,
    out_stride: usize,
) {
    unsafe {
        let groups = p.kp / 4;
        // A flipped tile is already u8 and padded to whole groups.
        let full = if FLIPPED { groups } else { p.k / 4 };
        let mut acc = [[_mm512_setzero_si512(); B]; R];
        let w = p.w.as_ptr().add(jb * p.kp * 16);
        const FLIP: i32 = 0x8080_8080u32 as i32;
        let flip = _mm512_set1_epi32(FLIP);
        for g in 0..full {
            let mut wv = [_mm512_setzero_si512(); B];
            for (j, v) in wv.iter_mut().enumerate() {
                *v = _mm512_loadu_si512(w.add((j * groups + g) * 64) as *const _);
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let x = (a.add(r * a_stride + 4 * g) as *const i32).read_unaligned();
                let xv = if FLIPPED {
                    _mm512_set1_epi32(x)
                } else {
                    _mm512_xor_si512(_mm512_set1_epi32(x), flip)
                };
                for (j, v) in row.iter_mut().enumerate() {
                    *v = _mm512_dpbusd_epi32(*v, xv, wv[j]);
                }
            }
        }
        if full < groups {
            // The last group has fewer than 4 values; the packed weights are zero
            // beyond `k`, so whatever stands in the missing activations adds 0.
            let rem = p.k - 4 * full;
            let mut wv = [_mm512_setzero_si512(); B];
            for (j, v) in wv.iter_mut().enumerate() {
                *v = _mm512_loadu_si512(w.add((j * groups + full) * 64) as *const _);
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let mut b = [0i8; 4];
                core::ptr::copy_nonoverlapping(a.add(r * a_stride + 4 * full), b.as_mut_ptr(), rem);
                let x = i32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]) ^ FLIP;
                let xv = _mm512_set1_epi32(x);
                for (j, v) in row.iter_mut().enumerate() {
                    *v = _mm512_dpbusd_epi32(*v, xv, wv[j]);
                }
            }
        }
        let zp = _mm512_set1_epi32(p.out_zp);
        let lo = _mm512_set1_epi32(p.act_min);
        let hi = _mm512_set1_epi32(p.act_max);
        let float = !p.fscale.is_empty();
        for j in 0..B {
            let c = (jb + j) * 16;
            let bias = _mm512_loadu_si512(p.bias.as_ptr().add(c) as *const _);
            let mult = _mm512_loadu_si512(p.mult.as_ptr().add(c) as *const _);
            let ls = _mm512_loadu_si512(p.lshift.as_ptr().add(c) as *const _);
            let rs = _mm512_loadu_si512(p.rshift.as_ptr().add(c) as *const _);
            let fs = if float {
                _mm512_loadu_ps(p.fscale.as_ptr().add(c))
            } else {
                _mm512_setzero_ps()
            };
            let cols = p.n - c;
            for (r, row) in acc.iter().enumerate() {
                let sum = _mm512_add_epi32(row[j], bias);
                let v = if float {
                    requant16_float(sum, fs)
                } else {
                    requant16(sum, mult, ls, rs)
                };
                let v = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(v, zp), lo), hi);
                store_i8(out.add(r * out_stride + c), _mm512_cvtepi32_epi8(v), cols);
            }
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn qgemm_rows<const R: usize, const FLIPPED: bool>(
    p: &QGemm,
    a: *const i8,
    a_stride: usize,
    out: *mut i8,
    out_stride: usize,
) {
    unsafe {
        let blocks = p.np / 16;
        let mut jb = 0;
        while jb + NB <= blocks {
            qgemm_tile::<R, NB, FLIPPED>(p, a, a_stride, jb, out, out_stride);
            jb += NB;
        }
        match blocks - jb {
            1 => qgemm_tile::<R, 1, FLIPPED>(p, a, a_stride, jb, out, out_stride),
            2 => qgemm_tile::<R, 2, FLIPPED>(p, a, a_stride, jb, out, out_stride),
            3 => qgemm_tile::<R, 3, FLIPPED>(p, a, a_stride, jb, out, out_stride),
            _ => {}
        }
    }
}

/// Longest row (`kp`) that [`qgemm`] flips into its stack tile.
const FLIP_K: usize = 2048;

/// Runs `R` rows: copies them once into a stack tile as u8 (`x ^ 0x80`,
/// zero-padded to whole groups) so the inner loop broadcasts straight from
/// memory, or flips each broadcast when the rows are too long for the tile.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn qgemm_rows_any<const R: usize>(
    p: &QGemm,
    a: *const i8,
    a_stride: usize,
    out: *mut i8,
    out_stride: usize,
) {
    unsafe {
        if p.kp > FLIP_K {
            return qgemm_rows::<R, false>(p, a, a_stride, out, out_stride);
        }
        // Uninitialized: every byte the GEMM reads (R rows of `kp`) is written below.
        let mut tile = core::mem::MaybeUninit::<[i8; MR * FLIP_K]>::uninit();
        let base = tile.as_mut_ptr() as *mut i8;
        let flip = _mm512_set1_epi8(-128);
        for r in 0..R {
            let src = a.add(r * a_stride);
            let dst = base.add(r * p.kp);
            let mut k = 0;
            while k < p.kp {
                let left = p.k.saturating_sub(k);
                let m: u64 = if left >= 64 {
                    u64::MAX
                } else {
                    (1u64 << left) - 1
                };
                let v = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, src.add(k)), flip);
                let n = (p.kp - k).min(64);
                _mm512_mask_storeu_epi8(
                    dst.add(k),
                    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 },
                    v,
                );
                k += 64;
            }
        }
        qgemm_rows::<R, true>(p, base, p.kp, out, out_stride)
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn qgemm(p: &QGemm, a: &[i8], a_stride: usize, m: usize, out: &mut [i8], out_stride: usize) {
    unsafe {
        debug_assert!(m == 0 || a.len() >= (m - 1) * a_stride + p.k);
        debug_assert!(m == 0 || out.len() >= (m - 1) * out_stride + p.n);
        let (a, o) = (a.as_ptr(), out.as_mut_ptr());
        let mut r = 0;
        while r + MR <= m {
            qgemm_rows_any::<MR>(
                p,
                a.add(r * a_stride),
                a_stride,
                o.add(r * out_stride),
                out_stride,
            );
            r += MR;
        }
        let (a, o) = (a.add(r * a_stride), o.add(r * out_stride));
        match m - r {
            1 => qgemm_rows_any::<1>(p, a, a_stride, o, out_stride),
            2 => qgemm_rows_any::<2>(p, a, a_stride, o, out_stride),
            3 => qgemm_rows_any::<3>(p, a, a_stride, o, out_stride),
            4 => qgemm_rows_any::<4>(p, a, a_stride, o, out_stride),
            5 => qgemm_rows_any::<5>(p, a, a_stride, o, out_stride),
            _ => {}
        }
    }
}

/// f32 tile: `R` rows × `B` 16-channel blocks starting at block `jb`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn sgemm_tile<const R: usize, const B: usize>(
    p: &SGemm,
    a: *const f32,
    a_stride: usize,
    jb: usize,
    out: *mut f32,
    out_stride: usize,
) {
    unsafe {
        let k = p.k;
        let mut acc = [[_mm512_setzero_ps(); B]; R];
        let w = p.w.as_ptr().add(jb * k * 16);
        for kk in 0..k {
            let mut wv = [_mm512_setzero_ps(); B];
            for (j, v) in wv.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(w.add((j * k + kk) * 16));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*a.add(r * a_stride + kk));
                for (j, v) in row.iter_mut().enumerate() {
                    *v = _mm512_fmadd_ps(xv, wv[j], *v);
                }
            }
        }
        let lo = _mm512_set1_ps(p.act.0);
        let hi = _mm512_set1_ps(p.act.1);
        for j in 0..B {
            let c = (jb + j) * 16;
            let bias = _mm512_loadu_ps(p.bias.as_ptr().add(c));
            let cols = p.n - c;
            for (r, row) in acc.iter().enumerate() {
                let v = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(row[j], bias), lo), hi);
                let dst = out.add(r * out_stride + c);
                if cols >= 16 {
                    _mm512_storeu_ps(dst, v);
                } else {
                    _mm512_mask_storeu_ps(dst, ((1u32 << cols) - 1) as u16, v);
                }
            }
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn sgemm_rows<const R: usize>(
    p: &SGemm,
    a: *const f32,
    a_stride: usize,
    out: *mut f32,
    out_stride: usize,
) {
    unsafe {
        let blocks = p.np / 16;
        let mut jb = 0;
        while jb + NB <= blocks {
            sgemm_tile::<R, NB>(p, a, a_stride, jb, out, out_stride);
            jb += NB;
        }
        match blocks - jb {
            1 => sgemm_tile::<R, 1>(p, a, a_stride, jb, out, out_stride),
            2 => sgemm_tile::<R, 2>(p, a, a_stride, jb, out, out_stride),
            3 => sgemm_tile::<R, 3>(p, a, a_stride, jb, out, out_stride),
            _ => {}
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn sgemm(
    p: &SGemm,
    a: &[f32],
    a_stride: usize,
    m: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    unsafe {
        debug_assert!(m == 0 || a.len() >= (m - 1) * a_stride + p.k);
        debug_assert!(m == 0 || out.len() >= (m - 1) * out_stride + p.n);
        let (a, o) = (a.as_ptr(), out.as_mut_ptr());
        let mut r = 0;
        while r + MR <= m {
            sgemm_rows::<MR>(
                p,
                a.add(r * a_stride),
                a_stride,
                o.add(r * out_stride),
                out_stride,
            );
            r += MR;
        }
        let (a, o) = (a.add(r * a_stride), o.add(r * out_stride));
        match m - r {
            1 => sgemm_rows::<1>(p, a, a_stride, o, out_stride),
            2 => sgemm_rows::<2>(p, a, a_stride, o, out_stride),
            3 => sgemm_rows::<3>(p, a, a_stride, o, out_stride),
            4 => sgemm_rows::<4>(p, a, a_stride, o, out_stride),
            5 => sgemm_rows::<5>(p, a, a_stride, o, out_stride),
            _ => {}
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
    // Tap t is inside when pad <= base + t * dil < size + pad.
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

/// Where a depthwise window lies entirely inside the image: the output
/// columns `lo..hi` (all taps of a row inside), and each tap's element offset
/// from the window's top-left input element.
struct DwWindow {
    cols: Range<usize>,
    off: [usize; MAX_DW_TAPS],
}

impl DwWindow {
    fn new(p: &crate::kernels::pack::ConvShape) -> Self {
        let [_, _, iw, c] = p.shapes[0];
        let [_, kh, kw, _] = p.shapes[1];
        let ow = p.shapes[2][2];
        let g = &p.g;
        let mut off = [0usize; MAX_DW_TAPS];
        for ty in 0..kh {
            for tx in 0..kw {
                off[ty * kw + tx] = (ty * g.dilation_h * iw + tx * g.dilation_w) * c;
            }
        }
        let lo = g.pad_left.div_ceil(g.stride_w).min(ow);
        let span = (kw - 1) * g.dilation_w;
        let hi = if iw + g.pad_left > span {
            ((iw - 1 + g.pad_left - span) / g.stride_w + 1).min(ow)
        } else {
            0
        };
        DwWindow {
            cols: lo..hi.max(lo),
            off,
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn qdw(p: &QDw, input: &[i8], output: &mut [i8], rows: Range<usize>) {
    unsafe {
        let [_, ih, iw, c] = p.shape.shapes[0];
        let [_, kh, kw, _] = p.shape.shapes[1];
        let [_, oh, ow, _] = p.shape.shapes[2];
        let g = &p.shape.g;
        let taps = kh * kw;
        let win = DwWindow::new(&p.shape);
        let blocks = p.cp / 16;
        let io = _mm512_set1_epi32(p.input_offset);
        let zp = _mm512_set1_epi32(p.out_zp);
        let lo = _mm512_set1_epi32(p.act_min);
        let hi = _mm512_set1_epi32(p.act_max);
        let (inp, outp, w) = (input.as_ptr(), output.as_mut_ptr(), p.w.as_ptr());
        let float = !p.fscale.is_empty();
        let epilogue = |acc: __m512i, c0: usize, dst: *mut i8, m16: u16| {
            let v = if float {
                requant16_float(acc, _mm512_loadu_ps(p.fscale.as_ptr().add(c0)))
            } else {
                let mult = _mm512_loadu_si512(p.mult.as_ptr().add(c0) as *const _);
                let ls = _mm512_loadu_si512(p.lshift.as_ptr().add(c0) as *const _);
                let rs = _mm512_loadu_si512(p.rshift.as_ptr().add(c0) as *const _);
                requant16(acc, mult, ls, rs)
            };
            let v = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(v, zp), lo), hi);
            store_i8(
                dst.add(c0),
                _mm512_cvtepi32_epi8(v),
                if m16 == 0xFFFF {
                    16
                } else {
                    m16.count_ones() as usize
                },
            );
        };
        let first = rows.start;
        debug_assert_eq!(output.len(), rows.len() * ow * c);
        for row in rows {
            let (b, oy) = (row / oh, row % oh);
            let ky = valid_taps(oy, g.stride_h, g.dilation_h, g.pad_top, kh, ih);
            let row_full = ky.len() == kh;
            for ox in 0..ow {
                let out_px = outp.add(((row - first) * ow + ox) * c);
                if row_full && win.cols.contains(&ox) {
                    // Every tap inside: the zero-point is folded into `bias_full`.
                    let iy0 = oy * g.stride_h - g.pad_top;
                    let ix0 = ox * g.stride_w - g.pad_left;
                    let base = inp.add(((b * ih + iy0) * iw + ix0) * c);
                    for cb in 0..blocks {
                        let c0 = cb * 16;
                        let n = c - c0;
                        let m16: u16 = if n >= 16 {
                            0xFFFF
                        } else {
                            ((1u32 << n) - 1) as u16
                        };
                        let mut acc = _mm512_loadu_si512(p.bias_full.as_ptr().add(c0) as *const _);
                        let wc = w.add(c0);
                        for (t, &o) in win.off[..taps].iter().enumerate() {
                            let x = _mm512_cvtepi8_epi32(load16(base.add(o + c0), m16));
                            let wv = _mm512_loadu_si512(wc.add(t * p.cp) as *const _);
                            acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(x, wv));
                        }
                        epilogue(acc, c0, out_px, m16);
                    }
                    continue;
                }
                let kx = valid_taps(ox, g.stride_w, g.dilation_w, g.pad_left, kw, iw);
                for cb in 0..blocks {
                    let c0 = cb * 16;
                    let n = c - c0;
                    let m16: u16 = if n >= 16 {
                        0xFFFF
                    } else {
                        ((1u32 << n) - 1) as u16
                    };
                    let mut acc = _mm512_loadu_si512(p.bias.as_ptr().add(c0) as *const _);
                    for ty in ky.clone() {
                        let iy = oy * g.stride_h + ty * g.dilation_h - g.pad_top;
                        for tx in kx.clone() {
                            let ix = ox * g.stride_w + tx * g.dilation_w - g.pad_left;
                            let src = inp.add(((b * ih + iy) * iw + ix) * c + c0);
                            let x = _mm512_add_epi32(_mm512_cvtepi8_epi32(load16(src, m16)), io);
                            let wv =
                                _mm512_loadu_si512(w.add((ty * kw + tx) * p.cp + c0) as *const _);
                            acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(x, wv));
                        }
                    }
                    epilogue(acc, c0, out_px, m16);
                }
            }
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn sdw(p: &SDw, input: &[f32], output: &mut [f32], rows: Range<usize>) {
    unsafe {
        let [_, ih, iw, c] = p.shape.shapes[0];
        let [_, kh, kw, _] = p.shape.shapes[1];
        let [_, oh, ow, _] = p.shape.shapes[2];
        let g = &p.shape.g;
        let taps = kh * kw;
        let win = DwWindow::new(&p.shape);
        let blocks = p.cp / 16;
        let lo = _mm512_set1_ps(p.act.0);
        let hi = _mm512_set1_ps(p.act.1);
        let (inp, outp, w) = (input.as_ptr(), output.as_mut_ptr(), p.w.as_ptr());
        let first = rows.start;
        debug_assert_eq!(output.len(), rows.len() * ow * c);
        for row in rows {
            let (b, oy) = (row / oh, row % oh);
            let ky = valid_taps(oy, g.stride_h, g.dilation_h, g.pad_top, kh, ih);
            let row_full = ky.len() == kh;
            for ox in 0..ow {
                let out_px = outp.add(((row - first) * ow + ox) * c);
                let kx = valid_taps(ox, g.stride_w, g.dilation_w, g.pad_left, kw, iw);
                let full = row_full && win.cols.contains(&ox);
                for cb in 0..blocks {
                    let c0 = cb * 16;
                    let n = c - c0;
                    let m16: u16 = if n >= 16 {
                        0xFFFF
                    } else {
                        ((1u32 << n) - 1) as u16
                    };
                    let mut acc = _mm512_setzero_ps();
                    if full {
                        let iy0 = oy * g.stride_h - g.pad_top;
                        let ix0 = ox * g.stride_w - g.pad_left;
                        let base = inp.add(((b * ih + iy0) * iw + ix0) * c + c0);
                        let wc = w.add(c0);
                        for (t, &o) in win.off[..taps].iter().enumerate() {
                            let x = _mm512_maskz_loadu_ps(m16, base.add(o));
                            acc = _mm512_fmadd_ps(x, _mm512_loadu_ps(wc.add(t * p.cp)), acc);
                        }
                    } else {
                        for ty in ky.clone() {
                            let iy = oy * g.stride_h + ty * g.dilation_h - g.pad_top;
                            for tx in kx.clone() {
                                let ix = ox * g.stride_w + tx * g.dilation_w - g.pad_left;
                                let x = _mm512_maskz_loadu_ps(
                                    m16,
                                    inp.add(((b * ih + iy) * iw + ix) * c + c0),
                                );
                                let wv = _mm512_loadu_ps(w.add((ty * kw + tx) * p.cp + c0));
                                acc = _mm512_fmadd_ps(x, wv, acc);
                            }
                        }
                    }
                    let bias = _mm512_loadu_ps(p.bias.as_ptr().add(c0));
                    let v = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(acc, bias), lo), hi);
                    _mm512_mask_storeu_ps(out_px.add(c0), m16, v);
                }
            }
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn qdot(w: &[i8], k: usize, x: &[i8], out: &mut [i32]) {
    unsafe {
        debug_assert!(w.len() >= out.len() * k && x.len() >= k);
        let flip = _mm512_set1_epi8(-128);
        let full = k / 64;
        let rem = k % 64;
        let mrem: u64 = if rem == 0 { 0 } else { (1u64 << rem) - 1 };
        for (o, dst) in out.iter_mut().enumerate() {
            let row = w.as_ptr().add(o * k);
            let mut acc = _mm512_setzero_si512();
            for i in 0..full {
                let xv =
                    _mm512_xor_si512(_mm512_loadu_si512(x.as_ptr().add(i * 64) as *const _), flip);
                let wv = _mm512_loadu_si512(row.add(i * 64) as *const _);
                acc = _mm512_dpbusd_epi32(acc, xv, wv);
            }
            if rem != 0 {
                // Masked-off weight bytes are 0, so the flipped zeros add nothing.
                let xv = _mm512_xor_si512(
                    _mm512_maskz_loadu_epi8(mrem, x.as_ptr().add(full * 64)),
                    flip,
                );
                let wv = _mm512_maskz_loadu_epi8(mrem, row.add(full * 64));
                acc = _mm512_dpbusd_epi32(acc, xv, wv);
            }
            *dst = _mm512_reduce_add_epi32(acc);
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn sdot(w: &[f32], k: usize, x: &[f32], out: &mut [f32]) {
    unsafe {
        debug_assert!(w.len() >= out.len() * k && x.len() >= k);
        let full = k / 16;
        let rem = k % 16;
        let mrem: u16 = if rem == 0 {
            0
        } else {
            ((1u32 << rem) - 1) as u16
        };
        for (o, dst) in out.iter_mut().enumerate() {
            let row = w.as_ptr().add(o * k);
            let mut acc = _mm512_setzero_ps();
            for i in 0..full {
                acc = _mm512_fmadd_ps(
                    _mm512_loadu_ps(x.as_ptr().add(i * 16)),
                    _mm512_loadu_ps(row.add(i * 16)),
                    acc,
                );
            }
            if rem != 0 {
                let xv = _mm512_maskz_loadu_ps(mrem, x.as_ptr().add(full * 16));
                acc = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(mrem, row.add(full * 16)), acc);
            }
            *dst = _mm512_reduce_add_ps(acc);
        }
    }
}

/// Same-shape int8 ADD with ONNX Runtime's rounding on 16 lanes: the
/// hardware fused multiply-adds `FloatAddI8Params::apply` describes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn qadd_float(p: &FloatAddI8Params, a: &[i8], b: &[i8], out: &mut [i8]) {
    unsafe {
        debug_assert!(a.len() == out.len() && b.len() == out.len());
        const RNE: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        let off = _mm512_set1_epi32(p.code_offset);
        let (ra, rb, k) = (
            _mm512_set1_ps(p.ra),
            _mm512_set1_ps(p.rb),
            _mm512_set1_ps(p.k),
        );
        let lim = _mm512_set1_ps((1 << 22) as f32);
        let nlim = _mm512_set1_ps(-((1 << 22) as f32));
        let lo = _mm512_set1_epi32(p.act_min);
        let hi = _mm512_set1_epi32(p.act_max);
        let n = out.len();
        let mut i = 0;
        while i < n {
            let left = n - i;
            let m: u16 = if left >= 16 {
                0xFFFF
            } else {
                ((1u32 << left) - 1) as u16
            };
            let code = |src: &[i8]| {
                let v = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, src.as_ptr().add(i)));
                _mm512_cvtepi32_ps(_mm512_add_epi32(v, off))
            };
            let t = _mm512_fmadd_ps(code(a), ra, _mm512_fmadd_ps(code(b), rb, k));
            let t = _mm512_min_ps(_mm512_max_ps(t, nlim), lim);
            let v = _mm512_sub_epi32(_mm512_cvt_roundps_epi32::<RNE>(t), off);
            let v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
            _mm_mask_storeu_epi8(out.as_mut_ptr().add(i), m, _mm512_cvtepi32_epi8(v));
            i += 16;
        }
    }
}

/// Same-shape int8 ADD/SUB: TFLite's `AddFunc` on 16 lanes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn qadd(p: &AddI8Params, a: &[i8], b: &[i8], out: &mut [i8]) {
    unsafe {
        debug_assert!(a.len() == out.len() && b.len() == out.len());
        let off1 = _mm512_set1_epi32(p.input1_offset);
        let off2 = _mm512_set1_epi32(p.input2_offset);
        let lsh = _mm512_set1_epi32(p.left_shift);
        let zero = _mm512_setzero_si512();
        let (m1, r1) = (
            _mm512_set1_epi32(p.input1_multiplier),
            _mm512_set1_epi32(-p.input1_shift),
        );
        let (m2, r2) = (
            _mm512_set1_epi32(p.input2_multiplier),
            _mm512_set1_epi32(-p.input2_shift),
        );
        let (mo, ro) = (
            _mm512_set1_epi32(p.output_multiplier),
            _mm512_set1_epi32(-p.output_shift),
        );
        let zp = _mm512_set1_epi32(p.output_offset);
        let lo = _mm512_set1_epi32(p.act_min);
        let hi = _mm512_set1_epi32(p.act_max);
        let n = out.len();
        let mut i = 0;
        while i < n {
            let left = n - i;
            let m: u16 = if left >= 16 {
                0xFFFF
            } else {
                ((1u32 << left) - 1) as u16
            };
            let x = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, a.as_ptr().add(i)));
            let y = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, b.as_ptr().add(i)));
            let x = requant16(
                _mm512_sllv_epi32(_mm512_add_epi32(x, off1), lsh),
                m1,
                zero,
                r1,
            );
            let y = requant16(
                _mm512_sllv_epi32(_mm512_add_epi32(y, off2), lsh),
                m2,
                zero,
                r2,
            );
            let s = if p.subtract {
                _mm512_sub_epi32(x, y)
            } else {
                _mm512_add_epi32(x, y)
            };
            let v = _mm512_add_epi32(requant16(s, mo, zero, ro), zp);
            let v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
            _mm_mask_storeu_epi8(out.as_mut_ptr().add(i), m, _mm512_cvtepi32_epi8(v));
            i += 16;
        }
    }
}

// Safe entry points. They are only reachable through a kernel table that
// `super::plug` filled after `is_x86_feature_detected!` confirmed
// avx512f/bw/vl (+ vnni for the int8 ones).

pub(super) fn vnni_qgemm_i8(
    p: &QGemm,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
) {
    // SAFETY: see the note above; slices are checked by the drivers' shapes.
    unsafe { qgemm(p, a, a_stride, m, out, out_stride) }
}
pub(super) fn avx512_sgemm_f32(
    p: &SGemm,
    a: &[f32],
    a_stride: usize,
    m: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    // SAFETY: see the note above.
    unsafe { sgemm(p, a, a_stride, m, out, out_stride) }
}
pub(super) fn avx512_qdw_i8(p: &QDw, input: &[i8], output: &mut [i8], rows: Range<usize>) {
    // SAFETY: see the note above.
    unsafe { qdw(p, input, output, rows) }
}
pub(super) fn avx512_sdw_f32(p: &SDw, input: &[f32], output: &mut [f32], rows: Range<usize>) {
    // SAFETY: see the note above.
    unsafe { sdw(p, input, output, rows) }
}
pub(super) fn vnni_qdot_i8(w: &[i8], k: usize, x: &[i8], out: &mut [i32]) {
    // SAFETY: see the note above.
    unsafe { qdot(w, k, x, out) }
}
pub(super) fn avx512_sdot_f32(w: &[f32], k: usize, x: &[f32], out: &mut [f32]) {
    // SAFETY: see the note above.
    unsafe { sdot(w, k, x, out) }
}
pub(super) fn avx512_qadd_float_i8(p: &FloatAddI8Params, a: &[i8], b: &[i8], out: &mut [i8]) {
    // SAFETY: see the note above; the three slices have one length.
    unsafe { qadd_float(p, a, b, out) }
}
pub(super) fn avx512_qadd_i8(p: &AddI8Params, a: &[i8], b: &[i8], out: &mut [i8]) {
    // SAFETY: see the note above; the three slices have one length.
    unsafe { qadd(p, a, b, out) }
}
