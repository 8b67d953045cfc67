"""The per-request record: the request id and what the core reported about the call.

The middleware opens one `Record` per API request and makes it current (a context variable,
copied into the tasks a response spawns); the `Recorder` observer fills it in as the core
reports attempts and the call's end; the middleware writes the log line and the trace from
it when the response is complete. Request ids come from the caller's `x-request-id` when it
is safe (1-128 of `A-Z a-z 0-9 . _ : -`), else are generated (32 hex digits).
"""

from __future__ import annotations

import re
import time
from contextvars import ContextVar

from router.core.types import Attempt, Report, Target, Usage
from router.ids import hex_id

_SAFE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


def new_request_id() -> str:
    return hex_id(32)


def request_id_from(raw: bytes | None) -> str:
    """The caller's id when it is safe to echo and log, else a new one."""
    if raw is not None and _SAFE_ID.fullmatch(raw):
        return raw.decode("ascii")
    return new_request_id()


class Record:
    """One API request, as the middleware and the observers see it."""

    __slots__ = ("attempts", "report", "request_id", "surface", "traceparent")

    def __init__(self, request_id: str, surface: str, traceparent: str | None) -> None:
        self.request_id = request_id
        self.surface = surface
        self.traceparent = traceparent
        self.report: Report | None = None
        self.attempts: list[tuple[Target, Attempt, int]] = []  # with wall end time, ns


CURRENT: ContextVar[Record | None] = ContextVar("router_request", default=None)


class Recorder:
    """The core's observer that fills the current request's record (`keep_attempts` for
    traces: each attempt with the wall time it ended)."""

    def __init__(self, keep_attempts: bool) -> None:
        self.keep_attempts = keep_attempts

    def attempted(self, target: Target, attempt: Attempt, usage: Usage | None) -> None:
        if self.keep_attempts:
            record = CURRENT.get()
            if record is not None:
                record.attempts.append((target, attempt, time.time_ns()))

    def finished(self, report: Report) -> None:
        record = CURRENT.get()
        if record is not None:
            record.report = report
