"""Fake upstream LLM servers for the test suite: real HTTP on loopback, real wire formats.

    from fakes import FakeUpstream, Fault

    with FakeUpstream("openai") as fake:          # or "anthropic", "gemini", "azure"
        fake.script("gpt-4o", Fault.rate_limited(retry_after=1), Fault.ok(text="Hi there"))
        ...  # point the gateway at fake.url
        assert [s.outcome for s in fake.seen_for("gpt-4o")] == ["rate_limited", "ok"]

Base URLs (`fake.url`): openai `http://127.0.0.1:PORT/v1`, anthropic `http://127.0.0.1:PORT`
(the client appends /v1/messages), gemini `http://127.0.0.1:PORT/v1beta`, azure
`http://127.0.0.1:PORT/openai`. Modules: `faults` (what to do), `server` (the HTTP server),
`inbound` (routes, `Seen`), `transport` (how faults break the socket), `*_wire` (each
protocol's framing and error bodies), `anthropic_strict` (what the real Anthropic API refuses,
the Messages event order), `media` (embeddings, images, audio), `cassettes` (recorded default
replies), `binary` (PNG/MP3/WAV bytes). Tests read SSE bodies with `kit.sse`.
`FakeUpstream("anthropic")` is strict unless `strict=False`.
"""

from fakes.cassettes import RECORDED
from fakes.faults import Fault, ToolCall, Usage
from fakes.inbound import Seen
from fakes.server import FakeUpstream

__all__ = ["RECORDED", "FakeUpstream", "Fault", "Seen", "ToolCall", "Usage"]
