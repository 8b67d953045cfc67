"""What every PostgreSQL store shares: an asyncpg pool whose tables exist.

asyncpg is imported when a pool is opened, so a gateway on SQLite never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Self

if TYPE_CHECKING:
    import asyncpg


async def open_pool(url: str, max_connections: int, schema: str, lock: int) -> asyncpg.Pool:
    """A pool whose tables exist: `schema` runs under an advisory lock, so gateways starting
    together do not race to create the same tables."""
    import asyncpg

    pool = await asyncpg.create_pool(url, min_size=1, max_size=max_connections)
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", lock)
        try:
            await conn.execute(schema)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock)
    return pool


class PostgresTables:
    """A store's pool, opened and closed by the lifespan (or a command). A store says what
    its tables are (`schema`), the advisory lock their migration runs under (`lock`, one per
    store) and how many connections it may hold."""

    schema: ClassVar[str]
    lock: ClassVar[int]
    connections: ClassVar[int] = 4

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> Self:
        self._pool = await open_pool(self.url, self.connections, self.schema, self.lock)
        return self

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, f"{type(self).__name__} not open"
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
