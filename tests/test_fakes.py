"""The fake upstreams themselves: exact wire output per protocol, fault behaviour, scripting.

Each test drives a real `FakeUpstream` over loopback with a plain aiohttp client, so the
gateway's tests can trust what the fakes send.
"""

from __future__ import annotations

import asyncio
import base64
import re
import struct
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
import yaml
from multidict import CIMultiDict

from fakes import RECORDED, FakeUpstream, Fault, Usage

CHAT = {"openai": "/chat/completions", "azure": "/v1/chat/completions", "anthropic": "/v1/messages"}
RECORDINGS = Path(__file__).parent / "fakes" / "recorded"


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[FakeUpstream]:
    with FakeUpstream(getattr(request, "param", "openai")) as upstream:
        yield upstream


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


def chat_url(fake: FakeUpstream, model: str, stream: bool = False) -> str:
    if fake.protocol == "gemini":
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{fake.url}/models/{model}:{action}"
    return fake.url + CHAT[fake.protocol]


async def post(
    http: aiohttp.ClientSession,
    fake: FakeUpstream,
    model: str = "m1",
    stream: bool = False,
    **extra: Any,
) -> tuple[int, CIMultiDict[str], bytes]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if stream and fake.protocol != "gemini":
        body["stream"] = True
    async with http.post(chat_url(fake, model, stream), json=body | extra) as response:
        return response.status, CIMultiDict(response.headers), await response.read()


def events(raw: bytes, sep: bytes = b"\n\n") -> list[bytes]:
    return [e for e in raw.split(sep) if e]


def sse_json(raw: bytes, sep: bytes = b"\n\n") -> list[Any]:
    return [
        msgspec.json.decode(e.split(b"data: ", 1)[1])
        for e in events(raw, sep)
        if e != b"data: [DONE]"
    ]


def recorded_body(folder: str, case: str) -> str:
    data = yaml.safe_load((RECORDINGS / folder / f"{case}.yaml").read_text(encoding="utf-8"))
    return str(data["interactions"][0]["response"]["body"])


def swapped(text: str, old: str, new: str) -> str:
    return re.sub(
        r'("model(?:Version)?"\s*:\s*)"' + re.escape(old) + '"', lambda m: f'{m[1]}"{new}"', text
    )


# -- recorded default replies ------------------------------------------------------------------


@pytest.mark.parametrize("fake", ["openai", "anthropic", "gemini", "azure"], indirect=True)
async def test_default_replies_are_the_recordings_with_the_requested_model(fake, http):
    rec = RECORDED[fake.protocol]
    _, _, body = await post(http, fake, "my-model")
    assert body.decode() == swapped(recorded_body(rec.folder, "simple"), rec.model, "my-model")
    _, headers, raw = await post(
        http, fake, "my-model", stream=True, stream_options={"include_usage": True}
    )
    assert raw.decode() == swapped(
        recorded_body(rec.folder, "simple_streaming"), rec.model, "my-model"
    )
    assert headers["Content-Type"].startswith("text/event-stream")


