//! `run` allocates nothing once the session exists: a counting global
//! allocator watches every allocation made while the models run.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ferrite_runtime::session::{TensorView, TensorViewMut};
use ferrite_runtime::{DType, Options, Session};

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

#[test]
fn run_allocates_nothing_after_session_new() {
    let mut models = vec![common::root().join("models/fixtures/face_detection_short_range.tflite")];
    // Every op family: one float and one int8 case each from the per-op suite.
    for name in [
        "conv_2d",
        "depthwise_conv_2d",
        "fully_connected",
        "add",
        "mul",
        "softmax",
        "logistic",
        "mean",
        "concatenation",
        "resize_bilinear",
        "strided_slice",
        "transpose",
        "pad",
        "split",
    ] {
        for dt in ["f32", "i8"] {
            models.push(common::root().join(format!("tests/fixtures/ops/{name}.{dt}.000.tflite")));
        }
    }
    for path in models {
        let model = common::convert(&std::fs::read(&path).unwrap()).unwrap();
        let mut session = Session::new(&model, Options::default()).unwrap();
        // Buffers for inputs and outputs, made before counting.
        let ins: Vec<(Vec<u8>, Vec<usize>, DType)> = session
            .inputs()
            .iter()
            .map(|i| {
                (
                    vec![1u8; i.numel() * i.dtype.size()],
                    i.shape.dims().to_vec(),
                    i.dtype,
                )
            })
            .collect();
        let mut outs: Vec<(Vec<u8>, Vec<usize>, DType)> = session
            .outputs()
            .iter()
            .map(|o| {
                (
                    vec![0u8; o.numel() * o.dtype.size()],
                    o.shape.dims().to_vec(),
                    o.dtype,
                )
            })
            .collect();
        let in_views: Vec<TensorView> = ins
            .iter()
            .map(|(d, s, t)| TensorView {
                dtype: *t,
                shape: s,
                data: d,
            })
            .collect();
        let mut out_views: Vec<TensorViewMut> = outs
            .iter_mut()
            .map(|(d, s, t)| TensorViewMut {
                dtype: *t,
                shape: s,
                data: d,
            })
            .collect();
        session.run(&in_views, &mut out_views).unwrap(); // warm-up
        let before = ALLOCS.load(Ordering::SeqCst);
        for _ in 0..3 {
            session.run(&in_views, &mut out_views).unwrap();
            session.invoke().unwrap();
        }
        let after = ALLOCS.load(Ordering::SeqCst);
        assert_eq!(
            after - before,
            0,
            "{}: run allocated {} times",
            path.display(),
            after - before
        );
    }
}
