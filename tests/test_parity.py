"""OpenAI parameter parity on /v1/chat/completions, and the bugs a new user's trial found.

Every parameter of the Chat Completions spec is accepted: OpenAI-compatible targets receive
them unchanged (and answer `n` choices and `logprobs` in OpenAI's shape); other protocols get
the equivalent where one exists, else the parameter is dropped and named in `x-router-dropped`
or, where the provider file says "skip", the target is passed by with the reason in the trail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import APITimeoutError, InternalServerError, OpenAI

from fakes import FakeUpstream, Fault
from gateway_harness import MASTER_KEY, Gateway, free_port, running_gateway, write_config
from kit import DONE, attempts, payloads, post

ACME = """
protocol = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "ACME_API_KEY"
extra_params = ["top_k", "repetition_penalty"]

[models."local-chat"]
max_output_tokens = 1000
[models."local-chat".prices]
input = "1.00"
output = "2.00"

[models."local-embed"]
type = "embedding"
"""

STRICT = """
protocol = "anthropic"
base_url = "http://127.0.0.1:9"
api_key_env = "STRICT_API_KEY"
on_unsupported = "skip"

[models."claude-strict"]
"""

ROUTING = """
[aliases]
careful = ["strict/claude-strict", "acme/local-chat"]
"""

USER = [{"role": "user", "content": "Hello there"}]


GONE = """
protocol = "openai"
base_url = "http://127.0.0.1:9/v1"
"""


class Env:
    def __init__(
        self, gw: Gateway, acme: FakeUpstream, anthropic: FakeUpstream, gone_port: int
    ) -> None:
        self.gw, self.acme, self.anthropic = gw, acme, anthropic
        self.gone_port = gone_port

    def post(self, body: dict[str, object], **headers: str) -> httpx.Response:
        auth = {"authorization": f"Bearer {MASTER_KEY}", **headers}
        return post(self.gw, "/v1/chat/completions", body, headers=auth)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with FakeUpstream("openai") as acme, FakeUpstream("anthropic") as anthropic:
        config = write_config(
            tmp_path,
            ROUTING,
            providers={"acme": ACME, "strict": STRICT, "claude": CLAUDE, "gone": GONE},
        )
        gone = free_port()  # nothing listens there
        keys = {
            "ACME_API_KEY": "sk-acme",
            "ACME_BASE_URL": acme.url,
            "STRICT_API_KEY": "sk-strict",
            "STRICT_BASE_URL": anthropic.url,
            "CLAUDE_API_KEY": "sk-claude",
            "CLAUDE_BASE_URL": anthropic.url,
            "GONE_BASE_URL": f"http://127.0.0.1:{gone}/v1",
        }
        with running_gateway(config, keys) as gw:
            yield Env(gw, acme, anthropic, gone)


CLAUDE = """
protocol = "anthropic"
base_url = "http://127.0.0.1:9"
api_key_env = "CLAUDE_API_KEY"

