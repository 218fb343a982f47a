//! The `.fer` package format: constants and the validating reader.
//!
//! `docs/format.md` is the specification; this module is its reader. The
//! writer lives in the converter (`ferrite-convert`), so the runtime carries
//! no serialization code it never runs.
//!
//! Everything read here is checked before anything runs: offsets and lengths
//! against the file, counts against the bytes left (so a forged count can
//! never trigger a large allocation), dtypes, ranks, shapes against data
//! sizes, quantization parameters, tensor references, op order, and the
//! memory plan. No byte sequence makes this module panic.

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use crate::error::{Error, Result};
use crate::ops::OpCode;
use crate::quant::{QParams, Rounding};
use crate::types::{DType, OpDef, Quant, Shape, Storage, TensorDef, MAX_RANK};

/// The first eight bytes of every package.
pub const MAGIC: [u8; 8] = *b"FERRITE\0";
/// The format version this runtime reads and the converter writes.
pub const VERSION: u32 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 64;
/// Size of one section-table entry.
pub const SECTION_ENTRY_LEN: usize = 24;
/// Alignment of every constant tensor inside the data section, and of the data
/// section inside the file.
pub const DATA_ALIGN: usize = 64;
/// Alignment of every arena offset in the plan.
pub const ARENA_ALIGN: usize = 16;
/// Byte range of the checksum field inside the header.
pub const CHECKSUM_FIELD: Range<usize> = 28..32;

/// Section kinds.
pub mod section {
    /// Key/value metadata.
    pub const META: u32 = 1;
    /// Tensor table.
    pub const TENSORS: u32 = 2;
    /// Op list, in execution order.
    pub const OPS: u32 = 3;
    /// Graph inputs and outputs.
    pub const GRAPH: u32 = 4;
    /// Memory plan: arena size and one offset per tensor.
    pub const PLAN: u32 = 5;
    /// Constant tensor data.
    pub const DATA: u32 = 6;
}

/// Kinds of metadata values.
pub mod meta_kind {
    /// UTF-8 text.
    pub const TEXT: u8 = 0;
    /// Opaque bytes.
    pub const BYTES: u8 = 1;
    /// UTF-8 JSON document.
    pub const JSON: u8 = 2;
}

/// Planned offset stored for constant tensors (they live in the data section).
pub const NO_OFFSET: u64 = u64::MAX;

/// One metadata entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaEntry {
    pub key: String,
    pub kind: u8,
    pub value: Vec<u8>,
}

/// The decoded, validated contents of a package (everything but the constant
/// data, which stays in the file's bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDef {
    pub metadata: Vec<MetaEntry>,
    pub tensors: Vec<TensorDef>,
    pub ops: Vec<OpDef>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    /// Bytes the arena needs.
    pub arena_bytes: usize,
    /// Byte range of the data section inside the file.
    pub data: Range<usize>,
    /// How int8 ops round (header flags).
    pub rounding: Rounding,
}

/// The CRC-32 (IEEE) of a package: every byte except the checksum field.
pub fn checksum(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..CHECKSUM_FIELD.start.min(bytes.len())]);
    if bytes.len() > CHECKSUM_FIELD.end {
        h.update(&bytes[CHECKSUM_FIELD.end..]);
    }
    h.finalize()
}

/// A bounds-checked little-endian reader over one section.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Cursor { buf, pos: 0, what }
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::Truncated { what: self.what });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array()?))
    }
    /// A count of items each at least `min_item_bytes` long; rejects counts the
    /// remaining bytes cannot hold, so `Vec::with_capacity(count)` is bounded.
    fn count(&mut self, min_item_bytes: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item_bytes.max(1)) > self.remaining() {
            return Err(Error::Truncated { what: self.what });
        }
        Ok(n)
    }
    fn i32s(&mut self, n: usize) -> Result<Vec<i32>> {
        if n.saturating_mul(4) > self.remaining() {
            return Err(Error::Truncated { what: self.what });
        }
        (0..n).map(|_| self.i32()).collect()
    }
    fn string(&mut self, index: usize) -> Result<String> {
        let n = self.count(1)?;
        let b = self.take(n)?;
        core::str::from_utf8(b)
            .map(String::from)
            .map_err(|_| Error::InvalidField {
                what: "UTF-8 string",
                index,
            })
    }
}

