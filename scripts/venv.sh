#!/usr/bin/env bash
# Makes the Python venv VENV_DIR from REQUIREMENTS, or reuses it while the
# requirements file is unchanged (a sha256 stamp inside the venv); prints
# the venv's python. For the comparison scripts (quant-compare, zoo).
#
# Usage: py="$(scripts/venv.sh REQUIREMENTS VENV_DIR)"
set -euo pipefail
req="$1"
venv="$2"
stamp="$venv/.ferrite-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
    echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
