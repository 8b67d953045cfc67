"""The gateway and stream rescue driven directly, against a scripted in-memory backend: no HTTP,
no surfaces, the injected `sleep` recording every back-off exactly."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator

import pytest

from router.config import Provider, Retry, Settings
from router.core.call import Policy
from router.core.gateway import Gateway
from router.core.health import Health
from router.core.planner import Plan
from router.core.rescue import MAX_CANDIDATES, Rescuer, candidates
from router.core.trail import Trail
from router.core.types import (
    Attempt,
    ChatRequest,
    Event,
    Finish,
    Message,
    Report,
    Target,
    TextDelta,
    TextPart,
    Usage,
)
from router.errors import AllTargetsFailed, Failure, UpstreamError

REQUEST = ChatRequest(messages=(Message("user", (TextPart("hi"),)),))
Step = UpstreamError | list[list[Event]]  # an error at once, or the batches of an answer


class Scripted:
    """A backend whose every call takes the next step of its target's script."""

    media_kinds: frozenset[str] = frozenset()
    accepts: frozenset[str] = frozenset()
    dialect = "scripted"

    def __init__(self, script: dict[str, list[Step]]) -> None:
        self.script = {ref: deque(steps) for ref, steps in script.items()}
        self.calls: list[str] = []

    def _next(self, target: Target) -> Step:
        self.calls.append(target.ref)
        return self.script[target.ref].popleft()

    async def complete(self, target: Target, request: ChatRequest, timeout: float | None):
        step = self._next(target)
        if isinstance(step, UpstreamError):
            raise step
        return [e for batch in step for e in batch]

    async def stream(
        self, target: Target, request: ChatRequest, first_token: float, stall: float | None = None
    ) -> AsyncGenerator[list[Event], None]:
        step = self._next(target)
        if isinstance(step, UpstreamError):
            raise step
        for batch in step:
            if isinstance(batch, UpstreamError):
                raise batch
            yield batch

    async def forward(self, target, request, timeout):  # pragma: no cover - chat only
        raise AssertionError("no media here")


class Seen:
    def __init__(self) -> None:
        self.attempts: list[Attempt] = []

    def attempted(self, target: Target, attempt: Attempt, usage: Usage | None) -> None:
        self.attempts.append(attempt)

    def finished(self, report: Report) -> None:
        pass


def target(name: str) -> Target:
    return Target(Provider(name="p", protocol="scripted", base_url="x"), name, None, None)


def gateway(script: dict[str, list[Step]], max_retries: int = 2, backoff_initial: float = 0.5):
    backend = Scripted(script)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    settings = Settings(retry=Retry(max_retries=max_retries, backoff_initial=backoff_initial))
    gw = Gateway(settings, {"scripted": backend}, Health(settings.circuit), Seen(), sleep=sleep)
    return gw, backend, waits


def answer(text: str) -> list[list[Event]]:
    return [[TextDelta(w)] for w in text.split("|")] + [[Finish("stop"), Usage(1, 1)]]


def policy(loop_time: float) -> Policy:
    return Policy(2, loop_time + 60)


async def test_retry_after_is_waited_exactly_then_the_next_target_answers():
    a, b = target("a"), target("b")
    limited = UpstreamError(Failure.RATE_LIMITED, "slow down", status=429, retry_after=3.0)
    gw, backend, waits = gateway({a.ref: [limited, limited, limited], b.ref: [answer("ok")]})
    trail = Trail()
    now = asyncio.get_running_loop().time()
    out = await gw.complete(Plan([a, b], []), REQUEST, policy(now), trail)
    assert out.target == b
    assert backend.calls == [a.ref, a.ref, a.ref, b.ref]
    assert waits == [3.0, 3.0]  # Retry-After, not the shorter back-off, before each retry
    assert [(x.ref, x.outcome, x.waited_ms) for x in trail.entries] == [
        ("p/a", "rate_limited", 0),
        ("p/a", "rate_limited", 3000),
        ("p/a", "rate_limited", 3000),
        ("p/b", "ok", 0),
    ]


