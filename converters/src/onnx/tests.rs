//! Importer tests on models built here with the same protobuf messages:
//! malformed files, error messages, shape binding, layouts and a few
//! numeric checks through the runtime.

use prost::Message;

use super::proto::*;
use crate::{convert_with, ConvertOptions, IoLayout};
use ferrite_runtime::{Model, Options, Session};

fn tensor_type(elem: i32, dims: &[Option<i64>], sym: &str) -> TypeProto {
    TypeProto {
        tensor_type: Some(TypeProtoTensor {
            elem_type: elem,
            shape: Some(TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|d| Dimension {
                        value: Some(match d {
                            Some(v) => DimValue::DimValue(*v),
                            None => DimValue::DimParam(sym.into()),
                        }),
                    })
                    .collect(),
            }),
        }),
        ..Default::default()
    }
}

fn value(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(tensor_type(data_type::FLOAT, dims, "N")),
    }
}

fn node(
    op: &str,
    name: &str,
    ins: &[&str],
    outs: &[&str],
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: outs.iter().map(|s| s.to_string()).collect(),
        name: name.into(),
        op_type: op.into(),
        attribute: attrs,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::INTS,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn float_init(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: data_type::FLOAT,
        raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn model(
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    ins: Vec<ValueInfoProto>,
    outs: Vec<ValueInfoProto>,
) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(GraphProto {
            node: nodes,
            name: "g".into(),
            initializer: inits,
            input: ins,
            output: outs,
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Conv 1x1 (2 → 2 channels, weights [[1, 2], [3, 4]], bias [0.5, -100]) then Relu.
fn conv_relu() -> Vec<u8> {
    model(
        vec![
            node(
                "Conv",
                "conv",
                &["x", "w", "b"],
                &["c"],
                vec![ints("kernel_shape", &[1, 1])],
            ),
            node("Relu", "relu", &["c"], &["y"], vec![]),
        ],
        vec![
            float_init("w", &[2, 2, 1, 1], &[1.0, 2.0, 3.0, 4.0]),
            float_init("b", &[2], &[0.5, -100.0]),
        ],
        vec![value("x", &[Some(1), Some(2), Some(2), Some(3)])],
        vec![value("y", &[Some(1), Some(2), Some(2), Some(3)])],
    )
}

fn err<T>(r: anyhow::Result<T>) -> anyhow::Error {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn run(bytes: &[u8], input: &[f32]) -> (Vec<usize>, Vec<f32>) {
    let m = Model::from_vec(bytes).unwrap();
    let mut s = Session::new(&m, Options::default()).unwrap();
    s.set_input_f32(0, input).unwrap();
    s.invoke().unwrap();
    let shape = m.tensors()[m.outputs()[0]].shape.dims().to_vec();
    (shape, s.output_f32(0).unwrap().to_vec())
}

#[test]
fn conv_relu_computes_in_nchw_at_the_boundary() {
    let c = convert_with(&conv_relu(), &ConvertOptions::default()).unwrap();
    let x: Vec<f32> = (0..12).map(|i| i as f32).collect();
    let (shape, y) = run(&c.bytes, &x);
    assert_eq!(shape, [1, 2, 2, 3]);
    // Channel 0: 1*x0 + 2*x1 + 0.5; channel 1: 3*x0 + 4*x1 - 100, clamped at 0.
    for p in 0..6 {
        let (a, b) = (x[p], x[6 + p]);
        assert_eq!(y[p], a + 2.0 * b + 0.5);
        assert_eq!(y[6 + p], (3.0 * a + 4.0 * b - 100.0).max(0.0));
    }
}

#[test]
fn io_layout_nhwc_drops_boundary_transposes() {
    let nchw = convert_with(&conv_relu(), &ConvertOptions::default()).unwrap();
    let opts = ConvertOptions {
        io_layout: IoLayout::Nhwc,
        ..Default::default()
    };
    // A 2-channel 2x3 "image" is too small to count as one; use a real-size one.
    let bytes = model(
        vec![node("Conv", "conv", &["x", "w"], &["y"], vec![])],
        vec![float_init("w", &[1, 3, 1, 1], &[1.0, 10.0, 100.0])],
        vec![value("x", &[Some(1), Some(3), Some(8), Some(8)])],
        vec![value("y", &[Some(1), Some(1), Some(8), Some(8)])],
    );
    let c = convert_with(&bytes, &opts).unwrap();
    let m = Model::from_vec(&c.bytes).unwrap();
    assert_eq!(m.tensors()[m.inputs()[0]].shape.dims(), &[1, 8, 8, 3]);
    assert_eq!(m.tensors()[m.outputs()[0]].shape.dims(), &[1, 8, 8, 1]);
    assert!(m
        .def()
        .ops
        .iter()
        .all(|o| o.code != ferrite_runtime::OpCode::Transpose));
    let meta = m
        .metadata("onnx.io_layout")
        .expect("inspect shows the layout change");
    assert!(std::str::from_utf8(&meta.value)
        .unwrap()
        .contains("input x"));
    let x: Vec<f32> = (0..192).map(|i| (i % 3) as f32).collect();
    let (_, y) = run(&c.bytes, &x);
    assert!(y.iter().all(|&v| v == 210.0));
    assert!(!nchw.bytes.is_empty());
}

#[test]
fn truncated_and_garbled_files_are_errors() {
    let good = conv_relu();
    for cut in [1, 7, good.len() / 2, good.len() - 1] {
        assert!(convert_with(&good[..cut], &ConvertOptions::default()).is_err());
        let _ = super::parse(&good[..cut]);
    }
    // Field 7 (graph) as a varint instead of a message.
    let mut bad = vec![0x08, 0x08, 0x38, 0x05];
    bad.extend_from_slice(&good[2..]);
    assert!(super::parse(&bad).is_err() || convert_with(&bad, &ConvertOptions::default()).is_err());
    let mut flipped = good.clone();
    for i in (0..flipped.len()).step_by(3) {
        flipped[i] ^= 0x5a;
        let _ = convert_with(&flipped, &ConvertOptions::default());
    }
}

#[test]
fn missing_initializer_and_cycles_name_the_node() {
    let missing = model(
        vec![node("Conv", "conv", &["x", "w_missing"], &["y"], vec![])],
        vec![],
        vec![value("x", &[Some(1), Some(2), Some(8), Some(8)])],
        vec![value("y", &[Some(1), Some(2), Some(8), Some(8)])],
    );
    let e = format!(
        "{:#}",
        err(convert_with(&missing, &ConvertOptions::default()))
    );
    assert!(
        e.contains("node 0 'conv' (Conv)") && e.contains("w_missing"),
        "{e}"
    );
    let cycle = model(
        vec![
            node("Relu", "a", &["b_out"], &["a_out"], vec![]),
            node("Relu", "b", &["a_out"], &["b_out"], vec![]),
        ],
        vec![],
        vec![value("x", &[Some(1)])],
        vec![value("b_out", &[Some(1)])],
    );
    let e = format!(
        "{:#}",
        err(convert_with(&cycle, &ConvertOptions::default()))
    );
    assert!(e.contains("cycle"), "{e}");
}

#[test]
fn unsupported_ops_and_attributes_are_named() {
    let bytes = model(
        vec![
            node("Relu", "r", &["x"], &["t"], vec![]),
            node("Unique", "e1", &["t"], &["y"], vec![]),
        ],
        vec![],
        vec![value("x", &[Some(2)])],
        vec![value("y", &[Some(2)])],
    );
    let e = format!(
        "{:#}",
        err(convert_with(&bytes, &ConvertOptions::default()))
    );
    assert!(
        e.contains("node 1 'e1' (Unique)") && e.contains("not supported"),
        "{e}"
    );
    let pad = model(
        vec![node(
            "Pad",
            "p",
            &["x", "pads"],
            &["y"],
            vec![AttributeProto {
                name: "mode".into(),
                r#type: attr_type::STRING,
                s: b"wrap".to_vec(),
                ..Default::default()
            }],
        )],
        vec![TensorProto {
            name: "pads".into(),
            dims: vec![2],
            data_type: data_type::INT64,
            int64_data: vec![1, 1],
            ..Default::default()
        }],
        vec![value("x", &[Some(2)])],
        vec![value("y", &[Some(4)])],
    );
    let e = format!("{:#}", err(convert_with(&pad, &ConvertOptions::default())));
    assert!(e.contains("'wrap'"), "{e}");
}

#[test]
fn composite_ops_name_what_is_wrong() {
    let int64 = |name: &str, dims: Vec<i64>, v: Vec<i64>| TensorProto {
        name: name.into(),
        dims,
        data_type: data_type::INT64,
        int64_data: v,
        ..Default::default()
    };
    let fails = |nodes, inits, inputs: Vec<(&str, Vec<Option<i64>>)>| {
        let inputs = inputs.iter().map(|(n, d)| value(n, d)).collect();
        let bytes = model(nodes, inits, inputs, vec![value("y", &[None])]);
        format!(
            "{:#}",
            err(convert_with(&bytes, &ConvertOptions::default()))
        )
    };
    let e = fails(
        vec![node("OneHot", "o", &["x", "d", "v"], &["y"], vec![])],
        vec![],
        vec![("x", vec![Some(3)]), ("d", vec![]), ("v", vec![Some(2)])],
    );
    assert!(
        e.contains("(OneHot)") && e.contains("depth must be a constant"),
        "{e}"
    );
    let e = fails(
        vec![node("GatherElements", "g", &["x", "i"], &["y"], vec![])],
        vec![int64("i", vec![2, 2], vec![0, 1, 2, 0])],
        vec![("x", vec![Some(2), Some(2)])],
    );
    assert!(
        e.contains("index 2 is out of range for axis 0 of size 2"),
        "{e}"
    );
    let e = fails(
        vec![node("GatherElements", "g", &["x", "i"], &["y"], vec![])],
        vec![int64("i", vec![2], vec![0, 1])],
        vec![("x", vec![Some(2), Some(2)])],
    );
    assert!(e.contains("must have the same rank"), "{e}");
    let e = fails(
        vec![node("Trilu", "t", &["x"], &["y"], vec![])],
        vec![],
        vec![("x", vec![Some(4)])],
    );
    assert!(e.contains("(Trilu)") && e.contains("rank 2 or more"), "{e}");
    let hidden = |h: i64| AttributeProto {
        name: "hidden_size".into(),
        r#type: attr_type::INT,
        i: h,
        ..Default::default()
    };
    let rnn_inputs = || {
        vec![
            ("x", vec![Some(4), Some(1), Some(3)]),
            ("w", vec![Some(1), Some(2), Some(3)]),
            ("r", vec![Some(1), Some(2), Some(2)]),
        ]
    };
    let e = fails(
        vec![node("RNN", "r", &["x", "w", "r"], &["y"], vec![hidden(3)])],
        vec![],
        rnn_inputs(),
    );
    assert!(
        e.contains("(RNN)") && e.contains("W must have shape [1, 3, 3]"),
        "{e}"
    );
    let mut inputs = rnn_inputs();
    inputs.push(("lens", vec![Some(1)]));
    let e = fails(
        vec![node(
            "RNN",
            "r",
            &["x", "w", "r", "", "lens"],
            &["y"],
            vec![hidden(2)],
        )],
        vec![],
        inputs,
    );
    assert!(e.contains("sequence_lens must be constant"), "{e}");
    let e = fails(
        vec![node("RNN", "r", &["x", "w", "r"], &["y"], vec![])],
        vec![],
        rnn_inputs(),
    );
    assert!(e.contains("hidden_size must be set"), "{e}");
    let equation = |eq: &str| AttributeProto {
        name: "equation".into(),
        r#type: attr_type::STRING,
        s: eq.as_bytes().to_vec(),
        ..Default::default()
    };
    let two = || vec![("x", vec![Some(2), Some(3)]), ("z", vec![Some(3), Some(2)])];
    let e = fails(
        vec![node(
            "Einsum",
            "e",
            &["x", "z"],
            &["y"],
            vec![equation("...j,jk")],
        )],
        vec![],
        two(),
    );
    assert!(e.contains("(Einsum)") && e.contains("ellipsis"), "{e}");
    let e = fails(
        vec![node(
            "Einsum",
            "e",
            &["x", "z"],
            &["y"],
            vec![equation("ij,ik->jk")],
        )],
        vec![],
        two(),
    );
    assert!(e.contains("letter 'i' has sizes 2 and 3"), "{e}");
    let e = fails(
        vec![node("ScatterND", "s", &["x", "i", "z"], &["y"], vec![])],
        vec![],
        vec![
            ("x", vec![Some(2), Some(3)]),
            ("i", vec![Some(1), Some(1)]),
            ("z", vec![Some(1), Some(3)]),
        ],
    );
    assert!(
        e.contains("(ScatterND)") && e.contains("indices must be constant"),
        "{e}"
    );
    let e = fails(
        vec![node("ScatterND", "s", &["x", "i", "z"], &["y"], vec![])],
        vec![int64("i", vec![1, 1], vec![2])],
        vec![("x", vec![Some(2), Some(3)]), ("z", vec![Some(1), Some(3)])],
    );
    assert!(
        e.contains("index 2 is out of range for axis 0 of size 2"),
        "{e}"
    );
}

#[test]
fn symbolic_dims_need_shape_and_shape_binds_them() {
    let bytes = model(
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![],
        vec![value("x", &[None, Some(3)])],
        vec![value("y", &[None, Some(3)])],
    );
    let e = format!(
        "{:#}",
        err(convert_with(&bytes, &ConvertOptions::default()))
    );
    assert!(
        e.contains("symbolic dimension 'N'") && e.contains("--shape x="),
        "{e}"
    );
    let opts = ConvertOptions {
        shapes: vec![("x".into(), vec![2, 3])],
        ..Default::default()
    };
    let c = convert_with(&bytes, &opts).unwrap();
    let (shape, y) = run(&c.bytes, &[-1.0, 2.0, -3.0, 4.0, -5.0, 6.0]);
    assert_eq!(shape, [2, 3]);
    assert_eq!(y, [0.0, 2.0, 0.0, 4.0, 0.0, 6.0]);
    let wrong = ConvertOptions {
        shapes: vec![("x".into(), vec![2, 4])],
        ..Default::default()
    };
    assert!(convert_with(&bytes, &wrong).is_err());
}

#[test]
fn shape_arithmetic_folds_to_a_static_reshape() {
    // Reshape(x, Concat(Gather(Shape(x), 0), [-1])) == flatten to [N, rest].
    let bytes = model(
        vec![
            node("Shape", "s", &["x"], &["shape"], vec![]),
            node("Gather", "g", &["shape", "zero"], &["n"], vec![]),
            node("Unsqueeze", "u", &["n", "axes"], &["n1"], vec![]),
            node(
                "Concat",
                "c",
                &["n1", "minus1"],
                &["target"],
                vec![AttributeProto {
                    name: "axis".into(),
                    r#type: attr_type::INT,
                    i: 0,
                    ..Default::default()
                }],
            ),
            node("Reshape", "r", &["x", "target"], &["y"], vec![]),
        ],
        vec![
            TensorProto {
                name: "zero".into(),
                data_type: data_type::INT64,
                int64_data: vec![0],
                ..Default::default()
            },
            TensorProto {
                name: "axes".into(),
                dims: vec![1],
                data_type: data_type::INT64,
                int64_data: vec![0],
                ..Default::default()
            },
            TensorProto {
                name: "minus1".into(),
                dims: vec![1],
                data_type: data_type::INT64,
                int64_data: vec![-1],
                ..Default::default()
            },
        ],
        vec![value("x", &[Some(2), Some(3), Some(4)])],
        vec![value("y", &[Some(2), Some(12)])],
    );
    let c = convert_with(&bytes, &ConvertOptions::default()).unwrap();
    let x: Vec<f32> = (0..24).map(|i| i as f32).collect();
    let (shape, y) = run(&c.bytes, &x);
    assert_eq!(shape, [2, 12]);
    assert_eq!(y, x);
}

fn scalar(name: &str, ty: i32, v: f64) -> TensorProto {
    let mut t = TensorProto {
        name: name.into(),
        data_type: ty,
        ..Default::default()
    };
    match ty {
        data_type::FLOAT => t.float_data = vec![v as f32],
        _ => t.int32_data = vec![v as i32],
    }
    t
}

#[test]
fn qdq_conv_relu_becomes_one_int8_conv() {
    // x -Q/DQ(0.05, u8 128)-> Conv(DQ int8 w per channel, DQ int32 b) -> Relu -Q/DQ(0.1, u8 0)-> y
    let wq: Vec<i32> = vec![10, -20, 30, 40, -50, 60, 70, 80];
    let (ws, sx, sy) = ([0.01f32, 0.02], 0.05f32, 0.1f32);
    let bq = [100i32, -300];
    let bytes = model(
        vec![
            node("QuantizeLinear", "qx", &["x", "sx", "zx"], &["xq"], vec![]),
            node(
                "DequantizeLinear",
                "dx",
                &["xq", "sx", "zx"],
                &["xd"],
                vec![],
            ),
            node(
                "DequantizeLinear",
                "dw",
                &["wq", "ws", "zw"],
                &["wd"],
                vec![AttributeProto {
                    name: "axis".into(),
                    r#type: attr_type::INT,
                    i: 0,
                    ..Default::default()
                }],
            ),
            node(
                "DequantizeLinear",
                "db",
                &["bq", "bs", "zb"],
                &["bd"],
                vec![AttributeProto {
                    name: "axis".into(),
                    r#type: attr_type::INT,
                    i: 0,
                    ..Default::default()
                }],
            ),
            node("Conv", "conv", &["xd", "wd", "bd"], &["c"], vec![]),
            node("Relu", "relu", &["c"], &["r"], vec![]),
            node("QuantizeLinear", "qy", &["r", "sy", "zy"], &["yq"], vec![]),
            node(
                "DequantizeLinear",
                "dy",
                &["yq", "sy", "zy"],
                &["y"],
                vec![],
            ),
        ],
        vec![
            scalar("sx", data_type::FLOAT, sx as f64),
            scalar("zx", data_type::UINT8, 128.0),
            scalar("sy", data_type::FLOAT, sy as f64),
            scalar("zy", data_type::UINT8, 0.0),
            TensorProto {
                name: "wq".into(),
                dims: vec![2, 2, 1, 2],
                data_type: data_type::INT8,
                int32_data: wq.clone(),
                ..Default::default()
            },
            TensorProto {
                name: "ws".into(),
                dims: vec![2],
                data_type: data_type::FLOAT,
                float_data: ws.to_vec(),
                ..Default::default()
            },
            TensorProto {
                name: "zw".into(),
                dims: vec![2],
                data_type: data_type::INT8,
                int32_data: vec![0, 0],
                ..Default::default()
            },
            TensorProto {
                name: "bq".into(),
                dims: vec![2],
                data_type: data_type::INT32,
                int32_data: bq.to_vec(),
                ..Default::default()
            },
            TensorProto {
                name: "bs".into(),
                dims: vec![2],
                data_type: data_type::FLOAT,
                float_data: vec![sx * ws[0], sx * ws[1]],
                ..Default::default()
            },
            TensorProto {
                name: "zb".into(),
                dims: vec![2],
                data_type: data_type::INT32,
                int32_data: vec![0, 0],
                ..Default::default()
            },
        ],
        vec![value("x", &[Some(1), Some(2), Some(3), Some(4)])],
        vec![value("y", &[Some(1), Some(2), Some(3), Some(3)])],
    );
    let c = convert_with(&bytes, &ConvertOptions::default()).unwrap();
    let m = Model::from_vec(&c.bytes).unwrap();
    let convs: Vec<_> = m
        .def()
        .ops
        .iter()
        .filter(|o| o.code == ferrite_runtime::OpCode::Conv2d)
        .collect();
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0].attrs[8], 1, "Relu fused");
    assert_eq!(
        m.tensors()[convs[0].inputs[0] as usize].dtype,
        ferrite_runtime::DType::I8
    );
    assert!(m
        .def()
        .ops
        .iter()
        .all(|o| o.code != ferrite_runtime::OpCode::Relu));
    let x: Vec<f32> = (0..24).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3).collect();
    let (shape, y) = run(&c.bytes, &x);
    assert_eq!(shape, [1, 2, 3, 3]);
    // Reference in float on the dequantized operands.
    let xd: Vec<f32> = x
        .iter()
        .map(|&v| ((v / sx).round().clamp(-128.0, 127.0)) * sx)
        .collect();
    for o in 0..2 {
        for r in 0..3 {
            for col in 0..3 {
                let mut acc = bq[o] as f32 * sx * ws[o];
                for ci in 0..2 {
                    for k in 0..2 {
                        acc += xd[(ci * 3 + r) * 4 + col + k]
                            * wq[(o * 2 + ci) * 2 + k] as f32
                            * ws[o];
                    }
                }
                let want = (acc.max(0.0) / sy).round().min(255.0) * sy;
                let got = y[(o * 3 + r) * 3 + col];
                assert!((got - want).abs() <= sy * 1.01, "{got} vs {want}");
            }
        }
    }
}

fn float_attr(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::FLOAT,
        f: v,
        ..Default::default()
    }
}

/// Conv 1x1 (4 → 4) → hard swish as MobileNetV3 exports it
/// (`a · HardSigmoid(a)`) → SiLU (`b · Sigmoid(b)`) → Elu.
fn gated_activations() -> Vec<u8> {
    let w: Vec<f32> = (0..16).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
    model(
        vec![
            node("Conv", "conv", &["x", "w", "b"], &["a"], vec![]),
            node(
                "HardSigmoid",
                "hsig",
                &["a"],
                &["h"],
                vec![float_attr("alpha", 1.0 / 6.0), float_attr("beta", 0.5)],
            ),
            node("Mul", "hswish", &["a", "h"], &["hs"], vec![]),
            node("Sigmoid", "sig", &["hs"], &["s"], vec![]),
            node("Mul", "silu", &["s", "hs"], &["si"], vec![]),
            node("Elu", "elu", &["si"], &["y"], vec![]),
        ],
        vec![
            float_init("w", &[4, 4, 1, 1], &w),
            float_init("b", &[4], &[0.5, -1.0, 0.0, 2.0]),
        ],
        vec![value("x", &[Some(1), Some(4), Some(5), Some(5)])],
        vec![value("y", &[Some(1), Some(4), Some(5), Some(5)])],
    )
}

fn sample(seed: usize) -> Vec<f32> {
    (0..100)
        .map(|i| (((i * 31 + seed * 17) % 43) as f32 - 21.0) / 5.0)
        .collect()
}

/// A fresh folder of 12 calibration samples `sample(0..12)` of `shape`, as .npy files.
fn calib_dir(tag: &str, shape: &[u64], sample: impl Fn(usize) -> Vec<f32>) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrite-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for k in 0..12 {
        use npyz::WriterBuilder;
        let mut buf = Vec::new();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut buf)
            .begin_nd()
            .unwrap();
        w.extend(sample(k)).unwrap();
        w.finish().unwrap();
        std::fs::write(dir.join(format!("s{k:02}.npy")), buf).unwrap();
    }
    dir
}

