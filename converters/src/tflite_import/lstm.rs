//! TFLite UNIDIRECTIONAL_SEQUENCE_LSTM (what Keras LSTM layers convert to),
//! unrolled over its static sequence onto FULLY_CONNECTED, GATHER and
//! element-wise ops, float activations.
//!
//! The four gates' input weights become one `[4n, input]` constant and one
//! FULLY_CONNECTED over the whole sequence; each step adds its slice to one
//! recurrent FULLY_CONNECTED of the previous output, then applies the gates
//! as TFLite's kernel does (`lstm_eval.cc`): peepholes on the old cell for
//! the input and forget gates and on the new one for the output gate, layer
//! normalization of each gate before its bias, CIFG (`i = 1 - f`), the cell
//! clip, and the projection with its clip.
//!
//! TFLite keeps the output and cell state in variable tensors across
//! invocations; a converted model starts every invocation from zero state,
//! which is TFLite's first invocation (Keras's non-stateful layers).

use anyhow::{anyhow, bail, Result};
use ferrite_runtime::{DType, OpCode, Quant};

use super::dequantize_const;
use crate::ir::{Graph, Node, Tensor};
use crate::tflite::{BuiltinOptions, TflActivation};

/// Input operand indices of UNIDIRECTIONAL_SEQUENCE_LSTM.
mod slot {
    pub const INPUT_TO_GATE: usize = 1; // i, f, c, o: 1..=4
    pub const RECURRENT_TO_GATE: usize = 5; // 5..=8
    pub const CELL_TO_GATE: usize = 9; // peepholes i, f, o: 9..=11
    pub const GATE_BIAS: usize = 12; // 12..=15
    pub const PROJECTION_WEIGHTS: usize = 16;
    pub const PROJECTION_BIAS: usize = 17;
    pub const LAYER_NORM: usize = 20; // i, f, c, o: 20..=23
}

/// Builds the unrolled graph; intermediate nodes go to `g.nodes`.
struct Unroll<'g> {
    g: &'g mut Graph,
    origin: String,
    prefix: String,
}

