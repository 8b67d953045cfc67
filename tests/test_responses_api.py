"""`/v1/responses` with the official `openai` SDK: native to OpenAI's Responses API (the
strict fake), translated to Anthropic, stored and continued, streamed with the full lifecycle,
priced per token kind."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from openai import NotFoundError, OpenAI

from fakes import Fault
from fakes.openai_responses import RReply
from gateway_harness import MASTER_KEY
from kit import attempts, post
from responses_env import CLAUDE, GPT, check_lifecycle, responses_gateway, sse_events

CODEX_EXTRAS = {
    "include": ["reasoning.encrypted_content"],
    "store": False,
    "prompt_cache_key": "session-1",
    "tools": [
        {
            "type": "function",
            "name": "shell",
            "description": "Run a command",
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
        },
        {
            "type": "custom",
            "name": "apply_patch",
            "description": "Patch files",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
        },
        {"type": "web_search"},
    ],
}


def client(gw) -> OpenAI:  # type: ignore[no-untyped-def]
    return OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0)


def test_create_goes_natively_to_openai_with_everything_passed_through(tmp_path: Path) -> None:
    with responses_gateway(tmp_path) as (ups, gw):
        ups.openai.script(RReply(text="Olá!", usage=(1000, 200, 400, 50)))
        raw = client(gw).responses.with_raw_response.create(
            model=GPT,
            input="Say hi",
            instructions="Be brief",
            reasoning={"effort": "low"},
            extra_body=CODEX_EXTRAS,
        )
        response = raw.parse()
    assert response.output_text == "Olá!"
    assert response.status == "completed"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (1000, 200)
    assert response.usage.input_tokens_details.cached_tokens == 400
    assert response.usage.output_tokens_details.reasoning_tokens == 50
    sent = ups.openai.seen[0]
    assert sent == {
        "model": GPT,
        "input": "Say hi",
        "instructions": "Be brief",
        "reasoning": {"effort": "low"},
        "stream": False,
        **CODEX_EXTRAS,
    }
    assert "x-router-dropped" not in raw.headers
    # $5 / $30 / $0.50 cached per 1M: 600 fresh + 400 cached in, 200 out (reasoning at output)
    assert Decimal(raw.headers["x-router-cost"]) == Decimal("0.0092")
    assert attempts(raw) == [(f"openai/{GPT}", "ok", "200")]


def test_stream_function_call_then_previous_response_id(tmp_path: Path) -> None:
    with responses_gateway(tmp_path) as (ups, gw):
        ups.openai.script(
            RReply(call=("shell", '{"cmd":"ls"}'), reasoning="Listing", encrypted="enc-1"),
            RReply(text="Two files."),
        )
        sdk = client(gw)
        with sdk.responses.stream(
            model=GPT, input="What is here?", tools=[CODEX_EXTRAS["tools"][0]]
        ) as s:  # type: ignore[list-item]
            kinds = [e.type for e in s]
            first = s.get_final_response()
        calls = [o for o in first.output if o.type == "function_call"]
        assert [(c.name, c.arguments, c.call_id) for c in calls] == [
            ("shell", '{"cmd":"ls"}', "call_fake1")
        ]
        reasoning = [o for o in first.output if o.type == "reasoning"]
        assert [(r.summary[0].text, r.encrypted_content) for r in reasoning] == [
            ("Listing", "enc-1")
        ]
        assert kinds == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",  # the reasoning item
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",  # the function call
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
        second = sdk.responses.create(
            model=GPT,
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": "call_fake1", "output": "a b"}],
        )
        stored = sdk.responses.retrieve(second.id)
    assert second.output_text == "Two files." == stored.output_text
    continued = ups.openai.seen[1]
    assert "previous_response_id" not in continued
    assert [i.get("type", "message") for i in continued["input"]] == [
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
    ]
    assert continued["input"][2]["call_id"] == "call_fake1"
    assert continued["input"][1]["encrypted_content"] == "enc-1"


def test_get_delete_and_unknown_ids(tmp_path: Path) -> None:
    with responses_gateway(tmp_path) as (_ups, gw):
        sdk = client(gw)
        made = sdk.responses.create(model=GPT, input="hi")
        assert sdk.responses.retrieve(made.id).id == made.id
        gone = httpx.delete(f"{gw.url}/v1/responses/{made.id}", headers=gw.headers)
        assert gone.json() == {"id": made.id, "object": "response", "deleted": True}
        missing = httpx.get(f"{gw.url}/v1/responses/{made.id}", headers=gw.headers)
        with pytest.raises(NotFoundError):
            sdk.responses.create(model=GPT, input="again", previous_response_id=made.id)
        unstored = sdk.responses.create(model=GPT, input="hi", store=False)
        assert (
            httpx.get(f"{gw.url}/v1/responses/{unstored.id}", headers=gw.headers).status_code == 404
        )
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "message": f"Response with id '{made.id}' not found.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


def test_openai_429_falls_back_to_anthropic_through_translation(tmp_path: Path) -> None:
    with responses_gateway(tmp_path) as (ups, gw):
        ups.openai.script(*[RReply(status=429)] * 3)
        ups.anthropic.script(CLAUDE, Fault.ok(text="From Claude", usage=(100, 10)))
        body = {
            "model": "codex-chain",
            "input": [
                {"type": "message", "role": "developer", "content": "Use tools"},
                {"role": "user", "content": [{"type": "input_text", "text": "Patch it"}]},
            ],
            "instructions": "You are Codex",
            **CODEX_EXTRAS,
        }
        r = post(gw, "/v1/responses", body)
        sent = ups.anthropic.seen_for(CLAUDE)[0].body
    assert r.status_code == 200, r.text
    assert r.json()["output"][0]["content"][0]["text"] == "From Claude"
    assert r.headers["x-router-dropped"] == (
        "include, store, prompt_cache_key, tools[2] (web_search)"
    )
    assert attempts(r) == [(f"openai/{GPT}", "rate_limited", "429")] * 3 + [
        (f"anthropic/{CLAUDE}", "ok", "200")
    ]
    assert Decimal(r.headers["x-router-cost"]) == Decimal("0.00045")  # 100 x $3 + 10 x $15 / 1M
    assert [t["name"] for t in sent["tools"]] == ["shell", "apply_patch"]
    assert sent["tools"][1]["input_schema"]["properties"] == {
        "input": {"type": "string", "description": "The raw input for the tool."}
    }
    assert sent["system"] == [  # the instructions first, then the developer message
        {"type": "text", "text": "You are Codex"},
        {"type": "text", "text": "Use tools"},
    ]


def test_custom_tool_call_from_anthropic_renders_as_custom(tmp_path: Path) -> None:
    with responses_gateway(tmp_path) as (ups, gw):
        ups.anthropic.script(CLAUDE, Fault.ok(tool_call=("apply_patch", {"input": "*** Begin"})))
        body = {
            "model": f"anthropic/{CLAUDE}",
            "input": "patch",
            "stream": True,
            "tools": CODEX_EXTRAS["tools"][:2],
        }
        r = post(gw, "/v1/responses", body)
    events = sse_events(r.text)
    check_lifecycle(events)
    final = events[-1]["response"]
    assert [(o["type"], o["name"], o["input"]) for o in final["output"]] == [
        ("custom_tool_call", "apply_patch", "*** Begin")
    ]
    assert final["usage"] == {  # the fake's default for a bare tool call: 10 in, 1 out
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 1,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 11,
    }


def test_forced_builtin_tool_is_a_400_for_a_translated_target(tmp_path: Path) -> None:
    with responses_gateway(tmp_path) as (ups, gw):
        body = {
            "model": "codex-chain",
            "input": "search",
            "tools": [{"type": "web_search"}],
            "tool_choice": {"type": "web_search"},
        }
        r = post(gw, "/v1/responses", body)
        unknown = post(gw, "/v1/responses", {"model": GPT, "input": "x", "n": 2})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "tool_choice"
    assert r.json()["error"]["message"] == (
        f"`tool_choice` cannot be sent to anthropic/{CLAUDE}: it forces the built-in tool"
        " web_search."
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == "Unknown parameter: 'n'."
    assert ups.openai.seen == []


def test_stream_broken_beyond_rescue_ends_with_response_failed(tmp_path: Path) -> None:
    with responses_gateway(tmp_path) as (ups, gw):
        ups.anthropic.script(CLAUDE, *[Fault.cut(after_chunks=1)] * 4)
        body = {"model": f"anthropic/{CLAUDE}", "input": "hi", "stream": True}
        r = post(gw, "/v1/responses", body)
    events = sse_events(r.text)
    check_lifecycle(events)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["code"] == "stream_cut"


def test_wrong_method_on_responses_is_an_openai_error(tmp_path: Path) -> None:
    with responses_gateway(tmp_path) as (_ups, gw):
        r = httpx.get(f"{gw.url}/v1/responses", headers=gw.headers, timeout=5)
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
