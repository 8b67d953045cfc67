"""The demo provider's non-chat answers: deterministic, valid, made locally.

- `embed`: unit vectors from SHAKE-256 of model and input (256 dimensions unless asked), as
  floats or base64 little-endian float32.
- `image`: a 1x1 PNG, as `b64_json` or a `data:` URL.
- `speak`: silent MPEG audio (mp3), or WAV / PCM silence, 60 ms per input character.
- `transcribe`: "Demo transcription of N bytes." as json, text, srt, vtt or verbose_json.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
import time
import zlib

import msgspec

from router.core.media import (
    EmbeddingInput,
    EmbeddingRequest,
    ImageRequest,
    MediaReply,
    MediaRequest,
    MediaUsage,
    SpeechRequest,
    TranscriptionRequest,
)
from router.errors import Failure, UpstreamError

DIMENSIONS = 256
_ENCODE = msgspec.json.Encoder().encode
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"


def answer(model: str, request: MediaRequest) -> MediaReply:
    if isinstance(request, EmbeddingRequest):
        return embedding(model, request)
    if isinstance(request, ImageRequest):
        return image(request)
    if isinstance(request, SpeechRequest):
        return speech(request)
    return transcription(request)


# ---- embeddings -------------------------------------------------------------------------------


def vector(model: str, text: str, dims: int) -> bytes:
    """A deterministic unit vector as little-endian float32."""
    raw = hashlib.shake_256(f"{model}\n{text}".encode()).digest(2 * dims)
    values = [v / 32768.0 - 1.0 for v in struct.unpack(f"<{dims}H", raw)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return struct.pack(f"<{dims}f", *(v / norm for v in values))


def _inputs(given: EmbeddingInput) -> list[str | list[int]]:
    """Each input as text or one token list (a flat list of ids is one input)."""
    if isinstance(given, str):
        return [given]
    ids = [t for t in given if isinstance(t, int)]
    if ids and len(ids) == len(given):
        return [ids]
    return [t for t in given if not isinstance(t, int)]


def embedding(model: str, request: EmbeddingRequest) -> MediaReply:
    items = _inputs(request.input)
    dims = request.dimensions or DIMENSIONS
    data = []
    tokens = 0
    for index, item in enumerate(items):
        text = item if isinstance(item, str) else " ".join(map(str, item))
        tokens += len(item) if isinstance(item, list) else max(1, (len(text) + 3) // 4)
        packed = vector(model, text, dims)
        values: object = base64.b64encode(packed).decode()
        if request.encoding_format != "base64":
            values = list(struct.unpack(f"<{dims}f", packed))
        data.append({"object": "embedding", "index": index, "embedding": values})
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    body = _ENCODE({"object": "list", "data": data, "model": model, "usage": usage})
    return MediaReply(content_type=_JSON, body=body, usage=MediaUsage(input_tokens=tokens))


# ---- images -----------------------------------------------------------------------------------


def _png(rgba: tuple[int, int, int, int] = (16, 163, 127, 255)) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + bytes(rgba))
    body = chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


PNG = _png()
_PNG_B64 = base64.b64encode(PNG).decode()


def image(request: ImageRequest) -> MediaReply:
    count = request.n or 1
    item: dict[str, str] = {"b64_json": _PNG_B64}
    if request.response_format == "url":
        item = {"url": "data:image/png;base64," + _PNG_B64}
    out = {"created": int(time.time()), "data": [item] * count}
    return MediaReply(content_type=_JSON, body=_ENCODE(out), usage=MediaUsage(images=count))


# ---- speech -----------------------------------------------------------------------------------

MP3_FRAME_SECONDS = 576 / 24000
_MP3_FRAME = bytes((0xFF, 0xF3, 0x84, 0xC4)) + bytes(188)  # MPEG-2 layer III, 64k, 24 kHz, mono
_PCM_RATE = 24000
_AUDIO = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm"}


def seconds_for(text: str) -> float:
    return max(0.5, 0.06 * len(text))


def mp3(seconds: float) -> bytes:
    return _MP3_FRAME * max(1, math.ceil(seconds / MP3_FRAME_SECONDS))


def _wav(pcm: bytes) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, _PCM_RATE, _PCM_RATE * 2, 2, 16)
    riff = struct.pack("<I", 36 + len(pcm))
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(pcm))
    return b"RIFF" + riff + b"WAVE" + chunks + pcm


def speech(request: SpeechRequest) -> MediaReply:
    form = request.response_format or "mp3"
    if form not in _AUDIO:
        raise UpstreamError(
            Failure.BAD_REQUEST, f"the demo voice speaks mp3, wav or pcm, not {form}", status=400
        )
    seconds = seconds_for(request.input)
    silence = bytes(2 * int(seconds * _PCM_RATE))
    audio = {"mp3": mp3(seconds), "wav": _wav(silence), "pcm": silence}[form]
    usage = MediaUsage(characters=len(request.input))
    if request.stream_format == "sse":
        delta = _ENCODE({"type": "speech.audio.delta", "audio": base64.b64encode(audio).decode()})
        done = _ENCODE({"type": "speech.audio.done", "usage": {"input_tokens": 0}})
        body = b"data: " + delta + b"\n\ndata: " + done + b"\n\n"
        return MediaReply(content_type="text/event-stream", body=body, usage=usage)
    return MediaReply(content_type=_AUDIO[form], body=audio, usage=usage)


# ---- transcription ----------------------------------------------------------------------------

MP3_BYTES_PER_SECOND = 8000


def transcription(request: TranscriptionRequest) -> MediaReply:
    size = request.upload.size
    text = f"Demo transcription of {size} bytes."
    duration = round(size / MP3_BYTES_PER_SECOND, 2)
    usage = MediaUsage(seconds=duration)
    kind = request.response_format or "json"
    if kind == "text":
        return MediaReply(content_type=_TEXT, body=text.encode() + b"\n", usage=usage)
    if kind in ("srt", "vtt"):
        return MediaReply(content_type=_TEXT, body=_subtitles(kind, text, duration), usage=usage)
    seconds = {"type": "duration", "seconds": math.ceil(duration)}
    payload: dict[str, object] = {"text": text, "usage": seconds}
    if kind == "verbose_json":
        segment = {"id": 0, "seek": 0, "start": 0.0, "end": duration, "text": " " + text}
        payload = {"task": "transcribe", "language": request.language or "english"}
        payload |= {"duration": duration, "text": text, "segments": [segment], "usage": seconds}
    return MediaReply(content_type=_JSON, body=_ENCODE(payload), usage=usage)


def _stamp(seconds: float, comma: bool) -> str:
    ms = round(seconds * 1000)
    out = f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
    return out.replace(".", ",") if comma else out


def _subtitles(kind: str, text: str, duration: float) -> bytes:
    span = f"{_stamp(0, kind == 'srt')} --> {_stamp(duration, kind == 'srt')}"
    return (f"1\n{span}\n{text}\n\n" if kind == "srt" else f"WEBVTT\n\n{span}\n{text}\n\n").encode()
