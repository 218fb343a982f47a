"""Writes extra conformance cases in the ONNX backend-test layout
(model.onnx + test_data_set_0/{input,output}_K.pb) to models/cache/onnx/extra/.

The backend node tests feed weights, scales and sizes as graph inputs, which a static
converter must reject; these cases make the same ops with constant initializers (as
exported models have them) so that Conv, pooling, Resize, BatchNormalization, Gemm and
the layout machinery are checked against onnxruntime (ORT_DISABLE_ALL, CPU).

Usage: models/cache/onnx-venv/bin/python models/onnx/make_extra_tests.py
"""
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

here = os.path.dirname(os.path.abspath(__file__))
out_root = os.path.join(here, "..", "cache", "onnx", "extra")
rng = np.random.default_rng(7)


def save(name, nodes, inputs, outputs, inits, opset=13):
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    write_case(name, model, inputs)


def write_case(name, model, inputs, optimized=False):
    """Writes `model` and onnxruntime's outputs on random inputs as a test case
    (by default with graph optimizations off: each node as written; `optimized`:
    as deployed, QDQ groups fused into onnxruntime's int8 kernels)."""
    d = os.path.join(out_root, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in inputs}
    outs = sess.run(None, feeds)
    for k, (n, _) in enumerate(inputs):
        onnx.save_tensor(numpy_helper.from_array(feeds[n]), os.path.join(d, "test_data_set_0", f"input_{k}.pb"))
    for k, o in enumerate(outs):
        onnx.save_tensor(numpy_helper.from_array(o), os.path.join(d, "test_data_set_0", f"output_{k}.pb"))


def w(*shape):
    return (rng.standard_normal(shape) * 0.5).astype(np.float32)


def conv(name, x_shape, w_shape, **attrs):
    save(name, [helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)], [("x", x_shape)], ["y"],
         {"w": w(*w_shape), "b": w(w_shape[0])})


conv("conv_3x3_pads", [1, 3, 9, 9], [4, 3, 3, 3], pads=[1, 1, 1, 1])
conv("conv_asymmetric_pads_strides", [1, 3, 10, 9], [5, 3, 3, 2], pads=[0, 1, 2, 0], strides=[2, 3])
conv("conv_dilations", [1, 2, 11, 11], [3, 2, 3, 3], dilations=[2, 3], pads=[2, 1, 2, 1])
conv("conv_groups", [1, 6, 8, 8], [4, 3, 3, 3], group=2, pads=[1, 1, 1, 1])
conv("conv_depthwise_multiplier", [1, 3, 8, 8], [6, 1, 3, 3], group=3, strides=[2, 2], pads=[1, 1, 1, 1])
conv("conv_same_upper", [1, 2, 7, 8], [3, 2, 3, 4], auto_pad="SAME_UPPER", strides=[2, 2])
conv("conv_same_lower", [1, 2, 7, 8], [3, 2, 4, 3], auto_pad="SAME_LOWER")
conv("conv_valid", [2, 3, 6, 6], [2, 3, 3, 3], auto_pad="VALID")

for name, attrs in [
    ("maxpool_ceil", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    ("maxpool_pads", dict(kernel_shape=[3, 3], strides=[1, 2], pads=[1, 0, 2, 1])),
    ("averagepool_exclude_pad", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("averagepool_include_pad", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)),
    ("averagepool_ceil", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
]:
    op = "MaxPool" if name.startswith("max") else "AveragePool"
    save(name, [helper.make_node(op, ["x"], ["y"], **attrs)], [("x", [1, 3, 9, 10])], ["y"], {})

save("conv_bn_relu_gap_gemm",
     [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
      helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["bn"], epsilon=1e-3),
      helper.make_node("Relu", ["bn"], ["r"]),
      helper.make_node("GlobalAveragePool", ["r"], ["p"]),
      helper.make_node("Flatten", ["p"], ["f"]),
      helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1, alpha=0.5, beta=2.0)],
     [("x", [2, 3, 8, 8])], ["y"],
     {"w": w(8, 3, 3, 3), "g": w(8), "b": w(8), "m": w(8), "v": np.abs(w(8)) + 0.1,
      "fw": w(5, 8), "fb": w(5)})

