#!/usr/bin/env bash
# The main job on the bundled default: convert MediaPipe's BlazeFace face
# detector (models/fixtures, no download), run it on a bundled photo
# (scikit-image's astronaut, preprocessed to the model's 128x128 [-1, 1] input),
# print the result, and measure the latency. Needs only cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
ferrite=target/release/ferrite
out=${TMPDIR:-/tmp}/ferrite-demo
mkdir -p "$out"
$ferrite convert models/fixtures/face_detection_short_range.tflite -o "$out/face.fer"
$ferrite run "$out/face.fer" --input tests/fixtures/models/blazeface/in00.npy --out-dir "$out/result"
# output1 holds the 896 anchors' face logits: the astronaut's face is the
# largest (logit 2.45, a score of sigmoid(2.45) = 0.92).
$ferrite bench "$out/face.fer" --runs 50 --warmup 5
