#!/usr/bin/env bash
# Load benchmarks (not tests). Starts `voxplane dev` (release build) on a private
# data dir, creates an enterprise project with its limit raised, and runs wrk
# against GET /api/v1/project and GET /health (the ceiling). Results go to
# stdout; docs/PERFORMANCE.md records them with the machine they ran on.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/voxplane-target}"
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}

if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk (Debian package)"
  apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/voxplane"

DATA=.local/bench
mkdir -p "$DATA"
[ -e "$DATA/pg" ] || ln -s "$(pwd)/.local/pg" "$DATA/pg"
PORT=${PORT:-18181}
VOXPLANE_DATA_DIR=$DATA VOXPLANE_LOG_LEVEL=warn "$BIN" dev --port "$PORT" > "$DATA/dev.log" 2>&1 &
DEV=$!
trap 'kill $DEV 2>/dev/null; wait $DEV 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do [ -f "$DATA/dev.env" ] && break; sleep 0.5; done
sleep 1
# shellcheck disable=SC1091
source "$DATA/dev.env"
PROJECT=$(DATABASE_URL=$DATABASE_URL "$BIN" admin create-project --name bench --plan enterprise --json)
KEY=$(echo "$PROJECT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
ID=$(echo "$PROJECT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["project_id"])')
DATABASE_URL=$DATABASE_URL "$BIN" admin set-rate-limit --project "$ID" --per-minute 2000000000 >/dev/null

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION (server: 2 workers, same machine)"
curl -fsS -H "X-API-Key: $KEY" "$VOXPLANE_URL/api/v1/project" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d5s "$VOXPLANE_URL/health" >/dev/null # warm-up
echo "-- GET /health (ceiling)"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$VOXPLANE_URL/health" | grep -E "Requests/sec|Latency  |50%|99%|Non-2xx"
echo "-- GET /api/v1/project (auth + rate limit, enterprise key)"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "X-API-Key: $KEY" "$VOXPLANE_URL/api/v1/project" \
  | grep -E "Requests/sec|Latency  |50%|99%|Non-2xx"
