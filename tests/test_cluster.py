"""Scale-out over Redis: gateways sharing one `storage.redis_url` act as one fleet.

`Health.apply` is tested on its own; the rest runs real gateways on loopback against the real
Redis (ROUTER_TEST_REDIS, default redis://127.0.0.1:6379/0), each test under its own prefix.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from chaos import ACME, POLICY
from conftest import need
from fakes import FakeUpstream, Fault
from gateway_harness import Gateway, free_port, running_gateway, write_config
from kit import ask, post
from router.config import Circuit
from router.core.health import Health
from router.core.types import CircuitState
from test_keys import admin, cli, create

URL = os.environ.get("ROUTER_TEST_REDIS", "redis://127.0.0.1:6379/0")
CHAIN = ["acme/primary", "acme/backup"]
USER = [{"role": "user", "content": "hello"}]


# ---- Health.apply: adopting another process's state, without announcing it ------------------


class Clocks:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = 1_700_000_000.0

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


def health(clocks: Clocks, cooldown: float = 10.0) -> tuple[Health, list[tuple[str, CircuitState]]]:
    h = Health(
        Circuit(failure_threshold=2, cooldown=cooldown), lambda: clocks.mono, lambda: clocks.wall
    )
    announced: list[tuple[str, CircuitState]] = []
    h.on_change = lambda ref, state: announced.append((ref, state))
    return h, announced


def test_apply_open_cools_down_from_when_it_opened_elsewhere():
    clocks = Clocks()
    h, announced = health(clocks)
    assert h.apply("a/m", CircuitState.OPEN, clocks.wall - 4) is CircuitState.OPEN
    assert not h.allow("a/m")
    assert h.snapshot()[0].seconds_until_probe == 6.0
    clocks.advance(6)
    assert h.allow("a/m")  # the probe, claimed here
    assert announced == [("a/m", CircuitState.HALF_OPEN)]  # only this process's own change


def test_apply_half_open_holds_off_while_another_process_probes():
    clocks = Clocks()
    h, announced = health(clocks)
    h.apply("a/m", CircuitState.OPEN, clocks.wall)
    clocks.advance(10)
    h.apply("a/m", CircuitState.HALF_OPEN, clocks.wall)  # another process took the probe
    assert not h.allow("a/m")
    clocks.advance(10)  # it never reported back: probe from here
    assert h.allow("a/m")
    h.apply("a/m", CircuitState.HALF_OPEN, clocks.wall)  # our probe is out: it is not withdrawn
    assert h.snapshot()[0].state == "half_open"
    h.success("a/m")
    assert announced == [("a/m", CircuitState.HALF_OPEN), ("a/m", CircuitState.CLOSED)]


def test_apply_closed_forgets_failures_and_keeps_the_later_opening():
    clocks = Clocks()
    h, announced = health(clocks)
    h.failure("a/m")
    h.apply("a/m", CircuitState.CLOSED, clocks.wall)
    h.failure("a/m")  # one failure after the close: below the threshold of 2
    assert h.allow("a/m")
    h.failure("a/m")
    assert announced == [("a/m", CircuitState.OPEN)]
    h.apply("a/m", CircuitState.OPEN, clocks.wall - 8)  # an older opening elsewhere changes nothing
    assert h.snapshot()[0].seconds_until_probe == 10.0
    assert h.apply("b/m", CircuitState.CLOSED, clocks.wall) is CircuitState.CLOSED
    assert [v.target for v in h.snapshot()] == ["a/m"]  # no breaker made for a closed one


# ---- the fleet, against the real Redis ------------------------------------------------------


def _reachable(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh channel and hash for one test; the hash is deleted afterwards."""
    need(_reachable(URL), f"Redis not reachable at {URL}")
    name = f"router-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(URL)
    client.delete(f"{name}:circuits")
    client.close()


def fleet_config(folder: Path, prefix: str, url: str = URL, cooldown: float = 30.0) -> Path:
    """One routing.toml (so one SQLite key store) for every gateway of a test."""
    policy = POLICY.replace("cooldown = 0.5", f"cooldown = {cooldown}")
    config = write_config(folder, providers={"acme": ACME}, policy=policy)
    storage = f'[storage]\nredis_url = "{url}"\nredis_prefix = "{prefix}"\n'
    config.write_text(config.read_text().replace("[storage]\n", storage, 1))
    return config