save("conv_add_concat_transpose",
     [helper.make_node("Conv", ["x", "w1"], ["a"]),
      helper.make_node("Conv", ["x", "w2"], ["b"]),
      helper.make_node("Add", ["a", "bias"], ["a2"]),
      helper.make_node("Concat", ["a2", "b"], ["c"], axis=1),
      helper.make_node("Clip", ["c", "lo", "hi"], ["d"]),
      helper.make_node("Transpose", ["d"], ["y"], perm=[0, 2, 3, 1])],
     [("x", [1, 4, 5, 6])], ["y"],
     {"w1": w(3, 4, 1, 1), "w2": w(2, 4, 3, 3)[:, :, :1, :1].copy(), "bias": w(3, 1, 1),
      "lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32)})

save("pad_conv_softmax_axis1",
     [helper.make_node("Pad", ["x", "pads"], ["p"]),
      helper.make_node("Conv", ["p", "w"], ["c"]),
      helper.make_node("Softmax", ["c"], ["y"], axis=1)],
     [("x", [1, 2, 5, 5])], ["y"],
     {"pads": np.array([0, 0, 1, 2, 0, 0, 1, 0], np.int64), "w": w(4, 2, 3, 3)})

for name, mode, coord, nmode, scales in [
    ("resize_linear_half_pixel_up2", "linear", "half_pixel", None, [1, 1, 2, 2]),
    ("resize_linear_half_pixel_down2", "linear", "half_pixel", None, [1, 1, 0.5, 0.5]),
    ("resize_linear_align_corners_up2", "linear", "align_corners", None, [1, 1, 2, 2]),
    ("resize_linear_asymmetric_up3", "linear", "asymmetric", None, [1, 1, 3, 3]),
    ("resize_linear_pytorch_half_pixel_up2", "linear", "pytorch_half_pixel", None, [1, 1, 2, 2]),
    ("resize_nearest_asymmetric_floor_up3", "nearest", "asymmetric", "floor", [1, 1, 3, 3]),
    ("resize_nearest_asymmetric_floor_down2", "nearest", "asymmetric", "floor", [1, 1, 0.5, 0.5]),
    ("resize_nearest_asymmetric_default_up2", "nearest", "asymmetric", "round_prefer_floor", [1, 1, 2, 2]),
]:
    save(name,
         [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode=mode,
                           coordinate_transformation_mode=coord, nearest_mode=nmode or "round_prefer_floor")],
         [("x", [1, 2, 4, 6])], ["y"], {"scales": np.array(scales, np.float32)})
save("upsample_nearest_opset9", [helper.make_node("Upsample", ["x", "scales"], ["y"], mode="nearest")],
     [("x", [1, 2, 3, 4])], ["y"], {"scales": np.array([1, 1, 2, 3], np.float32)}, opset=9)

save("layernorm_last_axis",
     [helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1, epsilon=1e-5)],
     [("x", [2, 3, 8])], ["y"], {"g": w(8), "b": w(8)}, opset=17)
save("matmul_batched_runtime",
     [helper.make_node("MatMul", ["x", "z"], ["y"])], [("x", [2, 1, 3, 4]), ("z", [3, 4, 5])], ["y"], {})
save("matmul_const_3d", [helper.make_node("MatMul", ["x", "m"], ["y"])], [("x", [2, 3, 4])], ["y"], {"m": w(4, 6)})
for name, attrs, wshape in [
    ("convtranspose_stride2", dict(strides=[2, 2]), [3, 4, 3, 3]),
    ("convtranspose_pads_output_padding", dict(strides=[2, 3], pads=[1, 0, 2, 1], output_padding=[1, 2]), [3, 2, 3, 4]),
    ("convtranspose_groups_dilations", dict(group=3, dilations=[2, 1], pads=[1, 1, 1, 1]), [3, 2, 3, 3]),
]:
    save(name, [helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **attrs)],
         [("x", [1, 3, 5, 4])], ["y"], {"w": w(*wshape), "b": w(wshape[1] * attrs.get("group", 1))})
