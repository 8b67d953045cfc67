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
from typing import Any

import aiohttp
import msgspec
import pytest
from multidict import CIMultiDict

from fakes import RECORDED, FakeUpstream, Fault, Usage
from fakes.cassettes import recorded
from kit import frames, names, sse

CHAT = {"openai": "/chat/completions", "azure": "/v1/chat/completions", "anthropic": "/v1/messages"}
Http = aiohttp.ClientSession
Fake = FakeUpstream


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[FakeUpstream]:
    with FakeUpstream(getattr(request, "param", "openai"), strict=False) as upstream:
        yield upstream


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


def chat_url(fake: Fake, model: str = "m1", stream: bool = False) -> str:
    if fake.protocol == "gemini":
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{fake.url}/models/{model}:{action}"
    return fake.url + CHAT[fake.protocol]


async def post(
    http: Http, fake: Fake, model: str = "m1", stream: bool = False, **extra: Any
) -> tuple[int, CIMultiDict[str], bytes]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if stream and fake.protocol != "gemini":
        body["stream"] = True
    async with http.post(chat_url(fake, model, stream), json=body | extra) as response:
        return response.status, CIMultiDict(response.headers), await response.read()


async def received(
    http: Http, url: str, body: Any, **options: Any
) -> tuple[bytes, BaseException | None]:
    """The bytes that arrived, and the error that ended the response (None if it ended well)."""
    got = bytearray()
    try:
        async with http.post(url, json=body, **options) as response:
            async for piece in response.content.iter_any():
                got += piece
    except (TimeoutError, aiohttp.ClientError) as error:
        return bytes(got), error
    return bytes(got), None


def recording(protocol: str, case: str, model: str) -> str:
    rec = RECORDED[protocol]
    body = recorded(f"{rec.folder}/{case}").body.decode()
    pattern = r'("model(?:Version)?"\s*:\s*)"' + re.escape(rec.model) + '"'
    return re.sub(pattern, lambda m: f'{m[1]}"{model}"', body)


def texts(raw: bytes) -> list[str]:
    """The text pieces of an OpenAI or Anthropic stream."""
    out = []
    for item in frames(raw):
        if item.get("choices"):
            out.append(item["choices"][0]["delta"].get("content"))
        elif item.get("type") == "content_block_delta":
            out.append(item["delta"].get("text"))
    return [t for t in out if t]


# -- recorded default replies ------------------------------------------------------------------


@pytest.mark.parametrize("fake", ["openai", "anthropic", "gemini", "azure"], indirect=True)
async def test_default_replies_are_the_recordings(fake: Fake, http: Http) -> None:
    _, _, body = await post(http, fake, "my-model")
    assert body.decode() == recording(fake.protocol, "simple", "my-model")
    options = {"include_usage": True}
    _, headers, raw = await post(http, fake, "my-model", stream=True, stream_options=options)
    assert raw.decode() == recording(fake.protocol, "simple_streaming", "my-model")
    assert headers["Content-Type"].startswith("text/event-stream")


async def test_openai_default_stream_has_usage_only_when_asked(fake: Fake, http: Http) -> None:
    _, _, raw = await post(http, fake, "gpt-4o", stream=True)
    chunks = frames(raw)
    assert all("usage" not in c and c["choices"] for c in chunks)
    assert "".join(texts(raw)) == RECORDED["openai"].stream_text == "Olá!"
    assert raw.endswith(b"data: [DONE]\n\n")


async def test_default_texts_and_usages_are_as_stated(http: Http) -> None:
    with FakeUpstream("anthropic", strict=False) as fake:
        _, _, raw = await post(http, fake, stream=True)
    assert "".join(texts(raw)) == RECORDED["anthropic"].stream_text
    assert frames(raw)[-2]["usage"]["output_tokens"] == 38
    with FakeUpstream("gemini") as fake:
        _, _, body = await post(http, fake, "g")
    meta = msgspec.json.decode(body)["usageMetadata"]
    assert RECORDED["gemini"].usage == Usage(prompt=11, completion=26, reasoning=24)
    assert (meta["promptTokenCount"], meta["candidatesTokenCount"], meta["thoughtsTokenCount"]) == (
        11,
        2,
        24,
    )


# -- generated replies -------------------------------------------------------------------------


