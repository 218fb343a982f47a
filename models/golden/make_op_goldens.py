#!/usr/bin/env python3
"""Single-operator golden cases from LiteRT's reference kernels.

For each operator in OPS this script draws many random configurations (seeded), writes a
one-node .tflite model for each with the flatbuffers builder (see tflite_builder.py), runs
it with LiteRT's BUILTIN_REF op resolver (the reference kernels, which Ferrite's int8
kernels must equal bit for bit) and stores, for case NAME (e.g. `conv_2d.i8.007`):

    NAME.tflite            the model
    NAME.in<k>.npy         the k-th subgraph input (plain .npy, little-endian, C order)
    NAME.out<k>.npy        the k-th output
    index.json             every case: name, op, dtype, model, inputs, outputs, options

dtype tags: `f32` (float model), `i8` (full-integer: int8 activations with asymmetric
per-tensor qparams, per-channel symmetric int8 weights, int32 bias with scale
input_scale * weight_scale[c]); QUANTIZE/DEQUANTIZE use `f32_i8`, `i8_i8`, `i8_f32`,
`u8_i8` and `u8_f32`.

int8 output qparams are "calibrated": the same operator is first built in float with the
dequantized constants and run on the dequantized inputs, and the output qparams cover the
observed range (sometimes narrowed so that saturation is exercised). Ops whose TFLite
Prepare demands it keep the input qparams (pooling, pad, reshape, concatenation...) or use
the fixed output qparams (LOGISTIC, SOFTMAX: 1/256, -128; TANH: 1/128, 0).

The output is deterministic: re-running rewrites identical files. Usage:

    python models/golden/make_op_goldens.py [--out tests/fixtures/ops] [--only conv_2d]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tflite_builder import NUMPY_TYPES, TENSOR_TYPES, Tensor, build_model  # noqa: E402

from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BASE_SEED = 20240611

PADDING = {"SAME": 0, "VALID": 1}
ACT = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4}
MAX_ELEMS = 1536


class Retry(Exception):
    """The drawn configuration is unusable (e.g. an empty output); draw another."""


@dataclass
class Case:
    """One single-operator configuration before it is run."""

    op: str
    options: dict
    inputs: list[Tensor | None]
    outputs: list[Tensor]
    params: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# Tensor helpers


def qact(rng) -> tuple[np.float32, int]:
    """Random asymmetric int8 activation qparams, extremes of the zero-point included."""
    scale = np.float32(math.exp(rng.uniform(math.log(0.004), math.log(0.08))))
    r = rng.random()
    if r < 0.1:
        zp = -128
    elif r < 0.16:
        zp = 127
    elif r < 0.30:
        zp = 0
    else:
        zp = int(rng.integers(-128, 128))
    return scale, zp


def q_tensor(name, shape, scale, zp, dtype="i8") -> Tensor:
    return Tensor(
        name,
        dtype,
        tuple(int(d) for d in shape),
        scale=np.array([scale], np.float32),
        zero_point=np.array([zp], np.int64),
    )


def act_in(name, dt, shape, rng, vr=(-3.0, 3.0), q=None) -> Tensor:
    """A variable input: float with values drawn from `vr`, or int8 with qparams `q`."""
    shape = tuple(int(d) for d in shape)
    if dt == "f32":
        return Tensor(name, "f32", shape, value_range=vr)
    scale, zp = q if q is not None else qact(rng)
    return q_tensor(name, shape, scale, zp)


def qof(t: Tensor) -> tuple[np.float32, int]:
    return np.float32(t.scale[0]), int(t.zero_point[0])


def out_calib(dt, name="output") -> Tensor:
    """An output whose int8 qparams are derived from the float twin's range."""
    return Tensor(name, dt, None, flags={"calibrate": dt == "i8"})


def out_like(t: Tensor, name="output") -> Tensor:
    """An output with the same dtype and qparams as `t`."""
    if t.dtype == "f32":
        return Tensor(name, "f32", None)
    return Tensor(name, t.dtype, None, scale=t.scale.copy(), zero_point=t.zero_point.copy())


def out_fixed(dt, scale, zp, name="output") -> Tensor:
    if dt == "f32":
        return Tensor(name, "f32", None)
    return Tensor(
        name,
        "i8",
        None,
        scale=np.array([scale], np.float32),
        zero_point=np.array([zp], np.int64),
    )


def const_i32(name, values, shape=None) -> Tensor:
    arr = np.asarray(values, np.int32)
    if shape is not None:
        arr = arr.reshape(shape)
    return Tensor(name, "i32", tuple(arr.shape), data=arr)


def const_like(name, dt, data_f32, q=None) -> Tensor:
    """A constant operand: float data, or int8 data quantized with `q`."""
    data_f32 = np.asarray(data_f32, np.float32)
    if dt == "f32":
        return Tensor(name, "f32", tuple(data_f32.shape), data=data_f32)
    scale, zp = q
    data = np.clip(np.round(data_f32 / scale) + zp, -128, 127).astype(np.int8)
    t = q_tensor(name, data.shape, scale, zp)
    t.data = data
    return t


def input_std(x: Tensor) -> float:
    """Standard deviation of the random values that will feed `x` (as floats)."""
    if x.dtype == "i8":
        return float(x.scale[0]) * 255.0 / math.sqrt(12.0)
    lo, hi = x.value_range
    return (hi - lo) / math.sqrt(12.0)


def weights(name, dt, shape, rng, qdim, x: Tensor, fan_in: int, per_channel=True) -> Tensor:
    """Filter weights scaled so that the dot products over `fan_in` terms of input `x`
    have a standard deviation of about 2 (so fused activations clip some values, not
    all): float uniform, or symmetric int8 in [-127, 127] with per-channel (along `qdim`)
    or per-tensor scales and zero-points 0."""
    shape = tuple(int(d) for d in shape)
    target = 2.0 / (math.sqrt(fan_in) * input_std(x))
    if dt == "f32":
        a = target * math.sqrt(3.0) * rng.uniform(0.5, 2.0)
        return Tensor(name, "f32", shape, data=rng.uniform(-a, a, shape).astype(np.float32))
    data = rng.integers(-127, 128, shape).astype(np.int8)
    n = shape[qdim] if per_channel else 1
    scales = (target / 73.3 * np.exp(rng.uniform(math.log(0.5), math.log(2.0), n))).astype(
        np.float32
    )
    return Tensor(
        name,
        "i8",
        shape,
        data=data,
        scale=scales,
        zero_point=np.zeros(n, np.int64),
        quantized_dimension=qdim if per_channel else 0,
    )


def bias(name, dt, n, rng, x: Tensor, w: Tensor) -> Tensor:
    """Bias: float in [-1, 1], or int32 with scale input_scale * weight_scale[c]."""
    b = rng.uniform(-1, 1, n).astype(np.float32)
    if dt == "f32":
        return Tensor(name, "f32", (n,), data=b)
    w_scale = np.broadcast_to(w.scale, (n,)) if len(w.scale) == 1 else w.scale
    scales = (np.float64(x.scale[0]) * w_scale.astype(np.float64)).astype(np.float32)
    data = np.round(b / scales).astype(np.int32)
    if len(w.scale) == 1:
        scales = scales[:1]
    return Tensor(
        name,
        "i32",
        (n,),
        data=data,
        scale=scales,
        zero_point=np.zeros(len(scales), np.int64),
        quantized_dimension=0,
    )


def pick(rng, options):
    return options[int(rng.integers(len(options)))]


def pick_act(rng, p_none=0.4) -> str:
    if rng.random() < p_none:
        return "NONE"
    return pick(rng, ["RELU", "RELU6", "RELU_N1_TO_1"])


