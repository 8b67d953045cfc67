"""The gateway answers on a fresh machine with the built-in demo model, no key needed."""

from __future__ import annotations

from kit import COMPLETIONS, DONE, payloads, post


def test_demo_plain(demo_gateway):
    body = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
        "models": ["demo/echo"],
    }
    r = post(demo_gateway, "/api/v1/completions", body)
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
    r = post(demo_gateway, COMPLETIONS, body)
    assert r.status_code == 200
    *events, done = payloads(r)
    assert done == DONE
    texts = [e["text"] for e in events if e["type"] == "text"]
    assert texts == ["You", " said:", " one", " two", " three"]
    final = events[-1]
    assert final["type"] == "response"
    assert final["message"]["content"][0]["text"] == "You said: one two three"
