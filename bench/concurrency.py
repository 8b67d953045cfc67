"""The concurrent-streams steps: N slow stamped streams held open at once through one worker.

For each step (N streams, one chunk every I ms, K chunks) the same N streams are sent direct to
the fake upstream, through the raw asyncio floor, the stack floor and the gateway's OpenAI
surface, one after the other. The load generator (bench/streams.py) reports the chunk delays,
the time to first chunk, CPU per chunk and the server's RSS while the streams are open; this
side adds how many streams the upstream held open at once and the server's RSS a moment after
they ended.

Placement: the server under test keeps the first core to itself; the fake upstream moves to the
load generator's core for these steps, so the gateway's core is spent on relaying only.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import TYPE_CHECKING, Any

from bench import targets
from bench.procs import Proc, memory_mb, pin
from bench.targets import Surface, Target

if TYPE_CHECKING:
    from bench.run import Bench

Result = dict[str, Any]
Entry = tuple[Target, Proc | None]


def ramp_seconds(streams: int) -> float:
    """Streams are opened evenly over this long (1,000 a second, at least 0.2 s): faster, and
    at 10,000 streams the load core itself (load generator and upstream) falls behind."""
    return max(0.2, streams / 1000)


def wait_drained(port: int, limit: float = 30.0) -> int | None:
    """Wait until the upstream holds no stamped stream open (the last step's are gone)."""
    deadline = time.monotonic() + limit
    while True:
        still = upstream_stats(port).get("open_streams")
        if not still or time.monotonic() > deadline:
            return still
        time.sleep(0.5)


def upstream_stats(port: int, reset: bool = False) -> Result:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/stats?reset" if reset else "/stats")
        stats: Result = json.loads(conn.getresponse().read())
        return stats
    except (OSError, ValueError):
        return {}
    finally:
        conn.close()


def run_steps(
    bench: Bench, direct: Target, floors: list[Entry | None], gateway: Entry | None
) -> None:
    """Every step on every target; records go to `bench.result["concurrency"]`."""
    assert bench.upstream is not None
    entries: list[tuple[Target, Surface, Proc | None]] = [(direct, targets.DIRECT, None)]
    for floor in floors:
        if floor is not None:
            entries.append((floor[0], floor[0].surfaces[0], floor[1]))
    if gateway is not None:
        entries.append((gateway[0], targets.OPENAI, gateway[1]))
    print("concurrent streams (upstream moved to the load core):", flush=True)
    pin(bench.upstream.tree(), bench.layout.load)
    try:
        for streams, interval, chunks in bench.options.stream_steps:
            for target, surface, server in entries:
                record = step(bench, target, surface, server, (streams, interval, chunks))
                bench.result["concurrency"].append(record)
                _progress(record)
    finally:
        pin(bench.upstream.tree(), bench.layout.servers)


def step(
    bench: Bench,
    target: Target,
    surface: Surface,
    server: Proc | None,
    shape: tuple[int, float, int],
) -> Result:
    streams, interval, chunks = shape
    upstream_stats(bench.upstream_port, reset=True)
    assert bench.upstream is not None
    ramp = ramp_seconds(streams)
    command = {
        "op": "streams",
        "port": target.port,
        "path": surface.path,
        "headers": target.headers,
        "body": targets.slow_body(surface, interval * 1000, chunks),
        "streams": streams,
        "ramp": ramp,
        "expect_chunks": chunks,
        "timeout": ramp + chunks * interval + 30,
        "pids": server.tree() if server is not None else [],
        "upstream_pids": bench.upstream.tree(),
    }
    answer = bench.ask(command)
    stats = upstream_stats(bench.upstream_port)
    wait_drained(bench.upstream_port)
    time.sleep(bench.options.idle_wait)
    record: Result = {
        "target": target.name,
        "surface": surface.name,
        "interval_ms": interval * 1000,
        "chunks_per_stream": chunks,
        "ramp_s": ramp,
        **answer,
        "max_open_upstream": stats.get("max_open"),
        "open_upstream_after": stats.get("open_streams"),
    }
    if server is not None:
        record["rss_after_mb"] = memory_mb(server.tree())
    return record


def _progress(record: Result) -> None:
    nan = float("nan")
    delay, ttfc = record.get("delay_ms") or {}, record.get("ttfc_ms") or {}
    cpu = record.get("cpu_us_per_chunk")
    print(
        f"  {record['target']}/{record['surface']} {record['streams']} streams"
        f" @ {record['interval_ms']:g} ms: {record.get('errors')} errors,"
        f" delay p50 {delay.get('p50', nan):.1f} / p99 {delay.get('p99', nan):.1f} ms,"
        f" TTFC p50 {ttfc.get('p50', nan):.1f} ms,"
        f" {record.get('max_open_upstream')} open upstream at once"
        + (f", {cpu:.0f} CPU us/chunk" if cpu is not None else ""),
        flush=True,
    )
