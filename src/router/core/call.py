"""One call through the gateway, whatever the surface: what was asked, by whom, and the
limits it runs under (`Policy`, built here once for chat and media alike)."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

from router.auth import Principal
from router.config import Settings, Strategy
from router.core.media import MediaRequest
from router.core.types import Asked, ChatRequest

R = TypeVar("R", ChatRequest, MediaRequest)


class RouteAsk(msgspec.Struct, frozen=True):
    """What the caller asked of routing for this call (headers or extension fields); None:
    the alias's route or `[routing]` decides."""

    strategy: Strategy | None = None
    hedge_after: str | None = None  # milliseconds, or a percentile of observed TTFT ("p95")
    cache_ttl: int | None = None  # seconds to cache the answer (0: not cached, not looked up)


class Call(msgspec.Struct, Generic[R], frozen=True, kw_only=True):
    """A decoded request from any surface: `request` is a `ChatRequest` or a media request."""

    principal: Principal
    models: tuple[Asked, ...]
    fallbacks: tuple[Asked, ...] = ()
    request: R
    surface: str
    request_id: str = ""  # from the surface kit (`router.api.common.begin`)
    received: float  # loop time the request arrived
    stream: bool = False
    max_retries: int | None = None
    timeout: float | None = None  # the caller's deadline, seconds (capped by the config)
    route: RouteAsk = RouteAsk()

    @property
    def request_model(self) -> str:
        return self.models[0].name if self.models else ""

    @property
    def first_field(self) -> str:
        return self.models[0].field if self.models else "model"


class Policy(msgspec.Struct):
    """Per-call limits: retries per target and the absolute deadline (loop time). `waited`
    is the back-off slept before the attempt about to run, recorded on its trail entry."""

    max_retries: int
    deadline: float
    waited: float = 0.0

    @classmethod
    def of(cls, settings: Settings, call: Call[R]) -> Policy:
        retries = settings.retry.max_retries if call.max_retries is None else call.max_retries
        budget = settings.timeouts.request
        if call.timeout is not None:
            budget = min(budget, call.timeout)
        return cls(retries, call.received + budget)
