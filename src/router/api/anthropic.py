"""The Anthropic Messages surface: `POST /v1/messages` (also `?beta=true`, as Claude Code
sends it), `POST /v1/messages/count_tokens`, and the Anthropic shape of `GET /v1/models`.

Keys: the gateway's master or virtual keys, as `x-api-key` or `Authorization: Bearer`.
`model` goes through the planner as on every surface (bare names, `provider/model`, aliases
that expand to chains); `x-router-fallback-models` adds a chain per request. An Anthropic
target gets the request natively (`router.protocols.anthropic_native`); any other target
gets it translated through the canonical core (`router.api.anthropic_request`), with what it
cannot take named in `x-router-dropped`. Every answer carries `x-router-attempts`; a
non-streamed one `x-router-cost` (USD) when the catalog prices the model.

The upstream answer is always read as a stream, also for a non-streamed request (then
assembled here): canonical completions keep no thinking signatures or block order, streams
do. Errors are Anthropic's shape; when every target failed, the status is the most telling
failure's, 529 `overloaded_error` when every attempt was overloaded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router.api import anthropic_render as render
from router.api.anthropic_request import (
    BODY,
    PASSED_HEADERS,
    RAW,
    MessagesBody,
    Translation,
    translate,
    validate,
)
from router.api.common import (
    Begun,
    decode,
    header_fallbacks,
    json_response,
    read_body,
    request_timeout,
    sse,
    trail_header,
)
from router.api.errors import AnthropicError, anthropic_error, failed
from router.api.openapi import CALL, JSON, SSE, TEXT, Errors, Op, Raw
from router.core.call import Call
from router.core.chat import ChatCall
from router.core.stream import ChatStream
from router.core.types import Asked, Completion, Event, Native, Target, estimate_tokens
from router.errors import AllTargetsFailed, Failure, RequestError, StreamFailed
from router.lifecycle import DRAIN_MESSAGE
from router.runtime import Runtime

Handler = Callable[[Request], Awaitable[Response]]
_STREAM_STATUS = {Failure.RATE_LIMITED: 429, Failure.OVERLOADED: 529}


def authorization(request: Request) -> str | None:
    found = request.headers.get("authorization")
    if found:
        return found
    key = request.headers.get("x-api-key")
    return f"Bearer {key}" if key else None


async def _begin(rt: Runtime, request: Request) -> Begun:
    received = rt.now()
    principal = await rt.auth.authenticate(authorization(request))
    return Begun(received, principal, request_timeout(request))


def _error(status: int, message: str, field: str | None, headers: dict[str, str]) -> Response:
    return json_response(anthropic_error(status, "", message, field, None), status, headers)


def _chain_failed(exc: AllTargetsFailed) -> Response:
    f = failed(exc, trail_header(exc.attempts))
    tried = [a for a in exc.attempts if a.status is not None]  # reached an upstream
    status = 529 if tried and all(a.outcome == Failure.OVERLOADED for a in tried) else f.status
    return _error(status, f.message, None, f.headers)


def guarded(handler: Handler) -> Handler:
    """Every answer of this surface in Anthropic's shape, with `x-router-attempts`."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except AllTargetsFailed as exc:
            return _chain_failed(exc)
        except RequestError as exc:
            return _error(exc.status, exc.message, exc.field, {"x-router-attempts": ""})

    return run


def _native(target: Target) -> bool:
    return target.provider.protocol == "anthropic"


def _passed_headers(request: Request) -> tuple[tuple[str, str], ...]:
    return tuple((n, v) for n in PASSED_HEADERS if (v := request.headers.get(n)) is not None)


# ---- streams ------------------------------------------------------------------------------


