"""Which strategy orders a call's primary models, and with which weights: the caller's ask
(`x-router-strategy` or the surface's `strategy` field), else the route of the alias asked
for first (`[routes.<alias>]`), else `[routing] strategy`. The ordering itself is the pure
`router.core.strategies.order`; this holds what it reads (stats, a random source)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from router.config import Route, Settings, Strategy
from router.core.call import RouteAsk
from router.core.stats import Stats
from router.core.strategies import DEFAULT_OUTPUT, Estimate, Random, Unit, order
from router.core.types import Asked, Target

_NO_ROUTE = Route()


class Chooser:
    """Orders units for calls; owned by the runtime (`rand` injected by tests)."""

    def __init__(self, settings: Settings, stats: Stats, rand: Random = random.random) -> None:
        self.settings = settings
        self.stats = stats
        self.rand = rand
        base = settings.routing.weights
        self._weights: dict[str, Mapping[str, float]] = {
            name: base | route.weights for name, route in settings.routes.items()
        }

    def route(self, models: Sequence[Asked]) -> Route:
        return self.settings.routes.get(models[0].name, _NO_ROUTE) if models else _NO_ROUTE

    def strategy(self, ask: RouteAsk, models: Sequence[Asked]) -> Strategy:
        if ask.strategy is not None:
            return ask.strategy
        return self.route(models).strategy or self.settings.routing.strategy

    def hedge_after(self, ask: RouteAsk, models: Sequence[Asked], first: Target) -> float | None:
        """Seconds before the rest of the chain races `first` (None: no hedge): the caller's
        ask, else the route's; milliseconds, or a percentile of `first`'s observed TTFT
        (no hedge until it has been observed)."""
        value = ask.hedge_after
        if value is None:
            route = self.route(models).hedge_after
            value = None if route is None else str(route)
        if value is None:
            return None
        if value.startswith("p"):
            return self.stats.percentile(first.ref, float(value[1:]) / 100)
        return float(value) / 1000

    def order(
        self,
        strategy: Strategy,
        models: Sequence[Asked],
        units: Sequence[Unit],
        prompt: int,
        max_tokens: int | None,
    ) -> list[Target]:
        weights: Mapping[str, float] = self.settings.routing.weights
        if models:
            weights = self._weights.get(models[0].name, weights)
        estimate = Estimate(prompt, max_tokens or DEFAULT_OUTPUT)
        return order(strategy, units, self.stats.snapshot(), estimate, weights, self.rand)
