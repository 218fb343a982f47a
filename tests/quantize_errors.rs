//! Bad calibration input gives one clear error naming the file (or folder),
//! and the output package is never created or left half-written.

use std::path::{Path, PathBuf};
use std::process::Command;

const FACE: &str = "models/fixtures/face_detection_short_range.tflite";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferrite-qerr-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a float32 .npy with `shape`, filled by `f(i)`.
fn npy(path: &Path, shape: &[usize], f: impl Fn(usize) -> f32) {
    let n: usize = shape.iter().product();
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((header.len() as u16).to_le_bytes());
    b.extend(header.as_bytes());
    for i in 0..n {
        b.extend(f(i).to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

/// Runs `ferrite convert` of BlazeFace to `out` with `args`.
fn convert(out: &Path, args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .arg("convert")
        .arg(root().join(FACE))
        .arg("-o")
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

/// [`convert`] quantizing with calibration folder `calib` and `extra`.
fn quantize(calib: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["--quantize".as_ref(), "int8".as_ref()];
    args.extend(["--calib".as_ref(), calib.as_os_str()]);
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    convert(out, &args)
}

/// Runs [`quantize`], which must fail; returns stderr.
fn convert_fails(calib: &Path, out: &Path, extra: &[&str]) -> String {
    let o = quantize(calib, out, extra);
    assert!(!o.status.success(), "conversion unexpectedly succeeded");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    err
}

fn assert_untouched(out: &Path) {
    assert_eq!(std::fs::read(out).unwrap(), b"previous contents");
    let dir = out.parent().unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(!n.contains(".tmp"), "temporary file left behind: {n}");
    }
}

fn setup(name: &str) -> (PathBuf, PathBuf) {
    let d = tmp(name);
    let calib = d.join("calib");
    std::fs::create_dir_all(&calib).unwrap();
    let out = d.join("out").join("face.fer");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, b"previous contents").unwrap();
    (calib, out)
}

#[test]
fn empty_folder_names_the_folder() {
    let (calib, out) = setup("empty");
    std::fs::write(calib.join("README.txt"), "not a sample").unwrap();
    let err = convert_fails(&calib, &out, &[]);
    assert!(err.contains(&calib.display().to_string()), "{err}");
    assert!(err.contains("no .npy or image"), "{err}");
    assert_untouched(&out);
}

#[test]
fn wrong_shape_names_the_file() {
    let (calib, out) = setup("shape");
    npy(&calib.join("a.npy"), &[1, 128, 128, 3], |_| 0.5);
    npy(&calib.join("b.npy"), &[1, 64, 64, 3], |_| 0.5);
    let err = convert_fails(&calib, &out, &[]);
    assert!(
        err.contains("b.npy") && err.contains("[1, 64, 64, 3]"),
        "{err}"
    );
    assert_untouched(&out);
}

#[test]
fn nan_and_inf_name_the_file() {
    let (calib, out) = setup("nan");
    npy(&calib.join("a.npy"), &[1, 128, 128, 3], |i| {
        if i == 77 {
            f32::NAN
        } else {
            0.0
        }
    });
    let err = convert_fails(&calib, &out, &[]);
    assert!(err.contains("a.npy") && err.contains("not finite"), "{err}");
    std::fs::remove_file(calib.join("a.npy")).unwrap();
    npy(&calib.join("c.npy"), &[1, 128, 128, 3], |i| {
        if i == 5 {
            f32::INFINITY
        } else {
            0.0
        }
    });
    let err = convert_fails(&calib, &out, &[]);
    assert!(err.contains("c.npy") && err.contains("inf"), "{err}");
    assert_untouched(&out);
}

#[test]
fn unreadable_image_names_the_file() {
    let (calib, out) = setup("image");
    std::fs::copy(
        root().join("models/fixtures/astronaut_256.jpg"),
        calib.join("a.jpg"),
    )
    .unwrap();
    std::fs::write(calib.join("b.png"), b"\x89PNG\r\n\x1a\n this is not a png").unwrap();
    let err = convert_fails(
        &calib,
        &out,
        &["--preprocess", "resize=128x128,scale=1/127.5,offset=-1"],
    );
    assert!(err.contains("b.png"), "{err}");
    assert_untouched(&out);
}

#[test]
fn bad_options_are_named() {
    let (calib, out) = setup("opts");
    npy(&calib.join("a.npy"), &[1, 128, 128, 3], |_| 0.1);
    let err = convert_fails(&calib, &out, &["--calib-method", "l2"]);
    assert!(err.contains("--calib-method l2"), "{err}");
    let err = convert_fails(&calib, &out, &["--preprocess", "resize=128x128,gamma=2"]);
    assert!(err.contains("gamma"), "{err}");
    // Without a detector there are no heads to quantize.
    let err = convert_fails(&calib, &out, &["--int8-heads"]);
    assert!(
        err.contains("--int8-heads") && err.contains("detector"),
        "{err}"
    );
    assert_untouched(&out);
}

#[test]
fn images_calibrate_with_a_preprocess_spec() {
    let (calib, out) = setup("images");
    std::fs::copy(
        root().join("models/fixtures/astronaut_256.jpg"),
        calib.join("a.jpg"),
    )
    .unwrap();
    // Without resize= (the model's input size), or with a detector's own
    // pre-processing (letterbox) and nothing else.
    for extra in [
        &["--preprocess", "scale=1/127.5,offset=-1"][..],
        &[
            "--preprocess",
            "resize=128x128,scale=1/127.5,offset=-1,fit=letterbox,pad=114",
        ],
        &["--detector", "blazeface-short-range"],
    ] {
        std::fs::write(&out, b"previous contents").unwrap();
        let o = quantize(&calib, &out, extra);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            stdout.contains("Quantized") && stdout.contains("none held out"),
            "{stdout}"
        );
        assert_ne!(std::fs::read(&out).unwrap(), b"previous contents");
    }
}

#[test]
fn images_without_a_preprocess_spec_are_refused() {
    let (calib, out) = setup("images-nospec");
    std::fs::copy(
        root().join("models/fixtures/astronaut_256.jpg"),
        calib.join("a.jpg"),
    )
    .unwrap();
    let err = convert_fails(&calib, &out, &[]);
    assert!(
        err.contains("a.jpg") && err.contains("--preprocess"),
        "{err}"
    );
    // A spec for another input size.
    let err = convert_fails(&calib, &out, &["--preprocess", "resize=96x96"]);
    assert!(err.contains("[1, 96, 96, 3]"), "{err}");
    assert_untouched(&out);
}

/// A folder missing for the package or the report is named before any
/// calibration runs; nothing is written.
#[test]
fn missing_output_folders_are_named_up_front() {
    let (calib, out) = setup("folders");
    npy(&calib.join("a.npy"), &[1, 128, 128, 3], |_| 0.1);
    let report = out.parent().unwrap().join("no-such-dir").join("q.html");
    let err = convert_fails(&calib, &out, &["--report", report.to_str().unwrap()]);
    assert!(
        err.contains("--report") && err.contains("no-such-dir") && err.contains("does not exist"),
        "{err}"
    );
    assert_untouched(&out);
    let elsewhere = out.parent().unwrap().join("missing").join("face.fer");
    let err = convert_fails(&calib, &elsewhere, &[]);
    assert!(
        err.contains("output") && err.contains("missing") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!elsewhere.parent().unwrap().exists());
    assert_untouched(&out);
}

/// Quantization flags without `--quantize int8` are refused, not ignored.
#[test]
fn quantization_flags_need_quantize() {
    let d = tmp("noquant");
    for flags in [
        &["--report", "q.html"][..],
        &["--calib-method", "mse"],
        &["--no-equalize"],
        &["--min-sqnr", "12"],
    ] {
        let args: Vec<&std::ffi::OsStr> = flags.iter().map(std::ffi::OsStr::new).collect();
        let o = convert(&d.join("f.fer"), &args);
        assert!(!o.status.success(), "{flags:?} accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("{} needs --quantize int8", flags[0])),
            "{err}"
        );
        assert!(!d.join("f.fer").exists());
    }
}
