"""`GET /v1/models` and `GET /v1/models/{id}`: the models the caller's key may use.

Ids are `provider/model` for every catalog model the key may use by that name; then each
bare name (`gpt-4o-mini`) that resolves to a catalog model the key may use (its provider is
the first of `routing.preference` to list it, and no alias has that name), so the names the
reference pages use are listed as written; then each alias of routing.toml whose chain holds
a model the key may use. Each entry adds `type` (chat, embedding, image, speech,
transcription) to OpenAI's fields. A request with `anthropic-version` (Anthropic's SDKs, Claude
Code) gets the chat models in Anthropic's list shape (`router.api.anthropic.model_page`).
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router.api import anthropic
from router.api.common import ENCODER, json_response
from router.api.errors import OpenAIError
from router.api.openapi import JSON, READ, Errors, Op
from router.auth import Principal
from router.core.catalog import Catalog
from router.core.types import Target
from router.errors import NotFoundError
from router.runtime import Runtime


class ModelOut(msgspec.Struct, kw_only=True):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str
    type: str


class ModelList(msgspec.Struct):
    data: list[ModelOut]
    object: str = "list"


_CACHE_LIMIT = 1024  # distinct pattern sets; keys with the same patterns share one answer


def _type(target: Target) -> str:
    return target.info.type if target.info is not None else "chat"


def _bare(catalog: Catalog, target: Target) -> str | None:
    """The bare name that resolves to `target`: its provider is the preferred one for it, and
    the name does not read as another `provider/model` (OpenRouter's `openai/gpt-4o`)."""
    name = target.model
    providers = catalog.bare.get(name)
    if not providers or providers[0] != target.provider.name:
        return None
    return None if name.partition("/")[0] in catalog.providers else name


def visible(catalog: Catalog, principal: Principal) -> list[ModelOut]:
    listed = catalog.listed()
    out = [
        ModelOut(id=t.ref, owned_by=t.provider.name, type=_type(t))
        for t in listed
        if principal.may_use(t.ref)
    ]
    bare_names = {
        bare: t
        for t in listed
        if (bare := _bare(catalog, t)) is not None
        and bare not in catalog.aliases
        and principal.may_use(t.ref, bare)
    }
    out += [
        ModelOut(id=bare, owned_by=t.provider.name, type=_type(t))
        for bare, t in sorted(bare_names.items(), key=lambda item: item[0])
    ]
    for alias in sorted(catalog.aliases):
        targets = catalog.expand(alias, "model")
        usable = [t for t in targets if principal.may_use(t.ref)]
        if usable:
            out.append(ModelOut(id=alias, owned_by="router", type=_type(usable[0])))
    return out


def one(catalog: Catalog, principal: Principal, name: str) -> ModelOut:
    """The model `name` (alias, `provider/model` or bare), or the same 404 as an unknown one."""
    targets = catalog.expand(name, "model")
    alias = name in catalog.aliases
    bare = name if not alias and targets[0].model == name else None
    usable = [t for t in targets if principal.may_use(t.ref, bare)]
    if not usable:
        raise NotFoundError(
            "model_not_found", f"The model `{name}` does not exist or is not available.", "model"
        )
    owner = "router" if alias else usable[0].provider.name
    return ModelOut(id=name, owned_by=owner, type=_type(usable[0]))


def routes(rt: Runtime) -> list[Route]:
    cache: dict[tuple[bool, tuple[str, ...]], bytes] = {}

    async def list_models(request: Request) -> Response:
        if anthropic.wants_model_page(request):  # Claude Code's model picker
            principal = await rt.auth.authenticate(anthropic.authorization(request))
            chat = [m.id for m in visible(rt.catalog, principal) if m.type == "chat"]
            return anthropic.model_page(chat, request)
        principal = await rt.auth.authenticate(request.headers.get("authorization"))
        key = (principal.master, principal.models)
        body = cache.get(key)
        if body is None:
            body = ENCODER.encode(ModelList(visible(rt.catalog, principal)))
            if len(cache) < _CACHE_LIMIT:
                cache[key] = body
        return Response(body, media_type="application/json")

    async def get_model(request: Request) -> Response:
        principal = await rt.auth.authenticate(request.headers.get("authorization"))
        return json_response(one(rt.catalog, principal, request.path_params["model"]))

    return [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", get_model, methods=["GET"]),
    ]


OPERATIONS = (
    Op(
        "GET",
        "/v1/models",
        "Models the key may use",
        "OpenAI",
        {JSON: ModelList},
        None,
        Errors(OpenAIError, READ),
    ),
    Op(
        "GET",
        "/v1/models/{model:path}",
        "One model",
        "OpenAI",
        {JSON: ModelOut},
        None,
        Errors(OpenAIError, READ),
        examples=({"model": "demo/echo"},),
    ),
)
