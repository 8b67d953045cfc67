"""The built-in `demo` provider: deterministic answers with no network and no API key.

The reply is derived from the last user message, so tests and first-time users get the same
answer every time; streams are paced like a real model (a first token, then word by word).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from router.core.media import MEDIA_KINDS, MediaKind, MediaReply, MediaRequest
from router.core.types import (
    ChatRequest,
    Event,
    Finish,
    FinishReason,
    Target,
    TextDelta,
    Usage,
    estimate_prompt,
)
from router.protocols import demo_media

FIRST_TOKEN_DELAY = 0.05
WORD_DELAY = 0.01


def reply_for(request: ChatRequest) -> str:
    last_user = next((m.text() for m in reversed(request.messages) if m.role == "user"), "")
    words = last_user.split()
    if not words:
        return "Hello from the demo model. Send a message and I will echo it back."
    return f"You said: {' '.join(words)}"


def _answer(request: ChatRequest) -> tuple[list[str], FinishReason, Usage]:
    words = reply_for(request).split(" ")
    finish: FinishReason = "stop"
    if request.max_tokens is not None and len(words) > request.max_tokens:
        words, finish = words[: request.max_tokens], "length"
    pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    return pieces, finish, Usage(estimate_prompt(request), completion_tokens=len(pieces))


class DemoBackend:
    """Answers `demo/*` models locally: chat here, the other endpoints in `demo_media`."""

    media_kinds: frozenset[MediaKind] = frozenset(MEDIA_KINDS)
    accepts: frozenset[str] = frozenset({"max_tokens"})  # the rest cannot change its answer
    dialect = "demo"

    def __init__(
        self, first_token_delay: float = FIRST_TOKEN_DELAY, word_delay: float = WORD_DELAY
    ):
        self.first_token_delay = first_token_delay
        self.word_delay = word_delay

    async def complete(
        self, target: Target, request: ChatRequest, timeout: float | None
    ) -> list[Event]:
        pieces, finish, usage = _answer(request)
        await asyncio.sleep(self.first_token_delay + self.word_delay * (len(pieces) - 1))
        return [TextDelta("".join(pieces)), Finish(finish), usage]

    async def stream(
        self,
        target: Target,
        request: ChatRequest,
        first_token: float,
        stall: float | None = None,
    ) -> AsyncGenerator[list[Event], None]:
        pieces, finish, usage = _answer(request)
        await asyncio.sleep(self.first_token_delay)
        for i, piece in enumerate(pieces):
            if i:
                await asyncio.sleep(self.word_delay)
            yield [TextDelta(piece)]
        yield [Finish(finish), usage]

    async def forward(self, target: Target, request: MediaRequest, timeout: float) -> MediaReply:
        # Off the event loop: a large embedding batch is CPU work of its own.
        return await asyncio.to_thread(demo_media.answer, target.model, request)
