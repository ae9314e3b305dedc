#!/usr/bin/env bash
# Call starts at scale (issue #20), a benchmark, not a test. Starts `voxplane dev`
# (release build) on a private data dir and measures with wrk on the same machine:
#   1. POST /api/v1/token with agent dispatch (the contract's default), a unique
#      room per request, one project with one active agent, empty month
#   2. the same with no_agent, and the Node peer (express + livekit-server-sdk,
#      bench/peers/node-token) with the same unique rooms
#   3. the same as 1 after 1,000,000 sessions were recorded this month
#   4. 20 projects starting calls at once (keys rotated per request), alternated
#      with one of them alone; then 19 of them next to a 20th that is at its
#      quota (answered 429)
#   5. POST /api/v1/rooms (the LiveKit simulator) with unique names
#   6. POST /livekit/webhook: signed agent joins, a room each (each starts the
#      room's session), as LiveKit sends them
# ONLY=token|projects|rooms|webhooks runs one part (token: 1 to 3; projects: 4,
# on an empty month); ROUNDS (2) sets how many times 4 alternates.
# Results go to stdout; docs/PERFORMANCE.md keeps them with the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/voxplane-target}"
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SESSIONS_BEFORE=${SESSIONS_BEFORE:-1000000}
ROUNDS=${ROUNDS:-2}
want() { [ -z "${ONLY:-}" ] || [ "$ONLY" = "$1" ]; }

# shellcheck source=bench/dev.sh
source bench/dev.sh
DATA=.local/bench-calls
# Enterprise: room and session quotas out of the way; professional: the plan of
# the project at its quota (one session a month).
export VOXPLANE_PLANS__ENTERPRISE__SESSIONS=1000000000 VOXPLANE_PLANS__ENTERPRISE__ROOMS=1000000000
export VOXPLANE_PLANS__PROFESSIONAL__SESSIONS=1
# The webhook step's rooms exist only in its webhooks, not in the simulator:
# the reconciler (every 30 s) would end them all in the middle of the run.
export VOXPLANE_RECONCILE_SECS=3600
PEER=
trap 'kill $DEV $PEER 2>/dev/null; wait $DEV 2>/dev/null || true' EXIT
dev_start "$DATA" "${PORT:-18183}"
PSQL=.local/pg/bin/psql

project() { # plan → "id key"
  "$BIN" admin create-project --name "bench-$RANDOM" --plan "$1" --json |
    python3 -c 'import json,sys; p=json.load(sys.stdin); print(p["project_id"], p["api_key"])'
}
agent() { # key
  curl -fsS -o /dev/null -X POST -H "X-API-Key: $1" -H "Content-Type: application/json" \
    -d '{"name":"bench agent"}' "$VOXPLANE_URL/api/v1/agents"
}
read -r ID KEY < <(project enterprise)
"$BIN" admin set-rate-limit --project "$ID" --per-minute 2000000000 >/dev/null
agent "$KEY"
KEYS20=()
for _ in $(seq 1 19); do
  read -r id key < <(project enterprise)
  "$BIN" admin set-rate-limit --project "$id" --per-minute 2000000000 >/dev/null
  agent "$key"
  KEYS20+=("$key")
done
read -r QID QKEY < <(project professional)
"$BIN" admin set-rate-limit --project "$QID" --per-minute 2000000000 >/dev/null
agent "$QKEY"
curl -fsS -o /dev/null -X POST -H "X-API-Key: $QKEY" -H "Content-Type: application/json" \
  -d '{"identity":"u","room":"only"}' "$VOXPLANE_URL/api/v1/token" # its one session
sleep 6 # the key cache picks up the raised limits

wrk_run() { # title; env: KEYS, RUN, EXTRA, PATH_, ROOM_FIELD; args: url
  echo "-- $1"
  wrk -t"$THREADS" -c"${C:-$CONNECTIONS}" -d"$DURATION" --latency -s bench/call_start.lua "$2" |
    grep -E "Requests/sec|Latency  |  50%|  99%|Non-2xx|Socket errors"
}

