//! The subset of TFLite's `schema.fbs` that Ferrite reads, decoded into owned Rust structures.
//!
//! Field ids and union indices follow `tensorflow/compiler/mlir/lite/schema/schema.fbs`
//! (the TFLite schema, version 3). Fields Ferrite does not use (signature defs, metadata,
//! custom options, `builtin_options_2`, variant sub-types) are skipped, which FlatBuffers
//! allows: a reader needs only the fields it reads.
//!
//! Weight data is never copied: [`TflBuffer::data`] borrows from the input bytes. Everything
//! else (shapes, names, quantization parameters) is small and decoded into owned values, under
//! a memory budget proportional to the file size so that a file whose tables share children
//! cannot make the decoder allocate without bound.

use super::flatbuf::{Elem, FbError, Table, TableRef, Vector};
use super::TflError;

/// The TFLite schema version this reader understands (`Model.version`).
pub const TFLITE_SCHEMA_VERSION: u32 = 3;

/// The FlatBuffers file identifier of TFLite models, at bytes 4..8 of the file.
pub const TFLITE_FILE_IDENTIFIER: [u8; 4] = *b"TFL3";

/// Declares `pub const NAME: $ty = value;` items in a module and a name-lookup function, from
/// one list, so the constants and the names cannot drift apart.
macro_rules! named_consts {
    (
        $(#[$mdoc:meta])* mod $module:ident: $ty:ty;
        $(#[$fdoc:meta])* fn $fname:ident;
        $($name:ident = $value:literal,)*
    ) => {
        $(#[$mdoc])*
        pub mod $module {
            $(
                #[allow(missing_docs)]
                pub const $name: $ty = $value;
            )*
        }

        $(#[$fdoc])*
        pub fn $fname(value: $ty) -> &'static str {
            match value {
                $($value => stringify!($name),)*
                _ => "UNKNOWN",
            }
        }
    };
}

named_consts! {
    /// `TensorType` values (`Tensor.type`), as stored in the file.
    mod tensor_type: i8;
    /// Schema name of a `TensorType` value (`"INT8"`), or `"UNKNOWN"` for values the schema
    /// does not define.
    fn tensor_type_name;
    FLOAT32 = 0,
    FLOAT16 = 1,
    INT32 = 2,
    UINT8 = 3,
    INT64 = 4,
    STRING = 5,
    BOOL = 6,
    INT16 = 7,
    COMPLEX64 = 8,
    INT8 = 9,
    FLOAT64 = 10,
    COMPLEX128 = 11,
    UINT64 = 12,
    RESOURCE = 13,
    VARIANT = 14,
    UINT32 = 15,
    UINT16 = 16,
    INT4 = 17,
    BFLOAT16 = 18,
}

/// Size in bytes of one element of a fixed-size `TensorType`, or `None` for types without one
/// (`STRING`, `RESOURCE`, `VARIANT`, the sub-byte `INT4`, unknown values).
pub fn tensor_type_size(dtype: i8) -> Option<usize> {
    use tensor_type::*;
    match dtype {
        BOOL | UINT8 | INT8 => Some(1),
        FLOAT16 | INT16 | UINT16 | BFLOAT16 => Some(2),
        FLOAT32 | INT32 | UINT32 => Some(4),
        INT64 | UINT64 | FLOAT64 | COMPLEX64 => Some(8),
        COMPLEX128 => Some(16),
        _ => None,
    }
}

named_consts! {
    /// `BuiltinOperator` values (`OperatorCode.builtin_code`).
    ///
    /// Values 0..=206 follow the upstream schema; 207..=209 are the newest StableHLO additions
    /// as published in the `tflite` 2.18 Python package and TFLite Micro.
    mod builtin_op: i32;
    /// Schema name of a `BuiltinOperator` value (`"GATHER_ND"`), or `"UNKNOWN"` for values this
    /// reader does not know; meant for error messages such as "unsupported op GATHER_ND".
    fn builtin_name;
    ADD = 0,
    AVERAGE_POOL_2D = 1,
    CONCATENATION = 2,
    CONV_2D = 3,
    DEPTHWISE_CONV_2D = 4,
    DEPTH_TO_SPACE = 5,
    DEQUANTIZE = 6,
    EMBEDDING_LOOKUP = 7,
    FLOOR = 8,
    FULLY_CONNECTED = 9,
    HASHTABLE_LOOKUP = 10,
    L2_NORMALIZATION = 11,
    L2_POOL_2D = 12,
    LOCAL_RESPONSE_NORMALIZATION = 13,
    LOGISTIC = 14,
    LSH_PROJECTION = 15,
    LSTM = 16,
    MAX_POOL_2D = 17,
    MUL = 18,
    RELU = 19,
    RELU_N1_TO_1 = 20,
    RELU6 = 21,
    RESHAPE = 22,
    RESIZE_BILINEAR = 23,
    RNN = 24,
    SOFTMAX = 25,
    SPACE_TO_DEPTH = 26,
    SVDF = 27,
    TANH = 28,
    CONCAT_EMBEDDINGS = 29,
    SKIP_GRAM = 30,
    CALL = 31,
    CUSTOM = 32,
    EMBEDDING_LOOKUP_SPARSE = 33,
    PAD = 34,
    UNIDIRECTIONAL_SEQUENCE_RNN = 35,
    GATHER = 36,
    BATCH_TO_SPACE_ND = 37,
    SPACE_TO_BATCH_ND = 38,
    TRANSPOSE = 39,
    MEAN = 40,
    SUB = 41,
    DIV = 42,
    SQUEEZE = 43,
    UNIDIRECTIONAL_SEQUENCE_LSTM = 44,
    STRIDED_SLICE = 45,
    BIDIRECTIONAL_SEQUENCE_RNN = 46,
    EXP = 47,
    TOPK_V2 = 48,
    SPLIT = 49,
    LOG_SOFTMAX = 50,
    DELEGATE = 51,
    BIDIRECTIONAL_SEQUENCE_LSTM = 52,
    CAST = 53,
    PRELU = 54,
    MAXIMUM = 55,
    ARG_MAX = 56,
    MINIMUM = 57,
    LESS = 58,
    NEG = 59,
    PADV2 = 60,
    GREATER = 61,
    GREATER_EQUAL = 62,
    LESS_EQUAL = 63,
    SELECT = 64,
    SLICE = 65,
    SIN = 66,
    TRANSPOSE_CONV = 67,
    SPARSE_TO_DENSE = 68,
    TILE = 69,
    EXPAND_DIMS = 70,
    EQUAL = 71,
    NOT_EQUAL = 72,
    LOG = 73,
    SUM = 74,
    SQRT = 75,
    RSQRT = 76,
    SHAPE = 77,
    POW = 78,
    ARG_MIN = 79,
    FAKE_QUANT = 80,
    REDUCE_PROD = 81,
    REDUCE_MAX = 82,
    PACK = 83,
    LOGICAL_OR = 84,
    ONE_HOT = 85,
    LOGICAL_AND = 86,
    LOGICAL_NOT = 87,
    UNPACK = 88,
    REDUCE_MIN = 89,
    FLOOR_DIV = 90,
    REDUCE_ANY = 91,
    SQUARE = 92,
    ZEROS_LIKE = 93,
    FILL = 94,
    FLOOR_MOD = 95,
    RANGE = 96,
    RESIZE_NEAREST_NEIGHBOR = 97,
    LEAKY_RELU = 98,
    SQUARED_DIFFERENCE = 99,
    MIRROR_PAD = 100,
    ABS = 101,
    SPLIT_V = 102,
    UNIQUE = 103,
    CEIL = 104,
    REVERSE_V2 = 105,
    ADD_N = 106,
    GATHER_ND = 107,
    COS = 108,
    WHERE = 109,
    RANK = 110,
    ELU = 111,
    REVERSE_SEQUENCE = 112,
    MATRIX_DIAG = 113,
    QUANTIZE = 114,
    MATRIX_SET_DIAG = 115,
    ROUND = 116,
    HARD_SWISH = 117,
    IF = 118,
    WHILE = 119,
    NON_MAX_SUPPRESSION_V4 = 120,
    NON_MAX_SUPPRESSION_V5 = 121,
    SCATTER_ND = 122,
    SELECT_V2 = 123,
    DENSIFY = 124,
    SEGMENT_SUM = 125,
    BATCH_MATMUL = 126,
    PLACEHOLDER_FOR_GREATER_OP_CODES = 127,
    CUMSUM = 128,
    CALL_ONCE = 129,
    BROADCAST_TO = 130,
    RFFT2D = 131,
    CONV_3D = 132,
    IMAG = 133,
    REAL = 134,
    COMPLEX_ABS = 135,
    HASHTABLE = 136,
    HASHTABLE_FIND = 137,
    HASHTABLE_IMPORT = 138,
    HASHTABLE_SIZE = 139,
    REDUCE_ALL = 140,
    CONV_3D_TRANSPOSE = 141,
    VAR_HANDLE = 142,
    READ_VARIABLE = 143,
    ASSIGN_VARIABLE = 144,
    BROADCAST_ARGS = 145,
    RANDOM_STANDARD_NORMAL = 146,
    BUCKETIZE = 147,
    RANDOM_UNIFORM = 148,
    MULTINOMIAL = 149,
    GELU = 150,
    DYNAMIC_UPDATE_SLICE = 151,
    RELU_0_TO_1 = 152,
    UNSORTED_SEGMENT_PROD = 153,
    UNSORTED_SEGMENT_MAX = 154,
    UNSORTED_SEGMENT_SUM = 155,
    ATAN2 = 156,
    UNSORTED_SEGMENT_MIN = 157,
    SIGN = 158,
    BITCAST = 159,
    BITWISE_XOR = 160,
    RIGHT_SHIFT = 161,
    STABLEHLO_LOGISTIC = 162,
    STABLEHLO_ADD = 163,
    STABLEHLO_DIVIDE = 164,
    STABLEHLO_MULTIPLY = 165,
    STABLEHLO_MAXIMUM = 166,
    STABLEHLO_RESHAPE = 167,
    STABLEHLO_CLAMP = 168,
    STABLEHLO_CONCATENATE = 169,
    STABLEHLO_BROADCAST_IN_DIM = 170,
    STABLEHLO_CONVOLUTION = 171,
    STABLEHLO_SLICE = 172,
    STABLEHLO_CUSTOM_CALL = 173,
    STABLEHLO_REDUCE = 174,
    STABLEHLO_ABS = 175,
    STABLEHLO_AND = 176,
    STABLEHLO_COSINE = 177,
    STABLEHLO_EXPONENTIAL = 178,
    STABLEHLO_FLOOR = 179,
    STABLEHLO_LOG = 180,
    STABLEHLO_MINIMUM = 181,
    STABLEHLO_NEGATE = 182,
    STABLEHLO_OR = 183,
    STABLEHLO_POWER = 184,
    STABLEHLO_REMAINDER = 185,
    STABLEHLO_RSQRT = 186,
    STABLEHLO_SELECT = 187,
    STABLEHLO_SUBTRACT = 188,
    STABLEHLO_TANH = 189,
    STABLEHLO_SCATTER = 190,
    STABLEHLO_COMPARE = 191,
    STABLEHLO_CONVERT = 192,
    STABLEHLO_DYNAMIC_SLICE = 193,
    STABLEHLO_DYNAMIC_UPDATE_SLICE = 194,
    STABLEHLO_PAD = 195,
    STABLEHLO_IOTA = 196,
    STABLEHLO_DOT_GENERAL = 197,
    STABLEHLO_REDUCE_WINDOW = 198,
    STABLEHLO_SORT = 199,
    STABLEHLO_WHILE = 200,
    STABLEHLO_GATHER = 201,
    STABLEHLO_TRANSPOSE = 202,
    DILATE = 203,
    STABLEHLO_RNG_BIT_GENERATOR = 204,
    REDUCE_WINDOW = 205,
    STABLEHLO_COMPOSITE = 206,
    STABLEHLO_SHIFT_LEFT = 207,
    STABLEHLO_CBRT = 208,
    STABLEHLO_CASE = 209,
}

/// A decoded TFLite model.
///
/// [`super::parse`] guarantees these cross-references, so callers may index without checks:
/// every `TflOperator::opcode_index` is `< operator_codes.len()`; every tensor index in an
/// operator's `inputs`/`outputs` is `-1` (an omitted optional operand) or `< tensors.len()` of
/// its subgraph; every subgraph input/output index is `>= 0` and `< tensors.len()`; every
/// `TflTensor::buffer` is `< buffers.len()`; `subgraphs` is not empty.
#[derive(Debug, Clone, PartialEq)]
pub struct TflModel<'a> {
    /// Schema version; always [`TFLITE_SCHEMA_VERSION`] after a successful parse.
    pub version: u32,
    /// The operator codes that operators refer to by `opcode_index`.
    pub operator_codes: Vec<TflOpCode>,
    /// The subgraphs; the first is the main graph.
    pub subgraphs: Vec<TflSubgraph>,
    /// Raw data buffers, referred to by `TflTensor::buffer`; entry 0 is by convention empty.
    pub buffers: Vec<TflBuffer<'a>>,
    /// Free-form model description (converters write e.g. "MLIR Converted.").
    pub description: Option<String>,
}

impl<'a> TflModel<'a> {
    /// The operator code of `op`.
    ///
    /// `op` must come from this model (its `opcode_index` is then valid); an operator from
    /// another model may panic.
    pub fn opcode(&self, op: &TflOperator) -> &TflOpCode {
        &self.operator_codes[op.opcode_index as usize]
    }

    /// The constant data of `tensor`, borrowed from the file; empty for tensors without data
    /// (activations, inputs). `tensor` must come from this model, as for [`Self::opcode`].
    pub fn tensor_data(&self, tensor: &TflTensor) -> &'a [u8] {
        self.buffers[tensor.buffer as usize].data
    }
}

/// One entry of `Model.operator_codes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TflOpCode {
    /// The `BuiltinOperator` value: `max(deprecated_builtin_code, builtin_code)`, the rule
    /// TFLite applies so that old files (only the byte-sized deprecated field) and new files
    /// (the `int32` field) both read right. See [`builtin_op`] and [`builtin_name`].
    pub builtin_code: i32,
    /// Name of a custom operator (when `builtin_code` is `CUSTOM`).
    pub custom_code: Option<String>,
    /// Operator version (schema default 1).
    pub version: i32,
}

