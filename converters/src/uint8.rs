//! Legacy uint8 models run as int8.
//!
//! TFLite's first quantized models (the SSD MobileNet and MobileNet
//! `*_quant.tflite` files, anything made with `inference_type=uint8`) store
//! activations and weights as asymmetric uint8: `real = scale · (q - zp)`
//! with any `zp` in [0, 255], weights included. Ferrite's integer kernels
//! are int8 with symmetric weights (TFLite's int8 spec), so the importer
//! rewrites such a graph once:
//!
//! - **Activations** (and non-weight constants) move by 128: `q - 128` with
//!   zero-point `zp - 128` is the same real value, and every int8 kernel
//!   computes on `q - zp`, so the results are the same numbers shifted.
//!   LOGISTIC and SOFTMAX outputs (scale 1/256, zero-point 0) become int8's
//!   (1/256, -128) exactly.
//! - **Convolution filters** (CONV_2D, DEPTHWISE_CONV_2D) become per-channel
//!   symmetric int8. A channel whose `q - zp` values all lie in [-127, 127]
//!   keeps them and the scale: exact. A channel with a value outside (a
//!   zero-point far from 128, or a value at -128) is requantized to
//!   `round((q - zp) · 127 / m)` with `m` its largest `|q - zp|` and scale
//!   `scale · m / 127`, and its int32 bias is rescaled to match; only those
//!   channels differ from TFLite's uint8 kernels, by the rounding. (So do
//!   rounding ties where the uint8 and int8 kernels round differently:
//!   average pools and means.)
//! - **FULLY_CONNECTED weights** move by 128 like activations: Ferrite's
//!   int8 fully-connected kernel takes a per-tensor weight zero-point, as
//!   TFLite's does (the same integer sums; the output is rescaled as LiteRT's
//!   int8 kernel does it).
//! - **CONCATENATION inputs** with parameters of their own go through a
//!   requantizing QUANTIZE first (TFLite's uint8 kernel rescales them in
//!   float, int8's copies): equal but for rounding ties.
//! - **Graph inputs and outputs stay uint8** (a camera's bytes go straight
//!   in): a QUANTIZE uint8 → int8 after each such input, a QUANTIZE int8 →
//!   uint8 before each such output, both exact moves by 128.

use anyhow::{bail, Result};
use ferrite_runtime::{DType, OpCode, QParams, Quant};

use crate::ir::{Graph, Node, Tensor};

/// The filter input of a weighted op, and the axis of its output channels
/// (`None`: per-tensor weights that keep their zero-point).
fn filter_axis(code: OpCode) -> Option<Option<usize>> {
    match code {
        OpCode::Conv2d => Some(Some(0)),
        OpCode::DepthwiseConv2d => Some(Some(3)),
        OpCode::FullyConnected => Some(None),
        _ => None,
    }
}

fn is_legacy_u8(t: &Tensor) -> bool {
    t.dtype == DType::U8 && matches!(t.quant, Quant::PerTensor(_))
}

/// `t` as int8: values and zero-point moved by 128.
fn shift_to_i8(t: &mut Tensor) {
    if let Quant::PerTensor(q) = &mut t.quant {
        q.zero_point -= 128;
    }
    if let Some(d) = &mut t.data {
        for b in d.iter_mut() {
            *b ^= 0x80; // u8 v → i8 v - 128, as bits
        }
    }
    t.dtype = DType::I8;
}

/// What [`to_int8`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rewrite {
    /// Output channels of the uint8 CONV_2D / DEPTHWISE_CONV_2D filters.
    pub channels: usize,
    /// Of those, the ones requantized (a value beyond ±127 around the
    /// zero-point); the others are exact.
    pub requantized: usize,
}

/// Adds an int8 twin of the uint8 activation `t` (the same values moved by
/// 128) and returns it.
fn int8_copy(g: &mut Graph, t: usize) -> usize {
    let mut t8 = g.tensors[t].clone();
    t8.name = format!("{}/int8", t8.name);
    shift_to_i8(&mut t8);
    g.add_tensor(t8)
}

