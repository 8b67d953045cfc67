"""Virtual keys: issued by the master key, stored only as hashes, checked on every request.

A key (`sk-rt-<random>`) is shown once, when created; the store keeps its SHA-256 and a short
prefix for display. Each key has a name, the model patterns it may use (`openai/*`,
`demo/echo`, `gpt-4o-mini`), an optional expiry and free-form metadata; revoking keeps the row.

`KeyStore` is the interface; `SqliteKeyStore` (the default) keeps the table in the same SQLite
file as the conversations, on one dedicated thread (`KeyDb` is its synchronous core);
`router.store.keys_postgres` keeps it in PostgreSQL when `storage.database` is a URL.
`KeyAuth` answers `Authenticator.lookup` from a short-lived in-memory cache, so checking a
key costs one hash and one dict lookup per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import msgspec

from router.auth import Principal
from router.errors import AuthError, NotFoundError, RequestError

KEY_PREFIX = "sk-rt-"
_SHOWN = len(KEY_PREFIX) + 6  # characters of a key kept for display
_ENCODE = msgspec.json.Encoder().encode
_MODELS = msgspec.json.Decoder(tuple[str, ...])
_METADATA = msgspec.json.Decoder(dict[str, object])


class KeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One virtual key as stored: everything but the key itself."""

    id: str
    name: str
    prefix: str  # the first characters of the key, for telling keys apart
    models: tuple[str, ...]
    expires_at: float | None  # unix seconds
    metadata: dict[str, object]
    created_at: float
    revoked_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def principal(self) -> Principal:
        return Principal(self.name, master=False, models=self.models, key_id=self.id)


class NewKey(msgspec.Struct, frozen=True, kw_only=True):
    """What creating a key needs."""

    name: str
    models: tuple[str, ...] = ("*",)
    expires_at: float | None = None
    metadata: dict[str, object] = {}


class KeyChanges(msgspec.Struct, frozen=True, kw_only=True):
    """A partial update: UNSET fields stay as they are; `expires_at=None` removes the expiry."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    models: tuple[str, ...] | msgspec.UnsetType = msgspec.UNSET
    expires_at: float | msgspec.UnsetType | None = msgspec.UNSET
    metadata: dict[str, object] | msgspec.UnsetType = msgspec.UNSET


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def check_new(new: NewKey) -> None:
    """Checks beyond the types, each naming its field."""
    if not new.name.strip():
        raise RequestError("invalid_value", "name must not be empty.", "name")
    check_models(new.models)


def check_models(models: tuple[str, ...]) -> None:
    if not models:
        raise RequestError("invalid_value", "models must name at least one pattern.", "models")
    for i, pattern in enumerate(models):
        if not pattern.strip():
            raise RequestError("invalid_value", "a model pattern is empty.", f"models[{i}]")


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
    revoked_at REAL
);
"""
COLUMNS = "id, prefix, name, models, expires_at, metadata, created_at, revoked_at"


def mint(new: NewKey) -> tuple[str, KeyRecord]:
    """A fresh key and its record, after checking what was asked for."""
    check_new(new)
    secret = new_secret()
    record = KeyRecord(
        id="key_" + secrets.token_hex(8),
        name=new.name.strip(),
        prefix=secret[:_SHOWN],
        models=new.models,
        expires_at=new.expires_at,
        metadata=new.metadata,
        created_at=time.time(),
    )
    return secret, record


def row_of(record: KeyRecord) -> tuple[object, ...]:
    """A record as the values of COLUMNS, in order."""
    return (
        record.id,
        record.prefix,
        record.name,
        _ENCODE(record.models).decode(),
        record.expires_at,
        _ENCODE(record.metadata).decode(),
        record.created_at,
        record.revoked_at,
    )


