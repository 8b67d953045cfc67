"""One chat call, surface-agnostic: plan it, run it, account for it.

Both surfaces call `ChatService`; they only decode their own request shape into a
`ChatCall` and render the `Completion` (or the stream of event batches) in their own shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec

from router.auth import Principal
from router.core import accounting
from router.core.assemble import Assembler, estimate_prompt
from router.core.catalog import Catalog
from router.core.gateway import Gateway, Opened, Policy
from router.core.planner import Plan, chain, plan
from router.core.types import Attempt, ChatRequest, Completion, Event
from router.errors import NotFoundError, RouterError, UpstreamError
from router.metrics import Metrics
from router.protocols.base import Target


class ChatCall(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded chat request from any surface."""

    principal: Principal
    models: tuple[str, ...]
    fallbacks: tuple[str, ...] = ()
    request: ChatRequest
    max_retries: int | None = None
    timeout: float | None = None  # overall deadline override, seconds
    received: float  # loop time the request arrived
    surface: str


class StreamFailed(RouterError):
    """A stream broke after its first token and could not be rescued."""

    def __init__(self, error: UpstreamError, completion: Completion) -> None:
        super().__init__(error.message)
        self.error = error
        self.completion = completion


class ChatService:
    def __init__(self, catalog: Catalog, gateway: Gateway, metrics: Metrics) -> None:
        self.catalog = catalog
        self.gateway = gateway
        self.metrics = metrics
        self.protocols = frozenset(gateway.backends)

    def plan(self, call: ChatCall) -> Plan:
        targets = chain(self.catalog, call.models, call.fallbacks)
        allowed = [t for t in targets if call.principal.may_use(t.ref, _bare(t, call))]
        if not allowed:
            name = call.models[0]
            raise NotFoundError(
                "model_not_found",
                f"The model `{name}` does not exist or is not available.",
                "models[0]",
            )
        health = self.gateway.health
        return plan(allowed, self.protocols, health.allow, estimate_prompt(call.request))

    def policy(self, call: ChatCall) -> Policy:
        settings = self.gateway.settings
        retries = settings.retry.max_retries if call.max_retries is None else call.max_retries
        budget = settings.timeouts.request if call.timeout is None else call.timeout
        return Policy(retries, call.received + budget)

    async def complete(self, call: ChatCall) -> Completion:
        the_plan = self.plan(call)
        trail = list(the_plan.skipped)
        outcome = await self.gateway.complete(the_plan, call.request, self.policy(call), trail)
        assembler = Assembler()
        assembler.add(outcome.events)
        return self._finish(call, outcome.target, assembler, trail, outcome.first_token)

    async def open_stream(self, call: ChatCall) -> ChatStream:
        the_plan = self.plan(call)
        trail = list(the_plan.skipped)
        opened = await self.gateway.open_stream(the_plan, call.request, self.policy(call), trail)
        return ChatStream(self, call, opened, trail)

    def _finish(
        self,
        call: ChatCall,
        target: Target,
        assembler: Assembler,
        trail: list[Attempt],
        first_token: float,
    ) -> Completion:
        usage = assembler.final_usage(call.request)
        costs = accounting.price(usage, target.info.prices if target.info else None)
        now = asyncio.get_running_loop().time()
        completion = Completion(
            provider=target.provider.name,
            model=target.model,
            text=assembler.full_text(),
            reasoning="".join(assembler.reasoning),
            tool_calls=assembler.tool_calls(),
            usage=usage,
            finish=assembler.finish or "stop",
            costs=costs,
            attempts=trail,
            latency_ms=int((now - call.received) * 1000),
            ttft_ms=int((first_token - call.received) * 1000),
        )
        self.metrics.answered(target, usage, costs.total_tokens_cost if costs else None)
        self.metrics.ttft.labels(target.provider.name).observe(first_token - call.received)
        if trail and trail[0].outcome != "ok":
            self.metrics.fallbacks.labels(call.surface).inc()
        return completion


class ChatStream:
    """The committed part of a stream: iterate for event batches; `completion` after."""

    def __init__(
        self, service: ChatService, call: ChatCall, opened: Opened, trail: list[Attempt]
    ) -> None:
        self.service = service
        self.call = call
        self.opened = opened
        self.trail = trail
        self.assembler = Assembler()
        self.completion: Completion | None = None

    @property
    def target(self) -> Target:
        return self.opened.target

    async def __aiter__(self) -> AsyncIterator[list[Event]]:
        opened = self.opened
        assembler = self.assembler
        assembler.add(opened.head)
        yield opened.head
        try:
            async for batch in opened.rest:
                assembler.add(batch)
                yield batch
        except UpstreamError as exc:
            if self.trail and self.trail[-1].outcome == "ok":
                self.trail.pop()  # the attempt counted as ok at its first token; it was not
            self.service.gateway.record(opened.target, opened.started, self.trail, exc)
            self.service.metrics.stream_failures.labels("error").inc()
            completion = self._complete()
            completion.finish = "error"
            raise StreamFailed(exc, completion) from None
        self.completion = self._complete()

    def _complete(self) -> Completion:
        return self.service._finish(
            self.call, self.opened.target, self.assembler, self.trail, self.opened.first_token
        )


def _bare(target: Target, call: ChatCall) -> str | None:
    """The bare name the caller used for `target`, if they used one."""
    return target.model if target.model in call.models or target.model in call.fallbacks else None
