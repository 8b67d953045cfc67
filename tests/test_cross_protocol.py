"""One request, three wire protocols: Anthropic (overloaded) -> Gemini (429 with a RetryInfo
delay) -> OpenAI (success), plain and streamed, through `/api/v1/completions`, with the attempt
trail, the retry gaps and every upstream's native request asserted. And one tool conversation
through the OpenAI-compatible surface whose turns are served by different protocols."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from fakes import FakeUpstream, Fault
from fakes.cassettes import recorded
from gateway_harness import MASTER_KEY, Gateway, running_gateway, write_config
from kit import attempts, post
from replay import answer, costs, event_stream, replay

CLAUDE, GEMINI, GPT = "claude-sonnet-4-20250514", "gemini-2.5-flash", "gpt-4o"
PROVIDERS = {
    "anthropic": f"""
protocol = "anthropic"
base_url = "http://127.0.0.1:9"
api_key_env = "ANTHROPIC_API_KEY"
[models."{CLAUDE}"]
max_output_tokens = 64000
prices = {{ input = "3.00", output = "15.00" }}
""",
    "google": f"""
protocol = "gemini"
base_url = "http://127.0.0.1:9/v1beta"
api_key_env = "GEMINI_API_KEY"
[models."{GEMINI}"]
prices = {{ input = "0.30", output = "2.50" }}
""",
    "openai": f"""
