#!/usr/bin/env bash
# Transcript search benchmark (not a test): loads TX_BENCH_LINES (default
# 10,000,000) lines with SQL into its own embedded Postgres under
# .local/bench-tx, then times GET /api/v1/transcripts/search through the
# API. Release build. Figures go to stdout; docs/PERFORMANCE.md records them.
#   TX_BENCH_LINES (default 10000000)   lines loaded
#   TX_BENCH_ROUNDS (default 300)       sequential requests per query class
#   TX_BENCH_KEEP=1                     keep the loaded database (.local/bench-tx/kept-LINES)
#                                       and reuse it next time (time query changes without a reload)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/voxplane-target}"
./scripts/setup.sh >/dev/null
cargo bench --quiet --bench transcripts -- --bench