#[test]
fn gated_and_real_activations_fuse_and_quantize_to_int8() {
    let float = convert_with(&gated_activations(), &ConvertOptions::default()).unwrap();
    let m = Model::from_vec(&float.bytes).unwrap();
    let codes: Vec<_> = m.def().ops.iter().map(|o| o.code).collect();
    // The hard swish, fused, follows the float conv as its post-op (2).
    let conv = m
        .def()
        .ops
        .iter()
        .find(|o| o.code == ferrite_runtime::OpCode::Conv2d);
    assert_eq!(
        conv.map(|o| o.attrs.get(9).copied()),
        Some(Some(2)),
        "{codes:?}"
    );
    assert!(!codes.contains(&ferrite_runtime::OpCode::Mul), "{codes:?}");

    let dir = calib_dir("gated", &[1, 4, 5, 5], sample);
    let opts = ConvertOptions {
        quantize: Some(crate::QuantizeOptions {
            calib: dir.clone(),
            method: "minmax".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let q = convert_with(&gated_activations(), &opts);
    let _ = std::fs::remove_dir_all(&dir);
    let q = q.unwrap();
    let qm = Model::from_vec(&q.bytes).unwrap();
    let meta = qm.metadata("quantization").expect("quantization metadata");
    let j: serde_json::Value = serde_json::from_slice(&meta.value).unwrap();
    assert_eq!(j["float_ops"], serde_json::json!([]), "{j}");
    let s = Session::new(&qm, Options::default()).unwrap();
    let kernels = s.kernel_names().join(" ");
    assert!(kernels.contains("ref_unary_lut_i8"), "{kernels}");

    // int8 stays within a few output steps of float on a calibration sample.
    let x = sample(3);
    let (_, want) = run(&float.bytes, &x);
    let (_, got) = run(&q.bytes, &x);
    let range = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 0.04 * range, "{g} vs {w} (range {range})");
    }
}

#[test]
fn reduce_mean_over_h_and_w_is_a_mean_of_the_nhwc_image() {
    for keep in [0, 1] {
        let mut nodes = vec![node(
            "Conv",
            "conv",
            &["x", "w", "b"],
            &["c"],
            vec![ints("kernel_shape", &[1, 1])],
        )];
        nodes.push(node(
            "ReduceMean",
            "gap",
            &["c"],
            &["y"],
            vec![
                ints("axes", &[-1, 2]),
                AttributeProto {
                    name: "keepdims".into(),
                    r#type: attr_type::INT,
                    i: keep,
                    ..Default::default()
                },
            ],
        ));
        let out: &[Option<i64>] = if keep == 1 {
            &[Some(1), Some(2), Some(1), Some(1)]
        } else {
            &[Some(1), Some(2)]
        };
        let bytes = model(
            nodes,
            vec![
                float_init("w", &[2, 2, 1, 1], &[1.0, 2.0, 3.0, 4.0]),
                float_init("b", &[2], &[0.5, -100.0]),
            ],
            vec![value("x", &[Some(1), Some(2), Some(2), Some(3)])],
            vec![value("y", out)],
        );
        let c = convert_with(&bytes, &ConvertOptions::default()).unwrap();
        let m = Model::from_vec(&c.bytes).unwrap();
        let codes: Vec<_> = m.def().ops.iter().map(|o| o.code).collect();
        // The input's NCHW → NHWC transpose, and none back before the mean;
        // a kept [N, 1, 1, C] is handed out as [N, C, 1, 1] by a reshape.
        use ferrite_runtime::OpCode::{Conv2d, Mean, Reshape, Transpose};
        if keep == 1 {
            assert_eq!(codes, [Transpose, Conv2d, Mean, Reshape]);
        } else {
            assert_eq!(codes, [Transpose, Conv2d, Mean]);
        }
        let x: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let (shape, y) = run(&c.bytes, &x);
        let want_shape: Vec<usize> = out.iter().map(|d| d.unwrap() as usize).collect();
        // Channel k of the conv is w[k][0]·x0 + w[k][1]·x1 + b[k]; x0 averages
        // 2.5 and x1 8.5 over the 6 pixels.
        assert_eq!(shape, want_shape);
        assert_eq!(y, [2.5 + 2.0 * 8.5 + 0.5, 3.0 * 2.5 + 4.0 * 8.5 - 100.0]);
    }
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::INT,
        i: v,
        ..Default::default()
    }
}

