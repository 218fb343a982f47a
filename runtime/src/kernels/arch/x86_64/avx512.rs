//! AVX-512 kernels: int8 with VNNI (`vpdpbusd`: 64 u8 × s8 MACs per
//! instruction), f32 with 16-lane FMA.
//!
//! Every `unsafe fn` here is `#[target_feature]`; the safe wrappers at the
//! bottom are only put into a kernel table by [`super::plug`] after the CPU
//! reported the features, which is what makes calling them sound.

use core::arch::x86_64::*;
use core::ops::Range;

use crate::kernels::pack::{DwOut, QDw, QGemm, Runs, SDw, SGemm, MAX_DW_TAPS};
use crate::kernels::reference::elementwise::{
    binary_same_f32, AddI8Params, BinaryOp, FloatAddI8Params,
};

/// Rows per GEMM tile and 16-channel blocks per tile.
const MR: usize = 6;
const NB: usize = 4;

/// Runs `$body` with `$j` = 0, 1, .. up to `$b` (at most [`NB`]) as
/// literal constants. A `for j in 0..B` loop over a large body is left
/// rolled by LLVM, and a loop-variable index into the accumulator arrays
/// sends all of them through the stack (measured: the int8 GEMM epilogue
/// spilled every accumulator twice); constant indices keep them in
/// registers.
macro_rules! for_each_block {
    ($b:expr, $j:ident => $body:block) => {{
        const _: () = assert!(NB == 4);
        debug_assert!($b <= NB);
        if 0 < $b {
            let $j = 0usize;
            $body
        }
        if 1 < $b {
            let $j = 1usize;
            $body
        }
        if 2 < $b {
            let $j = 2usize;
            $body
        }
        if 3 < $b {
            let $j = 3usize;
            $body
        }
    }};
}

/// The per-channel constants of [`requant16`] for 16 channels, derived once
/// from the packed multiplier and shift vectors and kept in registers while
/// a block of channels is requantized.
///
/// TFLite's `MultiplyByQuantizedMultiplier` rounds twice: `h = SRDHM(x', M)
/// = floor((x' M + 2^30) / 2^31)` (with `x' = x << ls`; with `M >= 0` it never
/// saturates), then `RoundingDivideByPOT(h, rs) = floor((h + 2^(rs-1) -
/// [h < 0]) / 2^rs)` for `rs > 0`. Because `floor(floor(y) / 2^rs) =
/// floor(y / 2^rs)`, both fold into one exact step on the 64-bit product:
///
/// `q = (x' M + 2^30 + 2^(30+rs) - [rs > 0][x' M < 0] 2^31) >> (31 + rs)`
///
/// (`[h < 0]` is `x' M < -2^30`; testing `x' M < 0` instead gives the same
/// `q`, see [`crate::quant::multiply_by_quantized_multiplier_single_shift`]).
/// This costs about 10% less than the two rounding passes on Zen 4/5.
#[derive(Clone, Copy)]
struct Rq16 {
    /// `x << ls` per lane.
    ls: __m512i,
    /// The multiplier of the even lanes (low dwords) and of the odd lanes
    /// (moved down into the low dwords).
    me: __m512i,
    mo: __m512i,
    /// `2^30 + 2^(30+rs)` (`2^30` when `rs == 0`), even and odd lanes.
    ke: __m512i,
    ko: __m512i,
    /// `31 + rs`, even and odd lanes.
    se: __m512i,
    so: __m512i,
    /// `-2^31` where `rs > 0` (the sign correction), else 0.
    ce: __m512i,
    co: __m512i,
    /// `rs - 1` per lane (the right-shift-only forms).
    rs1: __m512i,
}

impl Rq16 {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn new(mult: __m512i, lshift: __m512i, rshift: __m512i) -> Self {
        let low = _mm512_set1_epi64(0xFFFF_FFFF);
        let re = _mm512_and_si512(rshift, low);
        let ro = _mm512_srli_epi64::<32>(rshift);
        let k = |r: __m512i| {
            // (1 << rs) >> 1 is 2^(rs-1), or 0 when rs == 0.
            let half = _mm512_srli_epi64::<1>(_mm512_sllv_epi64(_mm512_set1_epi64(1), r));
            _mm512_add_epi64(_mm512_slli_epi64::<31>(half), _mm512_set1_epi64(1 << 30))
        };
        let c = |r: __m512i| {
            let pos = _mm512_cmpgt_epi64_mask(r, _mm512_setzero_si512());
            _mm512_maskz_mov_epi64(pos, _mm512_set1_epi64(-(1i64 << 31)))
        };
        let s31 = _mm512_set1_epi64(31);
        Rq16 {
            ls: lshift,
            me: mult,
            mo: _mm512_srli_epi64::<32>(mult),
            ke: k(re),
            ko: k(ro),
            se: _mm512_add_epi64(re, s31),
            so: _mm512_add_epi64(ro, s31),
            ce: c(re),
            co: c(ro),
            rs1: _mm512_sub_epi32(rshift, _mm512_set1_epi32(1)),
        }
    }

    /// The constants the right-shift-only forms use ([`RQ_RIGHT`]), for
    /// channels `c..c + 16`, with the rounding constants precomputed
    /// ([`QGemm::round64`]); the other fields are left zero.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn load_right(p: &QGemm, c: usize) -> Self {
        debug_assert!(c + 16 <= p.mult.len() && c + 16 <= p.round64.len());
        unsafe {
            let mult = _mm512_loadu_si512(p.mult.as_ptr().add(c) as *const _);
            let rs = _mm512_loadu_si512(p.rshift.as_ptr().add(c) as *const _);
            let z = _mm512_setzero_si512();
            Rq16 {
                ls: z,
                me: mult,
                mo: _mm512_shuffle_epi32::<0xF5>(mult),
                ke: _mm512_loadu_si512(p.round64.as_ptr().add(c) as *const _),
                ko: _mm512_loadu_si512(p.round64.as_ptr().add(c + 8) as *const _),
                se: z,
                so: z,
                ce: z,
                co: z,
                rs1: _mm512_sub_epi32(rs, _mm512_set1_epi32(1)),
            }
        }
    }

    /// Loads the constants of channels `c..c + 16` from packed per-channel
    /// vectors.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn load(mult: &[i32], lshift: &[i32], rshift: &[i32], c: usize) -> Self {
        debug_assert!(c + 16 <= mult.len() && c + 16 <= lshift.len() && c + 16 <= rshift.len());
        unsafe {
            Rq16::new(
                _mm512_loadu_si512(mult.as_ptr().add(c) as *const _),
                _mm512_loadu_si512(lshift.as_ptr().add(c) as *const _),
                _mm512_loadu_si512(rshift.as_ptr().add(c) as *const _),
            )
        }
    }
}

/// [`requant16`]'s cases: any shifts ([`Rq16`]'s single 64-bit shift, with
/// the sign correction), and, when every channel shifts right only
/// ([`QGemm::right_shifts_only`]), the same rounding split as "high half of
/// the 64-bit sum, then `rs - 1` more bits" with or without the sign
/// correction ([`needs_sign`]).
///
/// Variable and immediate shifts of 512-bit vectors all issue on one port
/// on Zen 4/5 (one per cycle), multiplies on another, shuffles on a third:
/// the right-shift-only forms use one shift per 16 lanes instead of five.
/// On this VM they took MobileNetV2 int8 (1 thread) from 4.17 to 3.80 ms.
const RQ_ANY: u8 = 0;
const RQ_RIGHT: u8 = 1;
const RQ_RIGHT_RELU: u8 = 2;

/// The [`requant16`] case for a layer.
fn rq_mode(right_shifts_only: bool, act_min: i32, out_zp: i32) -> u8 {
    match (right_shifts_only, needs_sign(act_min, out_zp)) {
        (false, _) => RQ_ANY,
        (true, true) => RQ_RIGHT,
        (true, false) => RQ_RIGHT_RELU,
    }
}

/// TFLite's `MultiplyByQuantizedMultiplier` on 16 lanes, bit-exact with
/// [`crate::quant::multiply_by_quantized_multiplier`] for multipliers in
/// `[0, 2^31)` (what `quantize_multiplier` produces); see [`Rq16`] and
/// [`RQ_ANY`].
///
/// [`RQ_RIGHT_RELU`] leaves out the sign correction, which changes results
/// only for negative accumulators, and those only between `q <= 0` values:
/// exact after the clamp whenever the activation's lower bound is at or
/// above the output zero point (ReLU, ReLU6: see [`needs_sign`]), where
/// every `q <= 0` lands on that bound.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn requant16<const MODE: u8>(acc: __m512i, q: &Rq16) -> __m512i {
    if MODE == RQ_ANY {
        let x = _mm512_sllv_epi32(acc, q.ls);
        // Shifts, adds and a blend rather than mask-register compares: cheaper on Zen 4/5.
        let half = |x: __m512i, m: __m512i, k: __m512i, s: __m512i, c: __m512i| {
            let p = _mm512_mul_epi32(x, m);
            let corr = _mm512_and_si512(_mm512_srai_epi64::<63>(p), c);
            _mm512_srav_epi64(_mm512_add_epi64(_mm512_add_epi64(p, k), corr), s)
        };
        let even = half(x, q.me, q.ke, q.se, q.ce);
        let odd = half(_mm512_srli_epi64::<32>(x), q.mo, q.ko, q.so, q.co);
        return _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64::<32>(odd));
    }
    // rs >= 1, ls = 0: q = ((x M + K - corr) >> 32) >> (rs - 1).
    let mut te = _mm512_add_epi64(_mm512_mul_epi32(acc, q.me), q.ke);
    let mut to = _mm512_add_epi64(
        _mm512_mul_epi32(_mm512_shuffle_epi32::<0xF5>(acc), q.mo),
        q.ko,
    );
    if MODE == RQ_RIGHT {
        // -2^31 where x < 0 (the sign of x M, as M > 0; with M = 0 the
        // correction changes nothing): the sign dword in both halves of a
        // 64-bit lane, masked to 0xFFFFFFFF_80000000.
        let s = _mm512_srai_epi32::<31>(acc);
        let c = _mm512_set1_epi64(-(1i64 << 31));
        te = _mm512_add_epi64(te, _mm512_and_si512(_mm512_shuffle_epi32::<0xA0>(s), c));
        to = _mm512_add_epi64(to, _mm512_and_si512(_mm512_shuffle_epi32::<0xF5>(s), c));
    }
    // The high dwords: even lanes from `te`, odd lanes from `to`.
    let high = _mm512_mask_shuffle_epi32::<0xF5>(to, 0x5555, te);
    _mm512_srav_epi32(high, q.rs1)
}

