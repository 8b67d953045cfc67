"""The on-disk form of conversation messages, owned by the store.

Rows hold JSON of `StoredMessage`, not of the internal `Message`: renaming or adding a field
to the canonical types cannot silently change what is on disk (a format test pins it). Only
what a conversation needs is kept: text and image parts, tool calls and results, and the web
pages a searched answer cites (`sources`, on the answer only; absent from older rows).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from router.core.types import ImagePart, Message, Part, Role, Source, TextPart, ToolCall


class StoredText(msgspec.Struct, frozen=True, tag="text"):
    text: str


class StoredImage(msgspec.Struct, frozen=True, tag="image"):
    url: str
    detail: str | None = None


class StoredToolCall(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: str


class StoredSource(msgspec.Struct, frozen=True):
    url: str
    title: str = ""


class StoredMessage(msgspec.Struct, frozen=True):
    role: Role
    content: list[StoredText | StoredImage] = []
    tool_calls: list[StoredToolCall] = []
    tool_call_id: str | None = None
    name: str | None = None
    sources: list[StoredSource] | msgspec.UnsetType = msgspec.UNSET  # written only when any


_DECODE = msgspec.json.Decoder(list[StoredMessage]).decode
_ENCODE = msgspec.json.Encoder().encode


def _stored_part(p: Part) -> StoredText | StoredImage | None:
    if isinstance(p, TextPart):
        return StoredText(p.text)
    if isinstance(p, ImagePart):
        return StoredImage(p.url, p.detail)
    return None  # reasoning is not kept with a conversation


def encode_messages(messages: Iterable[Message], sources: Iterable[Source] = ()) -> bytes:
    """The rows' JSON; `sources` (a searched answer's) go with the last message."""
    stored = [
        StoredMessage(
            m.role,
            [s for p in m.content if (s := _stored_part(p)) is not None],
            [StoredToolCall(c.id, c.name, c.arguments) for c in m.tool_calls],
            m.tool_call_id,
            m.name,
        )
        for m in messages
    ]
    cited = [StoredSource(s.url, s.title) for s in sources]
    if cited and stored:
        stored[-1] = msgspec.structs.replace(stored[-1], sources=cited)
    return _ENCODE(stored)


def decode_sources(blob: bytes) -> tuple[Source, ...]:
    """The sources a row's answer cites (none for rows without)."""
    return tuple(
        Source(s.url, s.title)
        for m in _DECODE(blob)
        if not isinstance(m.sources, msgspec.UnsetType)
        for s in m.sources
    )


def decode_messages(blob: bytes) -> list[Message]:
    return [
        Message(
            m.role,
            tuple(
                TextPart(p.text) if isinstance(p, StoredText) else ImagePart(p.url, p.detail)
                for p in m.content
            ),
            tuple(ToolCall(c.id, c.name, c.arguments) for c in m.tool_calls),
            m.tool_call_id,
            m.name,
        )
        for m in _DECODE(blob)
    ]
