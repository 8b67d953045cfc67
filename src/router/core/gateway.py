"""The gateway executes a plan: retries per target, fallback along the chain, one deadline.

Non-streamed calls are atomic per attempt. Streamed calls have a *commit point*: until the
first piece of the answer exists, any failure moves on invisibly (retry, then the next
target); once it has been handed to the caller, a failure can no longer restart silently
elsewhere (see `router.core.rescue`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import msgspec
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from router.config import Settings
from router.core.health import Health
from router.core.planner import Plan
from router.core.types import Attempt, ChatRequest, Event, ReasoningDelta, Usage
from router.errors import AllTargetsFailed, Failure, UpstreamError
from router.protocols.backend import Backend
from router.protocols.base import Target

T = TypeVar("T")
_COMMITTING = (ReasoningDelta, Usage)  # event types that do not commit a stream


class Policy(msgspec.Struct):
    """Per-request limits: retries per target and the absolute deadline (loop time)."""

    max_retries: int
    deadline: float


class Opened(msgspec.Struct):
    """A stream that produced its first piece of answer: `head` holds everything so far."""

    target: Target
    head: list[Event]
    rest: AsyncIterator[list[Event]]
    started: float  # loop time the successful attempt began
    first_token: float  # loop time the first content arrived


class Outcome(msgspec.Struct):
    """A finished non-streamed attempt."""

    target: Target
    events: list[Event]
    first_token: float


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, UpstreamError) and exc.retryable


class Gateway:
    """Runs plans against backends; owns nothing but references handed in by the lifespan."""

    def __init__(
        self,
        settings: Settings,
        backends: dict[str, Backend],
        health: Health,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_attempt: Callable[[Target, Attempt], None] = lambda target, attempt: None,
    ) -> None:
        self.settings = settings
        self.backends = backends
        self.health = health
        self.sleep = sleep
        self.on_attempt = on_attempt
        retry = settings.retry
        self._backoff = wait_exponential_jitter(
            multiplier=retry.backoff_initial, max=retry.backoff_max, jitter=retry.backoff_initial
        )

    # ---- public -------------------------------------------------------------------------

    async def complete(
        self, plan: Plan, request: ChatRequest, policy: Policy, trail: list[Attempt]
    ) -> Outcome:
        """The first target's answer that succeeds, after retries and fallback."""

        async def once(target: Target) -> Outcome:
            backend = self.backends[target.provider.protocol]
            timeout = min(self.settings.timeouts.response, self.remaining(policy))
            events = await backend.complete(target, request, timeout)
            return Outcome(target, events, _now())

        return await self.run(plan, policy, trail, once)

    async def open_stream(
        self, plan: Plan, request: ChatRequest, policy: Policy, trail: list[Attempt]
    ) -> Opened:
        """Walk the chain until a target streams its first piece of answer."""

        async def once(target: Target) -> Opened:
            return await self._open_once(target, request, policy)

        return await self.run(plan, policy, trail, once)

    async def attempt_stream(
        self, target: Target, request: ChatRequest, policy: Policy, trail: list[Attempt]
    ) -> Opened:
        """One recorded streaming attempt at one target, no retries (stream rescue)."""

        async def once(target: Target) -> Opened:
            return await self._open_once(target, request, policy)

        return await self._attempt(target, policy, trail, once)

    def first_token_timeout(self, target: Target) -> float:
        info = target.info
        if info is not None and info.first_token_timeout is not None:
            return info.first_token_timeout
        timeouts = self.settings.timeouts
        if info is not None and "reasoning" in info.capabilities:
            return timeouts.first_token_reasoning
        return timeouts.first_token

    def record(
        self, target: Target, started: float, trail: list[Attempt], error: UpstreamError | None
    ) -> None:
        """Add one attempt to the trail and tell health and metrics about it."""
        ms = int((_now() - started) * 1000)
        provider = target.provider.name
        if error is None:
            attempt = Attempt(provider, target.model, "ok", 200, ms)
            self.health.success(target.ref)
        else:
            attempt = Attempt(
                provider, target.model, error.failure.value, error.status, ms, error.message
            )
            if error.failure not in _NOT_HEALTH:
                self.health.failure(target.ref)
        trail.append(attempt)
        self.on_attempt(target, attempt)

    # ---- the chain ------------------------------------------------------------------------

    async def run(
        self,
        plan: Plan,
        policy: Policy,
        trail: list[Attempt],
        once: Callable[[Target], Awaitable[T]],
    ) -> T:
        """Walk the plan: `once(target)` with retries per target, then the next target.
        Chat and every media endpoint share this one policy."""
        decisive: UpstreamError | None = None
        too_small: int | None = None  # context window that already proved too small
        for target in plan.targets:
            window = target.info.context_window if target.info else None
            if too_small is not None and window is not None and window <= too_small:
                trail.append(_skip(target, Failure.TOO_LARGE, "context window too small"))
                continue
            try:
                return await self._with_retries(target, policy, trail, once)
            except UpstreamError as exc:
                decisive = decisive or exc
                if exc.failure is Failure.CONTEXT_LENGTH:
                    too_small = window or too_small
                if exc.failure is Failure.DEADLINE or self._ends_chain(exc):
                    break
        raise AllTargetsFailed(trail, decisive)

    def _ends_chain(self, exc: UpstreamError) -> bool:
        return (
            exc.failure is Failure.CONTENT_POLICY
            and not self.settings.routing.content_policy_fallback
        )

    async def _with_retries(
        self,
        target: Target,
        policy: Policy,
        trail: list[Attempt],
        once: Callable[[Target], Awaitable[T]],
    ) -> T:
        # The first attempt runs directly: tenacity costs ~16 us a call, and most calls
        # succeed first time. A retryable failure is replayed as tenacity's first attempt,
        # so every retry decision (stop, wait, Retry-After) stays in one place.
        try:
            return await self._attempt(target, policy, trail, once)
        except UpstreamError as exc:
            if not exc.retryable:
                raise
            replay: list[UpstreamError] = [exc]
        retrying = AsyncRetrying(
            stop=lambda state: self._stop(state, policy),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            sleep=self.sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if replay:
                    raise replay.pop()
                return await self._attempt(target, policy, trail, once)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _attempt(
        self,
        target: Target,
        policy: Policy,
        trail: list[Attempt],
        once: Callable[[Target], Awaitable[T]],
    ) -> T:
        if self.remaining(policy) <= 0:
            raise UpstreamError(Failure.DEADLINE, "the request deadline passed")
        started = _now()
        try:
            result = await once(target)
        except UpstreamError as exc:
            self.record(target, started, trail, exc)
            raise
        self.record(target, started, trail, None)
        return result

    def _stop(self, state: RetryCallState, policy: Policy) -> bool:
        if state.attempt_number > policy.max_retries:
            return True
        exc = state.outcome.exception() if state.outcome else None
        wait = getattr(exc, "retry_after", None) or 0.0
        if wait > self.settings.retry.retry_after_cap:
            return True  # told to wait longer than we ever will: fail over now
        return wait + self.settings.retry.backoff_initial >= self.remaining(policy)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        told = getattr(exc, "retry_after", None) or 0.0
        return max(told, self._backoff(state))

    @staticmethod
    def remaining(policy: Policy) -> float:
        """Seconds left before the request's deadline."""
        return policy.deadline - _now()

    async def _open_once(self, target: Target, request: ChatRequest, policy: Policy) -> Opened:
        backend = self.backends[target.provider.protocol]
        first_token = min(self.first_token_timeout(target), self.remaining(policy))
        started = _now()
        rest = backend.stream(target, request, first_token)
        head: list[Event] = []
        async for batch in rest:
            head.extend(batch)
            if any(not isinstance(e, _COMMITTING) for e in batch):
                break
        return Opened(target, head, rest, started, _now())


_NOT_HEALTH = frozenset(
    {Failure.BAD_REQUEST, Failure.CONTEXT_LENGTH, Failure.CONTENT_POLICY, Failure.DEADLINE}
)
"""The caller's request, not the deployment, was at fault: circuits do not count these."""


def _skip(target: Target, failure: Failure, reason: str) -> Attempt:
    return Attempt(target.provider.name, target.model, failure.value, reason=reason)


def _now() -> float:
    return asyncio.get_running_loop().time()
