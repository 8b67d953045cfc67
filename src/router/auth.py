"""Who is calling: the master key or a virtual key, from `Authorization: Bearer <key>`.

The master key administers and may use every model. Virtual keys (stored only as hashes,
see `router.store.keys`) are limited to the models their patterns allow.
"""

from __future__ import annotations

import fnmatch
import hmac
from collections.abc import Awaitable, Callable

import msgspec

from router.errors import AuthError


class Principal(msgspec.Struct, frozen=True):
    name: str
    master: bool = False
    models: tuple[str, ...] = ("*",)  # patterns such as "openai/*" or "demo/echo"
    key_id: str | None = None

    def may_use(self, ref: str, bare: str | None = None) -> bool:
        """May this caller use `provider/model` (asked for as `bare`, if it was)?"""
        if self.master or self.models == ("*",):
            return True
        names = (ref, bare) if bare else (ref,)
        return any(fnmatch.fnmatchcase(n, p) for p in self.models for n in names)


MASTER = Principal("master", master=True)

KeyLookup = Callable[[str], Awaitable[Principal | None]]


class Authenticator:
    """Checks bearer keys: constant-time against the master key, else via `lookup`."""

    def __init__(self, master_key: str, lookup: KeyLookup | None = None) -> None:
        self._master = master_key.encode()
        self.lookup = lookup

    async def authenticate(self, authorization: str | None) -> Principal:
        key = bearer(authorization)
        if key is None:
            raise AuthError("Missing API key: send `Authorization: Bearer <key>`.")
        if hmac.compare_digest(key.encode(), self._master):
            return MASTER
        if self.lookup is not None:
            principal = await self.lookup(key)
            if principal is not None:
                return principal
        raise AuthError("Invalid API key.")

    def require_master(self, principal: Principal) -> None:
        if not principal.master:
            raise AuthError("This endpoint needs the master key.")


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return None
    return key
