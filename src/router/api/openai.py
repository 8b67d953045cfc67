"""The OpenAI-compatible surface: `POST /v1/chat/completions`, `GET /v1/models[/{id}]`.

Any OpenAI SDK works by changing its base URL and key. `model` is `provider/model`, an alias
from routing.toml (an ordered chain) or a bare catalog name; the extension fields `models` and
`fallback_models` (as OpenRouter's `models`) add a chain per request. Answers are OpenAI's
`chat.completion` / `chat.completion.chunk` shapes; `model` in them is the `provider/model` that
answered, and `usage.cost` (USD, OpenRouter's field) is added when the catalog prices it.
Reasoning text, when a provider returns it, is `reasoning_content` (DeepSeek's field).
The request side (what is accepted, ignored or refused) is `router.api.openai_request`.
"""

from __future__ import annotations

import secrets
import time
from decimal import Decimal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router.api.common import (
    DONE,
    ENCODER,
    Begun,
    asked,
    endpoint,
    json_response,
    sse,
    trail_header,
)
from router.api.openai_request import CHAT_BODY, ChatBody, chat_request, validate
from router.core.chat import ChatCall, ChatStream
from router.core.types import (
    Attempt,
    Completion,
    Event,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
)
from router.errors import StreamFailed
from router.lifecycle import DRAIN_MESSAGE
from router.runtime import Runtime

# ---- response -----------------------------------------------------------------------------


class OutFunction(msgspec.Struct):
    name: str
    arguments: str


class OutToolCall(msgspec.Struct, kw_only=True):
    id: str
    type: str = "function"
    function: OutFunction


class OutMessage(msgspec.Struct, kw_only=True):
    role: str = "assistant"
    content: str | None
    refusal: None = None
    tool_calls: list[OutToolCall] | msgspec.UnsetType = msgspec.UNSET
    reasoning_content: str | msgspec.UnsetType = msgspec.UNSET
    annotations: tuple[()] = ()


class OutChoice(msgspec.Struct, kw_only=True):
    index: int = 0
    message: OutMessage
    logprobs: None = None
    finish_reason: str


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


class ChatCompletion(msgspec.Struct, kw_only=True):
    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[OutChoice]
    usage: OutUsage
    system_fingerprint: None = None


class UsageChunk(msgspec.Struct, kw_only=True):
    id: str
    object: str = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: None = None
    choices: tuple[()] = ()
    usage: OutUsage


_FINISH = {"stop", "length", "tool_calls", "content_filter"}


def finish_reason(completion: Completion) -> str:
    return completion.finish if completion.finish in _FINISH else "stop"


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


def render(completion: Completion, ident: str, created: int) -> ChatCompletion:
    calls = [
        OutToolCall(id=c.id, function=OutFunction(c.name, c.arguments))
        for c in completion.tool_calls
    ]
    message = OutMessage(
        content=completion.text if completion.text or not calls else None,
        tool_calls=calls or msgspec.UNSET,
        reasoning_content=completion.reasoning or msgspec.UNSET,
    )
    return ChatCompletion(
        id=ident,
        created=created,
        model=f"{completion.provider}/{completion.model}",
        choices=[OutChoice(message=message, finish_reason=finish_reason(completion))],
        usage=out_usage(completion),
    )


