"""The key administration API, master key only: `/admin/keys`.

    POST   /admin/keys                 create; the answer holds the key, shown this once
    GET    /admin/keys                 list (prefixes only, never keys)
    GET    /admin/keys/{id}            one key
    PATCH  /admin/keys/{id}            update name, models, expires_at (null: never), metadata
    POST   /admin/keys/{id}            the same, for clients without PATCH
    DELETE /admin/keys/{id}            revoke (the row is kept, marked revoked)
    POST   /admin/keys/{id}/revoke     the same

Times are RFC 3339 (`2030-01-01T00:00:00Z`); a time without an offset is UTC. A valid
virtual key gets 403 `forbidden` here (401 is for a missing or wrong key). `last_used_at` is
recorded at most once a minute per key.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router.api.admin_limits import PolicyFields, PolicyView, Spend, apply, check
from router.api.admin_limits import view as policy_view
from router.api.common import decode, json_response, read_body
from router.api.errors import OwnError
from router.api.openapi import JSON, Errors, Op
from router.config import Budget, RateLimit
from router.runtime import Runtime
from router.store.key_records import KeyChanges, KeyRecord, KeyView, NewKey, view

Metadata = dict[str, object]
"""(Named here: inside `KeyOut`, whose field `object` shadows the builtin, msgspec could not
resolve `dict[str, object]`.)"""


class CreateKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: str
    models: tuple[str, ...] = ("*",)
    expires_at: datetime | None = None
    metadata: dict[str, object] = {}
    team: str | msgspec.UnsetType | None = msgspec.UNSET
    budget: Budget | msgspec.UnsetType | None = msgspec.UNSET
    limits: RateLimit | msgspec.UnsetType | None = msgspec.UNSET


class UpdateKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: str | msgspec.UnsetType = msgspec.UNSET
    models: tuple[str, ...] | msgspec.UnsetType = msgspec.UNSET
    expires_at: datetime | msgspec.UnsetType | None = msgspec.UNSET
    metadata: dict[str, object] | msgspec.UnsetType = msgspec.UNSET
    team: str | msgspec.UnsetType | None = msgspec.UNSET
    budget: Budget | msgspec.UnsetType | None = msgspec.UNSET
    limits: RateLimit | msgspec.UnsetType | None = msgspec.UNSET


def _policy(body: CreateKey | UpdateKey) -> PolicyFields:
    return PolicyFields(team=body.team, budget=body.budget, limits=body.limits)


class KeyOut(KeyView, kw_only=True):
    """A key with its team, budget and limits (and spend, when asked for): see
    `router.api.admin_limits`."""

    team: str | None = None
    budget: Budget | None = None
    limits: RateLimit | None = None
    spend: Spend | msgspec.UnsetType = msgspec.UNSET


class KeyList(msgspec.Struct):
    data: list[KeyView]
    object: str = "list"


_CREATE = msgspec.json.Decoder(CreateKey)
_UPDATE = msgspec.json.Decoder(UpdateKey)


def _seconds(when: datetime | None) -> float | None:
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _changes(body: UpdateKey) -> KeyChanges:
    expires = body.expires_at
    return KeyChanges(
        name=body.name,
        models=body.models,
        expires_at=expires if isinstance(expires, msgspec.UnsetType) else _seconds(expires),
        metadata=body.metadata,
    )


def limited(
    record: KeyRecord, policy: PolicyView, key: str | msgspec.UnsetType = msgspec.UNSET
) -> KeyOut:
    """The key's answer with its team, budget, limits (and spend, when asked for)."""
    return KeyOut(
        **msgspec.structs.asdict(view(record, key)),
        team=policy.team,
        budget=policy.budget,
        limits=policy.limits,
        spend=policy.spend,
    )


def routes(rt: Runtime) -> list[Route]:
    async def master(request: Request) -> None:
        principal = await rt.auth.authenticate(request.headers.get("authorization"))
        rt.auth.require_master(principal)

    async def collection(request: Request) -> Response:
        await master(request)
        if request.method == "GET":
            return json_response(KeyList([view(r) for r in await rt.api_keys.list()]))
        body = decode(_CREATE, await read_body(request))
        check(rt, _policy(body))
        new = NewKey(
            name=body.name,
            models=body.models,
            expires_at=_seconds(body.expires_at),
            metadata=body.metadata,
        )
        secret, record = await rt.api_keys.create(new)
        await apply(rt, record.id, _policy(body))
        rt.keys_changed(record.id)  # every process loads the new key's limits now
        return json_response(limited(record, await policy_view(rt, record.id), secret), 201)

    async def one(request: Request) -> Response:
        await master(request)
        key_id = request.path_params["key_id"]
        if request.method == "GET":
            record = await rt.api_keys.get(key_id)
            policy = await policy_view(rt, key_id, with_spend=True)
            return json_response(limited(record, policy))
        if request.method == "DELETE":
            return await _revoke(key_id)
        body = decode(_UPDATE, await read_body(request))
        check(rt, _policy(body))
        record = await rt.api_keys.update(key_id, _changes(body))
        await apply(rt, key_id, _policy(body))
        rt.keys_changed(key_id)
        return json_response(limited(record, await policy_view(rt, key_id)))

    async def revoke(request: Request) -> Response:
        await master(request)
        return await _revoke(request.path_params["key_id"])

    async def _revoke(key_id: str) -> Response:
        record = await rt.api_keys.revoke(key_id)
        rt.keys_changed(key_id)
        return json_response(view(record))

    return [
        Route("/admin/keys", collection, methods=["GET", "POST"]),
        Route("/admin/keys/{key_id}", one, methods=["GET", "PATCH", "POST", "DELETE"]),
        Route("/admin/keys/{key_id}/revoke", revoke, methods=["POST"]),
    ]


_ADMIN = Errors(OwnError, (400, 401, 404, 408, 413, 500, 503))
OPERATIONS = (
    Op("GET", "/admin/keys", "List keys", "Admin", {JSON: KeyList}, None, _ADMIN),
    Op(
        "POST",
        "/admin/keys",
        "Create a key",
        "Admin",
        {JSON: KeyOut},
        CreateKey,
        _ADMIN,
        status=201,
        examples=({"name": "ci", "models": ["demo/*"], "expires_at": "2030-01-01T00:00:00Z"},),
    ),
    Op("GET", "/admin/keys/{key_id}", "One key", "Admin", {JSON: KeyOut}, None, _ADMIN),
    Op("PATCH", "/admin/keys/{key_id}", "Update a key", "Admin", {JSON: KeyOut}, UpdateKey, _ADMIN),
    Op(
        "POST",
        "/admin/keys/{key_id}",
        "Update a key (without PATCH)",
        "Admin",
        {JSON: KeyOut},
        UpdateKey,
        _ADMIN,
    ),
    Op("DELETE", "/admin/keys/{key_id}", "Revoke a key", "Admin", {JSON: KeyOut}, None, _ADMIN),
    Op(
        "POST", "/admin/keys/{key_id}/revoke", "Revoke a key", "Admin", {JSON: KeyOut}, None, _ADMIN
    ),
)
