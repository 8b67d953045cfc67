"""Limits that hold across a fleet: three `router serve` processes sharing the real Redis
(counters) and PostgreSQL (keys, policies, ledger), behind one priced OpenAI fake.

Requests are spread over the three processes round-robin and sent at once; the counts are
exact because every check-and-reserve is one Lua script on Redis.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis

from chaos import ACME
from conftest import need
from fakes import FakeUpstream, Fault
from gateway_harness import MASTER_KEY, free_port, write_config
from kit import COMPLETIONS, post
from test_cluster import URL as REDIS
from test_cluster import _reachable
from test_ledger import PG, _pg_reachable

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

PRICEY = """
protocol = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "ACME_API_KEY"
[models.gold]
[models.gold.prices]
input = "100"
output = "1000"
"""
USER = [{"role": "user", "content": "hi"}]
M = Decimal(1_000_000)


class Fleet:
    def __init__(self, urls: list[str], procs: list[subprocess.Popen[bytes]], fake: FakeUpstream):
        self.urls = urls
        self.procs = procs
        self.fake = fake

    def admin(self, method: str, path: str, i: int = 0, **kw: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {MASTER_KEY}"}
        return httpx.request(method, self.urls[i] + path, headers=headers, timeout=10, **kw)  # type: ignore[arg-type]

    def key(self, **body: object) -> dict[str, object]:
        made = self.admin("POST", "/admin/keys", json={"name": "fleet", **body})
        assert made.status_code == 201, made.text
        key = made.json()
        for i in range(len(self.urls)):  # every process has loaded its limits
            deadline = time.monotonic() + 3
            while (
                self.admin("GET", f"/admin/keys/{key['id']}", i).json().get("limits")
                != key["limits"]
                or self.admin("GET", f"/admin/keys/{key['id']}", i).json().get("budget")
                != key["budget"]
            ):
                assert time.monotonic() < deadline, "a process did not hear of the key"
                time.sleep(0.02)
        return key  # type: ignore[no-any-return]


def _config(folder: Path, prefix: str) -> Path:
    extra = """
[limits.deployments]
"acme/primary" = { rpm = 5 }
"""
    config = write_config(folder, extra, providers={"acme": ACME, "pricey": PRICEY})
    storage = f'[storage]\ndatabase = "{PG}"\nredis_url = "{REDIS}"\nredis_prefix = "{prefix}"\n'
    text = config.read_text()
    start = text.index("[storage]")
    end = text.index("\n", text.index("database", start)) + 1
    config.write_text(text[:start] + storage + text[end:])
    return config


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "a gateway did not start"
        time.sleep(0.1)


@contextmanager
def fleet(tmp_path: Path, n: int = 3) -> Iterator[Fleet]:
    need(_reachable(REDIS), f"Redis not reachable at {REDIS}")
    need(_pg_reachable(), f"PostgreSQL not reachable at {PG}")
    prefix = f"router-test-{uuid.uuid4().hex[:12]}"
    with FakeUpstream("openai") as fake, ExitStack() as stack:
        config = _config(tmp_path, prefix)
        env = {
            **os.environ,
            "ROUTER_MASTER_KEY": MASTER_KEY,
            "ACME_API_KEY": "sk-acme",
            "ACME_BASE_URL": fake.url,
            "PRICEY_BASE_URL": fake.url,
        }
        procs, urls = [], []
        for _ in range(n):
            port = free_port()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "router",
                    "serve",
                    "--config",
                    str(config),
                    "--port",
                    str(port),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            stack.callback(_stop, proc)
            procs.append(proc)
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            _wait(url, proc)
        yield Fleet(urls, procs, fake)
    client = redis.Redis.from_url(REDIS)
    for name in client.scan_iter(f"{prefix}:*"):
        client.delete(name)
    client.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if proc.stderr:
        proc.stderr.close()


async def _burst(fleet: Fleet, key: str, count: int, **body: object) -> list[httpx.Response]:
    """`count` requests at once, round-robin over the fleet."""
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        payload = {"model": "acme/backup", "messages": USER, **body}

        async def one(i: int) -> httpx.Response:
            url = fleet.urls[i % len(fleet.urls)] + "/v1/chat/completions"
            return await client.post(url, json=payload, headers=headers)

        return await asyncio.gather(*(one(i) for i in range(count)))


def _same_minute(margin: float = 12.0) -> None:
    """Start a burst well inside one fixed minute window."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.1)


