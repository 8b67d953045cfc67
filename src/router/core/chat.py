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
from router.core.assemble import Assembler, estimate_prompt, estimate_tokens
from router.core.catalog import Catalog
from router.core.gateway import Gateway, Opened, Policy
from router.core.planner import Plan, chain, plan
from router.core.rescue import Rescued, candidates, rescue
from router.core.types import (
    Attempt,
    ChatRequest,
    Completion,
    Event,
    FinishReason,
    TextDelta,
    Usage,
)
from router.errors import Failure, RouterError, UpstreamError
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
        allowed = chain(self.catalog, call.models, call.fallbacks, call.principal.may_use)
        health = self.gateway.health
        return plan(allowed, self.protocols, health.allow, estimate_prompt(call.request))

    def policy(self, call: ChatCall) -> Policy:
        settings = self.gateway.settings
        retries = settings.retry.max_retries if call.max_retries is None else call.max_retries
        budget = settings.timeouts.request
        if call.timeout is not None:
            budget = min(budget, call.timeout)
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
        policy = self.policy(call)
        opened = await self.gateway.open_stream(the_plan, call.request, policy, trail)
        return ChatStream(self, call, opened, trail, the_plan.targets, policy)

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
    """The committed part of a stream: iterate for event batches; `completion` after.

    A failure after the first token is rescued when possible (`router.core.rescue`); the
    caller sees one consistent answer or an explicit failure, never a silent truncation."""

    def __init__(
        self,
        service: ChatService,
        call: ChatCall,
        opened: Opened,
        trail: list[Attempt],
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
        self._opened = opened

    async def __aiter__(self) -> AsyncIterator[list[Event]]:
        source: Opened | Rescued = self._opened
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
                rescued = None
                if exc.failure is not Failure.DEADLINE and not self.assembler.calls:
                    rescued = await rescue(
                        self.service.gateway,
                        candidates(source.target, self.targets),
                        self.call.request,
                        self.assembler.full_text(),
                        self.policy,
                        self.trail,
                    )
                if rescued is None:
                    self.service.metrics.stream_failures.labels("error").inc()
                    raise StreamFailed(original, self._complete("error")) from None
                self.service.metrics.stream_failures.labels("rescued").inc()
                self.target = rescued.target
                source = rescued
        self.completion = self._complete(None)

    async def _relay(
        self, source: Opened | Rescued, attempt_text: list[str]
    ) -> AsyncIterator[list[Event]]:
        assembler = self.assembler
        deadline = self.policy.deadline
        loop = asyncio.get_running_loop()
        batch = source.head
        rest = source.rest
        while True:
            assembler.add(batch)
            attempt_text.extend(e.text for e in batch if type(e) is TextDelta)
            yield batch
            if loop.time() > deadline:
                await rest.aclose()  # type: ignore[attr-defined]
                raise UpstreamError(Failure.DEADLINE, "the request deadline passed mid-stream")
            try:
                batch = await anext(rest)
            except StopAsyncIteration:
                return

    def _failed(self, source: Opened | Rescued, exc: UpstreamError, text: str) -> None:
        """Record the broken attempt, with the cost of what it produced before breaking."""
        trail = self.trail
        target = source.target
        last = trail[-1] if trail else None
        if last and last.outcome == "ok" and f"{last.provider}/{last.model}" == target.ref:
            trail.pop()  # it counted as ok at its first token; it was not
        self.service.gateway.record(target, source.started, trail, exc)
        used = Usage(estimate_prompt(self.call.request), estimate_tokens(text), estimated=True)
        cost = accounting.price(used, target.info.prices if target.info else None)
        trail[-1] = msgspec.structs.replace(
            trail[-1],
            tokens=used.total_tokens,
            cost=cost.total_tokens_cost if cost else None,
        )
        self.service.metrics.answered(target, used, cost.total_tokens_cost if cost else None)

    def _complete(self, finish: FinishReason | None) -> Completion:
        completion = self.service._finish(
            self.call, self.target, self.assembler, self.trail, self.first_token
        )
        if finish is not None:
            completion.finish = finish
        return completion
