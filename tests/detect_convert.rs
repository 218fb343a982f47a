//! Detector metadata at conversion: the preset and a written spec give the
//! same package contents; a spec that does not fit the model fails at
//! conversion, naming the shapes; flags that make no sense are refused.

use std::path::{Path, PathBuf};

use ferrite_convert::{convert_with, ConvertOptions};
use ferrite_pipelines::spec::{DetectorSpec, PreprocessSpec, META_DETECTOR, META_PREPROCESS};
use ferrite_runtime::Model;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn blazeface_src() -> Vec<u8> {
    std::fs::read(root().join("models/fixtures/face_detection_short_range.tflite")).unwrap()
}

fn tmp(name: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("ferrite-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

fn stored_spec(bytes: &[u8]) -> DetectorSpec {
    let m = Model::from_vec(bytes).unwrap();
    serde_json::from_slice(&m.metadata(META_DETECTOR).expect("spec stored").value).unwrap()
}

#[test]
fn written_spec_equals_the_preset() {
    let preset = convert_with(
        &blazeface_src(),
        &ConvertOptions {
            detector: Some("blazeface-short-range".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let written = convert_with(
        &blazeface_src(),
        &ConvertOptions {
            detector_spec: Some(root().join("models/detect/blazeface_short_range.toml")),
            ..Default::default()
        },
    )
    .unwrap();
    let (a, b) = (stored_spec(&preset.bytes), stored_spec(&written.bytes));
    assert_eq!(a, DetectorSpec::blazeface_short_range());
    // `range = [-1, 1]` gives 2/255 and -1 up to rounding.
    assert_eq!(a.anchors, b.anchors);
    assert_eq!(a.decode, b.decode);
    assert_eq!(a.nms, b.nms);
    assert_eq!(a.labels, b.labels);
    for c in 0..3 {
        assert!((a.preprocess.scale[c] - b.preprocess.scale[c]).abs() < 1e-9);
        assert_eq!(a.preprocess.offset[c], b.preprocess.offset[c]);
    }
}

#[test]
fn mismatched_spec_fails_at_conversion() {
    // BlazeFace full-range anchors (2304) on the short-range model (896 boxes).
    let text = std::fs::read_to_string(root().join("models/detect/blazeface_short_range.toml"))
        .unwrap()
        .replace("strides = [8, 16, 16, 16]", "strides = [4]")
        .replace("num_layers = 4", "num_layers = 1")
        .replace(
            "interpolated_scale_aspect_ratio = 1.0",
            "interpolated_scale_aspect_ratio = 0.0",
        )
        .replace("num_boxes = 896", "num_boxes = 1024");
    let spec = tmp("full.toml", &text);
    let e = convert_with(
        &blazeface_src(),
        &ConvertOptions {
            detector_spec: Some(spec.clone()),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("should be [1, 1024, 16] but the model's is [1, 896, 16]"),
        "{msg}"
    );
    // Anchors that disagree with num_boxes fail before the model is looked at.
    let spec = tmp(
        "count.toml",
        &text.replace("num_boxes = 1024", "num_boxes = 896"),
    );
    let msg = format!(
        "{:#}",
        convert_with(
            &blazeface_src(),
            &ConvertOptions {
                detector_spec: Some(spec),
                ..Default::default()
            },
        )
        .err()
        .unwrap()
    );
    assert!(
        msg.contains("generate 1024 anchors but decode.num_boxes is 896"),
        "{msg}"
    );

    // Consistent on its own, but not with this model's outputs.
    let text = std::fs::read_to_string(root().join("models/detect/blazeface_short_range.toml"))
        .unwrap()
        .replace("num_coords = 16", "num_coords = 18");
    let spec = tmp("coords.toml", &text);
    let e = convert_with(
        &blazeface_src(),
        &ConvertOptions {
            detector_spec: Some(spec.clone()),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    let msg = format!("{e:#}");
    assert!(msg.contains("does not fit this model"), "{msg}");
    assert!(
        msg.contains("should be [1, 896, 18] but the model's is [1, 896, 16]"),
        "{msg}"
    );

    let text = std::fs::read_to_string(root().join("models/detect/blazeface_short_range.toml"))
        .unwrap()
        .replace("width = 128\nheight = 128", "width = 192\nheight = 192");
    let spec = tmp("size.toml", &text);
    let msg = format!(
        "{:#}",
        convert_with(
            &blazeface_src(),
            &ConvertOptions {
                detector_spec: Some(spec),
                ..Default::default()
            },
        )
        .err()
        .unwrap()
    );
    assert!(
        msg.contains("[1, 192, 192, 3]") && msg.contains("[1, 128, 128, 3]"),
        "{msg}"
    );
}

#[test]
fn bad_flags_are_refused() {
    let src = blazeface_src();
    let e = |o: ConvertOptions| format!("{:#}", convert_with(&src, &o).err().unwrap());
    let msg = e(ConvertOptions {
        detector: Some("yolo-v99".into()),
        ..Default::default()
    });
    assert!(msg.contains("unknown detector preset 'yolo-v99'"), "{msg}");
    let msg = e(ConvertOptions {
        detector_spec: Some("/nonexistent/spec.toml".into()),
        ..Default::default()
    });
    assert!(
        msg.contains("cannot read detector spec /nonexistent/spec.toml"),
        "{msg}"
    );
    let msg = e(ConvertOptions {
        labels: Some(tmp("labels.txt", "face\n")),
        ..Default::default()
    });
    assert!(msg.contains("--labels needs --detector"), "{msg}");
    let msg = e(ConvertOptions {
        detector: Some("blazeface-short-range".into()),
        labels: Some(tmp("labels2.txt", "face\nhat\n")),
        ..Default::default()
    });
    assert!(msg.contains("2 labels for 1 classes"), "{msg}");
    let msg = e(ConvertOptions {
        detector_spec: Some(tmp("broken.toml", "[preprocess]\nwidth = \"wide\"\n")),
        ..Default::default()
    });
    assert!(
        msg.contains("broken.toml") && msg.contains("width"),
        "{msg}"
    );
}

#[test]
fn labels_file_and_preprocess_override_the_preset() {
    let out = convert_with(
        &blazeface_src(),
        &ConvertOptions {
            detector: Some("blazeface-short-range".into()),
            labels: Some(tmp("labels3.txt", "gesicht\n\n")),
            preprocess: Some("fit=stretch".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let s = stored_spec(&out.bytes);
    assert_eq!(s.labels, ["gesicht"]);
    assert_eq!(
        s.preprocess.resize,
        ferrite_pipelines::spec::ResizeMode::Stretch
    );
    assert_eq!(s.preprocess.width, 128);
}

/// `--preprocess` without `resize=` takes the model's input size (the
/// issue's own example: `"scale=1/127.5,offset=-1"`).
#[test]
fn preprocess_without_resize_takes_the_input_size() {
    let out = convert_with(
        &blazeface_src(),
        &ConvertOptions {
            preprocess: Some("scale=1/127.5,offset=-1".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let m = Model::from_vec(&out.bytes).unwrap();
    let p: PreprocessSpec =
        serde_json::from_slice(&m.metadata(META_PREPROCESS).expect("stored").value).unwrap();
    assert_eq!((p.width, p.height), (128, 128));
    assert_eq!(p.input_shape(), [1, 128, 128, 3]);
    assert!((p.scale[0] - 1.0 / 127.5).abs() < 1e-7 && p.offset == [-1.0; 3]);
    // A size that is not the model's is still caught.
    let e = convert_with(
        &blazeface_src(),
        &ConvertOptions {
            preprocess: Some("resize=96x96".into()),
            ..Default::default()
        },
    )
    .err()
    .expect("a wrong size fails");
    assert!(format!("{e:#}").contains("[1, 96, 96, 3]"), "{e:#}");
}
