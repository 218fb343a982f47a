//! Small Keras 3 models as TensorFlow's TFLiteConverter writes them
//! (`models/golden/make_keras_goldens.py`) against TFLite's reference
//! kernels: a Dense layer on a 4-D tensor (the converter computes the
//! flattening shape at run time, SHAPE → GATHER → REDUCE_PROD → PACK, into a
//! RESHAPE whose stored shape is a `[1, 1]` placeholder), LayerNormalization,
//! GELU, multi-head self-attention (BATCH_MATMUL, SOFTMAX), and two stacked
//! LSTM layers from Keras 2 (fused UNIDIRECTIONAL_SEQUENCE_LSTM ops, each
//! sample on a fresh interpreter: TFLite carries an LSTM's state over to
//! the next invocation, Keras and Ferrite start every one from zero).
//! Float, within 1e-5 relative.

mod common;

#[test]
fn keras_models_match_tflite() {
    let dir = common::root().join("tests/fixtures/keras");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let cases = index["cases"].as_array().unwrap();
    assert!(cases.len() >= 9);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let src = std::fs::read(dir.join(case["model"].as_str().unwrap())).unwrap();
        let model = common::convert(&src).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let inputs = common::case_files(&dir, case, "inputs");
        let wants = common::case_files(&dir, case, "outputs");
        let gots = common::run(&model, &inputs).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(gots[0].shape, wants[0].shape, "{name}");
        let e = common::rel_err(&gots[0], &wants[0]);
        assert!(e <= 1e-5, "{name}: relative error {e:.2e}");
    }
}
