"""Timeouts that learn: each deployment's first-token and stall timeouts from what is normal
for it (`router.core.stats`), between a floor and the configured ceiling (`[learned]`).

First token: `first_token_multiple` x the p99 of its observed times to first token, between
`first_token_floor` and `timeouts.first_token`; a catalog `first_token_timeout` or a
`[learned.targets]` value wins, and reasoning models keep `timeouts.first_token_reasoning`.
Stall: `stall_multiple` x the p99 of its observed gaps between chunks, between `stall_floor`
and `timeouts.stream_idle`. Until `min_samples` observations, the ceilings apply.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from router.config import Settings
from router.core.stats import Stats
from router.core.types import Attempt, Report, Target, Usage


class GaugeSink(Protocol):
    """Where learned timeouts are shown (`router.metrics.Metrics`)."""

    def learned_timeouts(self, target: Target, first_token: float, stall: float) -> None: ...


class LearnedView(msgspec.Struct, frozen=True):
    """One deployment's timeouts as they stand (`/admin/health`)."""

    target: str
    first_token: float
    stall: float
    ttft_p99: float | None
    gap_p99: float | None


class LearnedTimeouts:
    def __init__(self, settings: Settings, stats: Stats) -> None:
        self.timeouts = settings.timeouts
        self.learned = settings.learned
        self.stats = stats

    def first_token(self, target: Target) -> float:
        fixed = self.learned.targets.get(target.ref)
        if fixed is not None and fixed.first_token is not None:
            return fixed.first_token
        info = target.info
        if info is not None and info.first_token_timeout is not None:
            return info.first_token_timeout
        if info is not None and "reasoning" in info.capabilities:
            return self.timeouts.first_token_reasoning
        p99 = self.stats.percentile(target.ref, 0.99, self.learned.min_samples)
        return self._bound(
            p99,
            self.learned.first_token_multiple,
            self.learned.first_token_floor,
            self.timeouts.first_token,
        )

    def stall(self, target: Target) -> float:
        fixed = self.learned.targets.get(target.ref)
        if fixed is not None and fixed.stall is not None:
            return fixed.stall
        p99 = self.stats.gap_percentile(target.ref, 0.99, self.learned.min_samples)
        return self._bound(
            p99, self.learned.stall_multiple, self.learned.stall_floor, self.timeouts.stream_idle
        )

    @staticmethod
    def _bound(p99: float | None, multiple: float, floor: float, ceiling: float) -> float:
        if p99 is None:
            return ceiling
        return min(ceiling, max(floor, multiple * p99))

    def view(self, targets: list[Target]) -> list[LearnedView]:
        stats = self.stats
        return [
            LearnedView(
                t.ref,
                round(self.first_token(t), 3),
                round(self.stall(t), 3),
                stats.percentile(t.ref, 0.99),
                stats.gap_percentile(t.ref, 0.99),
            )
            for t in targets
        ]


class LearnedGauges:
    """An observer that refreshes a target's learned-timeout gauges on every `every`-th
    answer it gives (computing them sorts recent samples: not on every call)."""

    def __init__(self, metrics: GaugeSink, learned: LearnedTimeouts, every: int = 20) -> None:
        self.metrics = metrics
        self.learned = learned
        self.every = every
        self.answers: dict[str, int] = {}

    def attempted(self, target: Target, attempt: Attempt, usage: Usage | None) -> None:
        pass

    def finished(self, report: Report) -> None:
        target = report.target
        if target is None or report.upstream_ttft is None:
            return
        n = self.answers.get(target.ref, 0)
        self.answers[target.ref] = n + 1
        if n % self.every == 0:
            learned = self.learned
            self.metrics.learned_timeouts(
                target, learned.first_token(target), learned.stall(target)
            )
