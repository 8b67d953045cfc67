"""Start, pin, measure and stop the processes of a benchmark run (Linux /proc only).

Every process is started in its own session, so stopping it kills its whole process group,
gateway workers included. `Processes` is a context manager that stops all it started, also
when the run fails half-way.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cores() -> list[int]:
    """The CPUs this process may run on, in order."""
    return sorted(os.sched_getaffinity(0))


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[1])


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants (uvicorn workers, multiprocessing helpers)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = _ppid(int(entry))
            if ppid is not None:
                parents.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, ()))
    return tree


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of the given processes (live ones), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLOCK_TICKS


def machine_busy() -> tuple[float, float, float]:
    """CPU seconds the whole machine (every CPU) spent in processes, in interrupts (loopback
    traffic is mostly softirq time, charged to no process), and stolen by the hypervisor,
    from the first line of /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system) / CLOCK_TICKS, (irq + softirq) / CLOCK_TICKS, steal / CLOCK_TICKS


def memory_mb(pids: Sequence[int], key: str = "VmRSS") -> float:
    """Sum of a /proc/<pid>/status memory figure (VmRSS, VmHWM) over processes, in MB."""
    total_kb = 0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith(key + ":"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def pin(pids: Sequence[int], cpus: Sequence[int]) -> None:
    """Move running processes (all their threads) onto the given CPUs."""
    for pid in pids:
        for tid in _threads(pid):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, cpus)


def _threads(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def http_get_status(port: int, path: str, timeout: float = 2.0) -> int | None:
    """The status of `GET path` on 127.0.0.1:port, or None when nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


class StartError(RuntimeError):
    """A process exited or never became ready; the message carries its log tail."""


@dataclass
class Proc:
    """One started process: its Popen, the CPUs it was pinned to, and where it logs."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path | None
    cpus: tuple[int, ...] = ()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tree(self) -> list[int]:
        return process_tree(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def wait_http(self, port: int, path: str, timeout: float) -> None:
        """Poll `GET path` until it answers 200; raise StartError if the process dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise StartError(
                    f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}"
                )
            if http_get_status(port, path, timeout=1.0) == 200:
                return
            time.sleep(0.05)
        raise StartError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")


@dataclass
class Processes:
    """Starts processes pinned to CPUs, and stops every one of them on exit."""

    workdir: Path
    started: list[Proc] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        cpus: Sequence[int] = (),
        env: dict[str, str] | None = None,
        pipes: bool = False,
    ) -> Proc:
        """Start `argv` in its own session; affinity is set before exec so children inherit it."""
        log = None if pipes else self.workdir / f"{name}.log"
        # The orchestrator runs no threads, so a preexec_fn is safe here.
        preexec = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        with contextlib.ExitStack() as stack:
            out = subprocess.PIPE if pipes else stack.enter_context(open(log or os.devnull, "wb"))
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if not pipes else None,
                env=env,
                start_new_session=True,
                preexec_fn=preexec,
            )
        proc = Proc(name, popen, log, tuple(cpus))
        self.started.append(proc)
        return proc

    def stop(self, proc: Proc, grace: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after `grace` seconds."""
        if proc in self.started:
            self.started.remove(proc)
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=grace)
        _signal_group(proc.pid, signal.SIGKILL)  # workers left behind share the group
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=grace)
        for stream in (proc.popen.stdin, proc.popen.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for proc in reversed(list(self.started)):
            self.stop(proc, grace=2.0)

    def __iter__(self) -> Iterator[Proc]:
        return iter(self.started)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def raise_nofile(wanted: int = 65536) -> int:
    """Raise this process's open-file limit (children inherit it): tens of thousands of
    streams need two descriptors each in a gateway. Root may raise the hard limit too."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