for mode in ["reflect", "edge"]:
    save(f"pad_{mode}", [helper.make_node("Pad", ["x", "pads"], ["y"], mode=mode)],
         [("x", [1, 2, 4, 5])], ["y"], {"pads": np.array([0, 0, 2, 1, 0, 1, 3, 2], np.int64)})
    save(f"pad_{mode}_then_conv",
         [helper.make_node("Pad", ["x", "pads"], ["p"], mode=mode), helper.make_node("Conv", ["p", "w"], ["y"])],
         [("x", [1, 2, 6, 6])], ["y"], {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "w": w(3, 2, 3, 3)})

# Instance normalization (style transfer, audio front ends) after a conv
# (the NHWC image), on a plain 3-D input, and in the pattern PyTorch exports
# GroupNorm as: reshape to [N, groups, -1], instance norm, reshape back, affine.
save("conv_instancenorm_relu",
     [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
      helper.make_node("InstanceNormalization", ["c", "s", "b"], ["n"], epsilon=1e-3),
      helper.make_node("Relu", ["n"], ["y"])],
     [("x", [2, 3, 7, 6])], ["y"], {"w": w(5, 3, 3, 3), "s": w(5), "b": w(5)})
save("instancenorm_3d", [helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"])],
     [("x", [2, 4, 9])], ["y"], {"s": w(4), "b": w(4)})
save("groupnorm_as_exported",
     [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
      helper.make_node("Reshape", ["c", "grouped"], ["g"]),
      helper.make_node("InstanceNormalization", ["g", "ones", "zeros"], ["n"]),
      helper.make_node("Reshape", ["n", "full"], ["r"]),
      helper.make_node("Mul", ["r", "gamma"], ["m"]),
      helper.make_node("Add", ["m", "beta"], ["y"])],
     [("x", [1, 3, 6, 6])], ["y"],
     {"w": w(8, 3, 3, 3), "grouped": np.array([1, 4, -1], np.int64), "ones": np.ones(4, np.float32),
      "zeros": np.zeros(4, np.float32), "full": np.array([1, 8, 6, 6], np.int64),
      "gamma": w(8, 1, 1), "beta": w(8, 1, 1)})

# Local response normalization as GoogLeNet/AlexNet-era models have it: after a
# conv (the NHWC image) and on a model input (onnxruntime takes 4-D inputs and
# odd sizes only).
save("conv_relu_lrn",
     [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
      helper.make_node("Relu", ["c"], ["r"]),
      helper.make_node("LRN", ["r"], ["y"], size=5, alpha=1e-2, beta=0.75, bias=1.0)],
     [("x", [1, 3, 6, 5])], ["y"], {"w": w(7, 3, 3, 3)})
save("lrn_input", [helper.make_node("LRN", ["x"], ["y"], size=3, alpha=0.3, beta=0.5, bias=2.0)],
     [("x", [2, 6, 5, 4])], ["y"], {})

# GroupNormalization as opset 21 defines it (one scale and bias per channel),
# after a conv.
save("conv_groupnormalization_opset21",
     [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
      helper.make_node("GroupNormalization", ["c", "s", "b"], ["y"], num_groups=3, epsilon=1e-4)],
     [("x", [2, 2, 5, 4])], ["y"], {"w": w(6, 2, 3, 3), "s": w(6), "b": w(6)}, opset=21)
# ... and as opset 18 did (one per group), on a 3-D input.
save("groupnormalization_opset18_per_group",
     [helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2)],
     [("x", [1, 4, 7])], ["y"], {"s": w(2), "b": w(2)}, opset=18)

