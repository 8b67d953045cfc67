"""Spend reports: `GET /admin/spend` and `router spend` over the ledger a real gateway wrote."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import httpx
import pytest

from fakes import Fault
from kit import ask, post
from test_keys import admin, create
from test_ledger import M, acme  # the priced gateway fixture

__all__ = ["acme"]


def chat(gw, key: str, model: str, stream: bool = False) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    headers = {"Authorization": f"Bearer {key}"}
    return post(gw, "/v1/chat/completions", body, headers=headers, timeout=10)


@pytest.fixture
def billed(acme):
    """Three calls: two by key `a` (primary, backup), one by the master key (primary)."""
    fake, gw = acme
    key = create(gw, name="a")
    fake.always("primary", Fault.ok(text="x", usage=(1000, 100)))
    fake.always("backup", Fault.ok(text="x", usage=(2000, 200)))
    assert chat(gw, key["key"], "acme/primary").status_code == 200
    assert chat(gw, key["key"], "acme/backup", stream=True).status_code == 200
    assert ask(gw, ["acme/primary"]).status_code == 200
    return gw, key


PRIMARY = (1000 * Decimal(1) + 100 * Decimal(2)) / M  # 0.0012
BACKUP = (2000 * Decimal("0.5") + 200 * Decimal(1)) / M  # 0.0012


def test_spend_by_key_model_and_surface(billed):
    gw, key = billed
    by_key = admin(gw, "GET", "/admin/spend?group_by=key").json()
    assert by_key["object"] == "spend" and by_key["group_by"] == "key"
    lines = {x["group"]: x for x in by_key["data"]}
    assert lines[key["id"]]["requests"] == 2
    assert Decimal(str(lines[key["id"]]["cost"])) == PRIMARY + BACKUP
    assert lines[None]["requests"] == 1  # the master key has no id
    assert Decimal(str(by_key["total_cost"])) == 2 * PRIMARY + BACKUP
    by_model = admin(gw, "GET", "/admin/spend?group_by=model").json()["data"]
    assert [(x["group"], x["requests"], x["input_tokens"]) for x in by_model] == [
        ("acme/backup", 1, 2000),
        ("acme/primary", 2, 2000),
    ]
    one = admin(gw, "GET", f"/admin/spend?group_by=surface&key={key['id']}").json()["data"]
    assert [(x["group"], x["requests"]) for x in one] == [("openai", 2)]


def test_spend_in_a_time_range_and_as_csv(billed):
    gw, _ = billed
    none = admin(gw, "GET", "/admin/spend?group_by=day&end=2001-01-01").json()
    assert none["data"] == [] and none["total_cost"] == 0
    csv = admin(gw, "GET", "/admin/spend?group_by=provider&format=csv&start=2001-01-01T00:00:00Z")
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines() == [
        "group,requests,input_tokens,cached_tokens,cache_write_tokens,output_tokens,"
        "reasoning_tokens,failed_tokens,cost_usd",
        f"acme,3,4000,0,0,400,0,0,{2 * PRIMARY + BACKUP}",
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("group_by=user", "group_by"),
        ("start=yesterday", "start"),
        ("format=xml", "format"),
        ("start=2030-01-02&end=2030-01-01", "end"),
    ],
)
def test_bad_report_options_are_400_naming_the_option(acme, query, field):
    _, gw = acme
    r = admin(gw, "GET", f"/admin/spend?{query}")
    assert r.status_code == 400
    assert r.json()["error"]["field"] == field


def test_spend_needs_the_master_key(acme):
    _, gw = acme
    key = create(gw, name="a")
    refused = admin(gw, "GET", "/admin/spend", key=str(key["key"]))
    assert refused.status_code == 403  # a virtual key on /admin: it needs the master key
    assert refused.json()["error"]["message"] == (
        "This endpoint needs the master key; virtual keys may only call models."
    )


def test_router_spend_prints_a_table(billed, tmp_path):
    gw, _ = billed
    gw.call(gw.runtime.ledger.flush())
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "router",
            "spend",
            "--group-by",
            "model",
            "--config",
            str(tmp_path / "routing.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "group",
        "requests",
        "input_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "output_tokens",
        "reasoning_tokens",
        "failed_tokens",
        "cost_usd",
    ]
    assert lines[1].split() == ["acme/backup", "1", "2000", "0", "0", "200", "0", "0", str(BACKUP)]
    assert lines[-1].split() == ["total", "3", str(2 * PRIMARY + BACKUP)]
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "router",
            "spend",
            "--start",
            "soon",
            "--config",
            str(tmp_path / "routing.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr == "router spend: start takes an RFC 3339 time, a date or unix seconds.\n"
