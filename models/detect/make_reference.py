"""Writes the detection test images and MediaPipe's detections on them.

images/*.png: scikit-image photos (downscaled so the repository stays small)
and composites: lfw_subset faces (25x25, grayscale) scaled up and pasted into
other photos, at sizes whose aspect ratio exercises letterboxing.
reference.json: per image, MediaPipe's detections in pixels (model_selection=0,
short-range; reference_full_range.json the same with model_selection=1):
{"name": {"width", "height", "detections": [{"score", "box": [xmin, ymin, xmax, ymax],
"keypoints": [[x, y] x 6]}]}}.
"""
import json
import sys
from pathlib import Path

import mediapipe as mp
import numpy as np
import skimage.data
from skimage.transform import resize

out = Path(sys.argv[1])
img_dir = out / "images"
img_dir.mkdir(parents=True, exist_ok=True)


def to_u8(a):
    return np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)


def rgb(a):
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return a[..., :3]


def scaled(a, w, h):
    """uint8 image resized to w x h (anti-aliased)."""
    return to_u8(resize(rgb(a).astype(np.float64) / 255.0, (h, w, 3), anti_aliasing=True))


images = {}
photos = {
    "astronaut": (skimage.data.astronaut(), 256, 256),
    "camera": (skimage.data.camera(), 256, 256),
    "chelsea": (skimage.data.chelsea(), 302, 225),
    "coffee": (skimage.data.coffee(), 300, 200),
    "rocket": (skimage.data.rocket(), 214, 320),
    "motorcycle_left": (skimage.data.stereo_motorcycle()[0], 320, 213),
}
for name, (a, w, h) in photos.items():
    images[name] = scaled(a, w, h)

faces = skimage.data.lfw_subset()  # (200, 25, 25) float in [0, 1]


def face(i, size):
    f = resize(faces[i], (size, size), order=1, anti_aliasing=False)
    return to_u8(np.stack([f] * 3, axis=-1))


def composite(base, w, h, placements):
    img = scaled(base, w, h).copy()
    for i, size, x, y in placements:
        img[y:y + size, x:x + size] = face(i, size)
    return img


images["faces_coffee"] = composite(
    skimage.data.coffee(), 320, 240, [(0, 80, 20, 40), (7, 90, 120, 110), (21, 72, 230, 30)])
images["faces_rocket"] = composite(
    skimage.data.rocket(), 240, 320, [(3, 96, 20, 30), (11, 84, 120, 200)])
images["faces_chelsea"] = composite(
    skimage.data.chelsea(), 320, 240, [(40, 100, 10, 20), (55, 64, 200, 150)])
images["faces_grid"] = composite(
    skimage.data.camera(), 320, 320,
    [(k, 64, 16 + 100 * (j % 3), 16 + 100 * (j // 3)) for j, k in enumerate([1, 5, 9, 13, 17, 25, 33, 41, 60])])

def detect(model_selection):
    """MediaPipe's detections on every image, in pixels."""
    ref = {}
    with mp.solutions.face_detection.FaceDetection(model_selection=model_selection,
                                                   min_detection_confidence=0.5) as fd:
        for name, img in images.items():
            h, w = img.shape[:2]
            res = fd.process(np.ascontiguousarray(img))
            dets = []
            for d in res.detections or []:
                bb = d.location_data.relative_bounding_box
                dets.append({
                    "score": round(float(d.score[0]), 5),
                    "box": [round(v, 3) for v in (bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w,
                                                    (bb.ymin + bb.height) * h)],
                    "keypoints": [[round(k.x * w, 3), round(k.y * h, 3)]
                                  for k in d.location_data.relative_keypoints],
                })
            ref[name] = {"width": w, "height": h, "detections": dets}
            print(f"model_selection={model_selection} {name}: {w}x{h}, {len(dets)} face(s)",
                  [d["score"] for d in dets])
    return ref


from skimage.io import imsave

for name, img in images.items():
    imsave(img_dir / f"{name}.png", img, check_contrast=False)
# model_selection=0: BlazeFace short-range; 1: full-range (face_detection_full_range_sparse),
# whose graph keeps its own score threshold of 0.6 whatever min_detection_confidence says.
(out / "reference.json").write_text(json.dumps(detect(0), indent=1) + "\n")
(out / "reference_full_range.json").write_text(json.dumps(detect(1), indent=1) + "\n")
