"""Stored OpenAI Responses in PostgreSQL, shared by every gateway replica.

Selected by `storage.database = "postgresql://..."`. A save leaves the request path as a task;
a read of the same id in this process waits for it, so a client that continues on the same
replica always finds its previous response.
"""

from __future__ import annotations

import time
from functools import partial

from router.store.pending import PendingWrites
from router.store.pg import PostgresTables
from router.store.response_records import StoredResponse

_SCHEMA = """
CREATE TABLE IF NOT EXISTS router_responses (
    id TEXT PRIMARY KEY,
    response BYTEA NOT NULL,
    items BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
"""


class PostgresResponses(PostgresTables):
    schema = _SCHEMA
    lock = 7223012
    connections = 5

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._writes = PendingWrites("response")

    async def get(self, response_id: str) -> StoredResponse | None:
        await self._writes.wait(response_id)
        row = await self.pool.fetchrow(
            "SELECT response, items FROM router_responses WHERE id = $1", response_id
        )
        return None if row is None else StoredResponse(response_id, row["response"], row["items"])

    @property
    def failed_writes(self) -> int:
        return self._writes.failed

    def save(self, stored: StoredResponse) -> None:
        self._writes.start(stored.id, partial(self._save, stored))

    async def _save(self, stored: StoredResponse) -> None:
        await self.pool.execute(
            "INSERT INTO router_responses (id, response, items, created_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE"
            " SET response = EXCLUDED.response, items = EXCLUDED.items",
            stored.id,
            stored.response,
            stored.items,
            time.time(),
        )

    async def delete(self, response_id: str) -> bool:
        await self._writes.wait(response_id)
        status = await self.pool.execute("DELETE FROM router_responses WHERE id = $1", response_id)
        return bool(status != "DELETE 0")

    async def flush(self) -> None:
        await self._writes.flush()

    async def close(self) -> None:
        await self.flush()
        await super().close()
