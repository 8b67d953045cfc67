"""The parent of `router serve --workers N`: starts the workers on one shared socket, replaces
a worker that dies while serving, and drives the drain of `router.serving` across all of them.

It holds its own copy of the listening socket, so it closes it too at the end of the grace
period: only then does the kernel refuse new connections.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.context import SpawnContext, SpawnProcess
from types import FrameType

from router.config import Settings, Shutdown, load_settings
from router.serving import DRAIN, FORCE, STARTUP_FAILURE, Spec, bind, run_worker, worker

log = logging.getLogger("router")


class Supervisor:
    """Starts, watches and drains the workers; `run` returns the exit status."""

    def __init__(
        self, context: SpawnContext, spec: Spec, sock: socket.socket, workers: int, policy: Shutdown
    ) -> None:
        self.context = context
        self.spec = spec
        self.sock: socket.socket | None = sock
        self.count = workers
        self.policy = policy
        self.workers: list[SpawnProcess] = []
        self.signalled_at: float | None = None
        self.forced = False
        self.failed = False

    def _start(self) -> SpawnProcess:
        process = self.context.Process(target=worker, args=(self.spec, self.sock), daemon=False)
        process.start()
        return process

    def _signal(self, sig: int, frame: FrameType | None) -> None:
        """First SIGTERM/SIGINT: drain; any later one: stop now. Forwarded to every worker."""
        if self.signalled_at is None:
            self.signalled_at = time.monotonic()
            self._forward(DRAIN)
        else:
            self.forced = True
            self._forward(FORCE)

    def _forward(self, sig: int) -> None:
        for process in self.workers:
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, sig)

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._signal)
        self.workers = [self._start() for _ in range(self.count)]
        while any(p.exitcode is None for p in self.workers):
            time.sleep(0.05)
            self._tick(time.monotonic())
        if self.sock is not None:
            self.sock.close()
        codes = [p.exitcode for p in self.workers]
        return 0 if all(code == 0 for code in codes) and not (self.forced or self.failed) else 1

    def _tick(self, now: float) -> None:
        if self.signalled_at is None:
            self._replace_dead()
        elif self.sock is not None and now >= self.signalled_at + self.policy.grace_period:
            self.sock.close()  # with the workers' copies closed too, connections are refused
            self.sock = None

    def _replace_dead(self) -> None:
        for index, process in enumerate(self.workers):
            if process.exitcode is None:
                continue
            if process.exitcode == STARTUP_FAILURE:
                log.error("a worker could not start: stopping")
                self.failed = True
                self._signal(signal.SIGTERM, None)
                self._signal(signal.SIGTERM, None)  # nothing to drain: stop the others now
                return
            log.warning("worker %s exited with %s: replacing it", process.pid, process.exitcode)
            if "PROMETHEUS_MULTIPROC_DIR" in os.environ and process.pid is not None:
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(process.pid)  # type: ignore[no-untyped-call]
            self.workers[index] = self._start()


def serve(
    host: str, port: int, workers: int, log_level: str, settings: Settings | None = None
) -> int:
    """`router serve`: bind, start `workers` processes, drain them on SIGTERM. The exit
    status: 0 after a drain, 1 if forced or a worker could not start. `settings`, when the
    caller has loaded them, serve a single worker in this process without a second load."""
    sock = bind(host, port)
    spec = Spec(host, log_level)
    if workers <= 1:
        return run_worker(spec, sock, settings)
    env = dict(os.environ)
    policy = (settings or load_settings(env.get("ROUTER_CONFIG", "routing.toml"), env)).shutdown
    context = multiprocessing.get_context("spawn")
    return Supervisor(context, spec, sock, workers, policy).run()
