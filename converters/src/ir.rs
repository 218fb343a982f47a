//! The converter's graph: what importers produce, passes rewrite, the
//! planner lays out and the writer serializes.
//!
//! It mirrors the `.fer` model (same op codes and attribute layouts, see
//! `docs/format.md`) but is owned and mutable, and keeps constant data in
//! memory.

use anyhow::{bail, Result};
use ferrite_runtime::format::MetaEntry;
use ferrite_runtime::{DType, OpCode, Quant, Shape};

/// One tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub quant: Quant,
    /// Little-endian element bytes for constants; `None` for activations.
    pub data: Option<Vec<u8>>,
}

impl Tensor {
    /// Number of elements (saturating: absurd shapes from a bad file are
    /// rejected by the planner, never overflow here).
    pub fn numel(&self) -> usize {
        self.shape.iter().fold(1usize, |a, &d| a.saturating_mul(d))
    }

    /// Bytes of data (saturating, like [`Tensor::numel`]).
    pub fn nbytes(&self) -> usize {
        self.numel().saturating_mul(self.dtype.size())
    }

    /// The static shape in the runtime's inline form.
    pub fn runtime_shape(&self) -> Result<Shape> {
        match Shape::new(&self.shape) {
            Some(s) => Ok(s),
            None => bail!(
                "tensor '{}' has rank {} (at most 8 supported)",
                self.name,
                self.shape.len()
            ),
        }
    }

    /// Constant data as f32 values (for f32 constants).
    pub fn f32_data(&self) -> Option<Vec<f32>> {
        let d = self.data.as_ref()?;
        (self.dtype == DType::F32).then(|| {
            d.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        })
    }

    /// Constant data as i64 values (for any integer constant).
    pub fn int_data(&self) -> Option<Vec<i64>> {
        let d = self.data.as_ref()?;
        Some(match self.dtype {
            DType::I8 => d.iter().map(|&b| b as i8 as i64).collect(),
            DType::U8 | DType::Bool => d.iter().map(|&b| b as i64).collect(),
            DType::I16 => d
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
                .collect(),
            DType::I32 => d
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64)
                .collect(),
            DType::I64 => d
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            DType::F32 => return None,
        })
    }
}

/// One op.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub code: OpCode,
    pub attrs: Vec<i32>,
    /// Tensor indices; `None` for an absent optional input.
    pub inputs: Vec<Option<usize>>,
    pub outputs: Vec<usize>,
    /// Where the op came from, for messages (e.g. "op 12 (CONV_2D)").
    pub origin: String,
}

/// A whole model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    pub tensors: Vec<Tensor>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    pub metadata: Vec<MetaEntry>,
    /// How the int8 ops round (stored in the package header).
    pub rounding: ferrite_runtime::Rounding,
    /// What the import changed that the user should hear about (printed by
    /// `ferrite convert`, not stored in the package).
    pub notes: Vec<String>,
}

impl Graph {
    /// Adds a tensor and returns its index.
    pub fn add_tensor(&mut self, t: Tensor) -> usize {
        self.tensors.push(t);
        self.tensors.len() - 1
    }

    /// TILE of `x` by `reps` (one per axis, each at least 1) into `out`, as
    /// one GATHER per repeated axis with the indices `0..d` repeated: pushes
    /// all but the last node and returns the last (a copy when nothing
    /// repeats), for the caller to push or fold.
    pub fn tile(&mut self, x: usize, reps: &[usize], out: usize, origin: &str) -> Node {
        let node = |code, attrs, inputs: Vec<usize>, output| Node {
            code,
            attrs,
            inputs: inputs.into_iter().map(Some).collect(),
            outputs: vec![output],
            origin: origin.to_string(),
        };
        let repeated: Vec<usize> = (0..reps.len()).filter(|&a| reps[a] > 1).collect();
        let mut cur = x;
        for (k, &axis) in repeated.iter().enumerate() {
            let mut t = self.tensors[cur].clone();
            let d = t.shape[axis];
            let n = d * reps[axis];
            let indices = self.add_tensor(Tensor {
                name: format!("{}/tile_indices{axis}", self.tensors[x].name),
                dtype: DType::I32,
                shape: vec![n],
                quant: Quant::None,
                data: Some(
                    (0..n)
                        .flat_map(|i| ((i % d.max(1)) as i32).to_le_bytes())
                        .collect(),
                ),
            });
            let gather = |output| {
                node(
                    OpCode::Gather,
                    vec![axis as i32],
                    vec![cur, indices],
                    output,
                )
            };
            if k + 1 == repeated.len() {
                return gather(out);
            }
            t.name = format!("{}/tiled{axis}", self.tensors[x].name);
            t.shape[axis] = n;
            t.data = None;
            let tiled = self.add_tensor(t);
            self.nodes.push(gather(tiled));
            cur = tiled;
        }
        node(OpCode::Reshape, vec![], vec![x], out)
    }

    /// Sets (or replaces) a text metadata entry.
    pub fn set_meta_text(&mut self, key: &str, value: &str) {
        self.set_meta(
            key,
            ferrite_runtime::format::meta_kind::TEXT,
            value.as_bytes().to_vec(),
        );
    }

    /// Sets (or replaces) a metadata entry.
    pub fn set_meta(&mut self, key: &str, kind: u8, value: Vec<u8>) {
        self.metadata.retain(|m| m.key != key);
        self.metadata.push(MetaEntry {
            key: key.to_string(),
            kind,
            value,
        });
    }

    /// Replaces every use of tensor `from` (node inputs and graph outputs) by `to`.
    pub fn replace_uses(&mut self, from: usize, to: usize) {
        for n in &mut self.nodes {
            for i in n.inputs.iter_mut().flatten() {
                if *i == from {
                    *i = to;
                }
            }
        }
        for o in &mut self.outputs {
            if *o == from {
                *o = to;
            }
        }
    }

    /// Removes tensors nothing refers to, renumbering the rest.
    pub fn remove_unused_tensors(&mut self) {
        let mut used = vec![false; self.tensors.len()];
        for &t in self.inputs.iter().chain(&self.outputs) {
            used[t] = true;
        }
        for n in &self.nodes {
            for &t in n.inputs.iter().flatten().chain(&n.outputs) {
                used[t] = true;
            }
        }
        let mut remap = vec![usize::MAX; self.tensors.len()];
        let mut kept = Vec::new();
        for (i, t) in std::mem::take(&mut self.tensors).into_iter().enumerate() {
            if used[i] {
                remap[i] = kept.len();
                kept.push(t);
            }
        }
        self.tensors = kept;
        for n in &mut self.nodes {
            for t in n.inputs.iter_mut().flatten().chain(n.outputs.iter_mut()) {
                *t = remap[*t];
            }
        }
        for t in self.inputs.iter_mut().chain(self.outputs.iter_mut()) {
            *t = remap[*t];
        }
    }

    /// Removes nodes whose outputs nobody uses (repeatedly).
    pub fn remove_dead_nodes(&mut self) {
        loop {
            let mut used = vec![false; self.tensors.len()];
            for &t in &self.outputs {
                used[t] = true;
            }
            for n in &self.nodes {
                for &t in n.inputs.iter().flatten() {
                    used[t] = true;
                }
            }
            let before = self.nodes.len();
            self.nodes.retain(|n| n.outputs.iter().any(|&o| used[o]));
            if self.nodes.len() == before {
                break;
            }
        }
    }
}
