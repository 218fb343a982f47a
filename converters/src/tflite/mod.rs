//! TFLite model reader: `.tflite` bytes → [`TflModel`].
//!
//! The FlatBuffers decoding is written by hand (`flatbuf` for the wire format, [`schema`]
//! for the TFLite tables) instead of generated with `flatc`: users need no FlatBuffers
//! compiler or generated code to build Ferrite, and we read only the subset of
//! `schema.fbs` the converter uses (operator codes, subgraphs, tensors with quantization and
//! sparsity, operators with the builtin options we lower, buffers).
//!
//! The reader treats its input as untrusted. [`parse`] never panics, never reads outside the
//! input, and allocates at most a fixed multiple of the input size, whatever the bytes: every
//! offset, vtable and vector length is checked against the buffer before use, vector lengths
//! are checked to fit in the remaining bytes before anything is allocated, and decoded
//! structures are charged against a memory budget (see `schema`). Nesting is bounded by
//! construction: the decoder follows the fixed shape of the schema and never recurses on
//! file contents. Constant data (weights) is borrowed from the input, never copied.
//!
//! Sparse tensors are expanded with [`densify::densify`].

use core::fmt;

pub mod densify;
mod flatbuf;
pub mod schema;

pub use densify::densify;
pub use schema::{
    builtin_name, builtin_op, tensor_type, tensor_type_name, tensor_type_size, BuiltinOptions,
    TflActivation, TflBuffer, TflDimMeta, TflModel, TflOpCode, TflOperator, TflPadding, TflQuant,
    TflSparsity, TflSubgraph, TflTensor,
};

/// Parses a `.tflite` file into a [`TflModel`] that borrows its buffer data from `bytes`.
///
/// Accepts TFLite schema version 3 files with the `TFL3` file identifier (as every TFLite
/// converter writes), including buffers stored after the flatbuffer (`Buffer.offset`/`size`).
/// On success the cross-references listed on [`TflModel`] are valid.
///
/// # Errors
///
/// [`TflError::TooShort`], [`TflError::WrongIdentifier`] or [`TflError::UnsupportedVersion`]
/// for files that are not TFLite v3 models; [`TflError::Malformed`], naming the element, for
/// any structural corruption or out-of-range reference. Never panics.
pub fn parse(bytes: &[u8]) -> Result<TflModel<'_>, TflError> {
    schema::decode_model(bytes)
}

/// Why a TFLite file could not be read, or a sparse tensor could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TflError {
    /// The file is too short to hold a FlatBuffers root offset and file identifier.
    TooShort {
        /// File length in bytes.
        len: usize,
    },
    /// Bytes 4..8 are not the TFLite file identifier `TFL3`: not a TFLite model.
    WrongIdentifier {
        /// The four bytes found there.
        found: [u8; 4],
    },
    /// `Model.version` is not the supported schema version 3.
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// The file is corrupt or inconsistent.
    Malformed {
        /// Where: a path such as `"subgraph 0, tensor 12"`; empty for the model table itself.
        at: String,
        /// What was wrong, such as `"shape: vector runs past end of file"`.
        problem: String,
    },
    /// A sparse tensor's metadata is invalid or does not match its shape or values.
    Sparsity {
        /// What was wrong.
        problem: String,
    },
}

impl TflError {
    /// Prefixes `outer` (e.g. `"subgraph 0"`) to the location of a `Malformed` error; other
    /// variants are returned unchanged.
    pub(crate) fn within(self, outer: &str) -> Self {
        match self {
            TflError::Malformed { at, problem } => TflError::Malformed {
                at: if at.is_empty() {
                    outer.to_owned()
                } else {
                    format!("{outer}, {at}")
                },
                problem,
            },
            other => other,
        }
    }
}

impl From<flatbuf::FbError> for TflError {
    fn from(e: flatbuf::FbError) -> Self {
        TflError::Malformed {
            at: String::new(),
            problem: e.to_string(),
        }
    }
}

impl fmt::Display for TflError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TflError::TooShort { len } => {
                write!(f, "not a TFLite model: the file is only {len} bytes long")
            }
            TflError::WrongIdentifier { found } => write!(
                f,
                "not a TFLite model: file identifier (bytes 4..8) is \"{}\", expected \"TFL3\"",
                found.escape_ascii()
            ),
            TflError::UnsupportedVersion { version } => write!(
                f,
                "unsupported TFLite schema version {version} (only version {} is supported)",
                schema::TFLITE_SCHEMA_VERSION
            ),
            TflError::Malformed { at, problem } if at.is_empty() => {
                write!(f, "malformed TFLite file: {problem}")
            }
            TflError::Malformed { at, problem } => {
                write!(f, "malformed TFLite file: {at}: {problem}")
            }
            TflError::Sparsity { problem } => write!(f, "invalid sparse tensor: {problem}"),
        }
    }
}

impl std::error::Error for TflError {}

#[cfg(test)]
mod tests {
    use super::schema::{options_type, DIM_DENSE, DIM_SPARSE_CSR};
    use super::*;

