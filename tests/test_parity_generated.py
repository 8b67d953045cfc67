"""Generated OpenAI chat bodies (hypothesis): any mix of the documented parameters, at valid
values, is answered 200 and every parameter reaches an OpenAI-compatible upstream unchanged;
the same bodies with one value out of its documented range get a 400 naming that parameter.
Never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes import FakeUpstream, Fault
from gateway_harness import Gateway, running_gateway, write_config
from kit import post

ACME = """
protocol = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "ACME_API_KEY"

[models."chat-1"]
"""

# Each documented parameter with valid values (shared/specs/openai-openapi.yaml).
VALID = {
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0, 1),
    "presence_penalty": st.floats(-2, 2),
    "frequency_penalty": st.floats(-2, 2),
    "max_completion_tokens": st.integers(1, 4096),
    "seed": st.integers(-(2**31), 2**31),
    "n": st.integers(1, 4),
    "logprobs": st.booleans(),
    "top_logprobs": st.integers(0, 20),
    "logit_bias": st.dictionaries(
        st.integers(0, 50000).map(str), st.integers(-100, 100), max_size=3
    ),
    "stop": st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=4),
    "user": st.text(max_size=20),
    "store": st.booleans(),
    "metadata": st.dictionaries(
        st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.text(max_size=10), max_size=3
    ),
    "service_tier": st.sampled_from(["auto", "default", "flex", "priority"]),
    "parallel_tool_calls": st.booleans(),
    "reasoning_effort": st.sampled_from(["minimal", "low", "medium", "high"]),
    "verbosity": st.sampled_from(["low", "medium", "high"]),
    "prompt_cache_key": st.text(max_size=20),
    "safety_identifier": st.text(max_size=20),
    "modalities": st.just(["text"]),
    "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"}]),
}
# A value out of the documented range, per parameter that has one.
INVALID = {
    "temperature": st.floats(2.01, 10),
    "top_p": st.floats(1.01, 5),
    "presence_penalty": st.floats(2.01, 9),
    "frequency_penalty": st.floats(-9, -2.01),
    "max_completion_tokens": st.integers(-100, 0),
    "n": st.integers(129, 1000),
    "top_logprobs": st.integers(21, 100),
}


DEFAULTS: dict[str, object] = {"n": 1, "logprobs": False}


class Env:
    def __init__(self, gw: Gateway, fake: FakeUpstream) -> None:
        self.gw, self.fake = gw, fake

    def post(self, body: dict[str, object]) -> httpx.Response:
        return post(self.gw, "/v1/chat/completions", body)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp: Path = tmp_path_factory.mktemp("parity")
    with FakeUpstream("openai") as fake:
        config = write_config(tmp, "", providers={"acme": ACME})
        keys = {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url}
        fake.always("chat-1", Fault.ok("generated text"))  # generated: n choices when asked
        with running_gateway(config, keys) as gw:
            yield Env(gw, fake)


BASE = {"model": "acme/chat-1", "messages": [{"role": "user", "content": "hi"}]}
CHECKS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@CHECKS
@given(st.fixed_dictionaries({}, optional=VALID))
def test_valid_bodies_are_answered_and_every_parameter_reaches_the_upstream(env, params):
    before = len(env.fake.seen)
    r = env.post({**BASE, **params})
    assert r.status_code == 200, (params, r.text)
    assert r.headers.get("x-router-dropped") is None  # an OpenAI target honours them all
    sent = env.fake.seen[before].body
    for name, value in params.items():  # a default may be left out: the same request
        assert sent.get(name, DEFAULTS.get(name)) == value, name
    assert len(r.json()["choices"]) == params.get("n", 1)


@CHECKS
@given(st.sampled_from(sorted(INVALID)).flatmap(lambda p: st.tuples(st.just(p), INVALID[p])))
def test_a_value_out_of_range_is_a_400_naming_its_parameter(env, bad):
    name, value = bad
    before = len(env.fake.seen)
    r = env.post({**BASE, name: value})
    error = r.json()["error"]
    assert (r.status_code, error["code"], error["param"]) == (400, "invalid_value", name)
    assert len(env.fake.seen) == before  # refused before anything was sent
