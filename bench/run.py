"""The orchestrator: start the processes, run every cell, collect one result document.

Layout: the fake upstream and the server under test share the first core, the load generator
(and this process, which mostly waits) take the second, as in shared/PERFORMANCE-FLOORS.md.
The scaling cells are the exception: there every process may use every core.

Order: direct, the stack floor (bench/floor.py) and the gateway at one worker are started
together, probed, warmed up and their idle RSS read; then every mode and concurrency is
measured on each of them in turn (interleaved, so a ratio compares figures taken seconds
apart); then the concurrent-streams steps (bench/concurrency.py), the scaling pair
(bench/scaling.py) and the peers. Every gateway figure is put beside the direct figure and
the floor figure of the same cell.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import environment, startup, targets
from bench.procs import (
    Proc,
    Processes,
    StartError,
    free_port,
    memory_mb,
    pin,
    raise_nofile,
)
from bench.report import NOISY
from bench.setup import (
    Layout,
    LoadGen,
    Options,
    Result,
    _bench_env,
    _pids,
    _progress,
    _workdir,
    noise,
    wait_quiet,
)
from bench.targets import Surface, Target


@dataclass
class Bench:
    """One run: its options, its processes and the result document it fills."""

    options: Options
    procs: Processes
    layout: Layout
    result: Result = field(default_factory=dict)
    upstream: Proc | None = None
    upstream_port: int = 0
    loadgen: LoadGen | None = None

    # -- processes ---------------------------------------------------------------------

    def start_upstream(self) -> None:
        self.upstream_port = free_port()
        argv = [
            environment.python(),
            "-m",
            "bench.upstream",
            "--port",
            str(self.upstream_port),
            "--chunks",
            str(self.options.chunks),
            "--chunk-delay-ms",
            str(self.options.chunk_delay_ms),
        ]
        self.upstream = self.procs.start("upstream", argv, self.layout.servers, _bench_env())
        self.upstream.wait_http(self.upstream_port, "/healthz", 20)

    def start_loadgen(self) -> None:
        argv = [environment.python(), "-m", "bench.loadgen"]
        proc = self.procs.start("loadgen", argv, self.layout.load, _bench_env(), pipes=True)
        self.loadgen = LoadGen(proc)

    def upstream_requests(self) -> int | None:
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=5)
        try:
            conn.request("GET", "/stats")
            count: int = json.loads(conn.getresponse().read())["requests"]
            return count
        except (OSError, ValueError, KeyError):
            return None
        finally:
            conn.close()

    # -- cells -------------------------------------------------------------------------

    def ask(self, command: Result) -> Result:
        assert self.loadgen is not None
        return self.loadgen.ask(command)

    def request(self, target: Target, surface: Surface, mode: str) -> Result:
        return {
            "port": target.port,
            "path": surface.path,
            "headers": target.headers,
            "body": surface.body(mode),
            "marker": targets.MARKER,
        }

    def probe(self, target: Target, surface: Surface, mode: str) -> str | None:
        """None when the surface answers this mode with text, else why it is not available."""
        answer = self.ask({"op": "probe", **self.request(target, surface, mode)})
        if answer["status"] == 200 and answer["marker_seen"]:
            return None
        if answer["status"] == 404:
            return f"not available (HTTP 404): {answer['body'][:200]}"
        status = answer["status"]
        return f"HTTP {status}: {answer['body'][:300]}" if status else answer["body"]

    def cell(
        self,
        target: Target,
        surface: Surface,
        mode: str,
        concurrency: int,
        pids: list[int],
        *,
        workers: int = 1,
        warmup: float | None = None,
        duration: float | None = None,
        layout: str = "pinned",
    ) -> Result:
        """Run one cell and return its record (the load generator's figures and labels)."""
        assert self.upstream is not None
        before = self.upstream_requests()
        command = {
            "op": "cell",
            **self.request(target, surface, mode),
            "concurrency": concurrency,
            "warmup": self.options.warmup if warmup is None else warmup,
            "duration": self.options.duration if duration is None else duration,
            "pids": pids,
            "upstream_pids": self.upstream.tree(),
        }
        answer = self.ask(command)
        after = self.upstream_requests()
        sent = answer.get("sent")
        if before is not None and after is not None and sent:
            answer["upstream_calls_per_request"] = (after - before) / sent
        return {
            "target": target.name,
            "surface": surface.name,
            "mode": mode,
            "concurrency": concurrency,
            "workers": workers,
            "layout": layout,
            "available": True,
            "reason": answer.get("failed"),
            **answer,
        }

    def one_cell(
        self,
        target: Target,
        surface: Surface,
        mode: str,
        concurrency: int,
        reason: str | None,
        pids: Callable[[], list[int]],
    ) -> Result:
        """A measured cell, or the record of why this surface cannot be measured."""
        if reason is not None:
            return _not_measured(target.name, surface, mode, concurrency, reason)
        record = self.quiet_cell(target, surface, mode, concurrency, pids)
        _progress(record)
        return record

    def quiet_cell(
        self,
        target: Target,
        surface: Surface,
        mode: str,
        concurrency: int,
        pids: Callable[[], list[int]],
    ) -> Result:
        """A cell, measured again (after waiting for calm) while other processes disturbed it;
        the least disturbed attempt is kept."""
        best: Result | None = None
        # /proc/stat counts 10 ms ticks: a few of them in a short cell are not noise.
        calm = max(NOISY, 0.03 / self.options.duration)
        for attempt in range(1 + self.options.retries):
            if attempt:
                print(f"    (other processes used {noise(best):.2f} cores: again)", flush=True)
                wait_quiet(30.0)
            record = self.cell(target, surface, mode, concurrency, pids())
            record["attempts"] = attempt + 1
            if best is None or noise(record) < noise(best):
                best = record
            if noise(best) <= calm:
                break
        assert best is not None
        return best

    def modes(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return (
            ("json", self.options.json_concurrency),
            ("stream", self.options.stream_concurrency),
        )

    # -- targets -----------------------------------------------------------------------

    def prepare(self, target: Target, server: Proc | None) -> dict[str, dict[str, str | None]]:
        """Probe every surface and mode of a target, warm it up, record its idle memory."""
        available = {
            surface.name: {mode: self.probe(target, surface, mode) for mode in ("json", "stream")}
            for surface in target.surfaces
        }
        self.result["targets"][target.name]["surfaces"] = available
        self.warm_up(target, available)
        if server is not None:
            time.sleep(self.options.idle_wait)
            self.result["targets"][target.name]["idle_rss_mb"] = memory_mb(server.tree())
        return available

    def measure(self, target: Target, server: Proc | None) -> None:
        self.measure_together([(target, server)])

    def measure_together(self, entries: list[tuple[Target, Proc | None]]) -> None:
        """Every cell of every target, interleaved: for each mode and concurrency, each target
        in turn, so that the ratios compare figures taken minutes, not a whole run, apart."""
        available = [self.prepare(target, server) for target, server in entries]
        peaks = [self.result["targets"][t.name].get("idle_rss_mb") or 0.0 for t, _ in entries]
        for mode, concurrencies in self.modes():
            for concurrency in concurrencies:
                for i, (target, server) in enumerate(entries):
                    pids = _pids(server)
                    for surface in target.surfaces:
                        reason = available[i][surface.name][mode]
                        record = self.one_cell(target, surface, mode, concurrency, reason, pids)
                        self.result["cells"].append(record)
                    if server is not None:
                        peaks[i] = max(peaks[i], memory_mb(pids()))
        for (target, server), peak in zip(entries, peaks, strict=True):
            if server is not None:
                info = self.result["targets"][target.name]
                info["peak_rss_mb"] = max(peak, memory_mb(server.tree(), "VmHWM"))

    def warm_up(self, target: Target, available: dict[str, dict[str, str | None]]) -> None:
        for surface in target.surfaces:
            for mode, reason in available[surface.name].items():
                if reason is None:
                    self.cell(
                        target,
                        surface,
                        mode,
                        4,
                        [],
                        warmup=0.0,
                        duration=0.1 if self.options.quick else 1.0,
                    )

    def start_router(
        self, workdir: Path, workers: int, cpus: list[int], src: Path | None = None
    ) -> tuple[Proc, int]:
        """The gateway; from the source tree `src` instead of the installed one when given."""
        port = free_port()
        config = targets.router_config(workdir, self.options.repo)
        argv = targets.router_argv(config, port, workers)
        env = targets.router_env(self.upstream_port)
        if src is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
        name = f"router-w{workers}" if src is None else "baseline"
        proc = self.procs.start(name, argv, cpus, env)
        proc.wait_http(port, "/healthz", self.options.startup_timeout)
        return proc, port

    def start_floor(self, raw: bool = False) -> tuple[Target, Proc] | None:
        """The stack floor (bench/floor.py), or with `raw` the raw asyncio one."""
        name, surface = ("raw", targets.RAW) if raw else ("floor", targets.FLOOR)
        self.result["targets"][name] = {
            "label": "raw asyncio + httptools forwarder"
            if raw
            else "stack floor: uvicorn + Starlette + aiohttp, StreamingResponse",
            "workers": 1,
        }
        port = free_port()
        argv = (targets.raw_floor_argv if raw else targets.floor_argv)(port, self.upstream_port)
        try:
            proc = self.procs.start(name, argv, self.layout.servers, _bench_env())
            proc.wait_http(port, "/healthz", self.options.startup_timeout)
        except StartError as exc:
            self.unavailable(name, (surface,), str(exc))
            return None
        return Target(name, port, targets.UPSTREAM_KEY, (surface,)), proc

    def start_gateway(self) -> tuple[Target, Proc] | None:
        self.result["targets"]["router"] = {"label": "this gateway", "workers": 1}
        try:
            proc, port = self.start_router(self.procs.workdir, 1, self.layout.servers)
        except StartError as exc:
            self.unavailable("router", targets.GATEWAY_SURFACES, str(exc))
            return None
        return Target("router", port, targets.MASTER_KEY, targets.GATEWAY_SURFACES), proc

    def start_baseline(self, src: Path) -> tuple[Target, Proc] | None:
        """The gateway of another checkout (`--baseline`), for before/after in one run."""
        self.result["targets"]["baseline"] = {"label": f"the gateway from {src}", "workers": 1}
        workdir = self.procs.workdir / "baseline"
        workdir.mkdir(exist_ok=True)
        try:
            proc, port = self.start_router(workdir, 1, self.layout.servers, src)
        except StartError as exc:
            self.unavailable("baseline", targets.GATEWAY_SURFACES, str(exc))
            return None
        return Target("baseline", port, targets.MASTER_KEY, targets.GATEWAY_SURFACES), proc

    def run_side_by_side(self) -> None:
        """Direct, the floor and the gateway, started together and measured interleaved;
        then the concurrent-streams steps and the scaling pair."""
        from bench import concurrency, scaling

        surfaces = (targets.DIRECT, targets.DIRECT_RESPONSES)
        direct = Target("direct", self.upstream_port, targets.UPSTREAM_KEY, surfaces)
        self.result["targets"]["direct"] = {"label": "direct to the fake upstream"}
        entries: list[tuple[Target, Proc | None]] = [(direct, None)]
        raw, floor, gateway = self.start_floor(raw=True), self.start_floor(), self.start_gateway()
        entries += [entry for entry in (raw, floor, gateway) if entry is not None]
        baseline = self.start_baseline(self.options.baseline) if self.options.baseline else None
        if baseline is not None:
            entries.append(baseline)
        self.measure_together(entries)
        if baseline is not None:
            self.procs.stop(baseline[1])
        assert self.upstream is not None
        self.result["targets"]["direct"]["upstream_rss_mb"] = memory_mb(self.upstream.tree())
        # The scaling pair first: the largest steps may leave the gateway slower for a while.
        if gateway is not None and self.options.workers > 1:
            scaling.run_scaling(self, *gateway)
        if self.options.stream_steps:
            concurrency.run_steps(self, direct, [raw, floor], gateway)
        for entry in (raw, floor, gateway):
            if entry is not None:
                self.procs.stop(entry[1])

    def unavailable(self, name: str, surfaces: tuple[Surface, ...], reason: str) -> None:
        self.result["targets"][name]["error"] = reason
        print(f"{name}: could not start:\n{reason}", flush=True)
        for surface in surfaces:
            for mode, concurrencies in self.modes():
                for concurrency in concurrencies:
                    self.result["cells"].append(
                        _not_measured(name, surface, mode, concurrency, f"{name} did not start")
                    )

    def repin(self, servers: list[int], extra: Proc | None) -> None:
        """Move the upstream (and `extra`) to `servers`, the load side to the rest."""
        assert self.upstream is not None and self.loadgen is not None
        for proc in (self.upstream, extra):
            if proc is not None:
                pin(proc.tree(), servers)
        load = self.layout.all if servers == self.layout.all else self.layout.load
        pin(self.loadgen.proc.tree(), load)
        os.sched_setaffinity(0, load)


def _not_measured(name: str, surface: Surface, mode: str, concurrency: int, reason: str) -> Result:
    """The record of a cell that could not be measured, and why."""
    return {
        "target": name,
        "surface": surface.name,
        "mode": mode,
        "concurrency": concurrency,
        "workers": 1,
        "layout": "pinned",
        "available": False,
        "reason": reason,
    }


def run(options: Options) -> Result:
    """Run the whole benchmark and return the result document (figures still unrounded)."""
    layout = Layout.detect()
    started = time.time()
    result: Result = {
        "schema": 1,
        "mode": "quick" if options.quick else "full",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": environment.machine(),
        "versions": environment.versions(options.repo),
        "settings": _settings(options, layout),
        "targets": {},
        "cells": [],
        "scaling": None,
        "concurrency": [],
    }
    os.sched_setaffinity(0, layout.load)
    raise_nofile()
    try:
        with _workdir() as workdir, Processes(workdir) as procs:
            bench = Bench(options, procs, layout, result)
            bench.start_upstream()
            bench.start_loadgen()
            result["startup"] = startup.measure(bench, runs=1 if options.quick else 3)
            print("direct, floor and router, interleaved:", flush=True)
            bench.run_side_by_side()
            if options.peers:
                print("litellm:", flush=True)
                from bench import peers

                peers.run_litellm(bench)
    finally:
        os.sched_setaffinity(0, layout.all)
    result["duration_s"] = time.time() - started
    return result


def _settings(options: Options, layout: Layout) -> Result:
    return {
        "warmup_s": options.warmup,
        "duration_s": options.duration,
        "json_concurrency": list(options.json_concurrency),
        "stream_concurrency": list(options.stream_concurrency),
        "chunks": options.chunks,
        "chunk_delay_ms": options.chunk_delay_ms,
        "scaling_workers": options.workers,
        "stream_steps": [
            {"streams": n, "interval_ms": interval * 1000, "chunks": chunks}
            for n, interval, chunks in options.stream_steps
        ],
        "cpus": {"servers": layout.servers, "load": layout.load, "all": layout.all},
    }
