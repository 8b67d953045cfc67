"""What a wire protocol adapter is: a codec between canonical types and one provider dialect.

An adapter never does I/O. `router.upstream` sends what `build` returns and hands the bytes
back to `parse_response` / a `StreamDecoder`; errors are classified by `classify`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import msgspec

from router.config import ModelInfo, Provider
from router.core.types import ChatRequest, Event
from router.errors import UpstreamError


class Target(msgspec.Struct, frozen=True):
    """One `provider/model` the gateway may send a request to, resolved at plan time."""

    provider: Provider
    model: str
    info: ModelInfo | None
    key: str | None  # the provider's API key, if configured; never rendered anywhere

    @property
    def ref(self) -> str:
        return f"{self.provider.name}/{self.model}"

    @property
    def upstream_model(self) -> str:
        return (self.info.upstream_name if self.info else None) or self.model

    def __repr__(self) -> str:  # keep the key out of every repr
        return f"Target({self.ref})"


class HttpCall(msgspec.Struct, frozen=True):
    """A ready-to-send upstream request."""

    url: str
    headers: Mapping[str, str]
    body: bytes


class StreamDecoder(Protocol):
    """Stateful decoder for one upstream stream; `feed` gets one SSE event at a time."""

    done: bool  # the protocol's own end marker was seen

    def feed(self, event: str | None, data: bytes) -> list[Event]:
        """Canonical events for one SSE event. Raises UpstreamError for in-band errors and
        malformed data."""
        ...


class Codec(Protocol):
    """A wire protocol: canonical request in, canonical events out, errors classified."""

    def build(self, target: Target, request: ChatRequest, stream: bool) -> HttpCall: ...

    def parse_response(self, body: bytes) -> list[Event]: ...

    def stream_decoder(self) -> StreamDecoder: ...

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError: ...
