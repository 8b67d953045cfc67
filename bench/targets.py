"""What is measured: the request of each surface, and how to start each server under test.

Five kinds of target answer the same fake upstream: `direct` (the upstream itself, the
baseline), `raw` (a raw asyncio + httptools forwarder, bench/floor_raw.py: the Python limit),
`floor` (the bare uvicorn + Starlette + aiohttp forwarder, bench/floor.py: what the stack
costs before any gateway logic, the figure the gateway is judged against), `router` (this
repository's gateway, every surface) and, with `--peers`, `litellm` (LiteLLM's proxy in its
own virtual environment, bench/.peers-venv).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.upstream import FIRST_TOKEN

MASTER_KEY = "bench-master-key"
LITELLM_MASTER_KEY = "sk-bench-master-key"  # LiteLLM insists on the sk- prefix
UPSTREAM_KEY = "sk-bench"
MODEL = "openai/gpt-4o-mini"
PEERS_VENV = Path(__file__).resolve().parent / ".peers-venv"


@dataclass(frozen=True)
class Surface:
    """One API surface: its path and its non-streamed and streamed request bodies."""

    name: str
    path: str
    json_body: str
    stream_body: str

    def body(self, mode: str) -> str:
        return self.stream_body if mode == "stream" else self.json_body


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _openai_surface(name: str, model: str) -> Surface:
    body: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    stream = {**body, "stream": True, "stream_options": {"include_usage": True}}
    return Surface(name, "/v1/chat/completions", _dumps(body), _dumps(stream))


def _ironlabs_surface() -> Surface:
    body: dict[str, object] = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
        "models": [MODEL],
        "stream": False,
    }
    stream = {**body, "stream": True}
    return Surface("ironlabs", "/api/v1/completions", _dumps(body), _dumps(stream))


def _messages_surface() -> Surface:
    body: dict[str, object] = {
        "model": MODEL,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "hello"}],
    }
    return Surface("messages", "/v1/messages", _dumps(body), _dumps({**body, "stream": True}))


def _responses_surface() -> Surface:
    body: dict[str, object] = {"model": MODEL, "input": "hello"}
    return Surface("responses", "/v1/responses", _dumps(body), _dumps({**body, "stream": True}))


def _direct_responses_surface() -> Surface:
    """What the gateway sends the upstream for RESPONSES: the caller's body, the model without
    its provider, `stream` always set (captured from the gateway, in this key order)."""
    body: dict[str, object] = {"model": MODEL.split("/", 1)[1], "input": "hello"}
    json_body, stream_body = _dumps({**body, "stream": False}), _dumps({**body, "stream": True})
    return Surface("responses", "/v1/responses", json_body, stream_body)


# The direct baseline sends what the gateway sends upstream (the model without its provider).
DIRECT = _openai_surface("direct", MODEL.split("/", 1)[1])
# ... and for the Responses surface, which goes natively to the upstream's /v1/responses, what
# the gateway sends there: the gateway's responses cells are put beside these direct cells.
DIRECT_RESPONSES = _direct_responses_surface()
# The stack floor (bench/floor.py) gets the same request as direct, through the bare stack.
FLOOR = _openai_surface("floor", MODEL.split("/", 1)[1])
RAW = _openai_surface("raw", MODEL.split("/", 1)[1])  # and the raw asyncio floor
IRONLABS = _ironlabs_surface()
OPENAI = _openai_surface("openai", MODEL)
MESSAGES = _messages_surface()
RESPONSES = _responses_surface()
# Every gateway surface, one entry each: a surface the gateway does not serve yet (HTTP 404)
# is reported "not available" until it lands, then measured and judged like the others.
GATEWAY_SURFACES = (IRONLABS, OPENAI, MESSAGES, RESPONSES)


def slow_body(surface: Surface, interval_ms: float, chunks: int) -> str:
    """The streamed request of `surface` asking the fake upstream for a stamped slow stream."""
    text = f"interval_ms={interval_ms:g} chunks={chunks}"
    return surface.stream_body.replace('"hello"', json.dumps(text), 1)


MARKER = FIRST_TOKEN  # the first text token: its arrival is the time to first token


@dataclass(frozen=True)
class Target:
    """A server to measure: where it listens, how to authenticate, which surfaces it has."""

    name: str
    port: int
    auth: str
    surfaces: tuple[Surface, ...]

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.auth}"}


def router_config(workdir: Path, repo: Path) -> Path:
    """Write the gateway's routing.toml: the repository's providers, a scratch database, and
    room for the largest concurrent-streams step (`max_inflight` counts open streams)."""
    path = workdir / "routing.toml"
    path.write_text(
        f'providers_dir = "{(repo / "providers").resolve()}"\n'
        "[server]\n"
        "max_inflight = 20000\n"
        "[storage]\n"
        f'database = "{workdir / "bench.db"}"\n'
    )
    return path


def floor_argv(port: int, upstream_port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.floor",
        "--port",
        str(port),
        "--upstream",
        f"http://127.0.0.1:{upstream_port}",
    ]


def raw_floor_argv(port: int, upstream_port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.floor_raw",
        "--port",
        str(port),
        "--upstream-port",
        str(upstream_port),
    ]


def router_env(upstream_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ROUTER_MASTER_KEY=MASTER_KEY,
        OPENAI_API_KEY=UPSTREAM_KEY,
        OPENAI_BASE_URL=f"http://127.0.0.1:{upstream_port}/v1",
    )
    return env


def router_argv(config: Path, port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "router",
        "serve",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def litellm_config(workdir: Path, upstream_port: int) -> Path:
    """LiteLLM proxy config: one model served by the same fake upstream, no database."""
    path = workdir / "litellm.yaml"
    path.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: {MODEL}\n"
        f"      api_base: http://127.0.0.1:{upstream_port}/v1\n"
        f"      api_key: {UPSTREAM_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_MASTER_KEY}\n"
    )
    return path


def litellm_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DATABASE_URL"))}
    env.update(
        LITELLM_LOCAL_MODEL_COST_MAP="True",  # no fetch of the price list at start-up
        LITELLM_LOG="ERROR",
        LITELLM_TELEMETRY="False",
        VIRTUAL_ENV=str(PEERS_VENV),
    )
    return env


def litellm_argv(config: Path, port: int) -> list[str]:
    return [
        str(PEERS_VENV / "bin" / "litellm"),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
