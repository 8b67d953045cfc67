"""The Anthropic Messages adapter against a loopback fake speaking that protocol, replaying
recorded real traffic: exact text, tool calls, tokens and costs, plain and streamed."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from fakes import RECORDED, FakeUpstream, Fault, Usage
from fakes.cassettes import raw, recorded
from gateway_harness import Gateway, behind_fake
from kit import PORTUGUESE, ask, payloads
from replay import answer, chat_request, costs, event_stream, kinds, replay, run, target
from router.config import ModelInfo, Provider
from router.core.assemble import Assembler
from router.core.types import (
    ChatRequest,
    Finish,
    ImagePart,
    Message,
    Target,
    TextPart,
    Tool,
    ToolCall,
)
from router.core.types import Usage as CanonicalUsage
from router.errors import Failure, UpstreamError
from router.protocols.anthropic import AnthropicMessages

MODEL = "claude-sonnet-4-20250514"
PROVIDER = f"""
protocol = "anthropic"
base_url = "http://127.0.0.1:9"
api_key_env = "ANTHROPIC_API_KEY"
api_version = "2023-06-01"

[models."{MODEL}"]
max_output_tokens = 64000
capabilities = ["tools", "reasoning", "prefill"]
[models."{MODEL}".prices]
input = "3.00"
output = "15.00"
cached_input = "0.30"
cache_write = "3.75"
"""
PRICES = {"input": "3", "output": "15", "cached_input": "0.30", "cache_write": "3.75"}
WEATHER = Tool(
    "weather",
    "Get weather information for a location",
    {
        "properties": {"location": {"description": "the city", "type": "string"}},
        "required": ["location"],
        "type": "object",
    },
)
SYSTEM = "You are a helpful assistant"


def gateway(tmp_path: Path) -> AbstractContextManager[tuple[FakeUpstream, Gateway]]:
    return behind_fake(
        tmp_path, "anthropic", {"anthropic": PROVIDER}, {"ANTHROPIC_API_KEY": "sk-ant-test"}
    )


def complete(gw: Gateway, stream: bool, **extra: Any) -> httpx.Response:
    return ask(gw, [f"anthropic/{MODEL}"], stream=stream, messages=PORTUGUESE, **extra)


def body_of(call_body: bytes) -> Any:
    return msgspec.json.decode(call_body)


# ---- through the gateway ------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_recorded_answer_text_tokens_costs(tmp_path, stream):
    rec = RECORDED["anthropic"]
    with gateway(tmp_path) as (fake, gw):
        r = complete(gw, stream)
    assert r.status_code == 200, r.text
    text, usage = answer(r, stream)
    want_usage = rec.stream_usage if stream else rec.usage
    assert text == (rec.stream_text if stream else rec.text)
    prompt, completion = want_usage.prompt, want_usage.completion
    assert usage == {
        "promptTokens": prompt,
        "completionTokens": completion,
        "totalTokens": prompt + completion,
        "reasoningTokens": 0,
        "costs": costs(f"{prompt * 3}e-6", f"{completion * 15}e-6"),
    }
    seen = fake.seen[0]
    assert (seen.method, seen.path, seen.query) == ("POST", "/v1/messages", {})
    assert seen.headers["x-api-key"] == "sk-ant-test"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in seen.headers
    expected = {
        "model": MODEL,
        "max_tokens": 64000,  # the catalog's default for this model
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Say hi in Portuguese"}]}
        ],
        "system": [{"type": "text", "text": SYSTEM}],
    }
    assert seen.body == (expected | {"stream": True} if stream else expected)


def test_streamed_pieces_are_relayed_as_recorded(tmp_path):
    with gateway(tmp_path) as (_, gw):
        r = complete(gw, True)
    pieces = [e["text"] for e in payloads(r) if isinstance(e, dict) and e["type"] == "text"]
    assert pieces[:4] == ["Olá! (", "That", "'s \"hi", '" in Portuguese)']
    assert len(pieces) == 12


@pytest.mark.parametrize("stream", [False, True])
def test_cache_reads_and_writes_are_prompt_tokens_priced_apart(tmp_path, stream):
    usage = Usage(prompt=1000, completion=50, cached=600, cache_write=300)
    with gateway(tmp_path) as (fake, gw):
        fake.script(MODEL, Fault.ok(text="Olá de novo!", usage=usage))
        r = complete(gw, stream, maxTokens=100, temperature=0.5)
    text, got = answer(r, stream)
    assert text == "Olá de novo!"
    # 100 fresh x $3 + 600 read x $0.30 + 300 written x $3.75; 50 out x $15 (per 1M)
    assert got == {
        "promptTokens": 1000,
        "completionTokens": 50,
        "totalTokens": 1050,
        "reasoningTokens": 0,
        "costs": costs("0.001605", "0.00075"),
    }
    assert fake.seen[0].body["max_tokens"] == 100
    assert fake.seen[0].body["temperature"] == 0.5


@pytest.mark.parametrize("stream", [False, True])
def test_refusal_before_any_text_is_a_content_policy_outcome(tmp_path, stream):
    with gateway(tmp_path) as (fake, gw):
        fake.script(MODEL, Fault.content_policy())
        r = complete(gw, stream, fallback_models=["demo/echo"])
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "content_policy"
    assert [(a["provider"], a["outcome"]) for a in error["attempts"]] == [
        ("anthropic", "content_policy")
    ]  # not retried, and the chain stops: another model would be asked the same thing
    assert len(fake.seen) == 1


# ---- the codec over loopback, replaying recorded traffic ---------------------------------------


def _without_parallel_flag(body: dict[str, Any]) -> dict[str, Any]:
    """The recorded client sends `disable_parallel_tool_use: false`, the API's default."""
    choice = {k: v for k, v in body["tool_choice"].items() if k != "disable_parallel_tool_use"}
    return body | {"tool_choice": choice}