/// Reads and validates a package. `bytes` is the whole file.
pub fn parse(bytes: &[u8]) -> Result<ModelDef> {
    if bytes.len() < HEADER_LEN {
        return Err(if bytes.len() >= 8 && bytes[..8] != MAGIC {
            Error::BadMagic
        } else {
            Error::Truncated { what: "header" }
        });
    }
    let mut h = Cursor::new(&bytes[..HEADER_LEN], "header");
    if h.array::<8>()? != MAGIC {
        return Err(Error::BadMagic);
    }
    let version = h.u32()?;
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            found: version,
            supported: VERSION,
        });
    }
    let flags = h.u32()?;
    let rounding = Rounding::from_flags(flags).ok_or(Error::InvalidField {
        what: "header flags (unknown bits: made by a newer converter?)",
        index: 0,
    })?;
    let file_len = h.u64()?;
    if file_len != bytes.len() as u64 {
        return Err(if file_len > bytes.len() as u64 {
            Error::Truncated {
                what: "file (header length larger than file)",
            }
        } else {
            Error::InvalidField {
                what: "file length in header",
                index: 0,
            }
        });
    }
    let section_count = h.u32()? as usize;
    let stored = h.u32()?;
    let computed = checksum(bytes);
    if stored != computed {
        return Err(Error::ChecksumMismatch { stored, computed });
    }

    // Section table.
    let table_len = section_count
        .checked_mul(SECTION_ENTRY_LEN)
        .filter(|&l| l <= bytes.len() - HEADER_LEN)
        .ok_or(Error::Truncated {
            what: "section table",
        })?;
    let mut t = Cursor::new(&bytes[HEADER_LEN..HEADER_LEN + table_len], "section table");
    let mut found: [Option<Range<usize>>; 7] = Default::default();
    for i in 0..section_count {
        let kind = t.u32()?;
        let _reserved = t.u32()?;
        let off = t.u64()?;
        let len = t.u64()?;
        let end = off.checked_add(len).ok_or(Error::OutOfBounds {
            what: "section",
            index: i,
        })?;
        if off < (HEADER_LEN + table_len) as u64 || end > bytes.len() as u64 {
            return Err(Error::OutOfBounds {
                what: "section",
                index: i,
            });
        }
        let range = off as usize..end as usize;
        // Unknown kinds are skipped so newer writers can add optional sections.
        if let Some(slot) = found.get_mut(kind as usize).filter(|_| kind != 0) {
            if slot.is_some() {
                return Err(Error::InvalidField {
                    what: "duplicate section",
                    index: i,
                });
            }
            *slot = Some(range);
        }
    }
    let need = |kind: u32, what: &'static str| {
        found[kind as usize].clone().ok_or(Error::NotFound { what })
    };
    let tensors_r = need(section::TENSORS, "tensors section")?;
    let ops_r = need(section::OPS, "ops section")?;
    let graph_r = need(section::GRAPH, "graph section")?;
    let plan_r = need(section::PLAN, "plan section")?;
    let data_r = need(section::DATA, "data section")?;
    if data_r.start % DATA_ALIGN != 0 {
        return Err(Error::Misaligned {
            what: "data section",
            index: 0,
            align: DATA_ALIGN,
        });
    }

    let metadata = match found[section::META as usize].clone() {
        Some(r) => parse_meta(&bytes[r])?,
        None => Vec::new(),
    };
    let mut tensors = parse_tensors(&bytes[tensors_r], data_r.len())?;
    let arena_bytes = parse_plan(&bytes[plan_r], &mut tensors)?;
    let ops = parse_ops(&bytes[ops_r])?;
    let (inputs, outputs) = parse_graph(&bytes[graph_r], tensors.len())?;

    let def = ModelDef {
        metadata,
        tensors,
        ops,
        inputs,
        outputs,
        arena_bytes,
        data: data_r,
        rounding,
    };
    validate_graph(&def)?;
    validate_plan(&def)?;
    Ok(def)
}

