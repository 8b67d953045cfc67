"""Embeddings, images, speech and transcription through the official openai SDK: OpenAI's
shapes, translation upstream, costs, and the same retries and fallbacks as chat."""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from fakes import Fault
from gateway_harness import MASTER_KEY
from kit import post
from openai_env import Env, openai_env

PNG = b"\x89PNG\r\n\x1a\n"
MP3_FRAME = bytes((0xFF, 0xF3, 0x84, 0xC4))
HELLO = "Hello from Ion Clock Lab LiteLLM."


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with openai_env(tmp_path) as e:
        yield e


def mp3(frames: int) -> bytes:
    return (MP3_FRAME + bytes(188)) * frames


def cost(headers: httpx.Headers) -> Decimal:
    return Decimal(headers["x-router-cost"])


# ---- embeddings ---------------------------------------------------------------------------


def test_embeddings_float_and_base64_agree(env):
    client = env.client()
    raw = client.embeddings.with_raw_response.create(
        model="openai/text-embedding-3-small", input="Ion Clock Lab optical clock research"
    )
    as_base64 = raw.parse()  # the SDK asks for base64 and decodes it
    assert env.openai.seen[0].body["encoding_format"] == "base64"
    as_float = client.embeddings.create(
        model="openai/text-embedding-3-small",
        input="Ion Clock Lab optical clock research",
        encoding_format="float",
    )
    assert len(as_float.data[0].embedding) == 1536
    assert as_base64.data[0].embedding == pytest.approx(as_float.data[0].embedding)
    assert as_float.usage.prompt_tokens == 6  # one token a word, says the fake
    assert cost(raw.headers) == Decimal(6) * Decimal("0.02") / 10**6
    assert raw.headers["x-router-model"] == "openai/text-embedding-3-small"
    assert env.openai.seen[0].body["model"] == "text-embedding-3-small"


def test_embeddings_list_input_and_dimensions(env):
    response = env.client().embeddings.create(
        model="openai/text-embedding-3-small", input=["one", "two", "three"], dimensions=64
    )
    assert [d.index for d in response.data] == [0, 1, 2]
    assert {len(d.embedding) for d in response.data} == {64}
    sent = env.openai.seen[0].body
    assert (sent["input"], sent["dimensions"]) == (["one", "two", "three"], 64)


def test_embeddings_raw_base64_is_passed_through(env):
    r = post(
        env.gw,
        "/v1/embeddings",
        {"model": "openai/text-embedding-3-small", "input": "x", "encoding_format": "base64"},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
    )
    packed = base64.b64decode(r.json()["data"][0]["embedding"])
    assert len(struct.unpack(f"<{len(packed) // 4}f", packed)) == 1536


async def test_embeddings_async(env):
    async with env.async_client() as client:
        response = await client.embeddings.create(model="embed", input="via an alias")
        assert len(response.data[0].embedding) == 1536


# ---- images -------------------------------------------------------------------------------


def test_images_b64_json_with_token_costs(env):
    raw = env.client().images.with_raw_response.generate(
        model="openai/gpt-image-1",
        prompt="A clean minimal logo for Ion Clock Lab",
        n=2,
        size="1024x1024",
    )
    images = raw.parse()
    assert len(images.data) == 2
    assert base64.b64decode(images.data[0].b64_json or "").startswith(PNG)
    sent = env.openai.seen[0].body
    assert (sent["model"], sent["n"], sent["size"]) == ("gpt-image-1", 2, "1024x1024")
    # the fake reports a token a prompt word (8) and 272 an image; gpt-image-1: $5 in, $40 out
    expected = (Decimal(8) * 5 + Decimal(544) * 40) / 10**6
    assert cost(raw.headers) == expected


def test_images_url_priced_per_image(env):
    raw = env.client().images.with_raw_response.generate(
        model="acme/gpt-image-1", prompt="a clock", n=3, response_format="url"
    )
    images = raw.parse()
    assert all((d.url or "").startswith(env.acme.origin + "/fake-files/") for d in images.data)
    assert cost(raw.headers) == Decimal("0.12")


