"""Recorded real traffic for the protocol tests, and a codec driven over real loopback HTTP.

    rec = recorded("TestAnthropicThinking/claude-sonnet-4/thinking", 0)
    fake.script("claude-sonnet-4", replay(rec))       # the fake answers the recorded bytes
    events = await run(AnthropicMessages(), target(fake, "anthropic", ...), request, stream)

`recorded` (in fakes.cassettes, the one loader) reads one interaction of a go-vcr cassette in
tests/data/recorded/fantasy: the request body decoded, the response body and content type raw.
`replay` makes a `FakeUpstream` serve exactly that response (a scripted 200 "status" fault
with the recorded body). `run` sends one request through the real `Upstream` (aiohttp, SSE
splitting, watchdog) and returns the canonical events, flattened.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import msgspec

from fakes import FakeUpstream, Fault
from fakes.cassettes import Interaction
from kit import DONE, payloads, streamed_text
from router.config import ModelInfo, Prices, Provider, Timeouts
from router.core.types import ChatRequest, Event, Message, Target, TextPart
from router.protocols.backend import HttpBackend
from router.protocols.base import Codec
from router.upstream import Upstream


def replay(rec: Interaction) -> Fault:
    return Fault.status(200, rec.body, {"Content-Type": rec.content_type})


def event_stream(body: bytes) -> Fault:
    """A 200 event stream with exactly `body`."""
    return Fault.status(200, body, {"Content-Type": "text/event-stream"})


def target(
    fake: FakeUpstream,
    protocol: str,
    model: str,
    *,
    key: str = "sk-test",
    api_version: str | None = None,
    **info: Any,
) -> Target:
    """A target on `fake` as the catalog would build it; `info` fields go to ModelInfo."""
    prices = info.pop("prices", None)
    model_info = ModelInfo(**info, prices=msgspec.convert(prices or {}, Prices))
    provider = Provider(
        name=protocol,
        protocol=protocol,
        base_url=fake.url,
        api_key_env="TEST_KEY",
        api_version=api_version,
        models={model: model_info},
    )
    return Target(provider, model, model_info, key)


def chat_request(text: str, system: str | None = None, **fields: Any) -> ChatRequest:
    """A one-question request, optionally with a system prompt."""
    messages = [Message("user", (TextPart(text),))]
    if system is not None:
        messages.insert(0, Message("system", (TextPart(system),)))
    return ChatRequest(messages=tuple(messages), **fields)


async def run(codec: Codec, where: Target, request: ChatRequest, stream: bool) -> list[Event]:
    """One request through the real upstream session: every canonical event, in order."""
    upstream = Upstream.create(Timeouts(first_token=5, stream_idle=5, response=5))
    backend = HttpBackend(codec, upstream)
    try:
        if not stream:
            return await backend.complete(where, request, 5)
        out: list[Event] = []
        async for batch in backend.stream(where, request, 5):
            out.extend(batch)
        return out
    finally:
        await upstream.close()


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def answer(r: httpx.Response, stream: bool) -> tuple[str, dict[str, Any]]:
    """(text, usage) of a plain or streamed Iron Labs answer, money as exact Decimals."""
    if not stream:
        body = r.json(parse_float=Decimal)
        return body["message"]["content"][0]["text"], body["usage"]
    decoded = [e for e in payloads(r, money=True) if e != DONE]
    assert decoded[-1]["type"] == "response", decoded[-1]
    text = streamed_text(decoded)
    assert text == decoded[-1]["message"]["content"][0]["text"]
    return text, decoded[-1]["usage"]


def costs(input_cost: str, output_cost: str) -> dict[str, Decimal]:
    """The `costs` object of an answer, from the expected input and output costs."""
    i, o = Decimal(input_cost), Decimal(output_cost)
    return {"input_tokens_cost": i, "output_tokens_cost": o, "total_tokens_cost": i + o}
