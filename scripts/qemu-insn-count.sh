#!/usr/bin/env bash
# Instructions per inference under qemu-user: builds the runtime-only example
# (`bench_model`) for aarch64, the counting plugin, and runs a model 1 and 2
# times on each qemu CPU, printing count(2) - count(1) per path.
#
# Usage: scripts/qemu-insn-count.sh MODEL.fer
# Needs: gcc, qemu-user (>= 7.2), the aarch64 cross toolchain (see cross-build.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="$1"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
plugin="$target_dir/qemu-insn-count.so"
gcc -shared -fPIC -O2 -o "$plugin" "$root/scripts/qemu-insn-count.c"
(cd "$root" && cargo build --release --quiet --target aarch64-unknown-linux-gnu -p ferrite-runtime --example bench_model)
exe="$target_dir/aarch64-unknown-linux-gnu/release/examples/bench_model"
count() { # ENV CPU RUNS
    env $1 qemu-aarch64 -cpu "$2" -L /usr/aarch64-linux-gnu -plugin "$plugin" "$exe" "$model" "$3" 2>&1 >/dev/null \
        | sed -n 's/^insns: //p'
}
for path in "reference:FERRITE_KERNELS=reference:max" "neon:X=1:cortex-a72" "neon+dotprod:X=1:max"; do
    IFS=: read -r name envv cpu <<<"$path"
    one="$(count "$envv" "$cpu" 1)"
    two="$(count "$envv" "$cpu" 2)"
    printf '%-14s %12d instructions per inference\n' "$name" "$((two - one))"
done