async def test_openai_default_stream_has_usage_only_when_asked(fake, http):
    _, _, raw = await post(http, fake, "gpt-4o", stream=True)
    chunks = sse_json(raw)
    assert all("usage" not in c and c["choices"] for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Olá!"
    assert raw.endswith(b"data: [DONE]\n\n")


async def test_default_texts_and_usages_are_stated(http):
    with FakeUpstream("anthropic") as fake:
        _, _, raw = await post(http, fake, stream=True)
    deltas = [e["delta"] for e in sse_json(raw) if e["type"] == "content_block_delta"]
    assert "".join(d["text"] for d in deltas) == RECORDED["anthropic"].stream_text
    assert (
        sse_json(raw)[-2]["usage"]["output_tokens"] == RECORDED["anthropic"].stream_usage.completion
    )
    with FakeUpstream("gemini") as fake:
        _, _, body = await post(http, fake, "g")
    meta = msgspec.json.decode(body)["usageMetadata"]
    usage = RECORDED["gemini"].usage
    assert (meta["promptTokenCount"], meta["thoughtsTokenCount"]) == (usage.prompt, usage.reasoning)
    assert meta["candidatesTokenCount"] == usage.completion - usage.reasoning


# -- generated replies -------------------------------------------------------------------------


async def test_openai_generated_stream_framing(fake, http):
    fake.script(
        "gpt-4o",
        Fault.ok(
            "Hello brave new world",
            usage={"prompt": 7, "completion": 6, "cached": 3, "reasoning": 2},
            reasoning="hmm ok",
        ),
    )
    _, _, raw = await post(
        http, fake, "gpt-4o", stream=True, stream_options={"include_usage": True}
    )
    chunks = sse_json(raw)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    deltas = [c["choices"][0]["delta"] for c in chunks[1:-2]]
    assert deltas == [{"reasoning_content": "hmm"}, {"reasoning_content": " ok"}] + [
        {"content": w} for w in ("Hello", " brave", " new", " world")
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and chunks[-2]["usage"] is None
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 3
    assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2
    assert (chunks[-1]["usage"]["prompt_tokens"], chunks[-1]["usage"]["total_tokens"]) == (7, 13)
    assert {c["model"] for c in chunks} == {"gpt-4o"} and raw.endswith(b"\n\ndata: [DONE]\n\n")


async def test_openai_tool_call_both_ways(fake, http):
    call = ("weather", {"location": "Florence, Italy"})
    fake.script("m1", Fault.ok(tool_call=call), Fault.ok(tool_call=call))
    _, _, body = await post(http, fake)
    choice = msgspec.json.decode(body)["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    assert choice["message"]["tool_calls"][0]["function"] == {
        "name": "weather",
        "arguments": '{"location":"Florence, Italy"}',
    }
    _, _, raw = await post(http, fake, stream=True)
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in sse_json(raw)[1:-1]]
    assert (
        calls[0]["function"] == {"name": "weather", "arguments": ""}
        and calls[0]["id"] == "call_fake_0"
    )
    assert "".join(c["function"]["arguments"] for c in calls) == '{"location":"Florence, Italy"}'


async def test_generated_usage_defaults_and_chunking(fake, http):
    fake.script("m1", Fault.ok("one two three", chunks=2))
    _, _, body = await post(http, fake)
    assert msgspec.json.decode(body)["usage"]["prompt_tokens"] == 10
    assert Usage.default_for("one two three") == Usage(prompt=10, completion=3)
    fake.script("m1", Fault.ok("one two three", chunks=2))
    _, _, raw = await post(http, fake, stream=True)
    assert [c["choices"][0]["delta"].get("content") for c in sse_json(raw)[1:-1]] == [
        "one two",
        " three",
    ]


@pytest.mark.parametrize("fake", ["azure"], indirect=True)
async def test_azure_deployment_routing_and_filter_chunk(fake, http):
    fake.script("prod-gpt", Fault.ok("Hi there"))
    url = f"{fake.url}/deployments/prod-gpt/chat/completions?api-version=2024-10-21"
    async with http.post(url, json={"messages": [], "stream": True}) as response:
        chunks = sse_json(await response.read())
    assert chunks[0] == {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": chunks[0]["prompt_filter_results"],
    }
    assert chunks[1]["choices"][0]["content_filter_results"] == {}
    assert fake.seen[0].model == "prod-gpt" and fake.seen[0].query == {"api-version": "2024-10-21"}


@pytest.mark.parametrize("fake", ["anthropic"], indirect=True)
async def test_anthropic_generated_stream_with_thinking_and_tool(fake, http):
    fake.script(
        "claude",
        Fault.ok(
            "Sure thing",
            reasoning="Let me think",
            tool_call=("weather", {"city": "Rome"}),
            usage={"prompt": 100, "completion": 20, "cached": 60, "cache_write": 10},
        ),
    )
    _, _, raw = await post(http, fake, "claude", stream=True)
    names = [e.split(b"\n")[0].decode() for e in events(raw)]
    assert names[:3] == ["event: message_start", "event: content_block_start", "event: ping"]
    assert names[-2:] == ["event: message_delta", "event: message_stop"]
    data = sse_json(raw)
    kinds = [d["delta"]["type"] for d in data if d["type"] == "content_block_delta"]
    assert (
        kinds
        == ["thinking_delta"] * 3
        + ["signature_delta", "text_delta", "text_delta"]
        + ["input_json_delta"] * 3
    )
    assert [d["content_block"]["type"] for d in data if d["type"] == "content_block_start"] == [
        "thinking",
        "text",
        "tool_use",
    ]
    assert data[-2]["delta"]["stop_reason"] == "tool_use"
    assert data[-2]["usage"] == {
        "input_tokens": 30,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 60,
        "output_tokens": 20,
    }
    assert data[0]["message"]["model"] == "claude"


@pytest.mark.parametrize("fake", ["gemini"], indirect=True)
async def test_gemini_generated_stream(fake, http):
    fake.script(
        "gem",
        Fault.ok(
            "a b c",
            reasoning="hm",
            usage={"prompt": 5, "completion": 9, "reasoning": 4, "cached": 2},
        ),
    )
    _, headers, raw = await post(http, fake, "gem", stream=True)
    assert (
        headers["Content-Type"] == "text/event-stream"
        and raw.endswith(b"}\r\n\r\n")
        and b"[DONE]" not in raw
    )
    data = sse_json(raw, b"\r\n\r\n")
    parts = [d["candidates"][0]["content"]["parts"][0] for d in data]
    assert parts == [{"text": "hm", "thought": True}, {"text": "a"}, {"text": " b"}, {"text": " c"}]
    assert (
        "finishReason" not in data[0]["candidates"][0]
        and data[-1]["candidates"][0]["finishReason"] == "STOP"
    )
    meta = data[-1]["usageMetadata"]
    assert (meta["promptTokenCount"], meta["candidatesTokenCount"], meta["thoughtsTokenCount"]) == (
        5,
        5,
        4,
    )
    assert (meta["totalTokenCount"], meta["cachedContentTokenCount"]) == (14, 2)
    assert (
        fake.seen[0].stream and fake.seen[0].model == "gem" and fake.seen[0].query == {"alt": "sse"}
    )


# -- HTTP errors -------------------------------------------------------------------------------

ERRORS = [
    (
        "openai",
        Fault.rate_limited(retry_after=1, retry_after_ms=1500),
        429,
        ["error", "code"],
        "rate_limit_exceeded",
    ),
    ("openai", Fault.context_length(), 400, ["error", "code"], "context_length_exceeded"),
    ("openai", Fault.content_policy(), 400, ["error", "code"], "content_policy_violation"),
    ("openai", Fault.invalid_key(), 401, ["error", "code"], "invalid_api_key"),
    ("openai", Fault.overloaded(), 503, ["error", "type"], "server_error"),
    ("azure", Fault.content_policy(), 400, ["error", "code"], "content_filter"),
    ("azure", Fault.rate_limited(), 429, ["error", "code"], "429"),
    ("anthropic", Fault.overloaded(), 529, ["error", "type"], "overloaded_error"),
    ("anthropic", Fault.invalid_key(), 401, ["error", "type"], "authentication_error"),
    ("anthropic", Fault.status(500), 500, ["error", "type"], "api_error"),
    ("gemini", Fault.invalid_key(), 400, ["error", "details", 0, "reason"], "API_KEY_INVALID"),
    ("gemini", Fault.overloaded(), 503, ["error", "status"], "UNAVAILABLE"),
    (
        "gemini",
        Fault.rate_limited(retry_delay=1.5),
        429,
        ["error", "details", 2, "retryDelay"],
        "1.5s",
    ),
]


@pytest.mark.parametrize(("protocol", "fault", "status", "path", "expected"), ERRORS)
async def test_error_bodies(http, protocol, fault, status, path, expected):
    with FakeUpstream(protocol) as fake:
        fake.script("m1", fault)
        code, headers, body = await post(http, fake)
    value: Any = msgspec.json.decode(body)
    for key in path:
        value = value[key]
    assert (code, value) == (status, expected)
    assert headers["Content-Type"].startswith("application/json")
    if fault.kind == "rate_limited" and protocol == "openai":
        assert (headers["retry-after"], headers["retry-after-ms"]) == ("1", "1500")


async def test_context_length_messages(http):
    messages = {}
    for protocol in ("anthropic", "gemini"):
        with FakeUpstream(protocol) as fake:
            fake.script("m1", Fault.context_length())
            _, _, body = await post(http, fake)
        messages[protocol] = msgspec.json.decode(body)["error"]["message"]
    assert messages["anthropic"].startswith("prompt is too long: ")
    assert (
        messages["gemini"].startswith("The input token count")
        and "exceeds the maximum" in messages["gemini"]
    )


async def test_status_with_explicit_body_and_headers(fake, http):
    fake.script("m1", Fault.status(502, body="bad gateway", headers={"X-Thing": "1"}))
    status, headers, body = await post(http, fake)
    assert (status, body, headers["X-Thing"]) == (502, b"bad gateway", "1")


async def test_content_policy_is_a_refusal_for_anthropic_and_gemini(http):
    with FakeUpstream("anthropic") as fake:
        fake.script("m1", Fault.content_policy())
        status, _, raw = await post(http, fake, stream=True)
    assert status == 200 and sse_json(raw)[-2]["delta"]["stop_reason"] == "refusal"
    with FakeUpstream("gemini") as fake:
        fake.script("m1", Fault.content_policy())
        status, _, body = await post(http, fake)
    reply = msgspec.json.decode(body)
    assert (
        status == 200
        and reply["promptFeedback"]["blockReason"] == "SAFETY"
        and "candidates" not in reply
    )


# -- transport faults --------------------------------------------------------------------------


async def test_reset_sends_nothing(fake, http):
    fake.script("m1", Fault.reset())
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(http, fake)
    assert fake.seen[0].outcome == "reset"


async def test_silent_never_answers(fake, http):
    fake.script("m1", Fault.silent())
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            chat_url(fake, "m1"), json={"model": "m1"}, timeout=aiohttp.ClientTimeout(total=0.3)
        ):
            pass
    assert 0.3 <= time.monotonic() - started < 1


