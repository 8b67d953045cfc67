"""A key's team, budget and rate limits in the key API (`/admin/keys`), and its spend.

The fields ride on the key's own create and update bodies (`team`, `budget`, `limits`; null
removes one) and answers; they are kept in their own table (`router.limits_policy`), keyed
by the key's id. `GET /admin/keys/{id}` adds `spend`: the ledger's all-time total and the
current budget window's spend and remaining budget.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from router.config import Budget, RateLimit
from router.limits_meters import NANO
from router.limits_policy import KeyPolicy
from router.runtime import Runtime
from router.store.ledger_rows import SpendQuery

Unset = msgspec.UnsetType
UNSET = msgspec.UNSET


class PolicyFields(msgspec.Struct, frozen=True, kw_only=True):
    """What a create or update body may set (UNSET: unchanged; None: removed)."""

    team: str | Unset | None = UNSET
    budget: Budget | Unset | None = UNSET
    limits: RateLimit | Unset | None = UNSET


class Spend(msgspec.Struct, kw_only=True):
    total_cost: Decimal  # every call billed to this key, from the ledger
    window_cost: Decimal | None = None  # this budget window's spend, settled and reserved
    remaining_budget: Decimal | None = None
    window_resets_at: datetime | None = None


class PolicyView(msgspec.Struct, kw_only=True):
    team: str | None
    budget: Budget | None
    limits: RateLimit | None
    spend: Spend | Unset = UNSET


def merged(current: KeyPolicy | None, fields: PolicyFields) -> KeyPolicy | None:
    """The policy after `fields`; None when nothing changes."""
    if fields.team is UNSET and fields.budget is UNSET and fields.limits is UNSET:
        return None
    base = current or KeyPolicy()
    return KeyPolicy(
        team=base.team if isinstance(fields.team, Unset) else fields.team,
        budget=base.budget if isinstance(fields.budget, Unset) else fields.budget,
        limits=base.limits if isinstance(fields.limits, Unset) else fields.limits,
    )


def check(rt: Runtime, fields: PolicyFields) -> KeyPolicy | None:
    """Checked before the key itself changes, so a bad budget leaves the key as it was."""
    from router.limits_policy import check_policy

    policy = merged(None, fields)
    if policy is not None:
        check_policy(policy)
    return policy


async def apply(rt: Runtime, key_id: str, fields: PolicyFields) -> None:
    policy = merged(rt.limits.book.of(key_id), fields)
    if policy is not None:
        await rt.limits.book.save(key_id, policy)


async def view(rt: Runtime, key_id: str, with_spend: bool = False) -> PolicyView:
    policy = rt.limits.book.of(key_id) or KeyPolicy()
    out = PolicyView(team=policy.team, budget=policy.budget, limits=policy.limits)
    if with_spend:
        lines = await rt.ledger.spend(SpendQuery(group_by="key", key=key_id))
        spend = Spend(total_cost=sum((x.cost for x in lines), Decimal(0)))
        window = await rt.limits.budget_window(key_id)
        if window is not None and policy.budget is not None:
            spent, left = window
            spend.window_cost = Decimal(spent) / NANO
            spend.remaining_budget = max(Decimal(0), policy.budget.max_budget - spend.window_cost)
            spend.window_resets_at = datetime.fromtimestamp(
                datetime.now(UTC).timestamp() + left, UTC
            )
        out.spend = spend
    return out
