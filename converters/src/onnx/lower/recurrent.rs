//! ONNX LSTM, GRU and RNN, unrolled over the (static) sequence onto
//! FULLY_CONNECTED, element-wise ops and activations.
//!
//! The input projection of every step is one FULLY_CONNECTED over the whole
//! sequence (`[seq * batch, input]`, both biases folded into it); each step
//! then adds its slice to the recurrent product of the previous state and
//! applies the gates. A zero initial state skips the first step's
//! recurrent product. Constant weights make FULLY_CONNECTED ops (which the
//! quantizer can make int8); weights given at run time use BATCH_MATMUL.

use super::*;

/// One activation function of a recurrent op, with its parameters.
#[derive(Debug, Clone)]
struct Act {
    name: String,
    alpha: f32,
    beta: f32,
}

/// Which recurrent op: its gate count and default activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    Lstm,
    Gru,
    Rnn,
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
            Cell::Rnn => 1,
        }
    }

    fn default_acts(self) -> &'static [&'static str] {
        match self {
            Cell::Lstm => &["Sigmoid", "Tanh", "Tanh"],
            Cell::Gru => &["Sigmoid", "Tanh"],
            Cell::Rnn => &["Tanh"],
        }
    }
}

/// The recurrent state of one direction between steps (`None`: zero).
#[derive(Default)]
struct State {
    h: Option<Val>,
    c: Option<Val>,
}

