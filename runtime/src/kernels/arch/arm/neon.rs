//! armv7 NEON int8 GEMM on the `[n/16][k/4][16][4]` packing of
//! `kernels::pack` (signed activations, `x_bias = 0`), in `asm!`:
//! `core::arch::arm`'s NEON intrinsics are not stable Rust, and this is the
//! one loop that decides int8 speed on a 32-bit Raspberry Pi.
//!
//! Per row and 16-channel panel, each 4-byte group of activations is loaded
//! into both halves of a D register and multiplied with 8 weights at a time
//! (`VMULL.S8`: two channels × four k), the 16-bit products summed pairwise
//! into 32-bit accumulators (`VPADAL.S16`); no product or pair sum can
//! overflow (|w x| ≤ 2^14). The requantization is TFLite's in NEON
//! (`VQRDMULH` is `SaturatingRoundingDoublingHighMul`; `RoundingDivideByPOT`
//! is `VRSHL` by `-rs` after subtracting one from negative values when
//! `rs > 0`, as the aarch64 kernels and TFLite's own NEON code do), so the
//! results equal the reference's to the bit. ONNX's float rounding runs in
//! scalar code on the NEON sums.
//!
//! Also here: the int8 depthwise convolution and ADD/SUB with the same
//! requantization, and the f32 GEMM (its own `[n/8][k][8]` packing,
//! `SGEMM_NR`) and depthwise convolution.

use core::arch::asm;

use crate::kernels::pack::{DwOut, QDw, QGemm, SDw, SGemm, MAX_DW_TAPS};
use crate::kernels::reference::elementwise::AddI8Params;
use crate::quant::Requant;

/// `asm!` with NEON code: the assembler is told the FPU is NEON (the armv7
/// target's baseline is VFPv3-D16, and `#[target_feature(enable = "neon")]`
/// is not stable on arm). The code uses only q0-q7 (d0-d15), declared
/// clobbered: they exist in every armv7 FPU configuration, whereas d16-d31
/// could hold the compiler's values in a build for a NEON CPU
/// (`-C target-cpu=cortex-a72`) without a stable `cfg` telling the two
/// apart. (d8-d15 are callee-saved; the compiler saves them around.)
macro_rules! neon_asm {
    ($($body:tt)*) => {
        asm!(
            ".fpu neon",
            $($body)*,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            out("d4") _, out("d5") _, out("d6") _, out("d7") _,
            out("d8") _, out("d9") _, out("d10") _, out("d11") _,
            out("d12") _, out("d13") _, out("d14") _, out("d15") _,
            options(nostack),
        )
    };
}

/// The 8 channel sums of `groups` 4-byte groups of the row at `a` against
/// half a panel: 8 channels × 4 bytes at `w`, the next group 64 bytes on.
/// Needs a CPU with NEON.
#[inline]
unsafe fn dot8(w: *const i8, a: *const i8, groups: usize, sums: &mut [i32]) {
    debug_assert!(sums.len() >= 8);
    unsafe {
        neon_asm!(
            "vmov.i32 q4, #0",
            "vmov.i32 q5, #0",
            "vmov.i32 q6, #0",
            "vmov.i32 q7, #0",
            "cmp {g}, #0",
            "beq 2f",
            "1:",
            // x0..x3 in both halves of d0.
            "vld1.32 {{d0[]}}, [{a}]!",
            "vld1.8 {{d2-d5}}, [{w}], {stride}",
            "vmull.s8 q3, d2, d0",
            "vpadal.s16 q4, q3",
            "vmull.s8 q3, d3, d0",
            "vpadal.s16 q5, q3",
            "vmull.s8 q3, d4, d0",
            "vpadal.s16 q6, q3",
            "vmull.s8 q3, d5, d0",
            "vpadal.s16 q7, q3",
            "subs {g}, {g}, #1",
            "bne 1b",
            "2:",
            // Each accumulator holds [ch k01, ch k23, ch' k01, ch' k23]:
            // pairwise sums give the channels in order.
            "vpadd.i32 d8, d8, d9",
            "vpadd.i32 d9, d10, d11",
            "vpadd.i32 d10, d12, d13",
            "vpadd.i32 d11, d14, d15",
            "vst1.32 {{d8-d11}}, [{s}]",
            a = inout(reg) a => _,
            w = inout(reg) w => _,
            g = inout(reg) groups => _,
            stride = in(reg) 64usize,
            s = in(reg) sums.as_mut_ptr()
        );
    }
}

