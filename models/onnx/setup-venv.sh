#!/usr/bin/env bash
# Creates the Python virtual environment the ONNX reference scripts use (onnx, onnxruntime,
# numpy, pillow pinned in models/onnx/requirements.txt).
#
# Usage: models/onnx/setup-venv.sh [VENV_DIR]     (default: models/cache/onnx-venv)
# Idempotent: a venv made from the same requirements file is left alone.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-$here/../cache/onnx-venv}"
python="${PYTHON:-python3}"
req="$here/requirements.txt"
stamp="$venv/.ferrite-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "venv up to date: $venv"
    exit 0
fi
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
"$venv/bin/python" -c 'import onnx, onnxruntime, numpy, PIL'
echo "$want" > "$stamp"
echo "venv ready: $venv"
