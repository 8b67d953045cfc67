"""The Gemini adapter against a loopback fake speaking `generateContent`, replaying recorded
real traffic: exact text, thoughts, tool calls (with their thought signatures), tokens and
costs, plain and streamed (`\\r\\n\\r\\n` frames, no end marker)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from fakes import RECORDED, FakeUpstream, Fault
from fakes.cassettes import recorded
from gateway_harness import Gateway, behind_fake
from kit import PORTUGUESE, ask, payloads
from replay import answer, chat_request, costs, event_stream, replay, run, target
from router.config import ModelInfo, Provider
from router.core.assemble import Assembler
from router.core.types import (
    ChatRequest,
    Finish,
    ImagePart,
    Message,
    Target,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    Usage,
)
from router.errors import Failure, UpstreamError
from router.protocols.gemini import Gemini

MODEL = "gemini-2.5-flash"
PROVIDER = f"""
protocol = "gemini"
base_url = "http://127.0.0.1:9/v1beta"
api_key_env = "GEMINI_API_KEY"

[models."{MODEL}"]
capabilities = ["tools", "reasoning"]
[models."{MODEL}".prices]
input = "0.30"
output = "2.50"
cached_input = "0.03"
reasoning = "3.50"  # not Google's price: set apart so the test shows thoughts priced apart
"""
SYSTEM = "You are a helpful assistant"
WEATHER = Tool(
    "weather",
    "Get weather information for a location",
    {
        "properties": {"location": {"description": "the city", "type": "string"}},
        "required": ["location"],
        "type": "object",
    },
)


def gateway(tmp_path: Path) -> AbstractContextManager[tuple[FakeUpstream, Gateway]]:
    return behind_fake(tmp_path, "gemini", {"google": PROVIDER}, {"GEMINI_API_KEY": "AIza-test"})


def complete(gw: Gateway, stream: bool, **extra: Any) -> httpx.Response:
    return ask(gw, [f"google/{MODEL}"], stream=stream, messages=PORTUGUESE, **extra)


# ---- through the gateway ------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_recorded_answer_text_tokens_costs(tmp_path, stream):
    rec = RECORDED["gemini"]
    with gateway(tmp_path) as (fake, gw):
        r = complete(gw, stream, maxTokens=4000)
    assert r.status_code == 200, r.text
    text, usage = answer(r, stream)
    assert text == "Olá!"
    want = rec.stream_usage if stream else rec.usage
    assert (want.completion, want.reasoning) == ((23, 21) if stream else (26, 24))
    answer_tokens = want.completion - want.reasoning  # candidatesTokenCount: 2
    assert usage == {
        "promptTokens": 11,
        "completionTokens": want.completion,  # candidates + thoughts, as billed
        "totalTokens": 11 + want.completion,
        "reasoningTokens": want.reasoning,
        "costs": costs("3.3e-6", f"{answer_tokens * 2.5 + want.reasoning * 3.5}e-6"),
    }
    seen = fake.seen[0]
    method = "streamGenerateContent" if stream else "generateContent"
    assert seen.path == f"/v1beta/models/{MODEL}:{method}"
    assert seen.query == ({"alt": "sse"} if stream else {})
    assert seen.headers["x-goog-api-key"] == "AIza-test"
    assert "authorization" not in seen.headers
    assert seen.body == {
        "contents": [{"role": "user", "parts": [{"text": "Say hi in Portuguese"}]}],
        "systemInstruction": {"parts": [{"text": SYSTEM}]},
        "generationConfig": {"maxOutputTokens": 4000},
    }


@pytest.mark.parametrize("stream", [False, True])
def test_blocked_prompt_is_a_content_policy_outcome(tmp_path, stream):
    with gateway(tmp_path) as (fake, gw):
        fake.script(MODEL, Fault.content_policy())
        r = complete(gw, stream, fallback_models=["demo/echo"])
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "content_policy"
    assert (
        error["message"] == "Upstream provider error (google): Gemini blocked the prompt (SAFETY)"
    )
    assert [(a["provider"], a["outcome"]) for a in error["attempts"]] == [
        ("google", "content_policy")
    ]
    assert len(fake.seen) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_generated_thoughts_and_text(tmp_path, stream):
    with gateway(tmp_path) as (fake, gw):
        fake.script(
            MODEL,
            Fault.ok(
                text="Bom dia!",
                reasoning="Greet them back",
                usage={
                    "prompt": 40,
                    "completion": 12,
                    "reasoning": 10,
                    "cached": 30,
                },
            ),
        )
        r = complete(gw, stream)
    text, usage = answer(r, stream)
    assert text == "Bom dia!"
    # 10 fresh x $0.30 + 30 cached x $0.03; 2 answer x $2.50 + 10 thought x $3.50 (per 1M)
    assert usage == {
        "promptTokens": 40,
        "completionTokens": 12,
        "totalTokens": 52,
        "reasoningTokens": 10,
        "costs": costs("3.9e-6", "40e-6"),
    }


# ---- the codec over loopback, replaying recorded traffic ---------------------------------------


def _thinking_request() -> ChatRequest:
    return chat_request(
        "What's the weather in Florence, Italy?",
        SYSTEM,
        tools=(WEATHER,),
        tool_choice="auto",
        thinking_budget=128,
    )


@pytest.mark.parametrize("stream", [False, True])
async def test_thinking_and_tool_call_replayed(stream):
    rec = recorded(f"TestGoogleThinking/gemini-2.5-flash/thinking{'-streaming' if stream else ''}")
    with FakeUpstream("gemini") as fake:
        fake.script(MODEL, replay(rec))
        where = target(fake, "gemini", MODEL, capabilities=frozenset({"reasoning"}))
        got = await run(Gemini(), where, _thinking_request(), stream)
    sent = fake.seen[0].body
    for same in ("contents", "generationConfig", "toolConfig"):
        assert sent[same] == rec.request[same]
    assert sent["systemInstruction"] == {"parts": [{"text": SYSTEM}]}
    assert sent["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "weather",
                    "description": "Get weather information for a location",
                    "parametersJsonSchema": WEATHER.parameters,  # JSON Schema, untouched
                }
            ]
        }
    ]
    assembled = Assembler()
    assembled.add(got)
    reply = rec.body.decode()
    thoughts = [p["text"] for p in _parts(reply) if p.get("thought")]
    call = next(p for p in _parts(reply) if "functionCall" in p)
    assert "".join(assembled.reasoning) == "".join(thoughts)
    rid = "zwCzaYWfAbnoz7IPmc_m6Q4" if stream else "zACzaYXlFezjz7IPy5DMqQI"
    assert assembled.tool_calls() == [
        ToolCall(
            f"call_{rid}_0__thought__{call['thoughtSignature']}",
            "weather",
            '{"location":"Florence, Italy"}',
        )
    ]
    assert (assembled.full_text(), assembled.finish) == ("", "tool_calls")
    # candidates + thoughts: 14 + 62 streamed, 15 + 54 plain
    assert assembled.usage == (Usage(54, 76, 62) if stream else Usage(54, 69, 54))


def _parts(body: str) -> list[dict[str, Any]]:
    """Every part of every response in a recorded body (JSON or `data:` lines)."""
    responses = payloads(body) or [msgspec.json.decode(body)]
    return [p for r in responses for c in r["candidates"] for p in c["content"]["parts"]]


@pytest.mark.parametrize("stream", [False, True])
async def test_function_response_turn_sends_the_signature_back(stream):
    case = f"TestGoogleThinking/gemini-2.5-flash/thinking{'-streaming' if stream else ''}"
    first, second = recorded(case, 0), recorded(case, 1)
    with FakeUpstream("gemini") as fake:
        fake.script(MODEL, replay(first), replay(second))
        where = target(fake, "gemini", MODEL, capabilities=frozenset({"reasoning"}))
        turn = Assembler()
        turn.add(await run(Gemini(), where, _thinking_request(), stream))
        [call] = turn.tool_calls()
        follow_up = ChatRequest(
            messages=(
                *_thinking_request().messages,
                Message("assistant", (), tool_calls=(call,)),
                Message("tool", (TextPart("40 C"),), tool_call_id=call.id),
            ),
            tools=(WEATHER,),
            tool_choice="auto",
            thinking_budget=128,
        )
        got = await run(Gemini(), where, follow_up, stream)
    # The recorded client also sends a made-up `"id": "1"` on the call and its response.
    expected = second.request["contents"]
    for part in expected[1]["parts"] + expected[2]["parts"]:
        for value in part.values():
            if isinstance(value, dict):
                value.pop("id")
    assert fake.seen[1].body["contents"] == expected
    answer_text = "".join(e.text for e in got if isinstance(e, TextDelta))
    assert answer_text == "The weather in Florence, Italy is 40 C."
    assert got[-2:] == [Finish("stop"), Usage(146, 12) if stream else Usage(84, 12)]


async def test_recorded_tool_call_without_thinking():
    rec = recorded("TestGoogleCommon/gemini-2.5-flash/tool_streaming", 0)
    request = chat_request(
        "What's the weather in Florence,Italy?", SYSTEM, tools=(WEATHER,), max_tokens=4000
    )
    with FakeUpstream("gemini") as fake:
        fake.script(MODEL, replay(rec))
        got = await run(Gemini(), target(fake, "gemini", MODEL), request, True)
    assert fake.seen[0].body["generationConfig"] == {"maxOutputTokens": 4000}
    assert "toolConfig" not in fake.seen[0].body
    assert [type(e).__name__ for e in got] == ["ToolCallDelta", "Finish", "Usage"]
    assert got[0].name == "weather" and got[0].arguments == '{"location":"Florence,Italy"}'
    assert got[1:] == [Finish("tool_calls"), Usage(54, 58, 43)]


SAFETY_AFTER_TEXT = (
    b'data: {"candidates": [{"content": {"parts": [{"text": "Once upon"}],"role": "model"},'
    b'"index": 0}]}\r\n\r\n'
    b'data: {"candidates": [{"content": {"parts": [],"role": "model"},"finishReason": "SAFETY",'
    b'"index": 0}],"usageMetadata": {"promptTokenCount": 5,"candidatesTokenCount": 2,'
    b'"totalTokenCount": 7}}\r\n\r\n'
)
SAFETY_FIRST = b'data: {"candidates": [{"finishReason": "SAFETY","index": 0}]}\r\n\r\n'


async def test_safety_stop_after_text_is_a_content_filter_finish():
    with FakeUpstream("gemini") as fake:
        fake.script(MODEL, event_stream(SAFETY_AFTER_TEXT))
        got = await run(Gemini(), target(fake, "gemini", MODEL), chat_request("story"), True)
    assert got == [TextDelta("Once upon"), Finish("content_filter"), Usage(5, 2)]


async def test_safety_stop_before_any_text_is_content_policy():
    with FakeUpstream("gemini") as fake:
        fake.script(MODEL, event_stream(SAFETY_FIRST))
        with pytest.raises(UpstreamError) as caught:
            await run(Gemini(), target(fake, "gemini", MODEL), chat_request("story"), True)
    assert caught.value.failure is Failure.CONTENT_POLICY


QUOTA = {
    "code": 429,
    "message": "Resource has been exhausted (e.g. check quota).",
    "status": "RESOURCE_EXHAUSTED",
    "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}],
}


@pytest.mark.parametrize(
    ("fault", "failure", "status", "retry_after"),
    [
        (Fault.invalid_key(), Failure.AUTH, 400, None),  # a bad key is a 400 for Gemini
        (Fault.rate_limited(retry_delay=13), Failure.RATE_LIMITED, 429, 13.0),
        (Fault.rate_limited(retry_delay=1.5), Failure.RATE_LIMITED, 429, 1.5),
        (Fault.rate_limited(retry_after=4), Failure.RATE_LIMITED, 429, 4.0),
        (Fault.status(429, [{"error": QUOTA}]), Failure.RATE_LIMITED, 429, 2.0),
        (Fault.context_length(), Failure.CONTEXT_LENGTH, 400, None),
        (Fault.overloaded(), Failure.OVERLOADED, 503, None),
        (Fault.status(500), Failure.SERVER_ERROR, 500, None),
        (Fault.status(403), Failure.AUTH, 403, None),
        (Fault.status(404), Failure.NOT_FOUND, 404, None),
    ],
)
async def test_http_errors_are_classified(fault, failure, status, retry_after):
    with FakeUpstream("gemini") as fake:
        fake.script(MODEL, fault)
        with pytest.raises(UpstreamError) as caught:
            await run(Gemini(), target(fake, "gemini", MODEL), chat_request("hi"), False)
    error = caught.value
    assert (error.failure, error.status, error.retry_after) == (failure, status, retry_after)


async def test_error_inside_a_stream_is_classified():
    body = (
        b'data: {"error": {"code": 503, "message": "Overloaded", "status": "UNAVAILABLE"}}\r\n\r\n'
    )
    with FakeUpstream("gemini") as fake:
        fake.script(MODEL, event_stream(body))
        with pytest.raises(UpstreamError) as caught:
            await run(Gemini(), target(fake, "gemini", MODEL), chat_request("hi"), True)
    assert caught.value.failure is Failure.SERVER_ERROR and caught.value.retryable


# ---- request translation ----------------------------------------------------------------------


def _target(**info: Any) -> Target:
    model_info = ModelInfo(**info) if info else None
    provider = Provider(name="google", protocol="gemini", base_url="https://g.test/v1beta")
    return Target(provider, MODEL, model_info, "AIza")


def build(request: ChatRequest, stream: bool = False, **info: Any) -> Any:
    call = Gemini().build(_target(**info), request, stream)
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    assert call.url == f"https://g.test/v1beta/models/{MODEL}:{method}"
    return msgspec.json.decode(call.body)


def test_headers_are_built_once_per_provider():
    codec = Gemini()
    first = codec.build(_target(), chat_request("a"), False)
    second = codec.build(_target(), chat_request("b"), True)
    assert first.headers is second.headers
    assert dict(first.headers) == {"Content-Type": "application/json", "x-goog-api-key": "AIza"}


def test_tool_results_carry_the_function_name_and_share_one_turn():
    calls = (ToolCall("a1", "weather", '{"location":"Rome"}'), ToolCall("b2", "clock", ""))
    request = ChatRequest(
        messages=(
            Message("user", (TextPart("Weather and time in Rome?"),)),
            Message("assistant", (TextPart("Checking."),), tool_calls=calls),
            Message("tool", (TextPart('{"celsius": 20}'),), tool_call_id="a1"),
            Message("tool", (TextPart("12:00"),), tool_call_id="b2"),
            Message("user", (TextPart("And tomorrow?"),)),
        )
    )
    assert build(request)["contents"] == [
        {"role": "user", "parts": [{"text": "Weather and time in Rome?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Checking."},
                {"functionCall": {"name": "weather", "args": {"location": "Rome"}}},
                {"functionCall": {"name": "clock", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "weather", "response": {"celsius": 20}}},
                {"functionResponse": {"name": "clock", "response": {"result": "12:00"}}},
                {"text": "And tomorrow?"},
            ],
        },
    ]


def test_images_system_and_prefill():
    request = ChatRequest(
        messages=(
            Message("system", (TextPart("Describe briefly."),)),
            Message(
                "user",
                (
                    ImagePart("data:image/webp;base64,UklGRg=="),
                    ImagePart("https://example.com/a/cat.png?size=2"),
                    TextPart("What is this?"),
                ),
            ),
        ),
        prefill="It is a",
    )
    body = build(request)
    assert body["systemInstruction"] == {"parts": [{"text": "Describe briefly."}]}
    assert body["contents"] == [
        {
            "role": "user",
            "parts": [
                {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
                {
                    "fileData": {
                        "mimeType": "image/png",
                        "fileUri": "https://example.com/a/cat.png?size=2",
                    }
                },
                {"text": "What is this?"},
            ],
        },
        {"role": "model", "parts": [{"text": "It is a"}]},
    ]
    assert "generationConfig" not in body


def test_generation_config_and_json_schema():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    request = chat_request(
        "Pick a number",
        max_tokens=50,
        temperature=0.4,
        top_p=0.8,
        stop=("\n\n", "END"),
        seed=7,
        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
    )
    assert build(request)["generationConfig"] == {
        "maxOutputTokens": 50,
        "temperature": 0.4,
        "topP": 0.8,
        "stopSequences": ["\n\n", "END"],
        "seed": 7,
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    skip = frozenset({"temperature", "top_p", "seed", "stop", "response_format", "max_tokens"})
    assert "generationConfig" not in build(request, unsupported_params=skip)


@pytest.mark.parametrize(
    ("fields", "thinking"),
    [
        ({"thinking_budget": 2048}, {"thinkingBudget": 2048, "includeThoughts": True}),
        ({"reasoning_effort": "low"}, {"thinkingBudget": 1024, "includeThoughts": True}),
        ({"reasoning_effort": "high"}, {"thinkingBudget": 24576, "includeThoughts": True}),
        ({"reasoning_effort": "none"}, {"thinkingBudget": 0}),
        ({}, None),
    ],
)
def test_thinking_when_asked(fields, thinking):
    body = build(chat_request("Why?", **fields), capabilities=frozenset({"reasoning"}))
    assert body.get("generationConfig", {}).get("thinkingConfig") == thinking
    plain = build(chat_request("Why?", **fields), capabilities=frozenset({"vision"}))
    assert "generationConfig" not in plain  # a model that does not think is not asked to


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        ({"name": "weather"}, {"mode": "ANY", "allowedFunctionNames": ["weather"]}),
    ],
)
def test_tool_choice(choice, config):
    body = build(chat_request("Weather?", tools=(WEATHER, Tool("now")), tool_choice=choice))
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "weather",
                    "description": WEATHER.description,
                    "parametersJsonSchema": WEATHER.parameters,
                },
                {"name": "now"},
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": config}