# Tile with constant repeats: on an input, and on a conv output (NHWC inside).
save("tile_input", [helper.make_node("Tile", ["x", "reps"], ["y"])], [("x", [2, 3, 4])], ["y"],
     {"reps": np.array([1, 3, 2], np.int64)})
save("conv_tile", [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Tile", ["c", "reps"], ["y"])],
     [("x", [1, 2, 3, 3])], ["y"], {"w": w(3, 2, 1, 1), "reps": np.array([2, 1, 1, 2], np.int64)})

# 1-D convolution and pooling (audio, sensor and text CNNs): input [N, C, L].
conv("conv1d_pads_strides", [1, 3, 20], [4, 3, 5], pads=[2, 1], strides=[2])
conv("conv1d_groups_dilations", [2, 6, 17], [6, 2, 3], group=3, dilations=[2], pads=[2, 2])
conv("conv1d_depthwise_same_upper", [1, 4, 12], [8, 1, 3], group=4, auto_pad="SAME_UPPER", strides=[2])
conv("conv1d_kernel1", [1, 5, 9], [3, 5, 1])
for name, attrs in [
    ("maxpool1d_pads_ceil", dict(kernel_shape=[3], strides=[2], pads=[1, 1], ceil_mode=1)),
    ("averagepool1d_exclude_pad", dict(kernel_shape=[4], strides=[3], pads=[2, 1])),
    ("averagepool1d_include_pad", dict(kernel_shape=[3], strides=[2], pads=[1, 1], count_include_pad=1)),
]:
    op = "MaxPool" if name.startswith("max") else "AveragePool"
    save(name, [helper.make_node(op, ["x"], ["y"], **attrs)], [("x", [1, 3, 21])], ["y"], {})
for op in ["GlobalAveragePool", "GlobalMaxPool"]:
    save(f"{op.lower()}_1d", [helper.make_node(op, ["x"], ["y"])], [("x", [2, 5, 11])], ["y"], {})
save("convtranspose1d_stride2_pads", [helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2],
                                                       pads=[1, 0], output_padding=[1])],
     [("x", [1, 3, 7])], ["y"], {"w": w(3, 2, 4), "b": w(2)})

# A 1-D CNN as exporters write it: conv + batch norm + ReLU blocks, a residual
# add, max pooling, a channel concat, reflect padding, then the layout-sensitive
# ops on the signal (transpose to [N, L, C], layer norm over channels,
# softmax over channels) and a mean over time into a classifier.
signal_net = [
    helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[2, 2]),
    helper.make_node("BatchNormalization", ["c1", "g1", "be1", "m1", "v1"], ["n1"]),
    helper.make_node("Relu", ["n1"], ["r1"]),
    helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2], strides=[2]),
    helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1], group=8),
    helper.make_node("Add", ["c2", "p1"], ["res"]),
    helper.make_node("Conv", ["res", "w3"], ["c3"]),
    helper.make_node("Concat", ["res", "c3"], ["cat"], axis=1),
    helper.make_node("Pad", ["cat", "pads"], ["padded"], mode="reflect"),
    helper.make_node("Conv", ["padded", "w4", "b4"], ["c4"], dilations=[2]),
    helper.make_node("Sigmoid", ["c4"], ["s4"]),
    helper.make_node("Mul", ["c4", "s4"], ["silu"]),
    helper.make_node("Softmax", ["silu"], ["attn"], axis=1),
    helper.make_node("Mul", ["attn", "silu"], ["weighted"]),
    helper.make_node("Transpose", ["weighted"], ["nlc"], perm=[0, 2, 1]),
    helper.make_node("LayerNormalization", ["nlc", "lg", "lb"], ["ln"], axis=-1),
    helper.make_node("ReduceMean", ["silu"], ["mean"], axes=[2], keepdims=0),
    helper.make_node("Gemm", ["mean", "fw", "fb"], ["logits"], transB=1),
    helper.make_node("Flatten", ["weighted"], ["flat"]),
]
signal_inits = {
    "w1": w(8, 2, 5), "b1": w(8), "g1": w(8), "be1": w(8), "m1": w(8), "v1": np.abs(w(8)) + 0.1,
    "w2": w(8, 1, 3), "b2": w(8), "w3": w(4, 8, 1), "pads": np.array([0, 0, 2, 0, 0, 2], np.int64),
    "w4": w(6, 12, 3), "b4": w(6), "lg": w(6), "lb": w(6), "fw": w(3, 6), "fb": w(3),
}
save("signal_cnn_1d", signal_net, [("x", [2, 2, 32])], ["logits", "ln", "flat"], signal_inits, opset=17)

