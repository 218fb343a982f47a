#!/usr/bin/env python3
"""Seeded calibration and evaluation sets from the scikit-image photos.

Writes, under OUT (default models/cache/quant-data):
  mnv2/calib/c000.png ..    64 random crops/flips, 224x224 RGB   (calibration)
  mnv2/calib/h000.png ..    16 more crops (held out for Ferrite's report)
  mnv2/calib_nhwc.npy       [64,224,224,3] float32, ImageNet-normalized (peers)
  mnv2/calib_nchw.npy       [64,3,224,224] the same, NCHW (onnxruntime)
  mnv2/eval/e000.npy ..     >= 200 different crops/flips/scales, [1,224,224,3]
  mnv2/eval_nchw.npy        the evaluation set, NCHW
  face/calib/c000.npy ..    64 crops/flips at 128x128 in [-1, 1], NHWC, + h000.. held out
  face/calib_nhwc.npy       the 64 calibration samples as one batch
  face/eval/e000.npy ..     evaluation crops (many around the astronaut's face)
  face/eval_nhwc.npy        the evaluation set as one batch
Calibration and evaluation crops are drawn from separate random streams and
checked to be disjoint (no identical crop box + flip).
"""
import os
import sys

import numpy as np
from PIL import Image

PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg"]
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def find_photo(name):
    here = os.path.dirname(os.path.abspath(__file__))
    cands = [os.path.join(here, "..", "..", "models", "cache", "photos", name)]
    try:
        import skimage

        cands.append(os.path.join(os.path.dirname(skimage.__file__), "data", name))
    except ImportError:
        pass
    for c in cands:
        if os.path.exists(c):
            return c
    sys.exit(f"photo {name} not found (run bash models/fetch.sh, or install scikit-image)")


def crop(img, rng, size, min_frac, face_box=None):
    w, h = img.size
    s = min(w, h)
    side = int(s * rng.uniform(min_frac, 1.0))
    if face_box is not None and rng.random() < 0.7:
        # A crop that contains the face box.
        fx0, fy0, fx1, fy1 = face_box
        side = max(side, int(1.6 * max(fx1 - fx0, fy1 - fy0)))
        side = min(side, s)
        x0 = int(rng.uniform(max(0, fx1 - side), min(fx0, w - side) + 1))
        y0 = int(rng.uniform(max(0, fy1 - side), min(fy0, h - side) + 1))
    else:
        x0 = int(rng.integers(0, w - side + 1))
        y0 = int(rng.integers(0, h - side + 1))
    flip = bool(rng.random() < 0.5)
    key = (x0, y0, side, flip)
    out = img.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.BILINEAR)
    if flip:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    return out, key


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "cache", "quant-data")
    imgs = {p: Image.open(find_photo(p)).convert("RGB") for p in PHOTOS}
    # The astronaut's face (pixels of the 512x512 photo).
    face_box = (170, 25, 280, 150)
    for sub in ["mnv2/calib", "mnv2/eval", "face/calib", "face/eval"]:
        os.makedirs(os.path.join(out, sub), exist_ok=True)

    def draw(seed, n, size, min_frac, faces):
        rng = np.random.default_rng(seed)
        res = []
        for i in range(n):
            p = PHOTOS[i % len(PHOTOS)]
            fb = face_box if (faces and p == "astronaut.png") else None
            res.append(crop(imgs[p], rng, size, min_frac, fb) + (p,))
        return res

    # MobileNetV2: 64 calibration + 16 held out, 240 evaluation.
    cal = draw(1234, 80, 224, 0.5, False)
    ev = draw(98765, 240, 224, 0.35, False)
    keys = {(c[2], c[1]) for c in cal}
    ev = [e for e in ev if (e[2], e[1]) not in keys]
    assert len(ev) >= 200
    norm = lambda im: ((np.asarray(im, np.float32) / 255.0 - MEAN) / STD)[None]
    for i, (im, _, _) in enumerate(cal):
        name = f"c{i:03d}.png" if i < 64 else f"h{i - 64:03d}.png"
        im.save(os.path.join(out, "mnv2/calib", name))
    c = np.concatenate([norm(im) for im, _, _ in cal[:64]])
    np.save(os.path.join(out, "mnv2/calib_nhwc.npy"), c)
    np.save(os.path.join(out, "mnv2/calib_nchw.npy"), np.ascontiguousarray(c.transpose(0, 3, 1, 2)))
    e = np.concatenate([norm(im) for im, _, _ in ev])
    for i in range(len(e)):
        np.save(os.path.join(out, "mnv2/eval", f"e{i:03d}.npy"), e[i:i + 1])
    np.save(os.path.join(out, "mnv2/eval_nhwc.npy"), e)
    np.save(os.path.join(out, "mnv2/eval_nchw.npy"), np.ascontiguousarray(e.transpose(0, 3, 1, 2)))

    # BlazeFace: 128x128 in [-1, 1]; crops biased towards the astronaut's face.
    fnorm = lambda im: (np.asarray(im, np.float32) / 127.5 - 1.0)[None]
    fcal = draw(4321, 80, 128, 0.4, True)
    fev = draw(56789, 120, 128, 0.3, True)
    fkeys = {(c[2], c[1]) for c in fcal}
    fev = [x for x in fev if (x[2], x[1]) not in fkeys]
    for i, (im, _, _) in enumerate(fcal):
        name = f"c{i:03d}.npy" if i < 64 else f"h{i - 64:03d}.npy"
        np.save(os.path.join(out, "face/calib", name), fnorm(im))
    np.save(os.path.join(out, "face/calib_nhwc.npy"), np.concatenate([fnorm(im) for im, _, _ in fcal[:64]]))
    fe = np.concatenate([fnorm(im) for im, _, _ in fev])
    for i in range(len(fe)):
        np.save(os.path.join(out, "face/eval", f"e{i:03d}.npy"), fe[i:i + 1])
    np.save(os.path.join(out, "face/eval_nhwc.npy"), fe)
    print(f"wrote {len(cal)} + {len(ev)} MobileNetV2 and {len(fcal)} + {len(fev)} BlazeFace samples to {out}")


if __name__ == "__main__":
    main()