impl Lower<'_> {
    /// Lowers an LSTM, GRU or RNN node (all its outputs).
    pub(super) fn recurrent(
        &mut self,
        n: &NodeProto,
        a: &Attrs<'_>,
        ins: &[Option<Val>],
    ) -> Result<()> {
        let cell = match n.op_type.as_str() {
            "LSTM" => Cell::Lstm,
            "GRU" => Cell::Gru,
            _ => Cell::Rnn,
        };
        let out = n.output.first().cloned().unwrap_or_default();
        let out = if out.is_empty() {
            format!("{}#{}", n.op_type, self.g.nodes.len())
        } else {
            out
        };
        let input = |k: usize| -> Result<Val> {
            ins.get(k)
                .cloned()
                .flatten()
                .ok_or_else(|| anyhow!("required input {k} is missing"))
        };
        let opt = |k: usize| -> Option<Val> { ins.get(k).cloned().flatten() };
        let g = cell.gates();
        let h = a.int("hidden_size", 0)?;
        if !(1..=1 << 16).contains(&h) {
            bail!("hidden_size must be set, from 1 to 65536 (got {h})");
        }
        let h = h as usize;
        let reverse: Vec<bool> = match a.string("direction", "forward")?.as_str() {
            "forward" => vec![false],
            "reverse" => vec![true],
            "bidirectional" => vec![false, true],
            other => bail!("direction '{other}' is not forward, reverse or bidirectional"),
        };
        let nd = reverse.len();
        let batch_major = match a.int("layout", 0)? {
            0 => false,
            1 => true,
            other => bail!("layout {other} is not 0 or 1"),
        };
        if cell == Cell::Lstm && a.int("input_forget", 0)? != 0 {
            bail!("input_forget (coupled input and forget gates) is not supported");
        }
        let before_reset = cell == Cell::Gru && a.int("linear_before_reset", 0)? != 0;
        let clip = match a.get("clip") {
            Some(_) => {
                let c = a.float("clip", 0.0)?;
                if c.is_nan() || c <= 0.0 {
                    bail!("clip must be positive (got {c})");
                }
                Some(c)
            }
            None => None,
        };
        let acts = activations(a, cell, nd)?;

        let mut x = input(0)?;
        if self.type_of(&x) != dt::FLOAT {
            bail!("supported for float tensors only");
        }
        if self.shape_of(&x).len() != 3 {
            bail!("X must be 3-D, got shape {:?}", self.shape_of(&x));
        }
        if batch_major {
            x = self.permute_val(&format!("{out}/x_time_major"), &x, &[1, 0, 2])?;
        }
        let xd = self.shape_of(&x);
        let (seq, batch, isz) = (xd[0], xd[1], xd[2]);
        if seq * batch * isz == 0 {
            bail!("X is empty (shape {xd:?})");
        }
        let (w, r) = (input(1)?, input(2)?);
        let expect = |v: &Val, name: &str, want: &[usize], me: &Self| -> Result<()> {
            let d = me.shape_of(v);
            if d != want {
                bail!("{name} must have shape {want:?}, got {d:?}");
            }
            Ok(())
        };
        expect(&w, "W", &[nd, g * h, isz], self)?;
        expect(&r, "R", &[nd, g * h, h], self)?;
        let b = opt(3);
        if let Some(b) = &b {
            expect(b, "B", &[nd, 2 * g * h], self)?;
        }
        match opt(4) {
            None => {}
            Some(Val::C(lens)) if lens.as_i64().iter().all(|&l| l == seq as i64) => {}
            Some(Val::C(lens)) => bail!(
                "sequence_lens {:?} shorter than the sequence ({seq}) are not supported",
                lens.as_i64()
            ),
            Some(_) => bail!("sequence_lens must be constant (and equal to the sequence length)"),
        }
        let state_in = |me: &mut Self, k: usize, name: &str| -> Result<Option<Val>> {
            let Some(mut v) = opt(k) else {
                return Ok(None);
            };
            if batch_major {
                v = me.permute_val(&format!("{out}/{name}_dir_major"), &v, &[1, 0, 2])?;
            }
            expect(&v, name, &[nd, batch, h], me)?;
            Ok(Some(v))
        };
        let h0 = state_in(self, 5, "initial_h")?;
        let c0 = if cell == Cell::Lstm {
            state_in(self, 6, "initial_c")?
        } else {
            None
        };
        let peep = if cell == Cell::Lstm { opt(7) } else { None };
        if let Some(p) = &peep {
            expect(p, "P", &[nd, 3 * h], self)?;
        }

        let x2 = self.reshaped(&format!("{out}/x2d"), &x, vec![seq * batch, isz])?;
        let mut ys: Vec<Vec<Val>> = Vec::new();
        let mut finals: Vec<State> = Vec::new();
        for (di, &rev) in reverse.iter().enumerate() {
            let p = format!("{out}/dir{di}");
            let wd = self.take(&format!("{p}/W"), &w, 0, di)?;
            let rd = self.take(&format!("{p}/R"), &r, 0, di)?;
            // Input-side bias Wb + Rb; a GRU resetting after the linear map
            // keeps its Rb of the candidate gate on the recurrent side.
            let (in_bias, rec_bias) = match &b {
                None => (None, None),
                Some(b) => {
                    let bd = self.take(&format!("{p}/B"), b, 0, di)?;
                    let bd = self.reshaped(&format!("{p}/B2"), &bd, vec![2, g * h])?;
                    let wb = self.take(&format!("{p}/Wb"), &bd, 0, 0)?;
                    let rb = self.take(&format!("{p}/Rb"), &bd, 0, 1)?;
                    if before_reset {
                        let mask = |lo: usize, hi: usize| {
                            let v = (0..g * h).map(|i| (lo..hi).contains(&i) as u8 as f32);
                            Val::C(Rc::new(Const::f32(vec![g * h], v.collect())))
                        };
                        let rb_zr = self.binary_named(
                            &format!("{p}/Rb_zr"),
                            BinOp::Mul,
                            &rb,
                            &mask(0, 2 * h),
                        )?;
                        let rb_h = self.binary_named(
                            &format!("{p}/Rb_h"),
                            BinOp::Mul,
                            &rb,
                            &mask(2 * h, 3 * h),
                        )?;
                        let ib =
                            self.binary_named(&format!("{p}/bias"), BinOp::Add, &wb, &rb_zr)?;
                        (Some(ib), Some(rb_h))
                    } else {
                        let ib = self.binary_named(&format!("{p}/bias"), BinOp::Add, &wb, &rb)?;
                        (Some(ib), None)
                    }
                }
            };
            let xw = self.linear(&format!("{p}/xw"), &x2, &wd, in_bias.as_ref())?;
            let xw = self.reshaped(&format!("{p}/xw3"), &xw, vec![seq, batch, g * h])?;
            let mut st = State {
                h: match &h0 {
                    Some(v) => Some(self.take(&format!("{p}/h0"), v, 0, di)?),
                    None => None,
                },
                c: match &c0 {
                    Some(v) => Some(self.take(&format!("{p}/c0"), v, 0, di)?),
                    None => None,
                },
            };
            let peep_d = match &peep {
                Some(pv) => {
                    let pd = self.take(&format!("{p}/P"), pv, 0, di)?;
                    let pd = self.reshaped(&format!("{p}/P3"), &pd, vec![3, h])?;
                    let mut v = Vec::new();
                    for k in 0..3 {
                        v.push(self.take(&format!("{p}/P{k}"), &pd, 0, k)?);
                    }
                    Some(v)
                }
                None => None,
            };
            // The GRU's recurrent weights split into the update/reset rows
            // and the candidate's (which read the reset state).
            let (r_zr, r_h) = if cell == Cell::Gru && !before_reset {
                let r3 = self.reshaped(&format!("{p}/R3"), &rd, vec![3, h, h])?;
                let rz = self.take(&format!("{p}/Rz"), &r3, 0, 0)?;
                let rr = self.take(&format!("{p}/Rr"), &r3, 0, 1)?;
                let rh = self.take(&format!("{p}/Rh"), &r3, 0, 2)?;
                let rzr = self.concat_vals(&format!("{p}/Rzr"), &[rz, rr], 0)?;
                (Some(rzr), Some(rh))
            } else {
                (None, None)
            };
            let mut outs: Vec<Option<Val>> = vec![None; seq];
            let order: Vec<usize> = if rev {
                (0..seq).rev().collect()
            } else {
                (0..seq).collect()
            };
            for t in order {
                let s = format!("{p}/t{t}");
                let xt = self.take(&format!("{s}/xw"), &xw, 0, t)?;
                let act = &acts[di];
                st = match cell {
                    Cell::Rnn => {
                        let mut pre = xt;
                        if let Some(hp) = &st.h {
                            let hr = self.linear(&format!("{s}/hr"), hp, &rd, None)?;
                            pre = self.binary_named(&format!("{s}/pre"), BinOp::Add, &pre, &hr)?;
                        }
                        let pre = self.clipped(&format!("{s}/pre_clip"), &pre, clip)?;
                        State {
                            h: Some(self.activate(&format!("{s}/h"), &act[0], &pre)?),
                            c: None,
                        }
                    }
                    Cell::Lstm => {
                        let mut all = xt;
                        if let Some(hp) = &st.h {
                            let hr = self.linear(&format!("{s}/hr"), hp, &rd, None)?;
                            all =
                                self.binary_named(&format!("{s}/gates"), BinOp::Add, &all, &hr)?;
                        }
                        let gates = self.split_gates(&s, &all, batch, g, h)?;
                        let [mut gi, mut go, mut gf, gc] =
                            <[Val; 4]>::try_from(gates).map_err(|_| anyhow!("four gates"))?;
                        if let (Some(pp), Some(cp)) = (&peep_d, &st.c) {
                            let pi =
                                self.binary_named(&format!("{s}/pi"), BinOp::Mul, &pp[0], cp)?;
                            gi = self.binary_named(&format!("{s}/gi_p"), BinOp::Add, &gi, &pi)?;
                            let pf =
                                self.binary_named(&format!("{s}/pf"), BinOp::Mul, &pp[2], cp)?;
                            gf = self.binary_named(&format!("{s}/gf_p"), BinOp::Add, &gf, &pf)?;
                        }
                        let gi = self.clipped(&format!("{s}/gi_clip"), &gi, clip)?;
                        let gf = self.clipped(&format!("{s}/gf_clip"), &gf, clip)?;
                        let gc = self.clipped(&format!("{s}/gc_clip"), &gc, clip)?;
                        let i = self.activate(&format!("{s}/i"), &act[0], &gi)?;
                        let f = self.activate(&format!("{s}/f"), &act[0], &gf)?;
                        let cand = self.activate(&format!("{s}/cand"), &act[1], &gc)?;
                        let mut c = self.binary_named(&format!("{s}/ic"), BinOp::Mul, &i, &cand)?;
                        if let Some(cp) = &st.c {
                            let fc = self.binary_named(&format!("{s}/fc"), BinOp::Mul, &f, cp)?;
                            c = self.binary_named(&format!("{s}/c"), BinOp::Add, &fc, &c)?;
                        }
                        if let Some(pp) = &peep_d {
                            let po =
                                self.binary_named(&format!("{s}/po"), BinOp::Mul, &pp[1], &c)?;
                            go = self.binary_named(&format!("{s}/go_p"), BinOp::Add, &go, &po)?;
                        }
                        let go = self.clipped(&format!("{s}/go_clip"), &go, clip)?;
                        let o = self.activate(&format!("{s}/o"), &act[0], &go)?;
                        let hc = self.activate(&format!("{s}/hc"), &act[2], &c)?;
                        State {
                            h: Some(self.binary_named(&format!("{s}/h"), BinOp::Mul, &o, &hc)?),
                            c: Some(c),
                        }
                    }
                    Cell::Gru => {
                        let gates = self.split_gates(&s, &xt, batch, g, h)?;
                        let [xz, xr, xh] =
                            <[Val; 3]>::try_from(gates).map_err(|_| anyhow!("three gates"))?;
                        let (mut gz, mut gr, mut hh) = (xz, xr, None);
                        if let Some(hp) = &st.h {
                            let (rzr_w, with_h) = match &r_zr {
                                Some(w) => (w.clone(), false),
                                None => (rd.clone(), true),
                            };
                            let hr =
                                self.linear(&format!("{s}/hr"), hp, &rzr_w, rec_bias.as_ref())?;
                            let parts = self.split_gates(
                                &format!("{s}/hr"),
                                &hr,
                                batch,
                                if with_h { 3 } else { 2 },
                                h,
                            )?;
                            gz =
                                self.binary_named(&format!("{s}/gz"), BinOp::Add, &gz, &parts[0])?;
                            gr =
                                self.binary_named(&format!("{s}/gr"), BinOp::Add, &gr, &parts[1])?;
                            if with_h {
                                hh = Some(parts[2].clone());
                            }
                        } else if let Some(rb) = &rec_bias {
                            // Zero state: the candidate's recurrent term is Rbh alone.
                            let rb3 = self.reshaped(&format!("{s}/rbh3"), rb, vec![3, h])?;
                            hh = Some(self.take(&format!("{s}/rbh"), &rb3, 0, 2)?);
                        }
                        let gz = self.clipped(&format!("{s}/gz_clip"), &gz, clip)?;
                        let gr = self.clipped(&format!("{s}/gr_clip"), &gr, clip)?;
                        let z = self.activate(&format!("{s}/z"), &act[0], &gz)?;
                        let rg = self.activate(&format!("{s}/r"), &act[0], &gr)?;
                        let recur = if before_reset {
                            match hh {
                                Some(v) => Some(self.binary_named(
                                    &format!("{s}/rh"),
                                    BinOp::Mul,
                                    &rg,
                                    &v,
                                )?),
                                None => None,
                            }
                        } else {
                            match (&st.h, &r_h) {
                                (Some(hp), Some(rh)) => {
                                    let reset = self.binary_named(
                                        &format!("{s}/reset"),
                                        BinOp::Mul,
                                        &rg,
                                        hp,
                                    )?;
                                    Some(self.linear(&format!("{s}/rh"), &reset, rh, None)?)
                                }
                                _ => None,
                            }
                        };
                        let mut gh = xh;
                        if let Some(v) = recur {
                            gh = self.binary_named(&format!("{s}/gh"), BinOp::Add, &gh, &v)?;
                        }
                        let gh = self.clipped(&format!("{s}/gh_clip"), &gh, clip)?;
                        let cand = self.activate(&format!("{s}/cand"), &act[1], &gh)?;
                        // H = (1 - z) * cand + z * H_prev = cand + z * (H_prev - cand).
                        let diff = match &st.h {
                            Some(hp) => {
                                self.binary_named(&format!("{s}/diff"), BinOp::Sub, hp, &cand)?
                            }
                            None => self.binary_named(
                                &format!("{s}/diff"),
                                BinOp::Mul,
                                &cand,
                                &Val::C(Rc::new(Const::f32(vec![], vec![-1.0]))),
                            )?,
                        };
                        let zd = self.binary_named(&format!("{s}/zd"), BinOp::Mul, &z, &diff)?;
                        State {
                            h: Some(self.binary_named(
                                &format!("{s}/h"),
                                BinOp::Add,
                                &cand,
                                &zd,
                            )?),
                            c: None,
                        }
                    }
                };
                outs[t] = st.h.clone();
            }
            ys.push(
                outs.into_iter()
                    .map(|v| v.expect("every step ran"))
                    .collect(),
            );
            finals.push(st);
        }

        let used: Vec<Option<String>> = (0..3)
            .map(|k| {
                n.output
                    .get(k)
                    .filter(|o| !o.is_empty() && self.uses.contains_key(*o))
                    .cloned()
            })
            .collect();
        let used = |k: usize| used[k].clone();
        if let Some(name) = used(0) {
            let mut per_dir = Vec::new();
            for (di, steps) in ys.iter().enumerate() {
                let mut rows = Vec::new();
                for (t, v) in steps.iter().enumerate() {
                    rows.push(self.reshaped(
                        &format!("{out}/y{di}_{t}"),
                        v,
                        vec![1, 1, batch, h],
                    )?);
                }
                per_dir.push(self.concat_vals(&format!("{out}/y{di}"), &rows, 0)?);
            }
            let y = self.concat_vals(&format!("{out}/y"), &per_dir, 1)?;
            let y = if batch_major {
                self.permute_val(&format!("{out}/y_batch_major"), &y, &[2, 0, 1, 3])?
            } else {
                y
            };
            self.set(&name, y);
        }
        for (k, which) in [(1, "h"), (2, "c")] {
            let Some(name) = used(k) else {
                continue;
            };
            if which == "c" && cell != Cell::Lstm {
                bail!("{} has no output {k}", n.op_type);
            }
            let mut per_dir = Vec::new();
            for (di, st) in finals.iter().enumerate() {
                let v = if which == "h" { &st.h } else { &st.c };
                let v = v.clone().expect("at least one step ran");
                per_dir.push(self.reshaped(
                    &format!("{out}/{which}{di}"),
                    &v,
                    vec![1, batch, h],
                )?);
            }
            let y = self.concat_vals(&format!("{out}/last_{which}"), &per_dir, 0)?;
            let y = if batch_major {
                self.permute_val(&format!("{out}/last_{which}_bm"), &y, &[1, 0, 2])?
            } else {
                y
            };
            self.set(&name, y);
        }
        Ok(())
    }

    /// `[batch, gates * h]` as the `gates` values `[batch, h]`, in order.
    fn split_gates(
        &mut self,
        prefix: &str,
        v: &Val,
        batch: usize,
        gates: usize,
        h: usize,
    ) -> Result<Vec<Val>> {
        let v3 = self.reshaped(&format!("{prefix}/gates3"), v, vec![batch, gates, h])?;
        (0..gates)
            .map(|k| self.take(&format!("{prefix}/gate{k}"), &v3, 1, k))
            .collect()
    }

    /// `v` clipped to `[-c, c]` (no op without a clip).
    fn clipped(&mut self, out: &str, v: &Val, clip: Option<f32>) -> Result<Val> {
        match clip {
            None => Ok(v.clone()),
            Some(c) => {
                self.clip(out, v, -c, c)?;
                Ok(self.vals[out].clone())
            }
        }
    }

    /// One of the activation functions the recurrent ops name.
    fn activate(&mut self, out: &str, f: &Act, x: &Val) -> Result<Val> {
        let code = match f.name.as_str() {
            "sigmoid" => Some(OpCode::Logistic),
            "tanh" => Some(OpCode::Tanh),
            "relu" => Some(OpCode::Relu),
            _ => None,
        };
        if let Some(code) = code {
            self.unary(out, code, vec![], x)?;
            return Ok(self.vals[out].clone());
        }
        let k = |v: f32| Val::C(Rc::new(Const::f32(vec![], vec![v])));
        match f.name.as_str() {
            "leakyrelu" => {
                self.unary(out, OpCode::LeakyRelu, vec![f32_bits(f.alpha)], x)?;
                Ok(self.vals[out].clone())
            }
            "hardsigmoid" => self.unary_f32_with(out, 31, f.alpha, f.beta, x),
            "softsign" => self.unary_f32_with(out, 23, 0.0, 0.0, x),
            "softplus" => self.unary_f32_with(out, 22, 0.0, 0.0, x),
            "elu" => self.unary_f32_with(out, 24, f.alpha, 0.0, x),
            "thresholdedrelu" => self.unary_f32_with(out, 27, f.alpha, 0.0, x),
            "affine" => {
                let m = self.binary_named(&format!("{out}/scaled"), BinOp::Mul, x, &k(f.alpha))?;
                self.binary_named(out, BinOp::Add, &m, &k(f.beta))
            }
            "scaledtanh" => {
                let m = self.binary_named(&format!("{out}/in"), BinOp::Mul, x, &k(f.beta))?;
                self.unary(&format!("{out}/tanh"), OpCode::Tanh, vec![], &m)?;
                let t = self.vals[&format!("{out}/tanh")].clone();
                self.binary_named(out, BinOp::Mul, &t, &k(f.alpha))
            }
            other => bail!("activation '{other}' is not supported"),
        }
    }

    /// `x W^T (+ b)` for `x` `[m, k]` and `W` `[n, k]`: FULLY_CONNECTED when
    /// `W` and `b` are constants, BATCH_MATMUL otherwise.
    fn linear(&mut self, out: &str, x: &Val, w: &Val, b: Option<&Val>) -> Result<Val> {
        match (w, b) {
            (Val::C(wc), None | Some(Val::C(_))) => {
                let xi = self.plain(x)?;
                if self.g.tensors[xi].dtype != DType::F32 {
                    bail!("supported for float tensors only");
                }
                let m = self.g.tensors[xi].shape[0];
                let (nn, k) = (wc.dims[0], wc.dims[1]);
                let wid = self.const_tensor(
                    &format!("{out}/weights"),
                    &Const::f32(vec![nn, k], wc.as_f32()),
                )?;
                let bid = match b {
                    Some(Val::C(bc)) => Some(self.const_tensor(
                        &format!("{out}/bias"),
                        &Const::f32(vec![nn], bc.as_f32()),
                    )?),
                    _ => None,
                };
                let y = self.new_tensor(out, DType::F32, vec![m, nn], Quant::None);
                self.emit_opt(
                    OpCode::FullyConnected,
                    vec![0, 1],
                    vec![Some(xi), Some(wid), bid],
                    vec![y],
                );
                Ok(Val::T(TVal {
                    id: y,
                    layout: Layout::Plain,
                }))
            }
            _ => {
                self.gemm_general(out, x, w, b, (false, true), 1.0, 1.0)?;
                Ok(self.vals[out].clone())
            }
        }
    }

    /// `v[index]` along `axis`, that axis removed.
    fn take(&mut self, out: &str, v: &Val, axis: usize, index: usize) -> Result<Val> {
        let idx = Const::i64(vec![], vec![index as i64]);
        if let Val::C(c) = v {
            return Ok(Val::C(Rc::new(fold::gather(c, &idx, axis)?)));
        }
        let xi = self.plain(v)?;
        let mut ys = self.g.tensors[xi].shape.clone();
        ys.remove(axis);
        let ii = self.const_tensor(&format!("{out}/index"), &idx)?;
        let y = self.out_tensor(out, xi, ys);
        self.emit(OpCode::Gather, vec![i32_of(axis)?], &[xi, ii], y);
        Ok(Val::T(TVal {
            id: y,
            layout: Layout::Plain,
        }))
    }

    /// `concat` returning the value (one part: that part).
    fn concat_vals(&mut self, out: &str, parts: &[Val], axis: i64) -> Result<Val> {
        if let [one] = parts {
            return Ok(one.clone());
        }
        self.concat(out, parts, axis)?;
        Ok(self.vals[out].clone())
    }
}

