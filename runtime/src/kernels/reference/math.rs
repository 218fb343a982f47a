//! Float and integer math added for the ONNX importer: element-wise unary
//! functions, broadcast binary arithmetic and comparisons on any numeric
//! dtype, reductions, arg-max/min, casts, batched matrix multiplication,
//! gather, where and log-softmax.
//!
//! Shapes are validated by the op layer (`ops/extra.rs`); kernels only
//! `debug_assert!`. Kernels never allocate. Data-dependent indices (GATHER)
//! are clamped-checked at run time: an out-of-range index yields zeros.

use crate::kernels::reference::elementwise::for_each_broadcast;
use crate::types::MAX_RANK;

/// An element-wise unary function on f32 (`alpha`, `beta` parameterize some).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum UnaryFn {
    Abs = 0,
    Neg = 1,
    Sqrt = 2,
    Exp = 3,
    Log = 4,
    Reciprocal = 5,
    Erf = 6,
    Floor = 7,
    Ceil = 8,
    Round = 9,
    Sin = 10,
    Cos = 11,
    Tan = 12,
    Asin = 13,
    Acos = 14,
    Atan = 15,
    Sinh = 16,
    Cosh = 17,
    Asinh = 18,
    Acosh = 19,
    Atanh = 20,
    Sign = 21,
    Softplus = 22,
    Softsign = 23,
    /// `x < 0 ? alpha * (exp(x) - 1) : x`
    Elu = 24,
    /// `beta * (x <= 0 ? alpha * (exp(x) - 1) : x)` (alpha, gamma)
    Selu = 25,
    /// `max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`
    Celu = 26,
    /// `x > alpha ? x : 0`
    ThresholdedRelu = 27,
    /// `x * tanh(softplus(x))`
    Mish = 28,
    /// `0.5 x (1 + erf(x / sqrt 2))`
    Gelu = 29,
    /// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`
    GeluTanh = 30,
    /// `max(0, min(1, alpha * x + beta))`
    HardSigmoid = 31,
    /// Logical not on bool (0/1 bytes).
    Not = 32,
    /// `1.0` where NaN (bool output).
    IsNan = 33,
    /// SiLU / swish: `x * sigmoid(x)` (the graph passes fuse `MUL(x, LOGISTIC(x))`).
    Swish = 34,
}

impl UnaryFn {
    /// Whether the function maps reals to reals (everything but NOT and
    /// ISNAN), so that an int8 version is a 256-entry table of it.
    pub fn is_real(self) -> bool {
        !matches!(self, UnaryFn::Not | UnaryFn::IsNan)
    }

    /// Decodes the stored function id.
    pub fn from_i32(v: i32) -> Option<Self> {
        use UnaryFn::*;
        const ALL: [UnaryFn; 35] = [
            Abs,
            Neg,
            Sqrt,
            Exp,
            Log,
            Reciprocal,
            Erf,
            Floor,
            Ceil,
            Round,
            Sin,
            Cos,
            Tan,
            Asin,
            Acos,
            Atan,
            Sinh,
            Cosh,
            Asinh,
            Acosh,
            Atanh,
            Sign,
            Softplus,
            Softsign,
            Elu,
            Selu,
            Celu,
            ThresholdedRelu,
            Mish,
            Gelu,
            GeluTanh,
            HardSigmoid,
            Not,
            IsNan,
            Swish,
        ];
        ALL.get(usize::try_from(v).ok()?).copied()
    }

    /// Applies the function to one f32 value (computed in f64, rounded once).
    pub fn apply(self, x: f32, alpha: f32, beta: f32) -> f32 {
        use UnaryFn::*;
        let d = x as f64;
        let (a, b) = (alpha as f64, beta as f64);
        let r = match self {
            Abs => return x.abs(),
            Neg => return -x,
            Sqrt => libm::sqrt(d),
            Exp => libm::exp(d),
            Log => libm::log(d),
            Reciprocal => 1.0 / d,
            Erf => libm::erf(d),
            Floor => libm::floor(d),
            Ceil => libm::ceil(d),
            Round => libm::rint(d),
            Sin => libm::sin(d),
            Cos => libm::cos(d),
            Tan => libm::tan(d),
            Asin => libm::asin(d),
            Acos => libm::acos(d),
            Atan => libm::atan(d),
            Sinh => libm::sinh(d),
            Cosh => libm::cosh(d),
            Asinh => libm::asinh(d),
            Acosh => libm::acosh(d),
            Atanh => libm::atanh(d),
            Sign => {
                if d > 0.0 {
                    1.0
                } else if d < 0.0 {
                    -1.0
                } else {
                    d
                }
            }
            Softplus => libm::log1p(libm::exp(d)),
            Softsign => d / (1.0 + d.abs()),
            Elu => {
                if d < 0.0 {
                    a * libm::expm1(d)
                } else {
                    d
                }
            }
            Selu => {
                if d <= 0.0 {
                    b * a * libm::expm1(d)
                } else {
                    b * d
                }
            }
            Celu => d.max(0.0) + (a * libm::expm1(d / a)).min(0.0),
            ThresholdedRelu => {
                if d > a {
                    d
                } else {
                    0.0
                }
            }
            Mish => d * libm::tanh(libm::log1p(libm::exp(d))),
            Gelu => 0.5 * d * (1.0 + libm::erf(d / core::f64::consts::SQRT_2)),
            GeluTanh => {
                let k = libm::sqrt(2.0 / core::f64::consts::PI);
                0.5 * d * (1.0 + libm::tanh(k * (d + 0.044715 * d * d * d)))
            }
            HardSigmoid => (a * d + b).clamp(0.0, 1.0),
            Not => (x == 0.0) as i32 as f64,
            IsNan => x.is_nan() as i32 as f64,
            Swish => d / (1.0 + libm::exp(-d)),
        };
        r as f32
    }
}