@pytest.mark.parametrize("stream", [False, True])
async def test_thinking_and_tool_call_replayed(stream):
    case = "thinking-streaming" if stream else "thinking"
    rec = recorded(f"TestAnthropicThinking/claude-sonnet-4/{case}", 0)
    request = chat_request(
        "What's the weather in Florence, Italy?",
        SYSTEM,
        tools=(WEATHER,),
        tool_choice="auto",
        thinking_budget=4000,
        max_tokens=4096,
    )
    with FakeUpstream("anthropic") as fake:
        fake.script(MODEL, replay(rec))
        where = target(fake, "anthropic", MODEL, capabilities=frozenset({"reasoning"}))
        got = await run(AnthropicMessages(), where, request, stream)
    assert fake.seen[0].body == _without_parallel_flag(rec.request)
    assembled = Assembler()
    assembled.add(got)
    assert "".join(assembled.reasoning) == THINKING[stream]  # the recorded thinking, whole
    assert assembled.full_text() == ""
    call_id = "toolu_01Js4AMfx5qpTLhwTusnvT68" if stream else "toolu_014azqsWLU8Djh6RhmBGRC2u"
    arguments = '{"location": "Florence, Italy"}' if stream else '{"location":"Florence, Italy"}'
    assert assembled.tool_calls() == [ToolCall(call_id, "weather", arguments)]
    assert assembled.finish == "tool_calls"
    assert assembled.usage == CanonicalUsage(424, 119 if stream else 118)


THINKING = {  # the recorded thinking of the tool call, plain and streamed
    False: "The user is asking about the weather in Florence, Italy. I have a weather function"
    ' available that takes a location parameter. The user has provided the location as "Florence,'
    ' Italy" which is specific enough for the weather function. I have all the required'
    " parameters to make the function call.",
    True: "The user is asking for weather information for Florence, Italy. I have access to a"
    " weather function that takes a location parameter. The user has provided the location as"
    ' "Florence, Italy" which is specific enough for the weather function. I have all the'
    " required parameters to make the function call.",
}
ANSWERED = {  # the recorded answer to the tool's result, plain and streamed
    False: "The current weather in Florence, Italy is 40°C (104°F). That's quite hot! It would be"
    " a good idea to stay hydrated and seek shade or air conditioning if you're planning to be"
    " outdoors.",
    True: "The current weather in Florence, Italy shows a temperature of 40°C (104°F). That's"
    " quite hot! Make sure to stay hydrated and seek shade if you're planning to be outdoors.",
}


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_result_turn_replayed(stream):
    case = "tool_streaming" if stream else "tool"
    rec = recorded(f"TestAnthropicCommon/claude-sonnet-4/{case}", 1)
    turn = rec.request["messages"][1]["content"]
    call = ToolCall(turn[1]["id"], "weather", '{"location":"Florence,Italy"}')
    request = ChatRequest(
        messages=(
            Message("system", (TextPart(SYSTEM),)),
            Message("user", (TextPart("What's the weather in Florence,Italy?"),)),
            Message("assistant", (TextPart(turn[0]["text"]),), tool_calls=(call,)),
            Message("tool", (TextPart("40 C"),), tool_call_id=call.id),
        ),
        tools=(WEATHER,),
        tool_choice="auto",
        max_tokens=4000,
    )
    with FakeUpstream("anthropic") as fake:
        fake.script(MODEL, replay(rec))
        got = await run(AnthropicMessages(), target(fake, "anthropic", MODEL), request, stream)
    assert fake.seen[0].body == _without_parallel_flag(rec.request)
    assembled = Assembler()
    assembled.add(got)
    assert assembled.full_text() == ANSWERED[stream]
    assert (assembled.finish, assembled.tool_calls()) == ("stop", [])
    assert assembled.usage == (CanonicalUsage(476, 46) if stream else CanonicalUsage(475, 50))