    /// A value to lay out in a test flatbuffer.
    #[derive(Clone)]
    enum V {
        I8(i8),
        U8(u8),
        Bool(bool),
        I32(i32),
        U32(u32),
        U64(u64),
        /// A sub-table: `(field id, value)` pairs.
        Table(Vec<(u16, V)>),
        Str(&'static str),
        Bytes(Vec<u8>),
        VI32(Vec<i32>),
        VU16(Vec<u16>),
        VF32(Vec<f32>),
        VI64(Vec<i64>),
        /// A vector of tables.
        Tables(Vec<V>),
        /// A vector of `n` offsets that all point at one shared table.
        SharedTables(usize, Box<V>),
    }

    /// A minimal FlatBuffers writer for tests: lays tables out front to back (children after
    /// parents, so every uoffset points forward, as the format requires) with 4-byte alignment.
    struct Writer {
        buf: Vec<u8>,
    }

    impl Writer {
        /// Serializes `root` as a file with identifier `TFL3`.
        fn file(root: &V) -> Vec<u8> {
            let V::Table(fields) = root else {
                panic!("root must be a table")
            };
            let mut w = Writer {
                buf: vec![0, 0, 0, 0, b'T', b'F', b'L', b'3'],
            };
            let pos = w.table(fields);
            w.patch(0, pos);
            w.buf
        }

        fn align(&mut self, n: usize) {
            while !self.buf.len().is_multiple_of(n) {
                self.buf.push(0);
            }
        }

        /// Stores at `at` the uoffset that points to `target`.
        fn patch(&mut self, at: usize, target: usize) {
            let off = (target - at) as u32;
            self.buf[at..at + 4].copy_from_slice(&off.to_le_bytes());
        }

        fn inline_size(v: &V) -> usize {
            match v {
                V::I8(_) | V::U8(_) | V::Bool(_) => 1,
                V::U64(_) => 8,
                _ => 4,
            }
        }

        fn table(&mut self, fields: &[(u16, V)]) -> usize {
            // Inline layout: soffset, then fields in order, each aligned to its size.
            let mut slots = Vec::new();
            let mut size = 4usize;
            for (id, v) in fields {
                let n = Self::inline_size(v);
                size = size.div_ceil(n) * n;
                slots.push((*id, size));
                size += n;
            }
            let size = size.div_ceil(4) * 4;
            let n_slots = fields
                .iter()
                .map(|(id, _)| *id as usize + 1)
                .max()
                .unwrap_or(0);
            self.align(4);
            let vtable = self.buf.len();
            self.buf
                .extend_from_slice(&((4 + 2 * n_slots) as u16).to_le_bytes());
            self.buf.extend_from_slice(&(size as u16).to_le_bytes());
            let mut entries = vec![0u16; n_slots];
            for &(id, off) in &slots {
                entries[id as usize] = off as u16;
            }
            for e in entries {
                self.buf.extend_from_slice(&e.to_le_bytes());
            }
            self.align(8);
            let table = self.buf.len();
            self.buf.resize(table + size, 0);
            let soffset = (table - vtable) as i32;
            self.buf[table..table + 4].copy_from_slice(&soffset.to_le_bytes());
            for ((_, v), &(_, off)) in fields.iter().zip(&slots) {
                let at = table + off;
                let bytes: Vec<u8> = match v {
                    V::I8(x) => x.to_le_bytes().to_vec(),
                    V::U8(x) => vec![*x],
                    V::Bool(x) => vec![*x as u8],
                    V::I32(x) => x.to_le_bytes().to_vec(),
                    V::U32(x) => x.to_le_bytes().to_vec(),
                    V::U64(x) => x.to_le_bytes().to_vec(),
                    _ => continue,
                };
                self.buf[at..at + bytes.len()].copy_from_slice(&bytes);
            }
            for ((_, v), &(_, off)) in fields.iter().zip(&slots) {
                if Self::inline_size(v) == 4 && !matches!(v, V::I32(_) | V::U32(_)) {
                    let child = self.child(v);
                    self.patch(table + off, child);
                }
            }
            table
        }

        fn vector(&mut self, len: usize, elems: &[u8]) -> usize {
            self.align(4);
            let pos = self.buf.len();
            self.buf.extend_from_slice(&(len as u32).to_le_bytes());
            self.buf.extend_from_slice(elems);
            pos
        }

        /// Writes an offset-addressed value and returns its position.
        fn child(&mut self, v: &V) -> usize {
            fn le<T: Copy, const N: usize>(v: &[T], f: fn(T) -> [u8; N]) -> Vec<u8> {
                v.iter().flat_map(|&x| f(x)).collect()
            }
            match v {
                V::Table(fields) => self.table(fields),
                V::Str(s) => {
                    let pos = self.vector(s.len(), s.as_bytes());
                    self.buf.push(0);
                    pos
                }
                V::Bytes(b) => self.vector(b.len(), b),
                V::VI32(v) => self.vector(v.len(), &le(v, i32::to_le_bytes)),
                V::VU16(v) => self.vector(v.len(), &le(v, u16::to_le_bytes)),
                V::VF32(v) => self.vector(v.len(), &le(v, f32::to_le_bytes)),
                V::VI64(v) => self.vector(v.len(), &le(v, i64::to_le_bytes)),
                V::Tables(tables) => {
                    let pos = self.vector(tables.len(), &vec![0; 4 * tables.len()]);
                    for (i, t) in tables.iter().enumerate() {
                        let child = self.child(t);
                        self.patch(pos + 4 + 4 * i, child);
                    }
                    pos
                }
                V::SharedTables(n, t) => {
                    let pos = self.vector(*n, &vec![0; 4 * n]);
                    let child = self.child(t);
                    for i in 0..*n {
                        self.patch(pos + 4 + 4 * i, child);
                    }
                    pos
                }
                _ => unreachable!("scalars are stored inline"),
            }
        }
    }

