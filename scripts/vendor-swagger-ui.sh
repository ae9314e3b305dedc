#!/usr/bin/env bash
# Re-vendors Swagger UI (served at /docs from the binary) from the npm
# registry: fetches the pinned swagger-ui-dist tarball with `npm pack`,
# verifies its checksum, copies the bundle and stylesheet, verifies them.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=5.35.0
TARBALL_SHA256=1b8e891893404ea4c3558b6a87e2a3e494e7eedba41168c2ece5800a391a6ea6
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null)
echo "$TARBALL_SHA256  $tmp/swagger-ui-dist-$VERSION.tgz" | sha256sum -c --quiet
tar -xzf "$tmp/swagger-ui-dist-$VERSION.tgz" -C "$tmp"
cp "$tmp/package/swagger-ui-bundle.js" "$tmp/package/swagger-ui.css" "$tmp/package/LICENSE" vendor/swagger-ui/
(cd vendor/swagger-ui && grep -E '^[0-9a-f]{64}  ' VERSION | sha256sum -c --quiet)
echo "vendor/swagger-ui: swagger-ui-dist $VERSION verified"
