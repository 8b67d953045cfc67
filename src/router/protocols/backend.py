"""How the gateway reaches a target: a `Backend` answers with canonical events.

`HttpBackend` pairs a wire codec with the pooled upstream; the built-in demo provider is a
backend of its own that needs no network. The registry in `router.protocols` maps each
protocol name to one of these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from router.core.types import ChatRequest, Event
from router.protocols.base import Codec, Target
from router.upstream import Upstream


class Backend(Protocol):
    async def complete(
        self, target: Target, request: ChatRequest, timeout: float | None
    ) -> list[Event]:
        """The whole answer as events (non-streamed)."""
        ...

    def stream(
        self, target: Target, request: ChatRequest, first_token: float
    ) -> AsyncIterator[list[Event]]:
        """The answer as batches of events, as they arrive."""
        ...


class HttpBackend:
    """A wire codec sent over the app's one upstream session."""

    def __init__(self, codec: Codec, upstream: Upstream) -> None:
        self.codec = codec
        self.upstream = upstream

    async def complete(
        self, target: Target, request: ChatRequest, timeout: float | None
    ) -> list[Event]:
        call = self.codec.build(target, request, stream=False)
        return await self.upstream.complete(self.codec, call, timeout)

    def stream(
        self, target: Target, request: ChatRequest, first_token: float
    ) -> AsyncIterator[list[Event]]:
        call = self.codec.build(target, request, stream=True)
        return self.upstream.stream(self.codec, call, first_token)
