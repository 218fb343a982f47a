#!/usr/bin/env bash
# Instructions per inference under qemu-user: builds the runtime-only example
# (`bench_model`) for aarch64 and armv7, the counting plugin, and runs a
# model 1 and 2 times on each qemu CPU, printing count(2) - count(1) per path.
#
# Usage: scripts/qemu-insn-count.sh MODEL.fer [aarch64|armv7]   (default: both)
# Needs: gcc, qemu-user (>= 7.2), the cross toolchains (see cross-build.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="$1"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
plugin="$target_dir/qemu-insn-count.so"
gcc -shared -fPIC -O2 -o "$plugin" "$root/scripts/qemu-insn-count.c"
arches="${2:-aarch64 armv7}"
count() { # QEMU EXE ENV CPU RUNS
    env $3 $1 -cpu "$4" -plugin "$plugin" "$2" "$model" "$5" 2>&1 >/dev/null \
        | sed -n 's/^insns: //p'
}
for arch in $arches; do
    case "$arch" in
        aarch64)
            t=aarch64-unknown-linux-gnu
            qemu="qemu-aarch64 -L /usr/aarch64-linux-gnu"
            paths=("reference:FERRITE_KERNELS=reference:max" "neon:X=1:cortex-a72" "neon+dotprod:X=1:cortex-a76" "neon+i8mm:X=1:max")
            ;;
        armv7)
            t=armv7-unknown-linux-gnueabihf
            qemu="qemu-arm -L /usr/arm-linux-gnueabihf"
            paths=("armv7-reference:FERRITE_KERNELS=reference:cortex-a7" "armv7-neon:X=1:cortex-a7")
            ;;
        *) echo "unknown arch $arch" >&2; exit 2 ;;
    esac
    (cd "$root" && cargo build --release --quiet --target "$t" -p ferrite-runtime --example bench_model)
    exe="$target_dir/$t/release/examples/bench_model"
    for path in "${paths[@]}"; do
        IFS=: read -r name envv cpu <<<"$path"
        one="$(count "$qemu" "$exe" "$envv" "$cpu" 1)"
        two="$(count "$qemu" "$exe" "$envv" "$cpu" 2)"
        printf '%-16s %12d instructions per inference\n' "$name" "$((two - one))"
    done
done
