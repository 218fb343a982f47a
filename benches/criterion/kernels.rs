//! Criterion benchmarks of the conv kernels on representative MobileNetV2 and
//! BlazeFace layer shapes: the reference and every optimized path this CPU
//! runs (`kernels::arch::variants`). Throughput is in MACs (criterion prints
//! it as "elements/s"; 1 Gelem/s = 1 GMAC/s = 2 GOP/s).
//!
//! `cargo bench -p ferrite-runtime --bench kernels [-- FILTER]`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrite_runtime::kernels::pack::{self, ConvShape};
use ferrite_runtime::kernels::reference::conv::{self, Conv2dGeometry, ConvI8Params};
use ferrite_runtime::kernels::{arch, KernelTable};
use ferrite_runtime::{Activation, QParams, Rounding};

/// A layer: name, input `[h, w, c]`, kernel size, stride, output channels,
/// depthwise. Layers that narrow the channels (MobileNetV2's linear
/// bottleneck projections) have no activation, the others ReLU6. Names
/// ending in `_same` pad the input by `k / 2` on every side (as the models
/// do; their border pixels take the kernels' slower paths), the others are
/// unpadded.
type Layer = (&'static str, [usize; 3], usize, usize, usize, bool);

const SHAPES: &[Layer] = &[
    ("mnv2_pw_112x112_16to96", [112, 112, 16], 1, 1, 96, false),
    ("mnv2_pw_112x112_32to16", [112, 112, 32], 1, 1, 16, false),
    ("mnv2_pw_56x56_144to24", [56, 56, 144], 1, 1, 24, false),
    ("mnv2_pw_28x28_32to192", [28, 28, 32], 1, 1, 192, false),
    ("mnv2_pw_7x7_320to1280", [7, 7, 320], 1, 1, 1280, false),
    ("mnv2_conv3x3s2_224_3to32", [225, 225, 3], 3, 2, 32, false),
    ("mnv2_dw3x3_56x56_144", [56, 56, 144], 3, 1, 144, true),
    ("mnv2_dw3x3s2_14x14_576", [15, 15, 576], 3, 2, 576, true),
    ("mnv2_dw3x3_14x14_576_same", [14, 14, 576], 3, 1, 576, true),
    ("blazeface_dw5x5_32x32_48", [32, 32, 48], 5, 1, 48, true),
    ("blazeface_pw_16x16_48to96", [16, 16, 48], 1, 1, 96, false),
];

fn data_i8(n: usize, seed: u32) -> Vec<i8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s as i8
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut tables: Vec<(&str, KernelTable)> = vec![("reference", KernelTable::reference())];
    tables.extend(arch::variants());
    for &(name, [ih, iw, ic], k, s, oc, dw) in SHAPES {
        let pad = if name.ends_with("_same") { k / 2 } else { 0 };
        let (oh, ow) = ((ih + 2 * pad - k) / s + 1, (iw + 2 * pad - k) / s + 1);
        let g = Conv2dGeometry {
            stride_h: s,
            stride_w: s,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: pad,
            pad_left: pad,
        };
        let fs = if dw { [1, k, k, ic] } else { [oc, k, k, ic] };
        let shapes = [[1, ih, iw, ic], fs, [1, oh, ow, oc]];
        let macs = (oh * ow * oc * k * k * if dw { 1 } else { ic }) as u64;
        let x = data_i8(ih * iw * ic, 1);
        let w = data_i8(fs.iter().product(), 2);
        let bias = vec![100i32; oc];
        let q = |scale, zero_point| QParams { scale, zero_point };
        let p = ConvI8Params::new(
            q(0.02, -3),
            &vec![0.004; oc],
            q(0.05, 7),
            if oc < ic && !dw {
                Activation::None
            } else {
                Activation::Relu6
            },
            oc,
            Rounding::FixedPoint,
        );
        let mut out = vec![0i8; oh * ow * oc];
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(macs));
        group.sample_size(20);
        for (tname, t) in &tables {
            let shape = ConvShape { g, shapes };
            if *tname == "reference" {
                group.bench_function(BenchmarkId::new("i8", tname), |b| {
                    b.iter(|| {
                        if dw {
                            conv::depthwise_conv2d_i8(
                                &g,
                                &p,
                                1,
                                &x,
                                shapes[0],
                                &w,
                                fs,
                                Some(&bias),
                                &mut out,
                                shapes[2],
                            );
                        } else {
                            conv::conv2d_i8(
                                &g,
                                &p,
                                &x,
                                shapes[0],
                                &w,
                                fs,
                                Some(&bias),
                                &mut out,
                                shapes[2],
                            );
                        }
                        black_box(&out);
                    })
                });
            } else if dw {
                let Some(e) = t.qdw else { continue };
                let kd = pack::QDw::new(e.f, shape, &p, &w, Some(&bias));
                group.bench_function(BenchmarkId::new("i8", e.name), |b| {
                    b.iter(|| kd.exec(black_box(&x), &mut out))
                });
            } else {
                let Some(isa) = t.qgemm else { continue };
                let (kc, kname) = pack::QConv::new(&isa, shape, &p, &w, Some(&bias)).unwrap();
                group.bench_function(BenchmarkId::new("i8", kname), |b| {
                    b.iter(|| kc.exec(black_box(&x), &mut out))
                });
            }
        }
        group.finish();
        bench_f32(c, name, g, shapes, macs, dw);
    }
}