impl Unroll<'_> {
    fn tensor(&mut self, what: &str, shape: Vec<usize>) -> usize {
        self.g.add_tensor(Tensor {
            name: format!("{}/{what}", self.prefix),
            dtype: DType::F32,
            shape,
            quant: Quant::None,
            data: None,
        })
    }

    fn konst(&mut self, what: &str, shape: Vec<usize>, v: &[f32]) -> usize {
        self.g.add_tensor(Tensor {
            name: format!("{}/{what}", self.prefix),
            dtype: DType::F32,
            shape,
            quant: Quant::None,
            data: Some(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        })
    }

    fn index(&mut self, what: &str, i: usize) -> usize {
        self.g.add_tensor(Tensor {
            name: format!("{}/{what}", self.prefix),
            dtype: DType::I64,
            shape: vec![],
            quant: Quant::None,
            data: Some((i as i64).to_le_bytes().to_vec()),
        })
    }

    fn push(&mut self, code: OpCode, attrs: Vec<i32>, inputs: Vec<Option<usize>>, out: usize) {
        self.g.nodes.push(Node {
            code,
            attrs,
            inputs,
            outputs: vec![out],
            origin: self.origin.clone(),
        });
    }

    /// A new tensor shaped like `like`, written by `code`.
    fn op(
        &mut self,
        what: &str,
        code: OpCode,
        attrs: Vec<i32>,
        ins: &[usize],
        like: usize,
    ) -> usize {
        let shape = self.g.tensors[like].shape.clone();
        let y = self.tensor(what, shape);
        self.push(code, attrs, ins.iter().map(|&i| Some(i)).collect(), y);
        y
    }

    fn add(&mut self, what: &str, a: usize, b: usize) -> usize {
        self.op(what, OpCode::Add, vec![0], &[a, b], a)
    }

    fn mul(&mut self, what: &str, a: usize, b: usize) -> usize {
        self.op(what, OpCode::Mul, vec![0], &[a, b], a)
    }

    /// `x W^T (+ b)` over the last axis of `x`, other axes kept.
    fn fc(&mut self, what: &str, x: usize, w: usize, b: Option<usize>) -> usize {
        let mut shape = self.g.tensors[x].shape.clone();
        *shape.last_mut().expect("rank >= 1") = self.g.tensors[w].shape[0];
        let y = self.tensor(what, shape);
        self.push(
            OpCode::FullyConnected,
            vec![0, 1],
            vec![Some(x), Some(w), b],
            y,
        );
        y
    }

    /// `x[index]` along `axis`, that axis removed.
    fn take(&mut self, what: &str, x: usize, axis: usize, index: usize) -> usize {
        let mut shape = self.g.tensors[x].shape.clone();
        shape.remove(axis);
        let i = self.index(&format!("{what}/index"), index);
        let y = self.tensor(what, shape);
        self.push(OpCode::Gather, vec![axis as i32], vec![Some(x), Some(i)], y);
        y
    }

    fn reshape(&mut self, what: &str, x: usize, shape: Vec<usize>) -> usize {
        let y = self.tensor(what, shape);
        self.push(OpCode::Reshape, vec![], vec![Some(x)], y);
        y
    }

    /// `x` clamped to `[-c, c]`; no op for `c <= 0` (TFLite's "no clip").
    fn clip(&mut self, what: &str, x: usize, c: f32) -> usize {
        if c <= 0.0 {
            return x;
        }
        let lo = self.konst(&format!("{what}/lo"), vec![], &[-c]);
        let hi = self.konst(&format!("{what}/hi"), vec![], &[c]);
        let m = self.op(&format!("{what}/max"), OpCode::Maximum, vec![], &[x, lo], x);
        self.op(what, OpCode::Minimum, vec![], &[m, hi], x)
    }

    /// TFLite's `MeanStddevNormalization` over the last axis (variance plus
    /// 1e-8), times `coeff`.
    fn layer_norm(&mut self, what: &str, x: usize, coeff: usize) -> usize {
        let shape = self.g.tensors[x].shape.clone();
        let last = (shape.len() - 1) as i32;
        let mut kept = shape.clone();
        *kept.last_mut().expect("rank >= 1") = 1;
        let mean = self.tensor(&format!("{what}/mean"), kept.clone());
        self.push(OpCode::Reduce, vec![1, 1, last], vec![Some(x)], mean);
        let centered = self.op(
            &format!("{what}/centered"),
            OpCode::Sub,
            vec![0],
            &[x, mean],
            x,
        );
        let sq = self.mul(&format!("{what}/sq"), centered, centered);
        let var = self.tensor(&format!("{what}/var"), kept.clone());
        self.push(OpCode::Reduce, vec![1, 1, last], vec![Some(sq)], var);
        let eps = self.konst(&format!("{what}/eps"), vec![], &[1e-8]);
        let ve = self.add(&format!("{what}/var_eps"), var, eps);
        let sd = self.op(
            &format!("{what}/std"),
            OpCode::Unary,
            vec![2, 0, 0],
            &[ve],
            ve,
        );
        let inv = self.op(
            &format!("{what}/inv_std"),
            OpCode::Unary,
            vec![5, 0, 0],
            &[sd],
            sd,
        );
        let normed = self.mul(&format!("{what}/normed"), centered, inv);
        self.mul(what, normed, coeff)
    }

    /// The LSTM's cell activation (the op's fused activation).
    fn activation(&mut self, what: &str, x: usize, a: TflActivation) -> Result<usize> {
        Ok(match a {
            TflActivation::None => x,
            TflActivation::Tanh => self.op(what, OpCode::Tanh, vec![], &[x], x),
            TflActivation::Relu => self.op(what, OpCode::Relu, vec![], &[x], x),
            TflActivation::Relu6 => self.op(what, OpCode::Relu6, vec![], &[x], x),
            TflActivation::ReluN1To1 => self.op(what, OpCode::ReluN1To1, vec![], &[x], x),
            TflActivation::SignBit => bail!("the SIGN_BIT activation is not supported"),
        })
    }

    fn sigmoid(&mut self, what: &str, x: usize) -> usize {
        self.op(what, OpCode::Logistic, vec![], &[x], x)
    }
}

