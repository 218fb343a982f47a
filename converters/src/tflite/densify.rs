//! Expansion of TFLite sparse tensors (`Tensor.sparsity`) to dense row-major data.
//!
//! The encoding (TFLite's variant of the TACO format, `SparsityParameters` in `schema.fbs`):
//! a dense tensor of rank `n` may be cut into blocks along `k` of its dimensions; the `n`
//! (blocked) dimensions and the `k` block dimensions are traversed in `traversal_order`, and
//! each traversed level is either DENSE (every coordinate present, `dense_size` of them) or
//! SPARSE_CSR (for each position of the previous level, `array_segments[p]..array_segments[p+1]`
//! selects the stored coordinates `array_indices[..]`). The stored values are the leaves of that
//! traversal, in order. This follows TFLite's `FormatConverter::SparseToDense`, with every index
//! checked instead of trusted.

use super::schema::{TflSparsity, DIM_DENSE, DIM_SPARSE_CSR};
use super::TflError;

/// Most traversed levels (dense dimensions plus block dimensions) accepted; bounds the
/// recursion depth and the per-level scratch arrays.
pub const MAX_SPARSE_LEVELS: usize = 16;

/// Largest dense result, in bytes, that [`densify`] will allocate.
pub const MAX_DENSE_BYTES: usize = 1 << 31;

fn sparsity_err(problem: String) -> TflError {
    TflError::Sparsity { problem }
}

/// Expands the sparse `values` of a tensor with dense shape `dense_shape` to dense row-major
/// bytes, zero where no value is stored.
///
/// `values` holds the stored elements, `elem_size` bytes each (little-endian element bytes
/// are copied as they are, so any fixed-size element type works).
///
/// # Errors
///
/// [`TflError::Sparsity`] when the metadata is inconsistent: traversal order not a valid
/// permutation, block map not strictly increasing, a block dimension that is not DENSE or does
/// not divide its dimension, a DENSE level whose size does not match the shape, segments not
/// non-decreasing or out of range, an index out of its dimension, a value count different from
/// what the metadata addresses, `values.len()` not a multiple of `elem_size`, or a result
/// larger than [`MAX_DENSE_BYTES`] or than memory allows. Never panics.
pub fn densify(
    sparsity: &TflSparsity,
    dense_shape: &[i32],
    values: &[u8],
    elem_size: usize,
) -> Result<Vec<u8>, TflError> {
    let plan = Plan::new(sparsity, dense_shape)?;
    if elem_size == 0 || !values.len().is_multiple_of(elem_size) {
        return Err(sparsity_err(format!(
            "{} value bytes are not a whole number of {elem_size}-byte elements",
            values.len()
        )));
    }
    let out_len = plan
        .dense_elems
        .checked_mul(elem_size)
        .filter(|&n| n <= MAX_DENSE_BYTES)
        .ok_or_else(|| {
            sparsity_err(format!(
                "dense shape {dense_shape:?} with {elem_size}-byte elements exceeds \
                 {MAX_DENSE_BYTES} bytes"
            ))
        })?;
    let mut out = Vec::new();
    out.try_reserve_exact(out_len).map_err(|_| {
        sparsity_err(format!(
            "cannot allocate {out_len} bytes for the dense tensor"
        ))
    })?;
    out.resize(out_len, 0);

    let mut walk = Walk {
        plan: &plan,
        sparsity,
        values,
        elem_size,
        next_value: 0,
        out: &mut out,
        coords: [0; MAX_SPARSE_LEVELS],
    };
    walk.visit(0, 0)?;
    let stored = values.len() / elem_size;
    if walk.next_value != stored {
        return Err(sparsity_err(format!(
            "{stored} values are stored but the index metadata addresses {}",
            walk.next_value
        )));
    }
    Ok(out)
}

/// Validated geometry of a sparse tensor.
struct Plan {
    /// Rank `n` of the dense tensor.
    rank: usize,
    /// Number of traversed levels, `n + k`.
    levels: usize,
    /// Size of each expanded dimension (`n` blocked dims, then `k` block dims), indexed by
    /// expanded dimension id (the values of `traversal_order`).
    expanded: [usize; MAX_SPARSE_LEVELS],
    /// Size of each block dimension `b` (expanded dim `n + b`).
    block_size: [usize; MAX_SPARSE_LEVELS],
    /// Dense dimension each block dimension subdivides.
    block_map: [usize; MAX_SPARSE_LEVELS],
    /// Expanded dimension traversed at each level.
    order: [usize; MAX_SPARSE_LEVELS],
    /// Row-major strides of the dense tensor, in elements.
    strides: [usize; MAX_SPARSE_LEVELS],
    /// Number of elements of the dense tensor.
    dense_elems: usize,
}

