//! Constant folding: ONNX ops whose inputs are all constants are computed at
//! conversion (shape arithmetic, weight preprocessing), so the converted
//! model only keeps work that depends on its inputs.

use anyhow::{bail, Result};

use super::proto::data_type as dt;
use super::value::{numel, wrap_int, Const, Data};

/// The NumPy broadcast of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            bail!("shapes {a:?} and {b:?} do not broadcast");
        };
    }
    Ok(out)
}

/// Row-major strides of `dims`.
pub fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// For every element of `out` (row-major), the flat index of the element of
/// a tensor of shape `src` that broadcasts onto it.
pub fn broadcast_index(src: &[usize], out: &[usize]) -> Vec<usize> {
    let n: usize = out.iter().product();
    let r = out.len();
    let st = strides(src);
    let off = r - src.len();
    let ost = strides(out);
    (0..n)
        .map(|flat| {
            let mut idx = 0;
            for d in off..r {
                let coord = (flat / ost[d]) % out[d].max(1);
                let sd = src[d - off];
                if sd != 1 {
                    idx += coord * st[d - off];
                }
            }
            idx
        })
        .collect()
}

/// Broadcasts `c` to shape `to`.
pub fn expand(c: &Const, to: &[usize]) -> Result<Const> {
    let out = broadcast(&c.dims, to)?;
    numel(&out)?;
    let idx = broadcast_index(&c.dims, &out);
    Ok(c.gather_flat(out, &idx))
}

/// A binary arithmetic or comparison op on constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    Mod,
    Equal,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
    And,
    Or,
    Xor,
}

impl BinOp {
    /// The op of an ONNX op type, if it is one of these.
    pub fn from_onnx(op: &str) -> Option<BinOp> {
        Some(match op {
            "Add" => BinOp::Add,
            "Sub" => BinOp::Sub,
            "Mul" => BinOp::Mul,
            "Div" => BinOp::Div,
            "Pow" => BinOp::Pow,
            "Max" => BinOp::Max,
            "Min" => BinOp::Min,
            "Mod" => BinOp::Mod,
            "Equal" => BinOp::Equal,
            "Less" => BinOp::Less,
            "Greater" => BinOp::Greater,
            "LessOrEqual" => BinOp::LessOrEqual,
            "GreaterOrEqual" => BinOp::GreaterOrEqual,
            "And" => BinOp::And,
            "Or" => BinOp::Or,
            "Xor" => BinOp::Xor,
            _ => return None,
        })
    }

    fn is_compare(self) -> bool {
        use BinOp::*;
        matches!(
            self,
            Equal | Less | Greater | LessOrEqual | GreaterOrEqual | And | Or | Xor
        )
    }
}

