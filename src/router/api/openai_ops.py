"""The OpenAI-compatible surface's operations for /openapi.json: chat
(`router.api.openai`) and media (`router.api.openai_media`), with the Structs of what they
send that is not encoded from a Struct.

`chat.completion.chunk` frames are pre-encoded by `openai.Chunks`, and the media endpoints
relay a provider's answer as it sent it (as OpenAI documents them), so these Structs are
documentation, never decoded; the schemathesis run checks them against real answers.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from router.api.errors import OpenAIError
from router.api.openai import ChatCompletion, StreamErrorEvent
from router.api.openai_chunks import OutUsage
from router.api.openai_media import (
    EmbeddingsBody,
    ImagesBody,
    SpeechBody,
    TranscriptionForm,
)
from router.api.openai_request import ChatBody
from router.api.openapi import AUDIO, CALL, JSON, SSE, TEXT, Errors, Events, Form, Op

Unset = msgspec.UnsetType
UNSET = msgspec.UNSET

# ---- chat ---------------------------------------------------------------------------------


class _ChunkFunction(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str | Unset = UNSET  # in a tool call's first delta only
    arguments: str


class _ChunkToolCall(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    index: int
    id: str | Unset = UNSET  # in a tool call's first delta only
    type: Literal["function"] | Unset = UNSET
    function: _ChunkFunction


class ChunkDelta(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    role: str | Unset = UNSET
    content: str | Unset = UNSET
    refusal: Unset | None = UNSET
    reasoning_content: str | Unset = UNSET
    tool_calls: list[_ChunkToolCall] | Unset = UNSET


class ChunkChoice(msgspec.Struct, forbid_unknown_fields=True):
    index: int
    delta: ChunkDelta
    logprobs: None
    finish_reason: str | None


class ChatCompletionChunk(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What `Chunks` writes, frame by frame (for the document; the frames are pre-encoded)."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    system_fingerprint: None
    choices: list[ChunkChoice]
    usage: OutUsage | Unset | None = UNSET


# ---- media --------------------------------------------------------------------------------


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
        "/v1/chat/completions",
        "Chat completion (OpenAI-compatible)",
        "OpenAI",
        {JSON: ChatCompletion, SSE: Events((ChatCompletionChunk, StreamErrorEvent))},
        ChatBody,
        _ERRORS,
        examples=(
            {"model": "demo/echo", "messages": [{"role": "user", "content": "Say hi"}]},
            {
                "model": "demo/echo",
                "messages": [{"role": "user", "content": "Say hi"}],
                "stream": True,
            },
        ),
    ),
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
