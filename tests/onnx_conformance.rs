//! The ONNX backend node tests (onnx==1.16.2, `onnx/backend/test/data/node`,
//! fetched by `models/onnx/fetch.sh`) through the converter and the runtime.
//!
//! Each test's model is converted with default options and run on
//! `test_data_set_0`; outputs are compared like onnx's backend runner
//! (rtol 1e-3, atol 1e-7; integers and booleans exactly). A test either
//! passes or is rejected at conversion ("unsupported"); one that converts
//! and then fails to prepare, run or match is a failure of this test.
//!
//! Cases under `models/cache/onnx/extra/` (`models/onnx/make_extra_tests.py`:
//! the same ops with constant weights, scales and sizes, as exported models
//! have them) run the same way, listed with an `extra/` prefix.
//!
//! `models/onnx/node_tests.txt` records every test's status; a test listed
//! as `pass` that no longer passes fails this test. Set
//! `FERRITE_UPDATE_NODE_LIST=1` to rewrite the list.
//!
//! Ignored by default (needs the fetched data): run with
//! `cargo test --release --test onnx_conformance -- --ignored --nocapture`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use ferrite::npy::Array;
use ferrite_convert::onnx::{self, value};
use ferrite_runtime::{DType, Model};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Pass,
    /// Rejected at conversion, with the converter's message.
    Unsupported(String),
    /// Converted, then failed (a bug): the reason.
    Fail(String),
}

fn read_pb(path: &Path) -> Result<value::Const, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    onnx::read_tensor(&bytes).map_err(|e| format!("{e:#}"))
}

fn to_array(c: &value::Const) -> Result<Array, String> {
    let (dtype, data) = c.to_bytes().map_err(|e| format!("{e:#}"))?;
    Ok(Array {
        dtype,
        shape: c.dims.clone(),
        data,
    })
}

fn compare(got: &Array, want: &value::Const) -> Result<(), String> {
    if got.shape != want.dims {
        return Err(format!("shape {:?}, expected {:?}", got.shape, want.dims));
    }
    match got.dtype {
        DType::F32 => {
            let w = want.as_f32();
            for (i, (&g, &e)) in got.as_f32().iter().zip(&w).enumerate() {
                let ok = if e.is_nan() {
                    g.is_nan()
                } else {
                    (g - e).abs() as f64 <= 1e-7 + 1e-3 * (e.abs() as f64) || g == e
                };
                if !ok {
                    return Err(format!("element {i}: {g}, expected {e}"));
                }
            }
            Ok(())
        }
        _ => {
            let (_, bytes) = want.to_bytes().map_err(|e| format!("{e:#}"))?;
            if bytes != got.data {
                return Err("integer outputs differ".into());
            }
            Ok(())
        }
    }
}

fn run_one(dir: &Path) -> Status {
    let model_path = dir.join("model.onnx");
    let converted = match ferrite_convert::convert_file(&model_path, &Default::default()) {
        Ok(c) => c,
        Err(e) => return Status::Unsupported(format!("{e:#}").replace('\n', " ")),
    };
    let model = match Model::from_vec(&converted.bytes) {
        Ok(m) => m,
        Err(e) => return Status::Fail(format!("load: {e}")),
    };
    let data = dir.join("test_data_set_0");
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for k in 0.. {
        let p = data.join(format!("input_{k}.pb"));
        if !p.exists() {
            break;
        }
        match read_pb(&p).and_then(|c| to_array(&c)) {
            Ok(a) => inputs.push(a),
            Err(e) => return Status::Fail(format!("input {k}: {e}")),
        }
    }
    for k in 0.. {
        let p = data.join(format!("output_{k}.pb"));
        if !p.exists() {
            break;
        }
        match read_pb(&p) {
            Ok(c) => outputs.push(c),
            Err(e) => return Status::Fail(format!("output {k}: {e}")),
        }
    }
    if inputs.len() != model.inputs().len() {
        return Status::Fail(format!(
            "model has {} inputs, test data {}",
            model.inputs().len(),
            inputs.len()
        ));
    }
    let got = match common::run(&model, &inputs) {
        Ok(g) => g,
        Err(e) => return Status::Fail(format!("run: {e:#}")),
    };
    if got.len() != outputs.len() {
        return Status::Fail(format!("{} outputs, expected {}", got.len(), outputs.len()));
    }
    for (k, (g, w)) in got.iter().zip(&outputs).enumerate() {
        if let Err(e) = compare(g, w) {
            return Status::Fail(format!("output {k}: {e}"));
        }
    }
    Status::Pass
}

