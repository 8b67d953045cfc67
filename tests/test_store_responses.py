"""The responses store: SQLite and the real PostgreSQL behind one interface; a read queued
after a save sees it, on any store object over the same database (another replica)."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

import asyncpg
import pytest

from conftest import need
from router.store import open_responses
from router.store.pending import PendingWrites
from router.store.response_records import ResponseStore, StoredResponse

URL = os.environ.get("ROUTER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def _round_trip(first: ResponseStore, second: ResponseStore) -> None:
    ident = "resp_" + secrets.token_hex(8)
    first.save(StoredResponse(ident, b'{"id":"x"}', b"[]"))
    assert await first.get(ident) == StoredResponse(ident, b'{"id":"x"}', b"[]")
    await first.flush()
    assert await second.get(ident) == StoredResponse(ident, b'{"id":"x"}', b"[]")
    assert await second.delete(ident) is True
    assert await first.get(ident) is None
    assert await first.delete(ident) is False


async def test_sqlite_responses(tmp_path: Path) -> None:
    path = str(tmp_path / "router.db")
    first, second = await open_responses(path), await open_responses(path)
    try:
        await _round_trip(first, second)
    finally:
        await first.close()
        await second.close()


@pytest.mark.postgres
async def test_postgres_responses_shared_by_two_replicas() -> None:
    try:
        conn = await asyncpg.connect(URL, timeout=3)
        await conn.close()
        reachable = True
    except (OSError, asyncpg.PostgresError):
        reachable = False
    need(reachable, f"PostgreSQL not reachable at {URL}")
    first, second = await open_responses(URL), await open_responses(URL)
    try:
        await _round_trip(first, second)
    finally:
        await first.close()
        await second.close()


async def test_pending_writes_run_in_order_per_key_and_a_wait_sees_them() -> None:
    writes, done = PendingWrites("test"), []
    gate = asyncio.Event()

    async def write(name: str, first: bool = False) -> None:
        if first:
            await gate.wait()
        if name == "a2-fails":
            raise OSError("down")
        done.append(name)

    writes.start("a", lambda: write("a1", first=True))
    writes.start("a", lambda: write("a2-fails"))
    writes.start("a", lambda: write("a3"))
    writes.start("b", lambda: write("b1"))
    await writes.wait("b")
    assert done == ["b1"]  # key b does not wait for key a
    gate.set()
    await writes.wait("a")
    assert done == ["b1", "a1", "a3"]  # in order; a failed write does not stop the next
    assert writes.failed == 1
    await writes.flush()
