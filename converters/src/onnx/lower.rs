//! Lowering of an ONNX graph onto the IR (NHWC, TFLite-like ops).
//!
//! Nodes are visited in file order (ONNX requires topological order; a node
//! reading a value nothing has produced yet is reported as a dangling input
//! or a cycle). Every ONNX value becomes a [`Val`]: a constant (folded at
//! conversion), a runtime tensor in ONNX's own layout (`Plain`), a 4-D
//! NCHW value stored as NHWC (`Nhwc`), a 3-D `[N, C, L]` signal stored as
//! an NHWC image one row high (`Ncl`: 1-D convolution and pooling run the
//! 2-D kernels on it), or the dequantized view of an int8 tensor (`Q`, from
//! DequantizeLinear). Layout changes are inserted on
//! demand and cached, so a chain of NHWC ops never transposes.

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use anyhow::{anyhow, bail, Context, Result};
use ferrite_runtime::quant::QParams;
use ferrite_runtime::{DType, OpCode, Quant, Rounding};

use super::fold::{self, BinOp};
use super::proto::{attr_type as at, data_type as dt, AttributeProto, ModelProto, NodeProto};
use super::value::{self, decode_tensor, numel, Const, Data};
use crate::ir::{Graph, Node, Tensor};
use crate::{ConvertOptions, IoLayout};

mod composite;
mod recurrent;

/// Opsets the importer accepts for the default domain.
const OPSETS: std::ops::RangeInclusive<i64> = 7..=21;

/// How a runtime tensor stores an ONNX value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Layout {
    /// Same dims and order as ONNX.
    Plain,
    /// A rank-4 ONNX value `[N, C, H, W]` stored as `[N, H, W, C]`.
    Nhwc,
    /// A rank-3 ONNX value `[N, C, L]` stored as `[N, 1, L, C]`: the NHWC
    /// storage of the image `[N, C, 1, L]`, so a 1-D convolution or pooling
    /// is the 2-D one on a single row, with no copy in or out.
    Ncl,
}

impl Layout {
    /// The channels-last layout of a value of logical rank `rank`, if any.
    fn channels_last(rank: usize) -> Layout {
        match rank {
            4 => Layout::Nhwc,
            3 => Layout::Ncl,
            _ => Layout::Plain,
        }
    }

    /// Stored dims of a value with logical (ONNX) dims `d`.
    fn stored(self, d: &[usize]) -> Vec<usize> {
        match self {
            Layout::Plain => d.to_vec(),
            Layout::Nhwc => nhwc_dims(d),
            Layout::Ncl => vec![d[0], 1, d[2], d[1]],
        }
    }

    /// Logical (ONNX) dims of a value stored with dims `s`.
    fn logical(self, s: &[usize]) -> Vec<usize> {
        match self {
            Layout::Plain => s.to_vec(),
            Layout::Nhwc => nchw_dims(s),
            Layout::Ncl => vec![s[0], s[3], s[2]],
        }
    }

    /// For each stored dim, the logical dim it holds (`None`: `Ncl`'s row).
    fn stored_axes(self, rank: usize) -> Vec<Option<usize>> {
        match self {
            Layout::Plain => (0..rank).map(Some).collect(),
            Layout::Nhwc => NCHW_TO_NHWC.iter().map(|&l| Some(l)).collect(),
            Layout::Ncl => vec![Some(0), None, Some(2), Some(1)],
        }
    }

    /// Where logical axis `axis` is stored.
    fn stored_axis(self, rank: usize, axis: usize) -> usize {
        self.stored_axes(rank)
            .iter()
            .position(|&l| l == Some(axis))
            .expect("every logical axis is stored")
    }
}

/// A runtime tensor holding an ONNX value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TVal {
    id: usize,
    layout: Layout,
}

/// What an ONNX value is during lowering.
#[derive(Debug, Clone)]
enum Val {
    C(Rc<Const>),
    T(TVal),
    /// The float value `dequantize(q)` of an int8 per-tensor tensor.
    Q(TVal),
}

/// The integer constant and quantization behind a DequantizeLinear of a constant.
#[derive(Debug, Clone)]
struct QConst {
    q: Rc<Const>,
    scales: Vec<f32>,
    zps: Vec<i64>,
    axis: usize,
}

/// NCHW dim `i` is stored at NHWC position `TO_NHWC[i]`.
const TO_NHWC: [usize; 4] = [0, 3, 1, 2];
/// Perm turning an NCHW tensor into NHWC.
const NCHW_TO_NHWC: [usize; 4] = [0, 2, 3, 1];
/// Perm turning an NHWC tensor into NCHW.
const NHWC_TO_NCHW: [usize; 4] = [0, 3, 1, 2];

fn nhwc_dims(d: &[usize]) -> Vec<usize> {
    vec![d[0], d[2], d[3], d[1]]
}

fn nchw_dims(d: &[usize]) -> Vec<usize> {
    vec![d[0], d[3], d[1], d[2]]
}

struct Lower<'m> {
    g: Graph,
    vals: HashMap<String, Val>,
    qconsts: HashMap<String, QConst>,
    /// How many node inputs and graph outputs read each value.
    uses: HashMap<String, usize>,
    /// The single consumer node of each value read exactly once by a node.
    consumer: HashMap<String, usize>,
    /// QuantizeLinear outputs already produced by a fused int8 op.
    prebound: HashMap<String, Val>,
    /// Activation nodes already fused into the int8 op before them.
    fused: std::collections::HashSet<usize>,
    /// Layout conversions already made: (tensor, from, to) → tensor.
    relayout: HashMap<(usize, Layout, Layout), usize>,
    dequantized: HashMap<usize, usize>,
    nodes: &'m [NodeProto],
    opset: i64,
    base_dir: Option<&'m Path>,
    origin: String,
}

fn node_desc(i: usize, n: &NodeProto) -> String {
    if n.name.is_empty() {
        format!("node {i} ({})", n.op_type)
    } else {
        format!("node {i} '{}' ({})", n.name, n.op_type)
    }
}

/// Lowers a decoded model to the IR (no passes run yet).
pub fn lower(m: &ModelProto, options: &ConvertOptions, base_dir: Option<&Path>) -> Result<Graph> {
    let mut opset = None;
    for o in &m.opset_import {
        if o.domain.is_empty() || o.domain == "ai.onnx" {
            opset = Some(o.version);
        }
    }
    let opset = opset.ok_or_else(|| anyhow!("the model imports no default-domain opset"))?;
    if !OPSETS.contains(&opset) {
        bail!(
            "opset {opset} is not supported (supported: {}..={})",
            OPSETS.start(),
            OPSETS.end()
        );
    }
    let graph = m
        .graph
        .as_ref()
        .ok_or_else(|| anyhow!("the model has no graph"))?;
    if !graph.sparse_initializer.is_empty() {
        bail!("sparse initializers are not supported");
    }
    let nodes = desugar_qlinear(&graph.node);
    let mut l = Lower {
        g: Graph::default(),
        vals: HashMap::new(),
        qconsts: HashMap::new(),
        uses: HashMap::new(),
        consumer: HashMap::new(),
        prebound: HashMap::new(),
        fused: Default::default(),
        relayout: HashMap::new(),
        dequantized: HashMap::new(),
        nodes: &nodes,
        opset,
        base_dir,
        origin: String::new(),
    };
    for (i, n) in nodes.iter().enumerate() {
        for x in n.input.iter().filter(|x| !x.is_empty()) {
            *l.uses.entry(x.clone()).or_default() += 1;
            l.consumer.insert(x.clone(), i);
        }
    }
    for o in &graph.output {
        *l.uses.entry(o.name.clone()).or_default() += 1;
    }
    for init in &graph.initializer {
        let c = decode_tensor(init, base_dir)
            .with_context(|| format!("initializer '{}'", init.name))?;
        l.vals.insert(init.name.clone(), Val::C(Rc::new(c)));
    }
    let nhwc_io = options.io_layout == IoLayout::Nhwc;
    let mut io_notes = Vec::new();
    for inp in &graph.input {
        if l.vals.contains_key(&inp.name) {
            continue; // an initializer listed as an input (IR < 4): a constant
        }
        let (ty, dims) = input_type(inp, options)?;
        let dtype = value::runtime_dtype(ty).with_context(|| format!("input '{}'", inp.name))?;
        let image = nhwc_io && dims.len() == 4 && dims[1] <= 4 && dims[2] > 4 && dims[3] > 4;
        let (shape, layout) = if image {
            io_notes.push(format!("input {} NCHW->NHWC", inp.name));
            (nhwc_dims(&dims), Layout::Nhwc)
        } else {
            (dims, Layout::Plain)
        };
        let id = l.g.add_tensor(Tensor {
            name: inp.name.clone(),
            dtype,
            shape,
            quant: Quant::None,
            data: None,
        });
        l.g.inputs.push(id);
        l.vals.insert(inp.name.clone(), Val::T(TVal { id, layout }));
    }
    for (i, n) in nodes.iter().enumerate() {
        l.origin = node_desc(i, n);
        l.node(i, n).with_context(|| l.origin.clone())?;
    }
    l.origin = "graph outputs".into();
    for out in &graph.output {
        let v = l
            .vals
            .get(&out.name)
            .cloned()
            .ok_or_else(|| anyhow!("graph output '{}' is produced by no node", out.name))?;
        let mut id = match v {
            Val::T(t) if nhwc_io && t.layout == Layout::Nhwc => {
                io_notes.push(format!("output {} NCHW->NHWC", out.name));
                t.id
            }
            other => l.plain(&other)?,
        };
        let declared = out
            .r#type
            .as_ref()
            .and_then(|t| t.tensor_type.as_ref())
            .map(|t| t.elem_type);
        let t = &l.g.tensors[id];
        if t.dtype == DType::I8 && t.quant != Quant::None && declared == Some(dt::UINT8) {
            bail!(
                "graph output '{}': uint8 outputs are not supported (they are held as int8)",
                out.name
            );
        }
        let needs_copy = t.data.is_some() || l.g.inputs.contains(&id) || l.g.outputs.contains(&id);
        if needs_copy {
            let (dtype, shape, quant) = (t.dtype, t.shape.clone(), t.quant.clone());
            let c = l.new_tensor(&out.name, dtype, shape, quant);
            l.emit(OpCode::Reshape, vec![], &[id], c);
            id = c;
        }
        l.g.tensors[id].name = out.name.clone();
        l.g.outputs.push(id);
    }
    if !io_notes.is_empty() {
        l.g.set_meta_text("onnx.io_layout", &io_notes.join("; "));
    }
    l.g.set_meta_text("source", "onnx");
    l.g.remove_dead_nodes();
    l.g.remove_unused_tensors();
    l.g.rounding = qdq_rounding(&l.g, &nodes, &l.vals);
    Ok(l.g)
}

/// ONNX's operator-form int8 ops rewritten as the QDQ pattern they stand
/// for: QLinearConv and QLinearMatMul become DequantizeLinear on each input,
/// the float Conv/MatMul, and QuantizeLinear on the output, which the
/// lowering fuses back into one int8 op keeping the model's scales and
/// zero-points. One code path (and one set of checks) serves both forms.
/// The bias of QLinearConv (int32, scale `x_scale * w_scale`) is read as
/// the raw integers it is. Other nodes are kept as they are.
fn desugar_qlinear(nodes: &[NodeProto]) -> Vec<NodeProto> {
    let mut out = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let arity = match n.op_type.as_str() {
            "QLinearConv" => 8..=9,
            "QLinearMatMul" => 8..=8,
            _ => {
                out.push(n.clone());
                continue;
            }
        };
        let (Some(y), true) = (
            n.output.first(),
            n.domain.is_empty() || n.domain == "ai.onnx",
        ) else {
            out.push(n.clone());
            continue;
        };
        if !arity.contains(&n.input.len()) {
            out.push(n.clone()); // the lowering reports the arity
            continue;
        }
        let tmp = |what: &str| format!("{y}/{}.{i}/{what}", n.op_type);
        // Errors name the original node: "QLinearConv#3/DequantizeLinear".
        let origin = if n.name.is_empty() {
            format!("{}#{i}", n.op_type)
        } else {
            n.name.clone()
        };
        let node =
            |op: &str, ins: Vec<String>, o: String, attribute: Vec<AttributeProto>| NodeProto {
                input: ins,
                output: vec![o],
                name: format!("{origin}/{op}"),
                op_type: op.into(),
                domain: String::new(),
                attribute,
            };
        let axis = |v: i64| AttributeProto {
            name: "axis".into(),
            r#type: at::INT,
            i: v,
            ..Default::default()
        };
        let inp = |k: usize| n.input[k].clone();
        out.push(node(
            "DequantizeLinear",
            vec![inp(0), inp(1), inp(2)],
            tmp("x"),
            vec![],
        ));
        // Weights: per output channel (conv axis 0) or per column (matmul, last axis).
        let w_axis = if n.op_type == "QLinearConv" { 0 } else { -1 };
        out.push(node(
            "DequantizeLinear",
            vec![inp(3), inp(4), inp(5)],
            tmp("w"),
            vec![axis(w_axis)],
        ));
        let mut op_ins = vec![tmp("x"), tmp("w")];
        if n.input.len() == 9 && !n.input[8].is_empty() {
            out.push(node("Mul", vec![inp(1), inp(4)], tmp("bias_scale"), vec![]));
            out.push(node(
                "DequantizeLinear",
                vec![inp(8), tmp("bias_scale")],
                tmp("b"),
                vec![axis(0)],
            ));
            op_ins.push(tmp("b"));
        }
        let (op, attrs) = if n.op_type == "QLinearConv" {
            ("Conv", n.attribute.clone())
        } else {
            ("MatMul", vec![])
        };
        out.push(node(op, op_ins, tmp("y"), attrs));
        out.push(node(
            "QuantizeLinear",
            vec![tmp("y"), inp(6), inp(7)],
            y.clone(),
            vec![],
        ));
    }
    out
}

/// The int8 arithmetic of an imported graph: a QDQ model's int8 ops round
/// like ONNX Runtime ([`Rounding::Float`]), so that Ferrite gives its answers
/// to the bit; `uint8` when its QuantizeLinear/DequantizeLinear nodes use
/// uint8 codes (the default without a zero-point). A float graph keeps the
/// default (whatever `--quantize` later makes of it rounds like TFLite).
fn qdq_rounding(g: &Graph, nodes: &[NodeProto], vals: &HashMap<String, Val>) -> Rounding {
    let int8_ops = g
        .tensors
        .iter()
        .any(|t| t.dtype == DType::I8 && t.quant != Quant::None && t.data.is_none());
    if !int8_ops {
        return Rounding::FixedPoint;
    }
    let const_ty = |name: &String| match vals.get(name) {
        Some(Val::C(c)) => Some(c.ty),
        _ => None,
    };
    // A zero-point's type is the codes' type; without one, QuantizeLinear
    // makes uint8 and DequantizeLinear reads whatever its (constant) input is.
    let uint8 = nodes.iter().any(|n| {
        let zp = n.input.get(2).filter(|z| !z.is_empty());
        match (n.op_type.as_str(), zp) {
            ("QuantizeLinear" | "DequantizeLinear", Some(z)) => const_ty(z) == Some(dt::UINT8),
            ("QuantizeLinear", None) => true,
            ("DequantizeLinear", None) => n.input.first().and_then(const_ty) == Some(dt::UINT8),
            _ => false,
        }
    });
    Rounding::Float { uint8 }
}

/// The element type and static shape of a graph input, with symbolic
/// dimensions bound by `--shape`.
fn input_type(
    inp: &super::proto::ValueInfoProto,
    options: &ConvertOptions,
) -> Result<(i32, Vec<usize>)> {
    let tt = inp
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| anyhow!("input '{}' is not a tensor", inp.name))?;
    let bound = options
        .shapes
        .iter()
        .find(|(n, _)| n == &inp.name)
        .map(|(_, d)| d.clone());
    let dims = tt.shape.as_ref().ok_or_else(|| {
        anyhow!(
            "input '{}' has no shape; pass --shape {}=...",
            inp.name,
            inp.name
        )
    })?;
    if let Some(b) = bound {
        if b.len() != dims.dim.len() {
            bail!(
                "--shape {}: the input has rank {}, got {} dimensions",
                inp.name,
                dims.dim.len(),
                b.len()
            );
        }
        for (i, d) in dims.dim.iter().enumerate() {
            if let Some(super::proto::DimValue::DimValue(v)) = d.value {
                if v >= 0 && v as usize != b[i] {
                    bail!(
                        "--shape {}: dimension {i} is fixed at {v} in the model, got {}",
                        inp.name,
                        b[i]
                    );
                }
            }
        }
        numel(&b)?;
        return Ok((tt.elem_type, b));
    }
    let mut out = Vec::new();
    for (i, d) in dims.dim.iter().enumerate() {
        match &d.value {
            Some(super::proto::DimValue::DimValue(v)) if *v >= 0 => out.push(*v as usize),
            Some(super::proto::DimValue::DimParam(p)) => bail!(
                "input '{}' has symbolic dimension '{p}' at axis {i}; bind it with --shape {}=D0x D1x...",
                inp.name,
                inp.name
            ),
            _ => bail!(
                "input '{}' has an unknown dimension at axis {i}; bind it with --shape {}=...",
                inp.name,
                inp.name
            ),
        }
    }
    numel(&out)?;
    Ok((tt.elem_type, out))
}

/// Attribute lookup helpers over one node.
struct Attrs<'n>(&'n [AttributeProto]);

impl<'n> Attrs<'n> {
    fn get(&self, name: &str) -> Option<&'n AttributeProto> {
        self.0.iter().find(|a| a.name == name)
    }
    fn int(&self, name: &str, default: i64) -> Result<i64> {
        match self.get(name) {
            None => Ok(default),
            Some(a) if a.r#type == at::INT || a.r#type == 0 => Ok(a.i),
            Some(_) => bail!("attribute '{name}' must be an int"),
        }
    }
    fn float(&self, name: &str, default: f32) -> Result<f32> {
        match self.get(name) {
            None => Ok(default),
            Some(a) if a.r#type == at::FLOAT || a.r#type == 0 => Ok(a.f),
            Some(_) => bail!("attribute '{name}' must be a float"),
        }
    }
    fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        match self.get(name) {
            None => Ok(None),
            Some(a) if a.r#type == at::INTS || a.r#type == 0 => Ok(Some(a.ints.clone())),
            Some(_) => bail!("attribute '{name}' must be a list of ints"),
        }
    }
    fn string(&self, name: &str, default: &str) -> Result<String> {
        match self.get(name) {
            None => Ok(default.to_string()),
            Some(a) if a.r#type == at::STRING || a.r#type == 0 => String::from_utf8(a.s.clone())
                .map_err(|_| anyhow!("attribute '{name}' is not UTF-8")),
            Some(_) => bail!("attribute '{name}' must be a string"),
        }
    }
}