/// `out[i] = f(x[i])` on f32.
pub fn unary_f32(f: UnaryFn, alpha: f32, beta: f32, x: &[f32], out: &mut [f32]) {
    debug_assert_eq!(x.len(), out.len());
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f.apply(v, alpha, beta);
    }
}

/// `out[i] = !x[i]` on bool bytes.
pub fn not_bool(x: &[u8], out: &mut [u8]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v == 0) as u8;
    }
}

/// `out[i] = isnan(x[i])` (bool bytes).
pub fn isnan_f32(x: &[f32], out: &mut [u8]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v.is_nan() as u8;
    }
}

/// A broadcast binary function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum BinaryFn {
    Add = 0,
    Sub = 1,
    Mul = 2,
    /// Float division; integer division truncates toward zero (x / 0 → 0).
    Div = 3,
    Pow = 4,
    Max = 5,
    Min = 6,
    /// Integer modulo with the divisor's sign (`fmod = 0`), or C fmod (`fmod = 1`).
    Mod = 7,
    FMod = 8,
    Equal = 9,
    Less = 10,
    Greater = 11,
    LessOrEqual = 12,
    GreaterOrEqual = 13,
    And = 14,
    Or = 15,
    Xor = 16,
    /// `a` broadcast to the output shape (`b` only shapes it): EXPAND.
    Left = 17,
}

impl BinaryFn {
    /// Decodes the stored function id.
    pub fn from_i32(v: i32) -> Option<Self> {
        use BinaryFn::*;
        const ALL: [BinaryFn; 18] = [
            Add,
            Sub,
            Mul,
            Div,
            Pow,
            Max,
            Min,
            Mod,
            FMod,
            Equal,
            Less,
            Greater,
            LessOrEqual,
            GreaterOrEqual,
            And,
            Or,
            Xor,
            Left,
        ];
        ALL.get(usize::try_from(v).ok()?).copied()
    }

    /// True when the output is bool.
    pub fn is_compare(self) -> bool {
        use BinaryFn::*;
        matches!(
            self,
            Equal | Less | Greater | LessOrEqual | GreaterOrEqual | And | Or | Xor
        )
    }
}

/// Element types the generic binary kernel handles.
pub trait Num: Copy + PartialOrd + PartialEq + bytemuck::Pod {
    /// `a f b` for arithmetic functions.
    fn arith(f: BinaryFn, a: Self, b: Self) -> Self;
    /// Nonzero test for logical functions.
    fn truthy(self) -> bool;
}

impl Num for f32 {
    fn arith(f: BinaryFn, a: f32, b: f32) -> f32 {
        match f {
            BinaryFn::Add => a + b,
            BinaryFn::Sub => a - b,
            BinaryFn::Mul => a * b,
            BinaryFn::Div => a / b,
            BinaryFn::Pow => libm::pow(a as f64, b as f64) as f32,
            BinaryFn::Max => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.max(b)
                }
            }
            BinaryFn::Min => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.min(b)
                }
            }
            BinaryFn::FMod => libm::fmodf(a, b),
            BinaryFn::Mod => {
                let r = libm::fmodf(a, b);
                if r != 0.0 && ((r < 0.0) != (b < 0.0)) {
                    r + b
                } else {
                    r
                }
            }
            _ => a,
        }
    }
    fn truthy(self) -> bool {
        self != 0.0
    }
}

