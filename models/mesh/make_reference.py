"""Writes MediaPipe's own refined face mesh for the attention mesh test.

MediaPipe 0.10.21's mp.solutions.face_mesh (static images, refine_landmarks,
which runs face_landmark_with_attention.tflite) on models/detect/images/
astronaut.png, upright and turned 25 degrees: its 478 landmarks (the 468 of
the mesh with the lips and eyes refined, then 10 iris landmarks) in image
pixels. For each, the model input the test feeds Ferrite: a 192x192 crop,
square, 1.6 times the mesh's bounding box around its centre, not rotated
(PIL bilinear), saved as crop_<angle>.png; the test maps Ferrite's crop
coordinates back through the crop box stored in reference.json.

MediaPipe crops its own way (rotated upright, from its own detection), so
landmarks agree to about a pixel, not exactly: the test compares the
refined ones (which go through the model's custom ops) with a margin.
"""
import json
import sys
from pathlib import Path

import mediapipe as mp
import numpy as np
from PIL import Image

here = Path(sys.argv[1])
photo = Image.open(here / ".." / "detect" / "images" / "astronaut.png").convert("RGB")
cases = []
for angle in [0, 25]:
    img = np.asarray(photo.rotate(angle, resample=Image.BILINEAR))
    h, w = img.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, refine_landmarks=True, max_num_faces=1
    ) as fm:
        faces = fm.process(img).multi_face_landmarks
    lm = np.array([[p.x * w, p.y * h] for p in faces[0].landmark])
    assert lm.shape == (478, 2), lm.shape
    lo, hi = lm[:468].min(0), lm[:468].max(0)
    centre, side = (lo + hi) / 2, 1.6 * float((hi - lo).max())
    x0, y0 = (float(v) for v in centre - side / 2)
    crop = Image.fromarray(img).resize(
        (192, 192), Image.BILINEAR, box=(x0, y0, x0 + side, y0 + side)
    )
    crop.save(here / f"crop_{angle}.png")
    cases.append(
        {
            "angle": angle,
            "crop": f"crop_{angle}.png",
            "crop_box": [x0, y0, side],
            "landmarks": [[round(float(x), 3), round(float(y), 3)] for x, y in lm],
        }
    )
    print(f"{angle} degrees: face box {hi - lo}, crop at ({x0:.1f}, {y0:.1f}) side {side:.1f}")
(here / "reference.json").write_text(json.dumps({"mediapipe": mp.__version__, "cases": cases}) + "\n")