def changed_columns(changes: KeyChanges) -> dict[str, object]:
    """Column -> new value for what `changes` sets, each checked."""
    sets: dict[str, object] = {}
    if changes.name is not msgspec.UNSET:
        if not changes.name.strip():
            raise RequestError("invalid_value", "name must not be empty.", "name")
        sets["name"] = changes.name.strip()
    if changes.models is not msgspec.UNSET:
        check_models(changes.models)
        sets["models"] = _ENCODE(changes.models).decode()
    if changes.expires_at is not msgspec.UNSET:
        sets["expires_at"] = changes.expires_at
    if changes.metadata is not msgspec.UNSET:
        sets["metadata"] = _ENCODE(changes.metadata).decode()
    return sets


def not_found(key_id: str) -> NotFoundError:
    return NotFoundError("key_not_found", f"No key with id {key_id}.", "id")


def record_of(row: Sequence[object]) -> KeyRecord:
    kid, prefix, name, models, expires, metadata, created, revoked = row
    return KeyRecord(
        id=str(kid),
        name=str(name),
        prefix=str(prefix),
        models=_MODELS.decode(str(models)),
        expires_at=expires,  # type: ignore[arg-type]  # REAL or NULL, as written
        metadata=_METADATA.decode(str(metadata)),
        created_at=float(created),  # type: ignore[arg-type]
        revoked_at=revoked,  # type: ignore[arg-type]
    )


class KeyDb:
    """The synchronous SQLite core: one connection, used from one thread at a time."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, timeout=10)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def create(self, new: NewKey) -> tuple[str, KeyRecord]:
        """(the key, its record): the only time the key itself is returned."""
        secret, record = mint(new)
        with self.db:
            self.db.execute(
                f"INSERT INTO api_keys (hash, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

    def close(self) -> None:
        self.db.close()


class KeyStore(Protocol):
    async def create(self, new: NewKey) -> tuple[str, KeyRecord]: ...

    async def list(self) -> list[KeyRecord]: ...

    async def get(self, key_id: str) -> KeyRecord: ...

    async def by_hash(self, digest: str) -> KeyRecord | None: ...

    async def update(self, key_id: str, changes: KeyChanges) -> KeyRecord: ...

    async def revoke(self, key_id: str) -> KeyRecord: ...

    async def close(self) -> None: ...


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

    async def close(self) -> None:
        if self._db is not None:
            await asyncio.wrap_future(self._pool.submit(self._db.close))
        self._pool.shutdown(wait=True)


async def open_keys(database: str) -> KeyStore:
    """The key store for `storage.database`: a SQLite path or a PostgreSQL URL."""
    if database.startswith(("postgresql://", "postgres://")):
        from router.store.keys_postgres import PostgresKeyStore  # asyncpg only when asked for

        return await PostgresKeyStore(database).open()
    return await SqliteKeyStore(database).open()


_CACHE_LIMIT = 10_000  # entries; unknown keys are cached too, so guessing cannot flood SQLite


class KeyAuth:
    """`Authenticator.lookup` over a `KeyStore`, with a short-lived cache keyed by the hash.

    Changes made through this object (the admin API) apply at once; changes made elsewhere
    (the `router keys` command, another worker) within `ttl` seconds, or at once with
    `storage.redis_url` (`router.cluster` calls `forget`). Expiry is checked on every request
    against the cached record.
    """

    def __init__(self, store: KeyStore, ttl: float = 5.0) -> None:
        self.store = store
        self.ttl = ttl
        self._cache: dict[str, tuple[float, KeyRecord | None, Principal | None]] = {}

    async def lookup(self, key: str) -> Principal | None:
        digest = hash_key(key)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is None or now - cached[0] > self.ttl:
            record = await self.store.by_hash(digest) if key.startswith(KEY_PREFIX) else None
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            cached = (now, record, record.principal() if record is not None else None)
            self._cache[digest] = cached
        record, principal = cached[1], cached[2]
        if record is None:
            return None
        if record.revoked:
            raise AuthError("This API key has been revoked.")
        if record.expired(time.time()):
            raise AuthError("This API key has expired.")
        return principal

    def forget(self) -> None:
        """Drop every cached answer (after the admin API changed a key)."""
        self._cache.clear()
