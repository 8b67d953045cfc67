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

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from router.core.types import (
    ChatRequest,
    Event,
    Finish,
    FinishReason,
    Message,
    Part,
    ReasoningDelta,
    Target,
    TextDelta,
    TextPart,
    ThinkingPart,
    ToolCallDelta,
    Usage,
)
from router.errors import Failure, UpstreamError
from router.protocols import anthropic_search
from router.protocols import anthropic_wire as wire
from router.protocols.anthropic_native import counted, native_call
from router.protocols.errors import classify_http
from router.upstream import HttpCall

DEFAULT_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
MIN_THINKING = 1024  # the smallest budget the API accepts
EFFORT_BUDGET = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}

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
_CHOICES = {
    "auto": wire.ToolChoice("auto"),
    "required": wire.ToolChoice("any"),
    "none": wire.ToolChoice("none"),
}
_BAD_ID = re.compile(r"[^a-zA-Z0-9_-]")

# ---- request -----------------------------------------------------------------------------------


def _tool_id(call_id: str | None) -> str:
    """Anthropic accepts only `[a-zA-Z0-9_-]` in tool ids; other dialects are laxer."""
    return _BAD_ID.sub("_", call_id or "") or "toolu_unknown"


def _arguments(text: str) -> dict[str, Any]:
    try:
        return wire.ARGS.decode(text or "{}")
    except msgspec.DecodeError:  # also a JSON value that is not an object
        return {}


def _part(p: Part) -> wire.Block | None:
    if isinstance(p, TextPart):
        return wire.Text(p.text) if p.text else None  # the API refuses empty text blocks
    if isinstance(p, ThinkingPart):
        return _thinking(p)
    inline = p.inline()
    if inline is None:
        return wire.Image(wire.Source("url", url=p.url))
    return wire.Image(wire.Source("base64", media_type=inline[0], data=inline[1]))


def _thinking(p: ThinkingPart) -> wire.Block | None:
    """Thinking goes back only to the protocol that produced it (its signature is Anthropic's)."""
    if p.origin != "anthropic":
        return None
    if p.redacted is not None:
        return wire.RedactedThinking(p.redacted)
    return wire.ThinkingBlock(p.text, p.signature) if p.signature else None


def _blocks(m: Message) -> list[wire.Block]:
    if m.role == "tool":
        text = m.text()
        return [wire.ToolResult(_tool_id(m.tool_call_id), [wire.Text(text)] if text else [])]
    out = [b for b in map(_part, m.content) if b is not None]
    out += [wire.ToolUse(_tool_id(c.id), c.name, _arguments(c.arguments)) for c in m.tool_calls]
    return out


def wire_messages(
    messages: tuple[Message, ...], prefill: str | None
) -> tuple[list[wire.Text], list[wire.Turn]]:
    """(system blocks, turns): system hoisted out, same-role neighbours merged."""
    system: list[wire.Text] = []
    turns: list[wire.Turn] = []
    for m in messages:
        if m.role == "system":
            system += [wire.Text(p.text) for p in m.content if type(p) is TextPart and p.text]
            continue
        _append(turns, "assistant" if m.role == "assistant" else "user", _blocks(m))
    if prefill and prefill.rstrip():  # the API refuses a final turn ending in whitespace
        _append(turns, "assistant", [wire.Text(prefill.rstrip())])
    return system, turns


def _append(turns: list[wire.Turn], role: str, blocks: list[wire.Block]) -> None:
    if not blocks:
        return
    if turns and turns[-1].role == role:
        turns[-1].content.extend(blocks)
    else:
        turns.append(wire.Turn(role, blocks))


def _tool_choice(choice: str | dict[str, object] | None) -> wire.ToolChoice | None:
    if isinstance(choice, dict):
        return wire.ToolChoice("tool", str(choice.get("name", "")))
    return _CHOICES.get(choice) if choice else None


def _budget(target: Target, request: ChatRequest) -> int | None:
    """The thinking budget asked for, or None: not for models without the `reasoning`
    capability, and never with a forced tool or a prefilled answer."""
    info = target.info
    if info is not None and (
        "reasoning" not in info.capabilities
        or {"thinking_budget", "reasoning_effort"} & info.unsupported_params
    ):
        return None
    budget = request.thinking_budget or EFFORT_BUDGET.get(request.reasoning_effort or "")
    forced = isinstance(request.tool_choice, dict) or request.tool_choice == "required"
    if not budget or forced or request.prefill or _in_tool_loop(request.messages):
        return None
    return max(budget, MIN_THINKING)


def _limits(target: Target, request: ChatRequest) -> tuple[int, int | None]:
    """(max_tokens, thinking budget). The budget counts within `max_tokens` and must leave
    room for the answer; without a catalog limit the default grows to fit the budget."""
    budget = _budget(target, request)
    limit = target.info.max_output_tokens if target.info else None
    max_tokens = request.output_limit(target.info) or limit or DEFAULT_MAX_TOKENS + (budget or 0)
    if budget is not None:
        budget = min(budget, max_tokens - 1)
    return max_tokens, budget if budget and budget >= MIN_THINKING else None


def _in_tool_loop(messages: tuple[Message, ...]) -> bool:
    """Whether the answer continues an assistant turn that called tools. With thinking on,
    the API wants that turn to start with its signed thinking block, which canonical
    messages do not carry: such a continuation is asked for without thinking."""
    last = next((m for m in reversed(messages) if m.role != "tool"), None)
    return last is not None and last.role == "assistant" and bool(last.tool_calls)


ACCEPTS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "stop",
        "tools",
        "tool_choice",
        "user",
        "reasoning_effort",
        "thinking_budget",
    }
)


def body_for(target: Target, request: ChatRequest, stream: bool) -> wire.Body:
    """The wire body, leaving out whatever the catalog says this model does not accept."""
    skip = target.info.unsupported_params if target.info else frozenset()
    max_tokens, budget = _limits(target, request)
    system, turns = wire_messages(request.messages, request.prefill)
    body = wire.Body(
        model=target.upstream_model,
        max_tokens=max_tokens,
        messages=turns,
        system=system or None,
        stream=True if stream else None,
        thinking=wire.Thinking(budget) if budget else None,
    )
    sampling = budget is None  # thinking requires the default temperature and top_p
    if sampling and "temperature" not in skip:
        body.temperature = request.temperature
    if sampling and "top_p" not in skip:
        body.top_p = request.top_p
    if sampling and "top_k" not in skip:
        body.top_k = request.top_k
    if "stop" not in skip:
        body.stop_sequences = list(request.stop) or None
    if request.tools and "tools" not in skip:
        body.tools = [_tool(t.name, t.description, t.parameters) for t in request.tools]
        body.tool_choice = None if "tool_choice" in skip else _tool_choice(request.tool_choice)
    if request.user and "user" not in skip:
        body.metadata = {"user_id": request.user}
    server_tool = anthropic_search.tool(target, request.search)
    if server_tool is not None:
        body.tools = [*(body.tools or ()), server_tool]
    return body


def _tool(
    name: str, description: str | None, parameters: dict[str, object] | None
) -> wire.ToolSpec:
    return wire.ToolSpec(name, parameters or {"type": "object", "properties": {}}, description)


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