/// Whether a layer's requantization needs [`requant16`]'s sign correction:
/// not when every result `<= 0` is clamped to the same lower bound, i.e.
/// the activation minimum is at or above the output zero point. Without the
/// correction a negative accumulator still gives a result `<= 0`: with
/// `p < 0`, `p + 2^30 + 2^(30+rs) < 2^(31+rs)`.
fn needs_sign(act_min: i32, out_zp: i32) -> bool {
    act_min < out_zp
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

/// One tile: `R` rows × `B` 16-channel blocks starting at block `jb`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn qgemm_tile<const R: usize, const B: usize, const FLIPPED: bool, const MODE: u8>(
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
        // The accumulators start from the bias (zero-point correction folded in).
        let mut acc = [[_mm512_setzero_si512(); B]; R];
        for j in 0..B {
            let bias = _mm512_loadu_si512(p.bias.as_ptr().add((jb + j) * 16) as *const _);
            for row in acc.iter_mut() {
                row[j] = bias;
            }
        }
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
        let float = !p.fscale.is_empty();
        // Requantized into a second array: writing back into `acc` makes
        // LLVM keep the accumulators in memory through the main loop.
        let mut q = [[_mm512_setzero_si512(); B]; R];
        for_each_block!(B, j => {
            let c = (jb + j) * 16;
            let rq = if MODE == RQ_ANY {
                Rq16::load(&p.mult, &p.lshift, &p.rshift, c)
            } else {
                Rq16::load_right(p, c)
            };
            let fs = if float {
                _mm512_loadu_ps(p.fscale.as_ptr().add(c))
            } else {
                _mm512_setzero_ps()
            };
            for (row, qrow) in acc.iter().zip(q.iter_mut()) {
                let sum = row[j];
                qrow[j] = if float {
                    requant16_float(sum, fs)
                } else {
                    requant16::<MODE>(sum, &rq)
                };
            }
        });
        let c0 = jb * 16;
        for (r, row) in q.iter().enumerate() {
            store_rows_i8::<B>(p, *row, out.add(r * out_stride + c0), p.n - c0);
        }
    }
}

/// Stores one row of requantized blocks (16 channels each, `cols` of them
/// real) as int8 with the zero point and activation clamp: four blocks at a
/// time through saturating packs (which interleave 128-bit lanes, undone by
/// one `vpermd`), then pairs, then a last block alone. Saturating to i16,
/// adding the zero point (saturating) and saturating to i8 before the clamp
/// equals clamping the i32 `v + zp`: the activation range lies inside i8.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn store_rows_i8<const B: usize>(p: &QGemm, v: [__m512i; B], dst: *mut i8, cols: usize) {
    unsafe {
        let zp = _mm512_set1_epi16(p.out_zp as i16);
        let (amin, amax) = (p.act_min as i8, p.act_max as i8);
        let mut j = 0;
        while j + 4 <= B {
            let a = _mm512_adds_epi16(_mm512_packs_epi32(v[j], v[j + 1]), zp);
            let b = _mm512_adds_epi16(_mm512_packs_epi32(v[j + 2], v[j + 3]), zp);
            // Lane L holds channels 4L.. of blocks j..j+4, one dword each.
            let x = _mm512_packs_epi16(a, b);
            let x = _mm512_min_epi8(
                _mm512_max_epi8(x, _mm512_set1_epi8(amin)),
                _mm512_set1_epi8(amax),
            );
            let idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
            let x = _mm512_permutexvar_epi32(idx, x);
            let n = cols - 16 * j;
            if n >= 64 {
                _mm512_storeu_si512(dst.add(16 * j) as *mut _, x);
            } else {
                _mm512_mask_storeu_epi8(dst.add(16 * j), (1u64 << n) - 1, x);
            }
            j += 4;
        }
        while j + 2 <= B {
            let a = _mm512_packs_epi32(v[j], v[j + 1]);
            // Qword L of each block: channels 4L..4L+4; put block j's first.
            let a = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), a);
            let x = _mm512_cvtsepi16_epi8(_mm512_adds_epi16(a, zp));
            let x = _mm256_min_epi8(
                _mm256_max_epi8(x, _mm256_set1_epi8(amin)),
                _mm256_set1_epi8(amax),
            );
            let n = cols - 16 * j;
            if n >= 32 {
                _mm256_storeu_si256(dst.add(16 * j) as *mut __m256i, x);
            } else {
                _mm256_mask_storeu_epi8(dst.add(16 * j), ((1u64 << n) - 1) as u32, x);
            }
            j += 2;
        }
        if j < B {
            let x = _mm512_add_epi32(v[j], _mm512_set1_epi32(p.out_zp));
            let x = _mm512_min_epi32(
                _mm512_max_epi32(x, _mm512_set1_epi32(p.act_min)),
                _mm512_set1_epi32(p.act_max),
            );
            store_i8(dst.add(16 * j), _mm512_cvtepi32_epi8(x), cols - 16 * j);
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn qgemm_rows<const R: usize, const FLIPPED: bool, const MODE: u8>(
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
            qgemm_tile::<R, NB, FLIPPED, MODE>(p, a, a_stride, jb, out, out_stride);
            jb += NB;
        }
        match blocks - jb {
            1 => qgemm_tile::<R, 1, FLIPPED, MODE>(p, a, a_stride, jb, out, out_stride),
            2 => qgemm_tile::<R, 2, FLIPPED, MODE>(p, a, a_stride, jb, out, out_stride),
            3 => qgemm_tile::<R, 3, FLIPPED, MODE>(p, a, a_stride, jb, out, out_stride),
            _ => {}
        }
    }
}

/// Longest row (`kp`) that [`qgemm`] flips into its stack tile.
const FLIP_K: usize = 2048;

/// Runs `R` rows: copies them once into a stack tile as u8 (`x ^ 0x80`,
/// zero-padded to whole groups) so the inner loop broadcasts straight from
/// memory, or flips each broadcast when the rows are too long for the tile
/// or the layer is narrow (at most 32 output channels, where a broadcast
/// feeds only one or two `vpdpbusd` and the copy doesn't pay: MobileNetV2's
/// 112x112 32->16 projection 105 -> 86 us, 56x56 144->24 95 -> 87 us).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn qgemm_rows_any<const R: usize, const MODE: u8>(
    p: &QGemm,
    a: *const i8,
    a_stride: usize,
    out: *mut i8,
    out_stride: usize,
) {
    unsafe {
        if p.kp > FLIP_K || p.np <= 32 {
            return qgemm_rows::<R, false, MODE>(p, a, a_stride, out, out_stride);
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
        qgemm_rows::<R, true, MODE>(p, base, p.kp, out, out_stride)
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn qgemm<const MODE: u8>(
    p: &QGemm,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
) {
    unsafe {
        debug_assert!(m == 0 || a.len() >= (m - 1) * a_stride + p.k);
        debug_assert!(m == 0 || out.len() >= (m - 1) * out_stride + p.n);
        let (a, o) = (a.as_ptr(), out.as_mut_ptr());
        let mut r = 0;
        while r + MR <= m {
            qgemm_rows_any::<MR, MODE>(
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
            1 => qgemm_rows_any::<1, MODE>(p, a, a_stride, o, out_stride),
            2 => qgemm_rows_any::<2, MODE>(p, a, a_stride, o, out_stride),
            3 => qgemm_rows_any::<3, MODE>(p, a, a_stride, o, out_stride),
            4 => qgemm_rows_any::<4, MODE>(p, a, a_stride, o, out_stride),
            5 => qgemm_rows_any::<5, MODE>(p, a, a_stride, o, out_stride),
            _ => {}
        }
    }
}

/// The lanes of a 16-channel block at `c0` below channel `end`.
#[inline]
fn lanes16(end: usize, c0: usize) -> u16 {
    let n = end - c0;
    if n >= 16 {
        0xFFFF
    } else {
        ((1u32 << n) - 1) as u16
    }
}

/// f32 tile: `R` rows × `B` 16-channel blocks starting at block `jb`, over
/// the values `kr` of `k`. Each row's values lie in `runs` when `WINDOW`
/// (then `kr` is all of `k`), else contiguously (a constant, so the plain
/// GEMM's loop is compiled as a single one). A block of `k` after the first
/// starts from the sums in `out`; one before the last leaves its sums there
/// (the bias and activation come with the last): a sum still adds its
/// values in order, so blocking `k` changes no result.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn sgemm_tile<const R: usize, const B: usize, const WINDOW: bool>(
    p: &SGemm,
    a: *const f32,
    a_stride: usize,
    runs: Runs,
    kr: Range<usize>,
    jb: usize,
    (out, out_stride): (*mut f32, usize),
) {
    unsafe {
        let k = p.k;
        let (first, last) = (kr.start == 0, kr.end == k);
        // Every block starts below `n` (`np` is `n` rounded up to 16).
        let mask = |j: usize| lanes16(p.n, (jb + j) * 16);
        let mut acc = [[_mm512_setzero_ps(); B]; R];
        if !first {
            for (r, row) in acc.iter_mut().enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    let src = out.add(r * out_stride + (jb + j) * 16);
                    *v = _mm512_maskz_loadu_ps(mask(j), src);
                }
            }
        }
        let w = p.w.as_ptr().add(jb * k * 16 + kr.start * 16);
        let (a, runs) = if WINDOW {
            (a, runs)
        } else {
            (a.add(kr.start), Runs::contiguous(kr.len()))
        };
        for run in 0..runs.runs {
            for col in 0..runs.cols {
                let a = a.add(run * runs.run_stride + col * runs.col_stride);
                let w = w.add((run * runs.cols + col) * runs.run * 16);
                for kk in 0..runs.run {
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
            }
        }
        let lo = _mm512_set1_ps(p.act.0);
        let hi = _mm512_set1_ps(p.act.1);
        for j in 0..B {
            let c = (jb + j) * 16;
            let bias = _mm512_loadu_ps(p.bias.as_ptr().add(c));
            let m = mask(j);
            for (r, row) in acc.iter().enumerate() {
                let v = if last {
                    _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(row[j], bias), lo), hi)
                } else {
                    row[j]
                };
                let dst = out.add(r * out_stride + c);
                if m == 0xFFFF {
                    _mm512_storeu_ps(dst, v);
                } else {
                    _mm512_mask_storeu_ps(dst, m, v);
                }
            }
        }
    }
}

