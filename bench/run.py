"""The orchestrator: start the processes, run every cell, collect one result document.

Layout: the fake upstream and the server under test share the first core, the load generator
(and this process, which mostly waits) take the second, as in shared/PERFORMANCE-FLOORS.md.
The scaling cells are the exception: there every process may use every core.

Order: the direct baseline, then the gateway at one worker (probe each surface, warm up, idle
RSS, every cell, peak RSS), then the scaling pair (one worker versus `--workers`), then the
peers. Every figure of a target is put beside the direct figure of the same cell.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import environment, targets
from bench.procs import (
    Proc,
    Processes,
    StartError,
    cores,
    free_port,
    machine_busy,
    memory_mb,
    pin,
)
from bench.report import NOISY
from bench.targets import Surface, Target

Result = dict[str, Any]
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Options:
    """What to run and for how long (see `python -m bench --help`)."""

    quick: bool = False
    warmup: float = 1.0
    duration: float = 5.0
    json_concurrency: tuple[int, ...] = (1, 16, 64)
    stream_concurrency: tuple[int, ...] = (1, 16)
    chunks: int = 20
    chunk_delay_ms: float = 0.0
    workers: int = 2  # the scaling cell's worker count; 1 skips it
    peers: bool = False
    startup_timeout: float = 60.0
    retries: int = 2  # a cell disturbed by other processes is measured again, this many times
    repo: Path = REPO

    @property
    def idle_wait(self) -> float:
        return 0.3 if self.quick else 2.0


class LoadGen:
    """The load generator process, one JSON command and one JSON answer per line."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc

    def ask(self, command: Result) -> Result:
        stdin, stdout = self.proc.popen.stdin, self.proc.popen.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(command).encode() + b"\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise StartError(f"the load generator exited with {self.proc.popen.poll()}")
        answer: Result = json.loads(line)
        return answer


