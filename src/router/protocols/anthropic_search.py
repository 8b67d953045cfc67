"""Anthropic's web search: the `web_search_20250305` server tool. Answers carry
`server_tool_use` and `web_search_tool_result` blocks (the pages searched) and text blocks
with `citations` of type `web_search_result_location` (streamed as `citations_delta`); usage
counts `server_tool_use.web_search_requests`. Those become canonical `Sources` and
`Usage.searches`."""

from __future__ import annotations

import msgspec

from router.core.types import Event, Source, Sources, Target

CAPABILITY = "web_search"
MAX_USES = 5  # searches one answer may run


class ServerTool(msgspec.Struct, omit_defaults=True):
    type: str
    name: str
    max_uses: int | None = None


class Citation(msgspec.Struct):
    type: str = ""
    url: str | None = None
    title: str | None = None


class Result(msgspec.Struct):
    type: str = ""
    url: str = ""
    title: str = ""


_RESULTS = msgspec.json.Decoder(list[Result])


def tool(target: Target, search: bool) -> ServerTool | None:
    """The web search server tool for a model that can search and was asked to."""
    info = target.info
    if search and info is not None and CAPABILITY in info.capabilities:
        return ServerTool("web_search_20250305", "web_search", MAX_USES)
    return None


def cited(citations: list[Citation] | None, out: list[Event]) -> None:
    pages = tuple(
        Source(c.url, c.title or "")
        for c in citations or ()
        if c.type == "web_search_result_location" and c.url
    )
    if pages:
        out.append(Sources(pages))


def searched(content: msgspec.Raw, out: list[Event]) -> None:
    """The pages of a `web_search_tool_result` block (an error result lists none)."""
    raw = bytes(content)
    if not raw.lstrip().startswith(b"["):
        return
    try:
        results = _RESULTS.decode(raw)
    except msgspec.DecodeError:
        return
    pages = tuple(Source(r.url, r.title) for r in results if r.type == "web_search_result")
    if pages:
        out.append(Sources(pages, cited=False))
