"""Stream rescue: continue a stream that broke after text already reached the caller.

The caller has seen `sent`; whatever follows must read as one consistent answer. For each
candidate target (the one that failed first, then the rest of the plan):

- if its catalog entry has the `prefill` capability, ask it to *continue* `sent` (the
  partial answer is sent as the start of the assistant turn) and relay the continuation;
- otherwise *regenerate* the whole answer and splice only if the new text begins with
  exactly `sent`: the part already shown is swallowed and the rest is relayed.

A candidate that fails, or regenerates different text, is recorded in the trail and the next
is tried. If none works the caller gets the original failure, never a rescue's rejection.
A stream gets at most `MAX_CANDIDATES` rescue attempts in all, however often it breaks, and a
target that went silent (a stall or a timeout) is asked again only after the others.
"""

from __future__ import annotations

import msgspec

from router.core.call import Policy
from router.core.gateway import Gateway, Opened
from router.core.trail import Trail
from router.core.types import ChatRequest, Event, ReasoningDelta, Target, TextDelta
from router.errors import Failure, UpstreamError

MAX_CANDIDATES = 3


_SILENT = frozenset({Failure.STALL, Failure.TIMEOUT, Failure.FIRST_TOKEN_TIMEOUT})


def candidates(failed: Target, failure: Failure, targets: list[Target]) -> list[Target]:
    """The failed target first (last if it went silent), then the plan's other targets."""
    others = [t for t in targets if t.ref != failed.ref]
    return [*others, failed] if failure in _SILENT else [failed, *others]


class Rescuer:
    """The rescue budget of one stream: `MAX_CANDIDATES` attempts in all."""

    def __init__(self, gateway: Gateway, policy: Policy, trail: Trail) -> None:
        self.gateway = gateway
        self.policy = policy
        self.trail = trail
        self.left = MAX_CANDIDATES

    async def rescue(self, targets: list[Target], request: ChatRequest, sent: str) -> Opened | None:
        """A stream that carries on after `sent`, or None if no candidate could provide one."""
        for target in targets:
            if self.left <= 0:
                return None
            gateway = self.gateway
            if not gateway.health.allow(target.ref) or gateway.remaining(self.policy) <= 0:
                continue
            self.left -= 1
            rescued = await _try(self.gateway, target, request, sent, self.policy, self.trail)
            if rescued is not None:
                return rescued
        return None


async def _try(
    gateway: Gateway,
    target: Target,
    request: ChatRequest,
    sent: str,
    policy: Policy,
    trail: Trail,
) -> Opened | None:
    """One rescue attempt at `target`: a prefilled continuation or a spliced regeneration."""
    prefill = target.info is not None and "prefill" in target.info.capabilities
    try:
        if prefill:
            asked = msgspec.structs.replace(request, prefill=sent)
            opened = await gateway.attempt_stream(target, asked, policy, trail)
            head = _continuation(opened.head, sent)
            return Opened(target, head, opened.rest, opened.started, opened.first_token)
        return await _regenerate(gateway, target, request, sent, policy, trail)
    except UpstreamError:
        return None  # recorded in the trail by the gateway


async def _regenerate(
    gateway: Gateway,
    target: Target,
    request: ChatRequest,
    sent: str,
    policy: Policy,
    trail: Trail,
) -> Opened | None:
    opened: Opened = await gateway.attempt_stream(target, request, policy, trail)
    try:
        return await _splice(opened, sent)
    except UpstreamError as exc:
        await opened.rest.aclose()
        gateway.settle(opened, trail, exc)
        return None


async def _splice(opened: Opened, sent: str) -> Opened:
    """Read the regenerated stream until it covers `sent`; the rest follows it. Raises a
    RESCUE_MISMATCH error when it says something else or ends too early."""
    batch = opened.head
    seen = ["".join(e.text for e in batch if type(e) is TextDelta)]
    size = len(seen[0])
    while size < len(sent):
        try:
            batch = await anext(opened.rest)
        except StopAsyncIteration:
            raise _mismatch("regenerated answer ended before the part already sent") from None
        text = "".join(e.text for e in batch if type(e) is TextDelta)
        seen.append(text)
        size += len(text)
    regenerated = "".join(seen)
    if not regenerated.startswith(sent):
        raise _mismatch("regenerated answer differs from the part already sent")
    remainder = regenerated[len(sent) :]
    head: list[Event] = [TextDelta(remainder)] if remainder else []
    head += [e for e in batch if type(e) is not TextDelta and type(e) is not ReasoningDelta]
    return Opened(opened.target, head, opened.rest, opened.started, opened.first_token)


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


def _mismatch(reason: str) -> UpstreamError:
    return UpstreamError(Failure.RESCUE_MISMATCH, reason)
