"""Request logs: every line on stdout is JSON with the request id, and no line carries a
secret (master key, virtual key, provider key) or prompt/answer text."""

from __future__ import annotations

import json
import re
from decimal import Decimal

from chaos import chaos
from fakes import Fault
from gateway_harness import MASTER_KEY
from kit import ask, post
from test_keys import create

PROMPT = "my-private-prompt-words"


def test_every_log_line_is_json_with_the_request_id_and_no_secret(tmp_path, capfd):
    capfd.readouterr()
    with chaos(tmp_path) as (fake, gw):
        key = create(gw, name="team-blue")["key"]
        assert isinstance(key, str)
        as_key = {"Authorization": f"Bearer {key}", "x-request-id": "req-from-caller-1"}
        fake.script("primary", Fault.status(500), Fault.ok(text="secret-answer-text", usage=(7, 3)))
        answered = ask(gw, ["acme/primary"], text=PROMPT, headers=as_key)
        assert answered.status_code == 200
        assert answered.headers["x-request-id"] == "req-from-caller-1"
        streamed = ask(gw, ["acme/backup"], stream=True, text=PROMPT)
        failed = ask(gw, ["dead/m"], text=PROMPT)
        wrong = ask(
            gw, ["acme/primary"], text=PROMPT, headers={"Authorization": "Bearer sk-wrong-secret"}
        )
        openai = post(
            gw,
            "/v1/chat/completions",
            {"model": "acme/backup", "messages": [{"role": "user", "content": PROMPT}]},
            headers={"Authorization": f"Bearer {key}"},
        )
    out = capfd.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    ids = [r.headers["x-request-id"] for r in (answered, streamed, failed, wrong, openai)]
    api_lines = [line for line in lines if line["path"] != "/admin/keys"]
    assert [line["request_id"] for line in api_lines] == ids
    first = api_lines[0]
    assert first["key"] == "team-blue" and first["status"] == 200
    assert [(a["target"], a["outcome"]) for a in first["chain"]] == [
        ("acme/primary", "server_error"),
        ("acme/primary", "ok"),
    ]
    assert first["provider"] == "acme" and first["answered_model"] == "primary"
    assert first["tokens"] == {"input": 7, "output": 3, "cached": 0, "reasoning": 0}
    assert Decimal(str(first["cost_usd"])) == (7 * Decimal("1.00") + 3 * Decimal("2.00")) / 10**6
    assert first["latency_ms"] >= first["ttft_ms"] >= 0
    assert api_lines[1]["stream"] is True and api_lines[1]["surface"] == "ironlabs"
    assert (api_lines[2]["status"], api_lines[2]["outcome"]) == (502, "connect_error")
    assert api_lines[3]["status"] == 401 and "key" not in api_lines[3]
    assert api_lines[4]["surface"] == "openai" and api_lines[4]["key"] == "team-blue"
    for secret in (MASTER_KEY, key, "sk-acme", "sk-wrong-secret", PROMPT, "secret-answer-text"):
        assert secret not in out
    assert ids[0] == "req-from-caller-1"
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids[1:])  # made by the gateway


def test_request_log_can_be_turned_off(tmp_path, capfd, monkeypatch):
    from gateway_harness import running_gateway, write_config

    capfd.readouterr()
    with running_gateway(write_config(tmp_path), {"ROUTER_REQUEST_LOG": "off"}) as gw:
        r = post(gw, "/v1/chat/completions", {})
        assert r.status_code == 400
    assert capfd.readouterr().out == ""
