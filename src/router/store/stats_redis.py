"""Learned speed shared by every gateway process through one Redis stream
(`<prefix>:stats`): each process adds what it learned every `interval` seconds and reads what
the others added. Samples are opaque bytes here (`router.core.stats.Stats.drain`/`absorb`).
A Redis failure loses samples, never a call."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
MAXLEN = 2000  # entries kept in the stream (one per process per interval)
EXPIRE = 600  # seconds the stream outlives its last entry


class StatsLink:
    def __init__(
        self,
        client: Redis,
        prefix: str,
        drain: Callable[[], bytes | None],
        absorb: Callable[[bytes], None],
        interval: float = 1.0,
    ) -> None:
        self.client = client
        self.stream = f"{prefix}:stats"
        self.drain = drain
        self.absorb = absorb
        self.interval = interval
        self.me = f"{os.getpid()}-{uuid.uuid4().hex[:8]}".encode()
        self.last = "$"  # only what is added after joining
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:  # the current end of the stream, so the first read misses nothing after it
            found = await self.client.xrevrange(self.stream, count=1)
            self.last = found[0][0].decode() if found else "0-0"
        except RedisError as exc:
            log.warning("stats link: %s", type(exc).__name__)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.aclose()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sync()
            except RedisError as exc:
                log.warning("stats link: %s", type(exc).__name__)

    async def sync(self) -> None:
        """Add what was learned here; take in what the others added since the last sync."""
        packed = self.drain()
        if packed is not None:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.xadd(self.stream, {b"p": self.me, b"d": packed}, maxlen=MAXLEN)
                pipe.expire(self.stream, EXPIRE)  # gone once no process adds to it
                await pipe.execute()
        found = await self.client.xread({self.stream: self.last}, count=MAXLEN)
        for _name, entries in found:
            for entry_id, fields in entries:
                self.last = entry_id.decode()
                if fields.get(b"p") != self.me:
                    self.absorb(fields[b"d"])
