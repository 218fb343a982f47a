//! Kernel contract tests: every optimized kernel path this CPU can run
//! (`kernels::arch::variants`) against the reference kernels, on random
//! shapes and edge cases (k not a multiple of the group, channel tails,
//! padding, strides, dilations, extreme zero-points, saturating values).
//! int8 must be bit-identical; f32 within 1e-5 of the output's magnitude.
//!
//! Paths the CPU lacks are skipped with a printed reason. Under qemu-user
//! (`cargo test --target aarch64-unknown-linux-gnu`) the ARM paths run.

use ferrite_runtime::kernels::pack::{self, ConvShape, DwSplit};
use ferrite_runtime::kernels::reference::conv::{
    self, Conv2dGeometry, ConvI8Params, FullyConnectedI8Params,
};
use ferrite_runtime::kernels::{arch, KernelTable};
use ferrite_runtime::{Activation, QParams, Rounding};

/// xorshift64: deterministic test data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }
    fn i8s(&mut self, n: usize, mode: usize) -> Vec<i8> {
        (0..n)
            .map(|_| match mode {
                0 => self.next() as i8,
                1 => 127,
                2 => -128,
                _ => self.pick(&[-128, 127, 0, -1, 1]),
            })
            .collect()
    }
    fn f32s(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0)
            .collect()
    }
    fn scale(&mut self) -> f32 {
        let e = self.below(12) as i32 - 8;
        (1.0 + (self.next() % 1000) as f32 / 1000.0) * 2f32.powi(e)
    }
}

/// Every f32 binary op the kernels take.
const BINARY_OPS: [ferrite_runtime::kernels::reference::elementwise::BinaryOp; 5] = {
    use ferrite_runtime::kernels::reference::elementwise::BinaryOp::*;
    [Add, Sub, Mul, Max, Min]
};

/// Whether two f32 slices hold the same bits (NaNs included).
fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn variants() -> Vec<(&'static str, KernelTable)> {
    let v = arch::variants();
    if v.is_empty() {
        println!("skipped: this CPU has no optimized kernel path (reference only)");
    }
    v
}

/// A random convolution problem: geometry and shapes.
fn random_conv(rng: &mut Rng, depthwise: bool) -> Option<(Conv2dGeometry, [[usize; 4]; 3])> {
    let n = rng.pick(&[1, 1, 2]);
    let (mut ih, mut iw) = (1 + rng.below(11), 1 + rng.below(11));
    // Some wide depthwise images: the AVX-512 int8 kernel's padded tile
    // then holds a strip of a few rows (several strips per image), or not
    // even one window's rows (the direct path).
    if depthwise && rng.below(8) == 0 {
        (ih, iw) = (4 + rng.below(20), 100 + rng.below(400));
    }
    // 260 channels with a 3x3 window make rows longer than the GEMMs' 2048-byte tile.
    let ic = if depthwise {
        // 150 and 200: channel splits (64 a chunk) with a partial last block.
        rng.pick(&[1, 2, 3, 4, 5, 8, 15, 16, 17, 31, 32, 33, 64, 100, 150, 200])
    } else {
        rng.pick(&[1, 2, 3, 4, 5, 8, 15, 16, 17, 31, 32, 33, 64, 100, 260])
    };
    let oc = if depthwise {
        ic
    } else {
        rng.pick(&[1, 2, 3, 8, 16, 17, 31, 48, 64, 65, 80, 130])
    };
    let k = if depthwise {
        rng.pick(&[1, 3, 3, 5])
    } else {
        rng.pick(&[1, 1, 1, 2, 3, 5])
    };
    let (kh, kw) = (
        k,
        if rng.below(4) == 0 {
            1 + rng.below(3)
        } else {
            k
        },
    );
    let (sh, sw) = (1 + rng.below(2), 1 + rng.below(2));
    let (dh, dw) = if rng.below(4) == 0 {
        (2, 1 + rng.below(2))
    } else {
        (1, 1)
    };
    let (pt, pl) = (rng.below(kh), rng.below(kw));
    let (pb, pr) = (rng.below(kh), rng.below(kw));
    let eh = (kh - 1) * dh + 1;
    let ew = (kw - 1) * dw + 1;
    let oh = (ih + pt + pb).checked_sub(eh)? / sh + 1;
    let ow = (iw + pl + pr).checked_sub(ew)? / sw + 1;
    let g = Conv2dGeometry {
        stride_h: sh,
        stride_w: sw,
        dilation_h: dh,
        dilation_w: dw,
        pad_top: pt,
        pad_left: pl,
    };
    let fs = if depthwise {
        [1, kh, kw, ic]
    } else {
        [oc, kh, kw, ic]
    };
    Some((g, [[n, ih, iw, ic], fs, [n, oh, ow, oc]]))
}

/// A [`random_conv`] shape with groups (ResNeXt / RegNet: each group reads
/// `ic / groups` input channels), and the group count.
fn random_grouped_conv(rng: &mut Rng) -> Option<(Conv2dGeometry, [[usize; 4]; 3], usize)> {
    let (g, [xs, mut fs, ys]) = random_conv(rng, false)?;
    let &groups = [2, 3, 4, 8, 16]
        .iter()
        .filter(|&&d| xs[3] % d == 0 && ys[3] % d == 0)
        .nth(rng.below(2))?;
    fs[3] = xs[3] / groups;
    Some((g, [xs, fs, ys], groups))
}

fn random_i8_params(rng: &mut Rng, oc: usize) -> ConvI8Params {
    let zp = |rng: &mut Rng| {
        let r = (rng.next() as i8) as i32;
        rng.pick(&[-128, 127, 0, -5, 3, r])
    };
    let input = QParams {
        scale: rng.scale() * 0.01,
        zero_point: zp(rng),
    };
    let output = QParams {
        scale: rng.scale() * 0.05,
        zero_point: zp(rng),
    };
    let act = rng.pick(&[
        Activation::None,
        Activation::Relu,
        Activation::Relu6,
        Activation::ReluN1To1,
    ]);
    let scales: Vec<f32> = if rng.below(3) == 0 {
        vec![rng.scale() * 0.01]
    } else {
        (0..oc).map(|_| rng.scale() * 0.01).collect()
    };
    ConvI8Params::new(input, &scales, output, act, oc, random_rounding(rng))
}

/// TFLite's fixed-point requantization or (one case in three) ONNX
/// Runtime's float one: the packed kernels must match the reference in both.
fn random_rounding(rng: &mut Rng) -> Rounding {
    if rng.below(3) == 0 {
        Rounding::Float { uint8: false }
    } else {
        Rounding::FixedPoint
    }
}

