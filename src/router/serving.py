"""Serving: uvicorn workers that drain on SIGTERM instead of cutting answers.

After the first SIGTERM or SIGINT (the supervisor forwards it to each worker as SIGUSR1, so a
signal sent to the whole process group is not counted twice):

    0               /readyz answers 503; requests are still served as usual
    grace_period    the listening socket is closed in every worker and in the supervisor:
                    new connections are refused; idle keep-alive connections are closed
    ...             requests and streams in flight run to their end
    drain_timeout   streams still open end with their surface's error event; requests still
                    running are cancelled; the lifespan flushes the stores; exit 0

A second SIGTERM or SIGINT (forwarded as SIGUSR2) stops at once, with exit status 1.
uvicorn's own shutdown closes the socket at the first signal and cancels streams after
`timeout_graceful_shutdown`; `DrainingServer` replaces that part and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Generator
from types import FrameType

import msgspec
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from router.config import Settings, Shutdown, load_settings
from router.lifecycle import Lifecycle

DRAIN, FORCE = signal.SIGUSR1, signal.SIGUSR2
CAUGHT = (signal.SIGINT, signal.SIGTERM, DRAIN, FORCE)
SLACK = 2.0
"""Seconds between the deadline's error events and cancelling what still runs."""
HEADER_TIMEOUT = 10.0
"""Seconds a client may take to send a request's head (uvicorn has no such limit)."""
KEEP_ALIVE = 5.0
"""Seconds an idle keep-alive connection is kept (uvicorn's `timeout_keep_alive`)."""
STARTUP_FAILURE = 3  # uvicorn's exit status for a worker that could not start
OPEN_FILES = 65_536
"""The open-file limit a worker asks for at start-up: two per open stream."""


class Spec(msgspec.Struct, frozen=True):
    """What a worker process needs; the rest comes from ROUTER_CONFIG like the app's factory."""

    host: str
    log_level: str


class HeadTimeoutProtocol(HttpToolsProtocol):
    """httptools with a deadline for each request's head: a client that opens a connection
    and trickles its headers (or sends nothing) is dropped after HEADER_TIMEOUT."""

    _head: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head = self.loop.call_later(HEADER_TIMEOUT, self._head_late)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head is None:  # a next request on a kept-alive connection
            self._head = self.loop.call_later(HEADER_TIMEOUT, self._head_late)

    def on_headers_complete(self) -> None:
        self._cancel_head()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head()
        super().connection_lost(exc)

    def _cancel_head(self) -> None:
        if self._head is not None:
            self._head.cancel()
            self._head = None

    def _head_late(self) -> None:
        self._head = None
        self.transport.close()


class DrainingServer(uvicorn.Server):
    """uvicorn's server with the drain above in place of its immediate shutdown."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, policy: Shutdown) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.policy = policy
        self.signalled_at: float | None = None
        self.listening = True
        self.expired_at: float | None = None
        self.forced = False
        self.pending: list[int] = []
        self._sockets: list[socket.socket] = []

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._sockets = list(sockets or ())
        await super().serve(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Our handlers; unlike uvicorn's, a drained server does not re-raise the signal."""
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in CAUGHT}
        for sig in self.pending:  # signals that arrived while the worker was starting
            self.handle_exit(sig, None)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """A signal handler: assignments only, the event loop acts on them in `on_tick`."""
        if sig == FORCE or (self.signalled_at is not None and sig != DRAIN):
            self.forced = self.force_exit = self.should_exit = True
        elif self.signalled_at is None:
            self.signalled_at = time.monotonic()
            self.lifecycle.begin(self.policy.drain_timeout, self.signalled_at)

    async def on_tick(self, counter: int) -> bool:
        done = await super().on_tick(counter)
        if done or self.signalled_at is None:
            return done
        return self.drain_step(time.monotonic())

    def drain_step(self, now: float) -> bool:
        """One look at the drain (every 0.1 s): True when the server may shut down."""
        assert self.signalled_at is not None
        if self.listening and now >= self.signalled_at + self.policy.grace_period:
            self.stop_listening()
        if not self.listening and not self.server_state.connections:
            return True
        deadline = self.lifecycle.deadline
        if deadline is not None and now >= deadline:
            if self.expired_at is None:
                self.expired_at = now
                self.lifecycle.expire()
            elif now >= self.expired_at + SLACK:
                return True
        return False

    def stop_listening(self) -> None:
        """New connections are refused from here on; idle ones are closed, busy ones close
        after their response."""
        self.listening = False
        for server in self.servers:
            server.close()
        for sock in self._sockets:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()


BACKLOG = 16384
"""Connections the kernel may queue before a worker accepts them (it caps this at
`net.core.somaxconn`): uvicorn's 2,048 overflowed when thousands of streams opened within
seconds on a busy worker, and the overflow is reset, not queued (docs/performance.md)."""


def _server(spec: Spec, settings: Settings | None) -> DrainingServer:
    from router.app import create_app  # the app and its imports only in the worker
    from router.runtime import Runtime

    env = dict(os.environ)
    settings = settings or load_settings(env.get("ROUTER_CONFIG", "routing.toml"), env)
    runtime = Runtime(settings, env, spec.host)
    config = uvicorn.Config(
        create_app(runtime),
        loop="uvloop",
        http=HeadTimeoutProtocol,
        lifespan="on",
        access_log=False,
        log_level=spec.log_level,
        timeout_keep_alive=int(KEEP_ALIVE),
        timeout_graceful_shutdown=int(SLACK),
        backlog=BACKLOG,
    )
    return DrainingServer(config, runtime.lifecycle, settings.shutdown)


def worker(spec: Spec, sock: socket.socket) -> None:
    """A worker process's target: serve on the shared socket until drained."""
    sys.exit(run_worker(spec, sock))


def raise_open_files(want: int = OPEN_FILES) -> int:
    """The soft open-file limit raised towards `want` (never above the hard limit, never
    lowered): each open stream holds two descriptors, the client's and the upstream's, and
    the usual soft limit of 1,024 would stop a worker near 500 streams. Returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):  # not permitted here: keep what we have
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
    return soft


def run_worker(spec: Spec, sock: socket.socket, settings: Settings | None = None) -> int:
    """Serve on `sock` until drained: 0, or 1 if forced, STARTUP_FAILURE if it cannot start."""
    raise_open_files()
    pending: list[int] = []
    for sig in CAUGHT:
        signal.signal(sig, lambda s, f: pending.append(s))
    try:
        server = _server(spec, settings)
    except Exception:  # a broken config: logged, and the supervisor stops retrying
        import logging

        logging.getLogger("router").exception("worker failed to start")
        return STARTUP_FAILURE
    server.pending = pending
    server.run([sock])
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
    return 1 if server.forced else 0


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock
