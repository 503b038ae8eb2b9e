# cadenza — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Heavy caches live outside the clone so repeat runs are fast; nothing depends on them
# existing: every target installs what it needs.
export CADENZA_CACHE ?= $(HOME)/.cache/cadenza
export CARGO_TARGET_DIR ?= $(CADENZA_CACHE)/target
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z0-9_.-]+:.*## /{printf "  \033[36m%-18s\033[0m %s\n",$$1,$$2}' $(MAKEFILE_LIST)

include mk/*.mk
