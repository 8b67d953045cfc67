"""Events -> one answer: text, reasoning, tool calls, usage (estimated when not reported)."""

from __future__ import annotations

from router.core.types import (
    ChatRequest,
    Event,
    Finish,
    FinishReason,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)


def estimate_tokens(text: str) -> int:
    """About four characters a token: used only where a provider reported no usage."""
    return (len(text) + 3) // 4


def estimate_prompt(request: ChatRequest) -> int:
    return sum(estimate_tokens(m.text()) + 4 for m in request.messages)


class Assembler:
    """Accumulates a stream of events into the parts of a completion."""

    __slots__ = ("calls", "finish", "reasoning", "text", "usage")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, list[str]] = {}  # index -> [id, name, arguments...]
        self.usage: Usage | None = None
        self.finish: FinishReason | None = None

    def add(self, events: list[Event]) -> None:
        # Dispatch on the exact type: cheaper per event than isinstance on this hot path,
        # but mypy does not narrow on it, hence the ignores below.
        for e in events:
            kind = type(e)
            if kind is TextDelta:
                self.text.append(e.text)  # type: ignore[union-attr]
            elif kind is Usage:
                self.usage = e  # type: ignore[assignment]
            elif kind is Finish:
                self.finish = e.reason  # type: ignore[union-attr]
            elif kind is ReasoningDelta:
                self.reasoning.append(e.text)  # type: ignore[union-attr]
            elif kind is ToolCallDelta:
                self._add_call(e)  # type: ignore[arg-type]

    def _add_call(self, delta: ToolCallDelta) -> None:
        call = self.calls.setdefault(delta.index, ["", ""])
        if delta.id:
            call[0] = delta.id
        if delta.name:
            call[1] = delta.name
        call.append(delta.arguments)

    def full_text(self) -> str:
        return "".join(self.text)

    def tool_calls(self) -> list[ToolCall]:
        return [ToolCall(c[0], c[1], "".join(c[2:])) for _, c in sorted(self.calls.items())]

    def final_usage(self, request: ChatRequest) -> Usage:
        """The reported usage, or an estimate marked as such."""
        if self.usage is not None:
            return self.usage
        produced = "".join(self.text) + "".join(self.reasoning)
        produced += "".join("".join(c[2:]) for c in self.calls.values())
        return Usage(estimate_prompt(request), estimate_tokens(produced), estimated=True)
