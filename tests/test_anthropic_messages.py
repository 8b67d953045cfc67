"""The Anthropic Messages surface with the official `anthropic` SDK as the client, a strict
fake Anthropic upstream (unknown fields and foreign signatures refused) and a fake OpenAI
upstream for the translation path: exact bodies, headers, usage, costs and event order."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import msgspec
import pytest

from fakes import FakeUpstream, Fault, Usage
from fakes.anthropic_strict import SIGNATURE, stream_problem
from gateway_harness import MASTER_KEY, Gateway, running_gateway, write_config
from kit import attempts, post, sse

MODEL = "claude-sonnet-4-5-20250929"  # $3 in, $15 out, $0.30 cache read, $3.75 cache write
OTHER = "claude-sonnet-4-5"  # for tests that open a circuit: not MODEL's
PROVIDER_KEY = "sk-ant-provider"
WEATHER = {
    "name": "weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


class Env:
    def __init__(self, ant: FakeUpstream, oai: FakeUpstream, gw: Gateway) -> None:
        self.ant, self.oai, self.gw = ant, oai, gw
        self.client = anthropic.Anthropic(
            base_url=gw.url, api_key=MASTER_KEY, max_retries=0, timeout=20
        )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    folder: Path = tmp_path_factory.mktemp("anthropic-surface")
    with FakeUpstream("anthropic") as ant, FakeUpstream("openai") as oai:
        keys = {
            "ANTHROPIC_BASE_URL": ant.url,
            "ANTHROPIC_API_KEY": PROVIDER_KEY,
            "OPENAI_BASE_URL": oai.url,
            "OPENAI_API_KEY": "sk-openai-provider",
        }
        with running_gateway(write_config(folder), keys) as gw:
            yield Env(ant, oai, gw)


@pytest.fixture
def e(env: Env) -> Env:
    env.ant.reset()
    env.oai.reset()
    return env


def spent(e: Env, model: str, provider: str = "anthropic") -> Decimal:
    """`router_cost_usd` of one target, from the gateway's /metrics."""
    text = httpx.get(e.gw.url + "/metrics").text
    line = f'router_cost_usd_total{{model="{model}",provider="{provider}"}} '
    found = [row[len(line) :] for row in text.splitlines() if row.startswith(line)]
    return Decimal(found[0]) if found else Decimal(0)


ANTHROPIC = {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"}


# ---- native -----------------------------------------------------------------------------------


def test_create_goes_natively_and_costs_every_token_kind(e: Env) -> None:
    usage = Usage(prompt=100, completion=5, cached=60, cache_write=20)
    e.ant.script(MODEL, Fault.ok(text="Olá!", usage=usage))
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    before = spent(e, MODEL)
    raw = e.client.messages.with_raw_response.create(
        model=MODEL,
        max_tokens=100,
        system=system,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "Say hi in Portuguese"}],
        metadata={"user_id": "u-1"},
        extra_body={"top_k": 5},
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )
    message = raw.parse()
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Olá!"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.model == MODEL
    assert (message.usage.input_tokens, message.usage.output_tokens) == (20, 5)
    assert message.usage.cache_read_input_tokens == 60
    assert message.usage.cache_creation_input_tokens == 20
    # 20 x 3 + 60 x 0.30 + 20 x 3.75 + 5 x 15 = 228 per million
    assert Decimal(raw.headers["x-router-cost"]) == Decimal("0.000228")
    assert spent(e, MODEL) - before == Decimal("0.000228")
    assert attempts(raw) == [(f"anthropic/{MODEL}", "ok", "200")]
    assert "x-router-dropped" not in raw.headers
    (seen,) = e.ant.seen
    assert seen.body == {
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Say hi in Portuguese"}],
        "model": MODEL,
        "system": system,
        "metadata": {"user_id": "u-1"},
        "top_k": 5,
        "stream": True,  # the gateway reads every answer as a stream
    }
    assert seen.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert seen.headers["anthropic-version"] == raw.http_request.headers["anthropic-version"]
    assert seen.headers["x-api-key"] == PROVIDER_KEY