impl TflOpCode {
    /// A human-readable name: the custom code for custom ops, else the builtin's schema name.
    pub fn name(&self) -> &str {
        match (&self.custom_code, self.builtin_code) {
            (Some(custom), builtin_op::CUSTOM) => custom,
            _ => builtin_name(self.builtin_code),
        }
    }
}

/// One entry of `Model.buffers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TflBuffer<'a> {
    /// The buffer's bytes, borrowed from the file: either the inline `data` vector or, for
    /// files that store data after the flatbuffer, `file[offset..offset + size]`.
    /// Alignment is whatever the file gives (TFLite writers align to 16).
    pub data: &'a [u8],
}

/// One subgraph: tensors and operators in execution order.
#[derive(Debug, Clone, PartialEq)]
pub struct TflSubgraph {
    /// Debug name, e.g. `"main"`.
    pub name: Option<String>,
    /// All tensors of the subgraph, referred to by index.
    pub tensors: Vec<TflTensor>,
    /// Indices of the subgraph's input tensors.
    pub inputs: Vec<i32>,
    /// Indices of the subgraph's output tensors.
    pub outputs: Vec<i32>,
    /// Operators in execution order.
    pub operators: Vec<TflOperator>,
}

/// One tensor of a subgraph.
#[derive(Debug, Clone, PartialEq)]
pub struct TflTensor {
    /// Dimensions as stored (NHWC for image tensors); not validated to be non-negative.
    pub shape: Vec<i32>,
    /// Shape with `-1` for dynamic dimensions, when the converter recorded one.
    pub shape_signature: Option<Vec<i32>>,
    /// Raw `TensorType` value; see [`tensor_type`] and [`tensor_type_name`].
    pub dtype: i8,
    /// Index into `TflModel::buffers` (0 = no data).
    pub buffer: u32,
    /// Debug name (empty when absent). Invalid UTF-8 is replaced, never rejected.
    pub name: String,
    /// Affine quantization parameters; `None` when the table is absent or all its vectors
    /// are empty (float tensors often carry such an empty table).
    pub quantization: Option<TflQuant>,
    /// Whether the tensor is a variable (state kept across invocations).
    pub is_variable: bool,
    /// Sparse encoding of the tensor's buffer, when the buffer is stored sparse.
    pub sparsity: Option<TflSparsity>,
}

