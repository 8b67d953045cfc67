# Two commands for a new user: `make run` and `make test`. Everything else is optional.
# `make` alone lists the targets. run/check honour ROUTER_CONFIG, HOST, PORT and WORKERS.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
STAMP  := $(VENV)/.installed
ROUTER_CONFIG ?= routing.toml
HOST    ?=
PORT    ?=
WORKERS ?= 1
SERVE_ARGS = --config $(ROUTER_CONFIG) --workers $(WORKERS) $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

.DEFAULT_GOAL := help
.PHONY: help run test check lint bench bench-quick bench-soak bench-peers bench-profile clean

help:  ## list the targets (this text)
	@echo "make TARGET   (run/check honour ROUTER_CONFIG=$(ROUTER_CONFIG) HOST= PORT= WORKERS=$(WORKERS))"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,otel]'
	touch $(STAMP)

run: $(RUN_STAMP)  ## install the gateway alone and serve it (dev key sk-router-dev on loopback)
	$(BIN)/router serve $(SERVE_ARGS)

check: $(RUN_STAMP)  ## validate routing.toml (or ROUTER_CONFIG) and its providers, serving nothing
	$(BIN)/router check --config $(ROUTER_CONFIG)

test: $(STAMP)  ## install the test tools (.[dev,otel]) and run the whole suite
	./scripts/ensure-chromium
	./scripts/ensure-deploy-tools
	./scripts/ensure-codex
	./scripts/ensure-claude-code
	./scripts/ensure-prometheus
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

lint: $(STAMP)  ## ruff and mypy --strict
	$(BIN)/ruff check src tests
	$(BIN)/mypy src

clean:  ## remove .venv, caches and the local database
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache router.db router.db-* bench/.peers-venv
