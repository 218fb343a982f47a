#!/usr/bin/env python3
"""Golden cases for TFLite's SSD post-processing op (TFLite_Detection_PostProcess).

Each case is a one-node model (box encodings and class scores in, constant anchors, the
custom op with its flexbuffer options), random SSD-like inputs (anchors on grids of
several sizes, so that boxes overlap and suppression has work to do) and the outputs of
LiteRT's own kernel. Cases cover fast and regular suppression, a background class or
none, several classes per detection, extra values per box (keypoints), a default
detections_per_class, and a threshold nothing passes. Written to
tests/fixtures/detection/ (NAME.tflite, NAME.in<k>.npy, NAME.out<k>.npy, index.json);
plus `tiny_ssd`: a whole (random-weight) SSD that ends in the op, its 16x16 image
input through a strided conv to box and class heads, with its golden on a random image,
and `tiny_ssd_u8`, the same with a uint8 image input.
Deterministic. Usage:

    python models/golden/make_detection_goldens.py [--out tests/fixtures/detection]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from flatbuffers import flexbuffers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tflite_builder import Op, Tensor, build_graph, build_model  # noqa: E402

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

CASES = [
    # name, num_classes, background, box values, options
    ("fast_bg", 5, True, 4, dict(max_detections=10, max_classes_per_detection=1,
                                 nms_score_threshold=0.3, nms_iou_threshold=0.6)),
    ("fast_top3_keypoints", 4, False, 8, dict(max_detections=8, max_classes_per_detection=3,
                                             nms_score_threshold=0.2, nms_iou_threshold=0.5)),
    ("regular_bg", 6, True, 4, dict(max_detections=12, max_classes_per_detection=1,
                                    detections_per_class=5, use_regular_nms=True,
                                    nms_score_threshold=0.25, nms_iou_threshold=0.45)),
    ("regular_default_per_class", 3, False, 4, dict(max_detections=20, max_classes_per_detection=1,
                                                    use_regular_nms=True, nms_score_threshold=0.05,
                                                    nms_iou_threshold=0.3)),
    ("fast_nothing_passes", 3, True, 4, dict(max_detections=6, max_classes_per_detection=1,
                                             nms_score_threshold=0.999, nms_iou_threshold=0.5)),
    # Scores on a coarse grid (as a uint8 model's are): many ties, across anchors and classes.
    ("regular_ties", 5, True, 4, dict(max_detections=15, max_classes_per_detection=1,
                                      detections_per_class=6, use_regular_nms=True,
                                      nms_score_threshold=0.3, nms_iou_threshold=0.5)),
    ("fast_ties", 5, True, 4, dict(max_detections=15, max_classes_per_detection=1,
                                   nms_score_threshold=0.3, nms_iou_threshold=0.5)),
    # detections_per_class above max_detections: TFLite uses the smaller.
    ("regular_per_class_above_max", 4, False, 4, dict(max_detections=4, max_classes_per_detection=1,
                                                      detections_per_class=50, use_regular_nms=True,
                                                      nms_score_threshold=0.2, nms_iou_threshold=0.5)),
]
TIES = {"regular_ties", "fast_ties"}
SCALES = dict(y_scale=10.0, x_scale=10.0, h_scale=5.0, w_scale=5.0)


def anchors() -> np.ndarray:
    """SSD-like anchors (y, x, h, w): 10x10 and 5x5 grids, three sizes per cell."""
    out = []
    for cells, sizes in [(10, (0.1, 0.15, 0.2)), (5, (0.3, 0.45, 0.6))]:
        for i in range(cells):
            for j in range(cells):
                for s in sizes:
                    out.append(((i + 0.5) / cells, (j + 0.5) / cells, s, s * 0.8))
    return np.asarray(out, np.float32)


def options_bytes(num_classes: int, opts: dict) -> bytes:
    fbb = flexbuffers.Builder()
    with fbb.Map():
        fbb.Int("num_classes", num_classes)
        for key, value in opts.items():
            if isinstance(value, bool):
                fbb.Bool(key, value)
            elif isinstance(value, int):
                fbb.Int(key, value)
            else:
                fbb.Float(key, value)
        for key, value in SCALES.items():
            fbb.Float(key, value)
    return bytes(fbb.Finish())


def tiny_ssd(uint8_input: bool = False) -> bytes:
    """A 16x16x3 image (values in [-1, 1]) -> 3x3 stride-2 conv (8 channels, RELU) ->
    1x1 box head (2 anchors x 4) and 1x1 class head (2 anchors x (background + 2
    classes), LOGISTIC) -> reshapes -> TFLite_Detection_PostProcess over 128 anchors
    (an 8x8 grid, two sizes), fast suppression, at most 5 detections. With
    `uint8_input` the image comes in as uint8 (scale 2/255, zero point 128) and is
    dequantized first, as in models exported with a uint8 input."""
    rng = np.random.default_rng(7)
    t = [
        Tensor("image", "f32", (1, 16, 16, 3)),
        Tensor("w0", "f32", (8, 3, 3, 3), data=rng.normal(0, 0.5, (8, 3, 3, 3)).astype(np.float32)),
        Tensor("b0", "f32", (8,), data=rng.normal(0, 0.1, 8).astype(np.float32)),
        Tensor("features", "f32", (1, 8, 8, 8)),
        Tensor("wb", "f32", (8, 1, 1, 8), data=rng.normal(0, 0.5, (8, 1, 1, 8)).astype(np.float32)),
        Tensor("bb", "f32", (8,), data=np.zeros(8, np.float32)),
        Tensor("box_map", "f32", (1, 8, 8, 8)),
        Tensor("box_shape", "i32", (3,), data=np.array([1, 128, 4], np.int32)),
        Tensor("box_encodings", "f32", (1, 128, 4)),
        Tensor("wc", "f32", (6, 1, 1, 8), data=rng.normal(0, 1.0, (6, 1, 1, 8)).astype(np.float32)),
        Tensor("bc", "f32", (6,), data=np.array([1.0, -1.0, -1.5] * 2, np.float32)),
        Tensor("class_logits", "f32", (1, 8, 8, 6)),
        Tensor("class_map", "f32", (1, 8, 8, 6)),
        Tensor("class_shape", "i32", (3,), data=np.array([1, 128, 3], np.int32)),
        Tensor("class_predictions", "f32", (1, 128, 3)),
        Tensor("anchors", "f32", (128, 4), data=np.asarray(
            [((i + 0.5) / 8, (j + 0.5) / 8, s, s) for i in range(8) for j in range(8)
             for s in (0.2, 0.35)], np.float32)),
        Tensor("detection_boxes", "f32", (1, 5, 4)),
        Tensor("detection_classes", "f32", (1, 5)),
        Tensor("detection_scores", "f32", (1, 5)),
        Tensor("num_detections", "f32", (1,)),
    ]
    conv = dict(padding=0, stride_w=2, stride_h=2, fused_activation_function=1)
    one = dict(padding=1, stride_w=1, stride_h=1, fused_activation_function=0)
    opts = dict(max_detections=5, max_classes_per_detection=1,
                nms_score_threshold=0.5, nms_iou_threshold=0.5)
    ops = [
        Op("CONV_2D", conv, [0, 1, 2], [3]),
        Op("CONV_2D", one, [3, 4, 5], [6]),
        Op("RESHAPE", {}, [6, 7], [8]),
        Op("CONV_2D", one, [3, 9, 10], [11]),
        Op("LOGISTIC", {}, [11], [12]),
        Op("RESHAPE", {}, [12, 13], [14]),
        Op("CUSTOM:TFLite_Detection_PostProcess", {}, [8, 14, 15], [16, 17, 18, 19],
           options_bytes(2, opts)),
    ]
    if uint8_input:
        t.append(Tensor("image_u8", "u8", (1, 16, 16, 3), scale=np.array([2 / 255], np.float32),
                        zero_point=np.array([128])))
        ops.insert(0, Op("DEQUANTIZE", {}, [len(t) - 1], [0]))
        return build_graph(t, ops, [len(t) - 1], [16, 17, 18, 19], "ferrite tiny SSD, uint8 input")
    return build_graph(t, ops, [0], [16, 17, 18, 19], "ferrite tiny SSD")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "tests/fixtures/detection"))
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    anc = anchors()
    n = len(anc)
    index = []
    for k, (name, num_classes, background, coords, opts) in enumerate(CASES):
        rng = np.random.default_rng(1000 + k)
        width = num_classes + int(background)
        boxes = rng.normal(0.0, 1.0, (1, n, coords)).astype(np.float32)
        logits = rng.normal(-3.0, 2.0, (1, n, width))
        # A few objects: neighbouring anchors agree on a class.
        for _ in range(6):
            a = rng.integers(0, n)
            c = rng.integers(int(background), width)
            logits[0, max(0, a - 4):a + 4, c] += rng.uniform(3.0, 6.0)
        scores = (1 / (1 + np.exp(-logits))).astype(np.float32)
        if name in TIES:
            scores = (np.round(scores * 16) / 16).astype(np.float32)
        slots = opts["max_detections"] * opts["max_classes_per_detection"]
        model = build_model(
            "CUSTOM:TFLite_Detection_PostProcess", {},
            [Tensor("box_encodings", "f32", (1, n, coords)),
             Tensor("class_predictions", "f32", (1, n, width)),
             Tensor("anchors", "f32", (n, 4), data=anc)],
            [Tensor("detection_boxes", "f32", (1, slots, 4)),
             Tensor("detection_classes", "f32", (1, slots)),
             Tensor("detection_scores", "f32", (1, slots)),
             Tensor("num_detections", "f32", (1,))],
            custom_options=options_bytes(num_classes, opts))
        (out / f"{name}.tflite").write_bytes(model)
        interp = Interpreter(model_content=model)
        interp.allocate_tensors()
        ins = interp.get_input_details()
        interp.set_tensor(ins[0]["index"], boxes)
        interp.set_tensor(ins[1]["index"], scores)
        interp.invoke()
        outs = [np.array(interp.get_tensor(d["index"])) for d in interp.get_output_details()]
        # Fast suppression leaves the slots past its detections unwritten
        # (whatever the arena held): zero them, so the files are reproducible.
        written = int(outs[3][0]) * opts["max_classes_per_detection"]
        for o in outs[:3]:
            o[0, written:] = 0
        np.save(out / f"{name}.in0.npy", boxes)
        np.save(out / f"{name}.in1.npy", scores)
        for i, o in enumerate(outs):
            np.save(out / f"{name}.out{i}.npy", np.asarray(o, np.float32))
        count = int(outs[3][0])
        print(f"{name}: {count} detections of {slots} slots")
        index.append({"name": name, "model": f"{name}.tflite",
                      "inputs": [f"{name}.in0.npy", f"{name}.in1.npy"],
                      "outputs": [f"{name}.out{i}.npy" for i in range(4)],
                      "slots_per_detection": opts["max_classes_per_detection"],
                      "detections": count, "exact": True})
    (out / "tiny_ssd_u8.tflite").write_bytes(tiny_ssd(uint8_input=True))
    model = tiny_ssd()
    (out / "tiny_ssd.tflite").write_bytes(model)
    image = np.random.default_rng(8).uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)
    interp = Interpreter(model_content=model)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], image)
    interp.invoke()
    outs = [interp.get_tensor(d["index"]) for d in interp.get_output_details()]
    np.save(out / "tiny_ssd.in0.npy", image)
    for i, o in enumerate(outs):
        np.save(out / f"tiny_ssd.out{i}.npy", np.asarray(o, np.float32))
    print(f"tiny_ssd: {int(outs[3][0])} detections of 5 slots")
    index.append({"name": "tiny_ssd", "model": "tiny_ssd.tflite", "inputs": ["tiny_ssd.in0.npy"],
                  "outputs": [f"tiny_ssd.out{i}.npy" for i in range(4)],
                  "slots_per_detection": 1, "detections": int(outs[3][0]),
                  # Its convs sum in another order than LiteRT's: boxes within 1e-5.
                  "exact": False})
    (out / "index.json").write_text(json.dumps({"cases": index}, indent=1) + "\n")


if __name__ == "__main__":
    main()
