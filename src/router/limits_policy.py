"""Each virtual key's team, budget and rate limits: one row per key id in its own table
(`router_key_limits`, beside the keys in SQLite or PostgreSQL), held in memory by every
process (`PolicyBook`) and reloaded when a key changes (`Runtime.keys_changed`, which reaches
every process over Redis)."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import msgspec

from router.config import Budget, RateLimit
from router.config_checks import check_budget, check_rate
from router.errors import RequestError
from router.store.pg import PostgresTables
from router.store.sqlite import connect


class KeyPolicy(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    team: str | None = None
    budget: Budget | None = None
    limits: RateLimit | None = None

    @property
    def limited(self) -> bool:
        return self.budget is not None or self.limits is not None


def check_policy(policy: KeyPolicy) -> None:
    """400 naming the field for values the types allow but a limit cannot be."""
    problems = [
        check_budget(policy.budget, "budget") if policy.budget else None,
        check_rate(policy.limits, "limits") if policy.limits else None,
    ]
    if policy.team is not None and not policy.team.strip():
        problems.append("team: must not be empty")
    for problem in problems:
        if problem is not None:
            field, _, message = problem.partition(": ")
            raise RequestError("invalid_value", f"{field} {message}.", field)


_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder(KeyPolicy)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS router_key_limits (
    key_id TEXT PRIMARY KEY,
    policy TEXT NOT NULL
);
"""
_UPSERT = (
    "INSERT INTO router_key_limits (key_id, policy) VALUES ({0}, {1})"
    " ON CONFLICT (key_id) DO UPDATE SET policy = excluded.policy"
)


class PolicyStore(Protocol):
    async def load(self) -> dict[str, KeyPolicy]: ...

    async def save(self, key_id: str, policy: KeyPolicy) -> None: ...

    async def close(self) -> None: ...


class SqlitePolicies:
    def __init__(self, path: str) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-limits")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> SqlitePolicies:
        self._db = await asyncio.wrap_future(self._pool.submit(self._open))
        return self

    def _open(self) -> sqlite3.Connection:
        return connect(self.path, _SCHEMA)

    def _load(self) -> dict[str, KeyPolicy]:
        assert self._db is not None
        rows = self._db.execute("SELECT key_id, policy FROM router_key_limits")
        return {str(k): _DECODE.decode(str(p)) for k, p in rows}

    def _save(self, key_id: str, policy: KeyPolicy) -> None:
        assert self._db is not None
        with self._db:
            self._db.execute(_UPSERT.format("?", "?"), (key_id, _ENCODE(policy).decode()))

    async def load(self) -> dict[str, KeyPolicy]:
        return await asyncio.wrap_future(self._pool.submit(self._load))

    async def save(self, key_id: str, policy: KeyPolicy) -> None:
        await asyncio.wrap_future(self._pool.submit(self._save, key_id, policy))

    async def close(self) -> None:
        if self._db is not None:
            await asyncio.wrap_future(self._pool.submit(self._db.close))
        self._pool.shutdown(wait=True)


class PostgresPolicies(PostgresTables):
    schema = _SCHEMA
    lock = 7223014
    connections = 2

    async def load(self) -> dict[str, KeyPolicy]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT key_id, policy FROM router_key_limits")
        return {str(r["key_id"]): _DECODE.decode(r["policy"]) for r in rows}

    async def save(self, key_id: str, policy: KeyPolicy) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(_UPSERT.format("$1", "$2"), key_id, _ENCODE(policy).decode())


async def open_policies(database: str) -> PolicyStore:
    if database.startswith(("postgresql://", "postgres://")):
        return await PostgresPolicies(database).open()
    return await SqlitePolicies(database).open()


class PolicyBook:
    """Every key's policy, in memory: looked up per request without I/O."""

    def __init__(self, store: PolicyStore) -> None:
        self.store = store
        self.policies: dict[str, KeyPolicy] = {}

    async def reload(self) -> None:
        self.policies = await self.store.load()

    def of(self, key_id: str | None) -> KeyPolicy | None:
        return None if key_id is None else self.policies.get(key_id)

    def team_of(self, key_id: str | None) -> str | None:
        policy = self.of(key_id)
        return policy.team if policy else None

    async def save(self, key_id: str, policy: KeyPolicy) -> None:
        check_policy(policy)
        await self.store.save(key_id, policy)
        self.policies = {**self.policies, key_id: policy}

    @property
    def limited(self) -> bool:
        return any(p.limited for p in self.policies.values())
