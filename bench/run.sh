#!/usr/bin/env bash
# Load benchmarks (not tests). Starts `voxplane dev` (release build) on a private
# data dir, creates an enterprise project with its limit raised, and measures
# with wrk (Debian package):
#   1. GET /health (the ceiling) and GET /api/v1/project (auth + rate limit)
#   2. POST /api/v1/token (no agent) next to a minimal Node token server
#      (express + livekit-server-sdk, bench/peers/node-token)
#   3. POST /api/v1/sessions/{room}/transcript over 100 rooms: wrk (closed loop)
#      and bench/load.rs (open loop at each of RATES lines/s, default three runs at 5000,
#      after a 5 s warm-up; LOAD_SERIES=1 adds each second's p50/p99/max)
# The cluster is brought to steady state first (WAL segments ready for reuse;
# WAL_WARM=0 skips it); PG_EXTRA takes more statements for that step, separated
# by ';' (e.g. 'ALTER SYSTEM SET log_checkpoints = on; ALTER SYSTEM SET ...').
# bench/events.sh measures webhook fan-out and /ws/monitor latency.
# Results go to stdout; docs/PERFORMANCE.md records them with the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/voxplane-target}"
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
ONLY=${ONLY:-all}

if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk (Debian package)"
  apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --quiet
cargo bench --bench load --no-run --quiet
BIN="$CARGO_TARGET_DIR/release/voxplane"

DATA=.local/bench
rm -rf "$DATA"; mkdir -p "$DATA"
ln -s "$(pwd)/.local/pg" "$DATA/pg"
PORT=${PORT:-18181}
VOXPLANE_DATA_DIR=$DATA VOXPLANE_LOG_LEVEL=warn "$BIN" dev --port "$PORT" > "$DATA/dev.log" 2>&1 &
DEV=$!
PEER=
trap 'kill $DEV $PEER 2>/dev/null; wait $DEV 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do [ -f "$DATA/dev.env" ] && break; sleep 0.5; done
sleep 1
# shellcheck disable=SC1091
source "$DATA/dev.env"
PROJECT=$("$BIN" admin create-project --name bench --plan enterprise --json)
KEY=$(echo "$PROJECT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
ID=$(echo "$PROJECT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["project_id"])')
"$BIN" admin set-rate-limit --project "$ID" --per-minute 2000000000 >/dev/null
export KEY
sleep 6 # the key cache picks up the raised limit
# Steady state, not a fresh cluster: a server that has run through a checkpoint
# reuses (renames) old WAL segments, while a fresh one creates each new 16 MB
# segment, zero-filled, in the commit that first needs it (every ~3.5 s at
# 5,000 lines/s: a tail-latency spike per segment). So: keep up to 1 GB of
# segments for reuse, write 48 segments' worth and checkpoint twice.
if [ "${WAL_WARM:-1}" = 1 ]; then
  PSQL=.local/pg/bin/psql
  EXTRA=()
  IFS=';' read -ra STMTS <<< "${PG_EXTRA:-}"
  for stmt in "${STMTS[@]}"; do [ -n "${stmt// /}" ] && EXTRA+=(-c "$stmt"); done
  "$PSQL" -qAt "$DATABASE_URL" -c "ALTER SYSTEM SET min_wal_size = '1GB'" "${EXTRA[@]}" -c "SELECT pg_reload_conf()" \
    -c "CREATE TABLE wal_warm (x int)" \
    -c "DO \$\$ BEGIN FOR i IN 1..48 LOOP INSERT INTO wal_warm VALUES (i); PERFORM pg_switch_wal(); COMMIT; END LOOP; END \$\$" \
    -c "DROP TABLE wal_warm" -c "CHECKPOINT" -c "CHECKPOINT" >/dev/null
  echo "== WAL segments ready for reuse: $("$PSQL" -qAt "$DATABASE_URL" -c "SELECT count(*) FROM pg_ls_waldir()")"
  sync; sleep 3
fi

run() { # title, wrk args…
  echo "-- $1"
  shift
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" | grep -E "Requests/sec|Latency  |  50%|  99%|Non-2xx|Socket errors"
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION on the same machine; server: release build, 2 workers"
wrk -t1 -c16 -d3s "$VOXPLANE_URL/health" >/dev/null # warm-up

if [ "$ONLY" = all ] || [ "$ONLY" = project ]; then
  run "GET /health (ceiling)" "$VOXPLANE_URL/health"
  run "GET /api/v1/project (enterprise key)" -H "X-API-Key: $KEY" "$VOXPLANE_URL/api/v1/project"
fi

if [ "$ONLY" = all ] || [ "$ONLY" = token ]; then
  BODY='{"identity":"bench-user","room":"bench-room","no_agent":true}' run "POST /api/v1/token (no agent)" -s bench/post.lua "$VOXPLANE_URL/api/v1/token"
  if [ ! -d bench/peers/node-token/node_modules ]; then
    (cd bench/peers/node-token && npm install --no-audit --no-fund --silent)
  fi
  PORT=18282 node bench/peers/node-token/server.js > "$DATA/node.log" 2>&1 &
  PEER=$!
  sleep 1.5
  BODY='{"identity":"bench-user","room":"bench-room"}' KEY= run "Node peer: POST /token (express + livekit-server-sdk)" -s bench/post.lua "http://127.0.0.1:18282/token"
  kill $PEER 2>/dev/null || true
fi

if [ "$ONLY" = all ] || [ "$ONLY" = transcript ]; then
  for i in $(seq 0 99); do
    curl -fsS -o /dev/null -X POST -H "X-API-Key: $KEY" -H "Content-Type: application/json" \
      -d "{\"room_name\":\"bench-$i\"}" "$VOXPLANE_URL/api/v1/sessions"
  done
  # Open loop: a fixed offered rate, latency from each request's scheduled
  # send (wrk's closed loop hides stalls behind its own waiting).
  LOAD="$(ls -t "$CARGO_TARGET_DIR"/release/deps/load-* | grep -v '\.d$' | head -1)"
  # Warm-up (not reported): the first seconds after start-up pay for new
  # connections, prepared statements, cold caches and the first full-page
  # images after the checkpoint above.
  "$LOAD" --bench "$VOXPLANE_URL" "$KEY" 5000 5 100 >/dev/null
  for RATE in ${RATES:-5000 5000 5000}; do
    echo "-- POST /api/v1/sessions/{room}/transcript (100 rooms, open loop, $RATE lines/s)"
    "$LOAD" --bench "$VOXPLANE_URL" "$KEY" "$RATE" "${LOAD_SECONDS:-15}" 100
  done
  echo "-- GET /health (open loop, 10000 req/s: the generator's own floor)"
  "$LOAD" --bench "$VOXPLANE_URL" "$KEY" 10000 5 100 health
  CONNECTIONS=100 run "POST /api/v1/sessions/{room}/transcript (100 rooms, closed loop)" -c100 -s bench/transcript.lua "$VOXPLANE_URL"
fi
