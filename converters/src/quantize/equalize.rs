//! Activation equalization before calibration.
//!
//! A per-tensor int8 activation spends its 256 levels on its widest channel.
//! When one channel spans ±400 and the others ±4 (a depthwise conv's output
//! in a detector backbone, say), the narrow channels keep a level or two and
//! everything after them inherits the noise. Per-channel weights, on the
//! other hand, absorb any per-channel scale for free.
//!
//! So, for every producer → consumer pair where a CONV_2D or
//! DEPTHWISE_CONV_2D (no fused activation, or RELU, which commutes with a
//! positive scale) feeds only a CONV_2D, channel `c` of the tensor between
//! them is divided by `s[c]`, the producer's weights and bias for that
//! output channel are divided by it, and the consumer's weights for that
//! input channel are multiplied by it. The float model computes the same
//! function. `s[c] = sqrt(a[c] / w[c])`, with `a[c]` the channel's largest
//! calibrated |activation| and `w[c]` the consumer's largest |weight| on
//! that input channel, balances the two (SmoothQuant's migration strength
//! ½; Nagel et al.'s cross-layer equalization does the same with the
//! producer's weights in place of the activations): afterwards both are
//! `sqrt(a[c]·w[c])`, so no channel dominates the activation's range and no
//! input channel dominates the consumer's per-output-channel weight range.

use ferrite_runtime::{DType, OpCode};

use crate::ir::{Graph, Tensor};

use super::plan::consumers;

/// One producer → consumer pair whose shared tensor can be equalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// The CONV_2D / DEPTHWISE_CONV_2D that writes the tensor.
    pub producer: usize,
    /// The CONV_2D that alone reads it.
    pub consumer: usize,
    /// The tensor between them (channels last).
    pub tensor: usize,
}

/// Scales smaller than this (or larger than its inverse) are clamped: a
/// channel that never fires needs no room, and must not blow up weights.
const MIN_SCALE: f32 = 1e-3;

fn f32_const(g: &Graph, t: Option<usize>) -> Option<Vec<f32>> {
    g.tensors[t?].f32_data()
}

/// The output-channel axis of a producer's weights.
fn producer_axis(code: OpCode) -> Option<usize> {
    match code {
        OpCode::Conv2d => Some(0),
        OpCode::DepthwiseConv2d => Some(3),
        _ => None,
    }
}

/// The pairs of `g` that [`apply`] can equalize.
pub fn pairs(g: &Graph) -> Vec<Pair> {
    let users = consumers(g);
    let mut out = Vec::new();
    for (p, node) in g.nodes.iter().enumerate() {
        let Some(axis) = producer_axis(node.code) else {
            continue;
        };
        // attrs[8] is the fused activation: 0 none, 1 RELU.
        if !matches!(node.attrs.get(8), Some(0) | Some(1)) || node.outputs.len() != 1 {
            continue;
        }
        let t = node.outputs[0];
        let tensor = &g.tensors[t];
        if tensor.dtype != DType::F32 || g.outputs.contains(&t) {
            continue;
        }
        let Some(&channels) = tensor.shape.last() else {
            continue;
        };
        // The producer's weights and bias must be constants only it reads.
        let Some(w) = node.inputs.get(1).copied().flatten() else {
            continue;
        };
        let bias = node.inputs.get(2).copied().flatten();
        let own = |x: usize| users[x].len() == 1 && g.tensors[x].dtype == DType::F32;
        if !own(w) || g.tensors[w].data.is_none() || bias.is_some_and(|b| !own(b)) {
            continue;
        }
        if g.tensors[w].shape.get(axis) != Some(&channels) {
            continue;
        }
        if bias.is_some_and(|b| g.tensors[b].data.is_none() || g.tensors[b].numel() != channels) {
            continue;
        }
        let [(c, 0)] = users[t][..] else { continue };
        let cn = &g.nodes[c];
        if cn.code != OpCode::Conv2d {
            continue;
        }
        let Some(cw) = cn.inputs.get(1).copied().flatten() else {
            continue;
        };
        let cwt = &g.tensors[cw];
        if !own(cw) || cwt.data.is_none() || cwt.shape.len() != 4 || cwt.shape[3] != channels {
            continue;
        }
        out.push(Pair {
            producer: p,
            consumer: c,
            tensor: t,
        });
    }
    out
}

fn set_f32(t: &mut Tensor, v: &[f32]) {
    t.data = Some(v.iter().flat_map(|x| x.to_le_bytes()).collect());
}

/// The per-channel scales for `pair`, from the tensor's per-channel
/// largest |activation| `act_absmax` (one per channel).
pub fn scales(g: &Graph, pair: &Pair, act_absmax: &[f32]) -> Vec<f32> {
    let cw = g.nodes[pair.consumer].inputs[1].expect("checked by pairs");
    let w = g.tensors[cw].f32_data().unwrap_or_default();
    let n = act_absmax.len().max(1);
    let mut wmax = vec![0f32; n];
    for (i, v) in w.iter().enumerate() {
        wmax[i % n] = wmax[i % n].max(v.abs());
    }
    act_absmax
        .iter()
        .zip(&wmax)
        .map(|(&a, &w)| {
            if a > 0.0 && w > 0.0 && a.is_finite() && w.is_finite() {
                (a / w).sqrt().clamp(MIN_SCALE, 1.0 / MIN_SCALE)
            } else {
                1.0
            }
        })
        .collect()
}