/// Computes `a op b` with broadcasting. Integers use wrapping i64 arithmetic
/// truncated to the type; floats use f32 (or f64 for doubles).
pub fn binary(op: BinOp, a: &Const, b: &Const) -> Result<Const> {
    let out = broadcast(&a.dims, &b.dims)?;
    numel(&out)?;
    let ia = broadcast_index(&a.dims, &out);
    let ib = broadcast_index(&b.dims, &out);
    let cmp = op.is_compare();
    let ty = if cmp { dt::BOOL } else { a.ty };
    let data = match (&a.data, &b.data) {
        (Data::I64(x), Data::I64(y)) => {
            let mut v = Vec::with_capacity(ia.len());
            for (&i, &j) in ia.iter().zip(&ib) {
                let (p, q) = (x[i], y[j]);
                let r = match op {
                    BinOp::Add => p.wrapping_add(q),
                    BinOp::Sub => p.wrapping_sub(q),
                    BinOp::Mul => p.wrapping_mul(q),
                    BinOp::Div => {
                        if q == 0 {
                            bail!("integer division by zero in a constant");
                        }
                        p.wrapping_div(q)
                    }
                    BinOp::Mod => {
                        if q == 0 {
                            bail!("integer modulo by zero in a constant");
                        }
                        p.rem_euclid(q) + if q < 0 && p.rem_euclid(q) != 0 { q } else { 0 }
                    }
                    BinOp::Pow => {
                        if q < 0 {
                            bail!("negative integer power in a constant");
                        }
                        p.wrapping_pow(q.min(u32::MAX as i64) as u32)
                    }
                    BinOp::Max => p.max(q),
                    BinOp::Min => p.min(q),
                    BinOp::Equal => (p == q) as i64,
                    BinOp::Less => (p < q) as i64,
                    BinOp::Greater => (p > q) as i64,
                    BinOp::LessOrEqual => (p <= q) as i64,
                    BinOp::GreaterOrEqual => (p >= q) as i64,
                    BinOp::And => (p != 0 && q != 0) as i64,
                    BinOp::Or => (p != 0 || q != 0) as i64,
                    BinOp::Xor => ((p != 0) != (q != 0)) as i64,
                };
                v.push(if cmp { r } else { wrap_int(ty, r) });
            }
            Data::I64(v)
        }
        (Data::F32(x), Data::F32(y)) => {
            let f = |p: f32, q: f32| -> f32 {
                match op {
                    BinOp::Add => p + q,
                    BinOp::Sub => p - q,
                    BinOp::Mul => p * q,
                    BinOp::Div => p / q,
                    BinOp::Pow => p.powf(q),
                    BinOp::Max => p.max(q),
                    BinOp::Min => p.min(q),
                    BinOp::Mod => p % q,
                    BinOp::Equal => (p == q) as i32 as f32,
                    BinOp::Less => (p < q) as i32 as f32,
                    BinOp::Greater => (p > q) as i32 as f32,
                    BinOp::LessOrEqual => (p <= q) as i32 as f32,
                    BinOp::GreaterOrEqual => (p >= q) as i32 as f32,
                    _ => f32::NAN,
                }
            };
            if matches!(op, BinOp::And | BinOp::Or | BinOp::Xor) {
                bail!("logical op on float constants");
            }
            let v: Vec<f32> = ia.iter().zip(&ib).map(|(&i, &j)| f(x[i], y[j])).collect();
            if cmp {
                Data::I64(v.iter().map(|&r| r as i64).collect())
            } else {
                Data::F32(v)
            }
        }
        _ => {
            if a.is_float() != b.is_float() {
                bail!("constant operands of different types");
            }
            let (x, y) = (a.as_f64(), b.as_f64());
            let v: Vec<f64> = ia
                .iter()
                .zip(&ib)
                .map(|(&i, &j)| {
                    let (p, q) = (x[i], y[j]);
                    match op {
                        BinOp::Add => p + q,
                        BinOp::Sub => p - q,
                        BinOp::Mul => p * q,
                        BinOp::Div => p / q,
                        BinOp::Pow => p.powf(q),
                        BinOp::Max => p.max(q),
                        BinOp::Min => p.min(q),
                        BinOp::Mod => p % q,
                        BinOp::Equal => (p == q) as i32 as f64,
                        BinOp::Less => (p < q) as i32 as f64,
                        BinOp::Greater => (p > q) as i32 as f64,
                        BinOp::LessOrEqual => (p <= q) as i32 as f64,
                        BinOp::GreaterOrEqual => (p >= q) as i32 as f64,
                        _ => f64::NAN,
                    }
                })
                .collect();
            if cmp {
                Data::I64(v.iter().map(|&r| r as i64).collect())
            } else {
                Data::F64(v)
            }
        }
    };
    Ok(Const {
        ty,
        dims: out,
        data,
    })
}

/// Transposes a constant by `perm` (output dim `i` is input dim `perm[i]`).
pub fn transpose(c: &Const, perm: &[usize]) -> Result<Const> {
    let r = c.dims.len();
    if perm.len() != r || {
        let mut s = perm.to_vec();
        s.sort_unstable();
        s != (0..r).collect::<Vec<_>>()
    } {
        bail!("invalid permutation {perm:?} for rank {r}");
    }
    let out: Vec<usize> = perm.iter().map(|&p| c.dims[p]).collect();
    let ist = strides(&c.dims);
    let ost = strides(&out);
    let n = c.numel();
    let idx: Vec<usize> = (0..n)
        .map(|flat| {
            (0..r)
                .map(|d| ((flat / ost[d]) % out[d]) * ist[perm[d]])
                .sum()
        })
        .collect();
    Ok(c.gather_flat(out, &idx))
}