# The same kind of network quantized by onnxruntime's quantize_static (QDQ,
# per-channel int8 weights, int8 activations): 1-D convs, pooling and the
# residual add become int8 ops, bit-identical to onnxruntime's.
def qdq_signal_net(seed):
    global rng
    saved, rng = rng, np.random.default_rng(seed)  # its own weights and data, whatever runs before
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2], strides=[2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[2, 2], group=6),
        helper.make_node("Add", ["c2", "p1"], ["res"]),
        helper.make_node("Conv", ["res", "w3", "b3"], ["c3"], strides=[2]),
        helper.make_node("Relu", ["c3"], ["r3"]),
        helper.make_node("AveragePool", ["r3"], ["a3"], kernel_shape=[2], strides=[2]),
        helper.make_node("GlobalAveragePool", ["a3"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1),
    ]
    inits = {"w1": w(6, 3, 3), "b1": w(6), "w2": w(6, 1, 5), "b2": w(6), "w3": w(8, 6, 3), "b3": w(8),
             "fw": w(4, 8), "fb": w(4)}
    graph = helper.make_graph(
        nodes, "qdq_signal",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 40])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    work = os.path.join(out_root, "..", "extra-work")
    src = os.path.join(work, "qdq_signal_float.onnx")
    dst = os.path.join(work, "qdq_signal_int8.onnx")
    os.makedirs(work, exist_ok=True)
    onnx.save(model, src)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.data = iter([{"x": rng.standard_normal((1, 3, 40)).astype(np.float32)} for _ in range(16)])

        def get_next(self):
            return next(self.data, None)

    quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    write_case(f"qdq_signal_cnn_1d_seed{seed}", onnx.load(dst), [("x", [1, 3, 40])], optimized=True)
    rng = saved


for seed in (1, 2, 3):
    qdq_signal_net(seed)

# Operator-form int8 ops (as onnxruntime's quantize_static makes them with
# QuantFormat.QOperator), between a QuantizeLinear of the float input and a
# DequantizeLinear of the result, with constant weights and scales; the
# reference is onnxruntime's own int8 arithmetic.
def qconst(v, dtype):
    return np.array(v, dtype)


def int8_weights(shape, per_axis=None):
    wf = w(*shape)
    if per_axis is None:
        scale = np.float32(np.abs(wf).max() / 127)
        q = np.clip(np.round(wf / scale), -127, 127).astype(np.int8)
        return q, np.array(scale, np.float32), np.array(0, np.int8)
    axes = tuple(i for i in range(len(shape)) if i != per_axis)
    scale = (np.abs(wf).max(axis=axes) / 127).astype(np.float32)
    bshape = [1] * len(shape)
    bshape[per_axis] = -1
    q = np.clip(np.round(wf / scale.reshape(bshape)), -127, 127).astype(np.int8)
    return q, scale, np.zeros(scale.shape, np.int8)


