# Pasture: `make demo` chats with the bundled demo model; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The demo needs Pasture alone; the tests also need the `test` extra (official clients,
# a browser driver, llama.cpp's converters with a CPU torch: about 1 GB installed).
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test unit integration lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(TEST_STAMP)
	bash scripts/install_system_deps.sh
	$(PY) scripts/fetch_models.py > /dev/null
	$(PY) -m ruff check src tests scripts bench examples fuzz
	$(PY) -m pytest -q

unit: $(TEST_STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(TEST_STAMP)
	$(PY) -m ruff check src tests scripts bench examples fuzz

bench: $(TEST_STAMP)
	$(PY) bench/bench_decode.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
