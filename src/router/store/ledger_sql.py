"""The ledger's SQL, shared by the SQLite and PostgreSQL stores: the table and the report
query, with each dialect's placeholders and day expression."""

from __future__ import annotations

from collections.abc import Callable

from router.store.ledger_rows import COLUMNS, SUMMED, SpendQuery

TABLE = "router_ledger"


def schema(decimal: str, real: str) -> str:
    """The table and its indexes; `decimal` and `real` are the dialect's column types."""
    return f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    request_id TEXT PRIMARY KEY,
    ts {real} NOT NULL,
    key_id TEXT,
    key_name TEXT NOT NULL,
    team TEXT,
    surface TEXT NOT NULL,
    stream BOOLEAN NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER,
    input_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    failed_tokens BIGINT NOT NULL,
    input_cost {decimal},
    cached_cost {decimal},
    cache_write_cost {decimal},
    output_cost {decimal},
    reasoning_cost {decimal},
    failed_cost {decimal},
    total_cost {decimal},
    latency_ms INTEGER NOT NULL,
    ttft_ms INTEGER,
    attempts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {TABLE}_ts ON {TABLE} (ts);
CREATE INDEX IF NOT EXISTS {TABLE}_key_ts ON {TABLE} (key_id, ts);
"""


def insert(placeholder: Callable[[int], str], conflict: str) -> str:
    marks = ", ".join(placeholder(i + 1) for i in range(len(COLUMNS)))
    return f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({marks}) {conflict}"


def group_expr(group_by: str, day: str) -> str:
    return {
        "key": "key_id",
        "team": "team",
        "provider": "provider",
        "model": "provider || '/' || model",
        "surface": "surface",
        "day": day,
    }[group_by]


def spend(
    query: SpendQuery, placeholder: Callable[[int], str], day: str, total: str
) -> tuple[str, list[object]]:
    """The report's SQL and arguments: one line per group, sorted by group."""
    where: list[str] = []
    args: list[object] = []
    for column, op, value in (
        ("ts", ">=", query.start),
        ("ts", "<", query.end),
        ("key_id", "=", query.key),
    ):
        if value is not None:
            args.append(value)
            where.append(f"{column} {op} {placeholder(len(args))}")
    group = group_expr(query.group_by, day)
    sums = ", ".join(f"SUM({c})" for c in SUMMED)
    sql = (
        f"SELECT {group} AS g, COUNT(*), {sums}, {total} FROM {TABLE}"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " GROUP BY g ORDER BY g"
    )
    return sql, args
