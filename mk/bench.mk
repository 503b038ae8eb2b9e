# Benchmarks: figures are ratios against a reference measured in the same run. Results go to
# BENCHMARKS.md with the command that produced them. Paths are made absolute: cargo runs a
# bench in its package directory.
BENCH_CLIPS ?= data/corpus/tiny/audio

bench-embed: setup export-venv ## embed throughput (x realtime, stage split) vs the Python musicnn extractor on the same clips
	@test -d $(BENCH_CLIPS) || $(MAKE) --no-print-directory corpus PRESET=tiny
	$(CARGO) bench -p cadenza-model --bench embed -- $(abspath $(BENCH_CLIPS)) --reference $(EXPORT_PY)

.PHONY: bench-embed
