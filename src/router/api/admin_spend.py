"""`GET /admin/spend` (master key): ledger totals over a time range.

group_by = key | team | provider | model | surface | day   (default key)
start, end   RFC 3339 times, dates (midnight UTC) or unix seconds; start <= ts < end
key          one key id only
format       json (default) | csv
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router import spend_report
from router.api.common import json_response
from router.api.errors import OwnError
from router.api.openapi import JSON, TEXT, Errors, Op
from router.runtime import Runtime
from router.spend_report import SpendReport


def routes(rt: Runtime) -> list[Route]:
    async def spend(request: Request) -> Response:
        principal = await rt.auth.authenticate(request.headers.get("authorization"))
        rt.auth.require_master(principal)
        query, fmt = spend_report.query_of(request.query_params, ("json", "csv"))
        lines = await rt.ledger.spend(query)
        if fmt == "csv":
            return Response(spend_report.as_csv(lines), media_type="text/csv")
        return json_response(spend_report.report(query, lines))

    return [Route("/admin/spend", spend, methods=["GET"])]


OPERATIONS = (
    Op(
        "GET",
        "/admin/spend",
        "Spend totals from the ledger",
        "Admin",
        {JSON: SpendReport, "text/csv": TEXT},
        None,
        Errors(OwnError, (400, 401, 403, 500, 503)),
    ),
)