#[test]
fn conv_i8_matches_reference() {
    let tables = variants();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut ran = 0;
    for case in 0..400 {
        let Some((g, shapes)) = random_conv(&mut rng, false) else {
            continue;
        };
        let [xs, fs, ys] = shapes;
        let p = random_i8_params(&mut rng, ys[3]);
        let mode = if case % 10 == 0 { 1 + rng.below(3) } else { 0 };
        let x = rng.i8s(xs.iter().product(), mode);
        let w = rng.i8s(fs.iter().product(), if case % 7 == 0 { mode } else { 0 });
        let bias: Option<Vec<i32>> = (rng.below(4) != 0).then(|| {
            (0..ys[3])
                .map(|_| (rng.next() as i32) >> rng.below(32))
                .collect()
        });
        let mut want = vec![0i8; ys.iter().product()];
        conv::conv2d_i8(&g, &p, &x, xs, &w, fs, bias.as_deref(), &mut want, ys);
        for (name, t) in &tables {
            let Some(isa) = t.qgemm else { continue };
            let shape = ConvShape { g, shapes };
            let (k, kname) = pack::QConv::new(&isa, shape, &p, &w, bias.as_deref())
                .expect("the driver covers this window");
            let mut got = vec![0i8; want.len()];
            k.exec(&x, &mut got);
            assert_eq!(
                got, want,
                "{name} ({kname}) case {case}: shapes {shapes:?} {g:?} {p:?}"
            );
            ran += 1;
        }
    }
    println!("conv i8: {ran} optimized runs equal the reference");
}

#[test]
fn grouped_conv_i8_matches_reference() {
    let tables = variants();
    let mut rng = Rng(0x0fed_cba9_8765_4321);
    let mut ran = 0;
    for case in 0..400 {
        let Some((g, shapes, groups)) = random_grouped_conv(&mut rng) else {
            continue;
        };
        let [xs, fs, ys] = shapes;
        let p = random_i8_params(&mut rng, ys[3]);
        let x = rng.i8s(xs.iter().product(), 0);
        let w = rng.i8s(fs.iter().product(), 0);
        let bias: Option<Vec<i32>> =
            (rng.below(4) != 0).then(|| (0..ys[3]).map(|_| (rng.next() as i32) >> 12).collect());
        let mut want = vec![0i8; ys.iter().product()];
        conv::conv2d_i8(&g, &p, &x, xs, &w, fs, bias.as_deref(), &mut want, ys);
        for (name, t) in &tables {
            let Some(isa) = t.qgemm else { continue };
            let shape = ConvShape { g, shapes };
            let (k, kname) = pack::QConv::new(&isa, shape, &p, &w, bias.as_deref())
                .unwrap_or_else(|| panic!("{name} declined groups {groups} {shapes:?}"));
            let mut got = vec![0i8; want.len()];
            if case % 3 == 0 {
                let pool = ferrite_runtime::threads::Pool::new(2).unwrap();
                ferrite_runtime::threads::scoped(Some(&pool), || k.exec(&x, &mut got));
            } else {
                k.exec(&x, &mut got);
            }
            assert_eq!(
                got, want,
                "{name} ({kname}) case {case} groups {groups}: {shapes:?} {g:?}"
            );
            ran += 1;
        }
    }
    println!("grouped conv i8: {ran} runs equal the reference");
    assert!(ran >= 50, "only {ran} grouped shapes ran");
}

#[test]
fn depthwise_i8_matches_reference() {
    let tables = variants();
    let mut rng = Rng(0x0bad_cafe_f00d_1234);
    let mut ran = 0;
    for case in 0..400 {
        let Some((g, shapes)) = random_conv(&mut rng, true) else {
            continue;
        };
        let [xs, fs, ys] = shapes;
        let p = random_i8_params(&mut rng, ys[3]);
        let mode = if case % 10 == 0 { 1 + rng.below(3) } else { 0 };
        let x = rng.i8s(xs.iter().product(), mode);
        let w = rng.i8s(fs.iter().product(), if case % 7 == 0 { mode } else { 0 });
        let bias: Option<Vec<i32>> = (rng.below(4) != 0).then(|| {
            (0..ys[3])
                .map(|_| (rng.next() as i32) >> rng.below(32))
                .collect()
        });
        let mut want = vec![0i8; ys.iter().product()];
        conv::depthwise_conv2d_i8(&g, &p, 1, &x, xs, &w, fs, bias.as_deref(), &mut want, ys);
        for (name, t) in &tables {
            let Some(e) = t.qdw else { continue };
            let k = pack::QDw::new(e.f, ConvShape { g, shapes }, &p, &w, bias.as_deref());
            let mut got = vec![0i8; want.len()];
            k.exec(&x, &mut got);
            assert_eq!(
                got, want,
                "{name} ({}) case {case}: shapes {shapes:?} {g:?}",
                e.name
            );
            // Split by rows, then by channels, over threads: each computes
            // only its own part.
            if case % 4 == 0 {
                let pool = ferrite_runtime::threads::Pool::new(3).unwrap();
                for split in [DwSplit::Rows, DwSplit::Chans] {
                    let mut got = vec![0i8; want.len()];
                    ferrite_runtime::threads::scoped(Some(&pool), || {
                        k.exec_split(&x, &mut got, split)
                    });
                    assert_eq!(got, want, "{name} case {case} with 3 threads, {split:?}");
                }
            }
            ran += 1;
        }
    }
    println!("depthwise i8: {ran} optimized runs equal the reference");
}

#[test]
fn fully_connected_i8_matches_reference() {
    let tables = variants();
    let mut rng = Rng(0x5eed_0000_0000_0042);
    let mut ran = 0;
    for case in 0..200 {
        let batches = rng.pick(&[1, 1, 2, 3]);
        let k = rng.pick(&[1, 3, 4, 63, 64, 65, 127, 128, 200, 1280]);
        let n = rng.pick(&[1, 2, 10, 17, 64, 300]);
        let zp_in = rng.pick(&[-128, 127, 0, 9]);
        let per_tensor = rng.below(2) == 0;
        let scales: Vec<f32> = if per_tensor {
            vec![rng.scale() * 0.01]
        } else {
            (0..n).map(|_| rng.scale() * 0.01).collect()
        };
        let wzp = if per_tensor {
            rng.pick(&[0, 0, 5, -7])
        } else {
            0
        };
        let act = rng.pick(&[Activation::None, Activation::Relu, Activation::Relu6]);
        let p = FullyConnectedI8Params::new(
            QParams {
                scale: rng.scale() * 0.01,
                zero_point: zp_in,
            },
            &scales,
            wzp,
            QParams {
                scale: rng.scale() * 0.05,
                zero_point: rng.pick(&[-128, 0, 100]),
            },
            act,
            n,
            random_rounding(&mut rng),
        );
        let mode = if case % 10 == 0 { 1 + rng.below(3) } else { 0 };
        let x = rng.i8s(batches * k, mode);
        let w = rng.i8s(n * k, 0);
        let bias: Option<Vec<i32>> =
            (rng.below(3) != 0).then(|| (0..n).map(|_| (rng.next() as i32) >> 12).collect());
        let mut want = vec![0i8; batches * n];
        conv::fully_connected_i8(&p, &x, batches, k, &w, n, bias.as_deref(), &mut want);
        for (name, t) in &tables {
            let Some(isa) = t.qdot else { continue };
            let fc = pack::QFc::new(&isa, p.clone(), batches, k, n, &w);
            let mut got = vec![0i8; want.len()];
            fc.exec(&x, &w, bias.as_deref(), &mut got);
            assert_eq!(
                got, want,
                "{name} case {case}: batches {batches} k {k} n {n}"
            );
            ran += 1;
        }
    }
    println!("fully connected i8: {ran} optimized runs equal the reference");
}

