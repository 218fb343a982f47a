#!/usr/bin/env bash
# Builds the release CLI (`ferrite`) and the runtime-only example
# (`bench_model`, ferrite-runtime alone) for aarch64 and armv7 Linux,
# strips them and prints their sizes.
#
# Needs: rustup targets aarch64-unknown-linux-gnu and armv7-unknown-linux-gnueabihf,
# and the cross linkers/binutils (Debian: gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf
# and their libc6-dev-*-cross). `.cargo/config.toml` names the linkers.
# Usage: scripts/cross-build.sh [TARGET...]   (default: both)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)

strip_for() {
    case "$1" in
        aarch64-*) echo aarch64-linux-gnu-strip ;;
        armv7-*) echo arm-linux-gnueabihf-strip ;;
        *) echo strip ;;
    esac
}

cd "$root"
for t in "${targets[@]}"; do
    cargo build --release --quiet --target "$t" -p ferrite --bin ferrite
    cargo build --release --quiet --target "$t" -p ferrite-runtime --example bench_model
    out="$target_dir/$t/release"
    mkdir -p "$out/stripped"
    s="$(strip_for "$t")"
    "$s" -o "$out/stripped/ferrite" "$out/ferrite"
    "$s" -o "$out/stripped/bench_model" "$out/examples/bench_model"
    printf '%-32s ferrite (CLI, stripped): %8d bytes   bench_model (runtime only, stripped): %8d bytes\n' \
        "$t" "$(stat -c %s "$out/stripped/ferrite")" "$(stat -c %s "$out/stripped/bench_model")"
done
