"""Anthropic Messages on the wire: the request body and the answers, as msgspec Structs,
with their encoder and decoders built once. `router.protocols.anthropic` translates.
"""

from __future__ import annotations

from typing import Any

import msgspec

from router.protocols.anthropic_search import Citation, ServerTool

# ---- wire types: what we send ----------------------------------------------------------------


class Block(msgspec.Struct, omit_defaults=True, tag_field="type"):
    pass


class Text(Block, tag="text"):
    text: str


class Source(msgspec.Struct, omit_defaults=True):
    type: str  # "base64" | "url"
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class Image(Block, tag="image"):
    source: Source


class ToolUse(Block, tag="tool_use"):
    id: str
    name: str
    input: dict[str, Any]


class ToolResult(Block, tag="tool_result"):
    tool_use_id: str
    content: list[Text]


class ThinkingBlock(Block, tag="thinking"):
    thinking: str
    signature: str


class RedactedThinking(Block, tag="redacted_thinking"):
    data: str


class Turn(msgspec.Struct):
    role: str
    content: list[Block]


class ToolSpec(msgspec.Struct, omit_defaults=True):
    name: str
    input_schema: dict[str, object]
    description: str | None = None


class ToolChoice(msgspec.Struct, frozen=True, omit_defaults=True):
    type: str  # auto | any | tool | none
    name: str | None = None


class Thinking(msgspec.Struct):
    budget_tokens: int
    type: str = "enabled"


class Body(msgspec.Struct, omit_defaults=True):
    model: str
    max_tokens: int
    messages: list[Turn]
    system: list[Text] | None = None
    stream: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] | None = None
    tools: list[ToolSpec | ServerTool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    metadata: dict[str, str] | None = None


# ---- wire types: what comes back ---------------------------------------------------------------


class ServerToolUsage(msgspec.Struct):
    web_search_requests: int = 0


class Usage(msgspec.Struct):
    """Absent fields stay None, so a `message_delta` only overrides what it reports."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    server_tool_use: ServerToolUsage | None = None


class OutBlock(msgspec.Struct):
    type: str
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None  # of a `redacted_thinking` block
    id: str | None = None
    name: str | None = None
    input: msgspec.Raw = msgspec.Raw()
    content: msgspec.Raw = msgspec.Raw()  # of a `web_search_tool_result` block
    citations: list[Citation] | None = None


class Answer(msgspec.Struct):
    content: list[OutBlock] = []
    stop_reason: str | None = None
    usage: Usage | None = None
    input_tokens: int | None = None  # a `count_tokens` answer


class Delta(msgspec.Struct):
    type: str = ""
    text: str | None = None
    thinking: str | None = None
    partial_json: str | None = None
    signature: str | None = None
    stop_reason: str | None = None  # of a `message_delta`
    citation: Citation | None = None  # of a `citations_delta`


class ErrorBody(msgspec.Struct):
    type: str = ""
    message: str = ""


class StreamEvent(msgspec.Struct):
    """Any stream event (and an error body): each type fills its own fields."""

    type: str = ""
    index: int = 0
    message: Answer | None = None
    content_block: OutBlock | None = None
    delta: Delta | None = None
    usage: Usage | None = None
    error: ErrorBody | None = None


ENCODER = msgspec.json.Encoder()
ARGS = msgspec.json.Decoder(dict[str, Any])
MESSAGE = msgspec.json.Decoder(Answer)
EVENT = msgspec.json.Decoder(StreamEvent)