/// The 16 channel sums of `groups` 4-byte groups of the row at `a` against
/// the panel at `w` (`groups * 64` bytes), as two halves of 8 channels (the
/// accumulators of all 16 would need q8-q15). Needs a CPU with NEON.
#[inline]
unsafe fn dot16(w: *const i8, a: *const i8, groups: usize, sums: &mut [i32; 16]) {
    unsafe {
        dot8(w, a, groups, &mut sums[..8]);
        dot8(w.add(32), a, groups, &mut sums[8..]);
    }
}

/// Four channels of the requantization: the sums from `{s}` plus the bias
/// from `{b}`, TFLite's rounding with `{m}`/`{ls}`/`{rs}`, the zero point and
/// clamp in q5-q7, narrowed to 16 bits into `$d` (d8 or d9).
macro_rules! rq4 {
    ($d:literal) => {
        concat!(
            "vld1.32 {{d0-d1}}, [{s}]!\n",
            "vld1.32 {{d2-d3}}, [{b}]!\n",
            "vadd.i32 q0, q0, q1\n",
            "vld1.32 {{d2-d3}}, [{ls}]!\n",
            "vshl.s32 q0, q0, q1\n",
            "vld1.32 {{d2-d3}}, [{m}]!\n",
            "vqrdmulh.s32 q0, q0, q1\n",
            "vld1.32 {{d2-d3}}, [{rs}]!\n",
            // -1 where the value is negative and rs > 0.
            "vcgt.s32 q2, q1, #0\n",
            "vshr.s32 q3, q0, #31\n",
            "vand q2, q2, q3\n",
            "vqadd.s32 q0, q0, q2\n",
            "vneg.s32 q1, q1\n",
            "vrshl.s32 q0, q0, q1\n",
            "vadd.i32 q0, q0, q5\n",
            "vmax.s32 q0, q0, q6\n",
            "vmin.s32 q0, q0, q7\n",
            "vmovn.i32 ",
            $d,
            ", q0\n"
        )
    };
}

/// Eight channels: two [`rq4!`] blocks narrowed to int8 and stored at `{o}`
/// (post-incremented).
macro_rules! rq8 {
    () => {
        concat!(
            rq4!("d8"),
            rq4!("d9"),
            "vmovn.i16 d0, q4\n",
            "vst1.8 {{d0}}, [{o}]!\n"
        )
    };
}

/// Loads the zero point and the clamp's low and high bounds from `{k}`
/// into q5, q6 and q7.
macro_rules! rq_consts {
    () => {
        concat!(
            "vld1.32 {{d10[], d11[]}}, [{k}]!\n",
            "vld1.32 {{d12[], d13[]}}, [{k}]!\n",
            "vld1.32 {{d14[], d15[]}}, [{k}]\n"
        )
    };
}

/// Bias, TFLite's requantization, zero point and clamp for the 16 sums of
/// channels `c..c + 16`, narrowed to int8 into `out`. Needs a CPU with NEON.
#[inline]
unsafe fn requant16(p: &QGemm, c: usize, sums: &[i32; 16], out: &mut [i8; 16]) {
    debug_assert!(c + 16 <= p.bias.len() && c + 16 <= p.mult.len());
    let consts = [p.out_zp, p.act_min, p.act_max];
    unsafe {
        neon_asm!(
            rq_consts!(),
            rq8!(),
            rq8!(),
            k = inout(reg) consts.as_ptr() => _,
            s = inout(reg) sums.as_ptr() => _,
            b = inout(reg) p.bias.as_ptr().add(c) => _,
            ls = inout(reg) p.lshift.as_ptr().add(c) => _,
            m = inout(reg) p.mult.as_ptr().add(c) => _,
            rs = inout(reg) p.rshift.as_ptr().add(c) => _,
            o = inout(reg) out.as_mut_ptr() => _
        );
    }
}

/// Needs a CPU with NEON.
unsafe fn neon_qgemm(
    p: &QGemm,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
) {
    // Whole groups straight from the row; a last partial group (k not a
    // multiple of 4) from a zero-padded copy (the packed weights are zero
    // beyond k), added to the sums.
    let (full, rem) = (p.k / 4, p.k % 4);
    let mut sums = [0i32; 16];
    let mut tail_sums = [0i32; 16];
    let mut q = [0i8; 16];
    for r in 0..m {
        let row = &a[r * a_stride..r * a_stride + p.k];
        let mut tail = [0i8; 4];
        tail[..rem].copy_from_slice(&row[4 * full..]);
        let dst = &mut out[r * out_stride..r * out_stride + p.n];
        for panel in 0..p.np / 16 {
            let c = panel * 16;
            let w = p.w[panel * p.kp * 16..].as_ptr();
            // SAFETY: the panel holds `kp / 4 >= full + 1` groups of 64
            // bytes when `rem > 0`, `full` otherwise; the row `4 * full`
            // bytes and the tail 4.
            unsafe {
                dot16(w, row.as_ptr(), full, &mut sums);
                if rem > 0 {
                    dot16(w.add(full * 64), tail.as_ptr(), 1, &mut tail_sums);
                    for (s, t) in sums.iter_mut().zip(&tail_sums) {
                        *s = s.wrapping_add(*t);
                    }
                }
            }
            if p.fscale.is_empty() {
                // SAFETY: bias and the multipliers hold `np` channels.
                unsafe { requant16(p, c, &sums, &mut q) };
            } else {
                let (m, ls, rs, fs) = (&p.mult, &p.lshift, &p.rshift, &p.fscale);
                let out = (p.out_zp, p.act_min, p.act_max);
                for (j, v) in q.iter_mut().enumerate() {
                    let acc = sums[j].wrapping_add(p.bias[c + j]);
                    *v = requant_one((m, ls, rs, fs), c + j, acc, out);
                }
            }
            let n = (p.n - c).min(16);
            dst[c..c + n].copy_from_slice(&q[..n]);
        }
    }
}

