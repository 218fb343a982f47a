#!/usr/bin/env bash
# Creates the Python virtual environment that the golden generators in models/golden/ use.
#
# Usage: models/setup-venv.sh [VENV_DIR]     (default: models/cache/venv)
#
# Installs the pinned packages of models/requirements.txt (LiteRT, numpy, flatbuffers, the
# `tflite` schema bindings, scikit-image). Idempotent: an existing venv whose installed set
# was made from the same requirements file is left alone. PYTHON selects the interpreter
# (default python3; Python 3.11 is what the pins were tested with).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-$here/cache/venv}"
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
# Fail now, not in the middle of a generator, if an import is broken.
"$venv/bin/python" -c 'import ai_edge_litert.interpreter, flatbuffers, numpy, skimage, tflite'
echo "$want" > "$stamp"
echo "venv ready: $venv"
