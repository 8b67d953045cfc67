"""The concurrent-streams cell, load-generator side: N slow stamped streams held open at once.

Each stream is one raw asyncio connection (httptools parser, no aiohttp, no task per stream)
sending one pre-encoded request that asks the fake upstream for a stamped slow stream
(bench/stamped.py). Streams are opened evenly over a ramp; every received stamp gives the
delay of one chunk (receive time - send time, both wall clock on one machine). While the
streams run, the server's RSS is sampled; its CPU is read at both ends.

    {"op": "streams", "port": ..., "path": ..., "headers": {...}, "body": "...",
     "streams": 1000, "ramp": 2.0, "expect_chunks": 100, "timeout": 60, "pids": [...],
     "upstream_pids": [...]}
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, cast

import httptools

from bench.loadgen import Counters, encode_request, percentiles
from bench.procs import memory_mb
from bench.stamped import STAMP

Result = dict[str, Any]


class Tally:
    """What every stream of a cell adds to: delays, first-chunk times, outcomes."""

    def __init__(self, expect_chunks: int) -> None:
        self.expect = expect_chunks
        self.delays: list[float] = []
        self.ttfc: list[float] = []
        self.ok = 0
        self.errors = 0
        self.error_sample = ""
        self.finished = 0
        self.chunks = 0
        self.conns: list[StreamConn] = []

    def fail(self, message: str) -> None:
        self.errors += 1
        self.finished += 1
        self.error_sample = self.error_sample or message


class StreamConn(asyncio.Protocol):
    """One stream: write the request once, collect the stamps of its chunks."""

    def __init__(self, tally: Tally, request: bytes) -> None:
        self.tally = tally
        self.request = request
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.t_sent = 0.0
        self.last = b""
        self.tail = b""
        self.count = 0
        self.status = 0
        self.over = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.tally.conns.append(self)
        self.t_sent = time.time()
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(f"connection closed after {self.count} chunks: {exc or 'by peer'}")

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._end(f"bad HTTP response: {exc}")

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        now = time.time()
        text = self.tail + body
        for stamp in STAMP.findall(text):
            if stamp > self.last:  # a stamp split across reads is seen twice
                self.last = stamp
                if not self.count:
                    self.tally.ttfc.append(now - self.t_sent)
                self.count += 1
                self.tally.delays.append(now - float(stamp))
        self.tail = text[-24:]

    def on_message_complete(self) -> None:
        if self.status != 200:
            self._end(f"HTTP {self.status}")
        elif self.count != self.tally.expect:
            self._end(f"{self.count} of {self.tally.expect} chunks")
        else:
            self._end(None)

    def _end(self, error: str | None) -> None:
        if self.over:
            return
        self.over = True
        self.tally.chunks += self.count
        if error is None:
            self.tally.ok += 1
            self.tally.finished += 1
        else:
            self.tally.fail(error)
        if self.transport is not None:
            self.transport.close()


async def _open(tally: Tally, port: int, request: bytes) -> None:
    loop = asyncio.get_running_loop()
    try:
        await loop.create_connection(lambda: StreamConn(tally, request), "127.0.0.1", port)
    except OSError as exc:
        tally.fail(f"connect: {exc}")


async def _sample_rss(pids: list[int], peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], memory_mb(pids))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def run_streams(spec: Result) -> Result:
    """Open `streams` streams over `ramp` seconds, wait for all to end; the cell's figures."""
    count: int = spec["streams"]
    tally = Tally(spec["expect_chunks"])
    request = encode_request(
        spec["port"], spec["path"], spec.get("headers", {}), spec["body"].encode()
    )
    pids: list[int] = spec.get("pids", [])
    idle = memory_mb(pids) if pids else 0.0
    peak = [idle]
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(pids, peak, stop)) if pids else None
    before = Counters.read(pids, spec.get("upstream_pids", []))
    opened = time.perf_counter()
    pending = set()
    for i in range(count):
        delay = opened + spec["ramp"] * i / count - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.add(asyncio.create_task(_open(tally, spec["port"], request)))
    await asyncio.gather(*pending)
    deadline = time.perf_counter() + spec["timeout"]
    while tally.finished < count and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    spent = Counters.read(pids, spec.get("upstream_pids", [])).minus(before)
    for conn in tally.conns:  # streams still running at the deadline: hang up, count them
        if not conn.over and conn.transport is not None:
            conn.transport.abort()
    stop.set()
    if sampler is not None:
        await sampler
    return _figures(spec, tally, spent, idle, peak[0])


def _figures(spec: Result, tally: Tally, spent: Counters, idle: float, peak: float) -> Result:
    count, chunks = spec["streams"], max(tally.chunks, 1)
    return {
        "streams": count,
        "ok": tally.ok,
        "errors": tally.errors + (count - tally.finished),
        "unfinished": count - tally.finished,
        "error_sample": tally.error_sample or None,
        "chunks": tally.chunks,
        "wall_s": spent.wall,
        "chunks_per_s": tally.chunks / max(spent.wall, 1e-9),
        "delay_ms": percentiles(tally.delays),
        "ttfc_ms": percentiles(tally.ttfc),
        "cpu_us_per_chunk": spent.server * 1e6 / chunks if spec.get("pids") else None,
        "upstream_cpu_us_per_chunk": spent.upstream * 1e6 / chunks,
        "server_cpu_util": spent.server / max(spent.wall, 1e-9),
        "idle_rss_mb": idle if spec.get("pids") else None,
        "peak_rss_mb": peak if spec.get("pids") else None,
        "kb_per_stream": (peak - idle) * 1024 / count if spec.get("pids") else None,
        "foreign_cpu_cores": max(
            0.0, spent.busy - spent.server - spent.upstream - spent.own + spent.steal
        )
        / max(spent.wall, 1e-9),
    }


class Quitter(asyncio.Protocol):
    """A client that sends a stream request and hangs up at the first byte of the answer."""

    def __init__(self, request: bytes, done: asyncio.Future[bool]) -> None:
        self.request = request
        self.done = done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.transport.abort()  # a reset, as a client that gives up mid-stream sends

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(True)


async def run_disconnects(spec: Result) -> Result:
    """`streams` clients that each give up at the first byte; how many got that far."""
    loop = asyncio.get_running_loop()
    request = encode_request(
        spec["port"], spec["path"], spec.get("headers", {}), spec["body"].encode()
    )
    futures = []
    for _ in range(spec["streams"]):
        done: asyncio.Future[bool] = loop.create_future()
        try:
            await loop.create_connection(
                lambda d=done: Quitter(request, d), "127.0.0.1", spec["port"]
            )
        except OSError:
            continue
        futures.append(done)
    finished, _ = (
        await asyncio.wait(futures, timeout=spec.get("timeout", 30)) if futures else ((), ())
    )
    return {"disconnects": len(finished), "streams": spec["streams"]}
