#!/usr/bin/env python3
"""A legacy uint8 model made by TensorFlow's own converter (not by Ferrite's builder):
a small MobileNet-v1-shaped classifier (3x3/2 conv, two depthwise + pointwise pairs, RELU6,
a global MEAN, a 1x1 conv to 10 logits, SOFTMAX), written as a TF1 graph with fake-quant
ranges, as quantization-aware training leaves it, and converted with
`tf.compat.v1.lite.TFLiteConverter` and `inference_type=tf.uint8`: how the classic
`*_quant.tflite` models were made. Seeded random weights; the filter ranges are not
centred on 0, so the filters' uint8 zero-points are not 128.

And a small SSD made the way the TensorFlow Object Detection API's `export_tflite_ssd_graph`
and `tflite_convert` made SSD MobileNet's quantized COCO model: box and class heads on two
feature maps (16x16 and 8x8, two anchor sizes each, 640 anchors), reshaped and
concatenated, a sigmoid, the anchors as a constant, and a `TFLite_Detection_PostProcess`
node (fast suppression, 3 classes plus background, at most 10 detections) added to the
frozen GraphDef, converted with `allow_custom_ops`: the converter quantizes everything to
uint8, anchors included.

Writes tests/fixtures/uint8/tf_u8_net.tflite and tf_u8_ssd.tflite;
`make_uint8_goldens.py` then writes their LiteRT goldens. Needs `pip install tensorflow-cpu==2.21.0` (not in models/requirements.txt:
it is large, and only this file needs it). Usage:

    python models/golden/make_tf_uint8_model.py [--out tests/fixtures/uint8]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import tempfile

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2, node_def_pb2, types_pb2

REPO = Path(__file__).resolve().parents[2]


def fake_quant_layer(rng, h, cin, cout, k, stride, depthwise=False, relu=True, lo=-8.0, hi=8.0):
    """A conv or depthwise conv with fake-quant filter and output ranges, RELU6 or none."""
    fq = tf.quantization.fake_quant_with_min_max_args
    if depthwise:
        w = fq(tf.constant(rng.normal(0, 0.4, (k, k, cin, 1)).astype(np.float32)), -1.2, 1.0)
        y = tf.nn.depthwise_conv2d(h, w, [1, stride, stride, 1], "SAME")
    else:
        w = fq(tf.constant(rng.normal(0.05, 0.3, (k, k, cin, cout)).astype(np.float32)), -0.9, 1.1)
        y = tf.nn.conv2d(h, w, [1, stride, stride, 1], "SAME")
    y = tf.nn.bias_add(y, tf.constant(rng.normal(0, 0.1, (cout,)).astype(np.float32)))
    if relu:
        return fq(tf.nn.relu6(y), 0.0, 6.0)
    return fq(y, lo, hi)


def classifier(path: Path) -> None:
    rng = np.random.default_rng(0)
    fq = tf.quantization.fake_quant_with_min_max_args
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (1, 64, 64, 3), name="input")
        h = fq(x, -1.0, 1.0)
        h = fake_quant_layer(rng, h, 3, 16, 3, 2)
        h = fake_quant_layer(rng, h, 16, 16, 3, 1, depthwise=True)
        h = fake_quant_layer(rng, h, 16, 32, 1, 1)
        h = fake_quant_layer(rng, h, 32, 32, 3, 2, depthwise=True)
        h = fake_quant_layer(rng, h, 32, 32, 1, 1)
        pooled = fq(tf.reduce_mean(h, axis=[1, 2], keepdims=True), 0.0, 6.0)
        logits = tf.reshape(fake_quant_layer(rng, pooled, 32, 10, 1, 1, relu=False), (1, 10))
        probs = fq(tf.nn.softmax(logits), 0.0, 255 / 256, name="probs")
        with tf.compat.v1.Session(graph=g) as sess:
            conv = tf.compat.v1.lite.TFLiteConverter.from_session(sess, [x], [probs])
            conv.inference_type = tf.uint8
            conv.quantized_input_stats = {"input": (127.5, 127.5)}
            path.write_bytes(conv.convert())


def ssd(path: Path) -> None:
    rng = np.random.default_rng(0)
    fq = tf.quantization.fake_quant_with_min_max_args
    classes = 4  # background + 3
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (1, 64, 64, 3),
                                     name="normalized_input_image_tensor")
        h = fq(x, -1.0, 1.0)
        h = fake_quant_layer(rng, h, 3, 16, 3, 2)
        h = fake_quant_layer(rng, h, 16, 16, 3, 2, depthwise=True)
        f1 = fake_quant_layer(rng, h, 16, 32, 1, 1)
        h = fake_quant_layer(rng, f1, 32, 32, 3, 2, depthwise=True)
        f2 = fake_quant_layer(rng, h, 32, 32, 1, 1)
        boxes, scores, anchors = [], [], []
        for f, n, sizes, r in [(f1, 16, (0.1, 0.2), 4.0), (f2, 8, (0.3, 0.5), 6.0)]:
            a = len(sizes)
            b = fake_quant_layer(rng, f, 32, a * 4, 1, 1, relu=False, lo=-r, hi=r)
            boxes.append(tf.reshape(b, (1, n * n * a, 4)))
            c = fake_quant_layer(rng, f, 32, a * classes, 1, 1, relu=False, lo=-10.0, hi=10.0)
            scores.append(tf.reshape(c, (1, n * n * a, classes)))
            anchors += [((i + 0.5) / n, (j + 0.5) / n, s, s)
                        for i in range(n) for j in range(n) for s in sizes]
        fq(tf.concat(boxes, axis=1), -6.0, 6.0, name="raw_outputs/box_encodings")
        fq(tf.sigmoid(fq(tf.concat(scores, axis=1), -10.0, 10.0)), 0.0, 255 / 256,
           name="raw_outputs/class_predictions")
        tf.constant(np.asarray(anchors, np.float32), name="anchors")
        graph_def = g.as_graph_def()
    # The post-processing node, as export_tflite_ssd_graph adds it.
    node = node_def_pb2.NodeDef(name="TFLite_Detection_PostProcess",
                                op="TFLite_Detection_PostProcess")
    node.input.extend(["raw_outputs/box_encodings", "raw_outputs/class_predictions", "anchors"])
    attr = attr_value_pb2.AttrValue
    for k, v in dict(max_detections=10, max_classes_per_detection=1, detections_per_class=100,
                     num_classes=classes - 1).items():
        node.attr[k].CopyFrom(attr(i=v))
    for k, v in dict(nms_score_threshold=0.3, nms_iou_threshold=0.6, y_scale=10.0,
                     x_scale=10.0, h_scale=5.0, w_scale=5.0).items():
        node.attr[k].CopyFrom(attr(f=v))
    for k, v in dict(use_regular_nms=False, _output_quantized=True,
                     _support_output_type_float_in_quantized_op=True).items():
        node.attr[k].CopyFrom(attr(b=v))
    node.attr["_output_types"].CopyFrom(
        attr(list=attr_value_pb2.AttrValue.ListValue(type=[types_pb2.DT_FLOAT] * 4)))
    graph_def.node.append(node)
    outputs = ["TFLite_Detection_PostProcess"] + [f"TFLite_Detection_PostProcess:{k}"
                                                   for k in (1, 2, 3)]
    with tempfile.TemporaryDirectory() as tmp:
        pb = Path(tmp) / "ssd.pb"
        pb.write_bytes(graph_def.SerializeToString())
        conv = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
            str(pb), ["normalized_input_image_tensor"], outputs,
            input_shapes={"normalized_input_image_tensor": [1, 64, 64, 3]})
        conv.allow_custom_ops = True
        conv.inference_type = tf.uint8
        conv.quantized_input_stats = {"normalized_input_image_tensor": (128.0, 128.0)}
        path.write_bytes(conv.convert())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "uint8")
    out = ap.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    tf.compat.v1.disable_eager_execution()
    for name, make in [("tf_u8_net", classifier), ("tf_u8_ssd", ssd)]:
        make(out / f"{name}.tflite")
        print(f"wrote {out / name}.tflite")


if __name__ == "__main__":
    main()
