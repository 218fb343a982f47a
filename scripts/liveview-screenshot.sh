#!/usr/bin/env bash
# The live view in a real browser: runs `ferrite detect --serve` on frames
# from a file source (composite photos with faces), opens the page in
# headless Chromium (Debian's `chromium` package), takes a screenshot, and
# checks that the page showed the stream and the detections.
#
# Usage: scripts/liveview-screenshot.sh [OUT.png]   (default: target/liveview.png)
# Needs: chromium (apt-get install -y --no-install-recommends chromium), curl.
set -euo pipefail
cd "$(dirname "$0")/.."
shot="${1:-target/liveview.png}"
port="${PORT:-18571}"
command -v chromium >/dev/null || { echo "chromium is not installed (apt-get install -y chromium)" >&2; exit 1; }
cargo build --release --quiet
ferrite="${CARGO_TARGET_DIR:-target}/release/ferrite"
work="$(mktemp -d)"
server=""
cleanup() {
    if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

$ferrite convert models/fixtures/face_detection_short_range.tflite -o "$work/face.fer" \
    --detector blazeface-short-range >/dev/null
mkdir -p "$work/frames"
cp models/detect/images/faces_coffee.png "$work/frames/1.png"
cp models/detect/images/faces_grid.png "$work/frames/2.png"
# Keeps serving the last frame after the source ends.
$ferrite detect "$work/face.fer" --images "$work/frames" --serve "127.0.0.1:$port" \
    > "$work/detections.jsonl" 2> "$work/server.log" &
server=$!
for _ in $(seq 100); do
    if curl -sf "http://127.0.0.1:$port/detections.json" | grep -q faces_grid; then break; fi
    sleep 0.1
done
json="$(curl -sf "http://127.0.0.1:$port/detections.json")"
echo "detections.json: $json"
echo "$json" | grep -q '"label":"face"' || { echo "no detections served" >&2; cat "$work/server.log" >&2; exit 1; }

mkdir -p "$(dirname "$shot")"
# Virtual time would wait forever on the never-ending MJPEG stream, so real
# time it is: --timeout stops loading after 8 s and then dumps or shoots.
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking
       --disable-dev-shm-usage --no-first-run --hide-scrollbars --timeout=8000)
# A dump of the DOM after the scripts ran: the summary line must name the faces.
dom="$(timeout 60 chromium "${flags[@]}" --dump-dom "http://127.0.0.1:$port/" 2>/dev/null)"
echo "$dom" | grep -o '<p id="summary">[^<]*</p>'
echo "$dom" | grep -q '4 detection(s)' || { echo "the page did not show the detections" >&2; exit 1; }
timeout 60 chromium "${flags[@]}" --window-size=720,760 --screenshot="$shot" \
    "http://127.0.0.1:$port/" 2>/dev/null
[[ -s "$shot" ]] || { echo "no screenshot written" >&2; exit 1; }
echo "screenshot: $shot ($(stat -c %s "$shot") bytes)"