for name, act_t, x_shape, w_shape, attrs, per_channel in [
    ("qlinearconv_uint8_per_channel_bias", np.uint8, [1, 3, 9, 9], [4, 3, 3, 3], dict(pads=[1, 1, 1, 1]), True),
    ("qlinearconv_int8_strided", np.int8, [1, 4, 10, 9], [5, 4, 3, 3], dict(strides=[2, 2], pads=[1, 0, 1, 1]), False),
    ("qlinearconv_uint8_depthwise", np.uint8, [1, 6, 8, 8], [6, 1, 3, 3], dict(group=6, pads=[1, 1, 1, 1]), True),
]:
    zp = (lambda v: np.array(v, act_t))
    wq, ws, wz = int8_weights(w_shape, 0 if per_channel else None)
    xs, ys = np.float32(0.02), np.float32(0.05)
    bias = rng.integers(-2000, 2000, w_shape[0]).astype(np.int32)
    save(name,
         [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
          helper.make_node("QLinearConv", ["xq", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["yq"], **attrs),
          helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])],
         [("x", x_shape)], ["y"],
         {"xs": np.array(xs), "xz": zp(128 if act_t == np.uint8 else -3), "w": wq, "ws": ws, "wz": wz,
          "ys": np.array(ys), "yz": zp(120 if act_t == np.uint8 else 5), "b": bias})

for name, act_t, a_shape, b_shape, per_column in [
    ("qlinearmatmul_uint8_2d", np.uint8, [3, 8], [8, 5], False),
    ("qlinearmatmul_int8_3d_per_column", np.int8, [2, 3, 8], [8, 6], True),
]:
    zp = (lambda v: np.array(v, act_t))
    bq, bs, bz = int8_weights(b_shape, 1 if per_column else None)
    save(name,
         [helper.make_node("QuantizeLinear", ["a", "as", "az"], ["aq"]),
          helper.make_node("QLinearMatMul", ["aq", "as", "az", "b", "bs", "bz", "ys", "yz"], ["yq"]),
          helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])],
         [("a", a_shape)], ["y"],
         {"as": np.array(np.float32(0.03)), "az": zp(110 if act_t == np.uint8 else 2), "b": bq, "bs": bs,
          "bz": bz, "ys": np.array(np.float32(0.07)), "yz": zp(131 if act_t == np.uint8 else -1)})

# Operators lowered onto several runtime ops, with the constants exported
# models give them (the node tests feed these as graph inputs) and after a
# conv (the NHWC image inside).
save("onehot_const_depth_axis1",
     [helper.make_node("Mul", ["x", "two"], ["s"]),
      helper.make_node("OneHot", ["s", "depth", "values"], ["y"], axis=1)],
     [("x", [2, 3])], ["y"],
     {"two": np.array(2.0, np.float32), "depth": np.array(4.0, np.float32),
      "values": np.array([0.25, 3.0], np.float32)}, opset=11)
save("onehot_const_depth_last_axis",
     [helper.make_node("Mul", ["x", "three"], ["s"]),
      helper.make_node("OneHot", ["s", "depth", "values"], ["y"])],
     [("x", [5])], ["y"],
     {"three": np.array(3.0, np.float32), "depth": np.array(5.0, np.float32),
      "values": np.array([-1.0, 1.0], np.float32)}, opset=11)
save("gather_elements_const_indices",
     [helper.make_node("GatherElements", ["x", "idx"], ["y"], axis=1)],
     [("x", [2, 4, 3])], ["y"], {"idx": rng.integers(-4, 4, (2, 5, 3)).astype(np.int64)})
save("conv_gather_elements_axis_last",
     [helper.make_node("Conv", ["x", "w"], ["c"]),
      helper.make_node("GatherElements", ["c", "idx"], ["y"], axis=3)],
     [("x", [1, 2, 4, 5])], ["y"], {"w": w(3, 2, 1, 1), "idx": rng.integers(0, 5, (1, 3, 2, 5)).astype(np.int64)})
