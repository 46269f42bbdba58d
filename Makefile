# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PG_URL ?= postgresql+psycopg2://postgres@127.0.0.1:5432/test

.PHONY: run test test-postgres lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install only when the declared dependencies change.
$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	NPQSL_ENV=$${NPQSL_ENV:-development} $(BIN)/npqsl-lti db upgrade
	NPQSL_ENV=$${NPQSL_ENV:-development} $(BIN)/npqsl-lti serve --host 127.0.0.1 --port 5000

# Debian's Chromium for the browser tests (tests/browser_tests); a no-op once it is installed.
.PHONY: browser-deps
browser-deps:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

test: $(VENV)/.installed-test browser-deps
	$(BIN)/pytest $(PYTEST_ARGS)

# The storage tests again, against PostgreSQL (see README "Running the tests").
test-postgres: $(VENV)/.installed-test
	NPQSL_TEST_POSTGRES_URL=$(PG_URL) $(BIN)/pytest -m postgres $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Modest sizes so it finishes in about two minutes on 2 cores; see benchmarks/README.md for the full run.
bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/signing.py
	$(BIN)/python benchmarks/launch.py --launches 150 --warmup 3
	$(BIN)/python benchmarks/outbox.py --scores 500 --paced-seconds 5
	$(BIN)/python benchmarks/xapi.py --sizes 10k --ingest 2000 --queries 20

clean:
	rm -rf $(VENV) instance .pytest_cache
