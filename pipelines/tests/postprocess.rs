//! Anchors, decoding, scores and suppression on hand-made tensors, and the
//! TOML spec format.

use ferrite_pipelines::anchors::{anchor_count, generate};
use ferrite_pipelines::postprocess::{iou, Decoder};
use ferrite_pipelines::spec::{DetectorSpec, ModelShapes, NmsAlgorithm};

fn blazeface() -> DetectorSpec {
    DetectorSpec::blazeface_short_range()
}

#[test]
fn anchor_counts_of_known_detectors() {
    // BlazeFace short-range: 16x16x2 + 8x8x6.
    let a = generate(blazeface().anchors.as_ref().unwrap());
    assert_eq!(a.len(), 896);
    assert_eq!(
        (a[0].x_center, a[0].y_center, a[0].w),
        (0.5 / 16.0, 0.5 / 16.0, 1.0)
    );
    assert_eq!(
        a[1].x_center, a[0].x_center,
        "two anchors per cell in layer 0"
    );
    assert_eq!((a[512].x_center, a[512].y_center), (0.5 / 8.0, 0.5 / 8.0));
    assert_eq!(a[895].x_center, 7.5 / 8.0);

    // BlazeFace full-range: one layer, stride 4 on 192x192, no interpolated
    // anchor (its MediaPipe graph turns it off).
    let toml = r#"
        num_layers = 1
        min_scale = 0.1484375
        max_scale = 0.75
        input_width = 192
        input_height = 192
        strides = [4]
        aspect_ratios = [1.0]
        fixed_anchor_size = true
        interpolated_scale_aspect_ratio = 0.0
    "#;
    let full: ferrite_pipelines::spec::AnchorSpec = toml::from_str(toml).unwrap();
    assert_eq!(anchor_count(&full), 2304);

    // SSD MobileNet v1 (TF Object Detection API, 300x300): 1917 anchors.
    let toml = r#"
        num_layers = 6
        min_scale = 0.2
        max_scale = 0.95
        input_width = 300
        input_height = 300
        strides = [16, 32, 64, 128, 256, 512]
        aspect_ratios = [1.0, 2.0, 0.5, 3.0, 0.3333]
        reduce_boxes_in_lowest_layer = true
        interpolated_scale_aspect_ratio = 1.0
    "#;
    let ssd: ferrite_pipelines::spec::AnchorSpec = toml::from_str(toml).unwrap();
    assert_eq!(anchor_count(&ssd), 1917);
    let a = generate(&ssd);
    assert_eq!(a.len(), 1917);
    // Lowest layer: scales 0.1 (ratio 1) then 0.2 with ratios 2 and 0.5.
    assert!((a[0].w - 0.1).abs() < 1e-6 && (a[0].h - 0.1).abs() < 1e-6);
    assert!((a[1].w - 0.2 * 2f32.sqrt()).abs() < 1e-6);
    assert!((a[2].h - 0.2 * 2f32.sqrt()).abs() < 1e-6);
}

/// The anchor options of MediaPipe graphs, copied as they are written there
/// (`SsdAnchorsCalculatorOptions`): options a graph leaves out take
/// MediaPipe's defaults, so each gives the model's number of boxes.
#[test]
fn mediapipe_anchor_options_copied_over_keep_mediapipes_defaults() {
    // face_detection_short_range_cpu, palm_detection_cpu, pose_detection_cpu:
    // none of them sets interpolated_scale_aspect_ratio (default 1.0).
    for (input, strides, boxes) in [
        (128, "[8, 16, 16, 16]", 896),
        (192, "[8, 16, 16, 16]", 2016),
        (224, "[8, 16, 32, 32, 32]", 2254),
    ] {
        let layers = strides.matches(',').count() + 1;
        let toml = format!(
            "num_layers = {layers}\nmin_scale = 0.1484375\nmax_scale = 0.75\n\
             input_width = {input}\ninput_height = {input}\nanchor_offset_x = 0.5\n\
             anchor_offset_y = 0.5\nstrides = {strides}\naspect_ratios = [1.0]\n\
             fixed_anchor_size = true\n"
        );
        let a: ferrite_pipelines::spec::AnchorSpec = toml::from_str(&toml).unwrap();
        assert_eq!(a.interpolated_scale_aspect_ratio, 1.0);
        assert_eq!(
            anchor_count(&a),
            boxes,
            "{input}x{input}, strides {strides}"
        );
    }
    // NonMaxSuppressionCalculator's default algorithm is hard suppression.
    let nms: ferrite_pipelines::spec::NmsSpec = toml::from_str("iou_threshold = 0.4").unwrap();
    assert_eq!(nms.algorithm, NmsAlgorithm::Hard);
}

