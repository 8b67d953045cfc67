"""GenAI semantic-convention metrics and the new router series, scraped from a real gateway
behind the fault-injecting fake, with exact values."""

from __future__ import annotations

import re
from decimal import Decimal

import httpx

from chaos import chaos
from fakes import Fault
from kit import ask, post
from test_metrics import scrape

RID = re.compile(r"[0-9a-f]{32}")  # a request id the gateway made: random, so its shape only
OP = (("gen_ai_operation_name", "chat"), ("gen_ai_provider_name", "acme"))


def labels(request: str, response: str, **more: str) -> tuple[tuple[str, str], ...]:
    pairs = dict(OP)
    pairs |= {"gen_ai_request_model": request, "gen_ai_response_model": response, **more}
    return tuple(sorted(pairs.items()))


def test_genai_series_count_tokens_durations_and_fallbacks(tmp_path):
    usage = {"prompt": 120, "completion": 30, "cached": 20, "reasoning": 5}
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", Fault.status(500), Fault.status(500), Fault.status(500))
        fake.script("backup", Fault.ok(text="one two three", usage=usage))
        r = ask(gw, ["acme/primary"], fallback_models=["acme/backup"])
        assert r.status_code == 200
        fake.script("backup", Fault.ok(text="a b c d e", chunks=5, usage=(10, 5)))
        assert ask(gw, ["acme/backup"], stream=True).status_code == 200
        assert ask(gw, ["not-a-model-name-anyone-configured"]).status_code == 404
        m = scrape(gw)
    tok = "gen_ai_client_token_usage_sum"
    fell = labels("acme/primary", "backup", gen_ai_token_type="input")
    assert m[(tok, fell)] == 120  # input includes the cached tokens
    assert m[(tok, labels("acme/primary", "backup", gen_ai_token_type="output"))] == 30
    assert m[(tok, labels("acme/primary", "backup", gen_ai_token_type="cached"))] == 20
    assert m[(tok, labels("acme/primary", "backup", gen_ai_token_type="reasoning"))] == 5
    assert m[(tok, labels("acme/backup", "backup", gen_ai_token_type="output"))] == 5
    assert m[("gen_ai_client_token_usage_count", fell)] == 1
    dur = "gen_ai_server_request_duration_seconds_count"
    assert m[(dur, labels("acme/primary", "backup", error_type=""))] == 1
    assert m[(dur, labels("acme/backup", "backup", error_type=""))] == 1
    tpot = "gen_ai_server_time_per_output_token_seconds_count"
    assert m[(tpot, labels("acme/backup", "backup"))] == 1  # streamed, 5 output tokens
    assert (tpot, labels("acme/primary", "backup")) not in m  # not streamed
    ttft = "gen_ai_server_time_to_first_token_seconds_count"
    assert m[(ttft, labels("acme/backup", "backup"))] == 1
    op = "gen_ai_client_operation_duration_seconds_count"
    assert m[(op, labels("primary", "primary", error_type="server_error"))] == 3
    assert m[(op, labels("backup", "backup", error_type=""))] == 2
    fb = ("router_fallbacks_total", (("reason", "server_error"), ("surface", "ironlabs")))
    assert m[fb] == 1
    # backup's $0.50 in, $1 out per 1M: (120 x 0.50 + 30) + (10 x 0.50 + 5), cached at input
    assert Decimal(str(m[("router_key_cost_usd_total", (("key", "master"),))])) == Decimal("0.0001")
    assert m[("router_limit_rejections_total", (("kind", "budget"),))] == 0
    assert m[("router_inflight_streams", ())] == 0
    assert m[("router_circuit_state", (("model", "primary"), ("provider", "acme")))] == 2
    assert m[("router_circuit_state", (("model", "backup"), ("provider", "acme")))] == 0
    for (name, pairs), _ in m.items():  # a name nobody configured is never a label value
        assert "not-a-model-name" not in str(pairs), name


def test_requested_model_outside_the_catalog_is_other(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("whatever-7", Fault.ok(text="hi", usage=(3, 1)))
        assert ask(gw, ["acme/whatever-7"]).status_code == 200
        m = scrape(gw)
    key = labels("other", "other", gen_ai_token_type="input")
    assert m[("gen_ai_client_token_usage_sum", key)] == 3


def test_key_names_are_capped(tmp_path):
    from router.metrics import KEY_NAMES, Metrics

    metrics = Metrics()
    names = [metrics.key_label(f"team-{i}") for i in range(KEY_NAMES + 5)]
    assert names[:KEY_NAMES] == [f"team-{i}" for i in range(KEY_NAMES)]
    assert names[KEY_NAMES:] == ["other"] * 5
    assert metrics.key_label("team-0") == "team-0"


def test_hooks_for_stores_ledger_and_limits_export_series(tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    from router.metrics import Metrics

    metrics = Metrics()
    metrics.store_error("postgres", "insert")
    metrics.ledger_lagging(2.5)
    metrics.limit_rejected("rate")
    metrics.budget("team-a", 0.85)
    metrics.cluster_error("publish")
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(metrics.exposition().decode())
        for s in f.samples
    }
    store = "router_store_errors_total"
    assert got[(store, (("operation", "insert"), ("store", "postgres")))] == 1
    assert got[(store, (("operation", "publish"), ("store", "redis")))] == 1
    assert got[("router_ledger_lag_seconds", ())] == 2.5
    assert got[("router_limit_rejections_total", (("kind", "rate"),))] == 1
    assert got[("router_budget_used_ratio", (("key", "team-a"),))] == 0.85


def test_request_id_is_returned_validated_and_in_errors(tmp_path):
    with chaos(tmp_path) as (_, gw):
        ok = ask(gw, ["acme/primary"], headers=None)
        assert RID.fullmatch(ok.headers["x-request-id"])
        mine = post(
            gw, "/api/v1/completions", {}, headers={**gw.headers, "x-request-id": "caller-42.a:b_c"}
        )
        assert mine.headers["x-request-id"] == "caller-42.a:b_c"
        assert mine.status_code == 400  # errors carry it in the header; bodies keep their shape
        bad = httpx.get(f"{gw.url}/healthz", headers={"x-request-id": "a b<script>"})
        assert bad.headers["x-request-id"] != "a b<script>"
        assert RID.fullmatch(bad.headers["x-request-id"])
        long = httpx.get(f"{gw.url}/healthz", headers={"x-request-id": "a" * 129})
        assert RID.fullmatch(long.headers["x-request-id"])
        openai = post(gw, "/v1/chat/completions", {})
        assert openai.status_code == 400 and RID.fullmatch(openai.headers["x-request-id"])
