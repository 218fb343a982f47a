//! Data-movement kernels: PAD/PADV2, CONCATENATION, SPLIT/SPLIT_V,
//! STRIDED_SLICE/SLICE, TRANSPOSE, DEPTH_TO_SPACE, SPACE_TO_DEPTH and the plain
//! copy behind RESHAPE/SQUEEZE/EXPAND_DIMS.
//!
//! Every kernel is generic over `T: Copy`, so one implementation serves f32,
//! int8, int32, uint8 and bool tensors. None of them does arithmetic on the
//! values: TFLite keeps the input and output quantization parameters of these
//! ops equal for int8 (CONCATENATION requires it, PAD pads with the output
//! zero point), so the op layer passes raw integers through unchanged.
//!
//! Shapes are row-major (the last dimension is contiguous) and at most
//! [`MAX_RANK`] long. Kernels keep their index bookkeeping in fixed
//! `[_; MAX_RANK]` arrays and never allocate.

use crate::types::MAX_RANK;

/// Row-major element strides of `dims` (the last stride is 1), in the first
/// `dims.len()` entries.
fn contiguous_strides(dims: &[usize]) -> [isize; MAX_RANK] {
    debug_assert!(dims.len() <= MAX_RANK);
    let mut strides = [0isize; MAX_RANK];
    let mut acc = 1usize;
    for (s, &d) in strides[..dims.len()].iter_mut().zip(dims).rev() {
        *s = acc as isize;
        acc *= d;
    }
    strides
}

/// One side of a strided copy: the element index of the first element and
/// the step along each axis (negative steps walk backwards).
#[derive(Clone, Copy)]
struct Walk {
    base: usize,
    strides: [isize; MAX_RANK],
}

impl Walk {
    /// A dense row-major walk over `dims` starting at element 0.
    fn dense(dims: &[usize]) -> Self {
        Walk {
            base: 0,
            strides: contiguous_strides(dims),
        }
    }
}

/// Visits every index of the box `counts` in row-major order and copies
/// `src[src.base + Σ i·src.strides]` to `dst[dst.base + Σ i·dst.strides]`.
///
/// Every kernel in this file is this loop with different walks. The caller
/// guarantees that every visited index is in bounds.
fn strided_copy<T: Copy>(src: &[T], from: Walk, dst: &mut [T], to: Walk, counts: &[usize]) {
    let rank = counts.len();
    debug_assert!(rank <= MAX_RANK);
    if counts.contains(&0) {
        return;
    }
    if rank == 0 {
        dst[to.base] = src[from.base];
        return;
    }
    let inner = rank - 1;
    let (s_step, d_step) = (from.strides[inner], to.strides[inner]);
    let mut index = [0usize; MAX_RANK];
    let (mut s_row, mut d_row) = (from.base as isize, to.base as isize);
    loop {
        if s_step == 1 && d_step == 1 {
            // Contiguous rows on both sides (PAD, CONCATENATION, SLICE of
            // the outer axes): one memcpy per row.
            let n = counts[inner];
            let (s, d) = (s_row as usize, d_row as usize);
            dst[d..d + n].copy_from_slice(&src[s..s + n]);
        } else {
            let (mut s, mut d) = (s_row, d_row);
            for _ in 0..counts[inner] {
                dst[d as usize] = src[s as usize];
                s += s_step;
                d += d_step;
            }
        }
        // Advance the odometer over the outer axes; done when it wraps.
        let mut axis = inner;
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            index[axis] += 1;
            s_row += from.strides[axis];
            d_row += to.strides[axis];
            if index[axis] < counts[axis] {
                break;
            }
            s_row -= from.strides[axis] * counts[axis] as isize;
            d_row -= to.strides[axis] * counts[axis] as isize;
            index[axis] = 0;
        }
    }
}

/// RESHAPE, SQUEEZE and EXPAND_DIMS: the element order does not change, so
/// the output is the input, copied. `input` and `output` have the same length.
pub fn copy<T: Copy>(input: &[T], output: &mut [T]) {
    debug_assert_eq!(input.len(), output.len());
    output.copy_from_slice(input);
}