async def test_openai_generated_stream_framing(fake: Fake, http: Http) -> None:
    usage = {"prompt": 7, "completion": 6, "cached": 3, "reasoning": 2}
    fake.script("gpt-4o", Fault.ok("Hello brave new world", usage=usage, reasoning="hmm ok"))
    options = {"include_usage": True}
    _, _, raw = await post(http, fake, "gpt-4o", stream=True, stream_options=options)
    chunks = frames(raw)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert [c["choices"][0]["delta"] for c in chunks[1:-2]] == [
        {"reasoning_content": "hmm"},
        {"reasoning_content": " ok"},
        *({"content": w} for w in ("Hello", " brave", " new", " world")),
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and chunks[-2]["usage"] is None
    final = chunks[-1]
    assert final["choices"] == [] and final["usage"]["prompt_tokens_details"]["cached_tokens"] == 3
    assert final["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2
    assert (final["usage"]["prompt_tokens"], final["usage"]["total_tokens"]) == (7, 13)
    assert {c["model"] for c in chunks} == {"gpt-4o"}
    assert raw.endswith(b"}\n\ndata: [DONE]\n\n")


async def test_openai_tool_call_both_ways(fake: Fake, http: Http) -> None:
    call = ("weather", {"location": "Florence, Italy"})
    fake.script("m1", Fault.ok(tool_call=call), Fault.ok(tool_call=call))
    _, _, body = await post(http, fake)
    choice = msgspec.json.decode(body)["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    function = choice["message"]["tool_calls"][0]["function"]
    assert function == {"name": "weather", "arguments": '{"location":"Florence, Italy"}'}
    _, _, raw = await post(http, fake, stream=True)
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in frames(raw)[1:-1]]
    assert calls[0]["function"] == {"name": "weather", "arguments": ""}
    assert calls[0]["id"] == "call_fake_0"
    assert "".join(c["function"]["arguments"] for c in calls) == function["arguments"]


async def test_generated_usage_defaults_and_chunking(fake: Fake, http: Http) -> None:
    fake.script("m1", Fault.ok("one two three"), Fault.ok("one two three", chunks=2))
    _, _, body = await post(http, fake)
    usage = msgspec.json.decode(body)["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (10, 3)
    assert Usage.default_for("one two three") == Usage(prompt=10, completion=3)
    _, _, raw = await post(http, fake, stream=True)
    assert texts(raw) == ["one two", " three"]
    fake.script("m1", Fault.ok(usage=(4, 2)))  # usage only: the recorded text, generated
    _, _, body = await post(http, fake)
    reply = msgspec.json.decode(body)
    assert reply["choices"][0]["message"]["content"] == "Olá!"
    assert reply["usage"]["total_tokens"] == 6


@pytest.mark.parametrize("fake", ["azure"], indirect=True)
async def test_azure_deployment_routing_and_filter_chunk(fake: Fake, http: Http) -> None:
    fake.script("prod-gpt", Fault.ok("Hi there"))
    url = f"{fake.url}/deployments/prod-gpt/chat/completions?api-version=2024-10-21"
    raw, error = await received(http, url, {"messages": [], "stream": True})
    chunks = frames(raw)
    assert error is None
    filters = chunks[0].pop("prompt_filter_results")
    assert chunks[0] == {"choices": [], "created": 0, "id": "", "model": "", "object": ""}
    assert filters[0]["content_filter_results"]["jailbreak"] == {
        "detected": False,
        "filtered": False,
    }
    assert chunks[1]["choices"][0]["content_filter_results"] == {}
    assert fake.seen[0].model == "prod-gpt" and fake.seen[0].query == {"api-version": "2024-10-21"}
    fake.script("gone", Fault.status(404))
    async with http.post(f"{fake.url}/deployments/gone/chat/completions", json={}) as response:
        assert (await response.json())["error"]["code"] == "DeploymentNotFound"


@pytest.mark.parametrize("fake", ["anthropic"], indirect=True)
async def test_anthropic_stream_with_thinking_and_tool(fake: Fake, http: Http) -> None:
    usage = {"prompt": 100, "completion": 20, "cached": 60, "cache_write": 10}
    tool = ("weather", {"city": "Rome"})
    fake.script(
        "claude", Fault.ok("Sure thing", reasoning="Let me think", tool_call=tool, usage=usage)
    )
    _, _, raw = await post(http, fake, "claude", stream=True)
    seen = names(raw)
    assert seen[:3] == ["message_start", "content_block_start", "ping"]
    assert seen[-2:] == ["message_delta", "message_stop"]
    data = frames(raw)
    blocks = [d["content_block"]["type"] for d in data if d["type"] == "content_block_start"]
    assert blocks == ["thinking", "text", "tool_use"]
    deltas = [d["delta"]["type"] for d in data if d["type"] == "content_block_delta"]
    assert (
        deltas
        == ["thinking_delta"] * 3
        + ["signature_delta"]
        + ["text_delta"] * 2
        + ["input_json_delta"] * 3
    )
    assert data[-2]["delta"]["stop_reason"] == "tool_use"
    assert data[-2]["usage"] == {
        "input_tokens": 30,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 60,
        "output_tokens": 20,
    }
    assert data[0]["message"]["model"] == "claude" and raw.count(b"event: ping\n") == 1


@pytest.mark.parametrize("fake", ["gemini"], indirect=True)
async def test_gemini_generated_stream(fake: Fake, http: Http) -> None:
    usage = {"prompt": 5, "completion": 9, "reasoning": 4, "cached": 2}
    fake.script("gem", Fault.ok("a b c", reasoning="hm", usage=usage))
    _, headers, raw = await post(http, fake, "gem", stream=True)
    assert headers["Content-Type"] == "text/event-stream"
    assert raw.endswith(b"}\r\n\r\n") and b"[DONE]" not in raw and b"}\n\n" not in raw
    data = frames(raw)
    parts = [d["candidates"][0]["content"]["parts"][0] for d in data]
    assert parts == [{"text": "hm", "thought": True}, {"text": "a"}, {"text": " b"}, {"text": " c"}]
    assert "finishReason" not in data[0]["candidates"][0]
    assert data[-1]["candidates"][0]["finishReason"] == "STOP"
    meta = data[-1]["usageMetadata"]
    assert (meta["promptTokenCount"], meta["candidatesTokenCount"], meta["thoughtsTokenCount"]) == (
        5,
        5,
        4,
    )
    assert (meta["totalTokenCount"], meta["cachedContentTokenCount"]) == (14, 2)
    assert fake.seen[0].stream and fake.seen[0].model == "gem"
    assert fake.seen[0].query == {"alt": "sse"}


# -- HTTP errors -------------------------------------------------------------------------------

TOO_LONG = "prompt is too long: 208310 tokens > 200000 maximum"
ERRORS = [
    ("openai", Fault.rate_limited(1, 1500), 429, "error.code", "rate_limit_exceeded"),
    ("openai", Fault.context_length(), 400, "error.code", "context_length_exceeded"),
    ("openai", Fault.content_policy(), 400, "error.code", "content_policy_violation"),
    ("openai", Fault.invalid_key(), 401, "error.code", "invalid_api_key"),
    ("openai", Fault.overloaded(), 503, "error.type", "server_error"),
    ("azure", Fault.content_policy(), 400, "error.code", "content_filter"),
    ("azure", Fault.rate_limited(), 429, "error.code", "429"),
    ("anthropic", Fault.overloaded(), 529, "error.type", "overloaded_error"),
    ("anthropic", Fault.invalid_key(), 401, "error.type", "authentication_error"),
    ("anthropic", Fault.status(500), 500, "error.type", "api_error"),
    ("anthropic", Fault.context_length(), 400, "error.message", TOO_LONG),
    ("gemini", Fault.invalid_key(), 400, "error.details.0.reason", "API_KEY_INVALID"),
    ("gemini", Fault.overloaded(), 503, "error.status", "UNAVAILABLE"),
    ("gemini", Fault.rate_limited(retry_delay=1.5), 429, "error.details.2.retryDelay", "1.5s"),
    ("gemini", Fault.context_length(), 400, "error.status", "INVALID_ARGUMENT"),
]  # fmt: skip


@pytest.mark.parametrize(("protocol", "fault", "status", "path", "expected"), ERRORS)
async def test_error_bodies(
    http: Http, protocol: str, fault: Fault, status: int, path: str, expected: str
) -> None:
    with FakeUpstream(protocol, strict=False) as fake:
        fake.script("m1", fault)
        code, headers, body = await post(http, fake)
    value: Any = msgspec.json.decode(body)
    for key in path.split("."):
        value = value[int(key)] if key.isdigit() else value[key]
    assert (code, value) == (status, expected)
    assert headers["Content-Type"].startswith("application/json")
    if fault.kind == "rate_limited" and protocol == "openai":
        assert (headers["retry-after"], headers["retry-after-ms"]) == ("1", "1500")


async def test_status_with_explicit_body_and_headers(fake: Fake, http: Http) -> None:
    fake.script("m1", Fault.status(502, body="bad gateway", headers={"X-Thing": "1"}))
    status, headers, body = await post(http, fake)
    assert (status, headers["X-Thing"], body) == (502, "1", b"bad gateway")


async def test_content_policy_is_a_refusal_for_anthropic_and_gemini(http: Http) -> None:
    with FakeUpstream("anthropic", strict=False) as fake:
        fake.script("m1", Fault.content_policy())
        status, _, raw = await post(http, fake, stream=True)
    assert status == 200 and frames(raw)[-2]["delta"]["stop_reason"] == "refusal"
    with FakeUpstream("gemini") as fake:
        fake.script("m1", Fault.content_policy())
        status, _, body = await post(http, fake)
    reply = msgspec.json.decode(body)
    assert status == 200 and reply["promptFeedback"]["blockReason"] == "SAFETY"
    assert "candidates" not in reply


# -- transport faults --------------------------------------------------------------------------


async def test_reset_sends_nothing(fake: Fake, http: Http) -> None:
    fake.script("m1", Fault.reset())
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(http, fake)
    assert fake.seen[0].outcome == "reset"


async def test_silent_never_answers(fake: Fake, http: Http) -> None:
    fake.script("m1", Fault.silent())
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=0.3)
    got, error = await received(http, chat_url(fake), {"model": "m1"}, timeout=timeout)
    assert isinstance(error, asyncio.TimeoutError) and got == b""
    assert 0.3 <= time.monotonic() - started < 1


@pytest.mark.parametrize("fake", ["openai", "anthropic", "gemini"], indirect=True)
async def test_cut_after_chunks(fake: Fake, http: Http) -> None:
    fake.script("m1", Fault.cut(2, reply=Fault.ok("one two three")))
    got, error = await received(http, chat_url(fake, stream=True), {"model": "m1", "stream": True})
    assert isinstance(error, aiohttp.ClientPayloadError)
    if fake.protocol == "gemini":
        assert [d["candidates"][0]["content"]["parts"][0]["text"] for d in frames(got)] == [
            "one",
            " two",
        ]
    else:
        assert texts(got) == ["one", " two"]
        assert names(got)[:1] == (["message_start"] if fake.protocol == "anthropic" else [None])


async def test_cut_and_malformed_whole_bodies(fake: Fake, http: Http) -> None:
    fake.script("m1", Fault.cut(0, reply=Fault.ok("one two")), Fault.malformed(0))
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(http, fake)
    status, _, body = await post(http, fake)
    assert status == 200 and body.startswith(b"{")
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(body)


async def test_stall_hangs_after_chunks(fake: Fake, http: Http) -> None:
    fake.script("m1", Fault.stall(1, reply=Fault.ok("one two")))
    timeout = aiohttp.ClientTimeout(sock_read=0.3)
    body = {"model": "m1", "stream": True}
    got, error = await received(http, chat_url(fake), body, timeout=timeout)
    assert isinstance(error, asyncio.TimeoutError)
    assert [c["choices"][0]["delta"] for c in frames(got)] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "one"},
    ]


