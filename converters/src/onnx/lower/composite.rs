//! ONNX operators with no runtime op of their own, lowered onto several
//! existing ones: Mean, Trilu, Hardmax, EyeLike, Shrink, IsInf,
//! MeanVarianceNormalization, OneHot, GatherElements and LpPool, plus
//! DepthToSpace in CRD order and Gemm in its general form.
//!
//! Each is written with the ops a runtime already runs fast (masks built at
//! conversion, WHERE, GATHER, pooling), so none adds code to the device.

use super::*;

/// A scalar float constant.
fn kf(v: f32) -> Val {
    Val::C(Rc::new(Const::f32(vec![], vec![v])))
}

/// A scalar int64 constant.
fn ki(v: i64) -> Val {
    Val::C(Rc::new(Const::i64(vec![], vec![v])))
}

/// `[len, 1, .., 1]` (`ones` trailing ones) holding `0..len`: an index
/// along one axis, to compare against.
fn iota(len: usize, ones: usize) -> Val {
    let mut dims = vec![len];
    dims.extend(std::iter::repeat_n(1, ones));
    Val::C(Rc::new(Const::i64(dims, (0..len as i64).collect())))
}

impl Lower<'_> {
    /// Lowers `n` if it is one of this module's operators; false if not.
    pub(super) fn composite(
        &mut self,
        n: &NodeProto,
        a: &Attrs<'_>,
        ins: &[Option<Val>],
    ) -> Result<bool> {
        let out = n.output.first().cloned().unwrap_or_default();
        let input = |k: usize| -> Result<Val> {
            ins.get(k)
                .cloned()
                .flatten()
                .ok_or_else(|| anyhow!("required input {k} is missing"))
        };
        let opt = |k: usize| -> Option<Val> { ins.get(k).cloned().flatten() };
        let y = match n.op_type.as_str() {
            "Mean" => {
                let xs: Vec<Val> = ins.iter().flatten().cloned().collect();
                let Some(first) = xs.first() else {
                    bail!("Mean needs at least one input");
                };
                self.float_only(first)?;
                let mut acc = first.clone();
                for (k, x) in xs.iter().enumerate().skip(1) {
                    acc = self.binary_named(&format!("{out}/sum{k}"), BinOp::Add, &acc, x)?;
                }
                self.binary_named(&out, BinOp::Div, &acc, &kf(xs.len() as f32))?
            }
            "Trilu" => self.trilu(&out, a, &input(0)?, opt(1))?,
            "Hardmax" => self.hardmax(&out, a, &input(0)?)?,
            "EyeLike" => {
                let x = input(0)?;
                let d = self.shape_of(&x);
                let &[rows, cols] = d.as_slice() else {
                    bail!("the input must be 2-D, got shape {d:?}");
                };
                let k = a.int("k", 0)?;
                let ty = match a.get("dtype") {
                    Some(_) => a.int("dtype", 0)? as i32,
                    None => self.type_of(&x),
                };
                let eye: Vec<i64> = (0..rows as i64)
                    .flat_map(|i| (0..cols as i64).map(move |j| (j - i == k) as i64))
                    .collect();
                Val::C(Rc::new(Const::i64(d, eye).cast(ty)?))
            }
            "Shrink" => {
                let x = input(0)?;
                self.float_only(&x)?;
                let lambd = a.float("lambd", 0.5)?;
                let bias = a.float("bias", 0.0)?;
                let below =
                    self.binary_named(&format!("{out}/below"), BinOp::Less, &x, &kf(-lambd))?;
                let above =
                    self.binary_named(&format!("{out}/above"), BinOp::Greater, &x, &kf(lambd))?;
                let raised =
                    self.binary_named(&format!("{out}/raised"), BinOp::Add, &x, &kf(bias))?;
                let lowered =
                    self.binary_named(&format!("{out}/lowered"), BinOp::Sub, &x, &kf(bias))?;
                let upper = self.select(&format!("{out}/upper"), &above, &lowered, &kf(0.0))?;
                self.select(&out, &below, &raised, &upper)?
            }
            "IsInf" => {
                let x = input(0)?;
                self.float_only(&x)?;
                let pos = a.int("detect_positive", 1)? != 0;
                let neg = a.int("detect_negative", 1)? != 0;
                let mut hits = Vec::new();
                if pos {
                    hits.push(self.binary_named(
                        &format!("{out}/pos"),
                        BinOp::Equal,
                        &x,
                        &kf(f32::INFINITY),
                    )?);
                }
                if neg {
                    hits.push(self.binary_named(
                        &format!("{out}/neg"),
                        BinOp::Equal,
                        &x,
                        &kf(f32::NEG_INFINITY),
                    )?);
                }
                match hits.as_slice() {
                    [] => {
                        let d = self.shape_of(&x);
                        let none = Const::i64(d.clone(), vec![0; numel(&d)?]).cast(dt::BOOL)?;
                        Val::C(Rc::new(none))
                    }
                    [one] => one.clone(),
                    [p, q] => self.binary_named(&out, BinOp::Or, p, q)?,
                    _ => unreachable!("at most two"),
                }
            }
            "MeanVarianceNormalization" => {
                let x = input(0)?;
                let axes = a.ints("axes")?.unwrap_or_else(|| vec![0, 2, 3]);
                // ONNX divides by `sqrt(var) + 1e-9`; `sqrt(var + 1e-18)`
                // is the same to f32 precision, and the same 1e-9 at var = 0.
                self.standardize(&out, &x, axes, 1e-18)?.0
            }
            "OneHot" => self.one_hot(&out, a, &input(0)?, &input(1)?, &input(2)?)?,
            "GatherElements" => self.gather_elements(&out, a, &input(0)?, &input(1)?)?,
            "LpPool" => self.lp_pool(n, a, &input(0)?)?,
            "Einsum" => {
                let eq = a.string("equation", "")?;
                let xs: Vec<Val> = ins.iter().flatten().cloned().collect();
                self.einsum(&out, &eq, &xs)?
            }
            "ScatterND" | "ScatterElements" | "Scatter" => {
                let elements = n.op_type != "ScatterND";
                self.scatter(&out, a, elements, &input(0)?, &input(1)?, &input(2)?)?
            }
            "LSTM" | "GRU" | "RNN" => {
                self.recurrent(n, a, ins)?;
                return Ok(true);
            }
            _ => return Ok(false),
        };
        self.set(&out, y);
        Ok(true)
    }

    fn float_only(&self, x: &Val) -> Result<()> {
        if self.type_of(x) != dt::FLOAT {
            bail!("supported for float tensors only");
        }
        Ok(())
    }

    /// `where(c, x, y)` with numpy broadcasting; constant `x`/`y` take the
    /// other branch's type.
    pub(super) fn select(&mut self, out: &str, c: &Val, x: &Val, y: &Val) -> Result<Val> {
        let ty = if matches!(x, Val::C(_)) {
            self.type_of(y)
        } else {
            self.type_of(x)
        };
        let cid = self.plain(c)?;
        let mut ids = vec![cid];
        for v in [x, y] {
            let id = match v {
                Val::C(k) if k.ty != ty => self.const_tensor("const", &k.cast(ty)?)?,
                _ => self.plain(v)?,
            };
            ids.push(id);
        }
        let shape = fold::broadcast(
            &fold::broadcast(&self.shape_of(c), &self.shape_of(x))?,
            &self.shape_of(y),
        )?;
        let dtype = self.g.tensors[ids[1]].dtype;
        let yid = self.new_tensor(out, dtype, shape, Quant::None);
        self.emit(OpCode::Where, vec![], &ids, yid);
        Ok(Val::T(TVal {
            id: yid,
            layout: Layout::Plain,
        }))
    }

    /// ArgMax/ArgMin along `axis` (int64 indices).
    pub(super) fn arg_reduce(
        &mut self,
        out: &str,
        x: &Val,
        axis: usize,
        keep: bool,
        max: bool,
        last: bool,
    ) -> Result<Val> {
        let xi = self.plain(x)?;
        let d = self.g.tensors[xi].shape.clone();
        let mut ys: Vec<usize> = Vec::new();
        for (i, &s) in d.iter().enumerate() {
            if i != axis {
                ys.push(s);
            } else if keep {
                ys.push(1);
            }
        }
        let y = self.new_tensor(out, DType::I64, ys, Quant::None);
        let attrs = vec![max as i32, i32_of(axis)?, keep as i32, last as i32];
        self.emit(OpCode::ArgReduce, attrs, &[xi], y);
        Ok(Val::T(TVal {
            id: y,
            layout: Layout::Plain,
        }))
    }

    /// `reshape` returning the new value (a constant stays one).
    pub(super) fn reshaped(&mut self, out: &str, x: &Val, dims: Vec<usize>) -> Result<Val> {
        if let Val::C(c) = x {
            if numel(&dims)? != c.numel() {
                bail!("cannot reshape {:?} to {dims:?}", c.dims);
            }
            let mut c = (**c).clone();
            c.dims = dims;
            return Ok(Val::C(Rc::new(c)));
        }
        self.reshape(out, x, dims)?;
        Ok(self.vals[out].clone())
    }

    /// `x` (any type) as int64.
    fn as_i64(&mut self, out: &str, x: &Val) -> Result<Val> {
        self.cast(out, x, dt::INT64)?;
        Ok(self.vals[out].clone())
    }

    /// A one-input element-wise UNARY op (`f` as in `unary_fn`), in `x`'s layout.
    pub(super) fn unary_f32(&mut self, out: &str, f: i32, x: &Val) -> Result<Val> {
        self.unary_f32_with(out, f, 0.0, 0.0, x)
    }

    /// `unary_f32` with the function's two parameters.
    pub(super) fn unary_f32_with(
        &mut self,
        out: &str,
        f: i32,
        alpha: f32,
        beta: f32,
        x: &Val,
    ) -> Result<Val> {
        let t = self.tensor(x)?;
        if self.g.tensors[t.id].dtype != DType::F32 {
            bail!("supported for float tensors only");
        }
        let shape = self.g.tensors[t.id].shape.clone();
        let y = self.new_tensor(out, DType::F32, shape, Quant::None);
        self.emit(
            OpCode::Unary,
            vec![f, f32_bits(alpha), f32_bits(beta)],
            &[t.id],
            y,
        );
        Ok(Val::T(TVal {
            id: y,
            layout: t.layout,
        }))
    }

    /// Trilu: `x` with the elements off the kept triangle of its last two
    /// axes zeroed. The mask compares a constant `column - row` table with
    /// `k`, so a run-time `k` works too.
    fn trilu(&mut self, out: &str, a: &Attrs<'_>, x: &Val, k: Option<Val>) -> Result<Val> {
        let d = self.shape_of(x);
        let r = d.len();
        if r < 2 {
            bail!("the input must have rank 2 or more, got shape {d:?}");
        }
        let (rows, cols) = (d[r - 2], d[r - 1]);
        let upper = a.int("upper", 1)? != 0;
        let k = match k {
            None => ki(0),
            Some(k) => {
                let kd = self.shape_of(&k);
                if numel(&kd)? != 1 || kd.len() > 1 {
                    bail!("k must be a scalar, got shape {kd:?}");
                }
                if !value::is_int(self.type_of(&k)) {
                    bail!("k must be an integer");
                }
                match k {
                    Val::C(c) => ki(c.as_i64()[0]),
                    other => {
                        let k64 = self.as_i64(&format!("{out}/k"), &other)?;
                        self.reshaped(&format!("{out}/k_scalar"), &k64, vec![])?
                    }
                }
            }
        };
        let diagonal: Vec<i64> = (0..rows as i64)
            .flat_map(|i| (0..cols as i64).map(move |j| j - i))
            .collect();
        let diagonal = Val::C(Rc::new(Const::i64(vec![rows, cols], diagonal)));
        let op = if upper {
            BinOp::GreaterOrEqual
        } else {
            BinOp::LessOrEqual
        };
        let keep = self.binary_named(&format!("{out}/keep"), op, &diagonal, &k)?;
        self.select(out, &keep, x, &ki(0))
    }

    /// Hardmax: 1 at the first maximum along `axis`, 0 elsewhere.
    fn hardmax(&mut self, out: &str, a: &Attrs<'_>, x: &Val) -> Result<Val> {
        let d = self.shape_of(x);
        if d.is_empty() {
            bail!("the input must have rank 1 or more");
        }
        if numel(&d)? == 0 {
            bail!("empty tensors are not supported");
        }
        let ty = self.type_of(x);
        self.float_only(x)?;
        // Before opset 13 the input is seen as 2-D `[outer, inner]` split at `axis`.
        let (x2, axis) = if self.opset < 13 {
            let axis = flatten_axis(a.int("axis", 1)?, d.len())?;
            let flat = vec![numel(&d[..axis])?, numel(&d[axis..])?];
            (self.reshaped(&format!("{out}/2d"), x, flat)?, 1)
        } else {
            (x.clone(), axis_of(a.int("axis", -1)?, d.len())?)
        };
        let d2 = self.shape_of(&x2);
        let first = self.arg_reduce(&format!("{out}/argmax"), &x2, axis, true, true, false)?;
        let ones = d2.len() - axis - 1;
        let hit = self.binary_named(
            &format!("{out}/hit"),
            BinOp::Equal,
            &first,
            &iota(d2[axis], ones),
        )?;
        let name = if self.opset < 13 {
            format!("{out}/hard")
        } else {
            out.to_string()
        };
        self.cast(&name, &hit, ty)?;
        let y = self.vals[&name].clone();
        if self.opset < 13 {
            return self.reshaped(out, &y, d);
        }
        Ok(y)
    }

    /// OneHot: `values[1]` where the (wrapped) index equals the position
    /// along the new axis, `values[0]` elsewhere. `depth` and `values` must
    /// be constants (they fix the output's shape and type).
    fn one_hot(
        &mut self,
        out: &str,
        a: &Attrs<'_>,
        indices: &Val,
        depth: &Val,
        values: &Val,
    ) -> Result<Val> {
        let Val::C(depth) = depth else {
            bail!("depth must be a constant (it sets the output's shape)");
        };
        if depth.numel() != 1 {
            bail!("depth must be a scalar, got shape {:?}", depth.dims);
        }
        let n = depth.as_f64()[0];
        if !(1.0..=(1u64 << 24) as f64).contains(&n) {
            bail!("depth {n} must be from 1 to 2^24");
        }
        let n = n as usize;
        let Val::C(values) = values else {
            bail!("values must be a constant [off_value, on_value]");
        };
        if values.numel() != 2 {
            bail!(
                "values must hold 2 elements [off_value, on_value], got shape {:?}",
                values.dims
            );
        }
        let d = self.shape_of(indices);
        let axis = axis_of(a.int("axis", -1)?, d.len() + 1)?;
        let idx = self.as_i64(&format!("{out}/indices"), indices)?;
        let negative = self.binary_named(&format!("{out}/negative"), BinOp::Less, &idx, &ki(0))?;
        let shifted =
            self.binary_named(&format!("{out}/shifted"), BinOp::Add, &idx, &ki(n as i64))?;
        let wrapped = self.select(&format!("{out}/wrapped"), &negative, &shifted, &idx)?;
        let mut dims = d.clone();
        dims.insert(axis, 1);
        let wrapped = self.reshaped(&format!("{out}/unsqueezed"), &wrapped, dims)?;
        let hit = self.binary_named(
            &format!("{out}/hit"),
            BinOp::Equal,
            &wrapped,
            &iota(n, d.len() - axis),
        )?;
        let pick = |k: usize| Val::C(Rc::new(values.gather_flat(vec![], &[k])));
        self.select(out, &hit, &pick(1), &pick(0))
    }

    /// GatherElements: a GATHER on the flattened data with flat indices,
    /// `index * stride(axis)` plus the constant offset of each position's
    /// other coordinates. Constant indices fold to flat ones; run-time
    /// indices out of range give zeros (as GATHER does).
    fn gather_elements(&mut self, out: &str, a: &Attrs<'_>, data: &Val, idx: &Val) -> Result<Val> {
        let dd = self.shape_of(data);
        let id = self.shape_of(idx);
        let r = dd.len();
        if r == 0 || id.len() != r {
            bail!("data {dd:?} and indices {id:?} must have the same rank, at least 1");
        }
        let axis = axis_of(a.int("axis", 0)?, r)?;
        if (0..r).any(|i| i != axis && id[i] > dd[i]) {
            bail!("indices {id:?} are larger than data {dd:?} off axis {axis}");
        }
        if !value::is_int(self.type_of(idx)) {
            bail!("indices must be integers");
        }
        let total = numel(&dd)?;
        let count = numel(&id)?;
        if total == 0 || count == 0 {
            bail!("empty tensors are not supported");
        }
        let ds = fold::strides(&dd);
        let is = fold::strides(&id);
        // The flat offset of every index position, its own axis left out.
        let base: Vec<i64> = (0..count)
            .map(|p| {
                (0..r)
                    .filter(|&i| i != axis)
                    .map(|i| ((p / is[i]) % id[i] * ds[i]) as i64)
                    .sum()
            })
            .collect();
        let len = dd[axis] as i64;
        let step = ds[axis] as i64;
        let flat = match idx {
            Val::C(c) => {
                let mut flat = Vec::with_capacity(count);
                for (&j, &b) in c.as_i64().iter().zip(&base) {
                    if !(-len..len).contains(&j) {
                        bail!("index {j} is out of range for axis {axis} of size {len}");
                    }
                    flat.push(b + j.rem_euclid(len) * step);
                }
                Val::C(Rc::new(Const::i64(id.clone(), flat)))
            }
            _ => {
                let j = self.as_i64(&format!("{out}/indices"), idx)?;
                let negative =
                    self.binary_named(&format!("{out}/negative"), BinOp::Less, &j, &ki(0))?;
                let shifted =
                    self.binary_named(&format!("{out}/shifted"), BinOp::Add, &j, &ki(len))?;
                let j = self.select(&format!("{out}/wrapped"), &negative, &shifted, &j)?;
                let low =
                    self.binary_named(&format!("{out}/low_ok"), BinOp::GreaterOrEqual, &j, &ki(0))?;
                let high =
                    self.binary_named(&format!("{out}/high_ok"), BinOp::Less, &j, &ki(len))?;
                let ok = self.binary_named(&format!("{out}/in_range"), BinOp::And, &low, &high)?;
                let along =
                    self.binary_named(&format!("{out}/along"), BinOp::Mul, &j, &ki(step))?;
                let base = Val::C(Rc::new(Const::i64(id.clone(), base)));
                let flat = self.binary_named(&format!("{out}/flat"), BinOp::Add, &along, &base)?;
                // `total` is past the end: GATHER gives zeros there.
                self.select(&format!("{out}/checked"), &ok, &flat, &ki(total as i64))?
            }
        };
        let flat_data = self.reshaped(&format!("{out}/flat_data"), data, vec![total])?;
        let xi = self.plain(&flat_data)?;
        let fi = self.plain(&flat)?;
        let y = self.out_tensor(out, xi, id);
        self.emit(OpCode::Gather, vec![0], &[xi, fi], y);
        Ok(Val::T(TVal {
            id: y,
            layout: Layout::Plain,
        }))
    }

    /// Einsum of one or two float operands without ellipses or repeated
    /// letters in one operand: letters summed away alone are reduced first,
    /// then the two operands are laid out as `[batch, free, contracted]` and
    /// `[batch, contracted, free]` for one BATCH_MATMUL, whose result is
    /// transposed to the output's order.
    fn einsum(&mut self, out: &str, equation: &str, xs: &[Val]) -> Result<Val> {
        let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
        if eq.contains("...") {
            bail!("Einsum with an ellipsis ('{equation}') is not supported");
        }
        let (lhs, rhs) = match eq.split_once("->") {
            Some((l, r)) => (l.to_string(), Some(r.to_string())),
            None => (eq.clone(), None),
        };
        let terms: Vec<Vec<char>> = lhs.split(',').map(|t| t.chars().collect()).collect();
        if terms.len() != xs.len() || !(1..=2).contains(&xs.len()) {
            bail!(
                "equation '{equation}' has {} operands, the node {}; one or two are supported",
                terms.len(),
                xs.len()
            );
        }
        let count = |c: char| terms.iter().flatten().filter(|&&d| d == c).count();
        let outs: Vec<char> = match rhs {
            Some(r) => r.chars().collect(),
            None => {
                let mut once: Vec<char> = terms
                    .iter()
                    .flatten()
                    .copied()
                    .filter(|&c| count(c) == 1)
                    .collect();
                once.sort_unstable();
                once
            }
        };
        let mut size = std::collections::HashMap::new();
        for (t, x) in terms.iter().zip(xs) {
            self.float_only(x)?;
            let d = self.shape_of(x);
            if d.len() != t.len() {
                bail!(
                    "operand '{}' has rank {}, the value {d:?}",
                    t.iter().collect::<String>(),
                    t.len()
                );
            }
            for (i, &c) in t.iter().enumerate() {
                if !c.is_ascii_alphabetic() {
                    bail!("'{c}' in equation '{equation}' is not a letter");
                }
                if t[..i].contains(&c) {
                    bail!("repeated letter '{c}' in one operand (a diagonal) is not supported");
                }
                if *size.entry(c).or_insert(d[i]) != d[i] {
                    bail!("letter '{c}' has sizes {} and {}", size[&c], d[i]);
                }
            }
        }
        for &c in &outs {
            if !size.contains_key(&c) || outs.iter().filter(|&&d| d == c).count() > 1 {
                bail!("output letter '{c}' must appear once, and in an operand");
            }
        }
        // Letters only one operand has and the output lacks are summed first.
        let mut ops: Vec<(Val, Vec<char>)> = Vec::new();
        for (k, (t, x)) in terms.iter().zip(xs).enumerate() {
            let others: Vec<char> = terms
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != k)
                .flat_map(|(_, u)| u.clone())
                .collect();
            let keep = |c: &char| outs.contains(c) || others.contains(c);
            let axes: Vec<i64> = (0..t.len())
                .filter(|&i| !keep(&t[i]))
                .map(|i| i as i64)
                .collect();
            if axes.is_empty() {
                ops.push((x.clone(), t.clone()));
            } else {
                let name = format!("{out}/sum{k}");
                self.reduce(&name, 0, x, axes, false, false)?;
                ops.push((
                    self.vals[&name].clone(),
                    t.iter().copied().filter(keep).collect(),
                ));
            }
        }
        let order_of = |from: &[char], to: &[char]| -> Vec<usize> {
            to.iter()
                .map(|c| from.iter().position(|d| d == c).expect("present"))
                .collect()
        };
        if let [(x, t)] = &ops[..] {
            return self.permute_if(out, x, &order_of(t, &outs));
        }
        let (a, ta) = ops[0].clone();
        let (b, tb) = ops[1].clone();
        let batch: Vec<char> = outs
            .iter()
            .copied()
            .filter(|c| ta.contains(c) && tb.contains(c))
            .collect();
        let free_a: Vec<char> = ta.iter().copied().filter(|c| !tb.contains(c)).collect();
        let free_b: Vec<char> = tb.iter().copied().filter(|c| !ta.contains(c)).collect();
        let contract: Vec<char> = ta
            .iter()
            .copied()
            .filter(|c| tb.contains(c) && !outs.contains(c))
            .collect();
        let prod = |cs: &[char]| cs.iter().map(|c| size[c]).product::<usize>();
        let (nb, fa, fb, k) = (prod(&batch), prod(&free_a), prod(&free_b), prod(&contract));
        let a_order: Vec<char> = [&batch[..], &free_a, &contract].concat();
        let b_order: Vec<char> = [&batch[..], &contract, &free_b].concat();
        let a2 = self.permute_if(&format!("{out}/a_t"), &a, &order_of(&ta, &a_order))?;
        let a3 = self.reshaped(&format!("{out}/a3"), &a2, vec![nb, fa, k])?;
        let b2 = self.permute_if(&format!("{out}/b_t"), &b, &order_of(&tb, &b_order))?;
        let b3 = self.reshaped(&format!("{out}/b3"), &b2, vec![nb, k, fb])?;
        let prod_name = format!("{out}/product");
        self.batch_matmul(&prod_name, &a3, &b3)?;
        let c = self.vals[&prod_name].clone();
        let c_order: Vec<char> = [&batch[..], &free_a, &free_b].concat();
        let cd: Vec<usize> = c_order.iter().map(|ch| size[ch]).collect();
        let c = self.reshaped(&format!("{out}/unflat"), &c, cd)?;
        self.permute_if(out, &c, &order_of(&c_order, &outs))
    }

    /// `permute_val`, or `x` itself for the identity permutation.
    fn permute_if(&mut self, out: &str, x: &Val, perm: &[usize]) -> Result<Val> {
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(x.clone());
        }
        self.permute_val(out, x, perm)
    }

    /// ScatterND / ScatterElements with constant indices. All constant (the
    /// masks exporters build, as Swin's attention mask): computed here, with
    /// any reduction. Otherwise (reduction `none`): `where(written, updates
    /// gathered to their targets, data)`, the mask and the gather map being
    /// constants.
    fn scatter(
        &mut self,
        out: &str,
        a: &Attrs<'_>,
        elements: bool,
        data: &Val,
        idx: &Val,
        updates: &Val,
    ) -> Result<Val> {
        let Val::C(ic) = idx else {
            bail!("the indices must be constant");
        };
        let (dd, ud) = (self.shape_of(data), self.shape_of(updates));
        let targets = scatter_targets(&dd, &ic.dims, &ic.as_i64(), &ud, elements, a)?;
        let reduction = a.string("reduction", "none")?;
        if let (Val::C(dc), Val::C(uc)) = (data, updates) {
            return Ok(Val::C(Rc::new(scatter_const(
                dc, uc, &targets, &reduction,
            )?)));
        }
        if reduction != "none" {
            bail!("reduction '{reduction}' needs constant data and updates");
        }
        let total = numel(&dd)?;
        let mut writer = vec![-1i64; total];
        for (u, &t) in targets.iter().enumerate() {
            writer[t] = u as i64; // duplicates: the last write wins
        }
        let written: Vec<i64> = writer.iter().map(|&w| (w >= 0) as i64).collect();
        let mask = Const::i64(dd.clone(), written).cast(dt::BOOL)?;
        let map = Const::i64(dd.clone(), writer.iter().map(|&w| w.max(0)).collect());
        let flat = self.reshaped(&format!("{out}/updates_flat"), updates, vec![numel(&ud)?])?;
        let fi = self.plain(&flat)?;
        let mi = self.const_tensor(&format!("{out}/map"), &map)?;
        let gathered = self.out_tensor(&format!("{out}/placed"), fi, dd);
        self.emit(OpCode::Gather, vec![0], &[fi, mi], gathered);
        let placed = Val::T(TVal {
            id: gathered,
            layout: Layout::Plain,
        });
        self.select(out, &Val::C(Rc::new(mask)), &placed, data)
    }

    /// LpPool: `(sum over the window of |x|^p)^(1/p)`, the sum being an
    /// AveragePool that counts the zero padding, times the window size.
    fn lp_pool(&mut self, n: &NodeProto, a: &Attrs<'_>, x: &Val) -> Result<Val> {
        let out = n.output.first().cloned().unwrap_or_default();
        self.float_only(x)?;
        let p = a.int("p", 2)?;
        if !(1..=64).contains(&p) {
            bail!("p must be from 1 to 64, got {p}");
        }
        let kernel = a
            .ints("kernel_shape")?
            .ok_or_else(|| anyhow!("missing kernel_shape"))?;
        let area = kernel.iter().product::<i64>() as f32;
        let powed = match p {
            2 => self.binary_named(&format!("{out}/pow"), BinOp::Mul, x, x)?,
            _ => {
                let abs = self.unary_f32(&format!("{out}/abs"), 0, x)?;
                if p == 1 {
                    abs
                } else {
                    self.binary_named(&format!("{out}/pow"), BinOp::Pow, &abs, &kf(p as f32))?
                }
            }
        };
        let mean_name = format!("{out}/window_mean");
        let mut avg = n.clone();
        avg.op_type = "AveragePool".into();
        avg.output = vec![mean_name.clone()];
        avg.attribute.retain(|attr| attr.name != "p");
        avg.attribute.push(AttributeProto {
            name: "count_include_pad".into(),
            r#type: at::INT,
            i: 1,
            ..Default::default()
        });
        if self.shape_of(&powed).len() == 3 {
            self.one_d(&avg, &[Some(powed)])?;
        } else {
            let attrs = avg.attribute.clone();
            self.pool(&avg, &Attrs(&attrs), &powed)?;
        }
        let mean = self.vals[&mean_name].clone();
        let sum = self.binary_named(&format!("{out}/sum"), BinOp::Mul, &mean, &kf(area))?;
        Ok(match p {
            1 => sum,
            2 => self.unary_f32(&out, 2, &sum)?,
            _ => self.binary_named(&out, BinOp::Pow, &sum, &kf(1.0 / p as f32))?,
        })
    }

    /// DepthToSpace in CRD order (PyTorch's PixelShuffle): `[N, C, H, W]`
    /// as `[N, C/b², b, b, H, W]`, permuted to `[N, C/b², H, b, W, b]`.
    pub(super) fn depth_to_space_crd(&mut self, out: &str, x: &Val, b: usize) -> Result<Val> {
        let d = self.shape_of(x);
        let c = d[1] / (b * b);
        let split = self.reshaped(&format!("{out}/split"), x, vec![d[0], c, b, b, d[2], d[3]])?;
        let si = self.plain(&split)?;
        let moved = self.new_tensor(
            &format!("{out}/moved"),
            self.g.tensors[si].dtype,
            vec![d[0], c, d[2], b, d[3], b],
            self.g.tensors[si].quant.clone(),
        );
        self.emit(OpCode::Transpose, vec![0, 1, 4, 2, 5, 3], &[si], moved);
        let moved = Val::T(TVal {
            id: moved,
            layout: Layout::Plain,
        });
        self.reshaped(out, &moved, vec![d[0], c, d[2] * b, d[3] * b])
    }

    /// Gemm in general: `alpha * A' B' + beta * C` with A', B' transposed
    /// as asked, on BATCH_MATMUL (for a B known only at run time, or a C
    /// that is not a per-column bias).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gemm_general(
        &mut self,
        out: &str,
        x: &Val,
        w: &Val,
        c: Option<&Val>,
        trans: (bool, bool),
        alpha: f32,
        beta: f32,
    ) -> Result<()> {
        for (v, name) in [(x, "A"), (w, "B")] {
            if self.shape_of(v).len() != 2 {
                bail!("Gemm needs 2-D A and B, {name} is {:?}", self.shape_of(v));
            }
        }
        let xt = if trans.0 {
            self.permuted(&format!("{out}/a_t"), x)?
        } else {
            x.clone()
        };
        let wt = if trans.1 {
            self.permuted(&format!("{out}/b_t"), w)?
        } else {
            w.clone()
        };
        let product = format!("{out}/ab");
        self.batch_matmul(&product, &xt, &wt)?;
        let mut y = self.vals[&product].clone();
        if alpha != 1.0 {
            y = self.binary_named(&format!("{out}/scaled"), BinOp::Mul, &y, &kf(alpha))?;
        }
        if let Some(c) = c.filter(|_| beta != 0.0) {
            let c = if beta != 1.0 {
                self.binary_named(&format!("{out}/c_scaled"), BinOp::Mul, c, &kf(beta))?
            } else {
                c.clone()
            };
            let (yd, cd) = (self.shape_of(&y), self.shape_of(&c));
            if fold::broadcast(&yd, &cd)? != yd {
                bail!("C of shape {cd:?} does not broadcast to {yd:?}");
            }
            y = self.binary_named(out, BinOp::Add, &y, &c)?;
        }
        self.set(out, y);
        Ok(())
    }

    /// `x` with its axes permuted (`perm[i]`: the input axis of output axis `i`).
    pub(super) fn permute_val(&mut self, out: &str, x: &Val, perm: &[usize]) -> Result<Val> {
        if let Val::C(c) = x {
            return Ok(Val::C(Rc::new(fold::transpose(c, perm)?)));
        }
        let xi = self.plain(x)?;
        let d = self.g.tensors[xi].shape.clone();
        let y = self.out_tensor(out, xi, perm.iter().map(|&p| d[p]).collect());
        let attrs = perm.iter().map(|&p| i32_of(p)).collect::<Result<_>>()?;
        self.emit(OpCode::Transpose, attrs, &[xi], y);
        Ok(Val::T(TVal {
            id: y,
            layout: Layout::Plain,
        }))
    }

    /// A 2-D value transposed.
    fn permuted(&mut self, out: &str, x: &Val) -> Result<Val> {
        if let Val::C(c) = x {
            return Ok(Val::C(Rc::new(fold::transpose(c, &[1, 0])?)));
        }
        let xi = self.plain(x)?;
        let d = self.g.tensors[xi].shape.clone();
        let y = self.out_tensor(out, xi, vec![d[1], d[0]]);
        self.emit(OpCode::Transpose, vec![1, 0], &[xi], y);
        Ok(Val::T(TVal {
            id: y,
            layout: Layout::Plain,
        }))
    }
}

