# The two commands README.md starts with: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
# Four test workers on two cores: most tests spend their time waiting on the processes they start
# (serve, simulators, Chromium), so two workers left the cores half idle (load ~1.8 during the suite).
PYTEST_WORKERS ?= 4

.PHONY: demo test lint typecheck test-sqlite browser-check test-postgresql rules-test bench chaos migrations serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Install, then run the product end to end against the simulator on SQLite.
demo: $(STAMP)
	$(BIN)/tenantguard demo

## Install, then run every check: lint, types, the rule pack's own tests, the suite on SQLite and on PostgreSQL.
test: $(STAMP) lint typecheck rules-test test-sqlite browser-check test-postgresql

## ruff, and the dead-code check (vulture: [tool.vulture] in pyproject.toml, vulture_whitelist.py).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/vulture

## mypy over every package; the configuration is [tool.mypy] in pyproject.toml.
typecheck: $(STAMP)
	$(BIN)/mypy

rules-test: $(STAMP)
	@if $(BIN)/tenantguard rules --help >/dev/null 2>&1; then $(BIN)/tenantguard rules test; fi

test-sqlite: $(STAMP)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --durations=25 --db sqlite

## The browser suite (tests/console: Playwright driving Debian's Chromium) runs inside test-sqlite;
## this says plainly when it was skipped (CI sets TENANTGUARD_REQUIRE_BROWSER=1: then it fails).
CHROMIUM ?= $(or $(TENANTGUARD_TEST_CHROMIUM),/usr/bin/chromium)
browser-check:
	@if [ -x "$(CHROMIUM)" ]; then \
		echo "browser suite: ran against $(CHROMIUM)"; \
	elif [ "$$TENANTGUARD_REQUIRE_BROWSER" = "1" ]; then \
		echo "no Chromium at $(CHROMIUM) and TENANTGUARD_REQUIRE_BROWSER=1: failing"; exit 1; \
	else \
		echo ""; echo "*** Browser suite SKIPPED: no Chromium at $(CHROMIUM) (apt-get install chromium) ***"; echo ""; \
	fi

test-postgresql: $(STAMP)
	@if $(BIN)/python -c "import psycopg,sys; psycopg.connect('$(PG_URL)', connect_timeout=3)" 2>/dev/null; then \
		TENANTGUARD_TEST_POSTGRES_URL=$(PG_URL) $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --durations=25 --db postgresql; \
	elif [ "$$TENANTGUARD_REQUIRE_POSTGRES" = "1" ]; then \
		echo "PostgreSQL at $(PG_URL) is unreachable and TENANTGUARD_REQUIRE_POSTGRES=1: failing"; exit 1; \
	else \
		echo ""; echo "*** PostgreSQL suite SKIPPED: no server at $(PG_URL) (set PG_URL=... to point at one) ***"; echo ""; \
	fi

## Benchmarks (not part of `make test`): prints a table, writes bench/results/latest.json.
bench: $(STAMP)
	$(BIN)/python -m bench

## Resilience suite: kills, restarts and faults during scenario runs.
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos

## Regenerate the initial migration after changing a model.
migrations: $(STAMP)
	$(BIN)/python -m core.migrations.regenerate

serve: $(STAMP)
	$(BIN)/tenantguard serve

clean:
	rm -rf $(VENV) .tenantguard *.egg-info .pytest_cache .ruff_cache .mypy_cache
