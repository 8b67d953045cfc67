"""The OpenAPI 3.1 document at `/openapi.json` and its reference page at `/docs`.

Each surface declares its operations next to its routes, one `Op` a line, in a tuple named
`OPERATIONS`; app.py hands them all to `routes()`. An `Op` names the method and path, the
request body (a Struct, a `Form`, or none), the answers by media type (a type; `Events` for an
SSE stream of JSON events; `Raw` for text or audio), the surface's error Struct with the
statuses it answers (`Errors`), and the auth schemes that let a caller in (`AUTH`).

The document is built once, at start-up, from the Structs' JSON Schema (msgspec emits JSON
Schema 2020-12, which OpenAPI 3.1 uses as it is), for the operations whose route is served.
The page is Swagger UI, vendored into `router/static` by scripts/vendor-swagger-ui and served
by the gateway itself: no CDN, no inline script.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from http import HTTPStatus
from importlib import resources
from typing import Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from router import __version__
from router.api.common import ENCODER
from router.api.errors import OwnError
from router.core.health import BreakerView

JSON = "application/json"
SSE = "text/event-stream"
_REF = "#/components/schemas/{name}"
AUTH = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <key>`"},
    "x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
}

# ---- declarations -------------------------------------------------------------------------


class Raw(msgspec.Struct, frozen=True):
    """A schema written out, for an answer that is no Struct (text, audio bytes)."""

    schema: dict[str, object]


TEXT = Raw({"type": "string"})
AUDIO = Raw({"type": "string", "contentMediaType": "application/octet-stream"})


class Events(msgspec.Struct, frozen=True):
    """An SSE stream whose every `data:` is one JSON object of `types`, then `[DONE]`."""

    types: tuple[object, ...]


class Form(msgspec.Struct, frozen=True):
    """A `multipart/form-data` body: the text fields of the Struct `fields`, the file parts
    `files`, and the parts a request must have."""

    fields: object
    files: tuple[str, ...]
    required: tuple[str, ...]


class Errors(msgspec.Struct, frozen=True):
    """A surface's error Struct and the statuses an operation may answer with it."""

    shape: object
    statuses: tuple[int, ...]


class Op(msgspec.Struct, frozen=True):
    """One operation: what it takes, what it answers, who may call it."""

    method: str
    path: str
    summary: str
    tag: str
    answers: dict[str, object]  # media type -> a type, `Events` or `Raw`
    body: object = None  # a Struct type, a `Form`, or None
    errors: Errors | None = None
    auth: tuple[str, ...] = ("bearer",)  # any one of them lets the caller in; () is public
    status: int = 200
    examples: tuple[dict[str, object], ...] = ()  # request bodies, or path parameters


CALL = (400, 401, 403, 404, 408, 413, 429, 500, 502, 503, 504)
"""A model call: the caller's errors, the chain's (429, 5xx), overload (503)."""
READ = (401, 404, 500, 503)
PUBLIC = (500, 503)

# ---- the gateway's own operations (routes in app.py and here) ------------------------------


class Status(msgspec.Struct):
    status: Literal["ok", "ready", "draining"]


class Circuits(msgspec.Struct):
    circuits: list[BreakerView]


OWN = Errors(OwnError, PUBLIC)
OPERATIONS = (
    Op("GET", "/healthz", "Liveness", "Operations", {JSON: Status}, auth=()),
    Op("GET", "/readyz", "Readiness: 503 while draining", "Operations", {JSON: Status}, auth=()),
    Op("GET", "/metrics", "Prometheus metrics", "Operations", {"text/plain": TEXT}, auth=()),
    Op(
        "GET",
        "/admin/health",
        "Circuit breakers",
        "Admin",
        {JSON: Circuits},
        None,
        Errors(OwnError, READ),
    ),
    Op(
        "GET",
        "/openapi.json",
        "This document",
        "Reference",
        {JSON: Raw({"type": "object"})},
        None,
        OWN,
        (),
    ),
    Op("GET", "/docs", "The reference page", "Reference", {"text/html": TEXT}, None, OWN, ()),
)

# ---- the document ---------------------------------------------------------------------------


def _types(ops: Sequence[Op]) -> list[object]:
    """Every type the operations name, each once, in order."""
    found: dict[object, None] = {}
    for op in ops:
        body = op.body.fields if isinstance(op.body, Form) else op.body
        if body is not None:
            found[body] = None
        for answer in op.answers.values():
            for t in answer.types if isinstance(answer, Events) else (answer,):
                if not isinstance(t, Raw):
                    found[t] = None
        if op.errors is not None:
            found[op.errors.shape] = None
    return list(found)


def _short(name: str) -> str:
    """`router.api.openai.OutMessage` (msgspec's name when two Structs share one) ->
    `openai.OutMessage`."""
    return ".".join(name.split(".")[-2:])


