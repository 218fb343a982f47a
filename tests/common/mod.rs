//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ferrite::npy::{self, Array};
use ferrite_runtime::session::TensorView;
use ferrite_runtime::{DType, Model, Options, Session};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Converts a source model (bytes) and loads the package.
pub fn convert(src: &[u8]) -> anyhow::Result<Model<'static>> {
    let c = ferrite_convert::convert(src)?;
    Ok(Model::from_vec(&c.bytes)?)
}

/// Runs `model` on `inputs` and returns its outputs.
pub fn run(model: &Model<'_>, inputs: &[Array]) -> anyhow::Result<Vec<Array>> {
    run_with(model, inputs, Options::default())
}

/// Runs `model` with `options`.
pub fn run_with(
    model: &Model<'_>,
    inputs: &[Array],
    options: Options,
) -> anyhow::Result<Vec<Array>> {
    let mut s = Session::new(model, options)?;
    for (i, a) in inputs.iter().enumerate() {
        s.set_input(
            i,
            TensorView {
                dtype: a.dtype,
                shape: &a.shape,
                data: &a.data,
            },
        )?;
    }
    s.invoke()?;
    (0..s.outputs().len())
        .map(|i| {
            let v = s.output(i)?;
            Ok(Array {
                dtype: v.dtype,
                shape: v.shape.to_vec(),
                data: v.data.to_vec(),
            })
        })
        .collect()
}

/// Reads a `.npy` fixture.
pub fn read(path: &Path) -> Array {
    npy::read(path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()))
}

/// The `.npy` files a golden index entry lists under `key` (`"inputs"`,
/// `"outputs"`), read from `dir`.
pub fn case_files(dir: &Path, case: &serde_json::Value, key: &str) -> Vec<Array> {
    case[key]
        .as_array()
        .unwrap_or_else(|| panic!("the case has no {key} list"))
        .iter()
        .map(|f| read(&dir.join(f.as_str().unwrap())))
        .collect()
}

/// Max abs error / max abs value of `got` against `want` (f32 arrays).
pub fn rel_err(got: &Array, want: &Array) -> f64 {
    let (g, w) = (got.as_f32(), want.as_f32());
    let max_abs = w.iter().fold(0f64, |m, &v| m.max(v.abs() as f64));
    let max_err = g
        .iter()
        .zip(&w)
        .fold(0f64, |m, (&a, &b)| m.max((a as f64 - b as f64).abs()));
    if max_abs == 0.0 {
        max_err
    } else {
        max_err / max_abs
    }
}

/// Number of elements whose bytes differ (for integer arrays) and the largest difference.
pub fn int_diff(got: &Array, want: &Array) -> (usize, i64) {
    assert_eq!(got.dtype, want.dtype);
    let as_i = |a: &Array| -> Vec<i64> {
        match a.dtype {
            DType::I8 => a.data.iter().map(|&b| b as i8 as i64).collect(),
            DType::U8 => a.data.iter().map(|&b| b as i64).collect(),
            DType::I32 => a
                .data
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64)
                .collect(),
            _ => a.data.iter().map(|&b| b as i64).collect(),
        }
    };
    let (g, w) = (as_i(got), as_i(want));
    let n = g.iter().zip(&w).filter(|(a, b)| a != b).count();
    let m = g
        .iter()
        .zip(&w)
        .map(|(a, b)| (a - b).abs())
        .max()
        .unwrap_or(0);
    (n, m)
}

/// The shared models folder (`$FERRITE_SHARED_MODELS`, default `../shared/models`),
/// if it exists.
pub fn shared_models() -> Option<PathBuf> {
    let p = std::env::var_os("FERRITE_SHARED_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/models"));
    p.is_dir().then_some(p)
}
