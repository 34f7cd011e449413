# Pasture: `make demo` chats with the bundled demo model; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test unit integration lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	bash scripts/install_system_deps.sh
	$(PY) scripts/fetch_models.py > /dev/null
	$(PY) -m ruff check src tests scripts bench examples fuzz
	$(PY) -m pytest -q

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(STAMP)
	$(PY) -m ruff check src tests scripts bench examples fuzz

bench: $(STAMP)
	$(PY) bench/bench_decode.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
