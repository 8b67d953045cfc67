"""Reading SSE bodies in tests: split raw bytes into events and decode their `data:` JSON.

Handles both `\\n\\n` (OpenAI, Anthropic, the gateway) and `\\r\\n\\r\\n` (Gemini) separators.
"""

from __future__ import annotations

from typing import Any

import msgspec


def split(raw: bytes) -> list[bytes]:
    """The non-empty events of an SSE body, without their separators."""
    sep = b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n"
    return [event for event in raw.split(sep) if event.strip()]


def field(event: bytes, name: str) -> str | None:
    """The value of the first `name:` line of one event (`event`, `data`, `id` ...)."""
    for line in event.splitlines():
        key, _, value = line.decode().partition(":")
        if key == name:
            return value.removeprefix(" ")
    return None


def names(raw: bytes) -> list[str | None]:
    """The `event:` name of every event (None where it has none)."""
    return [field(event, "event") for event in split(raw)]


def data(raw: bytes) -> list[Any]:
    """The decoded JSON `data:` of every event, skipping OpenAI's `[DONE]`."""
    payloads = (field(event, "data") for event in split(raw))
    return [msgspec.json.decode(p) for p in payloads if p is not None and p != "[DONE]"]
