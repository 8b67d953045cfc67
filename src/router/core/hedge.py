"""Hedged requests: when the first target has produced no token (no answer, non-streamed)
`hedge_after` seconds into the call, the rest of the chain starts in parallel; the first to
produce a token wins and the other is cancelled at once (its connection closed).

At most one hedge per call. Both sides write to the call's one trail: the hedge's attempts
are marked `hedged`; the loser's attempt ends `cancelled`, its cost unknown (a cancelled
request's usage is never reported), never a silent zero.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import msgspec

from router.core.types import Attempt, Target
from router.errors import AllTargetsFailed

T = TypeVar("T")
Once = Callable[[Target], Awaitable[T]]
Walk = Callable[[Once[T], bool], Awaitable[T]]  # (once, hedged) -> a walk along targets

CANCELLED = "cancelled"
_REASON = "cancelled: the other attempt answered first; cost unknown"


class Race(Generic[T]):
    """The two sides of one hedged call: the first answer claims the win."""

    def __init__(
        self,
        record: Callable[[Target, Attempt], None],
        discard: Callable[[T], Awaitable[None]],
        now: Callable[[], float],
    ) -> None:
        self.record = record  # a cancelled attempt into the trail and the observers
        self.discard = discard  # close an answer that came second
        self.now = now
        self.won = False
        self.running: dict[bool, tuple[Target, float]] = {}  # side (hedged?) -> its attempt

    def racing(self, once: Once[T], hedged: bool) -> Once[T]:
        """`once`, recording a cancellation, and giving way when the other side won."""

        async def raced(target: Target) -> T:
            self.running[hedged] = (target, self.now())
            try:
                result = await once(target)
            except asyncio.CancelledError:
                self._cancelled(hedged)
                raise
            except BaseException:
                self.running.pop(hedged, None)
                raise
            if self.won:  # both answered in the same turn of the loop: this one lost
                await self.discard(result)
                self._cancelled(hedged)
                raise asyncio.CancelledError
            self.won = True
            self.running.pop(hedged, None)
            self._cancelled(not hedged)  # the loser, before the winner's own entry
            return result

        return raced

    def _cancelled(self, hedged: bool) -> None:
        """The side's attempt in flight ends `cancelled`, once."""
        running = self.running.pop(hedged, None)
        if running is None:
            return
        target, started = running
        ms = int((self.now() - started) * 1000)
        attempt = Attempt(target.provider.name, target.model, CANCELLED, None, ms, _REASON)
        if hedged:
            attempt = _hedged(attempt)
        self.record(target, attempt)

    async def run(self, first: Walk[T], rest: Walk[T], once: Once[T], after: float) -> T:
        """The first target alone for `after` seconds, then the rest of the chain beside it
        (the hedge); the first answer wins. A first target that fails before `after` is
        followed by the rest as usual, unhedged."""
        head = asyncio.ensure_future(first(self.racing(once, False), False))
        tasks: set[asyncio.Future[T]] = {head}
        try:
            done, _ = await asyncio.wait(tasks, timeout=after)
            if done and head.exception() is not None:
                return await _after(head, rest(once, False))
            if done:
                return head.result()
            tasks.add(asyncio.ensure_future(rest(self.racing(once, True), True)))
            return await _first_answer(tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _after(failed: asyncio.Future[T], rest: Awaitable[T]) -> T:
    early = failed.exception()
    assert isinstance(early, AllTargetsFailed), early
    try:
        return await rest
    except AllTargetsFailed as exc:
        raise AllTargetsFailed(exc.attempts, early.decisive or exc.decisive) from None


async def _first_answer(tasks: set[asyncio.Future[T]]) -> T:
    pending = set(tasks)
    failures: list[AllTargetsFailed] = []
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is None:
                return task.result()
            if not isinstance(exc, AllTargetsFailed):
                raise exc
            failures.append(exc)
    last = max(failures, key=lambda f: len(f.attempts))
    raise AllTargetsFailed(last.attempts, failures[0].decisive or last.decisive)


def _hedged(attempt: Attempt) -> Attempt:
    return msgspec.structs.replace(attempt, hedged=True)
