"""The Azure OpenAI adapter against a loopback fake of Azure: deployment URLs, `api-version`,
the `api-key` header, the empty first stream chunk, and the recorded o4-mini traffic."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes import RECORDED, FakeUpstream, Fault
from fakes.cassettes import recorded
from gateway_harness import Gateway, behind_fake
from kit import PORTUGUESE, ask
from replay import answer, chat_request, costs, replay, run, target
from router.config import ModelInfo, Provider
from router.core.assemble import Assembler
from router.core.types import Finish, Target, TextDelta, ToolCall, Usage
from router.errors import Failure, UpstreamError
from router.protocols.azure import AzureChat

PROVIDER = """
protocol = "azure"
base_url = "http://127.0.0.1:9/openai"
api_key_env = "AZURE_API_KEY"
api_version = "{version}"
only_listed_models = true

[models."o4-mini"]
capabilities = ["reasoning", "tools"]
unsupported_params = ["max_tokens", "temperature", "top_p", "stop"]
upstream_name = "o4-mini-prod"
[models."o4-mini".prices]
input = "1.10"
output = "4.40"
cached_input = "0.275"
"""
DEPLOYMENT = "o4-mini-prod"


def gateway(
    tmp_path: Path, version: str = "2025-04-01-preview"
) -> AbstractContextManager[tuple[FakeUpstream, Gateway]]:
    providers = {"azure": PROVIDER.format(version=version)}
    return behind_fake(tmp_path, "azure", providers, {"AZURE_API_KEY": "azure-key"})


def complete(gw: Gateway, stream: bool, **extra: Any) -> httpx.Response:
    # o4-mini takes no temperature: the catalog keeps it out of the request
    extra = {"maxTokens": 4000, "temperature": 0.5, **extra}
    return ask(gw, ["azure/o4-mini"], stream=stream, messages=PORTUGUESE, **extra)


@pytest.mark.parametrize("stream", [False, True])
def test_recorded_answer_text_tokens_costs(tmp_path, stream):
    rec = RECORDED["azure"]
    with gateway(tmp_path) as (fake, gw):
        r = complete(gw, stream)
    assert r.status_code == 200, r.text
    text, usage = answer(r, stream)
    want = rec.stream_usage if stream else rec.usage
    assert text == ("Oi!" if stream else "Olá!")
    assert (want.completion, want.reasoning) == ((149, 128) if stream else (85, 64))
    assert usage == {
        "promptTokens": 19,
        "completionTokens": want.completion,
        "totalTokens": 19 + want.completion,
        "reasoningTokens": want.reasoning,
        "costs": costs("20.9e-6", f"{want.completion * 4.4:.1f}e-6"),
    }
    seen = fake.seen[0]
    assert seen.path == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
    assert seen.query == {"api-version": "2025-04-01-preview"}
    assert seen.headers["api-key"] == "azure-key"
    assert "authorization" not in seen.headers
    body = {
        "model": DEPLOYMENT,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant"},
            {"role": "user", "content": "Say hi in Portuguese"},
        ],
        "max_completion_tokens": 4000,
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    assert seen.body == body


def test_the_v1_route_takes_the_deployment_in_the_body(tmp_path):
    with gateway(tmp_path, version="v1") as (fake, gw):
        r = complete(gw, False)
    assert r.status_code == 200, r.text
    seen = fake.seen[0]
    assert (seen.path, seen.query, seen.model) == ("/openai/v1/chat/completions", {}, DEPLOYMENT)


async def test_first_stream_chunk_with_only_filter_results_yields_nothing():
    rec = recorded("TestAzureCommon/azure-o4-mini/simple_streaming")
    assert (
        b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter' in rec.body
    )
    with FakeUpstream("azure") as fake:
        fake.script(DEPLOYMENT, replay(rec))
        got = await run(AzureChat(), _on(fake), chat_request("Say hi in Portuguese"), True)
    assert got == [TextDelta("Oi"), TextDelta("!"), Finish("stop"), Usage(19, 149, 128)]


async def test_generated_tool_call_both_ways():
    with FakeUpstream("azure") as fake:
        fault = Fault.ok(tool_call=("weather", {"location": "Rome"}), usage=(30, 12))
        fake.script(DEPLOYMENT, fault, fault)
        where = _on(fake)
        for stream in (False, True):
            assembled = Assembler()
            assembled.add(await run(AzureChat(), where, chat_request("Weather in Rome?"), stream))
            assert assembled.tool_calls() == [
                ToolCall("call_fake_0", "weather", '{"location":"Rome"}')
            ]
            assert (assembled.finish, assembled.usage) == ("tool_calls", Usage(30, 12))


@pytest.mark.parametrize(
    ("fault", "failure", "status", "retry_after"),
    [
        (Fault.rate_limited(retry_after=1), Failure.RATE_LIMITED, 429, 1.0),
        (Fault.content_policy(), Failure.CONTENT_POLICY, 400, None),
        (Fault.invalid_key(), Failure.AUTH, 401, None),
        (Fault.context_length(), Failure.CONTEXT_LENGTH, 400, None),
        (Fault.overloaded(), Failure.OVERLOADED, 503, None),
    ],
)
async def test_errors_are_classified(fault, failure, status, retry_after):
    with FakeUpstream("azure") as fake:
        fake.script(DEPLOYMENT, fault)
        with pytest.raises(UpstreamError) as caught:
            await run(AzureChat(), _on(fake), chat_request("hi"), False)
    error = caught.value
    assert (error.failure, error.status, error.retry_after) == (failure, status, retry_after)


def _on(fake: FakeUpstream) -> Target:
    return target(fake, "azure", "o4-mini", upstream_name=DEPLOYMENT, api_version="2024-10-21")


def test_endpoints_are_built_once_per_deployment():
    codec = AzureChat()
    provider = Provider(
        name="azure",
        protocol="azure",
        base_url="https://res.openai.azure.com/openai",
        headers={"x-ms-client-request-id": "router"},
    )
    gpt = Target(provider, "gpt-4o", ModelInfo(upstream_name="gpt4o-eu"), "k")
    mini = Target(provider, "gpt-4o-mini", None, "k")
    first, again, other = (
        codec.build(gpt, chat_request("a"), False),
        codec.build(gpt, chat_request("b"), True),
        codec.build(mini, chat_request("c"), False),
    )
    assert first.headers is again.headers
    assert first.url == (
        "https://res.openai.azure.com/openai/deployments/gpt4o-eu/chat/completions"
        "?api-version=2024-10-21"  # the default api-version
    )
    assert other.url == (
        "https://res.openai.azure.com/openai/deployments/gpt-4o-mini/chat/completions"
        "?api-version=2024-10-21"
    )
    assert dict(first.headers) == {
        "Content-Type": "application/json",
        "x-ms-client-request-id": "router",
        "api-key": "k",
    }