@pytest.mark.parametrize("fake", ["openai", "anthropic", "gemini"], indirect=True)
async def test_malformed_frame_then_clean_end(fake: Fake, http: Http) -> None:
    fake.script("m1", Fault.malformed(1, reply=Fault.ok("one two")))
    _, _, raw = await post(http, fake, stream=True)
    *good, bad = [e for e in re.split(rb"\r?\n\r?\n", raw) if e.strip()]
    assert len(frames(b"\n\n".join([*good, b""]))) == len(
        good
    )  # every frame before the last decodes
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(bad.partition(b"data:")[2].strip())


STREAM_ERRORS = {
    "openai": (None, ["error", "type"], "server_error"),
    "anthropic": ("error", ["error", "type"], "overloaded_error"),
    "gemini": (None, ["error", "status"], "INTERNAL"),
}


@pytest.mark.parametrize("fake", ["openai", "anthropic", "gemini"], indirect=True)
async def test_stream_error_event_then_clean_end(fake: Fake, http: Http) -> None:
    fake.script("m1", Fault.stream_error(1, reply=Fault.ok("one two")))
    status, _, raw = await post(http, fake, stream=True)
    name, path, expected = STREAM_ERRORS[fake.protocol]
    last: Any = frames(raw)[-1]
    for key in path:
        last = last[key]
    assert (status, names(raw)[-1], last) == (200, name, expected)
    assert b"[DONE]" not in raw and b"message_stop" not in raw