/// The window attributes of a 1-D op as those of the 2-D op on an image
/// one row high: kernel, strides, dilations `[1, v]`, output padding `[0, v]`,
/// pads `[0, begin, 0, end]`.
fn row_attrs(attrs: &[AttributeProto]) -> Result<Vec<AttributeProto>> {
    attrs
        .iter()
        .map(|a| {
            let mut a = a.clone();
            let unit = match a.name.as_str() {
                "kernel_shape" | "strides" | "dilations" | "output_shape" => Some(1),
                "output_padding" => Some(0),
                "pads" => None,
                _ => return Ok(a),
            };
            let want = if unit.is_some() { 1 } else { 2 };
            if a.ints.len() != want {
                bail!(
                    "{} must have {want} value(s) for a 1-D input, got {:?}",
                    a.name,
                    a.ints
                );
            }
            if unit == Some(1) && a.name != "output_shape" && a.ints[0] < 1 {
                bail!("{} must be positive, got {:?}", a.name, a.ints);
            }
            a.ints = match unit {
                Some(u) => vec![u, a.ints[0]],
                None => vec![0, a.ints[0], 0, a.ints[1]],
            };
            Ok(a)
        })
        .collect()
}

/// Input `k` of a normalization over `[N, C, ...]` (rank `rank`): a constant
/// of one value per channel, or with `groups` also one per group (repeated
/// over the group's channels), shaped `[C, 1, ...]` to broadcast.
fn channel_param(
    ins: &[Option<Val>],
    k: usize,
    what: &str,
    c: usize,
    rank: usize,
    groups: Option<usize>,
) -> Result<Val> {
    let v = match ins.get(k).cloned().flatten() {
        Some(Val::C(v)) => v.as_f32(),
        _ => bail!("{what} must be constant"),
    };
    let v: Vec<f32> = match groups {
        _ if v.len() == c => v,
        Some(g) if v.len() == g => (0..c).map(|ch| v[ch / (c / g)]).collect(),
        Some(g) => bail!("{what} must have {c} values (or {g}, one per group)"),
        None => bail!("{what} must have {c} values"),
    };
    let mut dims = vec![c];
    dims.resize(rank - 1, 1);
    Ok(Val::C(Rc::new(Const::f32(dims, v))))
}

/// `t` as the same kind of value as `v`: a dequantized view if `v` is one.
fn same_kind(v: &Val, t: TVal) -> Val {
    if matches!(v, Val::Q(_)) {
        Val::Q(t)
    } else {
        Val::T(t)
    }
}

/// The signal `[N, C, L]` of an image `[N, C, 1, L]` stored as NHWC (what
/// the window ops make): the same tensor.
fn signal_of_image(v: &Val) -> Result<Val> {
    let (Val::T(t) | Val::Q(t)) = v else {
        bail!("expected a runtime tensor")
    };
    if t.layout != Layout::Nhwc {
        bail!("a 1-D window op made a {:?} output", t.layout);
    }
    Ok(same_kind(
        v,
        TVal {
            id: t.id,
            layout: Layout::Ncl,
        },
    ))
}

/// A node's first input (required).
fn first_input(ins: &[Option<Val>]) -> Result<Val> {
    ins.first()
        .cloned()
        .flatten()
        .ok_or_else(|| anyhow!("missing input"))
}

/// A 1-D filter `[O, I, K]` as the 2-D filter `[O, I, 1, K]` (same data).
fn unit_height(c: &Const) -> Result<Const> {
    if c.dims.len() != 3 {
        bail!(
            "the weights must be 3-D for a 1-D input, got shape {:?}",
            c.dims
        );
    }
    let mut c = c.clone();
    c.dims.insert(2, 1);
    Ok(c)
}

fn to_usize(v: i64, what: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| anyhow!("{what} must be >= 0 (got {v})"))
}

/// Normalizes a possibly negative axis against `rank`.
fn axis_of(a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if v < 0 || v >= r.max(1) {
        bail!("axis {a} is out of range for rank {rank}");
    }
    Ok(v as usize)
}

fn f32_bits(v: f32) -> i32 {
    v.to_bits() as i32
}

fn i32_of(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| anyhow!("value {v} is too large"))
}

impl<'m> Lower<'m> {
    // ----- IR building -------------------------------------------------

    fn new_tensor(&mut self, name: &str, dtype: DType, shape: Vec<usize>, quant: Quant) -> usize {
        self.g.add_tensor(Tensor {
            name: name.to_string(),
            dtype,
            shape,
            quant,
            data: None,
        })
    }

    fn emit(&mut self, code: OpCode, attrs: Vec<i32>, ins: &[usize], out: usize) {
        self.emit_opt(
            code,
            attrs,
            ins.iter().map(|&i| Some(i)).collect(),
            vec![out],
        );
    }

    fn emit_opt(
        &mut self,
        code: OpCode,
        attrs: Vec<i32>,
        ins: Vec<Option<usize>>,
        outs: Vec<usize>,
    ) {
        self.g.nodes.push(Node {
            code,
            attrs,
            inputs: ins,
            outputs: outs,
            origin: self.origin.clone(),
        });
    }

    fn const_tensor(&mut self, name: &str, c: &Const) -> Result<usize> {
        let (dtype, bytes) = c.to_bytes()?;
        Ok(self.g.add_tensor(Tensor {
            name: name.to_string(),
            dtype,
            shape: c.dims.clone(),
            quant: Quant::None,
            data: Some(bytes),
        }))
    }

    fn dims(&self, t: TVal) -> Vec<usize> {
        t.layout.logical(&self.g.tensors[t.id].shape)
    }

    /// Logical (ONNX) dims of a value.
    fn shape_of(&self, v: &Val) -> Vec<usize> {
        match v {
            Val::C(c) => c.dims.clone(),
            Val::T(t) | Val::Q(t) => self.dims(*t),
        }
    }

    /// ONNX element type of a value (dequantized views are float).
    fn type_of(&self, v: &Val) -> i32 {
        match v {
            Val::C(c) => c.ty,
            Val::Q(_) => dt::FLOAT,
            Val::T(t) => value::onnx_type(self.g.tensors[t.id].dtype),
        }
    }

    fn tensor_name(&self, t: usize) -> String {
        self.g.tensors[t].name.clone()
    }

    /// A float (or integer) runtime tensor for `v`, dequantizing `Q` values.
    fn tensor(&mut self, v: &Val) -> Result<TVal> {
        Ok(match v {
            Val::T(t) => *t,
            Val::C(c) => {
                let id = self.const_tensor("const", c)?;
                TVal {
                    id,
                    layout: Layout::Plain,
                }
            }
            Val::Q(q) => {
                if let Some(&id) = self.dequantized.get(&q.id) {
                    return Ok(TVal {
                        id,
                        layout: q.layout,
                    });
                }
                let t = &self.g.tensors[q.id];
                let (name, shape) = (format!("{}/dequantized", t.name), t.shape.clone());
                let id = self.new_tensor(&name, DType::F32, shape, Quant::None);
                self.emit(OpCode::Dequantize, vec![], &[q.id], id);
                self.dequantized.insert(q.id, id);
                TVal {
                    id,
                    layout: q.layout,
                }
            }
        })
    }

    /// Tensor `t` (any layout) in ONNX's layout.
    fn stored_plain(&mut self, t: TVal) -> usize {
        if t.layout == Layout::Plain {
            return t.id;
        }
        self.relayout(t.id, t.layout, Layout::Plain)
    }

    /// Tensor `t` of a rank-4 value as NHWC.
    fn stored_nhwc(&mut self, t: TVal) -> Result<usize> {
        self.stored_in(t, Layout::Nhwc)
    }

    /// Tensor `t` stored in `want` (a channels-last layout needs the
    /// logical rank it is made for).
    fn stored_in(&mut self, t: TVal, want: Layout) -> Result<usize> {
        if t.layout == want {
            return Ok(t.id);
        }
        let plain = self.stored_plain(t);
        if want == Layout::Plain {
            return Ok(plain);
        }
        let shape = &self.g.tensors[plain].shape;
        if Layout::channels_last(shape.len()) != want {
            let what = if want == Layout::Nhwc {
                "a 4-D NCHW"
            } else {
                "a 3-D [N, C, L]"
            };
            bail!("expected {what} tensor, got shape {shape:?}");
        }
        Ok(self.relayout(plain, Layout::Plain, want))
    }

    /// A copy of tensor `id` (stored in `from`) stored in `to`; one of the
    /// two is `Plain`. Cached both ways.
    fn relayout(&mut self, id: usize, from: Layout, to: Layout) -> usize {
        if let Some(&r) = self.relayout.get(&(id, from, to)) {
            return r;
        }
        let t = &self.g.tensors[id];
        let logical = from.logical(&t.shape);
        let shape = to.stored(&logical);
        let (dtype, quant) = (t.dtype, t.quant.clone());
        // When channels or the spatial size is 1 both layouts have the same
        // memory order, and a reshape (free, in place) does the job.
        let same_order = logical[1..].iter().filter(|&&d| d != 1).count() <= 1;
        let suffix = match (from, to) {
            (_, Layout::Nhwc) => "nhwc",
            (_, Layout::Ncl) => "nlc",
            (Layout::Ncl, _) => "ncl",
            _ => "nchw",
        };
        let name = format!("{}/{suffix}", t.name);
        let r = self.new_tensor(&name, dtype, shape, quant.clone());
        if same_order {
            self.emit(OpCode::Reshape, vec![], &[id], r);
        } else {
            // Rank 4 both ways; an `Ncl` value goes through its image `[N, C, 1, L]`.
            let to_nhwc = to != Layout::Plain;
            let perm = if to_nhwc { NCHW_TO_NHWC } else { NHWC_TO_NCHW };
            let perm: Vec<i32> = perm.iter().map(|&p| p as i32).collect();
            if from == Layout::Ncl || to == Layout::Ncl {
                let image = vec![logical[0], logical[1], 1, logical[2]];
                let row = self.new_tensor(&format!("{name}/image"), dtype, image, quant);
                if to_nhwc {
                    self.emit(OpCode::Reshape, vec![], &[id], row);
                    self.emit(OpCode::Transpose, perm, &[row], r);
                } else {
                    self.emit(OpCode::Transpose, perm, &[id], row);
                    self.emit(OpCode::Reshape, vec![], &[row], r);
                }
            } else {
                self.emit(OpCode::Transpose, perm, &[id], r);
            }
        }
        self.relayout.insert((id, from, to), r);
        self.relayout.insert((r, to, from), id);
        r
    }

    /// `v` as a runtime tensor in ONNX's layout.
    fn plain(&mut self, v: &Val) -> Result<usize> {
        let t = self.tensor(v)?;
        Ok(self.stored_plain(t))
    }

    /// `v` as an NHWC runtime tensor (rank 4 required).
    fn nhwc(&mut self, v: &Val) -> Result<usize> {
        self.value_in(v, Layout::Nhwc)
    }

    /// `v` as a runtime tensor stored in `layout`.
    fn value_in(&mut self, v: &Val, layout: Layout) -> Result<usize> {
        let t = self.tensor(v)?;
        self.stored_in(t, layout)
    }

    /// A constant `c` placed to broadcast against a value of logical rank
    /// `rank` stored in `layout`.
    fn const_for(&mut self, c: &Const, layout: Layout, rank: usize) -> Result<usize> {
        if layout == Layout::Plain || c.dims.len() > rank {
            return self.const_tensor("const", c);
        }
        let mut dims = vec![1; rank - c.dims.len()];
        dims.extend(&c.dims);
        if layout == Layout::Ncl {
            dims.insert(2, 1); // the image [N, C, 1, L]
        }
        let c4 = Const {
            ty: c.ty,
            dims,
            data: c.data.clone(),
        };
        let t = fold::transpose(&c4, &NCHW_TO_NHWC)?;
        self.const_tensor("const", &t)
    }

    fn out_tensor(&mut self, name: &str, like: usize, shape: Vec<usize>) -> usize {
        let t = &self.g.tensors[like];
        let (dtype, quant) = (t.dtype, t.quant.clone());
        self.new_tensor(name, dtype, shape, quant)
    }

    fn set(&mut self, name: &str, v: Val) {
        if !name.is_empty() {
            self.vals.insert(name.to_string(), v);
        }
    }

    // ----- QDQ helpers ------------------------------------------------

    /// If the only reader of `value` is a QuantizeLinear with constant
    /// per-tensor parameters, its index and the int8 parameters.
    fn single_q_consumer(&self, value: &str) -> Option<(usize, QParams)> {
        if self.uses.get(value) != Some(&1) {
            return None;
        }
        let &i = self.consumer.get(value)?;
        let n = &self.nodes[i];
        if n.op_type != "QuantizeLinear" || n.input.first().map(String::as_str) != Some(value) {
            return None;
        }
        let q = self.const_qparams(n.input.get(1)?, n.input.get(2))?;
        Some((i, q))
    }

    /// Int8 parameters from constant scale/zero-point inputs (uint8 shifted).
    fn const_qparams(&self, scale: &str, zp: Option<&String>) -> Option<QParams> {
        let s = match self.vals.get(scale)? {
            Val::C(c) if c.numel() == 1 => c.as_f32()[0],
            _ => return None,
        };
        let (z, ty) = match zp.filter(|z| !z.is_empty()) {
            None => (0, dt::UINT8),
            Some(z) => match self.vals.get(z)? {
                Val::C(c) if c.numel() == 1 => (c.as_i64()[0], c.ty),
                _ => return None,
            },
        };
        let z = match ty {
            dt::UINT8 => z - 128,
            dt::INT8 => z,
            _ => return None,
        };
        (s.is_finite() && s > 0.0).then_some(QParams {
            scale: s,
            zero_point: z as i32,
        })
    }

    fn qparams_of(&self, t: TVal) -> QParams {
        self.g.tensors[t.id]
            .quant
            .per_tensor()
            .expect("Q values are per-tensor int8")
    }

    /// Finishes a fused int8 op: its output becomes the QuantizeLinear's output.
    fn bind_q(&mut self, q_node: usize, out: TVal) {
        if let Some(o) = self.nodes[q_node].output.first() {
            self.prebound.insert(o.clone(), Val::T(out));
        }
    }

    fn q_tensor(&mut self, name: &str, shape: Vec<usize>, q: QParams) -> usize {
        self.new_tensor(name, DType::I8, shape, Quant::PerTensor(q))
    }

    // ----- nodes ------------------------------------------------------

