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

import time
from collections.abc import Sequence

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router.api.citations import Annotation, cited_in
from router.api.common import (
    DONE,
    ENCODER,
    Begun,
    answer_headers,
    asked,
    endpoint,
    header_fallbacks,
    json_response,
    routed,
    sse,
)
from router.api.openai_chunks import Chunks, OutFunction, OutUsage, out_usage
from router.api.openai_request import Decoded, chat_request, decode_chat, validate
from router.core.call import Call
from router.core.chat import ChatCall
from router.core.stream import ChatStream
from router.core.types import (
    Attempt,
    Completion,
    Event,
    ToolCall,
)
from router.errors import StreamFailed
from router.ids import hex_id
from router.lifecycle import DRAIN_MESSAGE
from router.runtime import Runtime

# ---- response -----------------------------------------------------------------------------


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
    annotations: list[Annotation] = []  # url_citation, for a searched answer


class OutChoice(msgspec.Struct, kw_only=True):
    index: int = 0
    message: OutMessage
    logprobs: msgspec.Raw | None = None
    finish_reason: str


class ChatCompletion(msgspec.Struct, kw_only=True):
    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[OutChoice]
    usage: OutUsage
    system_fingerprint: None = None


_FINISH = {"stop", "length", "tool_calls", "content_filter"}


def finish_reason(completion: Completion) -> str:
    return completion.finish if completion.finish in _FINISH else "stop"


def _message(
    text: str, calls: Sequence[ToolCall], reasoning: str = "", cites: list[Annotation] | None = None
) -> OutMessage:
    out = [OutToolCall(id=c.id, function=OutFunction(c.name, c.arguments)) for c in calls]
    return OutMessage(
        content=text if text or not out else None,
        tool_calls=out or msgspec.UNSET,
        reasoning_content=reasoning or msgspec.UNSET,
        annotations=cites or [],
    )


def render(completion: Completion, ident: str, created: int) -> ChatCompletion:
    c = completion
    first = OutChoice(
        message=_message(c.text, c.tool_calls, c.reasoning, cited_in(c)),
        logprobs=c.logprobs,
        finish_reason=finish_reason(c),
    )
    more = [
        OutChoice(
            index=o.index,
            message=_message(o.text, o.tool_calls),
            logprobs=o.logprobs,
            finish_reason=o.finish if o.finish in _FINISH else "stop",
        )
        for o in c.choices
    ]
    return ChatCompletion(
        id=ident,
        created=created,
        model=f"{c.provider}/{c.model}",
        choices=[first, *more],
        usage=out_usage(c),
    )


def new_id() -> str:
    return "chatcmpl-" + hex_id(24)


# ---- stream -------------------------------------------------------------------------------


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
        tail = b""
        if completion.sources:  # the citations, once the answer is whole (OpenAI's delta)
            cites = ENCODER.encode(cited_in(completion))
            tail = chunks.head + b'{"annotations":' + cites + b"}" + chunks.tail
        tail += chunks.finish(finish_reason(completion))
        for o in completion.choices:
            tail += chunks.finish(o.finish if o.finish in _FINISH else "stop", o.index)
        if chunks.include_usage:
            tail += chunks.usage(completion)
        return tail + DONE


# ---- the endpoint ---------------------------------------------------------------------------


def routes(rt: Runtime) -> list[Route]:
    async def completions(begun: Begun, decoded: Decoded, request: Request) -> Response:
        body = decoded.body
        validate(body)
        call: ChatCall = Call(  # the bare class: a subscripted generic's call is slow
            principal=begun.principal,
            request_id=begun.request_id,
            models=asked("models", body.models, body.model),
            fallbacks=asked("fallback_models", body.fallback_models) + header_fallbacks(request),
            request=chat_request(body, decoded.extra),
            timeout=begun.deadline(body.stream),
            received=begun.received,
            surface="openai",
            stream=body.stream,
            route=routed(begun, body.strategy),
        )
        ident, created = new_id(), int(time.time())
        if body.stream:
            stream = await rt.chat.open_stream(call)
            include = body.stream_options is not None and body.stream_options.include_usage
            renderer = _Renderer(Chunks(ident, created, stream.target.ref, include))
            return sse(stream, renderer, rt)
        completion = await rt.chat.complete(call)
        return json_response(render(completion, ident, created), headers=answer_headers(completion))

    chat = endpoint(rt, decode_chat, completions)
    return [Route("/v1/chat/completions", chat, methods=["POST"])]
