"""What live traffic says about each target: time to first token, tokens per second (both
decaying averages), recent TTFTs for percentiles, and requests in flight.

`Stats` is an observer (`router.core.ports.Observer`): it learns from each call's `Report`.
The gateway counts attempts in flight (`started` / `ended`) from the moment a target is
chosen. Strategies read `snapshot()`, a consistent view taken between awaits. With `sharing`
on, the samples learned here are kept for `drain` and samples from other processes come in
through `absorb` (see `router.store.stats_redis`); in-flight counts stay per process.
"""

from __future__ import annotations

from collections import deque

import msgspec

from router.core.types import Attempt, Report, Target, Usage

OUTBOX = 20_000  # samples kept for other processes between two syncs, at most
_PACK = msgspec.msgpack.Encoder()


class Shared(msgspec.Struct, frozen=True, array_like=True):
    """Samples learned by one process since its last sync: (ref, ttft, tps) and (ref, gap)."""

    answers: list[tuple[str, float, float | None]]
    gaps: list[tuple[str, float]]


_UNPACK = msgspec.msgpack.Decoder(Shared)
ALPHA = 0.3  # weight of the newest sample in the decaying averages: ~8 samples to forget
RECENT = 100  # TTFTs kept per target for percentiles
GAPS = 500  # gaps between stream chunks kept per target


class Latency(msgspec.Struct, frozen=True, gc=False):
    """A target's learned speed: seconds to first token, output tokens per second (None
    until a streamed answer long enough to measure it)."""

    ttft: float
    tps: float | None
    samples: int


class Snapshot(msgspec.Struct, frozen=True):
    """The view a strategy orders by: latency and in-flight counts by `provider/model`."""

    latency: dict[str, Latency]
    inflight: dict[str, int]


class Stats:
    """Per-target latency and load, owned by the runtime, shared by the gateway and planner."""

    def __init__(self, alpha: float = ALPHA) -> None:
        self.alpha = alpha
        self.latency: dict[str, Latency] = {}
        self.inflight: dict[str, int] = {}
        self.recent: dict[str, deque[float]] = {}
        self.gaps: dict[str, deque[float]] = {}
        self.sharing = False
        self._answers: list[tuple[str, float, float | None]] = []
        self._gaps: list[tuple[str, float]] = []
        self._added: dict[str, int] = {}  # gaps ever added per target
        self._quantiles: dict[tuple[str, float], tuple[int, float]] = {}  # at `_added` then

    # ---- load ---------------------------------------------------------------------------

    def started(self, ref: str) -> None:
        self.inflight[ref] = self.inflight.get(ref, 0) + 1

    def ended(self, ref: str) -> None:
        left = self.inflight.get(ref, 0) - 1
        if left > 0:
            self.inflight[ref] = left
        else:
            self.inflight.pop(ref, None)

    # ---- the observer -------------------------------------------------------------------

    def attempted(self, target: Target, attempt: Attempt, usage: Usage | None) -> None:
        """Failures are the circuits' business; only answers teach speed."""

    def finished(self, report: Report) -> None:
        target, ttft = report.target, report.upstream_ttft
        if report.outcome != "ok" or target is None or ttft is None:
            return
        answered = next((a for a in reversed(report.attempts) if a.outcome == "ok"), None)
        tps = None
        if answered is not None and report.stream:
            generating = answered.ms / 1000 - ttft
            tokens = report.usage.completion_tokens
            if generating > 0.001 and tokens > 1:
                tps = tokens / generating
        self.learn(target.ref, ttft, tps)

    def learn(self, ref: str, ttft: float, tps: float | None, shared: bool = True) -> None:
        """One answer's measurements into the decaying averages."""
        if self.sharing and shared and len(self._answers) < OUTBOX:
            self._answers.append((ref, ttft, tps))
        old = self.latency.get(ref)
        recent = self.recent.get(ref)
        if recent is None:
            recent = self.recent[ref] = deque(maxlen=RECENT)
        recent.append(ttft)
        if old is None:
            self.latency[ref] = Latency(ttft, tps, 1)
            return
        a = self.alpha
        new_tps = old.tps if tps is None else tps
        if tps is not None and old.tps is not None:
            new_tps = old.tps + a * (tps - old.tps)
        self.latency[ref] = Latency(old.ttft + a * (ttft - old.ttft), new_tps, old.samples + 1)

    def gap(self, ref: str, seconds: float, shared: bool = True) -> None:
        """The silence between two chunks of a stream from `ref`."""
        if self.sharing and shared and len(self._gaps) < OUTBOX:
            self._gaps.append((ref, seconds))
        gaps = self.gaps.get(ref)
        if gaps is None:
            gaps = self.gaps[ref] = deque(maxlen=GAPS)
        gaps.append(seconds)
        self._added[ref] = self._added.get(ref, 0) + 1

    # ---- sharing between processes -----------------------------------------------------

    def drain(self) -> bytes | None:
        """The samples learned here since the last drain, packed; None when there are none."""
        if not self._answers and not self._gaps:
            return None
        packed = _PACK.encode(Shared(self._answers, self._gaps))
        self._answers, self._gaps = [], []
        return packed

    def absorb(self, packed: bytes) -> None:
        """Samples another process learned: into the averages here, not shared again."""
        shared = _UNPACK.decode(packed)
        for ref, ttft, tps in shared.answers:
            self.learn(ref, ttft, tps, shared=False)
        for ref, seconds in shared.gaps:
            self.gap(ref, seconds, shared=False)

    # ---- reading ------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return Snapshot(self.latency, self.inflight)

    def percentile(self, ref: str, q: float, least: int = 1) -> float | None:
        """The `q` quantile (0..1) of the target's recent TTFTs; None before `least` of them."""
        return _quantile(self.recent.get(ref), q, least)

    def gap_percentile(self, ref: str, q: float, least: int = 1) -> float | None:
        """The `q` quantile of the target's recent gaps between chunks (None before `least`).

        Every stream asks for it when it opens, and a full window is 500 samples: sorting
        them each time cost ~16 µs a stream. The figure is sorted again once 2 % of the
        window (every sample of a window under 50) came in since: at most 10 gaps stale."""
        samples = self.gaps.get(ref)
        if not samples or len(samples) < least:
            return None
        added = self._added.get(ref, 0)
        known = self._quantiles.get((ref, q))
        if known is not None and added - known[0] < max(1, len(samples) // 50):
            return known[1]
        value = _quantile(samples, q, least)
        assert value is not None
        self._quantiles[ref, q] = (added, value)
        return value


def _quantile(samples: deque[float] | None, q: float, least: int) -> float | None:
    if not samples or len(samples) < least:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