fn parse_meta(buf: &[u8]) -> Result<Vec<MetaEntry>> {
    let mut c = Cursor::new(buf, "metadata section");
    let n = c.count(9)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let key = c.string(i)?;
        let kind = c.u8()?;
        if kind > meta_kind::JSON {
            return Err(Error::InvalidField {
                what: "metadata kind",
                index: i,
            });
        }
        let len = c.count(1)?;
        let value = c.take(len)?.to_vec();
        if kind != meta_kind::BYTES && core::str::from_utf8(&value).is_err() {
            return Err(Error::InvalidField {
                what: "metadata text (not UTF-8)",
                index: i,
            });
        }
        out.push(MetaEntry { key, kind, value });
    }
    Ok(out)
}

fn parse_tensors(buf: &[u8], data_len: usize) -> Result<Vec<TensorDef>> {
    let mut c = Cursor::new(buf, "tensor table");
    // Smallest record: name length (4) + dtype, rank, quant, storage (4).
    let n = c.count(8)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let name = c.string(i)?;
        let dtype = DType::from_u8(c.u8()?).ok_or(Error::InvalidField {
            what: "tensor dtype",
            index: i,
        })?;
        let rank = c.u8()? as usize;
        let quant_kind = c.u8()?;
        let storage_kind = c.u8()?;
        if rank > MAX_RANK {
            return Err(Error::InvalidField {
                what: "tensor rank (max 8)",
                index: i,
            });
        }
        let mut dims = [0usize; MAX_RANK];
        for d in dims.iter_mut().take(rank) {
            let v = c.u32()?;
            if v > i32::MAX as u32 {
                return Err(Error::InvalidField {
                    what: "tensor dimension",
                    index: i,
                });
            }
            *d = v as usize;
        }
        let shape = Shape::new(&dims[..rank]).ok_or(Error::InvalidField {
            what: "tensor rank",
            index: i,
        })?;
        let nbytes = shape
            .checked_numel()
            .and_then(|n| n.checked_mul(dtype.size()))
            .filter(|&b| b <= isize::MAX as usize / 2)
            .ok_or(Error::InvalidField {
                what: "tensor size (overflows)",
                index: i,
            })?;
        let quant = match quant_kind {
            0 => Quant::None,
            1 => {
                let scale = c.f32()?;
                let zero_point = c.i32()?;
                Quant::PerTensor(QParams { scale, zero_point })
            }
            2 => {
                let axis = c.u32()? as usize;
                let k = c.count(8)?;
                let mut scales = Vec::with_capacity(k);
                for _ in 0..k {
                    scales.push(c.f32()?);
                }
                let zero_points = c.i32s(k)?;
                if axis >= rank || shape.dim(axis) != k {
                    return Err(Error::BadQuantization { tensor: i });
                }
                Quant::PerAxis {
                    axis,
                    scales,
                    zero_points,
                }
            }
            _ => {
                return Err(Error::InvalidField {
                    what: "quantization kind",
                    index: i,
                })
            }
        };
        check_quant(&quant, dtype, i)?;
        let storage = match storage_kind {
            0 => Storage::Arena { offset: 0 }, // filled in from the plan
            1 => {
                let off = c.u64()?;
                let len = c.u64()?;
                if off % DATA_ALIGN as u64 != 0 {
                    return Err(Error::Misaligned {
                        what: "constant tensor",
                        index: i,
                        align: DATA_ALIGN,
                    });
                }
                if off.checked_add(len).is_none_or(|e| e > data_len as u64) {
                    return Err(Error::OutOfBounds {
                        what: "constant tensor data",
                        index: i,
                    });
                }
                if len != nbytes as u64 {
                    return Err(Error::InvalidField {
                        what: "constant data length (does not match shape)",
                        index: i,
                    });
                }
                Storage::Const {
                    offset: off as usize,
                    len: len as usize,
                }
            }
            _ => {
                return Err(Error::InvalidField {
                    what: "tensor storage kind",
                    index: i,
                })
            }
        };
        out.push(TensorDef {
            name,
            dtype,
            shape,
            quant,
            storage,
        });
    }
    if c.remaining() != 0 {
        return Err(Error::InvalidField {
            what: "trailing bytes in tensor table",
            index: n,
        });
    }
    Ok(out)
}

