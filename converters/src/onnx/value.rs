//! Constant tensors as the importer folds them: decoded from `TensorProto`s
//! (inline or external data), computed by constant folding, and turned into
//! IR constants.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use ferrite_runtime::DType;

use super::proto::{data_type as dt, TensorProto};

/// Element values of a constant: floats (float32, float16, bfloat16 and
/// double constants are held as f32 or f64) or integers widened to i64
/// (every integer type and bool).
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
}

impl Data {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A constant tensor: ONNX element type, dimensions, values (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    /// ONNX `TensorProto.DataType`.
    pub ty: i32,
    pub dims: Vec<usize>,
    pub data: Data,
}

/// Largest element count accepted in one constant (guards allocation).
const MAX_ELEMS: usize = 1 << 31;

/// Product of dims with overflow and size checks.
pub fn numel(dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMS)
        .ok_or_else(|| anyhow!("tensor shape {dims:?} is too large"))
}

impl Const {
    /// A float32 constant.
    pub fn f32(dims: Vec<usize>, v: Vec<f32>) -> Const {
        Const {
            ty: dt::FLOAT,
            dims,
            data: Data::F32(v),
        }
    }

    /// An int64 constant.
    pub fn i64(dims: Vec<usize>, v: Vec<i64>) -> Const {
        Const {
            ty: dt::INT64,
            dims,
            data: Data::I64(v),
        }
    }

