"""POST /v1/chat/completions through the official openai SDK (sync and async, streamed and
not) and raw HTTP: exact OpenAI shapes, translation upstream, fallbacks across protocols,
OpenAI-shaped errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import msgspec
import openai
import pytest

from fakes import Fault, ToolCall
from kit import attempts, payloads, post
from openai_env import CLAUDE, Env, openai_env

USER = [{"role": "user", "content": "Hello from Ion Clock Lab"}]
USAGE = {"prompt": 12, "completion": 5, "cached": 4, "reasoning": 2}
ANSWER = "The quick brown fox jumps over the lazy dog"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with openai_env(tmp_path) as e:
        yield e


# ---- answers ------------------------------------------------------------------------------


def test_plain_answer_has_openais_exact_shape(env):
    env.openai.script("gpt-4o-mini", Fault.ok("Hi there!", usage=USAGE))
    r = post(env.gw, "/v1/chat/completions", {"model": "openai/gpt-4o-mini", "messages": USER})
    assert r.status_code == 200, r.text
    data = r.json()
    assert list(data) == [
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "system_fingerprint",
    ]
    assert re.fullmatch(r"chatcmpl-[0-9a-f]{24}", data["id"]) and isinstance(data["created"], int)
    assert (data["object"], data["model"]) == ("chat.completion", "openai/gpt-4o-mini")
    assert data["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hi there!",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    usage = data["usage"]
    assert usage["prompt_tokens"] == 12 and usage["completion_tokens"] == 5
    assert usage["total_tokens"] == 17
    assert usage["prompt_tokens_details"]["cached_tokens"] == 4
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 2
    # catalog price of openai/gpt-4o-mini: 0.15 in, 0.075 cached, 0.60 out per 1M tokens
    expected = (Decimal(8) * Decimal("0.15") + 4 * Decimal("0.075") + 5 * Decimal("0.60")) / 10**6
    assert Decimal(str(usage["cost"])) == expected
    assert attempts(r) == [("openai/gpt-4o-mini", "ok", "200")]


def test_sdk_sync_translates_every_parameter(env):
    env.openai.script("gpt-4o-mini", Fault.ok("Done."))
    client = env.client()
    response = client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0K", "detail": "low"},
                    },
                ],
            },
        ],
        temperature=0.3,
        top_p=0.9,
        max_completion_tokens=50,
        stop=["\n\n"],
        seed=7,
        user="user-1234",
        response_format={"type": "json_object"},
        metadata={"team": "web"},
        store=False,
        parallel_tool_calls=True,
    )
    assert response.choices[0].message.content == "Done."
    assert response.model == "openai/gpt-4o-mini"
    body = env.openai.seen_for("gpt-4o-mini")[0].body
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,iVBORw0K", "detail": "low"},
                },
            ],
        },
    ]
    picked = {k: body[k] for k in ("temperature", "top_p", "stop", "seed", "user")}
    assert picked == {
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["\n\n"],
        "seed": 7,
        "user": "user-1234",
    }
    assert body["response_format"] == {"type": "json_object"}
    # OpenAI-only parameters reach an OpenAI target unchanged, by the caller's own names
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body
    assert (body["metadata"], body["store"], body["parallel_tool_calls"]) == (
        {"team": "web"},
        False,
        True,
    )


def test_sdk_sync_stream_with_usage(env):
    env.openai.script("gpt-4o-mini", Fault.ok("one two three", usage=USAGE))
    stream = env.client().chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (12, 5)
    assert last.usage.prompt_tokens_details.cached_tokens == 4
    assert last.usage.completion_tokens_details.reasoning_tokens == 2
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1


def test_stream_frames_on_the_wire(env):
    env.openai.script("gpt-4o-mini", Fault.ok("Hi you", usage=USAGE))
    body = {"model": "openai/gpt-4o-mini", "messages": USER, "stream": True}
    r = post(env.gw, "/v1/chat/completions", body)
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.text.endswith("data: [DONE]\n\n")
    evs = payloads(r)
    assert evs[-1] == "[DONE]"
    first = evs[0]
    assert list(first) == [
        "id",
        "object",
        "created",
        "model",
        "system_fingerprint",
        "choices",
    ]
    assert first["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": "", "refusal": None},
            "logprobs": None,
            "finish_reason": None,
        }
    ]
    deltas = [e["choices"][0]["delta"] for e in evs[1:-2]]
    assert deltas == [{"content": "Hi"}, {"content": " you"}]
    assert evs[-2]["choices"] == [
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    ]
    assert all("usage" not in e for e in evs[:-1])  # no include_usage: no usage at all


async def test_sdk_async_plain_and_streamed(env):
    env.openai.script("gpt-4o-mini", Fault.ok("async hello"), Fault.ok("async stream"))
    async with env.async_client() as client:
        response = await client.chat.completions.create(model="openai/gpt-4o-mini", messages=USER)
        assert response.choices[0].message.content == "async hello"
        stream = await client.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        assert "".join(pieces) == "async stream"


def test_tool_calls_both_ways(env):
    call = ToolCall("get_weather", {"city": "Florence"}, id="call_42")
    env.openai.script("gpt-4o-mini", Fault.ok(tool_call=call), Fault.ok(tool_call=call))
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather by city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    client = env.client()
    choice = {"type": "function", "function": {"name": "get_weather"}}
    response = client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=USER, tools=tools, tool_choice=choice
    )
    message = response.choices[0].message
    assert response.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    assert message.tool_calls is not None
    assert message.tool_calls[0].id == "call_42"
    assert message.tool_calls[0].function.name == "get_weather"
    assert msgspec.json.decode(message.tool_calls[0].function.arguments) == {"city": "Florence"}
    sent = env.openai.seen_for("gpt-4o-mini")[0].body
    assert sent["tools"] == tools
    assert sent["tool_choice"] == choice

    stream = client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=USER, tools=tools, stream=True
    )
    chunks = [c for c in stream if c.choices]
    calls = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or ()]
    assert calls[0].id == "call_42" and calls[0].function.name == "get_weather"
    assert "".join(tc.function.arguments or "" for tc in calls) == '{"city":"Florence"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_results_go_back_upstream(env):
    env.openai.script("gpt-4o-mini", Fault.ok("It is sunny."))
    messages = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_42",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Florence"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_42", "content": "sunny"},
    ]
    response = env.client().chat.completions.create(model="openai/gpt-4o-mini", messages=messages)
    assert response.choices[0].message.content == "It is sunny."
    sent = env.openai.seen_for("gpt-4o-mini")[0].body["messages"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert sent[2] == {"role": "tool", "content": "sunny", "tool_call_id": "call_42"}


def test_bare_name_resolves_by_preference(env):
    env.openai.script("gpt-4o-mini", Fault.ok("bare"))
    response = env.client().chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert (response.model, response.choices[0].message.content) == ("openai/gpt-4o-mini", "bare")


# ---- fallbacks ----------------------------------------------------------------------------


def test_alias_stream_is_served_by_anthropic_after_openai_fails(env):
    env.openai.always("gpt-4o-mini", Fault.status(500))
    env.anthropic.script("claude-sonnet-4-20250514", Fault.ok("Bonjour from Claude"))
    raw = env.client().chat.completions.with_raw_response.create(
        model="smart",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert attempts(raw) == [("openai/gpt-4o-mini", "server_error", "500")] * 3 + [
        (CLAUDE, "ok", "200")
    ]
    chunks = list(raw.parse())
    assert {c.model for c in chunks} == {CLAUDE}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Bonjour from Claude"
    )
    usage = chunks[-1].usage  # the Anthropic fake's default: 10 in, one per word out
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (10, 3)
    assert Decimal(str(usage.cost)) == Decimal("0.000075")  # 10 x $3 + 3 x $15 per 1M
    sent = env.anthropic.seen_for("claude-sonnet-4-20250514")[0]
    assert sent.path == "/v1/messages" and sent.stream


def test_fallback_models_extension(env):
    env.openai.always("gpt-4o-mini", Fault.rate_limited(retry_after=60))
    env.acme.script("gpt-4o-mini", Fault.ok("from acme"))
    response = env.client().chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=USER,
        extra_body={"fallback_models": ["acme/gpt-4o-mini"]},
    )
    assert response.model == "acme/gpt-4o-mini"
    assert response.choices[0].message.content == "from acme"


def test_models_list_extension_without_model(env):
    env.acme.script("gpt-4o-mini", Fault.ok("first of the list"))
    body = {"models": ["acme/gpt-4o-mini", "openai/gpt-4o-mini"], "messages": USER}
    r = post(env.gw, "/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "acme/gpt-4o-mini"
    assert env.openai.seen == []


# ---- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"messages": USER}, 400, "missing_required_parameter", "model"),
        ({"model": "demo/echo", "messages": []}, 400, "invalid_value", "messages"),
        (
            {"model": "demo/echo", "messages": USER, "colour": 1},
            400,
            "unsupported_parameter",
            "colour",
        ),
        (
            {"model": "demo/echo", "messages": USER, "temperature": 3},
            400,
            "invalid_value",
            "temperature",
        ),
        (
            {"model": "demo/echo", "messages": USER, "n": 200},
            400,
            "invalid_value",
            "n",
        ),
        (
            {"model": "demo/echo", "messages": [{"role": "robot", "content": "x"}]},
            400,
            "invalid_request",
            "messages[0].role",
        ),
        (
            {"model": "demo/echo", "messages": [{"role": "tool", "content": "x"}]},
            400,
            "missing_required_parameter",
            "messages[0].tool_call_id",
        ),
        ({"model": "nosuch/model", "messages": USER}, 404, "model_not_found", "model"),
        ({"model": "gpt-9", "messages": USER}, 404, "model_not_found", "model"),
        (
            {"model": "demo/echo", "messages": USER, "fallback_models": ["nope/x"]},
            404,
            "model_not_found",
            "fallback_models[0]",
        ),
    ],
)
def test_bad_requests_name_the_parameter(env, body, status, code, param):
    r = post(env.gw, "/v1/chat/completions", body)
    assert r.status_code == status
    error = r.json()["error"]
    assert list(error) == ["message", "type", "param", "code"]
    assert (error["code"], error["param"], error["type"]) == (code, param, "invalid_request_error")


def test_sdk_errors(env):
    client = env.client()
    with pytest.raises(openai.AuthenticationError) as auth:
        env.client("sk-wrong").chat.completions.create(model="demo/echo", messages=USER)
    assert auth.value.code == "invalid_api_key" and auth.value.status_code == 401
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nosuch/model", messages=USER)
    assert (missing.value.code, missing.value.param) == ("model_not_found", "model")
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="demo/echo", messages=USER, top_p=2)
    assert bad.value.param == "top_p"


def test_rate_limit_is_429_with_retry_after(env):
    env.openai.always("gpt-4o-mini", Fault.rate_limited(retry_after=60))
    with pytest.raises(openai.RateLimitError) as limited:
        env.client().chat.completions.create(model="openai/gpt-4o-mini", messages=USER)
    response = limited.value.response
    assert response.status_code == 429
    assert response.headers["retry-after"] == "60"
    assert limited.value.code == "rate_limit_exceeded"


def test_upstream_failure_is_502_with_the_attempt_trail(env):
    env.openai.always("gpt-4o-mini", Fault.status(500))
    r = post(env.gw, "/v1/chat/completions", {"model": "openai/gpt-4o-mini", "messages": USER})
    assert r.status_code == 502
    error = r.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "upstream_error",
        "upstream_error",
        None,
    )
    assert error["message"] == (  # the provider's own message, named
        "Upstream provider error (openai): The server had an error while processing your"
        " request. Sorry about that!"
    )
    assert [(a["provider"], a["outcome"], a["status"]) for a in error["attempts"]] == [
        ("openai", "server_error", 500)
    ] * 3
    assert attempts(r) == [("openai/gpt-4o-mini", "server_error", "500")] * 3


def test_stream_failing_beyond_rescue_ends_with_an_error_chunk(env):
    env.openai.script(
        "gpt-4o-mini",
        Fault.cut(3, Fault.ok(text=ANSWER, chunks=9)),
        Fault.ok(text="Something else entirely"),
    )
    stream = env.client().chat.completions.create(
        model="openai/gpt-4o-mini", messages=USER, stream=True
    )
    seen: list[str] = []
    with pytest.raises(openai.APIError) as failed:
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "The quick brown"
    assert failed.value.message == (
        "Upstream provider error (openai): the upstream connection broke mid-response"
    )
    body = failed.value.body
    assert isinstance(body, dict) and body["code"] == "stream_cut"
    # the cut attempt is charged as estimated: the prompt (24 chars / 4 + 4 per message) and
    # the 15 chars sent (4), at $0.15 / $0.60 per 1M; the regeneration differed and cost nothing
    assert [(a["outcome"], a["reason"], a["tokens"]) for a in body["attempts"]] == [
        ("stream_cut", "the upstream connection broke mid-response", 14),
        ("rescue_mismatch", "regenerated answer differs from the part already sent", None),
    ]
    assert Decimal(str(body["attempts"][0]["cost"])) == Decimal("0.0000039")


def test_unknown_v1_path_is_an_openai_error(env):
    r = httpx.get(f"{env.gw.url}/v1/assistants", timeout=5)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_url"