@contextmanager
def fleet(
    folder: Path, prefix: str, n: int, **kw: float
) -> Iterator[tuple[FakeUpstream, list[Gateway]]]:
    with FakeUpstream("openai") as fake:
        config = fleet_config(folder, prefix, **kw)  # type: ignore[arg-type]
        env = {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url}
        with running_gateway(config, env) as a:
            if n == 1:
                yield fake, [a]
                return
            with running_gateway(config, env) as b:
                yield fake, [a, b]


def circuit(gw: Gateway, target: str = "acme/primary") -> dict[str, object] | None:
    circuits = httpx.get(f"{gw.url}/admin/health", headers=gw.headers).json()["circuits"]
    return next((c for c in circuits if c["target"] == target), None)


def soon(check: Callable[[], bool], within: float = 2.0) -> float:
    """Seconds until `check()` held; fails after `within`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, "did not happen in time"
        time.sleep(0.01)
    return time.monotonic() - started


def trip(fake: FakeUpstream, gw: Gateway) -> None:
    """Three failures of acme/primary in `gw`: its circuit opens."""
    fake.script("primary", *[Fault.status(500)] * 3)
    for _ in range(3):
        assert ask(gw, CHAIN, maxRetries=0).json()["model"] == "backup"
    assert circuit(gw)["state"] == "open"  # type: ignore[index]


def metric(gw: Gateway, name: str) -> float:
    text = httpx.get(f"{gw.url}/metrics").text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found[1]) if found else 0.0


@pytest.mark.redis
def test_a_circuit_opened_in_one_gateway_is_skipped_by_another(tmp_path, prefix):
    with fleet(tmp_path, prefix, 2) as (fake, (a, b)):
        trip(fake, a)
        soon(lambda: (circuit(b) or {}).get("state") == "open", within=1.0)
        skipped = ask(b, CHAIN, maxRetries=0)
        assert skipped.json()["model"] == "backup"
        assert skipped.headers["x-router-attempts"].startswith("acme/primary circuit_open")
        assert len(fake.seen_for("primary")) == 3  # B never sent it there
        assert metric(b, 'router_cluster_events_total{direction="received",kind="circuit"}') == 1
        assert metric(a, 'router_cluster_events_total{direction="sent",kind="circuit"}') == 1
        assert metric(b, 'router_circuit_state{model="primary",provider="acme"}') == 2


@pytest.mark.redis
def test_one_probe_for_the_fleet_and_its_success_closes_everywhere(tmp_path, prefix):
    with fleet(tmp_path, prefix, 2, cooldown=1.0) as (fake, (a, b)):
        trip(fake, a)
        soon(lambda: (circuit(b) or {}).get("state") == "open")
        time.sleep(1.05)  # the cool-down, everywhere
        fake.script("primary", Fault.ok(text="probe", delay=0.3))
        probe = threading.Thread(target=ask, args=(a, CHAIN), kwargs={"maxRetries": 0})
        probe.start()
        soon(lambda: ((circuit(b) or {}).get("seconds_until_probe") or 0) > 0.5)  # A probes
        held = ask(b, CHAIN, maxRetries=0)
        assert held.headers["x-router-attempts"].startswith("acme/primary circuit_open")
        probe.join()
        assert len(fake.seen_for("primary")) == 4  # the three failures and A's probe
        soon(lambda: (circuit(b) or {}).get("state") == "closed", within=1.0)
        assert ask(b, CHAIN, maxRetries=0).json()["model"] == "primary"


@pytest.mark.redis
def test_a_gateway_started_later_learns_the_open_circuits(tmp_path, prefix):
    with fleet(tmp_path, prefix, 1) as (fake, (a,)):
        trip(fake, a)
        time.sleep(0.1)  # A's announcement leaves in the background
        config = fleet_config(tmp_path, prefix)
        with running_gateway(config, {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url}) as c:
            assert circuit(c)["state"] == "open"  # type: ignore[index]  # known before serving
            late = ask(c, CHAIN, maxRetries=0)
        assert late.headers["x-router-attempts"].startswith("acme/primary circuit_open")
        assert len(fake.seen_for("primary")) == 3


def chat_status(gw: Gateway, key: object, model: str = "demo/echo") -> int:
    body = {"model": model, "messages": USER}
    headers = {"Authorization": f"Bearer {key}"}
    return post(gw, "/v1/chat/completions", body, headers=headers).status_code


@pytest.mark.redis
def test_key_changes_through_one_gateway_apply_in_another_at_once(tmp_path, prefix):
    with fleet(tmp_path, prefix, 2) as (_, (a, b)):
        made = create(a, models=["demo/*"])
        assert chat_status(b, made["key"]) == 200  # B now holds the key in its 5 s cache
        narrowed = admin(a, "PATCH", f"/admin/keys/{made['id']}", json={"models": ["acme/*"]})
        assert narrowed.status_code == 200
        assert soon(lambda: chat_status(b, made["key"]) == 404, within=1.0) < 1.0
        assert admin(a, "DELETE", f"/admin/keys/{made['id']}").status_code == 200
        assert soon(lambda: chat_status(b, made["key"]) == 401, within=1.0) < 1.0


@pytest.mark.redis
def test_the_cli_tells_running_gateways_at_once(tmp_path, prefix):
    with fleet(tmp_path, prefix, 1) as (_, (a,)):
        made = create(a, models=["demo/*"])
        assert chat_status(a, made["key"]) == 200
        done = cli(tmp_path / "routing.toml", "revoke", str(made["id"]))
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert soon(lambda: chat_status(a, made["key"]) == 401, within=1.0) < 1.0


@pytest.mark.redis
def test_unreachable_redis_never_stops_serving(tmp_path, prefix):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    with FakeUpstream("openai") as fake:
        config = fleet_config(tmp_path, prefix, url=dead)
        with running_gateway(config, {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url}) as gw:
            assert time.monotonic() - started < 2.0  # start-up does not wait out the outage
            assert ask(gw, CHAIN).json()["model"] == "primary"
            trip(fake, gw)  # the circuit works locally, its announcement fails quietly
            assert (
                ask(gw, CHAIN, maxRetries=0)
                .headers["x-router-attempts"]
                .startswith("acme/primary circuit_open")
            )
            soon(lambda: metric(gw, 'router_cluster_errors_total{operation="publish"}') >= 1)
            assert metric(gw, 'router_cluster_errors_total{operation="subscribe"}') >= 1
            assert metric(gw, "router_cluster_connected") == 0


class Relay:
    """A TCP relay to Redis that can be cut (every connection dropped, new ones refused)
    and restored on the same port: an outage for one gateway only."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}{parts.path}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> Relay:
        self.thread.start()
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def _run(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(5)  # type: ignore[arg-type]

    def up(self) -> None:
        self._run(self._up())

    def down(self) -> None:
        self._run(self._down())

    async def _up(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def _down(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}
        await asyncio.gather(
            _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


@pytest.mark.redis
def test_after_an_outage_a_gateway_reconnects_and_learns_what_it_missed(tmp_path, prefix):
    connected = "router_cluster_connected"
    with Relay(URL) as relay, FakeUpstream("openai") as fake:
        env = {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url}
        config_a = fleet_config(tmp_path / "a", prefix)
        config_b = fleet_config(tmp_path / "b", prefix, url=relay.url)
        with running_gateway(config_a, env) as a, running_gateway(config_b, env) as b:
            assert metric(b, connected) == 1
            relay.down()
            soon(lambda: metric(b, connected) == 0)
            assert ask(b, CHAIN).json()["model"] == "primary"  # serving goes on
            trip(fake, a)  # while B hears nothing
            time.sleep(0.2)
            assert circuit(b) is None
            relay.up()
            soon(lambda: (circuit(b) or {}).get("state") == "open", within=5.0)
            assert metric(b, connected) == 1
            assert metric(b, 'router_cluster_errors_total{operation="subscribe"}') >= 1
            trip_b = ask(b, CHAIN, maxRetries=0)
            assert trip_b.headers["x-router-attempts"].startswith("acme/primary circuit_open")