@pytest.mark.parametrize("fake", ["openai", "anthropic"], indirect=True)
async def test_cut_after_chunks(fake, http):
    fake.script("m1", Fault.cut(2, reply=Fault.ok("one two three")))
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.post(
            chat_url(fake, "m1"), json={"model": "m1", "stream": True}
        ) as response:
            async for piece in response.content.iter_any():
                received += piece
    texts = [
        c["choices"][0]["delta"].get("content")
        if "choices" in c
        else c.get("delta", {}).get("text")
        for c in sse_json(received)
    ]
    assert [t for t in texts if t] == ["one", " two"]


async def test_stall_hangs_after_chunks(fake, http):
    fake.script("m1", Fault.stall(1, reply=Fault.ok("one two")))
    received = b""
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            chat_url(fake, "m1"),
            json={"model": "m1", "stream": True},
            timeout=aiohttp.ClientTimeout(sock_read=0.3),
        ) as response:
            async for piece in response.content.iter_any():
                received += piece
    assert [c["choices"][0]["delta"] for c in sse_json(received)] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "one"},
    ]


@pytest.mark.parametrize("fake", ["openai", "anthropic", "gemini"], indirect=True)
async def test_malformed_frame_then_clean_end(fake, http):
    fake.script("m1", Fault.malformed(1, reply=Fault.ok("one two")))
    _, _, raw = await post(http, fake, stream=True)
    sep = b"\r\n\r\n" if fake.protocol == "gemini" else b"\n\n"
    *good, bad = events(raw, sep)
    sse_json(sep.join(good) + sep, sep)  # every frame before the last decodes
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(bad.split(b"data: ", 1)[1])


