//! Resolving STRIDED_SLICE and SLICE against a known input shape.
//!
//! Both ops have constant `begin`/`end`/`size`/`strides` inputs in the models
//! Ferrite accepts, so the converter resolves them once into a
//! [`SliceParams`] (per input axis: first index, step, count) and the output
//! shape; the kernel then only gathers.
//!
//! [`resolve_strided_slice`] follows TFLite's `strided_slice.cc`
//! (`BuildStridedSliceParams`, `ResizeOutputTensor`) and
//! `strided_slice_logic.h` (`StridedSliceStartForAxis`,
//! `StridedSliceEndForAxis`), the functions both its shape computation and its
//! reference kernel use: negative indices count from the end, indices are
//! clamped to the axis, `begin_mask`/`end_mask` bits select the whole axis in
//! the stride's direction, one ellipsis expands to the axes the spec leaves
//! out, `new_axis_mask` inserts size-1 axes, `shrink_axis_mask` drops an axis
//! after taking one element, and `offset` makes `end` relative to `begin`.

use crate::kernels::reference::movement::SliceParams;
use crate::types::{Shape, MAX_RANK};

/// A slice resolved against an input shape: what the kernel reads, and the
/// shape of the op's output (after shrunk axes are removed and new axes
/// inserted; its element count equals `params.out_numel()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedSlice {
    /// Per input axis: first index, step and count, for
    /// [`crate::kernels::reference::movement::strided_slice`].
    pub params: SliceParams,
    /// The output tensor's shape.
    pub out_shape: Shape,
}

/// TFLite's `Clamp` (requires `lo <= hi`).
fn clamp(v: i64, lo: i64, hi: i64) -> i64 {
    v.max(lo).min(hi)
}

/// TFLite's `StridedSliceStartForAxis`: wraps a negative `begin`, clamps it
/// to the axis (to `[0, size]` walking forwards, `[-1, size - 1]` backwards),
/// then applies the begin mask.
fn start_for_axis(begin: i64, stride: i64, masked: bool, size: i64) -> i64 {
    let mut start = if begin < 0 { begin + size } else { begin };
    start = if stride > 0 {
        clamp(start, 0, size)
    } else {
        clamp(start, -1, size - 1)
    };
    if masked {
        start = if stride > 0 { 0 } else { size - 1 };
    }
    start
}

/// TFLite's `StridedSliceEndForAxis`, given the resolved `start`.
fn end_for_axis(
    end: i64,
    start: i64,
    stride: i64,
    masked: bool,
    shrink: bool,
    offset: bool,
    size: i64,
) -> i64 {
    if shrink {
        return if start >= size { start } else { start + 1 };
    }
    let mut stop = if offset { end + start } else { end };
    if stop < 0 {
        stop += size;
    }
    stop = if stride > 0 {
        clamp(stop, 0, size)
    } else {
        clamp(stop, -1, size - 1)
    };
    if masked {
        stop = if stride > 0 { size } else { -1 };
    }
    stop
}

/// Number of indices `start, start + stride, ...` strictly before `stop`
/// (in the stride's direction): `max(0, ceil((stop - start) / stride))`.
fn count_for_axis(start: i64, stop: i64, stride: i64) -> i64 {
    let (span, step) = if stride > 0 {
        (stop - start, stride)
    } else {
        (start - stop, -stride)
    };
    if span <= 0 {
        0
    } else {
        (span + step - 1) / step
    }
}

/// Bit `i` of `mask` (false for `i >= 32`).
fn bit(mask: i32, i: usize) -> bool {
    i < 32 && (mask >> i) & 1 == 1
}

/// One axis of the expanded ("effective") spec TFLite builds.
#[derive(Clone, Copy, Default)]
struct EffectiveAxis {
    /// An axis added by `new_axis_mask`, not present in the input.
    new_axis: bool,
    begin: i64,
    end: i64,
    stride: i64,
    begin_masked: bool,
    end_masked: bool,
    shrink: bool,
}

