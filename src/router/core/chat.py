"""One chat call, surface-agnostic: plan it, run it, account for it.

Every surface calls `ChatService`; it only decodes its own request shape into a `Call` and
renders the `Completion` (or the stream of event batches) in its own shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TypeVar

import msgspec

from router.core import accounting, search
from router.core.assemble import Assembler
from router.core.cache import FREE, Entry, MemoryStore, ResponseCache
from router.core.call import Call, Policy
from router.core.catalog import Catalog, of_kind
from router.core.gateway import Gateway
from router.core.planner import Plan, plan, units
from router.core.ports import Searcher
from router.core.routes import Chooser
from router.core.stream import CachedStream, ChatStream
from router.core.trail import Trail
from router.core.types import (
    Attempt,
    ChatRequest,
    Completion,
    Costs,
    Report,
    Target,
    Usage,
    estimate_prompt,
)
from router.errors import AllTargetsFailed, Failure, RequestError, UpstreamError

ChatCall = Call[ChatRequest]
T = TypeVar("T")
_NO_USAGE = Usage()  # what a report that bills no tokens carries (frozen, so shared)


class ChatService:
    def __init__(
        self,
        catalog: Catalog,
        gateway: Gateway,
        chooser: Chooser | None = None,
        cache: ResponseCache | None = None,
        searcher: Searcher | None = None,
    ) -> None:
        self.catalog = catalog
        self.gateway = gateway
        self.searcher = searcher  # the gateway-run search, when `[search]` is configured
        self.protocols = frozenset(gateway.backends)
        self.limited: Callable[[str, Target], str | None] = _unlimited  # set by the runtime
        settings = gateway.settings
        self.chooser = chooser or Chooser(settings, gateway.stats)
        self.cache = cache or ResponseCache(settings, MemoryStore(settings.cache.max_entries))

    def plan(self, call: ChatCall) -> Plan:
        primary, fallback = units(self.catalog, call.models, call.fallbacks, call.principal.may_use)
        prompt = estimate_prompt(call.request)
        strategy = self.chooser.strategy(call.route, call.models)
        ordered = self.chooser.order(
            strategy, call.models, primary, prompt, call.request.max_tokens
        )
        ordered += [t for u in fallback for t in u.targets]
        allowed = of_kind(ordered, "chat", call.models[0] if call.models else None)
        fit = self.fitting(allowed, call.request)
        able, unsearched = search.unable(fit, call.request.search, self.searcher is not None)
        found = plan(
            able,
            self.protocols,
            self.gateway.health.allow,
            prompt,
            lambda t: self.limited(call.request_id, t),
        )
        found.skipped[:0] = unsearched
        if len(fit) < len(allowed):  # providers set to "skip" what they cannot honour
            skips = [_unfit(t, self.cannot(t, call.request)) for t in allowed if t not in fit]
            found.skipped = skips + found.skipped
        found.strategy = strategy
        if found.targets:
            found.hedge_after = self.chooser.hedge_after(call.route, call.models, found.targets[0])
        return found

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
        ttl = self.cache.ttl(call)
        hit = await self._cached(call, ttl)
        if hit is not None:
            return self.hit(call, *hit)
        call, the_plan, trail, policy = await self._begin(call)
        outcome = await self._run(
            call, self.gateway.complete(the_plan, call.request, policy, trail), trail
        )
        assembler = Assembler()
        assembler.add(outcome.events)
        completion = self.completion(call, outcome.target, assembler, trail, outcome.first_token)
        if ttl is not None:
            completion.cache = "miss"
            await self.cache.remember(call, completion, ttl)
        self.report(call, completion, outcome.target, outcome.first_token - outcome.started)
        return completion

    async def _cached(self, call: ChatCall, ttl: float | None) -> tuple[Entry, Target] | None:
        """The cached answer to `call` and the target that gave it, when caching is on."""
        if ttl is None:
            return None
        entry = await self.cache.lookup(call)
        target = self.catalog.target(entry.ref) if entry is not None else None
        return None if entry is None or target is None else (entry, target)

    def hit(self, call: ChatCall, entry: Entry, target: Target) -> Completion:
        """A cached answer, reported: it cost nothing, and saved what it cost then."""
        now = asyncio.get_running_loop().time()
        ms = int((now - call.received) * 1000)
        completion = Completion(
            provider=target.provider.name,
            model=target.model,
            text=entry.text,
            reasoning=entry.reasoning,
            tool_calls=list(entry.tool_calls),
            usage=entry.usage,
            finish=entry.finish,
            costs=FREE,
            latency_ms=ms,
            ttft_ms=ms,
            cache="hit",
        )
        saved = entry.costs.total_tokens_cost if entry.costs else None
        self._finished(
            call, "ok", target, costs=FREE, latency_ms=ms, ttft_ms=ms, cache="hit", saved=saved
        )
        return completion

    async def open_stream(self, call: ChatCall) -> ChatStream:
        ttl = self.cache.ttl(call)
        hit = await self._cached(call, ttl)
        if hit is not None:
            return CachedStream(self, call, *hit)
        call, the_plan, trail, policy = await self._begin(call)
        opening = self.gateway.open_stream(the_plan, call.request, policy, trail)
        opened = await self._run(call, opening, trail)
        stream = ChatStream(self, call, opened, trail, the_plan.targets, policy)
        stream.cache_ttl = ttl
        stream.cache = None if ttl is None else "miss"
        return stream

    async def _begin(self, call: ChatCall) -> tuple[ChatCall, Plan, Trail, Policy]:
        the_plan = self.plan(call)
        call = await self._searched(call, the_plan)
        trail = Trail(the_plan.skipped, the_plan.strategy)
        return call, the_plan, trail, Policy.of(self.gateway.settings, call)

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

    async def _run(self, call: ChatCall, running: Awaitable[T], trail: Trail) -> T:
        """Await the chain walk; a chain that failed is reported before it is raised."""
        try:
            return await running
        except AllTargetsFailed as exc:
            self.report_failure(call, exc, trail.strategy)
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
            strategy=trail.strategy,
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
        self._finished(
            call,
            outcome,
            target,
            usage=completion.usage if ok else _NO_USAGE,
            costs=completion.costs if ok else None,
            attempts=completion.attempts,
            latency_ms=completion.latency_ms,
            ttft_ms=completion.ttft_ms,
            upstream_ttft=upstream_ttft,
            rescued=rescued,
            cache=completion.cache,
            strategy=completion.strategy,
        )

    def report_failure(
        self, call: ChatCall, exc: AllTargetsFailed, strategy: str = "ordered"
    ) -> None:
        now = asyncio.get_running_loop().time()
        decisive = exc.decisive
        self._finished(
            call,
            decisive.failure.value if decisive else "no_target",
            None,
            attempts=tuple(exc.attempts),
            latency_ms=int((now - call.received) * 1000),
            strategy=strategy,
        )

    def _finished(
        self,
        call: ChatCall,
        outcome: str,
        target: Target | None,
        *,
        usage: Usage = _NO_USAGE,
        costs: Costs | None = None,
        attempts: tuple[Attempt, ...] = (),
        latency_ms: int,
        ttft_ms: int | None = None,
        upstream_ttft: float | None = None,
        rescued: bool = False,
        cache: str | None = None,
        strategy: str = "ordered",
        saved: Decimal | None = None,
    ) -> None:
        """The one place a chat call's `Report` is made: what the call says of its caller,
        with what the ending (answer, cache hit or failure) says of itself."""
        self.gateway.observer.finished(
            Report(
                surface=call.surface,
                request_id=call.request_id,
                caller=call.principal.name,
                request_model=call.request_model,
                key_id=call.principal.key_id,
                stream=call.stream,
                outcome=outcome,
                target=target,
                usage=usage,
                costs=costs,
                attempts=attempts,
                latency_ms=latency_ms,
                ttft_ms=ttft_ms,
                upstream_ttft=upstream_ttft,
                rescued=rescued,
                cache=cache,
                strategy=strategy,
                saved=saved,
            )
        )


_CANONICAL = frozenset({"max_completion_tokens"})  # passthrough that is canonical too


def _unfit(target: Target, params: tuple[str, ...]) -> Attempt:
    reason = "cannot honour " + ", ".join(f"`{p}`" for p in params)
    return Attempt(target.provider.name, target.model, Failure.UNSUPPORTED.value, reason=reason)


def _unlimited(request_id: str, target: Target) -> str | None:
    return None
