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
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Sequence
from typing import Protocol, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from router.api.sse import Last, SseResponse
from router.auth import Principal
from router.config import STRATEGIES, Strategy
from router.config_checks import HEDGE_AFTER
from router.core.call import RouteAsk
from router.core.stream import ChatStream
from router.core.types import Asked, Attempt, Completion, Event
from router.errors import RequestError, StreamFailed
from router.ids import hex_id
from router.lifecycle import DrainDeadline, Lifecycle
from router.observe.record import new_request_id
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


def headers_of(request: Request) -> dict[str, str]:
    """The request's headers as one dict, built once per request (the first of a repeated
    name wins, as with Starlette's `get`): Starlette's `Headers.get` scans the list and raises
    inside for a missing name, and an endpoint asks for about ten, most of them absent."""
    found: dict[str, str] | None = request.scope.get("router.headers")
    if found is None:
        found = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(request.scope["headers"])
        }
        request.scope["router.headers"] = found
    return found


async def read_body(request: Request) -> bytes:
    size = headers_of(request).get("content-length")
    if size is not None and size.isdigit() and int(size) > MAX_BODY:
        raise RequestError("body_too_large", "The request body is too large.", None, status=413)
    return await request.body()


def _seconds(request: Request, name: str, strict: bool) -> float | None:
    raw = headers_of(request).get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if 0 < value < float("inf"):
        return value
    if strict:
        raise RequestError("invalid_value", f"{name} must be a positive number of seconds.", name)
    return None  # an SDK's header we did not ask for: ignored when it makes no sense


def request_timeout(request: Request) -> float | None:
    """A per-request deadline in seconds: `x-router-timeout`, lowered to the Anthropic SDK's
    `x-stainless-timeout` (no point working after the client has given up)."""
    found = [
        v
        for v in (
            _seconds(request, "x-router-timeout", True),
            _seconds(request, "x-stainless-timeout", False),
        )
        if v is not None
    ]
    return min(found) if found else None


def strategy_of(value: str | None, field: str) -> Strategy | None:
    """A strategy name the caller gave (header or field), checked: a 400 naming `field`."""
    if value is None:
        return None
    if value not in STRATEGIES:
        raise RequestError(
            "invalid_value", f"{field} must be one of: {', '.join(STRATEGIES)}.", field
        )
    return value  # type: ignore[return-value]  # checked against the Literal's members above


def route_ask(request: Request) -> RouteAsk:
    """The caller's routing asks from headers: `x-router-strategy`, `x-router-hedge-after`,
    `x-router-cache` (seconds to cache the answer)."""
    headers = headers_of(request)
    hedge = headers.get("x-router-hedge-after")
    if hedge is not None and not HEDGE_AFTER.match(hedge):
        raise RequestError(
            "invalid_value",
            "x-router-hedge-after must be milliseconds or a percentile like p95.",
            "x-router-hedge-after",
        )
    cache = headers.get("x-router-cache")
    if cache is not None and not cache.isdigit():
        raise RequestError(
            "invalid_value", "x-router-cache must be whole seconds (0: off).", "x-router-cache"
        )
    strategy = strategy_of(headers.get("x-router-strategy"), "x-router-strategy")
    return RouteAsk(strategy, hedge, None if cache is None else int(cache))


def routed(begun: Begun, strategy: str | None) -> RouteAsk:
    """The routing asks of a call: a body's extension field wins over the header."""
    if strategy is None:
        return begun.route
    return msgspec.structs.replace(begun.route, strategy=strategy_of(strategy, "strategy"))


