"""The load generator: a raw asyncio + httptools HTTP/1.1 client, driven over stdin/stdout.

It must never be the bottleneck, so a request is pre-encoded bytes written to a keep-alive
connection, and a response is parsed by httptools with no header decoding. It runs as its own
process on its own core; the orchestrator sends one JSON command per line and reads one JSON
result per line:

    {"op": "cell", "port": ..., "path": ..., "headers": {...}, "body": "...", "marker": "Hello",
     "concurrency": 16, "warmup": 1.0, "duration": 5.0, "pids": [...], "upstream_pids": [...]}
    {"op": "probe", "port": ..., "path": ..., "headers": {...}, "body": "...", "marker": "Hello"}
    {"op": "quit"}

A cell runs `concurrency` connections in a closed loop: a warm-up, then the measured window, in
which it records each request's latency and the time the marker (the first text token) first
appears in the body (TTFT), and reads the CPU time of the measured processes (`pids`, the
gateway; `upstream_pids`) from /proc before and after.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import httptools

from bench.procs import cpu_seconds, machine_busy, raise_nofile

perf_counter = time.perf_counter


class Conn(asyncio.Protocol):
    """One keep-alive client connection with at most one request in flight."""

    def __init__(self, marker: bytes, keep_body: bool = False) -> None:
        self.marker = marker
        self.keep_body = keep_body
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[float] | None = None
        self.status = 0
        self.t_first = 0.0
        self.tail = b""
        self.body: list[bytes] = []
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.keep_alive = False
        self._fail(ConnectionError(f"connection closed: {exc or 'by peer'}"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad HTTP response: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self.keep_body:
            self.body.append(body)
        if self.t_first:
            return
        haystack = self.tail + body
        if self.marker in haystack:
            self.t_first = perf_counter()
        else:
            self.tail = haystack[-len(self.marker) :]

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(perf_counter())

    def send(self, data: bytes) -> asyncio.Future[float]:
        """Write one request; the future resolves to the time its response completed."""
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("connection is closed")
        self.status = 0
        self.t_first = 0.0
        self.tail = b""
        self.body = []
        waiter = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        self.transport.write(data)
        return waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def encode_request(port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
    head += "content-type: application/json\r\naccept: */*\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head += f"content-length: {len(body)}\r\n\r\n"
    return head.encode() + body


def percentiles(values: Sequence[float]) -> dict[str, float] | None:
    """p50/p90/p99/mean/max in milliseconds (nearest rank), or None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    count = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(count - 1, max(0, int(q * count + 0.5) - 1))] * 1000

    return {
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "mean": sum(ordered) / count * 1000,
        "max": ordered[-1] * 1000,
    }


