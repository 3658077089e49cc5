# Two commands do all set-up: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP)
	$(BIN)/ruff check .
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest -q

demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python scripts/demo.py --work runs/demo

clean:
	rm -rf runs .pytest_cache .ruff_cache
