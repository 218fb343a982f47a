#!/usr/bin/env bash
# Side-by-side benchmark: builds the CLI (release), converts the models to .fer,
# makes its own Python venv with the pinned peers (requirements.txt), and runs
# compare.py, which writes a markdown table.
#
# Usage: benches/compare/run.sh [--threads N | --threads 1,2] [other compare.py flags]
# Env:   FERRITE_SHARED_MODELS (default ../shared/models), VENV (default benches/compare/.venv),
#        OUT (default benches/compare/results-<threads>t.md), CARGO_TARGET_DIR.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
models="${FERRITE_SHARED_MODELS:-$root/../shared/models}"
venv="${VENV:-$here/.venv}"
target="${CARGO_TARGET_DIR:-$root/target}"
threads=1
for ((i = 1; i <= $#; i++)); do
    if [[ "${!i}" == "--threads" ]]; then j=$((i + 1)); threads="${!j}"; fi
done
# A list of counts (--threads 1,2) measures thread scaling.
if [[ "$threads" == *,* ]]; then
    out="${OUT:-$here/results-scaling.md}"
else
    out="${OUT:-$here/results-${threads}t.md}"
fi

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

(cd "$root" && cargo build --release -p ferrite --quiet)
exe="$target/release/ferrite"
fer="$here/.fer"
mkdir -p "$fer"
conv() { [[ -f "$1" ]] && "$exe" convert "$1" -o "$2" >/dev/null || echo "skip: $1 not found" >&2; }
conv "$models/mobilenet_v2_torchvision_int8.tflite" "$fer/mobilenet_v2_int8.fer"
conv "$models/mobilenet_v2_torchvision_qdq_int8.onnx" "$fer/mobilenet_v2_qdq.fer"
conv "$models/mobilenet_v2_torchvision_f32.tflite" "$fer/mobilenet_v2_f32.fer"
conv "$root/models/fixtures/face_detection_short_range.tflite" "$fer/blazeface_f32.fer"
# BlazeFace int8 from Ferrite's own quantizer (scripts/demo.sh's settings, but
# without the detector preset, so every op is int8, heads included); no peer
# has this int8 model, so its row compares with the f32 row above.
"$exe" convert "$root/models/fixtures/face_detection_short_range.tflite" -o "$fer/blazeface_int8.fer" \
    --quantize int8 --calib "$root/models/detect/images" --calib-method mse \
    --preprocess "resize=128x128,scale=1/127.5,offset=-1" >/dev/null

"$venv/bin/python" "$here/compare.py" --ferrite "$exe" --models "$models" --fer "$fer" --out "$out" "$@"
