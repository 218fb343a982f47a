#!/usr/bin/env python3
"""Whole-model golden inputs and outputs from LiteRT's reference kernels.

Models and where the goldens go (under --out, default tests/fixtures/models/):

    blazeface/          models/fixtures/face_detection_short_range.tflite (BlazeFace short-range)
                        in00..in04: the photos, in05..in10: seeded random inputs
    mobilenet_v2_int8/  mobilenet_v2_torchvision_int8.tflite: in00..in04 photos, in05..in20 random
    mobilenet_v2_f32/   mobilenet_v2_torchvision_f32.tflite: in00..in04 photos, in05..in07 random

For input NN: `inNN.npy` (the model's input tensor, its dtype and shape) and `outNN_K.npy` for
each output K in the model's output order. Each folder also gets an `index.json` naming the
source of each input and the model's sha256.

The MobileNetV2 files are looked up in $FERRITE_SHARED_MODELS (default: ../shared/models from
the repository root); without them those two folders are skipped with a message.

Photos (scikit-image==0.26.0 skimage/data files astronaut.png, chelsea.png, coffee.png,
motorcycle_left.png, rocket.jpg; uint8 RGB) are resized with Pillow's bilinear filter
(Image.BILINEAR, anti-aliased when shrinking):

    BlazeFace:   whole photo to 128x128, x / 255 * 2 - 1      -> float32 [1,128,128,3] in [-1, 1]
    MobileNetV2: torchvision eval transform: shorter side to 256, central 224x224 crop,
                 (x / 255 - mean) / std (ImageNet)            -> float32 [1,224,224,3]
                 int8 model: round(x / scale) + zero_point, clamped, with the input qparams
                 (the arithmetic is float64 until the final cast)

Random inputs: BlazeFace uniform [-1, 1]; MobileNetV2 int8 uniform over [-128, 127];
MobileNetV2 f32 standard normal. All seeded; re-running rewrites identical files.

Also writes models/fixtures/astronaut_256.jpg (whole photo to 256x256 with the same resize,
JPEG quality 90), the committed photo.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from PIL import Image
from skimage import data as skdata
from skimage.io import imread

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "models" / "fixtures"
PHOTOS = ["astronaut", "chelsea", "coffee", "motorcycle_left", "rocket"]
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float64)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float64)
SEED = 20240612


def shared_models() -> Path:
    env = os.environ.get("FERRITE_SHARED_MODELS")
    return Path(env) if env else REPO.parent / "shared" / "models"


def load_photo(name: str) -> np.ndarray:
    """The scikit-image photo file (skimage/data/NAME.png or .jpg) as uint8 RGB [H, W, 3]."""
    folder = Path(skdata.__file__).parent
    path = next(p for p in (folder / f"{name}.png", folder / f"{name}.jpg") if p.exists())
    return np.asarray(imread(path))[..., :3]


def resized(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pillow bilinear resize (Image.BILINEAR, which widens its filter when shrinking, as
    torchvision's PIL path does) of uint8 RGB to uint8 [height, width, 3]."""
    return np.asarray(Image.fromarray(img).resize((width, height), Image.BILINEAR))


def center_crop_224(img: np.ndarray) -> np.ndarray:
    """torchvision's eval transform: shorter side to 256 (bilinear), then the central
    224x224 crop; uint8 RGB in and out."""
    h, w = img.shape[:2]
    s = 256.0 / min(h, w)
    big = resized(img, round(w * s), round(h * s))
    top, left = (big.shape[0] - 224) // 2, (big.shape[1] - 224) // 2
    return big[top : top + 224, left : left + 224]


