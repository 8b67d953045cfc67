"""The real Codex CLI (`@openai/codex`, installed by scripts/ensure-codex into .tools/) run
headless (`codex exec --json`) against the gateway, with the strict Responses fake as OpenAI
and the Anthropic fake behind it: a plain answer, a tool turn whose output reaches the
upstream, and a turn whose first upstream answers 429 and Anthropic answers instead."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import need
from fakes import Fault
from fakes.openai_responses import RReply
from gateway_harness import MASTER_KEY, REPO, Gateway
from responses_env import CLAUDE, GPT, responses_gateway

CODEX = REPO / ".tools" / "codex" / "node_modules" / ".bin" / "codex"
pytestmark = pytest.mark.slow


def codex_available() -> bool:
    if not CODEX.exists():
        return False
    done = subprocess.run([str(CODEX), "--version"], capture_output=True, timeout=60)
    return done.returncode == 0


@pytest.fixture(scope="module")
def codex() -> Path:
    need(codex_available(), "the Codex CLI is not installed (run scripts/ensure-codex; needs npm)")
    return CODEX


def run_codex(
    codex: Path, gw: Gateway, home: Path, model: str, prompt: str
) -> list[dict[str, Any]]:
    """`codex exec --json` in a throw-away HOME whose config.toml points Codex at the gateway."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(
        f'model = "{model}"\nmodel_provider = "router"\n\n'
        "[model_providers.router]\n"
        'name = "router"\n'
        f'base_url = "{gw.url}/v1"\n'
        'env_key = "ROUTER_API_KEY"\n'
        'wire_api = "responses"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n"
    )
    work = home / "work"
    work.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        "ROUTER_API_KEY": MASTER_KEY,
        "NO_COLOR": "1",
    }
    args = [str(codex), "exec", "--json", "--skip-git-repo-check"]
    args += ["--dangerously-bypass-approvals-and-sandbox", prompt]
    with open(os.devnull, "rb") as stdin:
        done = subprocess.run(
            args, cwd=work, env=env, stdin=stdin, capture_output=True, timeout=120
        )
    lines = [json.loads(line) for line in done.stdout.decode().splitlines() if line.startswith("{")]
    assert done.returncode == 0, (done.stdout.decode()[-2000:], done.stderr.decode()[-2000:])
    return lines


def agent_texts(events: list[dict[str, Any]]) -> list[str]:
    return [
        e["item"]["text"]
        for e in events
        if e.get("type") == "item.completed" and e["item"].get("type") == "agent_message"
    ]


def shell_call(body: dict[str, Any]) -> RReply:
    """A call to whichever shell tool this Codex version declares."""
    names = {t.get("name"): t for t in body.get("tools", []) if t.get("type") == "function"}
    if "shell" in names:
        return RReply(call=("shell", json.dumps({"command": ["echo", "tool-output-42"]})))
    if "shell_command" in names:
        return RReply(call=("shell_command", json.dumps({"command": "echo tool-output-42"})))
    assert "exec_command" in names, sorted(n for n in names if n)
    return RReply(call=("exec_command", json.dumps({"cmd": "echo tool-output-42"})))


def test_codex_plain_answer(codex: Path, tmp_path: Path) -> None:
    with responses_gateway(tmp_path) as (ups, gw):
        ups.openai.script(RReply(text="Hello from router"))
        events = run_codex(codex, gw, tmp_path / "home", GPT, "Say hello")
        turns = [s for s in ups.openai.seen if s.get("model") == GPT]
    assert agent_texts(events) == ["Hello from router"]
    assert turns[0]["stream"] is True
    assert any(t.get("name") == "apply_patch" for t in turns[0]["tools"])


def test_codex_tool_turn_reaches_the_upstream(codex: Path, tmp_path: Path) -> None:
    with responses_gateway(tmp_path) as (ups, gw):
        ups.openai.script(shell_call, RReply(text="The command printed tool-output-42."))
        events = run_codex(codex, gw, tmp_path / "home", GPT, "Run echo")
        second = ups.openai.seen[1]
    outputs = [i for i in second["input"] if i.get("type") == "function_call_output"]
    assert len(outputs) == 1
    assert "tool-output-42" in json.dumps(outputs[0]["output"])
    assert agent_texts(events) == ["The command printed tool-output-42."]


def test_codex_turn_falls_back_from_openai_429_to_anthropic(codex: Path, tmp_path: Path) -> None:
    with responses_gateway(tmp_path) as (ups, gw):
        ups.openai.script(*[RReply(status=429)] * 3)
        ups.anthropic.script(CLAUDE, Fault.ok(text="Answered by Claude"))
        events = run_codex(codex, gw, tmp_path / "home", "codex-chain", "Say hello")
        sent = ups.anthropic.seen_for(CLAUDE)
    assert agent_texts(events) == ["Answered by Claude"]
    assert len(ups.openai.seen) == 3
    assert len(sent) == 1 and sent[0].stream is True
    assert "exec_command" in [t["name"] for t in sent[0].body["tools"]]