/// The activations of each direction: the `activations` attribute (or the
/// op's defaults), with `activation_alpha`/`activation_beta` consumed in
/// order by the functions that take them.
fn activations(a: &Attrs<'_>, cell: Cell, dirs: usize) -> Result<Vec<Vec<Act>>> {
    let per_dir = cell.default_acts().len();
    let names: Vec<String> = match a.get("activations") {
        Some(at) => at
            .strings
            .iter()
            .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
            .collect(),
        None => cell
            .default_acts()
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect(),
    };
    let names = if names.len() == per_dir && dirs == 2 {
        [names.clone(), names].concat()
    } else {
        names
    };
    if names.len() != per_dir * dirs {
        bail!(
            "activations must list {} functions ({per_dir} per direction), got {}",
            per_dir * dirs,
            names.len()
        );
    }
    let floats = |k: &str| a.get(k).map(|at| at.floats.clone()).unwrap_or_default();
    let (alphas, betas) = (floats("activation_alpha"), floats("activation_beta"));
    let (mut ai, mut bi) = (alphas.iter(), betas.iter());
    let mut acts = Vec::new();
    for name in names {
        let (da, db, takes_a, takes_b) = match name.as_str() {
            "leakyrelu" => (0.01, 0.0, true, false),
            "hardsigmoid" => (0.2, 0.5, true, true),
            "elu" | "thresholdedrelu" => (1.0, 0.0, true, false),
            "affine" | "scaledtanh" => (1.0, 0.0, true, true),
            _ => (0.0, 0.0, false, false),
        };
        let alpha = if takes_a {
            ai.next().copied().unwrap_or(da)
        } else {
            da
        };
        let beta = if takes_b {
            bi.next().copied().unwrap_or(db)
        } else {
            db
        };
        acts.push(Act { name, alpha, beta });
    }
    Ok(acts.chunks(per_dir).map(|c| c.to_vec()).collect())
}
