"""Writes that leave the request path as tasks, tracked per key until they are done.

The PostgreSQL stores use it so that a read in this process sees this process's own writes:
a read of a key waits for the pending writes to it, and `close` waits for all of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("router.store")


class PendingWrites:
    """This process's unfinished writes, one chain per key: a write to a key starts when the
    previous write to that key has ended, so the writes of one key land in order."""

    def __init__(self, what: str) -> None:
        self._what = what  # names the store in the log line of a failed write
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.failed = 0

    def start(self, key: str, write: Callable[[], Awaitable[None]]) -> None:
        """Run `write` as a task after the key's pending write; returns at once."""
        task = asyncio.create_task(self._after(self._tasks.get(key), write))
        self._tasks[key] = task
        task.add_done_callback(lambda t: self._done(key, t))

    async def wait(self, key: str) -> None:
        """Until every write to `key` started so far has ended (failed ones too)."""
        pending = self._tasks.get(key)
        if pending is not None:
            await asyncio.wait([pending])

    async def flush(self) -> None:
        """Until every write started so far has ended."""
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()))

    @staticmethod
    async def _after(
        before: asyncio.Task[None] | None, write: Callable[[], Awaitable[None]]
    ) -> None:
        if before is not None:
            await asyncio.wait([before])  # a failed earlier write does not stop this one
        await write()

    def _done(self, key: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled() and task.exception() is not None:
            self.failed += 1
            log.error("%s write failed: %s", self._what, type(task.exception()).__name__)
