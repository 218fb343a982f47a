#!/usr/bin/env bash
# Makes the face-detection reference: the test images (scikit-image photos and
# composites of its lfw_subset faces, written to images/) and MediaPipe's own
# detections on them (reference.json), with PyPI mediapipe==0.10.21
# (mp.solutions.face_detection, model_selection=0 = BlazeFace short-range).
#
# Usage: models/detect/make_reference.sh [VENV_DIR]   (default: models/cache/detect-venv)
# Creates its own venv (Python 3.9-3.12; mediapipe 0.10.21 ships wheels for those).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-$here/../cache/detect-venv}"
python="${PYTHON:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    mediapipe==0.10.21 scikit-image==0.26.0
"$venv/bin/python" "$here/make_reference.py" "$here"
