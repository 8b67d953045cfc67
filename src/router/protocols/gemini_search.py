"""Gemini's Google Search grounding: the `google_search` tool, answered with
`groundingMetadata` (`webSearchQueries`, `groundingChunks`, `groundingSupports`), which
becomes canonical `Sources` and `Usage.searches`."""

from __future__ import annotations

from router.core.types import Event, Source, Sources
from router.protocols import gemini_wire as wire


def grounding(metadata: wire.Grounding, out: list[Event]) -> int:
    """Sources of `groundingMetadata`: the chunks its supports cite, in order of first
    citation, then every chunk; returns the searches run (`webSearchQueries`)."""
    pages = [Source(c.web.uri, c.web.title) for c in metadata.groundingChunks if c.web]
    order = dict.fromkeys(
        i for s in metadata.groundingSupports for i in s.groundingChunkIndices if i < len(pages)
    )
    if order:
        out.append(Sources(tuple(pages[i] for i in order)))
    if pages:
        out.append(Sources(tuple(pages), cited=False))
    return len(metadata.webSearchQueries) or int(bool(pages))
