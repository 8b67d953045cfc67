"""The committed part of a streamed chat call (`ChatStream`), and a cached answer replayed as
a stream (`CachedStream`). A failure after the first token is rescued when possible
(`router.core.rescue`); the caller sees one consistent answer or an explicit failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from router.core import accounting
from router.core.assemble import Assembler
from router.core.cache import Entry
from router.core.call import Call, Policy
from router.core.gateway import Opened
from router.core.rescue import Rescuer, candidates
from router.core.trail import Trail
from router.core.types import (
    ChatRequest,
    Completion,
    Event,
    FinishReason,
    Target,
    TextDelta,
    Usage,
    estimate_prompt,
    estimate_tokens,
)
from router.errors import Failure, StreamFailed, UpstreamError

if TYPE_CHECKING:
    from router.core.chat import ChatService

ChatCall = Call[ChatRequest]


class ChatStream:
    """The committed part of a stream: iterate for event batches; `completion` after.

    A failure after the first token is rescued when possible (`router.core.rescue`); the
    caller sees one consistent answer or an explicit failure, never a silent truncation."""

    def __init__(
        self,
        service: ChatService,
        call: ChatCall,
        opened: Opened,
        trail: Trail,
        targets: list[Target],
        policy: Policy,
    ) -> None:
        self.service = service
        self.call = call
        self.trail = trail
        self.targets = targets
        self.policy = policy
        self.target = opened.target
        self.first_token = opened.first_token
        self.assembler = Assembler()
        self.completion: Completion | None = None
        self.rescuer = Rescuer(service.gateway, policy, trail)
        self.dropped = service.dropped(opened.target, call.request)
        self.rescued = False
        self._opened = opened
        self.cache: str | None = None  # "miss" when the answer goes into the response cache
        self.cache_ttl: float | None = None

    async def __aiter__(self) -> AsyncIterator[list[Event]]:
        source = self._opened
        original: UpstreamError | None = None
        while True:
            attempt_text: list[str] = []
            try:
                async for batch in self._relay(source, attempt_text):
                    yield batch
                break
            except UpstreamError as exc:
                original = original or exc
                self._failed(source, exc, "".join(attempt_text))
                rescued = await self._rescue(source.target, exc)
                if rescued is None:
                    completion = self._complete("error")
                    self._report(completion, source, original.failure.value)
                    raise StreamFailed(original, completion) from None
                self.rescued = True
                self.target = rescued.target
                source = rescued
            except (GeneratorExit, asyncio.CancelledError):
                self._failed(source, _CLIENT_CLOSED, "".join(attempt_text))
                self._report(self._complete(None), source, _CLIENT_CLOSED.failure.value)
                raise
        self.service.gateway.settle(source, self.trail, None)
        self.completion = self._complete(None)
        self.completion.cache = self.cache
        if self.cache_ttl is not None:
            await self.service.cache.remember(self.call, self.completion, self.cache_ttl)
        self._report(self.completion, source, "ok")

    async def _rescue(self, failed: Target, exc: UpstreamError) -> Opened | None:
        if exc.failure is Failure.DEADLINE or self.assembler.calls or self.call.request.n > 1:
            return None  # a tool call or several choices cannot be spliced
        targets = candidates(failed, exc.failure, self.targets)
        sent = self.assembler.full_text()
        return await self.rescuer.rescue(targets, self.call.request, sent)

    async def _relay(self, source: Opened, attempt_text: list[str]) -> AsyncIterator[list[Event]]:
        assembler = self.assembler
        deadline = self.policy.deadline
        loop = asyncio.get_running_loop()
        batch = source.head
        rest = source.rest
        gateway = self.service.gateway
        ref, stats = source.target.ref, gateway.stats
        while True:
            assembler.add(batch)
            attempt_text.extend(e.text for e in batch if type(e) is TextDelta)
            yield batch
            now = loop.time()
            if now > deadline:
                await rest.aclose()
                raise UpstreamError(Failure.DEADLINE, "the request deadline passed mid-stream")
            try:
                batch = await anext(rest)  # the backend's watchdog bounds the wait
            except StopAsyncIteration:
                return
            stats.gap(ref, loop.time() - now)

    def _failed(self, source: Opened, exc: UpstreamError, text: str) -> None:
        """Close the broken attempt, with the cost of what it produced before breaking."""
        target = source.target
        used = Usage(estimate_prompt(self.call.request), estimate_tokens(text), estimated=True)
        cost = accounting.price(used, target.info.prices if target.info else None)
        total = cost.total_tokens_cost if cost else None
        self.service.gateway.settle(source, self.trail, exc, used, total)

    def _complete(self, finish: FinishReason | None) -> Completion:
        completion = self.service.completion(
            self.call, self.target, self.assembler, self.trail, self.first_token
        )
        if finish is not None:
            completion.finish = finish
        return completion

    def _report(self, completion: Completion, source: Opened, outcome: str) -> None:
        ttft = source.first_token - source.started
        self.service.report(self.call, completion, self.target, ttft, outcome, self.rescued)


class CachedStream(ChatStream):
    """A cached answer replayed as a stream: one batch of events, in the usual format."""

    def __init__(self, service: ChatService, call: ChatCall, entry: Entry, target: Target):
        self.service = service
        self.call = call
        self.trail = Trail()
        self.target = target
        self.completion = None
        self.rescued = False
        self.cache = "hit"
        self.cache_ttl = None
        self.dropped: tuple[str, ...] = ()
        self.entry = entry

    async def __aiter__(self) -> AsyncIterator[list[Event]]:
        yield self.entry.events()
        self.completion = self.service.hit(self.call, self.entry, self.target)


_CLIENT_CLOSED = UpstreamError(Failure.CLIENT_CLOSED, "the client closed the stream")
