"""Strategies over the primary `models`: the pure ordering, then end to end over loopback."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest

from chaos import ACME as CHAOS_ACME
from chaos import POLICY, chaos
from fakes import FakeUpstream, Fault
from gateway_harness import Gateway, running_gateway, write_config
from kit import ask, post
from router.config import load_settings
from router.core.catalog import Catalog
from router.core.stats import Latency, Snapshot, Stats
from router.core.strategies import EXPLORE, Estimate, Unit, order, single

ACME = """
protocol = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "ACME_API_KEY"
[models.dear.prices]
input = "3.00"
output = "6.00"
[models.cheap.prices]
input = "0.10"
output = "0.20"
[models.mid.prices]
input = "1.00"
output = "0.10"
[models.free]
"""

EMPTY = Snapshot({}, {})
NEVER_EXPLORE = 0.99  # a random draw above EXPLORE: `fastest` does not explore


@pytest.fixture
def units(tmp_path):
    settings = load_settings(write_config(tmp_path, providers={"acme": ACME}), env={})
    catalog = Catalog(settings, {"acme": "k"})
    return {
        m: single(catalog.expand(f"acme/{m}", "model")[0]) for m in ("dear", "cheap", "mid", "free")
    }


def refs(targets):
    return [t.model for t in targets]


def test_ordered_keeps_the_order(units):
    asked = [units["dear"], units["cheap"], units["free"]]
    assert refs(order("ordered", asked, EMPTY, Estimate(10, 10), {}, random.random)) == [
        "dear",
        "cheap",
        "free",
    ]


@pytest.mark.parametrize(
    ("estimate", "expected"),
    [
        # 1000 in, 10 out: mid 1000*1 + 10*0.1 = 1001 > cheap 100 + 2 = 102
        (Estimate(1000, 10), ["cheap", "mid", "dear", "free"]),
        # 10 in, 10000 out: mid 10 + 1000 = 1010 < cheap 1 + 2000 = 2001
        (Estimate(10, 10000), ["mid", "cheap", "dear", "free"]),
    ],
)
def test_cheapest_prices_this_request_and_puts_unpriced_last(units, estimate, expected):
    asked = [units["free"], units["dear"], units["cheap"], units["mid"]]
    assert refs(order("cheapest", asked, EMPTY, estimate, {}, random.random)) == expected


def test_fastest_prefers_learned_speed_and_tries_the_unmeasured_first(units):
    asked = [units["dear"], units["cheap"], units["mid"]]
    latency = {
        "acme/dear": Latency(0.5, None, 3),
        "acme/cheap": Latency(0.1, 100.0, 3),  # 0.1 + 10/100 = 0.2 s
    }
    got = order("fastest", asked, Snapshot(latency, {}), Estimate(5, 10), {}, lambda: NEVER_EXPLORE)
    assert refs(got) == ["mid", "cheap", "dear"]
    latency["acme/mid"] = Latency(0.15, 20.0, 1)  # 0.15 + 10/20 = 0.65 s
    got = order("fastest", asked, Snapshot(latency, {}), Estimate(5, 10), {}, lambda: NEVER_EXPLORE)
    assert refs(got) == ["cheap", "dear", "mid"]


def test_fastest_explores_a_random_unit_first_sometimes(units):
    asked = [units["dear"], units["cheap"]]
    latency = {"acme/dear": Latency(0.5, None, 3), "acme/cheap": Latency(0.1, None, 3)}
    draws = iter([EXPLORE / 2, 0.0])  # explore; the unit at index 0 of the ranking (cheap)...
    got = order("fastest", asked, Snapshot(latency, {}), Estimate(1, 1), {}, lambda: next(draws))
    assert refs(got) == ["cheap", "dear"]
    draws = iter([EXPLORE / 2, 0.75])  # ...or index 1 (dear) goes first
    got = order("fastest", asked, Snapshot(latency, {}), Estimate(1, 1), {}, lambda: next(draws))
    assert refs(got) == ["dear", "cheap"]


def test_least_busy_counts_in_flight(units):
    asked = [units["dear"], units["cheap"], units["mid"]]
    snap = Snapshot({}, {"acme/dear": 2, "acme/cheap": 1})
    assert refs(order("least_busy", asked, snap, Estimate(1, 1), {}, random.random)) == [
        "mid",
        "cheap",
        "dear",
    ]


def test_weighted_splits_1000_calls_by_weight(units):
    asked = [units["dear"], units["cheap"], units["mid"]]
    weights = {"acme/dear": 6.0, "acme/cheap": 3.0, "acme/mid": 1.0}
    rand = random.Random(16).random
    firsts = Counter(
        order("weighted", asked, EMPTY, Estimate(1, 1), weights, rand)[0].model for _ in range(1000)
    )
    assert abs(firsts["dear"] / 1000 - 0.6) < 0.03
    assert abs(firsts["cheap"] / 1000 - 0.3) < 0.03
    assert abs(firsts["mid"] / 1000 - 0.1) < 0.03


def test_a_units_deployments_spread_by_weight(units):
    group = Unit("m", (units["dear"].targets[0], units["cheap"].targets[0]), (1.0, 3.0))
    rand = random.Random(3).random
    firsts = Counter(
        order("ordered", [group], EMPTY, Estimate(1, 1), {}, rand)[0].model for _ in range(1000)
    )
    assert abs(firsts["cheap"] / 1000 - 0.75) < 0.03
    assert firsts["dear"] + firsts["cheap"] == 1000


def test_stats_learn_from_reports_and_count_in_flight():
    stats = Stats(alpha=0.5)
    stats.learn("a/m", 1.0, None)
    stats.learn("a/m", 0.0, 50.0)
    stats.learn("a/m", 0.0, 100.0)
    assert stats.latency["a/m"] == Latency(0.25, 75.0, 3)
    assert stats.percentile("a/m", 0.99) == 1.0
    stats.started("a/m")
    stats.started("a/m")
    stats.ended("a/m")
    assert stats.snapshot().inflight == {"a/m": 1}
    stats.ended("a/m")
    assert stats.snapshot().inflight == {}


# ---- end to end ------------------------------------------------------------------------------


def test_cheapest_by_header_and_field_with_the_strategy_in_the_answer(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        models = ["acme/primary", "acme/big", "acme/backup"]
        r = post(
            gw,
            "/api/v1/completions",
            {"messages": [{"role": "user", "content": "hi"}], "models": models},
            headers=gw.headers | {"x-router-strategy": "cheapest"},
        )
        assert r.status_code == 200
        assert r.headers["x-router-strategy"] == "cheapest"
        assert [s.model for s in fake.seen] == ["backup"]
        r = ask(gw, models, stream=True, strategy="cheapest")
        assert r.headers["x-router-strategy"] == "cheapest"
        r = post(
            gw,
            "/v1/chat/completions",
            {
                "messages": [{"role": "user", "content": "hi"}],
                "models": models,
                "strategy": "cheapest",
            },
        )
        assert r.headers["x-router-strategy"] == "cheapest"
        assert [s.model for s in fake.seen] == ["backup", "backup", "backup"]
        assert ask(gw, models).headers["x-router-strategy"] == "ordered"
        assert fake.seen[-1].model == "primary"


def test_a_bad_strategy_is_a_400_naming_where(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        r = ask(gw, ["acme/primary"], strategy="random")
        assert r.status_code == 400
        assert r.json()["error"] == {
            "code": "invalid_value",
            "message": "strategy must be one of: ordered, cheapest, fastest, least_busy, weighted.",
            "field": "strategy",
        }
        r = post(
            gw,
            "/api/v1/completions",
            {"messages": [{"role": "user", "content": "hi"}], "models": ["acme/primary"]},
            headers=gw.headers | {"x-router-strategy": "nope"},
        )
        assert r.status_code == 400
        assert r.json()["error"] == {
            "code": "invalid_value",
            "message": "x-router-strategy must be one of: ordered, cheapest, fastest, least_busy,"
            " weighted.",
            "field": "x-router-strategy",
        }
        assert fake.seen == []


ROUTED = """
[aliases]
duo = ["acme/primary", "acme/backup"]
[routes.duo]
strategy = "cheapest"
"""


def test_an_alias_route_sets_its_strategy(tmp_path):
    with chaos(tmp_path, ROUTED) as (fake, gw):
        reports = []
        gw.runtime.metrics.finished = reports.append  # type: ignore[method-assign]
        r = ask(gw, ["duo"])
        assert r.headers["x-router-strategy"] == "cheapest"
        assert [s.model for s in fake.seen] == ["backup"]
        r = ask(gw, ["duo"], strategy="ordered")
        assert [s.model for s in fake.seen] == ["backup", "primary"]
        fake.always("*", Fault.status(400))
        assert ask(gw, ["duo"]).status_code == 400
        assert [(r.outcome, r.strategy) for r in reports] == [
            ("ok", "cheapest"),
            ("ok", "ordered"),
            ("bad_request", "cheapest"),
        ]


def test_fastest_moves_to_the_faster_target_and_back_when_it_recovers(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        gw.runtime.chooser.rand = random.Random(5).random
        models = ["acme/primary", "acme/backup"]
        fake.always("primary", Fault.ok(delay=0.12))
        served = [ask(gw, models, strategy="fastest").status_code for _ in range(20)]
        assert served == [200] * 20
        first = Counter(s.model for s in fake.seen[-10:])
        assert first["backup"] >= 8  # learned: backup is faster (explorations aside)
        fake.reset()
        fake.always("backup", Fault.ok(delay=0.12))
        for _ in range(60):
            ask(gw, models, strategy="fastest")
        last = Counter(s.model for s in fake.seen[-10:])
        assert last["primary"] >= 8  # recovered: traffic came back


def test_least_busy_spreads_concurrent_calls(tmp_path):
    policy = POLICY.replace("response = 0.5", "response = 5.0")
    with FakeUpstream("openai") as fake:
        config = write_config(tmp_path, providers={"acme": CHAOS_ACME}, policy=policy)
        env = {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url}
        with running_gateway(config, env) as gw:
            _spread(fake, gw)


def _spread(fake: FakeUpstream, gw: Gateway) -> None:
    fake.always("*", Fault.ok(delay=1.5))  # every call still in flight when the last comes
    codes: list[int] = []
    ready = threading.Barrier(6)

    def one() -> None:
        ready.wait()
        codes.append(ask(gw, ["acme/primary", "acme/backup"], strategy="least_busy").status_code)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 6
    assert Counter(s.model for s in fake.seen) == {"primary": 3, "backup": 3}
    assert max(s.t for s in fake.seen) - min(s.t for s in fake.seen) < 1.5  # all overlapped
