#!/usr/bin/env python3
"""Keras 3 application models (random weights) through TensorFlow's TFLiteConverter, then
Ferrite's converter, against LiteRT on one input: does Ferrite take what Keras users have?

Usage (needs tensorflow-cpu==2.21.0 and ai-edge-litert, a release `ferrite` binary):

    python scripts/zoo/keras_apps.py FERRITE WORK_DIR [MODEL ...]

MODEL names a `keras.applications` constructor (default: MobileNetV3Small EfficientNetB0
EfficientNetV2B0 ConvNeXtTiny). Prints, per model, the largest absolute difference of the
outputs over their largest magnitude, and whether the top-1 class agrees. Not a test (the
models are large); the small Keras graphs with the same patterns are in
tests/fixtures/keras (models/golden/make_keras_goldens.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

DEFAULT = ["MobileNetV3Small", "EfficientNetB0", "EfficientNetV2B0", "ConvNeXtTiny"]


def main() -> None:
    ferrite, work = sys.argv[1], Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    for name in sys.argv[3:] or DEFAULT:
        tf.keras.utils.set_random_seed(0)
        model = getattr(tf.keras.applications, name)(weights=None, input_shape=(224, 224, 3))
        src = work / f"{name}.tflite"
        src.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        fer = work / f"{name}.fer"
        r = subprocess.run([ferrite, "convert", str(src), "-o", str(fer)],
                           capture_output=True, text=True)
        if r.returncode:
            print(f"{name}: ferrite convert failed: {r.stderr.strip()}")
            continue
        x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
        np.save(work / "x.npy", x)
        it = Interpreter(str(src))
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        want = it.get_tensor(it.get_output_details()[0]["index"])
        subprocess.run([ferrite, "run", str(fer), "-i", str(work / "x.npy"), "--out-dir",
                        str(work / "out")], check=True, capture_output=True)
        got = np.load(work / "out" / "output0.npy")
        err = np.abs(got - want).max() / np.abs(want).max()
        print(f"{name}: max error / max |output| {err:.1e}, "
              f"top-1 {'agrees' if got.argmax() == want.argmax() else 'differs'}")


if __name__ == "__main__":
    main()