def test_bearer_auth_and_beta_query(e: Env) -> None:
    e.ant.script(MODEL, Fault.ok(text="Hi"))
    client = anthropic.Anthropic(base_url=e.gw.url, auth_token=MASTER_KEY, max_retries=0)
    message = client.beta.messages.create(
        model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].text == "Hi"  # type: ignore[union-attr]
    assert e.ant.seen[0].path == "/v1/messages"


def test_stream_with_thinking_and_tools_round_trips_the_signature(e: Env) -> None:
    usage = Usage(prompt=50, completion=30)
    e.ant.script(
        MODEL,
        Fault.ok(
            reasoning="I should look it up", tool_call=("weather", {"city": "Lisbon"}), usage=usage
        ),
        Fault.ok(text="Sunny in Lisbon."),
    )
    ask = [{"role": "user", "content": "Weather in Lisbon?"}]
    thinking = {"type": "enabled", "budget_tokens": 2000}
    before = spent(e, MODEL)
    with e.client.messages.stream(
        model=MODEL,
        max_tokens=4000,
        messages=ask,
        tools=[WEATHER],
        thinking=thinking,  # type: ignore[arg-type]
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "tool_use"]
    think, use = final.content
    assert think.thinking == "I should look it up"  # type: ignore[union-attr]
    assert think.signature == SIGNATURE  # type: ignore[union-attr]
    assert (use.name, use.input) == ("weather", {"city": "Lisbon"})  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (50, 30)
    assert spent(e, MODEL) - before == Decimal("0.0006")  # 50 x 3 + 30 x 15 per million

    history = [
        *ask,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "22C, sunny"}],  # type: ignore[union-attr]
        },
    ]
    again = e.client.messages.create(
        model=MODEL,
        max_tokens=4000,
        messages=history,
        tools=[WEATHER],
        thinking=thinking,  # type: ignore[arg-type]
    )
    assert again.content[0].text == "Sunny in Lisbon."  # type: ignore[union-attr]
    sent = e.ant.seen[1].body["messages"]
    assert sent[1]["content"][0] == {
        "type": "thinking",
        "thinking": "I should look it up",
        "signature": SIGNATURE,
    }
    assert sent[2]["content"][0]["content"] == "22C, sunny"


def test_event_sequence_is_anthropics(e: Env) -> None:
    e.ant.script(MODEL, Fault.ok(reasoning="hmm", text="One two three"))
    body = {
        "model": MODEL,
        "max_tokens": 3000,
        "stream": True,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "count"}],
    }
    response = post(e.gw, "/v1/messages", body, headers=ANTHROPIC)
    assert response.status_code == 200
    got = [(x.event, x.data) for x in sse(response)]
    assert stream_problem(got) is None
    start, delta, stop = "content_block_start", "content_block_delta", "content_block_stop"
    assert [n for n, _ in got] == [
        *("message_start", "ping"),
        *(start, delta, delta, stop),  # the thinking, then its signature
        *(start, delta, delta, delta, stop),  # the text, a word a delta
        *("message_delta", "message_stop"),
    ]
    deltas = [d["delta"]["type"] for n, d in got if n == "content_block_delta"]
    assert deltas == ["thinking_delta", "signature_delta"] + ["text_delta"] * 3
    assert got[-2][1]["usage"]["output_tokens"] == 4
    assert attempts(response) == [(f"anthropic/{MODEL}", "ok", "200")]


