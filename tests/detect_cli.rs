//! `ferrite convert --detector` and `ferrite detect` as a user runs them:
//! one JSON line per frame, annotated output, and one clear error line for
//! each kind of bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tmp() -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferrite-detect-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ferrite(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

/// The bundled BlazeFace converted with the preset (once per test binary).
fn face_fer() -> &'static str {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| {
        let out = tmp().join("face.fer");
        let o = ferrite(&[
            "convert",
            "models/fixtures/face_detection_short_range.tflite",
            "-o",
            out.to_str().unwrap(),
            "--detector",
            "blazeface-short-range",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out.to_string_lossy().into_owned()
    })
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn detect_one_image_prints_json_and_writes_the_annotated_image() {
    let out = tmp().join("astronaut_annotated.jpg");
    let o = ferrite(&[
        "detect",
        face_fer(),
        "--image",
        "models/fixtures/astronaut_256.jpg",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with(r#"{"source":"models/fixtures/astronaut_256.jpg","width":256,"height":256,"detections":[{"label":"face","score":0.9"#), "{}", lines[0]);
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let d = &v["detections"][0];
    assert_eq!(d["keypoints"].as_array().unwrap().len(), 6);
    let b: Vec<f64> = d["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(
        b[0] > 80.0 && b[2] < 145.0 && b[1] > 30.0 && b[3] < 100.0,
        "{b:?}"
    );
    for k in ["pre", "infer", "post"] {
        assert!(v["timings_ms"][k].as_f64().unwrap() >= 0.0);
    }
    // The annotated image: same size, and the box outline is drawn in green.
    let img = ferrite_pipelines::image_io::load(&out).unwrap();
    assert_eq!(img.dimensions(), (256, 256));
    let p = img.get_pixel(b[0].round() as u32, ((b[1] + b[3]) / 2.0) as u32);
    assert!(p[1] > 150 && p[0] < 120, "box outline pixel {p:?}");
}

#[test]
fn detect_a_folder() {
    let out = tmp().join("annotated");
    let o = ferrite(&[
        "detect",
        face_fer(),
        "--images",
        "models/detect/images",
        "--out",
        out.to_str().unwrap(),
        "--max-detections",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.lines().count(), 10);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["detections"].as_array().unwrap().len() <= 1);
    }
    assert!(out.join("faces_grid.jpg").exists() && out.join("chelsea.jpg").exists());

    // --threshold 0.99 leaves nothing.
    let o = ferrite(&[
        "detect",
        face_fer(),
        "--image",
        "models/detect/images/astronaut.png",
        "--threshold",
        "0.99",
    ]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(r#""detections":[]"#));
}

#[test]
fn bad_inputs_give_one_clear_error_line() {
    let garbage = tmp().join("garbage.jpg");
    std::fs::write(&garbage, b"this is not a picture").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--image".into(), garbage.to_string_lossy().into_owned()],
            "garbage.jpg: not a JPEG or PNG image",
        ),
        (
            vec!["--image".into(), "/nonexistent.png".into()],
            "cannot read /nonexistent.png",
        ),
        (vec![], "give one source"),
        (
            vec![
                "--images".into(),
                "models/fixtures".into(),
                "--image".into(),
                "x.png".into(),
            ],
            "cannot be used with",
        ),
        (
            vec!["--images".into(), "src".into()],
            "holds no .jpg, .jpeg or .png files",
        ),
        (
            vec!["--frames".into(), "/nonexistent".into()],
            "recording.json",
        ),
        (
            vec![
                "--image".into(),
                "models/fixtures/astronaut_256.jpg".into(),
                "--gpio".into(),
                "17".into(),
            ],
            "need --trigger",
        ),
    ];
    for (args, want) in cases {
        let mut full = vec!["detect", face_fer()];
        full.extend(args.iter().map(String::as_str));
        let o = ferrite(&full);
        assert!(!o.status.success(), "{args:?} succeeded");
        let e = stderr(&o);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // A package without a detector spec.
    let plain = tmp().join("plain.fer");
    let o = ferrite(&[
        "convert",
        "models/fixtures/face_detection_short_range.tflite",
        "-o",
        plain.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let o = ferrite(&[
        "detect",
        plain.to_str().unwrap(),
        "--image",
        "models/fixtures/astronaut_256.jpg",
    ]);
    assert!(
        stderr(&o).contains("no detector spec; convert it with --detector"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn camera_needs_the_v4l2_feature() {
    let o = ferrite(&["detect", face_fer(), "--camera", "/dev/video0"]);
    assert!(!o.status.success());
    if cfg!(feature = "v4l2") {
        return;
    }
    assert!(
        stderr(&o).contains("this build has no camera support"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn dry_run_trigger_fires_on_a_face() {
    let o = ferrite(&[
        "detect",
        face_fer(),
        "--image",
        "models/fixtures/astronaut_256.jpg",
        "--trigger",
        "face",
        "--min-score",
        "0.8",
        "--gpio",
        "17",
        "--dry-run",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("dry run: would switch ON GPIO 17"), "{e}");
    assert!(
        e.contains("dry run: would switch OFF GPIO 17"),
        "released at exit: {e}"
    );
}
