"""Virtual keys: stored only as hashes, administered by the master key (API and CLI), limited
to their model patterns on both surfaces, refused once revoked or expired."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import openai
import pytest

from conftest import need
from gateway_harness import FAST_POLICY, MASTER_KEY, Gateway, running_gateway
from kit import COMPLETIONS, post
from router.auth import KeyAuth, bearer
from router.errors import NotFoundError, RequestError
from router.store.key_records import KeyChanges, NewKey, hash_key
from router.store.keys import open_keys
from router.store.keys_sqlite import KeyDb, SqliteKeyStore

USER = [{"role": "user", "content": "hello"}]


def admin(
    gw: Gateway, method: str, path: str, key: str = MASTER_KEY, **kw: object
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.request(method, f"{gw.url}{path}", headers=headers, timeout=10, **kw)  # type: ignore[arg-type]


def create(gw: Gateway, **body: object) -> dict[str, object]:
    r = admin(gw, "POST", "/admin/keys", json={"name": "app", **body})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def sdk(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=10)


# ---- the store ----------------------------------------------------------------------------


def test_store_keeps_only_a_hash_and_a_prefix(tmp_path):
    path = tmp_path / "keys.db"
    db = KeyDb(str(path))
    secret, record = db.create(NewKey(name="web", models=("openai/*",), metadata={"team": "a"}))
    assert secret.startswith("sk-rt-") and len(secret) > 40
    assert record.prefix == secret[:12] and record.id.startswith("key_")
    db.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in stored
    assert hash_key(secret).encode() in stored
    db = KeyDb(str(path))
    assert db.by_hash(hash_key(secret)) == record
    assert db.list() == [record]
    db.close()


def test_store_update_and_revoke(tmp_path):
    db = KeyDb(str(tmp_path / "keys.db"))
    _, record = db.create(NewKey(name="web", expires_at=time.time() + 60))
    updated = db.update(record.id, KeyChanges(name="web2", models=("demo/*",), expires_at=None))
    assert (updated.name, updated.models, updated.expires_at) == ("web2", ("demo/*",), None)
    assert updated.metadata == {} and not updated.revoked
    revoked = db.revoke(record.id)
    assert revoked.revoked and revoked.revoked_at is not None
    assert db.revoke(record.id).revoked_at == revoked.revoked_at  # revoking twice keeps the time
    with pytest.raises(NotFoundError):
        db.get("key_nope")
    with pytest.raises(RequestError) as bad:
        db.create(NewKey(name="x", models=()))
    assert bad.value.field == "models"
    db.close()


async def test_auth_cache_answers_without_the_database(tmp_path):
    store = await SqliteKeyStore(str(tmp_path / "keys.db")).open()
    secret, record = await store.create(NewKey(name="web", models=("demo/*",)))
    auth = KeyAuth(store, ttl=60)
    principal = await auth.lookup(secret)
    assert principal is not None and principal.models == ("demo/*",) and not principal.master
    await store.revoke(record.id)
    assert await auth.lookup(secret) == principal  # cached until the TTL or `forget`
    auth.forget()
    with pytest.raises(RequestError) as revoked:
        await auth.lookup(secret)
    assert revoked.value.status == 401 and "revoked" in revoked.value.message
    assert await auth.lookup("sk-rt-unknown") is None
    assert await auth.lookup("not-even-our-format") is None
    await store.close()


# ---- the admin API ------------------------------------------------------------------------


def test_admin_api_issues_lists_updates_and_revokes(demo_gateway):
    gw = demo_gateway
    created = create(gw, models=["demo/*"], metadata={"team": "web"})
    secret = created["key"]
    assert isinstance(secret, str) and secret.startswith(str(created["prefix"]))
    assert created["models"] == ["demo/*"] and created["revoked"] is False
    assert created["expires_at"] is None and created["metadata"] == {"team": "web"}

    listed = admin(gw, "GET", "/admin/keys").json()["data"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0] and secret not in admin(gw, "GET", "/admin/keys").text

    path = f"/admin/keys/{created['id']}"
    patched = admin(gw, "PATCH", path, json={"models": ["demo/echo"], "name": "web app"}).json()
    assert (patched["models"], patched["name"]) == (["demo/echo"], "web app")
    posted = admin(gw, "POST", path, json={"expires_at": "2099-01-01T00:00:00Z"}).json()
    assert posted["expires_at"] == "2099-01-01T00:00:00Z"
    assert admin(gw, "GET", path).json()["models"] == ["demo/echo"]

    with sdk(gw, secret) as client:
        assert client.chat.completions.create(model="demo/echo", messages=USER).choices
        revoked = admin(gw, "DELETE", path).json()
        assert revoked["revoked"] is True and revoked["revoked_at"]
        with pytest.raises(openai.AuthenticationError) as refused:
            client.chat.completions.create(model="demo/echo", messages=USER)
    assert refused.value.code == "invalid_api_key"
    assert "revoked" in refused.value.message


def test_admin_api_needs_the_master_key(demo_gateway):
    secret = str(create(demo_gateway)["key"])
    forbidden = {
        "error": {
            "code": "forbidden",
            "message": "This endpoint needs the master key; virtual keys may only call models.",
            "field": None,
        }
    }
    for method, path in (("GET", "/admin/keys"), ("POST", "/admin/keys"), ("GET", "/admin/health")):
        r = admin(demo_gateway, method, path, key=secret, json={"name": "x"})
        assert (r.status_code, r.json()) == (403, forbidden)
    r = httpx.get(f"{demo_gateway.url}/admin/keys")
    assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_api_key")
    r = admin(demo_gateway, "GET", "/admin/keys", key="sk-rt-not-a-key")
    assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_api_key")


def test_an_expiry_in_the_past_is_refused_naming_the_field(demo_gateway):
    r = admin(
        demo_gateway,
        "POST",
        "/admin/keys",
        json={"name": "x", "expires_at": "2001-01-01T00:00:00Z"},
    )
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "invalid_value",
        "message": "expires_at 2001-01-01T00:00:00Z is in the past: give a future time, or none"
        " for a key that never expires (revoke a key to end it now).",
        "field": "expires_at",
    }
    key_id = create(demo_gateway)["id"]
    patched = admin(
        demo_gateway, "PATCH", f"/admin/keys/{key_id}", json={"expires_at": "2001-01-01T00:00:00Z"}
    )
    assert (patched.status_code, patched.json()["error"]["field"]) == (400, "expires_at")
    assert admin(demo_gateway, "GET", "/admin/keys").json()["data"][0]["expires_at"] is None


class CountingStore(SqliteKeyStore):
    """The real SQLite store, counting the last-used writes it receives."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.writes: list[dict[str, float]] = []

    async def touch(self, uses: dict[str, float]) -> None:
        self.writes.append(dict(uses))
        await super().touch(uses)