def test_a_stream_broken_beyond_rescue_ends_with_an_error_event(e: Env) -> None:
    model = "claude-opus-4-5-20251101"  # its own circuit
    e.ant.script(model, Fault.stream_error(2, Fault.ok(text="one two three four", chunk_delay=0.2)))
    e.ant.always(model, Fault.overloaded())
    body = {
        "model": model,
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    got = [(x.event, x.data) for x in sse(post(e.gw, "/v1/messages", body, headers=ANTHROPIC))]
    assert stream_problem(got) is None
    assert [n for n, _ in got][-1] == "error"
    assert got[-1][1]["error"]["type"] == "overloaded_error"
    text = "".join(d["delta"]["text"] for n, d in got if n == "content_block_delta")
    assert text == "one two"  # " two" arrives in the same read as the error, or just before


# ---- translated -------------------------------------------------------------------------------


def test_translated_to_openai_drops_and_names(e: Env) -> None:
    e.oai.script("gpt-4o-mini", Fault.ok(tool_call=("weather", {"city": "Porto"})))
    body = {
        "model": "openai/gpt-4o-mini",
        "max_tokens": 200,
        "system": "Be brief.",
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "u-1"},
        "tools": [WEATHER, {"type": "web_search_20250305", "name": "web_search"}],
        "messages": [
            {"role": "user", "content": "Weather in Lisbon?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "look", "signature": SIGNATURE},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "weather",
                        "input": {"city": "Lisbon"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "22C"},
                    {"type": "text", "text": "And Porto?"},
                ],
            },
        ],
    }
    beta = {"anthropic-beta": "interleaved-thinking-2025-05-14"}
    response = post(e.gw, "/v1/messages", body, headers=ANTHROPIC | beta)
    assert response.status_code == 200, response.text
    assert response.headers["x-router-dropped"] == "thinking, tools[1], metadata, anthropic-beta"
    answer = response.json()
    assert answer["content"] == [
        {"type": "tool_use", "id": "call_fake_0", "name": "weather", "input": {"city": "Porto"}}
    ]
    assert answer["stop_reason"] == "tool_use"
    sent = e.oai.seen[0].body
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool", "user"]
    assert sent["messages"][2]["tool_calls"][0]["function"] == {
        "name": "weather",
        "arguments": '{"city":"Lisbon"}',
    }
    assert sent["messages"][3] == {"role": "tool", "content": "22C", "tool_call_id": "toolu_1"}
    assert [t["function"]["name"] for t in sent["tools"]] == ["weather"]


def test_fallback_from_overloaded_anthropic_to_openai(e: Env) -> None:
    e.ant.always(OTHER, Fault.overloaded())
    e.oai.script("gpt-4o-mini", Fault.ok(text="Olá from OpenAI", usage=(12, 4)))
    client = anthropic.Anthropic(
        base_url=e.gw.url,
        api_key=MASTER_KEY,
        max_retries=0,
        default_headers={"x-router-fallback-models": "openai/gpt-4o-mini"},
    )
    raw = client.messages.with_raw_response.create(
        model=OTHER,
        max_tokens=50,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "hi"}],
    )
    message = raw.parse()
    assert message.content[0].text == "Olá from OpenAI"  # type: ignore[union-attr]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 4)
    assert attempts(raw) == [(f"anthropic/{OTHER}", "overloaded", "529")] * 3 + [
        ("openai/gpt-4o-mini", "ok", "200")
    ]
    assert raw.headers["x-router-dropped"] == "thinking"
    assert [s.outcome for s in e.ant.seen] == ["overloaded"] * 3


def test_every_target_overloaded_is_529(e: Env) -> None:
    e.ant.always("claude-haiku-4-5", Fault.overloaded())  # a model of its own: its own circuit
    with pytest.raises(anthropic.APIStatusError) as caught:
        e.client.messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    error = caught.value
    assert error.status_code == 529
    assert error.body == {
        "type": "error",
        "error": {
            "type": "overloaded_error",
            "message": "Upstream provider error (anthropic): Overloaded",
        },
    }
    assert attempts(error.response) == [("anthropic/claude-haiku-4-5", "overloaded", "529")] * 3


@pytest.mark.parametrize(
    ("headers", "body", "status", "kind"),
    [
        ({"x-api-key": "sk-wrong"}, {}, 401, "authentication_error"),
        ({}, {"model": "claude-nonesuch-9"}, 404, "not_found_error"),
        ({}, {"max_tokens": None}, 400, "invalid_request_error"),
    ],
)
def test_errors_in_anthropics_shape(
    e: Env, headers: dict[str, str], body: dict[str, Any], status: int, kind: str
) -> None:
    base = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    merged = {k: v for k, v in (base | body).items() if v is not None}
    response = post(e.gw, "/v1/messages", merged, headers=ANTHROPIC | headers)
    assert response.status_code == status
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == kind
    assert response.headers["x-router-attempts"] == ""  # refused before any attempt
    assert e.ant.seen == []