/// PAD and PADV2 (constant mode): `output` gets `pad_value` everywhere except
/// the box starting at `pad_before[i]` along each axis, which receives `input`.
///
/// `in_dims`, `pad_before` and `out_dims` have the same length (at most
/// [`MAX_RANK`]), and `out_dims[i] >= pad_before[i] + in_dims[i]` (the padding
/// after is what remains). For int8 the op layer passes the output zero point
/// as `pad_value`, as TFLite does when PAD has no constant input.
pub fn pad<T: Copy>(
    input: &[T],
    in_dims: &[usize],
    pad_before: &[usize],
    output: &mut [T],
    out_dims: &[usize],
    pad_value: T,
) {
    debug_assert!(in_dims.len() == pad_before.len() && in_dims.len() == out_dims.len());
    debug_assert!((0..in_dims.len()).all(|i| pad_before[i] + in_dims[i] <= out_dims[i]));
    debug_assert_eq!(input.len(), in_dims.iter().product::<usize>());
    debug_assert_eq!(output.len(), out_dims.iter().product::<usize>());
    output.fill(pad_value);
    let out_strides = contiguous_strides(out_dims);
    let base = pad_before
        .iter()
        .zip(&out_strides)
        .map(|(&p, &s)| p * s as usize)
        .sum();
    let to = Walk {
        base,
        strides: out_strides,
    };
    strided_copy(input, Walk::dense(in_dims), output, to, in_dims);
}

/// Where one part lies along an axis of a whole tensor: the view
/// CONCATENATION writes each input into and SPLIT/SPLIT_V read each output from.
///
/// Both tensors are seen as `[outer, axis, inner]`: the whole has
/// `whole_axis` entries along the axis, the part `len` of them starting at
/// `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisPart {
    /// Product of the dimensions before the axis.
    pub outer: usize,
    /// Product of the dimensions after the axis.
    pub inner: usize,
    /// Length of the axis in the whole tensor.
    pub whole_axis: usize,
    /// First index of the part along the axis.
    pub offset: usize,
    /// Length of the axis in the part.
    pub len: usize,
}

impl AxisPart {
    /// The part `offset..offset + len` along `axis` of a whole tensor of shape
    /// `whole_dims`. Requires `axis < whole_dims.len()` and
    /// `offset + len <= whole_dims[axis]`.
    pub fn new(whole_dims: &[usize], axis: usize, offset: usize, len: usize) -> Self {
        debug_assert!(axis < whole_dims.len());
        debug_assert!(offset + len <= whole_dims[axis]);
        AxisPart {
            outer: whole_dims[..axis].iter().product(),
            inner: whole_dims[axis + 1..].iter().product(),
            whole_axis: whole_dims[axis],
            offset,
            len,
        }
    }

    /// Number of elements of the part.
    pub fn part_numel(&self) -> usize {
        self.outer * self.len * self.inner
    }

    /// Number of elements of the whole tensor.
    pub fn whole_numel(&self) -> usize {
        self.outer * self.whole_axis * self.inner
    }
}

/// CONCATENATION, one input at a time: copies `part` into its place `at`
/// inside `whole`. Calling it for every input with consecutive offsets fills
/// the whole output.
pub fn concat_part<T: Copy>(part: &[T], at: AxisPart, whole: &mut [T]) {
    debug_assert_eq!(part.len(), at.part_numel());
    debug_assert_eq!(whole.len(), at.whole_numel());
    let run = at.len * at.inner;
    if run == 0 {
        return;
    }
    let whole_row = at.whole_axis * at.inner;
    for (o, src) in part.chunks_exact(run).enumerate() {
        let start = o * whole_row + at.offset * at.inner;
        whole[start..start + run].copy_from_slice(src);
    }
}

/// SPLIT and SPLIT_V, one output at a time: copies the part `at` of `whole`
/// into `part`.
pub fn split_part<T: Copy>(whole: &[T], at: AxisPart, part: &mut [T]) {
    debug_assert_eq!(part.len(), at.part_numel());
    debug_assert_eq!(whole.len(), at.whole_numel());
    let run = at.len * at.inner;
    if run == 0 {
        return;
    }
    let whole_row = at.whole_axis * at.inner;
    for (o, dst) in part.chunks_exact_mut(run).enumerate() {
        let start = o * whole_row + at.offset * at.inner;
        dst.copy_from_slice(&whole[start..start + run]);
    }
}

