"""Scale-out over Redis: what one gateway process learns about circuits and keys, all learn.

Selected by `storage.redis_url`; the only module that touches Redis. Events travel as
msgspec JSON on one pub/sub channel, `<prefix>:events` (`storage.redis_prefix`):

- `CircuitEvent`: a breaker here opened, went half-open or closed; every other process
  adopts it (`Health.apply`), so a deployment that failed in one process is skipped by all.
  Open and half-open circuits are also kept in the hash `<prefix>:circuits` (it expires a
  cool-down after the last change), read on connecting, so a process that starts later, or
  comes back after an outage, learns the circuits that are open now.
- `KeysEvent`: a key was updated or revoked (admin API or `router keys`); every process drops
  its cached key answers instead of waiting out their few seconds.

Each event names its sending process (`origin`), which ignores its own. No request waits for
Redis: changes are queued and sent by one background task, received ones applied by another.
When Redis is unreachable the gateway keeps serving on per-process state: failures are
logged, counted (`router_cluster_errors_total`) and the subscriber reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import NoReturn, Protocol, TypeVar

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from router.core.types import CircuitState

log = logging.getLogger("router.cluster")
T = TypeVar("T")

_TIMEOUT = 2.0  # seconds to connect, or for a command to answer
_BACKOFF = (0.1, 5.0)  # first and longest wait between reconnections, seconds
_PING = 5.0  # seconds of silence on the channel before the subscriber pings
_SILENCE = 3 * _PING  # seconds without a word from Redis before reconnecting
_QUEUE = 1000  # events waiting to be sent; past this they are dropped, and counted
_DRAIN = 0.5  # seconds `stop` gives queued events to leave


class ClusterObserver(Protocol):
    """Where the link's events and errors are counted (`router.metrics.Metrics`)."""

    def cluster_event(self, direction: str, kind: str) -> None: ...

    def cluster_error(self, operation: str) -> None: ...

    def cluster_link(self, up: bool) -> None: ...


class CircuitEvent(msgspec.Struct, frozen=True, tag="circuit"):
    origin: str  # the sending process
    ref: str  # provider/model
    state: CircuitState
    since: float  # wall-clock seconds: when the circuit entered `state`


class KeysEvent(msgspec.Struct, frozen=True, tag="keys"):
    origin: str
    key_id: str


Event = CircuitEvent | KeysEvent
_ENCODE = msgspec.json.Encoder().encode
_EVENT = msgspec.json.Decoder(Event)
_CIRCUIT = msgspec.json.Decoder(CircuitEvent)


def connect(url: str, retries: int = 1) -> Redis:
    """A client that fails fast: at most `retries` quick retries, then the caller's backoff."""
    return Redis.from_url(
        url,
        socket_connect_timeout=_TIMEOUT,
        socket_timeout=_TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries),
    )