/// Raw tensors for `spec` with the given (anchor, logit, [dx, dy, w, h]) set;
/// every other anchor gets a very negative logit.
fn tensors(spec: &DetectorSpec, hits: &[(usize, &[f32], [f32; 4])]) -> (Vec<f32>, Vec<f32>) {
    let d = spec.decode.as_ref().unwrap();
    let mut boxes = vec![0.0; d.num_boxes * d.num_coords];
    let mut scores = vec![-50.0; d.num_boxes * d.num_classes];
    for (i, logits, b) in hits {
        boxes[i * d.num_coords..i * d.num_coords + 4].copy_from_slice(b);
        for k in 0..d.num_keypoints {
            boxes[i * d.num_coords + 4 + 2 * k] = k as f32;
        }
        scores[i * d.num_classes..(i + 1) * d.num_classes].copy_from_slice(logits);
    }
    (boxes, scores)
}

#[test]
fn decodes_boxes_and_keypoints_against_anchors() {
    let spec = blazeface();
    let mut dec = Decoder::new(&spec).unwrap();
    let anchor = dec.anchors()[600];
    // Offset by (12.8, -6.4) px of 128 and 32x25.6 px in size.
    let (b, s) = tensors(&spec, &[(600, &[3.0], [12.8, -6.4, 32.0, 25.6])]);
    let mut out = Vec::with_capacity(896);
    dec.decode(&b, &s, 0.5, 0, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    let d = &out[0];
    let (xc, yc) = (anchor.x_center + 0.1, anchor.y_center - 0.05);
    let want = [xc - 0.125, yc - 0.1, xc + 0.125, yc + 0.1];
    for (g, w) in d.bbox.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{:?} vs {want:?}", d.bbox);
    }
    assert!((d.score - 1.0 / (1.0 + (-3.0f32).exp())).abs() < 1e-6);
    assert_eq!(d.keypoints().len(), 6);
    // Keypoint k was k/128 to the right of the anchor centre, on its row.
    let k = d.keypoints()[5];
    assert!((k[0] - (anchor.x_center + 5.0 / 128.0)).abs() < 1e-6);
    assert!((k[1] - anchor.y_center).abs() < 1e-6);
}

