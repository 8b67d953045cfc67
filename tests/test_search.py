"""`search: true` end to end: each provider's native web search in its real wire shape, the
planner passing by models that cannot search, the gateway-run search (Tavily) shared by a
whole chain, sources and search costs on the surfaces."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from fakes.search import PAGES, TAVILY_KEY, FakeSearch
from gateway_harness import Gateway, running_gateway, write_config
from kit import COMPLETIONS, DONE, attempts, payloads, post

USER = [{"role": "user", "content": "What is the weather in Rome?"}]
CITED = [{"url": PAGES[1][0], "title": PAGES[1][1]}, {"url": PAGES[0][0], "title": PAGES[0][1]}]
TAVILY = '\n[search]\napi = "tavily"\nper_search = "0.008"\n'
MILLION = Decimal(1_000_000)
GROUNDING = (  # the gateway's preamble to the search results it puts in the system message
    "Web search results for the user's last message follow, numbered. Ground your answer in"
    " them where they are relevant and cite each source you use with its number in square"
    " brackets, like [1] or [2][3], right after the statement it supports.\n"
)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSearch]:
    with FakeSearch() as server:
        yield server


def _env(fake: FakeSearch) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": fake.origin + "/openai/v1",
        "ANTHROPIC_BASE_URL": fake.origin + "/anthropic",
        "GOOGLE_BASE_URL": fake.origin + "/gemini/v1beta",
        "TAVILY_BASE_URL": fake.origin + "/tavily",
        "OPENAI_API_KEY": "sk-o",
        "ANTHROPIC_API_KEY": "sk-a",
        "GEMINI_API_KEY": "g-key",
        "TAVILY_API_KEY": TAVILY_KEY,
    }


@pytest.fixture(scope="module")
def native(fake: FakeSearch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = write_config(tmp_path_factory.mktemp("native"))
    with running_gateway(config, _env(fake)) as gw:
        yield gw


@pytest.fixture(scope="module")
def grounded(fake: FakeSearch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = write_config(tmp_path_factory.mktemp("grounded"), TAVILY)
    with running_gateway(config, _env(fake)) as gw:
        yield gw


# (model, per search fee, input price, output price, prompt, completion)
NATIVE = [
    ("openai/gpt-4o-mini-search-preview", "0.025", "0.15", "0.60", 20, 8),
    ("anthropic/claude-haiku-4-5", "0.01", "1.00", "5.00", 30, 10),
    ("google/gemini-2.5-flash", "0.035", "0.30", "2.50", 12, 7),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("model", "fee", "inp", "out", "prompt", "made"), NATIVE)
def test_each_provider_searches_natively(native, fake, model, fee, inp, out, prompt, made, stream):
    fake.seen.clear()
    body = {"messages": USER, "models": [model], "search": True, "stream": stream}
    r = post(native, COMPLETIONS, body)
    assert r.status_code == 200, r.text
    if stream:
        *events, done = payloads(r, money=True)
        assert done == DONE
        assert [e["type"] for e in events[-2:]] == ["sources", "response"]
        assert events[-2]["sources"] == CITED
        assert {e["type"] for e in events[:-2]} == {"text"}
        answer = events[-1]
    else:
        answer = r.json(parse_float=Decimal)
    assert answer["message"]["content"][0]["text"] == "Rome is sunny and hot today."
    assert answer["sources"] == CITED
    usage = answer["usage"]
    assert usage["searches"] == 1
    tokens = (prompt * Decimal(inp) + made * Decimal(out)) / MILLION
    assert Decimal(usage["costs"]["search_cost"]) == Decimal(fee)
    assert Decimal(usage["costs"]["total_tokens_cost"]) == tokens + Decimal(fee)
    assert len(fake.seen) == 1  # one upstream request, searched by the provider itself


def test_the_search_models_refused_parameters_are_dropped_and_named(native, fake):
    fake.seen.clear()
    body = {"model": "openai/gpt-4o-mini-search-preview", "messages": USER}
    body |= {"temperature": 0.2, "top_p": 0.9, "web_search_options": {}}
    r = post(native, "/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    assert r.headers["x-router-dropped"] == "temperature, top_p"
    sent = fake.seen[0][1]
    assert sent["web_search_options"] == {} and "temperature" not in sent
    annotations = r.json()["choices"][0]["message"]["annotations"]
    assert [a["url_citation"]["url"] for a in annotations] == [PAGES[1][0], PAGES[0][0]]
    assert {a["type"] for a in annotations} == {"url_citation"}


def test_chat_completions_returns_annotations_whatever_provider_answered(native):
    body = {"model": "anthropic/claude-haiku-4-5", "messages": USER, "web_search_options": {}}
    r = post(native, "/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    message = r.json()["choices"][0]["message"]
    assert message["annotations"] == [
        {"type": "url_citation", "url_citation": c | {"start_index": 0, "end_index": 0}}
        for c in CITED
    ]
    stream = post(native, "/v1/chat/completions", body | {"stream": True})
    *chunks, done = payloads(stream, money=True)
    assert done == DONE
    found = [c for c in chunks if c["choices"] and "annotations" in c["choices"][0]["delta"]]
    assert len(found) == 1
    assert found[0]["choices"][0]["delta"]["annotations"] == message["annotations"]


def test_a_model_that_cannot_search_is_passed_by_for_one_that_can(native, fake):
    fake.seen.clear()
    models = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]
    r = post(native, COMPLETIONS, {"messages": USER, "models": models, "search": True})
    assert r.status_code == 200, r.text
    assert r.json()["provider"] == "anthropic"
    assert attempts(r) == [
        ("openai/gpt-4o-mini", "no_search", "-"),
        ("anthropic/claude-haiku-4-5", "ok", "200"),
    ]
    assert [path for path, _ in fake.seen] == ["/anthropic/v1/messages"]


def test_no_model_that_can_search_and_no_gateway_search_is_a_400(native, fake):
    fake.seen.clear()
    models = ["openai/gpt-4o-mini", "openai/gpt-4.1-mini"]
    r = post(native, COMPLETIONS, {"messages": USER, "models": models, "search": True})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "search_unavailable" and error["field"] == "search"
    assert error["message"] == (
        "Web search was asked for, but no model of the chain can search (openai/gpt-4o-mini,"
        " openai/gpt-4.1-mini), and no gateway search is configured: add a search-capable model"
        " (one whose provider file lists the `web_search` capability) or set up `[search]` in"
        " routing.toml."
    )
    assert fake.seen == []


@pytest.mark.parametrize("stream", [False, True])
def test_the_gateway_search_runs_once_and_serves_the_fallback(grounded, fake, stream):
    fake.seen.clear()
    fake.queries.clear()
    failing = "gpt-4.1-nano" if stream else "gpt-4o-mini"  # its own circuit for each run
    fake.fail = {failing}
    models = [f"openai/{failing}", "openai/gpt-4.1-mini"]
    try:
        body = {"messages": USER, "models": models, "search": True, "stream": stream}
        r = post(grounded, COMPLETIONS, body)
    finally:
        fake.fail = set()
    assert r.status_code == 200, r.text
    if stream:
        *_, answer, done = payloads(r, money=True)
        assert done == DONE
    else:
        answer = r.json(parse_float=Decimal)
    assert answer["model"] == "gpt-4.1-mini"
    assert answer["message"]["content"][0]["text"] == "It is hot [2], and sunny [1]."
    assert answer["sources"] == CITED
    assert fake.queries == ["What is the weather in Rome?"]  # one search for the whole chain
    asked = [b for path, b in fake.seen if path.startswith("/openai")]
    assert [b["model"] for b in asked] == [failing] * 3 + ["gpt-4.1-mini"]
    contexts = {b["messages"][0]["content"] for b in asked}
    results = [f"\n[{n}] {t}\n{u}\nAbout {t.lower()}.\n" for n, (u, t) in enumerate(PAGES, 1)]
    assert contexts == {GROUNDING + "".join(results)}  # the same for every target
    usage = answer["usage"]
    assert usage["searches"] == 1
    assert Decimal(usage["costs"]["search_cost"]) == Decimal("0.008")
    tokens = (20 * Decimal("0.40") + 8 * Decimal("1.60")) / MILLION
    assert Decimal(usage["costs"]["total_tokens_cost"]) == tokens + Decimal("0.008")


def test_a_native_searcher_does_not_use_the_gateway_search(grounded, fake):
    fake.queries.clear()
    r = post(
        grounded,
        COMPLETIONS,
        {"messages": USER, "models": ["google/gemini-2.5-flash"], "search": True},
    )
    assert r.status_code == 200, r.text
    assert r.json()["sources"] == CITED
    assert fake.queries == []


def test_a_search_api_without_its_key_fails_at_start_up(tmp_path: Path, fake):
    config = write_config(tmp_path, TAVILY)
    env = {k: v for k, v in _env(fake).items() if k != "TAVILY_API_KEY"}
    from router.config import load_settings
    from router.errors import ConfigError
    from router.runtime import Runtime

    with pytest.raises(ConfigError, match="set TAVILY_API_KEY"):
        Runtime(load_settings(config, env), env | {"ROUTER_MASTER_KEY": "k"}, "127.0.0.1")
