"""The planner is pure: table-driven tests, no I/O."""

from __future__ import annotations

import pytest

from gateway_harness import write_config
from router.config import load_settings
from router.core.catalog import Catalog
from router.core.planner import chain, plan
from router.core.types import Asked
from router.errors import NotFoundError

EXTRA = """
[routing]
preference = ["openrouter", "openai"]
[aliases]
smart = ["openai/gpt-4o", "anthropic/claude-3-5-sonnet-20241022"]
"""


@pytest.fixture
def catalog(tmp_path):
    settings = load_settings(write_config(tmp_path, EXTRA), env={})
    keys = {"openai": "k", "anthropic": "k", "google": "k"}
    return Catalog(settings, keys)


def asked(models, fallbacks):
    return [Asked(n, f"models[{i}]") for i, n in enumerate(models)], [
        Asked(n, f"fallback_models[{i}]") for i, n in enumerate(fallbacks)
    ]


@pytest.mark.parametrize(
    ("models", "fallbacks", "expected"),
    [
        (["openai/gpt-4o"], [], ["openai/gpt-4o"]),
        (["gpt-4o-mini"], [], ["openai/gpt-4o-mini"]),
        (
            ["smart"],
            ["google/gemini-2.0-flash"],
            ["openai/gpt-4o", "anthropic/claude-3-5-sonnet-20241022", "google/gemini-2.0-flash"],
        ),
        (["openai/gpt-4o", "smart"], [], ["openai/gpt-4o", "anthropic/claude-3-5-sonnet-20241022"]),
        (["openai/unlisted-model"], [], ["openai/unlisted-model"]),
        (["echo"], [], ["demo/echo"]),
    ],
)
def test_chain(catalog, models, fallbacks, expected):
    assert [t.ref for t in chain(catalog, *asked(models, fallbacks))] == expected


@pytest.mark.parametrize(
    ("models", "fallbacks", "field"),
    [
        (["nope"], [], "models[0]"),
        (["gpt-4o"], ["x/y"], "fallback_models[0]"),
        (["azure/not-listed"], [], "models[0]"),
    ],
)
def test_unknown_names_fail_with_the_field(catalog, models, fallbacks, field):
    with pytest.raises(NotFoundError) as err:
        chain(catalog, *asked(models, fallbacks))
    assert err.value.field == field and err.value.code == "model_not_found"


def test_plan_skips_with_reasons(catalog):
    names = [
        "deepseek/deepseek-chat",
        "openai/gpt-4o",
        "anthropic/claude-3-5-sonnet-20241022",
        "google/gemini-2.0-flash",
    ]
    targets = chain(catalog, *asked(names, []))
    p = plan(targets, frozenset({"openai", "gemini"}), lambda ref: ref != "openai/gpt-4o", 10)
    assert [t.ref for t in p.targets] == ["google/gemini-2.0-flash"]
    assert [(a.provider, a.outcome, a.reason) for a in p.skipped] == [
        ("deepseek", "no_api_key", "no API key configured: set DEEPSEEK_API_KEY"),
        ("openai", "circuit_open", "circuit open after repeated failures"),
        ("anthropic", "unsupported", "protocol 'anthropic' is not available"),
    ]


def test_plan_skips_prompts_that_cannot_fit(catalog):
    targets = chain(catalog, *asked(["openai/gpt-4o"], []))
    p = plan(targets, frozenset({"openai"}), lambda ref: True, 200_000)
    assert p.targets == [] and p.skipped[0].outcome == "prompt_too_large"


def test_bare_name_prefers_a_configured_provider(tmp_path):
    settings = load_settings(write_config(tmp_path), env={})  # no routing.preference at all
    assert "gpt-4o" in settings.providers["azure"].models  # azure's template lists it too
    with_key = Catalog(settings, {"openai": "k"})
    assert [t.ref for t in chain(with_key, *asked(["gpt-4o"], []))] == ["openai/gpt-4o"]
    no_keys = Catalog(settings, {})
    assert [t.ref for t in chain(no_keys, *asked(["gpt-4o"], []))] == ["azure/gpt-4o"]


def test_a_forbidden_name_looks_exactly_like_an_unknown_one(catalog):
    def openai_only(ref: str, asked: str) -> bool:
        return ref.startswith("openai/")

    with pytest.raises(NotFoundError) as forbidden:
        names = ["openai/gpt-4o", "anthropic/claude-3-5-sonnet-20241022"]
        chain(catalog, *asked(names, []), openai_only)
    with pytest.raises(NotFoundError) as unknown:
        chain(catalog, *asked(["openai/gpt-4o", "anthropic/no-such-model-at-all"], []), openai_only)
    assert forbidden.value.field == unknown.value.field == "models[1]"
    assert forbidden.value.code == unknown.value.code == "model_not_found"
    # an alias keeps what the caller may use
    assert [t.ref for t in chain(catalog, *asked(["smart"], []), openai_only)] == ["openai/gpt-4o"]
