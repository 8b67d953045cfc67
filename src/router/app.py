"""create_app(settings): routes, lifespan, exception handlers. Nothing else."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from router.admission import Admission
from router.api import admin, ironlabs, openai, openai_media, openai_models, pages
from router.api.common import json_response, trail_header
from router.config import load_settings
from router.errors import AllTargetsFailed, Failure, RequestError, UpstreamError
from router.metrics import MetricsMiddleware
from router.runtime import Runtime

log = logging.getLogger("router")

# Most telling HTTP status for a chain that failed, by the decisive failure.
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


def _retry_after(exc: AllTargetsFailed) -> dict[str, str]:
    d = exc.decisive
    if d is not None and d.failure is Failure.RATE_LIMITED:
        return {"retry-after": str(max(1, round(d.retry_after or 1)))}
    return {}


def error_body(code: str, message: str, field: str | None, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def _error(
    request: Request,
    status: int,
    code: str,
    message: str,
    field: str | None,
    headers: dict[str, str] | None = None,
    attempts: list[object] | None = None,
) -> Response:
    """The one place an error becomes a response: OpenAI's shape under /v1/, ours elsewhere."""
    body: object
    if request.scope["path"].startswith("/v1/"):
        body = openai.error_payload(status, code, message, field, attempts)
    elif attempts is not None:
        body = error_body(code, message, field, attempts=attempts)
    else:
        body = error_body(code, message, field)
    return json_response(body, status, headers)


async def _request_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    # a body refused part-way (too large, too slow) is never read further: close after
    headers = {"connection": "close"} if exc.status in (408, 413) else None
    return _error(request, exc.status, exc.code, exc.message, exc.field, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods: OpenAI's shape under /v1/, Starlette's plain text elsewhere."""
    assert isinstance(exc, HTTPException)
    if not request.scope["path"].startswith("/v1/"):
        return PlainTextResponse(exc.detail, exc.status_code, exc.headers)
    code = "unknown_url" if exc.status_code == 404 else "method_not_allowed"
    message = f"{request.method} {request.scope['path']}: {exc.detail}"
    headers = dict(exc.headers) if exc.headers else None
    return _error(request, exc.status_code, code, message, None, headers)


async def _all_failed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AllTargetsFailed)
    status, code, message = failure_status(exc)
    headers = {"x-router-attempts": trail_header(exc.attempts), **_retry_after(exc)}
    if status >= 500:
        headers["x-should-retry"] = "false"
    return _error(request, status, code, message, None, headers, list(exc.attempts))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path)
    return _error(request, 500, "internal_error", "Internal error.", None)


def create_app(runtime: Runtime) -> Starlette:
    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if runtime.lifecycle.ready:
            return json_response({"status": "ready"})
        return json_response({"status": "draining"}, 503)

    async def metrics(request: Request) -> Response:
        return Response(runtime.metrics.exposition(), media_type=runtime.metrics.content_type)

    async def admin_health(request: Request) -> Response:
        principal = await runtime.auth.authenticate(request.headers.get("authorization"))
        runtime.auth.require_master(principal)
        return json_response({"circuits": runtime.health.snapshot()})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/admin/health", admin_health),
        *ironlabs.routes(runtime),
        *openai.routes(runtime),
        *openai_media.routes(runtime),
        *openai_models.routes(runtime),
        *admin.routes(runtime),
        *pages.routes(runtime),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(MetricsMiddleware, metrics=runtime.metrics),
            Middleware(
                Admission,
                max_inflight=runtime.settings.server.max_inflight,
                render=_error,
                on_reject=runtime.metrics.overloaded.inc,
            ),
        ],
        lifespan=lifespan,
        exception_handlers={
            HTTPException: _http_error,
            RequestError: _request_error,
            AllTargetsFailed: _all_failed,
            UpstreamError: _unexpected,
            Exception: _unexpected,
        },
    )


def app_from_env() -> Starlette:
    """The uvicorn factory: settings from ROUTER_CONFIG, bound host from ROUTER_HOST."""
    env = dict(os.environ)
    settings = load_settings(env.get("ROUTER_CONFIG", "routing.toml"), env)
    host = env.get("ROUTER_HOST", settings.server.host)
    return create_app(Runtime(settings, env, host))