impl Plan {
    fn new(s: &TflSparsity, dense_shape: &[i32]) -> Result<Self, TflError> {
        let rank = dense_shape.len();
        let k = s.block_map.len();
        let levels = rank + k;
        if rank == 0 || levels > MAX_SPARSE_LEVELS {
            return Err(sparsity_err(format!(
                "rank {rank} with {k} block dimensions is not supported (1 to \
                 {MAX_SPARSE_LEVELS} levels)"
            )));
        }
        if s.traversal_order.len() != levels || s.dim_metadata.len() != levels {
            return Err(sparsity_err(format!(
                "rank {rank} with {k} block dimensions needs {levels} traversal_order and \
                 dim_metadata entries, found {} and {}",
                s.traversal_order.len(),
                s.dim_metadata.len()
            )));
        }
        let mut plan = Plan {
            rank,
            levels,
            expanded: [0; MAX_SPARSE_LEVELS],
            block_size: [0; MAX_SPARSE_LEVELS],
            block_map: [0; MAX_SPARSE_LEVELS],
            order: [0; MAX_SPARSE_LEVELS],
            strides: [0; MAX_SPARSE_LEVELS],
            dense_elems: 1,
        };

        // traversal_order: a permutation of the dense dims, then of the block dims.
        let mut seen = [false; MAX_SPARSE_LEVELS];
        for (level, &d) in s.traversal_order.iter().enumerate() {
            let range = if level < rank { 0..rank } else { rank..levels };
            let d = usize::try_from(d).ok().filter(|d| range.contains(d));
            match d {
                Some(d) if !seen[d] => {
                    seen[d] = true;
                    plan.order[level] = d;
                }
                _ => {
                    return Err(sparsity_err(format!(
                        "traversal_order {:?} is not a permutation of the {rank} dense then \
                         {k} block dimensions",
                        s.traversal_order
                    )))
                }
            }
        }

        // block_map: strictly increasing dense dims (TFLite's converter assumes this order).
        for (b, &d) in s.block_map.iter().enumerate() {
            let d = usize::try_from(d).ok().filter(|&d| d < rank);
            let increasing = b == 0 || d.is_some_and(|d| d > plan.block_map[b - 1]);
            match d {
                Some(d) if increasing => plan.block_map[b] = d,
                _ => {
                    return Err(sparsity_err(format!(
                        "block_map {:?} is not a strictly increasing list of dimensions < {rank}",
                        s.block_map
                    )))
                }
            }
        }

        // Block sizes come from the DENSE metadata of the levels traversing block dims.
        for level in 0..levels {
            let d = plan.order[level];
            if d < rank {
                continue;
            }
            let meta = &s.dim_metadata[level];
            let size = usize::try_from(meta.dense_size).unwrap_or(0);
            if meta.format != DIM_DENSE || size == 0 {
                return Err(sparsity_err(format!(
                    "block dimension {d} (level {level}) must be DENSE with a positive size"
                )));
            }
            plan.block_size[d - rank] = size;
        }

        // Dense shape, strides and expanded sizes.
        let mut stride = 1usize;
        for d in (0..rank).rev() {
            let Ok(dim) = usize::try_from(dense_shape[d]) else {
                return Err(sparsity_err(format!(
                    "dense shape {dense_shape:?} has a negative dimension"
                )));
            };
            plan.strides[d] = stride;
            stride = stride
                .checked_mul(dim)
                .ok_or_else(|| sparsity_err(format!("dense shape {dense_shape:?} overflows")))?;
            plan.expanded[d] = dim;
        }
        plan.dense_elems = stride;
        for b in 0..k {
            let (d, bs) = (plan.block_map[b], plan.block_size[b]);
            if !plan.expanded[d].is_multiple_of(bs) {
                return Err(sparsity_err(format!(
                    "block size {bs} does not divide dimension {d} of shape {dense_shape:?}"
                )));
            }
            plan.expanded[d] /= bs;
            plan.expanded[rank + b] = bs;
        }

        // Per-level metadata must agree with the geometry.
        for level in 0..levels {
            let meta = &s.dim_metadata[level];
            let size = plan.expanded[plan.order[level]];
            match meta.format {
                DIM_DENSE => {
                    if usize::try_from(meta.dense_size).ok() != Some(size) {
                        return Err(sparsity_err(format!(
                            "level {level} is DENSE with size {}, but its dimension has size \
                             {size}",
                            meta.dense_size
                        )));
                    }
                }
                DIM_SPARSE_CSR => {
                    let segs = &meta.array_segments;
                    let n_idx = meta.array_indices.len();
                    let monotone = segs.windows(2).all(|w| w[0] <= w[1]);
                    let in_range = segs
                        .iter()
                        .all(|&v| usize::try_from(v).is_ok_and(|v| v <= n_idx));
                    if segs.is_empty() || !monotone || !in_range {
                        return Err(sparsity_err(format!(
                            "level {level}: array_segments must be non-empty, non-decreasing \
                             and within the {n_idx} array_indices"
                        )));
                    }
                    let bad = meta
                        .array_indices
                        .iter()
                        .find(|&&i| usize::try_from(i).map_or(true, |i| i >= size));
                    if let Some(bad) = bad {
                        return Err(sparsity_err(format!(
                            "level {level}: index {bad} is outside its dimension of size {size}"
                        )));
                    }
                }
                other => {
                    return Err(sparsity_err(format!(
                        "level {level}: unknown DimensionType {other}"
                    )))
                }
            }
        }
        Ok(plan)
    }
}

