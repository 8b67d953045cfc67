"""The spend ledger: an observer that turns each billed call into one row, written in batches
off the request path, and never loses one.

- `finished(report)` (sync, on the request path) appends a row to a queue: no I/O.
- one background task writes the queue in batches (`batch` rows, or what gathered in
  `interval` seconds) through a `LedgerDb` (SQLite by default, PostgreSQL when
  `storage.database` is a URL);
- a write that fails (the database restarting, a lock) is retried with backoff, the rows
  kept in order; each failure is counted, the outage logged once;
- the queue is bounded: when `limit` rows wait, `admit()` (awaited by the surface kit before
  a request is taken on) holds new requests until the writer catches up. Rows of calls
  already running are always accepted, so memory is bounded by `limit` + calls in flight;
- `close()` (the lifespan's stop, after uvicorn's graceful shutdown: SIGTERM) writes every
  row left before returning. A row is keyed by its request id, so a batch retried after a
  write that half succeeded never makes two rows.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from router.core.types import Attempt, Report, Target, Usage
from router.errors import RouterError
from router.store.ledger_rows import LedgerRow, SpendLine, SpendQuery, billable, row_of

log = logging.getLogger("router.ledger")


class LedgerWriteError(RouterError):
    """A batch could not be written (the database's own error, by name, in the message)."""


class LedgerDb(Protocol):
    async def write(self, rows: list[LedgerRow]) -> None:
        """Insert `rows` (ignoring request ids already there); LedgerWriteError on failure."""
        ...

    async def spend(self, query: SpendQuery) -> list[SpendLine]: ...

    async def close(self) -> None: ...


class LedgerCounters(Protocol):
    """Where the ledger's work is counted (`router.metrics.Metrics`)."""

    def ledger_written(self, rows: int) -> None: ...

    def ledger_error(self) -> None: ...

    def ledger_queued(self, rows: int) -> None: ...


class Ledger:
    """The `Observer` of `router.core.ports` that bills calls, owned by the runtime."""

    def __init__(
        self,
        db: LedgerDb,
        counters: LedgerCounters,
        team_of: Callable[[str | None], str | None] = lambda key_id: None,
        *,
        batch: int = 500,
        interval: float = 0.2,
        limit: int = 10_000,
        backoff: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        self.db = db
        self.counters = counters
        self.team_of = team_of
        self.batch = batch
        self.interval = interval
        self.limit = limit
        self.backoff = backoff
        self._rows: collections.deque[LedgerRow] = collections.deque()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[None] | None = None
        self._down = False
        self._lock = asyncio.Lock()  # one flush at a time: rows leave the queue in order

    # ---- the Observer -------------------------------------------------------------------

    def attempted(self, target: Target, attempt: Attempt, usage: Usage | None) -> None:
        """Attempts are billed with their call (`finished`), from its trail."""

    def finished(self, report: Report) -> None:
        if not billable(report):
            return
        self._rows.append(row_of(report, self.team_of(report.key_id)))
        if len(self._rows) >= self.limit:
            self._room.clear()
        self._wake.set()

    # ---- back-pressure ------------------------------------------------------------------

    @property
    def full(self) -> bool:
        return not self._room.is_set()

    async def admit(self) -> None:
        """Wait, if the queue is full, until the writer has made room."""
        if not self._room.is_set():
            await self._room.wait()

    @property
    def queued(self) -> int:
        return len(self._rows)

    # ---- the writer ---------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="router-ledger-writer")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.interval)  # let a batch gather
            await self.flush()

    async def flush(self, attempts: int | None = None) -> bool:
        """Write every queued row; retry failures (`attempts` times, or for ever). True when
        the queue is empty."""
        async with self._lock:
            return await self._flush(attempts)

    async def _flush(self, attempts: int | None) -> bool:
        failures = 0
        while self._rows:
            rows = [self._rows[i] for i in range(min(self.batch, len(self._rows)))]
            try:
                await self.db.write(rows)
            except LedgerWriteError as exc:
                failures += 1
                self._failed(exc)
                if attempts is not None and failures >= attempts:
                    return False
                await asyncio.sleep(min(self.backoff[1], self.backoff[0] * 2 ** (failures - 1)))
                continue
            self._written(len(rows))
        return True

    def _written(self, count: int) -> None:
        for _ in range(count):
            self._rows.popleft()
        self.counters.ledger_written(count)
        self.counters.ledger_queued(len(self._rows))
        if len(self._rows) < self.limit:
            self._room.set()
        if self._down:
            self._down = False
            log.warning("ledger: writes work again")

    def _failed(self, exc: LedgerWriteError) -> None:
        self.counters.ledger_error()
        self.counters.ledger_queued(len(self._rows))
        if not self._down:
            self._down = True
            log.error("ledger: a write failed (%s); rows are kept and retried", exc)

    async def close(self, attempts: int = 20) -> None:
        """Stop the writer, write what is left (retrying), then close the database."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not await self.flush(attempts):
            log.error("ledger: %d rows could not be written before stopping", len(self._rows))
        await self.db.close()

    async def spend(self, query: SpendQuery) -> list[SpendLine]:
        """Totals, after writing what is queued (so a report includes calls just ended)."""
        await self.flush(attempts=3)
        return await self.db.spend(query)