@pytest.mark.parametrize("fake", ["openai", "anthropic"], indirect=True)
async def test_no_done_ends_cleanly_without_terminator(fake, http):
    fake.script("m1", Fault.no_done(reply=Fault.ok("hi", usage=(3, 1))))
    _, _, raw = await post(http, fake, stream=True, stream_options={"include_usage": True})
    assert b"[DONE]" not in raw and b"message_stop" not in raw
    last = sse_json(raw)[-1]
    assert (
        last["usage"]["output_tokens" if fake.protocol == "anthropic" else "completion_tokens"] == 1
    )


@pytest.mark.parametrize("fake", ["anthropic"], indirect=True)
async def test_slow_first_token_sends_preamble_first(fake, http):
    fake.script("m1", Fault.slow_first_token(0.3, reply=Fault.ok("hi")))
    async with http.post(chat_url(fake, "m1"), json={"model": "m1", "stream": True}) as response:
        started = time.monotonic()
        first = await response.content.readuntil(b"\n\n")
        preamble_at = time.monotonic() - started
        rest = await response.content.read()
        total = time.monotonic() - started
    assert first.startswith(b"event: message_start") and preamble_at < 0.2 <= 0.25 <= total
    assert rest.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


async def test_delays_and_stop_with_hanging_requests(http):
    fake = FakeUpstream("openai").start()
    fake.script("m1", Fault.ok("a b", delay=0.2, chunk_delay=0.05), Fault.silent(), Fault.stall(0))
    started = time.monotonic()
    await post(http, fake, stream=True)
    assert time.monotonic() - started >= 0.3
    hanging = [
        asyncio.create_task(post(http, fake)),
        asyncio.create_task(post(http, fake, stream=True)),
    ]
    while len(fake.seen) < 3:
        await asyncio.sleep(0.01)
    started = time.monotonic()
    await asyncio.to_thread(fake.stop)
    assert time.monotonic() - started < 2
    results = await asyncio.gather(*hanging, return_exceptions=True)
    assert all(isinstance(r, aiohttp.ClientError) for r in results)