/// `QuantizationParameters`: `real = scale * (q - zero_point)`.
///
/// Checked by the parser: when `scale` is not empty, `zero_point` has the same length; when
/// there is more than one scale (per-channel), `quantized_dimension` is a valid axis of the
/// tensor and that dimension's size equals the number of scales.
#[derive(Debug, Clone, PartialEq)]
pub struct TflQuant {
    /// Calibration minimum(s), for importing back into TensorFlow.
    pub min: Vec<f32>,
    /// Calibration maximum(s).
    pub max: Vec<f32>,
    /// One scale per tensor, or one per channel along `quantized_dimension`.
    pub scale: Vec<f32>,
    /// Zero point(s), same length as `scale`.
    pub zero_point: Vec<i64>,
    /// The axis that per-channel parameters run along.
    pub quantized_dimension: i32,
}

/// `SparsityParameters`: a TACO-style sparse encoding; see [`super::densify::densify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TflSparsity {
    /// Order in which the `n` dense dimensions and then `k` block dimensions are traversed.
    pub traversal_order: Vec<i32>,
    /// For each block dimension `n + i`, the dense dimension it subdivides.
    pub block_map: Vec<i32>,
    /// Per traversed dimension, in traversal order: dense size or CSR segments/indices.
    pub dim_metadata: Vec<TflDimMeta>,
}

/// `DimensionMetadata` of one traversed dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TflDimMeta {
    /// [`DIM_DENSE`] or [`DIM_SPARSE_CSR`].
    pub format: i8,
    /// Size of the dimension when `format` is dense.
    pub dense_size: i32,
    /// CSR segment starts (one per parent position, plus one), widened to `i32`.
    pub array_segments: Vec<i32>,
    /// CSR indices within the dimension, widened to `i32`.
    pub array_indices: Vec<i32>,
}

/// `DimensionType.DENSE`.
pub const DIM_DENSE: i8 = 0;
/// `DimensionType.SPARSE_CSR`.
pub const DIM_SPARSE_CSR: i8 = 1;

/// One operator of a subgraph.
#[derive(Debug, Clone, PartialEq)]
pub struct TflOperator {
    /// Index into `TflModel::operator_codes`.
    pub opcode_index: u32,
    /// Input tensor indices; `-1` marks an omitted optional input.
    pub inputs: Vec<i32>,
    /// Output tensor indices.
    pub outputs: Vec<i32>,
    /// Decoded `builtin_options`, with schema defaults for absent fields.
    pub options: BuiltinOptions,
    /// `custom_options`: a custom op's parameters, in whatever encoding the
    /// op defines (FlexBuffers, or a raw C struct as MediaPipe's ops use).
    pub custom_options: Vec<u8>,
}

/// `Padding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TflPadding {
    /// Output size `ceil(in / stride)`, padding split with the extra on the end.
    Same,
    /// No padding.
    Valid,
}