    fn node(&mut self, index: usize, n: &NodeProto) -> Result<()> {
        if self.fused.contains(&index) {
            return Ok(());
        }
        if !n.domain.is_empty() && n.domain != "ai.onnx" {
            bail!("operators of domain '{}' are not supported", n.domain);
        }
        if let Some(v) = n.output.first().and_then(|o| self.prebound.remove(o)) {
            // A QuantizeLinear whose producer was fused into an int8 op.
            self.set(&n.output[0], v);
            return Ok(());
        }
        let mut ins = Vec::with_capacity(n.input.len());
        for x in &n.input {
            if x.is_empty() {
                ins.push(None);
            } else {
                let v = self.vals.get(x).cloned().ok_or_else(|| {
                    anyhow!("input '{x}' is produced by no earlier node (dangling input or cycle)")
                })?;
                ins.push(Some(v));
            }
        }
        let a = Attrs(&n.attribute);
        if let Some(outs) = self.try_fold(n, &ins, &a)? {
            for (name, c) in n.output.iter().zip(outs) {
                self.set(name, Val::C(Rc::new(c)));
            }
            return Ok(());
        }
        let out = n.output.first().cloned().unwrap_or_default();
        let input = |k: usize| -> Result<Val> {
            ins.get(k)
                .cloned()
                .flatten()
                .ok_or_else(|| anyhow!("required input {k} is missing"))
        };
        let opt = |k: usize| -> Option<Val> { ins.get(k).cloned().flatten() };
        let window_op = matches!(
            n.op_type.as_str(),
            "Conv"
                | "ConvTranspose"
                | "MaxPool"
                | "AveragePool"
                | "GlobalAveragePool"
                | "GlobalMaxPool"
        );
        if window_op && matches!(ins.first(), Some(Some(x)) if self.shape_of(x).len() == 3) {
            return self.one_d(n, &ins);
        }
        match n.op_type.as_str() {
            "Identity" | "Dropout" => {
                if let Some(t) = opt(2) {
                    match t {
                        Val::C(c) if c.as_i64().iter().all(|&v| v == 0) => {}
                        _ => bail!("Dropout in training mode is not supported"),
                    }
                }
                if n.output.len() > 1
                    && !n.output[1].is_empty()
                    && self.uses.contains_key(&n.output[1])
                {
                    bail!("the Dropout mask output is not supported");
                }
                let v = input(0)?;
                self.set(&out, v);
            }
            "Conv" => self.conv(n, &a, &input(0)?, &input(1)?, opt(2))?,
            "Relu" | "Sigmoid" | "Tanh" | "HardSwish" => {
                let code = match n.op_type.as_str() {
                    "Relu" => OpCode::Relu,
                    "Sigmoid" => OpCode::Logistic,
                    "Tanh" => OpCode::Tanh,
                    _ => OpCode::HardSwish,
                };
                self.unary(&out, code, vec![], &input(0)?)?
            }
            "LeakyRelu" => {
                let alpha = a.float("alpha", 0.01)?;
                self.unary(&out, OpCode::LeakyRelu, vec![f32_bits(alpha)], &input(0)?)?
            }
            "Clip" => {
                let (lo, hi) = if self.opset < 11 {
                    (
                        a.float("min", f32::NEG_INFINITY)?,
                        a.float("max", f32::INFINITY)?,
                    )
                } else {
                    if matches!(opt(1), Some(Val::T(_))) || matches!(opt(2), Some(Val::T(_))) {
                        // Runtime bounds: max(x, lo) then min(., hi).
                        let mut v = input(0)?;
                        if let Some(lo) = opt(1) {
                            v = self.binary_named(&format!("{out}/lo"), BinOp::Max, &v, &lo)?;
                        }
                        if let Some(hi) = opt(2) {
                            v = self.binary_named(&out, BinOp::Min, &v, &hi)?;
                        }
                        self.set(&out, v);
                        return Ok(());
                    }
                    let bound = |v: Option<Val>, d: f32| -> Result<f32> {
                        match v {
                            None => Ok(d),
                            Some(Val::C(c)) if c.numel() == 1 => Ok(c.as_f32()[0]),
                            Some(_) => bail!("Clip bounds must be constant scalars"),
                        }
                    };
                    (
                        bound(opt(1), f32::NEG_INFINITY)?,
                        bound(opt(2), f32::INFINITY)?,
                    )
                };
                self.clip(&out, &input(0)?, lo, hi)?
            }
            "PRelu" => self.prelu(&out, &input(0)?, &input(1)?)?,
            "Add" | "Sub" | "Mul" | "Max" | "Min" if n.input.len() == 2 => {
                let op = BinOp::from_onnx(&n.op_type).expect("listed");
                let (x, y) = (input(0)?, input(1)?);
                if !self.binary_q8(&out, op, &x, &y)? {
                    let v = self.binary_named(&out, op, &x, &y)?;
                    self.set(&out, v);
                }
            }
            "Sum" | "Max" | "Min" if !n.input.is_empty() => {
                let op = match n.op_type.as_str() {
                    "Sum" => BinOp::Add,
                    "Max" => BinOp::Max,
                    _ => BinOp::Min,
                };
                let mut acc = input(0)?;
                for k in 1..n.input.len() {
                    let name = if k + 1 == n.input.len() {
                        out.clone()
                    } else {
                        format!("{out}/{k}")
                    };
                    acc = self.binary_named(&name, op, &acc, &input(k)?)?;
                }
                if n.input.len() == 1 {
                    let t = self.tensor(&acc)?;
                    let r = self.out_tensor(&out, t.id, self.g.tensors[t.id].shape.clone());
                    self.emit(OpCode::Reshape, vec![], &[t.id], r);
                    acc = Val::T(TVal {
                        id: r,
                        layout: t.layout,
                    });
                }
                self.set(&out, acc);
            }
            "BatchNormalization" => self.batch_norm(n, &a, &ins)?,
            "GlobalAveragePool" | "GlobalMaxPool" => self.global_pool(n, &input(0)?)?,
            "MaxPool" | "AveragePool" => self.pool(n, &a, &input(0)?)?,
            "Gemm" => self.gemm(n, &a, &input(0)?, &input(1)?, opt(2))?,
            "MatMul" => self.matmul(n, &input(0)?, &input(1)?)?,
            "Flatten" => {
                let x = input(0)?;
                let d = self.shape_of(&x);
                let axis = flatten_axis(a.int("axis", 1)?, d.len())?;
                let (outer, inner) = (numel(&d[..axis])?, numel(&d[axis..])?);
                self.reshape(&out, &x, vec![outer, inner])?
            }
            "Reshape" => {
                let x = input(0)?;
                let shape = match opt(1) {
                    Some(Val::C(c)) => c.as_i64(),
                    Some(_) => {
                        bail!("the target shape must be computable at conversion (constant)")
                    }
                    None => a.ints("shape")?.ok_or_else(|| anyhow!("missing shape"))?,
                };
                let allow_zero = a.int("allowzero", 0)? != 0;
                let dims = reshape_dims(&self.shape_of(&x), &shape, allow_zero)?;
                self.reshape(&out, &x, dims)?
            }
            "Squeeze" | "Unsqueeze" => {
                let x = input(0)?;
                let axes = self.axes_input(&a, opt(1))?;
                let dims = squeeze_dims(&n.op_type, &self.shape_of(&x), axes)?;
                self.reshape(&out, &x, dims)?
            }
            "Transpose" => self.transpose(&out, &a, &input(0)?)?,
            "Concat" => {
                a.get("axis").ok_or_else(|| anyhow!("missing axis"))?;
                let axis = a.int("axis", 0)?;
                let vals: Vec<Val> = ins.iter().flatten().cloned().collect();
                self.concat(&out, &vals, axis)?
            }
            "Softmax" => self.softmax_like(&out, &a, &input(0)?, false)?,
            "Pad" => self.pad(&out, &a, &input(0)?, opt(1), opt(2))?,
            "QuantizeLinear" => self.quantize_linear(n, &a, &input(0)?)?,
            "DequantizeLinear" => self.dequantize_linear(n, &a, &input(0)?)?,
            op if unary_fn(op).is_some() => {
                let (mut f, mut alpha, mut beta) = unary_fn(op).expect("checked");
                match op {
                    "Selu" => {
                        alpha = a.float("alpha", alpha)?;
                        beta = a.float("gamma", beta)?;
                    }
                    "HardSigmoid" => {
                        alpha = a.float("alpha", alpha)?;
                        beta = a.float("beta", beta)?;
                    }
                    "Elu" | "Celu" | "ThresholdedRelu" => alpha = a.float("alpha", alpha)?,
                    "Gelu" => match a.string("approximate", "none")?.as_str() {
                        "none" => {}
                        "tanh" => f = 30,
                        other => bail!("Gelu approximate '{other}' is not supported"),
                    },
                    _ => {}
                }
                let x = input(0)?;
                let t = self.tensor(&x)?;
                let want = match op {
                    "Not" => DType::Bool,
                    _ => DType::F32,
                };
                if self.g.tensors[t.id].dtype != want || self.g.tensors[t.id].quant != Quant::None {
                    bail!("supported for {} tensors only", want.name());
                }
                let shape = self.g.tensors[t.id].shape.clone();
                let out_dtype = if op == "IsNaN" { DType::Bool } else { want };
                let y = self.new_tensor(&out, out_dtype, shape, Quant::None);
                self.emit(
                    OpCode::Unary,
                    vec![f, f32_bits(alpha), f32_bits(beta)],
                    &[t.id],
                    y,
                );
                self.set(
                    &out,
                    Val::T(TVal {
                        id: y,
                        layout: t.layout,
                    }),
                );
            }
            "Div" | "Pow" | "Mod" | "Equal" | "Less" | "Greater" | "LessOrEqual"
            | "GreaterOrEqual" | "And" | "Or" | "Xor" => {
                let op = BinOp::from_onnx(&n.op_type).expect("listed");
                let (x, y) = (input(0)?, input(1)?);
                if op == BinOp::Pow
                    && self.type_of(&x) != self.type_of(&y)
                    && !matches!(y, Val::C(_))
                {
                    bail!("Pow with different base and exponent types is not supported");
                }
                // x² as x · x (what onnxruntime computes for an exponent of
                // 2, and the correctly rounded square): a layer norm written
                // out at opset < 17 squares every activation.
                let square = op == BinOp::Pow
                    && self.type_of(&x) == dt::FLOAT
                    && matches!(&y, Val::C(c) if c.numel() == 1
                        && c.as_f64() == [2.0]
                        && c.dims.len() <= self.shape_of(&x).len());
                let v = if square {
                    self.binary_named(&out, BinOp::Mul, &x, &x)?
                } else if op == BinOp::Mod && a.int("fmod", 0)? != 0 {
                    let t = self.binary_named(&out, op, &x, &y)?;
                    // fmod: same op with C semantics.
                    if let Val::T(tv) = &t {
                        if let Some(node) = self.g.nodes.last_mut() {
                            if node.outputs == [tv.id] {
                                node.attrs = vec![8];
                            }
                        }
                    }
                    t
                } else {
                    if op == BinOp::Mod && self.type_of(&x) == dt::FLOAT {
                        bail!("Mod with fmod=0 needs integer operands");
                    }
                    self.binary_named(&out, op, &x, &y)?
                };
                self.set(&out, v);
            }
            "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceProd"
            | "ReduceSumSquare" | "ReduceL1" | "ReduceL2" | "ReduceLogSum" | "ReduceLogSumExp" => {
                let f = match n.op_type.as_str() {
                    "ReduceSum" => 0,
                    "ReduceMean" => 1,
                    "ReduceMax" => 2,
                    "ReduceMin" => 3,
                    "ReduceProd" => 4,
                    "ReduceSumSquare" => 5,
                    "ReduceL1" => 6,
                    "ReduceL2" => 7,
                    "ReduceLogSum" => 8,
                    _ => 9,
                };
                let axes_as_input =
                    self.opset >= 18 || (n.op_type == "ReduceSum" && self.opset >= 13);
                let axes = if axes_as_input {
                    match opt(1) {
                        Some(Val::C(c)) => c.as_i64(),
                        Some(_) => bail!("axes must be constant"),
                        None => vec![],
                    }
                } else {
                    a.ints("axes")?.unwrap_or_default()
                };
                let keep = a.int("keepdims", 1)? != 0;
                let noop = a.int("noop_with_empty_axes", 0)? != 0;
                let x = input(0)?;
                self.reduce(&out, f, &x, axes, keep, noop)?
            }
            "ArgMax" | "ArgMin" => {
                let x = input(0)?;
                let axis = axis_of(a.int("axis", 0)?, self.shape_of(&x).len())?;
                let keep = a.int("keepdims", 1)? != 0;
                let last = a.int("select_last_index", 0)? != 0;
                let max = n.op_type == "ArgMax";
                let v = self.arg_reduce(&out, &x, axis, keep, max, last)?;
                self.set(&out, v);
            }
            "Where" => {
                let v = self.select(&out, &input(0)?, &input(1)?, &input(2)?)?;
                self.set(&out, v);
            }
            "LogSoftmax" => self.softmax_like(&out, &a, &input(0)?, true)?,
            "Gather" => {
                let (x, idx) = (input(0)?, input(1)?);
                let xi = self.plain(&x)?;
                let d = self.g.tensors[xi].shape.clone();
                let axis = axis_of(a.int("axis", 0)?, d.len())?;
                let ii = match &idx {
                    Val::C(c) => {
                        // Constant indices: normalize negatives and check ranges now.
                        let v = c.as_i64();
                        let dim = d[axis] as i64;
                        if v.iter().any(|&i| i < -dim || i >= dim) {
                            bail!("gather index out of range for size {dim}");
                        }
                        self.const_tensor("indices", &Const::i64(c.dims.clone(), v))?
                    }
                    other => self.plain(other)?,
                };
                let mut ys = d[..axis].to_vec();
                ys.extend(self.g.tensors[ii].shape.clone());
                ys.extend(&d[axis + 1..]);
                let yid = self.out_tensor(&out, xi, ys);
                self.emit(OpCode::Gather, vec![i32_of(axis)?], &[xi, ii], yid);
                self.set(
                    &out,
                    Val::T(TVal {
                        id: yid,
                        layout: Layout::Plain,
                    }),
                );
            }
            "Expand" => {
                let x = input(0)?;
                let shape = match opt(1) {
                    Some(Val::C(c)) => c.as_i64(),
                    _ => bail!("the target shape must be constant"),
                };
                let target: Vec<usize> = shape
                    .iter()
                    .map(|&d| to_usize(d, "shape"))
                    .collect::<Result<_>>()?;
                let ty = self.type_of(&x);
                let zeros =
                    Const::ints(dt::INT64, target.clone(), vec![0; numel(&target)?]).cast(ty)?;
                let xi = self.plain(&x)?;
                let zi = self.const_tensor("expand_shape", &zeros)?;
                let ys = fold::broadcast(&self.shape_of(&x), &target)?;
                let yid = self.out_tensor(&out, xi, ys);
                self.emit(OpCode::Binary, vec![17], &[xi, zi], yid);
                self.set(
                    &out,
                    Val::T(TVal {
                        id: yid,
                        layout: Layout::Plain,
                    }),
                );
            }
            // One Gather per repeated axis (`Graph::tile`).
            "Tile" => {
                let x = input(0)?;
                let reps = match opt(1) {
                    Some(Val::C(c)) => c.as_i64(),
                    _ => bail!("the repeats must be constant"),
                };
                let d = self.shape_of(&x);
                if reps.len() != d.len() || reps.iter().any(|&r| !(1..=1 << 20).contains(&r)) {
                    bail!("repeats {reps:?} must be {} values from 1 to 2^20", d.len());
                }
                let tiled: Vec<usize> = d
                    .iter()
                    .zip(&reps)
                    .map(|(&n, &r)| n.saturating_mul(r as usize))
                    .collect();
                numel(&tiled)?;
                let xi = self.plain(&x)?;
                let y = self.out_tensor(&out, xi, tiled);
                let reps: Vec<usize> = reps.iter().map(|&r| r as usize).collect();
                let last = self.g.tile(xi, &reps, y, &self.origin.clone());
                self.g.nodes.push(last);
                self.set(
                    &out,
                    Val::T(TVal {
                        id: y,
                        layout: Layout::Plain,
                    }),
                );
            }
            "Resize" | "Upsample" => self.resize(n, &a, &ins)?,
            "DepthToSpace" | "SpaceToDepth" => {
                let x = input(0)?;
                let d = self.shape_of(&x);
                if d.len() != 4 {
                    bail!("only 4-D inputs are supported");
                }
                let b = to_usize(a.int("blocksize", 0)?, "blocksize")?;
                if b == 0 {
                    bail!("blocksize must be positive");
                }
                let d2s = n.op_type == "DepthToSpace";
                let mode = a.string("mode", "DCR")?;
                if d2s && mode != "DCR" && mode != "CRD" {
                    bail!("DepthToSpace mode '{mode}' is not supported (DCR and CRD are)");
                }
                let ys = if d2s {
                    if !d[1].is_multiple_of(b * b) {
                        bail!("channels must be a multiple of blocksize^2");
                    }
                    vec![d[0], d[2] * b, d[3] * b, d[1] / (b * b)]
                } else {
                    if !d[2].is_multiple_of(b) || !d[3].is_multiple_of(b) {
                        bail!("height and width must be multiples of blocksize");
                    }
                    vec![d[0], d[2] / b, d[3] / b, d[1] * b * b]
                };
                if d2s && mode == "CRD" {
                    let v = self.depth_to_space_crd(&out, &x, b)?;
                    self.set(&out, v);
                    return Ok(());
                }
                let xi = self.nhwc(&x)?;
                let y = self.out_tensor(&out, xi, ys);
                let code = if d2s {
                    OpCode::DepthToSpace
                } else {
                    OpCode::SpaceToDepth
                };
                self.emit(code, vec![i32_of(b)?], &[xi], y);
                self.set(
                    &out,
                    Val::T(TVal {
                        id: y,
                        layout: Layout::Nhwc,
                    }),
                );
            }
            "ConvTranspose" => self.conv_transpose(n, &a, &input(0)?, &input(1)?, opt(2))?,
            "Split" => self.split(n, &a, &input(0)?, opt(1))?,
            "Slice" => {
                let x = input(0)?;
                let consts: Vec<Option<Const>> = ins
                    .iter()
                    .map(|v| match v {
                        Some(Val::C(c)) => Some((**c).clone()),
                        _ => None,
                    })
                    .collect();
                if ins
                    .iter()
                    .skip(1)
                    .any(|v| matches!(v, Some(Val::T(_)) | Some(Val::Q(_))))
                {
                    bail!("starts, ends, axes and steps must be constant");
                }
                // In the input's own layout: a channel slice of an NHWC
                // value (YOLOv8's C2f) slices its last stored axis, with no
                // transpose to NCHW and back around it.
                let TVal { id: xi, layout } = self.tensor(&x)?;
                let stored = self.g.tensors[xi].shape.clone();
                let d = layout.logical(&stored);
                let params = self.slice_params(d.len(), &consts, &a)?;
                let logical = self.resolve_slice(&d, &params)?;
                let axes: Vec<fold::SliceAxis> = layout
                    .stored_axes(d.len())
                    .iter()
                    .map(|l| match l {
                        Some(l) => logical[*l].clone(),
                        None => fold::SliceAxis {
                            start: 0,
                            step: 1,
                            count: 1,
                        },
                    })
                    .collect();
                let mut attrs = vec![i32_of(axes.len())?];
                attrs.extend(axes.iter().map(|s| s.start as i32));
                attrs.extend(axes.iter().map(|s| s.step as i32));
                attrs.extend(axes.iter().map(|s| s.count as i32));
                let ys: Vec<usize> = axes.iter().map(|s| s.count).collect();
                if numel(&ys)? == 0 {
                    bail!("empty slices are not supported");
                }
                let yid = self.out_tensor(&out, xi, ys);
                self.emit(OpCode::StridedSlice, attrs, &[xi], yid);
                self.set(&out, Val::T(TVal { id: yid, layout }));
            }
            "LayerNormalization" => self.layer_norm(n, &a, &ins)?,
            "InstanceNormalization" => self.instance_norm(n, &a, &ins)?,
            "GroupNormalization" => self.group_norm(n, &a, &ins)?,
            "LRN" => {
                let x = input(0)?;
                let d = self.shape_of(&x);
                if !(2..=4).contains(&d.len()) {
                    bail!("only inputs of rank 2 to 4 are supported, got shape {d:?}");
                }
                let size = a.int("size", 0)?;
                if size < 1 {
                    bail!("size must be at least 1 (got {size})");
                }
                let (alpha, beta, bias) = (
                    a.float("alpha", 1e-4)?,
                    a.float("beta", 0.75)?,
                    a.float("bias", 1.0)?,
                );
                // Channels last: the op runs over the stored last axis.
                let layout = if d.len() == 2 {
                    Layout::Plain
                } else {
                    Layout::channels_last(d.len())
                };
                let xi = self.value_in(&x, layout)?;
                if self.g.tensors[xi].dtype != DType::F32 {
                    bail!("supported for float tensors only");
                }
                let before = (size - 1) / 2;
                let after = size - 1 - before;
                let y = self.out_tensor(&out, xi, self.g.tensors[xi].shape.clone());
                let attrs = vec![
                    i32_of(before as usize)?,
                    i32_of(after as usize)?,
                    f32_bits(bias),
                    f32_bits(alpha / size as f32),
                    f32_bits(beta),
                ];
                self.emit(OpCode::LocalResponseNorm, attrs, &[xi], y);
                self.set(&out, Val::T(TVal { id: y, layout }));
            }
            "CastLike" => {
                let x = input(0)?;
                let to = self.type_of(&input(1)?);
                self.cast(&out, &x, to)?
            }
            "Cast" => {
                let x = input(0)?;
                let to = a.int("to", 0)? as i32;
                self.cast(&out, &x, to)?
            }
            "Shape" | "Size" => unreachable!("folded in try_fold"),
            other => {
                if !self.composite(n, &a, &ins)? {
                    bail!("operator {other} is not supported")
                }
            }
        }
        for o in n.output.iter().skip(1) {
            if !o.is_empty() && !self.vals.contains_key(o) && self.uses.contains_key(o) {
                bail!("output '{o}' of this node is not supported");
            }
        }
        Ok(())
    }

    fn axes_input(&self, a: &Attrs<'_>, input: Option<Val>) -> Result<Vec<i64>> {
        Ok(match input {
            Some(Val::C(c)) => c.as_i64(),
            Some(_) => bail!("axes must be constant"),
            None => a.ints("axes")?.unwrap_or_default(),
        })
    }

    // ----- constant folding ------------------------------------------

