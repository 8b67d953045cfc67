"""The status board: per target, its recent attempts (error ratio, latency) and the last
failure, kept by this process as the core reports attempts. Circuit states come from the
health registry (shared by every process when Redis links them); the board is this
worker's own. Failure reasons are failure kinds and HTTP statuses only: never a message,
a host or a key.
"""

from __future__ import annotations

import time
from collections import deque

import msgspec

from router.core.types import Attempt, Report, Target, Usage
from router.metrics_genai import skipped

WINDOW = 50  # attempts per target the ratios and latency are over
LIMIT = 1000  # targets outside the catalog tracked at most


class Seen(msgspec.Struct):
    outcomes: deque[tuple[bool, int]]
    last_failure: str | None = None
    last_failure_at: float | None = None  # wall time


class StatusBoard:
    """The core's observer that keeps each target's recent attempts."""

    def __init__(self) -> None:
        self.seen: dict[str, Seen] = {}

    def attempted(self, target: Target, attempt: Attempt, usage: Usage | None) -> None:
        if skipped(attempt):
            return  # skipped, not tried: the circuit state tells why
        seen = self.seen.get(target.ref)
        if seen is None:
            if target.info is None and len(self.seen) >= LIMIT:
                return  # names outside the catalog are the callers': bounded
            seen = self.seen[target.ref] = Seen(deque(maxlen=WINDOW))
        ok = attempt.outcome == "ok"
        seen.outcomes.append((ok, attempt.ms))
        if not ok:
            status = f" (HTTP {attempt.status})" if attempt.status else ""
            seen.last_failure = f"{attempt.outcome}{status}"
            seen.last_failure_at = time.time()

    def finished(self, report: Report) -> None:
        return None