/// The most bytes of packed weights a tile's channel blocks read over `k`
/// before `k` is blocked: a panel that stays in L1 while the row strips of
/// a [`SGEMM_MC`]-row chunk pass over it. Without blocking, each 6-row strip
/// of a GEMM whose panel is larger streams it from L2 (ResNet's 3x3x64
/// layers: 72 KiB per strip).
const SGEMM_PANEL_BYTES: usize = 32 * 1024;
/// Rows per chunk when `k` is blocked: the chunk's outputs and rows stay in
/// L2 while the channel groups and blocks of `k` pass over them.
const SGEMM_MC: usize = 8 * MR;

/// Tiles of `R` rows over the channel blocks `jbs`, [`NB`] at a time.
#[target_feature(enable = "avx512f")]
unsafe fn sgemm_rows<const R: usize, const WINDOW: bool>(
    jbs: Range<usize>,
    p: &SGemm,
    a: *const f32,
    a_stride: usize,
    runs: Runs,
    kr: Range<usize>,
    (out, out_stride): (*mut f32, usize),
) {
    unsafe {
        let mut jb = jbs.start;
        while jb + NB <= jbs.end {
            sgemm_tile::<R, NB, WINDOW>(p, a, a_stride, runs, kr.clone(), jb, (out, out_stride));
            jb += NB;
        }
        match jbs.end - jb {
            3 => sgemm_tile::<R, 3, WINDOW>(p, a, a_stride, runs, kr, jb, (out, out_stride)),
            2 => sgemm_tile::<R, 2, WINDOW>(p, a, a_stride, runs, kr, jb, (out, out_stride)),
            1 => sgemm_tile::<R, 1, WINDOW>(p, a, a_stride, runs, kr, jb, (out, out_stride)),
            _ => {}
        }
    }
}

/// `m` rows of `a` (row `r` at `a + r * a_stride`, its values in `runs`
/// when `WINDOW`). Row strips go first, each over all channel blocks, unless
/// the weights of a tile exceed [`SGEMM_PANEL_BYTES`]: then per chunk of
/// [`SGEMM_MC`] rows, per group of [`NB`] channel blocks, per block of `k`,
/// every strip of the chunk. Window GEMMs take `k` whole.
#[target_feature(enable = "avx512f")]
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
        debug_assert_eq!(runs.len(), p.k);
        debug_assert!(m == 0 || a.len() >= (m - 1) * a_stride + runs.span());
        debug_assert!(m == 0 || out.len() >= (m - 1) * out_stride + p.n);
        let (a, o) = (a.as_ptr(), out.as_mut_ptr());
        let k = p.k;
        let blocks = p.np / 16;
        let panel = k * 16 * blocks.min(NB) * 4;
        let kblocks = if WINDOW || m <= MR {
            1
        } else {
            panel.div_ceil(SGEMM_PANEL_BYTES).max(1)
        };
        let kc = k.div_ceil(kblocks).max(1);
        let chunk = if kblocks == 1 { m } else { SGEMM_MC };
        let strips = |r0: usize, end: usize, jbs: Range<usize>, kr: Range<usize>| {
            let mut r = r0;
            while r < end {
                let rows = (end - r).min(MR);
                let (a, o) = (a.add(r * a_stride), o.add(r * out_stride));
                let (kr, dst) = (kr.clone(), (o, out_stride));
                match rows {
                    6 => sgemm_rows::<6, WINDOW>(jbs.clone(), p, a, a_stride, runs, kr, dst),
                    5 => sgemm_rows::<5, WINDOW>(jbs.clone(), p, a, a_stride, runs, kr, dst),
                    4 => sgemm_rows::<4, WINDOW>(jbs.clone(), p, a, a_stride, runs, kr, dst),
                    3 => sgemm_rows::<3, WINDOW>(jbs.clone(), p, a, a_stride, runs, kr, dst),
                    2 => sgemm_rows::<2, WINDOW>(jbs.clone(), p, a, a_stride, runs, kr, dst),
                    _ => sgemm_rows::<1, WINDOW>(jbs.clone(), p, a, a_stride, runs, kr, dst),
                }
                r += rows;
            }
        };
        if kblocks == 1 {
            strips(0, m, 0..blocks, 0..k);
            return;
        }
        for r0 in (0..m).step_by(chunk) {
            let end = (r0 + chunk).min(m);
            for jb in (0..blocks).step_by(NB) {
                let jbs = jb..(jb + NB).min(blocks);
                for k0 in (0..k).step_by(kc) {
                    strips(r0, end, jbs.clone(), k0..(k0 + kc).min(k));
                }
            }
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
/// from the window's top-left input element (0 past the last tap: an odd
/// window's last pair reads the first tap again, with zero weights).
struct DwWindow {
    cols: Range<usize>,
    off: [usize; MAX_DW_TAPS],
    /// Per tap: its filter row, and its element offset within a row of input.
    trow: [usize; MAX_DW_TAPS],
    tcol: [usize; MAX_DW_TAPS],
}

impl DwWindow {
    fn new(p: &crate::kernels::pack::ConvShape) -> Self {
        let [_, _, iw, c] = p.shapes[0];
        let [_, kh, kw, _] = p.shapes[1];
        let ow = p.shapes[2][2];
        let g = &p.g;
        let mut off = [0usize; MAX_DW_TAPS];
        let mut trow = [0usize; MAX_DW_TAPS];
        let mut tcol = [0usize; MAX_DW_TAPS];
        for ty in 0..kh {
            for tx in 0..kw {
                off[ty * kw + tx] = (ty * g.dilation_h * iw + tx * g.dilation_w) * c;
                trow[ty * kw + tx] = ty;
                tcol[ty * kw + tx] = tx * g.dilation_w * c;
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
            trow,
            tcol,
        }
    }
}

/// Bytes of the stack tile [`DwTile`] copies a strip of input into: fits
/// in L1 with room for the weights and the output.
const DW_TILE: usize = 32 * 1024;
/// `i16` values of [`DW_TILE`].
const DW_TILE_I16: usize = DW_TILE / 2;

/// How an int8 depthwise layer with padding runs through a stack tile: per
/// channel block of 32 and strip of `strip` output rows, the input rows the
/// strip reads are copied into a tile `pw` pixels wide with the zero point
/// around them, widened to `i16` (64 bytes per pixel); then every output
/// pixel, border or not, reads its taps at the same offsets `off` from its
/// window's corner. No per-pixel border tests, the block's channels sit in
/// whole cache lines, and each input value is widened once per strip
/// rather than once per tap that reads it (the widening and the pairing
/// of taps share one shuffle port: the pairing alone is half the work).
/// (Measured on MobileNetV2's 14x14x576 3x3 layer: the border
/// pixels had made it 47% slower than the same layer unpadded; through the
/// tile it runs in 36 instead of 59 us, MobileNetV2 int8 7% faster.)
struct DwTile {
    /// Tile width in pixels: what the output row's windows span.
    pw: usize,
    /// Input rows one window spans.
    eh: usize,
    /// Output rows per strip (at least 1).
    strip: usize,
    /// Per tap, its `i16` offset in the tile from the window's corner
    /// (`off[taps]` = 0, for the zero-weight partner of an odd last tap).
    off: [usize; MAX_DW_TAPS + 1],
}

impl DwTile {
    /// `None` when the layer has no padding (the direct path has no border
    /// then) or when one window row's strip doesn't fit [`DW_TILE`].
    fn new(p: &crate::kernels::pack::ConvShape) -> Option<Self> {
        let [_, ih, iw, _] = p.shapes[0];
        let [_, kh, kw, _] = p.shapes[1];
        let [_, oh, ow, _] = p.shapes[2];
        let g = &p.g;
        let eh = (kh - 1) * g.dilation_h + 1;
        let ew = (kw - 1) * g.dilation_w + 1;
        let pw = (ow - 1) * g.stride_w + ew;
        let th = (oh - 1) * g.stride_h + eh;
        let padded = g.pad_top > 0 || g.pad_left > 0 || th > ih + g.pad_top || pw > iw + g.pad_left;
        let rows_fit = DW_TILE / (pw * 64);
        if !padded || rows_fit < eh || kh * kw > MAX_DW_TAPS {
            return None;
        }
        let strip = (rows_fit - eh) / g.stride_h + 1;
        // Strided layers only when one strip holds the whole image: on
        // MobileNetV2's 112->56 and 56->28 layers (padded at the bottom and
        // right only, large inputs) the strips' copies made them 31% and
        // 12% slower; the 14->7 one gains. (The 28->14 one gained from the
        // int8 tile, which held it whole; the i16 tile holds 8 of its 14
        // output rows, so it takes the direct path: 0.017 ms through the
        // int8 tile, 0.015 direct. A 64 KiB tile, which holds it, measured
        // no faster on the model's other depthwise layers.)
        if (g.stride_h > 1 || g.stride_w > 1) && strip < oh {
            return None;
        }
        let mut off = [0usize; MAX_DW_TAPS + 1];
        for ty in 0..kh {
            for tx in 0..kw {
                off[ty * kw + tx] = (ty * g.dilation_h * pw + tx * g.dilation_w) * 32;
            }
        }
        Some(DwTile { pw, eh, strip, off })
    }

    /// Copies `rows` input rows from row `iy0` of image `b` (rows and
    /// columns outside the image: the input zero point), channels
    /// `c0..c0 + 32` (those beyond `m` also the zero point), into `tile`
    /// as `i16`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn fill(
        &self,
        p: &QDw,
        tile: *mut i16,
        input: *const i8,
        (b, iy0, rows): (usize, isize, usize),
        c0: usize,
        m: u32,
    ) {
        unsafe {
            let [_, ih, iw, c] = p.shape.shapes[0];
            let zp8 = _mm256_set1_epi8(p.pad[0]);
            let zpv = _mm512_set1_epi16(i16::from(p.pad[0]));
            let pl = p.shape.g.pad_left;
            // Tile columns [x0, x1) hold image columns [0, x1 - pl).
            let x0 = pl.min(self.pw);
            let x1 = (pl + iw).min(self.pw);
            for j in 0..rows {
                let iy = iy0 + j as isize;
                let dst = tile.add(j * self.pw * 32);
                let store =
                    |x: usize, v: __m512i| _mm512_storeu_si512(dst.add(x * 32) as *mut _, v);
                if !(0..ih as isize).contains(&iy) {
                    (0..self.pw).for_each(|x| store(x, zpv));
                    continue;
                }
                let src = input.add((b * ih + iy as usize) * iw * c + c0);
                (0..x0).for_each(|x| store(x, zpv));
                for x in x0..x1 {
                    let at = src.add((x - pl) * c);
                    let v = if m == u32::MAX {
                        _mm256_loadu_si256(at as *const __m256i)
                    } else {
                        _mm256_mask_loadu_epi8(zp8, m, at)
                    };
                    store(x, _mm512_cvtepi8_epi16(v));
                }
                (x1..self.pw).for_each(|x| store(x, zpv));
            }
        }
    }
}

/// Stores 32 requantized channels: the two halves [`dw_pair`] leaves them
/// in (`lo`: channels `8L..8L+4` of each 128-bit lane `L`, `hi`: `8L+4..8L+8`)
/// pack back into channel order. Saturating to i16, adding the zero point
/// (saturating), saturating to i8 and then clamping equals clamping the i32
/// `v + zp`, because the activation range lies inside i8.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn store32_packed(
    dst: *mut i8,
    lo: __m512i,
    hi: __m512i,
    zp: __m512i,
    min: __m256i,
    max: __m256i,
    m: u32,
) {
    unsafe {
        let v = _mm512_adds_epi16(_mm512_packs_epi32(lo, hi), zp);
        let b = _mm256_min_epi8(_mm256_max_epi8(_mm512_cvtsepi16_epi8(v), min), max);
        if m == u32::MAX {
            _mm256_storeu_si256(dst as *mut __m256i, b);
        } else {
            _mm256_mask_storeu_epi8(dst, m, b);
        }
    }
}

