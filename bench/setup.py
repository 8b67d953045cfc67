"""The pieces a run is made of: its options, the load generator's pipe, the CPU layout, and
small helpers the orchestrator and the other commands (soak, profile) share."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import Proc, StartError, cores, machine_busy

Result = dict[str, Any]
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Options:
    """What to run and for how long (see `python -m bench --help`)."""

    quick: bool = False
    warmup: float = 1.0
    duration: float = 5.0
    json_concurrency: tuple[int, ...] = (1, 16, 64)
    stream_concurrency: tuple[int, ...] = (1, 16, 64)
    chunks: int = 20
    chunk_delay_ms: float = 0.0
    workers: int = 2  # the scaling cell's worker count; 1 skips it
    # The concurrent-streams steps: (streams, seconds between chunks, chunks per stream).
    stream_steps: tuple[tuple[int, float, int], ...] = ((100, 0.05, 60), (1000, 0.05, 60))
    peers: bool = False
    startup_timeout: float = 60.0
    retries: int = 2  # a cell disturbed by other processes is measured again, this many times
    repo: Path = REPO
    # Another checkout's `src` (e.g. `git worktree add /tmp/base main`): its gateway measured
    # interleaved beside this one as target `baseline`, for before/after ratios in one run.
    baseline: Path | None = None

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


def _pids(server: Proc | None) -> Callable[[], list[int]]:
    def pids() -> list[int]:
        return server.tree() if server is not None else []

    return pids


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


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="router-bench-") as tmp:
        yield Path(tmp)
