"""Timeouts that learn: a stall detected from what is normal for the deployment, a first-token
timeout from its observed TTFT, circuit cool-downs that start short and grow."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import httpx
import pytest
import redis

from chaos import ACME
from conftest import need
from fakes import FakeUpstream, Fault
from gateway_harness import running_gateway, write_config
from kit import ask, attempts, payloads, spent, streamed_text
from router.config import Circuit, Tuned
from router.core.health import Health
from router.core.stats import GAPS, Stats
from test_cluster import URL, _reachable

POLICY = """
[retry]
max_retries = 0
backoff_initial = 0.05

[timeouts]
request = 60.0
connect = 1.0
response = 30.0
first_token = 30.0
stream_idle = 30.0

[circuit]
failure_threshold = 3
failure_rate = 1.0
window = 50
cooldown = 0.5
cooldown_max = 4.0

[learned]
min_samples = 20
first_token_floor = 1.0
stall_floor = 1.0
"""
WORDS = " ".join(f"w{i}" for i in range(40))


def gateway(tmp_path, fake):
    config = write_config(tmp_path, providers={"acme": ACME}, policy=POLICY)
    return running_gateway(config, {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url})


def reported(gw) -> list:
    """The report of every call from now on, passed on to the metrics as before."""
    reports: list = []
    metrics = gw.runtime.metrics
    finished = metrics.finished

    def keep(report) -> None:
        reports.append(report)
        finished(report)

    metrics.finished = keep
    return reports


def test_a_stall_is_detected_from_learned_gaps_and_rescued_elsewhere(tmp_path):
    with FakeUpstream("openai") as fake, gateway(tmp_path, fake) as gw:
        fake.script("primary", Fault.ok(WORDS, chunk_delay=0.005))
        assert streamed_text(payloads(ask(gw, ["acme/primary"], stream=True))) == WORDS
        gateway_ = gw.runtime.chat.gateway
        primary = gw.runtime.catalog.target("acme/primary")
        assert gateway_.learned.stall(primary) == 1.0  # 8 x p99 gap (~5 ms), at the floor
        fake.script("primary", Fault.stall(20, reply=Fault.ok(WORDS)))
        fake.script("backup", Fault.ok(WORDS))
        reports = reported(gw)
        r = ask(gw, ["acme/primary", "acme/backup"], stream=True)
        assert streamed_text(payloads(r)) == WORDS  # rescued: the backup regenerated the same
        (report,) = reports
        stalled, rescued = report.attempts
        assert (stalled.outcome, stalled.reason) == (
            "stream_stalled",
            "the stream stalled: no data for 1.0s (learned limit)",  # not the 30 s stream_idle
        )
        # estimated: "hello" (6) and the 20 words sent, 69 characters (18), at $1 / $2 per 1M
        assert (stalled.tokens, stalled.cost) == (24, Decimal("0.000042"))
        # the watchdog runs on the real clock: the gateway's own figure is wall time, the
        # learned second at least, and far from the 30 s stream_idle
        assert 1000 <= stalled.ms < 3000
        assert (rescued.ref, rescued.outcome) == ("acme/backup", "ok")
        assert [s.model for s in fake.seen] == ["primary", "primary", "backup"]
        learned = httpx.get(f"{gw.url}/admin/health", headers=gw.headers).json()["learned"]
        views = {v["target"]: (v["stall"], v["first_token"]) for v in learned}
        assert views["acme/primary"] == (1.0, 30.0)  # 2 TTFTs: below min_samples, the ceiling
        scraped = httpx.get(f"{gw.url}/metrics").text
        gauge = 'router_learned_timeout_seconds{kind="stall",model="primary",provider="acme"}'
        assert f"{gauge} 1.0" in scraped


def test_a_late_first_token_fails_over_at_the_learned_timeout(tmp_path):
    with FakeUpstream("openai") as fake, gateway(tmp_path, fake) as gw:
        for _ in range(20):
            assert ask(gw, ["acme/primary"], stream=True).status_code == 200
        primary = gw.runtime.catalog.target("acme/primary")
        assert gw.runtime.chat.gateway.learned.first_token(primary) == 1.0  # 4 x p99, floor
        fake.script("primary", Fault.slow_first_token(20.0))
        r = ask(gw, ["acme/primary", "acme/backup"], stream=True)
        assert r.status_code == 200
        assert attempts(r) == [
            ("acme/primary", "first_token_timeout", "-"),
            ("acme/backup", "ok", "200"),
        ]
        # the timer runs on the real clock: the gateway's own figure for the attempt is wall
        # time, the learned second at least; not the 20 s delay, not the 30 s ceiling
        assert 1000 <= spent(r)[0] < 2500


def test_a_recovered_target_gets_traffic_back_within_seconds(tmp_path):
    with FakeUpstream("openai") as fake, gateway(tmp_path, fake) as gw:
        fake.always("primary", Fault.status(503))
        down = time.monotonic()
        while time.monotonic() - down < 3.0:  # down for 3 s under steady traffic
            assert ask(gw, ["acme/primary", "acme/backup"], stream=False).status_code == 200
            time.sleep(0.05)
        fake.reset()  # healthy again
        back = time.monotonic()
        while ask(gw, ["acme/primary", "acme/backup"]).json()["model"] != "primary":
            time.sleep(0.05)
            assert time.monotonic() - back < 4.5  # the longest cool-down (4 s), and a bit
        (view,) = [
            v
            for v in httpx.get(f"{gw.url}/admin/health", headers=gw.headers).json()["circuits"]
            if v["target"] == "acme/primary"
        ]
        assert (view["state"], view["cooldown"]) == ("closed", 0.5)  # short again
        scraped = httpx.get(f"{gw.url}/metrics").text
        assert 'router_circuit_cooldown_seconds{model="primary",provider="acme"} 0.5' in scraped


def test_cool_downs_double_on_failed_probes_up_to_the_cap_and_reset_on_success():
    now = [0.0]
    health = Health(
        Circuit(failure_threshold=1, cooldown=2.0, cooldown_max=10.0),
        clock=lambda: now[0],
        tuned={"x/slow": Tuned(cooldown=5.0)},
    )
    health.failure("a/m")
    waits = []
    for _ in range(4):
        cooldown, opened = health.snapshot()[0].cooldown, now[0]
        now[0] = opened + cooldown - 0.5
        assert not health.allow("a/m")
        now[0] = opened + cooldown
        assert health.allow("a/m")  # the probe goes through as soon as it is due
        assert not health.allow("a/m")  # one probe only
        health.failure("a/m")
        waits.append(cooldown)
    assert waits == [2.0, 4.0, 8.0, 10.0]
    assert health.snapshot()[0].cooldown == 10.0
    now[0] += 10.0
    assert health.allow("a/m")
    health.success("a/m")
    assert (health.snapshot()[0].state, health.snapshot()[0].cooldown) == ("closed", 2.0)
    health.failure("x/slow")
    assert [v.cooldown for v in health.snapshot()] == [2.0, 5.0]  # a per-deployment value


@pytest.mark.redis
def test_learned_speed_is_shared_between_gateways_through_redis(tmp_path):
    need(_reachable(URL), f"Redis not reachable at {URL}")
    prefix = f"router-test-{uuid.uuid4().hex[:12]}"
    storage = f'[storage]\nredis_url = "{URL}"\nredis_prefix = "{prefix}"\n'
    try:
        with FakeUpstream("openai") as fake:
            config = write_config(tmp_path, providers={"acme": ACME}, policy=POLICY)
            config.write_text(config.read_text().replace("[storage]\n", storage, 1))
            env = {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url}
            with running_gateway(config, env) as one, running_gateway(config, env) as two:
                fake.always("primary", Fault.ok(WORDS, chunk_delay=0.002))
                for _ in range(20):
                    assert ask(one, ["acme/primary"], stream=True).status_code == 200
                learned = two.runtime.stats
                deadline = time.monotonic() + 5
                while len(learned.recent.get("acme/primary", ())) < 20:
                    assert time.monotonic() < deadline, "nothing arrived from the other gateway"
                    time.sleep(0.1)
                mine = one.runtime.stats
                assert list(learned.recent["acme/primary"]) == list(mine.recent["acme/primary"])
                assert len(learned.gaps["acme/primary"]) == len(mine.gaps["acme/primary"])
                primary = two.runtime.catalog.target("acme/primary")
                assert two.runtime.chat.gateway.learned.first_token(primary) == 1.0  # floor
                assert len(mine.recent["acme/primary"]) == 20  # its own samples not echoed back
    finally:
        client = redis.Redis.from_url(URL)
        for key in client.keys(f"{prefix}:*"):
            client.delete(key)
        client.close()


def test_the_stall_percentile_is_sorted_again_after_two_percent_of_the_window():
    stats = Stats()
    for _ in range(GAPS):
        stats.gap("a/m", 0.01)
    assert stats.gap_percentile("a/m", 0.99) == 0.01
    for _ in range(GAPS // 50 - 1):  # 9 slow gaps: the p99 of the window is now 5 s ...
        stats.gap("a/m", 5.0)
    assert stats.gap_percentile("a/m", 0.99) == 0.01  # ... seen once 10 came in
    stats.gap("a/m", 5.0)
    assert stats.gap_percentile("a/m", 0.99) == 5.0
    for gap in (0.1, 0.2, 0.3):  # a window under 50: every sample counts at once
        stats.gap("b/m", gap)
        assert stats.gap_percentile("b/m", 0.99) == gap
    assert stats.gap_percentile("b/m", 0.99, least=4) is None