/// Rewrites every asymmetric uint8 tensor of `g` as int8 (module docs).
/// `None` when there was nothing to rewrite: float and int8 models, also
/// those with a uint8 input that only a QUANTIZE or DEQUANTIZE reads, or a
/// uint8 output that a QUANTIZE from int8 writes.
pub fn to_int8(g: &mut Graph) -> Result<Option<Rewrite>> {
    if !g.tensors.iter().any(is_legacy_u8) {
        return Ok(None);
    }
    let mut changed = false;
    let mut readers: Vec<Vec<(usize, usize)>> = vec![Vec::new(); g.tensors.len()];
    for (n, node) in g.nodes.iter().enumerate() {
        for (slot, t) in node.inputs.iter().enumerate() {
            if let Some(t) = *t {
                readers[t].push((n, slot));
            }
        }
    }
    let mut rewrite = Rewrite::default();
    // Filters first: their biases are rescaled with them.
    for n in 0..g.nodes.len() {
        let Some(axis) = filter_axis(g.nodes[n].code) else {
            continue;
        };
        let Some(w) = g.nodes[n].inputs.get(1).copied().flatten() else {
            continue;
        };
        if !is_legacy_u8(&g.tensors[w]) {
            continue;
        }
        if g.tensors[w].data.is_none() {
            bail!(
                "{}: uint8 weights '{}' are not a constant",
                g.nodes[n].origin,
                g.tensors[w].name
            );
        }
        if readers[w].len() != 1 {
            bail!(
                "{}: uint8 weights '{}' are shared with another op",
                g.nodes[n].origin,
                g.tensors[w].name
            );
        }
        changed = true;
        match axis {
            None => shift_to_i8(&mut g.tensors[w]),
            Some(axis) => {
                let bias = g.nodes[n].inputs.get(2).copied().flatten();
                let ratios = symmetric_per_channel(&mut g.tensors[w], axis, &g.nodes[n])?;
                rewrite.channels += ratios.len();
                rewrite.requantized += ratios.iter().filter(|&&r| r != 1.0).count();
                if let Some(b) = bias {
                    let nb = rescaled_bias(&g.tensors[b], &ratios, &g.nodes[n].origin)?;
                    if readers[b].len() == 1 {
                        g.tensors[b] = nb;
                    } else {
                        g.nodes[n].inputs[2] = Some(g.add_tensor(nb));
                    }
                }
            }
        }
    }
    // Then every other uint8 tensor. (Node indices in `readers` stay valid:
    // the moves at the inputs are put in front at the end.)
    let (inputs, outputs) = (g.inputs.clone(), g.outputs.clone());
    let mut front = Vec::new();
    for (t, readers_t) in readers.iter().enumerate() {
        if !is_legacy_u8(&g.tensors[t]) {
            continue;
        }
        let is_input = inputs.contains(&t);
        let is_output = outputs.contains(&t);
        if is_input && is_output && readers_t.is_empty() {
            continue;
        }
        if let Some(&(r, _)) = readers_t
            .iter()
            .find(|&&(r, slot)| slot == 1 && g.nodes[r].code == OpCode::ConvTranspose)
        {
            bail!(
                "{}: uint8 filters of transposed convolutions are not supported",
                g.nodes[r].origin
            );
        }
        if is_input {
            // The readers that take uint8 themselves (a QUANTIZE to int8, a
            // DEQUANTIZE) keep reading it; the others read an int8 copy.
            let others: Vec<(usize, usize)> = readers_t
                .iter()
                .copied()
                .filter(|&(r, _)| !matches!(g.nodes[r].code, OpCode::Quantize | OpCode::Dequantize))
                .collect();
            if others.is_empty() {
                continue;
            }
            changed = true;
            let t8 = int8_copy(g, t);
            for (r, slot) in others {
                g.nodes[r].inputs[slot] = Some(t8);
            }
            front.push(quantize_node(&g.tensors[t].name, t, t8));
        } else if is_output {
            // Already a QUANTIZE from int8 (an int8 model with a uint8
            // output): the runtime does that move itself.
            let producer = g.nodes.iter().position(|n| n.outputs.contains(&t));
            if producer.is_some_and(|p| {
                g.nodes[p].code == OpCode::Quantize
                    && g.nodes[p]
                        .inputs
                        .first()
                        .copied()
                        .flatten()
                        .is_some_and(|x| g.tensors[x].dtype == DType::I8)
            }) {
                continue;
            }
            changed = true;
            let t8 = int8_copy(g, t);
            for node in g.nodes.iter_mut() {
                for o in node.outputs.iter_mut().filter(|o| **o == t) {
                    *o = t8;
                }
            }
            for &(r, slot) in readers_t {
                g.nodes[r].inputs[slot] = Some(t8);
            }
            g.nodes.push(quantize_node(&g.tensors[t].name, t8, t));
        } else {
            changed = true;
            shift_to_i8(&mut g.tensors[t]);
        }
    }
    if !changed {
        return Ok(None);
    }
    g.nodes.splice(0..0, front);
    rescale_concat_inputs(g);
    Ok(Some(rewrite))
}

