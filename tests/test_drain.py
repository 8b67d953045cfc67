"""Graceful drain with real processes: `router serve --workers 2` receives SIGTERM (or SIGINT)
while two slow streams from a fake upstream are open."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from fakes import FakeUpstream, Fault
from gateway_harness import write_config
from kit import DONE, post
from served import ACME, serving, stream_both, turns

WORDS = [f"w{i}" for i in range(40)]


def _config(tmp_path: Path, grace: float, drain: float) -> Path:
    return write_config(
        tmp_path,
        extra=f"\n[shutdown]\ngrace_period = {grace}\ndrain_timeout = {drain}\n",
        providers={"acme": ACME},
    )


def _env(fake: FakeUpstream, tmp_path: Path) -> dict[str, str]:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    return {
        "ACME_API_KEY": "sk-acme",
        "ACME_BASE_URL": fake.url,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }


def _requests_counted(metrics: Path) -> float:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(metrics))  # type: ignore[no-untyped-call]
    value = 0.0
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "router_requests_total":
                value += sample.value
    return value


def test_sigterm_drains_two_workers_streams_complete_and_exit_0(tmp_path):
    with FakeUpstream("openai", models=["slow"]) as fake:
        fake.always("slow", Fault.ok(text=" ".join(WORDS[:12]), chunk_delay=0.25))
        env = _env(fake, tmp_path)
        with serving(_config(tmp_path, grace=1.5, drain=30), env, workers=2) as gw:
            openai, iron = stream_both(gw, "acme/slow")
            signalled = time.monotonic()
            gw.signal(signal.SIGTERM)
            assert gw.ready() == 503  # at once, on a new connection
            assert time.monotonic() - signalled < 1.0
            during = post(
                gw,
                "/v1/chat/completions",
                {"model": "demo/echo", "messages": [{"role": "user", "content": "hi"}]},
                timeout=10,
            )
            assert during.status_code == 200  # still served in the grace period
            while time.monotonic() - signalled < 2.0:
                time.sleep(0.05)
            assert gw.refuses()
            assert openai.is_alive() and iron.is_alive()  # still streaming after the grace
            assert gw.proc.wait(30) == 0
        openai.join(5)
        iron.join(5)
    assert openai.error is None and iron.error is None
    assert openai.events[-1] == iron.events[-1] == DONE
    chunks = openai.events[:-1]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == " ".join(WORDS[:12])
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    final = iron.events[:-1][-1]
    assert final["type"] == "response"
    assert final["message"]["content"][0]["text"] == " ".join(WORDS[:12])
    assert turns(tmp_path / "router.db") == 1  # the streamed turn was written before exit
    assert _requests_counted(tmp_path / "metrics") == 3.0  # two streams + the one in the grace


def test_a_stream_open_at_the_drain_deadline_ends_with_an_error_event(tmp_path):
    with FakeUpstream("openai", models=["slow"]) as fake:
        fake.always("slow", Fault.ok(text=" ".join(WORDS), chunk_delay=0.25))
        with serving(_config(tmp_path, grace=0.5, drain=2), _env(fake, tmp_path), 2) as gw:
            openai, iron = stream_both(gw, "acme/slow")
            signalled = time.monotonic()
            gw.signal(signal.SIGTERM)
            assert gw.proc.wait(30) == 0
            took = time.monotonic() - signalled
        openai.join(5)
        iron.join(5)
    # Waiting for its deadline is the behaviour, in real processes on the real clock: the
    # workers count drain_timeout (2 s) from the signal they got, after this clock started, so
    # 2.0 is the tightest bound that always holds; the streams had 10 s of words left.
    assert 2.0 <= took < 6.0
    assert openai.events[-1] == iron.events[-1] == DONE
    error = openai.events[:-1][-1]["error"]
    assert (error["code"], error["type"], error["provider"], error["model"]) == (
        "shutting_down",
        "server_error",
        "acme",
        "slow",
    )
    last = iron.events[:-1][-1]
    assert last["type"] == "error"
    assert (last["error"]["code"], last["error"]["provider"]) == ("shutting_down", "acme")
    assert turns(tmp_path / "router.db") == 0  # an unfinished answer is not kept


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_stops_at_once(tmp_path, second):
    with FakeUpstream("openai", models=["slow"]) as fake:
        fake.always("slow", Fault.ok(text=" ".join(WORDS), chunk_delay=0.25))
        with serving(_config(tmp_path, grace=5, drain=60), _env(fake, tmp_path), 2) as gw:
            openai, _ = stream_both(gw, "acme/slow")
            gw.signal(signal.SIGINT)  # SIGINT drains like SIGTERM
            time.sleep(0.3)
            assert gw.ready() == 503
            signalled = time.monotonic()
            gw.signal(second)
            assert gw.proc.wait(10) == 1
            assert time.monotonic() - signalled < 3.0
        openai.join(5)
    assert DONE not in openai.events  # cut, as asked