/// The 16 i32 lanes of channels `c..c + 32` in the order [`dw_pair`]
/// accumulates them: `lo` = channels `0..4, 8..12, 16..20, 24..28` (plus
/// `c`), `hi` the others.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn dw_order<T>(v: *const T, c: usize) -> (__m512i, __m512i) {
    unsafe {
        let a = _mm512_loadu_si512(v.add(c) as *const _);
        let b = _mm512_loadu_si512(v.add(c + 16) as *const _);
        (
            _mm512_shuffle_i32x4::<0b10_00_10_00>(a, b),
            _mm512_shuffle_i32x4::<0b11_01_11_01>(a, b),
        )
    }
}

/// int8 depthwise convolution, 32 channels at a time in 16-bit: two taps'
/// inputs are interleaved so that one `vpdpwssd` (or `vpmaddwd` + add)
/// multiplies and sums a pair of taps per channel, half the multiplies of a
/// 32-bit lane per tap. Per output pixel, each tap reads the image or, where
/// the window hangs over the border, `QDw::pad` (the input zero point, which
/// adds nothing once the zero-point is folded into `bias_full`), so every
/// pixel takes the same path. Channel blocks are the outer loop so a block's
/// weights and requantization constants stay in registers along the row.
macro_rules! qdw_kernel {
    ($name:ident, $features:literal, |$acc:ident, $x:ident, $w:ident| $madd:expr) => {
        #[target_feature(enable = $features)]
        unsafe fn $name(p: &QDw, input: &[i8], out: DwOut<i8>) {
            /// The `np` pairs of taps (`tap(2q)`, `tap(2q + 1)`: each tap's 32
            /// channels widened to `i16`) of one output pixel, starting from
            /// `acc`.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn dw_pairs(
                wv: &[(__m512i, __m512i)],
                np: usize,
                tap: impl Fn(usize) -> __m512i,
                acc: (__m512i, __m512i),
            ) -> (__m512i, __m512i) {
                let madd = |$acc: __m512i, $x: __m512i, $w: __m512i| $madd;
                let (mut lo, mut hi) = acc;
                for (q, &(w_lo, w_hi)) in wv[..np].iter().enumerate() {
                    let (xa, xb) = (tap(2 * q), tap(2 * q + 1));
                    lo = madd(lo, _mm512_unpacklo_epi16(xa, xb), w_lo);
                    hi = madd(hi, _mm512_unpackhi_epi16(xa, xb), w_hi);
                }
                (lo, hi)
            }

            /// [`dw_pairs`] on the image: `src(t)` points at tap `t`'s pixel,
            /// whose 32 channels from `c0` (those in `m32`) are widened here.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn dw_taps<const FULL: bool>(
                wv: &[(__m512i, __m512i)],
                np: usize,
                src: impl Fn(usize) -> *const i8,
                c0: usize,
                m32: u32,
                acc: (__m512i, __m512i),
            ) -> (__m512i, __m512i) {
                unsafe {
                    let load = |t: usize| {
                        let ptr = src(t).add(c0);
                        _mm512_cvtepi8_epi16(if FULL {
                            _mm256_loadu_si256(ptr as *const __m256i)
                        } else {
                            _mm256_maskz_loadu_epi8(m32, ptr)
                        })
                    };
                    dw_pairs(wv, np, load, acc)
                }
            }

            /// [`dw_pairs`] on a widened tile: `src(t)` points at tap `t`'s
            /// 32 channels as `i16`.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn dw_taps16(
                wv: &[(__m512i, __m512i)],
                np: usize,
                src: impl Fn(usize) -> *const i16,
                acc: (__m512i, __m512i),
            ) -> (__m512i, __m512i) {
                unsafe { dw_pairs(wv, np, |t| _mm512_loadu_si512(src(t) as *const _), acc) }
            }

            /// Output rows `rows` (the first at `outp`) of 32 channels from
            /// `c0`, for windows of `2 * P` or `2 * P - 1` taps (`P` = 0: any
            /// window, a slower loop). The block's weights and constants are
            /// set up once for all its rows.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn block<const P: usize, const FULL: bool, const MODE: u8>(
                p: &QDw,
                input: *const i8,
                outp: *mut i8,
                rows: Range<usize>,
                win: &DwWindow,
                tile: Option<&DwTile>,
                (c0, end): (usize, usize),
            ) {
                unsafe {
                    let [_, ih, iw, c] = p.shape.shapes[0];
                    let [_, kh, kw, _] = p.shape.shapes[1];
                    let ow = p.shape.shapes[2][2];
                    let g = &p.shape.g;
                    let taps = kh * kw;
                    let pairs = if P == 0 { taps.div_ceil(2) } else { P };
                    debug_assert_eq!(pairs, taps.div_ceil(2));
                    // Channels `c0..end` of the part, 32 at most.
                    let n = (end - c0).min(32);
                    let m32 = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
                    // Weights of taps t and t + 1 interleaved per channel (a
                    // missing last tap has zero weights).
                    let mut wv =
                        [(_mm512_setzero_si512(), _mm512_setzero_si512()); MAX_DW_TAPS / 2];
                    for (q, v) in wv[..pairs].iter_mut().enumerate() {
                        let t = 2 * q;
                        let wa = _mm512_maskz_loadu_epi16(m32, p.w16.as_ptr().add(t * p.cp + c0));
                        let wb = if t + 1 < taps {
                            _mm512_maskz_loadu_epi16(m32, p.w16.as_ptr().add((t + 1) * p.cp + c0))
                        } else {
                            _mm512_setzero_si512()
                        };
                        *v = (_mm512_unpacklo_epi16(wa, wb), _mm512_unpackhi_epi16(wa, wb));
                    }
                    let bias = dw_order(p.bias_full.as_ptr(), c0);
                    let float = !p.fscale.is_empty();
                    let (fs_lo, fs_hi) = if float {
                        dw_order(p.fscale.as_ptr(), c0)
                    } else {
                        (_mm512_setzero_si512(), _mm512_setzero_si512())
                    };
                    let (m0, m1) = dw_order(p.mult.as_ptr(), c0);
                    let (l0, l1) = dw_order(p.lshift.as_ptr(), c0);
                    let (r0, r1) = dw_order(p.rshift.as_ptr(), c0);
                    let (rq_lo, rq_hi) = (Rq16::new(m0, l0, r0), Rq16::new(m1, l1, r1));
                    let zp = _mm512_set1_epi16(p.out_zp as i16);
                    let amin = _mm256_set1_epi8(p.act_min as i8);
                    let amax = _mm256_set1_epi8(p.act_max as i8);
                    let pad = p.pad.as_ptr();
                    let oh = p.shape.shapes[2][1];
                    let first = rows.start;
                    let finish = |lo: __m512i, hi: __m512i, dst: *mut i8| {
                        let (lo, hi) = if float {
                            (
                                requant16_float(lo, _mm512_castsi512_ps(fs_lo)),
                                requant16_float(hi, _mm512_castsi512_ps(fs_hi)),
                            )
                        } else {
                            (requant16::<MODE>(lo, &rq_lo), requant16::<MODE>(hi, &rq_hi))
                        };
                        store32_packed(dst, lo, hi, zp, amin, amax, m32);
                    };
                    if let (Some(t), true) = (tile, P != 0) {
                        let mut buf = core::mem::MaybeUninit::<[i16; DW_TILE_I16]>::uninit();
                        let buf = buf.as_mut_ptr() as *mut i16;
                        let mut r = rows.start;
                        while r < rows.end {
                            // A strip stays inside one image of the batch.
                            let (b, oy) = (r / oh, r % oh);
                            let n = t.strip.min(rows.end - r).min(oh - oy);
                            let iy0 = (oy * g.stride_h) as isize - g.pad_top as isize;
                            let th = (n - 1) * g.stride_h + t.eh;
                            t.fill(p, buf, input, (b, iy0, th), c0, m32);
                            for i in 0..n {
                                let out = outp.add((r + i - first) * ow * c + c0);
                                let row = buf.add(i * g.stride_h * t.pw * 32);
                                for ox in 0..ow {
                                    let base = row.add(ox * g.stride_w * 32);
                                    let (lo, hi) =
                                        dw_taps16(&wv, pairs, |k| base.add(t.off[k]), bias);
                                    finish(lo, hi, out.add(ox * c));
                                }
                            }
                            r += n;
                        }
                        return;
                    }
                    let mut src = [pad; MAX_DW_TAPS + 1];
                    for r in rows {
                        let (b, oy) = (r / oh, r % oh);
                        let out = outp.add((r - first) * ow * c);
                        let iy0 = (oy * g.stride_h) as isize - g.pad_top as isize;
                        let ky = valid_taps(oy, g.stride_h, g.dilation_h, g.pad_top, kh, ih);
                        let row_full = ky.len() == kh;
                        // Each filter row's input row, or the zero-point row
                        // `pad` (a whole input row long) where it is outside.
                        let mut rowbase = [pad; MAX_DW_TAPS];
                        for (ty, rb) in rowbase[..kh].iter_mut().enumerate() {
                            let iy = iy0 + (ty * g.dilation_h) as isize;
                            if (0..ih as isize).contains(&iy) {
                                *rb = input.add((b * ih + iy as usize) * iw * c);
                            }
                        }
                        for ox in 0..ow {
                            let (lo, hi) = if row_full && win.cols.contains(&ox) {
                                let ix0 = ox * g.stride_w - g.pad_left;
                                let base = input.add(((b * ih + iy0 as usize) * iw + ix0) * c);
                                let off = &win.off;
                                // The last odd tap's partner (zero weights) reads off[taps] = 0.
                                dw_taps::<FULL>(&wv, pairs, |t| base.add(off[t]), c0, m32, bias)
                            } else if win.cols.contains(&ox) {
                                // Rows above or below the image, columns inside.
                                let x = (ox * g.stride_w - g.pad_left) * c;
                                for t in 0..=taps.min(MAX_DW_TAPS - 1) {
                                    src[t] = rowbase[win.trow[t]].add(x + win.tcol[t]);
                                }
                                dw_taps::<FULL>(&wv, pairs, |t| src[t], c0, m32, bias)
                            } else {
                                let ix0 = (ox * g.stride_w) as isize - g.pad_left as isize;
                                for ty in 0..kh {
                                    let iy = iy0 + (ty * g.dilation_h) as isize;
                                    for tx in 0..kw {
                                        let ix = ix0 + (tx * g.dilation_w) as isize;
                                        let inside = (0..ih as isize).contains(&iy)
                                            && (0..iw as isize).contains(&ix);
                                        src[ty * kw + tx] = if inside {
                                            input.add(
                                                ((b * ih + iy as usize) * iw + ix as usize) * c,
                                            )
                                        } else {
                                            pad
                                        };
                                    }
                                }
                                dw_taps::<FULL>(&wv, pairs, |t| src[t], c0, m32, bias)
                            };
                            finish(lo, hi, out.add(ox * c + c0));
                        }
                    }
                }
            }

            unsafe {
                let [_, _, _, c] = p.shape.shapes[0];
                let [_, kh, kw, _] = p.shape.shapes[1];
                let pairs = (kh * kw).div_ceil(2);
                let mode = rq_mode(p.right_shifts_only, p.act_min, p.out_zp);
                let win = DwWindow::new(&p.shape);
                let tile = DwTile::new(&p.shape);
                let tile = tile.as_ref();
                debug_assert!(p.pad.len() >= c && p.w16.len() >= kh * kw * p.cp);
                let (inp, outp) = (input.as_ptr(), out.ptr());
                let chans = out.chans();
                for c0 in chans.clone().step_by(32) {
                    // A block ends at a multiple of 32 or at `c`, its last one.
                    let full = chans.end - c0 >= 32;
                    let rows = out.rows();
                    let part = (c0, chans.end);
                    // 3x3 and 5x5 windows unrolled, for the right-shift-only
                    // requantizations; anything else the general loop.
                    match (pairs, full, mode) {
                        (5, true, RQ_RIGHT_RELU) => {
                            block::<5, true, RQ_RIGHT_RELU>(p, inp, outp, rows, &win, tile, part)
                        }
                        (5, true, RQ_RIGHT) => {
                            block::<5, true, RQ_RIGHT>(p, inp, outp, rows, &win, tile, part)
                        }
                        (5, false, RQ_RIGHT_RELU) => {
                            block::<5, false, RQ_RIGHT_RELU>(p, inp, outp, rows, &win, tile, part)
                        }
                        (5, false, RQ_RIGHT) => {
                            block::<5, false, RQ_RIGHT>(p, inp, outp, rows, &win, tile, part)
                        }
                        (13, true, RQ_RIGHT_RELU) => {
                            block::<13, true, RQ_RIGHT_RELU>(p, inp, outp, rows, &win, tile, part)
                        }
                        (13, true, RQ_RIGHT) => {
                            block::<13, true, RQ_RIGHT>(p, inp, outp, rows, &win, tile, part)
                        }
                        (13, false, RQ_RIGHT_RELU) => {
                            block::<13, false, RQ_RIGHT_RELU>(p, inp, outp, rows, &win, tile, part)
                        }
                        (13, false, RQ_RIGHT) => {
                            block::<13, false, RQ_RIGHT>(p, inp, outp, rows, &win, tile, part)
                        }
                        _ => block::<0, false, RQ_ANY>(p, inp, outp, rows, &win, tile, part),
                    }
                }
            }
        }
    };
}