#[test]
fn one_d_convolutions_run_on_the_signal_channels_last() {
    // Conv1d(2 → 3, k 3, pads 1) → BatchNorm → Relu → MaxPool1d(2) →
    // Conv1d(3 → 2, k 1) → Softmax over channels → mean over time.
    let (l, k) = (6usize, 3usize);
    let w1: Vec<f32> = (0..3 * 2 * k)
        .map(|i| ((i * 7) % 11) as f32 / 10.0 - 0.5)
        .collect();
    let b1 = [0.1f32, -0.2, 0.3];
    let (g, beta, mean, var) = (
        [1.5f32, 0.5, 2.0],
        [0.0f32, 0.1, -0.1],
        [0.2f32, -0.3, 0.0],
        [1.0f32, 4.0, 0.25],
    );
    let w2: Vec<f32> = vec![1.0, -1.0, 0.5, -0.5, 2.0, 0.25];
    let bytes = model(
        vec![
            node(
                "Conv",
                "c1",
                &["x", "w1", "b1"],
                &["c1"],
                vec![ints("pads", &[1, 1])],
            ),
            node(
                "BatchNormalization",
                "bn",
                &["c1", "g", "beta", "mean", "var"],
                &["n"],
                vec![],
            ),
            node("Relu", "relu", &["n"], &["r"], vec![]),
            node(
                "MaxPool",
                "pool",
                &["r"],
                &["p"],
                vec![ints("kernel_shape", &[2]), ints("strides", &[2])],
            ),
            node("Conv", "c2", &["p", "w2"], &["c2"], vec![]),
            node("Softmax", "sm", &["c2"], &["s"], vec![int_attr("axis", 1)]),
            node(
                "ReduceMean",
                "gap",
                &["s"],
                &["y"],
                vec![ints("axes", &[2]), int_attr("keepdims", 0)],
            ),
        ],
        vec![
            float_init("w1", &[3, 2, k as i64], &w1),
            float_init("b1", &[3], &b1),
            float_init("g", &[3], &g),
            float_init("beta", &[3], &beta),
            float_init("mean", &[3], &mean),
            float_init("var", &[3], &var),
            float_init("w2", &[2, 3, 1], &w2),
        ],
        vec![value("x", &[Some(1), Some(2), Some(l as i64)])],
        vec![value("y", &[Some(1), Some(2)])],
    );
    let c = convert_with(&bytes, &ConvertOptions::default()).unwrap();
    let m = Model::from_vec(&c.bytes).unwrap();
    let codes: Vec<_> = m.def().ops.iter().map(|o| o.code).collect();
    // The input becomes the image [1, 1, L, C] once; then no layout change:
    // batch norm and ReLU fold into the conv, softmax and the mean read the
    // channels-last signal.
    use ferrite_runtime::OpCode::{Conv2d, MaxPool2d, Mean, Reshape, Softmax, Transpose};
    assert_eq!(
        codes,
        [Reshape, Transpose, Conv2d, MaxPool2d, Conv2d, Softmax, Mean]
    );

    let x: Vec<f32> = (0..2 * l).map(|i| (i as f32 * 0.37).sin()).collect();
    let (shape, y) = run(&c.bytes, &x);
    assert_eq!(shape, [1, 2]);
    // The same network written out directly.
    let mut r = vec![[0f32; 3]; l];
    for (t, rt) in r.iter_mut().enumerate() {
        for (o, v) in rt.iter_mut().enumerate() {
            let mut acc = b1[o];
            for i in 0..2 {
                for j in 0..k {
                    let p = t as isize + j as isize - 1;
                    if (0..l as isize).contains(&p) {
                        acc += w1[(o * 2 + i) * k + j] * x[i * l + p as usize];
                    }
                }
            }
            let n = (acc - mean[o]) / (var[o] + 1e-5).sqrt() * g[o] + beta[o];
            *v = n.max(0.0);
        }
    }
    let mut want = [0f32; 2];
    for t in 0..l / 2 {
        let p: Vec<f32> = (0..3).map(|o| r[2 * t][o].max(r[2 * t + 1][o])).collect();
        let z: Vec<f32> = (0..2)
            .map(|o| (0..3).map(|i| w2[o * 3 + i] * p[i]).sum())
            .collect();
        let e: Vec<f32> = z.iter().map(|v| v.exp()).collect();
        for o in 0..2 {
            want[o] += e[o] / (e[0] + e[1]) / (l / 2) as f32;
        }
    }
    for o in 0..2 {
        assert!((y[o] - want[o]).abs() < 1e-5, "{y:?} vs {want:?}");
    }
}

