"""The soak: mixed traffic through one gateway worker for minutes, sampling what could leak.

Each round sends, one kind after the other: plain JSON on the Iron Labs and OpenAI surfaces,
streams on both, failovers (the first model's provider answers 503, the gateway falls back),
cut streams (the upstream hangs up half-way), client disconnects (clients hang up at the first
byte of slow streams), and 300 KB request bodies. After each round the gateway's RSS, open file
descriptors, threads and asyncio tasks (counted from inside its loop by bench/counted.py) and
the streams the upstream still holds open are sampled. Growth is judged after warm-up (the
first 10% of the rounds, at least one): RSS within 5% (the median of the last quarter of the
rounds against that of the first), no growth in descriptors or tasks.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench import environment, targets
from bench.concurrency import upstream_stats
from bench.procs import Proc, Processes, free_port, memory_mb
from bench.run import Bench
from bench.setup import Layout, Options, _bench_env, _workdir
from bench.targets import Surface, Target

Result = dict[str, Any]
RSS_GROWTH = 0.05
FAILOVER_MODELS = ["groq/llama-3.1-8b-instant", targets.MODEL]


def _surface(name: str, path: str, body: dict[str, Any]) -> Surface:
    text = json.dumps(body, separators=(",", ":"))
    streamed = json.dumps({**body, "stream": True}, separators=(",", ":"))
    return Surface(name, path, text, streamed)


def _ironlabs(name: str, text: str, models: list[str]) -> Surface:
    message = {"role": "user", "content": [{"type": "text", "text": text}]}
    return _surface(name, "/api/v1/completions", {"messages": [message], "models": models})


FAILOVER = _ironlabs("failover", "hello", FAILOVER_MODELS)
# 300 KB: under the model's context window by the gateway's estimate (~4 bytes a token)
LARGE = _ironlabs("large", "hello " + "x" * 300_000, [targets.MODEL])
CUT = _ironlabs("cut", "interval_ms=2 chunks=20 cut", [targets.MODEL])
SLOW = _ironlabs("slow", "interval_ms=50 chunks=100", [targets.MODEL])
# (surface, mode, concurrency, share of the round's time)
MIX = (
    (targets.IRONLABS, "json", 8, 1.0),
    (targets.OPENAI, "json", 8, 1.0),
    (targets.IRONLABS, "stream", 8, 1.0),
    (targets.OPENAI, "stream", 8, 1.0),
    (FAILOVER, "json", 4, 0.5),
    (CUT, "stream", 4, 0.5),
    (LARGE, "json", 2, 0.5),
)


def start_gateway(bench: Bench, workdir: Path) -> tuple[Proc, int]:
    port = free_port()
    config = targets.router_config(workdir, bench.options.repo)
    argv = targets.router_argv(config, port, 1)
    argv[1:3] = ["-m", "bench.counted"]
    env = {**targets.router_env(bench.upstream_port), **_bench_env()}
    env.update(
        BENCH_TASKS_FILE=str(workdir / "tasks"),
        GROQ_API_KEY=targets.UPSTREAM_KEY,
        GROQ_BASE_URL=f"http://127.0.0.1:{bench.upstream_port}/fail/v1",
    )
    proc = bench.procs.start("router-soak", argv, bench.layout.servers, env)
    proc.wait_http(port, "/healthz", bench.options.startup_timeout)
    return proc, port


def one_round(bench: Bench, target: Target, proc: Proc, seconds: float) -> Result:
    """Every kind of traffic once; the counts of what was sent and what failed."""
    counts: Result = {}
    for surface, mode, concurrency, share in MIX:
        record = bench.cell(
            target, surface, mode, concurrency, proc.tree(), warmup=0.0, duration=seconds * share
        )
        key = f"{surface.name}_{mode}"
        counts[key] = {"requests": record.get("requests"), "errors": record.get("errors")}
    answer = bench.ask(
        {
            "op": "disconnects",
            "port": target.port,
            "path": SLOW.path,
            "headers": target.headers,
            "body": SLOW.stream_body,
            "streams": 50,
        }
    )
    counts["disconnects"] = answer.get("disconnects")
    return counts


def sample(proc: Proc, workdir: Path, upstream_port: int, started: float) -> Result:
    time.sleep(1.5)  # tasks of the last hang-ups wind down; the task count is written each second
    tree = proc.tree()
    tasks = workdir / "tasks"
    return {
        "t_s": time.monotonic() - started,
        "rss_mb": memory_mb(tree),
        "fds": sum(_count(f"/proc/{pid}/fd") for pid in tree),
        "threads": sum(_count(f"/proc/{pid}/task") for pid in tree),
        "tasks": int(tasks.read_text()) if tasks.exists() else None,
        "upstream_open_streams": upstream_stats(upstream_port).get("open_streams"),
    }


def _count(path: str) -> int:
    try:
        return len(os.listdir(path))
    except OSError:
        return 0


def soak(options: Options, minutes: float, interval: float) -> Result:
    """Run the soak and return its document (samples, growth after warm-up)."""
    result: Result = {
        "schema": 2,
        "kind": "soak",
        "minutes": minutes,
        "round_s": interval,
        "mix": [[s.name, m, c, share] for s, m, c, share in MIX] + [["slow", "disconnect", 50, 0]],
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": environment.machine(),
        "versions": environment.versions(options.repo),
        "samples": [],
        "rounds": [],
    }
    with _workdir() as workdir, Processes(workdir) as procs:
        bench = Bench(options, procs, Layout.detect())
        bench.start_upstream()
        bench.start_loadgen()
        proc, port = start_gateway(bench, workdir)
        target = Target("router", port, targets.MASTER_KEY, (targets.IRONLABS,))
        for surface, mode in ((targets.IRONLABS, "stream"), (FAILOVER, "json"), (LARGE, "json")):
            reason = bench.probe(target, surface, mode)
            if reason is not None:
                result["error"] = f"{surface.name} {mode}: {reason}"
                return result
        started = time.monotonic()
        result["samples"].append(
            {**sample(proc, workdir, bench.upstream_port, started), "idle": True}
        )
        end = started + minutes * 60
        while time.monotonic() < end:
            result["rounds"].append(one_round(bench, target, proc, interval / 4))
            result["samples"].append(sample(proc, workdir, bench.upstream_port, started))
            s = result["samples"][-1]
            print(
                f"  t={s['t_s']:.0f}s RSS {s['rss_mb']:.1f} MB, {s['fds']} fds,"
                f" {s['tasks']} tasks, {s['upstream_open_streams']} upstream streams open",
                flush=True,
            )
    result.update(summary(result["samples"]))
    return result


def summary(samples: list[Result]) -> Result:
    """Growth after warm-up: RSS as a fraction, descriptors and tasks as counts.

    RSS is compared as the median of the first quarter of the rounds after warm-up against
    the median of the last quarter: a single sample may catch 300 KB bodies in flight (the
    maximum is reported apart), and one sample against another would judge that noise."""
    rounds = [s for s in samples if not s.get("idle")]
    if not rounds:
        return {"first_mb": None, "last_mb": None, "max_mb": None, "growth": None}
    warm = rounds[max(1, len(rounds) // 10) - 1 :]
    rss = [s["rss_mb"] for s in warm]
    quarter = max(1, len(rss) // 4)
    first, last = statistics.median(rss[:quarter]), statistics.median(rss[-quarter:])

    def grew(key: str) -> int | None:
        values = [s[key] for s in warm if s.get(key) is not None]
        return max(values) - values[0] if values else None

    return {
        "idle_mb": samples[0]["rss_mb"],
        "first_mb": first,
        "last_mb": last,
        "max_mb": max(rss),
        "growth": (last - first) / first if first else None,
        "fd_growth": grew("fds"),
        "task_growth": grew("tasks"),
        "thread_growth": grew("threads"),
        "upstream_open_last": rounds[-1].get("upstream_open_streams"),
    }
