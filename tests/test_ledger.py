"""The spend ledger: one row per billed call, exact costs by kind, written in batches that a
database hiccup, a full queue or a shutdown never lose.

Rows come from a real gateway behind the priced OpenAI fake; the writer's durability is shown
with a real SQLite store whose file is made unwritable for a while, and the PostgreSQL store
against the real server (ROUTER_TEST_POSTGRES, default postgresql://127.0.0.1:5432/test).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from chaos import ACME, POLICY
from conftest import need
from fakes import FakeUpstream, Fault
from gateway_harness import MASTER_KEY, Gateway, running_gateway, write_config
from kit import ask, post
from router.metrics import Metrics
from router.store.ledger import Ledger, LedgerWriteError
from router.store.ledger_rows import COLUMNS, LedgerRow, SpendQuery
from router.store.ledger_sqlite import LedgerSqlite

PG = os.environ.get("ROUTER_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
PRICED = ACME.replace(
    '[models.primary.prices]\ninput = "1.00"\noutput = "2.00"',
    '[models.primary.prices]\ninput = "1.00"\noutput = "2.00"\ncached_input = "0.25"\n'
    'cache_write = "1.25"\nreasoning = "3.00"',
)
M = Decimal(1_000_000)


@pytest.fixture
def acme(tmp_path: Path) -> Iterator[tuple[FakeUpstream, Gateway]]:
    with FakeUpstream("openai") as fake:
        config = write_config(tmp_path, providers={"acme": PRICED}, policy=POLICY)
        env = {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url}
        with running_gateway(config, env) as gw:
            yield fake, gw


def rows(gw: Gateway) -> list[dict[str, object]]:
    """Every ledger row, after the writer flushed."""
    ledger = gw.runtime.ledger
    gw.call(ledger.flush())
    db = ledger.db
    assert isinstance(db, LedgerSqlite)
    found = gw.call(db.rows())
    return [dict(zip(COLUMNS, r, strict=True)) for r in found]  # type: ignore[attr-defined]


USAGE = {
    "prompt": 1000,
    "completion": 500,
    "cached": 400,
    "reasoning": 200,
}  # OpenAI: no cache write


@pytest.mark.parametrize("stream", [False, True])
def test_a_row_per_call_with_tokens_and_costs_by_kind(acme, stream):
    fake, gw = acme
    fake.script("primary", Fault.ok(text="hello there", usage=USAGE))
    answer = ask(gw, ["acme/primary"], stream=stream)
    assert answer.status_code == 200
    (row,) = rows(gw)
    assert row["request_id"] == answer.headers["x-request-id"]  # the logs' and traces' id
    assert (row["key_name"], row["key_id"], row["surface"]) == ("master", None, "ironlabs")
    assert (row["provider"], row["model"], row["outcome"], row["status"]) == (
        "acme",
        "primary",
        "ok",
        200,
    )
    assert bool(row["stream"]) is stream
    tokens = [row[k] for k in ("input_tokens", "cached_tokens", "cache_write_tokens")]
    assert tokens == [1000, 400, 0]
    assert (row["output_tokens"], row["reasoning_tokens"]) == (500, 200)
    expected = {
        "input_cost": 600 * Decimal("1.00") / M,
        "cached_cost": 400 * Decimal("0.25") / M,
        "cache_write_cost": Decimal(0),
        "output_cost": 300 * Decimal("2.00") / M,
        "reasoning_cost": 200 * Decimal("3.00") / M,
    }
    for name, cost in expected.items():
        assert Decimal(str(row[name])) == cost, name
    assert Decimal(str(row["total_cost"])) == sum(expected.values()) == Decimal("0.0019")
    assert row["failed_cost"] is None and row["failed_tokens"] == 0
    assert row["latency_ms"] >= row["ttft_ms"] >= 0


def test_a_failed_over_call_is_one_row_with_its_trail(acme):
    fake, gw = acme
    fake.script("primary", Fault.status(500))
    fake.script("backup", Fault.ok(text="fine", usage=(10, 2)))
    answer = ask(gw, ["acme/primary", "acme/backup"], maxRetries=0)
    assert answer.json()["model"] == "backup"
    (row,) = rows(gw)
    assert (row["provider"], row["model"], row["input_tokens"], row["output_tokens"]) == (
        "acme",
        "backup",
        10,
        2,
    )
    trail = [(a["model"], a["outcome"], a["status"]) for a in json.loads(str(row["attempts"]))]
    assert trail == [("primary", "server_error", 500), ("backup", "ok", 200)]
    assert Decimal(str(row["total_cost"])) == (10 * Decimal("0.50") + 2 * Decimal("1.00")) / M


def test_a_cut_stream_bills_what_the_broken_attempt_consumed(acme):
    fake, gw = acme
    fake.script("primary", Fault.cut(2, Fault.ok(text="one two three four five six", chunks=6)))
    answer = ask(gw, ["acme/primary"], stream=True)
    assert answer.status_code == 200
    (row,) = rows(gw)
    assert (row["outcome"], row["input_tokens"], row["output_tokens"]) == ("stream_cut", 0, 0)
    # estimated: the prompt "hello" (2 tokens + 4 a message) at $1, the 10 characters sent
    # ("one t", "wo th": 3 tokens) at $2 per 1M
    assert row["failed_tokens"] == 9
    assert Decimal(str(row["failed_cost"])) == (6 * Decimal("1.00") + 3 * Decimal("2.00")) / M
    assert row["total_cost"] == row["failed_cost"]


def test_a_call_that_reached_no_upstream_is_not_billed(acme):
    _, gw = acme
    assert ask(gw, ["acme/tiny"], text="far too long " * 50).status_code == 400
    assert rows(gw) == []


# ---- the writer: batches, retries, back-pressure, shutdown -------------------------------


def row(n: int) -> LedgerRow:
    return LedgerRow(
        request_id=f"req_{n}",
        ts=1_700_000_000.0 + n,
        key_id="key_a" if n % 2 else "key_b",
        key_name="a" if n % 2 else "b",
        team=None,
        surface="openai",
        stream=False,
        provider="acme",
        model="primary",
        outcome="ok",
        status=200,
        input_tokens=n,
        total_cost=Decimal("0.000001") * n,
    )


class Unwritable(LedgerSqlite):
    """The SQLite store with a switch: while `broken`, writes fail as a locked file would."""

    broken = 0  # writes left to fail

    async def write(self, rows: list[LedgerRow]) -> None:
        if self.broken:
            self.broken -= 1
            raise LedgerWriteError("SQLite: OperationalError: database is locked")
        await super().write(rows)


def test_a_database_hiccup_is_retried_counted_and_loses_nothing(tmp_path):
    async def run() -> None:
        db = await Unwritable(str(tmp_path / "l.db")).open()
        db.broken = 3
        metrics = Metrics()
        ledger = Ledger(db, metrics, batch=4, interval=0.0, backoff=(0.001, 0.01))
        ledger._rows.extend(row(n) for n in range(10))
        assert await ledger.flush()
        assert metrics.ledger_errors._value.get() == 3
        assert metrics.ledger_rows._value.get() == 10
        lines = await db.spend(SpendQuery(group_by="key"))
        assert [(x.group, x.requests, x.input_tokens) for x in lines] == [
            ("key_a", 5, 25),
            ("key_b", 5, 20),
        ]
        assert sum(x.cost for x in lines) == Decimal("0.000045")
        await ledger.close()

    asyncio.run(run())


def test_a_full_queue_holds_new_requests_until_the_writer_catches_up(tmp_path):
    async def run() -> None:
        db = await Unwritable(str(tmp_path / "l.db")).open()
        db.broken = 2
        ledger = Ledger(db, Metrics(), limit=5, interval=0.0, backoff=(0.02, 0.02))
        for n in range(5):
            ledger._rows.append(row(n))
        ledger._room.clear()  # as `finished` does at the limit
        assert ledger.full
        waiting = asyncio.create_task(ledger.admit())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        ledger.start()
        ledger._wake.set()
        await asyncio.wait_for(waiting, 2)
        assert not ledger.full and ledger.queued == 0
        await ledger.close()

    asyncio.run(run())


def test_close_writes_every_queued_row(tmp_path):
    path = str(tmp_path / "l.db")

    async def run() -> None:
        db = await LedgerSqlite(path).open()
        ledger = Ledger(db, Metrics(), interval=60.0)
        ledger.start()
        ledger._rows.extend(row(n) for n in range(1200))
        await ledger.close()

    asyncio.run(run())
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT COUNT(*) FROM router_ledger").fetchone() == (1200,)


# ---- PostgreSQL ------------------------------------------------------------------------------


def _pg_reachable() -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(PG, timeout=2)
        except (OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


@pytest.mark.postgres
def test_postgres_ledger_is_exact_and_idempotent():
    need(_pg_reachable(), f"PostgreSQL not reachable at {PG}")
    from router.store.ledger_postgres import LedgerPostgres

    tag = uuid.uuid4().hex[:8]

    async def run() -> None:
        db = await LedgerPostgres(PG).open()
        batch = [
            LedgerRow(**{**_fields(row(n)), "request_id": f"req_{tag}_{n}", "key_id": tag})
            for n in range(6)
        ]
        await db.write(batch)
        await db.write(batch[:3])  # a batch retried after a write that went through
        lines = await db.spend(SpendQuery(group_by="day", key=tag))
        assert [(x.group, x.requests, x.input_tokens) for x in lines] == [("2023-11-14", 6, 15)]
        assert lines[0].cost == Decimal("0.000015")
        async with db.pool.acquire() as conn:
            await conn.execute("DELETE FROM router_ledger WHERE key_id = $1", tag)
        await db.close()

    asyncio.run(run())


def _fields(r: LedgerRow) -> dict[str, object]:
    return {name: getattr(r, name) for name in COLUMNS}


def test_a_request_id_the_caller_chose_twice_makes_two_rows(acme):
    """The caller's `x-request-id` names the row, made unique: the ledger never merges two
    requests that were sent with the same id."""
    fake, gw = acme
    fake.script("primary", Fault.ok(text="one", usage=USAGE), Fault.ok(text="two", usage=USAGE))
    for _ in range(2):
        r = post(
            gw,
            "/api/v1/completions",
            {"models": ["acme/primary"], "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {MASTER_KEY}", "x-request-id": "batch-7"},
        )
        assert (r.status_code, r.headers["x-request-id"]) == (200, "batch-7")
    ids = sorted(r["request_id"] for r in rows(gw))
    assert len(ids) == 2 and ids[0] != ids[1]
    assert all(re.fullmatch(r"batch-7\.[0-9a-f]{8}", i) for i in ids)
