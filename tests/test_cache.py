"""The response cache: exact-match hits cost nothing and reach no upstream, plain or
streamed; each key its own scope; entries expire; Redis shares them between gateways."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
import redis

from chaos import ACME, POLICY
from conftest import need
from fakes import FakeUpstream, Fault
from gateway_harness import running_gateway, write_config
from kit import ask, payloads, post, streamed_text
from router.core.cache import MemoryStore
from test_cluster import URL, _reachable

CACHED = {"x-router-cache": "60"}
BACKUP = ["acme/backup"]


def gateway(tmp_path, fake, extra: str = ""):
    config = write_config(tmp_path, extra, providers={"acme": ACME}, policy=POLICY)
    return running_gateway(config, {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url})


def saved(gw) -> tuple[float, float, float]:
    m = gw.runtime.metrics
    return (
        m.cache.labels("hit")._value.get(),
        m.cache.labels("miss")._value.get(),
        m.cache_saved._value.get(),
    )


def test_a_repeated_request_is_a_free_hit_plain_and_streamed(tmp_path):
    with FakeUpstream("openai") as fake, gateway(tmp_path, fake) as gw:
        fake.always("backup", Fault.ok("Olá, mundo!", usage=(1000, 2000)))
        first = ask(gw, BACKUP, headers=gw.headers | CACHED)
        assert first.headers["x-router-cache"] == "miss"
        cost = Decimal(str(first.json()["usage"]["costs"]["total_tokens_cost"]))
        assert cost == Decimal("0.0025")  # 1000 x $0.50 + 2000 x $1 per 1M
        again = ask(gw, BACKUP, headers=gw.headers | CACHED)
        assert again.headers["x-router-cache"] == "hit"
        assert again.json()["message"]["content"][0]["text"] == "Olá, mundo!"
        assert again.json()["usage"]["costs"]["total_tokens_cost"] == 0
        streamed = ask(
            gw, BACKUP, stream=True, headers=gw.headers | CACHED
        )  # `stream` is not part of the key
        assert streamed.headers["x-router-cache"] == "hit"
        evs = payloads(streamed)
        assert streamed_text(evs) == "Olá, mundo!"
        assert evs[-2]["type"] == "response" and evs[-1] == "[DONE]"
        assert len(fake.seen) == 1
        assert saved(gw) == (2.0, 1.0, 0.005)
        other = ask(gw, BACKUP, headers=gw.headers | CACHED, text="something else")
        assert other.headers["x-router-cache"] == "miss" and len(fake.seen) == 2
        plain = ask(gw, BACKUP, headers=gw.headers)  # not asked for: not looked up, no header
        assert "x-router-cache" not in plain.headers and len(fake.seen) == 3


def test_a_streamed_miss_is_kept_and_replayed_in_the_same_format(tmp_path):
    with FakeUpstream("openai") as fake, gateway(tmp_path, fake) as gw:
        fake.always("backup", Fault.ok("one two three"))
        miss = ask(gw, BACKUP, stream=True, headers=gw.headers | CACHED)
        hit = ask(gw, BACKUP, stream=True, headers=gw.headers | CACHED)
        assert (miss.headers["x-router-cache"], hit.headers["x-router-cache"]) == ("miss", "hit")
        assert streamed_text(payloads(hit)) == streamed_text(payloads(miss)) == "one two three"
        path = "/v1/chat/completions"
        body = {"messages": [{"role": "user", "content": "hi"}], "model": "acme/backup"}
        r1 = post(gw, path, body, stream=True, headers=gw.headers | CACHED)
        r2 = post(gw, path, body, stream=True, headers=gw.headers | CACHED)
        assert r2.headers["x-router-cache"] == "hit"
        chunks = [e for e in payloads(r2) if isinstance(e, dict)]
        assert chunks[0]["object"] == "chat.completion.chunk"
        text = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )
        assert text == "one two three" and r1.status_code == 200
        assert len(fake.seen) == 2


def test_each_key_is_its_own_scope(tmp_path):
    with FakeUpstream("openai") as fake, gateway(tmp_path, fake) as gw:
        made = post(gw, "/admin/keys", {"name": "app"}, timeout=10).json()
        as_key = {"Authorization": f"Bearer {made['key']}"} | CACHED
        assert ask(gw, BACKUP, headers=gw.headers | CACHED).headers["x-router-cache"] == "miss"
        assert ask(gw, BACKUP, headers=as_key).headers["x-router-cache"] == "miss"
        assert ask(gw, BACKUP, headers=as_key).headers["x-router-cache"] == "hit"
        assert ask(gw, BACKUP, headers=gw.headers | CACHED).headers["x-router-cache"] == "hit"
        assert len(fake.seen) == 2


def test_a_route_enables_it_and_zero_turns_it_off(tmp_path):
    extra = '[aliases]\nb = ["acme/backup"]\n[routes.b]\ncache_ttl = 30\n'
    with FakeUpstream("openai") as fake, gateway(tmp_path, fake, extra) as gw:
        assert ask(gw, ["b"]).headers["x-router-cache"] == "miss"
        assert ask(gw, ["b"]).headers["x-router-cache"] == "hit"
        off = post(
            gw,
            "/api/v1/completions",
            {"messages": [{"role": "user", "content": "hello"}], "models": ["b"]},
            headers=gw.headers | {"x-router-cache": "0"},
        )
        assert "x-router-cache" not in off.headers and len(fake.seen) == 2
        bad = ask(gw, BACKUP, headers=gw.headers | {"x-router-cache": "soon"})
        assert bad.status_code == 400
        assert bad.json()["error"] == {
            "code": "invalid_value",
            "message": "x-router-cache must be whole seconds (0: off).",
            "field": "x-router-cache",
        }


def test_entries_expire_and_the_least_recently_used_goes_first():
    now = [100.0]
    store = MemoryStore(2, clock=lambda: now[0])

    async def run() -> list[bytes | None]:
        await store.put("a", b"A", 10)
        await store.put("b", b"B", 10)
        await store.get("a")  # a used more recently than b
        await store.put("c", b"C", 10)  # full: b goes
        found = [await store.get(k) for k in ("a", "b", "c")]
        now[0] = 110.0
        return [*found, await store.get("a")]

    assert asyncio.run(run()) == [b"A", None, b"C", None]
    assert len(store) == 1  # the expired one was dropped when looked up


@pytest.mark.redis
def test_redis_shares_entries_between_gateways(tmp_path):
    need(_reachable(URL), f"Redis not reachable at {URL}")
    prefix = f"router-test-{uuid.uuid4().hex[:12]}"
    extra = "[cache]\nredis = true\n"
    storage = f'[storage]\nredis_url = "{URL}"\nredis_prefix = "{prefix}"\n'
    try:
        with FakeUpstream("openai") as fake:
            config = write_config(tmp_path, extra, providers={"acme": ACME}, policy=POLICY)
            config.write_text(config.read_text().replace("[storage]\n", storage, 1))
            env = {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url}
            with running_gateway(config, env) as one, running_gateway(config, env) as two:
                assert (
                    ask(one, BACKUP, headers=one.headers | CACHED).headers["x-router-cache"]
                    == "miss"
                )
                assert (
                    ask(two, BACKUP, stream=True, headers=two.headers | CACHED).headers[
                        "x-router-cache"
                    ]
                    == "hit"
                )
                assert len(fake.seen) == 1
        client = redis.Redis.from_url(URL)
        (key,) = client.keys(f"{prefix}:cache:*")
        assert 55 <= client.ttl(key) <= 60
    finally:
        client = redis.Redis.from_url(URL)
        for key in client.keys(f"{prefix}:*"):
            client.delete(key)
        client.close()


def test_costs_saved_are_decimal_exact(tmp_path):
    with FakeUpstream("openai") as fake, gateway(tmp_path, fake) as gw:
        reports = []
        gw.runtime.metrics.finished = reports.append  # type: ignore[method-assign]
        fake.always("backup", Fault.ok("x", usage=(3, 7)))
        ask(gw, BACKUP, headers=gw.headers | CACHED)
        ask(gw, BACKUP, headers=gw.headers | CACHED)
        miss, hit = reports
        assert (miss.cache, miss.saved, hit.cache, hit.saved) == (
            "miss",
            None,
            "hit",
            Decimal("0.0000085"),  # 3 x 0.50 + 7 x 1.00 per 1M
        )
        assert hit.attempts == () and hit.costs.total_tokens_cost == 0
        assert hit.usage.total_tokens == 0  # a hit bills no tokens
        assert hit.request_model == miss.request_model == "acme/backup"