/// `max |got - want| <= 1e-5 * scale`, where `scale` is the largest output
/// of the same op on absolute values (the size of the summed terms, which is
/// what bounds the rounding of a reordered sum).
fn assert_close(got: &[f32], want: &[f32], abs_out: &[f32], what: &str) {
    let mag = abs_out.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    let err = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        err <= 1e-5 * mag,
        "{what}: max error {err:e} vs magnitude {mag:e}"
    );
}

#[test]
fn conv_f32_within_tolerance() {
    let tables = variants();
    let mut rng = Rng(0x7777_1111_2222_3333);
    let (mut ran, mut declined) = (0, 0);
    for case in 0..300 {
        let depthwise = case % 2 == 1;
        let Some((g, shapes)) = random_conv(&mut rng, depthwise) else {
            continue;
        };
        let [xs, fs, ys] = shapes;
        let x = rng.f32s(xs.iter().product());
        let w = rng.f32s(fs.iter().product());
        let bias = (rng.below(3) != 0).then(|| rng.f32s(ys[3]));
        let act = rng.pick(&[(f32::MIN, f32::MAX), (0.0, 6.0), (0.0, f32::MAX)]);
        let mut want = vec![0f32; ys.iter().product()];
        let mut mag = vec![0f32; want.len()];
        let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
        let (xa, wa, ba) = (abs(&x), abs(&w), bias.as_deref().map(abs));
        let none = (f32::MIN, f32::MAX);
        if depthwise {
            conv::depthwise_conv2d_f32(&g, act, 1, &x, xs, &w, fs, bias.as_deref(), &mut want, ys);
            conv::depthwise_conv2d_f32(&g, none, 1, &xa, xs, &wa, fs, ba.as_deref(), &mut mag, ys);
        } else {
            conv::conv2d_f32(&g, act, &x, xs, &w, fs, bias.as_deref(), &mut want, ys);
            conv::conv2d_f32(&g, none, &xa, xs, &wa, fs, ba.as_deref(), &mut mag, ys);
        }
        for (name, t) in &tables {
            let mut got = vec![0f32; want.len()];
            let shape = ConvShape { g, shapes };
            if depthwise {
                let Some(e) = t.sdw else { continue };
                let k = pack::SDw::new(e.f, shape, act, &w, bias.as_deref());
                if case % 4 == 0 {
                    // Split by rows or by channels over threads: each
                    // computes only its own part.
                    let split = [DwSplit::Rows, DwSplit::Chans][case / 4 % 2];
                    let pool = ferrite_runtime::threads::Pool::new(3).unwrap();
                    ferrite_runtime::threads::scoped(Some(&pool), || {
                        k.exec_split(&x, &mut got, split)
                    });
                } else {
                    k.exec(&x, &mut got);
                }
            } else {
                let Some(isa) = t.sgemm else { continue };
                // None: a window too large for the im2col tile (the
                // reference runs such layers).
                let Some((k, _)) = pack::SConv::new(&isa, shape, act, &w, bias.as_deref()) else {
                    declined += 1;
                    continue;
                };
                k.exec(&x, &mut got);
            }
            assert_close(
                &got,
                &want,
                &mag,
                &format!("{name} case {case} dw={depthwise} {shapes:?} {g:?}"),
            );
            ran += 1;
        }
    }
    println!(
        "conv f32: {ran} optimized runs within tolerance, {declined} windows too large for im2col"
    );
    assert!(
        declined * 10 < ran,
        "most shapes must run the optimized path"
    );
}

/// A conv that reads its windows in place (the window GEMM) gives the same
/// bits as the same conv gathered through im2col: the sums run in the same
/// order. Images up to 40 pixels wide have interiors and borders, and
/// threads split the output rows mid-row.
#[cfg(feature = "std")]
#[test]
fn conv_f32_in_place_windows_equal_im2col_bit_for_bit() {
    let mut rng = Rng(0x5eed_0f5a_1100);
    let (mut ran, mut grouped, mut dilated) = (0, 0, 0);
    for case in 0..300 {
        // Every other case grouped: each group's window is `kw` pieces.
        let conv = if case % 2 == 0 {
            random_conv(&mut rng, false).map(|(g, s)| (g, s, 1))
        } else {
            random_grouped_conv(&mut rng)
        };
        let Some((g, mut shapes, groups)) = conv else {
            continue;
        };
        // Wider images than `random_conv`'s, keeping its window geometry.
        let [n, ih, iw, ic] = shapes[0];
        let [oc, kh, kw, fc] = shapes[1];
        let (ih, iw) = (ih + rng.below(30), iw + rng.below(30));
        let (eh, ew) = ((kh - 1) * g.dilation_h + 1, (kw - 1) * g.dilation_w + 1);
        let (pb, pr) = (rng.below(kh), rng.below(kw));
        let Some(oh) = (ih + g.pad_top + pb).checked_sub(eh) else {
            continue;
        };
        let Some(ow) = (iw + g.pad_left + pr).checked_sub(ew) else {
            continue;
        };
        shapes[0] = [n, ih, iw, ic];
        shapes[2] = [n, oh / g.stride_h + 1, ow / g.stride_w + 1, oc];
        let x = rng.f32s(shapes[0].iter().product());
        let w = rng.f32s(oc * kh * kw * fc);
        let bias = (rng.below(3) != 0).then(|| rng.f32s(oc));
        let act = rng.pick(&[(f32::MIN, f32::MAX), (0.0, 6.0)]);
        let len: usize = shapes[2].iter().product();
        for (name, t) in variants() {
            let Some(isa) = t.sgemm else { continue };
            if isa.run_window.is_none() {
                continue;
            }
            let gathered = pack::SGemmIsa {
                run_window: None,
                ..isa
            };
            let shape = ConvShape { g, shapes };
            let Some((k, kname)) = pack::SConv::new(&isa, shape, act, &w, bias.as_deref()) else {
                continue;
            };
            let (want_k, _) = pack::SConv::new(&gathered, shape, act, &w, bias.as_deref()).unwrap();
            let mut want = vec![0f32; len];
            want_k.exec(&x, &mut want);
            let threads = 1 + case % 3;
            let pool = ferrite_runtime::threads::Pool::new(threads).unwrap();
            let mut got = vec![0f32; len];
            ferrite_runtime::threads::scoped(Some(&pool), || k.exec(&x, &mut got));
            let same = same_bits(&got, &want);
            assert!(
                same,
                "{name} ({kname}) case {case}, {threads} threads: {shapes:?} {g:?}"
            );
            let window = usize::from(kname.contains("window"));
            ran += window;
            grouped += window * usize::from(groups > 1);
            dilated += window * usize::from(g.dilation_w > 1);
        }
    }
    println!(
        "in-place windows: {ran} convs equal to im2col bit for bit \
         ({grouped} grouped, {dilated} with a width dilation)"
    );
    assert!(
        (ran >= 20 && grouped >= 10 && dilated >= 5)
            || variants()
                .iter()
                .all(|(_, t)| t.sgemm.and_then(|i| i.run_window).is_none())
    );
}

