"""GET /v1/models and /v1/models/{id}: what the caller's key may use, through the SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from gateway_harness import MASTER_KEY, REPO
from kit import post
from openai_env import CLAUDE, Env, openai_env
from router.config import load_provider


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with openai_env(tmp_path) as e:
        yield e


def key(env: Env, *models: str) -> str:
    r = post(
        env.gw,
        "/admin/keys",
        {"name": "app", "models": list(models)},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
    )
    return str(r.json()["key"])


def test_master_key_lists_every_catalog_model_and_alias(env):
    models = {m.id: m for m in env.client().models.list()}
    for name, kind in [
        ("demo/echo", "chat"),
        ("demo/embed", "embedding"),
        ("demo/image", "image"),
        ("demo/speak", "speech"),
        ("demo/transcribe", "transcription"),
        ("openai/gpt-4o-mini", "chat"),
        ("openai/whisper-1", "transcription"),
        ("acme/tts-1", "speech"),
        (CLAUDE, "chat"),
        ("smart", "chat"),
        ("embed", "embedding"),
    ]:
        assert models[name].model_extra == {"type": kind}
    assert models["openai/gpt-4o-mini"].owned_by == "openai"
    assert models["smart"].owned_by == "router"
    assert all(m.object == "model" for m in models.values())
    # bare names are listed too, as served: by the first provider of routing.preference
    assert (models["gpt-4o-mini"].owned_by, models["gpt-4o-mini"].model_extra) == (
        "openai",
        {"type": "chat"},
    )
    assert (models["tts-1"].owned_by, models["tts-1"].model_extra) == ("openai", {"type": "speech"})
    order = {"ref": 0, "bare": 1, "alias": 2}  # provider/model ids, then bare names, then aliases
    kinds = [
        "alias" if m.owned_by == "router" else "ref" if i.startswith(f"{m.owned_by}/") else "bare"
        for i, m in models.items()
    ]
    assert kinds == sorted(kinds, key=order.__getitem__)


def test_a_key_lists_only_what_it_may_use(env):
    client = env.client(key(env, "openai/gpt-4o*", "demo/echo"))
    ids = [m.id for m in client.models.list()]
    assert "demo/echo" in ids and "openai/gpt-4o-mini" in ids and "openai/gpt-4o" in ids
    assert [i for i in ids if not i.startswith(("openai/gpt-4o", "gpt-4o"))] == [
        "demo/echo",
        "echo",  # the bare name of demo/echo
        "smart",
    ]
    catalog = load_provider(REPO / "providers" / "openai.toml", {}, frozenset()).models
    bare = sorted(m for m in catalog if m.startswith("gpt-4o"))  # openai is preferred for each
    assert [i for i in ids if i.startswith("gpt-4o")] == bare
    assert {"gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini", "gpt-4o-mini-tts"} < set(bare)
    assert "smart" in ids  # its chain starts with openai/gpt-4o-mini
    assert "embed" not in ids and "demo/embed" not in ids


def test_retrieve_by_any_name_or_404(env):
    client = env.client(key(env, "openai/*"))
    assert client.models.retrieve("openai/gpt-4o-mini").id == "openai/gpt-4o-mini"
    bare = client.models.retrieve("gpt-4o-mini")
    assert (bare.id, bare.owned_by) == ("gpt-4o-mini", "openai")
    assert client.models.retrieve("smart").owned_by == "router"
    for hidden in ("demo/echo", "nosuch/model", "gpt-9"):
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve(hidden)
        assert (missing.value.code, missing.value.param) == ("model_not_found", "model")
        assert missing.value.body == {
            "message": f"The model `{hidden}` does not exist or is not available.",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }


def test_models_need_a_key(env):
    r = httpx.get(f"{env.gw.url}/v1/models")
    assert r.status_code == 401
    assert r.json() == {
        "error": {
            "message": "Missing API key: send `Authorization: Bearer <key>`.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


def test_a_key_limited_to_a_provider_lists_its_models_as_the_master_key_does(env):
    demo_key = key(env, "demo/*")  # created through the admin API
    ids = [m.id for m in env.client(demo_key).models.list()]
    master = [m.id for m in env.client().models.list() if m.owned_by == "demo"]
    assert (
        ids
        == master
        == [
            "demo/echo",
            "demo/embed",
            "demo/image",
            "demo/speak",
            "demo/transcribe",
            "echo",
            "image",  # `embed` is an alias of this routing.toml, not demo/embed's bare name
            "speak",
            "transcribe",
        ]
    )
    assert env.client(demo_key).models.retrieve("demo/echo").owned_by == "demo"
