#!/usr/bin/env bash
# Builds seed corpora for the fuzz targets from the committed fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p fuzz/corpus/fer_loader fuzz/corpus/tflite_reader
for f in tests/fixtures/ops/*.i8.000.tflite tests/fixtures/ops/*.f32.001.tflite; do
  cp "$f" fuzz/corpus/tflite_reader/
  out="fuzz/corpus/fer_loader/$(basename "$f" .tflite).fer"
  [ -f "$out" ] || ./target/release/ferrite convert "$f" -o "$out" >/dev/null 2>&1 || true
done
