//! Legacy uint8 models (asymmetric uint8 activations and filters, what
//! TFLite's `inference_type=uint8` converter wrote: SSD MobileNet's and
//! MobileNet's `*_quant.tflite`) against LiteRT's uint8 reference kernels,
//! on the models of `models/golden/make_uint8_goldens.py`. The importer runs
//! them on the int8 kernels (`converters/src/uint8.rs`): exact where every
//! filter fits int8 as it is, but for AVERAGE_POOL_2D's rounding of exact
//! halves below the zero-point (uint8 rounds them up, int8 away from zero);
//! a filter channel that does not fit is requantized, a rounding's worth off.

mod common;

use ferrite::npy::Array;
use ferrite_runtime::DType;

/// What `ferrite convert` says of `model`.
fn summary(model: &str) -> String {
    let src = std::fs::read(common::root().join(format!("tests/fixtures/uint8/{model}.tflite")));
    let c = ferrite_convert::convert(&src.unwrap()).unwrap();
    c.summary.unwrap_or_default()
}

/// Each golden case of `model`: (inputs, LiteRT's outputs, Ferrite's).
fn run(model: &str) -> Vec<(Array, Vec<Array>, Vec<Array>)> {
    let dir = common::root().join("tests/fixtures/uint8");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let src = std::fs::read(dir.join(format!("{model}.tflite"))).unwrap();
    let converted = common::convert(&src).unwrap_or_else(|e| panic!("{model}: {e:#}"));
    let cases: Vec<_> = index["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["model"].as_str() == Some(&format!("{model}.tflite")))
        .map(|case| {
            let inputs = common::case_files(&dir, case, "inputs");
            let wants = common::case_files(&dir, case, "outputs");
            let gots = common::run(&converted, &inputs).unwrap();
            (inputs.into_iter().next().unwrap(), wants, gots)
        })
        .collect();
    assert!(cases.len() >= 4, "{model}: {} cases", cases.len());
    cases
}

/// (elements that differ, largest difference) over every case's uint8 output.
fn classifier_diff(model: &str) -> (usize, i64) {
    let mut total = (0, 0);
    for (input, wants, gots) in run(model) {
        assert_eq!(input.dtype, DType::U8);
        assert_eq!(
            (gots[0].dtype, &gots[0].shape),
            (DType::U8, &wants[0].shape)
        );
        let (n, m) = common::int_diff(&gots[0], &wants[0]);
        total = (total.0 + n, total.1.max(m));
    }
    total
}

#[test]
fn uint8_classifier_whose_filters_fit_int8_matches_litert() {
    // 8 images x 5 probabilities. The only differences allowed are the
    // average pool's ties (one per 64 sums, about), 1 step each.
    assert!(summary("u8_classifier_exact").contains("every filter fits int8 as it is"));
    let (n, m) = classifier_diff("u8_classifier_exact");
    assert!(m <= 1 && n <= 4, "{n} values differ, by up to {m}");
}

#[test]
fn uint8_classifier_with_requantized_filter_channels_stays_close_to_litert() {
    assert!(summary("u8_classifier").contains("6 of 24 filter channels"));
    // Measured: 7 of the 40 values, by up to 3 steps of 1/256.
    let (n, m) = classifier_diff("u8_classifier");
    assert!(
        m <= 3 && n <= 10,
        "{n} values differ, by up to {m} steps of 1/256"
    );
}

/// Every case of the uint8 SSD `model` detects what LiteRT does: the same
/// count and classes, scores within 2/256, boxes within 0.01.
fn ssd_matches(model: &str) {
    for (k, (_, wants, gots)) in run(model).iter().enumerate() {
        let count = wants[3].as_f32()[0];
        assert_eq!(gots[3].as_f32()[0], count, "{model} case {k}: count");
        assert!(count >= 1.0);
        let n = count as usize;
        assert_eq!(
            gots[1].as_f32()[..n],
            wants[1].as_f32()[..n],
            "{model} case {k}: classes"
        );
        // Scores come out of a uint8 LOGISTIC (steps of 1/256); the boxes
        // out of uint8 encodings times the anchor sizes.
        for (g, w) in gots[2].as_f32()[..n].iter().zip(&wants[2].as_f32()[..n]) {
            assert!(
                (g - w).abs() <= 2.0 / 256.0,
                "{model} case {k}: score {g} vs {w}"
            );
        }
        for (g, w) in gots[0].as_f32()[..4 * n]
            .iter()
            .zip(&wants[0].as_f32()[..4 * n])
        {
            assert!((g - w).abs() <= 0.01, "{model} case {k}: box {g} vs {w}");
        }
    }
}

#[test]
fn uint8_ssd_finds_what_litert_finds() {
    ssd_matches("u8_ssd");
}

/// The SSD TensorFlow's converter made from a frozen graph with a
/// `TFLite_Detection_PostProcess` node, as SSD MobileNet's quantized COCO
/// model was (`models/golden/make_tf_uint8_model.py`): uint8 throughout,
/// anchors included.
#[test]
fn uint8_ssd_from_tensorflows_converter_finds_what_litert_finds() {
    ssd_matches("tf_u8_ssd");
}

/// A uint8 model TensorFlow's own converter wrote
/// (`models/golden/make_tf_uint8_model.py`: fake-quant ranges, TF1
/// converter, `inference_type=uint8`), on photos and random images.
#[test]
fn uint8_model_from_tensorflows_converter_stays_close_to_litert() {
    assert!(summary("tf_u8_net").contains("2 of 138 filter channels"));
    // Measured: 5 of the 80 values, by up to 2 steps of 1/256.
    let (n, m) = classifier_diff("tf_u8_net");
    assert!(
        m <= 2 && n <= 8,
        "{n} values differ, by up to {m} steps of 1/256"
    );
}
