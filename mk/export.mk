# Model export and reference tooling (tools/export). The TensorFlow environment lives outside
# the clone, in $(CADENZA_CACHE)/venv-tf; onnxruntime checks run in the project .venv.
EXPORT_PYTHON ?= python3
EXPORT_VENV ?= $(CADENZA_CACHE)/venv-tf
EXPORT_PY := $(EXPORT_VENV)/bin/python
EXPORT_STAMP := $(EXPORT_VENV)/.installed
FILES ?=

$(EXPORT_STAMP): tools/export/requirements.txt tools/export/requirements-musicnn.txt
	@$(EXPORT_PYTHON) -c 'import sys; v=sys.version_info[:2]; sys.exit(0 if (3,9)<=v<=(3,11) else "tensorflow-cpu 2.15 needs Python 3.9-3.11; set EXPORT_PYTHON")'
	@test -x $(EXPORT_PY) || $(EXPORT_PYTHON) -m venv $(EXPORT_VENV)
	$(EXPORT_PY) -m pip install -q --disable-pip-version-check -r tools/export/requirements.txt
	$(EXPORT_PY) -m pip install -q --disable-pip-version-check --no-deps --require-hashes -r tools/export/requirements-musicnn.txt
	@touch $@

export-venv: $(EXPORT_STAMP) ## TensorFlow export environment in $CADENZA_CACHE/venv-tf (tools/export/requirements*.txt)

# The ONNX check needs onnxruntime from the runtime venv; install it without the rest of
# `make setup`, which insists on the models this target makes.
export-runtime-py:
	@test -x $(PY) || $(EXPORT_PYTHON) -m venv $(VENV)
	@$(PY) -c 'import onnxruntime' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check -r requirements-runtime.txt

export-models: export-venv export-runtime-py ## export the musicnn checkpoints to models/*.onnx + .json, checked against TF
	CADENZA_RUNTIME_PY=$(PY) $(EXPORT_PY) tools/export/export_onnx.py

parity-fixtures: export-venv ## regenerate tests/fixtures/parity: synthetic clip + TF reference outputs
	$(EXPORT_PY) tools/export/make_fixtures.py

bench-reference: export-venv ## time the original Python musicnn extractor: make bench-reference FILES="a.mp3 b.wav"
	@test -n "$(FILES)" || { echo 'usage: make bench-reference FILES="a.mp3 b.wav ..."' >&2; exit 2; }
	@$(EXPORT_PY) tools/export/bench_reference.py $(FILES)

.PHONY: export-venv export-runtime-py export-models parity-fixtures bench-reference
