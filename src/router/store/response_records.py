"""What a stored OpenAI response is, and the interface every response store offers."""

from __future__ import annotations

from typing import Protocol

import msgspec


class StoredResponse(msgspec.Struct, frozen=True):
    id: str
    response: bytes  # the response object, JSON
    items: bytes  # the conversation's items up to and including this response's output, JSON


class ResponseStore(Protocol):
    async def get(self, response_id: str) -> StoredResponse | None: ...

    def save(self, stored: StoredResponse) -> None:
        """Queue the response for writing; returns at once. A later `get` sees it."""
        ...

    async def delete(self, response_id: str) -> bool:
        """True when it existed."""
        ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...
