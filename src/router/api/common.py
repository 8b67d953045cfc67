"""What every surface shares: decoding bodies into Structs with field-precise errors,
JSON responses, and the attempt-trail header."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from router.core.types import Attempt
from router.errors import RequestError

T = TypeVar("T")

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
    return ", ".join(
        f"{a.provider}/{a.model} {a.outcome} {a.status or '-'} {a.ms}ms" for a in attempts
    )
