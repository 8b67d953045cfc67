"""Budgets and rate limits: reserved before a call, settled after it, refused with a 429 that
never reaches an upstream.

`Limits.admit` runs in the surface kit once a request's body is read. From the body it takes
the models asked for and the caller's maximum output (`max_tokens`, `max_completion_tokens`,
`maxTokens`, `max_output_tokens`; else `limits.default_max_tokens`) and estimates the prompt
as the body's bytes / 4 (an over-estimate: JSON syntax counts too). The reservation is:

- key: one request (RPM), prompt + maximum tokens (TPM), one request at once (concurrent);
- key, team and global budgets: the prompt at the input price plus the maximum at the output
  price of the dearest target in the chain. A chain of zero-priced (or unpriced) models
  reserves nothing and is never refused by a budget;
- the first deployment of the chain whose `[limits.deployments]` RPM/TPM still fit; those
  before it are skipped by the planner (and fall back), as are providers over their budget.

All of it is one `Counters.take` (one Lua script with Redis). The observer side
(`finished`) settles tokens and cost to what the call really used, failed attempts included,
and counts each provider's spend.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Protocol

import msgspec

from router.auth import Principal
from router.config import Budget
from router.config import Limits as LimitSettings
from router.core.catalog import Catalog
from router.core.types import Attempt, Report, Target, Usage
from router.errors import RouterError
from router.limits_answers import (
    PEEK,
    Peek,
    Refused,
    estimate,
    provider_costs,
    ratelimit_headers,
    refusal,
    used,
)
from router.limits_meters import Counters, CountersDown, Meter, budget_meter, minute_meter, nano
from router.limits_policy import KeyPolicy, PolicyBook

log = logging.getLogger("router.limits")
_SWEEP_AT = 10_000  # grants held before stale ones are looked for
_STALE = 900.0  # seconds: beyond `timeouts.request` (300 s by default)


class Grant(msgspec.Struct, kw_only=True):
    """A request's reservation, settled once by its report (or released)."""

    meters: list[Meter]  # taken: settled by the difference to what was used
    tokens: int  # reserved tokens
    cost: int  # reserved nano-USD
    blocked: dict[str, str]  # provider/model -> why the planner skips it
    headers: dict[str, str]
    at: float = 0.0  # monotonic time taken: grants of calls that never reported are dropped


class LimitCounters(Protocol):
    """What the limits count (`router.metrics.Metrics`)."""

    def limit_refused(self, scope: str, reason: str) -> None: ...

    def budget_alert(self, scope: str) -> None: ...

    def limit_error(self) -> None: ...