/// `acc[..8 nb] += x[..8 nb] * w[..8 nb]`: one tap of a depthwise window on
/// `nb >= 1` blocks of 8 channels (int8 activations widened to 16 bits,
/// times the 16-bit weights, `VMLAL.S16` into 32 bits). Needs NEON.
#[inline]
unsafe fn dw_tap(x: *const i8, w: *const i16, acc: *mut i32, nb: usize) {
    debug_assert!(nb >= 1);
    unsafe {
        neon_asm!(
            "1:",
            "vld1.8 {{d0}}, [{x}]!",
            "vmovl.s8 q0, d0",
            "vld1.16 {{d2-d3}}, [{w}]!",
            "vld1.32 {{d8-d11}}, [{a}]",
            "vmlal.s16 q4, d0, d2",
            "vmlal.s16 q5, d1, d3",
            "vst1.32 {{d8-d11}}, [{a}]!",
            "subs {n}, {n}, #1",
            "bne 1b",
            x = inout(reg) x => _,
            w = inout(reg) w => _,
            a = inout(reg) acc => _,
            n = inout(reg) nb => _
        );
    }
}

/// The sums of 16 channels over a whole depthwise window, stored at `out`:
/// tap `t` reads 16 int8 inputs at `xs[t] + c0` and 16 weights at
/// `w + t * cp` (`VMLAL.S16` into four accumulators that stay in
/// registers across the taps). `taps >= 1`. Needs NEON.
#[inline]
unsafe fn dw_taps16(
    xs: *const *const i8,
    taps: usize,
    c0: usize,
    (w, cp): (*const i16, usize),
    out: *mut i32,
) {
    debug_assert!(taps >= 1);
    unsafe {
        neon_asm!(
            "vmov.i32 q4, #0",
            "vmov.i32 q5, #0",
            "vmov.i32 q6, #0",
            "vmov.i32 q7, #0",
            "1:",
            "ldr {t}, [{xs}], #4",
            "add {t}, {t}, {c0}",
            "vld1.8 {{d0-d1}}, [{t}]",
            "vmovl.s8 q1, d1",
            "vmovl.s8 q0, d0",
            "vld1.16 {{d4-d7}}, [{w}], {ws}",
            "vmlal.s16 q4, d0, d4",
            "vmlal.s16 q5, d1, d5",
            "vmlal.s16 q6, d2, d6",
            "vmlal.s16 q7, d3, d7",
            "subs {n}, {n}, #1",
            "bne 1b",
            "vst1.32 {{d8-d11}}, [{o}]!",
            "vst1.32 {{d12-d15}}, [{o}]",
            xs = inout(reg) xs => _,
            n = inout(reg) taps => _,
            t = out(reg) _,
            c0 = in(reg) c0,
            w = inout(reg) w => _,
            ws = in(reg) cp * 2,
            o = inout(reg) out => _
        );
    }
}

/// Requantizes `nb >= 1` blocks of 8 depthwise sums of channels from `c`
/// (the bias `bias_full` added here) into `out`. Needs NEON.
#[inline]
unsafe fn dw_requant(p: &QDw, acc: *const i32, c: usize, out: *mut i8, nb: usize) {
    debug_assert!(nb >= 1 && c + 8 * nb <= p.bias_full.len());
    let consts = [p.out_zp, p.act_min, p.act_max];
    unsafe {
        neon_asm!(
            rq_consts!(),
            "1:",
            rq8!(),
            "subs {n}, {n}, #1",
            "bne 1b",
            k = inout(reg) consts.as_ptr() => _,
            s = inout(reg) acc => _,
            b = inout(reg) p.bias_full.as_ptr().add(c) => _,
            ls = inout(reg) p.lshift.as_ptr().add(c) => _,
            m = inout(reg) p.mult.as_ptr().add(c) => _,
            rs = inout(reg) p.rshift.as_ptr().add(c) => _,
            o = inout(reg) out => _,
            n = inout(reg) nb => _
        );
    }
}

