"""The response cache's entries in Redis (`[cache] redis = true`), shared by every gateway
process: one key per entry under `<prefix>:cache:`, expiring by itself. A Redis failure is a
miss (or an answer not kept), never a failed call."""

from __future__ import annotations

import logging
import math

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class RedisStore:
    """`router.core.cache.CacheStore` in Redis."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.prefix = f"{prefix}:cache:"

    async def get(self, key: str) -> bytes | None:
        try:
            found: bytes | None = await self.client.get(self.prefix + key)
        except RedisError as exc:
            log.warning("response cache lookup failed: %s", type(exc).__name__)
            return None
        return found

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        try:
            await self.client.set(self.prefix + key, value, ex=max(1, math.ceil(ttl)))
        except RedisError as exc:
            log.warning("response cache write failed: %s", type(exc).__name__)

    async def close(self) -> None:
        await self.client.aclose()
