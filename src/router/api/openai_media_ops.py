"""The OpenAI-compatible media endpoints (`router.api.openai_media`) for /openapi.json: the
answers they relay, as OpenAI documents them, and their operations.

The gateway relays a provider's answer as it sent it, so these Structs are documentation (and
checked against the demo provider's answers by the schemathesis run), never decoded.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from router.api.errors import OpenAIError
from router.api.openai_media import (
    EmbeddingsBody,
    ImagesBody,
    SpeechBody,
    TranscriptionForm,
)
from router.api.openapi import AUDIO, CALL, JSON, SSE, TEXT, Errors, Events, Form, Op

Unset = msgspec.UnsetType
UNSET = msgspec.UNSET


class Embedding(msgspec.Struct):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str  # floats, or base64 little-endian float32


class EmbeddingUsage(msgspec.Struct):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(msgspec.Struct):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class ImageData(msgspec.Struct, kw_only=True):
    b64_json: str | Unset = UNSET
    url: str | Unset = UNSET
    revised_prompt: str | Unset = UNSET


class ImagesResponse(msgspec.Struct, kw_only=True):
    created: int
    data: list[ImageData]
    background: str | Unset = UNSET
    output_format: str | Unset = UNSET
    quality: str | Unset = UNSET
    size: str | Unset = UNSET
    usage: dict[str, object] | Unset = UNSET


class SpeechDelta(msgspec.Struct, tag="speech.audio.delta"):
    audio: str  # base64


class SpeechDone(msgspec.Struct, tag="speech.audio.done"):
    usage: dict[str, int]


class Transcription(msgspec.Struct, kw_only=True):
    """`json` (text, usage) and `verbose_json` (all of it)."""

    text: str
    usage: dict[str, object] | Unset = UNSET
    logprobs: list[dict[str, object]] | Unset = UNSET
    task: str | Unset = UNSET
    language: str | Unset = UNSET
    duration: float | Unset = UNSET
    segments: list[dict[str, object]] | Unset = UNSET
    words: list[dict[str, object]] | Unset = UNSET


_AUDIO_TYPES = ("audio/mpeg", "audio/opus", "audio/aac", "audio/flac", "audio/wav", "audio/pcm")
_SPEECH: dict[str, object] = {kind: AUDIO for kind in _AUDIO_TYPES}
_SPEECH[SSE] = Events((SpeechDelta | SpeechDone,))
_ERRORS = Errors(OpenAIError, CALL)
_UPLOAD = Form(TranscriptionForm, ("file",), ("file", "model"))

OPERATIONS = (
    Op(
        "POST",
        "/v1/embeddings",
        "Embeddings",
        "OpenAI",
        {JSON: EmbeddingList},
        EmbeddingsBody,
        _ERRORS,
        examples=({"model": "demo/embed", "input": ["hello", "world"]},),
    ),
    Op(
        "POST",
        "/v1/images/generations",
        "Image generation",
        "OpenAI",
        {JSON: ImagesResponse},
        ImagesBody,
        _ERRORS,
        examples=({"model": "demo/image", "prompt": "a lighthouse"},),
    ),
    Op(
        "POST",
        "/v1/audio/speech",
        "Text to speech",
        "OpenAI",
        _SPEECH,
        SpeechBody,
        _ERRORS,
        examples=(
            {"model": "demo/speak", "input": "Hello", "voice": "alloy"},
            {"model": "demo/speak", "input": "Hi", "voice": "alloy", "stream_format": "sse"},
        ),
    ),
    Op(
        "POST",
        "/v1/audio/transcriptions",
        "Speech to text",
        "OpenAI",
        {JSON: Transcription, "text/plain": TEXT},
        _UPLOAD,
        _ERRORS,
        examples=(
            {"model": "demo/transcribe", "file": "ID3 audio bytes"},
            {"model": "demo/transcribe", "file": "ID3", "response_format": "srt"},
        ),
    ),
)
