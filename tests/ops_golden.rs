//! The per-op suite: every TFLite op Ferrite imports, in f32 (and int8 for
//! the ops of TFLite's int8 spec), over many generated cases, against
//! LiteRT's reference kernels (its builtin ones for the few float ops
//! without a reference registration, such as CEIL; goldens made by
//! `models/golden/make_op_goldens.py`). int8, integer and bool outputs must
//! match bit for bit; f32 within 1e-5 relative (max abs error / max abs
//! value).

mod common;

use std::collections::BTreeMap;

use ferrite_runtime::DType;

#[test]
fn every_op_matches_litert_reference() {
    let dir = common::root().join("tests/fixtures/ops");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let cases = index["cases"].as_array().unwrap();
    let mut per_op: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let op = format!(
            "{} {}",
            case["op"].as_str().unwrap(),
            case["dtype"].as_str().unwrap()
        );
        let entry = per_op.entry(op).or_default();
        entry.0 += 1;
        let (inputs, wants) = (
            common::case_files(&dir, case, "inputs"),
            common::case_files(&dir, case, "outputs"),
        );
        let src = std::fs::read(dir.join(case["model"].as_str().unwrap())).unwrap();
        let result = common::convert(&src).and_then(|m| common::run(&m, &inputs));
        let problem = match result {
            Err(e) => Some(format!("{e:#}")),
            Ok(gots) => gots
                .iter()
                .zip(&wants)
                .enumerate()
                .find_map(|(k, (got, want))| {
                    if got.shape != want.shape || got.dtype != want.dtype {
                        return Some(format!(
                            "output {k}: {:?} {:?} vs expected {:?} {:?}",
                            got.dtype, got.shape, want.dtype, want.shape
                        ));
                    }
                    if want.dtype == DType::F32 {
                        let e = common::rel_err(got, want);
                        (e > 1e-5).then(|| format!("output {k}: relative error {e:.3e}"))
                    } else {
                        let (n, m) = common::int_diff(got, want);
                        (n > 0).then(|| format!("output {k}: {n} elements differ (max {m} LSB)"))
                    }
                }),
        };
        match problem {
            None => entry.1 += 1,
            Some(p) => failures.push(format!("{name}: {p}")),
        }
    }
    for (op, (n, ok)) in &per_op {
        println!("{op:<32} {ok}/{n}");
    }
    let total: usize = per_op.values().map(|v| v.0).sum();
    println!(
        "{} passed, {} failed",
        total - failures.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