/// Gathers slices of `c` along `axis` at `indices` (negative indices count
/// from the end), ONNX `Gather` semantics.
pub fn gather(c: &Const, indices: &Const, axis: usize) -> Result<Const> {
    let dim = c.dims[axis];
    let idx: Vec<usize> = indices
        .as_i64()
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + dim as i64 } else { i };
            usize::try_from(j)
                .ok()
                .filter(|&j| j < dim)
                .ok_or_else(|| anyhow::anyhow!("gather index {i} out of range for size {dim}"))
        })
        .collect::<Result<_>>()?;
    let outer: usize = c.dims[..axis].iter().product();
    let inner: usize = c.dims[axis + 1..].iter().product();
    let mut flat = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in &idx {
            for k in 0..inner {
                flat.push((o * dim + i) * inner + k);
            }
        }
    }
    let mut dims = c.dims[..axis].to_vec();
    dims.extend(&indices.dims);
    dims.extend(&c.dims[axis + 1..]);
    Ok(c.gather_flat(dims, &flat))
}

/// Concatenates constants along `axis`.
pub fn concat(parts: &[&Const], axis: usize) -> Result<Const> {
    let first = parts[0];
    let r = first.dims.len();
    let mut dims = first.dims.clone();
    dims[axis] = 0;
    for p in parts {
        if p.dims.len() != r
            || (0..r).any(|d| d != axis && p.dims[d] != first.dims[d])
            || p.is_float() != first.is_float()
        {
            bail!("constant concat inputs do not match");
        }
        dims[axis] += p.dims[axis];
    }
    let outer: usize = dims[..axis].iter().product();
    let mut data = match &first.data {
        Data::F32(_) => Data::F32(Vec::new()),
        Data::F64(_) => Data::F64(Vec::new()),
        Data::I64(_) => Data::I64(Vec::new()),
    };
    for o in 0..outer {
        for p in parts {
            let chunk: usize = p.dims[axis..].iter().product();
            let range = o * chunk..(o + 1) * chunk;
            match (&mut data, &p.data) {
                (Data::F32(d), Data::F32(s)) => d.extend_from_slice(&s[range]),
                (Data::F64(d), Data::F64(s)) => d.extend_from_slice(&s[range]),
                (Data::I64(d), Data::I64(s)) => d.extend_from_slice(&s[range]),
                (Data::F32(d), s) => d.extend(s_f32(s, range)),
                _ => bail!("constant concat of mixed float types"),
            }
        }
    }
    Ok(Const {
        ty: first.ty,
        dims,
        data,
    })
}

fn s_f32(s: &Data, r: std::ops::Range<usize>) -> Vec<f32> {
    match s {
        Data::F64(v) => v[r].iter().map(|&x| x as f32).collect(),
        Data::I64(v) => v[r].iter().map(|&x| x as f32).collect(),
        Data::F32(v) => v[r].to_vec(),
    }
}

/// A resolved slice along each axis: start, step and count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceAxis {
    pub start: usize,
    pub step: i64,
    pub count: usize,
}

/// Resolves ONNX `Slice` bounds (clamping like the spec) for one axis of size `dim`.
pub fn slice_axis(dim: usize, start: i64, end: i64, step: i64) -> Result<SliceAxis> {
    if step == 0 {
        bail!("slice step must not be 0");
    }
    let d = dim as i64;
    let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (s, e) = (norm(start), norm(end));
    let (s, e) = if step > 0 {
        (s.clamp(0, d), e.clamp(0, d))
    } else {
        (s.clamp(-1, d - 1), e.clamp(-1, d - 1))
    };
    let count = if step > 0 {
        if e > s {
            (e - s + step - 1) / step
        } else {
            0
        }
    } else if s > e {
        (s - e + (-step) - 1) / (-step)
    } else {
        0
    };
    Ok(SliceAxis {
        start: if count == 0 { 0 } else { s as usize },
        step,
        count: count as usize,
    })
}

/// Applies resolved per-axis slices to a constant.
pub fn slice(c: &Const, axes: &[SliceAxis]) -> Const {
    let st = strides(&c.dims);
    let out: Vec<usize> = axes.iter().map(|a| a.count).collect();
    let ost = strides(&out);
    let n: usize = out.iter().product();
    let idx: Vec<usize> = (0..n)
        .map(|flat| {
            axes.iter()
                .enumerate()
                .map(|(d, a)| {
                    let k = (flat / ost[d]) % out[d];
                    (a.start as i64 + k as i64 * a.step) as usize * st[d]
                })
                .sum()
        })
        .collect();
    c.gather_flat(out, &idx)
}