class LimitsService:
    def __init__(
        self,
        settings: LimitSettings,
        catalog: Catalog,
        counters: Counters,
        book: PolicyBook,
        metrics: LimitCounters,
        prefix: str,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.counters = counters
        self.book = book
        self.metrics = metrics
        self.prefix = f"{prefix}:lim"
        self.grants: dict[str, Grant] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._down = False

    # ---- before the call ----------------------------------------------------------------

    def _targets(self, peek: Peek, principal: Principal) -> list[Target]:
        names = ([peek.model] if peek.model else []) + peek.models + peek.fallback_models
        out: list[Target] = []
        for name in names:
            try:
                out += [
                    t for t in self.catalog.expand(name, "model") if principal.may_use(t.ref, name)
                ]
            except RouterError:
                continue  # the surface answers the unknown name with its own 404
        return out

    def _required(
        self, principal: Principal, policy: KeyPolicy | None, tokens: int, cost: int, now: float
    ) -> list[Meter]:
        meters: list[Meter] = []
        p = self.prefix
        if self.settings.budget is not None:
            meters.append(budget_meter(p, "global", "all", self.settings.budget, cost, now))
        if policy is None or principal.key_id is None:
            return meters
        kid = principal.key_id
        team = self.settings.teams.get(policy.team) if policy.team else None
        if team is not None and policy.team:
            meters.append(budget_meter(p, "team", policy.team, team, cost, now))
        if policy.budget is not None:
            meters.append(budget_meter(p, "key", kid, policy.budget, cost, now))
        rate = policy.limits
        if rate is not None and rate.rpm is not None:
            meters.append(minute_meter(p, "key", kid, "requests", 1, rate.rpm, now))
        if rate is not None and rate.tpm is not None:
            meters.append(minute_meter(p, "key", kid, "tokens", tokens, rate.tpm, now))
        if rate is not None and rate.concurrent is not None:
            meters.append(
                Meter(
                    key=f"{p}:concurrent:key:{kid}",
                    amount=1,
                    limit=rate.concurrent,
                    ttl_ms=600_000,
                    kind="concurrent",
                    scope="key",
                    reset=1.0,
                )
            )
        return meters

    def _groups(self, targets: list[Target], tokens: int, now: float) -> list[list[Meter]]:
        groups: list[list[Meter]] = []
        for target in targets:
            rate = self.settings.deployments.get(target.ref)
            group: list[Meter] = []
            if rate is not None and rate.rpm is not None:
                group.append(
                    minute_meter(
                        self.prefix, "deployment", target.ref, "requests", 1, rate.rpm, now
                    )
                )
            if rate is not None and rate.tpm is not None:
                group.append(
                    minute_meter(
                        self.prefix, "deployment", target.ref, "tokens", tokens, rate.tpm, now
                    )
                )
            groups.append(group)
        return groups

    def _over_budget(self, targets: list[Target], now: float) -> list[Meter]:
        """Provider budgets, read (amount 0) in the same take."""
        seen = {t.provider.name for t in targets}
        return [
            budget_meter(self.prefix, "provider", name, budget, 0, now)
            for name, budget in self.settings.providers.items()
            if name in seen
        ]

    async def admit(self, principal: Principal, request_id: str, body: bytes) -> Grant | None:
        """Reserve, or raise `Refused`. None when nothing limits this request."""
        policy = self.book.of(principal.key_id)
        if not self.settings.configured and (policy is None or not policy.limited):
            return None
        try:
            peek = PEEK.decode(body) if body else Peek()
        except (msgspec.DecodeError, msgspec.ValidationError):
            peek = Peek()
        targets = self._targets(peek, principal)
        prompt, most, cost = estimate(peek, body, targets, self.settings.default_max_tokens)
        now = time.time()
        required = self._required(principal, policy, prompt + most, cost, now)
        providers = self._over_budget(targets, now)
        groups = self._groups(targets, prompt + most, now)
        grant = await self._take(required + providers, groups, targets, policy)
        grant.tokens, grant.cost, grant.at = prompt + most, cost, time.monotonic()
        if len(self.grants) >= _SWEEP_AT:
            self._sweep(grant.at)
        self.grants[request_id] = grant
        return grant

    async def _take(
        self,
        required: list[Meter],
        groups: list[list[Meter]],
        targets: list[Target],
        policy: KeyPolicy | None,
    ) -> Grant:
        try:
            taken = await self.counters.take(required, groups)
        except CountersDown as exc:
            return self._unavailable(exc)
        self._recovered()
        if not taken.ok:
            raise self._refusal(required[taken.refused], policy)
        blocked = self._blocked(targets, groups, taken.chosen)
        blocked.update(self._providers_over(required, taken.values))
        self._soft(required, taken.values)
        taken_meters = [m for m in required if m.amount]
        if taken.chosen >= 0:
            taken_meters += groups[taken.chosen]
        headers = ratelimit_headers(required, taken.values)
        return Grant(meters=taken_meters, tokens=0, cost=0, blocked=blocked, headers=headers)

    def _blocked(
        self, targets: list[Target], groups: list[list[Meter]], chosen: int
    ) -> dict[str, str]:
        """Deployments before the chosen one are at their limit (none chosen: all limited)."""
        end = chosen if chosen >= 0 else len(groups)
        blocked = {}
        for target, group in zip(targets[:end], groups[:end], strict=True):
            if group:
                blocked[target.ref] = "deployment at its rate limit (routing.toml)"
                self.metrics.limit_refused("deployment", "rate_limited")
        return blocked

    def _providers_over(self, meters: list[Meter], values: tuple[int, ...]) -> dict[str, str]:
        over: dict[str, str] = {}
        for meter, value in zip(meters, values, strict=True):
            if meter.scope == "provider" and value >= meter.limit:
                provider = meter.key.split(":")[-2]
                over[provider] = "provider over its budget"
                self.metrics.limit_refused("provider", "budget_exceeded")
        return over

    def _soft(self, meters: list[Meter], values: tuple[int, ...]) -> None:
        for meter, value in zip(meters, values, strict=True):
            budget = self._budget_of(meter)
            if budget is None or budget.soft_budget is None or meter.amount <= 0:
                continue
            soft = nano(budget.soft_budget)
            if value - meter.amount < soft <= value:
                self.metrics.budget_alert(meter.scope)
                log.warning("limits: a %s budget crossed its soft threshold", meter.scope)

    def _budget_of(self, meter: Meter) -> Budget | None:
        if meter.kind != "budget":
            return None
        if meter.scope == "global":
            return self.settings.budget
        name = meter.key.split(":")[-2]
        if meter.scope == "team":
            return self.settings.teams.get(name)
        if meter.scope == "key":
            policy = self.book.of(name)
            return policy.budget if policy else None
        return None

    def _refusal(self, meter: Meter, policy: KeyPolicy | None) -> Refused:
        refused = refusal(meter)
        self.metrics.limit_refused(meter.scope, refused.code)
        return refused

    def _unavailable(self, exc: BaseException) -> Grant:
        self.metrics.limit_error()
        if not self._down:
            self._down = True
            log.error(
                "limits: Redis cannot be reached (%s): %s requests",
                type(exc).__name__,
                "refusing" if self.settings.on_redis_error == "deny" else "allowing",
            )
        if self.settings.on_redis_error == "deny":
            raise Refused(
                "limits_unavailable",
                "Limits cannot be checked right now.",
                503,
                {"retry-after": "1"},
            )
        return Grant(meters=[], tokens=0, cost=0, blocked={}, headers={})

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.warning("limits: Redis works again")

    async def budget_window(self, key_id: str) -> tuple[int, float] | None:
        """(nano-USD spent and reserved, seconds left) in the key's current budget window."""
        policy = self.book.of(key_id)
        if policy is None or policy.budget is None:
            return None
        meter = budget_meter(self.prefix, "key", key_id, policy.budget, 0, time.time())
        try:
            taken = await self.counters.take([meter], [])
        except CountersDown:
            return None
        return taken.values[0], meter.reset

    def _sweep(self, now: float) -> None:
        """Forget grants far older than any request may run (a stream the client abandoned
        before it began reports nothing): memory stays bounded."""
        stale = [rid for rid, g in self.grants.items() if now - g.at > _STALE]
        for rid in stale:
            self.release(rid)

    # ---- the planner's predicate --------------------------------------------------------

    def skip(self, request_id: str, target: Target) -> str | None:
        """Why the planner skips `target` for this request, or None."""
        grant = self.grants.get(request_id)
        if grant is None or not grant.blocked:
            return None
        return grant.blocked.get(target.ref) or grant.blocked.get(target.provider.name)

    # ---- after the call (the Observer) --------------------------------------------------

    def attempted(self, target: Target, attempt: Attempt, usage: Usage | None) -> None:
        """Settled from the call's report."""

    def finished(self, report: Report) -> None:
        grant = self.grants.pop(report.request_id, None)
        tokens, spent = used(report)
        changes = [] if grant is None else self._settle(grant, tokens, spent)
        changes += self._provider_spend(report)
        if changes:
            self._background(self.counters.add(changes))

    def release(self, request_id: str) -> None:
        """A request that ended without a report (refused by its surface): give back all."""
        grant = self.grants.pop(request_id, None)
        if grant is not None and grant.meters:
            self._background(self.counters.add(self._settle(grant, 0, 0)))

    def _settle(self, grant: Grant, tokens: int, spent: int) -> list[tuple[str, int, int]]:
        changes = []
        for m in grant.meters:
            delta = {
                "tokens": tokens - grant.tokens,
                "budget": spent - grant.cost,
                "concurrent": -1,
            }.get(m.kind, 0)
            if delta:
                changes.append((m.key, delta, m.ttl_ms))
        return changes

    def _provider_spend(self, report: Report) -> list[tuple[str, int, int]]:
        if not self.settings.providers:
            return []
        now = time.time()
        changes = []
        for provider, cost in provider_costs(report).items():
            budget = self.settings.providers.get(provider)
            if budget is not None and cost:
                meter = budget_meter(self.prefix, "provider", provider, budget, nano(cost), now)
                changes.append((meter.key, meter.amount, meter.ttl_ms))
        return changes

    def _background(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.metrics.limit_error()
            log.warning("limits: settling failed: %s", type(task.exception()).__name__)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.counters.close()
