"""The public status page: `/status` (HTML, refreshed live by a small script) and its JSON
twin `/status.json`. No key needed, like the model list: each provider's targets with their
circuit state, recent error ratio and latency, and last failure kind. Never a key, a host, a
URL or an upstream message.

Circuit states are the fleet's when Redis links the processes (every worker adopts the
others' breaker changes); error ratios and latencies are always this worker's own, and the
page says which view it shows.
"""

from __future__ import annotations

import os
import time
from html import escape

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router.api.common import ENCODER
from router.api.errors import OwnError
from router.api.openapi import JSON, PUBLIC, TEXT, Errors, Op, Raw
from router.observe.status import Seen, StatusBoard
from router.runtime import Runtime

_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline';"
    " frame-ancestors 'none'"
)
_HEADERS = {"content-security-policy": _CSP, "x-content-type-options": "nosniff"}


class TargetStatus(msgspec.Struct, kw_only=True):
    target: str
    circuit: str  # closed | half_open | open
    attempts: int  # over the recent window, this worker
    error_ratio: float
    latency_ms_median: int | None
    last_failure: str | None
    last_failure_seconds_ago: int | None
    seconds_until_probe: float | None


class ProviderStatus(msgspec.Struct):
    name: str
    targets: list[TargetStatus]


class Status(msgspec.Struct, kw_only=True):
    view: str  # "fleet" (circuits shared over Redis) or "worker"
    note: str
    worker: int  # this worker's process id
    generated_at: float
    providers: list[ProviderStatus]


def _note(fleet: bool) -> str:
    if fleet:
        return (
            "Circuit states are the fleet's (shared over Redis by every worker and host);"
            " error ratios and latencies are this worker's own."
        )
    return (
        "This page shows one worker's view: circuit states, error ratios and latencies of"
        " the process that answered (no Redis links the workers)."
    )


