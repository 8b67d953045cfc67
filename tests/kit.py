"""The test kit: the one POST helper and the one SSE parser every test uses.

    r = post(gw, "/v1/chat/completions", {"model": "acme/m", "messages": USER}, stream=True)
    assert payloads(r)[-1] == DONE
    r = ask(gw, ["acme/primary"], stream=True)           # Iron Labs shorthand over `post`
    text = streamed_text(payloads(r))
    assert attempts(r) == [("acme/primary", "ok", "200")]  # x-router-attempts, times checked

`sse` reads a whole text/event-stream body as the SSE spec says: `event:` and `data:` fields,
comment lines (`: ping`) skipped, multi-line data joined, blank lines ending an event, and the
data decoded as JSON (`[DONE]` kept as the string). The fakes' default replies come from the
one cassette loader, `fakes.cassettes`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

import httpx
import msgspec

DONE = "[DONE]"
COMPLETIONS = "/api/v1/completions"

PORTUGUESE = [
    {"role": "system", "content": "You are a helpful assistant"},
    {"role": "user", "content": "Say hi in Portuguese"},
]
"""The conversation of the recorded cassettes in tests/data/recorded."""


class Reachable(Protocol):
    """A running gateway (in-process or a `router serve` process): its URL and the headers
    that carry the master key."""

    url: str
    headers: dict[str, str]


def post(
    at: Reachable | str,
    path: str,
    body: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    stream: bool | None = None,
    timeout: float = 30,
) -> httpx.Response:
    """POST `body` as JSON to `path` on a gateway (or a base URL).

    `stream`, when given, is set in the body. `headers` replace the default ones: the
    gateway's master key, or none for a bare URL.
    """
    base, default = (at, {}) if isinstance(at, str) else (at.url, at.headers)
    sent = dict(body) if stream is None else {**body, "stream": stream}
    sent_headers = default if headers is None else headers
    return httpx.post(base + path, json=sent, headers=dict(sent_headers), timeout=timeout)


def ask(
    gw: Reachable | str,
    models: list[str],
    *,
    stream: bool = False,
    text: str = "hello",
    messages: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
    **fields: Any,
) -> httpx.Response:
    """POST /api/v1/completions: one user `text` (or `messages`) to `models`, plus `fields`."""
    said = messages if messages is not None else [{"role": "user", "content": text}]
    body = {"messages": said, "models": models, **fields}
    return post(gw, COMPLETIONS, body, headers=headers, stream=stream, timeout=timeout)


class Answered(Protocol):
    """A response: httpx's, or an SDK's raw one (the `anthropic` SDK vendors its own httpx)."""

    @property
    def headers(self) -> Mapping[str, str]: ...


class Sse(msgspec.Struct, frozen=True):
    """One server-sent event: its `event:` name (None when absent) and its decoded `data`."""

    event: str | None
    data: Any


_JSON = msgspec.json.Decoder()
_MONEY = msgspec.json.Decoder(float_hook=Decimal)
_LINES = re.compile(r"\r\n|\r|\n")


def sse(source: str | bytes | httpx.Response, *, money: bool = False) -> list[Sse]:
    """Every event of an event-stream body, in order; `money` decodes numbers as Decimals.

    An event without data (a bare `event:` or a comment) is skipped, and so is a last event
    that no blank line ended (the spec's rule: a stream cut mid-event shows the events before).
    """
    if isinstance(source, httpx.Response):
        source = source.text
    text = source.decode() if isinstance(source, bytes) else source
    decoder = _MONEY if money else _JSON
    out: list[Sse] = []
    event: str | None = None
    data: list[str] = []
    for line in _LINES.split(text):
        if not line:
            if data:
                joined = "\n".join(data)
                out.append(Sse(event, joined if joined == DONE else decoder.decode(joined)))
            event, data = None, []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
    return out


def payloads(source: str | bytes | httpx.Response, *, money: bool = False) -> list[Any]:
    """The decoded `data` of every event of a stream, `[DONE]` kept as the string."""
    return [e.data for e in sse(source, money=money)]


def frames(source: str | bytes | httpx.Response) -> list[Any]:
    """The decoded `data` of every event but the `[DONE]` terminator."""
    return [d for d in payloads(source) if d != DONE]


def names(source: str | bytes | httpx.Response) -> list[str | None]:
    """The `event:` name of every event (None where it has none)."""
    return [e.event for e in sse(source)]


_ATTEMPT = re.compile(r"(\S+) (\S+) (\S+) \d+ms(?: after \d+ms)?(?: hedged)?")


def attempts(source: str | Answered) -> list[tuple[str, str, str]]:
    """(target, outcome, status) of each entry of `x-router-attempts` (of a response, or the
    header's text), each entry checked to be `target outcome status Nms [after Nms] [hedged]`;
    the times vary from run to run, so they are checked for shape only."""
    header = source if isinstance(source, str) else source.headers["x-router-attempts"]
    found = [_ATTEMPT.fullmatch(e) for e in header.split(", ") if header]
    assert all(found), header
    return [(m[1], m[2], m[3]) for m in found if m]


def spent(source: str | Answered) -> list[int]:
    """How long (ms) each attempt of `x-router-attempts` took, by the gateway's own clock: for
    a timeout the real clock is the behaviour, so this is the figure to bound."""
    header = source if isinstance(source, str) else source.headers["x-router-attempts"]
    attempts(header)  # the shape, checked
    return [int(e.split(" ")[3].removesuffix("ms")) for e in header.split(", ")]


def streamed_text(events: list[Any]) -> str:
    """The text of an Iron Labs stream: its `text` events' texts, joined."""
    return "".join(e["text"] for e in events if isinstance(e, dict) and e.get("type") == "text")