async def test_last_use_is_written_at_most_once_a_minute_off_the_request_path(tmp_path):
    store = await CountingStore(str(tmp_path / "keys.db")).open()
    secret, record = await store.create(NewKey(name="web"))
    assert record.last_used_at is None
    auth = KeyAuth(store, ttl=60)
    before = time.time()
    for _ in range(50):
        assert await auth.lookup(secret) is not None
    await auth.close()
    assert len(store.writes) == 1 and list(store.writes[0]) == [record.id]
    used = (await store.get(record.id)).last_used_at
    assert used is not None and before <= used <= time.time()
    eager = KeyAuth(store, ttl=60, touch_every=0.0)
    await eager.lookup(secret)
    await eager.close()
    assert len(store.writes) == 2
    await store.close()


def test_keys_show_when_they_were_last_used(demo_gateway, tmp_path):
    created = create(demo_gateway)
    assert created["last_used_at"] is None
    with sdk(demo_gateway, str(created["key"])) as client:
        client.chat.completions.create(model="demo/echo", messages=USER)
    deadline = time.monotonic() + 5
    while (seen := admin(demo_gateway, "GET", f"/admin/keys/{created['id']}").json())[
        "last_used_at"
    ] is None:
        assert time.monotonic() < deadline, "last use never recorded"
        time.sleep(0.02)
    assert seen["last_used_at"].startswith(time.strftime("%Y-%m-%d", time.gmtime()))
    listed = cli(tmp_path / "routing.toml", "list")
    assert listed.stdout.splitlines()[0].split() == [
        "ID",
        "PREFIX",
        "STATUS",
        "EXPIRES",
        "LAST",
        "USED",
        "MODELS",
        "NAME",
    ]
    assert seen["last_used_at"][:16] in listed.stdout.replace("T", "T")


