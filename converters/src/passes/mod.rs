//! Graph passes over the IR, run after import: each rewrites the graph in
//! place, keeps its outputs' values (up to float rounding for the folding
//! passes), and reports how many rewrites it made.
//!
//! - [`remove_noop_reshapes`]: RESHAPE/SQUEEZE/EXPAND_DIMS that change nothing.
//! - [`compose_transposes`]: TRANSPOSE chains become one TRANSPOSE, identity ones vanish.
//! - [`fold_batch_norm`]: a per-channel MUL and/or ADD by constants after a float
//!   CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED is folded into its weights and bias.
//! - [`merge_pad`]: a zero PAD of H and W before a convolution becomes its padding.
//! - [`fuse_activations`]: RELU / RELU6 / RELU_N1_TO_1 after a float conv, fully
//!   connected, ADD, SUB or MUL becomes that op's fused activation.
//! - [`fuse_gated_activations`]: `x · sigmoid(x)` (SiLU, as exporters write
//!   it) becomes one swish UNARY, `x · hard_sigmoid(x)` one HARD_SWISH.
//! - [`fuse_gelu`]: `x · 0.5 · (1 + erf(x / √2))` becomes one GELU UNARY.

use anyhow::Result;
use ferrite_runtime::kernels::reference::math::{BinaryFn, UnaryFn};
use ferrite_runtime::{DType, OpCode, Quant};

use crate::ir::{Graph, Node};

/// Runs every pass until none changes anything, then drops dead nodes and
/// unused tensors.
pub fn run_all(g: &mut Graph) -> Result<()> {
    for _ in 0..8 {
        let n = remove_noop_reshapes(g)
            + compose_transposes(g)
            + fold_batch_norm(g)
            + affine_as_depthwise(g)
            + merge_pad(g)
            + fuse_activations(g)
            + fuse_gated_activations(g)
            + fuse_gelu(g);
        g.remove_dead_nodes();
        if n == 0 {
            break;
        }
    }
    g.remove_unused_tensors();
    Ok(())
}

/// Indices of the nodes reading tensor `t`.
fn readers(g: &Graph, t: usize) -> Vec<usize> {
    g.nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.inputs.iter().flatten().any(|&i| i == t))
        .map(|(i, _)| i)
        .collect()
}

/// The single node reading `t`, when `t` is not a graph output either.
fn sole_reader(g: &Graph, t: usize) -> Option<usize> {
    if g.outputs.contains(&t) {
        return None;
    }
    match readers(g, t).as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// Makes node `keep` write tensor `to` (the output of a node being removed)
/// instead of its own output `from`, so that names and graph outputs survive.
fn redirect_output(g: &mut Graph, keep: usize, from: usize, to: usize) {
    for o in &mut g.nodes[keep].outputs {
        if *o == from {
            *o = to;
        }
    }
}

fn is_float(g: &Graph, t: usize) -> bool {
    g.tensors[t].dtype == DType::F32 && g.tensors[t].quant == Quant::None
}

/// Removes reshape-family ops whose output has the input's shape.
pub fn remove_noop_reshapes(g: &mut Graph) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let n = &g.nodes[i];
        let reshape = matches!(
            n.code,
            OpCode::Reshape | OpCode::Squeeze | OpCode::ExpandDims
        );
        if reshape {
            if let (Some(Some(x)), [y]) = (n.inputs.first(), n.outputs.as_slice()) {
                let (x, y) = (*x, *y);
                let (tx, ty) = (&g.tensors[x], &g.tensors[y]);
                let same = tx.shape == ty.shape && tx.dtype == ty.dtype && tx.quant == ty.quant;
                // Graph inputs, constants and graph outputs must keep their own tensors.
                let movable = !g.outputs.contains(&y) && tx.data.is_none();
                if same && movable {
                    g.nodes.remove(i);
                    g.replace_uses(y, x);
                    count += 1;
                    continue;
                }
            }
        }
        i += 1;
    }
    count
}