qdw_kernel!(qdw, "avx512f,avx512bw,avx512vl", |acc, x, w| {
    _mm512_add_epi32(acc, _mm512_madd_epi16(x, w))
});
qdw_kernel!(
    qdw_vnni,
    "avx512f,avx512bw,avx512vl,avx512vnni",
    |acc, x, w| { _mm512_dpwssd_epi32(acc, x, w) }
);

/// `P` adjacent interior pixels of f32 depthwise, one 16-channel block:
/// each tap's weights are loaded once for the `P` pixels, whose sums are
/// `P` independent FMA chains (one chain per pixel was latency-bound: a
/// 3x3 window is 9 dependent FMAs). Each pixel adds its taps in the
/// window's order, as the one-pixel loop does.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn sdw_pixels<const P: usize>(
    (base, step): (*const f32, usize),
    (wc, cp): (*const f32, usize),
    off: &[usize],
    m16: u16,
    epilogue: (__m512, __m512, __m512),
    (out, out_step): (*mut f32, usize),
) {
    unsafe {
        let mut acc = [_mm512_setzero_ps(); P];
        for (t, &o) in off.iter().enumerate() {
            let wv = _mm512_loadu_ps(wc.add(t * cp));
            for (j, a) in acc.iter_mut().enumerate() {
                let x = _mm512_maskz_loadu_ps(m16, base.add(j * step + o));
                *a = _mm512_fmadd_ps(x, wv, *a);
            }
        }
        let (bias, lo, hi) = epilogue;
        for (j, a) in acc.iter().enumerate() {
            let v = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(*a, bias), lo), hi);
            _mm512_mask_storeu_ps(out.add(j * out_step), m16, v);
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn sdw(p: &SDw, input: &[f32], out: DwOut<f32>) {
    unsafe {
        let [_, ih, iw, c] = p.shape.shapes[0];
        let [_, kh, kw, _] = p.shape.shapes[1];
        let [_, oh, ow, _] = p.shape.shapes[2];
        let g = &p.shape.g;
        let taps = kh * kw;
        let win = DwWindow::new(&p.shape);
        let lo = _mm512_set1_ps(p.act.0);
        let hi = _mm512_set1_ps(p.act.1);
        let (inp, outp, w) = (input.as_ptr(), out.ptr(), p.w.as_ptr());
        let rows = out.rows();
        let first = rows.start;
        // Channel blocks of 16; a part's channels start at a multiple of 16.
        let chans = out.chans();
        let blocks = chans.start / 16..chans.end.div_ceil(16);
        let mask = |c0: usize| lanes16(chans.end, c0);
        for row in rows {
            let (b, oy) = (row / oh, row % oh);
            let ky = valid_taps(oy, g.stride_h, g.dilation_h, g.pad_top, kh, ih);
            let row_full = ky.len() == kh;
            let out_row = outp.add((row - first) * ow * c);
            // Interior pixels, 8 (then 4, then 1) at a time.
            let inner = if row_full { win.cols.clone() } else { 0..0 };
            if !inner.is_empty() {
                let iy0 = oy * g.stride_h - g.pad_top;
                let step = g.stride_w * c;
                let mut ox = inner.start;
                while ox < inner.end {
                    let n = inner.end - ox;
                    let ix0 = ox * g.stride_w - g.pad_left;
                    let px = inp.add(((b * ih + iy0) * iw + ix0) * c);
                    for cb in blocks.clone() {
                        let c0 = cb * 16;
                        let bias = _mm512_loadu_ps(p.bias.as_ptr().add(c0));
                        let (src, wc) = ((px.add(c0), step), (w.add(c0), p.cp));
                        let dst = (out_row.add(ox * c + c0), c);
                        let (m16, e, off) = (mask(c0), (bias, lo, hi), &win.off[..taps]);
                        match n {
                            8.. => sdw_pixels::<8>(src, wc, off, m16, e, dst),
                            4.. => sdw_pixels::<4>(src, wc, off, m16, e, dst),
                            _ => sdw_pixels::<1>(src, wc, off, m16, e, dst),
                        }
                    }
                    ox += match n {
                        8.. => 8,
                        4.. => 4,
                        _ => 1,
                    };
                }
            }
            // Border pixels: their valid taps only, 4 channel blocks at a
            // time (independent chains), then single blocks.
            for ox in (0..ow).filter(|ox| !inner.contains(ox)) {
                let kx = valid_taps(ox, g.stride_w, g.dilation_w, g.pad_left, kw, iw);
                let mut cb = blocks.start;
                while cb < blocks.end {
                    let take = if blocks.end - cb >= 4 { 4 } else { 1 };
                    let edge = SdwEdge {
                        p,
                        inp,
                        at: (b, oy, ox),
                        taps: (ky.clone(), kx.clone()),
                        chans: cb * 16..chans.end,
                        epilogue: (lo, hi),
                    };
                    let dst = out_row.add(ox * c + cb * 16);
                    if take == 4 {
                        sdw_edge::<4>(&edge, dst);
                    } else {
                        sdw_edge::<1>(&edge, dst);
                    }
                    cb += take;
                }
            }
        }
    }
}

/// A border pixel of f32 depthwise over channels `chans` (see [`sdw_edge`]).
struct SdwEdge<'a> {
    p: &'a SDw,
    inp: *const f32,
    /// Batch, output row, output column.
    at: (usize, usize, usize),
    /// The filter rows and columns inside the image.
    taps: (Range<usize>, Range<usize>),
    /// From the first of its blocks to the part's last channel.
    chans: Range<usize>,
    epilogue: (__m512, __m512),
}

