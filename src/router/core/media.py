"""Canonical non-chat requests and answers: embeddings, images, speech, transcription.

OpenAI's shapes are the lingua franca of these endpoints, so the canonical requests follow
them field for field, minus `model` (the gateway chooses the target; the codec writes the
target's name). Answers come back as the provider's bytes plus what accounting needs.
Nothing here does I/O or knows about HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from decimal import Decimal
from typing import BinaryIO, Literal

import msgspec

from router.config import Prices
from router.core.types import Costs

MediaKind = Literal["embedding", "image", "speech", "transcription"]
MEDIA_KINDS: tuple[MediaKind, ...] = ("embedding", "image", "speech", "transcription")

EmbeddingInput = str | list[str | int | list[int]]
"""A string, or a list of strings, of token ids (one input) or of token-id lists: msgspec
cannot tell lists apart by their items, so the surface checks the list is of one kind."""


class EmbeddingRequest(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    input: EmbeddingInput
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = None
    user: str | None = None


class ImageRequest(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    prompt: str
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    output_format: str | None = None
    output_compression: int | None = None
    background: str | None = None
    moderation: str | None = None
    style: str | None = None
    user: str | None = None


class SpeechRequest(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    input: str
    voice: str | dict[str, str]
    instructions: str | None = None
    response_format: str | None = None  # mp3 (default), opus, aac, flac, wav, pcm
    speed: float | None = None
    stream_format: Literal["audio", "sse"] | None = None


class Upload(msgspec.Struct, frozen=True):
    """An uploaded file, spooled by the surface (memory up to 1 MB, then a temporary file)."""

    filename: str
    content_type: str
    file: BinaryIO
    size: int


class TranscriptionRequest(msgspec.Struct, frozen=True, kw_only=True):
    upload: Upload
    language: str | None = None
    prompt: str | None = None
    response_format: Literal["json", "text", "srt", "vtt", "verbose_json"] | None = None
    temperature: float | None = None
    timestamp_granularities: tuple[str, ...] = ()
    include: tuple[str, ...] = ()

    def fields(self) -> list[tuple[str, str]]:
        """The form fields besides `model` and `file`, as OpenAI's API names them."""
        out = [
            (name, str(value))
            for name, value in (
                ("language", self.language),
                ("prompt", self.prompt),
                ("response_format", self.response_format),
                ("temperature", self.temperature),
            )
            if value is not None
        ]
        out += [("timestamp_granularities[]", g) for g in self.timestamp_granularities]
        out += [("include[]", i) for i in self.include]
        return out


MediaRequest = EmbeddingRequest | ImageRequest | SpeechRequest | TranscriptionRequest

KIND_OF: dict[type[MediaRequest], MediaKind] = {
    EmbeddingRequest: "embedding",
    ImageRequest: "image",
    SpeechRequest: "speech",
    TranscriptionRequest: "transcription",
}


class MediaUsage(msgspec.Struct, frozen=True, kw_only=True):
    """What a media answer consumed, as far as the provider or the request tells."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    images: int | None = None
    characters: int | None = None
    seconds: float | None = None


class MediaReply(msgspec.Struct, kw_only=True):
    """A provider's successful answer. `body` is the whole answer, or, when `rest` is set
    (audio streamed as it is produced), its first chunk."""

    content_type: str
    body: bytes
    rest: AsyncGenerator[bytes, None] | None = None
    usage: MediaUsage = MediaUsage()


_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)


def price_media(usage: MediaUsage, prices: Prices | None) -> Costs | None:
    """What a media answer cost; None when the catalog has no price for what was used.

    Tokens when the provider reported them and the model has token prices (embeddings,
    gpt-image, token-billed transcription); else per image, per character of input, or per
    second of audio, whichever the model is priced by and the answer told.
    """
    if prices is None:
        return None
    if usage.input_tokens is not None and prices.input is not None and not _per_unit(prices):
        fresh = Decimal(usage.input_tokens) * prices.input / _MILLION
        made = Decimal(usage.output_tokens or 0) * (prices.output or _ZERO) / _MILLION
        return Costs(fresh, made, fresh + made)
    if usage.images is not None and prices.per_image is not None:
        return _output(usage.images * prices.per_image)
    if usage.characters is not None and prices.per_1m_characters is not None:
        return _input(usage.characters * prices.per_1m_characters / _MILLION)
    if usage.seconds is not None and prices.per_second is not None:
        return _input(Decimal(str(usage.seconds)) * prices.per_second)
    return None


def _per_unit(prices: Prices) -> bool:
    """Priced per image or per character: such prices win over token prices."""
    return prices.per_image is not None or prices.per_1m_characters is not None


def _input(cost: Decimal) -> Costs:
    return Costs(cost, _ZERO, cost)


def _output(cost: Decimal) -> Costs:
    return Costs(_ZERO, cost, cost)
