"""The Iron Labs-style surface: `POST /api/v1/completions`, plain JSON or SSE.

Shapes follow shared/reference/ironlabs-completions.md field for field. Stream events:
`{"type":"text","text":...}` per piece of text, then `{"type":"response", ...the complete
response object...}`, then `[DONE]`; a failure after the first text ends the stream with
`{"type":"error","error":{...}}` before `[DONE]`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Literal

import msgspec
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router.api.common import (
    ENCODER,
    decode,
    json_response,
    read_body,
    request_timeout,
    trail_header,
)
from router.core.chat import ChatCall, ChatStream, StreamFailed
from router.core.types import (
    ChatRequest,
    Completion,
    Event,
    ImagePart,
    Message,
    TextDelta,
    TextPart,
)
from router.errors import NotFoundError, RequestError
from router.lifecycle import DRAIN_MESSAGE, DrainDeadline, Lifecycle
from router.runtime import Runtime
from router.store.conversations import Turn, title_from

# ---- request ------------------------------------------------------------------------------


class _ImageUrl(msgspec.Struct, frozen=True):
    url: str
    detail: str | None = None


class InText(msgspec.Struct, frozen=True, tag="text", forbid_unknown_fields=True):
    text: str


class InImageUrl(msgspec.Struct, frozen=True, tag="image_url", forbid_unknown_fields=True):
    image_url: _ImageUrl | str


class InImage(msgspec.Struct, frozen=True, tag="image", forbid_unknown_fields=True):
    url: str


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


_REQUEST = msgspec.json.Decoder(CompletionsRequest)

# ---- response -----------------------------------------------------------------------------


class OutCosts(msgspec.Struct):
    input_tokens_cost: Decimal | None
    output_tokens_cost: Decimal | None
    total_tokens_cost: Decimal | None


class OutUsage(msgspec.Struct):
    promptTokens: int
    completionTokens: int
    totalTokens: int
    reasoningTokens: int
    costs: OutCosts


class OutText(msgspec.Struct, kw_only=True):
    type: str = "text"
    text: str


class OutMessage(msgspec.Struct, kw_only=True):
    role: str = "assistant"
    type: str = "text"
    content: list[OutText]


class CompletionsResponse(msgspec.Struct):
    provider: str
    model: str
    responseMessageId: str
    conversationId: str
    conversationTitle: str
    message: OutMessage
    usage: OutUsage
    latency: int
    ttft: int


class FinalEvent(CompletionsResponse, tag="response", tag_field="type"):
    pass


class TextEvent(msgspec.Struct, tag="text", tag_field="type"):
    text: str


_UNKNOWN = OutCosts(None, None, None)
_DONE = b"data: [DONE]\n\n"

# ---- the endpoint ---------------------------------------------------------------------------


def _part(p: InText | InImageUrl | InImage) -> TextPart | ImagePart:
    if isinstance(p, InText):
        return TextPart(p.text)
    if isinstance(p, InImage):
        return ImagePart(p.url)
    image = p.image_url
    return ImagePart(image) if isinstance(image, str) else ImagePart(image.url, image.detail)


def _message(m: InMessage) -> Message:
    if isinstance(m.content, str):
        return Message(m.role, (TextPart(m.content),))
    return Message(m.role, tuple(_part(p) for p in m.content))


def validate(body: CompletionsRequest) -> None:
    """Checks beyond the types, each naming its field."""
    if not body.messages:
        raise RequestError("invalid_value", "At least one message is required.", "messages")
    if not body.models:
        raise RequestError("invalid_value", "At least one model is required.", "models")
    if body.temperature is not None and not 0 <= body.temperature <= 1:
        raise RequestError("invalid_value", "temperature must be between 0 and 1.", "temperature")
    if body.maxTokens is not None and body.maxTokens < 1:
        raise RequestError("invalid_value", "maxTokens must be at least 1.", "maxTokens")
    if body.maxRetries is not None and not 0 <= body.maxRetries <= 10:
        raise RequestError("invalid_value", "maxRetries must be between 0 and 10.", "maxRetries")
    if body.search:
        raise RequestError(
            "search_unavailable",
            "Web search grounding is not available on this gateway; send search: false.",
            "search",
        )
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
) -> CompletionsResponse:
    u = completion.usage
    c = completion.costs
    costs = (
        OutCosts(c.input_tokens_cost, c.output_tokens_cost, c.total_tokens_cost) if c else _UNKNOWN
    )
    return cls(
        provider=completion.provider,
        model=completion.model,
        responseMessageId=message_id,
        conversationId=conv_id,
        conversationTitle=title,
        message=OutMessage(content=[OutText(text=completion.text)]),
        usage=OutUsage(
            u.prompt_tokens, u.completion_tokens, u.total_tokens, u.reasoning_tokens, costs
        ),
        latency=completion.latency_ms,
        ttft=completion.ttft_ms,
    )


def routes(rt: Runtime) -> list[Route]:
    async def completions(request: Request) -> Response:
        received = rt.now()
        principal = await rt.auth.authenticate(request.headers.get("authorization"))
        body = decode(_REQUEST, await read_body(request))
        validate(body)
        new = tuple(_message(m) for m in body.messages)
        conv_id, title, history = await _conversation(rt, body.conversationId, new)
        call = ChatCall(
            principal=principal,
            models=tuple(body.models),
            fallbacks=tuple(body.fallback_models),
            request=ChatRequest(
                messages=history + new, temperature=body.temperature, max_tokens=body.maxTokens
            ),
            max_retries=body.maxRetries,
            timeout=request_timeout(request),
            received=received,
            surface="ironlabs",
        )
        message_id = str(uuid.uuid4())
        keep = _Keeper(rt, conv_id, title, new, message_id)
        if body.stream:
            stream = await rt.chat.open_stream(call)
            headers = {"x-router-attempts": trail_header(stream.trail)}
            return EventSourceResponse(
                _sse(stream, keep, rt.lifecycle), headers=headers, ping=15, send_timeout=None
            )
        completion = await rt.chat.complete(call)
        keep(completion)
        payload = render(completion, message_id, conv_id, title)
        return json_response(
            payload, headers={"x-router-attempts": trail_header(completion.attempts)}
        )

    return [Route("/api/v1/completions", completions, methods=["POST"])]


async def _conversation(
    rt: Runtime, conversation_id: str | None, new: tuple[Message, ...]
) -> tuple[str, str, tuple[Message, ...]]:
    if conversation_id is None:
        return str(uuid.uuid4()), title_from(new), ()
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
            )
        )


def _frames(batch: list[Event]) -> bytes:
    return b"".join(
        b"data: " + ENCODER.encode(TextEvent(e.text)) + b"\n\n"
        for e in batch
        if type(e) is TextDelta
    )


async def _sse(stream: ChatStream, keep: _Keeper, lifecycle: Lifecycle) -> AsyncIterator[bytes]:
    try:
        async for batch in lifecycle.guarded(stream):
            frames = _frames(batch)
            if frames:
                yield frames
    except StreamFailed as failed:
        error = {
            "type": "error",
            "error": {
                "code": failed.error.failure.value,
                "message": failed.error.message,
                "provider": failed.completion.provider,
                "model": failed.completion.model,
                "attempts": failed.completion.attempts,
            },
        }
        yield b"data: " + ENCODER.encode(error) + b"\n\n" + _DONE
        return
    except DrainDeadline:
        yield _drain_error(stream)
        return
    completion = stream.completion
    assert completion is not None
    keep(completion)
    final = render(completion, keep.mid, keep.conv_id, keep.title, FinalEvent)
    yield b"data: " + ENCODER.encode(final) + b"\n\n" + _DONE


def _drain_error(stream: ChatStream) -> bytes:
    error = {
        "type": "error",
        "error": {
            "code": "shutting_down",
            "message": DRAIN_MESSAGE,
            "provider": stream.target.provider.name,
            "model": stream.target.model,
            "attempts": stream.trail,
        },
    }
    return b"data: " + ENCODER.encode(error) + b"\n\n" + _DONE
