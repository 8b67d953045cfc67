"""Classification shared by every dialect: an HTTP status plus hints -> a `Failure`.

Each codec extracts the provider's message and error code from its own error body and calls
`classify_http`; the status table and the retryable set live here once.
"""

from __future__ import annotations

from collections.abc import Mapping

from router.errors import Failure, UpstreamError
from router.upstream import retry_after_seconds

_CONTEXT_HINTS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "prompt is too long",
    "too many tokens",
    "exceeds the maximum number of tokens",
    "input token count",
)
_POLICY_HINTS = ("content_policy", "content_filter", "safety", "responsibleaipolicyviolation")
_AUTH_HINTS = ("api_key_invalid", "invalid api key", "api key not valid", "insufficient_quota")

_BY_STATUS = {
    400: Failure.BAD_REQUEST,
    401: Failure.AUTH,
    403: Failure.AUTH,
    404: Failure.NOT_FOUND,
    408: Failure.SERVER_ERROR,
    409: Failure.SERVER_ERROR,
    413: Failure.CONTEXT_LENGTH,
    422: Failure.BAD_REQUEST,
    429: Failure.RATE_LIMITED,
    503: Failure.OVERLOADED,
    529: Failure.OVERLOADED,
}


def classify_http(
    status: int,
    headers: Mapping[str, str],
    message: str,
    code: str = "",
    retry_after: float | None = None,
) -> UpstreamError:
    """The classified error for an upstream HTTP error answer."""
    hint = f"{code} {message}".lower()
    failure = _BY_STATUS.get(status)
    if failure is None:
        failure = Failure.SERVER_ERROR if status >= 500 else Failure.BAD_REQUEST
    if status in (400, 413, 422) and any(h in hint for h in _CONTEXT_HINTS):
        failure = Failure.CONTEXT_LENGTH
    elif status in (400, 403, 422) and any(h in hint for h in _POLICY_HINTS):
        failure = Failure.CONTENT_POLICY
    elif status in (400, 429) and any(h in hint for h in _AUTH_HINTS):
        failure = Failure.AUTH
    if retry_after is None and failure in (Failure.RATE_LIMITED, Failure.OVERLOADED):
        retry_after = retry_after_seconds(headers)
    text = message or f"upstream answered HTTP {status}"
    return UpstreamError(failure, text, status=status, retry_after=retry_after)
