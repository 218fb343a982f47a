#!/usr/bin/env bash
# The ONNX checks CI runs: fetch the inputs, make the onnxruntime goldens and the extra
# conformance cases, then run the model tests and the conformance suite.
#
# Usage: models/onnx/ci.sh        (from anywhere; about 3 minutes after the first build)
#
# Needs python3 (venv + pip), npm and cargo. $FERRITE_SHARED_MODELS (default
# ../shared/models) provides the MobileNetV2 ONNX files; without them those tests skip.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

# The scikit-image photos the goldens use come from the main models recipe.
models/setup-venv.sh
models/fetch.sh
models/onnx/setup-venv.sh
PYTHON="$repo/models/cache/onnx-venv/bin/python" models/onnx/fetch.sh
models/cache/onnx-venv/bin/python models/onnx/make_goldens.py
models/cache/onnx-venv/bin/python models/onnx/make_extra_tests.py
cargo test --release -p ferrite-convert --lib -- onnx passes
cargo test --release -p ferrite-runtime --lib -- math
cargo test --release --test onnx_models -- --nocapture
cargo test --release --test onnx_conformance -- --ignored --nocapture
