"""Events -> one answer: text, reasoning, tool calls, usage (estimated when not reported).

Events of choices beyond the first (`n > 1`) are kept apart, one assembler each."""

from __future__ import annotations

import msgspec

from router.core.types import (
    ChatRequest,
    Choice,
    Event,
    Finish,
    FinishReason,
    Logprobs,
    ReasoningDelta,
    Source,
    Sources,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    estimate_prompt,
    estimate_tokens,
)


class Assembler:
    """Accumulates a stream of events into the parts of a completion."""

    __slots__ = (
        "calls",
        "choice",
        "cited",
        "finish",
        "logprobs",
        "others",
        "reasoning",
        "searched",
        "text",
        "usage",
    )

    def __init__(self, choice: int = 0) -> None:
        self.choice = choice  # the choice whose events this one keeps
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, list[str]] = {}  # index -> [id, name, arguments...]
        self.usage: Usage | None = None
        self.finish: FinishReason | None = None
        self.logprobs: msgspec.Raw | None = None
        self.others: dict[int, Assembler] | None = None  # choice index -> its events
        self.cited: dict[str, Source] = {}  # url -> source, in order of first citation
        self.searched: dict[str, Source] = {}  # pages searched, cited or not

    def add(self, events: list[Event]) -> None:
        # Dispatch on the exact type: cheaper per event than isinstance on this hot path,
        # but mypy does not narrow on it, hence the ignores below.
        for e in events:
            kind = type(e)
            if kind is not Usage and e.choice != self.choice:  # type: ignore[union-attr]
                self._other(e.choice).add([e])  # type: ignore[union-attr]
            elif kind is TextDelta:
                self.text.append(e.text)  # type: ignore[union-attr]
            elif kind is Usage:
                self.usage = e  # type: ignore[assignment]
            elif kind is Finish:
                self.finish = e.reason  # type: ignore[union-attr]
            elif kind is ReasoningDelta:
                self.reasoning.append(e.text)  # type: ignore[union-attr]
            elif kind is ToolCallDelta:
                self._add_call(e)  # type: ignore[arg-type]
            elif kind is Logprobs:
                self.logprobs = e.raw  # type: ignore[union-attr]
            elif kind is Sources:
                self._add_sources(e)  # type: ignore[arg-type]

    def _other(self, choice: int) -> Assembler:
        if self.others is None:
            self.others = {}
        found = self.others.get(choice)
        if found is None:
            found = self.others[choice] = Assembler(choice)
        return found

    def _add_call(self, delta: ToolCallDelta) -> None:
        call = self.calls.setdefault(delta.index, ["", ""])
        if delta.id:
            call[0] = delta.id
        if delta.name:
            call[1] = delta.name
        call.append(delta.arguments)

    def _add_sources(self, event: Sources) -> None:
        into = self.cited if event.cited else self.searched
        for source in event.sources:
            known = into.get(source.url)
            if known is None or (not known.title and source.title):
                into[source.url] = source

    def sources(self) -> tuple[Source, ...]:
        """The cited pages in order of first citation, deduplicated, then the pages searched
        but not cited."""
        cited = self.cited
        rest = [s for url, s in self.searched.items() if url not in cited]
        return (*(_titled(s, self.searched) for s in cited.values()), *rest)

    def full_text(self) -> str:
        return "".join(self.text)

    def tool_calls(self) -> list[ToolCall]:
        return [ToolCall(c[0], c[1], "".join(c[2:])) for _, c in sorted(self.calls.items())]

    def choices(self) -> tuple[Choice, ...]:
        """The choices beyond the first, in order."""
        if not self.others:
            return ()
        return tuple(
            Choice(i, a.full_text(), tuple(a.tool_calls()), a.finish or "stop", a.logprobs)
            for i, a in sorted(self.others.items())
        )

    def final_usage(self, request: ChatRequest) -> Usage:
        """The reported usage, or an estimate marked as such."""
        if self.usage is not None:
            return self.usage
        produced = "".join(self.text) + "".join(self.reasoning)
        produced += "".join("".join(c[2:]) for c in self.calls.values())
        return Usage(estimate_prompt(request), estimate_tokens(produced), estimated=True)


def _titled(source: Source, searched: dict[str, Source]) -> Source:
    """A citation without a title takes the one its search result had."""
    if source.title:
        return source
    found = searched.get(source.url)
    return found if found is not None else source