    fn try_fold(
        &mut self,
        n: &NodeProto,
        ins: &[Option<Val>],
        a: &Attrs<'_>,
    ) -> Result<Option<Vec<Const>>> {
        let op = n.op_type.as_str();
        // Ops that only need shapes fold even on runtime tensors.
        match op {
            "Shape" => {
                let x = ins
                    .first()
                    .cloned()
                    .flatten()
                    .ok_or_else(|| anyhow!("missing input"))?;
                let d = self.shape_of(&x);
                let r = d.len() as i64;
                let clampi =
                    |v: i64| -> usize { (if v < 0 { v + r } else { v }).clamp(0, r) as usize };
                let s = clampi(a.int("start", 0)?);
                let e = clampi(a.int("end", r)?);
                let v: Vec<i64> = if s < e {
                    d[s..e].iter().map(|&x| x as i64).collect()
                } else {
                    vec![]
                };
                return Ok(Some(vec![Const::i64(vec![v.len()], v)]));
            }
            "Size" => {
                let x = ins
                    .first()
                    .cloned()
                    .flatten()
                    .ok_or_else(|| anyhow!("missing input"))?;
                let n = numel(&self.shape_of(&x))?;
                return Ok(Some(vec![Const::i64(vec![], vec![n as i64])]));
            }
            "Constant" => return Ok(Some(vec![self.constant_attr(a)?])),
            _ => {}
        }
        let consts: Vec<Option<Rc<Const>>> = ins
            .iter()
            .map(|v| match v {
                Some(Val::C(c)) => Some(Some(c.clone())),
                None => Some(None),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        if consts.len() != ins.len() || ins.is_empty() {
            if op == "ConstantOfShape" {
                bail!("the shape of ConstantOfShape must be computable at conversion");
            }
            return Ok(None);
        }
        let c = |k: usize| -> Result<&Const> {
            consts
                .get(k)
                .and_then(|c| c.as_deref())
                .ok_or_else(|| anyhow!("missing input {k}"))
        };
        let out = match op {
            "Identity" => c(0)?.clone(),
            "Cast" => c(0)?.cast(a.int("to", 0)? as i32)?,
            "ConstantOfShape" => {
                let dims: Vec<usize> = c(0)?
                    .as_i64()
                    .iter()
                    .map(|&d| to_usize(d, "shape"))
                    .collect::<Result<_>>()?;
                let n = numel(&dims)?;
                let v = match a.get("value").and_then(|x| x.t.as_ref()) {
                    Some(t) => decode_tensor(t, None)?,
                    None => Const::f32(vec![1], vec![0.0]),
                };
                if v.numel() != 1 {
                    bail!("ConstantOfShape value must have one element");
                }
                v.gather_flat(dims, &vec![0; n])
            }
            "Range" => {
                let (s, l, d) = (c(0)?, c(1)?, c(2)?);
                if s.is_float() {
                    let (s, l, d) = (s.as_f64()[0], l.as_f64()[0], d.as_f64()[0]);
                    let n = ((l - s) / d).ceil().max(0.0);
                    if n.is_nan() || n > 1e8 {
                        bail!("Range too large");
                    }
                    let v: Vec<f32> = (0..n as usize).map(|i| (s + i as f64 * d) as f32).collect();
                    Const {
                        ty: c(0)?.ty,
                        dims: vec![v.len()],
                        data: Data::F32(v),
                    }
                } else {
                    let (s0, l, d) = (s.as_i64()[0], l.as_i64()[0], d.as_i64()[0]);
                    if d == 0 {
                        bail!("Range delta must not be 0");
                    }
                    let n = ((l - s0) as f64 / d as f64).ceil().max(0.0);
                    if n.is_nan() || n > 1e8 {
                        bail!("Range too large");
                    }
                    let v: Vec<i64> = (0..n as i64).map(|i| s0 + i * d).collect();
                    Const::ints(s.ty, vec![v.len()], v)
                }
            }
            "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Mod" | "Equal" | "Less" | "Greater"
            | "LessOrEqual" | "GreaterOrEqual" | "And" | "Or" | "Xor"
                if ins.len() == 2 =>
            {
                fold::binary(BinOp::from_onnx(op).expect("listed"), c(0)?, c(1)?)?
            }
            "Max" | "Min" | "Sum" => {
                let bop = match op {
                    "Max" => BinOp::Max,
                    "Min" => BinOp::Min,
                    _ => BinOp::Add,
                };
                let mut acc = c(0)?.clone();
                for k in 1..ins.len() {
                    acc = fold::binary(bop, &acc, c(k)?)?;
                }
                acc
            }
            "Neg" | "Abs" | "Sqrt" | "Floor" | "Ceil" | "Reciprocal" | "Exp" | "Not" => {
                let x = c(0)?;
                match &x.data {
                    Data::I64(v) => {
                        let v = v
                            .iter()
                            .map(|&p| match op {
                                "Neg" => -p,
                                "Abs" => p.abs(),
                                "Not" => (p == 0) as i64,
                                _ => p,
                            })
                            .collect();
                        if !matches!(op, "Neg" | "Abs" | "Not" | "Floor" | "Ceil") {
                            return Ok(None);
                        }
                        Const::ints(x.ty, x.dims.clone(), v)
                    }
                    _ => {
                        if op == "Not" {
                            return Ok(None);
                        }
                        let v = x
                            .as_f32()
                            .iter()
                            .map(|&p| match op {
                                "Neg" => -p,
                                "Abs" => p.abs(),
                                "Sqrt" => p.sqrt(),
                                "Floor" => p.floor(),
                                "Ceil" => p.ceil(),
                                "Reciprocal" => 1.0 / p,
                                _ => p.exp(),
                            })
                            .collect();
                        Const {
                            ty: x.ty,
                            dims: x.dims.clone(),
                            data: Data::F32(v),
                        }
                        .cast(x.ty)?
                    }
                }
            }
            "Where" => {
                let (cond, x, y) = (c(0)?, c(1)?, c(2)?);
                let shape = fold::broadcast(&fold::broadcast(&cond.dims, &x.dims)?, &y.dims)?;
                let (cc, xx, yy) = (
                    fold::expand(cond, &shape)?,
                    fold::expand(x, &shape)?,
                    fold::expand(y, &shape)?,
                );
                let cv = cc.as_i64();
                let data = match (&xx.data, &yy.data) {
                    (Data::I64(p), Data::I64(q)) => Data::I64(
                        cv.iter()
                            .enumerate()
                            .map(|(i, &k)| if k != 0 { p[i] } else { q[i] })
                            .collect(),
                    ),
                    _ => {
                        let (p, q) = (xx.as_f32(), yy.as_f32());
                        Data::F32(
                            cv.iter()
                                .enumerate()
                                .map(|(i, &k)| if k != 0 { p[i] } else { q[i] })
                                .collect(),
                        )
                    }
                };
                Const {
                    ty: x.ty,
                    dims: shape,
                    data,
                }
            }
            "Expand" => {
                let shape: Vec<usize> = c(1)?
                    .as_i64()
                    .iter()
                    .map(|&d| to_usize(d, "shape"))
                    .collect::<Result<_>>()?;
                fold::expand(c(0)?, &shape)?
            }
            "Gather" => {
                let x = c(0)?;
                let axis = axis_of(a.int("axis", 0)?, x.dims.len())?;
                fold::gather(x, c(1)?, axis)?
            }
            "Unsqueeze" | "Squeeze" => {
                let x = c(0)?;
                let axes = match consts.get(1).and_then(|c| c.as_deref()) {
                    Some(c) => c.as_i64(),
                    None => a.ints("axes")?.unwrap_or_default(),
                };
                let dims = squeeze_dims(op, &x.dims, axes)?;
                Const { dims, ..x.clone() }
            }
            "Reshape" => {
                let x = c(0)?;
                let dims = reshape_dims(&x.dims, &c(1)?.as_i64(), a.int("allowzero", 0)? != 0)?;
                Const { dims, ..x.clone() }
            }
            "Flatten" => {
                let x = c(0)?;
                let axis = flatten_axis(a.int("axis", 1)?, x.dims.len())?;
                let (outer, inner) = (numel(&x.dims[..axis])?, numel(&x.dims[axis..])?);
                Const {
                    dims: vec![outer, inner],
                    ..x.clone()
                }
            }
            "Concat" => {
                let parts: Vec<&Const> = consts.iter().flatten().map(|c| c.as_ref()).collect();
                if parts.is_empty() {
                    bail!("Concat needs inputs");
                }
                let axis = axis_of(a.int("axis", 0)?, parts[0].dims.len())?;
                fold::concat(&parts, axis)?
            }
            "Transpose" => {
                let x = c(0)?;
                let perm = match a.ints("perm")? {
                    Some(p) => p
                        .iter()
                        .map(|&v| to_usize(v, "perm"))
                        .collect::<Result<Vec<_>>>()?,
                    None => (0..x.dims.len()).rev().collect(),
                };
                fold::transpose(x, &perm)?
            }
            "Slice" if self.opset >= 10 => {
                let x = c(0)?;
                let axes = self.slice_params(
                    x.dims.len(),
                    &consts
                        .iter()
                        .map(|c| c.as_deref().cloned())
                        .collect::<Vec<_>>(),
                    a,
                )?;
                let resolved = self.resolve_slice(&x.dims, &axes)?;
                fold::slice(x, &resolved)
            }
            "DequantizeLinear" => {
                let x = c(0)?;
                let scale = c(1)?;
                let zp = consts.get(2).and_then(|c| c.as_deref());
                let axis = if scale.numel() > 1 {
                    axis_of(a.int("axis", 1)?, x.dims.len())?
                } else {
                    0
                };
                let (s, z) = (
                    scale.as_f32(),
                    zp.map(|z| z.as_i64())
                        .unwrap_or_else(|| vec![0; scale.numel()]),
                );
                if z.len() != s.len() || (s.len() > 1 && x.dims.get(axis) != Some(&s.len())) {
                    bail!("scale/zero-point sizes do not match the quantization axis");
                }
                let inner: usize = x
                    .dims
                    .get(axis + 1..)
                    .map(|d| d.iter().product())
                    .unwrap_or(1);
                let v = x.as_i64();
                let f: Vec<f32> = v
                    .iter()
                    .enumerate()
                    .map(|(i, &q)| {
                        let ch = if s.len() > 1 {
                            (i / inner) % s.len()
                        } else {
                            0
                        };
                        (q - z[ch]) as f32 * s[ch]
                    })
                    .collect();
                if let Some(o) = n.output.first() {
                    self.qconsts.insert(
                        o.clone(),
                        QConst {
                            q: Rc::new(x.clone()),
                            scales: s.clone(),
                            zps: z.clone(),
                            axis,
                        },
                    );
                }
                Const::f32(x.dims.clone(), f)
            }
            _ => return Ok(None),
        };
        numel(&out.dims)?;
        if out.numel() != numel(&out.dims)? {
            bail!("internal error: folded constant has the wrong size");
        }
        Ok(Some(vec![out]))
    }

    fn constant_attr(&self, a: &Attrs<'_>) -> Result<Const> {
        let at =
            a.0.first()
                .ok_or_else(|| anyhow!("Constant without a value"))?;
        Ok(match at.name.as_str() {
            "value" => decode_tensor(
                at.t.as_ref()
                    .ok_or_else(|| anyhow!("value is not a tensor"))?,
                self.base_dir,
            )?,
            "value_float" => Const::f32(vec![], vec![at.f]),
            "value_floats" => Const::f32(vec![at.floats.len()], at.floats.clone()),
            "value_int" => Const::i64(vec![], vec![at.i]),
            "value_ints" => Const::i64(vec![at.ints.len()], at.ints.clone()),
            other => bail!("Constant attribute '{other}' is not supported"),
        })
    }

    /// Slice (starts, ends, axes, steps) from inputs (opset ≥ 10) or attributes.
    fn slice_params(
        &self,
        rank: usize,
        consts: &[Option<Const>],
        a: &Attrs<'_>,
    ) -> Result<Vec<(usize, i64, i64, i64)>> {
        let get = |k: usize| consts.get(k).cloned().flatten().map(|c| c.as_i64());
        let (starts, ends, axes, steps) = if self.opset >= 10 {
            (
                get(1).ok_or_else(|| anyhow!("missing starts"))?,
                get(2).ok_or_else(|| anyhow!("missing ends"))?,
                get(3),
                get(4),
            )
        } else {
            (
                a.ints("starts")?.unwrap_or_default(),
                a.ints("ends")?.unwrap_or_default(),
                a.ints("axes")?,
                None,
            )
        };
        let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            bail!("starts, ends, axes and steps must have the same length");
        }
        let mut out = Vec::new();
        for i in 0..starts.len() {
            out.push((axis_of(axes[i], rank)?, starts[i], ends[i], steps[i]));
        }
        Ok(out)
    }

    fn resolve_slice(
        &self,
        dims: &[usize],
        params: &[(usize, i64, i64, i64)],
    ) -> Result<Vec<fold::SliceAxis>> {
        let mut axes: Vec<fold::SliceAxis> = dims
            .iter()
            .map(|&d| fold::SliceAxis {
                start: 0,
                step: 1,
                count: d,
            })
            .collect();
        let mut seen = vec![false; dims.len()];
        for &(ax, s, e, st) in params {
            if std::mem::replace(&mut seen[ax], true) {
                bail!("axis {ax} is sliced twice");
            }
            axes[ax] = fold::slice_axis(dims[ax], s, e, st)?;
        }
        Ok(axes)
    }

    // ----- op lowering ------------------------------------------------

    fn unary(&mut self, out: &str, code: OpCode, attrs: Vec<i32>, x: &Val) -> Result<()> {
        let t = self.tensor(x)?;
        if self.g.tensors[t.id].dtype != DType::F32 {
            bail!("supported for float tensors only");
        }
        let shape = self.g.tensors[t.id].shape.clone();
        let y = self.out_tensor(out, t.id, shape);
        self.emit(code, attrs, &[t.id], y);
        self.set(
            out,
            Val::T(TVal {
                id: y,
                layout: t.layout,
            }),
        );
        Ok(())
    }

    fn clip(&mut self, out: &str, x: &Val, lo: f32, hi: f32) -> Result<()> {
        if lo.is_nan() || hi.is_nan() {
            bail!("Clip bounds must not be NaN");
        }
        let code = match (lo, hi) {
            (l, h) if l == 0.0 && h == f32::INFINITY => Some(OpCode::Relu),
            (l, h) if l == 0.0 && h == 6.0 => Some(OpCode::Relu6),
            (l, h) if l == -1.0 && h == 1.0 => Some(OpCode::ReluN1To1),
            _ => None,
        };
        if let Some(code) = code {
            return self.unary(out, code, vec![], x);
        }
        let mut v = x.clone();
        if lo > f32::NEG_INFINITY {
            v = self.binary_named(
                &format!("{out}/lo"),
                BinOp::Max,
                &v,
                &Val::C(Rc::new(Const::f32(vec![], vec![lo]))),
            )?;
        }
        if hi < f32::INFINITY {
            v = self.binary_named(
                out,
                BinOp::Min,
                &v,
                &Val::C(Rc::new(Const::f32(vec![], vec![hi]))),
            )?;
        }
        if lo == f32::NEG_INFINITY && hi == f32::INFINITY {
            let t = self.tensor(&v)?;
            let y = self.out_tensor(out, t.id, self.g.tensors[t.id].shape.clone());
            self.emit(OpCode::Reshape, vec![], &[t.id], y);
            v = Val::T(TVal {
                id: y,
                layout: t.layout,
            });
        }
        self.set(out, v);
        Ok(())
    }

    fn prelu(&mut self, out: &str, x: &Val, slope: &Val) -> Result<()> {
        let t = self.tensor(x)?;
        let rank = self.dims(t).len();
        let s = match slope {
            Val::C(c) => {
                // ONNX broadcasts the slope unidirectionally onto x.
                let full = fold::broadcast(&c.dims, &self.dims(t))?;
                if full != self.dims(t) {
                    bail!("slope shape {:?} does not broadcast onto the input", c.dims);
                }
                self.const_for(c, t.layout, rank)?
            }
            other => {
                let st = self.tensor(other)?;
                self.stored_in(st, t.layout)?
            }
        };
        let shape = self.g.tensors[t.id].shape.clone();
        let y = self.out_tensor(out, t.id, shape);
        self.emit(OpCode::Prelu, vec![], &[t.id, s], y);
        self.set(
            out,
            Val::T(TVal {
                id: y,
                layout: t.layout,
            }),
        );
        Ok(())
    }

    /// `x op y` on runtime tensors (broadcast), returning the output value.
    fn binary_named(&mut self, out: &str, op: BinOp, x: &Val, y: &Val) -> Result<Val> {
        if let (Val::C(a), Val::C(b)) = (x, y) {
            return Ok(Val::C(Rc::new(fold::binary(op, a, b)?)));
        }
        let (dx, dy) = (self.shape_of(x), self.shape_of(y));
        let out_dims = fold::broadcast(&dx, &dy)?;
        // Channels-last (NHWC, or `Ncl` at rank 3) when a runtime operand is
        // stored so, every runtime operand has the output's rank (to be made
        // so) and constants can be laid out to match.
        let r = out_dims.len();
        let cl = Layout::channels_last(r);
        let is_cl = |v: &Val| matches!(v, Val::T(t) | Val::Q(t) if t.layout == cl);
        let use_cl = cl != Layout::Plain
            && (is_cl(x) || is_cl(y))
            && [x, y].iter().all(|v| match v {
                Val::C(c) => c.dims.len() <= r,
                _ => self.shape_of(v).len() == r,
            });
        let layout = if use_cl { cl } else { Layout::Plain };
        let mut ids = [0usize; 2];
        for (k, v) in [x, y].into_iter().enumerate() {
            ids[k] = match v {
                Val::C(c) => {
                    // A constant takes the runtime operand's type (ONNX requires
                    // equal types except for Pow's exponent).
                    let other = self.type_of(if k == 0 { y } else { x });
                    let c = if c.ty != other {
                        c.cast(other)?
                    } else {
                        (**c).clone()
                    };
                    self.const_for(&c, layout, r)?
                }
                _ => self.value_in(v, layout)?,
            };
        }
        let (ta, tb) = (&self.g.tensors[ids[0]], &self.g.tensors[ids[1]]);
        if ta.dtype != tb.dtype {
            bail!(
                "operands have different types ({} and {})",
                ta.dtype.name(),
                tb.dtype.name()
            );
        }
        if ta.quant != Quant::None || tb.quant != Quant::None {
            bail!("quantized operands outside a QDQ pattern are not supported");
        }
        let dtype = ta.dtype;
        let shape = layout.stored(&out_dims);
        let tflite = match op {
            BinOp::Add => Some(OpCode::Add),
            BinOp::Sub => Some(OpCode::Sub),
            BinOp::Mul => Some(OpCode::Mul),
            BinOp::Max => Some(OpCode::Maximum),
            BinOp::Min => Some(OpCode::Minimum),
            _ => None,
        };
        let compare = matches!(
            op,
            BinOp::Equal
                | BinOp::Less
                | BinOp::Greater
                | BinOp::LessOrEqual
                | BinOp::GreaterOrEqual
                | BinOp::And
                | BinOp::Or
                | BinOp::Xor
        );
        let out_dtype = if compare { DType::Bool } else { dtype };
        let yid = self.new_tensor(out, out_dtype, shape, Quant::None);
        match tflite {
            Some(code) if dtype == DType::F32 => {
                let attrs = if matches!(code, OpCode::Maximum | OpCode::Minimum) {
                    vec![]
                } else {
                    vec![0]
                };
                self.emit(code, attrs, &ids, yid);
            }
            _ => {
                if dtype == DType::Bool
                    && !matches!(op, BinOp::And | BinOp::Or | BinOp::Xor | BinOp::Equal)
                {
                    bail!("{op:?} on bool tensors is not supported");
                }
                self.emit(OpCode::Binary, vec![binary_fn(op)], &ids, yid);
            }
        }
        Ok(Val::T(TVal { id: yid, layout }))
    }

    /// int8 Add/Sub/Mul of two dequantized tensors whose result is quantized
    /// by a single QuantizeLinear. Returns false when the pattern does not apply.
    fn binary_q8(&mut self, out: &str, op: BinOp, x: &Val, y: &Val) -> Result<bool> {
        let code = match op {
            BinOp::Add => OpCode::Add,
            BinOp::Sub => OpCode::Sub,
            BinOp::Mul => OpCode::Mul,
            _ => return Ok(false),
        };
        let (Val::Q(a), Val::Q(b)) = (x, y) else {
            return Ok(false);
        };
        let Some((qn, qy)) = self.single_q_consumer(out) else {
            return Ok(false);
        };
        let (a, b) = (*a, *b);
        let out_dims = fold::broadcast(&self.dims(a), &self.dims(b))?;
        let r = out_dims.len();
        let cl = Layout::channels_last(r);
        let use_cl = cl != Layout::Plain
            && (a.layout == cl || b.layout == cl)
            && self.dims(a).len() == r
            && self.dims(b).len() == r;
        let layout = if use_cl { cl } else { Layout::Plain };
        let (ia, ib) = (self.stored_in(a, layout)?, self.stored_in(b, layout)?);
        let yid = self.q_tensor(out, layout.stored(&out_dims), qy);
        self.emit(code, vec![0], &[ia, ib], yid);
        self.bind_q(qn, TVal { id: yid, layout });
        Ok(true)
    }

    fn window_attrs(
        &self,
        a: &Attrs<'_>,
        spatial: &[usize],
        kernel: &[usize],
        dil: &[usize],
    ) -> Result<(Vec<usize>, Vec<usize>)> {
        let r = spatial.len();
        let strides = match a.ints("strides")? {
            Some(s) => s
                .iter()
                .map(|&v| to_usize(v, "stride"))
                .collect::<Result<Vec<_>>>()?,
            None => vec![1; r],
        };
        if strides.len() != r || strides.contains(&0) {
            bail!("strides must have {r} positive entries");
        }
        let auto = a.string("auto_pad", "NOTSET")?;
        let pads = match auto.as_str() {
            "NOTSET" => match a.ints("pads")? {
                Some(p) => {
                    if p.len() != 2 * r {
                        bail!("pads must have {} entries", 2 * r);
                    }
                    p.iter()
                        .map(|&v| to_usize(v, "pad"))
                        .collect::<Result<Vec<_>>>()?
                }
                None => vec![0; 2 * r],
            },
            "VALID" => vec![0; 2 * r],
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut p = vec![0; 2 * r];
                for i in 0..r {
                    let out = spatial[i].div_ceil(strides[i]);
                    let eff = (kernel[i] - 1) * dil[i] + 1;
                    let total =
                        ((out.saturating_sub(1)) * strides[i] + eff).saturating_sub(spatial[i]);
                    let small = total / 2;
                    let (b, e) = if auto == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                    p[i] = b;
                    p[i + r] = e;
                }
                p
            }
            other => bail!("auto_pad '{other}' is not supported"),
        };
        Ok((strides, pads))
    }

