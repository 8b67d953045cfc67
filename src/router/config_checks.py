"""Checks of the settings beyond their types (budgets, rate limits, deployments, routes), each
naming the field, and the budget durations they read. Called by `router.config` while loading;
used again by the key administration (a key's budget and limits)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from router.errors import ConfigError

HEDGE_AFTER = re.compile(r"^(\d+(\.\d+)?|p\d{1,2}(\.\d+)?)$")  # milliseconds, or p50..p99.9

if TYPE_CHECKING:
    from router.config import Budget, Limits, Provider, RateLimit, Settings


DURATION = re.compile(r"([1-9][0-9]*)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int | None:
    """Seconds in `60s`, `5m`, `1h`, `30d`; None for the calendar `month`; ValueError else."""
    if text == "month":
        return None
    match = DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"unknown duration {text!r} (60s, 5m, 1h, 1d, 30d ... or month)")
    return int(match[1]) * _UNIT[match[2]]


def check_budget(budget: Budget, where: str) -> str | None:
    """The first problem with `budget` as `field: message`, or None."""
    try:
        duration_seconds(budget.duration)
    except ValueError as exc:
        return f"{where}.duration: {exc}"
    if budget.max_budget < 0:
        return f"{where}.max_budget: must not be negative"
    if budget.soft_budget is not None and budget.soft_budget < 0:
        return f"{where}.soft_budget: must not be negative"
    return None


def check_rate(rate: RateLimit, where: str) -> str | None:
    for name in ("rpm", "tpm", "concurrent"):
        value = getattr(rate, name)
        if value is not None and value < 1:
            return f"{where}.{name}: must be at least 1"
    return None


def check_limits(limits: Limits, providers: dict[str, Provider], source: str) -> None:
    problems = [check_budget(limits.budget, "limits.budget")] if limits.budget else []
    problems += [check_budget(b, f"limits.teams.{n}") for n, b in limits.teams.items()]
    problems += [check_budget(b, f"limits.providers.{n}") for n, b in limits.providers.items()]
    problems += [check_rate(r, f"limits.deployments.{n}") for n, r in limits.deployments.items()]
    for ref in limits.deployments:
        if ref.split("/", 1)[0] not in providers or "/" not in ref:
            problems.append(f"limits.deployments.{ref}: not a known provider/model")
    for name in limits.providers:
        if name not in providers:
            problems.append(f"limits.providers.{name}: unknown provider")
    for problem in problems:
        if problem is not None:
            where, _, message = problem.partition(": ")
            raise ConfigError(source, f"{message} - at `$.{where}`")


def check_deployments(settings: Settings, providers: dict[str, Provider], source: str) -> None:
    names: set[str] = set()
    for i, d in enumerate(settings.deployments):
        at = f" - at `$.deployments[{i}]`"
        if d.provider not in providers:
            raise ConfigError(source, f"unknown provider {d.provider!r}{at}")
        if d.name in providers or d.name in names or "/" in d.name:
            raise ConfigError(
                source, f"deployment name {d.name!r} must be unique, not a provider's{at}"
            )
        if d.model in settings.aliases:
            raise ConfigError(source, f"deployment model {d.model!r} is an alias's name{at}")
        if d.weight <= 0:
            raise ConfigError(source, f"deployment weight must be positive{at}")
        names.add(d.name)


def check_routes(settings: Settings, source: str) -> None:
    deployed = {d.model for d in settings.deployments}
    for name, route in settings.routes.items():
        if route.hedge_after is not None and not HEDGE_AFTER.match(str(route.hedge_after)):
            raise ConfigError(
                source,
                f"hedge_after is milliseconds or a percentile like 'p95'"
                f" - at `$.routes.{name}.hedge_after`",
            )
        if name not in settings.aliases and name not in deployed:
            raise ConfigError(
                source, f"route {name!r} is not an alias or deployed model - at `$.routes.{name}`"
            )
