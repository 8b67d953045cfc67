"""A real Prometheus scrapes `router serve --workers 2` under a short load: totals equal the
requests sent (histograms included) across both workers, token counts equal what the fake
upstream reported, every PromQL expression of the shipped dashboard returns data, and every
shipped alert rule is valid, healthy once loaded and reads only series the gateway exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from chaos import ACME, DEAD
from conftest import need
from fakes import FakeUpstream, Fault
from gateway_harness import FAST_POLICY, MASTER_KEY, free_port, write_config
from kit import post
from prometheus_harness import REPO, Prometheus, prometheus, served

DASHBOARD = REPO / "deploy" / "grafana" / "router.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
HEADERS = {"Authorization": f"Bearer {MASTER_KEY}"}
ANSWER = "one two three four five six seven eight nine"


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def exported_names() -> set[str]:
    """Every sample and label name the gateway declares (a fresh registry, all families)."""
    from router.metrics import Metrics

    metrics = Metrics()
    names: set[str] = set()
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    for family in metrics.registry.collect():
        names.update(family.name + s for s in suffixes[family.type])
    for value in [*vars(metrics).values(), *vars(metrics.genai).values()]:
        names.update(getattr(value, "_labelnames", ()))  # prometheus-client keeps them here
    return names


def _ask(url: str, models: list[str], stream: bool = False, **extra: Any) -> int:
    body = {"messages": [{"role": "user", "content": "hi"}], "models": models, "stream": stream}
    body.update(extra)
    return post(url, "/api/v1/completions", body, headers=HEADERS).status_code


def _load(fake: FakeUpstream, url: str) -> tuple[list[int], dict[str, int]]:
    """24 requests, 8 at a time: answered, streamed, failed over, rescued, failed. Returns
    the statuses and the tokens the fake reported for the answers."""
    tokens = {"input": 0, "output": 0, "cached": 0, "reasoning": 0}

    def reported(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> Fault:
        for kind, n in zip(tokens, (prompt, completion, cached, reasoning), strict=True):
            tokens[kind] += n
        usage = {"prompt": prompt, "completion": completion, "cached": cached}
        return Fault.ok(text=ANSWER, chunks=9, usage=usage | {"reasoning": reasoning})

    fake.script("primary", *(reported(100 + i, 10 + i, i, 1) for i in range(12)))
    fake.script("primary", *(reported(50, 9) for _ in range(6)))
    fake.script("backup", *(reported(20, 9) for _ in range(4)))
    fake.script("big", Fault.cut(3, Fault.ok(text=ANSWER, chunks=9)), reported(30, 9))
    plain: list[tuple[list[str], bool, dict[str, Any]]] = [(["acme/primary"], False, {})] * 12
    streams: list[tuple[list[str], bool, dict[str, Any]]] = [(["acme/primary"], True, {})] * 6
    fallbacks = [(["dead/m"], False, {"fallback_models": ["acme/backup"]})] * 4
    calls: list[tuple[list[str], bool, dict[str, Any]]] = []
    for i in range(6):  # mixed in every wave
        calls += [plain[i], streams[i], *fallbacks[i : i + 1]]
    calls += plain[6:]
    calls += [(["acme/big"], True, {}), (["dead/m"], False, {})]
    statuses: list[int] = []
    with ThreadPoolExecutor(8) as pool:
        for wave in (calls[0:8], calls[8:15], calls[15:22]):  # over a few scrapes: rates show
            statuses += pool.map(lambda c: _ask(url, c[0], c[1], **c[2]), wave)
            time.sleep(1.5)
    statuses += [_ask(url, m, s, **e) for m, s, e in calls[-2:]]  # after the fallbacks
    return statuses, tokens


def _settle(prom: Prometheus, sent: int) -> None:
    deadline = time.monotonic() + 30
    expr = "sum(router_requests_total)"
    while time.monotonic() < deadline:
        result = prom.query(expr)["result"]
        if result and float(result[0]["value"][1]) == sent:
            time.sleep(2.5)  # two more scrapes and rule evaluations
            return
        time.sleep(0.5)
    raise AssertionError(f"{expr} never reached {sent}: {prom.query(expr)}")


def _workers(url: str, want: int, seconds: float = 30) -> set[int]:
    """The workers (process ids) that answer /status.json: bursts of 64 new connections, 8 at
    a time, until `want` distinct workers have answered or `seconds` have passed. `served`
    returns once one worker answers /healthz; the others may still be starting (nothing
    reports that every worker is up: /readyz is per worker), so one burst may meet only one.
    Transport errors are not retried: a connection dropped by a worker fails the test."""
    seen: set[int] = set()
    deadline = time.monotonic() + seconds
    with ThreadPoolExecutor(8) as pool:
        while len(seen) < want and time.monotonic() < deadline:
            pages = pool.map(lambda _: httpx.get(f"{url}/status.json").json()["worker"], range(64))
            seen.update(pages)
    return seen


@pytest.mark.prometheus
def test_prometheus_scrapes_two_workers_and_the_dashboard_and_alerts_hold(tmp_path):
    need(
        shutil.which("prometheus") is not None and shutil.which("promtool") is not None,
        "Debian's prometheus is not installed (scripts/ensure-prometheus)",
    )
    check = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
    with FakeUpstream("openai") as fake:
        providers = {"acme": ACME, "dead": DEAD.format(port=free_port())}
        config = write_config(tmp_path, "", providers=providers, policy=FAST_POLICY)
        env = {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url}
        with served(config, env, 2, tmp_path / "gateway.out") as url:
            assert len(_workers(url, 2)) == 2  # both workers answer
            target = url.removeprefix("http://")
            with prometheus(tmp_path, target, ALERTS) as prom:
                statuses, tokens = _load(fake, url)
                _settle(prom, len(statuses))
                _check_counts(prom, statuses, tokens)
                _check_dashboard(prom)
                _check_alerts(prom)
                if path := _screenshot_target():
                    from render_dashboard import render

                    render(prom.url, DASHBOARD, path)


def _screenshot_target() -> Path | None:
    import os

    value = os.environ.get("ROUTER_DASHBOARD_SCREENSHOT")
    return Path(value) if value else None


def _check_counts(prom: Prometheus, statuses: list[int], tokens: dict[str, int]) -> None:
    assert statuses.count(200) == 23 and statuses[-1] >= 500
    sent = len(statuses)
    assert prom.value("sum(router_requests_total)") == sent
    assert prom.value("sum(router_request_duration_seconds_count)") == sent
    assert prom.value('sum(router_requests_total{status="200"})') == 23
    assert prom.value("sum(gen_ai_server_request_duration_seconds_count)") == sent
    assert prom.value("sum(router_inflight_requests)") == 0
    assert prom.value("sum(router_inflight_streams)") == 0
    assert prom.value("sum(router_rescues_total)") == 1
    assert prom.value("sum(router_fallbacks_total)") == 4
    assert prom.value('max(router_circuit_state{provider="dead"})') == 2
    for kind, n in tokens.items():
        expr = f'sum(gen_ai_client_token_usage_sum{{gen_ai_token_type="{kind}"}})'
        assert prom.value(expr) == n, kind
    answered = 'sum(gen_ai_client_token_usage_count{gen_ai_token_type="input"})'
    assert prom.value(answered) == 23


def _check_dashboard(prom: Prometheus) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) == 19
    for expr in exprs:
        result = prom.query(expr)["result"]
        assert result, f"no data for {expr}"


def _check_alerts(prom: Prometheus) -> None:
    rules = alert_rules()
    exported = exported_names()
    for rule in rules:
        prom.query(rule["expr"])  # evaluates without error
        metric_like = set(re.findall(r"\b(?:router|gen_ai)_[a-z_]+\b", rule["expr"]))
        assert metric_like <= exported, (rule["alert"], metric_like - exported)
    loaded = [r for g in prom.get("/api/v1/rules")["groups"] for r in g["rules"]]
    assert sorted(r["name"] for r in loaded) == sorted(r["alert"] for r in rules)
    for r in loaded:
        assert r["health"] == "ok", r
        assert r["lastEvaluation"] > "2000"