/// Equalizes `pair` with per-channel `s` (see the module docs): the float
/// function of the graph is unchanged.
pub fn apply(g: &mut Graph, pair: &Pair, s: &[f32]) {
    let producer = &g.nodes[pair.producer];
    let axis = producer_axis(producer.code).expect("checked by pairs");
    let (w, bias) = (
        producer.inputs[1].expect("checked by pairs"),
        producer.inputs.get(2).copied().flatten(),
    );
    let cw = g.nodes[pair.consumer].inputs[1].expect("checked by pairs");
    let n = s.len();
    // Producer weights: divide output channel c.
    if let Some(mut v) = f32_const(g, Some(w)) {
        let inner: usize = g.tensors[w].shape.iter().skip(axis + 1).product();
        for (i, x) in v.iter_mut().enumerate() {
            *x /= s[(i / inner.max(1)) % n];
        }
        set_f32(&mut g.tensors[w], &v);
    }
    if let Some(mut v) = f32_const(g, bias) {
        for (x, &k) in v.iter_mut().zip(s) {
            *x /= k;
        }
        set_f32(&mut g.tensors[bias.expect("read above")], &v);
    }
    // Consumer weights [O, kh, kw, I]: multiply input channel c.
    if let Some(mut v) = f32_const(g, Some(cw)) {
        for (i, x) in v.iter_mut().enumerate() {
            *x *= s[i % n];
        }
        set_f32(&mut g.tensors[cw], &v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Node;
    use ferrite_runtime::Quant;

    fn tensor(name: &str, shape: Vec<usize>, data: Option<Vec<f32>>) -> Tensor {
        Tensor {
            name: name.into(),
            dtype: DType::F32,
            shape,
            quant: Quant::None,
            data: data.map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        }
    }

    /// x [1,1,1,2] → depthwise 1x1 (weights [1,1,1,2], bias) → t → conv 1x1 [1,1,1,2] → y.
    fn pair_graph(act: i32) -> Graph {
        let tensors = vec![
            tensor("x", vec![1, 1, 1, 2], None),
            tensor("dw", vec![1, 1, 1, 2], Some(vec![100.0, 1.0])),
            tensor("db", vec![2], Some(vec![50.0, 0.5])),
            tensor("t", vec![1, 1, 1, 2], None),
            tensor("cw", vec![1, 1, 1, 2], Some(vec![0.5, 2.0])),
            tensor("y", vec![1, 1, 1, 1], None),
        ];
        let attrs = |a| vec![1, 1, 1, 1, 0, 0, 0, 0, a, 1];
        let nodes = vec![
            Node {
                code: OpCode::DepthwiseConv2d,
                attrs: attrs(act),
                inputs: vec![Some(0), Some(1), Some(2)],
                outputs: vec![3],
                origin: "dw".into(),
            },
            Node {
                code: OpCode::Conv2d,
                attrs: attrs(0),
                inputs: vec![Some(3), Some(4), None],
                outputs: vec![5],
                origin: "conv".into(),
            },
        ];
        Graph {
            tensors,
            nodes,
            inputs: vec![0],
            outputs: vec![5],
            ..Default::default()
        }
    }

    fn eval(g: &Graph, x: [f32; 2]) -> (f32, [f32; 2]) {
        let dw = g.tensors[1].f32_data().unwrap();
        let db = g.tensors[2].f32_data().unwrap();
        let cw = g.tensors[4].f32_data().unwrap();
        let t = [x[0] * dw[0] + db[0], x[1] * dw[1] + db[1]];
        (t[0] * cw[0] + t[1] * cw[1], t)
    }

    #[test]
    fn equalizing_keeps_the_function_and_balances_the_channels() {
        let mut g = pair_graph(0);
        let p = pairs(&g);
        assert_eq!(
            p,
            vec![Pair {
                producer: 0,
                consumer: 1,
                tensor: 3
            }]
        );
        let x = [0.7f32, -1.3];
        let (before, t) = eval(&g, x);
        // Channel 0 spans 150, channel 1 spans 1.5.
        let s = scales(&g, &p[0], &[150.0, 1.5]);
        apply(&mut g, &p[0], &s);
        let (after, t2) = eval(&g, x);
        assert!((before - after).abs() < 1e-3, "{before} vs {after}");
        // Both channels' activation range now equals their weight range.
        let cw = g.tensors[4].f32_data().unwrap();
        for c in 0..2 {
            let a = [150.0, 1.5][c] / s[c];
            assert!((a - cw[c].abs()).abs() < 1e-3 * a, "{a} vs {}", cw[c]);
            assert!((t2[c] - t[c] / s[c]).abs() < 1e-3);
        }
        let ratio_before = 150.0 / 1.5;
        let ratio_after = (150.0 / s[0]) / (1.5 / s[1]);
        assert!(ratio_after < ratio_before / 10.0, "{ratio_after}");
    }

    #[test]
    fn relu6_outputs_and_shared_tensors_are_left_alone() {
        assert!(
            pairs(&pair_graph(3)).is_empty(),
            "RELU6 does not commute with a scale"
        );
        assert_eq!(pairs(&pair_graph(1)).len(), 1, "RELU does");
        let mut g = pair_graph(0);
        g.outputs.push(3);
        assert!(pairs(&g).is_empty(), "a graph output keeps its values");
    }
}
