# tokenmeter: two commands.
#   make run    installs what is missing, builds the release, migrates and serves on
#               http://127.0.0.1:3000 with SQLite at ./data/tokenmeter.db
#   make test   everything: fmt, clippy (server and wasm), unit + HTTP tests on SQLite and a
#               throwaway PostgreSQL, the integration suite against the real LiteLLM proxy
#               (../shared/litellm-peer), the API fuzzed by schemathesis on both databases,
#               and the browser tests in Chromium
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO_LEPTOS_VERSION := 0.3.10
WASM_BINDGEN_VERSION := 0.2.130
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
LOG_DIR := $(CURDIR)/target/test-logs
export PATH := $(CURDIR)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)

.PHONY: help run dev build test lint unit fuzz soak e2e tools wasm-target cargo-leptos wasm-bindgen node-tools chromium clean

help:
	@echo "make run   - install what is missing, build (release), migrate and serve on http://127.0.0.1:3000"
	@echo "make test  - fmt, clippy, unit and HTTP tests (SQLite + PostgreSQL), browser tests"
	@echo "make dev   - cargo leptos watch (rebuild and reload on change)"
	@echo "make soak  - the load test (200 users chatting, an admin editing limits) for 60 s on each database"

## ---- the two commands --------------------------------------------------------------------

run: tools
	cargo leptos build --release --precompress --split
	mkdir -p data
	LEPTOS_SITE_ROOT=target/site LEPTOS_ENV=PROD "$(TARGET_DIR)/release/tokenmeter" migrate
	LEPTOS_SITE_ROOT=target/site LEPTOS_ENV=PROD "$(TARGET_DIR)/release/tokenmeter" serve

test: tools chromium lint unit fuzz e2e
	@scripts/test-summary.sh "$(LOG_DIR)"

## ---- pieces ------------------------------------------------------------------------------

# Unhashed file names while developing: nothing there should be cached for a year.
dev: tools
	LEPTOS_HASH_FILES=false cargo leptos watch --split

lint:
	cargo fmt --all -- --check
	cargo clippy --features ssr --all-targets -- -D warnings
	cargo clippy --lib --no-default-features --features hydrate --target wasm32-unknown-unknown -- -D warnings

# Unit tests and the HTTP suites, which run every test on SQLite and on PostgreSQL, with the
# real LiteLLM proxy for the integration suite.
unit:
	mkdir -p "$(LOG_DIR)"
	scripts/with-postgres.sh scripts/with-litellm.sh cargo test --features ssr 2>&1 \
	  | tee "$(LOG_DIR)/cargo-test.log"

# The whole REST API fuzzed by schemathesis (pinned, own venv) against the real server on
# SQLite and PostgreSQL, as a user and as an admin: zero failures.
fuzz:
	mkdir -p "$(LOG_DIR)"
	cargo build --features ssr --bin tokenmeter
	scripts/with-postgres.sh scripts/fuzz-api.sh 2>&1 | tee "$(LOG_DIR)/fuzz.log"

# The load test for a minute on each database (make test runs it for 8 s).
soak:
	LOAD_SECONDS=60 scripts/with-postgres.sh cargo test --features ssr --test load -- --nocapture

# Against the release build of `make run` (hashed, precompressed files), so the browser tests
# check what is served, and weight.spec.ts what the first load of each page transfers.
e2e:
	mkdir -p "$(LOG_DIR)"
	cargo leptos build --release --precompress --split
	cd end2end && ../scripts/with-litellm.sh playwright test 2>&1 | tee "$(LOG_DIR)/playwright.log"

## ---- tools, installed only when missing --------------------------------------------------

tools: wasm-target cargo-leptos wasm-bindgen node-tools

wasm-target:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown \
	  || rustup target add wasm32-unknown-unknown

cargo-leptos:
	@if ! cargo leptos --version 2>/dev/null | grep -qF "$(CARGO_LEPTOS_VERSION)"; then \
	  echo "Installing cargo-leptos $(CARGO_LEPTOS_VERSION): once per machine, about 30 minutes on 2 cores"; \
	  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
	    cargo install cargo-leptos --locked --version $(CARGO_LEPTOS_VERSION); \
	fi

wasm-bindgen:
	@if ! wasm-bindgen --version 2>/dev/null | grep -qF "$(WASM_BINDGEN_VERSION)"; then \
	  echo "Installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION)"; \
	  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
	    cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); \
	fi

# Tailwind CSS v4, wasm-opt (binaryen 132) and Playwright, from npm, into ./node_modules.
node-tools: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	npm ci --no-audit --no-fund
	touch $@

chromium:
	@command -v chromium >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

clean:
	cargo clean
	rm -rf node_modules target/site end2end/test-results
