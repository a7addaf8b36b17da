# Everyday tasks. The tools come from .venv/ when it exists (`make setup` creates it),
# otherwise from PATH (an activated virtualenv, say).
VENV ?= .venv
BIN := $(if $(wildcard $(VENV)/bin/python),$(VENV)/bin/,)
PYTHON := $(BIN)python
PORT ?= 5000

.PHONY: help setup repro test test-fast sweep ui bench params plots screenshots pictures

help:  ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup:  ## create .venv and install the project with its test and lint tools
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --upgrade pip
	$(VENV)/bin/python -m pip install -e '.[dev]'

repro:  ## run the DVC pipeline (only the stages whose inputs changed)
	$(PYTHON) -m dvc repro

test:  ## the whole test suite, slow end-to-end and browser tests included
	$(PYTHON) -m pytest

test-fast:  ## the tests without the slow end-to-end ones
	$(PYTHON) -m pytest -m 'not slow'

sweep:  ## the grid sweep (conf/sweep/grid.yaml), one MLflow run per point
	$(PYTHON) pipelines/run.py sweep=grid

ui:  ## the MLflow dashboard over ./mlflow.db on http://127.0.0.1:5000 (PORT=...)
	@echo "Open http://127.0.0.1:$(PORT), experiment digits-nn. If MLflow shows its GenAI"
	@echo "view, pick 'Model training' at the top left (the browser remembers it)."
	$(PYTHON) -m mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port $(PORT)

bench:  ## the benchmarks (benchmarks/run.py)
	$(PYTHON) benchmarks/run.py

params:  ## regenerate params.yaml from conf/
	$(PYTHON) -m digits_nn.compose

plots:  ## dvc_plots/index.html: the cost curve and confusion matrix, rendered offline
	$(PYTHON) -m dvc plots show

screenshots:  ## regenerate docs/img/mlflow-run.png, mlflow-runs.png and dvc-plots.png
	DIGITS_NN_SCREENSHOTS=$(CURDIR)/docs/img $(PYTHON) -m pytest tests/test_browser.py

pictures:  ## regenerate the README's pictures in docs/img/ (dvc repro, then the grid sweep)
	$(PYTHON) -m dvc repro
	for name in cost misclassified weights confusion; do cp reports/plots/$$name.png docs/img/$$name.png; done
	$(PYTHON) pipelines/run.py sweep=grid hydra.sweep.dir=multirun/grid
	cp multirun/grid/sweep_heatmap.png docs/img/sweep-heatmap.png

.PHONY: mutate
mutate:  ## mutation testing against the fast suite (tens of minutes): docs/mutation.md
	$(PYTHON) benchmarks/mutation_report.py --run
