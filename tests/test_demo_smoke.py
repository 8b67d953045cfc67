"""The gateway answers on a fresh machine with the built-in demo model, no key needed."""

from __future__ import annotations

import httpx
import msgspec


def test_demo_plain(demo_gateway):
    body = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
        "models": ["demo/echo"],
    }
    r = httpx.post(
        f"{demo_gateway.url}/api/v1/completions", json=body, headers=demo_gateway.headers
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert list(data) == [
        "provider",
        "model",
        "responseMessageId",
        "conversationId",
        "conversationTitle",
        "message",
        "usage",
        "latency",
        "ttft",
    ]
    assert data["provider"] == "demo" and data["model"] == "echo"
    assert list(data["message"]) == ["role", "type", "content"]
    assert data["message"] == {
        "role": "assistant",
        "type": "text",
        "content": [{"type": "text", "text": "You said: hello there"}],
    }
    assert data["usage"]["costs"] == {
        "input_tokens_cost": 0,
        "output_tokens_cost": 0,
        "total_tokens_cost": 0,
    }


def test_demo_stream(demo_gateway):
    body = {
        "messages": [{"role": "user", "content": "one two three"}],
        "models": ["demo/echo"],
        "stream": True,
    }
    with httpx.stream(
        "POST", f"{demo_gateway.url}/api/v1/completions", json=body, headers=demo_gateway.headers
    ) as r:
        assert r.status_code == 200
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    events = [msgspec.json.decode(line[6:]) for line in lines[:-1]]
    texts = [e["text"] for e in events if e["type"] == "text"]
    assert texts == ["You", " said:", " one", " two", " three"]
    final = events[-1]
    assert final["type"] == "response"
    assert final["message"]["content"][0]["text"] == "You said: one two three"