/// A fused post-op (the converter's swish after a conv) gives the
/// reference conv followed by the function, over shapes whose output spans
/// many post-op blocks, on 1 and 3 threads, both depthwise splits.
#[test]
fn conv_f32_post_op_equals_conv_then_function() {
    use ferrite_runtime::kernels::reference::activation::{hard_swish_f32, swish_f32};
    let tables = variants();
    let mut rng = Rng(0x9057_0b5e);
    let pool = ferrite_runtime::threads::Pool::new(3).unwrap();
    let mut ran = 0;
    for case in 0..12 {
        let depthwise = case % 2 == 1;
        let (h, c, oc) = (
            rng.pick(&[20, 40, 57]),
            rng.pick(&[8, 24, 130]),
            rng.pick(&[16, 48]),
        );
        let k = if case % 4 < 2 { 1 } else { 3 };
        let oc = if depthwise { c } else { oc };
        let g = Conv2dGeometry {
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: k / 2,
            pad_left: k / 2,
        };
        let fs = if depthwise {
            [1, k, k, c]
        } else {
            [oc, k, k, c]
        };
        let shapes = [[1, h, h, c], fs, [1, h, h, oc]];
        let x = rng.f32s(h * h * c);
        let w = rng.f32s(fs.iter().product());
        let bias = rng.f32s(oc);
        let f: fn(&[f32], &mut [f32]) = if case % 3 == 0 {
            hard_swish_f32
        } else {
            swish_f32
        };
        let act = (f32::MIN, f32::MAX);
        let mut pre = vec![0f32; h * h * oc];
        if depthwise {
            conv::depthwise_conv2d_f32(
                &g,
                act,
                1,
                &x,
                shapes[0],
                &w,
                fs,
                Some(&bias),
                &mut pre,
                shapes[2],
            );
        } else {
            conv::conv2d_f32(
                &g,
                act,
                &x,
                shapes[0],
                &w,
                fs,
                Some(&bias),
                &mut pre,
                shapes[2],
            );
        }
        let mut want = vec![0f32; pre.len()];
        f(&pre, &mut want);
        let mag: Vec<f32> = pre.iter().map(|v| v.abs() + 1.0).collect();
        for (name, t) in &tables {
            let post = Some(pack::Post { f });
            let shape = ConvShape { g, shapes };
            for threads in [None, Some(&pool)] {
                let mut got = vec![0f32; want.len()];
                if depthwise {
                    let Some(e) = t.sdw else { continue };
                    let mut k = pack::SDw::new(e.f, shape, act, &w, Some(&bias));
                    k.post = post;
                    let split = [DwSplit::Rows, DwSplit::Chans][case / 2 % 2];
                    ferrite_runtime::threads::scoped(threads, || k.exec_split(&x, &mut got, split));
                } else {
                    let Some(isa) = t.sgemm else { continue };
                    let (mut k, _) = pack::SConv::new(&isa, shape, act, &w, Some(&bias)).unwrap();
                    k.post = post;
                    ferrite_runtime::threads::scoped(threads, || k.exec(&x, &mut got));
                }
                let what = format!("{name} case {case} dw={depthwise} {shapes:?}");
                assert_close(&got, &want, &mag, &what);
                ran += 1;
            }
        }
    }
    println!("conv f32 with a post-op: {ran} runs within tolerance");
    assert!(ran >= 24, "only {ran} runs");
}

#[test]
fn grouped_conv_f32_within_tolerance() {
    let tables = variants();
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut ran = 0;
    for case in 0..400 {
        let Some((g, shapes, groups)) = random_grouped_conv(&mut rng) else {
            continue;
        };
        let [xs, fs, ys] = shapes;
        let x = rng.f32s(xs.iter().product());
        let w = rng.f32s(fs.iter().product());
        let bias = (rng.below(3) != 0).then(|| rng.f32s(ys[3]));
        let act = rng.pick(&[(f32::MIN, f32::MAX), (0.0, 6.0)]);
        let mut want = vec![0f32; ys.iter().product()];
        let mut mag = vec![0f32; want.len()];
        let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
        let (xa, wa, ba) = (abs(&x), abs(&w), bias.as_deref().map(abs));
        conv::conv2d_f32(&g, act, &x, xs, &w, fs, bias.as_deref(), &mut want, ys);
        let none = (f32::MIN, f32::MAX);
        conv::conv2d_f32(&g, none, &xa, xs, &wa, fs, ba.as_deref(), &mut mag, ys);
        for (name, t) in &tables {
            let Some(isa) = t.sgemm else { continue };
            let shape = ConvShape { g, shapes };
            let (k, _) = pack::SConv::new(&isa, shape, act, &w, bias.as_deref())
                .unwrap_or_else(|| panic!("{name} declined groups {groups} {shapes:?}"));
            let mut got = vec![0f32; want.len()];
            if case % 3 == 0 {
                let pool = ferrite_runtime::threads::Pool::new(2).unwrap();
                ferrite_runtime::threads::scoped(Some(&pool), || k.exec(&x, &mut got));
            } else {
                k.exec(&x, &mut got);
            }
            let what = format!("{name} case {case} groups {groups} {shapes:?} {g:?}");
            assert_close(&got, &want, &mag, &what);
            ran += 1;
        }
    }
    println!("grouped conv f32: {ran} runs within tolerance");
    assert!(ran >= 50, "only {ran} grouped shapes ran");
}

#[test]
fn conv_transpose_f32_within_tolerance() {
    use ferrite_runtime::kernels::reference::math::{conv_transpose_f32, ConvTransposeGeometry};
    let tables = variants();
    let mut rng = Rng(0xdec0_4e55_dec0_4e55);
    let mut ran = 0;
    for case in 0..200 {
        let (ih, iw) = (1 + rng.below(7), 1 + rng.below(7));
        let (ic, oc) = (rng.pick(&[1, 3, 16, 33]), rng.pick(&[1, 2, 16, 40]));
        let kernel = [1 + rng.below(4), 1 + rng.below(4)];
        let stride = [1 + rng.below(3), 1 + rng.below(3)];
        let dilation = [rng.pick(&[1, 1, 2]), rng.pick(&[1, 1, 2])];
        let full = |i: usize| (ih.max(iw) - 1) * stride[i] + (kernel[i] - 1) * dilation[i] + 1;
        let pad = [rng.below(kernel[0]), rng.below(kernel[1])];
        let n = rng.pick(&[1, 1, 2]);
        // Any output size from a few rows short of the full footprint to a
        // few past it (cropped or never written but by the bias).
        let oh = (full(0) + rng.below(3))
            .saturating_sub(pad[0] + rng.below(3))
            .max(1);
        let ow = (full(1) + rng.below(3))
            .saturating_sub(pad[1] + rng.below(3))
            .max(1);
        let g = ConvTransposeGeometry {
            stride,
            dilation,
            pad,
            group: 1,
            in_shape: [n, ih, iw, ic],
            out_shape: [n, oh, ow, oc],
            kernel,
        };
        let x = rng.f32s(n * ih * iw * ic);
        let w = rng.f32s(ic * oc * kernel[0] * kernel[1]);
        let bias = (rng.below(3) != 0).then(|| rng.f32s(oc));
        let mut want = vec![0f32; n * oh * ow * oc];
        conv_transpose_f32(&g, &x, &w, bias.as_deref(), &mut want);
        let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
        let mut mag = vec![0f32; want.len()];
        let ba = bias.as_deref().map(abs);
        conv_transpose_f32(&g, &abs(&x), &abs(&w), ba.as_deref(), &mut mag);
        for (name, t) in &tables {
            let Some(isa) = t.sgemm else { continue };
            let Some(k) = pack::SDeconv::new(&isa, &g, &w, bias.as_deref()) else {
                // Only footprints wider than the stack tile are declined.
                assert!(
                    kernel[0] * kernel[1] * oc * 4 > pack::IM2COL_BYTES,
                    "{name} declined {g:?}"
                );
                continue;
            };
            let mut got = vec![0f32; want.len()];
            k.exec(&x, &mut got);
            assert_close(&got, &want, &mag, &format!("{name} case {case} {g:?}"));
            ran += 1;
        }
    }
    println!("conv transpose f32: {ran} runs within tolerance");
    assert!(ran >= 100, "only {ran} runs");
}

