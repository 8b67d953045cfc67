"""Conversations: every completion's turn is kept, and a later request can continue it.

One interface, `ConversationStore`; SQLite (embedded, the default) lives here. Writes leave
the request path: they are queued in order on the store's own worker, so a read queued
after a write always sees it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import msgspec

from router.core.types import Message

log = logging.getLogger("router.store")

_MESSAGES = msgspec.json.Decoder(list[Message])
_ENCODE = msgspec.json.Encoder().encode


class Conversation(msgspec.Struct, frozen=True):
    id: str
    title: str
    messages: tuple[Message, ...]


class Turn(msgspec.Struct, frozen=True):
    """One exchange to keep: the new request messages and the answer, with who answered."""

    conversation_id: str
    title: str
    messages: tuple[Message, ...]
    answer: Message
    provider: str
    model: str
    response_message_id: str


class ConversationStore(Protocol):
    async def load(self, conversation_id: str) -> Conversation | None: ...

    def save(self, turn: Turn) -> None:
        """Queue the turn for writing; returns at once."""
        ...

    async def flush(self) -> None:
        """Wait until every queued write is done."""
        ...

    async def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    seq INTEGER NOT NULL,
    response_message_id TEXT NOT NULL,
    messages BLOB NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
"""


class SqliteStore:
    """SQLite on one dedicated thread: ordered, and never blocking the event loop."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-sqlite")
        self._db: sqlite3.Connection | None = None
        self._pending: set[Future[None]] = set()
        self.failed_writes = 0

    async def open(self) -> SqliteStore:
        await asyncio.wrap_future(self._pool.submit(self._connect))
        return self

    def _connect(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    async def load(self, conversation_id: str) -> Conversation | None:
        return await asyncio.wrap_future(self._pool.submit(self._load, conversation_id))

    def _load(self, conversation_id: str) -> Conversation | None:
        assert self._db is not None
        row = self._db.execute(
            "SELECT title FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        if row is None:
            return None
        messages: list[Message] = []
        for (blob,) in self._db.execute(
            "SELECT messages FROM turns WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
        ):
            messages.extend(_MESSAGES.decode(blob))
        return Conversation(conversation_id, row[0], tuple(messages))

    def save(self, turn: Turn) -> None:
        future = self._pool.submit(self._save, turn)
        self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        self._pending.discard(future)
        if future.exception() is not None:
            self.failed_writes += 1
            log.error("conversation write failed: %s", type(future.exception()).__name__)

    def _save(self, turn: Turn) -> None:
        assert self._db is not None
        now = time.time()
        blob = _ENCODE([*turn.messages, turn.answer])
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO conversations (id, title, created_at) VALUES (?, ?, ?)",
                (turn.conversation_id, turn.title, now),
            )
            self._db.execute(
                "INSERT INTO turns (conversation_id, seq, response_message_id, messages,"
                " provider, model, created_at) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1"
                " FROM turns WHERE conversation_id = ?), ?, ?, ?, ?, ?)",
                (
                    turn.conversation_id,
                    turn.conversation_id,
                    turn.response_message_id,
                    blob,
                    turn.provider,
                    turn.model,
                    now,
                ),
            )

    async def flush(self) -> None:
        await asyncio.wrap_future(self._pool.submit(lambda: None))

    async def close(self) -> None:
        await self.flush()
        db = self._db
        if db is not None:
            await asyncio.wrap_future(self._pool.submit(db.close))
        self._pool.shutdown(wait=True)


def title_from(messages: tuple[Message, ...], limit: int = 60) -> str:
    """A short title from the first user message."""
    text = next((m.text() for m in messages if m.role == "user"), "").strip()
    text = " ".join(text.split())
    if not text:
        return "New conversation"
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "…"
