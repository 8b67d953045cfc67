"""The runtime: every resource the app serves with, built from settings and owned by the
lifespan (`start` / `stop`). Surfaces receive it explicitly; there is no global state."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

from router.auth import Authenticator
from router.config import Settings, resolve_keys
from router.core.catalog import Catalog
from router.core.chat import ChatService
from router.core.gateway import Gateway
from router.core.health import Health, State
from router.errors import ConfigError
from router.metrics import Metrics
from router.protocols import backends
from router.store.conversations import ConversationStore, SqliteStore
from router.upstream import Upstream


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def master_key(settings: Settings, env: dict[str, str], host: str) -> str:
    """The master key from the environment; the documented development key only on loopback."""
    key = env.get(settings.server.master_key_env, "")
    if key:
        return key
    dev = settings.server.dev_master_key
    if dev and is_loopback(host):
        return dev
    if dev:
        raise ConfigError(
            settings.source,
            f"the development master key is refused when binding {host}, which is not loopback:"
            f" set {settings.server.master_key_env}",
        )
    raise ConfigError(settings.source, f"no master key: set {settings.server.master_key_env}")


class Runtime:
    """Settings-derived objects are built here; connections are opened by `start`."""

    def __init__(self, settings: Settings, env: dict[str, str], host: str) -> None:
        self.settings = settings
        self.keys = resolve_keys(settings.providers, env)
        self.catalog = Catalog(settings, self.keys)
        self.metrics = Metrics()
        self.health = Health(settings.circuit)
        self.health.on_change = self._circuit_changed
        self.auth = Authenticator(master_key(settings, env, host))
        self._upstream: Upstream | None = None
        self._store: SqliteStore | None = None
        self._chat: ChatService | None = None

    def _circuit_changed(self, ref: str, state: State) -> None:
        known = self.catalog._targets.get(ref) is not None
        self.metrics.circuit_changed(ref, state.value, known)

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    async def start(self) -> None:
        self._upstream = Upstream.create(self.settings.timeouts)
        gateway = Gateway(
            self.settings, backends(self._upstream), self.health, on_attempt=self.metrics.attempt
        )
        self._chat = ChatService(self.catalog, gateway, self.metrics)
        self._store = await SqliteStore(self.database_path()).open()

    def database_path(self) -> str:
        """The SQLite path; a relative one is relative to routing.toml's folder."""
        path = self.settings.storage.database
        if path == ":memory:" or Path(path).is_absolute() or not self.settings.source:
            return path
        return str(Path(self.settings.source).parent / path)

    async def stop(self) -> None:
        if self._store is not None:
            await self._store.close()
        if self._upstream is not None:
            await self._upstream.close()

    @property
    def chat(self) -> ChatService:
        assert self._chat is not None, "runtime not started"
        return self._chat

    @property
    def store(self) -> ConversationStore:
        assert self._store is not None, "runtime not started"
        return self._store

    @property
    def upstream(self) -> Upstream:
        assert self._upstream is not None, "runtime not started"
        return self._upstream