fn check_quant(q: &Quant, dtype: DType, tensor: usize) -> Result<()> {
    let (lo, hi) = match dtype {
        DType::I8 => (-128, 127),
        DType::U8 => (0, 255),
        DType::I16 => (-32768, 32767),
        // int32 biases carry the scale of input*weight with zero-point 0.
        DType::I32 | DType::I64 => (0, 0),
        DType::F32 | DType::Bool => {
            return if matches!(q, Quant::None) {
                Ok(())
            } else {
                Err(Error::BadQuantization { tensor })
            };
        }
    };
    let ok = |s: f32, z: i32| s.is_finite() && s > 0.0 && (lo..=hi).contains(&z);
    let valid = match q {
        Quant::None => true,
        Quant::PerTensor(p) => ok(p.scale, p.zero_point),
        Quant::PerAxis {
            scales,
            zero_points,
            ..
        } => {
            scales.len() == zero_points.len()
                && scales.iter().zip(zero_points).all(|(&s, &z)| ok(s, z))
        }
    };
    if valid {
        Ok(())
    } else {
        Err(Error::BadQuantization { tensor })
    }
}

fn parse_plan(buf: &[u8], tensors: &mut [TensorDef]) -> Result<usize> {
    let mut c = Cursor::new(buf, "plan section");
    let arena = c.u64()?;
    if arena > isize::MAX as u64 / 2 {
        return Err(Error::InvalidField {
            what: "arena size",
            index: 0,
        });
    }
    let arena = arena as usize;
    let n = c.count(8)?;
    if n != tensors.len() {
        return Err(Error::InvalidField {
            what: "plan entry count (must equal tensor count)",
            index: n,
        });
    }
    for (i, t) in tensors.iter_mut().enumerate() {
        let off = c.u64()?;
        let nbytes = t.nbytes() as u64;
        match &mut t.storage {
            Storage::Const { .. } => {
                if off != NO_OFFSET {
                    return Err(Error::InvalidField {
                        what: "plan offset of a constant tensor",
                        index: i,
                    });
                }
            }
            Storage::Arena { offset } => {
                if off % ARENA_ALIGN as u64 != 0 {
                    return Err(Error::Misaligned {
                        what: "arena offset",
                        index: i,
                        align: ARENA_ALIGN,
                    });
                }
                let end = off.checked_add(nbytes);
                if end.is_none_or(|e| e > arena as u64) {
                    return Err(Error::BadPlan {
                        tensor: i,
                        other: i,
                    });
                }
                *offset = off as usize;
            }
        }
    }
    Ok(arena)
}

fn parse_ops(buf: &[u8]) -> Result<Vec<OpDef>> {
    let mut c = Cursor::new(buf, "op list");
    let n = c.count(8)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let raw = c.u16()?;
        let code = OpCode::from_u16(raw).ok_or(Error::UnsupportedOp { op: i, code: raw })?;
        let n_attrs = c.u16()? as usize;
        let n_in = c.u16()? as usize;
        let n_out = c.u16()? as usize;
        let attrs = c.i32s(n_attrs)?;
        let inputs = c.i32s(n_in)?;
        let outputs = c.i32s(n_out)?;
        out.push(OpDef {
            code,
            attrs,
            inputs,
            outputs,
        });
    }
    Ok(out)
}

fn parse_graph(buf: &[u8], n_tensors: usize) -> Result<(Vec<usize>, Vec<usize>)> {
    let mut c = Cursor::new(buf, "graph section");
    let list = |c: &mut Cursor| -> Result<Vec<usize>> {
        let n = c.count(4)?;
        (0..n)
            .map(|_| {
                let t = c.u32()? as usize;
                if t >= n_tensors {
                    Err(Error::BadTensorRef {
                        op: usize::MAX,
                        tensor: t as i64,
                    })
                } else {
                    Ok(t)
                }
            })
            .collect()
    };
    let inputs = list(&mut c)?;
    let outputs = list(&mut c)?;
    Ok((inputs, outputs))
}

