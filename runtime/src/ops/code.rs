//! Op codes and their attribute layouts, as stored in a `.fer` package.
//! `docs/format.md` lists the same table; keep them in sync.

macro_rules! op_codes {
    ($($name:ident = $val:literal, $text:literal;)*) => {
        /// The closed set of ops the runtime can execute.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum OpCode { $($name = $val,)* }

        impl OpCode {
            /// Decodes a stored op code; `None` for an unknown one.
            pub fn from_u16(v: u16) -> Option<Self> {
                match v { $($val => Some(OpCode::$name),)* _ => None }
            }
            /// The TFLite-style upper-case name (`CONV_2D`).
            pub fn name(self) -> &'static str {
                match self { $(OpCode::$name => $text,)* }
            }
            /// Every op code, in code order.
            pub const ALL: &'static [OpCode] = &[$(OpCode::$name,)*];
        }
    };
}

op_codes! {
    Conv2d = 1, "CONV_2D";
    DepthwiseConv2d = 2, "DEPTHWISE_CONV_2D";
    FullyConnected = 3, "FULLY_CONNECTED";
    Add = 10, "ADD";
    Sub = 11, "SUB";
    Mul = 12, "MUL";
    Maximum = 13, "MAXIMUM";
    Minimum = 14, "MINIMUM";
    Relu = 20, "RELU";
    Relu6 = 21, "RELU6";
    ReluN1To1 = 22, "RELU_N1_TO_1";
    LeakyRelu = 23, "LEAKY_RELU";
    Prelu = 24, "PRELU";
    HardSwish = 25, "HARD_SWISH";
    Logistic = 26, "LOGISTIC";
    Tanh = 27, "TANH";
    Softmax = 28, "SOFTMAX";
    Pad = 30, "PAD";
    PadV2 = 31, "PADV2";
    MaxPool2d = 32, "MAX_POOL_2D";
    AveragePool2d = 33, "AVERAGE_POOL_2D";
    Mean = 34, "MEAN";
    Reshape = 40, "RESHAPE";
    Squeeze = 41, "SQUEEZE";
    ExpandDims = 42, "EXPAND_DIMS";
    Concatenation = 43, "CONCATENATION";
    Split = 44, "SPLIT";
    SplitV = 45, "SPLIT_V";
    StridedSlice = 46, "STRIDED_SLICE";
    Slice = 47, "SLICE";
    Transpose = 48, "TRANSPOSE";
    ResizeBilinear = 50, "RESIZE_BILINEAR";
    ResizeNearestNeighbor = 51, "RESIZE_NEAREST_NEIGHBOR";
    DepthToSpace = 52, "DEPTH_TO_SPACE";
    SpaceToDepth = 53, "SPACE_TO_DEPTH";
    Quantize = 60, "QUANTIZE";
    Dequantize = 61, "DEQUANTIZE";
    Unary = 70, "UNARY";
    Binary = 71, "BINARY";
    Where = 72, "WHERE";
    Reduce = 73, "REDUCE";
    ArgReduce = 74, "ARG_REDUCE";
    Cast = 75, "CAST";
    BatchMatmul = 76, "BATCH_MATMUL";
    Gather = 77, "GATHER";
    LogSoftmax = 78, "LOG_SOFTMAX";
    ConvTranspose = 79, "CONV_TRANSPOSE";
    PadMode = 80, "PAD_MODE";
    LandmarksToTransformMatrix = 81, "LANDMARKS_TO_TRANSFORM_MATRIX";
    TransformTensorBilinear = 82, "TRANSFORM_TENSOR_BILINEAR";
    TransformLandmarks = 83, "TRANSFORM_LANDMARKS";
    DetectionPostprocess = 84, "DETECTION_POSTPROCESS";
    LocalResponseNorm = 85, "LOCAL_RESPONSE_NORMALIZATION";
}
