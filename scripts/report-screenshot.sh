#!/usr/bin/env bash
# Opens a quantization report in headless Chromium (Debian's `chromium`) and
# takes a screenshot; fails when the page does not load or the charts are
# missing. Used by CI to prove the report renders offline.
#
# Usage: scripts/report-screenshot.sh REPORT.html OUT.png
# Installs chromium with apt-get when it is missing (root, Debian).
set -euo pipefail
report="$(realpath "$1")"
png="$(realpath -m "$2")"
if ! command -v chromium >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
grep -q '<svg' "$report" || { echo "$report has no SVG charts" >&2; exit 1; }
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking
       --disable-component-update --no-first-run --user-data-dir="$profile"
       --hide-scrollbars --window-size=1280,2400)
# The DOM as rendered: the charts must be there after layout.
dom="$(timeout 120 chromium "${flags[@]}" --dump-dom "file://$report" 2>"$profile/dom.log")" || {
    cat "$profile/dom.log" >&2; echo "chromium could not open $report" >&2; exit 1; }
n_svg="$(grep -o '<svg' <<<"$dom" | wc -l)"
if (( n_svg < 3 )); then
    echo "rendered page has $n_svg charts, expected 3" >&2
    exit 1
fi
timeout 120 chromium "${flags[@]}" --screenshot="$png" "file://$report" 2>"$profile/shot.log" || {
    cat "$profile/shot.log" >&2; exit 1; }
[[ -s "$png" ]] || { echo "no screenshot written" >&2; exit 1; }
# Console errors (page errors, not chromium's own start-up noise) fail the check.
if grep -E "Uncaught|ERROR:CONSOLE" "$profile/shot.log" "$profile/dom.log"; then
    echo "the page logged errors" >&2
    exit 1
fi
echo "screenshot: $png ($n_svg charts)"