macro_rules! int_num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            fn arith(f: BinaryFn, a: $t, b: $t) -> $t {
                match f {
                    BinaryFn::Add => a.wrapping_add(b),
                    BinaryFn::Sub => a.wrapping_sub(b),
                    BinaryFn::Mul => a.wrapping_mul(b),
                    BinaryFn::Div => if b == 0 { 0 } else { a.wrapping_div(b) },
                    BinaryFn::Pow => {
                        let e = (b as i64).clamp(0, u32::MAX as i64) as u32;
                        if (b as i64) < 0 { 0 } else { a.wrapping_pow(e) }
                    }
                    BinaryFn::Max => if a >= b { a } else { b },
                    BinaryFn::Min => if a <= b { a } else { b },
                    BinaryFn::FMod => if b == 0 { 0 } else { a.wrapping_rem(b) },
                    BinaryFn::Mod => {
                        if b == 0 {
                            0
                        } else {
                            let r = a.wrapping_rem(b);
                            #[allow(unused_comparisons)]
                            let flip = r != 0 && ((r < 0) != (b < 0));
                            if flip { r.wrapping_add(b) } else { r }
                        }
                    }
                    _ => a,
                }
            }
            fn truthy(self) -> bool {
                self != 0
            }
        }
    )*};
}
int_num!(i8, u8, i16, i32, i64);

/// `out = a f b` with NumPy broadcasting, arithmetic (output type `T`).
pub fn binary<T: Num>(
    f: BinaryFn,
    a: &[T],
    sa: &[usize],
    b: &[T],
    sb: &[usize],
    out: &mut [T],
    so: &[usize],
) {
    debug_assert!(so.len() <= MAX_RANK);
    for_each_broadcast(sa, sb, so, |o, i, j| {
        out[o] = match f {
            BinaryFn::Left => a[i],
            _ => T::arith(f, a[i], b[j]),
        }
    });
}

/// `out = a f b` with broadcasting for comparisons and logic (bool output bytes).
pub fn compare<T: Num>(
    f: BinaryFn,
    a: &[T],
    sa: &[usize],
    b: &[T],
    sb: &[usize],
    out: &mut [u8],
    so: &[usize],
) {
    for_each_broadcast(sa, sb, so, |o, i, j| {
        let (x, y) = (a[i], b[j]);
        out[o] = match f {
            BinaryFn::Equal => x == y,
            BinaryFn::Less => x < y,
            BinaryFn::Greater => x > y,
            BinaryFn::LessOrEqual => x <= y,
            BinaryFn::GreaterOrEqual => x >= y,
            BinaryFn::And => x.truthy() && y.truthy(),
            BinaryFn::Or => x.truthy() || y.truthy(),
            BinaryFn::Xor => x.truthy() != y.truthy(),
            _ => false,
        } as u8;
    });
}

/// A reduction over some axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ReduceFn {
    Sum = 0,
    Mean = 1,
    Max = 2,
    Min = 3,
    Prod = 4,
    SumSquare = 5,
    L1 = 6,
    L2 = 7,
    LogSum = 8,
    LogSumExp = 9,
}

impl ReduceFn {
    /// Decodes the stored function id.
    pub fn from_i32(v: i32) -> Option<Self> {
        use ReduceFn::*;
        const ALL: [ReduceFn; 10] = [
            Sum, Mean, Max, Min, Prod, SumSquare, L1, L2, LogSum, LogSumExp,
        ];
        ALL.get(usize::try_from(v).ok()?).copied()
    }
}

/// Iteration plan of a reduction: for each output element, the input base
/// offset; for each reduced element, the offset from that base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReducePlan {
    /// (size, input stride) of kept dims, outermost first.
    pub kept: [(usize, usize); MAX_RANK],
    pub n_kept: usize,
    /// (size, input stride) of reduced dims, outermost first.
    pub reduced: [(usize, usize); MAX_RANK],
    pub n_reduced: usize,
}

impl ReducePlan {
    /// A plan over `dims` reducing the axes flagged in `reduce`.
    pub fn new(dims: &[usize], reduce: &[bool]) -> Self {
        let mut p = ReducePlan {
            kept: [(1, 0); MAX_RANK],
            n_kept: 0,
            reduced: [(1, 0); MAX_RANK],
            n_reduced: 0,
        };
        let mut stride = 1;
        let mut tmp_k = [(1usize, 0usize); MAX_RANK];
        let mut tmp_r = [(1usize, 0usize); MAX_RANK];
        for d in (0..dims.len()).rev() {
            if reduce[d] {
                tmp_r[p.n_reduced] = (dims[d], stride);
                p.n_reduced += 1;
            } else {
                tmp_k[p.n_kept] = (dims[d], stride);
                p.n_kept += 1;
            }
            stride *= dims[d];
        }
        for i in 0..p.n_kept {
            p.kept[i] = tmp_k[p.n_kept - 1 - i];
        }
        for i in 0..p.n_reduced {
            p.reduced[i] = tmp_r[p.n_reduced - 1 - i];
        }
        p
    }

