"""Writes single-operator .tflite models with the flatbuffers builder.

The generated `tflite` package (PyPI `tflite`, TFLite schema bindings) supplies the
table builder functions; this module only arranges them into a valid model:
buffer 0 is the empty sentinel, every constant tensor owns one buffer (16-byte
aligned), activations point at buffer 0, and the file identifier is "TFL3".
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import flatbuffers
import numpy as np
import tflite

# TensorType values from the TFLite schema.
TENSOR_TYPES = {"f32": 0, "i32": 2, "u8": 3, "i64": 4, "bool": 6, "i8": 9, "i16": 7}
NUMPY_TYPES = {
    "f32": np.float32,
    "i32": np.int32,
    "u8": np.uint8,
    "i64": np.int64,
    "i8": np.int8,
    "i16": np.int16,
    "bool": np.bool_,
}

# Operators whose kernels are registered from a version above 1 (as the TFLite converter
# writes them).
MIN_VERSION = {"BROADCAST_TO": 2}

# Builtin options table for each operator used by the golden generators (None: the
# operator has no options table).
OPTIONS_TABLE = {
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "ADD": "AddOptions",
    "SUB": "SubOptions",
    "MUL": "MulOptions",
    "MAXIMUM": "MaximumMinimumOptions",
    "MINIMUM": "MaximumMinimumOptions",
    "RELU": None,
    "RELU6": None,
    "RELU_N1_TO_1": None,
    "LEAKY_RELU": "LeakyReluOptions",
    "PRELU": None,
    "HARD_SWISH": "HardSwishOptions",
    "LOGISTIC": None,
    "TANH": None,
    "SOFTMAX": "SoftmaxOptions",
    "PAD": "PadOptions",
    "PADV2": "PadV2Options",
    "MAX_POOL_2D": "Pool2DOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MEAN": "ReducerOptions",
    "RESHAPE": "ReshapeOptions",
    "SQUEEZE": "SqueezeOptions",
    "EXPAND_DIMS": "ExpandDimsOptions",
    "CONCATENATION": "ConcatenationOptions",
    "SPLIT": "SplitOptions",
    "SPLIT_V": "SplitVOptions",
    "STRIDED_SLICE": "StridedSliceOptions",
    "SLICE": "SliceOptions",
    "TRANSPOSE": "TransposeOptions",
    "RESIZE_BILINEAR": "ResizeBilinearOptions",
    "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
    "DEPTH_TO_SPACE": "DepthToSpaceOptions",
    "SPACE_TO_DEPTH": "SpaceToDepthOptions",
    "QUANTIZE": "QuantizeOptions",
    "DEQUANTIZE": "DequantizeOptions",
    "TRANSPOSE_CONV": "TransposeConvOptions",
    # Element-wise math, comparisons, reductions and the rest of what the importer maps
    # onto the runtime's generic ops.
    "ABS": None,
    "NEG": None,
    "SQRT": None,
    "RSQRT": None,
    "EXP": None,
    "LOG": None,
    "FLOOR": None,
    "CEIL": None,
    "ROUND": None,
    "SIN": None,
    "COS": None,
    "ELU": None,
    "GELU": "GeluOptions",
    "LOCAL_RESPONSE_NORMALIZATION": "LocalResponseNormalizationOptions",
    "TILE": "TileOptions",
    "BROADCAST_TO": "BroadcastToOptions",
    "L2_NORMALIZATION": "L2NormOptions",
    "SQUARE": None,
    "DIV": "DivOptions",
    "POW": None,
    "FLOOR_MOD": None,
    "FLOOR_DIV": None,
    "SQUARED_DIFFERENCE": None,
    "EQUAL": None,
    "NOT_EQUAL": None,
    "LESS": None,
    "LESS_EQUAL": None,
    "GREATER": None,
    "GREATER_EQUAL": None,
    "LOGICAL_AND": None,
    "LOGICAL_OR": None,
    "LOGICAL_NOT": None,
    "SELECT_V2": None,
    "SUM": "ReducerOptions",
    "REDUCE_MAX": "ReducerOptions",
    "REDUCE_MIN": "ReducerOptions",
    "REDUCE_PROD": "ReducerOptions",
    "ARG_MAX": "ArgMaxOptions",
    "ARG_MIN": "ArgMinOptions",
    "LOG_SOFTMAX": None,
    "CAST": "CastOptions",
    "GATHER": "GatherOptions",
    "BATCH_MATMUL": "BatchMatMulOptions",
    "MIRROR_PAD": "MirrorPadOptions",
    "PACK": "PackOptions",
    "UNPACK": "UnpackOptions",
    "SPACE_TO_BATCH_ND": "SpaceToBatchNDOptions",
    "BATCH_TO_SPACE_ND": "BatchToSpaceNDOptions",
    "GATHER_ND": "GatherNdOptions",
    "SELECT": "SelectOptions",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTMOptions",
}


@dataclass
class Tensor:
    """One tensor of a single-operator model.

    `data` is set for constants (stored in `dtype`); activations leave it None.
    `scale`/`zero_point` are set for quantized tensors (one entry per tensor, or one per
    channel along `quantized_dimension`).
    """

    name: str
    dtype: str
    shape: tuple[int, ...] | None
    data: np.ndarray | None = None
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    quantized_dimension: int = 0
    # Uniform range that random float inputs are drawn from (activations only).
    value_range: tuple[float, float] = (-3.0, 3.0)
    # Extra flags used by the generators (for example "calibrate" on an output).
    flags: dict = field(default_factory=dict)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def qparams_json(self) -> dict | None:
        """Quantization parameters as plain JSON values, or None."""
        if self.scale is None:
            return None
        return {
            "scale": [float(s) for s in np.asarray(self.scale, np.float32)],
            "zero_point": [int(z) for z in self.zero_point],
            "quantized_dimension": int(self.quantized_dimension),
        }


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def _options(builder: flatbuffers.Builder, table: str, fields: dict) -> int:
    """Builds a builtin options table from snake_case `fields`."""
    mod = importlib.import_module(f"tflite.{table}")
    vectors = {}
    for key, value in fields.items():
        if isinstance(value, (list, tuple)):
            vectors[key] = builder.CreateNumpyVector(np.asarray(value, np.int32))
    getattr(mod, f"{table}Start")(builder)
    for key, value in fields.items():
        adder = getattr(mod, f"{table}Add{_camel(key)}")
        adder(builder, vectors.get(key, value))
    return getattr(mod, f"{table}End")(builder)


def _aligned_bytes(builder: flatbuffers.Builder, payload: bytes, alignment: int = 16) -> int:
    builder.StartVector(1, len(payload), alignment)
    builder.head = builder.head - len(payload)
    builder.Bytes[builder.head : builder.head + len(payload)] = payload
    return builder.EndVector(len(payload))


@dataclass
class Op:
    """One operator of a graph: `op` is a builtin name or "CUSTOM:<name>" (with its
    `custom_options` bytes); `inputs`/`outputs` index the graph's tensors (-1: an
    omitted optional input)."""

    op: str
    options: dict
    inputs: list[int]
    outputs: list[int]
    custom_options: bytes | None = None


def build_model(
    op: str,
    options: dict,
    inputs: list[Tensor | None],
    outputs: list[Tensor],
    description: str = "ferrite op golden",
    custom_options: bytes | None = None,
) -> bytes:
    """Serializes a model with one subgraph holding one `op` node.

    `inputs` are the operator inputs in TFLite order (None: an omitted optional input,
    written as -1). Every non-constant input becomes a subgraph input, every output a
    subgraph output. Output tensors must have their shapes set. A custom operator is
    `op="CUSTOM:<name>"` with its `custom_options` bytes.
    """
    tensors: list[Tensor] = []
    op_inputs: list[int] = []
    for t in inputs:
        if t is None:
            op_inputs.append(-1)
        else:
            op_inputs.append(len(tensors))
            tensors.append(t)
    op_outputs = []
    for t in outputs:
        op_outputs.append(len(tensors))
        tensors.append(t)
    graph_inputs = [
        i
        for i, t in zip(op_inputs, inputs)
        if t is not None and not t.is_const and not t.flags.get("variable")
    ]
    node = Op(op, options, op_inputs, op_outputs, custom_options)
    return build_graph(tensors, [node], graph_inputs, op_outputs, description)


def build_graph(
    tensors: list[Tensor],
    ops: list[Op],
    graph_inputs: list[int],
    graph_outputs: list[int],
    description: str = "ferrite test model",
) -> bytes:
    """Serializes a model with one subgraph: `tensors` (constants carry their data),
    `ops` in execution order, and the subgraph's input and output tensor indices."""
    b = flatbuffers.Builder(4096)

    # Buffers: 0 is the empty sentinel, then one per constant.
    buffer_data: list[bytes] = [b""]
    buffer_of: list[int] = []
    for t in tensors:
        if t.is_const:
            arr = np.ascontiguousarray(np.asarray(t.data, NUMPY_TYPES[t.dtype]))
            buffer_of.append(len(buffer_data))
            buffer_data.append(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
        else:
            buffer_of.append(0)
    buffer_offsets = []
    for payload in buffer_data:
        data_off = _aligned_bytes(b, payload) if payload else None
        tflite.BufferStart(b)
        if data_off is not None:
            tflite.BufferAddData(b, data_off)
        buffer_offsets.append(tflite.BufferEnd(b))

    tensor_offsets = []
    for t, buf in zip(tensors, buffer_of):
        if t.shape is None:
            raise ValueError(f"tensor {t.name} has no shape")
        shape_off = b.CreateNumpyVector(np.asarray(t.shape, np.int32))
        name_off = b.CreateString(t.name)
        quant_off = None
        if t.quantized:
            scale_off = b.CreateNumpyVector(np.asarray(t.scale, np.float32).reshape(-1))
            zp_off = b.CreateNumpyVector(np.asarray(t.zero_point, np.int64).reshape(-1))
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, scale_off)
            tflite.QuantizationParametersAddZeroPoint(b, zp_off)
            tflite.QuantizationParametersAddQuantizedDimension(b, t.quantized_dimension)
            quant_off = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape_off)
        tflite.TensorAddType(b, TENSOR_TYPES[t.dtype])
        tflite.TensorAddBuffer(b, buf)
        tflite.TensorAddName(b, name_off)
        if quant_off is not None:
            tflite.TensorAddQuantization(b, quant_off)
        if t.flags.get("variable"):
            # State the op keeps across invocations (zero at the first).
            tflite.TensorAddIsVariable(b, True)
        tensor_offsets.append(tflite.TensorEnd(b))

    def int_vector(values):
        return b.CreateNumpyVector(np.asarray(values, np.int32))

    def table_vector(offsets):
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector(len(offsets))

    codes: list[str] = []
    operator_offs = []
    for node in ops:
        if node.op not in codes:
            codes.append(node.op)
        custom = node.op.startswith("CUSTOM:")
        table = None if custom else OPTIONS_TABLE[node.op]
        opt_off = _options(b, table, node.options) if table is not None else None
        custom_off = (
            b.CreateNumpyVector(np.frombuffer(node.custom_options, np.uint8))
            if node.custom_options
            else None
        )
        in_off = int_vector(node.inputs)
        out_off = int_vector(node.outputs)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, codes.index(node.op))
        tflite.OperatorAddInputs(b, in_off)
        tflite.OperatorAddOutputs(b, out_off)
        if opt_off is not None:
            tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, table))
            tflite.OperatorAddBuiltinOptions(b, opt_off)
        if custom_off is not None:
            tflite.OperatorAddCustomOptions(b, custom_off)
        operator_offs.append(tflite.OperatorEnd(b))

    tensors_vec = table_vector(tensor_offsets)
    ops_vec = table_vector(operator_offs)
    g_in = int_vector(graph_inputs)
    g_out = int_vector(graph_outputs)
    g_name = b.CreateString("main")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensors_vec)
    tflite.SubGraphAddInputs(b, g_in)
    tflite.SubGraphAddOutputs(b, g_out)
    tflite.SubGraphAddOperators(b, ops_vec)
    tflite.SubGraphAddName(b, g_name)
    subgraph_off = tflite.SubGraphEnd(b)

    opcode_offs = []
    for name in codes:
        custom = name[len("CUSTOM:"):] if name.startswith("CUSTOM:") else None
        code = getattr(tflite.BuiltinOperator, "CUSTOM" if custom is not None else name)
        custom_code_off = b.CreateString(custom) if custom is not None else None
        tflite.OperatorCodeStart(b)
        if custom_code_off is not None:
            tflite.OperatorCodeAddCustomCode(b, custom_code_off)
        # Codes below 127 also go in the deprecated int8 field, as the TFLite converter does.
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddVersion(b, MIN_VERSION.get(name, 1))
        opcode_offs.append(tflite.OperatorCodeEnd(b))

    codes_vec = table_vector(opcode_offs)
    subgraphs_vec = table_vector([subgraph_off])
    buffers_vec = table_vector(buffer_offsets)
    desc = b.CreateString(description)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes_vec)
    tflite.ModelAddSubgraphs(b, subgraphs_vec)
    tflite.ModelAddDescription(b, desc)
    tflite.ModelAddBuffers(b, buffers_vec)
    model_off = tflite.ModelEnd(b)
    b.Finish(model_off, file_identifier=b"TFL3")
    return bytes(b.Output())