@pytest.mark.parametrize("fake", ["openai", "anthropic"], indirect=True)
async def test_no_done_ends_cleanly_without_terminator(fake: Fake, http: Http) -> None:
    fake.script("m1", Fault.no_done(reply=Fault.ok("hi", usage=(3, 1))))
    options = {"include_usage": True}
    _, _, raw = await post(http, fake, stream=True, stream_options=options)
    assert b"[DONE]" not in raw and b"message_stop" not in raw
    last = frames(raw)[-1]["usage"]
    assert last["output_tokens" if fake.protocol == "anthropic" else "completion_tokens"] == 1


@pytest.mark.parametrize("fake", ["anthropic"], indirect=True)
async def test_slow_first_token_sends_preamble_first(fake: Fake, http: Http) -> None:
    fake.script("m1", Fault.slow_first_token(0.3, reply=Fault.ok("hi")))
    async with http.post(chat_url(fake), json={"model": "m1", "stream": True}) as response:
        started = time.monotonic()
        first = await response.content.readuntil(b"\n\n")
        preamble_after = time.monotonic() - started
        rest = await response.content.read()
        total = time.monotonic() - started
    assert first.startswith(b"event: message_start") and preamble_after < 0.2
    # The fake's promise is a real-clock wait, so wall time is what is tested: the clock here
    # starts when the headers arrive, a little after the fake began its 0.3 s, hence the slack.
    assert total >= 0.25 and names(rest)[0] == "content_block_start"
    assert rest.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


