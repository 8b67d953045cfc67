"""The public pages: `/` (where to go next) and the model list, `/models/` (an HTML page,
with `/assets/models.js` for search, filters and sorting) and `/assets/models.json`.

All are generated once, at start-up, from the catalog: each model's name, type, provider,
context window, prices and whether its provider is ready (`configured`: its key is set, or it
needs none), plus the aliases. Never a key, a key variable's name or an upstream URL. No
external resource and only our own script: a strict Content-Security-Policy says so. The
model list is off when `server.public_models_page = false`; `/` always answers.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape
from pathlib import Path

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router.api.common import ENCODER
from router.api.errors import OwnError
from router.api.openapi import JSON, PUBLIC, TEXT, Errors, Op, Raw
from router.config import Prices
from router.core.catalog import Catalog
from router.core.types import Target
from router.runtime import Runtime

_TYPES = ("chat", "embedding", "image", "speech", "transcription")
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src data:;"
    " frame-ancestors 'none'"
)
_SCRIPT = (Path(__file__).parent.parent / "static" / "models.js").read_bytes()


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
    configured: bool  # the provider's key is set, or it needs none: never the key itself


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
        configured=t.key is not None or t.provider.api_key_env is None,
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


def _sort_price(p: PublicPrices) -> str:
    """The number a price column sorts by: the first price the model has, else none."""
    for value in (p.input_per_1m_tokens, p.per_image, p.per_1m_characters, p.per_second):
        if value is not None:
            return format(value, "f")
    return ""


def _row(m: PublicModel) -> str:
    window = f"{m.context_window:,}" if m.context_window else "—"
    ready = "yes" if m.configured else "no"
    mark = '<span class="ok" title="key configured">✓ ready</span>' if m.configured else "—"
    return (
        f'<tr data-type="{escape(m.type)}" data-provider="{escape(m.provider)}"'
        f' data-configured="{ready}"><td data-label="Model"><code>{escape(m.name)}</code></td>'
        f'<td data-label="Type">{escape(m.type)}</td>'
        f'<td data-label="Provider">{escape(m.provider)}</td>'
        f'<td class=num data-label="Context" data-sort="{m.context_window or 0}">{window}</td>'
        f'<td data-label="Price" data-sort="{_sort_price(m.prices)}">'
        f"{escape(price_text(m.prices))}</td>"
        f'<td data-label="Key" data-sort="{ready}">{mark}</td></tr>'
    )


_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;
color:#1b1f24}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .6rem;
border-bottom:1px solid #d8dee4;vertical-align:top}th{background:#f6f8fa}.num{text-align:right}
code{font:13px ui-monospace,monospace;overflow-wrap:anywhere}p.note{color:#57606a}
th button{font:inherit;font-weight:600;border:0;background:none;padding:0;cursor:pointer}
th[aria-sort=ascending] button::after{content:" ▲"}
th[aria-sort=descending] button::after{content:" ▼"}[hidden]{display:none!important}
.filters{display:flex;flex-wrap:wrap;gap:.5rem;margin:1rem 0}
.filters input,.filters select{font:inherit;padding:.3rem .5rem;min-width:0}
.filters input{flex:1 1 14rem}.ok{color:#1a7f37;white-space:nowrap}
@media (max-width:640px){body{margin:1rem auto}
#models thead{display:none}#models,#models tbody,#models tr,#models td{display:block;width:auto}
#models tr{border:1px solid #d8dee4;border-radius:6px;margin:.6rem 0;padding:.3rem .2rem}
#models td{border:0;padding:.15rem .5rem;text-align:left}
#models td::before{content:attr(data-label) ": ";color:#57606a;font-size:13px}
#models td[data-label=Model]::before{content:none}}
"""

_COLUMNS = ("Model", "Type", "Provider", "Context window", "Price", "Key")


def _head() -> str:
    cells = (
        f'<th{" class=num" if name == "Context window" else ""}><button type="button">'
        f"{name}</button></th>"
        for name in _COLUMNS
    )
    return "<tr>" + "".join(cells) + "</tr>"


def _filters(listing: PublicList) -> str:
    kinds = "".join(
        f"<option>{k}</option>" for k in _TYPES if any(m.type == k for m in listing.models)
    )
    providers = "".join(
        f"<option>{escape(p)}</option>" for p in sorted({m.provider for m in listing.models})
    )
    return (
        '<form class="filters" id="filters" hidden role="search">'
        '<input id="q" type="search" placeholder="Search models" aria-label="Search models">'
        f'<select id="type" aria-label="Type"><option value="">all types</option>{kinds}</select>'
        '<select id="provider" aria-label="Provider"><option value="">all providers</option>'
        f"{providers}</select>"
        '<label><input id="ready" type="checkbox"> ready only</label>'
        '<output id="count" aria-live="polite"></output></form>'
    )


