"""Where the gateway's CPU goes per request: py-spy under the benchmark's load.

`python -m bench profile` starts the same processes as a run (one worker, pinned), loads each
available surface and mode at concurrency 16 while py-spy samples the gateway, and prints the
self time by package, the hottest functions, and the gateway's own functions with their
inclusive time, each also as CPU microseconds per request. The collapsed stacks are kept in
`<out>/profile-<surface>-<mode>.txt` (speedscope and flamegraph.pl read them as they are).

py-spy is not a dependency: install it into the same environment (`pip install py-spy`).
Code in C (uvloop's loop, httptools' parser, socket calls) is counted in the Python frame that
called it; the outermost `run` frame of uvloop is the event loop itself.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import targets
from bench.procs import Proc, Processes
from bench.run import Bench
from bench.setup import Layout, Options, _workdir
from bench.targets import Surface, Target

Result = dict[str, Any]
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::\d+)?\)$")
_STDLIB = re.compile(r"/lib/python3\.\d+/(?P<module>[^/]+)")


def find_py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def package(frame: str) -> str:
    """The package a py-spy frame belongs to: `router`, a distribution, or a stdlib module."""
    match = _FRAME.match(frame)
    path = match.group("file") if match else frame
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/router/" in path or path.startswith("router/"):
        return "router"
    stdlib = _STDLIB.search(path)
    if stdlib:
        return stdlib.group("module").removesuffix(".py")
    first = path.split("/", 1)[0]
    return first.removesuffix(".py") or "?"


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match.group("file")
    if "site-packages/" in file:
        file = file.split("site-packages/", 1)[1]
    elif "/src/" in file:
        file = file.split("/src/", 1)[1]
    return f"{match.group('function')} ({file})"


def summarize(raw: Path, top: int = 12) -> Result:
    """Self time per package and per function, and inclusive time of the gateway's functions."""
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    router_inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        leaf = frames[-1]
        total += count
        by_package[package(leaf)] += count
        by_function[_short(leaf)] += count
        for frame in set(frames):
            # The CLI's frames root every loop-level sample: they say nothing.
            if package(frame) == "router" and "__main__" not in frame:
                router_inclusive[_short(frame)] += count
    share = 1 / total if total else 0.0
    return {
        "samples": total,
        "self_by_package": {k: v * share for k, v in by_package.most_common()},
        "self_by_function": {k: v * share for k, v in by_function.most_common(top)},
        "router_inclusive": {k: v * share for k, v in router_inclusive.most_common(top)},
    }


def profile(options: Options, seconds: float, out: Path, py_spy: str) -> Result:
    """Profile the floor and every available gateway surface, each mode; return the summaries
    by `surface/mode`, and `over_floor/<surface>/<mode>`: microseconds per request by package,
    gateway less floor (what the gateway adds, where)."""
    found: Result = {}
    out.mkdir(parents=True, exist_ok=True)
    with _workdir() as workdir, Processes(workdir) as procs:
        bench = Bench(options, procs, Layout.detect(), {"targets": {}, "cells": []})
        bench.start_upstream()
        bench.start_loadgen()
        proc, port = bench.start_router(workdir, 1, bench.layout.servers)
        floor = bench.start_floor()
        runs = [(Target("router", port, targets.MASTER_KEY, targets.GATEWAY_SURFACES), proc)]
        if floor is not None:
            runs.insert(0, floor)
        for target, server in runs:
            for surface in target.surfaces:
                for mode in ("json", "stream"):
                    found[f"{surface.name}/{mode}"] = _profile_one(
                        bench, (target, server), (surface, mode), (seconds, out, py_spy)
                    )
    found.update(over_floor(found))
    return found


def _profile_one(
    bench: Bench,
    entry: tuple[Target, Proc],
    cell: tuple[Surface, str],
    how: tuple[float, Path, str],
) -> Result:
    (target, server), (surface, mode), (seconds, out, py_spy) = entry, cell, how
    reason = bench.probe(target, surface, mode)
    if reason is not None:
        return {"error": reason}
    bench.cell(target, surface, mode, 16, [], warmup=0.0, duration=1.0)
    raw = out / f"profile-{surface.name}-{mode}.txt"
    argv = [py_spy, "record", "--pid", str(server.pid), "--rate", "250", "--format", "raw"]
    argv += ["--output", str(raw), "--nonblocking", "--duration", str(max(1, round(seconds)))]
    spy = bench.procs.start(f"py-spy-{surface.name}-{mode}", argv, bench.layout.load)
    time.sleep(0.5)  # attaching
    record = bench.cell(target, surface, mode, 16, server.tree(), warmup=0.0, duration=seconds)
    with contextlib.suppress(subprocess.TimeoutExpired):
        spy.popen.wait(timeout=seconds + 60)
    bench.procs.stop(spy)
    summary: Result = summarize(raw) if raw.exists() else {"error": spy.log_tail()}
    summary["cpu_ms_per_req"] = record.get("cpu_ms_per_req")
    summary["rps"] = record.get("rps")
    return summary


def over_floor(found: Result) -> Result:
    """Per gateway surface and mode: CPU us per request by package, less the floor's."""
    diffs: Result = {}
    for name, summary in found.items():
        surface, mode = name.split("/")
        floor = found.get(f"floor/{mode}")
        if surface == "floor" or not floor or "error" in summary or "error" in floor:
            continue
        mine = _us_by_package(summary)
        base = _us_by_package(floor)
        packages = set(mine) | set(base)
        delta = {p: mine.get(p, 0.0) - base.get(p, 0.0) for p in packages}
        diffs[f"over_floor/{surface}/{mode}"] = {
            "total_us": sum(mine.values()) - sum(base.values()),
            "by_package_us": dict(sorted(delta.items(), key=lambda kv: -kv[1])),
        }
    return diffs


def _us_by_package(summary: Result) -> dict[str, float]:
    cpu_us = (summary.get("cpu_ms_per_req") or 0.0) * 1000
    return {k: v * cpu_us for k, v in summary["self_by_package"].items()}


def render(found: Result) -> str:
    lines = []
    for name, summary in found.items():
        if name.startswith("over_floor/"):
            top = list(summary["by_package_us"].items())[:8]
            lines.append(f"{name}: {summary['total_us']:+.0f} us/request over the floor")
            lines += [f"    {us:+7.1f} us  {package}" for package, us in top]
            lines.append("")
            continue
        if "error" in summary:
            lines.append(f"{name}: {summary['error'][:200]}")
            continue
        cpu_us = (summary.get("cpu_ms_per_req") or 0.0) * 1000
        lines.append(
            f"{name} c=16: {summary['samples']} samples, {cpu_us:.0f} CPU us/request while profiled"
        )
        for title, key in (
            ("self time by package", "self_by_package"),
            ("hottest functions (self)", "self_by_function"),
            ("the gateway's functions (inclusive)", "router_inclusive"),
        ):
            lines.append(f"  {title}:")
            for label, share in list(summary[key].items())[:12]:
                lines.append(f"    {share * 100:5.1f}%  {share * cpu_us:6.1f} us  {label}")
        lines.append("")
    return "\n".join(lines)