def _tidy(node: object) -> object:
    """msgspec's schema as the gateway encodes: Decimal is a JSON number (ENCODER's
    `decimal_format="number"`); component names shortened."""
    if isinstance(node, list):
        return [_tidy(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("format") == "decimal":
        return {"type": "number"}
    ref = node.get("$ref")
    if isinstance(ref, str):
        return {"$ref": _REF.format(name=_short(ref.rsplit("/", 1)[1]))}
    return {k: _tidy(v) for k, v in node.items()}


def _sse(schemas: list[object]) -> dict[str, object]:
    """One event of an SSE stream: `data` is `[DONE]` or JSON of one of `schemas`."""
    content = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    data = {
        "type": "string",
        "if": {"const": "[DONE]"},
        "else": {"contentMediaType": JSON, "contentSchema": content},
    }
    return {"type": "object", "properties": {"data": data}, "required": ["data"]}


def _not_null(prop: dict[str, object]) -> object:
    """A form field as it is sent: absent, never null."""
    options = prop.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != {"type": "null"}]
        return kept[0] if len(kept) == 1 else {"anyOf": kept}
    return {k: v for k, v in prop.items() if k != "default"}


def _any(t: object) -> dict[str, object]:
    """`object` (as in `dict[str, object]`) is any JSON value."""
    if t is object:
        return {"description": "any JSON value"}  # msgspec refuses an empty schema
    raise NotImplementedError(t)


class _Schemas:
    """The schema of each type, as a reference into `components`."""

    def __init__(self, ops: Sequence[Op]) -> None:
        types = _types(ops)
        refs, components = msgspec.json.schema_components(
            types, schema_hook=_any, ref_template=_REF
        )
        self.of = {t: _tidy(r) for t, r in zip(types, refs, strict=True)}
        self.components = {_short(k): _tidy(v) for k, v in components.items()}

    def answer(self, answer: object) -> object:
        if isinstance(answer, Raw):
            return answer.schema
        if isinstance(answer, Events):
            return _sse([self.answer(t) for t in answer.types])
        return self.of[answer]

    def form(self, form: Form) -> dict[str, object]:
        """The form's object schema with its file parts added."""
        ref = self.of[form.fields]
        assert isinstance(ref, dict)
        fields = self.components[str(ref["$ref"]).rsplit("/", 1)[1]]
        assert isinstance(fields, dict)
        binary = {"type": "string", "contentMediaType": "application/octet-stream"}
        texts = {name: _not_null(p) for name, p in fields["properties"].items()}
        properties = {**{name: binary for name in form.files}, **texts}
        return {**fields, "properties": properties, "required": list(form.required)}


_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def _param(name: str, examples: Sequence[dict[str, object]]) -> dict[str, object]:
    schema: dict[str, object] = {"type": "string", "minLength": 1}
    out = {"name": name, "in": "path", "required": True, "schema": schema}
    found = [e[name] for e in examples if name in e]
    if found:
        out["examples"] = {f"example{i}": {"value": v} for i, v in enumerate(found)}
    return out


def _body(op: Op, schemas: _Schemas) -> dict[str, object]:
    schema: object
    if isinstance(op.body, Form):
        media, schema = "multipart/form-data", schemas.form(op.body)
    else:
        media, schema = JSON, schemas.of[op.body]
    content: dict[str, object] = {"schema": schema}
    if op.examples:
        content["examples"] = {f"example{i}": {"value": e} for i, e in enumerate(op.examples)}
    return {"required": True, "content": {media: content}}


def _operation(op: Op, schemas: _Schemas) -> dict[str, object]:
    out: dict[str, object] = {
        "operationId": re.sub(r"\W+", "_", f"{op.method} {op.path}".lower()).strip("_"),
        "summary": op.summary,
        "tags": [op.tag],
        "security": [{scheme: []} for scheme in op.auth],
    }
    names = _PARAM.findall(op.path)
    if names:
        out["parameters"] = [_param(n, op.examples) for n in names]
    if op.body is not None:
        out["requestBody"] = _body(op, schemas)
    ok = {media: {"schema": schemas.answer(a)} for media, a in op.answers.items()}
    responses: dict[str, object] = {str(op.status): {"description": "OK", "content": ok}}
    if op.errors is not None:
        error = {JSON: {"schema": schemas.of[op.errors.shape]}}
        for status in op.errors.statuses:
            responses[str(status)] = {"description": HTTPStatus(status).phrase, "content": error}
    out["responses"] = responses
    return out


def document(ops: Sequence[Op]) -> dict[str, object]:
    """The OpenAPI 3.1 document of `ops`."""
    schemas = _Schemas(ops)
    paths: dict[str, dict[str, object]] = {}
    for op in ops:
        path = _PARAM.sub(r"{\1}", op.path)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, schemas)
    used = sorted({scheme for op in ops for scheme in op.auth})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "router",
            "version": __version__,
            "description": "A multi-model LLM routing gateway: the Iron Labs surface at "
            "`/api/v1`, the OpenAI-compatible one at `/v1`, the admin API at `/admin`.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {name: AUTH[name] for name in used},
        },
    }


# ---- serving --------------------------------------------------------------------------------

_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "docs.js": "text/javascript; charset=utf-8",
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


def served(ops: Sequence[Op], app_routes: Sequence[BaseRoute]) -> list[Op]:
    """The operations whose path has a route (the pages can be turned off)."""
    paths = {_PARAM.sub(r"{\1}", r.path) for r in app_routes if isinstance(r, Route)}
    paths |= {"/openapi.json", "/docs"}
    return [op for op in ops if _PARAM.sub(r"{\1}", op.path) in paths]


def routes(ops: Sequence[Op], app_routes: Sequence[BaseRoute]) -> list[Route]:
    """`/openapi.json`, `/docs` and the page's assets, all read or built now."""
    body = ENCODER.encode(document(served([*ops, *OPERATIONS], app_routes)))
    static = resources.files("router") / "static"
    page = (static / "docs.html").read_bytes()
    assets = {name: ((static / name).read_bytes(), kind) for name, kind in _ASSETS.items()}
    headers = {"content-security-policy": _CSP, "x-content-type-options": "nosniff"}

    async def openapi_json(request: Request) -> Response:
        return Response(body, media_type=JSON)

    async def docs(request: Request) -> Response:
        return Response(page, headers=headers, media_type="text/html; charset=utf-8")

    async def asset(request: Request) -> Response:
        found = assets.get(request.path_params["name"])
        if found is None:
            return Response(b"Not Found", 404, media_type="text/plain")
        return Response(found[0], headers=headers, media_type=found[1])

    return [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/docs/{name}", asset, methods=["GET"]),
    ]