/// State of one traversal of the sparse structure.
struct Walk<'p> {
    plan: &'p Plan,
    sparsity: &'p TflSparsity,
    values: &'p [u8],
    elem_size: usize,
    /// Index of the next stored value to place.
    next_value: usize,
    out: &'p mut Vec<u8>,
    /// Coordinate along each level's expanded dimension, for levels above the current one.
    coords: [usize; MAX_SPARSE_LEVELS],
}

impl Walk<'_> {
    /// Visits all stored coordinates below position `pos` of level `level - 1`.
    ///
    /// Recursion depth is at most `plan.levels <= MAX_SPARSE_LEVELS`.
    fn visit(&mut self, level: usize, pos: usize) -> Result<(), TflError> {
        let plan = self.plan;
        if level == plan.levels {
            return self.place();
        }
        let meta = &self.sparsity.dim_metadata[level];
        if meta.format == DIM_DENSE {
            let size = plan.expanded[plan.order[level]];
            for i in 0..size {
                self.coords[level] = i;
                let child = pos
                    .checked_mul(size)
                    .and_then(|p| p.checked_add(i))
                    .ok_or_else(|| sparsity_err("position overflow".into()))?;
                self.visit(level + 1, child)?;
            }
        } else {
            // `Plan::new` checked that segments are in range and indices within the dimension.
            let segs = &meta.array_segments;
            let (Some(&start), Some(&end)) =
                (segs.get(pos), pos.checked_add(1).and_then(|p| segs.get(p)))
            else {
                return Err(sparsity_err(format!(
                    "level {level}: array_segments has {} entries, position {pos} needs {}",
                    segs.len(),
                    pos.saturating_add(2)
                )));
            };
            for j in start as usize..end as usize {
                self.coords[level] = meta.array_indices.get(j).copied().unwrap_or(0) as usize;
                self.visit(level + 1, j)?;
            }
        }
        Ok(())
    }

    /// Copies the next stored value to the dense position of the current coordinates.
    fn place(&mut self) -> Result<(), TflError> {
        let plan = self.plan;
        let mut idx = [0usize; MAX_SPARSE_LEVELS];
        for level in 0..plan.levels {
            let d = plan.order[level];
            if d < plan.rank {
                idx[d] = self.coords[level];
            }
        }
        // Block dims refine their dense dim: idx = blocked_idx * block_size + inner. The
        // block map is strictly increasing, so each dense dim is refined at most once.
        for level in 0..plan.levels {
            let d = plan.order[level];
            if d >= plan.rank {
                let b = d - plan.rank;
                let dense_dim = plan.block_map[b];
                idx[dense_dim] = idx[dense_dim] * plan.block_size[b] + self.coords[level];
            }
        }
        let flat: usize = (0..plan.rank).map(|d| idx[d] * plan.strides[d]).sum();
        let src = self.next_value * self.elem_size;
        let dst = flat * self.elem_size;
        let value = self.values.get(src..src + self.elem_size);
        let slot = self.out.get_mut(dst..dst + self.elem_size);
        match (value, slot) {
            (Some(v), Some(s)) => s.copy_from_slice(v),
            (None, _) => {
                return Err(sparsity_err(format!(
                    "the index metadata addresses more than the {} stored values",
                    self.values.len() / self.elem_size
                )))
            }
            // Unreachable: every coordinate was checked against its dimension.
            (_, None) => return Err(sparsity_err("coordinate outside the dense tensor".into())),
        }
        self.next_value += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tflite::schema::TflDimMeta;

    fn dense(size: i32) -> TflDimMeta {
        TflDimMeta {
            format: DIM_DENSE,
            dense_size: size,
            array_segments: vec![],
            array_indices: vec![],
        }
    }

    fn csr(segments: &[i32], indices: &[i32]) -> TflDimMeta {
        TflDimMeta {
            format: DIM_SPARSE_CSR,
            dense_size: 0,
            array_segments: segments.to_vec(),
            array_indices: indices.to_vec(),
        }
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn to_f32(b: &[u8]) -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// The 4x4 matrix with 2x2 blocks from TFLite's sparsity tests
    /// (`sparsity_format_converter_test.cc`, `BlockTestD0S1`):
    /// dense [[1,0,2,3],[0,4,0,0],[0,0,5,0],[0,0,6,7]], block rows dense, block columns CSR;
    /// non-zero blocks (0,0), (0,1), (1,1), each stored as 4 values in row-major order.
    #[test]
    fn block_sparse_4x4_matches_tflite_example() {
        let s = TflSparsity {
            traversal_order: vec![0, 1, 2, 3],
            block_map: vec![0, 1],
            dim_metadata: vec![dense(2), csr(&[0, 2, 3], &[0, 1, 1]), dense(2), dense(2)],
        };
        let values = f32_bytes(&[1., 0., 0., 4., 2., 3., 0., 0., 5., 0., 6., 7.]);
        let out = densify(&s, &[4, 4], &values, 4).unwrap();
        let expected = [
            1., 0., 2., 3., //
            0., 4., 0., 0., //
            0., 0., 5., 0., //
            0., 0., 6., 7.,
        ];
        assert_eq!(to_f32(&out), expected);
    }

    /// Plain CSR (no blocks) of the same matrix, with 1-byte elements.
    #[test]
    fn csr_without_blocks() {
        let s = TflSparsity {
            traversal_order: vec![0, 1],
            block_map: vec![],
            dim_metadata: vec![dense(4), csr(&[0, 3, 4, 5, 7], &[0, 2, 3, 1, 2, 2, 3])],
        };
        let out = densify(&s, &[4, 4], &[1, 2, 3, 4, 5, 6, 7], 1).unwrap();
        assert_eq!(out, vec![1, 0, 2, 3, 0, 4, 0, 0, 0, 0, 5, 0, 0, 0, 6, 7]);
    }

    /// Column-major traversal (d1 then d0), all dense: a transpose of the stored order.
    #[test]
    fn traversal_order_transposes() {
        let s = TflSparsity {
            traversal_order: vec![1, 0],
            block_map: vec![],
            dim_metadata: vec![dense(3), dense(2)],
        };
        // Stored column by column: columns of [[1,2,3],[4,5,6]].
        let out = densify(&s, &[2, 3], &[1, 4, 2, 5, 3, 6], 1).unwrap();
        assert_eq!(out, vec![1, 2, 3, 4, 5, 6]);
    }

    /// A rank-3 tensor with a sparse middle level and one block dimension on the last axis.
    #[test]
    fn rank3_with_block_on_last_axis() {
        // Shape [2, 2, 4], last axis in blocks of 2: expanded dims [2, 2, 2, 2].
        // Level 1 (d1) CSR: for d0 = 0 keep row 1, for d0 = 1 keep rows 0 and 1.
        // Level 2 (blocked d2) CSR per kept row: row (0,1): block 1; (1,0): block 0; (1,1): 0,1.
        let s = TflSparsity {
            traversal_order: vec![0, 1, 2, 3],
            block_map: vec![2],
            dim_metadata: vec![
                dense(2),
                csr(&[0, 1, 3], &[1, 0, 1]),
                csr(&[0, 1, 2, 4], &[1, 0, 0, 1]),
                dense(2),
            ],
        };
        let values = [1, 2, 3, 4, 5, 6, 7, 8];
        let out = densify(&s, &[2, 2, 4], &values, 1).unwrap();
        #[rustfmt::skip]
        let expected = vec![
            0, 0, 0, 0,   0, 0, 1, 2,
            3, 4, 0, 0,   5, 6, 7, 8,
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn rejects_inconsistent_metadata() {
        let good = TflSparsity {
            traversal_order: vec![0, 1],
            block_map: vec![],
            dim_metadata: vec![dense(2), csr(&[0, 1, 2], &[0, 1])],
        };
        assert_eq!(
            densify(&good, &[2, 2], &[7, 8], 1).unwrap(),
            vec![7, 0, 0, 8]
        );

        let mut bad = good.clone();
        bad.dim_metadata[1].array_indices[1] = 2; // column 2 of a 2-column matrix
        assert!(densify(&bad, &[2, 2], &[7, 8], 1).is_err());

        let mut bad = good.clone();
        bad.dim_metadata[1].array_segments = vec![0, 2, 1]; // decreasing
        assert!(densify(&bad, &[2, 2], &[7, 8], 1).is_err());

        let mut bad = good.clone();
        bad.dim_metadata[1].array_segments = vec![0, 1]; // too short for 2 rows
        assert!(densify(&bad, &[2, 2], &[7, 8], 1).is_err());

        let mut bad = good.clone();
        bad.traversal_order = vec![0, 0];
        assert!(densify(&bad, &[2, 2], &[7, 8], 1).is_err());

        let mut bad = good.clone();
        bad.dim_metadata[0].dense_size = 3;
        assert!(densify(&bad, &[2, 2], &[7, 8], 1).is_err());

        // Too few and too many values.
        assert!(densify(&good, &[2, 2], &[7], 1).is_err());
        assert!(densify(&good, &[2, 2], &[7, 8, 9], 1).is_err());
        // Ragged element bytes, zero element size, negative and huge shapes.
        assert!(densify(&good, &[2, 2], &[7, 8, 9], 2).is_err());
        assert!(densify(&good, &[2, 2], &[7, 8], 0).is_err());
        assert!(densify(&good, &[-2, 2], &[7, 8], 1).is_err());
        assert!(densify(&good, &[i32::MAX, i32::MAX], &[7, 8], 8).is_err());

        // A block size that does not divide its dimension.
        let blocked = TflSparsity {
            traversal_order: vec![0, 1, 2],
            block_map: vec![1],
            dim_metadata: vec![dense(2), dense(1), dense(3)],
        };
        assert!(densify(&blocked, &[2, 4], &[0; 8], 1).is_err());
    }

    /// Randomly perturbed versions of valid descriptions must give `Ok` or `Err`, never a
    /// panic or an out-of-bounds write.
    #[test]
    fn perturbed_metadata_never_panics() {
        let seeds = [
            (
                TflSparsity {
                    traversal_order: vec![0, 1, 2, 3],
                    block_map: vec![0, 1],
                    dim_metadata: vec![dense(2), csr(&[0, 2, 3], &[0, 1, 1]), dense(2), dense(2)],
                },
                vec![4, 4],
                12,
            ),
            (
                TflSparsity {
                    traversal_order: vec![0, 1, 2, 3],
                    block_map: vec![2],
                    dim_metadata: vec![
                        dense(2),
                        csr(&[0, 1, 3], &[1, 0, 1]),
                        csr(&[0, 1, 2, 4], &[1, 0, 0, 1]),
                        dense(2),
                    ],
                },
                vec![2, 2, 4],
                8,
            ),
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut ok = 0;
        for round in 0..20_000 {
            let (mut s, mut shape, mut n_values) = seeds[round % 2].clone();
            for _ in 0..1 + next(3) {
                let value = next(7) as i32 - 2;
                let level = next(s.dim_metadata.len());
                let meta = &mut s.dim_metadata[level];
                let target: &mut Vec<i32> = match next(7) {
                    0 => &mut s.traversal_order,
                    1 => &mut s.block_map,
                    2 => &mut shape,
                    3 => &mut meta.array_segments,
                    4 => &mut meta.array_indices,
                    5 => {
                        meta.dense_size = value;
                        continue;
                    }
                    _ => {
                        meta.format = (value & 1) as i8;
                        n_values = next(16);
                        continue;
                    }
                };
                match next(3) {
                    0 if !target.is_empty() => {
                        let i = next(target.len());
                        target[i] = value;
                    }
                    1 => target.push(value),
                    _ => {
                        target.pop();
                    }
                }
            }
            ok += usize::from(densify(&s, &shape, &vec![1u8; n_values * 2], 2).is_ok());
        }
        println!("{ok} of 20000 perturbed sparsity descriptions were still consistent");
        assert!(ok > 100);
    }
}
