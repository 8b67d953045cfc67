"""Conversations in PostgreSQL, for several gateway hosts sharing one history.

Selected by `storage.database = "postgresql://..."`. Writes leave the request path as tasks;
a load waits for this process's pending write to the same conversation, so a client that
continues a conversation on the same host always sees its previous turn.
"""

from __future__ import annotations

import time
from functools import partial

from router.core.types import Message
from router.store.conversations import Conversation, Turn
from router.store.pending import PendingWrites
from router.store.pg import PostgresTables
from router.store.stored import decode_messages, encode_messages

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


class PostgresStore(PostgresTables):
    schema = _SCHEMA
    lock = 7223001
    connections = 10

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._writes = PendingWrites("conversation")

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
        await super().close()