    fn t(fields: &[(u16, V)]) -> V {
        V::Table(fields.to_vec())
    }

    /// Model fields: version 0, operator_codes 1, subgraphs 2, description 3, buffers 4.
    fn model(opcodes: Vec<V>, subgraphs: Vec<V>, buffers: Vec<V>) -> V {
        t(&[
            (0, V::U32(3)),
            (1, V::Tables(opcodes)),
            (2, V::Tables(subgraphs)),
            (3, V::Str("test model")),
            (4, V::Tables(buffers)),
        ])
    }

    /// SubGraph fields: tensors 0, inputs 1, outputs 2, operators 3, name 4.
    fn subgraph(tensors: Vec<V>, inputs: Vec<i32>, outputs: Vec<i32>, ops: Vec<V>) -> V {
        t(&[
            (0, V::Tables(tensors)),
            (1, V::VI32(inputs)),
            (2, V::VI32(outputs)),
            (3, V::Tables(ops)),
            (4, V::Str("main")),
        ])
    }

    /// Tensor fields: shape 0, type 1, buffer 2, name 3.
    fn tensor(shape: Vec<i32>, dtype: i8, buffer: u32, name: &'static str) -> Vec<(u16, V)> {
        vec![
            (0, V::VI32(shape)),
            (1, V::I8(dtype)),
            (2, V::U32(buffer)),
            (3, V::Str(name)),
        ]
    }

    /// Operator fields: opcode_index 0, inputs 1, outputs 2, options type 3, options 4.
    fn op(opcode: u32, inputs: Vec<i32>, outputs: Vec<i32>, options: Option<(u8, V)>) -> V {
        let mut f = vec![
            (0, V::U32(opcode)),
            (1, V::VI32(inputs)),
            (2, V::VI32(outputs)),
        ];
        if let Some((kind, table)) = options {
            f.push((3, V::U8(kind)));
            f.push((4, table));
        }
        V::Table(f)
    }

    /// A small model exercising most of what the reader decodes.
    fn sample() -> V {
        let opcodes = vec![
            // Old-style file: only the deprecated byte-sized code (CONV_2D).
            t(&[(0, V::I8(3)), (2, V::I32(2))]),
            // New-style file: deprecated code saturated at 127, real code in builtin_code.
            t(&[(0, V::I8(127)), (3, V::I32(builtin_op::GELU))]),
            t(&[(1, V::Str("MyCustomOp")), (3, V::I32(builtin_op::CUSTOM))]),
            t(&[(3, V::I32(builtin_op::FULLY_CONNECTED))]),
        ];
        let mut weights = tensor(vec![2, 1, 1, 3], tensor_type::INT8, 1, "w");
        weights.push((
            4,
            t(&[
                (2, V::VF32(vec![0.5, 0.25])),
                (3, V::VI64(vec![0, 0])),
                (6, V::I32(0)),
            ]),
        ));
        let mut input = tensor(vec![1, 4, 4, 3], tensor_type::INT8, 0, "in");
        input.push((
            4,
            t(&[
                (0, V::VF32(vec![-1.0])),
                (1, V::VF32(vec![1.0])),
                (2, V::VF32(vec![0.0078125])),
                (3, V::VI64(vec![-3])),
            ]),
        ));
        input.push((7, V::VI32(vec![-1, 4, 4, 3])));
        let mut float_out = tensor(vec![1, 4, 4, 2], tensor_type::FLOAT32, 0, "out");
        // An empty quantization table, as float tensors from the converter carry.
        float_out.push((4, t(&[])));
        float_out.push((5, V::Bool(true)));
        let tensors = vec![
            V::Table(input),
            V::Table(weights),
            V::Table(float_out),
            V::Table(tensor(vec![2], tensor_type::INT32, 2, "shape")),
        ];
        let ops = vec![
            // Conv2D with dilation absent: schema default 1.
            op(
                0,
                vec![0, 1, -1],
                vec![2],
                Some((
                    options_type::CONV_2D,
                    t(&[(0, V::I8(1)), (1, V::I32(2)), (2, V::I32(3)), (3, V::I8(3))]),
                )),
            ),
            op(1, vec![2], vec![2], Some((116, t(&[(0, V::Bool(true))])))),
            // Options type set but no table: all defaults.
            op(
                3,
                vec![2],
                vec![2],
                Some((options_type::FULLY_CONNECTED, t(&[]))),
            ),
            op(
                3,
                vec![2, 3],
                vec![2],
                Some((options_type::RESHAPE, t(&[(0, V::VI32(vec![1, -1]))]))),
            ),
            op(
                3,
                vec![2],
                vec![2],
                Some((
                    options_type::STRIDED_SLICE,
                    t(&[(0, V::I32(1)), (4, V::I32(8)), (5, V::Bool(true))]),
                )),
            ),
            op(2, vec![2], vec![2], Some((22, t(&[])))), // PadOptions: not decoded
            op(2, vec![2], vec![2], None),
        ];
        let buffers = vec![
            t(&[]),
            t(&[(0, V::Bytes(vec![1, 2, 3, 4, 5, 6]))]),
            // Data outside the flatbuffer: the first 4 bytes of the file.
            t(&[(1, V::U64(4)), (2, V::U64(4))]),
        ];
        model(
            opcodes,
            vec![subgraph(tensors, vec![0], vec![2], ops)],
            buffers,
        )
    }

