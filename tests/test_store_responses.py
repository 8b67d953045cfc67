"""The responses store: SQLite and the real PostgreSQL behind one interface; a read queued
after a save sees it, on any store object over the same database (another replica)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import asyncpg
import pytest

from conftest import need
from router.store import open_responses
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