#[test]
fn score_threshold_and_clipping() {
    let spec = blazeface();
    let mut dec = Decoder::new(&spec).unwrap();
    // sigmoid(0.1) = 0.525 passes 0.5; sigmoid(-0.1) does not; NaN never does.
    let (b, s) = tensors(
        &spec,
        &[
            (10, &[0.1], [0.0, 0.0, 10.0, 10.0]),
            (300, &[-0.1], [0.0, 0.0, 10.0, 10.0]),
            (700, &[f32::NAN], [0.0, 0.0, 10.0, 10.0]),
            (800, &[1e9], [0.0, 0.0, 10.0, 10.0]),
        ],
    );
    let mut out = Vec::new();
    dec.decode(&b, &s, 0.5, 0, &mut out).unwrap();
    assert_eq!(out.len(), 2);
    // The huge logit was clipped to 100 before the sigmoid: a score of 1.
    assert_eq!(out[0].score, 1.0);
    assert!((out[1].score - 0.524_979).abs() < 1e-5);
    // A higher threshold from the caller keeps only the best.
    dec.decode(&b, &s, 0.9, 0, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    // Wrong tensor sizes are an error, not a panic.
    assert!(dec.decode(&b[1..], &s, 0.5, 0, &mut out).is_err());
}

#[test]
fn weighted_nms_blends_and_hard_nms_keeps_the_best() {
    let mut spec = blazeface();
    // Anchors 0 and 1 share a centre; 2 is the next cell (1/16 to the right).
    let hits: &[(usize, &[f32], [f32; 4])] = &[
        (0, &[2.0], [0.0, 0.0, 16.0, 16.0]),
        (1, &[1.0], [2.0, 0.0, 16.0, 16.0]),
        (500, &[0.5], [0.0, 0.0, 8.0, 8.0]),
    ];
    let (b, s) = tensors(&spec, hits);
    let mut out = Vec::new();
    let mut dec = Decoder::new(&spec).unwrap();
    dec.decode(&b, &s, 0.5, 0, &mut out).unwrap();
    assert_eq!(out.len(), 2, "the two overlapping boxes merge");
    let (s0, s1) = (1.0 / (1.0 + (-2.0f32).exp()), 1.0 / (1.0 + (-1.0f32).exp()));
    let shift = 2.0 / 128.0 * s1 / (s0 + s1);
    let x0 = dec.anchors()[0].x_center - 0.0625 + shift;
    assert!((out[0].bbox[0] - x0).abs() < 1e-6, "blended xmin");
    assert_eq!(out[0].score, s0, "the blend keeps the best score");

    spec.nms.as_mut().unwrap().algorithm = NmsAlgorithm::Hard;
    let mut dec = Decoder::new(&spec).unwrap();
    dec.decode(&b, &s, 0.5, 0, &mut out).unwrap();
    assert_eq!(out.len(), 2);
    assert!((out[0].bbox[0] - (dec.anchors()[0].x_center - 0.0625)).abs() < 1e-6);
    // max_detections caps the output.
    dec.decode(&b, &s, 0.5, 1, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert!(iou(&out[0].bbox, &out[0].bbox) > 0.999);
}

const SSD_TOML: &str = r#"
labels = ["background", "person", "dog"]

[preprocess]
width = 300
height = 300
resize = "stretch"
mean = [0.5, 0.5, 0.5]
std = [0.5, 0.5, 0.5]

[anchors]
num_layers = 6
min_scale = 0.2
max_scale = 0.95
input_width = 300
input_height = 300
strides = [16, 32, 64, 128, 256, 512]
aspect_ratios = [1.0, 2.0, 0.5, 3.0, 0.3333]
reduce_boxes_in_lowest_layer = true
interpolated_scale_aspect_ratio = 1.0

[decode]
num_boxes = 1917
num_coords = 4
num_classes = 3
box_format = "yxhw"
x_scale = 10.0
y_scale = 10.0
w_scale = 5.0
h_scale = 5.0
apply_exponential_on_box_size = true
sigmoid_score = true
min_score_thresh = 0.6
ignore_classes = [0]

[nms]
algorithm = "hard"
iou_threshold = 0.6
max_detections = 10
per_class = true
"#;

#[test]
fn multi_class_ssd_head_from_a_toml_spec() {
    let spec = DetectorSpec::from_toml(SSD_TOML).unwrap();
    assert_eq!(spec.label(2), "dog");
    // mean/std 0.5 map 0..255 onto -1..1.
    assert!((spec.preprocess.scale[0] - 2.0 / 255.0).abs() < 1e-7);
    assert_eq!(spec.preprocess.offset, [-1.0; 3]);
    spec.check_model(&ModelShapes {
        input: vec![1, 300, 300, 3],
        outputs: vec![vec![1, 1917, 4], vec![1, 1917, 3]],
    })
    .unwrap();
    let mut dec = Decoder::new(&spec).unwrap();
    let mut b = vec![0.0; 1917 * 4];
    let mut s = vec![-10.0; 1917 * 3];
    // Anchor 7: background wins overall but is ignored; "dog" is reported.
    s[7 * 3..8 * 3].copy_from_slice(&[5.0, 0.0, 1.0]);
    // Anchor 1000: a person, with a box (y, x, h, w) offset.
    s[1000 * 3 + 1] = 2.0;
    b[1000 * 4..1001 * 4].copy_from_slice(&[1.0, -1.0, 0.0, 0.0]);
    let mut out = Vec::new();
    dec.decode(&b, &s, 0.6, 0, &mut out).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].class, out[1].class), (1, 2));
    let a = dec.anchors()[1000];
    let d = out[0];
    let xc = (d.bbox[0] + d.bbox[2]) / 2.0;
    let yc = (d.bbox[1] + d.bbox[3]) / 2.0;
    assert!((yc - (a.y_center + 0.1 * a.h)).abs() < 1e-6);
    assert!((xc - (a.x_center - 0.1 * a.w)).abs() < 1e-6);
    assert!(
        ((d.bbox[2] - d.bbox[0]) - a.w).abs() < 1e-6,
        "exp(0) * anchor width"
    );
}