/// Composes TRANSPOSE → TRANSPOSE (when the first is read only by the second)
/// and removes identity transposes that are not graph outputs.
pub fn compose_transposes(g: &mut Graph) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        if g.nodes[i].code != OpCode::Transpose {
            i += 1;
            continue;
        }
        let (x, y) = match (g.nodes[i].inputs.first(), g.nodes[i].outputs.first()) {
            (Some(Some(x)), Some(&y)) => (*x, y),
            _ => {
                i += 1;
                continue;
            }
        };
        let perm: Vec<usize> = g.nodes[i].attrs.iter().map(|&p| p as usize).collect();
        if perm.iter().enumerate().all(|(k, &p)| k == p) && !g.outputs.contains(&y) {
            g.nodes.remove(i);
            g.replace_uses(y, x);
            count += 1;
            continue;
        }
        if let Some(j) = sole_reader(g, y) {
            if g.nodes[j].code == OpCode::Transpose && j > i {
                let p2: Vec<usize> = g.nodes[j].attrs.iter().map(|&p| p as usize).collect();
                if p2.len() == perm.len() {
                    // out[k] = mid[p2[k]] = in[perm[p2[k]]]
                    let composed: Vec<i32> = p2.iter().map(|&k| perm[k] as i32).collect();
                    g.nodes[j].attrs = composed;
                    g.nodes[j].inputs[0] = Some(x);
                    g.nodes.remove(i);
                    count += 1;
                    continue;
                }
            }
        }
        i += 1;
    }
    count
}

/// Constant f32 values of tensor `t`, if it is a float constant.
fn const_f32(g: &Graph, t: usize) -> Option<Vec<f32>> {
    g.tensors[t].f32_data()
}

/// Output channels and the index of the activation attribute of a float
/// op whose output can absorb a per-channel affine map.
fn affine_target(g: &Graph, n: &Node) -> Option<(usize, usize)> {
    let out = *n.outputs.first()?;
    if !is_float(g, out) {
        return None;
    }
    let w = (*n.inputs.get(1)?)?;
    g.tensors[w].data.as_ref()?;
    let act_attr = match n.code {
        OpCode::Conv2d | OpCode::DepthwiseConv2d => 8,
        OpCode::FullyConnected => 0,
        _ => return None,
    };
    if n.attrs.get(act_attr) != Some(&0) {
        return None;
    }
    let channels = *g.tensors[out].shape.last()?;
    Some((channels, act_attr))
}

/// Folds `y = conv(x) * s + b` with constant per-channel (or scalar) `s`, `b`
/// into the convolution's weights and bias (and the MUL's or ADD's fused
/// activation into the convolution's).
pub fn fold_batch_norm(g: &mut Graph) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let Some((channels, act_attr)) = affine_target(g, &g.nodes[i]) else {
            i += 1;
            continue;
        };
        let y = g.nodes[i].outputs[0];
        let Some(j) = sole_reader(g, y) else {
            i += 1;
            continue;
        };
        let nj = &g.nodes[j];
        let is_mul = nj.code == OpCode::Mul;
        // The MUL's or ADD's own fused activation moves onto the conv.
        let act = nj.attrs.first().copied().unwrap_or(-1);
        if !(is_mul || nj.code == OpCode::Add) || !(0..=3).contains(&act) {
            i += 1;
            continue;
        }
        let other = match (nj.inputs[0], nj.inputs[1]) {
            (Some(a), Some(b)) if a == y => b,
            (Some(a), Some(b)) if b == y => a,
            _ => {
                i += 1;
                continue;
            }
        };
        let out = nj.outputs[0];
        let per_channel = {
            let s = &g.tensors[other].shape;
            let numel: usize = s.iter().product();
            (numel == channels && s.last() == Some(&channels) || numel == 1)
                && g.tensors[out].shape == g.tensors[y].shape
        };
        let Some(vals) = const_f32(g, other).filter(|_| per_channel) else {
            i += 1;
            continue;
        };
        let per = |c: usize| if vals.len() == 1 { vals[0] } else { vals[c] };
        let code = g.nodes[i].code;
        let w = g.nodes[i].inputs[1].expect("checked");
        let bias = g.nodes[i].inputs.get(2).copied().flatten();
        let mut bvals = match bias {
            Some(b) => match const_f32(g, b) {
                Some(v) => v,
                None => {
                    i += 1;
                    continue;
                }
            },
            None => vec![0.0; channels],
        };
        if is_mul {
            let Some(mut wv) = const_f32(g, w) else {
                i += 1;
                continue;
            };
            // Output channel of each weight element: axis 0 for conv and
            // fully connected, the last axis for depthwise.
            let inner = wv.len() / channels;
            for (k, v) in wv.iter_mut().enumerate() {
                let c = if code == OpCode::DepthwiseConv2d {
                    k % channels
                } else {
                    k / inner
                };
                *v *= per(c);
            }
            for (c, b) in bvals.iter_mut().enumerate() {
                *b *= per(c);
            }
            let wt = g.tensors[w].clone();
            let nw = g.add_tensor(crate::ir::Tensor {
                name: format!("{}/folded", wt.name),
                data: Some(wv.iter().flat_map(|v| v.to_le_bytes()).collect()),
                ..wt
            });
            g.nodes[i].inputs[1] = Some(nw);
        } else {
            for (c, b) in bvals.iter_mut().enumerate() {
                *b += per(c);
            }
        }
        let nb = g.add_tensor(crate::ir::Tensor {
            name: format!("{}/bias", g.tensors[out].name),
            dtype: DType::F32,
            shape: vec![channels],
            quant: Quant::None,
            data: Some(bvals.iter().flat_map(|v| v.to_le_bytes()).collect()),
        });
        if g.nodes[i].inputs.len() < 3 {
            g.nodes[i].inputs.resize(3, None);
        }
        g.nodes[i].inputs[2] = Some(nb);
        g.nodes[i].attrs[act_attr] = act;
        redirect_output(g, i, y, out);
        g.nodes.remove(j);
        count += 1;
    }
    count
}

