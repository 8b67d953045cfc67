"""A real gateway (`router serve --workers N` as a process) and a real Prometheus (Debian's
package) scraping it, both on free loopback ports and stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from gateway_harness import MASTER_KEY, free_port

REPO = Path(__file__).resolve().parent.parent


def _wait(url: str, what: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


@contextmanager
def served(config: Path, env: dict[str, str], workers: int, out: Path) -> Iterator[str]:
    """`router serve` with `workers` processes; yields its URL; stdout goes to `out`."""
    port = free_port()
    multiproc = config.parent / "metrics-mp"
    multiproc.mkdir()
    full = {
        **os.environ,
        "ROUTER_MASTER_KEY": MASTER_KEY,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        **env,
    }
    args = [sys.executable, "-m", "router", "serve", "--config", str(config)]
    args += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with out.open("wb") as sink:
        proc = subprocess.Popen(args, env=full, stdout=sink, stderr=subprocess.STDOUT)
        try:
            _wait(f"http://127.0.0.1:{port}/healthz", "the gateway", proc)
            yield f"http://127.0.0.1:{port}"
        except Exception:
            _stop(proc)
            _echo(out)  # the server's side of a failure, in the test's report
            raise
        finally:
            _stop(proc)


def _echo(out: Path, limit: int = 20_000) -> None:
    """The end of the gateway's output on stderr, which pytest shows for a failed test."""
    text = out.read_bytes()[-limit:].decode(errors="replace")
    print(f"--- {out} (last {limit} bytes) ---\n{text}", file=sys.stderr)


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> dict[str, Any]:
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body: dict[str, Any] = r.json()
        assert body["status"] == "success", (expr, body)
        return body["data"]  # type: ignore[no-any-return]

    def value(self, expr: str) -> float:
        result = self.query(expr)["result"]
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])

    def get(self, path: str, **params: str) -> Any:
        body = httpx.get(f"{self.url}{path}", params=params, timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]


@contextmanager
def prometheus(folder: Path, target: str, rules: Path) -> Iterator[Prometheus]:
    """Prometheus scraping `target` (host:port) every second, with `rules` loaded."""
    binary = shutil.which("prometheus")
    assert binary is not None
    port = free_port()
    shutil.copy(rules, folder / "alerts.yml")
    (folder / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files: [alerts.yml]\n"
        "scrape_configs:\n  - job_name: router\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )
    args = [
        binary,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with (folder / "prometheus.log").open("wb") as sink:
        proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, cwd=folder)
        try:
            _wait(f"http://127.0.0.1:{port}/-/ready", "prometheus", proc)
            yield Prometheus(f"http://127.0.0.1:{port}")
        finally:
            _stop(proc)
