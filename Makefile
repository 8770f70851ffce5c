# Two entry points: `make run` (the whole workflow on config.yaml, locally) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
# One BLAS/OpenMP thread per process unless a stage asks for more: ranks and jobs give the parallelism.
export PYTHONUNBUFFERED := 1

CONFIG ?= config.yaml
# pytest-xdist workers for `make test` (tests/conftest.py says how modules are spread over them);
# --durations lists the slowest tests, so a CI log shows where the suite's minutes go.
TEST_WORKERS ?= 2
# CONFIG may name several files (later ones win, as with --configfile): the run folder is the last one's run_dir.
RUN_DIR = $(shell $(BIN)/python -c "import yaml,sys; print([d for d in ['results'] + [(yaml.safe_load(open(f)) or {}).get('run_dir') for f in sys.argv[1:]] if d][-1])" $(CONFIG) 2>/dev/null || echo results)

.PHONY: run test test-container venv clean lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,cluster]'
	touch $@

venv: $(VENV)/.installed

run: venv
	snakemake --profile profiles/local $(if $(filter-out config.yaml,$(CONFIG)),--configfile $(CONFIG))
	snakemake --profile profiles/local $(if $(filter-out config.yaml,$(CONFIG)),--configfile $(CONFIG)) --report $(RUN_DIR)/report.html
	@echo "wm: report written to $(CURDIR)/$(RUN_DIR)/report.html"

test: venv
	pytest -n $(TEST_WORKERS) --dist loadscope --durations=25 tests

# Opt-in: builds the OCI image with podman (as root; apt-gets podman, runc, debootstrap if missing),
# runs wm and one rule of the tiny workflow in it. A few minutes.
test-container: venv
	WM_CONTAINER_TEST=1 pytest tests/test_container.py -v -s

lint: venv
	snakemake --lint

clean:
	rm -rf results results-tiny .snakemake
