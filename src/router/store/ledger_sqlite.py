"""The ledger in SQLite (the default): the same file as keys and conversations, one
dedicated thread, costs stored as decimal text and summed exactly (`dsum`)."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from router.store import ledger_sql
from router.store.ledger import LedgerDb, LedgerWriteError
from router.store.ledger_rows import LedgerRow, SpendLine, SpendQuery, line_of, values
from router.store.sqlite import connect

_DAY = "strftime('%Y-%m-%d', ts, 'unixepoch')"


class _DecimalSum:
    """SUM over decimal text, exact (SQLite's own SUM would go through floats)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: object, /) -> None:
        if value is not None:
            self.total += Decimal(str(value))

    def finalize(self) -> str:
        return str(self.total)


def _text(value: object) -> object:
    return str(value) if isinstance(value, Decimal) else value


class LedgerSqlite:
    """Synchronous core on one thread; the async methods are the `LedgerDb` interface."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-ledger")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> LedgerSqlite:
        await self._run(self._open)
        return self

    def _open(self) -> None:
        db = connect(self.path, ledger_sql.schema("TEXT", "REAL"))
        # typeshed types aggregates as returning int only; SQLite accepts text
        db.create_aggregate("dsum", 1, _DecimalSum)  # type: ignore[arg-type]
        self._db = db

    async def _run(self, fn: object, *args: object) -> object:
        return await asyncio.wrap_future(self._pool.submit(fn, *args))  # type: ignore[arg-type]

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "ledger not open"
        return self._db

    def _write(self, rows: list[LedgerRow]) -> None:
        sql = ledger_sql.insert(lambda i: "?", "ON CONFLICT (request_id) DO NOTHING")
        try:
            with self.db:
                self.db.executemany(sql, [tuple(map(_text, values(r))) for r in rows])
        except sqlite3.Error as exc:
            raise LedgerWriteError(f"SQLite: {type(exc).__name__}: {exc}") from None

    async def write(self, rows: list[LedgerRow]) -> None:
        await self._run(self._write, rows)

    def _spend(self, query: SpendQuery) -> list[SpendLine]:
        sql, args = ledger_sql.spend(query, lambda i: "?", _DAY, "dsum(total_cost)")
        return [line_of(row) for row in self.db.execute(sql, args)]

    async def spend(self, query: SpendQuery) -> list[SpendLine]:
        return await self._run(self._spend, query)  # type: ignore[return-value]

    def _rows(self) -> list[tuple[object, ...]]:
        return list(self.db.execute(f"SELECT * FROM {ledger_sql.TABLE} ORDER BY ts"))

    async def rows(self) -> list[tuple[object, ...]]:
        """Every row, oldest first (tests and exports)."""
        return await self._run(self._rows)  # type: ignore[return-value]

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
        self._pool.shutdown(wait=True)


async def open_ledger_db(database: str) -> LedgerDb:
    """The ledger's store for `storage.database`: a SQLite path or a PostgreSQL URL."""
    if database.startswith(("postgresql://", "postgres://")):
        from router.store.ledger_postgres import LedgerPostgres  # asyncpg only when asked for

        return await LedgerPostgres(database).open()
    return await LedgerSqlite(database).open()
