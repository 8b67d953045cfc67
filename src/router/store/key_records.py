"""Virtual key records and hashing: what both key stores share, and the public view of a key.

A key (`sk-rt-<random>`) is shown once, when created; a store keeps its SHA-256 and a short
prefix for display. Each key has a name, the model patterns it may use (`openai/*`,
`demo/echo`, `gpt-4o-mini`), an optional expiry, free-form metadata and the time it was last
used; revoking keeps the row. The checks here (`mint`, `changed_columns`) name their field.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from router.errors import NotFoundError, RequestError

KEY_PREFIX = "sk-rt-"
_SHOWN = len(KEY_PREFIX) + 6  # characters of a key kept for display
_ENCODE = msgspec.json.Encoder().encode
_MODELS = msgspec.json.Decoder(tuple[str, ...])
_METADATA = msgspec.json.Decoder(dict[str, object])

COLUMNS = "id, prefix, name, models, expires_at, metadata, created_at, revoked_at, last_used_at"


class KeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One virtual key as stored: everything but the key itself."""

    id: str
    name: str
    prefix: str  # the first characters of the key, for telling keys apart
    models: tuple[str, ...]
    expires_at: float | None  # unix seconds
    metadata: dict[str, object]
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None  # recorded at most once a minute (router.auth.KeyAuth)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class NewKey(msgspec.Struct, frozen=True, kw_only=True):
    """What creating a key needs."""

    name: str
    models: tuple[str, ...] = ("*",)
    expires_at: float | None = None
    metadata: dict[str, object] = {}


class KeyChanges(msgspec.Struct, frozen=True, kw_only=True):
    """A partial update: UNSET fields stay as they are; `expires_at=None` removes the expiry."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    models: tuple[str, ...] | msgspec.UnsetType = msgspec.UNSET
    expires_at: float | msgspec.UnsetType | None = msgspec.UNSET
    metadata: dict[str, object] | msgspec.UnsetType = msgspec.UNSET


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def as_time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_name(name: str) -> str:
    if not name.strip():
        raise RequestError("invalid_value", "name must not be empty.", "name")
    return name.strip()


def check_models(models: tuple[str, ...]) -> None:
    if not models:
        raise RequestError("invalid_value", "models must name at least one pattern.", "models")
    for i, pattern in enumerate(models):
        if not pattern.strip():
            raise RequestError("invalid_value", "a model pattern is empty.", f"models[{i}]")


def check_expiry(expires_at: float | None) -> None:
    """A key that would be born expired is a mistake (a wrong year, a sign): refuse it."""
    if expires_at is not None and expires_at <= time.time():
        raise RequestError(
            "invalid_value",
            f"expires_at {rfc3339(expires_at)} is in the past: give a future time,"
            " or none for a key that never expires (revoke a key to end it now).",
            "expires_at",
        )


def mint(new: NewKey) -> tuple[str, KeyRecord]:
    """A fresh key and its record, after checking what was asked for."""
    name = check_name(new.name)
    check_models(new.models)
    check_expiry(new.expires_at)
    secret = new_secret()
    record = KeyRecord(
        id="key_" + secrets.token_hex(8),
        name=name,
        prefix=secret[:_SHOWN],
        models=new.models,
        expires_at=new.expires_at,
        metadata=new.metadata,
        created_at=time.time(),
    )
    return secret, record


def row_of(record: KeyRecord) -> tuple[object, ...]:
    """A record as the values of COLUMNS, in order."""
    return (
        record.id,
        record.prefix,
        record.name,
        _ENCODE(record.models).decode(),
        record.expires_at,
        _ENCODE(record.metadata).decode(),
        record.created_at,
        record.revoked_at,
        record.last_used_at,
    )


def changed_columns(changes: KeyChanges) -> dict[str, object]:
    """Column -> new value for what `changes` sets, each checked."""
    sets: dict[str, object] = {}
    if changes.name is not msgspec.UNSET:
        sets["name"] = check_name(changes.name)
    if changes.models is not msgspec.UNSET:
        check_models(changes.models)
        sets["models"] = _ENCODE(changes.models).decode()
    if changes.expires_at is not msgspec.UNSET:
        check_expiry(changes.expires_at)
        sets["expires_at"] = changes.expires_at
    if changes.metadata is not msgspec.UNSET:
        sets["metadata"] = _ENCODE(changes.metadata).decode()
    return sets


def not_found(key_id: str) -> NotFoundError:
    return NotFoundError("key_not_found", f"No key with id {key_id}.", "id")


def _seconds(value: object) -> float | None:
    """A REAL / DOUBLE PRECISION column (SQLite may hand back an int) or NULL."""
    if value is None:
        return None
    assert isinstance(value, int | float)
    return float(value)


def record_of(row: Sequence[object]) -> KeyRecord:
    kid, prefix, name, models, expires, metadata, created, revoked, last_used = row
    created_at = _seconds(created)
    assert created_at is not None  # NOT NULL in both schemas
    return KeyRecord(
        id=str(kid),
        name=str(name),
        prefix=str(prefix),
        models=_MODELS.decode(str(models)),
        expires_at=_seconds(expires),
        metadata=_METADATA.decode(str(metadata)),
        created_at=created_at,
        revoked_at=_seconds(revoked),
        last_used_at=_seconds(last_used),
    )


Metadata = dict[str, object]
"""A key's metadata. (An alias: in `KeyView` the field `object` hides the builtin, and the
annotations are read in the class's namespace.)"""


class KeyView(msgspec.Struct, kw_only=True):
    """A key as the admin API and `router keys --json` show it: never the key, but once."""

    id: str
    name: str
    prefix: str
    models: tuple[str, ...]
    expires_at: datetime | None
    metadata: Metadata
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool
    revoked_at: datetime | None
    object: str = "api_key"
    key: str | msgspec.UnsetType = msgspec.UNSET  # only in the answer that creates the key


def view(record: KeyRecord, key: str | msgspec.UnsetType = msgspec.UNSET) -> KeyView:
    return KeyView(
        id=record.id,
        name=record.name,
        prefix=record.prefix,
        models=record.models,
        expires_at=as_time(record.expires_at),
        metadata=record.metadata,
        created_at=datetime.fromtimestamp(record.created_at, UTC),
        last_used_at=as_time(record.last_used_at),
        revoked=record.revoked,
        revoked_at=as_time(record.revoked_at),
        key=key,
    )