class _Renderer:
    """The Messages event stream: `message_start` and a `ping` before the first block, the
    blocks, then `message_delta` (stop reason, usage) and `message_stop`; `event: error`
    when the stream breaks beyond rescue."""

    def __init__(self, ident: str, model: str, blocks: render.Blocks) -> None:
        self.ident, self.model, self.blocks = ident, model, blocks
        self.started = False

    def _start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        message = render.OMessage(
            id=self.ident,
            model=self.model,
            content=[],
            stop_reason=None,
            usage=render.OUsage(0, 0),
        )
        start = render.event(b"message_start", {"type": "message_start", "message": message})
        return start + render.event(b"ping", {"type": "ping"})

    def frames(self, batch: list[Event]) -> bytes:
        return self._start() + render.frames(self.blocks.ops(batch))

    def failed(self, failed: StreamFailed) -> bytes:
        status = _STREAM_STATUS.get(failed.error.failure, 500)
        body = anthropic_error(
            status, "", f"Upstream provider error: {failed.error.message}", None, None
        )
        return self._start() + render.event(b"error", body)

    def drained(self, stream: ChatStream) -> bytes:
        body = anthropic_error(503, "shutting_down", DRAIN_MESSAGE, None, None)
        return self._start() + render.event(b"error", body)

    def finished(self, completion: Completion) -> bytes:
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": render.stop_reason(completion), "stop_sequence": None},
            "usage": render.usage_of(completion),
        }
        return (
            self._start()
            + render.frames(self.blocks.close())
            + render.event(b"message_delta", delta)
            + render.event(b"message_stop", {"type": "message_stop"})
        )


async def _whole(stream: ChatStream, model: str, blocks: render.Blocks) -> Response:
    ops: list[render.Op] = []
    try:
        async for batch in stream:
            ops += blocks.ops(batch)
    except StreamFailed as exc:
        status = _STREAM_STATUS.get(exc.error.failure, 502)
        trail = {"x-router-attempts": trail_header(exc.completion.attempts)}
        return _error(status, f"Upstream provider error: {exc.error.message}", None, trail)
    completion = stream.completion
    assert completion is not None
    message = render.OMessage(
        id=render.new_id(),
        model=model,
        content=render.whole(ops + blocks.close()),
        stop_reason=render.stop_reason(completion),
        usage=render.usage_of(completion),
    )
    headers = {"x-router-attempts": trail_header(completion.attempts)}
    if completion.costs is not None:
        headers["x-router-cost"] = str(completion.costs.total_tokens_cost)
    return json_response(message, headers=headers)


# ---- endpoints ----------------------------------------------------------------------------


def _refuse_translation(rt: Runtime, call: ChatCall, refusal: tuple[str, str] | None) -> None:
    """A 400 when the request would certainly be translated and translating changes it."""
    if refusal is None:
        return
    targets = rt.chat.plan(call).targets
    if targets and not _native(targets[0]):
        field, why = refusal
        message = (
            f"{field}: {why} cannot be translated for {targets[0].ref}, "
            "which does not speak Anthropic Messages."
        )
        raise RequestError("unsupported_parameter", message, field)


async def _decoded(rt: Runtime, request: Request, count: bool) -> tuple[ChatCall, Translation]:
    begun = await _begin(rt, request)
    data = await read_body(request)
    body = decode(BODY, data)
    validate(body, count)
    translation = translate(body, decode(RAW, data), _passed_headers(request))
    call: ChatCall = Call(  # the bare class: a subscripted generic's call is slow
        principal=begun.principal,
        models=(Asked(body.model, "model"),),
        fallbacks=header_fallbacks(request),
        request=translation.request,
        timeout=begun.timeout,
        received=begun.received,
        surface="anthropic",
        stream=body.stream and not count,
    )
    _refuse_translation(rt, call, translation.refusal)
    return call, translation


