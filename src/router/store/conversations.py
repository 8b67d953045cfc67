"""Conversations: every completion's turn is kept, and a later request can continue it.

One interface, `ConversationStore`; SQLite (embedded, the default) lives here. Writes leave
the request path: they are queued in order on the store's own worker, so a read queued
after a write always sees it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from router.core.types import Message, Source
from router.store.sqlite import connect
from router.store.stored import decode_messages, encode_messages

log = logging.getLogger("router.store")


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
    sources: tuple[Source, ...] = ()  # the pages a searched answer cites


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


class _Call(msgspec.Struct):
    """A read (or any call) for the store's thread, answered on the caller's loop."""

    fn: Callable[[], object]
    future: asyncio.Future[object]
    loop: asyncio.AbstractEventLoop


_STOP = object()
_BATCH = 512
QUEUE_LIMIT = 10_000
"""Turns queued at most; a save beyond it waits (holding up this worker's event loop, which
is the back-pressure) up to FULL_WAIT seconds for the writer, then the turn is dropped."""
FULL_WAIT = 5.0
LINGER = 0.005
"""Group commit: after a save the thread waits this long (without the GIL) so that a burst of
turns shares one transaction: ~12 us a turn in batches of 20 against ~40 us alone."""


class SqliteStore:
    """SQLite on one dedicated thread fed by a queue: a save is one `put` (no future, no
    executor hand-off) and the thread writes whatever has queued up in one transaction.
    Reads go through the same queue, so a read always sees every earlier save."""

    def __init__(
        self, path: str, limit: int = QUEUE_LIMIT, on_full: Callable[[], None] | None = None
    ) -> None:
        self.path = path
        self._jobs: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._slots = threading.Semaphore(limit)  # one per queued turn, given back when written
        self._on_full = on_full
        self.full_waits = 0
        self._thread = threading.Thread(target=self._run, name="router-sqlite", daemon=True)
        self._db: sqlite3.Connection | None = None
        self.failed_writes = 0

    async def open(self) -> SqliteStore:
        self._thread.start()
        await self._call(self._connect)
        return self

    def _connect(self) -> None:
        self._db = connect(self.path, _SCHEMA)

    async def _call(self, fn: Callable[[], object]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        self._jobs.put(_Call(fn, future, loop))
        return await future

    async def load(self, conversation_id: str) -> Conversation | None:
        found: Conversation | None = await self._call(lambda: self._load(conversation_id))
        return found

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
            messages.extend(decode_messages(blob))
        return Conversation(conversation_id, row[0], tuple(messages))

    def save(self, turn: Turn) -> None:
        if not self._slots.acquire(blocking=False):
            self.full_waits += 1
            if self._on_full is not None:
                self._on_full()
            if not self._slots.acquire(timeout=FULL_WAIT):
                self.failed_writes += 1
                log.error("conversation write dropped: the write queue stayed full")
                return
        self._jobs.put(turn)

    # ---- the store's thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            jobs = [self._jobs.get()]
            if type(jobs[0]) is Turn:
                time.sleep(LINGER)
            while len(jobs) < _BATCH:
                try:
                    jobs.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            turns: list[Turn] = []
            for job in jobs:
                if type(job) is Turn:
                    turns.append(job)
                    continue
                self._write(turns)  # everything queued before a read is written first
                turns = []
                if job is _STOP:
                    return
                assert isinstance(job, _Call)
                self._answer(job)
            self._write(turns)

    def _answer(self, call: _Call) -> None:
        try:
            result = call.fn()
        except Exception as exc:  # handed to the awaiting coroutine, which raises it
            call.loop.call_soon_threadsafe(_settle, call.future, None, exc)
        else:
            call.loop.call_soon_threadsafe(_settle, call.future, result, None)

    def _write(self, turns: list[Turn]) -> None:
        if not turns:
            return
        try:
            self._save_all(turns)
        except sqlite3.Error as exc:
            self.failed_writes += len(turns)
            log.error("conversation write failed (%d turns): %s", len(turns), type(exc).__name__)
        finally:
            self._slots.release(len(turns))

    def _save_all(self, turns: list[Turn]) -> None:
        assert self._db is not None
        now = time.time()
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO conversations (id, title, created_at) VALUES (?, ?, ?)",
                [(t.conversation_id, t.title, now) for t in turns],
            )
            self._db.executemany(
                "INSERT INTO turns (conversation_id, seq, response_message_id, messages,"
                " provider, model, created_at) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1"
                " FROM turns WHERE conversation_id = ?), ?, ?, ?, ?, ?)",
                [
                    (
                        t.conversation_id,
                        t.conversation_id,
                        t.response_message_id,
                        encode_messages([*t.messages, t.answer], t.sources),
                        t.provider,
                        t.model,
                        now,
                    )
                    for t in turns
                ],
            )

    async def flush(self) -> None:
        await self._call(lambda: None)

    async def close(self) -> None:
        if not self._thread.is_alive():
            return
        db = self._db
        if db is not None:
            await self._call(db.close)
        self._jobs.put(_STOP)
        await asyncio.to_thread(self._thread.join)


def _settle(future: asyncio.Future[object], result: object, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