    /// A constant of ONNX type `ty` from integer values (truncated to the type).
    pub fn ints(ty: i32, dims: Vec<usize>, v: Vec<i64>) -> Const {
        let v = v.into_iter().map(|x| wrap_int(ty, x)).collect();
        Const {
            ty,
            dims,
            data: Data::I64(v),
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Values as i64 (floats truncated toward zero).
    pub fn as_i64(&self) -> Vec<i64> {
        match &self.data {
            Data::I64(v) => v.clone(),
            Data::F32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::F64(v) => v.iter().map(|&x| x as i64).collect(),
        }
    }

    /// Values as f32.
    pub fn as_f32(&self) -> Vec<f32> {
        match &self.data {
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
            Data::F32(v) => v.clone(),
            Data::F64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// Values as f64.
    pub fn as_f64(&self) -> Vec<f64> {
        match &self.data {
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F64(v) => v.clone(),
        }
    }

    /// True for float element types.
    pub fn is_float(&self) -> bool {
        !matches!(self.data, Data::I64(_))
    }

    /// The single value of a one-element constant as f64.
    pub fn scalar_f64(&self) -> Option<f64> {
        (self.numel() == 1).then(|| self.as_f64()[0])
    }

    /// Rebuilds this constant with values `f(i)` of the same type from
    /// source indices (`gather`), with new dims.
    pub fn gather_flat(&self, dims: Vec<usize>, idx: &[usize]) -> Const {
        let data = match &self.data {
            Data::F32(v) => Data::F32(idx.iter().map(|&i| v[i]).collect()),
            Data::F64(v) => Data::F64(idx.iter().map(|&i| v[i]).collect()),
            Data::I64(v) => Data::I64(idx.iter().map(|&i| v[i]).collect()),
        };
        Const {
            ty: self.ty,
            dims,
            data,
        }
    }

    /// Converts to ONNX type `to` with ONNX `Cast` semantics for the types
    /// held here (float → int truncates toward zero, saturating).
    pub fn cast(&self, to: i32) -> Result<Const> {
        let data = match to {
            dt::FLOAT | dt::FLOAT16 | dt::BFLOAT16 => Data::F32(self.as_f32()),
            dt::DOUBLE => Data::F64(self.as_f64()),
            dt::BOOL => Data::I64(self.as_f64().iter().map(|&x| (x != 0.0) as i64).collect()),
            t if is_int(t) => Data::I64(match &self.data {
                Data::I64(v) => v.iter().map(|&x| wrap_int(t, x)).collect(),
                _ => self
                    .as_f64()
                    .iter()
                    .map(|&x| wrap_int(t, x as i64))
                    .collect(),
            }),
            t => bail!("cast to {} is not supported", dt::name(t)),
        };
        Ok(Const {
            ty: to,
            dims: self.dims.clone(),
            data,
        })
    }

    /// Little-endian bytes in the runtime dtype this constant maps to.
    pub fn to_bytes(&self) -> Result<(DType, Vec<u8>)> {
        let d = runtime_dtype(self.ty)?;
        let mut out = Vec::with_capacity(self.numel() * d.size());
        match d {
            DType::F32 => self
                .as_f32()
                .iter()
                .for_each(|x| out.extend(x.to_le_bytes())),
            _ => {
                for x in self.as_i64() {
                    match d.size() {
                        1 => out.push(x as u8),
                        2 => out.extend((x as i16).to_le_bytes()),
                        4 => out.extend((x as i32).to_le_bytes()),
                        _ => out.extend(x.to_le_bytes()),
                    }
                }
            }
        }
        Ok((d, out))
    }
}

/// True for ONNX integer element types (bool excluded).
pub fn is_int(t: i32) -> bool {
    matches!(
        t,
        dt::UINT8
            | dt::INT8
            | dt::UINT16
            | dt::INT16
            | dt::INT32
            | dt::INT64
            | dt::UINT32
            | dt::UINT64
    )
}

/// Wraps an integer into the range of ONNX integer type `t` (two's complement).
pub fn wrap_int(t: i32, x: i64) -> i64 {
    match t {
        dt::UINT8 => x as u8 as i64,
        dt::INT8 => x as i8 as i64,
        dt::UINT16 => x as u16 as i64,
        dt::INT16 => x as i16 as i64,
        dt::INT32 => x as i32 as i64,
        dt::UINT32 => x as u32 as i64,
        dt::BOOL => (x != 0) as i64,
        _ => x,
    }
}

/// The runtime dtype of an ONNX element type, or an error naming the type.
pub fn runtime_dtype(t: i32) -> Result<DType> {
    Ok(match t {
        dt::FLOAT => DType::F32,
        dt::INT8 => DType::I8,
        dt::UINT8 => DType::U8,
        dt::INT16 => DType::I16,
        dt::INT32 => DType::I32,
        dt::INT64 => DType::I64,
        dt::BOOL => DType::Bool,
        t => bail!("tensors of type {} are not supported", dt::name(t)),
    })
}

/// The ONNX element type of a runtime dtype.
pub fn onnx_type(d: DType) -> i32 {
    match d {
        DType::F32 => dt::FLOAT,
        DType::I8 => dt::INT8,
        DType::U8 => dt::UINT8,
        DType::I16 => dt::INT16,
        DType::I32 => dt::INT32,
        DType::I64 => dt::INT64,
        DType::Bool => dt::BOOL,
    }
}

/// Decodes a `TensorProto` into a constant. `base_dir` is the folder external
/// data files are looked up in (`None`: external data is an error).
pub fn decode_tensor(t: &TensorProto, base_dir: Option<&Path>) -> Result<Const> {
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| anyhow!("negative dimension {d}")))
        .collect::<Result<_>>()?;
    let n = numel(&dims)?;
    let ext;
    let raw: &[u8] = if t.data_location == 1 {
        ext = read_external(t, base_dir)?;
        &ext
    } else {
        &t.raw_data
    };
    let ty = t.data_type;
    let elem = match ty {
        dt::FLOAT | dt::INT32 | dt::UINT32 => 4,
        dt::UINT8 | dt::INT8 | dt::BOOL => 1,
        dt::UINT16 | dt::INT16 | dt::FLOAT16 | dt::BFLOAT16 => 2,
        dt::INT64 | dt::DOUBLE | dt::UINT64 => 8,
        other => bail!("tensor element type {} is not supported", dt::name(other)),
    };
    let typed_len = match ty {
        dt::FLOAT => t.float_data.len(),
        dt::DOUBLE => t.double_data.len(),
        dt::INT64 => t.int64_data.len(),
        dt::UINT32 | dt::UINT64 => t.uint64_data.len(),
        _ => t.int32_data.len(),
    };
    let use_raw = !raw.is_empty() || (typed_len == 0 && t.data_location == 1);
    if use_raw {
        if raw.len() != n * elem {
            bail!(
                "tensor '{}' has {} data bytes, its shape {dims:?} of {} needs {}",
                t.name,
                raw.len(),
                dt::name(ty),
                n * elem
            );
        }
    } else if typed_len != n {
        bail!(
            "tensor '{}' has {typed_len} values, its shape {dims:?} needs {n}",
            t.name
        );
    }
    let chunks = |k: usize| raw.chunks_exact(k);
    let data = match ty {
        dt::FLOAT if use_raw => Data::F32(
            chunks(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        dt::FLOAT => Data::F32(t.float_data.clone()),
        dt::DOUBLE if use_raw => Data::F64(
            chunks(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        ),
        dt::DOUBLE => Data::F64(t.double_data.clone()),
        dt::FLOAT16 | dt::BFLOAT16 => {
            let bits: Vec<u16> = if use_raw {
                chunks(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect()
            } else {
                t.int32_data.iter().map(|&v| v as u16).collect()
            };
            Data::F32(
                bits.iter()
                    .map(|&b| {
                        if ty == dt::FLOAT16 {
                            half::f16::from_bits(b).to_f32()
                        } else {
                            half::bf16::from_bits(b).to_f32()
                        }
                    })
                    .collect(),
            )
        }
        _ => {
            let v: Vec<i64> = if use_raw {
                match elem {
                    1 => raw.iter().map(|&b| b as i64).collect(),
                    2 => chunks(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]) as i64)
                        .collect(),
                    4 => chunks(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                        .collect(),
                    _ => chunks(8)
                        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                        .collect(),
                }
            } else {
                match ty {
                    dt::INT64 => t.int64_data.clone(),
                    dt::UINT32 | dt::UINT64 => t.uint64_data.iter().map(|&v| v as i64).collect(),
                    _ => t.int32_data.iter().map(|&v| v as i64).collect(),
                }
            };
            Data::I64(v.into_iter().map(|x| wrap_int(ty, x)).collect())
        }
    };
    Ok(Const { ty, dims, data })
}

/// Reads a tensor's external data (`location`, `offset`, `length` keys)
/// from a file inside `base_dir`.
fn read_external(t: &TensorProto, base_dir: Option<&Path>) -> Result<Vec<u8>> {
    let dir = base_dir.ok_or_else(|| {
        anyhow!(
            "tensor '{}' keeps its data in an external file; convert the model from its file path",
            t.name
        )
    })?;
    let (mut location, mut offset, mut length) = (None, 0u64, None);
    for e in &t.external_data {
        match e.key.as_str() {
            "location" => location = Some(e.value.clone()),
            "offset" => offset = e.value.parse().context("external data offset")?,
            "length" => length = Some(e.value.parse::<u64>().context("external data length")?),
            _ => {}
        }
    }
    let location =
        location.ok_or_else(|| anyhow!("tensor '{}': external data without location", t.name))?;
    let rel = Path::new(&location);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        bail!(
            "tensor '{}': external data location '{location}' must stay inside the model's folder",
            t.name
        );
    }
    let path = dir.join(rel);
    let bytes = std::fs::read(&path)
        .with_context(|| format!("reading external data {}", path.display()))?;
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    let end = match length {
        Some(l) => start.checked_add(usize::try_from(l).unwrap_or(usize::MAX)),
        None => Some(bytes.len()),
    };
    match end {
        Some(end) if start <= end && end <= bytes.len() => Ok(bytes[start..end].to_vec()),
        _ => bail!(
            "tensor '{}': external data range is outside {}",
            t.name,
            path.display()
        ),
    }
}
