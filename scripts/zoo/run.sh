#!/usr/bin/env bash
# Models Ferrite was not built around, converted and quantized side by side
# with their own runtimes: torchvision CNNs exported to ONNX (against
# onnxruntime and its quantize_static) and the TFLite models inside
# MediaPipe's wheel (against LiteRT and ai-edge-quantizer). Writes the tables
# into docs/zoo.md. A comparison, not a timed test: ~20 minutes on 2 cores.
#
# Usage: scripts/zoo/run.sh [WORK_DIR]   (default: models/cache/zoo)
# Needs: python3 (3.11), cargo; network access to PyPI only.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${1:-$root/models/cache/zoo}"
mkdir -p "$work"
py="$("$root/scripts/venv.sh" "$here/requirements.txt" "$root/models/cache/zoo-venv")"

# The TFLite models MediaPipe ships, from its wheel (not installed).
mp="$work/mediapipe"
if [[ ! -d "$mp/modules" ]]; then
    "$py" -m pip download --quiet --disable-pip-version-check --no-deps \
        mediapipe==0.10.21 --only-binary=:all: -d "$work/wheel"
    mkdir -p "$mp"
    "$py" - "$work/wheel" "$mp" <<'PY'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/mediapipe-0.10.21-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if n.startswith("mediapipe/modules/") and n.endswith(".tflite"):
            z.extract(n, sys.argv[2] + "/..")
PY
fi

(cd "$root" && cargo build --release --quiet --bin ferrite)
ferrite="${CARGO_TARGET_DIR:-$root/target}/release/ferrite"
"$py" "$root/scripts/quant-compare/make_data.py" "$work/data"
"$py" "$here/zoo.py" "$ferrite" "$work/data" "$work" "$root/docs/zoo.md"
echo "tables written to docs/zoo.md"
