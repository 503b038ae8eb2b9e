# Evaluation corpus (tools/corpus): music21's scored works rendered with FluidSynth into
# data/corpus/$(PRESET)/ (catalogue.jsonl/.csv, audio/*.flac, composition.png, build.log).
PRESET ?= tiny
SEED ?= 1
CORPUS_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CORPUS_OUT ?= data/corpus
CORPUS_APT := fluidsynth fluid-soundfont-gm musescore-general-soundfont
# Out-of-domain distractors (real orchestral recordings) for default/full; DISTRACTORS=0 skips.
DISTRACTORS ?= 1
CORPUS_DISTRACTOR_APT := $(if $(filter tiny,$(PRESET)),,$(if $(filter 0,$(DISTRACTORS)),,wesnoth-1.16-music))
CORPUS_FLAGS := $(if $(filter 0,$(DISTRACTORS)),--no-distractors,)
CORPUS_STAMP := $(VENV)/.corpus-requirements
CORPUS_PY := PYTHONPATH=$(CURDIR)/tools/corpus $(PY)

# apt: only what is missing; `apt-get update` only when the install cannot find a package.
corpus-apt:
	@missing=""; for p in $(CORPUS_APT); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  echo "corpus: apt-get install$$missing"; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1 || \
	  { $$sudo apt-get update -qq >/dev/null && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; }; \
	fi
	@for p in $(CORPUS_DISTRACTOR_APT); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" && continue; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; echo "corpus: apt-get install $$p (distractors)"; \
	  { $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$p >/dev/null 2>&1 || \
	    { $$sudo apt-get update -qq >/dev/null 2>&1 && \
	      $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$p >/dev/null 2>&1; }; } || \
	    echo "corpus: $$p not installable; building without distractors"; done

$(CORPUS_STAMP): tools/corpus/requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r tools/corpus/requirements.txt
	@touch $@

corpus-deps: corpus-apt $(CORPUS_STAMP) ## install FluidSynth, both soundfonts and tools/corpus/requirements.txt (idempotent)

corpus: corpus-deps ## render the evaluation corpus: make corpus PRESET=tiny|default|full [SEED=1] [CORPUS_JOBS=n]
	$(CORPUS_PY) -m cadenza_corpus build --preset $(PRESET) --seed $(SEED) --jobs $(CORPUS_JOBS) --out $(CORPUS_OUT) $(CORPUS_FLAGS)

corpus-test: corpus-deps ## check a built corpus (schema, files, durations, silence) + builder unit tests
	CADENZA_CORPUS_DIR=$(abspath $(CORPUS_OUT)/$(PRESET)) CADENZA_CORPUS_REQUIRED=1 \
	  $(CORPUS_PY) -m pytest -q tools/corpus/tests

corpus-clean: ## delete data/corpus/$(PRESET) (a rebuild renders everything again)
	rm -rf $(CORPUS_OUT)/$(PRESET)

.PHONY: corpus-apt corpus-deps corpus corpus-test corpus-clean