/// A float MUL of a 4-D tensor by a constant over its last axis becomes a
/// 1x1 DEPTHWISE_CONV_2D with those values as weights. That is a batch norm
/// no convolution before it absorbs (DenseNet's, one after every
/// concatenation): [`fold_batch_norm`] then folds the ADD after it into the
/// bias and [`fuse_activations`] the RELU, so scale, shift and activation
/// are one pass over the tensor instead of three (DenseNet-121 f32 had 124
/// such MUL and ADD passes), and in int8 one rounding instead of two.
pub fn affine_as_depthwise(g: &mut Graph) -> usize {
    let mut count = 0;
    for i in 0..g.nodes.len() {
        let n = &g.nodes[i];
        if n.code != OpCode::Mul {
            continue;
        }
        let (Some(Some(a)), Some(Some(b)), Some(&y)) =
            (n.inputs.first(), n.inputs.get(1), n.outputs.first())
        else {
            continue;
        };
        let (x, k) = if g.tensors[*b].data.is_some() {
            (*a, *b)
        } else {
            (*b, *a)
        };
        let xs = &g.tensors[x].shape;
        let c = xs.last().copied().unwrap_or(0);
        let ks = &g.tensors[k].shape;
        let per_channel = ks.iter().product::<usize>() == c && ks.last() == Some(&c) && c > 1;
        let Some(vals) = const_f32(g, k) else {
            continue;
        };
        if xs.len() != 4
            || !per_channel
            || g.tensors[x].data.is_some()
            || !is_float(g, x)
            || !is_float(g, y)
            || g.tensors[y].shape != *xs
        {
            continue;
        }
        let act = n.attrs.first().copied().unwrap_or(0);
        let filter = g.add_tensor(crate::ir::Tensor {
            name: format!("{}/depthwise_scale", g.tensors[y].name),
            dtype: DType::F32,
            shape: vec![1, 1, 1, c],
            quant: Quant::None,
            data: Some(vals.iter().flat_map(|v| v.to_le_bytes()).collect()),
        });
        let n = &mut g.nodes[i];
        n.code = OpCode::DepthwiseConv2d;
        n.attrs = vec![1, 1, 1, 1, 0, 0, 0, 0, act, 1];
        n.inputs = vec![Some(x), Some(filter), None];
        count += 1;
    }
    count
}

