# `make demo` and `make test` set everything up in a local virtual environment (.venv)
# on a machine that has only Python 3.10+ and pip, then run the demo or the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint docs bench bench-peers clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[cpu,dev]"
	touch $(STAMP)

demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/archguide demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python -m pytest -n logical --dist worksteal --durations=20

# The documentation site, warnings as errors; the gallery's examples run. Open docs/_build/html/index.html.
docs: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

$(VENV)/.bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[cpu,dev,bench]"
	touch $(VENV)/.bench

bench: $(VENV)/.bench
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python benchmarks/bench_scoring.py
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python benchmarks/bench_power.py
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python benchmarks/bench_planning.py
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python benchmarks/bench_rescoring.py
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python benchmarks/bench_estimators.py

$(VENV)/.peers: $(STAMP)
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[cpu,dev,bench,peers]"
	touch $(VENV)/.peers

# The peer suite: every table, three seeds (see benchmarks/peers.py); `--quick` for one seed, small sizes.
# Then the training loop's options on three of its tables (benchmarks/bench_fit_time.py).
bench-peers: $(VENV)/.peers
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python -m benchmarks.peers
	TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python -m benchmarks.bench_fit_time

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info docs/_build docs/auto_examples docs/generated
