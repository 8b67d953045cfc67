"""The Anthropic Messages request: `MessagesBody` decoded and checked, kept raw for an
Anthropic target, and made canonical for every other target.

Native (an Anthropic target): each top-level field of the body as the client wrote it
(`msgspec.Raw`), so blocks and fields this gateway does not know pass through untouched.

Translated (any other target): `system`, text, images (base64 and URL), text documents,
`tool_use` <-> tool calls, `tool_result` (string or blocks; `is_error` as an `Error: ` prefix)
<-> tool messages, custom tools, `tool_choice`, `max_tokens`, `temperature`, `top_p`,
`stop_sequences`. Dropped and named in `x-router-dropped`: every other top-level field
(`thinking`, `metadata`, `top_k`, `output_config`, `context_management`, ...), thinking
blocks of earlier turns, server tools (`tools[i]`) and the `anthropic-beta` header. Where
dropping changes what was asked (a `tool_choice` forcing a server tool, a PDF document) the
request is refused with a 400 naming the field and the target (`Translation.refusal`).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from router.api.parts import CacheControl
from router.core.types import (
    CacheHint,
    ChatRequest,
    ImagePart,
    Message,
    Native,
    Part,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCall,
)
from router.errors import RequestError

TRANSLATED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stream",
        "temperature",
        "top_p",
        "stop_sequences",
        "tools",
        "tool_choice",
    }
)
PASSED_HEADERS = ("anthropic-version", "anthropic-beta")


class InSource(msgspec.Struct, frozen=True):
    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class InBlock(msgspec.Struct, frozen=True):
    """Any content block: `type` decides which fields matter (unknown keys are kept only
    on the native path)."""

    type: str
    text: str | None = None
    source: InSource | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: str | list[InBlock] | None = None
    is_error: bool | None = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None
    cache_control: CacheControl | None = None


class InMessage(msgspec.Struct, frozen=True):
    role: Literal["user", "assistant", "system"]
    content: str | list[InBlock]


class InTool(msgspec.Struct, frozen=True):
    name: str
    type: str | None = None  # None or "custom": a client tool; else a server tool
    description: str | None = None
    input_schema: dict[str, object] | None = None
    cache_control: CacheControl | None = None


class InToolChoice(msgspec.Struct, frozen=True):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class InThinking(msgspec.Struct, frozen=True):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = None


class MessagesBody(msgspec.Struct, frozen=True):
    """What the gateway reads of a Messages request; other fields are Anthropic's to judge."""

    model: str
    messages: list[InMessage]
    max_tokens: int | None = None  # required by /v1/messages, absent from count_tokens
    system: str | list[InBlock] | None = None
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] | None = None
    tools: list[InTool] | None = None
    tool_choice: InToolChoice | None = None
    thinking: InThinking | None = None
    metadata: dict[str, object] | None = None


BODY = msgspec.json.Decoder(MessagesBody)
RAW = msgspec.json.Decoder(dict[str, msgspec.Raw])
_JSON = msgspec.json.Encoder()


class Translation(msgspec.Struct, frozen=True):
    """The request as both paths need it: canonical (`request`, with the native fields),
    what a translated target loses (`dropped`) and what it cannot lose (`refusal`)."""

    request: ChatRequest
    dropped: tuple[str, ...]
    refusal: tuple[str, str] | None  # (field, why) when translating would change the ask


def validate(body: MessagesBody, count: bool) -> None:
    if not count and body.max_tokens is None:
        raise RequestError("missing_field", "max_tokens: Field required", "max_tokens")
    if body.max_tokens is not None and body.max_tokens < 1:
        raise RequestError("invalid_value", "max_tokens: must be at least 1", "max_tokens")
    if not body.messages:
        raise RequestError("invalid_value", "messages: at least one message is required")
    if body.temperature is not None and not 0 <= body.temperature <= 1:
        raise RequestError("invalid_value", "temperature: must be between 0 and 1")


def _cache(c: CacheControl | None) -> CacheHint | None:
    return None if c is None else CacheHint(c.type, c.ttl)


