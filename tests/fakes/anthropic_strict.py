"""What makes the fake Anthropic upstream strict like the real API, and a checker of the
Messages event stream a gateway sends to its clients.

`request_problem(body)` is the 400 message the real API gives for a body it refuses: unknown
fields (top level, messages, blocks, custom tools: "Extra inputs are not permitted"), a
missing `max_tokens`, a thinking block whose signature is not one the fake issued.
`stream_problem(events)` is what is wrong with an event sequence, or None.
"""

from __future__ import annotations

from typing import Any

SIGNATURE = "RmFrZSB0aGlua2luZyBzaWduYXR1cmU="

TOP = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_k",
        "top_p",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
        "output_config",
    }
)
COUNT_TOP = TOP - {"max_tokens", "stream", "metadata", "stop_sequences", "temperature"}
BLOCKS: dict[str, frozenset[str]] = {
    "text": frozenset({"type", "text", "cache_control", "citations"}),
    "image": frozenset({"type", "source", "cache_control"}),
    "document": frozenset({"type", "source", "title", "context", "citations", "cache_control"}),
    "tool_use": frozenset({"type", "id", "name", "input", "cache_control"}),
    "tool_result": frozenset({"type", "tool_use_id", "content", "is_error", "cache_control"}),
    "thinking": frozenset({"type", "thinking", "signature"}),
    "redacted_thinking": frozenset({"type", "data"}),
}
TOOL = frozenset({"name", "description", "input_schema", "cache_control", "type", "strict"})


def _extra(where: str, item: dict[str, Any], allowed: frozenset[str]) -> str | None:
    extra = sorted(set(item) - allowed)
    return f"{where}.{extra[0]}: Extra inputs are not permitted" if extra else None


def _block(where: str, block: Any) -> str | None:
    if not isinstance(block, dict) or "type" not in block:
        return f"{where}: Input should be a valid dictionary or object"
    allowed = BLOCKS.get(block["type"])
    if allowed is None:
        return None  # server tool blocks and newer types: not checked here
    problem = _extra(where, block, allowed)
    if problem is None and block["type"] == "thinking" and block.get("signature") != SIGNATURE:
        return f"{where}: Invalid `signature` in `thinking` block"
    if problem is None and block["type"] == "tool_result":
        content = block.get("content")
        for i, inner in enumerate(content if isinstance(content, list) else ()):
            problem = problem or _block(f"{where}.content.{i}", inner)
    return problem


def _messages(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: Field required"
    for i, m in enumerate(messages):
        problem = _extra(f"messages.{i}", m, frozenset({"role", "content"}))
        if problem:
            return problem
        content = m.get("content")
        for j, block in enumerate(content if isinstance(content, list) else ()):
            problem = _block(f"messages.{i}.content.{j}", block)
            if problem:
                return problem
    return None


def request_problem(body: Any, count: bool = False) -> str | None:
    if not isinstance(body, dict):
        return "body: Input should be a valid dictionary"
    problem = _extra("body", body, COUNT_TOP if count else TOP)
    if problem is None and not count and "max_tokens" not in body:
        problem = "max_tokens: Field required"
    problem = problem or _messages(body.get("messages"))
    for i, tool in enumerate(body.get("tools") or ()):
        if tool.get("type") in (None, "custom"):
            problem = problem or _extra(f"tools.{i}", tool, TOOL)
    system = body.get("system")
    for i, block in enumerate(system if isinstance(system, list) else ()):
        problem = problem or _block(f"system.{i}", block)
    return problem


# ---- the event stream a client receives ----------------------------------------------------

_DELTAS = {
    "text": {"text_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "tool_use": {"input_json_delta"},
}


class _Order:
    def __init__(self) -> None:
        self.state = "start"  # start -> blocks -> delta -> stopped
        self.open: tuple[int, str] | None = None
        self.next = 0

    def feed(self, name: str, data: dict[str, Any]) -> str | None:
        if name != data.get("type"):
            return f"event {name} carries type {data.get('type')}"
        if name == "ping":
            return None if self.state != "stopped" else "ping after message_stop"
        if name == "error":
            self.state = "stopped"
            return None
        handler = getattr(self, "_" + name, None)
        return handler(data) if handler else f"unknown event {name}"

    def _message_start(self, data: dict[str, Any]) -> str | None:
        if self.state != "start":
            return "message_start not first"
        self.state = "blocks"
        return None

    def _content_block_start(self, data: dict[str, Any]) -> str | None:
        if self.state != "blocks" or self.open is not None:
            return "content_block_start while a block is open or outside the message"
        if data["index"] != self.next:
            return f"block index {data['index']}, expected {self.next}"
        self.open = (data["index"], data["content_block"]["type"])
        self.next += 1
        return None

    def _content_block_delta(self, data: dict[str, Any]) -> str | None:
        if self.open is None or data["index"] != self.open[0]:
            return f"delta for block {data['index']}, open: {self.open}"
        if data["delta"]["type"] not in _DELTAS.get(self.open[1], set()):
            return f"{data['delta']['type']} in a {self.open[1]} block"
        return None

    def _content_block_stop(self, data: dict[str, Any]) -> str | None:
        if self.open is None or data["index"] != self.open[0]:
            return f"stop for block {data['index']}, open: {self.open}"
        self.open = None
        return None

    def _message_delta(self, data: dict[str, Any]) -> str | None:
        if self.state != "blocks" or self.open is not None:
            return "message_delta with a block open"
        self.state = "delta"
        return None if "output_tokens" in data.get("usage", {}) else "message_delta without usage"

    def _message_stop(self, data: dict[str, Any]) -> str | None:
        if self.state != "delta":
            return "message_stop before message_delta"
        self.state = "stopped"
        return None


def stream_problem(events: list[tuple[str, dict[str, Any]]]) -> str | None:
    """What is wrong with a Messages event sequence ((name, data) pairs), or None."""
    order = _Order()
    for name, data in events:
        problem = order.feed(name, data)
        if problem:
            return problem
    return None if order.state == "stopped" else f"stream ended in state {order.state}"