#[test]
fn fully_connected_f32_within_tolerance() {
    let tables = variants();
    let mut rng = Rng(0x4444_5555_6666_7777);
    for case in 0..100 {
        let batches = rng.pick(&[1, 2]);
        let k = rng.pick(&[1, 15, 16, 17, 100, 1280]);
        let n = rng.pick(&[1, 5, 64, 100]);
        let x = rng.f32s(batches * k);
        let w = rng.f32s(n * k);
        let bias = (rng.below(2) == 0).then(|| rng.f32s(n));
        let mut want = vec![0f32; batches * n];
        conv::fully_connected_f32(
            (f32::MIN, f32::MAX),
            &x,
            batches,
            k,
            &w,
            n,
            bias.as_deref(),
            &mut want,
        );
        let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
        let mut mag = vec![0f32; want.len()];
        let ba = bias.as_deref().map(abs);
        conv::fully_connected_f32(
            (f32::MIN, f32::MAX),
            &abs(&x),
            batches,
            k,
            &abs(&w),
            n,
            ba.as_deref(),
            &mut mag,
        );
        for (name, t) in &tables {
            let Some(e) = t.sdot else { continue };
            let fc = pack::SFc {
                act: (f32::MIN, f32::MAX),
                batches,
                k,
                n,
                run: e.f,
            };
            let mut got = vec![0f32; want.len()];
            fc.exec(&x, &w, bias.as_deref(), &mut got);
            assert_close(
                &got,
                &want,
                &mag,
                &format!("{name} case {case} k {k} n {n}"),
            );
        }
    }
}

/// The same conv with 1, 2 and 3 threads gives the same bytes.
#[cfg(feature = "std")]
#[test]
fn threads_do_not_change_results() {
    use ferrite_runtime::threads::{scoped, Pool};
    let tables = variants();
    let mut rng = Rng(99);
    let g = Conv2dGeometry {
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: 1,
        pad_left: 1,
    };
    let shapes = [[1, 19, 23, 24], [40, 3, 3, 24], [1, 19, 23, 40]];
    let p = random_i8_params(&mut rng, 40);
    let x = rng.i8s(19 * 23 * 24, 0);
    let w = rng.i8s(40 * 9 * 24, 0);
    let mut want = vec![0i8; 19 * 23 * 40];
    conv::conv2d_i8(
        &g, &p, &x, shapes[0], &w, shapes[1], None, &mut want, shapes[2],
    );
    for (name, t) in &tables {
        let Some(isa) = t.qgemm else { continue };
        let (k, _) = pack::QConv::new(&isa, ConvShape { g, shapes }, &p, &w, None).unwrap();
        for threads in 1..=3 {
            let pool = Pool::new(threads).unwrap();
            let mut got = vec![0i8; want.len()];
            scoped(Some(&pool), || k.exec(&x, &mut got));
            assert_eq!(got, want, "{name} with {threads} threads");
        }
    }
}

#[test]
fn add_i8_matches_reference() {
    use ferrite_runtime::kernels::reference::elementwise::AddI8Params;
    let tables = variants();
    let mut rng = Rng(0xadd0_add0_add0_add0);
    let mut ran = 0;
    for case in 0..300 {
        let q = |rng: &mut Rng| {
            let z = rng.pick(&[-128, 127, 0, 17, -3]);
            QParams {
                scale: rng.scale() * 0.02,
                zero_point: z,
            }
        };
        let (qa, qb, qy) = (q(&mut rng), q(&mut rng), q(&mut rng));
        let act = rng.pick(&[Activation::None, Activation::Relu, Activation::Relu6]);
        let Some(mut p) = AddI8Params::new(qa, qb, qy, act, case % 5 == 0) else {
            continue;
        };
        if case % 7 == 0 {
            // Outside what `new` makes: kernels must fall back to a general path.
            p.left_shift = 22;
        }
        let n = rng.pick(&[1, 7, 15, 16, 17, 33, 1000]);
        let mode = if case % 10 == 0 { 1 + rng.below(3) } else { 0 };
        let (a, b) = (rng.i8s(n, mode), rng.i8s(n, 0));
        let want: Vec<i8> = a.iter().zip(&b).map(|(&x, &y)| p.apply(x, y)).collect();
        for (name, t) in &tables {
            let Some(e) = t.qadd else { continue };
            let mut got = vec![0i8; n];
            (e.f)(&p, &a, &b, &mut got);
            assert_eq!(got, want, "{name} case {case} {p:?}");
            ran += 1;
        }
    }
    println!("add i8: {ran} optimized runs equal the reference");
}

#[test]
fn float_add_i8_matches_reference() {
    use ferrite_runtime::kernels::reference::elementwise::FloatAddI8Params;
    let tables = variants();
    let mut rng = Rng(0xf1a7_add0_f1a7_add0);
    let mut ran = 0;
    for case in 0..300 {
        let q = |rng: &mut Rng| {
            let z = rng.pick(&[-128, 127, 0, 17, -3]);
            QParams {
                scale: rng.scale() * 0.02,
                zero_point: z,
            }
        };
        let (qa, qb, qy) = (q(&mut rng), q(&mut rng), q(&mut rng));
        let act = rng.pick(&[Activation::None, Activation::Relu, Activation::Relu6]);
        let p = FloatAddI8Params::new(qa, qb, qy, act, case % 4 < 2);
        let n = rng.pick(&[1, 7, 15, 16, 17, 33, 1000]);
        let mode = if case % 10 == 0 { 1 + rng.below(3) } else { 0 };
        let (a, b) = (rng.i8s(n, mode), rng.i8s(n, 0));
        let want: Vec<i8> = a.iter().zip(&b).map(|(&x, &y)| p.apply(x, y)).collect();
        for (name, t) in &tables {
            let Some(e) = t.qadd_float else { continue };
            let mut got = vec![0i8; n];
            (e.f)(&p, &a, &b, &mut got);
            assert_eq!(got, want, "{name} case {case} {p:?}");
            ran += 1;
        }
    }
    println!("float add i8: {ran} optimized runs equal the reference");
}

