"""The Anthropic Messages request body built from the canonical request: system hoisted out of
the turns, same-role neighbours merged, tool calls and results as blocks, thinking within
`max_tokens`, and only what the model accepts."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from router.core.types import (
    ChatRequest,
    Message,
    Part,
    Target,
    TextPart,
    ThinkingPart,
)
from router.protocols import anthropic_search
from router.protocols import anthropic_wire as wire

DEFAULT_MAX_TOKENS = 4096
MIN_THINKING = 1024  # the smallest budget the API accepts
EFFORT_BUDGET = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
_CHOICES = {
    "auto": wire.ToolChoice("auto"),
    "required": wire.ToolChoice("any"),
    "none": wire.ToolChoice("none"),
}
_BAD_ID = re.compile(r"[^a-zA-Z0-9_-]")

# ---- request -----------------------------------------------------------------------------------


def _tool_id(call_id: str | None) -> str:
    """Anthropic accepts only `[a-zA-Z0-9_-]` in tool ids; other dialects are laxer."""
    return _BAD_ID.sub("_", call_id or "") or "toolu_unknown"


def _arguments(text: str) -> dict[str, Any]:
    try:
        return wire.ARGS.decode(text or "{}")
    except msgspec.DecodeError:  # also a JSON value that is not an object
        return {}


def _part(p: Part) -> wire.Block | None:
    if isinstance(p, TextPart):
        return wire.Text(p.text) if p.text else None  # the API refuses empty text blocks
    if isinstance(p, ThinkingPart):
        return _thinking(p)
    inline = p.inline()
    if inline is None:
        return wire.Image(wire.Source("url", url=p.url))
    return wire.Image(wire.Source("base64", media_type=inline[0], data=inline[1]))


def _thinking(p: ThinkingPart) -> wire.Block | None:
    """Thinking goes back only to the protocol that produced it (its signature is Anthropic's)."""
    if p.origin != "anthropic":
        return None
    if p.redacted is not None:
        return wire.RedactedThinking(p.redacted)
    return wire.ThinkingBlock(p.text, p.signature) if p.signature else None


def _blocks(m: Message) -> list[wire.Block]:
    if m.role == "tool":
        text = m.text()
        return [wire.ToolResult(_tool_id(m.tool_call_id), [wire.Text(text)] if text else [])]
    out = [b for b in map(_part, m.content) if b is not None]
    out += [wire.ToolUse(_tool_id(c.id), c.name, _arguments(c.arguments)) for c in m.tool_calls]
    return out


def wire_messages(
    messages: tuple[Message, ...], prefill: str | None
) -> tuple[list[wire.Text], list[wire.Turn]]:
    """(system blocks, turns): system hoisted out, same-role neighbours merged."""
    system: list[wire.Text] = []
    turns: list[wire.Turn] = []
    for m in messages:
        if m.role == "system":
            system += [wire.Text(p.text) for p in m.content if type(p) is TextPart and p.text]
            continue
        _append(turns, "assistant" if m.role == "assistant" else "user", _blocks(m))
    if prefill and prefill.rstrip():  # the API refuses a final turn ending in whitespace
        _append(turns, "assistant", [wire.Text(prefill.rstrip())])
    return system, turns


def _append(turns: list[wire.Turn], role: str, blocks: list[wire.Block]) -> None:
    if not blocks:
        return
    if turns and turns[-1].role == role:
        turns[-1].content.extend(blocks)
    else:
        turns.append(wire.Turn(role, blocks))


def _tool_choice(choice: str | dict[str, object] | None) -> wire.ToolChoice | None:
    if isinstance(choice, dict):
        return wire.ToolChoice("tool", str(choice.get("name", "")))
    return _CHOICES.get(choice) if choice else None


def _budget(target: Target, request: ChatRequest) -> int | None:
    """The thinking budget asked for, or None: not for models without the `reasoning`
    capability, and never with a forced tool or a prefilled answer."""
    info = target.info
    if info is not None and (
        "reasoning" not in info.capabilities
        or {"thinking_budget", "reasoning_effort"} & info.unsupported_params
    ):
        return None
    budget = request.thinking_budget or EFFORT_BUDGET.get(request.reasoning_effort or "")
    forced = isinstance(request.tool_choice, dict) or request.tool_choice == "required"
    if not budget or forced or request.prefill or _in_tool_loop(request.messages):
        return None
    return max(budget, MIN_THINKING)


def _limits(target: Target, request: ChatRequest) -> tuple[int, int | None]:
    """(max_tokens, thinking budget). The budget counts within `max_tokens` and must leave
    room for the answer; without a catalog limit the default grows to fit the budget."""
    budget = _budget(target, request)
    limit = target.info.max_output_tokens if target.info else None
    max_tokens = request.output_limit(target.info) or limit or DEFAULT_MAX_TOKENS + (budget or 0)
    if budget is not None:
        budget = min(budget, max_tokens - 1)
    return max_tokens, budget if budget and budget >= MIN_THINKING else None


def _in_tool_loop(messages: tuple[Message, ...]) -> bool:
    """Whether the answer continues an assistant turn that called tools. With thinking on,
    the API wants that turn to start with its signed thinking block, which canonical
    messages do not carry: such a continuation is asked for without thinking."""
    last = next((m for m in reversed(messages) if m.role != "tool"), None)
    return last is not None and last.role == "assistant" and bool(last.tool_calls)


ACCEPTS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "stop",
        "tools",
        "tool_choice",
        "user",
        "reasoning_effort",
        "thinking_budget",
    }
)


def body_for(target: Target, request: ChatRequest, stream: bool) -> wire.Body:
    """The wire body, leaving out whatever the catalog says this model does not accept."""
    skip = target.info.unsupported_params if target.info else frozenset()
    max_tokens, budget = _limits(target, request)
    system, turns = wire_messages(request.messages, request.prefill)
    body = wire.Body(
        model=target.upstream_model,
        max_tokens=max_tokens,
        messages=turns,
        system=system or None,
        stream=True if stream else None,
        thinking=wire.Thinking(budget) if budget else None,
    )
    sampling = budget is None  # thinking requires the default temperature and top_p
    if sampling and "temperature" not in skip:
        body.temperature = request.temperature
    if sampling and "top_p" not in skip:
        body.top_p = request.top_p
    if sampling and "top_k" not in skip:
        body.top_k = request.top_k
    if "stop" not in skip:
        body.stop_sequences = list(request.stop) or None
    if request.tools and "tools" not in skip:
        body.tools = [_tool(t.name, t.description, t.parameters) for t in request.tools]
        body.tool_choice = None if "tool_choice" in skip else _tool_choice(request.tool_choice)
    if request.user and "user" not in skip:
        body.metadata = {"user_id": request.user}
    server_tool = anthropic_search.tool(target, request.search)
    if server_tool is not None:
        body.tools = [*(body.tools or ()), server_tool]
    return body


def _tool(
    name: str, description: str | None, parameters: dict[str, object] | None
) -> wire.ToolSpec:
    return wire.ToolSpec(name, parameters or {"type": "object", "properties": {}}, description)
