# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each creates .venv when missing, installs torch==2.13.0 first (the local CPU wheel), then
# everything else under constraints.txt, which keeps that torch: an unpinned install would pull
# a newer torch with several GB of CUDA packages.

VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
STAMP   = $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test test-all bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (log: $(VENV)/install.log)"
	@$(PIP) install torch==2.13.0 > $(VENV)/install.log 2>&1 || (tail -30 $(VENV)/install.log; exit 1)
	@$(PIP) install -c constraints.txt -e ".[test]" >> $(VENV)/install.log 2>&1 || (tail -30 $(VENV)/install.log; exit 1)
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/snnprune search demo --out runs
	$(VENV)/bin/snnprune report runs/demo

test: install
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-all: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Every bench in bench/, one after another, then docs/benchmarks.md (about 8 hours on 2 free cores: 44 minutes for
# the fidelity suite, 26 for search-quality, 8 for search-speed, 57 for search-mf-fashion, 74 for search-mf-compare,
# 69 for search-mf-long, 206 for search-mf-long-fashion, a few for the rest).
# One bench and the page: make bench BENCH_ARGS="--only NAME"
bench: install
	@bash bench/ensure_fashion_mnist.sh
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) runs build *.egg-info
