//! Memory planning and the `.fer` writer.
//!
//! The planner assigns every activation tensor an arena offset, greedy by
//! size over tensor lifetimes (TFLite's "greedy by size" strategy): the
//! largest tensors are placed first, each at the lowest-waste gap that no
//! tensor alive at the same time occupies. Reshape-like ops write in place:
//! their output shares its dying input's bytes.

use anyhow::{bail, Context, Result};
use ferrite_runtime::format::{self, section, Lifetime, DATA_ALIGN, NO_OFFSET};
use ferrite_runtime::{OpDef, Quant, Storage, TensorDef};

use crate::ir::Graph;

/// A planned model: runtime-shaped definitions plus constant data.
pub struct Planned {
    pub tensors: Vec<TensorDef>,
    pub ops: Vec<OpDef>,
    pub arena_bytes: usize,
    /// Largest total of bytes alive at one op.
    pub lower_bound: usize,
}

fn align_up(x: usize, a: usize) -> usize {
    x.div_ceil(a) * a
}

/// Builds runtime definitions from `g` and plans the arena.
pub fn plan(g: &Graph) -> Result<Planned> {
    let mut tensors = Vec::with_capacity(g.tensors.len());
    let mut data_off = 0usize;
    for t in &g.tensors {
        // The runtime refuses tensors whose byte size overflows or exceeds
        // isize::MAX / 2; say so here, naming the tensor.
        let fits = t
            .shape
            .iter()
            .try_fold(t.dtype.size(), |a, &d| a.checked_mul(d))
            .is_some_and(|b| b <= isize::MAX as usize / 2);
        if !fits {
            bail!(
                "tensor '{}' has shape {:?}, too large to represent",
                t.name,
                t.shape
            );
        }
        let storage = match &t.data {
            Some(d) => {
                if d.len() != t.nbytes() {
                    bail!(
                        "constant tensor '{}' has {} bytes of data, its shape needs {}",
                        t.name,
                        d.len(),
                        t.nbytes()
                    );
                }
                let s = Storage::Const {
                    offset: data_off,
                    len: d.len(),
                };
                data_off = align_up(data_off + d.len(), DATA_ALIGN);
                s
            }
            None => Storage::Arena { offset: 0 },
        };
        tensors.push(TensorDef {
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.runtime_shape()?,
            quant: t.quant.clone(),
            storage,
        });
    }
    let ops: Vec<OpDef> = g
        .nodes
        .iter()
        .map(|n| OpDef {
            code: n.code,
            attrs: n.attrs.clone(),
            inputs: n
                .inputs
                .iter()
                .map(|i| i.map_or(-1, |i| i as i32))
                .collect(),
            outputs: n.outputs.iter().map(|&o| o as i32).collect(),
        })
        .collect();

    let life = format::lifetimes(&tensors, &ops, &g.inputs, &g.outputs);
    // Alias groups: an in-place op's output joins its input's group.
    let mut group: Vec<usize> = (0..tensors.len()).collect();
    for (i, op) in ops.iter().enumerate() {
        if let Some(src) = format::alias_source(&tensors, op, i, &life) {
            group[op.outputs[0] as usize] = group[src];
        }
    }
    // Each group is one block: union of lifetimes, size of its members.
    struct Block {
        root: usize,
        size: usize,
        life: Lifetime,
        offset: usize,
    }
    let mut blocks: Vec<Block> = Vec::new();
    let mut block_of = vec![usize::MAX; tensors.len()];
    for t in 0..tensors.len() {
        let Some(l) = life[t] else { continue };
        let root = group[t];
        let size = align_up(tensors[t].nbytes(), format::ARENA_ALIGN);
        match blocks.iter().position(|b| b.root == root) {
            Some(b) => {
                let b2 = &mut blocks[b];
                b2.life.first = b2.life.first.min(l.first);
                b2.life.last = b2.life.last.max(l.last);
                b2.size = b2.size.max(size);
                block_of[t] = b;
            }
            None => {
                block_of[t] = blocks.len();
                blocks.push(Block {
                    root,
                    size,
                    life: l,
                    offset: 0,
                });
            }
        }
    }
    // Best fit in a given order of blocks; returns the offsets and the
    // arena size.
    let place = |order: &[usize]| -> (Vec<usize>, usize) {
        let mut offsets = vec![0usize; blocks.len()];
        let mut placed: Vec<usize> = Vec::new();
        let mut arena = 0usize;
        for &b in order {
            let (size, l) = (blocks[b].size, blocks[b].life);
            // Occupied ranges of blocks alive at the same time, by offset.
            let mut busy: Vec<(usize, usize)> = placed
                .iter()
                .filter(|&&p| blocks[p].life.first <= l.last && l.first <= blocks[p].life.last)
                .map(|&p| (offsets[p], offsets[p] + blocks[p].size))
                .collect();
            busy.sort_unstable();
            // The smallest gap that holds the block; else after the last.
            let mut best: Option<(usize, usize)> = None; // (gap size, offset)
            let mut cursor = 0usize;
            for &(s, e) in &busy {
                if s >= cursor && s - cursor >= size {
                    let gap = s - cursor;
                    if best.is_none_or(|(g, _)| gap < g) {
                        best = Some((gap, cursor));
                    }
                }
                cursor = cursor.max(e);
            }
            offsets[b] = best.map_or(cursor, |(_, o)| o);
            arena = arena.max(offsets[b] + size);
            placed.push(b);
        }
        (offsets, arena)
    };
    // Greedy placement has no order that is best for every graph: try a few
    // (largest first, by first use or by last use; longest-lived bytes
    // first; execution order) and keep the smallest arena. BlazeFace with
    // its RELUs fused: 1.57 MB largest-first, 1.38 MB (the lower bound)
    // another way.
    let by = |key: &dyn Fn(&Block) -> (usize, usize)| {
        let mut o: Vec<usize> = (0..blocks.len()).collect();
        o.sort_by(|&a, &b| key(&blocks[b]).cmp(&key(&blocks[a])).then(a.cmp(&b)));
        o
    };
    let orders = [
        by(&|b| (b.size, usize::MAX - b.life.first)),
        by(&|b| (b.size, b.life.last)),
        by(&|b| (b.size * (b.life.last - b.life.first + 1), b.size)),
        by(&|b| (usize::MAX - b.life.first, b.size)),
    ];
    let (offsets, arena) = orders
        .iter()
        .map(|o| place(o))
        .min_by_key(|(_, arena)| *arena)
        .unwrap_or_default();
    for (b, off) in blocks.iter_mut().zip(offsets) {
        b.offset = off;
    }
    for (t, td) in tensors.iter_mut().enumerate() {
        if let Storage::Arena { offset } = &mut td.storage {
            if block_of[t] != usize::MAX {
                *offset = blocks[block_of[t]].offset;
            }
        }
    }
    let lower_bound = format::arena_lower_bound(&tensors, &ops, &g.inputs, &g.outputs);
    Ok(Planned {
        tensors,
        ops,
        arena_bytes: arena,
        lower_bound,
    })
}

