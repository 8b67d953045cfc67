"""OpenAI Responses (`POST {base_url}/responses`): the native path for a request that came in
on the Responses surface and goes to an OpenAI model listing the `responses` capability.

The body is the caller's own (`ChatRequest.native`, protocol "openai", capability
"responses"), with only `model` and `stream` set by the gateway: encrypted reasoning, custom
and namespace tools, built-in tools all pass through. Answers and streams are read back into
canonical events: text, reasoning summaries (and the encrypted reasoning as the signature),
function calls, custom tool calls (as a call whose arguments are `{"input": "..."}`), usage
per token kind and the finish.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

import msgspec

from router.core.types import (
    ChatRequest,
    Event,
    Finish,
    FinishReason,
    ReasoningDelta,
    Target,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from router.errors import Failure, UpstreamError
from router.protocols.backend import HttpBackend
from router.protocols.errors import classify_http
from router.protocols.openai_chat import OpenAIChat
from router.protocols.openai_media import OpenAIMedia
from router.upstream import HttpCall, Upstream

# ---- wire types: what comes back --------------------------------------------------------------


class _Text(msgspec.Struct):
    type: str = ""
    text: str = ""
    refusal: str = ""


class _Item(msgspec.Struct):
    type: str = ""
    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    input: str | None = None
    content: list[_Text] | None = None
    summary: list[_Text] | None = None
    encrypted_content: str | None = None


class _InDetails(msgspec.Struct):
    cached_tokens: int | None = 0


class _OutDetails(msgspec.Struct):
    reasoning_tokens: int | None = 0


class _Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    input_tokens_details: _InDetails | None = None
    output_tokens_details: _OutDetails | None = None


class _Reason(msgspec.Struct):
    reason: str | None = None


class _Error(msgspec.Struct):
    code: str | None = None
    message: str = ""
    type: str | None = None


class _Response(msgspec.Struct):
    status: str | None = None
    output: list[_Item] = []
    usage: _Usage | None = None
    incomplete_details: _Reason | None = None
    error: _Error | None = None


class _Event(msgspec.Struct):
    type: str = ""
    delta: str | None = None
    output_index: int = 0
    item: _Item | None = None
    response: _Response | None = None
    code: str | None = None  # `error` events
    message: str | None = None
    error: _Error | None = None


_ENCODER = msgspec.json.Encoder()
_RESPONSE = msgspec.json.Decoder(_Response)
_EVENT = msgspec.json.Decoder(_Event)
_INCOMPLETE: dict[str | None, FinishReason] = {"content_filter": "content_filter"}
_CUSTOM_OPEN = '{"input":"'
_CUSTOM_CLOSE = '"}'


def escaped(text: str) -> str:
    """`text` as the inside of a JSON string: custom tool input streamed as arguments."""
    return _ENCODER.encode(text)[1:-1].decode()


def usage_from(u: _Usage | None) -> Usage:
    if u is None:
        return Usage()
    cached = (u.input_tokens_details.cached_tokens if u.input_tokens_details else 0) or 0
    reasoning = (u.output_tokens_details.reasoning_tokens if u.output_tokens_details else 0) or 0
    return Usage(u.input_tokens, u.output_tokens, reasoning, cached)


def _failure(response: _Response | None, error: _Error | None = None) -> UpstreamError:
    error = error or (response.error if response else None) or _Error()
    code = error.code or error.type or ""
    status = 429 if code in ("rate_limit_exceeded", "insufficient_quota") else 500
    return classify_http(status, {}, error.message or "the response failed upstream", code)


def _ending(response: _Response, calls: bool) -> list[Event]:
    """Usage and finish for a final response; raises for a failed one."""
    if response.status == "failed":
        raise _failure(response)
    finish: FinishReason = "tool_calls" if calls else "stop"
    if response.status == "incomplete":
        reason = response.incomplete_details.reason if response.incomplete_details else None
        finish = _INCOMPLETE.get(reason, "length")
    return [usage_from(response.usage), Finish(finish)]


def _item_events(item: _Item, index: int) -> list[Event]:
    """A whole output item (non-streamed answer) as events; `index` numbers tool calls."""
    if item.type == "message":
        return [TextDelta(c.text or c.refusal) for c in item.content or ()]
    if item.type == "reasoning":
        text = "".join(s.text for s in item.summary or ())
        return (
            [ReasoningDelta(text, item.encrypted_content)] if text or item.encrypted_content else []
        )
    if item.type == "function_call":
        return [ToolCallDelta(index, item.call_id, item.name, item.arguments or "")]
    if item.type == "custom_tool_call":
        arguments = _CUSTOM_OPEN + escaped(item.input or "") + _CUSTOM_CLOSE
        return [ToolCallDelta(index, item.call_id, item.name, arguments)]
    return []  # built-in tool calls ran upstream: their results are in the message


class StreamDecoder:
    """Responses stream events -> canonical events, up to the terminal event."""

    __slots__ = ("calls", "done", "streamed")

    def __init__(self) -> None:
        self.done = False
        self.calls: dict[int, int] = {}  # output_index -> tool call index
        self.streamed: set[int] = set()  # custom calls whose input arrived as deltas

    def feed(self, event: str | None, data: bytes) -> list[Event]:
        try:
            e = _EVENT.decode(data)
        except msgspec.DecodeError:
            raise UpstreamError(Failure.MALFORMED, "malformed stream event from upstream") from None
        kind = e.type
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            return [TextDelta(e.delta or "")]
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return [ReasoningDelta(e.delta or "")]
        if kind == "response.function_call_arguments.delta":
            return [ToolCallDelta(self.calls.get(e.output_index, 0), arguments=e.delta or "")]
        if kind == "response.custom_tool_call_input.delta":
            self.streamed.add(e.output_index)
            index = self.calls.get(e.output_index, 0)
            return [ToolCallDelta(index, arguments=escaped(e.delta or ""))]
        if kind == "response.output_item.added" and e.item is not None:
            return self._added(e.item, e.output_index)
        if kind == "response.output_item.done" and e.item is not None:
            return self._item_done(e.item, e.output_index)
        return self._lifecycle(kind, e)

    def _added(self, item: _Item, output_index: int) -> list[Event]:
        if item.type not in ("function_call", "custom_tool_call"):
            return []
        index = self.calls[output_index] = len(self.calls)
        opening = _CUSTOM_OPEN if item.type == "custom_tool_call" else ""
        return [ToolCallDelta(index, item.call_id, item.name, opening)]

    def _item_done(self, item: _Item, output_index: int) -> list[Event]:
        if item.type == "reasoning" and item.encrypted_content:
            return [ReasoningDelta("", item.encrypted_content)]
        if item.type != "custom_tool_call":
            return []
        rest = "" if output_index in self.streamed else escaped(item.input or "")
        return [ToolCallDelta(self.calls.get(output_index, 0), arguments=rest + _CUSTOM_CLOSE)]

    def _lifecycle(self, kind: str, e: _Event) -> list[Event]:
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self.done = True
            return _ending(e.response or _Response(status="failed"), bool(self.calls))
        if kind == "error":
            self.done = True
            raise _failure(None, e.error or _Error(e.code, e.message or ""))
        return []


class OpenAIResponses:
    """The codec for `POST {base_url}/responses`; errors are classified as Chat's."""

    path = "/responses"

    def __init__(self, chat: OpenAIChat) -> None:
        self.chat = chat

    def build(self, target: Target, request: ChatRequest, stream: bool) -> HttpCall:
        native = request.native
        assert native is not None, "the Responses codec needs the caller's body"
        url, headers = self.chat.endpoint(target)
        url = url.removesuffix(self.chat.path) + self.path
        body = {**native.fields, "model": target.upstream_model, "stream": stream}
        return HttpCall(url, headers, _ENCODER.encode(body))

    def parse_response(self, body: bytes) -> list[Event]:
        try:
            response = _RESPONSE.decode(body)
        except msgspec.DecodeError:
            raise UpstreamError(Failure.MALFORMED, "malformed JSON answer from upstream") from None
        out: list[Event] = []
        calls = 0
        for item in response.output:
            out.extend(_item_events(item, calls))
            calls += item.type in ("function_call", "custom_tool_call")
        return out + _ending(response, calls > 0)

    def stream_decoder(self) -> StreamDecoder:
        return StreamDecoder()

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        return self.chat.classify(status, headers, body)


class OpenAIBackend(HttpBackend):
    """OpenAI: Chat Completions and media, and the Responses API for a request that carries
    a Responses body (`Native` with the "responses" capability) to a model that serves it."""

    def __init__(self, upstream: Upstream) -> None:
        chat = OpenAIChat()
        super().__init__(chat, upstream, OpenAIMedia())
        self.responses = OpenAIResponses(chat)

    def _native(self, target: Target, request: ChatRequest) -> bool:
        native = request.native
        return (
            native is not None
            and native.capability == "responses"
            and (native.for_target(target) is not None)
        )

    async def complete(
        self, target: Target, request: ChatRequest, timeout: float | None
    ) -> list[Event]:
        if not self._native(target, request):
            return await super().complete(target, request, timeout)
        call = self.responses.build(target, request, stream=False)
        return await self.upstream.complete(self.responses, call, timeout)

    def stream(
        self,
        target: Target,
        request: ChatRequest,
        first_token: float,
        stall: float | None = None,
    ) -> AsyncGenerator[list[Event], None]:
        if not self._native(target, request):
            return super().stream(target, request, first_token, stall)
        call = self.responses.build(target, request, stream=True)
        return self.upstream.stream(self.responses, call, first_token, stall)
