"""A lean SSE response for relayed streams: what each upstream read produced, already framed,
in one ASGI `send`, and nothing else per event.

sse-starlette's `EventSourceResponse` ran a task group of four tasks per stream (the sender,
a ping loop, a shutdown watcher, a disconnect listener), an anyio Event and a lock: about as
much CPU as the rest of a stream's relay (docs/performance.md). Here, per stream:

- pings: none of its own. One loop timer per worker (`Heartbeat`) sends `: ping` to a stream
  that has sent nothing for `interval` seconds (proxies close silent connections), never
  while it is sending;
- client disconnect: one task waits on `receive` for `http.disconnect` and cancels the relaying
  task, so the source's generators close and the upstream connection is released (uvicorn
  drops a `send` to a gone client silently, so a failed send would not tell);
- the drain deadline: the relayed iterator's business (`router.lifecycle.guarded`);
- headers as sse-starlette sent them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

PING = b": ping\n\n"
INTERVAL = 15.0
"""Seconds of silence after which a stream gets a ping."""
_HEADERS = (  # after the response's own, in sse-starlette's order and spelling
    (b"cache-control", b"no-store"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
    (b"content-type", b"text/event-stream; charset=utf-8"),
)


class Last(bytes):
    """The response's last piece: sent together with the end of the response, one write
    (and one system call) fewer per stream."""


class _Open:
    """One open SSE response as the heartbeat sees it."""

    __slots__ = ("busy", "gone", "last", "loop", "pinging", "send")

    def __init__(self, send: Send, loop: asyncio.AbstractEventLoop) -> None:
        self.send = send
        self.loop = loop
        self.last = loop.time()  # when it last sent something
        self.busy = False  # a send is under way: no ping now
        self.pinging: asyncio.Task[None] | None = None
        self.gone = False  # the client disconnected

    async def write(self, body: bytes, more: bool = True) -> None:
        if self.pinging is not None:
            await self.pinging  # one send at a time
        self.busy = True
        try:
            await self.send({"type": "http.response.body", "body": body, "more_body": more})
        finally:
            self.busy = False
        self.last = self.loop.time()

    def ping(self) -> None:
        self.busy = True
        self.pinging = self.loop.create_task(self._ping())

    async def _ping(self) -> None:
        try:
            await self.send({"type": "http.response.body", "body": PING, "more_body": True})
        finally:
            self.busy = False
            self.pinging = None
            self.last = self.loop.time()


class Heartbeat:
    """One timer for every open SSE response of a worker, armed only while one is open: a
    stream silent for `interval` seconds gets a ping within `interval / 15` more."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.tick = interval / 15
        self._open: set[_Open] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def open_streams(self) -> int:
        return len(self._open)

    def add(self, stream: _Open) -> None:
        self._open.add(stream)
        if self._timer is None or self._loop is not stream.loop:  # (a new loop: tests)
            self._loop = stream.loop
            self._timer = stream.loop.call_later(self.tick, self._beat, stream.loop)

    def discard(self, stream: _Open) -> None:
        self._open.discard(stream)

    def _beat(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:
            return  # a timer of a loop given up on
        if not self._open:
            self._timer = None
            return
        quiet = loop.time() - self.interval
        for stream in self._open:
            if stream.last <= quiet and not stream.busy:
                stream.ping()
        self._timer = loop.call_later(self.tick, self._beat, loop)


class SseResponse(Response):
    """`content` (pre-framed SSE bytes) relayed as it comes, one `send` per item; an item of
    type `Last` ends the response with it."""

    def __init__(
        self,
        content: AsyncGenerator[bytes, None],
        heartbeat: Heartbeat,
        headers: dict[str, str],
    ) -> None:
        self.body_iterator = content
        self.heartbeat = heartbeat
        self.status_code = 200
        self.background = None
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.raw_headers.extend(_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        stream = _Open(send, loop)
        listener = loop.create_task(_listen(receive, stream, task))
        self.heartbeat.add(stream)
        try:
            last = b""
            async for chunk in self.body_iterator:
                if type(chunk) is Last:
                    last = chunk
                    break
                await stream.write(chunk)
            self.heartbeat.discard(stream)  # before the end goes out: the client may look
            listener.cancel()  # the end of the response reads as a disconnect to `receive`
            await stream.write(last, more=False)
        except asyncio.CancelledError:
            if stream.gone and task.uncancel() == 0:
                return  # the client left: the stream was ended for it, not an error
            raise
        finally:
            self.heartbeat.discard(stream)
            listener.cancel()
            if stream.pinging is not None:
                stream.pinging.cancel()
            await self.body_iterator.aclose()  # the source's cleanup, however we got here


async def _listen(receive: Receive, stream: _Open, task: asyncio.Task[object]) -> None:
    """Wait for the client to go away, then cancel the task relaying to it."""
    while (await receive())["type"] != "http.disconnect":
        pass
    stream.gone = True
    task.cancel()
