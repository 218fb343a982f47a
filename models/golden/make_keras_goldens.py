#!/usr/bin/env python3
"""Small Keras 3 models converted by TensorFlow's own TFLiteConverter, with the outputs of
TFLite's reference kernels: the graph shapes Keras models have and Ferrite must take.

- `keras_dense_nd`: Conv2D -> LayerNormalization -> Dense(48) on the 4-D tensor -> GELU ->
  Dense(24) -> residual Add -> GlobalAveragePooling2D -> Dense(10) -> softmax. A Dense layer
  on a 4-D tensor becomes SHAPE -> GATHER -> REDUCE_PROD -> PACK -> RESHAPE to a
  `[-1, -1]` tensor (stored `[1, 1]`), FULLY_CONNECTED, and a RESHAPE back; LayerNorm becomes
  MEAN, SQUARED_DIFFERENCE, RSQRT, MUL, SUB.
- `keras_attention`: a token sequence [16, 32] -> self-attention (MultiHeadAttention, 2
  heads) -> residual -> LayerNormalization -> Dense -> mean over tokens -> Dense(5).

- `keras_lstm`: two stacked LSTM layers (the first returning its sequence) -> Dense(4) ->
  softmax, from Keras 2 (`tf_keras`): its converter fuses each layer into one
  UNIDIRECTIONAL_SEQUENCE_LSTM (Keras 3's writes WHILE loops over several subgraphs). TFLite
  keeps an LSTM's state in variable tensors from one invocation to the next, so each sample
  runs on a fresh interpreter (state zero, as Keras computes the layer); the script checks
  those outputs against Keras's own.

Seeded random weights (Keras initializers under `keras.utils.set_random_seed`), batch
dimension None as Keras leaves it. Writes tests/fixtures/keras/NAME.tflite, NAME.in<k>.npy,
NAME.out<k>.npy and index.json. Needs `pip install tensorflow-cpu==2.21.0 tf_keras~=2.21.0` (not in
models/requirements.txt: it is large, and only this file needs it). Usage:

    python models/golden/make_keras_goldens.py [--out tests/fixtures/keras]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import tensorflow as tf

REPO = Path(__file__).resolve().parents[2]
keras = tf.keras


def dense_nd() -> keras.Model:
    x = keras.Input((8, 8, 16))
    c = keras.layers.Conv2D(24, 3, padding="same")(x)
    h = keras.layers.LayerNormalization()(c)
    h = keras.layers.Dense(48)(h)
    h = keras.layers.Activation("gelu")(h)
    h = keras.layers.Dense(24)(h)
    h = keras.layers.Add()([h, c])
    h = keras.layers.GlobalAveragePooling2D()(h)
    y = keras.layers.Dense(10, activation="softmax")(h)
    return keras.Model(x, y)


def attention() -> keras.Model:
    x = keras.Input((16, 32))
    a = keras.layers.MultiHeadAttention(num_heads=2, key_dim=16)(x, x)
    h = keras.layers.LayerNormalization()(keras.layers.Add()([x, a]))
    h = keras.layers.Dense(32, activation="relu")(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    return keras.Model(x, keras.layers.Dense(5)(h))


def lstm():
    import tf_keras

    x = tf_keras.Input((12, 10), batch_size=1)
    h = tf_keras.layers.LSTM(16, return_sequences=True)(x)
    h = tf_keras.layers.LSTM(8)(h)
    return tf_keras.Model(x, tf_keras.layers.Dense(4, activation="softmax")(h))


def interpreter(tfl: bytes):
    it = tf.lite.Interpreter(
        model_content=tfl,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    return it


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "keras")
    out = ap.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for name, make, shape in [("keras_dense_nd", dense_nd, (1, 8, 8, 16)),
                              ("keras_attention", attention, (1, 16, 32)),
                              ("keras_lstm", lstm, (1, 12, 10))]:
        keras.utils.set_random_seed(7)
        model = make()
        tfl = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        (out / f"{name}.tflite").write_bytes(tfl)
        stateful = name == "keras_lstm"
        it = interpreter(tfl)
        rng = np.random.default_rng(3)
        for k in range(3):
            x = rng.normal(0, 1, shape).astype(np.float32)
            if stateful:
                it = interpreter(tfl)
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
            if stateful:
                got = it.get_tensor(it.get_output_details()[0]["index"])
                assert np.abs(got - model(x).numpy()).max() < 1e-5, "TFLite differs from Keras"
            case = {"name": f"{name}#{k}", "model": f"{name}.tflite",
                    "inputs": [f"{name}.in{k}.npy"], "outputs": [f"{name}.out{k}.npy"]}
            np.save(out / case["inputs"][0], x)
            np.save(out / case["outputs"][0], it.get_tensor(it.get_output_details()[0]["index"]))
            index.append(case)
        print(f"wrote {name}: {len(tfl)} bytes")
    (out / "index.json").write_text(json.dumps({"cases": index}, indent=1) + "\n")


if __name__ == "__main__":
    main()
