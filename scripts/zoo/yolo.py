"""YOLO detectors Ferrite was not built around, float and int8, next to
onnxruntime (docs/quantization.md, "The bias trap"; docs/zoo.md).

Usage: python scripts/zoo/yolo.py FERRITE WORK_DIR [yolov8n.yaml yolo11n.yaml ...]

Builds each model from its Ultralytics config (random weights, seed 0: no
download), exports it to ONNX (opset 17, 320x320), converts it with Ferrite
in float and in int8 (calibrated on the ten photos of models/detect/images),
quantizes it with onnxruntime's quantize_static (per-channel QDQ, same
photos), and prints, on the photos' mirror images: Ferrite float against
onnxruntime (largest error relative to the output's largest magnitude), and
each output's SQNR against float for both int8 models. A comparison, not a
test.
"""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat,
                                      QuantType, quantize_static)
from PIL import Image
from ultralytics import YOLO

SIZE = 320
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREPROCESS = f"resize={SIZE}x{SIZE},scale=1/255,layout=nchw"


def load(path, flip):
    im = Image.open(path).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
    a = np.asarray(im, dtype=np.float32) / 255.0
    if flip:
        a = a[:, ::-1]
    return np.ascontiguousarray(a.transpose(2, 0, 1)[None])


def sqnr(ref, got):
    ref = ref.astype(np.float64)
    noise = np.sum((ref - got) ** 2)
    return 10 * np.log10(np.sum(ref**2) / max(noise, 1e-30))


def ferrite_run(ferrite, fer, x, work):
    np.save(f"{work}/x.npy", x)
    subprocess.run([ferrite, "run", fer, "-i", f"{work}/x.npy", "--out-dir", f"{work}/out"],
                   check=True, capture_output=True)
    with open(f"{work}/out/outputs.json") as f:
        return [np.load(f"{work}/out/{o['file']}") for o in json.load(f)]


def main():
    ferrite, work, configs = sys.argv[1], sys.argv[2], sys.argv[3:] or ["yolov8n.yaml", "yolo11n.yaml"]
    os.makedirs(work, exist_ok=True)
    photos = sorted(glob.glob(f"{ROOT}/models/detect/images/*.png"))
    calib = [load(p, False) for p in photos]
    evals = [load(p, True) for p in photos]
    for cfg in configs:
        name = cfg.replace(".yaml", "")
        onnx = f"{work}/{name}.onnx"
        torch.manual_seed(0)
        model = YOLO(cfg).model.eval()
        torch.onnx.export(model, torch.from_numpy(calib[0]), onnx, opset_version=17, dynamo=False,
                          input_names=["x"], output_names=["y"])
        fer, fer8 = f"{work}/{name}.fer", f"{work}/{name}-int8.fer"
        subprocess.run([ferrite, "convert", onnx, "-o", fer], check=True, capture_output=True)
        subprocess.run([ferrite, "convert", onnx, "-o", fer8, "--quantize", "int8",
                        "--calib", f"{ROOT}/models/detect/images", "--preprocess", PREPROCESS],
                       check=True, capture_output=True)

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter(calib)

            def get_next(self):
                v = next(self.it, None)
                return None if v is None else {"x": v}

        qdq = f"{work}/{name}.qdq.onnx"
        quantize_static(onnx, qdq, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        f32, q8 = ort.InferenceSession(onnx, opts), ort.InferenceSession(qdq, opts)
        names = [o.name for o in f32.get_outputs()]
        float_err, ort_db, fer_db = 0.0, {n: [] for n in names}, {n: [] for n in names}
        for x in evals:
            ref, peer = f32.run(None, {"x": x}), q8.run(None, {"x": x})
            ours, ours8 = ferrite_run(ferrite, fer, x, work), ferrite_run(ferrite, fer8, x, work)
            for k, n in enumerate(names):
                got = ours[k].reshape(ref[k].shape)
                float_err = max(float_err, float(np.abs(got - ref[k]).max() / np.abs(ref[k]).max()))
                ort_db[n].append(sqnr(ref[k], peer[k]))
                fer_db[n].append(sqnr(ref[k], ours8[k].reshape(ref[k].shape)))
        print(f"{name}: Ferrite float vs onnxruntime, max relative error {float_err:.1e}")
        for n in names:
            print(f"  {n:22s} int8 SQNR: Ferrite {np.mean(fer_db[n]):6.1f} dB, "
                  f"onnxruntime {np.mean(ort_db[n]):6.1f} dB")


if __name__ == "__main__":
    main()
