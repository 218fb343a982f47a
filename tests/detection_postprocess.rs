//! TFLite's SSD post-processing op (`TFLite_Detection_PostProcess`) against
//! LiteRT's own kernel, on the cases of
//! `models/golden/make_detection_goldens.py`: fast and regular suppression,
//! with and without a background class, several classes per detection,
//! keypoint values after the box, a threshold nothing passes, scores on a
//! coarse grid (ties across anchors and classes), detections_per_class above
//! max_detections. The count must
//! be equal and every detection slot LiteRT writes equal bit for bit (within
//! 1e-5 for `tiny_ssd`, a whole SSD whose convs round differently); the
//! slots it leaves unwritten are zero here.

mod common;

#[test]
fn detection_postprocess_matches_litert() {
    let dir = common::root().join("tests/fixtures/detection");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let cases = index["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    let mut found = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (inputs, wants) = (
            common::case_files(&dir, case, "inputs"),
            common::case_files(&dir, case, "outputs"),
        );
        let src = std::fs::read(dir.join(case["model"].as_str().unwrap())).unwrap();
        let model = common::convert(&src).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let gots = common::run(&model, &inputs).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(gots.len(), 4, "{name}");
        for (k, (g, w)) in gots.iter().zip(&wants).enumerate() {
            assert_eq!(
                (&g.shape, g.dtype),
                (&w.shape, w.dtype),
                "{name}: output {k}"
            );
        }
        let count = wants[3].as_f32()[0] as usize;
        assert_eq!(gots[3].as_f32(), wants[3].as_f32(), "{name}: count");
        assert_eq!(count as u64, case["detections"].as_u64().unwrap());
        found += count;
        // Fast suppression writes the first min(classes, per detection)
        // slots of each detection; with these cases, all of them.
        let written = count * case["slots_per_detection"].as_u64().unwrap() as usize;
        for (k, per) in [(0, 4), (1, 1), (2, 1)] {
            let (g, w) = (gots[k].as_f32(), wants[k].as_f32());
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            if case["exact"].as_bool().unwrap() {
                assert_eq!(
                    bits(&g[..written * per]),
                    bits(&w[..written * per]),
                    "{name}: output {k}"
                );
            } else {
                // A whole model: the layers before the op round differently.
                for (a, b) in g[..written * per].iter().zip(&w[..written * per]) {
                    assert!(
                        (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                        "{name}: output {k}: {a} vs {b}"
                    );
                }
            }
            assert!(
                g[written * per..].iter().all(|&v| v == 0.0),
                "{name}: output {k} past the detections"
            );
        }
    }
    assert!(found > 40, "the cases hold {found} detections");
}

/// `tiny_ssd.tflite` (or another model of `tests/fixtures/detection`)
/// converted with `tiny_ssd.toml`, quantized as `quantize` asks.
fn tiny_ssd(
    model: &str,
    quantize: Option<ferrite_convert::QuantizeOptions>,
) -> anyhow::Result<ferrite_convert::Converted> {
    let dir = common::root().join("tests/fixtures/detection");
    let src = std::fs::read(dir.join(model))?;
    let opts = ferrite_convert::ConvertOptions {
        detector_spec: Some(dir.join("tiny_ssd.toml")),
        quantize,
        ..Default::default()
    };
    ferrite_convert::convert_with(&src, &opts)
}

