#!/usr/bin/env bash
# Fetches the source models and photos into models/cache/ and checks their sha256 against
# models/SHA256SUMS.
#
# Usage: models/fetch.sh
#
#   * BlazeFace short-range: mediapipe/modules/face_detection/face_detection_short_range.tflite
#     from the PyPI wheel mediapipe==0.10.21 (cp311, manylinux_2_28_x86_64; only the wheel is
#     downloaded, nothing is installed) -> cache/face_detection_short_range.tflite. The
#     committed copy in fixtures/ must have the same hash.
#   * Photos astronaut, chelsea, coffee, motorcycle_left, rocket: copied from the skimage/data
#     folder of the scikit-image==0.26.0 installed in the venv (models/setup-venv.sh)
#     -> cache/photos/.
#   * MobileNetV2 f32/int8 .tflite: not fetchable without a 1.6 GB TensorFlow install; when
#     $FERRITE_SHARED_MODELS (default: ../shared/models from the repository root) holds them,
#     their hashes are checked (lines starting with "shared/").
#
# PYTHON selects the interpreter whose pip downloads the wheel and whose scikit-image holds
# the photos (default: models/cache/venv/bin/python, then python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cache="$here/cache"
shared="${FERRITE_SHARED_MODELS:-$repo/../shared/models}"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$cache/venv/bin/python" ]]; then PYTHON="$cache/venv/bin/python"; else PYTHON=python3; fi
fi

mkdir -p "$cache/wheels" "$cache/photos"

wheel="$cache/wheels/mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
if [[ ! -f "$wheel" ]]; then
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps \
        mediapipe==0.10.21 --python-version 3.11 --only-binary=:all: \
        --platform manylinux_2_28_x86_64 -d "$cache/wheels"
fi
member="mediapipe/modules/face_detection/face_detection_short_range.tflite"
"$PYTHON" - "$wheel" "$member" "$cache/face_detection_short_range.tflite" <<'PY'
import sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, open(dest, "wb") as f:
    f.write(z.read(member))
PY

skdata="$("$PYTHON" -c 'import os, skimage.data; print(os.path.dirname(skimage.data.__file__))')"
for photo in astronaut.png chelsea.png coffee.png motorcycle_left.png rocket.jpg; do
    cp "$skdata/$photo" "$cache/photos/$photo"
done

# Verify every line of SHA256SUMS; "shared/" lines only when that folder has the file.
status=0
while read -r sum path; do
    [[ -z "$sum" || "$sum" == \#* ]] && continue
    if [[ "$path" == shared/* ]]; then
        file="$shared/${path#shared/}"
        if [[ ! -f "$file" ]]; then
            echo "skip     $path (not in $shared)"
            continue
        fi
    else
        file="$here/$path"
    fi
    if [[ ! -f "$file" ]]; then
        echo "MISSING  $path"
        status=1
    elif [[ "$(sha256sum "$file" | cut -d' ' -f1)" == "$sum" ]]; then
        echo "ok       $path"
    else
        echo "MISMATCH $path"
        status=1
    fi
done < "$here/SHA256SUMS"
exit $status