/// One sum (bias included) of channel `c` requantized as the reference
/// does ([`Requant::apply`] on the packed per-channel multiplier, shifts
/// and float scales, the latter empty for fixed-point models), plus the
/// zero point, clamped: the scalar path for ONNX's float rounding and for
/// the channels beyond the NEON blocks.
fn requant_one(
    (mult, lshift, rshift, fscale): (&[i32], &[i32], &[i32], &[f32]),
    c: usize,
    acc: i32,
    (zp, lo, hi): (i32, i32, i32),
) -> i8 {
    let r = Requant {
        multiplier: mult[c],
        shift: lshift[c] - rshift[c],
        float: fscale.get(c).copied(),
    };
    r.apply(acc).wrapping_add(zp).clamp(lo, hi) as i8
}

/// [`requant_one`] for a depthwise channel.
fn dw_requant_one(p: &QDw, acc: i32, c: usize) -> i8 {
    let fields = (&p.mult[..], &p.lshift[..], &p.rshift[..], &p.fscale[..]);
    requant_one(fields, c, acc, (p.out_zp, p.act_min, p.act_max))
}

/// Channels one pass of [`neon_qdw`] accumulates on the stack.
const DW_CHUNK: usize = 512;

/// int8 depthwise over output rows: per output pixel, each tap's input
/// pixel (or the zero-point row `pad` where the tap is outside the image,
/// which adds nothing to sums that start from `bias_full`) is multiplied
/// into the channel sums 8 channels at a time, then the sums requantized.
/// Channels beyond the last whole 8 run in scalar code. Needs NEON.
unsafe fn neon_qdw(p: &QDw, input: &[i8], part: DwOut<i8>) {
    let [_, ih, iw, c] = p.shape.shapes[0];
    let [_, kh, kw, _] = p.shape.shapes[1];
    let [_, oh, ow, _] = p.shape.shapes[2];
    let g = &p.shape.g;
    let taps = kh * kw;
    debug_assert!(taps <= MAX_DW_TAPS);
    let (rows, chans) = (part.rows(), part.chans());
    // Channels `chans.start..whole` in blocks of 8, the rest one by one.
    let whole = chans.start + chans.len() / 8 * 8;
    let mut src = [p.pad.as_ptr(); MAX_DW_TAPS];
    let mut acc = [0i32; DW_CHUNK];
    let first = rows.start;
    for row in rows {
        let (b, oy) = (row / oh, row % oh);
        for ox in 0..ow {
            for ty in 0..kh {
                let iy = (oy * g.stride_h + ty * g.dilation_h) as isize - g.pad_top as isize;
                for tx in 0..kw {
                    let ix = (ox * g.stride_w + tx * g.dilation_w) as isize - g.pad_left as isize;
                    src[ty * kw + tx] =
                        if (0..ih as isize).contains(&iy) && (0..iw as isize).contains(&ix) {
                            input[((b * ih + iy as usize) * iw + ix as usize) * c..].as_ptr()
                        } else {
                            p.pad.as_ptr()
                        };
                }
            }
            // SAFETY: `part` points at row `first`'s channel 0 of an output of
            // `ow * c` channels a row, and this call alone writes `chans`.
            let out = unsafe {
                core::slice::from_raw_parts_mut(
                    part.ptr().add(((row - first) * ow + ox) * c + chans.start),
                    chans.len(),
                )
            };
            let mut c0 = chans.start;
            while c0 < whole {
                let n = (whole - c0).min(DW_CHUNK);
                // 16 channels a step with the sums in registers, a last 8
                // tap by tap through the sums in memory.
                let n16 = n / 16 * 16;
                // SAFETY: each tap pointer has `c` readable bytes (an input
                // pixel, or the pad row of at least `cp >= c` bytes) and
                // `c0 + n <= c`; the weights hold `cp` channels per tap;
                // `acc` holds `DW_CHUNK >= n` sums.
                unsafe {
                    for b in (0..n16).step_by(16) {
                        let w = p.w16.as_ptr().add(c0 + b);
                        dw_taps16(
                            src.as_ptr(),
                            taps,
                            c0 + b,
                            (w, p.cp),
                            acc.as_mut_ptr().add(b),
                        );
                    }
                    if n16 < n {
                        acc[n16..n].fill(0);
                        for (t, x) in src[..taps].iter().enumerate() {
                            dw_tap(
                                x.add(c0 + n16),
                                p.w16.as_ptr().add(t * p.cp + c0 + n16),
                                acc.as_mut_ptr().add(n16),
                                (n - n16) / 8,
                            );
                        }
                    }
                }
                let o = &mut out[c0 - chans.start..][..n];
                if p.fscale.is_empty() {
                    // SAFETY: `n` sums and `n` output bytes from `c0`.
                    unsafe { dw_requant(p, acc.as_ptr(), c0, o.as_mut_ptr(), n / 8) };
                } else {
                    for (j, v) in o.iter_mut().enumerate() {
                        *v = dw_requant_one(p, acc[j].wrapping_add(p.bias_full[c0 + j]), c0 + j);
                    }
                }
                c0 += n;
            }
            for (ch, y) in (whole..).zip(&mut out[whole - chans.start..]) {
                let mut sum = p.bias_full[ch];
                for (t, x) in src[..taps].iter().enumerate() {
                    // SAFETY: as above, `ch < c`.
                    let v = unsafe { *x.add(ch) } as i32;
                    sum = sum.wrapping_add(v * p.w16[t * p.cp + ch] as i32);
                }
                *y = dw_requant_one(p, sum, ch);
            }
        }
    }
}