/// Checks references and order: every op input is a constant, a graph input,
/// or the output of an earlier op; every tensor is written at most once;
/// constants and graph inputs are never written; every graph output is written
/// (or is a graph input).
fn validate_graph(def: &ModelDef) -> Result<()> {
    let n = def.tensors.len();
    // `written[t]` is true once some op (or the caller, for inputs) has produced t.
    let mut written = alloc::vec![false; n];
    for (k, &t) in def.inputs.iter().enumerate() {
        if def.tensors[t].is_const() || written[t] {
            return Err(Error::InvalidField {
                what: "graph input (constant or listed twice)",
                index: k,
            });
        }
        written[t] = true;
    }
    for (i, op) in def.ops.iter().enumerate() {
        for &t in &op.inputs {
            if t == -1 {
                continue; // optional input absent; the op layer checks which may be absent
            }
            let ok = usize::try_from(t)
                .ok()
                .filter(|&t| t < n)
                .filter(|&t| written[t] || def.tensors[t].is_const());
            if ok.is_none() {
                return Err(Error::BadTensorRef {
                    op: i,
                    tensor: t as i64,
                });
            }
        }
        if op.outputs.is_empty() {
            return Err(Error::InvalidField {
                what: "op without outputs",
                index: i,
            });
        }
        for &t in &op.outputs {
            let ok = usize::try_from(t)
                .ok()
                .filter(|&t| t < n && !written[t] && !def.tensors[t].is_const());
            match ok {
                Some(t) => written[t] = true,
                None => {
                    return Err(Error::BadTensorRef {
                        op: i,
                        tensor: t as i64,
                    })
                }
            }
        }
    }
    for &t in &def.outputs {
        if !written[t] {
            return Err(Error::BadTensorRef {
                op: def.ops.len(),
                tensor: t as i64,
            });
        }
    }
    Ok(())
}

/// Live range of an arena tensor in op indices, both ends inclusive. Graph
/// inputs are born at op 0; graph outputs live until the last op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub first: usize,
    pub last: usize,
}

/// True if `op` may write its output into its input's bytes (the output is a
/// reinterpretation of the input: same bytes, new shape).
pub fn is_alias_op(op: OpCode) -> bool {
    matches!(op, OpCode::Reshape | OpCode::Squeeze | OpCode::ExpandDims)
}

/// Computes every tensor's lifetime (`None` for constants and for tensors
/// nothing reads or writes). `def` must have passed [`validate_graph`]-level
/// checks (indices in range); invalid indices are ignored here.
pub fn lifetimes(
    tensors: &[TensorDef],
    ops: &[OpDef],
    inputs: &[usize],
    outputs: &[usize],
) -> Vec<Option<Lifetime>> {
    let mut life: Vec<Option<Lifetime>> = alloc::vec![None; tensors.len()];
    let last_op = ops.len().saturating_sub(1);
    let touch = |t: usize, i: usize, life: &mut Vec<Option<Lifetime>>| {
        if let Some(slot) = life.get_mut(t) {
            match slot {
                Some(l) => {
                    l.first = l.first.min(i);
                    l.last = l.last.max(i);
                }
                None => *slot = Some(Lifetime { first: i, last: i }),
            }
        }
    };
    for &t in inputs {
        touch(t, 0, &mut life);
    }
    for (i, op) in ops.iter().enumerate() {
        for &t in op.inputs.iter().chain(&op.outputs) {
            if t >= 0 {
                touch(t as usize, i, &mut life);
            }
        }
    }
    for &t in outputs {
        touch(t, last_op, &mut life);
    }
    for (t, l) in life.iter_mut().enumerate() {
        if tensors.get(t).is_none_or(|t| t.is_const()) {
            *l = None;
        }
    }
    life
}

/// For an alias op at index `i`: the input tensor whose bytes the output may
/// reuse (its only arena input, dying at this op, of the same byte size).
pub fn alias_source(
    def_tensors: &[TensorDef],
    op: &OpDef,
    i: usize,
    life: &[Option<Lifetime>],
) -> Option<usize> {
    if !is_alias_op(op.code) || op.outputs.len() != 1 {
        return None;
    }
    let src = usize::try_from(*op.inputs.first()?).ok()?;
    let dst = usize::try_from(op.outputs[0]).ok()?;
    let (s, d) = (def_tensors.get(src)?, def_tensors.get(dst)?);
    let dies_here = life
        .get(src)
        .copied()
        .flatten()
        .is_some_and(|l| l.last == i);
    (dies_here && !s.is_const() && s.nbytes() == d.nbytes()).then_some(src)
}

