"""Budgets and rate limits in one gateway (in-process counters): refusals in each surface's
shape that never reach an upstream, the x-ratelimit-* headers, deployments skipped at their
limit, zero-priced models that never trip a budget, and the key API's checks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import msgspec
import pytest

from chaos import ACME, POLICY
from conftest import need
from fakes import FakeUpstream, Fault
from gateway_harness import Gateway, running_gateway, write_config
from kit import ask, attempts, post
from router.config import load_settings
from router.errors import ConfigError
from router.runtime import Runtime
from test_cluster import URL as REDIS
from test_cluster import Relay, _reachable, metric
from test_keys import admin, create

USER = [{"role": "user", "content": "hi"}]


def chat(gw: Gateway, key: str, model: str = "acme/primary", **extra: object) -> httpx.Response:
    body = {"model": model, "messages": USER, **extra}
    headers = {"Authorization": f"Bearer {key}"}
    return post(gw, "/v1/chat/completions", body, headers=headers, timeout=10)


def iron(gw: Gateway, key: str, models: list[str]) -> httpx.Response:
    body = {"messages": USER, "models": models}
    headers = {"Authorization": f"Bearer {key}"}
    return post(gw, "/api/v1/completions", body, headers=headers, timeout=10)


@pytest.fixture
def acme(tmp_path: Path) -> Iterator[tuple[FakeUpstream, Gateway]]:
    extra = '\n[limits.deployments]\n"acme/primary" = { rpm = 2 }\n'
    with FakeUpstream("openai") as fake:
        config = write_config(tmp_path, extra, providers={"acme": ACME}, policy=POLICY)
        env = {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url}
        with running_gateway(config, env) as gw:
            fake.always("primary", Fault.ok(text="p", usage=(10, 5)))
            fake.always("backup", Fault.ok(text="b", usage=(10, 5)))
            yield fake, gw


def test_rpm_refuses_with_retry_after_and_headers_on_every_answer(acme):
    fake, gw = acme
    key = create(gw, name="a", limits={"rpm": 3, "tpm": 100_000})["key"]
    answers = [chat(gw, key, "acme/backup") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    first, refused = answers[0], answers[3]
    assert first.headers["x-ratelimit-limit-requests"] == "3"
    assert first.headers["x-ratelimit-remaining-requests"] == "2"
    assert first.headers["x-ratelimit-limit-tokens"] == "100000"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert answers[2].headers["x-ratelimit-remaining-requests"] == "0"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert len(fake.seen_for("backup")) == 3  # the refused one never went upstream


def test_a_budget_refuses_in_each_surfaces_shape_and_zero_priced_models_pass(acme):
    fake, gw = acme
    # (prompt + the default 4096 maximum) x price is far above a budget of 1/100 cent
    key = create(gw, name="b", budget={"max_budget": "0.0001", "duration": "1d"})["key"]
    refused = chat(gw, key, "acme/backup")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "budget_exceeded"
    own = iron(gw, key, ["acme/backup"])
    assert own.status_code == 429
    assert own.json()["error"]["code"] == "budget_exceeded"
    assert own.json()["error"] == {  # the Iron Labs shape
        "code": "budget_exceeded",
        "message": "The key budget is exhausted for this period.",
        "field": None,
    }
    assert fake.seen_for("backup") == []
    assert chat(gw, key, "demo/echo").status_code == 200  # zero-priced: never trips
    small = chat(gw, key, "acme/backup", max_tokens=1)  # a reservation that fits
    assert small.status_code == 200


def test_a_deployment_at_its_rpm_is_skipped_and_the_next_target_answers(acme):
    fake, gw = acme
    chain = ["acme/primary", "acme/backup"]
    models = [ask(gw, chain).json()["model"] for _ in range(3)]
    assert models == ["primary", "primary", "backup"]
    third = ask(gw, chain)
    assert attempts(third) == [("acme/primary", "rate_limited", "-"), ("acme/backup", "ok", "200")]
    assert len(fake.seen_for("primary")) == 2


def test_a_concurrency_limit_rejects_instead_of_queueing(acme):
    fake, gw = acme
    key = create(gw, name="c", limits={"concurrent": 1})["key"]
    fake.script("backup", Fault.ok(text="slow", delay=0.3))
    results: list[int] = []
    slow = threading.Thread(target=lambda: results.append(chat(gw, key, "acme/backup").status_code))
    slow.start()
    time.sleep(0.1)
    refused = chat(gw, key, "acme/backup")
    slow.join()
    assert (results, refused.status_code, refused.headers["retry-after"]) == ([200], 429, "1")
    assert chat(gw, key, "acme/backup").status_code == 200  # released when it ended


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"budget": {"max_budget": "-1"}}, "budget.max_budget"),
        ({"budget": {"max_budget": "5", "duration": "fortnight"}}, "budget.duration"),
        ({"limits": {"rpm": "fast"}}, "limits.rpm"),
        ({"limits": {"tpm": 0}}, "limits.tpm"),
        ({"budget": {"max_budget": "5", "every": "1d"}}, "budget.every"),
    ],
)
def test_bad_limits_in_the_key_api_are_400_naming_the_field(acme, body, field):
    _, gw = acme
    made = admin(gw, "POST", "/admin/keys", json={"name": "x", **body})
    assert made.status_code == 400, made.text
    assert made.json()["error"]["field"] == field
    key = create(gw, name="y")
    patched = admin(gw, "PATCH", f"/admin/keys/{key['id']}", json=body)
    assert (patched.status_code, patched.json()["error"]["field"]) == (400, field)


def test_a_key_shows_its_team_limits_spend_and_remaining_budget(acme):
    _, gw = acme
    key = create(gw, name="d", team="search", budget={"max_budget": "1", "duration": "30d"})
    assert key["team"] == "search" and key["budget"]["max_budget"] == 1
    assert chat(gw, str(key["key"]), "acme/backup", max_tokens=5).status_code == 200
    patched = admin(gw, "PATCH", f"/admin/keys/{key['id']}", json={"limits": {"rpm": 9}})
    assert patched.json()["limits"] == {"rpm": 9, "tpm": None, "concurrent": None}
    gw.call(asyncio.sleep(0.05))  # the settlement leaves in the background
    shown = admin(gw, "GET", f"/admin/keys/{key['id']}").json()
    spend = shown["spend"]
    cost = (10 * Decimal("0.50") + 5 * Decimal("1.00")) / 1_000_000  # backup's prices
    assert Decimal(str(spend["total_cost"])) == cost
    assert Decimal(str(spend["window_cost"])) == cost
    assert Decimal(str(spend["remaining_budget"])) == 1 - cost
    assert shown["team"] == "search"


def test_several_workers_without_redis_are_refused_when_limits_are_configured(tmp_path):
    extra = '\n[limits.deployments]\n"acme/primary" = { rpm = 2 }\n'
    config = write_config(tmp_path, extra, providers={"acme": ACME})
    env = {"ROUTER_MASTER_KEY": "m", "ROUTER_WORKERS": "3"}
    runtime = Runtime(load_settings(config, env), env, "127.0.0.1")
    with pytest.raises(ConfigError, match=r"set storage\.redis_url"):
        asyncio.run(runtime.start())


# ---- team, global and provider budgets; the soft threshold ----------------------------------

OTHER = ACME.replace("[models.primary]", "[models.alt]", 1).replace(
    "[models.primary.prices]", "[models.alt.prices]"
)
BUDGETS = """
[limits.budget]
max_budget = "100"
soft_budget = "0.000001"
duration = "5m"
[limits.teams.search]
max_budget = "0.0001"
duration = "1h"
[limits.providers.acme]
max_budget = "0.00001"
duration = "month"
"""


@pytest.fixture
def budgets(tmp_path: Path) -> Iterator[tuple[FakeUpstream, Gateway]]:
    with FakeUpstream("openai") as fake:
        providers = {"acme": ACME, "other": OTHER}
        config = write_config(tmp_path, BUDGETS, providers=providers, policy=POLICY)
        env = {"ACME_API_KEY": "k", "ACME_BASE_URL": fake.url, "OTHER_BASE_URL": fake.url}
        with running_gateway(config, env | {"OTHER_API_KEY": "k"}) as gw:
            fake.always("primary", Fault.ok(text="p", usage=(20, 5)))
            fake.always("alt", Fault.ok(text="a", usage=(20, 5)))
            fake.always("backup", Fault.ok(text="b", usage=(20, 5)))
            yield fake, gw


def test_a_provider_over_its_budget_is_skipped_for_the_next_target(budgets):
    fake, gw = budgets
    chain = ["acme/primary", "other/alt"]
    first = ask(gw, chain, maxTokens=5)
    assert first.json()["model"] == "primary"  # 20 x 1 + 5 x 2 = 0.00003 USD > 0.00001
    gw.call(asyncio.sleep(0.05))  # the provider's spend is counted in the background
    second = ask(gw, chain, maxTokens=5)
    assert second.json()["model"] == "alt"
    assert attempts(second) == [("acme/primary", "rate_limited", "-"), ("other/alt", "ok", "200")]
    assert len(fake.seen_for("primary")) == 1


def test_a_team_budget_is_shared_by_its_keys(budgets):
    fake, gw = budgets
    a = create(gw, name="a", team="search")["key"]
    b = create(gw, name="b", team="search")["key"]
    statuses = [chat(gw, (a, b)[n % 2], "other/alt", max_tokens=10).status_code for n in range(8)]
    answered = statuses.index(429)
    assert statuses[answered:] == [429] * (8 - answered)
    # each answer costs 20 x 1 + 5 x 2 = 0.00003 of the team's 0.0001, both keys drawing on
    # it; a third reserves (body / 4 = 22 tokens) x 1 + 10 x 2 = 0.000042: over by 0.000002
    assert answered == 2 and len(fake.seen_for("alt")) == 2
    refused = chat(gw, b, "other/alt", max_tokens=10)
    assert refused.json()["error"]["message"] == "The team budget is exhausted for this period."
    outside = create(gw, name="c")["key"]
    assert chat(gw, outside, "other/alt", max_tokens=10).status_code == 200


def test_the_soft_threshold_only_alerts(budgets):
    _, gw = budgets
    assert ask(gw, ["other/alt"], maxTokens=5).status_code == 200
    assert ask(gw, ["other/alt"], maxTokens=5).status_code == 200
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert 'router_budget_soft_alerts_total{scope="global"} 1.0' in metrics


# ---- Redis unreachable: the operator's choice, logged once, counted, recovered ---------------


def _redis_gateway(tmp_path: Path, url: str, choice: str) -> Path:
    config = write_config(tmp_path, f'\n[limits]\non_redis_error = "{choice}"\n', policy=POLICY)
    prefix = f"router-test-{uuid.uuid4().hex[:12]}"
    storage = f'[storage]\nredis_url = "{url}"\nredis_prefix = "{prefix}"\n'
    config.write_text(config.read_text().replace("[storage]\n", storage, 1))
    return config


@pytest.mark.redis
@pytest.mark.parametrize(("choice", "status"), [("deny", 503), ("allow", 200)])
def test_when_redis_goes_away_limits_follow_the_operators_choice_and_recover(
    tmp_path, caplog, choice, status
):
    need(_reachable(REDIS), f"Redis not reachable at {REDIS}")
    relay = Relay(REDIS)
    with relay, running_gateway(_redis_gateway(tmp_path, relay.url, choice), {}) as gw:
        key = create(gw, name="r", limits={"rpm": 100})["key"]
        up = chat(gw, key, "demo/echo")
        assert (up.status_code, up.headers["x-ratelimit-remaining-requests"]) == (200, "99")
        relay.down()
        down = [chat(gw, key, "demo/echo") for _ in range(3)]
        assert [d.status_code for d in down] == [status] * 3
        if choice == "deny":
            assert down[0].json()["error"]["code"] == "limits_unavailable"
            assert down[0].headers["retry-after"] == "1"
        else:
            assert "x-ratelimit-remaining-requests" not in down[0].headers
        assert metric(gw, "router_limits_redis_errors_total") == 3
        unreachable = [r for r in caplog.records if "Redis cannot be reached" in r.message]
        assert len(unreachable) == 1  # logged once per outage
        relay.up()
        back = chat(gw, key, "demo/echo")
        assert (back.status_code, back.headers["x-ratelimit-remaining-requests"]) == (
            200,
            "98",
        )


@pytest.mark.redis
def test_router_keys_limits_sets_a_policy_that_running_gateways_apply_at_once(tmp_path):
    need(_reachable(REDIS), f"Redis not reachable at {REDIS}")
    config = _redis_gateway(tmp_path, REDIS, "allow")
    with running_gateway(config, {}) as gw:
        key = create(gw, name="cli")
        assert chat(gw, str(key["key"]), "demo/echo").status_code == 200
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "router",
                "keys",
                "limits",
                str(key["id"]),
                "--rpm",
                "1",
                "--team",
                "ops",
                "--budget",
                "2.5",
                "--duration",
                "1h",
                "--config",
                str(config),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert msgspec.json.decode(done.stdout) == {
            "team": "ops",
            "budget": {"max_budget": 2.5, "duration": "1h", "soft_budget": None, "start": 0.0},
            "limits": {"rpm": 1, "tpm": None, "concurrent": None},
        }
        deadline = time.monotonic() + 2
        while admin(gw, "GET", f"/admin/keys/{key['id']}").json()["team"] != "ops":
            assert time.monotonic() < deadline, "the gateway did not hear of the change"
            time.sleep(0.02)
        assert chat(gw, str(key["key"]), "demo/echo").status_code == 200
        assert chat(gw, str(key["key"]), "demo/echo").status_code == 429
        bad = subprocess.run(
            [
                sys.executable,
                "-m",
                "router",
                "keys",
                "limits",
                str(key["id"]),
                "--budget",
                "-1",
                "--config",
                str(config),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert bad.returncode == 2 and "budget.max_budget" in bad.stderr