    /// Elements reduced into each output.
    pub fn count(&self) -> usize {
        self.reduced[..self.n_reduced].iter().map(|r| r.0).product()
    }

    fn base(&self, mut out: usize) -> usize {
        let mut off = 0;
        for &(size, stride) in self.kept[..self.n_kept].iter().rev() {
            off += (out % size) * stride;
            out /= size;
        }
        off
    }

    /// `Some(count)` when the reduced axes are the trailing ones (a layer
    /// norm's, a softmax-like row statistic): output `o` then reduces
    /// `x[o * count..(o + 1) * count]`, in that order.
    pub fn trailing(&self) -> Option<usize> {
        let n = self.count();
        let mut stride = 1;
        for &(size, s) in self.reduced[..self.n_reduced].iter().rev() {
            if size > 1 && s != stride {
                return None;
            }
            stride *= size;
        }
        let outer = self.kept[..self.n_kept]
            .iter()
            .all(|&(size, s)| size == 1 || s >= n);
        (n > 0 && outer).then_some(n)
    }

    fn for_each(&self, base: usize, mut f: impl FnMut(usize)) {
        let n = self.count();
        for k in 0..n {
            let mut rem = k;
            let mut off = base;
            for &(size, stride) in self.reduced[..self.n_reduced].iter().rev() {
                off += (rem % size) * stride;
                rem /= size;
            }
            f(off);
        }
    }
}

/// Reduces `x` into `out` (one value per kept position), f32.
pub fn reduce_f32(f: ReduceFn, p: &ReducePlan, x: &[f32], out: &mut [f32]) {
    let n = p.count() as f32;
    for (o, v) in out.iter_mut().enumerate() {
        let base = p.base(o);
        let mut acc: f32 = match f {
            ReduceFn::Max => f32::NEG_INFINITY,
            ReduceFn::Min => f32::INFINITY,
            ReduceFn::Prod => 1.0,
            _ => 0.0,
        };
        let mut max = f32::NEG_INFINITY;
        if f == ReduceFn::LogSumExp {
            p.for_each(base, |i| max = max.max(x[i]));
            if !max.is_finite() {
                max = 0.0;
            }
        }
        p.for_each(base, |i| {
            let e = x[i];
            match f {
                ReduceFn::Sum | ReduceFn::Mean | ReduceFn::LogSum => acc += e,
                ReduceFn::Max => {
                    if e > acc || e.is_nan() {
                        acc = e
                    }
                }
                ReduceFn::Min => {
                    if e < acc || e.is_nan() {
                        acc = e
                    }
                }
                ReduceFn::Prod => acc *= e,
                ReduceFn::SumSquare | ReduceFn::L2 => acc += e * e,
                ReduceFn::L1 => acc += e.abs(),
                ReduceFn::LogSumExp => acc += libm::expf(e - max),
            }
        });
        *v = match f {
            ReduceFn::Mean => acc / n,
            ReduceFn::L2 => libm::sqrtf(acc),
            ReduceFn::LogSum => libm::logf(acc),
            ReduceFn::LogSumExp => libm::logf(acc) + max,
            _ => acc,
        };
    }
}

/// [`reduce_f32`] where the reduced axes are the trailing ones
/// ([`ReducePlan::trailing`]): `out[o]` reduces the `count` values of row
/// `o`. Eight rows advance together, each accumulating in the reference's
/// order, so the results are bit-identical; the eight independent sums
/// keep the adder busy where one row's sum waits on each previous add.
/// `false` for LogSumExp (two passes; left to the reference).
pub fn reduce_rows_f32(f: ReduceFn, count: usize, x: &[f32], out: &mut [f32]) -> bool {
    use ReduceFn::*;
    let n = count as f32;
    match f {
        Sum => rows8(count, x, out, 0.0, |a, e| a + e, |a| a),
        Mean => rows8(count, x, out, 0.0, |a, e| a + e, |a| a / n),
        LogSum => rows8(count, x, out, 0.0, |a, e| a + e, libm::logf),
        SumSquare => rows8(count, x, out, 0.0, |a, e| a + e * e, |a| a),
        L2 => rows8(count, x, out, 0.0, |a, e| a + e * e, libm::sqrtf),
        L1 => rows8(count, x, out, 0.0, |a, e| a + e.abs(), |a| a),
        Prod => rows8(count, x, out, 1.0, |a, e| a * e, |a| a),
        Max => rows8(
            count,
            x,
            out,
            f32::NEG_INFINITY,
            |a, e| if e > a || e.is_nan() { e } else { a },
            |a| a,
        ),
        Min => rows8(
            count,
            x,
            out,
            f32::INFINITY,
            |a, e| if e < a || e.is_nan() { e } else { a },
            |a| a,
        ),
        LogSumExp => return false,
    }
    true
}