struct Out {
    buf: Vec<u8>,
}

impl Out {
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.buf.extend_from_slice(b);
    }
}

fn count(n: usize, what: &str) -> Result<u16> {
    u16::try_from(n).with_context(|| format!("too many {what} ({n}) for one op"))
}

/// Plans `g` and serializes it into `.fer` bytes.
pub fn write(g: &Graph) -> Result<(Vec<u8>, Planned)> {
    let p = plan(g)?;
    let mut meta = Out { buf: Vec::new() };
    meta.u32(g.metadata.len() as u32);
    for m in &g.metadata {
        meta.bytes(m.key.as_bytes());
        meta.u8(m.kind);
        meta.bytes(&m.value);
    }

    let mut tens = Out { buf: Vec::new() };
    tens.u32(p.tensors.len() as u32);
    for t in &p.tensors {
        tens.bytes(t.name.as_bytes());
        tens.u8(t.dtype as u8);
        tens.u8(t.shape.rank() as u8);
        tens.u8(match t.quant {
            Quant::None => 0,
            Quant::PerTensor(_) => 1,
            Quant::PerAxis { .. } => 2,
        });
        tens.u8(if t.is_const() { 1 } else { 0 });
        for &d in t.shape.dims() {
            tens.u32(u32::try_from(d).context("tensor dimension too large")?);
        }
        match &t.quant {
            Quant::None => {}
            Quant::PerTensor(q) => {
                tens.f32(q.scale);
                tens.i32(q.zero_point);
            }
            Quant::PerAxis {
                axis,
                scales,
                zero_points,
            } => {
                tens.u32(*axis as u32);
                tens.u32(scales.len() as u32);
                scales.iter().for_each(|&s| tens.f32(s));
                zero_points.iter().for_each(|&z| tens.i32(z));
            }
        }
        if let Storage::Const { offset, len } = t.storage {
            tens.u64(offset as u64);
            tens.u64(len as u64);
        }
    }

    let mut ops = Out { buf: Vec::new() };
    ops.u32(p.ops.len() as u32);
    for op in &p.ops {
        ops.u16(op.code as u16);
        ops.u16(count(op.attrs.len(), "attributes")?);
        ops.u16(count(op.inputs.len(), "inputs")?);
        ops.u16(count(op.outputs.len(), "outputs")?);
        op.attrs
            .iter()
            .chain(&op.inputs)
            .chain(&op.outputs)
            .for_each(|&v| ops.i32(v));
    }

    let mut graph = Out { buf: Vec::new() };
    graph.u32(g.inputs.len() as u32);
    g.inputs.iter().for_each(|&t| graph.u32(t as u32));
    graph.u32(g.outputs.len() as u32);
    g.outputs.iter().for_each(|&t| graph.u32(t as u32));

    let mut plan = Out { buf: Vec::new() };
    plan.u64(p.arena_bytes as u64);
    plan.u32(p.tensors.len() as u32);
    for t in &p.tensors {
        plan.u64(match t.storage {
            Storage::Arena { offset } => offset as u64,
            Storage::Const { .. } => NO_OFFSET,
        });
    }

    let mut data = Vec::new();
    for (t, td) in g.tensors.iter().zip(&p.tensors) {
        if let (Some(d), Storage::Const { offset, .. }) = (&t.data, td.storage) {
            data.resize(offset, 0);
            data.extend_from_slice(d);
        }
    }

    let sections: [(u32, Vec<u8>); 6] = [
        (section::META, meta.buf),
        (section::TENSORS, tens.buf),
        (section::OPS, ops.buf),
        (section::GRAPH, graph.buf),
        (section::PLAN, plan.buf),
        (section::DATA, data),
    ];
    let table_end = format::HEADER_LEN + sections.len() * format::SECTION_ENTRY_LEN;
    let mut offsets = Vec::new();
    let mut pos = table_end;
    for (kind, body) in &sections {
        // The data section must be 64-byte aligned; others start on 8 bytes.
        let align = if *kind == section::DATA {
            DATA_ALIGN
        } else {
            8
        };
        pos = align_up(pos, align);
        offsets.push(pos);
        pos += body.len();
    }
    let file_len = pos;
    let mut f = Out {
        buf: Vec::with_capacity(file_len),
    };
    f.buf.extend_from_slice(&format::MAGIC);
    f.u32(format::VERSION);
    f.u32(g.rounding.flags());
    f.u64(file_len as u64);
    f.u32(sections.len() as u32);
    f.u32(0); // checksum, filled below
    f.buf.resize(format::HEADER_LEN, 0);
    for ((kind, body), &off) in sections.iter().zip(&offsets) {
        f.u32(*kind);
        f.u32(0);
        f.u64(off as u64);
        f.u64(body.len() as u64);
    }
    for ((_, body), &off) in sections.iter().zip(&offsets) {
        f.buf.resize(off, 0);
        f.buf.extend_from_slice(body);
    }
    debug_assert_eq!(f.buf.len(), file_len);
    let crc = format::checksum(&f.buf);
    f.buf[format::CHECKSUM_FIELD].copy_from_slice(&crc.to_le_bytes());
    Ok((f.buf, p))
}