# -- scripting ---------------------------------------------------------------------------------


async def test_scripts_are_per_model_then_ok(fake, http):
    fake.script("a", Fault.status(500), Fault.rate_limited())
    fake.script("*", Fault.status(418))
    statuses = [(await post(http, fake, m))[0] for m in ("a", "b", "a", "a", "b")]
    assert statuses == [500, 418, 429, 200, 200]
    assert [s.outcome for s in fake.seen_for("a")] == ["status", "rate_limited", "ok"]
    assert [s.t for s in fake.seen] == sorted(s.t for s in fake.seen)
    fake.always("b", Fault.overloaded())
    assert (await post(http, fake, "b"))[0] == 503
    fake.reset()
    assert fake.seen == [] and (await post(http, fake, "b"))[0] == 200


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini", "azure"])
async def test_api_key_is_enforced_when_set(http, protocol):
    header = {
        "openai": "Authorization",
        "azure": "api-key",
        "anthropic": "x-api-key",
        "gemini": "x-goog-api-key",
    }[protocol]
    value = "Bearer sk-1" if protocol == "openai" else "sk-1"
    with FakeUpstream(protocol, api_key="sk-1") as fake:
        async with http.post(
            chat_url(fake, "m1"), json={"model": "m1"}, headers={header: value}
        ) as r:
            assert r.status == 200
        async with http.post(chat_url(fake, "m1"), json={"model": "m1"}) as r:
            assert r.status == (400 if protocol == "gemini" else 401)
        assert fake.seen[0].headers[header.lower()] == value


# -- non-chat OpenAI endpoints -----------------------------------------------------------------