#[test]
fn swish_f32_within_4_ulp_of_reference() {
    use ferrite_runtime::kernels::reference::activation::swish_f32;
    let tables = variants();
    let mut rng = Rng(0x5a15_5a15);
    let mut ran = 0;
    let special = [
        0.0f32,
        -0.0,
        -88.0,
        -88.1,
        -87.9,
        88.0,
        100.0,
        -1e30,
        1e30,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MIN_POSITIVE,
    ];
    for case in 0..40 {
        let n = rng.pick(&[1, 7, 15, 16, 17, 33, 1000]);
        let scale = rng.pick(&[1.0, 10.0, 100.0]);
        let mut x: Vec<f32> = rng.f32s(n).iter().map(|v| v * scale).collect();
        if case % 4 == 0 {
            for (v, s) in x.iter_mut().zip(special.iter().cycle().skip(case)) {
                *v = *s;
            }
        }
        let mut want = vec![0f32; n];
        swish_f32(&x, &mut want);
        for (name, t) in &tables {
            let Some(e) = t.swish_f32 else { continue };
            let mut got = vec![0f32; n];
            (e.f)(&x, &mut got);
            for ((g, w), v) in got.iter().zip(&want).zip(&x) {
                // Within 4 ulp of the reference (itself within 4 of the
                // exact value), NaN for NaN, exact zeros and infinities.
                let ok = if w.is_nan() {
                    g.is_nan()
                } else if *w == 0.0 || w.is_infinite() {
                    g == w
                } else {
                    (g - w).abs() <= 4.0 * f32::EPSILON * w.abs()
                };
                assert!(
                    ok,
                    "{name} case {case}: swish({v:e}) = {g:e}, reference {w:e}"
                );
            }
            ran += 1;
        }
    }
    println!("swish f32: {ran} optimized runs within 4 ulp of the reference");
}

/// Erf on wider vectors is the reference's polynomial compiled for the
/// wider ISA: the same results, bit for bit, specials included.
#[test]
fn erf_f32_equals_reference_bit_for_bit() {
    use ferrite_runtime::kernels::reference::activation::erf_f32;
    let tables = variants();
    let mut rng = Rng(0x0e4f_06e1);
    let special = [
        0.0f32,
        -0.0,
        0.9,
        -3.9,
        9.3,
        -13.0,
        1e30,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1e-39,
    ];
    let mut ran = 0;
    for case in 0..40 {
        let n = rng.pick(&[1, 7, 15, 16, 17, 33, 1000]);
        let scale = rng.pick(&[1.0, 4.0, 20.0]);
        let mut x: Vec<f32> = rng.f32s(n).iter().map(|v| v * scale).collect();
        if case % 4 == 0 {
            for (v, s) in x.iter_mut().zip(special.iter().cycle().skip(case)) {
                *v = *s;
            }
        }
        let mut want = vec![0f32; n];
        erf_f32(&x, &mut want);
        for (name, t) in &tables {
            let Some(e) = t.erf_f32 else { continue };
            let mut got = vec![0f32; n];
            (e.f)(&x, &mut got);
            assert!(
                same_bits(&got, &want),
                "{name} case {case}:\n{x:?}\n{got:?}\n{want:?}"
            );
            ran += 1;
        }
    }
    println!("erf f32: {ran} optimized runs equal the reference bit for bit");
}

/// Exact GELU on wider vectors: within 24 ulp of the f64 formula (the
/// reference's bound) on every 2^-10 step of [-12, 12] and across the
/// region boundaries, with the reference's specials (NaN, +inf, and NaN
/// for -inf as the formula gives).
#[test]
fn gelu_f32_tracks_f64_as_the_reference() {
    let mut xs: Vec<f32> = (-12 * 1024..=12 * 1024)
        .map(|i| i as f32 / 1024.0)
        .collect();
    for edge in [0.9f32, 3.9, 9.3] {
        let x = edge * core::f32::consts::SQRT_2;
        for d in -3..=3 {
            let v = f32::from_bits((x.to_bits() as i32 + d) as u32);
            xs.extend([v, -v]);
        }
    }
    xs.extend([1e-30, -1e-30, 13.0, -13.0, 1e30, -1e30]);
    let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0];
    let mut ran = 0;
    for (name, t) in &variants() {
        let Some(e) = t.gelu_f32 else { continue };
        let mut got = vec![0f32; xs.len()];
        (e.f)(&xs, &mut got);
        let mut worst = 0f32;
        for (&g, &x) in got.iter().zip(&xs) {
            let d = x as f64;
            let exact = 0.5 * d * libm::erfc(-d / core::f64::consts::SQRT_2);
            // Results below f32's normal range (which sessions flush) may be 0.
            if exact.abs() < f32::MIN_POSITIVE as f64 && g.abs() < f32::MIN_POSITIVE {
                continue;
            }
            let spacing = (exact.abs() as f32).max(f32::MIN_POSITIVE) * f32::EPSILON;
            worst = worst.max(((g as f64 - exact).abs() / spacing as f64) as f32);
        }
        assert!(worst <= 24.0, "{name} gelu: {worst} ulp");
        let mut special = [0f32; 5];
        (e.f)(&specials, &mut special);
        assert!(
            special[0].is_nan() && special[2].is_nan(),
            "{name}: {special:?}"
        );
        assert_eq!(special[1], f32::INFINITY, "{name}");
        assert!(
            special[3] == 0.0 && special[4] == 0.0,
            "{name}: {special:?}"
        );
        println!("{name} gelu within {worst} ulp of f64");
        ran += 1;
    }
    println!("gelu f32: {ran} optimized kernels checked");
}

/// LOGISTIC with the polynomial `exp`: within 4 ulp of the reference's
/// correctly rounded one across its cut-offs, 0 where the reference's
/// result leaves f32's normal range, NaN for NaN.
#[test]
fn logistic_f32_within_4_ulp_of_reference() {
    use ferrite_runtime::kernels::reference::activation::logistic_f32;
    let mut tables = variants();
    tables.push(("detected", KernelTable::detect()));
    let mut xs: Vec<f32> = (-100 * 64..=30 * 64).map(|i| i as f32 / 64.0).collect();
    for edge in [-9.0f32, 16.619_047, -87.0] {
        for d in -2..=2 {
            xs.push(f32::from_bits((edge.to_bits() as i32 + d) as u32));
        }
    }
    xs.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e-30]);
    let mut want = vec![0f32; xs.len()];
    logistic_f32(&xs, &mut want);
    let mut ran = 0;
    for (name, t) in &tables {
        let Some(e) = t.logistic_f32 else { continue };
        let mut got = vec![0f32; xs.len()];
        (e.f)(&xs, &mut got);
        for ((g, w), x) in got.iter().zip(&want).zip(&xs) {
            let ok = if w.is_nan() {
                g.is_nan()
            } else if w.abs() < f32::MIN_POSITIVE {
                g.abs() < f32::MIN_POSITIVE
            } else {
                (g - w).abs() <= 4.0 * f32::EPSILON * w.abs()
            };
            assert!(ok, "{name}: logistic({x:e}) = {g:e}, reference {w:e}");
        }
        ran += 1;
    }
    assert!(ran > 0, "the detected table has a LOGISTIC kernel");
    println!("logistic f32: {ran} optimized kernels within 4 ulp of the reference");
}