class Cell:
    """One measured configuration: a target, a request, a concurrency."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.port: int = spec["port"]
        self.marker = spec.get("marker", "Hello").encode()
        self.data = encode_request(
            self.port, spec["path"], spec.get("headers", {}), spec["body"].encode()
        )
        self.concurrency: int = spec.get("concurrency", 1)
        self.max_requests: int | None = spec.get("max_requests")
        self.latencies: list[float] = []
        self.ttfts: list[float] = []
        self.errors = 0  # in the measured window
        self.failures = 0  # warm-up included
        self.error_sample = ""
        self.reconnects = 0
        self.sent = 0  # requests answered or failed, warm-up included
        self.record = False

    async def connect(self) -> Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: Conn(self.marker), "127.0.0.1", self.port)
        return conn

    def _error(self, message: str) -> None:
        self.failures += 1
        if self.record:
            self.errors += 1
        self.error_sample = self.error_sample or message

    async def worker(self, conn: Conn, deadline: float) -> Conn:
        """Send requests back to back on one connection until the deadline; return it."""
        while perf_counter() < deadline:
            if self.max_requests is not None and len(self.latencies) >= self.max_requests:
                break
            t0 = perf_counter()
            self.sent += 1
            try:
                t_end = await conn.send(self.data)
            except ConnectionError as exc:
                self._error(str(exc))
                conn = await self.reconnect(conn)
                continue
            if conn.status != 200 or not conn.t_first:
                self._error(f"HTTP {conn.status}" + ("" if conn.t_first else ", no text"))
            elif self.record:
                self.latencies.append(t_end - t0)
                self.ttfts.append(conn.t_first - t0)
            if not conn.keep_alive:
                conn = await self.reconnect(conn)
        return conn

    async def reconnect(self, conn: Conn) -> Conn:
        conn.close()
        self.reconnects += 1
        if self.failures > 1000 and not self.latencies:
            raise RuntimeError(f"every request fails: {self.error_sample}")
        return await self.connect()

    async def phase(self, conns: list[Conn], seconds: float) -> list[Conn]:
        deadline = perf_counter() + seconds
        return list(await asyncio.gather(*(self.worker(conn, deadline) for conn in conns)))

    async def run(
        self, warmup: float, duration: float, pids: list[int], upstream_pids: list[int]
    ) -> dict[str, Any]:
        conns = [await self.connect() for _ in range(self.concurrency)]
        try:
            conns = await self.phase(conns, warmup)
            self.record = True
            before = Counters.read(pids, upstream_pids)
            conns = await self.phase(conns, duration)
            spent = Counters.read(pids, upstream_pids).minus(before)
        finally:
            for conn in conns:
                conn.close()
        return {
            "requests": len(self.latencies),
            "errors": self.errors,
            "error_sample": self.error_sample or None,
            "reconnects": self.reconnects,
            "sent": self.sent,
            **spent.figures(len(self.latencies), self.errors, bool(pids), bool(upstream_pids)),
            "latency_ms": percentiles(self.latencies),
            "ttft_ms": percentiles(self.ttfts),
        }


class Counters(NamedTuple):
    """Clocks read at both ends of the measured window (all in seconds)."""

    wall: float
    server: float  # CPU of the server under test (its whole process tree)
    upstream: float
    own: float  # this process
    busy: float  # the whole machine, in processes
    irq: float  # the whole machine, in interrupts
    steal: float

    @classmethod
    def read(cls, pids: list[int], upstream_pids: list[int]) -> Counters:
        return cls(
            perf_counter(),
            cpu_seconds(pids),
            cpu_seconds(upstream_pids),
            time.process_time(),
            *machine_busy(),
        )

    def minus(self, other: Counters) -> Counters:
        return Counters(*(a - b for a, b in zip(self, other, strict=True)))

    def figures(self, ok: int, errors: int, server: bool, upstream: bool) -> dict[str, Any]:
        done, wall = ok + errors, max(self.wall, 1e-9)
        ours = self.server + self.upstream + self.own
        return {
            "wall_s": wall,
            "rps": ok / wall,
            "cpu_ms_per_req": self.server * 1000 / done if server and done else None,
            "upstream_cpu_ms_per_req": self.upstream * 1000 / done if upstream and done else None,
            "loadgen_cpu_util": self.own / wall,
            # Cores used meanwhile by processes other than the bench's, and stolen: noise.
            "foreign_cpu_cores": max(0.0, self.busy - ours + self.steal) / wall,
            "steal_cpu_cores": self.steal / wall,
            "irq_cpu_cores": self.irq / wall,
        }


async def probe(spec: dict[str, Any]) -> dict[str, Any]:
    """One request, its status and the head of its body: does this surface answer?"""
    cell = Cell(spec)
    loop = asyncio.get_running_loop()
    try:
        _, conn = await loop.create_connection(
            lambda: Conn(cell.marker, keep_body=True), "127.0.0.1", cell.port
        )
        await asyncio.wait_for(conn.send(cell.data), spec.get("timeout", 30.0))
    except (OSError, TimeoutError) as exc:
        return {"status": None, "body": f"{type(exc).__name__}: {exc}", "marker_seen": False}
    conn.close()
    body = b"".join(conn.body)
    return {
        "status": conn.status,
        "body": body[:2000].decode(errors="replace"),
        "marker_seen": bool(conn.t_first),
    }


async def handle(command: dict[str, Any]) -> dict[str, Any]:
    if command["op"] == "probe":
        return await probe(command)
    if command["op"] in ("streams", "disconnects"):
        from bench import streams

        run = streams.run_streams if command["op"] == "streams" else streams.run_disconnects
        return await run(command)
    cell = Cell(command)
    timeout = command["warmup"] + command["duration"] + 60
    try:
        return await asyncio.wait_for(
            cell.run(
                command["warmup"],
                command["duration"],
                command.get("pids", []),
                command.get("upstream_pids", []),
            ),
            timeout,
        )
    except (OSError, RuntimeError, TimeoutError) as exc:
        return {"failed": f"{type(exc).__name__}: {exc}", "error_sample": cell.error_sample}


async def serve_stdin() -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        command = json.loads(line)
        if command["op"] == "quit":
            return
        sys.stdout.write(json.dumps(await handle(command)) + "\n")
        sys.stdout.flush()


def main() -> None:
    raise_nofile()
    try:
        import uvloop
    except ImportError:  # the stdlib loop is slower but correct
        asyncio.run(serve_stdin())
    else:
        uvloop.run(serve_stdin())


if __name__ == "__main__":
    main()
