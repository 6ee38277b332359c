PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-all test-docs test-py312 bench bench-quick bench-extra docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The exact CPU wheel first (the pyro extra allows a range; pip would pick a CUDA build).
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test,learn,pyro,docs]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/bimodal_gmm.py

# CI's selection: everything but the tests marked slow, on both cores (pytest-xdist).
test: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow and not docs" -q --doctest-modules slppl tests

# The documentation's examples, each page as one program (CI runs this after `make test`).
test-docs: $(STAMP)
	$(PY) -m pytest -n 2 -m docs -q tests/test_docs.py

test-all: $(STAMP)
	$(PY) -m pytest -n 2 -q --doctest-modules slppl tests

# The second CI leg: Python 3.12 (jax 0.12, ArviZ 1.x with DataTree), without torch (on 3.12 the
# torch pin pulls a multi-GB CUDA build), so the Pyro tests skip.
PYTHON312 ?= $(shell for p in $(HOME)/.pyenv/versions/3.12*/bin/python3.12 $$(command -v python3.12); do "$$p" -c '' 2>/dev/null && { echo "$$p"; break; }; done)
VENV312 := .venv312
PY312 := $(VENV312)/bin/python
STAMP312 := $(VENV312)/.installed

$(STAMP312): pyproject.toml
	@test -n "$(PYTHON312)" || { echo "make test-py312: no python3.12 found (set PYTHON312=/path/to/python3.12)"; exit 1; }
	$(PYTHON312) -m venv $(VENV312)
	$(PY312) -m pip install --quiet --upgrade pip
	$(PY312) -m pip install --quiet -e ".[test,learn]"
	touch $(STAMP312)

test-py312: $(STAMP312)
	$(PY312) -m pytest -n 2 -m "not slow and not docs" -q --doctest-modules slppl tests

# The suite: every sampler kind on every case, one table (benchmarks/results.md); < 30 min on 2 cores.
bench: $(STAMP)
	$(PY) benchmarks/suite.py

bench-quick: $(STAMP)
	$(PY) benchmarks/suite.py --quick

# The studies behind the numbers in benchmarks/README.md (about an hour more).
bench-extra: $(STAMP)
	$(PY) benchmarks/acceptance.py
	$(PY) benchmarks/bimodal_vs_nuts.py
	$(PY) benchmarks/german_credit.py
	$(PY) benchmarks/fab40.py
	$(PY) benchmarks/repeated_runs.py
	$(PY) benchmarks/adaptive_vs_nuts.py
	$(PY) benchmarks/compile_costs.py
	$(PY) benchmarks/compilation_cache.py
	$(PY) benchmarks/proposals_by_cost.py
	$(PY) benchmarks/explore_budget.py
	$(PY) benchmarks/high_dimension.py

# The documentation site (mkdocs-material + mkdocstrings), warnings as errors; writes site/.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) $(VENV312) out site .pytest_cache