/// The flat data position each update element writes, in update order.
fn scatter_targets(
    dd: &[usize],
    id: &[usize],
    iv: &[i64],
    ud: &[usize],
    elements: bool,
    a: &Attrs<'_>,
) -> Result<Vec<usize>> {
    let r = dd.len();
    let ds = fold::strides(dd);
    let wrap = |j: i64, len: usize, what: &str| -> Result<usize> {
        let n = len as i64;
        if !(-n..n).contains(&j) {
            bail!("index {j} is out of range for {what} of size {len}");
        }
        Ok(j.rem_euclid(n) as usize)
    };
    if elements {
        let axis = axis_of(a.int("axis", 0)?, r)?;
        if id != ud || id.len() != r || (0..r).any(|i| id[i] > dd[i] && i != axis) {
            bail!("indices {id:?} and updates {ud:?} must have one shape, of data {dd:?}'s rank");
        }
        let is = fold::strides(id);
        return iv
            .iter()
            .enumerate()
            .map(|(p, &j)| {
                let mut t = wrap(j, dd[axis], &format!("axis {axis}"))? * ds[axis];
                for i in (0..r).filter(|&i| i != axis) {
                    t += (p / is[i]) % id[i] * ds[i];
                }
                Ok(t)
            })
            .collect();
    }
    let k = *id
        .last()
        .ok_or_else(|| anyhow!("indices must have rank 1 or more"))?;
    if k == 0 || k > r {
        bail!("index tuples of {k} do not address data {dd:?}");
    }
    let q = &id[..id.len() - 1];
    let mut want = q.to_vec();
    want.extend(&dd[k..]);
    if ud != want {
        bail!("updates must have shape {want:?} (indices {id:?}, data {dd:?}), got {ud:?}");
    }
    let inner: usize = dd[k..].iter().product();
    let mut targets = Vec::with_capacity(iv.len() / k * inner);
    for tuple in iv.chunks_exact(k) {
        let mut base = 0;
        for (i, &j) in tuple.iter().enumerate() {
            base += wrap(j, dd[i], &format!("axis {i}"))? * ds[i];
        }
        targets.extend(base..base + inner);
    }
    Ok(targets)
}

