#!/usr/bin/env bash
# The test suite: unit tests, the per-op LiteRT suite, whole-model goldens,
# the malformed-input corpus and the no-allocation check. Needs only cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
# Without the release profile's thin LTO the ~20 test binaries build in about
# 3 minutes on 2 cores instead of 12; results are the same.
export CARGO_PROFILE_RELEASE_LTO="${CARGO_PROFILE_RELEASE_LTO:-false}"
cargo test --workspace --release "$@"
