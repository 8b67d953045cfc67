"""Strategies: the order in which the primary `models` are tried. Pure functions of (units,
stats snapshot, prices, weights, a random source), so tests inject a seeded random.

A *unit* is one requested model with the deployments that serve it (one for most models).
A strategy orders units; the deployments of a unit then share its traffic by weight
(`spread`), so a failing deployment falls back to its siblings before the chain moves on.

- `ordered`: as asked (the default);
- `cheapest`: lowest catalog price for this request's estimated tokens; unpriced last;
- `fastest`: lowest learned TTFT + output tokens / tokens per second; a unit never measured
  goes first (to learn it), and `EXPLORE` of the calls put a random unit first, so a
  deployment that became fast again is noticed;
- `least_busy`: fewest attempts in flight;
- `weighted`: a random order drawn by weight (the first unit is unit i with probability
  w_i / sum w), weights from `[routing.weights]` or the alias's route, 1 by default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TypeVar

import msgspec

from router.config import Strategy
from router.core.stats import Snapshot
from router.core.types import Target

X = TypeVar("X")
Random = Callable[[], float]  # uniform in [0, 1)
EXPLORE = 0.1  # the share of `fastest` calls that try a random unit first
DEFAULT_OUTPUT = 256  # output tokens assumed when the request sets no max_tokens
_UNKNOWN = Decimal("Infinity")


class Unit(msgspec.Struct, frozen=True):
    """One requested model: `name` keys its weight; `targets` are its deployments."""

    name: str
    targets: tuple[Target, ...]
    weights: tuple[float, ...] = ()  # one per target; equal when empty


class Estimate(msgspec.Struct, frozen=True):
    """The request's size, for pricing: prompt tokens and expected output tokens."""

    prompt: int
    output: int


def single(target: Target) -> Unit:
    return Unit(target.ref, (target,))


def order(
    strategy: Strategy,
    units: Sequence[Unit],
    snapshot: Snapshot,
    estimate: Estimate,
    weights: Mapping[str, float],
    rand: Random,
) -> list[Target]:
    """The targets of `units`, ordered by `strategy`, each unit's deployments spread."""
    if len(units) > 1:
        units = _rank(strategy, units, snapshot, estimate, weights, rand)
    return [t for u in units for t in spread(u, rand)]


def _rank(
    strategy: Strategy,
    units: Sequence[Unit],
    snapshot: Snapshot,
    estimate: Estimate,
    weights: Mapping[str, float],
    rand: Random,
) -> list[Unit]:
    if strategy == "cheapest":
        return sorted(units, key=lambda u: _price(u, estimate))
    if strategy == "fastest":
        return _fastest(units, snapshot, estimate, rand)
    if strategy == "least_busy":
        inflight = snapshot.inflight
        return sorted(units, key=lambda u: sum(inflight.get(t.ref, 0) for t in u.targets))
    if strategy == "weighted":
        return _draw(list(units), [weights.get(u.name, 1.0) for u in units], rand)
    return list(units)


def spread(unit: Unit, rand: Random) -> list[Target]:
    """A unit's deployments in a random order drawn by their weights."""
    if len(unit.targets) == 1:
        return list(unit.targets)
    return _draw(list(unit.targets), list(unit.weights) or [1.0] * len(unit.targets), rand)


def _draw(items: list[X], weights: list[float], rand: Random) -> list[X]:
    """Weighted random order without replacement (Efraimidis-Spirakis: sort by u^(1/w));
    a weight of 0 or less goes last."""
    keys = [rand() ** (1.0 / w) if w > 0 else -1.0 for w in weights]
    ranked = sorted(range(len(items)), key=lambda i: keys[i], reverse=True)
    return [items[i] for i in ranked]


def _price(unit: Unit, estimate: Estimate) -> Decimal:
    info = unit.targets[0].info
    prices = info.prices if info is not None else None
    if prices is None or prices.input is None or prices.output is None:
        return _UNKNOWN
    return prices.input * estimate.prompt + prices.output * estimate.output


def _fastest(
    units: Sequence[Unit], snapshot: Snapshot, estimate: Estimate, rand: Random
) -> list[Unit]:
    latency = snapshot.latency

    def seconds(unit: Unit) -> float:
        known = [latency[t.ref] for t in unit.targets if t.ref in latency]
        if not known:
            return -1.0  # never measured: learn it
        total = 0.0
        for lat in known:
            total += lat.ttft + (estimate.output / lat.tps if lat.tps else 0.0)
        return total / len(known)

    ranked = sorted(units, key=seconds)
    if rand() < EXPLORE:
        ranked.insert(0, ranked.pop(int(rand() * len(ranked))))
    return ranked
