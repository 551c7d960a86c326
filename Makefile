# perceiverkit developer entry points. Every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONSTRAINTS := requirements/dev-constraints.txt
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-all clean

venv: $(STAMP)

# Reinstall when the project metadata or the pins change.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) torch
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/perceiverkit demo

# Default suite: everything not marked slow, on both cores.
test: $(STAMP)
	$(PY) -m pytest -m "not slow" -n 2 -q

# Everything, including the slow full-size and end-to-end tests.
test-all: $(STAMP)
	$(PY) -m pytest -n 2 -q

clean:
	rm -rf $(VENV) .pytest_cache build dist src/*.egg-info
