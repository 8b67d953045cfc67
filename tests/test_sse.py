"""The SSE relay (`router.api.sse`): headers, pings only after silence, one heartbeat timer."""

from __future__ import annotations

import re

from chaos import chaos
from fakes import Fault
from kit import ask, payloads, streamed_text

SSE_HEADERS = {
    "cache-control": "no-store",
    "connection": "keep-alive",
    "x-accel-buffering": "no",
    "content-type": "text/event-stream; charset=utf-8",
}


def _frames(raw: bytes) -> list[bytes]:
    """The stream cut into SSE frames (each ends with a blank line)."""
    assert raw.endswith(b"\n\n")
    return [f + b"\n\n" for f in raw[:-2].split(b"\n\n")]


def test_a_stream_has_the_sse_headers_and_no_ping_while_it_sends(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        fake.script("primary", Fault.ok(text="a b c", chunks=3))
        r = ask(gw, ["acme/primary"], stream=True)
        assert gw.runtime.heartbeat.open_streams == 0
    assert r.status_code == 200
    assert {k: r.headers[k] for k in SSE_HEADERS} == SSE_HEADERS
    assert re.fullmatch(r"acme/primary ok 200 \d+ms", r.headers["x-router-attempts"])
    assert b": ping" not in r.content
    assert streamed_text(payloads(r)) == "a b c"


def test_a_silent_stream_gets_pings_between_its_events(tmp_path):
    with chaos(tmp_path) as (fake, gw):
        gw.runtime.heartbeat.interval = 0.08
        gw.runtime.heartbeat.tick = 0.01
        fake.script("primary", Fault.ok(text="a b c", chunks=3, chunk_delay=0.25))
        r = ask(gw, ["acme/primary"], stream=True)
        fake.script("primary", Fault.ok(text="d e", chunks=2))
        quiet = ask(gw, ["acme/primary"], stream=True)  # answers at once: no silence
        assert gw.runtime.heartbeat.open_streams == 0
    frames = _frames(r.content)
    pings = [f for f in frames if f.startswith(b":")]
    # up to six silences of 0.25 s (before each text chunk, the finish, the usage): at most
    # 3 pings each (one per 0.08 s of silence), and at least one in most of them
    assert 4 <= len(pings) <= 18
    assert set(pings) == {b": ping\n\n"}
    assert streamed_text(payloads(r)) == "a b c"
    assert b": ping" not in quiet.content and streamed_text(payloads(quiet)) == "d e"
