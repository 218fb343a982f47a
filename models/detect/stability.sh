#!/usr/bin/env bash
# MediaPipe's own face count on the reference images and on five small
# changes of each (mirror, 1-px shifts, JPEG q95, +2% brightness); with
# --ferrite MODEL.fer ..., how often Ferrite's faces differ from MediaPipe's
# on the same versions. Writes stability.json. Runs in make_reference.sh's
# venv (venv.sh; VENV=DIR picks another).
#
# Usage: models/detect/stability.sh [--ferrite MODEL.fer ...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="$("$here/venv.sh" "${VENV:-}")"
"$py" "$here/stability.py" "$@"
