"""The runtime: every resource the app serves with, built from settings and owned by the
lifespan (`start` / `stop`). Surfaces receive it explicitly; there is no global state."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING

from router.auth import Authenticator
from router.config import Settings, check_protocols, deployment_keys, resolve_keys
from router.core.cache import MemoryStore, ResponseCache
from router.core.catalog import Catalog
from router.core.chat import ChatService
from router.core.gateway import Gateway
from router.core.health import Health
from router.core.media_service import MediaService
from router.core.ports import Observers
from router.core.routes import Chooser
from router.core.stats import Stats
from router.core.timeouts import LearnedGauges, LearnedTimeouts, LearnedView
from router.core.types import CircuitState
from router.errors import ConfigError
from router.metrics import Metrics
from router.protocols import REGISTRY, backends
from router.store import is_postgres, open_conversations
from router.store.conversations import ConversationStore
from router.store.keys import KeyAuth, KeyStore, open_keys
from router.upstream import Upstream

if TYPE_CHECKING:
    from router.cluster import Cluster
    from router.store.cache_redis import RedisStore
    from router.store.stats_redis import StatsLink


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


def database_path(settings: Settings) -> str:
    """The SQLite path; a relative one is relative to routing.toml's folder."""
    path = settings.storage.database
    if path == ":memory:" or is_postgres(path) or Path(path).is_absolute() or not settings.source:
        return path
    return str(Path(settings.source).parent / path)


class Runtime:
    """Settings-derived objects are built here; connections are opened by `start`."""

    def __init__(self, settings: Settings, env: dict[str, str], host: str) -> None:
        check_protocols(settings, REGISTRY)
        self.settings = settings
        self.keys = resolve_keys(settings.providers, env) | deployment_keys(
            settings.deployments, env
        )
        self.catalog = Catalog(settings, self.keys)
        self.metrics = Metrics()
        self.health = Health(settings.circuit, tuned=settings.learned.targets)
        self.health.on_change = self._circuit_changed
        self.stats = Stats()
        self.chooser = Chooser(settings, self.stats)
        self.auth = Authenticator(master_key(settings, env, host))
        self._upstream: Upstream | None = None
        self._store: ConversationStore | None = None
        self._chat: ChatService | None = None
        self._media: MediaService | None = None
        self._api_keys: KeyStore | None = None
        self._key_auth: KeyAuth | None = None
        self._cluster: Cluster | None = None
        self._cache_store: RedisStore | None = None
        self._stats_link: StatsLink | None = None

    def _circuit_changed(self, ref: str, state: CircuitState) -> None:
        known = self.catalog._targets.get(ref) is not None
        self.metrics.circuit_changed(ref, state.value, known)
        self.metrics.circuit_cooldown(ref, self.health.cooldown(ref), known)
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
        gauges = LearnedGauges(self.metrics, LearnedTimeouts(self.settings, self.stats))
        observer = Observers(self.metrics, self.stats, gauges)
        gateway = Gateway(
            self.settings, backends(self._upstream), self.health, observer, stats=self.stats
        )
        self._chat = ChatService(self.catalog, gateway, self.chooser, self._response_cache())
        self._media = MediaService(self.catalog, gateway)
        self._store = await open_conversations(self.database_path())
        self._api_keys = await open_keys(self.database_path())
        self._key_auth = KeyAuth(self._api_keys)
        self.auth.lookup = self._key_auth.lookup
        if self.settings.storage.redis_url:
            await self._join_cluster(self.settings.storage.redis_url)
            await self._share_stats(self.settings.storage.redis_url)

    def _response_cache(self) -> ResponseCache:
        """In memory, or in Redis when `[cache] redis` is set (with `storage.redis_url`)."""
        storage, cache = self.settings.storage, self.settings.cache
        if not (cache.redis and storage.redis_url):
            return ResponseCache(self.settings, MemoryStore(cache.max_entries))
        from router.cluster import connect  # redis only when asked for
        from router.store.cache_redis import RedisStore

        self._cache_store = RedisStore(connect(storage.redis_url), storage.redis_prefix)
        return ResponseCache(self.settings, self._cache_store)

    async def _share_stats(self, redis_url: str) -> None:
        """Learned speed and timeouts shared with the other processes (`[storage] redis_url`)."""
        from router.cluster import connect  # redis only when asked for
        from router.store.stats_redis import StatsLink

        stats = self.stats
        stats.sharing = True
        prefix = self.settings.storage.redis_prefix
        self._stats_link = StatsLink(connect(redis_url), prefix, stats.drain, stats.absorb)
        await self._stats_link.start()

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

    def learned(self) -> list[LearnedView]:
        """The learned timeouts of every deployment with observations (`/admin/health`)."""
        stats = self.stats
        refs = sorted(set(stats.recent) | set(stats.gaps))
        targets = [t for ref in refs if (t := self.catalog.target(ref)) is not None]
        return self.chat.gateway.learned.view(targets)

    def database_path(self) -> str:
        return database_path(self.settings)

    async def stop(self) -> None:
        if self._stats_link is not None:
            await self._stats_link.stop()
        if self._cache_store is not None:
            await self._cache_store.close()
        if self._cluster is not None:
            await self._cluster.stop()
        if self._api_keys is not None:
            await self._api_keys.close()
        if self._store is not None:
            await self._store.close()
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
    def upstream(self) -> Upstream:
        assert self._upstream is not None, "runtime not started"
        return self._upstream