/// Resolves TFLite's STRIDED_SLICE for an input of shape `in_shape`.
///
/// `begin`, `end` and `strides` are the op's constant index inputs (equal
/// lengths, called the spec); the masks and `offset` are its options. Mask
/// bits at positions past the spec are ignored (TFLite never reads the begin,
/// end and shrink bits there, and an ellipsis there covers exactly the axes
/// the spec leaves out anyway).
///
/// Errors when the spec is longer than the input allows, the lengths differ,
/// a stride is 0, more than one ellipsis bit is set (TensorFlow rejects that
/// too), the rank with new axes exceeds [`MAX_RANK`], or a shrunk axis has a
/// negative stride or selects no element. Where TFLite's own result is
/// inconsistent it errors too rather than guess: an ellipsis that covers no
/// axis but has spec entries after it (TFLite makes it cover one and shifts
/// the rest), and in `offset` mode a spec with an ellipsis, new axes or fewer
/// entries than axes, or an `end` that asks for more elements than the axis
/// holds past `begin` (TFLite sizes the output from the unclamped `end` but
/// reads the clamped range).
///
/// Like TFLite (and unlike TensorFlow), a shrunk axis' index that is too
/// negative is clamped to 0 rather than rejected.
#[allow(clippy::too_many_arguments)]
pub fn resolve_strided_slice(
    in_shape: &[usize],
    begin: &[i32],
    end: &[i32],
    strides: &[i32],
    begin_mask: i32,
    end_mask: i32,
    ellipsis_mask: i32,
    new_axis_mask: i32,
    shrink_axis_mask: i32,
    offset: bool,
) -> Result<ResolvedSlice, &'static str> {
    let spec_len = begin.len();
    if end.len() != spec_len || strides.len() != spec_len {
        return Err("strided slice: begin, end and strides differ in length");
    }
    if in_shape.len() > MAX_RANK {
        return Err("strided slice: input rank exceeds the maximum");
    }
    if strides.contains(&0) {
        return Err("strided slice: stride 0");
    }
    let spec_mask = if spec_len >= 32 {
        -1i32
    } else {
        ((1i64 << spec_len) - 1) as i32
    };
    let (begin_mask, end_mask, shrink_axis_mask) = (
        begin_mask & spec_mask,
        end_mask & spec_mask,
        shrink_axis_mask & spec_mask,
    );
    let ellipsis_mask = ellipsis_mask & spec_mask;
    // An axis flagged both ellipsis and new-axis is an ellipsis.
    let new_axis_mask = new_axis_mask & spec_mask & !ellipsis_mask;
    if ellipsis_mask.count_ones() > 1 {
        return Err("strided slice: more than one ellipsis");
    }
    let num_new_axes = new_axis_mask.count_ones() as usize;
    let in_rank = in_shape.len();
    let eff_rank = in_rank + num_new_axes;
    if eff_rank > MAX_RANK {
        return Err("strided slice: output rank with new axes exceeds the maximum");
    }
    // Spec entries that name an input axis (not an ellipsis, not a new axis).
    let named = spec_len - ellipsis_mask.count_ones() as usize - num_new_axes;
    if named > in_rank {
        return Err("strided slice: spec names more axes than the input has");
    }
    // TFLite lets an ellipsis stand for at least one axis: one that should
    // cover none, followed by more spec entries, shifts those entries by an
    // axis (and drops the last). Neither reading is safe to pick.
    let last_is_ellipsis = spec_len > 0 && bit(ellipsis_mask, spec_len - 1);
    if ellipsis_mask != 0 && named == in_rank && !last_is_ellipsis {
        return Err("strided slice: ellipsis covering no axis before other entries");
    }
    // In offset mode TFLite sizes the output from `end` per spec entry,
    // indexed by output axis; that only lines up for a plain full spec.
    if offset && (ellipsis_mask != 0 || new_axis_mask != 0 || spec_len != in_rank) {
        return Err("strided slice: offset needs one plain spec entry per axis");
    }

    // Expand the spec to one entry per effective axis: the ellipsis (or,
    // without one, the end of the spec) stands for the input axes the spec
    // does not name, each taken whole with stride 1.
    let mut axes = [EffectiveAxis::default(); MAX_RANK];
    let full = EffectiveAxis {
        stride: 1,
        begin_masked: true,
        end_masked: true,
        ..Default::default()
    };
    let mut e = 0;
    for s in 0..spec_len {
        if bit(ellipsis_mask, s) {
            for _ in 0..in_rank - named {
                axes[e] = full;
                e += 1;
            }
        } else if bit(new_axis_mask, s) {
            axes[e] = EffectiveAxis {
                new_axis: true,
                begin: 0,
                end: 1,
                stride: 1,
                ..Default::default()
            };
            e += 1;
        } else {
            axes[e] = EffectiveAxis {
                new_axis: false,
                begin: begin[s].into(),
                end: end[s].into(),
                stride: strides[s].into(),
                begin_masked: bit(begin_mask, s),
                end_masked: bit(end_mask, s),
                shrink: bit(shrink_axis_mask, s),
            };
            e += 1;
        }
    }
    if ellipsis_mask == 0 {
        while e < eff_rank {
            axes[e] = full;
            e += 1;
        }
    }
    debug_assert_eq!(e, eff_rank);

    let mut params = SliceParams {
        rank: in_rank,
        ..Default::default()
    };
    params.dims[..in_rank].copy_from_slice(in_shape);
    let mut out_dims = [0usize; MAX_RANK];
    let mut out_rank = 0;
    let mut in_axis = 0;
    for axis in &axes[..eff_rank] {
        if axis.new_axis {
            // TFLite slices a size-1 effective axis [0, 1): always one element.
            out_dims[out_rank] = 1;
            out_rank += 1;
            continue;
        }
        let size =
            i64::try_from(in_shape[in_axis]).map_err(|_| "strided slice: dimension too large")?;
        let start = start_for_axis(axis.begin, axis.stride, axis.begin_masked, size);
        let stop = end_for_axis(
            axis.end,
            start,
            axis.stride,
            axis.end_masked,
            axis.shrink,
            offset,
            size,
        );
        let count = count_for_axis(start, stop, axis.stride);
        if axis.shrink && axis.stride < 0 {
            // TFLite would take no element (its end is start + 1 whatever the
            // direction); TensorFlow rejects this spec.
            return Err("strided slice: shrunk axis needs a positive stride");
        }
        if axis.shrink && count != 1 {
            return Err("strided slice: shrunk axis index out of range");
        }
        if offset && !axis.shrink {
            // TFLite's output shape in offset mode is ceil(end / stride),
            // unclamped and ignoring the end mask; its kernel reads the
            // clamped range. Accept only when the two agree.
            let wanted = count_for_axis(0, axis.end, axis.stride);
            if wanted != count {
                return Err("strided slice: offset slice runs past the input");
            }
        }
        params.start[in_axis] = if count == 0 { 0 } else { start as usize };
        params.stride[in_axis] = axis.stride as isize;
        params.count[in_axis] = count as usize;
        if !axis.shrink {
            out_dims[out_rank] = count as usize;
            out_rank += 1;
        }
        in_axis += 1;
    }
    debug_assert_eq!(in_axis, in_rank);
    let out_shape = Shape::new(&out_dims[..out_rank])
        .ok_or("strided slice: output rank exceeds the maximum")?;
    Ok(ResolvedSlice { params, out_shape })
}

