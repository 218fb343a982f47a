//! The detect pipeline (fused pre-processing, inference, decoding, NMS,
//! mapping back to source pixels) allocates nothing per frame once warm: a
//! counting global allocator watches three frames.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferrite_pipelines::{image_io, Detector, Frame, PixelFormat};
use ferrite_runtime::{Model, Options};

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

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn blazeface() -> Model<'static> {
    let src =
        std::fs::read(root().join("models/fixtures/face_detection_short_range.tflite")).unwrap();
    let opts = ferrite_convert::ConvertOptions {
        detector: Some("blazeface-short-range".into()),
        ..Default::default()
    };
    Model::from_vec(&ferrite_convert::convert_with(&src, &opts).unwrap().bytes).unwrap()
}

#[test]
fn detect_allocates_nothing_once_warm() {
    let model = blazeface();
    let mut det = Detector::new(&model, Options::default()).unwrap();
    let img = image_io::load(&root().join("models/detect/images/faces_coffee.png")).unwrap();
    let frame = Frame::packed(
        PixelFormat::Rgb8,
        img.width() as usize,
        img.height() as usize,
        img.as_raw(),
    )
    .unwrap();
    det.detect(&frame).unwrap();
    let before = ALLOCS.load(Ordering::SeqCst);
    let mut n = 0;
    for _ in 0..3 {
        n = det.detect(&frame).unwrap().len();
    }
    let allocs = ALLOCS.load(Ordering::SeqCst) - before;
    assert_eq!(n, 2);
    assert_eq!(
        allocs, 0,
        "detect allocated {allocs} times on a warm detector"
    );
}
