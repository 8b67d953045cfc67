"""Set-up for the OpenAI-compatible surface's tests: the gateway in front of fake upstreams.

    openai     the repository's `providers/openai.toml`, pointed at an OpenAI fake
    acme       a second OpenAI-compatible provider (its own fake) with a model of every type
    anthropic  the repository's `providers/anthropic.toml`, pointed at an Anthropic fake

Clients are the official `openai` SDK, sync and async, with the SDK's own retries off so
that every retry seen is the gateway's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
from openai import AsyncOpenAI, OpenAI

from fakes import FakeUpstream
from gateway_harness import MASTER_KEY, Gateway, running_gateway, write_config

ACME = """
protocol = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "ACME_API_KEY"

[models."gpt-4o-mini"]
context_window = 128000
[models."gpt-4o-mini".prices]
input = "1.00"
output = "2.00"

[models."text-embedding-3-small"]
type = "embedding"
[models."text-embedding-3-small".prices]
input = "0.02"
output = "0"

[models."gpt-image-1"]
type = "image"
[models."gpt-image-1".prices]
per_image = "0.04"

[models."tts-1"]
type = "speech"
[models."tts-1".prices]
per_1m_characters = "15.00"

[models."whisper-1"]
type = "transcription"
[models."whisper-1".prices]
per_second = "0.0001"
"""

ROUTING = """
[routing]
preference = ["openai", "acme", "anthropic"]

[aliases]
smart = ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-20250514"]
embed = ["openai/text-embedding-3-small", "acme/text-embedding-3-small"]
"""

CLAUDE = "anthropic/claude-sonnet-4-20250514"


class Env(msgspec.Struct):
    gw: Gateway
    openai: FakeUpstream
    acme: FakeUpstream
    anthropic: FakeUpstream
    clients: list[OpenAI] = []

    def client(self, key: str = MASTER_KEY) -> OpenAI:
        """A sync client, closed when the environment ends."""
        client = OpenAI(base_url=self.gw.url + "/v1", api_key=key, max_retries=0, timeout=20)
        self.clients.append(client)
        return client

    def async_client(self, key: str = MASTER_KEY) -> AsyncOpenAI:
        """An async client: use it as `async with env.async_client() as client`."""
        return AsyncOpenAI(base_url=self.gw.url + "/v1", api_key=key, max_retries=0, timeout=20)


@contextmanager
def openai_env(tmp_path: Path, extra: str = "") -> Iterator[Env]:
    with (
        FakeUpstream("openai") as oa,
        FakeUpstream("openai") as acme,
        FakeUpstream("anthropic") as claude,
    ):
        config = write_config(tmp_path, ROUTING + extra, providers={"acme": ACME})
        env = {
            "OPENAI_API_KEY": "sk-upstream-openai",
            "OPENAI_BASE_URL": oa.url,
            "ACME_API_KEY": "sk-upstream-acme",
            "ACME_BASE_URL": acme.url,
            "ANTHROPIC_API_KEY": "sk-upstream-anthropic",
            "ANTHROPIC_BASE_URL": claude.url,
        }
        with running_gateway(config, env) as gw:
            e = Env(gw, oa, acme, claude, [])
            try:
                yield e
            finally:
                for client in e.clients:
                    client.close()