@dataclass
class Layout:
    """Which CPUs the servers and the load side use."""

    servers: list[int]
    load: list[int]
    all: list[int]

    @classmethod
    def detect(cls) -> Layout:
        cpus = cores()
        return cls(servers=cpus[:1], load=cpus[1:2] or cpus[:1], all=cpus)


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

    def cells(
        self,
        target: Target,
        surface: Surface,
        modes: dict[str, str | None],
        pids: Callable[[], list[int]],
    ) -> Iterator[Result]:
        for mode, concurrencies in self.modes():
            for concurrency in concurrencies:
                reason = modes[mode]
                if reason is not None:
                    yield {
                        "target": target.name,
                        "surface": surface.name,
                        "mode": mode,
                        "concurrency": concurrency,
                        "workers": 1,
                        "layout": "pinned",
                        "available": False,
                        "reason": reason,
                    }
                    continue
                record = self.quiet_cell(target, surface, mode, concurrency, pids)
                _progress(record)
                yield record

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

    def measure(self, target: Target, server: Proc | None) -> None:
        """Probe, warm up and measure every surface of a target; record its memory."""

        def pids() -> list[int]:
            return server.tree() if server is not None else []

        available = {
            surface.name: {mode: self.probe(target, surface, mode) for mode in ("json", "stream")}
            for surface in target.surfaces
        }
        self.result["targets"][target.name]["surfaces"] = available
        self.warm_up(target, available)
        memory = self.result["targets"][target.name]
        if server is not None:
            time.sleep(self.options.idle_wait)
            memory["idle_rss_mb"] = memory_mb(pids())
        peak = memory.get("idle_rss_mb") or 0.0
        for surface in target.surfaces:
            for record in self.cells(target, surface, available[surface.name], pids):
                self.result["cells"].append(record)
                peak = max(peak, memory_mb(pids()) if server is not None else 0.0)
        if server is not None:
            memory["peak_rss_mb"] = max(peak, memory_mb(pids(), "VmHWM"))

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

    def run_direct(self) -> None:
        target = Target("direct", self.upstream_port, targets.UPSTREAM_KEY, (targets.DIRECT,))
        self.result["targets"]["direct"] = {"label": "direct to the fake upstream"}
        self.measure(target, None)
        assert self.upstream is not None
        self.result["targets"]["direct"]["upstream_rss_mb"] = memory_mb(self.upstream.tree())

    def start_router(self, workdir: Path, workers: int, cpus: list[int]) -> tuple[Proc, int]:
        port = free_port()
        config = targets.router_config(workdir, self.options.repo)
        argv = targets.router_argv(config, port, workers)
        proc = self.procs.start(
            f"router-w{workers}", argv, cpus, targets.router_env(self.upstream_port)
        )
        proc.wait_http(port, "/healthz", self.options.startup_timeout)
        return proc, port

    def run_router(self) -> None:
        info: Result = {"label": "this gateway", "workers": 1}
        self.result["targets"]["router"] = info
        try:
            proc, port = self.start_router(self.procs.workdir, 1, self.layout.servers)
        except StartError as exc:
            self.unavailable("router", (targets.IRONLABS, targets.OPENAI), str(exc))
            return
        target = Target("router", port, targets.MASTER_KEY, (targets.IRONLABS, targets.OPENAI))
        self.measure(target, proc)
        if self.options.workers > 1:
            self.run_scaling(target, proc)
        self.procs.stop(proc)

    def unavailable(self, name: str, surfaces: tuple[Surface, ...], reason: str) -> None:
        self.result["targets"][name]["error"] = reason
        print(f"{name}: could not start:\n{reason}", flush=True)
        for surface in surfaces:
            for mode, concurrencies in self.modes():
                for concurrency in concurrencies:
                    self.result["cells"].append(
                        {
                            "target": name,
                            "surface": surface.name,
                            "mode": mode,
                            "concurrency": concurrency,
                            "workers": 1,
                            "layout": "pinned",
                            "available": False,
                            "reason": f"{name} did not start",
                        }
                    )

    # -- scaling -----------------------------------------------------------------------

    def run_scaling(self, target: Target, one: Proc) -> None:
        """The same throughput cell at 1 and at N workers, every process on every core."""
        surface, concurrency = targets.IRONLABS, max(self.options.json_concurrency)
        if self.probe(target, surface, "json") is not None:
            return
        self.repin(self.layout.all, one)
        scaling: Result = {
            "workers": self.options.workers,
            "cores": len(self.layout.all),
            "surface": surface.name,
            "mode": "json",
            "concurrency": concurrency,
        }
        try:
            single = self.cell(target, surface, "json", concurrency, one.tree(), layout="shared")
            _progress(single)
            many = self.scaled_cell(surface, concurrency)
        except StartError as exc:
            scaling["error"] = str(exc)
        else:
            scaling.update(_scaling_figures(single, many, self.options.workers))
            self.result["cells"] += [single, many]
        finally:
            self.repin(self.layout.servers, None)
        self.result["scaling"] = scaling

    def scaled_cell(self, surface: Surface, concurrency: int) -> Result:
        workers = self.options.workers
        proc, port = self.start_router(self.procs.workdir, workers, self.layout.all)
        try:
            target = Target("router", port, targets.MASTER_KEY, (surface,))
            self.cell(target, surface, "json", 8, [], warmup=0.0, duration=0.5)
            time.sleep(self.options.idle_wait)
            idle = memory_mb(proc.tree())
            supervisor = memory_mb([proc.pid]) if len(proc.tree()) > 1 else 0.0
            record = self.cell(
                target, surface, "json", concurrency, proc.tree(), workers=workers, layout="shared"
            )
            record["idle_rss_mb"] = idle
            record["idle_rss_mb_supervisor"] = supervisor
            record["processes"] = len(proc.tree())
            _progress(record)
            return record
        finally:
            self.procs.stop(proc)

    def repin(self, servers: list[int], extra: Proc | None) -> None:
        """Move the upstream (and `extra`) to `servers`, the load side to the rest."""
        assert self.upstream is not None and self.loadgen is not None
        for proc in (self.upstream, extra):
            if proc is not None:
                pin(proc.tree(), servers)
        load = self.layout.all if servers == self.layout.all else self.layout.load
        pin(self.loadgen.proc.tree(), load)
        os.sched_setaffinity(0, load)

    # -- peers -------------------------------------------------------------------------

    def run_litellm(self) -> None:
        from bench import peers

        self.result["targets"]["litellm"] = {
            "label": "LiteLLM proxy",
            "workers": 1,
            "version": peers.litellm_version(),
        }
        surfaces = (targets.OPENAI,)
        port = free_port()
        config = targets.litellm_config(self.procs.workdir, self.upstream_port)
        try:
            proc = self.procs.start(
                "litellm",
                targets.litellm_argv(config, port),
                self.layout.servers,
                targets.litellm_env(),
            )
            proc.wait_http(port, "/health/liveliness", max(self.options.startup_timeout, 180))
        except (StartError, OSError) as exc:
            self.unavailable("litellm", surfaces, str(exc))
            return
        self.measure(Target("litellm", port, targets.LITELLM_MASTER_KEY, surfaces), proc)
        self.procs.stop(proc)


