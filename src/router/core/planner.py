"""The planner: requested names + catalog + health -> the ordered targets to try. No I/O.

The chain is `models` then `fallback_models`, each name expanded (aliases become their
chains), duplicates dropped. Targets that cannot be tried are skipped with a recorded reason:
no API key configured, an unsupported protocol, an open circuit, or a prompt that clearly
cannot fit the model's context window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from router.core.catalog import Catalog
from router.core.strategies import Unit
from router.core.types import Asked, Attempt, Target
from router.errors import Failure


class Plan(msgspec.Struct):
    targets: list[Target]
    skipped: list[Attempt]
    strategy: str = "ordered"  # what ordered the primary models
    hedge_after: float | None = None  # seconds before the rest of the chain races the first


def chain(
    catalog: Catalog,
    models: Sequence[Asked],
    fallbacks: Sequence[Asked],
    may_use: Callable[[str, str], bool] = lambda ref, asked: True,
) -> list[Target]:
    """Every requested target in order, without repeats. A name that is unknown, or that the
    caller may not use (`may_use(ref, name asked for)`), raises the same NotFoundError naming
    the caller's field, so a key cannot probe the catalog; an alias keeps the targets the
    caller may use."""
    primary, fallback = units(catalog, models, fallbacks, may_use)
    return [t for u in (*primary, *fallback) for t in u.targets]


def units(
    catalog: Catalog,
    models: Sequence[Asked],
    fallbacks: Sequence[Asked],
    may_use: Callable[[str, str], bool] = lambda ref, asked: True,
) -> tuple[list[Unit], list[Unit]]:
    """The chain as units (a model and its deployments): the primary `models`, which a
    strategy may reorder, and the fallbacks, which stay in order. See `chain`."""
    seen: set[str] = set()
    out: tuple[list[Unit], list[Unit]] = ([], [])
    for i, asked in enumerate((*models, *fallbacks)):
        name = asked.name
        found = False
        for unit in catalog.units(name, asked.field):
            usable = [j for j, t in enumerate(unit.targets) if may_use(t.ref, name)]
            found = found or bool(usable)
            fresh = [j for j in usable if unit.targets[j].ref not in seen]
            seen.update(unit.targets[j].ref for j in fresh)
            if fresh:
                out[i >= len(models)].append(_only(unit, fresh))
        if not found:
            raise catalog.not_found(name, asked.field)
    return out


def _only(unit: Unit, keep: list[int]) -> Unit:
    if len(keep) == len(unit.targets):
        return unit
    weights = tuple(unit.weights[j] for j in keep) if unit.weights else ()
    return Unit(unit.name, tuple(unit.targets[j] for j in keep), weights)


def plan(
    targets: list[Target],
    protocols: frozenset[str],
    allow: Callable[[str], bool],
    prompt_tokens: int,
    limited: Callable[[Target], str | None] = lambda target: None,
) -> Plan:
    """Split `targets` into those to try, in order, and those skipped (with why).
    `limited(target)` says why a deployment is at its rate limit or over its provider's
    budget (`router.limits`), or None."""
    keep: list[Target] = []
    skipped: list[Attempt] = []
    for target in targets:
        reason = _skip_reason(target, protocols, prompt_tokens)
        if reason is None and not allow(target.ref):
            reason = (Failure.CIRCUIT_OPEN, "circuit open after repeated failures")
        if reason is None and (why := limited(target)) is not None:
            reason = (Failure.RATE_LIMITED, why)
        if reason is None:
            keep.append(target)
        else:
            provider = target.provider.name
            skipped.append(Attempt(provider, target.model, reason[0].value, reason=reason[1]))
    return Plan(keep, skipped)


def _skip_reason(
    target: Target, protocols: frozenset[str], prompt_tokens: int
) -> tuple[Failure, str] | None:
    provider = target.provider
    if provider.api_key_env and not target.key:
        return Failure.NO_API_KEY, f"no API key configured: set {provider.api_key_env}"
    if provider.protocol not in protocols:
        return Failure.UNSUPPORTED, f"protocol {provider.protocol!r} is not available"
    window = target.info.context_window if target.info else None
    if window and prompt_tokens > window:
        return Failure.TOO_LARGE, f"prompt of ~{prompt_tokens} tokens exceeds {window}"
    return None