/// The largest total of arena bytes alive at any one op: a lower bound for
/// any plan that does not alias (aliased tensors are counted once).
pub fn arena_lower_bound(
    tensors: &[TensorDef],
    ops: &[OpDef],
    inputs: &[usize],
    outputs: &[usize],
) -> usize {
    let life = lifetimes(tensors, ops, inputs, outputs);
    let mut aliased = alloc::vec![false; tensors.len()];
    for (i, op) in ops.iter().enumerate() {
        if let Some(src) = alias_source(tensors, op, i, &life) {
            let dst = op.outputs[0] as usize;
            if tensor_offset(&tensors[src]) == tensor_offset(&tensors[dst]) {
                aliased[dst] = true;
            }
        }
    }
    (0..ops.len().max(1))
        .map(|i| {
            life.iter()
                .enumerate()
                .filter(|(t, l)| !aliased[*t] && l.is_some_and(|l| l.first <= i && i <= l.last))
                .map(|(t, _)| tensors[t].nbytes())
                .sum()
        })
        .max()
        .unwrap_or(0)
}

fn tensor_offset(t: &TensorDef) -> Option<usize> {
    match t.storage {
        Storage::Arena { offset } => Some(offset),
        Storage::Const { .. } => None,
    }
}

/// Checks that no two tensors alive at the same time share arena bytes, except
/// an alias op's output placed exactly on its dying input.
///
/// Sweeps the ops in order keeping the live set sorted by offset, so each
/// check is a binary search: O(n log n) for n tensors whatever the file says.
fn validate_plan(def: &ModelDef) -> Result<()> {
    let life = lifetimes(&def.tensors, &def.ops, &def.inputs, &def.outputs);
    let n_ops = def.ops.len();
    // Births and deaths per op, as index lists built in one pass.
    let mut born: Vec<Vec<usize>> = alloc::vec![Vec::new(); n_ops.max(1)];
    let mut dies: Vec<Vec<usize>> = alloc::vec![Vec::new(); n_ops.max(1)];
    let mut is_input = alloc::vec![false; def.tensors.len()];
    for &t in &def.inputs {
        is_input[t] = true;
    }
    // Graph inputs are alive before the first op; every other tensor is born
    // as the output of an op.
    let mut first_born: Vec<usize> = Vec::new();
    for (t, l) in life.iter().enumerate() {
        if let Some(l) = l {
            if is_input[t] {
                first_born.push(t);
            } else {
                born[l.first].push(t);
            }
            dies[l.last].push(t);
        }
    }
    // Live set: (start, end, tensor), sorted by start, pairwise disjoint.
    let mut live: Vec<(usize, usize, usize)> = Vec::new();
    let range = |t: usize| -> (usize, usize) {
        let off = tensor_offset(&def.tensors[t]).unwrap_or(0);
        (off, off + def.tensors[t].nbytes())
    };
    let insert = |t: usize, live: &mut Vec<(usize, usize, usize)>| -> Result<()> {
        let (s, e) = range(t);
        if s == e {
            return Ok(()); // empty tensors occupy nothing
        }
        let k = live.partition_point(|x| x.0 < s || (x.0 == s && x.2 < t));
        if let Some(prev) = k.checked_sub(1).map(|k| live[k]) {
            if prev.1 > s {
                return Err(Error::BadPlan {
                    tensor: t,
                    other: prev.2,
                });
            }
        }
        if let Some(next) = live.get(k) {
            if next.0 < e {
                return Err(Error::BadPlan {
                    tensor: t,
                    other: next.2,
                });
            }
        }
        live.insert(k, (s, e, t));
        Ok(())
    };
    for &t in &first_born {
        insert(t, &mut live)?;
    }
    for i in 0..n_ops.max(1) {
        // An alias op's output may take its input's exact place: retire the
        // input first.
        let alias = def.ops.get(i).and_then(|op| {
            let src = alias_source(&def.tensors, op, i, &life)?;
            let dst = op.outputs[0] as usize;
            (range(src) == range(dst)).then_some((src, dst))
        });
        if let Some((src, _)) = alias {
            let (s, _) = range(src);
            if let Ok(k) = live.binary_search_by(|e| (e.0, e.2).cmp(&(s, src))) {
                live.remove(k);
            }
        }
        for &t in &born[i] {
            insert(t, &mut live)?;
        }
        for &t in &dies[i] {
            if alias.is_some_and(|(src, _)| src == t) {
                continue;
            }
            let (s, _) = range(t);
            if let Ok(k) = live.binary_search_by(|e| (e.0, e.2).cmp(&(s, t))) {
                live.remove(k);
            }
        }
    }
    Ok(())
}