def noise(record: Result | None) -> float:
    return float((record or {}).get("foreign_cpu_cores") or 0.0)


def wait_quiet(limit: float, calm: float = 0.1) -> None:
    """Wait (up to `limit` seconds) for a second in which the machine used under `calm` cores;
    between cells the bench's own processes are idle, so what is busy is someone else."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        busy0, _, _ = machine_busy()
        time.sleep(1.0)
        busy1, _, _ = machine_busy()
        if busy1 - busy0 < calm:
            return


def _scaling_figures(single: Result, many: Result, workers: int) -> Result:
    rps1, rpsn = single.get("rps"), many.get("rps")
    ratio = rpsn / rps1 if rps1 and rpsn else None
    return {
        "rps_1": rps1,
        "rps_n": rpsn,
        "ratio": ratio,
        "efficiency": ratio / workers if ratio else None,
        "cpu_ms_per_req_1": single.get("cpu_ms_per_req"),
        "cpu_ms_per_req_n": many.get("cpu_ms_per_req"),
        "idle_rss_mb_n": many.get("idle_rss_mb"),
        # The tree less the supervisor process, shared by the workers.
        "idle_rss_mb_per_worker_n": (
            (many["idle_rss_mb"] - many.get("idle_rss_mb_supervisor", 0.0)) / workers
            if many.get("idle_rss_mb")
            else None
        ),
    }


def _bench_env() -> dict[str, str]:
    """The environment of the bench's own processes: `bench` importable from the repo root."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _progress(record: Result) -> None:
    label = f"{record['target']}/{record['surface']} {record['mode']} c={record['concurrency']}"
    if record.get("layout") == "shared":
        label += f" workers={record['workers']} (all cores shared)"
    rps = record.get("rps")
    cpu = record.get("cpu_ms_per_req")
    detail = record.get("reason") or (
        f"{rps:,.0f} req/s" + (f", {cpu:.3f} CPU ms/req" if cpu is not None else "")
        if rps
        else "no figures"
    )
    print(f"  {label}: {detail}", flush=True)


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
    }
    os.sched_setaffinity(0, layout.load)
    try:
        with _workdir() as workdir, Processes(workdir) as procs:
            bench = Bench(options, procs, layout, result)
            bench.start_upstream()
            bench.start_loadgen()
            print("direct:", flush=True)
            bench.run_direct()
            print("router:", flush=True)
            bench.run_router()
            if options.peers:
                print("litellm:", flush=True)
                bench.run_litellm()
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
        "cpus": {"servers": layout.servers, "load": layout.load, "all": layout.all},
    }


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="router-bench-") as tmp:
        yield Path(tmp)
