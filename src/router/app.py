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
from router.api import (
    admin,
    admin_spend,
    anthropic,
    ironlabs,
    openai,
    openai_media,
    openai_models,
    openai_ops,
    openapi,
    pages,
    responses,
    status,
)
from router.api.common import json_response, trail_header
from router.api.errors import SHAPES, failed, surface_of
from router.config import load_settings
from router.core.types import Attempt
from router.errors import AllTargetsFailed, RequestError, UpstreamError
from router.limits_answers import Refused
from router.observe.middleware import ObserveMiddleware
from router.runtime import Runtime

log = logging.getLogger("router")


def _error(
    request: Request,
    status: int,
    code: str,
    message: str,
    field: str | None,
    headers: dict[str, str] | None = None,
    attempts: list[Attempt] | None = None,
) -> Response:
    """The one place an error becomes a response, in the shape of the request's surface."""
    shape = SHAPES[surface_of(request.scope["path"])]
    return json_response(shape(status, code, message, field, attempts), status, headers)


async def _request_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    # a body refused part-way (too large, too slow) is never read further: close after
    headers = {"connection": "close"} if exc.status in (408, 413) else None
    return _error(request, exc.status, exc.code, exc.message, exc.field, headers)


async def _refused(request: Request, exc: Exception) -> Response:
    """A budget or rate limit refused the request (`router.limits`): with its headers."""
    assert isinstance(exc, Refused)
    return _error(request, exc.status, exc.code, exc.message, exc.field, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods: in the surface's JSON shape under an API prefix (the admin
    API's too, as /openapi.json documents), Starlette's plain text elsewhere."""
    assert isinstance(exc, HTTPException)
    path = request.scope["path"]
    if surface_of(path) is None and not path.startswith("/admin/"):
        return PlainTextResponse(exc.detail, exc.status_code, exc.headers)
    code = "unknown_url" if exc.status_code == 404 else "method_not_allowed"
    message = f"{request.method} {request.scope['path']}: {exc.detail}"
    headers = dict(exc.headers) if exc.headers else None
    return _error(request, exc.status_code, code, message, None, headers)


async def _all_failed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AllTargetsFailed)
    f = failed(exc, trail_header(exc.attempts))
    return _error(request, f.status, f.code, f.message, f.field, f.headers, list(exc.attempts))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path)
    return _error(request, 500, "internal_error", "Internal error.", None)


def _operational(runtime: Runtime) -> list[Route]:
    """The gateway's own routes: liveness, readiness, metrics, circuit states."""

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
        return json_response({"circuits": runtime.health.snapshot(), "learned": runtime.learned()})

    return [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/admin/health", admin_health),
    ]


HOT = ("/v1/chat/completions", "/api/v1/completions", "/v1/messages", "/v1/responses")
"""Matched first: Starlette tries the routes in order, a regular expression each, and these
carry the traffic (no route before them could match their paths)."""


def _routes(runtime: Runtime) -> list[Route]:
    routes = [
        *_operational(runtime),
        *ironlabs.routes(runtime),
        *anthropic.routes(runtime),
        *openai.routes(runtime),
        *openai_media.routes(runtime),
        *openai_models.routes(runtime),
        *responses.routes(runtime),
        *admin.routes(runtime),
        *admin_spend.routes(runtime),
        *pages.routes(runtime),
        *status.routes(runtime, runtime.status_board),
    ]
    routes.sort(key=lambda r: r.path not in HOT)  # stable: the rest keep their order
    return routes


OPERATIONS = (
    *ironlabs.OPERATIONS,
    *openai_ops.OPERATIONS,
    *openai_models.OPERATIONS,
    *admin.OPERATIONS,
    *pages.OPERATIONS,
    *anthropic.OPERATIONS,
    *responses.OPERATIONS,
    *status.OPERATIONS,
    *admin_spend.OPERATIONS,
)
"""Every surface's documented operations (`router.api.openapi`)."""


def create_app(runtime: Runtime) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    routes = _routes(runtime)
    observe = Middleware(
        ObserveMiddleware,
        metrics=runtime.metrics,
        surface_of=surface_of,
        log=runtime.request_log,
        tracing=runtime.tracing,
    )
    admission = Middleware(
        Admission,
        max_inflight=runtime.settings.server.max_inflight,
        render=_error,
        on_reject=runtime.metrics.overloaded.inc,
    )
    return Starlette(
        routes=[*routes, *openapi.routes(OPERATIONS, routes)],
        middleware=[observe, admission],
        lifespan=lifespan,
        exception_handlers={
            HTTPException: _http_error,
            RequestError: _request_error,
            Refused: _refused,
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
