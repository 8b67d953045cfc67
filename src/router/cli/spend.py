"""`router spend`: ledger totals from the command line, read from the database named by
routing.toml's `storage.database` (the one the gateways write).

    router spend [--group-by key|team|provider|model|surface|day] [--start T] [--end T]
                 [--key ID] [--format table|json|csv] [--config routing.toml]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import msgspec

from router import spend_report
from router.config import load_settings
from router.errors import ConfigError, RequestError
from router.store import database_path
from router.store.ledger_rows import SpendLine, SpendQuery
from router.store.ledger_sqlite import open_ledger_db

_ENCODE = msgspec.json.Encoder(decimal_format="number").encode


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="router spend", description="Spend totals from the ledger.")
    p.add_argument("--config", default=os.environ.get("ROUTER_CONFIG", "routing.toml"))
    p.add_argument("--group-by", default="key", choices=spend_report.GROUPS)
    p.add_argument("--start", default=None)
    p.add_argument("--end", default=None)
    p.add_argument("--key", default=None)
    p.add_argument("--format", default="table", choices=("table", "json", "csv"))
    return p


async def _lines(database: str, query: SpendQuery) -> list[SpendLine]:
    db = await open_ledger_db(database)
    try:
        return await db.spend(query)
    finally:
        await db.close()


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    options = {
        "group_by": args.group_by,
        "format": args.format,
        **{k: v for k, v in (("start", args.start), ("end", args.end), ("key", args.key)) if v},
    }
    try:
        query, fmt = spend_report.query_of(options, ("table", "json", "csv"))
        lines = asyncio.run(_lines(database_path(load_settings(args.config)), query))
    except (ConfigError, RequestError) as exc:
        print(f"router spend: {exc}", file=sys.stderr)
        return 2
    if fmt == "json":
        sys.stdout.write(_ENCODE(spend_report.report(query, lines)).decode() + "\n")
    elif fmt == "csv":
        sys.stdout.write(spend_report.as_csv(lines))
    else:
        sys.stdout.write(spend_report.as_table(lines))
    return 0
