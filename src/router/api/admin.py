"""The key administration API, master key only: `/admin/keys`.

    POST   /admin/keys                 create; the answer holds the key, shown this once
    GET    /admin/keys                 list (prefixes only, never keys)
    GET    /admin/keys/{id}            one key
    PATCH  /admin/keys/{id}            update name, models, expires_at (null: never), metadata
    POST   /admin/keys/{id}            the same, for clients without PATCH
    DELETE /admin/keys/{id}            revoke (the row is kept, marked revoked)
    POST   /admin/keys/{id}/revoke     the same

Times are RFC 3339 (`2030-01-01T00:00:00Z`); a time without an offset is UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router.api.common import decode, json_response, read_body
from router.api.errors import OwnError
from router.api.openapi import JSON, Errors, Op
from router.runtime import Runtime
from router.store.keys import KeyChanges, KeyRecord, NewKey

Metadata = dict[str, object]
"""(Named here: inside `KeyOut`, whose field `object` shadows the builtin, msgspec could not
resolve `dict[str, object]`.)"""


class CreateKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    models: tuple[str, ...] = ("*",)
    expires_at: datetime | None = None
    metadata: dict[str, object] = {}


class UpdateKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str | msgspec.UnsetType = msgspec.UNSET
    models: tuple[str, ...] | msgspec.UnsetType = msgspec.UNSET
    expires_at: datetime | msgspec.UnsetType | None = msgspec.UNSET
    metadata: dict[str, object] | msgspec.UnsetType = msgspec.UNSET


class KeyOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    prefix: str
    models: tuple[str, ...]
    expires_at: datetime | None
    metadata: Metadata
    created_at: datetime
    revoked: bool
    revoked_at: datetime | None
    object: str = "api_key"
    key: str | msgspec.UnsetType = msgspec.UNSET  # only in the answer that creates the key


class KeyList(msgspec.Struct):
    data: list[KeyOut]
    object: str = "list"


_CREATE = msgspec.json.Decoder(CreateKey)
_UPDATE = msgspec.json.Decoder(UpdateKey)


def _seconds(when: datetime | None) -> float | None:
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def as_time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def out(record: KeyRecord, key: str | msgspec.UnsetType = msgspec.UNSET) -> KeyOut:
    created = as_time(record.created_at)
    assert created is not None
    return KeyOut(
        id=record.id,
        name=record.name,
        prefix=record.prefix,
        models=record.models,
        expires_at=as_time(record.expires_at),
        metadata=record.metadata,
        created_at=created,
        revoked=record.revoked,
        revoked_at=as_time(record.revoked_at),
        key=key,
    )


def _changes(body: UpdateKey) -> KeyChanges:
    expires = body.expires_at
    return KeyChanges(
        name=body.name,
        models=body.models,
        expires_at=expires if isinstance(expires, msgspec.UnsetType) else _seconds(expires),
        metadata=body.metadata,
    )


def routes(rt: Runtime) -> list[Route]:
    async def master(request: Request) -> None:
        principal = await rt.auth.authenticate(request.headers.get("authorization"))
        rt.auth.require_master(principal)

    async def collection(request: Request) -> Response:
        await master(request)
        if request.method == "GET":
            return json_response(KeyList([out(r) for r in await rt.api_keys.list()]))
        body = decode(_CREATE, await read_body(request))
        new = NewKey(
            name=body.name,
            models=body.models,
            expires_at=_seconds(body.expires_at),
            metadata=body.metadata,
        )
        secret, record = await rt.api_keys.create(new)
        return json_response(out(record, secret), 201)

    async def one(request: Request) -> Response:
        await master(request)
        key_id = request.path_params["key_id"]
        if request.method == "GET":
            return json_response(out(await rt.api_keys.get(key_id)))
        if request.method == "DELETE":
            return await _revoke(key_id)
        changes = _changes(decode(_UPDATE, await read_body(request)))
        record = await rt.api_keys.update(key_id, changes)
        rt.keys_changed(key_id)
        return json_response(out(record))

    async def revoke(request: Request) -> Response:
        await master(request)
        return await _revoke(request.path_params["key_id"])

    async def _revoke(key_id: str) -> Response:
        record = await rt.api_keys.revoke(key_id)
        rt.keys_changed(key_id)
        return json_response(out(record))

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
