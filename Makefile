# `make search` and `make test` do all the set-up on a fresh machine: a venv at .venv, the
# package with its dev extra, and MNIST read from ../shared/data (override: make DATA=/path).
PY ?= python3
VENV := .venv
DATA ?= ../shared/data
export NAS_DATA_DIR ?= $(abspath $(DATA))

.PHONY: search quick test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

# The main job: a 15-epoch search under 8,000 parameters in mnist_8k_oc, the space that found
# best8k; two worker processes (on 2 cores they train ~1.9x the candidates of one:
# bench/cpu_workers.py).
search: $(VENV)/.installed
	$(VENV)/bin/nas search --space mnist_8k_oc --trials 12 --timeout 2400 --workers 2 --prune-from 8

quick: $(VENV)/.installed
	$(VENV)/bin/nas search --quick

test: $(VENV)/.installed
	$(VENV)/bin/pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed
	$(VENV)/bin/python bench/train_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
