"""How stable is MediaPipe's own face count on the reference images?

Runs MediaPipe's face detection (the reference of reference.json) on each
image of images/ and on five changes a camera makes all the time: the mirror
image, a shift by one pixel left or up (the last column/row repeated), JPEG
at quality 95, and 2% more brightness. Writes stability.json and prints, per
image, the face scores found on each version.

With `--ferrite MODEL.fer [MODEL.fer ...]`, also runs `ferrite detect` with
each package on the same versions and counts, per package, the versions
where its faces are not MediaPipe's (another count, or a box with IoU < 0.9).

Usage: models/detect/stability.sh [--ferrite MODEL.fer ...]
"""
import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import mediapipe as mp
import numpy as np
from PIL import Image, ImageEnhance, ImageOps

here = Path(__file__).resolve().parent


KINDS = ["original", "mirror", "shift-left-1px", "shift-up-1px", "jpeg-q95", "brightness+2%"]


def versions(im):
    """The image and its five changed versions, as uint8 arrays, by KINDS."""
    a = np.asarray(im)
    # A 1-px shift repeats the last column/row.
    left = np.concatenate([a[:, 1:], a[:, -1:]], axis=1)
    up = np.concatenate([a[1:], a[-1:]], axis=0)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95)
    return dict(zip(KINDS, [
        a,
        np.asarray(ImageOps.mirror(im)),
        left,
        up,
        np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")),
        np.asarray(ImageEnhance.Brightness(im).enhance(1.02)),
    ]))


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    i = iw * ih
    return i / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferrite", nargs="*", default=[])
    ap.add_argument("--bin", default=str(here.parent.parent / "target" / "release" / "ferrite"))
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ferrite-stability-"))
    mediapipe = {}
    with mp.solutions.face_detection.FaceDetection(model_selection=0,
                                                   min_detection_confidence=0.5) as fd:
        for path in sorted((here / "images").glob("*.png")):
            im = Image.open(path).convert("RGB")
            for kind, a in versions(im).items():
                key = f"{path.stem}@{kind}"
                Image.fromarray(a).save(tmp / f"{key}.png")
                h, w = a.shape[:2]
                res = fd.process(np.ascontiguousarray(a))
                mediapipe[key] = [
                    {"score": round(float(d.score[0]), 4),
                     "box": [bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w,
                             (bb.ymin + bb.height) * h]}
                    for d in res.detections or []
                    for bb in [d.location_data.relative_bounding_box]]

    ferrite = {}
    for model in args.ferrite:
        r = subprocess.run([args.bin, "detect", model, "--images", str(tmp)],
                           capture_output=True, text=True, check=True)
        for line in r.stdout.splitlines():
            d = json.loads(line)
            key = Path(d["source"]).stem
            ferrite.setdefault(model, {})[key] = d["detections"]

    names = sorted({k.split("@")[0] for k in mediapipe})
    changed = 0
    print("MediaPipe's face scores per version (" + ", ".join(KINDS) + ")")
    for n in names:
        counts = [len(mediapipe[f"{n}@{k}"]) for k in KINDS]
        moved = sum(c != counts[0] for c in counts[1:])
        changed += moved
        print(f"{n:16s}", " | ".join(str([d["score"] for d in mediapipe[f"{n}@{k}"]])
                                      for k in KINDS))
    total = len(names) * (len(KINDS) - 1)
    print(f"MediaPipe's face count changes on {changed} of {total} changed versions")
    summary = {"mediapipe_count_changes": changed, "changed_versions": total, "packages": {}}
    for model, dets in ferrite.items():
        differ = {}
        for key, theirs in mediapipe.items():
            ours = dets.get(key, [])
            # Faces without a counterpart (IoU >= 0.9) on the other side.
            lone = [round(t["score"], 4) for t in theirs
                    if max((iou(t["box"], o["box"]) for o in ours), default=0.0) < 0.9]
            lone += [round(o["score"], 4) for o in ours
                     if max((iou(t["box"], o["box"]) for t in theirs), default=0.0) < 0.9]
            if lone:
                differ[key] = lone
        print(f"{model}: faces differ from MediaPipe's on {len(differ)} of {len(mediapipe)} "
              "versions (the faces without a counterpart, by score):")
        for key, lone in differ.items():
            print(f"  {key}: {lone}")
        summary["packages"][Path(model).name] = {"differ": differ, "versions": len(mediapipe)}
    out = {"mediapipe": mediapipe, "summary": summary}
    (here / "stability.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