#[inline(always)]
fn rows8(
    count: usize,
    x: &[f32],
    out: &mut [f32],
    init: f32,
    step: impl Fn(f32, f32) -> f32,
    finish: impl Fn(f32) -> f32,
) {
    const L: usize = 8;
    assert!(x.len() >= out.len() * count, "reduce rows");
    let done = out.len() / L * L;
    let mut groups = out.chunks_exact_mut(L);
    for (g, o) in (&mut groups).enumerate() {
        let rows = &x[g * L * count..(g + 1) * L * count];
        let mut acc = [init; L];
        for k in 0..count {
            for (l, a) in acc.iter_mut().enumerate() {
                *a = step(*a, rows[l * count + k]);
            }
        }
        for (o, &a) in o.iter_mut().zip(&acc) {
            *o = finish(a);
        }
    }
    for (i, o) in groups.into_remainder().iter_mut().enumerate() {
        let row = &x[(done + i) * count..(done + i + 1) * count];
        *o = finish(row.iter().fold(init, |a, &e| step(a, e)));
    }
}

/// Reduces integer `x` (sum, mean truncated, max, min, prod, sum of squares, L1).
pub fn reduce_int<T: Num + Into<i64> + TryFrom<i64>>(
    f: ReduceFn,
    p: &ReducePlan,
    x: &[T],
    out: &mut [T],
) {
    let n = p.count() as i64;
    for (o, v) in out.iter_mut().enumerate() {
        let base = p.base(o);
        let mut acc: i64 = match f {
            ReduceFn::Max => i64::MIN,
            ReduceFn::Min => i64::MAX,
            ReduceFn::Prod => 1,
            _ => 0,
        };
        p.for_each(base, |i| {
            let e: i64 = x[i].into();
            acc = match f {
                ReduceFn::Max => acc.max(e),
                ReduceFn::Min => acc.min(e),
                ReduceFn::Prod => acc.wrapping_mul(e),
                ReduceFn::SumSquare => acc.wrapping_add(e.wrapping_mul(e)),
                ReduceFn::L1 => acc.wrapping_add(e.abs()),
                _ => acc.wrapping_add(e),
            };
        });
        if f == ReduceFn::Mean && n > 0 {
            acc /= n;
        }
        *v = T::try_from(acc).unwrap_or(x.first().copied().unwrap_or(*v));
    }
}

/// Index of the max (or min) along one axis; `last` picks the last of ties.
/// `x` viewed as `[outer, axis, inner]`; `out` has `outer * inner` i64s.
pub fn arg_reduce<T: Num>(
    max: bool,
    last: bool,
    x: &[T],
    outer: usize,
    axis: usize,
    inner: usize,
    out: &mut [i64],
) {
    for o in 0..outer {
        for i in 0..inner {
            let mut best = 0usize;
            for k in 1..axis {
                let (v, b) = (
                    x[(o * axis + k) * inner + i],
                    x[(o * axis + best) * inner + i],
                );
                let better = if max { v > b } else { v < b };
                if better || (last && v == b) {
                    best = k;
                }
            }
            out[o * inner + i] = best as i64;
        }
    }
}

/// Batched matrix multiplication `[.., M, K] x [.., K, N]` with broadcast
/// batch dims: `a_batch[b]` / `b_batch[b]` give each output batch's operand
/// batch indices (computed at prepare).
#[allow(clippy::too_many_arguments)]
pub fn batch_matmul_f32(
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    batches: usize,
    a_index: impl Fn(usize) -> usize,
    b_index: impl Fn(usize) -> usize,
) {
    for bt in 0..batches {
        let (ab, bb) = (a_index(bt) * m * k, b_index(bt) * k * n);
        let ob = bt * m * n;
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f32;
                for p in 0..k {
                    acc += a[ab + i * k + p] * b[bb + p * n + j];
                }
                out[ob + i * n + j] = acc;
            }
        }
    }
}

/// Gathers along an axis: `x` viewed as `[outer, axis, inner]`, `indices`
/// (negative count from the end; out of range gives zeros), output
/// `[outer, indices.len(), inner]`.
pub fn gather<T: Copy + Default>(
    x: &[T],
    outer: usize,
    axis: usize,
    inner: usize,
    indices: &[i64],
    out: &mut [T],
) {
    let n = indices.len();
    for o in 0..outer {
        for (q, &ix) in indices.iter().enumerate() {
            let j = if ix < 0 { ix + axis as i64 } else { ix };
            let dst = &mut out[(o * n + q) * inner..(o * n + q + 1) * inner];
            if j >= 0 && (j as usize) < axis {
                let s = (o * axis + j as usize) * inner;
                dst.copy_from_slice(&x[s..s + inner]);
            } else {
                dst.iter_mut().for_each(|v| *v = T::default());
            }
        }
    }
}

