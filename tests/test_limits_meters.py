"""The counters' one operation, `take`, the same in-process and as a Lua script on Redis:
all required meters or none, the first deployment group that fits, values after taking."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from conftest import need
from router.limits_meters import Counters, LocalCounters, Meter, nano, window
from test_cluster import URL as REDIS
from test_cluster import _reachable


def test_windows_are_fixed_from_their_start_or_the_calendar_month():
    assert window(1000.0, 60) == ("w60.16", 20.0)
    assert window(1000.0, 300, start=900.0) == ("w300.0", 200.0)
    mid_feb = datetime(2028, 2, 20, 12, tzinfo=UTC).timestamp()
    name, left = window(mid_feb, None)
    assert name == "m202802"
    assert left == (datetime(2028, 3, 1, tzinfo=UTC).timestamp() - mid_feb)


def test_nano_dollars_round_up():
    assert nano(Decimal("0.0000000001")) == 1
    assert nano(Decimal("0.05")) == 50_000_000


def meter(key: str, amount: int, limit: int) -> Meter:
    return Meter(
        key=key, amount=amount, limit=limit, ttl_ms=60_000, kind="requests", scope="key", reset=1.0
    )


async def scenario(counters: Counters, p: str) -> list[object]:
    out: list[object] = []
    a, b = f"{p}:a", f"{p}:b"
    out.append(await counters.take([meter(a, 2, 3), meter(b, 1, 1)], []))
    out.append(await counters.take([meter(a, 1, 3), meter(b, 1, 1)], []))  # b refuses: a kept
    out.append(await counters.take([meter(a, 1, 3)], []))
    groups = [[meter(f"{p}:d1", 1, 0)], [], [meter(f"{p}:d3", 1, 5)]]
    out.append(await counters.take([meter(f"{p}:c", 0, -1)], groups))  # d1 full: group 1
    out.append(await counters.take([], [[meter(f"{p}:d1", 1, 0)], [meter(f"{p}:d3", 1, 5)]]))
    await counters.add([(a, -3, 60_000)])
    out.append(await counters.take([meter(a, 3, 3)], []))
    return out


EXPECTED = [
    (True, -1, -1, (2, 1)),
    (False, 1, -1, ()),
    (True, -1, -1, (3,)),
    (True, -1, 1, (0,)),
    (True, -1, 1, ()),
    (True, -1, -1, (3,)),
]


def _plain(results: list[object]) -> list[object]:
    return [(r.ok, r.refused, r.chosen, r.values) for r in results]  # type: ignore[attr-defined]


def test_local_counters():
    assert _plain(asyncio.run(scenario(LocalCounters(), "t"))) == EXPECTED


@pytest.mark.redis
def test_the_lua_script_takes_exactly_as_the_local_counters_do():
    need(_reachable(REDIS), f"Redis not reachable at {REDIS}")
    from router.limits_redis import RedisCounters

    async def run() -> list[object]:
        counters = RedisCounters(REDIS)
        prefix = f"router-test-{uuid.uuid4().hex[:12]}"
        try:
            return await scenario(counters, prefix)
        finally:
            keys = [k async for k in counters.redis.scan_iter(f"{prefix}:*")]
            if keys:
                await counters.redis.delete(*keys)
            await counters.close()

    assert _plain(asyncio.run(run())) == EXPECTED
