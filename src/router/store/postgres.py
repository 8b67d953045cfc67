"""Conversations in PostgreSQL, for several gateway hosts sharing one history.

Selected by `storage.database = "postgresql://..."`. Writes leave the request path as tasks;
a load waits for this process's pending write to the same conversation, so a client that
continues a conversation on the same host always sees its previous turn.
"""

from __future__ import annotations

import time
from functools import partial

import asyncpg

from router.core.types import Message
from router.store.conversations import Conversation, Turn
from router.store.pending import PendingWrites
from router.store.stored import decode_messages, encode_messages

_LOCK = 7223001  # the advisory lock of this schema's migration
_SCHEMA = """
CREATE TABLE IF NOT EXISTS router_conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS router_turns (
    conversation_id TEXT NOT NULL REFERENCES router_conversations(id),
    seq BIGSERIAL,
    response_message_id TEXT NOT NULL,
    messages BYTEA NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
"""


async def open_pool(url: str, max_connections: int, schema: str, lock: int) -> asyncpg.Pool:
    """A pool whose tables exist: `schema` runs under an advisory lock, so gateways starting
    together do not race to create the same tables."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=max_connections)
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", lock)
        try:
            await conn.execute(schema)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock)
    return pool


class PostgresStore:
    """A pooled asyncpg connection set, opened and closed by the lifespan."""

    def __init__(self, url: str, max_connections: int = 10) -> None:
        self.url = url
        self.max_connections = max_connections
        self._pool: asyncpg.Pool | None = None
        self._writes = PendingWrites("conversation")

    async def open(self) -> PostgresStore:
        self._pool = await open_pool(self.url, self.max_connections, _SCHEMA, _LOCK)
        return self

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "store not opened"
        return self._pool

    async def load(self, conversation_id: str) -> Conversation | None:
        await self._writes.wait(conversation_id)
        async with self.pool.acquire() as conn:
            title = await conn.fetchval(
                "SELECT title FROM router_conversations WHERE id = $1", conversation_id
            )
            if title is None:
                return None
            rows = await conn.fetch(
                "SELECT messages FROM router_turns WHERE conversation_id = $1 ORDER BY seq",
                conversation_id,
            )
        messages: list[Message] = []
        for row in rows:
            messages.extend(decode_messages(row["messages"]))
        return Conversation(conversation_id, title, tuple(messages))

    @property
    def failed_writes(self) -> int:
        return self._writes.failed

    def save(self, turn: Turn) -> None:
        # turns of one conversation are written in order, after its earlier turns
        self._writes.start(turn.conversation_id, partial(self._save, turn))

    async def _save(self, turn: Turn) -> None:
        now = time.time()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO router_conversations (id, title, created_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (id) DO NOTHING",
                turn.conversation_id,
                turn.title,
                now,
            )
            await conn.execute(
                "INSERT INTO router_turns (conversation_id, response_message_id, messages,"
                " provider, model, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                turn.conversation_id,
                turn.response_message_id,
                encode_messages([*turn.messages, turn.answer], turn.sources),
                turn.provider,
                turn.model,
                now,
            )

    async def flush(self) -> None:
        await self._writes.flush()

    async def close(self) -> None:
        await self.flush()
        if self._pool is not None:
            await self._pool.close()
