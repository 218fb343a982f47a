//! Whole models give the same outputs with the optimized kernels of this CPU
//! as with the portable reference (`FERRITE_KERNELS=reference`), and with 1
//! 2 or 3 threads: int8 bit for bit, f32 within 1e-5 relative; and any
//! thread count gives the same bits as one.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts allocations (of every thread, pool workers included).
struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

use ferrite::npy::Array;
use ferrite_runtime::kernels::KernelTable;
use ferrite_runtime::{DType, Model, Options};

fn inputs_for(model: &Model<'_>) -> Vec<Array> {
    let session = ferrite_runtime::Session::new(model, Options::default()).unwrap();
    let mut seed = 0x9e37_79b9u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    session
        .inputs()
        .iter()
        .map(|i| {
            let n = i.numel();
            let data: Vec<u8> = match i.dtype {
                DType::F32 => (0..n)
                    .flat_map(|_| ((next() >> 8) as f32 / (1u32 << 23) as f32 - 1.0).to_le_bytes())
                    .collect(),
                _ => (0..n * i.dtype.size()).map(|_| next() as u8).collect(),
            };
            Array {
                dtype: i.dtype,
                shape: i.shape.dims().to_vec(),
                data,
            }
        })
        .collect()
}

fn check(path: &std::path::Path) {
    let model = common::convert(&std::fs::read(path).unwrap()).unwrap();
    let inputs = inputs_for(&model);
    let reference = Options {
        kernels: Some(KernelTable::reference()),
        ..Options::default()
    };
    let want = common::run_with(&model, &inputs, reference).unwrap();
    let mut one_thread: Option<Vec<Array>> = None;
    for threads in [1, 2, 3] {
        let got = common::run_with(
            &model,
            &inputs,
            Options {
                threads,
                ..Options::default()
            },
        )
        .unwrap();
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            if w.dtype == DType::F32 {
                let e = common::rel_err(g, w);
                assert!(
                    e <= 1e-5,
                    "{}: output {k}, {threads} thread(s): relative error {e:e}",
                    path.display()
                );
            } else {
                assert_eq!(
                    g.data,
                    w.data,
                    "{}: output {k}, {threads} thread(s) differs",
                    path.display()
                );
            }
        }
        // Any thread count gives the bits one thread gives, f32 included:
        // the converter measures on every core and its packages must not
        // depend on how many the converting machine has.
        match &one_thread {
            None => one_thread = Some(got),
            Some(one) => {
                for (k, (g, o)) in got.iter().zip(one).enumerate() {
                    assert!(
                        g.data == o.data,
                        "{}: output {k} differs between 1 and {threads} threads",
                        path.display()
                    );
                }
            }
        }
    }
    // With a pool, `invoke` still allocates nothing (on any thread).
    let mut session = ferrite_runtime::Session::new(
        &model,
        Options {
            threads: 2,
            ..Options::default()
        },
    )
    .unwrap();
    session.invoke().unwrap();
    let before = ALLOCS.load(Ordering::SeqCst);
    for _ in 0..3 {
        session.invoke().unwrap();
    }
    assert_eq!(
        ALLOCS.load(Ordering::SeqCst),
        before,
        "{}: invoke allocated with 2 threads",
        path.display()
    );
    println!(
        "{}: optimized kernels agree with the reference (1 and 2 threads)",
        path.display()
    );
}

/// One test, not one per model: the allocation count sees every thread of
/// the process, and the test harness starts and reports tests on other
/// threads (on a busy machine, while another test's `invoke` is counted).
#[test]
fn optimized_kernels_equal_reference() {
    check(&common::root().join("models/fixtures/face_detection_short_range.tflite"));
    let Some(shared) = common::shared_models() else {
        eprintln!(
            "skipped MobileNetV2: shared models folder not found (set FERRITE_SHARED_MODELS)"
        );
        return;
    };
    check(&shared.join("mobilenet_v2_torchvision_int8.tflite"));
    check(&shared.join("mobilenet_v2_torchvision_f32.tflite"));
}
