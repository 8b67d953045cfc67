# Two commands for a new user: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8080

.PHONY: run test check lint bench bench-quick bench-soak bench-peers browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## serve on http://127.0.0.1:$(PORT) with routing.toml (dev key: sk-router-dev)
	PORT=$(PORT) $(BIN)/router serve --config routing.toml

check: $(STAMP)  ## validate routing.toml and providers/ without serving
	$(BIN)/router check --config routing.toml

test: $(STAMP)  ## install and run the whole suite
	./scripts/ensure-chromium
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache router.db router.db-*