/// Merges a PAD of only H and W (NHWC, pad value zero or the zero-point)
/// into the padding of the convolution that alone reads it.
pub fn merge_pad(g: &mut Graph) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let n = &g.nodes[i];
        if n.code != OpCode::Pad || n.attrs.len() != 8 {
            i += 1;
            continue;
        }
        let a = &n.attrs;
        if a[0] != 0 || a[1] != 0 || a[6] != 0 || a[7] != 0 {
            i += 1;
            continue;
        }
        let (Some(Some(x)), Some(&y)) = (n.inputs.first(), n.outputs.first()) else {
            i += 1;
            continue;
        };
        let x = *x;
        let Some(j) = sole_reader(g, y) else {
            i += 1;
            continue;
        };
        // int8: PAD pads with its zero-point, which the conv's own padding
        // matches only when the PAD doesn't requantize.
        if g.tensors[x].quant != g.tensors[y].quant || g.tensors[x].dtype != g.tensors[y].dtype {
            i += 1;
            continue;
        }
        let c = &g.nodes[j];
        let conv = matches!(c.code, OpCode::Conv2d | OpCode::DepthwiseConv2d);
        if !conv || c.inputs.first() != Some(&Some(y)) || c.attrs.len() < 8 {
            i += 1;
            continue;
        }
        // [top, left, bottom, right] += PAD's [h_before, w_before, h_after, w_after].
        let add = [a[2], a[4], a[3], a[5]];
        for (k, v) in add.iter().enumerate() {
            g.nodes[j].attrs[4 + k] += v;
        }
        g.nodes[j].inputs[0] = Some(x);
        g.nodes.remove(i);
        count += 1;
    }
    count
}

/// Fuses a RELU / RELU6 / RELU_N1_TO_1 into the float op that alone feeds it.
pub fn fuse_activations(g: &mut Graph) -> usize {
    let mut count = 0;
    let mut j = 0;
    while j < g.nodes.len() {
        let act = match g.nodes[j].code {
            OpCode::Relu => 1,
            OpCode::ReluN1To1 => 2,
            OpCode::Relu6 => 3,
            _ => {
                j += 1;
                continue;
            }
        };
        let (Some(Some(x)), Some(&y)) = (g.nodes[j].inputs.first(), g.nodes[j].outputs.first())
        else {
            j += 1;
            continue;
        };
        let x = *x;
        let producer = g.nodes.iter().position(|n| n.outputs.contains(&x));
        let ok = producer.filter(|&p| {
            let n = &g.nodes[p];
            let slot = match n.code {
                OpCode::Conv2d | OpCode::DepthwiseConv2d => 8,
                OpCode::FullyConnected | OpCode::Add | OpCode::Sub | OpCode::Mul => 0,
                _ => return false,
            };
            n.attrs.get(slot) == Some(&0) && is_float(g, x) && sole_reader(g, x) == Some(j)
        });
        let Some(p) = ok else {
            j += 1;
            continue;
        };
        let slot = match g.nodes[p].code {
            OpCode::Conv2d | OpCode::DepthwiseConv2d => 8,
            _ => 0,
        };
        g.nodes[p].attrs[slot] = act;
        redirect_output(g, p, x, y);
        g.nodes.remove(j);
        count += 1;
    }
    count
}

/// What `MUL(x, gate(x))` becomes when `gate` is node `p`: SiLU written as
/// `x · LOGISTIC(x)` becomes the swish UNARY; `x · HardSigmoid(x)` with
/// ONNX's alpha 1/6 and beta 1/2 (MobileNetV3's hard swish, as exported
/// below opset 14) becomes HARD_SWISH.
fn gated_activation(g: &Graph, p: usize, x: usize) -> Option<(OpCode, Vec<i32>)> {
    let n = &g.nodes[p];
    if n.inputs.as_slice() != [Some(x)] {
        return None;
    }
    match (n.code, n.attrs.as_slice()) {
        (OpCode::Logistic, _) => Some((OpCode::Unary, vec![UnaryFn::Swish as i32, 0, 0])),
        (OpCode::Unary, &[f, alpha, beta])
            if f == UnaryFn::HardSigmoid as i32
                && (f32::from_bits(alpha as u32) - 1.0 / 6.0).abs() < 1e-6
                && f32::from_bits(beta as u32) == 0.5 =>
        {
            Some((OpCode::HardSwish, vec![]))
        }
        _ => None,
    }
}

