"""What a worker admits: at most `server.max_inflight` requests at a time, bodies up to the
surface's limit, and bodies that keep arriving.

Pure ASGI. Beyond the in-flight limit a request is answered 503 `overloaded` with
`Retry-After` at once, never queued; /healthz, /readyz and /metrics are always answered. A
body is counted while it is read, whatever `Content-Length` says or whether it is chunked:
past the limit, the next read raises `RequestError` 413 (rendered in the surface's shape by
the app's handler) and the connection is closed, so the rest is never read. Before closing,
the connection lingers (`LINGER`, reading and discarding) after the answer went out: closing a
socket with unread data makes the kernel reset it, and the reset would discard the answer
from the client's buffer before it reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.api.openai_media import MAX_UPLOAD
from router.errors import RequestError

EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
MAX_BODY = 32 * 1024 * 1024
SMALL_BODY = 1024 * 1024
BODY_LIMITS = (
    ("/v1/audio/transcriptions", MAX_UPLOAD + 1024 * 1024),  # the file plus the form around it
    ("/api/v1/", MAX_BODY),
    ("/v1/", MAX_BODY),
)
"""Per surface, by path prefix, first match; anything else (admin API, pages) SMALL_BODY."""
BODY_TIMEOUT = 60.0
"""Seconds a client may take to send one piece of its body before the request is refused."""
RETRY_AFTER = "1"
LINGER = 1.0  # seconds a refused upload is still read (and dropped) after the answer

Render = Callable[[Request, int, str, str, "str | None", "dict[str, str] | None"], Response]
"""The app's error renderer: (request, status, code, message, field, headers) -> Response."""


def body_limit(path: str) -> int:
    for prefix, limit in BODY_LIMITS:
        if path.startswith(prefix):
            return limit
    return SMALL_BODY


def too_large(limit: int) -> RequestError:
    return RequestError(
        "body_too_large",
        f"The request body is larger than {limit} bytes.",
        None,
        status=413,
    )


class Admission:
    """Counts this worker's requests in flight and bounds what each one may send."""

    def __init__(
        self, app: ASGIApp, max_inflight: int, render: Render, on_reject: Callable[[], None]
    ) -> None:
        self.app = app
        self.max_inflight = max_inflight
        self.render = render
        self.on_reject = on_reject
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.inflight >= self.max_inflight:
            self.on_reject()
            await self._overloaded(scope, receive, send)
            return
        self.inflight += 1
        body = _Body(scope, receive)
        try:
            await self.app(scope, body, _Lingering(send, body))
        finally:
            self.inflight -= 1

    async def _overloaded(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = "The gateway is at its limit of requests in flight; retry shortly."
        headers = {"retry-after": RETRY_AFTER, "connection": "close"}
        response = self.render(Request(scope), 503, "overloaded", message, None, headers)
        await response(scope, receive, send)


class _Body:
    """`receive` that counts body bytes against the path's limit and times each wait."""

    __slots__ = ("done", "limit", "read", "receive", "refused")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.receive = receive
        self.limit = body_limit(scope["path"])
        self.read = 0
        self.done = False
        self.refused = False  # a 413 or 408: the rest of the body was not read
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                self.read = -1  # refused at the first read, before any byte is taken

    async def __call__(self) -> Message:
        if self.done:
            return await self.receive()  # the body is in: what follows is the disconnect
        if self.read < 0:
            self.refused = True
            raise too_large(self.limit)
        late = _Late()  # a bare timer: `asyncio.timeout` cost ~5 µs a request
        late.handle = asyncio.get_running_loop().call_later(BODY_TIMEOUT, late.fire)
        try:
            message = await self.receive()
        except asyncio.CancelledError:
            if not late.fired or late.task.uncancel() > 0:
                raise
            self.refused = True
            raise RequestError(
                "body_timeout", "The request body did not arrive in time.", None, status=408
            ) from None
        finally:
            late.handle.cancel()
        if message["type"] == "http.request":
            self.read += len(message.get("body", b""))
            if self.read > self.limit:
                self.refused = True
                raise too_large(self.limit)
            self.done = not message.get("more_body", False)
        return message


class _Late:
    """Cancels the reading task when a piece of the body is late."""

    __slots__ = ("fired", "handle", "task")

    def __init__(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.fired = False
        self.handle: asyncio.TimerHandle

    def fire(self) -> None:
        self.fired = True
        self.task.cancel()


class _Lingering:
    """`send` that, for an answer refusing the body, holds the end of the response while it
    reads and drops what the client is still sending, for at most `LINGER` seconds."""

    __slots__ = ("body", "send")

    def __init__(self, send: Send, body: _Body) -> None:
        self.send = send
        self.body = body

    async def __call__(self, message: Message) -> None:
        last = message["type"] == "http.response.body" and not message.get("more_body")
        if not (last and self.body.refused):
            await self.send(message)
            return
        await self.send({**message, "more_body": True})  # the whole answer, Content-Length'd
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LINGER):
                while (await self.body.receive())["type"] == "http.request":
                    pass
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})
