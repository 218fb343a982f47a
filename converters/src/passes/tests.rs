//! Each pass on a small hand-built graph: the rewrite happens when it should,
//! not when it shouldn't, and the result computes the same values (checked
//! by packaging and running both graphs).

use ferrite_runtime::{DType, Model, OpCode, Options, Quant, Session};

use super::*;
use crate::ir::{Graph, Node, Tensor};

fn act(g: &mut Graph, name: &str, shape: &[usize]) -> usize {
    g.add_tensor(Tensor {
        name: name.into(),
        dtype: DType::F32,
        shape: shape.to_vec(),
        quant: Quant::None,
        data: None,
    })
}

fn konst(g: &mut Graph, name: &str, shape: &[usize], v: &[f32]) -> usize {
    g.add_tensor(Tensor {
        name: name.into(),
        dtype: DType::F32,
        shape: shape.to_vec(),
        quant: Quant::None,
        data: Some(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    })
}

fn node(g: &mut Graph, code: OpCode, attrs: Vec<i32>, ins: &[usize], out: usize) {
    g.nodes.push(Node {
        code,
        attrs,
        inputs: ins.iter().map(|&i| Some(i)).collect(),
        outputs: vec![out],
        origin: format!("test {}", code.name()),
    });
}

/// Runs `g` on `input` (one f32 input, one f32 output).
fn run(g: &Graph, input: &[f32]) -> Vec<f32> {
    // Passes leave the tensors they orphan; `run_all` drops them at its end.
    let mut g = g.clone();
    g.remove_unused_tensors();
    let c = crate::package_graph(&g).unwrap();
    let m = Model::from_vec(&c.bytes).unwrap();
    let mut s = Session::new(&m, Options::default()).unwrap();
    s.set_input_f32(0, input).unwrap();
    s.invoke().unwrap();
    s.output_f32(0).unwrap().to_vec()
}

fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 37 % 17) as f32 - 8.0) / 5.0).collect()
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
    }
}

/// x [1,4,4,2] → CONV_2D (3x3, 2→3, pad 1) → y
fn conv_graph() -> (Graph, usize) {
    let mut g = Graph::default();
    let x = act(&mut g, "x", &[1, 4, 4, 2]);
    let w: Vec<f32> = (0..54).map(|i| ((i % 7) as f32 - 3.0) / 4.0).collect();
    let f = konst(&mut g, "w", &[3, 3, 3, 2], &w);
    let b = konst(&mut g, "b", &[3], &[0.5, -0.25, 1.0]);
    let y = act(&mut g, "y", &[1, 4, 4, 3]);
    g.nodes.push(Node {
        code: OpCode::Conv2d,
        attrs: vec![1, 1, 1, 1, 1, 1, 1, 1, 0],
        inputs: vec![Some(x), Some(f), Some(b)],
        outputs: vec![y],
        origin: "conv".into(),
    });
    g.inputs.push(x);
    (g, y)
}

#[test]
fn batch_norm_mul_add_folds_into_conv() {
    let (mut g, y) = conv_graph();
    let s = konst(&mut g, "s", &[3], &[2.0, 0.5, -1.0]);
    let t = konst(&mut g, "t", &[1, 1, 1, 3], &[0.1, 0.2, 0.3]);
    let m = act(&mut g, "m", &[1, 4, 4, 3]);
    let z = act(&mut g, "z", &[1, 4, 4, 3]);
    node(&mut g, OpCode::Mul, vec![0], &[y, s], m);
    node(&mut g, OpCode::Add, vec![0], &[m, t], z);
    g.outputs.push(z);
    let input = ramp(32);
    let want = run(&g, &input);
    let mut h = g.clone();
    assert_eq!(fold_batch_norm(&mut h), 2);
    assert_eq!(h.nodes.len(), 1);
    assert_eq!(h.nodes[0].outputs, vec![z]);
    close(&run(&h, &input), &want);
}

#[test]
fn batch_norm_is_not_folded_when_the_conv_output_has_other_readers() {
    let (mut g, y) = conv_graph();
    let s = konst(&mut g, "s", &[3], &[2.0, 0.5, -1.0]);
    let m = act(&mut g, "m", &[1, 4, 4, 3]);
    node(&mut g, OpCode::Mul, vec![0], &[y, s], m);
    g.outputs.push(m);
    g.outputs.push(y);
    assert_eq!(fold_batch_norm(&mut g), 0);
}