/// The f32 conv of the same layer through each table's GEMM (`SConv`) or
/// depthwise kernel (`SDw`), under `f32/NAME`, with ReLU6 and a bias as the
/// models have.
fn bench_f32(
    c: &mut Criterion,
    name: &str,
    g: Conv2dGeometry,
    shapes: [[usize; 4]; 3],
    macs: u64,
    dw: bool,
) {
    let unit = |v: i8| f32::from(v) / 64.0;
    let x: Vec<f32> = data_i8(shapes[0].iter().product(), 1)
        .into_iter()
        .map(unit)
        .collect();
    let w: Vec<f32> = data_i8(shapes[1].iter().product(), 2)
        .into_iter()
        .map(unit)
        .collect();
    let bias = vec![0.5f32; shapes[2][3]];
    let mut out = vec![0f32; shapes[2].iter().product()];
    let mut group = c.benchmark_group(format!("f32/{name}"));
    group.throughput(Throughput::Elements(macs));
    group.sample_size(20);
    let mut seen = Vec::new();
    for (_, t) in arch::variants() {
        if dw {
            let Some(e) = t.sdw else { continue };
            if seen.contains(&e.name) {
                continue;
            }
            seen.push(e.name);
            let kd = pack::SDw::new(e.f, ConvShape { g, shapes }, (0.0, 6.0), &w, Some(&bias));
            group.bench_function(BenchmarkId::new("f32", e.name), |b| {
                b.iter(|| kd.exec(black_box(&x), &mut out))
            });
            continue;
        }
        let Some(isa) = t.sgemm else { continue };
        let shape = ConvShape { g, shapes };
        let (kc, kname) = pack::SConv::new(&isa, shape, (0.0, 6.0), &w, Some(&bias)).unwrap();
        // Several tables share one GEMM (the int8 paths differ).
        if seen.contains(&kname) {
            continue;
        }
        seen.push(kname);
        group.bench_function(BenchmarkId::new("f32", kname), |b| {
            b.iter(|| kc.exec(black_box(&x), &mut out))
        });
    }
    group.finish();
}

/// int8 residual ADD (TFLite's rounding) with a fused ReLU on BlazeFace's
/// largest (64x64x24) and MobileNetV2's 56x56x24, under `add/NAME`:
/// the reference and each table's kernel. Throughput in elements.
fn bench_add(c: &mut Criterion) {
    use ferrite_runtime::kernels::reference::elementwise::AddI8Params;
    let mut tables: Vec<(&str, KernelTable)> = vec![("reference", KernelTable::reference())];
    tables.extend(arch::variants());
    let q = |scale: f32, zero_point: i32| QParams { scale, zero_point };
    for (name, n) in [
        ("blazeface_64x64x24", 64 * 64 * 24),
        ("mnv2_56x56x24", 56 * 56 * 24),
    ] {
        let p = AddI8Params::new(
            q(0.031, -7),
            q(0.047, 12),
            q(0.06, -128),
            Activation::Relu,
            false,
        )
        .unwrap();
        let (a, b) = (data_i8(n, 7), data_i8(n, 11));
        let mut out = vec![0i8; n];
        let mut group = c.benchmark_group(format!("add/{name}"));
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function("reference", |bn| {
            bn.iter(|| {
                for ((o, &x), &y) in out.iter_mut().zip(black_box(&a)).zip(black_box(&b)) {
                    *o = p.apply(x, y);
                }
            })
        });
        for (_, t) in &tables {
            let Some(e) = t.qadd else { continue };
            group.bench_function(e.name, |bn| {
                bn.iter(|| (e.f)(&p, black_box(&a), black_box(&b), &mut out))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench, bench_add);
criterion_main!(benches);