@pytest.mark.parametrize(("told", "waited_ms"), [(1.0, 1000), (0.4, 400)])
async def test_a_short_retry_after_is_waited_exactly_then_the_same_target_answers(told, waited_ms):
    a = target("a")
    limited = UpstreamError(Failure.RATE_LIMITED, "slow down", status=429, retry_after=told)
    gw, backend, waits = gateway({a.ref: [limited, answer("ok")]}, backoff_initial=0.05)
    trail = Trail()
    now = asyncio.get_running_loop().time()
    out = await gw.complete(Plan([a], []), REQUEST, policy(now), trail)
    assert out.target == a and backend.calls == [a.ref, a.ref]
    assert waits == [told]  # longer than the back-off (0.05 plus up to 0.05 of jitter)
    assert [(x.outcome, x.waited_ms) for x in trail.entries] == [
        ("rate_limited", 0),
        ("ok", waited_ms),
    ]


async def test_a_429_without_retry_after_backs_off_exponentially_with_jitter():
    a, b = target("a"), target("b")
    limited = UpstreamError(Failure.RATE_LIMITED, "slow down", status=429)
    gw, backend, waits = gateway({a.ref: [limited, limited, limited], b.ref: [answer("ok")]})
    now = asyncio.get_running_loop().time()
    out = await gw.complete(Plan([a, b], []), REQUEST, policy(now), Trail())
    assert out.target == b and backend.calls == [a.ref, a.ref, a.ref, b.ref]
    assert len(waits) == 2  # 0.5 x 2^n, plus up to 0.5 of jitter
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 1.5


async def test_a_final_failure_ends_the_target_at_once_and_the_chain_reports_it():
    a, b = target("a"), target("b")
    bad = UpstreamError(Failure.BAD_REQUEST, "no", status=400)
    gone = UpstreamError(Failure.CONNECT, "cannot connect to the provider")
    gw, backend, waits = gateway({a.ref: [bad], b.ref: [gone, gone, gone]})
    trail = Trail()
    now = asyncio.get_running_loop().time()
    with pytest.raises(AllTargetsFailed) as failed:
        await gw.complete(Plan([a, b], []), REQUEST, policy(now), trail)
    assert backend.calls == [a.ref, b.ref, b.ref, b.ref]  # 400 is not retried, connect is
    assert failed.value.decisive is bad  # the first real failure is the one to report
    assert len(waits) == 2 and all(0.5 <= w <= 1.5 for w in waits)  # backoff with jitter


async def test_an_opened_stream_stays_open_in_the_trail_until_settled():
    a = target("a")
    gw, _, _ = gateway({a.ref: [answer("one|two")]})
    trail = Trail()
    now = asyncio.get_running_loop().time()
    opened = await gw.open_stream(Plan([a], []), REQUEST, policy(now), trail)
    assert trail.opened is not None and trail.entries[-1].outcome == "ok"
    assert [e.text for e in opened.head if isinstance(e, TextDelta)] == ["one"]
    cut = UpstreamError(Failure.CUT, "broke")
    gw.settle(opened, trail, cut, Usage(3, 1, estimated=True))
    assert trail.opened is None
    assert [(x.outcome, x.tokens) for x in trail.entries] == [("stream_cut", 4)]


async def test_rescue_splices_a_regeneration_that_repeats_what_was_sent():
    b = target("b")
    gw, _, _ = gateway({b.ref: [answer("Hello| wor|ld!")]})
    trail = Trail()
    now = asyncio.get_running_loop().time()
    rescued = await Rescuer(gw, policy(now), trail).rescue([b], REQUEST, "Hello wor")
    assert rescued is not None and rescued.target == b
    assert [e.text for e in rescued.head if isinstance(e, TextDelta)] == []  # nothing beyond yet
    rest = [e async for batch in rescued.rest for e in batch if isinstance(e, TextDelta)]
    assert [e.text for e in rest] == ["ld!"]


async def test_rescue_gives_up_on_different_text_and_within_its_budget():
    targets = [target(n) for n in "abcde"]
    script = {t.ref: [answer("Something else entirely")] for t in targets}
    gw, backend, _ = gateway(script)
    trail = Trail()
    now = asyncio.get_running_loop().time()
    assert await Rescuer(gw, policy(now), trail).rescue(targets, REQUEST, "Hello") is None
    assert len(backend.calls) == MAX_CANDIDATES  # never more candidates than the budget
    assert {x.outcome for x in trail.entries} == {Failure.RESCUE_MISMATCH.value}


def test_a_target_that_went_silent_is_asked_again_last():
    a, b, c = target("a"), target("b"), target("c")
    assert candidates(a, Failure.CUT, [a, b, c]) == [a, b, c]
    assert candidates(a, Failure.STALL, [a, b, c]) == [b, c, a]