    fn conv(
        &mut self,
        n: &NodeProto,
        a: &Attrs<'_>,
        x: &Val,
        w: &Val,
        b: Option<Val>,
    ) -> Result<()> {
        let out = n.output.first().cloned().unwrap_or_default();
        let Val::C(wc) = w else {
            bail!("the weights must be constant")
        };
        let xd = self.shape_of(x);
        if xd.len() != 4 || wc.dims.len() != 4 {
            bail!(
                "only 2-D convolution (4-D input and weights) is supported, input has shape {xd:?}"
            );
        }
        let group = to_usize(a.int("group", 1)?, "group")?;
        let (o, cg, kh, kw) = (wc.dims[0], wc.dims[1], wc.dims[2], wc.dims[3]);
        let c = xd[1];
        if group == 0 || cg * group != c || o % group != 0 {
            bail!(
                "weights {:?} do not match {c} input channels in {group} groups",
                wc.dims
            );
        }
        if let Some(k) = a.ints("kernel_shape")? {
            if k != [kh as i64, kw as i64] {
                bail!("kernel_shape {k:?} does not match the weights");
            }
        }
        let dil = match a.ints("dilations")? {
            Some(d) => d
                .iter()
                .map(|&v| to_usize(v, "dilation"))
                .collect::<Result<Vec<_>>>()?,
            None => vec![1, 1],
        };
        if dil.len() != 2 || dil.contains(&0) {
            bail!("dilations must have 2 positive entries");
        }
        let (st, pads) = self.window_attrs(a, &xd[2..], &[kh, kw], &dil)?;
        let oh = window_out(xd[2], kh, dil[0], st[0], pads[0], pads[2])?;
        let ow = window_out(xd[3], kw, dil[1], st[1], pads[1], pads[3])?;
        let depthwise = group == c && cg == 1 && group > 1;
        let attrs_base: Vec<i32> = [
            st[0], st[1], dil[0], dil[1], pads[0], pads[1], pads[2], pads[3],
        ]
        .iter()
        .map(|&v| i32_of(v))
        .collect::<Result<_>>()?;
        let ys = vec![xd[0], oh, ow, o];
        // The filter in the runtime's layout.
        let fperm: &[usize] = if depthwise {
            &[1, 2, 3, 0]
        } else {
            &[0, 2, 3, 1]
        };
        let code = if depthwise {
            OpCode::DepthwiseConv2d
        } else {
            OpCode::Conv2d
        };
        let mut attrs = attrs_base;
        attrs.push(0);
        if depthwise {
            attrs.push(i32_of(o / c)?);
        }

        // int8: DQ(x) * DQ(w) (+ DQ(b)) followed by one QuantizeLinear.
        if let (Val::Q(xq), Some(wq)) = (x, self.qconsts.get(&n.input[1]).cloned()) {
            let q_out = self
                .single_q_consumer(&out)
                .map(|(i, q)| (i, q, 0, usize::MAX));
            let q_out = q_out.or_else(|| self.q_after_activation(&out));
            if let Some((qn, qy, act, act_node)) = q_out {
                if let Some(filter) = self.int8_filter(&wq, fperm, depthwise, o)? {
                    let qx = self.qparams_of(*xq);
                    let bias = match &b {
                        None => None,
                        Some(bv) => {
                            Some(self.int8_bias(n.input.get(2), bv, qx.scale, &wq.scales, o)?)
                        }
                    };
                    let xi = self.stored_nhwc(*xq)?;
                    let yid = self.q_tensor(&out, ys, qy);
                    let mut attrs = attrs;
                    attrs[8] = act;
                    self.emit_opt(code, attrs, vec![Some(xi), Some(filter), bias], vec![yid]);
                    self.fused.insert(act_node);
                    self.bind_q(
                        qn,
                        TVal {
                            id: yid,
                            layout: Layout::Nhwc,
                        },
                    );
                    return Ok(());
                }
            }
        }

        let xi = self.nhwc(x)?;
        if self.g.tensors[xi].dtype != DType::F32 {
            bail!(
                "convolution of {} tensors is not supported",
                self.g.tensors[xi].dtype.name()
            );
        }
        let wf = Const::f32(wc.dims.clone(), wc.as_f32());
        let f = fold::transpose(&wf, fperm)?;
        let fid = self.const_tensor(&format!("{out}/filter"), &f)?;
        let bid = match b {
            None => None,
            Some(Val::C(bc)) if bc.numel() == o => {
                Some(self.const_tensor(&format!("{out}/bias"), &Const::f32(vec![o], bc.as_f32()))?)
            }
            Some(_) => bail!("the bias must be a constant of {o} values"),
        };
        let yid = self.new_tensor(&out, DType::F32, ys, Quant::None);
        self.emit_opt(code, attrs, vec![Some(xi), Some(fid), bid], vec![yid]);
        self.set(
            &out,
            Val::T(TVal {
                id: yid,
                layout: Layout::Nhwc,
            }),
        );
        Ok(())
    }

    /// A 1-D convolution or pooling (input `[N, C, L]`) as the 2-D one on
    /// the image `[N, C, 1, L]`: the input, the weights and the window
    /// attributes get a unit height, and what the op defines (its output, or
    /// the QuantizeLinear it was fused with) is read back as a signal. An
    /// `Ncl` input is stored as that image already, and so is the output.
    fn one_d(&mut self, n: &NodeProto, ins: &[Option<Val>]) -> Result<()> {
        let mut n2 = n.clone();
        n2.attribute = row_attrs(&n.attribute)?;
        let a = Attrs(&n2.attribute);
        let x = self.image_of_signal(ins[0].as_ref().expect("checked by the caller"))?;
        let first_new = self.g.tensors.len();
        let op = n.op_type.as_str();
        let as_image = || "as the 2-D op on the image [N, C, 1, L]";
        if op == "Conv" || op == "ConvTranspose" {
            let w = match ins.get(1).cloned().flatten() {
                Some(Val::C(c)) => Val::C(Rc::new(unit_height(&c)?)),
                Some(other) => other,
                None => bail!("required input 1 is missing"),
            };
            if let Some(q) = self.qconsts.get(&n.input[1]).cloned() {
                let image = format!("{}/image", n.input[1]);
                let q = QConst {
                    q: Rc::new(unit_height(&q.q)?),
                    ..q
                };
                self.qconsts.insert(image.clone(), q);
                n2.input[1] = image;
            }
            let b = ins.get(2).cloned().flatten();
            if op == "Conv" {
                self.conv(&n2, &a, &x, &w, b).context(as_image())?;
            } else {
                self.conv_transpose(&n2, &a, &x, &w, b)
                    .context(as_image())?;
            }
        } else if op.starts_with("Global") {
            self.global_pool(&n2, &x).context(as_image())?;
        } else {
            self.pool(&n2, &a, &x).context(as_image())?;
        }
        // Values this op made: its output, or a QuantizeLinear's it bound.
        let made = |v: &Val| matches!(v, Val::T(t) | Val::Q(t) if t.id >= first_new);
        let bound: Vec<(String, Val)> = self
            .prebound
            .iter()
            .filter(|(_, v)| made(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (name, v) in bound {
            let signal = signal_of_image(&v)?;
            self.prebound.insert(name, signal);
        }
        let out = n.output.first().cloned().unwrap_or_default();
        if let Some(v) = self.vals.get(&out).filter(|v| made(v)).cloned() {
            let signal = signal_of_image(&v)?;
            self.vals.insert(out, signal);
        }
        Ok(())
    }

    /// The image `[N, C, 1, L]` of a signal `[N, C, L]`, stored as NHWC.
    fn image_of_signal(&mut self, v: &Val) -> Result<Val> {
        // A dequantized view stays int8: the window op may take it as is.
        let t = match v {
            Val::T(t) | Val::Q(t) => *t,
            Val::C(_) => self.tensor(v)?,
        };
        let t = TVal {
            id: self.stored_in(t, Layout::Ncl)?,
            layout: Layout::Nhwc,
        };
        Ok(same_kind(v, t))
    }

    /// A Relu/Clip(0, x) reading `value` and read by a single QuantizeLinear:
    /// (Q node, its params, fused activation code).
    fn q_after_activation(&self, value: &str) -> Option<(usize, QParams, i32, usize)> {
        if self.uses.get(value) != Some(&1) {
            return None;
        }
        let &i = self.consumer.get(value)?;
        let n = &self.nodes[i];
        let act = match n.op_type.as_str() {
            "Relu" => 1,
            "Clip" if self.opset >= 11 => {
                let lo = n.input.get(1).and_then(|x| match self.vals.get(x) {
                    Some(Val::C(c)) if c.numel() == 1 => Some(c.as_f32()[0]),
                    _ => None,
                });
                let hi = n.input.get(2).and_then(|x| match self.vals.get(x) {
                    Some(Val::C(c)) if c.numel() == 1 => Some(c.as_f32()[0]),
                    _ => None,
                });
                match (lo, hi) {
                    (Some(l), Some(h)) if l == 0.0 && h == 6.0 => 3,
                    (Some(l), None) if l == 0.0 && n.input.len() == 2 => 1,
                    _ => return None,
                }
            }
            _ => return None,
        };
        let (qn, qy) = self.single_q_consumer(n.output.first()?)?;
        Some((qn, qy, act, i))
    }

    /// The int8 filter tensor (symmetric, per-tensor or per-output-channel),
    /// or `None` when the weights don't fit the runtime's int8 kernels.
    fn int8_filter(
        &mut self,
        wq: &QConst,
        perm: &[usize],
        depthwise: bool,
        o: usize,
    ) -> Result<Option<usize>> {
        if wq.q.ty != dt::INT8 || wq.zps.iter().any(|&z| z != 0) {
            return Ok(None);
        }
        if wq.scales.len() > 1 && (wq.axis != 0 || wq.scales.len() != o) {
            return Ok(None);
        }
        let f = fold::transpose(&wq.q, perm)?;
        let (_, bytes) = f.to_bytes()?;
        let quant = if wq.scales.len() == 1 {
            Quant::PerTensor(QParams {
                scale: wq.scales[0],
                zero_point: 0,
            })
        } else {
            Quant::PerAxis {
                axis: if depthwise { 3 } else { 0 },
                scales: wq.scales.clone(),
                zero_points: vec![0; o],
            }
        };
        Ok(Some(self.g.add_tensor(Tensor {
            name: "filter".into(),
            dtype: DType::I8,
            shape: f.dims,
            quant,
            data: Some(bytes),
        })))
    }

    /// An int32 bias: the model's own (DequantizeLinear of int32 with scale
    /// input × weight scale), or a float bias quantized to that scale.
    fn int8_bias(
        &mut self,
        name: Option<&String>,
        b: &Val,
        sx: f32,
        sw: &[f32],
        o: usize,
    ) -> Result<usize> {
        let Val::C(bc) = b else {
            bail!("the bias must be constant")
        };
        if bc.numel() != o {
            bail!("the bias must have {o} values");
        }
        let vals: Vec<i64> = match name.and_then(|n| self.qconsts.get(n)) {
            Some(q) if q.q.ty == dt::INT32 && q.zps.iter().all(|&z| z == 0) => q.q.as_i64(),
            _ => bc
                .as_f32()
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let s = sx as f64 * sw[if sw.len() > 1 { i } else { 0 }] as f64;
                    (v as f64 / s)
                        .round()
                        .clamp(i32::MIN as f64, i32::MAX as f64) as i64
                })
                .collect(),
        };
        let c = Const::ints(dt::INT32, vec![o], vals);
        let id = self.const_tensor("bias", &c)?;
        let scales: Vec<f32> = (0..sw.len()).map(|i| sx * sw[i]).collect();
        self.g.tensors[id].quant = if scales.len() == 1 {
            Quant::PerTensor(QParams {
                scale: scales[0],
                zero_point: 0,
            })
        } else {
            Quant::PerAxis {
                axis: 0,
                scales,
                zero_points: vec![0; o],
            }
        };
        Ok(id)
    }

    fn batch_norm(&mut self, n: &NodeProto, a: &Attrs<'_>, ins: &[Option<Val>]) -> Result<()> {
        let out = n.output.first().cloned().unwrap_or_default();
        if a.int("training_mode", 0)? != 0 {
            bail!("training_mode BatchNormalization is not supported");
        }
        let get = |k: usize| -> Result<Rc<Const>> {
            match ins.get(k).cloned().flatten() {
                Some(Val::C(c)) => Ok(c),
                _ => bail!("scale, bias, mean and variance must be constant"),
            }
        };
        let (g, b, m, v) = (get(1)?, get(2)?, get(3)?, get(4)?);
        let eps = a.float("epsilon", 1e-5)?;
        let x = ins[0].clone().ok_or_else(|| anyhow!("missing input"))?;
        let xd = self.shape_of(&x);
        if xd.len() < 2 {
            bail!("the input must have a channel dimension");
        }
        let c = xd[1];
        if [&g, &b, &m, &v].iter().any(|t| t.numel() != c) {
            bail!("scale, bias, mean and variance must have {c} values");
        }
        let (g, b, m, v) = (g.as_f32(), b.as_f32(), m.as_f32(), v.as_f32());
        let scale: Vec<f32> = (0..c).map(|i| g[i] / (v[i] + eps).sqrt()).collect();
        let shift: Vec<f32> = (0..c).map(|i| b[i] - m[i] * scale[i]).collect();
        let mut cd = vec![c];
        cd.extend(vec![1; xd.len() - 2]);
        let sc = Val::C(Rc::new(Const::f32(cd.clone(), scale)));
        let sh = Val::C(Rc::new(Const::f32(cd, shift)));
        let t = self.binary_named(&format!("{out}/scaled"), BinOp::Mul, &x, &sc)?;
        let y = self.binary_named(&out, BinOp::Add, &t, &sh)?;
        self.set(&out, y);
        Ok(())
    }

    fn global_pool(&mut self, n: &NodeProto, x: &Val) -> Result<()> {
        let out = n.output.first().cloned().unwrap_or_default();
        let xd = self.shape_of(x);
        if xd.len() != 4 {
            bail!("only 4-D inputs are supported, got shape {xd:?}");
        }
        let avg = n.op_type == "GlobalAveragePool";
        let ys = vec![xd[0], 1, 1, xd[1]];
        if let Val::Q(xq) = x {
            if let Some((qn, qy)) = self.single_q_consumer(&out) {
                let xi = self.stored_nhwc(*xq)?;
                let yid = self.q_tensor(&out, ys, qy);
                if avg {
                    self.emit(OpCode::Mean, vec![1, 1, 2], &[xi], yid);
                } else if self.qparams_of(*xq) == qy {
                    let attrs = pool_attrs([1, 1], [xd[2], xd[3]], [0; 4], false)?;
                    self.emit(OpCode::MaxPool2d, attrs, &[xi], yid);
                } else {
                    bail!("int8 GlobalMaxPool needs equal input and output quantization");
                }
                self.bind_q(
                    qn,
                    TVal {
                        id: yid,
                        layout: Layout::Nhwc,
                    },
                );
                return Ok(());
            }
        }
        let xi = self.nhwc(x)?;
        if self.g.tensors[xi].dtype != DType::F32 {
            bail!("supported for float tensors only");
        }
        let yid = self.new_tensor(&out, DType::F32, ys, Quant::None);
        if avg {
            self.emit(OpCode::Mean, vec![1, 1, 2], &[xi], yid);
        } else {
            let attrs = pool_attrs([1, 1], [xd[2], xd[3]], [0; 4], false)?;
            self.emit(OpCode::MaxPool2d, attrs, &[xi], yid);
        }
        self.set(
            &out,
            Val::T(TVal {
                id: yid,
                layout: Layout::Nhwc,
            }),
        );
        Ok(())
    }

