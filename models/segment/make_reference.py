"""Writes MediaPipe's own selfie-segmentation masks for the segmentation test.

MediaPipe 0.10.21's mp.solutions.selfie_segmentation on models/detect/images/
astronaut.png: model_selection=0 (square model, 256x256 input) on the whole
image, model_selection=1 (landscape, 256x144) on rows 56..200 of it. The
images have the models' input sizes, so MediaPipe's resampling is the
identity and its mask is the model's output. Masks are stored as float16
.npy (reference_square.npy, reference_landscape.npy).
"""
import sys
from pathlib import Path

import mediapipe as mp
import numpy as np
from PIL import Image

here = Path(sys.argv[1])
img = np.asarray(Image.open(here / ".." / "detect" / "images" / "astronaut.png").convert("RGB"))
for selection, name, rgb in [(0, "square", img), (1, "landscape", img[56:200])]:
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=selection) as s:
        mask = s.process(np.ascontiguousarray(rgb)).segmentation_mask
    assert mask.shape == rgb.shape[:2], mask.shape
    np.save(here / f"reference_{name}.npy", mask.astype(np.float16))
    print(name, mask.shape, f"person pixels (> 0.5): {(mask > 0.5).mean():.3f}")