/// Safe entry: only put into a table after NEON was detected.
pub(super) fn neon_qdw_i8(p: &QDw, input: &[i8], part: DwOut<i8>) {
    part.check(&p.shape, input);
    // SAFETY: `plug_with` installs this only when NEON is available.
    unsafe { neon_qdw(p, input, part) }
}

/// Safe entry: only put into a table after NEON was detected.
pub(super) fn neon_qgemm_i8(
    p: &QGemm,
    a: &[i8],
    a_stride: usize,
    m: usize,
    out: &mut [i8],
    out_stride: usize,
) {
    // SAFETY: `plug_with` installs this only when NEON is available.
    unsafe { neon_qgemm(p, a, a_stride, m, out, out_stride) }
}

/// One rescaling of 4 lanes in q0 (`RoundingDivideByPOT(
/// SaturatingRoundingDoublingHighMul(q0, m), e)`, TFLite's
/// `MultiplyByQuantizedMultiplierSmallerThanOneExp`): the multiplier and
/// `-e` come next from `{k}`; q4-q6 are scratch. `vrshl` by `-e` rounds half
/// up, so negative lanes are first moved down by one where `e > 0`.
macro_rules! add_rescale {
    ($q:literal) => {
        concat!(
            "vld1.32 {{d8[], d9[]}}, [{k}]!\n",
            "vqrdmulh.s32 ",
            $q,
            ", ",
            $q,
            ", q4\n",
            "vld1.32 {{d8[], d9[]}}, [{k}]!\n",
            "vclt.s32 q5, q4, #0\n",
            "vshr.s32 q6, ",
            $q,
            ", #31\n",
            "vand q5, q5, q6\n",
            "vqadd.s32 ",
            $q,
            ", ",
            $q,
            ", q5\n",
            "vrshl.s32 ",
            $q,
            ", ",
            $q,
            ", q4\n"
        )
    };
}

/// Four elements of an int8 ADD/SUB (`AddI8Params::apply`): the inputs as
/// i16 in `$a`/`$b` (d registers), the result narrowed to i16 into `$d`.
/// Walks the 12 constants at `{k}` and rewinds; `$op` is `vadd.i32` or
/// `vsub.i32`. Uses q0, q3 and q4-q6.
macro_rules! add_half {
    ($a:literal, $b:literal, $d:literal, $op:literal) => {
        concat!(
            "vmovl.s16 q0, ",
            $a,
            "\n",
            "vmovl.s16 q3, ",
            $b,
            "\n",
            "vld1.32 {{d8[], d9[]}}, [{k}]!\n",
            "vadd.i32 q0, q0, q4\n",
            "vld1.32 {{d8[], d9[]}}, [{k}]!\n",
            "vadd.i32 q3, q3, q4\n",
            "vld1.32 {{d8[], d9[]}}, [{k}]!\n",
            "vshl.s32 q0, q0, q4\n",
            "vshl.s32 q3, q3, q4\n",
            add_rescale!("q0"),
            add_rescale!("q3"),
            $op,
            " q0, q0, q3\n",
            add_rescale!("q0"),
            "vld1.32 {{d8[], d9[]}}, [{k}]!\n",
            "vadd.i32 q0, q0, q4\n",
            "vld1.32 {{d8[], d9[]}}, [{k}]!\n",
            "vmax.s32 q0, q0, q4\n",
            "vld1.32 {{d8[], d9[]}}, [{k}]!\n",
            "vmin.s32 q0, q0, q4\n",
            "vmovn.i32 ",
            $d,
            ", q0\n",
            "sub {k}, {k}, #48\n"
        )
    };
}

