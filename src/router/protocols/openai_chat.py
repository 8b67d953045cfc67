"""OpenAI Chat Completions: the dialect of OpenAI and of every OpenAI-compatible provider.

Requests ask for usage in streams (`stream_options.include_usage`). Usage is already in the
canonical form: `prompt_tokens` includes cached tokens, `completion_tokens` includes reasoning.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec

from router.core.types import (
    ChatRequest,
    Event,
    Finish,
    FinishReason,
    ImagePart,
    Logprobs,
    Message,
    Part,
    ReasoningDelta,
    Sources,
    Target,
    TextDelta,
    TextPart,
    ThinkingPart,
    ToolCallDelta,
    Usage,
)
from router.errors import Failure, UpstreamError
from router.protocols import openai_chat_wire as wire
from router.protocols import openai_search
from router.protocols.errors import classify_http
from router.upstream import HttpCall

# ---- wire types: what we send ----------------------------------------------------------------


ACCEPTS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "stop",
        "seed",
        "tools",
        "tool_choice",
        "response_format",
        "user",
        "reasoning_effort",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "logprobs",
        "top_logprobs",
        "logit_bias",
    }
)

# ---- wire types: what comes back ---------------------------------------------------------------


_ENCODER = msgspec.json.Encoder()
_RESPONSE = msgspec.json.Decoder(wire.Response)
_ERROR = msgspec.json.Decoder(wire.ErrorEnvelope)
_FINISH: dict[str | None, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def wire_messages(messages: tuple[Message, ...], prefill: str | None) -> list[wire.Msg]:
    out = [_wire_message(m) for m in messages]
    if prefill:
        out.append(wire.Msg(role="assistant", content=prefill, prefix=True))
    return out


def _wire_message(m: Message) -> wire.Msg:
    content: str | list[dict[str, Any]] | None
    parts = [p for p in m.content if type(p) is not ThinkingPart]  # another protocol's
    if all(type(p) is TextPart for p in parts):
        content = m.text() if parts or not m.tool_calls else None
    else:
        content = [_wire_part(p) for p in parts]
    calls = [
        wire.ToolCall(_call_id(c.id), wire.Fn(c.name, c.arguments)) for c in m.tool_calls
    ] or None
    result_of = _call_id(m.tool_call_id) if m.tool_call_id else None
    return wire.Msg(m.role, content, calls or None, result_of, m.name)


def _call_id(call_id: str) -> str:
    """OpenAI refuses tool call ids over 40 characters, which other providers may have made
    (Gemini's carry a thought signature): those get a stable digest, the same in the call and
    in its result."""
    if len(call_id) <= 40:
        return call_id
    return "call_" + hashlib.blake2b(call_id.encode(), digest_size=16).hexdigest()


def _wire_part(p: Part) -> dict[str, Any]:
    if type(p) is TextPart:
        return {"type": "text", "text": p.text}
    assert isinstance(p, ImagePart)
    image: dict[str, Any] = {"url": p.url}
    if p.detail:
        image["detail"] = p.detail
    return {"type": "image_url", "image_url": image}


def body_for(target: Target, request: ChatRequest, stream: bool) -> wire.Body:
    """The wire body, leaving out whatever the catalog says this model does not accept."""
    info = target.info
    skip = info.unsupported_params if info else frozenset()
    tools = [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in request.tools
    ] or None
    body = wire.Body(
        model=target.upstream_model,
        messages=wire_messages(request.messages, request.prefill),
        stream=True if stream else None,
        stream_options={"include_usage": True} if stream else None,
        temperature=request.temperature,
        top_p=request.top_p,
        stop=list(request.stop) or None,
        seed=request.seed,
        tools=tools,
        tool_choice=_tool_choice(request.tool_choice),
        response_format=request.response_format,
        user=request.user,
        reasoning_effort=request.reasoning_effort,
        presence_penalty=request.presence_penalty,
        frequency_penalty=request.frequency_penalty,
        n=request.n if request.n != 1 else None,
        logprobs=request.logprobs or None,
        top_logprobs=request.top_logprobs,
        logit_bias=request.logit_bias,
        web_search_options=openai_search.options(target, request.search),
    )
    limit = request.output_limit(info)
    if "max_tokens" in skip:
        body.max_completion_tokens = limit
    else:
        body.max_tokens = limit
    for name in skip:
        if hasattr(body, name) and name not in ("max_tokens", "model", "messages"):
            setattr(body, name, None)
    return body


def _tool_choice(choice: str | dict[str, object] | None) -> Any:
    if isinstance(choice, dict):
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def usage_from(u: wire.Usage, searched: bool = False) -> Usage:
    cached = (u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else None) or (
        u.prompt_cache_hit_tokens or 0
    )
    details = u.completion_tokens_details
    reasoning = (details.reasoning_tokens if details else 0) or 0
    completion = u.completion_tokens
    if reasoning and u.total_tokens == u.prompt_tokens + completion + reasoning:
        completion += reasoning  # xAI counts reasoning outside completion_tokens
    written = (u.prompt_tokens_details.cache_write_tokens if u.prompt_tokens_details else 0) or 0
    return Usage(
        u.prompt_tokens, completion, reasoning, cached or 0, written, searches=int(searched)
    )


def _delta_events(delta: wire.Delta, out: list[Event], choice: int = 0) -> None:
    if delta.annotations and choice == 0:
        openai_search.sources(delta.annotations, out)
    if delta.reasoning_content or delta.reasoning:
        out.append(ReasoningDelta(delta.reasoning_content or delta.reasoning or "", None, choice))
    if delta.content:
        out.append(TextDelta(delta.content, choice))
    if delta.tool_calls:
        for c in delta.tool_calls:
            fn = c.function or wire.InFn()
            out.append(ToolCallDelta(c.index, c.id, fn.name, fn.arguments or "", choice))


def _choice_events(choice: wire.Choice, delta: wire.Delta | None, out: list[Event]) -> None:
    index = choice.index
    if delta is not None:
        _delta_events(delta, out, index)
    if len(choice.logprobs) > 4 or bytes(choice.logprobs) != b"null":
        out.append(Logprobs(choice.logprobs, index))


def _error_from_body(body: wire.ErrorBody | str | None) -> tuple[str, str]:
    if isinstance(body, wire.ErrorBody):
        return body.message, f"{body.code or ''} {body.type or ''}".strip()
    return body or "", ""


class StreamDecoder:
    """Decodes `chat.completion.chunk` events up to `data: [DONE]`."""

    __slots__ = ("cited", "done")

    def __init__(self) -> None:
        self.done = False
        self.cited = False  # a url_citation was seen: the answer searched

    def feed(self, event: str | None, data: bytes) -> list[Event]:
        if data == b"[DONE]":
            self.done = True
            return []
        try:
            chunk = _RESPONSE.decode(data)
        except msgspec.DecodeError:
            raise UpstreamError(Failure.MALFORMED, "malformed stream chunk from upstream") from None
        if chunk.error is not None:
            message, code = _error_from_body(chunk.error)
            raise classify_http(500, {}, message or "error in stream", code)
        out: list[Event] = []
        for choice in chunk.choices:
            _choice_events(choice, choice.delta, out)
            if choice.finish_reason:
                out.append(Finish(_FINISH.get(choice.finish_reason, "stop"), choice.index))
        self.cited = self.cited or any(type(e) is Sources for e in out)
        if chunk.usage is not None:
            out.append(usage_from(chunk.usage, self.cited))
        return out


class OpenAIChat:
    """The codec for `POST {base_url}/chat/completions`."""

    path = "/chat/completions"
    accepts = ACCEPTS
    dialect = "openai"

    def __init__(self) -> None:
        self._endpoints: dict[str, tuple[str, dict[str, str]]] = {}  # provider -> (url, headers)

    def endpoint(self, target: Target) -> tuple[str, dict[str, str]]:
        """URL and headers for a provider, built once and reused by every request."""
        found = self._endpoints.get(target.provider.name)
        if found is None:
            headers = {"Content-Type": "application/json", **target.provider.headers}
            if target.key:
                headers["Authorization"] = f"Bearer {target.key}"
            found = self._endpoints[target.provider.name] = (
                target.provider.base_url + self.path,
                headers,
            )
        return found

    def build(self, target: Target, request: ChatRequest, stream: bool) -> HttpCall:
        url, headers = self.endpoint(target)
        body = body_for(target, request, stream)
        native = request.native
        if native is not None and (native.protocol != self.dialect or native.capability):
            native = None  # another dialect's, or a whole body for another endpoint
        if request.extra is None and native is None:
            return HttpCall(url, headers, _ENCODER.encode(body))
        # Passthrough fields and provider extras, as the caller sent them (rare: a dict).
        merged = msgspec.to_builtins(body)
        if native is not None:
            merged |= native.fields
            if "max_completion_tokens" in native.fields:
                merged.pop("max_tokens", None)  # the caller's name for it, not both
        merged |= request.extra or {}
        return HttpCall(url, headers, _ENCODER.encode(merged))

    def parse_response(self, body: bytes) -> list[Event]:
        try:
            response = _RESPONSE.decode(body)
        except msgspec.DecodeError:
            raise UpstreamError(Failure.MALFORMED, "malformed JSON answer from upstream") from None
        if response.error is not None:
            message, code = _error_from_body(response.error)
            raise classify_http(500, {}, message, code)
        out: list[Event] = []
        for choice in response.choices:
            _choice_events(choice, choice.message, out)
            out.append(Finish(_FINISH.get(choice.finish_reason, "stop"), choice.index))
        if response.usage is not None:
            out.append(usage_from(response.usage, any(type(e) is Sources for e in out)))
        return out

    def stream_decoder(self) -> StreamDecoder:
        return StreamDecoder()

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        try:
            envelope = _ERROR.decode(body)
            message, code = _error_from_body(envelope.error)
            message = message or envelope.message or ""
        except msgspec.DecodeError:
            message, code = body[:300].decode(errors="replace").strip(), ""
        return classify_http(status, headers, message, code)
