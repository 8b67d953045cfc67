"""The interfaces the core calls, implemented outside it and wired in by the composition
root (`router.runtime`): the backend an attempt goes through, the gateway-run web search, and
the observer through which metrics, request logs, the spend ledger and traces learn about
attempts and calls."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from decimal import Decimal
from typing import Protocol

from router.core.media import MediaKind, MediaReply, MediaRequest
from router.core.types import Attempt, ChatRequest, Event, Found, Report, Target, Usage


class Backend(Protocol):
    """Reaches the targets of one protocol and answers with canonical events."""

    media_kinds: frozenset[MediaKind]  # the non-chat endpoints it serves (`forward`)
    accepts: frozenset[str]  # the canonical `ChatRequest.params()` it honours
    dialect: str  # whose `Native` passthrough it sends (`Native.protocol`)

    async def complete(
        self, target: Target, request: ChatRequest, timeout: float | None
    ) -> list[Event]:
        """The whole answer as events (non-streamed)."""
        ...

    def stream(
        self,
        target: Target,
        request: ChatRequest,
        first_token: float,
        stall: float | None = None,
    ) -> AsyncGenerator[list[Event], None]:
        """The answer as batches of events, as they arrive: no first one within `first_token`
        seconds is a FIRST_TOKEN_TIMEOUT, then `stall` seconds of silence (a limit learned
        for the target, when shorter than `timeouts.stream_idle`) a STALL."""
        ...

    async def forward(self, target: Target, request: MediaRequest, timeout: float) -> MediaReply:
        """A non-chat answer; for streamed audio, its first chunk and the rest."""
        ...


class Searcher(Protocol):
    """The gateway-run web search (`[search]` in routing.toml), for models that cannot search."""

    name: str  # the search API, for messages ("tavily", "searxng", ...)
    fee: Decimal  # what one search costs, USD (0 when not declared)

    async def search(self, query: str) -> tuple[Found, ...]:
        """The results for `query`, best first; raises UpstreamError when the API fails."""
        ...


class Observer(Protocol):
    def attempted(self, target: Target, attempt: Attempt, usage: Usage | None) -> None:
        """One upstream attempt ended with its final outcome; `usage` is what a broken
        attempt consumed (estimated), None for the others."""
        ...

    def finished(self, report: Report) -> None:
        """A call ended: answered, or failed before or after its first token."""
        ...


class Observers:
    """Several observers as one, called in order."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def attempted(self, target: Target, attempt: Attempt, usage: Usage | None) -> None:
        for o in self.observers:
            o.attempted(target, attempt, usage)

    def finished(self, report: Report) -> None:
        for o in self.observers:
            o.finished(report)
