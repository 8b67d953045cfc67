"""Shared set-up for failover tests: a fault-injecting OpenAI fake behind a test provider."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fakes import FakeUpstream
from gateway_harness import Gateway, free_port, running_gateway, write_config

POLICY = """
[retry]
max_retries = 2
backoff_initial = 0.05
backoff_max = 0.2
retry_after_cap = 2.0

[timeouts]
request = 4.0
connect = 1.0
response = 0.5
first_token = 0.4
first_token_reasoning = 1.0
stream_idle = 0.3

[circuit]
failure_threshold = 3
failure_rate = 1.0
window = 50
cooldown = 0.5
"""

ACME = """
protocol = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "ACME_API_KEY"

[models.primary]
context_window = 1000
[models.primary.prices]
input = "1.00"
output = "2.00"

[models.backup]
context_window = 4000
[models.backup.prices]
input = "0.50"
output = "1.00"

[models.big]
context_window = 100000

[models.tiny]
context_window = 10

[models.cont]
capabilities = ["prefill"]
"""

DEAD = """
protocol = "openai"
base_url = "http://127.0.0.1:{port}/v1"
api_key_env = "ACME_API_KEY"
[models.m]
"""

NOKEY = """
protocol = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "NOKEY_API_KEY"
[models.m]
"""


@contextmanager
def chaos(tmp_path: Path, extra: str = "") -> Iterator[tuple[FakeUpstream, Gateway]]:
    with FakeUpstream("openai") as fake:
        config = write_config(
            tmp_path,
            extra,
            providers={"acme": ACME, "nokey": NOKEY, "dead": DEAD.format(port=free_port())},
            policy=POLICY,
        )
        env = {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url}
        with running_gateway(config, env) as gw:
            yield fake, gw


def outcomes(fake: FakeUpstream, model: str) -> list[str]:
    return [s.outcome for s in fake.seen_for(model)]


def trail(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f"{a['provider']}/{a['model']}", a["outcome"]) for a in body["error"]["attempts"]]
