# Voxplane — the two commands: `make run` and `make test`.
SHELL := /bin/bash
# Build output lives outside the checkout so fresh clones (and CI) reuse it.
export CARGO_TARGET_DIR ?= /var/tmp/voxplane-target
export NO_PROXY := 127.0.0.1,localhost
CARGO ?= cargo

.PHONY: setup run test browser-test lint fmt openapi bench clean-local

## Install local dependencies (embedded Postgres) — idempotent.
setup:
	@./scripts/setup.sh

## Serve the API on the embedded default (Postgres under .local/).
run: setup
	$(CARGO) run --quiet -- dev $(if $(PORT),--port $(PORT),)

## Format check, lints, and every test (the browser tests last, alone).
test: setup lint
	$(CARGO) test --all-targets -- --test-threads=2
	$(MAKE) browser-test

## The dashboard in a real browser (tests/browser, Chromium from make setup);
## screenshots of every page in .local/screenshots/.
browser-test: setup
	$(CARGO) test --test api dashboard::the_dashboard_works_in_a_real_browser -- --ignored

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --quiet --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

## Regenerate openapi/openapi.json and the Postman collection from the code.
openapi:
	$(CARGO) run --quiet -- gen-docs --root .

## Benchmarks (see docs/PERFORMANCE.md).
bench: setup
	./bench/run.sh
	./bench/events.sh
	./bench/chat.sh
	./bench/calls.sh
	./bench/stalled.sh

clean-local:
	rm -rf .local/pgdata .local/pgdata.password .local/test-pg .local/dev.env .local/dev-seed.json
