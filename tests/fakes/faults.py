"""What a fake upstream does with one request: a `Fault` (success or failure), as a frozen value.

A test scripts a queue of these per model (`FakeUpstream.script`); the server renders each in the
wire dialect of its protocol, so the same `Fault.rate_limited()` becomes an OpenAI, Anthropic,
Gemini or Azure 429 with that provider's real body. `Fault.ok()` with no text replays a recorded
reply (see `fakes.cassettes`); with text it generates one.

Token accounting used everywhere (`Usage`): `prompt` counts *all* input tokens, cached ones
included (OpenAI semantics); `completion` counts *all* output tokens, reasoning included.
Each dialect converts: Anthropic `input_tokens = prompt - cached - cache_write`; Gemini
`candidatesTokenCount = completion - reasoning`, `thoughtsTokenCount = reasoning`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

DEFAULT_PROMPT_TOKENS = 10
"""Prompt tokens reported for a generated reply when the test gives no `usage`."""

Kind = Literal[
    "ok",
    "status",
    "rate_limited",
    "overloaded",
    "context_length",
    "content_policy",
    "invalid_key",
    "reset",
    "silent",
    "slow_first_token",
    "cut",
    "stall",
    "malformed",
    "stream_error",
    "no_done",
]


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Token counts of one reply (see the module docstring for what each includes)."""

    prompt: int
    completion: int
    cached: int = 0
    reasoning: int = 0
    cache_write: int = 0

    @property
    def total(self) -> int:
        return self.prompt + self.completion

    @classmethod
    def of(cls, value: UsageLike) -> Usage:
        """Accept a Usage, a `(prompt, completion)` tuple or a dict of Usage field names."""
        if isinstance(value, Usage):
            return value
        if isinstance(value, Mapping):
            return msgspec.convert(dict(value), Usage)
        prompt, completion = value
        return cls(prompt=prompt, completion=completion)

    @classmethod
    def default_for(cls, text: str, reasoning: str | None = None) -> Usage:
        """The usage of a generated reply: one token per word, DEFAULT_PROMPT_TOKENS of prompt."""
        thought = len(reasoning.split()) if reasoning else 0
        return cls(
            prompt=DEFAULT_PROMPT_TOKENS,
            completion=max(1, len(text.split())) + thought,
            reasoning=thought,
        )


UsageLike = Usage | tuple[int, int] | Mapping[str, int]


class ToolCall(msgspec.Struct, frozen=True):
    """One function call the fake model makes; `id` is used as-is by every dialect."""

    name: str
    arguments: dict[str, Any]
    id: str = "call_fake_0"


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """The content of a success. With nothing but delays given, the recorded reply is replayed;
    with usage/reasoning/chunks but no text, the recorded text is generated afresh."""

    text: str | None = None
    chunks: int | tuple[str, ...] | None = None
    usage: Usage | None = None
    reasoning: str | None = None
    tool_call: ToolCall | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0

    @property
    def recorded(self) -> bool:
        return (self.text, self.tool_call, self.usage, self.reasoning, self.chunks) == (None,) * 5

    def pieces(self) -> list[str]:
        """The text split for streaming: `chunks` pieces, or one piece per word by default."""
        return split_text(self.text or "", self.chunks)

    def reasoning_pieces(self) -> list[str]:
        return split_text(self.reasoning or "", None)

    def final_usage(self) -> Usage:
        return self.usage or Usage.default_for(self.text or "", self.reasoning)


