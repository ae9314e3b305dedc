#!/usr/bin/env bash
# Benchmark (not a test): GET /api/v1/project with the in-process rate
# limiter vs the Redis one, in the same run, on the same database.
#   - `voxplane dev` (release build) provides the database (embedded
#     Postgres) and an enterprise key with its limit raised;
#   - two `voxplane serve --standalone` nodes on that database: A without
#     Redis, B with VOXPLANE_REDIS_URL pointing at a local redis-server
#     (`make setup`'s .local/redis, or one on PATH);
#   - wrk against A, then B, then A again (A's two runs bound the noise).
# Every request of B is one EVALSHA round trip to Redis (the GCRA script).
# Results go to stdout; docs/PERFORMANCE.md records them with the machine.
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
./scripts/setup.sh >/dev/null
REDIS=$(command -v redis-server || echo .local/redis/bin/redis-server)
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/voxplane"

DATA=.local/bench-redis
rm -rf "$DATA"; mkdir -p "$DATA"
ln -s "$(pwd)/.local/pg" "$DATA/pg"
PORT=${PORT:-18191}; PORT_A=$((PORT + 1)); PORT_B=$((PORT + 2)); PORT_R=$((PORT + 3))
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null || true' EXIT
"$REDIS" --port "$PORT_R" --bind 127.0.0.1 --save "" --appendonly no > "$DATA/redis.log" 2>&1 &
PIDS+=($!)
VOXPLANE_DATA_DIR=$DATA VOXPLANE_LOG_LEVEL=warn "$BIN" dev --port "$PORT" > "$DATA/dev.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 240); do [ -f "$DATA/dev.env" ] && break; sleep 0.5; done
sleep 1
# shellcheck disable=SC1091
source "$DATA/dev.env"
PROJECT=$("$BIN" admin create-project --name bench --plan enterprise --json)
KEY=$(echo "$PROJECT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
ID=$(echo "$PROJECT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["project_id"])')
"$BIN" admin set-rate-limit --project "$ID" --per-minute 2000000000 >/dev/null

node() { # port, extra env…
  local port=$1; shift
  env -u VOXPLANE_URL -u VOXPLANE_API_KEY VOXPLANE_PORT="$port" VOXPLANE_LOG_LEVEL=warn \
    VOXPLANE_DATA_DIR="$DATA" "$@" "$BIN" serve --standalone > "$DATA/serve-$port.log" 2>&1 &
  PIDS+=($!)
}
node "$PORT_A"
node "$PORT_B" VOXPLANE_REDIS_URL="redis://127.0.0.1:$PORT_R/0"
for p in "$PORT_A" "$PORT_B"; do
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$p/health" && break; sleep 0.2; done
done
curl -fsS "http://127.0.0.1:$PORT_B/ready"; echo

run() { # title, url
  echo "-- $1"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "X-API-Key: $KEY" "$2" \
    | grep -E "Requests/sec|Latency  |  50%|  99%|Non-2xx|Socket errors"
}
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION on the same machine; servers: release build, 2 workers each"
wrk -t1 -c16 -d3s -H "X-API-Key: $KEY" "http://127.0.0.1:$PORT_A/api/v1/project" >/dev/null
wrk -t1 -c16 -d3s -H "X-API-Key: $KEY" "http://127.0.0.1:$PORT_B/api/v1/project" >/dev/null
run "GET /api/v1/project, in-process limiter (node A)" "http://127.0.0.1:$PORT_A/api/v1/project"
run "GET /api/v1/project, Redis limiter (node B)" "http://127.0.0.1:$PORT_B/api/v1/project"
run "GET /api/v1/project, in-process limiter again (node A)" "http://127.0.0.1:$PORT_A/api/v1/project"
echo "-- fallbacks counted on node B (0 expected):"
curl -fsS "http://127.0.0.1:$PORT_B/metrics" | grep '^voxplane_redis_fallbacks_total' || echo "none"