/// TFLite's uint8 CONCATENATION rescales inputs whose parameters differ
/// from the output's (SSD MobileNet joins box encodings of six feature maps
/// that way); int8's copies. Such an input goes through a QUANTIZE (an int8
/// requantization) to the output's parameters first.
fn rescale_concat_inputs(g: &mut Graph) {
    let nodes = std::mem::take(&mut g.nodes);
    for mut node in nodes {
        if let (OpCode::Concatenation, Some(&y)) = (node.code, node.outputs.first()) {
            let y = g.tensors[y].clone();
            for x in node.inputs.iter_mut().flatten() {
                let t = &g.tensors[*x];
                if t.dtype != DType::I8 || y.dtype != DType::I8 || t.quant == y.quant {
                    continue;
                }
                let mut r = y.clone();
                r.name = format!("{}/rescaled", t.name);
                r.shape = t.shape.clone();
                r.data = None;
                let name = t.name.clone();
                let r = g.add_tensor(r);
                g.nodes.push(Node {
                    origin: format!("{} (rescaling input '{name}')", node.origin),
                    ..quantize_node(&name, *x, r)
                });
                *x = r;
            }
        }
        g.nodes.push(node);
    }
}

/// [`to_int8`], with a line for the user in `g.notes` when it rewrote
/// anything.
pub fn note(g: &mut Graph) -> Result<()> {
    let Some(r) = to_int8(g)? else {
        return Ok(());
    };
    g.notes.push(if r.requantized == 0 {
        "uint8 model: runs on the int8 kernels; every filter fits int8 as it is, so the \
         results are TFLite's uint8 ones but for rounding ties (average pools, means, \
         rescaling concatenations)."
            .to_string()
    } else {
        format!(
            "uint8 model: runs on the int8 kernels; {} of {} filter channels have values \
             beyond ±127 around their zero-point and were requantized to symmetric int8 \
             (their outputs differ from TFLite's uint8 ones by a rounding).",
            r.requantized, r.channels
        )
    });
    Ok(())
}

fn quantize_node(name: &str, from: usize, to: usize) -> Node {
    Node {
        code: OpCode::Quantize,
        attrs: Vec::new(),
        inputs: vec![Some(from)],
        outputs: vec![to],
        origin: format!("uint8 <-> int8 move of '{name}'"),
    }
}

/// Makes the uint8 filter `w` symmetric per-channel int8 along `axis`;
/// returns each channel's new scale over the old (1.0 where exact).
fn symmetric_per_channel(w: &mut Tensor, axis: usize, node: &Node) -> Result<Vec<f32>> {
    let Quant::PerTensor(QParams { scale, zero_point }) = w.quant else {
        unreachable!("checked by is_legacy_u8")
    };
    let Some(&channels) = w.shape.get(axis) else {
        bail!(
            "{}: uint8 weights '{}' have shape {:?}",
            node.origin,
            w.name,
            w.shape
        );
    };
    // Saturating: a file's shape may be absurd (the length check below
    // rejects it).
    let inner = w.shape[axis + 1..]
        .iter()
        .fold(1usize, |a, &d| a.saturating_mul(d));
    let data = w.data.as_ref().expect("checked by the caller");
    if channels == 0 || inner == 0 || data.len() != w.numel() {
        bail!(
            "{}: uint8 weights '{}' hold {} values for shape {:?}",
            node.origin,
            w.name,
            data.len(),
            w.shape
        );
    }
    let channel = |i: usize| (i / inner) % channels;
    let mut widest = vec![0i32; channels];
    for (i, &q) in data.iter().enumerate() {
        let c = channel(i);
        widest[c] = widest[c].max((q as i32 - zero_point).abs());
    }
    let ratios: Vec<f32> = widest
        .iter()
        .map(|&m| if m <= 127 { 1.0 } else { m as f32 / 127.0 })
        .collect();
    let out: Vec<u8> = data
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let (v, c) = (q as i32 - zero_point, channel(i));
            if ratios[c] == 1.0 {
                v as i8 as u8
            } else {
                // Round half away from zero, as TFLite's quantizer does.
                let r = (v as f64 * 127.0 / widest[c] as f64).round();
                r.clamp(-127.0, 127.0) as i8 as u8
            }
        })
        .collect();
    w.data = Some(out);
    w.dtype = DType::I8;
    w.quant = Quant::PerAxis {
        axis,
        scales: ratios.iter().map(|&r| scale * r).collect(),
        zero_points: vec![0; channels],
    };
    Ok(ratios)
}