/// `B` 16-channel blocks of a border pixel: its valid taps in the window's
/// order, one independent chain per block.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn sdw_edge<const B: usize>(e: &SdwEdge, out: *mut f32) {
    unsafe {
        let p = e.p;
        let [_, ih, iw, c] = p.shape.shapes[0];
        let kw = p.shape.shapes[1][2];
        let g = &p.shape.g;
        let (b, oy, ox) = e.at;
        let c0 = e.chans.start;
        let mut m = [0u16; B];
        for (j, m) in m.iter_mut().enumerate() {
            *m = lanes16(e.chans.end, c0 + 16 * j);
        }
        let mut acc = [_mm512_setzero_ps(); B];
        for ty in e.taps.0.clone() {
            let iy = oy * g.stride_h + ty * g.dilation_h - g.pad_top;
            for tx in e.taps.1.clone() {
                let ix = ox * g.stride_w + tx * g.dilation_w - g.pad_left;
                let x = e.inp.add(((b * ih + iy) * iw + ix) * c + c0);
                let w = p.w.as_ptr().add((ty * kw + tx) * p.cp + c0);
                for (j, a) in acc.iter_mut().enumerate() {
                    let xv = _mm512_maskz_loadu_ps(m[j], x.add(16 * j));
                    *a = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w.add(16 * j)), *a);
                }
            }
        }
        let (lo, hi) = e.epilogue;
        for (j, a) in acc.iter().enumerate() {
            let bias = _mm512_loadu_ps(p.bias.as_ptr().add(c0 + 16 * j));
            let v = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(*a, bias), lo), hi);
            _mm512_mask_storeu_ps(out.add(16 * j), m[j], v);
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

/// One of an ADD's three requantizations, all lanes alike, in the
/// right-shift-only form of [`requant16`] ("high half of the 64-bit sum,
/// then `rs - 1` bits"). With `rs = 0` (the input with the larger scale
/// gets multiplier 0.5) the value is doubled first instead, so that the
/// plain `(p + 2^30) >> 31` is the high half of `2p + 2^31`; [`qadd`] checks
/// that the doubled values fit.
#[derive(Clone, Copy)]
struct UniformRq {
    /// Left shift applied before the multiply (TFLite's `left_shift`, plus
    /// one for `rs = 0`).
    pre: __m128i,
    mult: __m512i,
    round: __m512i,
    rs1: __m128i,
    /// The sign correction (`rs > 0` and not removed by a ReLU clamp).
    sign: bool,
}

