"""Anthropic Messages: `POST {base_url}/v1/messages` with `x-api-key` and `anthropic-version`.

Requests: system messages are hoisted into `system`; tool results become `tool_result` blocks
of a user turn and consecutive same-role turns are merged, as the API demands; `max_tokens`
is always sent (the request's, else the catalog's `max_output_tokens`); extended thinking is
asked for with `thinking.budget_tokens` when the request sets a budget or an effort.

Usage: Anthropic's `input_tokens` exclude cache reads and writes, so the canonical prompt is
`input + cache_read + cache_creation`. Thinking tokens are billed inside `output_tokens` and
not reported apart, so `reasoning_tokens` stays 0 here.
"""

from __future__ import annotations

from collections.abc import Mapping

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
from router.protocols import anthropic_search
from router.protocols import anthropic_wire as wire
from router.protocols.anthropic_body import ACCEPTS, body_for
from router.protocols.anthropic_native import counted, native_call
from router.protocols.errors import classify_http
from router.upstream import HttpCall

DEFAULT_VERSION = "2023-06-01"

_FINISH: dict[str | None, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_ERROR_STATUS = {  # for `error` events inside a 200 stream, which carry no HTTP status
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}

# ---- answers -------------------------------------------------------------------------------------


def usage_from(u: wire.Usage) -> Usage:
    read = u.cache_read_input_tokens or 0
    written = u.cache_creation_input_tokens or 0
    prompt = (u.input_tokens or 0) + read + written
    searches = u.server_tool_use.web_search_requests if u.server_tool_use else 0
    return Usage(prompt, u.output_tokens or 0, 0, read, written, searches=searches)


def _merged(start: wire.Usage, final: wire.Usage | None) -> wire.Usage:
    """The usage of `message_start`, overridden by whatever the final `message_delta` reports."""
    if final is None:
        return start
    return wire.Usage(
        *(
            new if new is not None else old
            for new, old in zip(
                msgspec.structs.astuple(final), msgspec.structs.astuple(start), strict=True
            )
        )
    )


def _refused(reason: str | None, produced: bool) -> None:
    """A refusal before any answer is a content-policy outcome, not an empty success."""
    if reason == "refusal" and not produced:
        raise UpstreamError(Failure.CONTENT_POLICY, "the model refused to answer (refusal)")


def _block_events(block: wire.OutBlock, ordinal: int, out: list[Event]) -> None:
    if block.type == "text" and block.text:
        out.append(TextDelta(block.text))
        anthropic_search.cited(block.citations, out)
    elif block.type == "web_search_tool_result":
        anthropic_search.searched(block.content, out)
    elif block.type == "thinking" and (block.thinking or block.signature):
        out.append(ReasoningDelta(block.thinking or "", block.signature or None))
    elif block.type == "redacted_thinking":
        out.append(ReasoningDelta("", redacted=block.data or ""))
    elif block.type == "tool_use":
        args = bytes(block.input).decode()
        out.append(ToolCallDelta(ordinal, block.id, block.name, args))


def _error(status: int, headers: Mapping[str, str], body: wire.ErrorBody) -> UpstreamError:
    return classify_http(status, headers, body.message, body.type)


class StreamDecoder:
    """Decodes the Messages event stream up to `message_stop`."""

    __slots__ = ("done", "produced", "tools", "usage")

    def __init__(self) -> None:
        self.done = False
        self.produced = False  # any text or tool call seen: a later refusal is a finish
        self.tools: dict[int, int] = {}  # content block index -> tool call ordinal
        self.usage = wire.Usage()

    def feed(self, event: str | None, data: bytes) -> list[Event]:
        try:
            decoded = wire.EVENT.decode(data)
        except msgspec.DecodeError:
            raise UpstreamError(Failure.MALFORMED, "malformed stream event from upstream") from None
        handler = _HANDLERS.get(event or decoded.type)
        # ping, content_block_stop, and event types added later carry nothing for us
        return handler(self, decoded) if handler is not None else []

    def _start(self, event: wire.StreamEvent) -> list[Event]:
        self.usage = (event.message.usage if event.message else None) or wire.Usage()
        return []

    def _block_start(self, event: wire.StreamEvent) -> list[Event]:
        block = event.content_block or wire.OutBlock("")
        if block.type == "tool_use":
            self.tools[event.index] = len(self.tools)
            self.produced = True
            return [ToolCallDelta(self.tools[event.index], block.id, block.name)]
        out: list[Event] = []
        _block_events(block, 0, out)
        return out

    def _block_delta(self, event: wire.StreamEvent) -> list[Event]:
        delta = event.delta or wire.Delta()
        if delta.type == "text_delta" and delta.text:
            self.produced = True
            return [TextDelta(delta.text)]
        if delta.type == "thinking_delta" and delta.thinking:
            return [ReasoningDelta(delta.thinking)]
        if delta.type == "citations_delta" and delta.citation is not None:
            out: list[Event] = []
            anthropic_search.cited([delta.citation], out)
            return out
        if delta.type == "input_json_delta" and delta.partial_json and event.index in self.tools:
            return [ToolCallDelta(self.tools.get(event.index, 0), arguments=delta.partial_json)]
        if delta.type == "signature_delta" and delta.signature:
            return [ReasoningDelta("", delta.signature)]
        return []  # citations_delta, empty pieces

    def _message_delta(self, event: wire.StreamEvent) -> list[Event]:
        reason = event.delta.stop_reason if event.delta else None
        _refused(reason, self.produced)
        usage = usage_from(_merged(self.usage, event.usage))
        return [Finish(_FINISH.get(reason, "stop")), usage]

    def _stop(self, event: wire.StreamEvent) -> list[Event]:
        self.done = True
        return []

    def _error(self, event: wire.StreamEvent) -> list[Event]:
        body = event.error or wire.ErrorBody("api_error", "error in stream")
        raise _error(_ERROR_STATUS.get(body.type, 500), {}, body)


_HANDLERS = {
    "message_start": StreamDecoder._start,
    "content_block_start": StreamDecoder._block_start,
    "content_block_delta": StreamDecoder._block_delta,
    "message_delta": StreamDecoder._message_delta,
    "message_stop": StreamDecoder._stop,
    "error": StreamDecoder._error,
}


class AnthropicMessages:
    """The codec for `POST {base_url}/v1/messages`."""

    path = "/v1/messages"
    accepts = ACCEPTS
    dialect = "anthropic"

    def __init__(self) -> None:
        self._endpoints: dict[str, tuple[str, dict[str, str]]] = {}  # provider -> (url, headers)

    def endpoint(self, target: Target) -> tuple[str, dict[str, str]]:
        """URL and headers for a provider, built once and reused by every request."""
        provider = target.provider
        found = self._endpoints.get(provider.name)
        if found is None:
            headers = {
                "Content-Type": "application/json",
                "anthropic-version": provider.api_version or DEFAULT_VERSION,
                **provider.headers,
            }
            if target.key:
                headers["x-api-key"] = target.key
            found = self._endpoints[provider.name] = (provider.base_url + self.path, headers)
        return found

    def build(self, target: Target, request: ChatRequest, stream: bool) -> HttpCall:
        url, headers = self.endpoint(target)
        native = request.native.for_protocol("anthropic") if request.native else None
        if native is not None and not request.prefill:  # a rescue's prefill goes canonical
            return native_call(url, headers, target, native, stream)
        return HttpCall(url, headers, wire.ENCODER.encode(body_for(target, request, stream)))

    def parse_response(self, body: bytes) -> list[Event]:
        try:
            message = wire.MESSAGE.decode(body)
        except msgspec.DecodeError:
            raise UpstreamError(Failure.MALFORMED, "malformed JSON answer from upstream") from None
        if message.input_tokens is not None and not message.content:
            return counted(message.input_tokens)
        out: list[Event] = []
        tools = 0
        for block in message.content:
            _block_events(block, tools, out)
            tools += block.type == "tool_use"
        _refused(message.stop_reason, any(type(e) is not ReasoningDelta for e in out))
        out.append(Finish(_FINISH.get(message.stop_reason, "stop")))
        if message.usage is not None:
            out.append(usage_from(message.usage))
        return out

    def stream_decoder(self) -> StreamDecoder:
        return StreamDecoder()

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        try:
            error = wire.EVENT.decode(body).error or wire.ErrorBody()
        except msgspec.DecodeError:
            error = wire.ErrorBody(message=body[:300].decode(errors="replace").strip())
        return _error(status, headers, error)
