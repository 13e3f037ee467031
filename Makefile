# emollm developer entry points. Every target creates or reuses .venv and installs what it needs.
#   make demo   - the whole main job on the embedded `mini` preset (SynthMER -> features -> train -> eval -> explain)
#   make test   - the test suite (offline, CPU)
#   make lint   - ruff check + format check
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.emollm-installed
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test lint format clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup_env.sh
	PY=$(PY) VENV=$(VENV) bash scripts/setup_env.sh
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/emollm demo

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

lint: $(STAMP)
	$(BIN)/ruff check emollm tests
	$(BIN)/ruff format --check emollm tests

format: $(STAMP)
	$(BIN)/ruff format emollm tests
	$(BIN)/ruff check --fix emollm tests

clean:
	rm -rf runs .pytest_cache .ruff_cache