async def test_cache_control_recording_parses():
    rec = recorded("TestAnthropicCommonWithCacheControl/claude-sonnet-4/simple_streaming")
    with FakeUpstream("anthropic") as fake:
        fake.script(MODEL, replay(rec))
        got = await run(
            AnthropicMessages(), target(fake, "anthropic", MODEL), chat_request("hi"), True
        )
    assert got[-2:] == [Finish("stop"), CanonicalUsage(16, 43)]
    assert set(kinds(got[:-2])) == {"TextDelta"}


async def test_recorded_refusal_stream_is_content_policy():
    with FakeUpstream("anthropic") as fake:
        fake.script(MODEL, event_stream(raw("anthropic-sdk-python/refusal_response.txt")))
        with pytest.raises(UpstreamError) as caught:
            await run(
                AnthropicMessages(), target(fake, "anthropic", MODEL), chat_request("hi"), True
            )
    assert caught.value.failure is Failure.CONTENT_POLICY


OVERLOADED_IN_STREAM = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":'
    b'"message","role":"assistant","content":[],"model":"claude-sonnet-4-20250514",'
    b'"usage":{"input_tokens":16,"output_tokens":1}}}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
    b'"message":"Overloaded"}}\n\n'
)


async def test_error_event_after_200_is_classified():
    with FakeUpstream("anthropic") as fake:
        fake.script(MODEL, event_stream(OVERLOADED_IN_STREAM))
        with pytest.raises(UpstreamError) as caught:
            await run(
                AnthropicMessages(), target(fake, "anthropic", MODEL), chat_request("hi"), True
            )
    error = caught.value
    assert (error.failure, error.message, error.retryable) == (
        Failure.OVERLOADED,
        "Overloaded",
        True,
    )


@pytest.mark.parametrize(
    ("fault", "failure", "status", "retry_after"),
    [
        (Fault.overloaded(), Failure.OVERLOADED, 529, None),
        (Fault.rate_limited(retry_after=7), Failure.RATE_LIMITED, 429, 7.0),
        (Fault.invalid_key(), Failure.AUTH, 401, None),
        (Fault.context_length(), Failure.CONTEXT_LENGTH, 400, None),
        (Fault.status(500), Failure.SERVER_ERROR, 500, None),
        (Fault.status(404), Failure.NOT_FOUND, 404, None),
    ],
)
async def test_http_errors_are_classified(fault, failure, status, retry_after):
    with FakeUpstream("anthropic") as fake:
        fake.script(MODEL, fault)
        with pytest.raises(UpstreamError) as caught:
            await run(
                AnthropicMessages(), target(fake, "anthropic", MODEL), chat_request("hi"), False
            )
    error = caught.value
    assert (error.failure, error.status, error.retry_after) == (failure, status, retry_after)


# ---- request translation ----------------------------------------------------------------------


def build(request: ChatRequest, stream: bool = False, **info: Any) -> tuple[dict[str, str], Any]:
    codec = AnthropicMessages()
    where = _target(**info)
    call = codec.build(where, request, stream)
    assert call.url == "https://api.anthropic.test/v1/messages"
    return dict(call.headers), body_of(call.body)


def _target(**info: Any) -> Target:
    """A target without a network: only `build` is exercised."""
    headers = info.pop("headers", {})
    version = info.pop("api_version", None)
    model_info = ModelInfo(**info) if info else None
    provider = Provider(
        name="anthropic",
        protocol="anthropic",
        base_url="https://api.anthropic.test",
        api_version=version,
        headers=headers,
    )
    return Target(provider, MODEL, model_info, "sk-ant")


def test_headers_are_built_once_per_provider():
    codec = AnthropicMessages()
    where = _target(headers={"anthropic-beta": "context-1m-2025-08-07"})
    first = codec.build(where, chat_request("a"), False)
    second = codec.build(where, chat_request("b"), True)
    assert first.headers is second.headers
    assert dict(first.headers) == {
        "Content-Type": "application/json",
        "anthropic-version": "2023-06-01",  # the default when the catalog names none
        "anthropic-beta": "context-1m-2025-08-07",
        "x-api-key": "sk-ant",
    }