# ---- speech -------------------------------------------------------------------------------


def test_speech_is_streamed_back_with_its_content_type(env):
    client = env.client()
    with client.audio.speech.with_streaming_response.create(
        model="openai/tts-1", voice="alloy", input=HELLO
    ) as response:
        assert response.headers["content-type"] == "audio/mpeg"
        assert cost(response.headers) == Decimal(len(HELLO)) * 15 / 10**6
        pieces = list(response.iter_bytes())
    audio = b"".join(pieces)
    assert audio.startswith(MP3_FRAME) and len(audio) % 192 == 0
    sent = env.openai.seen[0].body
    assert sent == {"model": "tts-1", "input": HELLO, "voice": "alloy"}


def test_speech_audio_reaches_the_client_before_the_upstream_finishes(env):
    env.openai.script("tts-1", Fault.ok(chunk_delay=0.3))  # 4 pieces, 0.3 s apart
    with env.client().audio.speech.with_streaming_response.create(
        model="openai/tts-1", voice="alloy", input=HELLO
    ) as response:
        started = time.monotonic()
        arrivals = [(time.monotonic() - started, piece) for piece in response.iter_bytes()]
    assert b"".join(piece for _, piece in arrivals).startswith(MP3_FRAME)
    assert arrivals[0][0] < 0.2 and arrivals[-1][0] > 0.7  # relayed, not buffered


def test_speech_broken_off_upstream_is_a_broken_transfer_not_a_short_file(env):
    env.openai.script("tts-1", Fault.cut(2))  # two of four pieces, then the connection drops
    body = {"model": "openai/tts-1", "voice": "alloy", "input": HELLO}
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{env.gw.url}/v1/audio/speech", json=body, headers=headers) as r,
    ):
        assert r.status_code == 200
        for piece in r.iter_bytes():
            received += piece
    assert received.startswith(MP3_FRAME)
    exposition = env.gw.runtime.metrics.exposition().decode()
    assert 'router_stream_failures_total{result="error"} 1.0' in exposition


def test_speech_wav_and_sse(env):
    client = env.client()
    wav = client.audio.speech.create(
        model="openai/tts-1", voice="nova", input="hi", response_format="wav"
    )
    assert wav.response.headers["content-type"] == "audio/wav"
    assert wav.content.startswith(b"RIFF")
    r = post(
        env.gw,
        "/v1/audio/speech",
        {"model": "openai/tts-1", "voice": "nova", "input": "hi", "stream_format": "sse"},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
    )
    assert r.headers["content-type"].startswith("text/event-stream")
    assert '"type":"speech.audio.delta"' in r.text and '"type":"speech.audio.done"' in r.text


async def test_async_client_images_speech_and_models(env):
    async with env.async_client() as client:
        image = await client.images.generate(model="openai/gpt-image-1", prompt="a clock")
        assert base64.b64decode(image.data[0].b64_json or "").startswith(PNG)
        async with client.audio.speech.with_streaming_response.create(
            model="openai/tts-1", voice="alloy", input=HELLO
        ) as response:
            audio = b"".join([piece async for piece in response.iter_bytes()])
        assert audio.startswith(MP3_FRAME)
        ids = [m.id async for m in client.models.list()]
        assert "openai/tts-1" in ids
        assert (await client.models.retrieve("openai/tts-1")).model_extra == {"type": "speech"}


# ---- transcription ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "check"),
    [
        ("json", lambda r: r.text == "Fake transcription of 9600 bytes."),
        ("text", lambda r: r == "Fake transcription of 9600 bytes.\n"),
        ("srt", lambda r: r.startswith("1\n00:00:00,000 --> 00:00:01,200\n")),
        ("vtt", lambda r: r.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.200\n")),
        ("verbose_json", lambda r: r.duration == 1.2 and r.segments[0].end == 1.2),
    ],
)
def test_transcription_formats(env, form, check):
    result = env.client().audio.transcriptions.create(
        model="openai/whisper-1", file=("speech.mp3", mp3(50), "audio/mpeg"), response_format=form
    )
    assert check(result)
    seen = env.openai.seen[0]
    assert seen.path == "/v1/audio/transcriptions"
    assert seen.body["file"] == ("speech.mp3", "audio/mpeg", 9600)
    assert seen.body["model"] == "whisper-1"
    assert seen.body.get("response_format") == form


