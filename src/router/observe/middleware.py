"""The one pure-ASGI middleware that observes every HTTP request.

Every answer gets `x-request-id` (the caller's when safe, else a new one; the id is also in
`scope["request_id"]` for the handlers and error shapes). API requests (a surface) are also
counted by surface and status, timed, tracked in flight (streams apart), logged as one JSON
line and traced when tracing is on, from the `Record` the core's observers filled in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.metrics import Metrics
from router.observe.logs import RequestLog
from router.observe.record import CURRENT, Record, request_id_from

if TYPE_CHECKING:
    from router.observe.tracing import Tracing


def _read(headers: list[tuple[bytes, bytes]]) -> tuple[bytes | None, bytes | None]:
    rid = parent = None
    for name, value in headers:
        if name == b"x-request-id":
            rid = value
        elif name == b"traceparent":
            parent = value
    return rid, parent


class ObserveMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        surface_of: Callable[[str], str | None],
        log: RequestLog | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.surface_of = surface_of
        self.log = log
        self.tracing = tracing
        self._counters: dict[tuple[str, int], Any] = {}
        self._timers: dict[tuple[str, bool], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_id, parent = _read(scope["headers"])
        rid = scope["request_id"] = request_id_from(raw_id)
        tag = (b"x-request-id", rid.encode())
        surface = self.surface_of(scope["path"])
        if surface is None:

            async def tagged(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), tag]
                await send(message)

            await self.app(scope, receive, tagged)
            return
        record = Record(rid, surface, parent.decode("latin-1") if parent else None)
        await self._observed(scope, receive, send, record, tag)

    async def _observed(
        self, scope: Scope, receive: Receive, send: Send, record: Record, tag: tuple[bytes, bytes]
    ) -> None:
        metrics = self.metrics
        started, wall = time.perf_counter(), time.time_ns()
        status = 500
        streamed = False

        async def sending(message: Message) -> None:
            nonlocal status, streamed
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", ())
                for name, value in headers:
                    if name == b"content-type" and value.startswith(b"text/event-stream"):
                        streamed = True
                        metrics.inflight_streams.inc()
                message["headers"] = [*headers, tag]
            await send(message)

        token = CURRENT.set(record)
        metrics.inflight.inc()
        try:
            await self.app(scope, receive, sending)
        finally:
            CURRENT.reset(token)
            metrics.inflight.dec()
            if streamed:
                metrics.inflight_streams.dec()
            seconds = time.perf_counter() - started
            self._count(record.surface, status, streamed, seconds)
            if self.log is not None:
                self.log.request(record, scope["method"], scope["path"], status, seconds)
            if self.tracing is not None:
                self.tracing.request(record, scope, status, wall, time.time_ns())

    def _count(self, surface: str, status: int, stream: bool, seconds: float) -> None:
        counter = self._counters.get((surface, status))
        if counter is None:
            counter = self._counters[(surface, status)] = self.metrics.requests.labels(
                surface, str(status)
            )
        counter.inc()
        timer = self._timers.get((surface, stream))
        if timer is None:
            timer = self._timers[(surface, stream)] = self.metrics.duration.labels(
                surface, "true" if stream else "false"
            )
        timer.observe(seconds)
