#!/usr/bin/env bash
# A slow LiveKit (issue #19), a benchmark, not a test. Starts `voxplane dev`
# (release build) with the LiveKit simulator, sets one RPC's latency to 2 s
# (PUT /_sim/latency) and, in one project, starts N creates that call it at once
# (40 POST /rooms on CreateRoom, 20 recording starts on StartRoomCompositeEgress,
# 20 POST /sip/dial on CreateSIPParticipant) while one wrk connection sends the
# project's other requests (GET /project, POST /agents, POST /token no_agent) one
# after the other for the 2 s. Reports their p99 and errors (a pool timeout
# would be a 503) and how long the creates took. Target: p99 < 50 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/voxplane-target}"
# shellcheck source=bench/dev.sh
source bench/dev.sh
DATA=.local/bench-stalled
export VOXPLANE_PLANS__PROFESSIONAL__SIP_CONFIGS=50 VOXPLANE_PLANS__PROFESSIONAL__AGENTS=100000
trap 'kill $DEV 2>/dev/null; wait $DEV 2>/dev/null || true' EXIT
dev_start "$DATA" "${PORT:-18184}"
KEY=$VOXPLANE_API_KEY
"$BIN" admin set-rate-limit --project 1 --per-minute 2000000000 >/dev/null
sleep 6 # the key cache picks up the raised limit
api() { # method path body
  curl -sS -o /dev/null -w '%{http_code}\n' -X "$1" -H "X-API-Key: $KEY" \
    -H "Content-Type: application/json" -d "$3" "$VOXPLANE_URL$2"
}
api POST /api/v1/rooms '{"name":"rec"}' >/dev/null
api POST /api/v1/sip/trunks '{"name":"Main","phone_number":"+18001234567","address":"sip.provider.example","auth_username":"u","auth_password":"p"}' >/dev/null
latency() { # rpc ms
  curl -fsS -o /dev/null -X PUT -H "Content-Type: application/json" \
    -d "{\"rpc\":\"$1\",\"ms\":$2}" "$LIVEKIT_URL/_sim/latency"
}
# Warm-up of the measured requests.
KEY=$KEY wrk -t1 -c1 -d3s -s bench/others.lua "$VOXPLANE_URL" >/dev/null

stalled() { # title rpc n method path body ({i}: the create's number, two digits)
  local title=$1 rpc=$2 n=$3 method=$4 path=$5 body=$6
  latency "$rpc" 2000
  local began
  began=$(date +%s%N)
  # One curl process sends the N creates at once: N processes forked next to
  # wrk would charge their start-up to the measured requests.
  local cfg=$DATA/creates.curl sep=
  : >"$cfg"
  for i in $(seq -w 1 "$n"); do
    local one=${body//\{i\}/$i}
    printf '%surl = "%s"\nrequest = "%s"\nheader = "X-API-Key: %s"\nheader = "Content-Type: application/json"\ndata = "%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code} %%{time_total}\\n"\n' \
      "$sep" "$VOXPLANE_URL$path" "$method" "$KEY" "${one//\"/\\\"}" >>"$cfg"
    sep=$'next\n'
  done
  curl -sS --no-progress-meter --parallel --parallel-immediate --parallel-max "$n" -K "$cfg" >"$DATA/creates.status" &
  local pid=$!
  sleep 0.1
  echo "-- $title, $rpc stalled 2 s: the project's other requests meanwhile"
  KEY=$KEY RUN=$rpc wrk -t1 -c1 -d2s --latency -s bench/others.lua "$VOXPLANE_URL" |
    grep -E "Requests/sec|  50%|  99%|Non-2xx|Socket errors|requests in"
  wait "$pid" || true
  local ms=$(( ($(date +%s%N) - began) / 1000000 ))
  echo "   creates: $(cut -d' ' -f1 "$DATA/creates.status" | sort | uniq -c | xargs) in ${ms} ms," \
    "each answered after $(sort -n -k2 "$DATA/creates.status" |
      awk 'NR==1{a=$2} {b=$2} END{printf "%.2f to %.2f s", a, b}')"
  rm -f "$DATA/creates.status" "$cfg"
  latency "$rpc" 0
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); server: release build"
stalled "40 POST /rooms" CreateRoom 40 POST /api/v1/rooms '{"name":"load-{i}"}'
stalled "20 recording starts" StartRoomCompositeEgress 20 POST /api/v1/rooms/rec/recordings/start '{}'
stalled "20 SIP dials" CreateSIPParticipant 20 POST /api/v1/sip/dial '{"phone_number":"+177555501{i}"}'
