"""Slow streams whose every chunk carries the wall-clock time it was sent (the fake upstream side).

A chat request whose text holds `interval_ms=I chunks=K` is answered with K text chunks, one
every I milliseconds, each chunk's text being `|<time.time() when written>`, then a finish
chunk, a usage chunk and `[DONE]`. The client finds each stamp in the text it receives and
subtracts it from its own clock: the delay the chunk took to arrive, through a gateway or not.

One timer callback per chunk (no task per stream) keeps the upstream cheap at 20,000 chunks/s;
chunk k is due at start + k x interval, so late writes do not accumulate drift.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Protocol

SLOW = re.compile(rb"interval_ms=(\d+(?:\.\d+)?) chunks=(\d+)( cut)?")
STAMP = re.compile(rb"\|(\d{10}\.\d{6})")
_PREFIX = (
    b'data: {"id":"chatcmpl-stamped","object":"chat.completion.chunk","created":1760000000,'
    b'"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"|'
)
_SUFFIX = b'"},"logprobs":null,"finish_reason":null}]}\n\n'
_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n"
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _tail(chunks: int) -> bytes:
    finish = (
        b'data: {"id":"chatcmpl-stamped","object":"chat.completion.chunk","created":1760000000,'
        b'"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{},"logprobs":null,'
        b'"finish_reason":"stop"}]}\n\n'
    )
    usage = (
        b'data: {"id":"chatcmpl-stamped","object":"chat.completion.chunk","created":1760000000,'
        b'"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":8,'
        b'"completion_tokens":%d,"total_tokens":%d}}\n\n' % (chunks, chunks + 8)
    )
    return _chunk(finish) + _chunk(usage) + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"


def slow_request(body: bytes) -> tuple[float, int, bool] | None:
    """(interval in seconds, chunk count, cut) when a request asks for a stamped slow stream;
    `cut`: the connection is closed half-way, with no end of stream (the soak's cut streams)."""
    match = SLOW.search(body)
    if match is None:
        return None
    return float(match.group(1)) / 1000, int(match.group(2)), bool(match.group(3))


class Counter(Protocol):
    open_streams: int
    max_open: int


class StampedStream:
    """One stamped stream on one connection, driven by the loop's timers."""

    def __init__(
        self,
        transport: asyncio.Transport,
        interval: float,
        chunks: int,
        cut: bool,
        counts: Counter,
    ) -> None:
        self.transport = transport
        self.interval = interval
        self.chunks = chunks
        self.cut_at = chunks // 2 if cut else -1
        self.counts = counts
        self.sent = 0
        self.loop = asyncio.get_running_loop()
        self.start = self.loop.time()
        self.done = False
        counts.open_streams += 1
        counts.max_open = max(counts.max_open, counts.open_streams)
        transport.write(_HEAD)
        self._tick()

    def _tick(self) -> None:
        if self.done:
            return
        if self.transport.is_closing():
            self.finish()
            return
        stamp = b"%.6f" % time.time()
        self.transport.write(_chunk(_PREFIX + stamp + _SUFFIX))
        self.sent += 1
        if self.sent == self.cut_at:
            self.transport.close()
            self.finish()
            return
        if self.sent >= self.chunks:
            self.transport.write(_tail(self.chunks))
            self.finish()
            return
        self.loop.call_at(self.start + self.sent * self.interval, self._tick)

    def finish(self) -> None:
        """The stream ended (or its connection did): it no longer counts as open."""
        if not self.done:
            self.done = True
            self.counts.open_streams -= 1
