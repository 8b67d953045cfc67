"""POST /api/v1/completions: request validation, auth, translation upstream, conversations."""

from __future__ import annotations

import uuid

import httpx
import pytest

from chaos import chaos
from fakes import Fault
from kit import COMPLETIONS, ask, attempts, payloads, post

MSG = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"messages": MSG}, "missing_field", "models"),
        ({"messages": MSG, "models": []}, "invalid_value", "models"),
        ({"messages": [], "models": ["demo/echo"]}, "invalid_value", "messages"),
        ({"messages": MSG, "models": "demo/echo"}, "invalid_request", "models"),
        ({"messages": MSG, "models": ["demo/echo"], "colour": 1}, "unknown_field", "colour"),
        (
            {"messages": MSG, "models": ["demo/echo"], "temperature": 1.5},
            "invalid_value",
            "temperature",
        ),
        ({"messages": MSG, "models": ["demo/echo"], "maxTokens": 0}, "invalid_value", "maxTokens"),
        (
            {"messages": MSG, "models": ["demo/echo"], "maxRetries": -1},
            "invalid_value",
            "maxRetries",
        ),
        (
            {"messages": MSG, "models": ["demo/echo"], "search": True},
            "search_unavailable",
            "search",
        ),
        (
            {"messages": MSG, "models": ["demo/echo"], "conversationId": "x"},
            "invalid_value",
            "conversationId",
        ),
        (
            {"messages": [{"role": "robot", "content": "hi"}], "models": ["demo/echo"]},
            "invalid_request",
            "messages[0].role",
        ),
        (
            {
                "messages": [{"role": "user", "content": [{"type": "video"}]}],
                "models": ["demo/echo"],
            },
            "invalid_request",
            "messages[0].content[0].type",
        ),
        ({"messages": MSG, "models": ["nosuch/model"]}, "model_not_found", "models[0]"),
        (
            {"messages": MSG, "models": ["demo/echo"], "fallback_models": ["nope"]},
            "model_not_found",
            "fallback_models[0]",
        ),
    ],
)
def test_bad_input_names_the_field(demo_gateway, body, code, field):
    r = post(demo_gateway, COMPLETIONS, body)
    assert r.status_code == (404 if code == "model_not_found" else 400)
    error = r.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"]


def test_invalid_json(demo_gateway):
    r = httpx.post(
        f"{demo_gateway.url}/api/v1/completions", content=b"{nope", headers=demo_gateway.headers
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic abc", "Bearer"])
def test_missing_or_wrong_key_is_401(demo_gateway, auth):
    headers = {} if auth is None else {"Authorization": auth}
    r = post(demo_gateway, COMPLETIONS, {"messages": MSG, "models": ["demo/echo"]}, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert "wrong" not in r.text  # the presented key is never echoed


def test_request_is_translated_upstream(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        body = {
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    ],
                },
            ],
            "models": ["acme/primary"],
            "temperature": 0.7,
            "maxTokens": 64,
        }
        assert post(gw, COMPLETIONS, body).status_code == 200
    sent = fake.seen_for("primary")[0].body
    assert sent == {
        "model": "primary",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            },
        ],
        "temperature": 0.7,
        "max_tokens": 64,
    }


def test_stream_asks_upstream_for_usage(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", Fault.ok(text="a b c", usage=(7, 3)))
        r = ask(gw, ["acme/primary"], stream=True)
    sent = fake.seen_for("primary")[0].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert r.headers["content-type"].startswith("text/event-stream")
    evs = payloads(r)
    assert [e["type"] for e in evs[:-1]] == ["text", "text", "text", "response"]
    final = evs[-2]
    assert final["usage"] == {  # priced at acme/primary's $1 in, $2 out per 1M
        "promptTokens": 7,
        "completionTokens": 3,
        "totalTokens": 10,
        "reasoningTokens": 0,
        "costs": {
            "input_tokens_cost": 0.000007,
            "output_tokens_cost": 0.000006,
            "total_tokens_cost": 0.000013,
        },
    }
    assert final["ttft"] <= final["latency"]
    assert uuid.UUID(final["responseMessageId"])


def test_conversation_history_is_sent_and_kept(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", Fault.ok(text="Paris."), Fault.ok(text="About 2 million."))
        first = ask(gw, ["acme/primary"], text="What is the capital of France?").json()
        assert first["conversationTitle"] == "What is the capital of France?"
        conv = first["conversationId"]
        second = ask(gw, ["acme/primary"], text="How many people live there?", conversationId=conv)
        assert second.status_code == 200
        assert second.json()["conversationId"] == conv
        assert second.json()["conversationTitle"] == first["conversationTitle"]
    sent = fake.seen_for("primary")[1].body["messages"]
    assert sent == [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "How many people live there?"},
    ]


def test_streamed_turns_are_kept_too(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", Fault.ok(text="One."), Fault.ok(text="Two."))
        final = payloads(ask(gw, ["acme/primary"], stream=True, text="Count"))[-2]
        ask(gw, ["acme/primary"], stream=True, text="Again", conversationId=final["conversationId"])
    assert [m["content"] for m in fake.seen_for("primary")[1].body["messages"]] == [
        "Count",
        "One.",
        "Again",
    ]


def test_unknown_conversation_is_404(demo_gateway):
    body = {"messages": MSG, "models": ["demo/echo"], "conversationId": str(uuid.uuid4())}
    r = post(demo_gateway, COMPLETIONS, body)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "conversation_not_found"


def test_alias_expands_to_its_chain(tmp_path):
    aliases = '[aliases]\nsafe = ["acme/primary", "acme/backup"]\n'
    with chaos(tmp_path, aliases) as (fake, gw):
        fake.always("primary", Fault.status(400))
        r = ask(gw, ["safe"])
    assert r.json()["model"] == "backup"
    assert attempts(r) == [("acme/primary", "bad_request", "400"), ("acme/backup", "ok", "200")]
    assert [s.outcome for s in fake.seen_for("primary")] == ["status"]  # 400: no retry


def test_unlisted_model_routes_with_unknown_cost(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        r = ask(gw, ["acme/not-in-catalog"])
    assert r.status_code == 200
    assert r.json()["usage"]["costs"] == {
        "input_tokens_cost": None,
        "output_tokens_cost": None,
        "total_tokens_cost": None,
    }
    assert fake.seen_for("not-in-catalog")[0].body["model"] == "not-in-catalog"


def test_provider_restricted_to_listed_models(tmp_path):
    with chaos(tmp_path, '[routing]\nonly_listed_models = ["acme"]\n') as (_, gw):
        r = ask(gw, ["acme/not-in-catalog"])
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"


def test_client_disconnect_cancels_the_upstream_request(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", Fault.ok(text="w " * 40, chunks=40, chunk_delay=0.1))
        body = {"messages": MSG, "models": ["acme/primary"], "stream": True}
        with httpx.stream(
            "POST", f"{gw.url}/api/v1/completions", json=body, headers=gw.headers
        ) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    break  # go away after the first event
        # The gateway's pooled connector must hold no live upstream connection for long.
        import time

        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if gw.call(_upstream_busy(gw)) == 0:
                break
            time.sleep(0.05)
        assert gw.call(_upstream_busy(gw)) == 0


async def _upstream_busy(gw) -> int:
    connector = gw.runtime.upstream.session.connector
    return len(connector._acquired)  # connections checked out for requests in flight
