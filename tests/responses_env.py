"""A gateway with OpenAI behind the strict Responses fake and Anthropic behind its fake, and
a checker for the Responses stream lifecycle the gateway emits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from fakes import FakeUpstream
from fakes.openai_responses import FakeResponses
from gateway_harness import Gateway, running_gateway, write_config
from kit import sse

GPT = "gpt-5.5"
CLAUDE = "claude-sonnet-4-20250514"
ALIASES = f"""
[aliases]
"codex-chain" = ["openai/{GPT}", "anthropic/{CLAUDE}"]
"""


class Upstreams:
    def __init__(self, stack: ExitStack) -> None:
        self.openai = stack.enter_context(FakeResponses(api_key="sk-oai"))
        self.anthropic = stack.enter_context(FakeUpstream("anthropic"))


@contextmanager
def responses_gateway(tmp_path: Path) -> Iterator[tuple[Upstreams, Gateway]]:
    with ExitStack() as stack:
        ups = Upstreams(stack)
        env = {
            "OPENAI_API_KEY": "sk-oai",
            "OPENAI_BASE_URL": ups.openai.url,
            "ANTHROPIC_API_KEY": "sk-ant",
            "ANTHROPIC_BASE_URL": ups.anthropic.url,
        }
        config = write_config(tmp_path, ALIASES)
        yield ups, stack.enter_context(running_gateway(config, env))


def sse_events(raw: str) -> list[dict[str, Any]]:
    """The `data` of each event of a Responses stream, checked against its `event:` name."""
    events = sse(raw)
    for e in events:
        assert e.event == e.data["type"], e
    return [e.data for e in events]


_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def check_lifecycle(events: list[dict[str, Any]]) -> None:
    """The order OpenAI's streams follow: created, in_progress, then items opened, filled and
    closed one at a time, then exactly one terminal event, with sequence numbers 0..n-1."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] in _TERMINAL
    assert sum(k in _TERMINAL for k in kinds) == 1
    open_item: int | None = None
    for e in events[2:-1]:
        if e["type"] == "response.output_item.added":
            assert open_item is None
            open_item = e["output_index"]
        elif e["type"] == "response.output_item.done":
            assert open_item == e["output_index"]
            open_item = None
        else:
            assert open_item is not None and e["output_index"] == open_item, e
    assert open_item is None
