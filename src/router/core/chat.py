"""One chat call, surface-agnostic: plan it, run it, account for it.

Every surface calls `ChatService`; it only decodes its own request shape into a `Call` and
renders the `Completion` (or the stream of event batches) in its own shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import msgspec

from router.core import accounting, search
from router.core.assemble import Assembler
from router.core.call import Call, Policy
from router.core.catalog import Catalog, of_kind
from router.core.gateway import Gateway, Opened
from router.core.planner import Plan, chain, plan
from router.core.ports import Searcher
from router.core.rescue import Rescuer, candidates
from router.core.trail import Trail
from router.core.types import (
    Attempt,
    ChatRequest,
    Completion,
    Event,
    FinishReason,
    Report,
    Target,
    TextDelta,
    Usage,
    estimate_prompt,
    estimate_tokens,
)
from router.errors import AllTargetsFailed, Failure, RequestError, StreamFailed, UpstreamError

ChatCall = Call[ChatRequest]
T = TypeVar("T")


class ChatService:
    def __init__(
        self, catalog: Catalog, gateway: Gateway, searcher: Searcher | None = None
    ) -> None:
        self.catalog = catalog
        self.gateway = gateway
        self.searcher = searcher  # the gateway-run search, when `[search]` is configured
        self.protocols = frozenset(gateway.backends)

    def plan(self, call: ChatCall) -> Plan:
        allowed = chain(self.catalog, call.models, call.fallbacks, call.principal.may_use)
        allowed = of_kind(allowed, "chat", call.models[0] if call.models else None)
        fit = self.fitting(allowed, call.request)
        able, unsearched = search.unable(fit, call.request.search, self.searcher is not None)
        health = self.gateway.health
        the_plan = plan(able, self.protocols, health.allow, estimate_prompt(call.request))
        the_plan.skipped[:0] = unsearched
        if len(fit) < len(allowed):  # providers set to "skip" what they cannot honour
            skips = [_unfit(t, self.cannot(t, call.request)) for t in allowed if t not in fit]
            the_plan = Plan(the_plan.targets, skips + the_plan.skipped)
        return the_plan

    def fitting(self, targets: list[Target], request: ChatRequest) -> list[Target]:
        """The targets that can take the request's parameters, or drop the ones they cannot
        (their provider's `on_unsupported`); a 400 names the parameter if none can."""
        fit = [t for t in targets if not self.cannot(t, request)]
        if targets and not fit:
            first = self.cannot(targets[0], request)[0]
            raise RequestError(
                "unsupported_parameter",
                f"`{first}` cannot be honoured by any model of the chain.",
                first,
            )
        return fit

    def cannot(self, target: Target, request: ChatRequest) -> tuple[str, ...]:
        """Why `target` must be passed by: extras its provider does not take, and what it
        cannot honour when its provider says "skip" rather than "drop"."""
        out = set(request.extra or ()) - target.provider.extra_params
        if target.provider.on_unsupported == "skip":
            out |= set(self.dropped(target, request))
        return tuple(sorted(out))

    def dropped(self, target: Target, request: ChatRequest) -> tuple[str, ...]:
        """What `target` will not honour of `request`: parameters its protocol lacks or its
        model refuses, and passthrough fields of another protocol."""
        backend = self.gateway.backends[target.provider.protocol]
        params = request.params()
        refused = target.info.unsupported_params if target.info else frozenset()
        out = (params - backend.accepts) | (params & refused - {"max_tokens"})
        native = request.native
        # Passthrough fields of another dialect (a whole native body, `capability` set, is
        # its surface's to account for: it is translated when it cannot go natively).
        if native is not None and native.capability is None and native.protocol != backend.dialect:
            out |= frozenset(native.fields) - _CANONICAL
        return tuple(sorted(out))

    async def complete(self, call: ChatCall) -> Completion:
        call, the_plan, trail, policy = await self._begin(call)
        outcome = await self._run(
            call, self.gateway.complete(the_plan, call.request, policy, trail)
        )
        assembler = Assembler()
        assembler.add(outcome.events)
        completion = self.completion(call, outcome.target, assembler, trail, outcome.first_token)
        self.report(call, completion, outcome.target, outcome.first_token - outcome.started)
        return completion

    async def open_stream(self, call: ChatCall) -> ChatStream:
        call, the_plan, trail, policy = await self._begin(call)
        opening = self.gateway.open_stream(the_plan, call.request, policy, trail)
        opened = await self._run(call, opening)
        return ChatStream(self, call, opened, trail, the_plan.targets, policy)

    async def _begin(self, call: ChatCall) -> tuple[ChatCall, Plan, Trail, Policy]:
        the_plan = self.plan(call)
        call = await self._searched(call, the_plan)
        return call, the_plan, Trail(the_plan.skipped), Policy.of(self.gateway.settings, call)

    async def _searched(self, call: ChatCall, the_plan: Plan) -> ChatCall:
        """The call with the gateway-run search's results, searched once when a target of
        the plan cannot search by itself; every attempt of the chain reuses them."""
        searcher = self.searcher
        request = call.request
        if not request.search or searcher is None:
            return call
        if all(search.native(t) for t in the_plan.targets):
            return call
        try:
            found = await searcher.search(search.query_of(request))
        except UpstreamError as exc:
            raise RequestError(
                "search_failed",
                f"The gateway's web search ({searcher.name}) failed: {exc.failure.value}.",
                "search",
                status=502,
            ) from None
        return msgspec.structs.replace(call, request=msgspec.structs.replace(request, found=found))

    async def _run(self, call: ChatCall, running: Awaitable[T]) -> T:
        """Await the chain walk; a chain that failed is reported before it is raised."""
        try:
            return await running
        except AllTargetsFailed as exc:
            self.report_failure(call, exc)
            raise

    def completion(
        self,
        call: ChatCall,
        target: Target,
        assembler: Assembler,
        trail: Trail,
        first_token: float,
    ) -> Completion:
        usage = assembler.final_usage(call.request)
        costs = accounting.price(usage, target.info.prices if target.info else None)
        if call.request.found and not search.native(target) and self.searcher is not None:
            usage = msgspec.structs.replace(usage, searches=usage.searches + 1)
            costs = accounting.with_search(costs, self.searcher.fee)
        now = asyncio.get_running_loop().time()
        return Completion(
            provider=target.provider.name,
            model=target.model,
            text=assembler.full_text(),
            reasoning="".join(assembler.reasoning),
            tool_calls=assembler.tool_calls(),
            usage=usage,
            finish=assembler.finish or "stop",
            costs=costs,
            attempts=trail.entries,
            latency_ms=int((now - call.received) * 1000),
            ttft_ms=int((first_token - call.received) * 1000),
            logprobs=assembler.logprobs,
            choices=assembler.choices(),
            dropped=self.dropped(target, call.request),
            sources=assembler.sources(),
        )

    def report(
        self,
        call: ChatCall,
        completion: Completion,
        target: Target,
        upstream_ttft: float,
        outcome: str = "ok",
        rescued: bool = False,
    ) -> None:
        """Tell the observers. A call that did not end "ok" has had every token it consumed
        billed on its broken attempts' trail entries, so its report carries no usage."""
        ok = outcome == "ok"
        self.gateway.observer.finished(
            Report(
                surface=call.surface,
                caller=call.principal.name,
                key_id=call.principal.key_id,
                stream=call.stream,
                outcome=outcome,
                target=target,
                usage=completion.usage if ok else Usage(),
                costs=completion.costs if ok else None,
                attempts=completion.attempts,
                latency_ms=completion.latency_ms,
                ttft_ms=completion.ttft_ms,
                upstream_ttft=upstream_ttft,
                rescued=rescued,
            )
        )

    def report_failure(self, call: ChatCall, exc: AllTargetsFailed) -> None:
        now = asyncio.get_running_loop().time()
        decisive = exc.decisive
        self.gateway.observer.finished(
            Report(
                surface=call.surface,
                caller=call.principal.name,
                key_id=call.principal.key_id,
                stream=call.stream,
                outcome=decisive.failure.value if decisive else "no_target",
                target=None,
                attempts=tuple(exc.attempts),
                latency_ms=int((now - call.received) * 1000),
            )
        )


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
        while True:
            assembler.add(batch)
            attempt_text.extend(e.text for e in batch if type(e) is TextDelta)
            yield batch
            if loop.time() > deadline:
                await rest.aclose()
                raise UpstreamError(Failure.DEADLINE, "the request deadline passed mid-stream")
            try:
                batch = await anext(rest)
            except StopAsyncIteration:
                return

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


_CANONICAL = frozenset({"max_completion_tokens"})  # passthrough that is canonical too


def _unfit(target: Target, params: tuple[str, ...]) -> Attempt:
    reason = "cannot honour " + ", ".join(f"`{p}`" for p in params)
    return Attempt(target.provider.name, target.model, Failure.UNSUPPORTED.value, reason=reason)


_CLIENT_CLOSED = UpstreamError(Failure.CLIENT_CLOSED, "the client closed the stream")
