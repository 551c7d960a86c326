# perceiverkit developer entry points. Every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONSTRAINTS := requirements/dev-constraints.txt
STAMP := $(VENV)/.installed

DATA_PACKAGES := dataset-fashion-mnist wordnet-base jargon-text
DATA_FILES := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz /usr/share/wordnet/data.noun \
	/usr/share/doc/jargon-text/jargon.txt.gz

.PHONY: venv data browser demo lint test test-all clean

venv: $(STAMP)

# Real offline data sets from Debian (installed when running as root; tests skip what is missing otherwise).
data:
	@missing=""; for f in $(DATA_FILES); do [ -e $$f ] || missing=yes; done; \
	if [ -z "$$missing" ]; then echo "data sets present"; \
	elif [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DATA_PACKAGES); \
	else echo "note: run 'sudo apt-get install $(DATA_PACKAGES)' for the real-data tests and training"; fi

# Debian's Chromium and its WebDriver, for the playground's browser test (installed when running as root, like the
# data sets; the test skips, naming these packages, where they are missing).
BROWSER_PACKAGES := chromium chromium-driver
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then echo "browser present"; \
	elif [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES); \
	else echo "note: run 'sudo apt-get install $(BROWSER_PACKAGES)' for the playground's browser test"; fi

# Reinstall when the project metadata or the pins change.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) torch
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[test]"
	touch $(STAMP)

demo: $(STAMP) data
	$(VENV)/bin/perceiverkit demo

# Extra pytest arguments, e.g. `make test PYTEST_ARGS="--durations=20"` or `PYTEST_ARGS="-x tests/train"`.
PYTEST_ARGS ?=

# Static checks over src/: ruff (pyflakes, pycodestyle, import order, pyupgrade, bugbear) and mypy, configured in
# pyproject.toml. Both test targets run them first.
lint: $(STAMP)
	$(VENV)/bin/ruff check src
	$(VENV)/bin/mypy

# Fast suite (a few minutes on two cores): everything not marked slow, on both cores.
test: $(STAMP) data lint
	$(PY) -m pytest -m "not slow" -n 2 -q $(PYTEST_ARGS)

# Everything, adding the slow tests: multi-step and multi-process training, kill-and-resume, ONNX export,
# compiled models and full-size builds. This is what CI runs.
test-all: $(STAMP) data browser lint
	$(PY) -m pytest -n 2 -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
