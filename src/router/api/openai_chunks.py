"""OpenAI's `chat.completion.chunk` frames, pre-encoded (`Chunks`), and the usage object
shared by the whole answer and the usage chunk."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from router.api.common import ENCODER
from router.core.types import (
    Completion,
    Event,
    Logprobs,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)


class OutFunction(msgspec.Struct):
    name: str
    arguments: str


class PromptDetails(msgspec.Struct):
    cached_tokens: int
    audio_tokens: int = 0


class CompletionDetails(msgspec.Struct):
    reasoning_tokens: int
    audio_tokens: int = 0
    accepted_prediction_tokens: int = 0
    rejected_prediction_tokens: int = 0


class OutUsage(msgspec.Struct, kw_only=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptDetails
    completion_tokens_details: CompletionDetails
    cost: Decimal | msgspec.UnsetType = msgspec.UNSET  # USD, when the catalog prices the model


class UsageChunk(msgspec.Struct, kw_only=True):
    id: str
    object: str = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: None = None
    choices: tuple[()] = ()
    usage: OutUsage


def out_usage(completion: Completion) -> OutUsage:
    u = completion.usage
    costs = completion.costs
    return OutUsage(
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        total_tokens=u.total_tokens,
        prompt_tokens_details=PromptDetails(u.cached_tokens),
        completion_tokens_details=CompletionDetails(u.reasoning_tokens),
        cost=costs.total_tokens_cost if costs is not None else msgspec.UNSET,
    )


# ---- stream -------------------------------------------------------------------------------


class _ToolHead(msgspec.Struct, kw_only=True):
    index: int
    id: str
    type: str = "function"
    function: OutFunction


class _ToolArgs(msgspec.Struct):
    arguments: str


class _ToolMore(msgspec.Struct):
    index: int
    function: _ToolArgs


class Chunks:
    """Pre-encoded `chat.completion.chunk` frames for one stream: everything around the delta
    is built once, so each event costs one small encode and a few byte joins."""

    __slots__ = (
        "created",
        "done_tail",
        "head",
        "heads",
        "ident",
        "include_usage",
        "model",
        "prefix",
        "tail",
    )

    def __init__(self, ident: str, created: int, model: str, include_usage: bool) -> None:
        self.ident, self.created, self.model = ident, created, model
        self.include_usage = include_usage
        self.prefix = (
            b'data: {"id":'
            + ENCODER.encode(ident)
            + b',"object":"chat.completion.chunk","created":'
            + str(created).encode()
            + b',"model":'
            + ENCODER.encode(model)
            + b',"system_fingerprint":null,"choices":[{"index":'
        )
        self.head = self.prefix + b'0,"delta":'
        self.heads: dict[int, bytes] = {0: self.head}  # choice index -> head (n > 1)
        usage = b',"usage":null' if include_usage else b""
        self.tail = b',"logprobs":null,"finish_reason":null}]' + usage + b"}\n\n"
        self.done_tail = usage + b"}\n\n"

    def role(self, choice: int = 0) -> bytes:
        head = self._head(choice)
        return head + b'{"role":"assistant","content":"","refusal":null}' + self.tail

    def _head(self, choice: int) -> bytes:
        found = self.heads.get(choice)
        if found is None:
            found = self.heads[choice] = self.prefix + str(choice).encode() + b',"delta":'
        return found

    def frames(self, batch: list[Event]) -> bytes:
        head, tail, out = self.head, self.tail, []
        # Exact-type dispatch, cheaper per event than isinstance; mypy does not narrow on it.
        for e in batch:
            kind = type(e)
            if kind is not Usage and e.choice:  # type: ignore[union-attr]
                out.append(self._other(e))
            elif kind is Logprobs:
                out.append(self._logprobs(e))  # type: ignore[arg-type]
            elif kind is TextDelta:
                out.append(head + b'{"content":' + ENCODER.encode(e.text) + b"}" + tail)  # type: ignore[union-attr]
            elif kind is ReasoningDelta:
                text = ENCODER.encode(e.text)  # type: ignore[union-attr]
                out.append(head + b'{"reasoning_content":' + text + b"}" + tail)
            elif kind is ToolCallDelta:
                out.append(head + b'{"tool_calls":[' + _tool(e) + b"]}" + tail)  # type: ignore[arg-type]
        return b"".join(out)

    def _other(self, e: Event) -> bytes:
        """An event of a choice beyond the first (n > 1): its role comes before its first."""
        choice = e.choice  # type: ignore[union-attr]
        fresh = choice not in self.heads
        head = self._head(choice)
        tail = self.tail
        if type(e) is Logprobs:
            frame = self._logprobs(e)
        elif type(e) is TextDelta:
            frame = head + b'{"content":' + ENCODER.encode(e.text) + b"}" + tail
        elif type(e) is ToolCallDelta:
            frame = head + b'{"tool_calls":[' + _tool(e) + b"]}" + tail
        else:
            frame = b""
        return (self.role(choice) if fresh else b"") + frame

    def _logprobs(self, e: Logprobs) -> bytes:
        usage = b',"usage":null' if self.include_usage else b""
        return (
            self._head(e.choice)
            + b'{},"logprobs":'
            + bytes(e.raw)
            + b',"finish_reason":null}]'
            + usage
            + b"}\n\n"
        )

    def finish(self, reason: str, choice: int = 0) -> bytes:
        return (
            self._head(choice)
            + b'{},"logprobs":null,"finish_reason":'
            + ENCODER.encode(reason)
            + b"}]"
            + self.done_tail
        )

    def usage(self, completion: Completion) -> bytes:
        chunk = UsageChunk(
            id=self.ident, created=self.created, model=self.model, usage=out_usage(completion)
        )
        return b"data: " + ENCODER.encode(chunk) + b"\n\n"


def _tool(e: ToolCallDelta) -> bytes:
    if e.id is not None or e.name is not None:
        function = OutFunction(e.name or "", e.arguments)
        return ENCODER.encode(_ToolHead(index=e.index, id=e.id or "", function=function))
    return ENCODER.encode(_ToolMore(e.index, _ToolArgs(e.arguments)))