/// x [1,3,2,4] → MUL by [4] → ADD [4] → RELU → z: a batch norm and its
/// activation with no convolution before them.
fn lone_batch_norm() -> Graph {
    let mut g = Graph::default();
    let x = act(&mut g, "x", &[1, 3, 2, 4]);
    let s = konst(&mut g, "s", &[4], &[2.0, 0.5, -1.0, 0.25]);
    let t = konst(&mut g, "t", &[1, 1, 1, 4], &[0.1, -0.2, 0.3, 0.0]);
    let (m, a, z) = (
        act(&mut g, "m", &[1, 3, 2, 4]),
        act(&mut g, "a", &[1, 3, 2, 4]),
        act(&mut g, "z", &[1, 3, 2, 4]),
    );
    node(&mut g, OpCode::Mul, vec![0], &[x, s], m);
    node(&mut g, OpCode::Add, vec![0], &[m, t], a);
    node(&mut g, OpCode::Relu, vec![], &[a], z);
    g.inputs.push(x);
    g.outputs.push(z);
    g
}

#[test]
fn a_lone_batch_norm_becomes_one_depthwise_conv_with_its_activation() {
    let g = lone_batch_norm();
    let input = ramp(24);
    let want = run(&g, &input);
    let mut h = g.clone();
    run_all(&mut h).unwrap();
    assert_eq!(h.nodes.len(), 1, "{:?}", h.nodes);
    let n = &h.nodes[0];
    assert_eq!(n.code, OpCode::DepthwiseConv2d);
    assert_eq!(n.attrs, [1, 1, 1, 1, 0, 0, 0, 0, 1, 1]);
    assert_eq!(h.tensors[n.inputs[1].unwrap()].shape, [1, 1, 1, 4]);
    assert_eq!(h.outputs, [n.outputs[0]]);
    close(&run(&h, &input), &want);
}

#[test]
fn only_a_constant_over_the_last_axis_of_a_4d_tensor_becomes_depthwise() {
    // A scale over another axis, a dynamic scale (squeeze-and-excitation),
    // a scalar and a 2-D tensor stay MULs.
    let mut g = Graph::default();
    let x = act(&mut g, "x", &[1, 3, 2, 4]);
    let over_w = konst(&mut g, "w", &[1, 1, 2, 1], &[1.0, 2.0]);
    let scalar = konst(&mut g, "k", &[1], &[3.0]);
    let dynamic = act(&mut g, "d", &[1, 1, 1, 4]);
    let flat = act(&mut g, "f", &[6, 4]);
    let per_c = konst(&mut g, "c", &[4], &[1.0, 2.0, 3.0, 4.0]);
    for (i, (a, b)) in [(x, over_w), (x, scalar), (x, dynamic), (flat, per_c)]
        .into_iter()
        .enumerate()
    {
        let shape = g.tensors[a].shape.clone();
        let y = act(&mut g, &format!("y{i}"), &shape);
        node(&mut g, OpCode::Mul, vec![0], &[a, b], y);
    }
    assert_eq!(affine_as_depthwise(&mut g), 0);
}

