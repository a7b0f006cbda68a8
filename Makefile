# One command each: `make setup`, `make demo` (the main job, offline), `make test` (every
# test: Rust, Go differential, Python, Node), `make lint`, `make bench`.
SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3

.PHONY: setup setup-system setup-python setup-node setup-tools demo test test-rust test-python test-node lint fuzz bench bench-bindings

setup: setup-system setup-python setup-node setup-tools

# Debian packages from .ci/apt-packages.txt (needs root, as on CI and the dev machines).
setup-system:
	@pkgs=$$(grep -v '^\s*#' .ci/apt-packages.txt | xargs); \
	missing=$$(for p in $$pkgs; do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done | xargs); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Components Debian does not package, built once per machine from their own Go modules into
# ${TAGSMITH_TOOLS_DIR:-~/.cache/tagsmith-tools}: kube-apiserver, Flux's CRDs, the flux CLI
# (tests/tools/build.sh) and Gitea (tests/tools/build-gitea.sh); ~20 min on 2 cores the
# first time, under a second when cached.
setup-tools:
	bash tests/tools/build.sh
	bash tests/tools/build-gitea.sh

setup-python:
	$(PYTHON) -m venv bindings/python/.venv
	bindings/python/.venv/bin/pip install -q maturin pytest packaging semver
	PATH=$(CURDIR)/bindings/python/.venv/bin:$$PATH MATURIN_PEP517_ARGS="--profile dev" \
	  bindings/python/.venv/bin/pip install -q --no-build-isolation ./bindings/python

setup-node:
	cd bindings/node && npm ci --no-audit --no-fund && npx napi build --platform

# The main job on the embedded example (examples/gitops + examples/tags.snapshot.yaml):
# offline, in a temp copy with a bare local origin; shows the diff, the commit, and check.
demo:
	$(CARGO) build -q -p tagsmith-cli
	TAGSMITH=$(CURDIR)/target/debug/tagsmith bash examples/demo.sh

test: test-rust test-python test-node

test-rust:
	$(CARGO) test --workspace --exclude tagsmith-benches
	# The facade as a selection-and-setter-only dependency (no `pipeline` feature).
	$(CARGO) test -p tagsmith --no-default-features

test-python:
	bindings/python/.venv/bin/python -m pytest -q bindings/python/tests

test-node:
	cd bindings/node && node --test __test__/*.test.mjs

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	# The facade without its default `pipeline` feature: selection and the setter only, and
	# none of git2, OpenPGP, the HTTP client or the registry client linked.
	$(CARGO) clippy -p tagsmith --no-default-features --all-targets -- -D warnings
	@if $(CARGO) tree -p tagsmith --no-default-features -e normal --prefix none | grep -E '^(git2|pgp|reqwest|oci-client) '; then \
	  echo "tagsmith --no-default-features links the pipeline's dependencies (above)"; exit 1; fi

# The setter under cargo-fuzz (libFuzzer on stable, no sanitizer) for FUZZ_RUNS inputs
# with a fixed seed (FUZZ_SEED=0: a new one), from crates/marker-setter/fuzz/seeds (which
# keep every input that once failed) and its dictionary; a crash or a failed assertion
# fails the target.
FUZZ_RUNS ?= 2000000
# Reading Flux objects (YAML depth and aliases, CRDs, kustomize rules, check) is slower per
# input than the setter; a smaller budget keeps CI's fuzz step near a minute.
FUZZ_OBJECT_RUNS ?= 100000
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install -q --locked cargo-fuzz --version 0.13.2
	bash crates/marker-setter/fuzz/run.sh $(FUZZ_RUNS)
	bash crates/tagsmith/fuzz/run.sh $(FUZZ_OBJECT_RUNS)

bench:
	$(CARGO) bench -p tagsmith-benches

# Python and Node selection over 100k tags vs packaging/semver and npm semver (release builds).
bench-bindings:
	PATH=$(CURDIR)/bindings/python/.venv/bin:$$PATH \
	  bindings/python/.venv/bin/pip install -q --no-build-isolation ./bindings/python
	bindings/python/.venv/bin/python bindings/python/bench/bench_select.py
	cd bindings/node && npx napi build --platform --release && node bench/select.mjs
