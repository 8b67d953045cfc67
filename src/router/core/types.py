"""Canonical types: the one internal request and the one stream of events.

Both public surfaces decode into `ChatRequest` and render from `Event`s; every wire protocol
translates to and from them. Nothing here knows about HTTP or any provider.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

Role = Literal["system", "user", "assistant", "tool"]


class TextPart(msgspec.Struct, frozen=True, tag="text"):
    text: str


class ImagePart(msgspec.Struct, frozen=True, tag="image"):
    """An image by URL (http(s) or a `data:` URL); `detail` is OpenAI's hint."""

    url: str
    detail: str | None = None

    def inline(self) -> tuple[str, str] | None:
        """(media type, base64 data) for a `data:` URL, else None."""
        if not self.url.startswith("data:"):
            return None
        header, _, data = self.url[5:].partition(",")
        return header.split(";", 1)[0] or "application/octet-stream", data


Part = TextPart | ImagePart


class ToolCall(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: str  # JSON text, as the model produced it


class Tool(msgspec.Struct, frozen=True):
    name: str
    description: str | None = None
    parameters: dict[str, object] | None = None  # JSON Schema, passed through untouched


class Message(msgspec.Struct, frozen=True):
    role: Role
    content: tuple[Part, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # for role "tool"
    name: str | None = None

    def text(self) -> str:
        return "".join(p.text for p in self.content if type(p) is TextPart)


class ChatRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a protocol adapter needs to build one upstream request."""

    messages: tuple[Message, ...]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: str | dict[str, object] | None = (
        None  # "auto" | "none" | "required" | {"name": ...}
    )
    response_format: dict[str, object] | None = None
    user: str | None = None
    reasoning_effort: str | None = None
    thinking_budget: int | None = None
    prefill: str | None = None  # continue this partial assistant answer (stream rescue)


# ---- stream events -------------------------------------------------------------------------


class TextDelta(msgspec.Struct, frozen=True, gc=False):
    text: str


class ReasoningDelta(msgspec.Struct, frozen=True, gc=False):
    text: str


class ToolCallDelta(msgspec.Struct, frozen=True, gc=False):
    """A piece of a tool call: `id`/`name` on its first piece, `arguments` appended."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class Usage(msgspec.Struct, frozen=True, gc=False):
    """Normalised token counts. `prompt_tokens` includes cached and cache-write tokens;
    `completion_tokens` includes `reasoning_tokens`, whatever the protocol reported."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


class Finish(msgspec.Struct, frozen=True, gc=False):
    reason: FinishReason = "stop"


Event = TextDelta | ReasoningDelta | ToolCallDelta | Usage | Finish


# ---- outcomes -------------------------------------------------------------------------------


class Attempt(msgspec.Struct, frozen=True):
    """One line of the attempt trail."""

    provider: str
    model: str
    outcome: str  # "ok" or a `router.errors.Failure` value
    status: int | None = None
    ms: int = 0
    reason: str | None = None
    tokens: int | None = None  # consumed by a stream that broke (estimated)
    cost: Decimal | None = None  # what those tokens cost, from the catalog


class Costs(msgspec.Struct, frozen=True):
    input_tokens_cost: Decimal
    output_tokens_cost: Decimal
    total_tokens_cost: Decimal


class Completion(msgspec.Struct, kw_only=True):
    """A finished answer, accumulated from events, with the facts the surfaces report."""

    provider: str
    model: str
    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = []
    usage: Usage = Usage()
    finish: FinishReason = "stop"
    costs: Costs | None = None
    attempts: list[Attempt] = []
    latency_ms: int = 0
    ttft_ms: int = 0
