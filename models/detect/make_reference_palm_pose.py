"""MediaPipe's palm and pose detections on the detection test images and their
mirror images, for the detector specs palm_detection.toml and
pose_detection.toml (PyPI mediapipe==0.10.21).

MediaPipe's solutions do not return these detections, so the script runs the
solutions' own graphs with their detector stream as the output:
- palms: hand_landmark_tracking_cpu (mp.solutions.hands), stream
  palm_detections, num_hands=10, every frame detected afresh;
  model_complexity=0 runs palm_detection_lite.tflite (reference_palm_lite.json),
  1 runs palm_detection_full.tflite (reference_palm_full.json);
- poses: pose_landmark_cpu (mp.solutions.pose), stream pose_detection: the
  graph keeps only the best of its pose detections (reference_pose.json).
The test images contain no hands: the palms found are the detector's own
false positives, which the float model must reproduce all the same.

Output, per image ("NAME" and "NAME_mirror", the image flipped left-right):
{"width", "height", "detections": [{"score", "box": [xmin, ymin, xmax, ymax],
"keypoints": [[x, y], ...]}]} in pixels.
"""
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from mediapipe.python.solution_base import SolutionBase

out = Path(sys.argv[1])


def palms(model_complexity):
    return SolutionBase(
        binary_graph_path="mediapipe/modules/hand_landmark/hand_landmark_tracking_cpu.binarypb",
        side_inputs={"model_complexity": model_complexity, "num_hands": 10,
                     "use_prev_landmarks": False},
        outputs=["palm_detections"])


def pose():
    return SolutionBase(
        binary_graph_path="mediapipe/modules/pose_landmark/pose_landmark_cpu.binarypb",
        side_inputs={"model_complexity": 1, "smooth_landmarks": False,
                     "enable_segmentation": False, "smooth_segmentation": False,
                     "use_prev_landmarks": False},
        outputs=["pose_detection"])


def to_json(d, w, h):
    bb = d.location_data.relative_bounding_box
    return {
        "score": round(float(d.score[0]), 5),
        "box": [round(v, 3) for v in (bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w,
                                        (bb.ymin + bb.height) * h)],
        "keypoints": [[round(k.x * w, 3), round(k.y * h, 3)]
                      for k in d.location_data.relative_keypoints],
    }


images = {}
for p in sorted((out / "images").glob("*.png")):
    a = np.asarray(Image.open(p).convert("RGB"))
    images[p.stem] = a
    images[p.stem + "_mirror"] = np.ascontiguousarray(a[:, ::-1])

for name, graph, stream in [("palm_lite", palms(0), "palm_detections"),
                            ("palm_full", palms(1), "palm_detections"),
                            ("pose", pose(), "pose_detection")]:
    ref = {}
    for key, img in images.items():
        h, w = img.shape[:2]
        found = getattr(graph.process(img), stream)
        if found is None:
            found = []
        elif not isinstance(found, list):
            found = [found]
        ref[key] = {"width": w, "height": h, "detections": [to_json(d, w, h) for d in found]}
        print(f"{name} {key}: {[d['score'] for d in ref[key]['detections']]}")
    (out / f"reference_{name}.json").write_text(json.dumps(ref, indent=1) + "\n")
