"""One non-chat call (embeddings, images, speech, transcription): planned and run through the
same gateway as chat, so it gets the same retries, fallbacks, circuits and attempt trail.

A target whose protocol has no backend for the kind is skipped with a reason, like any
target that cannot be tried; a model the catalog types differently (a chat model asked for
embeddings) is refused with a 400 naming the caller's field.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec

from router.core.call import Call, Policy
from router.core.catalog import Catalog, of_kind
from router.core.gateway import Gateway
from router.core.media import (
    KIND_OF,
    MEDIA_KINDS,
    MediaKind,
    MediaReply,
    MediaRequest,
    price_media,
)
from router.core.planner import Plan, chain, plan
from router.core.trail import Trail
from router.core.types import Attempt, Costs, Report, Target, Usage
from router.errors import AllTargetsFailed, UpstreamError

MediaCall = Call[MediaRequest]


def kind_of(call: MediaCall) -> MediaKind:
    return KIND_OF[type(call.request)]


class MediaResult(msgspec.Struct, kw_only=True):
    """The answer. For audio relayed as it is produced (`reply.rest`), the surface calls
    `MediaService.relayed` when the relay ends, which reports the call."""

    call: MediaCall
    target: Target
    reply: MediaReply
    costs: Costs | None
    attempts: tuple[Attempt, ...]
    started: float  # loop time the answering attempt began


class MediaService:
    def __init__(self, catalog: Catalog, gateway: Gateway) -> None:
        self.catalog = catalog
        self.gateway = gateway
        self.protocols = {
            kind: frozenset(n for n, b in gateway.backends.items() if kind in b.media_kinds)
            for kind in MEDIA_KINDS
        }
        self.limited: Callable[[str, Target], str | None] = _unlimited  # set by the runtime

    def plan(self, call: MediaCall) -> Plan:
        allowed = chain(self.catalog, call.models, call.fallbacks, call.principal.may_use)
        kind = kind_of(call)
        typed = of_kind(allowed, kind, call.models[0] if call.models else None)
        limited = self.limited
        return plan(
            typed,
            self.protocols[kind],
            self.gateway.health.allow,
            0,
            lambda t: limited(call.request_id, t),
        )

    async def run(self, call: MediaCall) -> MediaResult:
        the_plan = self.plan(call)
        trail = Trail(the_plan.skipped)
        policy = Policy.of(self.gateway.settings, call)
        settings = self.gateway.settings
        request = call.request

        async def once(target: Target) -> tuple[Target, MediaReply, float]:
            backend = self.gateway.backends[target.provider.protocol]
            timeout = min(settings.timeouts.response, self.gateway.remaining(policy))
            started = _now()
            return target, await backend.forward(target, request, timeout), started

        # The gateway's chain walk (retries, fallback, trail) is shared with chat.
        try:
            target, reply, started = await self.gateway.run(the_plan, policy, trail, once)
        except AllTargetsFailed as exc:
            self._report(call, None, None, None, tuple(exc.attempts), exc.decisive)
            raise
        costs = price_media(reply.usage, target.info.prices if target.info else None)
        result = MediaResult(
            call=call,
            target=target,
            reply=reply,
            costs=costs,
            attempts=trail.entries,
            started=started,
        )
        if reply.rest is None:
            self.relayed(result, None)
        return result

    def relayed(self, result: MediaResult, error: UpstreamError | None) -> None:
        """The answer reached the caller whole, or broke off with `error`: report the call."""
        self._report(result.call, result.target, result.reply, result.costs, result.attempts, error)

    def _report(
        self,
        call: MediaCall,
        target: Target | None,
        reply: MediaReply | None,
        costs: Costs | None,
        attempts: tuple[Attempt, ...],
        error: UpstreamError | None,
    ) -> None:
        used = reply.usage if reply is not None else None
        tokens = Usage(used.input_tokens or 0, used.output_tokens or 0) if used else Usage()
        outcome = "ok" if target is not None and error is None else "error"
        if error is not None:
            outcome = error.failure.value
        self.gateway.observer.finished(
            Report(
                surface=call.surface,
                request_id=call.request_id,
                caller=call.principal.name,
                operation="embeddings" if kind_of(call) == "embedding" else "generate_content",
                request_model=call.request_model,
                key_id=call.principal.key_id,
                stream=reply is not None and reply.rest is not None,
                outcome=outcome,
                target=target,
                usage=tokens,
                costs=costs,
                attempts=attempts,
                latency_ms=int((_now() - call.received) * 1000),
            )
        )


def _unlimited(request_id: str, target: Target) -> str | None:
    return None


def _now() -> float:
    return asyncio.get_running_loop().time()