def test_forcing_a_server_tool_on_a_translated_target_is_refused(e: Env) -> None:
    body = {
        "model": "openai/gpt-4o-mini",
        "max_tokens": 5,
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "tool_choice": {"type": "tool", "name": "web_search"},
        "messages": [{"role": "user", "content": "x"}],
    }
    response = post(e.gw, "/v1/messages", body, headers=ANTHROPIC)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "tool_choice: a `tool_choice` forcing the server tool `web_search` cannot be translated"
        " for openai/gpt-4o-mini, which does not speak Anthropic Messages."
    )
    assert e.oai.seen == []


# ---- count_tokens, models, the fallback header elsewhere ---------------------------------


def test_count_tokens_native_and_estimated(e: Env) -> None:
    messages = [{"role": "user", "content": "How many tokens is this?"}]
    native = e.client.messages.count_tokens(model=MODEL, messages=messages)  # type: ignore[arg-type]
    assert native.input_tokens == len(msgspec.json.encode(messages)) // 4
    assert e.ant.seen[0].path == "/v1/messages/count_tokens"
    body = {"model": "openai/gpt-4o-mini", "messages": messages}
    response = post(e.gw, "/v1/messages/count_tokens", body, headers=ANTHROPIC)
    assert response.json() == {"input_tokens": (len("How many tokens is this?") + 3) // 4 + 4}
    assert response.headers["x-router-estimated"] == "true"
    assert e.oai.seen == []


def test_models_in_anthropics_shape(e: Env) -> None:
    page = e.client.models.list(limit=1000)
    models = list(page)  # the SDK follows has_more/last_id: the catalog lists > 1000 chat models
    ids = [m.id for m in models]
    assert len(ids) > 1000 and len(set(ids)) == len(ids)
    for name in ("claude-opus-4-8", "claude-sonnet-4-6", "claude-haiku-4-5-20251001"):
        assert name in ids
    assert all(m.type == "model" for m in models)
    first = httpx.get(
        e.gw.url + "/v1/models?limit=2",
        headers=ANTHROPIC,
    ).json()
    assert [m["id"] for m in first["data"]] == ids[:2]
    assert (first["has_more"], first["first_id"], first["last_id"]) == (True, ids[0], ids[1])


def test_fallback_header_on_the_openai_surface(e: Env) -> None:
    e.ant.always("claude-opus-4-7", Fault.status(400))
    e.oai.script("gpt-4o-mini", Fault.ok(text="fallback"))
    body = {"model": "anthropic/claude-opus-4-7", "messages": [{"role": "user", "content": "x"}]}
    fallback = {"x-router-fallback-models": "openai/gpt-4o-mini,,"}
    response = post(e.gw, "/v1/chat/completions", body, headers=e.gw.headers | fallback)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "fallback"
    assert response.json()["model"] == "openai/gpt-4o-mini"


def test_an_alias_of_claude_codes_model_falls_back_to_openai(tmp_path: Path) -> None:
    alias = '\n[aliases]\n"claude-opus-4-8" = ["anthropic/claude-opus-4-8", "openai/gpt-4o-mini"]\n'
    with FakeUpstream("anthropic") as ant, FakeUpstream("openai") as oai:
        ant.always("claude-opus-4-8", Fault.status(500))
        oai.script("gpt-4o-mini", Fault.ok(text="from the chain"))
        keys = {
            "ANTHROPIC_BASE_URL": ant.url,
            "ANTHROPIC_API_KEY": PROVIDER_KEY,
            "OPENAI_BASE_URL": oai.url,
            "OPENAI_API_KEY": "sk-openai-provider",
        }
        with running_gateway(write_config(tmp_path, alias), keys) as gw:
            client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0)
            message = client.messages.create(
                model="claude-opus-4-8", max_tokens=10, messages=[{"role": "user", "content": "x"}]
            )
    assert message.content[0].text == "from the chain"  # type: ignore[union-attr]
    assert [s.outcome for s in ant.seen] == ["status"] * 3
