"""Per-deployment health: a circuit breaker for each `provider/model`.

Closed: traffic flows. It opens after `failure_threshold` consecutive failures, or when the
failure rate over the last `window` attempts reaches `failure_rate`. While open the planner
skips it; when its cool-down is over, the next request is let through as the one probe
(half-open); a success closes it, a failure opens it again for twice as long. Cool-downs
start at `cooldown` and double on each failed probe up to `cooldown_max` (per deployment
values in `[learned.targets]`); a success starts them short again.

`apply` adopts a state another gateway process reported (see `router.cluster`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping

import msgspec

from router.config import Circuit, Tuned
from router.core.types import CircuitState


class Breaker:
    __slots__ = (
        "base",
        "consecutive",
        "cooldown",
        "most",
        "opened_at",
        "outcomes",
        "probing",
        "state",
    )

    def __init__(self, window: int, base: float, most: float) -> None:
        self.state = CircuitState.CLOSED
        self.consecutive = 0
        self.opened_at = 0.0
        self.probing = False
        self.outcomes: deque[bool] = deque(maxlen=window)
        self.base = base  # the first cool-down
        self.most = most  # the longest
        self.cooldown = base  # the current one


class BreakerView(msgspec.Struct, frozen=True):
    target: str
    state: str
    consecutive_failures: int
    recent_failure_rate: float
    seconds_until_probe: float | None
    cooldown: float  # the current cool-down: doubles on each failed probe


class Health:
    """Circuit breakers for every target seen, owned by the app's lifespan."""

    def __init__(
        self,
        policy: Circuit,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        tuned: Mapping[str, Tuned] | None = None,
    ) -> None:
        self.policy = policy
        self.tuned = tuned or {}  # per deployment cool-downs
        self.clock = clock
        self.wall = wall  # for times other processes report
        self._breakers: dict[str, Breaker] = {}
        self.on_change: Callable[[str, CircuitState], None] = lambda ref, state: None

    def _get(self, ref: str) -> Breaker:
        breaker = self._breakers.get(ref)
        if breaker is None:
            tuned = self.tuned.get(ref) or Tuned()
            base = self.policy.cooldown if tuned.cooldown is None else tuned.cooldown
            most = self.policy.cooldown_max if tuned.cooldown_max is None else tuned.cooldown_max
            breaker = self._breakers[ref] = Breaker(self.policy.window, base, max(base, most))
        return breaker

    def allow(self, ref: str) -> bool:
        """May a request be sent to `ref` now? Claims the single probe when half-open."""
        breaker = self._breakers.get(ref)
        if breaker is None or breaker.state is CircuitState.CLOSED:
            return True
        if (
            breaker.state is CircuitState.OPEN
            and self.clock() - breaker.opened_at >= breaker.cooldown
        ):
            self._set(ref, breaker, CircuitState.HALF_OPEN)
        if breaker.state is CircuitState.HALF_OPEN and not breaker.probing:
            breaker.probing = True
            return True
        return False

    def success(self, ref: str) -> None:
        breaker = self._breakers.get(ref)
        if breaker is None:
            return
        breaker.consecutive = 0
        breaker.probing = False
        breaker.outcomes.append(True)
        if breaker.state is not CircuitState.CLOSED:
            breaker.outcomes.clear()
            breaker.cooldown = breaker.base
            self._set(ref, breaker, CircuitState.CLOSED)

    def failure(self, ref: str) -> None:
        breaker = self._get(ref)
        breaker.consecutive += 1
        breaker.probing = False
        breaker.outcomes.append(False)
        if breaker.state is CircuitState.HALF_OPEN:  # the probe failed: wait longer
            breaker.cooldown = min(breaker.most, breaker.cooldown * 2)
        if breaker.state is CircuitState.HALF_OPEN or self._tripped(breaker):
            breaker.opened_at = self.clock()
            self._set(ref, breaker, CircuitState.OPEN)

    def _tripped(self, breaker: Breaker) -> bool:
        if breaker.consecutive >= self.policy.failure_threshold:
            return True
        outcomes = breaker.outcomes
        if len(outcomes) < (outcomes.maxlen or 0):
            return False
        return outcomes.count(False) / len(outcomes) >= self.policy.failure_rate

    def _set(self, ref: str, breaker: Breaker, state: CircuitState) -> None:
        breaker.state = state
        self.on_change(ref, state)

    def apply(self, ref: str, state: CircuitState, since: float) -> CircuitState:
        """Adopt `state`, reported by another process (`since`: wall-clock time it began),
        without calling `on_change`, so it is not announced again. Returns the state here.

        Open: open here too, cooling down from `since`. Half-open: the other process is
        sending the probe, so stay open here for a cool-down from `since` (unless a probe of
        this process is out too). Closed: close here, forgetting recent failures.
        """
        if state is CircuitState.CLOSED:
            breaker = self._breakers.get(ref)
            if breaker is not None:
                breaker.outcomes.clear()
                breaker.consecutive = 0
                breaker.probing = False
                breaker.cooldown = breaker.base
                breaker.state = CircuitState.CLOSED
            return CircuitState.CLOSED
        breaker = self._get(ref)
        if state is CircuitState.HALF_OPEN and breaker.probing:
            return breaker.state
        opened = self.clock() - max(0.0, self.wall() - since)
        if breaker.state is not CircuitState.OPEN or opened > breaker.opened_at:
            breaker.opened_at = opened
        breaker.probing = False
        breaker.state = CircuitState.OPEN
        return CircuitState.OPEN

    def cooldown(self, ref: str) -> float:
        """The current cool-down of `ref`'s circuit."""
        breaker = self._breakers.get(ref)
        return self.policy.cooldown if breaker is None else breaker.cooldown

    def snapshot(self) -> list[BreakerView]:
        now = self.clock()
        views = []
        for ref, b in sorted(self._breakers.items()):
            wait = None
            if b.state is CircuitState.OPEN:
                wait = max(0.0, round(b.cooldown - (now - b.opened_at), 3))
            rate = b.outcomes.count(False) / len(b.outcomes) if b.outcomes else 0.0
            views.append(
                BreakerView(ref, b.state.value, b.consecutive, round(rate, 3), wait, b.cooldown)
            )
        return views