protocol = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "OPENAI_API_KEY"
[models."{GPT}"]
prices = {{ input = "2.50", output = "10.00", cached_input = "1.25" }}
""",
}
ANSWER = "Olá! Tudo bem?"
OVERLOADED_IN_STREAM = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":'
    b'"message","role":"assistant","content":[],"model":"claude-sonnet-4-20250514",'
    b'"usage":{"input_tokens":9,"output_tokens":1}}}\n\n'
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
    b'"message":"Overloaded"}}\n\n'
)


class Fakes:
    def __init__(self, stack: ExitStack) -> None:
        self.anthropic = stack.enter_context(FakeUpstream("anthropic"))
        self.gemini = stack.enter_context(FakeUpstream("gemini"))
        self.openai = stack.enter_context(FakeUpstream("openai"))


@contextmanager
def chain(tmp_path: Path) -> Iterator[tuple[Fakes, Gateway]]:
    with ExitStack() as stack:
        fakes = Fakes(stack)
        env = {
            "ANTHROPIC_API_KEY": "sk-ant",
            "ANTHROPIC_BASE_URL": fakes.anthropic.url,
            "GEMINI_API_KEY": "AIza",
            "GOOGLE_BASE_URL": fakes.gemini.url,
            "OPENAI_API_KEY": "sk-oai",
            "OPENAI_BASE_URL": fakes.openai.url,
        }
        config = write_config(tmp_path, providers=PROVIDERS)
        yield fakes, stack.enter_context(running_gateway(config, env))


def ask(gw: Gateway, stream: bool, **extra: Any) -> httpx.Response:
    body = {
        "messages": [
            {"role": "system", "content": "Answer in Portuguese."},
            {"role": "user", "content": "Say hi"},
        ],
        "models": [f"anthropic/{CLAUDE}"],
        "fallback_models": [f"google/{GEMINI}", f"openai/{GPT}"],
        "stream": stream,
        "maxRetries": 1,
        **extra,
    }
    return post(gw, "/api/v1/completions", body)


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_overloaded_then_gemini_rate_limited_then_openai(tmp_path, stream):
    with chain(tmp_path) as (fakes, gw):
        if stream:  # the first failure is an `error` event after the 200 has started
            fakes.anthropic.script(CLAUDE, event_stream(OVERLOADED_IN_STREAM))
        fakes.anthropic.always(CLAUDE, Fault.overloaded())
        fakes.gemini.always(GEMINI, Fault.rate_limited(retry_delay=0.4))
        fakes.openai.script(GPT, Fault.ok(text=ANSWER, usage={"prompt": 12, "completion": 5}))
        r = ask(gw, stream)
    assert r.status_code == 200, r.text
    assert attempts(r) == [
        (f"anthropic/{CLAUDE}", "overloaded", "529"),
        (f"anthropic/{CLAUDE}", "overloaded", "529"),
        (f"google/{GEMINI}", "rate_limited", "429"),
        (f"google/{GEMINI}", "rate_limited", "429"),
        (f"openai/{GPT}", "ok", "200"),
    ]
    text, usage = answer(r, stream)
    assert text == ANSWER
    assert usage == {
        "promptTokens": 12,
        "completionTokens": 5,
        "totalTokens": 17,
        "reasoningTokens": 0,
        "costs": costs("30e-6", "50e-6"),
    }
    if not stream:
        assert (r.json()["provider"], r.json()["model"]) == ("openai", GPT)
    # Gemini's RetryInfo.retryDelay (0.4 s) was honoured like Retry-After before its retry:
    # the gateway reports the wait it asked its sleep for (exact waits: test_gateway_direct).
    gemini_retry = r.headers["x-router-attempts"].split(", ")[3]
    assert gemini_retry.endswith(" after 400ms"), gemini_retry
    outcomes = [s.outcome for s in fakes.anthropic.seen]
    assert outcomes == (["status", "overloaded"] if stream else ["overloaded", "overloaded"])
    _assert_native_requests(fakes, stream)


def _assert_native_requests(fakes: Fakes, stream: bool) -> None:
    claude = fakes.anthropic.seen[0]
    assert (claude.path, claude.headers["x-api-key"]) == ("/v1/messages", "sk-ant")
    assert claude.body["system"] == [{"type": "text", "text": "Answer in Portuguese."}]
    assert claude.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Say hi"}]}
    ]
    gemini = fakes.gemini.seen[0]
    method = "streamGenerateContent" if stream else "generateContent"
    assert (gemini.path, gemini.headers["x-goog-api-key"]) == (
        f"/v1beta/models/{GEMINI}:{method}",
        "AIza",
    )
    assert gemini.body == {
        "contents": [{"role": "user", "parts": [{"text": "Say hi"}]}],
        "systemInstruction": {"parts": [{"text": "Answer in Portuguese."}]},
    }
    gpt = fakes.openai.seen[0]
    assert (gpt.path, gpt.headers["authorization"]) == ("/v1/chat/completions", "Bearer sk-oai")
    assert gpt.body["messages"] == [
        {"role": "system", "content": "Answer in Portuguese."},
        {"role": "user", "content": "Say hi"},
    ]


def test_a_retry_delay_beyond_the_cap_fails_over_at_once(tmp_path):
    with chain(tmp_path) as (fakes, gw):
        fakes.anthropic.always(CLAUDE, Fault.invalid_key())
        fakes.gemini.always(GEMINI, Fault.rate_limited(retry_delay=60))
        fakes.openai.script(GPT, Fault.ok(text=ANSWER))
        r = ask(gw, False)
    assert r.status_code == 200
    assert attempts(r) == [
        (f"anthropic/{CLAUDE}", "auth_error", "401"),  # not retried
        (f"google/{GEMINI}", "rate_limited", "429"),  # told to wait 60 s, past the cap: next
        (f"openai/{GPT}", "ok", "200"),
    ]


def test_gemini_invalid_key_is_an_auth_failure_and_the_chain_moves_on(tmp_path):
    with chain(tmp_path) as (fakes, gw):
        fakes.anthropic.always(CLAUDE, Fault.overloaded())
        fakes.gemini.always(GEMINI, Fault.invalid_key())
        fakes.openai.always(GPT, Fault.status(500))
        r = ask(gw, True, maxRetries=0)
    assert r.status_code == 502
    error = r.json()["error"]
    assert [(a["provider"], a["outcome"], a["status"]) for a in error["attempts"]] == [
        ("anthropic", "overloaded", 529),
        ("google", "auth_error", 400),  # Gemini says 400 INVALID_ARGUMENT / API_KEY_INVALID
        ("openai", "server_error", 500),
    ]


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Get weather information for a location",
        "parameters": {
            "properties": {"location": {"description": "the city", "type": "string"}},
            "required": ["location"],
            "type": "object",
        },
    },
}


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_by_claude_answered_by_gemini_through_the_openai_surface(tmp_path, stream):
    """Claude asks for the tool (recorded), the client runs it, Gemini reads the result
    (recorded): the function name Gemini needs is found from the earlier call's id."""
    claude_case = f"TestAnthropicCommon/claude-sonnet-4/tool{'_streaming' if stream else ''}"
    question = [
        {"role": "system", "content": "You are a helpful assistant"},
        {"role": "user", "content": "What's the weather in Florence,Italy?"},
    ]
    with chain(tmp_path) as (fakes, gw), sdk(gw) as client:
        fakes.anthropic.script(CLAUDE, replay(recorded(claude_case, 0)))
        fakes.gemini.script(GEMINI, replay(recorded("TestGoogleCommon/gemini-2.5-flash/tool", 1)))
        text, calls, finish = _ask_tools(client, f"anthropic/{CLAUDE}", question, stream)
        assert finish == "tool_calls"
        assert [c["function"]["name"] for c in calls] == ["weather"]
        follow_up = [
            *question,
            {"role": "assistant", "content": text, "tool_calls": calls},
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "40 C"},
        ]
        final = client.chat.completions.create(
            model=f"google/{GEMINI}", messages=follow_up, tools=[WEATHER_TOOL]
        )
    assert final.choices[0].message.content == "The weather in Florence, Italy is 40 C."
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (84, 12)
    claude_sent = fakes.anthropic.seen[0].body
    assert claude_sent["tools"][0]["input_schema"] == WEATHER_TOOL["function"]["parameters"]
    gemini_sent = fakes.gemini.seen[0].body["contents"]
    assert gemini_sent[1:] == [
        {
            "role": "model",
            "parts": [
                {"text": text},
                {"functionCall": {"name": "weather", "args": {"location": "Florence,Italy"}}},
            ],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "weather", "response": {"result": "40 C"}}}],
        },
    ]