    #[test]
    fn decodes_every_field_of_a_small_model() {
        let bytes = Writer::file(&sample());
        let m = parse(&bytes).unwrap();
        assert_eq!(m.version, 3);
        assert_eq!(m.description.as_deref(), Some("test model"));

        let codes: Vec<_> = m
            .operator_codes
            .iter()
            .map(|c| (c.builtin_code, c.version))
            .collect();
        assert_eq!(
            codes,
            vec![
                (builtin_op::CONV_2D, 2),
                (builtin_op::GELU, 1),
                (builtin_op::CUSTOM, 1),
                (9, 1)
            ]
        );
        assert_eq!(m.operator_codes[1].name(), "GELU");
        assert_eq!(m.operator_codes[2].name(), "MyCustomOp");
        assert_eq!(m.operator_codes[3].name(), "FULLY_CONNECTED");

        assert_eq!(m.buffers[0].data, b"");
        assert_eq!(m.buffers[1].data, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(m.buffers[2].data, b"TFL3");

        let sg = &m.subgraphs[0];
        assert_eq!(sg.name.as_deref(), Some("main"));
        assert_eq!(
            (sg.inputs.as_slice(), sg.outputs.as_slice()),
            (&[0][..], &[2][..])
        );
        let [input, weights, out, shape] = &sg.tensors[..] else {
            panic!("expected 4 tensors, got {}", sg.tensors.len())
        };
        assert_eq!(input.name, "in");
        assert_eq!(input.shape, vec![1, 4, 4, 3]);
        assert_eq!(input.shape_signature, Some(vec![-1, 4, 4, 3]));
        assert_eq!(tensor_type_name(input.dtype), "INT8");
        let q = input.quantization.as_ref().unwrap();
        assert_eq!(
            (q.min.as_slice(), q.max.as_slice()),
            (&[-1.0][..], &[1.0][..])
        );
        assert_eq!(
            (q.scale.as_slice(), q.zero_point.as_slice()),
            (&[0.0078125][..], &[-3][..])
        );
        let wq = weights.quantization.as_ref().unwrap();
        assert_eq!((wq.scale.len(), wq.quantized_dimension), (2, 0));
        assert_eq!(m.tensor_data(weights), &[1, 2, 3, 4, 5, 6]);
        assert_eq!(
            out.quantization, None,
            "an empty table means no quantization"
        );
        assert!(out.is_variable && !input.is_variable);
        assert_eq!(out.shape_signature, None);
        assert_eq!((shape.dtype, shape.buffer), (tensor_type::INT32, 2));

        let ops = &sg.operators;
        assert_eq!(ops[0].inputs, vec![0, 1, -1]);
        assert_eq!(
            ops[0].options,
            BuiltinOptions::Conv2D {
                padding: TflPadding::Valid,
                stride_w: 2,
                stride_h: 3,
                fused_activation: TflActivation::Relu6,
                dilation_w: 1,
                dilation_h: 1,
            }
        );
        assert_eq!(m.opcode(&ops[0]).builtin_code, builtin_op::CONV_2D);
        assert_eq!(ops[1].options, BuiltinOptions::Gelu { approximate: true });
        assert_eq!(
            ops[2].options,
            BuiltinOptions::FullyConnected {
                fused_activation: TflActivation::None,
                weights_format: 0,
                keep_num_dims: false,
                asymmetric_quantize_inputs: false,
            }
        );
        assert_eq!(
            ops[3].options,
            BuiltinOptions::Reshape {
                new_shape: vec![1, -1]
            }
        );
        assert_eq!(
            ops[4].options,
            BuiltinOptions::StridedSlice {
                begin_mask: 1,
                end_mask: 0,
                ellipsis_mask: 0,
                new_axis_mask: 0,
                shrink_axis_mask: 8,
                offset: true,
            }
        );
        assert_eq!(ops[5].options, BuiltinOptions::Other(22));
        assert_eq!(ops[6].options, BuiltinOptions::None);
    }

    #[test]
    fn names_of_op_codes_and_tensor_types() {
        assert_eq!(builtin_name(0), "ADD");
        assert_eq!(builtin_name(builtin_op::GATHER_ND), "GATHER_ND");
        assert_eq!(builtin_name(107), "GATHER_ND");
        assert_eq!(builtin_name(206), "STABLEHLO_COMPOSITE");
        assert_eq!(builtin_name(-1), "UNKNOWN");
        assert_eq!(builtin_name(100_000), "UNKNOWN");
        assert_eq!(tensor_type_name(tensor_type::FLOAT64), "FLOAT64");
        assert_eq!(tensor_type::BFLOAT16, 18);
        assert_eq!(tensor_type_name(19), "UNKNOWN");
        assert_eq!(tensor_type_size(tensor_type::INT8), Some(1));
        assert_eq!(tensor_type_size(tensor_type::FLOAT16), Some(2));
        assert_eq!(tensor_type_size(tensor_type::STRING), None);
        // Union ids spot-checked against schema.fbs's BuiltinOptions order.
        assert_eq!(options_type::CONV_2D, 1);
        assert_eq!(options_type::REDUCER, 27);
        assert_eq!(options_type::SPLIT_V, 79);
        assert_eq!(options_type::GELU, 116);
    }

    #[test]
    fn rejects_files_that_are_not_tflite_v3() {
        let mut bytes = Writer::file(&sample());
        assert_eq!(
            parse(&bytes[..7]).unwrap_err(),
            TflError::TooShort { len: 7 }
        );
        bytes[4..8].copy_from_slice(b"ONNX");
        let e = parse(&bytes).unwrap_err();
        assert_eq!(e, TflError::WrongIdentifier { found: *b"ONNX" });
        assert_eq!(
            e.to_string(),
            "not a TFLite model: file identifier (bytes 4..8) is \"ONNX\", expected \"TFL3\""
        );

        let mut m = sample();
        if let V::Table(f) = &mut m {
            f[0].1 = V::U32(2);
        }
        let e = parse(&Writer::file(&m)).unwrap_err();
        assert_eq!(e, TflError::UnsupportedVersion { version: 2 });
    }

    /// Builds a one-subgraph model around `tensors` and `ops` with one opcode and two buffers.
    fn graph(tensors: Vec<V>, inputs: Vec<i32>, ops: Vec<V>) -> Vec<u8> {
        Writer::file(&model(
            vec![t(&[(3, V::I32(builtin_op::ADD))])],
            vec![subgraph(tensors, inputs, vec![0], ops)],
            vec![t(&[]), t(&[(0, V::Bytes(vec![9; 8]))])],
        ))
    }

    fn err_text(bytes: &[u8]) -> String {
        parse(bytes).unwrap_err().to_string()
    }

    #[test]
    fn rejects_out_of_range_references_with_their_location() {
        let two = || {
            vec![
                V::Table(tensor(vec![1], 0, 0, "a")),
                V::Table(tensor(vec![1], 0, 1, "b")),
            ]
        };
        let ok = graph(two(), vec![0], vec![op(0, vec![0, 1], vec![0], None)]);
        assert!(parse(&ok).is_ok());

        let e = err_text(&graph(two(), vec![0], vec![op(1, vec![0], vec![1], None)]));
        assert_eq!(
            e,
            "malformed TFLite file: subgraph 0, operator 0: opcode_index 1 is out of range \
             (the model has 1 operator codes)"
        );
        let e = err_text(&graph(
            two(),
            vec![0],
            vec![op(0, vec![0, 2], vec![1], None)],
        ));
        assert!(
            e.contains("subgraph 0, operator 0: inputs[1] = 2 is not a tensor index"),
            "{e}"
        );
        let e = err_text(&graph(two(), vec![-1], vec![]));
        assert!(e.contains("subgraph 0: inputs[0] = -1"), "{e}");
        let bad_buffer = vec![V::Table(tensor(vec![1], 0, 7, "a"))];
        let e = err_text(&graph(bad_buffer, vec![0], vec![]));
        assert!(
            e.contains("subgraph 0, tensor 0: buffer index 7 is out of range"),
            "{e}"
        );

        let no_subgraphs = Writer::file(&model(vec![], vec![], vec![t(&[])]));
        assert_eq!(
            err_text(&no_subgraphs),
            "malformed TFLite file: the model has no subgraphs"
        );
    }

    #[test]
    fn rejects_inconsistent_quantization() {
        let quant = |scales: Vec<f32>, zps: Vec<i64>, axis: i32| {
            let mut f = tensor(vec![2, 3], tensor_type::INT8, 0, "q");
            f.push((
                4,
                t(&[(2, V::VF32(scales)), (3, V::VI64(zps)), (6, V::I32(axis))]),
            ));
            graph(vec![V::Table(f)], vec![0], vec![])
        };
        assert!(parse(&quant(vec![1.0; 3], vec![0; 3], 1)).is_ok());
        let e = err_text(&quant(vec![1.0; 3], vec![0; 2], 1));
        assert!(
            e.contains("tensor 0, quantization: 3 scales but 2 zero points"),
            "{e}"
        );
        assert!(err_text(&quant(vec![1.0; 3], vec![0; 3], 0)).contains("per-channel"));
        assert!(err_text(&quant(vec![1.0; 3], vec![0; 3], 2)).contains("quantized_dimension 2"));
    }

    #[test]
    fn reports_the_tensor_whose_shape_runs_past_the_end() {
        let tensors = vec![
            V::Table(tensor(vec![1], 0, 0, "a")),
            V::Table(tensor(vec![0x5a5a_5a5a, 0x5a5a_5a5a], 0, 0, "b")),
        ];
        let mut bytes = graph(tensors, vec![0], vec![]);
        // Find tensor 1's shape vector by its contents and make its length absurd.
        let needle = [2, 0, 0, 0, 0x5a, 0x5a, 0x5a, 0x5a];
        let at = bytes.windows(8).position(|w| w == needle).unwrap();
        bytes[at..at + 4].copy_from_slice(&0x4000_0000u32.to_le_bytes());
        assert_eq!(
            err_text(&bytes),
            "malformed TFLite file: subgraph 0, tensor 1: shape: vector runs past end of file"
        );
    }

    #[test]
    fn buffer_data_after_the_flatbuffer_is_bounds_checked() {
        let file = |offset: u64, size: u64| {
            Writer::file(&model(
                vec![t(&[(3, V::I32(0))])],
                vec![subgraph(
                    vec![V::Table(tensor(vec![1], 0, 1, "a"))],
                    vec![0],
                    vec![0],
                    vec![],
                )],
                vec![
                    t(&[]),
                    t(&[
                        (0, V::Bytes(vec![1])),
                        (1, V::U64(offset)),
                        (2, V::U64(size)),
                    ]),
                ],
            ))
        };
        let ok = file(0, 0);
        let len = ok.len() as u64;
        // offset <= 1 means "not used": the inline data counts.
        assert_eq!(parse(&ok).unwrap().buffers[1].data, &[1]);
        assert_eq!(parse(&file(1, 99)).unwrap().buffers[1].data, &[1]);
        let m_bytes = file(len - 4, 4);
        assert_eq!(
            parse(&m_bytes).unwrap().buffers[1].data,
            &m_bytes[m_bytes.len() - 4..]
        );
        for (offset, size) in [(len - 3, 4), (len, 1), (u64::MAX, 2), (8, u64::MAX)] {
            let e = err_text(&file(offset, size));
            assert!(e.contains("buffer 1: data at offset"), "{e}");
        }
    }

    /// A file whose tensors vector points many times at one table with a 4096-entry shape
    /// would decode to far more memory than the file justifies; the budget must refuse it,
    /// whether the table count alone is too much or only the copied shapes are.
    #[test]
    fn shared_tables_cannot_amplify_allocation() {
        let file = |n| {
            let big = Box::new(V::Table(tensor(vec![1; 4096], 0, 0, "big")));
            let shared = t(&[(0, V::SharedTables(n, big)), (1, V::VI32(vec![0]))]);
            Writer::file(&model(vec![], vec![shared], vec![t(&[])]))
        };
        // 200 000 tensors: 800 kB of offsets, over 3 GB decoded.
        let e = err_text(&file(200_000));
        assert!(
            e.starts_with("malformed TFLite file: subgraph 0: decoded structures"),
            "{e}"
        );
        assert!(e.contains("bytes of memory per byte"), "{e}");
        // 5000 tensors: the table count fits the budget, the 5000 copies of the shape don't.
        let e = err_text(&file(5000));
        assert!(
            e.starts_with("malformed TFLite file: subgraph 0, tensor "),
            "{e}"
        );
        assert!(e.contains("bytes of memory per byte"), "{e}");
        // A few shared tables are fine.
        assert_eq!(parse(&file(3)).unwrap().subgraphs[0].tensors.len(), 3);
    }

    #[test]
    fn decodes_sparsity_with_all_index_vector_types() {
        // The 4x4 block-sparse matrix of densify's tests, with segments stored as uint8,
        // indices as uint16, and an int32 vector for the (dense) level 0 that must be ignored.
        let meta = |format: i8, size: i32, seg: Option<(u8, V)>, idx: Option<(u8, V)>| {
            let mut f = vec![(0, V::I8(format)), (1, V::I32(size))];
            if let Some((k, v)) = seg {
                f.push((2, V::U8(k)));
                f.push((3, t(&[(0, v)])));
            }
            if let Some((k, v)) = idx {
                f.push((4, V::U8(k)));
                f.push((5, t(&[(0, v)])));
            }
            V::Table(f)
        };
        let file = |segments_kind: u8| {
            let sparsity = t(&[
                (0, V::VI32(vec![0, 1, 2, 3])),
                (1, V::VI32(vec![0, 1])),
                (
                    2,
                    V::Tables(vec![
                        meta(DIM_DENSE, 2, None, None),
                        meta(
                            DIM_SPARSE_CSR,
                            0,
                            Some((segments_kind, V::Bytes(vec![0, 2, 3]))),
                            Some((2, V::VU16(vec![0, 1, 1]))),
                        ),
                        meta(DIM_DENSE, 2, Some((1, V::VI32(vec![5]))), None),
                        meta(DIM_DENSE, 2, None, None),
                    ]),
                ),
            ]);
            let mut w = tensor(vec![4, 4], tensor_type::INT8, 1, "w");
            w.push((6, sparsity));
            let values = vec![1, 0, 0, 4, 2, 3, 0, 0, 5, 0, 6, 7];
            Writer::file(&model(
                vec![t(&[(3, V::I32(0))])],
                vec![subgraph(vec![V::Table(w)], vec![0], vec![0], vec![])],
                vec![t(&[]), t(&[(0, V::Bytes(values))])],
            ))
        };
        let bytes = file(3);
        let m = parse(&bytes).unwrap();
        let tensor = &m.subgraphs[0].tensors[0];
        let s = tensor.sparsity.as_ref().unwrap();
        assert_eq!(s.traversal_order, vec![0, 1, 2, 3]);
        assert_eq!(s.block_map, vec![0, 1]);
        assert_eq!(s.dim_metadata[1].format, DIM_SPARSE_CSR);
        assert_eq!(s.dim_metadata[1].array_segments, vec![0, 2, 3]);
        assert_eq!(s.dim_metadata[1].array_indices, vec![0, 1, 1]);
        assert_eq!(s.dim_metadata[2].array_segments, vec![5]);
        let dense = densify(s, &tensor.shape, m.tensor_data(tensor), 1).unwrap();
        assert_eq!(dense, vec![1, 0, 2, 3, 0, 4, 0, 0, 0, 0, 5, 0, 0, 0, 6, 7]);

        // An unknown SparseIndexVector type is an error, not a guess.
        let e = err_text(&file(4));
        assert!(
            e.contains("tensor 0, sparsity, dim_metadata 1: array_segments: unknown SparseIndexVector type 4"),
            "{e}"
        );
    }

    /// Path of a model in the shared folder, or `None` (with the reason printed) when absent.
    fn shared_model(name: &str) -> Option<Vec<u8>> {
        let path = format!("/work/shared/models/{name}");
        match std::fs::read(&path) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("skipping: cannot read {path}: {e}");
                None
            }
        }
    }

