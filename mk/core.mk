# Core targets: setup, build, test, run, lint.
CARGO ?= cargo
CADENZA_BIN := $(CARGO_TARGET_DIR)/release/cadenza

setup: ## install what cadenza needs (project .venv with onnxruntime); idempotent
	@scripts/setup.sh

build: setup ## build every binary (release)
	$(CARGO) build --release --workspace --bins

run: setup ## the main job on embedded defaults: build, make the tiny corpus, embed it
	$(CARGO) build --release -p cadenza
	$(MAKE) --no-print-directory corpus PRESET=tiny
	mkdir -p data/out
	$(CADENZA_BIN) embed data/corpus/tiny/audio --output data/out/tiny-embeddings.jsonl
	@echo "embeddings written to data/out/tiny-embeddings.jsonl ($$(wc -l < data/out/tiny-embeddings.jsonl) tracks)"

test: setup ## the whole test suite: what CI runs (.ci/run)
	$(MAKE) --no-print-directory corpus PRESET=tiny
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	CADENZA_CORPUS_REQUIRED=1 $(CARGO) test --workspace --no-fail-fast
	$(MAKE) --no-print-directory corpus-test PRESET=tiny

fmt: ## format the Rust code
	$(CARGO) fmt --all

lint: ## rustfmt check + clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

.PHONY: setup build run test fmt lint
