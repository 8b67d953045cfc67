"""Which surface a request belongs to, and errors in that surface's own shape.

`SURFACES` is the one table of API path prefixes (longest first): the metrics middleware
counts by it and the app's exception handlers render by it. Each surface's error shape is one
function here; a path that is no API surface (admin, pages) gets the gateway's own shape.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from router.core.types import Attempt
from router.errors import AllTargetsFailed, Failure

SURFACES: tuple[tuple[str, str], ...] = (
    ("/api/v1/", "ironlabs"),
    ("/v1/responses", "responses"),
    ("/v1/messages", "anthropic"),
    ("/v1/", "openai"),
)


def surface_of(path: str) -> str | None:
    for prefix, name in SURFACES:
        if path.startswith(prefix):
            return name
    return None


# ---- the chain failed: the most telling status ------------------------------------------

_STATUS = {
    Failure.RATE_LIMITED: (429, "rate_limited"),
    Failure.CONTEXT_LENGTH: (400, "context_length_exceeded"),
    Failure.CONTENT_POLICY: (400, "content_policy"),
    Failure.BAD_REQUEST: (400, "upstream_bad_request"),
    Failure.NOT_FOUND: (404, "model_not_found"),
    Failure.AUTH: (502, "upstream_auth_error"),
    Failure.TIMEOUT: (504, "upstream_timeout"),
    Failure.FIRST_TOKEN_TIMEOUT: (504, "upstream_timeout"),
    Failure.STALL: (504, "upstream_timeout"),
    Failure.DEADLINE: (504, "deadline_exceeded"),
    Failure.NO_API_KEY: (503, "provider_not_configured"),
    Failure.CIRCUIT_OPEN: (503, "circuit_open"),
    Failure.TOO_LARGE: (400, "context_length_exceeded"),
    Failure.UNSUPPORTED: (503, "provider_not_configured"),
}
_FIELD = {"context_length_exceeded": "messages"}  # the request field a failure is about


class Failed(msgspec.Struct, frozen=True):
    """How a failed chain is answered."""

    status: int
    code: str
    message: str
    field: str | None
    headers: dict[str, str]


def failure_status(exc: AllTargetsFailed) -> tuple[int, str, str]:
    """(HTTP status, stable code, message) for a chain where every target failed."""
    decisive = exc.decisive
    if decisive is not None:
        status, code = _STATUS.get(decisive.failure, (502, "upstream_error"))
        provider = next((a.provider for a in exc.attempts if a.outcome == decisive.failure), None)
        where = f" ({provider})" if provider else ""
        return status, code, f"Upstream provider error{where}: {decisive.message}"
    skips = [a for a in exc.attempts if a.reason]
    if skips:
        failure = Failure(skips[0].outcome)
        status, code = _STATUS.get(failure, (503, "no_target_available"))
        reasons = "; ".join(f"{a.provider}/{a.model}: {a.reason}" for a in skips)
        return status, code, f"No model could be tried. {reasons}"
    return 503, "no_target_available", "No model could be tried."


def failed(exc: AllTargetsFailed, trail: str) -> Failed:
    status, code, message = failure_status(exc)
    headers = {"x-router-attempts": trail}
    d = exc.decisive
    if d is not None and d.failure is Failure.RATE_LIMITED:
        headers["retry-after"] = str(max(1, round(d.retry_after or 1)))
    if status >= 500:
        headers["x-should-retry"] = "false"
    return Failed(status, code, message, _FIELD.get(code), headers)


# ---- shapes -------------------------------------------------------------------------------


class OpenAIErrorBody(msgspec.Struct, kw_only=True):
    message: str
    type: str
    param: str | None
    code: str | None
    attempts: list[Attempt] | msgspec.UnsetType = msgspec.UNSET  # the trail, for 5xx and 429


class OpenAIError(msgspec.Struct):
    error: OpenAIErrorBody


class OwnErrorBody(msgspec.Struct, kw_only=True):
    code: str
    message: str
    field: str | None
    attempts: list[Attempt] | msgspec.UnsetType = msgspec.UNSET


class OwnError(msgspec.Struct):
    error: OwnErrorBody


_OPENAI_CODES = {"rate_limited": "rate_limit_exceeded"}  # where OpenAI's own code differs


def openai_type(status: int) -> str:
    if status == 401:
        return "invalid_request_error"  # as OpenAI answers a wrong key
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    if status in (502, 503, 504):
        return "upstream_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def openai_error(
    status: int, code: str, message: str, field: str | None, attempts: list[Attempt] | None
) -> object:
    """OpenAI's error shape, `{"error": {"message", "type", "param", "code"}}`, plus the
    attempt trail when upstreams were tried."""
    return OpenAIError(
        OpenAIErrorBody(
            message=message,
            type=openai_type(status),
            param=field,
            code=_OPENAI_CODES.get(code, code),
            attempts=msgspec.UNSET if attempts is None else attempts,
        )
    )


def own_error(
    status: int, code: str, message: str, field: str | None, attempts: list[Attempt] | None
) -> object:
    """The gateway's own shape (Iron Labs, admin): `{"error": {"code", "message", "field"}}`."""
    trail = msgspec.UNSET if attempts is None else attempts
    return OwnError(OwnErrorBody(code=code, message=message, field=field, attempts=trail))


ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_type(status: int) -> str:
    return ANTHROPIC_TYPES.get(status) or (
        "api_error" if status >= 500 else "invalid_request_error"
    )


class AnthropicErrorBody(msgspec.Struct):
    type: str
    message: str


class AnthropicError(msgspec.Struct, kw_only=True):
    type: str = "error"
    error: AnthropicErrorBody


def anthropic_error(
    status: int, code: str, message: str, field: str | None, attempts: list[Attempt] | None
) -> object:
    """Anthropic's shape, `{"type": "error", "error": {"type", "message"}}`; the field a 400
    is about is named in the message, the trail is in `x-router-attempts`."""
    where = f" ({field})" if field and field not in message else ""
    return AnthropicError(error=AnthropicErrorBody(anthropic_type(status), message + where))


Shape = Callable[[int, str, str, str | None, list[Attempt] | None], object]
SHAPES: dict[str | None, Shape] = {
    "openai": openai_error,
    "responses": openai_error,
    "ironlabs": own_error,
    "anthropic": anthropic_error,
    None: own_error,
}