/// SOFTMAX with the polynomial `exp` and lane-wise sums: no further from
/// the exact (f64) softmax than the reference is, plus 8 ulp (or 1e-37
/// absolute where the reference underflows to 0); NaN where it is NaN; on
/// rows with and without a 16-lane tail.
#[test]
fn softmax_f32_within_8_ulp_of_reference_error() {
    use ferrite_runtime::kernels::reference::activation::softmax_f32;
    let mut tables = variants();
    tables.push(("detected", KernelTable::detect()));
    let mut rng = Rng(0x0050_f73a);
    let mut ran = 0;
    for case in 0..40 {
        let depth = rng.pick(&[1, 5, 16, 17, 49, 100, 1000]);
        let rows = rng.pick(&[1, 3, 8]);
        let scale = rng.pick(&[1.0, 10.0, 100.0]);
        let beta = rng.pick(&[1.0, 0.5, 2.0]);
        let mut x: Vec<f32> = rng.f32s(rows * depth).iter().map(|v| v * scale).collect();
        if case % 5 == 0 {
            x[depth / 2] = f32::NEG_INFINITY;
        }
        if case % 7 == 0 {
            x[0] = f32::NAN;
        }
        let mut want = vec![0f32; x.len()];
        softmax_f32(beta, depth, &x, &mut want);
        let mut exact = vec![0f64; x.len()];
        for (row, out) in x.chunks(depth).zip(exact.chunks_mut(depth)) {
            let max = row.iter().fold(f32::MIN, |m, &v| if v > m { v } else { m }) as f64;
            for (o, &v) in out.iter_mut().zip(row) {
                *o = ((v as f64 - max) * beta as f64).exp();
            }
            let sum: f64 = out.iter().sum();
            out.iter_mut().for_each(|o| *o /= sum);
        }
        for (name, t) in &tables {
            let Some(e) = t.softmax_f32 else { continue };
            let mut got = vec![0f32; x.len()];
            (e.f)(beta, depth, &x, &mut got);
            for (i, ((g, w), x)) in got.iter().zip(&want).zip(&exact).enumerate() {
                let ok = if w.is_nan() {
                    g.is_nan()
                } else {
                    let slack = (8.0 * f64::from(f32::EPSILON) * x.abs()).max(1e-37);
                    (*g as f64 - x).abs() <= (*w as f64 - x).abs() + slack
                };
                assert!(
                    ok,
                    "{name} case {case} depth {depth} [{i}]: {g:e}, reference {w:e}"
                );
            }
            ran += 1;
        }
    }
    println!("softmax f32: {ran} optimized runs within the reference's error + 8 ulp");
}

#[test]
fn binary_f32_equals_reference_bit_for_bit() {
    use ferrite_runtime::kernels::reference::elementwise::binary_f32;
    let tables = variants();
    let mut rng = Rng(0xb1_0a4f);
    let ops = BINARY_OPS;
    let acts = [
        Activation::None,
        Activation::Relu,
        Activation::Relu6,
        Activation::ReluN1To1,
    ];
    let special = [
        0.0f32,
        -0.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e-39,
        6.0,
        -1.0,
    ];
    let mut ran = 0;
    for case in 0..100 {
        let n = rng.pick(&[1, 7, 15, 16, 17, 33, 1000]);
        let (op, act) = (rng.pick(&ops), rng.pick(&acts));
        let (mut a, mut b) = (rng.f32s(n), rng.f32s(n));
        if case % 5 == 0 {
            for (i, v) in a.iter_mut().enumerate().step_by(3) {
                *v = special[(i + case) % special.len()];
            }
            for (i, v) in b.iter_mut().enumerate().step_by(2) {
                *v = special[(i * 7 + case) % special.len()];
            }
        }
        let mut want = vec![0f32; n];
        binary_f32(op, act, &a, &[n], &b, &[n], &mut want, &[n]);
        for (name, t) in &tables {
            let Some(e) = t.binary_f32 else { continue };
            let mut got = vec![0f32; n];
            (e.f)(op, act, &a, &b, &mut got);
            let same = same_bits(&got, &want);
            assert!(
                same,
                "{name} case {case} {op:?} {act:?}:\n{got:?}\n{want:?}"
            );
            ran += 1;
        }
    }
    println!("binary f32: {ran} optimized runs equal the reference bit for bit");
}

/// A broadcast operand that repeats along the other (a channel vector, a
/// scalar) runs the same-shape kernel on tiled repeats: the reference's
/// broadcast values, bit for bit, on any thread count, with the small
/// operand on either side (SUB is not commutative).
#[test]
fn repeated_binary_f32_equals_reference_bit_for_bit() {
    use ferrite_runtime::kernels::reference::elementwise::binary_f32;
    use ferrite_runtime::threads::{scoped, Pool};
    let tables = variants();
    let mut rng = Rng(0x5e_b10c);
    let ops = BINARY_OPS;
    let acts = [Activation::None, Activation::Relu6];
    let mut ran = 0;
    for case in 0..60 {
        let (h, w) = (rng.pick(&[1, 3, 17, 40]), rng.pick(&[1, 5, 33]));
        let c = rng.pick(&[1, 3, 16, 24, 1000, 1500]);
        let full = [1, h, w, c];
        let small: Vec<usize> = match case % 5 {
            0 => vec![c],
            1 => vec![1, 1, 1, c],
            2 => vec![w, c],
            3 => vec![],
            _ => vec![1],
        };
        let (op, act) = (rng.pick(&ops), rng.pick(&acts));
        let small_first = case % 2 == 1;
        let x = rng.f32s(full.iter().product());
        let y = rng.f32s(small.iter().product());
        let (a, a_shape, b, b_shape) = if small_first {
            (&y, &small[..], &x, &full[..])
        } else {
            (&x, &full[..], &y, &small[..])
        };
        let mut want = vec![0f32; x.len()];
        binary_f32(op, act, a, a_shape, b, b_shape, &mut want, &full);
        for (name, t) in &tables {
            let Some(e) = t.binary_f32 else { continue };
            for threads in 1..=3 {
                let pool = Pool::new(threads).unwrap();
                let mut got = vec![0f32; x.len()];
                scoped(Some(&pool), || {
                    pack::repeated_elementwise(&x, &y, small_first, &mut got, |a, b, o| {
                        (e.f)(op, act, a, b, o)
                    })
                });
                let same = same_bits(&got, &want);
                assert!(
                    same,
                    "{name} case {case} {op:?} {full:?} with {small:?}, {threads} threads"
                );
                ran += 1;
            }
        }
    }
    println!("repeated binary f32: {ran} optimized runs equal the reference bit for bit");
}