[models."claude-any"]
"""

OPENAI_ONLY = {
    "presence_penalty": 0.5,
    "frequency_penalty": -0.5,
    "logit_bias": {"1234": -100},
    "service_tier": "flex",
    "prediction": {"type": "content", "content": "Hello"},
    "modalities": ["text"],
    "verbosity": "low",
    "metadata": {"team": "web"},
    "store": True,
    "prompt_cache_key": "k-1",
    "safety_identifier": "u-9",
}


def test_every_openai_parameter_reaches_an_openai_target_unchanged(env):
    env.acme.script("local-chat", Fault.ok("Hi."))
    r = env.post({"model": "acme/local-chat", "messages": USER, **OPENAI_ONLY})
    assert r.status_code == 200, r.text
    body = env.acme.seen_for("local-chat")[0].body
    assert {k: body[k] for k in OPENAI_ONLY} == OPENAI_ONLY
    assert "x-router-dropped" not in r.headers


def test_n_choices_and_logprobs_come_back_in_openais_shape(env):
    env.acme.script("local-chat", Fault.ok("one two"))
    r = env.post(
        {"model": "acme/local-chat", "messages": USER, "n": 2, "logprobs": True, "top_logprobs": 1}
    )
    assert r.status_code == 200, r.text
    sent = env.acme.seen_for("local-chat")[0].body
    assert (sent["n"], sent["logprobs"], sent["top_logprobs"]) == (2, True, 1)
    choices = r.json()["choices"]
    assert [(c["index"], c["message"]["content"]) for c in choices] == [
        (0, "one two"),
        (1, "one two #1"),
    ]
    first = choices[0]["logprobs"]["content"]
    assert [t["token"] for t in first] == ["one", " two"]
    assert first[0]["top_logprobs"] == [
        {"token": "one", "logprob": -0.25, "bytes": [111, 110, 101]}
    ]


def test_n_choices_and_logprobs_stream_through_the_sdk(env):
    env.acme.script("local-chat", Fault.ok("one two"))
    client = OpenAI(base_url=env.gw.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    with client:
        stream = client.chat.completions.create(
            model="acme/local-chat", messages=USER, n=2, logprobs=True, stream=True
        )
        texts: dict[int, str] = {}
        tokens: list[str] = []
        finishes: dict[int, str] = {}
        for chunk in stream:
            for c in chunk.choices:
                texts[c.index] = texts.get(c.index, "") + (c.delta.content or "")
                tokens += [t.token for t in (c.logprobs.content or [])] if c.logprobs else []
                if c.finish_reason:
                    finishes[c.index] = c.finish_reason
    assert texts == {0: "one two", 1: "one two #1"}
    assert tokens == ["one", " two", "one two #1"]
    assert finishes == {0: "stop", 1: "stop"}


def test_a_protocol_without_an_equivalent_drops_and_names_what_it_cannot_honour(env):
    env.anthropic.script("claude-any", Fault.ok("Fine."))
    r = env.post(
        {
            "model": "claude/claude-any",
            "messages": USER,
            "presence_penalty": 1,
            "metadata": {"team": "web"},
            "top_p": 0.5,
        }
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-router-dropped"] == "metadata, presence_penalty"
    sent = env.anthropic.seen_for("claude-any")[0].body
    assert sent["top_p"] == 0.5
    assert "presence_penalty" not in sent and "metadata" not in sent


def test_a_provider_set_to_skip_is_passed_by_with_the_reason_in_the_trail(env):
    env.acme.script("local-chat", Fault.ok("From acme."))
    r = env.post({"model": "careful", "messages": USER, "logit_bias": {"7": 5}})
    assert r.status_code == 200, r.text
    trail = r.headers["x-router-attempts"].split(", ")
    assert trail[0].startswith("strict/claude-strict unsupported")
    assert trail[1].startswith("acme/local-chat ok 200")
    assert env.anthropic.seen == []


def test_provider_extras_go_where_the_file_allows_and_are_refused_elsewhere(env):
    env.acme.script("local-chat", Fault.ok("ok"))
    r = env.post({"model": "acme/local-chat", "messages": USER, "top_k": 40, "min_p": 0.1})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "min_p"  # acme's file does not list it
    r = env.post({"model": "acme/local-chat", "messages": USER, "top_k": 40})
    assert r.status_code == 200, r.text
    assert env.acme.seen_for("local-chat")[0].body["top_k"] == 40
    r = env.post({"model": "claude/claude-any", "messages": USER, "repetition_penalty": 1.1})
    error = r.json()["error"]
    assert (r.status_code, error["code"], error["param"]) == (
        400,
        "unsupported_parameter",
        "repetition_penalty",
    )


def test_max_tokens_is_bounded_then_clamped_to_the_models_limit(env):
    r = env.post({"model": "acme/local-chat", "messages": USER, "max_tokens": 10**26})
    assert (r.status_code, r.json()["error"]["param"]) == (400, "max_tokens")
    env.acme.script("local-chat", Fault.ok("ok"))
    r = env.post({"model": "acme/local-chat", "messages": USER, "max_tokens": 50_000})
    assert r.status_code == 200
    assert env.acme.seen_for("local-chat")[0].body["max_tokens"] == 1000


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"model": "demo/echo\u0000", "messages": USER}, "invalid_value", "model"),
        (
            {"model": "demo/echo", "models": ["x\u001by"], "messages": USER},
            "invalid_value",
            "models[0]",
        ),
        ({"model": "acme/local-embed", "messages": USER}, "wrong_model_type", "model"),
        (
            {
                "model": "demo/echo",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}],
                    }
                ],
            },
            "invalid_image_url",
            "messages[0].content[0]",
        ),
    ],
)
def test_bad_values_get_a_400_naming_the_field(env, body, code, param):
    r = env.post(body)
    error = r.json()["error"]
    assert (r.status_code, error["code"], error["param"]) == (400, code, param)
    assert env.acme.seen == []


def test_a_model_name_with_nul_is_a_400_on_the_iron_labs_surface_too(env):
    r = post(
        env.gw,
        "/api/v1/completions",
        {"models": ["demo/echo\u0000"], "messages": USER},
    )
    assert (r.status_code, r.json()["error"]["field"]) == (400, "models[0]")


def test_the_sdks_read_timeout_bounds_a_non_streamed_answer(env):
    """The OpenAI SDK sends its timeout as `x-stainless-read-timeout`: the gateway stops
    waiting upstream when the client has given up."""
    seen: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [seen.append]})
    client = OpenAI(
        base_url=env.gw.url + "/v1",
        api_key=MASTER_KEY,
        max_retries=0,
        timeout=1.5,
        http_client=http,
    )
    env.acme.always("local-chat", Fault.ok("late", delay=4))
    with client, pytest.raises((APITimeoutError, InternalServerError)):
        client.chat.completions.create(model="acme/local-chat", messages=USER)
    assert seen[0].headers["x-stainless-read-timeout"] == "1.5"
    r = env.post(
        {"model": "acme/local-chat", "messages": USER}, **{"x-stainless-read-timeout": "1.5"}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (504, "upstream_timeout")
    assert r.elapsed.total_seconds() < 3.5


def test_errors_never_show_internal_hosts(env):
    """A provider that cannot be reached: the trail names the failure, never the address."""
    r = env.post({"model": "gone/anything", "messages": USER})
    assert r.status_code == 502, r.text
    assert r.json()["error"]["attempts"][0]["outcome"] == "connect_error"
    assert "127.0.0.1" not in r.text and str(env.gone_port) not in r.text


def test_retry_waits_are_in_the_trail(env):
    env.acme.script("local-chat", Fault.rate_limited(retry_after=0.3), Fault.ok("ok"))
    r = post(
        env.gw,
        "/api/v1/completions",
        {"models": ["acme/local-chat"], "messages": USER, "stream": False},
    )
    assert r.status_code == 200, r.text
    assert attempts(r) == [
        ("acme/local-chat", "rate_limited", "429"),
        ("acme/local-chat", "ok", "200"),
    ]
    retried = r.headers["x-router-attempts"].split(", ")[1]
    assert retried.endswith(" after 300ms")  # Retry-After: 0.3 s, exactly as asked


def test_embeddings_sizes_are_bounded(env):
    path = "/v1/embeddings"
    r = post(env.gw, path, {"model": "demo/embed", "input": "x", "dimensions": 100_000_000})
    assert (r.status_code, r.json()["error"]["param"]) == (400, "dimensions")
    r = post(env.gw, path, {"model": "demo/embed", "input": ["x"] * 5000})
    assert (r.status_code, r.json()["error"]["param"]) == (400, "input")


def test_a_stream_that_keeps_breaking_gets_at_most_three_rescue_attempts(env):
    env.acme.always("local-chat", Fault.cut(after_chunks=2, reply=Fault.ok("a b c d e f g h")))
    r = post(
        env.gw,
        "/api/v1/completions",
        {"models": ["acme/local-chat"], "messages": USER, "stream": True},
    )
    *_, last, done = payloads(r)
    error = last["error"]
    assert done == DONE and error["code"] == "stream_cut"
    assert len(env.acme.seen_for("local-chat")) == 4  # the first attempt and three rescues
    assert [a["outcome"] for a in error["attempts"]] == ["stream_cut"] * 4


def test_time_to_first_token_is_the_answering_attempts_own(env):
    """The per-provider TTFT histogram times the attempt that answered, not the wait and the
    failed attempts before it (the request-level `ttft` still counts from arrival)."""
    env.acme.script("local-chat", Fault.rate_limited(retry_after=0.8), Fault.ok("ok"))
    r = post(
        env.gw,
        "/api/v1/completions",
        {"models": ["acme/local-chat"], "messages": USER},
    )
    assert r.status_code == 200 and r.json()["ttft"] >= 800
    metrics = httpx.get(env.gw.url + "/metrics").text
    line = next(
        x for x in metrics.splitlines() if x.startswith('router_ttft_seconds_sum{provider="acme"}')
    )
    assert float(line.rsplit(" ", 1)[1]) < 0.5