def test_system_hoisted_turns_merged_images_and_tool_results():
    png = "data:image/png;base64,iVBORw0KGgo="
    call = ToolCall("call_1+x/y=", "weather", '{"location":"Rome"}')
    request = ChatRequest(
        messages=(
            Message("system", (TextPart("Be brief."),)),
            Message("user", (TextPart("Look:"), ImagePart(png))),
            Message("user", (ImagePart("https://example.com/cat.jpg"), TextPart(""))),
            Message("system", (TextPart("Use tools."),)),
            Message("assistant", (), tool_calls=(call, ToolCall("c2", "time", ""))),
            Message("tool", (TextPart("20 C"),), tool_call_id=call.id),
            Message("tool", (TextPart(""),), tool_call_id="c2"),
            Message("user", (TextPart("Thanks"),)),
        ),
        stop=("END",),
        user="u-42",
    )
    _, body = build(request)
    assert body["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use tools."},
    ]
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1_x_y_",
                    "name": "weather",
                    "input": {"location": "Rome"},
                },
                {"type": "tool_use", "id": "c2", "name": "time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "call_1_x_y_",
                    "content": [{"type": "text", "text": "20 C"}],
                },
                {"type": "tool_result", "tool_use_id": "c2", "content": []},
                {"type": "text", "text": "Thanks"},
            ],
        },
    ]
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-42"}
    assert body["max_tokens"] == 4096  # no catalog entry: the adapter's default


def test_prefill_continues_the_assistant_turn_without_trailing_whitespace():
    request = chat_request("Count to five.", prefill="One, two, ")
    _, body = build(request, max_output_tokens=8192)
    assert body["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "One, two,"}],
    }
    assert body["max_tokens"] == 8192


@pytest.mark.parametrize(
    ("fields", "thinking"),
    [
        ({"thinking_budget": 2000}, {"type": "enabled", "budget_tokens": 2000}),
        ({"reasoning_effort": "low"}, {"type": "enabled", "budget_tokens": 1024}),
        ({"reasoning_effort": "high"}, {"type": "enabled", "budget_tokens": 16384}),
        ({"thinking_budget": 100}, {"type": "enabled", "budget_tokens": 1024}),  # the minimum
        ({"thinking_budget": 9000, "max_tokens": 5000}, {"type": "enabled", "budget_tokens": 4999}),
        ({"thinking_budget": 2000, "max_tokens": 1000}, None),  # no room left to think
        ({"thinking_budget": 2000, "tool_choice": "required", "tools": (WEATHER,)}, None),
        ({"thinking_budget": 2000, "prefill": "Sure"}, None),
        ({}, None),
    ],
)
def test_extended_thinking_when_asked(fields, thinking):
    request = chat_request("Why?", temperature=0.3, top_p=0.9, **fields)
    _, body = build(request, capabilities=frozenset({"reasoning"}), max_output_tokens=64000)
    assert body.get("thinking") == thinking
    assert body["max_tokens"] == fields.get("max_tokens", 64000)
    if thinking:  # thinking requires the default sampling
        assert "temperature" not in body and "top_p" not in body
    else:
        assert (body["temperature"], body["top_p"]) == (0.3, 0.9)


def test_without_a_catalog_limit_max_tokens_makes_room_for_the_budget():
    _, body = build(
        chat_request("Why?", reasoning_effort="high"), capabilities=frozenset({"reasoning"})
    )
    assert (body["max_tokens"], body["thinking"]["budget_tokens"]) == (4096 + 16384, 16384)


def test_no_thinking_for_models_without_the_capability_or_inside_a_tool_loop():
    _, body = build(chat_request("Why?", thinking_budget=2000), capabilities=frozenset({"tools"}))
    assert "thinking" not in body
    call = ToolCall("t1", "weather", "{}")
    loop = ChatRequest(
        messages=(
            Message("user", (TextPart("Weather?"),)),
            Message("assistant", (), tool_calls=(call,)),
            Message("tool", (TextPart("sunny"),), tool_call_id="t1"),
        ),
        thinking_budget=2000,
    )
    _, body = build(loop, capabilities=frozenset({"reasoning"}))
    assert "thinking" not in body


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"name": "weather"}, {"type": "tool", "name": "weather"}),
        (None, None),
    ],
)
def test_tools_and_tool_choice(choice, wire):
    bare = Tool("now")
    _, body = build(chat_request("Weather?", tools=(WEATHER, bare), tool_choice=choice))
    assert body["tools"] == [
        {
            "name": "weather",
            "description": "Get weather information for a location",
            "input_schema": WEATHER.parameters,
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert body.get("tool_choice") == wire


def test_parameters_the_catalog_marks_unsupported_are_not_sent():
    request = chat_request(
        "Hi", temperature=0.2, top_p=0.5, stop=("x",), tools=(WEATHER,), user="u"
    )
    skip = frozenset({"temperature", "top_p", "stop", "tools", "user"})
    _, body = build(request, unsupported_params=skip)
    assert set(body) == {"model", "max_tokens", "messages"}
