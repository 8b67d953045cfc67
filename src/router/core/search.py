"""`search: true`: which targets search natively, and the gateway-run search for the others.

A model whose catalog entry lists the `web_search` capability searches itself: its codec asks
for the provider's own search tool. Every other model is answered from the gateway-run search
(`[search]` in routing.toml, a `Searcher`): searched once per request from the last user
message, the results given to the model as numbered sources it is asked to cite as `[n]`;
the same results serve every attempt of the chain. `Grounding` wraps each backend to do this
per target, so the gateway itself knows nothing of search.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator

import msgspec

from router.core.media import MediaKind, MediaReply, MediaRequest
from router.core.ports import Backend
from router.core.types import (
    Attempt,
    ChatRequest,
    Event,
    Found,
    Message,
    Source,
    Sources,
    Target,
    TextDelta,
    TextPart,
)
from router.errors import Failure, RequestError

CAPABILITY = "web_search"
QUERY_LIMIT = 400  # characters of the last user message sent as the query
_MARKER = re.compile(r"\[(\d{1,2}(?:\s*,\s*\d{1,2})*)\]")
_INSTRUCTIONS = (
    "Web search results for the user's last message follow, numbered. Ground your answer in "
    "them where they are relevant and cite each source you use with its number in square "
    "brackets, like [1] or [2][3], right after the statement it supports.\n"
)


def native(target: Target) -> bool:
    """Whether `target` searches by itself (its catalog entry lists `web_search`)."""
    return target.info is not None and CAPABILITY in target.info.capabilities


def query_of(request: ChatRequest) -> str:
    """The search query: the last user message's text, whitespace folded, cut to a limit."""
    last = next((m for m in reversed(request.messages) if m.role == "user"), None)
    text = " ".join(last.text().split()) if last is not None else ""
    return text[:QUERY_LIMIT]


def grounded(request: ChatRequest) -> ChatRequest:
    """The request for a model that cannot search: the gateway's results as numbered sources
    in a system message placed before the last user message."""
    lines = [_INSTRUCTIONS]
    for n, found in enumerate(request.found, 1):
        lines.append(f"[{n}] {found.title}\n{found.url}\n{found.snippet}\n")
    context = Message("system", (TextPart("\n".join(lines)),))
    messages = list(request.messages)
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=len(messages))
    messages.insert(last_user, context)
    return _replace(request, tuple(messages))


def _replace(request: ChatRequest, messages: tuple[Message, ...]) -> ChatRequest:
    return msgspec.structs.replace(request, messages=messages, search=False, found=())


def cited(text: str, found: tuple[Found, ...]) -> list[Event]:
    """The Sources events of an answer to a grounded request: the results its `[n]` markers
    cite, in order of first citation, then all results as searched."""
    order: dict[int, None] = {}
    for match in _MARKER.finditer(text):
        for number in match.group(1).split(","):
            n = int(number)
            if 1 <= n <= len(found):
                order.setdefault(n, None)
    pages = tuple(Source(f.url, f.title) for f in found)
    out: list[Event] = []
    if order:
        out.append(Sources(tuple(pages[n - 1] for n in order)))
    if pages:
        out.append(Sources(pages, cited=False))
    return out


def unable(
    targets: list[Target], asked: bool, gateway_search: bool
) -> tuple[list[Target], list[Attempt]]:
    """(targets that can answer, skipped ones). When search is `asked` for and there is no
    gateway search, only the models that search natively can; if none of the chain can, a
    400 names them and what to configure."""
    if not asked or gateway_search:
        return targets, []
    keep = [t for t in targets if native(t)]
    if targets and not keep:
        names = ", ".join(t.ref for t in targets)
        raise RequestError(
            "search_unavailable",
            f"Web search was asked for, but no model of the chain can search ({names}), and"
            " no gateway search is configured: add a search-capable model (one whose provider"
            " file lists the `web_search` capability) or set up `[search]` in routing.toml.",
            "search",
        )
    skipped = [_no_search(t) for t in targets if not native(t)]
    return keep, skipped


def _no_search(target: Target) -> Attempt:
    reason = "cannot search the web and no gateway search is configured"
    return Attempt(target.provider.name, target.model, Failure.NO_SEARCH.value, reason=reason)


class Grounding:
    """A backend that answers a request with gateway search results (`ChatRequest.found`)
    from a target that cannot search: the results go in as context, Sources come out."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.media_kinds: frozenset[MediaKind] = inner.media_kinds
        self.accepts: frozenset[str] = inner.accepts
        self.dialect: str = inner.dialect

    async def complete(
        self, target: Target, request: ChatRequest, timeout: float | None
    ) -> list[Event]:
        if not request.found or native(target):
            return await self.inner.complete(target, request, timeout)
        events = await self.inner.complete(target, grounded(request), timeout)
        text = "".join(e.text for e in events if type(e) is TextDelta and e.choice == 0)
        return events + cited(text, request.found)

    def stream(
        self,
        target: Target,
        request: ChatRequest,
        first_token: float,
        stall: float | None = None,
    ) -> AsyncGenerator[list[Event], None]:
        if not request.found or native(target):
            return self.inner.stream(target, request, first_token, stall)
        return self._grounded_stream(target, request, first_token, stall)

    async def _grounded_stream(
        self,
        target: Target,
        request: ChatRequest,
        first_token: float,
        stall: float | None = None,
    ) -> AsyncGenerator[list[Event], None]:
        text: list[str] = [request.prefill or ""]
        inner = self.inner.stream(target, grounded(request), first_token, stall)
        try:
            async for batch in inner:
                text.extend(e.text for e in batch if type(e) is TextDelta and e.choice == 0)
                yield batch
        finally:
            await inner.aclose()
        yield cited("".join(text), request.found)

    async def forward(self, target: Target, request: MediaRequest, timeout: float) -> MediaReply:
        return await self.inner.forward(target, request, timeout)