/// Fuses `MUL(x, gate(x))` (no fused activation, float, same shape) whose
/// gate output only the MUL reads into one op (see [`gated_activation`]):
/// one pass over the tensor instead of two, and in int8 one rounding
/// instead of three.
pub fn fuse_gated_activations(g: &mut Graph) -> usize {
    let mut count = 0;
    for j in 0..g.nodes.len() {
        let node = &g.nodes[j];
        if node.code != OpCode::Mul || node.attrs.first().is_some_and(|&a| a != 0) {
            continue;
        }
        let (&[Some(a), Some(b)], &[y]) = (node.inputs.as_slice(), node.outputs.as_slice()) else {
            continue;
        };
        for (x, gate) in [(a, b), (b, a)] {
            if !(is_float(g, x) && is_float(g, gate) && is_float(g, y))
                || g.tensors[x].shape != g.tensors[y].shape
                || sole_reader(g, gate) != Some(j)
            {
                continue;
            }
            let Some(p) = g.nodes.iter().position(|n| n.outputs.contains(&gate)) else {
                continue;
            };
            if let Some((code, attrs)) = gated_activation(g, p, x) {
                let mul = &mut g.nodes[j];
                mul.code = code;
                mul.attrs = attrs;
                mul.inputs = vec![Some(x)];
                count += 1;
                break;
            }
        }
    }
    count
}

/// The node writing tensor `t`.
fn producer(g: &Graph, t: usize) -> Option<usize> {
    g.nodes.iter().position(|n| n.outputs.contains(&t))
}

/// The value of a one-element float constant.
fn scalar_const(g: &Graph, t: usize) -> Option<f32> {
    match const_f32(g, t)?.as_slice() {
        &[v] => Some(v),
        _ => None,
    }
}

/// The operands of `t = op(a, b)` when `t` is written by a float ADD or MUL
/// without a fused activation (`code`), in both orders.
fn plain_binary(g: &Graph, t: usize, code: OpCode) -> Option<[(usize, usize); 2]> {
    let n = &g.nodes[producer(g, t)?];
    if n.code != code || n.attrs.first().is_some_and(|&a| a != 0) || !is_float(g, t) {
        return None;
    }
    match n.inputs.as_slice() {
        &[Some(a), Some(b)] => Some([(a, b), (b, a)]),
        _ => None,
    }
}

/// `x` when `t = x / √2` (a BINARY division or a MUL by 1/√2).
fn over_sqrt2(g: &Graph, t: usize) -> Option<usize> {
    let near = |v: Option<f32>, want: f32| v.is_some_and(|v| (v - want).abs() <= 1e-6 * want);
    if let Some(pairs) = plain_binary(g, t, OpCode::Mul) {
        let half_sqrt2 = core::f32::consts::FRAC_1_SQRT_2;
        return pairs
            .into_iter()
            .find(|&(_, c)| near(scalar_const(g, c), half_sqrt2))
            .map(|(x, _)| x);
    }
    let n = &g.nodes[producer(g, t)?];
    match (n.code, n.attrs.as_slice(), n.inputs.as_slice()) {
        (OpCode::Binary, &[f], &[Some(x), Some(c)])
            if f == BinaryFn::Div as i32 && near(scalar_const(g, c), core::f32::consts::SQRT_2) =>
        {
            Some(x)
        }
        _ => None,
    }
}

/// `x` when `t = 1 + erf(x / √2)`.
fn one_plus_erf(g: &Graph, t: usize) -> Option<usize> {
    plain_binary(g, t, OpCode::Add)?
        .into_iter()
        .filter(|&(_, c)| scalar_const(g, c) == Some(1.0))
        .find_map(|(e, _)| {
            let n = &g.nodes[producer(g, e)?];
            match (n.code, n.attrs.first(), n.inputs.as_slice()) {
                (OpCode::Unary, Some(&f), &[Some(arg)]) if f == UnaryFn::Erf as i32 => {
                    over_sqrt2(g, arg)
                }
                _ => None,
            }
        })
}