#[test]
fn spec_errors_name_what_is_wrong() {
    let bad = SSD_TOML.replace("num_boxes = 1917", "num_boxes = 1900");
    let e = DetectorSpec::from_toml(&bad).unwrap_err().to_string();
    assert!(
        e.contains("generate 1917 anchors but decode.num_boxes is 1900"),
        "{e}"
    );

    let bad = SSD_TOML.replace(
        "labels = [\"background\", \"person\", \"dog\"]",
        "labels = [\"x\"]",
    );
    let e = DetectorSpec::from_toml(&bad).unwrap_err().to_string();
    assert!(e.contains("1 labels for 3 classes"), "{e}");

    let bad = SSD_TOML.replace("min_scale", "min_scael");
    let e = DetectorSpec::from_toml(&bad).unwrap_err().to_string();
    assert!(e.contains("min_scael"), "{e}");

    let spec = blazeface();
    let e = spec
        .check_model(&ModelShapes {
            input: vec![1, 128, 128, 3],
            outputs: vec![vec![1, 2304, 16], vec![1, 2304, 1]],
        })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("should be [1, 896, 16] but the model's is [1, 2304, 16]"),
        "{e}"
    );
    let e = spec
        .check_model(&ModelShapes {
            input: vec![1, 192, 192, 3],
            outputs: vec![vec![1, 896, 16], vec![1, 896, 1]],
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("[1, 192, 192, 3]"), "{e}");
}

#[test]
fn preprocess_flag_grammar() {
    use ferrite_pipelines::spec::{Layout, PreprocessSpec, ResizeMode};
    let p = PreprocessSpec::parse_flag(
        "resize=224x160,mean=0.485:0.456:0.406,std=0.229:0.224:0.225,nchw",
        None,
    )
    .unwrap();
    assert_eq!((p.height, p.width, p.layout), (224, 160, Layout::Nchw));
    assert_eq!(p.resize, ResizeMode::Stretch);
    assert!((p.offset[0] + 0.485 / 0.229).abs() < 1e-5);
    // Overriding a preset keeps what is not mentioned.
    let base = blazeface().preprocess;
    let p = PreprocessSpec::parse_flag("scale=1/127.5", Some(&base)).unwrap();
    assert_eq!(p.resize, ResizeMode::Letterbox);
    assert_eq!(p.width, 128);
    for bad in ["resize=12", "scale=x", "std=0", "frobnicate", "fit=zoom"] {
        assert!(
            PreprocessSpec::parse_flag(bad, Some(&base)).is_err(),
            "{bad}"
        );
    }
    assert!(
        PreprocessSpec::parse_flag("scale=1/255", None).is_err(),
        "size required"
    );
}