/// The int32 bias `t` of a filter whose channels changed scale by `ratios`.
fn rescaled_bias(t: &Tensor, ratios: &[f32], origin: &str) -> Result<Tensor> {
    let (Some(vals), DType::I32) = (t.int_data(), t.dtype) else {
        bail!("{origin}: the bias of uint8 weights must be an int32 constant");
    };
    if vals.len() != ratios.len() {
        bail!(
            "{origin}: bias '{}' has {} values for {} output channels",
            t.name,
            vals.len(),
            ratios.len()
        );
    }
    let scale = match &t.quant {
        Quant::PerTensor(q) => q.scale,
        _ => bail!("{origin}: bias '{}' needs a per-tensor scale", t.name),
    };
    let data = vals
        .iter()
        .zip(ratios)
        .flat_map(|(&v, &r)| {
            let v = if r == 1.0 {
                v
            } else {
                (v as f64 / r as f64).round() as i64
            };
            (v.clamp(i32::MIN as i64, i32::MAX as i64) as i32).to_le_bytes()
        })
        .collect();
    let mut nb = t.clone();
    nb.data = Some(data);
    nb.quant = Quant::PerAxis {
        axis: 0,
        scales: ratios.iter().map(|&r| scale * r).collect(),
        zero_points: vec![0; ratios.len()],
    };
    Ok(nb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(
        name: &str,
        dtype: DType,
        shape: &[usize],
        quant: Quant,
        data: Option<Vec<u8>>,
    ) -> Tensor {
        Tensor {
            name: name.into(),
            dtype,
            shape: shape.to_vec(),
            quant,
            data,
        }
    }

    fn q(scale: f32, zero_point: i32) -> Quant {
        Quant::PerTensor(QParams { scale, zero_point })
    }

    /// uint8 x → CONV_2D 1x1 (2 output channels, filter zero-point 100) → uint8 y.
    /// Channel 0's values lie within 100 ± 127; channel 1 reaches 255 - 100 = 155.
    fn conv_graph() -> Graph {
        let filter = vec![0, 100, 227, 50, 255, 0];
        let bias: Vec<u8> = [1000i32, -3000]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        Graph {
            tensors: vec![
                tensor("x", DType::U8, &[1, 1, 1, 3], q(0.5, 128), None),
                tensor("w", DType::U8, &[2, 1, 1, 3], q(0.01, 100), Some(filter)),
                tensor("b", DType::I32, &[2], q(0.005, 0), Some(bias)),
                tensor("y", DType::U8, &[1, 1, 1, 2], q(0.1, 10), None),
            ],
            nodes: vec![Node {
                code: OpCode::Conv2d,
                attrs: vec![1, 1, 1, 1, 0, 0, 0, 0, 0, 1],
                inputs: vec![Some(0), Some(1), Some(2)],
                outputs: vec![3],
                origin: "op 0 (CONV_2D)".into(),
            }],
            inputs: vec![0],
            outputs: vec![3],
            ..Default::default()
        }
    }

    #[test]
    fn filters_become_symmetric_int8_exact_where_they_fit() {
        let mut g = conv_graph();
        let r = to_int8(&mut g).unwrap();
        assert_eq!(
            r,
            Some(Rewrite {
                channels: 2,
                requantized: 1
            })
        );
        let w = &g.tensors[1];
        assert_eq!(w.dtype, DType::I8);
        let Quant::PerAxis {
            axis: 0,
            scales,
            zero_points,
        } = &w.quant
        else {
            panic!("{:?}", w.quant)
        };
        assert_eq!(zero_points, &[0, 0]);
        let vals = w.int_data().unwrap();
        // Channel 0: q - 100 as it is, scale unchanged.
        assert_eq!((&vals[..3], scales[0]), (&[-100, 0, 127][..], 0.01));
        // Channel 1: [-50, 155, -100] scaled by 127 / 155.
        assert_eq!(&vals[3..], &[-41, 127, -82]);
        assert!((scales[1] - 0.01 * 155.0 / 127.0).abs() < 1e-9);
        // The bias keeps its real value: channel 1 at the new scale.
        let b = &g.tensors[2];
        assert_eq!(
            b.int_data().unwrap(),
            vec![1000, (-3000.0f64 * 127.0 / 155.0).round() as i64]
        );
        let Quant::PerAxis { scales: bs, .. } = &b.quant else {
            panic!()
        };
        assert_eq!(bs[0], 0.005);
        assert!((bs[1] - 0.005 * 155.0 / 127.0).abs() < 1e-9);
    }

    #[test]
    fn activations_move_by_128_and_the_interface_stays_uint8() {
        let mut g = conv_graph();
        to_int8(&mut g).unwrap();
        // x and y stay uint8; QUANTIZE nodes move them to and from int8 copies.
        assert_eq!(
            (g.tensors[0].dtype, g.tensors[3].dtype),
            (DType::U8, DType::U8)
        );
        let codes: Vec<OpCode> = g.nodes.iter().map(|n| n.code).collect();
        assert_eq!(codes, [OpCode::Quantize, OpCode::Conv2d, OpCode::Quantize]);
        let conv = &g.nodes[1];
        let (x8, y8) = (conv.inputs[0].unwrap(), conv.outputs[0]);
        assert_eq!(g.nodes[0].inputs[0], Some(0));
        assert_eq!(g.nodes[0].outputs[0], x8);
        assert_eq!(g.nodes[2].inputs[0], Some(y8));
        assert_eq!(g.nodes[2].outputs[0], 3);
        assert_eq!(
            (g.tensors[x8].dtype, g.tensors[x8].quant.clone()),
            (DType::I8, q(0.5, 0))
        );
        assert_eq!(
            (g.tensors[y8].dtype, g.tensors[y8].quant.clone()),
            (DType::I8, q(0.1, -118))
        );
    }

    /// The float or int8 graph `g` is left as it is.
    fn unchanged(mut g: Graph) {
        let before = g.clone();
        assert_eq!(to_int8(&mut g).unwrap(), None);
        assert_eq!(g, before);
    }

    fn node(code: OpCode, inputs: &[usize], output: usize) -> Node {
        Node {
            code,
            attrs: vec![],
            inputs: inputs.iter().map(|&i| Some(i)).collect(),
            outputs: vec![output],
            origin: format!("{code:?}"),
        }
    }

    #[test]
    fn graphs_that_only_take_or_give_uint8_are_left_alone() {
        // An int8 conv graph.
        let mut g = conv_graph();
        for t in &mut g.tensors {
            if t.dtype == DType::U8 {
                t.dtype = DType::I8;
            }
        }
        unchanged(g.clone());
        // uint8 image → QUANTIZE → the int8 graph → QUANTIZE → uint8 output.
        let x = g.add_tensor(tensor("img", DType::U8, &[1, 1, 1, 3], q(0.5, 128), None));
        let y = g.add_tensor(tensor("out", DType::U8, &[1, 1, 1, 2], q(0.1, 10), None));
        g.nodes.insert(0, node(OpCode::Quantize, &[x], 0));
        g.nodes.push(node(OpCode::Quantize, &[3], y));
        (g.inputs, g.outputs) = (vec![x], vec![y]);
        unchanged(g);
        // A float graph with a uint8 input through DEQUANTIZE.
        let g = Graph {
            tensors: vec![
                tensor("img", DType::U8, &[4], q(0.5, 128), None),
                tensor("x", DType::F32, &[4], Quant::None, None),
                tensor("y", DType::F32, &[4], Quant::None, None),
            ],
            nodes: vec![
                node(OpCode::Dequantize, &[0], 1),
                node(OpCode::Logistic, &[1], 2),
            ],
            inputs: vec![0],
            outputs: vec![2],
            ..Default::default()
        };
        unchanged(g);
    }

    #[test]
    fn depthwise_filters_are_per_channel_along_the_last_axis() {
        // 2x1 taps over 3 channels, zero-point 120: channel 2 reaches 255.
        let mut g = conv_graph();
        g.tensors[1] = tensor(
            "w",
            DType::U8,
            &[1, 2, 1, 3],
            q(0.01, 120),
            Some(vec![120, 0, 255, 121, 247, 130]),
        );
        g.tensors[2].data = Some(
            [7i32, 8, 900]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        );
        g.tensors[2].shape = vec![3];
        g.tensors[3].shape = vec![1, 1, 1, 3];
        g.nodes[0].code = OpCode::DepthwiseConv2d;
        let r = to_int8(&mut g).unwrap().unwrap();
        assert_eq!(
            r,
            Rewrite {
                channels: 3,
                requantized: 1
            }
        );
        // Channels 0 and 1 exact ([0, 1] and [-120, 127]); channel 2, [135, 10],
        // scaled by 127 / 135.
        let w = g.tensors[1].int_data().unwrap();
        assert_eq!(w, vec![0, -120, 127, 1, 127, 9]);
        let Quant::PerAxis {
            axis: 3, scales, ..
        } = &g.tensors[1].quant
        else {
            panic!("{:?}", g.tensors[1].quant)
        };
        assert_eq!(&scales[..2], &[0.01, 0.01]);
        let b = g.tensors[2].int_data().unwrap();
        assert_eq!(b, vec![7, 8, (900.0f64 * 127.0 / 135.0).round() as i64]);
    }

    #[test]
    fn a_shared_bias_is_copied_not_rescaled_in_place() {
        let mut g = conv_graph();
        // A second reader of the bias (an ADD of the bias to itself, say).
        let other = g.add_tensor(tensor("o", DType::I32, &[2], Quant::None, None));
        g.nodes.push(node(OpCode::Add, &[2, 2], other));
        let before = g.tensors[2].clone();
        to_int8(&mut g).unwrap().unwrap();
        assert_eq!(g.tensors[2], before);
        let conv = g.nodes.iter().find(|n| n.code == OpCode::Conv2d).unwrap();
        let b = conv.inputs[2].unwrap();
        assert_ne!(b, 2);
        assert_eq!(
            g.tensors[b].int_data().unwrap()[1],
            (-3000.0f64 * 127.0 / 155.0).round() as i64
        );
    }

    #[test]
    fn concatenated_inputs_with_their_own_scales_are_requantized_first() {
        // a, b (uint8, different scales) → CONCATENATION → c (a's scale) → RELU → y.
        let t = |n: &str, s: f32, z: i32| tensor(n, DType::U8, &[1, 2], q(s, z), None);
        let mut g = Graph {
            tensors: vec![
                t("a", 0.1, 100),
                t("b", 0.3, 20),
                tensor("c", DType::U8, &[1, 4], q(0.1, 100), None),
                tensor("y", DType::U8, &[1, 4], q(0.1, 100), None),
            ],
            nodes: vec![
                Node {
                    attrs: vec![1, 0],
                    ..node(OpCode::Concatenation, &[0, 1], 2)
                },
                node(OpCode::Relu, &[2], 3),
            ],
            inputs: vec![0, 1],
            outputs: vec![3],
            ..Default::default()
        };
        to_int8(&mut g).unwrap().unwrap();
        let codes: Vec<OpCode> = g.nodes.iter().map(|n| n.code).collect();
        // The input moves, then b's rescale just before the concatenation,
        // the concatenation, the RELU, the output move.
        assert_eq!(
            codes,
            [
                OpCode::Quantize,
                OpCode::Quantize,
                OpCode::Quantize,
                OpCode::Concatenation,
                OpCode::Relu,
                OpCode::Quantize
            ]
        );
        let cat = &g.nodes[3];
        let (a8, b8) = (cat.inputs[0].unwrap(), cat.inputs[1].unwrap());
        assert_eq!(g.tensors[a8].quant, q(0.1, -28));
        // b's int8 copy is rescaled into a tensor with the concatenation's
        // parameters by the QUANTIZE right before it.
        assert_eq!(g.tensors[b8].quant, q(0.1, -28));
        assert_eq!(g.nodes[2].outputs[0], b8);
        assert_eq!(g.tensors[g.nodes[2].inputs[0].unwrap()].quant, q(0.3, -108));
    }
}
