"""The public model list: `/models/` (an HTML page) and `/assets/models.json`.

Both are generated once, at start-up, from the catalog: each model's name, type, context
window and prices, plus the aliases. Never a key, a key variable's name or an upstream URL.
No script, no external resource: a strict Content-Security-Policy says so. Off when
`server.public_models_page = false`.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router.api.common import ENCODER
from router.api.errors import OwnError
from router.api.openapi import JSON, PUBLIC, TEXT, Errors, Op
from router.config import Prices
from router.core.catalog import Catalog
from router.core.types import Target
from router.runtime import Runtime

_TYPES = ("chat", "embedding", "image", "speech", "transcription")
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


class PublicPrices(msgspec.Struct, omit_defaults=True):
    """USD: tokens per 1M, images each, characters per 1M, audio per second."""

    input_per_1m_tokens: Decimal | None = None
    output_per_1m_tokens: Decimal | None = None
    cached_input_per_1m_tokens: Decimal | None = None
    per_image: Decimal | None = None
    per_1m_characters: Decimal | None = None
    per_second: Decimal | None = None


class PublicModel(msgspec.Struct):
    name: str
    provider: str
    model: str
    type: str
    context_window: int | None
    max_output_tokens: int | None
    prices: PublicPrices


class PublicAlias(msgspec.Struct):
    name: str
    chain: tuple[str, ...]


class PublicList(msgspec.Struct):
    models: list[PublicModel]
    aliases: list[PublicAlias]


def _prices(p: Prices) -> PublicPrices:
    return PublicPrices(
        input_per_1m_tokens=p.input,
        output_per_1m_tokens=p.output,
        cached_input_per_1m_tokens=p.cached_input,
        per_image=p.per_image,
        per_1m_characters=p.per_1m_characters,
        per_second=p.per_second,
    )


def _model(t: Target) -> PublicModel:
    info = t.info
    assert info is not None  # only catalog models are listed
    return PublicModel(
        name=t.ref,
        provider=t.provider.name,
        model=t.model,
        type=info.type,
        context_window=info.context_window,
        max_output_tokens=info.max_output_tokens,
        prices=_prices(info.prices),
    )


def public_list(catalog: Catalog) -> PublicList:
    models = sorted((_model(t) for t in catalog.listed()), key=lambda m: (m.type != "chat", m.name))
    aliases = [PublicAlias(name, chain) for name, chain in sorted(catalog.aliases.items())]
    return PublicList(models, aliases)


# ---- HTML ---------------------------------------------------------------------------------


def _money(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "$" + (text if "." not in text or len(text.split(".")[1]) > 1 else text + "0")


def price_text(p: PublicPrices) -> str:
    parts = [
        (p.input_per_1m_tokens, "/ 1M input tokens"),
        (p.cached_input_per_1m_tokens, "/ 1M cached input tokens"),
        (p.output_per_1m_tokens, "/ 1M output tokens"),
        (p.per_image, "/ image"),
        (p.per_1m_characters, "/ 1M characters"),
        (p.per_second, "/ second of audio"),
    ]
    known = [(v, unit) for v, unit in parts if v is not None]
    if not known:
        return "—"
    if all(v == 0 for v, _ in known):
        return "free"
    return " · ".join(f"{_money(v)} {unit}" for v, unit in known)


def _row(m: PublicModel) -> str:
    window = f"{m.context_window:,}" if m.context_window else "—"
    return (
        f'<tr data-type="{escape(m.type)}"><td><code>{escape(m.name)}</code></td>'
        f"<td>{escape(m.type)}</td><td class=num>{window}</td>"
        f"<td>{escape(price_text(m.prices))}</td></tr>"
    )


_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;
color:#1b1f24}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .6rem;
border-bottom:1px solid #d8dee4;vertical-align:top}th{background:#f6f8fa}.num{text-align:right}
code{font:13px ui-monospace,monospace}p.note{color:#57606a}
"""


def page(listing: PublicList) -> str:
    counts = {kind: sum(m.type == kind for m in listing.models) for kind in _TYPES}
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    rows = "\n".join(_row(m) for m in listing.models)
    aliases = "\n".join(
        f"<tr><td><code>{escape(a.name)}</code></td><td>{escape(' → '.join(a.chain))}</td></tr>"
        for a in listing.aliases
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Models</title><style>{_STYLE}</style></head>
<body><h1>Models</h1>
<p>{len(listing.models)} models ({escape(summary)}). Use the name as <code>model</code> with
the OpenAI-compatible API at <code>/v1</code>; your key may allow only some of them.
Prices in USD. Also as JSON: <a href="/assets/models.json">/assets/models.json</a>.</p>
<table id="models"><thead><tr><th>Model</th><th>Type</th><th class=num>Context window</th>
<th>Price</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<h2>Aliases</h2>
<p class="note">An alias names an ordered chain: the first model that answers wins.</p>
<table id="aliases"><thead><tr><th>Alias</th><th>Chain</th></tr></thead>
<tbody>
{aliases}
</tbody></table>
</body></html>
"""


def routes(rt: Runtime) -> list[Route]:
    if not rt.settings.server.public_models_page:
        return []
    listing = public_list(rt.catalog)
    html = page(listing).encode()
    data = ENCODER.encode(listing)
    headers = {"content-security-policy": _CSP, "x-content-type-options": "nosniff"}

    async def models_page(request: Request) -> Response:
        return Response(html, headers=headers, media_type="text/html; charset=utf-8")

    async def models_json(request: Request) -> Response:
        return Response(data, headers=headers, media_type="application/json")

    return [
        Route("/models/", models_page, methods=["GET", "HEAD"]),
        Route("/assets/models.json", models_json, methods=["GET", "HEAD"]),
    ]


OPERATIONS = (
    Op(
        "GET",
        "/models/",
        "The public model list (HTML)",
        "Models",
        {"text/html": TEXT},
        None,
        Errors(OwnError, PUBLIC),
        (),
    ),
    Op(
        "GET",
        "/assets/models.json",
        "The public model list",
        "Models",
        {JSON: PublicList},
        None,
        Errors(OwnError, PUBLIC),
        (),
    ),
)