#[test]
fn one_d_cnn_with_reflect_padding_quantizes_to_int8_end_to_end() {
    // Conv1d(4 → 6, k 3) → Relu → reflect Pad(1, 1) → Conv1d(6 → 3, k 3) → GlobalAveragePool.
    let w1: Vec<f32> = (0..6 * 4 * 3)
        .map(|i| ((i * 5) % 13) as f32 / 13.0 - 0.45)
        .collect();
    let w2: Vec<f32> = (0..3 * 6 * 3)
        .map(|i| ((i * 7) % 11) as f32 / 11.0 - 0.5)
        .collect();
    let pads = TensorProto {
        name: "pads".into(),
        dims: vec![6],
        data_type: data_type::INT64,
        raw_data: [0i64, 0, 1, 0, 0, 1]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        ..Default::default()
    };
    let mode = AttributeProto {
        name: "mode".into(),
        r#type: attr_type::STRING,
        s: b"reflect".to_vec(),
        ..Default::default()
    };
    let bytes = model(
        vec![
            node("Conv", "c1", &["x", "w1"], &["c1"], vec![]),
            node("Relu", "relu", &["c1"], &["r"], vec![]),
            node("Pad", "pad", &["r", "pads"], &["p"], vec![mode]),
            node("Conv", "c2", &["p", "w2"], &["c2"], vec![]),
            node("GlobalAveragePool", "gap", &["c2"], &["y"], vec![]),
        ],
        vec![
            float_init("w1", &[6, 4, 3], &w1),
            float_init("w2", &[3, 6, 3], &w2),
            pads,
        ],
        vec![value("x", &[Some(1), Some(4), Some(25)])],
        vec![value("y", &[Some(1), Some(3), Some(1)])],
    );
    let float = convert_with(&bytes, &ConvertOptions::default()).unwrap();
    let dir = calib_dir("conv1d", &[1, 4, 25], sample);
    let opts = ConvertOptions {
        quantize: Some(crate::QuantizeOptions {
            calib: dir.clone(),
            method: "minmax".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let q = convert_with(&bytes, &opts);
    let _ = std::fs::remove_dir_all(&dir);
    let q = q.unwrap();
    let qm = Model::from_vec(&q.bytes).unwrap();
    let meta = qm.metadata("quantization").expect("quantization metadata");
    let j: serde_json::Value = serde_json::from_slice(&meta.value).unwrap();
    // Reflect padding only moves codes: it stays int8 like the convs.
    assert_eq!(j["float_ops"], serde_json::json!([]), "{j}");
    let x = sample(5);
    let (shape, want) = run(&float.bytes, &x);
    let (qshape, got) = run(&q.bytes, &x);
    assert_eq!(
        (shape.as_slice(), qshape.as_slice()),
        ([1, 3, 1].as_slice(), [1, 3, 1].as_slice())
    );
    let range = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 0.03 * range, "{got:?} vs {want:?}");
    }
}

#[test]
fn one_d_window_attributes_are_checked_in_their_own_terms() {
    let conv1d = |attrs: Vec<AttributeProto>| {
        model(
            vec![node("Conv", "c", &["x", "w"], &["y"], attrs)],
            vec![float_init("w", &[2, 3, 3], &[0.5; 18])],
            vec![value("x", &[Some(1), Some(3), Some(8)])],
            vec![value("y", &[Some(1), Some(2), None])],
        )
    };
    let msg = |attrs| {
        format!(
            "{:#}",
            err(convert_with(&conv1d(attrs), &ConvertOptions::default()))
        )
    };
    let m = msg(vec![ints("strides", &[0])]);
    assert!(m.contains("strides must be positive, got [0]"), "{m}");
    let m = msg(vec![ints("pads", &[1, 1, 1, 1])]);
    assert!(
        m.contains("pads must have 2 value(s) for a 1-D input"),
        "{m}"
    );
    let m = msg(vec![ints("kernel_shape", &[5])]);
    assert!(m.contains("as the 2-D op on the image [N, C, 1, L]"), "{m}");
    // And a valid one converts: output length (8 + 2 - 3) / 2 + 1 = 4.
    let ok = conv1d(vec![ints("pads", &[1, 1]), ints("strides", &[2])]);
    let c = convert_with(&ok, &ConvertOptions::default()).unwrap();
    let (shape, _) = run(&c.bytes, &[1.0; 24]);
    assert_eq!(shape, [1, 2, 4]);
}

/// A 1-D int64 initializer.
fn int64_init(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![v.len() as i64],
        data_type: data_type::INT64,
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

#[test]
fn channel_slices_and_splits_stay_channels_last() {
    // Conv 1x1 to [x0, x1, x0 + x1], its channels 1..3 (a Slice, or the
    // second part of a Split into 1 and 2), then Conv 1x1 with weights
    // [1, 10]: y = x1 + 10 (x0 + x1), with no transpose around the slice.
    use ferrite_runtime::OpCode::{Conv2d, SplitV, StridedSlice, Transpose};
    for split in [false, true] {
        let mut nodes = vec![node(
            "Conv",
            "conv1",
            &["x", "w1"],
            &["c"],
            vec![ints("kernel_shape", &[1, 1])],
        )];
        let mut inits = vec![
            float_init("w1", &[3, 2, 1, 1], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]),
            float_init("w2", &[1, 2, 1, 1], &[1.0, 10.0]),
        ];
        if split {
            inits.push(int64_init("sizes", &[1, 2]));
            nodes.push(node(
                "Split",
                "split",
                &["c", "sizes"],
                &["c0", "s"],
                vec![int_attr("axis", 1)],
            ));
        } else {
            inits.extend([
                int64_init("starts", &[1]),
                int64_init("ends", &[3]),
                int64_init("axes", &[1]),
            ]);
            nodes.push(node(
                "Slice",
                "slice",
                &["c", "starts", "ends", "axes"],
                &["s"],
                vec![],
            ));
        }
        nodes.push(node(
            "Conv",
            "conv2",
            &["s", "w2"],
            &["y"],
            vec![ints("kernel_shape", &[1, 1])],
        ));
        let bytes = model(
            nodes,
            inits,
            vec![value("x", &[Some(1), Some(2), Some(2), Some(3)])],
            vec![value("y", &[Some(1), Some(1), Some(2), Some(3)])],
        );
        let c = convert_with(&bytes, &ConvertOptions::default()).unwrap();
        let m = Model::from_vec(&c.bytes).unwrap();
        let codes: Vec<_> = m.def().ops.iter().map(|o| o.code).collect();
        let cut = if split { SplitV } else { StridedSlice };
        assert_eq!(
            codes[..4],
            [Transpose, Conv2d, cut, Conv2d],
            "split {split}: {codes:?}"
        );
        assert!(!codes[4..].contains(&Conv2d), "{codes:?}");
        let x: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let (shape, y) = run(&c.bytes, &x);
        assert_eq!(shape, [1, 1, 2, 3]);
        let want: Vec<f32> = (0..6).map(|p| 10.0 * x[p] + 11.0 * x[6 + p]).collect();
        assert_eq!(y, want, "split {split}");
    }
}

#[test]
fn layer_norm_written_out_squares_by_mul_and_divides_on_the_vector_path() {
    // LayerNorm over the last axis as exporters write it below opset 17:
    // m = mean(x), d = x - m, v = mean(d^2), y = d / sqrt(v + eps).
    let keep = AttributeProto {
        name: "keepdims".into(),
        r#type: attr_type::INT,
        i: 1,
        ..Default::default()
    };
    let mean = |name: &str, i: &str, o: &str| {
        node(
            "ReduceMean",
            name,
            &[i],
            &[o],
            vec![ints("axes", &[-1]), keep.clone()],
        )
    };
    let nodes = vec![
        mean("m", "x", "mu"),
        node("Sub", "sub", &["x", "mu"], &["d"], vec![]),
        node("Pow", "pow", &["d", "two"], &["d2"], vec![]),
        mean("v", "d2", "var"),
        node("Add", "add", &["var", "eps"], &["ve"], vec![]),
        node("Sqrt", "sqrt", &["ve"], &["sd"], vec![]),
        node("Div", "div", &["d", "sd"], &["y"], vec![]),
    ];
    let bytes = model(
        nodes,
        vec![
            scalar("two", data_type::FLOAT, 2.0),
            scalar("eps", data_type::FLOAT, 1e-5),
        ],
        vec![value("x", &[Some(2), Some(3), Some(8)])],
        vec![value("y", &[Some(2), Some(3), Some(8)])],
    );
    let c = convert_with(&bytes, &ConvertOptions::default()).unwrap();
    let m = Model::from_vec(&c.bytes).unwrap();
    let s = Session::new(&m, Options::default()).unwrap();
    let names = s.kernel_names().to_vec();
    assert!(names.contains(&"div_f32_split"), "{names:?}");
    assert!(
        !names.contains(&"ref_binary"),
        "Pow(x, 2) and the Div are not generic: {names:?}"
    );
    let x: Vec<f32> = (0..48)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 3.0)
        .collect();
    let (shape, y) = run(&c.bytes, &x);
    assert_eq!(shape, [2, 3, 8]);
    for (row, got) in x.chunks(8).zip(y.chunks(8)) {
        let mu = row.iter().map(|&v| v as f64).sum::<f64>() / 8.0;
        let var = row.iter().map(|&v| (v as f64 - mu).powi(2)).sum::<f64>() / 8.0;
        for (&v, &g) in row.iter().zip(got) {
            let want = (v as f64 - mu) / (var + 1e-5).sqrt();
            assert!((g as f64 - want).abs() < 1e-5, "{g} vs {want}");
        }
    }
}
