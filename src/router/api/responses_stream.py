"""The Responses stream: canonical event batches rendered as OpenAI's event lifecycle.

`response.created` and `response.in_progress` open it; each output item is announced
(`output_item.added`), filled (text and its content part, reasoning summary, function-call
arguments, custom-tool input) and closed (`output_item.done`) before the next one starts;
`response.completed` (or `response.incomplete`) carries the whole output and the usage. A
stream that breaks beyond rescue ends with `response.failed`: never without a terminal event.
Every event has its `sequence_number`.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from router.api.common import ENCODER
from router.api.responses_render import (
    UNSET,
    ErrorInfo,
    OutCustomCall,
    OutFunctionCall,
    OutItem,
    OutMessage,
    OutReasoning,
    OutText,
    ResponseObject,
    call_item,
    finish,
    new_id,
)
from router.api.responses_request import SummaryText
from router.core.stream import ChatStream
from router.core.types import Completion, Event, ReasoningDelta, TextDelta, ToolCall, ToolCallDelta
from router.errors import StreamFailed
from router.lifecycle import DRAIN_MESSAGE


class StreamEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Every Responses stream event in one shape: the fields an event type lacks are unset."""

    type: str
    sequence_number: int
    response: ResponseObject | msgspec.UnsetType = UNSET
    output_index: int | msgspec.UnsetType = UNSET
    item_id: str | msgspec.UnsetType = UNSET
    content_index: int | msgspec.UnsetType = UNSET
    summary_index: int | msgspec.UnsetType = UNSET
    item: OutItem | msgspec.UnsetType = UNSET
    part: OutText | SummaryText | msgspec.UnsetType = UNSET
    delta: str | msgspec.UnsetType = UNSET
    text: str | msgspec.UnsetType = UNSET
    name: str | msgspec.UnsetType = UNSET
    arguments: str | msgspec.UnsetType = UNSET
    input: str | msgspec.UnsetType = UNSET
    logprobs: tuple[()] | msgspec.UnsetType = UNSET


class _Open(msgspec.Struct):
    """The output item being streamed: its kind and what it has gathered."""

    kind: str  # "message" | "reasoning" | "call"
    id: str
    index: int
    pieces: list[str] = []
    signature: str | None = None
    call: ToolCall | None = None


