"""`router keys limits`: a key's team, budget and rate limits from the command line, in the
database named by routing.toml (the one the gateways use); running gateways hear of the
change at once over `storage.redis_url`, else within their key cache's few seconds.

    router keys limits ID [--team NAME | --no-team]
                          [--budget USD [--duration 30d|month|...] [--soft USD] | --no-budget]
                          [--rpm N] [--tpm N] [--concurrent N] [--no-limits]
                          [--config routing.toml]

With no option it prints the key's current policy. The answer is the policy as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from decimal import Decimal, InvalidOperation

import msgspec

from router.config import Budget, RateLimit, Settings, load_settings
from router.errors import ConfigError, RequestError
from router.limits_policy import KeyPolicy, PolicyBook, open_policies
from router.store import database_path
from router.store.keys import open_keys

_ENCODE = msgspec.json.Encoder(decimal_format="number").encode


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="router keys limits", description=__doc__.split("\n")[0])
    p.add_argument("id")
    p.add_argument("--config", default=os.environ.get("ROUTER_CONFIG", "routing.toml"))
    p.add_argument("--team")
    p.add_argument("--no-team", action="store_true")
    p.add_argument("--budget")
    p.add_argument("--duration", default="month")
    p.add_argument("--soft")
    p.add_argument("--no-budget", action="store_true")
    for name in ("rpm", "tpm", "concurrent"):
        p.add_argument(f"--{name}", type=int)
    p.add_argument("--no-limits", action="store_true")
    return p


def _usd(text: str | None, option: str) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise RequestError("invalid_value", f"{option} takes an amount in USD", option) from None


def changed(current: KeyPolicy, args: argparse.Namespace) -> KeyPolicy:
    team = None if args.no_team else (args.team or current.team)
    budget = current.budget
    amount = _usd(args.budget, "--budget")
    if args.no_budget:
        budget = None
    elif amount is not None:
        soft = _usd(args.soft, "--soft")
        budget = Budget(max_budget=amount, duration=args.duration, soft_budget=soft)
    limits = None if args.no_limits else current.limits
    if any(getattr(args, n) is not None for n in ("rpm", "tpm", "concurrent")):
        base = limits or RateLimit()
        limits = RateLimit(
            rpm=args.rpm if args.rpm is not None else base.rpm,
            tpm=args.tpm if args.tpm is not None else base.tpm,
            concurrent=args.concurrent if args.concurrent is not None else base.concurrent,
        )
    return KeyPolicy(team=team, budget=budget, limits=limits)


async def _run(settings: Settings, args: argparse.Namespace) -> KeyPolicy:
    database = database_path(settings)
    keys = await open_keys(database)
    try:
        await keys.get(args.id)  # 404 naming the id for a key that does not exist
    finally:
        await keys.close()
    book = PolicyBook(await open_policies(database))
    try:
        await book.reload()
        policy = changed(book.of(args.id) or KeyPolicy(), args)
        if policy != (book.of(args.id) or KeyPolicy()):
            await book.save(args.id, policy)
            await _announce(settings, args.id)
        return policy
    finally:
        await book.store.close()


async def _announce(settings: Settings, key_id: str) -> None:
    if settings.storage.redis_url:
        from router.cluster import announce_keys

        await announce_keys(settings.storage.redis_url, settings.storage.redis_prefix, key_id)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        policy = asyncio.run(_run(load_settings(args.config), args))
    except (ConfigError, RequestError) as exc:
        print(f"router keys limits: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(_ENCODE(policy).decode() + "\n")
    return 0