def test_sqlite_file_from_before_last_use_is_migrated(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE api_keys (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, prefix TEXT NOT"
        " NULL, name TEXT NOT NULL, models TEXT NOT NULL, expires_at REAL, metadata TEXT NOT"
        " NULL, created_at REAL NOT NULL, revoked_at REAL)"
    )
    old.execute(
        "INSERT INTO api_keys VALUES ('key_1', 'h', 'sk-rt-abcdef', 'old', '[\"*\"]', NULL,"
        " '{}', 1.0, NULL)"
    )
    old.commit()
    old.close()
    db = KeyDb(str(path))
    assert [(r.id, r.last_used_at) for r in db.list()] == [("key_1", None)]
    db.touch({"key_1": 5.0})
    assert db.get("key_1").last_used_at == 5.0
    db.close()


@pytest.mark.parametrize("surface", ["/v1/chat/completions", "/api/v1/completions"])
def test_the_master_key_is_compared_exactly(demo_gateway, surface):
    body = {"messages": USER, "model": "demo/echo", "models": ["demo/echo"]}
    if surface == "/v1/chat/completions":
        body.pop("models")
    else:
        body.pop("model")
    url = demo_gateway.url + surface  # raw bytes in the header: below what `kit.post` sends
    bearer = f"Bearer {MASTER_KEY}".encode()
    for suffix in (b"\xa0", "\u00a0".encode(), b"x", "\u2003".encode()):
        r = httpx.post(url, json=body, headers={"Authorization": bearer + suffix})
        assert r.status_code == 401, suffix
    assert httpx.post(url, json=body, headers={"Authorization": bearer}).status_code == 200


def test_only_http_optional_whitespace_is_trimmed_from_a_key():
    # (h11 will not even send trailing whitespace, so this is checked below the HTTP layer)
    assert [bearer(f"Bearer {k}") for k in ("k", " k", "k ", "\tk\t", " \t k \t ")] == ["k"] * 5
    for other in ("k\u00a0", "\u00a0k", "k\u2003", "k\x0b", "k\x0c", "k\n", "k\u3000"):
        assert bearer(f"Bearer {other}") == other
    assert bearer("Bearer ") is None and bearer("Basic k") is None and bearer(None) is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": " "}, "name"),
        ({"name": "x", "models": []}, "models"),
        ({"name": "x", "models": ["ok", ""]}, "models[1]"),
        ({"name": "x", "expires_at": "soon"}, "expires_at"),
        ({"name": "x", "colour": "red"}, "colour"),
    ],
)
def test_admin_api_validates_with_the_field(demo_gateway, body, field):
    r = admin(demo_gateway, "POST", "/admin/keys", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["field"] == field


def test_unknown_key_id_is_404(demo_gateway):
    for method in ("GET", "PATCH", "DELETE"):
        r = admin(demo_gateway, method, "/admin/keys/key_nope", json={})
        assert (r.status_code, r.json()["error"]["code"]) == (404, "key_not_found")


# ---- keys in use --------------------------------------------------------------------------


def test_a_key_sees_a_forbidden_model_as_not_found(demo_gateway):
    secret = str(create(demo_gateway, models=["demo/echo", "demo/embed"])["key"])
    with sdk(demo_gateway, secret) as client:
        assert client.chat.completions.create(model="demo/echo", messages=USER).choices
        assert client.embeddings.create(model="demo/embed", input="x").data
        with pytest.raises(openai.NotFoundError) as forbidden:
            client.images.generate(model="demo/image", prompt="x")
        with pytest.raises(openai.NotFoundError) as unknown:
            client.images.generate(model="demo/nothing-like-it", prompt="x")
        with pytest.raises(openai.NotFoundError) as forbidden_chat:
            client.chat.completions.create(model="openai/gpt-4o-mini", messages=USER)
    assert forbidden.value.body == {
        **unknown.value.body,  # type: ignore[dict-item]
        "message": "The model `demo/image` does not exist or is not available.",
    }
    assert (forbidden_chat.value.code, forbidden_chat.value.param) == ("model_not_found", "model")


def test_iron_labs_surface_honours_the_same_keys(demo_gateway):
    secret = str(create(demo_gateway, models=["demo/echo"])["key"])
    headers = {"Authorization": f"Bearer {secret}"}
    ok = post(
        demo_gateway, COMPLETIONS, {"messages": USER, "models": ["demo/echo"]}, headers=headers
    )
    assert ok.status_code == 200 and ok.json()["provider"] == "demo"
    body = {"messages": USER, "models": ["openai/gpt-4o"]}
    denied = post(demo_gateway, COMPLETIONS, body, headers=headers)
    assert (denied.status_code, denied.json()["error"]["code"]) == (404, "model_not_found")


def test_expired_key_is_refused(demo_gateway):
    until = int(time.time() + 1.5)  # whole seconds: an expiry in the past is refused
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until))
    secret = str(create(demo_gateway, expires_at=soon)["key"])
    time.sleep(max(0.0, until - time.time()) + 0.05)
    with sdk(demo_gateway, secret) as client, pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="demo/echo", messages=USER)
    assert "expired" in refused.value.message