/// A scatter computed on constants.
fn scatter_const(
    data: &Const,
    updates: &Const,
    targets: &[usize],
    reduction: &str,
) -> Result<Const> {
    if !["none", "add", "mul", "max", "min"].contains(&reduction) {
        bail!("reduction '{reduction}' is not none, add, mul, max or min");
    }
    let combine = |old: f64, new: f64| -> f64 {
        match reduction {
            "add" => old + new,
            "mul" => old * new,
            "max" => old.max(new),
            "min" => old.min(new),
            _ => new,
        }
    };
    let mut c = data.clone();
    match (&mut c.data, &updates.data) {
        (Data::I64(d), Data::I64(u)) => {
            for (&t, &v) in targets.iter().zip(u) {
                d[t] = match reduction {
                    "add" => d[t].wrapping_add(v),
                    "mul" => d[t].wrapping_mul(v),
                    "max" => d[t].max(v),
                    "min" => d[t].min(v),
                    _ => v,
                };
            }
        }
        (Data::F32(d), _) => {
            for (&t, v) in targets.iter().zip(updates.as_f32()) {
                d[t] = combine(d[t] as f64, v as f64) as f32;
            }
        }
        (Data::F64(d), _) => {
            for (&t, v) in targets.iter().zip(updates.as_f64()) {
                d[t] = combine(d[t], v);
            }
        }
        _ => bail!("data and updates must have one type"),
    }
    Ok(c)
}
