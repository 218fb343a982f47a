//! BlazeFace short-range through `ferrite-pipelines` against MediaPipe's own
//! face detection (mediapipe==0.10.21, `mp.solutions.face_detection`,
//! model_selection=0) on the images and results of `models/detect/`
//! (`make_reference.sh` made both): the same number of faces, box IoU ≥ 0.95,
//! keypoints within 2% of the image size, and no faces where MediaPipe finds
//! none (the cat, the coffee, the rocket, the motorcycle).

use std::path::Path;

use ferrite_pipelines::{image_io, Detector, Frame, PixelFormat};
use ferrite_runtime::{Model, Options};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn blazeface() -> Model<'static> {
    let src = std::fs::read(root().join("models/fixtures/face_detection_short_range.tflite"))
        .expect("bundled BlazeFace");
    let opts = ferrite_convert::ConvertOptions {
        detector: Some("blazeface-short-range".into()),
        ..Default::default()
    };
    let c = ferrite_convert::convert_with(&src, &opts).expect("converts with the preset");
    Model::from_vec(&c.bytes).expect("loads")
}

fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: [f64; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    iw * ih / (area(a) + area(b) - iw * ih)
}

#[test]
fn blazeface_matches_mediapipe() {
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("models/detect/reference.json")).unwrap(),
    )
    .unwrap();
    let model = blazeface();
    let mut det = Detector::new(&model, Options::default()).unwrap();
    let mut worst_iou = 1.0f64;
    let mut worst_kp = 0.0f64;
    let mut worst_kp_px = 0.0f64;
    let mut faces = 0;
    let mut problems = Vec::new();
    for (name, r) in reference.as_object().unwrap() {
        let img = image_io::load(&root().join(format!("models/detect/images/{name}.png"))).unwrap();
        let (w, h) = (img.width() as usize, img.height() as usize);
        assert_eq!(
            (w as u64, h as u64),
            (r["width"].as_u64().unwrap(), r["height"].as_u64().unwrap())
        );
        let frame = Frame::packed(PixelFormat::Rgb8, w, h, img.as_raw()).unwrap();
        let ours = det.detect(&frame).unwrap().to_vec();
        let theirs = r["detections"].as_array().unwrap();
        if ours.len() != theirs.len() {
            problems.push(format!(
                "{name}: {} faces, MediaPipe found {} (ours: {:?})",
                ours.len(),
                theirs.len(),
                ours.iter().map(|d| d.score).collect::<Vec<_>>()
            ));
            continue;
        }
        let size = w.max(h) as f64;
        for t in theirs {
            let tb: Vec<f64> = t["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let tb = [tb[0], tb[1], tb[2], tb[3]];
            // Match by best IoU (faces do not overlap in these images).
            let (best, o) = ours
                .iter()
                .map(|d| (iou(d.bbox.map(f64::from), tb), d))
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .unwrap();
            worst_iou = worst_iou.min(best);
            faces += 1;
            if best < 0.95 {
                problems.push(format!(
                    "{name}: box IoU {best:.3} < 0.95 ({:?} vs {tb:?})",
                    o.bbox
                ));
            }
            for (k, tk) in o.keypoints().iter().zip(t["keypoints"].as_array().unwrap()) {
                let dx = k[0] as f64 - tk[0].as_f64().unwrap();
                let dy = k[1] as f64 - tk[1].as_f64().unwrap();
                worst_kp_px = worst_kp_px.max(dx.abs().max(dy.abs()));
                let err = dx.abs().max(dy.abs()) / size;
                worst_kp = worst_kp.max(err);
                if err > 0.02 {
                    problems.push(format!(
                        "{name}: keypoint off by {:.2}% of the image",
                        err * 100.0
                    ));
                }
            }
            let ts = t["score"].as_f64().unwrap();
            if (o.score as f64 - ts).abs() > 0.05 {
                problems.push(format!("{name}: score {} vs MediaPipe {ts}", o.score));
            }
        }
    }
    eprintln!(
        "{faces} faces matched; worst box IoU {worst_iou:.5}, worst keypoint error {worst_kp_px:.3} px ({:.4}% of the image size)",
        worst_kp * 100.0
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        faces >= 10,
        "the reference should hold at least 10 faces, found {faces}"
    );
}
