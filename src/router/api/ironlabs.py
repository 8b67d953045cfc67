"""The Iron Labs-style surface: `POST /api/v1/completions`, plain JSON or SSE.

Shapes follow shared/reference/ironlabs-completions.md field for field. Stream events:
`{"type":"text","text":...}` per piece of text, then `{"type":"response", ...the complete
response object...}`, then `[DONE]`; with `search: true` a `{"type":"sources",...}` event
comes right before the `response` event (which carries `sources` too). A failure after the
first text ends the stream with `{"type":"error","error":{...}}` before `[DONE]`.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router.api.common import (
    DONE,
    ENCODER,
    MAX_OUTPUT,
    Begun,
    answer_headers,
    asked,
    check_ranges,
    endpoint,
    header_fallbacks,
    json_response,
    routed,
    sse,
)
from router.api.errors import OwnError
from router.api.openapi import CALL, JSON, SSE, Errors, Events, Op
from router.api.parts import InImage, InImageUrl, InText, check_images, part_of
from router.core.call import Call
from router.core.chat import ChatCall
from router.core.stream import ChatStream
from router.core.types import (
    Attempt,
    ChatRequest,
    Completion,
    Event,
    Message,
    TextDelta,
    TextPart,
)
from router.errors import NotFoundError, RequestError, StreamFailed
from router.ids import uuid4
from router.lifecycle import DRAIN_MESSAGE
from router.runtime import Runtime
from router.store.conversations import Turn

# ---- request ------------------------------------------------------------------------------


class InMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    role: Literal["system", "user", "assistant"]
    content: str | list[InText | InImageUrl | InImage]


class CompletionsRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    messages: list[InMessage]
    models: list[str]
    fallback_models: list[str] = []
    stream: bool = False
    temperature: float | None = None
    maxTokens: int | None = None
    maxRetries: int | None = None
    search: bool = False
    conversationId: str | None = None
    strategy: str | None = None  # extension: how `models` are ordered (README, "Strategies")


_REQUEST = msgspec.json.Decoder(CompletionsRequest)

# ---- response -----------------------------------------------------------------------------


class OutCosts(msgspec.Struct):
    input_tokens_cost: Decimal | None
    output_tokens_cost: Decimal | None
    total_tokens_cost: Decimal | None
    search_cost: Decimal | msgspec.UnsetType | None = msgspec.UNSET  # when search was asked


class OutUsage(msgspec.Struct):
    promptTokens: int
    completionTokens: int
    totalTokens: int
    reasoningTokens: int
    costs: OutCosts
    searches: int | msgspec.UnsetType = msgspec.UNSET  # when search was asked


class OutText(msgspec.Struct, kw_only=True):
    type: str = "text"
    text: str


class OutMessage(msgspec.Struct, kw_only=True):
    role: str = "assistant"
    type: str = "text"
    content: list[OutText]


class OutSource(msgspec.Struct):
    url: str
    title: str


class CompletionsResponse(msgspec.Struct, kw_only=True):
    provider: str
    model: str
    responseMessageId: str
    conversationId: str
    conversationTitle: str
    message: OutMessage
    usage: OutUsage
    latency: int
    ttft: int
    sources: list[OutSource] | msgspec.UnsetType = msgspec.UNSET  # when search was asked


class SourcesEvent(msgspec.Struct, tag="sources", tag_field="type"):
    sources: list[OutSource]


class FinalEvent(CompletionsResponse, tag="response", tag_field="type"):
    pass


class TextEvent(msgspec.Struct, tag="text", tag_field="type"):
    text: str


class StreamError(msgspec.Struct):
    code: str
    message: str
    provider: str
    model: str
    attempts: list[Attempt]


class ErrorEvent(msgspec.Struct, tag="error", tag_field="type"):
    """The stream broke beyond rescue after its first text (or the gateway is stopping)."""

    error: StreamError


_UNKNOWN = OutCosts(None, None, None)

# ---- the endpoint ---------------------------------------------------------------------------


def _message(m: InMessage) -> Message:
    if isinstance(m.content, str):
        return Message(m.role, (TextPart(m.content),))
    return Message(m.role, tuple(part_of(p) for p in m.content))


def title_from(messages: tuple[Message, ...], limit: int = 60) -> str:
    """A short title from the first user message."""
    text = next((m.text() for m in messages if m.role == "user"), "").strip()
    text = " ".join(text.split())
    if not text:
        return "New conversation"
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "…"


_RANGES = (("temperature", 0, 1), ("maxTokens", 1, MAX_OUTPUT), ("maxRetries", 0, 10))


def validate(body: CompletionsRequest) -> None:
    """Checks beyond the types, each naming its field."""
    if not body.messages:
        raise RequestError("invalid_value", "At least one message is required.", "messages")
    if not body.models:
        raise RequestError("invalid_value", "At least one model is required.", "models")
    check_ranges(body, _RANGES)
    for i, m in enumerate(body.messages):
        if isinstance(m.content, list):
            check_images(m.content, f"messages[{i}].content")
    if body.conversationId is not None:
        try:
            uuid.UUID(body.conversationId)
        except ValueError:
            raise RequestError(
                "invalid_value", "conversationId must be a UUID.", "conversationId"
            ) from None


def render(
    completion: Completion,
    message_id: str,
    conv_id: str,
    title: str,
    cls: type[CompletionsResponse] = CompletionsResponse,
    search: bool = False,
) -> CompletionsResponse:
    u = completion.usage
    c = completion.costs
    costs = (
        OutCosts(c.input_tokens_cost, c.output_tokens_cost, c.total_tokens_cost) if c else _UNKNOWN
    )
    if search:
        costs = msgspec.structs.replace(costs, search_cost=c.search_cost if c else None)
    return cls(
        provider=completion.provider,
        model=completion.model,
        responseMessageId=message_id,
        conversationId=conv_id,
        conversationTitle=title,
        message=OutMessage(content=[OutText(text=completion.text)]),
        usage=OutUsage(
            u.prompt_tokens,
            u.completion_tokens,
            u.total_tokens,
            u.reasoning_tokens,
            costs,
            u.searches if search else msgspec.UNSET,
        ),
        latency=completion.latency_ms,
        ttft=completion.ttft_ms,
        sources=sources_of(completion) if search else msgspec.UNSET,
    )


def sources_of(completion: Completion) -> list[OutSource]:
    return [OutSource(s.url, s.title) for s in completion.sources]


def routes(rt: Runtime) -> list[Route]:
    async def completions(begun: Begun, body: CompletionsRequest, request: Request) -> Response:
        validate(body)
        new = tuple(_message(m) for m in body.messages)
        conv_id, title, history = await _conversation(rt, body.conversationId, new)
        call: ChatCall = Call(  # the bare class: a subscripted generic's call is slow
            principal=begun.principal,
            request_id=begun.request_id,
            models=asked("models", body.models),
            fallbacks=asked("fallback_models", body.fallback_models) + header_fallbacks(request),
            request=ChatRequest(
                messages=history + new,
                temperature=body.temperature,
                max_tokens=body.maxTokens,
                search=body.search,
            ),
            max_retries=body.maxRetries,
            timeout=begun.deadline(body.stream),
            received=begun.received,
            surface="ironlabs",
            stream=body.stream,
            route=routed(begun, body.strategy),
        )
        keep = _Keeper(rt, conv_id, title, new, uuid4())
        if body.stream:
            renderer = _Renderer(keep, body.search)
            return sse(await rt.chat.open_stream(call), renderer, rt)
        completion = await rt.chat.complete(call)
        keep(completion)
        payload = render(completion, keep.mid, conv_id, title, search=body.search)
        return json_response(payload, headers=answer_headers(completion))

    return [Route("/api/v1/completions", endpoint(rt, _REQUEST, completions), methods=["POST"])]


async def _conversation(
    rt: Runtime, conversation_id: str | None, new: tuple[Message, ...]
) -> tuple[str, str, tuple[Message, ...]]:
    if conversation_id is None:
        return uuid4(), title_from(new), ()
    found = await rt.store.load(conversation_id)
    if found is None:
        raise NotFoundError(
            "conversation_not_found", f"No conversation {conversation_id}.", "conversationId"
        )
    return found.id, found.title, found.messages


class _Keeper:
    """Stores the turn once the answer is complete."""

    def __init__(self, rt: Runtime, conv_id: str, title: str, new: tuple[Message, ...], mid: str):
        self.rt, self.conv_id, self.title, self.new, self.mid = rt, conv_id, title, new, mid

    def __call__(self, completion: Completion) -> None:
        answer = Message("assistant", (TextPart(completion.text),))
        self.rt.store.save(
            Turn(
                self.conv_id,
                self.title,
                self.new,
                answer,
                completion.provider,
                completion.model,
                self.mid,
                completion.sources,
            )
        )


class _Renderer:
    """The Iron Labs stream: `text` events, then the `response` event (or an `error` event
    when the stream broke beyond rescue), then `[DONE]`."""

    def __init__(self, keep: _Keeper, search: bool) -> None:
        self.keep = keep
        self.search = search

    def frames(self, batch: list[Event]) -> bytes:
        return b"".join(
            b"data: " + ENCODER.encode(TextEvent(e.text)) + b"\n\n"
            for e in batch
            if type(e) is TextDelta
        )

    def failed(self, failed: StreamFailed) -> bytes:
        c = failed.completion
        error = StreamError(
            failed.error.failure.value, failed.error.message, c.provider, c.model, list(c.attempts)
        )
        return b"data: " + ENCODER.encode(ErrorEvent(error)) + b"\n\n" + DONE

    def drained(self, stream: ChatStream) -> bytes:
        error = StreamError(
            "shutting_down",
            DRAIN_MESSAGE,
            stream.target.provider.name,
            stream.target.model,
            list(stream.trail.entries),
        )
        return b"data: " + ENCODER.encode(ErrorEvent(error)) + b"\n\n" + DONE

    def finished(self, completion: Completion) -> bytes:
        keep = self.keep
        keep(completion)
        final = render(completion, keep.mid, keep.conv_id, keep.title, FinalEvent, self.search)
        head = b""
        if self.search:  # the sources, known once the answer is, before the final event
            event = SourcesEvent(sources_of(completion))
            head = b"data: " + ENCODER.encode(event) + b"\n\n"
        return head + b"data: " + ENCODER.encode(final) + b"\n\n" + DONE


OPERATIONS = (
    Op(
        "POST",
        "/api/v1/completions",
        "Chat completion (Iron Labs)",
        "Iron Labs",
        {
            JSON: CompletionsResponse,
            SSE: Events((TextEvent | SourcesEvent | FinalEvent | ErrorEvent,)),
        },
        CompletionsRequest,
        Errors(OwnError, CALL),
        examples=(
            {"messages": [{"role": "user", "content": "Say hi"}], "models": ["demo/echo"]},
            {
                "messages": [{"role": "user", "content": "Say hi"}],
                "models": ["demo/echo"],
                "stream": True,
            },
        ),
    ),
)
