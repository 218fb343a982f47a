#!/usr/bin/env bash
# Runs each fuzz target for N seconds (default 60) from a seed corpus built
# from the committed fixtures. Needs a nightly toolchain; installs cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain on this machine; cannot run cargo-fuzz" >&2
  exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz --quiet
cargo build --release --quiet
bash fuzz/seed.sh
# ONNX seeds: a few backend node test models when models/onnx/fetch.sh has run.
mkdir -p fuzz/corpus/onnx_reader
for t in conv_with_strides_padding relu add_bcast maxpool_2d_pads gemm_default_single_elem_vector_bias; do
  f="models/cache/onnx/onnx/backend/test/data/node/test_$t/model.onnx"
  if [ -f "$f" ]; then cp "$f" "fuzz/corpus/onnx_reader/$t.onnx"; fi
done
for target in fer_loader tflite_reader onnx_reader; do
  cargo +nightly fuzz run --dev "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 2>&1 | tail -4
done
