"""The rendered answer of a fake upstream, before any fault touches the transport.

A dialect turns a `Reply` into either a `Whole` body or a `Stream` of SSE `Frame`s. Each frame
is tagged so that transport faults can count and cut consistently across protocols:

    meta     structure around content (OpenAI role chunk, Anthropic message_start/ping/blocks)
    content  a frame carrying model output (text, reasoning or tool-argument delta)
    final    finish reason and usage after the last content
    end      the terminator: `data: [DONE]` (OpenAI) or `message_stop` (Anthropic)
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import msgspec

from fakes.faults import Fault, Reply

FrameKind = Literal["meta", "content", "final", "end"]
CREATED = 1782321902
"""The `created` timestamp of generated replies (that of the recorded OpenAI reply)."""

_encode = msgspec.json.Encoder().encode


def dumps(value: Any) -> bytes:
    """Compact JSON, as the providers send it."""
    return _encode(value)


class Frame(msgspec.Struct, frozen=True):
    data: bytes
    kind: FrameKind


class Whole(msgspec.Struct, frozen=True, kw_only=True):
    """A complete body; `pieces` are written one after the other (several only for audio)."""

    status: int = 200
    content_type: str = "application/json"
    pieces: tuple[bytes, ...]
    headers: dict[str, str] = {}
    chunked: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(self.pieces)


class Stream(msgspec.Struct, frozen=True, kw_only=True):
    """An SSE answer; always status 200."""

    content_type: str
    frames: tuple[Frame, ...]
    headers: dict[str, str] = {}


Answer = Whole | Stream


class Ctx(msgspec.Struct, frozen=True, kw_only=True):
    """What a dialect may know about the request it answers."""

    model: str
    stream: bool
    body: Any
    seq: int
    base_url: str

    @property
    def include_usage(self) -> bool:
        """OpenAI sends a usage chunk only when `stream_options.include_usage` is true."""
        options = self.body.get("stream_options") if isinstance(self.body, dict) else None
        return isinstance(options, dict) and options.get("include_usage") is True

    def ident(self, prefix: str) -> str:
        """A deterministic per-request id such as `chatcmpl-fake000003`."""
        return f"{prefix}fake{self.seq:06d}"


class Dialect(Protocol):
    """One wire protocol's rendering of successes, errors and broken frames."""

    def chat(self, reply: Reply, ctx: Ctx) -> Answer: ...

    def error(self, fault: Fault, ctx: Ctx) -> Answer: ...

    def malformed(self, ctx: Ctx) -> bytes: ...

    def stream_error(self, ctx: Ctx) -> bytes: ...


def error_body(fault: Fault) -> bytes | None:
    """The explicit body a test gave to `Fault.status`, encoded; None means 'render default'."""
    if fault.body is None:
        return None
    if isinstance(fault.body, bytes):
        return fault.body
    if isinstance(fault.body, str):
        return fault.body.encode()
    return dumps(fault.body)


def whole_json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Whole:
    return Whole(status=status, pieces=(dumps(value),), headers=headers or {})


def seal(frames: tuple[Frame, ...]) -> tuple[Frame, ...]:
    """Re-tag the `meta` frames after the last content (e.g. a block stop) as `final`, so that
    'everything up to N content frames' never includes them."""
    last = max((i for i, f in enumerate(frames) if f.kind == "content"), default=-1)
    return tuple(
        Frame(f.data, "final") if i > last and f.kind == "meta" and last >= 0 else f
        for i, f in enumerate(frames)
    )
