# Core targets: setup, build, test, run, lint.
CARGO ?= cargo
CADENZA_BIN := $(CARGO_TARGET_DIR)/release/cadenza

setup: ## install what cadenza needs (project .venv with onnxruntime); idempotent
	@scripts/setup.sh

build: setup ## build every binary (release)
	$(CARGO) build --release --workspace --bins

run: setup ## the main job on embedded defaults: build, make the tiny corpus, run the whole system on it (cadenza demo)
	$(CARGO) build --release -p cadenza -p cadenza-audio
	$(MAKE) --no-print-directory corpus PRESET=tiny
	$(CADENZA_BIN) --log warn demo data/corpus/tiny

test: setup ## the whole test suite: what CI runs (.ci/run)
	$(MAKE) --no-print-directory corpus PRESET=tiny
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@# The cargo-fuzz targets (their own workspace, run by `make fuzz`) must keep compiling.
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) check --manifest-path fuzz/Cargo.toml --bins
	$(CARGO) build --workspace --bins
	CADENZA_CORPUS_REQUIRED=1 $(CARGO) test --workspace --no-fail-fast
	$(MAKE) --no-print-directory corpus-test PRESET=tiny
	$(MAKE) --no-print-directory deploy-check
	$(MAKE) --no-print-directory audit

audit: ## dependency audit with cargo-deny (licences, banned crates, sources; deny.toml); advisories too with ADVISORY_DB=<advisory-db checkout>
	@scripts/audit.sh

fmt: ## format the Rust code
	$(CARGO) fmt --all

lint: ## rustfmt check + clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

.PHONY: setup build run test audit fmt lint
