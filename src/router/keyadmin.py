"""`router keys`: administer virtual keys from the command line, in the database named by
routing.toml's `storage.database` (the same file a running gateway uses).

    router keys create --name NAME [--models PATTERN ...] [--expires-in 30d | --expires-at T]
                       [--metadata JSON]
    router keys list
    router keys update ID [--name NAME] [--models PATTERN ...] [--expires-in D | --expires-at T
                       | --no-expiry] [--metadata JSON]
    router keys revoke ID

Every command takes `--config routing.toml` and `--json`. A created key is printed once and
never again. A running gateway sees changes made here within a few seconds (its key cache),
at once when `storage.redis_url` is set. SQLite or PostgreSQL, as `storage.database` says.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from datetime import UTC, datetime

import msgspec

from router.api.admin import as_time
from router.api.admin import out as key_view
from router.config import Storage, load_settings
from router.errors import ConfigError, RequestError
from router.runtime import database_path
from router.store.keys import KeyChanges, KeyRecord, KeyStore, NewKey, open_keys

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+)([smhdw])")
_ENCODE = msgspec.json.Encoder().encode


def expiry(args: argparse.Namespace) -> float | msgspec.UnsetType | None:
    """Unix seconds from --expires-in / --expires-at, None for --no-expiry, else UNSET."""
    if getattr(args, "no_expiry", False):
        return None
    if args.expires_in:
        match = _DURATION.fullmatch(args.expires_in)
        if match is None:
            raise RequestError("invalid_value", "--expires-in takes e.g. 90m, 12h, 30d, 4w")
        return time.time() + int(match[1]) * _UNITS[match[2]]
    if args.expires_at:
        try:
            when = datetime.fromisoformat(args.expires_at.replace("Z", "+00:00"))
        except ValueError:
            raise RequestError("invalid_value", "--expires-at takes an ISO 8601 time") from None
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    return msgspec.UNSET


def metadata(text: str | None) -> dict[str, object] | msgspec.UnsetType:
    if text is None:
        return msgspec.UNSET
    try:
        return msgspec.json.decode(text, type=dict[str, object])
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise RequestError("invalid_value", "--metadata takes a JSON object") from None


def _status(record: KeyRecord) -> str:
    if record.revoked:
        return "revoked"
    if record.expired(time.time()):
        return "expired"
    return "active"


def _line(record: KeyRecord) -> str:
    expires = as_time(record.expires_at)
    until = expires.strftime("%Y-%m-%dT%H:%M:%SZ") if expires else "never"
    models = ",".join(record.models)
    return (
        f"{record.id}  {record.prefix}…  {_status(record):8} {until:20}  {models:24} {record.name}"
    )


def _print(args: argparse.Namespace, records: list[KeyRecord], key: str | None = None) -> None:
    if args.json:
        views = [key_view(r, key if key is not None else msgspec.UNSET) for r in records]
        out = views[0] if args.command != "list" else views
        print(_ENCODE(out).decode())
        return
    if key is not None:
        print(f"Created {records[0].id} ({records[0].name}). The key is shown only this once:\n")
        print(f"  {key}\n")
        return
    for record in records:
        print(_line(record))


async def run(args: argparse.Namespace, store: KeyStore) -> None:
    if args.command == "create":
        expires = expiry(args)
        meta = metadata(args.metadata)
        new = NewKey(
            name=args.name,
            models=tuple(args.models or ("*",)),
            expires_at=None if isinstance(expires, msgspec.UnsetType) else expires,
            metadata={} if isinstance(meta, msgspec.UnsetType) else meta,
        )
        key, record = await store.create(new)
        _print(args, [record], key)
    elif args.command == "list":
        _print(args, await store.list())
    elif args.command == "update":
        changes = KeyChanges(
            name=args.name if args.name is not None else msgspec.UNSET,
            models=tuple(args.models) if args.models else msgspec.UNSET,
            expires_at=expiry(args),
            metadata=metadata(args.metadata),
        )
        _print(args, [await store.update(args.id, changes)])
    else:
        _print(args, [await store.revoke(args.id)])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="router keys", description="Administer virtual keys.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default="routing.toml")
    common.add_argument("--json", action="store_true", help="print JSON")
    sub = p.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", parents=[common], help="issue a key (shown once)")
    create.add_argument("--name", required=True)
    _editable(create)
    sub.add_parser("list", parents=[common], help="list keys (prefixes only)")
    update = sub.add_parser("update", parents=[common], help="change a key")
    update.add_argument("id")
    update.add_argument("--name")
    _editable(update)
    update.add_argument("--no-expiry", action="store_true", help="remove the expiry")
    revoke = sub.add_parser("revoke", parents=[common], help="revoke a key for good")
    revoke.add_argument("id")
    return p


def _editable(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", nargs="+", metavar="PATTERN", help="e.g. 'openai/*' demo/echo")
    p.add_argument("--expires-in", metavar="DURATION", help="e.g. 12h, 30d, 4w")
    p.add_argument("--expires-at", metavar="TIME", help="ISO 8601, e.g. 2030-01-01T00:00:00Z")
    p.add_argument("--metadata", metavar="JSON", help='a JSON object, e.g. \'{"team": "web"}\'')


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"router keys: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_main(args, database_path(settings)))
        if args.command in ("update", "revoke"):
            asyncio.run(_announce(args.id, settings.storage))
    except RequestError as exc:
        print(f"router keys: {exc.message}", file=sys.stderr)
        return 1
    return 0


async def _announce(key_id: str, storage: Storage) -> None:
    """Running gateways drop their cached answers at once (with Redis configured)."""
    if not storage.redis_url:
        return
    from router.cluster import announce_keys  # redis only when asked for

    if not await announce_keys(storage.redis_url, storage.redis_prefix, key_id):
        print(
            "router keys: Redis unreachable; running gateways see the change within seconds",
            file=sys.stderr,
        )


async def _main(args: argparse.Namespace, database: str) -> None:
    store = await open_keys(database)
    try:
        await run(args, store)
    finally:
        await store.close()