def rand_shape(rng, rank, lo=1, hi=6, cap=MAX_ELEMS) -> list[int]:
    shape = [int(rng.integers(lo, hi + 1)) for _ in range(rank)]
    while int(np.prod(shape)) > cap:
        i = int(np.argmax(shape))
        shape[i] = max(1, shape[i] // 2)
    return shape


def wide(rng, vr, p=0.2, factor=10.0):
    """Occasionally widen a float input range."""
    if rng.random() < p:
        return (vr[0] * factor, vr[1] * factor)
    return vr


# ---------------------------------------------------------------------------------------
# Operator generators: gen(rng, dt) -> Case


def gen_conv_2d(rng, dt):
    n = 2 if rng.random() < 0.15 else 1
    cin = pick(rng, [1, 2, 3, 4, 5, 8, 16])
    cout = pick(rng, [1, 2, 3, 4, 6, 8, 11, 16])
    kh = pick(rng, [1, 2, 3, 3, 5])
    kw = kh if rng.random() < 0.7 else pick(rng, [1, 2, 3])
    sh = pick(rng, [1, 1, 2, 3])
    sw = sh if rng.random() < 0.8 else pick(rng, [1, 2])
    dh = dw = 1
    if rng.random() < 0.25:
        dh = pick(rng, [2, 3])
        dw = dh if rng.random() < 0.7 else 1
    pad = pick(rng, ["SAME", "VALID"])
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    h = int(rng.integers(ekh if pad == "VALID" else 1, ekh + 9))
    w = int(rng.integers(ekw if pad == "VALID" else 1, ekw + 9))
    if n * h * w * cin > MAX_ELEMS or cout * kh * kw * cin > 2000:
        raise Retry("too large")
    act = pick_act(rng)
    x = act_in("input", dt, (n, h, w, cin), rng)
    wt = weights("filter", dt, (cout, kh, kw, cin), rng, 0, x, kh * kw * cin, rng.random() > 0.15)
    b = bias("bias", dt, cout, rng, x, wt)
    opts = dict(
        padding=PADDING[pad],
        stride_w=sw,
        stride_h=sh,
        fused_activation_function=ACT[act],
        dilation_w_factor=dw,
        dilation_h_factor=dh,
    )
    return Case("CONV_2D", opts, [x, wt, b], [out_calib(dt)], dict(padding=pad, activation=act))


def gen_transpose_conv(rng, dt):
    """TRANSPOSE_CONV (float only: Ferrite has no int8 transposed conv): the
    output size anywhere in the range that maps back onto the input size under
    the padding, which is how TFLite places the output."""
    n = 2 if rng.random() < 0.15 else 1
    cin = pick(rng, [1, 2, 3, 4, 8, 16])
    cout = pick(rng, [1, 2, 3, 5, 8, 16])
    kh = pick(rng, [1, 2, 3, 3, 4, 5])
    kw = kh if rng.random() < 0.7 else pick(rng, [1, 2, 3])
    sh = pick(rng, [1, 2, 2, 3])
    sw = sh if rng.random() < 0.8 else pick(rng, [1, 2])
    pad = pick(rng, ["SAME", "VALID"])
    h, w = int(rng.integers(1, 7)), int(rng.integers(1, 7))

    def out_size(i, k, s):
        lo, hi = ((i - 1) * s + 1, i * s) if pad == "SAME" else ((i - 1) * s + k, (i - 1) * s + k + s - 1)
        return int(rng.integers(lo, hi + 1))

    oh, ow = out_size(h, kh, sh), out_size(w, kw, sw)
    if n * h * w * cin > MAX_ELEMS or n * oh * ow * cout > 4 * MAX_ELEMS or cout * kh * kw * cin > 2000:
        raise Retry("too large")
    act = pick_act(rng)
    x = act_in("input", dt, (n, h, w, cin), rng)
    # Each output sums about (kh / sh) * (kw / sw) * cin products.
    fan_in = max(1, (kh // sh) * (kw // sw) * cin)
    wt = weights("filter", dt, (cout, kh, kw, cin), rng, 0, x, fan_in)
    inputs = [const_i32("output_shape", [n, oh, ow, cout]), wt, x]
    if rng.random() < 0.7:
        inputs.append(bias("bias", dt, cout, rng, x, wt))
    opts = dict(padding=PADDING[pad], stride_w=sw, stride_h=sh, fused_activation_function=ACT[act])
    return Case("TRANSPOSE_CONV", opts, inputs, [out_calib(dt)], dict(padding=pad, activation=act))


def gen_depthwise_conv_2d(rng, dt):
    n = 2 if rng.random() < 0.1 else 1
    cin = pick(rng, [1, 2, 3, 4, 8, 16])
    mult = pick(rng, [1, 1, 2, 3])
    k = pick(rng, [1, 2, 3, 3, 5])
    kh, kw = (k, k) if rng.random() < 0.8 else (k, pick(rng, [1, 3]))
    sh = pick(rng, [1, 1, 2, 3])
    sw = sh if rng.random() < 0.8 else pick(rng, [1, 2])
    dh = dw = 1
    if rng.random() < 0.25:
        dh = pick(rng, [2, 3])
        dw = dh if rng.random() < 0.7 else 1
    pad = pick(rng, ["SAME", "VALID"])
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    h = int(rng.integers(ekh if pad == "VALID" else 1, ekh + 9))
    w = int(rng.integers(ekw if pad == "VALID" else 1, ekw + 9))
    if n * h * w * cin * mult > 2 * MAX_ELEMS:
        raise Retry("too large")
    act = pick_act(rng)
    cout = cin * mult
    x = act_in("input", dt, (n, h, w, cin), rng)
    wt = weights("filter", dt, (1, kh, kw, cout), rng, 3, x, kh * kw, rng.random() > 0.15)
    b = bias("bias", dt, cout, rng, x, wt)
    opts = dict(
        padding=PADDING[pad],
        stride_w=sw,
        stride_h=sh,
        depth_multiplier=mult,
        fused_activation_function=ACT[act],
        dilation_w_factor=dw,
        dilation_h_factor=dh,
    )
    return Case(
        "DEPTHWISE_CONV_2D",
        opts,
        [x, wt, b],
        [out_calib(dt)],
        dict(padding=pad, activation=act, depth_multiplier=mult),
    )


def gen_fully_connected(rng, dt):
    depth = pick(rng, [1, 3, 8, 16, 33, 64])
    units = pick(rng, [1, 2, 5, 10, 16])
    rank = pick(rng, [2, 2, 2, 3, 4])
    if rank == 2:
        in_shape = [pick(rng, [1, 1, 2, 3]), depth]
    else:
        in_shape = rand_shape(rng, rank - 1, 1, 3) + [depth]
    keep = rank > 2 and rng.random() < 0.5
    act = pick_act(rng)
    x = act_in("input", dt, in_shape, rng)
    wt = weights("weights", dt, (units, depth), rng, 0, x, depth, rng.random() < 0.7)
    b = bias("bias", dt, units, rng, x, wt) if rng.random() < 0.8 else None
    opts = dict(fused_activation_function=ACT[act], weights_format=0, keep_num_dims=keep)
    return Case(
        "FULLY_CONNECTED",
        opts,
        [x, wt, b],
        [out_calib(dt)],
        dict(activation=act, has_bias=b is not None, per_channel=dt == "i8" and len(wt.scale) > 1),
    )


def broadcast_shapes(rng, max_rank=4):
    """Two shapes that broadcast together (size-1 dims, different ranks, or equal)."""
    r = pick(rng, [1, 2, 3, 3, 4, 4, 4][: 3 + max_rank])
    dims = rand_shape(rng, r, 1, 7, cap=MAX_ELEMS // 2)
    mode = rng.random()

    def sub():
        rr = r if rng.random() < 0.6 else int(rng.integers(1, r + 1))
        return [d if rng.random() < 0.7 else 1 for d in dims[r - rr :]]

    if mode < 0.3:
        a, b = list(dims), list(dims)
    elif mode < 0.45:
        a, b = list(dims), [1]
    elif mode < 0.55:
        a, b = [1], list(dims)
    else:
        a, b = sub(), sub()
    out = np.broadcast_shapes(tuple(a), tuple(b))
    if int(np.prod(out)) < 4:
        raise Retry("tiny broadcast")
    return a, b


def binary_case(rng, dt, op, vr=(-3.0, 3.0), activation=True, same_q=False):
    a_shape, b_shape = broadcast_shapes(rng)
    act = pick_act(rng) if activation else "NONE"
    vr = wide(rng, vr, 0.15)
    a = act_in("input0", dt, a_shape, rng, vr)
    b_const = rng.random() < 0.2
    if dt == "i8" and same_q:
        q_b = qof(a)
    else:
        q_b = None if dt == "f32" else qact(rng)
    if b_const:
        bf = rng.uniform(vr[0], vr[1], b_shape).astype(np.float32)
        b = const_like("input1", dt, bf, q_b)
    else:
        b = act_in("input1", dt, b_shape, rng, vr, q=q_b)
    out = out_like(a) if same_q else out_calib(dt)
    opts = {} if not activation else dict(fused_activation_function=ACT[act])
    params = dict(activation=act, const_rhs=b_const)
    return Case(op, opts, [a, b], [out], params)


def gen_add(rng, dt):
    return binary_case(rng, dt, "ADD")


def gen_sub(rng, dt):
    return binary_case(rng, dt, "SUB")


def gen_mul(rng, dt):
    return binary_case(rng, dt, "MUL")


def gen_maximum(rng, dt):
    return binary_case(rng, dt, "MAXIMUM", activation=False, same_q=True)


def gen_minimum(rng, dt):
    return binary_case(rng, dt, "MINIMUM", activation=False, same_q=True)


def unary_case(rng, dt, op, vr, out="calib", opts=None, params=None):
    shape = rand_shape(rng, int(rng.integers(1, 5)), 1, 8)
    x = act_in("input", dt, shape, rng, wide(rng, vr, 0.15, 4.0))
    if out == "calib":
        o = out_calib(dt)
    elif out == "same":
        o = out_like(x)
    else:
        o = out_fixed(dt, *out)
    return Case(op, opts or {}, [x], [o], params or {})


def gen_relu(rng, dt):
    return unary_case(rng, dt, "RELU", (-3, 3), "same" if rng.random() < 0.3 else "calib")


def gen_relu6(rng, dt):
    return unary_case(rng, dt, "RELU6", (-2, 8), "same" if rng.random() < 0.3 else "calib")


def gen_relu_n1_to_1(rng, dt):
    return unary_case(rng, dt, "RELU_N1_TO_1", (-2, 2), "same" if rng.random() < 0.3 else "calib")


def gen_leaky_relu(rng, dt):
    alpha = float(np.float32(pick(rng, [0.01, 0.1, 0.2, 0.3, 0.5, 0.9, 1.5])))
    return unary_case(rng, dt, "LEAKY_RELU", (-3, 3), "calib", dict(alpha=alpha), dict(alpha=alpha))


def gen_hard_swish(rng, dt):
    return unary_case(rng, dt, "HARD_SWISH", (-5, 5))


def gen_logistic(rng, dt):
    return unary_case(rng, dt, "LOGISTIC", (-8, 8), (1.0 / 256, -128))


def gen_tanh(rng, dt):
    return unary_case(rng, dt, "TANH", (-4, 4), (1.0 / 128, 0))


def gen_prelu(rng, dt):
    rank = pick(rng, [3, 4, 4])
    shape = rand_shape(rng, rank, 1, 8)
    c = shape[-1]
    alpha_shape = pick(rng, [[c], [1, 1, c], shape[1:], [1]])
    x = act_in("input", dt, shape, rng)
    af = rng.uniform(-0.5, 0.8, alpha_shape).astype(np.float32)
    q = None
    if dt == "i8":
        q = (np.float32(max(np.abs(af).max(), 1e-3) / 100.0), int(rng.integers(-20, 21)))
    alpha = const_like("alpha", dt, af, q)
    return Case("PRELU", {}, [x, alpha], [out_calib(dt)], dict(alpha_shape=alpha_shape))


def gen_softmax(rng, dt):
    rank = int(rng.integers(1, 5))
    shape = rand_shape(rng, rank - 1, 1, 4) + [pick(rng, [1, 2, 5, 10, 16, 40])]
    beta = float(np.float32(pick(rng, [1.0, 1.0, 0.5, 2.0, 0.1])))
    q = None
    if dt == "i8":
        q = (
            np.float32(math.exp(rng.uniform(math.log(0.01), math.log(0.2)))),
            int(rng.integers(-128, 128)),
        )
    x = act_in("input", dt, shape, rng, wide(rng, (-5, 5), 0.2, 4.0), q=q)
    return Case("SOFTMAX", dict(beta=beta), [x], [out_fixed(dt, 1.0 / 256, -128)], dict(beta=beta))


def pads_for(rng, rank):
    pads = rng.integers(0, 4, (rank, 2))
    if pads.sum() == 0:
        pads[int(rng.integers(rank)), int(rng.integers(2))] = 1
    return pads


def gen_pad(rng, dt):
    rank = int(rng.integers(1, 5))
    x = act_in("input", dt, rand_shape(rng, rank, 1, 6, cap=600), rng)
    pads = const_i32("paddings", pads_for(rng, rank))
    return Case("PAD", {}, [x, pads], [out_like(x)], {})


def gen_padv2(rng, dt):
    rank = int(rng.integers(1, 5))
    x = act_in("input", dt, rand_shape(rng, rank, 1, 6, cap=600), rng)
    pads = const_i32("paddings", pads_for(rng, rank))
    vshape = () if rng.random() < 0.5 else (1,)
    if dt == "f32":
        value = Tensor(
            "constant_values", "f32", vshape, data=np.full(vshape, rng.uniform(-3, 3), np.float32)
        )
    else:
        value = q_tensor("constant_values", vshape, *qof(x))
        value.data = np.full(vshape, int(rng.integers(-128, 128)), np.int8)
    return Case("PADV2", {}, [x, pads, value], [out_like(x)], {})


def pool_case(rng, dt, op):
    n = 2 if rng.random() < 0.1 else 1
    c = pick(rng, [1, 2, 3, 8, 16])
    h, w = int(rng.integers(1, 13)), int(rng.integers(1, 13))
    if n * h * w * c > MAX_ELEMS:
        raise Retry("too large")
    pad = pick(rng, ["SAME", "VALID"])
    if rng.random() < 0.15:
        fh, fw, sh, sw, pad = h, w, 1, 1, "VALID"
    else:
        fh = int(rng.integers(1, min(h, 4) + 1)) if pad == "VALID" else int(rng.integers(1, 5))
        fw = int(rng.integers(1, min(w, 4) + 1)) if pad == "VALID" else int(rng.integers(1, 5))
        sh = pick(rng, [1, 2, 2, 3])
        sw = sh if rng.random() < 0.8 else pick(rng, [1, 2])
    act = pick_act(rng, 0.6)
    x = act_in("input", dt, (n, h, w, c), rng)
    opts = dict(
        padding=PADDING[pad],
        stride_w=sw,
        stride_h=sh,
        filter_width=fw,
        filter_height=fh,
        fused_activation_function=ACT[act],
    )
    return Case(op, opts, [x], [out_like(x)], dict(padding=pad, activation=act))


def gen_max_pool_2d(rng, dt):
    return pool_case(rng, dt, "MAX_POOL_2D")


def gen_average_pool_2d(rng, dt):
    return pool_case(rng, dt, "AVERAGE_POOL_2D")


def gen_mean(rng, dt):
    rank = int(rng.integers(2, 5))
    shape = rand_shape(rng, rank, 1, 9)
    if rank == 4 and rng.random() < 0.35:
        axes, keep = [1, 2], rng.random() < 0.7
    else:
        k = int(rng.integers(1, rank + 1))
        axes = sorted(int(a) for a in rng.choice(rank, k, replace=False))
        keep = rng.random() < 0.5
        if k == rank:
            keep = True
        axes = [a - rank if rng.random() < 0.25 else a for a in axes]
    x = act_in("input", dt, shape, rng)
    out = out_like(x) if rng.random() < 0.4 else out_calib(dt)
    return Case(
        "MEAN",
        dict(keep_dims=keep),
        [x, const_i32("axis", axes)],
        [out],
        dict(axes=axes, keep_dims=keep),
    )


def factor_shape(rng, total):
    """A random shape with product `total`."""
    dims = []
    rest = total
    while rest > 1 and len(dims) < 5:
        divisors = [d for d in range(1, rest + 1) if rest % d == 0]
        d = pick(rng, divisors)
        dims.append(d)
        rest //= d
    if rest > 1:
        dims.append(rest)
    if rng.random() < 0.3:
        dims.insert(int(rng.integers(len(dims) + 1)), 1)
    return dims or [1]


def gen_reshape(rng, dt):
    shape = rand_shape(rng, int(rng.integers(1, 5)), 1, 8)
    target = factor_shape(rng, int(np.prod(shape)))
    if rng.random() < 0.4:
        target[int(rng.integers(len(target)))] = -1
    x = act_in("input", dt, shape, rng)
    return Case(
        "RESHAPE",
        dict(new_shape=list(target)),
        [x, const_i32("shape", target)],
        [out_like(x)],
        dict(target=target),
    )


def gen_squeeze(rng, dt):
    rank = int(rng.integers(2, 6))
    shape = [1 if rng.random() < 0.45 else int(rng.integers(2, 6)) for _ in range(rank)]
    ones = [i for i, d in enumerate(shape) if d == 1]
    if not ones:
        shape[int(rng.integers(rank))] = 1
        ones = [i for i, d in enumerate(shape) if d == 1]
    if len(ones) == rank:
        shape[int(rng.integers(rank))] = 3
        ones = [i for i, d in enumerate(shape) if d == 1]
    if rng.random() < 0.25:
        dims = []
    else:
        k = int(rng.integers(1, len(ones) + 1))
        dims = sorted(int(a) for a in rng.choice(ones, k, replace=False))
        dims = [d - rank if rng.random() < 0.25 else d for d in dims]
    x = act_in("input", dt, shape, rng)
    return Case("SQUEEZE", dict(squeeze_dims=dims), [x], [out_like(x)], dict(squeeze_dims=dims))


def gen_expand_dims(rng, dt):
    rank = int(rng.integers(1, 5))
    x = act_in("input", dt, rand_shape(rng, rank, 1, 6), rng)
    axis = int(rng.integers(-(rank + 1), rank + 1))
    axis_t = const_i32("axis", [axis], () if rng.random() < 0.5 else (1,))
    return Case("EXPAND_DIMS", {}, [x, axis_t], [out_like(x)], dict(axis=axis))


def gen_concatenation(rng, dt):
    rank = int(rng.integers(1, 5))
    k = int(rng.integers(2, 5))
    base = rand_shape(rng, rank, 1, 5, cap=300)
    axis = int(rng.integers(rank))
    q = qact(rng) if dt == "i8" else None
    xs = []
    for i in range(k):
        s = list(base)
        s[axis] = int(rng.integers(1, 5))
        xs.append(act_in(f"input{i}", dt, s, rng, q=q))
    axis_opt = axis - rank if rng.random() < 0.3 else axis
    # TFLite's CONCATENATION rejects fused activations in Prepare.
    opts = dict(axis=axis_opt, fused_activation_function=ACT["NONE"])
    return Case("CONCATENATION", opts, xs, [out_like(xs[0])], dict(axis=axis_opt))


def gen_split(rng, dt):
    rank = int(rng.integers(1, 5))
    shape = rand_shape(rng, rank, 1, 6)
    axis = int(rng.integers(rank))
    k = pick(rng, [1, 2, 2, 3, 4])
    shape[axis] = k * int(rng.integers(1, 4))
    x = act_in("input", dt, shape, rng)
    axis_v = axis - rank if rng.random() < 0.3 else axis
    outs = [out_like(x, f"output{i}") for i in range(k)]
    return Case(
        "SPLIT",
        dict(num_splits=k),
        [const_i32("axis", [axis_v], ()), x],
        outs,
        dict(axis=axis_v, num_splits=k),
    )


def gen_split_v(rng, dt):
    rank = int(rng.integers(1, 5))
    shape = rand_shape(rng, rank, 1, 6)
    axis = int(rng.integers(rank))
    k = pick(rng, [1, 2, 3, 4])
    sizes = [int(rng.integers(1, 4)) for _ in range(k)]
    shape[axis] = sum(sizes)
    if rng.random() < 0.4:
        sizes[int(rng.integers(k))] = -1
    x = act_in("input", dt, shape, rng)
    axis_v = axis - rank if rng.random() < 0.3 else axis
    outs = [out_like(x, f"output{i}") for i in range(k)]
    return Case(
        "SPLIT_V",
        dict(num_splits=k),
        [x, const_i32("size_splits", sizes), const_i32("axis", [axis_v], ())],
        outs,
        dict(axis=axis_v, size_splits=sizes),
    )


def gen_strided_slice(rng, dt):
    rank = int(rng.integers(1, 5))
    shape = rand_shape(rng, rank, 1, 8)
    begin, end, strides = [], [], []
    begin_mask = end_mask = shrink_mask = 0
    for i, d in enumerate(shape):
        if rank > 1 and rng.random() < 0.2:
            idx = int(rng.integers(-d, d))
            begin.append(idx)
            end.append(idx + 1 if idx != -1 else 0)
            strides.append(1)
            shrink_mask |= 1 << i
            continue
        s = pick(rng, [1, 1, 1, 2, 3, -1, -2])
        b = int(rng.integers(-d, d))
        e = int(rng.integers(-d - 1, d + 2))
        begin.append(b)
        end.append(e)
        strides.append(s)
        if rng.random() < 0.2:
            begin_mask |= 1 << i
        if rng.random() < 0.2:
            end_mask |= 1 << i
    if shrink_mask == (1 << rank) - 1:
        raise Retry("all axes shrunk")
    x = act_in("input", dt, shape, rng)
    opts = dict(
        begin_mask=begin_mask,
        end_mask=end_mask,
        ellipsis_mask=0,
        new_axis_mask=0,
        shrink_axis_mask=shrink_mask,
        offset=False,
    )
    inputs = [x, const_i32("begin", begin), const_i32("end", end), const_i32("strides", strides)]
    return Case(
        "STRIDED_SLICE",
        opts,
        inputs,
        [out_like(x)],
        dict(opts, begin=begin, end=end, strides=strides),
    )


def gen_slice(rng, dt):
    rank = int(rng.integers(1, 5))
    shape = rand_shape(rng, rank, 1, 8)
    begin = [int(rng.integers(0, d)) for d in shape]
    size = [
        -1 if rng.random() < 0.2 else int(rng.integers(1, d - b + 1)) for d, b in zip(shape, begin)
    ]
    x = act_in("input", dt, shape, rng)
    # SLICE's Prepare checks the output rank stored in the model, so give the real shape.
    out = out_like(x)
    out.shape = tuple(d - b if s == -1 else s for d, b, s in zip(shape, begin, size))
    return Case(
        "SLICE",
        {},
        [x, const_i32("begin", begin), const_i32("size", size)],
        [out],
        dict(begin=begin, size=size),
    )


def gen_transpose(rng, dt):
    rank = pick(rng, [2, 3, 4, 4, 5, 6])
    shape = rand_shape(rng, rank, 1, 5 if rank < 5 else 3)
    perm = [int(p) for p in rng.permutation(rank)]
    x = act_in("input", dt, shape, rng)
    return Case("TRANSPOSE", {}, [x, const_i32("perm", perm)], [out_like(x)], dict(perm=perm))


def resize_case(rng, dt, op, i):
    n = 2 if rng.random() < 0.1 else 1
    h, w = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    c = pick(rng, [1, 2, 3, 5])
    oh, ow = int(rng.integers(1, 17)), int(rng.integers(1, 17))
    if rng.random() < 0.3:
        oh, ow = 2 * h, 2 * w
    if n * oh * ow * c > MAX_ELEMS:
        raise Retry("too large")
    align, half = [(False, False), (True, False), (False, True)][i % 3]
    x = act_in("input", dt, (n, h, w, c), rng)
    opts = dict(align_corners=align, half_pixel_centers=half)
    return Case(
        op, opts, [x, const_i32("size", [oh, ow])], [out_like(x)], dict(opts, size=[oh, ow])
    )


def gen_resize_bilinear(rng, dt, i):
    return resize_case(rng, dt, "RESIZE_BILINEAR", i)


def gen_resize_nearest_neighbor(rng, dt, i):
    return resize_case(rng, dt, "RESIZE_NEAREST_NEIGHBOR", i)


def gen_depth_to_space(rng, dt):
    bs = pick(rng, [2, 2, 3, 4])
    n = 2 if rng.random() < 0.1 else 1
    c = pick(rng, [1, 2, 3])
    shape = (n, int(rng.integers(1, 5)), int(rng.integers(1, 5)), c * bs * bs)
    x = act_in("input", dt, shape, rng)
    return Case("DEPTH_TO_SPACE", dict(block_size=bs), [x], [out_like(x)], dict(block_size=bs))


def gen_space_to_depth(rng, dt):
    bs = pick(rng, [2, 2, 3, 4])
    n = 2 if rng.random() < 0.1 else 1
    c = pick(rng, [1, 2, 3])
    shape = (n, bs * int(rng.integers(1, 5)), bs * int(rng.integers(1, 5)), c)
    x = act_in("input", dt, shape, rng)
    return Case("SPACE_TO_DEPTH", dict(block_size=bs), [x], [out_like(x)], dict(block_size=bs))


def gen_quantize_f32_i8(rng, dt):
    shape = rand_shape(rng, int(rng.integers(1, 5)), 1, 8)
    lo = float(rng.uniform(-6, 0))
    hi = float(rng.uniform(0.1, 6))
    x = Tensor("input", "f32", tuple(shape), value_range=(lo, hi))
    scale = np.float32((hi - lo) / 255.0 * rng.uniform(0.7, 1.3))
    zp = (
        int(np.clip(round(-128 - lo / scale), -128, 127))
        if rng.random() < 0.8
        else int(rng.integers(-128, 128))
    )
    out = q_tensor("output", shape, scale, zp)
    return Case("QUANTIZE", {}, [x], [out], {})


def gen_quantize_i8_i8(rng, dt):
    shape = rand_shape(rng, int(rng.integers(1, 5)), 1, 8)
    x = act_in("input", "i8", shape, rng)
    s_in, _ = qof(x)
    scale = np.float32(s_in * math.exp(rng.uniform(math.log(0.3), math.log(3.0))))
    out = q_tensor("output", shape, scale, qact(rng)[1])
    return Case("QUANTIZE", {}, [x], [out], {})


def gen_dequantize_i8_f32(rng, dt):
    shape = rand_shape(rng, int(rng.integers(1, 5)), 1, 8)
    x = act_in("input", "i8", shape, rng)
    out = Tensor("output", "f32", tuple(shape))
    return Case("DEQUANTIZE", {}, [x], [out], {})


def gen_quantize_u8_i8(rng, dt):
    """A uint8 input (an image, say) requantized to int8: often the same scale with the
    zero point moved by 128, sometimes another scale."""
    shape = rand_shape(rng, int(rng.integers(1, 5)), 1, 8)
    s_in = np.float32(math.exp(rng.uniform(math.log(0.004), math.log(0.08))))
    x = q_tensor("input", shape, s_in, int(rng.integers(0, 256)), dtype="u8")
    if rng.random() < 0.4:
        out = q_tensor("output", shape, s_in, int(x.zero_point[0]) - 128)
    else:
        scale = np.float32(s_in * math.exp(rng.uniform(math.log(0.3), math.log(3.0))))
        out = q_tensor("output", shape, scale, qact(rng)[1])
    return Case("QUANTIZE", {}, [x], [out], {})


def gen_dequantize_u8_f32(rng, dt):
    shape = rand_shape(rng, int(rng.integers(1, 5)), 1, 8)
    s_in = np.float32(math.exp(rng.uniform(math.log(0.004), math.log(0.08))))
    x = q_tensor("input", shape, s_in, int(rng.integers(0, 256)), dtype="u8")
    out = Tensor("output", "f32", tuple(shape))
    return Case("DEQUANTIZE", {}, [x], [out], {})


# --- Element-wise math, comparisons, reductions, gather, ... (float) ----------------------


def unary_f32(op, vr, opts=None):
    return lambda rng, dt: unary_case(rng, dt, op, vr, opts=opts)


def gen_gelu(rng, dt, i):
    return unary_case(rng, dt, "GELU", (-4, 4), opts=dict(approximate=i % 2 == 1))


def gen_local_response_norm(rng, dt):
    shape = rand_shape(rng, 4, 1, 6)
    shape[-1] = int(rng.integers(1, 12))
    x = act_in("input", dt, shape, rng, (-3.0, 3.0))
    opts = dict(radius=int(rng.integers(0, 4)), bias=float(np.float32(pick(rng, [1.0, 2.0, 0.5]))),
                alpha=float(np.float32(pick(rng, [1e-4, 0.02, 0.3]))),
                beta=float(np.float32(pick(rng, [0.75, 0.5, 1.3]))))
    return Case("LOCAL_RESPONSE_NORMALIZATION", opts, [x], [out_calib(dt)], {})


def gen_l2_normalization(rng, dt, i):
    shape = rand_shape(rng, int(rng.integers(1, 5)), 1, 8)
    vr = (-1e-4, 1e-4) if i == 0 else (-3.0, 3.0)  # near zero: the epsilon floor
    x = act_in("input", dt, shape, rng, vr)
    return Case("L2_NORMALIZATION", dict(fused_activation_function=ACT["NONE"]), [x], [out_calib(dt)], {})


def binary_f32(op, vr=(-3.0, 3.0), activation=False):
    return lambda rng, dt: binary_case(rng, dt, op, vr, activation=activation)


def gen_pow(rng, dt):
    a_shape, b_shape = broadcast_shapes(rng)
    a = act_in("input0", dt, a_shape, rng, (0.1, 3.0))
    b = act_in("input1", dt, b_shape, rng, (-2.0, 2.0))
    return Case("POW", {}, [a, b], [out_calib(dt)], {})


def gen_divisor_op(op):
    """FLOOR_DIV, FLOOR_MOD: divisors of either sign, kept away from zero."""

    def gen(rng, dt):
        a_shape, b_shape = broadcast_shapes(rng)
        a = act_in("input0", dt, a_shape, rng, (-6.0, 6.0))
        bf = rng.uniform(0.5, 3.0, b_shape) * rng.choice([-1.0, 1.0], b_shape)
        b = const_like("input1", dt, bf.astype(np.float32))
        return Case(op, {}, [a, b], [out_calib(dt)], {})

    return gen


def gen_floor_div_int(rng, dt):
    """int32 FLOOR_DIV (Keras shape arithmetic's `//`): dividends and divisors of either
    sign, so that truncation and flooring differ."""
    a_shape, b_shape = broadcast_shapes(rng)
    a = Tensor("input0", "i32", tuple(a_shape), value_range=(-50, 50))
    bv = rng.integers(1, 8, b_shape) * rng.choice([-1, 1], b_shape)
    b = Tensor("input1", "i32", tuple(b_shape), data=bv.astype(np.int32))
    out = Tensor("output", "i32", np.broadcast_shapes(tuple(a_shape), tuple(b_shape)))
    return Case("FLOOR_DIV", {}, [a, b], [out], {})


def bool_tensor(name, shape) -> Tensor:
    return Tensor(name, "bool", tuple(int(d) for d in shape))


def gen_compare(op):
    """Comparisons of integer-valued floats (ties included): bool out."""

    def gen(rng, dt):
        a_shape, b_shape = broadcast_shapes(rng)
        a = Tensor("input0", "f32", tuple(a_shape), value_range=(-2.5, 2.5), flags={"grid": 1})
        b = Tensor("input1", "f32", tuple(b_shape), value_range=(-2.5, 2.5), flags={"grid": 1})
        out = bool_tensor("output", np.broadcast_shapes(tuple(a_shape), tuple(b_shape)))
        return Case(op, {}, [a, b], [out], {})

    return gen


def gen_logical(op):
    def gen(rng, dt):
        a_shape, b_shape = broadcast_shapes(rng)
        ins = [bool_tensor("input0", a_shape)]
        shape = tuple(a_shape)
        if op != "LOGICAL_NOT":
            ins.append(bool_tensor("input1", b_shape))
            shape = np.broadcast_shapes(tuple(a_shape), tuple(b_shape))
        return Case(op, {}, ins, [bool_tensor("output", shape)], {})

    return gen


def gen_select_v2(rng, dt):
    a_shape, b_shape = broadcast_shapes(rng)
    c_shape = pick(rng, [a_shape, b_shape, [int(d) for d in np.broadcast_shapes(
        tuple(a_shape), tuple(b_shape))]])
    cond = bool_tensor("condition", c_shape)
    x = act_in("x", dt, a_shape, rng)
    y = act_in("y", dt, b_shape, rng)
    return Case("SELECT_V2", {}, [cond, x, y], [out_calib(dt)], {})


def gen_reduce(op):
    def gen(rng, dt):
        case = gen_mean(rng, dt)
        vr = (0.6, 1.6) if op == "REDUCE_PROD" else (-3.0, 3.0)
        case.inputs[0].value_range = vr
        case.op = op
        case.outputs = [out_calib(dt)]
        return case

    return gen


def gen_arg(op):
    def gen(rng, dt, i):
        rank = int(rng.integers(1, 5))
        shape = rand_shape(rng, rank, 1, 9)
        axis = int(rng.integers(0, rank))
        x = act_in("input", dt, shape, rng)
        out_type = "i64" if i % 2 == 0 else "i32"
        out_shape = tuple(d for k, d in enumerate(shape) if k != axis)
        if not out_shape:
            raise Retry("scalar output")
        axis_v = axis - rank if rng.random() < 0.3 else axis
        return Case(op, dict(output_type=TENSOR_TYPES[out_type]),
                    [x, const_i32("axis", [axis_v])], [Tensor("output", out_type, out_shape)],
                    dict(axis=axis_v, output_type=out_type))

    return gen


def gen_cast(rng, dt):
    shape = rand_shape(rng, int(rng.integers(1, 5)), 1, 8)
    x = act_in("input", dt, shape, rng, (-100.0, 100.0))
    return Case("CAST", dict(in_data_type=0, out_data_type=2), [x],
                [Tensor("output", "i32", tuple(shape))], {})


def gen_gather(rng, dt):
    rank = int(rng.integers(1, 5))
    shape = rand_shape(rng, rank, 1, 7)
    axis = int(rng.integers(0, rank))
    ishape = rand_shape(rng, int(rng.integers(1, 3)), 1, 5)
    idx = rng.integers(0, shape[axis], ishape).astype(np.int32)
    indices = (Tensor("indices", "i32", tuple(ishape), data=idx) if rng.random() < 0.5
               else Tensor("indices", "i32", tuple(ishape), value_range=(0, shape[axis])))
    x = act_in("params", dt, shape, rng)
    out_shape = tuple(shape[:axis]) + tuple(ishape) + tuple(shape[axis + 1:])
    axis_v = axis - rank if rng.random() < 0.3 else axis
    return Case("GATHER", dict(axis=axis_v, batch_dims=0), [x, indices],
                [Tensor("output", dt, out_shape)], dict(axis=axis_v))


def gen_batch_matmul(rng, dt):
    b = int(rng.integers(1, 4))
    m, k, n = (int(v) for v in rng.integers(1, 12, 3))
    a_shape = [b, m, k] if rng.random() < 0.7 else [m, k]
    b_shape = [b, k, n] if rng.random() < 0.7 else [1, k, n]
    a = act_in("a", dt, a_shape, rng)
    bt = act_in("b", dt, b_shape, rng)
    return Case("BATCH_MATMUL", dict(adj_x=False, adj_y=False), [a, bt], [out_calib(dt)], {})


def gen_mirror_pad(rng, dt):
    rank = int(rng.integers(1, 5))
    shape = rand_shape(rng, rank, 2, 7)
    pads = [[int(rng.integers(0, d)), int(rng.integers(0, d))] for d in shape]
    x = act_in("input", dt, shape, rng)
    return Case("MIRROR_PAD", dict(mode=0), [x, const_i32("paddings", pads)],
                [out_calib(dt)], dict(paddings=pads))


def gen_tile(rng, dt):
    rank = int(rng.integers(1, 5))
    shape = rand_shape(rng, rank, 1, 4)
    reps = [int(rng.integers(1, 4)) for _ in shape]
    x = act_in("input", dt, shape, rng)
    return Case("TILE", {}, [x, const_i32("multiples", reps)], [out_calib(dt)], dict(multiples=reps))


def gen_broadcast_to(rng, dt):
    rank = int(rng.integers(1, 5))
    target = rand_shape(rng, rank, 1, 5)
    # The input: the target with some dims 1 and maybe fewer leading dims.
    shape = [d if rng.random() < 0.5 else 1 for d in target][int(rng.integers(0, rank)):]
    x = act_in("input", dt, shape or [1], rng)
    return Case("BROADCAST_TO", {}, [x, const_i32("shape", target)], [out_calib(dt)], dict(shape=target))


def gen_pack(rng, dt):
    rank = int(rng.integers(1, 4))
    shape = rand_shape(rng, rank, 1, 6)
    n = int(rng.integers(1, 5))
    axis = int(rng.integers(0, rank + 1))
    ins = [act_in(f"input{k}", dt, shape, rng) for k in range(n)]
    out_shape = tuple(shape[:axis]) + (n,) + tuple(shape[axis:])
    return Case("PACK", dict(values_count=n, axis=axis), ins,
                [Tensor("output", dt, out_shape)], dict(axis=axis))


def gen_unpack(rng, dt):
    rank = int(rng.integers(2, 5))
    shape = rand_shape(rng, rank, 1, 6)
    axis = int(rng.integers(0, rank))
    x = act_in("input", dt, shape, rng)
    out_shape = tuple(d for k, d in enumerate(shape) if k != axis)
    outs = [Tensor(f"output{k}", dt, out_shape) for k in range(shape[axis])]
    return Case("UNPACK", dict(num=shape[axis], axis=axis), [x], outs, dict(axis=axis))


def gen_space_to_batch_nd(rng, dt):
    # [batch, spatial.., channels]: 2 spatial axes (4-D) or 1 (3-D).
    m = 2 if rng.random() < 0.75 else 1
    block = [pick(rng, [1, 2, 2, 3]) for _ in range(m)]
    pads, spatial = [], []
    for b in block:
        s = int(rng.integers(1, 8))
        before = int(rng.integers(0, 3))
        after = (-(s + before)) % b + b * int(rng.integers(0, 2))
        pads.append([before, after])
        spatial.append(s)
    shape = [pick(rng, [1, 1, 2])] + spatial + [pick(rng, [1, 2, 3])]
    x = act_in("input", dt, shape, rng)
    return Case("SPACE_TO_BATCH_ND", {}, [x, const_i32("block_shape", block),
                                          const_i32("paddings", pads)],
                [out_like(x)], dict(block_shape=block, paddings=pads))


def gen_batch_to_space_nd(rng, dt):
    m = 2 if rng.random() < 0.75 else 1
    block = [pick(rng, [1, 2, 2, 3]) for _ in range(m)]
    spatial = [int(rng.integers(1, 5)) for _ in range(m)]
    crops = []
    for s, b in zip(spatial, block):
        room = s * b - 1
        before = int(rng.integers(0, min(room, 2) + 1))
        crops.append([before, int(rng.integers(0, min(room - before, 2) + 1))])
    shape = [pick(rng, [1, 1, 2]) * int(np.prod(block))] + spatial + [pick(rng, [1, 2, 3])]
    x = act_in("input", dt, shape, rng)
    return Case("BATCH_TO_SPACE_ND", {}, [x, const_i32("block_shape", block),
                                          const_i32("crops", crops)],
                [out_like(x)], dict(block_shape=block, crops=crops))


def gen_gather_nd(rng, dt):
    rank = int(rng.integers(1, 5))
    shape = rand_shape(rng, rank, 1, 5)
    k = int(rng.integers(1, rank + 1))
    ishape = rand_shape(rng, int(rng.integers(0, 2)), 1, 4) + [k]
    x = act_in("params", dt, shape, rng)
    if rng.random() < 0.5:
        idx = np.stack([rng.integers(0, shape[a], ishape[:-1]) for a in range(k)], -1)
        indices = Tensor("indices", "i32", tuple(ishape), data=idx.astype(np.int32))
    else:
        # Run-time indices: every component below the smallest indexed axis.
        indices = Tensor("indices", "i32", tuple(ishape), value_range=(0, min(shape[:k])))
    return Case("GATHER_ND", {}, [x, indices], [out_like(x)], dict(k=k))


def gen_select(rng, dt):
    rank = int(rng.integers(1, 5))
    shape = rand_shape(rng, rank, 1, 5)
    rows = rank > 1 and rng.random() < 0.4
    cond = bool_tensor("condition", [shape[0]] if rows else shape)
    x = act_in("x", dt, shape, rng)
    y = act_in("y", dt, shape, rng)
    return Case("SELECT", {}, [cond, x, y], [out_calib(dt)], dict(rows=rows))


def gen_unidirectional_sequence_lstm(rng, dt, i):
    """Keras-style float LSTMs and TFLite's variants: time-major or batch-major,
    CIFG, peepholes, projection (with bias and clip), layer normalization, cell
    clip and the cell activation, cycled by case number."""
    time_major = i % 2 == 1
    cifg = i % 4 == 2
    peep = i % 3 == 1
    proj = i % 5 == 3
    layer_norm = i % 6 == 5
    batch, steps = pick(rng, [1, 2, 3]), pick(rng, [1, 3, 6])
    n_in, n = pick(rng, [2, 5]), pick(rng, [3, 4, 8])
    n_out = pick(rng, [2, 3]) if proj else n
    x = act_in("input", dt, [steps, batch, n_in] if time_major else [batch, steps, n_in], rng,
               vr=(-2.0, 2.0))

    def const(name, *shape):
        return Tensor(name, "f32", shape, data=(rng.standard_normal(shape) * 0.5).astype(np.float32))

    gates = ["input", "forget", "cell", "output"]
    ins = [x]
    ins += [None if cifg and g == "input" else const(f"input_to_{g}", n, n_in) for g in gates]
    ins += [None if cifg and g == "input" else const(f"recurrent_to_{g}", n, n_out) for g in gates]
    ins += [const(f"cell_to_{g}", n) if peep and not (cifg and g == "input") else None
            for g in ["input", "forget", "output"]]
    ins += [None if cifg and g == "input" else const(f"{g}_bias", n) for g in gates]
    ins += [const("projection_weights", n_out, n) if proj else None,
            const("projection_bias", n_out) if proj and i % 2 == 1 else None]
    ins += [Tensor("output_state", "f32", (batch, n_out), flags=dict(variable=True)),
            Tensor("cell_state", "f32", (batch, n), flags=dict(variable=True))]
    ins += [const(f"{g}_layer_norm", n) if layer_norm and not (cifg and g == "input") else None
            for g in gates]
    act = pick(rng, ["TANH", "TANH", "RELU"])
    opts = dict(fused_activation_function=ACT[act], cell_clip=pick(rng, [0.0, 0.0, 2.0]),
                proj_clip=pick(rng, [0.0, 0.5]) if proj else 0.0, time_major=time_major)
    out = Tensor("output", "f32", (steps, batch, n_out) if time_major else (batch, steps, n_out))
    return Case("UNIDIRECTIONAL_SEQUENCE_LSTM", opts, ins, [out],
                dict(time_major=time_major, cifg=cifg, peephole=peep, projection=proj,
                     layer_norm=layer_norm, activation=act))


# (file prefix, generator, dtype tags, cases per dtype). Generators taking three arguments
# also receive the case number (used to cycle through variants).
OPS = [
    ("conv_2d", gen_conv_2d, ["f32", "i8"], 16),
    ("depthwise_conv_2d", gen_depthwise_conv_2d, ["f32", "i8"], 16),
    ("transpose_conv", gen_transpose_conv, ["f32"], 24),
    ("fully_connected", gen_fully_connected, ["f32", "i8"], 14),
    ("add", gen_add, ["f32", "i8"], 14),
    ("sub", gen_sub, ["f32", "i8"], 14),
    ("mul", gen_mul, ["f32", "i8"], 14),
    ("maximum", gen_maximum, ["f32", "i8"], 10),
    ("minimum", gen_minimum, ["f32", "i8"], 10),
    ("relu", gen_relu, ["f32", "i8"], 10),
    ("relu6", gen_relu6, ["f32", "i8"], 10),
    ("relu_n1_to_1", gen_relu_n1_to_1, ["f32", "i8"], 10),
    ("leaky_relu", gen_leaky_relu, ["f32", "i8"], 10),
    ("prelu", gen_prelu, ["f32", "i8"], 10),
    ("hard_swish", gen_hard_swish, ["f32", "i8"], 10),
    ("logistic", gen_logistic, ["f32", "i8"], 10),
    ("tanh", gen_tanh, ["f32", "i8"], 10),
    ("softmax", gen_softmax, ["f32", "i8"], 12),
    ("pad", gen_pad, ["f32", "i8"], 10),
    ("padv2", gen_padv2, ["f32", "i8"], 10),
    ("max_pool_2d", gen_max_pool_2d, ["f32", "i8"], 12),
    ("average_pool_2d", gen_average_pool_2d, ["f32", "i8"], 12),
    ("mean", gen_mean, ["f32", "i8"], 14),
    ("reshape", gen_reshape, ["f32", "i8"], 8),
    ("squeeze", gen_squeeze, ["f32", "i8"], 8),
    ("expand_dims", gen_expand_dims, ["f32", "i8"], 8),
    ("concatenation", gen_concatenation, ["f32", "i8"], 10),
    ("split", gen_split, ["f32", "i8"], 8),
    ("split_v", gen_split_v, ["f32", "i8"], 8),
    ("strided_slice", gen_strided_slice, ["f32", "i8"], 16),
    ("slice", gen_slice, ["f32", "i8"], 10),
    ("transpose", gen_transpose, ["f32", "i8"], 10),
    ("resize_bilinear", gen_resize_bilinear, ["f32", "i8"], 15),
    ("resize_nearest_neighbor", gen_resize_nearest_neighbor, ["f32", "i8"], 12),
    ("depth_to_space", gen_depth_to_space, ["f32", "i8"], 8),
    ("space_to_depth", gen_space_to_depth, ["f32", "i8"], 8),
    ("quantize", gen_quantize_f32_i8, ["f32_i8"], 10),
    ("quantize", gen_quantize_i8_i8, ["i8_i8"], 10),
    ("dequantize", gen_dequantize_i8_f32, ["i8_f32"], 10),
    ("quantize", gen_quantize_u8_i8, ["u8_i8"], 10),
    ("dequantize", gen_dequantize_u8_f32, ["u8_f32"], 10),
    ("abs", unary_f32("ABS", (-4, 4)), ["f32"], 4),
    ("neg", unary_f32("NEG", (-4, 4)), ["f32"], 4),
    ("sqrt", unary_f32("SQRT", (0.01, 9)), ["f32"], 4),
    ("rsqrt", unary_f32("RSQRT", (0.01, 9)), ["f32"], 4),
    ("exp", unary_f32("EXP", (-6, 6)), ["f32"], 4),
    ("log", unary_f32("LOG", (0.01, 9)), ["f32"], 4),
    ("floor", unary_f32("FLOOR", (-4, 4)), ["f32"], 4),
    ("ceil", unary_f32("CEIL", (-4, 4)), ["f32"], 4),
    ("round", unary_f32("ROUND", (-4, 4)), ["f32"], 4),
    ("sin", unary_f32("SIN", (-6, 6)), ["f32"], 4),
    ("cos", unary_f32("COS", (-6, 6)), ["f32"], 4),
    ("elu", unary_f32("ELU", (-4, 4)), ["f32"], 4),
    ("gelu", gen_gelu, ["f32"], 6),
    ("square", unary_f32("SQUARE", (-4, 4)), ["f32"], 4),
    ("log_softmax", unary_f32("LOG_SOFTMAX", (-4, 4)), ["f32"], 4),
    ("local_response_normalization", gen_local_response_norm, ["f32"], 8),
    ("l2_normalization", gen_l2_normalization, ["f32"], 6),
    ("div", binary_f32("DIV", activation=True), ["f32"], 8),
    ("pow", gen_pow, ["f32"], 6),
    ("squared_difference", binary_f32("SQUARED_DIFFERENCE"), ["f32"], 6),
    ("floor_div", gen_divisor_op("FLOOR_DIV"), ["f32"], 6),
    ("floor_div", gen_floor_div_int, ["i32"], 6),
    ("floor_mod", gen_divisor_op("FLOOR_MOD"), ["f32"], 6),
    ("equal", gen_compare("EQUAL"), ["f32"], 4),
    ("not_equal", gen_compare("NOT_EQUAL"), ["f32"], 4),
    ("less", gen_compare("LESS"), ["f32"], 4),
    ("less_equal", gen_compare("LESS_EQUAL"), ["f32"], 4),
    ("greater", gen_compare("GREATER"), ["f32"], 4),
    ("greater_equal", gen_compare("GREATER_EQUAL"), ["f32"], 4),
    ("logical_and", gen_logical("LOGICAL_AND"), ["f32"], 4),
    ("logical_or", gen_logical("LOGICAL_OR"), ["f32"], 4),
    ("logical_not", gen_logical("LOGICAL_NOT"), ["f32"], 4),
    ("select_v2", gen_select_v2, ["f32"], 6),
    ("sum", gen_reduce("SUM"), ["f32"], 8),
    ("reduce_max", gen_reduce("REDUCE_MAX"), ["f32"], 8),
    ("reduce_min", gen_reduce("REDUCE_MIN"), ["f32"], 8),
    ("reduce_prod", gen_reduce("REDUCE_PROD"), ["f32"], 8),
    ("arg_max", gen_arg("ARG_MAX"), ["f32", "i8"], 8),
    ("arg_min", gen_arg("ARG_MIN"), ["f32", "i8"], 8),
    ("cast", gen_cast, ["f32"], 4),
    ("gather", gen_gather, ["f32"], 10),
    ("batch_matmul", gen_batch_matmul, ["f32"], 8),
    ("mirror_pad", gen_mirror_pad, ["f32"], 8),
    ("pack", gen_pack, ["f32"], 8),
    ("tile", gen_tile, ["f32"], 8),
    ("broadcast_to", gen_broadcast_to, ["f32"], 8),
    ("unpack", gen_unpack, ["f32"], 8),
    ("space_to_batch_nd", gen_space_to_batch_nd, ["f32", "i8"], 10),
    ("batch_to_space_nd", gen_batch_to_space_nd, ["f32", "i8"], 10),
    ("gather_nd", gen_gather_nd, ["f32", "i8"], 10),
    ("select", gen_select, ["f32"], 6),
    ("unidirectional_sequence_lstm", gen_unidirectional_sequence_lstm, ["f32"], 12),
]


# ---------------------------------------------------------------------------------------
# Running


# Ops checked against LiteRT's builtin (optimized) kernel rather than its reference one,
# where the reference departs from the op's definition: LOCAL_RESPONSE_NORMALIZATION's
# reference kernel sums the squares of channels [c - r, c + r), TensorFlow's op (and the
# builtin kernel every LiteRT user runs) those of [c - r, c + r].
BUILTIN_KERNEL_OPS = {"LOCAL_RESPONSE_NORMALIZATION"}


def run_model(model: bytes, inputs: list[np.ndarray], reference: bool = True) -> list[np.ndarray]:
    try:
        if not reference:
            raise ValueError("Didn't find op: the builtin kernel is asked for")
        it = Interpreter(
            model_content=model,
            experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
            num_threads=1,
        )
    except ValueError as e:
        # A few float ops (CEIL, ...) have no reference registration: the builtin one.
        if "Didn't find op" not in str(e):
            raise
        it = Interpreter(model_content=model, num_threads=1)
    details = it.get_input_details()
    if len(details) != len(inputs):
        raise RuntimeError(f"model has {len(details)} inputs, {len(inputs)} given")
    it.allocate_tensors()
    for d, x in zip(details, inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def dequantize(t: Tensor, data: np.ndarray) -> np.ndarray:
    scale = np.asarray(t.scale, np.float32)
    zp = np.asarray(t.zero_point, np.float32)
    if len(scale) > 1:
        bshape = [1] * data.ndim
        bshape[t.quantized_dimension] = len(scale)
        scale, zp = scale.reshape(bshape), zp.reshape(bshape)
    return ((data.astype(np.float32) - zp) * scale).astype(np.float32)


def float_twin(t: Tensor | None) -> Tensor | None:
    """The float counterpart of a (possibly quantized) tensor: same shape, dequantized
    constant data; unquantized int32 constants (shapes, axes) are kept."""
    if t is None:
        return None
    if not t.quantized:
        return Tensor(t.name, t.dtype if t.dtype != "i8" else "f32", t.shape, data=t.data)
    data = None if t.data is None else dequantize(t, t.data)
    return Tensor(t.name, "f32", t.shape, data=data)


def random_input(t: Tensor, rng) -> np.ndarray:
    if t.dtype == "bool":
        return rng.random(t.shape) < 0.5
    if t.dtype == "i32":
        lo, hi = t.value_range
        return rng.integers(int(lo), int(hi), t.shape).astype(np.int32)
    if t.flags.get("grid"):
        lo, hi = t.value_range
        return np.round(rng.uniform(lo, hi, t.shape)).astype(np.float32)
    if t.dtype == "i8":
        return rng.integers(-128, 128, t.shape).astype(np.int8)
    if t.dtype == "u8":
        return rng.integers(0, 256, t.shape).astype(np.uint8)
    lo, hi = t.value_range
    return rng.uniform(lo, hi, t.shape).astype(np.float32)


def calibrate(y: np.ndarray, rng) -> tuple[np.float32, int]:
    """Output qparams that cover the float range of `y` (and 0), sometimes narrowed."""
    lo, hi = min(float(y.min()), 0.0), max(float(y.max()), 0.0)
    shrink = pick(rng, [1.0, 1.0, 1.0, 0.9, 0.75])
    lo, hi = lo * shrink, hi * shrink
    if hi - lo < 1e-6:
        hi = lo + 1.0
    scale = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(round(-128 - lo / float(scale)), -128, 127))
    return scale, zp


@dataclass
class Result:
    name: str
    case: Case
    model: bytes
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]
    err_lsb: float | None


def realize(case: Case, rng) -> tuple[bytes, list[np.ndarray], list[np.ndarray], float | None]:
    """Fills output shapes (and calibrated qparams), builds the model and runs it."""
    variables = [t for t in case.inputs
                 if t is not None and not t.is_const and not t.flags.get("variable")]
    data = [random_input(t, rng) for t in variables]
    need_twin = any(o.shape is None or o.flags.get("calibrate") for o in case.outputs)
    twin_out = None
    if need_twin:
        t_inputs = [float_twin(t) for t in case.inputs]
        t_outputs = [Tensor(o.name, "f32", (1,)) for o in case.outputs]
        t_data = [dequantize(t, x) if t.quantized else x for t, x in zip(variables, data)]
        twin_out = run_model(build_model(case.op, case.options, t_inputs, t_outputs), t_data,
                             case.op not in BUILTIN_KERNEL_OPS)
        for o, y in zip(case.outputs, twin_out):
            if y.size == 0:
                raise Retry("empty output")
            o.shape = tuple(int(d) for d in y.shape)
            if o.flags.get("calibrate"):
                scale, zp = calibrate(y, rng)
                o.scale = np.array([scale], np.float32)
                o.zero_point = np.array([zp], np.int64)
    model = build_model(case.op, case.options, case.inputs, case.outputs)
    outs = run_model(model, data, case.op not in BUILTIN_KERNEL_OPS)
    for o, y in zip(case.outputs, outs):
        if len(np.unique(y)) < min(y.size, 2 if y.dtype == np.bool_ else 3):
            raise Retry("degenerate output")
        if tuple(y.shape) != tuple(o.shape):
            raise RuntimeError(f"output shape {y.shape} differs from the model's {o.shape}")
        if y.dtype != NUMPY_TYPES[o.dtype]:
            raise RuntimeError(f"output dtype {y.dtype} is not {o.dtype}")
    err = None
    if twin_out is not None:
        errs = []
        for o, y, ref in zip(case.outputs, outs, twin_out):
            if o.quantized:
                s, z = float(o.scale[0]), int(o.zero_point[0])
                ref_c = np.clip(ref, (-128 - z) * s, (127 - z) * s)
                errs.append(float(np.abs(dequantize(o, y) - ref_c).max() / s))
            elif o.dtype == "f32":
                errs.append(float(np.abs(y - ref).max()))
        err = max(errs) if errs else None
    return model, data, outs, err


def generate(only: set[str] | None) -> tuple[list[Result], dict]:
    results: list[Result] = []
    rejects: dict[str, list[str]] = {}
    for prefix, gen, dtypes, count in OPS:
        if only and prefix not in only:
            continue
        for dt in dtypes:
            rng = np.random.default_rng([BASE_SEED, zlib.crc32(f"{prefix}.{dt}".encode())])
            in_dt = dt.split("_")[0]
            takes_index = gen.__code__.co_argcount == 3
            for i in range(count):
                for attempt in range(50):
                    try:
                        case = gen(rng, in_dt, i) if takes_index else gen(rng, in_dt)
                        model, data, outs, err = realize(case, rng)
                        break
                    except Retry:
                        continue
                    except (RuntimeError, ValueError) as e:
                        msg = str(e).strip().splitlines()
                        rejects.setdefault(f"{prefix}.{dt}", []).append(msg[-1] if msg else repr(e))
                        continue
                else:
                    raise SystemExit(f"{prefix}.{dt}.{i:03d}: no valid draw in 50 attempts")
                name = f"{prefix}.{dt}.{i:03d}"
                results.append(Result(name, case, model, data, outs, err))
    return results, rejects


def write(results: list[Result], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():
        if p.suffix in (".tflite", ".npy") or p.name == "index.json":
            p.unlink()
    index = []
    for r in results:
        (out_dir / f"{r.name}.tflite").write_bytes(r.model)
        in_files, out_files = [], []
        for k, x in enumerate(r.inputs):
            in_files.append(f"{r.name}.in{k}.npy")
            np.save(out_dir / in_files[-1], np.asarray(x, order="C"))
        for k, y in enumerate(r.outputs):
            out_files.append(f"{r.name}.out{k}.npy")
            np.save(out_dir / out_files[-1], np.asarray(y, order="C"))
        index.append(
            dict(
                name=r.name,
                op=r.case.op,
                dtype=r.name.split(".")[1],
                model=f"{r.name}.tflite",
                inputs=in_files,
                outputs=out_files,
                options=r.case.options,
                params=r.case.params,
            )
        )
    text = json.dumps(dict(generator="models/golden/make_op_goldens.py", cases=index), indent=1)
    (out_dir / "index.json").write_text(text + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "ops")
    ap.add_argument("--only", action="append", help="op prefix to generate (repeatable; needs --out elsewhere)")
    args = ap.parse_args()
    fixtures = REPO / "tests" / "fixtures" / "ops"
    if args.only and args.out.resolve() == fixtures.resolve():
        # The output folder is rewritten whole: a partial run would drop every other op.
        ap.error(f"--only writes only those ops; give it another --out than {fixtures}")
    results, rejects = generate(set(args.only) if args.only else None)
    write(results, args.out)

    summary: dict[str, list] = {}
    for r in results:
        key = ".".join(r.name.split(".")[:2])
        entry = summary.setdefault(key, [0, 0.0])
        entry[0] += 1
        if r.err_lsb is not None:
            entry[1] = max(entry[1], r.err_lsb)
    print(f"{'case group':32} {'cases':>5}  max |int8 - float twin| (LSB) / f32 self-check")
    for key, (n, err) in summary.items():
        print(f"{key:32} {n:5}  {err:.3g}")
    total_bytes = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"{len(results)} cases, {total_bytes / 1e6:.2f} MB in {args.out}")
    for key, msgs in rejects.items():
        print(f"rejected draws {key}: {len(msgs)} (first: {msgs[0]})")


if __name__ == "__main__":
    main()