/// A per-row operand (`[.., R, 1]` against `[.., R, C]`: a layer norm's
/// mean) spread over the rows' elements: the reference's broadcast values,
/// bit for bit, on any thread count, with the small operand on either side.
#[test]
fn spread_binary_f32_equals_reference_bit_for_bit() {
    use ferrite_runtime::kernels::reference::elementwise::binary_f32;
    use ferrite_runtime::threads::{scoped, Pool};
    let tables = variants();
    let mut rng = Rng(0x005b_4ead);
    let acts = [Activation::None, Activation::Relu];
    let mut ran = 0;
    for case in 0..40 {
        let (h, w) = (rng.pick(&[1, 3, 17, 60]), rng.pick(&[1, 5, 33]));
        let c = rng.pick(&[2, 3, 16, 96, 1000, 1500]);
        let full = [1, h, w, c];
        let (small, inner): (Vec<usize>, usize) = match case % 3 {
            0 => (vec![1, h, w, 1], c),
            1 => (vec![h, w, 1], c),
            _ => (vec![1, h, 1, 1], w * c),
        };
        let (op, act) = (rng.pick(&BINARY_OPS), rng.pick(&acts));
        let small_first = case % 2 == 1;
        let x = rng.f32s(full.iter().product());
        let y = rng.f32s(small.iter().product());
        let (a, a_shape, b, b_shape) = if small_first {
            (&y, &small[..], &x, &full[..])
        } else {
            (&x, &full[..], &y, &small[..])
        };
        let mut want = vec![0f32; x.len()];
        binary_f32(op, act, a, a_shape, b, b_shape, &mut want, &full);
        for (name, t) in &tables {
            let Some(e) = t.binary_f32 else { continue };
            for threads in 1..=3 {
                let pool = Pool::new(threads).unwrap();
                let mut got = vec![0f32; x.len()];
                scoped(Some(&pool), || {
                    pack::spread_elementwise(&x, &y, (small_first, inner), &mut got, |a, b, o| {
                        (e.f)(op, act, a, b, o)
                    })
                });
                assert!(
                    same_bits(&got, &want),
                    "{name} case {case} {op:?} {full:?} with {small:?}, {threads} threads"
                );
                ran += 1;
            }
        }
    }
    println!("spread binary f32: {ran} optimized runs equal the reference bit for bit");
}

#[test]
fn mean_hw_matches_reference() {
    use ferrite_runtime::kernels::reference::pool::{self, MeanI8Params, ReduceGeometry};
    let mut rng = Rng(0x3ea4);
    // Odd cases split the outputs over 3 threads (channel chunks, across
    // batches too).
    let pool = ferrite_runtime::threads::Pool::new(3).unwrap();
    for case in 0..60 {
        let pool = (case % 2 == 1).then_some(&pool);
        let dims = [
            rng.pick(&[1, 2]),
            1 + rng.below(8),
            1 + rng.below(8),
            rng.pick(&[1, 3, 16, 300, 1280]),
        ];
        let n: usize = dims.iter().product();
        let g = ReduceGeometry::new(&dims, &[1, 2]).unwrap();
        let hw = pack::MeanHw {
            batches: dims[0],
            pixels: dims[1] * dims[2],
            channels: dims[3],
        };
        let x = rng.f32s(n);
        let mut want = vec![0f32; dims[0] * dims[3]];
        pool::mean_f32(&g, &x, &mut want);
        let mut got = vec![0f32; want.len()];
        ferrite_runtime::threads::scoped(pool, || hw.exec_f32(&x, &mut got));
        assert_eq!(got, want, "f32 case {case} {dims:?}");
        let qi = QParams {
            scale: rng.scale() * 0.01,
            zero_point: rng.pick(&[-128, 0, 127]),
        };
        let qo = QParams {
            scale: rng.scale() * 0.01,
            zero_point: rng.pick(&[-128, 0, 5]),
        };
        let p = MeanI8Params::new(qi, qo, g.reduced_count(), random_rounding(&mut rng));
        let mode = if case % 5 == 0 { 1 + rng.below(3) } else { 0 };
        let x = rng.i8s(n, mode);
        let mut want = vec![0i8; dims[0] * dims[3]];
        pool::mean_i8(&g, &p, &x, &mut want);
        let mut got = vec![0i8; want.len()];
        ferrite_runtime::threads::scoped(pool, || hw.exec_i8(&p, &x, &mut got));
        assert_eq!(got, want, "i8 case {case} {dims:?}");
    }
}

#[test]
fn max_pool_matches_reference() {
    use ferrite_runtime::kernels::reference::pool::{self, PoolGeometry};
    let mut rng = Rng(0x9001);
    // Odd cases split the output rows over 3 threads.
    let threads = ferrite_runtime::threads::Pool::new(3).unwrap();
    for case in 0..200 {
        let threads = (case % 2 == 1).then_some(&threads);
        let (fh, fw) = (1 + rng.below(3), 1 + rng.below(3));
        let (sh, sw) = (1 + rng.below(2), 1 + rng.below(2));
        let (pt, pl) = (rng.below(fh), rng.below(fw));
        let dims = [
            rng.pick(&[1, 2]),
            fh + rng.below(8),
            fw + rng.below(8),
            rng.pick(&[1, 3, 16, 28, 300]),
        ];
        let oh = (dims[1] + 2 * pt - fh) / sh + 1;
        let ow = (dims[2] + 2 * pl - fw) / sw + 1;
        let ys = [dims[0], oh, ow, dims[3]];
        let g = PoolGeometry {
            filter_h: fh,
            filter_w: fw,
            stride_h: sh,
            stride_w: sw,
            pad_top: pt,
            pad_left: pl,
        };
        let k = pack::MaxPool {
            g,
            shapes: [dims, ys],
        };
        let n: usize = dims.iter().product();
        let mut x = rng.f32s(n);
        if case % 5 == 0 {
            // Signed zeros and NaN: the fold order and comparison must match.
            for (i, v) in x.iter_mut().enumerate() {
                *v = [0.0, -0.0, f32::NAN, *v][i % 4];
            }
        }
        let act = rng.pick(&[(f32::MIN, f32::MAX), (0.0, 6.0)]);
        let mut want = vec![0f32; ys.iter().product()];
        pool::max_pool_f32(&g, act, &x, dims, &mut want, ys);
        let mut got = vec![0f32; want.len()];
        ferrite_runtime::threads::scoped(threads, || k.exec_f32(act, &x, &mut got));
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "f32 case {case}");
        let xi = rng.i8s(n, if case % 7 == 0 { 2 } else { 0 });
        let acti = rng.pick(&[(-128, 127), (-10, 50)]);
        let mut want = vec![0i8; ys.iter().product()];
        pool::max_pool_i8(&g, acti.0, acti.1, &xi, dims, &mut want, ys);
        let mut got = vec![0i8; want.len()];
        ferrite_runtime::threads::scoped(threads, || k.exec_i8(acti, &xi, &mut got));
        assert_eq!(got, want, "i8 case {case}");
    }
}

#[test]
fn pad_last_axis_matches_reference() {
    use ferrite_runtime::kernels::reference::movement;
    let mut rng = Rng(0x9ad1);
    let pool = ferrite_runtime::threads::Pool::new(3).unwrap();
    for case in 0..60 {
        let dims = [
            1 + rng.below(3),
            1 + rng.below(40),
            1 + rng.below(40),
            rng.pick(&[1, 3, 24, 100]),
        ];
        let (before, after) = (rng.below(5), rng.below(40));
        let mut out_dims = dims;
        out_dims[3] += before + after;
        let x = rng.i8s(dims.iter().product(), 0);
        let value = rng.i8s(1, 0)[0];
        let mut want = vec![0i8; out_dims.iter().product()];
        movement::pad(&x, &dims, &[0, 0, 0, before], &mut want, &out_dims, value);
        let k = pack::PadLast {
            pixels: dims[0] * dims[1] * dims[2],
            c_in: dims[3],
            before,
            c_out: out_dims[3],
        };
        let mut got = vec![1i8; want.len()];
        let threads = (case % 2 == 1).then_some(&pool);
        ferrite_runtime::threads::scoped(threads, || k.exec(&x, &mut got, value));
        assert_eq!(got, want, "case {case}: {dims:?} padded {before}+{after}");
    }
}