impl UniformRq {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn new(multiplier: i32, shift: i32, pre: i32, sign: bool) -> Self {
        let rs = -shift;
        let (pre, round, rs1, sign) = if rs == 0 {
            (pre + 1, 1i64 << 31, 0, false)
        } else {
            (pre, (1i64 << 30) + (1i64 << (30 + rs)), rs - 1, sign)
        };
        UniformRq {
            pre: _mm_cvtsi32_si128(pre),
            mult: _mm512_set1_epi32(multiplier),
            round: _mm512_set1_epi64(round),
            rs1: _mm_cvtsi32_si128(rs1),
            sign,
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn apply(&self, x: __m512i) -> __m512i {
        let x = _mm512_sll_epi32(x, self.pre);
        let mut te = _mm512_add_epi64(_mm512_mul_epi32(x, self.mult), self.round);
        let xo = _mm512_shuffle_epi32::<0xF5>(x);
        let mut to = _mm512_add_epi64(_mm512_mul_epi32(xo, self.mult), self.round);
        if self.sign {
            let s = _mm512_srai_epi32::<31>(x);
            let c = _mm512_set1_epi64(-(1i64 << 31));
            te = _mm512_add_epi64(te, _mm512_and_si512(_mm512_shuffle_epi32::<0xA0>(s), c));
            to = _mm512_add_epi64(to, _mm512_and_si512(_mm512_shuffle_epi32::<0xF5>(s), c));
        }
        let high = _mm512_mask_shuffle_epi32::<0xF5>(to, 0x5555, te);
        _mm512_sra_epi32(high, self.rs1)
    }
}

/// An ADD input's requantization (after `left_shift`) in 32-bit lanes:
/// the input `x` is at most 9 bits, so with `T = 31 − left_shift + rs` TFLite's
/// two roundings are one `⌊(x·m + C) / 2^T⌋` (`C` = the high-half rounding
/// `2^(30−L)`, plus `2^(30−L+rs) − 2^(31−L)·[x<0]` for the rounding shift by
/// `rs > 0`), and with `m = mh·2^T + ml` that is `x·mh + ⌊(x·ml + C) / 2^T⌋`:
/// two `vpmulld` and no 64-bit products or lane shuffles. [`SmallRq::new`]
/// checks the bounds that keep every step inside `i32`.
#[derive(Clone, Copy)]
struct SmallRq {
    mh: __m512i,
    ml: __m512i,
    c: __m512i,
    t: __m128i,
    /// `-2^(31−L)` is added for negative inputs (`rs > 0`).
    sign: Option<__m128i>,
}

impl SmallRq {
    /// `None` outside the bounds that hold for inputs `|x| ≤ 256` (the
    /// caller's: int8 values plus offsets within ±128): `9 ≤ T ≤ 22` (so
    /// `x·mh` and `x·ml + C` fit in `i32`) and `m·2^L ≥ 2^30` (so the first
    /// rounding's result is negative when `x` is; at `m·2^L = 2^30` and
    /// `x = −1` it is 0, and both forms give 0).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn new(multiplier: i32, shift: i32, left_shift: i32) -> Option<Self> {
        let (m, l, rs) = (i64::from(multiplier), left_shift, -shift);
        let t = 31 - l + rs;
        if !(1..=30).contains(&l) || !(0..=31).contains(&rs) || !(9..=22).contains(&t) {
            return None;
        }
        if m < 0 || m << l < 1 << 30 {
            return None;
        }
        let c = (1i64 << (30 - l)) + if rs > 0 { 1i64 << (30 - l + rs) } else { 0 };
        Some(SmallRq {
            mh: _mm512_set1_epi32((m >> t) as i32),
            ml: _mm512_set1_epi32((m & ((1 << t) - 1)) as i32),
            c: _mm512_set1_epi32(c as i32),
            t: _mm_cvtsi32_si128(t),
            sign: (rs > 0).then(|| _mm_cvtsi32_si128(31 - l)),
        })
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn apply(&self, x: __m512i) -> __m512i {
        let mut low = _mm512_add_epi32(_mm512_mullo_epi32(x, self.ml), self.c);
        if let Some(s) = self.sign {
            // -2^(31-L) where x < 0: the sign mask shifted left.
            low = _mm512_add_epi32(low, _mm512_sll_epi32(_mm512_srai_epi32::<31>(x), s));
        }
        _mm512_add_epi32(
            _mm512_mullo_epi32(x, self.mh),
            _mm512_sra_epi32(low, self.t),
        )
    }
}

/// Same-shape int8 ADD/SUB: TFLite's `AddFunc` on 16 lanes. Parameters as
/// `AddI8Params::new` makes them (right shifts only, `left_shift` 20,
/// offsets within ±128) take [`UniformRq`]; anything else the general
/// requantization.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn qadd(p: &AddI8Params, a: &[i8], b: &[i8], out: &mut [i8]) {
    // |x + offset| <= 255 and |sum| < 2^30 even doubled after `left_shift`.
    let small = |off: i32| (-128..=128).contains(&off);
    let shift_ok = |s: i32| (-31..=0).contains(&s);
    let uniform = (0..=21).contains(&p.left_shift)
        && small(p.input1_offset)
        && small(p.input2_offset)
        && shift_ok(p.input1_shift)
        && shift_ok(p.input2_shift)
        && shift_ok(p.output_shift)
        && p.input1_multiplier >= 0
        && p.input2_multiplier >= 0
        && p.output_multiplier >= 0;
    unsafe {
        if uniform {
            qadd_uniform(p, a, b, out)
        } else {
            qadd_any(p, a, b, out)
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn qadd_uniform(p: &AddI8Params, a: &[i8], b: &[i8], out: &mut [i8]) {
    unsafe {
        debug_assert!(a.len() == out.len() && b.len() == out.len());
        let small = |m, s| SmallRq::new(m, s, p.left_shift);
        if let (Some(q1), Some(q2)) = (
            small(p.input1_multiplier, p.input1_shift),
            small(p.input2_multiplier, p.input2_shift),
        ) {
            return qadd_inputs(p, a, b, out, |x| q1.apply(x), |y| q2.apply(y));
        }
        let q1 = UniformRq::new(p.input1_multiplier, p.input1_shift, p.left_shift, true);
        let q2 = UniformRq::new(p.input2_multiplier, p.input2_shift, p.left_shift, true);
        qadd_inputs(p, a, b, out, |x| q1.apply(x), |y| q2.apply(y))
    }
}

/// [`qadd_uniform`]'s loop with the inputs' requantizations `r1`, `r2`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn qadd_inputs(
    p: &AddI8Params,
    a: &[i8],
    b: &[i8],
    out: &mut [i8],
    r1: impl Fn(__m512i) -> __m512i,
    r2: impl Fn(__m512i) -> __m512i,
) {
    unsafe {
        let off1 = _mm512_set1_epi32(p.input1_offset);
        let off2 = _mm512_set1_epi32(p.input2_offset);
        let qo = UniformRq::new(
            p.output_multiplier,
            p.output_shift,
            0,
            needs_sign(p.act_min, p.output_offset),
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
            let x = r1(_mm512_add_epi32(x, off1));
            let y = r2(_mm512_add_epi32(y, off2));
            let s = if p.subtract {
                _mm512_sub_epi32(x, y)
            } else {
                _mm512_add_epi32(x, y)
            };
            let v = _mm512_add_epi32(qo.apply(s), zp);
            let v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
            _mm_mask_storeu_epi8(out.as_mut_ptr().add(i), m, _mm512_cvtepi32_epi8(v));
            i += 16;
        }
    }
}

/// [`qadd`] for any parameters, through the general requantization.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn qadd_any(p: &AddI8Params, a: &[i8], b: &[i8], out: &mut [i8]) {
    unsafe {
        debug_assert!(a.len() == out.len() && b.len() == out.len());
        let off1 = _mm512_set1_epi32(p.input1_offset);
        let off2 = _mm512_set1_epi32(p.input2_offset);
        let lsh = _mm512_set1_epi32(p.left_shift);
        let zero = _mm512_setzero_si512();
        let q1 = Rq16::new(
            _mm512_set1_epi32(p.input1_multiplier),
            zero,
            _mm512_set1_epi32(-p.input1_shift),
        );
        let q2 = Rq16::new(
            _mm512_set1_epi32(p.input2_multiplier),
            zero,
            _mm512_set1_epi32(-p.input2_shift),
        );
        let qo = Rq16::new(
            _mm512_set1_epi32(p.output_multiplier),
            zero,
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
            let x = requant16::<RQ_ANY>(_mm512_sllv_epi32(_mm512_add_epi32(x, off1), lsh), &q1);
            let y = requant16::<RQ_ANY>(_mm512_sllv_epi32(_mm512_add_epi32(y, off2), lsh), &q2);
            let s = if p.subtract {
                _mm512_sub_epi32(x, y)
            } else {
                _mm512_add_epi32(x, y)
            };
            let v = _mm512_add_epi32(requant16::<RQ_ANY>(s, &qo), zp);
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
    unsafe {
        match rq_mode(p.right_shifts_only, p.act_min, p.out_zp) {
            RQ_RIGHT_RELU => qgemm::<RQ_RIGHT_RELU>(p, a, a_stride, m, out, out_stride),
            RQ_RIGHT => qgemm::<RQ_RIGHT>(p, a, a_stride, m, out, out_stride),
            _ => qgemm::<RQ_ANY>(p, a, a_stride, m, out, out_stride),
        }
    }
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
    unsafe { sgemm::<false>(p, a, a_stride, Runs::contiguous(p.k), m, out, out_stride) }
}
/// Safe entry of the window GEMM ([`crate::kernels::pack::SGemmWindowFn`]).
pub(super) fn avx512_sgemm_window_f32(
    p: &SGemm,
    a: &[f32],
    a_stride: usize,
    runs: Runs,
    m: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    p.assert_window_rows((a, a_stride), runs, m, (out, out_stride));
    // SAFETY: see the note above; the slices hold what it reads and writes.
    unsafe { sgemm::<true>(p, a, a_stride, runs, m, out, out_stride) }
}
pub(super) fn avx512vnni_qdw_i8(p: &QDw, input: &[i8], out: DwOut<i8>) {
    out.check(&p.shape, input);
    // SAFETY: see the note above (VNNI included); `DwOut` points at the
    // part's rows of an output of `p`'s shape.
    unsafe { qdw_vnni(p, input, out) }
}
pub(super) fn avx512_qdw_i8(p: &QDw, input: &[i8], out: DwOut<i8>) {
    out.check(&p.shape, input);
    // SAFETY: see the note above.
    unsafe { qdw(p, input, out) }
}
pub(super) fn avx512_sdw_f32(p: &SDw, input: &[f32], out: DwOut<f32>) {
    out.check(&p.shape, input);
    // SAFETY: see the note above.
    unsafe { sdw(p, input, out) }
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

/// Swish on 16 lanes, `x / (1 + exp(-x))` as the reference computes it
/// ([`crate::kernels::reference::activation::swish_f32`]: `exp` by the same range reduction and Taylor
/// polynomial) but with FMA, `vscalefps` for the power of two, and the
/// division as a 14-bit reciprocal with one Newton step: within a few ulp
/// of the reference (contract-tested). The division and the polynomial
/// made it compute-bound, not memory-bound: EfficientNet-B0's 49 swishes
/// took 6.1 ms of 18 on the baseline build's 4 lanes, 2.8 ms as the
/// reference on 16, then this.
pub fn avx512_swish_f32(input: &[f32], output: &mut [f32]) {
    assert_eq!(input.len(), output.len(), "swish lengths");
    // SAFETY: the table holds this kernel only when the CPU has AVX-512F;
    // every access is within the slices (masked for the tail).
    unsafe { swish_f32(input, output) }
}

#[target_feature(enable = "avx512f")]
unsafe fn swish_f32(input: &[f32], output: &mut [f32]) {
    unsafe { map16(input, output, |x| swish16(x)) }
}

/// `output[i] = f(input[i])`, 16 lanes at a time, the tail masked.
///
/// # Safety
/// `input` and `output` have one length (every access is within them).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn map16(input: &[f32], output: &mut [f32], f: impl Fn(__m512) -> __m512) {
    let n = input.len();
    let mut i = 0;
    while i < n {
        let m: __mmask16 = if n - i >= 16 {
            0xffff
        } else {
            ((1u32 << (n - i)) - 1) as u16
        };
        unsafe {
            let x = _mm512_maskz_loadu_ps(m, input.as_ptr().add(i));
            _mm512_mask_storeu_ps(output.as_mut_ptr().add(i), m, f(x));
        }
        i += 16;
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn swish16(x: __m512) -> __m512 {
    const RNE: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    let c = _mm512_set1_ps;
    // exp(z), z = -x clamped where the result is 0 or ∞ in f32 anyway (a
    // NaN x stays NaN through the final product).
    let z = _mm512_min_ps(_mm512_max_ps(_mm512_sub_ps(c(0.0), x), c(-100.0)), c(100.0));
    let k = _mm512_roundscale_ps::<RNE>(_mm512_mul_ps(z, c(core::f32::consts::LOG2_E)));
    let r = _mm512_fnmadd_ps(k, c(0.693_145_75), z);
    let r = _mm512_fnmadd_ps(k, c(1.428_606_8e-6), r);
    let mut p = c(1.0 / 720.0);
    for coef in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = _mm512_fmadd_ps(p, r, c(coef));
    }
    let d = _mm512_add_ps(c(1.0), _mm512_scalef_ps(p, k));
    // x / d: reciprocal estimate, one Newton step.
    let e = _mm512_rcp14_ps(d);
    let e = _mm512_fmadd_ps(e, _mm512_fnmadd_ps(d, e, c(1.0)), e);
    let y = _mm512_mul_ps(x, e);
    // Below -88 the reference gives +0 (the exact value is under 1e-36).
    let tiny = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, c(-88.0));
    _mm512_mask_blend_ps(tiny, y, _mm512_setzero_ps())
}

/// Same-shape f32 ADD/SUB/MUL/MAXIMUM/MINIMUM with a fused activation: the
/// reference's loop ([`binary_same_f32`]) compiled for 16 lanes, the same
/// IEEE operations per element, so the same values (contract-tested).
pub fn avx512_binary_f32(
    op: BinaryOp,
    act: crate::quant::Activation,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
) {
    #[target_feature(enable = "avx512f")]
    fn wide(op: BinaryOp, act: crate::quant::Activation, a: &[f32], b: &[f32], out: &mut [f32]) {
        binary_same_f32(op, act, a, b, out)
    }
    // SAFETY: the table holds this kernel only when the CPU has AVX-512F.
    unsafe { wide(op, act, a, b, out) }
}

/// BATCH_MATMUL rows on 16-lane registers: the portable blocked kernel
/// ([`crate::kernels::matmul::matmul_rows_f32`]) compiled for AVX-512F in
/// 8 × 32 tiles (16 of the 32 zmm registers accumulate). Same products and
/// sums in the same order, so bit-identical to the reference.
pub fn avx512_matmul_f32(a: &[f32], b: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    #[target_feature(enable = "avx512f")]
    fn wide(a: &[f32], b: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
        crate::kernels::matmul::matmul_rows_f32::<8, 32>(a, b, out, rows, k, n)
    }
    // SAFETY: the table holds this kernel only when the CPU has AVX-512F;
    // the body is safe code (its slices are bounds-checked).
    unsafe { wide(a, b, out, rows, k, n) }
}

/// Erf on 16 lanes: the reference's branch-free polynomial
/// ([`crate::kernels::reference::activation::erf_f32`]) compiled for
/// AVX-512F. Without FMA contraction it is the same arithmetic, so the same
/// results; on the baseline build's 4 lanes Swin-T's erfs took 19% of its
/// time.
pub fn avx512_erf_f32(input: &[f32], output: &mut [f32]) {
    #[target_feature(enable = "avx512f")]
    fn wide(input: &[f32], output: &mut [f32]) {
        crate::kernels::reference::activation::erf_f32(input, output)
    }
    // SAFETY: the table holds this kernel only when the CPU has AVX-512F;
    // the body is safe code.
    unsafe { wide(input, output) }
}

/// Exact GELU on 16 lanes: the reference's method
/// ([`crate::kernels::reference::activation::gelu_f32`]: erf's polynomial
/// below 0.9, erfc as `exp(-a² + g(a))` above, `a²` split exactly) with FMA
/// (the exact square's error is one `fmsub`), `vscalefps` for `exp`'s power
/// of two and the tail's division as a 14-bit reciprocal with one Newton
/// step. Within 24 ulp of the f64 formula, as the reference (contract-
/// tested; 4.1 measured); 0.82 ns per value against 1.54 for the
/// reference compiled for 16 lanes, where MaxViT-T's 45 GELUs took a
/// quarter of its time.
pub fn avx512_gelu_f32(input: &[f32], output: &mut [f32]) {
    assert_eq!(input.len(), output.len(), "gelu lengths");
    // SAFETY: the table holds this kernel only when the CPU has AVX-512F;
    // every access is within the slices (masked for the tail).
    unsafe { gelu_f32(input, output) }
}

#[target_feature(enable = "avx512f")]
unsafe fn gelu_f32(input: &[f32], output: &mut [f32]) {
    unsafe { map16(input, output, |x| gelu16(x)) }
}

/// Horner's rule with FMA (constant term first).
#[inline]
#[target_feature(enable = "avx512f")]
fn horner16(c: &[f32], x: __m512) -> __m512 {
    c.iter().rev().fold(_mm512_setzero_ps(), |acc, &k| {
        _mm512_fmadd_ps(acc, x, _mm512_set1_ps(k))
    })
}

#[inline]
#[target_feature(enable = "avx512f")]
fn gelu16(x: __m512) -> __m512 {
    use crate::kernels::reference::activation::{ERFC_MID, ERFC_TAIL, ERF_SMALL};
    const RNE: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    let c = _mm512_set1_ps;
    let abs = |v: __m512| _mm512_abs_ps(v);
    let a = abs(_mm512_mul_ps(x, c(core::f32::consts::FRAC_1_SQRT_2)));
    let erf_small = _mm512_mul_ps(a, horner16(&ERF_SMALL, _mm512_mul_ps(a, a)));
    // a² = x²/2 as hh + rest exactly (x² by FMA's exact error; halving is exact).
    let v = _mm512_min_ps(abs(x), c(1e4));
    let sq = _mm512_mul_ps(v, v);
    let sq_err = _mm512_fmsub_ps(v, v, sq);
    let (hh, rest) = (_mm512_mul_ps(sq, c(0.5)), _mm512_mul_ps(sq_err, c(0.5)));
    let mid = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, c(3.9));
    let t = _mm512_mul_ps(
        _mm512_sub_ps(_mm512_min_ps(a, c(4.0)), c(2.425)),
        c(1.0 / 1.575),
    );
    let g = _mm512_maskz_mov_ps(mid, horner16(&ERFC_MID, t));
    // s + err = g - hh exactly (TwoSum); l = the exponent's remainder.
    let s = _mm512_sub_ps(g, hh);
    let b = _mm512_sub_ps(s, g);
    let err = _mm512_add_ps(
        _mm512_sub_ps(g, _mm512_sub_ps(s, b)),
        _mm512_sub_ps(_mm512_sub_ps(c(0.0), hh), b),
    );
    let l = _mm512_sub_ps(err, rest);
    // exp(s) as the reference's `exp_poly`: s = k ln2 + r, Taylor to r^6.
    let z = _mm512_min_ps(_mm512_max_ps(s, c(-87.0)), c(88.0));
    let k = _mm512_roundscale_ps::<RNE>(_mm512_mul_ps(z, c(core::f32::consts::LOG2_E)));
    let r = _mm512_fnmadd_ps(k, c(0.693_145_75), z);
    let r = _mm512_fnmadd_ps(k, c(1.428_606_8e-6), r);
    let mut p = c(1.0 / 720.0);
    for coef in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = _mm512_fmadd_ps(p, r, c(coef));
    }
    let e = _mm512_scalef_ps(p, k);
    // · (1 + l + l²/2)
    let e = _mm512_mul_ps(
        e,
        _mm512_fmadd_ps(_mm512_mul_ps(c(0.5), l), l, _mm512_add_ps(c(1.0), l)),
    );
    // The tail's 1/a: reciprocal estimate, one Newton step.
    let d = _mm512_max_ps(a, c(1.0));
    let inv = _mm512_rcp14_ps(d);
    let inv = _mm512_fmadd_ps(inv, _mm512_fnmadd_ps(d, inv, c(1.0)), inv);
    let tail = _mm512_mul_ps(horner16(&ERFC_TAIL, _mm512_mul_ps(inv, inv)), inv);
    let erfc_big = _mm512_mask_blend_ps(mid, _mm512_mul_ps(e, tail), e);
    let beyond = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, c(9.3));
    let erfc_big = _mm512_mask_blend_ps(beyond, erfc_big, _mm512_setzero_ps());
    // Below 0.9 (or NaN) erf's polynomial, else erfc's.
    let small = _mm512_cmp_ps_mask::<_CMP_NGE_UQ>(a, c(0.9));
    let erf = _mm512_mask_blend_ps(small, _mm512_sub_ps(c(1.0), erfc_big), erf_small);
    let erfc = _mm512_mask_blend_ps(small, erfc_big, _mm512_sub_ps(c(1.0), erf_small));
    // 1 + erf(x/√2) is erfc(a) for negative x.
    let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, c(0.0));
    let one_plus = _mm512_mask_blend_ps(neg, _mm512_add_ps(c(1.0), erf), erfc);
    _mm512_mul_ps(_mm512_mul_ps(c(0.5), x), one_plus)
}