#[test]
fn decoded_output_specs_are_checked_against_the_model() {
    let toml = r#"
        labels = ["background", "person"]
        [preprocess]
        width = 300
        height = 300
        range = [-1.0, 1.0]
        [decoded]
        min_score_thresh = 0.4
        label_offset = 1
    "#;
    let spec = DetectorSpec::from_toml(toml).unwrap();
    assert_eq!(spec.min_score_thresh(), 0.4);
    let shapes = |boxes: Vec<usize>| ModelShapes {
        input: vec![1, 300, 300, 3],
        outputs: vec![boxes, vec![1, 10], vec![1, 10], vec![1]],
    };
    spec.check_model(&shapes(vec![1, 10, 4])).unwrap();
    let e = spec.check_model(&shapes(vec![1, 10, 5])).unwrap_err();
    assert!(e.to_string().contains("should be [1, D, 4]"), "{e}");
    let e = spec
        .check_model(&ModelShapes {
            input: vec![1, 300, 300, 3],
            outputs: vec![vec![1, 10, 4], vec![1, 10], vec![1, 12], vec![1]],
        })
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("scores (output 2) should be [1, 10]"),
        "{e}"
    );
    // Raw and decoded forms do not mix, and one of them is needed.
    let both = format!("{toml}\n[nms]\niou_threshold = 0.5\n");
    let e = DetectorSpec::from_toml(&both).unwrap_err().to_string();
    assert!(e.contains("either [anchors], [decode] and [nms]"), "{e}");
    let neither = toml.split("[decoded]").next().unwrap();
    let e = DetectorSpec::from_toml(neither).unwrap_err().to_string();
    assert!(e.contains("either [anchors], [decode] and [nms]"), "{e}");
    let same = toml.replace("label_offset = 1", "label_offset = 1\nscores_output = 1");
    let e = DetectorSpec::from_toml(&same).unwrap_err().to_string();
    assert!(e.contains("four different outputs"), "{e}");
}

/// MediaPipe's palm detection options under MediaPipe's own names
/// (`input_size_width`, `reverse_output_order`, `min_suppression_threshold`,
/// `overlap_type`, `WEIGHTED`; the pbtxt's `key: value` lines as TOML) give
/// the same spec as `models/detect/palm_detection.toml`.
#[test]
fn mediapipe_option_names_are_accepted() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/detect");
    let ours =
        DetectorSpec::from_toml(&std::fs::read_to_string(dir.join("palm_detection.toml")).unwrap())
            .unwrap();
    let theirs = r#"
        labels = ["palm"]
        [preprocess]
        width = 192
        height = 192
        resize = "letterbox"
        coordinates = "opencv_warp"
        pad = [0, 0, 0]
        range = [0.0, 1.0]
        [anchors]
        num_layers = 4
        min_scale = 0.1484375
        max_scale = 0.75
        input_size_width = 192
        input_size_height = 192
        anchor_offset_x = 0.5
        anchor_offset_y = 0.5
        strides = [8, 16, 16, 16]
        aspect_ratios = [1.0]
        fixed_anchor_size = true
        [decode]
        num_classes = 1
        num_boxes = 2016
        num_coords = 18
        box_coord_offset = 0
        keypoint_coord_offset = 4
        num_keypoints = 7
        num_values_per_keypoint = 2
        sigmoid_score = true
        score_clipping_thresh = 100.0
        reverse_output_order = true
        x_scale = 192.0
        y_scale = 192.0
        w_scale = 192.0
        h_scale = 192.0
        min_score_thresh = 0.5
        [nms]
        min_suppression_threshold = 0.3
        overlap_type = "INTERSECTION_OVER_UNION"
        algorithm = "WEIGHTED"
    "#;
    assert_eq!(DetectorSpec::from_toml(theirs).unwrap(), ours);
    // MediaPipe's defaults: without reverse_output_order boxes are y, x, h, w.
    let yx = DetectorSpec::from_toml(&theirs.replace("reverse_output_order = true", "")).unwrap();
    assert_eq!(
        yx.decode.unwrap().box_format,
        ferrite_pipelines::spec::BoxFormat::Yxhw
    );
    let both = theirs.replace(
        "reverse_output_order = true",
        "reverse_output_order = true\nbox_format = \"xywh\"",
    );
    let e = DetectorSpec::from_toml(&both).unwrap_err().to_string();
    assert!(e.contains("not both"), "{e}");
    let modified = theirs.replace("INTERSECTION_OVER_UNION", "MODIFIED_JACCARD");
    let e = DetectorSpec::from_toml(&modified).unwrap_err().to_string();
    assert!(e.contains("MODIFIED_JACCARD is not supported"), "{e}");
    // Keypoints left at MediaPipe's default offset 0 would read the box.
    let overlap = theirs.replace("keypoint_coord_offset = 4", "");
    let e = DetectorSpec::from_toml(&overlap).unwrap_err().to_string();
    assert!(e.contains("overlap the box"), "{e}");
}
