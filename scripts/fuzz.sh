#!/usr/bin/env bash
# Fuzzes the decoder and the classifier: N random lines (default 1,000,000),
# biased toward JSON-ish text, backslashes, octal escapes, quotes and high
# bytes, go through kmdb::decode::decode_line and kmdb::resolve::parse_line,
# checked against an independent model of the decoder and the invariants of
# every record (tests/lines.rs, fuzz_decode_and_classify_long). Release
# build, all cores; needs no database. A 20,000-input run is part of the
# normal `cargo test`.
#
#   scripts/fuzz.sh              # 1,000,000 inputs
#   scripts/fuzz.sh 50000000     # more
#   KMDB_FUZZ_SEED=7 scripts/fuzz.sh   # other inputs (the default seed is fixed)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

N="${1:-1000000}"
case "$N" in
    '' | *[!0-9_]*) echo "usage: $0 [N]   (N: number of inputs)" >&2; exit 2 ;;
esac
command -v cargo >/dev/null || { echo "fuzz.sh: cargo not found" >&2; exit 1; }

export KMDB_FUZZ_INPUTS="$N"
started=$(date +%s)
cargo test --release --test lines -- --ignored --exact fuzz_decode_and_classify_long --nocapture
echo "fuzz.sh: $N inputs, $(($(date +%s) - started)) s including the build"
