"""Hedged requests: a slow first target is raced by the next one; the first token wins and
the loser's connection is closed, both in the trail."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import msgspec

from chaos import ACME, POLICY
from fakes import FakeUpstream, Fault
from gateway_harness import running_gateway, write_config
from kit import payloads, post
from router.config import load_settings
from router.core.call import RouteAsk
from router.core.catalog import Catalog
from router.core.routes import Chooser
from router.core.stats import Stats
from router.core.types import Asked

SLOW_OK = POLICY.replace("first_token = 0.4", "first_token = 5.0").replace(
    "response = 0.5", "response = 5.0"
)
MODELS = ["acme/primary", "acme/backup"]


def gateway(tmp_path: Path, fake: FakeUpstream, extra: str = ""):
    config = write_config(tmp_path, extra, providers={"acme": ACME}, policy=SLOW_OK)
    return running_gateway(config, {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url})


def body(stream: bool) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": "hi"}], "models": MODELS, "stream": stream}


def wait_for(check, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


def entries(trail: str) -> list[str]:
    """The trail's entries without their times (`ms`), which vary."""
    return [" ".join(e.split(" ")[:3] + e.split(" ")[4:]) for e in trail.split(", ")]


def test_a_streamed_hedge_wins_with_the_first_token_and_closes_the_primary(tmp_path):
    with FakeUpstream("openai") as fake, gateway(tmp_path, fake) as gw:
        fake.script("primary", Fault.slow_first_token(2.0))
        fake.script("backup", Fault.ok("Olá mundo", chunk_delay=0.05))
        headers = gw.headers | {"x-router-hedge-after": "200"}
        started = time.monotonic()
        with httpx.stream(
            "POST", f"{gw.url}/api/v1/completions", json=body(True), headers=headers, timeout=10
        ) as r:
            lines = r.iter_lines()
            first = next(line for line in lines if line.startswith('data: {"type":"text"'))
            ttft = time.monotonic() - started
            rest = list(lines)
        assert first == 'data: {"type":"text","text":"Olá"}'
        # The hedge timer is asyncio's, on the real clock (no injected sleep reaches it), and
        # starting after its delay is the behaviour: the client's clock, started before the
        # gateway's, gives the one lower bound that always holds (hedge_after), and the upper
        # one says the 2 s primary was not waited for.
        assert 0.2 <= ttft < 1.0
        assert [s.model for s in fake.seen] == ["primary", "backup"]
        assert entries(r.headers["x-router-attempts"]) == [
            "acme/primary cancelled -",
            "acme/backup ok 200 hedged",
        ]
        assert wait_for(lambda: fake.disconnected == ["primary"])
        evs = payloads("\n".join(rest) + "\n")  # the lines after the first token, re-joined
        final = next(e for e in evs if isinstance(e, dict) and e["type"] == "response")
        assert final["provider"] == "acme" and final["model"] == "backup"


def test_a_plain_hedge_bills_the_winner_and_says_the_loser_cost_is_unknown(tmp_path):
    reports = []
    with FakeUpstream("openai") as fake, gateway(tmp_path, fake) as gw:
        gw.runtime.metrics.finished = reports.append  # type: ignore[method-assign]
        fake.script("primary", Fault.slow_first_token(2.0))
        fake.script("backup", Fault.ok("hi", usage=(10, 4)))
        headers = gw.headers | {"x-router-hedge-after": "200"}
        started = time.monotonic()
        r = post(gw, "/api/v1/completions", body(False), headers=headers)
        took = time.monotonic() - started
        assert r.status_code == 200
        assert 0.2 <= took < 1.0  # the hedge's real-clock delay, as in the streamed case above
        assert [s.model for s in fake.seen] == ["primary", "backup"]
        assert r.json()["model"] == "backup"
        assert wait_for(lambda: fake.disconnected == ["primary"])
        (report,) = reports
        primary, backup = report.attempts
        assert (primary.outcome, primary.hedged, primary.cost, primary.tokens) == (
            "cancelled",
            msgspec.UNSET,
            None,
            None,
        )
        assert primary.reason == "cancelled: the other attempt answered first; cost unknown"
        assert (backup.outcome, backup.hedged) == ("ok", True)
        assert str(report.costs.total_tokens_cost) == "0.000009"  # 10 x 0.50 + 4 x 1.00 per 1M


def test_no_hedge_when_the_first_answers_in_time_or_when_off(tmp_path):
    with FakeUpstream("openai") as fake, gateway(tmp_path, fake) as gw:
        headers = gw.headers | {"x-router-hedge-after": "500"}
        r = post(gw, "/api/v1/completions", body(True), headers=headers)
        assert r.status_code == 200
        fake.script("primary", Fault.slow_first_token(0.6))
        r = post(gw, "/api/v1/completions", body(True))
        assert entries(r.headers["x-router-attempts"]) == ["acme/primary ok 200"]
        assert [s.model for s in fake.seen] == ["primary"] * 2
        assert fake.disconnected == []


def test_hedge_after_in_ms_or_a_percentile_of_what_was_observed(tmp_path):
    extra = '[aliases]\nduo = ["acme/primary", "acme/backup"]\n[routes.duo]\nhedge_after = 150\n'
    settings = load_settings(write_config(tmp_path, extra, providers={"acme": ACME}), env={})
    stats = Stats()
    chooser = Chooser(settings, stats)
    target = Catalog(settings, {"acme": "k"}).expand("acme/primary", "model")[0]
    duo = [Asked("duo", "models[0]")]
    assert chooser.hedge_after(RouteAsk(), duo, target) == 0.15
    assert chooser.hedge_after(RouteAsk(hedge_after="40"), duo, target) == 0.04
    assert chooser.hedge_after(RouteAsk(), [Asked("acme/primary", "model")], target) is None
    assert chooser.hedge_after(RouteAsk(hedge_after="p95"), duo, target) is None  # not seen yet
    for ttft in (0.1, 0.2, 0.3, 0.4):
        stats.learn("acme/primary", ttft, None)
    assert chooser.hedge_after(RouteAsk(hedge_after="p50"), duo, target) == 0.3
    assert chooser.hedge_after(RouteAsk(hedge_after="p99"), duo, target) == 0.4


def test_a_route_hedges_on_its_observed_ttft_percentile(tmp_path):
    extra = '[aliases]\nduo = ["acme/primary", "acme/backup"]\n[routes.duo]\nhedge_after = "p50"\n'
    with FakeUpstream("openai") as fake, gateway(tmp_path, fake, extra) as gw:
        duo = {"messages": [{"role": "user", "content": "hi"}], "models": ["duo"]}
        for _ in range(3):
            fake.script("primary", Fault.ok(delay=0.1))
            assert post(gw, "/api/v1/completions", duo).status_code == 200
        fake.script("primary", Fault.slow_first_token(2.0))
        r = post(gw, "/api/v1/completions", duo)
        assert r.json()["model"] == "backup"
        assert entries(r.headers["x-router-attempts"])[-1] == "acme/backup ok 200 hedged"


def test_a_bad_hedge_after_is_a_400(tmp_path):
    with FakeUpstream("openai") as fake, gateway(tmp_path, fake) as gw:
        headers = gw.headers | {"x-router-hedge-after": "soon"}
        r = post(gw, "/api/v1/completions", body(False), headers=headers)
        assert r.status_code == 400
        assert r.json()["error"] == {
            "code": "invalid_value",
            "message": "x-router-hedge-after must be milliseconds or a percentile like p95.",
            "field": "x-router-hedge-after",
        }