/// `ActivationFunctionType`, fused into the op that produces a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TflActivation {
    /// No activation.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `clamp(x, -1, 1)`.
    ReluN1To1,
    /// `clamp(x, 0, 6)`.
    Relu6,
    /// `tanh(x)`.
    Tanh,
    /// `SIGN_BIT` (defined by the schema, used by no builtin kernel).
    SignBit,
}

/// Decoded `Operator.builtin_options`, keyed by the `BuiltinOptions` union type.
///
/// Absent fields take the schema's defaults. Options tables this reader does not decode
/// (including the many empty ones, e.g. `PadOptions`) are `Other(union type id)`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[allow(missing_docs)] // Field names are the schema's; the variant docs name the table.
pub enum BuiltinOptions {
    /// The operator has no builtin options (union type `NONE`).
    None,
    /// `Conv2DOptions` (union type 1).
    Conv2D {
        padding: TflPadding,
        stride_w: i32,
        stride_h: i32,
        fused_activation: TflActivation,
        dilation_w: i32,
        dilation_h: i32,
    },
    /// `DepthwiseConv2DOptions` (2).
    DepthwiseConv2D {
        padding: TflPadding,
        stride_w: i32,
        stride_h: i32,
        depth_multiplier: i32,
        fused_activation: TflActivation,
        dilation_w: i32,
        dilation_h: i32,
    },
    /// `Pool2DOptions` (5), for AVERAGE_POOL_2D, MAX_POOL_2D and L2_POOL_2D.
    Pool2D {
        padding: TflPadding,
        stride_w: i32,
        stride_h: i32,
        filter_width: i32,
        filter_height: i32,
        fused_activation: TflActivation,
    },
    /// `FullyConnectedOptions` (8); `weights_format` 0 = DEFAULT, 1 = SHUFFLED4x16INT8.
    FullyConnected {
        fused_activation: TflActivation,
        weights_format: i8,
        keep_num_dims: bool,
        asymmetric_quantize_inputs: bool,
    },
    /// `SoftmaxOptions` (9).
    Softmax { beta: f32 },
    /// `ConcatenationOptions` (10).
    Concatenation {
        axis: i32,
        fused_activation: TflActivation,
    },
    /// `AddOptions` (11).
    Add { fused_activation: TflActivation },
    /// `ResizeBilinearOptions` (15).
    ResizeBilinear {
        align_corners: bool,
        half_pixel_centers: bool,
    },
    /// `ReshapeOptions` (17); `new_shape` is empty when absent (the shape then comes from
    /// the second input).
    Reshape { new_shape: Vec<i32> },
    /// `SpaceToDepthOptions` (19).
    SpaceToDepth { block_size: i32 },
    /// `MulOptions` (21).
    Mul { fused_activation: TflActivation },
    /// `GatherOptions` (23).
    Gather { axis: i32, batch_dims: i32 },
    /// `ReducerOptions` (27), for MEAN, SUM, REDUCE_MAX, ...
    Reducer { keep_dims: bool },
    /// `SubOptions` (28).
    Sub { fused_activation: TflActivation },
    /// `DivOptions` (29).
    Div { fused_activation: TflActivation },
    /// `SqueezeOptions` (30).
    Squeeze { squeeze_dims: Vec<i32> },
    /// `StridedSliceOptions` (32).
    StridedSlice {
        begin_mask: i32,
        end_mask: i32,
        ellipsis_mask: i32,
        new_axis_mask: i32,
        shrink_axis_mask: i32,
        offset: bool,
    },
    /// `SplitOptions` (35).
    Split { num_splits: i32 },
    /// `CastOptions` (37); raw `TensorType` values.
    Cast { in_data_type: i8, out_data_type: i8 },
    /// `ArgMaxOptions` (40); raw `TensorType` of the output.
    ArgMax { output_type: i8 },
    /// `TransposeConvOptions` (49).
    TransposeConv {
        padding: TflPadding,
        stride_w: i32,
        stride_h: i32,
        fused_activation: TflActivation,
    },
    /// `ShapeOptions` (55); raw `TensorType` of the output.
    Shape { out_type: i8 },
    /// `ArgMinOptions` (57); raw `TensorType` of the output.
    ArgMin { output_type: i8 },
    /// `PackOptions` (59).
    Pack { values_count: i32, axis: i32 },
    /// `UnpackOptions` (64).
    Unpack { num: i32, axis: i32 },
    /// `ResizeNearestNeighborOptions` (74).
    ResizeNearestNeighbor {
        align_corners: bool,
        half_pixel_centers: bool,
    },
    /// `LeakyReluOptions` (75).
    LeakyRelu { alpha: f32 },
    /// `L2NormOptions` (12).
    L2Norm { fused_activation: TflActivation },
    /// `LocalResponseNormalizationOptions` (13).
    LocalResponseNorm {
        radius: i32,
        bias: f32,
        alpha: f32,
        beta: f32,
    },
    /// `MirrorPadOptions` (77); `mode` 0 = REFLECT, 1 = SYMMETRIC.
    MirrorPad { mode: i8 },
    /// `SplitVOptions` (79).
    SplitV { num_splits: i32 },
    /// `DepthToSpaceOptions` (94).
    DepthToSpace { block_size: i32 },
    /// `BatchMatMulOptions` (101).
    BatchMatMul {
        adj_x: bool,
        adj_y: bool,
        asymmetric_quantize_inputs: bool,
    },
    /// `CallOnceOptions` (103).
    CallOnce { init_subgraph_index: i32 },
    /// `VarHandleOptions` (111): which resource variable a VAR_HANDLE op names.
    VarHandle {
        container: Option<String>,
        shared_name: Option<String>,
    },
    /// `GeluOptions` (116).
    Gelu { approximate: bool },
    /// `UnidirectionalSequenceLSTMOptions` (71).
    UnidirectionalSequenceLstm {
        fused_activation: TflActivation,
        cell_clip: f32,
        proj_clip: f32,
        time_major: bool,
        asymmetric_quantize_inputs: bool,
        diagonal_recurrent_tensors: bool,
    },
    /// Any other options table, by its `BuiltinOptions` union type id.
    Other(u8),
}