def sdk(gw: Gateway) -> OpenAI:
    """The official SDK against the gateway, with its own retries off."""
    return OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0)


def _ask_tools(
    client: OpenAI, model: str, messages: list[dict[str, Any]], stream: bool
) -> tuple[str, list[dict[str, Any]], str | None]:
    """(text, tool calls as the client sends them back, finish reason) of one answer."""
    if not stream:
        response = client.chat.completions.create(
            model=model, messages=messages, tools=[WEATHER_TOOL]
        )
        message = response.choices[0].message
        calls = [c.model_dump(exclude_none=True) for c in message.tool_calls or ()]
        return message.content or "", calls, response.choices[0].finish_reason
    chunks = [
        c
        for c in client.chat.completions.create(
            model=model, messages=messages, tools=[WEATHER_TOOL], stream=True
        )
        if c.choices
    ]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    pieces = [t for c in chunks for t in c.choices[0].delta.tool_calls or ()]
    call = {
        "id": pieces[0].id,
        "type": "function",
        "function": {
            "name": pieces[0].function.name,
            "arguments": "".join(p.function.arguments or "" for p in pieces),
        },
    }
    return text, [call], chunks[-1].choices[0].finish_reason


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("fault", "outcome"),
    [(Fault.cut(0), "stream_cut"), (Fault.malformed(0), "malformed_response")],
)
@pytest.mark.parametrize("provider", ["anthropic", "google"])
def test_broken_native_answers_are_retried(tmp_path, provider, fault, outcome, stream):
    """Cut or garbled before any content (a plain answer: half its body), each dialect's
    decoder reports it and the same target is asked again, invisibly to the client."""
    model = CLAUDE if provider == "anthropic" else GEMINI
    with chain(tmp_path) as (fakes, gw):
        fake = fakes.anthropic if provider == "anthropic" else fakes.gemini
        fake.script(model, fault, Fault.ok(text=ANSWER, chunks=3))
        r = ask(gw, stream, models=[f"{provider}/{model}"], fallback_models=[])
    assert r.status_code == 200, r.text
    assert answer(r, stream)[0] == ANSWER
    target = f"{provider}/{model}"
    assert attempts(r) == [(target, outcome, "-"), (target, "ok", "200")]
