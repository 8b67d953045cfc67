"""Conversations in the real PostgreSQL server (ROUTER_TEST_POSTGRES, default local `test`)."""

from __future__ import annotations

import os
import uuid

import pytest

from conftest import need
from router.core.types import Message, TextPart
from router.store import open_conversations
from router.store.conversations import Turn

URL = os.environ.get("ROUTER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

pytestmark = pytest.mark.postgres


async def _reachable() -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(URL, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@pytest.fixture
async def schema_url():
    import asyncpg

    need(await _reachable(), f"PostgreSQL not reachable at {URL}")
    schema = f"router_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(URL)
    await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{URL}?search_path={schema}"
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


def _msg(role, text):
    return Message(role, (TextPart(text),))


async def test_turns_round_trip_in_order(schema_url):
    store = await open_conversations(schema_url)
    conv = str(uuid.uuid4())
    for i in range(5):
        store.save(
            Turn(
                conv,
                "Title",
                (_msg("user", f"q{i}"),),
                _msg("assistant", f"a{i}"),
                "openai",
                "gpt-4o",
                str(uuid.uuid4()),
            )
        )
    loaded = await store.load(conv)  # waits for this host's pending writes
    assert loaded is not None and loaded.title == "Title"
    assert [m.text() for m in loaded.messages] == [
        "q0",
        "a0",
        "q1",
        "a1",
        "q2",
        "a2",
        "q3",
        "a3",
        "q4",
        "a4",
    ]
    assert await store.load(str(uuid.uuid4())) is None
    await store.close()


async def test_a_second_host_sees_the_history(schema_url):
    one = await open_conversations(schema_url)
    two = await open_conversations(schema_url)
    conv = str(uuid.uuid4())
    one.save(
        Turn(
            conv,
            "Shared",
            (_msg("user", "hi"),),
            _msg("assistant", "hello"),
            "demo",
            "echo",
            str(uuid.uuid4()),
        )
    )
    await one.flush()
    loaded = await two.load(conv)
    assert loaded is not None and [m.text() for m in loaded.messages] == ["hi", "hello"]
    await one.close()
    await two.close()
