#!/usr/bin/env bash
# Makes the face-detection reference: the test images (scikit-image photos and
# composites of its lfw_subset faces, written to images/) and MediaPipe's own
# detections on them (reference.json), with PyPI mediapipe==0.10.21
# (mp.solutions.face_detection: model_selection=0 = BlazeFace short-range,
# reference.json; model_selection=1 = full-range, reference_full_range.json),
# then MediaPipe's palm and pose detections on those images and their mirror
# images (make_reference_palm_pose.py: reference_palm_lite.json,
# reference_palm_full.json, reference_pose.json).
#
# Usage: models/detect/make_reference.sh [VENV_DIR]   (default: models/cache/detect-venv)
# Creates its own venv (venv.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="$("$here/venv.sh" "${1:-}")"
"$py" "$here/make_reference.py" "$here"
"$py" "$here/make_reference_palm_pose.py" "$here"
