"""The limits' counters in Redis (`storage.redis_url`): exact across every process and host.

`take` is one Lua script, so one round trip and one atomic step: every required meter is
checked against its limit and, only if all fit, the first deployment group that fits and the
required meters are incremented (never a read followed by a separate write). `add` (settling
after the answer) is one pipelined round trip, off the request path.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from router.cluster import connect
from router.limits_meters import CountersDown, Meter, Taken

_TAKE = """
local n = tonumber(ARGV[1])
local g = tonumber(ARGV[2])
local function get(k) return tonumber(redis.call('GET', KEYS[k]) or '0') end
local function fits(k, a, l) return l < 0 or a <= 0 or get(k) + a <= l end
local function take(k, a, ttl)
  if a == 0 then return get(k) end
  local v = redis.call('INCRBY', KEYS[k], a)
  if ttl > 0 then redis.call('PEXPIRE', KEYS[k], ttl) end
  return v
end
for i = 1, n do
  local at = 3 + (i - 1) * 3
  if not fits(i, tonumber(ARGV[at]), tonumber(ARGV[at + 1])) then return {0, i - 1, -1} end
end
local at = 3 + n * 3
local k = n
local chosen = -1
for j = 1, g do
  local size = tonumber(ARGV[at])
  local ok = true
  for m = 1, size do
    local p = at + 1 + (m - 1) * 3
    if not fits(k + m, tonumber(ARGV[p]), tonumber(ARGV[p + 1])) then ok = false end
  end
  if ok then
    for m = 1, size do
      local p = at + 1 + (m - 1) * 3
      take(k + m, tonumber(ARGV[p]), tonumber(ARGV[p + 2]))
    end
    chosen = j - 1
    break
  end
  at = at + 1 + size * 3
  k = k + size
end
local out = {1, -1, chosen}
for i = 1, n do
  local at = 3 + (i - 1) * 3
  out[#out + 1] = take(i, tonumber(ARGV[at]), tonumber(ARGV[at + 2]))
end
return out
"""


def _args(meters: list[Meter]) -> list[int]:
    return [v for m in meters for v in (m.amount, m.limit, m.ttl_ms)]


class RedisCounters:
    """Owned by the runtime; the client retries a dropped connection once, then fails fast
    (the caller applies `limits.on_redis_error`)."""

    def __init__(self, url: str) -> None:
        self.redis: Redis = connect(url)
        self._take = self.redis.register_script(_TAKE)

    async def take(self, required: list[Meter], groups: list[list[Meter]]) -> Taken:
        keys = [m.key for m in required] + [m.key for g in groups for m in g]
        args: list[Any] = [len(required), len(groups), *_args(required)]
        for group in groups:
            args += [len(group), *_args(group)]
        try:
            out = await self._take(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise CountersDown(f"{type(exc).__name__}: {exc}") from None
        ok, refused, chosen, *values = (int(v) for v in out)
        return Taken(bool(ok), refused, chosen, tuple(values))

    async def add(self, changes: list[tuple[str, int, int]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, delta, ttl_ms in changes:
                pipe.incrby(key, delta)
                if ttl_ms:
                    pipe.pexpire(key, ttl_ms)
            await pipe.execute()

    async def close(self) -> None:
        await self.redis.aclose()