async def _ledger(key_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(PG)
    try:
        return await conn.fetch("SELECT * FROM router_ledger WHERE key_id = $1", key_id)
    finally:
        await conn.close()


def ledger(fleet: Fleet, key_id: str) -> list[asyncpg.Record]:
    for i in range(len(fleet.urls)):  # a report flushes the process's queue first
        if fleet.procs[i].poll() is None:
            fleet.admin("GET", f"/admin/spend?key={key_id}", i)
    return asyncio.run(_ledger(key_id))


def test_rpm_50_over_three_processes_answers_exactly_50(tmp_path):
    with fleet(tmp_path) as f:
        f.fake.always("backup", Fault.ok(text="ok", usage=(10, 2)))
        key = f.key(limits={"rpm": 50})
        _same_minute()
        answers = asyncio.run(_burst(f, str(key["key"]), 200))
        statuses = [a.status_code for a in answers]
        assert (statuses.count(200), statuses.count(429)) == (50, 150)
        assert all(int(a.headers["retry-after"]) >= 1 for a in answers if a.status_code == 429)
        assert all(a.headers["x-ratelimit-limit-requests"] == "50" for a in answers)
        assert len(f.fake.seen_for("backup")) == 50
        assert len(ledger(f, str(key["id"]))) == 50


def test_tpm_is_exact_to_the_token_reserved(tmp_path):
    with fleet(tmp_path) as f:
        f.fake.always("backup", Fault.ok(text="ok", usage=(10, 2), delay=1.0))
        body = {"max_tokens": 100}
        # every request reserves the same: its body's bytes / 4 + 100
        size = len(
            httpx.Request(
                "POST", "http://x", json={"model": "acme/backup", "messages": USER, **body}
            ).content
        )
        reserve = (size + 3) // 4 + 100
        key = f.key(limits={"tpm": 7 * reserve})
        _same_minute()
        answers = asyncio.run(_burst(f, str(key["key"]), 30, **body))
        statuses = [a.status_code for a in answers]
        assert (statuses.count(200), statuses.count(429)) == (7, 23)


def test_a_budget_holds_under_20_concurrent_streams_and_the_ledger_matches_billing(tmp_path):
    with fleet(tmp_path) as f:
        usage = {"prompt": 30, "completion": 12, "cached": 10, "reasoning": 4}
        f.fake.always("gold", Fault.ok(text="a b c", usage=usage, chunks=3, chunk_delay=0.05))
        body = {"model": "pricey/gold", "stream": True, "max_tokens": 20}
        key = f.key(budget={"max_budget": "0.05", "duration": "1d"})
        answers = asyncio.run(_burst(f, str(key["key"]), 20, **body))
        ok = [a for a in answers if a.status_code == 200]
        assert 2 <= len(ok) < 20
        assert all(
            a.json()["error"]["code"] == "budget_exceeded" for a in answers if a.status_code != 200
        )
        rows = ledger(f, str(key["id"]))
        assert len(rows) == len(ok) == len(f.fake.seen_for("gold"))
        assert sum(r["input_tokens"] for r in rows) == 30 * len(ok)
        assert sum(r["cached_tokens"] for r in rows) == 10 * len(ok)
        assert sum(r["output_tokens"] for r in rows) == 12 * len(ok)
        assert sum(r["reasoning_tokens"] for r in rows) == 4 * len(ok)
        each = (20 * Decimal(100) + 10 * Decimal(100) + 8 * Decimal(1000) + 4 * Decimal(1000)) / M
        spent = sum(r["total_cost"] for r in rows)
        assert spent == each * len(ok)
        size = len(httpx.Request("POST", "http://x", json={**body, "messages": USER}).content)
        reservation = ((size + 3) // 4 * Decimal(100) + 20 * Decimal(1000)) / M
        assert spent <= Decimal("0.05") + (reservation - each)


def test_a_deployment_at_its_rpm_is_skipped_by_every_process(tmp_path):
    with fleet(tmp_path) as f:
        f.fake.always("primary", Fault.ok(text="p", usage=(5, 1)))
        f.fake.always("backup", Fault.ok(text="b", usage=(5, 1)))
        _same_minute()
        body = {"messages": USER, "models": ["acme/primary", "acme/backup"]}
        headers = {"Authorization": f"Bearer {MASTER_KEY}"}
        models = [
            post(f.urls[i % 3], COMPLETIONS, body, headers=headers, timeout=10).json()["model"]
            for i in range(9)
        ]
        assert models == ["primary"] * 5 + ["backup"] * 4
        assert len(f.fake.seen_for("primary")) == 5


def test_sigterm_mid_load_loses_no_ledger_row(tmp_path):
    with fleet(tmp_path) as f:
        f.fake.always("backup", Fault.ok(text="one two three four", chunks=4, chunk_delay=0.3))
        key = f.key(name="sigterm")

        async def load() -> list[tuple[int, str, bool] | BaseException]:
            async def later() -> None:
                await asyncio.sleep(0.4)
                f.procs[1].send_signal(signal.SIGTERM)

            async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=60)) as c:
                killer = asyncio.create_task(later())
                answers = await asyncio.gather(
                    *(_one(c, f, str(key["key"]), i) for i in range(60)), return_exceptions=True
                )
                await killer
            return answers

        answers = asyncio.run(load())
        # the drain (router.serving): open calls finish, stores flush, exit status 0
        assert f.procs[1].wait(20) == 0
        ok = [a for a in answers if isinstance(a, tuple) and a[0] == 200]
        assert len(ok) >= 45  # the other two processes' 40, and process 1's in flight
        on_1 = [a for a in answers[1::3] if isinstance(a, tuple)]
        assert len(on_1) >= 5 and all(a[0] == 200 and a[2] for a in on_1)  # finished in grace
        # requests arriving in the grace period are served as usual (tests/test_drain.py shows
        # the refusals after it): every one of them is billed once, below
        rows = ledger(f, str(key["id"]))
        ids = [r["request_id"] for r in rows]
        assert len(ids) == len(set(ids))
        assert {rid for _, rid, _ in ok} <= set(ids)


async def _one(client: httpx.AsyncClient, fleet: Fleet, key: str, i: int) -> tuple[int, str, bool]:
    """(status, request id, whether the stream arrived whole)."""
    await asyncio.sleep(0.01 * i)
    body = {"model": "acme/backup", "messages": USER, "stream": True}
    headers = {"Authorization": f"Bearer {key}"}
    url = fleet.urls[i % 3] + "/v1/chat/completions"
    async with client.stream("POST", url, json=body, headers=headers) as response:
        try:
            text = (await response.aread()).decode()
        except httpx.HTTPError:
            text = ""
        return response.status_code, response.headers["x-request-id"], "[DONE]" in text
