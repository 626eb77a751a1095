# Two front-door commands: `make demo` and `make test`. Both build .venv from pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint chromium bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python -m demo

# The browser tests need Debian's chromium; install it when we may (root + apt).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; browser tests will be skipped"; \
	  else echo "warning: chromium not found and cannot be installed; browser tests will be skipped"; fi; }

# The gates: lint and types, the whole suite (warnings are errors: pyproject.toml), then the integration
# suite again at fixed instants across a week and a month end (tests/clock.py).
test: lint chromium
	$(BIN)/python -m pytest -q
	scripts/test_at_instants.sh $(BIN)/python

lint: $(VENV)/.installed
	$(BIN)/ruff check qc inspection service demo tests bench scripts
	$(BIN)/mypy qc inspection service

bench: $(VENV)/.installed
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/measure.py
	$(BIN)/python bench/inspect.py
	$(BIN)/python bench/anomaly.py
	$(BIN)/python bench/analytics.py

clean:
	rm -rf $(VENV) kipimo-data kipimo-demo .pytest_cache build dist
