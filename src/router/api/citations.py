"""OpenAI's `url_citation` annotations, rendered from the canonical sources of any answer.

Canonical sources carry no text positions, so `start_index`/`end_index` are 0: the pages
cited, in order of first citation, as the OpenAI SDKs read them."""

from __future__ import annotations

import msgspec

from router.core.types import Completion


class UrlCitation(msgspec.Struct):
    url: str
    title: str
    start_index: int = 0
    end_index: int = 0


class Annotation(msgspec.Struct):
    url_citation: UrlCitation
    type: str = "url_citation"


def cited_in(completion: Completion) -> list[Annotation]:
    return [Annotation(UrlCitation(s.url, s.title)) for s in completion.sources]
