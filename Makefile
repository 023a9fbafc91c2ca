# The same commands the README gives.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test unit-without-moto flake-check lint check bench local scan
$(PY):
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -e '.[dev]'

demo: $(PY)
	$(VENV)/bin/jobpoll demo

test: $(PY)
	$(PY) -m pytest -q

# The unit tests in a virtualenv with the runtime dependencies and the test runner only (no moto, no AWS tools).
unit-without-moto:
	python3 -m venv .venv-unit && .venv-unit/bin/pip install -q -e . 'pytest>=8' 'pytest-xdist>=3.5' 'hypothesis>=6.100'
	.venv-unit/bin/python -m pytest -q tests/unit

flake-check: $(PY)  # the tests 5 times: each run's time, and which tests failed in which run
	.ci/flake-check 5

lint: $(PY)
	$(VENV)/bin/ruff check functions infra tests benchmarks
	$(VENV)/bin/ruff format --check functions infra tests benchmarks
	$(VENV)/bin/mypy

check: test lint

bench: $(PY)
	$(PY) benchmarks/polling_efficiency.py

local: $(PY)
	$(VENV)/bin/jobpoll local up

# checkov on the packaged template (every finding fixed or skipped in infra/template.json with its reason),
# in a virtualenv of its own: checkov's pins would move the project's dependencies.
scan: $(PY)
	test -x .venv-scan/bin/checkov || (python3 -m venv .venv-scan && .venv-scan/bin/pip install -q checkov)
	$(PY) -c "import sys; sys.path.insert(0, 'infra'); from pathlib import Path; \
		from jobpoll.package import chalice_package; chalice_package('dev', Path('.jobpoll/scan').resolve(), 'us-east-1')"
	.venv-scan/bin/checkov -f .jobpoll/scan/chalice/sam.json --framework cloudformation --compact --quiet