/// A strided slice resolved against an input shape: along each input axis
/// `i`, the output takes `count[i]` elements starting at `start[i]`, stepping
/// by `stride[i]` (negative strides walk backwards).
///
/// Built at conversion/prepare time (see `crate::ops::slice`), which
/// guarantees that every visited index lies inside `dims`. Axes removed by a
/// shrink mask have `count == 1`; axes added by a new-axis mask do not appear,
/// since neither changes the order of the elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SliceParams {
    /// Number of input axes.
    pub rank: usize,
    /// Input dimensions.
    pub dims: [usize; MAX_RANK],
    /// First index along each axis (0 when `count` is 0).
    pub start: [usize; MAX_RANK],
    /// Step along each axis, never 0.
    pub stride: [isize; MAX_RANK],
    /// Number of elements taken along each axis.
    pub count: [usize; MAX_RANK],
}

impl SliceParams {
    /// Number of elements the slice produces.
    pub fn out_numel(&self) -> usize {
        self.count[..self.rank].iter().product()
    }
}

/// STRIDED_SLICE and SLICE: gathers the elements `p` selects from `input`
/// (shape `p.dims`) into `output` (`p.out_numel()` elements), in row-major
/// order of the selection.
pub fn strided_slice<T: Copy>(input: &[T], p: &SliceParams, output: &mut [T]) {
    let rank = p.rank;
    debug_assert_eq!(input.len(), p.dims[..rank].iter().product::<usize>());
    debug_assert_eq!(output.len(), p.out_numel());
    let elem = contiguous_strides(&p.dims[..rank]);
    let mut from = Walk {
        base: 0,
        strides: [0; MAX_RANK],
    };
    for (axis, &step) in elem[..rank].iter().enumerate() {
        from.base += p.start[axis] * step as usize;
        from.strides[axis] = step * p.stride[axis];
    }
    let counts = &p.count[..rank];
    strided_copy(input, from, output, Walk::dense(counts), counts);
}

/// TRANSPOSE: `output` axis `i` is `input` axis `perm[i]`, so the output
/// shape is `in_dims[perm[i]]`. `perm` is a permutation of `0..in_dims.len()`
/// (rank at most [`MAX_RANK`]).
pub fn transpose<T: Copy>(input: &[T], in_dims: &[usize], perm: &[usize], output: &mut [T]) {
    let rank = in_dims.len();
    debug_assert_eq!(perm.len(), rank);
    debug_assert!((0..rank).all(|a| perm.contains(&a)));
    debug_assert_eq!(input.len(), output.len());
    let in_strides = contiguous_strides(in_dims);
    let mut out_dims = [0usize; MAX_RANK];
    let mut from = Walk {
        base: 0,
        strides: [0; MAX_RANK],
    };
    for (i, &p) in perm.iter().enumerate() {
        out_dims[i] = in_dims[p];
        from.strides[i] = in_strides[p];
    }
    let counts = &mut out_dims[..rank];
    let mut to = Walk::dense(counts);
    // The visiting order does not matter for a copy: unless the inner axis
    // is contiguous on both sides (one memcpy per row), make the longest
    // axis the inner loop, so NCHW -> NHWC (3 channels innermost) runs
    // 224-long strided rows instead of 3-long ones.
    let inner_contiguous = rank > 0 && from.strides[rank - 1] == 1 && to.strides[rank - 1] == 1;
    if let Some(long) = (0..rank).max_by_key(|&a| (counts[a], a)) {
        if !inner_contiguous && counts[long] > counts[rank - 1] {
            counts.swap(long, rank - 1);
            from.strides.swap(long, rank - 1);
            to.strides.swap(long, rank - 1);
        }
    }
    strided_copy(input, from, output, to, counts);
}

