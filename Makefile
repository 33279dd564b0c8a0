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
	$(VENV)/bin/snnprune train --model cnn --dataset digits --epochs 5 --seed 0 --out runs/demo/dense
	$(VENV)/bin/snnprune prune --pruner criticality-unstructured --sparsity 0.9 --model cnn --dataset digits \
		--from runs/demo/dense/model.pt --seed 0 --out runs/demo/criticality-0.9
	$(VENV)/bin/snnprune prune --pruner sca --sparsity 0.5 --model cnn --dataset digits \
		--from runs/demo/dense/model.pt --seed 0 --out runs/demo/sca-0.5

test: install
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-all: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: install
	$(PY) bench/throughput.py

clean:
	rm -rf $(VENV) runs build *.egg-info
