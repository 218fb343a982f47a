#!/usr/bin/env bash
# The main job on the bundled default: convert MediaPipe's BlazeFace face
# detector (models/fixtures, no download) to int8 with its detection pipeline
# (pre-processing, SSD anchors, decoding, weighted NMS) stored in the package,
# detect the face in a bundled photo (scikit-image's astronaut), print the
# JSON line, write the annotated image, and measure the model's latency.
# Needs only cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
ferrite=target/release/ferrite
out=${TMPDIR:-/tmp}/ferrite-demo
mkdir -p "$out"
# int8, calibrated on the bundled photos (models/detect/images), each
# letterboxed to the model's 128x128 input exactly as the detector will
# pre-process camera frames (the preset's pre-processing).
$ferrite convert models/fixtures/face_detection_short_range.tflite -o "$out/face-int8.fer" \
    --detector blazeface-short-range --quantize int8 --calib models/detect/images \
    --calib-method mse
# One JSON line per image: boxes and keypoints in the photo's pixels.
$ferrite detect "$out/face-int8.fer" --image models/fixtures/astronaut_256.jpg \
    --out "$out/astronaut_annotated.jpg"
echo "annotated image: $out/astronaut_annotated.jpg"
# The float model for comparison, and both latencies.
$ferrite convert models/fixtures/face_detection_short_range.tflite -o "$out/face.fer" \
    --detector blazeface-short-range >/dev/null
$ferrite detect "$out/face.fer" --image models/fixtures/astronaut_256.jpg
$ferrite bench "$out/face-int8.fer" --runs 50 --warmup 5
$ferrite bench "$out/face.fer" --runs 50 --warmup 5
