"""The spend ledger's row and report types, and how a call's `Report` becomes one row.

One row per call that reached an upstream: the answer's tokens by kind (the Iron Labs
`usage` semantics: `input_tokens` include cached and cache-write ones, `output_tokens`
include reasoning ones), each kind's cost, and what broken attempts consumed before the
answer (`failed_tokens`, `failed_cost`), which is billed on the same row (`total_cost`).
Costs are `Decimal` USD from the catalog; None when the model has no prices.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Literal

import msgspec

from router.config import Prices
from router.core.types import Attempt, Report, Usage
from router.errors import Failure

_MILLION = Decimal(1_000_000)
_ENCODE = msgspec.json.Encoder(decimal_format="number").encode
_SKIPS = frozenset(
    {
        Failure.NO_API_KEY.value,
        Failure.CIRCUIT_OPEN.value,
        Failure.TOO_LARGE.value,
        Failure.UNSUPPORTED.value,
    }
)
"""Trail outcomes of targets that were skipped without sending anything upstream."""


class KindCosts(msgspec.Struct, frozen=True):
    """USD per kind of token: fresh input, cached read, cache write, answer, reasoning."""

    input: Decimal
    cached: Decimal
    cache_write: Decimal
    output: Decimal
    reasoning: Decimal

    @property
    def total(self) -> Decimal:
        return self.input + self.cached + self.cache_write + self.output + self.reasoning


class LedgerRow(msgspec.Struct, frozen=True, kw_only=True):
    """One billed call. `attempts` is the trail as JSON text."""

    request_id: str
    ts: float  # unix seconds the call ended
    key_id: str | None
    key_name: str
    team: str | None
    surface: str
    stream: bool
    provider: str
    model: str
    outcome: str
    status: int | None
    input_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    failed_tokens: int = 0
    input_cost: Decimal | None = None
    cached_cost: Decimal | None = None
    cache_write_cost: Decimal | None = None
    output_cost: Decimal | None = None
    reasoning_cost: Decimal | None = None
    failed_cost: Decimal | None = None
    total_cost: Decimal | None = None
    latency_ms: int = 0
    ttft_ms: int | None = None
    attempts: str = "[]"


COLUMNS = tuple(LedgerRow.__struct_fields__)


def values(row: LedgerRow) -> tuple[object, ...]:
    return tuple(getattr(row, name) for name in COLUMNS)


def by_kind(usage: Usage, prices: Prices) -> KindCosts | None:
    """Each kind of token at its own rate (as `router.core.accounting.price` adds them up)."""
    if prices.input is None or prices.output is None:
        return None
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    fresh = usage.prompt_tokens - cached - written
    reasoning = min(usage.reasoning_tokens, usage.completion_tokens)
    answer = usage.completion_tokens - reasoning
    return KindCosts(
        input=fresh * prices.input / _MILLION,
        cached=cached * _or(prices.cached_input, prices.input) / _MILLION,
        cache_write=written * _or(prices.cache_write, prices.input) / _MILLION,
        output=answer * prices.output / _MILLION,
        reasoning=reasoning * _or(prices.reasoning, prices.output) / _MILLION,
    )


def _or(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value


def billable(report: Report) -> bool:
    """Did the call reach an upstream? Calls refused or skipped everywhere are not billed."""
    return report.target is not None or any(not _skipped(a) for a in report.attempts)


def _skipped(attempt: Attempt) -> bool:
    if attempt.outcome in _SKIPS:
        return True
    # a deployment at its rate limit (router.limits) is skipped by the planner, never sent
    limited = attempt.outcome == Failure.RATE_LIMITED.value
    return limited and attempt.status is None and attempt.ms == 0


def kind_costs(report: Report) -> KindCosts | None:
    """The answer's cost per kind; media answers are priced as input and output only."""
    costs = report.costs
    target = report.target
    if costs is None or target is None or target.info is None:
        return None
    if target.info.type == "chat":
        return by_kind(report.usage, target.info.prices)
    zero = Decimal(0)
    return KindCosts(costs.input_tokens_cost, zero, zero, costs.output_tokens_cost, zero)


def _failed(attempts: tuple[Attempt, ...]) -> tuple[int, Decimal | None]:
    tokens = sum(a.tokens or 0 for a in attempts if a.outcome != "ok")
    costs = [a.cost for a in attempts if a.outcome != "ok" and a.cost is not None]
    return tokens, (sum(costs, Decimal(0)) if costs else None)


def row_of(report: Report, team: str | None, now: float | None = None) -> LedgerRow:
    """The ledger row of one call."""
    kinds = kind_costs(report)
    failed_tokens, failed_cost = _failed(report.attempts)
    total = None if kinds is None else kinds.total
    if failed_cost is not None:
        total = failed_cost + (total or Decimal(0))
    target = report.target
    usage = report.usage
    last = report.attempts[-1] if report.attempts else None
    return LedgerRow(
        request_id=report.request_id,
        ts=time.time() if now is None else now,
        key_id=report.key_id,
        key_name=report.caller,
        team=team,
        surface=report.surface,
        stream=report.stream,
        provider=target.provider.name if target else (last.provider if last else ""),
        model=target.model if target else (last.model if last else ""),
        outcome=report.outcome,
        status=last.status if last else None,
        input_tokens=usage.prompt_tokens,
        cached_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        output_tokens=usage.completion_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        failed_tokens=failed_tokens,
        input_cost=kinds.input if kinds else None,
        cached_cost=kinds.cached if kinds else None,
        cache_write_cost=kinds.cache_write if kinds else None,
        output_cost=kinds.output if kinds else None,
        reasoning_cost=kinds.reasoning if kinds else None,
        failed_cost=failed_cost,
        total_cost=total,
        latency_ms=report.latency_ms,
        ttft_ms=report.ttft_ms,
        attempts=_ENCODE(report.attempts).decode(),
    )


# ---- reports ------------------------------------------------------------------------------

GroupBy = Literal["key", "team", "provider", "model", "surface", "day"]


class SpendQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Totals over `start <= ts < end` (unix seconds), grouped, optionally for one key."""

    group_by: GroupBy = "key"
    start: float | None = None
    end: float | None = None
    key: str | None = None


class SpendLine(msgspec.Struct, kw_only=True):
    group: str | None
    requests: int
    input_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    failed_tokens: int
    cost: Decimal


SUMMED = (
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "failed_tokens",
)


def line_of(row: tuple[object, ...]) -> SpendLine:
    group, requests, *tokens, cost = row
    counts = [int(t or 0) for t in tokens]  # type: ignore[call-overload]  # SUM of INTEGER
    return SpendLine(
        group=None if group is None else str(group),
        requests=int(requests),  # type: ignore[call-overload]
        input_tokens=counts[0],
        cached_tokens=counts[1],
        cache_write_tokens=counts[2],
        output_tokens=counts[3],
        reasoning_tokens=counts[4],
        failed_tokens=counts[5],
        cost=Decimal(str(cost)) if cost is not None else Decimal(0),
    )
