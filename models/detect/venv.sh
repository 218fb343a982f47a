#!/usr/bin/env bash
# The Python venv with PyPI mediapipe==0.10.21 that make_reference.sh and
# stability.sh run in: creates it when missing (Python 3.9-3.12; mediapipe
# 0.10.21 ships wheels for those), installs the pinned packages, and prints
# its python.
#
# Usage: models/detect/venv.sh [VENV_DIR]   (default: models/cache/detect-venv)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-$here/../cache/detect-venv}"
python="${PYTHON:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv" >&2
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    mediapipe==0.10.21 scikit-image==0.26.0 >&2
echo "$venv/bin/python"