    fn pool(&mut self, n: &NodeProto, a: &Attrs<'_>, x: &Val) -> Result<()> {
        let out = n.output.first().cloned().unwrap_or_default();
        if n.output.len() > 1 && !n.output[1].is_empty() {
            bail!("the Indices output of MaxPool is not supported");
        }
        let xd = self.shape_of(x);
        if xd.len() != 4 {
            bail!("only 2-D pooling (4-D input) is supported, input has shape {xd:?}");
        }
        let k = a
            .ints("kernel_shape")?
            .ok_or_else(|| anyhow!("missing kernel_shape"))?;
        if k.len() != 2 {
            bail!("kernel_shape must have 2 entries");
        }
        let k = [to_usize(k[0], "kernel")?, to_usize(k[1], "kernel")?];
        if k.contains(&0) {
            bail!("kernel_shape must be positive");
        }
        if let Some(d) = a.ints("dilations")? {
            if d.iter().any(|&v| v != 1) {
                bail!("pooling dilations other than 1 are not supported");
            }
        }
        if a.int("storage_order", 0)? != 0 {
            bail!("storage_order 1 is not supported");
        }
        let max = n.op_type == "MaxPool";
        let ceil = a.int("ceil_mode", 0)? != 0;
        let include_pad = !max && a.int("count_include_pad", 0)? != 0;
        let (st, mut pads) = self.window_attrs(a, &xd[2..], &k, &[1, 1])?;
        let mut outs = [0usize; 2];
        for i in 0..2 {
            let padded = xd[2 + i] + pads[i] + pads[i + 2];
            if padded < k[i] {
                bail!("the window is larger than the padded input");
            }
            let mut o = if ceil {
                (padded - k[i]).div_ceil(st[i]) + 1
            } else {
                (padded - k[i]) / st[i] + 1
            };
            // The last window must start inside the input or its leading padding.
            if ceil && (o - 1) * st[i] >= xd[2 + i] + pads[i] {
                o -= 1;
            }
            let need = (o - 1) * st[i] + k[i];
            if need > padded {
                if include_pad {
                    bail!("ceil_mode with count_include_pad is not supported");
                }
                pads[i + 2] += need - padded;
            }
            outs[i] = o;
        }
        let ys = vec![xd[0], outs[0], outs[1], xd[1]];
        let q_in = match x {
            Val::Q(t) => self
                .single_q_consumer(&out)
                .filter(|(_, q)| max || *q == self.qparams_of(*t))
                .map(|(i, q)| (i, q, *t)),
            _ => None,
        };
        let (xi, yid) = if let Some((qn, qy, xt)) = q_in {
            let xi = self.stored_nhwc(xt)?;
            let yid = self.q_tensor(&out, ys, qy);
            if !max || self.qparams_of(xt) == qy {
                self.bind_q(
                    qn,
                    TVal {
                        id: yid,
                        layout: Layout::Nhwc,
                    },
                );
                (xi, yid)
            } else {
                // Max pooling keeps values: pool in the input's quantization, then requantize.
                let tmp = self.q_tensor(
                    &format!("{out}/pooled"),
                    self.g.tensors[yid].shape.clone(),
                    self.qparams_of(xt),
                );
                self.emit_pool(max, include_pad, st, k, pads, xi, tmp, &xd)?;
                self.emit(OpCode::Quantize, vec![], &[tmp], yid);
                self.bind_q(
                    qn,
                    TVal {
                        id: yid,
                        layout: Layout::Nhwc,
                    },
                );
                return Ok(());
            }
        } else {
            let xi = self.nhwc(x)?;
            if self.g.tensors[xi].dtype != DType::F32 {
                bail!("supported for float tensors only");
            }
            (xi, self.new_tensor(&out, DType::F32, ys, Quant::None))
        };
        self.emit_pool(max, include_pad, st, k, pads, xi, yid, &xd)?;
        if q_in.is_none() {
            self.set(
                &out,
                Val::T(TVal {
                    id: yid,
                    layout: Layout::Nhwc,
                }),
            );
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_pool(
        &mut self,
        max: bool,
        include_pad: bool,
        st: Vec<usize>,
        k: [usize; 2],
        pads: Vec<usize>,
        xi: usize,
        yid: usize,
        xd: &[usize],
    ) -> Result<()> {
        let pads4 = [pads[0], pads[1], pads[2], pads[3]];
        if include_pad && pads4.iter().any(|&p| p > 0) {
            // Counting padding as zeros = average over an explicitly zero-padded input.
            let t = &self.g.tensors[xi];
            let padded = vec![
                xd[0],
                xd[2] + pads[0] + pads[2],
                xd[3] + pads[1] + pads[3],
                xd[1],
            ];
            let (dtype, quant) = (t.dtype, t.quant.clone());
            let name = format!("{}/padded", t.name);
            let p = self.new_tensor(&name, dtype, padded, quant);
            let pa = [0, 0, pads[0], pads[2], pads[1], pads[3], 0, 0]
                .iter()
                .map(|&v| i32_of(v))
                .collect::<Result<_>>()?;
            self.emit(OpCode::Pad, pa, &[xi], p);
            let attrs = pool_attrs([st[0], st[1]], k, [0; 4], false)?;
            self.emit(OpCode::AveragePool2d, attrs, &[p], yid);
            return Ok(());
        }
        let attrs = pool_attrs([st[0], st[1]], k, pads4, false)?;
        self.emit(
            if max {
                OpCode::MaxPool2d
            } else {
                OpCode::AveragePool2d
            },
            attrs,
            &[xi],
            yid,
        );
        Ok(())
    }

    fn gemm(
        &mut self,
        n: &NodeProto,
        a: &Attrs<'_>,
        x: &Val,
        w: &Val,
        c: Option<Val>,
    ) -> Result<()> {
        let out = n.output.first().cloned().unwrap_or_default();
        let (ta, tb) = (a.int("transA", 0)? != 0, a.int("transB", 0)? != 0);
        let (alpha, beta) = (a.float("alpha", 1.0)?, a.float("beta", 1.0)?);
        let xd = self.shape_of(x);
        let Val::C(wc) = w else {
            return self.gemm_general(&out, x, w, c.as_ref(), (ta, tb), alpha, beta);
        };
        if xd.len() != 2 || wc.dims.len() != 2 {
            bail!("Gemm needs 2-D A and B");
        }
        let (m, k) = if ta { (xd[1], xd[0]) } else { (xd[0], xd[1]) };
        let wt = if tb {
            (**wc).clone()
        } else {
            fold::transpose(wc, &[1, 0])?
        };
        let nn = wt.dims[0];
        if wt.dims[1] != k {
            bail!("A is {m}x{k} but B gives {:?}", wc.dims);
        }
        let bias = match &c {
            None => None,
            Some(Val::C(cc)) => {
                let full = fold::broadcast(&cc.dims, &[m, nn])?;
                if full != [m, nn] {
                    bail!("C of shape {:?} does not broadcast to [{m}, {nn}]", cc.dims);
                }
                if cc.numel() == nn && cc.dims.last() == Some(&nn) || cc.numel() == 1 {
                    let e = fold::expand(&Const::f32(cc.dims.clone(), cc.as_f32()), &[1, nn])?;
                    Some(e.as_f32().iter().map(|&v| v * beta).collect::<Vec<f32>>())
                } else {
                    // A full matrix C: added after the product.
                    return self.gemm_general(&out, x, w, c.as_ref(), (ta, tb), alpha, beta);
                }
            }
            Some(_) => return self.gemm_general(&out, x, w, c.as_ref(), (ta, tb), alpha, beta),
        };
        if beta == 0.0 && c.is_some() {
            // beta 0 drops C entirely.
        }
        // int8: DQ(x) · DQ(w) followed by one QuantizeLinear.
        if let (Val::Q(xq), false, true, 1.0) = (x, ta, tb, alpha) {
            if let (Some(wq), Some((qn, qy))) = (
                self.qconsts.get(&n.input[1]).cloned(),
                self.single_q_consumer(&out),
            ) {
                if wq.q.ty == dt::INT8
                    && wq.zps.iter().all(|&z| z == 0)
                    && (wq.scales.len() == 1 || wq.axis == 0 && wq.scales.len() == nn)
                {
                    let qx = self.qparams_of(*xq);
                    let bid = match &c {
                        Some(bv) if beta == 1.0 => {
                            Some(self.int8_bias(n.input.get(2), bv, qx.scale, &wq.scales, nn)?)
                        }
                        Some(_) => None,
                        None => None,
                    };
                    if c.is_none() || bid.is_some() {
                        let (_, bytes) = wq.q.to_bytes()?;
                        let quant = if wq.scales.len() == 1 {
                            Quant::PerTensor(QParams {
                                scale: wq.scales[0],
                                zero_point: 0,
                            })
                        } else {
                            Quant::PerAxis {
                                axis: 0,
                                scales: wq.scales.clone(),
                                zero_points: vec![0; nn],
                            }
                        };
                        let wid = self.g.add_tensor(Tensor {
                            name: format!("{out}/weights"),
                            dtype: DType::I8,
                            shape: vec![nn, k],
                            quant,
                            data: Some(bytes),
                        });
                        let xi = self.stored_plain(*xq);
                        let yid = self.q_tensor(&out, vec![m, nn], qy);
                        self.emit_opt(
                            OpCode::FullyConnected,
                            vec![0, 1],
                            vec![Some(xi), Some(wid), bid],
                            vec![yid],
                        );
                        self.bind_q(
                            qn,
                            TVal {
                                id: yid,
                                layout: Layout::Plain,
                            },
                        );
                        return Ok(());
                    }
                }
            }
        }
        let mut xi = self.plain(x)?;
        if self.g.tensors[xi].dtype != DType::F32 {
            bail!("supported for float tensors only");
        }
        if ta {
            let t = self.new_tensor(&format!("{out}/a_t"), DType::F32, vec![m, k], Quant::None);
            self.emit(OpCode::Transpose, vec![1, 0], &[xi], t);
            xi = t;
        }
        let wv: Vec<f32> = wt.as_f32().iter().map(|&v| v * alpha).collect();
        let wid = self.const_tensor(&format!("{out}/weights"), &Const::f32(vec![nn, k], wv))?;
        let bid = match bias {
            Some(bv) => Some(self.const_tensor(&format!("{out}/bias"), &Const::f32(vec![nn], bv))?),
            None => None,
        };
        let yid = self.new_tensor(&out, DType::F32, vec![m, nn], Quant::None);
        self.emit_opt(
            OpCode::FullyConnected,
            vec![0, 1],
            vec![Some(xi), Some(wid), bid],
            vec![yid],
        );
        self.set(
            &out,
            Val::T(TVal {
                id: yid,
                layout: Layout::Plain,
            }),
        );
        Ok(())
    }

    fn matmul(&mut self, n: &NodeProto, x: &Val, w: &Val) -> Result<()> {
        let out = n.output.first().cloned().unwrap_or_default();
        let xd = self.shape_of(x);
        let Val::C(wc) = w else {
            return self.batch_matmul(&out, x, w);
        };
        if wc.dims.len() != 2 || xd.len() < 2 {
            bail!("MatMul is supported for A of rank >= 2 and a constant 2-D B");
        }
        let (k, nn) = (wc.dims[0], wc.dims[1]);
        if xd[xd.len() - 1] != k {
            bail!("inner dimensions differ: A {xd:?}, B {:?}", wc.dims);
        }
        let mut ys = xd.clone();
        *ys.last_mut().expect("rank >= 2") = nn;
        let wt = fold::transpose(wc, &[1, 0])?;
        if let Val::Q(xq) = x {
            if let (Some(wq), Some((qn, qy))) = (
                self.qconsts.get(&n.input[1]).cloned(),
                self.single_q_consumer(&out),
            ) {
                if wq.q.ty == dt::INT8
                    && wq.zps.iter().all(|&z| z == 0)
                    && (wq.scales.len() == 1 || wq.axis == 1 && wq.scales.len() == nn)
                {
                    let qt = fold::transpose(&wq.q, &[1, 0])?;
                    let (_, bytes) = qt.to_bytes()?;
                    let quant = if wq.scales.len() == 1 {
                        Quant::PerTensor(QParams {
                            scale: wq.scales[0],
                            zero_point: 0,
                        })
                    } else {
                        Quant::PerAxis {
                            axis: 0,
                            scales: wq.scales.clone(),
                            zero_points: vec![0; nn],
                        }
                    };
                    let wid = self.g.add_tensor(Tensor {
                        name: format!("{out}/weights"),
                        dtype: DType::I8,
                        shape: vec![nn, k],
                        quant,
                        data: Some(bytes),
                    });
                    let xi = self.stored_plain(*xq);
                    let yid = self.q_tensor(&out, ys, qy);
                    self.emit_opt(
                        OpCode::FullyConnected,
                        vec![0, 1],
                        vec![Some(xi), Some(wid), None],
                        vec![yid],
                    );
                    self.bind_q(
                        qn,
                        TVal {
                            id: yid,
                            layout: Layout::Plain,
                        },
                    );
                    return Ok(());
                }
            }
        }
        let xi = self.plain(x)?;
        if self.g.tensors[xi].dtype != DType::F32 {
            bail!("supported for float tensors only");
        }
        let wid = self.const_tensor(
            &format!("{out}/weights"),
            &Const::f32(vec![nn, k], wt.as_f32()),
        )?;
        let yid = self.new_tensor(&out, DType::F32, ys, Quant::None);
        self.emit_opt(
            OpCode::FullyConnected,
            vec![0, 1],
            vec![Some(xi), Some(wid), None],
            vec![yid],
        );
        self.set(
            &out,
            Val::T(TVal {
                id: yid,
                layout: Layout::Plain,
            }),
        );
        Ok(())
    }

    fn reshape(&mut self, out: &str, x: &Val, dims: Vec<usize>) -> Result<()> {
        if let Val::Q(q) = x {
            // Data movement keeps int8 values: reshape the int8 tensor.
            let xi = self.stored_plain(*q);
            let y = self.out_tensor(out, xi, dims);
            self.emit(OpCode::Reshape, vec![], &[xi], y);
            self.set(
                out,
                Val::Q(TVal {
                    id: y,
                    layout: Layout::Plain,
                }),
            );
            return Ok(());
        }
        let xi = self.plain(x)?;
        if numel(&dims)? != self.g.tensors[xi].numel() {
            bail!("cannot reshape {:?} to {dims:?}", self.g.tensors[xi].shape);
        }
        let y = self.out_tensor(out, xi, dims);
        self.emit(OpCode::Reshape, vec![], &[xi], y);
        self.set(
            out,
            Val::T(TVal {
                id: y,
                layout: Layout::Plain,
            }),
        );
        Ok(())
    }

    fn transpose(&mut self, out: &str, a: &Attrs<'_>, x: &Val) -> Result<()> {
        let xd = self.shape_of(x);
        let r = xd.len();
        let perm: Vec<usize> = match a.ints("perm")? {
            Some(p) => p
                .iter()
                .map(|&v| to_usize(v, "perm"))
                .collect::<Result<_>>()?,
            None => (0..r).rev().collect(),
        };
        let mut sorted = perm.clone();
        sorted.sort_unstable();
        if sorted != (0..r).collect::<Vec<_>>() {
            bail!("invalid permutation {perm:?}");
        }
        let (mut t, quantized) = match x {
            Val::Q(q) => (*q, true),
            other => (self.tensor(other)?, false),
        };
        if t.layout == Layout::Ncl && perm == [0, 2, 1] {
            // [N, L, C] is the stored order of [N, 1, L, C]: a reshape.
            let d = self.dims(t);
            let y = self.out_tensor(out, t.id, vec![d[0], d[2], d[1]]);
            self.emit(OpCode::Reshape, vec![], &[t.id], y);
            let tv = TVal {
                id: y,
                layout: Layout::Plain,
            };
            self.set(out, if quantized { Val::Q(tv) } else { Val::T(tv) });
            return Ok(());
        }
        if t.layout == Layout::Ncl {
            // Stored at rank 4: permute its ONNX form.
            t = TVal {
                id: self.stored_plain(t),
                layout: Layout::Plain,
            };
        }
        let wrap = |tv: TVal| if quantized { Val::Q(tv) } else { Val::T(tv) };
        // Stored dim for each logical dim of the input.
        let stored: Vec<usize> = if t.layout == Layout::Nhwc {
            TO_NHWC.to_vec()
        } else {
            (0..r).collect()
        };
        // q[i]: stored input dim feeding logical output dim i.
        let q: Vec<usize> = perm.iter().map(|&p| stored[p]).collect();
        if q.iter().enumerate().all(|(i, &v)| i == v) {
            self.set(
                out,
                wrap(TVal {
                    id: t.id,
                    layout: Layout::Plain,
                }),
            );
            return Ok(());
        }
        // Output as NHWC: stored output dim k = logical output dim NCHW_TO_NHWC[k].
        if r == 4 && NCHW_TO_NHWC.iter().enumerate().all(|(k, &l)| q[l] == k) {
            self.set(
                out,
                wrap(TVal {
                    id: t.id,
                    layout: Layout::Nhwc,
                }),
            );
            return Ok(());
        }
        let ys: Vec<usize> = perm.iter().map(|&p| xd[p]).collect();
        let y = self.out_tensor(out, t.id, ys);
        self.emit(
            OpCode::Transpose,
            q.iter().map(|&v| v as i32).collect(),
            &[t.id],
            y,
        );
        self.set(
            out,
            wrap(TVal {
                id: y,
                layout: Layout::Plain,
            }),
        );
        Ok(())
    }

    fn concat(&mut self, out: &str, vals: &[Val], axis: i64) -> Result<()> {
        if vals.is_empty() {
            bail!("Concat needs at least one input");
        }
        let d0 = self.shape_of(&vals[0]);
        let r = d0.len();
        let axis = axis_of(axis, r)?;
        let mut yd = d0.clone();
        yd[axis] = 0;
        for v in vals {
            let d = self.shape_of(v);
            if d.len() != r || (0..r).any(|i| i != axis && d[i] != d0[i]) {
                bail!("input shapes {d0:?} and {d:?} do not concatenate on axis {axis}");
            }
            yd[axis] += d[axis];
        }
        // int8 when every input is a dequantized tensor with one quantization.
        let qs: Vec<TVal> = vals
            .iter()
            .filter_map(|v| if let Val::Q(t) = v { Some(*t) } else { None })
            .collect();
        let quantized = qs.len() == vals.len()
            && qs
                .iter()
                .all(|&t| self.qparams_of(t) == self.qparams_of(qs[0]));
        let cl = Layout::channels_last(r);
        let layout = if cl != Layout::Plain
            && vals
                .iter()
                .any(|v| matches!(v, Val::T(t) | Val::Q(t) if t.layout == cl))
        {
            cl
        } else {
            Layout::Plain
        };
        let mut ids = Vec::new();
        for v in vals {
            if self.shape_of(v)[axis] == 0 {
                continue;
            }
            let id = match (v, quantized) {
                (Val::Q(t), true) => self.stored_in(*t, layout)?,
                (Val::C(c), _) => self.const_for(c, layout, r)?,
                _ => self.value_in(v, layout)?,
            };
            ids.push(id);
        }
        if ids.is_empty() {
            bail!("every input of Concat is empty");
        }
        let dtype = self.g.tensors[ids[0]].dtype;
        if ids.iter().any(|&i| self.g.tensors[i].dtype != dtype) {
            bail!("inputs have different types");
        }
        let sa = layout.stored_axis(r, axis);
        let y = self.out_tensor(out, ids[0], layout.stored(&yd));
        self.emit(OpCode::Concatenation, vec![i32_of(sa)?, 0], &ids, y);
        let tv = TVal { id: y, layout };
        self.set(out, if quantized { Val::Q(tv) } else { Val::T(tv) });
        Ok(())
    }

    fn softmax_like(&mut self, out: &str, a: &Attrs<'_>, x: &Val, log: bool) -> Result<()> {
        let (code, sattrs) = if log {
            (OpCode::LogSoftmax, vec![])
        } else {
            (OpCode::Softmax, vec![f32_bits(1.0)])
        };
        let xd = self.shape_of(x);
        let r = xd.len();
        let default_axis = if self.opset >= 13 { -1 } else { 1 };
        let axis = axis_of(a.int("axis", default_axis)?, r)?;
        // Over the channels of a value stored channels-last: its stored last
        // axis, in place (a segmentation map's classes, attention over C).
        if let Val::T(t) = x {
            let stored_last = t.layout != Layout::Plain && axis == 1 && self.opset >= 13;
            if stored_last && self.g.tensors[t.id].dtype == DType::F32 {
                let y = self.out_tensor(out, t.id, self.g.tensors[t.id].shape.clone());
                self.emit(code, sattrs, &[t.id], y);
                self.set(
                    out,
                    Val::T(TVal {
                        id: y,
                        layout: t.layout,
                    }),
                );
                return Ok(());
            }
        }
        let xi = self.plain(x)?;
        if self.g.tensors[xi].dtype != DType::F32 {
            bail!("supported for float tensors only");
        }
        if self.opset < 13 {
            // Softmax over the flattened trailing dims [axis..].
            let (inner, outer) = (numel(&xd[axis..])?, numel(&xd[..axis])?);
            let flat = self.new_tensor(
                &format!("{out}/2d"),
                DType::F32,
                vec![outer, inner],
                Quant::None,
            );
            self.emit(OpCode::Reshape, vec![], &[xi], flat);
            let s = self.new_tensor(
                &format!("{out}/softmax"),
                DType::F32,
                vec![outer, inner],
                Quant::None,
            );
            self.emit(code, sattrs.clone(), &[flat], s);
            let y = self.new_tensor(out, DType::F32, xd, Quant::None);
            self.emit(OpCode::Reshape, vec![], &[s], y);
            self.set(
                out,
                Val::T(TVal {
                    id: y,
                    layout: Layout::Plain,
                }),
            );
            return Ok(());
        }
        if axis == r - 1 {
            let y = self.new_tensor(out, DType::F32, xd, Quant::None);
            self.emit(code, sattrs.clone(), &[xi], y);
            self.set(
                out,
                Val::T(TVal {
                    id: y,
                    layout: Layout::Plain,
                }),
            );
            return Ok(());
        }
        // Move the axis last, softmax, move it back.
        let mut perm: Vec<usize> = (0..r).filter(|&d| d != axis).collect();
        perm.push(axis);
        let td: Vec<usize> = perm.iter().map(|&p| xd[p]).collect();
        let t = self.new_tensor(&format!("{out}/moved"), DType::F32, td.clone(), Quant::None);
        self.emit(
            OpCode::Transpose,
            perm.iter().map(|&p| p as i32).collect(),
            &[xi],
            t,
        );
        let s = self.new_tensor(&format!("{out}/softmax"), DType::F32, td, Quant::None);
        self.emit(code, sattrs.clone(), &[t], s);
        let mut inv = vec![0; r];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        let y = self.new_tensor(out, DType::F32, xd, Quant::None);
        self.emit(
            OpCode::Transpose,
            inv.iter().map(|&p| p as i32).collect(),
            &[s],
            y,
        );
        self.set(
            out,
            Val::T(TVal {
                id: y,
                layout: Layout::Plain,
            }),
        );
        Ok(())
    }

    /// MatMul of two runtime tensors (rank-1 operands are promoted like NumPy).
    fn batch_matmul(&mut self, out: &str, x: &Val, w: &Val) -> Result<()> {
        let (mut da, mut db) = (self.shape_of(x), self.shape_of(w));
        let (a1, b1) = (da.len() == 1, db.len() == 1);
        let mut ai = self.plain(x)?;
        let mut bi = self.plain(w)?;
        for (id, dt_) in [(ai, 0), (bi, 1)] {
            if self.g.tensors[id].dtype != DType::F32 || self.g.tensors[id].quant != Quant::None {
                bail!("MatMul of runtime tensors is supported for float32 (operand {dt_})");
            }
        }
        if a1 {
            da.insert(0, 1);
            let t = self.out_tensor(&format!("{out}/a2d"), ai, da.clone());
            self.emit(OpCode::Reshape, vec![], &[ai], t);
            ai = t;
        }
        if b1 {
            db.push(1);
            let t = self.out_tensor(&format!("{out}/b2d"), bi, db.clone());
            self.emit(OpCode::Reshape, vec![], &[bi], t);
            bi = t;
        }
        let (m, k, k2, n) = (
            da[da.len() - 2],
            da[da.len() - 1],
            db[db.len() - 2],
            db[db.len() - 1],
        );
        if k != k2 {
            bail!("inner dimensions differ: {da:?} x {db:?}");
        }
        let mut ys = fold::broadcast(&da[..da.len() - 2], &db[..db.len() - 2])?;
        ys.push(m);
        ys.push(n);
        let full = self.new_tensor(&format!("{out}/full"), DType::F32, ys.clone(), Quant::None);
        self.emit(OpCode::BatchMatmul, vec![], &[ai, bi], full);
        let mut final_dims = ys.clone();
        if b1 {
            final_dims.pop();
        }
        if a1 {
            final_dims.remove(final_dims.len() - if b1 { 1 } else { 2 });
        }
        let y = self.new_tensor(out, DType::F32, final_dims, Quant::None);
        self.emit(OpCode::Reshape, vec![], &[full], y);
        self.set(
            out,
            Val::T(TVal {
                id: y,
                layout: Layout::Plain,
            }),
        );
        Ok(())
    }

    /// Resize / Upsample of H and W onto RESIZE_BILINEAR or
    /// RESIZE_NEAREST_NEIGHBOR, for the coordinate modes those compute exactly.
    fn resize(&mut self, n: &NodeProto, a: &Attrs<'_>, ins: &[Option<Val>]) -> Result<()> {
        let out = n.output.first().cloned().unwrap_or_default();
        let x = first_input(ins)?;
        let d = self.shape_of(&x);
        if d.len() != 4 {
            bail!("only 4-D inputs are supported");
        }
        let cst = |k: usize| -> Result<Option<Rc<Const>>> {
            match ins.get(k).cloned().flatten() {
                None => Ok(None),
                Some(Val::C(c)) if c.numel() == 0 => Ok(None),
                Some(Val::C(c)) => Ok(Some(c)),
                Some(_) => bail!("scales and sizes must be constant"),
            }
        };
        let upsample = n.op_type == "Upsample";
        let (scales, sizes) = if upsample {
            let s = if self.opset < 9 {
                a.get("scales")
                    .map(|at| Rc::new(Const::f32(vec![at.floats.len()], at.floats.clone())))
            } else {
                cst(1)?
            };
            (s, None)
        } else if self.opset < 11 {
            (cst(1)?, None)
        } else {
            (cst(2)?, cst(3)?)
        };
        if a.get("axes").is_some() || a.int("antialias", 0)? != 0 {
            bail!("axes and antialias are not supported");
        }
        let mode = a.string("mode", "nearest")?;
        let coord = if upsample || self.opset < 11 {
            "asymmetric".to_string()
        } else {
            a.string("coordinate_transformation_mode", "half_pixel")?
        };
        let nearest_mode = if upsample || self.opset < 11 {
            "floor".to_string()
        } else {
            a.string("nearest_mode", "round_prefer_floor")?
        };
        let ys: Vec<usize> = match (&scales, &sizes) {
            (_, Some(sz)) => sz
                .as_i64()
                .iter()
                .map(|&v| to_usize(v, "size"))
                .collect::<Result<_>>()?,
            (Some(sc), None) => {
                let s = sc.as_f32();
                if s.len() != 4 {
                    bail!("scales must have 4 entries");
                }
                let mut ys = Vec::new();
                for i in 0..4 {
                    let v = d[i] as f64 * s[i] as f64;
                    // Coordinates use the given scale; it equals out/in only for whole results.
                    if v.fract() != 0.0 || v < 1.0 {
                        bail!(
                            "scale {} of axis {i} does not give a whole output size",
                            s[i]
                        );
                    }
                    ys.push(v as usize);
                }
                ys
            }
            (None, None) => bail!("Resize needs scales or sizes"),
        };
        if ys.len() != 4 || ys[0] != d[0] || ys[1] != d[1] {
            bail!("only H and W can be resized (got output {ys:?} for input {d:?})");
        }
        let whole = ys[2].is_multiple_of(d[2])
            && ys[3].is_multiple_of(d[3])
            && ys[2] / d[2] <= 2
            && ys[3] / d[3] <= 2;
        let linear = matches!(mode.as_str(), "linear" | "bilinear");
        let (code, align, half) = match (linear, coord.as_str()) {
            (true, "half_pixel") => (OpCode::ResizeBilinear, 0, 1),
            (true, "pytorch_half_pixel") if ys[2] > 1 && ys[3] > 1 => (OpCode::ResizeBilinear, 0, 1),
            (true, "align_corners") => (OpCode::ResizeBilinear, 1, 0),
            (true, "asymmetric") => (OpCode::ResizeBilinear, 0, 0),
            (false, "asymmetric")
                if mode == "nearest"
                    && (nearest_mode == "floor" || (nearest_mode == "round_prefer_floor" && whole)) =>
            {
                (OpCode::ResizeNearestNeighbor, 0, 0)
            }
            _ => bail!(
                "Resize mode '{mode}' with coordinate_transformation_mode '{coord}' and nearest_mode '{nearest_mode}' is not supported"
            ),
        };
        let xi = self.nhwc(&x)?;
        if self.g.tensors[xi].dtype != DType::F32 {
            bail!("supported for float tensors only");
        }
        let y = self.out_tensor(&out, xi, nhwc_dims(&ys));
        self.emit(code, vec![align, half], &[xi], y);
        self.set(
            &out,
            Val::T(TVal {
                id: y,
                layout: Layout::Nhwc,
            }),
        );
        Ok(())
    }

    fn conv_transpose(
        &mut self,
        n: &NodeProto,
        a: &Attrs<'_>,
        x: &Val,
        w: &Val,
        b: Option<Val>,
    ) -> Result<()> {
        let out = n.output.first().cloned().unwrap_or_default();
        let Val::C(wc) = w else {
            bail!("the weights must be constant")
        };
        let xd = self.shape_of(x);
        if xd.len() != 4 || wc.dims.len() != 4 {
            bail!("only 2-D transposed convolution (4-D input and weights) is supported, input has shape {xd:?}");
        }
        let group = to_usize(a.int("group", 1)?, "group")?;
        let (c, mg, kh, kw) = (wc.dims[0], wc.dims[1], wc.dims[2], wc.dims[3]);
        if group == 0 || c != xd[1] || c % group != 0 {
            bail!(
                "weights {:?} do not match {} input channels in {group} groups",
                wc.dims,
                xd[1]
            );
        }
        let list = |name: &str, default: usize| -> Result<Vec<usize>> {
            match a.ints(name)? {
                Some(v) => v.iter().map(|&x| to_usize(x, name)).collect(),
                None => Ok(vec![default; 2]),
            }
        };
        let (st, dil, opad) = (
            list("strides", 1)?,
            list("dilations", 1)?,
            list("output_padding", 0)?,
        );
        if st.len() != 2 || dil.len() != 2 || opad.len() != 2 || st.contains(&0) || dil.contains(&0)
        {
            bail!("strides, dilations and output_padding must have 2 entries (strides, dilations > 0)");
        }
        if a.get("output_shape").is_some() {
            bail!("output_shape is not supported (give pads)");
        }
        let auto = a.string("auto_pad", "NOTSET")?;
        let pads = match auto.as_str() {
            "NOTSET" => match a.ints("pads")? {
                Some(p) if p.len() == 4 => p
                    .iter()
                    .map(|&v| to_usize(v, "pad"))
                    .collect::<Result<Vec<_>>>()?,
                Some(_) => bail!("pads must have 4 entries"),
                None => vec![0; 4],
            },
            "VALID" => vec![0; 4],
            other => bail!("auto_pad '{other}' is not supported"),
        };
        let mut osz = [0usize; 2];
        for i in 0..2 {
            let full =
                st[i] * (xd[2 + i] - 1) + opad[i] + (if i == 0 { kh } else { kw } - 1) * dil[i] + 1;
            osz[i] = full
                .checked_sub(pads[i] + pads[i + 2])
                .filter(|&v| v > 0)
                .ok_or_else(|| anyhow!("pads remove the whole output"))?;
        }
        let oc = mg * group;
        let xi = self.nhwc(x)?;
        if self.g.tensors[xi].dtype != DType::F32 {
            bail!("supported for float tensors only");
        }
        let fid = self.const_tensor(
            &format!("{out}/filter"),
            &Const::f32(wc.dims.clone(), wc.as_f32()),
        )?;
        let bid = match b {
            None => None,
            Some(Val::C(bc)) if bc.numel() == oc => {
                Some(self.const_tensor(&format!("{out}/bias"), &Const::f32(vec![oc], bc.as_f32()))?)
            }
            Some(_) => bail!("the bias must be a constant of {oc} values"),
        };
        let ys = vec![xd[0], osz[0], osz[1], oc];
        let yid = self.new_tensor(&out, DType::F32, ys, Quant::None);
        let attrs = [st[0], st[1], dil[0], dil[1], pads[0], pads[1], group]
            .iter()
            .map(|&v| i32_of(v))
            .collect::<Result<_>>()?;
        self.emit_opt(
            OpCode::ConvTranspose,
            attrs,
            vec![Some(xi), Some(fid), bid],
            vec![yid],
        );
        self.set(
            &out,
            Val::T(TVal {
                id: yid,
                layout: Layout::Nhwc,
            }),
        );
        Ok(())
    }

    /// A mean over H and W of an image held as NHWC (global average pooling
    /// written as `x.mean((2, 3))`), or over L of a signal held as `Ncl`
    /// (`x.mean(-1)`), is MEAN over the stored axes 1 and 2: no transpose
    /// back to ONNX's layout, and MEAN has an int8 kernel. False (nothing
    /// emitted) for any other reduction.
    fn global_mean(&mut self, out: &str, x: &Val, axes: &[i64], keep: bool) -> Result<bool> {
        let Val::T(tv) = x else { return Ok(false) };
        let d = self.shape_of(x);
        let r = d.len();
        if tv.layout == Layout::Plain
            || tv.layout != Layout::channels_last(r)
            || self.g.tensors[tv.id].dtype != DType::F32
        {
            return Ok(false);
        }
        let mut ax = axes
            .iter()
            .map(|&v| axis_of(v, r))
            .collect::<Result<Vec<_>>>()?;
        ax.sort_unstable();
        ax.dedup();
        if ax != (2..r).collect::<Vec<_>>() {
            return Ok(false);
        }
        let (ys, layout) = if keep {
            let mut kept = d[..2].to_vec();
            kept.resize(r, 1);
            (tv.layout.stored(&kept), tv.layout)
        } else {
            (vec![d[0], d[1]], Layout::Plain)
        };
        let y = self.new_tensor(out, DType::F32, ys, Quant::None);
        self.emit(OpCode::Mean, vec![keep as i32, 1, 2], &[tv.id], y);
        self.set(out, Val::T(TVal { id: y, layout }));
        Ok(true)
    }

    fn reduce(
        &mut self,
        out: &str,
        f: i32,
        x: &Val,
        axes: Vec<i64>,
        keep: bool,
        noop: bool,
    ) -> Result<()> {
        if f == 1 && self.global_mean(out, x, &axes, keep)? {
            return Ok(());
        }
        let xi = self.plain(x)?;
        let d = self.g.tensors[xi].shape.clone();
        if axes.is_empty() && noop {
            let y = self.out_tensor(out, xi, d);
            self.emit(OpCode::Reshape, vec![], &[xi], y);
            self.set(
                out,
                Val::T(TVal {
                    id: y,
                    layout: Layout::Plain,
                }),
            );
            return Ok(());
        }
        let mut ax: Vec<usize> = if axes.is_empty() {
            (0..d.len()).collect()
        } else {
            axes.iter()
                .map(|&v| axis_of(v, d.len()))
                .collect::<Result<_>>()?
        };
        ax.sort_unstable();
        ax.dedup();
        let mut ys = Vec::new();
        for (i, &s) in d.iter().enumerate() {
            if !ax.contains(&i) {
                ys.push(s);
            } else if keep {
                ys.push(1);
            }
        }
        if numel(&d)? == 0 {
            bail!("reductions of empty tensors are not supported");
        }
        let mut attrs = vec![f, keep as i32];
        for &v in &ax {
            attrs.push(i32_of(v)?);
        }
        let y = self.out_tensor(out, xi, ys);
        self.emit(OpCode::Reduce, attrs, &[xi], y);
        self.set(
            out,
            Val::T(TVal {
                id: y,
                layout: Layout::Plain,
            }),
        );
        Ok(())
    }

    fn cast(&mut self, out: &str, x: &Val, to: i32) -> Result<()> {
        if self.type_of(x) == to {
            self.set(out, x.clone());
            return Ok(());
        }
        let dtype = value::runtime_dtype(to)?;
        let xi = self.plain(x)?;
        let t = &self.g.tensors[xi];
        if t.quant != Quant::None {
            bail!("Cast of a quantized tensor is not supported");
        }
        let shape = t.shape.clone();
        let y = self.new_tensor(out, dtype, shape, Quant::None);
        self.emit(OpCode::Cast, vec![], &[xi], y);
        self.set(
            out,
            Val::T(TVal {
                id: y,
                layout: Layout::Plain,
            }),
        );
        Ok(())
    }

    /// Split, in the input's own layout: a channel split of an NHWC value
    /// (YOLOv8's C2f blocks) splits its last stored axis, with no transpose
    /// to NCHW and back around it.
    fn split(&mut self, n: &NodeProto, a: &Attrs<'_>, x: &Val, sizes: Option<Val>) -> Result<()> {
        let TVal { id: xi, layout } = self.tensor(x)?;
        let stored = self.g.tensors[xi].shape.clone();
        let d = layout.logical(&stored);
        let axis = axis_of(a.int("axis", 0)?, d.len())?;
        let outs = n.output.len();
        let sizes: Vec<usize> = match sizes {
            Some(Val::C(c)) => c
                .as_i64()
                .iter()
                .map(|&v| to_usize(v, "split"))
                .collect::<Result<_>>()?,
            Some(_) => bail!("split sizes must be constant"),
            None => match a.ints("split")? {
                Some(v) if self.opset < 13 => v
                    .iter()
                    .map(|&v| to_usize(v, "split"))
                    .collect::<Result<_>>()?,
                _ => {
                    let parts = if self.opset >= 18 {
                        to_usize(a.int("num_outputs", outs as i64)?, "num_outputs")?
                    } else {
                        outs
                    };
                    if parts == 0 {
                        bail!("no outputs");
                    }
                    let chunk = d[axis].div_ceil(parts);
                    (0..parts)
                        .map(|i| chunk.min(d[axis].saturating_sub(i * chunk)))
                        .collect()
                }
            },
        };
        if sizes.len() != outs || sizes.iter().sum::<usize>() != d[axis] {
            bail!(
                "split sizes {sizes:?} do not divide axis {axis} of {:?} into {outs} outputs",
                d
            );
        }
        if sizes.contains(&0) {
            bail!("empty split outputs are not supported");
        }
        let stored_axis = layout.stored_axis(d.len(), axis);
        let mut ids = Vec::new();
        for (k, &sz) in sizes.iter().enumerate() {
            let mut ys = stored.clone();
            ys[stored_axis] = sz;
            let id = self.out_tensor(&n.output[k], xi, ys);
            ids.push(id);
        }
        self.emit_opt(
            OpCode::SplitV,
            vec![i32_of(stored_axis)?],
            vec![Some(xi)],
            ids.clone(),
        );
        for (k, id) in ids.into_iter().enumerate() {
            self.set(&n.output[k], Val::T(TVal { id, layout }));
        }
        Ok(())
    }

    fn layer_norm(&mut self, n: &NodeProto, a: &Attrs<'_>, ins: &[Option<Val>]) -> Result<()> {
        let out = n.output.first().cloned().unwrap_or_default();
        let x = first_input(ins)?;
        let scale = ins
            .get(1)
            .cloned()
            .flatten()
            .ok_or_else(|| anyhow!("missing scale"))?;
        let bias = ins.get(2).cloned().flatten();
        let d = self.shape_of(&x);
        let axis = axis_of(a.int("axis", -1)?, d.len())?;
        let eps = a.float("epsilon", 1e-5)?;
        let axes: Vec<i64> = (axis as i64..d.len() as i64).collect();
        let (normed, mean, inv) = self.standardize(&out, &x, axes, eps)?;
        self.scale_shift(&out, &normed, &scale, bias.as_ref())?;
        if let Some(o) = n.output.get(1) {
            self.set(o, mean);
        }
        if let Some(o) = n.output.get(2) {
            self.set(o, inv);
        }
        Ok(())
    }

    /// InstanceNormalization: each channel of each sample standardized over
    /// its spatial axes, then `scale[c] * x + bias[c]`.
    fn instance_norm(&mut self, n: &NodeProto, a: &Attrs<'_>, ins: &[Option<Val>]) -> Result<()> {
        let out = n.output.first().cloned().unwrap_or_default();
        let x = first_input(ins)?;
        let d = self.shape_of(&x);
        if d.len() < 3 {
            bail!("the input must be [N, C, D1, ...], got shape {d:?}");
        }
        let scale = channel_param(ins, 1, "scale", d[1], d.len(), None)?;
        let bias = channel_param(ins, 2, "bias", d[1], d.len(), None)?;
        let axes: Vec<i64> = (2..d.len() as i64).collect();
        let (normed, _, _) = self.standardize(&out, &x, axes, a.float("epsilon", 1e-5)?)?;
        self.scale_shift(&out, &normed, &scale, Some(&bias))
    }

    /// GroupNormalization: the channels of each sample in `num_groups`
    /// groups, each standardized over its channels and spatial positions,
    /// then `scale[c] * x + bias[c]` (opset 21; opsets 18–20 give one scale
    /// and bias per group).
    fn group_norm(&mut self, n: &NodeProto, a: &Attrs<'_>, ins: &[Option<Val>]) -> Result<()> {
        let out = n.output.first().cloned().unwrap_or_default();
        let x = first_input(ins)?;
        let d = self.shape_of(&x);
        if d.len() < 2 {
            bail!("the input must be [N, C, ...], got shape {d:?}");
        }
        let groups = a.int("num_groups", 0)?;
        let c = d[1];
        if groups < 1 || !c.is_multiple_of(groups as usize) {
            bail!("num_groups {groups} must divide the {c} channels");
        }
        let groups = groups as usize;
        let per_group = (self.opset < 21).then_some(groups);
        let scale = channel_param(ins, 1, "scale", c, d.len(), per_group)?;
        let bias = channel_param(ins, 2, "bias", c, d.len(), per_group)?;
        let grouped = format!("{out}/grouped");
        self.reshape(
            &grouped,
            &x,
            vec![d[0], groups, numel(&d)? / (d[0] * groups).max(1)],
        )?;
        let gx = self.vals[&grouped].clone();
        let (normed, _, _) = self.standardize(&out, &gx, vec![2], a.float("epsilon", 1e-5)?)?;
        let back = format!("{out}/ungrouped");
        self.reshape(&back, &normed, d)?;
        let nx = self.vals[&back].clone();
        self.scale_shift(&out, &nx, &scale, Some(&bias))
    }

    /// `out = x * scale (+ bias)`, broadcast.
    fn scale_shift(&mut self, out: &str, x: &Val, scale: &Val, bias: Option<&Val>) -> Result<()> {
        let y = match bias {
            None => self.binary_named(out, BinOp::Mul, x, scale)?,
            Some(b) => {
                let scaled = self.binary_named(&format!("{out}/scaled"), BinOp::Mul, x, scale)?;
                self.binary_named(out, BinOp::Add, &scaled, b)?
            }
        };
        self.set(out, y);
        Ok(())
    }

    /// `(x - mean) / sqrt(var + eps)` over `axes` (kept as size 1), with the
    /// mean and `1 / sqrt(var + eps)`.
    fn standardize(
        &mut self,
        out: &str,
        x: &Val,
        axes: Vec<i64>,
        eps: f32,
    ) -> Result<(Val, Val, Val)> {
        if self.type_of(x) != dt::FLOAT {
            bail!("supported for float tensors only");
        }
        self.reduce(&format!("{out}/mean"), 1, x, axes.clone(), true, false)?;
        let mean = self.vals[&format!("{out}/mean")].clone();
        let centered = self.binary_named(&format!("{out}/centered"), BinOp::Sub, x, &mean)?;
        let sq = self.binary_named(&format!("{out}/sq"), BinOp::Mul, &centered, &centered)?;
        self.reduce(&format!("{out}/var"), 1, &sq, axes, true, false)?;
        let var = self.vals[&format!("{out}/var")].clone();
        let ve = self.binary_named(
            &format!("{out}/var_eps"),
            BinOp::Add,
            &var,
            &Val::C(Rc::new(Const::f32(vec![], vec![eps]))),
        )?;
        let vt = self.tensor(&ve)?;
        let shape = self.g.tensors[vt.id].shape.clone();
        let sd = self.new_tensor(
            &format!("{out}/std"),
            DType::F32,
            shape.clone(),
            Quant::None,
        );
        self.emit(OpCode::Unary, vec![2, 0, 0], &[vt.id], sd);
        let inv = self.new_tensor(&format!("{out}/inv_std"), DType::F32, shape, Quant::None);
        self.emit(OpCode::Unary, vec![5, 0, 0], &[sd], inv);
        let inv = Val::T(TVal {
            id: inv,
            layout: vt.layout,
        });
        let normed = self.binary_named(&format!("{out}/normed"), BinOp::Mul, &centered, &inv)?;
        Ok((normed, mean, inv))
    }

    fn pad(
        &mut self,
        out: &str,
        a: &Attrs<'_>,
        x: &Val,
        pads: Option<Val>,
        value: Option<Val>,
    ) -> Result<()> {
        let mode = a.string("mode", "constant")?;
        let mode_id = match mode.as_str() {
            "constant" => None,
            "reflect" => Some(0),
            "edge" => Some(1),
            _ => bail!("Pad mode '{mode}' is not supported"),
        };
        let xd = self.shape_of(x);
        let r = xd.len();
        let pads: Vec<i64> = if self.opset >= 11 {
            match pads {
                Some(Val::C(c)) => c.as_i64(),
                _ => bail!("pads must be constant"),
            }
        } else {
            a.ints("pads")?.ok_or_else(|| anyhow!("missing pads"))?
        };
        if pads.len() != 2 * r {
            bail!("pads must have {} entries", 2 * r);
        }
        if pads.iter().any(|&p| p < 0) {
            bail!("negative pads (cropping) are not supported");
        }
        let val = if self.opset >= 11 {
            match value {
                None => 0.0,
                Some(Val::C(c)) if c.numel() == 1 => c.as_f32()[0],
                Some(_) => bail!("the pad value must be a constant scalar"),
            }
        } else {
            a.float("value", 0.0)?
        };
        let t = self.tensor(x)?;
        if self.g.tensors[t.id].dtype != DType::F32 && mode_id.is_none() {
            bail!("supported for float tensors only");
        }
        let (before, after): (Vec<usize>, Vec<usize>) = (
            pads[..r].iter().map(|&v| v as usize).collect(),
            pads[r..].iter().map(|&v| v as usize).collect(),
        );
        let mut attrs = Vec::new();
        let mut shape = Vec::new();
        let sd = self.g.tensors[t.id].shape.clone();
        for (k, l) in t.layout.stored_axes(r).into_iter().enumerate() {
            let (b, e) = l.map_or((0, 0), |l| (before[l], after[l]));
            attrs.push(i32_of(b)?);
            attrs.push(i32_of(e)?);
            shape.push(sd[k] + b + e);
        }
        let y = self.out_tensor(out, t.id, shape);
        if let Some(m) = mode_id {
            let mut full = vec![m];
            full.extend(attrs);
            self.emit(OpCode::PadMode, full, &[t.id], y);
        } else if val == 0.0 {
            self.emit(OpCode::Pad, attrs, &[t.id], y);
        } else {
            let v = self.const_tensor("pad_value", &Const::f32(vec![], vec![val]))?;
            self.emit(OpCode::PadV2, attrs, &[t.id, v], y);
        }
        self.set(
            out,
            Val::T(TVal {
                id: y,
                layout: t.layout,
            }),
        );
        Ok(())
    }

    fn quantize_linear(&mut self, n: &NodeProto, a: &Attrs<'_>, x: &Val) -> Result<()> {
        let out = n.output.first().cloned().unwrap_or_default();
        let q = self
            .const_qparams(
                n.input.get(1).map(String::as_str).unwrap_or(""),
                n.input.get(2),
            )
            .ok_or_else(|| {
                anyhow!("only constant per-tensor int8/uint8 scale and zero-point are supported")
            })?;
        let _ = a;
        let t = match x {
            Val::Q(src) if self.qparams_of(*src) == q => {
                self.set(&out, Val::T(*src));
                return Ok(());
            }
            Val::Q(src) => *src,
            other => self.tensor(other)?,
        };
        if !matches!(self.g.tensors[t.id].dtype, DType::F32 | DType::I8) {
            bail!("QuantizeLinear input must be float");
        }
        if self.g.tensors[t.id].dtype == DType::I8 && self.g.tensors[t.id].quant == Quant::None {
            bail!("QuantizeLinear input must be float");
        }
        let shape = self.g.tensors[t.id].shape.clone();
        let y = self.q_tensor(&out, shape, q);
        self.emit(OpCode::Quantize, vec![], &[t.id], y);
        self.set(
            &out,
            Val::T(TVal {
                id: y,
                layout: t.layout,
            }),
        );
        Ok(())
    }

    fn dequantize_linear(&mut self, n: &NodeProto, a: &Attrs<'_>, x: &Val) -> Result<()> {
        let out = n.output.first().cloned().unwrap_or_default();
        let _ = a;
        let q = self
            .const_qparams(
                n.input.get(1).map(String::as_str).unwrap_or(""),
                n.input.get(2),
            )
            .ok_or_else(|| {
                anyhow!("only constant per-tensor int8/uint8 scale and zero-point are supported")
            })?;
        match x {
            Val::Q(_) => bail!("DequantizeLinear of a float value"),
            Val::T(t) => {
                let tt = &self.g.tensors[t.id];
                if tt.dtype != DType::I8 {
                    bail!(
                        "DequantizeLinear of a {} runtime tensor is not supported",
                        tt.dtype.name()
                    );
                }
                if tt.quant == Quant::PerTensor(q) {
                    self.set(&out, Val::Q(*t));
                    return Ok(());
                }
                // An int8 tensor with other (or no) quantization: view it with these parameters.
                let name = self.tensor_name(t.id);
                let shape = tt.shape.clone();
                let y = self.q_tensor(&format!("{name}/q"), shape, q);
                self.emit(OpCode::Reshape, vec![], &[t.id], y);
                self.set(
                    &out,
                    Val::Q(TVal {
                        id: y,
                        layout: t.layout,
                    }),
                );
                Ok(())
            }
            Val::C(_) => bail!("DequantizeLinear of this constant is not supported"),
        }
    }
}

/// The BINARY op's function id of a binary op (`docs/format.md`).
fn binary_fn(op: BinOp) -> i32 {
    match op {
        BinOp::Add => 0,
        BinOp::Sub => 1,
        BinOp::Mul => 2,
        BinOp::Div => 3,
        BinOp::Pow => 4,
        BinOp::Max => 5,
        BinOp::Min => 6,
        BinOp::Mod => 7,
        BinOp::Equal => 9,
        BinOp::Less => 10,
        BinOp::Greater => 11,
        BinOp::LessOrEqual => 12,
        BinOp::GreaterOrEqual => 13,
        BinOp::And => 14,
        BinOp::Or => 15,
        BinOp::Xor => 16,
    }
}

/// UNARY function id and default (alpha, beta) of an ONNX element-wise op.
fn unary_fn(op: &str) -> Option<(i32, f32, f32)> {
    Some(match op {
        "Abs" => (0, 0.0, 0.0),
        "Neg" => (1, 0.0, 0.0),
        "Sqrt" => (2, 0.0, 0.0),
        "Exp" => (3, 0.0, 0.0),
        "Log" => (4, 0.0, 0.0),
        "Reciprocal" => (5, 0.0, 0.0),
        "Erf" => (6, 0.0, 0.0),
        "Floor" => (7, 0.0, 0.0),
        "Ceil" => (8, 0.0, 0.0),
        "Round" => (9, 0.0, 0.0),
        "Sin" => (10, 0.0, 0.0),
        "Cos" => (11, 0.0, 0.0),
        "Tan" => (12, 0.0, 0.0),
        "Asin" => (13, 0.0, 0.0),
        "Acos" => (14, 0.0, 0.0),
        "Atan" => (15, 0.0, 0.0),
        "Sinh" => (16, 0.0, 0.0),
        "Cosh" => (17, 0.0, 0.0),
        "Asinh" => (18, 0.0, 0.0),
        "Acosh" => (19, 0.0, 0.0),
        "Atanh" => (20, 0.0, 0.0),
        "Sign" => (21, 0.0, 0.0),
        "Softplus" => (22, 0.0, 0.0),
        "Softsign" => (23, 0.0, 0.0),
        "Elu" => (24, 1.0, 0.0),
        "Selu" => (25, 1.673_263_2, 1.050_701),
        "Celu" => (26, 1.0, 0.0),
        "ThresholdedRelu" => (27, 1.0, 0.0),
        "Mish" => (28, 0.0, 0.0),
        "Gelu" => (29, 0.0, 0.0),
        "HardSigmoid" => (31, 0.2, 0.5),
        "Not" => (32, 0.0, 0.0),
        "IsNaN" => (33, 0.0, 0.0),
        _ => return None,
    })
}

/// Flatten's axis in `[-rank, rank]`, normalized to `[0, rank]`.
fn flatten_axis(a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if !(0..=r).contains(&v) {
        bail!("axis {a} is out of range for rank {rank}");
    }
    Ok(v as usize)
}

/// Output size of a window; error when the window does not fit.
fn window_out(
    input: usize,
    k: usize,
    dil: usize,
    stride: usize,
    before: usize,
    after: usize,
) -> Result<usize> {
    let eff = (k - 1) * dil + 1;
    let padded = input + before + after;
    if padded < eff {
        bail!("the filter ({eff}) is larger than the padded input ({padded})");
    }
    Ok((padded - eff) / stride + 1)
}

fn pool_attrs(
    stride: [usize; 2],
    k: [usize; 2],
    pads: [usize; 4],
    include_pad: bool,
) -> Result<Vec<i32>> {
    [
        stride[0],
        stride[1],
        k[0],
        k[1],
        pads[0],
        pads[1],
        pads[2],
        pads[3],
        0,
        include_pad as usize,
    ]
    .iter()
    .map(|&v| i32_of(v))
    .collect()
}

/// ONNX Reshape target dims (0 copies the input dim unless `allow_zero`, -1 infers).
fn reshape_dims(input: &[usize], shape: &[i64], allow_zero: bool) -> Result<Vec<usize>> {
    let total = numel(input)?;
    let mut out = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            -1 => {
                if infer.replace(i).is_some() {
                    bail!("more than one -1 in the target shape {shape:?}");
                }
                out.push(1);
            }
            0 if !allow_zero => out.push(
                *input
                    .get(i)
                    .ok_or_else(|| anyhow!("0 at axis {i} copies a dimension the input lacks"))?,
            ),
            s if s >= 0 => out.push(s as usize),
            _ => bail!("invalid target shape {shape:?}"),
        }
    }
    if let Some(i) = infer {
        let known = numel(&out)?;
        if known == 0 || total % known != 0 {
            bail!("cannot reshape {input:?} to {shape:?}");
        }
        out[i] = total / known;
    }
    if numel(&out)? != total {
        bail!("cannot reshape {input:?} to {shape:?}");
    }
    Ok(out)
}