def new_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def headers_for(completion: Completion) -> dict[str, str]:
    return {"x-router-attempts": trail_header(completion.attempts)}


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

    __slots__ = ("created", "done_tail", "head", "ident", "include_usage", "model", "tail")

    def __init__(self, ident: str, created: int, model: str, include_usage: bool) -> None:
        self.ident, self.created, self.model = ident, created, model
        self.include_usage = include_usage
        self.head = (
            b'data: {"id":'
            + ENCODER.encode(ident)
            + b',"object":"chat.completion.chunk","created":'
            + str(created).encode()
            + b',"model":'
            + ENCODER.encode(model)
            + b',"system_fingerprint":null,"choices":[{"index":0,"delta":'
        )
        usage = b',"usage":null' if include_usage else b""
        self.tail = b',"logprobs":null,"finish_reason":null}]' + usage + b"}\n\n"
        self.done_tail = usage + b"}\n\n"

    def role(self) -> bytes:
        return self.head + b'{"role":"assistant","content":"","refusal":null}' + self.tail

    def frames(self, batch: list[Event]) -> bytes:
        head, tail, out = self.head, self.tail, []
        # Exact-type dispatch, cheaper per event than isinstance; mypy does not narrow on it.
        for e in batch:
            kind = type(e)
            if kind is TextDelta:
                out.append(head + b'{"content":' + ENCODER.encode(e.text) + b"}" + tail)  # type: ignore[union-attr]
            elif kind is ReasoningDelta:
                text = ENCODER.encode(e.text)  # type: ignore[union-attr]
                out.append(head + b'{"reasoning_content":' + text + b"}" + tail)
            elif kind is ToolCallDelta:
                out.append(head + b'{"tool_calls":[' + _tool(e) + b"]}" + tail)  # type: ignore[arg-type]
        return b"".join(out)

    def finish(self, reason: str) -> bytes:
        return (
            self.head
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


class StreamError(msgspec.Struct, kw_only=True):
    message: str
    type: str = "upstream_error"
    param: None = None
    code: str
    provider: str
    model: str
    attempts: list[Attempt]


class StreamErrorEvent(msgspec.Struct):
    error: StreamError


class _Renderer:
    """`chat.completion.chunk` frames: the role first, the deltas, then the finish chunk and
    the usage chunk (when asked for); an in-band `error` if the stream breaks beyond rescue
    (the OpenAI SDKs raise it as an APIError); then `[DONE]`."""

    def __init__(self, chunks: Chunks) -> None:
        self.chunks = chunks
        self.first = True

    def frames(self, batch: list[Event]) -> bytes:
        frames = self.chunks.frames(batch)
        if self.first:
            self.first = False
            return self.chunks.role() + frames
        return frames

    def failed(self, failed: StreamFailed) -> bytes:
        c = failed.completion
        error = StreamError(
            message=f"Upstream provider error ({c.provider}): {failed.error.message}",
            code=failed.error.failure.value,
            provider=c.provider,
            model=c.model,
            attempts=list(c.attempts),
        )
        return b"data: " + ENCODER.encode(StreamErrorEvent(error)) + b"\n\n" + DONE

    def drained(self, stream: ChatStream) -> bytes:
        error = StreamError(
            message=DRAIN_MESSAGE,
            type="server_error",
            code="shutting_down",
            provider=stream.target.provider.name,
            model=stream.target.model,
            attempts=list(stream.trail),
        )
        return b"data: " + ENCODER.encode(StreamErrorEvent(error)) + b"\n\n" + DONE

    def finished(self, completion: Completion) -> bytes:
        chunks = self.chunks
        tail = chunks.finish(finish_reason(completion))
        if chunks.include_usage:
            tail += chunks.usage(completion)
        return tail + DONE


# ---- the endpoint ---------------------------------------------------------------------------


def routes(rt: Runtime) -> list[Route]:
    async def completions(begun: Begun, body: ChatBody, request: Request) -> Response:
        validate(body)
        call = ChatCall(
            principal=begun.principal,
            models=asked("models", body.models, body.model),
            fallbacks=asked("fallback_models", body.fallback_models),
            request=chat_request(body),
            timeout=begun.timeout,
            received=begun.received,
            surface="openai",
            stream=body.stream,
        )
        ident, created = new_id(), int(time.time())
        if body.stream:
            stream = await rt.chat.open_stream(call)
            include = body.stream_options is not None and body.stream_options.include_usage
            renderer = _Renderer(Chunks(ident, created, stream.target.ref, include))
            return sse(stream, renderer, rt.lifecycle)
        completion = await rt.chat.complete(call)
        return json_response(render(completion, ident, created), headers=headers_for(completion))

    return [Route("/v1/chat/completions", endpoint(rt, CHAT_BODY, completions), methods=["POST"])]
