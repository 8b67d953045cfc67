"""The one exception tree of the gateway.

    RouterError                      base; never raised itself
    ├── ConfigError                  a bad routing.toml / providers/*.toml (path + field)
    ├── RequestError                 the caller's fault: 4xx with a stable code and field
    │   ├── AuthError                401: missing, wrong, revoked or expired key
    │   └── NotFoundError            404: unknown model, conversation, key ...
    ├── UpstreamError                one failed attempt at one target, classified (`Failure`)
    ├── AllTargetsFailed             every target of a plan failed; carries the attempt trail
    └── StreamFailed                 a stream broke after its first token, beyond rescue;
                                     carries the original error and the partial completion

Only `router.upstream` turns aiohttp exceptions into `UpstreamError`; only the app's
exception handlers (and, mid-stream, the surfaces' stream renderers) turn these into HTTP.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.core.types import Attempt, Completion


class RouterError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(RouterError):
    """Configuration that cannot be served: names the file and the field."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class RequestError(RouterError):
    """A request the gateway refuses; rendered as a JSON error with `code` and `field`."""

    status = 400

    def __init__(
        self, code: str, message: str, field: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        if status is not None:
            self.status = status


class AuthError(RequestError):
    """401: the key is missing, wrong, revoked or expired."""

    status = 401

    def __init__(self, message: str = "Missing or invalid API key.") -> None:
        super().__init__("invalid_api_key", message, None)


class NotFoundError(RequestError):
    """404 for a model, conversation or key that does not exist (or may not be seen)."""

    status = 404


class Failure(enum.StrEnum):
    """Why an attempt failed: a closed set, used as a metric label and in the attempt trail."""

    CONNECT = "connect_error"
    TIMEOUT = "timeout"
    FIRST_TOKEN_TIMEOUT = "first_token_timeout"
    STALL = "stream_stalled"
    CUT = "stream_cut"
    MALFORMED = "malformed_response"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    BAD_REQUEST = "bad_request"
    AUTH = "auth_error"
    NOT_FOUND = "not_found"
    CONTEXT_LENGTH = "context_length_exceeded"
    CONTENT_POLICY = "content_policy"
    NO_API_KEY = "no_api_key"
    CIRCUIT_OPEN = "circuit_open"
    TOO_LARGE = "prompt_too_large"
    DEADLINE = "deadline_exceeded"
    UNSUPPORTED = "unsupported"
    RESCUE_MISMATCH = "rescue_mismatch"
    CLIENT_CLOSED = "client_closed"  # the caller left mid-stream
    NO_SEARCH = "no_search"  # web search asked for; the model cannot and no gateway search


RETRYABLE = frozenset(
    {
        Failure.CONNECT,
        Failure.RATE_LIMITED,
        Failure.OVERLOADED,
        Failure.SERVER_ERROR,
        Failure.CUT,
        Failure.MALFORMED,
    }
)
"""Failures worth another try on the same target. Timeouts are not: a target that went
silent is not asked again within the same request."""


class UpstreamError(RouterError):
    """One failed attempt at one upstream target, classified."""

    def __init__(
        self,
        failure: Failure,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.failure in RETRYABLE


class AllTargetsFailed(RouterError):
    """Every target in the plan failed: `attempts` is the full trail, `decisive` the error to
    report (the first real upstream failure)."""

    def __init__(self, attempts: list[Attempt], decisive: UpstreamError | None) -> None:
        super().__init__(decisive.message if decisive else "No target could serve the request.")
        self.attempts = attempts
        self.decisive = decisive


class StreamFailed(RouterError):
    """A stream broke after its first token and could not be rescued."""

    def __init__(self, error: UpstreamError, completion: Completion) -> None:
        super().__init__(error.message)
        self.error = error
        self.completion = completion