def _target(ref: str, circuit: str, probe: float | None, seen: Seen | None) -> TargetStatus:
    now = time.time()
    outcomes = list(seen.outcomes) if seen else []
    failures = sum(not ok for ok, _ in outcomes)
    times = sorted(ms for _, ms in outcomes)
    age = None
    if seen is not None and seen.last_failure_at is not None:
        age = int(now - seen.last_failure_at)
    return TargetStatus(
        target=ref,
        circuit=circuit,
        attempts=len(outcomes),
        error_ratio=round(failures / len(outcomes), 3) if outcomes else 0.0,
        latency_ms_median=times[len(times) // 2] if times else None,
        last_failure=seen.last_failure if seen else None,
        last_failure_seconds_ago=age,
        seconds_until_probe=probe,
    )


def status(rt: Runtime, board: StatusBoard) -> Status:
    circuits = {b.target: b for b in rt.health.snapshot()}
    refs = set(circuits) | set(board.seen)
    refs |= {t.ref for t in rt.catalog.listed() if t.key or not t.provider.api_key_env}
    providers: dict[str, list[TargetStatus]] = {}
    for ref in sorted(refs):
        b = circuits.get(ref)
        row = _target(
            ref,
            b.state if b else "closed",
            b.seconds_until_probe if b else None,
            board.seen.get(ref),
        )
        providers.setdefault(ref.partition("/")[0], []).append(row)
    fleet = bool(rt.settings.storage.redis_url)
    return Status(
        view="fleet" if fleet else "worker",
        note=_note(fleet),
        worker=os.getpid(),
        generated_at=round(time.time(), 3),
        providers=[ProviderStatus(n, rows) for n, rows in providers.items()],
    )


def _row(t: TargetStatus) -> str:
    latency = "-" if t.latency_ms_median is None else f"{t.latency_ms_median} ms"
    failure = escape(t.last_failure) if t.last_failure else "-"
    if t.last_failure_seconds_ago is not None:
        failure += f" ({t.last_failure_seconds_ago} s ago)"
    return (
        f'<tr class="{t.circuit}"><td><code>{escape(t.target)}</code></td>'
        f'<td class="state">{t.circuit.replace("_", "-")}</td>'
        f'<td class="num">{t.error_ratio:.0%}</td><td class="num">{t.attempts}</td>'
        f'<td class="num">{latency}</td><td>{failure}</td></tr>'
    )


def page(s: Status) -> str:
    rows = "\n".join(_row(t) for p in s.providers for t in p.targets)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Status</title><style>{_STYLE}</style><script src="/assets/status.js" defer></script>
</head><body><h1>Status</h1>
<p id="view" class="note"><strong>{s.view} view.</strong> {escape(s.note)}</p>
<table id="targets"><thead><tr><th>Target</th><th>Circuit</th><th class=num>Errors</th>
<th class=num>Attempts</th><th class=num>Median latency</th><th>Last failure</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<p class="note">Refreshed every 2 seconds from <a href="/status.json">/status.json</a>;
recent = the last 50 attempts per target. <span id="updated"></span></p>
</body></html>
"""


_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;
color:#1b1f24}h1{font-size:1.6rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .6rem;
border-bottom:1px solid #d8dee4}th{background:#f6f8fa}.num{text-align:right}
code{font:13px ui-monospace,monospace}.note{color:#57606a}
tr.open td.state{background:#ffebe9;color:#a40e26;font-weight:600}
tr.half_open td.state{background:#fff8c5;color:#7d4e00;font-weight:600}
tr.closed td.state{color:#1a7f37}
"""

_SCRIPT = b"""'use strict';
function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}
function row(t) {
  const tr = document.createElement('tr');
  tr.className = t.circuit;
  const code = document.createElement('code');
  code.textContent = t.target;
  cell(tr, '').appendChild(code);
  cell(tr, t.circuit.replace('_', '-'), 'state');
  cell(tr, Math.round(t.error_ratio * 100) + '%', 'num');
  cell(tr, String(t.attempts), 'num');
  cell(tr, t.latency_ms_median === null ? '-' : t.latency_ms_median + ' ms', 'num');
  let failure = t.last_failure || '-';
  if (t.last_failure_seconds_ago !== null) failure += ' (' + t.last_failure_seconds_ago + ' s ago)';
  cell(tr, failure);
  return tr;
}
async function refresh() {
  try {
    const s = await (await fetch('/status.json', {cache: 'no-store'})).json();
    const body = document.createElement('tbody');
    for (const p of s.providers) for (const t of p.targets) body.appendChild(row(t));
    document.querySelector('#targets tbody').replaceWith(body);
    document.getElementById('updated').textContent =
      'Updated ' + new Date(s.generated_at * 1000).toLocaleTimeString() + '.';
  } catch (e) {
    document.getElementById('updated').textContent = 'Refresh failed; retrying.';
  }
}
refresh();
setInterval(refresh, 2000);
"""


def routes(rt: Runtime, board: StatusBoard) -> list[Route]:
    async def status_page(request: Request) -> Response:
        html = page(status(rt, board))
        return Response(html, headers=_HEADERS, media_type="text/html; charset=utf-8")

    async def status_json(request: Request) -> Response:
        return Response(
            ENCODER.encode(status(rt, board)), headers=_HEADERS, media_type="application/json"
        )

    async def status_js(request: Request) -> Response:
        return Response(_SCRIPT, headers=_HEADERS, media_type="text/javascript")

    return [
        Route("/status", status_page, methods=["GET", "HEAD"]),
        Route("/status.json", status_json, methods=["GET", "HEAD"]),
        Route("/assets/status.js", status_js, methods=["GET", "HEAD"]),
    ]


_PUBLIC = Errors(OwnError, PUBLIC)
_OBJECT: dict[str, object] = {JSON: Raw({"type": "object"})}
OPERATIONS = (
    Op("GET", "/status", "Provider status page", "Pages", {"text/html": TEXT}, None, _PUBLIC, ()),
    Op(
        "GET",
        "/status.json",
        "Provider status",
        "Pages",
        {JSON: Raw({"type": "object"})},
        None,
        _PUBLIC,
        (),
    ),
    Op(
        "GET",
        "/assets/status.js",
        "The status page's script",
        "Pages",
        {"text/javascript": TEXT},
        None,
        _PUBLIC,
        (),
    ),
)