def routes(rt: Runtime) -> list[Route]:
    async def messages(request: Request) -> Response:
        call, translation = await _decoded(rt, request, count=False)
        stream = await rt.chat.open_stream(call)
        model = call.models[0].name
        blocks = render.Blocks(thinking=_native(stream.target))
        dropped = () if _native(stream.target) else translation.dropped
        if call.stream:
            response = sse(stream, _Renderer(render.new_id(), model, blocks), rt)
        else:
            response = await _whole(stream, model, blocks)
        if dropped:
            response.headers["x-router-dropped"] = ", ".join(dropped)
        return response

    async def count_tokens(request: Request) -> Response:
        call, _ = await _decoded(rt, request, count=True)
        return await _count(rt, call)

    return [
        Route("/v1/messages", guarded(messages), methods=["POST"]),
        Route("/v1/messages/count_tokens", guarded(count_tokens), methods=["POST"]),
    ]


class _Count(msgspec.Struct):
    input_tokens: int


async def _count(rt: Runtime, call: ChatCall) -> Response:
    """Anthropic's own count for an Anthropic target; elsewhere an estimate (about four
    characters a token over the messages, system and tool definitions), marked as such."""
    targets = rt.chat.plan(call).targets
    if targets and _native(targets[0]):
        native = call.request.native or Native("anthropic")
        request = msgspec.structs.replace(
            call.request, native=msgspec.structs.replace(native, endpoint="count_tokens")
        )
        only = msgspec.structs.replace(
            call, models=(Asked(targets[0].ref, "model"),), fallbacks=(), request=request
        )
        completion = await rt.chat.complete(only)
        headers = {"x-router-attempts": trail_header(completion.attempts)}
        return json_response(_Count(int(completion.text or 0)), headers=headers)
    text = "".join(m.text() for m in call.request.messages)
    tools = b"".join(render.ENCODER.encode(t) for t in call.request.tools)
    tokens = (
        estimate_tokens(text) + estimate_tokens(tools.decode()) + 4 * len(call.request.messages)
    )
    headers = {"x-router-attempts": "", "x-router-estimated": "true"}
    return json_response(_Count(tokens), headers=headers)


# ---- GET /v1/models in Anthropic's shape ----------------------------------------------------


class _Model(msgspec.Struct, kw_only=True):
    type: str = "model"
    id: str
    display_name: str
    created_at: str = "1970-01-01T00:00:00Z"  # the catalog keeps no release dates


class _ModelPage(msgspec.Struct, kw_only=True):
    data: list[_Model]
    has_more: bool
    first_id: str | None
    last_id: str | None


def wants_model_page(request: Request) -> bool:
    """Anthropic's SDKs and Claude Code send `anthropic-version`; OpenAI's never do."""
    return "anthropic-version" in request.headers


def model_page(ids: list[str], request: Request) -> Response:
    """One page of `ids` (chat models, in catalog order): `limit` (1-1000, default 20),
    `after_id` / `before_id` as Anthropic pages them."""
    raw = request.query_params.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise RequestError("invalid_value", "limit: must be between 1 and 1000", "limit")
    limit = int(raw)
    after, before = request.query_params.get("after_id"), request.query_params.get("before_id")
    start = ids.index(after) + 1 if after in ids else 0
    end = ids.index(before) if before in ids else len(ids)
    if before in ids and after is None:
        start = max(0, end - limit)
    page = ids[start : min(end, start + limit)]
    more = start + limit < end if before is None else start > 0
    data = [_Model(id=i, display_name=i) for i in page]
    first, last = (page[0], page[-1]) if page else (None, None)
    return json_response(_ModelPage(data=data, has_more=more, first_id=first, last_id=last))


_ANSWER: dict[str, object] = {
    JSON: Raw({"type": "object"}),
    SSE: TEXT,
}  # Anthropic's message, or its event stream
_AUTH = ("bearer", "x-api-key")
OPERATIONS = (
    Op(
        "POST",
        "/v1/messages",
        "Message (Anthropic Messages API)",
        "Anthropic",
        _ANSWER,
        MessagesBody,
        Errors(AnthropicError, CALL),
        _AUTH,
    ),
    Op(
        "POST",
        "/v1/messages/count_tokens",
        "Count a message's input tokens",
        "Anthropic",
        {JSON: Raw({"type": "object"})},
        MessagesBody,
        Errors(AnthropicError, CALL),
        _AUTH,
    ),
)
