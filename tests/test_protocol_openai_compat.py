"""OpenAI-compatible providers (one TOML file each, no code) replaying their recorded real
traffic through the gateway: Groq, xAI, llama.cpp and OpenRouter, each with its quirks
(xAI's reasoning outside `completion_tokens`, OpenRouter's processing comments and leading
blank lines, llama.cpp's `reasoning_content`); and OpenAI tool calls, both turns."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import msgspec
import pytest

from fakes import FakeUpstream
from fakes.cassettes import recorded
from gateway_harness import Gateway, behind_fake
from kit import post
from replay import answer, chat_request, costs, event_stream, replay, run, target
from router.config import Provider, Timeouts
from router.core.assemble import Assembler
from router.core.types import (
    ChatRequest,
    Message,
    Target,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    Usage,
)
from router.errors import Failure, UpstreamError
from router.protocols.backend import HttpBackend
from router.protocols.openai_chat import OpenAIChat
from router.upstream import Upstream

PROVIDERS = {
    "groq": """
protocol = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "GROQ_API_KEY"
[models."moonshotai/kimi-k2-instruct-0905"]
prices = { input = "1.00", output = "3.00" }
""",
    "xai": """
protocol = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "XAI_API_KEY"
[models."grok-4-fast"]
capabilities = ["reasoning"]
prices = { input = "0.20", output = "0.50", cached_input = "0.05" }
""",
    "llamacpp": """
protocol = "openai"
base_url = "http://127.0.0.1:9/v1"
[models."openai/gpt-oss-20b"]
prices = { input = "0", output = "0" }
""",
    "openrouter": """
protocol = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "OPENROUTER_API_KEY"
[models."anthropic/claude-haiku-4.5"]
prices = { input = "1.00", output = "5.00", cached_input = "0.10", cache_write = "1.25" }
""",
}
HI = "Say hi in Portuguese"

# provider, model, cassette, text, (prompt, completion, reasoning, cached), (input, output) cost
CASES = [
    ("groq", "moonshotai/kimi-k2-instruct-0905", "TestOpenAICompatibleCommon/groq-kimi-k2/simple",
     "Olá!", (20, 4, 0, 0), ("20e-6", "12e-6")),
    ("groq", "moonshotai/kimi-k2-instruct-0905",
     "TestOpenAICompatibleCommon/groq-kimi-k2/simple_streaming",
     "Olá!", (20, 4, 0, 0), ("20e-6", "12e-6")),
    # xAI: completion_tokens 2 + reasoning 125 outside it; 9 fresh + 156 cached prompt tokens
    ("xai", "grok-4-fast", "TestOpenAICompatibleCommon/xai-grok-4-fast/simple",
     "Olá!", (165, 127, 125, 156), ("9.6e-6", "63.5e-6")),
    ("xai", "grok-4-fast", "TestOpenAICompatibleCommon/xai-grok-4-fast/simple_streaming",
     "Olá!", (165, 131, 129, 164), ("8.4e-6", "65.5e-6")),
    ("llamacpp", "openai/gpt-oss-20b", "TestOpenAICompatibleCommon/llama-cpp-gpt-oss/simple",
     "Olá!", (84, 47, 0, 0), ("0", "0")),
    ("llamacpp", "openai/gpt-oss-20b",
     "TestOpenAICompatibleCommon/llama-cpp-gpt-oss/simple_streaming",
     "Olá!", (84, 57, 0, 0), ("0", "0")),
    ("openrouter", "anthropic/claude-haiku-4.5", "TestOpenRouterCommon/anthropic/simple",
     "Olá! 👋\n\nHow can I help you today?", (16, 18, 0, 0), ("16e-6", "90e-6")),
    ("openrouter", "anthropic/claude-haiku-4.5", "TestOpenRouterCommon/anthropic/simple_streaming",
     "Olá! 👋\n\nHow can I help you today?", (16, 18, 0, 0), ("16e-6", "90e-6")),
]  # fmt: skip


def gateway(tmp_path: Path) -> AbstractContextManager[tuple[FakeUpstream, Gateway]]:
    keys = {"GROQ_API_KEY": "gsk", "XAI_API_KEY": "xai", "OPENROUTER_API_KEY": "or"}
    return behind_fake(tmp_path, "openai", PROVIDERS, keys)


@pytest.mark.parametrize(("provider", "model", "case", "text", "tokens", "cost"), CASES)
def test_recorded_answers_text_tokens_costs(tmp_path, provider, model, case, text, tokens, cost):
    stream = case.endswith("_streaming")
    rec = recorded(case)
    with gateway(tmp_path) as (fake, gw):
        fake.script(model, replay(rec))
        body = {
            "messages": [
                {"role": "system", "content": "You are a helpful assistant"},
                {"role": "user", "content": HI},
            ],
            "models": [f"{provider}/{model}"],
            "stream": stream,
            "maxTokens": 4000,
        }
        r = post(gw, "/api/v1/completions", body)
    assert r.status_code == 200, r.text
    got_text, usage = answer(r, stream)
    prompt, completion, reasoning, _ = tokens
    assert got_text == text
    assert usage == {
        "promptTokens": prompt,
        "completionTokens": completion,
        "totalTokens": prompt + completion,
        "reasoningTokens": reasoning,
        "costs": costs(*cost),
    }
    assert fake.seen[0].body["messages"] == rec.request["messages"]


WEATHER = Tool(
    "weather",
    "Get weather information for a location",
    {
        "properties": {"location": {"description": "the city", "type": "string"}},
        "required": ["location"],
        "type": "object",
    },
)


def _tools_request(*later: Message) -> ChatRequest:
    question = chat_request("What's the weather in Florence,Italy?", "You are a helpful assistant")
    return ChatRequest(
        messages=(*question.messages, *later), tools=(WEATHER,), tool_choice="auto", max_tokens=4000
    )


def _without_strict(body: dict) -> dict:
    """The recorded client also sends `strict: false`, OpenAI's default."""
    tools = [
        {**t, "function": {k: v for k, v in t["function"].items() if k != "strict"}}
        for t in body["tools"]
    ]
    return body | {"tools": tools}


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_tool_call_both_turns(stream):
    case = f"TestOpenAICommon/openai-gpt-4o-mini/tool{'_streaming' if stream else ''}"
    first, second = recorded(case, 0), recorded(case, 1)
    with FakeUpstream("openai") as fake:
        fake.script("gpt-4o-mini", replay(first), replay(second))
        where = target(fake, "openai", "gpt-4o-mini")
        turn = Assembler()
        turn.add(await run(OpenAIChat(), where, _tools_request(), stream))
        [call] = turn.tool_calls()
        where_ = "Florence,Italy" if stream else "Florence, Italy"
        assert (call.name, call.arguments) == ("weather", f'{{"location":"{where_}"}}')
        recorded_id = "call_qLFv8oQOs68qRuEVmG8TuEJp" if stream else "call_15X0Q2MmkK1IeFfiol9LFlqb"
        assert (call.id, turn.finish) == (recorded_id, "tool_calls")
        reply = Assembler()
        follow_up = _tools_request(
            Message("assistant", (), tool_calls=(call,)),
            Message("tool", (TextPart("40 C"),), tool_call_id=call.id),
        )
        reply.add(await run(OpenAIChat(), where, follow_up, stream))
    extra = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    assert fake.seen[0].body == _without_strict(first.request) | extra
    assert fake.seen[1].body == _without_strict(second.request) | extra
    said = "temperature" if stream else "weather"
    assert (reply.full_text(), reply.finish) == (
        f"The current {said} in Florence, Italy is 40°C.",
        "stop",
    )