/// `BuiltinOptions` union type ids of the tables decoded into [`BuiltinOptions`] variants.
pub mod options_type {
    #![allow(missing_docs)]
    pub const NONE: u8 = 0;
    pub const CONV_2D: u8 = 1;
    pub const DEPTHWISE_CONV_2D: u8 = 2;
    pub const POOL_2D: u8 = 5;
    pub const FULLY_CONNECTED: u8 = 8;
    pub const SOFTMAX: u8 = 9;
    pub const CONCATENATION: u8 = 10;
    pub const ADD: u8 = 11;
    pub const L2_NORM: u8 = 12;
    pub const LOCAL_RESPONSE_NORMALIZATION: u8 = 13;
    pub const RESIZE_BILINEAR: u8 = 15;
    pub const RESHAPE: u8 = 17;
    pub const SPACE_TO_DEPTH: u8 = 19;
    pub const MUL: u8 = 21;
    pub const GATHER: u8 = 23;
    pub const REDUCER: u8 = 27;
    pub const SUB: u8 = 28;
    pub const DIV: u8 = 29;
    pub const SQUEEZE: u8 = 30;
    pub const STRIDED_SLICE: u8 = 32;
    pub const SPLIT: u8 = 35;
    pub const CAST: u8 = 37;
    pub const ARG_MAX: u8 = 40;
    pub const TRANSPOSE_CONV: u8 = 49;
    pub const SHAPE: u8 = 55;
    pub const ARG_MIN: u8 = 57;
    pub const PACK: u8 = 59;
    pub const UNPACK: u8 = 64;
    pub const RESIZE_NEAREST_NEIGHBOR: u8 = 74;
    pub const LEAKY_RELU: u8 = 75;
    pub const MIRROR_PAD: u8 = 77;
    pub const SPLIT_V: u8 = 79;
    pub const DEPTH_TO_SPACE: u8 = 94;
    pub const BATCH_MAT_MUL: u8 = 101;
    pub const CALL_ONCE: u8 = 103;
    pub const VAR_HANDLE: u8 = 111;
    pub const GELU: u8 = 116;
    pub const UNIDIRECTIONAL_SEQUENCE_LSTM: u8 = 71;
}

/// Decoded structures may use at most this many bytes of memory per byte of input (plus
/// [`BUDGET_SLACK`]). A well-formed model uses far less (its big data is borrowed, not
/// copied); only a file whose offsets point many times at the same table comes near, and such
/// a file is refused rather than allowed to allocate without bound.
const BUDGET_PER_INPUT_BYTE: usize = 32;
/// Fixed allowance on top of [`BUDGET_PER_INPUT_BYTE`], for tiny files.
const BUDGET_SLACK: usize = 1 << 20;

/// Adds "where" to an error as it travels up through the decoder.
trait Context<T> {
    /// Prefixes the location produced by `at` (e.g. `"tensor 12"`) to a `Malformed` error.
    fn at(self, at: impl FnOnce() -> String) -> Result<T, TflError>;
}

impl<T, E: Into<TflError>> Context<T> for Result<T, E> {
    fn at(self, at: impl FnOnce() -> String) -> Result<T, TflError> {
        self.map_err(|e| e.into().within(&at()))
    }
}

fn malformed(problem: String) -> TflError {
    TflError::Malformed {
        at: String::new(),
        problem,
    }
}

/// Reads the fields of an options table that may be absent: an absent table reads as one
/// whose fields are all absent, so every field takes its schema default.
#[derive(Clone, Copy)]
struct Fields<'a>(Option<Table<'a>>);

impl<'a> Fields<'a> {
    fn i32(&self, id: u16, name: &'static str, default: i32) -> Result<i32, FbError> {
        self.0.map_or(Ok(default), |t| t.i32(id, name, default))
    }
    fn i8(&self, id: u16, name: &'static str, default: i8) -> Result<i8, FbError> {
        self.0.map_or(Ok(default), |t| t.i8(id, name, default))
    }
    fn bool(&self, id: u16, name: &'static str, default: bool) -> Result<bool, FbError> {
        self.0.map_or(Ok(default), |t| t.bool(id, name, default))
    }
    fn f32(&self, id: u16, name: &'static str, default: f32) -> Result<f32, FbError> {
        self.0.map_or(Ok(default), |t| t.f32(id, name, default))
    }
    fn vector<T: Elem>(
        &self,
        id: u16,
        name: &'static str,
    ) -> Result<Option<Vector<'a, T>>, FbError> {
        self.0.map_or(Ok(None), |t| t.vector(id, name))
    }
    fn str_bytes(&self, id: u16, name: &'static str) -> Result<Option<&'a [u8]>, FbError> {
        self.0.map_or(Ok(None), |t| t.str_bytes(id, name))
    }
    fn padding(&self, id: u16) -> Result<TflPadding, TflError> {
        match self.i8(id, "padding", 0)? {
            0 => Ok(TflPadding::Same),
            1 => Ok(TflPadding::Valid),
            v => Err(malformed(format!("padding: unknown Padding value {v}"))),
        }
    }
    fn activation(&self, id: u16) -> Result<TflActivation, TflError> {
        match self.i8(id, "fused_activation_function", 0)? {
            0 => Ok(TflActivation::None),
            1 => Ok(TflActivation::Relu),
            2 => Ok(TflActivation::ReluN1To1),
            3 => Ok(TflActivation::Relu6),
            4 => Ok(TflActivation::Tanh),
            5 => Ok(TflActivation::SignBit),
            v => Err(malformed(format!(
                "fused_activation_function: unknown ActivationFunctionType {v}"
            ))),
        }
    }
}

/// Decodes a model held in `file`; see [`super::parse`] for the contract.
pub(crate) fn decode_model(file: &[u8]) -> Result<TflModel<'_>, TflError> {
    if file.len() < 8 {
        return Err(TflError::TooShort { len: file.len() });
    }
    let mut found = [0u8; 4];
    found.copy_from_slice(&file[4..8]);
    if found != TFLITE_FILE_IDENTIFIER {
        return Err(TflError::WrongIdentifier { found });
    }
    let root = Table::root(file, "model")?;
    let version = root.u32(0, "version", 0)?;
    if version != TFLITE_SCHEMA_VERSION {
        return Err(TflError::UnsupportedVersion { version });
    }
    let mut d = Decoder {
        file,
        budget: file
            .len()
            .saturating_mul(BUDGET_PER_INPUT_BYTE)
            .saturating_add(BUDGET_SLACK),
    };
    let codes = root.vector::<TableRef>(1, "operator_codes")?;
    let operator_codes = d.each_table(codes, "operator code", Decoder::opcode)?;
    let buffers = root.vector::<TableRef>(4, "buffers")?;
    let buffers = d.each_table(buffers, "buffer", Decoder::buffer)?;
    let refs = Refs {
        opcodes: operator_codes.len(),
        buffers: buffers.len(),
    };
    let subgraphs = root.vector::<TableRef>(2, "subgraphs")?;
    let subgraphs = d.each_table(subgraphs, "subgraph", |d, t| d.subgraph(t, refs))?;
    if subgraphs.is_empty() {
        return Err(malformed("the model has no subgraphs".into()));
    }
    let description = d.string(root.str_bytes(3, "description")?)?;
    Ok(TflModel {
        version,
        operator_codes,
        subgraphs,
        buffers,
        description,
    })
}

