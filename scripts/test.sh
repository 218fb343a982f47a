#!/usr/bin/env bash
# The test suite: unit tests, the per-op LiteRT suite, whole-model goldens,
# the malformed-input corpus and the no-allocation check. Needs only cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --release "$@"