def test_transcription_fields_and_cost(env):
    raw = env.client().audio.transcriptions.with_raw_response.create(
        model="openai/whisper-1",
        file=("speech.mp3", mp3(50), "audio/mpeg"),
        language="en",
        prompt="Ion Clock Lab",
        temperature=0.2,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert raw.parse().words is not None
    body = env.openai.seen[0].body
    assert (body["language"], body["prompt"], body["temperature"]) == ("en", "Ion Clock Lab", "0.2")
    assert body["timestamp_granularities[]"] == "word,segment"
    # verbose_json reports usage of ceil(1.2) = 2 seconds; whisper-1: $0.0001 a second
    assert cost(raw.headers) == Decimal("0.0002")


async def test_transcription_async_large_file_is_spooled_and_sent_whole(env):
    audio = mp3(20_000)  # 3.84 MB: more than the 1 MB kept in memory
    async with env.async_client() as client:
        result = await client.audio.transcriptions.create(
            model="openai/whisper-1", file=("long.mp3", audio, "audio/mpeg")
        )
        assert result.text == f"Fake transcription of {len(audio)} bytes."
    headers = env.openai.seen[0].headers
    assert int(headers["content-length"]) > len(audio) and "transfer-encoding" not in headers


def test_transcription_over_25_mb_is_refused(env):
    big = b"\0" * (25 * 1024 * 1024 + 1)
    r = httpx.post(
        f"{env.gw.url}/v1/audio/transcriptions",
        files={"file": ("big.mp3", big, "audio/mpeg")},
        data={"model": "openai/whisper-1"},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=30,
    )
    assert r.status_code == 413
    assert r.json()["error"]["param"] == "file"
    assert r.json()["error"]["code"] == "file_too_large"
    assert env.openai.seen == []


def test_transcription_needs_a_file_and_a_model(env):
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    url = f"{env.gw.url}/v1/audio/transcriptions"
    r = httpx.post(
        url, data={"model": "openai/whisper-1"}, files={"x": ("a", b"1")}, headers=headers
    )
    assert (r.status_code, r.json()["error"]["param"]) == (400, "x")
    r = httpx.post(url, files={"file": ("a.mp3", b"123")}, headers=headers)
    assert (r.status_code, r.json()["error"]["param"]) == (400, "model")
    r = post(env.gw, "/v1/audio/transcriptions", {"model": "openai/whisper-1"})  # JSON, not a form
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_content_type")


# ---- retries and fallbacks ----------------------------------------------------------------


def _embed(client: openai.OpenAI, model: str, **extra: object) -> object:
    return client.embeddings.with_raw_response.create(model=model, input="x", **extra)


def _image(client: openai.OpenAI, model: str, **extra: object) -> object:
    return client.images.with_raw_response.generate(model=model, prompt="x", **extra)


def _speech(client: openai.OpenAI, model: str, **extra: object) -> object:
    return client.audio.speech.with_raw_response.create(
        model=model, voice="alloy", input="x", **extra
    )


def _transcribe(client: openai.OpenAI, model: str, **extra: object) -> object:
    return client.audio.transcriptions.with_raw_response.create(
        model=model, file=("a.mp3", mp3(10), "audio/mpeg"), **extra
    )


@pytest.mark.parametrize(
    ("call", "model"),
    [
        (_embed, "text-embedding-3-small"),
        (_image, "gpt-image-1"),
        (_speech, "tts-1"),
        (_transcribe, "whisper-1"),
    ],
)
def test_every_endpoint_retries_then_falls_back(env, call, model):
    env.openai.always(model, Fault.status(500))
    raw = call(env.client(), f"openai/{model}", extra_body={"fallback_models": [f"acme/{model}"]})
    assert raw.status_code == 200
    assert raw.headers["x-router-model"] == f"acme/{model}"
    trail = [t.split(" ")[:2] for t in raw.headers["x-router-attempts"].split(", ")]
    assert trail == [[f"openai/{model}", "server_error"]] * 3 + [[f"acme/{model}", "ok"]]
    assert [s.outcome for s in env.acme.seen_for(model)] == ["ok"]


def test_transcription_retry_sends_the_file_again(env):
    env.openai.script("whisper-1", Fault.rate_limited(), Fault.ok())
    result = env.client().audio.transcriptions.create(
        model="openai/whisper-1", file=("a.mp3", mp3(10), "audio/mpeg")
    )
    assert result.text == "Fake transcription of 1920 bytes."
    assert [s.body["file"][2] for s in env.openai.seen] == [1920, 1920]


def test_media_failure_is_502_with_the_trail(env):
    env.openai.always("text-embedding-3-small", Fault.status(503))
    with pytest.raises(openai.APIStatusError) as failed:
        env.client().embeddings.create(model="openai/text-embedding-3-small", input="x")
    assert failed.value.status_code == 503 or failed.value.status_code == 502
    body = failed.value.body
    assert isinstance(body, dict)
    assert [a["outcome"] for a in body["attempts"]] == ["overloaded"] * 3


def test_a_model_of_the_wrong_type_is_refused(env):
    with pytest.raises(openai.BadRequestError) as wrong:
        env.client().embeddings.create(model="openai/gpt-4o-mini", input="x")
    assert (wrong.value.code, wrong.value.param) == ("wrong_model_type", "model")
    assert "is a chat model, not an embedding model" in wrong.value.message
    with pytest.raises(openai.NotFoundError) as unknown:
        env.client().audio.speech.create(model="nosuch/tts", voice="alloy", input="x")
    assert (unknown.value.code, unknown.value.param) == ("model_not_found", "model")


def test_a_protocol_without_media_is_skipped_with_a_reason(env):
    r = post(
        env.gw,
        "/v1/embeddings",
        {"model": "anthropic/some-embedder", "input": "x"},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
    )
    assert r.status_code == 503
    assert "protocol 'anthropic' is not available" in r.json()["error"]["message"]


# ---- the demo provider: every endpoint on a fresh machine --------------------------------


def test_demo_models_answer_every_endpoint(demo_gateway):
    with openai.OpenAI(
        base_url=demo_gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0
    ) as client:
        _every_endpoint(client)


def _every_endpoint(client: openai.OpenAI) -> None:
    one = client.embeddings.create(model="demo/embed", input="hello")
    again = client.embeddings.create(model="demo/embed", input="hello", encoding_format="float")
    assert len(one.data[0].embedding) == 256
    assert one.data[0].embedding == pytest.approx(again.data[0].embedding)
    assert client.embeddings.create(model="demo/embed", input="x", dimensions=8).data[0].embedding
    image = client.images.generate(model="demo/image", prompt="a clock")
    assert base64.b64decode(image.data[0].b64_json or "").startswith(PNG)
    url = client.images.generate(model="demo/image", prompt="a clock", response_format="url")
    assert (url.data[0].url or "").startswith("data:image/png;base64,")
    speech = client.audio.speech.create(model="demo/speak", voice="alloy", input=HELLO)
    assert speech.response.headers["content-type"] == "audio/mpeg"
    assert speech.content.startswith(MP3_FRAME)
    text = client.audio.transcriptions.create(
        model="demo/transcribe", file=("hello.mp3", speech.content, "audio/mpeg")
    )
    assert text.text == f"Demo transcription of {len(speech.content)} bytes."
    srt = client.audio.transcriptions.create(
        model="demo/transcribe", file=("hello.mp3", speech.content), response_format="srt"
    )
    assert srt.startswith("1\n00:00:00,000 --> ")
