# One command each: `make demo` runs the main job end to end, `make test` the whole suite.
# Both first run scripts/setup.sh (idempotent: chromium, chromium-driver, .venv).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test demo bench clean

setup:
	@bash scripts/setup.sh

test: setup
	$(PY) -m pytest -q

demo: setup
	@bash scripts/demo.sh

bench: setup
	$(PY) bench/run.py

clean:
	rm -rf .demo .pytest_cache