/// A float constant operand (int8 weights of a hybrid model dequantized),
/// checked against `shape`; `None` when the operand is omitted.
fn operand(
    g: &Graph,
    ins: &[Option<usize>],
    k: usize,
    shape: &[usize],
) -> Result<Option<Vec<f32>>> {
    let Some(t) = ins.get(k).copied().flatten() else {
        return Ok(None);
    };
    let t = &g.tensors[t];
    if t.shape != shape {
        bail!(
            "operand {k} ('{}') must have shape {shape:?}, got {:?}",
            t.name,
            t.shape
        );
    }
    let data = t
        .data
        .as_ref()
        .ok_or_else(|| anyhow!("operand {k} ('{}') must be a constant", t.name))?;
    let v = match (t.dtype, &t.quant) {
        (DType::F32, _) => t.f32_data(),
        (DType::I8, Quant::PerTensor(_) | Quant::PerAxis { .. }) => {
            let bytes = dequantize_const(t, data)?;
            Some(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )
        }
        _ => None,
    };
    v.map(Some)
        .ok_or_else(|| anyhow!("operand {k} ('{}') must be float or int8 weights", t.name))
}

/// Lowers UNIDIRECTIONAL_SEQUENCE_LSTM; returns the node writing its output.
pub(super) fn unidirectional_sequence_lstm(
    g: &mut Graph,
    opts: &BuiltinOptions,
    ins: &[Option<usize>],
    outs: &[usize],
    origin: &str,
) -> Result<Node> {
    let BuiltinOptions::UnidirectionalSequenceLstm {
        fused_activation,
        cell_clip,
        proj_clip,
        time_major,
        diagonal_recurrent_tensors,
        ..
    } = *opts
    else {
        bail!("missing UnidirectionalSequenceLSTMOptions");
    };
    if diagonal_recurrent_tensors {
        bail!("diagonal recurrent weights are not supported");
    }
    let [out] = outs[..] else {
        bail!("expects one output, got {}", outs.len());
    };
    let x = ins
        .first()
        .copied()
        .flatten()
        .ok_or_else(|| anyhow!("missing input 0"))?;
    if g.tensors[x].dtype != DType::F32 || g.tensors[out].dtype != DType::F32 {
        bail!("only float inputs and outputs are supported (int8/int16 LSTMs are not)");
    }
    let xs = g.tensors[x].shape.clone();
    let &[d0, d1, n_in] = &xs[..] else {
        bail!("the input must be 3-D, got {xs:?}");
    };
    let (steps, batch) = if time_major { (d0, d1) } else { (d1, d0) };
    // The cell size from the forget gate's weights (always present).
    let wf = ins
        .get(slot::INPUT_TO_GATE + 1)
        .copied()
        .flatten()
        .ok_or_else(|| anyhow!("missing the forget gate's input weights"))?;
    let n = g.tensors[wf].shape.first().copied().unwrap_or(0);
    let proj_shape = ins
        .get(slot::PROJECTION_WEIGHTS)
        .copied()
        .flatten()
        .map(|t| g.tensors[t].shape.clone());
    let n_out = proj_shape
        .as_ref()
        .map_or(n, |s| s.first().copied().unwrap_or(0));
    if steps * batch * n_in * n * n_out == 0 {
        bail!("empty input or cell (input {xs:?}, {n} cells, {n_out} outputs)");
    }
    let want_out = if time_major {
        vec![steps, batch, n_out]
    } else {
        vec![batch, steps, n_out]
    };
    if g.tensors[out].shape != want_out {
        bail!(
            "the output is stored as {:?}, expected {want_out:?}",
            g.tensors[out].shape
        );
    }
    // Gates in TFLite's order i, f, c, o; CIFG models omit the input gate's operands.
    let w_in: Vec<Option<Vec<f32>>> = (0..4)
        .map(|k| operand(g, ins, slot::INPUT_TO_GATE + k, &[n, n_in]))
        .collect::<Result<_>>()?;
    let w_rec: Vec<Option<Vec<f32>>> = (0..4)
        .map(|k| operand(g, ins, slot::RECURRENT_TO_GATE + k, &[n, n_out]))
        .collect::<Result<_>>()?;
    let peep: Vec<Option<Vec<f32>>> = (0..3)
        .map(|k| operand(g, ins, slot::CELL_TO_GATE + k, &[n]))
        .collect::<Result<_>>()?;
    let bias: Vec<Option<Vec<f32>>> = (0..4)
        .map(|k| operand(g, ins, slot::GATE_BIAS + k, &[n]))
        .collect::<Result<_>>()?;
    let ln: Vec<Option<Vec<f32>>> = (0..4)
        .map(|k| operand(g, ins, slot::LAYER_NORM + k, &[n]))
        .collect::<Result<_>>()?;
    let cifg = w_in[0].is_none();
    let gates: Vec<usize> = if cifg {
        vec![1, 2, 3]
    } else {
        vec![0, 1, 2, 3]
    };
    for &k in &gates {
        let gate = ["input", "forget", "cell", "output"][k];
        if w_in[k].is_none() || w_rec[k].is_none() || bias[k].is_none() {
            bail!("the {gate} gate needs its input weights, recurrent weights and bias");
        }
    }
    let layer_norm = ln[1].is_some();
    if layer_norm && gates.iter().any(|&k| ln[k].is_none()) {
        bail!("layer normalization needs a coefficient for every gate");
    }
    let has_peep = peep[1].is_some();
    if has_peep && (peep[2].is_none() || (!cifg && peep[0].is_none())) {
        bail!("peepholes need the cell-to-gate weights of every sigmoid gate");
    }
    let proj = match proj_shape {
        Some(_) => Some((
            operand(g, ins, slot::PROJECTION_WEIGHTS, &[n_out, n])?.expect("present"),
            operand(g, ins, slot::PROJECTION_BIAS, &[n_out])?,
        )),
        None => {
            if ins.get(slot::PROJECTION_BIAS).copied().flatten().is_some() {
                bail!("a projection bias without projection weights");
            }
            None
        }
    };

    let mut u = Unroll {
        g,
        origin: origin.to_string(),
        prefix: origin.replace(' ', "_"),
    };
    let ng = gates.len();
    let stack = |v: &[Option<Vec<f32>>]| -> Vec<f32> {
        gates
            .iter()
            .flat_map(|&k| v[k].clone().expect("checked"))
            .collect()
    };
    let wx = u.konst("input_weights", vec![ng * n, n_in], &stack(&w_in));
    let wh = u.konst("recurrent_weights", vec![ng * n, n_out], &stack(&w_rec));
    // Without layer norm the biases join the input projection; with it they
    // are added after each gate's normalization.
    let fc_bias = (!layer_norm).then(|| u.konst("bias", vec![ng * n], &stack(&bias)));
    let xw = u.fc("input_projection", x, wx, fc_bias);
    let time_axis = if time_major { 0 } else { 1 };
    let vec_const = |u: &mut Unroll<'_>, what: &str, v: &Option<Vec<f32>>| {
        v.as_ref().map(|v| u.konst(what, vec![n], v))
    };
    let peep_t: Vec<Option<usize>> = (0..3)
        .map(|k| vec_const(&mut u, &format!("peephole{k}"), &peep[k]))
        .collect();
    let ln_t: Vec<Option<usize>> = (0..4)
        .map(|k| vec_const(&mut u, &format!("layer_norm{k}"), &ln[k]))
        .collect();
    let bias_t: Vec<Option<usize>> = (0..4)
        .map(|k| {
            if layer_norm {
                vec_const(&mut u, &format!("bias{k}"), &bias[k])
            } else {
                None
            }
        })
        .collect();
    let proj_t = proj.as_ref().map(|(w, b)| {
        (
            u.konst("projection_weights", vec![n_out, n], w),
            b.as_ref()
                .map(|b| u.konst("projection_bias", vec![n_out], b)),
        )
    });
    let one = cifg.then(|| u.konst("one", vec![], &[1.0]));

    let (mut h, mut c): (Option<usize>, Option<usize>) = (None, None);
    let mut outputs = Vec::with_capacity(steps);
    for t in 0..steps {
        let s = format!("t{t}");
        let mut all = u.take(&format!("{s}/xw"), xw, time_axis, t);
        if let Some(hp) = h {
            let hr = u.fc(&format!("{s}/hr"), hp, wh, None);
            all = u.add(&format!("{s}/gates"), all, hr);
        }
        let all3 = u.reshape(&format!("{s}/gates3"), all, vec![batch, ng, n]);
        let mut pre = [None; 4];
        for (j, &k) in gates.iter().enumerate() {
            pre[k] = Some(u.take(&format!("{s}/gate{k}"), all3, 1, j));
        }
        // Peephole (on a given cell), layer norm and bias, then the gate's function.
        let finish =
            |u: &mut Unroll<'_>, k: usize, x: usize, cell: Option<usize>, p: Option<usize>| {
                let mut x = x;
                if let (Some(p), Some(cell)) = (p, cell) {
                    let pc = u.mul(&format!("{s}/peep{k}"), cell, p);
                    x = u.add(&format!("{s}/gate{k}_peep"), x, pc);
                }
                if let Some(coeff) = ln_t[k] {
                    x = u.layer_norm(&format!("{s}/gate{k}_ln"), x, coeff);
                    x = u.add(&format!("{s}/gate{k}_bias"), x, bias_t[k].expect("checked"));
                }
                x
            };
        let fg = finish(&mut u, 1, pre[1].expect("forget"), c, peep_t[1]);
        let f = u.sigmoid(&format!("{s}/f"), fg);
        let i = match one {
            Some(one) => u.op(&format!("{s}/i"), OpCode::Sub, vec![0], &[one, f], f),
            None => {
                let ig = finish(&mut u, 0, pre[0].expect("input"), c, peep_t[0]);
                u.sigmoid(&format!("{s}/i"), ig)
            }
        };
        let cg = finish(&mut u, 2, pre[2].expect("cell"), None, None);
        let cand = u.activation(&format!("{s}/cand"), cg, fused_activation)?;
        let mut cell = u.mul(&format!("{s}/ic"), i, cand);
        if let Some(cp) = c {
            let fc = u.mul(&format!("{s}/fc"), f, cp);
            cell = u.add(&format!("{s}/c"), fc, cell);
        }
        let cell = u.clip(&format!("{s}/c_clip"), cell, cell_clip);
        let og = finish(&mut u, 3, pre[3].expect("output"), Some(cell), peep_t[2]);
        let o = u.sigmoid(&format!("{s}/o"), og);
        let hc = u.activation(&format!("{s}/hc"), cell, fused_activation)?;
        let mut hn = u.mul(&format!("{s}/h"), o, hc);
        if let Some((pw, pb)) = proj_t {
            hn = u.fc(&format!("{s}/proj"), hn, pw, pb);
            hn = u.clip(&format!("{s}/proj_clip"), hn, proj_clip);
        }
        let mut row = vec![batch, n_out];
        row.insert(time_axis, 1);
        outputs.push(u.reshape(&format!("{s}/row"), hn, row));
        h = Some(hn);
        c = Some(cell);
    }
    if let [only] = outputs[..] {
        return Ok(Node {
            code: OpCode::Reshape,
            attrs: vec![],
            inputs: vec![Some(only)],
            outputs: vec![out],
            origin: origin.to_string(),
        });
    }
    Ok(Node {
        code: OpCode::Concatenation,
        attrs: vec![time_axis as i32, 0],
        inputs: outputs.into_iter().map(Some).collect(),
        outputs: vec![out],
        origin: origin.to_string(),
    })
}
