"""The streaming soak: stream through the gateway for minutes, sampling its RSS.

RSS should stay flat: the check compares the largest sample with the first one taken after
warm-up (within 10%). Samples are taken between load windows of a few seconds each.
"""

from __future__ import annotations

import time
from typing import Any

from bench import environment, targets
from bench.procs import Processes, memory_mb
from bench.run import Bench, Layout, Options, _progress, _workdir

Result = dict[str, Any]


def soak(
    options: Options, minutes: float, interval: float, concurrency: int, surface_name: str
) -> Result:
    """Run the soak and return its document (`samples`, first/last/max MB and growth)."""
    surface = {"ironlabs": targets.IRONLABS, "openai": targets.OPENAI}[surface_name]
    result: Result = {
        "schema": 1,
        "kind": "soak",
        "minutes": minutes,
        "interval_s": interval,
        "surface": surface.name,
        "concurrency": concurrency,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": environment.machine(),
        "versions": environment.versions(options.repo),
        "samples": [],
    }
    with _workdir() as workdir, Processes(workdir) as procs:
        bench = Bench(options, procs, Layout.detect())
        bench.start_upstream()
        bench.start_loadgen()
        proc, port = bench.start_router(workdir, 1, bench.layout.servers)
        target = targets.Target("router", port, targets.MASTER_KEY, (surface,))
        reason = bench.probe(target, surface, "stream")
        if reason is not None:
            result["error"] = reason
            return result
        started = time.monotonic()
        end = started + minutes * 60
        warmup = min(5.0, interval)
        while time.monotonic() < end:
            record = bench.cell(
                target,
                surface,
                "stream",
                concurrency,
                proc.tree(),
                warmup=warmup,
                duration=interval,
            )
            warmup = 0.0
            sample = {
                "t_s": time.monotonic() - started,
                "rss_mb": memory_mb(proc.tree()),
                "rps": record.get("rps"),
                "requests": record.get("requests"),
                "errors": record.get("errors"),
                "cpu_ms_per_req": record.get("cpu_ms_per_req"),
            }
            result["samples"].append(sample)
            _progress(record)
            print(f"    t={sample['t_s']:.0f}s RSS {sample['rss_mb']:.1f} MB", flush=True)
    result.update(summary(result["samples"]))
    return result


def summary(samples: list[Result]) -> Result:
    if not samples:
        return {"first_mb": None, "last_mb": None, "max_mb": None, "growth": None}
    rss = [s["rss_mb"] for s in samples]
    return {
        "first_mb": rss[0],
        "last_mb": rss[-1],
        "max_mb": max(rss),
        "growth": (max(rss) - rss[0]) / rss[0] if rss[0] else None,
        "requests": sum(s["requests"] or 0 for s in samples),
        "errors": sum(s["errors"] or 0 for s in samples),
    }
