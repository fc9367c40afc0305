# The two commands of the README are `make report` and `make test`; everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cemlib-installed
# exact versions of every dependency and of the dev, bench and docs extras (pip-compile);
# pyproject.toml keeps the ranges for users who install cemlib as a library
LOCK := requirements/dev.lock
# the optional Spark engine (extra `spark`: pyspark), locked apart so the default install and
# `make test` never need it; `make venv-spark` adds it to .venv
SPARK_LOCK := requirements/spark.lock
SPARK_STAMP := $(VENV)/.cemlib-spark-installed
PIP_VERSION := 26.3
PIP_TOOLS_VERSION := 7.6.2

.PHONY: venv venv-spark report test test-spark lint format docs docs-serve lock lock-spark lab kernel bench clean

$(STAMP): $(LOCK) pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "cemlib needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip==$(PIP_VERSION)"
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

$(SPARK_STAMP): $(STAMP) $(SPARK_LOCK)
	$(BIN)/python -m pip install --quiet -r $(SPARK_LOCK)
	touch $(SPARK_STAMP)

## .venv plus the Spark engine's extra (pyspark; Java 17+ must be on the machine)
venv-spark: $(SPARK_STAMP)

## refresh the lock after a change of the ranges in pyproject.toml: versions already locked are
## kept where they still fit; `make lock UPGRADE=1` moves every package to its newest allowed
## version (then run `make test` and the benchmarks before committing it)
## (the lock is only replaced when it changed, so an unchanged lock does not rebuild .venv)
lock: venv
	$(BIN)/python -m pip install --quiet "pip-tools==$(PIP_TOOLS_VERSION)"
	cp $(LOCK) $(LOCK).new
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --strip-extras \
		--no-emit-index-url --no-emit-find-links --extra dev --extra bench --extra docs \
		$(if $(UPGRADE),--upgrade) --output-file $(LOCK).new pyproject.toml
	@if cmp -s $(LOCK).new $(LOCK); then rm $(LOCK).new; echo "$(LOCK) unchanged"; \
	else mv $(LOCK).new $(LOCK); echo "$(LOCK) updated: commit it with pyproject.toml"; fi

## the Spark extra's lock: pyspark and its dependencies, every shared package held at the
## version of $(LOCK) (so adding the extra never moves the default install)
lock-spark: venv
	$(BIN)/python -m pip install --quiet "pip-tools==$(PIP_TOOLS_VERSION)"
	CUSTOM_COMPILE_COMMAND="make lock-spark" $(BIN)/pip-compile --quiet --strip-extras \
		--no-emit-index-url --no-emit-find-links --extra spark --constraint $(LOCK) \
		$(if $(UPGRADE),--upgrade) --output-file $(SPARK_LOCK) pyproject.toml

## main job: every notebook on the embedded synthetic world, HTML reports in reports/
## (make report CONFIG=run.yaml ARGS="-p n_people=2000 --stages 00,01"); the last line
## printed is the path of the run's index.html
report: venv
	$(BIN)/cem run $(if $(CONFIG),--config $(CONFIG)) $(ARGS)

## the test suite (what CI runs), on TEST_WORKERS processes (pytest-xdist; each test file on
## one worker; TEST_WORKERS=0 runs in this process, e.g. for pdb)
TEST_WORKERS ?= 2
test: venv
	$(BIN)/python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

## the Spark engine's tests (local[2] and a standalone master and worker on loopback)
test-spark: venv-spark
	$(BIN)/python -m pytest tests/spark -q $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check cemlib tests benchmarks
	$(BIN)/ruff format --check cemlib tests benchmarks
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format cemlib tests benchmarks
	$(BIN)/ruff check --fix cemlib tests benchmarks

## JupyterLab with the project's environment as its kernel ("python3" inside .venv is the
## venv's own interpreter); notebooks find data/cem.duckdb through CEM_HOME
## (as root, in a container, Jupyter refuses to start without --allow-root: given then)
lab: venv
	CEM_HOME=$(CURDIR) $(BIN)/jupyter lab --notebook-dir=notebooks \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(ARGS)

## register the project's kernel ("Python (cemlib)") for a JupyterLab installed elsewhere
kernel: venv
	$(BIN)/python -m ipykernel install --user --name cemlib --display-name "Python (cemlib)"

## the documentation site (mkdocs-material + mkdocstrings) built with --strict into site/
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

## the site with live reload on http://127.0.0.1:8000
docs-serve: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

bench: venv
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf data reports/*/ reports/index.html reports/latest .pytest_cache site
