#!/usr/bin/env python3
"""Legacy uint8 models (asymmetric uint8 activations and weights, as TFLite's
`inference_type=uint8` converter wrote them) and their LiteRT outputs.

Each model is first built in float with seeded random weights; LiteRT runs it on the
calibration inputs to find every activation's range; then the same graph is written with
uint8 tensors: activations min/max quantized (the range widened to hold 0), LOGISTIC and
SOFTMAX outputs at 1/256, filters per-tensor uint8 with their own zero-point, biases int32
at input scale x filter scale. LiteRT's reference kernels give the golden outputs.

- `u8_classifier`: 16x16x3 uint8 image -> 3x3/2 conv (RELU6) -> 3x3 depthwise (RELU) ->
  1x1 conv -> ADD (the first conv's output) -> global average pool -> RESHAPE -> fully
  connected -> SOFTMAX, uint8 out. Filters with zero-points far from 128, so some channels
  do not fit int8 symmetric as they are.
- `u8_classifier_exact`: the same with every filter at zero-point 128 and its values in
  [1, 255], so each fits int8 as it is.
- `u8_ssd`: tiny_ssd of make_detection_goldens.py, all uint8 (image, convs, heads, the
  LOGISTIC, the anchors) into TFLite_Detection_PostProcess: what SSD MobileNet v1's quantized
  COCO model looks like.

- `tf_u8_net`, `tf_u8_ssd` (when their .tflite files exist in the output folder): the
  classifier and the SSD `make_tf_uint8_model.py` makes with TensorFlow's converter, on
  four detection photos stretched to 64x64 and four random images.

Written to tests/fixtures/uint8/ (NAME.tflite, NAME.in<k>.npy, NAME.out<k>.npy, index.json).
Deterministic. Usage:

    python models/golden/make_uint8_goldens.py [--out tests/fixtures/uint8]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_detection_goldens import options_bytes  # noqa: E402
from tflite_builder import Op, Tensor, build_graph  # noqa: E402

from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FILTER_OPS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}
FIXED_OUTPUT = {"LOGISTIC", "SOFTMAX"}


def ranges(model: bytes, inputs: list[np.ndarray]) -> dict[str, tuple[float, float]]:
    """min/max of every float tensor over `inputs`, by tensor name."""
    it = Interpreter(model_content=model, experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    idx = it.get_input_details()[0]["index"]
    out: dict[str, tuple[float, float]] = {}
    for x in inputs:
        it.set_tensor(idx, x)
        it.invoke()
        for d in it.get_tensor_details():
            if d["dtype"] != np.float32:
                continue
            try:
                v = it.get_tensor(d["index"])
            except ValueError:
                continue
            lo, hi = out.get(d["name"], (0.0, 0.0))
            out[d["name"]] = (min(lo, float(v.min())), max(hi, float(v.max())))
    return out


def u8_params(lo: float, hi: float) -> tuple[float, int]:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255 if hi > lo else 1.0
    return scale, int(np.clip(round(-lo / scale), 0, 255))


def to_uint8(tensors: list[Tensor], ops: list[Op], rng_of: dict, exact: bool) -> list[Tensor]:
    """The uint8 version of a float graph (module docs); `rng_of`: activation ranges."""
    filters = {op.inputs[1]: (op.op, op.inputs[0], op.inputs[2] if len(op.inputs) > 2 else -1)
               for op in ops if op.op in FILTER_OPS}
    fixed = {o for op in ops if op.op in FIXED_OUTPUT for o in op.outputs}
    # The post-processing op's outputs stay float; its anchors become uint8.
    float_out = {o for op in ops if op.op.startswith("CUSTOM:") for o in op.outputs}
    out = list(tensors)
    qp: dict[int, tuple[float, int]] = {}
    for i, t in enumerate(tensors):
        if t.dtype != "f32" or i in float_out:
            continue
        if t.is_const and i in filters:
            continue  # below, after the input scales are known
        if t.is_const and any(i in op.inputs[2:3] for op in ops if op.op in FILTER_OPS):
            continue  # biases, below
        if i in fixed:
            s, z = 1 / 256, 0
        elif t.is_const:
            s, z = u8_params(float(t.data.min()), float(t.data.max()))
        else:
            s, z = u8_params(*rng_of[t.name])
        qp[i] = (s, z)
        data = None
        if t.is_const:
            data = np.clip(np.round(t.data / s) + z, 0, 255).astype(np.uint8)
        out[i] = Tensor(t.name, "u8", t.shape, data=data, scale=np.array([s], np.float32),
                        zero_point=np.array([z]))
    # Ops that move values without rescaling share their input's parameters.
    for op in ops:
        if op.op in ("RESHAPE", "AVERAGE_POOL_2D", "MAX_POOL_2D"):
            i, o = op.inputs[0], op.outputs[0]
            qp[o] = qp[i]
            out[o] = Tensor(out[o].name, "u8", out[o].shape, scale=out[i].scale,
                            zero_point=out[i].zero_point)
    for w, (op, x, b) in filters.items():
        v = tensors[w].data
        if exact:
            s, z = float(np.abs(v).max()) / 127, 128
        else:
            s, z = u8_params(float(v.min()), float(v.max()))
        q = np.clip(np.round(v / s) + z, 0, 255).astype(np.uint8)
        out[w] = Tensor(tensors[w].name, "u8", tensors[w].shape, data=q,
                        scale=np.array([s], np.float32), zero_point=np.array([z]))
        if b >= 0:
            bs = np.float32(qp[x][0]) * np.float32(s)
            out[b] = Tensor(tensors[b].name, "i32", tensors[b].shape,
                            data=np.round(tensors[b].data / bs).astype(np.int32),
                            scale=np.array([bs], np.float32), zero_point=np.array([0]))
    return out


def golden_cases(it: Interpreter, name: str, xs: list[np.ndarray], out: Path) -> list[dict]:
    """Runs `it` (the model `name`) on each input of `xs`; writes NAME.in<k>.npy and
    NAME.out<k>_<j>.npy and returns their index entries."""
    it.allocate_tensors()
    cases = []
    for k, x in enumerate(xs):
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        case = {"name": f"{name}#{k}", "model": f"{name}.tflite",
                "inputs": [f"{name}.in{k}.npy"], "outputs": []}
        np.save(out / case["inputs"][0], x)
        for j, d in enumerate(it.get_output_details()):
            f = f"{name}.out{k}_{j}.npy"
            np.save(out / f, it.get_tensor(d["index"]))
            case["outputs"].append(f)
        cases.append(case)
    return cases


def classifier() -> tuple[list[Tensor], list[Op]]:
    rng = np.random.default_rng(11)

    def w(*shape, sd=0.4, mean=0.0):
        return rng.normal(mean, sd, shape).astype(np.float32)

    t = [
        Tensor("image", "f32", (1, 16, 16, 3)),
        Tensor("w0", "f32", (8, 3, 3, 3), data=w(8, 3, 3, 3, mean=0.1)),
        Tensor("b0", "f32", (8,), data=w(8, sd=0.2)),
        Tensor("c0", "f32", (1, 8, 8, 8)),
        Tensor("wd", "f32", (1, 3, 3, 8), data=w(1, 3, 3, 8, sd=0.5, mean=-0.15)),
        Tensor("bd", "f32", (8,), data=w(8, sd=0.1)),
        Tensor("d0", "f32", (1, 8, 8, 8)),
        Tensor("w1", "f32", (8, 1, 1, 8), data=w(8, 1, 1, 8, sd=0.5, mean=0.2)),
        Tensor("b1", "f32", (8,), data=w(8, sd=0.1)),
        Tensor("c1", "f32", (1, 8, 8, 8)),
        Tensor("sum", "f32", (1, 8, 8, 8)),
        Tensor("pooled", "f32", (1, 1, 1, 8)),
        Tensor("flat_shape", "i32", (2,), data=np.array([1, 8], np.int32)),
        Tensor("flat", "f32", (1, 8)),
        Tensor("wf", "f32", (5, 8), data=w(5, 8, sd=0.8, mean=-0.2)),
        Tensor("bf", "f32", (5,), data=w(5, sd=0.2)),
        Tensor("logits", "f32", (1, 5)),
        Tensor("probs", "f32", (1, 5)),
    ]
    ops = [
        Op("CONV_2D", dict(padding=0, stride_w=2, stride_h=2, fused_activation_function=3),
           [0, 1, 2], [3]),
        Op("DEPTHWISE_CONV_2D", dict(padding=0, stride_w=1, stride_h=1, depth_multiplier=1,
                                     fused_activation_function=1), [3, 4, 5], [6]),
        Op("CONV_2D", dict(padding=1, stride_w=1, stride_h=1, fused_activation_function=0),
           [6, 7, 8], [9]),
        Op("ADD", dict(fused_activation_function=0), [9, 3], [10]),
        Op("AVERAGE_POOL_2D", dict(padding=1, stride_w=8, stride_h=8, filter_width=8,
                                   filter_height=8, fused_activation_function=0), [10], [11]),
        Op("RESHAPE", {}, [11, 12], [13]),
        Op("FULLY_CONNECTED", dict(fused_activation_function=0), [13, 14, 15], [16]),
        Op("SOFTMAX", dict(beta=1.0), [16], [17]),
    ]
    return t, ops


def ssd() -> tuple[list[Tensor], list[Op]]:
    """tiny_ssd's layers with each head split in two 1x1 convs (one anchor size each),
    reshaped and concatenated as SSD MobileNet joins its feature maps: the concatenated
    inputs have ranges of their own, so the uint8 CONCATENATION rescales."""
    rng = np.random.default_rng(7)

    def w(*shape, sd=0.5):
        return rng.normal(0, sd, shape).astype(np.float32)

    t = [
        Tensor("image", "f32", (1, 16, 16, 3)),
        Tensor("w0", "f32", (8, 3, 3, 3), data=w(8, 3, 3, 3)),
        Tensor("b0", "f32", (8,), data=w(8, sd=0.1)),
        Tensor("features", "f32", (1, 8, 8, 8)),
        Tensor("box_shape", "i32", (3,), data=np.array([1, 64, 4], np.int32)),
        Tensor("class_shape", "i32", (3,), data=np.array([1, 64, 3], np.int32)),
    ]
    ops = [Op("CONV_2D", dict(padding=0, stride_w=2, stride_h=2, fused_activation_function=1),
              [0, 1, 2], [3])]
    one = dict(padding=1, stride_w=1, stride_h=1, fused_activation_function=0)

    def head(name, channels, sd, bias, shape):
        k = len(t)
        t.extend([
            Tensor(f"w{name}", "f32", (channels, 1, 1, 8), data=w(channels, 1, 1, 8, sd=sd)),
            Tensor(f"b{name}", "f32", (channels,), data=np.asarray(bias, np.float32)),
            Tensor(f"{name}_map", "f32", (1, 8, 8, channels)),
            Tensor(f"{name}_flat", "f32", (1, 64, channels)),
        ])
        ops.append(Op("CONV_2D", one, [3, k, k + 1], [k + 2]))
        ops.append(Op("RESHAPE", {}, [k + 2, shape], [k + 3]))
        return k + 3

    boxes = [head("box_small", 4, 0.3, np.zeros(4), 4), head("box_large", 4, 0.7, np.zeros(4), 4)]
    classes = [head("class_small", 3, 0.6, [1.0, -1.0, -1.5], 5),
               head("class_large", 3, 1.2, [1.5, -0.5, -2.0], 5)]
    k = len(t)
    t.extend([
        Tensor("box_encodings", "f32", (1, 128, 4)),
        Tensor("class_logits", "f32", (1, 128, 3)),
        Tensor("class_predictions", "f32", (1, 128, 3)),
        Tensor("anchors", "f32", (128, 4), data=np.asarray(
            [((i + 0.5) / 8, (j + 0.5) / 8, s, s) for s in (0.2, 0.35) for i in range(8)
             for j in range(8)], np.float32)),
        Tensor("detection_boxes", "f32", (1, 5, 4)),
        Tensor("detection_classes", "f32", (1, 5)),
        Tensor("detection_scores", "f32", (1, 5)),
        Tensor("num_detections", "f32", (1,)),
    ])
    opts = dict(max_detections=5, max_classes_per_detection=1,
                nms_score_threshold=0.5, nms_iou_threshold=0.5)
    cat = dict(axis=1, fused_activation_function=0)
    ops += [
        Op("CONCATENATION", cat, boxes, [k]),
        Op("CONCATENATION", cat, classes, [k + 1]),
        Op("LOGISTIC", {}, [k + 1], [k + 2]),
        Op("CUSTOM:TFLite_Detection_PostProcess", {}, [k, k + 2, k + 3],
           [k + 4, k + 5, k + 6, k + 7], options_bytes(2, opts)),
    ]
    return t, ops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "uint8")
    out = ap.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for name, make, exact, outputs, n_test in [
        ("u8_classifier", classifier, False, [17], 8),
        ("u8_classifier_exact", classifier, True, [17], 8),
        ("u8_ssd", ssd, False, [26, 27, 28, 29], 6),
    ]:
        tensors, ops = make()
        rng = np.random.default_rng(3)
        calib = [rng.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32) for _ in range(16)]
        rng_of = ranges(build_graph(tensors, ops, [0], outputs), calib)
        q = to_uint8(tensors, ops, rng_of, exact)
        model = build_graph(q, ops, [0], outputs, f"ferrite legacy uint8 golden ({name})")
        (out / f"{name}.tflite").write_bytes(model)
        xs = [rng.integers(0, 256, (1, 16, 16, 3)).astype(np.uint8) for _ in range(n_test)]
        index += golden_cases(Interpreter(model_content=model,
                                          experimental_op_resolver_type=OpResolverType.BUILTIN_REF),
                              name, xs, out)
        zps = [int(t.zero_point[0]) for t in q if t.dtype == "u8" and t.is_const
               and t.name.startswith("w")]
        print(f"{name}: filter zero-points {zps}")
    # The models TensorFlow's converter wrote (make_tf_uint8_model.py): four detection
    # photos stretched to 64x64 (Pillow, bilinear) and four random images.
    photos = sorted((REPO / "models" / "detect" / "images").glob("*.png"))[:4]
    for name in ["tf_u8_net", "tf_u8_ssd"]:
        path = out / f"{name}.tflite"
        if not path.exists():
            print(f"{path} is missing (make_tf_uint8_model.py writes it): no goldens for it")
            continue
        xs = [np.asarray(Image.open(p).convert("RGB").resize((64, 64), Image.BILINEAR),
                         np.uint8)[None] for p in photos]
        rng = np.random.default_rng(5)
        xs += [rng.integers(0, 256, (1, 64, 64, 3)).astype(np.uint8) for _ in range(4)]
        index += golden_cases(Interpreter(model_path=str(path),
                                          experimental_op_resolver_type=OpResolverType.BUILTIN_REF),
                              name, xs, out)
    (out / "index.json").write_text(json.dumps({"cases": index}, indent=1) + "\n")


if __name__ == "__main__":
    main()
