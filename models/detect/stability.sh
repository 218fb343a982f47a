#!/usr/bin/env bash
# MediaPipe's own face count on the reference images and on five small
# changes of each (mirror, 1-px shifts, JPEG q95, +2% brightness); with
# --ferrite MODEL.fer ..., how often Ferrite's faces differ from MediaPipe's
# on the same versions. Writes stability.json. Uses make_reference.sh's venv.
#
# Usage: models/detect/stability.sh [--ferrite MODEL.fer ...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${VENV:-$here/../cache/detect-venv}"
python="${PYTHON:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    mediapipe==0.10.21 scikit-image==0.26.0 pillow
"$venv/bin/python" "$here/stability.py" "$@"