async def test_embeddings_float_and_base64_agree(fake, http):
    request = {"model": "text-embedding-3-small", "input": ["a", "b c"], "dimensions": 8}
    async with http.post(fake.url + "/embeddings", json=request) as r:
        floats = msgspec.json.decode(await r.read())
    async with http.post(
        fake.url + "/embeddings", json=request | {"encoding_format": "base64"}
    ) as r:
        packed = msgspec.json.decode(await r.read())
    assert floats["object"] == "list" and floats["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    for plain, b64 in zip(floats["data"], packed["data"], strict=True):
        assert list(struct.unpack("<8f", base64.b64decode(b64["embedding"]))) == plain["embedding"]
    assert abs(sum(v * v for v in floats["data"][0]["embedding"]) - 1) < 1e-5
    async with http.post(
        fake.url + "/embeddings", json={"model": "text-embedding-3-large", "input": "x"}
    ) as r:
        assert len(msgspec.json.decode(await r.read())["data"][0]["embedding"]) == 3072


async def test_images_b64_and_url(fake, http):
    async with http.post(
        fake.url + "/images/generations", json={"model": "gpt-image-1", "prompt": "cat", "n": 2}
    ) as r:
        reply = msgspec.json.decode(await r.read())
    assert len(reply["data"]) == 2 and base64.b64decode(reply["data"][0]["b64_json"]).startswith(
        b"\x89PNG\r\n\x1a\n"
    )
    async with http.post(
        fake.url + "/images/generations", json={"model": "dall-e-3", "prompt": "cat"}
    ) as r:
        url = msgspec.json.decode(await r.read())["data"][0]["url"]
    async with http.get(url) as r:
        assert r.content_type == "image/png" and (await r.read()).startswith(b"\x89PNG")


async def test_speech_is_chunked_mp3(fake, http):
    async with http.post(
        fake.url + "/audio/speech",
        json={"model": "tts-1", "input": "Hello world", "voice": "alloy"},
    ) as r:
        assert (r.content_type, r.headers["Transfer-Encoding"]) == ("audio/mpeg", "chunked")
        audio = await r.read()
    assert audio[:4] == b"\xff\xf3\x84\xc4" and len(audio) % 192 == 0 and len(audio) > 192 * 10
    fake.script("tts-1", Fault.cut(2))
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.post(
            fake.url + "/audio/speech", json={"model": "tts-1", "input": "Hello"}
        ) as r:
            await r.read()


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (
            "json",
            b'{"text":"Fake transcription of 16000 bytes.",'
            b'"usage":{"type":"duration","seconds":2}}',
        ),
        ("text", b"Fake transcription of 16000 bytes.\n"),
        ("srt", b"1\n00:00:00,000 --> 00:00:02,000\nFake transcription of 16000 bytes.\n\n"),
        ("vtt", b"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nFake transcription of 16000 bytes.\n\n"),
    ],
)
async def test_transcription_formats(fake, http, form, expected):
    data = aiohttp.FormData()
    data.add_field("model", "whisper-1")
    data.add_field("response_format", form)
    data.add_field("file", b"\x00" * 16000, filename="a.mp3", content_type="audio/mpeg")
    async with http.post(fake.url + "/audio/transcriptions", data=data) as r:
        assert await r.read() == expected
    assert fake.seen[0].body == {
        "model": "whisper-1",
        "response_format": form,
        "file": ("a.mp3", "audio/mpeg", 16000),
    }
    assert fake.seen[0].model == "whisper-1"


async def test_verbose_transcription_and_models(fake, http):
    data = aiohttp.FormData()
    data.add_field("model", "whisper-1")
    data.add_field("response_format", "verbose_json")
    data.add_field("file", b"\x00" * 4000, filename="a.wav", content_type="audio/wav")
    async with http.post(fake.url + "/audio/transcriptions", data=data) as r:
        reply = msgspec.json.decode(await r.read())
    assert (reply["duration"], reply["segments"][0]["end"], reply["language"]) == (
        0.5,
        0.5,
        "english",
    )
    async with http.get(fake.url + "/models") as r:
        listing = msgspec.json.decode(await r.read())
    assert listing["object"] == "list" and listing["data"][0] == {
        "id": "gpt-4o-mini",
        "object": "model",
        "created": 1782321902,
        "owned_by": "openai",
    }
