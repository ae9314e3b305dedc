#!/usr/bin/env bash
# Knowledge-base benchmarks (not tests): ingest throughput of the pipeline vs
# the bare model, and search latency/recall at 100,000 chunks. Release build;
# starts its own embedded Postgres under .local/bench-kb. Figures go to
# stdout; docs/PERFORMANCE.md records them with the machine they ran on.
#   KB_BENCH_DOC_MB (default 2)   size of the ingested document
#   KB_BENCH_CHUNKS (default 100000)   chunks loaded for the search benchmark
#   KB_BENCH_WORKERS, KB_BENCH_THREADS, KB_BENCH_BATCH, KB_BENCH_QUERY_THREADS
#                     embedder settings (default: the server's defaults)
#   KB_BENCH_CORPORA (default "natural narrow")   search corpora to run
#   KB_BENCH_EF_SEARCH   kb_hnsw_ef_search (default: the server's default)
#   KB_BENCH_EXPLAIN=1   print the plan of one vector search per corpus
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/voxplane-target}"
./scripts/setup.sh >/dev/null
cargo bench --quiet --bench knowledge -- --bench
