# Everyday tasks. The tools come from .venv/ when it exists (`make setup` creates it),
# otherwise from PATH (an activated virtualenv, say).
VENV ?= .venv
BIN := $(if $(wildcard $(VENV)/bin/python),$(VENV)/bin/,)
PYTHON := $(BIN)python
PORT ?= 5000
# The Debian packages the whole test suite needs, which `make test` installs when missing:
# Chromium for the browser tests; PostgreSQL, SLURM and munge for the scale-out stack
# tests, and Debian's python3 for the stack run by a plain user (an interpreter any user
# can run). tests/unit/project/test_makefile.py checks the list against the code.
DEBIAN_PACKAGES := chromium postgresql slurmctld slurmd slurm-client munge python3

.PHONY: help setup repro test debian-packages test-fast sweep ui bench params plots vega-page screenshots pictures

help:  ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup:  ## create .venv and install the project with its test and lint tools
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --upgrade pip
	$(VENV)/bin/python -m pip install -e '.[dev]'

repro:  ## run the DVC pipeline (only the stages whose inputs changed)
	$(PYTHON) -m dvc repro

# The suite in parallel processes (pytest-xdist), each taking a whole test module at a
# time: a module's fixtures (the scale-out stack, a trained model) are set up once, in one
# process. tests/conftest.py hands out the longest modules first.
XDIST := -n auto --maxprocesses=4 --dist loadfile

test: debian-packages $(VENV)/.test-installed  ## the whole suite, set-up included (CI runs this)
	$(VENV)/bin/python -m pytest $(XDIST)

# .venv with the project and its test tools, reinstalled when pyproject.toml changes.
$(VENV)/.test-installed: pyproject.toml
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

debian-packages:  ## install the Debian packages the tests need (DEBIAN_PACKAGES) if missing
	@missing=$$(for package in $(DEBIAN_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q ' installed$$' \
	        || echo $$package; \
	done); \
	missing=$$(echo $$missing); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null; then sudo=sudo; \
	else echo "The tests need the Debian packages $$missing. As root: apt-get install $$missing" >&2; \
	    exit 1; fi; \
	echo "Installing the Debian packages the tests need: $$missing"; \
	$$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing

# The fast tests share no costly fixture, so they go out one test at a time, which
# balances the processes better than a module at a time.
test-fast: $(VENV)/.test-installed  ## the tests without the slow end-to-end ones
	$(VENV)/bin/python -m pytest -n auto --maxprocesses=4 --dist load -m 'not slow'

sweep:  ## the grid sweep (conf/sweep/grid.yaml), one MLflow run per point
	$(PYTHON) pipelines/run.py sweep=grid

ui:  ## the MLflow dashboard over ./mlflow.db on http://127.0.0.1:5000 (PORT=...)
	@echo "Open http://127.0.0.1:$(PORT), experiment digits-nn. If MLflow shows its GenAI"
	@echo "view, pick 'Model training' at the top left (the browser remembers it)."
	$(PYTHON) -m mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port $(PORT)

bench:  ## the benchmarks (benchmarks/bench.py)
	$(PYTHON) benchmarks/bench.py

params:  ## regenerate params.yaml from conf/
	$(PYTHON) -m digits_nn.compose

plots:  ## dvc_plots/index.html: the cost curve and confusion matrix, rendered offline
	$(PYTHON) -m dvc plots show

vega-page:  ## vendor/vega/dvc-plots.html: the plots template with the vega scripts inlined
	$(PYTHON) vendor/vega/inline.py

screenshots:  ## regenerate docs/img/mlflow-run.png, mlflow-runs.png, mlflow-peers.png and dvc-plots.png
	DIGITS_NN_SCREENSHOTS=$(CURDIR)/docs/img $(PYTHON) -m pytest tests/e2e/test_browser.py

pictures:  ## regenerate the README's pictures in docs/img/ (dvc repro, then the grid sweep)
	$(PYTHON) -m dvc repro
	for name in cost misclassified weights confusion; do cp reports/plots/$$name.png docs/img/$$name.png; done
	$(PYTHON) pipelines/run.py sweep=grid hydra.sweep.dir=multirun/grid
	cp multirun/grid/sweep_heatmap.png docs/img/sweep-heatmap.png

.PHONY: mutate
mutate: $(VENV)/.mutate-installed  ## mutation testing against the fast suite (long): docs/mutation.md
	$(VENV)/bin/python benchmarks/mutation_report.py --run

# .venv with the test tools and mutmut, reinstalled when pyproject.toml changes.
$(VENV)/.mutate-installed: $(VENV)/.test-installed
	$(VENV)/bin/python -m pip install --quiet -e '.[test,mutate]'
	touch $@
