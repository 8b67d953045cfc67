"""The ledger in PostgreSQL, when `storage.database` is a URL: costs as NUMERIC (exact), rows
inserted in one statement per batch."""

from __future__ import annotations

import asyncpg

from router.store import ledger_sql
from router.store.ledger import LedgerWriteError
from router.store.ledger_rows import LedgerRow, SpendLine, SpendQuery, line_of, values
from router.store.pg import PostgresTables

_DAY = "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
_INSERT = ledger_sql.insert(lambda i: f"${i}", "ON CONFLICT (request_id) DO NOTHING")


class LedgerPostgres(PostgresTables):
    schema = ledger_sql.schema("NUMERIC", "DOUBLE PRECISION")
    lock = 7223013

    async def write(self, rows: list[LedgerRow]) -> None:
        try:
            async with self.pool.acquire() as conn:
                await conn.executemany(_INSERT, [values(r) for r in rows])
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise LedgerWriteError(f"PostgreSQL: {type(exc).__name__}: {exc}") from None

    async def spend(self, query: SpendQuery) -> list[SpendLine]:
        sql, args = ledger_sql.spend(query, lambda i: f"${i}", _DAY, "SUM(total_cost)")
        async with self.pool.acquire() as conn:
            return [line_of(tuple(row)) for row in await conn.fetch(sql, *args)]
