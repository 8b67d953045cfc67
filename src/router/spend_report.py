"""Spend reports, shared by `GET /admin/spend` and `router spend`: the query's options
checked (each error names its option), and the lines rendered as JSON, CSV or a table."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal, get_args

import msgspec

from router.errors import RequestError
from router.store.ledger_rows import GroupBy, SpendLine, SpendQuery

Format = Literal["json", "csv", "table"]
GROUPS: tuple[str, ...] = get_args(GroupBy)
_HEADER = (
    "group",
    "requests",
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "failed_tokens",
    "cost_usd",
)


class SpendReport(msgspec.Struct, kw_only=True):
    group_by: str
    start: datetime | None
    end: datetime | None
    key: str | None
    data: list[SpendLine]
    total_cost: Decimal
    object: str = "spend"


def when(text: str | None, field: str) -> float | None:
    """Unix seconds from an RFC 3339 time, a date (its midnight UTC) or unix seconds."""
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RequestError(
            "invalid_value", f"{field} takes an RFC 3339 time, a date or unix seconds.", field
        ) from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def query_of(params: Mapping[str, str], formats: tuple[str, ...]) -> tuple[SpendQuery, str]:
    """The query and output format from `group_by`, `start`, `end`, `key`, `format`."""
    group = params.get("group_by", "key")
    if group not in GROUPS:
        raise RequestError(
            "invalid_value", f"group_by must be one of {', '.join(GROUPS)}.", "group_by"
        )
    fmt = params.get("format", formats[0])
    if fmt not in formats:
        raise RequestError(
            "invalid_value", f"format must be one of {', '.join(formats)}.", "format"
        )
    start, end = when(params.get("start"), "start"), when(params.get("end"), "end")
    if start is not None and end is not None and end <= start:
        raise RequestError("invalid_value", "end must be after start.", "end")
    query = SpendQuery(group_by=group, start=start, end=end, key=params.get("key") or None)  # type: ignore[arg-type]  # checked above
    return query, fmt


def report(query: SpendQuery, lines: list[SpendLine]) -> SpendReport:
    def at(seconds: float | None) -> datetime | None:
        return None if seconds is None else datetime.fromtimestamp(seconds, UTC)

    return SpendReport(
        group_by=query.group_by,
        start=at(query.start),
        end=at(query.end),
        key=query.key,
        data=lines,
        total_cost=sum((line.cost for line in lines), Decimal(0)),
    )


def _cells(line: SpendLine) -> list[str]:
    return [
        line.group or "",
        *(str(getattr(line, name)) for name in _HEADER[1:-1]),
        str(line.cost),
    ]


def as_csv(lines: list[SpendLine]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_HEADER)
    writer.writerows(_cells(line) for line in lines)
    return out.getvalue()


def as_table(lines: list[SpendLine]) -> str:
    rows = [list(_HEADER), *(_cells(line) for line in lines)]
    total = sum((line.cost for line in lines), Decimal(0))
    rows.append(["total", str(sum(x.requests for x in lines)), *[""] * 6, str(total)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
    return (
        "\n".join(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in rows
        )
        + "\n"
    )
