"""The runtime: every resource the app serves with, built from settings and owned by the
lifespan (`start` / `stop`). Surfaces receive it explicitly; there is no global state."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from router.api.sse import Heartbeat
from router.auth import Authenticator, KeyAuth
from router.config import Settings, check_protocols, deployment_keys, resolve_keys
from router.core.cache import MemoryStore, ResponseCache
from router.core.catalog import Catalog
from router.core.chat import ChatService
from router.core.gateway import Gateway
from router.core.health import Health
from router.core.media_service import MediaService
from router.core.ports import Backend, Observers
from router.core.routes import Chooser
from router.core.search import Grounding
from router.core.stats import Stats
from router.core.timeouts import LearnedGauges, LearnedTimeouts, LearnedView
from router.core.types import CircuitState
from router.errors import ConfigError
from router.lifecycle import Lifecycle
from router.limits import LimitsService
from router.limits_meters import Counters, LocalCounters
from router.limits_policy import PolicyBook, open_policies
from router.metrics import Metrics
from router.observe.logs import RequestLog
from router.observe.record import Recorder
from router.observe.status import StatusBoard
from router.observe.switches import request_log_on, tracing_on
from router.protocols import REGISTRY, backends
from router.protocols.web_search import WebSearch
from router.store import database_path, open_conversations, open_responses
from router.store.conversations import ConversationStore
from router.store.keys import KeyStore, open_keys
from router.store.ledger import Ledger
from router.store.ledger_sqlite import open_ledger_db
from router.store.response_records import ResponseStore
from router.upstream import Upstream

log = logging.getLogger("router")

if TYPE_CHECKING:
    from router.cluster import Cluster
    from router.observe.tracing import Tracing
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


def _model_names(catalog: Catalog) -> set[str]:
    """Every name a caller may ask for that is labelled as asked: catalog models (bare and
    `provider/model`) and aliases."""
    names = set(catalog.aliases)
    for t in catalog.listed():
        names.update((t.ref, t.model))
    return names


class Runtime:
    """Settings-derived objects are built here; connections are opened by `start`."""

    def __init__(self, settings: Settings, env: dict[str, str], host: str) -> None:
        check_protocols(settings, REGISTRY)
        self.settings = settings
        self.keys = resolve_keys(settings.providers, env) | deployment_keys(
            settings.deployments, env
        )
        self.catalog = Catalog(settings, self.keys)
        self.metrics = Metrics(models=_model_names(self.catalog))
        self.request_log = RequestLog() if request_log_on(env) else None
        self.tracing: Tracing | None = None
        if tracing_on(env):
            from router.observe.tracing import Tracing  # OpenTelemetry only when asked for

            self.tracing = Tracing()
        self.status_board = StatusBoard()
        self.observer = Observers(
            self.metrics, Recorder(keep_attempts=self.tracing is not None), self.status_board
        )
        self.health = Health(settings.circuit, tuned=settings.learned.targets)
        self.health.on_change = self._circuit_changed
        self.stats = Stats()
        self.chooser = Chooser(settings, self.stats)
        self.auth = Authenticator(master_key(settings, env, host))
        self.lifecycle = Lifecycle()  # drain state, driven by router.serving
        self.heartbeat = Heartbeat()  # pings for every open SSE response, one timer
        self._upstream: Upstream | None = None
        self._store: ConversationStore | None = None
        self._responses: ResponseStore | None = None
        self._chat: ChatService | None = None
        self._media: MediaService | None = None
        self._api_keys: KeyStore | None = None
        self._key_auth: KeyAuth | None = None
        self._cluster: Cluster | None = None
        self._ledger: Ledger | None = None
        self._limits: LimitsService | None = None
        self._reloads: set[asyncio.Future[None]] = set()
        self._refresher: asyncio.Task[None] | None = None
        self.workers = int(env.get("ROUTER_WORKERS") or 1)  # set by `router serve --workers`
        self._cache_store: RedisStore | None = None
        self._stats_link: StatsLink | None = None
        search = settings.search  # the gateway-run web search, checked (its key) at start-up
        self.searcher = None if search is None else WebSearch(search, env, lambda: self.upstream)

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
        limits = self._limits = await self._open_limits()  # first: it may refuse to start
        self._upstream = Upstream.create(
            self.settings.timeouts, self.settings.server.upstream_connections
        )
        self.metrics.start((t.provider.name, t.model) for t in self.catalog.listed())
        self._ledger = Ledger(
            await open_ledger_db(self.database_path()), self.metrics, limits.book.team_of
        )
        self._ledger.start()
        gauges = LearnedGauges(self.metrics, LearnedTimeouts(self.settings, self.stats))
        observer = Observers(self.observer, self.stats, gauges, self._ledger, limits)
        reach: Mapping[str, Backend] = backends(self._upstream)
        if self.searcher is not None:  # answers grounded in its results for non-searchers
            reach = {name: Grounding(backend) for name, backend in reach.items()}
        gateway = Gateway(self.settings, reach, self.health, observer, stats=self.stats)
        self._chat = ChatService(
            self.catalog, gateway, self.chooser, self._response_cache(), self.searcher
        )
        self._media = MediaService(self.catalog, gateway)
        self._chat.limited = self._media.limited = limits.skip
        self._refresher = asyncio.create_task(self._refresh_policies(), name="router-policies")
        self._store = await open_conversations(self.database_path(), self.metrics.store_waits.inc)
        self._responses = await open_responses(self.database_path())
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

    async def _open_limits(self) -> LimitsService:
        """The key policies and the counters: in Redis when `storage.redis_url` is set, else
        in this process, which is refused when several workers would each count alone."""
        book = PolicyBook(await open_policies(self.database_path()))
        await book.reload()
        storage = self.settings.storage
        counters: Counters
        if storage.redis_url:
            from router.limits_redis import RedisCounters  # redis only when asked for

            counters = RedisCounters(storage.redis_url)
        elif self.workers > 1 and (self.settings.limits.configured or book.limited):
            await book.store.close()
            raise ConfigError(
                self.settings.source,
                "budgets or rate limits are configured and several workers would each count"
                " them alone: set storage.redis_url (or serve with one worker)",
            )
        else:
            counters = LocalCounters()
        return LimitsService(
            self.settings.limits, self.catalog, counters, book, self.metrics, storage.redis_prefix
        )

    async def _refresh_policies(self, every: float = 5.0) -> None:
        """Reload key policies now and then: `router keys limits` run without Redis reaches
        this process within `every` seconds (with Redis, at once: `_keys_heard`)."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.limits.book.reload()
            except Exception:  # the edge of a background task: serving goes on regardless
                log.exception("limits: reloading key policies failed")

    def _keys_heard(self) -> None:
        """Another process changed a key: forget cached answers, reload key policies."""
        self.key_auth.forget()
        task = asyncio.ensure_future(self.limits.book.reload())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _join_cluster(self, redis_url: str) -> None:
        from router.cluster import Cluster  # redis only when asked for

        self._cluster = Cluster(
            redis_url,
            self.settings.storage.redis_prefix,
            self.settings.circuit.cooldown,
            self.metrics,
            on_circuit=self._circuit_heard,
            on_keys=self._keys_heard,
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
        if self._refresher is not None:
            self._refresher.cancel()
        if self._ledger is not None:  # first: every call has ended, write all it billed
            await self._ledger.close()
        if self._limits is not None:
            await self._limits.close()
            await self._limits.book.store.close()
        if self._stats_link is not None:
            await self._stats_link.stop()
        if self._cache_store is not None:
            await self._cache_store.close()
        if self._cluster is not None:
            await self._cluster.stop()
        closing = (self._key_auth, self._api_keys, self._store, self._responses, self._upstream)
        for resource in closing:  # in this order: what writes first, the connections last
            if resource is not None:
                await resource.close()
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.close)

    @property
    def chat(self) -> ChatService:
        assert self._chat is not None, "runtime not started"
        return self._chat

    @property
    def media(self) -> MediaService:
        assert self._media is not None, "runtime not started"
        return self._media

    @property
    def limits(self) -> LimitsService:
        assert self._limits is not None, "runtime not started"
        return self._limits

    @property
    def ledger(self) -> Ledger:
        assert self._ledger is not None, "runtime not started"
        return self._ledger

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