/// Resolves TFLite's SLICE for an input of shape `in_shape`: along axis `i`
/// take `size[i]` elements from `begin[i]`, where `size[i] == -1` means "to
/// the end of the axis". (`begin`/`size` may be int32 or int64 tensors in
/// TFLite; widen int32 ones.)
///
/// Errors when `begin` or `size` is not one entry per input axis, the rank
/// exceeds [`MAX_RANK`], a `begin` is negative or past the axis, a size is
/// below -1, or `begin + size` runs past the axis (TFLite's "Invalid begin
/// and size").
pub fn resolve_slice(
    in_shape: &[usize],
    begin: &[i64],
    size: &[i64],
) -> Result<ResolvedSlice, &'static str> {
    let rank = in_shape.len();
    if begin.len() != rank || size.len() != rank {
        return Err("slice: begin and size need one entry per input axis");
    }
    if rank > MAX_RANK {
        return Err("slice: input rank exceeds the maximum");
    }
    let mut params = SliceParams {
        rank,
        ..Default::default()
    };
    params.dims[..rank].copy_from_slice(in_shape);
    for i in 0..rank {
        let dim = i64::try_from(in_shape[i]).map_err(|_| "slice: dimension too large")?;
        let b = begin[i];
        if b < 0 || b > dim {
            return Err("slice: begin out of range");
        }
        let len = match size[i] {
            -1 => dim - b,
            s if s < 0 => return Err("slice: invalid size"),
            s if s > dim - b => return Err("slice: invalid begin and size"),
            s => s,
        };
        params.start[i] = if len == 0 { 0 } else { b as usize };
        params.stride[i] = 1;
        params.count[i] = len as usize;
    }
    let out_shape =
        Shape::new(&params.count[..rank]).ok_or("slice: input rank exceeds the maximum")?;
    Ok(ResolvedSlice { params, out_shape })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::movement::strided_slice;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Masks and `offset` of one strided-slice case, all zero by default.
    #[derive(Default, Clone, Copy)]
    struct Masks {
        begin: i32,
        end: i32,
        ellipsis: i32,
        new_axis: i32,
        shrink: i32,
        offset: bool,
    }

    fn resolve(
        shape: &[usize],
        b: &[i32],
        e: &[i32],
        s: &[i32],
        m: Masks,
    ) -> Result<ResolvedSlice, &'static str> {
        resolve_strided_slice(
            shape, b, e, s, m.begin, m.end, m.ellipsis, m.new_axis, m.shrink, m.offset,
        )
    }

    /// Runs the slice on `0, 1, 2, ...` and returns (output shape, values).
    fn run(shape: &[usize], b: &[i32], e: &[i32], s: &[i32], m: Masks) -> (Vec<usize>, Vec<i32>) {
        let r = resolve(shape, b, e, s, m).unwrap();
        let x: Vec<i32> = (0..shape.iter().product::<usize>() as i32).collect();
        let mut y = vec![0; r.params.out_numel()];
        assert_eq!(y.len(), r.out_shape.numel());
        strided_slice(&x, &r.params, &mut y);
        (r.out_shape.dims().to_vec(), y)
    }

    #[test]
    fn plain_forward_slice() {
        let m = Masks::default();
        assert_eq!(run(&[5], &[1], &[4], &[1], m), (vec![3], vec![1, 2, 3]));
        assert_eq!(run(&[7], &[1], &[6], &[2], m), (vec![3], vec![1, 3, 5]));
        assert_eq!(run(&[7], &[1], &[7], &[3], m), (vec![2], vec![1, 4]));
    }

    #[test]
    fn negative_indices_count_from_the_end() {
        let m = Masks::default();
        assert_eq!(run(&[5], &[-3], &[-1], &[1], m), (vec![2], vec![2, 3]));
        assert_eq!(run(&[5], &[-1], &[-4], &[-1], m), (vec![3], vec![4, 3, 2]));
    }

    #[test]
    fn negative_stride_reverses() {
        let m = Masks {
            begin: 1,
            end: 1,
            ..Default::default()
        };
        assert_eq!(run(&[4], &[0], &[0], &[-1], m), (vec![4], vec![3, 2, 1, 0]));
        assert_eq!(run(&[5], &[0], &[0], &[-2], m), (vec![3], vec![4, 2, 0]));
        // Without masks: from 3 down to (but excluding) 0.
        assert_eq!(
            run(&[4], &[3], &[0], &[-1], Masks::default()),
            (vec![3], vec![3, 2, 1])
        );
    }

    #[test]
    fn out_of_range_indices_are_clamped() {
        let m = Masks::default();
        assert_eq!(
            run(&[4], &[-10], &[10], &[1], m),
            (vec![4], vec![0, 1, 2, 3])
        );
        assert_eq!(
            run(&[4], &[10], &[-10], &[-1], m),
            (vec![4], vec![3, 2, 1, 0])
        );
        // Empty after clamping: begin past the end.
        assert_eq!(run(&[4], &[5], &[8], &[1], m), (vec![0], vec![]));
        // Empty: begin after end with a positive stride.
        assert_eq!(run(&[4], &[3], &[1], &[1], m), (vec![0], vec![]));
    }

    #[test]
    fn begin_and_end_masks_select_whole_axis() {
        let m = Masks {
            begin: 1,
            ..Default::default()
        };
        assert_eq!(run(&[4], &[2], &[3], &[1], m), (vec![3], vec![0, 1, 2]));
        let m = Masks {
            end: 1,
            ..Default::default()
        };
        assert_eq!(run(&[4], &[1], &[2], &[1], m), (vec![3], vec![1, 2, 3]));
        // 2D: rows masked, columns 1..3.
        let m = Masks {
            begin: 1,
            end: 1,
            ..Default::default()
        };
        assert_eq!(
            run(&[2, 4], &[1, 1], &[1, 3], &[1, 1], m),
            (vec![2, 2], vec![1, 2, 5, 6])
        );
    }

    #[test]
    fn shrink_axis_drops_dimension() {
        // x[1, :] of a 3x2.
        let m = Masks {
            shrink: 1,
            end: 2,
            begin: 2,
            ..Default::default()
        };
        assert_eq!(
            run(&[3, 2], &[1, 0], &[2, 0], &[1, 1], m),
            (vec![2], vec![2, 3])
        );
        // x[-1] with a bogus end: the end is ignored when shrinking.
        let m = Masks {
            shrink: 1,
            ..Default::default()
        };
        assert_eq!(run(&[3, 2], &[-1], &[0], &[1], m), (vec![2], vec![4, 5]));
        // Shrinking every axis gives a scalar.
        let m = Masks {
            shrink: 3,
            ..Default::default()
        };
        assert_eq!(
            run(&[3, 2], &[2, 1], &[0, 0], &[1, 1], m),
            (vec![], vec![5])
        );
        // A stride above 1 on a shrunk axis still takes the one element.
        assert_eq!(
            run(&[3, 2], &[2, 1], &[0, 0], &[2, 3], m),
            (vec![], vec![5])
        );
        // TFLite clamps a too-negative index instead of failing as TensorFlow does.
        let m = Masks {
            shrink: 1,
            ..Default::default()
        };
        assert_eq!(run(&[3], &[-4], &[0], &[1], m), (vec![], vec![0]));
    }

    #[test]
    fn shrink_out_of_range_is_an_error() {
        let m = Masks {
            shrink: 1,
            ..Default::default()
        };
        assert!(resolve(&[3], &[3], &[4], &[1], m).is_err());
        assert!(resolve(&[3], &[7], &[8], &[1], m).is_err());
        // A negative stride on a shrunk axis would select nothing in TFLite.
        assert!(resolve(&[3], &[1], &[0], &[-1], m).is_err());
    }

    #[test]
    fn ellipsis_expands_to_missing_axes() {
        // x[..., 1] on [2, 3, 2]: shrink the last axis.
        let m = Masks {
            ellipsis: 1,
            shrink: 2,
            ..Default::default()
        };
        let (shape, y) = run(&[2, 3, 2], &[0, 1], &[0, 2], &[1, 1], m);
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(y, vec![1, 3, 5, 7, 9, 11]);
        // x[1, ...] on [2, 3, 2].
        let m = Masks {
            ellipsis: 2,
            ..Default::default()
        };
        let (shape, y) = run(&[2, 3, 2], &[1, 0], &[2, 0], &[1, 1], m);
        assert_eq!(shape, vec![1, 3, 2]);
        assert_eq!(y, (6..12).collect::<Vec<_>>());
        // x[0, ..., ::-1] on [2, 2, 3]: the ellipsis covers one axis.
        let m = Masks {
            ellipsis: 2,
            begin: 4,
            end: 4,
            shrink: 1,
            ..Default::default()
        };
        let (shape, y) = run(&[2, 2, 3], &[0, 0, 0], &[1, 0, 0], &[1, 1, -1], m);
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(y, vec![2, 1, 0, 5, 4, 3]);
        // An ellipsis covering no axis.
        let m = Masks {
            ellipsis: 2,
            ..Default::default()
        };
        let (shape, y) = run(&[4], &[1, 0], &[3, 0], &[1, 1], m);
        assert_eq!((shape, y), (vec![2], vec![1, 2]));
        // x[0, ..., 1] on [2, 3]: TFLite would compute x[0, :]; rejected.
        assert!(resolve(&[2, 3], &[0, 0, 1], &[1, 0, 2], &[1, 1, 1], m).is_err());
    }

    #[test]
    fn new_axis_inserts_unit_dims() {
        // x[newaxis, 1:3] on [4].
        let m = Masks {
            new_axis: 1,
            ..Default::default()
        };
        assert_eq!(
            run(&[4], &[0, 1], &[0, 3], &[1, 1], m),
            (vec![1, 2], vec![1, 2])
        );
        // x[:, newaxis] on [2, 2]: the unnamed last axis is taken whole.
        let m = Masks {
            begin: 1,
            end: 1,
            new_axis: 2,
            ..Default::default()
        };
        assert_eq!(
            run(&[2, 2], &[0, 0], &[0, 0], &[1, 1], m),
            (vec![2, 1, 2], vec![0, 1, 2, 3])
        );
        // x[..., newaxis] on [2, 3].
        let m = Masks {
            ellipsis: 1,
            new_axis: 2,
            ..Default::default()
        };
        let (shape, y) = run(&[2, 3], &[0, 0], &[0, 0], &[1, 1], m);
        assert_eq!(shape, vec![2, 3, 1]);
        assert_eq!(y, (0..6).collect::<Vec<_>>());
        // A bit set in both masks is an ellipsis.
        let m = Masks {
            ellipsis: 1,
            new_axis: 1,
            ..Default::default()
        };
        assert_eq!(run(&[2, 3], &[0], &[0], &[1], m).0, vec![2, 3]);
    }

    #[test]
    fn short_spec_takes_trailing_axes_whole() {
        let m = Masks::default();
        let (shape, y) = run(&[3, 2], &[1], &[3], &[1], m);
        assert_eq!((shape, y), (vec![2, 2], vec![2, 3, 4, 5]));
    }

    #[test]
    fn offset_makes_end_relative() {
        let m = Masks {
            offset: true,
            ..Default::default()
        };
        assert_eq!(run(&[6], &[1], &[3], &[1], m), (vec![3], vec![1, 2, 3]));
        assert_eq!(run(&[6], &[-2], &[2], &[1], m), (vec![2], vec![4, 5]));
        assert_eq!(run(&[6], &[0], &[5], &[2], m), (vec![3], vec![0, 2, 4]));
        // Asking for more than the axis holds is rejected.
        assert!(resolve(&[6], &[4], &[3], &[1], m).is_err());
    }

    #[test]
    fn invalid_specs_are_rejected() {
        let m = Masks::default();
        assert!(resolve(&[4], &[0], &[1], &[0], m).is_err());
        assert!(resolve(&[4], &[0, 0], &[1], &[1], m).is_err());
        assert!(resolve(&[4], &[0, 0], &[1, 1], &[1, 1], m).is_err());
        let two_ellipses = Masks {
            ellipsis: 3,
            ..Default::default()
        };
        assert!(resolve(&[4, 4], &[0, 0], &[1, 1], &[1, 1], two_ellipses).is_err());
        let too_many_new = Masks {
            new_axis: 0xff,
            ..Default::default()
        };
        assert!(resolve(&[2], &[0; 8], &[1; 8], &[1; 8], too_many_new).is_err());
    }

    #[test]
    fn mask_bits_past_the_spec_are_ignored() {
        let m = Masks {
            begin: !1,
            end: !1,
            shrink: !1,
            new_axis: !1,
            ..Default::default()
        };
        assert_eq!(
            run(&[4, 2], &[1], &[3], &[1], m),
            (vec![2, 2], vec![2, 3, 4, 5])
        );
    }

    #[test]
    fn slice_with_sizes_and_minus_one() {
        let r = resolve_slice(&[3, 4], &[1, 1], &[2, -1]).unwrap();
        assert_eq!(r.out_shape.dims(), &[2, 3]);
        let x: Vec<i32> = (0..12).collect();
        let mut y = vec![0; 6];
        strided_slice(&x, &r.params, &mut y);
        assert_eq!(y, vec![5, 6, 7, 9, 10, 11]);
        // Empty slice at the very end is allowed.
        let r = resolve_slice(&[3], &[3], &[-1]).unwrap();
        assert_eq!(r.out_shape.dims(), &[0]);
    }

    #[test]
    fn slice_rejects_invalid_ranges() {
        assert!(resolve_slice(&[3], &[1], &[3]).is_err());
        assert!(resolve_slice(&[3], &[-1], &[1]).is_err());
        assert!(resolve_slice(&[3], &[4], &[-1]).is_err());
        assert!(resolve_slice(&[3], &[0], &[-2]).is_err());
        assert!(resolve_slice(&[3, 3], &[0], &[1]).is_err());
    }

    #[test]
    fn counts_match_tflite_ceil_formula() {
        // TFLite: dim = max(0, ceil((end - begin) / (float)stride)).
        for start in -2i64..8 {
            for stop in -2i64..8 {
                for stride in [-3i64, -2, -1, 1, 2, 3] {
                    let want = (((stop - start) as f32) / stride as f32).ceil().max(0.0) as i64;
                    assert_eq!(
                        count_for_axis(start, stop, stride),
                        want,
                        "{start} {stop} {stride}"
                    );
                }
            }
        }
    }
}
