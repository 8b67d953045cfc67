"""OpenAI's web search on Chat Completions: the search models are asked with
`web_search_options` and answer with `url_citation` annotations on the message (streamed in
a delta), which become canonical `Sources`. OpenAI reports no search count; an answer that
carries citations counts as one search (the search models bill per call)."""

from __future__ import annotations

import msgspec

from router.core.types import Event, Source, Sources, Target

CAPABILITY = "web_search"


class UrlCitation(msgspec.Struct):
    url: str
    title: str = ""
    start_index: int = 0
    end_index: int = 0


class Annotation(msgspec.Struct):
    type: str = ""
    url_citation: UrlCitation | None = None


def options(target: Target, search: bool) -> dict[str, object] | None:
    """`web_search_options` for a search model asked to search, else None (not sent)."""
    info = target.info
    if search and info is not None and CAPABILITY in info.capabilities:
        return {}
    return None


def sources(annotations: list[Annotation] | None, out: list[Event]) -> bool:
    """Append the Sources the annotations cite; whether there were any."""
    if not annotations:
        return False
    cited = tuple(
        Source(a.url_citation.url, a.url_citation.title)
        for a in annotations
        if a.type == "url_citation" and a.url_citation is not None
    )
    if cited:
        out.append(Sources(cited))
    return bool(cited)
