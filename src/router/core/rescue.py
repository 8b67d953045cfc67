"""Stream rescue: continue a stream that broke after text already reached the caller.

The caller has seen `sent`; whatever follows must read as one consistent answer. For each
candidate target (the one that failed first, then the rest of the plan):

- if its catalog entry has the `prefill` capability, ask it to *continue* `sent` (the
  partial answer is sent as the start of the assistant turn) and relay the continuation;
- otherwise *regenerate* the whole answer and splice only if the new text begins with
  exactly `sent`: the part already shown is swallowed and the rest is relayed.

A candidate that fails, or regenerates different text, is recorded in the trail and the next
is tried. If none works the caller gets the original failure, never a rescue's rejection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from router.core.gateway import Gateway, Opened, Policy
from router.core.types import Attempt, ChatRequest, Event, ReasoningDelta, TextDelta
from router.errors import Failure, UpstreamError
from router.protocols.base import Target

MAX_CANDIDATES = 3


class Rescued(msgspec.Struct):
    target: Target
    head: list[Event]  # what follows `sent`, ready to relay
    rest: AsyncIterator[list[Event]]
    started: float
    first_token: float


def candidates(failed: Target, targets: list[Target]) -> list[Target]:
    """The failed target first, then the plan's other targets, at most MAX_CANDIDATES."""
    others = [t for t in targets if t.ref != failed.ref]
    return [failed, *others][:MAX_CANDIDATES]


async def rescue(
    gateway: Gateway,
    targets: list[Target],
    request: ChatRequest,
    sent: str,
    policy: Policy,
    trail: list[Attempt],
) -> Rescued | None:
    """A stream that carries on after `sent`, or None if no candidate could provide one."""
    for target in targets:
        if not gateway.health.allow(target.ref) or gateway.remaining(policy) <= 0:
            continue
        prefill = target.info is not None and "prefill" in target.info.capabilities
        try:
            if prefill:
                asked = msgspec.structs.replace(request, prefill=sent)
                opened = await gateway.attempt_stream(target, asked, policy, trail)
                return Rescued(
                    target,
                    _continuation(opened.head, sent),
                    opened.rest,
                    opened.started,
                    opened.first_token,
                )
            spliced = await _regenerate(gateway, target, request, sent, policy, trail)
        except UpstreamError:
            continue  # recorded in the trail by the gateway
        if spliced is not None:
            return spliced
    return None


async def _regenerate(
    gateway: Gateway,
    target: Target,
    request: ChatRequest,
    sent: str,
    policy: Policy,
    trail: list[Attempt],
) -> Rescued | None:
    opened: Opened = await gateway.attempt_stream(target, request, policy, trail)
    seen: list[str] = []
    size = 0
    batch = opened.head
    while True:
        text = "".join(e.text for e in batch if type(e) is TextDelta)
        seen.append(text)
        size += len(text)
        if size >= len(sent):
            spliced = _splice(opened, "".join(seen), sent, batch, trail)
            if spliced is None:
                await opened.rest.aclose()  # type: ignore[attr-defined]
            return spliced
        try:
            batch = await anext(opened.rest)
        except StopAsyncIteration:
            break
    trail[-1] = _mismatch(trail[-1], "regenerated answer ended before the part already sent")
    return None  # the regenerated stream is exhausted: nothing to close


def _splice(
    opened: Opened, regenerated: str, sent: str, batch: list[Event], trail: list[Attempt]
) -> Rescued | None:
    if not regenerated.startswith(sent):
        trail[-1] = _mismatch(trail[-1], "regenerated answer differs from the part already sent")
        return None
    remainder = regenerated[len(sent) :]
    head: list[Event] = [TextDelta(remainder)] if remainder else []
    head += [e for e in batch if type(e) is not TextDelta and type(e) is not ReasoningDelta]
    return Rescued(opened.target, head, opened.rest, opened.started, opened.first_token)


def _continuation(events: list[Event], sent: str) -> list[Event]:
    """A prefilled continuation's first events, without reasoning, and without leading
    whitespace when `sent` already ends with some (some protocols refuse a prefill with
    trailing whitespace, so it was trimmed and the model repeats it)."""
    out = [e for e in events if type(e) is not ReasoningDelta]
    if sent[-1:].isspace():
        for i, e in enumerate(out):
            if type(e) is TextDelta:
                out[i] = TextDelta(e.text.lstrip())
                break
    return out


def _mismatch(attempt: Attempt, reason: str) -> Attempt:
    return msgspec.structs.replace(attempt, outcome=Failure.RESCUE_MISMATCH.value, reason=reason)
