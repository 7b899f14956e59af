# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
# `agentmon demo` marks its home: there, and only there, the examples apply (examples/agentmon.yaml,
# examples/agents.yaml, evals/suites/), from make, agentmon and the UI alike.

.PHONY: install demo run test test-spark ui docs bench lint clean reports reports-serve test-reports

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/agentmon demo
	$(BIN)/agentmon run

run: $(STAMP)
	$(BIN)/agentmon run

test: $(STAMP) lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup --ignore=tests/browser -m "not spark_pipeline"

# A second process on a local Spark warehouse (its own JVM, about 40 s): CI runs it after make
# test. make test runs the rest of tests/test_spark.py, the whole demo on Spark included.
test-spark: $(STAMP)
	$(BIN)/python -m pytest tests/test_spark.py -m spark_pipeline -p no:xdist

# The dashboards: an Evidence project over the snapshot the pipeline writes (see reports/).
REPORTS_NPM := reports/node_modules/.installed
export SEND_ANONYMOUS_USAGE_STATS := no
$(REPORTS_NPM): reports/package.json reports/package-lock.json
	cd reports && npm ci --no-audit --no-fund
	touch $@

reports: $(STAMP) $(REPORTS_NPM)
	$(BIN)/agentmon reports-snapshot --out reports/sources/agentmon/agentmon.duckdb
	cd reports && npm run sources && npm run build
	@echo "the site is in reports/build; serve it with: make reports-serve (http://127.0.0.1:3001)"

reports-serve:
	@test -f reports/build/index.html || { echo "no site yet: run make reports"; exit 2; }
	$(BIN)/python -m http.server 3001 --bind 127.0.0.1 --directory reports/build

# The pages in headless Chromium (Debian's package), on demo data in a home of their own
# (.agentmon-test-reports): what .ci/run runs after make test. Screenshots: reports/screenshots/.
TEST_REPORTS_HOME := $(CURDIR)/.agentmon-test-reports
APT_INSTALL := DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq --no-install-recommends
test-reports: $(STAMP)
	command -v chromium >/dev/null || $(APT_INSTALL) chromium || (apt-get update -qq && $(APT_INSTALL) chromium)
	rm -rf $(TEST_REPORTS_HOME)
	AGENTMON_HOME=$(TEST_REPORTS_HOME) $(BIN)/agentmon demo
	AGENTMON_HOME=$(TEST_REPORTS_HOME) $(BIN)/agentmon run
	AGENTMON_HOME=$(TEST_REPORTS_HOME) $(MAKE) reports
	AGENTMON_HOME=$(TEST_REPORTS_HOME) $(BIN)/python -m pytest tests/browser -p no:xdist

ui: $(STAMP)
	$(BIN)/python -c "from agentmon_pipeline.home import ensure_home; ensure_home()"
	DAGSTER_HOME=$${AGENTMON_HOME:-$(CURDIR)/.agentmon}/dagster $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# dbt reads the warehouse (a DuckDB file or MONITORING_DB_URL's PostgreSQL) from what ensure_home sets
docs: $(STAMP)
	$(BIN)/python -c "import subprocess, sys; from agentmon_pipeline.home import ensure_home; ensure_home(); \
	  sys.exit(subprocess.call(['dbt', 'docs', 'generate', '--project-dir', 'dbt_project', '--profiles-dir', 'dbt_project']))"
	@echo "docs written to dbt_project/target; serve them with:"
	@echo "  $(BIN)/dbt docs serve --project-dir dbt_project --profiles-dir dbt_project --host 127.0.0.1 --port 8080"

bench: $(STAMP)
	$(BIN)/python -m agentmon_pipeline.devtools.bench

# SQLFluff compiles the models with dbt (.sqlfluff) against a throwaway warehouse under /tmp, never
# the user's (nor a PostgreSQL one)
lint: $(STAMP)
	$(BIN)/ruff check agentmon_pipeline sdk tests dbt_project/spark evals
	$(BIN)/ruff format --check agentmon_pipeline sdk tests dbt_project/spark evals
	tmp=$$(mktemp -d /tmp/agentmon-lint.XXXXXX) && trap 'rm -rf "$$tmp"' EXIT && \
	  AGENTMON_WAREHOUSE_PATH=$$tmp/warehouse.duckdb AGENTMON_DBT_PROFILE_TARGET=duckdb \
	  $(BIN)/sqlfluff lint dbt_project/models

clean:
	rm -rf .agentmon .agentmon-test-reports dbt_project/target dbt_project/target-* dbt_project/logs reports/build reports/.evidence