#[test]
fn a_swish_after_a_float_conv_becomes_its_post_op_with_the_same_values() {
    for (code, attrs, post) in [
        (OpCode::Unary, vec![UnaryFn::Swish as i32, 0, 0], 1),
        (OpCode::HardSwish, vec![], 2),
    ] {
        let (mut g, y) = conv_graph();
        let z = act(&mut g, "z", &[1, 4, 4, 3]);
        node(&mut g, code, attrs, &[y], z);
        g.outputs.push(z);
        let input = ramp(32);
        let want = run(&g, &input);
        let mut h = g.clone();
        assert_eq!(fuse_post_activations(&mut h), 1);
        assert_eq!(h.nodes.len(), 1);
        assert_eq!(h.nodes[0].attrs.len(), 10);
        assert_eq!(h.nodes[0].attrs[9], post);
        assert_eq!(h.nodes[0].outputs, vec![z]);
        let got = run(&h, &input);
        assert!(
            got.iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn a_swish_is_not_fused_after_a_conv_with_an_activation_or_other_readers() {
    let (mut g, y) = conv_graph();
    g.nodes[0].attrs[8] = 1;
    let z = act(&mut g, "z", &[1, 4, 4, 3]);
    node(&mut g, OpCode::HardSwish, vec![], &[y], z);
    g.outputs.push(z);
    assert_eq!(fuse_post_activations(&mut g.clone()), 0);
    g.nodes[0].attrs[8] = 0;
    g.outputs.push(y);
    assert_eq!(fuse_post_activations(&mut g), 0);
}

#[test]
fn relu6_fuses_into_conv() {
    let (mut g, y) = conv_graph();
    let r = act(&mut g, "r", &[1, 4, 4, 3]);
    node(&mut g, OpCode::Relu6, vec![], &[y], r);
    g.outputs.push(r);
    let input = ramp(32);
    let want = run(&g, &input);
    assert_eq!(fuse_activations(&mut g), 1);
    assert_eq!(g.nodes.len(), 1);
    assert_eq!(g.nodes[0].attrs[8], 3);
    close(&run(&g, &input), &want);
}

#[test]
fn activation_is_not_fused_into_an_op_with_one_already() {
    let (mut g, y) = conv_graph();
    g.nodes[0].attrs[8] = 1;
    let r = act(&mut g, "r", &[1, 4, 4, 3]);
    node(&mut g, OpCode::Relu6, vec![], &[y], r);
    g.outputs.push(r);
    assert_eq!(fuse_activations(&mut g), 0);
}

#[test]
fn zero_pad_merges_into_conv_padding() {
    let mut g = Graph::default();
    let x = act(&mut g, "x", &[1, 3, 3, 2]);
    let p = act(&mut g, "p", &[1, 4, 6, 2]);
    node(&mut g, OpCode::Pad, vec![0, 0, 1, 0, 2, 1, 0, 0], &[x], p);
    let w: Vec<f32> = (0..36).map(|i| (i % 5) as f32 - 2.0).collect();
    let f = konst(&mut g, "w", &[2, 3, 3, 2], &w);
    let y = act(&mut g, "y", &[1, 2, 4, 2]);
    node(
        &mut g,
        OpCode::Conv2d,
        vec![1, 1, 1, 1, 0, 0, 0, 0, 0],
        &[x, f],
        y,
    );
    g.nodes[1].inputs[0] = Some(p);
    g.inputs.push(x);
    g.outputs.push(y);
    let input = ramp(18);
    let want = run(&g, &input);
    assert_eq!(merge_pad(&mut g), 1);
    assert_eq!(g.nodes.len(), 1);
    assert_eq!(&g.nodes[0].attrs[4..8], &[1, 2, 0, 1]);
    close(&run(&g, &input), &want);
}

#[test]
fn pad_of_channels_is_not_merged() {
    let mut g = Graph::default();
    let x = act(&mut g, "x", &[1, 3, 3, 1]);
    let p = act(&mut g, "p", &[1, 3, 3, 2]);
    node(&mut g, OpCode::Pad, vec![0, 0, 0, 0, 0, 0, 0, 1], &[x], p);
    let f = konst(&mut g, "w", &[1, 1, 1, 2], &[1.0, 1.0]);
    let y = act(&mut g, "y", &[1, 3, 3, 1]);
    node(
        &mut g,
        OpCode::Conv2d,
        vec![1, 1, 1, 1, 0, 0, 0, 0, 0],
        &[p, f],
        y,
    );
    g.inputs.push(x);
    g.outputs.push(y);
    assert_eq!(merge_pad(&mut g), 0);
}

#[test]
fn pad_that_changes_quantization_is_not_merged() {
    let mut g = Graph::default();
    let x = act(&mut g, "x", &[1, 3, 3, 1]);
    let p = act(&mut g, "p", &[1, 5, 5, 1]);
    node(&mut g, OpCode::Pad, vec![0, 0, 1, 1, 1, 1, 0, 0], &[x], p);
    let f = konst(&mut g, "w", &[1, 1, 1, 1], &[1.0]);
    let y = act(&mut g, "y", &[1, 5, 5, 1]);
    node(
        &mut g,
        OpCode::Conv2d,
        vec![1, 1, 1, 1, 0, 0, 0, 0, 0],
        &[p, f],
        y,
    );
    g.inputs.push(x);
    g.outputs.push(y);
    // The conv's padding contributes the input's zero-point; a PAD whose
    // output has other parameters would not.
    for (i, zp) in [(x, 3), (p, 5)] {
        g.tensors[i].dtype = ferrite_runtime::DType::I8;
        g.tensors[i].quant = ferrite_runtime::Quant::PerTensor(ferrite_runtime::QParams {
            scale: 0.5,
            zero_point: zp,
        });
    }
    assert_eq!(merge_pad(&mut g), 0);
    g.tensors[p].quant = g.tensors[x].quant.clone();
    assert_eq!(merge_pad(&mut g), 1);
}

#[test]
fn transposes_compose_and_identities_vanish() {
    let mut g = Graph::default();
    let x = act(&mut g, "x", &[1, 2, 3, 4]);
    let a = act(&mut g, "a", &[1, 3, 4, 2]);
    let b = act(&mut g, "b", &[1, 2, 3, 4]);
    let c = act(&mut g, "c", &[1, 2, 3, 4]);
    node(&mut g, OpCode::Transpose, vec![0, 2, 3, 1], &[x], a);
    node(&mut g, OpCode::Transpose, vec![0, 3, 1, 2], &[a], b);
    node(&mut g, OpCode::Relu, vec![], &[b], c);
    g.inputs.push(x);
    g.outputs.push(c);
    let input = ramp(24);
    let want = run(&g, &input);
    run_all(&mut g).unwrap();
    assert_eq!(g.nodes.len(), 1, "{:?}", g.nodes);
    assert_eq!(g.nodes[0].code, OpCode::Relu);
    close(&run(&g, &input), &want);
}

#[test]
fn noop_reshape_is_removed_but_output_reshapes_stay() {
    let mut g = Graph::default();
    let x = act(&mut g, "x", &[2, 3]);
    let a = act(&mut g, "a", &[2, 3]);
    let b = act(&mut g, "b", &[2, 3]);
    let c = act(&mut g, "c", &[2, 3]);
    node(&mut g, OpCode::Relu, vec![], &[x], a);
    node(&mut g, OpCode::Reshape, vec![], &[a], b);
    node(&mut g, OpCode::Reshape, vec![], &[b], c);
    g.inputs.push(x);
    g.outputs.push(c);
    assert_eq!(remove_noop_reshapes(&mut g), 1);
    assert_eq!(g.nodes.len(), 2);
    assert_eq!(g.nodes[1].outputs, vec![c]);
    let input = ramp(6);
    close(
        &run(&g, &input),
        &input.iter().map(|v| v.max(0.0)).collect::<Vec<_>>(),
    );
}

/// x [1,3,3,4] → gate → s; MUL(x, s) → y (gate's inputs: x).
fn gated_graph(gate: OpCode, attrs: Vec<i32>) -> Graph {
    let mut g = Graph::default();
    let x = act(&mut g, "x", &[1, 3, 3, 4]);
    let s = act(&mut g, "s", &[1, 3, 3, 4]);
    let y = act(&mut g, "y", &[1, 3, 3, 4]);
    node(&mut g, gate, attrs, &[x], s);
    node(&mut g, OpCode::Mul, vec![0], &[s, x], y);
    g.inputs.push(x);
    g.outputs.push(y);
    g
}

fn hard_sigmoid(alpha: f32) -> Vec<i32> {
    let bits = |v: f32| v.to_bits() as i32;
    vec![UnaryFn::HardSigmoid as i32, bits(alpha), bits(0.5)]
}

#[test]
fn x_times_sigmoid_x_becomes_one_swish() {
    let g = gated_graph(OpCode::Logistic, vec![]);
    let x: Vec<f32> = ramp(36).iter().map(|v| v * 7.0).collect();
    let before = run(&g, &x);
    let mut fused = g.clone();
    run_all(&mut fused).unwrap();
    assert_eq!(fused.nodes.len(), 1);
    assert_eq!(fused.nodes[0].code, OpCode::Unary);
    assert_eq!(fused.nodes[0].attrs[0], UnaryFn::Swish as i32);
    close(&run(&fused, &x), &before);
}

#[test]
fn x_times_hard_sigmoid_x_becomes_hard_swish() {
    let g = gated_graph(OpCode::Unary, hard_sigmoid(1.0 / 6.0));
    let x: Vec<f32> = ramp(36).iter().map(|v| v * 3.0).collect();
    let before = run(&g, &x);
    let mut fused = g.clone();
    run_all(&mut fused).unwrap();
    assert_eq!(fused.nodes.len(), 1);
    assert_eq!(fused.nodes[0].code, OpCode::HardSwish);
    close(&run(&fused, &x), &before);
}

/// Exact GELU written out: `x / √2` (a BINARY division, or a MUL by 1/√2
/// when `mul_scale`), erf, `+ 1`, and the product with `x` and 0.5 grouped
/// as `grouping` says (0: `(x·g)·0.5`, 1: `x·(g·0.5)`, 2: `(x·0.5)·g`).
fn gelu_graph(mul_scale: bool, grouping: u8, sqrt2: f32) -> Graph {
    let mut g = Graph::default();
    let shape = [1, 2, 3, 4];
    let x = act(&mut g, "x", &shape);
    let [scaled, e, gate, t, y] =
        ["scaled", "erf", "gate", "t", "y"].map(|n| act(&mut g, n, &shape));
    if mul_scale {
        let c = konst(&mut g, "inv_sqrt2", &[], &[1.0 / sqrt2]);
        node(&mut g, OpCode::Mul, vec![0], &[c, x], scaled);
    } else {
        let c = konst(&mut g, "sqrt2", &[1], &[sqrt2]);
        node(
            &mut g,
            OpCode::Binary,
            vec![BinaryFn::Div as i32],
            &[x, c],
            scaled,
        );
    }
    node(
        &mut g,
        OpCode::Unary,
        vec![UnaryFn::Erf as i32, 0, 0],
        &[scaled],
        e,
    );
    let one = konst(&mut g, "one", &[], &[1.0]);
    node(&mut g, OpCode::Add, vec![0], &[e, one], gate);
    let half = konst(&mut g, "half", &[], &[0.5]);
    match grouping {
        0 => {
            node(&mut g, OpCode::Mul, vec![0], &[x, gate], t);
            node(&mut g, OpCode::Mul, vec![0], &[t, half], y);
        }
        1 => {
            node(&mut g, OpCode::Mul, vec![0], &[half, gate], t);
            node(&mut g, OpCode::Mul, vec![0], &[x, t], y);
        }
        _ => {
            node(&mut g, OpCode::Mul, vec![0], &[x, half], t);
            node(&mut g, OpCode::Mul, vec![0], &[t, gate], y);
        }
    }
    g.inputs.push(x);
    g.outputs.push(y);
    g
}

#[test]
fn exact_gelu_written_out_becomes_one_gelu_in_every_grouping() {
    let x: Vec<f32> = ramp(24).iter().map(|v| v * 2.5).collect();
    for mul_scale in [false, true] {
        for grouping in 0..3 {
            let g = gelu_graph(mul_scale, grouping, core::f32::consts::SQRT_2);
            let before = run(&g, &x);
            let mut fused = g.clone();
            run_all(&mut fused).unwrap();
            let what = format!("mul_scale {mul_scale} grouping {grouping}");
            assert_eq!(fused.nodes.len(), 1, "{what}");
            assert_eq!(fused.nodes[0].code, OpCode::Unary, "{what}");
            assert_eq!(fused.nodes[0].attrs[0], UnaryFn::Gelu as i32, "{what}");
            close(&run(&fused, &x), &before);
        }
    }
}

#[test]
fn near_gelu_and_shared_intermediates_keep_what_others_read() {
    // A different constant is not GELU.
    let mut g = gelu_graph(false, 0, 1.5);
    assert_eq!(fuse_gelu(&mut g), 0);
    // Another reader of the erf keeps it (and what feeds it) alive.
    let mut g = gelu_graph(true, 2, core::f32::consts::SQRT_2);
    let e = g.tensors.iter().position(|t| t.name == "erf").unwrap();
    g.outputs.push(e);
    run_all(&mut g).unwrap();
    let codes: Vec<OpCode> = g.nodes.iter().map(|n| n.code).collect();
    assert_eq!(
        codes,
        [OpCode::Mul, OpCode::Unary, OpCode::Unary],
        "{codes:?}"
    );
    assert!(g
        .nodes
        .iter()
        .any(|n| n.attrs.first() == Some(&(UnaryFn::Gelu as i32))));
}

#[test]
fn other_gates_and_shared_gates_are_not_fused() {
    // ONNX's default hard sigmoid (alpha 0.2) is not MobileNetV3's.
    let mut g = gated_graph(OpCode::Unary, hard_sigmoid(0.2));
    assert_eq!(fuse_gated_activations(&mut g), 0);
    // The sigmoid is also an output: it must stay.
    let mut g = gated_graph(OpCode::Logistic, vec![]);
    g.outputs.push(1);
    assert_eq!(fuse_gated_activations(&mut g), 0);
    // x · sigmoid(z) (a squeeze-excite gate) is a real multiply.
    let mut g = gated_graph(OpCode::Logistic, vec![]);
    let z = act(&mut g, "z", &[1, 3, 3, 4]);
    g.inputs.push(z);
    g.nodes[0].inputs = vec![Some(z)];
    assert_eq!(fuse_gated_activations(&mut g), 0);
    // A MUL with a fused RELU is not a gate.
    let mut g = gated_graph(OpCode::Logistic, vec![]);
    g.nodes[1].attrs = vec![1];
    assert_eq!(fuse_gated_activations(&mut g), 0);
}

/// SUB with the broadcast operand on either side (the runtime runs a
/// repeating operand through the same-shape kernel on tiles): `c - x` and
/// `x - c`, per channel and scalar, exactly as element-wise f32.
#[test]
fn broadcast_sub_keeps_its_operand_order() {
    let x = ramp(3 * 5 * 4);
    for small in [vec![4], vec![1, 1, 1, 4], vec![]] {
        let vals: Vec<f32> = (0..small.iter().product::<usize>())
            .map(|i| 0.25 + i as f32)
            .collect();
        for small_first in [true, false] {
            let mut g = Graph::default();
            let xi = act(&mut g, "x", &[1, 3, 5, 4]);
            let ci = konst(&mut g, "c", &small, &vals);
            let y = act(&mut g, "y", &[1, 3, 5, 4]);
            let ins = if small_first { [ci, xi] } else { [xi, ci] };
            node(&mut g, OpCode::Sub, vec![0], &ins, y);
            (g.inputs, g.outputs) = (vec![xi], vec![y]);
            let got = run(&g, &x);
            for (i, (&g, &v)) in got.iter().zip(&x).enumerate() {
                let c = vals[i % vals.len()];
                let want = if small_first { c - v } else { v - c };
                assert_eq!(
                    g.to_bits(),
                    want.to_bits(),
                    "{small:?} {small_first} at {i}"
                );
            }
        }
    }
}

/// The attention mesh ops' preparation rejects what their kernels would
/// read out of bounds: a landmark index past the landmarks, a matrix that
/// is not `[1, 4, 4]`, an output size that is not the tensor's.
#[test]
fn mediapipe_mesh_ops_reject_bad_indices_and_shapes() {
    let prepare = |code: OpCode, attrs: Vec<i32>, shapes: &[&[usize]], out: &[usize]| {
        let mut g = Graph::default();
        let ins: Vec<usize> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| act(&mut g, &format!("in{k}"), s))
            .collect();
        let y = act(&mut g, "y", out);
        node(&mut g, code, attrs, &ins, y);
        (g.inputs, g.outputs) = (ins, vec![y]);
        crate::package_graph(&g)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    };
    let f = |v: f32| v.to_bits() as i32;
    let l2tm = |subset: i32| vec![0, 1, 16, 16, f(1.5), f(1.5), f(0.0), 2, subset];
    let code = OpCode::LandmarksToTransformMatrix;
    prepare(code, l2tm(5), &[&[1, 6, 3]], &[1, 4, 4]).unwrap();
    let e = prepare(code, l2tm(6), &[&[1, 6, 3]], &[1, 4, 4]).unwrap_err();
    assert!(e.contains("a landmark index is past the landmarks"), "{e}");
    let e = prepare(code, l2tm(5), &[&[1, 6, 2]], &[1, 4, 4]).unwrap_err();
    assert!(e.contains("[1, N, 3]"), "{e}");
    let code = OpCode::TransformTensorBilinear;
    let img: &[usize] = &[1, 8, 8, 2];
    prepare(code, vec![4, 4], &[img, &[1, 4, 4]], &[1, 4, 4, 2]).unwrap();
    let e = prepare(code, vec![4, 4], &[img, &[1, 3, 4]], &[1, 4, 4, 2]).unwrap_err();
    assert!(e.contains("[1, 3, 4]"), "{e}");
    let e = prepare(code, vec![4, 5], &[img, &[1, 4, 4]], &[1, 4, 4, 2]).unwrap_err();
    assert!(e.contains("shape"), "{e}");
    let code = OpCode::TransformLandmarks;
    prepare(code, vec![], &[&[1, 5, 2], &[1, 4, 4]], &[1, 5, 2]).unwrap();
    let e = prepare(code, vec![], &[&[1, 5, 4], &[1, 4, 4]], &[1, 5, 4]).unwrap_err();
    assert!(e.contains("[1, N, 2] or [1, N, 3]"), "{e}");
}