save("conv_trilu_lower_const_k",
     [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Trilu", ["c", "k"], ["y"], upper=0)],
     [("x", [1, 2, 4, 6])], ["y"], {"w": w(3, 2, 1, 1), "k": np.array(1, np.int64)}, opset=14)
save("gemm_const_b_matrix_c_trans_a",
     [helper.make_node("Gemm", ["x", "b", "c"], ["y"], transA=1, alpha=0.5, beta=-2.0)],
     [("x", [4, 3])], ["y"], {"b": w(4, 5), "c": w(3, 5)})
save("conv_lppool_p3",
     [helper.make_node("Conv", ["x", "w"], ["c"]),
      helper.make_node("LpPool", ["c"], ["y"], kernel_shape=[2, 3], strides=[2, 1], pads=[1, 0, 0, 1], p=3)],
     [("x", [1, 2, 6, 7])], ["y"], {"w": w(3, 2, 1, 1)})
save("conv_hardmax_channels",
     [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Hardmax", ["c"], ["y"], axis=1)],
     [("x", [1, 2, 3, 4])], ["y"], {"w": w(5, 2, 1, 1)})
save("hardmax_opset11_flattened", [helper.make_node("Hardmax", ["x"], ["y"], axis=1)],
     [("x", [2, 3, 4])], ["y"], {}, opset=11)
save("conv_pixel_shuffle_crd",
     [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
      helper.make_node("DepthToSpace", ["c"], ["y"], blocksize=2, mode="CRD")],
     [("x", [1, 3, 4, 5])], ["y"], {"w": w(8, 3, 3, 3)})
save("conv_mvn", [helper.make_node("Conv", ["x", "w"], ["c"]),
                  helper.make_node("MeanVarianceNormalization", ["c"], ["y"], axes=[2, 3])],
     [("x", [2, 2, 4, 5])], ["y"], {"w": w(3, 2, 1, 1)})

# Recurrent layers with constant weights (FULLY_CONNECTED inside), as
# PyTorch exports them: LSTM (bidirectional, peepholes, initial states,
# clip), GRU in both reset orders (PyTorch's is linear_before_reset=1),
# RNN backwards with ReLU, and an LSTM whose Y feeds a classifier.
H = 5
save("lstm_bidirectional_peepholes_initial_clip",
     [helper.make_node("LSTM", ["x", "w", "r", "b", "", "h0", "c0", "p"], ["y", "yh", "yc"],
                       hidden_size=H, direction="bidirectional", clip=2.5)],
     [("x", [6, 2, 3]), ("h0", [2, 2, H]), ("c0", [2, 2, H])], ["y", "yh", "yc"],
     {"w": w(2, 4 * H, 3), "r": w(2, 4 * H, H), "b": w(2, 8 * H), "p": w(2, 3 * H)}, opset=14)
for lbr in [0, 1]:
    save(f"gru_linear_before_reset_{lbr}",
         [helper.make_node("GRU", ["x", "w", "r", "b"], ["y", "yh"], hidden_size=H, linear_before_reset=lbr)],
         [("x", [7, 3, 4])], ["y", "yh"],
         {"w": w(1, 3 * H, 4), "r": w(1, 3 * H, H), "b": w(1, 6 * H)}, opset=14)
save("gru_lbr_reverse_initial_h",
     [helper.make_node("GRU", ["x", "w", "r", "b", "", "h0"], ["", "yh"], hidden_size=H,
                       linear_before_reset=1, direction="reverse")],
     [("x", [4, 2, 3]), ("h0", [1, 2, H])], ["yh"],
     {"w": w(1, 3 * H, 3), "r": w(1, 3 * H, H), "b": w(1, 6 * H)}, opset=14)
save("rnn_reverse_relu",
     [helper.make_node("RNN", ["x", "w", "r", "b"], ["y"], hidden_size=H, direction="reverse",
                       activations=["Relu"])],
     [("x", [5, 1, 3])], ["y"], {"w": w(1, H, 3), "r": w(1, H, H), "b": w(1, 2 * H)}, opset=14)
save("lstm_squeeze_classifier",
     [helper.make_node("LSTM", ["x", "w", "r", "b"], ["y", "yh"], hidden_size=8),
      helper.make_node("Squeeze", ["yh", "axes"], ["last"]),
      helper.make_node("Gemm", ["last", "fw", "fb"], ["logits"], transB=1),
      helper.make_node("Squeeze", ["y", "axes1"], ["seq"]),
      helper.make_node("ReduceMean", ["seq"], ["pooled"], axes=[0], keepdims=0)],
     [("x", [10, 1, 6])], ["logits", "pooled"],
     {"w": w(1, 32, 6), "r": w(1, 32, 8), "b": w(1, 64), "axes": np.array([0], np.int64),
      "axes1": np.array([1], np.int64), "fw": w(3, 8), "fb": w(3)}, opset=13)

# Scatters with constant indices, as exporters write `x[idx] = y`: on run-time
# data and updates (a WHERE over a gathered copy), and folded on constants
# with a reduction (the masks Swin builds), then used.
save("scatternd_runtime_data_const_indices",
     [helper.make_node("ScatterND", ["x", "idx", "u"], ["y"])],
     [("x", [4, 5, 3]), ("u", [2, 5, 3])], ["y"], {"idx": np.array([[3], [-4]], np.int64)}, opset=18)
save("scatternd_tuples_const_updates",
     [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("ScatterND", ["r", "idx", "u"], ["y"])],
     [("x", [3, 4, 2])], ["y"], {"idx": np.array([[0, 1], [2, 3], [1, 0]], np.int64), "u": w(3, 2)}, opset=18)
save("scatter_elements_runtime_axis1",
     [helper.make_node("ScatterElements", ["x", "idx", "u"], ["y"], axis=1)],
     [("x", [3, 5]), ("u", [3, 2])], ["y"], {"idx": np.array([[0, 4], [-1, 2], [1, 3]], np.int64)}, opset=18)
save("scatter_const_fold_reductions_then_add",
     [helper.make_node("ScatterND", ["z", "idx", "u"], ["m"], reduction="add"),
      helper.make_node("ScatterElements", ["m", "eidx", "eu"], ["m2"], axis=0, reduction="max"),
      helper.make_node("Add", ["x", "m2"], ["y"])],
     [("x", [4, 3])], ["y"],
     {"z": np.zeros((4, 3), np.float32), "idx": np.array([[1], [1], [3]], np.int64), "u": w(3, 3),
      "eidx": np.array([[0, 2, 2], [0, 2, 3]], np.int64), "eu": w(2, 3)}, opset=18)

# Einsum as exporters write it (attention in MaxViT, torch.einsum in custom
# layers): batched products, a constant operand, transposes, sums, inner and
# outer products, and a letter only one operand has.
for name, eq, shapes, const in [
    ("einsum_attention_scores", "B G H I D, B G H J D -> B G H I J", [[1, 2, 3, 4, 5], [1, 2, 3, 6, 5]], None),
    ("einsum_attention_values", "bhij,bhjd->bhid", [[2, 3, 4, 5], [2, 3, 5, 6]], None),
    ("einsum_const_weight", "bti,oi->bto", [[2, 3, 4]], [5, 4]),
    ("einsum_transpose_implicit", "ijk", [[2, 3, 4]], None),
    ("einsum_permute_explicit", "ijk->kij", [[2, 3, 4]], None),
    ("einsum_sum_all", "ij->", [[3, 4]], None),
    ("einsum_inner", "i,i", [[7], [7]], None),
    ("einsum_outer", "i,j->ij", [[3], [4]], None),
    ("einsum_one_sided_sum", "ij,kj->i", [[3, 4], [5, 4]], None),
]:
    names = [f"x{k}" for k in range(len(shapes))]
    inits = {}
    if const is not None:
        names.append("w")
        inits["w"] = w(*const)
    save(name, [helper.make_node("Einsum", names, ["y"], equation=eq)],
         [(f"x{k}", sh) for k, sh in enumerate(shapes)], ["y"], inits, opset=12)

print("extra tests in", os.path.abspath(out_root))