/// `nb >= 1` blocks of 8 elements of a same-shape int8 ADD/SUB, `$op`
/// `vadd.i32` or `vsub.i32`; `$k` the constants of [`add_consts`].
macro_rules! add_blocks {
    ($op:literal, $k:expr, $a:expr, $b:expr, $o:expr, $nb:expr) => {
        neon_asm!(
            "1:",
            "vld1.8 {{d0}}, [{a}]!",
            "vld1.8 {{d1}}, [{b}]!",
            "vmovl.s8 q1, d0",
            "vmovl.s8 q2, d1",
            add_half!("d2", "d4", "d14", $op),
            add_half!("d3", "d5", "d15", $op),
            // In the activation range: the narrowing never saturates.
            "vmovn.i16 d0, q7",
            "vst1.8 {{d0}}, [{o}]!",
            "subs {n}, {n}, #1",
            "bne 1b",
            k = inout(reg) $k => _,
            a = inout(reg) $a => _,
            b = inout(reg) $b => _,
            o = inout(reg) $o => _,
            n = inout(reg) $nb => _
        )
    };
}

/// The constants [`add_half!`] reads in order: both input offsets, the left
/// shift, per rescaling (input 1, input 2, output) the multiplier and the
/// shift (`-e`, the exponent `RoundingDivideByPOT` divides by negated),
/// then the zero point and the clamp.
fn add_consts(p: &AddI8Params) -> [i32; 12] {
    [
        p.input1_offset,
        p.input2_offset,
        p.left_shift,
        p.input1_multiplier,
        p.input1_shift,
        p.input2_multiplier,
        p.input2_shift,
        p.output_multiplier,
        p.output_shift,
        p.output_offset,
        p.act_min,
        p.act_max,
    ]
}