async def test_xai_reasoning_and_tool_call():
    rec = recorded("TestOpenAICompatibleThinking/xai-grok-3-mini/thinking", 0)
    with FakeUpstream("openai") as fake:
        fake.script("grok-3-mini", replay(rec))
        request = chat_request(
            "What's the weather in Florence, Italy?", reasoning_effort="high", tools=(WEATHER,)
        )
        turn = Assembler()
        turn.add(await run(OpenAIChat(), target(fake, "openai", "grok-3-mini"), request, False))
    assert fake.seen[0].body["reasoning_effort"] == "high"
    thought = msgspec.json.decode(rec.body)["choices"][0]["message"]["reasoning_content"]
    assert "".join(turn.reasoning) == thought  # the recorded reasoning, whole
    assert turn.tool_calls() == [
        ToolCall("call_27480597", "weather", '{"location":"Florence, Italy"}')
    ]
    # completion_tokens 27 + reasoning_tokens 350 (xAI reports them apart); 7 cached
    assert turn.usage == Usage(288, 377, 350, 7)


def test_tool_call_ids_over_40_characters_are_shortened_consistently():
    """A Gemini call id carries its thought signature; OpenAI accepts at most 40 characters."""
    long_id = "call_r1_0__thought__" + "CiQBvj72+y6VX8BA4jMLQJOJvw/XWxadOcgaygxn=" * 3
    request = _tools_request(
        Message("assistant", (), tool_calls=(ToolCall(long_id, "weather", "{}"),)),
        Message("tool", (TextPart("40 C"),), tool_call_id=long_id),
    )
    provider = Provider(name="openai", protocol="openai", base_url="https://o.test/v1")
    call = OpenAIChat().build(Target(provider, "gpt-4o", None, "k"), request, False)
    sent = msgspec.json.decode(call.body)["messages"]
    short = sent[2]["tool_calls"][0]["id"]
    assert sent[3]["tool_call_id"] == short
    # a digest of the long id: the same in every process, so a conversation replays alike
    assert short == "call_3cea74f7b33d9aec7e940d9ee72f3001"


async def test_text_in_the_same_read_as_an_in_stream_error_still_comes_first():
    """An upstream that writes a text chunk and an in-band error together: the text is relayed
    (and so billed and rescuable) before the error is raised, not dropped with the read."""
    body = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
        b'"choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}\n\n'
        b'data: {"error":{"message":"the server had an error","type":"server_error"}}\n\n'
    )
    with FakeUpstream("openai") as fake:
        fake.script("gpt-4o-mini", event_stream(body))  # one write: one read in the gateway
        where = target(fake, "openai", "gpt-4o-mini")
        upstream = Upstream.create(Timeouts(first_token=5, stream_idle=5, response=5))
        got: list[object] = []
        try:
            with pytest.raises(UpstreamError) as raised:
                async for batch in HttpBackend(OpenAIChat(), upstream).stream(
                    where, chat_request("hi"), 5
                ):
                    got.extend(batch)
        finally:
            await upstream.close()
    assert [e.text for e in got if isinstance(e, TextDelta)] == ["Hello"]
    assert raised.value.failure is Failure.SERVER_ERROR