/// Log-softmax over the last axis of length `depth`.
pub fn log_softmax_f32(depth: usize, x: &[f32], out: &mut [f32]) {
    if depth == 0 {
        return;
    }
    for (xs, os) in x.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
        let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f64 = xs.iter().map(|&v| libm::exp((v - max) as f64)).sum();
        let lse = libm::log(sum) as f32 + max;
        for (o, &v) in os.iter_mut().zip(xs) {
            *o = v - lse;
        }
    }
}

/// LOCAL_RESPONSE_NORMALIZATION over the last axis, as TensorFlow defines it
/// and LiteRT's builtin kernel computes it (its reference kernel stops one
/// channel short of the window): for channel `c`,
/// `x[c] * (bias + alpha * s)^-beta` with `s` the sum of `x[k]²` over `k` in
/// `[c - before, c + after]` (clipped to the channels), in f32 with `powf`.
/// ONNX's LRN is the same with `alpha / size` and a window of
/// `(size - 1) / 2` channels before and the rest after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrnParams {
    pub before: usize,
    pub after: usize,
    pub bias: f32,
    pub alpha: f32,
    pub beta: f32,
}

pub fn local_response_norm_f32(p: &LrnParams, depth: usize, x: &[f32], out: &mut [f32]) {
    if depth == 0 {
        return;
    }
    for (xs, os) in x.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
        for (c, o) in os.iter_mut().enumerate() {
            let window = c.saturating_sub(p.before)..(c + p.after + 1).min(depth);
            let s: f32 = xs[window].iter().map(|v| v * v).sum();
            *o = xs[c] * libm::powf(p.bias + p.alpha * s, -p.beta);
        }
    }
}

/// Geometry of a transposed convolution (NHWC input and output; filter in
/// ONNX's `[in_channels, out_channels / group, kh, kw]` layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTransposeGeometry {
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// Leading padding (top, left): output positions cropped at the start.
    pub pad: [usize; 2],
    pub group: usize,
    /// `[n, h, w, c]` of the input and the output.
    pub in_shape: [usize; 4],
    pub out_shape: [usize; 4],
    pub kernel: [usize; 2],
}

