"""The gateway executes a plan: retries per target, fallback along the chain, one deadline.

Non-streamed calls are atomic per attempt. Streamed calls have a *commit point*: until the
first piece of the answer exists, any failure moves on invisibly (retry, then the next
target); once it has been handed to the caller, a failure can no longer restart silently
elsewhere (see `router.core.rescue`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from decimal import Decimal
from typing import TypeVar

import msgspec
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from router.config import Settings
from router.core.call import Policy
from router.core.health import Health
from router.core.hedge import Race
from router.core.planner import Plan
from router.core.ports import Backend, Observer
from router.core.stats import Stats
from router.core.timeouts import LearnedTimeouts
from router.core.trail import Trail
from router.core.types import Attempt, ChatRequest, Event, ReasoningDelta, Sources, Target, Usage
from router.errors import AllTargetsFailed, Failure, UpstreamError

T = TypeVar("T")
_COMMITTING = (ReasoningDelta, Usage, Sources)  # event types that do not commit a stream


class Opened(msgspec.Struct):
    """A stream that produced its first piece of answer: `head` holds everything so far."""

    target: Target
    head: list[Event]
    rest: AsyncGenerator[list[Event], None]
    started: float  # loop time the successful attempt began
    first_token: float  # loop time the first content arrived


class Outcome(msgspec.Struct):
    """A finished non-streamed attempt."""

    target: Target
    events: list[Event]
    started: float
    first_token: float


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, UpstreamError) and exc.retryable


class Gateway:
    """Runs plans against backends; owns nothing but references handed in by the lifespan."""

    def __init__(
        self,
        settings: Settings,
        backends: Mapping[str, Backend],
        health: Health,
        observer: Observer,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        stats: Stats | None = None,
    ) -> None:
        self.settings = settings
        self.stats = Stats() if stats is None else stats  # attempts in flight, learned speed
        self.learned = LearnedTimeouts(settings, self.stats)
        self.backends = backends
        self.health = health
        self.observer = observer
        self.sleep = sleep
        retry = settings.retry
        self._backoff = wait_exponential_jitter(
            multiplier=retry.backoff_initial, max=retry.backoff_max, jitter=retry.backoff_initial
        )

    # ---- public -------------------------------------------------------------------------

    async def complete(
        self, plan: Plan, request: ChatRequest, policy: Policy, trail: Trail
    ) -> Outcome:
        """The first target's answer that succeeds, after retries and fallback."""

        async def once(target: Target) -> Outcome:
            backend = self.backends[target.provider.protocol]
            timeout = min(self.settings.timeouts.response, self.remaining(policy))
            started = _now()
            events = await backend.complete(target, request, timeout)
            return Outcome(target, events, started, _now())

        return await self.run(plan, policy, trail, once)

    async def open_stream(
        self, plan: Plan, request: ChatRequest, policy: Policy, trail: Trail
    ) -> Opened:
        """Walk the chain until a target streams its first piece of answer. Its attempt is
        left open in the trail until the stream ends (`settle`)."""

        async def once(target: Target) -> Opened:
            return await self._open_once(target, request, policy)

        return await self.run(plan, policy, trail, once)

    async def attempt_stream(
        self, target: Target, request: ChatRequest, policy: Policy, trail: Trail
    ) -> Opened:
        """One streaming attempt at one target, no retries (stream rescue)."""

        async def once(target: Target) -> Opened:
            return await self._open_once(target, request, policy)

        return await self._attempt(target, policy, trail, once)

    def first_token_timeout(self, target: Target) -> float:
        return self.learned.first_token(target)

    def settle(
        self,
        opened: Opened,
        trail: Trail,
        error: UpstreamError | None,
        used: Usage | None = None,
        cost: Decimal | None = None,
    ) -> None:
        """Close a stream's open attempt with its real outcome: ok, or the error that broke it
        (with what it consumed, `used`, and that usage's cost)."""
        attempt = trail.opened
        assert attempt is not None
        self.stats.ended(opened.target.ref)
        ms = int((_now() - opened.started) * 1000)
        if error is None:
            final = msgspec.structs.replace(attempt, ms=ms)
        else:
            final = _failed(opened.target, attempt.waited_ms, ms, error)
            if used is not None:
                final = msgspec.structs.replace(final, tokens=used.total_tokens, cost=cost)
            self._health(opened.target, error)
        trail.close(final)
        self.observer.attempted(opened.target, final, used)

    # ---- the chain ------------------------------------------------------------------------

    async def run(
        self,
        plan: Plan,
        policy: Policy,
        trail: Trail,
        once: Callable[[Target], Awaitable[T]],
    ) -> T:
        """Walk the plan: `once(target)` with retries per target, then the next target; with
        `plan.hedge_after`, the rest of the chain races a slow first target (`core.hedge`).
        Chat and every media endpoint share this one policy."""
        targets = plan.targets
        if plan.hedge_after is None or len(targets) < 2:
            return await self._walk(targets, policy, trail, once, False)
        race: Race[T] = Race(lambda t, a: self._ended(t, trail, a), _discard, _now)
        return await race.run(
            lambda o, hedged: self._walk(targets[:1], policy, trail, o, hedged),
            lambda o, hedged: self._walk(targets[1:], policy, trail, o, hedged),
            once,
            plan.hedge_after,
        )

    async def _walk(
        self,
        targets: list[Target],
        policy: Policy,
        trail: Trail,
        once: Callable[[Target], Awaitable[T]],
        hedged: bool,
    ) -> T:
        decisive: UpstreamError | None = None
        too_small: int | None = None  # context window that already proved too small
        for target in targets:
            window = target.info.context_window if target.info else None
            if too_small is not None and window is not None and window <= too_small:
                trail.add(_skip(target, Failure.TOO_LARGE, "context window too small"))
                continue
            try:
                return await self._with_retries(target, policy, trail, once, hedged)
            except UpstreamError as exc:
                decisive = decisive or exc
                if exc.failure is Failure.CONTEXT_LENGTH:
                    too_small = window or too_small
                if exc.failure is Failure.DEADLINE or self._ends_chain(exc):
                    break
        raise AllTargetsFailed(list(trail.entries), decisive)

    def _ended(self, target: Target, trail: Trail, attempt: Attempt) -> None:
        """An attempt cancelled by a hedge race: into the trail and to the observers."""
        trail.add(attempt)
        self.observer.attempted(target, attempt, None)

    def _ends_chain(self, exc: UpstreamError) -> bool:
        return (
            exc.failure is Failure.CONTENT_POLICY
            and not self.settings.routing.content_policy_fallback
        )

    async def _with_retries(
        self,
        target: Target,
        policy: Policy,
        trail: Trail,
        once: Callable[[Target], Awaitable[T]],
        hedged: bool = False,
    ) -> T:
        # The first attempt runs directly: tenacity costs ~16 us a call, and most calls
        # succeed first time. A retryable failure is replayed as tenacity's first attempt,
        # so every retry decision (stop, wait, Retry-After) stays in one place.
        policy.waited = 0.0
        try:
            return await self._attempt(target, policy, trail, once, hedged)
        except UpstreamError as exc:
            if not exc.retryable:
                raise
            replay: list[UpstreamError] = [exc]
        retrying = AsyncRetrying(
            stop=lambda state: self._stop(state, policy),
            wait=lambda state: self._wait(state, policy),
            retry=retry_if_exception(_retryable),
            sleep=self.sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if replay:
                    raise replay.pop()
                return await self._attempt(target, policy, trail, once, hedged)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _attempt(
        self,
        target: Target,
        policy: Policy,
        trail: Trail,
        once: Callable[[Target], Awaitable[T]],
        hedged: bool = False,
    ) -> T:
        waited_ms = int(policy.waited * 1000)
        policy.waited = 0.0
        if self.remaining(policy) <= 0:
            raise UpstreamError(Failure.DEADLINE, "the request deadline passed")
        started = _now()
        self.stats.started(target.ref)  # in flight from the moment it is chosen
        try:
            result = await once(target)
        except UpstreamError as exc:
            self.stats.ended(target.ref)
            failed = _failed(target, waited_ms, _ms(started), exc)
            self._record(target, trail, _mark(failed, hedged), exc)
            raise
        except BaseException:
            self.stats.ended(target.ref)
            raise
        ok = Attempt(target.provider.name, target.model, "ok", 200, _ms(started), None)
        ok = msgspec.structs.replace(ok, waited_ms=waited_ms) if waited_ms else ok
        ok = _mark(ok, hedged)
        if isinstance(result, Opened):
            self.health.success(target.ref)
            trail.open(ok)  # ended by `settle` when the stream ends
        else:
            self.stats.ended(target.ref)
            self._record(target, trail, ok, None)
        return result

    def _record(
        self, target: Target, trail: Trail, attempt: Attempt, error: UpstreamError | None
    ) -> None:
        """An attempt that ended: into the trail, health and the observers."""
        trail.add(attempt)
        if error is None:
            self.health.success(target.ref)
        else:
            self._health(target, error)
        self.observer.attempted(target, attempt, None)

    def _health(self, target: Target, error: UpstreamError) -> None:
        if error.failure not in _NOT_HEALTH:
            self.health.failure(target.ref)

    def _stop(self, state: RetryCallState, policy: Policy) -> bool:
        if state.attempt_number > policy.max_retries:
            return True
        exc = state.outcome.exception() if state.outcome else None
        wait = getattr(exc, "retry_after", None) or 0.0
        if wait > self.settings.retry.retry_after_cap:
            return True  # told to wait longer than we ever will: fail over now
        return wait + self.settings.retry.backoff_initial >= self.remaining(policy)

    def _wait(self, state: RetryCallState, policy: Policy) -> float:
        exc = state.outcome.exception() if state.outcome else None
        told = getattr(exc, "retry_after", None) or 0.0
        policy.waited = max(told, self._backoff(state))
        return policy.waited

    @staticmethod
    def remaining(policy: Policy) -> float:
        """Seconds left before the request's deadline."""
        return policy.deadline - _now()

    async def _open_once(self, target: Target, request: ChatRequest, policy: Policy) -> Opened:
        backend = self.backends[target.provider.protocol]
        first_token = min(self.first_token_timeout(target), self.remaining(policy))
        started = _now()
        rest = backend.stream(target, request, first_token, self.learned.stall(target))
        head: list[Event] = []
        async for batch in rest:
            head.extend(batch)
            if any(not isinstance(e, _COMMITTING) for e in batch):
                break
        return Opened(target, head, rest, started, _now())


_NOT_HEALTH = frozenset(
    {
        Failure.BAD_REQUEST,
        Failure.CONTEXT_LENGTH,
        Failure.CONTENT_POLICY,
        Failure.DEADLINE,
        Failure.RESCUE_MISMATCH,
        Failure.CLIENT_CLOSED,
    }
)
"""The caller's request, not the deployment, was at fault: circuits do not count these."""


def _failed(target: Target, waited_ms: int, ms: int, error: UpstreamError) -> Attempt:
    return Attempt(
        target.provider.name,
        target.model,
        error.failure.value,
        error.status,
        ms,
        error.message,
        waited_ms=waited_ms,
    )


def _mark(attempt: Attempt, hedged: bool) -> Attempt:
    return msgspec.structs.replace(attempt, hedged=True) if hedged else attempt


async def _discard(result: object) -> None:
    """Close an answer that lost a hedge race (a stream's connection)."""
    if isinstance(result, Opened):
        await result.rest.aclose()


def _skip(target: Target, failure: Failure, reason: str) -> Attempt:
    return Attempt(target.provider.name, target.model, failure.value, reason=reason)


def _ms(started: float) -> int:
    return int((_now() - started) * 1000)


def _now() -> float:
    return asyncio.get_running_loop().time()