async def test_delays_and_stop_with_hanging_requests(http: Http) -> None:
    fake = FakeUpstream("openai").start()
    fake.script("m1", Fault.ok("a b", delay=0.2, chunk_delay=0.05), Fault.silent(), Fault.stall(0))
    started = time.monotonic()
    _, _, raw = await post(http, fake, stream=True)
    took = time.monotonic() - started
    # Real-clock waits are the fake's promise, so wall time is what is tested; this clock
    # started before the request left, so the sum of the fake's sleeps bounds it exactly:
    # `delay` before the headers and `chunk_delay` before every frame after the first.
    assert took >= 0.2 + 0.05 * (len(sse(raw)) - 1)
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


async def test_scripts_are_per_model_then_ok(fake: Fake, http: Http) -> None:
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
async def test_api_key_is_enforced_when_set(http: Http, protocol: str) -> None:
    header = {"openai": "Authorization", "azure": "api-key", "anthropic": "x-api-key"}.get(
        protocol, "x-goog-api-key"
    )
    value = "Bearer sk-1" if protocol == "openai" else "sk-1"
    with FakeUpstream(protocol, api_key="sk-1", strict=False) as fake:
        async with http.post(chat_url(fake), json={"model": "m1"}, headers={header: value}) as r:
            assert r.status == 200
        fake.script("m1", Fault.status(500))
        async with http.post(chat_url(fake), json={"model": "m1"}) as r:
            assert r.status == (400 if protocol == "gemini" else 401)
        assert fake.pending("m1") == 1
        assert fake.seen[0].headers[header.lower()] == value
        assert [s.outcome for s in fake.seen] == ["ok", "invalid_key"]


# -- non-chat OpenAI endpoints -----------------------------------------------------------------


