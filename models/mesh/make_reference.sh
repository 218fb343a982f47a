#!/usr/bin/env bash
# Makes the attention face mesh reference (MediaPipe's own refined face
# mesh, see make_reference.py) with PyPI mediapipe==0.10.21, in the
# face-detection reference's venv (models/detect/venv.sh).
#
# Usage: models/mesh/make_reference.sh [VENV_DIR]   (default: models/cache/detect-venv)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="$("$here/../detect/venv.sh" "${1:-}")"
"$py" "$here/make_reference.py" "$here"
