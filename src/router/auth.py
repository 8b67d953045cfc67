"""Who is calling: the master key or a virtual key, from `Authorization: Bearer <key>`.

The master key administers (`/admin/*`) and may use every model on both surfaces. Virtual
keys (stored only as hashes, see `router.store.keys`) are limited to the models their patterns
allow. `KeyAuth` answers `Authenticator.lookup` from a short-lived in-memory cache and records
when each key was last used, at most once a minute per key and off the request path.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hmac
import logging
import time
from collections.abc import Awaitable, Callable

import msgspec

from router.errors import AuthError, RequestError
from router.store.key_records import KEY_PREFIX, KeyRecord, hash_key
from router.store.keys import KeyStore

log = logging.getLogger("router.auth")

_OWS = " \t"  # HTTP's optional whitespace (RFC 9110 5.6.3): the only thing trimmed from a key


class Principal(msgspec.Struct, frozen=True):
    name: str
    master: bool = False
    models: tuple[str, ...] = ("*",)  # patterns such as "openai/*" or "demo/echo"
    key_id: str | None = None

    def may_use(self, ref: str, bare: str | None = None) -> bool:
        """May this caller use `provider/model` (asked for as `bare`, if it was)?"""
        if self.master or self.models == ("*",):
            return True
        names = (ref, bare) if bare else (ref,)
        return any(fnmatch.fnmatchcase(n, p) for p in self.models for n in names)


MASTER = Principal("master", master=True)

KeyLookup = Callable[[str], Awaitable[Principal | None]]


class Authenticator:
    """Checks bearer keys: constant-time against the master key, else via `lookup`."""

    def __init__(self, master_key: str, lookup: KeyLookup | None = None) -> None:
        self._master = master_key.encode()
        self.lookup = lookup

    async def authenticate(self, authorization: str | None) -> Principal:
        key = bearer(authorization)
        if key is None:
            raise AuthError("Missing API key: send `Authorization: Bearer <key>`.")
        if hmac.compare_digest(key.encode(), self._master):
            return MASTER
        if self.lookup is not None:
            principal = await self.lookup(key)
            if principal is not None:
                return principal
        raise AuthError("Invalid API key.")

    def require_master(self, principal: Principal) -> None:
        """403, not 401: the key is valid, it just may not administer."""
        if not principal.master:
            raise RequestError(
                "forbidden",
                "This endpoint needs the master key; virtual keys may only call models.",
                None,
                status=403,
            )


def bearer(authorization: str | None) -> str | None:
    """The key of `Bearer <key>`, exactly: only HTTP optional whitespace is trimmed, so a key
    followed by a non-breaking space (or anything else) is a different key."""
    if not authorization:
        return None
    scheme, _, key = authorization.partition(" ")
    key = key.strip(_OWS)
    if scheme.lower() != "bearer" or not key:
        return None
    return key


def principal_of(record: KeyRecord) -> Principal:
    return Principal(record.name, master=False, models=record.models, key_id=record.id)


_CACHE_LIMIT = 10_000  # entries; unknown keys are cached too, so guessing cannot flood the store

_Cached = tuple[float, KeyRecord | None, Principal | None]


class KeyAuth:
    """`Authenticator.lookup` over a `KeyStore`, with a short-lived cache keyed by the hash.

    Changes made through this object (the admin API) apply at once; changes made elsewhere
    (the `router keys` command, another worker) within `ttl` seconds, or at once with
    `storage.redis_url` (`router.cluster` calls `forget`). Expiry is checked on every request
    against the cached record. A key's use is written to the store by a background task, at
    most once per `touch_every` seconds per key, so a request never waits for a write.
    """

    def __init__(self, store: KeyStore, ttl: float = 5.0, touch_every: float = 60.0) -> None:
        self.store = store
        self.ttl = ttl
        self.touch_every = touch_every
        self._cache: dict[str, _Cached] = {}
        self._touched: dict[str, float] = {}  # key id -> monotonic time of the last recorded use
        self._pending: dict[str, float] = {}  # key id -> unix time of a use not yet written
        self._writer: asyncio.Task[None] | None = None

    async def lookup(self, key: str) -> Principal | None:
        digest = hash_key(key)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is None or now - cached[0] > self.ttl:
            cached = await self._fetch(key, digest, now)
        record, principal = cached[1], cached[2]
        if record is None:
            return None
        if record.revoked:
            raise AuthError("This API key has been revoked.")
        if record.expired(time.time()):
            raise AuthError("This API key has expired.")
        self._used(record.id, now)
        return principal

    async def _fetch(self, key: str, digest: str, now: float) -> _Cached:
        record = await self.store.by_hash(digest) if key.startswith(KEY_PREFIX) else None
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        cached = (now, record, principal_of(record) if record is not None else None)
        self._cache[digest] = cached
        return cached

    def _used(self, key_id: str, now: float) -> None:
        last = self._touched.get(key_id)
        if last is not None and now - last < self.touch_every:
            return
        if len(self._touched) >= _CACHE_LIMIT:
            self._touched.clear()
        self._touched[key_id] = now
        self._pending[key_id] = time.time()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        while self._pending:
            uses, self._pending = self._pending, {}
            try:
                await self.store.touch(uses)
            # The outermost edge of a background task: a failed bookkeeping write must not
            # end the task silently or reach a request; it is logged and the times dropped.
            except Exception:
                log.exception("could not record the last use of %d key(s)", len(uses))

    async def close(self) -> None:
        """Write what is pending (the lifespan calls this before closing the store)."""
        if self._writer is not None:
            await self._writer

    def forget(self) -> None:
        """Drop every cached answer (after the admin API changed a key)."""
        self._cache.clear()
