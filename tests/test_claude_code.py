"""Real Claude Code (`@anthropic-ai/claude-code`, installed into .tools/ by
scripts/ensure-claude-code) run headless against the gateway, with fake Anthropic and OpenAI
upstreams behind it: a plain answer, a tool turn run locally by Claude Code, and a fallback
from an overloaded Anthropic to OpenAI through the translation path."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from conftest import need
from fakes import FakeUpstream, Fault, ToolCall
from gateway_harness import MASTER_KEY, REPO, Gateway, running_gateway, write_config

pytestmark = pytest.mark.slow

CLAUDE = REPO / ".tools" / "node_modules" / ".bin" / "claude"


class Env:
    def __init__(self, ant: FakeUpstream, oai: FakeUpstream, gw: Gateway, root: Path) -> None:
        self.ant, self.oai, self.gw = ant, oai, gw
        self.home, self.work = root / "home", root / "work"
        self.home.mkdir()
        self.work.mkdir()

    def claude(self, prompt: str, **extra_env: str) -> dict[str, Any]:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.home),  # throw-away: no login, settings or history of the machine
            "ANTHROPIC_BASE_URL": self.gw.url,  # without /v1: Claude Code appends it
            "ANTHROPIC_AUTH_TOKEN": MASTER_KEY,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            **extra_env,
        }
        done = subprocess.run(
            [str(CLAUDE), "-p", prompt, "--output-format", "json"],
            env=env,
            cwd=self.work,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        result: dict[str, Any] = msgspec.json.decode(done.stdout)
        return result


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    need(CLAUDE.exists(), "Claude Code is not installed (scripts/ensure-claude-code needs npm)")
    with FakeUpstream("anthropic") as ant, FakeUpstream("openai") as oai:
        keys = {
            "ANTHROPIC_BASE_URL": ant.url,
            "ANTHROPIC_API_KEY": "sk-ant-provider",
            "OPENAI_BASE_URL": oai.url,
            "OPENAI_API_KEY": "sk-openai-provider",
        }
        with running_gateway(write_config(tmp_path), keys) as gw:
            yield Env(ant, oai, gw, tmp_path)


def test_plain_answer(env: Env) -> None:
    env.ant.script("*", Fault.ok(text="PONG from the fake"))
    result = env.claude("Say pong")
    assert (result["is_error"], result["result"]) == (False, "PONG from the fake")
    (seen,) = env.ant.seen
    assert seen.path == "/v1/messages"
    assert "claude-code-20250219" in seen.headers["anthropic-beta"].split(",")
    assert seen.body["stream"] is True


def test_tool_turn_runs_locally_and_the_result_reaches_the_upstream(env: Env) -> None:
    notes = env.work / "notes.txt"
    notes.write_text("the magic word is xylophone-42\n")
    read = ToolCall("Read", {"file_path": str(notes)}, id="toolu_fake_1")
    env.ant.script("*", Fault.ok(tool_call=read), Fault.ok(text="It says xylophone-42."))
    result = env.claude("What does notes.txt say?")
    assert result["result"] == "It says xylophone-42."
    first, second = env.ant.seen
    assert "Read" in {t["name"] for t in first.body["tools"]}
    last = second.body["messages"][-1]
    results = [b for b in last["content"] if b.get("type") == "tool_result"]
    assert [r["tool_use_id"] for r in results] == ["toolu_fake_1"]
    assert "xylophone-42" in msgspec.json.encode(results[0]["content"]).decode()


def test_overloaded_anthropic_falls_back_to_openai(env: Env) -> None:
    env.ant.always("*", Fault.overloaded())
    env.oai.script("gpt-4o-mini", Fault.ok(text="PONG via OpenAI"))
    fallback = "x-router-fallback-models: openai/gpt-4o-mini"
    result = env.claude("Say pong", ANTHROPIC_CUSTOM_HEADERS=fallback)
    assert (result["is_error"], result["result"]) == (False, "PONG via OpenAI")
    assert [s.outcome for s in env.ant.seen] == ["overloaded"] * 3
    (seen,) = env.oai.seen
    assert seen.body["messages"][0]["role"] == "system"
    assert {"Bash", "Read"} <= {t["function"]["name"] for t in seen.body["tools"]}