class Runner:
    """A LiteRT interpreter with the reference op resolver, single-threaded."""

    def __init__(self, path: Path):
        self.interp = Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
            num_threads=1,
        )
        self.interp.allocate_tensors()
        self.input = self.interp.get_input_details()[0]
        self.outputs = self.interp.get_output_details()

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        self.interp.set_tensor(self.input["index"], x)
        self.interp.invoke()
        return [self.interp.get_tensor(d["index"]).copy() for d in self.outputs]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_set(out_dir: Path, model: Path, runner: Runner, inputs: list[tuple[str, np.ndarray]]):
    """Runs every input and writes inNN.npy / outNN_K.npy plus index.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.glob("*.npy"):
        p.unlink()
    entries, results = [], []
    for n, (source, x) in enumerate(inputs):
        outs = runner(x)
        np.save(out_dir / f"in{n:02d}.npy", np.ascontiguousarray(x))
        names = []
        for k, y in enumerate(outs):
            names.append(f"out{n:02d}_{k}.npy")
            np.save(out_dir / names[-1], np.ascontiguousarray(y))
        entries.append(dict(input=f"in{n:02d}.npy", source=source, outputs=names))
        results.append((source, outs))
    index = dict(
        generator="models/golden/make_model_goldens.py",
        model=model.name,
        model_sha256=sha256(model),
        op_resolver="BUILTIN_REF",
        input=dict(
            name=runner.input["name"],
            shape=[int(d) for d in runner.input["shape"]],
            dtype=np.dtype(runner.input["dtype"]).name,
            quantization=[
                float(runner.input["quantization"][0]),
                int(runner.input["quantization"][1]),
            ],
        ),
        outputs=[
            dict(
                name=d["name"],
                shape=[int(s) for s in d["shape"]],
                dtype=np.dtype(d["dtype"]).name,
                quantization=[float(d["quantization"][0]), int(d["quantization"][1])],
            )
            for d in runner.outputs
        ],
        cases=entries,
    )
    (out_dir / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return results


def blazeface(out_root: Path) -> None:
    model = FIXTURES / "face_detection_short_range.tflite"
    runner = Runner(model)
    inputs = []
    for name in PHOTOS:
        x = resized(load_photo(name), 128, 128).astype(np.float64) / 255.0 * 2.0 - 1.0
        inputs.append((f"photo:{name}", x.astype(np.float32)[None]))
    rng = np.random.default_rng([SEED, 1])
    for i in range(6):
        x = rng.uniform(-1.0, 1.0, (1, 128, 128, 3)).astype(np.float32)
        inputs.append((f"random:uniform[-1,1]#{i}", x))
    results = write_set(out_root / "blazeface", model, runner, inputs)
    # The score output is the one with a last dimension of 1.
    score_k = next(k for k, d in enumerate(runner.outputs) if d["shape"][-1] == 1)
    shapes = [[int(s) for s in d["shape"]] for d in runner.outputs]
    print(f"blazeface ({model.name}): outputs {shapes}")
    for source, outs in results:
        best = 1.0 / (1.0 + np.exp(-outs[score_k].max()))
        print(f"  {source:32} max score {best:.4f}")


def mobilenet_inputs(int8_q: tuple[float, int] | None, n_random: int, seed: int):
    inputs = []
    for name in PHOTOS:
        x = (center_crop_224(load_photo(name)) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        if int8_q is None:
            inputs.append((f"photo:{name}", x.astype(np.float32)[None]))
        else:
            scale, zp = int8_q
            q = np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)
            inputs.append((f"photo:{name}", q[None]))
    rng = np.random.default_rng([SEED, seed])
    for i in range(n_random):
        if int8_q is None:
            x = rng.standard_normal((1, 224, 224, 3)).astype(np.float32)
            inputs.append((f"random:normal(0,1)#{i}", x))
        else:
            x = rng.integers(-128, 128, (1, 224, 224, 3)).astype(np.int8)
            inputs.append((f"random:uniform[-128,127]#{i}", x))
    return inputs


def mobilenet(out_root: Path, kind: str) -> None:
    model = shared_models() / f"mobilenet_v2_torchvision_{kind}.tflite"
    if not model.exists():
        print(f"mobilenet_v2_{kind}: skipped, {model} not found (set FERRITE_SHARED_MODELS)")
        return
    runner = Runner(model)
    if kind == "int8":
        q = runner.input["quantization"]
        inputs = mobilenet_inputs((float(q[0]), int(q[1])), 16, 2)
    else:
        inputs = mobilenet_inputs(None, 3, 3)
    results = write_set(out_root / f"mobilenet_v2_{kind}", model, runner, inputs)
    print(f"mobilenet_v2_{kind} ({model.name}):")
    for source, outs in results:
        print(f"  {source:32} top-1 class {int(np.argmax(outs[0]))}")


def photo_fixture() -> None:
    img = resized(load_photo("astronaut"), 256, 256)
    Image.fromarray(img).save(FIXTURES / "astronaut_256.jpg", quality=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "models")
    ap.add_argument(
        "--only",
        action="append",
        choices=["blazeface", "mobilenet_v2_int8", "mobilenet_v2_f32", "photo"],
        help="generate only this set (repeatable)",
    )
    args = ap.parse_args()
    todo = set(args.only or ["blazeface", "mobilenet_v2_int8", "mobilenet_v2_f32", "photo"])
    if "photo" in todo:
        photo_fixture()
    if "blazeface" in todo:
        blazeface(args.out)
    if "mobilenet_v2_int8" in todo:
        mobilenet(args.out, "int8")
    if "mobilenet_v2_f32" in todo:
        mobilenet(args.out, "f32")


if __name__ == "__main__":
    main()
