"""Virtual keys: the store interface and the one function that opens the configured store.

    key_records.py    records, hashing, checks, the public view (what both stores share)
    keys_sqlite.py    SqliteKeyStore: the default, in the conversations' SQLite file
    keys_postgres.py  PostgresKeyStore: when `storage.database` is a postgresql:// URL

Checking a key on a request goes through `router.auth.KeyAuth`, a cache over this interface.
"""

from __future__ import annotations

from typing import Protocol

from router.store.key_records import KeyChanges, KeyRecord, NewKey
from router.store.keys_sqlite import SqliteKeyStore


class KeyStore(Protocol):
    async def create(self, new: NewKey) -> tuple[str, KeyRecord]: ...

    async def list(self) -> list[KeyRecord]: ...

    async def get(self, key_id: str) -> KeyRecord: ...

    async def by_hash(self, digest: str) -> KeyRecord | None: ...

    async def update(self, key_id: str, changes: KeyChanges) -> KeyRecord: ...

    async def revoke(self, key_id: str) -> KeyRecord: ...

    async def touch(self, uses: dict[str, float]) -> None:
        """Record when keys were last used: key id -> unix seconds."""
        ...

    async def close(self) -> None: ...


async def open_keys(database: str) -> KeyStore:
    """The key store for `storage.database`: a SQLite path or a PostgreSQL URL."""
    if database.startswith(("postgresql://", "postgres://")):
        from router.store.keys_postgres import PostgresKeyStore  # asyncpg only when asked for

        return await PostgresKeyStore(database).open()
    return await SqliteKeyStore(database).open()