class _Walk:
    """One pass over the messages: canonical messages plus what was dropped or refused."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.dropped: list[str] = []
        self.refusal: tuple[str, str] | None = None

    def system(self, system: str | list[InBlock] | None) -> None:
        if isinstance(system, str):
            self.messages.append(Message("system", (TextPart(system),)))
        elif system:
            parts = [self.part(b, "system", i) for i, b in enumerate(system)]
            self.messages.append(Message("system", tuple(p for p in parts if p is not None)))

    def part(self, b: InBlock, where: str, i: int) -> Part | None:
        if b.type == "text":
            return TextPart(b.text or "", _cache(b.cache_control))
        if b.type == "image" and b.source is not None:
            return self.image(b.source, _cache(b.cache_control))
        if b.type == "document" and b.source is not None and b.source.type == "text":
            return TextPart(b.source.data or "", _cache(b.cache_control))
        if b.type in ("thinking", "redacted_thinking"):
            self.drop("thinking")
            return ThinkingPart(b.thinking or "", b.signature, b.data, origin="anthropic")
        self.refusal = self.refusal or (f"{where}.content[{i}]", f"a `{b.type}` block")
        return None

    def image(self, source: InSource, cache: CacheHint | None) -> ImagePart:
        if source.type == "base64":
            return ImagePart(f"data:{source.media_type};base64,{source.data}", cache=cache)
        return ImagePart(source.url or "", cache=cache)

    def drop(self, name: str) -> None:
        if name not in self.dropped:
            self.dropped.append(name)

    def message(self, m: InMessage, i: int) -> None:
        where = f"messages[{i}]"
        if isinstance(m.content, str):
            self.messages.append(Message(m.role, (TextPart(m.content),)))
            return
        parts: list[Part] = []
        calls: list[ToolCall] = []
        for j, b in enumerate(m.content):
            if b.type == "tool_use":
                calls.append(
                    ToolCall(b.id or "", b.name or "", _JSON.encode(b.input or {}).decode())
                )
            elif b.type == "tool_result":
                self.messages.append(self.tool_result(b, f"{where}.content[{j}]"))
            else:
                part = self.part(b, where, j)
                if part is not None:
                    parts.append(part)
        if parts or calls:
            self.messages.append(Message(m.role, tuple(parts), tuple(calls)))

    def tool_result(self, b: InBlock, where: str) -> Message:
        content = b.content
        if isinstance(content, str) or content is None:
            parts: tuple[Part, ...] = (TextPart(content or ""),)
        else:
            found = [self.part(c, where, k) for k, c in enumerate(content)]
            parts = tuple(p for p in found if p is not None)
        if b.is_error:
            parts = (TextPart("Error: "), *parts)
        return Message("tool", parts, tool_call_id=b.tool_use_id or "")


def _tools(body: MessagesBody, walk: _Walk) -> tuple[Tool, ...]:
    tools: list[Tool] = []
    for i, t in enumerate(body.tools or ()):
        if t.type not in (None, "custom"):
            walk.drop(f"tools[{i}]")
            continue
        tools.append(Tool(t.name, t.description, t.input_schema, _cache(t.cache_control)))
    return tuple(tools)


def _choice(
    choice: InToolChoice | None, tools: tuple[Tool, ...], walk: _Walk
) -> str | dict[str, object] | None:
    if choice is None:
        return None
    if choice.type == "tool":
        if not any(t.name == choice.name for t in tools):
            why = f"a `tool_choice` forcing the server tool `{choice.name}`"
            walk.refusal = walk.refusal or ("tool_choice", why)
            return None
        return {"name": choice.name or ""}
    return {"any": "required"}.get(choice.type, choice.type)


def translate(
    body: MessagesBody, raw: dict[str, msgspec.Raw], headers: tuple[tuple[str, str], ...]
) -> Translation:
    walk = _Walk()
    walk.system(body.system)
    for i, m in enumerate(body.messages):
        walk.message(m, i)
    tools = _tools(body, walk)
    choice = _choice(body.tool_choice, tools, walk)
    for name in raw:
        if name not in TRANSLATED:
            walk.drop(name)
    if any(name == "anthropic-beta" for name, _ in headers):
        walk.drop("anthropic-beta")
    request = ChatRequest(
        messages=tuple(walk.messages),
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_tokens,
        stop=tuple(body.stop_sequences or ()),
        tools=tools,
        tool_choice=choice,
        native=Native("anthropic", dict[str, object](raw), headers),
    )
    return Translation(request, tuple(walk.dropped), walk.refusal)
