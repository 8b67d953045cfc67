"""/metrics scraped the way Prometheus does, and parsed with the exposition-format parser."""

from __future__ import annotations

from decimal import Decimal

import httpx
from prometheus_client.parser import text_string_to_metric_families

from chaos import chaos
from fakes import Fault
from kit import ask, post

SCRAPE_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
)


def scrape(gw) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"{gw.url}/metrics", headers={"Accept": SCRAPE_ACCEPT})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_count_requests_attempts_tokens_and_costs(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", Fault.status(500), Fault.ok(text="hi", usage=(100, 10)))
        ask(gw, ["acme/primary"])
        ask(gw, ["acme/other-model"])
        post(gw, "/api/v1/completions", {})
        m = scrape(gw)
    req = "router_requests_total"
    assert m[(req, (("status", "200"), ("surface", "ironlabs")))] == 2
    assert m[(req, (("status", "400"), ("surface", "ironlabs")))] == 1
    att = "router_upstream_attempts_total"
    assert m[(att, (("model", "primary"), ("outcome", "server_error"), ("provider", "acme")))] == 1
    assert m[(att, (("model", "primary"), ("outcome", "ok"), ("provider", "acme")))] == 1
    assert m[(att, (("model", "other"), ("outcome", "ok"), ("provider", "acme")))] == 1
    tok = "router_tokens_total"
    assert m[(tok, (("kind", "prompt"), ("model", "primary"), ("provider", "acme")))] == 100
    assert m[(tok, (("kind", "completion"), ("model", "primary"), ("provider", "acme")))] == 10
    cost = m[("router_cost_usd_total", (("model", "primary"), ("provider", "acme")))]
    assert Decimal(str(cost)) == (100 * Decimal("1.00") + 10 * Decimal("2.00")) / 10**6
    key = ("router_request_duration_seconds_count", (("stream", "false"), ("surface", "ironlabs")))
    assert m[key] == 3
    assert m[("router_inflight_requests", ())] == 0


def test_metrics_never_carry_keys(tmp_path):
    with chaos(tmp_path) as (_, gw):
        ask(gw, ["acme/primary"])
        text = httpx.get(f"{gw.url}/metrics").text
    assert "sk-acme" not in text and "sk-test-master" not in text
