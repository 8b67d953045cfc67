"""The failover policy, fault by fault, plain and streamed, against a real loopback fake.

Each test asserts what the fake saw (attempt counts, gaps) and exactly what the client got.
"""

from __future__ import annotations

import re
import time

import httpx

from chaos import chaos, outcomes, trail
from fakes import Fault
from kit import ask, attempts, payloads, post, spent, streamed_text

ANSWER = "The quick brown fox jumps over the lazy dog"


def waits(r: httpx.Response) -> list[int | None]:
    """The back-off (ms) the gateway reported before each attempt, None for a first try."""
    found = [re.search(r" after (\d+)ms", a) for a in r.headers["x-router-attempts"].split(", ")]
    return [int(m[1]) if m else None for m in found]


def test_success_reports_usage_costs_and_trail(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", Fault.ok(text=ANSWER, usage=(1000, 500)))
        r = ask(gw, ["acme/primary"])
    assert r.status_code == 200
    body = r.json()
    assert (body["provider"], body["model"]) == ("acme", "primary")
    assert body["message"]["content"][0]["text"] == ANSWER
    assert body["usage"] == {
        "promptTokens": 1000,
        "completionTokens": 500,
        "totalTokens": 1500,
        "reasoningTokens": 0,
        "costs": {
            "input_tokens_cost": 0.001,
            "output_tokens_cost": 0.001,
            "total_tokens_cost": 0.002,
        },
    }
    assert attempts(r) == [("acme/primary", "ok", "200")]
    seen = fake.seen_for("primary")[0]
    assert seen.headers["authorization"] == "Bearer sk-acme"
    assert seen.body["messages"] == [{"role": "user", "content": "hello"}]


def test_429_retry_after_is_honoured(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", Fault.rate_limited(retry_after=1), Fault.ok(text=ANSWER))
        r = ask(gw, ["acme/primary"])
    assert r.status_code == 200
    assert outcomes(fake, "primary") == ["rate_limited", "ok"]
    # the wait itself is the injected sleep's: exact in test_gateway_direct; here, as reported
    assert waits(r) == [None, 1000]


def test_429_retry_after_ms_is_honoured(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", Fault.rate_limited(retry_after_ms=400), Fault.ok(text=ANSWER))
        r = ask(gw, ["acme/primary"])
    assert r.status_code == 200
    assert outcomes(fake, "primary") == ["rate_limited", "ok"]
    assert waits(r) == [None, 400]


def test_429_retry_after_beyond_cap_fails_over_at_once(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", Fault.rate_limited(retry_after=60))
        r = ask(gw, ["acme/primary", "acme/backup"])
    assert r.status_code == 200 and r.json()["model"] == "backup"
    assert outcomes(fake, "primary") == ["rate_limited"]
    assert attempts(r) == [("acme/primary", "rate_limited", "429"), ("acme/backup", "ok", "200")]
    assert waits(r) == [None, None]  # the next target at once: no wait at all


def test_429_persistent_backs_off_then_fails_over(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.always("primary", Fault.rate_limited())
        r = ask(gw, ["acme/primary", "acme/backup"])
    assert r.json()["model"] == "backup"
    assert outcomes(fake, "primary") == ["rate_limited"] * 3
    # never two attempts back to back: back-off 0.05 x 2^n plus up to 0.05 of jitter
    first, second = waits(r)[1:3]
    assert first is not None and 50 <= first <= 100
    assert second is not None and 100 <= second <= 150


def test_500_once_is_retried_on_the_same_target(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", Fault.status(500), Fault.ok(text=ANSWER))
        r = ask(gw, ["acme/primary", "acme/backup"])
    assert r.json()["model"] == "primary"
    assert outcomes(fake, "primary") == ["status", "ok"]
    assert fake.seen_for("backup") == []
    assert attempts(r) == [("acme/primary", "server_error", "500"), ("acme/primary", "ok", "200")]


def test_503_persistent_surfaces_the_original_error(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.always("primary", Fault.status(503))
        r = ask(gw, ["acme/primary"], maxRetries=1)
    assert r.status_code == 502
    body = r.json()
    assert body["error"]["code"] == "upstream_error"
    assert body["error"]["message"] == (
        "Upstream provider error (acme): The server is overloaded or not ready yet."
    )
    assert trail(body) == [("acme/primary", "overloaded")] * 2
    assert outcomes(fake, "primary") == ["status", "status"]


def test_connection_reset_is_retried(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", Fault.reset(), Fault.ok(text=ANSWER))
        r = ask(gw, ["acme/primary"])
    assert r.status_code == 200
    assert r.json()["message"]["content"][0]["text"] == ANSWER
    assert outcomes(fake, "primary") == ["reset", "ok"]


def test_connection_refused_fails_over(tmp_path):
    with chaos(tmp_path) as (_, gw):
        r = ask(gw, ["dead/m", "acme/backup"])
    assert r.json()["model"] == "backup"
    # retried (backoff), then failed over
    assert attempts(r) == [("dead/m", "connect_error", "-")] * 3 + [("acme/backup", "ok", "200")]


def test_silent_upstream_times_out_once_and_moves_on(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.always("primary", Fault.silent())
        r = ask(gw, ["acme/primary", "acme/backup"])
    assert r.json()["model"] == "backup"
    assert outcomes(fake, "primary") == ["silent"]  # a timed-out target is not retried
    assert attempts(r) == [("acme/primary", "timeout", "-"), ("acme/backup", "ok", "200")]
    # aiohttp's timer runs on the real clock, so the gateway's own figure for the attempt is
    # wall time: at least POLICY's response timeout (0.5 s), not first_token's 0.4 s, and not
    # first_token_reasoning's 1 s either
    assert 500 <= spent(r)[0] < 1000


def test_silent_upstream_streamed_times_out_on_first_token(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.always("primary", Fault.silent())
        r = ask(gw, ["acme/primary", "acme/backup"], stream=True)
    evs = payloads(r)
    assert evs[-2]["model"] == "backup"
    assert outcomes(fake, "primary") == ["silent"]


def test_whole_call_ends_inside_the_request_deadline(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.always("primary", Fault.rate_limited(retry_after=1))
        fake.always("backup", Fault.rate_limited(retry_after=1))
        fake.always("big", Fault.rate_limited(retry_after=1))
        started = time.monotonic()
        r = ask(gw, ["acme/primary", "acme/backup", "acme/big"], maxRetries=10)
        took = time.monotonic() - started
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    assert took < 4.5  # the 4 s deadline of POLICY, never 3 x 11 waits


def test_slow_first_token_fails_over(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", Fault.slow_first_token(2.0, Fault.ok(text=ANSWER)))
        fake.script("backup", Fault.ok(text="from backup"))
        r = ask(gw, ["acme/primary", "acme/backup"], stream=True)
    evs = payloads(r)
    assert streamed_text(evs) == "from backup"
    assert evs[-2]["model"] == "backup"
    assert attempts(r) == [
        ("acme/primary", "first_token_timeout", "-"),
        ("acme/backup", "ok", "200"),
    ]


def test_cut_stream_is_rescued_by_regenerating_the_same_answer(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script(
            "primary",
            Fault.cut(3, Fault.ok(text=ANSWER, chunks=9)),
            Fault.ok(text=ANSWER, chunks=9),
        )
        r = ask(gw, ["acme/primary"], stream=True)
    evs = payloads(r)
    assert streamed_text(evs) == ANSWER  # every word exactly once
    final = evs[-2]
    assert final["type"] == "response"
    assert final["message"]["content"][0]["text"] == ANSWER
    assert evs[-1] == "[DONE]"
    assert outcomes(fake, "primary") == ["cut", "ok"]


def test_cut_stream_continues_with_prefill_where_supported(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script(
            "cont",
            Fault.cut(3, Fault.ok(text=ANSWER, chunks=9)),
            Fault.ok(text=" fox jumps over the lazy dog"),
        )
        r = ask(gw, ["acme/cont"], stream=True)
    evs = payloads(r)
    assert streamed_text(evs) == ANSWER
    continuation = fake.seen_for("cont")[1].body["messages"]
    assert continuation[-1] == {"role": "assistant", "content": "The quick brown", "prefix": True}


def test_cut_stream_with_a_different_regeneration_ends_with_an_error(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script(
            "primary",
            Fault.cut(3, Fault.ok(text=ANSWER, chunks=9)),
            Fault.ok(text="Something else entirely here"),
        )
        fake.always("backup", Fault.ok(text="Another different answer"))
        r = ask(gw, ["acme/primary", "acme/backup"], stream=True)
    evs = payloads(r)
    assert streamed_text(evs) == "The quick brown"
    error = evs[-2]
    assert error["type"] == "error"
    assert error["error"]["code"] == "stream_cut"  # the real failure, not the rescue's
    outcomes_seen = [
        (a["provider"] + "/" + a["model"], a["outcome"]) for a in error["error"]["attempts"]
    ]
    assert outcomes_seen == [
        ("acme/primary", "stream_cut"),
        ("acme/primary", "rescue_mismatch"),
        ("acme/backup", "rescue_mismatch"),
    ]
    # estimated: "hello" (2 tokens + 4 a message) and the 15 characters sent (4)
    assert error["error"]["attempts"][0]["tokens"] == 10
    assert evs[-1] == "[DONE]"


def test_stalled_stream_is_rescued(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script(
            "primary",
            Fault.stall(2, Fault.ok(text=ANSWER, chunks=9)),
            Fault.ok(text=ANSWER, chunks=9),
        )
        r = ask(gw, ["acme/primary"], stream=True)
    assert streamed_text(payloads(r)) == ANSWER
    assert outcomes(fake, "primary") == ["stall", "ok"]


def test_malformed_chunk_is_rescued(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script(
            "primary",
            Fault.malformed(2, Fault.ok(text=ANSWER, chunks=9)),
            Fault.ok(text=ANSWER, chunks=9),
        )
        r = ask(gw, ["acme/primary"], stream=True)
    evs = payloads(r)
    assert streamed_text(evs) == ANSWER
    assert "stream_malformed" not in r.text


def test_stream_without_done_is_finalised_with_usage(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", Fault.no_done(Fault.ok(text=ANSWER, usage=(30, 9))))
        r = ask(gw, ["acme/primary"], stream=True)
    final = payloads(r)[-2]
    assert final["type"] == "response"
    assert final["usage"]["promptTokens"] == 30 and final["usage"]["completionTokens"] == 9


def test_context_length_skips_to_a_larger_window(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.always("primary", Fault.context_length())
        r = ask(gw, ["acme/primary", "acme/backup", "acme/big"])
    assert r.json()["model"] == "backup"
    assert outcomes(fake, "primary") == ["context_length"]  # never retried


def test_a_prompt_that_cannot_fit_is_not_sent(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        r = ask(gw, ["acme/tiny", "acme/backup"], text="word " * 100)
    assert r.json()["model"] == "backup"
    assert fake.seen_for("tiny") == []
    assert attempts(r) == [("acme/tiny", "prompt_too_large", "-"), ("acme/backup", "ok", "200")]
    assert spent(r)[0] == 0  # judged before any request


def test_content_policy_is_final_without_fallback(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.always("primary", Fault.content_policy())
        r = ask(gw, ["acme/primary", "acme/backup"])
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "content_policy"
    assert outcomes(fake, "primary") == ["content_policy"]
    assert fake.seen_for("backup") == []


def test_content_policy_may_fall_back_when_configured(tmp_path):
    with chaos(tmp_path, "[routing]\ncontent_policy_fallback = true\n") as (fake, gw):
        fake.always("primary", Fault.content_policy())
        r = ask(gw, ["acme/primary", "acme/backup"])
    assert r.json()["model"] == "backup"


def test_missing_key_is_skipped_with_the_variable_named(tmp_path):
    with chaos(tmp_path) as (_, gw):
        r = ask(gw, ["nokey/m"])
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "provider_not_configured"
    assert "NOKEY_API_KEY" in error["message"]


def test_circuit_opens_serves_fallbacks_then_probes_and_closes(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", *[Fault.status(500)] * 3)
        first = ask(gw, ["acme/primary", "acme/backup"], maxRetries=0)
        second = ask(gw, ["acme/primary", "acme/backup"], maxRetries=0)
        third = ask(gw, ["acme/primary", "acme/backup"], maxRetries=0)
        assert [first.json()["model"], second.json()["model"], third.json()["model"]] == [
            "backup"
        ] * 3
        skipped = ask(gw, ["acme/primary", "acme/backup"], maxRetries=0)
        assert attempts(skipped) == [
            ("acme/primary", "circuit_open", "-"),
            ("acme/backup", "ok", "200"),
        ]
        assert len(fake.seen_for("primary")) == 3
        health = httpx.get(f"{gw.url}/admin/health", headers=gw.headers).json()
        assert health["circuits"][0]["target"] == "acme/primary"
        assert health["circuits"][0]["state"] == "open"
        time.sleep(0.6)  # the cool-down: one probe goes through and closes the circuit
        probe = ask(gw, ["acme/primary", "acme/backup"], maxRetries=0)
        assert probe.json()["model"] == "primary"
        health = httpx.get(f"{gw.url}/admin/health", headers=gw.headers).json()
        assert health["circuits"][0]["state"] == "closed"


def test_every_fault_leaves_the_process_healthy(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        for fault in (Fault.reset(), Fault.cut(1), Fault.malformed(1), Fault.status(500)):
            fake.script("primary", fault)
            ask(gw, ["acme/primary"], stream=True, maxRetries=0)
        r = ask(gw, ["acme/primary"])
    assert r.status_code == 200


def test_prefill_continuation_after_trailing_space_has_no_double_space(tmp_path):
    words = ["The ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog"]
    with chaos(tmp_path) as (fake, gw):
        fake.script(
            "cont",
            Fault.cut(3, Fault.ok(text="".join(words), chunks=words)),
            Fault.ok(text=" fox jumps over the lazy dog"),
        )
        r = ask(gw, ["acme/cont"], stream=True)
    assert streamed_text(payloads(r)) == ANSWER


def test_per_request_deadline_header(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.always("primary", Fault.rate_limited(retry_after=1))
        started = time.monotonic()
        r = post(
            gw,
            "/api/v1/completions",
            {
                "messages": [{"role": "user", "content": "hi"}],
                "models": ["acme/primary"],
                "maxRetries": 10,
            },
            headers={**gw.headers, "x-router-timeout": "1.5"},
        )
        took = time.monotonic() - started
    assert r.status_code == 429
    assert took < 2.0  # 1.5 s instead of POLICY's 4 s
    # a second try after the 1 s Retry-After; a third would start past the 1.5 s deadline
    assert attempts(r) == [("acme/primary", "rate_limited", "429")] * 2
    assert waits(r) == [None, 1000]


def test_bad_deadline_header_names_it(tmp_path):
    with chaos(tmp_path) as (_, gw):
        r = post(
            gw,
            "/api/v1/completions",
            {"messages": [{"role": "user", "content": "hi"}], "models": ["acme/primary"]},
            headers={**gw.headers, "x-router-timeout": "soon"},
        )
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "x-router-timeout"
