"""Runs the real gateway over real loopback HTTP for tests: uvicorn in a background thread
with its own event loop, configured from a routing.toml written into a temporary folder."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from fakes import FakeUpstream
from router.app import create_app
from router.config import load_settings
from router.runtime import Runtime

REPO = Path(__file__).resolve().parent.parent
MASTER_KEY = "sk-test-master"

FAST_POLICY = """
[retry]
max_retries = 2
backoff_initial = 0.05
backoff_max = 0.2
retry_after_cap = 5.0

[timeouts]
request = 20.0
connect = 2.0
response = 5.0
first_token = 2.0
first_token_reasoning = 3.0
stream_idle = 1.0

[circuit]
failure_threshold = 3
cooldown = 0.5
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gateway:
    """A running gateway: `url`, `runtime`, `headers` with the master key."""

    def __init__(self, url: str, runtime: Runtime, loop: asyncio.AbstractEventLoop) -> None:
        self.url = url
        self.runtime = runtime
        self.loop = loop
        self.headers = {"Authorization": f"Bearer {MASTER_KEY}"}

    def call(self, coro: object) -> object:
        """Run a coroutine on the gateway's loop (to inspect or flush its runtime)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)  # type: ignore[arg-type]


def write_config(
    folder: Path,
    extra: str = "",
    providers: dict[str, str] | None = None,
    policy: str = FAST_POLICY,
) -> Path:
    """A routing.toml in `folder`, with the repo's providers plus `providers` (name -> TOML)."""
    pdir = folder / "providers"
    shutil.copytree(REPO / "providers", pdir, dirs_exist_ok=True)
    for name, text in (providers or {}).items():
        (pdir / f"{name}.toml").write_text(text)
    config = folder / "routing.toml"
    config.write_text(
        f'providers_dir = "providers"\n[storage]\ndatabase = "{folder / "router.db"}"\n'
        + policy
        + extra
    )
    return config


@contextmanager
def running_gateway(config: Path, env: dict[str, str]) -> Iterator[Gateway]:
    env = {"ROUTER_MASTER_KEY": MASTER_KEY, **env}
    runtime = Runtime(load_settings(config, env), env, "127.0.0.1")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            loop="asyncio",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(5)
            _close(loop)
            raise RuntimeError("the gateway did not start (see captured stderr)")
        time.sleep(0.01)
    try:
        yield Gateway(f"http://127.0.0.1:{port}", runtime, loop)
    finally:
        server.should_exit = True
        thread.join(10)
        _close(loop)


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what libraries left running on the loop (sse-starlette's shutdown watcher)."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()


@contextmanager
def behind_fake(
    folder: Path, protocol: str, providers: dict[str, str], env: dict[str, str]
) -> Iterator[tuple[FakeUpstream, Gateway]]:
    """A gateway with `providers` added, every one of them pointed at one fake upstream that
    speaks `protocol`; `env` holds the keys."""
    with FakeUpstream(protocol) as fake:
        urls = {f"{name.upper()}_BASE_URL": fake.url for name in providers}
        with running_gateway(write_config(folder, providers=providers), urls | env) as gw:
            yield fake, gw