class Names:
    """The Redis names under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.channel = f"{prefix}:events"
        self.circuits = f"{prefix}:circuits"


class Cluster:
    """The Redis link of one gateway process, owned by the runtime (`start` / `stop`)."""

    def __init__(
        self,
        url: str,
        prefix: str,
        cooldown: float,
        metrics: ClusterObserver,
        on_circuit: Callable[[str, CircuitState, float], None],
        on_keys: Callable[[], None],
    ) -> None:
        self.url = url
        self.names = Names(prefix)
        self.cooldown = cooldown
        self.metrics = metrics
        self.on_circuit = on_circuit
        self.on_keys = on_keys
        self.origin = uuid.uuid4().hex
        self._queue: asyncio.Queue[Event] = asyncio.Queue(_QUEUE)
        self._tried = asyncio.Event()  # the first connection attempt is over, either way
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: Redis | None = None  # for sending
        self._sub: Redis | None = None  # for listening: no hidden reconnection, so every
        # reconnection goes through `_subscribed` and loads the circuits open meanwhile
        self._down: set[str] = set()  # operations failing now: logged once per outage

    async def start(self) -> None:
        """Subscribe in the background; wait (briefly) to learn the circuits open now."""
        self._redis = connect(self.url)
        self._sub = connect(self.url, retries=0)
        self._tasks = [
            asyncio.create_task(self._listen(), name="router-cluster-listen"),
            asyncio.create_task(self._send(), name="router-cluster-send"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._tried.wait(), 2 * _TIMEOUT)

    async def stop(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), _DRAIN)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in (self._redis, self._sub):
            if client is not None:
                await client.aclose()

    # ---- changes here: queued, never awaited on the request path ---------------------------

    def circuit_changed(self, ref: str, state: CircuitState) -> None:
        self._enqueue(CircuitEvent(self.origin, ref, state, time.time()))

    def keys_changed(self, key_id: str) -> None:
        self._enqueue(KeysEvent(self.origin, key_id))

    def _enqueue(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.metrics.cluster_error("dropped")

    async def _send(self) -> NoReturn:
        while True:
            event = await self._queue.get()
            try:
                await self._publish(event)
            except (RedisError, OSError) as exc:
                self._failed("publish", exc)
            else:
                self._recovered("publish")
                self.metrics.cluster_event("sent", _kind(event))
            finally:
                self._queue.task_done()

    async def _publish(self, event: Event) -> None:
        assert self._redis is not None
        data = _ENCODE(event)
        async with self._redis.pipeline(transaction=False) as pipe:
            if isinstance(event, CircuitEvent) and event.state is CircuitState.CLOSED:
                pipe.hdel(self.names.circuits, event.ref)
            elif isinstance(event, CircuitEvent):
                pipe.hset(self.names.circuits, mapping={event.ref: data})
                pipe.pexpire(self.names.circuits, max(1, round(self.cooldown * 1000)))
            pipe.publish(self.names.channel, data)
            await pipe.execute()

    # ---- changes elsewhere --------------------------------------------------------------

    async def _listen(self) -> NoReturn:
        failures = 0
        while True:
            try:
                async with self._subscribed() as pubsub:
                    failures = 0
                    await self._read(pubsub)
            except (RedisError, OSError) as exc:
                self._failed("subscribe", exc)
            except Exception:  # the edge of a background task: serving goes on regardless
                log.exception("cluster: unexpected error in the subscriber")
                self.metrics.cluster_error("subscribe")
            self.metrics.cluster_link(False)
            self._tried.set()
            await asyncio.sleep(min(_BACKOFF[1], _BACKOFF[0] * 2**failures))
            failures += 1

    @contextlib.asynccontextmanager
    async def _subscribed(self) -> AsyncIterator[PubSub]:
        """Subscribed (confirmed), then the open circuits loaded: nothing falls in between."""
        assert self._sub is not None
        async with self._sub.pubsub() as pubsub:
            await pubsub.subscribe(self.names.channel)
            confirmed = await pubsub.get_message(timeout=_TIMEOUT)
            if confirmed is None or confirmed["type"] != "subscribe":
                raise RedisConnectionError("Redis did not confirm the subscription")
            await self._load()
            self._recovered("subscribe")
            self.metrics.cluster_link(True)
            self._tried.set()
            yield pubsub

    async def _load(self) -> None:
        """Adopt the circuits other processes hold open now."""
        assert self._sub is not None
        # redis-py types each command for the sync and the async client at once
        entries: dict[bytes, bytes] = await self._sub.hgetall(self.names.circuits)  # type: ignore[misc]
        now = time.time()
        for data in entries.values():
            event = self._decode(_CIRCUIT, data)
            if event is None or event.origin == self.origin:
                continue
            if now - event.since < self.cooldown:
                self.on_circuit(event.ref, event.state, event.since)

    async def _read(self, pubsub: PubSub) -> NoReturn:
        quiet = 0.0  # seconds since Redis last said anything
        while True:
            message = await pubsub.get_message(timeout=_PING)
            if message is None:
                quiet += _PING
                if quiet >= _SILENCE:
                    raise RedisConnectionError("Redis stopped answering on the subscription")
                await pubsub.ping()  # answered by a "pong" message
                continue
            quiet = 0.0
            if message["type"] == "message":
                self._receive(message["data"])

    def _receive(self, data: bytes) -> None:
        event = self._decode(_EVENT, data)
        if event is None or event.origin == self.origin:
            return
        self.metrics.cluster_event("received", _kind(event))
        if isinstance(event, CircuitEvent):
            self.on_circuit(event.ref, event.state, event.since)
        else:
            self.on_keys()

    def _decode(self, decoder: msgspec.json.Decoder[T], data: bytes) -> T | None:
        try:
            return decoder.decode(data)
        except msgspec.DecodeError as exc:  # a newer version's event, or not ours at all
            log.warning("cluster: ignored an event that does not decode: %s", exc)
            self.metrics.cluster_error("decode")
            return None

    # ---- outages: counted every time, logged once ------------------------------------------

    def _failed(self, operation: str, exc: Exception) -> None:
        self.metrics.cluster_error(operation)
        if operation not in self._down:
            self._down.add(operation)
            log.warning(
                "cluster: Redis %s failed (%s); serving on with this process's own state",
                operation,
                exc,
            )

    def _recovered(self, operation: str) -> None:
        if operation in self._down:
            self._down.discard(operation)
            log.warning("cluster: Redis %s works again", operation)


def _kind(event: Event) -> str:
    return "circuit" if isinstance(event, CircuitEvent) else "keys"


async def announce_keys(url: str, prefix: str, key_id: str) -> bool:
    """Tell running gateways a key changed (for `router keys`); False if Redis is unreachable."""
    redis = connect(url)
    try:
        await redis.publish(
            Names(prefix).channel, _ENCODE(KeysEvent("cli-" + uuid.uuid4().hex, key_id))
        )
    except (RedisError, OSError) as exc:
        log.warning("cluster: could not announce a key change over Redis: %s", exc)
        return False
    finally:
        await redis.aclose()
    return True
