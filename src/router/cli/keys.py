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
from typing import Any

import msgspec

from router.cli.common import add_config, config_error
from router.config import Storage, load_settings
from router.errors import ConfigError, RequestError
from router.store import database_path
from router.store.key_records import KeyChanges, KeyRecord, NewKey, rfc3339, view
from router.store.keys import KeyStore, open_keys

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
    until = rfc3339(record.expires_at) if record.expires_at is not None else "never"
    used = rfc3339(record.last_used_at) if record.last_used_at is not None else "never"
    models = ",".join(record.models)
    return (
        f"{record.id}  {record.prefix}…  {_status(record):8} {until:20}  {used:20}"
        f"  {models:24} {record.name}"
    )


def _print(args: argparse.Namespace, records: list[KeyRecord], key: str | None = None) -> None:
    if args.json:
        views = [view(r, key if key is not None else msgspec.UNSET) for r in records]
        out = views[0] if args.action != "list" else views
        print(_ENCODE(out).decode())
        return
    if key is not None:
        print(f"Created {records[0].id} ({records[0].name}). The key is shown only this once:\n")
        print(f"  {key}\n")
        return
    if args.action == "list":
        print(_HEADER)
    for record in records:
        print(_line(record))


async def _run(args: argparse.Namespace, store: KeyStore) -> None:
    if args.action == "create":
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
    elif args.action == "list":
        _print(args, await store.list())
    elif args.action == "update":
        changes = KeyChanges(
            name=args.name if args.name is not None else msgspec.UNSET,
            models=tuple(args.models) if args.models else msgspec.UNSET,
            expires_at=expiry(args),
            metadata=metadata(args.metadata),
        )
        _print(args, [await store.update(args.id, changes)])
    else:
        _print(args, [await store.revoke(args.id)])


EXAMPLES = """examples:
  router keys create --name "web app" --models 'openai/*' 'demo/*' --expires-in 30d
  router keys list
  router keys update key_1a2b3c4d5e6f7a8b --models demo/echo --no-expiry
  router keys revoke key_1a2b3c4d5e6f7a8b
"""
_HEADER = (
    f"{'ID':20}  {'PREFIX':13}  {'STATUS':8} {'EXPIRES':20}  {'LAST USED':20}  {'MODELS':24} NAME"
)


def _sub(
    sub: argparse._SubParsersAction[Any],
    name: str,
    help: str,
    example: str,
    common: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        parents=[common],
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """`router keys create|list|update|revoke`, each with --config and --json."""
    keys = commands.add_parser(
        "keys",
        help="issue, list, change and revoke virtual keys",
        description="Administer virtual keys in the database routing.toml names"
        " (storage.database), the one a running gateway uses.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    add_config(common)
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sub = keys.add_subparsers(dest="action", required=True, metavar="ACTION", help="one of:")
    create = _sub(
        sub,
        "create",
        "issue a key (printed once, never again)",
        "router keys create --name 'web app' --models 'demo/*' --expires-in 30d",
        common,
    )
    create.add_argument("--name", required=True, help="who or what the key is for")
    _editable(create)
    _sub(
        sub,
        "list",
        "list keys: id, prefix, status, expiry, last use (never the keys)",
        "router keys list --json",
        common,
    )
    update = _sub(
        sub,
        "update",
        "change a key's name, models, expiry or metadata",
        "router keys update key_1a2b3c4d5e6f7a8b --models demo/echo --no-expiry",
        common,
    )
    update.add_argument("id", help="the key's id, as `router keys list` shows it")
    update.add_argument("--name", help="a new name")
    _editable(update)
    update.add_argument("--no-expiry", action="store_true", help="remove the expiry")
    revoke = _sub(
        sub,
        "revoke",
        "revoke a key for good (the row is kept, marked revoked)",
        "router keys revoke key_1a2b3c4d5e6f7a8b",
        common,
    )
    revoke.add_argument("id", help="the key's id, as `router keys list` shows it")
    keys.set_defaults(run=run)


def _editable(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--models", nargs="+", metavar="PATTERN", help="allowed models, e.g. 'openai/*' demo/echo"
    )
    p.add_argument("--expires-in", metavar="DURATION", help="expire after e.g. 90m, 12h, 30d, 4w")
    p.add_argument("--expires-at", metavar="TIME", help="expire at, ISO 8601: 2030-01-01T00:00:00Z")
    p.add_argument("--metadata", metavar="JSON", help='a JSON object, e.g. \'{"team": "web"}\'')


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return config_error("router keys", exc, args.config)
    try:
        asyncio.run(_main(args, database_path(settings)))
        if args.action in ("update", "revoke"):
            asyncio.run(_announce(args.id, settings.storage))
    except RequestError as exc:
        flag = {"expires_at": " (--expires-in / --expires-at)"}.get(exc.field or "", "")
        print(f"router keys: {exc.message}{flag}", file=sys.stderr)
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
        await _run(args, store)
    finally:
        await store.close()
