"""Virtual keys in PostgreSQL, for several gateway hosts sharing one set of keys.

Selected with the conversations by `storage.database = "postgresql://..."`; the same rules
as the SQLite store (`router.store.keys_sqlite`): hashes only, checks in `mint` / `changed_columns`.
"""

from __future__ import annotations

import time

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
from router.store.pg import PostgresTables

_SCHEMA = """
CREATE TABLE IF NOT EXISTS router_api_keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL,
    models TEXT NOT NULL,
    expires_at DOUBLE PRECISION,
    metadata TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION,
    last_used_at DOUBLE PRECISION
);
ALTER TABLE router_api_keys ADD COLUMN IF NOT EXISTS last_used_at DOUBLE PRECISION;
"""
_SELECT = f"SELECT {COLUMNS} FROM router_api_keys"


class PostgresKeyStore(PostgresTables):
    schema = _SCHEMA
    lock = 7223002

    async def create(self, new: NewKey) -> tuple[str, KeyRecord]:
        secret, record = mint(new)
        await self.pool.execute(
            f"INSERT INTO router_api_keys (hash, {COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            hash_key(secret),
            *row_of(record),
        )
        return secret, record

    async def list(self) -> list[KeyRecord]:
        rows = await self.pool.fetch(f"{_SELECT} ORDER BY created_at, id")
        return [record_of(tuple(row)) for row in rows]

    async def get(self, key_id: str) -> KeyRecord:
        row = await self.pool.fetchrow(f"{_SELECT} WHERE id = $1", key_id)
        if row is None:
            raise not_found(key_id)
        return record_of(tuple(row))

    async def by_hash(self, digest: str) -> KeyRecord | None:
        row = await self.pool.fetchrow(f"{_SELECT} WHERE hash = $1", digest)
        return None if row is None else record_of(tuple(row))

    async def update(self, key_id: str, changes: KeyChanges) -> KeyRecord:
        current = await self.get(key_id)
        sets = changed_columns(changes)
        if not sets:
            return current
        # column names come from changed_columns, never from the caller
        assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(sets, start=2))
        await self.pool.execute(
            f"UPDATE router_api_keys SET {assignments} WHERE id = $1", key_id, *sets.values()
        )
        return await self.get(key_id)

    async def revoke(self, key_id: str) -> KeyRecord:
        await self.get(key_id)
        await self.pool.execute(
            "UPDATE router_api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            key_id,
            time.time(),
        )
        return await self.get(key_id)

    async def touch(self, uses: dict[str, float]) -> None:
        """Record when keys were last used (key id -> unix seconds); never moves time back."""
        await self.pool.executemany(
            "UPDATE router_api_keys SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $2)"
            " WHERE id = $1",
            list(uses.items()),
        )
