"""The runtime: every resource the app serves with, built from settings and owned by the
lifespan (`start` / `stop`). Surfaces receive it explicitly; there is no global state."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING

from router.auth import Authenticator, KeyAuth
from router.config import Settings, check_protocols, resolve_keys
from router.core.catalog import Catalog
from router.core.chat import ChatService
from router.core.gateway import Gateway
from router.core.health import Health
from router.core.media_service import MediaService
from router.core.ports import Backend
from router.core.search import Grounding
from router.core.types import CircuitState
from router.errors import ConfigError
from router.lifecycle import Lifecycle
from router.metrics import Metrics
from router.protocols import REGISTRY, backends
from router.protocols.web_search import WebSearch
from router.store import database_path, open_conversations, open_responses
from router.store.conversations import ConversationStore
from router.store.keys import KeyStore, open_keys
from router.store.response_records import ResponseStore
from router.upstream import Upstream

if TYPE_CHECKING:
    from router.cluster import Cluster


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
        check_protocols(settings, REGISTRY)
        self.settings = settings
        self.keys = resolve_keys(settings.providers, env)
        self.catalog = Catalog(settings, self.keys)
        self.metrics = Metrics()
        self.health = Health(settings.circuit)
        self.health.on_change = self._circuit_changed
        self.auth = Authenticator(master_key(settings, env, host))
        self.lifecycle = Lifecycle()  # drain state, driven by router.serving
        self._upstream: Upstream | None = None
        self._store: ConversationStore | None = None
        self._responses: ResponseStore | None = None
        self._chat: ChatService | None = None
        self._media: MediaService | None = None
        self._api_keys: KeyStore | None = None
        self._key_auth: KeyAuth | None = None
        self._cluster: Cluster | None = None
        search = settings.search  # the gateway-run web search, checked (its key) at start-up
        self.searcher = None if search is None else WebSearch(search, env, lambda: self.upstream)

    def _circuit_changed(self, ref: str, state: CircuitState) -> None:
        known = self.catalog._targets.get(ref) is not None
        self.metrics.circuit_changed(ref, state.value, known)
        if self._cluster is not None:
            self._cluster.circuit_changed(ref, state)

    def _circuit_heard(self, ref: str, state: CircuitState, since: float) -> None:
        """Another process's breaker changed: adopt it here, without announcing it again."""
        known = self.catalog._targets.get(ref) is not None
        self.metrics.circuit_changed(ref, self.health.apply(ref, state, since).value, known)

    def keys_changed(self, key_id: str) -> None:
        """A key was updated or revoked: drop cached answers here and in every other process."""
        self.key_auth.forget()
        if self._cluster is not None:
            self._cluster.keys_changed(key_id)

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    async def start(self) -> None:
        self._upstream = Upstream.create(self.settings.timeouts)
        reach: Mapping[str, Backend] = backends(self._upstream)
        if self.searcher is not None:  # answers grounded in its results for non-searchers
            reach = {name: Grounding(backend) for name, backend in reach.items()}
        gateway = Gateway(self.settings, reach, self.health, self.metrics)
        self._chat = ChatService(self.catalog, gateway, self.searcher)
        self._media = MediaService(self.catalog, gateway)
        self._store = await open_conversations(self.database_path(), self.metrics.store_waits.inc)
        self._responses = await open_responses(self.database_path())
        self._api_keys = await open_keys(self.database_path())
        self._key_auth = KeyAuth(self._api_keys)
        self.auth.lookup = self._key_auth.lookup
        if self.settings.storage.redis_url:
            await self._join_cluster(self.settings.storage.redis_url)

    async def _join_cluster(self, redis_url: str) -> None:
        from router.cluster import Cluster  # redis only when asked for

        self._cluster = Cluster(
            redis_url,
            self.settings.storage.redis_prefix,
            self.settings.circuit.cooldown,
            self.metrics,
            on_circuit=self._circuit_heard,
            on_keys=self.key_auth.forget,
        )
        await self._cluster.start()

    def database_path(self) -> str:
        return database_path(self.settings)

    async def stop(self) -> None:
        if self._cluster is not None:
            await self._cluster.stop()
        if self._key_auth is not None:
            await self._key_auth.close()
        if self._api_keys is not None:
            await self._api_keys.close()
        if self._store is not None:
            await self._store.close()
        if self._responses is not None:
            await self._responses.close()
        if self._upstream is not None:
            await self._upstream.close()

    @property
    def chat(self) -> ChatService:
        assert self._chat is not None, "runtime not started"
        return self._chat

    @property
    def media(self) -> MediaService:
        assert self._media is not None, "runtime not started"
        return self._media

    @property
    def api_keys(self) -> KeyStore:
        assert self._api_keys is not None, "runtime not started"
        return self._api_keys

    @property
    def key_auth(self) -> KeyAuth:
        assert self._key_auth is not None, "runtime not started"
        return self._key_auth

    @property
    def store(self) -> ConversationStore:
        assert self._store is not None, "runtime not started"
        return self._store

    @property
    def responses(self) -> ResponseStore:
        assert self._responses is not None, "runtime not started"
        return self._responses

    @property
    def upstream(self) -> Upstream:
        assert self._upstream is not None, "runtime not started"
        return self._upstream