rate() { awk '/Requests\/sec/ {print $2}'; }
alternate() { # title-a keys-a title-b keys-b run: windows of a then b, ROUNDS times; b / a
  local a_sum=0 b_sum=0 each= out a b r
  for r in $(seq 1 "$ROUNDS"); do
    out=$(KEYS=$2 RUN=$5a$r wrk_run "$1, round $r" "$VOXPLANE_URL")
    echo "$out"
    a=$(echo "$out" | rate)
    out=$(KEYS=$4 RUN=$5b$r wrk_run "$3, round $r" "$VOXPLANE_URL")
    echo "$out"
    b=$(echo "$out" | rate)
    a_sum=$(python3 -c "print($a_sum + $a)") b_sum=$(python3 -c "print($b_sum + $b)")
    each="$each $(python3 -c "print(f'{$b / $a:.2f}')")"
  done
  python3 -c 'import sys; print(f"   {sys.argv[2]} / {sys.argv[1]}, alternated: {float(sys.argv[4]) / float(sys.argv[3]):.2f} x (rounds:{sys.argv[5]})")' \
    "$1" "$3" "$a_sum" "$b_sum" "$each"
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION on the same machine; server: release build"
# Steady state, as bench/run.sh: WAL segments ready for reuse (a fresh
# cluster zero-fills each new 16 MB segment in the commit that needs it, a
# tail-latency spike per segment), then a 10 s warm-up of the measured path.
"$PSQL" -qAt "$DATABASE_URL" -c "ALTER SYSTEM SET min_wal_size = '1GB'" -c "SELECT pg_reload_conf()" \
  -c "CREATE TABLE wal_warm (x int)" \
  -c "DO \$\$ BEGIN FOR i IN 1..48 LOOP INSERT INTO wal_warm VALUES (i); PERFORM pg_switch_wal(); COMMIT; END LOOP; END \$\$" \
  -c "DROP TABLE wal_warm" -c "CHECKPOINT" -c "CHECKPOINT" >/dev/null
if want token; then
KEYS=$KEY RUN=warm wrk -t"$THREADS" -c"$CONNECTIONS" -d10s -s bench/call_start.lua "$VOXPLANE_URL" >/dev/null

KEYS=$KEY RUN=a wrk_run "POST /api/v1/token, agent dispatch (contract default), empty month" "$VOXPLANE_URL"
KEYS=$KEY RUN=n EXTRA=',"no_agent":true' wrk_run "POST /api/v1/token, no_agent" "$VOXPLANE_URL"
if [ ! -d bench/peers/node-token/node_modules ]; then
  (cd bench/peers/node-token && npm ci --no-audit --no-fund --silent)
fi
PORT=18282 node bench/peers/node-token/server.js > "$DATA/node.log" 2>&1 &
PEER=$!
sleep 1.5
KEYS=none RUN=p PATH_=/token wrk_run "Node peer: POST /token (express + livekit-server-sdk)" "http://127.0.0.1:18282"
kill $PEER 2>/dev/null || true; PEER=

echo "== recording $SESSIONS_BEFORE sessions this month in the project"
"$PSQL" -qAt "$DATABASE_URL" -c "INSERT INTO sessions (project_id, room_name, status, started_at, ended_at)
  SELECT $ID, 'old-' || g, 'completed', now() - interval '1 minute', now()
  FROM generate_series(1, $SESSIONS_BEFORE) g" -c "VACUUM ANALYZE sessions" -c "CHECKPOINT" >/dev/null
echo "   sessions used this month: $(curl -fsS -H "X-API-Key: $KEY" "$VOXPLANE_URL/api/v1/quota" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["quotas"]["sessions"]["used"])')"
# Each measured path gets the warm-up the first one got: the load's WAL
# checkpointed, then 10 s of the same requests.
KEYS=$KEY RUN=mwarm wrk -t"$THREADS" -c"$CONNECTIONS" -d10s -s bench/call_start.lua "$VOXPLANE_URL" >/dev/null
KEYS=$KEY RUN=m wrk_run "POST /api/v1/token, agent dispatch, $SESSIONS_BEFORE sessions this month" "$VOXPLANE_URL"
# The same project against another (same plan, one agent, same table) that has
# only this step's sessions, in adjacent windows, alternated ROUNDS times: the
# empty month minutes earlier is a fair peer only on a steady host.
KEYS=${KEYS20[0]} RUN=ewarm wrk -t"$THREADS" -c"$CONNECTIONS" -d5s -s bench/call_start.lua "$VOXPLANE_URL" >/dev/null
alternate "a project without them (its month's sessions: only this step's)" "${KEYS20[0]}" \
  "the project with $SESSIONS_BEFORE sessions" "$KEY" m
fi

if want projects; then
ALL20=$(IFS=,; echo "$KEY,${KEYS20[*]}")
KEYS=$ALL20 RUN=t20warm wrk -t"$THREADS" -c"$CONNECTIONS" -d10s -s bench/call_start.lua "$VOXPLANE_URL" >/dev/null
# The twenty against one project (the first of them) in adjacent windows,
# alternated ROUNDS times: the host's speed drifts over a run (minutes apart,
# the empty month above is no fair peer), adjacent windows compare alike.
alternate "one project (the first of the 20)" "$KEY" \
  "20 projects (POST /api/v1/token, agent dispatch, keys rotated)" "$ALL20" t
KEYS19=$(IFS=,; echo "${KEYS20[*]}")
echo "-- 19 projects (48 connections) next to a 20th project …"
KEYS=$KEY RUN=b C=16 wrk -t1 -c16 -d"$DURATION" -s bench/call_start.lua "$VOXPLANE_URL" > "$DATA/side.txt" &
SIDE=$!
KEYS=$KEYS19 RUN=o1 C=48 wrk_run "   … that starts calls too: the 19" "$VOXPLANE_URL"
wait $SIDE
KEYS=$QKEY RUN=q C=16 wrk -t1 -c16 -d"$DURATION" -s bench/call_start.lua "$VOXPLANE_URL" > "$DATA/side.txt" &
SIDE=$!
KEYS=$KEYS19 RUN=o2 C=48 wrk_run "   … at its quota (every start 429): the 19" "$VOXPLANE_URL"
wait $SIDE
grep -E "Requests/sec|Non-2xx" "$DATA/side.txt" | sed 's/^/      the project at its quota: /'
fi

if want rooms; then
KEYS=$KEY RUN=rm PATH_=/api/v1/rooms ROOM_FIELD=name wrk_run "POST /api/v1/rooms (simulator), unique names" "$VOXPLANE_URL"
fi

want webhooks || exit 0
PREFIX=$("$PSQL" -qAt "$DATABASE_URL" -c "SELECT room_prefix FROM projects WHERE id = $ID")
EVENTS_N=${WEBHOOK_EVENTS:-200000}
for run in ww w; do
  python3 bench/livekit_webhooks.py "$LIVEKIT_API_KEY" "$LIVEKIT_API_SECRET" "$PREFIX" "$run" \
    "$EVENTS_N" "$DATA/webhooks-$run.tsv"
done
EVENTS=$DATA/webhooks-ww.tsv THREADS=$THREADS wrk -t"$THREADS" -c"$CONNECTIONS" -d10s \
  -s bench/livekit_webhooks.lua "$VOXPLANE_URL" >/dev/null
batch_counts() {
  curl -fsS "$VOXPLANE_URL/metrics" | awk '/^voxplane_batch(es|ed_items)_total\{name="livekit_webhooks"\}/ {printf "%s ", $2} END {print ""}'
}
read -r B0 I0 < <(batch_counts) || true
echo "-- POST /livekit/webhook: agent joins, a room each (each starts a session)"
EVENTS=$DATA/webhooks-w.tsv THREADS=$THREADS wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
  -s bench/livekit_webhooks.lua "$VOXPLANE_URL" | grep -E "Requests/sec|Latency  |  50%|  99%|Non-2xx|Socket errors|requests in"
read -r B1 I1 < <(batch_counts) || true
echo "   sessions started: $("$PSQL" -qAt "$DATABASE_URL" -c "SELECT count(*) FROM sessions WHERE room_name LIKE '${PREFIX}_wh-w-%'") of $EVENTS_N events in the file (repeats are duplicates)"
if [ -n "${B1:-}" ]; then
  python3 -c "b=$B1-$B0; i=$I1-$I0; print(f'   {i:.0f} webhooks in {b:.0f} batches: {i/max(b,1):.1f} per commit')"
else
  echo "   (this build reports no batches: one transaction per webhook)"
fi
