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
from collections.abc import Sequence
from decimal import Decimal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router.api.common import (
    DONE,
    ENCODER,
    Begun,
    answer_headers,
    asked,
    endpoint,
    header_fallbacks,
    json_response,
    sse,
)
from router.api.openai_request import Decoded, chat_request, decode_chat, validate
from router.core.chat import ChatCall, ChatStream
from router.core.types import (
    Attempt,
    Completion,
    Event,
    Logprobs,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
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
    logprobs: msgspec.Raw | None = None
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


def _message(text: str, calls: Sequence[ToolCall], reasoning: str = "") -> OutMessage:
    out = [OutToolCall(id=c.id, function=OutFunction(c.name, c.arguments)) for c in calls]
    return OutMessage(
        content=text if text or not out else None,
        tool_calls=out or msgspec.UNSET,
        reasoning_content=reasoning or msgspec.UNSET,
    )


def render(completion: Completion, ident: str, created: int) -> ChatCompletion:
    c = completion
    first = OutChoice(
        message=_message(c.text, c.tool_calls, c.reasoning),
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
    return "chatcmpl-" + secrets.token_hex(12)


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
        call = ChatCall(
            principal=begun.principal,
            request_id=begun.request_id,
            models=asked("models", body.models, body.model),
            fallbacks=asked("fallback_models", body.fallback_models) + header_fallbacks(request),
            request=chat_request(body, decoded.extra),
            timeout=begun.deadline(body.stream),
            received=begun.received,
            surface="openai",
            stream=body.stream,
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
