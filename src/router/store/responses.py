"""Stored OpenAI Responses: what `GET /v1/responses/{id}` returns and what
`previous_response_id` continues, on any provider and (with PostgreSQL) any replica.

One interface, `ResponseStore` (`router.store.response_records`); SQLite (the default)
lives here, PostgreSQL in `router.store.responses_postgres`; `router.store.open_responses`
picks one. A response is kept as two JSON documents: the rendered
response object and the conversation items it ends (its input, expanded through its own
`previous_response_id`, then its output), so a continuation needs one read.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

from router.store.response_records import StoredResponse
from router.store.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    response BLOB NOT NULL,
    items BLOB NOT NULL,
    created_at REAL NOT NULL
);
"""


class SqliteResponses:
    """SQLite behind one worker thread: every call runs there in submission order, so a read
    submitted after a save always sees it, and a save never waits on the request path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-responses")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> SqliteResponses:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._connect)
        return self

    def _connect(self) -> None:
        self._db = connect(self.path, _SCHEMA)

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "store not opened"
        return self._db

    async def get(self, response_id: str) -> StoredResponse | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._get, response_id)

    def _get(self, response_id: str) -> StoredResponse | None:
        row = self.db.execute(
            "SELECT response, items FROM responses WHERE id = ?", (response_id,)
        ).fetchone()
        return None if row is None else StoredResponse(response_id, bytes(row[0]), bytes(row[1]))

    def save(self, stored: StoredResponse) -> None:
        self._pool.submit(self._save, stored)

    def _save(self, stored: StoredResponse) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO responses (id, response, items, created_at)"
                " VALUES (?, ?, ?, ?)",
                (stored.id, stored.response, stored.items, time.time()),
            )

    async def delete(self, response_id: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._delete, response_id)

    def _delete(self, response_id: str) -> bool:
        with self.db:
            cursor = self.db.execute("DELETE FROM responses WHERE id = ?", (response_id,))
        return cursor.rowcount > 0

    async def flush(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, lambda: None)

    async def close(self) -> None:
        if self._db is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._db.close)
            self._db = None
        self._pool.shutdown(wait=False)