/// LOGISTIC on 16 lanes: the portable polynomial kernel
/// ([`crate::kernels::reference::activation::logistic_f32_poly`]) compiled
/// for AVX-512F, the same arithmetic.
pub fn avx512_logistic_f32(input: &[f32], output: &mut [f32]) {
    #[target_feature(enable = "avx512f")]
    fn wide(input: &[f32], output: &mut [f32]) {
        crate::kernels::reference::activation::logistic_f32_poly(input, output)
    }
    // SAFETY: the table holds this kernel only when the CPU has AVX-512F.
    unsafe { wide(input, output) }
}

/// SOFTMAX rows on 16 lanes: the portable polynomial kernel
/// ([`crate::kernels::reference::activation::softmax_f32_poly`]) compiled
/// for AVX-512F, the same arithmetic.
pub fn avx512_softmax_f32(beta: f32, depth: usize, input: &[f32], output: &mut [f32]) {
    #[target_feature(enable = "avx512f")]
    fn wide(beta: f32, depth: usize, input: &[f32], output: &mut [f32]) {
        crate::kernels::reference::activation::softmax_f32_poly(beta, depth, input, output)
    }
    // SAFETY: the table holds this kernel only when the CPU has AVX-512F;
    // the body is safe code.
    unsafe { wide(beta, depth, input, output) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::multiply_by_quantized_multiplier_smaller_than_one_exp as reference;

    /// An ADD input's 32-bit requantization equals TFLite's two roundings
    /// for every input value it can see (`|x| ≤ 256` after the offset), on
    /// every multiplier shape an ADD makes: the 0.5 of the input with the
    /// larger scale, and others down to a 2^-11 ratio. (The end-to-end
    /// contract test cannot see an error of one here: the output's
    /// requantization divides it away but at its rare exact ties.)
    #[test]
    fn add_input_requantization_is_tflites() {
        if !(std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl"))
        {
            return;
        }
        let mut state = 0x5eed_add5_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as i32
        };
        let mut cases = vec![(1 << 30, 0), (i32::MAX, -1), (1 << 30, -11)];
        for _ in 0..400 {
            let m = (1 << 30) + (next() & ((1 << 30) - 1));
            cases.push((m, -(next() % 12)));
        }
        let mut checked = 0;
        for (m, shift) in cases {
            // TFLite's ADD shifts by 20; any other shift the kernel takes
            // where `new` allows it.
            for l in [20, 9, 14, 21] {
                let Some(q) = (unsafe { SmallRq::new(m, shift, l) }) else {
                    assert!(l != 20, "an ADD input's multiplier {m}, shift {shift}");
                    continue;
                };
                for x0 in (-256..256).step_by(16) {
                    let xs: [i32; 16] = core::array::from_fn(|i| x0 + i as i32);
                    let got: [i32; 16] = unsafe {
                        core::mem::transmute(q.apply(_mm512_loadu_si512(xs.as_ptr() as *const _)))
                    };
                    for (x, g) in xs.iter().zip(got) {
                        let want = reference(x << l, m, shift);
                        assert_eq!(g, want, "x {x}, m {m}, shift {shift}, left shift {l}");
                    }
                }
                checked += 1;
            }
        }
        assert!(checked > 2 * 403, "{checked} cases");
    }
}