/// DEPTH_TO_SPACE (NHWC, TFLite's "DCR" order): input `[n, h, w, b·b·c]` to
/// output `[n, h·b, w·b, c]` with `b = block`. Output `(y, x, ch)` reads input
/// `(y / b, x / b, ((y % b)·b + x % b)·c + ch)`: the block offset is the major
/// part of the input channel.
///
/// `in_dims` is the input shape; `in_dims[3]` is a multiple of `block²`.
pub fn depth_to_space<T: Copy>(input: &[T], in_dims: [usize; 4], block: usize, output: &mut [T]) {
    let [n, h, w, in_c] = in_dims;
    debug_assert!(block > 0 && in_c % (block * block) == 0);
    debug_assert_eq!(input.len(), output.len());
    let c = in_c / (block * block);
    // The input seen as [n, h, w, by, bx, c] is the output [n, h, by, w, bx, c]
    // with the two middle axes swapped.
    let view = [n, h, w, block, block, c];
    transpose(input, &view, &[0, 1, 3, 2, 4, 5], output);
}

/// SPACE_TO_DEPTH (NHWC, the inverse of [`depth_to_space`]): input
/// `[n, h·b, w·b, c]` to output `[n, h, w, b·b·c]` with `b = block`. Input
/// `(y, x, ch)` lands at output `(y / b, x / b, ((y % b)·b + x % b)·c + ch)`.
///
/// `in_dims` is the input shape; `in_dims[1]` and `in_dims[2]` are multiples
/// of `block`.
pub fn space_to_depth<T: Copy>(input: &[T], in_dims: [usize; 4], block: usize, output: &mut [T]) {
    let [n, in_h, in_w, c] = in_dims;
    debug_assert!(block > 0 && in_h % block == 0 && in_w % block == 0);
    debug_assert_eq!(input.len(), output.len());
    // The input seen as [n, h, by, w, bx, c] is the output [n, h, w, by, bx, c]
    // with the two middle axes swapped.
    let view = [n, in_h / block, block, in_w / block, block, c];
    transpose(input, &view, &[0, 1, 3, 2, 4, 5], output);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// `0, 1, 2, ...` as the element type, so every output names its source.
    fn iota(n: usize) -> Vec<i32> {
        (0..n as i32).collect()
    }

    /// Slice params from per-axis `(start, stride, count)`.
    fn slice_params(dims: &[usize], axes: &[(usize, isize, usize)]) -> SliceParams {
        let mut p = SliceParams {
            rank: dims.len(),
            ..Default::default()
        };
        p.dims[..dims.len()].copy_from_slice(dims);
        for (i, &(start, stride, count)) in axes.iter().enumerate() {
            p.start[i] = start;
            p.stride[i] = stride;
            p.count[i] = count;
        }
        p
    }

    #[test]
    fn copy_is_identity() {
        let x = [1.5f32, -2.0, 3.25];
        let mut y = [0f32; 3];
        copy(&x, &mut y);
        assert_eq!(x, y);
    }

    #[test]
    fn pad_2d_hand_computed() {
        // [[1, 2], [3, 4]] padded by (1, 0) rows and (2, 1) columns with 9.
        let x = [1i8, 2, 3, 4];
        let mut y = [0i8; 3 * 5];
        pad(&x, &[2, 2], &[1, 2], &mut y, &[3, 5], 9);
        #[rustfmt::skip]
        let want = [
            9, 9, 9, 9, 9,
            9, 9, 1, 2, 9,
            9, 9, 3, 4, 9,
        ];
        assert_eq!(y, want);
    }

    #[test]
    fn pad_4d_matches_index_formula() {
        let in_dims = [2, 2, 3, 2];
        let before = [0, 1, 2, 1];
        let out_dims = [3, 5, 6, 4];
        let x = iota(24);
        let mut y = vec![0; out_dims.iter().product()];
        pad(&x, &in_dims, &before, &mut y, &out_dims, -1);
        let mut k = 0;
        for a in 0..out_dims[0] {
            for b in 0..out_dims[1] {
                for c in 0..out_dims[2] {
                    for d in 0..out_dims[3] {
                        let idx = [a, b, c, d];
                        let inside =
                            (0..4).all(|i| idx[i] >= before[i] && idx[i] - before[i] < in_dims[i]);
                        let want = if inside {
                            let s: Vec<usize> = (0..4).map(|i| idx[i] - before[i]).collect();
                            (((s[0] * 2 + s[1]) * 3 + s[2]) * 2 + s[3]) as i32
                        } else {
                            -1
                        };
                        assert_eq!(y[k], want, "at {idx:?}");
                        k += 1;
                    }
                }
            }
        }
    }

    #[test]
    fn pad_rank0_and_empty_input() {
        let mut y = [0u8; 1];
        pad(&[7u8], &[], &[], &mut y, &[], 0);
        assert_eq!(y, [7]);
        let mut y = [1f32; 4];
        pad(&[], &[0, 2], &[1, 0], &mut y, &[2, 2], 0.5);
        assert_eq!(y, [0.5; 4]);
    }

    #[test]
    fn concat_axis1_hand_computed() {
        // [[1, 2], [3, 4]] ++ [[5], [6]] along axis 1.
        let a = [1i32, 2, 3, 4];
        let b = [5i32, 6];
        let mut y = [0i32; 6];
        concat_part(&a, AxisPart::new(&[2, 3], 1, 0, 2), &mut y);
        concat_part(&b, AxisPart::new(&[2, 3], 1, 2, 1), &mut y);
        assert_eq!(y, [1, 2, 5, 3, 4, 6]);
    }

    #[test]
    fn split_then_concat_is_identity() {
        let dims = [2, 7, 3];
        let x = iota(42);
        for axis in 0..3 {
            // Uneven parts, as SPLIT_V allows, including an empty one.
            let d = dims[axis];
            let lens = [d / 3, 0, d - d / 3];
            let mut y = vec![0; x.len()];
            let mut offset = 0;
            for &len in &lens {
                let at = AxisPart::new(&dims, axis, offset, len);
                let mut part = vec![0; at.part_numel()];
                split_part(&x, at, &mut part);
                concat_part(&part, at, &mut y);
                offset += len;
            }
            assert_eq!(y, x, "axis {axis}");
        }
    }

    #[test]
    fn split_axis0_hand_computed() {
        let x = [1u8, 2, 3, 4, 5, 6];
        let mut top = [0u8; 2];
        let mut rest = [0u8; 4];
        split_part(&x, AxisPart::new(&[3, 2], 0, 0, 1), &mut top);
        split_part(&x, AxisPart::new(&[3, 2], 0, 1, 2), &mut rest);
        assert_eq!(top, [1, 2]);
        assert_eq!(rest, [3, 4, 5, 6]);
    }

    #[test]
    fn strided_slice_hand_computed() {
        // x = [[0..4], [4..8], [8..12]]; rows 2, 0 (stride -2), columns 1, 3.
        let x = iota(12);
        let p = slice_params(&[3, 4], &[(2, -2, 2), (1, 2, 2)]);
        let mut y = [0; 4];
        strided_slice(&x, &p, &mut y);
        assert_eq!(y, [9, 11, 1, 3]);
    }

    #[test]
    fn strided_slice_reverse_all() {
        let x = iota(24);
        let p = slice_params(&[2, 3, 4], &[(1, -1, 2), (2, -1, 3), (3, -1, 4)]);
        let mut y = vec![0; 24];
        strided_slice(&x, &p, &mut y);
        let want: Vec<i32> = (0..24).rev().collect();
        assert_eq!(y, want);
    }

    #[test]
    fn strided_slice_empty_and_scalar() {
        let x = iota(6);
        let p = slice_params(&[2, 3], &[(0, 1, 2), (0, 1, 0)]);
        let mut y: [i32; 0] = [];
        strided_slice(&x, &p, &mut y);
        let p = SliceParams::default();
        let mut y = [0];
        strided_slice(&[42], &p, &mut y);
        assert_eq!(y, [42]);
    }

    #[test]
    fn transpose_2d_hand_computed() {
        let x = [1, 2, 3, 4, 5, 6];
        let mut y = [0; 6];
        transpose(&x, &[2, 3], &[1, 0], &mut y);
        assert_eq!(y, [1, 4, 2, 5, 3, 6]);
    }

    #[test]
    fn transpose_4d_matches_index_formula() {
        let dims = [2, 3, 4, 5];
        let perm = [2, 0, 3, 1];
        let x = iota(120);
        let mut y = vec![0; 120];
        transpose(&x, &dims, &perm, &mut y);
        let mut k = 0;
        for i0 in 0..dims[perm[0]] {
            for i1 in 0..dims[perm[1]] {
                for i2 in 0..dims[perm[2]] {
                    for i3 in 0..dims[perm[3]] {
                        let mut src = [0; 4];
                        for (o, &p) in [i0, i1, i2, i3].iter().zip(&perm) {
                            src[p] = *o;
                        }
                        let want = ((src[0] * 3 + src[1]) * 4 + src[2]) * 5 + src[3];
                        assert_eq!(y[k], want as i32);
                        k += 1;
                    }
                }
            }
        }
    }

    #[test]
    fn transpose_then_inverse_is_identity_rank8() {
        let dims = [2, 1, 3, 2, 1, 2, 3, 2];
        let perm = [7, 2, 5, 0, 3, 6, 1, 4];
        let mut inverse = [0; 8];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
        let n = dims.iter().product();
        let x: Vec<f32> = (0..n).map(|v| v as f32 * 0.5).collect();
        let mut t = vec![0f32; n];
        let mut back = vec![0f32; n];
        transpose(&x, &dims, &perm, &mut t);
        assert_ne!(t, x);
        transpose(&t, &out_dims, &inverse, &mut back);
        assert_eq!(back, x);
    }

    #[test]
    fn depth_to_space_hand_computed() {
        // TFLite's own example: [1, 1, 1, 4] with block 2 gives [1, 2, 2, 1].
        let mut y = [0f32; 4];
        depth_to_space(&[1.4f32, 2.3, 3.2, 4.1], [1, 1, 1, 4], 2, &mut y);
        assert_eq!(y, [1.4, 2.3, 3.2, 4.1]);
        // [1, 1, 2, 8], c = 2: output channel ch at (y, x) reads input
        // channel ((y % 2) * 2 + x % 2) * 2 + ch of pixel x / 2.
        let x = iota(16);
        let mut y = [0; 16];
        depth_to_space(&x, [1, 1, 2, 8], 2, &mut y);
        #[rustfmt::skip]
        let want = [
            0, 1, 2, 3, 8, 9, 10, 11,
            4, 5, 6, 7, 12, 13, 14, 15,
        ];
        assert_eq!(y, want);
    }

    #[test]
    fn space_to_depth_hand_computed() {
        // [1, 2, 2, 1] with block 2 gives [1, 1, 1, 4] in (y, x) order.
        let mut y = [0i8; 4];
        space_to_depth(&[1i8, 2, 3, 4], [1, 2, 2, 1], 2, &mut y);
        assert_eq!(y, [1, 2, 3, 4]);
        // [1, 2, 2, 2], block 2: channel pairs stay together.
        let x = iota(8);
        let mut y = [0; 8];
        space_to_depth(&x, [1, 2, 2, 2], 2, &mut y);
        assert_eq!(y, [0, 1, 2, 3, 4, 5, 6, 7]);
        // [1, 2, 4, 1], block 2: output pixel x takes columns 2x, 2x + 1 of both rows.
        let x = iota(8);
        let mut y = [0; 8];
        space_to_depth(&x, [1, 2, 4, 1], 2, &mut y);
        assert_eq!(y, [0, 1, 4, 5, 2, 3, 6, 7]);
    }

    #[test]
    fn space_to_depth_after_depth_to_space_is_identity() {
        let (n, h, w, c, b) = (2, 3, 2, 3, 3);
        let in_dims = [n, h, w, b * b * c];
        let x = iota(in_dims.iter().product());
        let mut s = vec![0; x.len()];
        let mut back = vec![0; x.len()];
        depth_to_space(&x, in_dims, b, &mut s);
        space_to_depth(&s, [n, h * b, w * b, c], b, &mut back);
        assert_eq!(back, x);
    }

    #[test]
    fn depth_to_space_matches_tflite_index_formula() {
        let (n, h, w, c, b) = (2, 2, 3, 2, 2);
        let x = iota(n * h * w * b * b * c);
        let mut y = vec![0; x.len()];
        depth_to_space(&x, [n, h, w, b * b * c], b, &mut y);
        let (oh, ow, ic) = (h * b, w * b, b * b * c);
        for ob in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for oc in 0..c {
                        let id = oc + ((oy % b) * b + ox % b) * c;
                        let src = ((ob * h + oy / b) * w + ox / b) * ic + id;
                        assert_eq!(y[((ob * oh + oy) * ow + ox) * c + oc], src as i32);
                    }
                }
            }
        }
    }
}
