"""Writes onnxruntime goldens for the ONNX model tests (tests/onnx_models.rs).

Usage: models/onnx/setup-venv.sh && models/cache/onnx-venv/bin/python models/onnx/make_goldens.py

For each model, inputs (the scikit-image photos in models/cache/photos, preprocessed as the model
expects, plus seeded random inputs) and onnxruntime's outputs (CPU, ORT_DISABLE_ALL graph
optimizations for float models so the reference is the plain op-by-op computation) are written
to models/cache/onnx/golden/<model>/ as inNN.npy and outNN_K.npy. Too large to commit (a 224x224
input is 600 kB); CI regenerates them (a few seconds).

Models: $FERRITE_SHARED_MODELS (default ../shared/models) mobilenet_v2_torchvision.onnx and
mobilenet_v2_torchvision_qdq_int8.onnx, and models/cache/onnx/face_detection_front_128x128_barracuda.onnx
(models/onnx/fetch.sh).
"""
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
cache = os.path.join(repo, "models", "cache")
shared = os.environ.get("FERRITE_SHARED_MODELS", os.path.join(repo, "..", "shared", "models"))
photos = ["chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg", "astronaut.png"]


def load_photo(name, size):
    img = Image.open(os.path.join(cache, "photos", name)).convert("RGB")
    img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def imagenet_nchw(x):
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    return ((x - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)


def run(model, inputs, out_dir, optimize):
    opts = ort.SessionOptions()
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    os.makedirs(out_dir, exist_ok=True)
    for i, x in enumerate(inputs):
        outs = sess.run(None, {name: x})
        np.save(os.path.join(out_dir, f"in{i:02d}.npy"), x)
        for k, o in enumerate(outs):
            np.save(os.path.join(out_dir, f"out{i:02d}_{k}.npy"), np.ascontiguousarray(o))
    print(f"{out_dir}: {len(inputs)} cases")


def main():
    rng = np.random.default_rng(20261129)
    golden = os.path.join(cache, "onnx", "golden")
    mnv2 = os.path.join(shared, "mobilenet_v2_torchvision.onnx")
    qdq = os.path.join(shared, "mobilenet_v2_torchvision_qdq_int8.onnx")
    if os.path.exists(mnv2):
        xs = [imagenet_nchw(load_photo(p, 224)) for p in photos]
        xs += [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(3)]
        run(mnv2, xs, os.path.join(golden, "mobilenet_v2"), optimize=False)
        # The QDQ model runs with ORT's default optimizations: that is what turns
        # QDQ groups into its int8 kernels, the behaviour the issue compares against.
        run(qdq, xs, os.path.join(golden, "mobilenet_v2_qdq"), optimize=True)
    else:
        print(f"skipped MobileNetV2: {mnv2} not found", file=sys.stderr)
    bf = os.path.join(cache, "onnx", "face_detection_front_128x128_barracuda.onnx")
    if os.path.exists(bf):
        xs = [(load_photo(p, 128) * 2.0 - 1.0)[None].astype(np.float32) for p in photos]
        xs += [rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32) for _ in range(3)]
        run(bf, xs, os.path.join(golden, "blazeface_front"), optimize=False)
    else:
        print(f"skipped BlazeFace: {bf} not found (run models/onnx/fetch.sh)", file=sys.stderr)


if __name__ == "__main__":
    main()