fn squeeze_dims(op: &str, input: &[usize], axes: Vec<i64>) -> Result<Vec<usize>> {
    if op == "Unsqueeze" {
        let r = input.len() + axes.len();
        let mut ax: Vec<usize> = axes.iter().map(|&a| axis_of(a, r)).collect::<Result<_>>()?;
        ax.sort_unstable();
        if ax.windows(2).any(|w| w[0] == w[1]) {
            bail!("repeated axis in {axes:?}");
        }
        let mut out = Vec::with_capacity(r);
        let mut it = input.iter();
        for i in 0..r {
            if ax.binary_search(&i).is_ok() {
                out.push(1);
            } else {
                out.push(*it.next().ok_or_else(|| anyhow!("bad axes"))?);
            }
        }
        Ok(out)
    } else {
        let ax: Vec<usize> = axes
            .iter()
            .map(|&a| axis_of(a, input.len()))
            .collect::<Result<_>>()?;
        if ax.iter().any(|&a| input[a] != 1) {
            bail!("cannot squeeze axes {axes:?} of shape {input:?} (not of size 1)");
        }
        Ok(input
            .iter()
            .enumerate()
            .filter(|(i, &d)| {
                if ax.is_empty() {
                    d != 1
                } else {
                    !ax.contains(i)
                }
            })
            .map(|(_, &d)| d)
            .collect())
    }
}
