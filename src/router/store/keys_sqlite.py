"""Virtual keys in SQLite (the default): the `api_keys` table of the conversations' file.

`KeyDb` is the synchronous core; `SqliteKeyStore` runs it on one dedicated thread so no query
blocks the event loop. Records, hashing and checks live in `router.store.key_records`.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from router.store.key_records import (
    COLUMNS,
    KeyChanges,
    KeyRecord,
    NewKey,
    changed_columns,
    hash_key,
    mint,
    not_found,
    record_of,
    row_of,
)
from router.store.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL,
    models TEXT NOT NULL,
    expires_at REAL,
    metadata TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    last_used_at REAL
);
"""


class KeyDb:
    """The synchronous SQLite core: one connection, used from one thread at a time."""

    def __init__(self, path: str) -> None:
        self.db = connect(path, _SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(api_keys)")}
        if "last_used_at" not in columns:  # a file written before keys recorded their use
            with self.db:
                self.db.execute("ALTER TABLE api_keys ADD COLUMN last_used_at REAL")

    def create(self, new: NewKey) -> tuple[str, KeyRecord]:
        """(the key, its record): the only time the key itself is returned."""
        secret, record = mint(new)
        with self.db:
            self.db.execute(
                f"INSERT INTO api_keys (hash, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (hash_key(secret), *row_of(record)),
            )
        return secret, record

    def list(self) -> list[KeyRecord]:
        rows = self.db.execute(f"SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id")
        return [record_of(row) for row in rows]

    def get(self, key_id: str) -> KeyRecord:
        row = self.db.execute(f"SELECT {COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise not_found(key_id)
        return record_of(row)

    def by_hash(self, digest: str) -> KeyRecord | None:
        row = self.db.execute(
            f"SELECT {COLUMNS} FROM api_keys WHERE hash = ?", (digest,)
        ).fetchone()
        return None if row is None else record_of(row)

    def update(self, key_id: str, changes: KeyChanges) -> KeyRecord:
        current = self.get(key_id)
        sets = changed_columns(changes)
        if not sets:
            return current
        assignments = ", ".join(f"{column} = ?" for column in sets)  # column names are ours
        with self.db:
            self.db.execute(
                f"UPDATE api_keys SET {assignments} WHERE id = ?", (*sets.values(), key_id)
            )
        return self.get(key_id)

    def revoke(self, key_id: str) -> KeyRecord:
        self.get(key_id)
        with self.db:
            self.db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), key_id),
            )
        return self.get(key_id)

    def touch(self, uses: dict[str, float]) -> None:
        """Record when keys were last used (key id -> unix seconds); never moves time back."""
        with self.db:
            self.db.executemany(
                "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?",
                [(when, key_id) for key_id, when in uses.items()],
            )

    def close(self) -> None:
        self.db.close()


class SqliteKeyStore:
    """`KeyDb` on one dedicated thread, so no query blocks the event loop."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-keys")
        self._db: KeyDb | None = None

    async def open(self) -> SqliteKeyStore:
        self._db = await asyncio.wrap_future(self._pool.submit(KeyDb, self.path))
        return self

    @property
    def db(self) -> KeyDb:
        assert self._db is not None, "key store not open"
        return self._db

    async def create(self, new: NewKey) -> tuple[str, KeyRecord]:
        return await asyncio.wrap_future(self._pool.submit(self.db.create, new))

    async def list(self) -> list[KeyRecord]:
        return await asyncio.wrap_future(self._pool.submit(self.db.list))

    async def get(self, key_id: str) -> KeyRecord:
        return await asyncio.wrap_future(self._pool.submit(self.db.get, key_id))

    async def by_hash(self, digest: str) -> KeyRecord | None:
        return await asyncio.wrap_future(self._pool.submit(self.db.by_hash, digest))

    async def update(self, key_id: str, changes: KeyChanges) -> KeyRecord:
        return await asyncio.wrap_future(self._pool.submit(self.db.update, key_id, changes))

    async def revoke(self, key_id: str) -> KeyRecord:
        return await asyncio.wrap_future(self._pool.submit(self.db.revoke, key_id))

    async def touch(self, uses: dict[str, float]) -> None:
        await asyncio.wrap_future(self._pool.submit(self.db.touch, uses))

    async def close(self) -> None:
        if self._db is not None:
            await asyncio.wrap_future(self._pool.submit(self._db.close))
        self._pool.shutdown(wait=True)
