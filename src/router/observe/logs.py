"""Request logs: one JSON line per API request on stdout, written when the response ends.

A line carries the request id, the key's *name* (never the key), the surface, the path (no
query string), the requested model, the chain of targets tried with each outcome, the
answering provider/model, status, tokens, cost, latency and time to first token. It never
carries a secret, a header, or prompt or answer text. Turn it off with
ROUTER_REQUEST_LOG=off.
"""

from __future__ import annotations

import asyncio
import atexit
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from router.core.types import Report
from router.observe.record import Record


class LoggedAttempt(msgspec.Struct, frozen=True, omit_defaults=True):
    target: str
    outcome: str
    status: int | None = None
    ms: int = 0


class Tokens(msgspec.Struct, frozen=True):
    input: int
    output: int
    cached: int
    reasoning: int


class RequestLine(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    ts: str
    level: str = "info"
    event: str = "request"
    request_id: str
    method: str
    path: str
    surface: str
    status: int
    latency_ms: int
    key: str | None = None
    stream: bool | None = None
    model: str | None = None  # as the caller asked for it
    outcome: str | None = None
    chain: list[LoggedAttempt] | None = None
    provider: str | None = None  # the answering target
    answered_model: str | None = None
    tokens: Tokens | None = None
    cost_usd: Decimal | None = None
    ttft_ms: int | None = None


_ENCODER = msgspec.json.Encoder(decimal_format="number")


class Stdout:
    """Lines to stdout, written together once per event-loop turn: the requests that end in
    one turn (many, under load) cost one write and one flush, not one each (a system call
    is a large part of a request's cost on a virtual machine). Without a running loop, at
    once."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        atexit.register(self.flush)  # a line of the loop's last turn

    def __call__(self, line: bytes) -> None:
        self.lines.append(line)
        if len(self.lines) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        if not self.lines:
            return
        text = b"".join(self.lines).decode()
        self.lines.clear()
        out = sys.stdout
        out.write(text)
        out.flush()


class RequestLog:
    def __init__(self, write: Callable[[bytes], None] | None = None) -> None:
        self.write = write or Stdout()
        self._second = -1  # the whole second `_stamp` was formatted for
        self._stamp = ""

    def line(self, record: Record, method: str, path: str, status: int, seconds: float) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._second:  # strftime once a second, not once a request
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        stamp = f"{self._stamp}.{int(now % 1 * 1000):03d}Z"
        report = record.report
        line = RequestLine(
            ts=stamp,
            level="info" if status < 500 else "error",
            request_id=record.request_id,
            method=method,
            path=path,
            surface=record.surface,
            status=status,
            latency_ms=int(seconds * 1000),
            **({} if report is None else _answered(report)),
        )
        return _ENCODER.encode(line) + b"\n"

    def request(self, record: Record, method: str, path: str, status: int, seconds: float) -> None:
        self.write(self.line(record, method, path, status, seconds))


def _answered(report: Report) -> dict[str, Any]:
    """The line's fields from the call's report."""
    target = report.target
    usage = report.usage
    cost = report.costs.total_tokens_cost if report.costs else None
    broken = [a.cost for a in report.attempts if a.cost]
    if broken:
        cost = (cost or Decimal(0)) + sum(broken, Decimal(0))
    return {
        "key": report.caller,
        "stream": report.stream,
        "model": report.request_model or None,
        "outcome": report.outcome,
        "chain": [LoggedAttempt(a.ref, a.outcome, a.status, a.ms) for a in report.attempts],
        "provider": target.provider.name if target else None,
        "answered_model": target.model if target else None,
        "tokens": Tokens(
            input=usage.prompt_tokens,
            output=usage.completion_tokens,
            cached=usage.cached_tokens,
            reasoning=usage.reasoning_tokens,
        ),
        "cost_usd": cost,
        "ttft_ms": report.ttft_ms,
    }
