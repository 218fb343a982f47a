//! MediaPipe's selfie segmentation, whose last layer is MediaPipe's custom op
//! `Convolution2DTransposeBias`, converted from the bundled `.tflite` files
//! and run on a photo: the mask is MediaPipe's own (mediapipe==0.10.21,
//! `models/segment/make_reference.sh`), for the square and the landscape
//! model.

mod common;

use std::path::Path;

use ferrite::npy::Array;
use ferrite_pipelines::image_io;
use ferrite_runtime::DType;

/// A float16 `.npy` (version 1 header, little-endian, C order) as f32.
fn f16_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &b[..8],
        b"\x93NUMPY\x01\x00",
        "{}: npy version 1",
        path.display()
    );
    let len = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + len]).unwrap();
    assert!(header.contains("'descr': '<f2'") && header.contains("'fortran_order': False"));
    let dims = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = dims
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim().parse().unwrap())
        .collect();
    let data = b[10 + len..]
        .chunks_exact(2)
        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect();
    (shape, data)
}

#[test]
fn selfie_segmentation_masks_equal_mediapipe() {
    let root = common::root();
    let img = image_io::load(&root.join("models/detect/images/astronaut.png")).unwrap();
    assert_eq!(img.dimensions(), (256, 256));
    for (model, rows, reference) in [
        (
            "selfie_segmentation.tflite",
            0..256u32,
            "reference_square.npy",
        ),
        (
            "selfie_segmentation_landscape.tflite",
            56..200,
            "reference_landscape.npy",
        ),
    ] {
        let src = std::fs::read(root.join("models/fixtures").join(model)).unwrap();
        let m = common::convert(&src).unwrap_or_else(|e| panic!("{model}: {e:#}"));
        let h = rows.len();
        let x: Vec<u8> = rows
            .flat_map(|y| (0..256).map(move |x| (x, y)))
            .flat_map(|(x, y)| img.get_pixel(x, y).0)
            .flat_map(|v| (f32::from(v) / 255.0).to_le_bytes())
            .collect();
        let input = Array {
            dtype: DType::F32,
            shape: vec![1, h, 256, 3],
            data: x,
        };
        let out = common::run(&m, &[input]).unwrap();
        assert_eq!(out[0].shape, [1, h, 256, 1], "{model}");
        let got: Vec<f32> = out[0]
            .data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let (shape, want) = f16_npy(&root.join("models/segment").join(reference));
        assert_eq!(shape, [h, 256], "{reference}");
        // The reference is stored as float16: 2^-11 relative.
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs())
            .fold(0f32, f32::max);
        let flipped = got
            .iter()
            .zip(&want)
            .filter(|(g, w)| (**g > 0.5) != (**w > 0.5) && (**w - 0.5).abs() > 1e-3)
            .count();
        let person = want.iter().filter(|w| **w > 0.5).count();
        eprintln!(
            "{model}: worst |mask - MediaPipe's| {worst:.2e}, {person} of {} pixels person, {flipped} flipped",
            want.len()
        );
        assert!(
            worst <= 1e-3,
            "{model}: mask differs from MediaPipe's by {worst}"
        );
        assert_eq!(flipped, 0, "{model}: pixels on the other side of 0.5");
        assert!(
            person > want.len() / 4,
            "{model}: the photo's person is found"
        );
    }
}
