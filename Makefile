# The two commands of the README are `make report` and `make test`; everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cemlib-installed

.PHONY: venv report test lint format lab kernel bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "cemlib needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $(STAMP)

venv: $(STAMP)

## main job: every notebook on the embedded synthetic world, HTML reports in reports/
## (make report CONFIG=run.yaml ARGS="-p n_people=2000 --stages 00,01"); the last line
## printed is the path of the run's index.html
report: venv
	$(BIN)/cem run $(if $(CONFIG),--config $(CONFIG)) $(ARGS)

## the test suite (what CI runs)
test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check cemlib tests benchmarks
	$(BIN)/ruff format --check cemlib tests benchmarks
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format cemlib tests benchmarks
	$(BIN)/ruff check --fix cemlib tests benchmarks

## JupyterLab with the project's environment as its kernel ("python3" inside .venv is the
## venv's own interpreter); notebooks find data/cem.duckdb through CEM_HOME
lab: venv
	CEM_HOME=$(CURDIR) $(BIN)/jupyter lab --notebook-dir=notebooks $(ARGS)

## register the project's kernel ("Python (cemlib)") for a JupyterLab installed elsewhere
kernel: venv
	$(BIN)/python -m ipykernel install --user --name cemlib --display-name "Python (cemlib)"

bench: venv
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf data reports/*/ reports/index.html reports/latest .pytest_cache
