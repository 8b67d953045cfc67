"""One non-chat call (embeddings, images, speech, transcription): planned and run through the
same gateway as chat, so it gets the same retries, fallbacks, circuits and attempt trail.

A target whose protocol has no backend for the kind is skipped with a reason, like any
target that cannot be tried; a model the catalog types differently (a chat model asked for
embeddings) is refused with a 400 naming `model`.
"""

from __future__ import annotations

import msgspec

from router.auth import Principal
from router.core.catalog import Catalog
from router.core.gateway import Gateway, Policy
from router.core.media import (
    KIND_OF,
    MEDIA_KINDS,
    MediaKind,
    MediaReply,
    MediaRequest,
    MediaUsage,
    price_media,
)
from router.core.planner import Plan, chain, plan
from router.core.types import Attempt, Costs, Usage
from router.errors import RequestError
from router.metrics import Metrics
from router.protocols.base import Target

_NOUN = {
    "embedding": "an embedding",
    "image": "an image",
    "speech": "a speech",
    "transcription": "a transcription",
    "chat": "a chat",
}


class MediaCall(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded non-chat request from a surface."""

    principal: Principal
    models: tuple[str, ...]
    fallbacks: tuple[str, ...] = ()
    request: MediaRequest
    received: float  # loop time the request arrived
    surface: str
    timeout: float | None = None  # per-request deadline, seconds (capped by the config)

    @property
    def kind(self) -> MediaKind:
        return KIND_OF[type(self.request)]


class MediaResult(msgspec.Struct, kw_only=True):
    target: Target
    reply: MediaReply
    costs: Costs | None
    attempts: list[Attempt]


class MediaService:
    def __init__(self, catalog: Catalog, gateway: Gateway, metrics: Metrics) -> None:
        self.catalog = catalog
        self.gateway = gateway
        self.metrics = metrics
        self.protocols = {
            kind: frozenset(
                name
                for name, backend in gateway.backends.items()
                if kind in getattr(backend, "media_kinds", frozenset())
            )
            for kind in MEDIA_KINDS
        }

    def plan(self, call: MediaCall) -> Plan:
        allowed = chain(self.catalog, call.models, call.fallbacks, call.principal.may_use)
        kind = call.kind
        typed = [t for t in allowed if t.info is None or t.info.type == kind]
        if not typed:
            found = allowed[0].info.type if allowed[0].info else "chat"
            raise RequestError(
                "wrong_model_type",
                f"The model `{call.models[0]}` is {_NOUN[found]} model, not {_NOUN[kind]} model.",
                "models[0]",
            )
        return plan(typed, self.protocols[kind], self.gateway.health.allow, 0)

    async def run(self, call: MediaCall) -> MediaResult:
        the_plan = self.plan(call)
        trail = list(the_plan.skipped)
        settings = self.gateway.settings
        budget = settings.timeouts.request
        if call.timeout is not None:
            budget = min(budget, call.timeout)
        policy = Policy(settings.retry.max_retries, call.received + budget)
        request = call.request

        async def once(target: Target) -> tuple[Target, MediaReply]:
            backend = self.gateway.backends[target.provider.protocol]
            timeout = min(settings.timeouts.response, self.gateway.remaining(policy))
            return target, await backend.forward(target, request, timeout)  # type: ignore[attr-defined]

        # The gateway's chain walk (retries, fallback, trail) is shared with chat.
        target, reply = await self.gateway.run(the_plan, policy, trail, once)
        costs = price_media(reply.usage, target.info.prices if target.info else None)
        self._count(call, target, reply.usage, costs, trail)
        return MediaResult(target=target, reply=reply, costs=costs, attempts=trail)

    def _count(
        self,
        call: MediaCall,
        target: Target,
        usage: MediaUsage,
        costs: Costs | None,
        trail: list[Attempt],
    ) -> None:
        tokens = Usage(usage.input_tokens or 0, usage.output_tokens or 0)
        self.metrics.answered(target, tokens, costs.total_tokens_cost if costs else None)
        if trail and trail[0].outcome != "ok":
            self.metrics.fallbacks.labels(call.surface).inc()
