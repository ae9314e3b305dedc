#!/usr/bin/env bash
# Team chat benchmark (not a test), on `voxplane dev` (release build):
#  (a) 1,000 /ws/chat sockets (1,000 accounts) in 100 group chats of 10,
#      RATE (500) messages/s for SECONDS (20) after a 5 s warm-up, open loop:
#      send→receive latency at the other members' sockets, and send→ack;
#  (b) POST /api/v1/chat/messages (limit 50) at PAGE_RATE (200) requests/s
#      with MESSAGES (1,000,000) messages stored.
# The accounts, memberships, sessions, chats and stored messages are seeded
# with SQL (signing up 1,000 accounts would time argon2, not chat); the
# client mints the access tokens with the server's secret. ONLY=sockets|pages;
# CHAT_SERIES=1 prints each second's p99; PG_LOG=1 logs checkpoints,
# autovacuum and statements over 50 ms to .local/bench-chat/pgdata/server.log.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/voxplane-target}"
RATE=${RATE:-500}
SECONDS_RUN=${SECONDS_RUN:-20}
PAGE_RATE=${PAGE_RATE:-200}
MESSAGES=${MESSAGES:-1000000}
ONLY=${ONLY:-all}
SECRET=bench-chat-secret-0123456789abcdefghijklmnop
cargo build --release --quiet
cargo bench --quiet --bench chat --no-run
BIN="$CARGO_TARGET_DIR/release/voxplane"
PSQL=.local/pg/bin/psql
DATA=.local/bench-chat
rm -rf "$DATA"; mkdir -p "$DATA"; ln -s "$(pwd)/.local/pg" "$DATA/pg"
PORT=${PORT:-18201}
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
VOXPLANE_DATA_DIR=$DATA VOXPLANE_LOG_LEVEL=warn VOXPLANE_EVENTS_POLL_MS=200 \
  VOXPLANE_ACCOUNTS__JWT_SECRET=$SECRET VOXPLANE_ACCOUNTS__ACCESS_TOKEN_TTL_SECS=86400 \
  "$BIN" dev --port "$PORT" > "$DATA/dev.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 240); do [ -f "$DATA/dev.env" ] && break; sleep 0.5; done
sleep 1
# shellcheck disable=SC1091
source "$DATA/dev.env"
PROJECT=$("$BIN" admin create-project --name bench-chat --plan enterprise --json)
ID=$(echo "$PROJECT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["project_id"])')
"$BIN" admin set-rate-limit --project "$ID" --per-minute 2000000000 >/dev/null
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB; load $(cut -d' ' -f1-3 /proc/loadavg)"

echo "-- seeding 1,000 accounts, 100 groups of 10 and $MESSAGES messages"
T0=$(date +%s)
"$PSQL" -q -v ON_ERROR_STOP=1 "$DATABASE_URL" <<SQL
INSERT INTO accounts (email, name, password_hash, email_verified_at)
  SELECT 'bench-' || g || '@example.com', 'Bench ' || g, 'seeded', now() FROM generate_series(1, 1000) g;
INSERT INTO project_members (project_id, account_id, role)
  SELECT $ID, id, 'member' FROM accounts WHERE email LIKE 'bench-%';
INSERT INTO account_sessions (account_id, expires_at)
  SELECT id, now() + interval '2 days' FROM accounts WHERE email LIKE 'bench-%';
INSERT INTO chat_chats (project_id, kind, name)
  SELECT $ID, 'group', 'bench ' || g FROM generate_series(1, 100) g;
INSERT INTO chat_members (chat_id, account_id, role)
  SELECT c.id, a.id, 'member'
  FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS r FROM accounts WHERE email LIKE 'bench-%') a
  JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS r FROM chat_chats WHERE project_id = $ID) c
    ON c.r = a.r / 10;
-- $MESSAGES messages spread over the chats, interleaved as live traffic is.
INSERT INTO chat_messages (chat_id, seq, sender_account_id, kind, content, created_at)
  SELECT c.id, s.n, (SELECT account_id FROM chat_members WHERE chat_id = c.id ORDER BY account_id LIMIT 1),
         'text', 'seeded message ' || s.n || ' about room ' || (s.n % 97) || ' and the evening shift',
         now() - interval '1 day' + s.n * interval '10 ms'
  FROM generate_series(1, $MESSAGES / 100) s(n)
  CROSS JOIN (SELECT id FROM chat_chats WHERE project_id = $ID) c
  ORDER BY s.n, c.id;
UPDATE chat_chats SET last_seq = $MESSAGES / 100, last_message_at = now() WHERE project_id = $ID;
VACUUM ANALYZE chat_messages;
VACUUM ANALYZE chat_members;
VACUUM ANALYZE chat_chats;
SQL
# Steady state: the seeding's WAL is checkpointed and its segments kept for
# reuse (as bench/run.sh does), so the runs do not pay for the seeding.
"$PSQL" -qAt "$DATABASE_URL" -c "ALTER SYSTEM SET min_wal_size = '1GB'" \
  ${PG_LOG:+-c "ALTER SYSTEM SET log_checkpoints = on" -c "ALTER SYSTEM SET log_autovacuum_min_duration = 0" -c "ALTER SYSTEM SET log_min_duration_statement = 50"} \
  -c "SELECT pg_reload_conf()" -c "CHECKPOINT" -c "CHECKPOINT" >/dev/null
sync; sleep 3
echo "seeded in $(( $(date +%s) - T0 )) s: $("$PSQL" -At "$DATABASE_URL" -c "SELECT count(*) FROM chat_messages") messages"
"$PSQL" -At -F $'\t' "$DATABASE_URL" -c "SELECT a.id, s.id, m.chat_id FROM accounts a
  JOIN account_sessions s ON s.account_id = a.id JOIN chat_members m ON m.account_id = a.id
  WHERE a.email LIKE 'bench-%' ORDER BY m.chat_id, a.id" > "$DATA/members.tsv"
IDS=$("$PSQL" -At -F ' ' "$DATABASE_URL" -c "SELECT min(id), max(id) FROM chat_messages")

if [ "$ONLY" != pages ]; then
  echo "-- (a) 1,000 sockets, 100 groups of 10, $RATE messages/s for ${SECONDS_RUN}s (+5 s warm-up)"
  cargo bench --quiet --bench chat -- --bench "$VOXPLANE_URL" "$SECRET" "$DATA/members.tsv" sockets "$ID" "$RATE" "$SECONDS_RUN"
fi
if [ "$ONLY" != sockets ]; then
  # The sockets of (a) are gone: let their accounts go offline (the grace,
  # then one presence update each) before measuring pages alone.
  [ "$ONLY" = pages ] || sleep 15
  echo "-- (b) messages pages at $PAGE_RATE/s for ${SECONDS_RUN}s, $("$PSQL" -At "$DATABASE_URL" -c "SELECT count(*) FROM chat_messages") messages stored"
  # shellcheck disable=SC2086
  cargo bench --quiet --bench chat -- --bench "$VOXPLANE_URL" "$SECRET" "$DATA/members.tsv" pages "$ID" "$PAGE_RATE" "$SECONDS_RUN" $IDS
fi
