"""The surface kit: what every surface shares, so a surface module keeps only its own
request/response Structs and rendering.

- the endpoint skeleton (`endpoint`): arrival time, caller, body decoded with field-precise
  errors, the caller's deadline, then the surface's handler;
- requested model names with the surface's own field for each (`asked`);
- the SSE relay (`sse`): a `ChatStream` rendered by a surface's `StreamRenderer`;
- JSON responses and the attempt-trail header.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Protocol, TypeVar

import msgspec
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response

from router.auth import Principal
from router.core.chat import ChatStream
from router.core.types import Asked, Attempt, Completion, Event
from router.errors import RequestError, StreamFailed
from router.lifecycle import DrainDeadline, Lifecycle
from router.runtime import Runtime

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]

ENCODER = msgspec.json.Encoder(decimal_format="number")
MAX_BODY = 32 * 1024 * 1024
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_NAMED = re.compile(r"field `(?P<name>[^`]+)`")


def field_of(message: str) -> tuple[str, str | None]:
    """msgspec's message split into (text, field path like `messages[0].role`)."""
    match = _AT.search(message)
    path = match.group("path").lstrip(".") if match else ""
    text = message[: match.start()] if match else message
    named = _NAMED.search(text)
    if named and ("unknown field" in text or "missing required field" in text):
        path = f"{path}.{named.group('name')}" if path else named.group("name")
    return text, path or None


def decode(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """Decode a request body; every failure becomes a 400 naming the offending field."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        text, field = field_of(str(exc))
        code = "invalid_request"
        if "unknown field" in text:
            code = "unknown_field"
        elif "missing required field" in text:
            code = "missing_field"
        raise RequestError(code, text, field) from None
    except msgspec.DecodeError as exc:
        raise RequestError("invalid_json", f"The body is not valid JSON: {exc}", None) from None


async def read_body(request: Request) -> bytes:
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > MAX_BODY:
        raise RequestError("body_too_large", "The request body is too large.", None, status=413)
    return await request.body()


def request_timeout(request: Request) -> float | None:
    """A per-request deadline in seconds: `x-router-timeout`, lowered to the OpenAI SDK's own
    `x-stainless-timeout` (no point working after the client has given up)."""
    found: float | None = None
    for name in ("x-router-timeout", "x-stainless-timeout"):
        raw = request.headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not 0 < value < float("inf"):
            if name == "x-stainless-timeout":
                continue
            raise RequestError(
                "invalid_value", f"{name} must be a positive number of seconds.", name
            )
        found = value if found is None else min(found, value)
    return found


def json_response(
    payload: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(ENCODER.encode(payload), status, headers, media_type="application/json")


def trail_header(attempts: Iterable[Attempt]) -> str:
    """`x-router-attempts`: `provider/model outcome status ms` entries, comma-separated."""
    return header_safe(
        ", ".join(
            f"{a.provider}/{a.model} {a.outcome} {a.status or '-'} {a.ms}ms" for a in attempts
        )
    )


def header_safe(text: str) -> str:
    """`text` as an HTTP header value can carry it: a model name the caller chose may hold
    any printable character, and a header only Latin-1 (ASCII here, escaped as `\\u...`)."""
    return text if text.isascii() else text.encode("ascii", "backslashreplace").decode()


# ---- the endpoint skeleton ----------------------------------------------------------------


class Begun(msgspec.Struct, frozen=True):
    """What every endpoint knows before its body: when, who, and the caller's deadline."""

    received: float  # loop time
    principal: Principal
    timeout: float | None


async def begin(rt: Runtime, request: Request) -> Begun:
    """Arrival time, caller and deadline: a bad key is refused before the body is read."""
    received = rt.now()
    principal = await rt.auth.authenticate(request.headers.get("authorization"))
    return Begun(received, principal, request_timeout(request))


def endpoint(
    rt: Runtime,
    decoder: msgspec.json.Decoder[T],
    handle: Callable[[Begun, T, Request], Awaitable[Response]],
) -> Handler:
    """A JSON endpoint: `handle(begun, body, request)` after the skeleton's steps."""

    async def run(request: Request) -> Response:
        begun = await begin(rt, request)
        body = decode(decoder, await read_body(request))
        return await handle(begun, body, request)

    return run


def asked(field: str, names: Sequence[str], first: str | None = None) -> tuple[Asked, ...]:
    """`names` as asked for in the list field `field` (`field[i]`); `first`, when given, is
    a single-model field (`model`) that comes before them."""
    head = (Asked(first, "model"),) if first is not None else ()
    out = head + tuple(Asked(n, f"{field}[{i}]") for i, n in enumerate(names))
    for a in out:
        if not a.name.isprintable():
            raise RequestError(
                "invalid_value", "A model name must not hold control characters.", a.field
            )
    return out


# ---- the SSE relay --------------------------------------------------------------------------

DONE = b"data: [DONE]\n\n"


class StreamRenderer(Protocol):
    """A surface's stream shape: bytes for each batch of events, for a stream that broke
    beyond rescue, and for the end (each already framed as SSE)."""

    def frames(self, batch: list[Event]) -> bytes: ...

    def failed(self, failed: StreamFailed) -> bytes: ...

    def drained(self, stream: ChatStream) -> bytes:
        """The stream was still open at the drain deadline (see `router.lifecycle`)."""
        ...

    def finished(self, completion: Completion) -> bytes: ...


def sse(stream: ChatStream, renderer: StreamRenderer, lifecycle: Lifecycle) -> Response:
    """The stream as an SSE response: one send per upstream read, a ping every 15 s of
    silence, and `x-router-attempts` as it stood at the commit point."""
    headers = {"x-router-attempts": trail_header(stream.trail)}
    return EventSourceResponse(
        _relay(stream, renderer, lifecycle), headers=headers, ping=15, send_timeout=None
    )


async def _relay(
    stream: ChatStream, renderer: StreamRenderer, lifecycle: Lifecycle
) -> AsyncIterator[bytes]:
    try:
        async for batch in lifecycle.guarded(stream):
            frames = renderer.frames(batch)
            if frames:
                yield frames
    except StreamFailed as failed:
        yield renderer.failed(failed)
        return
    except DrainDeadline:
        yield renderer.drained(stream)
        return
    completion = stream.completion
    assert completion is not None
    yield renderer.finished(completion)