/// Transposed convolution, f32: every input pixel scatters `x * w` onto the
/// output (positions outside it are dropped), then the bias is added.
pub fn conv_transpose_f32(
    g: &ConvTransposeGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let [n, ih, iw, ic] = g.in_shape;
    let [_, oh, ow, oc] = g.out_shape;
    let (kh, kw) = (g.kernel[0], g.kernel[1]);
    let (icg, ocg) = (ic / g.group, oc / g.group);
    for (i, o) in out.iter_mut().enumerate() {
        *o = bias.map_or(0.0, |b| b[i % oc]);
    }
    for b in 0..n {
        for y in 0..ih {
            for xx in 0..iw {
                let xin = &x[((b * ih + y) * iw + xx) * ic..][..ic];
                for ky in 0..kh {
                    let oy = (y * g.stride[0] + ky * g.dilation[0]) as isize - g.pad[0] as isize;
                    if oy < 0 || oy as usize >= oh {
                        continue;
                    }
                    for kx in 0..kw {
                        let ox =
                            (xx * g.stride[1] + kx * g.dilation[1]) as isize - g.pad[1] as isize;
                        if ox < 0 || ox as usize >= ow {
                            continue;
                        }
                        let obase = ((b * oh + oy as usize) * ow + ox as usize) * oc;
                        for (c, &v) in xin.iter().enumerate() {
                            let grp = c / icg;
                            for o in 0..ocg {
                                let wi = ((c * ocg + o) * kh + ky) * kw + kx;
                                out[obase + grp * ocg + o] += v * w[wi];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// How PAD_MODE fills the border.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadMode {
    /// Mirror without repeating the edge (`[1, 2, 3]` → `3 2 | 1 2 3 | 2 1`).
    Reflect,
    /// Repeat the edge value.
    Edge,
}

/// Source index along one axis for output coordinate `o` (input size `n`,
/// `before` padding). Reflect requires `n >= 2` or no padding (checked at prepare).
#[inline]
pub fn pad_source(mode: PadMode, o: usize, before: usize, n: usize) -> usize {
    let i = o as isize - before as isize;
    let last = n as isize - 1;
    match mode {
        PadMode::Edge => i.clamp(0, last) as usize,
        PadMode::Reflect => {
            if last == 0 {
                return 0;
            }
            let period = 2 * last;
            let mut r = i.rem_euclid(period);
            if r > last {
                r = period - r;
            }
            r as usize
        }
    }
}

/// Reflect/edge padding of any element size (`elem` bytes) and rank.
pub fn pad_mode(
    mode: PadMode,
    x: &[u8],
    in_dims: &[usize],
    before: &[usize],
    out: &mut [u8],
    out_dims: &[usize],
    elem: usize,
) {
    let r = out_dims.len();
    let n: usize = out_dims.iter().product();
    let mut idx = [0usize; MAX_RANK];
    for o in 0..n {
        let mut rem = o;
        for d in (0..r).rev() {
            idx[d] = rem % out_dims[d];
            rem /= out_dims[d];
        }
        let mut src = 0;
        for d in 0..r {
            src = src * in_dims[d] + pad_source(mode, idx[d], before[d], in_dims[d]);
        }
        out[o * elem..(o + 1) * elem].copy_from_slice(&x[src * elem..(src + 1) * elem]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_response_norm_windows_are_clipped_at_the_channel_edges() {
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let mut out = [0.0f32; 4];
        // Window one before, two after (ONNX size 4); bias 1, alpha 1, beta 1:
        // x[c] / (1 + sum of squares in the window).
        let p = LrnParams {
            before: 1,
            after: 2,
            bias: 1.0,
            alpha: 1.0,
            beta: 1.0,
        };
        local_response_norm_f32(&p, 4, &x, &mut out);
        let want = [
            1.0 / (1.0 + 1.0 + 4.0 + 9.0),
            2.0 / (1.0 + 30.0),
            3.0 / (1.0 + 29.0),
            4.0 / (1.0 + 25.0),
        ];
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < 1e-6, "{out:?} vs {want:?}");
        }
        // Radius 0: each channel alone, two pixels of two channels.
        let p0 = LrnParams {
            before: 0,
            after: 0,
            bias: 2.0,
            alpha: 0.5,
            beta: 0.5,
        };
        local_response_norm_f32(&p0, 2, &x, &mut out);
        for (o, v) in out.iter().zip(x) {
            let w = v / (2.0 + 0.5 * v * v).sqrt();
            assert!((o - w).abs() < 1e-6, "{o} vs {w}");
        }
    }

    #[test]
    fn integer_division_and_modulo_follow_onnx() {
        let (a, b) = ([7i32, -7, 7, -7, 5], [2i32, 2, -2, -2, 0]);
        let mut out = [0i32; 5];
        binary(BinaryFn::Div, &a, &[5], &b, &[5], &mut out, &[5]);
        assert_eq!(out, [3, -3, -3, 3, 0]);
        binary(BinaryFn::Mod, &a, &[5], &b, &[5], &mut out, &[5]);
        assert_eq!(out, [1, 1, -1, -1, 0]);
        binary(BinaryFn::FMod, &a, &[5], &b, &[5], &mut out, &[5]);
        assert_eq!(out, [1, -1, 1, -1, 0]);
    }

    #[test]
    fn comparisons_broadcast_to_bool() {
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [2.0f32, 5.0, 6.0];
        let mut out = [9u8; 6];
        compare(BinaryFn::Less, &a, &[2, 3], &b, &[3], &mut out, &[2, 3]);
        assert_eq!(out, [1, 1, 1, 0, 0, 0]);
    }

    #[test]
    fn trailing_rows_reduce_bit_for_bit_as_the_reference() {
        // Which plans are row reductions.
        let t = |dims: &[usize], r: &[bool]| ReducePlan::new(dims, r).trailing();
        assert_eq!(t(&[2, 3, 4], &[false, false, true]), Some(4));
        assert_eq!(t(&[2, 3, 4], &[false, true, true]), Some(12));
        assert_eq!(t(&[2, 1, 4], &[false, true, true]), Some(4));
        assert_eq!(t(&[2, 3, 1], &[false, true, false]), Some(3));
        assert_eq!(t(&[2, 3, 4], &[false, true, false]), None);
        assert_eq!(t(&[2, 3, 4], &[true, false, true]), None);
        assert_eq!(t(&[2, 0], &[false, true]), None);
        // Every function but LogSumExp, rows in and out of groups of 8,
        // with NaN and infinities among the values.
        let mut s = 0x9e37_79b9u32;
        for rows in [1usize, 7, 8, 9, 21] {
            for count in [1usize, 3, 96] {
                let mut x: Vec<f32> = (0..rows * count)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 17;
                        s ^= s << 5;
                        (s % 4001) as f32 / 1000.0 - 2.0
                    })
                    .collect();
                if rows * count > 10 {
                    x[3] = f32::NAN;
                    x[7] = f32::INFINITY;
                    x[10] = f32::NEG_INFINITY;
                }
                let plan = ReducePlan::new(&[rows, count], &[false, true]);
                for f in (0..=9).filter_map(ReduceFn::from_i32) {
                    let mut want = vec![0f32; rows];
                    let mut got = vec![1f32; rows];
                    reduce_f32(f, &plan, &x, &mut want);
                    if !reduce_rows_f32(f, count, &x, &mut got) {
                        assert_eq!(f, ReduceFn::LogSumExp);
                        continue;
                    }
                    let same = want
                        .iter()
                        .zip(&got)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{f:?} rows {rows} count {count}: {got:?} vs {want:?}");
                }
            }
        }
    }

    #[test]
    fn reduce_over_middle_axis_keeps_order() {
        // x[2, 3, 2]: reduce axis 1.
        let x: [f32; 12] = core::array::from_fn(|i| i as f32);
        let plan = ReducePlan::new(&[2, 3, 2], &[false, true, false]);
        assert_eq!(plan.count(), 3);
        let mut out = [0f32; 4];
        reduce_f32(ReduceFn::Sum, &plan, &x, &mut out);
        assert_eq!(out, [6.0, 9.0, 24.0, 27.0]);
        reduce_f32(ReduceFn::Max, &plan, &x, &mut out);
        assert_eq!(out, [4.0, 5.0, 10.0, 11.0]);
        let mut lse = [0f32; 4];
        reduce_f32(ReduceFn::LogSumExp, &plan, &x, &mut lse);
        let want = libm::logf(libm::expf(0.0) + libm::expf(2.0) + libm::expf(4.0));
        assert!((lse[0] - want).abs() < 1e-6);
    }

    #[test]
    fn arg_max_picks_first_or_last_tie() {
        let x = [1i64, 3, 3, 0];
        let mut out = [0i64; 1];
        arg_reduce(true, false, &x, 1, 4, 1, &mut out);
        assert_eq!(out, [1]);
        arg_reduce(true, true, &x, 1, 4, 1, &mut out);
        assert_eq!(out, [2]);
        arg_reduce(false, false, &x, 1, 4, 1, &mut out);
        assert_eq!(out, [3]);
    }

    #[test]
    fn batch_matmul_broadcasts_batches() {
        // a [2, 1, 2] (two batches), b [2, 1] shared.
        let a = [1.0f32, 2.0, 3.0, 4.0];
        let b = [10.0f32, 100.0];
        let mut out = [0f32; 2];
        batch_matmul_f32(&a, &b, &mut out, 1, 2, 1, 2, |i| i, |_| 0);
        assert_eq!(out, [210.0, 430.0]);
    }

    #[test]
    fn reflect_and_edge_padding() {
        let src: [usize; 7] = core::array::from_fn(|o| pad_source(PadMode::Reflect, o, 2, 3));
        assert_eq!(src, [2, 1, 0, 1, 2, 1, 0]);
        let src: [usize; 7] = core::array::from_fn(|o| pad_source(PadMode::Edge, o, 2, 3));
        assert_eq!(src, [0, 0, 0, 1, 2, 2, 2]);
    }

    #[test]
    fn conv_transpose_scatters_and_crops() {
        // 1x2x1x1 input, 1x1x2x1 filter, stride 2: out positions 0,1 from x0, 2,3 from x1.
        let g = ConvTransposeGeometry {
            stride: [2, 1],
            dilation: [1, 1],
            pad: [1, 0],
            group: 1,
            in_shape: [1, 2, 1, 1],
            out_shape: [1, 2, 1, 1],
            kernel: [2, 1],
        };
        let mut out = [0f32; 2];
        conv_transpose_f32(&g, &[1.0, 10.0], &[2.0, 3.0], Some(&[0.5]), &mut out);
        // Full output [2, 3, 20, 30] cropped by 1 at the start to 2 values.
        assert_eq!(out, [3.5, 20.5]);
    }

    #[test]
    fn unary_functions_match_their_formulas() {
        let f = |u: UnaryFn, x: f32| u.apply(x, 1.0, 0.0);
        assert_eq!(f(UnaryFn::Round, 2.5), 2.0);
        assert_eq!(f(UnaryFn::Round, -1.5), -2.0);
        assert_eq!(f(UnaryFn::Sign, -3.0), -1.0);
        assert!((f(UnaryFn::Elu, -1.0) - (libm::expf(-1.0) - 1.0)).abs() < 1e-7);
        assert_eq!(f(UnaryFn::ThresholdedRelu, 1.0), 0.0);
        assert!((UnaryFn::HardSigmoid.apply(1.0, 0.2, 0.5) - 0.7).abs() < 1e-7);
        assert_eq!(UnaryFn::from_i32(33), Some(UnaryFn::IsNan));
        assert_eq!(UnaryFn::from_i32(34), Some(UnaryFn::Swish));
        assert!((f(UnaryFn::Swish, 2.0) - 2.0 / (1.0 + libm::expf(-2.0))).abs() < 1e-6);
        assert_eq!(UnaryFn::from_i32(35), None);
        assert_eq!(BinaryFn::from_i32(17), Some(BinaryFn::Left));
        assert_eq!(ReduceFn::from_i32(10), None);
    }
}