def split_text(text: str, chunks: int | Sequence[str] | None) -> list[str]:
    """Split text into stream pieces whose concatenation is exactly `text`."""
    if not text:
        return []
    if chunks is not None and not isinstance(chunks, int):
        pieces = list(chunks)
        if "".join(pieces) != text:
            raise ValueError("explicit chunks must concatenate to the text")
        return pieces
    if chunks is None:
        words = re.findall(r"\s*\S+", text)
        tail = text[len("".join(words)) :]
        if tail and words:
            words[-1] += tail
        return words or [text]
    size = -(-len(text) // max(1, chunks))
    return [text[i : i + size] for i in range(0, len(text), size)]


class Fault(msgspec.Struct, frozen=True, kw_only=True):
    """One scripted behaviour of a fake upstream; build it with the constructors below."""

    kind: Kind
    reply: Reply = Reply()
    code: int = 200
    body: bytes | str | dict[str, Any] | list[Any] | None = None
    headers: dict[str, str] = {}
    after_chunks: int = 0
    delay: float = 0.0
    preamble: bool = True
    retry_delay: float | None = None

    # -- successes ---------------------------------------------------------------------------

    @classmethod
    def ok(
        cls,
        text: str | None = None,
        chunks: int | Sequence[str] | None = None,
        usage: UsageLike | None = None,
        reasoning: str | None = None,
        delay: float = 0.0,
        chunk_delay: float = 0.0,
        tool_call: ToolCall | tuple[str, dict[str, Any]] | None = None,
    ) -> Fault:
        """A 200. `delay` precedes the response headers, `chunk_delay` each stream frame."""
        call = ToolCall(*tool_call) if isinstance(tool_call, tuple) else tool_call
        reply = Reply(
            text=text,
            chunks=chunks if chunks is None or isinstance(chunks, int) else tuple(chunks),
            usage=None if usage is None else Usage.of(usage),
            reasoning=reasoning,
            tool_call=call,
            delay=delay,
            chunk_delay=chunk_delay,
        )
        return cls(kind="ok", reply=reply)

    # -- HTTP errors (bodies in each provider's real shape unless `body` is given) -------------

    @classmethod
    def status(
        cls,
        code: int,
        body: bytes | str | dict[str, Any] | list[Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        return cls(kind="status", code=code, body=body, headers=dict(headers or {}))

    @classmethod
    def rate_limited(
        cls,
        retry_after: float | None = None,
        retry_after_ms: int | None = None,
        retry_delay: float | None = None,
    ) -> Fault:
        """429. `retry_after` -> `retry-after` header (seconds), `retry_after_ms` ->
        `retry-after-ms` header (OpenAI SDK), `retry_delay` -> Gemini RetryInfo in the body."""
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["retry-after"] = _number(retry_after)
        if retry_after_ms is not None:
            headers["retry-after-ms"] = str(retry_after_ms)
        return cls(kind="rate_limited", code=429, headers=headers, retry_delay=retry_delay)

    @classmethod
    def overloaded(cls) -> Fault:
        """Anthropic 529 overloaded_error; 503 for the other protocols."""
        return cls(kind="overloaded", code=503)

    @classmethod
    def context_length(cls) -> Fault:
        return cls(kind="context_length", code=400)

    @classmethod
    def content_policy(cls) -> Fault:
        """OpenAI 400 content_policy_violation, Azure 400 content_filter; Anthropic and
        Gemini answer 200 with a refusal (`stop_reason: "refusal"`, `promptFeedback`)."""
        return cls(kind="content_policy", code=400)

    @classmethod
    def invalid_key(cls) -> Fault:
        """OpenAI/Azure/Anthropic 401; Gemini 400 INVALID_ARGUMENT reason API_KEY_INVALID."""
        return cls(kind="invalid_key", code=401)

    # -- transport faults ---------------------------------------------------------------------

    @classmethod
    def reset(cls) -> Fault:
        """Read the request, then abort the TCP connection without sending a byte."""
        return cls(kind="reset")

    @classmethod
    def silent(cls) -> Fault:
        """Read the request and never answer (until the client leaves or the server stops)."""
        return cls(kind="silent")

    @classmethod
    def slow_first_token(
        cls, delay: float, reply: Fault | None = None, preamble: bool = True
    ) -> Fault:
        """Stream: headers (and, with `preamble`, the frames before any content, e.g.
        Anthropic's message_start), then `delay` seconds, then the rest.
        Non-stream: `delay` seconds before the response."""
        return cls(kind="slow_first_token", reply=_content(reply), delay=delay, preamble=preamble)

    @classmethod
    def cut(cls, after_chunks: int, reply: Fault | None = None) -> Fault:
        """Stream: N content frames, then abort the connection (no terminator).
        Non-stream: half the body (Content-Length promises all of it), then abort."""
        return cls(kind="cut", reply=_content(reply), after_chunks=after_chunks)

    @classmethod
    def stall(cls, after_chunks: int, reply: Fault | None = None) -> Fault:
        """Stream: N content frames, then hang without closing. Non-stream: half, then hang."""
        return cls(kind="stall", reply=_content(reply), after_chunks=after_chunks)

    @classmethod
    def malformed(cls, after_chunks: int, reply: Fault | None = None) -> Fault:
        """Stream: N content frames, one frame of invalid JSON, then a clean end.
        Non-stream: a 200 whose body is truncated JSON."""
        return cls(kind="malformed", reply=_content(reply), after_chunks=after_chunks)

    @classmethod
    def stream_error(cls, after_chunks: int, reply: Fault | None = None) -> Fault:
        """Stream: N content frames, then the provider's in-stream error event (Anthropic
        `event: error` overloaded_error, OpenAI `data: {"error": ...}`, Gemini `data:
        {"error": ...}` INTERNAL), then a clean end. Non-stream: same as ok."""
        return cls(kind="stream_error", reply=_content(reply), after_chunks=after_chunks)

    @classmethod
    def no_done(cls, reply: Fault | None = None) -> Fault:
        """Stream: the complete answer with usage, ending cleanly without `data: [DONE]`
        (OpenAI, Azure) / `message_stop` (Anthropic). Gemini has no terminator: same as ok."""
        return cls(kind="no_done", reply=_content(reply))


def _content(reply: Fault | None) -> Reply:
    if reply is None:
        return Reply()
    if reply.kind != "ok":
        raise ValueError("reply= takes a Fault.ok(...)")
    return reply.reply


def _number(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)
