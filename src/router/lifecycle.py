"""The drain state of one worker process, shared by the server (`router.serving`) and the app.

`ready` answers /readyz; `draining` and `deadline` say that a SIGTERM arrived and when open
streams are ended. A stream relay iterates its source through `guarded`, so that at the
deadline it stops with `DrainDeadline` (which the surface renders as its own error event)
instead of being cut silently when the process exits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator
from typing import TypeVar

T = TypeVar("T")

DRAIN_MESSAGE = "The gateway is shutting down: the stream was ended at the drain deadline."


class DrainDeadline(Exception):
    """The drain deadline passed while this stream was still open."""


class _Open:
    """One open stream: the task that relays it, and whether it waits on its source."""

    __slots__ = ("cut", "task", "waiting")

    def __init__(self, task: asyncio.Task[object] | None) -> None:
        self.task = task
        self.waiting = False
        self.cut = False

    def end(self) -> None:
        self.cut = True
        if self.waiting and self.task is not None:
            self.task.cancel()  # interrupts the wait for the source; see `guarded`


class Lifecycle:
    """Ready until the first signal; then draining, with a deadline on `time.monotonic()`."""

    def __init__(self) -> None:
        self.ready = True
        self.draining = False
        self.deadline: float | None = None
        self.expired = False
        self._open: set[_Open] = set()

    def begin(self, drain_timeout: float, now: float | None = None) -> None:
        """The first SIGTERM/SIGINT. Plain assignments only: this runs in a signal handler."""
        if self.draining:
            return
        self.ready = False
        self.deadline = (time.monotonic() if now is None else now) + drain_timeout
        self.draining = True

    def expire(self) -> int:
        """The deadline: end every open stream (on the event loop). Returns how many."""
        self.expired = True
        open_now = list(self._open)
        for stream in open_now:
            stream.end()
        return len(open_now)

    @property
    def open_streams(self) -> int:
        return len(self._open)

    async def guarded(self, source: AsyncIterable[T]) -> AsyncIterator[T]:
        """`source`'s items until it ends, or `DrainDeadline` once the deadline has passed."""
        handle = _Open(asyncio.current_task())
        self._open.add(handle)
        items = source.__aiter__()
        try:
            while True:
                if handle.cut or self.expired:
                    raise DrainDeadline
                handle.waiting = True
                try:
                    item = await items.__anext__()
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    task = handle.task
                    if handle.cut and task is not None and task.uncancel() == 0:
                        raise DrainDeadline from None  # our own cancel, nobody else's
                    raise
                finally:
                    handle.waiting = False
                yield item
        finally:
            self._open.discard(handle)
            close = getattr(items, "aclose", None)
            if close is not None:
                await close()  # releases the upstream response of a source ended early
