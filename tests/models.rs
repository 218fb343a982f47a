//! Whole models against LiteRT goldens (`tests/fixtures/models`, made by
//! `models/golden/make_model_goldens.py` with the reference op resolver).

mod common;

use std::path::Path;

use ferrite::npy::Array;
use ferrite_runtime::Model;

/// Pairs of (input, outputs) fixtures in `dir`: `inNN.npy` with `outNN_K.npy`.
fn cases(dir: &Path) -> Vec<(Array, Vec<Array>)> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("in") && n.ends_with(".npy"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| {
            let id = &n[2..n.len() - 4];
            let mut outs = Vec::new();
            for k in 0.. {
                let p = dir.join(format!("out{id}_{k}.npy"));
                if !p.exists() {
                    break;
                }
                outs.push(common::read(&p));
            }
            assert!(!outs.is_empty(), "no outputs for {n}");
            (common::read(&dir.join(n)), outs)
        })
        .collect()
}

fn convert_file(path: &Path) -> Model<'static> {
    common::convert(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()))
}

fn check_float(model: &Model<'_>, fixtures: &str, tol: f64) {
    let cases = cases(&common::root().join(fixtures));
    assert!(
        cases.len() >= 8,
        "expected at least 8 golden inputs in {fixtures}"
    );
    let mut worst = 0f64;
    for (i, (input, wants)) in cases.iter().enumerate() {
        let gots = common::run(model, std::slice::from_ref(input)).unwrap();
        for (k, (g, w)) in gots.iter().zip(wants).enumerate() {
            assert_eq!(g.shape, w.shape, "case {i} output {k}");
            let e = common::rel_err(g, w);
            worst = worst.max(e);
            assert!(
                e <= tol,
                "{fixtures} case {i} output {k}: relative error {e:.3e} > {tol:e}"
            );
        }
    }
    println!(
        "{fixtures}: {} inputs, worst relative error {worst:.3e}",
        cases.len()
    );
}

#[test]
fn blazeface_float_matches_litert() {
    let model =
        convert_file(&common::root().join("models/fixtures/face_detection_short_range.tflite"));
    check_float(&model, "tests/fixtures/models/blazeface", 1e-4);
}

#[test]
fn mobilenet_v2_int8_is_bit_exact() {
    let Some(shared) = common::shared_models() else {
        eprintln!("skipped: shared models folder not found (set FERRITE_SHARED_MODELS)");
        return;
    };
    let model = convert_file(&shared.join("mobilenet_v2_torchvision_int8.tflite"));
    let cases = cases(&common::root().join("tests/fixtures/models/mobilenet_v2_int8"));
    assert!(cases.len() >= 20);
    for (i, (input, wants)) in cases.iter().enumerate() {
        let gots = common::run(&model, std::slice::from_ref(input)).unwrap();
        let (n, m) = common::int_diff(&gots[0], &wants[0]);
        assert_eq!(
            n, 0,
            "case {i}: {n} output elements differ from LiteRT (max {m} LSB)"
        );
    }
    println!(
        "mobilenet_v2 int8: {} inputs, 0 LSB difference",
        cases.len()
    );
}

#[test]
fn mobilenet_v2_float_matches_litert() {
    let Some(shared) = common::shared_models() else {
        eprintln!("skipped: shared models folder not found (set FERRITE_SHARED_MODELS)");
        return;
    };
    let model = convert_file(&shared.join("mobilenet_v2_torchvision_f32.tflite"));
    check_float(&model, "tests/fixtures/models/mobilenet_v2_f32", 1e-4);
}

#[test]
fn arena_is_within_ten_percent_of_lower_bound() {
    let mut paths = vec![common::root().join("models/fixtures/face_detection_short_range.tflite")];
    if let Some(shared) = common::shared_models() {
        paths.push(shared.join("mobilenet_v2_torchvision_int8.tflite"));
        paths.push(shared.join("mobilenet_v2_torchvision_f32.tflite"));
    }
    for p in paths {
        let c = ferrite_convert::convert(&std::fs::read(&p).unwrap()).unwrap();
        let ratio = c.arena_bytes as f64 / c.lower_bound as f64;
        println!(
            "{}: arena {} bytes, lower bound {} ({:+.1}%)",
            p.display(),
            c.arena_bytes,
            c.lower_bound,
            (ratio - 1.0) * 100.0
        );
        assert!(
            ratio <= 1.10,
            "{}: arena {} exceeds the lower bound {} by more than 10%",
            p.display(),
            c.arena_bytes,
            c.lower_bound
        );
    }
}
