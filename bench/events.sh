#!/usr/bin/env bash
# Event benchmarks (not tests), on `voxplane dev` (release build):
#  (a) 10,000 events x 5 local receiver endpoints (bench/receiver.js):
#      (a1) committed at once: deliveries/s;
#      (a2) committed at RATE events/s: commit→delivery latency.
#  (b) 1,000 /ws/monitor sockets subscribed to `rooms`, 200 events/s:
#      commit→socket latency.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/voxplane-target}"
EVENTS=${EVENTS:-10000}
SOCKETS=${SOCKETS:-1000}
RATE_SECONDS=${RATE_SECONDS:-3}
ONLY=${ONLY:-all} # all | webhooks | monitor
cargo build --release --quiet
cargo bench --quiet --bench monitor --no-run # the monitor client (b)
BIN="$CARGO_TARGET_DIR/release/voxplane"
PSQL=.local/pg/bin/psql
DATA=.local/bench-events
rm -rf "$DATA"; mkdir -p "$DATA"; ln -s "$(pwd)/.local/pg" "$DATA/pg"
PORT=${PORT:-18191}
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
VOXPLANE_DATA_DIR=$DATA VOXPLANE_LOG_LEVEL=warn VOXPLANE_MONITOR_MAX_CONNECTIONS_PER_PROJECT=5000 \
  VOXPLANE_MONITOR_BUFFER=4096 VOXPLANE_WEBHOOK_CONCURRENCY=64 VOXPLANE_EVENTS_POLL_MS=200 \
  "$BIN" dev --port "$PORT" > "$DATA/dev.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 240); do [ -f "$DATA/dev.env" ] && break; sleep 0.5; done
sleep 1
# shellcheck disable=SC1091
source "$DATA/dev.env"
PROJECT=$("$BIN" admin create-project --name bench-events --plan enterprise --json)
KEY=$(echo "$PROJECT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
ID=$(echo "$PROJECT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["project_id"])')
PREFIX=$(echo "$PROJECT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["room_prefix"])')
"$BIN" admin set-rate-limit --project "$ID" --per-minute 2000000000 >/dev/null
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

# Voxplane sends one NOTIFY after the commit of event-writing transactions
# (src/events/mod.rs); events written here with psql do the same. Their
# created_at, the latencies' start, is the insert's clock_timestamp(), just
# before the commit: now() would be the start of the transaction, which in these
# paced loops begins before the pacing sleep (up to a tick earlier).
NOTIFY="NOTIFY voxplane_events"

wait_for() { # dir, count
  for _ in $(seq 1 1200); do
    got=$(cat "$1"/recv-*.log 2>/dev/null | wc -l || true)
    [ "$got" -ge "$2" ] && return 0
    sleep 0.25
  done
}

if [ "$ONLY" != monitor ]; then
mkdir -p "$DATA/a"
node bench/receiver.js "$DATA/a" 18301 18302 18303 18304 18305 & PIDS+=($!)
sleep 1
for i in 1 2 3 4 5; do
  curl -fsS -o /dev/null -X POST -H "X-API-Key: $KEY" -H "Content-Type: application/json" \
    -d "{\"url\":\"http://127.0.0.1:$((18300 + i))/hook\",\"event_types\":[\"test\"]}" "$VOXPLANE_URL/api/v1/webhooks"
done

echo "-- (a1) throughput: $EVENTS events committed at once x 5 endpoints"
"$PSQL" -q "$DATABASE_URL" -c "INSERT INTO events (public_id, project_id, event_type, data)
  SELECT 'evt_burst_' || g, $ID, 'test', jsonb_build_object('n', g) FROM generate_series(1, $EVENTS) g" -c "$NOTIFY"
wait_for "$DATA/a" $((EVENTS * 5))
python3 bench/events_report.py "$DATA/a"
mv "$DATA/a" "$DATA/a1"; mkdir -p "$DATA/a"

RATE=${RATE:-400}
echo "-- (a2) latency: $EVENTS events at $RATE events/s (= $((RATE * 5)) deliveries/s) x 5 endpoints"
PER_TICK=$((RATE / 100))
# Paced by the clock: tick i is committed at t0 + i × 10 ms.
"$PSQL" -q "$DATABASE_URL" -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN FOR i IN 1..$((EVENTS / PER_TICK)) LOOP
    INSERT INTO events (public_id, project_id, event_type, data, created_at)
      SELECT 'evt_paced_' || i || '_' || g, $ID, 'test', jsonb_build_object('n', g), clock_timestamp()
      FROM generate_series(1, $PER_TICK) g;
    COMMIT; $NOTIFY; COMMIT;
    PERFORM pg_sleep(greatest(0, extract(epoch FROM t0 + i * interval '10 ms' - clock_timestamp()))); END LOOP; END \$\$;"
wait_for "$DATA/a" $((EVENTS * 5))
python3 bench/events_report.py "$DATA/a"

fi

if [ "$ONLY" != webhooks ]; then
echo "-- (b) $SOCKETS monitor sockets, 200 events/s for ${RATE_SECONDS}s"
EXPECTED=$((RATE_SECONDS * 200))
cargo bench --quiet --bench monitor -- --bench "$VOXPLANE_URL" "$KEY" "$SOCKETS" "$EXPECTED" > "$DATA/monitor.out" &
CLIENT=$!
for _ in $(seq 1 120); do grep -q READY "$DATA/monitor.out" 2>/dev/null && break; sleep 0.5; done
"$PSQL" -q "$DATABASE_URL" -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN FOR i IN 1..$EXPECTED LOOP
    INSERT INTO events (public_id, project_id, event_type, data, created_at) VALUES ('evt_mon_' || i, $ID,
      'participant.joined', jsonb_build_object('room_name', '${PREFIX}_bench', 'identity', 'p' || i, 'name', '',
      'joined_at', clock_timestamp()), clock_timestamp());
    COMMIT; $NOTIFY; COMMIT;
    PERFORM pg_sleep(greatest(0, extract(epoch FROM t0 + i * interval '5 ms' - clock_timestamp()))); END LOOP; END \$\$;"
wait $CLIENT || true
grep -v READY "$DATA/monitor.out"
fi