/// Same-shape int8 ADD/SUB, 8 elements a step in NEON, the tail through
/// `AddI8Params::apply`. Needs NEON.
unsafe fn neon_qadd(p: &AddI8Params, a: &[i8], b: &[i8], out: &mut [i8]) {
    let n = out.len().min(a.len()).min(b.len());
    let nb = if p.fits_i32_lanes() { n / 8 } else { 0 };
    if nb > 0 {
        let k = add_consts(p);
        let (kp, ap, bp, op) = (k.as_ptr(), a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
        // SAFETY: `nb * 8 <= n` bytes are read from `a` and `b` and written
        // to `out`; the constants are 12 values, rewound every half.
        unsafe {
            if p.subtract {
                add_blocks!("vsub.i32", kp, ap, bp, op, nb);
            } else {
                add_blocks!("vadd.i32", kp, ap, bp, op, nb);
            }
        }
    }
    for j in nb * 8..n {
        out[j] = p.apply(a[j], b[j]);
    }
}

/// Safe entry: only put into a table after NEON was detected.
pub(super) fn neon_qadd_i8(p: &AddI8Params, a: &[i8], b: &[i8], out: &mut [i8]) {
    // SAFETY: `plug_with` installs this only when NEON is available.
    unsafe { neon_qadd(p, a, b, out) }
}

/// Output channels per f32 GEMM panel on armv7: 2 rows × 8 channels keep
/// their 4 accumulators, the 8 weights and the 2 activations in q0-q7.
pub const SGEMM_NR: usize = 8;

/// One 2-row × 8-channel f32 tile: `k` steps of 8 packed weights at `w`
/// times one value of each row (`a0`, `a1`), summed from 0 in `k` order with
/// `vmla.f32` (a multiply, then an add, each rounded, as the reference's
/// `total += x * w`); then the 8 biases added, the clamp `act` applied and
/// the 16 results stored in `out` (row 0, then row 1). Needs NEON.
#[inline]
unsafe fn sgemm_tile(
    w: *const f32,
    (a0, a1): (*const f32, *const f32),
    k: usize,
    bias: *const f32,
    act: &[f32; 2],
    out: &mut [f32; 16],
) {
    unsafe {
        neon_asm!(
            "vmov.i32 q4, #0",
            "vmov.i32 q5, #0",
            "vmov.i32 q6, #0",
            "vmov.i32 q7, #0",
            "cmp {k}, #0",
            "beq 2f",
            "1:",
            "vld1.32 {{d0-d3}}, [{w}]!",
            "vld1.32 {{d4[0]}}, [{a0}]!",
            "vld1.32 {{d4[1]}}, [{a1}]!",
            "vmla.f32 q4, q0, d4[0]",
            "vmla.f32 q5, q1, d4[0]",
            "vmla.f32 q6, q0, d4[1]",
            "vmla.f32 q7, q1, d4[1]",
            "subs {k}, {k}, #1",
            "bne 1b",
            "2:",
            "vld1.32 {{d0-d3}}, [{b}]",
            "vadd.f32 q4, q4, q0",
            "vadd.f32 q5, q5, q1",
            "vadd.f32 q6, q6, q0",
            "vadd.f32 q7, q7, q1",
            "vld1.32 {{d4[], d5[]}}, [{act}]!",
            "vld1.32 {{d6[], d7[]}}, [{act}]",
            "vmax.f32 q4, q4, q2",
            "vmax.f32 q5, q5, q2",
            "vmax.f32 q6, q6, q2",
            "vmax.f32 q7, q7, q2",
            "vmin.f32 q4, q4, q3",
            "vmin.f32 q5, q5, q3",
            "vmin.f32 q6, q6, q3",
            "vmin.f32 q7, q7, q3",
            "vst1.32 {{d8-d11}}, [{o}]!",
            "vst1.32 {{d12-d15}}, [{o}]",
            w = inout(reg) w => _,
            a0 = inout(reg) a0 => _,
            a1 = inout(reg) a1 => _,
            k = inout(reg) k => _,
            b = in(reg) bias,
            act = inout(reg) act.as_ptr() => _,
            o = inout(reg) out.as_mut_ptr() => _
        );
    }
}

/// f32 GEMM over `m` rows, two at a time (an odd last row is computed
/// twice from the same values and written once). Needs NEON.
unsafe fn neon_sgemm(
    p: &SGemm,
    a: &[f32],
    a_stride: usize,
    m: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    let act = [p.act.0, p.act.1];
    let panels = p.np / SGEMM_NR;
    debug_assert!(p.w.len() >= panels * p.k * SGEMM_NR && p.bias.len() >= p.np);
    let mut tile = [0f32; 16];
    for r in (0..m).step_by(2) {
        let r1 = (r + 1).min(m - 1);
        let (a0, a1) = (a[r * a_stride..].as_ptr(), a[r1 * a_stride..].as_ptr());
        for panel in 0..panels {
            let c0 = panel * SGEMM_NR;
            let n = (p.n - c0).min(SGEMM_NR);
            // SAFETY: the panel holds `k * 8` weights and the bias `np`
            // values; rows `r` and `r1 < m` have `k` values each (checked
            // by the caller).
            unsafe {
                let w = p.w.as_ptr().add(panel * p.k * SGEMM_NR);
                sgemm_tile(w, (a0, a1), p.k, p.bias.as_ptr().add(c0), &act, &mut tile);
            }
            out[r * out_stride + c0..][..n].copy_from_slice(&tile[..n]);
            if r1 != r {
                out[r1 * out_stride + c0..][..n].copy_from_slice(&tile[8..8 + n]);
            }
        }
    }
}

/// Safe entry: only put into a table after NEON was detected.
pub(super) fn neon_sgemm_f32(
    p: &SGemm,
    a: &[f32],
    a_stride: usize,
    m: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    assert!(
        m == 0 || a.len() >= (m - 1) * a_stride + p.k,
        "gemm input size"
    );
    // SAFETY: `plug_with` installs this only when NEON is available; the
    // rows were checked above.
    unsafe { neon_sgemm(p, a, a_stride, m, out, out_stride) }
}

/// f32 depthwise on 8 channels: `nt` taps, the input pointer of tap `i`
/// being `xs[i]` and its weights `ws[i]` (both already at the block's first
/// channel), summed from 0 in tap order with `vmla.f32`; then the biases,
/// the clamp, and 8 results stored at `out`. Needs NEON.
#[inline]
unsafe fn sdw_block(
    (xs, ws, nt): (*const *const f32, *const *const f32, usize),
    c0: usize,
    bias: *const f32,
    act: &[f32; 2],
    out: *mut f32,
) {
    unsafe {
        neon_asm!(
            "vmov.i32 q4, #0",
            "vmov.i32 q5, #0",
            "cmp {n}, #0",
            "beq 2f",
            "1:",
            "ldr {t}, [{xs}], #4",
            "add {t}, {t}, {off}",
            "vld1.32 {{d0-d3}}, [{t}]",
            "ldr {t}, [{ws}], #4",
            "add {t}, {t}, {off}",
            "vld1.32 {{d4-d7}}, [{t}]",
            "vmla.f32 q4, q0, q2",
            "vmla.f32 q5, q1, q3",
            "subs {n}, {n}, #1",
            "bne 1b",
            "2:",
            "vld1.32 {{d0-d3}}, [{b}]",
            "vadd.f32 q4, q4, q0",
            "vadd.f32 q5, q5, q1",
            "vld1.32 {{d4[], d5[]}}, [{act}]!",
            "vld1.32 {{d6[], d7[]}}, [{act}]",
            "vmax.f32 q4, q4, q2",
            "vmax.f32 q5, q5, q2",
            "vmin.f32 q4, q4, q3",
            "vmin.f32 q5, q5, q3",
            "vst1.32 {{d8-d11}}, [{o}]",
            xs = inout(reg) xs => _,
            ws = inout(reg) ws => _,
            n = inout(reg) nt => _,
            t = out(reg) _,
            off = in(reg) c0 * 4,
            b = in(reg) bias,
            act = inout(reg) act.as_ptr() => _,
            o = in(reg) out
        );
    }
}

/// f32 depthwise over a part of the output: per output pixel, the valid
/// taps' input and weight pointers, then 8 channels a step in NEON (a last
/// partial block through a stack copy of its inputs and outputs). The
/// weights and biases are padded to `cp` (a multiple of 16) channels.
/// Needs NEON.
unsafe fn neon_sdw(p: &SDw, input: &[f32], part: DwOut<f32>) {
    let [_, ih, iw, c] = p.shape.shapes[0];
    let [_, kh, kw, _] = p.shape.shapes[1];
    let [_, oh, ow, _] = p.shape.shapes[2];
    let g = &p.shape.g;
    debug_assert!(kh * kw <= MAX_DW_TAPS && p.cp >= c.div_ceil(8) * 8);
    let act = [p.act.0, p.act.1];
    let (rows, chans) = (part.rows(), part.chans());
    let whole = chans.start + chans.len() / 8 * 8;
    let mut xs = [core::ptr::null::<f32>(); MAX_DW_TAPS];
    let mut ws = [core::ptr::null::<f32>(); MAX_DW_TAPS];
    let first = rows.start;
    for row in rows {
        let (b, oy) = (row / oh, row % oh);
        for ox in 0..ow {
            let mut nt = 0;
            for ty in 0..kh {
                let iy = (oy * g.stride_h + ty * g.dilation_h) as isize - g.pad_top as isize;
                for tx in 0..kw {
                    let ix = (ox * g.stride_w + tx * g.dilation_w) as isize - g.pad_left as isize;
                    if (0..ih as isize).contains(&iy) && (0..iw as isize).contains(&ix) {
                        xs[nt] = input[((b * ih + iy as usize) * iw + ix as usize) * c..].as_ptr();
                        ws[nt] = p.w[(ty * kw + tx) * p.cp..].as_ptr();
                        nt += 1;
                    }
                }
            }
            let taps = (xs.as_ptr(), ws.as_ptr(), nt);
            // SAFETY: `part` points at row `first`'s channel 0 of an output
            // of `ow * c` channels a row, and this call alone writes `chans`.
            let px = unsafe { part.ptr().add(((row - first) * ow + ox) * c) };
            for c0 in (chans.start..whole).step_by(8) {
                // SAFETY: each tap pointer has `c >= c0 + 8` values, the
                // weights and biases `cp`; the 8 outputs are in this part.
                unsafe { sdw_block(taps, c0, p.bias.as_ptr().add(c0), &act, px.add(c0)) };
            }
            if whole < chans.end {
                // The last channels (fewer than 8): through stack copies.
                let n = chans.end - whole;
                let mut xt = [[0f32; 8]; MAX_DW_TAPS];
                let mut xp = [core::ptr::null::<f32>(); MAX_DW_TAPS];
                for i in 0..nt {
                    // SAFETY: `xs[i]` has `c = whole + n` values.
                    let src = unsafe { core::slice::from_raw_parts(xs[i].add(whole), n) };
                    xt[i][..n].copy_from_slice(src);
                    xp[i] = xt[i].as_ptr();
                }
                let mut o = [0f32; 8];
                // SAFETY: the copies have 8 values; the weights and biases
                // are padded to `cp >= whole + 8` channels, read at offset
                // `whole` (the copies at offset 0: the weight pointers are
                // shifted by `whole` instead).
                unsafe {
                    let mut wp = [core::ptr::null::<f32>(); MAX_DW_TAPS];
                    for i in 0..nt {
                        wp[i] = ws[i].add(whole);
                    }
                    sdw_block(
                        (xp.as_ptr(), wp.as_ptr(), nt),
                        0,
                        p.bias.as_ptr().add(whole),
                        &act,
                        o.as_mut_ptr(),
                    );
                    core::ptr::copy_nonoverlapping(o.as_ptr(), px.add(whole), n);
                }
            }
        }
    }
}

/// Safe entry: only put into a table after NEON was detected.
pub(super) fn neon_sdw_f32(p: &SDw, input: &[f32], part: DwOut<f32>) {
    part.check(&p.shape, input);
    // SAFETY: `plug_with` installs this only when NEON is available;
    // `DwOut` points at the part's rows of an output of `p`'s shape.
    unsafe { neon_sdw(p, input, part) }
}
