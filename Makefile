# mlplab: `make demo` and `make test` set everything up themselves on a fresh machine.
# PYTHON picks the interpreter for the virtual environment (3.10 or newer).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SOURCES := src tests benchmarks

.PHONY: install demo test fuzz lint format bench clean

install: $(STAMP)

# constraints.txt pins the versions (torch==2.13.0; which build depends on the index: see README)
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/mlplab demo

# The suite on every core, two at most (tests run torch at 1 thread; one core: one worker),
# each test file whole on one worker (tests/conftest.py says why). `pytest -n 0`: serially.
test: install lint
	$(BIN)/python -m pytest -n auto --maxprocesses 2 --dist loadfile

# The fuzz tests alone, with many more examples than the bounded run inside `make test`.
fuzz: install
	MLPLAB_FUZZ=long $(BIN)/python -m pytest -m fuzz -p no:cacheprovider

lint: install
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

format: install
	$(BIN)/ruff check --fix $(SOURCES)
	$(BIN)/ruff format $(SOURCES)

bench: install
	$(BIN)/python benchmarks/time_to_accuracy.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
