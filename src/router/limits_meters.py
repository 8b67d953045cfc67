"""Counters with fixed windows, and the one atomic operation the limits need: check every
required meter and take them all, or none (`Counters.take`).

A `Meter` is one counter in one window: requests or tokens per minute, requests at once,
nano-USD spent in a budget's window. `take(required, groups)` checks the required meters
(the key's, its team's, the global budget; amount 0 or limit -1 never refuses), then takes
the first group that fits among `groups` (each the limits of one deployment of the chain, in
order), and returns the counters' values after taking. `LocalCounters` keeps them in this
process; `router.limits_redis.RedisCounters` makes the same operation one Lua script.
"""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Protocol

import msgspec

from router.config import Budget
from router.config_checks import duration_seconds
from router.errors import RouterError

NANO = Decimal(1_000_000_000)


class CountersDown(RouterError):
    """The shared counters cannot be reached (Redis down): `limits.on_redis_error` decides."""


class Meter(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    amount: int
    limit: int  # -1: counted, never refuses
    ttl_ms: int  # how long the counter outlives this take; 0: for ever
    kind: str  # requests | tokens | concurrent | budget
    scope: str  # key | team | global | provider | deployment
    reset: float  # seconds until the window resets (Retry-After, x-ratelimit-reset-*)


class Taken(msgspec.Struct, frozen=True):
    ok: bool
    refused: int  # index in `required` of the meter that refused, else -1
    chosen: int  # index of the group taken, -1 when none fitted
    values: tuple[int, ...]  # each required meter's value after taking (empty if refused)


class Counters(Protocol):
    async def take(self, required: list[Meter], groups: list[list[Meter]]) -> Taken: ...

    async def add(self, changes: list[tuple[str, int, int]]) -> None:
        """(key, delta, ttl_ms) each: settle reservations, count spend."""
        ...

    async def close(self) -> None: ...


def nano(usd: Decimal) -> int:
    """USD as whole nano-dollars, rounded up (a reservation never undercounts)."""
    return int((usd * NANO).to_integral_value(ROUND_CEILING))


def window(now: float, seconds: int | None, start: float = 0.0) -> tuple[str, float]:
    """(the window's name, seconds until it ends): fixed windows of `seconds` from `start`,
    or the calendar month (UTC) for None."""
    if seconds is None:
        day = datetime.fromtimestamp(now, UTC)
        last = calendar.monthrange(day.year, day.month)[1]
        end = datetime(day.year, day.month, last, tzinfo=UTC).timestamp() + 86400
        return f"m{day.year}{day.month:02d}", end - now
    index = int((now - start) // seconds)
    return f"w{seconds}.{index}", start + (index + 1) * seconds - now


def budget_meter(
    prefix: str, scope: str, name: str, budget: Budget, amount: int, now: float
) -> Meter:
    name_of, left = window(now, duration_seconds(budget.duration), budget.start)
    return Meter(
        key=f"{prefix}:budget:{scope}:{name}:{name_of}",
        amount=amount,
        limit=nano(budget.max_budget),
        ttl_ms=int((left + 60) * 1000),
        kind="budget",
        scope=scope,
        reset=left,
    )


def minute_meter(
    prefix: str, scope: str, name: str, kind: str, amount: int, limit: int, now: float
) -> Meter:
    name_of, left = window(now, 60)
    return Meter(
        key=f"{prefix}:{kind}:{scope}:{name}:{name_of}",
        amount=amount,
        limit=limit,
        ttl_ms=int((left + 5) * 1000),
        kind=kind,
        scope=scope,
        reset=left,
    )


class LocalCounters:
    """The counters of one process: exact there, and only there."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[int, float]] = {}  # key -> (value, expires at)

    def _get(self, key: str, now: float) -> int:
        found = self._values.get(key)
        if found is None or (found[1] and found[1] <= now):
            return 0
        return found[0]

    def _add(self, key: str, delta: int, ttl_ms: int, now: float) -> int:
        value = self._get(key, now) + delta
        self._values[key] = (value, now + ttl_ms / 1000 if ttl_ms else 0.0)
        return value

    def _fits(self, meter: Meter, now: float) -> bool:
        return (
            meter.limit < 0
            or meter.amount <= 0
            or (self._get(meter.key, now) + meter.amount <= meter.limit)
        )

    async def take(self, required: list[Meter], groups: list[list[Meter]]) -> Taken:
        now = time.monotonic()
        for i, meter in enumerate(required):
            if not self._fits(meter, now):
                return Taken(False, i, -1, ())
        chosen = next((j for j, g in enumerate(groups) if all(self._fits(m, now) for m in g)), -1)
        if chosen >= 0:
            for meter in groups[chosen]:
                self._add(meter.key, meter.amount, meter.ttl_ms, now)
        values = tuple(self._add(m.key, m.amount, m.ttl_ms, now) for m in required)
        if len(self._values) > 100_000:  # drop expired windows now and then
            self._values = {k: v for k, v in self._values.items() if not v[1] or v[1] > now}
        return Taken(True, -1, chosen, values)

    async def add(self, changes: list[tuple[str, int, int]]) -> None:
        now = time.monotonic()
        for key, delta, ttl_ms in changes:
            self._add(key, delta, ttl_ms, now)

    async def close(self) -> None:
        return None
