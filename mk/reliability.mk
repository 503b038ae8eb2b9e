# Longer reliability runs than the default suite (RELIABILITY.md). `make soak` is in load.mk.
FUZZ_SECS ?= 60
FUZZ := $(CARGO) run -q -p cadenza --example fuzz --

fuzz: ## coverage-guided fuzzing (cargo-fuzz, libFuzzer + ASan), FUZZ_SECS=60 per target: audio front end, event payloads
	FUZZ_SECS=$(FUZZ_SECS) scripts/fuzz.sh

fuzz-mutation: ## the plain mutation fuzzer, FUZZ_SECS=60 per target (failing inputs → $CARGO_TARGET_DIR/fuzz-artifacts)
	$(FUZZ) --target audio --secs $(FUZZ_SECS) --artifacts $(CARGO_TARGET_DIR)/fuzz-artifacts
	$(FUZZ) --target events --secs $(FUZZ_SECS) --artifacts $(CARGO_TARGET_DIR)/fuzz-artifacts

.PHONY: fuzz fuzz-mutation
