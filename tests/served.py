"""`router serve` as a real process for tests: started on a free port, stopped by its PID."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from gateway_harness import MASTER_KEY, free_port
from kit import payloads

ACME = """
protocol = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "ACME_API_KEY"

[models.slow]
context_window = 100000
"""

HEADERS = {"Authorization": f"Bearer {MASTER_KEY}"}


class Served:
    """A `router serve` process; `url`, `headers` with the master key, `proc`, and its
    stderr in `log`."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.headers = HEADERS
        self.log = log

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def refuses(self) -> bool:
        """True when a new TCP connection is refused."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                return False
        except ConnectionRefusedError:
            return True

    def ready(self) -> int:
        return httpx.get(f"{self.url}/readyz", timeout=5).status_code


@contextmanager
def serving(config: Path, env: dict[str, str], workers: int) -> Iterator[Served]:
    port = free_port()
    log = config.parent / "serve.log"
    full = {**os.environ, "ROUTER_MASTER_KEY": MASTER_KEY, **env}
    full.pop("ROUTER_CONFIG", None)
    args = ["serve", "--config", str(config), "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "router", *args],
            env=full,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    served = Served(proc, port, log)
    try:
        _wait_ready(served)
        yield served
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _wait_ready(served: Served) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if served.proc.poll() is not None:
            raise RuntimeError(f"router serve exited: {served.log.read_text()}")
        try:
            if served.ready() == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("router serve did not become ready")


class Reader(threading.Thread):
    """Reads one streamed answer in the background: its raw `text`, `first` set at the first
    event's data, `events` its decoded payloads once done."""

    def __init__(self, url: str, body: dict[str, object]) -> None:
        super().__init__(daemon=True)
        self.url, self.body = url, body
        self.text = ""
        self.first = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with httpx.stream("POST", self.url, json=self.body, headers=HEADERS, timeout=60) as r:
                for piece in r.iter_text():
                    self.text += piece
                    if "data:" in self.text:
                        self.first.set()
        except httpx.HTTPError as exc:
            self.error = exc
        self.first.set()

    @property
    def events(self) -> list[Any]:
        return payloads(self.text)


def stream_both(served: Served, model: str) -> tuple[Reader, Reader]:
    """One stream on each surface, both past their first event."""
    messages = [{"role": "user", "content": "Tell me a story"}]
    openai = Reader(
        f"{served.url}/v1/chat/completions", {"model": model, "messages": messages, "stream": True}
    )
    iron = Reader(
        f"{served.url}/api/v1/completions",
        {"models": [model], "messages": messages, "stream": True},
    )
    for reader in (openai, iron):
        reader.start()
    for reader in (openai, iron):
        assert reader.first.wait(20), "no first event"
    return openai, iron


def turns(database: Path) -> int:
    with sqlite3.connect(database) as db:
        return int(db.execute("SELECT COUNT(*) FROM turns").fetchone()[0])
