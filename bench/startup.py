"""Start-up time: from spawning the gateway to its first answered request.

`python -m router serve --workers 1` is spawned with the bench's scratch `routing.toml` (every
provider in the repository's `providers/`, the full catalog; a fresh SQLite database each
time) and the fake upstream behind OpenAI, pinned like the gateway under test. A tight loop
(a new loopback connection every 5 ms, `connection: close`) sends a real chat request
(`openai/gpt-4o-mini`, non-streamed) until one is answered 200 with the upstream's text, and
`GET /readyz` until it answers 200 (polled right after each chat try). Both are timed from
just before the spawn; the gateway is then stopped and the next run starts from nothing.
The issue's target: the first answered request under one second.
"""

from __future__ import annotations

import socket
import statistics
import time
from typing import TYPE_CHECKING, Any

from bench import targets
from bench.loadgen import encode_request
from bench.procs import free_port

if TYPE_CHECKING:
    from bench.run import Bench

Result = dict[str, Any]
LIMIT_S = 1.0
POLL_S = 0.005
READYZ = b"GET /readyz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"


def _exchange(port: int, request: bytes, timeout: float) -> bytes:
    """Send one request on a new connection and read the answer to its end (b"" when the
    server is not listening yet or hung up)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(request)
            pieces = []
            while piece := sock.recv(65536):
                pieces.append(piece)
    except OSError:
        return b""
    return b"".join(pieces)


def _ok(answer: bytes, marker: bytes | None = None) -> bool:
    status = answer.split(b"\r\n", 1)[0].split(b" ")
    good = len(status) > 1 and status[1] == b"200"
    return good and (marker is None or marker in answer)


def _chat_request(port: int) -> bytes:
    headers = {"authorization": f"Bearer {targets.MASTER_KEY}", "connection": "close"}
    body = targets.OPENAI.json_body.encode()
    return encode_request(port, targets.OPENAI.path, headers, body)


def once(bench: Bench, index: int) -> Result:
    """One spawn: seconds to the first answered chat request and to /readyz 200."""
    workdir = bench.procs.workdir / f"startup-{index}"
    workdir.mkdir(exist_ok=True)
    config = targets.router_config(workdir, bench.options.repo)
    port = free_port()
    chat, marker = _chat_request(port), targets.MARKER.encode()
    argv = targets.router_argv(config, port, 1)
    env = targets.router_env(bench.upstream_port)
    found: Result = {"first_answer_s": None, "readyz_s": None}
    started = time.perf_counter()
    proc = bench.procs.start(f"startup-{index}", argv, bench.layout.servers, env)
    deadline = started + bench.options.startup_timeout
    try:
        while found["first_answer_s"] is None or found["readyz_s"] is None:
            if time.perf_counter() > deadline or proc.popen.poll() is not None:
                found["error"] = f"no answer (exit {proc.popen.poll()}):\n{proc.log_tail()}"
                break
            if found["first_answer_s"] is None and _ok(_exchange(port, chat, 10.0), marker):
                found["first_answer_s"] = time.perf_counter() - started
            if found["readyz_s"] is None and _ok(_exchange(port, READYZ, 2.0)):
                found["readyz_s"] = time.perf_counter() - started
            time.sleep(POLL_S)
    finally:
        bench.procs.stop(proc)
    return found


def _summary(values: list[float | None]) -> Result | None:
    seen = [v for v in values if v is not None]
    if not seen:
        return None
    return {"min": min(seen), "median": statistics.median(seen), "max": max(seen)}


def measure(bench: Bench, runs: int) -> Result:
    """`runs` spawns, one after the other; min/median/max of each figure, and every run."""
    records = [once(bench, i) for i in range(runs)]
    providers = sorted(p.stem for p in (bench.options.repo / "providers").glob("*.toml"))
    result: Result = {
        "runs": records,
        "first_answer_s": _summary([r["first_answer_s"] for r in records]),
        "readyz_s": _summary([r["readyz_s"] for r in records]),
        "limit_s": LIMIT_S,
        "workers": 1,
        "providers": providers,
    }
    print(text(result), flush=True)
    return result


def _fmt(summary: Result | None) -> str:
    if summary is None:
        return "-"
    return f"min {summary['min']:.3f} s, median {summary['median']:.3f} s"


def text(result: Result) -> str:
    runs = len(result["runs"])
    return (
        f"start-up ({runs} spawns of `router serve --workers 1`, {len(result['providers'])}"
        f" providers): first answered chat request {_fmt(result['first_answer_s'])};"
        f" /readyz 200 {_fmt(result['readyz_s'])}"
    )


def checks(result: Result) -> list[Result]:
    """The issue's target: the median spawn answers its first request within LIMIT_S."""
    startup = result.get("startup")
    if not startup:
        return []
    value = (startup.get("first_answer_s") or {}).get("median")
    status = "n/a" if value is None else ("PASS" if value <= LIMIT_S else "MISS")
    return [
        {
            "target": "router",
            "surface": "",
            "check": "startup_first_answer",
            "label": "start-up to the first answered request, median",
            "unit": "s",
            "limit": LIMIT_S,
            "value": value,
            "status": status,
        }
    ]
