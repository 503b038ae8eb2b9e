# Benchmarks: figures are ratios against a reference measured in the same run. Results go to
# BENCHMARKS.md with the command that produced them. Paths are made absolute: cargo runs a
# bench in its package directory.
BENCH_CLIPS ?= data/corpus/tiny/audio

bench-embed: setup export-venv ## embed throughput (x realtime, stage split) vs the Python musicnn extractor on the same clips
	@test -d $(BENCH_CLIPS) || $(MAKE) --no-print-directory corpus PRESET=tiny
	$(CARGO) bench -p cadenza-model --bench embed -- $(abspath $(BENCH_CLIPS)) --reference $(EXPORT_PY)

.PHONY: bench-embed

bench-freshness: setup ## listen→recommendation and upload→SimilarTracks latency, embedded and over Kafka (release binaries)
	@test -d data/corpus/tiny/audio || $(MAKE) --no-print-directory corpus PRESET=tiny
	$(CARGO) build --release --workspace --bins
	$(CARGO) bench -p cadenza --bench freshness -- $(FRESHNESS_ARGS)

.PHONY: bench-freshness
