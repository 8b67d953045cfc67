"""The response cache (opt-in): complete answers by exact match of the canonical request.

The key is the caller's scope (each virtual key its own, the master key its own) plus the
model chain as asked and the canonical `ChatRequest` (messages and parameters; `stream` is
not part of it, so a plain answer replays as a stream and back). Enabled per alias route
(`cache_ttl`) or per request (`x-router-cache: <seconds>`), with a TTL in seconds. Entries
live in a bounded LRU in memory, or in Redis (`router.store.cache_redis`) when configured.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from typing import Protocol

import msgspec

from router.config import Settings
from router.core.call import Call
from router.core.types import (
    ChatRequest,
    Completion,
    Costs,
    Event,
    Finish,
    FinishReason,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

_ENCODE = msgspec.msgpack.Encoder()


class CacheStore(Protocol):
    """Where entries live: bytes by key, each with its own time to live."""

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl: float) -> None: ...


class MemoryStore:
    """A bounded LRU in this process: the least recently used entry goes first when full."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self.clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return found[1]

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        self._entries[key] = (self.clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class Entry(msgspec.Struct, frozen=True):
    """A cached answer: what it said, who said it (`ref`) and what it cost then."""

    ref: str
    text: str
    reasoning: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    finish: FinishReason
    costs: Costs | None

    def events(self) -> list[Event]:
        """The answer as one batch of canonical events, for a streamed replay."""
        out: list[Event] = [ReasoningDelta(self.reasoning)] if self.reasoning else []
        if self.text:
            out.append(TextDelta(self.text))
        for i, c in enumerate(self.tool_calls):
            out.append(ToolCallDelta(i, c.id, c.name, c.arguments))
        return [*out, self.usage, Finish(self.finish)]


_DECODE = msgspec.msgpack.Decoder(Entry)
FREE = Costs(Decimal(0), Decimal(0), Decimal(0))  # what a hit costs


class ResponseCache:
    """Looks calls up and remembers their answers; owned by the runtime."""

    def __init__(self, settings: Settings, store: CacheStore) -> None:
        self.routes = settings.routes
        self.store = store

    def ttl(self, call: Call[ChatRequest]) -> float | None:
        """Seconds to keep this call's answer; None when the cache is off for it."""
        ttl = call.route.cache_ttl
        if ttl is None and call.models:
            route = self.routes.get(call.models[0].name)
            ttl = route.cache_ttl if route is not None else None
        return float(ttl) if ttl else None

    @staticmethod
    def key(call: Call[ChatRequest]) -> str:
        principal = call.principal
        scope = principal.key_id or ("master" if principal.master else principal.name)
        chain = ([a.name for a in call.models], [a.name for a in call.fallbacks])
        return hashlib.sha256(_ENCODE.encode((scope, chain, call.request))).hexdigest()

    async def lookup(self, call: Call[ChatRequest]) -> Entry | None:
        found = await self.store.get(self.key(call))
        return None if found is None else _DECODE.decode(found)

    async def remember(self, call: Call[ChatRequest], completion: Completion, ttl: float) -> None:
        entry = Entry(
            f"{completion.provider}/{completion.model}",
            completion.text,
            completion.reasoning,
            tuple(completion.tool_calls),
            completion.usage,
            completion.finish,
            completion.costs,
        )
        await self.store.put(self.key(call), _ENCODE.encode(entry), ttl)