/// A whole SSD ending in the op (`tiny_ssd.tflite`, random weights), through
/// `ferrite_pipelines::Detector` with a `[decoded]` spec
/// (`tiny_ssd.toml`): on photos of other aspect ratios, each detection is
/// the model's own output (run on the same pre-processed input) scoring at
/// least the threshold, in order, its box swapped to x, y order and mapped
/// back to the photo's pixels, its label one past the op's class.
#[test]
fn decoded_ssd_outputs_become_detections_in_source_pixels() {
    use ferrite_pipelines::preprocess::{InputTensor, Resampler};
    use ferrite_pipelines::{image_io, Detector, Frame, PixelFormat};
    let c = tiny_ssd("tiny_ssd.tflite", None).unwrap_or_else(|e| panic!("{e:#}"));
    let model = ferrite_runtime::Model::from_vec(&c.bytes).unwrap();
    let mut det = Detector::new(&model, ferrite_runtime::Options::default()).unwrap();
    let spec = det.spec().clone();
    let mut seen = 0;
    for name in [
        "astronaut",
        "chelsea",
        "rocket",
        "faces_grid",
        "motorcycle_left",
    ] {
        let path = common::root().join(format!("models/detect/images/{name}.png"));
        let img = image_io::load(&path).unwrap();
        let (w, h) = (img.width() as usize, img.height() as usize);
        let frame = Frame::packed(PixelFormat::Rgb8, w, h, img.as_raw()).unwrap();
        let got = det.detect(&frame).unwrap().to_vec();
        // The same input by hand, and the model's raw outputs.
        let r = Resampler::new(&spec.preprocess, w, h).unwrap();
        let mut input = vec![0f32; 16 * 16 * 3];
        r.run(&spec.preprocess, &frame, &mut InputTensor::F32(&mut input))
            .unwrap();
        let arr = ferrite::npy::Array {
            dtype: ferrite_runtime::DType::F32,
            shape: vec![1, 16, 16, 3],
            data: input.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        let outs = common::run(&model, &[arr]).unwrap();
        let (boxes, classes, scores) = (outs[0].as_f32(), outs[1].as_f32(), outs[2].as_f32());
        let count = outs[3].as_f32()[0] as usize;
        let want: Vec<_> = (0..count).filter(|&i| scores[i] >= 0.5).collect();
        assert_eq!(got.len(), want.len(), "{name}");
        for (d, &i) in got.iter().zip(&want) {
            let b = &boxes[4 * i..4 * i + 4];
            let [x0, y0] = r.geometry.to_source(b[1], b[0]);
            let [x1, y1] = r.geometry.to_source(b[3], b[2]);
            assert_eq!(d.bbox, [x0, y0, x1, y1], "{name}");
            assert_eq!((d.class, d.score), (classes[i] as usize + 1, scores[i]));
            assert!(["circle", "square"].contains(&det.label(d).as_str()));
        }
        seen += got.len();
    }
    assert!(seen >= 5, "the photos give {seen} detections");
}

/// `--quantize int8` on the SSD: its convs become int8, the op and what
/// reads its outputs stay float (class ids and counts are not activations;
/// so do the outputs with `--io int8`),
/// and most int8 detections are float ones. (Not all: the random-weight
/// model scores dozens of boxes above 0.99 and keeps 5, so int8 rounding
/// changes which 5.)
#[test]
fn int8_ssd_keeps_its_post_processing_float() {
    use ferrite_pipelines::{image_io, Detector, Frame, PixelFormat};
    let calib = || ferrite_convert::QuantizeOptions {
        calib: common::root().join("models/detect/images"),
        ..Default::default()
    };
    let load = |c: &ferrite_convert::Converted| ferrite_runtime::Model::from_vec(&c.bytes).unwrap();
    let float = load(&tiny_ssd("tiny_ssd.tflite", None).unwrap());
    let c = tiny_ssd("tiny_ssd.tflite", Some(calib())).unwrap_or_else(|e| panic!("{e:#}"));
    // Judged by what the network feeds the op, not by its selections.
    let summary = c.summary.clone().unwrap();
    assert!(
        summary.contains("'box_encodings (read by the detection post-processing)'"),
        "{summary}"
    );
    let int8 = load(&c);
    let session = ferrite_runtime::Session::new(&int8, Default::default()).unwrap();
    let kernels = session.kernel_names();
    assert!(
        kernels
            .iter()
            .any(|k| k.contains("qgemm") || k.contains("qconv")),
        "{kernels:?}"
    );
    assert!(
        kernels.contains(&"ref_detection_postprocess_f32"),
        "{kernels:?}"
    );
    assert!(session
        .outputs()
        .iter()
        .all(|o| o.dtype == ferrite_runtime::DType::F32));
    // With int8 I/O the image input is int8; the detections stay float.
    let io = load(
        &tiny_ssd(
            "tiny_ssd.tflite",
            Some(ferrite_convert::QuantizeOptions {
                int8_io: true,
                ..calib()
            }),
        )
        .unwrap(),
    );
    let t = io.tensors();
    assert_eq!(t[io.inputs()[0]].dtype, ferrite_runtime::DType::I8);
    assert!(io
        .outputs()
        .iter()
        .all(|&o| t[o].dtype == ferrite_runtime::DType::F32));
    let (mut df, mut dq) = (
        Detector::new(&float, Default::default()).unwrap(),
        Detector::new(&int8, Default::default()).unwrap(),
    );
    let (mut matched, mut total) = (0, 0);
    for name in ["astronaut", "camera", "chelsea", "coffee", "rocket"] {
        let img = image_io::load(&common::root().join(format!("models/detect/images/{name}.png")))
            .unwrap();
        let (w, h) = (img.width() as usize, img.height() as usize);
        let frame = Frame::packed(PixelFormat::Rgb8, w, h, img.as_raw()).unwrap();
        let f = df.detect(&frame).unwrap().to_vec();
        for q in dq.detect(&frame).unwrap() {
            let best = f
                .iter()
                .filter(|d| d.class == q.class)
                .map(|d| ferrite_pipelines::postprocess::iou(&d.bbox, &q.bbox))
                .fold(0.0, f32::max);
            total += 1;
            matched += (best >= 0.8) as usize;
        }
    }
    eprintln!("{matched} of {total} int8 detections match a float one (IoU >= 0.8)");
    assert!(total >= 10 && matched * 2 >= total, "{matched} of {total}");
}

/// Classes and scores have the same shape; a spec that swaps them is caught
/// at conversion by following the outputs back to the op.
#[test]
fn swapped_decoded_outputs_fail_at_conversion() {
    let dir = common::root().join("tests/fixtures/detection");
    let src = std::fs::read(dir.join("tiny_ssd.tflite")).unwrap();
    let text = std::fs::read_to_string(dir.join("tiny_ssd.toml"))
        .unwrap()
        .replace(
            "min_score_thresh = 0.5",
            "min_score_thresh = 0.5\nclasses_output = 2\nscores_output = 1",
        );
    let spec = std::env::temp_dir().join(format!("ferrite-swap-{}.toml", std::process::id()));
    std::fs::write(&spec, text).unwrap();
    let opts = ferrite_convert::ConvertOptions {
        detector_spec: Some(spec.clone()),
        ..Default::default()
    };
    let e = format!(
        "{:#}",
        ferrite_convert::convert_with(&src, &opts).err().unwrap()
    );
    let _ = std::fs::remove_file(&spec);
    assert!(
        e.contains("classes_output is 2 but the model's classes are output 1"),
        "{e}"
    );
}

/// A uint8 image input (`tiny_ssd_u8.tflite`: scale 2/255, zero point 128,
/// dequantized inside the model): the `Detector` quantizes the
/// pre-processed frame into it, and finds what the model finds on that
/// input computed by hand.
#[test]
fn uint8_image_inputs_are_quantized_by_the_detector() {
    use ferrite_pipelines::preprocess::{InputTensor, Resampler};
    use ferrite_pipelines::{image_io, Detector, Frame, PixelFormat};
    let c = tiny_ssd("tiny_ssd_u8.tflite", None).unwrap_or_else(|e| panic!("{e:#}"));
    let model = ferrite_runtime::Model::from_vec(&c.bytes).unwrap();
    let input = &model.tensors()[model.inputs()[0]];
    assert_eq!(input.dtype, ferrite_runtime::DType::U8);
    let q = input.quant.per_tensor().unwrap();
    let mut det = Detector::new(&model, ferrite_runtime::Options::default()).unwrap();
    let spec = det.spec().clone();
    let mut seen = 0;
    for name in ["astronaut", "chelsea", "rocket"] {
        let path = common::root().join(format!("models/detect/images/{name}.png"));
        let img = image_io::load(&path).unwrap();
        let (w, h) = (img.width() as usize, img.height() as usize);
        let frame = Frame::packed(PixelFormat::Rgb8, w, h, img.as_raw()).unwrap();
        let got = det.detect(&frame).unwrap().to_vec();
        let r = Resampler::new(&spec.preprocess, w, h).unwrap();
        let mut data = vec![0u8; 16 * 16 * 3];
        r.run(
            &spec.preprocess,
            &frame,
            &mut InputTensor::U8 {
                data: &mut data,
                scale: q.scale,
                zero_point: q.zero_point,
            },
        )
        .unwrap();
        let arr = ferrite::npy::Array {
            dtype: ferrite_runtime::DType::U8,
            shape: vec![1, 16, 16, 3],
            data,
        };
        let outs = common::run(&model, &[arr]).unwrap();
        let scores = outs[2].as_f32();
        let count = outs[3].as_f32()[0] as usize;
        let want = (0..count).filter(|&i| scores[i] >= 0.5).count();
        assert_eq!(got.len(), want, "{name}");
        for (d, s) in got.iter().zip(&scores) {
            assert_eq!(d.score, *s, "{name}");
        }
        seen += got.len();
    }
    assert!(seen >= 3, "{seen} detections");
}
