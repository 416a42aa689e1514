# `make search` and `make test` do all the set-up on a fresh machine: a venv at .venv, the
# package with its dev extra, and MNIST read from ../shared/data (override: make DATA=/path).
PY ?= python3
VENV := .venv
DATA ?= ../shared/data
export NAS_DATA_DIR ?= $(abspath $(DATA))

.PHONY: search quick test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[dev,postgres,deploy,dashboard]'
	touch $@

# The main job: the default search under 8,000 parameters, two hours in all (cheap rungs, full
# 15-epoch trainings of the survivors, then the seed race that names the winner); two worker
# processes (on 2 cores they train ~1.9x the candidates of one: bench/cpu_workers.py).
search: $(VENV)/.installed
	$(VENV)/bin/nas search --max-params 8000 --timeout 7200 --workers 2

quick: $(VENV)/.installed
	$(VENV)/bin/nas search --quick

# two pytest workers, each test file whole in one of them (the files' module fixtures are
# shared by their tests), one thread each: 1.6x faster on 2 cores (bench/RESULTS.md); the
# longest files first (tests/conftest.py), so that both end together
test: $(VENV)/.installed
	$(VENV)/bin/pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=10

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed
	$(VENV)/bin/python bench/train_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