def page(listing: PublicList) -> str:
    counts = {kind: sum(m.type == kind for m in listing.models) for kind in _TYPES}
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    ready = sum(m.configured for m in listing.models)
    rows = "\n".join(_row(m) for m in listing.models)
    aliases = "\n".join(
        f"<tr><td><code>{escape(a.name)}</code></td><td>{escape(' → '.join(a.chain))}</td></tr>"
        for a in listing.aliases
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Models</title><style>{_STYLE}</style>
<script src="/assets/models.js" defer></script></head>
<body><h1>Models</h1>
<p>{len(listing.models)} models ({escape(summary)}); {ready} ready to use now (marked
<span class="ok">✓ ready</span>: the provider's key is configured, or it needs none). Use the
name as <code>model</code> with the OpenAI-compatible API at <code>/v1</code>; your key may
allow only some of them. Prices in USD. Also as JSON:
<a href="/assets/models.json">/assets/models.json</a>. <a href="/">Home</a>.</p>
{_filters(listing)}
<table id="models"><thead>{_head()}</thead>
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


# ---- / ---------------------------------------------------------------------------------------


class Link(msgspec.Struct):
    href: str
    title: str


class Home(msgspec.Struct):
    name: str
    links: list[Link]


def home(models_page: bool) -> Home:
    links = [
        Link("/docs", "API reference"),
        Link("/v1/models", "models your key may use (OpenAI-compatible, needs a key)"),
        Link("/status", "status page"),
        Link("/metrics", "Prometheus metrics"),
        Link("/healthz", "liveness"),
    ]
    if models_page:
        links[1:1] = [
            Link("/models/", "model list: prices, context windows, which are ready"),
            Link("/assets/models.json", "the model list as JSON"),
        ]
    return Home("router: a multi-model LLM routing gateway", links)


def home_page(data: Home) -> str:
    items = "\n".join(
        f'<li><a href="{escape(link.href)}">{escape(link.href)}</a>: {escape(link.title)}</li>'
        for link in data.links
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>router</title><style>{_STYLE}</style></head>
<body><h1>router</h1>
<p>A multi-model LLM routing gateway. Send requests to <code>POST /v1/chat/completions</code>
(OpenAI-compatible) or <code>POST /api/v1/completions</code> with
<code>Authorization: Bearer &lt;key&gt;</code>.</p>
<ul>
{items}
</ul>
</body></html>
"""


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def routes(rt: Runtime) -> list[Route]:
    enabled = rt.settings.server.public_models_page
    start = home(enabled)
    start_html, start_json = home_page(start).encode(), ENCODER.encode(start)
    headers = {"content-security-policy": _CSP, "x-content-type-options": "nosniff"}

    async def index(request: Request) -> Response:
        if _wants_html(request):
            return Response(start_html, headers=headers, media_type="text/html; charset=utf-8")
        return Response(start_json, headers=headers, media_type="application/json")

    found = [Route("/", index, methods=["GET", "HEAD"])]
    return found + (_model_routes(rt, headers) if enabled else [])


def _model_routes(rt: Runtime, headers: dict[str, str]) -> list[Route]:
    listing = public_list(rt.catalog)
    html = page(listing).encode()
    data = ENCODER.encode(listing)

    async def models_page(request: Request) -> Response:
        return Response(html, headers=headers, media_type="text/html; charset=utf-8")

    async def models_json(request: Request) -> Response:
        return Response(data, headers=headers, media_type="application/json")

    async def models_js(request: Request) -> Response:
        return Response(_SCRIPT, headers=headers, media_type="text/javascript; charset=utf-8")

    return [
        Route("/models/", models_page, methods=["GET", "HEAD"]),
        Route("/assets/models.json", models_json, methods=["GET", "HEAD"]),
        Route("/assets/models.js", models_js, methods=["GET", "HEAD"]),
    ]


OPERATIONS = (
    Op(
        "GET",
        "/",
        "Where to start: the docs, the model list, the status page",
        "Pages",
        {"text/html": TEXT, JSON: Raw({"type": "object"})},
        None,
        Errors(OwnError, PUBLIC),
        (),
    ),
    Op(
        "GET",
        "/assets/models.js",
        "The model list page's script",
        "Models",
        {"text/javascript": TEXT},
        None,
        Errors(OwnError, PUBLIC),
        (),
    ),
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
