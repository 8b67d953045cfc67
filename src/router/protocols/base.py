"""What a wire protocol adapter is: a codec between canonical types and one provider dialect.

An adapter never does I/O. `router.upstream` sends what `build` returns and hands the bytes
back to `parse_response` / a `StreamDecoder`; errors are classified by `classify`.
"""

from __future__ import annotations

from typing import Protocol

from router.core.types import ChatRequest, Target
from router.upstream import Decoding, HttpCall


class Codec(Decoding, Protocol):
    """A wire protocol: canonical request in, canonical events out (`Decoding`), errors
    classified."""

    accepts: frozenset[str]  # the canonical parameters it maps (`ChatRequest.params()`)
    dialect: str  # the `Native.protocol` whose passthrough fields it sends

    def build(self, target: Target, request: ChatRequest, stream: bool) -> HttpCall: ...