def test_keys_never_reach_metrics(demo_gateway):
    created = create(demo_gateway, name="secret-team")
    with sdk(demo_gateway, str(created["key"])) as client:
        client.chat.completions.create(model="demo/echo", messages=USER)
    exposition = httpx.get(f"{demo_gateway.url}/metrics").text
    assert str(created["key"]) not in exposition and str(created["prefix"]) not in exposition
    assert "secret-team" not in exposition


# ---- the CLI ------------------------------------------------------------------------------


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", "keys", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_administers_the_gateways_database(demo_gateway, tmp_path):
    config = tmp_path / "routing.toml"
    made = cli(config, "create", "--name", "cli app", "--models", "demo/*", "--json")
    assert made.returncode == 0, made.stderr
    created = msgspec.json.decode(made.stdout)
    secret = created["key"]
    with sdk(demo_gateway, secret) as client:
        assert client.chat.completions.create(model="demo/echo", messages=USER).choices

        listed = cli(config, "list")
        assert listed.returncode == 0 and created["id"] in listed.stdout
        assert created["prefix"] in listed.stdout and secret not in listed.stdout

        human = cli(config, "create", "--name", "other", "--expires-in", "30d")
        assert "shown only this once" in human.stdout and "sk-rt-" in human.stdout

        updated = cli(config, "update", created["id"], "--models", "demo/embed", "--json")
        assert msgspec.json.decode(updated.stdout)["models"] == ["demo/embed"]
        revoked = cli(config, "revoke", created["id"], "--json")
        assert msgspec.json.decode(revoked.stdout)["revoked"] is True

        demo_gateway.runtime.key_auth.forget()  # another process changed it: skip the 5 s cache
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="demo/echo", messages=USER)
    missing = cli(config, "revoke", "key_nope")
    assert missing.returncode == 1 and "No key with id key_nope" in missing.stderr
    bad = cli(config, "create", "--name", "x", "--expires-in", "soon")
    assert bad.returncode == 1 and "--expires-in" in bad.stderr


# ---- PostgreSQL ---------------------------------------------------------------------------

PG_URL = os.environ.get("ROUTER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def _pg(statement: str) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_URL, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
    return True


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema in the test server, dropped afterwards."""
    schema = f"router_keys_{uuid.uuid4().hex[:12]}"
    need(asyncio.run(_pg(f"CREATE SCHEMA {schema}")), f"PostgreSQL not reachable at {PG_URL}")
    try:
        yield f"{PG_URL}?search_path={schema}"
    finally:
        asyncio.run(_pg(f"DROP SCHEMA {schema} CASCADE"))


@pytest.mark.postgres
async def test_postgres_store_round_trip(pg_url):
    store = await open_keys(pg_url)
    secret, record = await store.create(NewKey(name="web", models=("openai/*",)))
    assert await store.by_hash(hash_key(secret)) == record
    assert await store.by_hash(hash_key(secret + "x")) is None
    changed = await store.update(record.id, KeyChanges(models=("demo/*",), metadata={"a": 1}))
    assert (changed.models, changed.metadata) == (("demo/*",), {"a": 1})
    assert (await store.revoke(record.id)).revoked
    assert [r.id for r in await store.list()] == [record.id]
    with pytest.raises(NotFoundError):
        await store.get("key_nope")
    await store.close()


@pytest.mark.postgres
def test_postgres_keys_serve_the_gateway_and_the_cli(pg_url, tmp_path):
    config = tmp_path / "routing.toml"
    providers = Path(__file__).resolve().parent.parent / "providers"
    config.write_text(
        f'providers_dir = "{providers}"\n[storage]\ndatabase = "{pg_url}"\n' + FAST_POLICY
    )
    made = cli(config, "create", "--name", "pg", "--models", "demo/echo", "--json")
    assert made.returncode == 0, made.stderr
    secret = msgspec.json.decode(made.stdout)["key"]
    with running_gateway(config, {}) as gw, sdk(gw, secret) as client:
        assert client.chat.completions.create(model="demo/echo", messages=USER).choices
        listed = admin(gw, "GET", "/admin/keys").json()["data"]
        assert [k["name"] for k in listed] == ["pg"]
