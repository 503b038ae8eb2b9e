# Evaluation: synthetic listeners, rankers, RQ1–RQ4 reports (crates/cadenza-eval).
EVAL_OUT ?= data/eval

eval: ## RQ1–RQ4 report for a corpus: make eval PRESET=tiny|default (writes $(EVAL_OUT)/<date>-<preset>/)
	$(CARGO) build --release -p cadenza-eval --bin cadenza-eval
	$(CARGO_TARGET_DIR)/release/cadenza-eval --preset $(or $(PRESET),tiny) --out $(EVAL_OUT) $(EVAL_ARGS)

eval-test: ## the evaluation harness's tests (synthetic listeners, splits, metrics, rankers)
	$(CARGO) test -p cadenza-eval

bench-score: ## serving cost of the sequential ranker vs a dot-product scan (1,000 tracks)
	$(CARGO) bench -p cadenza-eval --bench score

.PHONY: eval eval-test bench-score

train: ## the served models (shallow, bert4rec, bert4rec_pop) for a corpus: make train PRESET=tiny|default → data/models/
	$(CARGO) build --release -p cadenza --bin cadenza
	$(CARGO_TARGET_DIR)/release/cadenza train --preset $(or $(PRESET),tiny) --out $(or $(MODELS_DIR),data/models) $(TRAIN_ARGS)

.PHONY: train
