"""Content parts as the surfaces accept them, and their canonical form.

Iron Labs and OpenAI share the text and `image_url` parts; each adds its own (Iron Labs's
`image` by URL, OpenAI's `refusal`). `cache_control` (Anthropic's prompt-cache breakpoint, as
OpenAI-compatible gateways accept it) becomes the canonical `CacheHint`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec

from router.core.types import CacheHint, ImagePart, TextPart
from router.errors import RequestError


class CacheControl(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: Literal["ephemeral"] = "ephemeral"
    ttl: Literal["5m", "1h"] | None = None


class ImageUrl(msgspec.Struct, frozen=True):
    url: str
    detail: str | None = None


class InText(msgspec.Struct, frozen=True, tag="text", forbid_unknown_fields=True):
    text: str
    cache_control: CacheControl | None = None


class InImageUrl(msgspec.Struct, frozen=True, tag="image_url", forbid_unknown_fields=True):
    image_url: ImageUrl | str
    cache_control: CacheControl | None = None


class InImage(msgspec.Struct, frozen=True, tag="image", forbid_unknown_fields=True):
    """Iron Labs: an image by URL."""

    url: str


class InRefusal(msgspec.Struct, frozen=True, tag="refusal"):
    """OpenAI: an assistant's refusal, sent back as history."""

    refusal: str


_SCHEMES = ("https://", "http://", "data:")


def check_images(parts: Sequence[object], field: str) -> None:
    """Image URLs are http(s) or `data:`; anything else (`ftp://`, `file://`) is a 400."""
    for j, p in enumerate(parts):
        url = p.url if isinstance(p, InImage) else None
        if isinstance(p, InImageUrl):
            url = p.image_url if isinstance(p.image_url, str) else p.image_url.url
        if url is not None and not url.lower().startswith(_SCHEMES):
            raise RequestError(
                "invalid_image_url",
                "An image URL must be http(s) or a data: URL.",
                f"{field}[{j}]",
            )


def _cache(c: CacheControl | None) -> CacheHint | None:
    return None if c is None else CacheHint(c.type, c.ttl)


def part_of(p: InText | InImageUrl | InImage | InRefusal) -> TextPart | ImagePart:
    if isinstance(p, InText):
        return TextPart(p.text, _cache(p.cache_control))
    if isinstance(p, InImage):
        return ImagePart(p.url)
    if isinstance(p, InRefusal):
        return TextPart(p.refusal)
    image = p.image_url
    if isinstance(image, str):
        return ImagePart(image, None, _cache(p.cache_control))
    return ImagePart(image.url, image.detail, _cache(p.cache_control))