    fn op_counts(m: &TflModel) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for op in &m.subgraphs[0].operators {
            *counts.entry(m.opcode(op).name().to_owned()).or_insert(0) += 1;
        }
        counts
    }

    #[test]
    fn parses_mobilenet_v2_f32_without_copying_weights() {
        let Some(bytes) = shared_model("mobilenet_v2_torchvision_f32.tflite") else {
            return;
        };
        let m = parse(&bytes).unwrap();
        let counts = op_counts(&m);
        println!("f32 MobileNetV2 ops: {counts:?}");
        let expected = [
            ("ADD", 10),
            ("CONV_2D", 35),
            ("DEPTHWISE_CONV_2D", 17),
            ("FULLY_CONNECTED", 1),
            ("MEAN", 1),
            ("PAD", 5),
        ];
        let expected: std::collections::BTreeMap<String, usize> =
            expected.iter().map(|&(k, v)| (k.to_owned(), v)).collect();
        assert_eq!(counts, expected);

        let sg = &m.subgraphs[0];
        let input = &sg.tensors[sg.inputs[0] as usize];
        assert_eq!(
            (input.shape.as_slice(), input.dtype),
            (&[1, 224, 224, 3][..], 0)
        );
        // Weight buffers point into the file: nothing was copied.
        let file = bytes.as_ptr_range();
        let mut weight_bytes = 0;
        for b in &m.buffers {
            assert!(b.data.is_empty() || file.contains(&b.data.as_ptr()));
            weight_bytes += b.data.len();
        }
        assert!(weight_bytes > 13_000_000, "{weight_bytes} bytes of buffers");
        for op in &sg.operators {
            match (m.opcode(op).name(), &op.options) {
                (
                    "CONV_2D",
                    BuiltinOptions::Conv2D {
                        stride_w,
                        dilation_w,
                        ..
                    },
                ) => {
                    assert!(matches!(stride_w, 1 | 2) && *dilation_w == 1)
                }
                ("DEPTHWISE_CONV_2D", BuiltinOptions::DepthwiseConv2D { .. })
                | ("ADD", BuiltinOptions::Add { .. })
                | ("MEAN", BuiltinOptions::Reducer { .. })
                | ("FULLY_CONNECTED", BuiltinOptions::FullyConnected { .. })
                | ("PAD", BuiltinOptions::Other(22)) => {}
                (name, options) => panic!("{name} with options {options:?}"),
            }
        }
    }

    #[test]
    fn parses_mobilenet_v2_int8() {
        let Some(bytes) = shared_model("mobilenet_v2_torchvision_int8.tflite") else {
            return;
        };
        let m = parse(&bytes).unwrap();
        let counts = op_counts(&m);
        println!("int8 MobileNetV2 ops: {counts:?}");
        assert_eq!(counts.get("CONV_2D"), Some(&35));
        assert_eq!(counts.get("DEPTHWISE_CONV_2D"), Some(&17));
        let sg = &m.subgraphs[0];
        let input = &sg.tensors[sg.inputs[0] as usize];
        assert_eq!(input.dtype, tensor_type::INT8);
        let q = input.quantization.as_ref().unwrap();
        assert_eq!((q.scale.len(), q.zero_point.as_slice()), (1, &[-14][..]));
        assert!((q.scale[0] - 0.018_658_45).abs() < 1e-7);
        // Conv weights are per-channel along dimension 0 (output channels).
        let conv = sg
            .operators
            .iter()
            .find(|op| m.opcode(op).name() == "CONV_2D")
            .unwrap();
        let w = &sg.tensors[conv.inputs[1] as usize];
        let wq = w.quantization.as_ref().unwrap();
        assert_eq!(wq.quantized_dimension, 0);
        assert_eq!(wq.scale.len(), w.shape[0] as usize);
        assert_eq!(
            m.tensor_data(w).len(),
            w.shape.iter().product::<i32>() as usize
        );
    }

    /// Random corruption of the small sample model reaches the option, quantization and
    /// sparsity decoders with broken input; random short files reach the header checks.
    #[test]
    fn corrupted_sample_never_panics() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let sample = Writer::file(&sample());
        for _ in 0..20_000 {
            let mut bytes = sample.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                bytes[at] = match rng.below(3) {
                    0 => bytes[at] ^ (1 << rng.below(8)),
                    1 => rng.next() as u8,
                    _ => 0xff,
                };
            }
            let cut = if rng.below(8) == 0 {
                rng.below(bytes.len())
            } else {
                bytes.len()
            };
            let _ = parse(&bytes[..cut]);
        }
        for _ in 0..20_000 {
            let n = 8 + rng.below(120);
            let mut bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            bytes[4..8].copy_from_slice(b"TFL3");
            bytes[0] = rng.below(n) as u8;
            bytes[1..4].fill(0);
            let _ = parse(&bytes);
        }
    }

    /// Deterministic xorshift64*, for reproducible corruption.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Truncations and single-bit flips of a real model must give errors or models, never a
    /// panic. Flips are aimed mostly at the flatbuffer's structure (bytes outside the weight
    /// buffers), where they matter.
    #[test]
    fn corrupted_mobilenet_never_panics() {
        let Some(mut bytes) = shared_model("mobilenet_v2_torchvision_int8.tflite") else {
            return;
        };
        let len = bytes.len();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut cuts: Vec<usize> = (0..256).collect();
        cuts.extend((0..300).map(|_| rng.below(len)));
        cuts.extend(len - 256..len);
        for cut in cuts {
            assert!(parse(&bytes[..cut]).is_err() || cut == len);
        }

        // Bytes outside buffer data: the tables, vectors and strings of the flatbuffer.
        let mut structure = Vec::new();
        {
            let m = parse(&bytes).unwrap();
            let base = bytes.as_ptr() as usize;
            let mut data: Vec<(usize, usize)> = m
                .buffers
                .iter()
                .filter(|b| !b.data.is_empty())
                .map(|b| (b.data.as_ptr() as usize - base, b.data.len()))
                .collect();
            data.sort_unstable();
            let mut pos = 0;
            for (start, n) in data {
                structure.extend(pos..start.max(pos));
                pos = pos.max(start + n);
            }
            structure.extend(pos..len);
        }
        let (mut ok, mut failed) = (0, 0);
        for i in 0..2000 {
            let at = if i % 4 == 0 {
                rng.below(len)
            } else {
                structure[rng.below(structure.len())]
            };
            let bit = 1u8 << rng.below(8);
            bytes[at] ^= bit;
            match parse(&bytes) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    failed += 1;
                }
            }
            bytes[at] ^= bit;
        }
        println!("bit flips: {ok} still parse, {failed} rejected");
        assert!(failed > 0);

        // Random 32-bit words over words that look like forward offsets (most of the
        // structure region is quantization scales, which parse whatever their value).
        let offsets: Vec<usize> = structure
            .iter()
            .copied()
            .filter(|&p| p % 4 == 0 && p + 4 <= len)
            .filter(|&p| {
                let v = u32::from_le_bytes(bytes[p..p + 4].try_into().unwrap()) as usize;
                v > 0 && v < len - p
            })
            .collect();
        let mut rejected = 0;
        for _ in 0..2000 {
            let at = offsets[rng.below(offsets.len())];
            let saved: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
            let word = match rng.below(4) {
                0 => rng.next() as u32,
                1 => u32::MAX - rng.below(16) as u32,
                2 => rng.below(len + 64) as u32,
                _ => u32::from_le_bytes(saved) ^ (1 << rng.below(32)),
            };
            bytes[at..at + 4].copy_from_slice(&word.to_le_bytes());
            rejected += usize::from(parse(&bytes).is_err());
            bytes[at..at + 4].copy_from_slice(&saved);
        }
        println!(
            "word overwrites: {rejected} of 2000 rejected ({} offset-like words)",
            offsets.len()
        );
        assert!(rejected > 200);
    }
}