/// Sizes of the model-level tables that subgraphs refer into.
#[derive(Clone, Copy)]
struct Refs {
    opcodes: usize,
    buffers: usize,
}

/// Decoding state: the file (for out-of-flatbuffer buffer data) and the memory left to spend.
struct Decoder<'a> {
    file: &'a [u8],
    budget: usize,
}

impl<'a> Decoder<'a> {
    /// Spends `bytes` of the memory budget, or fails when it is exhausted.
    fn charge(&mut self, bytes: usize) -> Result<(), TflError> {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(malformed(format!(
                "decoded structures would need more than {BUDGET_PER_INPUT_BYTE} bytes of \
                 memory per byte of the {}-byte file (tables shared many times?)",
                self.file.len()
            ))),
        }
    }

    /// Copies a vector out of the file (absent reads as empty), after charging for it.
    fn vec<T: Elem>(&mut self, v: Option<Vector<'a, T>>) -> Result<Vec<T>, TflError> {
        let Some(v) = v else {
            return Ok(Vec::new());
        };
        self.charge(v.len().saturating_mul(core::mem::size_of::<T>()))?;
        Ok(v.iter().collect())
    }

    /// Copies a string out of the file, replacing invalid UTF-8.
    fn string(&mut self, bytes: Option<&'a [u8]>) -> Result<Option<String>, TflError> {
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        self.charge(bytes.len())?;
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }

    /// Decodes every table of a vector of tables with `decode`, naming element `i` as
    /// `"{label} {i}"` in errors; an absent vector reads as empty.
    fn each_table<T>(
        &mut self,
        tables: Option<Vector<'a, TableRef>>,
        label: &str,
        mut decode: impl FnMut(&mut Self, Table<'a>) -> Result<T, TflError>,
    ) -> Result<Vec<T>, TflError> {
        let Some(tables) = tables else {
            return Ok(Vec::new());
        };
        let n = tables.len();
        self.charge(n.saturating_mul(core::mem::size_of::<T>()))?;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let item = tables
                .table(i)
                .map_err(TflError::from)
                .and_then(|t| decode(self, t))
                .at(|| format!("{label} {i}"))?;
            out.push(item);
        }
        Ok(out)
    }

    fn opcode(&mut self, t: Table<'a>) -> Result<TflOpCode, TflError> {
        let deprecated = t.i8(0, "deprecated_builtin_code", 0)?;
        let custom_code = self.string(t.str_bytes(1, "custom_code")?)?;
        let version = t.i32(2, "version", 1)?;
        let builtin = t.i32(3, "builtin_code", 0)?;
        Ok(TflOpCode {
            builtin_code: builtin.max(i32::from(deprecated)),
            custom_code,
            version,
        })
    }

    fn buffer(&mut self, t: Table<'a>) -> Result<TflBuffer<'a>, TflError> {
        let inline = t.bytes(0, "data")?;
        let offset = t.u64(1, "offset", 0)?;
        let size = t.u64(2, "size", 0)?;
        // Per the schema, `offset` is meaningful only when greater than 1; it then takes
        // precedence over the inline vector, as in TFLite's interpreter.
        if offset > 1 {
            let range = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(size).ok())
                .and_then(|(start, len)| Some(start..start.checked_add(len)?));
            return match range.and_then(|r| self.file.get(r)) {
                Some(data) => Ok(TflBuffer { data }),
                None => Err(malformed(format!(
                    "data at offset {offset} with size {size} runs past end of file ({} bytes)",
                    self.file.len()
                ))),
            };
        }
        Ok(TflBuffer {
            data: inline.unwrap_or_default(),
        })
    }

    fn subgraph(&mut self, t: Table<'a>, refs: Refs) -> Result<TflSubgraph, TflError> {
        let tensors = t.vector::<TableRef>(0, "tensors")?;
        let tensors = self.each_table(tensors, "tensor", |d, t| d.tensor(t, refs))?;
        let inputs = self.vec(t.vector::<i32>(1, "inputs")?)?;
        let outputs = self.vec(t.vector::<i32>(2, "outputs")?)?;
        let n_tensors = tensors.len();
        let operators = t.vector::<TableRef>(3, "operators")?;
        let operators =
            self.each_table(operators, "operator", |d, t| d.operator(t, refs, n_tensors))?;
        let name = self.string(t.str_bytes(4, "name")?)?;
        check_tensor_refs("inputs", &inputs, n_tensors, false)?;
        check_tensor_refs("outputs", &outputs, n_tensors, false)?;
        Ok(TflSubgraph {
            name,
            tensors,
            inputs,
            outputs,
            operators,
        })
    }

    fn tensor(&mut self, t: Table<'a>, refs: Refs) -> Result<TflTensor, TflError> {
        let shape = self.vec(t.vector::<i32>(0, "shape")?)?;
        let dtype = t.i8(1, "type", tensor_type::FLOAT32)?;
        let buffer = t.u32(2, "buffer", 0)?;
        if buffer as usize >= refs.buffers {
            return Err(malformed(format!(
                "buffer index {buffer} is out of range (the model has {} buffers)",
                refs.buffers
            )));
        }
        let name = self.string(t.str_bytes(3, "name")?)?.unwrap_or_default();
        let quantization = match t.table(4, "quantization")? {
            Some(q) => self.quant(q, &shape).at(|| "quantization".into())?,
            None => None,
        };
        let is_variable = t.bool(5, "is_variable", false)?;
        let sparsity = match t.table(6, "sparsity")? {
            Some(s) => Some(self.sparsity(s).at(|| "sparsity".into())?),
            None => None,
        };
        let shape_signature = match t.vector::<i32>(7, "shape_signature")? {
            Some(v) => Some(self.vec(Some(v))?),
            None => None,
        };
        Ok(TflTensor {
            shape,
            shape_signature,
            dtype,
            buffer,
            name,
            quantization,
            is_variable,
            sparsity,
        })
    }

    fn quant(&mut self, q: Table<'a>, shape: &[i32]) -> Result<Option<TflQuant>, TflError> {
        let min = self.vec(q.vector::<f32>(0, "min")?)?;
        let max = self.vec(q.vector::<f32>(1, "max")?)?;
        let scale = self.vec(q.vector::<f32>(2, "scale")?)?;
        let zero_point = self.vec(q.vector::<i64>(3, "zero_point")?)?;
        let quantized_dimension = q.i32(6, "quantized_dimension", 0)?;
        if min.is_empty() && max.is_empty() && scale.is_empty() && zero_point.is_empty() {
            return Ok(None);
        }
        if !scale.is_empty() {
            // The same checks TFLite's interpreter makes before it trusts the parameters.
            if zero_point.len() != scale.len() {
                return Err(malformed(format!(
                    "{} scales but {} zero points",
                    scale.len(),
                    zero_point.len()
                )));
            }
            let axis = usize::try_from(quantized_dimension).ok();
            let valid_axis = axis.filter(|&a| shape.is_empty() || a < shape.len());
            let Some(axis) = valid_axis else {
                return Err(malformed(format!(
                    "quantized_dimension {quantized_dimension} is not an axis of a rank-{} \
                     tensor",
                    shape.len()
                )));
            };
            if scale.len() > 1 && shape.get(axis).map(|&d| d as i64) != Some(scale.len() as i64) {
                return Err(malformed(format!(
                    "{} per-channel scales for dimension {axis} of shape {shape:?}",
                    scale.len()
                )));
            }
        }
        Ok(Some(TflQuant {
            min,
            max,
            scale,
            zero_point,
            quantized_dimension,
        }))
    }

    fn sparsity(&mut self, s: Table<'a>) -> Result<TflSparsity, TflError> {
        let traversal_order = self.vec(s.vector::<i32>(0, "traversal_order")?)?;
        let block_map = self.vec(s.vector::<i32>(1, "block_map")?)?;
        let dims = s.vector::<TableRef>(2, "dim_metadata")?;
        let dim_metadata = self.each_table(dims, "dim_metadata", Decoder::dim_meta)?;
        Ok(TflSparsity {
            traversal_order,
            block_map,
            dim_metadata,
        })
    }

    fn dim_meta(&mut self, t: Table<'a>) -> Result<TflDimMeta, TflError> {
        let format = t.i8(0, "format", DIM_DENSE)?;
        let dense_size = t.i32(1, "dense_size", 0)?;
        let segments_type = t.u8(2, "array_segments_type", 0)?;
        let segments = t.table(3, "array_segments")?;
        let indices_type = t.u8(4, "array_indices_type", 0)?;
        let indices = t.table(5, "array_indices")?;
        Ok(TflDimMeta {
            format,
            dense_size,
            array_segments: self.index_vector(segments_type, segments, "array_segments")?,
            array_indices: self.index_vector(indices_type, indices, "array_indices")?,
        })
    }

    /// Reads a `SparseIndexVector` union (Int32Vector = 1, Uint16Vector = 2,
    /// Uint8Vector = 3), widened to `i32`; `NONE` or an absent table reads as empty.
    fn index_vector(
        &mut self,
        kind: u8,
        table: Option<Table<'a>>,
        name: &'static str,
    ) -> Result<Vec<i32>, TflError> {
        let Some(table) = table.filter(|_| kind != 0) else {
            return Ok(Vec::new());
        };
        Ok(match kind {
            1 => self.vec(table.vector::<i32>(0, name)?)?,
            2 => {
                let v = self.vec(table.vector::<u16>(0, name)?)?;
                self.charge(v.len().saturating_mul(4))?;
                v.into_iter().map(i32::from).collect()
            }
            3 => {
                let v = self.vec(table.vector::<u8>(0, name)?)?;
                self.charge(v.len().saturating_mul(4))?;
                v.into_iter().map(i32::from).collect()
            }
            _ => {
                return Err(malformed(format!(
                    "{name}: unknown SparseIndexVector type {kind}"
                )))
            }
        })
    }

    fn operator(
        &mut self,
        t: Table<'a>,
        refs: Refs,
        n_tensors: usize,
    ) -> Result<TflOperator, TflError> {
        let opcode_index = t.u32(0, "opcode_index", 0)?;
        if opcode_index as usize >= refs.opcodes {
            return Err(malformed(format!(
                "opcode_index {opcode_index} is out of range (the model has {} operator codes)",
                refs.opcodes
            )));
        }
        let inputs = self.vec(t.vector::<i32>(1, "inputs")?)?;
        let outputs = self.vec(t.vector::<i32>(2, "outputs")?)?;
        check_tensor_refs("inputs", &inputs, n_tensors, true)?;
        check_tensor_refs("outputs", &outputs, n_tensors, true)?;
        let kind = t.u8(3, "builtin_options_type", 0)?;
        let table = t.table(4, "builtin_options")?;
        let options = self
            .options(kind, Fields(table))
            .at(|| "builtin_options".into())?;
        let custom_options = t
            .bytes(5, "custom_options")?
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        Ok(TflOperator {
            opcode_index,
            inputs,
            outputs,
            options,
            custom_options,
        })
    }

    /// Decodes a `BuiltinOptions` union value of type `kind`.
    fn options(&mut self, kind: u8, f: Fields<'a>) -> Result<BuiltinOptions, TflError> {
        use options_type as ty;
        use BuiltinOptions as O;
        Ok(match kind {
            ty::NONE => O::None,
            ty::CONV_2D => O::Conv2D {
                padding: f.padding(0)?,
                stride_w: f.i32(1, "stride_w", 0)?,
                stride_h: f.i32(2, "stride_h", 0)?,
                fused_activation: f.activation(3)?,
                dilation_w: f.i32(4, "dilation_w_factor", 1)?,
                dilation_h: f.i32(5, "dilation_h_factor", 1)?,
            },
            ty::DEPTHWISE_CONV_2D => O::DepthwiseConv2D {
                padding: f.padding(0)?,
                stride_w: f.i32(1, "stride_w", 0)?,
                stride_h: f.i32(2, "stride_h", 0)?,
                depth_multiplier: f.i32(3, "depth_multiplier", 0)?,
                fused_activation: f.activation(4)?,
                dilation_w: f.i32(5, "dilation_w_factor", 1)?,
                dilation_h: f.i32(6, "dilation_h_factor", 1)?,
            },
            ty::POOL_2D => O::Pool2D {
                padding: f.padding(0)?,
                stride_w: f.i32(1, "stride_w", 0)?,
                stride_h: f.i32(2, "stride_h", 0)?,
                filter_width: f.i32(3, "filter_width", 0)?,
                filter_height: f.i32(4, "filter_height", 0)?,
                fused_activation: f.activation(5)?,
            },
            ty::FULLY_CONNECTED => O::FullyConnected {
                fused_activation: f.activation(0)?,
                weights_format: f.i8(1, "weights_format", 0)?,
                keep_num_dims: f.bool(2, "keep_num_dims", false)?,
                asymmetric_quantize_inputs: f.bool(3, "asymmetric_quantize_inputs", false)?,
            },
            ty::SOFTMAX => O::Softmax {
                beta: f.f32(0, "beta", 0.0)?,
            },
            ty::CONCATENATION => O::Concatenation {
                axis: f.i32(0, "axis", 0)?,
                fused_activation: f.activation(1)?,
            },
            ty::ADD => O::Add {
                fused_activation: f.activation(0)?,
            },
            ty::RESIZE_BILINEAR => O::ResizeBilinear {
                // Fields 0 and 1 are the deprecated new_height/new_width.
                align_corners: f.bool(2, "align_corners", false)?,
                half_pixel_centers: f.bool(3, "half_pixel_centers", false)?,
            },
            ty::RESHAPE => O::Reshape {
                new_shape: self.vec(f.vector::<i32>(0, "new_shape")?)?,
            },
            ty::SPACE_TO_DEPTH => O::SpaceToDepth {
                block_size: f.i32(0, "block_size", 0)?,
            },
            ty::MUL => O::Mul {
                fused_activation: f.activation(0)?,
            },
            ty::GATHER => O::Gather {
                axis: f.i32(0, "axis", 0)?,
                batch_dims: f.i32(1, "batch_dims", 0)?,
            },
            ty::REDUCER => O::Reducer {
                keep_dims: f.bool(0, "keep_dims", false)?,
            },
            ty::SUB => O::Sub {
                fused_activation: f.activation(0)?,
            },
            ty::DIV => O::Div {
                fused_activation: f.activation(0)?,
            },
            ty::SQUEEZE => O::Squeeze {
                squeeze_dims: self.vec(f.vector::<i32>(0, "squeeze_dims")?)?,
            },
            ty::STRIDED_SLICE => O::StridedSlice {
                begin_mask: f.i32(0, "begin_mask", 0)?,
                end_mask: f.i32(1, "end_mask", 0)?,
                ellipsis_mask: f.i32(2, "ellipsis_mask", 0)?,
                new_axis_mask: f.i32(3, "new_axis_mask", 0)?,
                shrink_axis_mask: f.i32(4, "shrink_axis_mask", 0)?,
                offset: f.bool(5, "offset", false)?,
            },
            ty::SPLIT => O::Split {
                num_splits: f.i32(0, "num_splits", 0)?,
            },
            ty::CAST => O::Cast {
                in_data_type: f.i8(0, "in_data_type", 0)?,
                out_data_type: f.i8(1, "out_data_type", 0)?,
            },
            ty::ARG_MAX => O::ArgMax {
                output_type: f.i8(0, "output_type", 0)?,
            },
            ty::TRANSPOSE_CONV => O::TransposeConv {
                padding: f.padding(0)?,
                stride_w: f.i32(1, "stride_w", 0)?,
                stride_h: f.i32(2, "stride_h", 0)?,
                fused_activation: f.activation(3)?,
            },
            ty::SHAPE => O::Shape {
                out_type: f.i8(0, "out_type", 0)?,
            },
            ty::ARG_MIN => O::ArgMin {
                output_type: f.i8(0, "output_type", 0)?,
            },
            ty::PACK => O::Pack {
                values_count: f.i32(0, "values_count", 0)?,
                axis: f.i32(1, "axis", 0)?,
            },
            ty::UNPACK => O::Unpack {
                num: f.i32(0, "num", 0)?,
                axis: f.i32(1, "axis", 0)?,
            },
            ty::RESIZE_NEAREST_NEIGHBOR => O::ResizeNearestNeighbor {
                align_corners: f.bool(0, "align_corners", false)?,
                half_pixel_centers: f.bool(1, "half_pixel_centers", false)?,
            },
            ty::LEAKY_RELU => O::LeakyRelu {
                alpha: f.f32(0, "alpha", 0.0)?,
            },
            ty::L2_NORM => O::L2Norm {
                fused_activation: f.activation(0)?,
            },
            ty::LOCAL_RESPONSE_NORMALIZATION => O::LocalResponseNorm {
                radius: f.i32(0, "radius", 0)?,
                bias: f.f32(1, "bias", 0.0)?,
                alpha: f.f32(2, "alpha", 0.0)?,
                beta: f.f32(3, "beta", 0.0)?,
            },
            ty::MIRROR_PAD => O::MirrorPad {
                mode: f.i8(0, "mode", 0)?,
            },
            ty::SPLIT_V => O::SplitV {
                num_splits: f.i32(0, "num_splits", 0)?,
            },
            ty::DEPTH_TO_SPACE => O::DepthToSpace {
                block_size: f.i32(0, "block_size", 0)?,
            },
            ty::BATCH_MAT_MUL => O::BatchMatMul {
                adj_x: f.bool(0, "adj_x", false)?,
                adj_y: f.bool(1, "adj_y", false)?,
                asymmetric_quantize_inputs: f.bool(2, "asymmetric_quantize_inputs", false)?,
            },
            ty::CALL_ONCE => O::CallOnce {
                init_subgraph_index: f.i32(0, "init_subgraph_index", 0)?,
            },
            ty::VAR_HANDLE => O::VarHandle {
                container: self.string(f.str_bytes(0, "container")?)?,
                shared_name: self.string(f.str_bytes(1, "shared_name")?)?,
            },
            ty::GELU => O::Gelu {
                approximate: f.bool(0, "approximate", false)?,
            },
            ty::UNIDIRECTIONAL_SEQUENCE_LSTM => O::UnidirectionalSequenceLstm {
                fused_activation: f.activation(0)?,
                cell_clip: f.f32(1, "cell_clip", 0.0)?,
                proj_clip: f.f32(2, "proj_clip", 0.0)?,
                time_major: f.bool(3, "time_major", false)?,
                asymmetric_quantize_inputs: f.bool(4, "asymmetric_quantize_inputs", false)?,
                diagonal_recurrent_tensors: f.bool(5, "diagonal_recurrent_tensors", false)?,
            },
            other => O::Other(other),
        })
    }
}

/// Checks that tensor indices in `list` address one of `n_tensors` tensors; `-1` (an omitted
/// optional operand) is allowed when `allow_omitted`.
fn check_tensor_refs(
    list: &'static str,
    indices: &[i32],
    n_tensors: usize,
    allow_omitted: bool,
) -> Result<(), TflError> {
    for (i, &t) in indices.iter().enumerate() {
        let ok = (t == -1 && allow_omitted) || usize::try_from(t).is_ok_and(|t| t < n_tensors);
        if !ok {
            return Err(malformed(format!(
                "{list}[{i}] = {t} is not a tensor index (the subgraph has {n_tensors} tensors)"
            )));
        }
    }
    Ok(())
}