/// `x` when `t = x · 0.5` (either order).
fn half_of(g: &Graph, t: usize) -> Option<usize> {
    plain_binary(g, t, OpCode::Mul)?
        .into_iter()
        .find(|&(_, c)| scalar_const(g, c) == Some(0.5))
        .map(|(x, _)| x)
}

/// `x` when `y`'s producer (a MUL) computes exact GELU,
/// `x · 0.5 · (1 + erf(x / √2))`, in any of the three groupings exporters
/// write (`(x · g) · 0.5`, `x · (g · 0.5)`, `(x · 0.5) · g`).
fn gelu_input(g: &Graph, y: usize) -> Option<usize> {
    plain_binary(g, y, OpCode::Mul)?
        .into_iter()
        .find_map(|(p, q)| {
            // (x · g) · 0.5
            if scalar_const(g, q) == Some(0.5) {
                let found = plain_binary(g, p, OpCode::Mul)?
                    .into_iter()
                    .find(|&(x, gate)| one_plus_erf(g, gate) == Some(x));
                return found.map(|(x, _)| x);
            }
            // x · (g · 0.5)
            if half_of(g, q).and_then(|gate| one_plus_erf(g, gate)) == Some(p) {
                return Some(p);
            }
            // (x · 0.5) · g
            let x = half_of(g, p)?;
            (one_plus_erf(g, q) == Some(x)).then_some(x)
        })
}

/// Rewrites exact GELU written out as `x · 0.5 · (1 + erf(x / √2))` (how
/// PyTorch exports `nn.GELU` below opset 20, and Keras without
/// `approximate`) into one GELU UNARY: one pass over the tensor instead of
/// five, and in int8 one table instead of five requantizations. The
/// division, erf and ADD are left to dead-node removal (they stay if
/// something else reads them).
pub fn fuse_gelu(g: &mut Graph) -> usize {
    let mut count = 0;
    for j in 0..g.nodes.len() {
        let node = &g.nodes[j];
        let Some(&y) = node.outputs.first() else {
            continue;
        };
        if node.code != OpCode::Mul {
            continue;
        }
        let Some(x) = gelu_input(g, y) else {
            continue;
        };
        if g.tensors[x].shape != g.tensors[y].shape || !is_float(g, x) {
            continue;
        }
        let n = &mut g.nodes[j];
        n.code = OpCode::Unary;
        n.attrs = vec![UnaryFn::Gelu as i32, 0, 0];
        n.inputs = vec![Some(x)];
        count += 1;
    }
    count
}

/// Fuses a float swish UNARY or HARD_SWISH that alone reads a float
/// CONV_2D's or DEPTHWISE_CONV_2D's output (without an activation of its
/// own) into the conv as its post-op attribute (docs/format.md): the
/// runtime applies it to each block of the output while it is in cache,
/// the same function on the same values. Run on the final graph (after
/// quantization): int8 convs have no post-op.
pub fn fuse_post_activations(g: &mut Graph) -> usize {
    let mut count = 0;
    let mut j = 0;
    while j < g.nodes.len() {
        let n = &g.nodes[j];
        let post = match (n.code, n.attrs.first()) {
            (OpCode::Unary, Some(&f)) if f == UnaryFn::Swish as i32 => 1,
            (OpCode::HardSwish, _) => 2,
            _ => {
                j += 1;
                continue;
            }
        };
        let (Some(Some(x)), Some(&y)) = (n.inputs.first(), n.outputs.first()) else {
            j += 1;
            continue;
        };
        let x = *x;
        let producer = g.nodes.iter().position(|n| n.outputs.contains(&x));
        let ok = producer.filter(|&p| {
            let c = &g.nodes[p];
            let plain = match c.code {
                OpCode::Conv2d => c.attrs.len() == 9,
                OpCode::DepthwiseConv2d => c.attrs.len() == 10,
                _ => false,
            };
            plain
                && c.attrs[8] == 0
                && is_float(g, x)
                && is_float(g, y)
                && sole_reader(g, x) == Some(j)
        });
        let Some(p) = ok else {
            j += 1;
            continue;
        };
        g.nodes[p].attrs.push(post);
        redirect_output(g, p, x, y);
        g.nodes.remove(j);
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests;