class ResponsesRenderer:
    """A `StreamRenderer` (see `router.api.common.sse`) for one Responses stream. `on_done`
    gets the finished response object (to store it)."""

    def __init__(
        self,
        response: ResponseObject,
        custom: frozenset[str],
        on_done: Callable[[ResponseObject], None],
    ) -> None:
        self.response = response
        self.custom = custom
        self.on_done = on_done
        self.seq = 0
        self.out: list[bytes] = []
        self.items: list[OutItem] = []
        self.open: _Open | None = None
        self.started = False

    def emit(self, kind: str, **fields: object) -> None:
        event = StreamEvent(type=kind, sequence_number=self.seq)
        for name, value in fields.items():
            setattr(event, name, value)
        self.seq += 1
        self.out.append(b"event: " + kind.encode() + b"\ndata: " + ENCODER.encode(event) + b"\n\n")

    def take(self) -> bytes:
        out, self.out = b"".join(self.out), []
        return out

    def start(self) -> None:
        if not self.started:
            self.started = True
            self.emit("response.created", response=self.response)
            self.emit("response.in_progress", response=self.response)

    # ---- StreamRenderer -----------------------------------------------------------------

    def frames(self, batch: list[Event]) -> bytes:
        self.start()
        for e in batch:
            kind = type(e)
            if kind is TextDelta:
                self._text(e.text)  # type: ignore[union-attr]
            elif kind is ReasoningDelta:
                self._reasoning(e)  # type: ignore[arg-type]
            elif kind is ToolCallDelta:
                self._tool(e)  # type: ignore[arg-type]
        return self.take()

    def failed(self, failed: StreamFailed) -> bytes:
        self.start()
        self.close()
        c = failed.completion
        response = self.response
        response.status = "failed"
        response.output = self.items
        response.error = ErrorInfo(
            failed.error.failure.value,
            f"Upstream provider error ({c.provider}): {failed.error.message}",
        )
        self.emit("response.failed", response=response)
        return self.take()

    def drained(self, stream: ChatStream) -> bytes:
        self.start()
        self.close()
        response = self.response
        response.status = "failed"
        response.output = self.items
        response.error = ErrorInfo("shutting_down", DRAIN_MESSAGE)
        self.emit("response.failed", response=response)
        return self.take()

    def finished(self, completion: Completion) -> bytes:
        self.start()
        self.close()
        finish(self.response, completion, self.items)
        kind = (
            "response.completed" if self.response.status == "completed" else "response.incomplete"
        )
        self.emit(kind, response=self.response)
        self.on_done(self.response)
        return self.take()

    # ---- items ----------------------------------------------------------------------------

    def _begin(self, kind: str, prefix: str) -> _Open:
        self.close()
        self.open = _Open(kind, new_id(prefix), len(self.items))
        return self.open

    def _text(self, text: str) -> None:
        item = self.open
        if item is None or item.kind != "message":
            item = self._begin("message", "msg")
            added = OutMessage(id=item.id, status="in_progress")
            self.emit("response.output_item.added", output_index=item.index, item=added)
            self.emit(
                "response.content_part.added",
                item_id=item.id,
                output_index=item.index,
                content_index=0,
                part=OutText(text=""),
            )
        item.pieces.append(text)
        self.emit(
            "response.output_text.delta",
            item_id=item.id,
            output_index=item.index,
            content_index=0,
            delta=text,
            logprobs=(),
        )

    def _reasoning(self, e: ReasoningDelta) -> None:
        item = self.open
        if item is None or item.kind != "reasoning" or item.signature is not None:
            item = self._begin("reasoning", "rs")
            self.emit(
                "response.output_item.added", output_index=item.index, item=OutReasoning(id=item.id)
            )
        if e.text:
            if not item.pieces:
                self._summary_event("response.reasoning_summary_part.added", item, "")
            item.pieces.append(e.text)
            self.emit(
                "response.reasoning_summary_text.delta",
                item_id=item.id,
                output_index=item.index,
                summary_index=0,
                delta=e.text,
            )
        if e.signature:
            item.signature = e.signature

    def _summary_event(self, kind: str, item: _Open, text: str) -> None:
        self.emit(
            kind, item_id=item.id, output_index=item.index, summary_index=0, part=SummaryText(text)
        )

    def _tool(self, e: ToolCallDelta) -> None:
        item = self.open
        if e.id is not None or e.name is not None or item is None or item.kind != "call":
            item = self._begin("call", "fc")
            item.call = ToolCall(e.id or new_id("call"), e.name or "", "")
            added = call_item(item.call, self.custom)
            added.status = "in_progress"
            if isinstance(added, OutCustomCall):
                added.input = ""
            item.id = added.id
            self.emit("response.output_item.added", output_index=item.index, item=added)
        item.pieces.append(e.arguments)
        if e.arguments and item.call is not None and item.call.name not in self.custom:
            self.emit(
                "response.function_call_arguments.delta",
                item_id=item.id,
                output_index=item.index,
                delta=e.arguments,
            )

    def close(self) -> None:
        """Close the open item with its `.done` events."""
        item, self.open = self.open, None
        if item is None:
            return
        if item.kind == "message":
            self._close_message(item)
        elif item.kind == "reasoning":
            self._close_reasoning(item)
        else:
            self._close_call(item)

    def _close_message(self, item: _Open) -> None:
        text = "".join(item.pieces)
        where = {"item_id": item.id, "output_index": item.index, "content_index": 0}
        self.emit("response.output_text.done", **where, text=text, logprobs=())
        self.emit("response.content_part.done", **where, part=OutText(text=text))
        self._done(OutMessage(id=item.id, content=[OutText(text=text)]), item)

    def _close_reasoning(self, item: _Open) -> None:
        text = "".join(item.pieces)
        summary = [SummaryText(text)] if item.pieces else []
        if item.pieces:
            where = {"item_id": item.id, "output_index": item.index, "summary_index": 0}
            self.emit("response.reasoning_summary_text.done", **where, text=text)
            self._summary_event("response.reasoning_summary_part.done", item, text)
        done = OutReasoning(id=item.id, summary=summary)
        if item.signature:
            done.encrypted_content = item.signature
        self._done(done, item)

    def _close_call(self, item: _Open) -> None:
        assert item.call is not None
        call = msgspec.structs.replace(item.call, arguments="".join(item.pieces))
        done = call_item(call, self.custom)
        done.id = item.id
        where = {"item_id": item.id, "output_index": item.index}
        if isinstance(done, OutFunctionCall):
            self.emit("response.function_call_arguments.done", **where, arguments=done.arguments)
        else:
            self.emit("response.custom_tool_call_input.delta", **where, delta=done.input)
            self.emit("response.custom_tool_call_input.done", **where, input=done.input)
        self._done(done, item)

    def _done(self, done: OutItem, item: _Open) -> None:
        self.items.append(done)
        self.emit("response.output_item.done", output_index=item.index, item=done)