async def test_embeddings_float_and_base64_agree(fake: Fake, http: Http) -> None:
    request = {"model": "text-embedding-3-small", "input": ["a", "b c"], "dimensions": 8}
    async with http.post(fake.url + "/embeddings", json=request) as r:
        floats = await r.json()
    async with http.post(
        fake.url + "/embeddings", json=request | {"encoding_format": "base64"}
    ) as r:
        packed = await r.json()
    assert floats["object"] == "list" and floats["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    for plain, b64 in zip(floats["data"], packed["data"], strict=True):
        assert list(struct.unpack("<8f", base64.b64decode(b64["embedding"]))) == plain["embedding"]
    assert abs(sum(v * v for v in floats["data"][0]["embedding"]) - 1) < 1e-5
    async with http.post(fake.url + "/embeddings", json={"model": "x-large", "input": "x"}) as r:
        assert len((await r.json())["data"][0]["embedding"]) == 3072


async def test_images_b64_and_url(fake: Fake, http: Http) -> None:
    request = {"model": "gpt-image-1", "prompt": "cat", "n": 2}
    async with http.post(fake.url + "/images/generations", json=request) as r:
        reply = await r.json()
    assert len(reply["data"]) == 2 and reply["usage"]["input_tokens"] == 1
    assert base64.b64decode(reply["data"][0]["b64_json"]).startswith(b"\x89PNG\r\n\x1a\n")
    request = {"model": "dall-e-3", "prompt": "cat"}
    async with http.post(fake.url + "/images/generations", json=request) as r:
        url = (await r.json())["data"][0]["url"]
    async with http.get(url) as r:
        assert r.content_type == "image/png" and (await r.read()).startswith(b"\x89PNG")


async def test_speech_is_chunked_mp3(fake: Fake, http: Http) -> None:
    request = {"model": "tts-1", "input": "Hello world", "voice": "alloy"}
    async with http.post(fake.url + "/audio/speech", json=request) as r:
        assert (r.content_type, r.headers["Transfer-Encoding"]) == ("audio/mpeg", "chunked")
        audio = await r.read()
    assert audio[:4] == b"\xff\xf3\x84\xc4" and len(audio) == 192 * 28
    fake.script("tts-1", Fault.cut(2))
    got, error = await received(http, fake.url + "/audio/speech", request)
    assert isinstance(error, aiohttp.ClientPayloadError) and got == audio[: 2 * len(audio) // 4]
    got, error = await received(
        http, fake.url + "/audio/speech", request | {"stream_format": "sse"}
    )
    assert frames(got)[-1]["type"] == "speech.audio.done" and error is None
    assert b"".join(base64.b64decode(e["audio"]) for e in frames(got)[:-1]) == audio


def form(response_format: str, size: int, filename: str = "a.mp3") -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("model", "whisper-1")
    data.add_field("response_format", response_format)
    data.add_field("file", b"\x00" * size, filename=filename, content_type="audio/mpeg")
    return data


USAGE = b'"usage":{"type":"duration","seconds":2}}'
TRANSCRIPTS = [
    ("json", b'{"text":"Fake transcription of 16000 bytes.",' + USAGE),
    ("text", b"Fake transcription of 16000 bytes.\n"),
    ("srt", b"1\n00:00:00,000 --> 00:00:02,000\nFake transcription of 16000 bytes.\n\n"),
    ("vtt", b"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nFake transcription of 16000 bytes.\n\n"),
]  # fmt: skip


@pytest.mark.parametrize(("response_format", "expected"), TRANSCRIPTS)
async def test_transcription_formats(
    fake: Fake, http: Http, response_format: str, expected: bytes
) -> None:
    async with http.post(
        fake.url + "/audio/transcriptions", data=form(response_format, 16000)
    ) as r:
        assert await r.read() == expected
    upload = ("a.mp3", "audio/mpeg", 16000)
    assert fake.seen[0].body == {
        "model": "whisper-1",
        "response_format": response_format,
        "file": upload,
    }
    assert fake.seen[0].model == "whisper-1"


async def test_verbose_transcription_and_models(fake: Fake, http: Http) -> None:
    async with http.post(fake.url + "/audio/transcriptions", data=form("verbose_json", 4000)) as r:
        reply = await r.json()
    assert (reply["duration"], reply["segments"][0]["end"], reply["language"]) == (
        0.5,
        0.5,
        "english",
    )
    async with http.get(fake.url + "/models") as r:
        listing = await r.json()
    assert listing["object"] == "list"
    assert listing["data"][0] == {
        "id": "gpt-4o-mini",
        "object": "model",
        "created": 1782321902,
        "owned_by": "openai",
    }
