"""The Iron Labs-style surface: `POST /api/v1/completions`, plain JSON or SSE.

Shapes follow shared/reference/ironlabs-completions.md field for field. Stream events:
`{"type":"text","text":...}` per piece of text, then `{"type":"response", ...the complete
response object...}`, then `[DONE]`; a failure after the first text ends the stream with
`{"type":"error","error":{...}}` before `[DONE]`.
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
    sse,
)
from router.api.parts import InImage, InImageUrl, InText, check_images, part_of
from router.core.chat import ChatCall, ChatStream
from router.core.types import ChatRequest, Completion, Event, Message, TextDelta, TextPart
from router.errors import NotFoundError, RequestError, StreamFailed
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
    if body.search:
        raise RequestError(
            "search_unavailable",
            "Web search grounding is not available on this gateway; send search: false.",
            "search",
        )
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
    async def completions(begun: Begun, body: CompletionsRequest, request: Request) -> Response:
        validate(body)
        new = tuple(_message(m) for m in body.messages)
        conv_id, title, history = await _conversation(rt, body.conversationId, new)
        call = ChatCall(
            principal=begun.principal,
            request_id=begun.request_id,
            models=asked("models", body.models),
            fallbacks=asked("fallback_models", body.fallback_models) + header_fallbacks(request),
            request=ChatRequest(
                messages=history + new, temperature=body.temperature, max_tokens=body.maxTokens
            ),
            max_retries=body.maxRetries,
            timeout=begun.deadline(body.stream),
            received=begun.received,
            surface="ironlabs",
            stream=body.stream,
        )
        keep = _Keeper(rt, conv_id, title, new, str(uuid.uuid4()))
        if body.stream:
            return sse(await rt.chat.open_stream(call), _Renderer(keep), rt)
        completion = await rt.chat.complete(call)
        keep(completion)
        payload = render(completion, keep.mid, conv_id, title)
        return json_response(payload, headers=answer_headers(completion))

    return [Route("/api/v1/completions", endpoint(rt, _REQUEST, completions), methods=["POST"])]


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


class _Renderer:
    """The Iron Labs stream: `text` events, then the `response` event (or an `error` event
    when the stream broke beyond rescue), then `[DONE]`."""

    def __init__(self, keep: _Keeper) -> None:
        self.keep = keep

    def frames(self, batch: list[Event]) -> bytes:
        return b"".join(
            b"data: " + ENCODER.encode(TextEvent(e.text)) + b"\n\n"
            for e in batch
            if type(e) is TextDelta
        )

    def failed(self, failed: StreamFailed) -> bytes:
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
        return b"data: " + ENCODER.encode(error) + b"\n\n" + DONE

    def drained(self, stream: ChatStream) -> bytes:
        error = {
            "type": "error",
            "error": {
                "code": "shutting_down",
                "message": DRAIN_MESSAGE,
                "provider": stream.target.provider.name,
                "model": stream.target.model,
                "attempts": stream.trail.entries,
            },
        }
        return b"data: " + ENCODER.encode(error) + b"\n\n" + DONE

    def finished(self, completion: Completion) -> bytes:
        keep = self.keep
        keep(completion)
        final = render(completion, keep.mid, keep.conv_id, keep.title, FinalEvent)
        return b"data: " + ENCODER.encode(final) + b"\n\n" + DONE
