PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-all bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,learn,pyro]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/bimodal_gmm.py

# CI's selection: everything but the tests marked slow.
test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q --doctest-modules slppl tests

test-all: $(STAMP)
	$(PY) -m pytest -q --doctest-modules slppl tests

bench: $(STAMP)
	$(PY) benchmarks/acceptance.py
	$(PY) benchmarks/bimodal_vs_nuts.py
	$(PY) benchmarks/german_credit.py
	$(PY) benchmarks/fab40.py
	$(PY) benchmarks/repeated_runs.py
	$(PY) benchmarks/adaptive_vs_nuts.py
	$(PY) benchmarks/compile_costs.py

clean:
	rm -rf $(VENV) out .pytest_cache
