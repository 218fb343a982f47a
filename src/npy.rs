//! `.npy` reading and writing for the CLI, on top of the `npyz` crate.
//!
//! Arrays are held as a runtime dtype, a shape and little-endian bytes, the
//! form the runtime's tensor views take.

use std::path::Path;

use anyhow::{bail, Context, Result};
use ferrite_runtime::DType;
use npyz::WriterBuilder;

/// A dense array read from or written to a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Little-endian element bytes, C order.
    pub data: Vec<u8>,
}

impl Array {
    /// The values as f32 (only for f32 arrays).
    pub fn as_f32(&self) -> Vec<f32> {
        self.data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

fn to_le<T: npyz::Deserialize, const N: usize>(
    r: npyz::NpyFile<&[u8]>,
    f: impl Fn(T) -> [u8; N],
) -> Result<Vec<u8>> {
    let v: Vec<T> = r.into_vec()?;
    Ok(v.into_iter().flat_map(f).collect())
}

/// Reads a `.npy` file. Errors name the file and what is wrong with it
/// (unsupported dtype, Fortran order, truncated data, ...).
pub fn read(path: &Path) -> Result<Array> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&bytes).with_context(|| format!("{} is not a usable .npy file", path.display()))
}

/// Parses `.npy` bytes.
pub fn parse(bytes: &[u8]) -> Result<Array> {
    let file = npyz::NpyFile::new(bytes).context("bad .npy header")?;
    if file.order() == npyz::Order::Fortran {
        bail!("Fortran-order arrays are not supported (save it with numpy.ascontiguousarray)");
    }
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    let npyz::DType::Plain(ts) = file.dtype() else {
        bail!("structured dtypes are not supported")
    };
    use npyz::TypeChar::*;
    let dtype = match (ts.type_char(), ts.size_field()) {
        (Float, 4) => DType::F32,
        (Int, 1) => DType::I8,
        (Uint, 1) => DType::U8,
        (Int, 2) => DType::I16,
        (Int, 4) => DType::I32,
        (Int, 8) => DType::I64,
        (Bool, 1) => DType::Bool,
        _ => bail!(
            "unsupported dtype '{ts}' (use float32, int8, uint8, int16, int32, int64 or bool)"
        ),
    };
    let numel = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .context("shape overflows")?;
    if numel.saturating_mul(dtype.size()) > bytes.len() {
        bail!(
            "data is truncated: shape {shape:?} needs {} bytes",
            numel * dtype.size()
        );
    }
    let data = match dtype {
        DType::F32 => to_le(file, f32::to_le_bytes)?,
        DType::I8 => to_le(file, i8::to_le_bytes)?,
        DType::U8 => to_le(file, u8::to_le_bytes)?,
        DType::I16 => to_le(file, i16::to_le_bytes)?,
        DType::I32 => to_le(file, i32::to_le_bytes)?,
        DType::I64 => to_le(file, i64::to_le_bytes)?,
        DType::Bool => to_le(file, |b: bool| [b as u8])?,
    };
    if data.len() != numel * dtype.size() {
        bail!("data is truncated: expected {numel} elements");
    }
    Ok(Array { dtype, shape, data })
}

/// Writes `a` as a `.npy` file.
pub fn write(path: &Path, a: &Array) -> Result<()> {
    let f =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    let shape: Vec<u64> = a.shape.iter().map(|&d| d as u64).collect();
    macro_rules! put {
        ($t:ty, $n:literal) => {{
            let mut wr = npyz::WriteOptions::<$t>::new()
                .default_dtype()
                .shape(&shape)
                .writer(&mut w)
                .begin_nd()?;
            for c in a.data.chunks_exact($n) {
                wr.push(&<$t>::from_le_bytes(c.try_into().unwrap()))?;
            }
            wr.finish()?;
        }};
    }
    match a.dtype {
        DType::F32 => put!(f32, 4),
        DType::I8 => put!(i8, 1),
        DType::U8 => put!(u8, 1),
        DType::I16 => put!(i16, 2),
        DType::I32 => put!(i32, 4),
        DType::I64 => put!(i64, 8),
        DType::Bool => {
            let mut wr = npyz::WriteOptions::<bool>::new()
                .default_dtype()
                .shape(&shape)
                .writer(&mut w)
                .begin_nd()?;
            for &b in &a.data {
                wr.push(&(b != 0))?;
            }
            wr.finish()?;
        }
    }
    Ok(())
}
