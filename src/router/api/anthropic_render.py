"""Anthropic Messages answers, rendered from canonical events: the content blocks of one
answer (`Blocks`, one state machine for streamed and whole answers), the `message` object,
and the stream's events (`message_start`, `ping`, `content_block_start` / `_delta` /
`_stop`, `message_delta`, `message_stop`, `error`).

Thinking is rendered only from an Anthropic target (it carries Anthropic's signature, which
the client sends back); another provider's reasoning is left out, since a thinking block
without a valid signature would be refused when the conversation returns to Anthropic.
"""

from __future__ import annotations

from typing import Any

import msgspec

from router.core.types import Completion, Event, ReasoningDelta, TextDelta, ToolCallDelta
from router.ids import hex_id

ENCODER = msgspec.json.Encoder()
_ARGS = msgspec.json.Decoder(dict[str, Any])


class OText(msgspec.Struct, tag="text", tag_field="type"):
    text: str


class OThinking(msgspec.Struct, tag="thinking", tag_field="type"):
    thinking: str
    signature: str


class ORedacted(msgspec.Struct, tag="redacted_thinking", tag_field="type"):
    data: str


class OToolUse(msgspec.Struct, tag="tool_use", tag_field="type"):
    id: str
    name: str
    input: dict[str, Any]


OBlock = OText | OThinking | ORedacted | OToolUse


class DText(msgspec.Struct, tag="text_delta", tag_field="type"):
    text: str


class DThinking(msgspec.Struct, tag="thinking_delta", tag_field="type"):
    thinking: str


class DSignature(msgspec.Struct, tag="signature_delta", tag_field="type"):
    signature: str


class DJson(msgspec.Struct, tag="input_json_delta", tag_field="type"):
    partial_json: str


ODelta = DText | DThinking | DSignature | DJson


class Start(msgspec.Struct, tag="content_block_start", tag_field="type"):
    index: int
    content_block: OBlock


class Delta(msgspec.Struct, tag="content_block_delta", tag_field="type"):
    index: int
    delta: ODelta


class Stop(msgspec.Struct, tag="content_block_stop", tag_field="type"):
    index: int


Op = Start | Delta | Stop


class OUsage(msgspec.Struct):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class OMessage(msgspec.Struct, kw_only=True):
    id: str
    type: str = "message"
    role: str = "assistant"
    model: str
    content: list[OBlock]
    stop_reason: str | None
    stop_sequence: None = None
    usage: OUsage


_STOP = {"length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


def new_id() -> str:
    return "msg_" + hex_id(24)


def stop_reason(completion: Completion) -> str:
    if completion.tool_calls and completion.finish in ("stop", "tool_calls"):
        return "tool_use"
    return _STOP.get(completion.finish, "end_turn")


def usage_of(completion: Completion) -> OUsage:
    """Anthropic's split: `input_tokens` excludes cache reads and writes."""
    u = completion.usage
    fresh = u.prompt_tokens - u.cached_tokens - u.cache_write_tokens
    return OUsage(max(fresh, 0), u.completion_tokens, u.cache_write_tokens, u.cached_tokens)


class Blocks:
    """Canonical events -> content block operations, one block open at a time."""

    __slots__ = ("count", "kind", "thinking", "tools")

    def __init__(self, thinking: bool) -> None:
        self.thinking = thinking  # render reasoning (only an Anthropic target's)
        self.count = 0  # blocks started; the open one is `count - 1`
        self.kind: str | None = None  # the open block's type
        self.tools: dict[int, int] = {}  # tool call ordinal -> its block index

    def ops(self, batch: list[Event]) -> list[Op]:
        out: list[Op] = []
        for e in batch:
            if type(e) is TextDelta:
                if e.text:
                    self._open("text", OText(""), out)
                    out.append(Delta(self.count - 1, DText(e.text)))
            elif type(e) is ReasoningDelta:
                if self.thinking:
                    self._reasoning(e, out)
            elif type(e) is ToolCallDelta:
                self._tool(e, out)
        return out

    def close(self) -> list[Op]:
        out: list[Op] = []
        self._close(out)
        return out

    def _reasoning(self, e: ReasoningDelta, out: list[Op]) -> None:
        if e.redacted is not None:
            self._close(out)
            self._open("redacted", ORedacted(e.redacted), out)
            self._close(out)
            return
        if e.text:
            self._open("thinking", OThinking("", ""), out)
            out.append(Delta(self.count - 1, DThinking(e.text)))
        if e.signature:
            self._open("thinking", OThinking("", ""), out)
            out.append(Delta(self.count - 1, DSignature(e.signature)))
            self.kind = "signed"  # a signature ends the block: more thinking is a new one

    def _tool(self, e: ToolCallDelta, out: list[Op]) -> None:
        if e.index not in self.tools or e.id is not None:
            self._close(out)
            self._open("tool", OToolUse(e.id or "", e.name or "", {}), out)
            self.tools[e.index] = self.count - 1
        if e.arguments:
            out.append(Delta(self.tools[e.index], DJson(e.arguments)))

    def _open(self, kind: str, block: OBlock, out: list[Op]) -> None:
        if self.kind == kind:
            return
        self._close(out)
        out.append(Start(self.count, block))
        self.count += 1
        self.kind = kind

    def _close(self, out: list[Op]) -> None:
        if self.kind is not None:
            out.append(Stop(self.count - 1))
            self.kind = None


def whole(ops: list[Op]) -> list[OBlock]:
    """The content of a whole answer from its block operations."""
    blocks: list[OBlock] = []
    pieces: list[list[str]] = []
    for op in ops:
        if type(op) is Start:
            blocks.append(op.content_block)
            pieces.append([])
        elif type(op) is Delta:
            _apply(blocks, pieces, op)
    for block, parts in zip(blocks, pieces, strict=True):
        if type(block) is OToolUse:
            block.input = _input("".join(parts))
    return blocks


def _apply(blocks: list[OBlock], pieces: list[list[str]], op: Delta) -> None:
    block, delta = blocks[op.index], op.delta
    if type(delta) is DText and type(block) is OText:
        block.text += delta.text
    elif type(delta) is DThinking and type(block) is OThinking:
        block.thinking += delta.thinking
    elif type(delta) is DSignature and type(block) is OThinking:
        block.signature = delta.signature
    elif type(delta) is DJson:
        pieces[op.index].append(delta.partial_json)


def _input(text: str) -> dict[str, Any]:
    try:
        return _ARGS.decode(text or "{}")
    except msgspec.DecodeError:  # also JSON that is not an object
        return {}


def event(name: bytes, payload: object) -> bytes:
    return b"event: " + name + b"\ndata: " + ENCODER.encode(payload) + b"\n\n"


_NAMES = {Start: b"content_block_start", Delta: b"content_block_delta", Stop: b"content_block_stop"}


def frames(ops: list[Op]) -> bytes:
    return b"".join(event(_NAMES[type(op)], op) for op in ops)
