"""OpenAI's non-chat endpoints: `/embeddings`, `/images/generations`, `/audio/speech`,
`/audio/transcriptions`, for OpenAI and every OpenAI-compatible provider.

Like every codec it does no I/O: it builds the upstream request (JSON, or the form fields of a
multipart upload), says whether the answer is streamed back as it comes (speech), reads what
accounting needs from an answer, and classifies errors (OpenAI's error envelope, shared with
the chat codec).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from router.core.media import (
    EmbeddingRequest,
    ImageRequest,
    MediaKind,
    MediaRequest,
    MediaUsage,
    SpeechRequest,
    TranscriptionRequest,
)
from router.core.types import Target
from router.errors import UpstreamError
from router.protocols.openai_chat import OpenAIChat
from router.upstream import HttpCall

_PATHS: dict[type[MediaRequest], str] = {
    EmbeddingRequest: "/embeddings",
    ImageRequest: "/images/generations",
    SpeechRequest: "/audio/speech",
    TranscriptionRequest: "/audio/transcriptions",
}
_ENCODER = msgspec.json.Encoder()


class _TokenUsage(msgspec.Struct):
    prompt_tokens: int | None = None  # embeddings
    input_tokens: int | None = None  # images, token-billed transcription
    output_tokens: int | None = None
    type: str | None = None  # transcription: "tokens" or "duration"
    seconds: float | None = None


class _Answer(msgspec.Struct):
    usage: _TokenUsage | None = None
    data: list[msgspec.Raw] | None = None  # images: one entry per image, left undecoded
    duration: float | None = None  # verbose_json transcription


_ANSWER = msgspec.json.Decoder(_Answer)


class Upload(msgspec.Struct, frozen=True):
    """A multipart request, ready for `Upstream.upload`: the file goes last."""

    url: str
    headers: Mapping[str, str]
    fields: list[tuple[str, str]]


class OpenAIMedia:
    """The codec for OpenAI's media endpoints under a provider's `base_url`."""

    kinds: frozenset[MediaKind] = frozenset({"embedding", "image", "speech", "transcription"})

    def __init__(self) -> None:
        self._errors = OpenAIChat()
        self._headers: dict[str, dict[str, str]] = {}  # provider -> headers, built once

    def headers(self, target: Target) -> dict[str, str]:
        found = self._headers.get(target.provider.name)
        if found is None:
            found = dict(target.provider.headers)
            if target.key:
                found["Authorization"] = f"Bearer {target.key}"
            self._headers[target.provider.name] = found
        return found

    def build(self, target: Target, request: MediaRequest) -> HttpCall:
        """A JSON request: the canonical request with the target's model name spliced in."""
        assert not isinstance(request, TranscriptionRequest)
        fields = _ENCODER.encode(request)  # an object: never empty, input/prompt are required
        body = b'{"model":' + _ENCODER.encode(target.upstream_model) + b"," + fields[1:]
        headers = {"Content-Type": "application/json", **self.headers(target)}
        return HttpCall(target.provider.base_url + _PATHS[type(request)], headers, body)

    def build_upload(self, target: Target, request: TranscriptionRequest) -> Upload:
        url = target.provider.base_url + _PATHS[TranscriptionRequest]
        fields = [("model", target.upstream_model), *request.fields()]
        return Upload(url, self.headers(target), fields)

    @staticmethod
    def streamed(request: MediaRequest) -> bool:
        """Is the answer relayed as it arrives? Speech is; everything else is one body."""
        return isinstance(request, SpeechRequest)

    @staticmethod
    def usage(request: MediaRequest, content_type: str, body: bytes) -> MediaUsage:
        """What accounting needs from a whole answer (and from the request itself)."""
        if isinstance(request, SpeechRequest):
            return MediaUsage(characters=len(request.input))
        if not content_type.startswith("application/json"):
            return MediaUsage()  # text, srt, vtt transcriptions carry no usage
        try:
            answer = _ANSWER.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return MediaUsage()
        return _usage_of(request, answer)

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        return self._errors.classify(status, headers, body)


def _usage_of(request: MediaRequest, answer: _Answer) -> MediaUsage:
    u = answer.usage
    if isinstance(request, EmbeddingRequest):
        return MediaUsage(input_tokens=u.prompt_tokens if u else None)
    if isinstance(request, ImageRequest):
        images = len(answer.data) if answer.data is not None else request.n or 1
        if u is not None and u.input_tokens is not None:
            return MediaUsage(
                input_tokens=u.input_tokens, output_tokens=u.output_tokens, images=images
            )
        return MediaUsage(images=images)
    if u is not None and u.type == "tokens":
        return MediaUsage(input_tokens=u.input_tokens, output_tokens=u.output_tokens)
    if u is not None and u.type == "duration" and u.seconds is not None:
        return MediaUsage(seconds=u.seconds)
    return MediaUsage(seconds=answer.duration)