#[test]
#[ignore = "needs models/onnx/fetch.sh; run from CI with --ignored"]
fn onnx_backend_node_tests() {
    let root = common::root().join("models/cache/onnx/onnx/backend/test/data/node");
    let list_path = common::root().join("models/onnx/node_tests.txt");
    // Cases with constant weights, scales and sizes, made by models/onnx/make_extra_tests.py.
    let extra = common::root().join("models/cache/onnx/extra");
    assert!(
        root.is_dir(),
        "{} missing: run models/onnx/fetch.sh",
        root.display()
    );
    let mut dirs: Vec<(String, std::path::PathBuf)> = Vec::new();
    for (prefix, dir) in [("", root.clone()), ("extra/", extra.clone())] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            if let Ok(n) = e.file_name().into_string() {
                dirs.push((format!("{prefix}{n}"), e.path()));
            }
        }
    }
    dirs.sort();
    let mut results = BTreeMap::new();
    for (name, dir) in &dirs {
        let status = std::panic::catch_unwind(|| run_one(dir))
            .unwrap_or_else(|_| Status::Fail("panicked".into()));
        results.insert(name.clone(), status);
    }
    let count = |f: fn(&Status) -> bool| results.values().filter(|s| f(s)).count();
    let pass = count(|s| *s == Status::Pass);
    let unsupported = count(|s| matches!(s, Status::Unsupported(_)));
    let failures: Vec<_> = results
        .iter()
        .filter_map(|(n, s)| match s {
            Status::Fail(why) => Some(format!("{n}: {why}")),
            _ => None,
        })
        .collect();
    let node_pass = results
        .iter()
        .filter(|(n, s)| !n.starts_with("extra/") && **s == Status::Pass)
        .count();
    println!(
        "ONNX tests: {} total, {pass} pass ({node_pass} of the backend node tests), {unsupported} unsupported, {} fail",
        results.len(),
        failures.len()
    );
    let mut list = String::from(
        "# ONNX backend node tests (onnx==1.16.2) through ferrite convert + run.\n\
         # Written by tests/onnx_conformance.rs with FERRITE_UPDATE_NODE_LIST=1.\n\
         # pass: converts and matches; unsupported: rejected at conversion (reason).\n",
    );
    for (n, s) in &results {
        match s {
            Status::Pass => list.push_str(&format!("{n} pass\n")),
            Status::Unsupported(why) => {
                let short: String = why.chars().take(160).collect();
                list.push_str(&format!("{n} unsupported # {short}\n"))
            }
            Status::Fail(why) => list.push_str(&format!("{n} FAIL # {why}\n")),
        }
    }
    if std::env::var_os("FERRITE_UPDATE_NODE_LIST").is_some() {
        std::fs::write(&list_path, &list).unwrap();
    } else if let Ok(old) = std::fs::read_to_string(&list_path) {
        let regressed: Vec<&str> = old
            .lines()
            .filter_map(|l| l.strip_suffix(" pass"))
            .filter(|n| results.get(*n) != Some(&Status::Pass))
            .collect();
        assert!(
            regressed.is_empty(),
            "listed as pass but no longer passing: {regressed:?}"
        );
    }
    for f in &failures {
        println!("FAIL {f}");
    }
    assert!(
        failures.is_empty(),
        "{} tests converted but failed",
        failures.len()
    );
    assert!(
        node_pass >= 350,
        "only {node_pass} node tests pass (need 350)"
    );
}
