# Two commands for a new user: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8080

.PHONY: run test check lint bench bench-quick bench-soak bench-peers bench-profile clean

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

BENCH_STAMP := $(VENV)/.bench-installed
MINUTES ?= 10

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## floors and gateway side by side, ratios, concurrent streams, scaling (~5 min; ARGS=--large-steps)
	$(BIN)/python -m bench $(ARGS)

bench-quick: $(BENCH_STAMP)  ## the same cells for a few seconds: keeps the harness working
	$(BIN)/python -m bench --quick

bench-peers: $(BENCH_STAMP)  ## bench plus LiteLLM's proxy (installed into bench/.peers-venv on first use)
	$(BIN)/python -m bench --peers

bench-soak: $(BENCH_STAMP)  ## mixed-traffic soak: RSS, fds, tasks sampled, growth after warm-up (MINUTES=10)
	$(BIN)/python -m bench soak --minutes $(MINUTES)

bench-profile: $(BENCH_STAMP)  ## py-spy under load: where the gateway's CPU goes over the stack floor
	$(BIN)/python -m bench profile

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache router.db router.db-* bench/.peers-venv
