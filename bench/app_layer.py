"""The application layer alone: CPU per request of the gateway's ASGI app and of the stack
floor's (bench/floor.py), called in this process with no server and no client sockets.

`python -m bench app [--requests N]`. Both apps run in one event loop (uvloop) against the
fake upstream (bench/upstream.py, another process); each is sent N requests at concurrency
16 for each mode (JSON, 20-chunk stream), three rounds, interleaved (floor, gateway, floor,
...), and the least CPU per request of the rounds is kept. CPU is this process's user +
system time, threads included (the ledger's and the conversation store's threads are the
gateway's cost). What is left out is what both pay alike: uvicorn's HTTP parsing and socket
writes, the client. The figures move far less between runs than the socket cells of
`make bench`, so they show what a change to the gateway's own code bought; they are not what
a deployment costs (see `make bench` for that).

A third mode, `slow`, holds SLOW_STREAMS streams open at once, each sent SLOW_CHUNKS chunks
one every SLOW_INTERVAL_MS by the upstream (bench/stamped.py), so that every chunk is its own
upstream read and its own wake-up, as in the concurrency cells: its figure is CPU per relayed
chunk (the stream's own start and end included, spread over its chunks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import uvloop

from bench import targets
from bench.procs import Processes, free_port
from bench.setup import REPO

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
PATH = "/v1/chat/completions"
CONCURRENCY = 16
ROUNDS = 3
SLOW_STREAMS = 200
SLOW_CHUNKS = 40
SLOW_INTERVAL_MS = 20
MODES = ("json", "stream", "slow")


def _body(mode: str) -> bytes:
    text = f"interval_ms={SLOW_INTERVAL_MS} chunks={SLOW_CHUNKS}" if mode == "slow" else "Hi"
    body: dict[str, Any] = {"model": targets.MODEL, "messages": [{"role": "user", "content": text}]}
    if mode != "json":
        body["stream"] = True
    return json.dumps(body).encode()


def _answered(text: bytes, body: bytes) -> bool:
    """The answer is whole: the fake upstream's text, or every stamped chunk of a slow one."""
    if b"interval_ms=" in body:
        return text.count(b"|17") >= SLOW_CHUNKS  # stamps are time.time(), 17... until 2029
    return b"Hello" in text


def _scope(key: str, body: bytes) -> dict[str, Any]:
    headers = [
        (b"host", b"bench"),
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _call(app: App, key: str, body: bytes) -> None:
    """One request through `app`, read to its end; anything but a 200 with text fails."""
    ended = asyncio.Event()
    sent: list[dict[str, Any]] = []
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await ended.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            ended.set()

    await app(_scope(key, body), receive, send)
    text = b"".join(m.get("body", b"") for m in sent[1:])
    if sent[0].get("status") != 200 or not _answered(text, body):
        raise RuntimeError(f"bad answer: {sent[0].get('status')} {text[:200]!r}")


async def _cpu_per_chunk(app: App, key: str, body: bytes) -> float:
    started = time.process_time()
    await asyncio.gather(*(_call(app, key, body) for _ in range(SLOW_STREAMS)))
    return (time.process_time() - started) / (SLOW_STREAMS * SLOW_CHUNKS) * 1e6


async def _cpu_per_request(app: App, key: str, body: bytes, requests: int) -> float:
    each = max(1, requests // CONCURRENCY)

    async def client() -> None:
        for _ in range(each):
            await _call(app, key, body)

    started = time.process_time()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return (time.process_time() - started) / (each * CONCURRENCY) * 1e6


@contextlib.asynccontextmanager
async def _lifespan(app: App) -> Any:
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    ready = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            ready.set()

    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    )
    await ready.wait()
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await task


def _apps(upstream: int, workdir: Path) -> Iterator[tuple[str, App, str]]:
    from bench.floor import create_app as floor_app
    from router.app import create_app
    from router.config import load_settings
    from router.runtime import Runtime

    yield "floor", floor_app(f"http://127.0.0.1:{upstream}"), targets.UPSTREAM_KEY
    env = {**os.environ, **targets.router_env(upstream)}
    settings = load_settings(str(targets.router_config(workdir, REPO)), env)
    yield "router", create_app(Runtime(settings, env, "127.0.0.1")), targets.MASTER_KEY


async def _measure(upstream: int, workdir: Path, requests: int) -> dict[str, Any]:
    apps = list(_apps(upstream, workdir))
    best: dict[str, dict[str, float]] = {name: {} for name, _, _ in apps}
    async with contextlib.AsyncExitStack() as stack:
        for _, app, _ in apps:
            await stack.enter_async_context(_lifespan(app))
        for mode in MODES:
            body = _body(mode)
            for _, app, key in apps:  # warm-up: connections, caches, learned stats
                await asyncio.gather(*(_call(app, key, body) for _ in range(CONCURRENCY)))
                for _ in range(200 if mode != "slow" else 0):
                    await _call(app, key, body)
            for _ in range(ROUNDS):
                for name, app, key in apps:
                    if mode == "slow":
                        cpu = await _cpu_per_chunk(app, key, body)
                    else:
                        cpu = await _cpu_per_request(app, key, body, requests)
                    best[name][mode] = min(best[name].get(mode, cpu), cpu)
    ratios = {mode: best["router"][mode] / best["floor"][mode] for mode in MODES}
    return {"cpu_us_per_request": best, "ratio_to_floor": ratios, "requests": requests}


def run_app_layer(requests: int = 4000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, Processes(Path(tmp)) as procs:
        port = free_port()
        argv = [sys.executable, "-m", "bench.upstream", "--port", str(port)]
        procs.start("upstream", argv).wait_http(port, "/stats", 10)
        # the request log goes to a file, as the socket cells' gateway's does
        with open(Path(tmp) / "router.log", "w") as log, contextlib.redirect_stdout(log):
            return uvloop.run(_measure(port, Path(tmp), requests))


def print_app_layer(result: dict[str, Any]) -> None:
    cpu = result["cpu_us_per_request"]
    print("application layer alone, CPU us per request (no server, no client sockets);")
    print(f"slow: per relayed chunk, {SLOW_STREAMS} streams of {SLOW_CHUNKS} chunks at once:")
    print(f"  {'':8} {'json':>8} {'stream':>8} {'slow':>8}")
    for name in ("floor", "router"):
        print(f"  {name:8}" + "".join(f" {cpu[name][mode]:8.1f}" for mode in MODES))
    ratio = result["ratio_to_floor"]
    print(f"  {'ratio':8}" + "".join(f" {ratio[mode]:7.2f}x" for mode in MODES))
