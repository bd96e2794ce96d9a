# agentic-pipeline: two commands do everything (see README.md).
#   make demo   set up, then ingest the bundled sample books on SQLite and show health + approvals
#   make test   set up, then run every test (PostgreSQL tests need the server; CI=true makes its absence fatal)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DB ?= .data/demo.db
PYTEST_WORKERS ?= 2

.PHONY: demo test bench setup clean lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	@mkdir -p .data
	$(BIN)/agentic-pipeline --db $(DEMO_DB) init
	$(BIN)/agentic-pipeline --db $(DEMO_DB) batch-queue samples/books --execute
	$(BIN)/agentic-pipeline --db $(DEMO_DB) worker --until-empty
	-$(BIN)/agentic-pipeline --db $(DEMO_DB) health
	$(BIN)/agentic-pipeline --db $(DEMO_DB) pending

test: $(STAMP)
	-$(BIN)/python -m tests.web.browser
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile -q

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .data .pytest_cache .hypothesis
