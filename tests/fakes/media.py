"""Successful answers of the non-chat OpenAI endpoints, shaped as in openai-openapi.yaml.

POST /embeddings            deterministic unit vectors (shake-256 of model + input);
                            1536 dims (3072 for *large* models) unless `dimensions`;
                            `encoding_format: base64` = little-endian float32. The JSON floats
                            are the same float32 values, so both formats decode equal.
POST /images/generations    `n` 1x1 PNGs as `b64_json`, or `url`s served by the fake itself
                            (default `url` for dall-e-*, `b64_json` otherwise)
POST /audio/speech          mp3 (audio/mpeg), wav (audio/wav) or pcm (audio/pcm), in 4
                            chunks; `stream_format: sse` -> speech.audio.delta/done events
POST /audio/transcriptions  text "Fake transcription of N bytes." (N = uploaded file size)
                            unless Fault.ok(text=...); duration = N / 8000 s (the byte rate
                            of the fake's own MP3); json, text, srt, vtt, verbose_json
GET  /models                the fake's model list
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

from fakes import binary
from fakes.faults import Reply
from fakes.frames import CREATED, Answer, Ctx, Frame, Stream, Whole, dumps, whole_json

TEXT = "text/plain; charset=utf-8"


def embeddings(reply: Reply, ctx: Ctx) -> Answer:
    body: dict[str, Any] = ctx.body
    inputs = body.get("input")
    items: list[Any] = (
        [inputs] if isinstance(inputs, str) or not isinstance(inputs, list) else inputs
    )
    if items and all(isinstance(t, int) for t in items):
        items = [items]  # one pre-tokenised input
    dims = body.get("dimensions") or (3072 if "large" in ctx.model else 1536)
    base64_out = body.get("encoding_format") == "base64"
    data = []
    tokens = 0
    for index, item in enumerate(items):
        text = item if isinstance(item, str) else dumps(item).decode()
        tokens += len(item) if isinstance(item, list) else max(1, len(text.split()))
        packed = _vector(ctx.model, text, int(dims))
        vector: Any = base64.b64encode(packed).decode()
        if not base64_out:
            vector = list(struct.unpack(f"<{len(packed) // 4}f", packed))
        data.append({"object": "embedding", "index": index, "embedding": vector})
    if reply.usage is not None:
        tokens = reply.usage.prompt
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return whole_json({"object": "list", "data": data, "model": ctx.model, "usage": usage})


def _vector(model: str, text: str, dims: int) -> bytes:
    raw = hashlib.shake_256(f"{model}\n{text}".encode()).digest(2 * dims)
    values = [v / 32768.0 - 1.0 for v in struct.unpack(f"<{dims}H", raw)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return struct.pack(f"<{dims}f", *(v / norm for v in values))


def images(reply: Reply, ctx: Ctx) -> Answer:
    body: dict[str, Any] = ctx.body
    default = "url" if ctx.model.startswith("dall-e") else "b64_json"
    form = body.get("response_format") or default
    count = int(body.get("n") or 1)
    picture = base64.b64encode(binary.png()).decode()
    data = []
    for i in range(count):
        item: dict[str, Any] = {"b64_json": picture}
        if form == "url":
            item = {"url": f"{ctx.base_url}/fake-files/image-{ctx.seq}-{i}.png"}
        if ctx.model == "dall-e-3":
            item["revised_prompt"] = reply.text or body.get("prompt", "")
        data.append(item)
    out: dict[str, Any] = {"created": CREATED, "data": data}
    if not ctx.model.startswith("dall-e"):
        prompt = max(1, len(str(body.get("prompt", "")).split()))
        out |= {
            "output_format": "png",
            "size": body.get("size") or "1024x1024",
            "quality": body.get("quality") or "medium",
        }
        out["usage"] = {
            "total_tokens": prompt + 272 * count,
            "input_tokens": prompt,
            "output_tokens": 272 * count,
            "input_tokens_details": {"text_tokens": prompt, "image_tokens": 0},
        }
    return whole_json(out)


_AUDIO = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm"}


def speech(reply: Reply, ctx: Ctx) -> Answer:
    body: dict[str, Any] = ctx.body
    form = body.get("response_format") or "mp3"
    if form not in _AUDIO:
        return unsupported(f"The fake upstream cannot produce '{form}' audio.", "response_format")
    seconds = binary.speech_seconds(str(body.get("input", "")))
    audio = {"mp3": binary.mp3, "wav": binary.wav, "pcm": binary.pcm}[form](seconds)
    pieces = binary.split(audio, 4)
    if body.get("stream_format") != "sse":
        return Whole(content_type=_AUDIO[form], pieces=pieces, chunked=True)
    frames = [
        Frame(
            _sse({"type": "speech.audio.delta", "audio": base64.b64encode(p).decode()}), "content"
        )
        for p in pieces
    ]
    words = max(1, len(str(body.get("input", "")).split()))
    usage = {
        "input_tokens": words,
        "output_tokens": len(pieces),
        "total_tokens": words + len(pieces),
    }
    frames.append(Frame(_sse({"type": "speech.audio.done", "usage": usage}), "final"))
    return Stream(content_type="text/event-stream", frames=tuple(frames))


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + dumps(payload) + b"\n\n"


def transcription(reply: Reply, ctx: Ctx) -> Answer:
    form: dict[str, Any] = ctx.body
    upload = form.get("file")
    size = upload[2] if isinstance(upload, tuple) else 0
    text = reply.text if reply.text is not None else f"Fake transcription of {size} bytes."
    duration = round(size / binary.MP3_BYTES_PER_SECOND, 2)
    kind = form.get("response_format") or "json"
    usage = {"type": "duration", "seconds": math.ceil(duration)}
    if kind == "json":
        return whole_json({"text": text, "usage": usage})
    if kind == "text":
        return Whole(content_type=TEXT, pieces=(text.encode() + b"\n",))
    if kind in ("srt", "vtt"):
        return Whole(content_type=TEXT, pieces=(_subtitles(kind, text, duration).encode(),))
    if kind == "verbose_json":
        return whole_json(_verbose(form, text, duration) | {"usage": usage})
    return unsupported(f"response_format '{kind}' is not supported.", "response_format")


def _stamp(seconds: float, comma: bool) -> str:
    ms = round(seconds * 1000)
    out = f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
    return out.replace(".", ",") if comma else out


def _subtitles(kind: str, text: str, duration: float) -> str:
    span = f"{_stamp(0, kind == 'srt')} --> {_stamp(duration, kind == 'srt')}"
    if kind == "srt":
        return f"1\n{span}\n{text}\n\n"
    return f"WEBVTT\n\n{span}\n{text}\n\n"


def _verbose(form: dict[str, Any], text: str, duration: float) -> dict[str, Any]:
    segment = {
        "id": 0,
        "seek": 0,
        "start": 0.0,
        "end": duration,
        "text": " " + text,
        "tokens": [50364 + i for i in range(len(text.split()))],
        "temperature": 0.0,
        "avg_logprob": -0.25,
        "compression_ratio": 1.2,
        "no_speech_prob": 0.01,
    }
    out: dict[str, Any] = {
        "task": "transcribe",
        "language": "english",
        "duration": duration,
        "text": text,
        "segments": [segment],
    }
    if "word" in str(form.get("timestamp_granularities[]", "")):
        words = text.split()
        step = duration / max(1, len(words))
        out["words"] = [
            {"word": w, "start": round(i * step, 3), "end": round((i + 1) * step, 3)}
            for i, w in enumerate(words)
        ]
    return out


def models(names: list[str]) -> Whole:
    data = [{"id": n, "object": "model", "created": CREATED, "owned_by": "openai"} for n in names]
    return whole_json({"object": "list", "data": data})


def unsupported(message: str, param: str | None = None) -> Whole:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    return whole_json({"error": error}, status=400)


def image_file() -> Whole:
    return Whole(content_type="image/png", pieces=(binary.png(),))
