# Sourced by the benchmarks that measure `voxplane dev` (bench/calls.sh,
# bench/stalled.sh): wrk installed, the release server built (unless BIN
# names another build, e.g. an earlier commit's), and `dev_start DATA PORT`
# starting it on a fresh data dir, sourcing its dev.env (VOXPLANE_URL,
# VOXPLANE_API_KEY, DATABASE_URL, LIVEKIT_*) and setting DEV to its pid.
# The caller sets its own trap (it may stop more than the server).
if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk (Debian package)"
  apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
fi
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN="$CARGO_TARGET_DIR/release/voxplane"
fi

DEV=
dev_start() { # data dir, port
  rm -rf "$1"; mkdir -p "$1"
  ln -s "$(pwd)/.local/pg" "$1/pg"
  VOXPLANE_DATA_DIR=$1 VOXPLANE_LOG_LEVEL=warn "$BIN" dev --port "$2" > "$1/dev.log" 2>&1 &
  DEV=$!
  for _ in $(seq 1 240); do [ -f "$1/dev.env" ] && break; sleep 0.5; done
  sleep 1
  # shellcheck disable=SC1091
  source "$1/dev.env"
}