def json_response(
    payload: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(ENCODER.encode(payload), status, headers, media_type="application/json")


def trail_header(attempts: Iterable[Attempt]) -> str:
    """`x-router-attempts`: `provider/model outcome status ms` entries, comma-separated; a
    retry also says how long it waited before it started (`after Nms`), and ` hedged` ends the
    entry of an attempt started as a hedge."""
    return header_safe(
        ", ".join(
            f"{a.provider}/{a.model} {a.outcome} {a.status or '-'} {a.ms}ms"
            + (f" after {a.waited_ms}ms" if a.waited_ms else "")
            + (" hedged" if a.hedged is True else "")
            for a in attempts
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
    read_timeout: float | None = None  # the OpenAI/Anthropic SDKs' `x-stainless-read-timeout`
    request_id: str = ""  # `req_<hex>`: the ledger's and the logs' name for this request

    def deadline(self, stream: bool) -> float | None:
        """The call's deadline: the SDK's read timeout bounds a whole non-streamed answer
        (nothing is read until it is complete); a stream's reads are each short."""
        if stream or self.read_timeout is None:
            return self.timeout
        return min(self.timeout or self.read_timeout, self.read_timeout)

    route: RouteAsk = RouteAsk()


async def begin(rt: Runtime, request: Request) -> Begun:
    """Arrival time, caller and deadline: a bad key is refused before the body is read."""
    received = rt.now()
    principal = await rt.auth.authenticate(headers_of(request).get("authorization"))
    if rt.ledger.full:  # back-pressure: the ledger's writer is behind, wait for room
        await rt.ledger.admit()
    read = _seconds(request, "x-stainless-read-timeout", False)
    return Begun(
        received, principal, request_timeout(request), read, _call_id(request), route_ask(request)
    )


def _call_id(request: Request) -> str:
    """The call's own id: the request id (`x-request-id`, see `router.observe`), made unique
    when the caller chose it (the ledger and the limits key on it: two requests sent with the
    same id must not share a row), as `<caller's id>.<8 hex>`."""
    rid: str | None = request.scope.get("request_id")
    if rid is None:
        return new_request_id()
    if headers_of(request).get("x-request-id") == rid:
        return f"{rid}.{hex_id(8)}"
    return rid


def endpoint(
    rt: Runtime,
    decoder: msgspec.json.Decoder[T] | Callable[[bytes], T],
    handle: Callable[[Begun, T, Request], Awaitable[Response]],
) -> Handler:
    """A JSON endpoint: `handle(begun, body, request)` after the skeleton's steps. `decoder`
    is a msgspec decoder (errors name the field) or a function doing the same."""

    async def run(request: Request) -> Response:
        begun = await begin(rt, request)
        raw = await read_body(request)
        grant = await rt.limits.admit(begun.principal, begun.request_id, raw)
        try:
            body = (
                decode(decoder, raw) if isinstance(decoder, msgspec.json.Decoder) else decoder(raw)
            )
            response = await handle(begun, body, request)
        except BaseException:
            rt.limits.release(begun.request_id)  # nothing if the call's report settled it
            raise
        if grant is not None and grant.headers:
            response.headers.update(grant.headers)
        return response

    return run


def answer_headers(completion: Completion) -> dict[str, str]:
    """What every non-streamed answer says about itself: the attempt trail, the strategy that
    ordered it, the cache's verdict (when asked), the cost (USD, when the catalog prices the
    model) and the parameters the target could not honour."""
    headers = {
        "x-router-attempts": trail_header(completion.attempts),
        "x-router-strategy": completion.strategy,
    }
    if completion.cache is not None:
        headers["x-router-cache"] = completion.cache
    if completion.costs is not None:
        headers["x-router-cost"] = format(completion.costs.total_tokens_cost, "f")
    if completion.dropped:
        headers["x-router-dropped"] = ", ".join(completion.dropped)
    return headers


MAX_OUTPUT = 10_000_000
"""Above any model's output limit: a larger `max_tokens` is refused, a smaller one is clamped
to each target's own `max_output_tokens` (`ChatRequest.output_limit`)."""

Range = tuple[str, float, float]


def check_ranges(body: object, ranges: Iterable[Range]) -> None:
    """Each named number of `body`, when set, within its bounds; else a 400 naming it."""
    for name, low, high in ranges:
        value = getattr(body, name)
        if value is not None and not low <= value <= high:
            raise RequestError("invalid_value", f"{name} must be between {low} and {high}.", name)


def asked(field: str, names: Sequence[str], first: str | None = None) -> tuple[Asked, ...]:
    """`names` as asked for in the list field `field` (`field[i]`); `first`, when given, is
    a single-model field (`model`) that comes before them. A name with a control character
    (it could never be a model, and would break a header) is a 400 naming its field."""
    head = (Asked(first, "model"),) if first is not None else ()
    out = head + tuple(Asked(n, f"{field}[{i}]") for i, n in enumerate(names))
    for a in out:
        if not a.name.isprintable():
            raise RequestError(
                "invalid_value", "A model name may not contain control characters.", a.field
            )
    return out


FALLBACK_HEADER = "x-router-fallback-models"


def header_fallbacks(request: Request) -> tuple[Asked, ...]:
    """The per-request chain of the `x-router-fallback-models` header (comma-separated model
    names, tried after the body's), on every surface: clients that cannot add body fields
    (Claude Code through `ANTHROPIC_CUSTOM_HEADERS`) can still ask for fallbacks."""
    raw = headers_of(request).get(FALLBACK_HEADER)
    if not raw:
        return ()
    names = [n.strip() for n in raw.split(",")]
    return tuple(Asked(n, FALLBACK_HEADER) for n in names if n)


# ---- the SSE relay --------------------------------------------------------------------------

DONE = b"data: [DONE]\n\n"
SHUTDOWN_GRACE = 4.0
"""Seconds a stream in flight at shutdown (SIGTERM) may take to finish before it is cut,
within uvicorn's 5 s graceful shutdown: its answer and its ledger row both complete."""


class StreamRenderer(Protocol):
    """A surface's stream shape: bytes for each batch of events, for a stream that broke
    beyond rescue, and for the end (each already framed as SSE)."""

    def frames(self, batch: list[Event]) -> bytes: ...

    def failed(self, failed: StreamFailed) -> bytes: ...

    def drained(self, stream: ChatStream) -> bytes:
        """The stream was still open at the drain deadline (see `router.lifecycle`)."""
        ...

    def finished(self, completion: Completion) -> bytes: ...


def sse(stream: ChatStream, renderer: StreamRenderer, rt: Runtime) -> Response:
    """The stream as an SSE response (`router.api.sse`): one send per upstream read, a ping
    after 15 s of silence, and `x-router-attempts` as it stood at the commit point."""
    headers = {
        "x-router-attempts": trail_header(stream.trail),
        "x-router-strategy": stream.trail.strategy,
    }
    if stream.cache is not None:
        headers["x-router-cache"] = stream.cache
    if stream.dropped:
        headers["x-router-dropped"] = ", ".join(stream.dropped)
    return SseResponse(_relay(stream, renderer, rt.lifecycle), rt.heartbeat, headers)


async def _relay(
    stream: ChatStream, renderer: StreamRenderer, lifecycle: Lifecycle
) -> AsyncGenerator[bytes, None]:
    try:
        async for batch in lifecycle.guarded(stream):
            frames = renderer.frames(batch)
            if frames:
                yield frames
    except StreamFailed as failed:
        yield Last(renderer.failed(failed))
        return
    except DrainDeadline:
        yield Last(renderer.drained(stream))
        return
    completion = stream.completion
    assert completion is not None
    yield Last(renderer.finished(completion))
